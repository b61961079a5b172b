// mem.c - allocation helpers that never return NULL (see the policy in mem.h).
#include "base/mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void default_oom(size_t size) {
    char msg[96];
    int n = snprintf(msg, sizeof msg, "qkv: out of memory (allocating %zu bytes)\n", size);
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, msg, (size_t)n);
        (void)w;
    }
    abort();
}

static OomHandler oom = default_oom;

void mem_set_oom_handler(OomHandler h) { oom = h ? h : default_oom; }

static void *check(void *p, size_t size) {
    if (!p) {
        oom(size);
        abort(); // a handler must not return
    }
    return p;
}

void *xmalloc(size_t n) { return check(malloc(n ? n : 1), n); }

void *xcalloc(size_t n, size_t size) {
    if (!n || !size) n = size = 1;
    return check(calloc(n, size), mem_mul(n, size));
}

void *xrealloc(void *p, size_t n) { return check(realloc(p, n ? n : 1), n); }

char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

char *xstrndup(const char *s, size_t n) {
    size_t len = strnlen(s, n);
    char *d = xmalloc(len + 1);
    memcpy(d, s, len);
    d[len] = 0;
    return d;
}

size_t mem_mul(size_t n, size_t size) { return size && n > SIZE_MAX / size ? SIZE_MAX : n * size; }
