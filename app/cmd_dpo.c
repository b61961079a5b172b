// cmd_dpo.c - `dpo train`: a decoder tuned on the stored preference pairs with Direct
// Preference Optimisation against its own frozen starting weights (core/train/dpo.h),
// written as an HF causal-LM checkpoint with a model card; the loss curve in the training
// tables of the database (train_runs, train_points).
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fs.h"
#include "base/mem.h"
#include "cmdutil.h"
#include "commands.h"
#include "prefpairs.h"
#include "rankset.h"
#include "train/dpo.h"

typedef struct {
    App *app;
    Db *db;
    int64_t run_id;
    Err log_err;
} DpoLog;

static int on_point(void *user, const DpoPoint *p) {
    DpoLog *L = user;
    if (p->step && L->db && L->run_id > 0 && !L->log_err.msg[0]) {
        DbTrainPoint dp = {p->step, p->loss, p->evaluated && !isnan(p->held.loss) ? p->held.loss : -1, p->lr,
                           p->grad_norm, p->tokens, p->elapsed_s};
        db_train_point(L->db, L->run_id, &dp, &L->log_err);
    }
    if (L->app->headless && (p->evaluated || p->step == 1)) {
        fprintf(stderr, "step %d/%d", p->step, p->steps);
        if (p->step) fprintf(stderr, "  loss %.4f  lr %.3g  norm %.3f", p->loss, p->lr, p->grad_norm);
        if (p->evaluated && !isnan(p->held.loss))
            fprintf(stderr, "  held-out loss %.4f acc %.3f margin %.4f", p->held.loss, p->held.accuracy, p->held.margin);
        if (p->step) fprintf(stderr, "  %.1f pairs/s", p->pairs_s);
        fprintf(stderr, "%s\n", p->best && p->step ? "  (best)" : "");
    }
    return L->app->cancel && *L->app->cancel;
}

static void card_stats(Buf *b, const char *what, const DpoStats *s) {
    if (isnan(s->loss)) return;
    buf_printf(b, "- held-out pairs, %s: loss %.4f, implicit reward accuracy %.4f, reward margin %.4f (chosen "
                  "%.4f, rejected %.4f), log-probability margin %.4f nats\n",
               what, s->loss, s->accuracy, s->margin, s->chosen, s->rejected, s->logp_margin);
}

// The model card: what was tuned, how, and on which data.
static int write_card(const char *out, const Model *base, float beta, bool lora, const Args *a, const RankSet *s,
                      const PairSet *ps, int n_train, int n_held, int held_prompts, const DpoResult *res, Err *e) {
    Buf b = {0};
    buf_printf(&b, "# DPO-tuned model (qkv)\n\n`%s` tuned by `qkv dpo train` with Direct Preference Optimisation on "
                   "human rankings: the loss -log sigmoid(beta ((log p(chosen) - log p_ref(chosen)) - (log "
                   "p(rejected) - log p_ref(rejected)))), log-probabilities of the completion's tokens given the "
                   "prompt, the base model frozen as the reference.\n\n",
               base->path ? base->path : "builtin");
    buf_printf(&b, "- base model and reference: `%s` (%s)\n- beta: %g\n- tuned: %s\n",
               base->path ? base->path : "builtin", base->cfg.a.name, beta,
               lora ? "low-rank adapters on the attention projections (merged; kept apart in adapter_model.safetensors)"
                    : "every weight");
    pref_card_data(&b, a, s, ps, n_train, n_held, ps->n_groups, held_prompts);
    buf_printf(&b, "- steps: %d (weights of step %d kept%s)\n", res->steps, res->best_step,
               res->stopped_early ? ", stopped early" : "");
    card_stats(&b, "base model", &res->start);
    card_stats(&b, "tuned model", &res->held);
    char *path = fs_join(out, "README.md");
    int rc = fs_write_atomic(path, b.data, b.len, e);
    free(path);
    buf_free(&b);
    return rc;
}

static void json_stats(JsonW *w, const char *prefix, const DpoStats *s) {
    char k[64];
#define STAT(name, v)                                   \
    snprintf(k, sizeof k, "%s%s", prefix, name);        \
    jw_knum(w, k, v);
    STAT("loss", s->loss)
    STAT("chosen_reward", s->chosen)
    STAT("rejected_reward", s->rejected)
    STAT("logp_margin", s->logp_margin)
#undef STAT
}

static int dpo_train_cmd(App *app, const Args *a, Out *out) {
    Err e = {{0}};
    const char *outdir = args_opt(a, "out");
    if (!outdir || !*outdir) return out_error(out, "dpo train: out=DIR is required");
    PrefTrainOpts po = {.opt = optim_defaults(), .epochs = 3, .batch = 8, .patience = 0, .threads = app->n_threads,
                        .val = 0.2, .seed = 1};
    const char *head_s = args_opt(a, "head");
    if (!head_s) head_s = "full";
    bool lora_on = !strcmp(head_s, "lora");
    if (!lora_on && strcmp(head_s, "full"))
        return out_error(out, "dpo train: head must be full or lora, not '%.20s'", head_s);
    po.opt.lr = lora_on ? 1e-4f : 1e-5f;
    po.opt.weight_decay = 0;
    if (pref_train_opts(a, "dpo train", &po, out)) return -1;
    double beta = 0.1, lora_alpha = 16;
    long long lora_r = 8;
    if (args_float(a, "beta", 1e-6, 1e6, &beta, &e) < 0 || args_int(a, "r", 1, 4096, &lora_r, &e) < 0 ||
        args_float(a, "alpha", 1e-6, 1e6, &lora_alpha, &e) < 0)
        return out_error(out, "dpo train: %s", e.msg);
    if (!lora_on && (args_opt(a, "r") || args_opt(a, "alpha")))
        return out_error(out, "dpo train: r= and alpha= are the adapters' (head=lora)");
    DpoOpts o = {(float)beta, po.opt, po.batch, po.eval_every, po.patience, po.seed, NULL};
    Lora lora = {0};

    RankSet s = {0};
    if (rankset_command(app, a, "dpo train", &s, out)) return -1;
    Db *db = app_db(app, &e);
    Model *owned = NULL, *base = NULL;
    TrainModel *tm = NULL;
    PairSet ps = {0};
    RewardPair *train = NULL, *held = NULL;
    DpoPair *dtrain = NULL, *dheld = NULL;
    const int **seqp = NULL;
    int *lens = NULL, rc = -1;
    rankset_sort_by_prompt(&s);
    if (!(base = pref_base_model(app, a, "dpo train", &owned, out))) goto done;
    if (!(tm = tmodel_from_model(base, po.threads, &e)) ||
        (lora_on && lora_init(&lora, tm, (int)lora_r, (float)lora_alpha, o.seed, &e))) {
        out_error(out, "dpo train: %s", e.msg);
        goto done;
    }
    if (lora_on) o.lora = &lora;
    int max_len = po.max_len && po.max_len < base->cfg.n_ctx ? po.max_len : base->cfg.n_ctx;
    if (pairset_build(&s, base, max_len, true, false, 0, &ps, &e)) {
        out_error(out, "dpo train: %s", e.msg);
        goto done;
    }
    if (!ps.n_pairs) {
        out_error(out, "dpo train: the %d rankings matched give no preference (every candidate tied)", s.n);
        goto done;
    }
    int n_train = 0, n_held = 0, n_held_g = pairset_split(&s, &ps, po.val, o.seed, &train, &n_train, &held, &n_held);
    if (!n_train) {
        out_error(out, "dpo train: no training pairs are left after holding out val=%g of the prompts", po.val);
        goto done;
    }
    dtrain = xmalloc(sizeof *dtrain * (size_t)n_train);
    dheld = xmalloc(sizeof *dheld * (size_t)(n_held ? n_held : 1));
    for (int i = 0; i < n_train; i++) dtrain[i] = (DpoPair){train[i].chosen, train[i].rejected};
    for (int i = 0; i < n_held; i++) dheld[i] = (DpoPair){held[i].chosen, held[i].rejected};
    int per_epoch = (n_train + o.batch - 1) / o.batch;
    o.opt.steps = po.steps ? po.steps : per_epoch * po.epochs;
    if (!o.eval_every) o.eval_every = per_epoch;
    seqp = xmalloc(sizeof *seqp * (size_t)ps.n_seq);
    lens = xmalloc(sizeof *lens * (size_t)ps.n_seq);
    for (int i = 0; i < ps.n_seq; i++) seqp[i] = ps.seq[i].v, lens[i] = ps.seq[i].n;
    DpoData d = {(const int *const *)seqp, lens, ps.start, ps.n_seq, dtrain, dheld, n_train, n_held, NULL};

    if (fs_mkdir_p(outdir, 0755, &e)) {
        out_error(out, "dpo train: %s", e.msg);
        goto done;
    }
    DpoLog L = {.app = app, .db = db};
    Buf opts = {0};
    options_json(a, "dpo", &opts);
    char out_abs[PATH_MAX], db_abs[PATH_MAX];
    const char *base_path = base->builtin ? "builtin" : base->path;
    if (db) {
        const char *dbp = app->db_path ? app->db_path : "";
        DbTrainRun r = {realpath(outdir, out_abs) ? out_abs : outdir, realpath(dbp, db_abs) ? db_abs : dbp,
                        base->cfg.a.name, (int64_t)tmodel_size(tm), po.threads, opts.data};
        L.run_id = db_train_begin(db, &r, 0, &L.log_err);
    }
    buf_free(&opts);
    if (app->headless)
        fprintf(stderr, "dpo: %s, beta %g, %d pairs (%d training, %d held out), %d steps\n", base->cfg.a.name, beta,
                ps.n_pairs, n_train, n_held, o.opt.steps);
    DpoHooks hooks = {on_point, &L};
    DpoResult res;
    int trc = dpo_train(tm, &d, &o, &hooks, &res, &e);
    if (!trc) {
        const char *tok_dir = !base->builtin && base->path && fs_is_dir(base->path) ? base->path : NULL;
        trc = tmodel_save(tm, outdir, tok_dir, false, &e);
        if (!trc && lora_on) trc = lora_save(&lora, tm, outdir, "CAUSAL_LM", &e);
        if (!trc) trc = write_card(outdir, base, o.beta, lora_on, a, &s, &ps, n_train, n_held, n_held_g, &res, &e);
    }
    if (trc) {
        out_error(out, "dpo train: %s", e.msg);
        goto done;
    }
    if (L.log_err.msg[0]) fprintf(stderr, "warning: the DPO run was not logged: %s\n", L.log_err.msg);
    JsonW *w = &out->w;
    jw_kint(w, "pairs", ps.n_pairs);
    jw_kint(w, "train_pairs", n_train);
    jw_kint(w, "heldout_pairs", n_held);
    jw_knum(w, "heldout_accuracy", res.held.accuracy);
    jw_knum(w, "heldout_margin", res.held.margin);
    jw_kstr(w, "out", outdir);
    json_stats(w, "heldout_", &res.held);
    jw_knum(w, "base_heldout_accuracy", res.start.accuracy);
    jw_knum(w, "base_heldout_margin", res.start.margin);
    json_stats(w, "base_heldout_", &res.start);
    jw_kint(w, "train_run_id", L.run_id > 0 ? L.run_id : 0);
    jw_kstr(w, "base", base_path);
    jw_kstr(w, "head", head_s);
    jw_knum(w, "beta", o.beta);
    pref_data_json(w, &ps, n_held_g);
    jw_kint(w, "steps", res.steps);
    jw_kint(w, "best_step", res.best_step);
    jw_kbool(w, "stopped_early", res.stopped_early);
    jw_knum(w, "loss", res.loss);
    jw_kint(w, "tokens", res.tokens);
    jw_knum(w, "pairs_s", res.pairs_s);
    buf_printf(&out->text, "DPO-tuned %s in %s: %d pairs, %d for training, %d held out", base->cfg.a.name, outdir,
               ps.n_pairs, n_train, n_held);
    if (!isnan(res.held.accuracy))
        buf_printf(&out->text,
                   "; held-out implicit reward accuracy %.3f, margin %.4f at step %d; log-probability margin "
                   "%.4f (base %.4f)",
                   res.held.accuracy, res.held.margin, res.best_step, res.held.logp_margin, res.start.logp_margin);
    buf_putc(&out->text, '\n');
    rc = 0;
done:
    free(seqp);
    free(lens);
    free(dtrain);
    free(dheld);
    free(train);
    free(held);
    pairset_free(&ps);
    lora_done(&lora);
    tmodel_free(tm);
    model_free(owned);
    rankset_free(&s);
    return rc;
}

static int cmd_dpo(App *app, const Args *a, Out *out) {
    const char *sub = args_pos(a, 0)->val;
    if (strcmp(sub, "train")) return out_error(out, "dpo: unknown subcommand '%.20s' (train)", sub);
    if (args_npos(a) != 1) return out_error(out, "dpo train: takes options only (key=value)");
    return dpo_train_cmd(app, a, out);
}

static const char *const k_dpo[] = {"base", "beta", "head", "r", "alpha", "out", "val", "steps", "epochs", "batch", "warmup",
                                    "eval_every", "patience", "threads", "max_len", "lr", "min_lr", "wd", "clip",
                                    "beta1", "beta2", "eps", "seed", "since", "until", "annotator", "model", "text",
                                    NULL};

const Command dpo_commands[] = {
    {"dpo", cmd_dpo, 1, 1, k_dpo,
     "dpo train [since= until= annotator= model= text=] [base=MODEL] [beta=0.1] [head=full|lora r=8 alpha=16] out=DIR "
     "[val=0.2 epochs=3 steps=N batch=8 lr=1e-5 min_lr=lr/10 warmup=0 wd=0 clip=1 eval_every=epoch patience=0 seed=1 max_len=ctx threads=N]",
     "dpo train: tune a decoder (GPT-2 or Llama family; default the session's model) on the preference pairs of the "
     "stored rankings matching the filters (ties dropped) with Direct Preference Optimisation: the loss "
     "-log sigmoid(beta ((lp_c - ref_c) - (lp_r - ref_r))), lp the log-probability of the completion's tokens given "
     "the prompt (prompt and completion tokenized apart; the prompt's start cut first to fit max_len), ref the same "
     "under the frozen base model; AdamW with cosine decay. head=full tunes every weight, head=lora low-rank adapters "
     "of rank r (scale alpha/r) on every attention projection (lr 1e-4; merged into the checkpoint and kept apart in "
     "adapter_model.safetensors + adapter_config.json). A fraction val of the prompts is held out (no prompt on "
     "both sides); every eval_every steps the held-out loss, implicit reward accuracy (beta (lp - ref) higher for "
     "the chosen completion) and margins are computed and the best weights kept (patience: evaluations without a "
     "better loss before stopping, 0 never). Writes DIR as an HF causal-LM checkpoint with README.md, a model card "
     "naming the data; the loss curve goes to train_runs / train_points. JSON: pairs, train_pairs, heldout_pairs, "
     "heldout_accuracy, heldout_margin, out, heldout_loss, heldout_chosen_reward, heldout_rejected_reward, "
     "heldout_logp_margin, base_heldout_accuracy, base_heldout_margin, base_heldout_loss, "
     "base_heldout_chosen_reward, base_heldout_rejected_reward, base_heldout_logp_margin, train_run_id, base, head, beta, "
     "ties, prompts, heldout_prompts, truncated, steps, best_step, stopped_early, loss, tokens, pairs_s.",
     false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
