// fuzz_safetensors.c - thousands of mutated safetensors headers: the loader accepts or
// rejects each with a message, never crashes, and what it accepts lies inside the file.
// Deterministic (seeded); run under ASan/UBSan by the sanitizer build.
#include <stdlib.h>

#include "../check.h"
#include "model/newmodel.h"
#include "model/safetensors.h"
#include "eval/sample.h"

static void mutate(unsigned char *p, size_t *n, size_t hdr_end, Rng *r) {
    int kind = (int)(rng_next(r) % 6);
    size_t span = hdr_end > 8 ? hdr_end : *n;
    size_t at = (size_t)(rng_next(r) % span);
    static const char digits[] = "0123456789";
    static const char junk[] = "{}[]\",:-e.0 9x\\u";
    switch (kind) {
    case 0: p[at] ^= (unsigned char)(1u << (rng_next(r) % 8)); break;           // bit flip
    case 1: p[at] = (unsigned char)digits[rng_next(r) % 10]; break;             // digit change
    case 2: p[at] = (unsigned char)junk[rng_next(r) % (sizeof junk - 1)]; break; // structure
    case 3: *n = (size_t)(rng_next(r) % (*n + 1)); break;                      // truncation
    case 4: p[rng_next(r) % 8] = (unsigned char)rng_next(r); break;             // header length
    default: {                                                                  // big numbers
        static const char *big[] = {"99999999999999999999", "18446744073709551615", "-1", "1e300", "4294967296"};
        const char *b = big[rng_next(r) % 5];
        size_t k = strlen(b);
        if (at + k < hdr_end) memcpy(p + at, b, k);
    }
    }
}

int main(void) {
    NewModelParams np = newmodel_defaults();
    np.n_layer = 1, np.n_head = 2, np.n_embd = 16, np.n_ctx = 8, np.n_vocab = 32;
    Buf cfg = {0}, st = {0};
    Err e = {0};
    CHECK_INT(newmodel_build(&np, &cfg, &st, &e), 0);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | (unsigned char)st.data[i];
    size_t hdr = 8 + (size_t)hl;
    // the pristine file opens
    StFile *ok = st_open_mem(st.data, st.len, "pristine", &e);
    CHECK(ok != NULL);
    st_close(ok);

    int iters = getenv("QKV_FUZZ_ITERS") ? atoi(getenv("QKV_FUZZ_ITERS")) : 100000;
    Rng r;
    rng_seed(&r, 2024);
    int accepted = 0, rejected = 0;
    unsigned char *p = malloc(st.len);
    for (int it = 0; it < iters; it++) {
        memcpy(p, st.data, st.len);
        size_t n = st.len;
        int rounds = 1 + (int)(rng_next(&r) % 4);
        for (int k = 0; k < rounds; k++) mutate(p, &n, hdr, &r);
        // an exact-size heap copy so ASan sees any read past the end
        unsigned char *f = malloc(n ? n : 1);
        memcpy(f, p, n);
        Err fe = {0};
        StFile *s = st_open_mem(f, n, "mutant", &fe);
        if (s) {
            accepted++;
            for (int i = 0; i < st_count(s); i++) {
                const WTensor *en = st_at(s, i);
                const unsigned char *d = en->t.data;
                CHECK(d >= f && d + en->nbytes <= f + n);
                volatile unsigned char sum = 0; // touch the first and last byte
                if (en->nbytes) sum ^= d[0], sum ^= d[en->nbytes - 1];
                (void)sum;
            }
            st_close(s);
        } else {
            rejected++;
            if (!fe.msg[0]) {
                fprintf(stderr, "iteration %d: rejected without a message\n", it);
                check_failures++;
            }
        }
        free(f);
    }
    fprintf(stderr, "%d mutants: %d accepted, %d rejected\n", iters, accepted, rejected);
    CHECK(rejected > iters / 10);
    free(p);
    buf_free(&cfg);
    buf_free(&st);
    return CHECK_DONE();
}
