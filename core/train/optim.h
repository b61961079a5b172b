// optim.h - the optimizer of the trainer: AdamW (decoupled weight decay, bias correction) as
// torch.optim.AdamW computes it, global-norm gradient clipping as
// torch.nn.utils.clip_grad_norm_, and the learning-rate schedule (linear warmup, then cosine
// decay to a floor).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "train/tmodel.h"

typedef struct OptParams {
    float lr;           // peak learning rate
    float min_lr;       // the floor cosine decay reaches at the last step
    float beta1, beta2, eps;
    float weight_decay; // on matrices and embeddings only (TParam.decay)
    float clip;         // global gradient norm limit (0: none)
    int warmup;         // steps of linear warmup
    int steps;          // total steps (the end of the cosine)
} OptParams;

OptParams optim_defaults(void); // lr 3e-4, betas 0.9/0.95, eps 1e-8, decay 0.1, clip 1

// The learning rate of step (0-based): lr * (step+1) / warmup during warmup, then
// min_lr + (lr - min_lr) (1 + cos(pi * progress)) / 2 with progress from 0 to 1 at steps - 1
// (0 when a single step follows the warmup: that step at lr).
float optim_lr(const OptParams *p, int step);

// The global L2 norm of g (n), accumulated in double.
double optim_grad_norm(const float *g, size_t n);
// Scale g so that its global norm is at most max_norm (torch: by max_norm / (norm + 1e-6)
// when that is below 1). Returns the norm before clipping.
double optim_clip(float *g, size_t n, float max_norm);

// 0 when step's (1-based) loss and gradient norm are finite numbers; else -1 with "step N: the
// loss is nan, not a finite number: stopped before updating the weights ..." in e. The trainers
// call it before the optimizer's step, so that nothing of a NaN or an infinity is saved.
int optim_check_step(int step, double loss, double norm, Err *e);

// AdamW's state: the first and second moments of every parameter, and the steps taken.
typedef struct AdamW {
    float *m, *v;
    size_t n;
    int64_t t;
} AdamW;

// Zero state for n parameters; -1 with e filled when out of memory.
int adamw_init(AdamW *o, size_t n, Err *e);
void adamw_done(AdamW *o);
// One step at learning rate lr on the parameters of tm with its gradients: for each element
// p -= lr * wd * p (decay tensors), m, v updated, p -= lr / (1 - b1^t) * m / (sqrt(v) /
// sqrt(1 - b2^t) + eps).
void adamw_step(AdamW *o, TrainModel *tm, const OptParams *p, float lr);
// The same step on one flat vector w of o->n parameters with gradient g (decay: whether it
// takes weight decay).
void adamw_step_vec(AdamW *o, float *w, const float *g, bool decay, const OptParams *p, float lr);
