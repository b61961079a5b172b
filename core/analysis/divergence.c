// divergence.c - KL divergence, top-1 agreement and the largest logit change per position,
// in double precision.
#include "analysis/divergence.h"

#include <math.h>
#include <stddef.h>

// The log of the normaliser of softmax(z): max + log sum exp(z - max); *arg the argmax.
static double log_norm(const float *z, int V, int *arg) {
    int a = 0;
    for (int i = 1; i < V; i++)
        if (z[i] > z[a]) a = i;
    double s = 0;
    for (int i = 0; i < V; i++) s += exp((double)z[i] - z[a]);
    *arg = a;
    return z[a] + log(s);
}

void logits_diff(const float *p, const float *q, int T, int V, LogitDiff *out) {
    for (int t = 0; t < T; t++) {
        const float *a = p + (size_t)t * V, *b = q + (size_t)t * V;
        LogitDiff *d = &out[t];
        double la = log_norm(a, V, &d->top_p), lb = log_norm(b, V, &d->top_q), kl = 0;
        d->max_diff = -1;
        for (int i = 0; i < V; i++) {
            double lpa = a[i] - la, lpb = b[i] - lb;
            kl += exp(lpa) * (lpa - lpb);
            double diff = fabs((double)a[i] - b[i]);
            if (diff > d->max_diff) d->max_diff = diff, d->max_at = i;
        }
        d->kl = kl > 0 ? kl : 0; // rounding can leave a tiny negative sum for equal distributions
    }
}
