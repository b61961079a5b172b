// test_db_experiments.c - the experiment tables (migration 4): a database of schema 2 with a
// run is upgraded in place and keeps its run; an experiment with its conditions, items and
// their run links is stored and read back; an item is stored once (a second insert does
// nothing, a half item never appears); the counts per condition that SQL sums match the
// items; the JSON export holds them; the constraints refuse what does not belong.
#include "dbtest.h"
#include "db_int.h"

#include <sqlite3.h>

#include "base/json.h"
#include "schema_sql.h"
#include "base/proc.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define QKV_APP_ID 0x716b7631

static void raw_exec(sqlite3 *h, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "raw exec %.60s: %s\n", sql, msg);
        exit(1);
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

typedef struct {
    int n;
    long correct[4];
    int runs;
} Seen;

static int count_item(void *user, const DbExpItem *it) {
    Seen *s = user;
    s->n++;
    if (it->condition >= 0 && it->condition < 4) s->correct[it->condition] += it->correct;
    s->runs += it->n_runs;
    return 0;
}

static int count_exp(void *user, const DbExperiment *x) {
    (void)x;
    ++*(int *)user;
    return 0;
}

// Whether process pid is a zombie (state Z in /proc/PID/stat).
static bool zombie(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'Z';
}

// The owner of a running experiment (migration 10, base/proc.h): another live process holds
// it (a child that reports its own token): it reads running and a claim is refused naming the
// child's pid; the same pid with another start time (a pid reused), another host's token or a
// malformed one read as interrupted; once the child is killed, the experiment reads as
// interrupted and the claim takes it over.
static void test_owner(Db *db, int64_t id) {
    Err e = {{0}};
    int fd[2];
    CHECK_INT(pipe(fd), 0);
    pid_t child = fork();
    if (child == 0) {
        char t[PROC_TOKEN_MAX];
        proc_token(t);
        if (write(fd[1], t, strlen(t) + 1) < 0) _exit(1);
        for (;;) pause();
    }
    close(fd[1]);
    char token[PROC_TOKEN_MAX] = {0};
    CHECK(read(fd[0], token, sizeof token - 1) > 0);
    close(fd[0]);
    char host[64];
    long pid;
    unsigned long long start;
    CHECK_INT(sscanf(token, "%63s %ld %llu", host, &pid, &start), 3);
    CHECK_INT((int)pid, (int)child);
    char sql[512];
    DbExperiment got;
    const char *gone[4];
    char reused[PROC_TOKEN_MAX + 16], other[PROC_TOKEN_MAX + 16];
    snprintf(reused, sizeof reused, "%s %ld %llu", host, pid, start + 1);
    snprintf(other, sizeof other, "another-host-%s %ld %llu", host, pid, start);
    gone[0] = reused, gone[1] = other, gone[2] = "garbage", gone[3] = token;
    for (int k = 0; k < 5; k++) {
        const char *owner = k < 4 ? gone[k] : token;
        snprintf(sql, sizeof sql, "UPDATE experiments SET status = 'running', owner = '%s' WHERE id = %lld", owner,
                 (long long)id);
        CHECK_INT(sqlite3_exec(db->h, sql, NULL, NULL, NULL), SQLITE_OK);
        if (k == 3) { // alive
            CHECK_INT(db_experiment_get(db, id, &got, &e), 1);
            CHECK_STR(got.status, "running");
            db_experiment_done(&got);
            CHECK_INT(db_experiment_claim(db, id, &e), -1);
            char want[64];
            snprintf(want, sizeof want, "running in process %ld", pid);
            CHECK(strstr(e.msg, want) != NULL);
            kill(child, SIGKILL); // k = 4: the same token, its process gone: a zombie while not reaped
            for (int w = 0; w < 500 && !zombie(child); w++) usleep(10000);
            CHECK(zombie(child));
            continue;
        }
        CHECK_INT(db_experiment_get(db, id, &got, &e), 1);
        CHECK_STR(got.status, "interrupted"); // the zombie too (it read as running until reaped)
        db_experiment_done(&got);
    }
    waitpid(child, NULL, 0);
    // the listing's TEXT filter sees the status as read
    DbFilter f = {0};
    f.text = "interrupted";
    int n = 0;
    CHECK(db_experiments_each(db, &f, 0, true, count_exp, &n, &e) >= 0);
    CHECK_INT(n, 1);
}

int main(void) {
    dbt_tmpdir();
    CHECK(DB_SCHEMA_VERSION >= 4); // experiments came with migration 4
    // a database of schema 2 (migrations 1 and 2, as qkv before experiments wrote it) with a run
    const char *old = dbt_path("v2.db");
    sqlite3 *h;
    CHECK_INT(sqlite3_open(old, &h), SQLITE_OK);
    raw_exec(h, "PRAGMA journal_mode = WAL");
    raw_exec(h, db_migrations[0]);
    raw_exec(h, db_migrations[1]);
    char sql[200];
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = 2", QKV_APP_ID);
    raw_exec(h, sql);
    raw_exec(h, "INSERT INTO runs (created, qkv_version, model_path, model_arch, prompt, temperature, top_k, top_p, "
                "seed, max_tokens, output) VALUES ('2025-01-01T00:00:00.000Z', '0.0', 'builtin', 'gpt2', 'old prompt', "
                "0, 0, 1, 7, 4, 'old output')");
    sqlite3_close(h);

    Db *db;
    Err e = {{0}};
    if (db_open(old, 0, &db, &e)) {
        fprintf(stderr, "db_open of a schema-2 database: %s\n", e.msg);
        return 1;
    }
    CHECK_INT(raw_int(db->h, "PRAGMA user_version"), DB_SCHEMA_VERSION);
    CHECK_INT(raw_int(db->h, "SELECT count(*) FROM runs WHERE prompt = 'old prompt' AND output = 'old output'"), 1);
    CHECK_INT(raw_int(db->h, "SELECT count(*) FROM experiments"), 0);

    // an experiment: 2 shots x 2 seeds, 3 items
    DbCondition c[4] = {{0, 0, false, 1, false, 1}, {1, 0, false, 1, false, 2}, {2, 3, true, 1, false, 1},
                        {3, 3, true, 1, false, 2}};
    DbExperiment x = {0};
    x.task = "en-fr", x.task_path = "/tasks/en-fr.jsonl", x.task_sha256 = "ab", x.model_path = "builtin";
    x.model_arch = "gpt2", x.command = "experiment en-fr shots=0,3 cot=off,on seeds=1,2", x.spec = "{\"a\":1}";
    x.n_items = 3;
    int64_t id = db_experiment_insert(db, &x, c, 4, &e);
    CHECK(id > 0);
    DbExperiment bad = x;
    bad.spec = "not json";
    CHECK(db_experiment_insert(db, &bad, c, 4, &e) < 0); // the spec must be JSON
    // items: condition k, item i right when (k + i) is even; each with one run (condition 3
    // with two samples)
    char outbuf[128];
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 3; i++) {
            CHECK(!db_begin(db, &e));
            DbExpRun runs[2];
            int nr = k == 3 ? 2 : 1;
            for (int s = 0; s < nr; s++) {
                DbRun r;
                dbt_run(&r, k * 10 + i, NASTY, outbuf, sizeof outbuf);
                r.kind = "experiment";
                runs[s] = (DbExpRun){s, db_run_insert(db, &r, &e), "x", s};
                CHECK(runs[s].run_id > 0);
            }
            DbExpItem it = {.condition = k, .item = i, .input = "cheese", .target = "fromage", .answer = "x",
                            .correct = (k + i) % 2 == 0, .correct_norm = -1, .detail = NULL, .runs = runs, .n_runs = nr};
            CHECK_INT(db_experiment_item_insert(db, id, &it, &e), 0);
            CHECK(!db_commit(db, &e));
            CHECK_INT(db_experiment_item_insert(db, id, &it, &e), 1); // stored once
        }
    // a half item (its run link refers to no run) is refused and leaves nothing
    DbExpRun ghost = {0, 999999, "x", 0};
    DbExpItem half = {.condition = 0, .item = 5, .input = "a", .target = "b", .answer = "c", .correct_norm = -1,
                      .runs = &ghost, .n_runs = 1};
    CHECK_INT(db_experiment_item_insert(db, id, &half, &e), -1);
    CHECK_INT(raw_int(db->h, "SELECT count(*) FROM experiment_items WHERE item = 5"), 0);
    // an item of a condition the experiment does not have
    DbExpItem nocond = {.condition = 9, .item = 0, .input = "a", .target = "b", .answer = "c", .correct_norm = -1};
    CHECK_INT(db_experiment_item_insert(db, id, &nocond, &e), -1);

    DbCondStats st[4];
    CHECK_INT(db_experiment_stats(db, id, st, 4, &e), 4);
    for (int k = 0; k < 4; k++) {
        CHECK_INT(st[k].n, 3);
        CHECK_INT(st[k].correct, k % 2 == 0 ? 2 : 1); // items 0 and 2, or item 1
        CHECK_INT(st[k].c.shots, c[k].shots);
        CHECK_INT(st[k].c.cot, c[k].cot);
        CHECK_INT((long long)st[k].c.seed, (long long)c[k].seed);
    }
    Seen seen = {0};
    CHECK_INT(db_experiment_items_each(db, id, -1, -1, count_item, &seen, &e), 0);
    CHECK_INT(seen.n, 12);
    CHECK_INT(seen.runs, 15); // condition 3 has two samples per item
    CHECK_INT(seen.correct[0], 2);
    CHECK_INT(seen.correct[1], 1);
    Seen one = {0};
    CHECK_INT(db_experiment_items_each(db, id, 3, 1, count_item, &one, &e), 0);
    CHECK_INT(one.n, 1);
    CHECK_INT(one.runs, 2);
    // every run of the experiment is of kind experiment and linked once
    CHECK_INT(raw_int(db->h, "SELECT count(*) FROM experiment_runs r JOIN runs u ON u.id = r.run_id "
                             "WHERE u.kind = 'experiment'"),
              15);

    DbExperiment got;
    // stored running, this process's from the insert on: running
    CHECK_INT(db_experiment_get(db, id, &got, &e), 1);
    CHECK_STR(got.status, "running");
    CHECK(got.owner != NULL);
    db_experiment_done(&got);
    // running but claimed by no process (as one killed before migration 10 left it): interrupted
    CHECK_INT(sqlite3_exec(db->h, "UPDATE experiments SET owner = NULL", NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(db_experiment_get(db, id, &got, &e), 1);
    CHECK_STR(got.status, "interrupted");
    db_experiment_done(&got);
    test_owner(db, id);
    CHECK_INT(db_experiment_claim(db, id, &e), 0);
    CHECK_INT(db_experiment_get(db, id, &got, &e), 1);
    CHECK_STR(got.status, "running");
    CHECK(got.owner != NULL);
    CHECK_INT(db_experiment_claim(db, id, &e), 0); // its own process again: fine
    CHECK_INT(got.n_done, 12);
    CHECK_STR(got.command, x.command);
    CHECK_STR(got.finished, "");
    db_experiment_done(&got);
    CHECK(!db_experiment_set_status(db, id, "done", &e));
    CHECK_INT(db_experiment_get(db, id, &got, &e), 1);
    CHECK_STR(got.status, "done");
    CHECK(got.finished[0] != 0);
    CHECK(got.owner == NULL); // done: no process holds it
    char fin[32];
    snprintf(fin, sizeof fin, "%s", got.finished);
    db_experiment_done(&got);
    usleep(2000); // done again (a resume with nothing to run): its finishing time stays
    CHECK(!db_experiment_set_status(db, id, "done", &e));
    CHECK_INT(db_experiment_get(db, id, &got, &e), 1);
    CHECK_STR(got.finished, fin);
    db_experiment_done(&got);
    CHECK(db_experiment_set_status(db, id, "bogus", &e) < 0);
    CHECK_INT(db_experiment_get(db, 424242, &got, &e), 0);

    // the JSON export: the conditions' counts and every item with its runs' prompts
    const char *file = dbt_path("exp.json");
    long count = 0;
    CHECK(!db_export_experiment(db, id, DB_EXPORT_EXP_JSON, file, &count, &e));
    CHECK_INT(count, 12);
    Buf b = {0};
    CHECK(dbt_read(file, &b));
    Json *j = json_parse(b.data, b.len, &e);
    CHECK(j != NULL);
    if (j) {
        const Json *conds = json_get(j, "conditions"), *items = json_get(j, "items");
        CHECK(conds && conds->len == 4 && items && items->len == 12);
        if (conds && conds->len == 4) CHECK_NEAR(json_num_or(&conds->items[0], "accuracy", -1), 2.0 / 3, 1e-8); // 9 digits
        if (items && items->len == 12) {
            const Json *runs = json_get(&items->items[0], "runs");
            CHECK(runs && runs->len == 1);
            if (runs && runs->len == 1) CHECK_STR(json_str_or(&runs->items[0], "prompt", ""), NASTY);
        }
        json_free(j);
    }
    buf_free(&b);
    CHECK(db_export_experiment(db, 424242, DB_EXPORT_EXP_JSON, dbt_path("none.json"), &count, &e) < 0);
    CHECK(strstr(e.msg, "no experiment 424242") != NULL);
    CHECK(!dbt_exists(dbt_path("none.json")));
    db_close(db);
    return CHECK_DONE();
}
