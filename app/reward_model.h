// reward_model.h - a trained reward model opened for scoring (reward score, best-of-N): an
// HF sequence classifier with one label, its decoder as the trainer computes it and its
// score vector.
#pragma once
#include <stddef.h>

#include "base/err.h"
#include "base/vec.h"

typedef struct RewardModel RewardModel;

// Open the reward model in dir (config.json, model.safetensors with score.weight [1, n_embd]).
// NULL with e filled.
RewardModel *reward_model_open(const char *dir, int threads, Err *e);
void reward_model_free(RewardModel *rm);
// The directory as an absolute path (as rewards are logged).
const char *reward_model_path(const RewardModel *rm);

typedef struct RewardScore {
    double reward;
    IntVec ids;    // the tokens scored (owned: iv_free)
    int truncated; // tokens cut from the start to fit the context
} RewardScore;

// The reward of prompt followed by completion. 0 or -1 with e filled.
int reward_model_score(RewardModel *rm, const char *prompt, size_t plen, const char *completion, size_t clen,
                       RewardScore *out, Err *e);
