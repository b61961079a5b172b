// avx2.c - the kernel table for x86-64 CPUs with AVX2, FMA and F16C (8 floats a vector).
// Built with -mavx2 -mfma -mf16c; run only when kernels.c finds those on the CPU.
#include "kern/kernels.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#include <string.h>

typedef __m256 V;
#define W 8
#define v_zero _mm256_setzero_ps
#define v_set1 _mm256_set1_ps
#define v_load _mm256_loadu_ps
#define v_store _mm256_storeu_ps
#define v_add _mm256_add_ps
#define v_sub _mm256_sub_ps
#define v_mul _mm256_mul_ps
#define v_div _mm256_div_ps
#define v_fmadd _mm256_fmadd_ps
#define v_fnmadd _mm256_fnmadd_ps
#define v_max _mm256_max_ps
#define v_min _mm256_min_ps

static inline V v_load_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
// W floats to f16, rounded to nearest even
static inline void v_store_f16(uint16_t *p, V v) {
    _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// the first m of 8 floats (maskload / maskstore: nothing past them is touched), of 8 16-bit
// values (copied to a zeroed buffer: AVX2 has no 16-bit masked load)
static inline __m256i v_mask(int m) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(m), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline V v_load_part(const float *p, int m) { return _mm256_maskload_ps(p, v_mask(m)); }
static inline void v_store_part(float *p, int m, V v) { _mm256_maskstore_ps(p, v_mask(m), v); }
static inline __m128i h16_part(const uint16_t *p, int m) {
    uint16_t b[8] = {0};
    memcpy(b, p, 2 * (size_t)(m < 8 ? m : 8));
    return _mm_loadu_si128((const __m128i *)b);
}
static inline V v_load_part_f16(const uint16_t *p, int m) { return _mm256_cvtph_ps(h16_part(p, m)); }
static inline V v_load_part_bf16(const uint16_t *p, int m) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h16_part(p, m)), 16));
}

// bf16 is the top half of an f32: widen and shift
static inline V v_load_bf16(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

static inline V v_load_i8(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

typedef __m256i VI; // W int32
static inline VI vi_load_u8(const unsigned char *p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)); }
#define vi_and15(a) _mm256_and_si256(a, _mm256_set1_epi32(15))
#define vi_srl4(a) _mm256_srli_epi32(a, 4)
#define v_cvt _mm256_cvtepi32_ps

static inline void v_from_i8x16(__m128i b, V *out) {
    out[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
    out[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(b, b)));
}

static inline float v_hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float v_hmax(V v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline V v_round(V x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

static inline V v_pow2i(V n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}

static inline V v_zero_below(V v, V x, V lim) { return _mm256_andnot_ps(_mm256_cmp_ps(x, lim, _CMP_LT_OQ), v); }

#include "kern/simd.h"

const Kernels kern_avx2_table = SIMD_TABLE("avx2");
#else
const Kernels kern_avx2_table = {.name = NULL};
#endif
