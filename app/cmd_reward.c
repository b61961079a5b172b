// cmd_reward.c - reward models: `reward train` (a scalar head, alone or with the whole
// decoder or encoder, trained on the stored preference pairs with the Bradley–Terry loss, written as an
// HF sequence classifier with a model card) and `reward score` (a text, or a logged run).
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fs.h"
#include "base/mem.h"
#include "base/utf8.h"
#include "base/vec.h"
#include "cmdutil.h"
#include "commands.h"
#include "prefpairs.h"
#include "rankset.h"
#include "reward_model.h"
#include "train/reward.h"

// ---- reward train ------------------------------------------------------------------------

typedef struct {
    App *app;
    Db *db;
    int64_t run_id;
    Err log_err;
} RewardLog;

static int on_point(void *user, const RewardPoint *p) {
    RewardLog *L = user;
    if (L->db && L->run_id > 0 && !L->log_err.msg[0]) {
        DbRewardPoint dp = {p->step, p->loss, p->held_loss, p->held_acc, p->train_acc, p->elapsed_s};
        db_reward_point(L->db, L->run_id, &dp, &L->log_err);
    }
    if (L->app->headless) {
        fprintf(stderr, "step %d/%d", p->step, p->steps);
        if (p->step) fprintf(stderr, "  loss %.4f  train acc %.3f", p->loss, p->train_acc);
        if (!isnan(p->held_loss)) fprintf(stderr, "  held-out loss %.4f acc %.3f", p->held_loss, p->held_acc);
        if (p->step) fprintf(stderr, "  %.1f pairs/s", p->pairs_s);
        // "(best)" only against held-out pairs: with none, every evaluation keeps the latest weights
        fprintf(stderr, "%s\n", p->best && !isnan(p->held_loss) ? "  (best)" : "");
    }
    if (L->app->on_progress) { // the Training view draws the curve as it grows
        char what[48], detail[96];
        snprintf(what, sizeof what, "reward train %lld", (long long)L->run_id);
        snprintf(detail, sizeof detail, "step %d of %d, %.1f pairs/s", p->step, p->steps, p->pairs_s);
        double left = p->step > 0 ? p->elapsed_s / p->step * (p->steps - p->step) : NAN;
        Progress pr = {.what = what, .detail = detail, .id = L->run_id, .done = p->step, .total = p->steps,
                       .elapsed_s = p->elapsed_s, .left_s = left, .finished = p->step >= p->steps, .point = true,
                       .step = p->step, .loss = p->step ? p->loss : NAN, .held_loss = p->held_loss,
                       .held_acc = p->held_acc};
        app_progress(L->app, &pr);
    }
    return L->app->cancel && *L->app->cancel;
}

static int on_stop(void *user) {
    RewardLog *L = user;
    return L->app->cancel && *L->app->cancel;
}

// Score the n held-out pairs with the trained weights and record them (reward_heldout) for the
// Reward panels: -1 with e filled when scoring fails, a failure to record only in log_err.
static int store_heldout(Db *db, int64_t run_id, TrainModel *tm, const float *score, const RankSet *s,
                         const PairSet *ps, const RewardData *d, Err *log_err, Err *e) {
    const RewardPair *held = d->held;
    int n = d->n_held;
    const int **sq = xmalloc(sizeof *sq * (size_t)(2 * n)), **ty = xmalloc(sizeof *ty * (size_t)(2 * n));
    int *ln = xmalloc(sizeof *ln * (size_t)(2 * n));
    float *r = xmalloc(sizeof *r * (size_t)(2 * n));
    for (int i = 0; i < 2 * n; i++) {
        int k = i % 2 ? held[i / 2].rejected : held[i / 2].chosen;
        sq[i] = d->seq[k], ty[i] = d->types ? d->types[k] : NULL, ln[i] = d->len[k];
    }
    int rc = reward_eval(tm, score, (const int *const *)sq, d->types ? (const int *const *)ty : NULL, ln, 2 * n,
                         d->pool, r, e);
    if (!rc) {
        DbRewardPair *p = xcalloc((size_t)n, sizeof *p);
        for (int i = 0; i < n; i++) {
            const RankRow *row = &s->r[ps->row[held[i].chosen]];
            const RankCand *c = &row->c[ps->cand[held[i].chosen]], *j = &row->c[ps->cand[held[i].rejected]];
            p[i] = (DbRewardPair){row->id, ps->cand[held[i].chosen] + 1, ps->cand[held[i].rejected] + 1, held[i].tie,
                                  row->prompt, c->text, j->text, row->prompt_len, c->len, j->len, r[2 * i], r[2 * i + 1]};
        }
        db_reward_heldout(db, run_id, p, n, log_err);
        free(p);
    }
    free(sq);
    free(ty);
    free(ln);
    free(r);
    return rc;
}

// The model card: what the reward model is and which data made it.
static int write_card(const char *out, const Model *base, const char *head, PoolKind pool, const Args *a,
                      const RankSet *s, const PairSet *ps, int n_train, int n_held, int prompts, int held_prompts,
                      const RewardResult *res, int planned, Err *e) {
    Buf b = {0};
    if (base->cfg.a.causal)
        buf_printf(&b, "# Reward model (qkv)\n\nA scalar reward r(prompt + completion): the final hidden state of the "
                       "last token times `score.weight`, as `%s` computes it. Trained by `qkv reward train` with the "
                       "Bradley–Terry loss -log sigmoid(r_chosen - r_rejected) on human rankings. In a batch, pad "
                       "with config.json's `pad_token_id` (the end-of-text token): transformers reads each row at "
                       "its last other token (left-padded rows of a model with learned positions also need "
                       "`position_ids`).\n\n",
                   "AutoModelForSequenceClassification");
    else
        buf_printf(&b, "# Reward model (qkv)\n\nA scalar reward r(prompt, completion) from an encoder: the sentence "
                       "pair `[CLS] prompt [SEP] completion [SEP]` (token types 0, then 1 from the completion), the "
                       "last layer's hidden states pooled (`%s`: %s; `qkv_pooling` in config.json), times "
                       "`classifier.weight` plus `classifier.bias`. Trained by `qkv reward train` with the "
                       "Bradley–Terry loss -log sigmoid(r_chosen - r_rejected) on human rankings.\n\n"
                       "transformers' `BertForSequenceClassification` loads it; its own forward would put BERT's "
                       "pooler (dense + tanh, not trained here and not stored) before the classifier, so compute "
                       "the reward from the encoder's output:\n\n```python\nm = BertForSequenceClassification."
                       "from_pretrained(DIR); tok = AutoTokenizer.from_pretrained(DIR)\nx = tok(prompt, completion, "
                       "return_tensors='pt')\nh = m.bert(**x).last_hidden_state\n%s\nreward = m.classifier(pooled)"
                       "\n```\n\n",
                   pool_name(pool),
                   pool == POOL_CLS ? "the first token's, [CLS]" : "the mean over the tokens, [CLS] and [SEP] included",
                   pool == POOL_CLS ? "pooled = h[:, 0]" : "pooled = h.mean(dim=1)");
    char arch[64];
    runlog_arch_name(base, arch, sizeof arch); // a quantized session's model says so
    buf_printf(&b, "- base model: `%s` (%s)\n- head: %s\n", base->path ? base->path : "builtin", arch, head);
    pref_card_data(&b, a, s, ps, n_train, n_held, prompts, held_prompts);
    pref_card_steps(&b, res->steps, res->best_step, res->stopped_early, planned);
    if (!isnan(res->held_acc)) buf_printf(&b, "- held-out pair accuracy: %.4f (loss %.4f)\n", res->held_acc, res->held_loss);
    char *path = fs_join(out, "README.md");
    int rc = fs_write_atomic(path, b.data, b.len, e);
    free(path);
    buf_free(&b);
    return rc;
}

// What the head reads from base: a decoder's last token (pool= refused); an encoder's [CLS] or
// mean (pool_s, else its sentence-transformers pooling, else [CLS] as BERT's classifiers).
static int base_pooling(const Model *base, const char *pool_s, PoolKind *pool, Out *out) {
    if (base->cfg.a.causal) {
        if (pool_s)
            return out_error(out, "reward train: pool= is for encoders; a %s decoder's reward reads its last token",
                             base->cfg.a.name);
        *pool = POOL_LAST;
        return 0;
    }
    if (pool_s) return 0;
    *pool = POOL_CLS;
    if (base->st_pool[0] && (pool_parse(base->st_pool, pool) || (*pool != POOL_CLS && *pool != POOL_MEAN)))
        return out_error(out, "reward train: '%s' pools by %s (its sentence-transformers Pooling module), which a "
                              "reward model cannot use: give pool=cls or pool=mean",
                         base->path ? base->path : base->name, base->st_pool);
    return 0;
}

static int reward_train_cmd(App *app, const Args *a, Out *out) {
    char *tok_dir = NULL; // the checkpoint's tokenizer (tmodel_checkpoint_tokenizer)
    int lock = -1;        // out= held for this run alone (fs_lock_dir)
    bool made = false;    // out= created by this run
    Err e = {{0}};
    const char *outdir = args_opt(a, "out"), *head_s = args_opt(a, "head"), *ties = args_opt(a, "ties");
    if (!outdir || !*outdir) return out_error(out, "reward train: out=DIR is required");
    if (tmodel_out_unused(outdir, "reward train", pref_out_files, &e)) return out_error(out, "reward train: %s", e.msg);
    if (!head_s) head_s = "linear";
    RewardOpts o = {.head = REWARD_LINEAR, .opt = optim_defaults(), .batch = 8, .eval_every = 0, .patience = 3,
                    .seed = 1};
    if (!strcmp(head_s, "full")) o.head = REWARD_FULL;
    else if (!strcmp(head_s, "lora")) o.head = REWARD_LORA;
    else if (strcmp(head_s, "linear"))
        return out_error(out, "reward train: head must be linear, lora or full, not '%.20s'", head_s);
    if (ties && strcmp(ties, "exclude") && strcmp(ties, "equal"))
        return out_error(out, "reward train: ties must be exclude or equal, not '%.20s'", ties);
    bool ties_equal = ties && !strcmp(ties, "equal");
    PrefTrainOpts po = {.opt = optim_defaults(), .epochs = 20, .batch = 8, .patience = 3,
                        .threads = app->n_threads, .val = 0.2, .seed = 1};
    po.opt.lr = o.head == REWARD_FULL ? 1e-5f : o.head == REWARD_LORA ? 1e-4f : 1e-2f;
    po.opt.weight_decay = 0;
    if (pref_train_opts(a, "reward train", &po, out)) return -1;
    double margin_w = 0;
    if (args_float(a, "margin", 0, 100, &margin_w, &e) < 0) return out_error(out, "reward train: %s", e.msg);
    long long lora_r = 8;
    double lora_alpha = 16;
    if (args_int(a, "r", 1, 4096, &lora_r, &e) < 0 || args_float(a, "alpha", 1e-6, 1e6, &lora_alpha, &e) < 0)
        return out_error(out, "reward train: %s", e.msg);
    if (o.head != REWARD_LORA && (args_opt(a, "r") || args_opt(a, "alpha")))
        return out_error(out, "reward train: r= and alpha= are the adapters' (head=lora)");
    const char *pool_s = args_opt(a, "pool");
    PoolKind pool = POOL_LAST;
    if (pool_s && (pool_parse(pool_s, &pool) || (pool != POOL_CLS && pool != POOL_MEAN)))
        return out_error(out, "reward train: pool must be cls or mean (an encoder's), not '%.20s'", pool_s);
    o.opt = po.opt, o.batch = po.batch, o.eval_every = po.eval_every, o.patience = po.patience, o.seed = po.seed;
    int steps = po.steps, epochs = po.epochs, threads = po.threads, max_len = po.max_len;
    double val = po.val;

    RankSet s = {0};
    if (rankset_command(app, a, "reward train", true, &s, out)) return -1;
    Db *db = app_db(app, &e);
    Model *owned = NULL, *base = NULL;
    TrainModel *tm = NULL;
    PairSet ps = {0};
    RewardPair *train = NULL, *held = NULL;
    float *score = NULL;
    Lora lora = {0};
    int rc = -1;
    rankset_sort_by_prompt(&s);
    if (!(base = pref_base_model(app, a, "reward train", &owned, out))) goto done;
    if (base_pooling(base, pool_s, &pool, out)) goto done;
    if (!(tm = tmodel_body_from_model(base, threads, &e)) ||
        (o.head == REWARD_LORA && lora_init(&lora, tm, (int)lora_r, (float)lora_alpha, o.seed, &e))) {
        out_error(out, "reward train: %s", e.msg);
        goto done;
    }
    o.lora = &lora;
    if (!max_len || max_len > base->cfg.n_ctx) max_len = base->cfg.n_ctx;
    if (pairset_build(&s, base, max_len, false, ties_equal, (float)margin_w, &ps, &e)) {
        out_error(out, "reward train: %s", e.msg);
        goto done;
    }
    if (ps.n_pairs == ps.n_ties) {
        out_error(out, "reward train: the %d rankings matched give no preference: every pair is tied or of the same "
                       "text twice (tied pairs alone teach no order, with ties=equal too: it needs ranked pairs beside them)",
                  s.n);
        goto done;
    }
    int n_train = 0, n_held = 0, n_held_g = pairset_split(&s, &ps, val, o.seed, &train, &n_train, &held, &n_held, NULL);
    if (!n_train) {
        out_error(out, "reward train: no training pairs are left after holding out val=%g of the prompts", val);
        goto done;
    }
    int per_epoch = (n_train + o.batch - 1) / o.batch;
    o.opt.steps = steps ? steps : per_epoch * epochs;
    if (!o.eval_every) o.eval_every = per_epoch;
    const int **seqp = xmalloc(sizeof *seqp * (size_t)ps.n_seq), **typep = xmalloc(sizeof *typep * (size_t)ps.n_seq);
    int *lens = xmalloc(sizeof *lens * (size_t)ps.n_seq);
    for (int i = 0; i < ps.n_seq; i++) seqp[i] = ps.seq[i].v, typep[i] = ps.types[i].v, lens[i] = ps.seq[i].n;
    bool enc = !base->cfg.a.causal;
    RewardData d = {(const int *const *)seqp, enc ? (const int *const *)typep : NULL, lens, pool, ps.n_seq, train,
                    held, n_train, n_held};
    score = xcalloc((size_t)base->cfg.n_embd, sizeof *score);

    RewardLog L = {.app = app, .db = db};
    Buf opts = {0};
    options_json(a, NULL, &opts);
    char out_abs[PATH_MAX];
    const char *base_path = base->builtin ? "builtin" : base->path;
    char base_arch[64];
    runlog_arch_name(base, base_arch, sizeof base_arch);
    if (pref_out_open(outdir, base, "reward train", &made, &lock, &tok_dir, out)) {
        buf_free(&opts);
        free(seqp);
        free(typep);
        free(lens);
        goto done;
    }
    DbRewardRun dr = {realpath(outdir, out_abs) ? out_abs : outdir, base_path, base_arch, head_s, opts.data,
                      ps.n_pairs, n_train, n_held};
    L.run_id = db_reward_begin(db, &dr, &L.log_err);
    buf_free(&opts);
    if (app->headless)
        fprintf(stderr, "reward: %s head on %s%s%s, %d pairs (%d training, %d held out), %d steps\n", head_s,
                base->cfg.a.name, enc ? ", pooling " : "", enc ? pool_name(pool) : "", ps.n_pairs, n_train, n_held,
                o.opt.steps);
    RewardHooks hooks = {on_point, &L, on_stop};
    RewardResult res;
    int trc = reward_train(tm, score, &d, &o, &hooks, &res, &e);
    // stopped with Ctrl-C: the card and JSON say so, and how far it was meant to go
    int planned = !trc && app->cancel && *app->cancel && res.steps < o.opt.steps ? o.opt.steps : 0;
    // the weights kept are the start's (stopped before its first step or its first evaluation, or no
    // step improved on the start's held-out loss): the zero head gives every text the reward 0, no
    // model to write (nor one that reward score and best_of= would take as the latest)
    bool no_step = !trc && res.best_step == 0;
    if (!trc && !no_step && n_held && L.run_id > 0 && !L.log_err.msg[0]) // the held-out pairs as the kept weights score them
        trc = store_heldout(db, L.run_id, tm, score, &s, &ps, &d, &L.log_err, &e);
    free(seqp);
    free(typep);
    free(lens);
    if (!trc && !no_step) {
        trc = tmodel_save_reward(tm, score, enc ? pool_name(pool) : NULL, outdir, tok_dir, &e);
        if (!trc && o.head == REWARD_LORA) trc = lora_save(&lora, tm, outdir, "SEQ_CLS", &e);
        if (!trc)
            trc = write_card(outdir, base, head_s, pool, a, &s, &ps, n_train, n_held, ps.n_groups, n_held_g, &res,
                             planned, &e);
    }
    if (L.run_id > 0 && !L.log_err.msg[0])
        db_reward_finish(db, L.run_id, trc || (no_step && !planned) ? "failed" : planned ? "stopped" : "done",
                         res.best_step, res.held_acc, &L.log_err);
    if (trc || no_step) {
        pref_out_discard(outdir, made, tok_dir);
        if (no_step && planned)
            out_error(out, "reward train: stopped with Ctrl-C %s: no model written (the untrained head gives every "
                           "text the reward 0)", res.steps ? "before the first evaluation" : "before the first step");
        else if (no_step)
            out_error(out, "reward train: no step improved on the untrained head's held-out loss %.4f in %d steps: no "
                           "model written (it would give every text the reward 0); train longer (steps=, epochs=) or "
                           "with another lr=", res.held_loss, res.steps);
        else out_error(out, "reward train: %s", e.msg);
        goto done;
    }
    if (L.log_err.msg[0]) fprintf(stderr, "warning: the reward run was not logged: %s\n", L.log_err.msg);
    JsonW *w = &out->w;
    jw_kint(w, "pairs", ps.n_pairs);
    jw_kint(w, "train_pairs", n_train);
    jw_kint(w, "heldout_pairs", n_held);
    jw_knum(w, "heldout_accuracy", res.held_acc);
    jw_kstr(w, "out", outdir);
    jw_knum(w, "heldout_loss", res.held_loss);
    jw_key(w, "reward_run_id"); // null when the run could not be logged (a locked database: warned)
    if (L.run_id > 0) jw_int(w, L.run_id);
    else jw_null(w);
    jw_kstr(w, "head", head_s);
    jw_kstr(w, "base", base_path);
    jw_kstr(w, "base_arch", base_arch);
    jw_kstr(w, "pool", pool_name(pool));
    pref_data_json(w, &ps, n_held_g);
    jw_kint(w, "steps", res.steps);
    jw_kint(w, "best_step", res.best_step);
    jw_kbool(w, "stopped_early", res.stopped_early);
    jw_kbool(w, "stopped", planned > 0);
    jw_knum(w, "loss", res.loss);
    jw_knum(w, "pairs_s", res.pairs_s);
    buf_printf(&out->text, "reward model (%s head on %s) in %s: %d pairs, %d for training, %d held out", head_s,
               base->cfg.a.name, outdir, ps.n_pairs, n_train, n_held);
    if (!isnan(res.held_acc)) buf_printf(&out->text, "; held-out accuracy %.3f at step %d", res.held_acc, res.best_step);
    buf_putc(&out->text, '\n');
    pref_saved_note(&out->text, res.steps, res.best_step, planned);
    pref_data_note(&out->text, &ps);
    rc = 0;
done:
    if (lock >= 0) close(lock);
    free(tok_dir);
    free(score);
    lora_done(&lora);
    free(train);
    free(held);
    pairset_free(&ps);
    tmodel_free(tm);
    model_free(owned);
    rankset_free(&s);
    return rc;
}

// ---- reward score --------------------------------------------------------------------------

RewardModel *reward_judge_open(App *app, const char *dir, const char *opt, const char *cmd, Out *out) {
    Err e = {{0}};
    char latest[PATH_MAX];
    if (!dir) dir = app->reward_dir;
    if (!dir) {
        Db *db = app_db_read(app, &e);
        int64_t id = 0;
        int n_later = 0;
        int got = db ? db_reward_latest_out(db, latest, sizeof latest, &id, &n_later, &e) : 0;
        if (got < 0) {
            out_error(out, "%s: %s", cmd, e.msg);
            return NULL;
        }
        if (!got) {
            out_error(out, "%s: no reward model: give %s=DIR, set reward DIR, or train one (reward train ... out=DIR)",
                      cmd, opt);
            return NULL;
        }
        if (!fs_is_dir(latest)) {
            out_error(out, "%s: the latest reward run's model '%s' is gone: give %s=DIR or set reward DIR", cmd,
                      latest, opt);
            return NULL;
        }
        if (n_later) // say which: the latest run is not the one used
            buf_printf(&out->text, "note: the reward model of reward run %lld, '%s', the latest finished one (%d later "
                                   "run%s did not finish: see curve kind=reward)\n",
                       (long long)id, latest, n_later, n_later == 1 ? "" : "s");
        dir = latest;
    }
    RewardModel *rm = reward_model_open(dir, app->n_threads, &e);
    if (!rm) out_error(out, "%s: %s", cmd, e.msg);
    return rm;
}

// Each candidate's completion of stored ranking id scored (recorded in reward_scores), the
// predicted order (rewards high to low, equal rewards tied) beside the annotator's.
static int score_ranking(App *app, RewardModel *rm, Db *db, int64_t id, Out *out) {
    Err e = {{0}};
    DbRanking g;
    int got = db_ranking_get(db, id, &g, &e);
    if (got <= 0) return got ? out_error(out, "reward score: %s", e.msg) : out_error(out, "reward score: no ranking %lld", (long long)id);
    double r[DB_RANK_MAX];
    int idx[DB_RANK_MAX], rc = 0;
    Buf text[DB_RANK_MAX] = {{0}}; // the completions: a pair of identical ones is no preference
    for (int i = 0; i < g.k && !rc; i++) {
        DbRun run = {0};
        int gr = db_run_get(db, g.items[i].run_id, &run, &e);
        RewardScore sc;
        if (gr <= 0) rc = out_error(out, "reward score: ranking %lld: %s", (long long)id, gr ? e.msg : "a candidate's run is missing");
        else if (reward_model_score(rm, g.prompt, g.prompt_len, run.output ? run.output : "", run.output ? run.output_len : 0,
                                    &sc, &e))
            rc = out_error(out, "reward score: %s", e.msg);
        else {
            r[i] = sc.reward, idx[i] = i;
            iv_free(&sc.ids);
            if (run.output) buf_put(&text[i], run.output, run.output_len);
            Err le = {{0}};
            if (db_reward_score(db, g.items[i].run_id, reward_model_path(rm), sc.reward, &le))
                fprintf(stderr, "warning: the score of run %lld was not logged: %s\n", (long long)g.items[i].run_id, le.msg);
        }
        db_run_done(&run);
    }
    if (rc) {
        for (int i = 0; i < g.k; i++) buf_free(&text[i]);
        db_ranking_done(&g);
        return -1;
    }
    for (int i = 1; i < g.k; i++) // by reward, high first (insertion sort: k <= 9)
        for (int j = i; j > 0 && r[idx[j]] > r[idx[j - 1]]; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1], idx[j - 1] = t;
        }
    // agreement: of the pairs the annotator did not tie, and whose completions differ (as the
    // exports and trainers count them), the share the rewards order the same way
    int same = 0, pairs = 0;
    for (int i = 0; i < g.k; i++)
        for (int j = i + 1; j < g.k; j++) {
            int ri = g.items[i].rank, rj = g.items[j].rank;
            if (ri == rj || utf8_same_text(text[i].data, text[i].len, text[j].data, text[j].len)) continue;
            pairs++;
            same += (ri < rj) == (r[i] > r[j]) && r[i] != r[j];
        }
    JsonW *w = &out->w;
    jw_kint(w, "ranking_id", id);
    jw_kstr(w, "model", reward_model_path(rm));
    jw_key(w, "candidates");
    jw_arr(w);
    for (int i = 0; i < g.k; i++) {
        jw_obj(w);
        jw_kint(w, "n", g.items[i].n);
        jw_kid(w, "run_id", g.items[i].run_id);
        jw_kint(w, "rank", g.items[i].rank);
        jw_knum(w, "reward", r[i]);
        jw_obj_end(w);
    }
    jw_arr_end(w);
    jw_key(w, "order"); // predicted, as `order` answers it: [[3], [1], [2, 4]]
    jw_arr(w);
    buf_printf(&out->text, "ranking %lld as %s orders it:", (long long)id, reward_model_path(rm));
    for (int i = 0; i < g.k; i++) {
        bool tied = i && r[idx[i]] == r[idx[i - 1]];
        if (!tied) {
            if (i) jw_arr_end(w);
            jw_arr(w);
        }
        jw_int(w, g.items[idx[i]].n);
        buf_printf(&out->text, "%s%d", tied ? "=" : " ", g.items[idx[i]].n);
    }
    if (g.k) jw_arr_end(w);
    jw_arr_end(w);
    jw_kint(w, "pairs", pairs);
    jw_kint(w, "agree", same);
    buf_printf(&out->text, "  (agrees with the annotator on %d of %d pairs)\n", same, pairs);
    for (int i = 0; i < g.k; i++)
        buf_printf(&out->text, "  [%d] rank %d  reward %+.4f\n", g.items[idx[i]].n, g.items[idx[i]].rank, r[idx[i]]);
    for (int i = 0; i < g.k; i++) buf_free(&text[i]);
    db_ranking_done(&g);
    return 0;
}

static int reward_score_cmd(App *app, const Args *a, Out *out) {
    const char *run_s = args_opt(a, "run"), *rank_s = args_opt(a, "ranking");
    int npos = args_npos(a);
    if (run_s && rank_s) return out_error(out, "reward score: run= or ranking=, not both");
    if ((run_s || rank_s) ? npos != 1 : npos != 3)
        return out_error(out, "reward score: usage: reward score \"PROMPT\" \"COMPLETION\" [model=DIR], reward "
                              "score run=ID [model=DIR], or reward score ranking=ID [model=DIR]");
    Err e = {{0}};
    int64_t run_id = 0, rank_id = 0;
    Db *db = NULL;
    if ((run_s && id_arg(run_s, "run", &run_id, out)) || (rank_s && id_arg(rank_s, "ranking", &rank_id, out)) ||
        ((run_s || rank_s) && !(db = need_db_read(app, out))))
        return -1;
    RewardModel *rm = reward_judge_open(app, args_opt(a, "model"), "model", "reward score", out);
    if (!rm) return -1;
    if (rank_id) {
        int rc = score_ranking(app, rm, db, rank_id, out);
        reward_model_free(rm);
        return rc;
    }
    DbRun run = {0};
    const char *p, *c;
    size_t pl, cl;
    int rc = -1;
    if (run_s) {
        int got = db_run_get(db, run_id, &run, &e);
        if (got <= 0) {
            out_error(out, "reward score: %s", got ? e.msg : "no such run");
            goto done;
        }
        p = run.prompt, pl = run.prompt_len, c = run.output ? run.output : "", cl = run.output ? run.output_len : 0;
    } else {
        p = args_pos(a, 1)->val, pl = args_pos(a, 1)->len, c = args_pos(a, 2)->val, cl = args_pos(a, 2)->len;
    }
    RewardScore sc;
    if (reward_model_score(rm, p, pl, c, cl, &sc, &e)) {
        out_error(out, "reward score: %s", e.msg);
        goto done;
    }
    JsonW *w = &out->w;
    jw_knum(w, "reward", sc.reward);
    jw_kstr(w, "model", reward_model_path(rm));
    json_ints(w, "ids", sc.ids.v, sc.ids.n);
    jw_kint(w, "truncated", sc.truncated);
    jw_key(w, "run_id"); // null for a text given on the command line (no run holds it)
    if (!run_id) jw_null(w);
    else {
        jw_int(w, run_id);
        Err le = {{0}};
        if (db_reward_score(db, run_id, reward_model_path(rm), sc.reward, &le))
            fprintf(stderr, "warning: the score was not logged: %s\n", le.msg);
    }
    buf_printf(&out->text, "reward %.6f\n", sc.reward);
    iv_free(&sc.ids);
    rc = 0;
done:
    db_run_done(&run);
    reward_model_free(rm);
    return rc;
}

// train's options (the command's list adds score's run= and ranking=)
static const char *const k_reward[] = {"base", "head", "pool", "r", "alpha", "out", "ties", "margin", "val", "steps", "epochs", "batch",
                                       "warmup", "eval_every", "patience", "threads", "max_len", "lr", "min_lr",
                                       "wd", "clip", "beta1", "beta2", "eps", "seed", "since", "until",
                                       "annotator", "model", "text", NULL};
static const char *const k_reward_all[] = {"base", "head", "pool", "r", "alpha", "out", "ties", "margin", "val", "steps",
                                           "epochs", "batch", "warmup", "eval_every", "patience", "threads", "max_len",
                                           "lr", "min_lr", "wd", "clip", "beta1", "beta2", "eps", "seed", "since",
                                           "until", "annotator", "model", "text", "run", "ranking", NULL};

static int cmd_reward(App *app, const Args *a, Out *out) {
    const char *sub = args_pos(a, 0)->val;
    if (!strcmp(sub, "train")) {
        if (args_npos(a) != 1) return out_error(out, "reward train: takes options only (key=value)");
        return args_only(a, k_reward, "reward train", out) ? -1 : reward_train_cmd(app, a, out);
    }
    // score reads only these (the command's list is train's and score's): train's were ignored
    static const char *const k_score[] = {"model", "run", "ranking", NULL};
    if (!strcmp(sub, "score")) return args_only(a, k_score, "reward score", out) ? -1 : reward_score_cmd(app, a, out);
    return out_error(out, "reward: unknown subcommand '%.20s' (train, score)", sub);
}


const Command reward_commands[] = {
    {"reward", cmd_reward, 1, 3, k_reward_all,
     "reward train [since= until= annotator= model= text=] [base=MODEL] [head=linear|lora|full r=8 alpha=16] [pool=cls|mean] out=DIR [ties=exclude|equal "
     "margin=0 val=0.2 epochs=20 steps=N batch=8 lr= min_lr=lr/10 warmup=0 wd=0 clip=1 beta1=0.9 beta2=0.95 eps=1e-8 "
     "eval_every=epoch patience=3 "
     "seed=1 max_len=ctx threads=N] | reward score \"PROMPT\" \"COMPLETION\" [model=DIR] | reward score run=ID [model=DIR] | "
     "reward score ranking=ID [model=DIR]",
     "reward train: a reward model from the stored rankings matching the filters. Each ranking gives its preference "
     "pairs (C(K,2); ties dropped, or with ties=equal trained to equal rewards); a sequence is the prompt followed by "
     "the completion, tokenized by the base model (default: the session's), cut to its last max_len tokens. The "
     "reward is the final hidden state of the last token times a vector (an encoder, BERT family: the sentence pair "
     "[CLS] prompt [SEP] completion [SEP] with token types 0/1, its hidden states pooled by pool=cls or mean, by "
     "default its sentence-transformers pooling, else cls; the checkpoint is a BertForSequenceClassification with "
     "qkv_pooling in config.json); head=linear trains that vector alone on the "
     "frozen model (lr 1e-2), head=full the whole decoder with it (lr 1e-5), head=lora low-rank adapters of rank r "
     "(scale alpha/r) on every attention projection with it (lr 1e-4; B starts at zero, A uniform in +-1/sqrt(in); "
     "merged into the checkpoint and kept apart in adapter_model.safetensors + adapter_config.json as PEFT names "
     "them), with the Bradley–Terry loss "
     "-log sigmoid(r_chosen - r_rejected - margin x (rank difference)), AdamW, cosine decay. A fraction val of the "
     "prompts is held out (no prompt on both sides); every eval_every steps the held-out loss and pair accuracy are "
     "computed, the best weights kept, and training stops after patience evaluations without a better loss. Writes "
     "DIR as an HF sequence classifier (config.json with num_labels 1, model.safetensors with score.weight, the "
     "tokenizer) and README.md, a model card naming the data. The curve goes to the database (reward_runs, "
     "reward_points), and the held-out pairs with the rewards the kept weights give them to reward_heldout (curve "
     "kind=reward shows them). JSON: pairs, train_pairs, heldout_pairs, heldout_accuracy, heldout_loss, out, reward_run_id, "
     "head, base, base_arch, pool (last, cls or mean), ties, ties_excluded, identical, prompts, heldout_prompts, truncated, other_vocab (completions generated with another vocabulary: their text is tokenized by the base), steps, best_step, stopped_early, stopped (Ctrl-C), loss, pairs_s. "
     "reward score: the reward of PROMPT followed by COMPLETION (or of a logged run's prompt and output, recorded in "
     "reward_scores). JSON: reward, model, ids, truncated, run_id. ranking=ID scores every candidate of a stored "
     "ranking (recorded in reward_scores) and gives the order the rewards predict beside the annotator's: "
     "ranking_id, model, candidates: [{n, run_id, rank, reward}], order (best first, equal rewards tied), pairs "
     "(the annotator's untied pairs of different completions), agree (those the rewards order the same way). The reward model: model=DIR, "
     "else set reward DIR, else the latest finished reward run's directory while it exists.",
     false, false, true},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
