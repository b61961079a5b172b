// tensor.c - element types, scalar conversions, and stored rows to float32 (through the
// kernel table chosen for this CPU).
#include "kern/tensor.h"
#include "kern/blocks.h"
#include "kern/kernels.h"

#include <string.h>

// Per type: name, elements per block, bytes per block, ggml type id.
static const struct {
    const char *name;
    int block, bytes, ggml;
} types[DT_COUNT] = {
    [DT_F32] = {"F32", 1, 4, 0},          [DT_F16] = {"F16", 1, 2, 1},         [DT_BF16] = {"BF16", 1, 2, 30},
    [DT_Q8_0] = {"Q8_0", QK, Q8_0_BYTES, 8}, [DT_Q4_0] = {"Q4_0", QK, Q4_0_BYTES, 2}, [DT_Q4_1] = {"Q4_1", QK, Q4_1_BYTES, 3},
    [DT_Q4_K] = {"Q4_K", QKK, Q4_K_BYTES, 12}, [DT_Q6_K] = {"Q6_K", QKK, Q6_K_BYTES, 14},
    [DT_I8_AFFINE] = {"I8_AFFINE", 1, 1, -1},
};

const char *dtype_name(DType dt) { return (unsigned)dt < DT_COUNT ? types[dt].name : "?"; }

int dtype_block(DType dt) { return (unsigned)dt < DT_COUNT ? types[dt].block : 1; }

size_t dtype_row_bytes(DType dt, int64_t n) {
    if ((unsigned)dt >= DT_COUNT) return 0;
    size_t b = (size_t)(n / types[dt].block) * (size_t)types[dt].bytes;
    return dt == DT_I8_AFFINE ? b + I8_AFFINE_HEAD : b;
}

size_t dtype_bytes(DType dt, int64_t n) { return dtype_row_bytes(dt, n); }

int dtype_ggml(DType dt) { return (unsigned)dt < DT_COUNT ? types[dt].ggml : -1; }

int dtype_from_ggml(uint32_t ggml) {
    for (int d = 0; d < DT_COUNT; d++)
        if (types[d].ggml >= 0 && (uint32_t)types[d].ggml == ggml) return d;
    return -1;
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { // subnormal: normalise
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FF) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xFF);
    uint32_t man = x & 0x7FFFFF;
    if (exp == 0xFF) return (uint16_t)(sign | 0x7C00 | (man ? 0x200 : 0));
    int32_t e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7C00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; // round to nearest even (may carry into exp)
    return (uint16_t)h;
}

uint16_t f32_to_f16_sat(float f) { return f32_to_f16(f > 65504.0f ? 65504.0f : f < -65504.0f ? -65504.0f : f); }

float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7FFFFFFF) > 0x7F800000) return (uint16_t)((x >> 16) | 0x40); // quiet NaN
    x += 0x7FFF + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

void tensor_row_f32(const Tensor *t, int64_t off, int64_t n, float *out) {
    if ((unsigned)t->dt >= DT_COUNT) return;
    RowF32Fn row = kern_get()->row_f32[t->dt];
    if (t->dt != DT_I8_AFFINE) {
        row(t->data, off, n, out);
        return;
    }
    // rows with a header: one call per row
    const int64_t cols = t->ndim ? t->shape[t->ndim - 1] : t->n;
    while (n > 0) {
        int64_t r = off / cols, c = off % cols, k = cols - c < n ? cols - c : n;
        row((const char *)t->data + (size_t)r * dtype_row_bytes(t->dt, cols), c, k, out);
        off += k, n -= k, out += k;
    }
}
