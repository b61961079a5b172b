// forward.h - the forward pass with a KV cache, observable through a trace.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "model/model.h"

// What a caller may ask to observe. Layouts (row-major, float32):
//   TRACE_EMBED, TRACE_RESID_PRE, TRACE_RESID_MID, TRACE_RESID_POST, TRACE_LN_F: [n_q, n_embd]
//   TRACE_Q: [n_q, n_head*head_dim]; TRACE_K, TRACE_V: [n_q, n_kv_head*head_dim]
//   TRACE_ATT_SCORES (scaled, before softmax; masked = -inf), TRACE_ATT_PROBS: [n_head, n_q, n_kv]
//   TRACE_LOGITS: [n_q, n_vocab]
// RESID_PRE is a block's input, RESID_MID the stream after attention, RESID_POST the output.
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
};

typedef struct TracePoint {
    unsigned kind;     // one TRACE_* bit
    int layer;         // -1 for points outside the blocks
    int pos0;          // position of the first query row
    int n_q;           // query rows in this call
    int n_kv;          // keys visible (pos0 + n_q) for attention points
    int n_head;        // heads for attention points, else 1
    int dim;           // row width for non-attention points
    const float *data; // borrowed: valid only during the callback
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

// n_threads <= 0 picks the number of online CPUs.
Ctx *ctx_new(const Model *m, int n_threads, Err *e);
void ctx_free(Ctx *c);
int ctx_pos(const Ctx *c);         // tokens in the cache
int ctx_threads(const Ctx *c);
Pool *ctx_pool(Ctx *c);            // the thread team the pass runs on (for benchmarks)
const ModelConfig *ctx_config(const Ctx *c);
void ctx_reset(Ctx *c);            // empty the cache
void ctx_truncate(Ctx *c, int pos); // keep the first pos tokens

// Evaluate ids[n] at positions ctx_pos()..+n-1, appending them to the cache.
// logits: NULL, or room for (all ? n : 1) * n_vocab floats (the last position when !all).
// trace: NULL or what to observe. Fails (cache unchanged) if the context would overflow
// or an id is out of range.
int ctx_eval(Ctx *c, const int *ids, int n, float *logits, bool all, const Trace *trace, Err *e);
