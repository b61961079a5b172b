// reward.c - reward-model training on preference pairs (see reward.h).
#include "train/reward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"
#include "eval/sample.h"

static double log_sigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
static double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

double reward_bt_loss(const float *rc, const float *rr, const RewardPair *pairs, int P, float *dd) {
    double sum = 0;
    for (int i = 0; i < P; i++) {
        double x = (double)rc[i] - (double)rr[i], g;
        if (pairs[i].tie) {
            sum -= (log_sigmoid(x) + log_sigmoid(-x)) / 2;
            g = sigmoid(x) - 0.5;
        } else {
            x -= pairs[i].margin;
            sum -= log_sigmoid(x);
            g = sigmoid(x) - 1.0;
        }
        if (dd) dd[i] = (float)(g / P);
    }
    return P ? sum / P : NAN;
}

double reward_accuracy(const float *rc, const float *rr, const RewardPair *pairs, int P) {
    int n = 0, right = 0;
    for (int i = 0; i < P; i++)
        if (!pairs[i].tie) n++, right += rc[i] > rr[i];
    return n ? (double)right / n : NAN;
}

// The batches of sequences run through the model: B rows of T tokens.
typedef struct {
    TrainModel *tm;
    int B, T, dim;
    PoolKind pool;
    int *ids, *types; // (B, T)
    int *lens;        // (B)
} Rows;

static void rows_done(Rows *R) {
    free(R->ids);
    free(R->types);
    free(R->lens);
}

static int rows_init(Rows *R, TrainModel *tm, int B, const int *len, int n, PoolKind pool, Err *e) {
    const ModelConfig *c = tmodel_config(tm);
    R->tm = tm;
    R->B = B;
    R->dim = c->n_embd;
    R->pool = pool;
    R->T = 1;
    if (pool != POOL_LAST && pool != POOL_CLS && pool != POOL_MEAN)
        return err_set(e, "%s pooling is not supported (last, cls or mean)", pool_name(pool));
    for (int i = 0; i < n; i++) {
        if (len[i] < 1 || len[i] > c->n_ctx)
            return err_set(e, "a sequence of %d tokens (1 to the context of %d)", len[i], c->n_ctx);
        if (len[i] > R->T) R->T = len[i];
    }
    R->ids = xcalloc((size_t)B * R->T, sizeof *R->ids);
    R->types = xcalloc((size_t)B * R->T, sizeof *R->types);
    R->lens = xcalloc((size_t)B, sizeof *R->lens);
    return 0;
}

// Pools the hidden states x (T, dim) of a sequence of len tokens into h (dim).
static void pool_rows(const Rows *R, const float *x, int len, float *h) {
    int dim = R->dim;
    if (R->pool != POOL_MEAN) {
        memcpy(h, x + (size_t)(R->pool == POOL_CLS ? 0 : len - 1) * dim, sizeof(float) * (size_t)dim);
        return;
    }
    for (int j = 0; j < dim; j++) {
        double s = 0;
        for (int t = 0; t < len; t++) s += x[(size_t)t * dim + j];
        h[j] = (float)(s / len);
    }
}

// The pooling's backward: dx (T, dim) of a sequence of len tokens += coef * g (dim), the
// gradient of its pooled vector.
static void pool_backward(const Rows *R, float *dx, int len, float coef, const float *g) {
    int dim = R->dim, t0 = R->pool == POOL_LAST ? len - 1 : 0, t1 = R->pool == POOL_MEAN ? len : t0 + 1;
    if (R->pool == POOL_MEAN) coef /= (float)len;
    for (int t = t0; t < t1; t++)
        for (int j = 0; j < dim; j++) dx[(size_t)t * dim + j] += coef * g[j];
}

// The pooled final hidden states of sequences idx[0..n) (n <= B) into h (n, dim); the pass's
// activations stay for a backward. Rows beyond n are padding (one token).
static int rows_hidden(Rows *R, const int *const *seq, const int *const *types, const int *len, const int *idx, int n,
                       float *h, Err *e) {
    memset(R->ids, 0, sizeof *R->ids * (size_t)R->B * R->T);
    memset(R->types, 0, sizeof *R->types * (size_t)R->B * R->T);
    for (int b = 0; b < R->B; b++) R->lens[b] = b < n ? len[idx[b]] : 1;
    for (int b = 0; b < n; b++) {
        memcpy(R->ids + (size_t)b * R->T, seq[idx[b]], sizeof(int) * (size_t)len[idx[b]]);
        if (types) memcpy(R->types + (size_t)b * R->T, types[idx[b]], sizeof(int) * (size_t)len[idx[b]]);
    }
    const float *x = tmodel_encode(R->tm, R->ids, types ? R->types : NULL, R->lens, R->B, R->T, e);
    if (!x) return -1;
    for (int b = 0; b < n; b++) pool_rows(R, x + (size_t)b * R->T * R->dim, len[idx[b]], h + (size_t)b * R->dim);
    return 0;
}

static float dot(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return (float)s;
}

// Rewards of sequences idx[0..n) into out, B at a time.
static int rows_rewards(Rows *R, const float *score, const int *const *seq, const int *const *types, const int *len,
                        const int *idx, int n, float *out, Err *e) {
    float *h = xmalloc(sizeof(float) * (size_t)R->B * R->dim);
    int rc = 0;
    for (int i = 0; i < n && !rc; i += R->B) {
        int k = n - i < R->B ? n - i : R->B;
        rc = rows_hidden(R, seq, types, len, idx + i, k, h, e);
        for (int b = 0; b < k && !rc; b++) out[i + b] = dot(h + (size_t)b * R->dim, score, R->dim);
    }
    free(h);
    return rc;
}

int reward_eval(TrainModel *tm, const float *score, const int *const *seq, const int *const *types, const int *len,
                int n, PoolKind pool, float *out, Err *e) {
    Rows R = {0};
    int B = n < 8 ? n : 8;
    if (n < 1) return 0;
    int rc = rows_init(&R, tm, B, len, n, pool, e);
    int *idx = xmalloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) idx[i] = i;
    if (!rc) rc = rows_rewards(&R, score, seq, types, len, idx, n, out, e);
    free(idx);
    rows_done(&R);
    return rc;
}

// The state of a run.
typedef struct {
    TrainModel *tm;
    float *score;
    const RewardData *d;
    const RewardOpts *o;
    Rows R;
    int dim;
    float *feat;     // linear: (n_seq, dim), the frozen model's hidden states
    float *r_all;    // (n_seq) rewards (evaluation scratch)
    bool *needed;    // (n_seq) sequences of held-out pairs
} Run;

// Held-out loss and accuracy with the current weights.
static int evaluate(Run *u, double *loss, double *acc, Err *e) {
    const RewardData *d = u->d;
    *loss = *acc = NAN;
    if (!d->n_held) return 0;
    int n = 0, *idx = xmalloc(sizeof(int) * (size_t)d->n_seq);
    for (int i = 0; i < d->n_seq; i++)
        if (u->needed[i]) idx[n++] = i;
    int rc = 0;
    float *r = xmalloc(sizeof(float) * (size_t)n);
    if (u->feat)
        for (int i = 0; i < n; i++) r[i] = dot(u->feat + (size_t)idx[i] * u->dim, u->score, u->dim);
    else
        rc = rows_rewards(&u->R, u->score, d->seq, d->types, d->len, idx, n, r, e);
    for (int i = 0; i < n; i++) u->r_all[idx[i]] = r[i];
    free(r);
    free(idx);
    if (rc) return -1;
    float *rc_ = xmalloc(sizeof(float) * (size_t)d->n_held), *rr = xmalloc(sizeof(float) * (size_t)d->n_held);
    for (int i = 0; i < d->n_held; i++) {
        rc_[i] = u->r_all[d->held[i].chosen];
        rr[i] = u->r_all[d->held[i].rejected];
    }
    *loss = reward_bt_loss(rc_, rr, d->held, d->n_held, NULL);
    *acc = reward_accuracy(rc_, rr, d->held, d->n_held);
    free(rc_);
    free(rr);
    return 0;
}

int reward_train(TrainModel *tm, float *score, const RewardData *d, const RewardOpts *o, const RewardHooks *h,
                 RewardResult *res, Err *e) {
    memset(res, 0, sizeof *res);
    res->held_loss = res->held_acc = NAN;
    if (d->n_train < 1) return err_set(e, "no training pairs");
    if (o->batch < 1 || o->opt.steps < 1) return err_set(e, "batch and steps must be positive");
    Run u = {.tm = tm, .score = score, .d = d, .o = o, .dim = tmodel_config(tm)->n_embd};
    int P = o->batch < d->n_train ? o->batch : d->n_train;
    bool full = o->head != REWARD_LINEAR; // the model runs forward and backward at every step
    Lora *L = o->head == REWARD_LORA ? o->lora : NULL;
    if (o->head == REWARD_LORA && !L) return err_set(e, "head=lora without adapters");
    int B = full ? 2 * P : (d->n_seq < 16 ? d->n_seq : 16);
    if (rows_init(&u.R, tm, B, d->len, d->n_seq, d->pool, e)) {
        rows_done(&u.R);
        return -1;
    }
    int dim = u.dim, rc = 0;
    bool stopped = false; // by h->stop before the first step
    size_t np = tmodel_size(tm);
    u.r_all = xcalloc((size_t)d->n_seq, sizeof(float));
    u.needed = xcalloc((size_t)d->n_seq, sizeof(bool));
    for (int i = 0; i < d->n_held; i++) u.needed[d->held[i].chosen] = u.needed[d->held[i].rejected] = true;
    float *hbuf = xmalloc(sizeof(float) * (size_t)(B > 2 * P ? B : 2 * P) * dim) /* a step's 2P rows, or B */, *gscore = xmalloc(sizeof(float) * (size_t)dim);
    float *best_score = xmalloc(sizeof(float) * (size_t)dim), *best_params = NULL, *dh = NULL;
    float *rc_ = xmalloc(sizeof(float) * (size_t)P), *rr = xmalloc(sizeof(float) * (size_t)P);
    float *dd = xmalloc(sizeof(float) * (size_t)P);
    RewardPair *bp = xmalloc(sizeof *bp * (size_t)P);
    int *idx = xmalloc(sizeof(int) * (size_t)(2 * P > d->n_seq ? 2 * P : d->n_seq));
    int *order = xmalloc(sizeof(int) * (size_t)d->n_train);
    AdamW opt_m = {0}, opt_s = {0};
    size_t nt = L ? L->size : np; // what the optimizer trains besides the head
    if (adamw_init(&opt_s, (size_t)dim, e)) rc = -1;
    if (!rc && full) {
        if (adamw_init(&opt_m, nt, e)) rc = -1;
        best_params = malloc(sizeof(float) * nt);
        dh = calloc((size_t)B * u.R.T * dim, sizeof(float));
        if (!rc && (!best_params || !dh)) rc = err_set(e, "out of memory for %zu parameters", np);
    }
    if (!rc && !full) { // the frozen model's hidden states, once
        u.feat = malloc(sizeof(float) * (size_t)d->n_seq * dim);
        if (!u.feat) rc = err_set(e, "out of memory for the hidden states of %d sequences", d->n_seq);
        for (int i = 0; i < d->n_seq && !rc; i += B) {
            if (h && h->stop && h->stop(h->user)) { // Ctrl-C before the first step: nothing trained
                stopped = true;
                break;
            }
            int k = d->n_seq - i < B ? d->n_seq - i : B;
            for (int b = 0; b < k; b++) idx[b] = i + b;
            rc = rows_hidden(&u.R, d->seq, d->types, d->len, idx, k, u.feat + (size_t)i * dim, e);
        }
    }
    Rng rng;
    rng_seed(&rng, o->seed);
    for (int i = 0; i < d->n_train; i++) order[i] = i;
    int cursor = d->n_train; // reshuffle before the first step
    double t0 = clock_now(), loss_sum = 0, best_loss = INFINITY;
    int loss_n = 0, acc_n = 0, acc_right = 0, since_best = 0, step = 0;
    // the start: the untrained head
    double hl, ha;
    if (!rc && !stopped) rc = evaluate(&u, &hl, &ha, e);
    if (!rc && !stopped) {
        memcpy(best_score, score, sizeof(float) * (size_t)dim);
        if (full) memcpy(best_params, L ? L->params : tmodel_params(tm), sizeof(float) * nt);
        best_loss = d->n_held ? hl : INFINITY;
        res->held_loss = hl;
        res->held_acc = ha;
        RewardPoint p0 = {0, o->opt.steps, NAN, hl, ha, NAN, 0, 0, true};
        if (h && h->point && h->point(h->user, &p0)) step = o->opt.steps; // stopped before the start
    }
    for (; !rc && !stopped && step < o->opt.steps; step++) {
        if (step > 0 && h && h->stop && h->stop(h->user)) break; // Ctrl-C between evaluations
        // the step's pairs: the next P of a shuffled order
        for (int i = 0; i < P; i++) {
            if (cursor == d->n_train) {
                for (int j = d->n_train - 1; j > 0; j--) {
                    int k = (int)(rng_next(&rng) % (uint64_t)(j + 1)), t = order[j];
                    order[j] = order[k], order[k] = t;
                }
                cursor = 0;
            }
            bp[i] = d->train[order[cursor++]];
            idx[2 * i] = bp[i].chosen;
            idx[2 * i + 1] = bp[i].rejected;
        }
        if (full) {
            if ((rc = rows_hidden(&u.R, d->seq, d->types, d->len, idx, 2 * P, hbuf, e))) break;
        } else {
            for (int b = 0; b < 2 * P; b++)
                memcpy(hbuf + (size_t)b * dim, u.feat + (size_t)idx[b] * dim, sizeof(float) * dim);
        }
        for (int i = 0; i < P; i++) {
            rc_[i] = dot(hbuf + (size_t)(2 * i) * dim, score, dim);
            rr[i] = dot(hbuf + (size_t)(2 * i + 1) * dim, score, dim);
        }
        double step_loss = reward_bt_loss(rc_, rr, bp, P, dd);
        loss_sum += step_loss;
        loss_n++;
        for (int i = 0; i < P; i++)
            if (!bp[i].tie) acc_n++, acc_right += rc_[i] > rr[i];
        // gradients: d loss / d score = sum dd (h_c - h_r); into the model through h
        memset(gscore, 0, sizeof(float) * (size_t)dim);
        for (int i = 0; i < P; i++) {
            const float *hc = hbuf + (size_t)(2 * i) * dim, *hr = hc + dim;
            for (int j = 0; j < dim; j++) gscore[j] += dd[i] * (hc[j] - hr[j]);
        }
        double norm2 = optim_grad_norm(gscore, (size_t)dim);
        norm2 *= norm2;
        if (full) {
            memset(dh, 0, sizeof(float) * (size_t)B * u.R.T * dim);
            for (int i = 0; i < P; i++) { // d loss / d pooled h = +-dd score, back through the pooling
                pool_backward(&u.R, dh + (size_t)(2 * i) * u.R.T * dim, d->len[idx[2 * i]], dd[i], score);
                pool_backward(&u.R, dh + (size_t)(2 * i + 1) * u.R.T * dim, d->len[idx[2 * i + 1]], -dd[i], score);
            }
            tmodel_zero_grad(tm);
            tmodel_backward_hidden(tm, dh);
            if (L) lora_grads(L, tm);
            double nm = optim_grad_norm(L ? L->grads : tmodel_grads(tm), nt);
            norm2 += nm * nm;
        }
        double norm = sqrt(norm2);
        if ((rc = optim_check_step(step + 1, step_loss, norm, e))) break;
        if (o->opt.clip > 0 && norm > o->opt.clip) { // global-norm clipping over head and model
            float coef = (float)(o->opt.clip / (norm + 1e-6));
            float *g = L ? L->grads : tmodel_grads(tm);
            for (int j = 0; j < dim; j++) gscore[j] *= coef;
            if (full)
                for (size_t j = 0; j < nt; j++) g[j] *= coef;
        }
        float lr = optim_lr(&o->opt, step);
        if (L) {
            adamw_step_vec(&opt_m, L->params, L->grads, true, &o->opt, lr);
            lora_merge(L, tm);
        } else if (full) {
            adamw_step(&opt_m, tm, &o->opt, lr);
        }
        adamw_step_vec(&opt_s, score, gscore, true, &o->opt, lr);
        res->steps = step + 1;
        res->loss = loss_sum / loss_n;
        bool last = step + 1 == o->opt.steps;
        if (!last && (o->eval_every <= 0 || (step + 1) % o->eval_every)) continue;
        if ((rc = evaluate(&u, &hl, &ha, e))) break;
        double el = clock_now() - t0;
        RewardPoint p = {step + 1, o->opt.steps, loss_sum / loss_n, hl, ha,
                         acc_n ? (double)acc_right / acc_n : NAN, el, el > 0 ? (double)(step + 1) * P / el : 0,
                         false};
        loss_sum = 0, loss_n = acc_n = acc_right = 0;
        if (!d->n_held || hl < best_loss - 1e-7) {
            p.best = true;
            best_loss = d->n_held ? hl : INFINITY;
            since_best = 0;
            res->best_step = step + 1;
            res->held_loss = hl;
            res->held_acc = ha;
            memcpy(best_score, score, sizeof(float) * (size_t)dim);
            if (full) memcpy(best_params, L ? L->params : tmodel_params(tm), sizeof(float) * nt);
        } else {
            since_best++;
        }
        res->pairs_s = p.pairs_s;
        bool stop = h && h->point && h->point(h->user, &p);
        if (o->patience > 0 && since_best >= o->patience) {
            res->stopped_early = true;
            stop = true;
        }
        if (stop) break;
    }
    if (!rc && !stopped) { // keep the best weights
        memcpy(score, best_score, sizeof(float) * (size_t)dim);
        if (full) memcpy(L ? L->params : tmodel_params(tm), best_params, sizeof(float) * nt);
        if (L) lora_merge(L, tm);
    }
    adamw_done(&opt_m);
    adamw_done(&opt_s);
    rows_done(&u.R);
    free(u.feat);
    free(u.r_all);
    free(u.needed);
    free(hbuf);
    free(gscore);
    free(best_score);
    free(best_params);
    free(dh);
    free(rc_);
    free(rr);
    free(dd);
    free(bp);
    free(idx);
    free(order);
    return rc;
}
