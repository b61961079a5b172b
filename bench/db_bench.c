// db_bench.c - how fast the run log takes runs: bulk inserts (1,000 runs per transaction)
// and one run per transaction (what a logged generation costs).
//
//   db_bench [N_BULK [N_SINGLE [DIR]]]    defaults: 20000 500 $TMPDIR or /tmp
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "db.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Token data shaped like a real run's: a 64-token completion with 5 alternatives per step.
static void make_tokens(Buf *ids, Buf *lps, Buf *alts) {
    buf_putc(ids, '['), buf_putc(lps, '['), buf_putc(alts, '[');
    for (int t = 0; t < 64; t++) {
        buf_printf(ids, "%s%d", t ? "," : "", 1000 + t * 37);
        buf_printf(lps, "%s%.6g", t ? "," : "", -0.01 * (t % 17) - 0.1);
        buf_printf(alts, "%s[", t ? "," : "");
        for (int a = 0; a < 5; a++) buf_printf(alts, "%s[%d,%.6g]", a ? "," : "", 500 + a * 11 + t, -0.3 * a - 0.1);
        buf_putc(alts, ']');
    }
    buf_putc(ids, ']'), buf_putc(lps, ']'), buf_putc(alts, ']');
}

static void make_run(DbRun *r, const Buf *ids, const Buf *lps, const Buf *alts, const char *prompt,
                     const char *out) {
    memset(r, 0, sizeof *r);
    r->annotator = "bench";
    r->n_threads = 2;
    r->model_path = "/models/gpt2";
    r->model_arch = "gpt2";
    r->model_sha256 = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
    r->prompt = prompt;
    r->prompt_len = strlen(prompt);
    r->temperature = 0.8;
    r->top_k = 40;
    r->top_p = 0.95;
    r->seed = 1234;
    r->max_tokens = 64;
    r->n_alts = 5;
    r->stop_at_eos = true;
    r->prompt_ids = "[464,2068,7586,21831,18045,625,262,16931,3290,13]";
    r->output = out;
    r->output_len = strlen(out);
    r->ids = ids->data;
    r->logprobs = lps->data;
    r->alts = alts->data;
    r->prefill_s = 0.01;
    r->decode_s = 0.5;
    r->stop_reason = "length";
}

int main(int argc, char **argv) {
    long n_bulk = argc > 1 ? atol(argv[1]) : 20000;
    long n_single = argc > 2 ? atol(argv[2]) : 500;
    const char *base = argc > 3 ? argv[3] : getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/qkv-dbbench-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[600];
    snprintf(path, sizeof path, "%s/bench.db", dir);
    Err e = {{0}};
    Db *db = NULL;
    if (db_open(path, 0, &db, &e)) {
        fprintf(stderr, "error: %s\n", e.msg);
        return 1;
    }
    const char *prompt = "The quick brown fox jumps over the lazy dog. Once upon a time, in a land far away, "
                         "there lived a model that wrote stories about \"attention\" and 'heads'.";
    char out[512];
    memset(out, 0, sizeof out);
    for (int i = 0; i < 400; i++) out[i] = "abcdefgh ijklmnop qrstuv wxyz.\n"[i % 31];
    Buf ids = {0}, lps = {0}, alts = {0};
    make_tokens(&ids, &lps, &alts);
    DbRun r;

    double t0 = now_s();
    for (long i = 0; i < n_bulk; i++) {
        if (i % 1000 == 0 && db_begin(db, &e)) break;
        make_run(&r, &ids, &lps, &alts, prompt, out);
        r.seed = (uint64_t)i;
        if (db_run_insert(db, &r, &e) < 0) break;
        if ((i % 1000 == 999 || i == n_bulk - 1) && db_commit(db, &e)) break;
    }
    double t1 = now_s();
    if (e.msg[0]) {
        fprintf(stderr, "error: %s\n", e.msg);
        return 1;
    }
    printf("bulk:   %ld runs in %.3f s = %.0f runs/s (1000 per transaction)\n", n_bulk, t1 - t0,
           n_bulk / (t1 - t0));

    t0 = now_s();
    for (long i = 0; i < n_single; i++) {
        make_run(&r, &ids, &lps, &alts, prompt, out);
        if (db_run_insert(db, &r, &e) < 0) {
            fprintf(stderr, "error: %s\n", e.msg);
            return 1;
        }
    }
    t1 = now_s();
    printf("single: %ld runs in %.3f s = %.0f runs/s, %.2f ms per logged generation (synchronous=FULL)\n",
           n_single, t1 - t0, n_single / (t1 - t0), 1e3 * (t1 - t0) / (n_single ? n_single : 1));
    db_close(db);
    buf_free(&ids), buf_free(&lps), buf_free(&alts);
    char side[700];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) snprintf(side, sizeof side, "%s%s", path, sfx[i]), unlink(side);
    rmdir(dir);
    return 0;
}
