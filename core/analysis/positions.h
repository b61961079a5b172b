// positions.h - positional encodings for the position views: the original Transformer's
// sinusoids, a model's learned position embeddings, and their similarity structure.
#pragma once
#include "base/err.h"
#include <stdbool.h>

#include "model/model.h"

// out (len, dim): PE(pos, 2i) = sin(pos / 10000^(2i/dim)), PE(pos, 2i+1) = cos(same).
void pe_sinusoidal(float *out, int len, int dim);
// out (len, n_embd): the model's learned absolute position embeddings (rows 0..len-1).
// Returns -1 with e filled when the model has none or len exceeds its context.
int pe_learned(const Model *m, float *out, int len, Err *e);
// out (len, len): cosine similarity between the rows of x (len, dim).
void pe_cosine(float *out, const float *x, int len, int dim);
// Rotary positions of m (Llama family): out (len, rot/2) = the angle's cosine cos(pos * theta_i)
// of every dimension pair i (the model's frequencies, scaling included), or with relative,
// out (len, len) = q(m) . k(n) / (rot/2) for constant vectors q = k = 1 rotated to positions m
// and n: the mean over pairs of cos((m - n) theta_i), a function of m - n alone. *cols gets the
// width. -1 with e filled when m has no rotary positions or len is out of range.
int pe_rotary(const Model *m, float *out, int len, bool relative, int *cols, Err *e);
// The rotated dimension pairs of m's heads (rot/2), 0 when m has no rotary positions.
int pe_rotary_pairs(const Model *m);
