// arch.c - the family table and what every family's config reader shares.
#include "model/arch.h"

#include <math.h>
#include <string.h>

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
    if (c->head_dim < 1 || c->head_dim > 1024) return err_set(e, "'%s': head size %d is out of range", file, c->head_dim);
    if (c->a.pos == POS_ROTARY) {
        int rd = c->a.rope_dim ? c->a.rope_dim : c->head_dim;
        if (rd % 2 || rd > c->head_dim)
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

void rope_freqs(const Arch *a, int rot, float *inv) {
    int half = rot / 2;
    for (int i = 0; i < half; i++) inv[i] = 1.0f / powf(a->rope_theta, (float)(2 * i) / (float)rot);
    if (a->rope_scaling == ROPE_SCALE_LINEAR) {
        for (int i = 0; i < half; i++) inv[i] /= a->rope_factor;
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
