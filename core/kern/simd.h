// simd.h - the vector kernels, written once over a vector of W floats. An instruction-set
// file (avx2.c, avx512.c) defines the primitives below, includes this file and builds its
// table with SIMD_TABLE(name). Only those files include it.
//
// Primitives: type V and width W; v_zero, v_set1, v_load, v_store (unaligned f32), v_load_part /
// v_store_part (the first m of W floats, m <= 0 none: zeros after them, nothing past them read
// or written), v_load_part_f16 / v_load_part_bf16 (the first 0 < m < W stored values), v_add,
// v_sub, v_mul, v_div, v_fmadd(a,b,c) = a*b+c, v_fnmadd(a,b,c) = c-a*b, v_max, v_min;
// v_load_f16 / v_load_bf16 (W stored 16-bit values), v_load_i8 (W int8 as f32);
// v_store_f16 (W floats as f16, nearest even); v_hsum, v_hmax (horizontal); v_round (to nearest integer); v_pow2i(n) = 2^n for integral n
// in [-126, 127]; v_zero_below(v, x, lim) = v where x >= lim (or NaN), 0 where x < lim;
// v_from_i8x16(b, out): the 16 int8 of a 128-bit register as VB = 16 / W vectors; VI, W
// int32: vi_load_u8 (W bytes zero-extended), vi_and15, vi_srl4 (>> 4), v_cvt (to float).
// The quantized kernels unpack their 16-byte pieces with SSE2, which every x86-64 has.
#pragma once
#include <float.h>
#include <math.h>
#include <string.h>

#include "kern/blocks.h"
#include "kern/kernels.h"

#define INLINE static inline __attribute__((always_inline))

// W elements of a stored array starting at element i, as f32 (not for block types).
INLINE V load_dt(const void *w, DType dt, int64_t i) {
    switch (dt) {
    case DT_F16: return v_load_f16((const uint16_t *)w + i);
    case DT_BF16: return v_load_bf16((const uint16_t *)w + i);
    default: return v_load((const float *)w + i);
    }
}

// One element, for the tails shorter than W.
INLINE float at_dt(const void *w, DType dt, int64_t i) { return elem_f32(w, dt, i); }

// The first m elements of a stored array from element i as f32, zeros after them; nothing
// past them is read. m <= 0 reads nothing.
INLINE V load_dt_part(const void *w, DType dt, int64_t i, int m) {
    if (m <= 0) return v_zero();
    if (m >= W) return load_dt(w, dt, i);
    switch (dt) {
    case DT_F16: return v_load_part_f16((const uint16_t *)w + i, m);
    case DT_BF16: return v_load_part_bf16((const uint16_t *)w + i, m);
    default: return v_load_part((const float *)w + i, m);
    }
}

// Bytes of one stored element (not for block types).
INLINE int esize(DType dt) { return dt == DT_F32 ? 4 : 2; }

// Ask for the `bytes` at p to be brought into the L2 cache (one prefetch a cache line). Into
// L2, not L1 (prefetcht2, not prefetcht0): on the Zen 4 host the F16 kernels read memory at
// 10 GB/s a thread with prefetcht0 and 18-25 GB/s with prefetcht2 (one thread, 59 MB of
// weights, 2026-12-02); L1's few fill buffers were what the streams waited on.
INLINE void prefetch(const void *p, int bytes) {
    for (int b = 0; b < bytes; b += 64) __builtin_prefetch((const char *)p + b, 0, 1);
}

// 2W elements starting at element i as two vectors. F16 as two half-width loads, each folded
// into its conversion (vcvtph2ps from memory): one full-width load split in registers, the
// way before 2026-12-06, took a second load and a lane extract besides (GCC 12 loaded the low
// half again rather than use the register). One thread on data in L2 (768 x 256, Zen 4):
// 48 -> 58 GB/s with AVX-512, 38-43 -> 52-55 with AVX2; from memory (2 threads, paired in one
// process) no change either way.
INLINE void load2_dt(const void *w, DType dt, int64_t i, V *lo, V *hi) {
    *lo = load_dt(w, dt, i);
    *hi = load_dt(w, dt, i + W);
}

INLINE void row_body(const void *w, DType dt, int64_t off, int64_t n, float *out) {
    int64_t i = 0;
    for (; i + W <= n; i += W) v_store(out + i, load_dt(w, dt, off + i));
    for (; i < n; i++) out[i] = at_dt(w, dt, off + i);
}

// ---------------------------------------------------------------------------------------
// Quantized types (kern/blocks.h). Dequantization (row_*) rounds exactly as blk_decode;
// the matrix-vector kernels multiply the dequantized weights with float x in registers.

enum { VB = 16 / W }; // vectors per 16 values

typedef __m128i B16; // 16 bytes
INLINE B16 b16_load(const void *p) { return _mm_loadu_si128((const __m128i *)p); }
INLINE B16 b16_lo(B16 b) { return _mm_and_si128(b, _mm_set1_epi8(0x0F)); }
INLINE B16 b16_hi(B16 b) { return _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0F)); }
INLINE B16 b16_sub(B16 b, int k) { return _mm_sub_epi8(b, _mm_set1_epi8((char)k)); }

// an f16 in memory as f32 (F16C; the same value as f16_to_f32)
INLINE float f16_at(const unsigned char *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// acc + the 16 signed bytes of q times x[0:16)
INLINE V dot16(B16 q, const float *x, V acc) {
    V f[VB];
    v_from_i8x16(q, f);
    for (int k = 0; k < VB; k++) acc = v_fmadd(f[k], v_load(x + k * W), acc);
    return acc;
}

// out[0:16) = d * q (the 16 signed bytes of q)
INLINE void store16(float *out, V d, B16 q) {
    V f[VB];
    v_from_i8x16(q, f);
    for (int k = 0; k < VB; k++) v_store(out + k * W, v_mul(d, f[k]));
}

// out[0:16) = d * q + m, and d * q - m
INLINE void store16_add(float *out, V d, B16 q, V m) {
    V f[VB];
    v_from_i8x16(q, f);
    for (int k = 0; k < VB; k++) v_store(out + k * W, v_add(v_mul(d, f[k]), m));
}
INLINE void store16_sub(float *out, V d, B16 q, V m) {
    V f[VB];
    v_from_i8x16(q, f);
    for (int k = 0; k < VB; k++) v_store(out + k * W, v_sub(v_mul(d, f[k]), m));
}

// Q6_K: the four 16-value groups (l0 + 0, 32, 64, 96 of a half) of 16 ql bytes at a, 16 at
// a + 32 and 16 qh bytes, as signed values (q - 32)
INLINE void q6_k_groups(const unsigned char *a, const unsigned char *h, B16 g[4]) {
    const B16 la = b16_load(a), lb = b16_load(a + 32), qh = b16_load(h), m = _mm_set1_epi8(0x30);
    g[0] = b16_sub(_mm_or_si128(b16_lo(la), _mm_and_si128(_mm_slli_epi16(qh, 4), m)), 32);
    g[1] = b16_sub(_mm_or_si128(b16_lo(lb), _mm_and_si128(_mm_slli_epi16(qh, 2), m)), 32);
    g[2] = b16_sub(_mm_or_si128(b16_hi(la), _mm_and_si128(qh, m)), 32);
    g[3] = b16_sub(_mm_or_si128(b16_hi(lb), _mm_and_si128(_mm_srli_epi16(qh, 2), m)), 32);
}

// Dequantization: off and n multiples of the block (RowF32Fn).
static void row_q8_0(const void *w, int64_t off, int64_t n, float *out) {
    const unsigned char *b = (const unsigned char *)w + dtype_bytes(DT_Q8_0, off);
    for (int64_t i = 0; i < n; i += QK, b += Q8_0_BYTES) {
        const V d = v_set1(f16_at(b));
        store16(out + i, d, b16_load(b + 2));
        store16(out + i + 16, d, b16_load(b + 18));
    }
}

static void row_q4_0(const void *w, int64_t off, int64_t n, float *out) {
    const unsigned char *b = (const unsigned char *)w + dtype_bytes(DT_Q4_0, off);
    for (int64_t i = 0; i < n; i += QK, b += Q4_0_BYTES) {
        const V d = v_set1(f16_at(b));
        const B16 q = b16_load(b + 2);
        store16(out + i, d, b16_sub(b16_lo(q), 8));
        store16(out + i + 16, d, b16_sub(b16_hi(q), 8));
    }
}

static void row_q4_1(const void *w, int64_t off, int64_t n, float *out) {
    const unsigned char *b = (const unsigned char *)w + dtype_bytes(DT_Q4_1, off);
    for (int64_t i = 0; i < n; i += QK, b += Q4_1_BYTES) {
        const V d = v_set1(f16_at(b)), m = v_set1(f16_at(b + 2));
        const B16 q = b16_load(b + 4);
        store16_add(out + i, d, b16_lo(q), m);
        store16_add(out + i + 16, d, b16_hi(q), m);
    }
}

static void row_q4_k(const void *w, int64_t off, int64_t n, float *out) {
    const unsigned char *b = (const unsigned char *)w + dtype_bytes(DT_Q4_K, off);
    for (int64_t i = 0; i < n; i += QKK, b += Q4_K_BYTES) {
        const float d = f16_at(b), dmin = f16_at(b + 2);
        for (int c = 0; c < 4; c++) {
            int s0, m0, s1, m1;
            q4_k_scale_min(b + 4, 2 * c, &s0, &m0);
            q4_k_scale_min(b + 4, 2 * c + 1, &s1, &m1);
            const V d0 = v_set1(d * (float)s0), n0 = v_set1(dmin * (float)m0);
            const V d1 = v_set1(d * (float)s1), n1 = v_set1(dmin * (float)m1);
            const B16 q0 = b16_load(b + 16 + 32 * c), q1 = b16_load(b + 32 + 32 * c);
            float *o = out + i + 64 * c;
            store16_sub(o, d0, b16_lo(q0), n0);
            store16_sub(o + 16, d0, b16_lo(q1), n0);
            store16_sub(o + 32, d1, b16_hi(q0), n1);
            store16_sub(o + 48, d1, b16_hi(q1), n1);
        }
    }
}

static void row_q6_k(const void *w, int64_t off, int64_t n, float *out) {
    const unsigned char *b = (const unsigned char *)w + dtype_bytes(DT_Q6_K, off);
    for (int64_t i = 0; i < n; i += QKK, b += Q6_K_BYTES) {
        const float d = f16_at(b + 208);
        const int8_t *sc = (const int8_t *)(b + 192);
        for (int h = 0; h < 2; h++)
            for (int l0 = 0; l0 < 32; l0 += 16) {
                B16 g[4];
                q6_k_groups(b + 64 * h + l0, b + 128 + 32 * h + l0, g);
                for (int k = 0; k < 4; k++)
                    store16(out + i + 128 * h + 32 * k + l0, v_set1(d * (float)sc[8 * h + 2 * k + l0 / 16]), g[k]);
            }
    }
}

// x = s (q - Z); q - Z is exact in float32 (quant_rows keeps |Z| <= 2^23)
static void row_i8_affine(const void *w, int64_t off, int64_t n, float *out) {
    const unsigned char *r = w;
    float s;
    int32_t z;
    memcpy(&s, r, 4), memcpy(&z, r + 4, 4);
    const int8_t *q = (const int8_t *)(r + I8_AFFINE_HEAD) + off;
    const V vs = v_set1(s), vz = v_set1((float)z);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        V f[VB];
        v_from_i8x16(b16_load(q + i), f);
        for (int k = 0; k < VB; k++) v_store(out + i + k * W, v_mul(vs, v_sub(f[k], vz)));
    }
    for (; i < n; i++) out[i] = s * (float)((int64_t)q[i] - z);
}

// Matrix-vector products, [out, in], on x quantized to int16 blocks (blk_quant_x): each weight
// block's dot product with an x block is integer arithmetic, 16 products a _mm256_madd_epi16
// (weights widened to int16; sums stay below 2^31: |w| <= 128, or 4096 for Q6_K's value times
// its scale, times |q| <= 32767, four products a lane), converted to float once a block and
// scaled by the weight's and x's scales. The avx2 table does this 256 bits at a time (a block
// in two _mm256_madd_epi16); the avx512 table (AVX-512 BW) a block in one _mm512_madd_epi16
// into a 512-bit accumulator, half the instructions a block: the 4-bit types were bound by
// instructions, not bytes (README "Speed"). The integer products are the same in both; only
// the order of the float additions differs.

typedef __m256i I16x16; // 16 int16 or 8 int32

// 8 float lanes summed
INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// int32 lanes of sum_k w[k] x[k] for 32 int16 weights (lo: elements 0-15, hi: 16-31) and the
// x block at xq
INLINE I16x16 dot32(I16x16 lo, I16x16 hi, const int16_t *xq) {
    return _mm256_add_epi32(_mm256_madd_epi16(lo, _mm256_loadu_si256((const __m256i *)xq)),
                            _mm256_madd_epi16(hi, _mm256_loadu_si256((const __m256i *)(xq + 16))));
}

#if defined(__AVX512BW__)
#define QWIDE 1
#else
#define QWIDE 0
#endif
#if QWIDE && defined(__AVX512VNNI__)
#define QVNNI 1
#else
#define QVNNI 0
#endif

// A row's running dot product: a float vector and a scalar term (each type says how they combine).
typedef struct {
    __m256 a, m; // m: Q4_K's minimums, a lane a sub-block
#if QWIDE
    __m512 z; // the 512-bit kernels' products
#endif
#if QVNNI
    __m512 zm; // VNNI: Q6_K's offset of 32 (a lane a 16-value group), Q4_K's mins (lanes 8-15)
#endif
    float c;
} QAcc;

INLINE QAcc qacc_zero(void) {
    QAcc s;
    s.a = _mm256_setzero_ps(), s.m = _mm256_setzero_ps(), s.c = 0;
#if QWIDE
    s.z = _mm512_setzero_ps();
#endif
#if QVNNI
    s.zm = _mm512_setzero_ps();
#endif
    return s;
}

INLINE void qacc_add(QAcc *s, I16x16 p, float scale) {
    s->a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(scale), s->a);
}

// The float lanes of s summed.
INLINE float qacc_sum(const QAcc *s) {
#if QWIDE
    return hsum8(s->a) + _mm512_reduce_add_ps(s->z);
#else
    return hsum8(s->a);
#endif
}

#if QWIDE
typedef __m512i P32; // 16 int32: one 32-value block's products, two a lane
// the 32 int16 weights lo (elements 0-15) and hi (16-31) times the x block at xq
INLINE P32 dot32w(I16x16 lo, I16x16 hi, const int16_t *xq) {
    return _mm512_madd_epi16(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), _mm512_loadu_si512(xq));
}
INLINE void qacc_add32(QAcc *s, P32 p, float scale) {
    s->z = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_set1_ps(scale), s->z);
}
#else
typedef I16x16 P32;
#define dot32w dot32
#define qacc_add32 qacc_add
#endif

// Adds one weight block at b times x to s; xb is the index of the block's first x block.
typedef void (*QStep)(QAcc *s, const unsigned char *b, const XQ *x, int xb);
typedef float (*QEnd)(const QAcc *s);

INLINE void qstep_q8_0(QAcc *s, const unsigned char *b, const XQ *x, int xb) {
#if QWIDE
    const __m512i w = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(b + 2)));
    qacc_add32(s, _mm512_madd_epi16(w, _mm512_loadu_si512(x->q + QK * xb)), f16_at(b) * x->d[xb]);
#else
    const I16x16 lo = _mm256_cvtepi8_epi16(b16_load(b + 2)), hi = _mm256_cvtepi8_epi16(b16_load(b + 18));
    qacc_add(s, dot32(lo, hi, x->q + QK * xb), f16_at(b) * x->d[xb]);
#endif
}
INLINE float qend_sum(const QAcc *s) { return qacc_sum(s); }

#if QVNNI
// Two blocks' f16 values (the 16 bits at a and at b) as floats: lanes 0 and 1 (2 and 3 zero).
INLINE __m128 f16_pair(const unsigned char *a, const unsigned char *b) {
    uint16_t u, v;
    memcpy(&u, a, 2), memcpy(&v, b, 2);
    return _mm_cvtph_ps(_mm_cvtsi32_si128((int)(u | (uint32_t)v << 16)));
}
// The scales of a two-block step's 16 int32 lanes (0-7 the first block's products, 8-15 the
// second's): lane i of f for the first block, lane j for the second, times x's scale of each
// block (d4: a lane's four values from element e).
INLINE __m512 pair_scales(__m128 f, int i, int j, const XQ *x, int e) {
    const __m512i sel = _mm512_mask_blend_epi32(0xFF00, _mm512_set1_epi32(i), _mm512_set1_epi32(j));
    return _mm512_mul_ps(_mm512_permutexvar_ps(sel, _mm512_castps128_ps512(f)), _mm512_loadu_ps(x->d4 + e / 4));
}
// Two blocks' terms m . sum(x) (lanes 0 and 1 of m2 times x's block sums from block xb) added
// to s->m, which the types' ends sum (Q4_0's offset of 8, Q4_1's minimums).
INLINE void pair_sums(QAcc *s, __m128 m2, const XQ *x, int xb) {
    // two floats, 4-byte aligned: an unaligned 64-bit load (not a double's, which wants 8)
    const __m128 p = _mm_mul_ps(m2, _mm_castsi128_ps(_mm_loadl_epi64((const __m128i_u *)(x->s + xb))));
    s->m = _mm256_add_ps(s->m, _mm256_zextps128_ps256(p));
}
#endif

#if QVNNI
// Q8_0 with VNNI, two blocks (64 weights) a step: vpdpbusd wants one side unsigned, so the
// signed weights go in offset by 128 (w ^ 0x80) against h, starting from x->hc = -128 sum(h):
// w . h exactly; shifted by 8, then l . w added (x = 256 h + l, as dot64_vnni). Lanes 0-7 hold
// the first block's products, 8-15 the second's: one conversion and multiply-add serve both,
// each lane scaled by its block's d times x's (d4). (The avx512 path took a 512-bit widening,
// a multiply-add, a conversion and a multiply-add for each 32 weights, plus a scalar f16
// conversion and product for the scale: bound by instructions at 50-70% of the read bound.)
INLINE void qstep2_q8_0(QAcc *s, const unsigned char *b, const XQ *x, int xb) {
    const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b + 2))),
                                         _mm256_loadu_si256((const __m256i *)(b + Q8_0_BYTES + 2)), 1);
    const int e = QK * xb;
    __m512i a = _mm512_dpbusd_epi32(_mm512_loadu_si512(x->hc + e / 4), _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80)),
                                    _mm512_loadu_si512(x->h + e));
    a = _mm512_dpbusd_epi32(_mm512_slli_epi32(a, 8), _mm512_loadu_si512(x->l + e), w);
    s->z = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), pair_scales(f16_pair(b, b + Q8_0_BYTES), 0, 1, x, e), s->z);
}
#else
#define qstep2_q8_0 NULL
#define qstep2_q4_0 NULL
#define qstep2_q4_1 NULL
#define qend_q4_0_vnni qend_q4_0
#define qend_q4_1_vnni qend_q4_1
#endif

// the 32 nibbles of 16 bytes as int16: low nibbles (elements 0-15), then high ones (16-31)
INLINE P32 dot_nibbles(B16 q, const int16_t *xq) {
    const I16x16 w = _mm256_cvtepu8_epi16(q); // < 256: a 16-bit shift takes the high nibble
    const I16x16 m15 = _mm256_set1_epi16(15);
    return dot32w(_mm256_and_si256(w, m15), _mm256_srli_epi16(w, 4), xq);
}

// d (q - 8) . x = d (q . x) - 8 d sum(x)
INLINE void qstep_q4_0(QAcc *s, const unsigned char *b, const XQ *x, int xb) {
    const float d = f16_at(b);
    qacc_add32(s, dot_nibbles(b16_load(b + 2), x->q + QK * xb), d * x->d[xb]);
    s->c += d * x->s[xb];
}
INLINE float qend_q4_0(const QAcc *s) { return qacc_sum(s) - 8 * s->c; }

INLINE void qstep_q4_1(QAcc *s, const unsigned char *b, const XQ *x, int xb) {
    qacc_add32(s, dot_nibbles(b16_load(b + 4), x->q + QK * xb), f16_at(b) * x->d[xb]);
    s->c += f16_at(b + 2) * x->s[xb];
}
INLINE float qend_q4_1(const QAcc *s) { return qacc_sum(s) + s->c; }

// The 8 scales (bytes 0-7) and 8 mins (bytes 8-15) of a Q4_K super-block's 12 bytes of scales at
// p (q4_k_scale_min), unpacked with byte shuffles: for j < 4 the low 6 bits of byte j (scale)
// or j + 4 (min); for j >= 4 the low (scale) or high (min) nibble of byte j + 4 and the top two
// bits of byte j - 4 (scale) or j (min). Reads 16 bytes (the block goes on after them).
INLINE __m128i q4_k_scale_bytes(const unsigned char *p) {
    const __m128i u = _mm_loadu_si128((const __m128i *)p);
    const __m128i lo = _mm_shuffle_epi8(u, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i top = _mm_shuffle_epi8(u, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
    const __m128i m6 = _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0);
    const __m128i hi4 = _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15);
    const __m128i v = _mm_or_si128(_mm_and_si128(lo, m6), _mm_and_si128(_mm_srli_epi16(lo, 4), hi4));
    return _mm_or_si128(v, _mm_and_si128(_mm_srli_epi16(top, 2), _mm_set1_epi8(0x30)));
}

// the same as two vectors of 8 floats
INLINE void q4_k_scales(const unsigned char *p, __m256 *sc, __m256 *mn) {
    const __m128i v = q4_k_scale_bytes(p);
    *sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
    *mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)));
}

#if QVNNI
// AVX-512 VNNI: 64 weights as unsigned bytes w (each below 128) times x's 64 values from element
// e, exactly, in 16 int32 lanes of four products each: x = 256 h + l (blk_quant_x_bytes), so
// w . x = 256 (w . h) + l . w, two vpdpbusd (unsigned times signed bytes: w . h with h signed,
// l . w with l unsigned and w < 128) and a shift. |lane| < 4 * 127 * 128 * 256 + 4 * 255 * 127.
INLINE __m512i dot64_vnni_at(__m512i w, const int8_t *h, const uint8_t *l) {
    __m512i a = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, _mm512_loadu_si512(h));
    a = _mm512_slli_epi32(a, 8);
    return _mm512_dpbusd_epi32(a, _mm512_loadu_si512(l), w);
}
INLINE __m512i dot64_vnni(__m512i w, const XQ *x, int e) { return dot64_vnni_at(w, x->h + e, x->l + e); }

// Q4_0 and Q4_1 with VNNI, two blocks (64 weights) a step, as Q8_0's: the blocks' 16 bytes of
// nibbles at qa and qb as 64 unsigned bytes in x's order (qa's low nibbles, its high ones, then
// qb's), one 256-bit load pair spread to the four 128-bit lanes [qa, qa, qb, qb] and shifted by
// 0 or 4 bits a lane; two vpdpbusd and a shift (dot64_vnni) where the avx512 step took a
// widening to 16 bits, a shift, two masks and a multiply-add for each block.
INLINE __m512i nibbles2_vnni(const unsigned char *qa, const unsigned char *qb) {
    const __m256i ab = _mm256_inserti128_si256(_mm256_castsi128_si256(b16_load(qa)), b16_load(qb), 1);
    const __m512i aabb = _mm512_shuffle_i64x2(_mm512_castsi256_si512(ab), _mm512_castsi256_si512(ab), 0x50);
    const __m512i by4 = _mm512_mask_blend_epi64(0xCC, _mm512_setzero_si512(), _mm512_set1_epi16(4));
    return _mm512_and_si512(_mm512_srlv_epi16(aabb, by4), _mm512_set1_epi8(0x0F));
}
INLINE void qstep2_q4_0(QAcc *s, const unsigned char *b, const XQ *x, int xb) {
    const int e = QK * xb;
    const __m512i w = nibbles2_vnni(b + 2, b + Q4_0_BYTES + 2);
    const __m128 d = f16_pair(b, b + Q4_0_BYTES);
    s->z = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot64_vnni(w, x, e)), pair_scales(d, 0, 1, x, e), s->z);
    pair_sums(s, d, x, xb);
}
INLINE float qend_q4_0_vnni(const QAcc *s) { return qacc_sum(s) - 8 * (s->c + hsum8(s->m)); }
// d and m of both blocks converted at once (lanes dA mA dB mB)
INLINE void qstep2_q4_1(QAcc *s, const unsigned char *b, const XQ *x, int xb) {
    const int e = QK * xb;
    const __m512i w = nibbles2_vnni(b + 4, b + Q4_1_BYTES + 4);
    int32_t dma, dmb;
    memcpy(&dma, b, 4), memcpy(&dmb, b + Q4_1_BYTES, 4);
    const __m128 f = _mm_cvtph_ps(_mm_insert_epi32(_mm_cvtsi32_si128(dma), dmb, 1));
    s->z = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot64_vnni(w, x, e)), pair_scales(f, 0, 2, x, e), s->z);
    pair_sums(s, _mm_shuffle_ps(f, f, 0xDD), x, xb);
}
INLINE float qend_q4_1_vnni(const QAcc *s) { return qacc_sum(s) + s->c + hsum8(s->m); }

// Q4_K with VNNI: 64 bytes (sub-blocks 4k .. 4k + 3) at a time, their low nibbles (sub-blocks
// 4k and 4k + 2) one vector and their high nibbles (4k + 1, 4k + 3) another, against x's planes
// in that order (XQ hk, lk); one float conversion and multiply-add for two sub-blocks (lanes 0-7
// and 8-15). (Before, each 32 bytes were broadcast to both halves and the upper half shifted,
// against x in its own order: 18 instructions each 128 weights where this takes 15; one thread,
// 768x768 in L2: see README "Quantized decoding".)
// the same as one vector of 16 floats: lanes 0-7 the scales, 8-15 the mins
INLINE __m512 q4_k_scales16(const unsigned char *p) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(q4_k_scale_bytes(p))); }

INLINE void qstep_q4_k(QAcc *s, const unsigned char *b, const XQ *x, int xb) {
    // lanes 0-7: d sc_j x.d_j (the sub-blocks' products' scales); 8-15: dmin mn_j x.s_j
    int32_t dm;
    memcpy(&dm, b, 4); // d and dmin, f16
    const __m512 dd = _mm512_permutexvar_ps(_mm512_mask_blend_epi32(0xFF00, _mm512_setzero_si512(), _mm512_set1_epi32(1)),
                                            _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(dm))));
    const __m512 xds = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(x->d + xb))),
                                                           _mm256_castps_pd(_mm256_loadu_ps(x->s + xb)), 1));
    const __m512 ds = _mm512_mul_ps(_mm512_mul_ps(q4_k_scales16(b + 4), dd), xds);
    s->zm = _mm512_add_ps(s->zm, ds); // lanes 8-15 (the mins) are what qend_q4_k takes of it
    const __m512i m15 = _mm512_set1_epi8(0x0F);
    const __m512i half = _mm512_mask_blend_epi32(0xFF00, _mm512_setzero_si512(), _mm512_set1_epi32(2));
    for (int k = 0; k < 2; k++) {
        const __m512i q = _mm512_loadu_si512(b + 16 + 64 * k);
        const __m512i lo = _mm512_and_si512(q, m15), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m15);
        const int e = QK * xb + 128 * k;
        const __m512i il = _mm512_add_epi32(half, _mm512_set1_epi32(4 * k)), ih = _mm512_add_epi32(il, _mm512_set1_epi32(1));
        s->z = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot64_vnni_at(lo, x->hk + e, x->lk + e)), _mm512_permutexvar_ps(il, ds), s->z);
        s->z = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot64_vnni_at(hi, x->hk + e + 64, x->lk + e + 64)),
                               _mm512_permutexvar_ps(ih, ds), s->z);
    }
}
INLINE float qend_q4_k(const QAcc *s) { return qacc_sum(s) - _mm512_mask_reduce_add_ps(0xFF00, s->zm); }
#else
// sub-blocks 2c and 2c + 1 from the low and high nibbles of 32 bytes; the eight sub-blocks'
// scales (times x's) as one vector, each taken out by a lane permute
INLINE void qstep_q4_k(QAcc *s, const unsigned char *b, const XQ *x, int xb) {
    __m256 sc, mn;
    q4_k_scales(b + 4, &sc, &mn);
    const __m256 ds = _mm256_mul_ps(_mm256_mul_ps(sc, _mm256_set1_ps(f16_at(b))), _mm256_loadu_ps(x->d + xb));
    s->m = _mm256_fmadd_ps(_mm256_mul_ps(mn, _mm256_set1_ps(f16_at(b + 2))), _mm256_loadu_ps(x->s + xb), s->m);
    const __m256i m15 = _mm256_set1_epi8(0x0F);
    for (int c = 0; c < 4; c++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * c));
        const __m256i lo = _mm256_and_si256(q, m15), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m15);
        const int x0 = xb + 2 * c, x1 = x0 + 1;
#if QWIDE
        const __m512 ds16 = _mm512_castps256_ps512(ds);
        const __m512i p0 = _mm512_madd_epi16(_mm512_cvtepu8_epi16(lo), _mm512_loadu_si512(x->q + QK * x0));
        const __m512i p1 = _mm512_madd_epi16(_mm512_cvtepu8_epi16(hi), _mm512_loadu_si512(x->q + QK * x1));
        s->z = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), _mm512_permutexvar_ps(_mm512_set1_epi32(2 * c), ds16), s->z);
        s->z = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), _mm512_permutexvar_ps(_mm512_set1_epi32(2 * c + 1), ds16), s->z);
#else
        const I16x16 p0 = dot32(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(lo)),
                                _mm256_cvtepu8_epi16(_mm256_extracti128_si256(lo, 1)), x->q + QK * x0);
        const I16x16 p1 = dot32(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(hi)),
                                _mm256_cvtepu8_epi16(_mm256_extracti128_si256(hi, 1)), x->q + QK * x1);
        s->a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_permutevar8x32_ps(ds, _mm256_set1_epi32(2 * c)), s->a);
        s->a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_permutevar8x32_ps(ds, _mm256_set1_epi32(2 * c + 1)), s->a);
#endif
    }
}
INLINE float qend_q4_k(const QAcc *s) { return qacc_sum(s) - hsum8(s->m); }
#endif

#if QVNNI
// lanes 4k .. 4k + 3 lane g0 + k of v (k < 4)
INLINE __m512 lanes_4(__m512 v, int g0) {
    const __m512i k = _mm512_srli_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 2);
    return _mm512_permutexvar_ps(_mm512_add_epi32(k, _mm512_set1_epi32(g0)), v);
}

// Q6_K with VNNI: a half's 128 6-bit values as two vectors of 64 unsigned bytes (0..63), in x's
// order: the 64 ql bytes' low nibbles (elements 0-63 of the half) and high nibbles (64-127),
// each with its two bits of qh (qh broadcast to both 256-bit halves and shifted by 4 and 2, or
// 0 and 2, bits: a 16-bit shift brings in bits of the neighbouring byte only outside 0x30).
// sum (q - 32) sc x = sum q sc x - 32 sum sc (x summed over each 16 values: s16); a lane
// (four values) of a group of 16 takes the group's scale d * sc times x's scale, which is one
// for the whole super-block (blk_quant_x's groups of 256): multiplied in once, not once a
// vector (four multiplies and loads of d4 fewer a super-block).
INLINE void qstep_q6_k(QAcc *s, const unsigned char *b, const XQ *x, int xb) {
    const __m512 sc = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b16_load(b + 192))),
                                    _mm512_set1_ps(f16_at(b + 208)));
    s->zm = _mm512_fmadd_ps(sc, _mm512_loadu_ps(x->s16 + 2 * xb), s->zm);
    const __m512 scx = _mm512_mul_ps(sc, _mm512_set1_ps(x->d[xb]));
    const __m512i m15 = _mm512_set1_epi8(0x0F), m48 = _mm512_set1_epi8(0x30);
    // qh's shifts: by 4 and 0 bits in the lower 256 bits' 16-bit lanes, by 2 and 2 in the upper
    // (one variable shift each, where a shift and a masked shift took two and one)
    const __m512i up_n = _mm512_mask_blend_epi32(0xFF00, _mm512_set1_epi16(4), _mm512_set1_epi16(2));
    const __m512i down_n = _mm512_mask_blend_epi32(0xFF00, _mm512_setzero_si512(), _mm512_set1_epi16(2));
    for (int h = 0; h < 2; h++) {
        const __m512i ql = _mm512_loadu_si512(b + 64 * h);
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h)));
        const __m512i up = _mm512_sllv_epi16(qh, up_n), down = _mm512_srlv_epi16(qh, down_n);
        // low nibble | (the shifted qh & 0x30) in one ternary logic (0xF8: a | (b & c))
        const __m512i lo = _mm512_ternarylogic_epi32(_mm512_and_si512(ql, m15), up, m48, 0xF8);
        const __m512i hi = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m15), down, m48, 0xF8);
        const int e = QK * (xb + 4 * h);
        const __m512 s0 = lanes_4(scx, 8 * h), s1 = lanes_4(scx, 8 * h + 4);
        s->z = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot64_vnni(lo, x, e)), s0, s->z);
        s->z = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot64_vnni(hi, x, e + 64)), s1, s->z);
    }
}
INLINE float qend_q6_k(const QAcc *s) { return qacc_sum(s) - 32 * _mm512_reduce_add_ps(s->zm); }
#else
// Q6_K without VNNI: a half's four 32-value parts as 32 unsigned bytes (0..63) each, in x's
// order (the low nibbles of ql[0:32) and ql[32:64), then their high nibbles, each with its two
// bits of qh); sum (q - 32) sc x = sum q sc x - 32 sum sc x16 (s16), as the VNNI kernel. Each
// 16 values (one scale) times x in int16 products summed in pairs (madd), scaled in float by
// d sc times x's scale.
INLINE void qstep_q6_k(QAcc *s, const unsigned char *b, const XQ *x, int xb) {
    const float d = f16_at(b + 208);
    const int8_t *sc = (const int8_t *)(b + 192);
    const __m128i scb = b16_load(b + 192);
    const __m256 dv = _mm256_set1_ps(d);
    const __m256 sc0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(scb)), dv);
    const __m256 sc1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(scb, 8))), dv);
    s->m = _mm256_fmadd_ps(sc0, _mm256_loadu_ps(x->s16 + 2 * xb), s->m);
    s->m = _mm256_fmadd_ps(sc1, _mm256_loadu_ps(x->s16 + 2 * xb + 8), s->m);
    const __m256i m15 = _mm256_set1_epi8(0x0F), m48 = _mm256_set1_epi8(0x30);
    for (int h = 0; h < 2; h++) {
        const __m256i A = _mm256_loadu_si256((const __m256i *)(b + 64 * h));
        const __m256i B = _mm256_loadu_si256((const __m256i *)(b + 64 * h + 32));
        const __m256i H = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
        __m256i p[4];
        p[0] = _mm256_or_si256(_mm256_and_si256(A, m15), _mm256_and_si256(_mm256_slli_epi16(H, 4), m48));
        p[1] = _mm256_or_si256(_mm256_and_si256(B, m15), _mm256_and_si256(_mm256_slli_epi16(H, 2), m48));
        p[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(A, 4), m15), _mm256_and_si256(H, m48));
        p[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(B, 4), m15),
                               _mm256_and_si256(_mm256_srli_epi16(H, 2), m48));
        for (int k = 0; k < 4; k++) { // x block xk: elements 128h + 32k .. + 31, groups g and g + 1
            const int xk = xb + 4 * h + k, g = 8 * h + 2 * k;
            const float dx = d * x->d[xk];
#if QWIDE
            const __m512i pr = _mm512_madd_epi16(_mm512_cvtepu8_epi16(p[k]), _mm512_loadu_si512(x->q + QK * xk));
            const __m512 sv = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(dx * (float)sc[g]), _mm512_set1_ps(dx * (float)sc[g + 1]));
            s->z = _mm512_fmadd_ps(_mm512_cvtepi32_ps(pr), sv, s->z);
#else
            // q sc fits int16 (63 * 128): the two groups' products summed before one conversion
            const I16x16 w0 = _mm256_mullo_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(p[k])),
                                                 _mm256_set1_epi16(sc[g]));
            const I16x16 w1 = _mm256_mullo_epi16(_mm256_cvtepu8_epi16(_mm256_extracti128_si256(p[k], 1)),
                                                 _mm256_set1_epi16(sc[g + 1]));
            qacc_add(s, dot32(w0, w1, x->q + QK * xk), dx);
#endif
        }
    }
}
INLINE float qend_q6_k(const QAcc *s) { return qacc_sum(s) - 32 * hsum8(s->m); }
#endif

// y[j] = W[j] . x for the n rows of a block type. The rows are cut into ROWS sections and each
// pass takes row g of every section, their blocks interleaved: each thread then reads ROWS
// sequential streams at once, as the float kernels read eight (out_in_body), and x's blocks are
// loaded once for ROWS rows. Adjacent rows, the layout before 2026-12-04, made one stream of
// short rows (Q8_0 rows of 768 are 816 bytes). On the Intel host (AVX-512 VNNI, 2 threads,
// 2026-12-04) four streams read [2304, 768] matrices from memory at 21 GB/s for Q8_0 against
// 16, Q4_K 18-20 against 14-15, Q6_K 20-21 against 15-16, and in the engine (fwd_bench-style,
// repetitions alternated in one process, medians of 7 pairs) Q8_0's generation ran 1.34x and
// Q4_K_M's 1.41-1.54x; on the Zen 4 host four streams a quarter of the chunk apart had measured
// 1.00-1.04x (2026-12-03). Each row's arithmetic is the same whatever the grouping, so y does
// not depend on how the rows are split. Rows are rb bytes apart.
enum { ROWS = 4, PF_ROWS = 2 }; // ROWS: out_in_q names its four accumulators

// One row's dot product alone: the rows after the sections.
INLINE float q_row(const unsigned char *r, int nb, int per, size_t bb, const XQ *x, QStep step, QStep step2, QEnd end) {
    QAcc s = qacc_zero();
    for (int b = 0; b < nb;) {
        if (step2 && b + 2 <= nb) {
            step2(&s, r + b * bb, x, b * per);
            b += 2;
        } else {
            step(&s, r + b * bb, x, b * per);
            b++;
        }
    }
    return end(&s);
}

// step2, where not NULL, adds two consecutive blocks (Q8_0 with VNNI); the last block of an odd
// count goes through step.
INLINE void out_in_q(const void *w, size_t rb, DType dt, int in, int n, const XQ *x, float *y, bool add, QStep step,
                     QStep step2, QEnd end) {
    const int blk = dtype_block(dt), nb = in / blk, per = blk / QK, S = n / ROWS;
    const size_t bb = dtype_bytes(dt, blk), rs = (size_t)S * rb; // rs: from one section to the next
    const unsigned char *r = w;
    // the hardware prefetchers lag on streams this short (a section of a 48-row chunk of
    // Q8_0 rows of 768 is 12 rows, 10 KB): each stream's row PF_ROWS on is fetched into L2 a
    // slice per block (as in_out_body does), and its first PF_ROWS rows before the loop. Into
    // L2 for every type: into L1 (prefetcht0) lost wherever it was measured with two threads
    // (Zen 4 2026-12-03: Q8_0 rows of 3072 14 GB/s against 21.5 into L2, a Q4_K_M token's
    // matrices 0.75-0.91 of the time into L2; Intel 2026-12-04: Q8_0 rows of 768 11.5 GB/s
    // against 17-19, SmolLM2's generation 1.07-1.12x into L2). Long rows are left to the
    // hardware.
    const bool pf = rb * ROWS < 16384 && !add;
    if (pf)
        for (int k = 0; k < ROWS && S > 0; k++) prefetch(r + k * rs, (int)(rb * (S < PF_ROWS ? S : PF_ROWS)));
    for (int g = 0; g < S; g++, r += rb) {
        // four named accumulators, not an array: GCC kept an array of them in memory, each
        // step then waiting on a store and a load (perf annotate, 2026-12-02)
        QAcc s0 = qacc_zero(), s1 = qacc_zero(), s2 = qacc_zero(), s3 = qacc_zero();
        const bool fetch = pf && g + PF_ROWS < S;
        for (int b = 0; b < nb;) {
            const int two = step2 && b + 2 <= nb;
            const unsigned char *q = r + b * bb;
            if (fetch) {
                const unsigned char *f = q + PF_ROWS * rb;
                const int len = (int)bb << two;
                prefetch(f, len), prefetch(f + rs, len), prefetch(f + 2 * rs, len), prefetch(f + 3 * rs, len);
            }
            if (two) {
                step2(&s0, q, x, b * per), step2(&s1, q + rs, x, b * per);
                step2(&s2, q + 2 * rs, x, b * per), step2(&s3, q + 3 * rs, x, b * per);
                b += 2;
                continue;
            }
            step(&s0, q, x, b * per), step(&s1, q + rs, x, b * per);
            step(&s2, q + 2 * rs, x, b * per), step(&s3, q + 3 * rs, x, b * per);
            b++;
        }
        const float e[ROWS] = {end(&s0), end(&s1), end(&s2), end(&s3)};
        for (int k = 0; k < ROWS; k++) y[k * S + g] = add ? y[k * S + g] + e[k] : e[k];
    }
    r = (const unsigned char *)w + (size_t)ROWS * rs;
    for (int j = ROWS * S; j < n; j++, r += rb) {
        const float e = q_row(r, nb, per, bb, x, step, step2, end);
        y[j] = add ? y[j] + e : e;
    }
}

#define OUT_IN_Q(T, t, s2, e)                                                                         \
    static void rows_##t(const void *w, size_t rb, int in, int n, const XQ *x, float *y, bool add) {  \
        out_in_q(w, rb, DT_##T, in, n, x, y, add, qstep_##t, s2, e);                                  \
    }                                                                                                 \
    static void out_in_q_##t(const void *w, int in, int n, const XQ *x, float *y) {                   \
        rows_##t(w, dtype_row_bytes(DT_##T, in), in, n, x, y, false);                                 \
    }                                                                                                 \
    static void out_in_##t(const void *w, int in, int n, const float *x, float *y) {                  \
        blk_out_in(w, DT_##T, in, n, x, y, rows_##t);                                                 \
    }
OUT_IN_Q(Q8_0, q8_0, qstep2_q8_0, qend_sum)
OUT_IN_Q(Q4_0, q4_0, qstep2_q4_0, qend_q4_0_vnni)
OUT_IN_Q(Q4_1, q4_1, qstep2_q4_1, qend_q4_1_vnni)
OUT_IN_Q(Q4_K, q4_k, NULL, qend_q4_k)
OUT_IN_Q(Q6_K, q6_k, NULL, qend_q6_k)
#undef OUT_IN_Q

// I8_AFFINE rows: y[j] = s_j (q_j . x - Z_j sum(x)), any in.
static void out_in_i8_affine(const void *w, int in, int n, const float *x, float *y) {
    const size_t rb = dtype_row_bytes(DT_I8_AFFINE, in);
    const int i16 = in - in % 16;
    V vs = v_zero();
    for (int i = 0; i < i16; i += W) vs = v_add(vs, v_load(x + i));
    float sumx = v_hsum(vs);
    for (int i = i16; i < in; i++) sumx += x[i];
    const unsigned char *r = w;
    for (int j = 0; j < n; j++, r += rb) {
        float s;
        int32_t z;
        memcpy(&s, r, 4), memcpy(&z, r + 4, 4);
        const int8_t *q = (const int8_t *)(r + I8_AFFINE_HEAD);
        V a0 = v_zero(), a1 = v_zero();
        int i = 0;
        for (; i + 32 <= i16; i += 32) {
            a0 = dot16(b16_load(q + i), x + i, a0);
            a1 = dot16(b16_load(q + i + 16), x + i + 16, a1);
        }
        if (i < i16) a0 = dot16(b16_load(q + i), x + i, a0);
        float dq = v_hsum(v_add(a0, a1));
        for (i = i16; i < in; i++) dq += (float)q[i] * x[i];
        y[j] = s * (dq - (float)z * sumx);
    }
}

// The first m (< 2W) elements from element i as two vectors, zeros after them (masked loads:
// nothing past them is read).
INLINE void load2_dt_part(const void *w, DType dt, int64_t i, int m, V *lo, V *hi) {
    *lo = load_dt_part(w, dt, i, m);
    *hi = load_dt_part(w, dt, i + W, m - W);
}

// Columns before the first whose element in the row at w + r (elements) starts a cache line:
// the vector loads after them are aligned, none straddling two lines (a safetensors header
// leaves tensors anywhere: GPT-2 F16's start 40 bytes past a line, and a 64-byte load from
// there reads two lines). 0 when the row is not even aligned to its element.
INLINE int head_cols(const void *w, DType dt, int64_t r, int n) {
    const uintptr_t a = (uintptr_t)((const char *)w + r * esize(dt)) % 64;
    if (a % (uintptr_t)esize(dt)) return 0;
    const int h = (int)((64 - a) % 64) / esize(dt);
    return h < n ? h : n;
}

// [in, out], eight rows from element r (rows rs elements apart), columns j .. j + m (m <= 2W;
// m < 2W through masked loads and stores): y += x W there. Every column is computed the same way
// whether its step is full or not, so y does not depend on where the rows start.
INLINE void io_step8(const void *w, DType dt, int64_t r, int64_t rs, int j, int m, const V *xv, float *y) {
    const bool full = m == 2 * W;
    V a0, b0, a1, b1, l, h;
    if (full) a0 = v_load(y + j), b0 = v_load(y + j + W), load2_dt(w, dt, r + j, &l, &h);
    else a0 = v_load_part(y + j, m), b0 = v_load_part(y + j + W, m - W), load2_dt_part(w, dt, r + j, m, &l, &h);
    a0 = v_fmadd(xv[0], l, a0), b0 = v_fmadd(xv[0], h, b0);
    if (full) load2_dt(w, dt, r + rs + j, &l, &h);
    else load2_dt_part(w, dt, r + rs + j, m, &l, &h);
    a1 = v_mul(xv[1], l), b1 = v_mul(xv[1], h);
    for (int k = 2; k < 8; k += 2) {
        if (full) load2_dt(w, dt, r + k * rs + j, &l, &h);
        else load2_dt_part(w, dt, r + k * rs + j, m, &l, &h);
        a0 = v_fmadd(xv[k], l, a0), b0 = v_fmadd(xv[k], h, b0);
        if (full) load2_dt(w, dt, r + (k + 1) * rs + j, &l, &h);
        else load2_dt_part(w, dt, r + (k + 1) * rs + j, m, &l, &h);
        a1 = v_fmadd(xv[k + 1], l, a1), b1 = v_fmadd(xv[k + 1], h, b1);
    }
    if (full) v_store(y + j, v_add(a0, a1)), v_store(y + j + W, v_add(b0, b1));
    else v_store_part(y + j, m, v_add(a0, a1)), v_store_part(y + j + W, m - W, v_add(b0, b1));
}

// Each thread's decoding reads its rows as eight streams, as the read bound does
// (kern/bound.c): the rows are cut into eight sections and each pass takes one row from each,
// so that every stream runs on through its section. (Eight adjacent rows, the layout before
// 2026-12-03, made eight streams of one row each, 1.5-12 KB, that ended together and restarted
// a group further on; kern_bench-style A/B in one process, 2 threads, weights on 2 MB pages:
// a token of GPT-2 124M 3% faster in F32, 11% in F16, 3.5% in BF16; the head alone 8% in F32
// and 28% in F16.) Each stream is fetched PF_STREAM bytes ahead into L2 (2 KB measured the
// same, 512 bytes slower in F16).
enum { PF_STREAM = 1024 };

// Prefetch the next 2W elements of the eight streams PF_STREAM bytes past element e of the
// first (streams rs elements apart).
INLINE void prefetch8(const void *w, DType dt, int64_t e, int64_t rs) {
    const int es = esize(dt);
    const char *p = (const char *)w + e * es + PF_STREAM;
    for (int k = 0; k < 8; k++) prefetch(p + k * rs * es, 2 * W * es);
}

// [in, out], y += x W: eight rows of W per pass over the columns, row g of each of eight
// sections of rows/8 rows (rows rs = rows/8 * ld elements apart), so that each load and store
// of y serves eight weight rows; 2W columns a step, two FMA chains per half. The steps start where
// the first of the eight rows meets a cache line (head_cols), the columns before it and the
// last ones in masked steps. The rows after the eight sections go one at a time.
INLINE void in_out_body(const void *w, DType dt, int64_t ld, int rows, int n, const float *x, float *y) {
    const int S = rows / 8;
    const int64_t rs = (int64_t)S * ld;
    for (int g = 0; g < S; g++) {
        V xv[8];
        for (int k = 0; k < 8; k++) xv[k] = v_set1(x[k * S + g]);
        const int64_t r = (int64_t)g * ld;
        const int h = head_cols(w, dt, r, n);
        int j = 0;
        for (; j < h; j += 2 * W) io_step8(w, dt, r, rs, j, h - j < 2 * W ? h - j : 2 * W, xv, y);
        j = h;
        for (; j + 2 * W <= n; j += 2 * W) {
            prefetch8(w, dt, r + j, rs);
            io_step8(w, dt, r, rs, j, 2 * W, xv, y);
        }
        if (j < n) io_step8(w, dt, r, rs, j, n - j, xv, y);
    }
    for (int i = 8 * S; i < rows; i++) {
        const V xi = v_set1(x[i]);
        const int64_t r = (int64_t)i * ld;
        int j = 0;
        for (; j + W <= n; j += W) v_store(y + j, v_fmadd(xi, load_dt(w, dt, r + j), v_load(y + j)));
        if (j < n) v_store_part(y + j, n - j, v_fmadd(xi, load_dt_part(w, dt, r + j, n - j), v_load_part(y + j, n - j)));
    }
}

// [out, in], eight rows from element r (rows rs elements apart), elements i .. i + m (m <= 2W;
// m < 2W through masked loads): a[k] += W[k] . x there.
INLINE void oi_step8(const void *w, DType dt, int64_t r, int64_t rs, int i, int m, const float *x, V *a) {
    const bool full = m == 2 * W;
    const V x0 = full ? v_load(x + i) : v_load_part(x + i, m), x1 = full ? v_load(x + i + W) : v_load_part(x + i + W, m - W);
    for (int k = 0; k < 8; k++) {
        V l, h;
        if (full) load2_dt(w, dt, r + k * rs + i, &l, &h);
        else load2_dt_part(w, dt, r + k * rs + i, m, &l, &h);
        a[k] = v_fmadd(h, x1, v_fmadd(l, x0, a[k]));
    }
}

// [out, in]: dot products, eight rows at a time, row g of each of eight sections of n/8 rows
// (as in_out_body; eight independent FMA chains hide the FMA latency and x is loaded once for
// the eight), 2W elements a step, from where the first of the eight rows meets a cache line.
// Each row's sum is computed the same way whichever pass takes it. The rows after the eight
// sections go one at a time.
INLINE void out_in_body(const void *w, DType dt, int in, int n, const float *x, float *y) {
    const int S = n / 8;
    const int64_t rs = (int64_t)S * in;
    for (int g = 0; g < S; g++) {
        V a[8];
        for (int k = 0; k < 8; k++) a[k] = v_zero();
        const int64_t r = (int64_t)g * in;
        const int h = head_cols(w, dt, r, in);
        int i = 0;
        for (; i < h; i += 2 * W) oi_step8(w, dt, r, rs, i, h - i < 2 * W ? h - i : 2 * W, x, a);
        i = h;
        for (; i + 2 * W <= in; i += 2 * W) {
            prefetch8(w, dt, r + i, rs);
            oi_step8(w, dt, r, rs, i, 2 * W, x, a);
        }
        if (i < in) oi_step8(w, dt, r, rs, i, in - i, x, a);
        for (int k = 0; k < 8; k++) y[k * S + g] = v_hsum(a[k]);
    }
    for (int j = 8 * S; j < n; j++) {
        V a = v_zero(), b = v_zero();
        const int64_t r = (int64_t)j * in;
        int i = 0;
        for (; i + 2 * W <= in; i += 2 * W) {
            V l, h;
            load2_dt(w, dt, r + i, &l, &h);
            a = v_fmadd(l, v_load(x + i), a);
            b = v_fmadd(h, v_load(x + i + W), b);
        }
        if (i < in) {
            V l, h;
            load2_dt_part(w, dt, r + i, in - i, &l, &h);
            a = v_fmadd(l, v_load_part(x + i, in - i), a);
            b = v_fmadd(h, v_load_part(x + i + W, in - i - W), b);
        }
        y[j] = v_hsum(v_add(a, b));
    }
}

// The Q8_0 KV cache (eval/forward.c `kv q8_0`): decoding reads one head's keys and values, rows
// of hd (a multiple of 32) with the query and the probabilities in float. The keys' scores,
// y[j] = K[j] . x over n rows: each block's 32 products summed in float and scaled by its d,
// as the scalar table's row dequantized and dotted (not x quantized, as out_in_q8_0 does for
// weights: the scores keep the query's precision, the cache's rounding is the only one). A
// head's rows are one sequential stream (68 bytes a row of 64); each row fetches the row
// PF_STREAM bytes on into L2. One thread on the Zen 4 host (2026-12-05, 200 heads of 512
// positions of 64, from memory): the scores 15 GB/s, the values 23 (F32's kernels 31-33 and
// 36-39 on four times the bytes); the same scores on x quantized (VNNI) 16, four rows a pass
// sharing x's loads 10-13. The conversions bound these kernels, not the memory.
static void out_in_fx_q8_0(const void *w, int in, int n, const float *x, float *y) {
    const size_t rb = dtype_row_bytes(DT_Q8_0, in);
    const unsigned char *r = w;
    for (int j = 0; j < n; j++, r += rb) {
        prefetch(r + PF_STREAM, (int)rb);
        V a = v_zero();
        const unsigned char *b = r;
        for (int i = 0; i < in; i += QK, b += Q8_0_BYTES) {
            const V s = dot16(b16_load(b + 18), x + i + 16, dot16(b16_load(b + 2), x + i, v_zero()));
            a = v_fmadd(v_set1(f16_at(b)), s, a);
        }
        y[j] = v_hsum(a);
    }
}

// The values' weighted sum, y (n) += x (rows) V, rows of ld elements (Q8_0 [in, out], n and ld
// multiples of 32): 64 columns at a time in registers over every row, each block's 32 values
// times x[i] d.
static void in_out_q8_0(const void *w, int64_t ld, int rows, int n, const float *x, float *y) {
    enum { COLS = 64, NV = COLS / W };
    const size_t rb = dtype_row_bytes(DT_Q8_0, ld);
    for (int j0 = 0; j0 < n; j0 += COLS) {
        const int nb = (n - j0 < COLS ? n - j0 : COLS) / QK; // blocks in this slice: 1 or 2
        V acc[NV];
        for (int k = 0; k < NV; k++) acc[k] = k < nb * QK / W ? v_load(y + j0 + k * W) : v_zero();
        const unsigned char *r = (const unsigned char *)w + dtype_bytes(DT_Q8_0, j0);
        for (int i = 0; i < rows; i++, r += rb) {
            prefetch(r + PF_STREAM, nb * Q8_0_BYTES);
            for (int b = 0; b < nb; b++) {
                const unsigned char *q = r + b * Q8_0_BYTES;
                const V s = v_set1(x[i] * f16_at(q));
                V f[2 * VB];
                v_from_i8x16(b16_load(q + 2), f);
                v_from_i8x16(b16_load(q + 18), f + VB);
                for (int k = 0; k < 2 * VB; k++) acc[b * 2 * VB + k] = v_fmadd(s, f[k], acc[b * 2 * VB + k]);
            }
        }
        for (int k = 0; k < nb * QK / W; k++) v_store(y + j0 + k * W, acc[k]);
    }
}

// e^x (Cephes-style: 2^n times a degree-6 polynomial on [-ln2/2, ln2/2]); relative error
// about 2e-7 over [-87, 88], 0 below.
INLINE V v_exp(V x) {
    const V lo = v_set1(-87.0f);
    const V xc = v_min(v_max(x, lo), v_set1(88.0f));
    const V n = v_round(v_mul(xc, v_set1(1.44269504088896341f)));
    V r = v_fnmadd(n, v_set1(0.693359375f), xc);
    r = v_fnmadd(n, v_set1(-2.12194440e-4f), r);
    V p = v_set1(1.9875691500e-4f);
    p = v_fmadd(p, r, v_set1(1.3981999507e-3f));
    p = v_fmadd(p, r, v_set1(8.3334519073e-3f));
    p = v_fmadd(p, r, v_set1(4.1665795894e-2f));
    p = v_fmadd(p, r, v_set1(1.6666665459e-1f));
    p = v_fmadd(p, r, v_set1(5.0000001201e-1f));
    p = v_fmadd(p, v_mul(r, r), v_add(r, v_set1(1.0f)));
    return v_zero_below(v_mul(p, v_pow2i(n)), x, lo);
}

// The training pass's GELU as x s with s = (1 + tanh u) / 2 = 1 / (1 + e^(-2u)), as the
// scalar table's (kern/scalar.c): no cancellation where tanh u nears -1, so out keeps its
// relative precision for negative x (1 - 2 / (e^(2u) + 1) above loses it there). Derivative:
// s + 2 x s (1 - s) k (1 + 3 c x^2), with 1 - s = s e^(-2u).
static void gelu_tanh_to_simd(float *out, const float *inp, int n) {
    const V k = v_set1(0.7978845608028654f), c = v_set1(0.044715f), one = v_set1(1.0f), m2 = v_set1(-2.0f);
    int i = 0;
    for (; i + W <= n; i += W) {
        V x = v_load(inp + i);
        V u = v_mul(k, v_fmadd(v_mul(c, x), v_mul(x, x), x));
        v_store(out + i, v_div(x, v_add(one, v_exp(v_mul(m2, u)))));
    }
    for (; i < n; i++) {
        float x = inp[i];
        out[i] = x / (1.0f + expf(-2.0f * 0.7978845608028654f * (x + 0.044715f * x * x * x)));
    }
}

static void gelu_tanh_backward_simd(float *dinp, const float *inp, const float *dout, int n) {
    const V k = v_set1(0.7978845608028654f), c = v_set1(0.044715f), c3 = v_set1(3.0f * 0.044715f);
    const V one = v_set1(1.0f), m2 = v_set1(-2.0f), two_k = v_set1(2.0f * 0.7978845608028654f);
    int i = 0;
    for (; i + W <= n; i += W) {
        V x = v_load(inp + i), x2 = v_mul(x, x);
        V u = v_mul(k, v_fmadd(v_mul(c, x), x2, x));
        V e = v_exp(v_mul(m2, u));
        V s = v_div(one, v_add(one, e));
        V ds = v_mul(v_mul(s, v_mul(s, e)), v_mul(two_k, v_fmadd(c3, x2, one))); // 2 s (1 - s) du/dx
        V g = v_fmadd(x, ds, s);
        v_store(dinp + i, v_fmadd(g, v_load(dout + i), v_load(dinp + i)));
    }
    for (; i < n; i++) dinp[i] += gelu_tanh_grad1(inp[i]) * dout[i];
}

// The F16 KV cache's store: clamped to +-65504 (min and max return their second operand
// when either is NaN, so a NaN passes through), then the conversion's own nearest-even rounding.
static void f16_from_f32_simd(const float *x, int n, uint16_t *h) {
    const V hi = v_set1(65504.0f), lo = v_set1(-65504.0f);
    int i = 0;
    for (; i + W <= n; i += W) v_store_f16(h + i, v_max(lo, v_min(hi, v_load(x + i))));
    for (; i < n; i++) h[i] = f32_to_f16_sat(x[i]);
}

static void softmax_simd(float *x, int n) {
    const int nv = n - n % W;
    float mx = -INFINITY;
    if (nv) {
        V m = v_load(x);
        for (int i = W; i < nv; i += W) m = v_max(m, v_load(x + i));
        mx = v_hmax(m);
    }
    for (int i = nv; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    const V vmx = v_set1(mx);
    V acc = v_zero();
    for (int i = 0; i < nv; i += W) {
        V e = v_exp(v_sub(v_load(x + i), vmx));
        v_store(x + i, e);
        acc = v_add(acc, e);
    }
    double s = v_hsum(acc);
    for (int i = nv; i < n; i++) {
        x[i] = expf(x[i] - mx);
        s += x[i];
    }
    const float inv = (float)(1.0 / s);
    const V vinv = v_set1(inv);
    for (int i = 0; i < nv; i += W) v_store(x + i, v_mul(v_load(x + i), vinv));
    for (int i = nv; i < n; i++) x[i] *= inv;
}

// Two passes per row (mean, then the mean square of the deviations) in W lanes.
static void layernorm_simd(float *out, const float *inp, const float *w, const float *b, int T, int C, float eps) {
    const int nv = C - C % W;
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        float *o = out + (size_t)t * C;
        V s = v_zero();
        for (int i = 0; i < nv; i += W) s = v_add(s, v_load(x + i));
        float sum = v_hsum(s);
        for (int i = nv; i < C; i++) sum += x[i];
        const float m = sum / (float)C;
        const V vm = v_set1(m);
        V q = v_zero();
        for (int i = 0; i < nv; i += W) {
            V d = v_sub(v_load(x + i), vm);
            q = v_fmadd(d, d, q);
        }
        float var = v_hsum(q);
        for (int i = nv; i < C; i++) var += (x[i] - m) * (x[i] - m);
        const float rstd = 1.0f / sqrtf(var / (float)C + eps);
        const V vr = v_set1(rstd);
        for (int i = 0; i < nv; i += W) {
            V y = v_mul(v_mul(v_sub(v_load(x + i), vm), vr), v_load(w + i));
            v_store(o + i, b ? v_add(y, v_load(b + i)) : y);
        }
        for (int i = nv; i < C; i++) o[i] = (x[i] - m) * rstd * w[i] + (b ? b[i] : 0.0f);
    }
}

static void rmsnorm_simd(float *out, const float *inp, const float *w, int T, int C, float eps) {
    const int nv = C - C % W;
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        float *o = out + (size_t)t * C;
        V q = v_zero();
        for (int i = 0; i < nv; i += W) q = v_fmadd(v_load(x + i), v_load(x + i), q);
        float ss = v_hsum(q);
        for (int i = nv; i < C; i++) ss += x[i] * x[i];
        const float r = 1.0f / sqrtf(ss / (float)C + eps);
        const V vr = v_set1(r);
        for (int i = 0; i < nv; i += W) v_store(o + i, v_mul(v_mul(v_load(x + i), vr), v_load(w + i)));
        for (int i = nv; i < C; i++) o[i] = x[i] * r * w[i];
    }
}

// silu(g) = g / (1 + e^-g) (v_exp stops at e^88, where silu is below 1e-36 anyway)
static void swiglu_simd(float *gate, const float *up, int n) {
    const V one = v_set1(1.0f);
    int i = 0;
    for (; i + W <= n; i += W) {
        V g = v_load(gate + i);
        V e = v_exp(v_sub(v_zero(), g));
        v_store(gate + i, v_mul(v_div(g, v_add(one, e)), v_load(up + i)));
    }
    for (; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

// erf(z) = 1 - (a1 t + ... + a5 t^5) e^(-z^2), t = 1 / (1 + p |z|) (Abramowitz and Stegun
// 7.1.26, absolute error below 1.5e-7), the sign of z restored.
static void gelu_erf_simd(float *x, int n) {
    const V one = v_set1(1.0f), half = v_set1(0.5f), r2 = v_set1(0.70710678118654752f);
    int i = 0;
    for (; i + W <= n; i += W) {
        V v = v_load(x + i), z = v_mul(v, r2);
        V az = v_max(z, v_sub(v_zero(), z));
        V t = v_div(one, v_fmadd(v_set1(0.3275911f), az, one));
        V p = v_set1(1.061405429f);
        p = v_fmadd(p, t, v_set1(-1.453152027f));
        p = v_fmadd(p, t, v_set1(1.421413741f));
        p = v_fmadd(p, t, v_set1(-0.284496736f));
        p = v_fmadd(p, t, v_set1(0.254829592f));
        p = v_mul(p, t);
        V erf_abs = v_fnmadd(p, v_exp(v_sub(v_zero(), v_mul(az, az))), one);
        V erf = v_div(v_mul(erf_abs, z), v_max(az, v_set1(1e-30f))); // sign(z) |erf|
        v_store(x + i, v_mul(v_mul(half, v), v_add(one, erf)));
    }
    for (; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

// x quantized for the block types' products (QuantXFn), 32 values at a time in AVX2 (both
// tables): the same operations as blk_quant_x and blk_quant_x_bytes, so the same bits (the
// largest |x| is exact, x * (32767 / amax) is one rounded product, cvtps rounds to nearest
// even as lrintf does, the sums are integers); NaN in x is ignored by the maximum as there.
// It runs on the calling thread before every section of block-type products: done a value
// at a time it held the other thread waiting for about 10 µs a section of 3072 inputs.
INLINE int hsum_i32x8(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1)));
}

// the 32 int32 of e[0..3] (values in range of the target) as 32 bytes in order: signed
// (packs) or unsigned (packus) saturation of the last step
INLINE __m256i bytes_of(const __m256i *e, bool is_signed) {
    const __m256i w01 = _mm256_packs_epi32(e[0], e[1]), w23 = _mm256_packs_epi32(e[2], e[3]);
    const __m256i b = is_signed ? _mm256_packs_epi16(w01, w23) : _mm256_packus_epi16(w01, w23);
    // each 128-bit lane holds four values of each of e[0..3] in turn: gather them back in order
    return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static void quant_x_simd(const float *x, int n, int16_t *q, float *d, float *s, void *bytes, XQ *xq) {
    float *d4 = bytes, *s16 = d4 + n / 4;
    int32_t *hc = (int32_t *)(s16 + n / 16);
    int8_t *h = (int8_t *)(hc + n / 4);
    uint8_t *l = (uint8_t *)(h + n);
    int8_t *hk = (int8_t *)(l + n);
    uint8_t *lk = (uint8_t *)(hk + n);
    const __m256 sign = _mm256_set1_ps(-0.0f), lim = _mm256_set1_ps((float)XQ_MAX);
    const int nb = n / QK;
    float amax = 0;
    bool finite = true; // the group's values (blk_quant_x: q = 0 and d = NaN when not)
    for (int b = 0, ge = 0; b < nb; b++) {
        const float *xb = x + QK * b;
        __m256 v[4];
        if (b == ge) { // a new x-scale group (blk_xq_group): its largest |x|
            const int ng = blk_xq_group(b, nb);
            __m256 m = _mm256_setzero_ps(), z = _mm256_setzero_ps();
            for (int k = 0; k < 4 * ng; k++) {
                const __m256 xk = _mm256_loadu_ps(xb + 8 * k);
                m = _mm256_max_ps(_mm256_andnot_ps(sign, xk), m); // NaN: m kept, as blk_quant_x
                z = _mm256_add_ps(z, _mm256_mul_ps(xk, _mm256_setzero_ps())); // NaN once x holds a NaN or an infinity
            }
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
            finite = !_mm256_movemask_ps(_mm256_cmp_ps(z, z, _CMP_UNORD_Q));
            ge = b + ng;
        }
        for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_ps(xb + 8 * k);
        const __m256 id = _mm256_set1_ps(finite && amax >= 1e-30f ? (float)XQ_MAX / amax : 0.0f);
        __m256i e[4], hi[4], lo[4];
        for (int k = 0; k < 4; k++) {
            const __m256 t = _mm256_max_ps(_mm256_min_ps(_mm256_mul_ps(v[k], id), lim), _mm256_sub_ps(_mm256_setzero_ps(), lim));
            e[k] = _mm256_cvtps_epi32(t);
            hi[k] = _mm256_srai_epi32(e[k], 8), lo[k] = _mm256_and_si256(e[k], _mm256_set1_epi32(255));
        }
        const __m256i q01 = _mm256_permute4x64_epi64(_mm256_packs_epi32(e[0], e[1]), 0xD8);
        const __m256i q23 = _mm256_permute4x64_epi64(_mm256_packs_epi32(e[2], e[3]), 0xD8);
        _mm256_storeu_si256((__m256i *)(q + QK * b), q01);
        _mm256_storeu_si256((__m256i *)(q + QK * b + 16), q23);
        const __m256i hb = bytes_of(hi, true), lb = bytes_of(lo, false);
        _mm256_storeu_si256((__m256i *)(h + QK * b), hb);
        _mm256_storeu_si256((__m256i *)(l + QK * b), lb);
        if (QK * b < n - n % 128) {
            _mm256_storeu_si256((__m256i *)(hk + blk_q4k_pos(QK * b)), hb);
            _mm256_storeu_si256((__m256i *)(lk + blk_q4k_pos(QK * b)), lb);
        }
        const int32_t s0 = hsum_i32x8(_mm256_add_epi32(e[0], e[1])), s1 = hsum_i32x8(_mm256_add_epi32(e[2], e[3]));
        d[b] = !finite ? NAN : amax >= 1e-30f ? amax / (float)XQ_MAX : 0.0f;
        s[b] = d[b] * (float)(s0 + s1);
        s16[2 * b] = d[b] * (float)s0, s16[2 * b + 1] = d[b] * (float)s1;
        _mm256_storeu_ps(d4 + 8 * b, _mm256_set1_ps(d[b]));
        // -128 (sum of h over four values): h's int32 summed in pairs twice (hadd), then put
        // back in order (hadd works within 128-bit lanes)
        const __m256i h4 = _mm256_hadd_epi32(_mm256_hadd_epi32(hi[0], hi[1]), _mm256_hadd_epi32(hi[2], hi[3]));
        _mm256_storeu_si256((__m256i *)(hc + 8 * b),
                            _mm256_mullo_epi32(_mm256_permutevar8x32_epi32(h4, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)),
                                               _mm256_set1_epi32(-128)));
    }
    *xq = (XQ){q, d, s, h, l, d4, s16, hc, hk, lk};
}

// A row of n floats (n a multiple of 32) into Q8_0 blocks as quant_rows rounds them (the Q8_0
// KV cache's keys and values as they enter it): the largest |x| of a block exact, d = amax /
// 127 and id = 1 / d as there, each x * id one rounded product, then rounded half away from
// zero as roundf does (truncated, plus the sign where the dropped part is at least a half:
// both exact below 2^23). -1, with the row's blocks not all written, when a value is not
// finite (quant_rows refuses those). Done a value at a time through roundf it made a 512-token
// prefill of GPT-2 124M with the Q8_0 cache about 5% slower than with the F32 cache.
static int q8_0_from_f32_simd(const float *x, int n, void *dst) {
    const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f), big = _mm256_set1_ps(FLT_MAX);
    unsigned char *o = dst;
    for (int b = 0; b < n; b += QK, o += Q8_0_BYTES) {
        __m256 v[4], m = _mm256_setzero_ps();
        int bad = 0;
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + b + 8 * k);
            const __m256 a = _mm256_andnot_ps(sign, v[k]);
            bad |= _mm256_movemask_ps(_mm256_cmp_ps(a, big, _CMP_NLE_UQ)); // NaN or infinite
            m = _mm256_max_ps(a, m);
        }
        if (bad) return -1;
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        const float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
        const float d = amax / 127, id = d != 0 ? 1.0f / d : 0.0f;
        const uint16_t h = f32_to_f16(d);
        memcpy(o, &h, 2);
        __m256i e[4];
        for (int k = 0; k < 4; k++) {
            const __m256 y = _mm256_mul_ps(v[k], _mm256_set1_ps(id));
            const __m256 t = _mm256_round_ps(y, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            const __m256 up = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(y, t)), half, _CMP_GE_OQ);
            const __m256 one = _mm256_or_ps(_mm256_and_ps(y, sign), _mm256_set1_ps(1.0f)); // +-1 as y's sign
            e[k] = _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, one)));
        }
        _mm256_storeu_si256((__m256i *)(o + 2), bytes_of(e, true));
    }
    return 0;
}

// One copy of each kernel per element type, the type a constant inside.
#define SIMD_PER_TYPE(T)                                                                              \
    static void row_##T(const void *w, int64_t off, int64_t n, float *out) {                          \
        row_body(w, DT_##T, off, n, out);                                                             \
    }                                                                                                 \
    static void in_out_##T(const void *w, int64_t ld, int rows, int n, const float *x, float *y) {    \
        in_out_body(w, DT_##T, ld, rows, n, x, y);                                                    \
    }                                                                                                 \
    static void out_in_##T(const void *w, int in, int n, const float *x, float *y) {                  \
        out_in_body(w, DT_##T, in, n, x, y);                                                          \
    }
SIMD_PER_TYPE(F32)
SIMD_PER_TYPE(F16)
SIMD_PER_TYPE(BF16)

#ifdef GEMM_MR
// Prefill tiles (GemmFn): GEMM_MR rows of x by GEMM_NR columns of W, summed over GEMM_KC rows
// of W at a time (a pass) in GEMM_MR x 2 vector registers. x is copied per pass into panels of
// GEMM_MR rows, k-major ([k][GEMM_MR], rows past T zero). W's pass goes GEMM_NB columns at a
// time: converted to f32 into k-major panels of GEMM_NR columns ([k][GEMM_NR], 64 KB each, the
// block in L2; [out, in] weights transposed W x W at a time in registers, v_transpose), then
// each row panel of x multiplied by the block's panels in turn. While a block is multiplied,
// the next one's cache lines are prefetched a few at a time between the tiles' steps, so that
// reading the weights from memory overlaps the arithmetic: OpenBLAS's sgemm reads (packs) each
// block of the weights before it multiplies it, and at 128 tokens that read was a sixth of
// prefill. Paired in one process on the Intel host (AVX-512, 2 threads, 2026-12-05), prefill
// against the sgemm path: 128 tokens of GPT-2 124M F32 1.21x as fast, F16 1.22x, BF16 1.20x,
// the Llama shape ([out, in]) 1.16x; 512 tokens 0.99-1.02x. Only the AVX-512 tables have
// tiles: AVX2's 6 x 16 ones ran at 0.84x (128) and 0.68x (512) of OpenBLAS's sgemm on that
// host (OpenBLAS's AVX-512 kernels there; not measured on an AVX2-only CPU).
enum { GEMM_NR = 2 * W };
_Static_assert(GEMM_MR <= (int)GEMM_MR_MAX && (int)GEMM_NR <= (int)GEMM_NR_MAX && GEMM_NB % GEMM_NR == 0,
               "scratch sized for these tiles, blocks of whole panels");

// Where the next block's cache lines are: n_seg segments of seg_lines lines, seg_ld bytes apart
// (the extra line of a segment covers its end when it does not start on a line); a tile
// prefetches lines [line, line + n) of them, `per` lines every `step` steps.
typedef struct {
    const char *base;
    int64_t seg_ld;
    int seg_lines, line, n, per, step;
} GemmPf;

// One tile: c[0:rows, 0:nc) = (acc ? c : bias ? bias : 0) + xp . wp over kc steps (bias: nc
// floats, the same for every row), prefetching as pf says.
static void gemm_tile(int kc, const float *xp, const float *wp, float *c, int ldc, int rows, int nc, bool acc,
                      const float *bias, GemmPf pf) {
    V c0[GEMM_MR], c1[GEMM_MR];
#pragma GCC unroll 16
    for (int r = 0; r < GEMM_MR; r++) c0[r] = c1[r] = v_zero();
    int seg = pf.seg_lines ? pf.line / pf.seg_lines : 0, off = pf.seg_lines ? pf.line % pf.seg_lines : 0;
    for (int k = 0, s = 0; k < kc; k++) {
        const V w0 = v_load(wp + (size_t)k * GEMM_NR), w1 = v_load(wp + (size_t)k * GEMM_NR + W);
        const float *x = xp + (size_t)k * GEMM_MR;
#pragma GCC unroll 16
        for (int r = 0; r < GEMM_MR; r++) {
            const V a = v_set1(x[r]);
            c0[r] = v_fmadd(a, w0, c0[r]);
            c1[r] = v_fmadd(a, w1, c1[r]);
        }
        if (pf.n > 0 && ++s == pf.step) {
            s = 0;
            for (int q = 0; q < pf.per && pf.n > 0; q++, pf.n--) {
                __builtin_prefetch(pf.base + seg * pf.seg_ld + off * 64, 0, 1); // into L2 (see prefetch)
                if (++off == pf.seg_lines) off = 0, seg++;
            }
        }
    }
    V b0 = v_zero(), b1 = v_zero();
    if (!acc && bias) b0 = v_load_part(bias, nc), b1 = v_load_part(bias + W, nc - W);
#pragma GCC unroll 16
    for (int r = 0; r < GEMM_MR; r++) {
        if (r >= rows) break;
        float *d = c + (size_t)r * ldc;
        if (nc == GEMM_NR) {
            if (acc) c0[r] = v_add(c0[r], v_load(d)), c1[r] = v_add(c1[r], v_load(d + W));
            else if (bias) c0[r] = v_add(c0[r], b0), c1[r] = v_add(c1[r], b1);
            v_store(d, c0[r]), v_store(d + W, c1[r]);
        } else {
            if (acc) c0[r] = v_add(c0[r], v_load_part(d, nc)), c1[r] = v_add(c1[r], v_load_part(d + W, nc - W));
            else if (bias) c0[r] = v_add(c0[r], b0), c1[r] = v_add(c1[r], b1);
            v_store_part(d, nc, c0[r]), v_store_part(d + W, nc - W, c1[r]);
        }
    }
}

// W's columns jb..jb + nb over rows k0..k0 + kc as f32 panels of GEMM_NR columns, each
// k-major: panel p at wp + p * kc * GEMM_NR, [k][GEMM_NR], zero past nb. [in, out] weights are
// read a row of the block at a time (nb columns contiguous); [out, in] ones W x W at a time,
// transposed in registers.
INLINE void gemm_block(const void *w, DType dt, bool out_in, int in, int n_out, int k0, int kc, int jb, int nb,
                       float *wp) {
    const int np = (nb + GEMM_NR - 1) / GEMM_NR;
    if (!out_in) {
        for (int k = 0; k < kc; k++)
            for (int p = 0; p < np; p++) {
                const int64_t i = (int64_t)(k0 + k) * n_out + jb + p * GEMM_NR;
                const int nc = nb - p * GEMM_NR;
                float *d = wp + ((size_t)p * kc + k) * GEMM_NR;
                v_store(d, load_dt_part(w, dt, i, nc));
                v_store(d + W, load_dt_part(w, dt, i + W, nc - W));
            }
        return;
    }
    for (int jj = 0; jj < np * GEMM_NR; jj += W)
        for (int k = 0; k < kc; k += W) {
            V r[W];
            for (int i = 0; i < W; i++)
                r[i] = jj + i < nb ? load_dt_part(w, dt, (int64_t)(jb + jj + i) * in + k0 + k, kc - k) : v_zero();
            v_transpose(r);
            float *d = wp + (size_t)(jj / GEMM_NR) * kc * GEMM_NR + jj % GEMM_NR;
            for (int i = 0; i < W && k + i < kc; i++) v_store(d + (size_t)(k + i) * GEMM_NR, r[i]);
        }
}

// Rows x[0:T) (T <= GEMM_TB) of a GemmFn: per pass of GEMM_KC rows of W, x's tiles copied, then
// W's columns GEMM_NB at a time: converted (gemm_block), then each row tile of x over the
// block's panels in turn (so a tile's outputs are a whole row of the block; panels first, then
// rows, was 1-5% slower on GPT-2's shapes), the next block prefetched meanwhile.
INLINE void gemm_rows(const float *x, int T, int in, const void *w, DType dt, bool out_in, int n_out, int j0, int j1,
                      float *out, bool acc, const float *bias, float *scratch) {
    const int nt = (T + GEMM_MR - 1) / GEMM_MR, es = esize(dt);
    float *xp = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63), *wp = xp + (size_t)nt * GEMM_MR * GEMM_KC;
    for (int k0 = 0; k0 < in; k0 += GEMM_KC) {
        const int kc = in - k0 < GEMM_KC ? in - k0 : GEMM_KC;
        // x's rows of each tile, W columns at a time transposed in registers
        for (int tp = 0; tp < nt; tp++)
            for (int k = 0; k < kc; k += W) {
                V r[W];
                for (int i = 0; i < W; i++) {
                    const int t = tp * GEMM_MR + i;
                    r[i] = i < GEMM_MR && t < T ? load_dt_part(x, DT_F32, (int64_t)t * in + k0 + k, kc - k) : v_zero();
                }
                v_transpose(r);
                for (int i = 0; i < W && k + i < kc; i++)
                    v_store_part(xp + ((size_t)tp * kc + k + i) * GEMM_MR, GEMM_MR, r[i]);
            }
        for (int jb = j0; jb < j1; jb += GEMM_NB) {
            const int nb = j1 - jb < GEMM_NB ? j1 - jb : GEMM_NB, np = (nb + GEMM_NR - 1) / GEMM_NR;
            gemm_block(w, dt, out_in, in, n_out, k0, kc, jb, nb, wp);
            // the next block: this pass's next columns, else the next pass's first; its lines
            // spread over this block's np x nt tiles
            int nk0 = k0, njb = jb + GEMM_NB;
            if (njb >= j1) nk0 = k0 + GEMM_KC, njb = j0;
            GemmPf pf = {0};
            int lines = 0, per_tile = 0;
            if (nk0 < in) {
                const int nkc = in - nk0 < GEMM_KC ? in - nk0 : GEMM_KC, nnb = j1 - njb < GEMM_NB ? j1 - njb : GEMM_NB;
                const int64_t row = out_in ? in : n_out, first = out_in ? (int64_t)njb * in + nk0 : (int64_t)nk0 * n_out + njb;
                const int n_seg = out_in ? nnb : nkc, seg_bytes = (out_in ? nkc : nnb) * es;
                pf = (GemmPf){.base = (const char *)w + first * es, .seg_ld = row * es, .seg_lines = seg_bytes / 64 + 1};
                lines = n_seg * pf.seg_lines, per_tile = (lines + np * nt - 1) / (np * nt);
                pf.per = (per_tile + kc - 1) / kc;
                pf.step = kc / ((per_tile + pf.per - 1) / pf.per);
                if (pf.step < 1) pf.step = 1;
            }
            for (int tp = 0, i = 0; tp < nt; tp++)
                for (int p = 0; p < np; p++, i++) {
                    // the next tile's outputs: their rows n_out apart may share a few cache sets
                    // (n_out * 4 a multiple of 4096 bytes) and are then read from beyond L2
                    const int ntp = p + 1 < np ? tp : tp + 1, npn = p + 1 < np ? p + 1 : 0;
                    if (ntp < nt)
                        for (int r = 0; r < GEMM_MR && ntp * GEMM_MR + r < T; r++) {
                            const float *c = out + (size_t)(ntp * GEMM_MR + r) * n_out + jb + npn * GEMM_NR;
                            __builtin_prefetch(c, 1, 2), __builtin_prefetch(c + GEMM_NR - 1, 1, 2);
                        }
                    GemmPf q = pf;
                    q.line = i * per_tile;
                    q.n = lines - q.line < per_tile ? lines - q.line : per_tile;
                    gemm_tile(kc, xp + (size_t)tp * kc * GEMM_MR, wp + (size_t)p * kc * GEMM_NR,
                              out + (size_t)tp * GEMM_MR * n_out + jb + p * GEMM_NR, n_out,
                              T - tp * GEMM_MR < GEMM_MR ? T - tp * GEMM_MR : GEMM_MR,
                              nb - p * GEMM_NR < GEMM_NR ? nb - p * GEMM_NR : GEMM_NR, acc || k0 > 0,
                              bias ? bias + jb + p * GEMM_NR : NULL, q);
                }
        }
    }
}

#define SIMD_GEMM(T)                                                                                  \
    static void gemm_##T(const float *x, int n, int in, const void *w, bool out_in, int n_out, int j0, int j1, \
                         float *out, bool acc, const float *bias, float *scratch) {                   \
        for (int t = 0; t < n; t += GEMM_TB)                                                          \
            gemm_rows(x + (size_t)t * in, n - t < GEMM_TB ? n - t : GEMM_TB, in, w, DT_##T, out_in, n_out, j0, j1, \
                      out + (size_t)t * n_out, acc, bias, scratch);                                   \
    }
SIMD_GEMM(F32)
SIMD_GEMM(F16)
SIMD_GEMM(BF16)
#define SIMD_GEMM_TABLE .gemm = {[DT_F32] = gemm_F32, [DT_F16] = gemm_F16, [DT_BF16] = gemm_BF16},
#else
#define SIMD_GEMM_TABLE
#endif

// Quantized types in [in, out] layout are produced by no loader: the scalar table's kernels
// serve them, but for Q8_0's, the Q8_0 KV cache's values.
#define SIMD_TABLE(NAME)                                                                              \
    {                                                                                                 \
        .name = NAME,                                                                                 \
        .row_f32 = {[DT_F32] = row_F32, [DT_F16] = row_F16, [DT_BF16] = row_BF16, [DT_Q8_0] = row_q8_0, \
                    [DT_Q4_0] = row_q4_0, [DT_Q4_1] = row_q4_1, [DT_Q4_K] = row_q4_k, [DT_Q6_K] = row_q6_k, \
                    [DT_I8_AFFINE] = row_i8_affine},                                                  \
        .mv_in_out = {[DT_F32] = in_out_F32, [DT_F16] = in_out_F16, [DT_BF16] = in_out_BF16,          \
                      [DT_Q8_0] = in_out_q8_0},                                                       \
        .mv_out_in = {[DT_F32] = out_in_F32, [DT_F16] = out_in_F16, [DT_BF16] = out_in_BF16,          \
                      [DT_Q8_0] = out_in_q8_0, [DT_Q4_0] = out_in_q4_0, [DT_Q4_1] = out_in_q4_1,      \
                      [DT_Q4_K] = out_in_q4_k, [DT_Q6_K] = out_in_q6_k, [DT_I8_AFFINE] = out_in_i8_affine}, \
        .mv_out_in_fx = {[DT_Q8_0] = out_in_fx_q8_0},                                                 \
        .mv_out_in_q = {[DT_Q8_0] = out_in_q_q8_0, [DT_Q4_0] = out_in_q_q4_0, [DT_Q4_1] = out_in_q_q4_1,  \
                        [DT_Q4_K] = out_in_q_q4_k, [DT_Q6_K] = out_in_q_q6_k},                     \
        .quant_x = quant_x_simd, .softmax = softmax_simd, .layernorm = layernorm_simd,                \
        .rmsnorm = rmsnorm_simd, .gelu_erf = gelu_erf_simd, .swiglu = swiglu_simd,                    \
        .gelu_tanh_to = gelu_tanh_to_simd, .gelu_tanh_backward = gelu_tanh_backward_simd,             \
        .f16_from_f32 = f16_from_f32_simd, .q8_0_from_f32 = q8_0_from_f32_simd, SIMD_GEMM_TABLE                                            \
    }
