// test_sha256.c - SHA-256 against the FIPS 180-4 / NIST example vectors, fed whole,
// byte by byte and in odd chunks, and through sha256_file.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "base/sha256.h"

static void hex_of(const void *p, size_t n, char hex[65]) {
    unsigned char d[32];
    sha256(p, n, d);
    sha256_hex(d, hex);
}

int main(void) {
    static const struct {
        const char *in;
        const char *want;
    } vec[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    char hex[65];
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        hex_of(vec[i].in, strlen(vec[i].in), hex);
        CHECK_STR(hex, vec[i].want);
        // the same input one byte at a time
        Sha256 s;
        unsigned char d[32];
        sha256_init(&s);
        for (size_t j = 0; vec[i].in[j]; j++) sha256_update(&s, vec[i].in + j, 1);
        sha256_final(&s, d);
        sha256_hex(d, hex);
        CHECK_STR(hex, vec[i].want);
    }

    // one million 'a', in chunks of 997 bytes (not a divisor of the block size)
    size_t n = 1000000;
    char *a = malloc(n);
    memset(a, 'a', n);
    const char *million = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    Sha256 s;
    unsigned char d[32];
    sha256_init(&s);
    for (size_t off = 0; off < n; off += 997) sha256_update(&s, a + off, n - off < 997 ? n - off : 997);
    sha256_final(&s, d);
    sha256_hex(d, hex);
    CHECK_STR(hex, million);

    // lengths around the padding boundary (55, 56, 63, 64, 65 bytes) agree fed whole and split
    for (size_t len = 50; len < 130; len++) {
        char h1[65], h2[65];
        hex_of(a, len, h1);
        sha256_init(&s);
        sha256_update(&s, a, len / 3);
        sha256_update(&s, a + len / 3, len - len / 3);
        sha256_final(&s, d);
        sha256_hex(d, h2);
        CHECK_STR(h2, h1);
    }
    hex_of(a, 56, hex); // a 56-byte message needs a second padding block
    CHECK_STR(hex, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");

    // a file
    char path[CHECK_TMP_LEN];
    check_tmpl(path, sizeof path, "qkv-sha256");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, a, n) == (ssize_t)n);
    close(fd);
    Err e = {{0}};
    CHECK_INT(sha256_file(path, d, &e), 0);
    sha256_hex(d, hex);
    CHECK_STR(hex, million);
    unlink(path);
    CHECK_INT(sha256_file(path, d, &e), -1);
    CHECK(strstr(e.msg, "cannot open") != NULL);
    free(a);
    return CHECK_DONE();
}
