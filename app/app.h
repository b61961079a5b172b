// app.h - the state shared by every front end: model, settings, database.
#pragma once
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "forward.h"
#include "generate.h"
#include "model.h"

typedef struct Db Db;

typedef struct App {
    Model *model;          // the current model (never NULL after app_init)
    Tokenizer *tok;        // the model's tokenizer, or one given by --tokenizer
    Tokenizer *tok_owned;  // set when tok was loaded alone
    Ctx *ctx;              // created on first use for the current model
    int n_threads;
    GenParams gen;         // decoding defaults (`set KEY VALUE`)
    bool json;             // --json
    char *db_path;         // --db / QKV_DB / default (NULL until resolved)
    Db *db;                // opened on first use
    char *annotator;       // --annotator / QKV_ANNOTATOR / set annotator
    volatile sig_atomic_t *cancel; // set by SIGINT handlers of the front end
} App;

// Load (or replace) the current model; on failure the previous one stays.
int app_load_model(App *app, const char *path, const char *tok_path, Err *e);
// The evaluation context of the current model, created on first use.
Ctx *app_ctx(App *app, Err *e);

// Log a finished generation as a run; returns its id (> 0), or 0 with e filled when the
// database could not take it (the caller reports that without failing the generation).
int64_t app_log_run(App *app, const char *prompt, size_t prompt_len, const GenParams *p,
                    const GenResult *r, const char *text, size_t text_len, Err *e);
