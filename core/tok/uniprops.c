// uniprops.c - lookups in the generated tables of unicode_norm.c, the Hangul syllables that
// Unicode decomposes and composes by formula rather than by table, and the normalization forms
// NFD and NFC built on them (UAX #15: decompose, reorder marks by combining class, compose).
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/utf8.h"
#include "tok/unicode_norm.h"

enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7, LCOUNT = 19, VCOUNT = 21, TCOUNT = 28,
       NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

void cp_push(CpVec *a, uint32_t c) {
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->v = xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = c;
}

void cp_free(CpVec *a) {
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

static int range_value(const UniPropRange *r, int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < r[mid].first) hi = mid - 1;
        else if (cp > r[mid].last) lo = mid + 1;
        else return r[mid].props;
    }
    return -1;
}

unsigned uni_props(uint32_t cp) {
    int v = range_value(uni_prop_ranges, uni_n_prop_ranges, cp);
    return v >= 0 ? (unsigned)v : cp > 0x10FFFF ? UP_OTHER : 0;
}

int uni_ccc(uint32_t cp) {
    if (cp < 0x300) return 0;
    int v = range_value(uni_ccc_ranges, uni_n_ccc_ranges, cp);
    return v > 0 ? v : 0;
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
    if (cp >= SBASE && cp < SBASE + SCOUNT) {
        uint32_t s = cp - SBASE, t = s % TCOUNT;
        out[0] = LBASE + s / NCOUNT;
        out[1] = VBASE + (s % NCOUNT) / TCOUNT;
        if (!t) return 2;
        out[2] = TBASE + t;
        return 3;
    }
    const UniMap *m = cp < 0xC0 ? NULL : find(uni_decomp, uni_n_decomp, cp);
    if (!m) {
        out[0] = cp;
        return 1;
    }
    for (uint32_t i = 0; i < m->n; i++) out[i] = uni_decomp_pool[m->off + i];
    return (int)m->n;
}

uint32_t uni_compose(uint32_t a, uint32_t b) {
    if (a - LBASE < LCOUNT && b - VBASE < VCOUNT) return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a - SBASE < SCOUNT && (a - SBASE) % TCOUNT == 0 && b - TBASE - 1 < TCOUNT - 1) return a + (b - TBASE);
    int lo = 0, hi = uni_n_compose_pairs - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const UniPair *p = &uni_compose_pairs[mid];
        if (a < p->a || (a == p->a && b < p->b)) hi = mid - 1;
        else if (a > p->a || b > p->b) lo = mid + 1;
        else return p->c;
    }
    return 0;
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

// Put v[0..n) (marks, all of class > 0) in order of class, stably: insertion for short runs,
// counting for long ones (a run may be as long as the text).
static void sort_marks(uint32_t *v, size_t n) {
    if (n < 2) return;
    if (n <= 32) {
        for (size_t i = 1; i < n; i++) {
            uint32_t x = v[i];
            int cx = uni_ccc(x);
            size_t j = i;
            for (; j > 0 && uni_ccc(v[j - 1]) > cx; j--) v[j] = v[j - 1];
            v[j] = x;
        }
        return;
    }
    size_t start[257] = {0};
    uint32_t *tmp = xmalloc(n * sizeof *tmp);
    for (size_t i = 0; i < n; i++) start[uni_ccc(v[i]) + 1]++;
    for (int c = 1; c < 257; c++) start[c] += start[c - 1];
    for (size_t i = 0; i < n; i++) tmp[start[uni_ccc(v[i])]++] = v[i];
    memcpy(v, tmp, n * sizeof *v);
    free(tmp);
}

void uni_nfd(const uint32_t *in, size_t n, CpVec *out) {
    size_t first = out->n;
    for (size_t i = 0; i < n; i++) {
        uint32_t d[18];
        int k = uni_decompose(in[i], d);
        for (int j = 0; j < k; j++) cp_push(out, d[j]);
    }
    // canonical ordering: each maximal run of code points of class > 0
    uint32_t *v = out->v;
    for (size_t i = first; i < out->n;) {
        if (!uni_ccc(v[i])) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < out->n && uni_ccc(v[j])) j++;
        sort_marks(v + i, j - i);
        i = j;
    }
}

void uni_nfc(const uint32_t *in, size_t n, CpVec *out) {
    CpVec d = {0};
    uni_nfd(in, n, &d);
    // canonical composition: a code point joins the last starter when the pair has a primary
    // composite and nothing between them is a starter or a mark of the same or a higher class
    long starter = -1; // index in out of the last starter
    int last = 0;      // class of the last code point kept (256: nothing may compose across it)
    for (size_t i = 0; i < d.n; i++) {
        uint32_t c = d.v[i];
        int cc = uni_ccc(c);
        if (starter >= 0 && (last < cc || last == 0)) { // last == 0: c follows the starter itself
            uint32_t comp = uni_compose(out->v[starter], c);
            if (comp) {
                out->v[starter] = comp;
                continue;
            }
        }
        if (cc == 0) starter = (long)out->n;
        else if (starter < 0) cc = 256;
        last = cc;
        cp_push(out, c);
    }
    cp_free(&d);
}

bool uni_nfc_utf8(const char *s, size_t n, Buf *out) {
    size_t i = 0;
    while (i < n && (unsigned char)s[i] < 0xCC) i++; // every code point below U+0300 is NFC
    if (i == n) return false;
    CpVec cps = {0}, nfc = {0};
    for (i = 0; i < n;) {
        uint32_t c;
        i += (size_t)utf8_decode(s + i, n - i, &c);
        cp_push(&cps, c);
    }
    uni_nfc(cps.v, cps.n, &nfc);
    buf_clear(out);
    for (size_t k = 0; k < nfc.n; k++) {
        char u[4];
        buf_put(out, u, (size_t)utf8_encode(nfc.v[k], u));
    }
    cp_free(&cps);
    cp_free(&nfc);
    return true;
}
