// uniprops.c - lookups in the generated tables of unicode_norm.c, and the Hangul
// syllables that Unicode decomposes by formula rather than by table.
#include <stddef.h>

#include "tok/unicode_norm.h"

unsigned uni_props(uint32_t cp) {
    int lo = 0, hi = uni_n_prop_ranges - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < uni_prop_ranges[mid].first) hi = mid - 1;
        else if (cp > uni_prop_ranges[mid].last) lo = mid + 1;
        else return uni_prop_ranges[mid].props;
    }
    return cp > 0x10FFFF ? UP_OTHER : 0;
}

static const UniMap *find(const UniMap *m, int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < m[mid].cp) hi = mid - 1;
        else if (cp > m[mid].cp) lo = mid + 1;
        else return &m[mid];
    }
    return NULL;
}

int uni_decompose(uint32_t cp, uint32_t *out) {
    enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7, VCOUNT = 21, TCOUNT = 28, NCOUNT = 588 };
    if (cp >= SBASE && cp < SBASE + 11172) {
        uint32_t s = cp - SBASE, t = s % TCOUNT;
        out[0] = LBASE + s / NCOUNT;
        out[1] = VBASE + (s % NCOUNT) / TCOUNT;
        if (!t) return 2;
        out[2] = TBASE + t;
        return 3;
    }
    const UniMap *m = find(uni_nfd, uni_n_nfd, cp);
    if (!m) {
        out[0] = cp;
        return 1;
    }
    for (uint32_t i = 0; i < m->n; i++) out[i] = uni_nfd_pool[m->off + i];
    return (int)m->n;
}

int uni_tolower(uint32_t cp, uint32_t *out) {
    const UniMap *m = cp < 0x41 ? NULL : find(uni_lower, uni_n_lower, cp);
    if (!m) {
        out[0] = cp;
        return 1;
    }
    for (uint32_t i = 0; i < m->n; i++) out[i] = uni_lower_pool[m->off + i];
    return (int)m->n;
}
