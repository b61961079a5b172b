// model.c - opening checkpoints as published (HF directories with single or sharded
// safetensors, lone .safetensors files, the built-in untrained default) and binding their
// tensors to the logical weights of the descriptor, for every family alike.
#include "model/model.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fs.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/gguf.h"
#include "model/gguf_model.h"
#include "model/llama2c.h"
#include "model/newmodel.h"
#include "model/safetensors.h"
#include "model/wsrc.h"

void model_free(Model *m) {
    if (!m) return;
    if (!m->base) tok_free(m->tok);
    wsrc_free(m->src);
    for (int i = 0; i < m->n_owned_vecs; i++) free(m->owned_vecs[i]);
    free(m->owned_vecs);
    free(m->owned_bytes);
    free(m->layers);
    free(m->path);
    free(m->name);
    free(m);
}

// ---------------------------------------------------------------------------------------
// Binding tensors to the logical weights

typedef struct Binder {
    Model *m;
    const TensorMap *map;
    const char *prefix; // the prefix the file's token embedding has: for messages
    int64_t params;
    Err *e;
} Binder;

// The tensor called base under one of the map's prefixes (or none when top).
static const WTensor *find_prefixed(const Binder *B, const char *base, bool top, char *full, size_t n) {
    for (int i = 0; top ? i < 1 : B->map->prefixes[i] != NULL; i++) {
        snprintf(full, n, "%s%s", top ? "" : B->map->prefixes[i], base);
        const WTensor *t = wsrc_find(B->m->src, full);
        if (t) return t;
    }
    return NULL;
}

// The file's tensor for weight w (of layer, for per-layer weights), trying each prefix and
// the old spellings of its ending; NULL when absent. full receives the name under the
// file's prefix (for messages).
static const WTensor *lookup(const Binder *B, WeightId w, int layer, char *full, size_t n) {
    const char *fmt = B->map->names[w];
    full[0] = 0;
    if (!fmt) return NULL;
    bool top = *fmt == '/'; // outside the prefix
    char base[160];
    snprintf(base, sizeof base, fmt + top, layer);
    const WTensor *t = find_prefixed(B, base, top, full, n);
    for (int i = 0; !t && i < 2 && B->map->alt_suffix[i][0]; i++) {
        const char *usual = B->map->alt_suffix[i][0];
        size_t bl = strlen(base), ul = strlen(usual);
        if (bl < ul || strcmp(base + bl - ul, usual)) continue;
        char alt[200];
        snprintf(alt, sizeof alt, "%.*s%s", (int)(bl - ul), base, B->map->alt_suffix[i][1]);
        t = find_prefixed(B, alt, top, full, n);
    }
    if (!t) snprintf(full, n, "%s%s", top ? "" : B->prefix, base);
    return t;
}

static void shape_str(const int64_t *s, int nd, char *out, size_t n) {
    int k = snprintf(out, n, "[");
    for (int i = 0; i < nd && (size_t)k < n; i++) k += snprintf(out + k, n - (size_t)k, "%s%lld", i ? ", " : "", (long long)s[i]);
    if ((size_t)k < n) snprintf(out + k, n - (size_t)k, "]");
}

// Checks that t has a supported element type (said first: a type qkv cannot read may also
// store other shapes) and shape [d0] (d1 == 0) or [d0, d1].
static int check_tensor(const WTensor *t, int64_t d0, int64_t d1, Err *e) {
    int nd = d1 ? 2 : 1;
    int64_t want[2] = {d0, d1};
    if (wtensor_check_type(t, e)) return -1;
    if (t->t.ndim != nd || t->t.shape[0] != d0 || (nd == 2 && t->t.shape[1] != d1)) {
        char got[96], exp[64];
        shape_str(t->t.shape, t->t.ndim, got, sizeof got);
        shape_str(want, nd, exp, sizeof exp);
        return err_set(e, "tensor '%s': shape %s, expected %s", t->name, got, exp);
    }
    return 0;
}

// Where each logical weight lives in the Model.
static Tensor *embed_at(Model *m, WeightId w) {
    switch (w) {
    case W_TOK_EMBD: return &m->tok_embd;
    case W_POS_EMBD: return &m->pos_embd;
    case W_TYPE_EMBD: return &m->type_embd;
    case W_OUTPUT: return &m->output.w;
    default: return NULL;
    }
}

static Linear *linear_at(Model *m, WeightId w, int layer) {
    Layer *ly = layer >= 0 ? &m->layers[layer] : NULL;
    switch (w) {
    case W_HEAD_DENSE: return &m->head_dense;
    case W_OUTPUT: return &m->output;
    case W_QKV: return &ly->qkv;
    case W_Q: return &ly->q;
    case W_K: return &ly->k;
    case W_V: return &ly->v;
    case W_O: return &ly->o;
    case W_UP: return &ly->up;
    case W_GATE: return &ly->gate;
    case W_DOWN: return &ly->down;
    default: return NULL;
    }
}

static const float **vec_at(Model *m, WeightId w, int layer) {
    Layer *ly = layer >= 0 ? &m->layers[layer] : NULL;
    switch (w) {
    case W_EMB_NORM: return &m->emb_norm.w;
    case W_EMB_NORM_B: return &m->emb_norm.b;
    case W_OUT_NORM: return &m->out_norm.w;
    case W_OUT_NORM_B: return &m->out_norm.b;
    case W_HEAD_NORM: return &m->head_norm.w;
    case W_HEAD_NORM_B: return &m->head_norm.b;
    case W_ATTN_NORM: return &ly->attn_norm.w;
    case W_ATTN_NORM_B: return &ly->attn_norm.b;
    case W_FFN_NORM: return &ly->ffn_norm.w;
    case W_FFN_NORM_B: return &ly->ffn_norm.b;
    default: break;
    }
    // the bias of the linear layer one id before
    Linear *l = linear_at(m, (WeightId)(w - 1), layer);
    return l ? &l->bias : NULL;
}

// A vector as float32: pointing into the mapping when stored as aligned F32, else
// converted once (the copy belongs to the model; its size is the file's: checked). NULL with
// e filled when memory runs out.
static const float *vec_f32(Model *m, const Tensor *t, const char *name, Err *e) {
    if (t->dt == DT_F32 && (uintptr_t)t->data % sizeof(float) == 0) return t->data;
    float *v = malloc(mem_mul((size_t)t->n, sizeof(float)));
    if (!v) {
        err_set(e, "out of memory for tensor '%s' (%lld values)", name, (long long)t->n);
        return NULL;
    }
    m->owned_vecs = xrealloc(m->owned_vecs, sizeof *m->owned_vecs * (size_t)(m->n_owned_vecs + 1));
    m->owned_vecs[m->n_owned_vecs++] = v;
    tensor_row_f32(t, 0, t->n, v);
    return v;
}

// Whether a and b hold the same values stored alike (a tied head's copy of the embedding).
static bool same_tensor(const Tensor *a, const Tensor *b) {
    if (!a->data || !b->data || a->dt != b->dt || a->n != b->n || a->ndim != b->ndim || a->ndim < 1) return false;
    for (int k = 0; k < a->ndim; k++)
        if (a->shape[k] != b->shape[k]) return false;
    int64_t cols = a->shape[a->ndim - 1];
    return a->data == b->data || !memcmp(a->data, b->data, (size_t)(a->n / cols) * dtype_row_bytes(a->dt, cols));
}

static int bind_slot(void *user, const WeightSlot *s) {
    Binder *B = user;
    Model *m = B->m;
    int d = m->cfg.n_embd;
    char full[256];
    const WTensor *t = lookup(B, s->w, s->layer, full, sizeof full);
    if (!t) return s->required ? err_set(B->e, "missing tensor '%s'", full[0] ? full : weight_name(s->w)) : 0;
    if (s->w == W_OUTPUT && m->cfg.a.tied && same_tensor(&t->t, &m->tok_embd)) return 0; // a copy: tied
    bool io = B->map->in_out;
    switch (s->kind) {
    case WK_EMBED:
        if (check_tensor(t, s->rows, d, B->e)) return -1;
        *embed_at(m, s->w) = t->t;
        break;
    case WK_LINEAR:
        if (check_tensor(t, io ? s->in : s->out, io ? s->out : s->in, B->e)) return -1;
        *linear_at(m, s->w, s->layer) = (Linear){.w = t->t, .out_in = !io, .in = s->in, .out = s->out};
        break;
    case WK_VEC:
        if (check_tensor(t, s->rows, 0, B->e)) return -1;
        if (!(*vec_at(m, s->w, s->layer) = vec_f32(m, &t->t, t->name, B->e))) return -1;
        break;
    }
    // a head that is the embedding matrix itself is counted once
    if (!(s->w == W_OUTPUT && t->t.data == m->tok_embd.data)) B->params += t->t.n;
    return 0;
}

// The layers the file holds past the configuration's n_layer (per-layer tensors of the map at
// n_layer, n_layer + 1, ...): a configuration that says fewer would run the model cut short,
// silently. first gets the first such tensor's name.
static int layers_past_config(const Binder *B, char *first, size_t n) {
    int L = B->m->cfg.n_layer, l = L;
    char full[256];
    first[0] = 0;
    for (bool found = true; found && l < (1 << 16); l += found) {
        found = false;
        for (int w = 0; w < W_COUNT && !found; w++)
            if (B->map->names[w] && strstr(B->map->names[w], "%d") && lookup(B, (WeightId)w, l, full, sizeof full)) {
                found = true;
                if (!first[0]) snprintf(first, n, "%s", full);
            }
    }
    return l - L;
}

int model_bind(Model *m, const TensorMap *map, Err *e) {
    ModelConfig *c = &m->cfg;
    Binder B = {m, map, map->prefixes[0], 0, e};
    char full[256];
    for (int i = 0; map->prefixes[i]; i++) { // the prefix the file uses, for naming missing tensors
        snprintf(full, sizeof full, "%s%s", map->prefixes[i], map->names[W_TOK_EMBD]);
        if (wsrc_find(m->src, full)) B.prefix = map->prefixes[i];
    }
    m->layers = xcalloc((size_t)c->n_layer, sizeof *m->layers);
    if (arch_plan(c, bind_slot, &B)) return -1;
    int extra = layers_past_config(&B, full, sizeof full);
    if (extra)
        return err_set(e, "the configuration gives %d layer%s but the weights hold %d: '%s' is past its last (a "
                       "configuration of another model?)", c->n_layer, c->n_layer == 1 ? "" : "s", c->n_layer + extra, full);
    if (c->a.lm_head) {
        Linear *o = &m->output;
        if (!o->w.data) o->w = m->tok_embd; // tied, and no copy in the file
        o->out_in = true;
        o->in = c->n_embd;
        o->out = c->n_vocab;
        c->a.tied = o->w.data == m->tok_embd.data;
    }
    m->n_params = B.params;
    m->dtype = model_block_dtype(m);
    return 0;
}

DType model_block_dtype(const Model *m) {
    int64_t n[DT_COUNT] = {0};
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const Layer *y = &m->layers[l];
        const Linear *ls[] = {&y->qkv, &y->q, &y->k, &y->v, &y->o, &y->up, &y->gate, &y->down};
        for (size_t i = 0; i < sizeof ls / sizeof *ls; i++)
            if (ls[i]->w.data) n[ls[i]->w.dt] += ls[i]->w.n;
    }
    DType best = m->layers[0].o.w.dt;
    for (int d = 0; d < DT_COUNT; d++)
        if (n[d] > n[best]) best = (DType)d;
    return best;
}

const Linear *model_linear(const Model *m, WeightId w, int layer) {
    if (layer >= m->cfg.n_layer) return NULL;
    const Linear *l = linear_at((Model *)m, w, layer);
    return l && l->w.data ? l : NULL;
}

int model_weight_f32(const Model *m, const WeightSlot *s, bool in_out, float *out) {
    Model *mm = (Model *)m; // the accessors above are shared with binding; nothing is changed
    const Tensor *t = NULL;
    int64_t n = 0;
    bool transpose = false;
    switch (s->kind) {
    case WK_EMBED:
        t = s->w == W_OUTPUT ? &mm->output.w : embed_at(mm, s->w);
        n = s->rows * m->cfg.n_embd;
        break;
    case WK_LINEAR: {
        const Linear *l = linear_at(mm, s->w, s->layer);
        t = l ? &l->w : NULL;
        n = (int64_t)s->in * s->out;
        transpose = l && l->out_in == in_out;
        break;
    }
    case WK_VEC: {
        const float **v = vec_at(mm, s->w, s->layer);
        if (!v || !*v) return -1;
        memcpy(out, *v, sizeof(float) * (size_t)s->rows);
        return 0;
    }
    }
    if (!t || !t->data || t->n != n) return -1;
    if (!transpose) {
        tensor_row_f32(t, 0, n, out);
        return 0;
    }
    // stored rows x cols, wanted cols x rows
    int64_t rows = in_out ? s->out : s->in, cols = in_out ? s->in : s->out;
    float *v = xmalloc(sizeof *v * (size_t)n);
    tensor_row_f32(t, 0, n, v);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < cols; k++) out[k * rows + r] = v[r * cols + k];
    free(v);
    return 0;
}

// ---------------------------------------------------------------------------------------
// Opening

// Opens the weight files named by an index's weight_map (each once).
static int open_shards(WSrc *ws, const char *dir, const char *index_path, Err *e) {
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
        for (int k = 0; k < wsrc_n_files(ws) && !seen; k++) seen = !strcmp(fs_basename(wsrc_file_path(ws, k)), f->str);
        if (seen) continue;
        char *path = fs_join(dir, f->str);
        rc = wsrc_add_safetensors(ws, path, e);
        free(path);
    }
    json_free(idx);
    return rc;
}

// Files of formats qkv does not read yet get a message naming the format rather than
// "not safetensors". Returns -1 with e filled for such a file, else 0.
static int other_format(const char *path, Err *e) {
    unsigned char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(magic, 1, 4, f) : 0;
    if (f) fclose(f);
    size_t n = strlen(path);
    if (got >= 2 && magic[0] == 'P' && magic[1] == 'K')
        return err_set(e, "'%s': a PyTorch zip checkpoint: convert it to safetensors first", path);
    bool bin = n > 4 && !strcmp(path + n - 4, ".bin");
    if (bin && llama2c_explain(path, e)) return -1;
    if (bin || (n > 3 && !strcmp(path + n - 3, ".pt")) || (n > 4 && !strcmp(path + n - 4, ".pth")))
        return err_set(e, "'%s': a .bin/.pt file that is not a llama2.c checkpoint (PyTorch pickles are not read: "
                          "convert them to safetensors)",
                       path);
    return 0;
}

// The one .gguf file of a folder that has no safetensors checkpoint (an installed GGUF model),
// or NULL; *n counts its .gguf files (0 with a checkpoint) and names gets their names.
static char *gguf_in_dir(const char *dir, int *n, Buf *names) {
    char *st = fs_join(dir, "model.safetensors"), *idx = fs_join(dir, "model.safetensors.index.json");
    bool has_st = fs_present(st) || fs_present(idx);
    free(st);
    free(idx);
    *n = 0;
    if (has_st) return NULL;
    DIR *d = opendir(dir);
    char *found = NULL;
    for (struct dirent *de; d && (de = readdir(d));) {
        size_t l = strlen(de->d_name);
        if (l <= 5 || strcmp(de->d_name + l - 5, ".gguf")) continue;
        if ((*n)++ == 0) found = fs_join(dir, de->d_name);
        buf_printf(names, "%s%s", names->len ? ", " : "", de->d_name);
    }
    if (d) closedir(d);
    if (*n != 1) {
        free(found);
        return NULL;
    }
    return found;
}

static Model *model_alloc(const char *path) {
    Model *m = xcalloc(1, sizeof *m);
    m->path = xstrdup(path);
    m->src = wsrc_new();
    char *tmp = xstrdup(path);
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/') tmp[--n] = 0; // "dir/" names "dir"
    char *base = strrchr(tmp, '/');
    // ".../gpt2/model.safetensors" is better called "gpt2"
    if (base && base > tmp && (!strcmp(base + 1, "model.safetensors") || !strcmp(base + 1, "model.safetensors.index.json"))) {
        *base = 0;
        base = strrchr(tmp, '/');
    }
    m->name = xstrdup(base && base[1] ? base + 1 : tmp);
    free(tmp);
    return m;
}

// The family of a config.json without model_type: from the class its "architectures" name,
// else GPT-2 when it has GPT-2's own fields (the oldest GPT-2 files have neither); NULL with e
// set when neither tells.
static const Family *family_untyped(const Json *cfg, const char *file, Err *e) {
    const Json *archs = json_get(cfg, "architectures");
    const char *first = NULL;
    for (size_t i = 0; archs && archs->type == JSON_ARR && i < archs->len; i++) {
        if (archs->items[i].type != JSON_STR) continue;
        const Family *f = family_find_class(archs->items[i].str);
        if (f) return f;
        if (!first) first = archs->items[i].str;
    }
    if (first) {
        err_set(e, "'%s': no model_type, and its architectures name %.60s, which is of no family qkv reads", file, first);
        return NULL;
    }
    if (json_get(cfg, "n_embd") || json_get(cfg, "n_layer")) return family_find("gpt2");
    err_set(e, "'%s': no model_type (nor architectures): qkv cannot tell the model's family (add \"model_type\": "
               "\"llama\", \"gpt2\", ...)", file);
    return NULL;
}

// Reads config.json: the family from model_type (family_untyped when absent), then the
// family's own fields.
static int read_config(Model *m, const Json *cfg, const char *file, Err *e) {
    if (cfg->type != JSON_OBJ) return err_set(e, "'%s': not a JSON object", file);
    // a key given twice: Python's json (and so transformers) reads the last, json_get the first
    // (n_layer 2 then 1 ran 2 layers where transformers runs 1)
    for (size_t i = 0; i < cfg->len; i++)
        for (size_t j = i + 1; j < cfg->len; j++)
            if (cfg->klens[i] == cfg->klens[j] && !memcmp(cfg->keys[i], cfg->keys[j], cfg->klens[i]))
                return err_set(e, "'%s': the key \"%.40s\" is given twice: give it once", file, cfg->keys[i]);
    const Json *mtj = json_get(cfg, "model_type");
    if (mtj && mtj->type != JSON_STR && mtj->type != JSON_NULL) // (5 was read as no model_type: GPT-2)
        return err_set(e, "'%s': model_type is not a string", file);
    const char *mt = json_str_or(cfg, "model_type", NULL);
    const Family *f = mt ? family_find(mt) : family_untyped(cfg, file, e);
    if (!f && !mt) return -1;
    if (!f) {
        Buf known = {0};
        for (int i = 0; family_at(i); i++) buf_printf(&known, "%s%s", i ? ", " : "", family_at(i)->model_type);
        err_set(e, "'%s': model_type \"%.40s\" is not supported yet (%s %s)", file, mt, known.data,
                family_at(1) ? "are" : "is");
        buf_free(&known);
        return -1;
    }
    m->family = f;
    config_init(&m->cfg, f);
    if (f->read_config(cfg, file, &m->cfg, e) || config_check(&m->cfg, file, e)) return -1;
    m->untrained = json_bool_or(cfg, "qkv_untrained", false);
    return 0;
}

// Without config.json: the first family whose tensors are there and tell the sizes.
static int infer_config(Model *m, Err *e) {
    const Family *f;
    int rc = err_set(e, "no config.json and the tensors are of no known family");
    for (int i = 0; (f = family_at(i)) && rc; i++) {
        if (!f->infer_config) continue;
        config_init(&m->cfg, f);
        rc = f->infer_config(m->src, &m->cfg, e);
        if (!rc) rc = config_check(&m->cfg, "(inferred)", e);
        if (!rc) m->family = f;
    }
    return rc;
}

// sentence-transformers folders: modules.json names a Pooling module (its config.json says
// which pooling) and maybe Normalize; sentence_bert_config.json caps the length. A folder
// without them is left as it is; broken files, and settings qkv would otherwise read
// differently from sentence-transformers, are errors.
static int read_sentence_transformers(Model *m, const char *dir, Err *e) {
    static const char *const modes[][2] = {{"pooling_mode_cls_token", "cls"}, {"pooling_mode_mean_tokens", "mean"},
                                           {"pooling_mode_max_tokens", "max"}};
    static const char *const unsupported[] = {"pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens",
                                              "pooling_mode_lasttoken"};
    char *mp = fs_join(dir, "modules.json"), *pcfg = NULL, *sp = NULL;
    int rc = 0;
    Json *mods = NULL, *pc = NULL, *sb = NULL;
    if (!fs_present(mp)) goto done;
    if (!(mods = json_parse_file(mp, e))) goto fail;
    if (mods->type != JSON_ARR) {
        err_set(e, "'%s': a list of modules expected", mp);
        goto fail;
    }
    for (size_t i = 0; i < mods->len; i++) {
        const char *type = json_str_or(&mods->items[i], "type", ""), *sub = json_str_or(&mods->items[i], "path", "");
        if (strstr(type, "Normalize")) m->st_normalize = true;
        if (!strstr(type, "Pooling") || strchr(sub, '/') != strrchr(sub, '/') || strstr(sub, "..")) continue;
        char *pdir = fs_join(dir, sub);
        free(pcfg);
        pcfg = fs_join(pdir, "config.json");
        free(pdir);
        json_free(pc);
        if (!(pc = json_parse_file(pcfg, e))) // sentence-transformers cannot load the module without it
            goto fail;
        for (size_t k = 0; k < sizeof unsupported / sizeof *unsupported; k++)
            if (json_bool_or(pc, unsupported[k], false)) {
                err_set(e, "'%s': %s: this pooling mode is not supported (mean, cls and max are)", pcfg, unsupported[k]);
                goto fail;
            }
        const char *pool = NULL;
        for (size_t k = 0; k < sizeof modes / sizeof *modes; k++) {
            if (!json_bool_or(pc, modes[k][0], false)) continue;
            if (pool) { // sentence-transformers concatenates them: a vector qkv does not make
                err_set(e, "'%s': pools by %s and %s at once (their vectors concatenated): qkv pools by one", pcfg,
                        pool, modes[k][1]);
                goto fail;
            }
            pool = modes[k][1];
        }
        if (!pool) {
            err_set(e, "'%s': no pooling mode is set (pooling_mode_cls_token, _mean_tokens or _max_tokens)", pcfg);
            goto fail;
        }
        snprintf(m->st_pool, sizeof m->st_pool, "%s", pool);
    }
    sp = fs_join(dir, "sentence_bert_config.json");
    if (fs_present(sp) && !(sb = json_parse_file(sp, e))) goto fail;
    const Json *ms = sb ? json_get(sb, "max_seq_length") : NULL;
    long long ml;
    if (ms && ms->type != JSON_NULL) { // null: no cap (the model's context)
        if (!json_int_in(ms, 1, LLONG_MAX, &ml)) {
            err_set(e, "'%s': max_seq_length must be a whole number of tokens >= 1", sp);
            goto fail;
        }
        m->st_max_seq = ml > (1 << 20) ? 1 << 20 : (int)ml; // beyond any context: the context caps it
    }
    goto done;
fail:
    rc = -1;
done:
    json_free(mods);
    json_free(pc);
    json_free(sb);
    free(mp);
    free(pcfg);
    free(sp);
    return rc;
}

Model *model_open(const char *path, const char *tok_path, Err *e) {
    Model *m = model_alloc(path);
    char *dir = NULL, *cfg_path = NULL, *tok_found = NULL;
    Json *cfg = NULL;
    const TensorMap *map = NULL;
    const Gguf *gg = NULL;
    bool l2c = false; // a llama2.c checkpoint
    int n_gguf = 0;
    Buf gguf_names = {0};
    char *gguf_path_in_dir = fs_is_dir(path) ? gguf_in_dir(path, &n_gguf, &gguf_names) : NULL;
    const char *file = gguf_path_in_dir ? gguf_path_in_dir : path;
    size_t fl = strlen(file);
    if (fs_is_file(file) && (gguf_probe(file) || (fl > 5 && !strcmp(file + fl - 5, ".gguf")))) {
        dir = fs_dirname(file);
        if (gguf_model_load(m, file, &map, &gg, e)) goto fail;
    } else if (fs_is_file(path) && llama2c_probe(path)) {
        l2c = true;
        dir = fs_dirname(path);
        if (llama2c_load(m, path, &map, e)) goto fail;
        tok_found = tok_path ? NULL : llama2c_tokenizer_beside(path, m->cfg.n_vocab);
        if (!tok_path && !tok_found) {
            err_set(e, "'%s': a llama2.c checkpoint needs its tokenizer .bin (none beside it): load %s "
                          "tokenizer=TOKENIZER.bin, or --tokenizer TOKENIZER.bin", path, path);
            goto fail;
        }
    } else if (fs_is_dir(path)) {
        dir = xstrdup(path);
        char *p = fs_join(dir, "model.safetensors.index.json");
        int rc;
        if (fs_present(p)) {
            rc = open_shards(m->src, dir, p, e);
        } else {
            free(p);
            p = fs_join(dir, "model.safetensors");
            if (fs_present(p)) rc = wsrc_add_safetensors(m->src, p, e);
            else if (n_gguf > 1)
                rc = err_set(e, "'%s' holds %d GGUF files (%s) and no model.safetensors: name the one to open", path,
                             n_gguf, gguf_names.data);
            else rc = err_set(e, "'%s': no model.safetensors or model.safetensors.index.json", path);
        }
        free(p);
        if (rc) goto fail;
    } else if (fs_is_file(path)) {
        dir = fs_dirname(path);
        size_t n = strlen(path);
        if (other_format(path, e)) goto fail;
        if (n > 11 && !strcmp(path + n - 11, ".index.json") ? open_shards(m->src, dir, path, e)
                                                            : wsrc_add_safetensors(m->src, path, e))
            goto fail;
    } else {
        size_t size; // why: a FIFO or device, a broken link, no permission, or nothing there
        int fd = fs_open_regular(path, &size, e);
        if (fd >= 0) close(fd), err_set(e, "cannot open '%s'", path);
        goto fail;
    }
    cfg_path = fs_join(dir, "config.json");
    if (map) {
        // the configuration came with the weights
    } else if (fs_present(cfg_path)) { // present but unreadable is an error, not a shape to guess
        cfg = json_parse_file(cfg_path, e);
        if (!cfg || read_config(m, cfg, cfg_path, e)) goto fail;
    } else if (infer_config(m, e)) {
        err_prefix(e, "'%s'", path);
        goto fail;
    }
    if (model_bind(m, map ? map : m->family->hf, e)) {
        err_prefix(e, "'%s'", wsrc_n_files(m->src) == 1 ? wsrc_file_path(m->src, 0) : path);
        goto fail;
    }
    m->file_bytes = wsrc_bytes(m->src);
    if (!map && read_sentence_transformers(m, dir, e)) goto fail;
    m->tok = tok_path ? tok_load(tok_path, e) : gg ? tok_from_gguf(gg, e) : tok_load(tok_found ? tok_found : dir, e);
    if (!m->tok) {
        if (!tok_path && !strstr(e ? e->msg : "", dir)) err_prefix(e, "tokenizer of '%s'", path);
        goto fail;
    }
    if (tok_vocab_size(m->tok) > m->cfg.n_vocab) {
        err_set(e, "the tokenizer has %d tokens but the model only %d", tok_vocab_size(m->tok), m->cfg.n_vocab);
        goto fail;
    }
    // a vocab.txt of fewer tokens than the model ending inside a line: a download cut short (it
    // loaded, and words past its end became [UNK] or other pieces; a model may pad its vocabulary,
    // so fewer tokens alone is no error)
    if (tok_vocab_size(m->tok) < m->cfg.n_vocab && tok_unterminated(m->tok)) {
        err_set(e, "the tokenizer of '%s' has %d tokens, the model %d, and its vocab.txt ends inside a line: is the file "
                   "cut short?",
                path, tok_vocab_size(m->tok), m->cfg.n_vocab);
        goto fail;
    }
    // a llama2.c tokenizer.bin holds exactly the checkpoint's vocabulary: fewer is a file cut short
    // (the ids past its end decoded to nothing: garbled text from the right ids)
    const char *l2c_tok = tok_found ? tok_found : tok_path && l2c ? tok_path : NULL;
    size_t tl = l2c_tok ? strlen(l2c_tok) : 0;
    if (l2c && tl > 4 && !strcmp(l2c_tok + tl - 4, ".bin") && tok_vocab_size(m->tok) < m->cfg.n_vocab) {
        err_set(e, "'%s': %d tokens, but the checkpoint's vocabulary has %d (a llama2.c tokenizer holds them all: is "
                   "the file cut short?)",
                l2c_tok, tok_vocab_size(m->tok), m->cfg.n_vocab);
        goto fail;
    }
    json_free(cfg);
    free(cfg_path);
    free(dir);
    free(tok_found);
    free(gguf_path_in_dir);
    buf_free(&gguf_names);
    return m;
fail:
    json_free(cfg);
    free(cfg_path);
    free(dir);
    free(tok_found);
    free(gguf_path_in_dir);
    buf_free(&gguf_names);
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
    Buf cfg = {0}, st = {.fallible = true}; // the weights: sized by the model's shapes
    Tokenizer *tok = tok_bytes_new();
    Json *cj = NULL;
    np.n_vocab = tok_vocab_size(tok);
    np.bos_id = tok_bos(tok);
    np.eos_id = tok_eos(tok);
    if (newmodel_build(&np, &cfg, &st, e)) goto fail;
    free(m->name);
    m->name = xstrdup("untrained-gpt2-tiny");
    m->builtin = true;
    m->owned_bytes = st.data;
    m->file_bytes = (int64_t)st.len;
    st.data = NULL;
    if (wsrc_add_safetensors_mem(m->src, m->owned_bytes, (size_t)m->file_bytes, "(built-in)", e)) goto fail;
    cj = json_parse(cfg.data, cfg.len, e);
    if (!cj || read_config(m, cj, "(built-in config)", e) || model_bind(m, m->family->hf, e)) goto fail;
    m->untrained = true;
    m->tok = tok;
    json_free(cj);
    buf_free(&cfg);
    return m;
fail:
    json_free(cj);
    tok_free(tok);
    buf_free(&cfg);
    buf_free(&st);
    model_free(m);
    return NULL;
}
