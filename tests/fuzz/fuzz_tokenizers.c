// fuzz_tokenizers.c - every tokenizer loader on thousands of mutated files: tokenizer.json
// (byte-level BPE with a Split pre-tokenizer, SentencePiece-style BPE, WordPiece), vocab.txt
// with tokenizer_config.json, vocab.json with merges.txt, and a llama2.c tokenizer .bin.
// Each mutant is accepted or rejected with a message, never a crash; what is accepted
// encodes a few texts to ids inside its vocabulary and decodes them again. Deterministic
// (seeded); run under ASan/UBSan by the sanitizer build. The seeds are in tok-seeds/
// (make.py regenerates them with HF tokenizers).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "base/fs.h"
#include "eval/sample.h"
#include "tok/tokenizer.h"

// One loader's case: the files of a tokenizer, the one mutated (others are written as they
// are), and what tok_load is given (the directory, or the mutated file itself).
typedef struct Case {
    const char *name;
    const char *files[3]; // names under the seed directory; files[0] is mutated (sometimes files[1])
    bool load_dir;
} Case;

static void mutate(Buf *b, Rng *r) {
    size_t n = b->len;
    if (!n) return;
    size_t at = (size_t)(rng_next(r) % n);
    static const char structure[] = "{}[]\",:\\ \n#0123456789-e.";
    static const char *const big[] = {"99999999999999999999", "-1", "1e308", "4294967296", "2147483647", "\"\"",
                                      "null", "[]", "{}", "\\u0000", "\\ud800", "\xff\xfe", "\xc0\x80"};
    unsigned char ch = (unsigned char)b->data[at];
    if (rng_next(r) % 2) { // soft: a letter or digit becomes another, so that most mutants still parse
        static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _";
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
            b->data[at] = alnum[rng_next(r) % (sizeof alnum - 1)];
        return;
    }
    switch (rng_next(r) % 8) {
    case 0: b->data[at] ^= (char)(1u << (rng_next(r) % 8)); break; // bit flip
    case 1: b->data[at] = structure[rng_next(r) % (sizeof structure - 1)]; break;
    case 2: b->len = (size_t)(rng_next(r) % (n + 1)); break; // truncation
    case 3: { // delete a span
        size_t k = (size_t)(rng_next(r) % 64);
        if (at + k > n) k = n - at;
        memmove(b->data + at, b->data + at + k, n - at - k);
        b->len -= k;
        break;
    }
    case 4: { // duplicate a span (repeated keys, entries, tokens)
        size_t k = (size_t)(rng_next(r) % 64);
        if (at + k > n) k = n - at;
        char *span = malloc(k ? k : 1);
        memcpy(span, b->data + at, k);
        Buf t = {0};
        buf_put(&t, b->data, at + k);
        buf_put(&t, span, k);
        buf_put(&t, b->data + at + k, n - at - k);
        free(span);
        buf_clear(b);
        buf_put(b, t.data, t.len);
        buf_free(&t);
        break;
    }
    case 5: { // overwrite with a troublesome value
        const char *v = big[rng_next(r) % (sizeof big / sizeof big[0])];
        size_t k = strlen(v);
        if (at + k <= n) memcpy(b->data + at, v, k);
        break;
    }
    case 6: b->data[at] = (char)(0x80 + rng_next(r) % 0x80); break; // stray UTF-8 byte
    default: { // a binary length field (llama2.c: int32s) turned huge or negative
        uint32_t v = (uint32_t)rng_next(r);
        size_t a4 = at & ~(size_t)3;
        if (a4 + 4 <= n) memcpy(b->data + a4, &v, 4);
    }
    }
}

static const char *const texts[] = {
    "Hello world, the cat sat on the mat.", "caf\xC3\xA9 na\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x99\x82",
    "  don't\n\n\ttabs 1234567", "[CLS] [MASK] <s> </s> <|begin_of_text|> <unk>", "\xFF\xFE\xC0\x80 x", "",
};

// Load the mutant and, when accepted, use it. Returns 1 accepted, 0 rejected.
static int exercise(const char *path, int it, const char *name) {
    Err e = {0};
    Tokenizer *t = tok_load(path, &e);
    if (!t) {
        if (!e.msg[0]) {
            fprintf(stderr, "%s, iteration %d: rejected without a message\n", name, it);
            check_failures++;
        }
        if (getenv("QKV_FUZZ_VERBOSE")) fprintf(stderr, "  %s\n", e.msg);
        return 0;
    }
    int V = tok_vocab_size(t);
    CHECK(V > 0);
    IntVec ids = {0};
    Buf out = {0};
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        ids.n = 0;
        Err ee = {0};
        int n = tok_encode(t, texts[k], strlen(texts[k]), TOK_ADD_SPECIAL | TOK_PARSE_SPECIAL, &ids, &ee);
        if (n < 0) {
            if (!ee.msg[0]) {
                fprintf(stderr, "%s, iteration %d: encoding failed without a message\n", name, it);
                check_failures++;
            }
            continue;
        }
        for (int i = 0; i < ids.n; i++)
            if (ids.v[i] < 0 || ids.v[i] >= V) {
                fprintf(stderr, "%s, iteration %d: id %d outside the vocabulary of %d\n", name, it, ids.v[i], V);
                check_failures++;
                break;
            }
        buf_clear(&out);
        tok_decode(t, ids.v, ids.n, &out);
        for (int i = 0; i < ids.n; i++) tok_piece_display(t, ids.v[i], &out);
    }
    int probe[] = {-1, 0, V - 1, V, 1 << 30};
    for (int i = 0; i < 5; i++) {
        size_t len;
        tok_piece(t, probe[i], &len);
        tok_is_special(t, probe[i]);
    }
    buf_free(&out);
    iv_free(&ids);
    tok_free(t);
    return 1;
}

// A small llama2.c tokenizer: max length, then per token a score, a length and the bytes.
static void llama2c_seed(Buf *b) {
    static const char *const words[] = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "\xE2\x96\x81" "t", "he",
                                        "\xE2\x96\x81" "the", "at", "\xE2\x96\x81" "c", "\xE2\x96\x81" "cat", "on"};
    int32_t maxlen = 16;
    buf_put(b, &maxlen, 4);
    for (int i = 0; i < 3 + 256 + 8; i++) {
        char piece[16];
        if (i < 3) snprintf(piece, sizeof piece, "%s", words[i]);
        else if (i < 259) snprintf(piece, sizeof piece, "<0x%02X>", i - 3);
        else snprintf(piece, sizeof piece, "%s", words[i - 256]);
        float score = i < 259 ? 0.0f : -(float)(i - 259);
        int32_t len = (int32_t)strlen(piece);
        buf_put(b, &score, 4);
        buf_put(b, &len, 4);
        buf_put(b, piece, (size_t)len);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: fuzz_tokenizers SEED_DIR\n");
        return 2;
    }
    const char *seeds = argv[1];
    char tmpl[CHECK_TMP_LEN];
    const char *dir = mkdtemp(check_tmpl(tmpl, sizeof tmpl, "qkv-fuzz-tok"));
    CHECK(dir != NULL);
    if (!dir) return CHECK_DONE();
    static const Case cases[] = {
        {"byte-level BPE tokenizer.json", {"bpe-split.json"}, false},
        {"SentencePiece-style tokenizer.json", {"spm.json"}, false},
        {"WordPiece tokenizer.json", {"wordpiece.json"}, false},
        {"vocab.txt + tokenizer_config.json", {"bert/vocab.txt", "bert/tokenizer_config.json"}, true},
        {"vocab.json + merges.txt", {"gpt2/vocab.json", "gpt2/merges.txt"}, true},
        {"llama2.c tokenizer", {NULL}, false},
    };
    int iters = getenv("QKV_FUZZ_ITERS") ? atoi(getenv("QKV_FUZZ_ITERS")) : 1500;
    Rng r;
    rng_seed(&r, 2026);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const Case *k = &cases[c];
        Buf orig[3] = {{0}};
        char *dst[3] = {0};
        int nf = 0;
        for (; nf < 3 && (nf == 0 || k->files[nf]); nf++) {
            Err e = {0};
            if (!k->files[nf]) { // the llama2.c tokenizer is made here
                llama2c_seed(&orig[0]);
                dst[0] = fs_join(dir, "tokenizer.bin");
                continue;
            }
            char *src = fs_join(seeds, k->files[nf]);
            CHECK(fs_read_file(src, 1 << 24, &orig[nf], &e) == 0);
            free(src);
            const char *slash = strrchr(k->files[nf], '/');
            dst[nf] = fs_join(dir, slash ? slash + 1 : k->files[nf]);
        }
        // the seeds themselves load
        for (int f = 0; f < nf; f++) CHECK(fs_write_atomic(dst[f], orig[f].data, orig[f].len, &(Err){0}) == 0);
        const char *load = k->load_dir ? dir : dst[0];
        if (!exercise(load, -1, k->name)) {
            fprintf(stderr, "%s: the seed does not load\n", k->name);
            check_failures++;
        }
        int accepted = 0, rejected = 0;
        Buf m = {0};
        for (int it = 0; it < iters; it++) {
            int which = nf > 1 && rng_next(&r) % 4 == 0 ? 1 : 0;
            buf_clear(&m);
            buf_put(&m, orig[which].data, orig[which].len);
            int rounds = 1 + (int)(rng_next(&r) % 4);
            for (int q = 0; q < rounds; q++) mutate(&m, &r);
            CHECK(fs_write_atomic(dst[which], m.data, m.len, &(Err){0}) == 0);
            if (exercise(load, it, k->name)) accepted++;
            else rejected++;
            fs_write_atomic(dst[which], orig[which].data, orig[which].len, &(Err){0});
        }
        fprintf(stderr, "%s: %d mutants, %d accepted, %d rejected\n", k->name, iters, accepted, rejected);
        CHECK(rejected > 0 && accepted > 0); // the mutations reach both outcomes
        buf_free(&m);
        for (int f = 0; f < nf; f++) {
            remove(dst[f]);
            free(dst[f]);
            buf_free(&orig[f]);
        }
    }
    remove(dir);
    return CHECK_DONE();
}
