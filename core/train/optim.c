// optim.c - AdamW, gradient clipping and the learning-rate schedule (see optim.h).
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

OptParams optim_defaults(void) {
    return (OptParams){.lr = 3e-4f, .min_lr = 3e-5f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                       .weight_decay = 0.1f, .clip = 1.0f, .warmup = 0, .steps = 1};
}

float optim_lr(const OptParams *p, int step) {
    if (step < p->warmup) return p->lr * (float)(step + 1) / (float)p->warmup;
    // the cosine from lr at the first step after the warmup to min_lr at the last; a single step
    // after the warmup is taken at lr (it was at min_lr: steps=1 trained at lr/10, or at 0)
    int span = p->steps - 1 - p->warmup;
    double progress = span > 0 ? (double)(step - p->warmup) / span : 0.0;
    if (progress > 1) progress = 1;
    return (float)(p->min_lr + (p->lr - p->min_lr) * 0.5 * (1.0 + cos(M_PI * progress)));
}

double optim_grad_norm(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

double optim_clip(float *g, size_t n, float max_norm) {
    double norm = optim_grad_norm(g, n);
    if (max_norm > 0) {
        float coef = (float)(max_norm / (norm + 1e-6));
        if (coef < 1.0f)
            for (size_t i = 0; i < n; i++) g[i] *= coef;
    }
    return norm;
}

int optim_check_step(int step, double loss, double norm, Err *e) {
    if (isfinite(loss) && isfinite(norm)) return 0;
    double v = isfinite(loss) ? norm : loss;
    return err_set(e, "step %d: the %s is not a finite number (%s): stopped before updating the weights, nothing of "
                      "the step saved (a NaN or an infinity in the weights, a damaged file? a learning rate too high?)",
                   step, isfinite(loss) ? "gradient norm" : "loss", isnan(v) ? "NaN" : "an infinity");
}

int adamw_init(AdamW *o, size_t n, Err *e) {
    memset(o, 0, sizeof *o);
    o->m = calloc(n, sizeof(float));
    o->v = calloc(n, sizeof(float));
    if (!o->m || !o->v) {
        adamw_done(o);
        return err_set(e, "out of memory for the optimizer state (%zu parameters)", n);
    }
    o->n = n;
    return 0;
}

void adamw_done(AdamW *o) {
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

// One AdamW update of w[i] for i in [from, to) (the step counter already advanced).
static void adamw_range(AdamW *o, float *w, const float *g, size_t from, size_t to, bool decay, const OptParams *p,
                        float lr) {
    float b1 = p->beta1, b2 = p->beta2;
    // the scalars in double, as torch computes them in Python
    double bc1 = 1.0 - pow(b1, (double)o->t), bc2 = 1.0 - pow(b2, (double)o->t);
    float step = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    float dec = decay ? (float)(1.0 - (double)lr * p->weight_decay) : 1.0f;
    for (size_t i = from; i < to; i++) {
        w[i] *= dec;
        o->m[i] = b1 * o->m[i] + (1.0f - b1) * g[i];
        o->v[i] = b2 * o->v[i] + (1.0f - b2) * g[i] * g[i];
        w[i] -= step * o->m[i] / (sqrtf(o->v[i]) / bc2_sqrt + p->eps);
    }
}

void adamw_step(AdamW *o, TrainModel *tm, const OptParams *p, float lr) {
    o->t++;
    float *w = tmodel_params(tm);
    const float *g = tmodel_grads(tm);
    for (int k = 0; k < tmodel_n_tensors(tm); k++) {
        const TParam *t = tmodel_tensor(tm, k);
        adamw_range(o, w, g, t->off, t->off + t->n, t->decay, p, lr);
    }
}

void adamw_step_vec(AdamW *o, float *w, const float *g, bool decay, const OptParams *p, float lr) {
    o->t++;
    adamw_range(o, w, g, 0, o->n, decay, p, lr);
}
