// forward.h - one forward pass for every architecture, over a KV cache, observable (and
// patchable) through a trace.
#pragma once
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "model/model.h"

// What a caller may ask to observe. Layouts (row-major, float32), d = n_embd:
//   TRACE_EMBED, TRACE_RESID_PRE, TRACE_RESID_MID, TRACE_RESID_POST, TRACE_LN_F,
//   TRACE_ATTN_OUT, TRACE_MLP_OUT: [n_q, d]
//   TRACE_Q, TRACE_Z: [n_q, n_head*head_dim]; TRACE_K, TRACE_V: [n_q, n_kv_head*head_dim]
//   TRACE_ATT_SCORES (scaled, before softmax; masked = -inf), TRACE_ATT_PROBS: [n_head, n_q, n_kv]
//   TRACE_LOGITS: [n_q, n_vocab]
// EMBED is the input of the first block (after the embedding norm when there is one).
// RESID_PRE is a block's input, RESID_MID the stream after the attention sublayer (after its
// norm in post-norm blocks), RESID_POST the block's output. Q and K are after the rotary
// embedding. Z is every head's attention-weighted values, before the output projection;
// ATTN_OUT and MLP_OUT are the sublayers' outputs before they are added to the stream.
// LN_F is the final hidden state fed to the head (after the final norm when there is one).
enum {
    TRACE_EMBED = 1u << 0,
    TRACE_Q = 1u << 1,
    TRACE_K = 1u << 2,
    TRACE_V = 1u << 3,
    TRACE_ATT_SCORES = 1u << 4,
    TRACE_ATT_PROBS = 1u << 5,
    TRACE_RESID_PRE = 1u << 6,
    TRACE_RESID_MID = 1u << 7,
    TRACE_RESID_POST = 1u << 8,
    TRACE_LN_F = 1u << 9,
    TRACE_LOGITS = 1u << 10,
    TRACE_Z = 1u << 11,
    TRACE_ATTN_OUT = 1u << 12,
    TRACE_MLP_OUT = 1u << 13,
    TRACE_ALL = (1u << 14) - 1,
};

typedef struct TracePoint {
    unsigned kind;     // one TRACE_* bit
    int layer;         // -1 for points outside the blocks
    int pos0;          // position of the first query row
    int n_q;           // query rows in this call
    int n_kv;          // keys visible (pos0 + n_q) for attention points
    int n_head;        // heads for attention points, else 1
    int dim;           // row width for non-attention points
    // The engine's own buffer, valid only during the callback. For every kind but the two
    // attention ones it is the live activation: a callback may change it and the change
    // flows into the rest of the pass (activation patching). Attention maps are copies.
    float *data;
} TracePoint;

// The caller's wish: which kinds, for which layers (bit l; 0 = all), and where to hand them.
typedef struct Trace {
    unsigned want;
    uint64_t layers;
    void (*fn)(void *user, const TracePoint *p);
    void *user;
} Trace;

// A sequence being evaluated: KV cache and scratch for one model. Not thread-safe.
typedef struct Ctx Ctx;

// n_threads <= 0 picks the number of online CPUs. The KV cache holds F32.
Ctx *ctx_new(const Model *m, int n_threads, Err *e);
// The same with the KV cache's element type kv: DT_F32, or DT_F16 (keys and values rounded to
// nearest even as they enter the cache, in prefill and decoding alike: half the memory, and half
// the bytes attention reads a decoded token; results move by that rounding). Other types fail.
Ctx *ctx_new_kv(const Model *m, int n_threads, DType kv, Err *e);
DType ctx_kv(const Ctx *c);        // the KV cache's element type
void ctx_free(Ctx *c);
int ctx_pos(const Ctx *c);         // tokens in the cache
int ctx_threads(const Ctx *c);
Pool *ctx_pool(Ctx *c);            // the thread team the pass runs on (for benchmarks)
const ModelConfig *ctx_config(const Ctx *c);
void ctx_reset(Ctx *c);            // empty the cache
// Room in the KV cache for n positions now (it grows on demand otherwise, the positions so far
// copied each time it doubles): for a benchmark that times decoding alone. 0, or -1 with e.
int ctx_reserve(Ctx *c, int n, Err *e);
// When *stop (NULL: never) becomes non-zero, an evaluation fails with "interrupted" before its
// next block (position unchanged): Ctrl-C stops a long analysis within a block's time. generate
// polls its own flag between tokens instead and keeps what it made, so it sets none for its run.
void ctx_set_stop(Ctx *c, volatile sig_atomic_t *stop);
volatile sig_atomic_t *ctx_stop(const Ctx *c);
void ctx_truncate(Ctx *c, int pos); // keep the first pos tokens

// Evaluate ids[n] at positions ctx_pos()..+n-1, appending them to the cache.
// logits: NULL, or room for (all ? n : 1) * n_vocab floats (the last position when !all).
// trace: NULL or what to observe. Fails (cache unchanged) if the context would overflow
// or an id is out of range. A bidirectional (encoder) model reads a whole text in one call
// from an empty cache.
int ctx_eval(Ctx *c, const int *ids, int n, float *logits, bool all, const Trace *trace, Err *e);
// The same with token types (segment ids, one per token; NULL = all 0) for models that have them.
int ctx_eval_types(Ctx *c, const int *ids, const int *types, int n, float *logits, bool all, const Trace *trace,
                   Err *e);
// The model's head on n rows x (n, n_embd) of the residual stream (a block's output, as
// TRACE_RESID_POST gives it): the final norm when the model has one, the head transform, the
// output projection, into logits (n, n_vocab). The logit lens. Uses the context's scratch,
// not its cache. Fails when the model has no language-model head.
int ctx_head(Ctx *c, const float *x, int n, float *logits, Err *e);
// Re-run a cached pass from block `layer` on: blocks layer..n_layer-1 on x (n, n_embd), the
// residual stream entering block `layer` (as TRACE_RESID_PRE gives it, or RESID_POST of the block
// before; layer == n_layer runs none) at positions ctx_pos()..+n-1; out (n, n_embd) or NULL
// gets the last block's output (the input of ctx_head). The cache must hold every layer's keys
// and values at the earlier positions; the rows evaluated replace theirs in the layers from
// `layer` on and leave the earlier layers' as they were (for re-running a cached pass with
// a changed activation, not for continuing a text). trace: points of the blocks run. Fails
// (position unchanged) as ctx_eval does.
int ctx_eval_from(Ctx *c, int layer, const float *x, int n, float *out, const Trace *trace, Err *e);
// The logits of the nt tokens tok (out[nt]) that ctx_head gives for one row x (n_embd) of the
// residual stream, without computing the others. Fails when the model has no language-model
// head or a token is out of range.
int ctx_head_pick(Ctx *c, const float *x, const int *tok, int nt, float *out, Err *e);
