// trainer.c - a training run over a text file with checkpoints and exact resumption (see
// trainer.h).
#include "train/trainer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "kern/bound.h"
#include "base/fs.h"
#include "base/mem.h"
#include "base/vec.h"
#include "eval/sample.h"
#include "model/model.h"
#include "train/tmodel.h"

TrainOpts train_defaults(void) {
    TrainOpts o = {0};
    o.newp = newmodel_defaults();
    o.batch = 8;
    o.seq = 64;
    o.accum = 1;
    o.opt = optim_defaults();
    o.opt.steps = 100;
    o.eval_every = 0;
    o.eval_batches = 4;
    o.save_every = 0;
    o.val_frac = 0.1;
    o.seed = 1;
    o.resume = true;
    return o;
}

// ---------------------------------------------------------------------------------------
// The state file

#define STATE_FILE "train_state.bin"
static const char STATE_MAGIC[8] = {'Q', 'K', 'V', 'T', 'R', 'A', 'I', 'N'};
enum { STATE_VERSION = 1 };

// What must match for a run to continue, then where it is. Little-endian on the hosts qkv
// targets; written and read by the same code.
typedef struct StateHead {
    char magic[8];
    uint32_t version, pad;
    int64_t n_params, train_tokens;
    int64_t batch, seq, accum, steps;
    uint64_t seed;
    int64_t step, adam_t;
    uint64_t rng[4];
} StateHead;

static int state_write(const char *out, const StateHead *h, const float *params, const AdamW *o, Err *e) {
    char *path = fs_join(out, STATE_FILE);
    AtomicFile af;
    int rc = af_open(&af, path, e);
    if (!rc) {
        size_t n = (size_t)h->n_params;
        bool ok = fwrite(h, sizeof *h, 1, af.f) == 1 && fwrite(params, sizeof(float), n, af.f) == n &&
                  fwrite(o->m, sizeof(float), n, af.f) == n && fwrite(o->v, sizeof(float), n, af.f) == n;
        if (!ok) {
            rc = err_set(e, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
            af_abort(&af);
        } else {
            rc = af_commit(&af, e);
        }
    }
    free(path);
    return rc;
}

// Reads the state of out into h (and, when params is non-NULL, the weights and moments).
// Returns 1 when read, 0 when there is no state file, -1 with e filled.
static int state_read(const char *out, StateHead *h, float *params, AdamW *o, Err *e) {
    char *path = fs_join(out, STATE_FILE);
    FILE *f = fopen(path, "rb");
    int rc = 0;
    if (!f) {
        if (errno != ENOENT) rc = err_set(e, "cannot open '%s': %s", path, strerror(errno));
        free(path);
        return rc;
    }
    if (fread(h, sizeof *h, 1, f) != 1 || memcmp(h->magic, STATE_MAGIC, 8)) {
        rc = err_set(e, "'%s': not a qkv training state", path);
    } else if (h->version != STATE_VERSION) {
        rc = err_set(e, "'%s': training state version %u (this qkv reads %d)", path, h->version, STATE_VERSION);
    } else if (h->n_params < 1 || h->step < 0 || h->step > h->steps) {
        rc = err_set(e, "'%s': corrupt training state", path);
    } else if (params) {
        size_t n = (size_t)h->n_params;
        if (fread(params, sizeof(float), n, f) != n || fread(o->m, sizeof(float), n, f) != n ||
            fread(o->v, sizeof(float), n, f) != n || fgetc(f) != EOF)
            rc = err_set(e, "'%s': truncated or of the wrong size", path);
        else
            rc = 1;
    } else {
        rc = 1;
    }
    fclose(f);
    free(path);
    return rc;
}

// ---------------------------------------------------------------------------------------
// Data

static int load_tokens(const TrainOpts *o, const Model *m, IntVec *ids, Err *e) {
    Buf text = {0};
    if (fs_read_file(o->data, (size_t)1 << 31, &text, e)) return err_prefix(e, "train data");
    int rc = text.len ? tok_encode(m->tok, text.data, text.len, 0, ids, e) : err_set(e, "train data '%s' is empty", o->data);
    buf_free(&text);
    return rc < 0 ? -1 : 0;
}

// B windows of T+1 tokens at random starts of tokens[0, n): inputs and targets (B*T each).
static void sample_batch(Rng *r, const int *tokens, int64_t n, int B, int T, int *in, int *tg) {
    for (int b = 0; b < B; b++) {
        int64_t s = (int64_t)(rng_next(r) % (uint64_t)(n - T));
        memcpy(in + (size_t)b * T, tokens + s, sizeof(int) * (size_t)T);
        memcpy(tg + (size_t)b * T, tokens + s + 1, sizeof(int) * (size_t)T);
    }
}

// One optimizer step (step s, 0-based) over accum micro-batches of B windows of T tokens drawn
// from tokens[0, n): the mean loss in *loss, the gradient norm before clipping in *norm and
// the learning rate in *lr. in, tg: room for B*T ids each.
static int take_step(TrainModel *tm, AdamW *opt, const OptParams *p, int s, int accum, Rng *rng, const int *tokens,
                     int64_t n, int B, int T, int *in, int *tg, double *loss, double *norm, float *lr, Err *e) {
    tmodel_zero_grad(tm);
    *loss = 0;
    for (int k = 0; k < accum; k++) {
        double l;
        sample_batch(rng, tokens, n, B, T, in, tg);
        if (tmodel_forward(tm, in, tg, B, T, &l, e)) return -1;
        tmodel_backward(tm, 1.0f / (float)accum);
        *loss += l / accum;
    }
    *norm = optim_clip(tmodel_grads(tm), tmodel_size(tm), p->clip);
    *lr = optim_lr(p, s);
    adamw_step(opt, tm, p, *lr);
    return 0;
}

// The mean loss over eval_batches batches of consecutive held-out windows (always the same).
static int held_out_loss(TrainModel *tm, const TrainOpts *o, const int *val, int64_t nval, int *in, int *tg,
                         double *loss, Err *e) {
    int B = o->batch, T = o->seq;
    int64_t windows = (nval - 1) / T, w = 0;
    double sum = 0;
    for (int k = 0; k < o->eval_batches; k++) {
        for (int b = 0; b < B; b++, w++) {
            int64_t s = (w % windows) * T;
            memcpy(in + (size_t)b * T, val + s, sizeof(int) * (size_t)T);
            memcpy(tg + (size_t)b * T, val + s + 1, sizeof(int) * (size_t)T);
        }
        double l;
        if (tmodel_forward(tm, in, tg, B, T, &l, e)) return -1;
        sum += l;
    }
    *loss = sum / o->eval_batches;
    return 0;
}

// ---------------------------------------------------------------------------------------
// The run

static int check_opts(const TrainOpts *o, Err *e) {
    if (!o->data || !o->out || !*o->out) return err_set(e, "train: data and out= are required");
    if (o->batch < 1 || o->seq < 2 || o->accum < 1 || o->opt.steps < 1)
        return err_set(e, "train: batch, accum and steps must be at least 1, seq at least 2");
    if (!(o->opt.lr > 0) || o->opt.min_lr < 0 || o->opt.min_lr > o->opt.lr)
        return err_set(e, "train: lr must be positive and min_lr in [0, lr]");
    if (o->opt.warmup < 0 || o->opt.warmup >= o->opt.steps) return err_set(e, "train: warmup must be below steps");
    if (!(o->val_frac >= 0 && o->val_frac < 0.9)) return err_set(e, "train: val must be in [0, 0.9)");
    if (o->eval_batches < 1) return err_set(e, "train: eval_batches must be at least 1");
    return 0;
}

int train_run(const TrainOpts *o, const TrainHooks *h, TrainInfo *info, Err *e) {
    if (check_opts(o, e)) return -1;
    StateHead sh;
    int have = o->resume ? state_read(o->out, &sh, NULL, NULL, e) : 0;
    if (have < 0) return -1;
    if (!have && !o->resume) {
        char *p = fs_join(o->out, STATE_FILE);
        bool exists = fs_is_file(p);
        free(p);
        if (exists) return err_set(e, "train: '%s' holds a training run: resume=true continues it", o->out);
    }
    // the model: the checkpoint's own files when resuming; else the given one, or a new one
    // written to out first
    const char *src = have ? o->out : o->from;
    const char *tok_dir = have ? o->out : o->from ? o->from : o->out;
    if (!src) {
        NewModelParams p = o->newp;
        if (newmodel_write(o->out, &p, o->tok_dir, e)) return -1;
        src = o->out;
    } else if (fs_mkdir_p(o->out, 0755, e)) {
        return -1;
    }
    Model *m = model_open(src, NULL, e);
    if (!m) return -1;
    TrainModel *tm = tmodel_from_model(m, o->threads, e);
    IntVec ids = {0};
    AdamW opt = {0};
    int *in = NULL, *tg = NULL;
    int rc = -1;
    if (!tm || load_tokens(o, m, &ids, e)) goto done;
    int B = o->batch, T = o->seq;
    if (T > m->cfg.n_ctx) {
        err_set(e, "train: seq=%d exceeds the model's context of %d", T, m->cfg.n_ctx);
        goto done;
    }
    int64_t nval = (int64_t)(ids.n * o->val_frac), ntr = ids.n - nval;
    if (ntr < T + 1) {
        err_set(e, "train: '%s' gives %lld training tokens, fewer than seq+1 = %d", o->data, (long long)ntr, T + 1);
        goto done;
    }
    if (nval > 0 && nval < T + 1) nval = 0; // too few to hold a window: no held-out loss
    const int *train = ids.v, *val = ids.v + ntr;
    if (adamw_init(&opt, tmodel_size(tm), e)) goto done;
    in = malloc(sizeof(int) * (size_t)B * T);
    tg = malloc(sizeof(int) * (size_t)B * T);
    if (!in || !tg) {
        err_set(e, "train: out of memory for a batch");
        goto done;
    }
    Rng rng;
    rng_seed(&rng, o->seed);
    int step0 = 0;
    if (have) {
        const char *what = sh.n_params != (int64_t)tmodel_size(tm) ? "the model"
                         : sh.train_tokens != ntr ? "the data"
                         : sh.batch != B ? "batch"
                         : sh.seq != T ? "seq"
                         : sh.accum != o->accum ? "accum"
                         : sh.steps != o->opt.steps ? "steps"
                         : sh.seed != o->seed ? "seed"
                         : NULL;
        if (what) {
            err_set(e, "train: '%s' holds a run with another %s: resume with the same options, or choose another out=",
                    o->out, what);
            goto done;
        }
        if (state_read(o->out, &sh, tmodel_params(tm), &opt, e) != 1) goto done;
        step0 = (int)sh.step;
        opt.t = sh.adam_t;
        memcpy(rng.s, sh.rng, sizeof rng.s);
    }
    TrainInfo inf = {step0, (int64_t)tmodel_size(tm), ntr, nval, m->cfg};
    if (info) *info = inf;
    if (h && h->begin && h->begin(h->user, &inf)) {
        rc = 0;
        goto done;
    }
    double t0 = clock_now();
    int64_t per_step = (int64_t)B * T * o->accum;
    for (int s = step0; s < o->opt.steps; s++) {
        double loss, norm;
        float lr;
        if (take_step(tm, &opt, &o->opt, s, o->accum, &rng, train, ntr, B, T, in, tg, &loss, &norm, &lr, e)) goto done;
        int done_steps = s + 1;
        bool last = done_steps == o->opt.steps;
        TrainPoint p = {done_steps, o->opt.steps, loss, -1, lr, norm, per_step * done_steps, 0, 0, 0, false};
        if (nval && (last || (o->eval_every && done_steps % o->eval_every == 0)))
            if (held_out_loss(tm, o, val, nval, in, tg, &p.val_loss, e)) goto done;
        if (last || (o->save_every && done_steps % o->save_every == 0)) {
            StateHead st = {{0}, STATE_VERSION, 0, (int64_t)tmodel_size(tm), ntr, B, T, o->accum, o->opt.steps,
                            o->seed, done_steps, opt.t, {0}};
            memcpy(st.magic, STATE_MAGIC, 8);
            memcpy(st.rng, rng.s, sizeof st.rng);
            if (tmodel_save(tm, o->out, tok_dir, false, e) || state_write(o->out, &st, tmodel_params(tm), &opt, e))
                goto done;
            p.saved = true;
        }
        p.elapsed_s = clock_now() - t0;
        p.tok_s = p.elapsed_s > 0 ? (double)per_step * (done_steps - step0) / p.elapsed_s : 0;
        p.eta_s = p.elapsed_s / (done_steps - step0) * (o->opt.steps - done_steps);
        if (h && h->step && h->step(h->user, &p)) break;
    }
    rc = 0;
done:
    free(in);
    free(tg);
    adamw_done(&opt);
    iv_free(&ids);
    tmodel_free(tm);
    model_free(m);
    return rc;
}

// ---------------------------------------------------------------------------------------
// The benchmark

// The model's linear layers as sgemm shapes over N rows (the output head included), for
// bound_sgemm_flops_s; returns how many (at most max), *weights their multiply-adds per row.
static int linear_shapes(TrainModel *tm, int N, LinearShape *sh, int max, double *weights) {
    const ModelConfig *c = tmodel_config(tm);
    bool out_in = !tmodel_map(tm)->in_out;
    int n = 0;
    *weights = 0;
    for (int i = 0; i < tmodel_n_tensors(tm) + 1; i++) {
        LinearShape h = {N, c->n_embd, c->n_vocab, true, 1}; // after the tensors: a tied head
        if (i < tmodel_n_tensors(tm)) {
            const WeightSlot *s = &tmodel_tensor(tm, i)->s;
            if (s->kind != WK_LINEAR) continue;
            h = (LinearShape){N, s->in, s->out, s->w == W_OUTPUT || out_in, 1};
        } else if (tmodel_param(tm, W_OUTPUT, -1)) {
            continue;
        }
        *weights += (double)h.in * h.out;
        int k = 0;
        while (k < n && !(sh[k].in == h.in && sh[k].out == h.out && sh[k].out_in == h.out_in)) k++;
        if (k < n) sh[k].calls++;
        else if (n < max) sh[n++] = h;
    }
    return n;
}

int train_bench(const Model *m, int threads, int B, int T, int steps, int reps, TrainBench *r, Err *e) {
    enum { MAX_REPS = TRAIN_BENCH_MAX_REPS };
    if (B < 1 || T < 2 || steps < 1 || reps < 1 || reps > MAX_REPS)
        return err_set(e, "bench-train: batch, steps and reps (up to %d) must be at least 1, seq at least 2",
                       MAX_REPS);
    if (T > m->cfg.n_ctx) return err_set(e, "bench-train: seq=%d exceeds the model's context of %d", T, m->cfg.n_ctx);
    TrainModel *tm = tmodel_from_model(m, threads, e);
    if (!tm) return -1;
    const ModelConfig *c = tmodel_config(tm);
    // random ids as the text: the speed does not depend on them
    int64_t n = (int64_t)B * T * 4 + 1;
    int *tokens = malloc(sizeof(int) * (size_t)n), *in = malloc(sizeof(int) * (size_t)B * T);
    int *tg = malloc(sizeof(int) * (size_t)B * T);
    AdamW opt = {0};
    int rc = -1;
    if (!tokens || !in || !tg) {
        err_set(e, "bench-train: out of memory for a batch of %d x %d", B, T);
        goto done;
    }
    if (adamw_init(&opt, tmodel_size(tm), e)) goto done;
    Rng rng;
    rng_seed(&rng, 1);
    for (int64_t i = 0; i < n; i++) tokens[i] = (int)(rng_next(&rng) % (uint64_t)c->n_vocab);
    OptParams p = optim_defaults();
    p.steps = (reps + 1) * steps;
    LinearShape sh[LINEAR_MAX_SHAPES];
    double weights;
    int nsh = linear_shapes(tm, B * T, sh, LINEAR_MAX_SHAPES, &weights);
    // per token, forward and backward: 2 FLOPs per multiply-add, 3 products (output, input
    // gradient, weight gradient) of every weight; attention's two products (q k^T, p v) over
    // the (T + 1) / 2 keys a query sees on average, also 3 times
    double att = 3.0 * 2.0 * 2.0 * c->n_layer * c->n_head * c->head_dim * (T + 1) / 2.0;
    r->flops_per_token = 6.0 * weights + att;
    r->attention_flops_per_token = att;
    r->threads = tmodel_threads(tm);
    r->reps = reps;
    double loss, norm, sg[MAX_REPS + 1];
    float lr;
    int s = 0;
    if (take_step(tm, &opt, &p, s++, 1, &rng, tokens, n, B, T, in, tg, &loss, &norm, &lr, e)) goto done; // warm-up
    // the bound sampled before each repetition and after the last; each repetition's fraction
    // is held against the mean of the samples around it
    for (int rep = 0; rep <= reps; rep++) {
        if (bound_sgemm_flops_s(tmodel_pool(tm), sh, nsh, 1, &sg[rep], e)) goto done;
        if (rep == reps) break;
        double t0 = clock_now();
        for (int k = 0; k < steps; k++)
            if (take_step(tm, &opt, &p, s++, 1, &rng, tokens, n, B, T, in, tg, &loss, &norm, &lr, e)) goto done;
        r->tok_s_reps[rep] = (double)B * T * steps / (clock_now() - t0);
    }
    double fr[MAX_REPS], ts[MAX_REPS];
    for (int i = 0; i < reps; i++) {
        fr[i] = r->tok_s_reps[i] * r->flops_per_token / (0.5 * (sg[i] + sg[i + 1]));
        r->frac_reps[i] = fr[i];
        ts[i] = r->tok_s_reps[i];
    }
    r->tok_s = bound_median(ts, reps);
    r->flops_s = r->tok_s * r->flops_per_token;
    r->sgemm_flops_s = bound_median(sg, reps + 1);
    r->frac = bound_median(fr, reps);
    r->frac_min = fr[0];
    r->frac_max = fr[reps - 1];
    rc = 0;
done:
    free(tokens);
    free(in);
    free(tg);
    adamw_done(&opt);
    tmodel_free(tm);
    return rc;
}
