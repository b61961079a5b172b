// generate.h - prompt -> completion: prefill, then decode token by token with sampling.
#pragma once
#include <signal.h>
#include <stdbool.h>

#include "eval/forward.h"
#include "eval/sample.h"
#include "base/buf.h"
#include "base/vec.h"
#include "tok/tokenizer.h"

enum { GEN_MAX_ALTS = 20 };

typedef struct GenParams {
    SampleParams s;
    int max_tokens;   // tokens to generate
    int n_alts;       // top alternatives recorded per step (0..GEN_MAX_ALTS)
    bool stop_at_eos; // stop when the tokenizer's end token is produced
    bool truncate;    // drop the oldest prompt tokens when prompt + max_tokens > n_ctx
    int n_dropped;    // prompt tokens left out before the ids given (a replay of a truncated run): logged
                      // in the run's n_truncated beside the ones truncation drops here
} GenParams;

// One decoding step, handed to the step callback as it happens.
typedef struct GenStep {
    int index;             // 0-based step
    int id;                // chosen token
    float logprob;         // log p(id) under the model (temperature 1, no filtering)
    int n_alts;
    int alt_ids[GEN_MAX_ALTS];
    float alt_logprobs[GEN_MAX_ALTS];
} GenStep;

typedef enum { STOP_LENGTH, STOP_EOS, STOP_CANCELLED, STOP_CONTEXT } StopReason;

typedef struct GenResult {
    IntVec prompt;         // the prompt ids actually evaluated (after truncation)
    int n_truncated;       // prompt tokens dropped by truncation
    int n_reused;          // prompt tokens whose keys and values were kept from the cache
    IntVec ids;            // generated ids
    GenStep *steps;        // per generated token
    double prefill_s, decode_s;
    StopReason stop;
} GenResult;

const char *stop_reason_name(StopReason r);

// Return false to stop generating.
typedef bool (*GenStepFn)(void *user, const GenStep *step);

// Reset c, evaluate prompt[n_prompt] and generate. cancel, when non-NULL, is polled between
// tokens (set it from a signal handler); a cancelled run keeps what was produced.
// A prompt that does not fit (with max_tokens) fails unless p->truncate.
int generate(Ctx *c, const Tokenizer *tok, const int *prompt, int n_prompt, const GenParams *p,
             GenStepFn on_step, void *user, volatile sig_atomic_t *cancel, const Trace *trace,
             GenResult *out, Err *e);
// The same, keeping the first n_keep tokens of c's cache, which the caller knows to equal
// prompt[0..n_keep) (a shared prefix evaluated before): only the rest is evaluated. n_keep is
// lowered to what the cache holds and below n_prompt; a truncated prompt starts afresh.
int generate_keep(Ctx *c, const Tokenizer *tok, const int *prompt, int n_prompt, int n_keep, const GenParams *p,
                  GenStepFn on_step, void *user, volatile sig_atomic_t *cancel, const Trace *trace, GenResult *out,
                  Err *e);
void gen_result_free(GenResult *r);
// The completion's text, appended to out: r's ids decoded, without the end-of-text token a
// generation stopped at (STOP_EOS). That token stays in r->ids with its probability (the model
// chose to stop) but is not text: "<|im_end|>" is no part of an answer, of a logged run's text
// or of an exported pair.
void gen_text(const Tokenizer *tok, const GenResult *r, Buf *out);

// The log-probability of each of ids[from..n) given the tokens before it (lp: n - from
// values), for scoring a continuation. c's cache must hold ids[0..n_keep) (n_keep may be 0):
// those are kept, the rest evaluated. Afterwards the cache holds ids[0..n-1). 0 or -1 with e.
int eval_continuation(Ctx *c, const int *ids, int n, int from, int n_keep, float *lp, Err *e);
