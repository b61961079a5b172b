// model.c - opening GPT-2 checkpoints as published: HF directories (single or sharded
// safetensors), lone .safetensors files, and the built-in untrained default.
#include "model/model.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/json.h"
#include "model/newmodel.h"
#include "model/safetensors.h"
#include "base/fs.h"

const char *arch_name(Arch a) {
    switch (a) {
    case ARCH_GPT2: return "gpt2";
    }
    return "?";
}

void model_free(Model *m) {
    if (!m) return;
    tok_free(m->tok);
    for (int i = 0; i < m->n_files; i++) st_close(m->files[i]);
    free(m->files);
    for (int i = 0; i < m->n_owned_vecs; i++) free(m->owned_vecs[i]);
    free(m->owned_vecs);
    free(m->owned_bytes);
    free(m->layers);
    free(m->path);
    free(m->name);
    free(m);
}

// ---------------------------------------------------------------------------------------
// Configuration

static int cfg_int(const Json *cfg, const char *const *keys, long long lo, long long hi, bool required, int *out,
                   const char *file, Err *e) {
    for (int i = 0; keys[i]; i++) {
        const Json *v = json_get(cfg, keys[i]);
        if (!v || v->type == JSON_NULL) continue;
        long long x;
        if (!json_int_in(v, lo, hi, &x))
            return err_set(e, "'%s': \"%s\" must be an integer in [%lld, %lld]", file, keys[i], lo, hi);
        *out = (int)x;
        return 1;
    }
    if (required) return err_set(e, "'%s': missing \"%s\"", file, keys[0]);
    return 0;
}

// Reads a GPT-2 config.json into c. Returns 0 or -1.
static int gpt2_config(const Json *cfg, const char *file, ModelConfig *c, Err *e) {
    if (cfg->type != JSON_OBJ) return err_set(e, "'%s': not a JSON object", file);
    const char *mt = json_str_or(cfg, "model_type", "gpt2");
    if (strcmp(mt, "gpt2"))
        return err_set(e, "'%s': model_type \"%.40s\" is not supported yet (gpt2 is)", file, mt);
    static const char *k_layer[] = {"n_layer", "num_hidden_layers", NULL};
    static const char *k_head[] = {"n_head", "num_attention_heads", NULL};
    static const char *k_embd[] = {"n_embd", "hidden_size", NULL};
    static const char *k_ctx[] = {"n_positions", "n_ctx", "max_position_embeddings", NULL};
    static const char *k_vocab[] = {"vocab_size", NULL};
    static const char *k_inner[] = {"n_inner", NULL};
    c->arch = ARCH_GPT2;
    if (cfg_int(cfg, k_layer, 1, 1000, true, &c->n_layer, file, e) < 0) return -1;
    if (cfg_int(cfg, k_head, 1, 1024, true, &c->n_head, file, e) < 0) return -1;
    if (cfg_int(cfg, k_embd, 1, 1 << 16, true, &c->n_embd, file, e) < 0) return -1;
    if (cfg_int(cfg, k_ctx, 1, 1 << 20, true, &c->n_ctx, file, e) < 0) return -1;
    if (cfg_int(cfg, k_vocab, 1, 1 << 24, true, &c->n_vocab, file, e) < 0) return -1;
    c->n_ff = 4 * c->n_embd;
    if (cfg_int(cfg, k_inner, 1, 1 << 20, false, &c->n_ff, file, e) < 0) return -1;
    if (c->n_embd % c->n_head)
        return err_set(e, "'%s': n_embd %d is not a multiple of n_head %d", file, c->n_embd, c->n_head);
    c->n_kv_head = c->n_head;
    c->head_dim = c->n_embd / c->n_head;
    c->norm_eps = (float)json_num_or(cfg, "layer_norm_epsilon", 1e-5);
    if (!(c->norm_eps > 0 && c->norm_eps < 1)) return err_set(e, "'%s': bad layer_norm_epsilon", file);
    const char *act = json_str_or(cfg, "activation_function", "gelu_new");
    if (strcmp(act, "gelu_new") && strcmp(act, "gelu_pytorch_tanh") && strcmp(act, "gelu_fast"))
        return err_set(e, "'%s': activation_function \"%.40s\" is not supported (gelu_new is)", file, act);
    return 0;
}

// ---------------------------------------------------------------------------------------
// Weights

typedef struct {
    Model *m;
    const char *prefix; // "" or "transformer."
} Loader;

static const StEntry *find_tensor(Loader *L, const char *name) {
    char full[256];
    for (int pass = 0; pass < 2; pass++) {
        snprintf(full, sizeof full, "%s%s", pass == 0 ? L->prefix : "", name);
        for (int i = 0; i < L->m->n_files; i++) {
            const StEntry *en = st_find(L->m->files[i], full);
            if (en) return en;
        }
    }
    return NULL;
}

static int shape_str(const int64_t *s, int nd, char *out, size_t n) {
    int k = snprintf(out, n, "[");
    for (int i = 0; i < nd; i++) k += snprintf(out + k, n - (size_t)k, "%s%lld", i ? ", " : "", (long long)s[i]);
    snprintf(out + k, n - (size_t)k, "]");
    return 0;
}

// Looks up a required tensor and checks its shape (rank 1 or 2) and dtype.
static int get_tensor(Loader *L, const char *name, int64_t d0, int64_t d1, Tensor *out, Err *e) {
    const StEntry *en = find_tensor(L, name);
    if (!en) return err_set(e, "missing tensor '%s%s'", L->prefix, name);
    int nd = d1 ? 2 : 1;
    int64_t want[2] = {d0, d1};
    if (en->t.ndim != nd || en->t.shape[0] != d0 || (nd == 2 && en->t.shape[1] != d1)) {
        char got[96], exp[64];
        shape_str(en->t.shape, en->t.ndim, got, sizeof got);
        shape_str(want, nd, exp, sizeof exp);
        return err_set(e, "tensor '%s': shape %s, expected %s", en->name, got, exp);
    }
    if (!en->supported)
        return err_set(e, "tensor '%s': dtype %s is not supported (F32, F16 and BF16 are)", en->name, en->dtype_str);
    *out = en->t;
    return 0;
}

static int get_vec(Loader *L, const char *name, int64_t n, const float **out, Err *e) {
    Tensor t;
    if (get_tensor(L, name, n, 0, &t, e)) return -1;
    if (t.dt == DT_F32 && (uintptr_t)t.data % sizeof(float) == 0) {
        *out = t.data;
        return 0;
    }
    Model *m = L->m;
    float *v = malloc(sizeof(float) * (size_t)n);
    float **list = realloc(m->owned_vecs, sizeof *list * (size_t)(m->n_owned_vecs + 1));
    if (!v || !list) {
        free(v);
        if (list) m->owned_vecs = list;
        return err_set(e, "out of memory");
    }
    m->owned_vecs = list;
    m->owned_vecs[m->n_owned_vecs++] = v;
    tensor_row_f32(&t, 0, n, v);
    *out = v;
    return 0;
}

static int get_linear(Loader *L, const char *base, int in, int out, Linear *l, Err *e) {
    char wn[128], bn[128];
    snprintf(wn, sizeof wn, "%s.weight", base);
    snprintf(bn, sizeof bn, "%s.bias", base);
    if (get_tensor(L, wn, in, out, &l->w, e) || get_vec(L, bn, out, &l->bias, e)) return -1;
    l->in = in;
    l->out = out;
    l->out_in = false;
    return 0;
}

static int gpt2_weights(Model *m, Err *e) {
    const ModelConfig *c = &m->cfg;
    Loader L = {m, ""};
    // Real files come with and without the "transformer." prefix.
    if (!find_tensor(&L, "wte.weight")) L.prefix = "transformer.";
    int d = c->n_embd, V = c->n_vocab;
    if (get_tensor(&L, "wte.weight", V, d, &m->wte, e) || get_tensor(&L, "wpe.weight", c->n_ctx, d, &m->wpe, e) ||
        get_vec(&L, "ln_f.weight", d, &m->lnf_w, e) || get_vec(&L, "ln_f.bias", d, &m->lnf_b, e))
        return -1;
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers) return err_set(e, "out of memory");
    int64_t params = m->wte.n + m->wpe.n + 2 * d;
    for (int i = 0; i < c->n_layer; i++) {
        Gpt2Layer *ly = &m->layers[i];
        char b[64], n2[96];
#define NAME(s) (snprintf(n2, sizeof n2, "h.%d.%s", i, s), n2)
        snprintf(b, sizeof b, "h.%d", i);
        if (get_vec(&L, NAME("ln_1.weight"), d, &ly->ln1_w, e) || get_vec(&L, NAME("ln_1.bias"), d, &ly->ln1_b, e) ||
            get_vec(&L, NAME("ln_2.weight"), d, &ly->ln2_w, e) || get_vec(&L, NAME("ln_2.bias"), d, &ly->ln2_b, e))
            return -1;
        if (get_linear(&L, NAME("attn.c_attn"), d, 3 * d, &ly->attn, e) ||
            get_linear(&L, NAME("attn.c_proj"), d, d, &ly->proj, e) ||
            get_linear(&L, NAME("mlp.c_fc"), d, c->n_ff, &ly->fc, e) ||
            get_linear(&L, NAME("mlp.c_proj"), c->n_ff, d, &ly->fc2, e))
            return -1;
#undef NAME
        params += 4 * d + (int64_t)d * 3 * d + 3 * d + (int64_t)d * d + d + (int64_t)d * c->n_ff + c->n_ff +
                  (int64_t)c->n_ff * d + d;
    }
    // An explicit head is used when present (untied checkpoints); otherwise tied to wte.
    m->lm_head = (Linear){.w = m->wte, .out_in = true, .in = d, .out = V};
    m->tied = true;
    const StEntry *head = find_tensor(&L, "lm_head.weight");
    if (head) {
        Tensor t;
        Loader L0 = {m, ""};
        if (get_tensor(&L0, "lm_head.weight", V, d, &t, e)) return -1;
        m->tied = t.data == m->wte.data;
        m->lm_head.w = t;
        if (!m->tied) params += t.n;
    }
    m->n_params = params;
    return 0;
}

// Opens the weight files named by an index's weight_map (each once).
static int open_shards(Model *m, const char *dir, const char *index_path, Err *e) {
    Json *idx = json_parse_file(index_path, e);
    if (!idx) return -1;
    const Json *wm = json_get(idx, "weight_map");
    if (!wm || wm->type != JSON_OBJ || !wm->len) {
        json_free(idx);
        return err_set(e, "'%s': no weight_map", index_path);
    }
    int rc = 0;
    for (size_t i = 0; i < wm->len && !rc; i++) {
        const Json *f = &wm->items[i];
        if (f->type != JSON_STR || strchr(f->str, '/') || !strcmp(f->str, "..")) {
            rc = err_set(e, "'%s': bad file name for tensor '%s'", index_path, wm->keys[i]);
            break;
        }
        bool seen = false;
        for (int k = 0; k < m->n_files && !seen; k++) {
            const char *p = st_path(m->files[k]);
            const char *base = strrchr(p, '/');
            seen = !strcmp(base ? base + 1 : p, f->str);
        }
        if (seen) continue;
        char *path = fs_join(dir, f->str);
        StFile *st = path ? st_open(path, e) : NULL;
        free(path);
        if (!st) {
            rc = -1;
            break;
        }
        StFile **nf = realloc(m->files, sizeof *nf * (size_t)(m->n_files + 1));
        if (!nf) {
            st_close(st);
            rc = err_set(e, "out of memory");
            break;
        }
        m->files = nf;
        m->files[m->n_files++] = st;
    }
    json_free(idx);
    return rc;
}

static int add_file(Model *m, StFile *st, Err *e) {
    StFile **nf = realloc(m->files, sizeof *nf * (size_t)(m->n_files + 1));
    if (!nf) {
        st_close(st);
        return err_set(e, "out of memory");
    }
    m->files = nf;
    m->files[m->n_files++] = st;
    return 0;
}

// Without config.json (a lone .safetensors): infer the shape from the tensors, with
// GPT-2's head size of 64.
static int infer_config(Model *m, Err *e) {
    Loader L = {m, ""};
    const StEntry *wte = find_tensor(&L, "wte.weight");
    if (!wte) {
        L.prefix = "transformer.";
        wte = find_tensor(&L, "wte.weight");
    }
    const StEntry *wpe = find_tensor(&L, "wpe.weight");
    if (!wte || !wpe || wte->t.ndim != 2 || wpe->t.ndim != 2)
        return err_set(e, "no config.json and the tensors are not GPT-2's (wte/wpe missing)");
    ModelConfig *c = &m->cfg;
    c->arch = ARCH_GPT2;
    c->n_vocab = (int)wte->t.shape[0];
    c->n_embd = (int)wte->t.shape[1];
    c->n_ctx = (int)wpe->t.shape[0];
    c->n_layer = 0;
    char name[64];
    while (c->n_layer < 1000) {
        snprintf(name, sizeof name, "h.%d.ln_1.weight", c->n_layer);
        if (!find_tensor(&L, name)) break;
        c->n_layer++;
    }
    if (!c->n_layer || c->n_embd % 64) return err_set(e, "no config.json and the shape cannot be inferred");
    c->n_head = c->n_kv_head = c->n_embd / 64;
    c->head_dim = 64;
    c->n_ff = 4 * c->n_embd;
    c->norm_eps = 1e-5f;
    return 0;
}

// Files of formats qkv does not read yet get a message naming the format rather than
// "not safetensors". Returns -1 with e filled for such a file, else 0.
static int other_format(const char *path, Err *e) {
    unsigned char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(magic, 1, 4, f) : 0;
    if (f) fclose(f);
    size_t n = strlen(path);
    if (got == 4 && !memcmp(magic, "GGUF", 4))
        return err_set(e, "'%s': a GGUF file: not supported yet (GPT-2 safetensors checkpoints are)", path);
    if (got >= 2 && magic[0] == 'P' && magic[1] == 'K')
        return err_set(e, "'%s': a PyTorch zip checkpoint: convert it to safetensors first", path);
    if (n > 4 && (!strcmp(path + n - 4, ".bin") || !strcmp(path + n - 3, ".pt") || !strcmp(path + n - 4, ".pth")))
        return err_set(e, "'%s': .bin/.pt checkpoints (llama2.c, PyTorch) are not supported yet: give a safetensors "
                          "file or an HF directory",
                       path);
    return 0;
}

static Model *model_alloc(const char *path) {
    Model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->path = strdup(path);
    char *tmp = strdup(path);
    if (!tmp) return m;
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/') tmp[--n] = 0; // "dir/" names "dir"
    char *base = strrchr(tmp, '/');
    // ".../gpt2/model.safetensors" is better called "gpt2"
    if (base && base > tmp && (!strcmp(base + 1, "model.safetensors") || !strcmp(base + 1, "model.safetensors.index.json"))) {
        *base = 0;
        base = strrchr(tmp, '/');
    }
    m->name = strdup(base && base[1] ? base + 1 : tmp);
    free(tmp);
    return m;
}

Model *model_open(const char *path, const char *tok_path, Err *e) {
    Model *m = model_alloc(path);
    if (!m || !m->path || !m->name) {
        model_free(m);
        err_set(e, "out of memory");
        return NULL;
    }
    char *dir = NULL, *cfg_path = NULL, *p = NULL;
    Json *cfg = NULL;
    if (fs_is_dir(path)) {
        dir = strdup(path);
        p = fs_join(dir, "model.safetensors.index.json");
        if (p && fs_is_file(p)) {
            if (open_shards(m, dir, p, e)) goto fail;
        } else {
            free(p);
            p = fs_join(dir, "model.safetensors");
            if (!p || !fs_is_file(p)) {
                err_set(e, "'%s': no model.safetensors or model.safetensors.index.json", path);
                goto fail;
            }
            StFile *st = st_open(p, e);
            if (!st || add_file(m, st, e)) goto fail;
        }
    } else if (fs_is_file(path)) {
        dir = fs_dirname(path);
        size_t n = strlen(path);
        if (other_format(path, e)) goto fail;
        if (n > 11 && !strcmp(path + n - 11, ".index.json")) {
            if (open_shards(m, dir, path, e)) goto fail;
        } else {
            StFile *st = st_open(path, e);
            if (!st || add_file(m, st, e)) goto fail;
        }
    } else {
        err_set(e, "cannot open '%s': %s", path, errno == ENOENT || !errno ? "no such file or directory" : strerror(errno));
        goto fail;
    }
    cfg_path = fs_join(dir, "config.json");
    if (fs_is_file(cfg_path)) {
        cfg = json_parse_file(cfg_path, e);
        if (!cfg || gpt2_config(cfg, cfg_path, &m->cfg, e)) goto fail;
        m->untrained = json_bool_or(cfg, "qkv_untrained", false);
    } else if (infer_config(m, e)) {
        err_prefix(e, "'%s'", path);
        goto fail;
    }
    if (gpt2_weights(m, e)) {
        if (m->n_files == 1) err_prefix(e, "'%s'", st_path(m->files[0]));
        else err_prefix(e, "'%s'", path);
        goto fail;
    }
    for (int i = 0; i < m->n_files; i++) m->file_bytes += st_size(m->files[i]);
    m->tok = tok_load(tok_path ? tok_path : dir, e);
    if (!m->tok) {
        if (!tok_path && !strstr(e ? e->msg : "", dir)) err_prefix(e, "tokenizer of '%s'", path);
        goto fail;
    }
    if (tok_vocab_size(m->tok) > m->cfg.n_vocab) {
        err_set(e, "the tokenizer has %d tokens but the model only %d", tok_vocab_size(m->tok), m->cfg.n_vocab);
        goto fail;
    }
    json_free(cfg);
    free(cfg_path);
    free(dir);
    free(p);
    return m;
fail:
    json_free(cfg);
    free(cfg_path);
    free(dir);
    free(p);
    model_free(m);
    return NULL;
}

Model *model_builtin(Err *e) {
    NewModelParams np = newmodel_defaults();
    np.n_layer = 4;
    np.n_head = 4;
    np.n_embd = 128;
    np.n_ctx = 256;
    np.seed = 1;
    np.masks = false;
    Model *m = model_alloc("(built-in)");
    Buf cfg = {0}, st = {0};
    Tokenizer *tok = tok_bytes_new();
    if (!m || !tok) goto oom;
    np.n_vocab = tok_vocab_size(tok);
    if (newmodel_gpt2_build(&np, &cfg, &st, e)) goto fail;
    free(m->name);
    m->name = strdup("untrained-gpt2-tiny");
    m->builtin = true;
    m->untrained = true;
    m->owned_bytes = st.data;
    size_t st_len = st.len;
    st.data = NULL;
    StFile *f = st_open_mem(m->owned_bytes, st_len, "(built-in)", e);
    if (!f || add_file(m, f, e)) goto fail;
    Json *cj = json_parse(cfg.data, cfg.len, e);
    if (!cj) goto fail;
    int rc = gpt2_config(cj, "(built-in config)", &m->cfg, e);
    json_free(cj);
    if (rc || gpt2_weights(m, e)) goto fail;
    m->file_bytes = (int64_t)st_len;
    m->tok = tok;
    buf_free(&cfg);
    return m;
oom:
    err_set(e, "out of memory");
fail:
    tok_free(tok);
    buf_free(&cfg);
    buf_free(&st);
    model_free(m);
    return NULL;
}
