// reward.c - reward-model training runs, their curves, and reward scores of logged runs.
#include <math.h>
#include <stdio.h>

#include "base/proc.h"
#include "db_int.h"

static const char SQL_BEGIN[] =
    "INSERT INTO reward_runs (created, qkv_version, out_path, base_path, model_arch, head, options, pairs, "
    "train_pairs, heldout_pairs, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_POINT[] =
    "INSERT OR REPLACE INTO reward_points (run_id, step, loss, heldout_loss, heldout_accuracy, train_accuracy, "
    "elapsed_s, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_FINISH[] =
    "UPDATE reward_runs SET status = ?, best_step = ?, heldout_accuracy = ?, owner = NULL WHERE id = ?";
static const char SQL_HELDOUT[] =
    "INSERT OR REPLACE INTO reward_heldout (run_id, n, ranking_id, chosen_n, rejected_n, tie, prompt, chosen, rejected, "
    "r_chosen, r_rejected) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_LATEST[] =
    "SELECT out_path, id, (SELECT count(*) FROM reward_runs n WHERE n.id > r.id) FROM reward_runs r "
    "WHERE status = 'done' ORDER BY id DESC LIMIT 1";
static const char SQL_SCORE[] =
    "INSERT OR REPLACE INTO reward_scores (run_id, model_path, reward, created) VALUES (?, ?, ?, ?)";

static void bind_begin(sqlite3_stmt *st, const void *arg) {
    const DbRewardRun *r = arg;
    char now[32];
    db_now(now);
    db_bind_str(st, 1, now);
    db_bind_str(st, 2, QKV_VERSION);
    db_bind_str(st, 3, r->out_path);
    db_bind_str(st, 4, r->base_path);
    db_bind_str(st, 5, r->model_arch);
    db_bind_str(st, 6, r->head);
    db_bind_str(st, 7, r->options ? r->options : "{}");
    sqlite3_bind_int(st, 8, r->pairs);
    sqlite3_bind_int(st, 9, r->train_pairs);
    sqlite3_bind_int(st, 10, r->heldout_pairs);
    char me[PROC_TOKEN_MAX]; // this process, until the run finishes (DB_STATUS_OF)
    proc_token(me);
    db_bind_str(st, 11, me);
}

int64_t db_reward_begin(Db *db, const DbRewardRun *r, Err *e) {
    int64_t id = 0;
    if (db_write_one(db, SQL_BEGIN, bind_begin, r, "cannot record the reward training run in", &id, e)) return -1;
    return id;
}

typedef struct {
    int64_t id;
    const DbRewardPoint *p;
} PointArg;

static void bind_point(sqlite3_stmt *st, const void *arg) {
    const PointArg *a = arg;
    char now[32];
    db_now(now);
    sqlite3_bind_int64(st, 1, a->id);
    sqlite3_bind_int(st, 2, a->p->step);
    db_bind_num(st, 3, a->p->loss);
    db_bind_num(st, 4, a->p->heldout_loss);
    db_bind_num(st, 5, a->p->heldout_accuracy);
    db_bind_num(st, 6, a->p->train_accuracy);
    sqlite3_bind_double(st, 7, a->p->elapsed_s);
    db_bind_str(st, 8, now);
}

int db_reward_point(Db *db, int64_t run_id, const DbRewardPoint *p, Err *e) {
    PointArg a = {run_id, p};
    return db_write_one(db, SQL_POINT, bind_point, &a, "cannot record the reward curve in", NULL, e);
}

typedef struct {
    int64_t id;
    const char *status;
    int best_step;
    double acc;
} FinishArg;

static void bind_finish(sqlite3_stmt *st, const void *arg) {
    const FinishArg *a = arg;
    db_bind_str(st, 1, a->status);
    sqlite3_bind_int(st, 2, a->best_step);
    db_bind_num(st, 3, a->acc);
    sqlite3_bind_int64(st, 4, a->id);
}

int db_reward_finish(Db *db, int64_t run_id, const char *status, int best_step, double heldout_accuracy, Err *e) {
    FinishArg a = {run_id, status, best_step, heldout_accuracy};
    return db_write_one(db, SQL_FINISH, bind_finish, &a, "cannot record the reward training run in", NULL, e);
}

typedef struct {
    int64_t run_id;
    const char *model_path;
    double reward;
} ScoreArg;

static void bind_score(sqlite3_stmt *st, const void *arg) {
    const ScoreArg *a = arg;
    char now[32];
    db_now(now);
    sqlite3_bind_int64(st, 1, a->run_id);
    db_bind_str(st, 2, a->model_path);
    sqlite3_bind_double(st, 3, a->reward);
    db_bind_str(st, 4, now);
}

int db_reward_score(Db *db, int64_t run_id, const char *model_path, double reward, Err *e) {
    ScoreArg a = {run_id, model_path, reward};
    return db_write_one(db, SQL_SCORE, bind_score, &a, "cannot record the reward score in", NULL, e);
}

int db_reward_heldout(Db *db, int64_t run_id, const DbRewardPair *p, int n, Err *e) {
    static const char what[] = "cannot record the held-out pairs in";
    if (db_writable(db, e, what)) return -1;
    bool own;
    if (db_tx_open(db, &own, e, what)) return -1;
    int status = 0;
    sqlite3_stmt *st = db_stmt(db, SQL_HELDOUT, e);
    if (!st) status = -1;
    for (int i = 0; i < n && !status; i++) {
        sqlite3_bind_int64(st, 1, run_id);
        sqlite3_bind_int(st, 2, i);
        sqlite3_bind_int64(st, 3, p[i].ranking_id);
        sqlite3_bind_int(st, 4, p[i].chosen_n);
        sqlite3_bind_int(st, 5, p[i].rejected_n);
        sqlite3_bind_int(st, 6, p[i].tie);
        sqlite3_bind_text(st, 7, p[i].prompt ? p[i].prompt : "", (int)p[i].prompt_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, p[i].chosen ? p[i].chosen : "", (int)p[i].chosen_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, p[i].rejected ? p[i].rejected : "", (int)p[i].rejected_len, SQLITE_STATIC);
        sqlite3_bind_double(st, 10, p[i].r_chosen);
        sqlite3_bind_double(st, 11, p[i].r_rejected);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) status = db_fail(db, rc, e, what);
        sqlite3_reset(st);
    }
    return db_tx_close(db, own, status, e, what);
}

int db_reward_latest_out(Db *db, char *out, size_t cap, int64_t *id, int *n_later, Err *e) {
    sqlite3_stmt *st = db_stmt(db, SQL_LATEST, e);
    if (!st) return -1;
    int rc = sqlite3_step(st), r = 0;
    if (rc == SQLITE_ROW) {
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        *id = sqlite3_column_int64(st, 1);
        *n_later = sqlite3_column_int(st, 2);
        r = 1;
    } else if (rc != SQLITE_DONE) {
        r = db_fail(db, rc, e, "cannot read the reward runs from");
    }
    sqlite3_reset(st);
    return r;
}
