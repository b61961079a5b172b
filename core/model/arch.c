// arch.c - the family table and what every family's config reader shares.
#include "model/arch.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/gguf.h"

extern const Family family_gpt2, family_llama, family_mistral, family_qwen2, family_bert;

// Adding a family: its file (descriptor defaults, config reader, tensor-name map) and one
// line here.
static const Family *const families[] = {&family_gpt2, &family_llama, &family_mistral, &family_qwen2, &family_bert};

const Family *family_at(int i) {
    return i >= 0 && i < (int)(sizeof families / sizeof *families) ? families[i] : NULL;
}

const Family *family_find(const char *model_type) {
    const Family *f;
    for (int i = 0; (f = family_at(i)); i++)
        if (!strcmp(f->model_type, model_type)) return f;
    return NULL;
}

const Family *family_find_class(const char *name) {
    static const char *const after[] = {"For", "Model", "LMHead"};
    for (const Family *const *f = families; f < families + sizeof families / sizeof *families; f++) {
        size_t n = strlen((*f)->hf_class);
        if (strncmp(name, (*f)->hf_class, n)) continue;
        for (size_t i = 0; i < sizeof after / sizeof *after; i++)
            if (!strncmp(name + n, after[i], strlen(after[i]))) return *f;
    }
    return NULL;
}

const Family *family_find_gguf(const char *arch) {
    const Family *f;
    for (int i = 0; (f = family_at(i)); i++)
        if (f->gguf && !strcmp(f->gguf->arch, arch)) return f;
    return NULL;
}

const char *norm_kind_name(NormKind k) { return k == NORM_RMS ? "rmsnorm" : "layernorm"; }

const char *pos_kind_name(PosKind k) {
    switch (k) {
    case POS_LEARNED: return "learned";
    case POS_ROTARY: return "rotary";
    case POS_NONE: break;
    }
    return "none";
}

const char *act_kind_name(ActKind k) {
    switch (k) {
    case ACT_GELU_ERF: return "gelu";
    case ACT_SWIGLU: return "swiglu";
    case ACT_GELU_TANH: break;
    }
    return "gelu_tanh";
}

const char *weight_name(WeightId w) {
    static const char *const names[W_COUNT] = {
        [W_TOK_EMBD] = "tok_embd",     [W_POS_EMBD] = "pos_embd",       [W_TYPE_EMBD] = "type_embd",
        [W_EMB_NORM] = "emb_norm",     [W_EMB_NORM_B] = "emb_norm.bias", [W_OUT_NORM] = "out_norm",
        [W_OUT_NORM_B] = "out_norm.bias", [W_HEAD_DENSE] = "head_dense", [W_HEAD_DENSE_B] = "head_dense.bias",
        [W_HEAD_NORM] = "head_norm",   [W_HEAD_NORM_B] = "head_norm.bias", [W_OUTPUT] = "output",
        [W_OUTPUT_B] = "output.bias",  [W_ATTN_NORM] = "attn_norm",     [W_ATTN_NORM_B] = "attn_norm.bias",
        [W_QKV] = "attn_qkv",          [W_QKV_B] = "attn_qkv.bias",     [W_Q] = "attn_q",
        [W_Q_B] = "attn_q.bias",       [W_K] = "attn_k",                [W_K_B] = "attn_k.bias",
        [W_V] = "attn_v",              [W_V_B] = "attn_v.bias",         [W_O] = "attn_output",
        [W_O_B] = "attn_output.bias",  [W_FFN_NORM] = "ffn_norm",       [W_FFN_NORM_B] = "ffn_norm.bias",
        [W_UP] = "ffn_up",             [W_UP_B] = "ffn_up.bias",        [W_GATE] = "ffn_gate",
        [W_GATE_B] = "ffn_gate.bias",  [W_DOWN] = "ffn_down",           [W_DOWN_B] = "ffn_down.bias",
    };
    return w >= 0 && w < W_COUNT && names[w] ? names[w] : "?";
}

void config_init(ModelConfig *c, const Family *f) {
    memset(c, 0, sizeof *c);
    c->a = f->arch;
}

int config_check(const ModelConfig *c, const char *file, Err *e) {
    if (c->n_layer < 1 || c->n_head < 1 || c->n_embd < 1 || c->n_ctx < 1 || c->n_vocab < 1 || c->n_ff < 1)
        return err_set(e, "'%s': sizes must be positive", file);
    if (c->n_kv_head < 1 || c->n_head % c->n_kv_head)
        return err_set(e, "'%s': %d key/value heads do not divide %d heads", file, c->n_kv_head, c->n_head);
    if (c->n_kv_head != c->n_head && !c->a.gqa)
        return err_set(e, "'%s': %d key/value heads for %d heads, but %s has a key/value head for each query head (no "
                       "grouped-query attention)", file, c->n_kv_head, c->n_head, c->a.name);
    if (c->head_dim < 1 || c->head_dim > 1024) return err_set(e, "'%s': head size %d is out of range", file, c->head_dim);
    if (c->a.pos == POS_ROTARY) {
        int rd = c->a.rope_dim ? c->a.rope_dim : c->head_dim;
        if (rd % 2) // rotary positions turn dimensions in pairs
            return err_set(e, "'%s': %d rotary dimensions%s: rotary positions need an even number", file, rd,
                           rd == c->head_dim ? " (the head size)" : "");
        if (rd > c->head_dim)
            return err_set(e, "'%s': %d rotary dimensions do not fit a head of %d", file, rd, c->head_dim);
        if (!(c->a.rope_theta > 0)) return err_set(e, "'%s': rope_theta must be positive", file);
    }
    if (!(c->a.norm_eps > 0 && c->a.norm_eps < 1)) return err_set(e, "'%s': norm epsilon must be in (0, 1)", file);
    if (c->a.token_types && c->n_types < 1) return err_set(e, "'%s': no token types", file);
    return 0;
}

int config_int(const Json *cfg, const char *const *keys, long long lo, long long hi, bool required, int *out,
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

// ---------------------------------------------------------------------------------------
// The weights of a configuration

typedef struct {
    int (*fn)(void *user, const WeightSlot *s);
    void *user;
    int rc;
} Plan;

static void slot(Plan *P, WeightId w, int layer, WeightKind kind, int64_t rows, int in, int out, bool required, bool gain) {
    if (P->rc) return;
    WeightSlot s = {w, layer, kind, rows, in, out, required, gain};
    P->rc = P->fn(P->user, &s);
}

// A norm's gain and, for LayerNorm with shifts, its bias (the next weight id).
static void norm_slots(Plan *P, const ModelConfig *c, WeightId w, int layer) {
    slot(P, w, layer, WK_VEC, c->n_embd, 0, 0, true, true);
    if (c->a.norm == NORM_LAYER && (c->a.biases & BIAS_NORM)) slot(P, (WeightId)(w + 1), layer, WK_VEC, c->n_embd, 0, 0, true, false);
}

// A linear layer and, when bias, its bias (the next weight id).
static void linear_slots(Plan *P, WeightId w, int layer, int in, int out, bool bias) {
    slot(P, w, layer, WK_LINEAR, 0, in, out, true, false);
    if (bias) slot(P, (WeightId)(w + 1), layer, WK_VEC, out, 0, 0, true, false);
}

int arch_plan(const ModelConfig *c, int (*fn)(void *user, const WeightSlot *s), void *user) {
    const Arch *a = &c->a;
    Plan P = {fn, user, 0};
    int d = c->n_embd, qd = c->n_head * c->head_dim, kvd = c->n_kv_head * c->head_dim;
    bool bqkv = a->biases & BIAS_QKV, bo = a->biases & BIAS_O, bffn = a->biases & BIAS_FFN;
    slot(&P, W_TOK_EMBD, -1, WK_EMBED, c->n_vocab, 0, 0, true, false);
    if (a->pos == POS_LEARNED) slot(&P, W_POS_EMBD, -1, WK_EMBED, c->n_ctx, 0, 0, true, false);
    if (a->token_types) slot(&P, W_TYPE_EMBD, -1, WK_EMBED, c->n_types, 0, 0, true, false);
    if (a->emb_norm) norm_slots(&P, c, W_EMB_NORM, -1);
    for (int l = 0; l < c->n_layer; l++) {
        norm_slots(&P, c, W_ATTN_NORM, l);
        if (a->fused_qkv) {
            linear_slots(&P, W_QKV, l, d, qd + 2 * kvd, bqkv);
        } else {
            linear_slots(&P, W_Q, l, d, qd, bqkv);
            linear_slots(&P, W_K, l, d, kvd, bqkv);
            linear_slots(&P, W_V, l, d, kvd, bqkv);
        }
        linear_slots(&P, W_O, l, qd, d, bo);
        norm_slots(&P, c, W_FFN_NORM, l);
        linear_slots(&P, W_UP, l, d, c->n_ff, bffn);
        if (a->act == ACT_SWIGLU) linear_slots(&P, W_GATE, l, d, c->n_ff, bffn);
        linear_slots(&P, W_DOWN, l, c->n_ff, d, bffn);
    }
    if (a->final_norm) norm_slots(&P, c, W_OUT_NORM, -1);
    if (a->lm_head) {
        if (a->head_transform) {
            linear_slots(&P, W_HEAD_DENSE, -1, d, d, true);
            norm_slots(&P, c, W_HEAD_NORM, -1);
        }
        // tied checkpoints may still carry a copy of the head
        slot(&P, W_OUTPUT, -1, WK_EMBED, c->n_vocab, 0, 0, !a->tied, false);
        if (a->biases & BIAS_HEAD) slot(&P, W_OUTPUT_B, -1, WK_VEC, c->n_vocab, 0, 0, true, false);
    }
    return P.rc;
}

void rope_permute_head(float *v, int rot, int64_t c, bool to_pairs, float *tmp) {
    int half = rot / 2;
    memcpy(tmp, v, sizeof *v * (size_t)(rot * c));
    for (int j = 0; j < half; j++)
        for (int s = 0; s < 2; s++) {
            int pair = 2 * j + s, halves = s * half + j;
            int dst = to_pairs ? pair : halves, src = to_pairs ? halves : pair;
            memcpy(v + dst * c, tmp + src * c, sizeof *v * (size_t)c);
        }
}

void rope_freqs(const Arch *a, int rot, float *inv) {
    int half = rot / 2;
    for (int i = 0; i < half; i++) inv[i] = 1.0f / powf(a->rope_theta, (float)(2 * i) / (float)rot);
    if (a->rope_scaling == ROPE_SCALE_LINEAR) {
        for (int i = 0; i < half; i++) inv[i] /= a->rope_factor;
    } else if (a->rope_scaling == ROPE_SCALE_FACTORS) {
        for (int i = 0; i < half; i++) inv[i] /= a->rope_factors[i];
    } else if (a->rope_scaling == ROPE_SCALE_LLAMA3) {
        // Llama 3.1: long wavelengths divided by the factor, short ones kept, a smooth ramp between
        float f = a->rope_factor, lo = a->rope_low_freq, hi = a->rope_high_freq, old = (float)a->rope_orig_ctx;
        float lo_wl = old / lo, hi_wl = old / hi;
        for (int i = 0; i < half; i++) {
            float wl = 2.0f * (float)M_PI / inv[i];
            if (wl > lo_wl) {
                inv[i] /= f;
            } else if (wl >= hi_wl) {
                float s = (old / wl - lo) / (hi - lo);
                inv[i] = (1.0f - s) * inv[i] / f + s * inv[i];
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// GGUF metadata: the keys llama.cpp's converter writes, alike for every family

// "{arch}.name" into buf.
static const char *akey(char *buf, size_t n, const char *arch, const char *name) {
    snprintf(buf, n, "%s.%s", arch, name);
    return buf;
}

// An integer key of the architecture into *out (kept when absent and not required).
static int gguf_int_key(const struct Gguf *g, const char *arch, const char *name, long long lo, long long hi,
                        bool required, int *out, Err *e) {
    char k[128];
    long long v;
    int r = gguf_get_int(g, akey(k, sizeof k, arch, name), lo, hi, &v, e);
    if (r < 0) return -1;
    if (r == 0) return required ? err_set(e, "'%s': missing key '%s'", gguf_path(g), k) : 0;
    *out = (int)v;
    return 1;
}

static int gguf_float_key(const struct Gguf *g, const char *arch, const char *name, float *out, Err *e) {
    char k[128];
    double v;
    int r = gguf_get_float(g, akey(k, sizeof k, arch, name), &v, e);
    if (r == 1) *out = (float)v;
    return r;
}

// Whether the file has the tensor the map names for w (of layer 0 for per-layer weights).
static bool has_tensor(const struct Gguf *g, const TensorMap *map, WeightId w) {
    char name[160];
    if (!map->names[w]) return false;
    snprintf(name, sizeof name, map->names[w], 0);
    return gguf_find_tensor(g, name) != NULL;
}

// The blocks the tensors of g hold: one more than the largest N of a name that starts as the
// map's per-block names do ("blk.N."), 0 when there is none. *prefix gets that start.
static int blocks_held(const struct Gguf *g, const TensorMap *map, char *prefix, size_t cap) {
    const char *fmt = map->names[W_ATTN_NORM], *d = fmt ? strstr(fmt, "%d") : NULL;
    snprintf(prefix, cap, "%.*s", d ? (int)(d - fmt) : 0, fmt ? fmt : "");
    size_t pl = strlen(prefix);
    int held = 0;
    for (int i = 0; d && i < gguf_n_tensors(g); i++) {
        const char *s = gguf_tensor(g, i)->name;
        if (strncmp(s, prefix, pl)) continue;
        long n = 0;
        int k = 0;
        for (s += pl; k < 9 && s[k] >= '0' && s[k] <= '9'; k++) n = n * 10 + (s[k] - '0');
        if (k && s[k] == '.' && n >= held) held = (int)n + 1;
    }
    return held;
}

// Rotary scaling as llama.cpp stores it: rope.scaling.type linear with its factor, or a
// tensor of per-frequency divisors (Llama 3.1's rope_freqs).
static int read_gguf_rope(const GgufFamily *gf, const struct Gguf *g, ModelConfig *c, Err *e) {
    Arch *a = &c->a;
    const char *path = gguf_path(g);
    char k[128];
    const char *type = NULL;
    size_t tl = 0;
    if (gguf_get_str(g, akey(k, sizeof k, gf->arch, "rope.scaling.type"), &type, &tl, e) < 0) return -1;
    if (type && !(tl == 4 && !memcmp(type, "none", 4))) {
        float f = 1;
        if (!(tl == 6 && !memcmp(type, "linear", 6)))
            return err_set(e, "'%s': rope.scaling.type '%.*s' is not supported (linear and none are)", path,
                           (int)(tl > 20 ? 20 : tl), type);
        if (gguf_float_key(g, gf->arch, "rope.scaling.factor", &f, e) < 0) return -1;
        if (!(f >= 1 && f <= 1024)) return err_set(e, "'%s': rope.scaling.factor %g is out of range", path, f);
        a->rope_scaling = ROPE_SCALE_LINEAR;
        a->rope_factor = f;
    }
    const GgufTensor *t = gf->rope_freqs ? gguf_find_tensor(g, gf->rope_freqs) : NULL;
    if (t) {
        int rot = a->rope_dim ? a->rope_dim : c->head_dim;
        if (t->type != 0 || t->ndim != 1 || t->ne[0] != rot / 2)
            return err_set(e, "'%s': tensor '%s' must be F32 of %d values", path, gf->rope_freqs, rot / 2);
        if (a->rope_scaling != ROPE_SCALE_NONE)
            return err_set(e, "'%s': both rope.scaling.type and '%s' scale the rotary frequencies", path, gf->rope_freqs);
        const float *v = t->data; // aligned: the data and every offset are multiples of the alignment
        for (int i = 0; i < rot / 2; i++)
            if (!(v[i] > 0 && v[i] < 1e6f)) return err_set(e, "'%s': tensor '%s' holds a divisor out of range", path, gf->rope_freqs);
        a->rope_scaling = ROPE_SCALE_FACTORS;
        a->rope_factors = v;
    }
    return 0;
}

int config_read_gguf(const Family *f, const struct Gguf *g, ModelConfig *c, Err *e) {
    const GgufFamily *gf = f->gguf;
    const char *arch = gf->arch, *path = gguf_path(g);
    config_init(c, f);
    Arch *a = &c->a;
    char k[128];
    if (gguf_int_key(g, arch, "block_count", 1, 1000, true, &c->n_layer, e) < 0 ||
        gguf_int_key(g, arch, "context_length", 1, 1 << 24, true, &c->n_ctx, e) < 0 ||
        gguf_int_key(g, arch, "embedding_length", 1, 1 << 16, true, &c->n_embd, e) < 0 ||
        gguf_int_key(g, arch, "feed_forward_length", 1, 1 << 20, true, &c->n_ff, e) < 0 ||
        gguf_int_key(g, arch, "attention.head_count", 1, 1024, true, &c->n_head, e) < 0)
        return -1;
    // every block the tensors hold is used: a smaller count would run a model cut short
    char blk[32];
    int held = blocks_held(g, gf->names, blk, sizeof blk);
    if (held != c->n_layer) {
        if (!held) return err_set(e, "'%s': %s.block_count is %d but it holds no block tensors (%sN.*)", path, arch, c->n_layer, blk);
        return err_set(e, "'%s': %s.block_count is %d but its tensors run to %s%d.* (%d block%s)", path, arch, c->n_layer,
                       blk, held - 1, held, held == 1 ? "" : "s");
    }
    c->n_kv_head = c->n_head;
    if (gguf_int_key(g, arch, "attention.head_count_kv", 1, 1024, false, &c->n_kv_head, e) < 0) return -1;
    int hd = 0, vd = 0;
    if (gguf_int_key(g, arch, "attention.key_length", 1, 1024, false, &hd, e) < 0 ||
        gguf_int_key(g, arch, "attention.value_length", 1, 1024, false, &vd, e) < 0)
        return -1;
    if (vd && vd != (hd ? hd : c->n_embd / c->n_head))
        return err_set(e, "'%s': attention.value_length %d differs from the key length (not supported)", path, vd);
    if (!hd && c->n_embd % c->n_head)
        return err_set(e, "'%s': embedding_length %d is not a multiple of attention.head_count %d", path, c->n_embd,
                       c->n_head);
    c->head_dim = hd ? hd : c->n_embd / c->n_head;
    // the norm's epsilon: the key of the family's kind of norm
    const char *eps_key = a->norm == NORM_RMS ? "attention.layer_norm_rms_epsilon" : "attention.layer_norm_epsilon";
    if (gguf_float_key(g, arch, eps_key, &a->norm_eps, e) < 0) return -1;
    bool causal = a->causal;
    if (gguf_get_bool(g, akey(k, sizeof k, arch, "attention.causal"), &causal, e) < 0) return -1;
    if (causal != a->causal)
        return err_set(e, "'%s': %s is %s: %s attention is not supported for %s", path, k, causal ? "true" : "false",
                       causal ? "causal" : "bidirectional", arch);
    if (a->pos == POS_ROTARY) {
        a->rope_style = gf->rope_style;
        if (gguf_float_key(g, arch, "rope.freq_base", &a->rope_theta, e) < 0) return -1;
        int rd = 0;
        if (gguf_int_key(g, arch, "rope.dimension_count", 1, 1024, false, &rd, e) < 0) return -1;
        if (rd > c->head_dim)
            return err_set(e, "'%s': rope.dimension_count %d exceeds the head size %d", path, rd, c->head_dim);
        a->rope_dim = rd == c->head_dim ? 0 : rd;
        if (gguf_int_key(g, arch, "attention.sliding_window", 1, 1 << 24, false, &a->window, e) < 0) return -1;
        if (a->window >= c->n_ctx) a->window = 0;
        if (read_gguf_rope(gf, g, c, e)) return -1;
    }
    // the vocabulary: the key, else the token embedding's rows, else the tokenizer's size
    const GgufTensor *te = NULL;
    char tn[160];
    if (gf->names->names[W_TOK_EMBD]) {
        snprintf(tn, sizeof tn, "%s", gf->names->names[W_TOK_EMBD]);
        te = gguf_find_tensor(g, tn);
    }
    int r = gguf_int_key(g, arch, "vocab_size", 1, 1 << 24, false, &c->n_vocab, e);
    if (r < 0) return -1;
    if (r == 0 && te && te->ndim == 2 && te->ne[1] >= 1 && te->ne[1] <= 1 << 24) c->n_vocab = (int)te->ne[1];
    GgufArr toks;
    if (!c->n_vocab && (r = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STR, &toks, e)) < 0) return -1;
    if (!c->n_vocab && r == 1 && toks.n >= 1 && toks.n <= 1 << 24) c->n_vocab = (int)toks.n;
    if (!c->n_vocab)
        return err_set(e, "'%s': no vocabulary size (%s.vocab_size, a token embedding or tokenizer.ggml.tokens)", path,
                       arch);
    if (a->token_types) {
        c->n_types = 2;
        long long nt;
        r = gguf_get_int(g, "tokenizer.ggml.token_type_count", 1, 1 << 16, &nt, e);
        if (r < 0) return -1;
        if (r) c->n_types = (int)nt;
    }
    // what the tensors say: a head (a layout without one has none), biases llama.cpp allows
    a->lm_head = a->lm_head && gf->names->names[W_OUTPUT];
    // a layout that always stores the head (gpt2's) may hold the embedding's copy: model_bind
    // ties a head that is one
    if (a->lm_head) a->tied = !has_tensor(g, gf->names, W_OUTPUT) || gf->head_copy;
    if (has_tensor(g, gf->names, W_Q_B) || has_tensor(g, gf->names, W_QKV_B)) a->biases |= BIAS_QKV;
    if (has_tensor(g, gf->names, W_O_B)) a->biases |= BIAS_O;
    if (has_tensor(g, gf->names, W_UP_B)) a->biases |= BIAS_FFN;
    return config_check(c, path, e);
}

void config_write_gguf(const Family *f, const ModelConfig *c, struct GgufW *w) {
    const char *arch = f->gguf->arch;
    const Arch *a = &c->a;
    char k[128];
    gguf_w_str(w, "general.architecture", arch, strlen(arch));
    gguf_w_u32(w, akey(k, sizeof k, arch, "vocab_size"), (uint32_t)c->n_vocab);
    gguf_w_u32(w, akey(k, sizeof k, arch, "block_count"), (uint32_t)c->n_layer);
    gguf_w_u32(w, akey(k, sizeof k, arch, "context_length"), (uint32_t)c->n_ctx);
    gguf_w_u32(w, akey(k, sizeof k, arch, "embedding_length"), (uint32_t)c->n_embd);
    gguf_w_u32(w, akey(k, sizeof k, arch, "feed_forward_length"), (uint32_t)c->n_ff);
    gguf_w_u32(w, akey(k, sizeof k, arch, "attention.head_count"), (uint32_t)c->n_head);
    gguf_w_u32(w, akey(k, sizeof k, arch, "attention.head_count_kv"), (uint32_t)c->n_kv_head);
    if (c->head_dim * c->n_head != c->n_embd) {
        gguf_w_u32(w, akey(k, sizeof k, arch, "attention.key_length"), (uint32_t)c->head_dim);
        gguf_w_u32(w, akey(k, sizeof k, arch, "attention.value_length"), (uint32_t)c->head_dim);
    }
    gguf_w_f32(w, akey(k, sizeof k, arch, a->norm == NORM_RMS ? "attention.layer_norm_rms_epsilon"
                                                                : "attention.layer_norm_epsilon"),
               a->norm_eps);
    if (!a->causal) gguf_w_bool(w, akey(k, sizeof k, arch, "attention.causal"), false);
    if (a->pos == POS_ROTARY) {
        gguf_w_f32(w, akey(k, sizeof k, arch, "rope.freq_base"), a->rope_theta);
        gguf_w_u32(w, akey(k, sizeof k, arch, "rope.dimension_count"), (uint32_t)(a->rope_dim ? a->rope_dim : c->head_dim));
        if (a->rope_scaling == ROPE_SCALE_LINEAR) {
            gguf_w_str(w, akey(k, sizeof k, arch, "rope.scaling.type"), "linear", 6);
            gguf_w_f32(w, akey(k, sizeof k, arch, "rope.scaling.factor"), a->rope_factor);
        }
        if (a->window) gguf_w_u32(w, akey(k, sizeof k, arch, "attention.sliding_window"), (uint32_t)a->window);
    }
    if (a->token_types) gguf_w_u32(w, "tokenizer.ggml.token_type_count", (uint32_t)c->n_types);
}
