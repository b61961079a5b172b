// layers.h - the training pass's operations as forward/backward pairs (llm.c style): each
// forward writes its output and what its backward needs; each backward ADDS the gradients of
// its inputs and parameters into the buffers it is given (the caller zeroes them), so that
// gradients from several uses (a tied head, a residual stream, accumulation) sum up.
// Rows: N = B*T token positions of B sequences of T tokens, row n at position n % T.
// Float32; matrix products through OpenBLAS sgemm (called single-threaded: the caller's
// OpenBLAS thread count should be 1 when a pool is given).
//
// Each operation takes a pool (NULL: all on the caller's thread) and splits its work into the
// pool's shares in a fixed way: rows for row-wise outputs, columns for gradients summed over
// rows (a weight's, a bias's, a norm's), (sequence, key/value head) for attention. No two
// shares write one float, and every float is summed in the same order whatever the number of
// threads, so results are the same for every pool size (and run to run).
#pragma once
#include <stdbool.h>

#include "kern/pool.h"

// out (N, C) = wte[ids[n]] (+ wpe[n % T] when wpe) (+ wtt[types[n]] when wtt; types NULL: row
// 0, the first segment). wte (V, C), wpe (T_max >= T, C), wtt (n_types, C).
void tr_embed_forward(Pool *pool, float *out, const int *ids, const int *types, const float *wte, const float *wpe,
                      const float *wtt, int N, int T, int C);
// dwte, dwpe, dwtt (those two may be NULL) += the rows of dout (N, C) they fed.
void tr_embed_backward(Pool *pool, float *dwte, float *dwpe, float *dwtt, const float *dout, const int *ids,
                       const int *types, int N, int T, int C);

// LayerNorm over rows: out (N, C) = (inp - mean) * rstd * w (+ b); mean, rstd (N) saved.
void tr_layernorm_forward(Pool *pool, float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, int N, int C, float eps);
// dinp (N, C), dw, db (C; db may be NULL) += gradients from dout (N, C).
void tr_layernorm_backward(Pool *pool, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *w, const float *mean, const float *rstd, int N, int C);
// RMSNorm over rows: out (N, C) = inp * rstd * w, rstd = 1 / sqrt(mean(inp^2) + eps) (N) saved.
void tr_rmsnorm_forward(Pool *pool, float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps);
void tr_rmsnorm_backward(Pool *pool, float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                         const float *rstd, int N, int C);

// A linear layer: out (N, OC) = inp (N, IC) W (+ b (OC)); W is [IC, OC] when in_out (GPT-2's
// Conv1D), else [OC, IC] (nn.Linear, an output head).
void tr_matmul_forward(Pool *pool, float *out, const float *inp, const float *w, const float *b, int N, int IC,
                       int OC, bool in_out);
// dinp (N, IC), dw (W's shape), db (OC; may be NULL) += gradients from dout (N, OC).
void tr_matmul_backward(Pool *pool, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int N, int IC, int OC, bool in_out);

// Rotary embedding in place on x: N rows of stride floats holding n_heads heads of hd, the
// first rot dimensions of each rotated by the angles of table row n % T (cos, sin are
// (T, rot/2), from rope_table). pairs: (2i, 2i+1), else (i, i + rot/2) (HF rotate half).
// The backward is the same rotation by minus the angle: tr_rope(pool, dx, ..., sin negated).
void tr_rope(Pool *pool, float *x, int N, int T, int stride, int n_heads, int hd, int rot, const float *cos_t,
             const float *sin_t, bool pairs);

// Attention with grouped-query heads. q (N, rows of sq floats: H heads of hd), k, v
// (N, rows of skv floats: Hkv heads of hd), head h reading key/value head h / (H / Hkv).
// lens NULL: causal. Else bidirectional (an encoder's): every query row of sequence b, padded
// ones included, sees the keys [0, lens[b]) (1 <= lens[b] <= T), the rest masked out as an
// attention mask of zeros does.
// out z (N, H*hd) = per head softmax(q k^T / sqrt(hd), masked) v; att (B, H, T, T) saves the
// probabilities (causal: zero above the diagonal; bidirectional: columns from lens[b] unset).
void tr_attention_forward(Pool *pool, float *z, float *att, const float *q, const float *k, const float *v,
                          const int *lens, int B, int T, int H, int Hkv, int hd, int sq, int skv);
// dq, dk, dv (laid out as q, k, v) += gradients from dz (N, H*hd); datt (B, H, T, T) is scratch.
void tr_attention_backward(Pool *pool, float *dq, float *dk, float *dv, float *datt, const float *dz, const float *att,
                           const float *q, const float *k, const float *v, const int *lens, int B, int T, int H,
                           int Hkv, int hd, int sq, int skv);

// GELU, tanh approximation: out (n) = gelu(inp); dinp += gelu'(inp) * dout.
void tr_gelu_forward(Pool *pool, float *out, const float *inp, int n);
void tr_gelu_backward(Pool *pool, float *dinp, const float *inp, const float *dout, int n);
// GELU with erf (exact, BERT's): out (n) = inp Phi(inp); dinp += (Phi + inp phi)(inp) * dout.
void tr_gelu_erf_forward(Pool *pool, float *out, const float *inp, int n);
void tr_gelu_erf_backward(Pool *pool, float *dinp, const float *inp, const float *dout, int n);
// SwiGLU gating: out (n) = silu(gate) * up; dgate, dup += their gradients from dout.
void tr_swiglu_forward(Pool *pool, float *out, const float *gate, const float *up, int n);
void tr_swiglu_backward(Pool *pool, float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                        int n);

// out (n) = a + b (out may be a).
void tr_residual_forward(Pool *pool, float *out, const float *a, const float *b, int n);

// Cross-entropy of rows of logits (N, V) against targets (N; < 0: the row is not counted):
// probs (N, V) receives the softmax (may be logits), losses (N) each row's loss (0 when not
// counted). Returns the mean loss over counted rows (0 when none); *counted = their number.
double tr_crossentropy_forward(Pool *pool, float *probs, float *losses, const float *logits, const int *targets,
                               int N, int V, int *counted);
// dlogits (N, V) += (probs - onehot(target)) * scale * w[n] on counted rows (scale: 1/counted
// for the mean; w: a weight per row, NULL for 1): the gradient of sum_n scale w[n] loss[n].
void tr_crossentropy_backward(Pool *pool, float *dlogits, const float *probs, const int *targets, int N, int V,
                              float scale, const float *w);
