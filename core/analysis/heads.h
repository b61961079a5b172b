// heads.h - what each attention head does, from the attention probabilities the trace hands
// over: entropy, previous-token, first-token (sink), self and induction scores per layer x head.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "eval/forward.h"
#include "tok/tokenizer.h"

// The statistics of one head, averaged over the query rows 1..T-1 (row 0 of a decoder has
// one key and no choice): with p the head's attention,
//   entropy    -sum_j p[i][j] ln p[i][j] (nats)
//   prev_token p[i][i-1]        sink p[i][0]        self p[i][i]
//   induction  sum of p[i][j+1] over the earlier occurrences j < i of token ids[i], over the rows
//              whose token occurred before (NAN when no token repeats); on a repeated sequence
//              (rep > 0 below) p[i][i-rep+1] over the rows of the second copy only, the measure of
//              Olsson et al. (2022) and TransformerLens: the rows of the first copy whose token
//              occurred before by chance (many when the tokens are drawn from a small alphabet)
//              have nothing to copy from, and a token's chance occurrences elsewhere are not the
//              earlier copy.
typedef struct HeadStat {
    double entropy, prev_token, sink, self, induction;
} HeadStat;

enum { HEAD_N_STATS = 5 };
// "entropy", "prev_token", "sink", "self", "induction" (i < HEAD_N_STATS).
const char *head_stat_name(int i);
// The value of statistic i of s.
double head_stat(const HeadStat *s, int i);
// The index of a statistic's name, or -1.
int head_stat_find(const char *name);

// Evaluate ids[n] (types: segment ids or NULL) from an empty cache and fill
// out[layer * n_head + head] for every layer and head. n >= 2. rep: 0 for any text, or the
// length of the sequence ids holds twice right before its last `tail` tokens (heads_induction_ids,
// then an encoder's [SEP]; 2 rep + tail <= n), which scores induction on the second copy only.
// 0 or -1 with e filled.
int heads_stats(Ctx *c, const int *ids, const int *types, int n, int rep, int tail, HeadStat *out, Err *e);

// The sequence the induction score is measured on: bos (when >= 0), then len token ids drawn
// from seed, then the same len ids again. ids has room for 2 * len + 1. With from (n_from > 0
// ids) they are drawn from the distinct ids of from (say, the tokens of the letters a model was
// trained on: tokens it never saw have near-zero embeddings and tell nothing), without
// replacement when there are at least len of them, else with replacement (*distinct = false:
// a token then occurs several times in the first copy, and a head that copies from after
// every earlier occurrence scores less on the second copy's own); else they are len distinct
// ids of [0, vocab) that are not special in t (t may be NULL). Returns the count, or -1 with e
// filled when there are fewer than len ordinary tokens.
int heads_induction_ids(const Tokenizer *t, int vocab, int bos, int len, uint64_t seed, const int *from, int n_from,
                        int *ids, bool *distinct, Err *e);

// out[layer * n_head + head] = the attention of query position from to key position to
// (0 <= to, from < n; a decoder's future keys get 0). Evaluates ids from an empty cache.
int heads_attend(Ctx *c, const int *ids, const int *types, int n, int from, int to, float *out, Err *e);

// Attention rollout (Abnar & Zuidema 2020): out (n, n) = R_L-1 ... R_0 with R_l = 0.5 (mean over
// heads of layer l's attention) + 0.5 I: how much each query position draws on each input
// token through every layer. Rows sum to 1. Evaluates ids from an empty cache; the products run
// on the context's threads, Ctrl-C (ctx_stop) looked at between layers ("interrupted").
int heads_rollout(Ctx *c, const int *ids, const int *types, int n, float *out, Err *e);

// The neuron view of one head: q (head_dim) of the query position `query` and k (n, head_dim)
// of every position, as the head compares them (after the rotary embedding; k from the head's
// key/value group). The score of key j is sum_d q[d] k[j][d] / sqrt(head_dim).
int heads_qk(Ctx *c, const int *ids, const int *types, int n, int layer, int head, int query, float *q, float *k,
             Err *e);
