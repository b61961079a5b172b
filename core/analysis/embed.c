// embed.c - pooling final hidden states into one vector per text.
#include "analysis/embed.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *pool_name(PoolKind p) {
    switch (p) {
    case POOL_CLS: return "cls";
    case POOL_MAX: return "max";
    case POOL_LAST: return "last";
    case POOL_MEAN: break;
    }
    return "mean";
}

int pool_parse(const char *s, PoolKind *out) {
    static const PoolKind all[] = {POOL_MEAN, POOL_CLS, POOL_MAX, POOL_LAST};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (!strcmp(s, pool_name(all[i]))) {
            *out = all[i];
            return 0;
        }
    return -1;
}

typedef struct {
    PoolKind pool;
    int n, d, seen;
    double *acc; // [d]
    float *out;
} Pooler;

// x is (n_q, d): the final hidden states of positions pos0.. (one call per chunk).
static void pool_rows(void *user, const TracePoint *p) {
    Pooler *P = user;
    if (p->kind != TRACE_LN_F) return;
    for (int i = 0; i < p->n_q; i++) {
        const float *row = p->data + (size_t)i * p->dim;
        int pos = p->pos0 + i;
        for (int j = 0; j < P->d; j++) {
            switch (P->pool) {
            case POOL_MEAN: P->acc[j] += row[j]; break;
            case POOL_MAX: P->acc[j] = P->seen == 0 || row[j] > P->acc[j] ? row[j] : P->acc[j]; break;
            case POOL_CLS:
                if (pos == 0) P->acc[j] = row[j];
                break;
            case POOL_LAST:
                if (pos == P->n - 1) P->acc[j] = row[j];
                break;
            }
        }
        P->seen++;
    }
}

int embed_ids(Ctx *c, const int *ids, const int *types, int n, PoolKind pool, bool normalize, float *out, Err *e) {
    int d = ctx_config(c)->n_embd;
    Pooler P = {pool, n, d, 0, calloc((size_t)d, sizeof(double)), out};
    if (!P.acc) return err_set(e, "out of memory for an embedding of %d dimensions", d);
    Trace tr = {TRACE_LN_F, 0, pool_rows, &P};
    ctx_reset(c);
    int rc = ctx_eval_types(c, ids, types, n, NULL, false, &tr, e);
    if (!rc && P.seen != n) rc = err_set(e, "the final hidden states of %d tokens came back for %d", P.seen, n);
    if (!rc) {
        double norm = 0;
        for (int j = 0; j < d; j++) {
            double v = pool == POOL_MEAN ? P.acc[j] / n : P.acc[j];
            out[j] = (float)v;
            norm += v * v;
        }
        // sentence-transformers' Normalize divides by max(norm, 1e-12)
        if (normalize)
            for (int j = 0; j < d; j++) out[j] = (float)(out[j] / fmax(sqrt(norm), 1e-12));
    }
    free(P.acc);
    return rc;
}

double embed_cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}
