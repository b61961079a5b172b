// reward_model.h - a trained reward model opened for scoring (reward score, best-of-N): an
// HF sequence classifier with one label, its model (decoder or encoder) as the trainer
// computes it, its classifier vector and, for an encoder, its pooling.
#pragma once
#include <stddef.h>

#include "base/err.h"
#include "base/vec.h"

typedef struct RewardModel RewardModel;

// Open the reward model in dir (config.json, model.safetensors with the family's classifier
// [1, n_embd]: score.weight, BERT's classifier.weight and .bias; an encoder's config.json
// names its pooling in qkv_pooling). NULL with e filled.
RewardModel *reward_model_open(const char *dir, int threads, Err *e);
void reward_model_free(RewardModel *rm);
// The directory as an absolute path (as rewards are logged).
const char *reward_model_path(const RewardModel *rm);

typedef struct RewardScore {
    double reward;
    IntVec ids;    // the tokens scored (owned: iv_free)
    int truncated; // tokens cut to fit the context (see reward_tokens)
} RewardScore;

// The reward of prompt followed by completion, tokenized by the reward model's own tokenizer
// as reward train tokenized its pairs (reward_tokens: an encoder reads them as a sentence
// pair). 0 or -1 with e filled (a reward that is not a finite number too: a damaged model).
int reward_model_score(RewardModel *rm, const char *prompt, size_t plen, const char *completion, size_t clen,
                       RewardScore *out, Err *e);
