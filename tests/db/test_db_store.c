// test_db_store.c - runs and rankings round-trip through a real database file, filters
// select what they say, and every export parses as JSON Lines (or CSV) with exactly the
// documented fields and the stored text (well-formed UTF-8, an ill-formed sequence as
// U+FFFD), including a hostile prompt.
#include "dbtest.h"
#include "base/json.h"
#include "base/utf8.h"

#include <dirent.h>

// Whether the n bytes at s are well-formed UTF-8 throughout.
static bool utf8_valid_all(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int len = utf8_valid_len(s + i, n - i);
        if (len <= 0) return false;
        i += (size_t)len;
    }
    return true;
}

static const char *const RUN_KEYS[] = {
    "run_id", "created", "kind", "parent_id", "annotator", "qkv_version", "threads", "kv", "model_path",
    "model_arch", "model_sha256", "prompt", "template", "mode", "exemplars", "temperature", "top_k",
    "top_p", "seed", "max_tokens", "n_alts", "stop_at_eos", "truncate", "prompt_ids", "n_truncated",
    "text", "ids", "logprobs", "alts", "prefill_s", "decode_s", "stop_reason", NULL};
static const char *const RANKING_KEYS[] = {"ranking_id", "created", "annotator", "note", "qkv_version",
                                           "prompt", "k", "order", "candidates", NULL};
static const char *const CAND_KEYS[] = {"n", "rank", "run", NULL};
static const char *const TRL_KEYS[] = {"prompt", "chosen", "rejected", "margin", NULL};
static const char *const HH_KEYS[] = {"chosen", "rejected", NULL};

// j is an object with exactly the keys listed.
static void check_keys(const Json *j, const char *const *keys, const char *what) {
    size_t n = 0;
    while (keys[n]) n++;
    if (!j || j->type != JSON_OBJ) {
        fprintf(stderr, "%s: not an object\n", what);
        check_failures++;
        return;
    }
    if (j->len != n) {
        fprintf(stderr, "%s: expected %zu keys, got %zu\n", what, n, j->len);
        check_failures++;
    }
    for (size_t i = 0; i < n; i++)
        if (!json_get(j, keys[i])) {
            fprintf(stderr, "%s: key '%s' missing\n", what, keys[i]);
            check_failures++;
        }
}

// Parse a JSON Lines file: the lines in out (each a tree); returns the count.
static int read_jsonl(const char *path, Json **out, int cap) {
    Buf b = {0};
    CHECK(dbt_read(path, &b));
    int n = 0;
    const char *p = b.data, *end = b.data + b.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        CHECK(nl != NULL); // every record ends with a newline
        if (!nl) break;
        Err e = {{0}};
        Json *j = json_parse(p, (size_t)(nl - p), &e);
        if (!j) fprintf(stderr, "%s line %d: %s\n", path, n + 1, e.msg), check_failures++;
        if (n < cap) out[n] = j;
        else json_free(j);
        n++;
        p = nl + 1;
    }
    buf_free(&b);
    return n;
}

static void free_jsonl(Json **j, int n) {
    for (int i = 0; i < n; i++) json_free(j[i]);
}

static bool str_is(const Json *j, const char *key, const char *want, size_t n) {
    const Json *v = json_get(j, key);
    return v && v->type == JSON_STR && v->len == n && memcmp(v->str, want, n) == 0;
}

typedef struct Collect {
    int64_t *ids;
    int *n;
} Collect;

static int collect(void *u, const DbRun *x) {
    Collect *c = u;
    c->ids[(*c->n)++] = x->id;
    return 0;
}

static int count_cb(void *user, const DbRun *r) {
    (void)r;
    (*(int *)user)++;
    return 0;
}

static int run_count(Db *db, const DbFilter *f) {
    int n = 0;
    Err e = {{0}};
    if (db_runs_each(db, f, 0, true, count_cb, &n, &e)) fprintf(stderr, "runs_each: %s\n", e.msg), n = -1;
    return n;
}

// No temporary export file may be left in the scratch directory.
static void check_no_temp_files(void) {
    DIR *d = opendir(dbt_dir);
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".tmp-")) fprintf(stderr, "left behind: %s\n", de->d_name), check_failures++;
    closedir(d);
}

static void check_run_equal(const DbRun *got, const DbRun *want) {
    CHECK_INT(got->id, want->id);
    CHECK_STR(got->created, want->created);
    CHECK_STR(got->kind, want->kind);
    CHECK_STR(got->annotator, want->annotator);
    CHECK_STR(got->qkv_version, QKV_VERSION);
    CHECK_INT(got->n_threads, want->n_threads);
    CHECK_STR(got->model_path, want->model_path);
    CHECK_STR(got->model_arch, want->model_arch);
    CHECK_STR(got->model_sha256, want->model_sha256);
    CHECK_INT(got->prompt_len, want->prompt_len);
    CHECK(got->prompt && memcmp(got->prompt, want->prompt, want->prompt_len) == 0);
    CHECK_STR(got->template_name, want->template_name);
    CHECK_STR(got->mode, want->mode);
    CHECK_STR(got->exemplars, want->exemplars);
    CHECK_NEAR(got->temperature, want->temperature, 0);
    CHECK_INT(got->top_k, want->top_k);
    CHECK_NEAR(got->top_p, want->top_p, 0);
    CHECK(got->seed == want->seed);
    CHECK_INT(got->max_tokens, want->max_tokens);
    CHECK_INT(got->n_alts, want->n_alts);
    CHECK_INT(got->stop_at_eos, want->stop_at_eos);
    CHECK_INT(got->truncate, want->truncate);
    CHECK_STR(got->prompt_ids, want->prompt_ids);
    CHECK_INT(got->n_truncated, want->n_truncated);
    CHECK_INT(got->output_len, want->output_len);
    CHECK(got->output && memcmp(got->output, want->output, want->output_len) == 0);
    CHECK_STR(got->ids, want->ids);
    CHECK_STR(got->logprobs, want->logprobs);
    CHECK_STR(got->alts, want->alts);
    CHECK_NEAR(got->prefill_s, want->prefill_s, 0);
    CHECK_NEAR(got->decode_s, want->decode_s, 0);
    CHECK_STR(got->stop_reason, want->stop_reason);
}

static int count_ranking(void *user, const DbRanking *r) {
    (void)r;
    ++*(long *)user;
    return 0;
}

int main(void) {
    dbt_tmpdir();
    Err e = {{0}};
    Db *db = NULL;
    // the directory of the file is created
    const char *path = dbt_path("a/b/c/qkv.db");
    CHECK_INT(db_open(path, 0, &db, &e), 0);
    if (!db) {
        fprintf(stderr, "open: %s\n", e.msg);
        return 1;
    }
    CHECK_STR(db_path(db), path);
    CHECK(!db_readonly(db));
    CHECK(db_schema_version() >= 2);

    // ---- a run round-trips, hostile prompt included
    char out[128], out1[128];
    DbRun r;
    dbt_run(&r, 0, NASTY, out1, sizeof out1);
    int64_t id1 = db_run_insert(db, &r, &e);
    CHECK(id1 > 0);
    CHECK(dbt_exists(dbt_path("a/b/c/qkv.db-wal"))); // WAL mode
    CHECK_INT(strlen(r.created), 24);
    DbRun got;
    CHECK_INT(db_run_get(db, id1, &got, &e), 1);
    check_run_equal(&got, &r);
    db_run_done(&got);
    CHECK_INT(db_run_get(db, 999, &got, &e), 0);

    // bytes that are not UTF-8, in prompt and output, come back verbatim
    DbRun rb;
    dbt_run(&rb, 1, BINARY, out, sizeof out);
    rb.output = BINARY;
    rb.output_len = sizeof BINARY - 1;
    rb.annotator = "bob";
    rb.kind = NULL; // default kind
    rb.model_sha256 = NULL;
    rb.alts = NULL;
    rb.exemplars = NULL;
    rb.template_name = rb.mode = NULL;
    rb.prefill_s = NAN; // stored as NULL, read back as NaN
    int64_t id2 = db_run_insert(db, &rb, &e);
    if (id2 < 0) fprintf(stderr, "insert: %s\n", e.msg);
    CHECK(id2 == id1 + 1);
    CHECK_INT(db_run_get(db, id2, &got, &e), 1);
    CHECK_INT(got.prompt_len, sizeof BINARY - 1);
    CHECK(memcmp(got.prompt, BINARY, sizeof BINARY - 1) == 0);
    CHECK(memcmp(got.output, BINARY, sizeof BINARY - 1) == 0);
    CHECK_STR(got.kind, "generate");
    CHECK(got.model_sha256 == NULL && got.alts == NULL && got.template_name == NULL);
    CHECK(isnan(got.prefill_s));
    db_run_done(&got);

    // invalid JSON in a JSON column is refused, and nothing is stored
    DbRun bad;
    dbt_run(&bad, 2, "p", out, sizeof out);
    bad.ids = "[1,2";
    CHECK(db_run_insert(db, &bad, &e) < 0);
    CHECK(strstr(e.msg, "cannot log the run") != NULL);
    CHECK_INT(db_run_count(db, &e), 2);

    // origin of a run
    CHECK_INT(db_run_set_origin(db, id2, "replay", id1, &e), 0);
    CHECK_INT(db_run_get(db, id2, &got, &e), 1);
    CHECK_STR(got.kind, "replay");
    CHECK_INT(got.parent_id, id1);
    db_run_done(&got);
    CHECK_INT(db_run_set_origin(db, 777, "rank", 0, &e), -1);

    // ---- four rank candidates and a ranking with a tie: order 3 1 2=4
    int64_t cand[4];
    char outs[4][128];
    for (int i = 0; i < 4; i++) {
        DbRun c;
        dbt_run(&c, 10 + i, NASTY, outs[i], sizeof outs[i]);
        c.kind = "rank";
        c.annotator = "alice";
        c.model_path = i == 3 ? "/models/other" : "/models/gpt2";
        cand[i] = db_run_insert(db, &c, &e);
        CHECK(cand[i] > 0);
    }
    DbRanking rk = {0};
    rk.prompt = NASTY;
    rk.prompt_len = strlen(NASTY);
    rk.annotator = "alice";
    rk.note = "tie between \"2\" and 4\n'); DROP TABLE rankings;--";
    rk.k = 4;
    const int ranks[4] = {2, 3, 1, 3};
    for (int i = 0; i < 4; i++) rk.items[i] = (DbRankItem){i + 1, cand[i], ranks[i]};
    int64_t rid = db_ranking_insert(db, &rk, &e);
    CHECK(rid > 0);
    DbRanking rg;
    CHECK_INT(db_ranking_get(db, rid, &rg, &e), 1);
    CHECK_INT(rg.k, 4);
    CHECK_INT(rg.prompt_len, strlen(NASTY));
    CHECK(memcmp(rg.prompt, NASTY, rg.prompt_len) == 0);
    CHECK_STR(rg.note, rk.note);
    CHECK_STR(rg.annotator, "alice");
    CHECK_STR(rg.created, rk.created);
    for (int i = 0; i < 4; i++) {
        CHECK_INT(rg.items[i].n, i + 1);
        CHECK_INT(rg.items[i].run_id, cand[i]);
        CHECK_INT(rg.items[i].rank, ranks[i]);
    }
    db_ranking_done(&rg);
    CHECK_INT(db_ranking_get(db, rid + 100, &rg, &e), 0);
    // a note set after the fact replaces the note, leaves the rest; "" removes it
    CHECK_INT(db_ranking_set_note(db, rid, NASTY, &e), 1);
    CHECK_INT(db_ranking_get(db, rid, &rg, &e), 1);
    CHECK_STR(rg.note, NASTY);
    CHECK_INT(rg.k, 4);
    CHECK_INT(rg.items[2].rank, 1);
    db_ranking_done(&rg);
    CHECK_INT(db_ranking_set_note(db, rid, "", &e), 1);
    CHECK_INT(db_ranking_get(db, rid, &rg, &e), 1);
    CHECK(rg.note == NULL);
    db_ranking_done(&rg);
    CHECK_INT(db_ranking_set_note(db, rid + 100, "x", &e), 0);
    CHECK_INT(db_ranking_set_note(db, rid, rk.note, &e), 1);

    // rankings that are not whole are refused and leave nothing behind
    DbRanking br = rk;
    br.created[0] = 0;
    br.k = 1;
    CHECK(db_ranking_insert(db, &br, &e) < 0);
    br.k = 10;
    CHECK(db_ranking_insert(db, &br, &e) < 0);
    br = rk;
    br.created[0] = 0;
    br.items[1].n = 1; // candidate 1 twice
    CHECK(db_ranking_insert(db, &br, &e) < 0);
    CHECK(strstr(e.msg, "twice") != NULL);
    br = rk;
    br.items[2].rank = 0;
    CHECK(db_ranking_insert(db, &br, &e) < 0);
    br = rk;
    br.created[0] = 0;
    br.items[3].run_id = 4242; // no such run: the ranking row must not stay
    CHECK(db_ranking_insert(db, &br, &e) < 0);
    CHECK(strstr(e.msg, "4242") != NULL);
    CHECK_INT(db_ranking_count(db, &e), 1);
    // inside a caller's transaction a failed ranking is undone and the rest commits
    CHECK_INT(db_begin(db, &e), 0);
    DbRun extra;
    dbt_run(&extra, 40, "inside a transaction", out, sizeof out);
    int64_t id_extra = db_run_insert(db, &extra, &e);
    CHECK(id_extra > 0);
    CHECK(db_ranking_insert(db, &br, &e) < 0);
    CHECK_INT(db_commit(db, &e), 0);
    CHECK_INT(db_ranking_count(db, &e), 1);
    CHECK_INT(db_run_count(db, &e), 7);
    CHECK_INT(db_check(db, &e), 0);

    // ---- filters
    CHECK_INT(run_count(db, NULL), 7);
    CHECK_INT(run_count(db, &(DbFilter){.annotator = "alice"}), 4);
    CHECK_INT(run_count(db, &(DbFilter){.kind = "rank"}), 4);
    CHECK_INT(run_count(db, &(DbFilter){.model = "other"}), 1);
    CHECK_INT(run_count(db, &(DbFilter){.model = "0123456789ab"}), 6); // sha256 prefix
    CHECK_INT(run_count(db, &(DbFilter){.text = "DROP TABLE"}), 5);    // prompt
    CHECK_INT(run_count(db, &(DbFilter){.text = "COMPLETION 12"}), 1); // output, any case
    CHECK_INT(run_count(db, &(DbFilter){.text = "100%"}), 0);          // % is not a wildcard
    CHECK_INT(run_count(db, &(DbFilter){.text = "replay"}), 1);        // kind
    CHECK_INT(run_count(db, &(DbFilter){.since = "2000-01-01"}), 7);
    CHECK_INT(run_count(db, &(DbFilter){.until = "2000-01-01T00:00"}), 0);
    CHECK_INT(run_count(db, &(DbFilter){.since = "9999-12-31"}), 0);
    char today[32];
    db_now(today);
    today[10] = 0;
    CHECK_INT(run_count(db, &(DbFilter){.since = today, .until = today}), 7); // until a date = its end
    CHECK_INT(db_runs_each(db, &(DbFilter){.since = "yesterday"}, 0, true, count_cb, &(int){0}, &e), -1);
    CHECK(strstr(e.msg, "since") && strstr(e.msg, "yesterday"));
    // newest first, limited
    int64_t ids[3];
    int nids = 0;
    Collect col = {ids, &nids};
    CHECK_INT(db_runs_each(db, NULL, 3, true, collect, &col, &e), 0);
    CHECK_INT(nids, 3);
    CHECK_INT(ids[0], id_extra);
    CHECK_INT(ids[2], cand[2]);

    // time parsing
    char t[32];
    CHECK_INT(db_time_parse("2024-05-01", false, t, &e), 0);
    CHECK_STR(t, "2024-05-01T00:00:00.000Z");
    CHECK_INT(db_time_parse("2024-05-01", true, t, &e), 0);
    CHECK_STR(t, "2024-05-01T23:59:59.999Z");
    CHECK_INT(db_time_parse("2024-05-01 12:30", true, t, &e), 0);
    CHECK_STR(t, "2024-05-01T12:30:59.999Z");
    CHECK_INT(db_time_parse("2024-05-01T12:30:05.5Z", false, t, &e), 0);
    CHECK_STR(t, "2024-05-01T12:30:05.500Z");
    CHECK_INT(db_time_parse("2024-13-01", false, t, &e), -1);
    CHECK_INT(db_time_parse("2024-05-01T", false, t, &e), -1);
    CHECK_INT(db_time_parse("2024-5-1", false, t, &e), -1);

    // ---- exports
    long count = -1;
    Json *lines[64];
    const char *runs_file = dbt_path("runs.jsonl");
    CHECK_INT(db_export(db, DB_EXPORT_RUNS, runs_file, NULL, 1, &count, NULL, &e), 0);
    CHECK_INT(count, 7);
    int n = read_jsonl(runs_file, lines, 64);
    CHECK_INT(n, 7);
    for (int i = 0; i < n && i < 64; i++) check_keys(lines[i], RUN_KEYS, "runs export");
    if (n >= 2) {
        CHECK(str_is(lines[0], "prompt", NASTY, strlen(NASTY)));
        CHECK(str_is(lines[0], "text", r.output, r.output_len));
        CHECK_INT(json_num_or(lines[0], "run_id", 0), id1);
        CHECK(json_get(lines[0], "exemplars")->type == JSON_ARR);
        CHECK(json_get(lines[0], "alts")->type == JSON_ARR);
        CHECK_NEAR(json_num_or(lines[0], "temperature", 0), 0.7, 1e-12);
        // invalid UTF-8 is shown as U+FFFD per maximal subpart
        const char *want = "bin\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                           "end";
        CHECK(str_is(lines[1], "prompt", want, strlen(want)));
        CHECK(json_get(lines[1], "model_sha256")->type == JSON_NULL);
        CHECK(json_get(lines[1], "prefill_s")->type == JSON_NULL);
        CHECK_INT(json_num_or(lines[1], "parent_id", 0), id1);
    }
    free_jsonl(lines, n < 64 ? n : 64);
    Buf raw = {0};
    dbt_read(runs_file, &raw);
    CHECK(strstr(raw.data, "\"seed\":18446744073709551615,") != NULL); // u64 seeds exactly

    // filtered runs export
    CHECK_INT(db_export(db, DB_EXPORT_RUNS, runs_file, &(DbFilter){.annotator = "alice", .model = "gpt2"}, 1, &count,
                        NULL, &e),
              0);
    CHECK_INT(count, 3);

    // CSV: header plus one row per run; text as the JSON export writes it, valid UTF-8 with
    // U+FFFD per maximal subpart of an ill-formed sequence (a CSV reader decodes UTF-8)
    const char *csv_file = dbt_path("runs.csv");
    CHECK_INT(db_export(db, DB_EXPORT_RUNS_CSV, csv_file, NULL, 1, &count, NULL, &e), 0);
    CHECK_INT(count, 7);
    dbt_read(csv_file, &raw);
    CHECK(strncmp(raw.data, "run_id,created,kind,parent_id,annotator,", 40) == 0);
    const char *csv_want = "bin\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                           "end";
    CHECK(memmem(raw.data, raw.len, csv_want, strlen(csv_want)) != NULL);
    CHECK(memmem(raw.data, raw.len, BINARY, sizeof BINARY - 1) == NULL);
    CHECK(utf8_valid_all(raw.data, raw.len));
    CHECK(memmem(raw.data, raw.len, "\"He said \"\"hi\"\" and 'bye'\n", 26) != NULL);

    // rankings: order with the tie, candidates best first, full provenance
    const char *rk_file = dbt_path("rankings.jsonl");
    CHECK_INT(db_export(db, DB_EXPORT_RANKINGS, rk_file, NULL, 1, &count, NULL, &e), 0);
    CHECK_INT(count, 1);
    n = read_jsonl(rk_file, lines, 64);
    CHECK_INT(n, 1);
    if (n == 1) {
        check_keys(lines[0], RANKING_KEYS, "rankings export");
        CHECK(str_is(lines[0], "prompt", NASTY, strlen(NASTY)));
        CHECK(str_is(lines[0], "note", rk.note, strlen(rk.note)));
        const Json *order = json_get(lines[0], "order");
        CHECK(order && order->len == 3);
        CHECK(order && order->items[0].len == 1 && order->items[0].items[0].num == 3);
        CHECK(order && order->items[1].len == 1 && order->items[1].items[0].num == 1);
        CHECK(order && order->items[2].len == 2 && order->items[2].items[0].num == 2 &&
              order->items[2].items[1].num == 4);
        const Json *cs = json_get(lines[0], "candidates");
        CHECK(cs && cs->len == 4);
        for (size_t i = 0; cs && i < cs->len; i++) {
            check_keys(&cs->items[i], CAND_KEYS, "ranking candidate");
            check_keys(json_get(&cs->items[i], "run"), RUN_KEYS, "ranking candidate run");
        }
        if (cs && cs->len == 4) {
            CHECK_INT(json_num_or(&cs->items[0], "n", 0), 3);
            CHECK_INT(json_num_or(&cs->items[0], "rank", 0), 1);
            CHECK(str_is(json_get(&cs->items[0], "run"), "text", outs[2], strlen(outs[2])));
            CHECK_INT(json_num_or(&cs->items[3], "rank", 0), 3);
        }
    }
    free_jsonl(lines, n);

    // pairs: C(4,2) = 6 minus the tie = 5, margins are rank differences
    const char *trl_file = dbt_path("pairs.jsonl");
    CHECK_INT(db_export(db, DB_EXPORT_PAIRS_TRL, trl_file, NULL, 1, &count, NULL, &e), 0);
    CHECK_INT(count, 5);
    n = read_jsonl(trl_file, lines, 64);
    CHECK_INT(n, 5);
    // best first: 3>1 (1), 3>2 (2), 3>4 (2), 1>2 (1), 1>4 (1)
    const int chosen_c[5] = {3, 3, 3, 1, 1}, rejected_c[5] = {1, 2, 4, 2, 4}, margin[5] = {1, 2, 2, 1, 1};
    for (int i = 0; i < n && i < 5; i++) {
        check_keys(lines[i], TRL_KEYS, "trl pair");
        CHECK(str_is(lines[i], "prompt", NASTY, strlen(NASTY)));
        const char *c = outs[chosen_c[i] - 1], *rj = outs[rejected_c[i] - 1];
        CHECK(str_is(lines[i], "chosen", c, strlen(c)));
        CHECK(str_is(lines[i], "rejected", rj, strlen(rj)));
        CHECK_INT(json_num_or(lines[i], "margin", 0), margin[i]);
    }
    free_jsonl(lines, n);

    const char *hh_file = dbt_path("hh.jsonl");
    CHECK_INT(db_export(db, DB_EXPORT_PAIRS_HH, hh_file, NULL, 1, &count, NULL, &e), 0);
    CHECK_INT(count, 5);
    n = read_jsonl(hh_file, lines, 64);
    CHECK_INT(n, 5);
    if (n >= 1) {
        check_keys(lines[0], HH_KEYS, "hh pair");
        Buf want = {0};
        buf_printf(&want, "\n\nHuman: %s\n\nAssistant: %s", NASTY, outs[2]);
        CHECK(str_is(lines[0], "chosen", want.data, want.len));
        buf_clear(&want);
        buf_printf(&want, "\n\nHuman: %s\n\nAssistant: %s", NASTY, outs[0]);
        CHECK(str_is(lines[0], "rejected", want.data, want.len));
        buf_free(&want);
    }
    free_jsonl(lines, n);

    // filters on rankings: annotator, model of a candidate, time
    CHECK_INT(db_export(db, DB_EXPORT_PAIRS_TRL, trl_file, &(DbFilter){.annotator = "nobody"}, 1, &count, NULL, &e), 0);
    CHECK_INT(count, 0);
    dbt_read(trl_file, &raw);
    CHECK_INT(raw.len, 0); // the export replaced the file: empty
    CHECK_INT(db_export(db, DB_EXPORT_RANKINGS, rk_file, &(DbFilter){.model = "other"}, 1, &count, NULL, &e), 0);
    CHECK_INT(count, 1);
    CHECK_INT(db_export(db, DB_EXPORT_RANKINGS, rk_file, &(DbFilter){.model = "nonexistent"}, 1, &count, NULL, &e), 0);
    CHECK_INT(count, 0);
    CHECK_INT(db_export(db, DB_EXPORT_PAIRS_HH, hh_file, &(DbFilter){.since = "2000-01-01", .until = "9999-01-01"},
                        1, &count, NULL, &e),
              0);
    CHECK_INT(count, 5);

    // a chat ranking (ChatML with a system message, as chat=true renders it): the HH transcript's
    // Human turn is the user's message; TRL's prompt is what the model read, the template whole
    {
        Db *cdb = NULL; // a database of its own: the counts below are the first one's
        char cpath[600]; // (not dbt_path: its eight buffers hold the paths in use)
        snprintf(cpath, sizeof cpath, "%s/chat.db", dbt_dir);
        CHECK_INT(db_open(cpath, 0, &cdb, &e), 0);
        const char *chat = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
                           "<|im_start|>assistant\n";
        const char *answers[2] = {" 4", "five"}; // " 4": one space after "Assistant:", not two
        int64_t cc[2];
        char tmp[128];
        for (int i = 0; i < 2; i++) {
            DbRun c;
            dbt_run(&c, 20 + i, chat, tmp, sizeof tmp);
            c.kind = "rank", c.annotator = "carol", c.output = answers[i], c.output_len = strlen(answers[i]);
            c.template_name = "chat:chatml"; // as rank chat=true logs it (a plain prompt is exported whole)
            cc[i] = db_run_insert(cdb, &c, &e);
            CHECK(cc[i] > 0);
        }
        DbRanking ck = {0};
        ck.prompt = chat, ck.prompt_len = strlen(chat), ck.annotator = "carol", ck.k = 2;
        for (int i = 0; i < 2; i++) ck.items[i] = (DbRankItem){i + 1, cc[i], i + 1};
        CHECK(db_ranking_insert(cdb, &ck, &e) > 0);
        CHECK_INT(db_export(cdb, DB_EXPORT_PAIRS_HH, hh_file, NULL, 1, &count, NULL, &e), 0);
        CHECK_INT(count, 1);
        n = read_jsonl(hh_file, lines, 64);
        CHECK_INT(n, 1);
        if (n == 1) {
            const char *want_c = "\n\nHuman: What is 2+2?\n\nAssistant: 4", *want_r = "\n\nHuman: What is 2+2?\n\nAssistant: five";
            CHECK(str_is(lines[0], "chosen", want_c, strlen(want_c)));
            CHECK(str_is(lines[0], "rejected", want_r, strlen(want_r)));
        }
        free_jsonl(lines, n);
        CHECK_INT(db_export(cdb, DB_EXPORT_PAIRS_TRL, trl_file, NULL, 1, &count, NULL, &e), 0);
        n = read_jsonl(trl_file, lines, 64);
        CHECK_INT(n, 1);
        if (n == 1) CHECK(str_is(lines[0], "prompt", chat, strlen(chat)));
        free_jsonl(lines, n);
        db_close(cdb);
        CHECK_INT(db_export(db, DB_EXPORT_PAIRS_HH, hh_file, NULL, 1, &count, NULL, &e), 0); // the first one's again
        CHECK_INT(count, 5);
    }

    // a failed export leaves the old file untouched and no temporary file
    Buf before = {0};
    dbt_read(hh_file, &before);
    CHECK_INT(db_export(db, DB_EXPORT_PAIRS_HH, hh_file, &(DbFilter){.until = "soon"}, 1, &count, NULL, &e), -1);
    dbt_read(hh_file, &raw);
    CHECK(raw.len == before.len && memcmp(raw.data, before.data, raw.len) == 0);
    CHECK_INT(db_export(db, DB_EXPORT_RUNS, dbt_path("missing/dir/x.jsonl"), NULL, 1, &count, NULL, &e), -1);
    CHECK(strstr(e.msg, "missing/dir/x.jsonl") && strstr(e.msg, "No such file"));
    CHECK_INT(db_export(db, DB_EXPORT_RUNS, dbt_dir, NULL, 1, &count, NULL, &e), -1);
    CHECK(strstr(e.msg, "directory") != NULL);
    check_no_temp_files();
    buf_free(&before);
    buf_free(&raw);

    // ---- close, reopen (read-only handle too): everything is still there
    db_close(db);
    CHECK_INT(db_open(path, 0, &db, &e), 0);
    CHECK_INT(db_run_count(db, &e), 7);
    db_close(db);
    CHECK_INT(db_open(path, DB_OPEN_READONLY, &db, &e), 0);
    if (db) {
        CHECK(db_readonly(db));
        CHECK_INT(db_ranking_count(db, &e), 1);
        long nr = 0; // listing rankings: the text filter reaches the note, in any case
        CHECK_INT(db_rankings_each(db, &(DbFilter){.text = "TIE BETWEEN"}, 0, true, count_ranking, &nr, &e), 0);
        CHECK_INT(nr, 1);
        nr = 0; // LIKE wildcards in the text are literal
        CHECK_INT(db_rankings_each(db, &(DbFilter){.text = "%"}, 0, true, count_ranking, &nr, &e), 0);
        CHECK_INT(nr, 0);
        DbRun w;
        dbt_run(&w, 50, "x", out, sizeof out);
        CHECK(db_run_insert(db, &w, &e) < 0);
        CHECK(strstr(e.msg, "read-only") != NULL);
        db_close(db);
    }
    return CHECK_DONE();
}
