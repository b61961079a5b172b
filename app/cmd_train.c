// cmd_train.c - the training command: train a decoder on a text file into a checkpoint
// directory (core/train/trainer.h), log its loss curve in the database, report progress on
// stderr when headless.
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fs.h"
#include "base/mem.h"
#include "cmdutil.h"
#include "commands.h"
#include "train/trainer.h"

typedef struct {
    App *app;
    Db *db;
    int64_t run_id;
    const TrainOpts *o;
    Buf options; // the command's options as JSON
    Err log_err; // the first logging failure (training goes on)
    TrainPoint last;
    TrainInfo info;
    double last_val;
} TrainLog;

static int on_begin(void *user, const TrainInfo *info) {
    TrainLog *L = user;
    L->info = *info;
    char out_abs[PATH_MAX], data_abs[PATH_MAX];
    DbTrainRun r = {realpath(L->o->out, out_abs) ? out_abs : L->o->out,
                    realpath(L->o->data, data_abs) ? data_abs : L->o->data, info->cfg.a.name, info->n_params,
                    L->o->threads, L->options.data};
    if (L->db) L->run_id = db_train_begin(L->db, &r, info->start_step, &L->log_err);
    if (L->app->headless)
        fprintf(stderr, "train: %s, %lld parameters, %lld training and %lld held-out tokens%s\n", info->cfg.a.name,
                (long long)info->n_params, (long long)info->train_tokens, (long long)info->val_tokens,
                info->start_step ? " (resumed)" : "");
    if (info->start_step && L->app->headless) fprintf(stderr, "train: resuming after step %d\n", info->start_step);
    return 0;
}

static int on_step(void *user, const TrainPoint *p) {
    TrainLog *L = user;
    L->last = *p;
    if (p->val_loss >= 0) L->last_val = p->val_loss;
    if (L->db && L->run_id > 0 && !L->log_err.msg[0]) {
        DbTrainPoint dp = {p->step, p->loss, p->val_loss, p->lr, p->grad_norm, p->tokens, p->elapsed_s};
        db_train_point(L->db, L->run_id, &dp, &L->log_err);
    }
    if (L->app->headless) {
        fprintf(stderr, "step %d/%d  loss %.4f", p->step, p->steps, p->loss);
        if (p->val_loss >= 0) fprintf(stderr, "  held-out %.4f", p->val_loss);
        fprintf(stderr, "  lr %.3g  norm %.3f  %.0f tok/s  %.0fs left%s\n", p->lr, p->grad_norm, p->tok_s, p->eta_s,
                p->saved ? "  (saved)" : "");
    }
    return L->app->cancel && *L->app->cancel;
}

static int cmd_train(App *app, const Args *a, Out *out) {
    TrainOpts o = train_defaults();
    Err e = {0};
    o.data = args_pos(a, 0)->val;
    o.out = args_opt(a, "out");
    o.from = args_opt(a, "from");
    o.tok_dir = args_opt(a, "tok");
    if (!o.out || !*o.out) return out_error(out, "train: out=DIR is required");
    const char *fam = args_opt(a, "family");
    if (o.from && fam) return out_error(out, "train: from= and family= exclude each other");
    const Family *f = family_find(fam ? fam : "gpt2");
    if (!f || !f->write_config) return out_error(out, "train: unknown family '%.20s'", fam);
    if (newmodel_args(a, f, &o.newp, out)) return -1;
    long long v;
    double x;
    int r;
#define INT_OPT(k, lo, hi, field)                                                         \
    if ((r = args_int(a, k, lo, hi, &v, &e)) < 0) return out_error(out, "%s", e.msg); \
    if (r) field = (int)v;
#define NUM_OPT(k, lo, hi, field)                                                           \
    if ((r = args_float(a, k, lo, hi, &x, &e)) < 0) return out_error(out, "%s", e.msg); \
    if (r) field = (float)x;
    INT_OPT("steps", 1, 10000000, o.opt.steps)
    INT_OPT("batch", 1, 4096, o.batch)
    INT_OPT("seq", 2, 65536, o.seq)
    INT_OPT("accum", 1, 4096, o.accum)
    INT_OPT("warmup", 0, 10000000, o.opt.warmup)
    INT_OPT("eval_every", 0, 10000000, o.eval_every)
    INT_OPT("eval_batches", 1, 10000, o.eval_batches)
    INT_OPT("save_every", 0, 10000000, o.save_every)
    INT_OPT("threads", 0, 1024, o.threads)
    NUM_OPT("lr", 1e-9, 10, o.opt.lr)
    NUM_OPT("wd", 0, 10, o.opt.weight_decay)
    NUM_OPT("clip", 0, 1e6, o.opt.clip)
    NUM_OPT("beta1", 0, 0.999999, o.opt.beta1)
    NUM_OPT("beta2", 0, 0.999999, o.opt.beta2)
#undef INT_OPT
#undef NUM_OPT
    o.opt.min_lr = o.opt.lr / 10;
    if ((r = args_float(a, "min_lr", 0, 10, &x, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) o.opt.min_lr = (float)x;
    if ((r = args_float(a, "val", 0, 0.9, &x, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) o.val_frac = x;
    if ((r = args_int(a, "data_seed", 0, (1ll << 53), &v, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) o.seed = (uint64_t)v;
    if ((r = args_bool(a, "resume", &o.resume, &e)) < 0) return out_error(out, "%s", e.msg);
    if (o.threads <= 0) o.threads = app->n_threads;

    TrainLog L = {.app = app, .o = &o, .last_val = -1};
    options_json(a, "data", &L.options);
    Err dberr = {0};
    L.db = app_db(app, &dberr);
    if (!L.db) snprintf(L.log_err.msg, sizeof L.log_err.msg, "%s", dberr.msg);
    TrainHooks h = {on_begin, on_step, &L};
    TrainInfo info = {0};
    int rc = train_run(&o, &h, &info, &e);
    buf_free(&L.options);
    if (rc) return out_error(out, "%s", e.msg);
    if (L.log_err.msg[0]) fprintf(stderr, "warning: the loss curve was not logged: %s\n", L.log_err.msg);
    JsonW *w = &out->w;
    jw_kstr(w, "out", o.out);
    jw_kint(w, "train_run_id", L.run_id > 0 ? L.run_id : 0);
    jw_kstr(w, "arch", info.cfg.a.name);
    jw_kint(w, "params", info.n_params);
    jw_kint(w, "start_step", info.start_step);
    jw_kint(w, "step", L.last.step ? L.last.step : info.start_step);
    jw_kint(w, "steps", o.opt.steps);
    jw_kint(w, "train_tokens", info.train_tokens);
    jw_kint(w, "val_tokens", info.val_tokens);
    if (L.last.step) {
        jw_knum(w, "loss", L.last.loss);
        jw_knum(w, "tok_s", L.last.tok_s);
    }
    if (L.last_val >= 0) jw_knum(w, "val_loss", L.last_val);
    buf_printf(&out->text, "trained %s (%lld parameters) to step %d of %d in %s", info.cfg.a.name,
               (long long)info.n_params, L.last.step ? L.last.step : info.start_step, o.opt.steps, o.out);
    if (L.last.step) buf_printf(&out->text, ": loss %.4f", L.last.loss);
    if (L.last_val >= 0) buf_printf(&out->text, ", held-out %.4f", L.last_val);
    buf_putc(&out->text, '\n');
    return 0;
}

static const char *const k_train[] = {"out", "from", "family", "tok", "layers", "heads", "kv_heads", "d", "ff", "ctx",
                                      "vocab", "seed", "std", "theta", "tied", "steps", "batch", "seq", "accum",
                                      "warmup", "lr", "min_lr", "wd", "clip", "beta1", "beta2", "eval_every",
                                      "eval_batches", "save_every", "val", "data_seed", "threads", "resume", NULL};

const Command train_commands[] = {
    {"train", cmd_train, 1, 1, k_train,
     "train FILE out=DIR [from=MODEL | family=gpt2|llama|... layers= heads= kv_heads= d= ff= ctx= seed= std= tok=DIR] "
     "[steps=100 batch=8 seq=64 accum=1 lr=3e-4 min_lr=lr/10 warmup=0 wd=0.1 clip=1 eval_every=0 eval_batches=4 "
     "save_every=0 val=0.1 data_seed=1 threads=N resume=true]",
     "Train a decoder (GPT-2 or Llama family) on the text of FILE, tokenized with the model's tokenizer (the last "
     "val fraction held out), from MODEL or from scratch (a new model of the family with new-model's options), with "
     "AdamW, global-norm clipping, warmup and cosine decay to min_lr, and accum micro-batches per step. Writes DIR "
     "as an HF checkpoint (config.json, model.safetensors, tokenizer) every save_every steps and at the end, with "
     "train_state.bin: running the same command again after a kill resumes exactly. The loss curve goes to the "
     "database (train_runs, train_points). JSON: out, train_run_id, arch, params, start_step, step, steps, "
     "train_tokens, val_tokens, loss, val_loss, tok_s.",
     false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
