// avx512.c - the kernel tables for x86-64 CPUs with AVX-512 F and BW (16 floats a vector):
// F16 through the 512-bit F16C conversion, BF16 by a shift. Built twice: with -mavx512f
// -mavx512bw -mfma -mf16c for the table "avx512", and with -mavx512vnni added for
// "avx512vnni", whose Q4_K and Q6_K kernels multiply bytes with vpdpbusd (kern/simd.h); each
// runs only when kernels.c finds its instructions on the CPU. The activations stay f32 (the
// float types) and int16 (the block types: VNNI multiplies their two bytes, exactly).
#include "kern/kernels.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>

typedef __m512 V;
#define W 16
#define v_zero _mm512_setzero_ps
#define v_set1 _mm512_set1_ps
#define v_load _mm512_loadu_ps
#define v_store _mm512_storeu_ps
#define v_add _mm512_add_ps
#define v_sub _mm512_sub_ps
#define v_mul _mm512_mul_ps
#define v_div _mm512_div_ps
#define v_fmadd _mm512_fmadd_ps
#define v_fnmadd _mm512_fnmadd_ps
#define v_max _mm512_max_ps
#define v_min _mm512_min_ps
#define v_hsum _mm512_reduce_add_ps
#define v_hmax _mm512_reduce_max_ps

static inline V v_load_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
// W floats to f16, rounded to nearest even
static inline void v_store_f16(uint16_t *p, V v) {
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// the first m of 16 floats / 16-bit values (masked: nothing past them is touched)
static inline __mmask16 v_mask(int m) { return m <= 0 ? 0 : m >= 16 ? 0xFFFF : (__mmask16)((1u << m) - 1); }
static inline V v_load_part(const float *p, int m) { return _mm512_maskz_loadu_ps(v_mask(m), p); }
static inline void v_store_part(float *p, int m, V v) { _mm512_mask_storeu_ps(p, v_mask(m), v); }
static inline __m256i h16_part(const uint16_t *p, int m) {
    return _mm512_castsi512_si256(_mm512_maskz_loadu_epi16((__mmask32)v_mask(m), p));
}
static inline V v_load_part_f16(const uint16_t *p, int m) { return _mm512_cvtph_ps(h16_part(p, m)); }
static inline V v_load_part_bf16(const uint16_t *p, int m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h16_part(p, m)), 16));
}

// bf16 is the top half of an f32: widen and shift
static inline V v_load_bf16(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

static inline V v_load_i8(const int8_t *p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

typedef __m512i VI; // W int32
static inline VI vi_load_u8(const unsigned char *p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)); }
#define vi_and15(a) _mm512_and_si512(a, _mm512_set1_epi32(15))
#define vi_srl4(a) _mm512_srli_epi32(a, 4)
#define v_cvt _mm512_cvtepi32_ps

static inline void v_from_i8x16(__m128i b, V *out) { out[0] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)); }

static inline V v_round(V x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

static inline V v_pow2i(V n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}

static inline V v_zero_below(V v, V x, V lim) {
    return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(x, lim, _CMP_LT_OQ), _mm512_setzero_ps());
}

// The 16 x 16 floats in r[0..16) transposed in place (r[i][j] becomes r[j][i]): pairs of rows
// interleaved, then quads, then 128-bit lanes exchanged twice.
static inline void v_transpose(V r[16]) {
    V t[16], u[16];
    for (int i = 0; i < 16; i += 2) t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    // u[4i + m], lane L: element 4L + m of rows 4i..4i+3
    for (int i = 0; i < 16; i += 4) {
        u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44), u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44), u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int m = 0; m < 4; m++) {
        const V a = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88), b = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88);
        const V c = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xDD), d = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xDD);
        r[m] = _mm512_shuffle_f32x4(a, b, 0x88), r[8 + m] = _mm512_shuffle_f32x4(a, b, 0xDD);
        r[4 + m] = _mm512_shuffle_f32x4(c, d, 0x88), r[12 + m] = _mm512_shuffle_f32x4(c, d, 0xDD);
    }
}

// prefill tiles of 12 rows by 32 columns: 24 accumulators of the 32 registers
#define GEMM_MR 12
#include "kern/simd.h"

#if defined(__AVX512VNNI__)
const Kernels kern_avx512vnni_table = SIMD_TABLE("avx512vnni");
#else
const Kernels kern_avx512_table = SIMD_TABLE("avx512");
#endif
#elif defined(QKV_VNNI)
const Kernels kern_avx512vnni_table = {.name = NULL};
#else
const Kernels kern_avx512_table = {.name = NULL};
#endif
