// newmodel.c - random-weight GPT-2 checkpoints in the real HF layout.
#include "model/newmodel.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/sample.h"
#include "tok/tokenizer.h"
#include "base/utf8.h"
#include "base/fs.h"
#include "base/mem.h"

NewModelParams newmodel_defaults(void) {
    return (NewModelParams){.n_layer = 2, .n_head = 2, .n_embd = 64, .n_ctx = 128, .n_vocab = 0, .seed = 1,
                            .std = 0.02f, .dtype = DT_F32, .tied = true, .masks = true, .prefix = "", .shards = 1};
}

typedef enum { INIT_NORMAL, INIT_GAIN, INIT_MASK, INIT_MASKED_BIAS } Init;

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[4];
    bool is_bool; // stored as BOOL (mask buffers), else p->dtype or F32 for masked_bias
    bool f32;
    Init init;
    uint64_t offset, nbytes; // within its shard's data
    int shard;
} Spec;

typedef struct {
    Spec *s;
    int n, cap;
} Specs;

static void spec_add(Specs *S, const NewModelParams *p, bool prefixed, const char *name, int nd, int64_t a,
                     int64_t b, int64_t c, int64_t d, Init init) {
    if (S->n == S->cap) {
        S->cap = S->cap ? S->cap * 2 : 64;
        S->s = xrealloc(S->s, sizeof *S->s * (size_t)S->cap);
    }
    Spec *sp = &S->s[S->n++];
    memset(sp, 0, sizeof *sp);
    snprintf(sp->name, sizeof sp->name, "%s%s", prefixed ? p->prefix : "", name);
    sp->ndim = nd;
    int64_t sh[4] = {a, b, c, d};
    int64_t count = 1;
    for (int i = 0; i < nd; i++) sp->shape[i] = sh[i], count *= sh[i];
    sp->init = init;
    sp->is_bool = init == INIT_MASK;
    sp->f32 = init == INIT_MASKED_BIAS;
    sp->nbytes = sp->is_bool ? (uint64_t)count : sp->f32 ? (uint64_t)count * 4 : dtype_bytes(p->dtype, count);
}

static void build_specs(const NewModelParams *p, Specs *S) {
    int64_t d = p->n_embd, V = p->n_vocab, T = p->n_ctx, ff = 4 * d;
    spec_add(S, p, true, "wte.weight", 2, V, d, 0, 0, INIT_NORMAL);
    spec_add(S, p, true, "wpe.weight", 2, T, d, 0, 0, INIT_NORMAL);
    for (int i = 0; i < p->n_layer; i++) {
        char n[64];
#define L(s) (snprintf(n, sizeof n, "h.%d.%s", i, s), n)
        spec_add(S, p, true, L("ln_1.weight"), 1, d, 0, 0, 0, INIT_GAIN);
        spec_add(S, p, true, L("ln_1.bias"), 1, d, 0, 0, 0, INIT_NORMAL);
        if (p->masks) {
            spec_add(S, p, true, L("attn.bias"), 4, 1, 1, T, T, INIT_MASK);
            spec_add(S, p, true, L("attn.masked_bias"), 0, 0, 0, 0, 0, INIT_MASKED_BIAS);
        }
        spec_add(S, p, true, L("attn.c_attn.weight"), 2, d, 3 * d, 0, 0, INIT_NORMAL);
        spec_add(S, p, true, L("attn.c_attn.bias"), 1, 3 * d, 0, 0, 0, INIT_NORMAL);
        spec_add(S, p, true, L("attn.c_proj.weight"), 2, d, d, 0, 0, INIT_NORMAL);
        spec_add(S, p, true, L("attn.c_proj.bias"), 1, d, 0, 0, 0, INIT_NORMAL);
        spec_add(S, p, true, L("ln_2.weight"), 1, d, 0, 0, 0, INIT_GAIN);
        spec_add(S, p, true, L("ln_2.bias"), 1, d, 0, 0, 0, INIT_NORMAL);
        spec_add(S, p, true, L("mlp.c_fc.weight"), 2, d, ff, 0, 0, INIT_NORMAL);
        spec_add(S, p, true, L("mlp.c_fc.bias"), 1, ff, 0, 0, 0, INIT_NORMAL);
        spec_add(S, p, true, L("mlp.c_proj.weight"), 2, ff, d, 0, 0, INIT_NORMAL);
        spec_add(S, p, true, L("mlp.c_proj.bias"), 1, d, 0, 0, 0, INIT_NORMAL);
#undef L
    }
    spec_add(S, p, true, "ln_f.weight", 1, d, 0, 0, 0, INIT_GAIN);
    spec_add(S, p, true, "ln_f.bias", 1, d, 0, 0, 0, INIT_NORMAL);
    if (!p->tied) spec_add(S, p, false, "lm_head.weight", 2, V, d, 0, 0, INIT_NORMAL);
}

// Assign shards (by cumulative size) and data offsets: within a shard, BOOL buffers go
// last so that every float tensor stays aligned.
static void layout(Specs *S, int shards) {
    uint64_t total = 0;
    for (int i = 0; i < S->n; i++) total += S->s[i].nbytes;
    uint64_t per = total / (uint64_t)shards + 1, acc = 0;
    for (int i = 0; i < S->n; i++) {
        int sh = (int)(acc / per);
        S->s[i].shard = sh < shards ? sh : shards - 1;
        acc += S->s[i].nbytes;
    }
    for (int sh = 0; sh < shards; sh++) {
        uint64_t off = 0;
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < S->n; i++) {
                Spec *sp = &S->s[i];
                if (sp->shard != sh || sp->is_bool != (pass == 1)) continue;
                sp->offset = off;
                off += sp->nbytes;
            }
    }
}

static const char *dtype_str(const NewModelParams *p, const Spec *sp) {
    return sp->is_bool ? "BOOL" : sp->f32 ? "F32" : dtype_name(p->dtype);
}

static void header(const NewModelParams *p, const Specs *S, int shard, Buf *h) {
    JsonW w;
    jw_init(&w, h);
    jw_obj(&w);
    jw_key(&w, "__metadata__");
    jw_obj(&w);
    jw_kstr(&w, "format", "pt");
    jw_kstr(&w, "qkv", "new-model");
    jw_obj_end(&w);
    for (int i = 0; i < S->n; i++) {
        const Spec *sp = &S->s[i];
        if (sp->shard != shard) continue;
        jw_key(&w, sp->name);
        jw_obj(&w);
        jw_kstr(&w, "dtype", dtype_str(p, sp));
        jw_key(&w, "shape");
        jw_arr(&w);
        for (int k = 0; k < sp->ndim; k++) jw_int(&w, sp->shape[k]);
        jw_arr_end(&w);
        jw_key(&w, "data_offsets");
        jw_arr(&w);
        jw_int(&w, (long long)sp->offset);
        jw_int(&w, (long long)(sp->offset + sp->nbytes));
        jw_arr_end(&w);
        jw_obj_end(&w);
    }
    jw_obj_end(&w);
    while (h->len % 8) buf_putc(h, ' ');
}

// The data of one tensor, generated in chunks and handed to put().
typedef int (*PutFn)(void *sink, const void *p, size_t n);

static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static float gauss(Rng *r) {
    float u1 = rng_uniform(r), u2 = rng_uniform(r);
    if (u1 < 1e-7f) u1 = 1e-7f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

static int emit_tensor(const NewModelParams *p, const Spec *sp, PutFn put, void *sink) {
    enum { CH = 4096 };
    unsigned char buf[CH * 4];
    int64_t count = 1;
    for (int i = 0; i < sp->ndim; i++) count *= sp->shape[i];
    if (sp->init == INIT_MASKED_BIAS) {
        float v = -1e4f;
        return put(sink, &v, 4);
    }
    if (sp->init == INIT_MASK) { // lower-triangular ones, [1, 1, T, T]
        int64_t T = sp->shape[2];
        for (int64_t i = 0; i < T; i++)
            for (int64_t j0 = 0; j0 < T; j0 += CH) {
                int64_t n = T - j0 < CH ? T - j0 : CH;
                for (int64_t j = 0; j < n; j++) buf[j] = j0 + j <= i;
                if (put(sink, buf, (size_t)n)) return -1;
            }
        return 0;
    }
    // The stream depends on the seed and the name only (not on prefix, shard or dtype).
    const char *bare = sp->name;
    if (p->prefix && *p->prefix && !strncmp(bare, p->prefix, strlen(p->prefix))) bare += strlen(p->prefix);
    Rng r;
    rng_seed(&r, p->seed ^ name_hash(bare));
    for (int64_t i0 = 0; i0 < count; i0 += CH) {
        int64_t n = count - i0 < CH ? count - i0 : CH;
        size_t nb = 0;
        for (int64_t i = 0; i < n; i++) {
            float v = p->std * gauss(&r) + (sp->init == INIT_GAIN ? 1.0f : 0.0f);
            if (p->dtype == DT_F32) {
                memcpy(buf + nb, &v, 4), nb += 4;
            } else {
                uint16_t h = p->dtype == DT_F16 ? f32_to_f16(v) : f32_to_bf16(v);
                memcpy(buf + nb, &h, 2), nb += 2;
            }
        }
        if (put(sink, buf, nb)) return -1;
    }
    return 0;
}

static int emit_shard(const NewModelParams *p, const Specs *S, int shard, PutFn put, void *sink) {
    Buf h = {0};
    header(p, S, shard, &h);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    int rc = put(sink, len8, 8) || put(sink, h.data, h.len);
    buf_free(&h);
    for (int pass = 0; pass < 2 && !rc; pass++) {
        // emit in offset order: floats first, then BOOL buffers (see layout)
        for (int i = 0; i < S->n && !rc; i++) {
            const Spec *sp = &S->s[i];
            if (sp->shard == shard && sp->is_bool == (pass == 1)) rc = emit_tensor(p, sp, put, sink);
        }
    }
    return rc;
}

static int put_buf(void *sink, const void *p, size_t n) {
    buf_put(sink, p, n);
    return 0;
}

static int put_file(void *sink, const void *p, size_t n) { return fwrite(p, 1, n, sink) == n ? 0 : -1; }

static int check_params(const NewModelParams *p, Err *e) {
    if (p->n_layer < 1 || p->n_layer > 200) return err_set(e, "layers must be in [1, 200]");
    if (p->n_head < 1 || p->n_embd < 1 || p->n_embd > 16384 || p->n_embd % p->n_head)
        return err_set(e, "d (%d) must be a positive multiple of heads (%d), at most 16384", p->n_embd, p->n_head);
    if (p->n_ctx < 1 || p->n_ctx > 65536) return err_set(e, "ctx must be in [1, 65536]");
    if (p->n_vocab < 1 || p->n_vocab > (1 << 22)) return err_set(e, "vocab must be in [1, 4194304]");
    if (p->dtype != DT_F32 && p->dtype != DT_F16 && p->dtype != DT_BF16)
        return err_set(e, "dtype must be f32, f16 or bf16");
    if (p->shards < 1 || p->shards > 64) return err_set(e, "shards must be in [1, 64]");
    if (!(p->std >= 0 && p->std < 100)) return err_set(e, "std must be in [0, 100)");
    return 0;
}

static void config_json(const NewModelParams *p, Buf *out) {
    JsonW w;
    jw_init(&w, out);
    jw_obj(&w);
    jw_key(&w, "architectures");
    jw_arr(&w);
    jw_str(&w, "GPT2LMHeadModel");
    jw_arr_end(&w);
    jw_kstr(&w, "model_type", "gpt2");
    jw_kint(&w, "n_layer", p->n_layer);
    jw_kint(&w, "n_head", p->n_head);
    jw_kint(&w, "n_embd", p->n_embd);
    jw_kint(&w, "n_positions", p->n_ctx);
    jw_kint(&w, "n_ctx", p->n_ctx);
    jw_kint(&w, "vocab_size", p->n_vocab);
    jw_knum(&w, "layer_norm_epsilon", 1e-5);
    jw_kstr(&w, "activation_function", "gelu_new");
    jw_kint(&w, "bos_token_id", p->n_vocab - 1);
    jw_kint(&w, "eos_token_id", p->n_vocab - 1);
    jw_kbool(&w, "tie_word_embeddings", p->tied);
    jw_kstr(&w, "torch_dtype", p->dtype == DT_F32 ? "float32" : p->dtype == DT_F16 ? "float16" : "bfloat16");
    jw_kbool(&w, "qkv_untrained", true);
    jw_kint(&w, "qkv_seed", (long long)p->seed);
    jw_knum(&w, "qkv_std", p->std);
    jw_obj_end(&w);
    buf_putc(out, '\n');
}

int newmodel_gpt2_build(const NewModelParams *p, Buf *config, Buf *safetensors, Err *e) {
    if (check_params(p, e)) return -1;
    NewModelParams q = *p;
    q.shards = 1;
    Specs S = {0};
    build_specs(&q, &S);
    layout(&S, 1);
    config_json(&q, config);
    emit_shard(&q, &S, 0, put_buf, safetensors);
    free(S.s);
    return 0;
}

// --- writing a directory --------------------------------------------------------------

// Write a file of dir atomically with a producer callback.
static int write_file(const char *dir, const char *name, int (*produce)(FILE *, void *), void *arg, Err *e) {
    char *path = fs_join(dir, name);
    AtomicFile af;
    int rc = af_open(&af, path, e);
    if (!rc && produce(af.f, arg)) {
        rc = err_set(e, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
        af_abort(&af);
    } else if (!rc) {
        rc = af_commit(&af, e);
    }
    free(path);
    return rc;
}

static int produce_buf(FILE *f, void *arg) {
    const Buf *b = arg;
    return fwrite(b->data, 1, b->len, f) == b->len ? 0 : -1;
}

typedef struct {
    const NewModelParams *p;
    const Specs *S;
    int shard;
} ShardArg;

static int produce_shard(FILE *f, void *arg) {
    ShardArg *a = arg;
    return emit_shard(a->p, a->S, a->shard, put_file, f);
}

static int copy_file(const char *from, const char *dir, const char *name, Err *e) {
    FILE *in = fopen(from, "rb");
    if (!in) return err_set(e, "cannot open '%s': %s", from, strerror(errno));
    Buf b = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, in)) > 0) buf_put(&b, chunk, got);
    fclose(in);
    int rc = write_file(dir, name, produce_buf, &b, e);
    buf_free(&b);
    return rc;
}

static bool exists(const char *dir, const char *name) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, R_OK) == 0;
}

// Byte-level vocabulary: ids 0..255 in GPT-2's order (bytes that stand for themselves
// first, then the rest), then <|endoftext|>.
static void byte_vocab(Buf *vocab) {
    JsonW w;
    jw_init(&w, vocab);
    jw_obj(&w);
    int id = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++) {
            char ch[5] = {0}, self[5] = {0};
            int n = tok_gpt2_byte_char((unsigned char)b, ch);
            utf8_encode((uint32_t)b, self);
            bool is_self = (int)strlen(self) == n && !memcmp(ch, self, (size_t)n) && b != 0;
            if (is_self != (pass == 0)) continue;
            jw_key(&w, ch);
            jw_int(&w, id++);
        }
    jw_kint(&w, "<|endoftext|>", id);
    jw_obj_end(&w);
}

int newmodel_gpt2_write(const char *dir, const NewModelParams *p0, const char *tok_dir, Err *e) {
    NewModelParams p = *p0;
    if (fs_mkdir_p(dir, 0755, e)) return -1;
    // tokenizer first: it fixes the vocabulary size
    if (tok_dir) {
        const char *v = exists(tok_dir, "vocab.json") ? "vocab.json" : exists(tok_dir, "encoder.json") ? "encoder.json" : NULL;
        const char *m = exists(tok_dir, "merges.txt") ? "merges.txt" : exists(tok_dir, "vocab.bpe") ? "vocab.bpe" : NULL;
        if (!v || !m) return err_set(e, "'%s': no vocab.json + merges.txt (or encoder.json + vocab.bpe)", tok_dir);
        char from[4096];
        snprintf(from, sizeof from, "%s/%s", tok_dir, v);
        if (copy_file(from, dir, "vocab.json", e)) return -1;
        snprintf(from, sizeof from, "%s/%s", tok_dir, m);
        if (copy_file(from, dir, "merges.txt", e)) return -1;
    } else {
        Buf vocab = {0}, merges = {0};
        byte_vocab(&vocab);
        buf_puts(&merges, "#version: 0.2\n");
        int rc = write_file(dir, "vocab.json", produce_buf, &vocab, e) ||
                 write_file(dir, "merges.txt", produce_buf, &merges, e);
        buf_free(&vocab);
        buf_free(&merges);
        if (rc) return -1;
    }
    Tokenizer *tok = tok_load(dir, e);
    if (!tok) return err_prefix(e, "tokenizer written to '%s'", dir);
    int tv = tok_vocab_size(tok);
    tok_free(tok);
    if (p.n_vocab == 0) p.n_vocab = tv;
    if (p.n_vocab < tv) return err_set(e, "vocab %d is smaller than the tokenizer's %d tokens", p.n_vocab, tv);
    if (check_params(&p, e)) return -1;

    Buf cfg = {0};
    config_json(&p, &cfg);
    int rc = write_file(dir, "config.json", produce_buf, &cfg, e);
    buf_free(&cfg);
    if (rc) return -1;

    Specs S = {0};
    build_specs(&p, &S);
    layout(&S, p.shards);
    char name[64];
    for (int sh = 0; sh < p.shards && !rc; sh++) {
        ShardArg a = {&p, &S, sh};
        if (p.shards == 1) snprintf(name, sizeof name, "model.safetensors");
        else snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", sh + 1, p.shards);
        rc = write_file(dir, name, produce_shard, &a, e);
    }
    if (!rc && p.shards > 1) {
        Buf idx = {0};
        JsonW w;
        jw_init(&w, &idx);
        jw_obj(&w);
        jw_key(&w, "metadata");
        jw_obj(&w);
        uint64_t total = 0;
        for (int i = 0; i < S.n; i++) total += S.s[i].nbytes;
        jw_kint(&w, "total_size", (long long)total);
        jw_obj_end(&w);
        jw_key(&w, "weight_map");
        jw_obj(&w);
        for (int i = 0; i < S.n; i++) {
            snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", S.s[i].shard + 1, p.shards);
            jw_kstr(&w, S.s[i].name, name);
        }
        jw_obj_end(&w);
        jw_obj_end(&w);
        rc = write_file(dir, "model.safetensors.index.json", produce_buf, &idx, e);
        buf_free(&idx);
    } else if (!rc) {
        char p2[4096];
        snprintf(p2, sizeof p2, "%s/model.safetensors.index.json", dir); // a stale index would win
        unlink(p2);
    }
    free(S.s);
    return rc;
}
