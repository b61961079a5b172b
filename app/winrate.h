// winrate.h - a tuned policy against its base as a reward model judges them: for each prompt,
// N completions sampled from each model with the same seeds and decoding, each logged as a run
// and scored by the reward model (recorded in reward_scores); the tuned model wins a seed when
// its completion gets the higher reward (a tie counts half).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "eval/generate.h"
#include "model/model.h"
#include "reward_model.h"

struct App;

// One seed of one prompt: both models' completions and rewards.
typedef struct JudgeSample {
    int prompt;                  // index into the prompts given
    uint64_t seed;
    int64_t base_run, tuned_run; // the logged runs (0 when logging failed)
    double base_reward, tuned_reward;
} JudgeSample;

typedef struct JudgeResult {
    JudgeSample *s; // n_prompts x samples (owned: judge_result_free)
    int n;
    int wins, ties, losses;   // of the tuned model
    double win_rate;          // (wins + ties / 2) / n
    double base_mean, tuned_mean;
    int planned;              // samples meant (prompts x samples)
    bool stopped;             // Ctrl-C: the figures are of the n judged before it (the pair it cut left out)
} JudgeResult;

// Sample `samples` completions of each of n prompts (prompts[i], lens[i] bytes; tokenized as
// generate does) from base and from tuned with p (seeds p->s.seed, p->s.seed + 1, ...), log
// each as a run of kind "judge", score each with rm and count the tuned model's wins. Ctrl-C
// (app->cancel) ends it with r->stopped and the samples judged before it. 0 (r filled) or -1 with
// e filled (r freed).
int judge_win_rate(struct App *app, const Model *base, const Model *tuned, RewardModel *rm,
                   const char *const *prompts, const size_t *lens, int n, int samples, const GenParams *p,
                   JudgeResult *r, Err *e);
void judge_result_free(JudgeResult *r);
