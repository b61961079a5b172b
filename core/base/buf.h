// buf.h - a growable byte buffer and the JSON writer built on it.
#pragma once
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

// A growable, always NUL-terminated byte buffer. Zero-initialise, then buf_free.
// Its growth is bookkeeping (mem.h rule 2: xrealloc) unless it is marked fallible, for
// contents whose size comes from input (a file read whole, a command's result, a database
// row): then a growth that fails frees the data, records the size it needed in failed and
// makes every later append a no-op; the owner checks failed and reports the error.
typedef struct Buf {
    char *data;
    size_t len, cap;
    bool fallible; // set before use (Buf b = {.fallible = true}); kept by buf_free
    size_t failed; // a fallible buffer could not grow to this many bytes (0: it never failed)
} Buf;

// Free the data; a fallible buffer stays fallible and may be used again.
void buf_free(Buf *b);
void buf_clear(Buf *b);
// Room for extra more bytes (and the NUL); -1 only when a fallible buffer has failed.
int buf_reserve(Buf *b, size_t extra);
void buf_put(Buf *b, const void *p, size_t n);
void buf_puts(Buf *b, const char *s);
void buf_putc(Buf *b, char c);
void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(Buf *b, const char *fmt, va_list ap);
// Append s (n bytes) with every ill-formed UTF-8 sequence replaced by U+FFFD.
void buf_put_utf8(Buf *b, const char *s, size_t n);
// Append s (n bytes) as one quoted argument of qkv's command language: "..." with C escapes
// for quotes, backslashes and control characters (the lexer reads it back byte for byte).
void buf_put_quoted(Buf *b, const char *s, size_t n);
// Append s as XML character data (& < > " escaped), for SVG text.
void buf_put_xml(Buf *out, const char *s);
// Append n bytes of s as one CSV field (RFC 4180): quoted, quotes doubled, when it holds a
// comma, a quote, CR or LF; valid UTF-8 verbatim, ill-formed sequences as U+FFFD (the
// exports' text: a model's output cut inside a character, as the JSON exports write it).
void buf_put_csv(Buf *b, const char *s, size_t n);
// Take ownership of the data (caller frees); b is left empty. NULL when b has failed.
char *buf_take(Buf *b);

// Append s (n bytes) as a JSON string literal with quotes. Invalid UTF-8 bytes are
// written as \u00XX escapes of U+FFFD, control characters as \uXXXX.
void buf_json_str(Buf *b, const char *s, size_t n);
// Append a float as a JSON number (shortest round-trip form, 9 significant digits);
// non-finite values become null.
void buf_json_num(Buf *b, double v);

// Streaming JSON writer with automatic commas. Keys are written with jw_key.
typedef struct JsonW {
    Buf *b;
    int depth;
    uint64_t need_comma; // bit per depth
} JsonW;

void jw_init(JsonW *w, Buf *b);
void jw_obj(JsonW *w);     // {
void jw_obj_end(JsonW *w); // }
void jw_arr(JsonW *w);     // [
void jw_arr_end(JsonW *w); // ]
void jw_key(JsonW *w, const char *k);
void jw_str(JsonW *w, const char *s);
void jw_strn(JsonW *w, const char *s, size_t n);
void jw_int(JsonW *w, long long v);
void jw_num(JsonW *w, double v);
// Whether the na bytes at a equal the nb at b (either may be NULL when empty: memcmp may not be
// given NULL, even for 0 bytes).
static inline bool bytes_eq(const void *a, size_t na, const void *b, size_t nb) {
    return na == nb && (!na || !memcmp(a, b, na));
}

// The double of a float's shortest decimal form: 0.9f as 0.9, not 0.899999976 (a setting a
// person typed, stored and shown as typed; converted back to float it is the same float).
double float_decimal(float f);
void jw_bool(JsonW *w, bool v);
void jw_null(JsonW *w);
// Append raw, already-valid JSON as one value.
void jw_raw(JsonW *w, const char *json);
// Shorthands for a key and a value.
void jw_kstr(JsonW *w, const char *k, const char *s);
void jw_kint(JsonW *w, const char *k, long long v);
void jw_knum(JsonW *w, const char *k, double v);
void jw_kbool(JsonW *w, const char *k, bool v);
// A database row's id, null when there is none (<= 0: the row was not stored).
void jw_kid(JsonW *w, const char *k, long long id);
