// session.c - the session every front end shares: the current model and its evaluation
// context, generation with logging, the database opened on first use, the pending ranking,
// the last figure.
#include "session.h"

#include "db.h"
#include "kern/pool.h"
#include "runlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int app_load_model(App *app, const char *path, const char *tok_path, Err *e) {
    Model *m = path ? model_open(path, tok_path, e) : model_builtin(e);
    if (!m) return -1;
    if (!path && tok_path) {
        // the built-in model keeps its own byte-level tokenizer; --tokenizer applies to
        // tokenize alone (see app->tok)
    }
    ctx_free(app->ctx);
    app->ctx = NULL;
    model_free(app->model);
    app->model = m;
    if (!app->tok_owned) app->tok = m->tok;
    return 0;
}

Ctx *app_ctx(App *app, Err *e) {
    if (!app->ctx) app->ctx = ctx_new(app->model, app->n_threads, e);
    return app->ctx;
}

int app_generate(App *app, const char *prompt, size_t prompt_len, const GenParams *p, GenResult *r, Buf *text,
                 int64_t *run_id, Err *log_err, Err *e) {
    memset(r, 0, sizeof *r);
    *run_id = 0;
    Ctx *c = app_ctx(app, e);
    if (!c) return -1;
    const Tokenizer *tok = app->model->tok;
    IntVec ids = {0};
    if (prompt_len == 0) {
        int bos = tok_bos(tok);
        if (bos < 0) return err_set(e, "empty prompt and the tokenizer has no beginning-of-text token");
        iv_push(&ids, bos);
    } else if (tok_encode(tok, prompt, prompt_len, TOK_ADD_SPECIAL | TOK_PARSE_SPECIAL, &ids, e) < 0) {
        iv_free(&ids);
        return -1;
    }
    int rc = app_generate_ids(app, ids.v, ids.n, p, r, text, e);
    iv_free(&ids);
    if (rc) return -1;
    *run_id = app_log_run(app, prompt, prompt_len, p, r, text->data ? text->data : "", text->len, log_err);
    return 0;
}

int app_generate_ids(App *app, const int *ids, int n, const GenParams *p, GenResult *r, Buf *text, Err *e) {
    Ctx *c = app_ctx(app, e);
    if (!c) return -1;
    if (app->cancel) *app->cancel = 0;
    if (generate(c, app->model->tok, ids, n, p, app->on_step, app->on_step_user, app->cancel, NULL, r, e)) {
        gen_result_free(r);
        return -1;
    }
    buf_clear(text);
    tok_decode(app->model->tok, r->ids.v, r->ids.n, text);
    return 0;
}

void figure_free(Figure *f) {
    for (int i = 0; f->row_labels && i < f->rows; i++) free(f->row_labels[i]);
    for (int i = 0; f->col_labels && i < f->cols; i++) free(f->col_labels[i]);
    free(f->row_labels);
    free(f->col_labels);
    free(f->v);
    memset(f, 0, sizeof *f);
}

static char **copy_labels(const char *const *l, int n) {
    if (!l) return NULL;
    char **c = calloc((size_t)n, sizeof *c);
    for (int i = 0; c && i < n; i++) c[i] = strdup(l[i] ? l[i] : "");
    return c;
}

void app_set_figure(App *app, const float *v, int rows, int cols, const char *const *row_labels,
                    const char *const *col_labels, bool diverging, const char *title) {
    figure_free(&app->fig);
    Figure *f = &app->fig;
    f->v = malloc(sizeof(float) * (size_t)rows * (size_t)cols);
    if (!f->v) return;
    memcpy(f->v, v, sizeof(float) * (size_t)rows * (size_t)cols);
    f->rows = rows;
    f->cols = cols;
    f->row_labels = copy_labels(row_labels, rows);
    f->col_labels = copy_labels(col_labels, cols);
    f->diverging = diverging;
    snprintf(f->title, sizeof f->title, "%s", title ? title : "");
}

Db *app_db(App *app, Err *e) {
    if (app->db) return app->db;
    if (!app->db_path) {
        app->db_path = db_resolve_path(NULL, e);
        if (!app->db_path) return NULL;
    }
    if (db_open(app->db_path, 0, &app->db, e)) app->db = NULL;
    return app->db;
}

int64_t app_log_run(App *app, const char *prompt, size_t prompt_len, const GenParams *p, const GenResult *r,
                    const char *text, size_t text_len, Err *e) {
    Db *db = app_db(app, e);
    if (!db) return 0;
    RunOrigin o = {app->model, app->annotator, app->ctx ? ctx_threads(app->ctx) : app->n_threads > 0 ? app->n_threads : pool_cpus(),
                   NULL};
    RunRecord rr;
    runlog_record(&rr, &o, prompt, prompt_len, p, r, text, text_len);
    int64_t id = runlog_insert(db, &rr, app->model, e);
    runlog_record_done(&rr);
    return id;
}

bool app_rank_pending(const App *app) { return app->pending != NULL; }

void app_rank_drop(App *app, bool warn) {
    PendingRank *p = app->pending;
    if (!p) return;
    if (warn)
        fprintf(stderr, "warning: the ranking of %d candidates (runs %lld..%lld) was not finished with order or "
                        "skip: nothing was stored\n",
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
    ctx_free(app->ctx);
    model_free(app->model);
    tok_free(app->tok_owned);
    free(app->db_path);
    free(app->annotator);
    memset(app, 0, sizeof *app);
}
