// kern_bench.c - the decoding kernels alone, at GPT-2 124M's shapes, against the read
// bandwidth measured in the same run: each weight type's GB/s per kind of layer and for a
// whole token (12 layers of attention c_attn/c_proj and MLP c_fc/c_proj, [in, out], then
// the tied head [50257, 768]), as a fraction of the read bound.
//   build/tests/unit/kern_bench [THREADS [REPS [KERNELS]]]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "kern/bound.h"
#include "kern/kernels.h"
#include "kern/ops.h"

enum { LAYERS = 12, D = 768, VOCAB = 50257 };

typedef struct {
    const char *name;
    int in, out;
    bool out_in;
    int count;
} Kind;

static const Kind kinds[] = {
    {"c_attn [768,2304]", D, 3 * D, false, LAYERS}, {"attn c_proj [768,768]", D, D, false, LAYERS},
    {"c_fc [768,3072]", D, 4 * D, false, LAYERS},   {"mlp c_proj [3072,768]", 4 * D, D, false, LAYERS},
    {"head [50257,768]", D, VOCAB, true, 1},
};
enum { KINDS = sizeof kinds / sizeof kinds[0] };

int main(int argc, char **argv) {
    int nth = argc > 1 ? atoi(argv[1]) : 2, reps = argc > 2 ? atoi(argv[2]) : 5;
    Err e = {0};
    if (argc > 3 && kern_use(argv[3], &e)) {
        fprintf(stderr, "kern_bench: %s\n", e.msg);
        return 2;
    }
    Pool *pool = pool_new(nth);
    float *x = calloc(4 * D, sizeof(float)), *y = calloc(VOCAB, sizeof(float));
    for (int i = 0; i < 4 * D; i++) x[i] = (float)(i % 17) * 0.01f;
    printf("kernels %s, %d threads, best of %d\n", kern_name(), nth, reps);
    for (int dt = 0; dt < DT_Q8_0; dt++) {
        Linear *L[KINDS];
        double bytes_kind[KINDS], total_bytes = 0;
        for (int k = 0; k < KINDS; k++) {
            L[k] = calloc((size_t)kinds[k].count, sizeof(Linear));
            int64_t n = (int64_t)kinds[k].in * kinds[k].out;
            bytes_kind[k] = (double)dtype_bytes((DType)dt, n) * kinds[k].count;
            total_bytes += bytes_kind[k];
            for (int c = 0; c < kinds[k].count; c++) {
                void *w = malloc(dtype_bytes((DType)dt, n));
                memset(w, 0x11, dtype_bytes((DType)dt, n));
                L[k][c] = (Linear){.w = {.dt = (DType)dt, .ndim = 2, .n = n, .data = w}, .out_in = kinds[k].out_in,
                                   .in = kinds[k].in, .out = kinds[k].out};
            }
        }
        double best_kind[KINDS], best_tok = 1e30, read = 0;
        for (int k = 0; k < KINDS; k++) best_kind[k] = 1e30;
        for (int r = 0; r < reps; r++) {
            double bs;
            if (bound_read_bytes_s(pool, (size_t)512 << 20, 3, &bs, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
            read = bs > read ? bs : read;
            double t0 = clock_now();
            for (int l = 0; l < LAYERS; l++)
                for (int k = 0; k < 4; k++) linear_forward(pool, y, x, &L[k][l], 1);
            linear_forward(pool, y, x, &L[4][0], 1);
            double t = clock_now() - t0;
            best_tok = t < best_tok ? t : best_tok;
            for (int k = 0; k < KINDS; k++) {
                t0 = clock_now();
                for (int c = 0; c < kinds[k].count; c++) linear_forward(pool, y, x, &L[k][c], 1);
                t = clock_now() - t0;
                best_kind[k] = t < best_kind[k] ? t : best_kind[k];
            }
        }
        printf("%s: read bound %.1f GB/s; one token's weights (%.0f MB) %.1f GB/s = %.0f%%\n", dtype_name((DType)dt),
               read / 1e9, total_bytes / 1e6, total_bytes / best_tok / 1e9, 100 * total_bytes / best_tok / read);
        for (int k = 0; k < KINDS; k++) {
            printf("  %-24s x%-2d %6.1f GB/s = %3.0f%%\n", kinds[k].name, kinds[k].count,
                   bytes_kind[k] / best_kind[k] / 1e9, 100 * bytes_kind[k] / best_kind[k] / read);
            for (int c = 0; c < kinds[k].count; c++) free((void *)L[k][c].w.data);
            free(L[k]);
        }
    }
    free(x), free(y);
    pool_free(pool);
    return 0;
}
