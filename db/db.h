// db.h - qkv's data store: the run log, human rankings and their exports, in one SQLite
// file (WAL, foreign keys, versioned schema). This header exposes rows as plain structs;
// no SQLite type leaks out. Every function that can fail returns a negative status and
// fills the caller's Err with a message naming the file and what failed.
#pragma once
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

typedef struct Db Db;

enum {
    DB_RANK_MIN = 2, // candidates per ranking
    DB_RANK_MAX = 9,
};

// Flags for db_open.
enum {
    DB_OPEN_READONLY = 1, // never write (no migration, no journal-mode change)
};

// ---- the file (db.c) ----------------------------------------------------------------

// The database file to use: path when non-NULL, else $QKV_DB, else
// $XDG_DATA_HOME/qkv/qkv.db (~/.local/share/qkv/qkv.db). Returns a malloc'd string, or
// NULL with e filled when no home directory is known.
char *db_resolve_path(const char *path, Err *e);
// Open (creating it and its directory when missing) and migrate the database at path.
// A file that is not a qkv database, or one written by a newer qkv, is refused before
// anything is written to it. Returns 0 with *out set, or -1 with e filled.
int db_open(const char *path, unsigned flags, Db **out, Err *e);
// While another process holds the database's write lock, qkv waits for it (up to a minute)
// and calls fn every few milliseconds with how long it has waited so far (0 on the first call
// of each wait): a front end shows it and reads Ctrl-C. fn returning false stops the wait: the
// write fails at once with "stopped waiting". fn must not use the database.
typedef bool (*DbWaitFn)(void *user, const char *path, double waited_s);
typedef struct DbWait {
    DbWaitFn fn;
    void *user;
} DbWait;
// db_open with a wait hook (wait may be NULL).
int db_open_wait(const char *path, unsigned flags, const DbWait *wait, Db **out, Err *e);
void db_close(Db *db);
// The flag exports watch: once *stop is non-zero (Ctrl-C), an export stops at its next record,
// removes its temporary file (the previous file stays) and fails with "interrupted". NULL, the
// default: never.
void db_set_stop(Db *db, volatile sig_atomic_t *stop);
const char *db_path(const Db *db);
// True when the file could only be opened for reading.
bool db_readonly(const Db *db);
// The schema version this qkv writes (the number of migrations in schema.sql).
int db_schema_version(void);
// Group writes into one transaction (for bulk logging): db_begin, writes, db_commit.
// Writes made outside such a pair commit one by one. db_rollback discards.
int db_begin(Db *db, Err *e);
int db_commit(Db *db, Err *e);
void db_rollback(Db *db);
// Run PRAGMA integrity_check and foreign_key_check; 0 when both find nothing, else -1
// with the first problem in e.
int db_check(Db *db, Err *e);
// The current time as stored: UTC 'YYYY-MM-DDTHH:MM:SS.mmmZ' (24 chars + NUL).
void db_now(char out[32]);
// Normalise an ISO 8601 date or time given by a user ('2024-05-01', '2024-05-01T12:30',
// '2024-05-01 12:30:05Z', ...; read as UTC) to the stored form. end: fill omitted parts
// with their largest value, so that the bound is inclusive. Returns 0 or -1 with e.
int db_time_parse(const char *in, bool end, char out[32], Err *e);

// The cached content hash of a file identified by (absolute path, size, mtime in ns).
// Returns 1 with hex filled, 0 when not cached, -1 on error.
int db_hash_lookup(Db *db, const char *path, int64_t size, int64_t mtime_ns, char hex[65], Err *e);
int db_hash_store(Db *db, const char *path, int64_t size, int64_t mtime_ns, const char *hex, Err *e);

// ---- runs (runs.c) --------------------------------------------------------------------

// One logged generation. For db_run_insert every pointer is borrowed; a DbRun read from
// the database owns its strings until db_run_done. NULL strings are SQL NULL.
typedef struct DbRun {
    int64_t id;
    char created[32];          // set by db_run_insert when empty
    const char *kind;          // "generate" (default when NULL), "rank", "replay", "experiment"
    int64_t parent_id;         // the run this one replays, 0 = none
    const char *annotator;
    const char *qkv_version;   // QKV_VERSION when NULL
    int n_threads;
    const char *kv;            // the KV cache's element type, "f32" (default when NULL) or "f16"
    const char *model_path;    // absolute path, or "builtin"
    const char *model_arch;
    const char *model_sha256;  // hex, NULL when unknown (built-in model)
    const char *prompt;        // the full rendered prompt (prompt_len bytes)
    size_t prompt_len;
    const char *template_name; // prompt experiments; NULL when not used
    const char *mode;
    const char *exemplars;     // JSON array text
    double temperature;
    int top_k;
    double top_p;
    uint64_t seed;
    int max_tokens;
    int n_alts;
    bool stop_at_eos, truncate;
    const char *prompt_ids;    // JSON array of the ids evaluated
    int n_truncated;
    const char *output;        // the completion (output_len bytes)
    size_t output_len;
    const char *ids;           // JSON array of generated ids
    const char *logprobs;      // JSON array, one per generated id
    const char *alts;          // JSON: per step [[id, logprob], ...]; NULL when not recorded
    double prefill_s, decode_s;
    const char *stop_reason;
    char *mem_;                // owned storage of a run read from the database
} DbRun;

// Insert r (in its own transaction unless one is open); sets r->id and r->created.
// Returns the id (> 0), or -1 with e filled.
int64_t db_run_insert(Db *db, DbRun *r, Err *e);
// Read run id into out (free with db_run_done). Returns 1, 0 when there is no such run,
// or -1 with e filled.
int db_run_get(Db *db, int64_t id, DbRun *out, Err *e);
void db_run_done(DbRun *r);
// The run's prompt was rendered by a chat template (generate/rank chat=true, an experiment's
// chat=on: its template is "chat:KIND").
bool db_run_chat(const DbRun *r);
// Record how a run came about after the fact (a rank candidate, a replay of parent).
int db_run_set_origin(Db *db, int64_t id, const char *kind, int64_t parent_id, Err *e);
int64_t db_run_count(Db *db, Err *e);

// Which rows to read. Every field is optional (NULL = any).
typedef struct DbFilter {
    const char *since, *until; // ISO 8601 dates or times, UTC, both bounds inclusive
    const char *annotator;     // exact annotator name
    const char *model;         // a substring of the model path, or a prefix of its sha256
    const char *kind;          // exact run kind
    const char *text;          // a substring (any case: db_set_fold) of a run's prompt, output, model,
                               // annotator or kind; of a ranking's prompt, annotator or note
    size_t text_len;           // its bytes, a NUL among them too (0: up to its first NUL)
} DbFilter;

// How the text filter folds case before it looks for its text (in every process's queries):
// s[n] (any bytes, NUL too) into out, replacing it. The default folds ASCII letters; the
// application gives Unicode's lower case (db/ knows no Unicode tables). NULL: the default.
typedef void (*DbFoldFn)(const char *s, size_t n, Buf *out);
void db_set_fold(DbFoldFn fold);

// Called for each run; the run is borrowed for the call. Return non-zero to stop.
typedef int (*DbRunFn)(void *user, const DbRun *r);
// Visit the runs matching f (NULL = all), newest first when newest_first, at most limit
// of them when limit > 0. Returns 0 (or the callback's non-zero value), -1 with e filled.
int db_runs_each(Db *db, const DbFilter *f, long limit, bool newest_first, DbRunFn fn, void *user,
                 Err *e);

// ---- rankings (rankings.c) -----------------------------------------------------------

typedef struct DbRankItem {
    int n;          // candidate number as shown, 1..k
    int64_t run_id; // the candidate's run
    int rank;       // 1 = best; tied candidates share a rank
} DbRankItem;

// One stored ranking. For insert, pointers are borrowed; read ones are owned until
// db_ranking_done.
typedef struct DbRanking {
    int64_t id;
    char created[32];
    const char *prompt;
    size_t prompt_len;
    const char *annotator;
    const char *note;
    const char *qkv_version; // QKV_VERSION when NULL
    int k;
    DbRankItem items[DB_RANK_MAX]; // k of them, by n
    bool chat; // read: its prompt a chat template rendered (its first candidate's run says so)
    char *mem_;
} DbRanking;

// Store a ranking whole (the row and its k items in one transaction) or not at all.
// Each n from 1 to k must appear once, ranks must lie in 1..k and every run must exist.
// Returns the id (> 0), or -1 with e filled.
int64_t db_ranking_insert(Db *db, DbRanking *r, Err *e);
// Returns 1 with out filled (free with db_ranking_done), 0 when absent, -1 on error.
int db_ranking_get(Db *db, int64_t id, DbRanking *out, Err *e);
void db_ranking_done(DbRanking *r);
int64_t db_ranking_count(Db *db, Err *e);
// Replace the note of stored ranking id (note NULL or "" removes it), in one transaction.
// Returns 1, 0 when there is no such ranking, or -1 with e filled.
int db_ranking_set_note(Db *db, int64_t id, const char *note, Err *e);

// Called for each ranking; the ranking is borrowed for the call. Return non-zero to stop.
typedef int (*DbRankingFn)(void *user, const DbRanking *r);
// Visit the rankings matching f (NULL = all; since, until and annotator apply to the
// ranking, model to its candidates, text to its prompt, annotator or note; kind is
// ignored), newest first when newest_first, at most limit of them when limit > 0. Each
// is whole, as db_ranking_get reads it. Returns 0 (or the callback's non-zero value), -1
// with e filled.
int db_rankings_each(Db *db, const DbFilter *f, long limit, bool newest_first, DbRankingFn fn, void *user,
                     Err *e);

// ---- experiments (experiments.c) -----------------------------------------------------

// One condition of an experiment (a cell of its matrix).
typedef struct DbCondition {
    int idx;       // 0-based, the order of the table
    int shots;
    bool cot;      // chain of thought
    int samples;   // self-consistency: runs voted per item (1: none)
    bool chat;     // the model's chat template
    uint64_t seed; // chooses the exemplars, seeds the sampling
} DbCondition;

// One experiment. For insert, pointers are borrowed; a read one owns them until
// db_experiment_done.
typedef struct DbExperiment {
    int64_t id;
    char created[32];
    char finished[32];   // "" while unfinished
    // "running", "stopped" (Ctrl-C), "done"; read back, "interrupted" for a running one whose
    // process is gone (killed, crashed, its terminal closed: owner names it, base/proc.h)
    const char *status;
    const char *task, *task_path, *task_sha256;
    const char *model_path, *model_arch, *model_sha256;
    const char *annotator;
    const char *qkv_version; // QKV_VERSION when NULL
    const char *command;     // as typed
    const char *spec;        // JSON: what is needed to run it again
    int n_items;             // test items under each condition
    int n_conditions;
    long n_done;             // items stored, over every condition (read only)
    const char *owner;       // the process running it (read only; NULL when none)
    char *mem_;
} DbExperiment;

// The link of an item's run (for insert, answer is borrowed).
typedef struct DbExpRun {
    int sample;
    int64_t run_id;
    const char *answer;
    int n_reused;
} DbExpRun;

// One scored item under one condition, with its runs.
typedef struct DbExpItem {
    int condition, item;
    const char *input, *target, *answer;
    bool correct;
    int correct_norm;   // multiple choice by length-normalised log-likelihood: 0/1; -1 none
    const char *detail; // JSON text or NULL
    char created[32];   // set by insert when empty
    DbExpRun *runs;
    int n_runs;
    char *mem_;
} DbExpItem;

// An experiment's conditions with their counts, as SQL sums them from the stored items.
typedef struct DbCondStats {
    DbCondition c;
    long n, correct;           // items stored and right
    long n_norm, correct_norm; // items with a length-normalised score, and right by it
} DbCondStats;

// Store an experiment with its n conditions (in one transaction); running (the default status),
// it is this process's (its owner: db_experiment_claim). Returns the id, -1 with e.
int64_t db_experiment_insert(Db *db, DbExperiment *x, const DbCondition *c, int n, Err *e);
// 1 with out filled (free with db_experiment_done), 0 when absent, -1 on error.
int db_experiment_get(Db *db, int64_t id, DbExperiment *out, Err *e);
void db_experiment_done(DbExperiment *x);
// Set the status ("running", "stopped", "done"; done also sets finished, when it is not set
// yet; any but running lets the owner go). 0 or -1.
int db_experiment_set_status(Db *db, int64_t id, const char *status, Err *e);
// Mark experiment id running in this process (its owner), in one write transaction: refused
// (-1 with e naming the process) while another live process runs it; a previous owner that is
// gone (an interrupted experiment) is replaced. 0 or -1.
int db_experiment_claim(Db *db, int64_t id, Err *e);
// The conditions of experiment id with their counts into out[cap], in order. Returns how many
// (0 when there is no such experiment), -1 with e filled.
int db_experiment_stats(Db *db, int64_t id, DbCondStats *out, int cap, Err *e);
// Store a scored item and its run links (runs must already be in the database). Within the
// caller's transaction when one is open (db_begin), so that an item is stored with its runs or
// not at all. Returns 0, 1 when the item is already stored (nothing written), -1 with e.
int db_experiment_item_insert(Db *db, int64_t id, DbExpItem *it, Err *e);
// Called for each item (borrowed for the call, runs included). Return non-zero to stop.
typedef int (*DbExpItemFn)(void *user, const DbExpItem *it);
// Visit the items of experiment id in (condition, item) order; condition and item < 0 mean
// all. Returns 0, the callback's non-zero value, or -1 with e filled.
int db_experiment_items_each(Db *db, int64_t id, int condition, int item, DbExpItemFn fn, void *user, Err *e);
// Called for each experiment (borrowed for the call). Return non-zero to stop.
typedef int (*DbExperimentFn)(void *user, const DbExperiment *x);
// Visit the experiments matching f (NULL = all; text matches the task, command, model or
// status; kind is ignored), newest first when newest_first, at most limit when limit > 0.
int db_experiments_each(Db *db, const DbFilter *f, long limit, bool newest_first, DbExperimentFn fn, void *user,
                        Err *e);

// ---- exports (export.c) --------------------------------------------------------------

typedef enum {
    DB_EXPORT_PAIRS_TRL, // JSONL {prompt, chosen, rejected[, margin]}
    DB_EXPORT_PAIRS_HH,  // JSONL {chosen, rejected}: "\n\nHuman: ...\n\nAssistant: ..." transcripts
    DB_EXPORT_RANKINGS,  // JSONL, one ranking per line with its candidates and provenance
    DB_EXPORT_RUNS,      // JSONL, one run per line
    DB_EXPORT_RUNS_CSV,  // CSV with a header row, the columns of DB_EXPORT_RUNS
} DbExport;

// Write the rows matching f to file atomically (a temporary file in the same directory,
// fsync, rename): the file is either the complete export or untouched. For rankings and
// pairs, since/until/annotator apply to the ranking and model to its candidates (a
// ranking matches when one of its candidates does). *count receives the number of
// records written; *identical (when not NULL) the pairs left out because their chosen and rejected
// would read the same (utf8_same_text: no preference). TRL pairs carry margin = margin x (rank of
// rejected - rank of chosen), the loss's margin as `reward train margin=` applies it (TRL's
// RewardTrainer subtracts a margin column when there is one); with margin 0 the field is left
// out. Returns 0 or -1 with e filled.
int db_export(Db *db, DbExport what, const char *file, const DbFilter *f, double margin, long *count, long *identical,
              Err *e);
typedef enum {
    DB_EXPORT_EXP_JSON,  // one JSON document: experiment, conditions (with accuracy), items with runs
    DB_EXPORT_EXP_JSONL, // one item per line
    DB_EXPORT_EXP_CSV,   // one item per row, with its first run's prompt and completion
} DbExportExp;
// Write experiment id to file atomically; *count receives the items written. 0 or -1 with e.
int db_export_experiment(Db *db, int64_t id, DbExportExp format, const char *file, long *count, Err *e);
// Append an experiment's fields (experiment_id, created, finished, status, task, task_path,
// task_sha256, model_path, model_arch, model_sha256, annotator, qkv_version, command, spec,
// n_items, n_conditions, n_done) to the object open in w.
void db_experiment_json_fields(const DbExperiment *x, JsonW *w);
// Append one condition's row of the table ({condition, shots, cot, samples, chat, seed, n,
// correct, accuracy, stderr, ci_low, ci_high (the 95% Wilson interval, stats_wilson95), and for
// multiple choice accuracy_norm, stderr_norm, ci_low_norm, ci_high_norm}) to w.
void db_cond_stats_json(const DbCondStats *s, JsonW *w);

// Append one run as the JSON object of the runs export.
void db_run_json(const DbRun *r, JsonW *w);
// Append a run's fields to the object open in w: every field (full, as the export and `show`
// give them), or the summary a listing shows (run_id, created, kind, annotator, model_path,
// model_arch, prompt, text, seed, temperature, stop_reason). The one rendering of a run.
void db_run_json_fields(const DbRun *r, JsonW *w, bool full);

// ---- training runs (train.c) ------------------------------------------------------------

// A training run (strings borrowed).
typedef struct DbTrainRun {
    const char *out_path, *data_path, *model_arch;
    int64_t n_params;
    int n_threads;
    const char *options; // JSON object text
} DbTrainRun;

// One optimizer step of a run's loss curve.
typedef struct DbTrainPoint {
    int step;
    double loss, val_loss; // val_loss < 0: not evaluated (NULL)
    double lr, grad_norm;
    int64_t tokens;
    double elapsed_s;
} DbTrainPoint;

// The run id for a run into r->out_path: when start_step > 0 (a resumed run) the latest run
// into that directory, with its points after start_step removed; else (or when there is
// none) a new row. Returns the id (> 0) or -1 with e filled.
int64_t db_train_begin(Db *db, const DbTrainRun *r, int start_step, Err *e);
// Record how the run ended: status "done", "stopped" (Ctrl-C) or "failed". Until then it is
// "running" (begun or resumed by this process), read as "interrupted" once the process is gone.
int db_train_finish(Db *db, int64_t run_id, const char *status, Err *e);
// Record (or replace) the point of p->step.
int db_train_point(Db *db, int64_t run_id, const DbTrainPoint *p, Err *e);
// Call fn for each point of run_id in step order until it returns non-zero.
int db_train_points(Db *db, int64_t run_id, int (*fn)(void *user, const DbTrainPoint *p), void *user, Err *e);

// ---- curves (curves.c) -----------------------------------------------------------------

// Write the curve of a training run (reward: a reward_runs row, else a train_runs one; id 0:
// the latest) as keys of the open JSON object w: "kind", the run's columns, and "points", one
// object per point in step order with the point table's columns. 1, 0 when there is no such
// run (nothing written), or -1 with e filled.
int db_curve_json(Db *db, bool reward, int64_t id, JsonW *w, Err *e);

// ---- reward models (reward.c) -----------------------------------------------------------

// A reward-model training run (strings borrowed).
typedef struct DbRewardRun {
    const char *out_path, *base_path, *model_arch;
    const char *head;    // "linear", "full", "lora"
    const char *options; // JSON object text
    int pairs, train_pairs, heldout_pairs;
} DbRewardRun;

// One evaluation of the run (NAN: not known, stored as NULL).
typedef struct DbRewardPoint {
    int step;
    double loss, heldout_loss, heldout_accuracy, train_accuracy;
    double elapsed_s;
} DbRewardPoint;

// A new run row ('running'). Returns its id (> 0) or -1 with e filled.
int64_t db_reward_begin(Db *db, const DbRewardRun *r, Err *e);
// Record (or replace) the point of p->step.
int db_reward_point(Db *db, int64_t run_id, const DbRewardPoint *p, Err *e);
// Close the run: status "done", "stopped" (Ctrl-C) or "failed", the step kept and its held-out accuracy.
int db_reward_finish(Db *db, int64_t run_id, const char *status, int best_step, double heldout_accuracy, Err *e);
// Record (or replace) the reward model_path gives logged run run_id.
int db_reward_score(Db *db, int64_t run_id, const char *model_path, double reward, Err *e);
// A held-out pair of a reward run with the rewards of its final weights (strings borrowed).
typedef struct DbRewardPair {
    int64_t ranking_id;
    int chosen_n, rejected_n; // candidate numbers in the ranking (1-based)
    bool tie;
    const char *prompt, *chosen, *rejected;
    size_t prompt_len, chosen_len, rejected_len;
    double r_chosen, r_rejected;
} DbRewardPair;
// The out_path of the latest finished ('done') reward run into out (cap bytes), its id, and in
// *n_later the runs after it that did not finish (stopped, failed, interrupted or running): 1, 0
// when there is none, -1 with e filled.
int db_reward_latest_out(Db *db, char *out, size_t cap, int64_t *id, int *n_later, Err *e);
// Record the n held-out pairs of run run_id (numbered 0..n-1), all or none.
int db_reward_heldout(Db *db, int64_t run_id, const DbRewardPair *p, int n, Err *e);

// ---- linear probe runs (probes.c) ---------------------------------------------------------

// One layer of a probe sweep (NAN: none, stored as NULL).
typedef struct DbProbeLayer {
    int layer;
    double accuracy, train_accuracy, control;
} DbProbeLayer;

// A `probe train` sweep (strings borrowed; read back: valid during the callback).
typedef struct DbProbeRun {
    int64_t id;        // set by db_probe_insert and when read
    const char *created, *qkv_version; // when read
    const char *model_path, *model_arch, *dataset, *level;
    const char *options; // JSON object text
    const char *classes; // JSON array text
    int examples, n_rows, n_train, n_test, best_layer;
    double majority, expected_layer, features_s, fit_s;
    int n_layers;
    const DbProbeLayer *layers;
} DbProbeRun;

// Record a sweep and its layers in one transaction. Returns its id (> 0) or -1 with e filled.
int64_t db_probe_insert(Db *db, DbProbeRun *r, Err *e);
typedef int (*DbProbeFn)(void *user, const DbProbeRun *r);
// Call fn for each recorded sweep (newest first; the newest `limit` when limit > 0; only those of
// dataset when it is not NULL) until it returns non-zero. 0 or -1 with e filled.
int db_probes_each(Db *db, const char *dataset, long limit, DbProbeFn fn, void *user, Err *e);
