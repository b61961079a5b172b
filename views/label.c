// label.c - visible, width-aware token labels (see label.h).
#include "label.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "label_widths.h"
#include "base/utf8.h"

static bool in_ranges(const CpRange *r, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid].lo) hi = mid;
        else if (cp > r[mid].hi) lo = mid + 1;
        else return true;
    }
    return false;
}

int label_cpwidth(uint32_t cp) {
    if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) return -1;
    if (cp < 0x300) return 1;
    if (in_ranges(zero_width, sizeof zero_width / sizeof *zero_width, cp)) return 0;
    if (in_ranges(double_width, sizeof double_width / sizeof *double_width, cp)) return 2;
    return 1;
}

// Characters that are invisible or reorder text and are shown as <U+XXXX>: format
// characters (bidi controls, zero-width space, BOM, ...), separators, odd spaces, noncharacters.
// The joiners U+200C/U+200D and the emoji tag characters are kept.
static const CpRange escaped[] = {
    {0xAD, 0xAD},       {0x600, 0x605},     {0x61C, 0x61C},     {0x6DD, 0x6DD},
    {0x70F, 0x70F},     {0x890, 0x891},     {0x8E2, 0x8E2},     {0x1680, 0x1680},
    {0x180E, 0x180E},   {0x2000, 0x200B},   {0x200E, 0x200F},   {0x2028, 0x202E},
    {0x205F, 0x2064},   {0x2066, 0x206F},   {0x3000, 0x3000},   {0xFEFF, 0xFEFF},
    {0xFFF9, 0xFFFB},   {0xFFFE, 0xFFFF},   {0x110BD, 0x110BD}, {0x110CD, 0x110CD},
    {0x13430, 0x13438}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0001, 0xE0001},
};

static bool is_escaped(uint32_t cp) {
    return cp >= 0xAD && in_ranges(escaped, sizeof escaped / sizeof *escaped, cp);
}

// Whether code point cp is shown as a printable character that a zero-width mark after it joins:
// not a space, control, escape, no-break space or (in ASCII) a non-ASCII character.
static bool is_base(uint32_t cp, bool utf8) {
    if (cp < 0x7F) return cp > 0x20;
    return utf8 && cp >= 0xA0 && cp != 0xA0 && cp != 0x202F && !is_escaped(cp);
}

// label_visible; `spaces`: ' ' stays ' ' (names and text rather than tokens)
static void visible(Buf *out, const char *s, size_t n, bool utf8, bool spaces) {
    bool have_base = false; // a printable character precedes: zero-width marks can attach
    for (size_t i = 0; i < n;) {
        int len = utf8_valid_len(s + i, n - i);
        if (len < 0) {
            for (int k = 0; k < -len; k++) buf_printf(out, "<0x%02X>", (unsigned char)s[i + (size_t)k]);
            i += (size_t)-len;
            have_base = false;
            continue;
        }
        uint32_t cp;
        utf8_decode(s + i, n - i, &cp);
        const char *raw = s + i;
        i += (size_t)len;
        bool after_base = have_base;
        have_base = is_base(cp, utf8);
        if (cp == ' ') buf_puts(out, spaces ? " " : utf8 ? "\u00B7" : "_");
        else if (cp == '\n') buf_puts(out, utf8 ? "\u21B5" : "\\n");
        else if (cp == '\t') buf_puts(out, utf8 ? "\u2192" : "\\t");
        else if (cp < 0x20) buf_printf(out, "^%c", (char)(cp + 64));
        else if (cp == 0x7F) buf_puts(out, "^?");
        else if (cp < 0x7F) buf_putc(out, (char)cp);
        else if (!utf8) {
            if (label_cpwidth(cp) != 0) buf_putc(out, '?');
        } else if (cp < 0xA0 || is_escaped(cp)) buf_printf(out, "<U+%04X>", (unsigned)cp);
        else if (cp == 0xA0 || cp == 0x202F) buf_puts(out, "\u237D");
        else {
            if (label_cpwidth(cp) == 0 && !after_base) buf_puts(out, "\u25CC");
            buf_put(out, raw, (size_t)len);
        }
    }
}

bool label_joins(const char *s, size_t n, size_t at) {
    uint32_t cp, prev;
    if (at >= n || at == 0 || utf8_valid_len(s + at, n - at) < 0) return false;
    utf8_decode(s + at, n - at, &cp);
    if (label_cpwidth(cp) != 0 || is_escaped(cp)) return false;
    size_t j = at - 1; // the code point before: its lead byte within 3 bytes, and valid
    while (j > 0 && at - j < 4 && ((unsigned char)s[j] & 0xC0) == 0x80) j--;
    if (utf8_valid_len(s + j, at - j) != (int)(at - j)) return false;
    utf8_decode(s + j, at - j, &prev);
    return is_base(prev, true);
}

void label_visible(Buf *out, const char *s, size_t n, bool utf8) { visible(out, s, n, utf8, false); }

int label_width(const char *s, size_t n) {
    int w = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += (size_t)utf8_decode(s + i, n - i, &cp);
        int cw = label_cpwidth(cp);
        if (cw > 0) w += cw;
    }
    return w;
}

int label_next(const char *s, size_t n, size_t *pos, char glyph[LABEL_GLYPH_MAX]) {
    size_t i = *pos;
    glyph[0] = 0;
    if (i >= n) return 0;
    uint32_t cp;
    int len = utf8_decode(s + i, n - i, &cp);
    int w = label_cpwidth(cp);
    if (w < 1) w = 1;
    size_t g = 0;
    if (utf8_valid_len(s + i, n - i) < 0) g = (size_t)utf8_encode(0xFFFD, glyph); // not visible text
    else memcpy(glyph, s + i, (size_t)len), g = (size_t)len;
    i += (size_t)len;
    while (i < n) {
        int l2 = utf8_decode(s + i, n - i, &cp);
        if (label_cpwidth(cp) != 0) break;
        if (g + (size_t)l2 < LABEL_GLYPH_MAX) memcpy(glyph + g, s + i, (size_t)l2), g += (size_t)l2;
        i += (size_t)l2;
    }
    glyph[g] = 0;
    *pos = i;
    return w;
}

// The length of the escape visible() writes for a byte or a code point at s ("<0xNN>",
// "<U+XXXX>" with 4 to 6 hex digits), or 0.
static size_t escape_len(const char *s, size_t n) {
    size_t k;
    if (n >= 6 && !memcmp(s, "<0x", 3) && isxdigit((unsigned char)s[3]) && isxdigit((unsigned char)s[4]) && s[5] == '>')
        return 6;
    if (n < 8 || memcmp(s, "<U+", 3)) return 0;
    for (k = 3; k < n && k < 9 && isxdigit((unsigned char)s[k]); k++) {}
    return k >= 7 && k < n && s[k] == '>' ? k + 1 : 0;
}

static int format(char *out, size_t cap, const char *s, size_t n, int width, bool utf8, bool spaces) {
    if (!cap) return 0;
    out[0] = 0;
    if (width <= 0) return 0;
    Buf v = {0};
    visible(&v, s, n, utf8, spaces);
    const char *ell = utf8 ? "\u2026" : "~";
    size_t ell_len = strlen(ell);
    int total = label_width(v.data ? v.data : "", v.len);
    int limit = total <= width ? width : width == 1 ? 1 : width - 1; // columns for the text
    size_t reserve = 1 + (total <= width ? 0 : ell_len);
    size_t room = cap > reserve ? cap - reserve : 0; // bytes for the text
    size_t pos = 0, len = 0;
    int used = 0;
    char glyph[LABEL_GLYPH_MAX];
    for (;;) {
        size_t save = pos;
        size_t esc = escape_len(v.data ? v.data + pos : "", v.len - pos);
        if (esc) { // "<0x9F>", "<U+0085>": whole or not at all (it was cut to "<0x9…")
            if (used + (int)esc > limit || len + esc > room) break;
            memcpy(out + len, v.data + pos, esc);
            len += esc, used += (int)esc, pos += esc;
            continue;
        }
        int cw = label_next(v.data, v.len, &pos, glyph);
        if (!cw) break;
        size_t gl = strlen(glyph);
        if (used + cw > limit || len + gl > room) {
            pos = save;
            break;
        }
        memcpy(out + len, glyph, gl);
        len += gl, used += cw;
    }
    bool cut = pos < v.len;
    if (cut && !(width == 1 && used == 1) && len + ell_len < cap) {
        memcpy(out + len, ell, ell_len);
        len += ell_len, used += 1;
    }
    out[len] = 0;
    buf_free(&v);
    return used;
}

int label_format(char *out, size_t cap, const char *s, size_t n, int width, bool utf8) {
    return format(out, cap, s, n, width, utf8, false);
}

int label_format_text(char *out, size_t cap, const char *s, size_t n, int width) {
    return format(out, cap, s, n, width, true, true);
}

// Columns of visible text s (n bytes).
static int text_cols(const char *s, size_t n) {
    int total = 0, w;
    size_t pos = 0;
    char glyph[LABEL_GLYPH_MAX];
    while ((w = label_next(s, n, &pos, glyph)) > 0) total += w;
    return total;
}

int label_elide_middle(Buf *out, const char *s, size_t n, int width) {
    if (width < 1) return 0;
    int total = text_cols(s, n), w;
    size_t pos = 0;
    char glyph[LABEL_GLYPH_MAX];
    if (total <= width) {
        buf_put(out, s, n);
        return total;
    }
    // the start and the end (where an error's reason is) around one '…'
    const int head = (width - 1) / 2, tail = width - 1 - head;
    int used = 0;
    pos = 0;
    size_t at = 0;
    while ((w = label_next(s, n, &pos, glyph)) > 0 && used + w <= head) used += w, at = pos;
    buf_put(out, s, at);
    buf_puts(out, "\u2026");
    int skip = total - tail, seen = 0; // columns before the tail
    pos = 0;
    size_t from = n;
    for (size_t before = 0; (w = label_next(s, n, &pos, glyph)) > 0; before = pos) {
        if (seen >= skip) {
            from = before;
            break;
        }
        seen += w;
    }
    buf_put(out, s + from, n - from);
    return used + 1 + (total - seen);
}

int label_fit_message(Buf *out, const char *s, size_t n, int width) {
    int total = text_cols(s, n);
    // the longest 'quoted' part, else the longest word holding a '/' (a path)
    size_t a = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\'') continue;
        const char *q = memchr(s + i + 1, '\'', n - i - 1);
        if (!q) break;
        size_t j = (size_t)(q - s);
        if (j - i - 1 > b - a) a = i + 1, b = j;
        i = j;
    }
    for (size_t i = 0; b == a && i < n;) {
        size_t j = i;
        while (j < n && s[j] != ' ') j++;
        if (memchr(s + i, '/', j - i) && j - i > b - a) a = i, b = j;
        i = j + 1;
    }
    int span = b > a ? text_cols(s + a, b - a) : 0, keep = span - (total - width);
    if (total <= width || span <= 8) { // fits, or nothing to shorten: the end is cut where it is drawn
        buf_put(out, s, n);
        return total;
    }
    buf_put(out, s, a);
    label_elide_middle(out, s + a, b - a, keep > 8 ? keep : 8);
    buf_put(out, s + b, n - b);
    return text_cols(out->data, out->len);
}
