// test_blasmem.c - OpenBLAS's work buffers (kern/blasmem.h) under an address-space limit.
//
// 1. With the buffers reserved before the limit, the pool's threads run sgemm at once
//    (linear_forward with T > 1 splits a GEMM over them) thousands of times under a limit
//    that leaves no room for a new buffer: no hang, right numbers. Without the reservation
//    this hung inside OpenBLAS (a mapping retried forever) in most runs.
// 2. Asked for under a limit that leaves no room, the reservation fails with a message and
//    returns at once instead of hanging.
// A hang is caught by an alarm: the child dies of SIGALRM and the test fails.
#include "../check.h"
#include "../aslimit.h"

#include <signal.h>

#include "kern/blasmem.h"
#include "kern/ops.h"
#include "kern/pool.h"

enum { IN = 96, OUT = 256, T = 9, ROUNDS = 4000 };

static int concurrent_sgemm(void *arg) {
    (void)arg;
    alarm(60);
    Pool *pool = pool_new(2);
    Err e = {{0}};
    if (blas_reserve(pool_size(pool), &e)) {
        fprintf(stderr, "reserve: %s\n", e.msg);
        return 1;
    }
    float *w = malloc(sizeof(float) * IN * OUT), *x = malloc(sizeof(float) * T * IN);
    float *y = malloc(sizeof(float) * T * OUT), *want = malloc(sizeof(float) * T * OUT);
    for (int i = 0; i < IN * OUT; i++) w[i] = (float)((i * 7) % 11 - 5) * 0.125f;
    for (int i = 0; i < T * IN; i++) x[i] = (float)((i * 5) % 9 - 4) * 0.25f;
    for (int t = 0; t < T; t++)
        for (int o = 0; o < OUT; o++) {
            double s = 0;
            for (int i = 0; i < IN; i++) s += (double)x[t * IN + i] * w[o * IN + i];
            want[t * OUT + o] = (float)s;
        }
    Linear L = {.w = {.dt = DT_F32, .ndim = 2, .n = (int64_t)IN * OUT, .data = w}, .out_in = 1, .in = IN, .out = OUT};
    if (aslimit_set((size_t)32 << 20)) return 77;
    int bad = 0;
    for (int r = 0; r < ROUNDS && !bad; r++) {
        linear_forward(pool, y, x, &L, T);
        for (int i = 0; i < T * OUT; i++)
            if (y[i] != want[i]) { // small integers times powers of two: exact
                fprintf(stderr, "round %d: y[%d] = %g, want %g\n", r, i, y[i], want[i]);
                bad = 1;
                break;
            }
    }
    pool_free(pool);
    free(w), free(x), free(y), free(want);
    return bad;
}

static int refused(void *arg) {
    (void)arg;
    alarm(60);
    if (aslimit_set((size_t)16 << 20)) return 77;
    Err e = {{0}};
    if (blas_reserve(8, &e) != -1) {
        fprintf(stderr, "reserve under a 16 MB margin succeeded\n");
        return 1;
    }
    if (!strstr(e.msg, "out of memory for OpenBLAS's work buffers")) {
        fprintf(stderr, "message: %s\n", e.msg);
        return 1;
    }
    return blas_reserved() == 0 ? 0 : 1;
}

int main(void) {
    aslimit_fork("concurrent sgemm under an address-space limit", concurrent_sgemm, NULL);
    aslimit_fork("reservation refused under an address-space limit", refused, NULL);
    return check_failures != 0;
}
