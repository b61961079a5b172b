// cmd_dpo.c - `dpo train`: a decoder tuned on the stored preference pairs with Direct
// Preference Optimisation against its own frozen starting weights (core/train/dpo.h),
// written as an HF causal-LM checkpoint with a model card; the loss curve in the training
// tables of the database (train_runs, train_points).
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fs.h"
#include "base/mem.h"
#include "cmdutil.h"
#include "commands.h"
#include "prefpairs.h"
#include "rankset.h"
#include "train/dpo.h"
#include "winrate.h"

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
        fprintf(stderr, "%s\n", p->best && p->step && p->evaluated && !isnan(p->held.loss) ? "  (best)" : "");
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
                      const PairSet *ps, int n_train, int n_held, int held_prompts, const DpoResult *res, int planned,
                      const JudgeResult *jr, const char *judge, Err *e) {
    Buf b = {0};
    buf_printf(&b, "# DPO-tuned model (qkv)\n\n`%s` tuned by `qkv dpo train` with Direct Preference Optimisation on "
                   "human rankings: the loss -log sigmoid(beta ((log p(chosen) - log p_ref(chosen)) - (log "
                   "p(rejected) - log p_ref(rejected)))), log-probabilities of the completion's tokens given the "
                   "prompt, the base model frozen as the reference.\n\n",
               base->path ? base->path : "builtin");
    char arch[64];
    runlog_arch_name(base, arch, sizeof arch); // a quantized session's model says so
    buf_printf(&b, "- base model and reference: `%s` (%s)\n- beta: %g\n- tuned: %s\n",
               base->path ? base->path : "builtin", arch, beta,
               lora ? "low-rank adapters on the attention projections (merged; kept apart in adapter_model.safetensors)"
                    : "every weight");
    pref_card_data(&b, a, s, ps, n_train, n_held, ps->n_groups, held_prompts);
    pref_card_steps(&b, res->steps, res->best_step, res->stopped_early, planned);
    card_stats(&b, "base model", &res->start);
    card_stats(&b, "tuned model", &res->held);
    if (jr)
        buf_printf(&b, "- win rate against the base model as the reward model `%s` judges them: %.4f (%d wins, %d ties, "
                       "%d losses over %d sampled completions of the held-out prompts; mean reward %.4f, base %.4f)\n",
                   judge, jr->win_rate, jr->wins, jr->ties, jr->losses, jr->n, jr->tuned_mean, jr->base_mean);
    if (jr && jr->stopped)
        buf_printf(&b, "- the judging was stopped with Ctrl-C after %d of the %d completions planned: the win rate is "
                       "of those\n", jr->n, jr->planned);
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
    char *tok_dir = NULL; // the checkpoint's tokenizer (tmodel_checkpoint_tokenizer)
    int lock = -1;        // out= held for this run alone (fs_lock_dir)
    bool made = false;    // out= created by this run
    Err e = {{0}};
    const char *outdir = args_opt(a, "out");
    if (!outdir || !*outdir) return out_error(out, "dpo train: out=DIR is required");
    if (tmodel_out_unused(outdir, "dpo train", pref_out_files, &e)) return out_error(out, "dpo train: %s", e.msg);
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
    if (po.max_len == 1) // the prompt keeps a token: every completion would be cut to none, nothing to learn
        return out_error(out, "dpo train: max_len=1 leaves no completion token after the prompt's first: give 2 or more");
    double beta = 0.1, lora_alpha = 16;
    long long lora_r = 8;
    if (args_float(a, "beta", 1e-6, 1e6, &beta, &e) < 0 || args_int(a, "r", 1, 4096, &lora_r, &e) < 0 ||
        args_float(a, "alpha", 1e-6, 1e6, &lora_alpha, &e) < 0)
        return out_error(out, "dpo train: %s", e.msg);
    if (!lora_on && (args_opt(a, "r") || args_opt(a, "alpha")))
        return out_error(out, "dpo train: r= and alpha= are the adapters' (head=lora)");
    // the win rate against the base: judge=DIR samples judge_samples completions per held-out prompt
    const char *judge_dir = args_opt(a, "judge");
    long long judge_n = 4, judge_max = 24, judge_top_k = 0;
    double judge_t = 1.0, judge_top_p = 1.0;
    if (args_int(a, "judge_samples", 1, 1000, &judge_n, &e) < 0 || args_int(a, "judge_max", 1, 1 << 16, &judge_max, &e) < 0 ||
        args_float(a, "judge_temperature", 0, 100, &judge_t, &e) < 0 ||
        args_int(a, "judge_top_k", 0, 1 << 24, &judge_top_k, &e) < 0 || args_float(a, "judge_top_p", 0, 1, &judge_top_p, &e) < 0)
        return out_error(out, "dpo train: %s", e.msg);
    if (!judge_dir && (args_opt(a, "judge_samples") || args_opt(a, "judge_max") || args_opt(a, "judge_temperature") ||
                       args_opt(a, "judge_top_k") || args_opt(a, "judge_top_p")))
        return out_error(out, "dpo train: judge_samples=, judge_max=, judge_temperature=, judge_top_k= and judge_top_p= "
                              "need judge=DIR (a reward model)");
    if (judge_dir && po.val <= 0) return out_error(out, "dpo train: judge= needs held-out prompts (val > 0)");
    if (judge_dir && seed_span("dpo train", po.seed, judge_n, "judge sample", out)) return -1;
    DpoOpts o = {(float)beta, po.opt, po.batch, po.eval_every, po.patience, po.seed, NULL};
    Lora lora = {0};

    RankSet s = {0};
    if (rankset_command(app, a, "dpo train", true, &s, out)) return -1;
    RewardModel *judge = NULL;
    if (judge_dir && !(judge = reward_model_open(judge_dir, po.threads, &e))) {
        rankset_free(&s);
        return out_error(out, "dpo train: judge=%s: %s", judge_dir, e.msg);
    }
    Db *db = app_db(app, &e);
    Model *owned = NULL, *base = NULL, *tuned = NULL;
    JudgeResult jr = {0};
    bool *held_group = NULL;
    const char **jprompts = NULL;
    size_t *jlens = NULL;
    TrainModel *tm = NULL;
    PairSet ps = {0};
    RewardPair *train = NULL, *held = NULL;
    DpoPair *dtrain = NULL, *dheld = NULL;
    const int **seqp = NULL;
    int *lens = NULL, rc = -1;
    rankset_sort_by_prompt(&s);
    if (!(base = pref_base_model(app, a, "dpo train", &owned, out))) goto done;
    if (!base->cfg.a.causal) { // not "bert models are not trainable": reward train trains them
        out_error(out, "dpo train: '%s' is an encoder: DPO tunes a decoder's next-token policy (an encoder can be "
                  "a reward model: reward train base=%s)", base->name, base->name);
        goto done;
    }
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
        out_error(out, "dpo train: the %d rankings matched give no preference (every candidate tied, or the same "
                  "text as the other)", s.n);
        goto done;
    }
    held_group = xcalloc((size_t)ps.n_groups, sizeof *held_group);
    int n_train = 0, n_held = 0,
        n_held_g = pairset_split(&s, &ps, po.val, o.seed, &train, &n_train, &held, &n_held, held_group);
    if (judge && !n_held_g) {
        out_error(out, "dpo train: judge= needs held-out prompts, and the %d prompts give none", ps.n_groups);
        goto done;
    }
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

    if (pref_out_open(outdir, base, "dpo train", &made, &lock, &tok_dir, out)) goto done;
    DpoLog L = {.app = app, .db = db};
    Buf opts = {0};
    options_json(a, "dpo", &opts);
    char out_abs[PATH_MAX], db_abs[PATH_MAX];
    const char *base_path = base->builtin ? "builtin" : base->path;
    char base_arch[64];
    runlog_arch_name(base, base_arch, sizeof base_arch);
    if (db) {
        const char *dbp = app->db_path ? app->db_path : "";
        DbTrainRun r = {realpath(outdir, out_abs) ? out_abs : outdir, realpath(dbp, db_abs) ? db_abs : dbp,
                        base_arch, (int64_t)tmodel_size(tm), po.threads, opts.data};
        L.run_id = db_train_begin(db, &r, 0, &L.log_err);
    }
    buf_free(&opts);
    if (app->headless)
        fprintf(stderr, "dpo: %s, beta %g, %d pairs (%d training, %d held out), %d steps\n", base->cfg.a.name, beta,
                ps.n_pairs, n_train, n_held, o.opt.steps);
    DpoHooks hooks = {on_point, &L};
    DpoResult res;
    int trc = dpo_train(tm, &d, &o, &hooks, &res, &e);
    // stopped with Ctrl-C: the card and JSON say so, and how far it was meant to go
    int planned = !trc && app->cancel && *app->cancel && res.steps < o.opt.steps ? o.opt.steps : 0;
    bool no_step = planned && res.steps == 0; // stopped before its first step: the base, no tuned model
    if (!trc && !no_step) {
        trc = tmodel_save(tm, outdir, tok_dir, false, &e);
        if (!trc && lora_on) trc = lora_save(&lora, tm, outdir, "CAUSAL_LM", &e);
        if (!trc && judge) { // the held-out prompts, each once, sampled from the base and the tuned checkpoint
            jprompts = xmalloc(sizeof *jprompts * (size_t)n_held_g);
            jlens = xmalloc(sizeof *jlens * (size_t)n_held_g);
            int np = 0;
            for (int r = 0, g = -1; r < s.n; r++)
                if (r == 0 || !rankset_same_prompt(&s.r[r - 1], &s.r[r]))
                    if (held_group[++g]) jprompts[np] = s.r[r].prompt, jlens[np++] = s.r[r].prompt_len;
            GenParams gp = app->gen;
            gp.max_tokens = (int)judge_max, gp.s.temperature = (float)judge_t, gp.s.top_k = (int)judge_top_k;
            gp.s.top_p = (float)judge_top_p, gp.s.seed = o.seed, gp.n_alts = 0;
            if (app->headless)
                fprintf(stderr, "judge: %lld completions of each of %d held-out prompts from the base and the tuned "
                                "model\n", judge_n, np);
            trc = !(tuned = app_open_model(outdir, NULL, &e)) ||
                  judge_win_rate(app, base, tuned, judge, jprompts, jlens, np, (int)judge_n, &gp, &jr, &e);
            if (trc) err_prefix(&e, "judge");
        }
        if (!trc)
            trc = write_card(outdir, base, o.beta, lora_on, a, &s, &ps, n_train, n_held, n_held_g, &res, planned,
                             judge ? &jr : NULL, judge ? reward_model_path(judge) : NULL, &e);
    }
    if (db && L.run_id > 0) { // how it ended (a process killed first leaves it running: read as interrupted)
        Err fe = {0};
        if (db_train_finish(db, L.run_id, trc ? "failed" : planned || jr.stopped ? "stopped" : "done", &fe) &&
            !L.log_err.msg[0])
            L.log_err = fe;
    }
    if (trc || no_step) {
        pref_out_discard(outdir, made, tok_dir);
        if (no_step) out_error(out, "dpo train: stopped with Ctrl-C before the first step: no model written");
        else out_error(out, "dpo train: %s", e.msg);
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
    jw_kid(w, "train_run_id", L.run_id);
    jw_kstr(w, "base", base_path);
    jw_kstr(w, "base_arch", base_arch);
    jw_kstr(w, "head", head_s);
    jw_knum(w, "beta", o.beta);
    pref_data_json(w, &ps, n_held_g);
    jw_kint(w, "steps", res.steps);
    jw_kint(w, "best_step", res.best_step);
    jw_kbool(w, "stopped_early", res.stopped_early);
    jw_kbool(w, "stopped", planned > 0);
    jw_knum(w, "loss", res.loss);
    jw_kint(w, "tokens", res.tokens);
    jw_knum(w, "pairs_s", res.pairs_s);
    if (judge) {
        jw_kstr(w, "judge", reward_model_path(judge));
        jw_knum(w, "win_rate", jr.win_rate);
        jw_kbool(w, "judge_stopped", jr.stopped);
        jw_kint(w, "judge_wins", jr.wins);
        jw_kint(w, "judge_ties", jr.ties);
        jw_kint(w, "judge_losses", jr.losses);
        jw_knum(w, "tuned_reward", jr.tuned_mean);
        jw_knum(w, "base_reward", jr.base_mean);
        jw_key(w, "judged");
        jw_arr(w);
        for (int i = 0; i < jr.n; i++) {
            const JudgeSample *js = &jr.s[i];
            jw_obj(w);
            jw_key(w, "prompt");
            jw_strn(w, jprompts[js->prompt], jlens[js->prompt]);
            jw_kint(w, "seed", (long long)js->seed);
            jw_kint(w, "base_run_id", js->base_run);
            jw_kint(w, "tuned_run_id", js->tuned_run);
            jw_knum(w, "base_reward", js->base_reward);
            jw_knum(w, "tuned_reward", js->tuned_reward);
            jw_obj_end(w);
        }
        jw_arr_end(w);
    }
    buf_printf(&out->text, "DPO-tuned %s in %s: %d pairs, %d for training, %d held out", base->cfg.a.name, outdir,
               ps.n_pairs, n_train, n_held);
    if (!isnan(res.held.accuracy))
        buf_printf(&out->text,
                   "; held-out implicit reward accuracy %.3f, margin %.4f at step %d; log-probability margin "
                   "%.4f (base %.4f)",
                   res.held.accuracy, res.held.margin, res.best_step, res.held.logp_margin, res.start.logp_margin);
    if (judge)
        buf_printf(&out->text, "; win rate against the base %.3f over %d samples of %d held-out prompts (mean reward "
                               "%.4f, base %.4f)",
                   jr.win_rate, jr.n, n_held_g, jr.tuned_mean, jr.base_mean);
    if (judge && jr.stopped)
        buf_printf(&out->text, " (judging stopped with Ctrl-C after %d of %d samples)", jr.n, jr.planned);
    buf_putc(&out->text, '\n');
    pref_saved_note(&out->text, res.steps, res.best_step, planned);
    pref_data_note(&out->text, &ps);
    rc = 0;
done:
    if (lock >= 0) close(lock);
    free(tok_dir);
    judge_result_free(&jr);
    free(jprompts);
    free(jlens);
    free(held_group);
    model_free(tuned);
    reward_model_free(judge);
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
                                    "judge", "judge_samples", "judge_max", "judge_temperature", "judge_top_k",
                                    "judge_top_p", NULL};

const Command dpo_commands[] = {
    {"dpo", cmd_dpo, 1, 1, k_dpo,
     "dpo train [since= until= annotator= model= text=] [base=MODEL] [beta=0.1] [head=full|lora r=8 alpha=16] out=DIR "
     "[val=0.2 epochs=3 steps=N batch=8 lr=1e-5 min_lr=lr/10 warmup=0 wd=0 clip=1 beta1=0.9 beta2=0.95 eps=1e-8 eval_every=epoch patience=0 seed=1 max_len=ctx threads=N] [judge=DIR judge_samples=4 judge_max=24 judge_temperature=1 "
     "judge_top_k=0 judge_top_p=1]",
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
     "base_heldout_chosen_reward, base_heldout_rejected_reward, base_heldout_logp_margin, train_run_id, base, base_arch, head, beta, "
     "ties, ties_excluded, identical, prompts, heldout_prompts, truncated, other_vocab, steps, best_step, stopped_early, "
     "stopped (Ctrl-C), loss, tokens, pairs_s. judge=DIR (a "
     "reward model) then samples judge_samples completions of every held-out prompt from the base and from the tuned "
     "model (same seeds seed, seed+1, ... and decoding: judge_max tokens, judge_temperature, judge_top_k, "
     "judge_top_p), logs each as a run of kind judge, scores each (reward_scores) and reports the tuned model's win "
     "rate (ties count half): judge, win_rate, judge_stopped, judge_wins, judge_ties, judge_losses, tuned_reward, base_reward, "
     "judged: [{prompt, seed, base_run_id, tuned_run_id, base_reward, tuned_reward}].",
     false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
