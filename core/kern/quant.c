// quant.c - float32 rows to stored element types (quant.h). Scalar on purpose: a model is
// quantized once, and these must round exactly as their references do.
#include "kern/quant.h"
#include "kern/blocks.h"

#include <math.h>
#include <string.h>

static void put_f16(unsigned char *p, float f) {
    uint16_t h = f32_to_f16(f);
    memcpy(p, &h, 2);
}

// ggml's nearest_int: round to nearest, ties to even, for |f| < 2^22.
static int nearest_int(float f) {
    float v = f + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static void q8_0_block(const float *x, unsigned char *b) {
    float amax = 0;
    for (int k = 0; k < QK; k++) amax = fmaxf(amax, fabsf(x[k]));
    const float d = amax / 127, id = d != 0 ? 1.0f / d : 0.0f;
    put_f16(b, d);
    for (int k = 0; k < QK; k++) b[2 + k] = (unsigned char)(int8_t)roundf(x[k] * id);
}

// the value of largest magnitude (the first of equals) maps to -8. (Starting from x[0] as the
// gguf package does: ggml's C starts from +0, which differs on a block of negative zeros.)
static void q4_0_block(const float *x, unsigned char *b) {
    float amax = fabsf(x[0]), max = x[0];
    for (int k = 1; k < QK; k++)
        if (amax < fabsf(x[k])) amax = fabsf(x[k]), max = x[k];
    const float d = max / -8, id = d != 0 ? 1.0f / d : 0.0f;
    put_f16(b, d);
    for (int k = 0; k < QK / 2; k++) {
        int lo = (int8_t)(x[k] * id + 8.5f), hi = (int8_t)(x[k + QK / 2] * id + 8.5f);
        b[2 + k] = (unsigned char)((lo < 15 ? lo : 15) | (hi < 15 ? hi : 15) << 4);
    }
}

static void q4_1_block(const float *x, unsigned char *b) {
    float min = x[0], max = x[0];
    for (int k = 1; k < QK; k++) min = fminf(min, x[k]), max = fmaxf(max, x[k]);
    const float d = (max - min) / 15, id = d != 0 ? 1.0f / d : 0.0f;
    put_f16(b, d);
    put_f16(b + 2, min);
    for (int k = 0; k < QK / 2; k++) {
        int lo = (int8_t)((x[k] - min) * id + 0.5f), hi = (int8_t)((x[k + QK / 2] - min) * id + 0.5f);
        b[4 + k] = (unsigned char)((lo < 15 ? lo : 15) | (hi < 15 ? hi : 15) << 4);
    }
}

// Scale and min (returned as -min >= 0) of n values for levels 0..nmax under weights w: the
// least-squares fit over the level assignments of nstep + 1 trial scales (ggml's make_qkx2).
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min, float rmin,
                           float rdelta, int nstep) {
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        min = fminf(min, x[i]), max = fmaxf(max, x[i]);
        sum_w += w[i], sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *neg_min = -min;
        return 0;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
        L[i] = (uint8_t)l;
        float diff = scale * l + min - x[i];
        best += w[i] * diff * diff;
    }
    uint8_t Laux[32];
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l, sum_l2 += w[i] * l * l, sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D, this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) this_min = 0, this_scale = sum_xl / sum_l2;
            float mad = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                mad += w[i] * diff * diff;
            }
            if (mad < best) {
                memcpy(L, Laux, (size_t)n);
                best = mad, scale = this_scale, min = this_min;
            }
        }
    }
    *neg_min = -min;
    return scale;
}

static void q4_k_block(const float *x, unsigned char *b) {
    uint8_t L[QKK];
    float w[32], scales[8], mins[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(xs[l]);
        scales[j] = fit_scale_min(32, 15, xs, w, L + 32 * j, &mins[j], -1.0f, 0.1f, 20);
        max_scale = fmaxf(max_scale, scales[j]), max_min = fmaxf(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0 ? 63 / max_scale : 0, inv_min = max_min > 0 ? 63 / max_min : 0;
    unsigned char *sc = b + 4;
    memset(sc, 0, 12);
    for (int j = 0; j < 8; j++) {
        int ls = clampi(nearest_int(inv_scale * scales[j]), 0, 63), lm = clampi(nearest_int(inv_min * mins[j]), 0, 63);
        if (j < 4) {
            sc[j] |= (unsigned char)ls, sc[j + 4] |= (unsigned char)lm;
        } else {
            sc[j + 4] = (unsigned char)((ls & 0x0F) | (lm & 0x0F) << 4);
            sc[j - 4] |= (unsigned char)((ls >> 4) << 6), sc[j] |= (unsigned char)((lm >> 4) << 6);
        }
    }
    put_f16(b, max_scale / 63);
    put_f16(b + 2, max_min / 63);
    const float d = blk_f16(b), dmin = blk_f16(b + 2);
    for (int j = 0; j < 8; j++) {
        int s, m;
        q4_k_scale_min(sc, j, &s, &m);
        const float ds = d * s, dm = dmin * m;
        if (ds == 0) continue;
        for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)clampi(nearest_int((x[32 * j + l] + dm) / ds), 0, 15);
    }
    unsigned char *q = b + 16;
    for (int j = 0; j < QKK; j += 64, q += 32)
        for (int l = 0; l < 32; l++) q[l] = (unsigned char)(L[j + l] | L[j + l + 32] << 4);
}

// Signed levels -nmax..nmax-1 of n values, weighted by x^2: the best of 19 trial scales
// around nmax / max|x| (ggml's make_qx with rmse_type 1). L gets the levels + nmax.
static float fit_scale_signed(int n, int nmax, const float *x, uint8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
    if (amax < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0;
    }
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (uint8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l, suml2 += w * l * l;
    }
    float scale = suml2 != 0 ? sumlx / suml2 : 0, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l, suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) L[i] = (uint8_t)(nmax + clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2, best = scale * sumlx;
        }
    }
    return scale;
}

static void q6_k_block(const float *x, unsigned char *b) {
    uint8_t L[QKK];
    float scales[16], max_scale = 0, max_abs = 0;
    for (int ib = 0; ib < 16; ib++) {
        scales[ib] = fit_scale_signed(16, 32, x + 16 * ib, L + 16 * ib);
        if (fabsf(scales[ib]) > max_abs) max_abs = fabsf(scales[ib]), max_scale = scales[ib];
    }
    memset(b, 0, Q6_K_BYTES);
    if (max_abs < 1e-15f) return;
    const float iscale = -128.0f / max_scale;
    put_f16(b + 208, 1 / iscale);
    int8_t *sc = (int8_t *)(b + 192);
    for (int ib = 0; ib < 16; ib++) {
        int v = nearest_int(iscale * scales[ib]);
        sc[ib] = (int8_t)(v < 127 ? v : 127);
    }
    const float d0 = blk_f16(b + 208);
    for (int j = 0; j < 16; j++) {
        const float d = d0 * sc[j];
        if (d == 0) continue;
        for (int i = 0; i < 16; i++) L[16 * j + i] = (uint8_t)(clampi(nearest_int(x[16 * j + i] / d), -32, 31) + 32);
    }
    unsigned char *ql = b, *qh = b + 128;
    for (int j = 0; j < QKK; j += 128, ql += 64, qh += 32)
        for (int l = 0; l < 32; l++) {
            const uint8_t *q = L + j + l;
            ql[l] = (unsigned char)((q[0] & 0x0F) | (q[64] & 0x0F) << 4);
            ql[l + 32] = (unsigned char)((q[32] & 0x0F) | (q[96] & 0x0F) << 4);
            qh[l] = (unsigned char)((q[0] >> 4) | (q[32] >> 4) << 2 | (q[64] >> 4) << 4 | (q[96] >> 4) << 6);
        }
}

// x = s (q - Z): the row's range onto the 256 levels of int8
static void i8_affine_row(const float *x, int64_t n, unsigned char *r) {
    float min = x[0], max = x[0];
    for (int64_t i = 1; i < n; i++) min = fminf(min, x[i]), max = fmaxf(max, x[i]);
    float s = (max - min) / 255;
    double z = s > 0 && isfinite(s) ? round(-128.0 - (double)min / s) : 0;
    if (!(s > 0 && isfinite(s)) || fabs(z) > 8388608.0) {
        // a constant row, or a range too small for its magnitude to place Z within 2^23 (so
        // that q - Z stays exact in float32): symmetric, Z = 0
        float amax = fmaxf(fabsf(min), fabsf(max));
        s = amax > 0 ? amax / 127 : 1;
        z = 0;
    }
    const int32_t zi = (int32_t)z;
    memcpy(r, &s, 4), memcpy(r + 4, &zi, 4);
    for (int64_t i = 0; i < n; i++) r[I8_AFFINE_HEAD + i] = (unsigned char)(int8_t)fmin(fmax(round(x[i] / (double)s + zi), -128), 127);
}

// Whether block o of dt (one element of a float type), made from x, reads back as what it holds:
// not a value beyond a half float's range stored as infinity, nor a block whose half-float scale
// overflowed (infinite or NaN values, or, where the search for a K type's scales overflowed in
// float, finite ones off by about the block's largest value: 1e30 read back as 0).
static bool block_holds(DType dt, const unsigned char *o, const float *x) {
    float v[256];
    uint16_t h;
    switch (dt) {
    case DT_F32: return true;
    case DT_F16: memcpy(&h, o, 2); return isfinite(f16_to_f32(h));
    case DT_BF16: memcpy(&h, o, 2); return isfinite(bf16_to_f32(h));
    default: break;
    }
    blk_decode(dt, o, v);
    float amax = 0, err = 0;
    for (int k = 0; k < dtype_block(dt); k++) {
        if (!isfinite(v[k])) return false;
        amax = fmaxf(amax, fabsf(x[k])), err = fmaxf(err, fabsf(v[k] - x[k]));
    }
    return amax < 65504 || err <= 0.5f * amax; // (a tiny block's scale may underflow to zeros: no error)
}

// The error for values of row r, columns c.. (n of them) that dt cannot hold.
static int range_error(DType dt, const float *x, int n, int64_t r, int64_t c, Err *e) {
    int at = 0;
    for (int k = 1; k < n; k++)
        if (fabsf(x[k]) > fabsf(x[at])) at = k;
    if (n == 1)
        return err_set(e, "cannot store %g (row %lld, column %lld) as %s: beyond its range (|x| up to %g)", x[0],
                       (long long)r, (long long)c, dtype_name(dt), dt == DT_F16 ? 65504.0 : 3.3895313892515355e38);
    return err_set(e, "cannot quantize to %s: row %lld, columns %lld-%lld hold %g, whose block scale is beyond a half "
                      "float's range (65504)", dtype_name(dt), (long long)r, (long long)c, (long long)(c + n - 1),
                   x[at]);
}

static int quant_impl(DType dt, const float *src, int64_t rows, int64_t cols, void *dst, bool held, Err *e) {
    if ((unsigned)dt >= DT_COUNT) return err_set(e, "cannot quantize to an unknown type");
    const int blk = dtype_block(dt);
    if (cols <= 0 || cols % blk) return err_set(e, "cannot store rows of %lld as %s: not a multiple of its block of %d",
                                                (long long)cols, dtype_name(dt), blk);
    for (int64_t i = 0; i < rows * cols; i++)
        if (!isfinite(src[i]))
            return err_set(e, "cannot quantize to %s: row %lld, column %lld holds %g", dtype_name(dt), (long long)(i / cols),
                           (long long)(i % cols), src[i]);
    const size_t rb = dtype_row_bytes(dt, cols), bb = dtype_bytes(dt, blk);
    for (int64_t r = 0; r < rows; r++) {
        const float *x = src + r * cols;
        unsigned char *o = (unsigned char *)dst + rb * (size_t)r;
        if (dt == DT_I8_AFFINE) {
            i8_affine_row(x, cols, o);
            continue;
        }
        for (int64_t c = 0; c < cols; c += blk, o += bb, x += blk) {
            switch (dt) {
            case DT_F32: memcpy(o, x, 4); break;
            case DT_F16: put_f16(o, *x); break;
            case DT_BF16: {
                uint16_t h = f32_to_bf16(*x);
                memcpy(o, &h, 2);
                break;
            }
            case DT_Q8_0: q8_0_block(x, o); break;
            case DT_Q4_0: q4_0_block(x, o); break;
            case DT_Q4_1: q4_1_block(x, o); break;
            case DT_Q4_K: q4_k_block(x, o); break;
            case DT_Q6_K: q6_k_block(x, o); break;
            default: break;
            }
            if (held && !block_holds(dt, o, x)) return range_error(dt, x, blk, r, c, e);
        }
    }
    return 0;
}

int quant_rows(DType dt, const float *src, int64_t rows, int64_t cols, void *dst, Err *e) {
    return quant_impl(dt, src, rows, cols, dst, false, e);
}

int quant_weights(DType dt, const float *src, int64_t rows, int64_t cols, void *dst, Err *e) {
    return quant_impl(dt, src, rows, cols, dst, true, e);
}
