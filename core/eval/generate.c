// generate.c - the decoding loop shared by every command that produces text.
#include "eval/generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kern/ops.h"
#include "base/clock.h"
#include "base/mem.h"

const char *stop_reason_name(StopReason r) {
    switch (r) {
    case STOP_LENGTH: return "length";
    case STOP_EOS: return "eos";
    case STOP_CANCELLED: return "cancelled";
    case STOP_CONTEXT: return "context";
    }
    return "?";
}

void gen_result_free(GenResult *r) {
    iv_free(&r->prompt);
    iv_free(&r->ids);
    free(r->steps);
    memset(r, 0, sizeof *r);
}

int generate(Ctx *c, const Tokenizer *tok, const int *prompt, int n_prompt, const GenParams *p,
             GenStepFn on_step, void *user, volatile sig_atomic_t *cancel, const Trace *trace, GenResult *out,
             Err *e) {
    (void)tok;
    memset(out, 0, sizeof *out);
    const ModelConfig *cf = ctx_config(c);
    int V = cf->n_vocab, n_ctx = cf->n_ctx;
    if (n_prompt <= 0) return err_set(e, "empty prompt: give text, or start from the beginning-of-text token");
    if (p->max_tokens < 0) return err_set(e, "max must be >= 0");
    // The last generated token is never fed back, so prompt + max - 1 positions are needed.
    int need = n_prompt + (p->max_tokens > 0 ? p->max_tokens - 1 : 0);
    int skip = 0;
    if (need > n_ctx) {
        if (!p->truncate)
            return err_set(e,
                           "the prompt (%d tokens) and max=%d need %d positions but the context holds %d: "
                           "shorten the prompt, lower max, or pass truncate=true",
                           n_prompt, p->max_tokens, need, n_ctx);
        skip = need - n_ctx;
        if (skip >= n_prompt) return err_set(e, "max=%d alone exceeds the context of %d", p->max_tokens, n_ctx);
    }
    out->n_truncated = skip;
    for (int i = skip; i < n_prompt; i++) iv_push(&out->prompt, prompt[i]);
    int n_alts = p->n_alts < 0 ? 0 : p->n_alts > GEN_MAX_ALTS ? GEN_MAX_ALTS : p->n_alts;

    // sized by the vocabulary and max= (mem.h rule 1)
    float *logits = malloc(mem_mul((size_t)V, 2 * sizeof(float)));
    float *fs = malloc(mem_mul((size_t)V, sizeof(float)));
    int *is = malloc(mem_mul((size_t)V, sizeof(int)));
    if (!logits || !fs || !is) {
        free(logits), free(fs), free(is);
        return err_set(e, "out of memory for the logits of a vocabulary of %d", V);
    }
    out->steps = calloc((size_t)(p->max_tokens > 0 ? p->max_tokens : 1), sizeof *out->steps);
    if (!out->steps) {
        free(logits), free(fs), free(is);
        return err_set(e, "out of memory for max=%d generated tokens", p->max_tokens);
    }
    float *lp = logits + V;
    Rng rng;
    rng_seed(&rng, p->s.seed);
    ctx_reset(c);
    int rc = 0;
    double t0 = clock_now();
    if (ctx_eval(c, out->prompt.v, out->prompt.n, logits, false, trace, e)) {
        rc = -1;
        goto done;
    }
    out->prefill_s = clock_now() - t0;
    out->stop = STOP_LENGTH;
    int eos = tok ? tok_eos(tok) : -1;
    double t1 = clock_now();
    for (int step = 0; step < p->max_tokens; step++) {
        if (cancel && *cancel) {
            out->stop = STOP_CANCELLED;
            break;
        }
        int id = sample_token(logits, V, &p->s, &rng, fs, is);
        GenStep *st = &out->steps[step];
        st->index = step;
        st->id = id;
        log_softmax(logits, V, lp);
        st->logprob = lp[id];
        int alt[GEN_MAX_ALTS];
        st->n_alts = top_n(lp, V, n_alts, alt);
        for (int k = 0; k < st->n_alts; k++) st->alt_ids[k] = alt[k], st->alt_logprobs[k] = lp[alt[k]];
        iv_push(&out->ids, id);
        bool go_on = on_step ? on_step(user, st) : true;
        if (p->stop_at_eos && id == eos) {
            out->stop = STOP_EOS;
            break;
        }
        if (!go_on) {
            out->stop = STOP_CANCELLED;
            break;
        }
        if (step + 1 == p->max_tokens) break;
        if (ctx_pos(c) >= n_ctx) {
            out->stop = STOP_CONTEXT;
            break;
        }
        if (ctx_eval(c, &id, 1, logits, false, trace, e)) {
            rc = -1;
            break;
        }
    }
    out->decode_s = clock_now() - t1;
done:
    free(logits), free(fs), free(is);
    return rc;
}
