// scalar.c - the kernels in plain C: the table for CPUs without AVX2, the reference the
// vector tables are tested against, and the fallback for entries they leave empty.
#include <math.h>
#include <string.h>

#include "kern/kernels.h"

#define INLINE static inline __attribute__((always_inline))

// Element i of a stored array as f32 (Q8_0: blocks of 32 = f16 scale + 32 int8).
INLINE float at(const void *w, DType dt, int64_t i) {
    switch (dt) {
    case DT_F16: return f16_to_f32(((const uint16_t *)w)[i]);
    case DT_BF16: return bf16_to_f32(((const uint16_t *)w)[i]);
    case DT_Q8_0: {
        const unsigned char *b = (const unsigned char *)w + (i / 32) * 34;
        uint16_t d;
        memcpy(&d, b, 2);
        return f16_to_f32(d) * (float)(signed char)b[2 + i % 32];
    }
    default: return ((const float *)w)[i];
    }
}

INLINE void row_body(const void *w, DType dt, int64_t off, int64_t n, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = at(w, dt, off + i);
}

// y (n) += x (rows) W: row by row, so that the inner loop is element-wise over y.
INLINE void in_out_body(const void *w, DType dt, int64_t ld, int rows, int n, const float *x, float *y) {
    for (int i = 0; i < rows; i++) {
        const float xi = x[i];
        const int64_t r = (int64_t)i * ld;
        for (int j = 0; j < n; j++) y[j] += xi * at(w, dt, r + j);
    }
}

INLINE void out_in_body(const void *w, DType dt, int in, int n, const float *x, float *y) {
    for (int j = 0; j < n; j++) {
        const int64_t r = (int64_t)j * in;
        double s = 0;
        for (int i = 0; i < in; i++) s += (double)at(w, dt, r + i) * x[i];
        y[j] = (float)s;
    }
}

// Q8_0 rows: one scale per block, applied to the block's integer-weighted sum.
static void out_in_q8_0(const void *w, int in, int n, const float *x, float *y) {
    const unsigned char *b = w;
    for (int j = 0; j < n; j++) {
        double s = 0;
        for (int i = 0; i < in; i += 32, b += 34) {
            uint16_t d;
            memcpy(&d, b, 2);
            float bs = 0;
            for (int k = 0; k < 32; k++) bs += (float)(signed char)b[2 + k] * x[i + k];
            s += (double)f16_to_f32(d) * bs;
        }
        y[j] = (float)s;
    }
}

#define PER_TYPE(T)                                                                                   \
    static void row_##T(const void *w, int64_t off, int64_t n, float *out) {                          \
        row_body(w, DT_##T, off, n, out);                                                             \
    }                                                                                                 \
    static void in_out_##T(const void *w, int64_t ld, int rows, int n, const float *x, float *y) {    \
        in_out_body(w, DT_##T, ld, rows, n, x, y);                                                    \
    }
PER_TYPE(F32)
PER_TYPE(F16)
PER_TYPE(BF16)
PER_TYPE(Q8_0)
#undef PER_TYPE

static void out_in_F32(const void *w, int in, int n, const float *x, float *y) { out_in_body(w, DT_F32, in, n, x, y); }
static void out_in_F16(const void *w, int in, int n, const float *x, float *y) { out_in_body(w, DT_F16, in, n, x, y); }
static void out_in_BF16(const void *w, int in, int n, const float *x, float *y) { out_in_body(w, DT_BF16, in, n, x, y); }

static void gelu_tanh_scalar(float *x, int n) {
    const float k = 0.7978845608028654f; // sqrt(2/pi)
    for (int i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

static void softmax_scalar(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        s += x[i];
    }
    float inv = (float)(1.0 / s);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

static void layernorm_scalar(float *out, const float *inp, const float *w, const float *b, int T, int C, float eps) {
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        float *o = out + (size_t)t * C;
        double mean = 0, var = 0;
        for (int i = 0; i < C; i++) mean += x[i];
        mean /= C;
        for (int i = 0; i < C; i++) {
            double d = x[i] - mean;
            var += d * d;
        }
        var /= C;
        float rstd = (float)(1.0 / sqrt(var + eps)), m = (float)mean;
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * rstd * w[i] + (b ? b[i] : 0.0f);
    }
}

static void rmsnorm_scalar(float *out, const float *inp, const float *w, int T, int C, float eps) {
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        float *o = out + (size_t)t * C;
        double ss = 0;
        for (int i = 0; i < C; i++) ss += (double)x[i] * x[i];
        float r = (float)(1.0 / sqrt(ss / C + eps));
        for (int i = 0; i < C; i++) o[i] = x[i] * r * w[i];
    }
}

static void gelu_erf_scalar(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

static void swiglu_scalar(float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

const Kernels kern_scalar_table = {
    .name = "scalar",
    .row_f32 = {[DT_F32] = row_F32, [DT_F16] = row_F16, [DT_BF16] = row_BF16, [DT_Q8_0] = row_Q8_0},
    .mv_in_out = {[DT_F32] = in_out_F32, [DT_F16] = in_out_F16, [DT_BF16] = in_out_BF16, [DT_Q8_0] = in_out_Q8_0},
    .mv_out_in = {[DT_F32] = out_in_F32, [DT_F16] = out_in_F16, [DT_BF16] = out_in_BF16, [DT_Q8_0] = out_in_q8_0},
    .gelu_tanh = gelu_tanh_scalar,
    .softmax = softmax_scalar,
    .layernorm = layernorm_scalar,
    .rmsnorm = rmsnorm_scalar,
    .gelu_erf = gelu_erf_scalar,
    .swiglu = swiglu_scalar,
};
