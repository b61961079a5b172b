// test_gradcheck.c - suite unit: every backward of train/layers.h (the cross-entropy's
// weighted per row too), the DPO loss's, low-rank adapters', and the whole model's
// backward (GPT-2 and Llama descriptors, GQA, biases, tied and untied heads; a BERT encoder's
// body with token types, post-norm blocks, erf GELU and a padding mask), against
// central finite differences of the forward.
//
// The loss of an operation is L = sum(out * r) for a fixed random r (so dout = r), summed in
// double; each input element checked is moved by +-eps and (L+ - L-) / 2 eps compared with
// the backward's gradient: |numeric - analytic| <= TOL * max(1e-2, max |analytic|) over the
// tensor. In float32 with eps = 1e-2 the difference quotient is good to about 1e-4.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "model/arch.h"
#include "train/dpo.h"
#include "train/layers.h"
#include "train/lora.h"
#include "train/tmodel.h"
#include "kern/ops.h"

#define TOL 2e-3 // ops reach 1e-4; whole models (a loss summed over layers in float32) 1.5e-3
#define EPS 1e-2

static unsigned long long rng = 88172645463325252ull;
static float frand(void) { // uniform in [-1, 1)
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}
static float *randv(int n, float s) {
    float *v = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) v[i] = s * frand();
    return v;
}
static float *zeros(int n) { return calloc((size_t)n, sizeof(float)); }

// An operation under test: fwd recomputes out from the inputs.
typedef struct {
    void (*fwd)(void *ctx);
    void *ctx;
    const float *out;
    const float *r; // the upstream gradient (dout)
    int nout;
} Op;

static double op_loss(const Op *op) {
    op->fwd(op->ctx);
    double s = 0;
    for (int i = 0; i < op->nout; i++) s += (double)op->out[i] * op->r[i];
    return s;
}

// Checks g (the analytic gradient of x, n elements) against finite differences of op's
// loss, at every element when n <= 200, else at 200 spread over the tensor.
static void check_grad(const char *what, const Op *op, float *x, const float *g, int n) {
    double scale = 1e-2, worst = 0;
    int worst_i = 0;
    double worst_num = 0;
    for (int i = 0; i < n; i++) scale = fmax(scale, fabs(g[i]));
    int step = n <= 200 ? 1 : n / 200;
    for (int i = 0; i < n; i += step) {
        float keep = x[i];
        x[i] = keep + (float)EPS;
        double lp = op_loss(op);
        x[i] = keep - (float)EPS;
        double lm = op_loss(op);
        x[i] = keep;
        double num = (lp - lm) / (2 * EPS);
        double err = fabs(num - g[i]) / scale;
        if (!(err <= worst)) worst = check_worst(worst, err), worst_i = i, worst_num = num; // a NaN too
    }
    op_loss(op); // leave the output as it was
    if (worst > TOL) {
        fprintf(stderr, "%s: gradient error %.3g (relative to %.3g) > %g at %d: finite differences %.7g, backward %.7g\n",
                what, worst, scale, TOL, worst_i, worst_num, g[worst_i]);
        check_failures++;
    } else {
        printf("ok %-28s max err %.2e (scale %.2e, %d elements)\n", what, worst, scale, n);
    }
}

// --- layernorm / rmsnorm --------------------------------------------------------------

typedef struct {
    float *out, *mean, *rstd, *inp, *w, *b;
    int N, C;
    bool rms;
} NormT;

static void norm_fwd(void *p) {
    NormT *t = p;
    if (t->rms) tr_rmsnorm_forward(NULL, t->out, t->rstd, t->inp, t->w, t->N, t->C, 1e-5f);
    else tr_layernorm_forward(NULL, t->out, t->mean, t->rstd, t->inp, t->w, t->b, t->N, t->C, 1e-5f);
}

static void test_norm(bool rms, bool bias) {
    int N = 5, C = 12;
    NormT t = {zeros(N * C), zeros(N), zeros(N), randv(N * C, 2), randv(C, 1), bias ? randv(C, 1) : NULL, N, C, rms};
    for (int i = 0; i < C; i++) t.w[i] += 1.0f;
    float *r = randv(N * C, 1), *dinp = zeros(N * C), *dw = zeros(C), *db = zeros(C);
    Op op = {norm_fwd, &t, t.out, r, N * C};
    norm_fwd(&t);
    if (rms) tr_rmsnorm_backward(NULL, dinp, dw, r, t.inp, t.w, t.rstd, N, C);
    else tr_layernorm_backward(NULL, dinp, dw, bias ? db : NULL, r, t.inp, t.w, t.mean, t.rstd, N, C);
    const char *name = rms ? "rmsnorm" : bias ? "layernorm" : "layernorm (no shift)";
    char what[64];
    snprintf(what, sizeof what, "%s dinp", name);
    check_grad(what, &op, t.inp, dinp, N * C);
    snprintf(what, sizeof what, "%s dw", name);
    check_grad(what, &op, t.w, dw, C);
    if (bias) check_grad("layernorm db", &op, t.b, db, C);
    free(t.out), free(t.mean), free(t.rstd), free(t.inp), free(t.w), free(t.b), free(r), free(dinp), free(dw), free(db);
}

// --- matmul ---------------------------------------------------------------------------

typedef struct {
    float *out, *inp, *w, *b;
    int N, IC, OC;
    bool io;
} MatT;

static void mat_fwd(void *p) {
    MatT *t = p;
    tr_matmul_forward(NULL, t->out, t->inp, t->w, t->b, t->N, t->IC, t->OC, t->io);
}

static void test_matmul(bool io, bool bias) {
    int N = 6, IC = 7, OC = 5;
    MatT t = {zeros(N * OC), randv(N * IC, 1), randv(IC * OC, 1), bias ? randv(OC, 1) : NULL, N, IC, OC, io};
    float *r = randv(N * OC, 1), *dinp = zeros(N * IC), *dw = zeros(IC * OC), *db = zeros(OC);
    Op op = {mat_fwd, &t, t.out, r, N * OC};
    mat_fwd(&t);
    tr_matmul_backward(NULL, dinp, dw, bias ? db : NULL, r, t.inp, t.w, N, IC, OC, io);
    check_grad(io ? "matmul [in,out] dinp" : "matmul [out,in] dinp", &op, t.inp, dinp, N * IC);
    check_grad(io ? "matmul [in,out] dw" : "matmul [out,in] dw", &op, t.w, dw, IC * OC);
    if (bias) check_grad("matmul db", &op, t.b, db, OC);
    free(t.out), free(t.inp), free(t.w), free(t.b), free(r), free(dinp), free(dw), free(db);
}

// --- rope -----------------------------------------------------------------------------

typedef struct {
    float *out, *inp, *cos_t, *sin_t;
    int N, T, stride, heads, hd, rot;
    bool pairs;
} RopeT;

static void rope_fwd(void *p) {
    RopeT *t = p;
    memcpy(t->out, t->inp, sizeof(float) * (size_t)t->N * t->stride);
    tr_rope(NULL, t->out, t->N, t->T, t->stride, t->heads, t->hd, t->rot, t->cos_t, t->sin_t, t->pairs);
}

static void test_rope(bool pairs) {
    int B = 2, T = 5, N = B * T, heads = 2, hd = 6, rot = 4, stride = 15, half = rot / 2;
    RopeT t = {zeros(N * stride), randv(N * stride, 1), zeros(T * half), zeros(T * half), N, T, stride, heads, hd, rot, pairs};
    float inv[2] = {1.0f, 0.1f}, *nsin = zeros(T * half);
    rope_table(t.cos_t, t.sin_t, 0, T, half, inv);
    for (int i = 0; i < T * half; i++) nsin[i] = -t.sin_t[i];
    float *r = randv(N * stride, 1), *d = zeros(N * stride);
    Op op = {rope_fwd, &t, t.out, r, N * stride};
    rope_fwd(&t);
    memcpy(d, r, sizeof(float) * (size_t)N * stride);
    tr_rope(NULL, d, N, T, stride, heads, hd, rot, t.cos_t, nsin, pairs);
    check_grad(pairs ? "rope (pairs) dinp" : "rope (rotate half) dinp", &op, t.inp, d, N * stride);
    free(t.out), free(t.inp), free(t.cos_t), free(t.sin_t), free(nsin), free(r), free(d);
}

// --- attention ------------------------------------------------------------------------

typedef struct {
    float *z, *att, *qkv;
    const int *lens; // bidirectional with a padding mask; NULL: causal
    int B, T, H, Hkv, hd;
} AttT;

static void att_fwd(void *p) {
    AttT *t = p;
    int qd = t->H * t->hd, kvd = t->Hkv * t->hd, s = qd + 2 * kvd;
    tr_attention_forward(NULL, t->z, t->att, t->qkv, t->qkv + qd, t->qkv + qd + kvd, t->lens, t->B, t->T, t->H, t->Hkv,
                         t->hd, s, s);
}

// Causal, or (lens) bidirectional over each sequence's first lens[b] keys: the padded keys'
// q, k and v get no gradient, and finite differences agree that they change nothing.
static void test_attention(int H, int Hkv, const int *lens) {
    int B = 2, T = 5, hd = 3, qd = H * hd, kvd = Hkv * hd, s = qd + 2 * kvd, N = B * T;
    AttT t = {zeros(N * qd), zeros(B * H * T * T), randv(N * s, 1.5f), lens, B, T, H, Hkv, hd};
    float *r = randv(N * qd, 1), *dqkv = zeros(N * s), *datt = zeros(B * H * T * T);
    Op op = {att_fwd, &t, t.z, r, N * qd};
    att_fwd(&t);
    tr_attention_backward(NULL, dqkv, dqkv + qd, dqkv + qd + kvd, datt, r, t.att, t.qkv, t.qkv + qd, t.qkv + qd + kvd,
                          lens, B, T, H, Hkv, hd, s, s);
    const char *what = lens ? (H == Hkv ? "attention (bidirectional, padded) dq|dk|dv" : "attention (bidir, GQA) dq|dk|dv")
                            : (H == Hkv ? "attention dq|dk|dv" : "attention (GQA) dq|dk|dv");
    check_grad(what, &op, t.qkv, dqkv, N * s);
    free(t.z), free(t.att), free(t.qkv), free(r), free(dqkv), free(datt);
}

// --- activations, embedding, loss ------------------------------------------------------

typedef struct {
    float *out, *a, *b;
    int n;
    int kind; // 0 gelu, 1 swiglu, 2 gelu (erf)
} ActT;

static void act_fwd(void *p) {
    ActT *t = p;
    if (t->kind == 0) tr_gelu_forward(NULL, t->out, t->a, t->n);
    else if (t->kind == 2) tr_gelu_erf_forward(NULL, t->out, t->a, t->n);
    else tr_swiglu_forward(NULL, t->out, t->a, t->b, t->n);
}

static void test_acts(void) {
    int n = 40;
    ActT t = {zeros(n), randv(n, 3), randv(n, 2), n, 0};
    float *r = randv(n, 1), *da = zeros(n), *db = zeros(n);
    Op op = {act_fwd, &t, t.out, r, n};
    act_fwd(&t);
    tr_gelu_backward(NULL, da, t.a, r, n);
    check_grad("gelu (tanh) dinp", &op, t.a, da, n);
    t.kind = 1;
    memset(da, 0, sizeof(float) * n);
    act_fwd(&t);
    tr_swiglu_backward(NULL, da, db, r, t.a, t.b, n);
    check_grad("swiglu dgate", &op, t.a, da, n);
    check_grad("swiglu dup", &op, t.b, db, n);
    t.kind = 2;
    memset(da, 0, sizeof(float) * n);
    act_fwd(&t);
    tr_gelu_erf_backward(NULL, da, t.a, r, n);
    check_grad("gelu (erf) dinp", &op, t.a, da, n);
    // and against the closed form x Phi(x) in double
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double x = t.a[i], y = 0.5 * x * (1 + erf(x / sqrt(2.0)));
        worst = check_worst(worst, fabs(y - t.out[i]));
    }
    CHECK(worst < 1e-5);
    free(t.out), free(t.a), free(t.b), free(r), free(da), free(db);
}

typedef struct {
    float *out, *wte, *wpe, *wtt;
    int *ids, *types;
    int N, T, C;
} EmbT;

static void emb_fwd(void *p) {
    EmbT *t = p;
    tr_embed_forward(NULL, t->out, t->ids, t->types, t->wte, t->wpe, t->wtt, t->N, t->T, t->C);
}

static void test_embed(void) {
    int V = 7, T = 4, N = 8, C = 5;
    int ids[8] = {1, 3, 3, 0, 6, 1, 2, 3}, types[8] = {0, 0, 1, 1, 0, 1, 1, 1};
    EmbT t = {zeros(N * C), randv(V * C, 1), randv(T * C, 1), randv(2 * C, 1), ids, types, N, T, C};
    float *r = randv(N * C, 1), *dwte = zeros(V * C), *dwpe = zeros(T * C), *dwtt = zeros(2 * C);
    Op op = {emb_fwd, &t, t.out, r, N * C};
    emb_fwd(&t);
    tr_embed_backward(NULL, dwte, dwpe, dwtt, r, ids, types, N, T, C);
    check_grad("embedding dwte", &op, t.wte, dwte, V * C);
    check_grad("embedding dwpe", &op, t.wpe, dwpe, T * C);
    check_grad("embedding dwtt (token types)", &op, t.wtt, dwtt, 2 * C);
    free(t.out), free(t.wte), free(t.wpe), free(t.wtt), free(r), free(dwte), free(dwpe), free(dwtt);
}

typedef struct {
    float *logits, *probs, *losses;
    const int *targets;
    int N, V;
    float loss;
} CeT;

static void ce_fwd(void *p) {
    CeT *t = p;
    int cnt;
    t->loss = (float)tr_crossentropy_forward(NULL, t->probs, t->losses, t->logits, t->targets, t->N, t->V, &cnt);
}

static void test_crossentropy(void) {
    int N = 6, V = 9;
    int targets[6] = {2, -1, 0, 8, 8, 4}; // one row not counted
    CeT t = {randv(N * V, 3), zeros(N * V), zeros(N), targets, N, V, 0};
    float one = 1.0f, *dl = zeros(N * V);
    Op op = {ce_fwd, &t, &t.loss, &one, 1};
    ce_fwd(&t);
    CHECK_NEAR(t.losses[1], 0.0, 0.0);
    tr_crossentropy_backward(NULL, dl, t.probs, targets, N, V, 1.0f / 5, NULL);
    check_grad("cross-entropy dlogits", &op, t.logits, dl, N * V);
    // the mean loss by hand
    double want = 0;
    for (int n = 0; n < N; n++) {
        if (targets[n] < 0) continue;
        double z = 0;
        for (int i = 0; i < V; i++) z += exp(t.logits[n * V + i]);
        want += log(z) - t.logits[n * V + targets[n]];
    }
    CHECK_NEAR(t.loss, want / 5, 1e-5);
    free(t.logits), free(t.probs), free(t.losses), free(dl);
}

// The weighted backward (a weight per row, as DPO weighs each completion token's
// log-probability): the gradient of sum_n w[n] loss[n].
typedef struct {
    CeT ce;
    const float *w;
    float wloss;
} CeW;

static void cew_fwd(void *p) {
    CeW *t = p;
    ce_fwd(&t->ce);
    double s = 0;
    for (int n = 0; n < t->ce.N; n++) s += (double)t->w[n] * t->ce.losses[n];
    t->wloss = (float)s;
}

static void test_crossentropy_weighted(void) {
    int N = 5, V = 7;
    int targets[5] = {1, 6, -1, 0, 3};
    float w[5] = {0.7f, -1.3f, 2.0f, 0.0f, 0.25f};
    CeW t = {{randv(N * V, 3), zeros(N * V), zeros(N), targets, N, V, 0}, w, 0};
    float one = 1.0f, *dl = zeros(N * V);
    Op op = {cew_fwd, &t, &t.wloss, &one, 1};
    cew_fwd(&t);
    tr_crossentropy_backward(NULL, dl, t.ce.probs, targets, N, V, 1.0f, w);
    check_grad("weighted cross-entropy dlogits", &op, t.ce.logits, dl, N * V);
    free(t.ce.logits), free(t.ce.probs), free(t.ce.losses), free(dl);
}

// The DPO loss's gradient in the policy's log-probabilities.
typedef struct {
    float *lp; // (2P): chosen, then rejected
    const float *ref;
    int P;
    float beta, loss;
} DpoT;

static void dpo_fwd(void *p) {
    DpoT *t = p;
    t->loss = (float)dpo_loss(t->lp, t->lp + t->P, t->ref, t->ref + t->P, t->beta, t->P, NULL);
}

static void test_dpo_loss(void) {
    int P = 6;
    DpoT t = {randv(2 * P, 4), randv(2 * P, 4), P, 0.5f, 0};
    float one = 1.0f, *dlp = zeros(2 * P), *g = zeros(2 * P);
    Op op = {dpo_fwd, &t, &t.loss, &one, 1};
    double l = dpo_loss(t.lp, t.lp + P, t.ref, t.ref + P, t.beta, P, dlp);
    for (int i = 0; i < P; i++) g[i] = dlp[2 * i], g[P + i] = dlp[2 * i + 1]; // interleaved -> split
    check_grad("dpo loss dlp", &op, t.lp, g, 2 * P);
    double want = 0; // by hand: mean of log(1 + exp(-z))
    for (int i = 0; i < P; i++)
        want += log1p(exp(-t.beta * ((t.lp[i] - t.ref[i]) - (t.lp[P + i] - t.ref[P + i]))));
    CHECK_NEAR(l, want / P, 1e-6);
    // the policy equal to the reference: log 2, whatever the log-probabilities
    CHECK_NEAR(dpo_loss(t.ref, t.ref + P, t.ref, t.ref + P, 3.0f, P, NULL), log(2.0), 1e-7);
    free(t.lp), free((float *)t.ref), free(dlp), free(g);
}

// --- the whole model --------------------------------------------------------------------

typedef struct {
    TrainModel *m;
    const int *in, *tg;
    int B, T;
    float loss;
} ModelT;

static void model_fwd(void *p) {
    ModelT *t = p;
    double l;
    Err e = {0};
    if (tmodel_forward(t->m, t->in, t->tg, t->B, t->T, &l, &e)) {
        fprintf(stderr, "forward: %s\n", e.msg);
        check_failures++;
    }
    t->loss = (float)l;
}

// m with random weights (gains near 1).
static TrainModel *randomized(TrainModel *m) {
    float *p = tmodel_params(m);
    for (int i = 0; i < tmodel_n_tensors(m); i++) {
        const TParam *t = tmodel_tensor(m, i);
        for (size_t k = 0; k < t->n; k++) p[t->off + k] = (t->s.gain ? 1.0f : 0.0f) + 0.3f * frand();
    }
    return m;
}

// A small model of family with random weights (gains near 1); NULL after a failure is counted.
static TrainModel *small_model(const char *family, bool fused_gqa_variant, bool tied, unsigned biases) {
    const Family *f = family_find(family);
    ModelConfig c;
    config_init(&c, f);
    c.n_layer = 2, c.n_head = 4, c.n_kv_head = fused_gqa_variant ? 2 : 4, c.head_dim = 4;
    c.n_embd = 16, c.n_ff = 24, c.n_ctx = 8, c.n_vocab = 11;
    c.a.tied = tied;
    c.a.biases |= biases;
    Err e = {0};
    TrainModel *m = tmodel_new(&c, f->hf, 1, &e);
    if (!m) {
        fprintf(stderr, "%s: %s\n", family, e.msg);
        check_failures++;
        return NULL;
    }
    return randomized(m);
}

enum { MB = 2, MT = 6 };

// A batch of MB x MT tokens for a vocabulary of 11 (one target not counted).
static void small_batch(int *in, int *tg) {
    for (int i = 0; i < MB * MT; i++) in[i] = (i * 7 + 3) % 11, tg[i] = i == 5 ? -1 : (i * 5 + 1) % 11;
}

static void test_model(const char *family, bool fused_gqa_variant, bool tied, unsigned biases) {
    TrainModel *m = small_model(family, fused_gqa_variant, tied, biases);
    if (!m) return;
    float *p = tmodel_params(m);
    int in[MB * MT], tg[MB * MT];
    small_batch(in, tg);
    ModelT t = {m, in, tg, MB, MT, 0};
    float one = 1.0f;
    Op op = {model_fwd, &t, &t.loss, &one, 1};
    model_fwd(&t);
    tmodel_zero_grad(m);
    tmodel_backward(m, 1.0f);
    for (int i = 0; i < tmodel_n_tensors(m); i++) {
        const TParam *tp = tmodel_tensor(m, i);
        char what[80];
        snprintf(what, sizeof what, "%s%s %s[%d]", family, tied ? "" : " untied", weight_name(tp->s.w), tp->s.layer);
        check_grad(what, &op, p + tp->off, tmodel_grads(m) + tp->off, (int)tp->n);
    }
    tmodel_free(m);
}

// An encoder's body (BERT: embedding LayerNorm, token types, post-norm blocks, erf GELU,
// bidirectional attention with a padding mask): the loss sum(hidden * r) over the valid rows
// of MB sequences of lengths lens (r zero on padding), its gradient through
// tmodel_backward_hidden.
typedef struct {
    TrainModel *m;
    const int *in, *types, *lens;
    const float *r;
    float loss;
} EncT;

static void enc_fwd(void *p) {
    EncT *t = p;
    Err e = {0};
    const float *h = tmodel_encode(t->m, t->in, t->types, t->lens, MB, MT, &e);
    if (!h) {
        fprintf(stderr, "encode: %s\n", e.msg);
        check_failures++;
        return;
    }
    int d = tmodel_config(t->m)->n_embd;
    double s = 0;
    for (int i = 0; i < MB * MT * d; i++) s += (double)h[i] * t->r[i];
    t->loss = (float)s;
}

static TrainModel *small_encoder(const char *act) {
    const Family *f = family_find("bert");
    ModelConfig c;
    config_init(&c, f);
    c.n_layer = 2, c.n_head = 4, c.n_kv_head = 4, c.head_dim = 4;
    c.n_embd = 16, c.n_ff = 24, c.n_ctx = 8, c.n_vocab = 11, c.n_types = 2;
    c.a.norm_eps = 1e-5f;
    if (!strcmp(act, "tanh")) c.a.act = ACT_GELU_TANH;
    Err e = {0};
    TrainModel *m = tmodel_new_body(&c, f->hf, 1, &e);
    if (!m) {
        fprintf(stderr, "bert: %s\n", e.msg);
        check_failures++;
        return NULL;
    }
    return randomized(m);
}

static void test_encoder(const char *act) {
    TrainModel *m = small_encoder(act);
    if (!m) return;
    int d = tmodel_config(m)->n_embd;
    int in[MB * MT], tg[MB * MT], types[MB * MT], lens[MB] = {MT, 4};
    small_batch(in, tg);
    for (int i = 0; i < MB * MT; i++) types[i] = i % MT >= 3;
    float *r = randv(MB * MT * d, 1);
    for (int b = 0; b < MB; b++)
        for (int t = lens[b]; t < MT; t++) memset(r + ((size_t)b * MT + t) * d, 0, sizeof(float) * d);
    EncT t = {m, in, types, lens, r, 0};
    float one = 1.0f;
    Op op = {enc_fwd, &t, &t.loss, &one, 1};
    enc_fwd(&t);
    tmodel_zero_grad(m);
    tmodel_backward_hidden(m, r);
    float *p = tmodel_params(m);
    for (int i = 0; i < tmodel_n_tensors(m); i++) {
        const TParam *tp = tmodel_tensor(m, i);
        char what[80];
        snprintf(what, sizeof what, "bert (gelu %s) %s[%d]", act, weight_name(tp->s.w), tp->s.layer);
        if (tp->s.w == W_K_B) { // adds q.b to every score of a row: the softmax does not see it
            float worst = 0;
            for (size_t k = 0; k < tp->n; k++) worst = fmaxf(worst, fabsf(tmodel_grads(m)[tp->off + k]));
            CHECK(worst < 1e-5f);
            continue;
        }
        check_grad(what, &op, p + tp->off, tmodel_grads(m) + tp->off, (int)tp->n);
    }
    // the padding changes nothing: another token and type there leave the valid rows as they were
    Err e = {0};
    size_t valid = (size_t)(MT + lens[1]) * d;
    float *h0 = malloc(sizeof(float) * valid);
    memcpy(h0, tmodel_encode(m, in, types, lens, MB, MT, &e), sizeof(float) * valid);
    in[MT + 5] = (in[MT + 5] + 1) % 11, types[MT + 5] = 0;
    const float *h1 = tmodel_encode(m, in, types, lens, MB, MT, &e);
    CHECK(h1 && !memcmp(h0, h1, sizeof(float) * valid));
    // bad input: a token type or a length out of range
    types[0] = 2;
    CHECK(tmodel_encode(m, in, types, lens, MB, MT, &e) == NULL && strstr(e.msg, "token type 2") != NULL);
    types[0] = 0, lens[1] = 0;
    CHECK(tmodel_encode(m, in, types, lens, MB, MT, &e) == NULL && strstr(e.msg, "a sequence of 0 tokens") != NULL);
    // an encoder has no language-model loss here
    double l;
    CHECK(tmodel_forward(m, in, tg, MB, MT, &l, &e) < 0 && strstr(e.msg, "encoder") != NULL);
    free(h0);
    free(r);
    tmodel_free(m);
}

// Low-rank adapters: the loss as a function of every A and B (merged before each forward).
typedef struct {
    ModelT mt;
    Lora *L;
} LoraT;

static void lora_fwd(void *p) {
    LoraT *t = p;
    lora_merge(t->L, t->mt.m);
    model_fwd(&t->mt);
}

static void test_lora(const char *family, bool fused_gqa_variant) {
    TrainModel *m = small_model(family, fused_gqa_variant, true, 0);
    if (!m) return;
    Lora L;
    Err e = {0};
    if (lora_init(&L, m, 2, 3.0f, 7, &e)) {
        fprintf(stderr, "lora: %s\n", e.msg);
        check_failures++;
        tmodel_free(m);
        return;
    }
    CHECK(L.n == (fused_gqa_variant ? 2 * 4 : 2 * 2)); // q, k, v, o or qkv, o in each of 2 layers
    for (int i = 0; i < L.n; i++) // B away from zero, so that A has a gradient too
        for (size_t k = 0; k < (size_t)L.m[i].out * L.r; k++) L.params[L.m[i].b + k] = 0.5f * frand();
    int in[MB * MT], tg[MB * MT];
    small_batch(in, tg);
    LoraT t = {{m, in, tg, MB, MT, 0}, &L};
    float one = 1.0f;
    Op op = {lora_fwd, &t, &t.mt.loss, &one, 1};
    lora_fwd(&t);
    tmodel_zero_grad(m);
    tmodel_backward(m, 1.0f);
    lora_grads(&L, m);
    for (int i = 0; i < L.n; i++) {
        char what[80];
        snprintf(what, sizeof what, "%s lora %s[%d] A", family, weight_name(L.m[i].w), L.m[i].layer);
        check_grad(what, &op, L.params + L.m[i].a, L.grads + L.m[i].a, L.r * L.m[i].in);
        snprintf(what, sizeof what, "%s lora %s[%d] B", family, weight_name(L.m[i].w), L.m[i].layer);
        check_grad(what, &op, L.params + L.m[i].b, L.grads + L.m[i].b, L.m[i].out * L.r);
    }
    // B = 0 merges to the weights as they were
    memset(L.params, 0, sizeof(float) * L.size);
    lora_merge(&L, m);
    for (int i = 0; i < L.n; i++)
        CHECK(!memcmp(tmodel_param(m, L.m[i].w, L.m[i].layer), L.m[i].w0,
                      sizeof(float) * (size_t)L.m[i].in * L.m[i].out));
    lora_done(&L);
    tmodel_free(m);
}

int main(void) {
    test_embed();
    test_norm(false, true);
    test_norm(false, false);
    test_norm(true, false);
    test_matmul(true, true);
    test_matmul(false, false);
    test_rope(false);
    test_rope(true);
    test_attention(2, 2, NULL);
    test_attention(4, 2, NULL);
    static const int pad_lens[2] = {5, 3};
    test_attention(2, 2, pad_lens);
    test_attention(4, 2, pad_lens);
    test_acts();
    test_crossentropy();
    test_crossentropy_weighted();
    test_dpo_loss();
    test_model("gpt2", false, true, 0);
    test_model("llama", true, false, 0);
    test_model("llama", false, true, BIAS_QKV); // Qwen2-like q/k/v biases
    test_lora("gpt2", false);                   // fused q/k/v, [in, out] weights
    test_lora("llama", true);                   // separate q, k, v, o, [out, in] weights
    test_encoder("erf");
    test_encoder("tanh");
    // bad input: T beyond the context, ids out of range
    const Family *f = family_find("gpt2");
    ModelConfig c;
    config_init(&c, f);
    c.n_layer = 1, c.n_head = 1, c.n_kv_head = 1, c.head_dim = 4, c.n_embd = 4, c.n_ff = 8, c.n_ctx = 4, c.n_vocab = 5;
    Err e = {0};
    TrainModel *m = tmodel_new(&c, f->hf, 1, &e);
    CHECK(m != NULL);
    int ids[8] = {0, 1, 2, 3, 4, 0, 1, 2};
    double l;
    CHECK(tmodel_forward(m, ids, ids, 1, 8, &l, &e) < 0);
    CHECK(strstr(e.msg, "exceed the context") != NULL);
    ids[1] = 9;
    CHECK(tmodel_forward(m, ids, ids, 2, 4, &l, &e) < 0);
    CHECK(strstr(e.msg, "token id 9") != NULL);
    tmodel_free(m);
    // an encoder is refused with its reason
    config_init(&c, family_find("bert"));
    c.n_layer = 1, c.n_head = 1, c.n_kv_head = 1, c.head_dim = 4, c.n_embd = 4, c.n_ff = 8, c.n_ctx = 4, c.n_vocab = 5;
    c.n_types = 2;
    CHECK(tmodel_new(&c, family_find("bert")->hf, 1, &e) == NULL);
    CHECK(strstr(e.msg, "not trainable") != NULL);
    return check_failures != 0;
}
