// proc.c - owner tokens of processes (proc.h).
#include "base/proc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

// Field 22 (starttime) of /proc/PID/stat, 0 when it cannot be read; *state gets field 3 ('Z':
// a zombie, killed and not yet reaped by its parent; 0 when unread). The command name (field 2)
// is in parentheses and may hold spaces and parentheses itself: the fields after it start after
// its last ')'.
static unsigned long long start_time(long pid, char *state) {
    *state = 0;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    if (!p) return 0;
    unsigned long long v = 0;
    char st = 0;
    // after ')': state (3), then fields 4..21, then starttime (22)
    if (sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &st, &v) != 2)
        return 0;
    *state = st;
    return v;
}

static void host(char *out, size_t cap) {
    if (gethostname(out, cap) != 0) snprintf(out, cap, "?");
    out[cap - 1] = 0;
    for (char *c = out; *c; c++)
        if (*c == ' ') *c = '_'; // the token's fields are space-separated
}

void proc_token(char out[PROC_TOKEN_MAX]) {
    char h[64];
    host(h, sizeof h);
    long pid = (long)getpid();
    char st;
    snprintf(out, PROC_TOKEN_MAX, "%s %ld %llu", h, pid, start_time(pid, &st));
}

bool proc_token_alive(const char *token) {
    char th[64], h[64];
    long pid;
    unsigned long long st;
    if (!token || sscanf(token, "%63s %ld %llu", th, &pid, &st) != 3 || pid <= 0) return false;
    host(h, sizeof h);
    if (strcmp(th, h)) return false;
    if (kill((pid_t)pid, 0) != 0 && errno != EPERM) return false;
    char state;
    // both 0 without /proc: the pid alone. A zombie (killed, its parent not yet waiting) is gone
    return start_time(pid, &state) == st && state != 'Z' && state != 'X';
}
