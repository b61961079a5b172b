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

typedef struct {
    Ctx *c;
    const int *ids;
    int n, pos, answer, wrong, V;
    float *lg; // [n, V]
} Runner;

// Evaluate R->ids from position `from` on (the cache holding the prefix), with site s (or
// none), and read the metric at R->pos.
static int run_metric(Runner *R, int from, const Site *s, double *metric, Err *e) {
    bool last = R->pos == R->n - 1;
    Trace tr = {s ? s->kind : 0, s && s->layer >= 0 ? 1ull << (s->layer & 63) : 0, site_trace, (void *)s};
    if (from) ctx_truncate(R->c, from);
    else ctx_reset(R->c);
    if (ctx_eval(R->c, R->ids + from, R->n - from, R->lg, !last, s ? &tr : NULL, e)) return -1;
    const float *row = R->lg + (last ? 0 : (size_t)(R->pos - from) * R->V);
    *metric = (double)row[R->answer] - (double)row[R->wrong];
    return 0;
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
    Clean C = {NULL, NULL, NULL, n, d, H * hd};
    C.resid = malloc(sizeof(float) * (size_t)(L + 1) * n * d);
    C.z = malloc(sizeof(float) * (size_t)L * n * C.qd);
    C.mlp = malloc(sizeof(float) * (size_t)L * n * d);
    float *lg = malloc(sizeof(float) * (size_t)n * V), *lc = malloc(sizeof(float) * (size_t)V);
    if (sites & PATCH_RESID) r->resid = calloc((size_t)(L + 1) * n, sizeof(float));
    if (sites & PATCH_HEADS) r->head = calloc((size_t)L * H, sizeof(float));
    if (sites & PATCH_MLP) r->mlp = calloc((size_t)L, sizeof(float));
    int rc = 0;
    if (!C.resid || !C.z || !C.mlp || !lg || !lc || (!r->resid && (sites & PATCH_RESID)) ||
        (!r->head && (sites & PATCH_HEADS)) || (!r->mlp && (sites & PATCH_MLP))) {
        rc = err_set(e, "out of memory for the activations of %d tokens", n);
        goto done;
    }
    // the clean run (every activation a site can take) and the corrupt one (left in the cache)
    Trace tc = {TRACE_EMBED | TRACE_RESID_POST | TRACE_Z | TRACE_MLP_OUT, 0, clean_trace, &C};
    ctx_reset(c);
    if (ctx_eval(c, clean, n, lg, true, &tc, e)) {
        rc = -1;
        goto done;
    }
    memcpy(lc, lg + (size_t)pos * V, sizeof(float) * (size_t)V);
    Runner R = {c, corrupt, n, pos, answer, wrong, V, lg};
    ctx_reset(c);
    if (ctx_eval(c, corrupt, n, lg, true, NULL, e)) {
        rc = -1;
        goto done;
    }
    const float *lx = lg + (size_t)pos * V;
    if (answer < 0) answer = argmax_except(lc, V, -1);
    if (wrong < 0) wrong = argmax_except(lx, V, -1);
    if (wrong == answer) wrong = argmax_except(lc, V, answer);
    R.answer = r->answer = answer, R.wrong = r->wrong = wrong;
    r->clean = (double)lc[answer] - lc[wrong];
    r->corrupt = (double)lx[answer] - lx[wrong];
    double span = r->clean - r->corrupt;
    if (!(fabs(span) > 1e-6 * (1 + fabs(r->clean)))) {
        rc = err_set(e, "the clean and the corrupt prompt give the same logit difference (%.6g): nothing to restore",
                     r->clean);
        goto done;
    }
    // residual stream, one position at a time: a causal model keeps the corrupt prefix in its
    // cache, so positions run last to first and each run starts at its own position
    bool causal = cf->a.causal;
    for (int p = n - 1; p >= 0 && r->resid; p--)
        for (int l = 0; l <= L; l++) {
            double m = r->corrupt;
            Site s = {l ? TRACE_RESID_POST : TRACE_EMBED, l - 1, p, 0, d, C.resid + (size_t)l * n * d};
            if (!(causal && p > pos) && run_metric(&R, causal ? p : 0, &s, &m, e)) {
                rc = -1;
                goto done;
            }
            r->resid[(size_t)l * n + p] = (float)((m - r->corrupt) / span) + 0.0f; // never -0
        }
    for (int l = 0; l < L; l++) {
        for (int h = 0; h < H && r->head; h++) {
            double m;
            Site s = {TRACE_Z, l, -1, h * hd, hd, C.z + (size_t)l * n * C.qd};
            if (run_metric(&R, 0, &s, &m, e)) {
                rc = -1;
                goto done;
            }
            r->head[(size_t)l * H + h] = (float)((m - r->corrupt) / span);
        }
        double m;
        if (!r->mlp) continue;
        Site s = {TRACE_MLP_OUT, l, -1, 0, d, C.mlp + (size_t)l * n * d};
        if (run_metric(&R, 0, &s, &m, e)) {
            rc = -1;
            goto done;
        }
        r->mlp[l] = (float)((m - r->corrupt) / span);
    }
done:
    free(C.resid), free(C.z), free(C.mlp), free(lg), free(lc);
    if (rc) patch_result_free(r);
    return rc;
}
