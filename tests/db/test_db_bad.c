// test_db_bad.c - databases qkv must not damage, and older ones it must upgrade:
// an older schema built by hand is migrated in place (and a migration that fails leaves
// it as it was); a newer schema, a file that is not a database, another program's SQLite
// file, a read-only file, a directory that cannot be created and a full disk each give a
// clear message, and files qkv cannot use are left byte for byte as they were.
#include "dbtest.h"
#include "db_int.h" // the SQLite handle, to cap the database size (a full disk)

#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include "schema_sql.h"

// "qkv1", as db.c writes it.
#define QKV_APP_ID 0x716b7631

static sqlite3 *raw_open(const char *path) {
    sqlite3 *h = NULL;
    if (sqlite3_open(path, &h) != SQLITE_OK) {
        fprintf(stderr, "raw open %s: %s\n", path, sqlite3_errmsg(h));
        exit(1);
    }
    return h;
}

static void raw_exec(sqlite3 *h, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "raw exec %.60s: %s\n", sql, msg);
        exit(1);
    }
}

static long long raw_int(const char *path, const char *sql) {
    sqlite3 *h = raw_open(path);
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

// A schema-version-1 database, as an older qkv left it (rollback journal, one run).
static void make_v1(const char *path, bool with_conflict) {
    sqlite3 *h = raw_open(path);
    raw_exec(h, db_migrations[0]);
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = 1", QKV_APP_ID);
    raw_exec(h, sql);
    raw_exec(h, "INSERT INTO runs (created, qkv_version, model_path, model_arch, prompt, temperature, top_k, "
                "top_p, seed, max_tokens, output) VALUES ('2023-01-02T03:04:05.000Z', '0.0.1', '/m/gpt2', "
                "'gpt2', 'old prompt', 0, 0, 1, 42, 8, 'old output')");
    if (with_conflict) raw_exec(h, "CREATE TABLE rankings (x)");
    sqlite3_close(h);
}

static void check_same_file(const char *path, const Buf *before, const char *what) {
    Buf after = {0};
    dbt_read(path, &after);
    if (after.len != before->len || memcmp(after.data, before->data, after.len) != 0) {
        fprintf(stderr, "%s: '%s' was modified (%zu bytes before, %zu after)\n", what, path, before->len,
                after.len);
        check_failures++;
    }
    buf_free(&after);
}

// db_open must fail on path with a message containing want, leaving the file as it was.
static void check_refused(const char *path, const char *want, const char *what) {
    Buf before = {0};
    dbt_read(path, &before);
    Err e = {{0}};
    Db *db = NULL;
    int rc = db_open(path, 0, &db, &e);
    if (rc == 0) {
        fprintf(stderr, "%s: opened '%s'\n", what, path);
        check_failures++;
        db_close(db);
    } else if (!strstr(e.msg, want) || !strstr(e.msg, path)) {
        fprintf(stderr, "%s: message \"%s\" lacks \"%s\" or the path\n", what, e.msg, want);
        check_failures++;
    }
    check_same_file(path, &before, what);
    char side[600];
    snprintf(side, sizeof side, "%s-journal", path);
    CHECK(!dbt_exists(side));
    buf_free(&before);
}

static void make_good(const char *path, int n_runs) {
    Err e = {{0}};
    Db *db = NULL;
    if (db_open(path, 0, &db, &e)) {
        fprintf(stderr, "open %s: %s\n", path, e.msg);
        exit(1);
    }
    char out[128];
    for (int i = 0; i < n_runs; i++) {
        DbRun r;
        dbt_run(&r, i, NASTY, out, sizeof out);
        if (db_run_insert(db, &r, &e) < 0) fprintf(stderr, "insert: %s\n", e.msg), exit(1);
    }
    db_close(db);
}

// Run fn in a child process as an unprivileged user when we are root (so that file
// permissions apply); returns the child's exit status.
static int as_user(int (*fn)(const char *), const char *arg) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(77);
        if (access(arg, F_OK) != 0 && errno == EACCES) _exit(77); // a folder above it shut to that user
        _exit(fn(arg));
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// As an unprivileged user: a read-only database is read (also where its directory is read-only
// too, as on a read-only file system: SQLite cannot create the -shm file WAL readers need, so it
// is opened immutable), reported as read-only when written, never written.
static int readonly_child(const char *path) {
    check_failures = 0; // count only what the child checks
    Err e = {{0}};
    Db *db = NULL;
    CHECK_INT(db_open(path, 0, &db, &e), 0);
    if (db) {
        CHECK(db_readonly(db));
        CHECK_INT(db_run_count(db, &e), 3); // still readable
        char out[128];
        DbRun r;
        dbt_run(&r, 9, "x", out, sizeof out);
        CHECK(db_run_insert(db, &r, &e) < 0);
        CHECK(strstr(e.msg, "read-only") != NULL);
        db_close(db);
    } else {
        CHECK(strstr(e.msg, path) != NULL);
        CHECK(strstr(e.msg, "read-only") || strstr(e.msg, "ermission denied"));
    }
    if (check_failures || getenv("QKV_TEST_VERBOSE")) fprintf(stderr, "read-only: message was \"%s\"\n", e.msg);
    return CHECK_DONE();
}

// As an unprivileged user: the database can be written (a run stored, then counted).
static int writable_child(const char *path) {
    check_failures = 0;
    Err e = {{0}};
    Db *db = NULL;
    CHECK_INT(db_open(path, 0, &db, &e), 0);
    if (db) {
        CHECK(!db_readonly(db));
        char out[128];
        DbRun r;
        dbt_run(&r, 9, "x", out, sizeof out);
        CHECK(db_run_insert(db, &r, &e) > 0);
        CHECK_INT(db_run_count(db, &e), 4);
        db_close(db);
    }
    if (check_failures || getenv("QKV_TEST_VERBOSE")) fprintf(stderr, "writable again: message was \"%s\"\n", e.msg);
    return CHECK_DONE();
}

// As an unprivileged user: a directory that may not be created.
static int nodir_child(const char *path) {
    check_failures = 0; // count only what the child checks
    Err e = {{0}};
    Db *db = NULL;
    CHECK_INT(db_open(path, 0, &db, &e), -1);
    CHECK(strstr(e.msg, "cannot create directory") && strstr(e.msg, "Permission denied"));
    if (check_failures) fprintf(stderr, "no dir: message was \"%s\"\n", e.msg);
    return CHECK_DONE();
}

// With files limited to a little more than the database: the log fails with "disk is
// full" after some runs, and works again once there is room.
static int full_child(const char *path) {
    check_failures = 0; // count only what the child checks
    struct stat st;
    stat(path, &st);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)st.st_size + 64 * 1024;
    setrlimit(RLIMIT_FSIZE, &lim);
    Err e = {{0}};
    Db *db = NULL;
    if (db_open(path, 0, &db, &e)) {
        fprintf(stderr, "full: open: %s\n", e.msg);
        return 1;
    }
    static char big[8192];
    memset(big, 'x', sizeof big - 1);
    int ok = 0;
    for (; ok < 1000; ok++) {
        DbRun r;
        char out[128];
        dbt_run(&r, ok, "fill", out, sizeof out);
        r.output = big;
        r.output_len = sizeof big - 1;
        if (db_run_insert(db, &r, &e) < 0) break;
    }
    CHECK(ok < 1000);
    CHECK(strstr(e.msg, "disk is full") != NULL);
    CHECK(strstr(e.msg, path) != NULL);
    if (check_failures) fprintf(stderr, "full: message was \"%s\"\n", e.msg);
    setrlimit(RLIMIT_FSIZE, &old); // room again
    DbRun r;
    char out[128];
    dbt_run(&r, 5000, "after", out, sizeof out);
    CHECK(db_run_insert(db, &r, &e) > 0);
    db_close(db);
    // report how many runs went in before the disk was full
    FILE *f = fopen(dbt_path("full.count"), "w");
    fprintf(f, "%d\n", ok + 1);
    fclose(f);
    return CHECK_DONE();
}

int main(void) {
    dbt_tmpdir();
    Err e = {{0}};
    Db *db = NULL;

    // ---- an older schema is migrated in place
    const char *v1 = dbt_path("v1.db");
    make_v1(v1, false);
    CHECK_INT(raw_int(v1, "PRAGMA user_version"), 1);
    CHECK_INT(db_open(v1, 0, &db, &e), 0);
    if (!db) fprintf(stderr, "migrating v1: %s\n", e.msg);
    if (db) {
        DbRun r;
        CHECK_INT(db_run_get(db, 1, &r, &e), 1);
        CHECK_STR(r.prompt, "old prompt");
        CHECK_STR(r.output, "old output");
        CHECK(r.seed == 42);
        db_run_done(&r);
        char out[128];
        int64_t ids[2];
        for (int i = 0; i < 2; i++) {
            dbt_run(&r, i, "new", out, sizeof out);
            ids[i] = db_run_insert(db, &r, &e);
        }
        DbRanking rk = {.prompt = "new", .prompt_len = 3, .k = 2};
        rk.items[0] = (DbRankItem){1, ids[0], 1};
        rk.items[1] = (DbRankItem){2, ids[1], 2};
        CHECK(db_ranking_insert(db, &rk, &e) > 0);
        CHECK_INT(db_check(db, &e), 0);
        db_close(db);
    }
    CHECK_INT(raw_int(v1, "PRAGMA user_version"), DB_SCHEMA_VERSION);
    CHECK_INT(raw_int(v1, "SELECT count(*) FROM runs"), 3);

    // ---- schema 8 to 9: the runs' KV cache types kept, q8_0 now stored, others still refused
    const char *v8 = dbt_path("v8.db");
    {
        sqlite3 *h = raw_open(v8);
        for (int i = 0; i < 8; i++) raw_exec(h, db_migrations[i]);
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = 8", QKV_APP_ID);
        raw_exec(h, sql);
        for (int i = 0; i < 2; i++) {
            snprintf(sql, sizeof sql, "%s", i ? "f16" : "f32");
            char ins[512];
            snprintf(ins, sizeof ins,
                     "INSERT INTO runs (created, qkv_version, model_path, model_arch, prompt, temperature, top_k, "
                     "top_p, seed, max_tokens, output, kv) VALUES ('2026-12-01T00:00:00.000Z', '0.1.0', '/m', "
                     "'gpt2', 'p%d', 0, 0, 1, 1, 8, 'o', '%s')", i, sql);
            raw_exec(h, ins);
        }
        sqlite3_close(h);
    }
    CHECK_INT(db_open(v8, 0, &db, &e), 0);
    if (db) {
        DbRun r;
        CHECK_INT(db_run_get(db, 2, &r, &e), 1);
        CHECK_STR(r.kv, "f16");
        db_run_done(&r);
        char out[128];
        dbt_run(&r, 0, "q8", out, sizeof out);
        r.kv = "q8_0";
        int64_t id = db_run_insert(db, &r, &e);
        CHECK(id > 0);
        CHECK_INT(db_run_get(db, id, &r, &e), 1);
        CHECK_STR(r.kv, "q8_0");
        db_run_done(&r);
        dbt_run(&r, 1, "bf16", out, sizeof out);
        r.kv = "bf16";
        CHECK(db_run_insert(db, &r, &e) < 0);
        CHECK(strstr(e.msg, "CHECK constraint") != NULL);
        CHECK_INT(db_check(db, &e), 0);
        db_close(db);
    }
    CHECK_INT(raw_int(v8, "PRAGMA user_version"), DB_SCHEMA_VERSION);
    CHECK_INT(raw_int(v8, "SELECT count(*) FROM runs WHERE kv = 'f32'"), 1);

    // ---- a migration that fails is rolled back whole
    const char *v1c = dbt_path("v1-conflict.db");
    make_v1(v1c, true);
    CHECK_INT(db_open(v1c, 0, &db, &e), -1);
    CHECK(strstr(e.msg, "cannot migrate") && strstr(e.msg, "schema version 2") && strstr(e.msg, "rankings"));
    CHECK_INT(raw_int(v1c, "PRAGMA user_version"), 1);
    CHECK_INT(raw_int(v1c, "SELECT count(*) FROM runs"), 1);
    CHECK_INT(raw_int(v1c, "SELECT count(*) FROM sqlite_schema WHERE name = 'ranking_items'"), 0);

    // ---- an empty file becomes a qkv database
    const char *empty = dbt_path("empty.db");
    dbt_write(empty, "", 0);
    CHECK_INT(db_open(empty, 0, &db, &e), 0);
    db_close(db);
    CHECK_INT(raw_int(empty, "PRAGMA user_version"), DB_SCHEMA_VERSION);
    CHECK_INT(raw_int(empty, "PRAGMA application_id"), QKV_APP_ID);

    // ---- a database from a newer qkv
    const char *newer = dbt_path("newer.db");
    make_good(newer, 2);
    {
        sqlite3 *h = raw_open(newer);
        raw_exec(h, "PRAGMA user_version = 99");
        sqlite3_close(h);
    }
    check_refused(newer, "newer qkv", "newer schema");
    CHECK_INT(raw_int(newer, "PRAGMA user_version"), 99);

    // ---- a qkv database whose schema version is negative (damaged, or written by hand):
    // refused, not migrated from a version that does not exist
    const char *negative = dbt_path("negative.db");
    make_good(negative, 1);
    {
        sqlite3 *h = raw_open(negative);
        raw_exec(h, "PRAGMA user_version = -1");
        sqlite3_close(h);
    }
    check_refused(negative, "schema version -1", "negative schema version");
    CHECK_INT(raw_int(negative, "PRAGMA user_version"), -1);

    // ---- files that are not qkv databases
    const char *text = dbt_path("notes.txt");
    Buf b = {0};
    for (int i = 0; i < 200; i++) buf_puts(&b, "this is a text file, not a database\n");
    dbt_write(text, b.data, b.len);
    check_refused(text, "not a database", "text file");
    char noise[8192];
    unsigned x = 12345;
    for (size_t i = 0; i < sizeof noise; i++) noise[i] = (char)((x = x * 1103515245u + 12345u) >> 16);
    const char *bin = dbt_path("noise.bin");
    dbt_write(bin, noise, sizeof noise);
    check_refused(bin, "not a database", "random bytes");
    // a valid SQLite header with a broken rest is refused too, untouched
    const char *torn = dbt_path("torn.db");
    make_good(torn, 1);
    dbt_read(torn, &b);
    memset(b.data + 100, 0xff, 40); // page 1's b-tree header
    dbt_write(torn, b.data, b.len);
    check_refused(torn, "cannot open database", "corrupt page 1");

    const char *other = dbt_path("other.sqlite");
    {
        sqlite3 *h = raw_open(other);
        raw_exec(h, "CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('x')");
        sqlite3_close(h);
    }
    check_refused(other, "another program", "foreign SQLite file");
    const char *other2 = dbt_path("other2.sqlite");
    {
        sqlite3 *h = raw_open(other2);
        raw_exec(h, "PRAGMA application_id = 1234; PRAGMA user_version = 1");
        sqlite3_close(h);
    }
    check_refused(other2, "another program", "foreign application id");

    // ---- a path that is there but is not a regular file (a FIFO, a device): refused as such, and
    // nothing is created beside it (it said "disk I/O error", and beside /dev/null SQLite made
    // /dev/null-journal); the device is a node like /dev/null in the scratch folder (root only)
    {
        mkdir(dbt_path("fifo"), 0755);
        mkfifo(dbt_path("fifo/qkv.db"), 0644);
        mkdir(dbt_path("dev"), 0755);
        bool have_dev = mknod(dbt_path("dev/qkv.db"), S_IFCHR | 0666, makedev(1, 3)) == 0;
        for (int k = 0; k < 1 + have_dev; k++) {
            const char *dir = dbt_path(k ? "dev" : "fifo"), *p = dbt_path(k ? "dev/qkv.db" : "fifo/qkv.db");
            Err e2 = {{0}};
            CHECK_INT(db_open(p, 0, &db, &e2), -1);
            if (!strstr(e2.msg, "not a regular file") || !strstr(e2.msg, p)) {
                fprintf(stderr, "%s: message \"%s\" lacks \"not a regular file\" or the path\n", dir, e2.msg);
                check_failures++;
            }
            int n = 0;
            DIR *d = opendir(dir);
            for (struct dirent *de; d && (de = readdir(d));) n += de->d_name[0] != '.';
            if (d) closedir(d);
            CHECK_INT(n, 1); // the node alone: no -journal, -wal or -shm beside it
        }
        if (!have_dev) fprintf(stderr, "a device node: cannot create one (not root), part skipped\n");
    }

    // ---- a path through a regular file: the directory cannot be created
    dbt_write(dbt_path("blocker"), "x", 1);
    CHECK_INT(db_open(dbt_path("blocker/sub/qkv.db"), 0, &db, &e), -1);
    CHECK(strstr(e.msg, "cannot create directory") && strstr(e.msg, "blocker") && strstr(e.msg, "Not a directory"));
    // and a directory the user may not write (checked as an unprivileged user)
    chmod(dbt_dir, 0755);
    mkdir(dbt_path("locked"), 0555);
    int rc = as_user(nodir_child, dbt_path("locked/sub/qkv.db"));
    if (rc != 77) CHECK_INT(rc, 0);
    CHECK(!dbt_exists(dbt_path("locked/sub")));

    // ---- a read-only file
    const char *ro = dbt_path("ro/qkv.db");
    mkdir(dbt_path("ro"), 0755);
    make_good(ro, 3);
    chmod(ro, 0444);
    dbt_read(ro, &b);
    rc = as_user(readonly_child, ro);
    if (rc == 77) fprintf(stderr, "read-only file: cannot drop privileges, part skipped\n");
    else CHECK_INT(rc, 0);
    check_same_file(ro, &b, "read-only file");
    // the same in a directory where SQLite may create its -wal and -shm files
    const char *ro2 = dbt_path("ro2/qkv.db");
    mkdir(dbt_path("ro2"), 0755);
    make_good(ro2, 3);
    chmod(ro2, 0444);
    chmod(dbt_path("ro2"), 0777);
    dbt_read(ro2, &b);
    rc = as_user(readonly_child, ro2);
    if (rc != 77) CHECK_INT(rc, 0);
    check_same_file(ro2, &b, "read-only file in a writable directory");
    if (rc != 77) {
        // ... leaving no -wal or -shm file of the read-only file's mode 0444 behind, which would
        // keep the file from being written once it is writable again (it was, before 2026-12-07)
        Buf side = {0};
        buf_printf(&side, "%s-wal", ro2);
        CHECK(!dbt_exists(side.data));
        buf_clear(&side);
        buf_printf(&side, "%s-shm", ro2);
        CHECK(!dbt_exists(side.data));
        buf_free(&side);
        chmod(ro2, 0666);
        rc = as_user(writable_child, ro2);
        if (rc != 77) CHECK_INT(rc, 0);
    }

    // ---- a full disk (file size limit): a clear message, committed runs kept, the failed one not
    const char *full = dbt_path("full.db");
    make_good(full, 3);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) _exit(full_child(full));
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    Buf cnt = {0};
    CHECK(dbt_read(dbt_path("full.count"), &cnt));
    int inserted = cnt.data ? atoi(cnt.data) : -1;
    buf_free(&cnt);
    CHECK_INT(db_open(full, 0, &db, &e), 0);
    if (db) {
        CHECK_INT(db_check(db, &e), 0);
        CHECK_INT(db_run_count(db, &e), 3 + inserted);
        db_close(db);
    }

    // ---- a full disk as SQLite sees it (a capped page count): SQLITE_FULL
    const char *capped = dbt_path("capped.db");
    make_good(capped, 3);
    CHECK_INT(db_open(capped, 0, &db, &e), 0);
    if (db) {
        sqlite3_exec(db->h, "PRAGMA max_page_count = 12", NULL, NULL, NULL);
        static char big[8192];
        memset(big, 'y', sizeof big - 1);
        int ok = 0;
        for (; ok < 100; ok++) {
            DbRun r;
            char out[128];
            dbt_run(&r, ok, "fill", out, sizeof out);
            r.output = big;
            r.output_len = sizeof big - 1;
            if (db_run_insert(db, &r, &e) < 0) break;
        }
        CHECK(ok < 100);
        CHECK(strstr(e.msg, "the disk is full") && strstr(e.msg, capped));
        CHECK_INT(db_run_count(db, &e), 3 + ok);
        CHECK_INT(db_check(db, &e), 0);
        db_close(db);
    }
    buf_free(&b);
    return CHECK_DONE();
}
