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

void gen_text(const Tokenizer *tok, const GenResult *r, Buf *out) {
    int n = r->ids.n;
    if (r->stop == STOP_EOS && n > 0 && tok && tok_ends_text(tok, r->ids.v[n - 1])) n--;
    tok_decode(tok, r->ids.v, n, out);
    // from the beginning-of-text token alone, a SentencePiece-style text's first piece holds the
    // space its encoder puts before a text: the text starts after it, as sentencepiece and
    // llama2.c decode it (" Once upon" was "Once upon"); a continuation keeps its space
    bool from_start = tok && r->prompt.n > 0 && tok_space_prefixed(tok);
    for (int i = 0; from_start && i < r->prompt.n; i++) from_start = r->prompt.v[i] == tok_bos(tok);
    if (from_start && out->len && out->data[0] == ' ') {
        memmove(out->data, out->data + 1, out->len - 1);
        out->data[--out->len] = 0;
    }
}

int generate(Ctx *c, const Tokenizer *tok, const int *prompt, int n_prompt, const GenParams *p,
             GenStepFn on_step, void *user, volatile sig_atomic_t *cancel, const Trace *trace, GenResult *out,
             Err *e) {
    return generate_keep(c, tok, prompt, n_prompt, 0, p, on_step, user, cancel, trace, out, e);
}

static int generate_run(Ctx *c, const Tokenizer *tok, const int *prompt, int n_prompt, int n_keep, const GenParams *p,
                  GenStepFn on_step, void *user, volatile sig_atomic_t *cancel, const Trace *trace, GenResult *out,
                  Err *e) {
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
    // the cache keeps what it shares with the prompt; the last prompt token is evaluated again
    // for its logits (a truncated prompt starts afresh)
    if (skip || n_keep < 0) n_keep = 0;
    if (n_keep > n_prompt - 1) n_keep = n_prompt - 1;
    if (n_keep > ctx_pos(c)) n_keep = ctx_pos(c);
    out->n_reused = n_keep;
    for (int i = skip; i < n_prompt; i++) iv_push(&out->prompt, prompt[i]);
    int n_alts = p->n_alts < 0 ? 0 : p->n_alts > GEN_MAX_ALTS ? GEN_MAX_ALTS : p->n_alts;

    // sized by the vocabulary and max= (mem.h rule 1)
    float *logits = malloc(mem_mul((size_t)V, 2 * sizeof(float)));
    float *fs = malloc(mem_mul((size_t)V, sizeof(float)));
    int *is = malloc(mem_mul((size_t)V, sizeof(int)));
    double *ex = malloc(mem_mul((size_t)V, sizeof(double)));
    if (!logits || !fs || !is || !ex) {
        free(logits), free(fs), free(is), free(ex);
        return err_set(e, "out of memory for the logits of a vocabulary of %d", V);
    }
    out->steps = calloc((size_t)(p->max_tokens > 0 ? p->max_tokens : 1), sizeof *out->steps);
    if (!out->steps) {
        free(logits), free(fs), free(is), free(ex);
        return err_set(e, "out of memory for max=%d generated tokens", p->max_tokens);
    }
    float *lp = logits + V;
    Rng rng;
    rng_seed(&rng, p->s.seed);
    ctx_truncate(c, n_keep);
    int rc = 0;
    double t0 = clock_now();
    if (ctx_eval(c, out->prompt.v + n_keep, out->prompt.n - n_keep, logits, false, trace, e)) {
        rc = -1;
        goto done;
    }
    out->prefill_s = clock_now() - t0;
    out->stop = STOP_LENGTH;
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
        log_softmax_pool(ctx_pool(c), logits, V, lp, ex);
        st->logprob = lp[id];
        int alt[GEN_MAX_ALTS];
        st->n_alts = top_n(lp, V, n_alts, alt);
        for (int k = 0; k < st->n_alts; k++) st->alt_ids[k] = alt[k], st->alt_logprobs[k] = lp[alt[k]];
        iv_push(&out->ids, id);
        bool go_on = on_step ? on_step(user, st) : true;
        if (p->stop_at_eos && tok && tok_ends_text(tok, id)) {
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
    free(logits), free(fs), free(is), free(ex);
    return rc;
}

int eval_continuation(Ctx *c, const int *ids, int n, int from, int n_keep, float *lp, Err *e) {
    const ModelConfig *cf = ctx_config(c);
    int V = cf->n_vocab;
    if (from < 1 || from >= n) return err_set(e, "a continuation needs a token before it and one to score");
    if (n > cf->n_ctx) return err_set(e, "%d tokens exceed the context of %d", n, cf->n_ctx);
    // position from-1's logits predict ids[from]: evaluate from there (or from what the cache holds)
    int start = from - 1;
    if (n_keep < start) start = n_keep < 0 ? 0 : n_keep;
    if (start > ctx_pos(c)) start = ctx_pos(c);
    int rows = n - 1 - start; // positions start .. n-2
    size_t cells = mem_mul((size_t)rows, (size_t)V);
    float *logits = cells != SIZE_MAX ? malloc(sizeof(float) * cells) : NULL;
    float *row = malloc(sizeof(float) * (size_t)V);
    double *ex = malloc(sizeof(double) * (size_t)V);
    if (!logits || !row || !ex) {
        free(logits), free(row), free(ex);
        return err_set(e, "out of memory for the logits of %d tokens", rows);
    }
    ctx_truncate(c, start);
    int rc = ctx_eval(c, ids + start, rows, logits, true, NULL, e);
    for (int i = from; !rc && i < n; i++) {
        log_softmax_pool(ctx_pool(c), logits + (size_t)(i - 1 - start) * V, V, row, ex);
        lp[i - from] = row[ids[i]];
    }
    free(logits), free(row), free(ex);
    return rc;
}

int generate_keep(Ctx *c, const Tokenizer *tok, const int *prompt, int n_prompt, int n_keep, const GenParams *p,
                  GenStepFn on_step, void *user, volatile sig_atomic_t *cancel, const Trace *trace, GenResult *out,
                  Err *e) {
    // cancel stops between tokens and keeps them; the context's stop would fail the run instead
    volatile sig_atomic_t *stop = ctx_stop(c);
    ctx_set_stop(c, NULL);
    int rc = generate_run(c, tok, prompt, n_prompt, n_keep, p, on_step, user, cancel, trace, out, e);
    ctx_set_stop(c, stop);
    return rc;
}
