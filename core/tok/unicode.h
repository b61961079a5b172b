// unicode.h - the code point classes of the byte-level pre-tokenizers (GPT-2's, Llama 3's,
// Qwen2's regexes): letter (\p{L}), number (\p{N}) and white space (\s = Unicode White_Space),
// as the reference implementation's regex engine (HF tokenizers' Oniguruma, Unicode 16) sees
// them, and the numbers of the Digits pre-tokenizer. The tables in unicode_tables.c are generated
// by gen-unicode.py.
#pragma once
#include <stdbool.h>
#include <stdint.h>

typedef enum { UNI_OTHER = 0, UNI_L = 1, UNI_N = 2, UNI_S = 3 } UniClass;

typedef struct UniRange {
    uint32_t first, last;
    unsigned char cls;
} UniRange;

extern const unsigned char uni_latin1[256];
extern const UniRange uni_ranges[]; // sorted, disjoint; code points not listed are UNI_OTHER
extern const int uni_n_ranges;
// The numbers of the Digits pre-tokenizer (Rust's char::is_numeric: a newer Unicode than \p{N})
extern const UniRange uni_numeric_ranges[];
extern const int uni_n_numeric_ranges;

// The class of code point cp.
static inline UniClass uni_class(uint32_t cp) {
    if (cp < 256) return (UniClass)uni_latin1[cp];
    int lo = 0, hi = uni_n_ranges - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < uni_ranges[mid].first) hi = mid - 1;
        else if (cp > uni_ranges[mid].last) lo = mid + 1;
        else return (UniClass)uni_ranges[mid].cls;
    }
    return UNI_OTHER;
}

// True when the Digits pre-tokenizer takes cp for a digit.
static inline bool uni_is_numeric(uint32_t cp) {
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    int lo = 0, hi = uni_n_numeric_ranges - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < uni_numeric_ranges[mid].first) hi = mid - 1;
        else if (cp > uni_numeric_ranges[mid].last) lo = mid + 1;
        else return true;
    }
    return false;
}

static inline bool uni_is_letter(uint32_t cp) { return uni_class(cp) == UNI_L; }
static inline bool uni_is_number(uint32_t cp) { return uni_class(cp) == UNI_N; }
static inline bool uni_is_space(uint32_t cp) { return uni_class(cp) == UNI_S; }
