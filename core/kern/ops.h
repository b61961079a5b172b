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
// out, inp are (T, C); w is (C): out = inp / rms(inp) * w. out may equal inp.
void rmsnorm_forward(float *out, const float *inp, const float *w, int T, int C, float eps);
// x is (n); GELU with erf (exact), in place.
void gelu_erf(float *x, int n);
// gate, up are (n): gate = silu(gate) * up (SwiGLU's gating), in place.
void swiglu(float *gate, const float *up, int n);
// Rotary tables for positions pos0..pos0+n_pos-1: cos/sin are (n_pos, half), the angle of
// pair i at position p is p * inv[i] (in float32, as HF computes it).
void rope_table(float *cos_out, float *sin_out, int pos0, int n_pos, int half, const float *inv);
// Rotate the first rot dimensions of every head of n rows of x (row stride stride floats,
// heads of hd), row t by table row t. pairs: dimensions (2i, 2i+1) (llama.cpp, llama2.c),
// else (i, i + rot/2) (HF "rotate half").
void rope_apply(float *x, int n, int stride, int n_heads, int hd, int rot, const float *cos_t, const float *sin_t,
                bool pairs);
// x is (n): in-place softmax.
void softmax_inplace(float *x, int n);
// Largest |x| and the index of the largest x (helpers for tests and sampling).
int argmax(const float *x, int n);
// Whether the CPU kernels with AVX2/FMA/F16C are in use.
bool ops_have_avx2(void);
