// cmd_data.c - the data commands: run history, show and replay, stored rankings, exports.
//
// JSON fields (stable; each command's help text lists them):
//   history  runs: [{run_id, created, kind, annotator, model_path, model_arch, prompt, text, seed,
//            temperature, stop_reason, n_tokens, chat_user}]  (newest first; db_run_json_fields'
//            summary; chat_user: a chat prompt's last user message, else null)
//   show     the fields of the runs export (db/export.c), plus rankings: [ranking_id ...]
//   show ranking=ID  ranking_id, created, annotator, note, qkv_version, prompt, k, order,
//            candidates: [{n, run_id, rank, text}] (best first)
//   rankings rankings: [{ranking_id, created, annotator, note, prompt, k, order,
//            candidates: [{n, run_id, rank}], chat_user}]  (newest first; candidates best first)
//   replay   run_id, replay_of, identical, first_difference, max_logprob_diff (over the tokens
//            before the first difference), text, original_text, threads,
//            model_changed, plus generate's fields
//   rank     ranking_pending, prompt, k, candidates: [{n, run_id, seed, text}]
//   order    ranking_id, order (groups of candidate numbers, best first), k, annotator, note
//   skip     skipped, k
//   note     note, ranking_id (null while pending)
//   export   file, count, what, format; pairs also identical (pairs left out: chosen and rejected read the same)
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmdutil.h"
#include "commands.h"
#include "base/json.h"

static int run_id_arg(const Arg *a, int64_t *id, Out *out) { return id_arg(a->val, "run", id, out); }

static int history_row(void *user, const DbRun *r) {
    ListCtx *h = user;
    JsonW *w = &h->out->w;
    int n_tokens = 0;
    Json *ids = json_parse(r->ids, strlen(r->ids), NULL);
    if (ids) n_tokens = (int)ids->len;
    json_free(ids);
    jw_obj(w);
    db_run_json_fields(r, w, false);
    jw_kint(w, "n_tokens", n_tokens);
    jw_chat_user(w, r->prompt, r->prompt_len, db_run_chat(r));
    jw_obj_end(w);

    Buf *t = &h->out->text;
    const char *slash = strrchr(r->model_path, '/');
    const char *model = slash ? slash + 1 : r->model_path, *who = r->annotator ? r->annotator : "-";
    buf_printf(t, "#%-5lld %.16s %-8s ", (long long)r->id, r->created, r->kind);
    put_cell(t, model, strlen(model), 12, false);
    buf_putc(t, ' ');
    put_cell(t, who, strlen(who), 10, false);
    buf_putc(t, ' ');
    prompt_line(t, r->prompt, r->prompt_len, 40, db_run_chat(r));
    buf_puts(t, " -> \"");
    text_line(t, r->output, r->output_len, 40);
    buf_puts(t, "\"\n");
    h->n++;
    return 0;
}

static int each_run(Db *db, const DbFilter *f, long n, ListCtx *c, Err *e) {
    return db_runs_each(db, f, n, true, history_row, c, e);
}

static int cmd_history(App *app, const Args *a, Out *out) { return list_command(app, a, out, "history", "runs", each_run); }

static int show_ranking(App *app, const char *val, Out *out);

static int cmd_show(App *app, const Args *a, Out *out) {
    const char *ranking = args_opt(a, "ranking");
    if (ranking && args_pos(a, 0)) return out_error(out, "show: a run or ranking=ID, not both");
    if (ranking) return show_ranking(app, ranking, out);
    if (!args_pos(a, 0)) return out_error(out, "show: which run? usage: show RUN, or show ranking=ID");
    int64_t id;
    if (run_id_arg(args_pos(a, 0), &id, out)) return -1;
    Db *db = need_db_read(app, out);
    if (!db) return -1;
    DbRun r;
    Err e = {{0}};
    int found = db_run_get(db, id, &r, &e);
    if (found < 0) return out_error(out, "show: %s", e.msg);
    if (!found) return out_error(out, "show: no run %lld in '%s'", (long long)id, db_path(db));
    db_run_json_fields(&r, &out->w, true);
    Buf *t = &out->text;
    buf_printf(t, "run %lld  %s  %s", (long long)r.id, r.created, r.kind);
    if (r.parent_id) buf_printf(t, " of run %lld", (long long)r.parent_id);
    buf_putc(t, '\n');
    buf_printf(t, "model     %s (%s)%s%s\n", r.model_path, r.model_arch, r.model_sha256 ? " sha256 " : "",
               r.model_sha256 ? r.model_sha256 : "");
    buf_printf(t, "decoding  temperature %g  top_k %d  top_p %g  seed %llu  max %d  alts %d  stop %s  truncate %s\n",
               r.temperature, r.top_k, r.top_p, (unsigned long long)r.seed, r.max_tokens, r.n_alts,
               r.stop_at_eos ? "true" : "false", r.truncate ? "true" : "false");
    buf_printf(t, "by        %s, qkv %s, %d threads; stop: %s\n", r.annotator ? r.annotator : "(no annotator)",
               r.qkv_version, r.n_threads, r.stop_reason ? r.stop_reason : "?");
    if (r.template_name || r.mode)
        buf_printf(t, "prompting template %s  mode %s\n", r.template_name ? r.template_name : "-",
                   r.mode ? r.mode : "-");
    buf_puts(t, "prompt:\n");
    put_text(t, r.prompt, r.prompt_len);
    buf_puts(t, "\ncompletion:\n");
    put_text(t, r.output, r.output_len);
    buf_putc(t, '\n');
    db_run_done(&r);
    return 0;
}

// Parse a stored JSON array of ints into v.
static int int_array(const char *json, IntVec *v) {
    Json *j = json ? json_parse(json, strlen(json), NULL) : NULL;
    if (!j || j->type != JSON_ARR) {
        json_free(j);
        return -1;
    }
    for (size_t i = 0; i < j->len; i++) iv_push(v, (int)j->items[i].num);
    json_free(j);
    return 0;
}

// The largest |difference| between a run's stored log-probabilities (a JSON array) and the
// replay's r over their first n tokens; -1 when the stored ones cannot be read. A replay
// evaluates the same operations in the same order, so anything above 0 is worth telling.
static double logprob_diff(const char *json, const GenResult *r, int n) {
    Json *j = json ? json_parse(json, strlen(json), NULL) : NULL;
    double d = -1;
    if (j && j->type == JSON_ARR) {
        d = 0;
        for (int i = 0; i < n && (size_t)i < j->len; i++) {
            double x = fabs((double)(float)j->items[i].num - (double)r->steps[i].logprob);
            d = x > d ? x : d;
        }
    }
    json_free(j);
    return d;
}

// The path of the current model as runs record it.
static bool same_model_path(const App *app, const char *run_path) {
    if (!strcmp(run_path, "builtin")) return app->model && app->model->builtin;
    if (!app->model || app->model->builtin) return false;
    char abs[4096];
    const char *cur = realpath(app->model->path, abs) ? abs : app->model->path;
    return !strcmp(cur, run_path);
}

static int cmd_replay(App *app, const Args *a, Out *out) {
    int64_t id;
    if (run_id_arg(args_pos(a, 0), &id, out)) return -1;
    Db *db = need_db_read(app, out);
    if (!db) return -1;
    DbRun run;
    Err e = {{0}};
    int found = db_run_get(db, id, &run, &e);
    if (found < 0) return out_error(out, "replay: %s", e.msg);
    if (!found) return out_error(out, "replay: no run %lld in '%s'", (long long)id, db_path(db));
    int rc = 0;
    // what the session ran before: a replay that loads or converts another model leaves it so,
    // and says so (it switched the session's model without a word)
    char before[160] = "", after[160];
    if (app->model) runlog_arch_name(app->model, before, sizeof before);
    unsigned serial = app->model_serial;
    // the same model file
    if (!app->model || !same_model_path(app, run.model_path)) {
        if (app_load_model(app, run.model_path, NULL, &e)) {
            rc = out_error(out, "replay: cannot load the model of run %lld: %s", (long long)id, e.msg);
            db_run_done(&run);
            return rc;
        }
    }
    // converted in memory as it was (or not)
    if (app_quantize_as(app, run.model_arch, &e)) {
        rc = out_error(out, "replay: run %lld: %s", (long long)id, e.msg);
        db_run_done(&run);
        return rc;
    }
    // the same parameters and prompt ids
    GenParams p = app->gen;
    p.s.temperature = (float)run.temperature;
    p.s.top_k = run.top_k;
    p.s.top_p = (float)run.top_p;
    p.s.seed = run.seed;
    p.max_tokens = run.max_tokens;
    p.n_alts = run.n_alts;
    p.stop_at_eos = run.stop_at_eos;
    p.truncate = run.truncate;
    p.n_dropped = run.n_truncated; // the stored ids are those kept: the run's prompt and count are logged
    char bad[64];
    if (decode_out_of_range(&p, bad, sizeof bad)) { // generate refuses it: the file was edited or damaged
        rc = out_error(out, "replay: run %lld holds %s, which generate refuses (an edited or damaged database?)",
                       (long long)id, bad);
        db_run_done(&run);
        return rc;
    }
    IntVec pids = {0}, orig = {0};
    if (int_array(run.prompt_ids, &pids) || int_array(run.ids, &orig)) {
        db_run_done(&run);
        iv_free(&pids);
        iv_free(&orig);
        return out_error(out, "replay: run %lld has no readable token ids", (long long)id);
    }
    // an experiment's run that stopped at its task's separator (a condition on the text so far,
    // not a parameter of the run), or one stopped with Ctrl-C: the same number of tokens, where
    // the run stopped (a stopped run replayed to its max= differed after its last token)
    bool at_sep = run.stop_reason && !strcmp(run.stop_reason, "separator");
    bool at_stop = run.stop_reason && !strcmp(run.stop_reason, "cancelled");
    if ((at_sep || at_stop) && orig.n < p.max_tokens) p.max_tokens = orig.n;
    // the same number of threads (the order of float sums depends on it) and the same KV
    // cache type (an F16 cache rounds keys and values): a context of its own when they differ
    DType kv = DT_F32;
    if (run.kv && app_kv_parse(run.kv, &kv)) {
        rc = out_error(out, "replay: run %lld has an unknown KV cache type '%.20s'", (long long)id, run.kv);
        db_run_done(&run);
        iv_free(&pids);
        iv_free(&orig);
        return rc;
    }
    CtxSwitch sw;
    app_ctx_switch(app, run.n_threads, kv, &sw);
    Generation g;
    TokChatKind chat = chat_template_kind(run.template_name); // a chat prompt holds its own BOS
    if (pids.n > 0)
        rc = app_generate(app, run.prompt, run.prompt_len, pids.v, pids.n, &p, chat, "replay", id, &g, &e);
    else
        rc = app_generate(app, run.prompt, run.prompt_len, NULL, 0, &p, chat, "replay", id, &g, &e);
    app_ctx_restore(app, &sw);
    if (rc) {
        rc = out_error(out, "replay: %s", e.msg);
    } else {
        const GenResult *r = &g.r;
        int64_t new_id = g.rec.run.id;
        int first = -1;
        int n = r->ids.n < orig.n ? r->ids.n : orig.n;
        for (int i = 0; i < n && first < 0; i++)
            if (r->ids.v[i] != orig.v[i]) first = i;
        // the replay stopped with Ctrl-C before the run's length: only the tokens it made compare
        bool cut = r->stop == STOP_CANCELLED && r->ids.n < orig.n;
        if (first < 0 && r->ids.n != orig.n && !cut) first = n;
        bool identical = first < 0 && !cut && g.text.len == run.output_len &&
                         !memcmp(g.text.data ? g.text.data : "", run.output, g.text.len);
        // the model file may have changed since the run
        const char *hex = g.rec.run.model_sha256;
        bool model_changed = run.model_sha256 && hex && strcmp(hex, run.model_sha256);
        double lp_diff = logprob_diff(run.logprobs, r, first < 0 ? n : first);
        JsonW *w = &out->w;
        jw_key(w, "identical"); // null: stopped before it could tell
        if (cut && first < 0) jw_null(w);
        else jw_bool(w, identical);
        jw_kbool(w, "interrupted", cut);
        jw_key(w, "max_logprob_diff");
        if (lp_diff < 0) jw_null(w);
        else jw_num(w, lp_diff);
        jw_key(w, "first_difference");
        if (first < 0) jw_null(w);
        else jw_int(w, first);
        jw_kint(w, "replay_of", id);
        jw_key(w, "original_text");
        jw_strn(w, run.output, run.output_len);
        jw_kbool(w, "model_changed", model_changed);
        generation_json(app, w, &g);
        buf_printf(&out->text, "replay of run %lld%s: %s", (long long)id, new_id > 0 ? "" : " (not logged)",
                   cut && first < 0 ? "stopped with Ctrl-C" : identical ? "identical" : "DIFFERENT");
        if (cut && first < 0)
            buf_printf(&out->text, " after %d of the run's %d tokens, identical so far\n", r->ids.n, orig.n);
        else if (identical)
            buf_puts(&out->text, at_sep    ? " (to the separator the run stopped at)\n"
                                 : at_stop ? " (to the token where the run was stopped)\n"
                                           : "\n");
        if (!identical && first >= 0) buf_printf(&out->text, " from token %d\n", first);
        else if (!identical && !cut) // the same tokens: the stored text is not theirs (an edited database)
            buf_puts(&out->text, ": the same tokens, but the run's stored text is not theirs\n");
        if (lp_diff > 0)
            buf_printf(&out->text, "note: the log-probabilities of the same tokens differ by up to %.3g\n", lp_diff);
        if (model_changed) buf_puts(&out->text, "note: the model file changed since the run\n");
        runlog_arch_name(app->model, after, sizeof after);
        bool switched = before[0] && (serial != app->model_serial || strcmp(before, after));
        jw_kbool(w, "session_model_changed", switched);
        if (switched)
            buf_printf(&out->text, "note: the session's model is now %s (%s), as run %lld ran: it stays loaded\n",
                       app->model->name, after, (long long)id);
        buf_put_utf8(&out->text, g.text.data ? g.text.data : "", g.text.len);
        buf_putc(&out->text, '\n');
        if (g.log_err.msg[0]) fprintf(stderr, "warning: the run was not logged: %s\n", g.log_err.msg);
        generation_free(&g);
    }
    iv_free(&pids);
    iv_free(&orig);
    db_run_done(&run);
    return rc;
}

// The candidates of r best first (rank, then candidate number): indexes into r->items.
static void best_first(const DbRanking *r, int best[DB_RANK_MAX]) {
    for (int i = 0; i < r->k; i++) {
        int j = i;
        for (; j > 0; j--) {
            const DbRankItem *p = &r->items[best[j - 1]], *c = &r->items[i];
            if (p->rank < c->rank || (p->rank == c->rank && p->n < c->n)) break;
            best[j] = best[j - 1];
        }
        best[j] = i;
    }
}

// The fields of a ranking, candidates best first; runs (the k candidates' runs in item
// order, or NULL) adds each candidate's text.
static void ranking_json(const DbRanking *r, const int *best, const DbRun *runs, JsonW *w) {
    jw_kint(w, "ranking_id", r->id);
    jw_kstr(w, "created", r->created);
    jw_kstr(w, "annotator", r->annotator);
    jw_kstr(w, "note", r->note);
    jw_key(w, "prompt");
    jw_strn(w, r->prompt, r->prompt_len);
    jw_kint(w, "k", r->k);
    // as order's answer: groups of candidate numbers, best first, a group of several a tie
    jw_key(w, "order");
    jw_arr(w);
    for (int i = 0; i < r->k; i++) {
        const DbRankItem *it = &r->items[best[i]];
        if (i == 0 || it->rank != r->items[best[i - 1]].rank) {
            if (i) jw_arr_end(w);
            jw_arr(w);
        }
        jw_int(w, it->n);
    }
    if (r->k) jw_arr_end(w);
    jw_arr_end(w);
    jw_key(w, "candidates");
    jw_arr(w);
    for (int i = 0; i < r->k; i++) {
        const DbRankItem *it = &r->items[best[i]];
        jw_obj(w);
        jw_kint(w, "n", it->n);
        jw_kint(w, "run_id", it->run_id);
        jw_kint(w, "rank", it->rank);
        if (runs) {
            const DbRun *run = &runs[best[i]];
            jw_key(w, "text");
            if (run->output) jw_strn(w, run->output, run->output_len);
            else jw_null(w);
        }
        jw_obj_end(w);
    }
    jw_arr_end(w);
}

// "3 1 2=4": the order as the order command takes it.
static void order_text(const DbRanking *r, const int *best, Buf *b) {
    for (int i = 0; i < r->k; i++) {
        const DbRankItem *it = &r->items[best[i]];
        bool tie = i > 0 && it->rank == r->items[best[i - 1]].rank;
        buf_printf(b, "%s%d", i == 0 ? "" : tie ? "=" : " ", it->n);
    }
}

static int rankings_row(void *user, const DbRanking *r) {
    ListCtx *c = user;
    int best[DB_RANK_MAX];
    best_first(r, best);
    jw_obj(&c->out->w);
    ranking_json(r, best, NULL, &c->out->w);
    jw_chat_user(&c->out->w, r->prompt, r->prompt_len, r->chat);
    jw_obj_end(&c->out->w);
    Buf *t = &c->out->text, order = {0};
    order_text(r, best, &order);
    const char *who = r->annotator ? r->annotator : "-";
    buf_printf(t, "#%-5lld %.16s ", (long long)r->id, r->created);
    put_cell(t, who, strlen(who), 10, false);
    buf_printf(t, " k=%d  %-17s ", r->k, order.data);
    prompt_line(t, r->prompt, r->prompt_len, 40, r->chat);
    if (r->note) {
        buf_puts(t, "  note: ");
        text_line(t, r->note, strlen(r->note), 30);
    }
    buf_putc(t, '\n');
    buf_free(&order);
    c->n++;
    return 0;
}

static int each_ranking(Db *db, const DbFilter *f, long n, ListCtx *c, Err *e) {
    return db_rankings_each(db, f, n, true, rankings_row, c, e);
}

static int cmd_rankings(App *app, const Args *a, Out *out) {
    return list_command(app, a, out, "rankings", "rankings", each_ranking);
}

static int show_ranking(App *app, const char *val, Out *out) {
    int64_t id;
    if (id_arg(val, "ranking", &id, out)) return -1;
    Db *db = need_db_read(app, out);
    if (!db) return -1;
    DbRanking r;
    Err e = {{0}};
    int found = db_ranking_get(db, id, &r, &e);
    if (found < 0) return out_error(out, "show: %s", e.msg);
    if (!found) return out_error(out, "show: no ranking %lld in '%s'", (long long)id, db_path(db));
    DbRun runs[DB_RANK_MAX];
    memset(runs, 0, sizeof runs);
    int rc = 0;
    for (int i = 0; i < r.k && !rc; i++) {
        int got = db_run_get(db, r.items[i].run_id, &runs[i], &e);
        if (got < 0) rc = out_error(out, "show: %s", e.msg);
    }
    if (!rc) {
        int best[DB_RANK_MAX];
        best_first(&r, best);
        ranking_json(&r, best, runs, &out->w);
        jw_kstr(&out->w, "qkv_version", r.qkv_version);
        Buf *t = &out->text;
        buf_printf(t, "ranking %lld  %s  by %s  k=%d  order ", (long long)r.id, r.created,
                   r.annotator ? r.annotator : "(no annotator)", r.k);
        order_text(&r, best, t);
        buf_putc(t, '\n');
        if (r.note) {
            buf_puts(t, "note: ");
            buf_put_utf8(t, r.note, strlen(r.note));
            buf_putc(t, '\n');
        }
        buf_puts(t, "prompt: \"");
        text_line(t, r.prompt, r.prompt_len, 4000);
        buf_puts(t, "\"\n");
        for (int i = 0; i < r.k; i++) {
            const DbRankItem *it = &r.items[best[i]];
            bool tie = (i > 0 && it->rank == r.items[best[i - 1]].rank) ||
                       (i + 1 < r.k && it->rank == r.items[best[i + 1]].rank);
            buf_printf(t, "rank %d%s  candidate %d, run %lld: \"", it->rank, tie ? " (tie)" : "", it->n,
                       (long long)it->run_id);
            // one line each (newlines shown as ⏎), so that the order reads at a glance
            const DbRun *run = &runs[best[i]];
            text_line(t, run->output ? run->output : "", run->output ? run->output_len : 0, 4000);
            buf_puts(t, "\"\n");
        }
    }
    for (int i = 0; i < r.k; i++) db_run_done(&runs[i]);
    db_ranking_done(&r);
    return rc;
}

// export experiment ID FILE [format=json|jsonl|csv]
static int export_experiment(App *app, const Args *a, Out *out) {
    if (args_npos(a) != 3) return out_error(out, "usage: export experiment ID FILE [format=json|jsonl|csv]");
    int64_t id;
    if (id_arg(args_pos(a, 1)->val, "experiment", &id, out)) return -1;
    const char *file = args_pos(a, 2)->val, *format = args_opt(a, "format");
    if (!format) // from the file's name, else JSON
        format = has_ext(file, ".csv") ? "csv" : has_ext(file, ".jsonl") ? "jsonl" : "json";
    DbExportExp kind;
    if (!strcmp(format, "json")) kind = DB_EXPORT_EXP_JSON;
    else if (!strcmp(format, "jsonl")) kind = DB_EXPORT_EXP_JSONL;
    else if (!strcmp(format, "csv")) kind = DB_EXPORT_EXP_CSV;
    else return out_error(out, "export experiment: format=%.40s: json, jsonl or csv expected", format);
    static const char *const keys[] = {"format", NULL};
    if (args_only(a, keys, "export experiment", out)) return -1;
    Db *db = need_db_read(app, out);
    if (!db) return -1;
    long count = 0;
    Err e = {{0}};
    if (db_export_experiment(db, id, kind, file, &count, &e)) return out_error(out, "export: %s", e.msg);
    jw_kstr(&out->w, "file", file);
    jw_kint(&out->w, "count", count);
    jw_kstr(&out->w, "what", "experiment");
    jw_kstr(&out->w, "format", format);
    jw_kint(&out->w, "experiment_id", id);
    buf_printf(&out->text, "experiment %lld: %ld items written to %s\n", (long long)id, count, file);
    return 0;
}

static int cmd_export(App *app, const Args *a, Out *out) {
    const char *what = args_pos(a, 0)->val, *file = args_pos(a, 1)->val;
    if (!strcmp(what, "experiment")) return export_experiment(app, a, out);
    if (!strcmp(what, "gguf")) return export_gguf(app, a, out);
    if (args_npos(a) != 2) return out_error(out, "export %.40s takes one FILE", what);
    if (args_opt(a, "type")) return out_error(out, "export %.40s: type= applies to export gguf only", what);
    const char *format = args_opt(a, "format");
    bool csv_name = has_ext(file, ".csv"); // the format follows the name, as for experiments
    if (csv_name && !format && strcmp(what, "runs"))
        return out_error(out, "export %.40s: '%.200s': %s are written as JSON Lines only: name the file .jsonl", what,
                         file, what);
    DbExport kind;
    if (!strcmp(what, "pairs")) {
        if (!format) format = "trl";
        if (!strcmp(format, "trl")) kind = DB_EXPORT_PAIRS_TRL;
        else if (!strcmp(format, "hh")) kind = DB_EXPORT_PAIRS_HH;
        else return out_error(out, "export pairs: format=%.40s: trl or hh expected", format);
    } else if (!strcmp(what, "rankings")) {
        if (!format) format = "jsonl";
        if (strcmp(format, "jsonl")) return out_error(out, "export rankings: format=%.40s: only jsonl", format);
        kind = DB_EXPORT_RANKINGS;
    } else if (!strcmp(what, "runs")) {
        if (!format) format = csv_name ? "csv" : "jsonl";
        if (!strcmp(format, "jsonl")) kind = DB_EXPORT_RUNS;
        else if (!strcmp(format, "csv")) kind = DB_EXPORT_RUNS_CSV;
        else return out_error(out, "export runs: format=%.40s: jsonl or csv expected", format);
    } else {
        return out_error(out, "export: '%.40s': pairs, rankings, runs, experiment or gguf expected", what);
    }
    DbFilter f = {0};
    if (filter_opts(a, &f, out)) return -1;
    if (f.kind && kind != DB_EXPORT_RUNS && kind != DB_EXPORT_RUNS_CSV)
        return out_error(out, "export %s: kind= filters runs only", what);
    double margin = 1; // TRL's margin per rank of difference, as reward train's margin=
    Err me = {{0}};
    if (args_opt(a, "margin") && kind != DB_EXPORT_PAIRS_TRL)
        return out_error(out, "export %s: margin= applies to export pairs format=trl only", what);
    if (args_float(a, "margin", 0, 100, &margin, &me) < 0) return out_error(out, "export pairs: %s", me.msg);
    Db *db = need_db_read(app, out);
    if (!db) return -1;
    long count = 0, same = 0;
    Err e = {{0}};
    if (db_export(db, kind, file, &f, margin, &count, &same, &e)) return out_error(out, "export: %s", e.msg);
    bool pairs = kind == DB_EXPORT_PAIRS_TRL || kind == DB_EXPORT_PAIRS_HH;
    jw_kstr(&out->w, "file", file);
    jw_kint(&out->w, "count", count);
    jw_kstr(&out->w, "what", what);
    jw_kstr(&out->w, "format", format);
    if (pairs) jw_kint(&out->w, "identical", same);
    buf_printf(&out->text, "%ld %s written to %s\n", count, pairs ? "pairs" : what, file);
    if (same) // as the trainers' note says it
        buf_printf(&out->text, "note: %ld pairs were left out: their chosen and rejected read the same (a preference "
                               "between one text and itself teaches nothing)\n", same);
    return 0;
}

static const char *const k_none[] = {NULL};
static const char *const k_history[] = {"since", "until", "annotator", "model", "kind", NULL};
static const char *const k_show[] = {"ranking", NULL};
static const char *const k_rankings[] = {"since", "until", "annotator", "model", NULL};
static const char *const k_export[] = {"format", "since", "until", "annotator", "model", "text", "kind", "type", "margin",
                                       NULL};

const Command data_commands[] = {
    {"history", cmd_history, 0, 2, k_history, "history [N] [TEXT] [since=DATE until=DATE annotator=NAME model=M kind=K]",
     "The last N logged runs (default 20), newest first; TEXT keeps runs whose prompt, completion, model, "
     "annotator or kind contains it (any case). Dates are ISO (2024-05-01 or 2024-05-01T12:30), UTC, inclusive. "
     "JSON: runs: [{run_id, created, kind, annotator, model_path, model_arch, prompt, text, seed, temperature, "
     "stop_reason, n_tokens, chat_user}] (chat_user: a chat prompt's last user message, which the text shows as "
     "chat: \"...\"; null for other prompts).",
     false},
    {"show", cmd_show, 0, 1, k_show, "show RUN|ranking=ID",
     "Everything recorded about a run. JSON: run_id, created, kind, parent_id, annotator, qkv_version, threads, kv, "
     "model_path, model_arch, model_sha256, prompt, template, mode, exemplars, temperature, top_k, top_p, seed, "
     "max_tokens, n_alts, stop_at_eos, truncate, prompt_ids, n_truncated, text, ids, logprobs, alts, prefill_s, "
     "decode_s, stop_reason. show ranking=ID shows a stored ranking instead: its candidates best first with "
     "their completions. JSON: ranking_id, created, annotator, note, qkv_version, prompt, k, order, "
     "candidates: [{n, run_id, rank, text}].",
     false},
    {"replay", cmd_replay, 1, 1, k_none, "replay RUN",
     "Run RUN again: the same model file (loaded when another is current), prompt tokens, decoding parameters, "
     "seed and thread count (a run stopped with Ctrl-C or at an experiment's separator: to the same token); the "
     "replay is logged as a run of kind replay. JSON: identical, first_difference "
     "(index of the first differing generated token, null when identical), replay_of, original_text, threads, "
     "model_changed, and generate's fields (run_id, text, ids, logprobs, ...).",
     false},
    {"rankings", cmd_rankings, 0, 2, k_rankings, "rankings [N] [TEXT] [since=DATE until=DATE annotator=NAME model=M]",
     "The last N stored rankings (default 20), newest first; TEXT keeps rankings whose prompt, annotator or note "
     "contains it (any case); model keeps those with a candidate of that model (path substring or sha256 prefix). "
     "show ranking=ID shows one with its completions. JSON: rankings: [{ranking_id, created, annotator, note, "
     "prompt, k, order (groups of candidate numbers best first, as order answers), candidates: [{n, run_id, "
     "rank}] (best first), chat_user}] (as history's).",
     false},
    {"export", cmd_export, 2, 3, k_export,
     "export pairs|rankings|runs FILE [format=trl|hh|jsonl|csv since=DATE until=DATE annotator=NAME model=M text=T "
     "margin=1] | "
     "export experiment ID FILE [format=json|jsonl|csv] | export gguf FILE [type=f32|f16|q8_0]",
     "Write training data, replacing FILE atomically. pairs: every preference pair of each ranking (ties give "
     "none, nor do two completions that read the same), format=trl {prompt, chosen, rejected, margin} (margin = K x rank difference, margin=K, default 1; TRL's reward trainer subtracts it in the loss as reward train margin=K does; margin=0 leaves the field out) or format=hh {chosen, "
     "rejected} as \"\\n\\nHuman: ...\\n\\nAssistant: ...\" transcripts. rankings: one line per ranking "
     "{ranking_id, created, annotator, note, qkv_version, prompt, k, order, candidates: [{n, rank, run}]} with "
     "each run's full record. runs: JSON Lines (or format=csv) with show's fields. Filters: since/until (ISO "
     "dates, UTC, inclusive), annotator, model (path substring or sha256 prefix; for rankings, any candidate's), "
     "text (as reward train's and the listings' TEXT), kind (runs). export experiment ID FILE writes one experiment (format from the name: .csv, .jsonl, else json): "
     "{experiment, conditions, items: [{condition, shots, cot, samples, chat, seed, item, input, target, answer, "
     "correct, correct_norm, detail, runs: [{sample, run_id, answer, n_reused, prompt, text}]}]}; jsonl one item a "
     "line; csv one item a row with its first run. JSON: file, count, what, format (pairs: and identical, the pairs "
     "left out because chosen and rejected read the same). export gguf FILE writes the "
     "current model (converted by quantize or not) as a GGUF v3 file as llama.cpp lays out its family "
     "(general.architecture, {arch}.* hyperparameters, tokenizer.ggml.* and chat template, llama.cpp's tensor "
     "names): matrices as type= (default f32; with q8_0 a matrix whose rows are not whole 32-element blocks "
     "as F16), vectors, position and token-type embeddings as F32. JSON: file, what, type, arch, model, "
     "tensors, kept (matrices as F16 instead of q8_0), bytes.",
     false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
