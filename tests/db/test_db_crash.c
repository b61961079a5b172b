// test_db_crash.c - the real qkv binary killed with SIGKILL while it ranks: each round runs
// `qkv --json -e 'rank "..." k=K ...; order ...; rank ...; order ...'` and kills it at a random
// moment: in half the rounds within microseconds of reading a rank's answer, that is after its
// order was given (before, while or after order stores the ranking), in the others anywhere in
// the script (mostly while candidates are generated). The database must then pass the integrity check, hold every
// ranking whose order answered, each whole and as ordered, and hold no ranking that is not
// whole; the candidate runs that rank reported must be there.
//
// Usage: test_db_crash QKV_BINARY. The random seed is printed first; QKV_CRASH_SEED=N runs the
// same rounds again (the same scripts and kill points; the timing of the kills may differ).
#include "dbtest.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <time.h>

#include "base/json.h"

enum { PAIRS = 6, MAX_RANKS = 4096, MAX_RUNS = MAX_RANKS * DB_RANK_MAX };

// One rank/order pair of a round's script, and what qkv answered.
typedef struct Pair {
    char prompt[64];
    int k;
    int rank[DB_RANK_MAX + 1]; // rank[n]: the rank order gives candidate n (its group, best 1)
    int64_t runs[DB_RANK_MAX]; // the candidates' runs, from rank's answer (0: not answered)
    int64_t ranking_id;        // from order's answer (0: not answered)
} Pair;

// Everything answered over all rounds, checked again after every kill.
static Pair answered[MAX_RANKS];
static int n_answered;

static unsigned rnd(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

// Fill p with a random ranking (a shuffled order with ties) and append its two commands.
static void pair_make(Pair *p, int round, int i, unsigned *s, Buf *script) {
    memset(p, 0, sizeof *p);
    p->k = DB_RANK_MIN + (int)(rnd(s) % (DB_RANK_MAX - DB_RANK_MIN + 1));
    // quotes, an escape and non-ASCII in the prompt, as a person's prompt may have
    snprintf(p->prompt, sizeof p->prompt, "crash \"r%d\" p%d caf\xc3\xa9\t", round, i);
    int perm[DB_RANK_MAX];
    for (int c = 0; c < p->k; c++) perm[c] = c + 1;
    for (int c = p->k - 1; c > 0; c--) {
        int j = (int)(rnd(s) % (unsigned)(c + 1)), t = perm[c];
        perm[c] = perm[j], perm[j] = t;
    }
    buf_printf(script, "rank \"crash \\\"r%d\\\" p%d caf\xc3\xa9\\t\" k=%d max=%u seed=%u; order", round, i, p->k,
               4 + rnd(s) % 12, rnd(s));
    int r = 0;
    for (int c = 0; c < p->k; c++) {
        bool tie = c > 0 && rnd(s) % 4 == 0;
        if (!tie) r++; // ranks count the groups: 3 1=2 4 gives 1, 2, 2, 3
        p->rank[perm[c]] = r;
        buf_printf(script, "%s%d", tie ? "=" : " ", perm[c]);
    }
    buf_puts(script, "\n");
}

// Start qkv on script with its stdout on a pipe; returns the pid and the read end in *fd.
static pid_t qkv_start(const char *qkv, const char *db, const char *script, int *fd) {
    int pfd[2];
    if (pipe(pfd)) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], STDOUT_FILENO);
        close(pfd[0]), close(pfd[1]);
        execl(qkv, qkv, "--db", db, "--json", "--annotator", "crash", "-e", script, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    *fd = pfd[0];
    return pid;
}

// Read one line (without its newline) into line; 0 at the end of the stream.
static int read_line(int fd, Buf *pending, Buf *line) {
    for (;;) {
        char *nl = pending->data ? memchr(pending->data, '\n', pending->len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - pending->data);
            buf_clear(line);
            buf_put(line, pending->data, n);
            memmove(pending->data, nl + 1, pending->len - n - 1);
            pending->len -= n + 1;
            return 1;
        }
        char chunk[4096];
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got <= 0) return 0; // a torn last line is not an answer
        buf_put(pending, chunk, (size_t)got);
    }
}

// The stored ranking id must be pair p whole, as ordered.
static void check_stored(Db *db, int64_t id, const Pair *p, int round) {
    DbRanking r;
    Err e = {{0}};
    int got = db_ranking_get(db, id, &r, &e);
    if (got != 1) {
        fprintf(stderr, "round %d: ranking %lld (\"%s\") is not there: %s\n", round, (long long)id, p->prompt,
                got < 0 ? e.msg : "absent");
        check_failures++;
        return;
    }
    CHECK_INT(r.k, p->k);
    CHECK(r.prompt_len == strlen(p->prompt) && !memcmp(r.prompt, p->prompt, r.prompt_len));
    CHECK_STR(r.annotator, "crash");
    for (int i = 0; i < r.k && i < p->k; i++) {
        CHECK_INT(r.items[i].n, i + 1);
        CHECK_INT(r.items[i].rank, p->rank[i + 1]);
        if (p->runs[0]) CHECK_INT(r.items[i].run_id, p->runs[i]);
    }
    db_ranking_done(&r);
}

static long long raw_int(sqlite3 *h, const char *sql) {
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

// Every ranking listed must be whole: db_ranking_get refuses one without its k items.
typedef struct Listed {
    long n;
    int64_t last;
} Listed;

static int listed(void *user, const DbRanking *r) {
    Listed *l = user;
    l->n++;
    if (r->id <= l->last || strncmp(r->prompt, "crash", 5)) check_failures++;
    l->last = r->id;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_db_crash QKV_BINARY\n");
        return 2;
    }
    const char *qkv = argv[1];
    unsigned seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
    const char *env = getenv("QKV_CRASH_SEED");
    if (env && *env) seed = (unsigned)strtoul(env, NULL, 10);
    fprintf(stderr, "seed %u (run again with QKV_CRASH_SEED=%u)\n", seed, seed);
    unsigned s = seed;
    dbt_tmpdir();
    const char *path = dbt_path("crash/qkv.db");
    int rounds = 0, before = 0, after = 0, answered_kill = 0, generating = 0;
    for (; rounds < 40 && (rounds < 20 || before + after < 4); rounds++) {
        Pair pairs[PAIRS];
        Buf script = {0};
        for (int i = 0; i < PAIRS; i++) pair_make(&pairs[i], rounds, i, &s, &script);
        // kill that long after reading the answer of this pair's rank, or (-1) that long after the start
        bool near_order = rounds % 2 == 0;
        int kill_after = near_order ? (int)(rnd(&s) % PAIRS) : -1;
        long delay_us = near_order ? (long)(rnd(&s) % 300) : 20000 + (long)(rnd(&s) % 20) * 10000;
        int fd;
        pid_t pid = qkv_start(qkv, path, script.data, &fd);
        if (pid < 0) return 1;
        Buf pending = {0}, line = {0};
        int n_rank = 0, n_order = 0;
        bool killed = false;
        if (!near_order) { // kill, then read what it answered until then (the pipe keeps it)
            struct timespec ts = {delay_us / 1000000, (delay_us % 1000000) * 1000L};
            nanosleep(&ts, NULL);
            kill(pid, SIGKILL);
            killed = true;
        }
        while (read_line(fd, &pending, &line)) {
            Json *j = json_parse(line.data, line.len, NULL);
            const Json *cands = j ? json_get(j, "candidates") : NULL;
            if (j && json_get(j, "ranking_pending") && cands && n_rank < PAIRS) {
                Pair *p = &pairs[n_rank++];
                for (size_t c = 0; c < cands->len && c < DB_RANK_MAX; c++)
                    p->runs[c] = (int64_t)json_num_or(&cands->items[c], "run_id", 0);
            } else if (j && json_get(j, "ranking_id") && n_order < n_rank) {
                Pair *p = &pairs[n_order++];
                p->ranking_id = (int64_t)json_num_or(j, "ranking_id", 0);
                if (n_answered < MAX_RANKS) answered[n_answered++] = *p;
            } else if (j && json_get(j, "error")) {
                fprintf(stderr, "round %d: qkv said %.*s\n", rounds, (int)line.len, line.data);
                check_failures++;
            }
            json_free(j);
            if (!killed && n_rank == kill_after + 1) { // its order is the next command qkv runs
                struct timespec ts = {0, delay_us * 1000L};
                nanosleep(&ts, NULL);
                kill(pid, SIGKILL);
                killed = true;
            }
        }
        close(fd);
        int st;
        waitpid(pid, &st, 0);
        if (!WIFSIGNALED(st)) {
            fprintf(stderr, "round %d: qkv exited by itself (status %d) before the kill\n", rounds,
                    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            check_failures++;
        }
        buf_free(&script), buf_free(&pending), buf_free(&line);

        Err e = {{0}};
        Db *db = NULL;
        if (db_open(path, 0, &db, &e)) {
            fprintf(stderr, "round %d: %s\n", rounds, e.msg);
            check_failures++;
            break;
        }
        if (db_check(db, &e)) fprintf(stderr, "round %d: %s\n", rounds, e.msg), check_failures++;
        // every ranking whose order answered, in this round and the earlier ones, whole
        for (int i = 0; i < n_answered; i++) check_stored(db, answered[i].ranking_id, &answered[i], rounds);
        // every candidate run rank reported
        for (int i = 0; i < n_rank; i++)
            for (int c = 0; c < pairs[i].k; c++) {
                DbRun r;
                if (db_run_get(db, pairs[i].runs[c], &r, &e) != 1) {
                    fprintf(stderr, "round %d: candidate run %lld is missing\n", rounds, (long long)pairs[i].runs[c]);
                    check_failures++;
                    continue;
                }
                CHECK(r.prompt_len == strlen(pairs[i].prompt) && !memcmp(r.prompt, pairs[i].prompt, r.prompt_len));
                db_run_done(&r);
            }
        // the pair qkv was at when it died: its ranking whole (only once its rank answered, so
        // that order ran) or not there at all
        if (n_order < PAIRS) {
            Pair *k = &pairs[n_order];
            Listed l = {0};
            DbFilter f = {.text = k->prompt};
            CHECK_INT(db_rankings_each(db, &f, 0, false, listed, &l, &e), 0);
            if (n_rank == n_order) generating++; // killed before its rank answered: order never ran
            if (l.n == 1 && n_rank > n_order) after++, check_stored(db, l.last, k, rounds);
            else if (l.n == 0 && n_rank > n_order) before++;
            else if (l.n != 0)
                fprintf(stderr, "round %d: \"%s\" stored %ld times (rank answered: %s)\n", rounds, k->prompt, l.n,
                        n_rank > n_order ? "yes" : "no"),
                    check_failures++;
        } else {
            answered_kill++;
        }
        Listed all = {0};
        CHECK_INT(db_rankings_each(db, NULL, 0, false, listed, &all, &e), 0);
        CHECK_INT(all.n, db_ranking_count(db, &e));
        CHECK(all.n >= n_answered);
        db_close(db);
        // no half ranking in the tables themselves
        sqlite3 *h;
        sqlite3_open(path, &h);
        CHECK_INT(raw_int(h, "SELECT count(*) FROM rankings g WHERE "
                             "(SELECT count(*) FROM ranking_items i WHERE i.ranking_id = g.id) != g.k"),
                  0);
        CHECK_INT(raw_int(h, "SELECT count(*) FROM ranking_items i WHERE NOT EXISTS "
                             "(SELECT 1 FROM rankings g WHERE g.id = i.ranking_id)"),
                  0);
        sqlite3_close(h);
        if (check_failures) {
            fprintf(stderr, "round %d failed (seed %u)\n", rounds, seed);
            break;
        }
    }
    fprintf(stderr,
            "%d rounds, %d rankings answered; killed while generating candidates: %d; after a rank's answer, "
            "with its order given: %d not stored, %d stored whole before order answered; after the script: %d "
            "(seed %u)\n",
            rounds, n_answered, generating, before, after, answered_kill, seed);
    CHECK(n_answered > 0);
    CHECK(before + after > 0);
    CHECK(generating > 0);
    return CHECK_DONE();
}
