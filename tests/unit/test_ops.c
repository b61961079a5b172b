// test_ops.c - log-softmax, top-N and the scalar element-type conversions (the kernels of
// every instruction set are in test_kernels.c).
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "kern/ops.h"
#include "kern/tensor.h"
#include "eval/sample.h"

int main(void) {
    // log-softmax and top-N (ties broken by the lower index)
    float l[6] = {1, 3, 3, -2, 0, 2}, lp[6];
    log_softmax(l, 6, lp);
    double lz = log(exp(1) + 2 * exp(3) + exp(-2) + exp(0) + exp(2));
    CHECK_NEAR(lp[1], 3 - lz, 1e-6);
    int idx[4];
    CHECK_INT(top_n(l, 6, 4, idx), 4);
    CHECK_INT(idx[0], 1);
    CHECK_INT(idx[1], 2);
    CHECK_INT(idx[2], 5);
    CHECK_INT(idx[3], 0);
    // log-softmax with the exponentials on a team: log_softmax's bits, for 1-4 threads and a
    // vocabulary's length as generation takes it
    enum { NV = 50257 };
    float *x = malloc(sizeof(float) * NV), *ref = malloc(sizeof(float) * NV), *got = malloc(sizeof(float) * NV);
    double *scratch = malloc(sizeof(double) * NV);
    unsigned seed = 7;
    for (int i = 0; i < NV; i++) seed = seed * 1103515245u + 12345u, x[i] = (float)(seed >> 8) / (1u << 24) * 30 - 15;
    log_softmax(x, NV, ref);
    for (int nth = 1; nth <= 4; nth++) {
        Pool *pool = pool_new(nth);
        for (int n = 1; n <= NV; n = n * 7 + 3) {
            log_softmax(x, n, ref);
            log_softmax_pool(pool, x, n, got, scratch);
            if (memcmp(ref, got, sizeof(float) * (size_t)n)) {
                fprintf(stderr, "log_softmax_pool: %d values on %d threads differ from log_softmax\n", n, nth);
                check_failures++;
            }
        }
        log_softmax(x, NV, ref);
        log_softmax_pool(pool, x, NV, got, scratch);
        CHECK(!memcmp(ref, got, sizeof(float) * NV));
        pool_free(pool);
    }
    free(x), free(ref), free(got), free(scratch);
    // top-p sorts every candidate by descending logit, ties by the lower index (the one order
    // qsort_r gave): values from a small set, so most are tied, with -0 and +0 among them
    {
        enum { NS = 5000 };
        static const float set[] = {3.5f, -1.0f, 0.0f, -0.0f, 2.25f, -7.0f, 1e-30f, -1e-30f, 3.5f};
        float v[NS], fs[NS];
        int is[NS], seen[NS] = {0};
        for (int i = 0; i < NS; i++) seed = seed * 1103515245u + 12345u, v[i] = set[(seed >> 8) % 9];
        SampleParams sp = {.temperature = 1.0f, .top_k = 0, .top_p = 0.9f};
        Rng r;
        rng_seed(&r, 1);
        int id = sample_token(v, NS, &sp, &r, fs, is);
        CHECK(id >= 0 && id < NS && v[id] == 3.5f);
        int bad = -1;
        for (int i = 0; i < NS; i++) {
            if (is[i] < 0 || is[i] >= NS || seen[is[i]]++) bad = i;
            if (i && (v[is[i - 1]] < v[is[i]] || (v[is[i - 1]] == v[is[i]] && is[i - 1] > is[i]))) bad = i;
        }
        if (bad >= 0) {
            fprintf(stderr, "top-p order: candidate %d (id %d) is out of order or repeated\n", bad, is[bad]);
            check_failures++;
        }
    }
    // LayerNorm
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, w[8], b[8], o[8];
    for (int i = 0; i < 8; i++) w[i] = 2, b[i] = 1;
    layernorm_forward(o, a, w, b, 1, 8, 1e-5f);
    double mean = 4.5, var = 5.25;
    for (int i = 0; i < 8; i++) CHECK_NEAR(o[i], (a[i] - mean) / sqrt(var + 1e-5) * 2 + 1, 1e-5);

    // conversions round to nearest even
    CHECK_INT(f32_to_f16(1.0f), 0x3C00);
    CHECK_INT(f32_to_f16(65504.0f), 0x7BFF);
    CHECK_INT(f32_to_f16(1e6f), 0x7C00);
    // the KV cache's store saturates instead (and rounds as f32_to_f16 inside the range)
    CHECK_INT(f32_to_f16_sat(1e6f), 0x7BFF);
    CHECK_INT(f32_to_f16_sat(-1e6f), 0xFBFF);
    CHECK_INT(f32_to_f16_sat(INFINITY), 0x7BFF);
    CHECK_INT(f32_to_f16_sat(65519.0f), 0x7BFF);
    CHECK_INT(f32_to_f16_sat(1.0f), 0x3C00);
    CHECK_INT(f32_to_f16_sat(-2.5e-8f), f32_to_f16(-2.5e-8f));
    CHECK((f32_to_f16_sat(NAN) & 0x7C00) == 0x7C00 && (f32_to_f16_sat(NAN) & 0x3FF) != 0);
    CHECK_NEAR(f16_to_f32(0x0001), 5.960464477539063e-08, 1e-15);
    CHECK_INT(f32_to_bf16(1.0f), 0x3F80);
    CHECK_NEAR(bf16_to_f32(0x4049), 3.140625, 0);
    return CHECK_DONE();
}
