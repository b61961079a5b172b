// experiments.c - prompt experiments: the experiment row and its conditions, each scored item
// with the links to its runs, the counts per condition summed by SQL, listings.
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/proc.h"
#include "db_int.h"

static const char SQL_INSERT[] =
    "INSERT INTO experiments (created, status, task, task_path, task_sha256, model_path, model_arch, "
    "model_sha256, annotator, qkv_version, command, spec, n_items, n_conditions, owner) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_INSERT_COND[] =
    "INSERT INTO experiment_conditions (experiment_id, idx, shots, cot, samples, chat, seed) VALUES (?, ?, ?, ?, ?, ?, ?)";
// the columns of an experiment row, with the count of its stored items
#define EXP_COLS                                                                                                     \
    "x.id, x.created, x.finished, " DB_EXP_STATUS ", x.task, x.task_path, x.task_sha256, x.model_path, x.model_arch, "       \
    "x.model_sha256, x.annotator, x.qkv_version, x.command, x.spec, x.n_items, x.n_conditions, "                    \
    "(SELECT count(*) FROM experiment_items i WHERE i.experiment_id = x.id), x.owner"
static const char SQL_GET[] = "SELECT " EXP_COLS " FROM experiments x WHERE x.id = ?";
// (the owner goes with a status other than running: the process is done with it)
static const char SQL_STATUS[] =
    "UPDATE experiments SET status = ?1, finished = CASE WHEN ?1 = 'done' THEN coalesce(finished, ?2) ELSE NULL END, "
    "owner = CASE WHEN ?1 = 'running' THEN owner ELSE NULL END WHERE id = ?3";
static const char SQL_OWNER[] = "SELECT status, owner FROM experiments WHERE id = ?";
static const char SQL_CLAIM[] =
    "UPDATE experiments SET status = 'running', finished = NULL, owner = ? WHERE id = ?";
static const char SQL_STATS[] =
    "SELECT c.idx, c.shots, c.cot, c.samples, c.chat, c.seed, count(i.item), coalesce(sum(i.correct), 0), "
    "count(i.correct_norm), coalesce(sum(i.correct_norm), 0) FROM experiment_conditions c "
    "LEFT JOIN experiment_items i ON i.experiment_id = c.experiment_id AND i.condition = c.idx "
    "WHERE c.experiment_id = ? GROUP BY c.idx ORDER BY c.idx";
static const char SQL_ITEM[] =
    "INSERT INTO experiment_items (experiment_id, condition, item, input, target, answer, correct, correct_norm, "
    "detail, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_ITEM_RUN[] =
    "INSERT INTO experiment_runs (experiment_id, condition, item, sample, run_id, answer, n_reused) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)";
static const char SQL_ITEM_EXISTS[] =
    "SELECT 1 FROM experiment_items WHERE experiment_id = ? AND condition = ? AND item = ?";
static const char SQL_ITEMS[] =
    "SELECT i.condition, i.item, i.input, i.target, i.answer, i.correct, i.correct_norm, i.detail, i.created, "
    "(SELECT json_group_array(json_array(r.sample, r.run_id, r.answer, r.n_reused)) FROM "
    "(SELECT * FROM experiment_runs r WHERE r.experiment_id = i.experiment_id AND r.condition = i.condition AND "
    "r.item = i.item ORDER BY r.sample) r) FROM experiment_items i "
    "WHERE i.experiment_id = ?1 AND (?2 < 0 OR i.condition = ?2) AND (?3 < 0 OR i.item = ?3) "
    "ORDER BY i.condition, i.item";

int64_t db_experiment_insert(Db *db, DbExperiment *x, const DbCondition *c, int n, Err *e) {
    const char *what = "cannot store the experiment in";
    if (!x->task || !x->task_path || !x->task_sha256 || !x->model_path || !x->model_arch || !x->command || !x->spec)
        return err_set(e, "cannot store the experiment: task, model, command and spec are required");
    if (n < 1 || x->n_items < 1) return err_set(e, "cannot store the experiment: no conditions or no items");
    bool own;
    if (db_tx_open(db, &own, e, what)) return -1;
    sqlite3_stmt *st = db_stmt(db, SQL_INSERT, e);
    if (!st) return db_tx_close(db, own, -1, e, what);
    if (!x->created[0]) db_now(x->created);
    int i = 1;
    db_bind_str(st, i++, x->created);
    db_bind_str(st, i++, x->status ? x->status : "running");
    db_bind_str(st, i++, x->task);
    db_bind_str(st, i++, x->task_path);
    db_bind_str(st, i++, x->task_sha256);
    db_bind_str(st, i++, x->model_path);
    db_bind_str(st, i++, x->model_arch);
    db_bind_str(st, i++, x->model_sha256);
    db_bind_str(st, i++, x->annotator);
    db_bind_str(st, i++, x->qkv_version ? x->qkv_version : QKV_VERSION);
    db_bind_str(st, i++, x->command);
    db_bind_str(st, i++, x->spec);
    sqlite3_bind_int(st, i++, x->n_items);
    sqlite3_bind_int(st, i++, n);
    char me[PROC_TOKEN_MAX]; // a running experiment is this process's from its first moment
    proc_token(me);
    if (x->status && strcmp(x->status, "running")) sqlite3_bind_null(st, i++);
    else db_bind_str(st, i++, me);
    int rc = sqlite3_step(st);
    int status = rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, what);
    sqlite3_reset(st);
    if (!status) x->id = sqlite3_last_insert_rowid(db->h);
    for (int k = 0; k < n && !status; k++) {
        st = db_stmt(db, SQL_INSERT_COND, e);
        if (!st) {
            status = -1;
            break;
        }
        sqlite3_bind_int64(st, 1, x->id);
        sqlite3_bind_int(st, 2, k);
        sqlite3_bind_int(st, 3, c[k].shots);
        sqlite3_bind_int(st, 4, c[k].cot);
        sqlite3_bind_int(st, 5, c[k].samples);
        sqlite3_bind_int(st, 6, c[k].chat);
        sqlite3_bind_int64(st, 7, (sqlite3_int64)c[k].seed);
        rc = sqlite3_step(st);
        status = rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, what);
        sqlite3_reset(st);
    }
    if (!status) x->n_conditions = n;
    if (db_tx_close(db, own, status, e, what)) return -1;
    return x->id;
}

// The string columns of an experiment row.
typedef struct {
    int col;
    size_t field; // offsetof the const char * in DbExperiment
} ExpStr;

static const ExpStr EXP_STRS[] = {
    {3, offsetof(DbExperiment, status)},       {4, offsetof(DbExperiment, task)},
    {5, offsetof(DbExperiment, task_path)},    {6, offsetof(DbExperiment, task_sha256)},
    {7, offsetof(DbExperiment, model_path)},   {8, offsetof(DbExperiment, model_arch)},
    {9, offsetof(DbExperiment, model_sha256)}, {10, offsetof(DbExperiment, annotator)},
    {11, offsetof(DbExperiment, qkv_version)}, {12, offsetof(DbExperiment, command)},
    {13, offsetof(DbExperiment, spec)},       {17, offsetof(DbExperiment, owner)},
};
enum { N_EXP_STRS = sizeof EXP_STRS / sizeof EXP_STRS[0] };
#define XFIELD(x, off) (*(const char **)((char *)(x) + (off)))

static void copy_text(char out[32], sqlite3_stmt *st, int col) {
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(out, 32, "%s", t ? (const char *)t : "");
}

// Read an experiment row (EXP_COLS) into x, its strings owned (x->mem_).
static void exp_read(sqlite3_stmt *st, DbExperiment *x) {
    memset(x, 0, sizeof *x);
    x->id = sqlite3_column_int64(st, 0);
    copy_text(x->created, st, 1);
    copy_text(x->finished, st, 2);
    x->n_items = sqlite3_column_int(st, 14);
    x->n_conditions = sqlite3_column_int(st, 15);
    x->n_done = (long)sqlite3_column_int64(st, 16);
    Buf b = {0};
    size_t off[N_EXP_STRS];
    for (int i = 0; i < N_EXP_STRS; i++) db_col_stash(st, EXP_STRS[i].col, &b, &off[i], NULL);
    x->mem_ = buf_take(&b);
    for (int i = 0; i < N_EXP_STRS; i++) XFIELD(x, EXP_STRS[i].field) = off[i] == SIZE_MAX ? NULL : x->mem_ + off[i];
}

int db_experiment_get(Db *db, int64_t id, DbExperiment *out, Err *e) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_stmt(db, SQL_GET, e);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        exp_read(st, out);
        found = 1;
    } else if (rc != SQLITE_DONE) {
        found = db_fail(db, rc, e, "cannot read");
    }
    sqlite3_reset(st);
    return found;
}

void db_experiment_done(DbExperiment *x) {
    free(x->mem_);
    memset(x, 0, sizeof *x);
}

int db_experiment_set_status(Db *db, int64_t id, const char *status, Err *e) {
    const char *what = "cannot update the experiment in";
    bool own;
    if (db_tx_open(db, &own, e, what)) return -1;
    sqlite3_stmt *st = db_stmt(db, SQL_STATUS, e);
    int rc_status = -1;
    if (st) {
        char now[32];
        db_now(now);
        db_bind_str(st, 1, status);
        db_bind_str(st, 2, now);
        sqlite3_bind_int64(st, 3, id);
        int rc = sqlite3_step(st);
        rc_status = rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, what);
        if (!rc_status && sqlite3_changes(db->h) == 0) rc_status = err_set(e, "no experiment %lld", (long long)id);
        sqlite3_reset(st);
    }
    return db_tx_close(db, own, rc_status, e, what);
}

int db_experiment_claim(Db *db, int64_t id, Err *e) {
    const char *what = "cannot claim the experiment in";
    char me[PROC_TOKEN_MAX];
    proc_token(me);
    bool own;
    if (db_tx_open(db, &own, e, what)) return -1;
    int rc = -1;
    sqlite3_stmt *st = db_stmt(db, SQL_OWNER, e);
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            const char *status = (const char *)sqlite3_column_text(st, 0);
            const char *owner = (const char *)sqlite3_column_text(st, 1);
            long pid = 0;
            if (status && !strcmp(status, "running") && owner && strcmp(owner, me) && proc_token_alive(owner) &&
                sscanf(owner, "%*s %ld", &pid) == 1)
                rc = err_set(e, "experiment %lld is running in process %ld: wait for it to finish, or stop it there "
                                "(Ctrl-C), then resume it", (long long)id, pid);
            else
                rc = 0;
        } else {
            rc = r == SQLITE_DONE ? err_set(e, "no experiment %lld", (long long)id) : db_fail(db, r, e, what);
        }
        sqlite3_reset(st);
    }
    if (!rc && (st = db_stmt(db, SQL_CLAIM, e))) {
        db_bind_str(st, 1, me);
        sqlite3_bind_int64(st, 2, id);
        int r = sqlite3_step(st);
        rc = r == SQLITE_DONE ? 0 : db_fail(db, r, e, what);
        sqlite3_reset(st);
    } else if (!rc) {
        rc = -1;
    }
    return db_tx_close(db, own, rc, e, what);
}

int db_experiment_stats(Db *db, int64_t id, DbCondStats *out, int cap, Err *e) {
    sqlite3_stmt *st = db_stmt(db, SQL_STATS, e);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, id);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n < cap) {
            DbCondStats *s = &out[n];
            s->c.idx = sqlite3_column_int(st, 0);
            s->c.shots = sqlite3_column_int(st, 1);
            s->c.cot = sqlite3_column_int(st, 2) != 0;
            s->c.samples = sqlite3_column_int(st, 3);
            s->c.chat = sqlite3_column_int(st, 4) != 0;
            s->c.seed = (uint64_t)sqlite3_column_int64(st, 5);
            s->n = (long)sqlite3_column_int64(st, 6);
            s->correct = (long)sqlite3_column_int64(st, 7);
            s->n_norm = (long)sqlite3_column_int64(st, 8);
            s->correct_norm = (long)sqlite3_column_int64(st, 9);
        }
        n++;
    }
    int status = rc == SQLITE_DONE ? n : db_fail(db, rc, e, "cannot read");
    sqlite3_reset(st);
    return status;
}

int db_experiment_item_insert(Db *db, int64_t id, DbExpItem *it, Err *e) {
    const char *what = "cannot store the experiment's item in";
    if (!it->input || !it->target || !it->answer) return err_set(e, "cannot store the item: input, target and answer are required");
    bool own;
    if (db_tx_open(db, &own, e, what)) return -1;
    // already stored (by another process resuming the same experiment): nothing to do
    sqlite3_stmt *st = db_stmt(db, SQL_ITEM_EXISTS, e);
    if (!st) return db_tx_close(db, own, -1, e, what);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, it->condition);
    sqlite3_bind_int(st, 3, it->item);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return db_tx_close(db, own, 0, e, what) ? -1 : 1;
    if (rc != SQLITE_DONE) return db_tx_close(db, own, db_fail(db, rc, e, what), e, what);
    st = db_stmt(db, SQL_ITEM, e);
    if (!st) return db_tx_close(db, own, -1, e, what);
    if (!it->created[0]) db_now(it->created);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, it->condition);
    sqlite3_bind_int(st, 3, it->item);
    db_bind_str(st, 4, it->input);
    db_bind_str(st, 5, it->target);
    db_bind_str(st, 6, it->answer);
    sqlite3_bind_int(st, 7, it->correct);
    if (it->correct_norm >= 0) sqlite3_bind_int(st, 8, it->correct_norm);
    else sqlite3_bind_null(st, 8);
    db_bind_str(st, 9, it->detail);
    db_bind_str(st, 10, it->created);
    rc = sqlite3_step(st);
    int status = rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, what);
    sqlite3_reset(st);
    for (int k = 0; k < it->n_runs && !status; k++) {
        const DbExpRun *r = &it->runs[k];
        st = db_stmt(db, SQL_ITEM_RUN, e);
        if (!st) {
            status = -1;
            break;
        }
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, it->condition);
        sqlite3_bind_int(st, 3, it->item);
        sqlite3_bind_int(st, 4, r->sample);
        sqlite3_bind_int64(st, 5, r->run_id);
        db_bind_str(st, 6, r->answer ? r->answer : "");
        sqlite3_bind_int(st, 7, r->n_reused);
        rc = sqlite3_step(st);
        status = rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, what);
        sqlite3_reset(st);
    }
    return db_tx_close(db, own, status, e, what);
}

// Read an item row (SQL_ITEMS) with its runs into it, borrowing nothing (it->mem_ owns).
static int item_read(sqlite3_stmt *st, DbExpItem *it) {
    memset(it, 0, sizeof *it);
    it->condition = sqlite3_column_int(st, 0);
    it->item = sqlite3_column_int(st, 1);
    it->correct = sqlite3_column_int(st, 5) != 0;
    it->correct_norm = sqlite3_column_type(st, 6) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 6);
    copy_text(it->created, st, 8);
    Buf b = {0};
    size_t off[4];
    static const int cols[4] = {2, 3, 4, 7};
    for (int i = 0; i < 4; i++) db_col_stash(st, cols[i], &b, &off[i], NULL);
    // the runs: [[sample, run_id, answer, n_reused], ...]
    const unsigned char *runs = sqlite3_column_text(st, 9);
    Json *j = runs ? json_parse((const char *)runs, (size_t)sqlite3_column_bytes(st, 9), NULL) : NULL;
    int n = j && j->type == JSON_ARR ? (int)j->len : 0;
    size_t *aoff = calloc((size_t)n + 1, sizeof *aoff);
    it->runs = calloc((size_t)n + 1, sizeof *it->runs);
    if (!aoff || !it->runs) {
        free(aoff), free(it->runs), json_free(j), buf_free(&b);
        it->runs = NULL;
        return -1;
    }
    for (int k = 0; k < n; k++) {
        const Json *r = &j->items[k];
        if (r->type != JSON_ARR || r->len != 4) continue;
        DbExpRun *d = &it->runs[it->n_runs++];
        d->sample = (int)r->items[0].num;
        d->run_id = (int64_t)r->items[1].num;
        d->n_reused = (int)r->items[3].num;
        aoff[it->n_runs - 1] = b.len;
        buf_put(&b, r->items[2].type == JSON_STR ? r->items[2].str : "", r->items[2].type == JSON_STR ? r->items[2].len : 0);
        buf_putc(&b, 0);
    }
    json_free(j);
    it->mem_ = buf_take(&b);
    const char **fields[4] = {&it->input, &it->target, &it->answer, &it->detail};
    for (int i = 0; i < 4; i++) *fields[i] = off[i] == SIZE_MAX ? NULL : it->mem_ + off[i];
    for (int k = 0; k < it->n_runs; k++) it->runs[k].answer = it->mem_ + aoff[k];
    free(aoff);
    return 0;
}

int db_experiment_items_each(Db *db, int64_t id, int condition, int item, DbExpItemFn fn, void *user, Err *e) {
    sqlite3_stmt *st = db_prepare(db, SQL_ITEMS, e); // not cached: callbacks may read the database
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, condition);
    sqlite3_bind_int(st, 3, item);
    int rc, status = 0;
    while (!status && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        DbExpItem it;
        if (item_read(st, &it)) {
            status = err_set(e, "out of memory reading experiment %lld", (long long)id);
            break;
        }
        status = fn(user, &it);
        free(it.runs);
        free(it.mem_);
    }
    if (!status && rc != SQLITE_DONE) status = db_fail(db, rc, e, "cannot read");
    sqlite3_finalize(st);
    return status;
}

typedef struct {
    DbExperimentFn fn;
    void *user;
} ExpVisit;

static int visit_exp(sqlite3_stmt *st, void *user) {
    ExpVisit *v = user;
    DbExperiment x;
    exp_read(st, &x);
    int rc = v->fn(v->user, &x);
    db_experiment_done(&x);
    return rc;
}

int db_experiments_each(Db *db, const DbFilter *f, long limit, bool newest_first, DbExperimentFn fn, void *user,
                        Err *e) {
    ExpVisit v = {fn, user};
    return db_filtered_each(db, "SELECT " EXP_COLS " FROM experiments x", "x.id", DB_WHERE_EXPERIMENTS, f, limit,
                            newest_first, visit_exp, &v, e);
}
