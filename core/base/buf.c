// buf.c - growable buffer and a small streaming JSON writer.
#include "base/buf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/utf8.h"

void buf_free(Buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

void buf_clear(Buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

int buf_reserve(Buf *b, size_t extra) {
    if (b->failed) return -1;
    size_t need = extra < SIZE_MAX - 1 - b->len ? b->len + extra + 1 : SIZE_MAX;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap <= SIZE_MAX / 2 ? cap * 2 : need;
    if (!b->fallible) {
        b->data = xrealloc(b->data, cap);
    } else {
        char *p = need < SIZE_MAX ? realloc(b->data, cap) : NULL;
        if (!p && need < cap - cap / 4) // a smaller step that still grows geometrically
            p = realloc(b->data, cap = need + need / 4);
        if (!p) {
            free(b->data);
            b->data = NULL;
            b->len = b->cap = 0;
            b->failed = need;
            return -1;
        }
        b->data = p;
    }
    b->cap = cap;
    return 0;
}

void buf_put(Buf *b, const void *p, size_t n) {
    if (buf_reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void buf_puts(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }

void buf_putc(Buf *b, char c) { buf_put(b, &c, 1); }

void buf_vprintf(Buf *b, const char *fmt, va_list ap) {
    if (b->failed) return; // a failed buffer takes nothing: do not format for it
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || buf_reserve(b, (size_t)n)) return;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void buf_printf(Buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_put_utf8(Buf *b, const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        int len = utf8_valid_len(s + i, n - i);
        if (len > 0) {
            buf_put(b, s + i, (size_t)len);
            i += (size_t)len;
        } else {
            buf_puts(b, "\xEF\xBF\xBD");
            i += (size_t)-len;
        }
    }
}

char *buf_take(Buf *b) {
    if (!b->data && buf_reserve(b, 0)) {
        buf_free(b);
        return NULL;
    }
    if (!b->len) b->data[0] = 0;
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void buf_json_str(Buf *b, const char *s, size_t n) {
    if (buf_reserve(b, n < SIZE_MAX - 2 ? n + 2 : n)) return;
    buf_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            switch (c) {
            case '"': buf_puts(b, "\\\""); break;
            case '\\': buf_puts(b, "\\\\"); break;
            case '\n': buf_puts(b, "\\n"); break;
            case '\r': buf_puts(b, "\\r"); break;
            case '\t': buf_puts(b, "\\t"); break;
            default:
                if (c < 0x20 || c == 0x7f) buf_printf(b, "\\u%04x", c);
                else buf_putc(b, (char)c);
            }
            i++;
            continue;
        }
        int len = utf8_valid_len(s + i, n - i);
        if (len > 0) {
            buf_put(b, s + i, (size_t)len);
            i += (size_t)len;
        } else {
            buf_puts(b, "\\ufffd");
            i += (size_t)-len;
        }
    }
    buf_putc(b, '"');
}

void buf_json_num(Buf *b, double v) {
    if (b->failed) return;
    if (!isfinite(v)) {
        buf_puts(b, "null");
        return;
    }
    if (v == (double)(long long)v && fabs(v) < 1e15) {
        buf_printf(b, "%lld", (long long)v);
        return;
    }
    buf_printf(b, "%.9g", v);
}

static void jw_sep(JsonW *w) {
    uint64_t bit = 1ull << (w->depth & 63);
    if (w->need_comma & bit) buf_putc(w->b, ',');
    w->need_comma |= bit;
}

void jw_init(JsonW *w, Buf *b) {
    w->b = b;
    w->depth = 0;
    w->need_comma = 0;
}

static void jw_open(JsonW *w, char c) {
    jw_sep(w);
    buf_putc(w->b, c);
    w->depth++;
    w->need_comma &= ~(1ull << (w->depth & 63));
}

static void jw_close(JsonW *w, char c) {
    buf_putc(w->b, c);
    w->depth--;
}

void jw_obj(JsonW *w) { jw_open(w, '{'); }
void jw_obj_end(JsonW *w) { jw_close(w, '}'); }
void jw_arr(JsonW *w) { jw_open(w, '['); }
void jw_arr_end(JsonW *w) { jw_close(w, ']'); }

void jw_key(JsonW *w, const char *k) {
    jw_sep(w);
    buf_json_str(w->b, k, strlen(k));
    buf_putc(w->b, ':');
    // the value that follows must not add a comma
    w->need_comma &= ~(1ull << (w->depth & 63));
}

// After a value written directly after a key, the next key at this depth needs a comma.
static void jw_after_value(JsonW *w) { w->need_comma |= 1ull << (w->depth & 63); }

void jw_strn(JsonW *w, const char *s, size_t n) {
    jw_sep(w);
    buf_json_str(w->b, s, n);
    jw_after_value(w);
}
void jw_str(JsonW *w, const char *s) {
    if (!s) {
        jw_null(w);
        return;
    }
    jw_strn(w, s, strlen(s));
}
void jw_int(JsonW *w, long long v) {
    jw_sep(w);
    buf_printf(w->b, "%lld", v);
}
double float_decimal(float f) {
    if (!isfinite(f)) return f;
    char s[32];
    for (int digits = 6; digits < 9; digits++) {
        snprintf(s, sizeof s, "%.*g", digits, (double)f);
        double d = strtod(s, NULL);
        if ((float)d == f) return d;
    }
    snprintf(s, sizeof s, "%.9g", (double)f); // always the float again
    return strtod(s, NULL);
}

void jw_num(JsonW *w, double v) {
    jw_sep(w);
    buf_json_num(w->b, v);
}
void jw_bool(JsonW *w, bool v) {
    jw_sep(w);
    buf_puts(w->b, v ? "true" : "false");
}
void jw_null(JsonW *w) {
    jw_sep(w);
    buf_puts(w->b, "null");
}
void jw_raw(JsonW *w, const char *json) {
    jw_sep(w);
    buf_puts(w->b, json);
}
void jw_kstr(JsonW *w, const char *k, const char *s) { jw_key(w, k), jw_str(w, s); }
void jw_kint(JsonW *w, const char *k, long long v) { jw_key(w, k), jw_int(w, v); }
void jw_knum(JsonW *w, const char *k, double v) { jw_key(w, k), jw_num(w, v); }
void jw_kbool(JsonW *w, const char *k, bool v) { jw_key(w, k), jw_bool(w, v); }
void jw_kid(JsonW *w, const char *k, long long id) {
    jw_key(w, k);
    if (id > 0) jw_int(w, id);
    else jw_null(w);
}

void buf_put_quoted(Buf *out, const char *s, size_t n) {
    buf_putc(out, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': buf_puts(out, "\\\""); break;
        case '\\': buf_puts(out, "\\\\"); break;
        case '\n': buf_puts(out, "\\n"); break;
        case '\t': buf_puts(out, "\\t"); break;
        case '\r': buf_puts(out, "\\r"); break;
        default:
            if (c < 0x20 || c == 0x7F) buf_printf(out, "\\x%02x", c);
            else buf_putc(out, (char)c);
        }
    }
    buf_putc(out, '"');
}

void buf_put_xml(Buf *out, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': buf_puts(out, "&amp;"); break;
        case '<': buf_puts(out, "&lt;"); break;
        case '>': buf_puts(out, "&gt;"); break;
        case '"': buf_puts(out, "&quot;"); break;
        default: buf_putc(out, *s);
        }
    }
}

void buf_put_csv(Buf *b, const char *s, size_t n) {
    Buf v = {0}; // a spreadsheet or a CSV reader takes UTF-8: ill-formed bytes become U+FFFD
    buf_put_utf8(&v, s, n);
    s = v.data ? v.data : "", n = v.len;
    bool quote = false;
    for (size_t i = 0; i < n && !quote; i++) quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        buf_put(b, s, n);
    } else {
        buf_putc(b, '"');
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '"') buf_putc(b, '"');
            buf_putc(b, s[i]);
        }
        buf_putc(b, '"');
    }
    buf_free(&v);
}
