// utf8.c - UTF-8 decoding and encoding.
#include "base/utf8.h"

#include <string.h>

int utf8_valid_len(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    unsigned c = p[0];
    if (c < 0x80) return 1;
    int need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) need = 2, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC) need = 2;
    else if (c == 0xED) need = 2, hi = 0x9F;
    else if (c >= 0xEE && c <= 0xEF) need = 2;
    else if (c == 0xF0) need = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) need = 3, hi = 0x8F;
    else return -1;
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) return -i;
        unsigned d = p[i];
        if (d < lo || d > hi) return -i;
        lo = 0x80, hi = 0xBF;
    }
    return need + 1;
}

int utf8_decode(const char *s, size_t n, uint32_t *cp) {
    int len = utf8_valid_len(s, n);
    if (len < 0) {
        *cp = 0xFFFD;
        return -len;
    }
    const unsigned char *p = (const unsigned char *)s;
    switch (len) {
    case 1: *cp = p[0]; break;
    case 2: *cp = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F); break;
    case 3: *cp = ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F); break;
    default:
        *cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
              ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    }
    return len;
}

int utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

bool utf8_same_text(const char *a, size_t na, const char *b, size_t nb) {
    size_t i = 0, j = 0;
    while (i < na && j < nb) {
        uint32_t ca, cb;
        i += (size_t)utf8_decode(a + i, na - i, &ca);
        j += (size_t)utf8_decode(b + j, nb - j, &cb);
        if (ca != cb) return false;
    }
    return i == na && j == nb;
}

void text_line_of(const char *s, size_t at, size_t *line, size_t *byte) {
    size_t l = 1, start = 0;
    for (const char *p = s; (p = memchr(p, '\n', at - (size_t)(p - s))) != NULL; p++) l++, start = (size_t)(p - s) + 1;
    *line = l, *byte = at - start + 1;
}

size_t utf8_invalid_at(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int l = utf8_valid_len(s + i, n - i);
        if (l < 0) return i;
        i += (size_t)l;
    }
    return SIZE_MAX;
}
