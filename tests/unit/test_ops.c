// test_ops.c - numeric kernels against double-precision formulas: GELU, softmax,
// LayerNorm, log-softmax, top-N, and linear layers in every dtype and layout.
#include <stdlib.h>

#include "../check.h"
#include "kern/ops.h"
#include "kern/pool.h"
#include "eval/sample.h"

static double gelu_ref(double x) { return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }

int main(void) {
    // GELU over a wide range, vector and scalar tails alike
    enum { N = 4003 };
    static float x[N];
    double worst = 0;
    for (int i = 0; i < N; i++) x[i] = -20.0f + 40.0f * i / (N - 1);
    gelu_tanh(x, N);
    for (int i = 0; i < N; i++) {
        double v = -20.0 + 40.0 * i / (N - 1), r = gelu_ref((float)v);
        double err = fabs(x[i] - r) / (fabs(r) > 1 ? fabs(r) : 1);
        worst = err > worst ? err : worst;
    }
    CHECK(worst < 2e-6);
    // softmax: sums to one, matches exp/sum, and -inf entries become exactly 0
    float s[37];
    double z = 0;
    for (int i = 0; i < 37; i++) s[i] = (float)sin(i * 1.7) * 30.0f, z += exp((double)s[i] - 30.0);
    float s2[37];
    memcpy(s2, s, sizeof s);
    softmax_inplace(s, 37);
    double sum = 0;
    for (int i = 0; i < 37; i++) {
        sum += s[i];
        CHECK_NEAR(s[i], exp((double)s2[i] - 30.0) / z, 1e-6);
    }
    CHECK_NEAR(sum, 1.0, 1e-6);
    float m[16];
    for (int i = 0; i < 16; i++) m[i] = i < 5 ? (float)i : -INFINITY;
    softmax_inplace(m, 16);
    for (int i = 5; i < 16; i++) CHECK(m[i] == 0.0f);
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
    // LayerNorm
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, w[8], b[8], o[8];
    for (int i = 0; i < 8; i++) w[i] = 2, b[i] = 1;
    layernorm_forward(o, a, w, b, 1, 8, 1e-5f);
    double mean = 4.5, var = 5.25;
    for (int i = 0; i < 8; i++) CHECK_NEAR(o[i], (a[i] - mean) / sqrt(var + 1e-5) * 2 + 1, 1e-5);

    // linear layers: every dtype x layout x T (matvec and GEMM paths) against doubles
    Pool *pool = pool_new(2);
    int in = 40, out = 56;
    float *W = malloc(sizeof(float) * in * out), *X = malloc(sizeof(float) * 3 * in), *bias = malloc(sizeof(float) * out);
    uint16_t *H = malloc(2 * in * out), *B16 = malloc(2 * in * out);
    Rng r;
    rng_seed(&r, 5);
    for (int i = 0; i < in * out; i++) {
        W[i] = rng_uniform(&r) - 0.5f;
        H[i] = f32_to_f16(W[i]);
        B16[i] = f32_to_bf16(W[i]);
    }
    for (int i = 0; i < 3 * in; i++) X[i] = rng_uniform(&r) * 2 - 1;
    for (int i = 0; i < out; i++) bias[i] = (float)i / out;
    for (int dt = 0; dt < 3; dt++)
        for (int layout = 0; layout < 2; layout++)
            for (int T = 1; T <= 3; T += 2) {
                Linear L = {.w = {.dt = (DType)dt, .ndim = 2, .n = in * out}, .out_in = layout, .bias = bias, .in = in, .out = out};
                L.w.data = dt == DT_F32 ? (const void *)W : dt == DT_F16 ? (const void *)H : (const void *)B16;
                float y[3 * 56];
                linear_forward(pool, y, X, &L, T);
                double err = 0;
                for (int t = 0; t < T; t++)
                    for (int j = 0; j < out; j++) {
                        double acc = bias[j];
                        for (int i = 0; i < in; i++) {
                            int64_t k = layout ? (int64_t)j * in + i : (int64_t)i * out + j;
                            float wv = dt == DT_F32 ? W[k] : dt == DT_F16 ? f16_to_f32(H[k]) : bf16_to_f32(B16[k]);
                            acc += (double)wv * X[t * in + i];
                        }
                        err = fmax(err, fabs(acc - y[t * out + j]));
                    }
                if (!(err < 1e-4)) fprintf(stderr, "dtype %d layout %d T=%d: max error %g\n", dt, layout, T, err);
                CHECK(err < 1e-4);
            }
    // conversions round to nearest even
    CHECK_INT(f32_to_f16(1.0f), 0x3C00);
    CHECK_INT(f32_to_f16(65504.0f), 0x7BFF);
    CHECK_INT(f32_to_f16(1e6f), 0x7C00);
    CHECK_NEAR(f16_to_f32(0x0001), 5.960464477539063e-08, 1e-15);
    CHECK_INT(f32_to_bf16(1.0f), 0x3F80);
    CHECK_NEAR(bf16_to_f32(0x4049), 3.140625, 0);
    free(W), free(X), free(bias), free(H), free(B16);
    pool_free(pool);
    return CHECK_DONE();
}
