// probes.c - linear probe sweeps (`probe train`): a run row with what reproduces it and its
// summary, one row per layer with the held-out, training and control accuracy.
#include <math.h>
#include <stdlib.h>

#include "db_int.h"

static const char SQL_INSERT[] =
    "INSERT INTO probe_runs (created, qkv_version, model_path, model_arch, dataset, level, options, examples, "
    "n_rows, n_train, n_test, classes, majority, best_layer, expected_layer, features_s, fit_s) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_LAYER[] =
    "INSERT INTO probe_layers (run_id, layer, accuracy, train_accuracy, control) VALUES (?, ?, ?, ?, ?)";
static const char SQL_RUNS[] =
    "SELECT id, created, qkv_version, model_path, model_arch, dataset, level, options, examples, n_rows, n_train, "
    "n_test, classes, majority, best_layer, expected_layer, features_s, fit_s FROM probe_runs "
    "WHERE ?1 IS NULL OR dataset = ?1 ORDER BY id DESC LIMIT ?2";
static const char SQL_LAYERS[] =
    "SELECT layer, accuracy, train_accuracy, control FROM probe_layers WHERE run_id = ? ORDER BY layer";

static double col_num(sqlite3_stmt *st, int i) {
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

int64_t db_probe_insert(Db *db, DbProbeRun *r, Err *e) {
    const char *what = "cannot record the probe run in";
    if (db_writable(db, e, what)) return -1;
    bool own;
    if (db_tx_open(db, &own, e, what)) return -1;
    int status = -1;
    sqlite3_stmt *st = db_stmt(db, SQL_INSERT, e);
    if (st) {
        char now[32];
        db_now(now);
        db_bind_str(st, 1, now);
        db_bind_str(st, 2, QKV_VERSION);
        db_bind_str(st, 3, r->model_path);
        db_bind_str(st, 4, r->model_arch);
        db_bind_str(st, 5, r->dataset);
        db_bind_str(st, 6, r->level);
        db_bind_str(st, 7, r->options ? r->options : "{}");
        sqlite3_bind_int(st, 8, r->examples);
        sqlite3_bind_int(st, 9, r->n_rows);
        sqlite3_bind_int(st, 10, r->n_train);
        sqlite3_bind_int(st, 11, r->n_test);
        db_bind_str(st, 12, r->classes ? r->classes : "[]");
        db_bind_num(st, 13, r->majority);
        sqlite3_bind_int(st, 14, r->best_layer);
        db_bind_num(st, 15, r->expected_layer);
        sqlite3_bind_double(st, 16, r->features_s);
        sqlite3_bind_double(st, 17, r->fit_s);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        status = rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, what);
        if (!status) r->id = sqlite3_last_insert_rowid(db->h);
    }
    for (int i = 0; !status && i < r->n_layers; i++) {
        const DbProbeLayer *l = &r->layers[i];
        if (!(st = db_stmt(db, SQL_LAYER, e))) {
            status = -1;
            break;
        }
        sqlite3_bind_int64(st, 1, r->id);
        sqlite3_bind_int(st, 2, l->layer);
        db_bind_num(st, 3, l->accuracy);
        db_bind_num(st, 4, l->train_accuracy);
        db_bind_num(st, 5, l->control);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        status = rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, what);
    }
    if (db_tx_close(db, own, status, e, what)) return -1;
    return r->id;
}

int db_probes_each(Db *db, const char *dataset, long limit, DbProbeFn fn, void *user, Err *e) {
    const char *what = "cannot read the probe runs from";
    // the runs first (their text copied: the layers' statement runs between their rows)
    sqlite3_stmt *st = db_prepare(db, SQL_RUNS, e);
    if (!st) return -1;
    db_bind_str(st, 1, dataset);
    sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
    int rc, status = 0;
    Buf b = {0}, lb = {0};
    b.fallible = lb.fallible = true;
    while (!status && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        DbProbeRun r = {0};
        size_t off[8];
        buf_clear(&b);
        static const int text_cols[] = {1, 2, 3, 4, 5, 6, 7, 12};
        for (int i = 0; i < 8 && !status; i++)
            if (db_col_stash(st, text_cols[i], &b, &off[i], NULL)) status = db_row_oom(e, what, sqlite3_column_int64(st, 0), &b);
        if (status) break;
        const char *s[8];
        for (int i = 0; i < 8; i++) s[i] = off[i] == SIZE_MAX ? "" : b.data + off[i];
        r.id = sqlite3_column_int64(st, 0);
        r.created = s[0], r.qkv_version = s[1], r.model_path = s[2], r.model_arch = s[3];
        r.dataset = s[4], r.level = s[5], r.options = s[6], r.classes = s[7];
        r.examples = sqlite3_column_int(st, 8), r.n_rows = sqlite3_column_int(st, 9);
        r.n_train = sqlite3_column_int(st, 10), r.n_test = sqlite3_column_int(st, 11);
        r.majority = col_num(st, 13), r.best_layer = sqlite3_column_int(st, 14);
        r.expected_layer = col_num(st, 15), r.features_s = col_num(st, 16), r.fit_s = col_num(st, 17);
        sqlite3_stmt *ls = db_stmt(db, SQL_LAYERS, e);
        if (!ls) {
            status = -1;
            break;
        }
        sqlite3_bind_int64(ls, 1, r.id);
        buf_clear(&lb);
        while ((rc = sqlite3_step(ls)) == SQLITE_ROW) {
            DbProbeLayer l = {sqlite3_column_int(ls, 0), col_num(ls, 1), col_num(ls, 2), col_num(ls, 3)};
            buf_put(&lb, &l, sizeof l);
            if (lb.failed) break;
        }
        sqlite3_reset(ls);
        if (lb.failed) status = err_set(e, "out of memory for the layers of probe run %lld", (long long)r.id);
        else if (rc != SQLITE_DONE) status = db_fail(db, rc, e, what);
        if (status) break;
        r.n_layers = (int)(lb.len / sizeof(DbProbeLayer));
        r.layers = (const DbProbeLayer *)lb.data;
        if (fn(user, &r)) break;
    }
    if (!status && rc != SQLITE_ROW && rc != SQLITE_DONE) status = db_fail(db, rc, e, what);
    sqlite3_finalize(st);
    buf_free(&b), buf_free(&lb);
    return status;
}
