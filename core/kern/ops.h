// ops.h - the numeric building blocks of the forward passes (float32 activations).
#pragma once
#include <stdbool.h>

#include "kern/pool.h"
#include "kern/tensor.h"

// A linear layer y = x W + b over a stored weight. w is [in, out] (GPT-2 Conv1D) unless
// out_in, then [out, in] (nn.Linear, embeddings used as an output head).
typedef struct Linear {
    Tensor w;
    bool out_in;
    const float *bias; // [out] or NULL
    int in, out;
} Linear;

// out is (T, l->out), inp is (T, l->in). Uses every thread of pool; F16/BF16/Q8_0 weights
// are converted panel by panel, never as a whole.
void linear_forward(Pool *pool, float *out, const float *inp, const Linear *l, int T);

// out, inp are (T, C); w, b are (C). out may equal inp.
void layernorm_forward(float *out, const float *inp, const float *w, const float *b, int T, int C, float eps);
// x is (n); GELU with the tanh approximation, in place.
void gelu_tanh(float *x, int n);
// x is (n): in-place softmax.
void softmax_inplace(float *x, int n);
// Largest |x| and the index of the largest x (helpers for tests and sampling).
int argmax(const float *x, int n);
// Whether the CPU kernels with AVX2/FMA/F16C are in use.
bool ops_have_avx2(void);
