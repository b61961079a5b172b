// cmd_db.c - the data commands: run history, show and replay; rankings (rank, order,
// skip, note, and listing them); exports. The ranking between `rank` and `order` lives in
// the App.
//
// JSON fields (stable; each command's help text lists them):
//   history  runs: [{run_id, created, kind, model, annotator, prompt, text, seed, temperature,
//            n_tokens, stop_reason}]  (newest first)
//   show     the fields of the runs export (db/export.c), plus rankings: [ranking_id ...]
//   show ranking=ID  ranking_id, created, annotator, note, qkv_version, prompt, k, order,
//            candidates: [{n, run_id, rank, text}] (best first)
//   rankings rankings: [{ranking_id, created, annotator, note, prompt, k, order,
//            candidates: [{n, run_id, rank}]}]  (newest first; candidates best first)
//   replay   run_id, replay_of, identical, first_difference, text, original_text, threads,
//            model_changed, plus generate's fields
//   rank     ranking_pending, prompt, k, candidates: [{n, run_id, seed, text}]
//   order    ranking_id, order (groups of candidate numbers, best first), k, annotator, note
//   skip     skipped, k
//   note     note, ranking_id (null while pending)
//   export   file, count, what, format
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "appdb.h"
#include "cmd.h"
#include "db.h"
#include "base/json.h"

// The ranking waiting for `order`: K logged candidate runs of one prompt.
struct PendingRank {
    char *prompt;
    size_t prompt_len;
    int k;
    int64_t run_ids[DB_RANK_MAX];
    char *note;
};

static void pending_free(struct PendingRank *p) {
    if (!p) return;
    free(p->prompt);
    free(p->note);
    free(p);
}

static void pending_warn(const struct PendingRank *p) {
    fprintf(stderr, "warning: the ranking of %d candidates (runs %lld..%lld) was not finished with order or "
                    "skip: nothing was stored\n",
            p->k, (long long)p->run_ids[0], (long long)p->run_ids[p->k - 1]);
}

bool app_rank_pending(const App *app) { return app->pending != NULL; }

void app_db_done(App *app) {
    if (app->pending) {
        pending_warn(app->pending);
        pending_free(app->pending);
        app->pending = NULL;
    }
    db_close(app->db);
    app->db = NULL;
}

// The database or an error in out.
static Db *need_db(App *app, Out *out) {
    Err e = {{0}};
    Db *db = app_db(app, &e);
    if (!db) out_error(out, "%s", e.msg);
    return db;
}

// A run or ranking id argument ("12" or "#12"); what names it in the message ("run").
static int id_arg(const char *val, const char *what, int64_t *id, Out *out) {
    const char *s = val + (val[0] == '#');
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v <= 0) return out_error(out, "'%.40s' is not a %s id", val, what);
    *id = v;
    return 0;
}

static int run_id_arg(const Arg *a, int64_t *id, Out *out) { return id_arg(a->val, "run", id, out); }

// The optional count and filter text of history and rankings: [N] [TEXT].
static int count_text_args(const Args *a, const char *cmd, const char *rows, long long *n, const char **text,
                           Out *out) {
    for (int i = 0; i < args_npos(a); i++) {
        const Arg *p = args_pos(a, i);
        char *end;
        long long v = strtoll(p->val, &end, 10);
        if (i == 0 && !p->quoted && *p->val && !*end) {
            if (v < 1) return out_error(out, "%s: the number of %s must be at least 1", cmd, rows);
            *n = v;
        } else if (!*text) {
            *text = p->val;
        } else {
            return out_error(out, "%s: one filter text at most: usage: %s [N] [TEXT]", cmd, cmd);
        }
    }
    return 0;
}

// Filters of history and export from their options.
static void filter_opts(const Args *a, DbFilter *f) {
    f->since = args_opt(a, "since");
    f->until = args_opt(a, "until");
    f->annotator = args_opt(a, "annotator");
    f->model = args_opt(a, "model");
    f->kind = args_opt(a, "kind");
}

// Append n bytes of s as valid UTF-8 text with NUL bytes shown as ␀ (a human form is a C
// string: a NUL would end it there, in the TUI's panes for one).
static void put_text(Buf *b, const char *s, size_t n) {
    const char *nul;
    while (n && (nul = memchr(s, 0, n))) {
        buf_put_utf8(b, s, (size_t)(nul - s));
        buf_puts(b, "\xe2\x90\x80");
        n -= (size_t)(nul - s) + 1;
        s = nul + 1;
    }
    buf_put_utf8(b, s, n);
}

// Append about max bytes of s on one line (newlines shown as ⏎), "..." when cut.
static void text_line(Buf *b, const char *s, size_t n, size_t max) {
    size_t cut = n < max ? n : max;
    while (cut < n && cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80) cut--; // not inside a character
    size_t start = 0;
    for (size_t i = 0; i <= cut; i++) {
        if (i < cut && s[i] != '\n' && s[i] != '\r') continue;
        put_text(b, s + start, i - start);
        if (i < cut) buf_puts(b, "\xe2\x8f\x8e");
        start = i + 1;
    }
    if (cut < n) buf_puts(b, "...");
}

// ---------------------------------------------------------------------------------------
// history

typedef struct {
    Out *out;
    int n;
} HistoryCtx;

static int history_row(void *user, const DbRun *r) {
    HistoryCtx *h = user;
    JsonW *w = &h->out->w;
    int n_tokens = 0;
    Json *ids = json_parse(r->ids, strlen(r->ids), NULL);
    if (ids) n_tokens = (int)ids->len;
    json_free(ids);
    jw_obj(w);
    jw_kint(w, "run_id", r->id);
    jw_kstr(w, "created", r->created);
    jw_kstr(w, "kind", r->kind);
    jw_kstr(w, "model", r->model_path);
    jw_kstr(w, "annotator", r->annotator);
    jw_key(w, "prompt");
    jw_strn(w, r->prompt, r->prompt_len);
    jw_key(w, "text");
    jw_strn(w, r->output, r->output_len);
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->seed);
    jw_key(w, "seed");
    jw_raw(w, seed);
    jw_knum(w, "temperature", r->temperature);
    jw_kint(w, "n_tokens", n_tokens);
    jw_kstr(w, "stop_reason", r->stop_reason);
    jw_obj_end(w);

    Buf *t = &h->out->text;
    const char *slash = strrchr(r->model_path, '/');
    buf_printf(t, "#%-5lld %.16s %-8s %-12.12s %-10.10s ", (long long)r->id, r->created, r->kind,
               slash ? slash + 1 : r->model_path, r->annotator ? r->annotator : "-");
    buf_putc(t, '"');
    text_line(t, r->prompt, r->prompt_len, 40);
    buf_puts(t, "\" -> \"");
    text_line(t, r->output, r->output_len, 40);
    buf_puts(t, "\"\n");
    h->n++;
    return 0;
}

static int cmd_history(App *app, const Args *a, Out *out) {
    long long n = 20;
    const char *text = NULL;
    if (count_text_args(a, "history", "runs", &n, &text, out)) return -1;
    Db *db = need_db(app, out);
    if (!db) return -1;
    DbFilter f = {0};
    filter_opts(a, &f);
    f.text = text;
    Err e = {{0}};
    HistoryCtx h = {out, 0};
    jw_key(&out->w, "runs");
    jw_arr(&out->w);
    int rc = db_runs_each(db, &f, (long)n, true, history_row, &h, &e);
    jw_arr_end(&out->w);
    if (rc) return out_error(out, "history: %s", e.msg);
    if (!h.n) buf_puts(&out->text, "no runs\n");
    return 0;
}

// ---------------------------------------------------------------------------------------
// show

static int show_ranking(App *app, const char *val, Out *out);

static int cmd_show(App *app, const Args *a, Out *out) {
    const char *ranking = args_opt(a, "ranking");
    if (ranking && args_pos(a, 0)) return out_error(out, "show: a run or ranking=ID, not both");
    if (ranking) return show_ranking(app, ranking, out);
    if (!args_pos(a, 0)) return out_error(out, "show: which run? usage: show RUN, or show ranking=ID");
    int64_t id;
    if (run_id_arg(args_pos(a, 0), &id, out)) return -1;
    Db *db = need_db(app, out);
    if (!db) return -1;
    DbRun r;
    Err e = {{0}};
    int found = db_run_get(db, id, &r, &e);
    if (found < 0) return out_error(out, "show: %s", e.msg);
    if (!found) return out_error(out, "show: no run %lld in '%s'", (long long)id, db_path(db));
    db_run_json_fields(&r, &out->w);
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

// ---------------------------------------------------------------------------------------
// replay

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
    Db *db = need_db(app, out);
    if (!db) return -1;
    DbRun run;
    Err e = {{0}}, le = {{0}};
    int found = db_run_get(db, id, &run, &e);
    if (found < 0) return out_error(out, "replay: %s", e.msg);
    if (!found) return out_error(out, "replay: no run %lld in '%s'", (long long)id, db_path(db));
    int rc = 0;
    // the same model file
    if (!app->model || !same_model_path(app, run.model_path)) {
        const char *path = strcmp(run.model_path, "builtin") ? run.model_path : NULL;
        if (app_load_model(app, path, NULL, &e)) {
            rc = out_error(out, "replay: cannot load the model of run %lld: %s", (long long)id, e.msg);
            db_run_done(&run);
            return rc;
        }
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
    IntVec pids = {0}, orig = {0};
    if (int_array(run.prompt_ids, &pids) || int_array(run.ids, &orig)) {
        db_run_done(&run);
        iv_free(&pids);
        iv_free(&orig);
        return out_error(out, "replay: run %lld has no readable token ids", (long long)id);
    }
    // the same number of threads (the order of float sums depends on it)
    int saved_threads = app->n_threads;
    int cur_threads = app->ctx ? ctx_threads(app->ctx) : app->n_threads;
    bool switch_threads = run.n_threads > 0 && cur_threads != run.n_threads;
    if (switch_threads) {
        ctx_free(app->ctx);
        app->ctx = NULL;
        app->n_threads = run.n_threads;
    }
    GenResult r;
    Buf text = {0};
    int64_t new_id = 0;
    if (pids.n > 0) {
        if (app_generate_ids(app, pids.v, pids.n, &p, &r, &text, &e)) rc = -1;
        else new_id = app_log_run(app, run.prompt, run.prompt_len, &p, &r, text.data ? text.data : "", text.len, &le);
    } else {
        int64_t rid = 0;
        if (app_generate(app, run.prompt, run.prompt_len, &p, &r, &text, &rid, &le, &e)) rc = -1;
        new_id = rid;
    }
    int used_threads = app->ctx ? ctx_threads(app->ctx) : run.n_threads;
    if (switch_threads) {
        ctx_free(app->ctx);
        app->ctx = NULL;
        app->n_threads = saved_threads;
    }
    if (rc) {
        rc = out_error(out, "replay: %s", e.msg);
    } else {
        if (new_id > 0 && db_run_set_origin(app->db, new_id, "replay", id, &le)) new_id = 0;
        int first = -1;
        int n = r.ids.n < orig.n ? r.ids.n : orig.n;
        for (int i = 0; i < n && first < 0; i++)
            if (r.ids.v[i] != orig.v[i]) first = i;
        if (first < 0 && r.ids.n != orig.n) first = n;
        bool identical = first < 0 && text.len == run.output_len && !memcmp(text.data ? text.data : "", run.output, text.len);
        // the model file may have changed since the run
        char hex[65] = "";
        DbRun now;
        if (new_id > 0 && db_run_get(app->db, new_id, &now, &e) == 1) {
            if (now.model_sha256) snprintf(hex, sizeof hex, "%s", now.model_sha256);
            db_run_done(&now);
        }
        bool model_changed = run.model_sha256 && hex[0] && strcmp(hex, run.model_sha256);
        JsonW *w = &out->w;
        jw_kbool(w, "identical", identical);
        jw_key(w, "first_difference");
        if (first < 0) jw_null(w);
        else jw_int(w, first);
        jw_kint(w, "replay_of", id);
        jw_key(w, "original_text");
        jw_strn(w, run.output, run.output_len);
        jw_kint(w, "threads", used_threads);
        jw_kbool(w, "model_changed", model_changed);
        generation_json(app, w, &p, &r, &text, new_id);
        if (le.msg[0]) jw_kstr(w, "log_error", le.msg);
        buf_printf(&out->text, "replay of run %lld%s: %s", (long long)id,
                   new_id > 0 ? "" : " (not logged)", identical ? "identical\n" : "DIFFERENT");
        if (!identical) buf_printf(&out->text, " from token %d\n", first < 0 ? 0 : first);
        if (model_changed) buf_puts(&out->text, "note: the model file changed since the run\n");
        buf_put_utf8(&out->text, text.data ? text.data : "", text.len);
        buf_putc(&out->text, '\n');
        if (le.msg[0]) fprintf(stderr, "warning: the run was not logged: %s\n", le.msg);
        gen_result_free(&r);
    }
    buf_free(&text);
    iv_free(&pids);
    iv_free(&orig);
    db_run_done(&run);
    return rc;
}

// ---------------------------------------------------------------------------------------
// rank, order, skip, note

static int cmd_rank(App *app, const Args *a, Out *out) {
    if (app->pending)
        return out_error(out, "rank: a ranking of %d candidates is pending: finish it with order or skip first",
                         app->pending->k);
    const Arg *prompt = args_pos(a, 0);
    long long k = 0;
    Err e = {{0}};
    int got = args_int(a, "k", DB_RANK_MIN, DB_RANK_MAX, &k, &e);
    if (got < 0) return out_error(out, "rank: %s", e.msg);
    if (!got) return out_error(out, "rank: give the number of candidates: k=%d..%d", DB_RANK_MIN, DB_RANK_MAX);
    GenParams p;
    bool seed_given;
    if (decode_opts(app, a, &p, &seed_given, out)) return -1;
    if (!need_db(app, out)) return -1; // the candidates must be logged runs
    uint64_t seed0 = p.s.seed;
    struct PendingRank *pr = calloc(1, sizeof *pr);
    if (!pr) return out_error(out, "rank: out of memory");
    pr->k = (int)k;
    pr->prompt = malloc(prompt->len + 1);
    memcpy(pr->prompt, prompt->val, prompt->len + 1);
    pr->prompt_len = prompt->len;
    JsonW *w = &out->w;
    jw_kbool(w, "ranking_pending", true);
    jw_key(w, "prompt");
    jw_strn(w, prompt->val, prompt->len);
    jw_kint(w, "k", k);
    jw_key(w, "candidates");
    jw_arr(w);
    int rc = 0;
    for (int i = 0; i < pr->k && !rc; i++) {
        p.s.seed = seed_given ? seed0 + (uint64_t)i : fresh_seed();
        GenResult r;
        Buf text = {0};
        Err le = {{0}};
        int64_t run_id = 0;
        bool generated = false;
        if (app_generate(app, prompt->val, prompt->len, &p, &r, &text, &run_id, &le, &e)) {
            rc = out_error(out, "rank: candidate %d: %s", i + 1, e.msg);
        } else if ((generated = true), run_id <= 0) {
            rc = out_error(out, "rank: candidate %d could not be logged: %s", i + 1, le.msg);
        } else if (db_run_set_origin(app->db, run_id, "rank", 0, &le)) {
            rc = out_error(out, "rank: candidate %d: %s", i + 1, le.msg);
        } else {
            pr->run_ids[i] = run_id;
            jw_obj(w);
            jw_kint(w, "n", i + 1);
            jw_kint(w, "run_id", run_id);
            char seed[24];
            snprintf(seed, sizeof seed, "%llu", (unsigned long long)p.s.seed);
            jw_key(w, "seed");
            jw_raw(w, seed);
            jw_key(w, "text");
            jw_strn(w, text.data ? text.data : "", text.len);
            jw_obj_end(w);
            buf_printf(&out->text, "[%d] (run %lld, seed %s)\n", i + 1, (long long)run_id, seed);
            buf_put_utf8(&out->text, text.data ? text.data : "", text.len);
            buf_puts(&out->text, "\n\n");
        }
        if (generated) gen_result_free(&r);
        buf_free(&text);
        if (app->cancel && *app->cancel) rc = rc ? rc : out_error(out, "rank: interrupted");
    }
    jw_arr_end(w);
    if (rc) {
        pending_free(pr);
        return -1;
    }
    buf_printf(&out->text, "order them best first, '=' for ties (e.g. order %d", pr->k);
    for (int c = 1; c < pr->k; c++) buf_printf(&out->text, "%c%d", c == pr->k - 1 && c > 1 ? '=' : ' ', c);
    buf_puts(&out->text, "), or skip\n");
    app->pending = pr;
    return 0;
}

// Read one group "2" or "2=4=5" into grp; returns its size or -1 with the message in out.
static int order_group(const char *s, int k, int *grp, bool *seen, Out *out) {
    int n = 0;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || (*end && *end != '='))
            return out_error(out, "order: '%.40s' is not a candidate number (1..%d, '=' between ties)", s, k);
        if (v < 1 || v > k) return out_error(out, "order: there is no candidate %ld (1..%d)", v, k);
        if (seen[v]) return out_error(out, "order: candidate %ld is named twice", v);
        seen[v] = true;
        grp[n++] = (int)v;
        s = *end ? end + 1 : end;
        if (*end && !*s) return out_error(out, "order: '=' must join two candidates");
    }
    return n;
}

static int cmd_order(App *app, const Args *a, Out *out) {
    struct PendingRank *pr = app->pending;
    if (!pr) return out_error(out, "order: no ranking pending (start one with rank \"PROMPT\" k=K)");
    bool seen[DB_RANK_MAX + 1] = {0};
    int groups[DB_RANK_MAX][DB_RANK_MAX], sizes[DB_RANK_MAX], ng = 0;
    Buf word = {0};
    for (int i = 0; i < a->n; i++) {
        const Arg *arg = &a->a[i];
        buf_clear(&word);
        if (arg->key) buf_printf(&word, "%s=%s", arg->key, arg->val); // 2=4 parses as an option
        else buf_puts(&word, arg->val);
        if (ng == DB_RANK_MAX) {
            buf_free(&word);
            return out_error(out, "order: more groups than candidates");
        }
        int n = order_group(word.data, pr->k, groups[ng], seen, out);
        if (n < 0) {
            buf_free(&word);
            return -1;
        }
        if (n) sizes[ng++] = n;
    }
    buf_free(&word);
    for (int c = 1; c <= pr->k; c++)
        if (!seen[c])
            return out_error(out, "order: candidate %d is missing: name each of the %d candidates once, best first "
                                  "(e.g. order 3 1 2=4)",
                             c, pr->k);
    DbRanking rk = {0};
    rk.prompt = pr->prompt;
    rk.prompt_len = pr->prompt_len;
    rk.annotator = app->annotator;
    rk.note = pr->note;
    rk.k = pr->k;
    for (int g = 0; g < ng; g++)
        for (int j = 0; j < sizes[g]; j++) {
            int c = groups[g][j];
            rk.items[c - 1] = (DbRankItem){c, pr->run_ids[c - 1], g + 1};
        }
    Err e = {{0}};
    Db *db = need_db(app, out);
    if (!db) return -1;
    int64_t id = db_ranking_insert(db, &rk, &e);
    if (id <= 0) return out_error(out, "order: %s (the ranking is still pending)", e.msg);
    JsonW *w = &out->w;
    jw_kint(w, "ranking_id", id);
    jw_key(w, "order");
    jw_arr(w);
    for (int g = 0; g < ng; g++) {
        jw_arr(w);
        for (int j = 0; j < sizes[g]; j++) jw_int(w, groups[g][j]);
        jw_arr_end(w);
    }
    jw_arr_end(w);
    jw_kint(w, "k", pr->k);
    jw_kstr(w, "annotator", app->annotator);
    jw_kstr(w, "note", pr->note);
    app->last_ranking = id;
    buf_printf(&out->text, "ranking %lld stored:", (long long)id);
    for (int g = 0; g < ng; g++) {
        buf_putc(&out->text, ' ');
        for (int j = 0; j < sizes[g]; j++) buf_printf(&out->text, "%s%d", j ? "=" : "", groups[g][j]);
    }
    buf_putc(&out->text, '\n');
    pending_free(pr);
    app->pending = NULL;
    return 0;
}

static int cmd_skip(App *app, const Args *a, Out *out) {
    struct PendingRank *pr = app->pending;
    if (!pr) return out_error(out, "skip: no ranking pending");
    jw_kbool(&out->w, "skipped", true);
    jw_kint(&out->w, "k", pr->k);
    buf_printf(&out->text, "skipped: the %d candidates stay in the run log, no ranking stored\n", pr->k);
    pending_free(pr);
    app->pending = NULL;
    return 0;
}

// note "TEXT": the pending ranking's, else the one order stored last in this session;
// note ranking=ID "TEXT": a stored one's. An empty text removes the note.
static int cmd_note(App *app, const Args *a, Out *out) {
    const Arg *t = args_pos(a, 0);
    if (!t) return out_error(out, "note: which text? usage: note \"TEXT\" or note ranking=ID \"TEXT\"");
    if (memchr(t->val, 0, t->len)) return out_error(out, "note: the text contains a NUL byte");
    const char *which = args_opt(a, "ranking");
    struct PendingRank *pr = app->pending;
    if (!which && pr) {
        free(pr->note);
        pr->note = t->len ? strdup(t->val) : NULL;
        jw_kstr(&out->w, "note", pr->note);
        jw_key(&out->w, "ranking_id");
        jw_null(&out->w);
        buf_puts(&out->text, pr->note ? "note kept for the pending ranking (order stores it)\n"
                                      : "note removed from the pending ranking\n");
        return 0;
    }
    int64_t id = app->last_ranking;
    if (which && id_arg(which, "ranking", &id, out)) return -1;
    if (!id)
        return out_error(out, "note: no ranking pending or stored in this session (note ranking=ID \"TEXT\" "
                              "for a stored one)");
    Db *db = need_db(app, out);
    if (!db) return -1;
    Err e = {{0}};
    int found = db_ranking_set_note(db, id, t->val, &e);
    if (found < 0) return out_error(out, "note: %s", e.msg);
    if (!found) return out_error(out, "note: no ranking %lld in '%s'", (long long)id, db_path(db));
    jw_kstr(&out->w, "note", t->len ? t->val : NULL);
    jw_kint(&out->w, "ranking_id", id);
    if (t->len) {
        buf_printf(&out->text, "note stored with ranking %lld: ", (long long)id);
        text_line(&out->text, t->val, t->len, 4000);
        buf_putc(&out->text, '\n');
    } else {
        buf_printf(&out->text, "note removed from ranking %lld\n", (long long)id);
    }
    return 0;
}

// ---------------------------------------------------------------------------------------
// rankings, show ranking=ID

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

typedef struct {
    Out *out;
    int n;
} RankingsCtx;

static int rankings_row(void *user, const DbRanking *r) {
    RankingsCtx *c = user;
    int best[DB_RANK_MAX];
    best_first(r, best);
    jw_obj(&c->out->w);
    ranking_json(r, best, NULL, &c->out->w);
    jw_obj_end(&c->out->w);
    Buf *t = &c->out->text, order = {0};
    order_text(r, best, &order);
    buf_printf(t, "#%-5lld %.16s %-10.10s k=%d  %-17s \"", (long long)r->id, r->created,
               r->annotator ? r->annotator : "-", r->k, order.data);
    text_line(t, r->prompt, r->prompt_len, 40);
    buf_putc(t, '"');
    if (r->note) {
        buf_puts(t, "  note: ");
        text_line(t, r->note, strlen(r->note), 30);
    }
    buf_putc(t, '\n');
    buf_free(&order);
    c->n++;
    return 0;
}

static int cmd_rankings(App *app, const Args *a, Out *out) {
    long long n = 20;
    const char *text = NULL;
    if (count_text_args(a, "rankings", "rankings", &n, &text, out)) return -1;
    Db *db = need_db(app, out);
    if (!db) return -1;
    DbFilter f = {0};
    filter_opts(a, &f);
    f.text = text;
    Err e = {{0}};
    RankingsCtx c = {out, 0};
    jw_key(&out->w, "rankings");
    jw_arr(&out->w);
    int rc = db_rankings_each(db, &f, (long)n, true, rankings_row, &c, &e);
    jw_arr_end(&out->w);
    if (rc) return out_error(out, "rankings: %s", e.msg);
    if (!c.n) buf_puts(&out->text, "no rankings\n");
    return 0;
}

static int show_ranking(App *app, const char *val, Out *out) {
    int64_t id;
    if (id_arg(val, "ranking", &id, out)) return -1;
    Db *db = need_db(app, out);
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

// ---------------------------------------------------------------------------------------
// export

static int cmd_export(App *app, const Args *a, Out *out) {
    const char *what = args_pos(a, 0)->val, *file = args_pos(a, 1)->val;
    const char *format = args_opt(a, "format");
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
        if (!format) format = "jsonl";
        if (!strcmp(format, "jsonl")) kind = DB_EXPORT_RUNS;
        else if (!strcmp(format, "csv")) kind = DB_EXPORT_RUNS_CSV;
        else return out_error(out, "export runs: format=%.40s: jsonl or csv expected", format);
    } else {
        return out_error(out, "export: '%.40s': pairs, rankings or runs expected", what);
    }
    DbFilter f = {0};
    filter_opts(a, &f);
    if (f.kind && kind != DB_EXPORT_RUNS && kind != DB_EXPORT_RUNS_CSV)
        return out_error(out, "export %s: kind= filters runs only", what);
    Db *db = need_db(app, out);
    if (!db) return -1;
    long count = 0;
    Err e = {{0}};
    if (db_export(db, kind, file, &f, &count, &e)) return out_error(out, "export: %s", e.msg);
    jw_kstr(&out->w, "file", file);
    jw_kint(&out->w, "count", count);
    jw_kstr(&out->w, "what", what);
    jw_kstr(&out->w, "format", format);
    buf_printf(&out->text, "%ld %s written to %s\n", count,
               kind == DB_EXPORT_PAIRS_TRL || kind == DB_EXPORT_PAIRS_HH ? "pairs" : what, file);
    return 0;
}

// ---------------------------------------------------------------------------------------

static const char *const k_none[] = {NULL};
static const char *const k_history[] = {"since", "until", "annotator", "model", "kind", NULL};
static const char *const k_show[] = {"ranking", NULL};
static const char *const k_note[] = {"ranking", NULL};
static const char *const k_rankings[] = {"since", "until", "annotator", "model", NULL};
static const char *const k_rank[] = {"k", "max", "temperature", "top_k", "top_p", "seed", "alts", "truncate", "stop",
                                     NULL};
static const char *const k_order[] = {"1", "2", "3", "4", "5", "6", "7", "8", "9", NULL}; // "2=4" is a tie
static const char *const k_export[] = {"format", "since", "until", "annotator", "model", "kind", NULL};

const Command db_commands[] = {
    {"history", cmd_history, 0, 2, k_history, "history [N] [TEXT] [since=DATE until=DATE annotator=NAME model=M kind=K]",
     "The last N logged runs (default 20), newest first; TEXT keeps runs whose prompt, completion, model, "
     "annotator or kind contains it (any case). Dates are ISO (2024-05-01 or 2024-05-01T12:30), UTC, inclusive. "
     "JSON: runs: [{run_id, created, kind, model, annotator, prompt, text, seed, temperature, n_tokens, "
     "stop_reason}].",
     false},
    {"show", cmd_show, 0, 1, k_show, "show RUN|ranking=ID",
     "Everything recorded about a run. JSON: run_id, created, kind, parent_id, annotator, qkv_version, threads, "
     "model_path, model_arch, model_sha256, prompt, template, mode, exemplars, temperature, top_k, top_p, seed, "
     "max_tokens, n_alts, stop_at_eos, truncate, prompt_ids, n_truncated, text, ids, logprobs, alts, prefill_s, "
     "decode_s, stop_reason. show ranking=ID shows a stored ranking instead: its candidates best first with "
     "their completions. JSON: ranking_id, created, annotator, note, qkv_version, prompt, k, order, "
     "candidates: [{n, run_id, rank, text}].",
     false},
    {"replay", cmd_replay, 1, 1, k_none, "replay RUN",
     "Run RUN again: the same model file (loaded when another is current), prompt tokens, decoding parameters, "
     "seed and thread count; the replay is logged as a run of kind replay. JSON: identical, first_difference "
     "(index of the first differing generated token, null when identical), replay_of, original_text, threads, "
     "model_changed, and generate's fields (run_id, text, ids, logprobs, ...).",
     false},
    {"rank", cmd_rank, 1, 1, k_rank, "rank \"PROMPT\" k=K [max=N temperature=T top_k=K top_p=P seed=S alts=N]",
     "Generate K (2..9) candidate completions of PROMPT for a person to rank, each a logged run. With seed=S "
     "candidate i uses seed S+i-1, else each gets a fresh random seed (recorded). Finish with order, or skip; "
     "note adds a comment. JSON: ranking_pending, prompt, k, candidates: [{n, run_id, seed, text}].",
     true},
    {"order", cmd_order, 0, DB_RANK_MAX, k_order, "order 3 1 2=4",
     "Rank the pending candidates best first; '=' joins tied candidates (order 3 1 2=4: 3 best, then 1, then 2 "
     "and 4 tied). Every candidate must be named once. The ranking is stored whole, with the annotator and the "
     "note. JSON: ranking_id, order (groups best first), k, annotator, note.",
     false},
    {"skip", cmd_skip, 0, 0, k_none, "skip",
     "Drop the pending ranking: nothing is stored (the candidates stay in the run log). JSON: skipped, k.", false},
    {"note", cmd_note, 0, 1, k_note, "note \"TEXT\" | note ranking=ID \"TEXT\"",
     "Attach a note to the pending ranking (order stores it), or, when none is pending, to the ranking order "
     "stored last in this session; ranking=ID names any stored ranking. The note replaces an earlier one; "
     "\"\" removes it. JSON: note, ranking_id (null while the ranking is pending).",
     false},
    {"rankings", cmd_rankings, 0, 2, k_rankings, "rankings [N] [TEXT] [since=DATE until=DATE annotator=NAME model=M]",
     "The last N stored rankings (default 20), newest first; TEXT keeps rankings whose prompt, annotator or note "
     "contains it (any case); model keeps those with a candidate of that model (path substring or sha256 prefix). "
     "show ranking=ID shows one with its completions. JSON: rankings: [{ranking_id, created, annotator, note, "
     "prompt, k, order (groups of candidate numbers best first, as order answers), candidates: [{n, run_id, "
     "rank}] (best first)}].",
     false},
    {"export", cmd_export, 2, 2, k_export,
     "export pairs|rankings|runs FILE [format=trl|hh|jsonl|csv since=DATE until=DATE annotator=NAME model=M]",
     "Write training data, replacing FILE atomically. pairs: every preference pair of each ranking (ties give "
     "none), format=trl {prompt, chosen, rejected, margin} (margin = rank difference) or format=hh {chosen, "
     "rejected} as \"\\n\\nHuman: ...\\n\\nAssistant: ...\" transcripts. rankings: one line per ranking "
     "{ranking_id, created, annotator, note, qkv_version, prompt, k, order, candidates: [{n, rank, run}]} with "
     "each run's full record. runs: JSON Lines (or format=csv) with show's fields. Filters: since/until (ISO "
     "dates, UTC, inclusive), annotator, model (path substring or sha256 prefix; for rankings, any candidate's), "
     "kind (runs). JSON: file, count, what, format.",
     false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
