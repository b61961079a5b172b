// runs.c - the run log: inserting a generation with everything needed to reproduce it,
// reading runs back one at a time or filtered, newest first.
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

const char DB_RUN_COLS[] =
    "r.id, r.created, r.kind, r.parent_id, r.annotator, r.qkv_version, r.n_threads, r.model_path, "
    "r.model_arch, r.model_sha256, r.prompt, r.template, r.mode, r.exemplars, r.temperature, r.top_k, "
    "r.top_p, r.seed, r.max_tokens, r.n_alts, r.stop_at_eos, r.truncate, r.prompt_ids, r.n_truncated, "
    "r.output, r.ids, r.logprobs, r.alts, r.prefill_s, r.decode_s, r.stop_reason, r.kv";

static const char SQL_INSERT[] =
    "INSERT INTO runs (created, kind, parent_id, annotator, qkv_version, n_threads, model_path, model_arch, "
    "model_sha256, prompt, template, mode, exemplars, temperature, top_k, top_p, seed, max_tokens, n_alts, "
    "stop_at_eos, truncate, prompt_ids, n_truncated, output, ids, logprobs, alts, prefill_s, decode_s, "
    "stop_reason, kv) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "?, ?, ?, ?, ?)";

static const char SQL_GET[] =
    "SELECT r.id, r.created, r.kind, r.parent_id, r.annotator, r.qkv_version, r.n_threads, r.model_path, "
    "r.model_arch, r.model_sha256, r.prompt, r.template, r.mode, r.exemplars, r.temperature, r.top_k, "
    "r.top_p, r.seed, r.max_tokens, r.n_alts, r.stop_at_eos, r.truncate, r.prompt_ids, r.n_truncated, "
    "r.output, r.ids, r.logprobs, r.alts, r.prefill_s, r.decode_s, r.stop_reason, r.kv FROM runs r WHERE r.id = ?";

static const char SQL_ORIGIN[] = "UPDATE runs SET kind = ?, parent_id = ? WHERE id = ?";
static const char SQL_COUNT[] = "SELECT count(*) FROM runs";

int64_t db_run_insert(Db *db, DbRun *r, Err *e) {
    const char *what = "cannot log the run to";
    if (!r->prompt || !r->output || !r->model_path || !r->model_arch)
        return err_set(e, "cannot log the run: prompt, output and model are required");
    bool own;
    if (db_tx_open(db, &own, e, what)) return -1;
    sqlite3_stmt *st = db_stmt(db, SQL_INSERT, e);
    if (!st) return db_tx_close(db, own, -1, e, what);
    if (!r->created[0]) db_now(r->created);
    int i = 1;
    db_bind_str(st, i++, r->created);
    db_bind_str(st, i++, r->kind ? r->kind : "generate");
    if (r->parent_id > 0) sqlite3_bind_int64(st, i++, r->parent_id);
    else sqlite3_bind_null(st, i++);
    db_bind_str(st, i++, r->annotator);
    db_bind_str(st, i++, r->qkv_version ? r->qkv_version : QKV_VERSION);
    sqlite3_bind_int(st, i++, r->n_threads);
    db_bind_str(st, i++, r->model_path);
    db_bind_str(st, i++, r->model_arch);
    db_bind_str(st, i++, r->model_sha256);
    db_bind_text(st, i++, r->prompt, r->prompt_len);
    db_bind_str(st, i++, r->template_name);
    db_bind_str(st, i++, r->mode);
    db_bind_str(st, i++, r->exemplars);
    sqlite3_bind_double(st, i++, r->temperature);
    sqlite3_bind_int(st, i++, r->top_k);
    sqlite3_bind_double(st, i++, r->top_p);
    sqlite3_bind_int64(st, i++, (sqlite3_int64)r->seed);
    sqlite3_bind_int(st, i++, r->max_tokens);
    sqlite3_bind_int(st, i++, r->n_alts);
    sqlite3_bind_int(st, i++, r->stop_at_eos);
    sqlite3_bind_int(st, i++, r->truncate);
    db_bind_str(st, i++, r->prompt_ids ? r->prompt_ids : "[]");
    sqlite3_bind_int(st, i++, r->n_truncated);
    db_bind_text(st, i++, r->output, r->output_len);
    db_bind_str(st, i++, r->ids ? r->ids : "[]");
    db_bind_str(st, i++, r->logprobs ? r->logprobs : "[]");
    db_bind_str(st, i++, r->alts);
    sqlite3_bind_double(st, i++, r->prefill_s);
    sqlite3_bind_double(st, i++, r->decode_s);
    db_bind_str(st, i++, r->stop_reason);
    db_bind_str(st, i++, r->kv ? r->kv : "f32");
    int rc = sqlite3_step(st);
    int status = rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, what);
    sqlite3_reset(st);
    if (!status) r->id = sqlite3_last_insert_rowid(db->h);
    if (db_tx_close(db, own, status, e, what)) return -1;
    return r->id;
}

// The string columns of a run: column index and where the pointer (and length) go.
typedef struct {
    int col;
    size_t field; // offsetof the const char * in DbRun
    size_t len;   // offsetof the size_t length, or 0
} StrCol;

static const StrCol STR_COLS[] = {
    {2, offsetof(DbRun, kind), 0},
    {4, offsetof(DbRun, annotator), 0},
    {5, offsetof(DbRun, qkv_version), 0},
    {7, offsetof(DbRun, model_path), 0},
    {8, offsetof(DbRun, model_arch), 0},
    {9, offsetof(DbRun, model_sha256), 0},
    {10, offsetof(DbRun, prompt), offsetof(DbRun, prompt_len)},
    {11, offsetof(DbRun, template_name), 0},
    {12, offsetof(DbRun, mode), 0},
    {13, offsetof(DbRun, exemplars), 0},
    {22, offsetof(DbRun, prompt_ids), 0},
    {24, offsetof(DbRun, output), offsetof(DbRun, output_len)},
    {25, offsetof(DbRun, ids), 0},
    {26, offsetof(DbRun, logprobs), 0},
    {27, offsetof(DbRun, alts), 0},
    {30, offsetof(DbRun, stop_reason), 0},
    {31, offsetof(DbRun, kv), 0},
};
enum { N_STR_COLS = sizeof STR_COLS / sizeof STR_COLS[0] };

#define FIELD(r, off) (*(const char **)((char *)(r) + (off)))
#define LENGTH(r, off) (*(size_t *)((char *)(r) + (off)))

int db_run_read(sqlite3_stmt *st, int c0, DbRun *r, bool owned, Err *e) {
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, c0 + 0);
    const unsigned char *created = sqlite3_column_text(st, c0 + 1);
    snprintf(r->created, sizeof r->created, "%s", created ? (const char *)created : "");
    r->parent_id = sqlite3_column_int64(st, c0 + 3);
    r->n_threads = sqlite3_column_int(st, c0 + 6);
    r->temperature = sqlite3_column_double(st, c0 + 14);
    r->top_k = sqlite3_column_int(st, c0 + 15);
    r->top_p = sqlite3_column_double(st, c0 + 16);
    r->seed = (uint64_t)sqlite3_column_int64(st, c0 + 17);
    r->max_tokens = sqlite3_column_int(st, c0 + 18);
    r->n_alts = sqlite3_column_int(st, c0 + 19);
    r->stop_at_eos = sqlite3_column_int(st, c0 + 20) != 0;
    r->truncate = sqlite3_column_int(st, c0 + 21) != 0;
    r->n_truncated = sqlite3_column_int(st, c0 + 23);
    // a NULL time (SQLite stores NaN as NULL) reads back as NaN
    r->prefill_s = sqlite3_column_type(st, c0 + 28) == SQLITE_NULL ? NAN : sqlite3_column_double(st, c0 + 28);
    r->decode_s = sqlite3_column_type(st, c0 + 29) == SQLITE_NULL ? NAN : sqlite3_column_double(st, c0 + 29);
    if (!owned) {
        for (int i = 0; i < N_STR_COLS; i++) {
            const StrCol *c = &STR_COLS[i];
            FIELD(r, c->field) = (const char *)sqlite3_column_text(st, c0 + c->col);
            if (c->len) LENGTH(r, c->len) = (size_t)sqlite3_column_bytes(st, c0 + c->col);
        }
        return 0;
    }
    Buf b = {.fallible = true}; // the row's text: input-sized (mem.h rule 1)
    size_t off[N_STR_COLS], len;
    int bad = 0;
    for (int i = 0; i < N_STR_COLS && !bad; i++) {
        const StrCol *c = &STR_COLS[i];
        bad = db_col_stash(st, c0 + c->col, &b, &off[i], &len);
        if (c->len) LENGTH(r, c->len) = len;
    }
    if (bad) {
        long long id = r->id;
        db_row_oom(e, "run", id, &b);
        buf_free(&b);
        memset(r, 0, sizeof *r);
        return -1;
    }
    r->mem_ = buf_take(&b);
    for (int i = 0; i < N_STR_COLS; i++) FIELD(r, STR_COLS[i].field) = off[i] == SIZE_MAX ? NULL : r->mem_ + off[i];
    return 0;
}

int db_run_get(Db *db, int64_t id, DbRun *out, Err *e) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_stmt(db, SQL_GET, e);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        found = db_run_read(st, 0, out, true, e) ? -1 : 1;
    } else if (rc != SQLITE_DONE) {
        found = db_fail(db, rc, e, "cannot read");
    }
    sqlite3_reset(st);
    return found;
}

void db_run_done(DbRun *r) {
    free(r->mem_);
    memset(r, 0, sizeof *r);
}

int db_run_set_origin(Db *db, int64_t id, const char *kind, int64_t parent_id, Err *e) {
    const char *what = "cannot update the run in";
    bool own;
    if (db_tx_open(db, &own, e, what)) return -1;
    sqlite3_stmt *st = db_stmt(db, SQL_ORIGIN, e);
    int status = -1;
    if (st) {
        db_bind_str(st, 1, kind ? kind : "generate");
        if (parent_id > 0) sqlite3_bind_int64(st, 2, parent_id);
        else sqlite3_bind_null(st, 2);
        sqlite3_bind_int64(st, 3, id);
        int rc = sqlite3_step(st);
        status = rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, what);
        if (!status && sqlite3_changes(db->h) == 0) status = err_set(e, "no run %lld", (long long)id);
        sqlite3_reset(st);
    }
    return db_tx_close(db, own, status, e, what);
}

int64_t db_count(Db *db, const char *sql, Err *e) {
    sqlite3_stmt *st = db_stmt(db, sql, e);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : db_fail(db, rc, e, "cannot read");
    sqlite3_reset(st);
    return n;
}

int64_t db_run_count(Db *db, Err *e) { return db_count(db, SQL_COUNT, e); }

typedef struct {
    DbRunFn fn;
    void *user;
} RunVisit;

static int visit_run(sqlite3_stmt *st, void *user) {
    RunVisit *v = user;
    DbRun r;
    db_run_read(st, 0, &r, false, NULL); // borrowed: cannot fail
    return v->fn(v->user, &r);
}

int db_runs_each(Db *db, const DbFilter *f, long limit, bool newest_first, DbRunFn fn, void *user,
                 Err *e) {
    char sql[sizeof DB_RUN_COLS + 32];
    snprintf(sql, sizeof sql, "SELECT %s FROM runs r", DB_RUN_COLS);
    RunVisit v = {fn, user};
    return db_filtered_each(db, sql, "r.id", DB_WHERE_RUNS, f, limit, newest_first, visit_run, &v, e);
}

bool db_run_chat(const DbRun *r) { return r->template_name && !strncmp(r->template_name, "chat:", 5); }
