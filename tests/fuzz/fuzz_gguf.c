// fuzz_gguf.c - thousands of mutated GGUF files: the reader accepts or rejects each with a
// message, never crashes, and what it accepts lies inside the file; the metadata of accepted
// ones goes through every typed getter, the tokenizer and the configuration readers, and some
// through model_open whole. Deterministic (seeded); run under ASan/UBSan by the sanitizer build.
#include <stdlib.h>
#include <unistd.h>

#include "../check.h"
#include "base/fs.h"
#include "base/gguf.h"
#include "eval/sample.h"
#include "kern/tensor.h"
#include "model/model.h"

// A small Llama-shaped GGUF with a byte-level vocabulary (the 256 byte tokens, a few merges, a
// control token), F32 vectors, F16 and Q8_0 matrices, written by qkv's own writer.
static const char *const merges[] = {"\xc4\xa0 t", "h e", "\xc4\xa0t he"};

typedef struct Blob {
    Rng r;
} Blob;

// The tensors: name, ggml dims, ggml type.
typedef struct T {
    const char *name;
    int64_t ne0, ne1;
    uint32_t type;
} T;

static const T tensors[] = {
    {"token_embd.weight", 32, 260, 8},    {"output_norm.weight", 32, 0, 0},   {"blk.0.attn_norm.weight", 32, 0, 0},
    {"blk.0.attn_q.weight", 32, 32, 1},   {"blk.0.attn_k.weight", 32, 16, 1}, {"blk.0.attn_v.weight", 32, 16, 8},
    {"blk.0.attn_output.weight", 32, 32, 0}, {"blk.0.ffn_norm.weight", 32, 0, 0}, {"blk.0.ffn_gate.weight", 32, 64, 8},
    {"blk.0.ffn_up.weight", 32, 64, 1},   {"blk.0.ffn_down.weight", 64, 32, 8},
};

static int data_of(void *user, int i, FILE *f, Err *e) {
    Blob *b = user;
    (void)e;
    const T *t = &tensors[i];
    const GgmlType *ty = ggml_type(t->type);
    uint64_t n = (uint64_t)t->ne0 * (uint64_t)(t->ne1 ? t->ne1 : 1);
    uint64_t bytes = n / (uint64_t)ty->block * (uint64_t)ty->block_bytes;
    for (uint64_t k = 0; k < bytes; k++) {
        // keep every float finite: f32 and f16 bytes whose high bits stay low, Q8_0 scales too
        unsigned char c = (unsigned char)(rng_next(&b->r) & 0xff);
        if (t->type == 0 && k % 4 == 3) c = 0x3c;
        if (t->type == 1 && k % 2 == 1) c = 0x2c;
        if (t->type == 8 && k % 34 == 1) c = 0x24;
        fputc(c, f);
    }
    return 0;
}

static int build(const char *path) {
    GgufW *w = gguf_w_new();
    gguf_w_str(w, "general.architecture", "llama", 5);
    gguf_w_str(w, "general.name", "fuzz", 4);
    gguf_w_u32(w, "llama.block_count", 1);
    gguf_w_u32(w, "llama.context_length", 64);
    gguf_w_u32(w, "llama.embedding_length", 32);
    gguf_w_u32(w, "llama.feed_forward_length", 64);
    gguf_w_u32(w, "llama.attention.head_count", 4);
    gguf_w_u32(w, "llama.attention.head_count_kv", 2);
    gguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_w_f32(w, "llama.rope.freq_base", 10000.0f);
    gguf_w_u32(w, "llama.rope.dimension_count", 8);
    gguf_w_str(w, "tokenizer.ggml.model", "gpt2", 4);
    gguf_w_str(w, "tokenizer.ggml.pre", "gpt-2", 5);
    const char *tok[260];
    size_t len[260];
    int32_t types[260];
    char chars[256][5];
    for (int b = 0; b < 256; b++) {
        int n = tok_gpt2_byte_char((unsigned char)b, chars[b]);
        chars[b][n] = 0;
        tok[b] = chars[b];
        len[b] = (size_t)n;
        types[b] = 1;
    }
    static const char *const extra[] = {"\xc4\xa0t", "he", "\xc4\xa0the", "<|endoftext|>"};
    for (int i = 0; i < 4; i++) tok[256 + i] = extra[i], len[256 + i] = strlen(extra[i]), types[256 + i] = i == 3 ? 3 : 1;
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", 260, tok, len);
    gguf_w_arr_i32(w, "tokenizer.ggml.token_type", 260, types);
    size_t ml[3];
    for (int i = 0; i < 3; i++) ml[i] = strlen(merges[i]);
    gguf_w_arr_str(w, "tokenizer.ggml.merges", 3, merges, ml);
    gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 259);
    gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 259);
    gguf_w_bool(w, "tokenizer.ggml.add_bos_token", false);
    gguf_w_str(w, "tokenizer.chat_template", "{{ x }}", 7);
    for (size_t i = 0; i < sizeof tensors / sizeof *tensors; i++) {
        int64_t ne[2] = {tensors[i].ne0, tensors[i].ne1};
        gguf_w_tensor(w, tensors[i].name, tensors[i].ne1 ? 2 : 1, ne, tensors[i].type);
    }
    Blob b;
    rng_seed(&b.r, 7);
    Err e = {0};
    int rc = gguf_w_write(w, path, data_of, &b, &e);
    if (rc) fprintf(stderr, "writing the pristine file: %s\n", e.msg);
    gguf_w_free(w);
    return rc;
}

// Read everything an accepted file offers through the typed getters.
static void walk(const Gguf *g) {
    Err e = {0};
    for (int i = 0; i < gguf_n_kv(g); i++) {
        const char *k = gguf_key(g, i), *s;
        size_t l;
        long long v;
        double d;
        bool b;
        GgufArr a;
        gguf_get_str(g, k, &s, &l, &e);
        gguf_get_int(g, k, -(1LL << 62), 1LL << 62, &v, &e);
        gguf_get_float(g, k, &d, &e);
        gguf_get_bool(g, k, &b, &e);
        if (gguf_get_arr(g, k, GGUF_TYPE_COUNT, &a, &e) == 1)
            for (uint64_t j = 0; j < a.n && j < 4096; j++) {
                volatile unsigned char sink = 0;
                if (a.type == GGUF_STR) {
                    const char *p = gguf_arr_str(&a, j, &l);
                    if (l) sink ^= (unsigned char)p[0], sink ^= (unsigned char)p[l - 1];
                } else {
                    sink ^= (unsigned char)gguf_arr_int(&a, j);
                    d = gguf_arr_float(&a, j);
                }
                (void)sink;
            }
    }
    for (int i = 0; i < gguf_n_tensors(g); i++) {
        const GgufTensor *t = gguf_tensor(g, i);
        const unsigned char *p = t->data;
        volatile unsigned char sink = 0;
        if (t->nbytes) sink ^= p[0], sink ^= p[t->nbytes - 1];
        (void)sink;
    }
}

static void mutate(unsigned char *p, size_t *n, size_t hdr_end, Rng *r) {
    size_t span = hdr_end < *n ? hdr_end : *n;
    if (!span) return;
    size_t at = (size_t)(rng_next(r) % span);
    switch ((int)(rng_next(r) % 7)) {
    case 0: p[at] ^= (unsigned char)(1u << (rng_next(r) % 8)); break; // bit flip
    case 1: p[at] = (unsigned char)rng_next(r); break;               // byte
    case 2: *n = (size_t)(rng_next(r) % (*n + 1)); break;            // truncation
    case 3: { // a length or count: a big, a small or an off-by-some value
        static const uint64_t vals[] = {0, 1, 2, 7, 255, 65536, 1ull << 32, 1ull << 40, UINT64_MAX, UINT64_MAX - 7};
        uint64_t v = vals[rng_next(r) % 10];
        if (at + 8 <= span)
            for (int i = 0; i < 8; i++) p[at + (size_t)i] = (unsigned char)(v >> (8 * i));
        break;
    }
    case 4: { // a small integer somewhere (types, dims, versions)
        uint32_t v = (uint32_t)(rng_next(r) % 40);
        if (at + 4 <= span)
            for (int i = 0; i < 4; i++) p[at + (size_t)i] = (unsigned char)(v >> (8 * i));
        break;
    }
    case 5: p[4 + rng_next(r) % 20] = (unsigned char)rng_next(r); break; // version and counts
    default: p[at] = 0; break;
    }
}

int main(void) {
    char path[CHECK_TMP_LEN];
    check_tmpl(path, sizeof path, "qkv-fuzz-gguf");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK_INT(build(path), 0);
    Buf file = {0};
    Err e = {0};
    CHECK_INT(fs_read_file(path, 1 << 24, &file, &e), 0);
    // the pristine file opens, as a model too
    Gguf *ok = gguf_open_mem(file.data, file.len, "pristine", &e);
    CHECK(ok != NULL);
    size_t hdr = file.len;
    if (ok) {
        const GgufTensor *t0 = gguf_tensor(ok, 0);
        hdr = (size_t)((const char *)t0->data - file.data); // the data starts after the header
        Tokenizer *t = tok_from_gguf(ok, &e);
        CHECK(t != NULL);
        tok_free(t);
        gguf_close(ok);
    }
    Model *m = model_open(path, NULL, &e);
    if (!m) fprintf(stderr, "pristine model: %s\n", e.msg);
    CHECK(m != NULL);
    model_free(m);

    int iters = getenv("QKV_FUZZ_ITERS") ? atoi(getenv("QKV_FUZZ_ITERS")) : 20000;
    Rng r;
    rng_seed(&r, 2025);
    int accepted = 0, rejected = 0, models = 0;
    unsigned char *p = malloc(file.len);
    char mpath[CHECK_PATH_LEN];
    snprintf(mpath, sizeof mpath, "%s.gguf", path);
    for (int it = 0; it < iters; it++) {
        memcpy(p, file.data, file.len);
        size_t n = file.len;
        int rounds = 1 + (int)(rng_next(&r) % 3);
        for (int k = 0; k < rounds; k++) mutate(p, &n, hdr, &r);
        unsigned char *f = malloc(n ? n : 1); // exact size: ASan sees any read past the end
        memcpy(f, p, n);
        Err fe = {0};
        Gguf *g = gguf_open_mem(f, n, "mutant", &fe);
        if (g) {
            accepted++;
            for (int i = 0; i < gguf_n_tensors(g); i++) {
                const GgufTensor *t = gguf_tensor(g, i);
                const unsigned char *d = t->data;
                CHECK(d >= f && d + t->nbytes <= f + n);
            }
            walk(g);
            Tokenizer *t = tok_from_gguf(g, &fe);
            if (t) {
                IntVec ids = {0};
                tok_encode(t, "the cat <|endoftext|> sat", 25, TOK_PARSE_SPECIAL | TOK_ADD_SPECIAL, &ids, &fe);
                iv_free(&ids);
                tok_free(t);
            }
            ModelConfig c;
            config_read_gguf(family_find_gguf("llama"), g, &c, &fe);
            gguf_close(g);
            if (it % 10 == 0 && !fs_write_atomic(mpath, f, n, &fe)) { // the whole loader, now and then
                Model *mm = model_open(mpath, NULL, &fe);
                if (mm) {
                    models++;
                    model_free(mm);
                } else if (!fe.msg[0]) {
                    fprintf(stderr, "iteration %d: model refused without a message\n", it);
                    check_failures++;
                }
            }
        } else {
            rejected++;
            if (!fe.msg[0]) {
                fprintf(stderr, "iteration %d: rejected without a message\n", it);
                check_failures++;
            }
        }
        free(f);
    }
    fprintf(stderr, "%d mutants: %d accepted (%d opened as models), %d rejected\n", iters, accepted, models, rejected);
    CHECK(rejected > iters / 10);
    CHECK(accepted > iters / 20);
    free(p);
    buf_free(&file);
    unlink(path);
    unlink(mpath);
    return CHECK_DONE();
}
