// gguf_model.c - GGUF checkpoints as models: the element types qkv reads from them, the
// family and configuration from their metadata, their tensors registered as stored (mapped,
// never converted); and a loaded model written back as one. ggml lists dims innermost first: a [in, out] ggml matrix is qkv's
// row-major [out, in].
#include "model/gguf_model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/gguf.h"
#include "base/mem.h"
#include "kern/quant.h"
#include "model/wsrc.h"

// The open file and the tensors registered from it.
typedef struct GFile {
    Gguf *g;
    WTensor *t;
    int n;
} GFile;

static void gfile_close(void *h) {
    GFile *f = h;
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    gguf_close(f->g);
    free(f);
}

// Register every tensor of g in ws (which then owns g). Tensors of types qkv does not compute
// with are registered unsupported: binding one names its type.
static int add_tensors(WSrc *ws, Gguf *g, Err *e) {
    GFile *f = xcalloc(1, sizeof *f);
    f->g = g;
    int n = gguf_n_tensors(g);
    f->t = xcalloc((size_t)(n ? n : 1), sizeof *f->t);
    int file = wsrc_add_file(ws, gguf_path(g), gguf_file_size(g), f, gfile_close, e);
    for (int i = 0; i < n; i++) {
        const GgufTensor *gt = gguf_tensor(g, i);
        WTensor *t = &f->t[f->n++];
        int dt = dtype_from_ggml(gt->type);
        t->name = xstrdup(gt->name);
        t->t.ndim = gt->ndim;
        t->t.n = 1;
        for (int k = 0; k < gt->ndim; k++) {
            t->t.shape[k] = gt->ne[gt->ndim - 1 - k];
            t->t.n *= gt->ne[k];
        }
        t->t.dt = dt >= 0 ? (DType)dt : DT_F32;
        t->t.data = gt->data;
        t->nbytes = (size_t)gt->nbytes;
        snprintf(t->dtype, sizeof t->dtype, "%s", ggml_type(gt->type)->name);
        t->supported = dt >= 0;
        if (wsrc_add_tensor(ws, file, t, e)) return -1;
    }
    return 0;
}

// llama.cpp's {arch}.pooling_type values (sentence-transformers conversions): 1 mean, 2 cls, 3 last.
static const char *const pooling_types[] = {NULL, "mean", "cls", "last"};
// The pooling llama.cpp has no value for, which qkv names under its own key instead.
#define POOL_KEY "qkv.sentence_transformers.pooling"

// What a GGUF says of the model beyond its configuration: how its embeddings are pooled
// (llama.cpp's key, or qkv's for max) and the facts llama.cpp has no key for, which qkv writes
// under qkv.* (write_facts): a sentence-transformers Normalize module and maximum length, random
// weights.
static int read_facts(Model *m, const Gguf *g, const char *arch, Err *e) {
    char k[96];
    long long v;
    const char *s;
    size_t sl;
    int r;
    snprintf(k, sizeof k, "%s.pooling_type", arch);
    if ((r = gguf_get_int(g, k, 0, 1000, &v, e)) < 0) return -1;
    if (r && v >= 1 && v <= 3) snprintf(m->st_pool, sizeof m->st_pool, "%s", pooling_types[v]);
    if ((r = gguf_get_str(g, POOL_KEY, &s, &sl, e)) < 0) return -1;
    if (r && (sl != 3 || memcmp(s, "max", 3)))
        return err_set(e, "'%s': %s '%.*s' is not supported (max is)", gguf_path(g),
                       POOL_KEY, (int)(sl < 16 ? sl : 16), s);
    if (r) snprintf(m->st_pool, sizeof m->st_pool, "max");
    if (gguf_get_bool(g, "qkv.sentence_transformers.normalize", &m->st_normalize, e) < 0 ||
        gguf_get_bool(g, "qkv.untrained", &m->untrained, e) < 0)
        return -1;
    if ((r = gguf_get_int(g, "qkv.sentence_transformers.max_seq_length", 1, 1 << 20, &v, e)) < 0) return -1;
    if (r) m->st_max_seq = (int)v;
    return 0;
}

// The facts read_facts reads, of m, into w (arch: its general.architecture): mean, cls and last
// pooling as llama.cpp's {arch}.pooling_type, max pooling (which it has no value for) under qkv's key.
static void write_facts(const Model *m, const char *arch, GgufW *w) {
    char k[96];
    snprintf(k, sizeof k, "%s.pooling_type", arch);
    for (uint32_t i = 1; i < sizeof pooling_types / sizeof *pooling_types; i++)
        if (!strcmp(m->st_pool, pooling_types[i])) gguf_w_u32(w, k, i);
    if (!strcmp(m->st_pool, "max")) gguf_w_str(w, POOL_KEY, "max", 3);
    if (m->st_normalize) gguf_w_bool(w, "qkv.sentence_transformers.normalize", true);
    if (m->st_max_seq > 0) gguf_w_u32(w, "qkv.sentence_transformers.max_seq_length", (uint32_t)m->st_max_seq);
    if (m->untrained) gguf_w_bool(w, "qkv.untrained", true);
}

int gguf_model_load(Model *m, const char *path, const TensorMap **map, const struct Gguf **gp, Err *e) {
    Gguf *g = gguf_open(path, e);
    if (!g) return -1;
    if (!gguf_n_tensors(g) && gguf_find(g, "tokenizer.ggml.tokens") >= 0) { // llama.cpp's ggml-vocab-*.gguf
        gguf_close(g);
        return err_set(e, "'%s' holds no tensors (a vocabulary alone): give it as --tokenizer, with a model", path);
    }
    if (add_tensors(m->src, g, e)) return -1; // m->src owns g from here
    const char *arch;
    size_t al;
    int r = gguf_get_str(g, "general.architecture", &arch, &al, e);
    if (r < 0) return -1;
    if (!r) return err_set(e, "'%s': missing key 'general.architecture'", path);
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(al < 63 ? al : 63), arch);
    const Family *f = memchr(arch, 0, al) ? NULL : family_find_gguf(name);
    if (!f) {
        Buf known = {0};
        for (int i = 0; family_at(i); i++) {
            const GgufFamily *gf = family_at(i)->gguf;
            if (gf && !strstr(known.data ? known.data : "", gf->arch))
                buf_printf(&known, "%s%s", known.len ? ", " : "", gf->arch);
        }
        err_set(e, "'%s': general.architecture '%s' is not supported (%s are)", path, name, known.data);
        buf_free(&known);
        return -1;
    }
    m->family = f;
    if (config_read_gguf(f, g, &m->cfg, e) || read_facts(m, g, name, e)) return -1;
    *map = f->gguf->names;
    *gp = m->gguf = g;
    return 0;
}

// ---------------------------------------------------------------------------------------
// Writing a loaded model as llama.cpp's GGUF

// One tensor of the file: a logical weight (or the rotary divisors) and how it is stored.
typedef struct ExItem {
    WeightSlot s;
    DType dt;
    int64_t rows, cols;  // as written: [rows, cols], cols contiguous (ggml ne = {cols, rows})
    bool permute;        // q/k rows reordered between rotary half and adjacent-pair order
    bool head_copy;      // the tied head written from the token embedding
    bool rope_freqs;     // the rotary divisors
} ExItem;

typedef struct Export {
    const Model *m;
    const GgufFamily *gf;
    ExItem *it;
    int n, cap;
    float *rope; // [rot/2] divisors, for the rope_freqs item
    const char *path;
    volatile sig_atomic_t *stop; // checked before each tensor
} Export;

static ExItem *ex_add(Export *x) {
    if (x->n == x->cap) x->it = xrealloc(x->it, sizeof *x->it * (size_t)(x->cap = x->cap ? 2 * x->cap : 64));
    ExItem *it = &x->it[x->n++];
    memset(it, 0, sizeof *it);
    return it;
}

typedef struct PlanCtx {
    Export *x;
    DType dt;
    Err *e;
} PlanCtx;

static int ex_plan(void *user, const WeightSlot *s) {
    PlanCtx *p = user;
    Export *x = p->x;
    const Model *m = x->m;
    const Arch *a = &m->cfg.a;
    if (!x->gf->names->names[s->w]) return 0; // not in llama.cpp's files (BERT's masked-LM head)
    bool head_copy = false;
    if (s->w == W_OUTPUT && a->tied) {
        if (!x->gf->head_copy) return 0;
        head_copy = true;
    }
    ExItem *it = ex_add(x);
    it->s = *s;
    it->head_copy = head_copy;
    switch (s->kind) {
    case WK_EMBED: it->rows = s->rows, it->cols = m->cfg.n_embd; break;
    case WK_LINEAR: {
        const Linear *l = model_linear(m, s->w, s->layer);
        if (!l) return err_set(p->e, "the model has no weight %s%s", weight_name(s->w), s->layer >= 0 ? " in a block" : "");
        it->rows = s->out, it->cols = s->in;
        break;
    }
    case WK_VEC: it->rows = 1, it->cols = s->rows; break;
    }
    // llama.cpp stores Llama's q and k in adjacent-pair rotary order, Qwen2's in halves
    bool qk = s->w == W_Q || s->w == W_K || s->w == W_Q_B || s->w == W_K_B;
    it->permute = qk && a->pos == POS_ROTARY && a->rope_style != x->gf->rope_style;
    // as llama.cpp's converter: vectors, position and token-type embeddings in F32; the other
    // matrices in the type asked for, F16 where their rows are not whole blocks of it
    if (s->kind == WK_VEC || s->w == W_POS_EMBD || s->w == W_TYPE_EMBD) it->dt = DT_F32;
    else it->dt = it->cols % dtype_block(p->dt) == 0 ? p->dt : DT_F16;
    return 0;
}

static int ex_data(void *user, int i, FILE *f, Err *e) {
    Export *x = user;
    const Model *m = x->m;
    const ModelConfig *c = &m->cfg;
    const ExItem *it = &x->it[i];
    if (x->stop && *x->stop) return err_set(e, "interrupted");
    int64_t n = it->rows * it->cols;
    float *v = xmalloc(sizeof *v * (size_t)n);
    int rc = 0;
    if (it->rope_freqs) {
        memcpy(v, x->rope, sizeof *v * (size_t)n);
    } else {
        WeightSlot s = it->s;
        if (it->head_copy) s.w = W_TOK_EMBD;
        if (model_weight_f32(m, &s, false, v)) rc = err_set(e, "cannot write '%s': the model has no weight %s", x->path, weight_name(s.w));
    }
    if (!rc && it->permute) {
        int heads = it->s.w == W_Q || it->s.w == W_Q_B ? c->n_head : c->n_kv_head, hd = c->head_dim;
        int rot = c->a.rope_dim ? c->a.rope_dim : hd;
        int64_t per_row = it->s.kind == WK_VEC ? 1 : it->cols; // a bias: one value per row of q/k
        float *tmp = xmalloc(sizeof *tmp * (size_t)(rot * per_row));
        for (int h = 0; h < heads; h++)
            rope_permute_head(v + (int64_t)h * hd * per_row, rot, per_row, c->a.rope_style == ROPE_HALF, tmp);
        free(tmp);
    }
    if (!rc) {
        errno = 0;
        size_t bytes = it->dt == DT_F32 ? sizeof *v * (size_t)n : (size_t)it->rows * dtype_row_bytes(it->dt, it->cols);
        void *q = v;
        if (it->dt != DT_F32) {
            q = xmalloc(bytes);
            if (quant_weights(it->dt, v, it->rows, it->cols, q, e)) {
                if (it->s.layer >= 0) err_prefix(e, "%s of layer %d", weight_name(it->s.w), it->s.layer);
                else err_prefix(e, "%s", weight_name(it->s.w));
                rc = -1;
            }
        }
        if (!rc && fwrite(q, 1, bytes, f) != bytes) rc = err_set(e, "cannot write '%s': %s", x->path, strerror(errno ? errno : EIO));
        if (q != v) free(q);
    }
    free(v);
    return rc;
}

// The general.* keys of the GGUF file src (NULL: none) that describe the model rather than the
// file, copied into w: its name, licence, authors, sources, tags, ... Not the ones qkv writes for
// the file it writes (its architecture, alignment, file type and quantization version), nor who
// quantized it, nor its name unless with_name. Returns whether general.name was among them.
static bool copy_general(const struct Gguf *src, GgufW *w, bool with_name) {
    static const char *const own[] = {"general.architecture", "general.alignment", "general.file_type",
                                      "general.quantization_version", "general.quantized_by"};
    bool named = false;
    for (int i = 0; src && i < gguf_n_kv(src); i++) {
        const char *k = gguf_key(src, i);
        bool skip = strncmp(k, "general.", 8) != 0;
        for (size_t j = 0; !skip && j < sizeof own / sizeof *own; j++) skip = !strcmp(k, own[j]);
        skip |= !with_name && !strcmp(k, "general.name");
        if (skip) continue;
        gguf_w_copy(w, src, i);
        named |= !strcmp(k, "general.name");
    }
    return named;
}

// llama.cpp's general.file_type (LlamaFileType) of a file whose matrices are dt.
static uint32_t file_type(DType dt) {
    switch (dt) {
    case DT_F16: return 1;
    case DT_Q4_0: return 2;
    case DT_Q4_1: return 3;
    case DT_Q8_0: return 7;
    case DT_Q4_K: return 15; // Q4_K_M
    case DT_Q6_K: return 18;
    case DT_BF16: return 32;
    default: return 0;
    }
}

int model_export_gguf(const Model *m, const char *path, DType dt, volatile sig_atomic_t *stop, GgufExportInfo *info,
                      Err *e) {
    const Family *f = m->family;
    if (!f || !f->gguf) return err_set(e, "the %s family has no GGUF layout", m->cfg.a.name);
    if (dt == DT_I8_AFFINE || dtype_ggml(dt) < 0) return err_set(e, "GGUF has no type %s", dtype_name(dt));
    const ModelConfig *c = &m->cfg;
    const Arch *a = &c->a;
    Export x = {.m = m, .gf = f->gguf, .path = path, .stop = stop};
    GgufW *w = gguf_w_new();
    int rc = 0;
    config_write_gguf(f, c, w);
    // a converted model written as another type is named so ("gpt2 Q4_K_M" written as F32 read as
    // a Q4_K_M file of 1.45 MB; it holds 8.1 MB of the Q4_K_M weights dequantized)
    Buf name = {0};
    buf_puts(&name, m->name ? m->name : "qkv");
    if (m->base && (int)m->quant_dt != (int)dt) buf_printf(&name, " as %s", dtype_name(dt));
    // a converted GGUF model is named as qkv names it (the source's name kept read as the source's
    // weights: SmolLM2 after quantize q4_0, written as Q8_0, was "Smollm2 135M ...")
    if (!copy_general(m->gguf, w, !m->base)) gguf_w_str(w, "general.name", name.data, name.len);
    buf_free(&name);
    write_facts(m, f->gguf->arch, w);
    gguf_w_u32(w, "general.file_type", file_type(dt));
    gguf_w_u32(w, "general.quantization_version", 2); // ggml's block formats' version, as llama.cpp writes it
    if (m->tok) rc = tok_write_gguf(m->tok, w, e);
    PlanCtx p = {&x, dt, e};
    if (!rc) rc = arch_plan(c, ex_plan, &p);
    // Llama 3.1's frequency scaling: the divisors as llama.cpp stores them
    if (!rc && a->pos == POS_ROTARY && (a->rope_scaling == ROPE_SCALE_LLAMA3 || a->rope_scaling == ROPE_SCALE_FACTORS)) {
        int rot = a->rope_dim ? a->rope_dim : c->head_dim;
        if (!x.gf->rope_freqs) {
            rc = err_set(e, "GGUF %s files have no rotary frequency divisors", x.gf->arch);
        } else {
            x.rope = xmalloc(sizeof *x.rope * (size_t)(rot / 2));
            float *plain = xmalloc(sizeof *plain * (size_t)(rot / 2));
            Arch none = *a;
            none.rope_scaling = ROPE_SCALE_NONE;
            rope_freqs(&none, rot, plain);
            rope_freqs(a, rot, x.rope);
            for (int i = 0; i < rot / 2; i++) x.rope[i] = a->rope_factors ? a->rope_factors[i] : plain[i] / x.rope[i];
            free(plain);
            ExItem *it = ex_add(&x);
            it->rope_freqs = true, it->dt = DT_F32, it->rows = 1, it->cols = rot / 2;
        }
    }
    GgufExportInfo in = {0};
    for (int i = 0; !rc && i < x.n; i++) {
        const ExItem *it = &x.it[i];
        char tn[160];
        if (it->rope_freqs) snprintf(tn, sizeof tn, "%s", x.gf->rope_freqs);
        else snprintf(tn, sizeof tn, x.gf->names->names[it->s.w], it->s.layer);
        int64_t ne[2] = {it->cols, it->rows};
        gguf_w_tensor(w, tn, it->s.kind == WK_VEC || it->rope_freqs ? 1 : 2, ne, (uint32_t)dtype_ggml(it->dt));
        in.n_tensors++;
        if (it->dt == DT_F16 && dt != DT_F16) in.n_kept++;
        in.bytes += (int64_t)gguf_w_tensor_bytes(w, i);
    }
    if (!rc) rc = gguf_w_write(w, path, ex_data, &x, e);
    if (!rc && info) *info = in;
    gguf_w_free(w);
    free(x.it);
    free(x.rope);
    return rc;
}
