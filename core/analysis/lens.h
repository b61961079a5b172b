// lens.h - the logit lens and activation patching: the model's head read off the residual
// stream after every block, and which activations of a clean run restore its answer in a
// corrupted one. Both go through the trace; neither re-implements the model.
#pragma once
#include "base/err.h"
#include "eval/forward.h"

// Evaluate ids[n] (types or NULL) from an empty cache; hidden (n_layer + 1, n, n_embd) gets the
// residual stream: [0] the embeddings (the first block's input), [l] block l-1's output. logits
// (n, n_vocab), or NULL: the model's own prediction at every position. 0 or -1 with e filled.
int lens_hidden(Ctx *c, const int *ids, const int *types, int n, float *hidden, float *logits, Err *e);

// probs (n, n_vocab): softmax of the head read off the rows x (n, n_embd) of the residual
// stream (ctx_head, then a softmax per row). 0 or -1 with e filled.
int lens_probs(Ctx *c, const float *x, int n, float *probs, Err *e);

// The result of activation patching. Fractions restored: (metric(patched) - corrupt) /
// (clean - corrupt), where metric is logit[answer] - logit[wrong] at position pos.
typedef struct PatchResult {
    int answer, wrong;  // the tokens compared (chosen when the caller gave -1)
    bool same_top;      // failed: wrong was not given and the corrupt run's top token is the answer
    double clean, corrupt; // the metric of each run
    float *resid;       // [(n_layer + 1) * n]: the residual stream (as lens_hidden numbers it) at one position
    float *head;        // [n_layer * n_head]: one head's weighted values (TRACE_Z) at every position
    float *mlp;         // [n_layer]: one MLP output at every position
} PatchResult;

void patch_result_free(PatchResult *r);

// The site kinds patch_run visits (a mask).
enum { PATCH_RESID = 1, PATCH_HEADS = 2, PATCH_MLP = 4, PATCH_ALL = 7 };

// Run clean[n] and corrupt[n], then corrupt again with one site at a time taken from the
// clean run. answer/wrong: token ids, or -1 for the clean run's top token and the corrupt
// run's; when that is the answer too, patch_run fails (same_top): the contrast is the caller's
// to name. A causal model re-runs only from the patched position on (the corrupt prefix stays in
// the cache); a site whose clean activation equals the corrupt one gives 0 without a re-run.
// sites: the PATCH_* kinds to visit; the result's arrays of the others stay NULL. Fails when the
// two runs give the same metric.
int patch_run(Ctx *c, const int *clean, const int *corrupt, int n, int pos, int answer, int wrong, unsigned sites,
              PatchResult *r, Err *e);
