// cmd_exp.c - the prompt-experiment commands: tasks, prompt show, experiment (run, show,
// resume, compare) and experiments. The experiments themselves are app/experiment.c.
//   tasks        tasks: [{name, path, description, layout, n_test, n_pool, n_rationale,
//                multiple_choice, scorer}]
//   prompt show  task, item, input, target, choices, shots, cot, chat, seed, mode, template,
//                exemplars: [{line, input, target}], text, n_tokens, n_shared, shared_bytes
//   experiment   experiment_id, resumed, status, n_items, n_done, total, done_before, done_now,
//                stopped, seconds, tokens_reused, tokens_evaluated, conditions: [{condition,
//                shots, cot, samples, chat, seed, n, correct, accuracy, stderr}]
//   experiment show ID   the experiment's fields (db/export.c) and conditions; with item=K
//                (and condition=C) that item: input, target, answer, correct, detail, runs:
//                [{sample, run_id, answer, n_reused, prompt, text, tokens: [{id, piece, logprob}]}]
//   experiment compare ID A B   experiment_id, a, b (conditions), n, both, a_only, b_only,
//                neither, acc_a, acc_b, diff, se, ci_low, ci_high, p_exact, chi2, p_chi2
//   experiments  experiments: [the fields of each experiment]
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/mem.h"
#include "base/stats.h"
#include "cmdutil.h"
#include "commands.h"
#include "experiment.h"

// ---- options -------------------------------------------------------------------------------

// "0,1,3" into v[cap] within [lo, hi] (cmdutil's int_list reads it); the count, or -1 with
// the message in out.
static int range_list(const char *key, const char *s, int lo, int hi, int *v, int cap, Out *out) {
    IntVec iv = {0};
    int rc = int_list(s, key, hi + 1, &iv, out);
    if (!rc && !iv.n) rc = out_error(out, "%s=: at least one value expected", key);
    if (!rc && iv.n > cap) rc = out_error(out, "%s=%.60s: at most %d values", key, s, cap);
    for (int i = 0; !rc && i < iv.n; i++)
        if (iv.v[i] < lo) rc = out_error(out, "%s=%.60s: %d is below %d", key, s, iv.v[i], lo);
    int n = iv.n;
    if (!rc) memcpy(v, iv.v, sizeof *v * (size_t)n);
    iv_free(&iv);
    return rc ? -1 : n;
}

// "off,on" into v[2] (0, 1); the count, or -1.
static int onoff_list(const char *key, const char *s, int *v, Out *out) {
    int n = 0;
    const char *p = s;
    while (*p) {
        size_t k = strcspn(p, ",");
        int x = -1;
        if ((k == 3 && !strncmp(p, "off", 3)) || (k == 5 && !strncmp(p, "false", 5)) || (k == 1 && *p == '0')) x = 0;
        if ((k == 2 && !strncmp(p, "on", 2)) || (k == 4 && !strncmp(p, "true", 4)) || (k == 1 && *p == '1')) x = 1;
        if (x < 0) return out_error(out, "%s=%.60s: off, on or off,on expected", key, s);
        for (int i = 0; i < n; i++)
            if (v[i] == x) return out_error(out, "%s=%.60s: a value given twice", key, s);
        if (n == 2) return out_error(out, "%s=%.60s: off, on or off,on expected", key, s);
        v[n++] = x;
        p += k + (p[k] == ',');
    }
    if (!n) return out_error(out, "%s=: off, on or off,on expected", key);
    return n;
}

static int seed_list(const char *s, uint64_t *v, int cap, Out *out) {
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(p, &end, 10);
        if (end == p || errno || *p == '-' || x >= 1ull << 53 || (*end && *end != ','))
            return out_error(out, "seeds=%.60s: a list of non-negative integers below 2^53 expected (e.g. seeds=1,2,3)",
                             s);
        if (n == cap) return out_error(out, "seeds=%.60s: at most %d values", s, cap);
        v[n++] = x;
        p = *end ? end + 1 : end;
    }
    if (!n) return out_error(out, "seeds=: at least one seed expected");
    return n;
}

// A value may be given once per condition list; repeated values would run a condition twice.
static int no_repeats(const char *key, const int *v, int n, Out *out) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (v[i] == v[j]) return out_error(out, "%s=: %d given twice", key, v[i]);
    return 0;
}

// The spec of an experiment (or of the one prompt `prompt show` renders) from task name and
// the options. 0, or -1 with the message in out (spec freed).
static int spec_from_args(const Args *a, const char *task, ExpSpec *s, Out *out) {
    exp_spec_init(s);
    Err e = {{0}};
    s->task = xstrdup(task);
    s->task_path = exp_task_find(task, &e);
    int rc = s->task_path ? 0 : out_error(out, "%s", e.msg);
    const char *v;
    s->shots[0] = 0, s->n_shots = 1;
    s->cot[0] = 0, s->n_cot = 1;
    s->samples[0] = 1, s->n_samples = 1;
    s->chat[0] = 0, s->n_chat = 1;
    s->seeds[0] = 1, s->n_seeds = 1;
    if (!rc && (v = args_opt(a, "shots"))) {
        rc = (s->n_shots = range_list("shots", v, 0, EXP_MAX_SHOTS, s->shots, EXP_MAX_LIST, out)) < 0 ? -1 : 0;
        if (!rc) rc = no_repeats("shots", s->shots, s->n_shots, out);
    }
    if (!rc && (v = args_opt(a, "cot"))) rc = (s->n_cot = onoff_list("cot", v, s->cot, out)) < 0 ? -1 : 0;
    if (!rc && (v = args_opt(a, "chat"))) rc = (s->n_chat = onoff_list("chat", v, s->chat, out)) < 0 ? -1 : 0;
    if (!rc && (v = args_opt(a, "sc"))) {
        rc = (s->n_samples = range_list("sc", v, 1, EXP_MAX_SAMPLES, s->samples, EXP_MAX_LIST, out)) < 0 ? -1 : 0;
        if (!rc) rc = no_repeats("sc", s->samples, s->n_samples, out);
    }
    if (!rc && args_opt(a, "seeds") && args_opt(a, "seed")) // one of them was dropped, silently
        rc = out_error(out, "seed= and seeds= name the same setting: give one (seeds=1,2 runs a condition per seed)");
    if (!rc && ((v = args_opt(a, "seeds")) || (v = args_opt(a, "seed")))) {
        rc = (s->n_seeds = seed_list(v, s->seeds, EXP_MAX_LIST, out)) < 0 ? -1 : 0;
        for (int i = 0; !rc && i < s->n_seeds; i++)
            for (int j = 0; !rc && j < i; j++)
                if (s->seeds[i] == s->seeds[j])
                    rc = out_error(out, "seeds=: %llu given twice", (unsigned long long)s->seeds[i]);
    }
    long long n;
    double f;
    bool b;
    int r;
    if (!rc && (r = args_int(a, "limit", 1, 1 << 30, &n, &e)) != 0) rc = r < 0 ? out_error(out, "%s", e.msg) : 0, s->limit = (int)n;
    if (!rc && (r = args_int(a, "max", 1, 1 << 20, &n, &e)) != 0) rc = r < 0 ? out_error(out, "%s", e.msg) : 0, s->max_tokens = (int)n;
    if (!rc && (r = args_int(a, "top_k", 0, 1 << 24, &n, &e)) != 0) rc = r < 0 ? out_error(out, "%s", e.msg) : 0, s->top_k = (int)n;
    if (!rc && (r = args_int(a, "alts", 0, GEN_MAX_ALTS, &n, &e)) != 0) rc = r < 0 ? out_error(out, "%s", e.msg) : 0, s->alts = (int)n;
    if (!rc && (r = args_float(a, "temperature", 0, 100, &f, &e)) != 0) rc = r < 0 ? out_error(out, "%s", e.msg) : 0, s->temperature = f;
    if (!rc && (r = args_float(a, "top_p", 0, 1, &f, &e)) != 0) rc = r < 0 ? out_error(out, "%s", e.msg) : 0, s->top_p = f;
    if (!rc && (r = args_bool(a, "stop", &b, &e)) != 0) rc = r < 0 ? out_error(out, "%s", e.msg) : 0, s->stop_at_eos = b;
    if (!rc && (r = args_bool(a, "reuse", &b, &e)) != 0) rc = r < 0 ? out_error(out, "%s", e.msg) : 0, s->reuse = b;
    if (!rc && (v = args_opt(a, "scorer"))) s->scorer = xstrdup(v);
    if (!rc && (v = args_opt(a, "regex"))) s->regex = xstrdup(v);
    if (!rc && (v = args_opt(a, "pool"))) {
        s->pool_path = exp_task_find(v, &e);
        if (!s->pool_path) rc = out_error(out, "pool=: %s", e.msg);
    }
    for (int i = 0; !rc && i < ST_N; i++) {
        const Arg *arg = NULL;
        for (int k = 0; k < a->n; k++)
            if (a->a[k].key && !strcmp(a->a[k].key, exp_style_keys[i])) arg = &a->a[k];
        if (!arg) continue;
        if (memchr(arg->val, 0, arg->len)) rc = out_error(out, "%s=: a NUL character cannot be part of a prompt", arg->key);
        else s->style[i] = xstrdup(arg->val);
    }
    if (rc) exp_spec_free(s);
    return rc;
}

// The command as typed, rebuilt from its arguments (quoted text with C escapes).
static void command_line(const Args *a, Buf *out) {
    buf_puts(out, a->name);
    for (int i = 0; i < a->n; i++) {
        const Arg *g = &a->a[i];
        buf_putc(out, ' ');
        if (g->key) buf_printf(out, "%s=", g->key);
        bool plain = !g->quoted && g->len && !memchr(g->val, 0, g->len);
        for (size_t k = 0; plain && k < g->len; k++) plain = (unsigned char)g->val[k] > ' ' && !strchr("\"';\\", g->val[k]);
        if (plain) buf_put(out, g->val, g->len);
        else buf_put_quoted(out, g->val, g->len);
    }
}

// ---- the table -----------------------------------------------------------------------------

// The conditions of experiment x with their counts; n_out receives how many. NULL (message in
// out) on failure.
static DbCondStats *cond_stats(Db *db, const DbExperiment *x, int *n_out, Out *out) {
    int cap = x->n_conditions > 0 ? x->n_conditions : 1;
    DbCondStats *s = xcalloc((size_t)cap, sizeof *s);
    Err e = {{0}};
    int n = db_experiment_stats(db, x->id, s, cap, &e);
    if (n < 0) {
        free(s);
        out_error(out, "experiment %lld: %s", (long long)x->id, e.msg);
        return NULL;
    }
    *n_out = n < cap ? n : cap;
    return s;
}

// conditions: [...] into the JSON, the table into the text, the bars into the figure `save`
// exports. 0 or -1.
static int table_out(App *app, Db *db, const DbExperiment *x, Out *out) {
    int n;
    DbCondStats *s = cond_stats(db, x, &n, out);
    if (!s) return -1;
    jw_key(&out->w, "conditions");
    jw_arr(&out->w);
    for (int i = 0; i < n; i++) db_cond_stats_json(&s[i], &out->w);
    jw_arr_end(&out->w);
    bool norm = false;
    for (int i = 0; i < n; i++) norm |= s[i].n_norm > 0;
    Buf *t = &out->text;
    buf_printf(t, "experiment %lld  task %s  model %s  %s  %ld/%ld items\n", (long long)x->id, x->task, x->model_path,
               x->status, x->n_done, (long)x->n_items * x->n_conditions);
    buf_printf(t, "%3s  %-36s %5s %9s %8s  %s\n", "#", "condition", "n", "accuracy", "stderr",
               norm ? "95% interval    acc_norm   stderr" : "95% interval");
    float *v = xcalloc((size_t)n + 1, sizeof *v), *err = xcalloc((size_t)n + 1, sizeof *err),
          *cnt = xcalloc((size_t)n + 1, sizeof *cnt);
    char **labels = xcalloc((size_t)n + 1, sizeof *labels);
    for (int i = 0; i < n; i++) {
        char label[96];
        exp_condition_label(&s[i].c, label, sizeof label);
        double acc = stats_accuracy(s[i].correct, s[i].n), se = stats_stderr(s[i].correct, s[i].n);
        buf_printf(t, "%3d  %-36s %5ld ", s[i].c.idx, label, s[i].n);
        if (acc == acc) buf_printf(t, "%9.3f ", acc);
        else buf_printf(t, "%9s ", "-");
        if (se == se) buf_printf(t, "%8.3f", se);
        else buf_printf(t, "%8s", "-");
        double lo, hi; // Wilson's: 0/n has an interval of some width, as the bars show
        stats_wilson95(s[i].correct, s[i].n, &lo, &hi);
        if (lo == lo) buf_printf(t, "  [%.3f, %.3f]", lo, hi);
        else buf_printf(t, "  %-14s", "-");
        if (s[i].n_norm) {
            double an = stats_accuracy(s[i].correct_norm, s[i].n_norm), sn = stats_stderr(s[i].correct_norm, s[i].n_norm);
            buf_printf(t, "  %8.3f ", an);
            if (sn == sn) buf_printf(t, "%8.3f", sn);
            else buf_printf(t, "%8s", "-"); // one item: no standard error, as the plain column says
        }
        buf_putc(t, '\n');
        labels[i] = xstrdup(label);
        v[i] = (float)acc, err[i] = (float)se, cnt[i] = (float)s[i].n;
    }
    char title[160];
    snprintf(title, sizeof title, "experiment %lld: %s, accuracy", (long long)x->id, x->task);
    app_set_bars(app, v, err, cnt, n, (const char *const *)labels, title);
    for (int i = 0; i < n; i++) free(labels[i]);
    free(labels), free(v), free(err), free(cnt), free(s);
    return 0;
}

// The experiment's row into JSON and text, then its table.
static int experiment_out(App *app, Db *db, int64_t id, Out *out) {
    DbExperiment x;
    Err e = {{0}};
    int found = db_experiment_get(db, id, &x, &e);
    if (found < 0) return out_error(out, "experiment %lld: %s", (long long)id, e.msg);
    if (!found) return out_error(out, "no experiment %lld (see: experiments)", (long long)id);
    db_experiment_json_fields(&x, &out->w);
    int rc = table_out(app, db, &x, out);
    db_experiment_done(&x);
    return rc;
}

// ---- running -------------------------------------------------------------------------------

typedef struct {
    const char *spec, *model_sha256, *model_arch, *task_sha256;
    int64_t found;
} FindOpen;

// An unfinished experiment of the same command, task file and model, converted as the session's
// is (model_arch names a quantize: the same command after another quantize, or none, is another
// experiment, as under another kv; it resumed the first, whose items then came from two models)
static int find_open(void *user, const DbExperiment *x) {
    FindOpen *f = user;
    if (strcmp(x->status, "done") && !strcmp(x->spec, f->spec) && !strcmp(x->task_sha256, f->task_sha256) &&
        !strcmp(x->model_sha256 ? x->model_sha256 : "", f->model_sha256 ? f->model_sha256 : "") &&
        !strcmp(x->model_arch ? x->model_arch : "", f->model_arch ? f->model_arch : "")) {
        f->found = x->id;
        return 1;
    }
    return 0;
}

// Run what is missing of experiment id (new or resumed) and report it. again: whether the same
// command would resume it (not with new=true: that starts another).
static int execute_out(App *app, Db *db, int64_t id, const ExpPlan *plan, bool resumed, bool again, Out *out) {
    Err e = {{0}};
    ExpOutcome o;
    if (app->cancel) *app->cancel = 0;
    int rc = exp_execute(app, db, id, plan, NULL, &o, &e);
    if (rc) return out_error(out, "%s", e.msg);
    bool finished = resumed && !o.done_now && o.done_before == o.total; // nothing was left to run
    jw_kbool(&out->w, "resumed", resumed && !finished);
    jw_kint(&out->w, "total", o.total);
    jw_kint(&out->w, "done_before", o.done_before);
    jw_kint(&out->w, "done_now", o.done_now);
    jw_kbool(&out->w, "stopped", o.stopped);
    jw_knum(&out->w, "seconds", o.seconds);
    jw_kint(&out->w, "tokens_reused", o.tokens_reused);
    jw_kint(&out->w, "tokens_evaluated", o.tokens_evaluated);
    if (finished)
        buf_printf(&out->text, "experiment %lld was finished: nothing to resume (new=true with its command runs it afresh)\n",
                   (long long)id);
    else if (resumed)
        buf_printf(&out->text, "resumed: %ld items were stored, %ld run now\n", o.done_before, o.done_now);
    rc = experiment_out(app, db, id, out);
    if (rc || !o.stopped) return rc;
    // stopped (Ctrl-C): a failure, as the message says, but a script gets the experiment's id
    // and the table of the items done beside it
    out->partial = true;
    return out_error(out, "experiment %lld: stopped after %ld of %ld items (%sexperiment resume %lld, to finish it)",
                     (long long)id, o.done_before + o.done_now, o.total, again ? "run the same command again, or " : "",
                     (long long)id);
}

static int exp_run(App *app, const Args *a, Out *out) {
    ExpSpec spec;
    if (spec_from_args(a, args_pos(a, 0)->val, &spec, out)) return -1;
    Err e = {{0}};
    bool fresh = false;
    if (args_bool(a, "new", &fresh, &e) < 0) {
        exp_spec_free(&spec);
        return out_error(out, "%s", e.msg);
    }
    Db *db = need_db(app, out);
    if (!db) {
        exp_spec_free(&spec);
        return -1;
    }
    Buf sj = {0}, cmd = {0};
    // the cache it runs with belongs to the experiment: the same command under another kv is
    // another experiment, and a resume runs with this one whatever the session's
    snprintf(spec.kv, sizeof spec.kv, "%s", runlog_kv_name(app_kv(app, app->model)));
    exp_spec_json(&spec, &sj);
    command_line(a, &cmd);
    ExpPlan plan;
    RunRecord rr;
    int rc = exp_plan_build(app, &spec, &plan, &e) || exp_preflight(app, &plan, &e) ||
             runlog_model(&rr, db, app->model, &e);
    if (rc) rc = out_error(out, "experiment: %s", e.msg);
    int64_t id = 0;
    bool resumed = false;
    if (!rc && !fresh) { // the same experiment left unfinished: finish it
        FindOpen f = {sj.data, rr.run.model_sha256, rr.run.model_arch, plan.task->sha256, 0};
        if (db_experiments_each(db, NULL, 0, true, find_open, &f, &e) < 0) rc = out_error(out, "experiment: %s", e.msg);
        id = f.found, resumed = id > 0;
    }
    if (!rc && !id) {
        DbExperiment x = {0};
        x.task = plan.task->name, x.task_path = plan.spec.task_path, x.task_sha256 = plan.task->sha256;
        x.model_path = rr.run.model_path, x.model_arch = rr.run.model_arch, x.model_sha256 = rr.run.model_sha256;
        x.annotator = app->annotator, x.command = cmd.data, x.spec = sj.data, x.n_items = plan.n_items;
        id = db_experiment_insert(db, &x, plan.conds, plan.n_conds, &e);
        if (id < 0) rc = out_error(out, "experiment: %s", e.msg);
    }
    if (!rc) rc = execute_out(app, db, id, &plan, resumed, !fresh, out);
    exp_plan_done(&plan);
    buf_free(&sj), buf_free(&cmd);
    return rc;
}

// Whether the session's model is the one an experiment ran on (its model_path as runs record it).
static bool is_session_model(App *app, Db *db, const DbExperiment *x) {
    Err e = {{0}};
    RunRecord rr;
    return app->model && !runlog_model(&rr, db, app->model, &e) && !strcmp(rr.run.model_path, x->model_path);
}

// The model an experiment ran on must be the current one: load it when it is not (by its path:
// "builtin" is the built-in model, not the default one, which it loaded and then found changed),
// converted as it ran (quantize, or none: its model_arch says), as replay does; the session keeps
// it after, and the text says so when it changed.
static int ensure_model(App *app, Db *db, const DbExperiment *x, Out *out) {
    Err e = {{0}};
    RunRecord rr;
    if (!is_session_model(app, db, x) && app_load_model(app, x->model_path, NULL, &e))
        return out_error(out, "experiment %lld ran on '%s', which cannot be loaded: %s", (long long)x->id, x->model_path,
                         e.msg);
    char before[sizeof rr.arch];
    runlog_arch_name(app->model, before, sizeof before);
    bool was = strcmp(before, x->model_arch ? x->model_arch : "") != 0;
    // converted first: the built-in model's fingerprint is of its weights as converted
    if (app_quantize_as(app, x->model_arch, &e)) return out_error(out, "experiment %lld: %s", (long long)x->id, e.msg);
    if (runlog_model(&rr, db, app->model, &e)) return out_error(out, "%s", e.msg);
    if (strcmp(rr.run.model_sha256 ? rr.run.model_sha256 : "", x->model_sha256 ? x->model_sha256 : ""))
        return out_error(out, "experiment %lld: the model at '%s' has changed since it ran (sha256 %.12s, now %.12s)",
                         (long long)x->id, x->model_path, x->model_sha256 ? x->model_sha256 : "none",
                         rr.run.model_sha256 ? rr.run.model_sha256 : "none");
    if (was)
        buf_printf(&out->text, "the session's model is now %s, as experiment %lld ran\n", x->model_arch, (long long)x->id);
    return 0;
}

static int exp_resume(App *app, Db *db, int64_t id, Out *out) {
    DbExperiment x;
    Err e = {{0}};
    int found = db_experiment_get(db, id, &x, &e);
    if (found <= 0) return found < 0 ? out_error(out, "%s", e.msg) : out_error(out, "no experiment %lld", (long long)id);
    ExpSpec spec;
    ExpPlan plan = {0};
    int rc = ensure_model(app, db, &x, out);
    if (!rc && exp_spec_parse(x.spec, &spec, &e)) rc = out_error(out, "experiment %lld: %s", (long long)id, e.msg);
    if (!rc && exp_plan_build(app, &spec, &plan, &e)) rc = out_error(out, "experiment %lld: %s", (long long)id, e.msg);
    if (!rc && strcmp(plan.task->sha256, x.task_sha256))
        rc = out_error(out, "experiment %lld: the task file '%s' has changed since it ran", (long long)id, x.task_path);
    if (!rc && (plan.n_conds != x.n_conditions || plan.n_items != x.n_items))
        rc = out_error(out, "experiment %lld: its stored spec no longer gives its conditions and items", (long long)id);
    // its stored items were scored under its rules: the missing ones are not scored under others
    if (!rc && plan.spec.rules != EXP_SCORING_RULES && x.n_done < (long)x.n_items * x.n_conditions)
        rc = out_error(out,
                       "experiment %lld was started under qkv's scoring rules %d and this qkv scores by rules %d "
                       "(how an answer is read from an output: the README's Prompt experiments): its %ld missing "
                       "items would be scored unlike its %ld stored ones; run its command again with new=true to "
                       "start it afresh",
                       (long long)id, plan.spec.rules, EXP_SCORING_RULES, (long)x.n_items * x.n_conditions - x.n_done,
                       x.n_done);
    if (!rc) rc = execute_out(app, db, id, &plan, true, true, out);
    exp_plan_done(&plan);
    db_experiment_done(&x);
    return rc;
}

// ---- one item ------------------------------------------------------------------------------

typedef struct {
    App *app;
    Db *db;
    Out *out;
    int n;
    Err *e;
    const Tokenizer *tok; // the experiment's model's; NULL: it cannot be opened (pieces null)
} ItemShow;

static int show_item(void *user, const DbExpItem *it) {
    ItemShow *s = user;
    JsonW *w = &s->out->w;
    Buf *t = &s->out->text;
    s->n++; // (condition, item) names one row
    jw_kint(w, "condition", it->condition);
    jw_kint(w, "item", it->item);
    jw_kstr(w, "input", it->input);
    jw_kstr(w, "target", it->target);
    jw_kstr(w, "answer", it->answer);
    jw_kbool(w, "correct", it->correct);
    jw_key(w, "correct_norm");
    if (it->correct_norm < 0) jw_null(w);
    else jw_bool(w, it->correct_norm);
    jw_key(w, "detail");
    if (it->detail) jw_raw(w, it->detail);
    else jw_null(w);
    buf_printf(t, "condition %d, item %d: %s\n", it->condition, it->item, it->correct ? "right" : "wrong");
    buf_puts(t, "input:  ");
    text_line(t, it->input, strlen(it->input), 2000);
    buf_puts(t, "\ntarget: ");
    text_line(t, it->target, strlen(it->target), 2000);
    buf_puts(t, "\nanswer: ");
    text_line(t, it->answer, strlen(it->answer), 2000);
    buf_putc(t, '\n');
    jw_key(w, "runs");
    jw_arr(w);
    int rc = 0;
    for (int k = 0; k < it->n_runs && !rc; k++) {
        DbRun r;
        int found = db_run_get(s->db, it->runs[k].run_id, &r, s->e);
        if (found <= 0) {
            rc = found < 0 ? -1 : err_set(s->e, "run %lld is missing", (long long)it->runs[k].run_id);
            break;
        }
        jw_obj(w);
        jw_kint(w, "sample", it->runs[k].sample);
        jw_kint(w, "run_id", it->runs[k].run_id);
        jw_kstr(w, "answer", it->runs[k].answer);
        jw_kint(w, "n_reused", it->runs[k].n_reused);
        jw_key(w, "prompt");
        jw_strn(w, r.prompt, r.prompt_len);
        jw_key(w, "text");
        jw_strn(w, r.output, r.output_len);
        jw_kstr(w, "mode", r.mode);
        jw_kstr(w, "template", r.template_name);
        // the generated tokens with their log-probabilities
        Json *ids = json_parse(r.ids, strlen(r.ids), NULL), *lps = json_parse(r.logprobs, strlen(r.logprobs), NULL);
        jw_key(w, "tokens");
        jw_arr(w);
        Buf piece = {0};
        for (size_t i = 0; ids && lps && ids->type == JSON_ARR && i < ids->len && i < lps->len; i++) {
            int id = (int)ids->items[i].num;
            jw_obj(w);
            jw_kint(w, "id", id);
            jw_key(w, "piece");
            if (s->tok) {
                token_piece(s->tok, id, &piece);
                jw_strn(w, piece.data ? piece.data : "", piece.len);
            } else {
                jw_null(w);
            }
            jw_knum(w, "logprob", lps->items[i].num);
            jw_obj_end(w);
        }
        jw_arr_end(w);
        buf_free(&piece);
        json_free(ids), json_free(lps);
        jw_obj_end(w);
        buf_printf(t, "run %lld (sample %d):\n--- prompt ---\n", (long long)it->runs[k].run_id, it->runs[k].sample);
        put_text(t, r.prompt, r.prompt_len);
        buf_puts(t, "\n--- output ---\n");
        put_text(t, r.output, r.output_len);
        buf_puts(t, "\n");
        db_run_done(&r);
    }
    jw_arr_end(w);
    return rc;
}

static int exp_show(App *app, Db *db, int64_t id, const Args *a, Out *out) {
    Err e = {{0}};
    long long item = -1, cond = -1;
    int ri = args_int(a, "item", 0, 1 << 30, &item, &e), rc = args_int(a, "condition", 0, 1 << 30, &cond, &e);
    if (ri < 0 || rc < 0) return out_error(out, "%s", e.msg);
    if (!ri && rc) return out_error(out, "experiment show: condition= goes with item=K");
    if (!ri) return experiment_out(app, db, id, out);
    DbExperiment x;
    int found = db_experiment_get(db, id, &x, &e);
    if (found <= 0) return found < 0 ? out_error(out, "%s", e.msg) : out_error(out, "no experiment %lld", (long long)id);
    int n_cond = x.n_conditions, n_items = x.n_items;
    if (cond >= n_cond || item >= n_items) { // not "no stored item 0 under condition 99"
        db_experiment_done(&x);
        if (cond >= n_cond)
            return out_error(out, "experiment %lld has conditions 0 to %d: no condition %lld", (long long)id,
                             n_cond - 1, cond);
        return out_error(out, "experiment %lld has items 0 to %d: no item %lld", (long long)id, n_items - 1, item);
    }
    // its tokens named by its own model's tokenizer (the session's model may be another: ids named
    // with a foreign vocabulary), opened beside the session's when that is another
    Model *own = NULL;
    Err oe = {{0}};
    const Tokenizer *tok = NULL;
    if (is_session_model(app, db, &x)) tok = app->model->tok;
    else if ((own = app_open_model(x.model_path, NULL, &oe))) tok = own->tok;
    jw_kint(&out->w, "experiment_id", id);
    ItemShow s = {app, db, out, 0, &e, tok};
    int r = db_experiment_items_each(db, id, cond < 0 ? 0 : (int)cond, (int)item, show_item, &s, &e);
    if (!r && s.n && !tok)
        buf_printf(&out->text, "(token pieces null: the experiment's model '%s' cannot be opened: %s)\n", x.model_path,
                   oe.msg);
    model_free(own);
    db_experiment_done(&x);
    if (r) return out_error(out, "experiment %lld: %s", (long long)id, e.msg);
    if (!s.n)
        return out_error(out, "experiment %lld has no stored item %lld under condition %lld", (long long)id, item,
                         cond < 0 ? 0 : cond);
    return 0;
}

// ---- the paired comparison -----------------------------------------------------------------

typedef struct {
    signed char *right; // per item: -1 not stored, 0 wrong, 1 right
    int n;
} Outcomes;

static int collect(void *user, const DbExpItem *it) {
    Outcomes *o = user;
    if (it->item >= 0 && it->item < o->n) o->right[it->item] = it->correct;
    return 0;
}

static int exp_compare(App *app, Db *db, int64_t id, const Args *a, Out *out) {
    (void)app;
    if (args_npos(a) != 4) return out_error(out, "usage: experiment compare ID A B (A, B: condition numbers)");
    long long ab[2];
    for (int i = 0; i < 2; i++) {
        const char *v = args_pos(a, 2 + i)->val;
        char *end;
        errno = 0;
        ab[i] = strtoll(v, &end, 10);
        if (!*v || *end || errno || ab[i] < 0) return out_error(out, "experiment compare: '%.40s' is not a condition number", v);
    }
    DbExperiment x;
    Err e = {{0}};
    int found = db_experiment_get(db, id, &x, &e);
    if (found <= 0) return found < 0 ? out_error(out, "%s", e.msg) : out_error(out, "no experiment %lld", (long long)id);
    int n;
    DbCondStats *s = cond_stats(db, &x, &n, out);
    int rc = s ? 0 : -1;
    for (int i = 0; !rc && i < 2; i++)
        if (ab[i] >= n)
            rc = out_error(out, "experiment %lld has conditions 0 to %d: no condition %lld", (long long)id, n - 1, ab[i]);
    if (!rc && ab[0] == ab[1]) rc = out_error(out, "experiment compare: a condition compared with itself");
    Outcomes o[2] = {{0}};
    for (int i = 0; !rc && i < 2; i++) {
        o[i].n = x.n_items;
        o[i].right = xmalloc((size_t)x.n_items + 1);
        memset(o[i].right, -1, (size_t)x.n_items + 1);
        if (db_experiment_items_each(db, id, (int)ab[i], -1, collect, &o[i], &e)) rc = out_error(out, "%s", e.msg);
    }
    long c[2][2] = {{0}};
    for (int k = 0; !rc && k < x.n_items; k++)
        if (o[0].right[k] >= 0 && o[1].right[k] >= 0) c[o[0].right[k]][o[1].right[k]]++;
    if (!rc && !(c[0][0] + c[0][1] + c[1][0] + c[1][1])) // nothing to compare: no NaN table, no p = 1
        rc = out_error(out, "experiment compare: no item of experiment %lld is scored under both conditions %lld and "
                       "%lld yet (resume it: experiment ... with the same options)", (long long)id, ab[0], ab[1]);
    if (!rc) {
        Paired p;
        stats_paired(c[1][1], c[1][0], c[0][1], c[0][0], &p);
        JsonW *w = &out->w;
        jw_kint(w, "experiment_id", id);
        jw_key(w, "a");
        db_cond_stats_json(&s[ab[0]], w);
        jw_key(w, "b");
        db_cond_stats_json(&s[ab[1]], w);
        jw_kint(w, "n", p.n);
        jw_kint(w, "both", p.both);
        jw_kint(w, "a_only", p.a_only);
        jw_kint(w, "b_only", p.b_only);
        jw_kint(w, "neither", p.neither);
        double nums[] = {p.acc_a, p.acc_b, p.diff, p.se, p.ci_low, p.ci_high, p.p_exact, p.chi2, p.p_chi2};
        const char *keys[] = {"acc_a", "acc_b", "diff", "se", "ci_low", "ci_high", "p_exact", "chi2", "p_chi2"};
        for (int i = 0; i < 9; i++) {
            jw_key(w, keys[i]);
            if (nums[i] == nums[i]) jw_num(w, nums[i]);
            else jw_null(w);
        }
        char la[96], lb[96];
        exp_condition_label(&s[ab[0]].c, la, sizeof la);
        exp_condition_label(&s[ab[1]].c, lb, sizeof lb);
        Buf *t = &out->text;
        buf_printf(t, "experiment %lld, %ld items scored under both\n", (long long)id, p.n);
        buf_printf(t, "A #%lld %s: accuracy %.3f\nB #%lld %s: accuracy %.3f\n", ab[0], la, p.acc_a, ab[1], lb, p.acc_b);
        buf_printf(t, "both right %ld, only A %ld, only B %ld, neither %ld\n", p.both, p.a_only, p.b_only, p.neither);
        buf_printf(t, "B - A = %+.3f, 95%% CI [%+.3f, %+.3f]; McNemar exact p = %.4g, chi2 = %.3f (p = %.4g)\n", p.diff,
                   p.ci_low, p.ci_high, p.p_exact, p.chi2, p.p_chi2);
    }
    free(o[0].right), free(o[1].right), free(s);
    db_experiment_done(&x);
    return rc;
}

// ---- the commands --------------------------------------------------------------------------

// An experiment's prompt-style options, and a run's options.
#define STYLE_KEYS "description", "prefix", "delimiter", "answer_prefix", "separator", "trigger", "answer_phrase"
#define EXP_RUN_KEYS                                                                                          \
    "shots", "cot", "sc", "chat", "seeds", "seed", "limit", "pool", "scorer", "regex", "temperature", "top_k", \
        "top_p", "max", "alts", "stop", "reuse", "new", STYLE_KEYS

static int cmd_experiment(App *app, const Args *a, Out *out) {
    const char *first = args_pos(a, 0)->val;
    bool show = !strcmp(first, "show"), resume = !strcmp(first, "resume"), compare = !strcmp(first, "compare");
    // each form takes its own options (the command's list is their union)
    static const char *const k_show[] = {"item", "condition", NULL}, *const k_run[] = {EXP_RUN_KEYS, NULL};
    if (show || resume || compare) {
        char name[24];
        snprintf(name, sizeof name, "experiment %s", first);
        if (lang_check_keys(name, show ? k_show : NULL, a, out)) return -1;
    } else if (lang_check_keys("experiment", k_run, a, out)) {
        return -1;
    }
    if (!show && !resume && !compare) {
        if (args_npos(a) > 1) return out_error(out, "experiment TASK takes options (shots=0,1,3 ...), not '%.40s'", args_pos(a, 1)->val);
        return exp_run(app, a, out);
    }
    if (args_npos(a) < 2) return out_error(out, "usage: experiment %s ID%s", first, compare ? " A B" : "");
    if (!compare && args_npos(a) > 2) return out_error(out, "experiment %s takes one id", first);
    int64_t id;
    if (id_arg(args_pos(a, 1)->val, "experiment", &id, out)) return -1;
    Db *db = need_db_read(app, out);
    if (!db) return -1;
    if (show) return exp_show(app, db, id, a, out);
    if (resume) return exp_resume(app, db, id, out);
    return exp_compare(app, db, id, a, out);
}

static int list_row(void *user, const DbExperiment *x) {
    ListCtx *c = user;
    jw_obj(&c->out->w);
    db_experiment_json_fields(x, &c->out->w);
    jw_obj_end(&c->out->w);
    buf_printf(&c->out->text, "%4lld  %s  %-7s  %-12s %ld/%ld  %s\n", (long long)x->id, x->created, x->status, x->task,
               x->n_done, (long)x->n_items * x->n_conditions, x->command);
    c->n++;
    return 0;
}

static int list_each(Db *db, const DbFilter *f, long n, ListCtx *c, Err *e) {
    return db_experiments_each(db, f, n, true, list_row, c, e);
}

static int cmd_experiments(App *app, const Args *a, Out *out) {
    return list_command(app, a, out, "experiments", "experiments", list_each);
}

static int cmd_prompt(App *app, const Args *a, Out *out) {
    if (strcmp(args_pos(a, 0)->val, "show") || args_npos(a) != 2)
        return out_error(out, "usage: prompt show TASK [shots=N cot=on|off seed=S item=K ...]");
    for (size_t i = 0; i < 4; i++) {
        static const char *const single[] = {"shots", "cot", "seed", "chat"};
        const char *v = args_opt(a, single[i]);
        if (v && strchr(v, ',')) return out_error(out, "prompt show: %s=%.40s: one value (it renders one prompt)", single[i], v);
    }
    ExpSpec spec;
    if (spec_from_args(a, args_pos(a, 1)->val, &spec, out)) return -1;
    Err e = {{0}};
    long long item = 0;
    if (args_int(a, "item", 0, 1 << 30, &item, &e) < 0) {
        exp_spec_free(&spec);
        return out_error(out, "%s", e.msg);
    }
    ExpPlan plan;
    if (exp_plan_build(app, &spec, &plan, &e)) {
        exp_plan_done(&plan);
        return out_error(out, "prompt show: %s", e.msg);
    }
    int rc = 0;
    if (item >= plan.task->n_test)
        rc = out_error(out, "prompt show: item=%lld: task '%s' has %d test items (0 to %d)", item, plan.task->name,
                       plan.task->n_test, plan.task->n_test - 1);
    ExpPrompt p = {0};
    const DbCondition *c = &plan.conds[0];
    int idx = rc ? 0 : plan.task->test[item];
    if (!rc && exp_prompt(app, &plan, c, idx, &p, &e))
        rc = out_error(out, "prompt show: item %lld (line %d): %s", item, plan.task->items[idx].line, e.msg);
    if (!rc) {
        const TaskItem *it = &plan.task->items[idx];
        JsonW *w = &out->w;
        char mode[48];
        prompt_mode_name(c->shots, c->cot, c->samples, mode, sizeof mode);
        jw_kstr(w, "task", plan.task->name);
        jw_kint(w, "item", item);
        jw_kstr(w, "input", it->input);
        jw_kstr(w, "target", it->target);
        jw_key(w, "choices");
        if (it->choices) {
            jw_arr(w);
            for (int j = 0; j < it->n_choices; j++) jw_str(w, it->choices[j]);
            jw_arr_end(w);
        } else {
            jw_null(w);
        }
        jw_kint(w, "shots", c->shots);
        jw_kbool(w, "cot", c->cot);
        jw_kbool(w, "chat", c->chat);
        jw_kint(w, "seed", (long long)c->seed);
        jw_kstr(w, "mode", mode);
        jw_kstr(w, "template", c->chat ? (plan.chat.name ? plan.chat.name : "chat") : "gpt3");
        jw_key(w, "exemplars");
        jw_arr(w);
        for (int i = 0; i < p.n_ex; i++) {
            const TaskItem *x = &plan.task->items[p.ex[i]];
            jw_obj(w);
            jw_kint(w, "line", x->line);
            jw_kstr(w, "input", x->input);
            jw_kstr(w, "target", x->target);
            jw_obj_end(w);
        }
        jw_arr_end(w);
        jw_key(w, "text");
        jw_strn(w, p.r.text.data, p.r.text.len);
        jw_kint(w, "n_tokens", p.ids.n);
        jw_kint(w, "n_shared", p.shared.n);
        jw_kint(w, "shared_bytes", (long long)p.r.shared);
        Buf *t = &out->text;
        buf_printf(t, "--- %s, %s, item %lld, %d tokens (%d shared by the condition) ---\n", plan.task->name, mode, item,
                   p.ids.n, p.shared.n);
        put_text(t, p.r.text.data, p.r.text.len);
        buf_puts(t, "\n---\n");
    }
    exp_prompt_free(&p);
    exp_plan_done(&plan);
    return rc;
}

static int cmd_tasks(App *app, const Args *a, Out *out) {
    (void)app, (void)a;
    const char *dir = exp_tasks_dir();
    int n;
    char **names = exp_task_files(dir, &n);
    if (n < 0) return out_error(out, "tasks: cannot read '%s': %s", dir, strerror(errno));
    JsonW *w = &out->w;
    jw_kstr(w, "dir", dir);
    jw_key(w, "tasks");
    jw_arr(w);
    Buf bad = {0}; // a file that is no task is named, the others still listed
    JsonW bw;
    jw_init(&bw, &bad);
    jw_arr(&bw);
    Task **ts = xcalloc((size_t)n + 1, sizeof *ts);
    char **errs = xcalloc((size_t)n + 1, sizeof *errs);
    for (int i = 0; i < n; i++) {
        Buf path = {0};
        buf_printf(&path, "%s/%s", dir, names[i]);
        Err e = {{0}};
        if (!(ts[i] = task_load(path.data, &e))) errs[i] = xstrdup(e.msg);
        buf_free(&path);
    }
    for (int i = 0; i < n; i++) {
        Buf path = {0};
        buf_printf(&path, "%s/%s", dir, names[i]);
        Task *t = ts[i];
        // a name another file answers to too (its file name, or its header's): experiment and
        // prompt show refuse it as ambiguous, so the listing says to open it by path
        bool shared = false;
        for (int j = 0; t && t->name && j < n && !shared; j++) {
            size_t fl = strlen(names[j]);
            shared = j != i && ((ts[j] && ts[j]->name && !strcmp(ts[j]->name, t->name)) ||
                                (fl == strlen(t->name) + 6 && !strncmp(names[j], t->name, fl - 6)));
        }
        if (!t) {
            jw_obj(&bw);
            jw_kstr(&bw, "path", path.data);
            jw_kstr(&bw, "error", errs[i]);
            jw_obj_end(&bw);
            buf_printf(&out->text, "%-14s cannot be read: %s\n", names[i], errs[i]);
        } else {
            const char *scorer = task_scorer(t);
            jw_obj(w);
            jw_kstr(w, "name", t->name);
            jw_kstr(w, "path", path.data);
            jw_kstr(w, "description", t->description);
            jw_kstr(w, "layout", t->layout);
            jw_kint(w, "n_test", t->n_test);
            jw_kint(w, "n_pool", t->n_pool);
            jw_kint(w, "n_rationale", t->n_rationale);
            jw_kbool(w, "multiple_choice", t->multiple_choice);
            jw_kstr(w, "scorer", scorer);
            jw_kbool(w, "ambiguous", shared);
            jw_obj_end(w);
            buf_printf(&out->text, "%-14s %4d test %4d pool %4d rationales  %-8s %s%s%s%s\n", t->name, t->n_test,
                       t->n_pool, t->n_rationale, scorer, t->description, shared ? "  (name shared: open it by path, " : "",
                       shared ? path.data : "", shared ? ")" : "");
        }
        buf_free(&path);
    }
    for (int i = 0; i < n; i++) task_free(ts[i]), free(errs[i]);
    free(ts), free(errs);
    jw_arr_end(w);
    jw_arr_end(&bw);
    jw_key(w, "unreadable");
    jw_raw(w, bad.data);
    buf_free(&bad);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return 0;
}

static const char *const k_experiment[] = {EXP_RUN_KEYS, "item", "condition", NULL};
static const char *const k_prompt[] = {"shots", "cot", "chat", "seed", "item", "pool", "scorer", "regex", STYLE_KEYS, NULL};
static const char *const k_experiments[] = {"since", "until", "annotator", "model", NULL};
static const char *const k_tasks[] = {NULL};

const Command exp_commands[] = {
    {"tasks", cmd_tasks, 0, 0, k_tasks, "tasks",
     "The tasks qkv ships (data/tasks/, or $QKV_TASKS): name, test items, exemplar pool, rationales, scorer; a "
     "task is named by its file's name or its header's name (the one listed); a file that is no task is named with "
     "its error. Any JSON Lines file in qkv's layout, GSM8K-style or multiple-choice can be named instead (README: "
     "Task files). JSON: dir, tasks: [{name, path, description, layout, n_test, n_pool, n_rationale, "
     "multiple_choice, scorer}], unreadable: [{path, error}].",
     false},
    {"prompt", cmd_prompt, 2, 2, k_prompt,
     "prompt show TASK [shots=N cot=on|off chat=on|off seed=S item=K description=\"...\" prefix= delimiter= "
     "answer_prefix= separator= trigger= answer_phrase=]",
     "Render the exact prompt an experiment would give test item K (0-based) of TASK: the task description, N "
     "exemplars chosen by the seed (never the item itself) as \"input => output\" lines, then the query; with "
     "cot=on worked rationales (few-shot) or the trigger \"Let's think step by step.\" (zero-shot). JSON: task, "
     "item, input, target, choices, shots, cot, chat, seed, mode, template, exemplars: [{line, input, target}], "
     "text, n_tokens, n_shared (tokens of the part every item of the condition shares), shared_bytes.",
     true},
    {"experiment", cmd_experiment, 1, 4, k_experiment,
     "experiment TASK [shots=0,1,3,5 cot=off,on seeds=1,2,3 sc=1,5 limit=N scorer=exact|contains|number|regex|choice "
     "regex=RE pool=FILE temperature=T top_k=K top_p=P max=N reuse=on|off new=true ...] | experiment show ID "
     "[item=K condition=C] | experiment resume ID | experiment compare ID A B",
     "Run every condition (shots x cot x sc x chat x seeds) on the test items of TASK (the first N with limit), one "
     "logged run (kind experiment) per item, condition and sample, each stored with its score as it finishes; "
     "progress on stderr. Greedy unless temperature > 0; sc=N votes over N sampled answers (self-consistency). "
     "Multiple choice is scored by each choice's log-likelihood (summed, and per character as accuracy_norm). An "
     "unfinished experiment (Ctrl-C, a killed process) resumes when the same command runs again (new=true starts "
     "afresh) or with experiment resume ID. JSON: experiment_id, the experiment's fields, resumed, total, "
     "done_before, done_now, seconds, tokens_reused, tokens_evaluated, conditions: [{condition, shots, cot, "
     "samples, chat, seed, n, correct, accuracy, stderr, ci_low, ci_high (the 95% Wilson interval)}]. experiment show ID gives the table again, or with "
     "item=K one item under condition C (default 0): input, target, answer, correct, detail, runs: [{sample, "
     "run_id, answer, n_reused, prompt, text, mode, template, tokens: [{id, piece, logprob}]}]. experiment "
     "compare ID A B compares conditions A and B on the items scored under both: n, both, a_only, b_only, "
     "neither, acc_a, acc_b, diff (B - A), se, ci_low, ci_high (95%, Newcombe's paired interval), p_exact (McNemar's exact test), chi2, "
     "p_chi2 (with continuity correction).",
     true, false, true},
    {"experiments", cmd_experiments, 0, 2, k_experiments,
     "experiments [N] [TEXT] [since=DATE until=DATE annotator=NAME model=M]",
     "The last N experiments (default 20), newest first; TEXT keeps those whose task, command, model or status "
     "holds it. JSON: experiments: [{experiment_id, created, finished, status, task, task_path, task_sha256, "
     "model_path, model_arch, model_sha256, annotator, qkv_version, command, spec, n_items, n_conditions, "
     "n_done}].",
     false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
