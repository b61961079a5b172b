// dpo.h - Direct Preference Optimisation (Rafailov et al., 2023): a decoder (the policy) tuned
// on preference pairs of completions of one prompt against a frozen reference, with the loss
// -log sigmoid(beta ((lp_c - ref_c) - (lp_r - ref_r))) where lp is the policy's log-probability
// of a completion given its prompt (summed over the completion's tokens) and ref the
// reference's. beta (lp - ref) is the implicit reward. The gradient reaches the model as a
// weight on each completion token's log-probability (tmodel_backward_rows). AdamW, a held-out
// evaluation (loss, implicit reward accuracy and margins) and the best held-out weights kept.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "train/lora.h"
#include "train/optim.h"
#include "train/tmodel.h"

// A preference between two sequences (indices into DpoData.seq).
typedef struct DpoPair {
    int chosen, rejected;
} DpoPair;

typedef struct DpoData {
    const int *const *seq; // prompt tokens, then completion tokens
    const int *len;        // 1 .. the model's context
    const int *start;      // where each completion begins: tokens [start, len) are scored, 1 <= start <= len
    int n_seq;
    const DpoPair *train, *held;
    int n_train, n_held;
    const float *ref; // the reference's log-probabilities of the n_seq completions, or NULL: the
                      // policy's own at the start (the base model is the reference)
} DpoData;

// The mean DPO loss of P pairs: returns it, and when dlp is non-NULL fills dlp[2i] =
// d(mean loss)/d(lp_c[i]) and dlp[2i+1] = d(mean loss)/d(lp_r[i]).
double dpo_loss(const float *lp_c, const float *lp_r, const float *ref_c, const float *ref_r, float beta, int P,
                float *dlp);

// Held-out figures: means over pairs.
typedef struct DpoStats {
    double loss;
    double accuracy;             // share of pairs whose chosen completion has the higher implicit reward
    double margin;               // beta ((lp_c - ref_c) - (lp_r - ref_r))
    double chosen, rejected;     // implicit rewards beta (lp - ref)
    double logp_margin;          // lp_c - lp_r: the policy's own preference, in nats
} DpoStats;

typedef struct DpoOpts {
    float beta;
    OptParams opt;  // opt.steps: the most optimizer steps (early stopping may end sooner)
    int batch;      // pairs per step
    int eval_every; // held-out evaluation every N steps (and at the last)
    int patience;   // evaluations without a better held-out loss before stopping (0: never stop early)
    uint64_t seed;  // the order of the pairs
    Lora *lora;     // NULL: every weight is tuned; else only these adapters on tm (lora_init)
} DpoOpts;

// One optimizer step done (step 0: the start, evaluated only).
typedef struct DpoPoint {
    int step, steps;
    double loss, lr, grad_norm; // the step's mean loss, learning rate and gradient norm before clipping
    int64_t tokens;             // completion tokens scored by the training steps so far
    bool evaluated, best;       // held-out figures computed at this step; the best held-out loss so far
    DpoStats held;              // NAN without held-out pairs or when not evaluated
    double elapsed_s, pairs_s;
} DpoPoint;

typedef struct DpoHooks {
    int (*point)(void *user, const DpoPoint *p); // non-zero stops training
    void *user;
} DpoHooks;

typedef struct DpoResult {
    int steps, best_step; // steps run; the step whose weights are kept (0: the start)
    DpoStats start, held; // held-out figures of the reference and at best_step (NAN without held-out pairs)
    double loss;          // the last step's training loss
    bool stopped_early;
    int64_t tokens;
    double pairs_s;
} DpoResult;

// The summed log-probabilities of the completions of sequences idx[0..n) under tm into out.
// 0 or -1 with e filled.
int dpo_logprobs(TrainModel *tm, const DpoData *d, const int *idx, int n, float *out, Err *e);
// Tune tm (or o->lora's adapters, merged into tm) on d. At the end tm (and the adapters) hold the weights of the best held-out evaluation (the last
// step's without held-out pairs). 0 or -1 with e filled.
int dpo_train(TrainModel *tm, const DpoData *d, const DpoOpts *o, const DpoHooks *h, DpoResult *r, Err *e);
