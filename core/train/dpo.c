// dpo.c - Direct Preference Optimisation on preference pairs (see dpo.h).
#include "train/dpo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"
#include "eval/sample.h"

static double log_sigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
static double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

double dpo_loss(const float *lp_c, const float *lp_r, const float *ref_c, const float *ref_r, float beta, int P,
                float *dlp) {
    double sum = 0;
    for (int i = 0; i < P; i++) {
        double z = beta * (((double)lp_c[i] - ref_c[i]) - ((double)lp_r[i] - ref_r[i]));
        sum -= log_sigmoid(z);
        if (dlp) { // d(-log sigmoid(z))/dz = sigmoid(z) - 1 = -sigmoid(-z)
            double g = -sigmoid(-z) * beta / P;
            dlp[2 * i] = (float)g;
            dlp[2 * i + 1] = (float)-g;
        }
    }
    return P ? sum / P : NAN;
}

// Rows of B sequences of T tokens through the model, with the targets that score each
// completion's tokens: row position t predicts token t + 1, counted when t + 1 >= start.
typedef struct {
    TrainModel *tm;
    int B, T;
    int *ids, *targets; // (B, T)
    float *w;           // (B, T): the backward's weight of each row's loss
} Rows;

static int rows_init(Rows *R, TrainModel *tm, int B, const DpoData *d, Err *e) {
    const ModelConfig *c = tmodel_config(tm);
    R->tm = tm;
    R->B = B;
    R->T = 1;
    for (int i = 0; i < d->n_seq; i++) {
        if (d->len[i] < 1 || d->len[i] > c->n_ctx)
            return err_set(e, "a sequence of %d tokens (1 to the context of %d)", d->len[i], c->n_ctx);
        if (d->start[i] < 1 || d->start[i] > d->len[i])
            return err_set(e, "a completion starting at token %d of %d (it needs a prompt token before it)",
                           d->start[i], d->len[i]);
        if (d->len[i] > R->T) R->T = d->len[i];
    }
    R->ids = xcalloc((size_t)B * R->T, sizeof *R->ids);
    R->targets = xcalloc((size_t)B * R->T, sizeof *R->targets);
    R->w = xcalloc((size_t)B * R->T, sizeof *R->w);
    return 0;
}

static void rows_done(Rows *R) {
    free(R->ids);
    free(R->targets);
    free(R->w);
}

// One forward pass over sequences idx[0..n) (n <= B; the rest padding): their summed
// completion log-probabilities into lp; *tokens += the completion tokens scored. The
// activations stay for tmodel_backward_rows.
static int rows_logprobs(Rows *R, const DpoData *d, const int *idx, int n, float *lp, int64_t *tokens, Err *e) {
    size_t BT = (size_t)R->B * R->T;
    memset(R->ids, 0, sizeof *R->ids * BT);
    for (size_t i = 0; i < BT; i++) R->targets[i] = -1;
    for (int b = 0; b < n; b++) {
        int s = idx[b], len = d->len[s];
        int *row = R->ids + (size_t)b * R->T, *tg = R->targets + (size_t)b * R->T;
        memcpy(row, d->seq[s], sizeof(int) * (size_t)len);
        for (int t = d->start[s]; t < len; t++) tg[t - 1] = d->seq[s][t];
    }
    double mean;
    if (tmodel_forward(R->tm, R->ids, R->targets, R->B, R->T, &mean, e)) return -1;
    const float *loss = tmodel_losses(R->tm);
    for (int b = 0; b < n; b++) {
        double sum = 0;
        int s = idx[b];
        for (int t = d->start[s] - 1; t < d->len[s] - 1; t++) sum -= loss[(size_t)b * R->T + t];
        lp[b] = (float)sum;
        if (tokens) *tokens += d->len[s] - d->start[s];
    }
    return 0;
}

// Log-probabilities of sequences idx[0..n) into out, B at a time.
static int rows_logprobs_all(Rows *R, const DpoData *d, const int *idx, int n, float *out, Err *e) {
    for (int i = 0; i < n; i += R->B)
        if (rows_logprobs(R, d, idx + i, n - i < R->B ? n - i : R->B, out + i, NULL, e)) return -1;
    return 0;
}

int dpo_logprobs(TrainModel *tm, const DpoData *d, const int *idx, int n, float *out, Err *e) {
    if (n < 1) return 0;
    Rows R = {0};
    int rc = rows_init(&R, tm, n < 8 ? n : 8, d, e);
    if (!rc) rc = rows_logprobs_all(&R, d, idx, n, out, e);
    rows_done(&R);
    return rc;
}

// The held-out figures from the log-probabilities lp and the reference's ref (n_seq each).
static DpoStats held_stats(const DpoData *d, const float *lp, const float *ref, float beta) {
    DpoStats s = {NAN, NAN, NAN, NAN, NAN, NAN};
    int P = d->n_held;
    if (!P) return s;
    float *v = xmalloc(sizeof(float) * 4 * (size_t)P);
    double acc = 0, margin = 0, ch = 0, rj = 0, lm = 0;
    for (int i = 0; i < P; i++) {
        int c = d->held[i].chosen, r = d->held[i].rejected;
        v[i] = lp[c], v[P + i] = lp[r], v[2 * P + i] = ref[c], v[3 * P + i] = ref[r];
        double rc = beta * ((double)lp[c] - ref[c]), rr = beta * ((double)lp[r] - ref[r]);
        acc += rc > rr;
        margin += rc - rr;
        ch += rc;
        rj += rr;
        lm += (double)lp[c] - lp[r];
    }
    s.loss = dpo_loss(v, v + P, v + 2 * P, v + 3 * P, beta, P, NULL);
    s.accuracy = acc / P, s.margin = margin / P, s.chosen = ch / P, s.rejected = rj / P, s.logp_margin = lm / P;
    free(v);
    return s;
}

// The held-out figures with the current weights (lp: n_seq scratch; idx: the sequences of
// the held-out pairs, n of them).
static int evaluate(Rows *R, const DpoData *d, const int *idx, int n, float *lp, float *scratch, const float *ref,
                    float beta, DpoStats *s, Err *e) {
    if (rows_logprobs_all(R, d, idx, n, scratch, e)) return -1;
    for (int i = 0; i < n; i++) lp[idx[i]] = scratch[i];
    *s = held_stats(d, lp, ref, beta);
    return 0;
}

int dpo_train(TrainModel *tm, const DpoData *d, const DpoOpts *o, const DpoHooks *h, DpoResult *res, Err *e) {
    memset(res, 0, sizeof *res);
    DpoStats none = {NAN, NAN, NAN, NAN, NAN, NAN};
    res->start = res->held = none;
    if (d->n_train < 1) return err_set(e, "no training pairs");
    if (o->batch < 1 || o->opt.steps < 1) return err_set(e, "batch and steps must be positive");
    if (!(o->beta > 0)) return err_set(e, "beta must be positive");
    int P = o->batch < d->n_train ? o->batch : d->n_train, rc = 0;
    Rows R = {0};
    if (rows_init(&R, tm, 2 * P, d, e)) {
        rows_done(&R);
        return -1;
    }
    Lora *L = o->lora;
    size_t np = L ? L->size : tmodel_size(tm); // what the optimizer trains
    float *tp = L ? L->params : tmodel_params(tm), *g = L ? L->grads : tmodel_grads(tm);
    float *ref = xmalloc(sizeof(float) * (size_t)d->n_seq), *lp_all = xcalloc((size_t)d->n_seq, sizeof(float));
    size_t n_scr = (size_t)(d->n_seq > 2 * P ? d->n_seq : 2 * P); // every sequence, or a step's
    float *scratch = xmalloc(sizeof(float) * n_scr);
    int *idx = xmalloc(sizeof(int) * n_scr), *order = xmalloc(sizeof(int) * (size_t)d->n_train);
    int *held_idx = xmalloc(sizeof(int) * (size_t)d->n_seq), n_held_seq = 0;
    bool *needed = xcalloc((size_t)d->n_seq, sizeof(bool));
    float *lp = xmalloc(sizeof(float) * 2 * (size_t)P), *rf = xmalloc(sizeof(float) * 2 * (size_t)P);
    float *dlp = xmalloc(sizeof(float) * 2 * (size_t)P);
    float *best_params = malloc(sizeof(float) * np);
    AdamW opt = {0};
    if (!best_params) rc = err_set(e, "out of memory for %zu parameters", np);
    if (!rc) rc = adamw_init(&opt, np, e);
    for (int i = 0; i < d->n_held; i++) needed[d->held[i].chosen] = needed[d->held[i].rejected] = true;
    for (int i = 0; i < d->n_seq; i++)
        if (needed[i]) held_idx[n_held_seq++] = i;
    // the reference: given, or the policy before its first step (the frozen base)
    if (!rc && d->ref) memcpy(ref, d->ref, sizeof(float) * (size_t)d->n_seq);
    if (!rc && !d->ref) {
        for (int i = 0; i < d->n_seq; i++) idx[i] = i;
        rc = rows_logprobs_all(&R, d, idx, d->n_seq, ref, e);
    }
    Rng rng;
    rng_seed(&rng, o->seed);
    for (int i = 0; i < d->n_train; i++) order[i] = i;
    int cursor = d->n_train, since_best = 0, step = 0;
    double t0 = clock_now(), best_loss = INFINITY;
    if (!rc) {
        if (d->ref) rc = evaluate(&R, d, held_idx, n_held_seq, lp_all, scratch, ref, o->beta, &res->start, e);
        else res->start = held_stats(d, ref, ref, o->beta);
    }
    if (!rc) {
        memcpy(best_params, tp, sizeof(float) * np);
        res->held = res->start;
        best_loss = d->n_held ? res->start.loss : INFINITY;
        DpoPoint p0 = {0, o->opt.steps, NAN, NAN, NAN, 0, true, true, res->start, 0, 0};
        if (h && h->point && h->point(h->user, &p0)) step = o->opt.steps;
    }
    for (; !rc && step < o->opt.steps; step++) {
        for (int i = 0; i < P; i++) { // the next P pairs of a shuffled order
            if (cursor == d->n_train) {
                for (int j = d->n_train - 1; j > 0; j--) {
                    int k = (int)(rng_next(&rng) % (uint64_t)(j + 1)), t = order[j];
                    order[j] = order[k], order[k] = t;
                }
                cursor = 0;
            }
            const DpoPair *q = &d->train[order[cursor++]];
            idx[2 * i] = q->chosen, idx[2 * i + 1] = q->rejected;
            rf[i] = ref[q->chosen], rf[P + i] = ref[q->rejected];
        }
        if ((rc = rows_logprobs(&R, d, idx, 2 * P, lp, &res->tokens, e))) break;
        float *lc = scratch, *lj = scratch + P; // chosen and rejected side by side
        for (int i = 0; i < P; i++) lc[i] = lp[2 * i], lj[i] = lp[2 * i + 1];
        double loss = dpo_loss(lc, lj, rf, rf + P, o->beta, P, dlp);
        // each counted row's loss is -log p(token): its weight is -d(loss)/d(lp) of its sequence
        memset(R.w, 0, sizeof(float) * (size_t)R.B * R.T);
        for (int b = 0; b < 2 * P; b++)
            for (int t = d->start[idx[b]] - 1; t < d->len[idx[b]] - 1; t++) R.w[(size_t)b * R.T + t] = -dlp[b];
        tmodel_zero_grad(tm);
        tmodel_backward_rows(tm, R.w);
        if (L) lora_grads(L, tm);
        double norm = o->opt.clip > 0 ? optim_clip(g, np, o->opt.clip) : optim_grad_norm(g, np);
        if ((rc = optim_check_step(step + 1, loss, norm, e))) break;
        float lr = optim_lr(&o->opt, step);
        if (L) {
            adamw_step_vec(&opt, L->params, L->grads, true, &o->opt, lr);
            lora_merge(L, tm);
        } else {
            adamw_step(&opt, tm, &o->opt, lr);
        }
        res->steps = step + 1;
        res->loss = loss;
        double el = clock_now() - t0;
        DpoPoint p = {step + 1, o->opt.steps, loss, lr, norm, res->tokens, false, false, none, el,
                      el > 0 ? (double)(step + 1) * P / el : 0};
        res->pairs_s = p.pairs_s;
        bool last = step + 1 == o->opt.steps;
        if (last || (o->eval_every > 0 && (step + 1) % o->eval_every == 0)) {
            p.evaluated = true;
            if ((rc = evaluate(&R, d, held_idx, n_held_seq, lp_all, scratch, ref, o->beta, &p.held, e))) break;
            if (!d->n_held || p.held.loss < best_loss - 1e-7) {
                p.best = true;
                best_loss = d->n_held ? p.held.loss : INFINITY;
                since_best = 0;
                res->best_step = step + 1;
                res->held = p.held;
                memcpy(best_params, tp, sizeof(float) * np);
            } else {
                since_best++;
            }
        }
        bool stop = h && h->point && h->point(h->user, &p);
        if (p.evaluated && o->patience > 0 && since_best >= o->patience) {
            res->stopped_early = true;
            stop = true;
        }
        if (stop) break;
    }
    if (!rc) memcpy(tp, best_params, sizeof(float) * np);
    if (!rc && L) lora_merge(L, tm);
    adamw_done(&opt);
    rows_done(&R);
    free(ref);
    free(lp_all);
    free(scratch);
    free(idx);
    free(order);
    free(held_idx);
    free(needed);
    free(lp);
    free(rf);
    free(dlp);
    free(best_params);
    return rc;
}
