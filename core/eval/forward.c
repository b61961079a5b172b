// forward.c - one forward pass for every architecture, driven by the model's descriptor
// (model/arch.h): pre- or post-norm blocks, LayerNorm or RMSNorm, learned or rotary
// positions, fused or separate q/k/v, grouped-query attention, causal or bidirectional,
// GELU or SwiGLU feed-forward, tied or untied head, optional head transform.
//
// The KV cache holds F32 or, as a session chooses (ctx_new_kv), F16.
//
// Prefill runs in chunks of up to CHUNK tokens (a bidirectional model reads its whole text
// in one chunk): linear layers through the kernels of kern/ops.c (sgemm), attention per
// head as two small GEMMs (Q K^T, then P V) over the cached keys/values. Decoding (one
// token) uses the matrix-vector kernels.
#include "eval/forward.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "kern/blasmem.h"
#include "kern/kernels.h"
#include "kern/ops.h"
#include "kern/pool.h"

// KV_START: the positions the KV cache holds at first; it doubles (up to n_ctx) when a pass
// needs more (ctx_reserve).
enum { CHUNK = 512, QBLOCK = 128, KV_START = 256 };

struct Ctx {
    const Model *m;
    Pool *pool;
    int pos;
    int chunk; // rows of scratch: tokens evaluated per pass
    // KV cache: [n_layer][n_kv_head][cap][head_dim] each, so that one head's keys and
    // values are contiguous (decoding streams them); cap positions (<= n_ctx) until a pass
    // needs more, then copied into a cache twice as long: a model of 128K positions costs
    // what its text uses, not GBs up front. Elements of kv_dt: F32; F16 rounded to
    // nearest even as they enter (half the bytes a decoded token reads); or Q8_0, each
    // position's head_dim values in blocks of 32 rounded as ggml's reference quantizer rounds
    // them (kern/quant.h; 34 bytes for 32 values: about a quarter of F32's bytes)
    DType kv_dt;
    int cap;
    void *kc, *vc;
    float **kvf; // F16 and Q8_0 caches, per thread: [2][cap][head_dim], a group's keys and values as f32 for prefill
    // scratch for a chunk of rows: x, xn, tmp (d); q, att (n_head*hd); k, v (n_kv_head*hd);
    // qkv (fused projection); ff, gate (n_ff)
    float *x, *xn, *tmp, *q, *k, *v, *qkv, *att, *ff, *gate;
    float **scores; // per thread: [QBLOCK, cap], then decoding's q and prefill's block (kv_alloc)
    atomic_int *group_ready; // [n_kv_head + n_head]: decoding's group tasks and heads (GroupJob)
    float *trace_att; // [n_head, chunk, n_ctx] (twice for scores and probs), on demand
    size_t trace_att_cap;
    float *rope_cos, *rope_sin; // [chunk, rot/2] for the positions of the current chunk
    float *rope_inv;            // [rot/2]: inverse frequencies
    float *logits_all;          // [chunk, n_vocab] when a trace wants every row's logits, on demand
    size_t logits_cap;
    volatile sig_atomic_t *stop; // ctx_set_stop
};

// Scratch of n floats (0: none), sized by the model's shapes (mem.h rule 1: checked; calloc
// checks n * 4). Pages are not resident until touched: the KV cache costs what is used.
static float *scratch(size_t n, bool *ok) {
    if (!n || !*ok) return NULL;
    float *p = calloc(n, sizeof(float));
    if (!p) *ok = false;
    return p;
}

// The KV cache: n elements of es bytes; each decoding step streams through it, as through the
// weights (on 2 MB pages).
static void *scratch_streamed(size_t n, size_t es, bool *ok) {
    if (!n || !*ok) return NULL;
    void *p = mem_mul(n, es) == SIZE_MAX ? NULL : mem_calloc_huge(n * es);
    if (!p) *ok = false;
    return p;
}

Ctx *ctx_new(const Model *m, int n_threads, Err *e) { return ctx_new_kv(m, n_threads, DT_F32, e); }

// The KV cache of cap positions and the per-thread buffers whose rows are that long (the
// scores; the F16 and Q8_0 caches' f32 copies), into the out-parameters; false when out of
// memory (then nothing is left allocated).
typedef struct {
    void *kc, *vc;
    float **scores, **kvf;
} KvBufs;

static void kv_bufs_free(const Ctx *x, KvBufs *b) {
    int n = pool_size(x->pool);
    for (int i = 0; b->scores && i < n; i++) free(b->scores[i]);
    for (int i = 0; b->kvf && i < n; i++) free(b->kvf[i]);
    free(b->scores), free(b->kvf), free(b->kc), free(b->vc);
    *b = (KvBufs){0};
}

static bool kv_alloc(const Ctx *x, int cap, KvBufs *b) {
    const ModelConfig *c = &x->m->cfg;
    const int n = pool_size(x->pool);
    bool ok = true;
    // bytes of cap rows of one layer and group (whole Q8_0 blocks: head_dim divides)
    size_t es = dtype_bytes(x->kv_dt, (int64_t)cap * c->head_dim), groups = (size_t)c->n_layer * c->n_kv_head;
    *b = (KvBufs){0};
    b->kc = scratch_streamed(groups, es, &ok);
    b->vc = scratch_streamed(groups, es, &ok);
    if (ok && !(b->scores = calloc((size_t)n, sizeof *b->scores))) ok = false;
    // QBLOCK rows of scores, then room for decoding's scaled q (head_dim: a tiny context does
    // not make the rows after the first long enough to hold it), then prefill's block of scaled
    // queries and its outputs (QBLOCK rows of head_dim each)
    for (int i = 0; ok && i < n; i++) b->scores[i] = scratch((size_t)QBLOCK * cap + (size_t)c->head_dim * (1 + 2 * QBLOCK), &ok);
    if (ok && x->kv_dt != DT_F32) {
        if (!(b->kvf = calloc((size_t)n, sizeof *b->kvf))) ok = false;
        for (int i = 0; ok && i < n; i++) b->kvf[i] = scratch(2 * (size_t)cap * c->head_dim, &ok);
    }
    if (!ok) kv_bufs_free(x, b);
    return ok;
}

// The cache's MB at cap positions (keys and values).
static double kv_mb(const Ctx *x, int cap) {
    const ModelConfig *c = &x->m->cfg;
    return 2.0 * c->n_layer * c->n_kv_head * (double)dtype_bytes(x->kv_dt, (int64_t)cap * c->head_dim) / 1e6;
}

// Room in the cache for `need` positions: twice the capacity (or need, or n_ctx) when short,
// the positions held so far copied over. Fails (the cache as it was) when out of memory.
int ctx_reserve(Ctx *x, int need, Err *e) {
    const ModelConfig *c = &x->m->cfg;
    if (need <= x->cap) return 0;
    if (need > c->n_ctx) return err_set(e, "%d positions exceed the context of %d", need, c->n_ctx);
    int cap = x->cap;
    while (cap < need) cap = cap > c->n_ctx / 2 ? c->n_ctx : 2 * cap;
    KvBufs b;
    if (!kv_alloc(x, cap, &b))
        return err_set(e, "out of memory for a KV cache of %d positions (%.0f MB of %s keys and values)", cap,
                       kv_mb(x, cap), dtype_name(x->kv_dt));
    size_t old_row = dtype_bytes(x->kv_dt, (int64_t)x->cap * c->head_dim), new_row = dtype_bytes(x->kv_dt, (int64_t)cap * c->head_dim);
    size_t used = dtype_bytes(x->kv_dt, (int64_t)x->pos * c->head_dim);
    for (size_t g = 0; g < (size_t)c->n_layer * c->n_kv_head; g++) {
        memcpy((char *)b.kc + g * new_row, (char *)x->kc + g * old_row, used);
        memcpy((char *)b.vc + g * new_row, (char *)x->vc + g * old_row, used);
    }
    KvBufs old = {x->kc, x->vc, x->scores, x->kvf};
    kv_bufs_free(x, &old);
    x->kc = b.kc, x->vc = b.vc, x->scores = b.scores, x->kvf = b.kvf;
    x->cap = cap;
    return 0;
}

Ctx *ctx_new_kv(const Model *m, int n_threads, DType kv, Err *e) {
    const ModelConfig *c = &m->cfg;
    if (kv != DT_F32 && kv != DT_F16 && kv != DT_Q8_0) {
        err_set(e, "the KV cache holds F32, F16 or Q8_0, not %s", dtype_name(kv));
        return NULL;
    }
    if (kv == DT_Q8_0 && c->head_dim % QK) {
        err_set(e, "the Q8_0 KV cache needs heads of a multiple of %d values; this model's have %d (set kv f16 or f32)",
                QK, c->head_dim);
        return NULL;
    }
    if (n_threads <= 0) n_threads = pool_cpus();
    Ctx *x = xcalloc(1, sizeof *x);
    x->m = m;
    x->kv_dt = kv;
    // One team owns the cores: OpenBLAS runs single-threaded inside our sections.
    openblas_set_num_threads(1);
    x->pool = pool_new(n_threads);
    if (blas_reserve(pool_size(x->pool), e)) {
        ctx_free(x);
        return NULL;
    }
    bool ok = true;
    size_t d = (size_t)c->n_embd;
    size_t qd = (size_t)c->n_head * c->head_dim, kvd = (size_t)c->n_kv_head * c->head_dim;
    x->chunk = c->a.causal ? (c->n_ctx < CHUNK ? c->n_ctx : CHUNK) : c->n_ctx;
    size_t R = (size_t)x->chunk;
    // an encoder reads a whole text at once: its cache is as long as its longest text
    x->cap = c->a.causal && c->n_ctx > KV_START ? KV_START : c->n_ctx;
    KvBufs kb;
    if (!kv_alloc(x, x->cap, &kb)) ok = false;
    else x->kc = kb.kc, x->vc = kb.vc, x->scores = kb.scores, x->kvf = kb.kvf;
    x->x = scratch(R * d, &ok);
    x->xn = scratch(R * d, &ok);
    x->tmp = scratch(R * d, &ok);
    x->q = scratch(R * qd, &ok);
    x->k = scratch(R * kvd, &ok);
    x->v = scratch(R * kvd, &ok);
    x->qkv = scratch(c->a.fused_qkv ? R * (qd + 2 * kvd) : 0, &ok);
    x->att = scratch(R * qd, &ok);
    x->ff = scratch(R * (size_t)c->n_ff, &ok);
    x->gate = scratch(c->a.act == ACT_SWIGLU ? R * (size_t)c->n_ff : 0, &ok);
    if (c->a.pos == POS_ROTARY) {
        size_t half = (size_t)(c->a.rope_dim ? c->a.rope_dim : c->head_dim) / 2;
        x->rope_cos = scratch(R * half, &ok);
        x->rope_sin = scratch(R * half, &ok);
        x->rope_inv = scratch(half, &ok);
        if (ok) rope_freqs(&c->a, (int)half * 2, x->rope_inv);
    }
    if (ok) x->group_ready = xcalloc((size_t)(c->n_kv_head + c->n_head), sizeof *x->group_ready);
    if (!ok) {
        err_set(e, "out of memory for the evaluation context (a chunk of %d tokens; a %s KV cache of %d positions, %.0f MB)",
                x->chunk, dtype_name(kv), x->cap, kv_mb(x, x->cap));
        ctx_free(x);
        return NULL;
    }
    return x;
}

void ctx_free(Ctx *x) {
    if (!x) return;
    if (x->pool) {
        KvBufs b = {x->kc, x->vc, x->scores, x->kvf};
        kv_bufs_free(x, &b);
        pool_free(x->pool);
    }
    free(x->group_ready);
    float *bufs[] = {x->x, x->xn, x->tmp, x->q, x->k, x->v, x->qkv, x->att,
                     x->ff, x->gate, x->rope_cos, x->rope_sin, x->rope_inv, x->trace_att, x->logits_all};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(x);
}

int ctx_pos(const Ctx *c) { return c->pos; }
int ctx_threads(const Ctx *c) { return pool_size(c->pool); }
DType ctx_kv(const Ctx *c) { return c->kv_dt; }
Pool *ctx_pool(Ctx *c) { return c->pool; }
const ModelConfig *ctx_config(const Ctx *c) { return &c->m->cfg; }
void ctx_reset(Ctx *c) { c->pos = 0; }
void ctx_set_stop(Ctx *c, volatile sig_atomic_t *stop) { c->stop = stop; }
volatile sig_atomic_t *ctx_stop(const Ctx *c) { return c->stop; }
void ctx_truncate(Ctx *c, int pos) {
    if (pos >= 0 && pos < c->pos) c->pos = pos;
}

// ---------------------------------------------------------------------------------------
// Parallel element-wise work

typedef struct {
    float *out;
    const float *inp;
    const Norm *nw;
    const ModelConfig *cf;
    int T, C;
} RowJob;

static void norm_rows(float *out, const float *inp, const Norm *nw, const ModelConfig *cf, int T, int C) {
    if (cf->a.norm == NORM_RMS) rmsnorm_forward(out, inp, nw->w, T, C, cf->a.norm_eps);
    else layernorm_forward(out, inp, nw->w, nw->b, T, C, cf->a.norm_eps);
}

static void norm_job(void *arg, int ith, int nth) {
    RowJob *J = arg;
    int t0 = J->T * ith / nth, t1 = J->T * (ith + 1) / nth;
    if (t1 > t0) norm_rows(J->out + (size_t)t0 * J->C, J->inp + (size_t)t0 * J->C, J->nw, J->cf, t1 - t0, J->C);
}

// out, inp are (T, d): the descriptor's norm with weights nw. out may equal inp.
static void norm_par(Ctx *c, float *out, const float *inp, const Norm *nw, int T) {
    const ModelConfig *cf = &c->m->cfg;
    if (T == 1) {
        norm_rows(out, inp, nw, cf, 1, cf->n_embd);
        return;
    }
    RowJob J = {out, inp, nw, cf, T, cf->n_embd};
    pool_run(c->pool, norm_job, &J);
}

// Activation of the feed-forward (and of the head transform): x (n floats) in place; for
// SwiGLU x is the gate and up the up projection.
typedef struct {
    float *x;
    const float *up;
    ActKind act;
    size_t n;
} ActJob;

static void act_job(void *arg, int ith, int nth) {
    ActJob *J = arg;
    size_t a = J->n * (size_t)ith / (size_t)nth, b = J->n * (size_t)(ith + 1) / (size_t)nth;
    switch (J->act) {
    case ACT_GELU_TANH: gelu_tanh(J->x + a, (int)(b - a)); break;
    case ACT_GELU_ERF: gelu_erf(J->x + a, (int)(b - a)); break;
    case ACT_SWIGLU: swiglu(J->x + a, J->up + a, (int)(b - a)); break;
    }
}

static void act_par(Ctx *c, float *x, const float *up, ActKind act, size_t n) {
    ActJob J = {x, up, act, n};
    if (n < 4096) act_job(&J, 0, 1);
    else pool_run(c->pool, act_job, &J);
}

static void act_gelu_tanh(float *x, const float *up, int n) {
    (void)up;
    gelu_tanh(x, n);
}
static void act_gelu_erf(float *x, const float *up, int n) {
    (void)up;
    gelu_erf(x, n);
}
static void act_swiglu(float *x, const float *up, int n) { swiglu(x, up, n); }

// The activation as a decoding section applies it to its chunks (kern/ops.h).
static LinActFn act_fn(ActKind act) {
    switch (act) {
    case ACT_GELU_TANH: return act_gelu_tanh;
    case ACT_GELU_ERF: return act_gelu_erf;
    case ACT_SWIGLU: return act_swiglu;
    }
    return act_gelu_tanh;
}

static void add_inplace(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

// ---------------------------------------------------------------------------------------
// The KV cache

// Element offset of position pos of KV group g's keys (or values) in layer `layer`.
static size_t kv_at(const Ctx *c, int layer, int g, int pos) {
    const ModelConfig *cf = &c->m->cfg;
    return (((size_t)layer * cf->n_kv_head + g) * c->cap + pos) * cf->head_dim;
}

// Element `at` of buf (c->kc or c->vc; at the start of a position's row, so of a Q8_0 block).
static void *kv_ptr(const Ctx *c, void *buf, size_t at) {
    return (char *)buf + dtype_bytes(c->kv_dt, (int64_t)at);
}

// x (n) into buf from element at: as it is, or rounded to F16 as the F16 weights are written
// (to nearest even), so that prefill and decoding read the same values; beyond F16's range
// (|x| > 65504, possible with BF16 or quantized weights) saturated, not infinite.
// Q8_0: in blocks as kern/quant.h rounds weights (the table's q8_0_from_f32); a row with a value that is not finite (an
// overflowed model) gets blocks whose scale is NaN, so that attention's output is NaN, as
// the F32 cache's would be, and not a silent zero.
static void kv_put(const Ctx *c, void *buf, size_t at, const float *x, int n) {
    void *p = kv_ptr(c, buf, at);
    if (c->kv_dt == DT_F32) {
        memcpy(p, x, sizeof(float) * (size_t)n);
    } else if (c->kv_dt == DT_F16) {
        kern_get()->f16_from_f32(x, n, p);
    } else if (kern_get()->q8_0_from_f32(x, n, p)) {
        unsigned char *b = p;
        memset(b, 0, dtype_bytes(DT_Q8_0, n));
        for (int i = 0; i < n; i += QK, b += Q8_0_BYTES) b[0] = 0x00, b[1] = 0x7e; // f16 NaN
    }
}

// Prefill: the n rows of k and v (rows `ld` floats apart: c->k and c->v, or the fused
// projection's output) into layer `layer`'s cache from pos0, every group's, rows shared out
// among the threads.
typedef struct {
    Ctx *c;
    int layer, pos0, n;
    const float *k, *v;
    size_t ld;
} KvStoreJob;

static void kv_store_job(void *arg, int ith, int nth) {
    KvStoreJob *J = arg;
    Ctx *c = J->c;
    const ModelConfig *cf = &c->m->cfg;
    int Hkv = cf->n_kv_head, hd = cf->head_dim;
    int t0 = J->n * ith / nth, t1 = J->n * (ith + 1) / nth;
    for (int g = 0; g < Hkv; g++)
        for (int t = t0; t < t1; t++) {
            size_t at = kv_at(c, J->layer, g, J->pos0 + t);
            kv_put(c, c->kc, at, J->k + t * J->ld + (size_t)g * hd, hd);
            kv_put(c, c->vc, at, J->v + t * J->ld + (size_t)g * hd, hd);
        }
}

// ---------------------------------------------------------------------------------------
// Attention

typedef struct {
    Ctx *c;
    int layer, pos0, n;
    const float *q;      // row t's queries at q + t ldq (c->q, or the fused projection's output)
    size_t ldq;
    float *trace_scores; // [H, n, n_kv] or NULL: raw scaled scores (masked = -inf)
    float *trace_probs;  // [H, n, n_kv] or NULL
    atomic_int next;     // the next task to take (decoding: a head; prefill: a block of a group)
} AttJob;

// Decoding, head h of layer `layer`: c->att's head h = softmax(q k^T / sqrt(hd)) v over the
// n_kv cached positions (q: the head's hd floats, after rotary; S: the thread's scores). Two
// matrix-vector products over the contiguous cache of the head's KV group, through the F32
// decoding kernels (eight prefetched streams): the scores as [out, in] dot products with q
// scaled, the output as [in, out] rows weighted by the probabilities. cblas_sgemv did the
// same at about 60% of the read bound; F16 model, perf, positions 128-384: attention 9.6% of
// a token's time before, 7.0% after.
static void attend_one(Ctx *c, int layer, int h, const float *q, float *S, int n_kv) {
    const ModelConfig *cf = &c->m->cfg;
    int H = cf->n_head, Hkv = cf->n_kv_head, hd = cf->head_dim, win = cf->a.window;
    int g = h / (H / Hkv);
    const void *K = kv_ptr(c, c->kc, kv_at(c, layer, g, 0)), *V = kv_ptr(c, c->vc, kv_at(c, layer, g, 0));
    float scale = 1.0f / sqrtf((float)hd);
    const Kernels *kt = kern_get();
    float *qs = S + (size_t)QBLOCK * c->cap; // after S's QBLOCK rows of cap
    for (int i = 0; i < hd; i++) qs[i] = q[i] * scale;
    (c->kv_dt == DT_Q8_0 ? kt->mv_out_in_fx : kt->mv_out_in)[c->kv_dt](K, hd, n_kv, qs, S);
    for (int j = 0; win && j <= n_kv - 1 - win; j++) S[j] = -INFINITY;
    softmax_inplace(S, n_kv);
    float *o = c->att + (size_t)h * hd;
    memset(o, 0, sizeof(float) * (size_t)hd);
    kt->mv_in_out[c->kv_dt](V, hd, n_kv, hd, S, o);
}

// q (n, H*hd) after rotary; keys/values of the layer already in the cache up to pos0 + n.
// att (n, H*hd): per head softmax(q k^T / sqrt(hd)) v over the visible positions (causal:
// up to the query; with a sliding window, only its last `window` keys); head h reads
// key/value head h / (H / H_kv). Heads go first come first served: a head's result does not
// depend on which thread makes it, and a thread the machine slows down holds the other up for
// one head, not for the rest of a fixed half (decoding GPT-2 124M Q4_K_M at positions 512-640,
// 2 threads: with heads dealt h = ith, h += nth the caller waited 8-23% of attention's time;
// tokens alternated in one process, 1.7% faster on average this way).
static void attention_job(void *arg, int ith, int nth) {
    AttJob *J = arg;
    Ctx *c = J->c;
    const ModelConfig *cf = &c->m->cfg;
    int H = cf->n_head, Hkv = cf->n_kv_head, hd = cf->head_dim, qd = H * hd, rep = H / Hkv;
    bool causal = cf->a.causal;
    int win = cf->a.window;
    int n_kv = J->pos0 + J->n;
    float *S = c->scores[ith];
    float scale = 1.0f / sqrtf((float)hd);
    (void)nth;
    if (J->n == 1 && !J->trace_scores && !J->trace_probs) {
        for (int h; (h = atomic_fetch_add_explicit(&J->next, 1, memory_order_relaxed)) < H;)
            attend_one(c, J->layer, h, J->q + (size_t)h * hd, S, n_kv);
        return;
    }
    // A task is a block of qb positions of every head of a KV group, stacked: row j qb + i is
    // head g rep + j's query at position pos0 + q0 + i, scaled as decoding scales it. One
    // product with the group's keys makes the whole block's scores, one with its values the
    // outputs, through the prefill tiles (GemmFn: F32 and the F16 cache as they are) where the
    // kernels have them, else sgemm. Blocks of QBLOCK rows in all keep the products' shapes
    // whatever the group's size, and a grouped head's blocks of fewer positions compute fewer
    // masked scores past the diagonal. The last blocks (the most keys) go first, so that the
    // threads finish together. Against a head at a time through sgemm, paired in one process
    // on the Intel host (2 threads, 2026-12-05): prefill of 512 tokens 1.036x as fast on the
    // Llama shape (BF16 1.037x), GPT-2 124M F32 1.021x, F16 1.014x, BF16 1.023x; SmolLM2's
    // 2,048 tokens 1.097x.
    const Kernels *kt = kern_get();
    // the F16 cache's keys and values as they are; Q8_0's widened to F32 first (exact)
    const GemmFn tiles = kt->gemm[c->kv_dt == DT_Q8_0 ? DT_F32 : c->kv_dt];
    int qb = QBLOCK / rep > 0 ? QBLOCK / rep : 1, n_blk = (J->n + qb - 1) / qb;
    float *qs = S + (size_t)QBLOCK * c->cap + hd, *os = qs + (size_t)QBLOCK * hd;
    int have = -1, have_n = 0; // F16 and Q8_0 caches: the group (and keys) whose f32 copy kvf holds
    for (int t; (t = atomic_fetch_add_explicit(&J->next, 1, memory_order_relaxed)) < Hkv * n_blk;) {
        int g = t % Hkv, q0 = (n_blk - 1 - t / Hkv) * qb;
        int qn = J->n - q0 < qb ? J->n - q0 : qb, rows = rep * qn;
        int kv = causal ? J->pos0 + q0 + qn : n_kv; // keys visible to the block's last position
        const void *K = kv_ptr(c, c->kc, kv_at(c, J->layer, g, 0)), *V = kv_ptr(c, c->vc, kv_at(c, J->layer, g, 0));
        if (c->kv_dt == DT_Q8_0 || (!tiles && c->kv_dt == DT_F16)) { // the group's keys and values widened (exact)
            float *kf = c->kvf[ith], *vf = kf + (size_t)c->cap * hd;
            if (have != g || have_n < kv) {
                const RowF32Fn cvt = kt->row_f32[c->kv_dt];
                cvt(c->kc, (int64_t)kv_at(c, J->layer, g, 0), (int64_t)kv * hd, kf);
                cvt(c->vc, (int64_t)kv_at(c, J->layer, g, 0), (int64_t)kv * hd, vf);
                have = g, have_n = kv;
            }
            K = kf, V = vf;
        }
        for (int j = 0; j < rep; j++)
            for (int i = 0; i < qn; i++) {
                const float *src = J->q + (size_t)(q0 + i) * J->ldq + (size_t)(g * rep + j) * hd;
                float *dst = qs + ((size_t)j * qn + i) * hd;
                for (int d = 0; d < hd; d++) dst[d] = src[d] * scale;
            }
        // S (rows, kv) = Qs (rows, hd) K_g^T (hd, kv)
        if (tiles)
            tiles(qs, rows, hd, K, true, kv, 0, kv, S, false, NULL, pool_scratch(c->pool, ith, gemm_scratch_floats(rows)));
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, kv, hd, 1.0f, qs, hd, K, hd, 0.0f, S, kv);
        for (int r = 0; r < rows; r++) {
            int h = g * rep + r / qn, i = r % qn;
            float *row = S + (size_t)r * kv;
            int vis = causal ? J->pos0 + q0 + i + 1 : kv;
            for (int j = vis; j < kv; j++) row[j] = -INFINITY;
            for (int j = 0; win && j <= vis - 1 - win; j++) row[j] = -INFINITY; // outside the window
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
        // Os (rows, hd) = P (rows, kv) V_g (kv, hd), then each row to its head's place in att
        if (tiles)
            tiles(S, rows, kv, V, false, hd, 0, hd, os, false, NULL, pool_scratch(c->pool, ith, gemm_scratch_floats(rows)));
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, kv, 1.0f, S, kv, V, hd, 0.0f, os, hd);
        for (int r = 0; r < rows; r++)
            memcpy(c->att + (size_t)(q0 + r % qn) * qd + (size_t)(g * rep + r / qn) * hd, os + (size_t)r * hd,
                   sizeof(float) * (size_t)hd);
    }
}

// ---------------------------------------------------------------------------------------
// The trace

static bool traced(const Trace *tr, unsigned kind, int layer) {
    return tr && tr->fn && (tr->want & kind) && (layer < 0 || !tr->layers || (tr->layers >> (layer & 63)) & 1);
}

static void emit(const Trace *tr, unsigned kind, int layer, int pos0, int n, int dim, float *data) {
    if (!traced(tr, kind, layer)) return;
    TracePoint p = {kind, layer, pos0, n, 0, 1, dim, data};
    tr->fn(tr->user, &p);
}

static void emit_att(const Trace *tr, unsigned kind, int layer, int pos0, int n, int H, float *data) {
    TracePoint p = {kind, layer, pos0, n, pos0 + n, H, 0, data};
    tr->fn(tr->user, &p);
}

// ---------------------------------------------------------------------------------------
// One block

// Splits (n, qd + 2 kvd) rows of a fused projection into q, k and v.
static void split_qkv(Ctx *c, int n) {
    const ModelConfig *cf = &c->m->cfg;
    size_t qd = (size_t)cf->n_head * cf->head_dim, kvd = (size_t)cf->n_kv_head * cf->head_dim;
    for (int t = 0; t < n; t++) {
        const float *row = c->qkv + (size_t)t * (qd + 2 * kvd);
        memcpy(c->q + t * qd, row, sizeof(float) * qd);
        memcpy(c->k + t * kvd, row + qd, sizeof(float) * kvd);
        memcpy(c->v + t * kvd, row + qd + kvd, sizeof(float) * kvd);
    }
}

// Decoding one token, q/k/v and attention in one parallel section: the projections' chunks,
// then one task per KV group that waits for its rows (its q heads, its k and v), rotates them,
// appends k and v to the cache and attends its q heads. [out, in] projections: a group's
// attention starts while the other thread still makes the last rows (the latency-bound reads
// of the cache beside the streamed weights); [in, out]: the groups wait for every row block
// and each adds the blocks' sums of its own rows (kern/ops.h), which a serial pass did after
// the section. Either way the section between the two goes, and every value is made by the
// same operations in the same order as in separate sections, so the bits are the same.
//
// Groups that do not divide among the threads (SmolLM2's 3 on 2) go as pieces of their heads:
// the groups of whole rounds are a task each, every later group is split into `pieces` tasks
// (as many as the threads it is left to, at most its heads). The first task of a group to run
// prepares it (waits for its rows, rotates, stores k and v), the others wait for that; each
// head is attended as before, so the bits do not change. A whole group keeps its heads on one
// thread, the second and third reading its keys and values from L2. Paired in one process
// (Intel host, 2 threads, 2026-12-05), SmolLM2 generating after 500 / 2,000 / 4,000 tokens:
// 1.015x / 1.070x / 1.148x as fast as one task a group.
typedef struct {
    Ctx *c;
    int layer, pos0;
    float *q, *k, *v;    // head h's q at q + h hd; group g's k at k + g hd, v likewise
    int part[3], off[3]; // q, k, v: the section's part holding them, from which row
    int whole, pieces;   // tasks: groups 0..whole-1 one each, then `pieces` for each later group
    atomic_int *ready;   // per group: 0 not begun, 1 being prepared, 2 prepared (c->group_ready)
    atomic_int *attended; // per head: 1 once its output is in c->att (after ready)
} GroupJob;

// Group g's rows waited for, rotated and stored in the cache (once per group and section:
// waiting for an [in, out] part's rows adds their sums).
static void group_prepare(GroupJob *G, const LinJob *J, int g) {
    Ctx *c = G->c;
    const ModelConfig *cf = &c->m->cfg;
    int gs = cf->n_head / cf->n_kv_head, hd = cf->head_dim;
    linear_wait_rows(J, G->part[0], G->off[0] + g * gs * hd, G->off[0] + (g + 1) * gs * hd);
    linear_wait_rows(J, G->part[1], G->off[1] + g * hd, G->off[1] + (g + 1) * hd);
    linear_wait_rows(J, G->part[2], G->off[2] + g * hd, G->off[2] + (g + 1) * hd);
    float *q = G->q + (size_t)g * gs * hd, *k = G->k + (size_t)g * hd, *v = G->v + (size_t)g * hd;
    if (cf->a.pos == POS_ROTARY) {
        int rot = cf->a.rope_dim ? cf->a.rope_dim : hd;
        bool pairs = cf->a.rope_style == ROPE_PAIRS;
        rope_apply(q, 1, gs * hd, gs, hd, rot, c->rope_cos, c->rope_sin, pairs);
        rope_apply(k, 1, hd, 1, hd, rot, c->rope_cos, c->rope_sin, pairs);
    }
    size_t at = kv_at(c, G->layer, g, G->pos0);
    kv_put(c, c->kc, at, k, hd);
    kv_put(c, c->vc, at, v, hd);
}

static void group_task(void *arg, const LinJob *J, int t, int ith) {
    GroupJob *G = arg;
    Ctx *c = G->c;
    const ModelConfig *cf = &c->m->cfg;
    int gs = cf->n_head / cf->n_kv_head, hd = cf->head_dim, g = t, h0 = g * gs, h1 = h0 + gs;
    if (t >= G->whole) {
        int u = t - G->whole, p = u % G->pieces;
        g = G->whole + u / G->pieces;
        h0 = g * gs + p * gs / G->pieces, h1 = g * gs + (p + 1) * gs / G->pieces;
    }
    int idle = 0;
    if (atomic_compare_exchange_strong(&G->ready[g], &idle, 1)) {
        group_prepare(G, J, g);
        atomic_store_explicit(&G->ready[g], 2, memory_order_release);
    } else {
        pool_wait_for(&G->ready[g], 2); // being prepared by a running task
    }
    for (int h = h0; h < h1; h++) {
        attend_one(c, G->layer, h, G->q + (size_t)h * hd, c->scores[ith], G->pos0 + 1);
        atomic_store_explicit(&G->attended[h], 1, memory_order_release);
    }
}

// The output projection's wait for elements i0..i1 of c->att: the heads holding them.
static void group_wait_att(void *arg, int i0, int i1) {
    GroupJob *G = arg;
    int hd = G->c->m->cfg.head_dim;
    for (int h = i0 / hd; h <= (i1 - 1) / hd; h++) pool_wait_for(&G->attended[h], 1);
}

// Whether layer l's q/k/v and attention run as one decoding section: one causal token, and
// nothing traced in between (q, k and v, the scores and probabilities are not kept).
static bool attention_fusable(const Ctx *c, int l, int n, const Trace *tr) {
    if (n != 1 || !c->m->cfg.a.causal) return false;
    return !traced(tr, TRACE_Q | TRACE_K | TRACE_V | TRACE_ATT_SCORES | TRACE_ATT_PROBS, l);
}

// Whether decoding layer l's output projection joins the attention section: with float
// weights (block types multiply an input quantized once for the section, and this input is
// made inside it). Its chunks come after the group tasks and wait for the heads they read (an
// [in, out] row block its heads, an [out, in] chunk all of them), so a thread done with its
// heads streams the projection's weights while the other still reads the cache, and the
// section between the two goes. Same operations, same order: the bits do not change. Paired in
// one process (Intel host, 2 threads, 2026-12-05, decoding after 512 tokens): GPT-2 124M F32
// 1.010x, F16 1.011x; the Llama shape ([out, in], which waits for every head) 0.998x.
static bool out_fusable(const Ctx *c, int l) {
    return dtype_block(c->m->layers[l].o.w.dt) == 1;
}

// Decoding layer l at pos0: q/k/v of h (d), attention into c->att and, when with_o (and
// out_fusable), the output projection into c->tmp, in one section. Returns whether it made the
// projection.
static bool attention_decode(Ctx *c, int l, const float *h, int pos0, bool with_o) {
    const ModelConfig *cf = &c->m->cfg;
    const Layer *ly = &c->m->layers[l];
    int Hkv = cf->n_kv_head, hd = cf->head_dim, qd = cf->n_head * hd, kvd = Hkv * hd;
    int rot = cf->a.rope_dim ? cf->a.rope_dim : hd;
    if (cf->a.pos == POS_ROTARY) rope_table(c->rope_cos, c->rope_sin, pos0, 1, rot / 2, c->rope_inv);
    GroupJob G = {.c = c, .layer = l, .pos0 = pos0};
    LinDecode d[4];
    int n;
    if (cf->a.fused_qkv) {
        d[0] = (LinDecode){.l = &ly->qkv, .out = c->qkv};
        n = 1;
        G.q = c->qkv, G.k = c->qkv + qd, G.v = c->qkv + qd + kvd;
        G.off[1] = qd, G.off[2] = qd + kvd;
    } else {
        d[0] = (LinDecode){.l = &ly->q, .out = c->q};
        d[1] = (LinDecode){.l = &ly->k, .out = c->k};
        d[2] = (LinDecode){.l = &ly->v, .out = c->v};
        n = 3;
        G.q = c->q, G.k = c->k, G.v = c->v;
        G.part[1] = 1, G.part[2] = 2;
    }
    with_o = with_o && out_fusable(c, l);
    if (with_o) d[n++] = (LinDecode){.l = &ly->o, .out = c->tmp, .late = true, .x = c->att};
    int nth = pool_size(c->pool), rest = Hkv % nth, gs = cf->n_head / Hkv;
    G.whole = Hkv - rest;
    G.pieces = rest ? (nth + rest - 1) / rest : 1;
    if (G.pieces > gs) G.pieces = gs;
    G.ready = c->group_ready, G.attended = c->group_ready + Hkv;
    for (int g = 0; g < Hkv + cf->n_head; g++) atomic_init(&G.ready[g], 0);
    LinAfter after = {group_task, &G, G.whole + rest * G.pieces, group_wait_att};
    linear_decode(c->pool, h, d, n, &after);
    return with_o;
}

// The attention sublayer of layer l on h (n, d) into tmp (n, d).
static int attention_sublayer(Ctx *c, int l, const float *h, int pos0, int n, const Trace *tr, Err *e) {
    const ModelConfig *cf = &c->m->cfg;
    const Layer *ly = &c->m->layers[l];
    int H = cf->n_head, Hkv = cf->n_kv_head, hd = cf->head_dim;
    size_t kvd = (size_t)Hkv * hd;
    if (attention_fusable(c, l, n, tr)) {
        // a traced z may be written by the trace (activation patching replaces a head's): the
        // projection then reads it after the trace, not inside the section (a one-token patch
        // of a head changed nothing before 2026-12-06)
        bool with_o = attention_decode(c, l, h, pos0, !traced(tr, TRACE_Z, l));
        emit(tr, TRACE_Z, l, pos0, n, H * hd, c->att);
        if (!with_o) linear_forward(c->pool, c->tmp, c->att, &ly->o, n);
        emit(tr, TRACE_ATTN_OUT, l, pos0, n, cf->n_embd, c->tmp);
        return 0;
    }
    // where q, k and v are read from: their own arrays, or (fused, unrotated and untraced) the
    // fused projection's rows in place, with no copy (a serial pass that took about 2% of a
    // 512-token prefill of GPT-2 124M)
    const float *q = c->q, *k = c->k, *v = c->v;
    size_t ldq = (size_t)H * hd, ldkv = kvd;
    if (cf->a.fused_qkv) {
        linear_forward(c->pool, c->qkv, h, &ly->qkv, n);
        if (cf->a.pos == POS_ROTARY || traced(tr, TRACE_Q | TRACE_K | TRACE_V, l)) {
            split_qkv(c, n);
        } else {
            q = c->qkv, k = c->qkv + ldq, v = c->qkv + ldq + kvd;
            ldq = ldkv = ldq + 2 * kvd;
        }
    } else {
        float *outs[] = {c->q, c->k, c->v};
        const Linear *ls[] = {&ly->q, &ly->k, &ly->v};
        linear_forward_n(c->pool, outs, h, ls, 3, n);
    }
    if (cf->a.pos == POS_ROTARY) {
        int rot = cf->a.rope_dim ? cf->a.rope_dim : hd;
        bool pairs = cf->a.rope_style == ROPE_PAIRS;
        rope_table(c->rope_cos, c->rope_sin, pos0, n, rot / 2, c->rope_inv);
        rope_apply(c->q, n, H * hd, H, hd, rot, c->rope_cos, c->rope_sin, pairs);
        rope_apply(c->k, n, (int)kvd, Hkv, hd, rot, c->rope_cos, c->rope_sin, pairs);
    }
    emit(tr, TRACE_Q, l, pos0, n, H * hd, c->q);
    emit(tr, TRACE_K, l, pos0, n, (int)kvd, c->k);
    emit(tr, TRACE_V, l, pos0, n, (int)kvd, c->v);
    KvStoreJob kj = {c, l, pos0, n, k, v, ldkv};
    if (n == 1) kv_store_job(&kj, 0, 1);
    else pool_run(c->pool, kv_store_job, &kj);
    AttJob aj = {c, l, pos0, n, q, ldq, NULL, NULL, 0};
    bool ts = traced(tr, TRACE_ATT_SCORES, l), tp = traced(tr, TRACE_ATT_PROBS, l);
    if (ts || tp) {
        size_t one = (size_t)H * n * (size_t)(pos0 + n), need = one * (ts && tp ? 2 : 1);
        if (need > c->trace_att_cap) {
            float *nb = realloc(c->trace_att, mem_mul(need, sizeof(float)));
            if (!nb) return err_set(e, "out of memory for the attention trace");
            c->trace_att = nb;
            c->trace_att_cap = need;
        }
        aj.trace_scores = ts ? c->trace_att : NULL;
        aj.trace_probs = tp ? c->trace_att + (ts ? one : 0) : NULL;
    }
    pool_run(c->pool, attention_job, &aj);
    if (ts) emit_att(tr, TRACE_ATT_SCORES, l, pos0, n, H, aj.trace_scores);
    if (tp) emit_att(tr, TRACE_ATT_PROBS, l, pos0, n, H, aj.trace_probs);
    emit(tr, TRACE_Z, l, pos0, n, H * hd, c->att);
    linear_forward(c->pool, c->tmp, c->att, &ly->o, n);
    emit(tr, TRACE_ATTN_OUT, l, pos0, n, cf->n_embd, c->tmp);
    return 0;
}

// The feed-forward sublayer of layer l on h (n, d) into tmp (n, d).
static void mlp_sublayer(Ctx *c, int l, const float *h, int pos0, int n, const Trace *tr) {
    const ModelConfig *cf = &c->m->cfg;
    const Layer *ly = &c->m->layers[l];
    size_t nf = (size_t)n * cf->n_ff;
    bool swi = cf->a.act == ACT_SWIGLU;
    if (n == 1 && (!swi || (ly->up.out_in && ly->gate.out_in))) {
        // decoding: the activation where the rows are made ([out, in]: each chunk of rows of
        // up, or of gate and up; [in, out]: each row block of down makes its slice of its
        // input final), and [in, out] down in the same section as up
        LinDecode d[2] = {{.l = swi ? &ly->gate : &ly->up, .l2 = swi ? &ly->up : NULL, .out = swi ? c->gate : c->ff,
                           .out2 = swi ? c->ff : NULL, .act = act_fn(cf->a.act)},
                          {.l = &ly->down, .out = c->tmp, .chain = true}};
        linear_decode(c->pool, h, d, 2, NULL);
    } else if (swi) {
        float *outs[] = {c->ff, c->gate};
        const Linear *ls[] = {&ly->up, &ly->gate};
        linear_forward_n(c->pool, outs, h, ls, 2, n);
        act_par(c, c->gate, c->ff, ACT_SWIGLU, nf);
        linear_forward(c->pool, c->tmp, c->gate, &ly->down, n);
    } else {
        linear_forward(c->pool, c->ff, h, &ly->up, n);
        act_par(c, c->ff, NULL, cf->a.act, nf);
        linear_forward(c->pool, c->tmp, c->ff, &ly->down, n);
    }
    emit(tr, TRACE_MLP_OUT, l, pos0, n, cf->n_embd, c->tmp);
}

// x (n, d) += sublayer output (in tmp); post-norm blocks then normalise the sum.
static void residual(Ctx *c, const Norm *nw, int n) {
    size_t nd = (size_t)n * c->m->cfg.n_embd;
    add_inplace(c->x, c->tmp, nd);
    if (c->m->cfg.a.post_norm) norm_par(c, c->x, c->x, nw, n);
}

// The head on hf (rn, d), the final hidden state (after the final norm): the head transform
// when there is one (hf is overwritten), then the output projection into logits (rn, n_vocab).
static void head_transform(Ctx *c, float *hf, int rn) {
    const Model *m = c->m;
    size_t d = (size_t)m->cfg.n_embd;
    if (m->cfg.a.head_transform) { // dense, activation, norm (BERT's prediction head)
        linear_forward(c->pool, c->tmp, hf, &m->head_dense, rn);
        act_par(c, c->tmp, NULL, m->cfg.a.act == ACT_SWIGLU ? ACT_GELU_ERF : m->cfg.a.act, (size_t)rn * d);
        norm_par(c, hf, c->tmp, &m->head_norm, rn);
    }
}

static void head_forward(Ctx *c, float *hf, int rn, float *logits) {
    head_transform(c, hf, rn);
    linear_forward(c->pool, logits, hf, &c->m->output, rn);
}

static int blocks(Ctx *c, int layer0, int n, const Trace *tr, Err *e);
static int head_chunk(Ctx *c, int n, float *logits, bool all, const Trace *tr, Err *e);

// Evaluates one chunk of n <= c->chunk tokens at positions c->pos...
static int eval_chunk(Ctx *c, const int *ids, const int *types, int n, float *logits, bool all, const Trace *tr,
                      Err *e) {
    const Model *m = c->m;
    const ModelConfig *cf = &m->cfg;
    const Arch *a = &cf->a;
    int d = cf->n_embd, pos0 = c->pos;
    float *x = c->x;
    // embeddings: token (+ position) (+ type), then the embedding norm
    for (int t = 0; t < n; t++) {
        float *row = x + (size_t)t * d, *extra = c->tmp;
        tensor_row_f32(&m->tok_embd, (int64_t)ids[t] * d, d, row);
        if (a->pos == POS_LEARNED) {
            tensor_row_f32(&m->pos_embd, (int64_t)(pos0 + t) * d, d, extra);
            add_inplace(row, extra, (size_t)d);
        }
        if (a->token_types) {
            tensor_row_f32(&m->type_embd, (int64_t)(types ? types[t] : 0) * d, d, extra);
            add_inplace(row, extra, (size_t)d);
        }
    }
    if (a->emb_norm) norm_par(c, x, x, &m->emb_norm, n);
    emit(tr, TRACE_EMBED, -1, pos0, n, d, x);
    if (blocks(c, 0, n, tr, e)) return -1;
    return head_chunk(c, n, logits, all, tr, e);
}

// Blocks layer0..n_layer-1 on the n rows of c->x at positions c->pos.. (the cache's earlier
// positions hold every layer's keys and values).
static int blocks(Ctx *c, int layer0, int n, const Trace *tr, Err *e) {
    const Model *m = c->m;
    const ModelConfig *cf = &m->cfg;
    const Arch *a = &cf->a;
    int d = cf->n_embd, pos0 = c->pos;
    float *x = c->x;
    for (int l = layer0; l < cf->n_layer; l++) {
        if (c->stop && *c->stop) return err_set(e, "interrupted");
        const Layer *ly = &m->layers[l];
        emit(tr, TRACE_RESID_PRE, l, pos0, n, d, x);
        const float *h = x;
        if (!a->post_norm) norm_par(c, c->xn, x, &ly->attn_norm, n), h = c->xn;
        if (attention_sublayer(c, l, h, pos0, n, tr, e)) return -1;
        residual(c, &ly->attn_norm, n);
        emit(tr, TRACE_RESID_MID, l, pos0, n, d, x);
        h = x;
        if (!a->post_norm) norm_par(c, c->xn, x, &ly->ffn_norm, n), h = c->xn;
        mlp_sublayer(c, l, h, pos0, n, tr);
        residual(c, &ly->ffn_norm, n);
        // a NaN or an infinity in the block's weights: said here, whatever reads the states (an
        // encoder's embedding, the analyses' traces showed NaN or plausible numbers: a probe's
        // accuracy, a cosine of 0)
        for (size_t i = 0; i < (size_t)n * (size_t)d; i++)
            if (!isfinite(x[i]))
                return err_set(e, "%s gives hidden states that are not finite numbers (NaN or infinite) after block "
                                  "%d at position %d: its weights hold a NaN or an infinity (a damaged file?)",
                               m->name, l, pos0 + (int)(i / (size_t)d));
        emit(tr, TRACE_RESID_POST, l, pos0, n, d, x);
    }
    return 0;
}

// The final norm and the head on the n rows of c->x (positions c->pos..), then the cache
// takes them.
static int head_chunk(Ctx *c, int n, float *logits, bool all, const Trace *tr, Err *e) {
    const Model *m = c->m;
    const ModelConfig *cf = &m->cfg;
    const Arch *a = &cf->a;
    int d = cf->n_embd, pos0 = c->pos;
    float *x = c->x;
    // The head reads the last row only, unless every row's logits or final state is wanted.
    bool want_lnf = traced(tr, TRACE_LN_F, -1), want_logits = traced(tr, TRACE_LOGITS, -1);
    bool every = all || want_lnf || want_logits;
    int r0 = every ? 0 : n - 1, rn = every ? n : 1;
    float *hf = c->xn; // (rn, d): the final hidden state of rows r0..n-1
    if (a->final_norm) norm_par(c, hf, x + (size_t)r0 * d, &m->out_norm, rn);
    else memcpy(hf, x + (size_t)r0 * d, sizeof(float) * (size_t)rn * d);
    emit(tr, TRACE_LN_F, -1, pos0, n, d, hf);
    if (!logits && !want_logits) {
        c->pos += n;
        return 0;
    }
    int V = cf->n_vocab;
    if (want_logits) {
        // every row's logits for the trace; the caller's copy (all rows or the last) after it
        size_t need = (size_t)n * V;
        if (need > c->logits_cap) {
            float *nb = realloc(c->logits_all, mem_mul(need, sizeof(float)));
            if (!nb) return err_set(e, "out of memory for the logits trace");
            c->logits_all = nb;
            c->logits_cap = need;
        }
        head_forward(c, hf, n, c->logits_all);
        emit(tr, TRACE_LOGITS, -1, pos0, n, V, c->logits_all);
        if (logits)
            memcpy(logits, c->logits_all + (all ? 0 : (size_t)(n - 1) * V), sizeof(float) * (size_t)(all ? n : 1) * V);
    } else if (all) {
        head_forward(c, hf, n, logits);
    } else {
        head_forward(c, hf + (size_t)(rn - 1) * d, 1, logits); // the last row
    }
    c->pos += n;
    return 0;
}

int ctx_head(Ctx *c, const float *x, int n, float *logits, Err *e) {
    const ModelConfig *cf = &c->m->cfg;
    if (!cf->a.lm_head) return err_set(e, "%s has no language-model head", c->m->name);
    size_t d = (size_t)cf->n_embd;
    for (int r0 = 0; r0 < n; r0 += c->chunk) {
        if (c->stop && *c->stop) return err_set(e, "interrupted"); // the logit lens's layers, a chunk each
        int rn = n - r0 < c->chunk ? n - r0 : c->chunk;
        if (cf->a.final_norm) norm_par(c, c->xn, x + (size_t)r0 * d, &c->m->out_norm, rn);
        else memcpy(c->xn, x + (size_t)r0 * d, sizeof(float) * (size_t)rn * d);
        head_forward(c, c->xn, rn, logits + (size_t)r0 * cf->n_vocab);
    }
    return 0;
}

int ctx_eval_types(Ctx *c, const int *ids, const int *types, int n, float *logits, bool all, const Trace *trace,
                   Err *e) {
    const ModelConfig *cf = &c->m->cfg;
    if (n <= 0) return err_set(e, "nothing to evaluate");
    if (c->pos + n > cf->n_ctx)
        return err_set(e, "%d tokens do not fit in the context of %d (%d of its positions in use)", n, cf->n_ctx,
                       c->pos);
    if (!cf->a.causal && c->pos > 0)
        return err_set(e, "a bidirectional model reads a whole text at once (the cache holds %d tokens)", c->pos);
    if (!cf->a.lm_head && (logits || traced(trace, TRACE_LOGITS, -1)))
        return err_set(e, "%s has no output head (an encoder without its masked-language-model head): it gives no "
                          "logits (embed, similarity and attention work)",
                       c->m->name);
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= cf->n_vocab)
            return err_set(e, "token id %d is out of range (vocabulary of %d)", ids[i], cf->n_vocab);
        if (types && (!cf->a.token_types ? types[i] != 0 : types[i] < 0 || types[i] >= cf->n_types))
            return err_set(e, "token type %d is out of range (%d types)", types[i], cf->a.token_types ? cf->n_types : 1);
    }
    if (ctx_reserve(c, c->pos + n, e)) return -1;
    int start = c->pos;
    for (int done = 0; done < n;) {
        int k = n - done < c->chunk ? n - done : c->chunk;
        bool last = done + k == n;
        float *lg = NULL;
        if (logits && all) lg = logits + (size_t)done * cf->n_vocab;
        else if (logits && last) lg = logits;
        if (eval_chunk(c, ids + done, types ? types + done : NULL, k, lg, all, trace, e)) {
            c->pos = start;
            return -1;
        }
        // a NaN or an infinity anywhere in the weights ends in logits that are NaN or infinite:
        // say so rather than sample from them (every id then compared false: token 0,
        // log-probability NaN, KL 0)
        size_t nl = lg ? (size_t)(all ? k : 1) * (size_t)cf->n_vocab : 0;
        for (size_t i = 0; i < nl; i++)
            if (!isfinite(lg[i])) {
                c->pos = start;
                return err_set(e, "%s gives logits that are not finite numbers (NaN or infinite) at position %d: its "
                                  "weights hold a NaN or an infinity (a damaged file?)",
                               c->m->name, start + done + (all ? (int)(i / (size_t)cf->n_vocab) : k - 1));
            }
        done += k;
    }
    return 0;
}

int ctx_eval_from(Ctx *c, int layer, const float *x, int n, float *out, const Trace *trace, Err *e) {
    const ModelConfig *cf = &c->m->cfg;
    size_t d = (size_t)cf->n_embd;
    if (n <= 0) return err_set(e, "nothing to evaluate");
    if (layer < 0 || layer > cf->n_layer) return err_set(e, "layer %d: the model has %d blocks", layer, cf->n_layer);
    if (c->pos + n > cf->n_ctx)
        return err_set(e, "%d tokens do not fit in the context of %d (%d of its positions in use)", n, cf->n_ctx,
                       c->pos);
    if (!cf->a.causal && c->pos > 0)
        return err_set(e, "a bidirectional model reads a whole text at once (the cache holds %d tokens)", c->pos);
    if (ctx_reserve(c, c->pos + n, e)) return -1;
    int start = c->pos;
    for (int done = 0; done < n;) {
        int k = n - done < c->chunk ? n - done : c->chunk;
        memcpy(c->x, x + (size_t)done * d, sizeof(float) * (size_t)k * d);
        if (blocks(c, layer, k, trace, e)) {
            c->pos = start;
            return -1;
        }
        if (out) memcpy(out + (size_t)done * d, c->x, sizeof(float) * (size_t)k * d);
        c->pos += k;
        done += k;
    }
    return 0;
}

int ctx_head_pick(Ctx *c, const float *x, const int *tok, int nt, float *out, Err *e) {
    const Model *m = c->m;
    const ModelConfig *cf = &m->cfg;
    if (!cf->a.lm_head) return err_set(e, "%s has no language-model head", m->name);
    const Linear *o = &m->output;
    int d = cf->n_embd, B = dtype_block(o->w.dt);
    for (int i = 0; i < nt; i++)
        if (tok[i] < 0 || tok[i] >= cf->n_vocab)
            return err_set(e, "token id %d is out of range (vocabulary of %d)", tok[i], cf->n_vocab);
    float *hf = c->xn, *w = c->tmp; // one row each
    if (cf->a.final_norm) norm_rows(hf, x, &m->out_norm, cf, 1, d);
    else memcpy(hf, x, sizeof(float) * (size_t)d);
    head_transform(c, hf, 1);
    for (int i = 0; i < nt; i++) {
        // the token's column of the head: a stored row ([out, in]), or one element of each row
        if (o->out_in) tensor_row_f32(&o->w, (int64_t)tok[i] * d, d, w);
        else {
            float blk[256];
            int64_t b0 = (int64_t)tok[i] / B * B;
            for (int j = 0; j < d; j++) {
                tensor_row_f32(&o->w, (int64_t)j * o->out + b0, B, blk);
                w[j] = blk[tok[i] - b0];
            }
        }
        double s = o->bias ? o->bias[tok[i]] : 0;
        for (int j = 0; j < d; j++) s += (double)hf[j] * w[j];
        out[i] = (float)s;
    }
    return 0;
}

int ctx_eval(Ctx *c, const int *ids, int n, float *logits, bool all, const Trace *trace, Err *e) {
    return ctx_eval_types(c, ids, NULL, n, logits, all, trace, e);
}
