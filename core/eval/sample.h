// sample.h - decoding: a seeded random generator, log-softmax, top-N and token sampling.
#pragma once
#include <stdint.h>

#include "kern/pool.h"

// Decoding parameters. temperature 0 means greedy; top_k 0 and top_p 1 disable those filters;
// top_p 0 keeps only the most likely token (as transformers, which always keeps one).
typedef struct SampleParams {
    float temperature;
    int top_k;
    float top_p;
    uint64_t seed;
} SampleParams;

// xoshiro256** seeded through splitmix64: the same seed gives the same stream everywhere.
typedef struct Rng {
    uint64_t s[4];
} Rng;

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_next(Rng *r);
// Uniform in [0, 1) with 24 bits of precision.
float rng_uniform(Rng *r);

// out[i] = x[i] - logsumexp(x) for n values (out may equal x).
void log_softmax(const float *x, int n, float *out);
// The same bits as log_softmax, its n exponentials made on pool's threads into scratch (n
// doubles, caller-owned), then summed in index order as log_softmax sums them.
void log_softmax_pool(Pool *pool, const float *x, int n, float *out, double *scratch);
// Indices of the k largest values of x (ties: lower index first), in descending order;
// returns min(k, n).
int top_n(const float *x, int n, int k, int *idx);

// Pick the next token from logits[V] with p. scratch holds V floats and V ints.
// Deterministic for a given Rng state. Greedy (temperature <= 0) consumes no randomness.
int sample_token(const float *logits, int V, const SampleParams *p, Rng *r, float *fscratch, int *iscratch);
