// train.c - training runs and their loss curves: a run per checkpoint directory, one point
// per optimizer step; a resumed run continues its row and drops the points of the steps it
// is about to redo.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/proc.h"
#include "db_int.h"

static const char SQL_FIND[] = "SELECT id FROM train_runs WHERE out_path = ? ORDER BY id DESC LIMIT 1";
static const char SQL_INSERT[] =
    "INSERT INTO train_runs (created, qkv_version, out_path, data_path, model_arch, n_params, n_threads, options, "
    "status, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?)";
// a resumed run is running again, in this process
static const char SQL_RESUME[] = "UPDATE train_runs SET status = 'running', owner = ? WHERE id = ?";
static const char SQL_FINISH[] = "UPDATE train_runs SET status = ?, owner = NULL WHERE id = ?";
static const char SQL_TRIM[] = "DELETE FROM train_points WHERE run_id = ? AND step > ?";
static const char SQL_POINT[] =
    "INSERT OR REPLACE INTO train_points (run_id, step, loss, val_loss, lr, grad_norm, tokens, elapsed_s, created) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_POINTS[] =
    "SELECT step, loss, val_loss, lr, grad_norm, tokens, elapsed_s FROM train_points WHERE run_id = ? ORDER BY step";

static int step_done(Db *db, sqlite3_stmt *st, Err *e, const char *what) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, what);
}

int64_t db_train_begin(Db *db, const DbTrainRun *r, int start_step, Err *e) {
    const char *what = "cannot record the training run in";
    if (db_writable(db, e, what)) return -1;
    bool own;
    if (db_tx_open(db, &own, e, what)) return -1;
    int status = -1;
    int64_t id = 0;
    char me[PROC_TOKEN_MAX]; // this process, until the run finishes (DB_STATUS_OF)
    proc_token(me);
    sqlite3_stmt *st = start_step > 0 ? db_stmt(db, SQL_FIND, e) : NULL;
    if (st) { // a resumed run: its row, and its points up to the checkpoint
        db_bind_str(st, 1, r->out_path);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) id = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        status = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, what);
        if (!status && id && (st = db_stmt(db, SQL_TRIM, e))) {
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_int(st, 2, start_step);
            status = step_done(db, st, e, what);
        }
        if (!status && id && (st = db_stmt(db, SQL_RESUME, e))) {
            db_bind_str(st, 1, me);
            sqlite3_bind_int64(st, 2, id);
            status = step_done(db, st, e, what);
        }
    } else if (start_step <= 0) {
        status = 0;
    }
    if (!status && !id && (st = db_stmt(db, SQL_INSERT, e))) {
        char now[32];
        db_now(now);
        db_bind_str(st, 1, now);
        db_bind_str(st, 2, QKV_VERSION);
        db_bind_str(st, 3, r->out_path);
        db_bind_str(st, 4, r->data_path);
        db_bind_str(st, 5, r->model_arch);
        sqlite3_bind_int64(st, 6, r->n_params);
        sqlite3_bind_int(st, 7, r->n_threads);
        db_bind_str(st, 8, r->options ? r->options : "{}");
        db_bind_str(st, 9, me);
        status = step_done(db, st, e, what);
        if (!status) id = sqlite3_last_insert_rowid(db->h);
    } else if (!status && !id) {
        status = -1;
    }
    if (db_tx_close(db, own, status, e, what)) return -1;
    return id;
}

typedef struct {
    int64_t id;
    const char *status;
} FinishArg;

static void bind_finish(sqlite3_stmt *st, const void *arg) {
    const FinishArg *a = arg;
    db_bind_str(st, 1, a->status);
    sqlite3_bind_int64(st, 2, a->id);
}

int db_train_finish(Db *db, int64_t run_id, const char *status, Err *e) {
    FinishArg a = {run_id, status};
    return db_write_one(db, SQL_FINISH, bind_finish, &a, "cannot record the training run in", NULL, e);
}

typedef struct {
    int64_t id;
    const DbTrainPoint *p;
} PointArg;

static void bind_point(sqlite3_stmt *st, const void *arg) {
    const PointArg *a = arg;
    const DbTrainPoint *p = a->p;
    char now[32];
    db_now(now);
    sqlite3_bind_int64(st, 1, a->id);
    sqlite3_bind_int(st, 2, p->step);
    sqlite3_bind_double(st, 3, p->loss);
    if (p->val_loss >= 0) sqlite3_bind_double(st, 4, p->val_loss);
    else sqlite3_bind_null(st, 4);
    sqlite3_bind_double(st, 5, p->lr);
    sqlite3_bind_double(st, 6, p->grad_norm);
    sqlite3_bind_int64(st, 7, p->tokens);
    sqlite3_bind_double(st, 8, p->elapsed_s);
    db_bind_str(st, 9, now);
}

int db_train_point(Db *db, int64_t run_id, const DbTrainPoint *p, Err *e) {
    PointArg a = {run_id, p};
    return db_write_one(db, SQL_POINT, bind_point, &a, "cannot record the training step in", NULL, e);
}

int db_train_points(Db *db, int64_t run_id, int (*fn)(void *user, const DbTrainPoint *p), void *user, Err *e) {
    sqlite3_stmt *st = db_stmt(db, SQL_POINTS, e);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, run_id);
    int rc, stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        DbTrainPoint p = {sqlite3_column_int(st, 0), sqlite3_column_double(st, 1),
                          sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 2),
                          sqlite3_column_double(st, 3), sqlite3_column_double(st, 4), sqlite3_column_int64(st, 5),
                          sqlite3_column_double(st, 6)};
        stop = fn(user, &p);
    }
    int status = stop || rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, "cannot read the loss curve from");
    sqlite3_reset(st);
    return status;
}
