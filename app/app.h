// app.h - the state shared by every front end: model, settings, database.
#pragma once
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "eval/forward.h"
#include "eval/generate.h"
#include "model/model.h"

typedef struct Db Db;

// What a heatmap-producing command (attention, pe) or the current TUI view shows: the
// data `save FILE.svg|.csv` exports. Owned by the App.
typedef struct Figure {
    float *v;          // [rows, cols]; NAN = masked
    int rows, cols;
    char **row_labels; // rows strings, or NULL
    char **col_labels; // cols strings, or NULL
    bool diverging;    // signed data (position encodings)
    char title[160];
} Figure;

typedef struct App {
    Model *model;          // the current model (never NULL after app_init)
    Tokenizer *tok;        // the model's tokenizer, or one given by --tokenizer
    Tokenizer *tok_owned;  // set when tok was loaded alone
    Ctx *ctx;              // created on first use for the current model
    int n_threads;
    GenParams gen;         // decoding defaults (`set KEY VALUE`)
    bool seed_set;         // gen.s.seed was fixed with `set seed N`
    bool json;             // --json
    char *db_path;         // --db / QKV_DB / default (NULL until resolved)
    Db *db;                // opened on first use
    struct PendingRank *pending; // the ranking between `rank` and `order` (app/cmd_db.c)
    int64_t last_ranking;  // the ranking `order` stored last in this session (0: none), for `note`
    char *annotator;       // --annotator / QKV_ANNOTATOR / set annotator
    volatile sig_atomic_t *cancel; // set by SIGINT handlers of the front end
    Figure fig;            // the last matrix shown (see Figure)
    GenStepFn on_step;     // streaming of generated tokens (the TUI), or NULL
    void *on_step_user;
    bool quit;             // set by the quit command: the front end runs nothing after it
} App;

// Replace app->fig with a copy of v [rows, cols] and its labels (either may be NULL).
void app_set_figure(App *app, const float *v, int rows, int cols, const char *const *row_labels,
                    const char *const *col_labels, bool diverging, const char *title);
void figure_free(Figure *f);

// Load (or replace) the current model; on failure the previous one stays.
int app_load_model(App *app, const char *path, const char *tok_path, Err *e);
// The evaluation context of the current model, created on first use.
Ctx *app_ctx(App *app, Err *e);

// Tokenize prompt, generate with p, log the run; the completion's text goes to text and
// the run id to *run_id (0 when logging failed: the reason is in log_err). The result
// must be freed with gen_result_free. Used by generate, rank and replay alike.
int app_generate(App *app, const char *prompt, size_t prompt_len, const GenParams *p, GenResult *r,
                 Buf *text, int64_t *run_id, Err *log_err, Err *e);

// Generate from token ids without logging (app_generate logs).
int app_generate_ids(App *app, const int *ids, int n, const GenParams *p, GenResult *r, Buf *text, Err *e);

// Decoding options of a command (max=, temperature=, ...) over the defaults; 0 or -1
// with the message in out. *seed_given tells whether a seed was fixed.
struct Args;
struct Out;
int decode_opts(App *app, const struct Args *a, GenParams *p, bool *seed_given, struct Out *out);
// A fresh random seed (exact as a JSON number).
uint64_t fresh_seed(void);
// The fields of a generation result (run_id, text, ids, logprobs, steps, timings, ...).
void generation_json(App *app, JsonW *w, const GenParams *p, const GenResult *r, const Buf *text, int64_t run_id);

// Log a finished generation as a run; returns its id (> 0), or 0 with e filled when the
// database could not take it (the caller reports that without failing the generation).
int64_t app_log_run(App *app, const char *prompt, size_t prompt_len, const GenParams *p,
                    const GenResult *r, const char *text, size_t text_len, Err *e);
