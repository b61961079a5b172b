// session.h - the state every front end shares: the model and its evaluation context,
// decoding defaults, the database, the ranking waiting for `order`, the last figure shown.
// It knows no command: the command layer (lang.h, cmd_*.c) works on it.
#pragma once
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "eval/forward.h"
#include "eval/generate.h"
#include "model/model.h"

typedef struct Db Db;

enum { RANK_MAX_CANDIDATES = 9 };

// The ranking waiting for `order`: K logged candidate runs of one prompt.
typedef struct PendingRank {
    char *prompt;
    size_t prompt_len;
    int k;
    int64_t run_ids[RANK_MAX_CANDIDATES];
    char *note;
} PendingRank;

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
    PendingRank *pending;  // the ranking between `rank` and `order`, or NULL
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

// Log a finished generation as a run; returns its id (> 0), or 0 with e filled when the
// database could not take it (the caller reports that without failing the generation).
int64_t app_log_run(App *app, const char *prompt, size_t prompt_len, const GenParams *p,
                    const GenResult *r, const char *text, size_t text_len, Err *e);

// The database of app, opened (and created or migrated) on first use from app->db_path,
// else QKV_DB, else $XDG_DATA_HOME/qkv/qkv.db. NULL with e filled when it cannot be used;
// the next call tries again.
Db *app_db(App *app, Err *e);
// True while a ranking started with `rank` waits for `order` or `skip` (the TUI asks
// before quitting).
bool app_rank_pending(const App *app);
// Drop the pending ranking (nothing is stored: a ranking is stored whole or not at all).
// warn: say on stderr that one was dropped.
void app_rank_drop(App *app, bool warn);
// Release everything the App holds (a pending ranking is dropped with a warning).
void app_done(App *app);
