// runlog.c - PLACEHOLDER until the db/ work lands: runs are not logged yet.
#include "app.h"

int64_t app_log_run(App *app, const char *prompt, size_t prompt_len, const GenParams *p, const GenResult *r,
                    const char *text, size_t text_len, Err *e) {
    (void)app, (void)prompt, (void)prompt_len, (void)p, (void)r, (void)text, (void)text_len;
    err_set(e, "run logging is not available yet");
    return 0;
}
