// reward.h - reward models: a scalar head on a pooled final hidden state (a decoder's at the
// sequence's last token; an encoder's at its first, [CLS], or the mean over its tokens), trained on preference pairs with the Bradley–Terry loss
// -log sigmoid(r_chosen - r_rejected - margin) (a tie: -(log sigmoid(d) + log sigmoid(-d)) / 2,
// which pulls the two rewards together), with AdamW, a held-out evaluation (loss and pair
// accuracy) and early stopping on the held-out loss. The head alone (linear: the base model
// frozen, its hidden states computed once), the whole model with it (full), or low-rank
// adapters on the attention projections with it (lora).
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "analysis/embed.h"
#include "base/err.h"
#include "train/lora.h"
#include "train/optim.h"
#include "train/tmodel.h"

typedef enum { REWARD_LINEAR, REWARD_FULL, REWARD_LORA } RewardHead;

// A preference between two sequences (indices into RewardData.seq).
typedef struct RewardPair {
    int chosen, rejected;
    float margin; // subtracted from r_chosen - r_rejected (0: plain Bradley–Terry)
    bool tie;     // equally good: the loss pulls the rewards together
} RewardPair;

typedef struct RewardData {
    const int *const *seq;   // token ids
    const int *const *types; // their segment ids (an encoder's sentence pair), or NULL: all 0
    const int *len;          // 1 .. the model's context
    PoolKind pool;           // what the head reads: POOL_LAST (decoders), POOL_CLS or POOL_MEAN
    int n_seq;
    const RewardPair *train, *held;
    int n_train, n_held;
} RewardData;

// The mean Bradley–Terry loss of P pairs with rewards rc, rr: returns it, and when dd is
// non-NULL fills dd[i] = d(mean loss) / d(rc[i] - rr[i]).
double reward_bt_loss(const float *rc, const float *rr, const RewardPair *pairs, int P, float *dd);
// The share of the non-tied pairs whose chosen sequence gets the higher reward (NAN when none).
double reward_accuracy(const float *rc, const float *rr, const RewardPair *pairs, int P);

typedef struct RewardOpts {
    RewardHead head;
    OptParams opt;  // opt.steps: the most optimizer steps (early stopping may end sooner)
    int batch;      // pairs per step
    int eval_every; // held-out evaluation every N steps (and at the last)
    int patience;   // evaluations without a better held-out loss before stopping (0: never stop early)
    uint64_t seed;  // the order of the pairs
    Lora *lora;     // REWARD_LORA: the adapters on tm (lora_init; the model's weights frozen)
} RewardOpts;

// One evaluation (after step; step 0: before training).
typedef struct RewardPoint {
    int step, steps;
    double loss;                // mean training loss since the last point
    double held_loss, held_acc; // NAN without held-out pairs
    double train_acc;           // pair accuracy on the training pairs of the steps since the last point
    double elapsed_s, pairs_s;  // training pairs per second
    bool best;                  // the best held-out loss so far (kept)
} RewardPoint;

typedef struct RewardHooks {
    int (*point)(void *user, const RewardPoint *p); // non-zero stops training
    void *user;
    int (*stop)(void *user); // or NULL; non-zero stops training at the next step (polled at every step and
                             // between the batches of the frozen model's pass), the best weights kept
} RewardHooks;

typedef struct RewardResult {
    int steps, best_step;       // steps run; the step whose weights are kept (0: the start)
    double held_loss, held_acc; // at best_step (NAN without held-out pairs)
    double loss;                // the last training loss
    bool stopped_early;
    double pairs_s;
} RewardResult;

// Train score (n_embd floats, the head) and, with REWARD_FULL, tm's weights (REWARD_LORA:
// o->lora's adapters, merged into tm) on d. At the end tm, score and the adapters hold the
// weights of the best held-out evaluation (the last step without held-out pairs). 0 or -1
// with e filled.
int reward_train(TrainModel *tm, float *score, const RewardData *d, const RewardOpts *o, const RewardHooks *h,
                 RewardResult *r, Err *e);
// The rewards of n sequences (types: their segment ids or NULL) pooled by pool into out. 0 or
// -1 with e filled.
int reward_eval(TrainModel *tm, const float *score, const int *const *seq, const int *const *types, const int *len,
                int n, PoolKind pool, float *out, Err *e);
