// trainer.h - a training run: a text file tokenized with the model's tokenizer (the last
// part held out), random windows as batches, AdamW with clipping, warmup and cosine decay,
// gradient accumulation, a held-out loss, and checkpoints in the HF layout that a killed run
// resumes from exactly (the same weights as an uninterrupted run).
//
// A checkpoint directory holds config.json, model.safetensors (F32) and the tokenizer files
// (loadable by qkv and transformers), and train_state.bin: the step, the batch generator's
// state, the options that must not change, and the weights and AdamW moments as float32 with
// a checksum of them. Resuming reads train_state.bin only (the HF files are written first, the
// state last), and refuses one whose checksum or numbers say it is damaged.
#pragma once
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "model/model.h"
#include "model/newmodel.h"
#include "train/optim.h"

// One example to fine-tune on (a task's item): the prompt, which the model reads but does not
// learn (its tokens carry no loss), and the answer it learns to write after it. Tokenized
// apart, as a generation continues a prompt: the prompt with the model's special tokens (BOS),
// or, when special (a chat template's text), parsing them and adding none.
typedef struct TrainExample {
    const char *prompt, *answer;
    size_t prompt_len, answer_len;
    bool special;
} TrainExample;

typedef struct TrainOpts {
    const char *data;      // UTF-8 text file (with examples: only names the data)
    const TrainExample *examples; // when n_examples > 0, the data instead of the text file: each
    int n_examples;               // batch row one example (padded); every k-th held out (val)
    const char *out;       // checkpoint directory (created)
    const char *from;      // a model to start from (HF directory), or NULL: a new model of newp
    NewModelParams newp;   // from scratch: family, sizes, seed, std (written to out first)
    const char *tok_dir;   // from scratch: tokenizer files to copy (NULL: the family's default)
    int batch, seq, accum; // sequences per micro-batch, tokens per sequence, micro-batches per step
    OptParams opt;         // opt.steps: optimizer steps of the run
    int eval_every;        // held-out loss every N steps (and at the last); 0: only at the last
    int eval_batches;      // batches of held-out windows per evaluation
    int save_every;        // checkpoint every N steps (and at the last); 0: only at the last
    double val_frac;       // the fraction of the tokens held out (the file's end)
    uint64_t seed;         // the batch generator
    int threads;           // <= 0: the CPUs
    bool resume;           // continue from out/train_state.bin when it is there
    bool out_held;         // the caller holds out= (fs_lock_dir) and removes it on failure: train_run neither
} TrainOpts;

TrainOpts train_defaults(void);

// One optimizer step done.
typedef struct TrainPoint {
    int step;             // 1-based: steps done
    int steps;            // of the run
    double loss;          // mean training loss of the step's micro-batches
    double val_loss;      // held-out loss, or a negative value when not evaluated at this step
    double lr, grad_norm; // the step's learning rate, the gradient norm before clipping
    int64_t tokens;       // training tokens seen by the run so far (resumed steps included)
    double elapsed_s;     // seconds in this process
    double eta_s;         // estimated seconds left
    double tok_s;         // training tokens per second in this process
    bool saved;           // a checkpoint was written after this step
} TrainPoint;

typedef struct TrainInfo {
    int start_step;        // steps already done when the run began (resumed), else 0
    int64_t n_params;
    int64_t train_tokens, val_tokens;
    ModelConfig cfg;
    int stop_step;         // a hook stopped the run after this step (saved there), else 0
} TrainInfo;

// Called once before the first step (info) and after every step (p); a non-zero return stops
// the run after that step, saved (checkpoint and state) if it was not already: the same options
// resume after it.
typedef struct TrainHooks {
    int (*begin)(void *user, const TrainInfo *info);
    int (*step)(void *user, const TrainPoint *p);
    void *user;
} TrainHooks;

// Run o. 0 when every step ran (or a hook stopped it), -1 with e filled.
int train_run(const TrainOpts *o, const TrainHooks *h, TrainInfo *info, Err *e);

// The speed of training steps as train_run takes them (forward, backward, clipping, AdamW), on
// batches of random token ids, against OpenBLAS sgemm at the model's linear shapes measured on
// the same thread team in the same run (kern/bound.h).
enum { TRAIN_BENCH_MAX_REPS = 100 };
typedef struct TrainBench {
    int threads, reps;
    double flops_per_token;           // forward + backward: 6 x linear weights + attention's
    double attention_flops_per_token; // of which attention's (q k^T and p v over visible keys)
    double tok_s, flops_s;            // median over the repetitions
    double sgemm_flops_s;             // median of the bound's samples (before each rep, after the last)
    double frac, frac_min, frac_max;  // each rep's FLOP/s over the mean of the samples around it
    double tok_s_reps[TRAIN_BENCH_MAX_REPS], frac_reps[TRAIN_BENCH_MAX_REPS];
} TrainBench;

// Train a copy of m for one warm-up step, then reps repetitions of steps steps of batch B x
// T tokens on threads threads (<= 0: the CPUs), the sgemm bound taken before each and after
// the last; *cancel (when not NULL) polled before each step ("interrupted"). 0 with r filled,
// or -1 with e filled (bad sizes, an untrainable model, memory, interrupted).
int train_bench(const Model *m, int threads, int B, int T, int steps, int reps, volatile sig_atomic_t *cancel,
                TrainBench *r, Err *e);
