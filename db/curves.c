// curves.c - the curve of a training run as JSON: the run's row (train_runs or reward_runs)
// with its points (train_points or reward_points) in step order, each row written with its
// own column names, so the `curve` command and the Training view show what the tables hold.
#include <string.h>

#include "db_int.h"

static const char SQL_TRAIN_LAST[] = "SELECT id FROM train_runs ORDER BY id DESC LIMIT 1";
static const char SQL_REWARD_LAST[] = "SELECT id FROM reward_runs ORDER BY id DESC LIMIT 1";
static const char SQL_TRAIN_RUN[] =
    "SELECT id, created, out_path, data_path, model_arch, n_params, n_threads, " DB_STATUS_OF("t")
    " AS status FROM train_runs t WHERE id = ?";
static const char SQL_REWARD_RUN[] =
    "SELECT id, created, out_path, base_path, model_arch, head, pairs, train_pairs, heldout_pairs, " DB_STATUS_OF("r")
    " AS status, best_step, heldout_accuracy FROM reward_runs r WHERE id = ?";
static const char SQL_TRAIN_POINTS[] =
    "SELECT step, loss, val_loss, lr, grad_norm, tokens, elapsed_s FROM train_points WHERE run_id = ? ORDER BY step";
static const char SQL_REWARD_HELDOUT[] =
    "SELECT n, ranking_id, chosen_n, rejected_n, tie, prompt, chosen, rejected, r_chosen, r_rejected FROM "
    "reward_heldout WHERE run_id = ? ORDER BY n";
static const char SQL_REWARD_POINTS[] =
    "SELECT step, loss, heldout_loss, heldout_accuracy, train_accuracy, elapsed_s FROM reward_points "
    "WHERE run_id = ? ORDER BY step";

// The columns of the current row as keys of the open object.
static void row_fields(sqlite3_stmt *st, JsonW *w) {
    for (int i = 0; i < sqlite3_column_count(st); i++) {
        jw_key(w, sqlite3_column_name(st, i));
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER: jw_int(w, sqlite3_column_int64(st, i)); break;
        case SQLITE_FLOAT: jw_num(w, sqlite3_column_double(st, i)); break;
        case SQLITE_NULL: jw_null(w); break;
        default: jw_strn(w, (const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i)); break;
        }
    }
}

// Step st (its id bound) to its first row: 1 row, 0 none, -1 error.
static int first_row(Db *db, sqlite3_stmt *st, Err *e) {
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) return 1;
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, "cannot read the training curve from");
}

// Every row of sql (the run's id bound) as an array of objects under key. 0 or -1.
static int rows_json(Db *db, const char *sql, int64_t id, const char *key, JsonW *w, Err *e) {
    sqlite3_stmt *st = db_stmt(db, sql, e);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, id);
    jw_key(w, key);
    jw_arr(w);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        jw_obj(w);
        row_fields(st, w);
        jw_obj_end(w);
    }
    jw_arr_end(w);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, "cannot read the training curve from");
}

int db_curve_json(Db *db, bool reward, int64_t id, JsonW *w, Err *e) {
    sqlite3_stmt *st;
    if (id <= 0) { // the latest run
        if (!(st = db_stmt(db, reward ? SQL_REWARD_LAST : SQL_TRAIN_LAST, e))) return -1;
        int r = first_row(db, st, e);
        if (r <= 0) return r;
        id = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    if (!(st = db_stmt(db, reward ? SQL_REWARD_RUN : SQL_TRAIN_RUN, e))) return -1;
    sqlite3_bind_int64(st, 1, id);
    int r = first_row(db, st, e);
    if (r <= 0) return r;
    jw_kstr(w, "kind", reward ? "reward" : "train");
    row_fields(st, w);
    sqlite3_reset(st);
    if (rows_json(db, reward ? SQL_REWARD_POINTS : SQL_TRAIN_POINTS, id, "points", w, e)) return -1;
    // a reward run's held-out pairs as its final weights score them
    if (reward && rows_json(db, SQL_REWARD_HELDOUT, id, "heldout", w, e)) return -1;
    return 1;
}
