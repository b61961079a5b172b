// test_kernels.c - every kernel table (scalar, avx2, avx512, avx512vnni), forced in turn, against
// double-precision references: row conversion, both matrix-vector layouts and
// linear_forward (matrix-vector and GEMM paths, 1-3 threads) in every element type (the
// float types' kernels also on weights starting at every kind of byte offset; the
// quantized ones as random blocks, decoded by blk_decode, which the reference suite holds to
// the gguf package), the prefill tiles of the tables that have them, GELU
// (tanh and erf; the training pass's tanh GELU out of place and its derivative), SwiGLU's gate,
// softmax, LayerNorm and RMSNorm, at sizes that are and are not
// multiples of the vector widths.
// A table this CPU cannot run is reported as not tested here; the others still run.
//
// Tolerances: a dot product of n terms may be off by 1e-5 of sum |w_i x_i| (float
// accumulation in any order; an indexing or conversion mistake is off by O(1) of it);
// GELU, SwiGLU and softmax by 2e-6 relative (the vector exp is good to about 2e-7, erf to
// 1.5e-7), LayerNorm and RMSNorm by 1e-5.
#include <stdint.h>
#include <stdlib.h>

#include "../check.h"
#include "eval/sample.h"
#include "kern/blocks.h"
#include "kern/kernels.h"
#include "kern/ops.h"
#include "kern/pool.h"
#include "kern/quant.h"

static Rng rng;
static const char *path; // the table under test, for messages

static float frand(void) { return rng_uniform(&rng) * 2 - 1; }

// A stored weight of rows x cols elements (cols a multiple of the block), and its exact f32
// values. Block types get random bytes with sane random scales (the block layouts and their
// decoding, blk_decode, are checked against the gguf package by the reference suite).
typedef struct {
    DType dt;
    void *data;
    float *val;
} Stored;

static uint16_t rand_scale(void) { return f32_to_f16(0.001f + rng_uniform(&rng) * 0.02f); }

static Stored stored_new(DType dt, int64_t rows, int64_t cols) {
    const int64_t n = rows * cols;
    const size_t rb = dtype_row_bytes(dt, cols);
    Stored s = {dt, malloc(rb * (size_t)rows + 64), malloc(sizeof(float) * (size_t)n)};
    unsigned char *bytes = s.data;
    for (size_t i = 0; i < rb * (size_t)rows; i++) bytes[i] = (unsigned char)(rng_uniform(&rng) * 256);
    for (int64_t i = 0; i < n; i++) {
        float v = frand();
        switch (dt) {
        case DT_F32: ((float *)s.data)[i] = s.val[i] = v; break;
        case DT_F16: ((uint16_t *)s.data)[i] = f32_to_f16(v), s.val[i] = f16_to_f32(f32_to_f16(v)); break;
        case DT_BF16: ((uint16_t *)s.data)[i] = f32_to_bf16(v), s.val[i] = bf16_to_f32(f32_to_bf16(v)); break;
        default: break;
        }
    }
    if (dtype_block(dt) > 1) // random quantized values, sane scales (where each type keeps them)
        for (int64_t i = 0; i < n; i += dtype_block(dt)) {
            unsigned char *b = bytes + dtype_bytes(dt, i);
            uint16_t d = rand_scale(), m = rand_scale();
            memcpy(b + (dt == DT_Q6_K ? 208 : 0), &d, 2);
            if (dt == DT_Q4_1 || dt == DT_Q4_K) memcpy(b + 2, &m, 2);
            blk_decode(dt, b, s.val + i);
        }
    if (dt == DT_I8_AFFINE)
        for (int64_t r = 0; r < rows; r++) {
            unsigned char *row = bytes + rb * (size_t)r;
            float sc = 0.001f + rng_uniform(&rng) * 0.02f;
            int32_t z = (int32_t)(rng_uniform(&rng) * 41) - 20;
            memcpy(row, &sc, 4), memcpy(row + 4, &z, 4);
            for (int64_t c = 0; c < cols; c++) s.val[r * cols + c] = sc * (float)((int8_t)row[8 + c] - z);
        }
    return s;
}

// n rounded up to whole blocks of dt
static int whole(DType dt, int n) { return (n + dtype_block(dt) - 1) / dtype_block(dt) * dtype_block(dt); }

static void stored_free(Stored *s) { free(s->data), free(s->val); }

// x as the block types' [out, in] products take it (blk_quant_x: int16 blocks of 32): their
// reference multiplies the weights with this x; n a multiple of 32.
static float *xq_values(const float *x, int n) {
    int16_t *q = malloc(sizeof(int16_t) * (size_t)n);
    float *d = malloc(sizeof(float) * (size_t)(n / 32 + 1)), *s = malloc(sizeof(float) * (size_t)(n / 32 + 1));
    float *v = malloc(sizeof(float) * (size_t)n);
    blk_quant_x(x, n, q, d, s);
    for (int i = 0; i < n; i++) v[i] = d[i / 32] * (float)q[i];
    // the quantized x is within half a step of x (and the rounding of x * 32767 / max)
    for (int i = 0; i < n; i++) CHECK(fabsf(v[i] - x[i]) <= 0.51f * d[i / 32] + 1e-37f);
    free(q), free(d), free(s);
    return v;
}

// |got - (y0 + sum_i w[i, j] x[i])| over the scale of the terms.
static double dot_err(const float *w, int64_t stride_i, int64_t stride_j, const float *x, int in, int j, float got,
                      float y0) {
    double ref = y0, mag = fabs(y0);
    for (int i = 0; i < in; i++) {
        double p = (double)w[i * stride_i + j * stride_j] * x[i];
        ref += p, mag += fabs(p);
    }
    return fabs(got - ref) / (mag > 1e-30 ? mag : 1e-30);
}

static void check_err(const char *what, DType dt, int in, int out, double err, double tol) {
    if (!(err <= tol)) {
        fprintf(stderr, "%s: %s %s in=%d out=%d: expected error <= %g of sum |w x|, got %g\n", path, what,
                dtype_name(dt), in, out, tol, err);
        check_failures++;
    }
}

static void test_rows(const Kernels *k) {
    for (int dt = 0; dt < DT_COUNT; dt++) {
        Stored s = stored_new((DType)dt, 1, 256 * 5);
        float out[256 * 5 + 1];
        int64_t offs[] = {0, 1, 7, 32, 65}, lens[] = {1, 5, 8, 15, 16, 17, 31, 33, 1000};
        for (int a = 0; a < 5; a++)
            for (int b = 0; b < 9; b++) {
                int64_t off = offs[a], n = lens[b];
                const int blk = dtype_block((DType)dt);
                off = off / blk * blk, n = whole((DType)dt, (int)n);
                if (off + n > 256 * 5) off = 0;
                memset(out, 0xff, sizeof out);
                k->row_f32[dt](s.data, off, n, out);
                int bad = -1;
                for (int64_t i = 0; i < n && bad < 0; i++)
                    if (memcmp(&out[i], &s.val[off + i], 4)) bad = (int)i;
                if (bad >= 0) {
                    fprintf(stderr, "%s: row_f32 %s off=%lld n=%lld: element %d expected %.9g, got %.9g\n", path,
                            dtype_name((DType)dt), (long long)off, (long long)n, bad, s.val[off + bad], out[bad]);
                    check_failures++;
                }
                CHECK(out[n] != out[n]); // nothing written past n (0xffffffff is a NaN)
            }
        stored_free(&s);
    }
}

// Both matrix-vector layouts straight from the table, every type, odd and even sizes.
static void test_matvec(const Kernels *k) {
    static const int sizes[][2] = {{1, 1},   {1, 8},   {8, 1},    {3, 5},    {7, 9},    {8, 8},   {9, 15},
                                   {16, 16}, {17, 31}, {31, 17},  {32, 32},  {33, 47},  {64, 96}, {100, 3},
                                   {5, 100}, {96, 64}, {768, 77}, {77, 768}, {3072, 40}, {40, 3072},
                                   {8448, 9}}; // past the 8192 columns the quantized kernels sum x for at once
    int n_sizes = (int)(sizeof sizes / sizeof sizes[0]);
    for (int dt = 0; dt < DT_COUNT; dt++)
        for (int s = 0; s < n_sizes; s++) {
            int in = sizes[s][0], out = sizes[s][1];
            in = whole((DType)dt, in); // rows of whole blocks
            Stored w = stored_new((DType)dt, out, in);
            float *x = malloc(sizeof(float) * (size_t)in), *y = malloc(sizeof(float) * (size_t)(out + 1));
            for (int i = 0; i < in; i++) x[i] = frand();
            // [out, in]; block types multiply x as blk_quant_x rounds it
            const bool blocks = dtype_block((DType)dt) > 1;
            float *xr = blocks ? xq_values(x, in) : x;
            y[out] = 12345.0f;
            k->mv_out_in[dt](w.data, in, out, x, y);
            double worst = 0;
            for (int j = 0; j < out; j++) worst = check_worst(worst, dot_err(w.val, 1, in, xr, in, j, y[j], 0));
            check_err("mv_out_in", (DType)dt, in, out, worst, 1e-5);
            CHECK(y[out] == 12345.0f);
            CHECK((k->mv_out_in_fx[dt] != NULL) == (dt == DT_Q8_0)); // the Q8_0 KV cache's scores
            if (k->mv_out_in_fx[dt]) { // x as it is, not rounded (a query: 1e-5 fails x quantized)
                k->mv_out_in_fx[dt](w.data, in, out, x, y);
                worst = 0;
                for (int j = 0; j < out; j++) worst = check_worst(worst, dot_err(w.val, 1, in, x, in, j, y[j], 0));
                check_err("mv_out_in_fx", (DType)dt, in, out, worst, 1e-5);
                CHECK(y[out] == 12345.0f);
            }
            if (blocks) { // the same on x quantized beforehand (what linear_forward runs)
                int16_t *q = malloc(sizeof(int16_t) * (size_t)in);
                float *d = malloc(sizeof(float) * (size_t)(in / 32)), *sx = malloc(sizeof(float) * (size_t)(in / 32));
                void *bytes = malloc(blk_xq_bytes(in));
                blk_quant_x(x, in, q, d, sx);
                XQ xq = {q, d, sx, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
                blk_quant_x_bytes(&xq, in, bytes);
                k->mv_out_in_q[dt](w.data, in, out, &xq, y);
                worst = 0;
                for (int j = 0; j < out; j++) worst = check_worst(worst, dot_err(w.val, 1, in, xr, in, j, y[j], 0));
                check_err("mv_out_in_q", (DType)dt, in, out, worst, 1e-5);
                CHECK(y[out] == 12345.0f);
                free(q), free(d), free(sx), free(xr), free(bytes);
            }
            // [in, out]: in rows of out (block types: out a multiple of the block)
            if (out % dtype_block((DType)dt) == 0) {
                Stored v = stored_new((DType)dt, in, out);
                float *y0 = malloc(sizeof(float) * (size_t)out);
                for (int j = 0; j < out; j++) y[j] = y0[j] = frand(); // it accumulates into y
                k->mv_in_out[dt](v.data, out, in, out, x, y);
                worst = 0;
                for (int j = 0; j < out; j++) worst = check_worst(worst, dot_err(v.val, out, 1, x, in, j, y[j], y0[j]));
                free(y0);
                stored_free(&v);
                check_err("mv_in_out", (DType)dt, in, out, worst, 1e-5);
                CHECK(y[out] == 12345.0f);
            }
            free(x), free(y);
            stored_free(&w);
        }
}

// The table's quantization of x (QuantXFn) equals blk_quant_x and blk_quant_x_bytes bit for
// bit: random blocks, a block of zeros, one below 1e-30, one with a single large value, ties
// at half a step and values at the clamp.
static void test_quant_x(const Kernels *k) {
    enum { N = 32 * 12 };
    float x[N];
    for (int i = 0; i < N; i++) x[i] = frand() * (float)(1 << (i / 32 % 5));
    for (int i = 32; i < 64; i++) x[i] = 0.0f;
    for (int i = 64; i < 96; i++) x[i] = 1e-31f * (float)(i - 80);
    x[100] = 1e4f;
    for (int i = 128; i < 160; i++) x[i] = (float)(i - 144) * 0.5f; // amax 8: steps of 8/32767
    x[170] = -x[161] - 7.0f;
    int16_t q[N], q2[N];
    float d[N / 32], s[N / 32], d2[N / 32], s2[N / 32];
    static float bytes[(2 * (N / 4) + N / 16 + N) + 1], bytes2[(2 * (N / 4) + N / 16 + N) + 1];
    blk_quant_x(x, N, q, d, s);
    XQ a = {q, d, s, NULL, NULL, NULL, NULL, NULL, NULL, NULL}, b;
    blk_quant_x_bytes(&a, N, bytes);
    k->quant_x(x, N, q2, d2, s2, bytes2, &b);
    CHECK(b.q == q2 && b.d == d2 && b.s == s2 && b.h && b.l && b.d4 && b.s16 && b.hc);
    CHECK(!memcmp(q, q2, sizeof q) && !memcmp(d, d2, sizeof d) && !memcmp(s, s2, sizeof s));
    CHECK(!memcmp(a.h, b.h, N) && !memcmp(a.l, b.l, N) && !memcmp(a.hc, b.hc, sizeof(int32_t) * N / 4));
    CHECK(!memcmp(a.hk, b.hk, N) && !memcmp(a.lk, b.lk, N) && a.hk[32] == a.h[64] && a.lk[64] == a.l[32]);
    CHECK(!memcmp(a.d4, b.d4, sizeof(float) * N / 4) && !memcmp(a.s16, b.s16, sizeof(float) * N / 16));
}

// The block types' integer dot products at their extremes, against double sums of the same
// quantized inputs (blk_decode's weights times d * q): x at +-XQ_MAX after scaling (all one
// sign, or alternating in pairs, or random), weights at the ends of their range (Q4 nibbles
// all 15 or all 0, Q6_K values all 63 or all 0 with scales +127 and -128, Q4_K scales and mins
// all 63, Q8_0 all 127 or -128), then random bytes with the same extreme scales. A product
// that overflows or saturates (an int16 or int8 multiply-add summing in pairs) or a wrong
// offset (Q6_K's 32, Q8_0's 128 in vpdpbusd) is off by far more than the 1e-5 of sum |w x|.
static void fill_extreme(DType dt, unsigned char *b, int pattern) {
    const size_t bb = dtype_bytes(dt, dtype_block(dt));
    const unsigned char v = pattern == 0 ? 0xFF : pattern == 1 ? 0x00 : 0;
    for (size_t i = 0; i < bb; i++) b[i] = pattern >= 2 ? (unsigned char)(rng_uniform(&rng) * 256) : v;
    uint16_t d = rand_scale(), m = rand_scale();
    switch (dt) {
    case DT_Q8_0:
        if (pattern < 2) memset(b + 2, pattern == 0 ? 127 : 0x80, 32);
        memcpy(b, &d, 2);
        break;
    case DT_Q4_0: memcpy(b, &d, 2); break;
    case DT_Q4_1: memcpy(b, &d, 2), memcpy(b + 2, &m, 2); break;
    case DT_Q4_K: memcpy(b, &d, 2), memcpy(b + 2, &m, 2), memset(b + 4, 0xFF, 12); break;
    case DT_Q6_K:
        memset(b + 192, pattern == 1 || pattern == 3 ? 0x80 : 127, 16);
        memcpy(b + 208, &d, 2);
        break;
    default: break;
    }
}

static void test_extremes(const Kernels *k) {
    enum { IN = 512, OUT = 9, XS = 4 };
    const DType types[] = {DT_Q8_0, DT_Q4_0, DT_Q4_1, DT_Q4_K, DT_Q6_K};
    for (int t = 0; t < 5; t++) {
        const DType dt = types[t];
        const size_t rb = dtype_row_bytes(dt, IN), bb = dtype_bytes(dt, dtype_block(dt));
        unsigned char *w = malloc(rb * OUT);
        float *wv = malloc(sizeof(float) * IN * OUT);
        for (int r = 0; r < OUT; r++)
            for (int i = 0; i < IN; i += dtype_block(dt)) {
                unsigned char *b = w + rb * (size_t)r + bb * (size_t)(i / dtype_block(dt));
                fill_extreme(dt, b, r % 4);
                blk_decode(dt, b, wv + (size_t)r * IN + i);
            }
        for (int p = 0; p < XS; p++) {
            float x[IN], y[OUT + 1], d[IN / 32], sx[IN / 32];
            int16_t q[IN];
            float *bytes = malloc(blk_xq_bytes(IN));
            const float a = 0.5f + (float)p;
            for (int i = 0; i < IN; i++)
                x[i] = p == 0 ? a : p == 1 ? -a : p == 2 ? (i / 2 % 2 ? -a : a) : (i % 32 == 5 ? a : frand());
            XQ xq;
            k->quant_x(x, IN, q, d, sx, bytes, &xq);
            if (p < 3)
                for (int i = 0; i < IN; i++) CHECK(q[i] == (x[i] > 0 ? XQ_MAX : -XQ_MAX));
            y[OUT] = 12345.0f;
            k->mv_out_in_q[dt](w, IN, OUT, &xq, y);
            CHECK(y[OUT] == 12345.0f);
            double worst = 0;
            for (int r = 0; r < OUT; r++) {
                double ref = 0, mag = 0;
                for (int i = 0; i < IN; i++) {
                    const double prod = (double)wv[(size_t)r * IN + i] * ((double)d[i / 32] * q[i]);
                    ref += prod, mag += fabs(prod);
                }
                worst = check_worst(worst, fabs(y[r] - ref) / (mag > 1e-30 ? mag : 1e-30));
            }
            check_err("extremes", dt, IN, OUT, worst, 1e-5);
            free(bytes);
        }
        free(w), free(wv);
    }
}

// The float types' matrix-vector kernels on weights that start anywhere (a safetensors header
// leaves tensors at any byte: GPT-2 F16's 40 bytes past a cache line): the vector steps start
// where a row meets a cache line, the columns before in masked steps, so every start offset
// runs a different split. Each is held to the reference, and [in, out] results are the same
// bits at every offset (each column is computed alike whichever step it falls in); so are the
// prefill tiles' (GemmFn, 13 rows, both layouts), where the table has them.
static void test_offsets(const Kernels *k) {
    static const DType dts[] = {DT_F32, DT_F16, DT_BF16};
    static const int sizes[][2] = {{9, 768}, {768, 9}, {40, 100}, {17, 33}, {64, 3}};
    static const int offs[] = {0, 1, 2, 4, 6, 24, 40, 62, 63};
    for (int d = 0; d < 3; d++)
        for (int s = 0; s < 5; s++) {
            const DType dt = dts[d];
            const int in = sizes[s][0], out = sizes[s][1], es = dt == DT_F32 ? 4 : 2;
            Stored a = stored_new(dt, in, out), b = stored_new(dt, out, in); // [in, out] and [out, in]
            const size_t na = (size_t)in * out * es;
            unsigned char *buf = malloc(na + 128);
            unsigned char *base = buf + (64 - (uintptr_t)buf % 64) % 64; // a cache line
            float *x = malloc(sizeof(float) * (size_t)in), *y = malloc(sizeof(float) * (size_t)(out + 1));
            float *y0 = malloc(sizeof(float) * (size_t)out), *yfirst = malloc(sizeof(float) * (size_t)out);
            for (int i = 0; i < in; i++) x[i] = frand();
            for (int j = 0; j < out; j++) y0[j] = frand();
            enum { GT = 13 };
            float *xg = malloc(sizeof(float) * (size_t)GT * in), *yg = malloc(sizeof(float) * (size_t)GT * out);
            float *gfirst = malloc(sizeof(float) * 2 * (size_t)GT * out), *scr = malloc(sizeof(float) * gemm_scratch_floats(GT));
            for (int i = 0; i < GT * in; i++) xg[i] = frand();
            for (int o = 0; o < 9; o++) {
                memcpy(base + offs[o], a.data, na);
                memcpy(y, y0, sizeof(float) * (size_t)out);
                y[out] = 12345.0f;
                k->mv_in_out[dt](base + offs[o], out, in, out, x, y);
                double worst = 0;
                for (int j = 0; j < out; j++) worst = check_worst(worst, dot_err(a.val, out, 1, x, in, j, y[j], y0[j]));
                char what[64];
                snprintf(what, sizeof what, "mv_in_out at byte %d of a line", offs[o]);
                check_err(what, dt, in, out, worst, 1e-5);
                CHECK(y[out] == 12345.0f);
                if (o == 0) memcpy(yfirst, y, sizeof(float) * (size_t)out);
                else if (memcmp(yfirst, y, sizeof(float) * (size_t)out)) {
                    fprintf(stderr, "%s: mv_in_out %s in=%d out=%d at byte %d of a line: not the bits of byte 0\n", path,
                            dtype_name(dt), in, out, offs[o]);
                    check_failures++;
                }
                memcpy(base + offs[o], b.data, na);
                k->mv_out_in[dt](base + offs[o], in, out, x, y);
                worst = 0;
                for (int j = 0; j < out; j++) worst = check_worst(worst, dot_err(b.val, 1, in, x, in, j, y[j], 0));
                snprintf(what, sizeof what, "mv_out_in at byte %d of a line", offs[o]);
                check_err(what, dt, in, out, worst, 1e-5);
                CHECK(y[out] == 12345.0f);
                for (int layout = 0; k->gemm[dt] && layout < 2; layout++) { // the prefill tiles, 13 rows
                    memcpy(base + offs[o], layout ? b.data : a.data, na);
                    k->gemm[dt](xg, GT, in, base + offs[o], layout, out, 0, out, yg, false, NULL, scr);
                    worst = 0;
                    for (int t = 0; t < GT; t++)
                        for (int j = 0; j < out; j++)
                            worst = check_worst(worst, dot_err(layout ? b.val : a.val, layout ? 1 : out, layout ? in : 1,
                                                               xg + (size_t)t * in, in, j, yg[(size_t)t * out + j], 0));
                    snprintf(what, sizeof what, "gemm %s at byte %d of a line", layout ? "[out,in]" : "[in,out]", offs[o]);
                    check_err(what, dt, in, out, worst, 1e-5);
                    float *first = gfirst + (size_t)layout * GT * out;
                    if (o == 0) memcpy(first, yg, sizeof(float) * (size_t)GT * out);
                    else if (memcmp(first, yg, sizeof(float) * (size_t)GT * out)) {
                        fprintf(stderr, "%s: %s %s in=%d out=%d: not the bits of byte 0\n", path, what, dtype_name(dt), in, out);
                        check_failures++;
                    }
                }
            }
            free(xg), free(yg), free(gfirst), free(scr);
            free(buf), free(x), free(y), free(y0), free(yfirst);
            stored_free(&a), stored_free(&b);
        }
}

// The table's prefill tiles (GemmFn) where it has them, both layouts: against the reference at
// sizes around the tiles' 12 rows (2, 12, 13, 40 and 1,037 rows), 32 columns, 128-column blocks
// and 512-row passes, on column ranges that start and end anywhere; acc adds to what out
// holds, a bias starts every row, else every output in range is written (preset NaN); nothing
// outside the range is touched; and an output is the same bit for bit whichever range it is
// made in (so a team's split cannot change the logits).
static void gemm_case(const Kernels *k, DType dt, int layout, int T, int in, int n) {
    Stored w = layout ? stored_new(dt, n, in) : stored_new(dt, in, n);
    const int64_t si = layout ? 1 : n, sj = layout ? in : 1; // W[i, j] of w.val
    float *x = malloc(sizeof(float) * (size_t)T * in), *y = malloc(sizeof(float) * (size_t)T * n);
    float *y0 = malloc(sizeof(float) * (size_t)T * n), *yw = malloc(sizeof(float) * (size_t)T * n);
    float *bias = malloc(sizeof(float) * (size_t)n), *scr = malloc(sizeof(float) * gemm_scratch_floats(T));
    for (int i = 0; i < T * in; i++) x[i] = frand();
    for (int i = 0; i < T * n; i++) y0[i] = frand();
    for (int j = 0; j < n; j++) bias[j] = frand();
    // the whole range, plain: the reference for the ranges below, bit for bit
    for (int i = 0; i < T * n; i++) yw[i] = NAN;
    k->gemm[dt](x, T, in, w.data, layout, n, 0, n, yw, false, NULL, scr);
    const int j0 = n > 4 ? 3 : 0, j1 = n > 4 ? n - 2 : n;
    static const char *const modes[] = {"", " acc", " bias"}; // out = 0 / out / bias, + x W
    for (int m = 0; m < 3; m++) {
        for (int i = 0; i < T * n; i++) {
            const int j = i % n;
            y[i] = m == 1 || j < j0 || j >= j1 ? y0[i] : NAN;
        }
        k->gemm[dt](x, T, in, w.data, layout, n, j0, j1, y, m == 1, m == 2 ? bias : NULL, scr);
        double worst = 0;
        int outside = 0, differ = 0;
        for (int t = 0; t < T; t++)
            for (int j = 0; j < n; j++) {
                const float got = y[(size_t)t * n + j];
                if (j < j0 || j >= j1) {
                    outside += memcmp(&got, &y0[(size_t)t * n + j], sizeof got) != 0;
                    continue;
                }
                const float start = m == 1 ? y0[(size_t)t * n + j] : m == 2 ? bias[j] : 0;
                worst = check_worst(worst, dot_err(w.val, si, sj, x + (size_t)t * in, in, j, got, start));
                differ += m == 0 && memcmp(&got, &yw[(size_t)t * n + j], sizeof got) != 0;
            }
        char what[80];
        snprintf(what, sizeof what, "gemm %s T=%d columns %d..%d%s", layout ? "[out,in]" : "[in,out]", T, j0, j1,
                 modes[m]);
        check_err(what, dt, in, n, worst, 1e-5);
        if (outside || differ) {
            fprintf(stderr, "%s: %s %s in=%d: %d outputs outside the range changed, %d differ from the whole range's\n",
                    path, what, dtype_name(dt), in, outside, differ);
            check_failures++;
        }
    }
    free(x), free(y), free(y0), free(yw), free(bias), free(scr);
    stored_free(&w);
}

static void test_gemm(const Kernels *k) {
    static const int Ts[] = {2, 12, 13, 40}, ins[] = {1, 7, 16, 511, 513, 1030}, outs[] = {1, 17, 33, 70, 300};
    for (int dt = 0; dt < DT_COUNT; dt++) {
        if (!k->gemm[dt]) continue;
        for (int layout = 0; layout < 2; layout++) {
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 6; b++)
                    for (int c = 0; c < 5; c++) gemm_case(k, (DType)dt, layout, Ts[a], ins[b], outs[c]);
            gemm_case(k, (DType)dt, layout, GEMM_TB + 5, 40, 33); // rows past one block of GEMM_TB
        }
    }
}

// linear_forward: matrix-vector (split by rows or columns) and GEMM (panels for non-F32; an
// [in, out] weight of more than 512 rows in slices of 256 rows, the last one shorter here), with
// and without a bias.
static void test_linear(void) {
    static const int sizes[][2] = {{40, 56}, {33, 17}, {1, 9}, {65, 129}, {768, 200}, {130, 300}, {600, 70}};
    const int n_sizes = (int)(sizeof sizes / sizeof sizes[0]);
    for (int nth = 1; nth <= 3; nth++) {
        Pool *pool = pool_new(nth);
        for (int dt = 0; dt < DT_COUNT; dt++)
            for (int s = 0; s < n_sizes; s++)
                for (int layout = 0; layout < 2; layout++) {
                    int in = sizes[s][0], out = sizes[s][1];
                    // blocks run along the contiguous dimension
                    if (layout) in = whole((DType)dt, in);
                    else out = whole((DType)dt, out);
                    Stored w = layout ? stored_new((DType)dt, out, in) : stored_new((DType)dt, in, out);
                    int Tmax = 17;
                    float *x = malloc(sizeof(float) * (size_t)Tmax * in), *y = malloc(sizeof(float) * (size_t)Tmax * out);
                    float *bias = malloc(sizeof(float) * (size_t)out);
                    for (int i = 0; i < Tmax * in; i++) x[i] = frand();
                    for (int j = 0; j < out; j++) bias[j] = frand();
                    // decoding multiplies a block type's [out, in] weights with x quantized
                    const bool xq = layout && dtype_block((DType)dt) > 1;
                    float *x1 = xq ? xq_values(x, in) : x;
                    for (int k = 0; k < 4; k++) {
                        const int T = k < 2 ? 1 : Tmax;
                        const float *xr = T == 1 ? x1 : x;
                        // with a bias and without (the GEMM then starts from beta = 0)
                        const float *bs = k % 2 ? NULL : bias;
                        Linear L = {.w = {.dt = (DType)dt, .ndim = 2, .n = (int64_t)in * out, .data = w.data},
                                    .out_in = layout, .bias = bs, .in = in, .out = out};
                        for (int i = 0; i < T * out; i++) y[i] = NAN; // every output written
                        linear_forward(pool, y, x, &L, T);
                        double worst = 0;
                        for (int t = 0; t < T; t++)
                            for (int j = 0; j < out; j++) {
                                double ref = bs ? bs[j] : 0, mag = bs ? fabs(bs[j]) : 0;
                                for (int i = 0; i < in; i++) {
                                    double p = (double)w.val[layout ? (int64_t)j * in + i : (int64_t)i * out + j] *
                                               xr[(size_t)t * in + i];
                                    ref += p, mag += fabs(p);
                                }
                                double d = fabs(y[(size_t)t * out + j] - ref) / (mag > 0 ? mag : 1);
                                worst = check_worst(worst, d);
                            }
                        char what[64];
                        snprintf(what, sizeof what, "linear %s T=%d threads=%d%s", layout ? "[out,in]" : "[in,out]", T,
                                 nth, bs ? "" : " no bias");
                        check_err(what, (DType)dt, in, out, worst, 1e-5);
                    }
                    if (xq) free(x1);
                    free(x), free(y), free(bias);
                    stored_free(&w);
                }
        pool_free(pool);
    }
}

// linear_forward_n (q/k/v, gate/up in one decoding section): each output bit for bit what
// linear_forward gives, over mixed layouts and types, 1-3 threads, decoding and prefill.
static void test_linear_n(void) {
    static const DType dts[] = {DT_F32, DT_F16, DT_Q8_0, DT_Q4_K};
    static const int outs[] = {40, 256, 520, 96};
    const int in = 256, T = 3;
    for (int nth = 1; nth <= 3; nth++) {
        Pool *pool = pool_new(nth);
        for (int mix = 0; mix < 4; mix++) {
            int n = 2 + mix % 3;
            Stored w[4];
            Linear L[4];
            const Linear *ls[4];
            float *y[4], *y1[4], *bias = malloc(sizeof(float) * 520), *x = malloc(sizeof(float) * T * in);
            for (int i = 0; i < 520; i++) bias[i] = frand();
            for (int i = 0; i < T * in; i++) x[i] = frand();
            for (int i = 0; i < n; i++) {
                DType dt = dts[(i + mix) % 4];
                int layout = dtype_block(dt) > 1 || (i + mix) % 2; // blocks: [out, in]
                w[i] = layout ? stored_new(dt, outs[i], in) : stored_new(dt, in, outs[i]);
                L[i] = (Linear){.w = {.dt = dt, .ndim = 2, .n = (int64_t)in * outs[i], .data = w[i].data},
                                .out_in = layout, .bias = i % 2 ? bias : NULL, .in = in, .out = outs[i]};
                ls[i] = &L[i];
                y[i] = malloc(sizeof(float) * T * outs[i]);
                y1[i] = malloc(sizeof(float) * T * outs[i]);
            }
            for (int t = 1; t <= T; t += T - 1) {
                linear_forward_n(pool, y, x, ls, n, t);
                for (int i = 0; i < n; i++) {
                    linear_forward(pool, y1[i], x, ls[i], t);
                    if (memcmp(y[i], y1[i], sizeof(float) * t * outs[i])) {
                        fprintf(stderr, "%s: linear_forward_n threads=%d T=%d part %d (%s, %s): differs from linear_forward\n",
                                path, nth, t, i, dtype_name(L[i].w.dt), L[i].out_in ? "[out,in]" : "[in,out]");
                        check_failures++;
                    }
                }
            }
            for (int i = 0; i < n; i++) stored_free(&w[i]), free(y[i]), free(y1[i]);
            free(bias), free(x);
        }
        pool_free(pool);
    }
}

// Decoding through [in, out] weights: the same bits on 1 to 5 threads, more threads than row
// blocks among them (the rows are summed in a fixed number of blocks, first come first served,
// added in block order: kern/ops.c).
static void test_decode_threads(void) {
    static const DType dts[] = {DT_F32, DT_F16, DT_BF16};
    const int in = 200, out = 130;
    for (int d = 0; d < 3; d++) {
        Stored w = stored_new(dts[d], in, out);
        Linear L = {.w = {.dt = dts[d], .ndim = 2, .n = (int64_t)in * out, .data = w.data}, .in = in, .out = out};
        float x[200], y1[130], y[130];
        for (int i = 0; i < in; i++) x[i] = frand();
        for (int nth = 1; nth <= 5; nth++) {
            Pool *pool = pool_new(nth);
            for (int rep = 0; rep < 20; rep++) { // schedules differ from run to run; the result must not
                linear_forward(pool, nth == 1 && rep == 0 ? y1 : y, x, &L, 1);
                if ((nth > 1 || rep > 0) && memcmp(y, y1, sizeof y)) {
                    fprintf(stderr, "%s: decoding %s [in,out] on %d threads differs from 1 thread\n", path,
                            dtype_name(dts[d]), nth);
                    check_failures++;
                    break;
                }
            }
            pool_free(pool);
        }
        stored_free(&w);
    }
}


static void test_elementwise(void) {
    // GELU (inference, in place) over a wide range, at lengths with and without a tail: relative
    // to itself as the training pass's below (0.5 x (1 + tanh u) lost that for x below about -3:
    // a relative error of 0.5 at x = -5)
    int lens[] = {1, 7, 8, 9, 16, 17, 33, 4003};
    for (int a = 0; a < 8; a++) {
        int n = lens[a];
        float *x = malloc(sizeof(float) * (size_t)n);
        for (int i = 0; i < n; i++) x[i] = n == 1 ? -5.0f : -20.0f + 40.0f * i / (n - 1);
        float *x0 = malloc(sizeof(float) * (size_t)n);
        memcpy(x0, x, sizeof(float) * (size_t)n);
        gelu_tanh(x, n);
        double worst = 0;
        for (int i = 0; i < n; i++) {
            double v = x0[i], u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
            double r = v / (1 + exp(-2 * u));
            double rel = fabs(r) > 1e-30 ? fabs(x[i] - r) / fabs(r) : fabs(x[i] - r) / 1e-30 * 1e-6;
            worst = check_worst(worst, rel / (1 + fabs(u)));
        }
        if (!(worst < 2e-6))
            fprintf(stderr, "%s: gelu n=%d: expected relative error / (1 + |u|) < 2e-6, got %g\n", path, n, worst);
        CHECK(worst < 2e-6);
        free(x), free(x0);
    }
    // the training pass's GELU and its derivative (dinp += gelu'(x) dout) over [-12, 12]: the
    // output relative to itself (no cancellation for negative x; 1e-30 absolute below that), to
    // 2e-6 (1 + |u|) since u = k (x + c x^3) itself is rounded in float and e^(-2u) turns its
    // absolute error into a relative one; the derivative relative to the size of its two
    // terms, (1 + t) / 2 and x (1 - t^2) u' / 2
    for (int a = 0; a < 8; a++) {
        int n = lens[a];
        float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
        float *d = malloc(sizeof(float) * (size_t)n), *g = malloc(sizeof(float) * (size_t)n);
        for (int i = 0; i < n; i++) {
            x[i] = n == 1 ? -3.0f : -12.0f + 24.0f * i / (n - 1);
            d[i] = frand(), g[i] = frand();
        }
        float *g0 = malloc(sizeof(float) * (size_t)n);
        memcpy(g0, g, sizeof(float) * (size_t)n);
        gelu_tanh_to(y, x, n);
        gelu_tanh_backward(g, x, d, n);
        double worst = 0, worst_d = 0;
        for (int i = 0; i < n; i++) {
            double v = x[i], u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
            double r = v / (1 + exp(-2 * u)); // gelu_ref without its cancellation for negative x
            double rel = fabs(r) > 1e-30 ? fabs(y[i] - r) / fabs(r) : fabs(y[i] - r) / 1e-30 * 1e-6;
            worst = check_worst(worst, rel / (1 + fabs(u)));
            double sg = 1 / (1 + exp(-2 * u)); // (1 + t) / 2, and (1 - t^2) / 2 = 2 sg (1 - sg)
            double ta = sg, tb = 2 * v * sg * (1 - sg) * 0.7978845608028654 * (1 + 3 * 0.044715 * v * v);
            double want = g0[i] + (ta + tb) * d[i];
            // (g0 + g' d rounds to g0's precision too)
            double scale = (fabs(ta) + fabs(tb)) * fabs(d[i]) + 0.1 * fabs(g0[i]) + 1e-30;
            worst_d = check_worst(worst_d, fabs(g[i] - want) / scale);
        }
        if (!(worst < 2e-6))
            fprintf(stderr, "%s: gelu_tanh_to n=%d: expected relative error / (1 + |u|) < 2e-6, got %g\n", path, n,
                    worst);
        if (!(worst_d < 2e-6))
            fprintf(stderr, "%s: gelu_tanh_backward n=%d: expected relative error < 2e-6, got %g\n", path, n, worst_d);
        CHECK(worst < 2e-6);
        CHECK(worst_d < 2e-6);
        free(x), free(y), free(d), free(g), free(g0);
    }
    { // far out: gelu' is 0 (below) and 1 (above), finite, in the vector body and the tail alike
        float x[35], g[35], d[35];
        for (int i = 0; i < 35; i++) x[i] = (i % 2 ? 1 : -1) * (10.0f + 3e4f * (float)(i / 2) / 17), d[i] = 1, g[i] = 0;
        gelu_tanh_backward(g, x, d, 35);
        for (int i = 0; i < 35; i++)
            if (!(fabsf(g[i] - (x[i] > 0 ? 1.0f : 0.0f)) < 1e-3f)) {
                fprintf(stderr, "%s: gelu_tanh_backward at x = %g: expected %g, got %g\n", path, x[i], x[i] > 0 ? 1.0 : 0.0,
                        g[i]);
                check_failures++;
            }
    }
    // softmax: matches exp / sum, sums to one; -inf entries become exactly 0
    int slens[] = {1, 5, 8, 16, 17, 37, 1000};
    for (int a = 0; a < 7; a++) {
        int n = slens[a];
        float *s = malloc(sizeof(float) * (size_t)n);
        double *r = malloc(sizeof(double) * (size_t)n), mx = -1e300, z = 0;
        for (int i = 0; i < n; i++) {
            s[i] = (float)sin(i * 1.7) * 30.0f;
            if (i % 7 == 3) s[i] = -INFINITY;
            mx = fmax(mx, s[i]);
        }
        for (int i = 0; i < n; i++) z += r[i] = exp((double)s[i] - mx);
        softmax_inplace(s, n);
        double worst = 0, sum = 0;
        for (int i = 0; i < n; i++) {
            worst = check_worst(worst, fabs(s[i] - r[i] / z) / (r[i] / z > 1e-3 ? r[i] / z : 1e-3));
            sum += s[i];
            if (i % 7 == 3) CHECK(s[i] == 0.0f);
        }
        if (!(worst < 2e-6)) fprintf(stderr, "%s: softmax n=%d: expected error < 2e-6, got %g\n", path, n, worst);
        CHECK(worst < 2e-6);
        CHECK_NEAR(sum, 1.0, 1e-5);
        free(s), free(r);
    }
    // erf-GELU and SwiGLU's gate over a wide range, with and without a tail
    for (int a = 0; a < 8; a++) {
        int n = lens[a];
        float *x = malloc(sizeof(float) * (size_t)n), *g = malloc(sizeof(float) * (size_t)n);
        float *up = malloc(sizeof(float) * (size_t)n);
        for (int i = 0; i < n; i++) {
            x[i] = g[i] = n == 1 ? 0.5f : -20.0f + 40.0f * i / (n - 1);
            up[i] = frand();
        }
        gelu_erf(x, n);
        swiglu(g, up, n);
        double we = 0, ws = 0;
        for (int i = 0; i < n; i++) {
            double v = n == 1 ? 0.5 : (double)(-20.0f + 40.0f * i / (n - 1));
            double re = 0.5 * v * (1 + erf(v / sqrt(2.0))), rs = v / (1 + exp(-v)) * up[i];
            we = check_worst(we, fabs(x[i] - re) / (fabs(re) > 1 ? fabs(re) : 1));
            ws = check_worst(ws, fabs(g[i] - rs) / (fabs(rs) > 1 ? fabs(rs) : 1));
        }
        if (!(we < 2e-6)) fprintf(stderr, "%s: gelu_erf n=%d: expected error < 2e-6, got %g\n", path, n, we);
        if (!(ws < 2e-6)) fprintf(stderr, "%s: swiglu n=%d: expected error < 2e-6, got %g\n", path, n, ws);
        CHECK(we < 2e-6);
        CHECK(ws < 2e-6);
        free(x), free(g), free(up);
    }
    // RMSNorm, T = 3 rows
    for (int a = 0; a < 6; a++) {
        int C = (int[]){1, 7, 8, 17, 768, 1001}[a], T = 3;
        float *x = malloc(sizeof(float) * (size_t)T * C), *o = malloc(sizeof(float) * (size_t)T * C);
        float *w = malloc(sizeof(float) * (size_t)C);
        for (int i = 0; i < T * C; i++) x[i] = frand() * 3 + 1;
        for (int i = 0; i < C; i++) w[i] = frand();
        rmsnorm_forward(o, x, w, T, C, 1e-5f);
        double worst = 0;
        for (int t = 0; t < T; t++) {
            const float *xr = x + (size_t)t * C;
            double ss = 0;
            for (int i = 0; i < C; i++) ss += (double)xr[i] * xr[i];
            for (int i = 0; i < C; i++) worst = check_worst(worst, fabs(o[(size_t)t * C + i] - xr[i] / sqrt(ss / C + 1e-5) * w[i]));
        }
        if (!(worst < 1e-5)) fprintf(stderr, "%s: rmsnorm C=%d: expected error < 1e-5, got %g\n", path, C, worst);
        CHECK(worst < 1e-5);
        free(x), free(o), free(w);
    }
    // LayerNorm, with and without bias, T = 3 rows
    int clens[] = {1, 7, 8, 17, 768, 1001};
    for (int a = 0; a < 6; a++)
        for (int with_b = 0; with_b < 2; with_b++) {
            int C = clens[a], T = 3;
            float *x = malloc(sizeof(float) * (size_t)T * C), *o = malloc(sizeof(float) * (size_t)T * C);
            float *w = malloc(sizeof(float) * (size_t)C), *b = malloc(sizeof(float) * (size_t)C);
            for (int i = 0; i < T * C; i++) x[i] = frand() * 3 + 5; // an offset mean, as residuals have
            for (int i = 0; i < C; i++) w[i] = frand(), b[i] = frand();
            layernorm_forward(o, x, w, with_b ? b : NULL, T, C, 1e-5f);
            double worst = 0;
            for (int t = 0; t < T; t++) {
                const float *xr = x + (size_t)t * C;
                double m = 0, v = 0;
                for (int i = 0; i < C; i++) m += xr[i];
                m /= C;
                for (int i = 0; i < C; i++) v += (xr[i] - m) * (xr[i] - m);
                v /= C;
                for (int i = 0; i < C; i++) {
                    double r = (xr[i] - m) / sqrt(v + 1e-5) * w[i] + (with_b ? b[i] : 0);
                    worst = check_worst(worst, fabs(o[(size_t)t * C + i] - r));
                }
            }
            if (!(worst < 1e-5)) fprintf(stderr, "%s: layernorm C=%d: expected error < 1e-5, got %g\n", path, C, worst);
            CHECK(worst < 1e-5);
            free(x), free(o), free(w), free(b);
        }
}

// The F16 KV cache's store: bit for bit f32_to_f16_sat (nearest even, saturated at +-65504) over
// ties, F16's subnormals, its largest values and beyond, infinities and signed zeros, at lengths
// with and without a tail; a NaN stays a NaN.
static void test_f16_store(const Kernels *k) {
    static const float special[] = {0.0f, -0.0f, 1.0f, 1.00048828125f /* 1 + 2^-11: a tie, to even */,
                                    1.00146484375f /* 1 + 3 * 2^-11: a tie, up */, 5.96e-8f, 2.9e-8f, 3.0e-8f, 6.1e-5f,
                                    6.09e-5f, 65504.0f, 65519.0f, 65520.0f, 1e6f, 1e30f, -65504.0f, -65520.0f, -1e30f,
                                    INFINITY, -INFINITY, 1e-30f, -1e-30f};
    const int ns = (int)(sizeof special / sizeof special[0]);
    int lens[] = {1, 7, 16, 17, 33, 64, 1000};
    for (int a = 0; a < 7; a++) {
        int n = lens[a];
        float *x = malloc(sizeof(float) * (size_t)n);
        uint16_t *h = malloc(sizeof(uint16_t) * (size_t)(n + 1));
        for (int i = 0; i < n; i++) {
            float m = (float)pow(10.0, -9.0 + 15.0 * (double)rng_uniform(&rng)); // 1e-9 .. 1e6
            x[i] = i % 3 == 2 ? special[(i / 3) % ns] : frand() * m;
        }
        h[n] = 0xABCD;
        k->f16_from_f32(x, n, h);
        int bad = 0;
        for (int i = 0; i < n; i++)
            if (h[i] != f32_to_f16_sat(x[i]) && !bad++)
                fprintf(stderr, "%s: f16_from_f32 n=%d: x[%d] = %.9g gave 0x%04X, not 0x%04X\n", path, n, i, x[i], h[i],
                        f32_to_f16_sat(x[i]));
        CHECK_INT(bad, 0);
        CHECK_INT(h[n], 0xABCD); // nothing past the n written
        free(x), free(h);
    }
    float nan3[3] = {NAN, -NAN, 1.0f};
    uint16_t h3[3];
    float big[16];
    uint16_t hb[16];
    for (int i = 0; i < 16; i++) big[i] = i % 2 ? NAN : 1e9f;
    k->f16_from_f32(nan3, 3, h3);
    k->f16_from_f32(big, 16, hb);
    CHECK(isnan(f16_to_f32(h3[0])) && isnan(f16_to_f32(h3[1])) && h3[2] == 0x3C00);
    for (int i = 0; i < 16; i++) CHECK(i % 2 ? isnan(f16_to_f32(hb[i])) : hb[i] == 0x7BFF);
}

// The Q8_0 KV cache's rows (q8_0_from_f32) equal quant_rows' blocks bit for bit: random rows
// of several scales, values at exactly half a step (roundf takes them away from zero; nearest
// even would not), negative zeros, a block of zeros, one tiny value, one huge; a NaN or an
// infinity anywhere in the row is refused as quant_rows refuses it.
static void test_q8_0_store(const Kernels *k) {
    enum { N = 32 * 10 };
    float x[N];
    unsigned char got[N / 32 * 34], want[N / 32 * 34];
    for (int r = 0; r < 40; r++) {
        float scale = r % 4 == 0 ? 1e-3f : r % 4 == 1 ? 1.0f : r % 4 == 2 ? 50.0f : 3e4f;
        for (int i = 0; i < N; i++) x[i] = (frand() * 2 - 1) * scale;
        if (r % 5 == 1) // block 0: its largest 127, the others k + 0.5 exactly (d 1, id 1)
            for (int i = 0; i < 32; i++) x[i] = i ? (float)((i % 9) - 4) + (i % 2 ? 0.5f : -0.5f) : 127.0f;
        if (r % 5 == 2)
            for (int i = 32; i < 64; i++) x[i] = i % 3 ? 0.0f : -0.0f; // a block of zeros
        if (r % 5 == 3) x[70] = 1e-38f, x[100] = -3e38f;
        memset(got, 0xAB, sizeof got), memset(want, 0xCD, sizeof want);
        CHECK_INT(quant_rows(DT_Q8_0, x, 1, N, want, NULL), 0);
        CHECK_INT(k->q8_0_from_f32(x, N, got), 0);
        if (memcmp(got, want, sizeof got)) {
            int i = 0;
            while (got[i] == want[i]) i++;
            fprintf(stderr, "%s: q8_0_from_f32 row %d: byte %d (block %d) is 0x%02X, quant_rows gives 0x%02X\n", path, r,
                    i, i / 34, got[i], want[i]);
            check_failures++;
        }
    }
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int b = 0; b < 3; b++) {
        for (int i = 0; i < N; i++) x[i] = frand();
        x[N - 5] = bad[b];
        CHECK_INT(k->q8_0_from_f32(x, N, got), -1);
    }
}

int main(void) {
    const char *paths[] = {"scalar", "avx2", "avx512", "avx512vnni"};
    int tested = 0;
    for (int p = 0; p < 4; p++) {
        path = paths[p];
        Err e = {0};
        if (!kern_supported(path)) {
            printf("kernels %s: not tested on this CPU (it lacks the instructions)\n", path);
            CHECK(kern_use(path, &e) < 0 && strstr(e.msg, path)); // refused with a message, not run
            continue;
        }
        CHECK_INT(kern_use(path, &e), 0);
        CHECK_STR(kern_name(), path);
        CHECK_STR(ops_kernels(), path);
        rng_seed(&rng, 7 + p);
        int before = check_failures;
        test_rows(kern_get());
        test_matvec(kern_get());
        test_quant_x(kern_get());
        test_extremes(kern_get());
        test_offsets(kern_get());
        if (!strncmp(path, "avx512", 6)) CHECK(kern_get()->gemm[DT_F32] && kern_get()->gemm[DT_BF16]); // not vacuous
        test_gemm(kern_get());
        test_linear();
        test_linear_n();
        test_decode_threads();
        test_elementwise();
        test_f16_store(kern_get());
        test_q8_0_store(kern_get());
        printf("kernels %s: %s\n", path, check_failures == before ? "passed" : "FAILED");
        tested++;
    }
    Err e = {0};
    CHECK(kern_use("sse9", &e) < 0 && strstr(e.msg, "sse9"));
    CHECK_INT(kern_use("auto", &e), 0);
    CHECK(tested >= 1);
    return CHECK_DONE();
}
