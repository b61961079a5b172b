// sha256.h - SHA-256 (FIPS 180-4), streaming, and the hash of a whole file.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct Sha256 {
    uint32_t h[8];
    uint64_t n_bytes;   // total bytes fed so far
    unsigned char block[64];
    size_t n_block;     // bytes waiting in block
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t n);
// Finish and write the 32-byte digest; s must be re-initialised before reuse.
void sha256_final(Sha256 *s, unsigned char out[32]);
// The digest of n bytes at once.
void sha256(const void *data, size_t n, unsigned char out[32]);
// Lower-case hex of a digest into hex (65 bytes with the NUL).
void sha256_hex(const unsigned char digest[32], char hex[65]);
// Hash the file at path, reading it in chunks. Returns 0, or -1 with e filled.
int sha256_file(const char *path, unsigned char out[32], Err *e);
