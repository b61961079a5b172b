// ops.c - LayerNorm, GELU, softmax and linear layers over stored weights.
//
// Prefill (T > 1) goes through cblas_sgemm, split by output columns over the pool's
// threads (OpenBLAS itself runs single-threaded so that one team owns the cores).
// Decoding (T == 1) is memory-bound: hand-written matrix-vector kernels read each weight
// byte once, converting F16/BF16 on the fly.
#include "kern/ops.h"
#include "base/mem.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define QKV_X86 1
#endif

void layernorm_forward(float *out, const float *inp, const float *w, const float *b, int T, int C, float eps) {
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

#ifdef QKV_X86
static void gelu_tanh_avx2(float *x, int n);
static void softmax_avx2(float *x, int n);
#endif

void gelu_tanh(float *x, int n) {
    const float k = 0.7978845608028654f; // sqrt(2/pi)
    int i = 0;
#ifdef QKV_X86
    if (ops_have_avx2()) {
        i = n & ~7;
        gelu_tanh_avx2(x, i);
    }
#endif
    for (; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

void softmax_inplace(float *x, int n) {
#ifdef QKV_X86
    if (ops_have_avx2() && n >= 8) {
        softmax_avx2(x, n);
        return;
    }
#endif
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

int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

// ---------------------------------------------------------------------------------------
// CPU feature dispatch

#ifdef QKV_X86
static int have_avx2 = -1;
bool ops_have_avx2(void) {
    if (have_avx2 < 0) {
        __builtin_cpu_init();
        have_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
        if (getenv("QKV_NO_AVX2")) have_avx2 = 0;
    }
    return have_avx2;
}
#else
bool ops_have_avx2(void) { return false; }
#endif

// Convert n stored elements starting at element off into out (f32).
static inline void load_row(const Tensor *w, int64_t off, int n, float *out) { tensor_row_f32(w, off, n, out); }

// ---------------------------------------------------------------------------------------
// Decoding kernels: y (out) = x (in) W

// [in, out] layout: y[j0:j1] = sum_i x[i] * W[i, j0:j1]
static void mv_in_out_generic(const Tensor *w, int in, int out, const float *x, float *y, int j0, int j1,
                              float *tmp) {
    for (int j = j0; j < j1; j++) y[j] = 0;
    for (int i = 0; i < in; i++) {
        float xi = x[i];
        load_row(w, (int64_t)i * out + j0, j1 - j0, tmp);
        for (int j = j0; j < j1; j++) y[j] += xi * tmp[j - j0];
    }
}

// [out, in] layout: y[j] = dot(W[j, :], x)
static void mv_out_in_generic(const Tensor *w, int in, const float *x, float *y, int j0, int j1, float *tmp) {
    for (int j = j0; j < j1; j++) {
        load_row(w, (int64_t)j * in, in, tmp);
        double s = 0;
        for (int i = 0; i < in; i++) s += (double)tmp[i] * x[i];
        y[j] = (float)s;
    }
}

#ifdef QKV_X86
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline __attribute__((always_inline)) __m256 load8(const void *base, DType dt, int64_t i) {
    switch (dt) {
    case DT_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + i)));
    case DT_BF16: {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)base + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    default: return _mm256_loadu_ps((const float *)base + i);
    }
}

AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// e^x for 8 floats (Cephes-style: 2^n times a degree-6 polynomial on [-ln2/2, ln2/2]);
// relative error about 2e-7 over [-87, 88].
AVX2 static inline __m256 exp8(__m256 x) {
    __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ); // e^x underflows to 0 there
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(tiny, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

// n a multiple of 8. tanh(u) = 1 - 2 / (e^(2u) + 1).
AVX2 static void gelu_tanh_avx2(float *x, int n) {
    const __m256 k = _mm256_set1_ps(0.7978845608028654f), c = _mm256_set1_ps(0.044715f);
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f), half = _mm256_set1_ps(0.5f);
    for (int i = 0; i < n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 u = _mm256_mul_ps(k, _mm256_fmadd_ps(_mm256_mul_ps(c, v), _mm256_mul_ps(v, v), v));
        __m256 t = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(exp8(_mm256_add_ps(u, u)), one)));
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, t)));
    }
}

AVX2 static void softmax_avx2(float *x, int n) {
    int n8 = n & ~7;
    __m256 mv = _mm256_set1_ps(-INFINITY);
    for (int i = 0; i < n8; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
    float m8[8];
    _mm256_storeu_ps(m8, mv);
    float mx = m8[0];
    for (int i = 1; i < 8; i++) mx = m8[i] > mx ? m8[i] : mx;
    for (int i = n8; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    __m256 vmx = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
    for (int i = 0; i < n8; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmx));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    double s = hsum8(acc);
    for (int i = n8; i < n; i++) {
        x[i] = expf(x[i] - mx);
        s += x[i];
    }
    __m256 inv = _mm256_set1_ps((float)(1.0 / s));
    for (int i = 0; i < n8; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    float fi = (float)(1.0 / s);
    for (int i = n8; i < n; i++) x[i] *= fi;
}

// [in, out]: rows of W are read contiguously over the column range, 8 rows per pass so
// that each load/store of y serves eight weight rows. Requires (j1 - j0) % 8 == 0.
AVX2 static inline __attribute__((always_inline)) void mv_in_out_body(const void *W, const DType dt, int in, int out, const float *x, float *y, int j0, int j1) {
    for (int j = j0; j < j1; j += 8) _mm256_storeu_ps(y + j, _mm256_setzero_ps());
    int i = 0;
    for (; i + 8 <= in; i += 8) {
        __m256 xv[8];
        for (int k = 0; k < 8; k++) xv[k] = _mm256_set1_ps(x[i + k]);
        int64_t r0 = (int64_t)i * out;
        for (int j = j0; j < j1; j += 8) {
            __m256 a0 = _mm256_loadu_ps(y + j);
            __m256 a1 = _mm256_mul_ps(xv[1], load8(W, dt, r0 + out + j));
            a0 = _mm256_fmadd_ps(xv[0], load8(W, dt, r0 + j), a0);
            a1 = _mm256_fmadd_ps(xv[3], load8(W, dt, r0 + 3 * (int64_t)out + j), a1);
            a0 = _mm256_fmadd_ps(xv[2], load8(W, dt, r0 + 2 * (int64_t)out + j), a0);
            a1 = _mm256_fmadd_ps(xv[5], load8(W, dt, r0 + 5 * (int64_t)out + j), a1);
            a0 = _mm256_fmadd_ps(xv[4], load8(W, dt, r0 + 4 * (int64_t)out + j), a0);
            a1 = _mm256_fmadd_ps(xv[7], load8(W, dt, r0 + 7 * (int64_t)out + j), a1);
            a0 = _mm256_fmadd_ps(xv[6], load8(W, dt, r0 + 6 * (int64_t)out + j), a0);
            _mm256_storeu_ps(y + j, _mm256_add_ps(a0, a1));
        }
    }
    for (; i < in; i++) {
        __m256 xi = _mm256_set1_ps(x[i]);
        int64_t r = (int64_t)i * out;
        for (int j = j0; j < j1; j += 8)
            _mm256_storeu_ps(y + j, _mm256_fmadd_ps(xi, load8(W, dt, r + j), _mm256_loadu_ps(y + j)));
    }
}

// [out, in]: dot products, eight output rows at a time (eight independent FMA chains
// hide the FMA latency). Requires in % 8 == 0.
AVX2 static inline __attribute__((always_inline)) void mv_out_in_body(const void *W, const DType dt, int in, const float *x, float *y, int j0, int j1) {
    int j = j0;
    for (; j + 8 <= j1; j += 8) {
        __m256 a[8];
        for (int k = 0; k < 8; k++) a[k] = _mm256_setzero_ps();
        int64_t r0 = (int64_t)j * in;
        for (int i = 0; i < in; i += 8) {
            __m256 xv = _mm256_loadu_ps(x + i);
            for (int k = 0; k < 8; k++) a[k] = _mm256_fmadd_ps(load8(W, dt, r0 + (int64_t)k * in + i), xv, a[k]);
        }
        for (int k = 0; k < 8; k++) y[j + k] = hsum8(a[k]);
    }
    for (; j < j1; j++) {
        __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
        int64_t r = (int64_t)j * in;
        int i = 0;
        for (; i + 16 <= in; i += 16) {
            a = _mm256_fmadd_ps(load8(W, dt, r + i), _mm256_loadu_ps(x + i), a);
            b = _mm256_fmadd_ps(load8(W, dt, r + i + 8), _mm256_loadu_ps(x + i + 8), b);
        }
        for (; i < in; i += 8) a = _mm256_fmadd_ps(load8(W, dt, r + i), _mm256_loadu_ps(x + i), a);
        y[j] = hsum8(_mm256_add_ps(a, b));
    }
}
// One copy of each kernel per element type (the type is a constant inside each).
AVX2 static void mv_in_out_avx2(const Tensor *w, int in, int out, const float *x, float *y, int j0, int j1) {
    switch (w->dt) {
    case DT_F16: mv_in_out_body(w->data, DT_F16, in, out, x, y, j0, j1); break;
    case DT_BF16: mv_in_out_body(w->data, DT_BF16, in, out, x, y, j0, j1); break;
    default: mv_in_out_body(w->data, DT_F32, in, out, x, y, j0, j1); break;
    }
}

AVX2 static void mv_out_in_avx2(const Tensor *w, int in, const float *x, float *y, int j0, int j1) {
    switch (w->dt) {
    case DT_F16: mv_out_in_body(w->data, DT_F16, in, x, y, j0, j1); break;
    case DT_BF16: mv_out_in_body(w->data, DT_BF16, in, x, y, j0, j1); break;
    default: mv_out_in_body(w->data, DT_F32, in, x, y, j0, j1); break;
    }
}
#endif

// ---------------------------------------------------------------------------------------
// Parallel sections

typedef struct {
    const Linear *l;
    const float *inp;
    float *out;
    int T;
    float *partial; // [nth - 1, out] for matvec_rows_job
} LinJob;

// Split [0, n) into nth parts aligned to `align`; part ith is [*a, *b).
static void split_range(int n, int align, int ith, int nth, int *a, int *b) {
    int blocks = (n + align - 1) / align;
    int per = blocks / nth, extra = blocks % nth;
    int s = ith * per + (ith < extra ? ith : extra);
    int e = s + per + (ith < extra ? 1 : 0);
    *a = s * align < n ? s * align : n;
    *b = e * align < n ? e * align : n;
}

static void add_bias(float *out, const float *bias, int T, int n_out, int j0, int j1) {
    if (!bias) return;
    for (int t = 0; t < T; t++) {
        float *o = out + (size_t)t * n_out;
        for (int j = j0; j < j1; j++) o[j] += bias[j];
    }
}

// [in, out] decoding with every thread streaming one contiguous block of rows into a
// private partial sum; the partials are added once all are done (see linear_forward).
static void matvec_rows_job(void *arg, int ith, int nth) {
    LinJob *J = arg;
    const Linear *l = J->l;
    int i0, i1;
    split_range(l->in, 8, ith, nth, &i0, &i1);
    float *y = ith == 0 ? J->out : J->partial + (size_t)(ith - 1) * l->out;
    if (i0 >= i1) {
        memset(y, 0, sizeof(float) * (size_t)l->out);
        return;
    }
    Tensor sub = l->w;
    sub.data = (const char *)l->w.data + dtype_bytes(l->w.dt, (int64_t)i0 * l->out);
    mv_in_out_avx2(&sub, i1 - i0, l->out, J->inp + i0, y, 0, l->out);
}

static void matvec_job(void *arg, int ith, int nth) {
    LinJob *J = arg;
    const Linear *l = J->l;
    int j0, j1;
    split_range(l->out, 16, ith, nth, &j0, &j1);
    if (j0 >= j1) return;
#ifdef QKV_X86
    bool simd = ops_have_avx2() && l->w.dt != DT_Q8_0;
    if (simd && !l->out_in && (j1 - j0) % 8 == 0) {
        mv_in_out_avx2(&l->w, l->in, l->out, J->inp, J->out, j0, j1);
        add_bias(J->out, l->bias, 1, l->out, j0, j1);
        return;
    }
    if (simd && l->out_in && l->in % 8 == 0) {
        mv_out_in_avx2(&l->w, l->in, J->inp, J->out, j0, j1);
        add_bias(J->out, l->bias, 1, l->out, j0, j1);
        return;
    }
#endif
    float *tmp = xmalloc(sizeof(float) * (size_t)(l->out_in ? l->in : (j1 - j0)));
    if (l->out_in) mv_out_in_generic(&l->w, l->in, J->inp, J->out, j0, j1, tmp);
    else mv_in_out_generic(&l->w, l->in, l->out, J->inp, J->out, j0, j1, tmp);
    free(tmp);
    add_bias(J->out, l->bias, 1, l->out, j0, j1);
}

enum { PANEL = 128 }; // output columns converted at a time for non-F32 weights

static void gemm_job(void *arg, int ith, int nth) {
    LinJob *J = arg;
    const Linear *l = J->l;
    int j0, j1;
    split_range(l->out, 16, ith, nth, &j0, &j1);
    if (j0 >= j1) return;
    int T = J->T, in = l->in, n_out = l->out;
    // C starts as the bias (beta = 1) so that no separate pass adds it
    float beta = l->bias ? 1.0f : 0.0f;
    if (l->bias)
        for (int t = 0; t < T; t++) memcpy(J->out + (size_t)t * n_out + j0, l->bias + j0, sizeof(float) * (size_t)(j1 - j0));
    if (l->w.dt == DT_F32 && (uintptr_t)l->w.data % sizeof(float) == 0) {
        const float *W = l->w.data;
        if (l->out_in)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, j1 - j0, in, 1.0f, J->inp, in,
                        W + (size_t)j0 * in, in, beta, J->out + j0, n_out);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, j1 - j0, in, 1.0f, J->inp, in, W + j0, n_out,
                        beta, J->out + j0, n_out);
    } else {
        // convert a panel of PANEL output columns to f32 ([panel, in] for [out, in] weights,
        // [in, panel] for [in, out] ones: both without a transpose), then sgemm
        float *pan = xmalloc(sizeof(float) * (size_t)PANEL * in);
        for (int p0 = j0; p0 < j1; p0 += PANEL) {
            int pn = j1 - p0 < PANEL ? j1 - p0 : PANEL;
            if (l->out_in) {
                for (int j = 0; j < pn; j++) load_row(&l->w, (int64_t)(p0 + j) * in, in, pan + (size_t)j * in);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, pn, in, 1.0f, J->inp, in, pan, in, beta,
                            J->out + p0, n_out);
            } else {
                for (int i = 0; i < in; i++) load_row(&l->w, (int64_t)i * n_out + p0, pn, pan + (size_t)i * pn);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, pn, in, 1.0f, J->inp, in, pan, pn, beta,
                            J->out + p0, n_out);
            }
        }
        free(pan);
    }
}

void linear_forward(Pool *pool, float *out, const float *inp, const Linear *l, int T) {
    LinJob J = {l, inp, out, T, NULL};
#ifdef QKV_X86
    int nth = pool_size(pool);
    // Decoding through [in, out] weights: split by rows so that each thread streams one
    // contiguous block (measured about 1.4x faster than splitting the columns of each row).
    if (T == 1 && !l->out_in && nth > 1 && ops_have_avx2() && l->out % 8 == 0 && l->w.dt != DT_Q8_0) {
        float stack[8192];
        size_t need = (size_t)(nth - 1) * l->out;
        J.partial = need <= 8192 ? stack : xmalloc(sizeof(float) * need);
        pool_run(pool, matvec_rows_job, &J);
        for (int t = 1; t < nth; t++) {
            const float *p = J.partial + (size_t)(t - 1) * l->out;
            for (int j = 0; j < l->out; j++) out[j] += p[j];
        }
        if (l->bias)
            for (int j = 0; j < l->out; j++) out[j] += l->bias[j];
        if (J.partial != stack) free(J.partial);
        return;
    }
#endif
    // Q8_0 rows are converted in blocks of 32: the panel code handles any layout since
    // it converts whole [out, in] rows; [in, out] Q8_0 is not produced by any loader.
    pool_run(pool, T == 1 ? matvec_job : gemm_job, &J);
}
