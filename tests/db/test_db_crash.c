// test_db_crash.c - a process killed with SIGKILL while it logs runs and stores rankings
// leaves a database that passes the integrity check, holds every row it reported as
// committed, and no half ranking (neither in the tables nor in what db_rankings_each lists). The child reports on a pipe: "B" before a ranking's
// transaction, "K id" after its commit, "R id" after each single run.
#include "dbtest.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <time.h>

enum { MAX_IDS = 200000 };

static void report(int fd, const char *s) {
    size_t n = strlen(s);
    if (write(fd, s, n) != (ssize_t)n) _exit(3);
}

// Log runs and rankings until killed.
static void child(const char *path, int fd, unsigned seed) {
    Err e = {{0}};
    Db *db = NULL;
    if (db_open(path, 0, &db, &e)) {
        fprintf(stderr, "child: %s\n", e.msg);
        _exit(2);
    }
    static char big[65536];
    memset(big, 'z', sizeof big - 1);
    char line[64], out[128];
    for (unsigned i = 0;; i++) {
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 16) % 3 == 0) {
            DbRun r;
            dbt_run(&r, (int)i, NASTY, out, sizeof out);
            int64_t id = db_run_insert(db, &r, &e);
            if (id < 0) fprintf(stderr, "child: %s\n", e.msg), _exit(2);
            snprintf(line, sizeof line, "R %lld\n", (long long)id);
            report(fd, line);
            continue;
        }
        // a ranking of 9 big candidates, all in one transaction
        report(fd, "B\n");
        if (db_begin(db, &e)) fprintf(stderr, "child: %s\n", e.msg), _exit(2);
        DbRanking rk = {.prompt = NASTY, .prompt_len = strlen(NASTY), .k = 9, .annotator = "crash"};
        for (int c = 0; c < 9; c++) {
            DbRun r;
            dbt_run(&r, (int)i, NASTY, out, sizeof out);
            r.kind = "rank";
            r.output = big;
            r.output_len = sizeof big - 1 - (size_t)c;
            int64_t id = db_run_insert(db, &r, &e);
            if (id < 0) fprintf(stderr, "child: %s\n", e.msg), _exit(2);
            rk.items[c] = (DbRankItem){c + 1, id, 1 + (c * 7) % 5};
        }
        int64_t rid = db_ranking_insert(db, &rk, &e);
        if (rid < 0 || db_commit(db, &e)) fprintf(stderr, "child: %s\n", e.msg), _exit(2);
        snprintf(line, sizeof line, "K %lld\n", (long long)rid);
        report(fd, line);
    }
}

static long long raw_int(sqlite3 *h, const char *sql) {
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

// db_rankings_each's callback: count the rankings listed and those that are not whole.
typedef struct Listed {
    long n, bad;
    int64_t last;
} Listed;

static int listed(void *user, const DbRanking *r) {
    Listed *l = user;
    l->n++;
    if (r->k != 9 || r->id <= l->last || strcmp(r->annotator ? r->annotator : "", "crash")) l->bad++;
    for (int i = 0; i < r->k; i++)
        if (r->items[i].n != i + 1 || r->items[i].run_id <= 0) l->bad++;
    l->last = r->id;
    return 0;
}

int main(void) {
    dbt_tmpdir();
    const char *path = dbt_path("crash/qkv.db");
    static int64_t runs[MAX_IDS], ranks[MAX_IDS];
    int n_runs = 0, n_ranks = 0, mid_ranking = 0, rounds = 0;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    // keep killing until several kills landed inside a ranking's transaction
    for (; rounds < 80 && (rounds < 12 || mid_ranking < 3); rounds++) {
        int pfd[2];
        if (pipe(pfd)) return 1;
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            child(path, pfd[1], (unsigned)rand());
        }
        close(pfd[1]);
        // the first round may die while creating the database; later ones run longer
        int ms = rounds == 0 ? rand() % 3 : 5 + rand() % 120;
        struct timespec ts = {0, (long)ms * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        if (!WIFSIGNALED(st)) {
            fprintf(stderr, "round %d: the child exited by itself (status %d)\n", rounds, WEXITSTATUS(st));
            check_failures++;
        }
        // what the child reported as committed
        Buf b = {0};
        char chunk[4096];
        ssize_t got;
        while ((got = read(pfd[0], chunk, sizeof chunk)) > 0) buf_put(&b, chunk, (size_t)got);
        close(pfd[0]);
        char last = 0;
        for (char *p = b.data; p && *p;) {
            char *nl = strchr(p, '\n');
            if (!nl) break; // a torn report line: not counted
            if (*p == 'R' && n_runs < MAX_IDS) runs[n_runs++] = atoll(p + 2);
            if (*p == 'K' && n_ranks < MAX_IDS) ranks[n_ranks++] = atoll(p + 2);
            last = *p;
            p = nl + 1;
        }
        if (last == 'B') mid_ranking++;
        buf_free(&b);

        // the database is sound and holds everything reported
        Err e = {{0}};
        Db *db = NULL;
        CHECK_INT(db_open(path, 0, &db, &e), 0);
        if (!db) {
            fprintf(stderr, "round %d: %s\n", rounds, e.msg);
            break;
        }
        if (db_check(db, &e)) fprintf(stderr, "round %d: %s\n", rounds, e.msg), check_failures++;
        for (int i = 0; i < n_runs; i++) {
            DbRun r;
            if (db_run_get(db, runs[i], &r, &e) != 1) {
                fprintf(stderr, "round %d: committed run %lld is missing\n", rounds, (long long)runs[i]);
                check_failures++;
            } else if (r.prompt_len != strlen(NASTY) || memcmp(r.prompt, NASTY, r.prompt_len)) {
                fprintf(stderr, "round %d: run %lld changed\n", rounds, (long long)runs[i]);
                check_failures++;
            }
            db_run_done(&r);
        }
        for (int i = 0; i < n_ranks; i++) {
            DbRanking rk;
            if (db_ranking_get(db, ranks[i], &rk, &e) != 1 || rk.k != 9) {
                fprintf(stderr, "round %d: committed ranking %lld is missing\n", rounds, (long long)ranks[i]);
                check_failures++;
            }
            db_ranking_done(&rk);
        }
        Listed l = {0};
        CHECK_INT(db_rankings_each(db, NULL, 0, false, listed, &l, &e), 0);
        CHECK_INT(l.bad, 0);
        CHECK_INT(l.n, db_ranking_count(db, &e));
        CHECK(l.n >= n_ranks);
        db_close(db);
        // no half ranking anywhere: every ranking has its k items, and no rank-candidate
        // run exists without its ranking
        sqlite3 *h;
        sqlite3_open(path, &h);
        CHECK_INT(raw_int(h, "SELECT count(*) FROM rankings g WHERE "
                             "(SELECT count(*) FROM ranking_items i WHERE i.ranking_id = g.id) != g.k"),
                  0);
        CHECK_INT(raw_int(h, "SELECT count(*) FROM runs r WHERE r.kind = 'rank' AND NOT EXISTS "
                             "(SELECT 1 FROM ranking_items i WHERE i.run_id = r.id)"),
                  0);
        CHECK_INT(raw_int(h, "SELECT count(*) FROM rankings"), raw_int(h, "SELECT count(*) FROM ranking_items") / 9);
        sqlite3_close(h);
        if (check_failures) break;
    }
    fprintf(stderr, "%d rounds, %d runs and %d rankings reported, %d kills inside a ranking\n", rounds, n_runs,
            n_ranks, mid_ranking);
    CHECK(mid_ranking >= 1);
    CHECK(n_runs > 0 && n_ranks > 0);
    return CHECK_DONE();
}
