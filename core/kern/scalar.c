// scalar.c - the kernels in plain C: the table for CPUs without AVX2, the reference the
// vector tables are tested against, and the fallback for entries they leave empty.
#include <math.h>
#include <string.h>

#include "kern/blocks.h"
#include "kern/kernels.h"
#include "kern/quant.h"

#define INLINE static inline __attribute__((always_inline))

// Element i of a stored array without blocks or row header (F32, F16, BF16) as f32.
INLINE float at(const void *w, DType dt, int64_t i) { return elem_f32(w, dt, i); }

// n elements from element off of the row at w (RowF32Fn's contract): block types a block at
// a time (kern/blocks.h), I8_AFFINE through its row header.
INLINE void row_body(const void *w, DType dt, int64_t off, int64_t n, float *out) {
    const int blk = dtype_block(dt);
    if (blk > 1) {
        const unsigned char *b = (const unsigned char *)w + dtype_bytes(dt, off);
        const size_t bb = dtype_bytes(dt, blk);
        for (int64_t i = 0; i < n; i += blk, b += bb) blk_decode(dt, b, out + i);
    } else if (dt == DT_I8_AFFINE) {
        const unsigned char *r = w;
        float s;
        int32_t z;
        memcpy(&s, r, 4), memcpy(&z, r + 4, 4);
        const int8_t *q = (const int8_t *)(r + I8_AFFINE_HEAD) + off;
        for (int64_t i = 0; i < n; i++) out[i] = s * (float)((int64_t)q[i] - z);
    } else {
        for (int64_t i = 0; i < n; i++) out[i] = at(w, dt, off + i);
    }
}

// The kernels below convert a row a piece of PIECE elements at a time (a multiple of every
// block) and work on the floats.
enum { PIECE = 256 };

// y (n) += x (rows) W: row by row, so that the inner loop is element-wise over y.
INLINE void in_out_body(const void *w, DType dt, int64_t ld, int rows, int n, const float *x, float *y) {
    const size_t rb = dtype_row_bytes(dt, ld);
    float piece[PIECE];
    for (int i = 0; i < rows; i++) {
        const float xi = x[i];
        const char *r = (const char *)w + rb * (size_t)i;
        for (int j0 = 0; j0 < n; j0 += PIECE) {
            const int m = n - j0 < PIECE ? n - j0 : PIECE;
            row_body(r, dt, j0, m, piece);
            for (int j = 0; j < m; j++) y[j0 + j] += xi * piece[j];
        }
    }
}

// y[j] = W[j] . x, summed in double.
INLINE void out_in_body(const void *w, DType dt, int in, int n, const float *x, float *y) {
    const size_t rb = dtype_row_bytes(dt, in);
    float piece[PIECE];
    for (int j = 0; j < n; j++) {
        const char *r = (const char *)w + rb * (size_t)j;
        double s = 0;
        for (int i0 = 0; i0 < in; i0 += PIECE) {
            const int m = in - i0 < PIECE ? in - i0 : PIECE;
            row_body(r, dt, i0, m, piece);
            for (int i = 0; i < m; i++) s += (double)piece[i] * x[i0 + i];
        }
        y[j] = (float)s;
    }
}

// [out, in] block types on a quantized x (BlkRowsFn): the same double sums, of the weights
// with x as blk_quant_x rounds it.
INLINE void out_in_q_body(const void *w, DType dt, size_t rb, int in, int n, const XQ *x, float *y, bool add) {
    float piece[PIECE];
    for (int j = 0; j < n; j++) {
        const char *r = (const char *)w + rb * (size_t)j;
        double s = 0;
        for (int i0 = 0; i0 < in; i0 += PIECE) {
            const int m = in - i0 < PIECE ? in - i0 : PIECE;
            row_body(r, dt, i0, m, piece);
            for (int i = 0; i < m; i++) s += (double)piece[i] * (x->d[(i0 + i) / QK] * (float)x->q[i0 + i]);
        }
        y[j] = add ? y[j] + (float)s : (float)s;
    }
}

#define PER_TYPE(T, OUT_IN)                                                                           \
    static void row_##T(const void *w, int64_t off, int64_t n, float *out) {                          \
        row_body(w, DT_##T, off, n, out);                                                             \
    }                                                                                                 \
    static void in_out_##T(const void *w, int64_t ld, int rows, int n, const float *x, float *y) {    \
        in_out_body(w, DT_##T, ld, rows, n, x, y);                                                    \
    }                                                                                                 \
    static void out_in_##T(const void *w, int in, int n, const float *x, float *y) { OUT_IN; }
#define FLOAT_OUT_IN(T) out_in_body(w, DT_##T, in, n, x, y)
PER_TYPE(F32, FLOAT_OUT_IN(F32))
PER_TYPE(F16, FLOAT_OUT_IN(F16))
PER_TYPE(BF16, FLOAT_OUT_IN(BF16))
PER_TYPE(I8_AFFINE, FLOAT_OUT_IN(I8_AFFINE))
// block types: their rows on a quantized x, and on a float x through blk_out_in
#define BLOCK_TYPE(T)                                                                                 \
    static void rows_##T(const void *w, size_t rb, int in, int n, const XQ *x, float *y, bool add) {  \
        out_in_q_body(w, DT_##T, rb, in, n, x, y, add);                                               \
    }                                                                                                 \
    static void out_in_q_##T(const void *w, int in, int n, const XQ *x, float *y) {                   \
        rows_##T(w, dtype_row_bytes(DT_##T, in), in, n, x, y, false);                                 \
    }                                                                                                 \
    PER_TYPE(T, blk_out_in(w, DT_##T, in, n, x, y, rows_##T))
BLOCK_TYPE(Q8_0)
BLOCK_TYPE(Q4_0)
BLOCK_TYPE(Q4_1)
BLOCK_TYPE(Q4_K)
BLOCK_TYPE(Q6_K)
#undef BLOCK_TYPE
// Q8_0 on a float x (the Q8_0 KV cache's scores): the rows dequantized, the double sums
static void out_in_fx_Q8_0(const void *w, int in, int n, const float *x, float *y) {
    out_in_body(w, DT_Q8_0, in, n, x, y);
}
#undef FLOAT_OUT_IN
#undef PER_TYPE

// The training pass's GELU as x s, s = (1 + tanh u) / 2 = 1 / (1 + e^(-2u)), u = k (x + c x^3):
// no cancellation where tanh u nears -1, so the result keeps its relative precision for
// negative x (0.5 x (1 + tanhf(u)) loses it there). gelu'(x) = s + 2 x s (1 - s) k (1 + 3 c x^2),
// with 1 - s = s e^(-2u). The vector tables compute the same (kern/simd.h).
static void gelu_tanh_to_scalar(float *out, const float *inp, int n) {
    for (int i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = x / (1.0f + expf(-2.0f * 0.7978845608028654f * (x + 0.044715f * x * x * x)));
    }
}

static void gelu_tanh_backward_scalar(float *dinp, const float *inp, const float *dout, int n) {
    for (int i = 0; i < n; i++) dinp[i] += gelu_tanh_grad1(inp[i]) * dout[i];
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

static void f16_from_f32_scalar(const float *x, int n, uint16_t *h) {
    for (int i = 0; i < n; i++) h[i] = f32_to_f16_sat(x[i]);
}

static int q8_0_from_f32_scalar(const float *x, int n, void *dst) { return quant_rows(DT_Q8_0, x, 1, n, dst, NULL); }

static void quant_x_scalar(const float *x, int n, int16_t *q, float *d, float *s, void *bytes, XQ *xq) {
    blk_quant_x(x, n, q, d, s);
    *xq = (XQ){q, d, s, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    blk_quant_x_bytes(xq, n, bytes);
}

// A table row naming one kernel per element type.
#define ALL_TYPES(K)                                                                                  \
    {[DT_F32] = K##_F32, [DT_F16] = K##_F16, [DT_BF16] = K##_BF16, [DT_Q8_0] = K##_Q8_0, [DT_Q4_0] = K##_Q4_0, \
     [DT_Q4_1] = K##_Q4_1, [DT_Q4_K] = K##_Q4_K, [DT_Q6_K] = K##_Q6_K, [DT_I8_AFFINE] = K##_I8_AFFINE}
const Kernels kern_scalar_table = {
    .name = "scalar",
    .row_f32 = ALL_TYPES(row),
    .mv_in_out = ALL_TYPES(in_out),
    .mv_out_in = ALL_TYPES(out_in),
    .mv_out_in_fx = {[DT_Q8_0] = out_in_fx_Q8_0},
    .mv_out_in_q = {[DT_Q8_0] = out_in_q_Q8_0, [DT_Q4_0] = out_in_q_Q4_0, [DT_Q4_1] = out_in_q_Q4_1,
                    [DT_Q4_K] = out_in_q_Q4_K, [DT_Q6_K] = out_in_q_Q6_K},
    .quant_x = quant_x_scalar,
    .softmax = softmax_scalar,
    .layernorm = layernorm_scalar,
    .rmsnorm = rmsnorm_scalar,
    .gelu_erf = gelu_erf_scalar,
    .swiglu = swiglu_scalar,
    .gelu_tanh_to = gelu_tanh_to_scalar,
    .gelu_tanh_backward = gelu_tanh_backward_scalar,
    .f16_from_f32 = f16_from_f32_scalar,
    .q8_0_from_f32 = q8_0_from_f32_scalar,
};
