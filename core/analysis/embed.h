// embed.h - text embeddings from a model's final hidden states: pooled over the tokens
// (mean, the first token, the maximum, or the last token) and optionally normalized, as
// sentence-transformers computes them for encoders.
#pragma once
#include <stdbool.h>

#include "base/err.h"
#include "eval/forward.h"

typedef enum { POOL_MEAN, POOL_CLS, POOL_MAX, POOL_LAST } PoolKind;

const char *pool_name(PoolKind p);
// "mean", "cls", "max", "last": 0, or -1 when s names none.
int pool_parse(const char *s, PoolKind *out);

// Evaluate ids[n] (types: segment ids or NULL) from an empty cache and pool the final hidden
// states (what the head reads: after the final norm in decoders, the last block's output in
// encoders) into out[n_embd]; normalize divides by the L2 norm. 0 or -1 with e filled.
int embed_ids(Ctx *c, const int *ids, const int *types, int n, PoolKind pool, bool normalize, float *out, Err *e);
// Cosine similarity of a and b (n floats); 0 when either is all zeros.
double embed_cosine(const float *a, const float *b, int n);
