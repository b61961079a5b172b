// bpe_train.h - training a GPT-2-style byte-level BPE tokenizer: vocab.json + merges.txt that
// tok_load reads.
//
// The algorithm and its tie rule are those of HF tokenizers' BpeTrainer with the ByteLevel
// pre-tokenizer (no prefix space, GPT-2's regex) and the 256 byte characters as the initial
// alphabet, so that both give the same merges on the same text:
//   - text is fed line by line (each line with its '\n', as tokenizers reads files); each
//     line is cut by GPT-2's regex into words, counted;
//   - ids: the special tokens first, then the 256 byte characters in code point order of
//     their GPT-2 characters, then one id per merge in the order learned;
//   - each step merges the most frequent adjacent pair (ties: the smallest (left id, right
//     id)) in every word, until the vocabulary has vocab_size tokens or no pair occurs at
//     least min_frequency times.
#pragma once
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

typedef struct BpeTrainer BpeTrainer;

BpeTrainer *bpe_trainer_new(void);
// Poll *cancel (set by a signal handler) while feeding and training: a set flag ends either with
// "interrupted" (-1). NULL: never.
void bpe_trainer_set_cancel(BpeTrainer *t, volatile sig_atomic_t *cancel);
void bpe_trainer_free(BpeTrainer *t);

// Count the words of n bytes of UTF-8 text (split into lines). -1 with e filled when the text
// is not UTF-8.
int bpe_trainer_feed(BpeTrainer *t, const char *text, size_t n, Err *e);

typedef struct BpeTrainResult {
    int vocab;         // tokens in the vocabulary (specials, bytes, merges)
    int merges;        // merges learned
    int64_t words;     // distinct words counted
    int64_t last_freq; // the frequency of the last merge (0 when none)
} BpeTrainResult;

// Learn merges up to vocab_size tokens (>= 256 + the specials) from the words fed, with
// `specials` (n_specials strings, e.g. "<|endoftext|>") as the first ids; append vocab.json
// to vocab and merges.txt (with its "#version: 0.2" line) to merges. 0, or -1 with e filled.
int bpe_trainer_train(BpeTrainer *t, int vocab_size, int64_t min_frequency, const char *const *specials,
                      int n_specials, Buf *vocab, Buf *merges, BpeTrainResult *res, Err *e);
