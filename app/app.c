// app.c - application state: the current model, its evaluation context, generation.
#include "app.h"
#include "db.h"
#include "front.h"

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

void app_done(App *app) {
    ctx_free(app->ctx);
    model_free(app->model);
    tok_free(app->tok_owned);
    db_close(app->db);
    free(app->db_path);
    free(app->annotator);
    memset(app, 0, sizeof *app);
}
