// heads.c - head statistics read from the trace's attention probabilities, accumulated as
// each layer's maps pass by (nothing is kept but the sums).
#include "analysis/heads.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/sample.h"
#include "kern/pool.h"

static const char *const k_names[HEAD_N_STATS] = {"entropy", "prev_token", "sink", "self", "induction"};

const char *head_stat_name(int i) { return i >= 0 && i < HEAD_N_STATS ? k_names[i] : "?"; }

double head_stat(const HeadStat *s, int i) {
    switch (i) {
    case 0: return s->entropy;
    case 1: return s->prev_token;
    case 2: return s->sink;
    case 3: return s->self;
    default: return s->induction;
    }
}

int head_stat_find(const char *name) {
    for (int i = 0; i < HEAD_N_STATS; i++)
        if (!strcmp(name, k_names[i])) return i;
    return -1;
}

typedef struct {
    int n_head;
    const int *ind_start, *ind_keys; // row i's induction targets: ind_keys[ind_start[i] .. ind_start[i+1])
    HeadStat *sum;                   // [n_layer * n_head] running sums
} Acc;

// p->data is [n_head, n_q, n_kv]: rows pos0.. of every head of one layer.
static void acc_trace(void *user, const TracePoint *p) {
    Acc *A = user;
    if (p->kind != TRACE_ATT_PROBS) return;
    for (int h = 0; h < p->n_head; h++) {
        HeadStat *s = &A->sum[(size_t)p->layer * A->n_head + h];
        for (int r = 0; r < p->n_q; r++) {
            int i = p->pos0 + r;
            if (i == 0) continue;
            const float *row = p->data + ((size_t)h * p->n_q + r) * p->n_kv;
            double ent = 0;
            for (int j = 0; j < p->n_kv; j++)
                if (row[j] > 0) ent -= (double)row[j] * log((double)row[j]);
            s->entropy += ent;
            s->prev_token += row[i - 1];
            s->sink += row[0];
            s->self += row[i];
            for (int k = A->ind_start[i]; k < A->ind_start[i + 1]; k++) s->induction += row[A->ind_keys[k]];
        }
    }
}

int heads_stats(Ctx *c, const int *ids, const int *types, int n, int rep, int tail, HeadStat *out, Err *e) {
    const ModelConfig *cf = ctx_config(c);
    if (n < 2) return err_set(e, "head statistics need at least 2 tokens (got %d)", n);
    if (rep < 0 || tail < 0 || 2 * rep + tail > n)
        return err_set(e, "a repeated sequence of %d tokens and %d after it do not fit in %d", rep, tail, n);
    // induction targets: for row i, j + 1 for every earlier j with ids[j] == ids[i]; on a
    // repeated sequence, i - rep + 1 for the rows i of the second copy
    int *start = calloc((size_t)n + 1, sizeof *start);
    IntVec keys = {0};
    int rows_ind = 0;
    if (!start) return err_set(e, "out of memory");
    for (int i = 0; i < n; i++) {
        start[i] = keys.n;
        if (rep) {
            if (i >= n - tail - rep && i < n - tail) iv_push(&keys, i - rep + 1);
        } else {
            for (int j = 0; j < i; j++)
                if (ids[j] == ids[i]) iv_push(&keys, j + 1);
        }
        rows_ind += i > 0 && keys.n > start[i];
    }
    start[n] = keys.n;
    size_t nh = (size_t)cf->n_layer * cf->n_head;
    memset(out, 0, sizeof *out * nh);
    Acc A = {cf->n_head, start, keys.v, out};
    Trace tr = {TRACE_ATT_PROBS, 0, acc_trace, &A};
    ctx_reset(c);
    int rc = ctx_eval_types(c, ids, types, n, NULL, false, &tr, e);
    for (size_t k = 0; !rc && k < nh; k++) {
        HeadStat *s = &out[k];
        double r = (double)(n - 1);
        s->entropy /= r, s->prev_token /= r, s->sink /= r, s->self /= r;
        s->induction = rows_ind ? s->induction / rows_ind : NAN;
    }
    free(start);
    iv_free(&keys);
    return rc;
}

// Fisher-Yates over the first k places of a[m]: a[0..k) becomes k distinct draws.
static void shuffle_head(int *a, int m, int k, Rng *r) {
    for (int i = 0; i < k; i++) {
        int j = i + (int)(rng_next(r) % (uint64_t)(m - i));
        int tmp = a[i];
        a[i] = a[j], a[j] = tmp;
    }
}

int heads_induction_ids(const Tokenizer *t, int vocab, int bos, int len, uint64_t seed, const int *from, int n_from,
                        int *ids, bool *distinct, Err *e) {
    *distinct = true;
    Rng r;
    rng_seed(&r, seed);
    int *pool = malloc(sizeof(int) * (size_t)(n_from > 0 ? n_from : vocab));
    if (!pool) return err_set(e, "out of memory");
    if (n_from > 0) { // len draws with replacement from the distinct ids of from
        int m = 0;
        for (int i = 0; i < n_from; i++) {
            int k = 0;
            while (k < m && pool[k] != from[i]) k++;
            if (k == m) pool[m++] = from[i];
        }
        int n = 0;
        if (bos >= 0) ids[n++] = bos;
        if (m >= len) { // distinct, as the measure wants: the first `len` of the pool shuffled
            shuffle_head(pool, m, len, &r);
            memcpy(ids + n, pool, sizeof(int) * (size_t)len);
            n += len;
        } else {
            *distinct = false;
            for (int i = 0; i < len; i++) ids[n++] = pool[rng_next(&r) % (uint64_t)m];
        }
        memcpy(ids + n, ids + n - len, sizeof(int) * (size_t)len);
        free(pool);
        return n + len;
    }
    // the ordinary tokens, shuffled by the seed (Fisher-Yates), the first len of them
    int m = 0;
    for (int i = 0; i < vocab; i++)
        if (!t || i >= tok_vocab_size(t) || !tok_is_special(t, i)) pool[m++] = i;
    if (m < len) {
        free(pool);
        return err_set(e, "len=%d: the vocabulary has only %d ordinary tokens", len, m);
    }
    shuffle_head(pool, m, len, &r);
    int n = 0;
    if (bos >= 0) ids[n++] = bos;
    for (int rep = 0; rep < 2; rep++)
        for (int i = 0; i < len; i++) ids[n++] = pool[i];
    free(pool);
    return n;
}

typedef struct {
    int n_head, from, to;
    float *out;
} AttendAcc;

static void attend_trace(void *user, const TracePoint *p) {
    AttendAcc *A = user;
    int r = A->from - p->pos0;
    if (p->kind != TRACE_ATT_PROBS || r < 0 || r >= p->n_q) return;
    for (int h = 0; h < p->n_head; h++)
        A->out[(size_t)p->layer * A->n_head + h] = p->data[((size_t)h * p->n_q + r) * p->n_kv + A->to];
}

int heads_attend(Ctx *c, const int *ids, const int *types, int n, int from, int to, float *out, Err *e) {
    const ModelConfig *cf = ctx_config(c);
    if (from < 0 || from >= n || to < 0 || to >= n)
        return err_set(e, "positions from=%d to=%d: the text has %d tokens (0..%d)", from, to, n, n - 1);
    memset(out, 0, sizeof *out * (size_t)cf->n_layer * cf->n_head);
    AttendAcc A = {cf->n_head, from, to, out};
    Trace tr = {TRACE_ATT_PROBS, 0, attend_trace, &A};
    ctx_reset(c);
    return ctx_eval_types(c, ids, types, n, NULL, false, &tr, e);
}

typedef struct {
    int n;
    float *mean; // [n_layer, n, n]: mean over heads
} RollAcc;

static void roll_trace(void *user, const TracePoint *p) {
    RollAcc *A = user;
    if (p->kind != TRACE_ATT_PROBS) return;
    float *m = A->mean + (size_t)p->layer * A->n * A->n;
    for (int h = 0; h < p->n_head; h++)
        for (int r = 0; r < p->n_q; r++) {
            float *dst = m + (size_t)(p->pos0 + r) * A->n;
            const float *src = p->data + ((size_t)h * p->n_q + r) * p->n_kv;
            for (int j = 0; j < p->n_kv; j++) dst[j] += src[j] / (float)p->n_head;
        }
}

// One layer's step of the rollout, R = M R, on columns [j0, j1) of R for each thread: in place
// through strmm when M is lower triangular (a causal model's), else through sgemm into next.
typedef struct {
    int n;
    bool lower;
    const float *M;
    float *R, *next;
} RollStep;

static void roll_step(void *arg, int ith, int nth) {
    const RollStep *S = arg;
    int j0 = (int)((long)S->n * ith / nth), j1 = (int)((long)S->n * (ith + 1) / nth);
    if (j0 >= j1) return;
    if (S->lower)
        cblas_strmm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, S->n, j1 - j0, 1.0f, S->M, S->n,
                    S->R + j0, S->n);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, S->n, j1 - j0, S->n, 1.0f, S->M, S->n, S->R + j0, S->n,
                    0.0f, S->next + j0, S->n);
}

int heads_rollout(Ctx *c, const int *ids, const int *types, int n, float *out, Err *e) {
    const ModelConfig *cf = ctx_config(c);
    size_t nn = (size_t)n * n;
    bool lower = cf->a.causal;
    float *mean = calloc(nn * (size_t)cf->n_layer, sizeof(float)), *tmp = lower ? NULL : malloc(sizeof(float) * nn);
    if (!mean || (!lower && !tmp)) {
        free(mean), free(tmp);
        return err_set(e, "out of memory for %d attention maps of %d tokens", cf->n_layer, n);
    }
    RollAcc A = {n, mean};
    Trace tr = {TRACE_ATT_PROBS, 0, roll_trace, &A};
    ctx_reset(c);
    int rc = ctx_eval_types(c, ids, types, n, NULL, false, &tr, e);
    // R = I, then R = M_l R with M_l = 0.5 A_l + 0.5 I for l = 0..L-1, the products on the pass's
    // threads (a causal model's M_l and R are lower triangular: strmm, in place), Ctrl-C looked
    // at between layers. They were a serial triple loop that never looked at it (a random
    // 2-layer model's 2,000 tokens took 37 s in it, 2 s in all now; SmolLM2's 2,000 7.2 s
    // either way, most of it the pass and the printing).
    volatile sig_atomic_t *stop = ctx_stop(c);
    float *R = out;
    for (size_t i = 0; i < nn; i++) R[i] = i % (size_t)(n + 1) == 0;
    for (int l = 0; !rc && l < cf->n_layer; l++) {
        if (stop && *stop) {
            rc = err_set(e, "interrupted");
            break;
        }
        float *M = mean + (size_t)l * nn; // made M_l in place: its map is read only here
        for (size_t i = 0; i < nn; i++) M[i] *= 0.5f;
        for (int i = 0; i < n; i++) M[(size_t)i * n + i] += 0.5f;
        RollStep S = {n, lower, M, R, tmp};
        pool_run(ctx_pool(c), roll_step, &S);
        if (!lower) {
            float *t = R;
            R = tmp, tmp = t;
        }
    }
    if (R != out) { // the last product went into the other buffer
        memcpy(out, R, sizeof(float) * nn);
        tmp = R;
    }
    free(mean), free(tmp);
    return rc;
}

typedef struct {
    int query, qoff, koff, hd;
    float *q, *k;
} QkAcc;

static void qk_trace(void *user, const TracePoint *p) {
    QkAcc *A = user;
    for (int r = 0; r < p->n_q; r++) {
        int t = p->pos0 + r;
        const float *row = p->data + (size_t)r * p->dim;
        if (p->kind == TRACE_Q && t == A->query) memcpy(A->q, row + A->qoff, sizeof(float) * (size_t)A->hd);
        if (p->kind == TRACE_K) memcpy(A->k + (size_t)t * A->hd, row + A->koff, sizeof(float) * (size_t)A->hd);
    }
}

int heads_qk(Ctx *c, const int *ids, const int *types, int n, int layer, int head, int query, float *q, float *k,
             Err *e) {
    const ModelConfig *cf = ctx_config(c);
    if (layer < 0 || layer >= cf->n_layer || head < 0 || head >= cf->n_head)
        return err_set(e, "layer %d head %d: the model has %d layers of %d heads", layer, head, cf->n_layer, cf->n_head);
    if (query < 0 || query >= n) return err_set(e, "query=%d: the text has %d tokens (0..%d)", query, n, n - 1);
    int hd = cf->head_dim, g = head / (cf->n_head / cf->n_kv_head);
    QkAcc A = {query, head * hd, g * hd, hd, q, k};
    Trace tr = {TRACE_Q | TRACE_K, 1ull << (layer & 63), qk_trace, &A};
    ctx_reset(c);
    return ctx_eval_types(c, ids, types, n, NULL, false, &tr, e);
}
