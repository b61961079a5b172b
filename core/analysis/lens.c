// lens.c - the logit lens and activation patching over the engine's trace: the residual
// stream is read (lens) or written (patching) in the trace callback as the pass computes it.
#include "analysis/lens.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kern/ops.h"

// ---------------------------------------------------------------------------------------
// The logit lens

typedef struct {
    float *hidden; // [L + 1, n, d]
    int n, d;
} Keep;

static void keep_trace(void *user, const TracePoint *p) {
    Keep *K = user;
    int slot = p->kind == TRACE_EMBED ? 0 : p->layer + 1;
    memcpy(K->hidden + ((size_t)slot * K->n + p->pos0) * K->d, p->data, sizeof(float) * (size_t)p->n_q * K->d);
}

int lens_hidden(Ctx *c, const int *ids, const int *types, int n, float *hidden, float *logits, Err *e) {
    const ModelConfig *cf = ctx_config(c);
    Keep K = {hidden, n, cf->n_embd};
    Trace tr = {TRACE_EMBED | TRACE_RESID_POST, 0, keep_trace, &K};
    ctx_reset(c);
    return ctx_eval_types(c, ids, types, n, logits, true, &tr, e);
}

int lens_probs(Ctx *c, const float *x, int n, float *probs, Err *e) {
    int V = ctx_config(c)->n_vocab;
    if (ctx_head(c, x, n, probs, e)) return -1;
    for (int i = 0; i < n; i++) softmax_inplace(probs + (size_t)i * V, V);
    return 0;
}

// ---------------------------------------------------------------------------------------
// Activation patching

void patch_result_free(PatchResult *r) {
    free(r->resid), free(r->head), free(r->mlp);
    r->resid = r->head = r->mlp = NULL;
}

// The clean run's activations: resid [L + 1, n, d], z [L, n, qd], mlp [L, n, d].
typedef struct {
    float *resid, *z, *mlp;
    int n, d, qd;
} Clean;

static void clean_trace(void *user, const TracePoint *p) {
    Clean *C = user;
    float *dst;
    switch (p->kind) {
    case TRACE_EMBED: dst = C->resid; break;
    case TRACE_RESID_POST: dst = C->resid + (size_t)(p->layer + 1) * C->n * C->d; break;
    case TRACE_Z: dst = C->z + (size_t)p->layer * C->n * C->qd; break;
    case TRACE_MLP_OUT: dst = C->mlp + (size_t)p->layer * C->n * C->d; break;
    default: return;
    }
    memcpy(dst + (size_t)p->pos0 * p->dim, p->data, sizeof(float) * (size_t)p->n_q * p->dim);
}

// One site: rows of kind at layer (pos, or every row when pos < 0), columns [col0, col0 + ncol),
// overwritten with src (n rows of dim).
typedef struct {
    unsigned kind;
    int layer, pos, col0, ncol;
    const float *src;
} Site;

static void site_trace(void *user, const TracePoint *p) {
    const Site *s = user;
    if (p->kind != s->kind || p->layer != s->layer) return;
    for (int r = 0; r < p->n_q; r++) {
        int t = p->pos0 + r;
        if (s->pos >= 0 && t != s->pos) continue;
        memcpy(p->data + (size_t)r * p->dim + s->col0, s->src + (size_t)t * p->dim + s->col0,
               sizeof(float) * (size_t)s->ncol);
    }
}

// The patched runs re-run the corrupt pass from the patched block on, reading the corrupt
// run's residual stream (xs) and, for a causal model, its cache before the first changed
// position.
typedef struct {
    Ctx *c;
    int n, d, pos, tok[2]; // tok: answer, wrong
    const float *xs;       // [L + 1, n, d]: the corrupt run's residual stream
    float *xin, *xout;     // [n, d] each
} Runner;

// The metric logit[answer] - logit[wrong] of the residual-stream row x (after the last block).
static int metric_of(Runner *R, const float *x, double *metric, Err *e) {
    float two[2];
    if (ctx_head_pick(R->c, x, R->tok, 2, two, e)) return -1;
    *metric = (double)two[0] - (double)two[1];
    return 0;
}

// Re-run the corrupt pass from block `layer` and position `from` on (the cache holds the
// corrupt prefix), with the residual row at position `at` replaced by `row` (or none) and site s
// (or none), and read the metric at R->pos.
static int run_metric(Runner *R, int layer, int from, int at, const float *row, const Site *s, double *metric,
                      Err *e) {
    Trace tr = {s ? s->kind : 0, s && s->layer >= 0 ? 1ull << (s->layer & 63) : 0, site_trace, (void *)s};
    size_t d = (size_t)R->d;
    memcpy(R->xin, R->xs + ((size_t)layer * R->n + from) * d, sizeof(float) * (size_t)(R->n - from) * d);
    if (row) memcpy(R->xin + (size_t)(at - from) * d, row, sizeof(float) * d);
    if (from) ctx_truncate(R->c, from);
    else ctx_reset(R->c);
    if (ctx_eval_from(R->c, layer, R->xin, R->n - from, R->xout, s ? &tr : NULL, e)) return -1;
    return metric_of(R, R->xout + (size_t)(R->pos - from) * d, metric, e);
}

// Whether columns [c0, c0 + nc) of the n rows (of width w, from offset off) of a and b are equal.
static bool same_cols(const float *a, const float *b, size_t off, int n, int w, int c0, int nc) {
    for (int t = 0; t < n; t++) {
        size_t at = off + (size_t)t * w + c0;
        if (memcmp(a + at, b + at, sizeof(float) * (size_t)nc)) return false;
    }
    return true;
}

static int argmax_except(const float *v, int n, int skip) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (i != skip && (best < 0 || v[i] > v[best])) best = i;
    return best;
}

int patch_run(Ctx *c, const int *clean, const int *corrupt, int n, int pos, int answer, int wrong, unsigned sites,
              PatchResult *r, Err *e) {
    const ModelConfig *cf = ctx_config(c);
    int L = cf->n_layer, H = cf->n_head, hd = cf->head_dim, d = cf->n_embd, V = cf->n_vocab;
    memset(r, 0, sizeof *r);
    if (!cf->a.lm_head) return err_set(e, "the model has no language-model head to read an answer from");
    if (pos < 0 || pos >= n) return err_set(e, "pos=%d: the prompts have %d tokens", pos, n);
    size_t nd = (size_t)n * d;
    Clean C = {NULL, NULL, NULL, n, d, H * hd}, X = {NULL, NULL, NULL, n, d, H * hd};
    C.resid = malloc(sizeof(float) * (size_t)(L + 1) * nd);
    X.resid = malloc(sizeof(float) * (size_t)(L + 1) * nd);
    C.z = malloc(sizeof(float) * (size_t)L * n * C.qd);
    C.mlp = malloc(sizeof(float) * (size_t)L * nd);
    X.z = malloc(sizeof(float) * (size_t)L * n * C.qd);
    X.mlp = malloc(sizeof(float) * (size_t)L * nd);
    float *lg = malloc(sizeof(float) * (size_t)n * V), *lc = malloc(sizeof(float) * (size_t)V);
    float *io = malloc(sizeof(float) * 2 * nd);
    if (sites & PATCH_RESID) r->resid = calloc((size_t)(L + 1) * n, sizeof(float));
    if (sites & PATCH_HEADS) r->head = calloc((size_t)L * H, sizeof(float));
    if (sites & PATCH_MLP) r->mlp = calloc((size_t)L, sizeof(float));
    int rc = 0;
    if (!C.resid || !X.resid || !C.z || !C.mlp || !X.z || !X.mlp || !lg || !lc || !io || (!r->resid && (sites & PATCH_RESID)) ||
        (!r->head && (sites & PATCH_HEADS)) || (!r->mlp && (sites & PATCH_MLP))) {
        rc = err_set(e, "out of memory for the activations of %d tokens", n);
        goto done;
    }
    // the clean run (every activation a site can take) and the corrupt one (its residual stream
    // kept, its keys and values left in the cache)
    Trace tc = {TRACE_EMBED | TRACE_RESID_POST | TRACE_Z | TRACE_MLP_OUT, 0, clean_trace, &C};
    Trace tx = {TRACE_EMBED | TRACE_RESID_POST | TRACE_Z | TRACE_MLP_OUT, 0, clean_trace, &X};
    ctx_reset(c);
    if (ctx_eval(c, clean, n, lg, true, &tc, e)) {
        rc = -1;
        goto done;
    }
    memcpy(lc, lg + (size_t)pos * V, sizeof(float) * (size_t)V);
    ctx_reset(c);
    if (ctx_eval(c, corrupt, n, lg, true, &tx, e)) {
        rc = -1;
        goto done;
    }
    const float *lx = lg + (size_t)pos * V;
    if (answer < 0) answer = argmax_except(lc, V, -1);
    r->answer = answer;
    if (wrong < 0) wrong = argmax_except(lx, V, -1);
    if (wrong == answer) { // the corrupt prompt's top is the answer: which token it favours is the caller's to say
        r->same_top = true;
        rc = err_set(e, "both prompts' top token at position %d is the answer (#%d): say which token the corrupt "
                        "prompt should favour instead with wrong=TOKEN",
                     pos, answer);
        goto done;
    }
    r->wrong = wrong;
    Runner R = {c, n, d, pos, {answer, wrong}, X.resid, io, io + nd};
    // both metrics as the patched runs read theirs, so that a site that changes nothing gives 0
    // and the last layer's residual at pos gives 1, exactly
    if (metric_of(&R, C.resid + (size_t)L * nd + (size_t)pos * d, &r->clean, e) ||
        metric_of(&R, X.resid + (size_t)L * nd + (size_t)pos * d, &r->corrupt, e)) {
        rc = -1;
        goto done;
    }
    double span = r->clean - r->corrupt;
    if (!(fabs(span) > 1e-6 * (1 + fabs(r->clean)))) {
        rc = err_set(e, "the clean and the corrupt prompt give the same logit difference (%.6g): nothing to restore",
                     r->clean);
        goto done;
    }
    // residual stream, one position at a time, each run from the patched layer on: a causal
    // model keeps the corrupt prefix in its cache, so positions run last to first and each
    // run starts at its own position (a run from p rewrites only positions p.. of the cache)
    bool causal = cf->a.causal;
    // A site whose clean activation equals the corrupt one restores nothing: 0, without a re-run
    // (which evaluates rows in other chunks than the corrupt pass, so its metric could move in the
    // last bits).
    for (int p = n - 1; p >= 0 && r->resid; p--)
        for (int l = 0; l <= L; l++) {
            double m = r->corrupt;
            const float *row = C.resid + (size_t)l * nd + (size_t)p * d;
            bool same = !memcmp(row, X.resid + (size_t)l * nd + (size_t)p * d, sizeof(float) * (size_t)d);
            if (!(causal && p > pos) && !same && run_metric(&R, l, causal ? p : 0, p, row, NULL, &m, e)) {
                rc = -1;
                goto done;
            }
            r->resid[(size_t)l * n + p] = (float)((m - r->corrupt) / span) + 0.0f; // never -0
        }
    // heads and MLPs: every position, from their block on
    for (int l = 0; l < L; l++) {
        for (int h = 0; h < H && r->head; h++) {
            double m = r->corrupt;
            Site s = {TRACE_Z, l, -1, h * hd, hd, C.z + (size_t)l * n * C.qd};
            if (!same_cols(C.z, X.z, (size_t)l * n * C.qd, n, C.qd, h * hd, hd) && run_metric(&R, l, 0, 0, NULL, &s, &m, e)) {
                rc = -1;
                goto done;
            }
            r->head[(size_t)l * H + h] = (float)((m - r->corrupt) / span) + 0.0f;
        }
        double m = r->corrupt;
        if (!r->mlp) continue;
        Site s = {TRACE_MLP_OUT, l, -1, 0, d, C.mlp + (size_t)l * nd};
        if (!same_cols(C.mlp, X.mlp, (size_t)l * nd, n, d, 0, d) && run_metric(&R, l, 0, 0, NULL, &s, &m, e)) {
            rc = -1;
            goto done;
        }
        r->mlp[l] = (float)((m - r->corrupt) / span) + 0.0f;
    }
done:
    free(C.resid), free(X.resid), free(C.z), free(C.mlp), free(X.z), free(X.mlp), free(lg), free(lc), free(io);
    if (rc) patch_result_free(r);
    return rc;
}
