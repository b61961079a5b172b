// tensor.c - element types and conversion of stored rows to float32.
#include "kern/tensor.h"

#include <string.h>

const char *dtype_name(DType dt) {
    static const char *names[DT_COUNT] = {"F32", "F16", "BF16", "Q8_0"};
    return dt < DT_COUNT ? names[dt] : "?";
}

size_t dtype_bytes(DType dt, int64_t n) {
    switch (dt) {
    case DT_F32: return (size_t)n * 4;
    case DT_F16:
    case DT_BF16: return (size_t)n * 2;
    case DT_Q8_0: return (size_t)(n / 32) * 34;
    default: return 0;
    }
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

#if defined(__x86_64__)
#include <immintrin.h>
// F16 -> F32 eight at a time with the F16C instruction; returns how many were converted.
__attribute__((target("avx,f16c"))) static int64_t f16_row_f16c(const uint16_t *p, int64_t n, float *out) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + i))));
    return i;
}
static int have_f16c = -1;
#endif

void tensor_row_f32(const Tensor *t, int64_t off, int64_t n, float *out) {
    switch (t->dt) {
    case DT_F32: memcpy(out, (const float *)t->data + off, (size_t)n * 4); break;
    case DT_F16: {
        const uint16_t *p = (const uint16_t *)t->data + off;
        int64_t i = 0;
#if defined(__x86_64__)
        if (have_f16c < 0) __builtin_cpu_init(), have_f16c = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
        if (have_f16c) i = f16_row_f16c(p, n, out);
#endif
        for (; i < n; i++) out[i] = f16_to_f32(p[i]);
        break;
    }
    case DT_BF16: {
        const uint16_t *p = (const uint16_t *)t->data + off;
        for (int64_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)p[i] << 16;
            memcpy(&out[i], &bits, 4);
        }
        break;
    }
    case DT_Q8_0: {
        // blocks of 32: f16 scale then 32 int8; off and n are multiples of 32
        const unsigned char *p = (const unsigned char *)t->data + (off / 32) * 34;
        for (int64_t b = 0; b < n / 32; b++, p += 34) {
            uint16_t d16;
            memcpy(&d16, p, 2);
            float d = f16_to_f32(d16);
            for (int i = 0; i < 32; i++) out[b * 32 + i] = d * (float)(signed char)p[2 + i];
        }
        break;
    }
    default: break;
    }
}
