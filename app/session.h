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
#include "model/quantize.h"
#include "runlog.h"
#include "tok/chat.h"

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

// What a heatmap-producing command (attention, pe), an experiment's table or the current TUI
// view shows: the data `save FILE.svg|.csv` exports. Owned by the App.
enum { FIG_EXTRA_MAX = 4 };
typedef struct Figure {
    float *v;          // [rows, cols]; NAN = masked. Bars: rows values, cols 1
    int rows, cols;
    char **row_labels; // rows strings, or NULL
    char **col_labels; // cols strings, or NULL
    bool diverging;    // signed data (position encodings)
    float *err;        // bars: rows standard errors; NULL for a heatmap
    float *count;      // bars: rows item counts, or NULL
    char title[160];
    char *label_name;  // bars: the CSV's label column (NULL: "condition")
    int n_extra;       // bars: more CSV columns (app_bars_extra), names and [n_extra, rows] values
    char *extra_names[FIG_EXTRA_MAX];
    float *extra;
    // heatmaps: more than one map when grid_rows * grid_cols > 1 (attention layer=all and/or
    // head=all): v then holds the maps [grid_rows, grid_cols, rows, cols], grid row r being
    // layer grid_layer[r], grid column c head grid_head[c]; the labels and title serve all
    int grid_rows, grid_cols;
    int *grid_layer, *grid_head;
} Figure;

// Where a long command stands (an experiment's items), for a progress bar.
typedef struct Progress {
    const char *what;   // "experiment 3"
    const char *detail; // what it works on now ("shots=3 cot=off seed=1, item 17")
    int64_t id;         // the experiment's id
    long done, total;   // units stored so far (resumed ones included) and in all
    double elapsed_s;   // since this command started
    double left_s;      // estimated from this command's pace; NAN until known
    bool finished;      // the last report of the command
    const char *table;  // the table so far as JSON (the fields of an `experiment` result the
                        // Experiments view reads: experiment_id, task, model_path, status,
                        // n_items, n_conditions, n_done, conditions), or NULL
    // a training run (train, reward train): the point of this report when point (loss,
    // held-out loss and pair accuracy; NAN where there is none)
    bool point;
    int step;
    double loss, held_loss, held_acc;
} Progress;

typedef void (*ProgressFn)(void *user, const Progress *p);

// The most threads --threads, set threads and the trainers' threads= take.
#define APP_MAX_THREADS 256

typedef struct App {
    Model *model;          // the current model: NULL until a command that needs one loads it
    Model *original;       // the model as loaded while `model` is a converted copy (quantize), else NULL
    Ctx *orig_ctx;         // original's evaluation context, created on first use
    Tokenizer *tok;        // the model's tokenizer, or one given by --tokenizer
    Tokenizer *tok_owned;  // set when tok was loaded alone
    Ctx *ctx;              // created on first use for the current model
    int n_threads; // 1..APP_MAX_THREADS, 0: the CPUs
    DType kv;              // the KV cache's element type when kv_set (set kv f32|f16|q8_0, --kv)
    bool kv_set;           // false (the default, `set kv auto`): app_kv picks the type by the model
    GenParams gen;         // decoding defaults (`set KEY VALUE`)
    bool seed_set;         // gen.s.seed was fixed with `set seed N`
    bool json;             // --json
    char *db_path;         // --db / QKV_DB / default (NULL until resolved)
    const char *db_named;  // "--db" or "QKV_DB" when one named it (a command that only reads does not create
                           // it), else NULL
    Db *db;                // opened on first use
    PendingRank *pending;  // the ranking between `rank` and `order`, or NULL
    int64_t last_ranking;  // the ranking `order` stored last in this session (0: none), for `note`
    char *annotator;       // --annotator / QKV_ANNOTATOR / set annotator
    char *reward_dir;      // set reward DIR: the reward model that judges (reward score, the Rank view), or NULL
    volatile sig_atomic_t *cancel; // set by SIGINT handlers of the front end
    volatile sig_atomic_t *ended;  // SIGHUP or SIGTERM's number, when one came (main.c): the REPL leaves
    Figure fig;            // the last matrix shown (see Figure)
    unsigned fig_gen;      // counts the figures set (the TUI files each with the view it belongs to)
    unsigned model_serial; // counts the models opened (a replay or an experiment may open another than `load` did)
    GenStepFn on_step;     // streaming of generated tokens (the TUI), or NULL
    const Buf *gen_prompt; // while app_generate_on runs: its prompt text and settings (for on_step)
    const GenParams *gen_params;
    void *on_step_user;
    ProgressFn on_progress; // progress of long commands (the TUI); NULL: a line on stderr
    void *on_progress_user;
    DbWaitFn on_db_wait;   // while another process holds the database (the TUI's status line); NULL: a
    void *on_db_wait_user; // line on stderr. Its return value is ignored: Ctrl-C (cancel) stops the wait
    bool db_wait_told;     // the current wait was reported on stderr
    bool db_wait_cancel0;  // cancel was set when the current wait began
    bool stoppable;        // the running command's evaluations fail on cancel (Command.stoppable)
    bool quit;             // set by the quit command: the front end runs nothing after it
    bool headless;         // -e, --script or stdin not a terminal: long commands report progress on stderr
} App;

// Replace app->fig with a copy of v [rows, cols] and its labels (either may be NULL).
// Returns 0, or -1 when the copy does not fit in memory (then there is no figure).
int app_set_figure(App *app, const float *v, int rows, int cols, const char *const *row_labels,
                   const char *const *col_labels, bool diverging, const char *title);
void figure_free(Figure *f);
// Make app->fig (a heatmap just set) a grid of maps (see Figure): a copy of maps [grid_rows,
// grid_cols, rows, cols] replaces its matrix. Returns 0, or -1 when out of memory (the figure
// then keeps its one map).
int app_figure_grid(App *app, const float *maps, int grid_rows, int grid_cols, const int *layers, const int *heads);
// Name the bars' label column and add n_extra (<= FIG_EXTRA_MAX) columns of rows values each to
// the CSV that `save` writes (after app_set_bars).
void app_bars_extra(App *app, const char *label_name, int n_extra, const char *const *names, const float *values);
// Replace app->fig with bars: n values in [0, 1] with standard errors and counts (either may be
// NULL), one label each.
void app_set_bars(App *app, const float *v, const float *err, const float *count, int n, const char *const *labels,
                  const char *title);

// The model qkv opens when none is named: $QKV_MODEL when set, else the installed pretrained
// chat model DEFAULT_MODEL (./dev models puts SmolLM2-135M-Instruct there), else the built-in
// teaching model TEACH_MODEL (data/models/teach), else "builtin" (untrained).
#define DEFAULT_MODEL "smollm2"
const char *app_default_model(void);
// Load (or replace) the current model: a path, an installed model's name, "builtin" (the
// built-in untrained GPT-2) or NULL (app_default_model); on failure the previous one stays.
int app_load_model(App *app, const char *path, const char *tok_path, Err *e);
// A model opened apart from the session's: a path, an installed model's name or "builtin".
// NULL with e filled.
Model *app_open_model(const char *path, const char *tok_path, Err *e);
// The evaluation context of the current model, created on first use.
Ctx *app_ctx(App *app, Err *e);
// "f32", "f16" or "q8_0" (either case) into *kv; -1 for anything else.
int app_kv_parse(const char *s, DType *kv);
// The session's KV cache setting from "auto", "f32", "f16" or "q8_0" (either case); -1 for
// anything else.
int app_kv_setting(App *app, const char *s);
// 0 when a cache of kv fits m's heads, else -1 with the one message `set kv`, `load` and
// --model give (Q8_0 needs heads of a multiple of 32 values).
int app_kv_fits(DType kv, const Model *m, Err *e);
// The KV cache's type for a context of m (not NULL): the one set, else (auto) F32 for F32
// weights (logits exact against the references) and F16 for every other type: F16 and BF16
// weights (the cache no finer than the weights, as HF keeps it for a model loaded in its own
// type; BF16's own rounding is 8 times F16's) and block types (Q8_0, Q4_*, Q6_K, int8: their
// rounding dwarfs F16's). Half the cache is half the bytes attention reads a token.
DType app_kv(const App *app, const Model *m);
// "auto" or the type set, as `set` reports it.
const char *app_kv_name(const App *app);
// A context of another thread count or KV cache type for a while (replay: the run's; a resumed
// experiment: its own): when threads (> 0) or kv differ from what the current context has, the
// session's context is dropped and the settings changed, to be rebuilt on next use;
// app_ctx_restore drops that one and puts the settings back.
typedef struct CtxSwitch {
    bool on;
    int threads;
    DType kv;
    bool kv_set;
} CtxSwitch;
void app_ctx_switch(App *app, int threads, DType kv, CtxSwitch *s);
void app_ctx_restore(App *app, CtxSwitch *s);
// Make the current model the loaded one's matrices converted to dt (model_quantize; from
// the model as loaded, however often this runs), keeping the loaded one for `compare`; dt
// DT_F32 goes back to the loaded one. 0 (rep filled unless DT_F32), or -1 with e filled and
// the current model unchanged.
int app_quantize(App *app, DType dt, bool embed, QuantReport *rep, Err *e);
// Make the current model what a run's model_arch records: "... (quantize TYPE[ embed=true])"
// converts the loaded model so, anything else goes back to the model as loaded. 0 or -1.
int app_quantize_as(App *app, const char *model_arch, Err *e);
// The evaluation context of the model as loaded while the current one is converted, else NULL.
Ctx *app_orig_ctx(App *app, Err *e);
// Drop both evaluation contexts (the current model's and the original's): the next use builds
// them again, empty, with the session's threads and KV cache type (after `set threads` or `set kv`).
void app_drop_contexts(App *app);

// A finished generation and the run the log recorded of it.
typedef struct Generation {
    GenResult r;
    Buf text;      // the completion
    Buf prompt;    // the prompt as the run records it (decoded when it was given as ids)
    RunRecord rec; // the run: rec.run.id > 0 once logged, 0 when logging failed (log_err says why)
    Err log_err;
} Generation;

// Generate from prompt text (tokenized as the model does; "" starts from the
// beginning-of-text token) or, when ids is non-NULL, from ids[n_ids]; then log the run with
// origin kind ("generate" when NULL) and parent run (0: none). chat: the chat template the
// prompt was rendered with (tok_chat_render: encoded without added BOS/EOS, logged as the run's
// template "chat:KIND"), or TOK_CHAT_NONE. Returns 0 (g filled; free it with generation_free;
// the run may be unlogged, see g->log_err), or -1 with e filled.
int app_generate(App *app, const char *prompt, size_t prompt_len, const int *ids, int n_ids, const GenParams *p,
                 TokChatKind chat, const char *kind, int64_t parent, Generation *g, Err *e);
// app_generate with model m and its context c (a model opened apart from the session's), the
// run logged under m.
int app_generate_on(App *app, const Model *m, Ctx *c, const char *prompt, size_t prompt_len, const int *ids, int n_ids,
                    const GenParams *p, TokChatKind chat, const char *kind, int64_t parent, Generation *g, Err *e);
// The run log's template name of a prompt rendered with chat template kind ("chat:chatml", ...),
// NULL for TOK_CHAT_NONE; and back (TOK_CHAT_NONE for any other name or NULL).
const char *chat_template_name(TokChatKind kind);
TokChatKind chat_template_kind(const char *name);
void generation_free(Generation *g);

// The database of app, opened (and created or migrated) on first use from app->db_path,
// else QKV_DB, else $XDG_DATA_HOME/qkv/qkv.db. NULL with e filled when it cannot be used;
// the next call tries again.
Db *app_db(App *app, Err *e);
// app_db for a command that only reads the database (show, export ...): a database named by
// --db or QKV_DB that does not exist is an error (app_db_absent_msg), not a new empty file (a
// mistyped name exported 0 bytes, successfully). The default one is created as by app_db: on a
// fresh machine there is nothing logged yet, which an empty answer says.
Db *app_db_read(App *app, Err *e);
// Whether the database --db or QKV_DB names does not exist (and is not open); its message in e.
bool app_db_absent(const App *app);
void app_db_absent_msg(const App *app, Err *e);
// The session's database file (app->db_path, else the default's name) made one no atomic write
// may replace (fs_protect), whether or not it is open or exists yet. main calls it at start.
void app_protect_db(App *app);
// After a command: its contexts no longer stop on cancel.
void app_stoppable_done(App *app);
// True while a ranking started with `rank` waits for `order` or `skip` (the TUI asks
// before quitting).
bool app_rank_pending(const App *app);
// Drop the pending ranking (nothing is stored: a ranking is stored whole or not at all).
// warn: say on stderr that one was dropped.
void app_rank_drop(App *app, bool warn);
// Report progress: to app->on_progress, or on stderr (a line redrawn in place on a terminal,
// else one line per tenth of the work).
void app_progress(App *app, const Progress *p);
// Release everything the App holds (a pending ranking is dropped with a warning).
void app_done(App *app);

// The case folding of the database's text filters (db_set_fold): every code point in Unicode's
// lower case (uni_tolower), ill-formed bytes kept as they are.
void app_text_fold(const char *s, size_t n, Buf *out);
