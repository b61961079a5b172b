// ops.h - the numeric building blocks of the forward passes (float32 activations). Each
// runs the kernels of kern/kernels.h chosen for this CPU (kern_name() tells which).
#pragma once
#include <stdbool.h>
#include <stdint.h>

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

// out is (T, l->out), inp is (T, l->in). Uses every thread of pool; weights other than F32
// (half floats, quantized blocks) are converted panel by panel, never as a whole. Block types
// hold whole blocks per stored row: in (out_in) or out ([in, out]) a multiple of the block. Allocates nothing once each thread's
// scratch has grown to the largest layer.
void linear_forward(Pool *pool, float *out, const float *inp, const Linear *l, int T);
// Prefill (T > 1) as linear_forward does it, but through sgemm where the kernels have their own
// tiles (kern/kernels.h GemmFn): the bound a benchmark holds prefill against (kern/bound.h).
void linear_forward_sgemm(Pool *pool, float *out, const float *inp, const Linear *l, int T);

// The n <= 4 linears ls (all of the same in) on one input: outs[i] (T, ls[i]->out) as
// linear_forward gives it, bit for bit; decoding (T == 1) runs them in one parallel section
// (q, k and v, or gate and up: one section instead of three or two per layer).
void linear_forward_n(Pool *pool, float *const *outs, const float *inp, const Linear *const *ls, int n, int T);

enum { LIN_MAX = 4 }; // linears one decoding section can run

// An activation applied to n outputs of a linear in place; up is the paired linear's outputs
// (SwiGLU's up beside its gate) or NULL.
typedef void (*LinActFn)(float *x, const float *up, int n);

// One part of a decoding section: out (l->out) = x l, then act(out, out2) on it; for an
// [out, in] l, optionally l2 on the same rows into out2 (act on each chunk of rows once both
// are made). chain: x is the previous part's output (after its act) instead of the section's
// input; when both are [in, out] they share the section (each row block of this part makes
// its slice of that input final), else this part starts a section of its own. late: the part
// runs after the section's `after` tasks, on an input of its own (x) that those tasks make:
// each of its chunks first waits (after->wait_in) for the rows of x it reads (an [in, out]
// block its slice, an [out, in] chunk all of x). Late parts come last, with float weights.
typedef struct LinDecode {
    const Linear *l, *l2;
    float *out, *out2;
    LinActFn act;
    bool chain, late;
    const float *x; // a late part's input
} LinDecode;

// A decoding section's work after its linears: task(arg, J, i, ith) for i < n, run by
// whichever thread takes it (ith: its share, for per-thread scratch). A task may wait for
// the outputs it reads with linear_wait_rows. wait_in(arg, i0, i1), for late parts: returns
// once elements i0..i1 of their input are made (tasks taken before run on other threads or
// are done, so waiting for them ends).
typedef struct LinJob LinJob;
typedef struct LinAfter {
    void (*fn)(void *arg, const LinJob *J, int i, int ith);
    void *arg;
    int n;
    void (*wait_in)(void *arg, int i0, int i1);
} LinAfter;

// Decoding (T == 1): the n <= LIN_MAX parts ls (all of the same in, but for chained ones) in
// one parallel section, then after's tasks (NULL: none) in the same section; a section with
// after has no chained part. Each output bit for bit as linear_forward, then act, makes it. l2 needs
// [out, in] linears. With after, the tasks must wait (linear_wait_rows) for every row of each
// [in, out] part that is not late exactly once: that is where its row blocks' sums are added
// (a late part's are added after the section).
void linear_decode(Pool *pool, const float *inp, const LinDecode *ls, int n, const LinAfter *after);

// Inside an after task of J: wait until outputs j0..j1 of part `part` are made ([in, out]:
// every row block; then this call adds their sums and the bias of those rows).
void linear_wait_rows(const LinJob *J, int part, int j0, int j1);

// out, inp are (T, C); w, b are (C), b may be NULL. out may equal inp.
void layernorm_forward(float *out, const float *inp, const float *w, const float *b, int T, int C, float eps);
// x is (n); GELU with the tanh approximation, in place (gelu_tanh_to(x, x, n)).
void gelu_tanh(float *x, int n);
// out, inp are (n), out may equal inp: out = GELU (tanh approximation) of inp, as x / (1 + e^(-2u)),
// which keeps its relative precision for negative x (0.5 x (1 + tanh u) does not below about -3).
void gelu_tanh_to(float *out, const float *inp, int n);
// dinp (n) += GELU'(inp) * dout: the backward of gelu_tanh_to.
void gelu_tanh_backward(float *dinp, const float *inp, const float *dout, int n);
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
// Index of the largest x (the first of equals).
int argmax(const float *x, int n);
// Name of the kernels in use: "scalar", "avx2", "avx512" or "avx512vnni" (see kern/kernels.h).
const char *ops_kernels(void);

// What linear_forward did on one pool while counted (for benchmarks): weight bytes and
// multiply-adds x 2, split into matrix-vector (T == 1) and matrix-matrix (T > 1) calls, and
// the distinct matrix-matrix shapes with how often each ran.
enum { LINEAR_MAX_SHAPES = 32 };
typedef struct LinearShape {
    int T, in, out;
    bool out_in;
    int64_t calls;
} LinearShape;
typedef struct LinearCount {
    int64_t mv_calls, mm_calls;
    double mv_bytes, mv_flops, mm_flops;
    int n_shapes;
    LinearShape shapes[LINEAR_MAX_SHAPES]; // further shapes are counted in mm_flops only
} LinearCount;
// Count the linear layers run on pool into *c (cleared first); NULL stops counting.
void linear_count(Pool *pool, LinearCount *c);
