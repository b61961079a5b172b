// db.c - opening qkv's database: where the file lives, recognising what it holds,
// migrating it forward, transactions that wait for other processes instead of failing,
// and the messages that say what went wrong.
#define _GNU_SOURCE // memmem
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/fs.h"
#include "base/mem.h"
#include "base/proc.h"
#include "db_int.h"
#include "schema_sql.h"

// PRAGMA application_id of qkv databases: "qkv1".
#define DB_APP_ID 0x716b7631

// What to do with a damaged database (SQLite's own recovery: what can be read, into a new file).
// (a format: the database's path is its argument)
#define DB_RECOVER_HINT "keep the file, and recover what it holds with: sqlite3 '%s' .recover | sqlite3 NEW.db"

enum {
    DB_BUSY_TOTAL_MS = 60000 // how long a write waits for other processes in all
};

int db_schema_version(void) { return DB_SCHEMA_VERSION; }

const char *db_path(const Db *db) { return db->path; }

bool db_readonly(const Db *db) { return db->readonly; }

void db_set_stop(Db *db, volatile sig_atomic_t *stop) { db->stop = stop; }

// ---- messages ----------------------------------------------------------------------------

// Why a write to the database at path may have failed when SQLite kept no errno: 1 when
// its file system has (almost) no free space, 2 when the process's file size limit is
// (almost) reached by the database or its WAL, else 0.
static int no_room(const char *path) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = 0;
    else snprintf(dir, sizeof dir, ".");
    struct statvfs vfs;
    if (statvfs(dir, &vfs) == 0 && (unsigned long long)vfs.f_bavail * vfs.f_frsize < (1ull << 20)) return 1;
    struct rlimit lim;
    if (getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
        char wal[PATH_MAX + 8];
        snprintf(wal, sizeof wal, "%s-wal", path);
        struct stat st;
        const char *files[] = {path, wal};
        for (int i = 0; i < 2; i++)
            if (stat(files[i], &st) == 0 && (unsigned long long)st.st_size + (1ull << 20) > lim.rlim_cur) return 2;
    }
    return 0;
}

int db_fail(Db *db, int rc, Err *e, const char *what) {
    const char *path = db ? db->path : "?";
    int prim = rc & 0xff;
    int sys = db && db->h ? sqlite3_system_errno(db->h) : 0;
    const char *msg = db && db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc);
    switch (prim) {
    case SQLITE_READONLY:
        if (rc == SQLITE_READONLY_DIRECTORY || rc == SQLITE_READONLY_CANTINIT)
            return err_set(e, "%s '%s': the database is read-only, and so is its directory", what, path);
        return err_set(e, "%s '%s': the database is read-only", what, path);
    case SQLITE_FULL:
        return err_set(e, "%s '%s': the disk is full", what, path);
    case SQLITE_IOERR:
        if (sys == ENOSPC || sys == EDQUOT)
            return err_set(e, "%s '%s': the disk is full (%s)", what, path, strerror(sys));
        if (sys == EFBIG || (!sys && no_room(path) == 2))
            return err_set(e, "%s '%s': the disk is full for this process (file size limit, ulimit -f)", what,
                           path);
        if (!sys && no_room(path) == 1) return err_set(e, "%s '%s': the disk is full", what, path);
        if (sys) return err_set(e, "%s '%s': disk I/O error (%s)", what, path, strerror(sys));
        return err_set(e, "%s '%s': disk I/O error", what, path);
    case SQLITE_NOTADB:
        return err_set(e, "%s '%s': the file is not a database", what, path);
    case SQLITE_CORRUPT:
        if (db) db->sound = -1;
        return err_set(e, "%s '%s': the database is corrupt (%s); " DB_RECOVER_HINT, what, path, msg, path);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        if (db && db->wait_stopped)
            return err_set(e, "%s '%s': stopped waiting for another process that holds the database", what, path);
        return err_set(e, "%s '%s': another process kept the database busy for %d s", what, path,
                       DB_BUSY_TOTAL_MS / 1000);
    case SQLITE_CANTOPEN:
        if (sys) return err_set(e, "%s '%s': %s", what, path, strerror(sys));
        return err_set(e, "%s '%s': cannot open the file", what, path);
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return err_set(e, "%s '%s': permission denied", what, path);
    default:
        return err_set(e, "%s '%s': %s", what, path, msg);
    }
}

int db_sound(Db *db, Err *e, const char *what) {
    if (!db->sound && sqlite3_get_autocommit(db->h)) {
        // (outside a transaction: the check holds no write lock; a few tenths of a second for
        // 100 MB, once a session)
        sqlite3_stmt *st = db_prepare(db, "PRAGMA quick_check(1)", e);
        if (!st) return -1;
        int rc = sqlite3_step(st);
        const char *res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        int status = 0;
        if (rc != SQLITE_ROW) status = db_fail(db, rc, e, what);
        else if (res && strcmp(res, "ok")) { // "*** in database main ***\nOn tree page 7 ...": the problem
            db->sound = -1;
            const char *nl = strrchr(res, '\n');
            status = err_set(e, "%s '%s': the database is damaged (%.120s); " DB_RECOVER_HINT, what, db->path,
                             nl ? nl + 1 : res, db->path);
        } else {
            db->sound = 1;
        }
        sqlite3_finalize(st);
        if (status) return status;
    }
    if (db->sound >= 0) return 0;
    return err_set(e, "%s '%s': the database is damaged (found earlier in this session), qkv writes and exports nothing more; "
                   DB_RECOVER_HINT, what,
                   db->path, db->path);
}

int db_writable(Db *db, Err *e, const char *what) {
    if (db->readonly) return err_set(e, "%s '%s': the database is read-only", what, db->path);
    return db_sound(db, e, what);
}

// ---- statements ------------------------------------------------------------------------

sqlite3_stmt *db_prepare(Db *db, const char *sql, Err *e) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        db_fail(db, rc, e, "cannot read");
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

sqlite3_stmt *db_stmt(Db *db, const char *sql, Err *e) {
    for (int i = 0; i < db->n_cache; i++)
        if (db->cache[i].sql == sql) {
            sqlite3_stmt *st = db->cache[i].st;
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return st;
        }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        db_fail(db, rc, e, "cannot use");
        sqlite3_finalize(st);
        return NULL;
    }
    assert(db->n_cache < DB_STMT_CACHE && "db/ uses more static statements than DB_STMT_CACHE");
    db->cache[db->n_cache].sql = sql;
    db->cache[db->n_cache].st = st;
    db->n_cache++;
    return st;
}

int db_bind_text(sqlite3_stmt *st, int i, const char *s, size_t n) {
    if (!s) return sqlite3_bind_null(st, i);
    return sqlite3_bind_text64(st, i, s, n, SQLITE_TRANSIENT, SQLITE_UTF8);
}

int db_col_stash(sqlite3_stmt *st, int col, Buf *b, size_t *off, size_t *len) {
    *off = SIZE_MAX;
    if (len) *len = 0;
    if (sqlite3_column_type(st, col) == SQLITE_NULL) return 0;
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (!t) { // NULL for a value that is not: SQLite ran out of memory, or an empty blob
        if (sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM) return -1;
        t = (const unsigned char *)"", n = 0;
    }
    size_t at = b->len;
    buf_put(b, t, n);
    buf_putc(b, 0);
    if (b->failed) return -1;
    *off = at;
    if (len) *len = n;
    return 0;
}

int db_row_oom(Err *e, const char *what, long long id, const Buf *b) {
    if (b->failed) return err_set(e, "out of memory for the text of %s %lld (%zu bytes)", what, id, b->failed);
    return err_set(e, "out of memory for the text of %s %lld", what, id);
}

// ---- transactions ------------------------------------------------------------------------

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

// Tell the wait hook how long this wait has lasted; false: stop waiting.
static bool wait_goes_on(Db *db, double now) {
    if (db->wait_stopped) return false;
    if (now - db->wait_t0 > DB_BUSY_TOTAL_MS / 1e3) return false;
    double waited = db->wait_calls++ ? now - db->wait_t0 : 0;
    if (db->wait.fn && !db->wait.fn(db->wait.user, db->path, waited)) db->wait_stopped = true;
    return !db->wait_stopped;
}

static void wait_begin(Db *db) {
    db->wait_t0 = clock_now();
    db->wait_calls = 0;
    db->wait_stopped = false;
}

// SQLite's busy handler: while another process holds the lock, sleep a little and try again
// (short sleeps first, so that a brief write by another qkv costs little), telling the hook.
static int on_busy(void *p, int count) {
    Db *db = p;
    if (count == 0 && !db->retrying) wait_begin(db);
    if (!wait_goes_on(db, clock_now())) return 0;
    sleep_ms(count < 20 ? 1 + count / 4 : 20);
    return 1;
}

// Step a statement that takes a lock, retrying while the database is busy: SQLite returns
// SQLITE_BUSY without calling its busy handler when waiting could deadlock (a reader that
// wants to write), so the statement is reset and stepped again.
static int step_retry(Db *db, sqlite3_stmt *st) {
    wait_begin(db);
    db->retrying++;
    int rc;
    for (int i = 0;; i++) {
        rc = sqlite3_step(st);
        if ((rc & 0xff) != SQLITE_BUSY || !wait_goes_on(db, clock_now())) break;
        sqlite3_reset(st);
        sleep_ms(1 + (int)(((unsigned)getpid() * 7u + (unsigned)i * 13u) % 20u));
    }
    db->retrying--;
    return rc;
}

// Run a fixed SQL statement through the cache, retrying while busy.
static int exec_retry(Db *db, const char *sql, Err *e, const char *what) {
    sqlite3_stmt *st = db_stmt(db, sql, e);
    if (!st) return -1;
    int rc = step_retry(db, st);
    int status = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(db, rc, e, what);
    sqlite3_reset(st);
    return status;
}

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";

static const char SQL_SAVEPOINT[] = "SAVEPOINT qkv_write";
static const char SQL_RELEASE[] = "RELEASE qkv_write";
static const char SQL_UNDO[] = "ROLLBACK TO qkv_write";

int db_tx_open(Db *db, bool *own, Err *e, const char *what) {
    *own = false;
    if (db_writable(db, e, what)) return -1;
    if (!sqlite3_get_autocommit(db->h)) // inside the caller's transaction: a savepoint
        return exec_retry(db, SQL_SAVEPOINT, e, what);
    if (exec_retry(db, SQL_BEGIN, e, what)) return -1;
    *own = true;
    return 0;
}

void db_rollback(Db *db) {
    if (sqlite3_get_autocommit(db->h)) return;
    sqlite3_stmt *st = db_stmt(db, SQL_ROLLBACK, NULL);
    if (st) {
        sqlite3_step(st);
        sqlite3_reset(st);
    }
}

int db_tx_close(Db *db, bool own, int status, Err *e, const char *what) {
    if (!own) {
        if (sqlite3_get_autocommit(db->h)) return status; // SQLite rolled back already
        if (status) exec_retry(db, SQL_UNDO, NULL, what);
        if (exec_retry(db, SQL_RELEASE, e, what)) return -1;
        return status;
    }
    if (status) {
        db_rollback(db);
        return status;
    }
    if (exec_retry(db, SQL_COMMIT, e, what)) {
        db_rollback(db);
        return -1;
    }
    return 0;
}

int db_write_one(Db *db, const char *sql, void (*bind)(sqlite3_stmt *, const void *), const void *arg,
                 const char *what, int64_t *rowid, Err *e) {
    if (db_writable(db, e, what)) return -1;
    bool own;
    if (db_tx_open(db, &own, e, what)) return -1;
    int status = -1;
    sqlite3_stmt *st = db_stmt(db, sql, e);
    if (st) {
        bind(st, arg);
        int rc = sqlite3_step(st);
        status = rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, what);
        if (!status && rowid) *rowid = sqlite3_last_insert_rowid(db->h);
        sqlite3_reset(st);
    }
    return db_tx_close(db, own, status, e, what);
}

int db_begin(Db *db, Err *e) {
    if (!sqlite3_get_autocommit(db->h)) return err_set(e, "a transaction is already open on '%s'", db->path);
    bool own;
    return db_tx_open(db, &own, e, "cannot write to");
}

int db_commit(Db *db, Err *e) { return db_tx_close(db, true, 0, e, "cannot write to"); }

// ---- paths -----------------------------------------------------------------------------

char *db_resolve_path(const char *path, Err *e) {
    if (path && *path) return xstrdup(path);
    const char *env = getenv("QKV_DB");
    if (env && *env) return xstrdup(env);
    Buf b = {0};
    const char *xdg = getenv("XDG_DATA_HOME");
    if (xdg && xdg[0] == '/') { // the XDG spec ignores relative values
        buf_printf(&b, "%s/qkv/qkv.db", xdg);
        return buf_take(&b);
    }
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (!home || !*home) {
        err_set(e, "no database file: set --db, QKV_DB, XDG_DATA_HOME or HOME");
        return NULL;
    }
    buf_printf(&b, "%s/.local/share/qkv/qkv.db", home);
    return buf_take(&b);
}


// ---- opening -----------------------------------------------------------------------------

// Read one integer from a pragma or query with no parameters; -1 with e on error.
static int query_int(Db *db, const char *sql, long long *out, Err *e, const char *what) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) rc = step_retry(db, st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *out = 0;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : db_fail(db, rc, e, what);
}

static int query_text(Db *db, const char *sql, char *out, size_t cap, Err *e, const char *what) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) rc = step_retry(db, st);
    out[0] = 0;
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, cap, "%s", t ? (const char *)t : "");
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : db_fail(db, rc, e, what);
}

// Apply migrations from the database's version up to DB_SCHEMA_VERSION, each in its own
// write transaction. Another process may migrate at the same time: the version is read
// again inside each transaction.
static int db_migrate(Db *db, Err *e) {
    for (;;) {
        bool own;
        if (db_tx_open(db, &own, e, "cannot migrate")) return -1;
        long long v = 0, app = 0;
        if (query_int(db, "PRAGMA user_version", &v, e, "cannot migrate") ||
            query_int(db, "PRAGMA application_id", &app, e, "cannot migrate"))
            return db_tx_close(db, own, -1, e, "");
        if (v >= DB_SCHEMA_VERSION) return db_tx_close(db, own, 0, e, "cannot migrate");
        if (v < 0) {
            err_set(e, "cannot migrate '%s': schema version %lld does not exist", db->path, v);
            return db_tx_close(db, own, -1, e, "");
        }
        char *msg = NULL;
        int rc = sqlite3_exec(db->h, db_migrations[v], NULL, NULL, &msg);
        if (rc == SQLITE_OK && v == 0) {
            char sql[64];
            snprintf(sql, sizeof sql, "PRAGMA application_id = %d", DB_APP_ID);
            rc = sqlite3_exec(db->h, sql, NULL, NULL, &msg);
        }
        if (rc == SQLITE_OK) {
            char sql[64];
            snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", v + 1);
            rc = sqlite3_exec(db->h, sql, NULL, NULL, &msg);
        }
        if (rc != SQLITE_OK) {
            if (msg && (rc & 0xff) == SQLITE_ERROR) err_set(e, "%s", msg);
            else db_fail(db, rc, e, "cannot write");
            sqlite3_free(msg);
            err_prefix(e, "cannot migrate '%s' to schema version %lld (%s)", db->path, v + 1,
                       db_migration_names[v]);
            return db_tx_close(db, own, -1, e, "");
        }
        if (db_tx_close(db, own, 0, e, "cannot migrate")) return -1;
    }
}

void db_close(Db *db) {
    if (!db) return;
    for (int i = 0; i < db->n_cache; i++) sqlite3_finalize(db->cache[i].st);
    sqlite3_close_v2(db->h);
    free(db->path);
    free(db);
}

// SQL qkv_owner_alive(OWNER): 1 while the process an experiment's owner token names runs
// (base/proc.h), else 0; DB_EXP_STATUS reads a running experiment without one as interrupted.
static void owner_alive(sqlite3_context *c, int n, sqlite3_value **v) {
    (void)n;
    sqlite3_result_int(c, proc_token_alive((const char *)sqlite3_value_text(v[0])));
}

static void ascii_fold(const char *s, size_t n, Buf *out) {
    buf_clear(out);
    for (size_t i = 0; i < n; i++) buf_putc(out, s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i]);
}

static DbFoldFn text_fold = ascii_fold;

void db_set_fold(DbFoldFn fold) { text_fold = fold ? fold : ascii_fold; }

// qkv_has(text, needle): 1 when needle occurs in text, both case-folded (text_fold), over all
// of their bytes (LIKE, ASCII's case alone, stopped at a NUL); 0 for a NULL text.
static void has_text(sqlite3_context *c, int n, sqlite3_value **v) {
    (void)n;
    const char *a = (const char *)sqlite3_value_text(v[0]), *b = (const char *)sqlite3_value_text(v[1]);
    if (!a || !b) {
        sqlite3_result_int(c, 0);
        return;
    }
    Buf fa = {0}, fb = {0};
    text_fold(a, (size_t)sqlite3_value_bytes(v[0]), &fa);
    text_fold(b, (size_t)sqlite3_value_bytes(v[1]), &fb);
    sqlite3_result_int(c, !fb.len || (fa.len >= fb.len && memmem(fa.data, fa.len, fb.data, fb.len)));
    buf_free(&fa), buf_free(&fb);
}

// The connection's settings: extended result codes, qkv's busy handler, defensive mode, the SQL
// functions qkv's queries use.
static void configure(Db *db) {
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_handler(db->h, on_busy, db);
    sqlite3_db_config(db->h, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_create_function(db->h, "qkv_owner_alive", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, NULL, owner_alive, NULL, NULL);
    sqlite3_create_function(db->h, "qkv_has", 2, SQLITE_UTF8 | SQLITE_DIRECTONLY | SQLITE_DETERMINISTIC, NULL,
                            has_text, NULL, NULL);
}

// The file's schema version, application id and number of schema entries, in one statement so
// that the three come from one snapshot even while another process creates the schema. Returns
// SQLITE_ROW, or SQLite's code.
static int recognise(Db *db, long long *version, long long *app, long long *n_tables) {
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db->h,
                                "SELECT (SELECT user_version FROM pragma_user_version), "
                                "(SELECT application_id FROM pragma_application_id), "
                                "(SELECT count(*) FROM sqlite_schema)",
                                -1, &q, NULL);
    if (rc == SQLITE_OK) rc = step_retry(db, q);
    if (rc == SQLITE_ROW) {
        *version = sqlite3_column_int64(q, 0);
        *app = sqlite3_column_int64(q, 1);
        *n_tables = sqlite3_column_int64(q, 2);
    }
    sqlite3_finalize(q);
    return rc;
}

// Whether PATH+SUFFIX exists (and, when nonempty, holds something).
static bool side_file(const char *path, const char *suffix, bool nonempty) {
    Buf p = {0};
    buf_printf(&p, "%s%s", path, suffix);
    struct stat st;
    bool there = stat(p.data, &st) == 0 && (!nonempty || st.st_size > 0);
    buf_free(&p);
    return there;
}

// Open db->path again, read-only and immutable (a URI: file:PATH?immutable=1, the path's %, ?
// and # escaped).
static int reopen_immutable(Db *db) {
    Buf u = {0};
    buf_puts(&u, "file:");
    for (const char *p = db->path; *p; p++) {
        if (*p == '%' || *p == '?' || *p == '#') buf_printf(&u, "%%%02X", (unsigned char)*p);
        else buf_putc(&u, *p);
    }
    buf_puts(&u, "?immutable=1");
    sqlite3_close_v2(db->h);
    db->h = NULL;
    int rc = sqlite3_open_v2(u.data, &db->h, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    buf_free(&u);
    if (rc == SQLITE_OK) configure(db), db->readonly = true;
    return rc;
}

int db_open(const char *path, unsigned flags, Db **out, Err *e) { return db_open_wait(path, flags, NULL, out, e); }

int db_open_wait(const char *path, unsigned flags, const DbWait *wait, Db **out, Err *e) {
    *out = NULL;
    if (!path || !*path) return err_set(e, "no database file given");
    bool ro = flags & DB_OPEN_READONLY;
    struct stat st;
    bool exists = stat(path, &st) == 0;
    // a FIFO or device is refused before SQLite sees it: it would create its journal beside it
    // (/dev/null-journal) and then fail on it with "disk I/O error"
    if (exists && !S_ISREG(st.st_mode))
        return err_set(e, "cannot open database '%s': %s", path, fs_not_regular(st.st_mode));
    if (!exists && ro) return err_set(e, "cannot open database '%s': %s", path, strerror(ENOENT));
    if (!exists && fs_mkdir_parents(path, 0700, e)) return -1;

    Db *db = xcalloc(1, sizeof *db);
    db->path = xstrdup(path);
    if (wait) db->wait = *wait;
    int oflags = ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path, &db->h, oflags, NULL);
    if (rc != SQLITE_OK) {
        db_fail(db, rc, e, "cannot open database");
        db_close(db);
        return -1;
    }
    configure(db);
    db->readonly = ro || sqlite3_db_readonly(db->h, "main") == 1;
    // A file this process may not write, with no log beside it to read: read as immutable. Read
    // the usual way, SQLite would create the -wal and -shm files a WAL database's readers need,
    // with the file's own mode (0444), and leave them behind: once the file is made writable
    // again, they would keep every later qkv from writing to it.
    if (exists && db->readonly && access(path, W_OK) != 0 && !side_file(path, "-wal", true) &&
        !side_file(path, "-journal", false) && (rc = reopen_immutable(db)) != SQLITE_OK) {
        db_fail(db, rc, e, "cannot open database");
        goto fail;
    }

    // Recognise the file before writing anything to it.
    long long version, app, n_tables;
    rc = recognise(db, &version, &app, &n_tables);
    // A WAL database in a directory this process may not write (a read-only file system, another
    // user's directory) cannot get the -shm file its readers need: it is read as immutable then,
    // read-only (no process can be writing it there either).
    int prim = rc & 0xff;
    if (exists && (prim == SQLITE_CANTOPEN || rc == SQLITE_READONLY_CANTINIT || rc == SQLITE_READONLY_DIRECTORY) &&
        reopen_immutable(db) == SQLITE_OK)
        rc = recognise(db, &version, &app, &n_tables);
    if (rc != SQLITE_ROW) {
        db_fail(db, rc, e, "cannot open database");
        goto fail;
    }
    if (app != 0 && app != DB_APP_ID) {
        err_set(e, "cannot open database '%s': it belongs to another program (application_id %lld), not qkv",
                path, app);
        goto fail;
    }
    if (version < 0) {
        err_set(e, "cannot open database '%s': it is damaged (schema version %lld does not exist)", path, version);
        goto fail;
    }
    if (version > DB_SCHEMA_VERSION) {
        err_set(e, "cannot open database '%s': it was written by a newer qkv (schema version %lld; this "
                   "qkv %s knows up to %d); use a newer qkv or another --db file",
                path, version, QKV_VERSION, DB_SCHEMA_VERSION);
        goto fail;
    }
    if (app == 0 && version == 0 && n_tables > 0) {
        err_set(e, "cannot open database '%s': it is an SQLite database of another program, not qkv's", path);
        goto fail;
    }
    if (db->readonly && version < DB_SCHEMA_VERSION) {
        if (version == 0)
            err_set(e, "cannot open database '%s': the file is read-only and holds no qkv data", path);
        else
            err_set(e, "cannot open database '%s': the file is read-only and needs an upgrade from schema "
                       "version %lld to %d",
                    path, version, DB_SCHEMA_VERSION);
        goto fail;
    }

    if (!db->readonly) {
        char mode[32];
        if (query_text(db, "PRAGMA journal_mode", mode, sizeof mode, e, "cannot open database")) goto fail;
        if (strcmp(mode, "wal") != 0) {
            if (query_text(db, "PRAGMA journal_mode = WAL", mode, sizeof mode, e, "cannot open database"))
                goto fail;
            if (strcmp(mode, "wal") != 0) {
                err_set(e, "cannot open database '%s': cannot switch it to WAL mode (still '%s')", path, mode);
                goto fail;
            }
        }
        // FULL: a commit is on disk when it returns, so a power cut loses no ranking.
        long long ignored;
        if (query_int(db, "PRAGMA synchronous = FULL", &ignored, e, "cannot open database")) goto fail;
    }
    long long ignored;
    if (query_int(db, "PRAGMA foreign_keys = ON", &ignored, e, "cannot open database")) goto fail;
    if (!db->readonly && version < DB_SCHEMA_VERSION && db_migrate(db, e)) goto fail;
    *out = db;
    return 0;
fail:
    db_close(db);
    return -1;
}

int db_check(Db *db, Err *e) {
    sqlite3_stmt *st = db_prepare(db, "PRAGMA integrity_check", e);
    if (!st) return -1;
    int rc = sqlite3_step(st);
    int status = 0;
    if (rc != SQLITE_ROW) status = db_fail(db, rc, e, "cannot check");
    else if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0)
        status = err_set(e, "'%s' fails the integrity check: %s", db->path, sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (status) return status;
    st = db_prepare(db, "PRAGMA foreign_key_check", e);
    if (!st) return -1;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        status = err_set(e, "'%s' fails the foreign key check: row %lld of table %s", db->path,
                         (long long)sqlite3_column_int64(st, 1), sqlite3_column_text(st, 0));
    else if (rc != SQLITE_DONE)
        status = db_fail(db, rc, e, "cannot check");
    sqlite3_finalize(st);
    return status;
}

// ---- times -------------------------------------------------------------------------------

// Copy a formatted time into a 32-byte slot (the format always fits).
static void copy_time(char out[32], const char *tmp) {
    size_t n = strlen(tmp);
    if (n > 31) n = 31;
    memcpy(out, tmp, n);
    out[n] = 0;
}

void db_now(char out[32]) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char tmp[96];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
    copy_time(out, tmp);
}

// Read exactly n digits at *p into *v, advancing p.
static bool digits(const char **p, int n, int *v) {
    *v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9') return false;
        *v = *v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return true;
}

int db_time_parse(const char *in, bool end, char out[32], Err *e) {
    const char *p = in;
    int y, mo, d, h = end ? 23 : 0, mi = end ? 59 : 0, s = end ? 59 : 0, ms = end ? 999 : 0;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' || !digits(&p, 2, &d))
        goto bad;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi)) goto bad;
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &s)) goto bad;
            if (*p == '.') {
                p++;
                int n = 0, v = 0;
                while (*p >= '0' && *p <= '9') {
                    if (n < 3) v = v * 10 + (*p - '0'), n++;
                    p++;
                }
                if (n == 0) goto bad;
                while (n < 3) v = v * 10 + (end ? 9 : 0), n++;
                ms = v;
            } else if (!end) {
                ms = 0;
            }
        }
        if (*p == 'Z') p++;
    }
    if (*p) goto bad;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || s > 60) goto bad;
    char tmp[96];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, h, mi, s, ms);
    copy_time(out, tmp);
    return 0;
bad:
    return err_set(e, "'%s' is not an ISO date or time (expected 2024-05-01 or 2024-05-01T12:30:00)", in);
}

// ---- filters -----------------------------------------------------------------------------

static void where_and(DbWhere *w, const char *clause) {
    buf_puts(&w->sql, w->sql.len ? " AND " : " WHERE ");
    buf_puts(&w->sql, clause);
}

static void where_param_n(DbWhere *w, const char *v, size_t n) {
    w->params[w->n] = v, w->lens[w->n++] = n;
}

static void where_param(DbWhere *w, const char *v) { where_param_n(w, v, SIZE_MAX); }

int db_where_build(const DbFilter *f, DbWhereKind of, DbWhere *w, Err *e) {
    memset(w, 0, sizeof *w);
    if (!f) return 0;
    const char *t = of == DB_WHERE_RANKINGS ? "g" : of == DB_WHERE_EXPERIMENTS ? "x" : "r"; // whose time and annotator
    char clause[512];
    if (f->since) {
        if (db_time_parse(f->since, false, w->times[0], e)) return err_prefix(e, "since");
        snprintf(clause, sizeof clause, "%s.created >= ?", t);
        where_and(w, clause);
        where_param(w, w->times[0]);
    }
    if (f->until) {
        if (db_time_parse(f->until, true, w->times[1], e)) return err_prefix(e, "until");
        snprintf(clause, sizeof clause, "%s.created <= ?", t);
        where_and(w, clause);
        where_param(w, w->times[1]);
    }
    if (f->annotator) {
        snprintf(clause, sizeof clause, "%s.annotator = ?", t);
        where_and(w, clause);
        where_param(w, f->annotator);
    }
    if (f->model) {
        if (of == DB_WHERE_RANKINGS)
            where_and(w, "EXISTS (SELECT 1 FROM ranking_items i JOIN runs r ON r.id = i.run_id "
                         "WHERE i.ranking_id = g.id AND (instr(r.model_path, ?) > 0 OR "
                         "substr(r.model_sha256, 1, length(?)) = ?))");
        else {
            snprintf(clause, sizeof clause, "(instr(%s.model_path, ?) > 0 OR substr(%s.model_sha256, 1, length(?)) = ?)",
                     t, t);
            where_and(w, clause);
        }
        where_param(w, f->model), where_param(w, f->model), where_param(w, f->model);
    }
    if (f->kind && of == DB_WHERE_RUNS) {
        where_and(w, "r.kind = ?");
        where_param(w, f->kind);
    }
    if (f->text) { // a substring in any case (qkv_has: db_set_fold's folding, every byte, a NUL too)
        size_t tl = f->text_len ? f->text_len : strlen(f->text);
        if (of == DB_WHERE_RANKINGS) {
            where_and(w, "(qkv_has(g.prompt, ?) OR qkv_has(g.annotator, ?) OR qkv_has(g.note, ?))");
            for (int i = 0; i < 3; i++) where_param_n(w, f->text, tl);
        } else if (of == DB_WHERE_EXPERIMENTS) {
            where_and(w, "(qkv_has(x.task, ?) OR qkv_has(x.command, ?) OR qkv_has(x.model_path, ?) OR "
                         DB_EXP_STATUS " = ?)");
            for (int i = 0; i < 4; i++) where_param_n(w, f->text, tl);
        } else {
            where_and(w, "(qkv_has(r.prompt, ?) OR qkv_has(r.output, ?) OR qkv_has(r.model_path, ?) OR "
                         "qkv_has(r.annotator, ?) OR r.kind = ?)");
            for (int i = 0; i < 5; i++) where_param_n(w, f->text, tl);
        }
    }
    return 0;
}

void db_where_done(DbWhere *w) {
    buf_free(&w->sql);
}

int db_where_bind(sqlite3_stmt *st, const DbWhere *w, int first) {
    for (int i = 0; i < w->n; i++) {
        const char *p = w->params[i];
        int rc = w->lens[i] == SIZE_MAX ? db_bind_str(st, first + i, p) : db_bind_text(st, first + i, p, w->lens[i]);
        if (rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}

// ---- the file-hash cache -----------------------------------------------------------------

static const char SQL_HASH_GET[] = "SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ?";
static const char SQL_HASH_PUT[] =
    "INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, sha256, computed) VALUES (?, ?, ?, ?, ?)";

int db_hash_lookup(Db *db, const char *path, int64_t size, int64_t mtime_ns, char hex[65], Err *e) {
    sqlite3_stmt *st = db_stmt(db, SQL_HASH_GET, e);
    if (!st) return -1;
    db_bind_str(st, 1, path);
    sqlite3_bind_int64(st, 2, size);
    sqlite3_bind_int64(st, 3, mtime_ns);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(hex, 65, "%s", t ? (const char *)t : "");
        found = 1;
    } else if (rc != SQLITE_DONE) {
        found = db_fail(db, rc, e, "cannot read");
    }
    sqlite3_reset(st);
    return found;
}

int db_hash_store(Db *db, const char *path, int64_t size, int64_t mtime_ns, const char *hex, Err *e) {
    const char *what = "cannot write to";
    bool own;
    if (db_tx_open(db, &own, e, what)) return -1;
    sqlite3_stmt *st = db_stmt(db, SQL_HASH_PUT, e);
    int status = -1;
    if (st) {
        char now[32];
        db_now(now);
        db_bind_str(st, 1, path);
        sqlite3_bind_int64(st, 2, size);
        sqlite3_bind_int64(st, 3, mtime_ns);
        db_bind_str(st, 4, hex);
        db_bind_str(st, 5, now);
        int rc = sqlite3_step(st);
        status = rc == SQLITE_DONE ? 0 : db_fail(db, rc, e, what);
        sqlite3_reset(st);
    }
    return db_tx_close(db, own, status, e, what);
}

int db_filtered_each(Db *db, const char *select_from, const char *id_col, DbWhereKind of, const DbFilter *f,
                     long limit, bool newest_first, DbRowFn fn, void *user, Err *e) {
    DbWhere w;
    if (db_where_build(f, of, &w, e)) {
        db_where_done(&w);
        return -1;
    }
    Buf sql = {0};
    buf_printf(&sql, "%s%s ORDER BY %s %s", select_from, w.sql.len ? w.sql.data : "", id_col,
               newest_first ? "DESC" : "ASC");
    if (limit > 0) buf_printf(&sql, " LIMIT %ld", limit);
    sqlite3_stmt *st = db_prepare(db, sql.data, e);
    buf_free(&sql);
    int status = -1;
    // while this statement steps, its read transaction keeps what fn reads on one snapshot
    if (st && db_where_bind(st, &w, 1) == SQLITE_OK) {
        int rc = SQLITE_DONE;
        status = 0;
        while (!status && (rc = sqlite3_step(st)) == SQLITE_ROW) status = fn(st, user);
        if (!status && rc != SQLITE_DONE) status = db_fail(db, rc, e, "cannot read");
    } else if (st) {
        db_fail(db, SQLITE_ERROR, e, "cannot read");
    }
    sqlite3_finalize(st);
    db_where_done(&w);
    return status;
}
