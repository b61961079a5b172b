// tmodel.c - the trained model: parameter and gradient arenas, activations, and the forward
// and backward passes over them (see tmodel.h).
#include "train/tmodel.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "base/fs.h"
#include "base/json.h"
#include "base/mem.h"
#include "kern/blasmem.h"
#include "kern/ops.h"
#include "kern/pool.h"
#include "model/newmodel.h"
#include "tok/tokenizer.h"
#include "train/layers.h"

// The activations of one batch (and, with the same layout, their gradients). N = B*T rows,
// L layers; per-layer buffers are L slices one after the other.
// Post-norm blocks (BERT) keep the sums the norms read in ln1 (x + attention) and ln2 (xmid +
// feed-forward), xmid and x[l+1] being their norms.
typedef struct Acts {
    float *emb, *emb_mean, *emb_rstd; // (N, d), (N), (N): the embeddings' sum before their norm (emb_norm)
    float *x;                         // (L+1, N, d): the residual stream, x[l] the input of block l
    float *ln1, *ln1_mean, *ln1_rstd; // (L, N, d), (L, N), (L, N)
    float *qkv;                       // (L, N, qd + 2 kvd): q | k | v (see qkv_views)
    float *att;                       // (L, B, H, T, T): attention probabilities
    float *z;                         // (L, N, qd): attention-weighted values
    float *xmid;                      // (L, N, d): the stream after the attention sublayer
    float *ln2, *ln2_mean, *ln2_rstd; // (L, N, d), (L, N), (L, N)
    float *up, *gate, *h;             // (L, N, ff): up, gate (SwiGLU), the activation's output
    float *tmp;                       // (N, d): a sublayer's output
    float *lnf, *lnf_mean, *lnf_rstd; // (N, d), (N), (N)
    float *logits;                    // (N, V): logits, then probabilities
    float *losses;                    // (N)
} Acts;

struct TrainModel {
    ModelConfig cfg;
    const TensorMap *map;
    int threads;
    Pool *pool;        // the passes' team: OpenBLAS runs single-threaded inside its shares
    size_t n;          // floats per arena
    float *params, *grads;
    TParam *tensors;
    int n_tensors;
    int64_t *off;      // [(n_layer + 1) * W_COUNT]: arena offset of (layer + 1, w), -1 absent
    // the batch
    int B, T, cap_rows, cap_T, cap_B;
    float *act_mem, *dact_mem;
    Acts a, d;
    int *inputs, *targets;
    int *types, *lens;  // (B*T) segment ids, (B) valid tokens of each sequence (encoders)
    int counted;
    bool have_targets;
    float *rope_cos, *rope_sin, *rope_nsin; // (T, rot/2); nsin = -sin for the backward
    int rope_T;
};

// ---------------------------------------------------------------------------------------
// The arena

static int64_t *off_at(TrainModel *m, WeightId w, int layer) { return &m->off[(size_t)(layer + 1) * W_COUNT + w]; }

float *tmodel_param(TrainModel *m, WeightId w, int layer) {
    int64_t o = *off_at(m, w, layer);
    return o < 0 ? NULL : m->params + o;
}

float *tmodel_grad(TrainModel *m, WeightId w, int layer) {
    int64_t o = *off_at(m, w, layer);
    return o < 0 ? NULL : m->grads + o;
}

static int plan_tensor(void *user, const WeightSlot *s) {
    TrainModel *m = user;
    if (!s->required) return 0; // a tied head has no tensor of its own
    size_t n = s->kind == WK_EMBED ? (size_t)s->rows * m->cfg.n_embd
             : s->kind == WK_LINEAR ? (size_t)s->in * s->out
                                    : (size_t)s->rows;
    m->tensors = xrealloc(m->tensors, sizeof *m->tensors * (size_t)(m->n_tensors + 1));
    m->tensors[m->n_tensors++] = (TParam){*s, m->n, n, s->kind != WK_VEC};
    *off_at(m, s->w, s->layer) = (int64_t)m->n;
    m->n += n;
    return 0;
}

int tmodel_check(const ModelConfig *c, bool lm, Err *e) {
    const Arch *a = &c->a;
    bool enc = !lm && !a->causal;
    const char *why = !a->causal && lm ? "bidirectional attention"
                    : a->post_norm && !enc ? "post-norm blocks"
                    : a->emb_norm && !enc ? "an embedding norm"
                    : a->token_types && !enc ? "token types"
                    : a->act == ACT_GELU_ERF && !enc ? "erf GELU"
                    : a->head_transform && !enc ? "a head transform"
                    : !a->lm_head && !enc ? "no language-model head"
                    : a->window ? "sliding-window attention"
                    : (a->biases & BIAS_HEAD) && !enc ? "a head bias"
                    : a->pos == POS_ROTARY && enc ? "rotary positions in an encoder"
                    : NULL;
    if (why) return err_set(e, "%s models are not trainable (%s)", a->name, why);
    return 0;
}

static TrainModel *new_model(const ModelConfig *c0, const TensorMap *map, int threads, bool lm, Err *e) {
    if (tmodel_check(c0, lm, e)) return NULL;
    if (config_check(c0, "train", e)) return NULL;
    ModelConfig cc = *c0, *c = &cc;
    if (!c->a.causal) c->a.lm_head = c->a.head_transform = false; // an encoder's body: its masked-LM head is not read
    if (threads <= 0) threads = pool_cpus();
    if (blas_reserve(threads, e)) return NULL;
    TrainModel *m = xcalloc(1, sizeof *m);
    m->cfg = *c;
    m->map = map;
    // one team owns the cores: OpenBLAS runs single-threaded inside its shares (as ctx_new)
    openblas_set_num_threads(1);
    m->pool = pool_new(threads);
    m->threads = pool_size(m->pool);
    size_t noff = (size_t)(c->n_layer + 1) * W_COUNT;
    m->off = xmalloc(sizeof *m->off * noff);
    for (size_t i = 0; i < noff; i++) m->off[i] = -1;
    arch_plan(c, plan_tensor, m);
    m->params = calloc(m->n, sizeof(float));
    m->grads = calloc(m->n, sizeof(float));
    if (!m->params || !m->grads) {
        tmodel_free(m);
        err_set(e, "out of memory for %zu parameters", m->n);
        return NULL;
    }
    return m;
}

TrainModel *tmodel_new(const ModelConfig *c, const TensorMap *map, int threads, Err *e) {
    return new_model(c, map, threads, true, e);
}

TrainModel *tmodel_new_body(const ModelConfig *c, const TensorMap *map, int threads, Err *e) {
    return new_model(c, map, threads, false, e);
}

static TrainModel *from_model(const Model *mod, int threads, bool lm, Err *e) {
    TrainModel *m = new_model(&mod->cfg, mod->family->hf, threads, lm, e);
    if (!m) return NULL;
    // the arena holds HF's layout: a GGUF GPT-2's linears come [out, in] and are read as HF's
    // Conv1D [in, out]; a GGUF Llama's (or llama2.c's) q and k come in adjacent-pair rotary
    // order, put back into rotary halves, which the checkpoints' config.json implies
    const ModelConfig *c = &mod->cfg;
    bool unpair = c->a.pos == POS_ROTARY && c->a.rope_style == ROPE_PAIRS;
    int rot = c->a.rope_dim ? c->a.rope_dim : c->head_dim;
    for (int i = 0; i < m->n_tensors; i++) {
        const TParam *t = &m->tensors[i];
        float *v = m->params + t->off;
        if (model_weight_f32(mod, &t->s, m->map->in_out, v)) {
            err_set(e, "'%s' has no %s (layer %d)", mod->path, weight_name(t->s.w), t->s.layer);
            tmodel_free(m);
            return NULL;
        }
        WeightId w = t->s.w;
        if (unpair && (w == W_Q || w == W_K || w == W_Q_B || w == W_K_B)) {
            int heads = w == W_Q || w == W_Q_B ? c->n_head : c->n_kv_head;
            int64_t per_row = t->s.kind == WK_VEC ? 1 : t->s.in; // [out, in] rows of in values; a bias one each
            float *tmp = xmalloc(sizeof *tmp * (size_t)(rot * per_row));
            for (int h = 0; h < heads; h++) rope_permute_head(v + (int64_t)h * c->head_dim * per_row, rot, per_row, false, tmp);
            free(tmp);
        }
    }
    if (unpair) m->cfg.a.rope_style = ROPE_HALF;
    return m;
}

TrainModel *tmodel_from_model(const Model *mod, int threads, Err *e) { return from_model(mod, threads, true, e); }
TrainModel *tmodel_body_from_model(const Model *mod, int threads, Err *e) { return from_model(mod, threads, false, e); }

void tmodel_free(TrainModel *m) {
    if (!m) return;
    pool_free(m->pool);
    free(m->params);
    free(m->grads);
    free(m->tensors);
    free(m->off);
    free(m->act_mem);
    free(m->dact_mem);
    free(m->inputs);
    free(m->targets);
    free(m->types);
    free(m->lens);
    free(m->rope_cos);
    free(m->rope_sin);
    free(m->rope_nsin);
    free(m);
}

const ModelConfig *tmodel_config(const TrainModel *m) { return &m->cfg; }
const TensorMap *tmodel_map(const TrainModel *m) { return m->map; }
Pool *tmodel_pool(TrainModel *m) { return m->pool; }
int tmodel_threads(const TrainModel *m) { return m->threads; }
size_t tmodel_size(const TrainModel *m) { return m->n; }
float *tmodel_params(TrainModel *m) { return m->params; }
float *tmodel_grads(TrainModel *m) { return m->grads; }
int tmodel_n_tensors(const TrainModel *m) { return m->n_tensors; }
const TParam *tmodel_tensor(const TrainModel *m, int i) { return i >= 0 && i < m->n_tensors ? &m->tensors[i] : NULL; }
void tmodel_zero_grad(TrainModel *m) { memset(m->grads, 0, sizeof(float) * m->n); }
const float *tmodel_logits(const TrainModel *m) { return m->have_targets ? NULL : m->a.logits; }

// ---------------------------------------------------------------------------------------
// Activations

// Lays out the activations of B sequences of T tokens from base (NULL: only counts); returns
// the floats needed, or 0 on overflow.
static size_t acts_layout(Acts *a, float *base, const ModelConfig *c, int B, int T) {
    size_t N = (size_t)B * T, L = (size_t)c->n_layer, d = (size_t)c->n_embd;
    size_t qd = (size_t)c->n_head * c->head_dim, kvd = (size_t)c->n_kv_head * c->head_dim;
    size_t ff = (size_t)c->n_ff, V = (size_t)c->n_vocab, H = (size_t)c->n_head;
    size_t at = 0;
    bool ok = true;
    // each buffer at the current offset, then the offset moves past it
    bool en = c->a.emb_norm;
#define TAKE(field, count)                                      \
    do {                                                        \
        size_t cnt_ = (count);                                  \
        a->field = base ? base + at : NULL;                     \
        if (cnt_ > SIZE_MAX / 8 - at) ok = false;               \
        else at += cnt_;                                        \
    } while (0)
    TAKE(emb, en ? N * d : 0);
    TAKE(emb_mean, en ? N : 0);
    TAKE(emb_rstd, en ? N : 0);
    TAKE(x, mem_mul(L + 1, mem_mul(N, d)));
    TAKE(ln1, mem_mul(L, N * d));
    TAKE(ln1_mean, L * N);
    TAKE(ln1_rstd, L * N);
    TAKE(qkv, mem_mul(L, mem_mul(N, qd + 2 * kvd)));
    TAKE(att, mem_mul(L * B, mem_mul(H, (size_t)T * T)));
    TAKE(z, mem_mul(L, N * qd));
    TAKE(xmid, mem_mul(L, N * d));
    TAKE(ln2, mem_mul(L, N * d));
    TAKE(ln2_mean, L * N);
    TAKE(ln2_rstd, L * N);
    TAKE(up, mem_mul(L, mem_mul(N, ff)));
    TAKE(gate, c->a.act == ACT_SWIGLU ? mem_mul(L, mem_mul(N, ff)) : 0);
    TAKE(h, mem_mul(L, mem_mul(N, ff)));
    TAKE(tmp, N * d);
    TAKE(lnf, N * d);
    TAKE(lnf_mean, N);
    TAKE(lnf_rstd, N);
    TAKE(logits, mem_mul(N, V));
    TAKE(losses, N);
#undef TAKE
    return ok ? at : 0;
}

// Makes room for a batch of B x T.
static int acts_reserve(TrainModel *m, int B, int T, Err *e) {
    const ModelConfig *c = &m->cfg;
    if (B == m->cap_B && T == m->cap_T) return 0;
    free(m->act_mem);
    free(m->dact_mem);
    free(m->inputs);
    free(m->targets);
    free(m->types);
    free(m->lens);
    m->act_mem = m->dact_mem = NULL;
    m->inputs = m->targets = m->types = m->lens = NULL;
    m->cap_B = m->cap_T = 0;
    size_t n = acts_layout(&m->a, NULL, c, B, T);
    if (n) {
        m->act_mem = calloc(n, sizeof(float));
        m->dact_mem = calloc(n, sizeof(float));
        m->inputs = calloc((size_t)B * T, sizeof(int));
        m->targets = calloc((size_t)B * T, sizeof(int));
        m->types = calloc((size_t)B * T, sizeof(int));
        m->lens = calloc((size_t)B, sizeof(int));
    }
    if (!n || !m->act_mem || !m->dact_mem || !m->inputs || !m->targets || !m->types || !m->lens)
        return err_set(e, "out of memory for the activations of %d x %d tokens", B, T);
    acts_layout(&m->a, m->act_mem, c, B, T);
    acts_layout(&m->d, m->dact_mem, c, B, T);
    m->cap_B = B;
    m->cap_T = T;
    if (c->a.pos == POS_ROTARY && m->rope_T != T) {
        int rot = c->a.rope_dim ? c->a.rope_dim : c->head_dim, half = rot / 2;
        free(m->rope_cos);
        free(m->rope_sin);
        free(m->rope_nsin);
        m->rope_cos = xmalloc(sizeof(float) * (size_t)T * half);
        m->rope_sin = xmalloc(sizeof(float) * (size_t)T * half);
        m->rope_nsin = xmalloc(sizeof(float) * (size_t)T * half);
        float *inv = xmalloc(sizeof(float) * (size_t)half);
        rope_freqs(&c->a, rot, inv);
        rope_table(m->rope_cos, m->rope_sin, 0, T, half, inv);
        for (size_t i = 0; i < (size_t)T * half; i++) m->rope_nsin[i] = -m->rope_sin[i];
        free(inv);
        m->rope_T = T;
    }
    return 0;
}

// Where q, k and v of layer l sit in a qkv buffer, and their row strides: a fused projection
// leaves them interleaved in each row, separate ones one after the other.
typedef struct {
    float *q, *k, *v;
    int sq, skv;
} QKV;

static QKV qkv_views(const TrainModel *m, float *qkv_all, int l) {
    const ModelConfig *c = &m->cfg;
    size_t N = (size_t)m->B * m->T;
    int qd = c->n_head * c->head_dim, kvd = c->n_kv_head * c->head_dim;
    float *base = qkv_all + (size_t)l * N * (qd + 2 * kvd);
    if (c->a.fused_qkv) return (QKV){base, base + qd, base + qd + kvd, qd + 2 * kvd, qd + 2 * kvd};
    return (QKV){base, base + N * qd, base + N * qd + N * kvd, qd, kvd};
}

// ---------------------------------------------------------------------------------------
// The passes

static bool in_out(const TrainModel *m) { return m->map->in_out; }

static void norm_forward(TrainModel *m, float *out, float *mean, float *rstd, const float *inp, WeightId w, int l, int N) {
    const ModelConfig *c = &m->cfg;
    if (c->a.norm == NORM_RMS)
        tr_rmsnorm_forward(m->pool, out, rstd, inp, tmodel_param(m, w, l), N, c->n_embd, c->a.norm_eps);
    else
        tr_layernorm_forward(m->pool, out, mean, rstd, inp, tmodel_param(m, w, l),
                             tmodel_param(m, (WeightId)(w + 1), l), N, c->n_embd, c->a.norm_eps);
}

static void norm_backward(TrainModel *m, float *dinp, const float *dout, const float *inp, const float *mean,
                          const float *rstd, WeightId w, int l, int N) {
    const ModelConfig *c = &m->cfg;
    if (c->a.norm == NORM_RMS)
        tr_rmsnorm_backward(m->pool, dinp, tmodel_grad(m, w, l), dout, inp, tmodel_param(m, w, l), rstd, N, c->n_embd);
    else
        tr_layernorm_backward(m->pool, dinp, tmodel_grad(m, w, l), tmodel_grad(m, (WeightId)(w + 1), l), dout, inp,
                              tmodel_param(m, w, l), mean, rstd, N, c->n_embd);
}

// A linear layer of weight w (its bias, when the model has one, is the next id).
static void linear_forward_w(TrainModel *m, float *out, const float *inp, WeightId w, int l, int N, int IC, int OC) {
    tr_matmul_forward(m->pool, out, inp, tmodel_param(m, w, l), tmodel_param(m, (WeightId)(w + 1), l), N, IC, OC,
                      in_out(m));
}

static void linear_backward_w(TrainModel *m, float *dinp, const float *dout, const float *inp, WeightId w, int l, int N,
                              int IC, int OC) {
    tr_matmul_backward(m->pool, dinp, tmodel_grad(m, w, l), tmodel_grad(m, (WeightId)(w + 1), l), dout, inp,
                       tmodel_param(m, w, l), N, IC, OC, in_out(m));
}

// The output head: [V, d] (the token embedding when tied).
static WeightId head_id(const TrainModel *m) { return m->off[W_OUTPUT] >= 0 ? W_OUTPUT : W_TOK_EMBD; }

// The feed-forward sublayer of layer l on inp (N, d) into a->tmp.
static void ffn_forward(TrainModel *m, const float *inp, int l) {
    const ModelConfig *c = &m->cfg;
    int N = m->B * m->T, d = c->n_embd, ff = c->n_ff;
    size_t Nff = (size_t)N * ff;
    Acts *a = &m->a;
    float *up = a->up + (size_t)l * Nff, *h = a->h + (size_t)l * Nff;
    linear_forward_w(m, up, inp, W_UP, l, N, d, ff);
    if (c->a.act == ACT_SWIGLU) {
        float *gate = a->gate + (size_t)l * Nff;
        linear_forward_w(m, gate, inp, W_GATE, l, N, d, ff);
        tr_swiglu_forward(m->pool, h, gate, up, (int)Nff);
    } else if (c->a.act == ACT_GELU_ERF) {
        tr_gelu_erf_forward(m->pool, h, up, (int)Nff);
    } else {
        tr_gelu_forward(m->pool, h, up, (int)Nff);
    }
    linear_forward_w(m, a->tmp, h, W_DOWN, l, N, ff, d);
}

// Its backward: dinp += the gradient reaching inp from dout (N, d), the output's.
static void ffn_backward(TrainModel *m, float *dinp, const float *dout, const float *inp, int l) {
    const ModelConfig *c = &m->cfg;
    int N = m->B * m->T, d = c->n_embd, ff = c->n_ff;
    size_t Nff = (size_t)N * ff;
    Acts *a = &m->a, *g = &m->d;
    float *up = a->up + (size_t)l * Nff, *dup = g->up + (size_t)l * Nff;
    float *h = a->h + (size_t)l * Nff, *dh = g->h + (size_t)l * Nff;
    linear_backward_w(m, dh, dout, h, W_DOWN, l, N, ff, d);
    if (c->a.act == ACT_SWIGLU) {
        float *gate = a->gate + (size_t)l * Nff, *dgate = g->gate + (size_t)l * Nff;
        tr_swiglu_backward(m->pool, dgate, dup, dh, gate, up, (int)Nff);
        linear_backward_w(m, dinp, dgate, inp, W_GATE, l, N, d, ff);
    } else if (c->a.act == ACT_GELU_ERF) {
        tr_gelu_erf_backward(m->pool, dup, up, dh, (int)Nff);
    } else {
        tr_gelu_backward(m->pool, dup, up, dh, (int)Nff);
    }
    linear_backward_w(m, dinp, dup, inp, W_UP, l, N, d, ff);
}

// The attention sublayer of layer l on inp (N, d) into a->tmp.
static void attn_forward(TrainModel *m, const float *inp, int l) {
    const ModelConfig *c = &m->cfg;
    int B = m->B, T = m->T, N = B * T, d = c->n_embd, H = c->n_head, Hkv = c->n_kv_head, hd = c->head_dim;
    int qd = H * hd, kvd = Hkv * hd;
    Acts *a = &m->a;
    float *z = a->z + (size_t)l * N * qd, *att = a->att + (size_t)l * B * H * T * T;
    QKV v = qkv_views(m, a->qkv, l);
    if (c->a.fused_qkv) {
        linear_forward_w(m, v.q, inp, W_QKV, l, N, d, qd + 2 * kvd);
    } else {
        linear_forward_w(m, v.q, inp, W_Q, l, N, d, qd);
        linear_forward_w(m, v.k, inp, W_K, l, N, d, kvd);
        linear_forward_w(m, v.v, inp, W_V, l, N, d, kvd);
    }
    if (c->a.pos == POS_ROTARY) {
        int rot = c->a.rope_dim ? c->a.rope_dim : hd;
        bool pairs = c->a.rope_style == ROPE_PAIRS;
        tr_rope(m->pool, v.q, N, T, v.sq, H, hd, rot, m->rope_cos, m->rope_sin, pairs);
        tr_rope(m->pool, v.k, N, T, v.skv, Hkv, hd, rot, m->rope_cos, m->rope_sin, pairs);
    }
    tr_attention_forward(m->pool, z, att, v.q, v.k, v.v, c->a.causal ? NULL : m->lens, B, T, H, Hkv, hd, v.sq, v.skv);
    linear_forward_w(m, a->tmp, z, W_O, l, N, qd, d);
}

// Its backward: dinp += the gradient reaching inp from dout (N, d), the output's.
static void attn_backward(TrainModel *m, float *dinp, const float *dout, const float *inp, int l) {
    const ModelConfig *c = &m->cfg;
    int B = m->B, T = m->T, N = B * T, d = c->n_embd, H = c->n_head, Hkv = c->n_kv_head, hd = c->head_dim;
    int qd = H * hd, kvd = Hkv * hd;
    Acts *a = &m->a, *g = &m->d;
    float *z = a->z + (size_t)l * N * qd, *dz = g->z + (size_t)l * N * qd;
    size_t ao = (size_t)l * B * H * T * T;
    linear_backward_w(m, dz, dout, z, W_O, l, N, qd, d);
    QKV v = qkv_views(m, a->qkv, l), dv = qkv_views(m, g->qkv, l);
    tr_attention_backward(m->pool, dv.q, dv.k, dv.v, g->att + ao, dz, a->att + ao, v.q, v.k, v.v,
                          c->a.causal ? NULL : m->lens, B, T, H, Hkv, hd, v.sq, v.skv);
    if (c->a.pos == POS_ROTARY) { // back through the rotation: by minus the angle
        int rot = c->a.rope_dim ? c->a.rope_dim : hd;
        bool pairs = c->a.rope_style == ROPE_PAIRS;
        tr_rope(m->pool, dv.q, N, T, dv.sq, H, hd, rot, m->rope_cos, m->rope_nsin, pairs);
        tr_rope(m->pool, dv.k, N, T, dv.skv, Hkv, hd, rot, m->rope_cos, m->rope_nsin, pairs);
    }
    if (c->a.fused_qkv) {
        linear_backward_w(m, dinp, dv.q, inp, W_QKV, l, N, d, qd + 2 * kvd);
    } else {
        linear_backward_w(m, dinp, dv.q, inp, W_Q, l, N, d, qd);
        linear_backward_w(m, dinp, dv.k, inp, W_K, l, N, d, kvd);
        linear_backward_w(m, dinp, dv.v, inp, W_V, l, N, d, kvd);
    }
}

// The blocks and the final norm over B x T inputs (types: segment ids or NULL; lens: each
// sequence's valid tokens, read by encoders, NULL: all T): a->lnf holds the final hidden states.
static int forward_body(TrainModel *m, const int *inputs, const int *types, const int *lens, const int *targets, int B,
                        int T, Err *e) {
    const ModelConfig *c = &m->cfg;
    if (B < 1 || T < 1) return err_set(e, "empty batch");
    if (T > c->n_ctx) return err_set(e, "sequences of %d tokens exceed the context of %d", T, c->n_ctx);
    for (int i = 0; i < B * T; i++)
        if (inputs[i] < 0 || inputs[i] >= c->n_vocab || (targets && targets[i] >= c->n_vocab))
            return err_set(e, "token id %d is out of range (vocabulary of %d)",
                           inputs[i] < 0 || inputs[i] >= c->n_vocab ? inputs[i] : targets[i], c->n_vocab);
    for (int i = 0; types && i < B * T; i++)
        if (types[i] < 0 || types[i] >= (c->a.token_types ? c->n_types : 1))
            return err_set(e, "token type %d is out of range (%d types)", types[i],
                           c->a.token_types ? c->n_types : 1);
    for (int b = 0; lens && b < B; b++)
        if (lens[b] < 1 || lens[b] > T) return err_set(e, "a sequence of %d tokens in rows of %d", lens[b], T);
    if (acts_reserve(m, B, T, e)) return -1;
    m->B = B;
    m->T = T;
    int N = B * T, L = c->n_layer, d = c->n_embd;
    size_t Nd = (size_t)N * d;
    Acts *a = &m->a;
    memcpy(m->inputs, inputs, sizeof(int) * (size_t)N);
    m->have_targets = targets != NULL;
    for (int i = 0; i < N; i++) m->targets[i] = targets ? targets[i] : -1;
    for (int i = 0; i < N; i++) m->types[i] = types ? types[i] : 0;
    for (int b = 0; b < B; b++) m->lens[b] = lens ? lens[b] : T;

    const float *wtt = tmodel_param(m, W_TYPE_EMBD, -1);
    float *emb = c->a.emb_norm ? a->emb : a->x;
    tr_embed_forward(m->pool, emb, inputs, m->types, tmodel_param(m, W_TOK_EMBD, -1), tmodel_param(m, W_POS_EMBD, -1),
                     wtt, N, T, d);
    if (c->a.emb_norm) norm_forward(m, a->x, a->emb_mean, a->emb_rstd, a->emb, W_EMB_NORM, -1, N);
    for (int l = 0; l < L; l++) {
        float *x = a->x + (size_t)l * Nd, *xo = x + Nd;
        float *ln1 = a->ln1 + (size_t)l * Nd, *ln2 = a->ln2 + (size_t)l * Nd, *xmid = a->xmid + (size_t)l * Nd;
        float *m1 = a->ln1_mean + (size_t)l * N, *r1 = a->ln1_rstd + (size_t)l * N;
        float *m2 = a->ln2_mean + (size_t)l * N, *r2 = a->ln2_rstd + (size_t)l * N;
        if (c->a.post_norm) { // xmid = norm1(x + attn(x)); xo = norm2(xmid + ffn(xmid))
            attn_forward(m, x, l);
            tr_residual_forward(m->pool, ln1, x, a->tmp, (int)Nd);
            norm_forward(m, xmid, m1, r1, ln1, W_ATTN_NORM, l, N);
            ffn_forward(m, xmid, l);
            tr_residual_forward(m->pool, ln2, xmid, a->tmp, (int)Nd);
            norm_forward(m, xo, m2, r2, ln2, W_FFN_NORM, l, N);
            continue;
        }
        // xmid = x + attn(norm1(x)); xo = xmid + ffn(norm2(xmid))
        norm_forward(m, ln1, m1, r1, x, W_ATTN_NORM, l, N);
        attn_forward(m, ln1, l);
        tr_residual_forward(m->pool, xmid, x, a->tmp, (int)Nd);
        norm_forward(m, ln2, m2, r2, xmid, W_FFN_NORM, l, N);
        ffn_forward(m, ln2, l);
        tr_residual_forward(m->pool, xo, xmid, a->tmp, (int)Nd);
    }
    const float *xl = a->x + (size_t)L * Nd;
    if (c->a.final_norm) norm_forward(m, a->lnf, a->lnf_mean, a->lnf_rstd, xl, W_OUT_NORM, -1, N);
    else memcpy(a->lnf, xl, sizeof(float) * Nd);
    return 0;
}

int tmodel_forward(TrainModel *m, const int *inputs, const int *targets, int B, int T, double *loss, Err *e) {
    if (!m->cfg.a.lm_head)
        return err_set(e, "this %s model is an encoder without a language-model head here", m->cfg.a.name);
    if (forward_body(m, inputs, NULL, NULL, targets, B, T, e)) return -1;
    const ModelConfig *c = &m->cfg;
    int N = B * T, d = c->n_embd, V = c->n_vocab;
    Acts *a = &m->a;
    tr_matmul_forward(m->pool, a->logits, a->lnf, tmodel_param(m, head_id(m), -1), NULL, N, d, V, false);
    double l = 0;
    m->counted = 0;
    if (targets) l = tr_crossentropy_forward(m->pool, a->logits, a->losses, a->logits, m->targets, N, V, &m->counted);
    if (loss) *loss = l;
    return 0;
}

const float *tmodel_hidden(TrainModel *m, const int *inputs, int B, int T, Err *e) {
    return tmodel_encode(m, inputs, NULL, NULL, B, T, e);
}

const float *tmodel_encode(TrainModel *m, const int *inputs, const int *types, const int *lens, int B, int T, Err *e) {
    if (forward_body(m, inputs, types, lens, NULL, B, T, e)) return NULL;
    m->counted = 0;
    return m->a.lnf;
}

// From the gradient in g->lnf back to the embeddings (the activations' gradients zeroed by
// the caller).
static void backward_body(TrainModel *m) {
    const ModelConfig *c = &m->cfg;
    int B = m->B, T = m->T, N = B * T, L = c->n_layer, d = c->n_embd;
    size_t Nd = (size_t)N * d;
    Acts *a = &m->a, *g = &m->d;
    float *dxl = g->x + (size_t)L * Nd;
    if (c->a.final_norm) norm_backward(m, dxl, g->lnf, a->x + (size_t)L * Nd, a->lnf_mean, a->lnf_rstd, W_OUT_NORM, -1, N);
    else memcpy(dxl, g->lnf, sizeof(float) * Nd);
    for (int l = L - 1; l >= 0; l--) {
        size_t lN = (size_t)l * N;
        float *x = a->x + (size_t)l * Nd, *dx = g->x + (size_t)l * Nd, *dxo = dx + Nd;
        float *xmid = a->xmid + (size_t)l * Nd, *dxmid = g->xmid + (size_t)l * Nd;
        float *ln2 = a->ln2 + (size_t)l * Nd, *dln2 = g->ln2 + (size_t)l * Nd;
        float *ln1 = a->ln1 + (size_t)l * Nd, *dln1 = g->ln1 + (size_t)l * Nd;
        if (c->a.post_norm) {
            // xo = norm2(ln2), ln2 = xmid + ffn(xmid): the sum's gradient to xmid and into the MLP
            norm_backward(m, dln2, dxo, ln2, a->ln2_mean + lN, a->ln2_rstd + lN, W_FFN_NORM, l, N);
            tr_residual_forward(m->pool, dxmid, dxmid, dln2, (int)Nd);
            ffn_backward(m, dxmid, dln2, xmid, l);
            // xmid = norm1(ln1), ln1 = x + attn(x)
            norm_backward(m, dln1, dxmid, ln1, a->ln1_mean + lN, a->ln1_rstd + lN, W_ATTN_NORM, l, N);
            tr_residual_forward(m->pool, dx, dx, dln1, (int)Nd);
            attn_backward(m, dx, dln1, x, l);
            continue;
        }
        // xo = xmid + ffn(norm2(xmid)): the stream's gradient flows on, and into the MLP
        tr_residual_forward(m->pool, dxmid, dxmid, dxo, (int)Nd);
        ffn_backward(m, dln2, dxo, ln2, l);
        norm_backward(m, dxmid, dln2, xmid, a->ln2_mean + lN, a->ln2_rstd + lN, W_FFN_NORM, l, N);
        // xmid = x + attn(norm1(x))
        tr_residual_forward(m->pool, dx, dx, dxmid, (int)Nd);
        attn_backward(m, dln1, dxmid, ln1, l);
        norm_backward(m, dx, dln1, x, a->ln1_mean + lN, a->ln1_rstd + lN, W_ATTN_NORM, l, N);
    }
    float *demb = g->x;
    if (c->a.emb_norm) {
        norm_backward(m, g->emb, g->x, a->emb, a->emb_mean, a->emb_rstd, W_EMB_NORM, -1, N);
        demb = g->emb;
    }
    tr_embed_backward(m->pool, tmodel_grad(m, W_TOK_EMBD, -1), tmodel_grad(m, W_POS_EMBD, -1),
                      tmodel_grad(m, W_TYPE_EMBD, -1), demb, m->inputs, m->types, N, T, d);
}

// Zeroes the activations' gradients the backward pass adds into. The attention
// probabilities' gradients (most of the floats, B H T^2 a layer) are scratch that
// tr_attention_backward writes whole, so they are left as they are.
static void zero_dacts(TrainModel *m) {
    const ModelConfig *c = &m->cfg;
    size_t total = acts_layout(&m->d, m->dact_mem, c, m->B, m->T);
    size_t a0 = (size_t)(m->d.att - m->dact_mem), na = (size_t)c->n_layer * m->B * c->n_head * m->T * m->T;
    memset(m->dact_mem, 0, sizeof(float) * a0);
    memset(m->d.att + na, 0, sizeof(float) * (total - a0 - na));
}

// From the cross-entropy of the last forward, each counted row's loss weighted by scale * w[n]
// (w NULL: by scale), back to the parameters.
static void backward_ce(TrainModel *m, float scale, const float *w) {
    const ModelConfig *c = &m->cfg;
    int N = m->B * m->T, d = c->n_embd, V = c->n_vocab;
    Acts *a = &m->a, *g = &m->d;
    zero_dacts(m);
    tr_crossentropy_backward(m->pool, g->logits, a->logits, m->targets, N, V, scale, w);
    WeightId hw = head_id(m);
    tr_matmul_backward(m->pool, g->lnf, tmodel_grad(m, hw, -1), NULL, g->logits, a->lnf, tmodel_param(m, hw, -1), N,
                       d, V, false);
    backward_body(m);
}

void tmodel_backward(TrainModel *m, float scale) {
    if (!m->have_targets || !m->counted) return;
    backward_ce(m, scale / (float)m->counted, NULL);
}

const float *tmodel_losses(const TrainModel *m) { return m->have_targets ? m->a.losses : NULL; }

void tmodel_backward_rows(TrainModel *m, const float *w) {
    if (!m->have_targets || !m->counted) return;
    backward_ce(m, 1.0f, w);
}

void tmodel_backward_hidden(TrainModel *m, const float *dhidden) {
    const ModelConfig *c = &m->cfg;
    zero_dacts(m);
    memcpy(m->d.lnf, dhidden, sizeof(float) * (size_t)m->B * m->T * c->n_embd);
    backward_body(m);
}

// ---------------------------------------------------------------------------------------
// Saving

typedef struct {
    TrainModel *m;
    bool grads;
} SaveArg;

static const float *save_weights(void *user, WeightId w, int layer) {
    SaveArg *s = user;
    return s->grads ? tmodel_grad(s->m, w, layer) : tmodel_param(s->m, w, layer);
}

const char *tmodel_task_prefix(const TrainModel *m) {
    for (int i = 0; m->map->prefixes[i]; i++)
        if (*m->map->prefixes[i]) return m->map->prefixes[i];
    return m->map->prefixes[0];
}

// Writes the model (its gradients when grads) into dir; with score, as a sequence
// classifier (score.weight [1, n_embd], num_labels 1) under the family's task-model prefix.
static int save_dir(TrainModel *m, const char *dir, const char *tok_dir, bool grads, const float *score,
                    const char *pooling, Err *e) {
    const ModelConfig *c = &m->cfg;
    NewModelParams p = newmodel_defaults();
    p.family = c->a.name;
    p.n_layer = c->n_layer;
    p.n_head = c->n_head;
    p.n_kv_head = c->n_kv_head;
    p.n_embd = c->n_embd;
    p.n_ff = c->n_ff;
    p.n_ctx = c->n_ctx;
    p.n_vocab = c->n_vocab;
    p.tied = c->a.tied;
    p.masks = false;
    p.prefix = score ? tmodel_task_prefix(m) : m->map->prefixes[0];
    p.config = c;
    p.score = score;
    p.pooling = pooling;
    SaveArg sa = {m, grads};
    p.weights = save_weights;
    p.weights_user = &sa;
    return newmodel_write(dir, &p, tok_dir, e);
}

const char *tmodel_file_in(const char *dir) {
    static const char *const model_files[] = {"config.json", "model.safetensors", "model.safetensors.index.json"};
    for (size_t i = 0; i < sizeof model_files / sizeof *model_files; i++) {
        char *p = fs_join(dir, model_files[i]);
        bool there = fs_present(p);
        free(p);
        if (there) return model_files[i];
    }
    return NULL;
}

int tmodel_out_free(const char *out, const char *cmd, Err *e) {
    const char *f = tmodel_file_in(out);
    if (f) return err_set(e, "%s: '%s' already holds a model (%s): choose another out= (this would replace it)", cmd, out, f);
    return 0;
}

// The first of the NULL-terminated names present in dir, or NULL.
static const char *first_in(const char *dir, const char *const *names) {
    for (int i = 0; names && names[i]; i++) {
        char *p = fs_join(dir, names[i]);
        bool there = fs_present(p);
        free(p);
        if (there) return names[i];
    }
    return NULL;
}

int tmodel_out_unused(const char *out, const char *cmd, const char *const *extra, Err *e) {
    const char *f = tmodel_file_in(out);
    if (f) return err_set(e, "'%s' already holds a model (%s): choose another out= (this would replace it)", out, f);
    if (!(f = first_in(out, newmodel_files))) f = first_in(out, extra);
    if (f) return err_set(e, "'%s' already holds %s, which %s writes: choose another out= (or move the file)", out, f,
                          cmd);
    return 0;
}

bool tmodel_untrained_in(const char *dir) {
    char *cp = fs_join(dir, "config.json");
    Json *cfg = json_parse_file(cp, NULL);
    free(cp);
    bool untrained = cfg && json_bool_or(cfg, "qkv_untrained", false);
    json_free(cfg);
    return untrained;
}

int tmodel_out_replaceable(const char *out, const char *cmd, const char *const *extra, Err *e) {
    const char *f = tmodel_file_in(out);
    if (!f) return tmodel_out_unused(out, cmd, extra, e);
    if (tmodel_untrained_in(out)) return 0;
    return err_set(e, "'%s' already holds a trained model (%s): choose another out= (%s would replace it)", out, f,
                   cmd);
}

int tmodel_checkpoint_tokenizer(const Model *m, const char *out, char **tok_dir, Err *e) {
    *tok_dir = NULL;
    if (m->builtin || !m->path) return 0;
    if (fs_is_dir(m->path) && newmodel_has_tokenizer(m->path)) {
        *tok_dir = xstrdup(m->path);
        return 0;
    }
    if (!m->tok) return err_set(e, "'%s' has no tokenizer to keep with the checkpoint", m->path);
    if (fs_mkdir_p(out, 0755, e)) return -1;
    char *tp = fs_join(out, "tokenizer.gguf");
    int rc = tok_save_gguf(m->tok, tp, e);
    free(tp);
    if (rc) return -1;
    *tok_dir = xstrdup(out);
    return 0;
}

int tmodel_save(TrainModel *m, const char *dir, const char *tok_dir, bool grads, Err *e) {
    return save_dir(m, dir, tok_dir, grads, NULL, NULL, e);
}

int tmodel_save_reward(TrainModel *m, const float *score, const char *pooling, const char *dir, const char *tok_dir,
                       Err *e) {
    return save_dir(m, dir, tok_dir, false, score, pooling, e);
}
