// check.h - the minimal assertion kit of qkv's C tests: print what was expected and
// what came, count failures, exit non-zero at the end.
#pragma once
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int check_failures;

// A test whose main forgets `return CHECK_DONE();` must still fail: at exit, recorded
// failures turn the status into 1 whatever main returned.
static void check_at_exit(void) {
    if (check_failures) {
        fprintf(stderr, "%d check(s) failed\n", check_failures);
        fflush(stderr);
        _exit(1);
    }
}

__attribute__((constructor)) static void check_install(void) { atexit(check_at_exit); }

// "$TMPDIR/NAME-XXXXXX" (/tmp without TMPDIR) into buf, a template for mkdtemp or mkstemp.
// ./dev test gives each suite run a TMPDIR of its own and fails the run when a test leaves
// something in it, so every C test's scratch is made from here. A scratch folder's path fits
// CHECK_TMP_LEN bytes (a TMPDIR too long for it falls back to /tmp); a path inside it fits
// CHECK_PATH_LEN.
#define CHECK_TMP_LEN 200
#define CHECK_PATH_LEN 512
static inline char *check_tmpl(char *buf, size_t n, const char *name) {
    const char *base = getenv("TMPDIR");
    if (!base || !*base || (size_t)snprintf(buf, n, "%s/%s-XXXXXX", base, name) >= n)
        snprintf(buf, n, "/tmp/%s-XXXXXX", name);
    return buf;
}

// The larger of a running worst error and d, infinite from a NaN on: fmax drops a NaN, so a
// worst error gathered with it passes a result that came out NaN.
static inline double check_worst(double worst, double d) { return d == d ? (d > worst ? d : worst) : INFINITY; }

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures++;                                                        \
        }                                                                            \
    } while (0)

#define CHECK_INT(got, want)                                                                \
    do {                                                                                    \
        long long g_ = (long long)(got), w_ = (long long)(want);                            \
        if (g_ != w_) {                                                                     \
            fprintf(stderr, "%s:%d: %s: expected %lld, got %lld\n", __FILE__, __LINE__, #got, \
                    w_, g_);                                                                \
            check_failures++;                                                               \
        }                                                                                   \
    } while (0)

#define CHECK_STR(got, want)                                                                   \
    do {                                                                                       \
        const char *g_ = (got), *w_ = (want);                                                  \
        if (!g_ || strcmp(g_, w_)) {                                                           \
            fprintf(stderr, "%s:%d: %s: expected \"%s\", got \"%s\"\n", __FILE__, __LINE__, #got, \
                    w_, g_ ? g_ : "(null)");                                                   \
            check_failures++;                                                                  \
        }                                                                                      \
    } while (0)

#define CHECK_NEAR(got, want, tol)                                                              \
    do {                                                                                        \
        double g_ = (got), w_ = (want);                                                         \
        if (!(fabs(g_ - w_) <= (tol))) {                                                        \
            fprintf(stderr, "%s:%d: %s: expected %.9g, got %.9g (tolerance %g)\n", __FILE__,   \
                    __LINE__, #got, w_, g_, (double)(tol));                                     \
            check_failures++;                                                                   \
        }                                                                                       \
    } while (0)

// Return from main with this (the exit handler above reports the failures).
#define CHECK_DONE() (check_failures ? 1 : 0)

// Directory of the shared real models, or NULL (then the test should exit 77).
static inline const char *check_shared_models(void) {
    const char *d = getenv("QKV_SHARED_MODELS");
    return d && *d ? d : NULL;
}
