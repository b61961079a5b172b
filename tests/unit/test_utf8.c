// test_utf8.c - UTF-8 decoding follows the maximal-subpart rule (as WHATWG decoders do).
#include "../check.h"
#include "base/buf.h"
#include "base/utf8.h"

// Decode s into code points, return how many; cps must hold n entries.
static int decode_all(const char *s, size_t n, uint32_t *cps) {
    int k = 0;
    for (size_t i = 0; i < n;) i += (size_t)utf8_decode(s + i, n - i, &cps[k++]);
    return k;
}

int main(void) {
    uint32_t cp[16];
    CHECK_INT(decode_all("a\xc3\xa9", 3, cp), 2);
    CHECK_INT(cp[1], 0xE9);
    // F0 9F 98 is a truncated 4-byte sequence: one U+FFFD, then 'x'
    CHECK_INT(decode_all("\xf0\x9f\x98x", 4, cp), 2);
    CHECK_INT(cp[0], 0xFFFD);
    CHECK_INT(cp[1], 'x');
    // surrogates encoded in UTF-8 (ED A0 80) are three maximal subparts
    CHECK_INT(decode_all("\xed\xa0\x80", 3, cp), 3);
    // overlong C0 80: two replacement characters
    CHECK_INT(decode_all("\xc0\x80", 2, cp), 2);
    CHECK_INT(decode_all("\xe2\x82\xac", 3, cp), 1);
    CHECK_INT(cp[0], 0x20AC);
    char out[4];
    CHECK_INT(utf8_encode(0x1F600, out), 4);
    CHECK(!memcmp(out, "\xf0\x9f\x98\x80", 4));
    // a CSV field is valid UTF-8: a character cut short becomes U+FFFD (quoted or not), valid
    // text stays as it is
    Buf b = {0};
    buf_put_csv(&b, "a\xee,\"\xc3\xa9", 6);
    CHECK_STR(b.data, "\"a\xef\xbf\xbd,\"\"\xc3\xa9\"");
    b.len = 0;
    buf_put_csv(&b, "x\xf0\x9f\x98", 4);
    CHECK_STR(b.data, "x\xef\xbf\xbd");
    buf_free(&b);
    // the same text as read: ill-formed subparts are U+FFFD (two characters cut short differently,
    // or one and a written U+FFFD), anything else byte for byte
    CHECK(utf8_same_text("e\xe2\x82", 3, "e\xe2\x83", 3));
    CHECK(utf8_same_text("\xf0\x9f\x98", 3, "\xef\xbf\xbd", 3));
    CHECK(utf8_same_text(NULL, 0, "", 0));
    CHECK(!utf8_same_text("\xe2\x82", 2, "\xe2\x82\xac", 3));
    CHECK(!utf8_same_text("ab", 2, "a", 1));
    CHECK(!utf8_same_text("\xc0\x80", 2, "\xef\xbf\xbd", 3)); // two U+FFFD, not one
    CHECK(!utf8_same_text(" a", 2, "a", 1));
    // where an offset lies: its line and its byte in that line, both from 1
    size_t line, byte;
    const char *txt = "ab\ncd\n\nef";
    text_line_of(txt, 0, &line, &byte);
    CHECK(line == 1 && byte == 1);
    text_line_of(txt, 2, &line, &byte); // the newline ends line 1
    CHECK(line == 1 && byte == 3);
    text_line_of(txt, 4, &line, &byte);
    CHECK(line == 2 && byte == 2);
    text_line_of(txt, 7, &line, &byte);
    CHECK(line == 4 && byte == 1);
    return CHECK_DONE();
}
