// err.c - filling caller-owned error messages.
#include "base/err.h"

#include <stdio.h>
#include <string.h>

// Formatted apart, then copied: an argument may be e->msg itself (the message it replaces).
int err_set(Err *e, const char *fmt, ...) {
    if (!e) return -1;
    char msg[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(e->msg, msg, sizeof msg);
    return -1;
}

int err_prefix(Err *e, const char *fmt, ...) {
    if (!e) return -1;
    char head[256], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    int n = snprintf(e->msg, sizeof e->msg, "%s: ", head);
    if (n > 0 && (size_t)n < sizeof e->msg) memcpy(e->msg + n, old, sizeof e->msg - (size_t)n - 1);
    e->msg[sizeof e->msg - 1] = 0;
    return -1;
}
