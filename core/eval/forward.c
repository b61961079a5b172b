// forward.c - the GPT-2 forward pass over a KV cache, with an optional trace.
//
// Prefill runs in chunks of up to CHUNK tokens: linear layers through cblas_sgemm,
// attention per head as two small GEMMs (Q K^T, then P V) over the cached keys/values.
// Decoding (one token) uses the matrix-vector kernels in ops.c.
#include "eval/forward.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kern/ops.h"
#include "kern/pool.h"

enum { CHUNK = 512, QBLOCK = 128 };

struct Ctx {
    const Model *m;
    Pool *pool;
    int pos;
    // KV cache: [n_layer][n_head][n_ctx][head_dim] each, so that one head's keys and
    // values are contiguous (decoding streams them)
    float *kc, *vc;
    // scratch for a chunk of up to CHUNK tokens
    float *x, *xn, *qkv, *att, *tmp, *ff;
    float **scores; // per thread: [QBLOCK, n_ctx]
    float *trace_att; // [n_head, CHUNK, n_ctx], only when a trace asks for attention
    size_t trace_att_cap;
};

static void *scratch_calloc(size_t n, size_t sz) { return n && sz ? calloc(n, sz) : NULL; }

Ctx *ctx_new(const Model *m, int n_threads, Err *e) {
    const ModelConfig *c = &m->cfg;
    if (n_threads <= 0) n_threads = pool_cpus();
    Ctx *x = calloc(1, sizeof *x);
    if (!x) goto oom;
    x->m = m;
    // One team owns the cores: OpenBLAS runs single-threaded inside our sections.
    openblas_set_num_threads(1);
    x->pool = pool_new(n_threads);
    if (!x->pool) goto oom;
    size_t d = (size_t)c->n_embd, L = (size_t)c->n_layer, T = (size_t)c->n_ctx;
    // calloc'd pages are not resident until touched: the cache costs what is used
    x->kc = scratch_calloc(L * T * d, sizeof(float));
    x->vc = scratch_calloc(L * T * d, sizeof(float));
    x->x = scratch_calloc(CHUNK * d, sizeof(float));
    x->xn = scratch_calloc(CHUNK * d, sizeof(float));
    x->qkv = scratch_calloc(CHUNK * 3 * d, sizeof(float));
    x->att = scratch_calloc(CHUNK * d, sizeof(float));
    x->tmp = scratch_calloc(CHUNK * d, sizeof(float));
    x->ff = scratch_calloc(CHUNK * (size_t)c->n_ff, sizeof(float));
    x->scores = calloc((size_t)pool_size(x->pool), sizeof *x->scores);
    if (!x->kc || !x->vc || !x->x || !x->xn || !x->qkv || !x->att || !x->tmp || !x->ff || !x->scores) goto oom;
    for (int i = 0; i < pool_size(x->pool); i++)
        if (!(x->scores[i] = scratch_calloc((size_t)QBLOCK * T, sizeof(float)))) goto oom;
    return x;
oom:
    ctx_free(x);
    err_set(e, "out of memory for the evaluation context");
    return NULL;
}

void ctx_free(Ctx *x) {
    if (!x) return;
    if (x->scores)
        for (int i = 0; i < pool_size(x->pool); i++) free(x->scores[i]);
    free(x->scores);
    pool_free(x->pool);
    free(x->kc), free(x->vc), free(x->x), free(x->xn), free(x->qkv), free(x->att), free(x->tmp), free(x->ff);
    free(x->trace_att);
    free(x);
}

int ctx_pos(const Ctx *c) { return c->pos; }
int ctx_threads(const Ctx *c) { return pool_size(c->pool); }
Pool *ctx_pool(Ctx *c) { return c->pool; }
void ctx_reset(Ctx *c) { c->pos = 0; }
void ctx_truncate(Ctx *c, int pos) {
    if (pos >= 0 && pos < c->pos) c->pos = pos;
}

// ---------------------------------------------------------------------------------------
// Parallel element-wise work

typedef struct {
    float *out;
    const float *inp;
    const float *w, *b;
    int T, C;
    float eps;
} RowJob;

static void ln_job(void *arg, int ith, int nth) {
    RowJob *J = arg;
    int t0 = J->T * ith / nth, t1 = J->T * (ith + 1) / nth;
    if (t1 > t0)
        layernorm_forward(J->out + (size_t)t0 * J->C, J->inp + (size_t)t0 * J->C, J->w, J->b, t1 - t0, J->C, J->eps);
}

static void layernorm_par(Pool *p, float *out, const float *inp, const float *w, const float *b, int T, int C,
                          float eps) {
    if (T == 1) {
        layernorm_forward(out, inp, w, b, 1, C, eps);
        return;
    }
    RowJob J = {out, inp, w, b, T, C, eps};
    pool_run(p, ln_job, &J);
}

static void gelu_job(void *arg, int ith, int nth) {
    RowJob *J = arg;
    size_t n = (size_t)J->T * J->C, a = n * (size_t)ith / (size_t)nth, b = n * (size_t)(ith + 1) / (size_t)nth;
    gelu_tanh(J->out + a, (int)(b - a));
}

static void gelu_par(Pool *p, float *x, int T, int C) {
    RowJob J = {.out = x, .T = T, .C = C};
    pool_run(p, gelu_job, &J);
}

static void add_inplace(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

// ---------------------------------------------------------------------------------------
// Attention

typedef struct {
    Ctx *c;
    int layer, pos0, n;
    float *trace_scores; // [H, n, n_kv] or NULL: raw scaled scores (masked = -inf)
    float *trace_probs;  // [H, n, n_kv] or NULL
    bool want_scores;
} AttJob;

// qkv (n, 3d): q | k | v per row; keys/values were already appended to the cache.
// att (n, d): per head softmax(q k^T / sqrt(hd)) v over the visible positions.
static void attention_job(void *arg, int ith, int nth) {
    AttJob *J = arg;
    Ctx *c = J->c;
    const ModelConfig *cf = &c->m->cfg;
    int H = cf->n_head, hd = cf->head_dim, d = cf->n_embd;
    int n_kv = J->pos0 + J->n;
    float *S = c->scores[ith];
    float scale = 1.0f / sqrtf((float)hd);
    for (int h = ith; h < H; h += nth) {
        const float *K = c->kc + ((size_t)J->layer * H + h) * cf->n_ctx * hd;
        const float *V = c->vc + ((size_t)J->layer * H + h) * cf->n_ctx * hd;
        if (J->n == 1 && !J->trace_scores && !J->trace_probs) {
            // decoding: two matrix-vector products over the contiguous cache of this head
            const float *q = c->qkv + (size_t)h * hd;
            cblas_sgemv(CblasRowMajor, CblasNoTrans, n_kv, hd, scale, K, hd, q, 1, 0.0f, S, 1);
            softmax_inplace(S, n_kv);
            cblas_sgemv(CblasRowMajor, CblasTrans, n_kv, hd, 1.0f, V, hd, S, 1, 0.0f, c->att + (size_t)h * hd, 1);
            continue;
        }
        for (int q0 = 0; q0 < J->n; q0 += QBLOCK) {
            int qn = J->n - q0 < QBLOCK ? J->n - q0 : QBLOCK;
            int kv = J->pos0 + q0 + qn; // keys visible to the last row of the block
            // S (qn, kv) = Q_h (qn, hd) K_h^T (hd, kv) * scale
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qn, kv, hd, scale,
                        c->qkv + (size_t)q0 * 3 * d + (size_t)h * hd, 3 * d, K, hd, 0.0f, S, kv);
            for (int i = 0; i < qn; i++) {
                float *row = S + (size_t)i * kv;
                int vis = J->pos0 + q0 + i + 1;
                for (int j = vis; j < kv; j++) row[j] = -INFINITY;
                if (J->trace_scores) {
                    float *dst = J->trace_scores + ((size_t)h * J->n + q0 + i) * n_kv;
                    memcpy(dst, row, sizeof(float) * (size_t)kv);
                    for (int j = kv; j < n_kv; j++) dst[j] = -INFINITY;
                }
                softmax_inplace(row, vis);
                for (int j = vis; j < kv; j++) row[j] = 0.0f;
                if (J->trace_probs) {
                    float *dst = J->trace_probs + ((size_t)h * J->n + q0 + i) * n_kv;
                    memcpy(dst, row, sizeof(float) * (size_t)kv);
                    memset(dst + kv, 0, sizeof(float) * (size_t)(n_kv - kv));
                }
            }
            // O_h (qn, hd) = P (qn, kv) V_h (kv, hd)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, qn, hd, kv, 1.0f, S, kv, V, hd, 0.0f,
                        c->att + (size_t)q0 * d + (size_t)h * hd, d);
        }
    }
}

// ---------------------------------------------------------------------------------------

static bool traced(const Trace *tr, unsigned kind, int layer) {
    return tr && tr->fn && (tr->want & kind) && (layer < 0 || !tr->layers || (tr->layers >> (layer & 63)) & 1);
}

static void emit(const Trace *tr, unsigned kind, int layer, int pos0, int n, int dim, const float *data) {
    TracePoint p = {kind, layer, pos0, n, 0, 1, dim, data};
    tr->fn(tr->user, &p);
}

static void emit_att(const Trace *tr, unsigned kind, int layer, int pos0, int n, int H, const float *data) {
    TracePoint p = {kind, layer, pos0, n, pos0 + n, H, 0, data};
    tr->fn(tr->user, &p);
}

// Evaluates one chunk of n <= CHUNK tokens at positions c->pos...
static int eval_chunk(Ctx *c, const int *ids, int n, float *logits, bool all, const Trace *tr, Err *e) {
    const Model *m = c->m;
    const ModelConfig *cf = &m->cfg;
    int d = cf->n_embd, pos0 = c->pos;
    Pool *P = c->pool;
    float *x = c->x;
    // embeddings: token + position
    for (int t = 0; t < n; t++) {
        float *row = x + (size_t)t * d;
        float *pe = c->tmp; // one row of scratch
        tensor_row_f32(&m->wte, (int64_t)ids[t] * d, d, row);
        tensor_row_f32(&m->wpe, (int64_t)(pos0 + t) * d, d, pe);
        add_inplace(row, pe, (size_t)d);
    }
    if (traced(tr, TRACE_EMBED, -1)) emit(tr, TRACE_EMBED, -1, pos0, n, d, x);

    for (int l = 0; l < cf->n_layer; l++) {
        const Gpt2Layer *ly = &m->layers[l];
        if (traced(tr, TRACE_RESID_PRE, l)) emit(tr, TRACE_RESID_PRE, l, pos0, n, d, x);
        layernorm_par(P, c->xn, x, ly->ln1_w, ly->ln1_b, n, d, cf->norm_eps);
        linear_forward(P, c->qkv, c->xn, &ly->attn, n);
        int H = cf->n_head, hd = cf->head_dim;
        for (int h = 0; h < H; h++) {
            float *K = c->kc + (((size_t)l * H + h) * cf->n_ctx + pos0) * hd;
            float *V = c->vc + (((size_t)l * H + h) * cf->n_ctx + pos0) * hd;
            for (int t = 0; t < n; t++) {
                const float *row = c->qkv + (size_t)t * 3 * d;
                memcpy(K + (size_t)t * hd, row + d + (size_t)h * hd, sizeof(float) * (size_t)hd);
                memcpy(V + (size_t)t * hd, row + 2 * d + (size_t)h * hd, sizeof(float) * (size_t)hd);
            }
        }
        if (traced(tr, TRACE_Q | TRACE_K | TRACE_V, l)) {
            // q/k/v are interleaved per row in qkv: hand them over one kind at a time
            for (unsigned kind = TRACE_Q, part = 0; kind <= TRACE_V; kind <<= 1, part++) {
                if (!traced(tr, kind, l)) continue;
                for (int t = 0; t < n; t++)
                    memcpy(c->att + (size_t)t * d, c->qkv + (size_t)t * 3 * d + part * d, sizeof(float) * (size_t)d);
                emit(tr, kind, l, pos0, n, d, c->att);
            }
        }
        AttJob aj = {c, l, pos0, n, NULL, NULL, false};
        bool ts = traced(tr, TRACE_ATT_SCORES, l), tp = traced(tr, TRACE_ATT_PROBS, l);
        if (ts || tp) {
            size_t need = (size_t)cf->n_head * n * (pos0 + n) * (ts && tp ? 2 : 1);
            if (need > c->trace_att_cap) {
                float *nb = realloc(c->trace_att, need * sizeof(float));
                if (!nb) return err_set(e, "out of memory for the attention trace");
                c->trace_att = nb;
                c->trace_att_cap = need;
            }
            size_t one = (size_t)cf->n_head * n * (pos0 + n);
            aj.trace_scores = ts ? c->trace_att : NULL;
            aj.trace_probs = tp ? c->trace_att + (ts ? one : 0) : NULL;
        }
        pool_run(P, attention_job, &aj);
        if (ts) emit_att(tr, TRACE_ATT_SCORES, l, pos0, n, cf->n_head, aj.trace_scores);
        if (tp) emit_att(tr, TRACE_ATT_PROBS, l, pos0, n, cf->n_head, aj.trace_probs);
        linear_forward(P, c->tmp, c->att, &ly->proj, n);
        add_inplace(x, c->tmp, (size_t)n * d);
        if (traced(tr, TRACE_RESID_MID, l)) emit(tr, TRACE_RESID_MID, l, pos0, n, d, x);
        layernorm_par(P, c->xn, x, ly->ln2_w, ly->ln2_b, n, d, cf->norm_eps);
        linear_forward(P, c->ff, c->xn, &ly->fc, n);
        gelu_par(P, c->ff, n, cf->n_ff);
        linear_forward(P, c->tmp, c->ff, &ly->fc2, n);
        add_inplace(x, c->tmp, (size_t)n * d);
        if (traced(tr, TRACE_RESID_POST, l)) emit(tr, TRACE_RESID_POST, l, pos0, n, d, x);
    }
    bool want_lnf = traced(tr, TRACE_LN_F, -1), want_logits = traced(tr, TRACE_LOGITS, -1);
    bool every = all || want_lnf || want_logits;
    int r0 = every ? 0 : n - 1, rn = every ? n : 1;
    layernorm_par(P, c->xn, x + (size_t)r0 * d, m->lnf_w, m->lnf_b, rn, d, cf->norm_eps);
    if (want_lnf) emit(tr, TRACE_LN_F, -1, pos0, n, d, c->xn);
    if (logits || want_logits) {
        float *out = logits;
        float *own = NULL;
        if (!out || (want_logits && !all)) {
            own = malloc(sizeof(float) * (size_t)rn * cf->n_vocab);
            if (!own) return err_set(e, "out of memory for logits");
            out = own;
        }
        if (all || want_logits) linear_forward(P, out, c->xn, &m->lm_head, rn);
        else linear_forward(P, out, c->xn, &m->lm_head, 1);
        if (want_logits) emit(tr, TRACE_LOGITS, -1, pos0, n, cf->n_vocab, out);
        if (own && logits) // the caller wanted only the last row
            memcpy(logits, own + (size_t)(rn - 1) * cf->n_vocab, sizeof(float) * (size_t)cf->n_vocab);
        free(own);
    }
    c->pos += n;
    return 0;
}

int ctx_eval(Ctx *c, const int *ids, int n, float *logits, bool all, const Trace *trace, Err *e) {
    const ModelConfig *cf = &c->m->cfg;
    if (n <= 0) return err_set(e, "nothing to evaluate");
    if (c->pos + n > cf->n_ctx)
        return err_set(e, "%d tokens do not fit in the context: %d used of %d", n, c->pos, cf->n_ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= cf->n_vocab)
            return err_set(e, "token id %d is out of range (vocabulary of %d)", ids[i], cf->n_vocab);
    int start = c->pos;
    for (int done = 0; done < n;) {
        int k = n - done < CHUNK ? n - done : CHUNK;
        bool last = done + k == n;
        float *lg = NULL;
        if (logits && all) lg = logits + (size_t)done * cf->n_vocab;
        else if (logits && last) lg = logits;
        if (eval_chunk(c, ids + done, k, lg, all, trace, e)) {
            c->pos = start;
            return -1;
        }
        done += k;
    }
    return 0;
}

const ModelConfig *ctx_config(const Ctx *c) { return &c->m->cfg; }
