// positions.h - positional encodings for the position views: the original Transformer's
// sinusoids, a model's learned position embeddings, and their similarity structure.
#pragma once
#include "base/err.h"
#include "model/model.h"

// out (len, dim): PE(pos, 2i) = sin(pos / 10000^(2i/dim)), PE(pos, 2i+1) = cos(same).
void pe_sinusoidal(float *out, int len, int dim);
// out (len, n_embd): the model's learned absolute position embeddings (rows 0..len-1).
// Returns -1 with e filled when the model has none or len exceeds its context.
int pe_learned(const Model *m, float *out, int len, Err *e);
// out (len, len): cosine similarity between the rows of x (len, dim).
void pe_cosine(float *out, const float *x, int len, int dim);
