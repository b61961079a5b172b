// utf8.h - UTF-8 decoding with the WHATWG/Unicode "maximal subpart" error rule.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Length (1..4) of the well-formed UTF-8 sequence at s (n bytes available), or, when
// the bytes there are ill-formed, minus the number of bytes that form one maximal
// ill-formed subpart (each such subpart decodes to one U+FFFD). Requires n >= 1.
int utf8_valid_len(const char *s, size_t n);

// The offset of the first byte of s[0, n) that is not well-formed UTF-8, or SIZE_MAX when all
// of it is (text files qkv refuses rather than read with U+FFFD in place of their bytes).
size_t utf8_invalid_at(const char *s, size_t n);

// Where offset at of s lies, for a message: its line (from 1) and the byte of that line (from
// 1), so that an editor finds it in a large file ("line 1042117, byte 12 of it").
void text_line_of(const char *s, size_t at, size_t *line, size_t *byte);

// Decode one code point at s; stores it (U+FFFD for ill-formed input) in *cp and
// returns the number of bytes consumed (>= 1). Requires n >= 1.
int utf8_decode(const char *s, size_t n, uint32_t *cp);

// Whether a (na bytes) and b (nb bytes) read as the same text: equal once each ill-formed
// subpart is shown as U+FFFD, as buf_put_utf8 and every export write them (two completions cut
// inside different characters both read "\uFFFD"). NULL with a length of 0 is the empty text.
bool utf8_same_text(const char *a, size_t na, const char *b, size_t nb);

// Encode cp as UTF-8 into out (at least 4 bytes); returns the byte count.
int utf8_encode(uint32_t cp, char *out);

// Whether the byte c continues a UTF-8 sequence (10xxxxxx): no character starts there.
static inline int utf8_is_cont(char c) { return ((unsigned char)c & 0xC0) == 0x80; }
