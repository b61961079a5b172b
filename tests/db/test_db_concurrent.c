// test_db_concurrent.c - two processes create and log to one new database file at the
// same time (each run its own transaction, rankings in bigger ones) while a third process
// exports its contents: no row is lost and nobody sees "database is locked" or any other error.
#include "dbtest.h"

#include <fcntl.h>
#include <sys/wait.h>

enum { N_RUNS = 300, N_RANKINGS = 15, K = 4 };

static int writer(const char *path, int go, int id) {
    char start;
    if (read(go, &start, 1) != 1) return 2; // start together
    Err e = {{0}};
    Db *db = NULL;
    if (db_open(path, 0, &db, &e)) {
        fprintf(stderr, "writer %d: %s\n", id, e.msg);
        return 1;
    }
    char out[128], ann[16];
    snprintf(ann, sizeof ann, "w%d", id);
    for (int i = 0; i < N_RUNS; i++) {
        DbRun r;
        dbt_run(&r, i, NASTY, out, sizeof out);
        r.annotator = ann;
        if (db_run_insert(db, &r, &e) < 0) {
            fprintf(stderr, "writer %d: %s\n", id, e.msg);
            return 1;
        }
        if (i % (N_RUNS / N_RANKINGS) != 0) continue;
        DbRanking rk = {.prompt = "p", .prompt_len = 1, .k = K, .annotator = ann};
        if (db_begin(db, &e)) {
            fprintf(stderr, "writer %d: %s\n", id, e.msg);
            return 1;
        }
        for (int c = 0; c < K; c++) {
            dbt_run(&r, i, "p", out, sizeof out);
            r.annotator = ann;
            r.kind = "rank";
            rk.items[c] = (DbRankItem){c + 1, db_run_insert(db, &r, &e), K - c};
            if (rk.items[c].run_id < 0) {
                fprintf(stderr, "writer %d: %s\n", id, e.msg);
                return 1;
            }
        }
        if (db_ranking_insert(db, &rk, &e) < 0 || db_commit(db, &e)) {
            fprintf(stderr, "writer %d: %s\n", id, e.msg);
            return 1;
        }
    }
    db_close(db);
    return 0;
}

static int exporter(const char *path, int go) {
    char c;
    if (read(go, &c, 1) != 1) return 2;
    Err e = {{0}};
    Db *db = NULL;
    // the writers may not have created the file yet
    for (int tries = 0; db_open(path, 0, &db, &e); tries++) {
        if (tries > 200) {
            fprintf(stderr, "exporter: %s\n", e.msg);
            return 1;
        }
        usleep(5000);
    }
    long count;
    for (int i = 0; i < 20; i++) {
        DbExport what = i % 2 ? DB_EXPORT_RUNS : DB_EXPORT_PAIRS_TRL;
        if (db_export(db, what, dbt_path("concurrent.jsonl"), NULL, 1, &count, NULL, &e)) {
            fprintf(stderr, "exporter: %s\n", e.msg);
            return 1;
        }
    }
    db_close(db);
    return 0;
}

int main(void) {
    dbt_tmpdir();
    const char *path = dbt_path("shared/qkv.db");
    int go[2], errp[2];
    if (pipe(go) || pipe(errp)) return 1;
    pid_t pids[3];
    fflush(NULL);
    for (int p = 0; p < 3; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            close(go[1]);
            close(errp[0]);
            dup2(errp[1], 2); // everything a process would show the user
            _exit(p < 2 ? writer(path, go[0], p) : exporter(path, go[0]));
        }
    }
    close(go[0]);
    close(errp[1]);
    if (write(go[1], "xxx", 3) != 3) return 1;
    close(go[1]);
    Buf said = {0};
    char chunk[4096];
    ssize_t got;
    while ((got = read(errp[0], chunk, sizeof chunk)) > 0) buf_put(&said, chunk, (size_t)got);
    for (int p = 0; p < 3; p++) {
        int st;
        waitpid(pids[p], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "process %d failed (status %d)\n", p, st);
            check_failures++;
        }
    }
    if (said.len) {
        fprintf(stderr, "the processes said:\n%s", said.data);
        check_failures++;
    }
    CHECK(!said.data || !strstr(said.data, "locked"));
    buf_free(&said);

    Err e = {{0}};
    Db *db = NULL;
    CHECK_INT(db_open(path, 0, &db, &e), 0);
    if (db) {
        CHECK_INT(db_check(db, &e), 0);
        CHECK_INT(db_run_count(db, &e), 2 * (N_RUNS + N_RANKINGS * K));
        CHECK_INT(db_ranking_count(db, &e), 2 * N_RANKINGS);
        long count;
        CHECK_INT(db_export(db, DB_EXPORT_RUNS, dbt_path("all.jsonl"), &(DbFilter){.annotator = "w1"}, 1, &count, NULL, &e),
                  0);
        CHECK_INT(count, N_RUNS + N_RANKINGS * K);
        db_close(db);
    }
    return CHECK_DONE();
}
