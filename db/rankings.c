// rankings.c - human rankings: one annotator's order (with ties) of K candidate runs of a
// prompt, stored whole in one transaction or not at all, read one by one or filtered.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

static const char SQL_INSERT[] =
    "INSERT INTO rankings (created, prompt, k, annotator, note, qkv_version) VALUES (?, ?, ?, ?, ?, ?)";
static const char SQL_ITEM[] = "INSERT INTO ranking_items (ranking_id, n, run_id, rank) VALUES (?, ?, ?, ?)";
static const char SQL_GET[] =
    "SELECT id, created, prompt, k, annotator, note, qkv_version, (SELECT u.template LIKE 'chat:%' FROM ranking_items i "
    "JOIN runs u ON u.id = i.run_id WHERE i.ranking_id = rankings.id ORDER BY i.n LIMIT 1) FROM rankings WHERE id = ?";
static const char SQL_ITEMS[] = "SELECT n, run_id, rank FROM ranking_items WHERE ranking_id = ? ORDER BY n";
static const char SQL_COUNT[] = "SELECT count(*) FROM rankings";
static const char SQL_NOTE[] = "UPDATE rankings SET note = ? WHERE id = ?";

// Check that r names each candidate 1..k once with a rank in 1..k and distinct runs.
static int ranking_validate(const DbRanking *r, Err *e) {
    if (r->k < DB_RANK_MIN || r->k > DB_RANK_MAX)
        return err_set(e, "a ranking has %d to %d candidates, not %d", DB_RANK_MIN, DB_RANK_MAX, r->k);
    if (!r->prompt) return err_set(e, "a ranking needs its prompt");
    bool seen[DB_RANK_MAX + 1] = {0};
    for (int i = 0; i < r->k; i++) {
        const DbRankItem *it = &r->items[i];
        if (it->n < 1 || it->n > r->k) return err_set(e, "candidate %d is not between 1 and %d", it->n, r->k);
        if (seen[it->n]) return err_set(e, "candidate %d is ranked twice", it->n);
        seen[it->n] = true;
        if (it->rank < 1 || it->rank > r->k)
            return err_set(e, "candidate %d has rank %d, not between 1 and %d", it->n, it->rank, r->k);
        if (it->run_id <= 0) return err_set(e, "candidate %d has no run", it->n);
        for (int j = 0; j < i; j++)
            if (r->items[j].run_id == it->run_id)
                return err_set(e, "candidates %d and %d are the same run %lld", r->items[j].n, it->n,
                               (long long)it->run_id);
    }
    return 0;
}

int64_t db_ranking_insert(Db *db, DbRanking *r, Err *e) {
    const char *what = "cannot store the ranking in";
    if (ranking_validate(r, e)) return -1;
    bool own;
    if (db_tx_open(db, &own, e, what)) return -1;
    if (!r->created[0]) db_now(r->created);
    int status = -1;
    sqlite3_stmt *st = db_stmt(db, SQL_INSERT, e);
    if (st) {
        db_bind_str(st, 1, r->created);
        db_bind_text(st, 2, r->prompt, r->prompt_len);
        sqlite3_bind_int(st, 3, r->k);
        db_bind_str(st, 4, r->annotator);
        db_bind_str(st, 5, r->note);
        db_bind_str(st, 6, r->qkv_version ? r->qkv_version : QKV_VERSION);
        int rc = sqlite3_step(st);
        status = rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, what);
        sqlite3_reset(st);
    }
    int64_t id = status ? 0 : sqlite3_last_insert_rowid(db->h);
    for (int i = 0; !status && i < r->k; i++) {
        st = db_stmt(db, SQL_ITEM, e);
        if (!st) {
            status = -1;
            break;
        }
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, r->items[i].n);
        sqlite3_bind_int64(st, 3, r->items[i].run_id);
        sqlite3_bind_int(st, 4, r->items[i].rank);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
            if ((rc & 0xff) == SQLITE_CONSTRAINT)
                status = err_set(e, "%s '%s': candidate %d: run %lld does not exist", what, db->path,
                                 r->items[i].n, (long long)r->items[i].run_id);
            else
                status = db_fail(db, rc, e, what);
        }
        sqlite3_reset(st);
    }
    if (db_tx_close(db, own, status, e, what)) return -1;
    r->id = id;
    return id;
}

int db_ranking_get(Db *db, int64_t id, DbRanking *out, Err *e) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_stmt(db, SQL_GET, e);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int r = rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, "cannot read");
        sqlite3_reset(st);
        return r;
    }
    out->id = sqlite3_column_int64(st, 0);
    snprintf(out->created, sizeof out->created, "%s", (const char *)sqlite3_column_text(st, 1));
    out->k = sqlite3_column_int(st, 3);
    out->chat = sqlite3_column_int(st, 7) == 1;
    Buf b = {.fallible = true}; // the row's text: input-sized (mem.h rule 1)
    size_t off[4];
    int bad = db_col_stash(st, 2, &b, &off[0], &out->prompt_len) || db_col_stash(st, 4, &b, &off[1], NULL) ||
              db_col_stash(st, 5, &b, &off[2], NULL) || db_col_stash(st, 6, &b, &off[3], NULL);
    sqlite3_reset(st);
    if (bad) {
        db_row_oom(e, "ranking", (long long)id, &b);
        buf_free(&b);
        memset(out, 0, sizeof *out);
        return -1;
    }
    out->mem_ = buf_take(&b);
    const char **dst[4] = {&out->prompt, &out->annotator, &out->note, &out->qkv_version};
    for (int i = 0; i < 4; i++) *dst[i] = off[i] == SIZE_MAX ? NULL : out->mem_ + off[i];

    st = db_stmt(db, SQL_ITEMS, e);
    if (!st) {
        db_ranking_done(out);
        return -1;
    }
    sqlite3_bind_int64(st, 1, id);
    int n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < DB_RANK_MAX) {
        out->items[n].n = sqlite3_column_int(st, 0);
        out->items[n].run_id = sqlite3_column_int64(st, 1);
        out->items[n].rank = sqlite3_column_int(st, 2);
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        db_fail(db, rc, e, "cannot read");
        db_ranking_done(out);
        return -1;
    }
    if (n != out->k) {
        err_set(e, "ranking %lld in '%s' has %d of its %d candidates", (long long)id, db->path, n, out->k);
        db_ranking_done(out);
        return -1;
    }
    return 1;
}

void db_ranking_done(DbRanking *r) {
    free(r->mem_);
    memset(r, 0, sizeof *r);
}

int64_t db_ranking_count(Db *db, Err *e) { return db_count(db, SQL_COUNT, e); }

int db_ranking_set_note(Db *db, int64_t id, const char *note, Err *e) {
    const char *what = "cannot store the note in";
    bool own;
    if (db_tx_open(db, &own, e, what)) return -1;
    int status = -1, changed = 0;
    sqlite3_stmt *st = db_stmt(db, SQL_NOTE, e);
    if (st) {
        db_bind_str(st, 1, note && *note ? note : NULL);
        sqlite3_bind_int64(st, 2, id);
        int rc = sqlite3_step(st);
        status = rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, what);
        if (!status) changed = sqlite3_changes(db->h);
        sqlite3_reset(st);
    }
    if (db_tx_close(db, own, status, e, what)) return -1;
    return changed > 0;
}

typedef struct {
    Db *db;
    DbRankingFn fn;
    void *user;
    Err *e;
} RankingVisit;

static int visit_ranking(sqlite3_stmt *st, void *user) {
    RankingVisit *v = user;
    DbRanking r;
    int got = db_ranking_get(v->db, sqlite3_column_int64(st, 0), &r, v->e);
    if (got <= 0) return got < 0 ? -1 : 0; // absent: not reached, rankings are never deleted
    int rc = v->fn(v->user, &r);
    db_ranking_done(&r);
    return rc;
}

int db_rankings_each(Db *db, const DbFilter *f, long limit, bool newest_first, DbRankingFn fn, void *user,
                     Err *e) {
    RankingVisit v = {db, fn, user, e};
    return db_filtered_each(db, "SELECT g.id FROM rankings g", "g.id", DB_WHERE_RANKINGS, f, limit, newest_first, visit_ranking, &v,
                            e);
}
