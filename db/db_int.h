// db_int.h - what the files of db/ share: the Db handle, cached statements, transactions
// with retries, and error messages. Not for use outside db/.
#pragma once
#include <math.h>
#include <sqlite3.h>
#include <string.h>

#include "db.h"

// A run's status as read (an experiment's, a reward training's; the table aliased t): the stored
// one, but "interrupted" for a running one whose process is gone (qkv_owner_alive, registered on
// every connection: db.c).
#define DB_STATUS_OF(t) \
    "(CASE WHEN " t ".status = 'running' AND NOT qkv_owner_alive(" t ".owner) THEN 'interrupted' ELSE " t ".status END)"
#define DB_EXP_STATUS DB_STATUS_OF("x")

#ifndef QKV_VERSION
#define QKV_VERSION "unknown"
#endif

enum { DB_STMT_CACHE = 32 }; // the static SQL strings of db/ (about 20 today)

struct Db {
    sqlite3 *h;
    char *path;
    bool readonly;
    int sound;         // the structure checked before the first write: 0 not yet, 1 sound, -1 damaged
    struct {
        const char *sql; // identity: the address of a static SQL string
        sqlite3_stmt *st;
    } cache[DB_STMT_CACHE];
    int n_cache;
    DbWait wait;       // told while another process holds the lock (db_open_wait)
    double wait_t0;    // when the current wait began (clock_now)
    int wait_calls;    // calls of the hook in the current wait
    int retrying;      // inside step_retry: SQLite's own waits belong to its wait
    bool wait_stopped; // the hook said stop: the write fails as busy at once
    volatile sig_atomic_t *stop; // exports stop when it is up (db_set_stop)
};

// The prepared statement for a static SQL string (prepared once, kept until db_close),
// reset and with its bindings cleared. NULL with e filled on error.
sqlite3_stmt *db_stmt(Db *db, const char *sql, Err *e);
// Prepare a statement built at run time (the caller finalizes it).
sqlite3_stmt *db_prepare(Db *db, const char *sql, Err *e);
// Fill e with "what 'path': reason" for SQLite result code rc; returns -1.
int db_fail(Db *db, int rc, Err *e, const char *what);
// Fail with "what 'path': the database is read-only" when db is read-only, or when it is
// damaged (db_sound).
int db_writable(Db *db, Err *e, const char *what);
// Fail naming the damage and how to recover when db is damaged: its structure is checked
// (quick_check) once a session, before the first write or export, and a database that fails
// it, or on which SQLite reported corruption, is written and exported no more (damage SQLite
// cannot see while reading drops rows silently).
int db_sound(Db *db, Err *e, const char *what);

// Start a write transaction, or a savepoint when one is open (*own says whether this call
// started the transaction).
// BEGIN IMMEDIATE is retried while another process writes, so callers never see
// "database is locked" unless the lock is held for a minute.
int db_tx_open(Db *db, bool *own, Err *e, const char *what);
// End what db_tx_open started: commit (release) when status is 0, else roll back (to the
// savepoint). Returns status, or -1 when the commit fails.
int db_tx_close(Db *db, bool own, int status, Err *e, const char *what);

// Run the statement for the static SQL string sql after bind(st, arg) in a transaction (the
// caller's when one is open); *rowid (may be NULL): the row it inserted. 0 or -1 with e filled.
int db_write_one(Db *db, const char *sql, void (*bind)(sqlite3_stmt *, const void *), const void *arg,
                 const char *what, int64_t *rowid, Err *e);

// Bind n bytes of text (NULL binds SQL NULL); SQLite copies it.
int db_bind_text(sqlite3_stmt *st, int i, const char *s, size_t n);
static inline int db_bind_str(sqlite3_stmt *st, int i, const char *s) {
    return db_bind_text(st, i, s, s ? strlen(s) : 0);
}
// Bind a number, or NULL when it is not finite (NAN: not known).
static inline void db_bind_num(sqlite3_stmt *st, int i, double v) {
    if (isfinite(v)) sqlite3_bind_double(st, i, v);
    else sqlite3_bind_null(st, i);
}
// Append the column's text (and its terminating NUL) to b, recording its offset in *off
// (SIZE_MAX for NULL) and its length in *len when len is non-NULL. A row's text is input-sized
// (mem.h rule 1): give a fallible b. Returns 0, or -1 when memory ran out (b->failed says how
// much was asked for; 0 when SQLite itself ran out converting the value).
int db_col_stash(sqlite3_stmt *st, int col, Buf *b, size_t *off, size_t *len);
// The error for a row whose text did not fit (b as db_col_stash left it); always -1.
int db_row_oom(Err *e, const char *what, long long id, const Buf *b);

// A WHERE clause built from a DbFilter, with its parameters in order (values are always
// bound, never spliced into the SQL).
typedef struct DbWhere {
    Buf sql;           // " WHERE ..." or ""
    const char *params[16];
    size_t lens[16];   // each parameter's bytes (SIZE_MAX: up to its NUL)
    int n;
    char times[2][32]; // normalised since/until
} DbWhere;
// The table a filter applies to.
typedef enum {
    DB_WHERE_RUNS,        // runs aliased `r`
    DB_WHERE_RANKINGS,    // rankings aliased `g`: model matches a candidate's run; text the
                          // prompt, annotator or note
    DB_WHERE_EXPERIMENTS, // experiments aliased `x`: text matches the task, command or status;
                          // kind is ignored
} DbWhereKind;
// Build the clause for the table `of`. Returns 0 or -1 with e filled.
int db_where_build(const DbFilter *f, DbWhereKind of, DbWhere *w, Err *e);
void db_where_done(DbWhere *w);
// Bind w's parameters from index first; returns the SQLite result code.
int db_where_bind(sqlite3_stmt *st, const DbWhere *w, int first);

// Visit the rows of "SELECT_FROM [WHERE filter] ORDER BY id_col [DESC] [LIMIT limit]" (limit
// <= 0: all): the filter f (of the table `of`) built and bound, each row handed to fn(st, user)
// until it returns non-zero. Returns 0, fn's value, or -1 with e filled.
typedef int (*DbRowFn)(sqlite3_stmt *st, void *user);
int db_filtered_each(Db *db, const char *select_from, const char *id_col, DbWhereKind of, const DbFilter *f,
                     long limit, bool newest_first, DbRowFn fn, void *user, Err *e);

// The columns of a run, for "SELECT <DB_RUN_COLS> FROM runs r"; db_run_read reads them
// from column c0 on, borrowing the strings from the statement (valid until the next step)
// or copying them into r->mem_ when owned. 0, or -1 with e filled when an owned copy does
// not fit in memory (r is then empty).
extern const char DB_RUN_COLS[];
int db_run_read(sqlite3_stmt *st, int c0, DbRun *r, bool owned, Err *e);
// The single integer of a cached counting query, or -1 with e filled.
int64_t db_count(Db *db, const char *sql, Err *e);
