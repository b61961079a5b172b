// tok_dump.c - test-only: core/tok functions that the qkv command language does not reach,
// line by line, so that the Python reference tests can compare them with HF tokenizers,
// transformers and Python's unicodedata.
//
// Usage: tok_dump nfc|nfd     stdin: one text per line as hex of its UTF-8 (well-formed);
//                             stdout: the NFC / NFD of each (uni_nfc, uni_nfd), hex, one a line
// Exit 0, or 1 with a message on stderr.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/utf8.h"
#include "tok/unicode_norm.h"

// The bytes of the hex text s (n characters) into out; false when s is not hex.
static bool unhex(const char *s, size_t n, Buf *out) {
    if (n % 2) return false;
    for (size_t i = 0; i < n; i += 2) {
        unsigned v;
        if (sscanf(s + i, "%2x", &v) != 1) return false;
        buf_putc(out, (char)v);
    }
    return true;
}

static void put_hex(const Buf *b) {
    for (size_t i = 0; i < b->len; i++) printf("%02x", (unsigned char)b->data[i]);
    putchar('\n');
}

static int normal_form(bool nfc) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    Buf text = {0}, out = {0};
    CpVec in = {0}, res = {0};
    long n = 0;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        n++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        buf_clear(&text);
        if (!unhex(line, (size_t)len, &text)) {
            fprintf(stderr, "line %ld: not hex\n", n);
            return 1;
        }
        in.n = res.n = 0;
        for (size_t i = 0; i < text.len;) {
            uint32_t c;
            i += (size_t)utf8_decode(text.data + i, text.len - i, &c);
            cp_push(&in, c);
        }
        if (nfc) uni_nfc(in.v, in.n, &res);
        else uni_nfd(in.v, in.n, &res);
        buf_clear(&out);
        for (size_t k = 0; k < res.n; k++) {
            char u[4];
            buf_put(&out, u, (size_t)utf8_encode(res.v[k], u));
        }
        put_hex(&out);
    }
    free(line);
    buf_free(&text);
    buf_free(&out);
    cp_free(&in);
    cp_free(&res);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && (!strcmp(argv[1], "nfc") || !strcmp(argv[1], "nfd"))) return normal_form(!strcmp(argv[1], "nfc"));
    fprintf(stderr, "usage: tok_dump nfc|nfd < hex lines\n");
    return 1;
}
