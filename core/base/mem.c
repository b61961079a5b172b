// mem.c - allocation helpers that never return NULL (see the policy in mem.h).
#include "base/mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void mem_oom_report(size_t size) {
    char msg[96];
    int n = snprintf(msg, sizeof msg, "qkv: out of memory (allocating %zu bytes)\n", size);
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, msg, (size_t)n);
        (void)w;
    }
}

static void default_oom(size_t size) {
    mem_oom_report(size);
    abort();
}

static OomHandler oom = default_oom;

void mem_set_oom_handler(OomHandler h) { oom = h ? h : default_oom; }

// The test hook (mem.h): requests above this many bytes fail. Read once, at the first request.
static size_t test_limit(void) {
    static size_t limit;
    static int read;
    if (!read) {
        const char *s = getenv("QKV_TEST_XALLOC_MAX");
        char *end;
        unsigned long long v = s && *s ? strtoull(s, &end, 10) : 0;
        limit = s && *s && !*end ? (size_t)v : SIZE_MAX;
        read = 1;
    }
    return limit;
}

static void *check(void *p, size_t size) {
    if (!p) {
        oom(size);
        abort(); // a handler must not return
    }
    return p;
}

void *xmalloc(size_t n) {
    if (n > test_limit()) return check(NULL, n);
    return check(malloc(n ? n : 1), n);
}

void *xcalloc(size_t n, size_t size) {
    if (!n || !size) n = size = 1;
    size_t total = mem_mul(n, size);
    if (total > test_limit()) return check(NULL, total);
    return check(calloc(n, size), total);
}

void *xrealloc(void *p, size_t n) {
    if (n > test_limit()) return check(NULL, n);
    return check(realloc(p, n ? n : 1), n);
}

char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

char *xstrndup(const char *s, size_t n) {
    size_t len = strnlen(s, n);
    char *d = xmalloc(len + 1);
    memcpy(d, s, len);
    d[len] = 0;
    return d;
}

char *xmemdup0(const void *p, size_t n) {
    char *d = xmalloc(n + 1);
    if (n) memcpy(d, p, n);
    d[n] = 0;
    return d;
}

size_t mem_mul(size_t n, size_t size) { return size && n > SIZE_MAX / size ? SIZE_MAX : n * size; }

// Huge pages come only to a range advised before its pages are first touched, hence the
// advice, then the zeroing (which faults the pages in on 2 MB pages).
void *mem_calloc_huge(size_t n) {
    const size_t huge = (size_t)2 << 20, line = 64;
    if (n < huge) { // a cache line's alignment, whatever the heap's state (see mem.h)
        size_t whole = (n + line - 1) / line * line;
        void *p = aligned_alloc(line, whole ? whole : line);
        if (p) memset(p, 0, whole ? whole : line);
        return p;
    }
    if (n > SIZE_MAX - huge) return NULL;
    size_t whole = (n + huge - 1) / huge * huge;
    void *p = aligned_alloc(huge, whole);
    if (!p) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, whole, MADV_HUGEPAGE);
#endif
    memset(p, 0, n);
    return p;
}
