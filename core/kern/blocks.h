// blocks.h - the byte layouts of the quantized element types (ggml's blocks, as
// ggml-quants.c and gguf-py's quants.py define them, and qkv's per-row affine int8) and
// the scalar decoding of one block, shared by the kernel tables and the quantizers.
//
// Every value is decoded with the operations, in the order and in the float32 precision
// the gguf package uses, so that dequantization equals its `dequantize` bit for bit:
//   Q8_0  d * q                       Q4_0  d * (q - 8)          Q4_1  (d * q) + m
//   Q4_K  (d * sc) * q - (dmin * mn)  Q6_K  (d * sc) * (q - 32)  I8_AFFINE  s * (q - Z)
// (files built with -ffp-contract=off, so that no multiply-add is fused behind our back).
#pragma once
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kern/tensor.h"

enum {
    QK = 32,        // elements of a Q8_0 / Q4_0 / Q4_1 block
    QKK = 256,      // elements of a Q4_K / Q6_K super-block
    Q8_0_BYTES = 34, // f16 d, 32 int8
    Q4_0_BYTES = 18, // f16 d, 16 bytes: element k low nibble of byte k, element k + 16 high nibble
    Q4_1_BYTES = 20, // f16 d, f16 m, 16 bytes as Q4_0
    // f16 d, f16 dmin, 12 bytes of 6-bit scales and mins for 8 sub-blocks of 32, 128 bytes:
    // bytes 32c .. 32c+31 hold sub-block 2c in their low nibbles and 2c+1 in their high ones
    Q4_K_BYTES = 144,
    // 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8 scales (one per 16
    // elements), f16 d. In each half h of 128 elements, element l (< 32) and l + 32, l + 64,
    // l + 96 take the low nibble of ql[64h + l], the low nibble of ql[64h + l + 32], the high
    // nibble of ql[64h + l], the high nibble of ql[64h + l + 32], and the bit pairs 0-1, 2-3,
    // 4-5, 6-7 of qh[32h + l]
    Q6_K_BYTES = 210,
    I8_AFFINE_HEAD = 8, // per row: f32 s, int32 Z, then the row's int8
};

static inline float blk_f16(const unsigned char *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return f16_to_f32(h);
}

// Element i of an F32, F16 or BF16 array as f32, read byte-wise: a mapped file's tensor data
// need not be aligned to its element (a safetensors header is not always padded to 8).
static inline float elem_f32(const void *w, DType dt, int64_t i) {
    const unsigned char *p = w;
    if (dt == DT_F16 || dt == DT_BF16) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        return dt == DT_F16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
    float f;
    memcpy(&f, p + 4 * i, 4);
    return f;
}

// Q4_K's sub-block j (0..7) scale and min, 6 bits each, packed in 12 bytes: bytes 0-3 hold
// the scales of 0-3 in their low 6 bits, bytes 4-7 the mins of 0-3; for j >= 4 the low 4 bits
// come from byte 8 + j - 4 (scale: low nibble, min: high nibble) and the top 2 bits from the
// top bits of bytes j - 4 (scale) and j (min).
static inline void q4_k_scale_min(const unsigned char *s, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// Q6_K: the 6-bit value (0..63) of element e (0..255) of the super-block b.
static inline int q6_k_value(const unsigned char *b, int e) {
    const unsigned char *ql = b + 64 * (e / 128), *qh = b + 128 + 32 * (e / 128);
    int r = e % 128, l = r % 32, part = r / 32; // part 0..3: l, l + 32, l + 64, l + 96
    int lo = (ql[l + (part & 1) * 32] >> ((part >> 1) * 4)) & 0x0F;
    return lo | (((qh[l] >> (2 * part)) & 3) << 4);
}

// The activation side of the block types' matrix-vector products: x is quantized once per
// product to blocks of 32 int16, x[i] ~ d[i / 32] * q[i] with d = max |x| / 32767 over the
// block's group: each whole 256 values (8 blocks, from the start of x) share one d, blocks
// after the last whole 256 have their own (an error of at most half a step, 1/65534 of the
// group's largest |x|), so that each weight block's dot product is exact integer arithmetic
// (kern/simd.h: _mm256_madd_epi16), and a Q4_K or Q6_K super-block (256 values) meets one x
// scale: its kernels multiply x's scale in once a super-block, not once every 32 values.
// s[b] = d[b] * (q[32b] + ... + q[32b + 31]) serves the types with an offset or a minimum.
// n a multiple of 32. A group whose largest |x| is 0 or below 1e-30 becomes zeros. A group
// holding a NaN or an infinity gets q = 0 and d = s = NaN, so that every product with it is
// NaN, as the float kernels' are (quantized to finite zeros, a damaged model's NaN gave
// uniform logits instead of the NaN error).
enum { XQ_MAX = 32767, XQ_GROUP = 8 };

// Blocks of 32 in the x-scale group that starts at block b of nb (XQ_GROUP, or 1 past the
// last whole group).
static inline int blk_xq_group(int b, int nb) { return b + XQ_GROUP <= nb ? XQ_GROUP : 1; }

static inline void blk_quant_x(const float *x, int n, int16_t *q, float *d, float *s) {
    const int nb = n / QK;
    for (int g = 0; g < nb;) {
        const int ng = blk_xq_group(g, nb);
        float amax = 0;
        bool finite = true;
        for (int k = 0; k < QK * ng; k++) {
            const float a = fabsf(x[QK * g + k]);
            finite &= a <= FLT_MAX; // false for NaN and infinities
            amax = a > amax ? a : amax;
        }
        const float id = finite && amax >= 1e-30f ? (float)XQ_MAX / amax : 0.0f;
        for (int b = g; b < g + ng; b++) {
            const float *xb = x + QK * b;
            int32_t sum = 0;
            for (int k = 0; k < QK; k++) {
                float v = xb[k] * id;
                v = v > (float)XQ_MAX ? (float)XQ_MAX : v < -(float)XQ_MAX ? -(float)XQ_MAX : v;
                q[QK * b + k] = (int16_t)lrintf(v);
                sum += q[QK * b + k];
            }
            d[b] = !finite ? NAN : amax >= 1e-30f ? amax / (float)XQ_MAX : 0.0f;
            s[b] = d[b] * (float)sum;
        }
        g += ng;
    }
}

// x quantized for the block types' [out, in] products (blk_quant_x): q (in), d and s (in / 32);
// and for the AVX-512 VNNI kernels, which multiply bytes, what blk_quant_x_bytes adds (NULL
// until it has): h, l (in) the high and low bytes of q (q = 256 h + l exactly, h signed, l
// unsigned), d4 (in / 4) the scale of every four values (d4[i] = d[i / 8]) and s16 (in / 16)
// x's sum over every 16 values (s16[g] = d[g / 2] * (q[16g] + ... + q[16g + 15])), and hc
// (in / 4) -128 times the sum of h over every four values (Q8_0's signed weights go into
// vpdpbusd offset by 128: (w + 128) . h - 128 sum(h) = w . h); hk, lk (in, whole 128s) h and
// l in Q4_K's order: in every 128 values, elements 0-31, 64-95, 32-63, 96-127 (the low nibbles
// of 64 Q4_K bytes, then their high nibbles).
typedef struct XQ {
    const int16_t *q;
    const float *d, *s;
    const int8_t *h;
    const uint8_t *l;
    const float *d4, *s16;
    const int32_t *hc;
    const int8_t *hk;
    const uint8_t *lk;
} XQ;

// Bytes of the buffer blk_quant_x_bytes fills for n values.
static inline size_t blk_xq_bytes(int n) { return sizeof(float) * (size_t)(2 * (n / 4) + n / 16) + 4 * (size_t)n; }

// Where x's element i goes in the Q4_K-ordered planes (XQ hk, lk): its 32-value block k of
// each 128 (k = 0..3) moves to 32 * {0, 2, 1, 3}[k].
static inline int blk_q4k_pos(int i) { return (i & ~127) | (i & 31) | (i & 32) << 1 | (i & 64) >> 1; }

// Fills x's byte planes and per-lane scales (see XQ) from x->q and x->d, n values (a multiple
// of 32), in buf (blk_xq_bytes(n) bytes, aligned to a float).
static inline void blk_quant_x_bytes(XQ *x, int n, void *buf) {
    float *d4 = buf, *s16 = d4 + n / 4;
    int32_t *hc = (int32_t *)(s16 + n / 16);
    int8_t *h = (int8_t *)(hc + n / 4);
    uint8_t *l = (uint8_t *)(h + n);
    int8_t *hk = (int8_t *)(l + n);
    uint8_t *lk = (uint8_t *)(hk + n);
    for (int i = 0; i < n; i++) h[i] = (int8_t)(x->q[i] >> 8), l[i] = (uint8_t)(x->q[i] & 255);
    for (int i = 0; i < n - n % 128; i++) hk[blk_q4k_pos(i)] = h[i], lk[blk_q4k_pos(i)] = l[i];
    for (int i = 0; i < n / 4; i++) d4[i] = x->d[i / 8], hc[i] = -128 * (h[4 * i] + h[4 * i + 1] + h[4 * i + 2] + h[4 * i + 3]);
    for (int g = 0; g < n / 16; g++) {
        int32_t sum = 0;
        for (int k = 0; k < 16; k++) sum += x->q[16 * g + k];
        s16[g] = x->d[g / 2] * (float)sum;
    }
    x->h = h, x->l = l, x->d4 = d4, x->s16 = s16, x->hc = hc, x->hk = hk, x->lk = lk;
}

// The [out, in] rows of a block type (rb bytes apart, in columns from w) times a quantized x:
// y[j] = W[j] . x, or y[j] += it when add.
typedef void (*BlkRowsFn)(const void *w, size_t rb, int in, int n, const XQ *x, float *y, bool add);

// y (n) = W . x on a float x (the kernel tables' mv_out_in for block types): x quantized
// BLK_SEG columns at a time (on the stack), each segment's products added.
enum { BLK_SEG = 8192 };
static inline void blk_out_in(const void *w, DType dt, int in, int n, const float *x, float *y, BlkRowsFn rows) {
    int16_t q[BLK_SEG];
    float d[BLK_SEG / QK], s[BLK_SEG / QK], bytes[(2 * (BLK_SEG / 4) + BLK_SEG / 16 + BLK_SEG)];
    const size_t rb = dtype_row_bytes(dt, in);
    for (int i0 = 0; i0 < in; i0 += BLK_SEG) {
        const int m = in - i0 < BLK_SEG ? in - i0 : BLK_SEG;
        blk_quant_x(x + i0, m, q, d, s);
        XQ xq = {q, d, s, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
        blk_quant_x_bytes(&xq, m, bytes);
        rows((const char *)w + dtype_bytes(dt, i0), rb, m, n, &xq, y, i0 > 0);
    }
}

// The elements of one block of type dt (a block type) into out, exactly.
static inline void blk_decode(DType dt, const unsigned char *b, float *out) {
    switch (dt) {
    case DT_Q8_0: {
        const float d = blk_f16(b);
        for (int k = 0; k < QK; k++) out[k] = d * (float)(int8_t)b[2 + k];
        break;
    }
    case DT_Q4_0: {
        const float d = blk_f16(b);
        for (int k = 0; k < QK / 2; k++) {
            out[k] = d * (float)((b[2 + k] & 0x0F) - 8);
            out[k + QK / 2] = d * (float)((b[2 + k] >> 4) - 8);
        }
        break;
    }
    case DT_Q4_1: {
        const float d = blk_f16(b), m = blk_f16(b + 2);
        for (int k = 0; k < QK / 2; k++) {
            out[k] = d * (float)(b[4 + k] & 0x0F) + m;
            out[k + QK / 2] = d * (float)(b[4 + k] >> 4) + m;
        }
        break;
    }
    case DT_Q4_K: {
        const float d = blk_f16(b), dmin = blk_f16(b + 2);
        const unsigned char *q = b + 16;
        for (int j = 0; j < 8; j++) {
            int sc, mn;
            q4_k_scale_min(b + 4, j, &sc, &mn);
            const float ds = d * (float)sc, dm = dmin * (float)mn;
            const int shift = (j & 1) * 4;
            for (int k = 0; k < 32; k++) out[32 * j + k] = ds * (float)((q[32 * (j / 2) + k] >> shift) & 0x0F) - dm;
        }
        break;
    }
    case DT_Q6_K: {
        const float d = blk_f16(b + 208);
        for (int e = 0; e < QKK; e++) out[e] = d * (float)(int8_t)b[192 + e / 16] * (float)(q6_k_value(b, e) - 32);
        break;
    }
    default: break;
    }
}
