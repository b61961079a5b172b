// session.c - the session every front end shares: the current model and its evaluation
// context, generation with logging, the database opened on first use, the pending ranking,
// the last figure.
#include "session.h"

#include "base/clock.h"
#include "base/fs.h"
#include "db.h"
#include "base/mem.h"
#include "kern/blocks.h"
#include "kern/pool.h"
#include "models.h"
#include "runlog.h"
#include "base/utf8.h"
#include "tok/unicode_norm.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

const char *app_default_model(void) {
    const char *env = getenv("QKV_MODEL");
    if (env && *env) return env;
    char *p = models_find(DEFAULT_MODEL);
    bool installed = p != NULL;
    free(p);
    if (installed) return DEFAULT_MODEL;
    p = models_teach_dir();
    bool teach = p != NULL;
    free(p);
    return teach ? TEACH_MODEL : "builtin";
}

// Free the current model, its contexts and the loaded one it was converted from.
static void drop_models(App *app) {
    ctx_free(app->ctx);
    model_free(app->model); // before the model it borrows from
    ctx_free(app->orig_ctx);
    model_free(app->original);
    app->ctx = app->orig_ctx = NULL;
    app->model = app->original = NULL;
}

Model *app_open_model(const char *path, const char *tok_path, Err *e) {
    bool builtin = !strcmp(path, "builtin");
    char *named = builtin ? NULL : models_find(path); // an installed model's name
    Model *m = builtin ? model_builtin(e) : model_open(named ? named : path, tok_path, e);
    if (!m && !builtin && !named && !strchr(path, '/') && !fs_present(path)) { // a name that is none
        char *dir = models_dir();
        size_t n = strlen(e->msg);
        snprintf(e->msg + n, sizeof e->msg - n, " (nor an installed model in %s: `models` lists them)",
                 dir ? dir : "$XDG_DATA_HOME/qkv/models");
        free(dir);
    }
    if (m && named) { // called by its name, wherever it lies
        free(m->name);
        m->name = xstrdup(path);
    }
    free(named);
    return m;
}

int app_load_model(App *app, const char *path, const char *tok_path, Err *e) {
    // the default: where it came from is said when it cannot be opened ($QKV_MODEL's typo
    // read as a missing file of nobody's naming)
    const char *env = getenv("QKV_MODEL");
    bool from_env = !path && env && *env;
    if (!path) path = app_default_model();
    if (tok_path && !strcmp(path, "builtin")) // its ids would not be the model's (--tokenizer, load's tokenizer=)
        return err_set(e, "load builtin: the built-in model has its own byte-level tokenizer (a tokenizer does not "
                          "apply to it)");
    Model *m = app_open_model(path, tok_path, e);
    if (!m) {
        if (from_env) {
            size_t n = strlen(e->msg);
            snprintf(e->msg + n, sizeof e->msg - n, " (the model QKV_MODEL names: check it, or unset it for the default)");
        }
        return -1;
    }
    if (app->kv_set && app_kv_fits(app->kv, m, e)) { // refused now, not at its first command
        model_free(m);
        return -1;
    }
    drop_models(app);
    app->model = m;
    app->model_serial++;
    if (!app->tok_owned) app->tok = m->tok;
    return 0;
}

Ctx *app_ctx(App *app, Err *e) {
    if (!app->ctx) app->ctx = ctx_new_kv(app->model, app->n_threads, app_kv(app, app->model), e);
    if (app->ctx) ctx_set_stop(app->ctx, app->stoppable ? app->cancel : NULL);
    return app->ctx;
}

void app_stoppable_done(App *app) {
    app->stoppable = false;
    if (app->ctx) ctx_set_stop(app->ctx, NULL);
    if (app->orig_ctx) ctx_set_stop(app->orig_ctx, NULL);
}

int app_kv_parse(const char *s, DType *kv) {
    if (!strcasecmp(s, "f32")) *kv = DT_F32;
    else if (!strcasecmp(s, "f16")) *kv = DT_F16;
    else if (!strcasecmp(s, "q8_0")) *kv = DT_Q8_0;
    else return -1;
    return 0;
}

int app_kv_setting(App *app, const char *s) {
    if (!strcasecmp(s, "auto")) {
        app->kv_set = false;
        return 0;
    }
    if (app_kv_parse(s, &app->kv)) return -1;
    app->kv_set = true;
    return 0;
}

void app_ctx_switch(App *app, int threads, DType kv, CtxSwitch *s) {
    int cur_threads = app->ctx ? ctx_threads(app->ctx) : app->n_threads;
    DType cur_kv = app->ctx ? ctx_kv(app->ctx) : app_kv(app, app->model);
    *s = (CtxSwitch){(threads > 0 && threads != cur_threads) || kv != cur_kv, app->n_threads, app->kv, app->kv_set};
    if (!s->on) return;
    ctx_free(app->ctx);
    app->ctx = NULL;
    if (threads > 0) app->n_threads = threads;
    app->kv = kv;
    app->kv_set = true;
}

void app_ctx_restore(App *app, CtxSwitch *s) {
    if (!s->on) return;
    ctx_free(app->ctx);
    app->ctx = NULL;
    app->n_threads = s->threads;
    app->kv = s->kv;
    app->kv_set = s->kv_set;
    s->on = false;
}

int app_kv_fits(DType kv, const Model *m, Err *e) {
    if (kv != DT_Q8_0 || m->cfg.head_dim % QK == 0) return 0;
    return err_set(e, "the Q8_0 KV cache needs heads of a multiple of %d values; this model's have %d (set kv f16, "
                      "f32 or auto)", QK, m->cfg.head_dim);
}

DType app_kv(const App *app, const Model *m) {
    if (app->kv_set) return app->kv;
    return m->dtype == DT_F32 ? DT_F32 : DT_F16;
}

const char *app_kv_name(const App *app) {
    return app->kv_set ? runlog_kv_name(app->kv) : "auto";
}

int app_quantize(App *app, DType dt, bool embed, QuantReport *rep, Err *e) {
    Model *base = app->original ? app->original : app->model;
    Model *m = NULL;
    if (dt != DT_F32 && !(m = model_quantize(base, dt, embed, app->cancel, rep, e))) return -1;
    if (app->original) { // drop the previous conversion; the loaded model's context is kept
        ctx_free(app->ctx);
        model_free(app->model);
    } else {
        app->orig_ctx = app->ctx;
    }
    app->ctx = NULL;
    app->model = m ? m : base;
    app->original = m ? base : NULL;
    if (!m) app->ctx = app->orig_ctx, app->orig_ctx = NULL;
    return 0;
}

int app_quantize_as(App *app, const char *model_arch, Err *e) {
    const char *q = model_arch ? strstr(model_arch, "(quantize") : NULL;
    DType dt = DT_F32;
    bool embed = false;
    if (q) {
        q += strlen("(quantize");
        while (*q == ' ') q++;
        size_t n = strcspn(q, " )");
        if (!n || quant_type_find(q, n, &dt)) { // runs logged before the type was named: "gpt2 Q8_0 (quantize)"
            const char *sp = strchr(model_arch, ' ');
            size_t dl = sp ? strcspn(sp + 1, " ") : 0;
            dt = DT_COUNT;
            for (int k = 0; sp && k < DT_COUNT; k++)
                if (strlen(dtype_name((DType)k)) == dl && !strncmp(sp + 1, dtype_name((DType)k), dl)) dt = (DType)k;
            if (dt == DT_COUNT || !quant_type_name(dt))
                return err_set(e, "cannot tell how the model was quantized from '%.80s'", model_arch);
        }
        embed = strstr(q, "embed=true") != NULL;
    }
    const Model *m = app->model;
    if (dt == DT_F32 ? !app->original : app->original && m->quant_dt == dt && m->quant_embed == embed) return 0;
    QuantReport rep;
    if (app_quantize(app, dt, embed, &rep, e)) return -1;
    if (dt != DT_F32) quant_report_free(&rep);
    return 0;
}

void app_drop_contexts(App *app) {
    ctx_free(app->ctx);
    ctx_free(app->orig_ctx);
    app->ctx = app->orig_ctx = NULL;
}

Ctx *app_orig_ctx(App *app, Err *e) {
    if (!app->original) return NULL;
    if (!app->orig_ctx) app->orig_ctx = ctx_new_kv(app->original, app->n_threads, app_kv(app, app->original), e);
    if (app->orig_ctx) ctx_set_stop(app->orig_ctx, app->stoppable ? app->cancel : NULL);
    return app->orig_ctx;
}

static const char *const chat_names[] = {NULL, "chat:chatml", "chat:llama2", "chat:llama3", "chat:mistral"};

const char *chat_template_name(TokChatKind kind) {
    return kind > 0 && (size_t)kind < sizeof chat_names / sizeof *chat_names ? chat_names[kind] : NULL;
}

TokChatKind chat_template_kind(const char *name) {
    for (size_t k = 1; name && k < sizeof chat_names / sizeof *chat_names; k++)
        if (!strcmp(name, chat_names[k])) return (TokChatKind)k;
    return TOK_CHAT_NONE;
}

int app_generate(App *app, const char *prompt, size_t prompt_len, const int *ids, int n_ids, const GenParams *p,
                 TokChatKind chat, const char *kind, int64_t parent, Generation *g, Err *e) {
    memset(g, 0, sizeof *g);
    Ctx *c = app_ctx(app, e);
    if (!c) return -1;
    return app_generate_on(app, app->model, c, prompt, prompt_len, ids, n_ids, p, chat, kind, parent, g, e);
}

int app_generate_on(App *app, const Model *m, Ctx *c, const char *prompt, size_t prompt_len, const int *ids, int n_ids,
                    const GenParams *p, TokChatKind chat, const char *kind, int64_t parent, Generation *g, Err *e) {
    memset(g, 0, sizeof *g);
    const Tokenizer *tok = m->tok;
    IntVec tokens = {0};
    if (ids) { // the prompt logged: its text when given with the ids (a replay's whole prompt), else theirs
        for (int i = 0; i < n_ids; i++) iv_push(&tokens, ids[i]);
        if (prompt && prompt_len) buf_put(&g->prompt, prompt, prompt_len);
        else tok_decode(tok, ids, n_ids, &g->prompt);
    } else {
        buf_put(&g->prompt, prompt, prompt_len);
        if (prompt_len == 0) {
            int bos = tok_bos(tok);
            if (bos < 0) {
                buf_free(&g->prompt);
                return err_set(e, "empty prompt and the tokenizer has no beginning-of-text token");
            }
            iv_push(&tokens, bos);
        } else if (tok_encode(tok, prompt, prompt_len, chat ? TOK_PARSE_SPECIAL : TOK_ADD_SPECIAL | TOK_PARSE_SPECIAL,
                              &tokens, e) < 0) {
            iv_free(&tokens);
            buf_free(&g->prompt);
            return -1;
        }
    }
    // app->cancel is not cleared here: the front ends clear it before each command, and a Ctrl-C
    // between two generations of one command (rank's candidates, best_of=, a judge's samples) stops it
    app->gen_prompt = &g->prompt, app->gen_params = p;
    int rc = generate(c, tok, tokens.v, tokens.n, p, app->on_step, app->on_step_user, app->cancel, NULL, &g->r, e);
    app->gen_prompt = NULL, app->gen_params = NULL;
    iv_free(&tokens);
    if (rc) {
        gen_result_free(&g->r);
        buf_free(&g->prompt);
        return -1;
    }
    gen_text(tok, &g->r, &g->text);
    RunOrigin o = {m, app->annotator, ctx_threads(c), ctx_kv(c), kind, parent};
    runlog_record(&g->rec, &o, g->prompt.data ? g->prompt.data : "", g->prompt.len, p, &g->r,
                  g->text.data ? g->text.data : "", g->text.len);
    g->rec.run.template_name = chat_template_name(chat);
    Db *db = app_db(app, &g->log_err);
    if (db) runlog_insert(db, &g->rec, m, &g->log_err);
    return 0;
}

void generation_free(Generation *g) {
    gen_result_free(&g->r);
    runlog_record_done(&g->rec);
    buf_free(&g->text);
    buf_free(&g->prompt);
}

void figure_free(Figure *f) {
    for (int i = 0; f->row_labels && i < f->rows; i++) free(f->row_labels[i]);
    for (int i = 0; f->col_labels && i < f->cols; i++) free(f->col_labels[i]);
    free(f->row_labels);
    free(f->col_labels);
    free(f->v);
    free(f->err);
    free(f->count);
    free(f->label_name);
    for (int k = 0; k < f->n_extra; k++) free(f->extra_names[k]);
    free(f->extra);
    free(f->grid_layer);
    free(f->grid_head);
    memset(f, 0, sizeof *f);
}

int app_figure_grid(App *app, const float *maps, int grid_rows, int grid_cols, const int *layers, const int *heads) {
    Figure *f = &app->fig;
    size_t n = mem_mul(mem_mul((size_t)grid_rows, (size_t)grid_cols), mem_mul((size_t)f->rows, (size_t)f->cols));
    float *v = malloc(mem_mul(n, sizeof(float))); // a figure: input-sized (mem.h rule 1)
    if (!v) return -1;
    memcpy(v, maps, n * sizeof(float));
    free(f->v);
    f->v = v;
    f->grid_rows = grid_rows, f->grid_cols = grid_cols;
    f->grid_layer = xmalloc(sizeof(int) * (size_t)grid_rows);
    f->grid_head = xmalloc(sizeof(int) * (size_t)grid_cols);
    memcpy(f->grid_layer, layers, sizeof(int) * (size_t)grid_rows);
    memcpy(f->grid_head, heads, sizeof(int) * (size_t)grid_cols);
    return 0;
}

// A figure's labels, copied; none given: the indices 0, 1, ... (positions and dimensions of a
// position encoding), so that a saved figure has its axes as the screen has them.
static char **copy_labels(const char *const *l, int n) {
    char **c = xcalloc((size_t)n, sizeof *c);
    for (int i = 0; i < n; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        c[i] = xstrdup(l ? (l[i] ? l[i] : "") : num);
    }
    return c;
}

int app_set_figure(App *app, const float *v, int rows, int cols, const char *const *row_labels,
                   const char *const *col_labels, bool diverging, const char *title) {
    figure_free(&app->fig);
    app->fig_gen++;
    Figure *f = &app->fig;
    size_t bytes = mem_mul(mem_mul((size_t)rows, (size_t)cols), sizeof(float));
    f->v = malloc(bytes); // a figure: input-sized (mem.h rule 1)
    if (!f->v) return -1;
    memcpy(f->v, v, bytes);
    f->rows = rows;
    f->cols = cols;
    f->row_labels = copy_labels(row_labels, rows);
    f->col_labels = copy_labels(col_labels, cols);
    f->diverging = diverging;
    snprintf(f->title, sizeof f->title, "%s", title ? title : "");
    return 0;
}

static float *copy_floats(const float *v, int n) {
    if (!v) return NULL;
    float *c = xmalloc(sizeof *c * (size_t)(n ? n : 1));
    memcpy(c, v, sizeof *c * (size_t)n);
    return c;
}

void app_set_bars(App *app, const float *v, const float *err, const float *count, int n, const char *const *labels,
                  const char *title) {
    static const float none = NAN;
    app_set_figure(app, n ? v : &none, n ? n : 1, 1, n ? labels : NULL, NULL, false, title);
    Figure *f = &app->fig;
    f->err = copy_floats(err ? err : NULL, n);
    if (!f->err) { // bars always carry their errors (NAN: none)
        f->err = xmalloc(sizeof *f->err * (size_t)(n ? n : 1));
        for (int i = 0; i < (n ? n : 1); i++) f->err[i] = NAN;
    }
    f->count = copy_floats(count, n);
}

void app_bars_extra(App *app, const char *label_name, int n_extra, const char *const *names, const float *values) {
    Figure *f = &app->fig;
    if (!f->err || n_extra > FIG_EXTRA_MAX) return; // not bars
    f->label_name = label_name ? xstrdup(label_name) : NULL;
    f->extra = copy_floats(values, n_extra * f->rows);
    if (!f->extra) return; // out of memory: the CSV keeps its usual columns
    f->n_extra = n_extra;
    for (int k = 0; k < n_extra; k++) f->extra_names[k] = xstrdup(names[k]);
}

// The database's wait hook (db_open_wait): the front end's (the TUI's status line), else a line on
// stderr after a second. A Ctrl-C pressed during the wait stops it; one from before it began (a
// generation stopped, its run being logged) does not.
static bool app_db_wait(void *user, const char *path, double waited) {
    App *app = user;
    bool cancel = app->cancel && *app->cancel;
    if (waited == 0) {
        app->db_wait_told = false;
        app->db_wait_cancel0 = cancel;
    }
    if (app->on_db_wait) {
        app->on_db_wait(app->on_db_wait_user, path, waited);
    } else if (waited >= 1 && !app->db_wait_told) {
        fprintf(stderr, "waiting for the database '%s': another process is writing to it (up to a minute; Ctrl-C "
                        "stops waiting)\n", path);
        fflush(stderr);
        app->db_wait_told = true;
    }
    return !(cancel && !app->db_wait_cancel0);
}

void app_protect_db(App *app) {
    if (!app->db_path) app->db_path = db_resolve_path(NULL, NULL); // its name only: nothing is created
    // from the start, not once opened: a command that writes a file before any opens the
    // database (export gguf) was given its name and replaced it
    if (app->db_path) fs_protect(app->db_path, "qkv's database (its runs, rankings and experiments)");
}

Db *app_db(App *app, Err *e) {
    if (app->db) return app->db;
    if (!app->db_path) {
        app->db_path = db_resolve_path(NULL, e);
        if (!app->db_path) return NULL;
    }
    DbWait w = {app_db_wait, app};
    if (db_open_wait(app->db_path, 0, &w, &app->db, e)) app->db = NULL;
    if (app->db) app_protect_db(app), db_set_stop(app->db, app->cancel);
    return app->db;
}

bool app_db_absent(const App *app) {
    struct stat st;
    return !app->db && app->db_named && app->db_path && stat(app->db_path, &st) && errno == ENOENT;
}

void app_db_absent_msg(const App *app, Err *e) {
    err_set(e, "no database at '%s': nothing has been logged there (the first run, ranking or experiment creates it); "
               "check the name %s gives",
            app->db_path, app->db_named);
}

Db *app_db_read(App *app, Err *e) {
    if (app_db_absent(app)) {
        app_db_absent_msg(app, e);
        return NULL;
    }
    return app_db(app, e);
}

void app_progress(App *app, const Progress *p) {
    if (app->on_progress) {
        app->on_progress(app->on_progress_user, p);
        return;
    }
    static int last_tenth = -1;
    static long last_done = -1;
    bool tty = isatty(STDERR_FILENO);
    int tenth = p->total ? (int)(10 * p->done / p->total) : 10;
    if (!tty && !p->finished && tenth == last_tenth) return;
    bool repeat = !tty && p->finished && p->done == last_done; // the last line said it already
    last_tenth = p->finished ? -1 : tenth;
    last_done = p->finished ? -1 : p->done;
    if (repeat) return;
    // the time left; at the end, a command that stopped short (Ctrl-C, an error) says so rather
    // than "0:00 left" (which read as finished)
    char left[48] = "? left", took[32];
    if (p->finished) snprintf(left, sizeof left, "%s", p->done < p->total ? "stopped" : "0:00 left");
    else if (p->left_s == p->left_s) {
        char d[32];
        clock_fmt_duration(p->left_s, d, sizeof d);
        snprintf(left, sizeof left, "%s left", d);
    }
    clock_fmt_duration(p->elapsed_s, took, sizeof took);
    int pct = p->total ? (int)(100 * p->done / p->total) : 100;
    if (tty) {
        char bar[21];
        int full = pct / 5;
        for (int i = 0; i < 20; i++) bar[i] = i < full ? '#' : '.';
        bar[20] = 0;
        fprintf(stderr, "\r\033[K%s [%s] %ld/%ld (%d%%), %s, %s", p->what, bar, p->done, p->total, pct, took, left);
        if (p->finished) fputc('\n', stderr);
    } else {
        fprintf(stderr, "%s: %ld/%ld (%d%%) after %s, %s\n", p->what, p->done, p->total, pct, took, left);
    }
    fflush(stderr);
}

bool app_rank_pending(const App *app) { return app->pending != NULL; }

void app_rank_drop(App *app, bool warn) {
    PendingRank *p = app->pending;
    if (!p) return;
    if (warn)
        fprintf(stderr, "warning: the ranking of %d candidates was not finished with order or skip: no ranking "
                        "was stored (the candidates stay in the run log as runs %lld..%lld)\n",
                p->k, (long long)p->run_ids[0], (long long)p->run_ids[p->k - 1]);
    free(p->prompt);
    free(p->note);
    free(p);
    app->pending = NULL;
}

void app_done(App *app) {
    figure_free(&app->fig);
    app_rank_drop(app, true);
    db_close(app->db);
    fs_unprotect_all();
    drop_models(app);
    tok_free(app->tok_owned);
    free(app->db_path);
    free(app->annotator);
    free(app->reward_dir);
    memset(app, 0, sizeof *app);
}

void app_text_fold(const char *s, size_t n, Buf *out) {
    buf_clear(out);
    for (size_t i = 0; i < n;) {
        uint32_t cp, lo[3];
        int k = utf8_decode(s + i, n - i, &cp);
        if (cp == 0xFFFD && (k != 3 || memcmp(s + i, "\xef\xbf\xbd", 3))) { // ill-formed: its bytes as they are
            buf_put(out, s + i, (size_t)k);
        } else {
            int m = uni_tolower(cp, lo);
            for (int j = 0; j < m; j++) {
                char u[4];
                buf_put(out, u, (size_t)utf8_encode(lo[j], u));
            }
        }
        i += (size_t)k;
    }
}
