// newmodel.c - random-weight GPT-2 checkpoints in the real HF layout.
#include "model/newmodel.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "eval/sample.h"
#include "tok/tokenizer.h"
#include "base/utf8.h"
#include "base/fs.h"
#include "base/mem.h"

NewModelParams newmodel_defaults(void) {
    return (NewModelParams){.family = "gpt2", .n_layer = 2, .n_head = 2, .n_embd = 64, .n_ctx = 128, .n_vocab = 0,
                            .seed = 1, .std = 0.02f, .dtype = DT_F32, .tied = true, .masks = true, .prefix = "",
                            .shards = 1, .bos_id = -1, .eos_id = -1};
}

typedef enum { INIT_NORMAL, INIT_GAIN, INIT_MASK, INIT_MASKED_BIAS } Init;

typedef struct {
    char name[160];
    int ndim;
    int64_t shape[4];
    bool is_bool; // stored as BOOL (mask buffers), else p->dtype or F32 for masked_bias
    bool f32;
    Init init;
    WeightId w; // the logical weight (INIT_NORMAL, INIT_GAIN)
    int layer;
    uint64_t offset, nbytes; // within its shard's data
    int shard;
} Spec;

typedef struct {
    Spec *s;
    int n, cap;
    const NewModelParams *p;
    const ModelConfig *c;
    const TensorMap *map;
} Specs;

static void spec_add(Specs *S, const char *name, int nd, int64_t a, int64_t b, int64_t c, int64_t d, Init init) {
    if (S->n == S->cap) {
        S->cap = S->cap ? S->cap * 2 : 64;
        S->s = xrealloc(S->s, sizeof *S->s * (size_t)S->cap);
    }
    Spec *sp = &S->s[S->n++];
    memset(sp, 0, sizeof *sp);
    snprintf(sp->name, sizeof sp->name, "%s", name);
    sp->ndim = nd;
    int64_t sh[4] = {a, b, c, d};
    int64_t count = 1;
    for (int i = 0; i < nd; i++) sp->shape[i] = sh[i], count *= sh[i];
    sp->init = init;
    sp->is_bool = init == INIT_MASK;
    sp->f32 = init == INIT_MASKED_BIAS;
    sp->nbytes = sp->is_bool ? (uint64_t)count : sp->f32 ? (uint64_t)count * 4 : dtype_bytes(S->p->dtype, count);
}

// The name a weight gets in the family's layout, under the chosen prefix (names that start
// with '/' sit outside it).
static void weight_file_name(const Specs *S, WeightId w, int layer, char *out, size_t n) {
    const char *fmt = S->map->names[w];
    bool top = *fmt == '/';
    char base[160];
    snprintf(base, sizeof base, fmt + top, layer);
    snprintf(out, n, "%s%s", top ? "" : S->p->prefix, base);
}

static int plan_spec(void *user, const WeightSlot *s) {
    Specs *S = user;
    if (!s->required) return 0; // optional copies (an untied head is required when !tied)
    if (!S->map->names[s->w]) return -1;
    char name[160];
    weight_file_name(S, s->w, s->layer, name, sizeof name);
    int64_t d = S->c->n_embd;
    switch (s->kind) {
    case WK_EMBED: spec_add(S, name, 2, s->rows, d, 0, 0, INIT_NORMAL); break;
    case WK_LINEAR:
        if (S->map->in_out) spec_add(S, name, 2, s->in, s->out, 0, 0, INIT_NORMAL);
        else spec_add(S, name, 2, s->out, s->in, 0, 0, INIT_NORMAL);
        break;
    case WK_VEC: spec_add(S, name, 1, s->rows, 0, 0, 0, s->gain ? INIT_GAIN : INIT_NORMAL); break;
    }
    S->s[S->n - 1].w = s->w;
    S->s[S->n - 1].layer = s->layer;
    // the mask buffers older files carry, after each layer's first norm
    if (S->p->masks && S->map->mask_buffer && s->w == W_ATTN_NORM + (S->c->a.norm == NORM_LAYER)) {
        int64_t T = S->c->n_ctx;
        snprintf(name, sizeof name, "%s", S->p->prefix);
        size_t k = strlen(name);
        snprintf(name + k, sizeof name - k, S->map->mask_buffer, s->layer);
        spec_add(S, name, 4, 1, 1, T, T, INIT_MASK);
        snprintf(name + k, sizeof name - k, S->map->masked_bias, s->layer);
        spec_add(S, name, 0, 0, 0, 0, 0, INIT_MASKED_BIAS);
    }
    return 0;
}

// The family and the configuration the parameters describe.
static int params_config(const NewModelParams *p, ModelConfig *c, const Family **fam, Err *e) {
    const Family *f = family_find(p->family ? p->family : "gpt2");
    if (!f || !f->write_config) return err_set(e, "new-model: unknown family '%.20s'", p->family ? p->family : "");
    config_init(c, f);
    if (p->n_kv_head && p->n_kv_head != p->n_head && !c->a.gqa && !p->config)
        return err_set(e, "kv_heads=%d: %s has a key/value head for each query head (no grouped-query attention): "
                       "give kv_heads=%d (heads) or none", p->n_kv_head, f->model_type, p->n_head);
    if (p->config) {
        *c = *p->config;
        *fam = f;
        return config_check(c, "new-model", e);
    }
    c->n_layer = p->n_layer;
    c->n_head = p->n_head;
    c->n_kv_head = p->n_kv_head ? p->n_kv_head : p->n_head;
    c->n_embd = p->n_embd;
    c->head_dim = p->n_head > 0 ? p->n_embd / p->n_head : 0;
    c->n_ff = p->n_ff ? p->n_ff : 4 * p->n_embd;
    c->n_ctx = p->n_ctx;
    c->n_vocab = p->n_vocab;
    c->n_types = c->a.token_types ? 2 : 0;
    c->a.tied = p->tied;
    if (p->rope_theta > 0) c->a.rope_theta = p->rope_theta;
    bool prefix_ok = false;
    for (int i = 0; f->hf->prefixes[i]; i++) prefix_ok |= !strcmp(f->hf->prefixes[i], p->prefix ? p->prefix : "");
    if (!prefix_ok) return err_set(e, "prefix=%.20s: not a prefix %s files use", p->prefix, f->model_type);
    *fam = f;
    return config_check(c, "new-model", e);
}

static int build_specs(const NewModelParams *p, const ModelConfig *c, const Family *f, Specs *S, Err *e) {
    *S = (Specs){.p = p, .c = c, .map = f->hf};
    if (arch_plan(c, plan_spec, S)) {
        free(S->s);
        return err_set(e, "new-model: the %s layout has no name for a weight its blocks need", f->model_type);
    }
    if (p->score) { // the classifier's head, outside the base model's prefix (its bias: zero)
        spec_add(S, f->hf->cls_weight ? f->hf->cls_weight : "score.weight", 2, 1, c->n_embd, 0, 0, INIT_NORMAL);
        S->s[S->n - 1].w = W_COUNT;
        S->s[S->n - 1].layer = -1;
        if (f->hf->cls_bias) {
            spec_add(S, f->hf->cls_bias, 1, 1, 0, 0, 0, INIT_NORMAL);
            S->s[S->n - 1].w = W_COUNT;
            S->s[S->n - 1].layer = -2;
        }
    }
    return 0;
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

static const char *spec_dtype(const NewModelParams *p, const Spec *sp) {
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
        jw_kstr(&w, "dtype", spec_dtype(p, sp));
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
    static const float zero = 0;
    const float *given = sp->w == W_COUNT ? (sp->layer == -2 ? &zero : p->score)
                       : p->weights ? p->weights(p->weights_user, sp->w, sp->layer)
                                    : NULL;
    // The stream depends on the seed and the name only (not on prefix, shard or dtype).
    const char *bare = sp->name;
    if (p->prefix && *p->prefix && !strncmp(bare, p->prefix, strlen(p->prefix))) bare += strlen(p->prefix);
    Rng r;
    rng_seed(&r, p->seed ^ name_hash(bare));
    for (int64_t i0 = 0; i0 < count; i0 += CH) {
        int64_t n = count - i0 < CH ? count - i0 : CH;
        size_t nb = 0;
        for (int64_t i = 0; i < n; i++) {
            float v = given ? given[i0 + i] : p->std * gauss(&r) + (sp->init == INIT_GAIN ? 1.0f : 0.0f);
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
    Buf *b = sink;
    buf_put(b, p, n);
    return b->failed ? -1 : 0;
}

static int put_file(void *sink, const void *p, size_t n) { return fwrite(p, 1, n, sink) == n ? 0 : -1; }

static int check_params(const NewModelParams *p, Err *e) {
    if (p->n_layer < 1 || p->n_layer > 200) return err_set(e, "layers must be in [1, 200]");
    if (p->n_head < 1 || p->n_embd < 1 || p->n_embd > 16384 || p->n_embd % p->n_head)
        return err_set(e, "d (%d) must be a positive multiple of heads (%d), at most 16384", p->n_embd, p->n_head);
    if (p->n_kv_head < 0 || (p->n_kv_head && p->n_head % p->n_kv_head))
        return err_set(e, "kv_heads (%d) must divide heads (%d)", p->n_kv_head, p->n_head);
    if (p->n_ff < 0 || p->n_ff > 65536) return err_set(e, "ff must be in [1, 65536]");
    if (p->n_ctx < 1 || p->n_ctx > 65536) return err_set(e, "ctx must be in [1, 65536]");
    if (p->n_vocab < 1 || p->n_vocab > (1 << 22)) return err_set(e, "vocab must be in [1, 4194304]");
    if (p->dtype != DT_F32 && p->dtype != DT_F16 && p->dtype != DT_BF16)
        return err_set(e, "dtype must be f32, f16 or bf16");
    if (p->shards < 1 || p->shards > 64) return err_set(e, "shards must be in [1, 64]");
    if (!(p->std >= 0 && p->std < 100)) return err_set(e, "std must be in [0, 100)");
    return 0;
}

// A model's config turned into a one-label sequence classifier's: the first architecture after
// byte at (XLMHeadModel, XForCausalLM, XForMaskedLM, XModel) renamed
// XForSequenceClassification, num_labels 1.
static void seq_cls_config(Buf *out, size_t at, JsonW *w) {
    static const char *const suffixes[] = {"LMHeadModel\"", "ForCausalLM\"", "ForMaskedLM\"", "Model\"", NULL};
    for (int i = 0; suffixes[i]; i++) {
        char *hit = out->data ? strstr(out->data + at, suffixes[i]) : NULL;
        if (!hit) continue;
        Buf nb = {0};
        buf_put(&nb, out->data, (size_t)(hit - out->data));
        buf_puts(&nb, "ForSequenceClassification\"");
        buf_puts(&nb, hit + strlen(suffixes[i]));
        buf_free(out);
        *out = nb;
        break;
    }
    jw_kint(w, "num_labels", 1);
    jw_key(w, "id2label");
    jw_obj(w);
    jw_kstr(w, "0", "reward");
    jw_obj_end(w);
    jw_key(w, "label2id");
    jw_obj(w);
    jw_kint(w, "reward", 0);
    jw_obj_end(w);
}

static void config_json(const NewModelParams *p, const ModelConfig *c, const Family *f, Buf *out) {
    JsonW w;
    jw_init(&w, out);
    jw_obj(&w);
    size_t at = out->len;
    f->write_config(c, &w);
    if (c->a.causal) { // a decoder's generation ids (an encoder's [CLS]/[SEP] are not written as such)
        jw_key(&w, "bos_token_id");
        if (p->bos_id >= 0) jw_int(&w, p->bos_id);
        else jw_null(&w);
        jw_key(&w, "eos_token_id");
        if (p->eos_id >= 0) jw_int(&w, p->eos_id);
        else jw_null(&w);
    }
    if (p->score) seq_cls_config(out, at, &w);
    // transformers' sequence classifier reads a batch's rows at their last token other than
    // pad_token_id and refuses batches of more than one without it: the end of text pads, as
    // TRL's reward trainer sets it (the beginning of text when there is no end).
    int pad = p->eos_id >= 0 ? p->eos_id : p->bos_id;
    if (p->score && c->a.causal && pad >= 0) jw_kint(&w, "pad_token_id", pad);
    if (p->score && p->pooling) jw_kstr(&w, "qkv_pooling", p->pooling);
    jw_kstr(&w, "torch_dtype", p->dtype == DT_F32 ? "float32" : p->dtype == DT_F16 ? "float16" : "bfloat16");
    if (!p->weights) {
        jw_kbool(&w, "qkv_untrained", true);
        jw_kint(&w, "qkv_seed", (long long)p->seed);
        jw_knum(&w, "qkv_std", p->std);
    }
    jw_obj_end(&w);
    buf_putc(out, '\n');
}

// Checks p and prepares its configuration and tensor list.
static int prepare(const NewModelParams *p, ModelConfig *c, const Family **f, Specs *S, Err *e) {
    if (check_params(p, e) || params_config(p, c, f, e) || build_specs(p, c, *f, S, e)) return -1;
    layout(S, p->shards);
    return 0;
}

int newmodel_config(const NewModelParams *p, ModelConfig *c, Err *e) {
    const Family *f;
    return check_params(p, e) || params_config(p, c, &f, e) ? -1 : 0;
}

int newmodel_build(const NewModelParams *p, Buf *config, Buf *safetensors, Err *e) {
    NewModelParams q = *p;
    q.shards = 1;
    ModelConfig c;
    const Family *f;
    Specs S;
    if (prepare(&q, &c, &f, &S, e)) return -1;
    config_json(&q, &c, f, config);
    int rc = emit_shard(&q, &S, 0, put_buf, safetensors);
    free(S.s);
    if (rc) return err_set(e, "out of memory for the weights of the model (%zu bytes)", safetensors->failed);
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

// Copy the open file arg to f in chunks (a tokenizer file may be large: nothing is held whole).
static int produce_copy(FILE *f, void *arg) {
    FILE *in = arg;
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, in)) > 0)
        if (fwrite(chunk, 1, got, f) != got) return -1;
    return ferror(in) ? -1 : 0;
}

static int copy_file(const char *from, const char *dir, const char *name, Err *e) {
    FILE *in = fopen(from, "rb");
    if (!in) return err_set(e, "cannot open '%s': %s", from, strerror(errno));
    int rc = write_file(dir, name, produce_copy, in, e);
    fclose(in);
    return rc;
}

// The tokenizer files of every layout qkv reads (copied by tok=DIR when present).
static const char *const tok_files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "vocab.json", "merges.txt", "vocab.txt", "tokenizer.model",
                                        "tokenizer.gguf", NULL};

const char *const newmodel_files[] = {"config.json", "model.safetensors", "model.safetensors.index.json",
                                      "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                      "vocab.json", "merges.txt", "vocab.txt", "tokenizer.model", "tokenizer.gguf",
                                      NULL};

// The GPT-2 names encoder.json and vocab.bpe, copied as vocab.json and merges.txt.
static const char *const renames[][2] = {{"encoder.json", "vocab.json"}, {"vocab.bpe", "merges.txt"}};

// Copies the tokenizer files of tok_dir into dir (renames applied).
static int copy_tokenizer(const char *tok_dir, const char *dir, Err *e) {
    int copied = 0;
    for (int i = 0; tok_files[i]; i++) {
        char *from = fs_join(tok_dir, tok_files[i]);
        int rc = fs_is_file(from) ? copy_file(from, dir, tok_files[i], e) : 1;
        free(from);
        if (rc < 0) return -1;
        copied += rc == 0;
    }
    for (size_t i = 0; i < sizeof renames / sizeof *renames; i++) {
        char *from = fs_join(tok_dir, renames[i][0]);
        int rc = fs_is_file(from) ? copy_file(from, dir, renames[i][1], e) : 1;
        free(from);
        if (rc < 0) return -1;
        copied += rc == 0;
    }
    if (!copied)
        return err_set(e, "'%s': no tokenizer files (tokenizer.json, vocab.json + merges.txt, vocab.txt, tokenizer.gguf)",
                       tok_dir);
    return 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
    return h;
}

int newmodel_tokenizer_hash(const char *tok_dir, uint64_t *hash, Err *e) {
    *hash = 0;
    if (!tok_dir) return 0;
    uint64_t h = 14695981039346656037ull;
    size_t n_tok = sizeof tok_files / sizeof *tok_files - 1, n = n_tok + sizeof renames / sizeof *renames;
    for (size_t i = 0; i < n; i++) { // the files copy_tokenizer copies, in its order
        const char *name = i < n_tok ? tok_files[i] : renames[i - n_tok][0];
        char *path = fs_join(tok_dir, name);
        Buf b = {.fallible = true};
        int rc = fs_is_file(path) ? fs_read_file(path, (size_t)1 << 31, &b, e) : 1;
        if (!rc) h = fnv(fnv(h, name, strlen(name) + 1), b.data, b.len);
        buf_free(&b);
        free(path);
        if (rc < 0) return -1;
    }
    *hash = h;
    return 0;
}

bool newmodel_has_tokenizer(const char *dir) {
    static const char *const any[] = {"encoder.json", "vocab.bpe", NULL};
    for (int k = 0; k < 2; k++)
        for (int i = 0; (k ? any : tok_files)[i]; i++) {
            char *p = fs_join(dir, (k ? any : tok_files)[i]);
            bool there = fs_is_file(p);
            free(p);
            if (there) return true;
        }
    return false;
}

// transformers reads vocab.json + merges.txt only as GPT2Tokenizer, and AutoTokenizer takes the
// class from tokenizer_config.json, else from the model's type (a Llama's wants tokenizer.json or
// tokenizer.model: "Couldn't instantiate the backend tokenizer"). A directory with those files
// and no tokenizer.json gets a tokenizer_config.json naming GPT2Tokenizer, with <|endoftext|>
// its beginning, end and unknown token when tok (the directory's tokenizer) has it, as qkv reads
// it, and none else; one already there without a class gets the class.
static int gpt2_tokenizer_config(const char *dir, const Tokenizer *tok, Err *e) {
    static const char *const need[] = {"vocab.json", "merges.txt"};
    bool bpe = true;
    for (int i = 0; i < 2; i++) {
        char *p = fs_join(dir, need[i]);
        bpe &= fs_is_file(p);
        free(p);
    }
    char *tj = fs_join(dir, "tokenizer.json"), *path = fs_join(dir, "tokenizer_config.json");
    bpe &= !fs_present(tj);
    free(tj);
    Buf text = {0};
    Json *cfg = NULL;
    int rc = 0;
    if (!bpe) {
        // another tokenizer's files: theirs to name
    } else if (!fs_present(path)) {
        const char *eot = tok_find(tok, "<|endoftext|>", 13) >= 0 ? "\"<|endoftext|>\"" : "null";
        buf_printf(&text, "{\"tokenizer_class\": \"GPT2Tokenizer\", \"bos_token\": %s, \"eos_token\": %s, "
                          "\"unk_token\": %s, \"add_bos_token\": false, \"add_prefix_space\": false}\n", eot, eot, eot);
        rc = fs_write_atomic(path, text.data, text.len, e);
    } else if (!fs_read_file(path, (size_t)1 << 24, &text, e) && (cfg = json_parse(text.data, text.len, e)) &&
               cfg->type == JSON_OBJ && !json_get(cfg, "tokenizer_class")) {
        size_t at = (size_t)(strchr(text.data, '{') - text.data) + 1; // a parsed object has its brace
        Buf b = {0};
        buf_put(&b, text.data, at);
        buf_printf(&b, "\"tokenizer_class\": \"GPT2Tokenizer\"%s", cfg->len ? ", " : "");
        buf_put(&b, text.data + at, text.len - at);
        rc = fs_write_atomic(path, b.data, b.len, e);
        buf_free(&b);
    } else if (!cfg) {
        rc = -1;
    }
    json_free(cfg);
    buf_free(&text);
    free(path);
    return rc;
}

// The tokenizer written into dir (a copy of tok_dir's, or the family's own), its size and
// special ids into p.
static int put_tokenizer(const char *dir, const char *tok_dir, const Family *f, NewModelParams *p, Err *e) {
    if (tok_dir) { // tok= that holds no tokenizer is named as such (the error named the model's folder,
                   // "tokenizer written to ..."), before anything is copied
        Tokenizer *t = tok_load(tok_dir, e);
        if (!t) return err_prefix(e, "tok=%s", tok_dir);
        int nv = tok_vocab_size(t);
        tok_free(t);
        if (nv < 2) return err_set(e, "tok=%s: a vocabulary of %d token%s leaves nothing to predict", tok_dir, nv, nv == 1 ? "" : "s");
    }
    if (tok_dir ? copy_tokenizer(tok_dir, dir, e) : f->write_tokenizer(dir, e)) return -1;
    Tokenizer *tok = tok_load(dir, e);
    if (!tok) return err_prefix(e, "tokenizer written to '%s'", dir);
    if (gpt2_tokenizer_config(dir, tok, e)) {
        tok_free(tok);
        return -1;
    }
    int tv = tok_vocab_size(tok);
    p->bos_id = tok_bos(tok);
    p->eos_id = tok_eos(tok);
    tok_free(tok);
    if (p->n_vocab == 0) p->n_vocab = tv;
    if (p->n_vocab < tv) return err_set(e, "vocab %d is smaller than the tokenizer's %d tokens", p->n_vocab, tv);
    return 0;
}

int newmodel_params(const NewModelParams *p0, uint64_t *n, Err *e) {
    NewModelParams q = *p0;
    const Family *f = family_find(q.family ? q.family : "gpt2");
    if (!f) return err_set(e, "new-model: unknown family '%.20s'", q.family ? q.family : "");
    if (!q.n_vocab) q.n_vocab = 256;
    ModelConfig c;
    Specs S;
    if (prepare(&q, &c, &f, &S, e)) return -1;
    *n = 0;
    for (int i = 0; i < S.n; i++) {
        uint64_t count = 1;
        for (int k = 0; k < S.s[i].ndim; k++) count *= (uint64_t)S.s[i].shape[k];
        if (!S.s[i].is_bool && S.s[i].init != INIT_MASKED_BIAS) *n += count; // buffers are no parameters
    }
    free(S.s);
    return 0;
}

// A size in bytes as people read it: "2.6 TB", "54 GB", "310 MB".
static void human_bytes(double b, char *out, size_t cap) {
    const char *u[] = {"bytes", "kB", "MB", "GB", "TB", "PB"};
    int k = 0;
    while (b >= 1000 && k < 5) b /= 1000, k++;
    snprintf(out, cap, k ? "%.3g %s" : "%.0f %s", b, u[k]);
}

int newmodel_write(const char *dir, const NewModelParams *p0, const char *tok_dir, Err *e) {
    NewModelParams p = *p0;
    const Family *f = family_find(p.family ? p.family : "gpt2");
    if (!f || !f->write_tokenizer) return err_set(e, "new-model: unknown family '%.20s'", p.family ? p.family : "");
    ModelConfig c;
    Specs S;
    // the options checked before anything is written (a folder of tokenizer files alone was left,
    // which train then refused); the vocabulary's size waits for the tokenizer
    NewModelParams q = p;
    if (!q.n_vocab) q.n_vocab = 1;
    if (prepare(&q, &c, &f, &S, e)) return -1;
    free(S.s);
    const bool made = !fs_is_dir(dir);
    if (fs_mkdir_p(dir, 0755, e)) return -1;
    // tokenizer first: it fixes the vocabulary size
    if (put_tokenizer(dir, tok_dir, f, &p, e) || prepare(&p, &c, &f, &S, e)) {
        if (made) fs_remove_tree(dir);
        return -1;
    }
    // a shape whose weights the disk cannot hold is refused before they are written (a train of
    // 2.6 TB of weights filled the disk, gigabyte after gigabyte, until it was killed)
    uint64_t weights = 0;
    for (int i = 0; i < S.n; i++) weights += S.s[i].nbytes;
    struct statvfs sv;
    if (statvfs(dir, &sv) == 0 && (double)sv.f_bavail * (double)sv.f_frsize < (double)weights) {
        char need[32], have[32];
        human_bytes((double)weights, need, sizeof need);
        human_bytes((double)sv.f_bavail * (double)sv.f_frsize, have, sizeof have);
        err_set(e, "new-model: its weights need %s and the disk holding '%s' has %s free", need, dir, have);
        free(S.s);
        if (made) fs_remove_tree(dir);
        return -1;
    }

    Buf cfg = {0};
    config_json(&p, &c, f, &cfg);
    int rc = write_file(dir, "config.json", produce_buf, &cfg, e);
    buf_free(&cfg);
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
        char *stale = fs_join(dir, "model.safetensors.index.json"); // a stale index would win
        unlink(stale);
        free(stale);
    }
    free(S.s);
    if (rc && made) fs_remove_tree(dir); // a folder it made is not left half written (a full disk)
    return rc;
}
