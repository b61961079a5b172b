// export.c - writing runs and rankings to the files reward-model trainers read: JSON
// Lines (TRL pairs, HH-RLHF pairs, rankings, runs) and CSV. Files are replaced atomically.
//
// Documented fields (keep them stable; tests check them exactly):
//   runs (JSONL; CSV has the same columns): run_id, created, kind, parent_id, annotator,
//     qkv_version, threads, kv, model_path, model_arch, model_sha256, prompt, template, mode,
//     exemplars, temperature, top_k, top_p, seed, max_tokens, n_alts, stop_at_eos, truncate,
//     prompt_ids, n_truncated, text, ids, logprobs, alts, prefill_s, decode_s, stop_reason
//   rankings: ranking_id, created, annotator, note, qkv_version, prompt, k,
//     order (groups of candidate numbers, best first; a group of several is a tie),
//     candidates (best first: {n, rank, run} with run as in the runs export)
//   pairs, format=trl: prompt, chosen, rejected, margin (a scale, default 1, x (rank of rejected -
//     rank of chosen); no margin field with scale 0);
//     ties are left out, and so are pairs whose chosen and rejected read the same (utf8_same_text)
//   pairs, format=hh: chosen, rejected ("\n\nHuman: PROMPT\n\nAssistant: COMPLETION"; a chat
//               prompt's Human turn is its user's message, base/chatturn.h; a completion's
//               leading space is not doubled after "Assistant:")
//   experiment, format=json: {experiment: {the fields of db_experiment_json_fields}, conditions:
//     [{condition, shots, cot, samples, chat, seed, n, correct, accuracy, stderr (and for multiple
//     choice accuracy_norm, stderr_norm)}], items: [ITEM]}; format=jsonl: one ITEM a line, each
//     with experiment_id; ITEM = {condition, shots, cot, samples, chat, seed, item, input, target,
//     answer, correct, correct_norm, detail, runs: [{sample, run_id, answer, n_reused, prompt,
//     text}]}; format=csv: experiment_id, task, condition, shots, cot, samples, chat, seed, item,
//     input, target, answer, correct, correct_norm, n_runs, run_id, prompt, text (the first run's)
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fs.h"
#include "base/chatturn.h"
#include "base/json.h"
#include "base/stats.h"
#include "base/utf8.h"
#include "db_int.h"

// ---- atomic files --------------------------------------------------------------------------

// -1 with "interrupted" in e once the database's stop flag is up (db_set_stop): each export
// looks before each record it writes.
static int export_stopped(const Db *db, Err *e) { return db->stop && *db->stop ? err_set(e, "interrupted") : 0; }

// Write a line (JSON record) to the file.
static int af_line(AtomicFile *af, Buf *line, Err *e) {
    buf_putc(line, '\n');
    if (fwrite(line->data, 1, line->len, af->f) != line->len)
        return err_set(e, "cannot write '%s': %s", af->dst, strerror(errno));
    return 0;
}

// ---- runs ------------------------------------------------------------------------------------

// A string column that may be NULL.
static void kstr_n(JsonW *w, const char *k, const char *s, size_t n) {
    jw_key(w, k);
    if (s) jw_strn(w, s, n);
    else jw_null(w);
}

// JSON text stored by qkv (checked by json_valid on insert), or null.
static void kraw(JsonW *w, const char *k, const char *json) {
    jw_key(w, k);
    if (json && *json) jw_raw(w, json);
    else jw_null(w);
}

void db_run_json(const DbRun *r, JsonW *w) {
    jw_obj(w);
    db_run_json_fields(r, w, true);
    jw_obj_end(w);
}

void db_run_json_fields(const DbRun *r, JsonW *w, bool full) {
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->seed);
    jw_kid(w, "run_id", r->id); // null: a run the database could not take (the warning says why)
    jw_key(w, "created");
    if (r->id > 0 && r->created[0]) jw_str(w, r->created);
    else jw_null(w);
    jw_kstr(w, "kind", r->kind);
    if (full) {
        jw_key(w, "parent_id");
        if (r->parent_id > 0) jw_int(w, r->parent_id);
        else jw_null(w);
    }
    jw_kstr(w, "annotator", r->annotator);
    if (full) {
        jw_kstr(w, "qkv_version", r->qkv_version);
        jw_kint(w, "threads", r->n_threads);
        jw_kstr(w, "kv", r->kv ? r->kv : "f32");
    }
    jw_kstr(w, "model_path", r->model_path);
    jw_kstr(w, "model_arch", r->model_arch);
    if (full) jw_kstr(w, "model_sha256", r->model_sha256);
    kstr_n(w, "prompt", r->prompt, r->prompt_len);
    kstr_n(w, "text", r->output, r->output_len);
    jw_key(w, "seed");
    jw_raw(w, seed);
    jw_knum(w, "temperature", r->temperature);
    jw_kstr(w, "stop_reason", r->stop_reason);
    if (!full) return;
    jw_kstr(w, "template", r->template_name);
    jw_kstr(w, "mode", r->mode);
    kraw(w, "exemplars", r->exemplars);
    jw_kint(w, "top_k", r->top_k);
    jw_knum(w, "top_p", r->top_p);
    jw_kint(w, "max_tokens", r->max_tokens);
    jw_kint(w, "n_alts", r->n_alts);
    jw_kbool(w, "stop_at_eos", r->stop_at_eos);
    jw_kbool(w, "truncate", r->truncate);
    kraw(w, "prompt_ids", r->prompt_ids);
    jw_kint(w, "n_truncated", r->n_truncated);
    kraw(w, "ids", r->ids);
    kraw(w, "logprobs", r->logprobs);
    kraw(w, "alts", r->alts);
    jw_knum(w, "prefill_s", r->prefill_s);
    jw_knum(w, "decode_s", r->decode_s);
}

static const char *const CSV_COLS[] = {
    "run_id", "created", "kind", "parent_id", "annotator", "qkv_version", "threads", "kv", "model_path",
    "model_arch", "model_sha256", "prompt", "template", "mode", "exemplars", "temperature", "top_k",
    "top_p", "seed", "max_tokens", "n_alts", "stop_at_eos", "truncate", "prompt_ids", "n_truncated",
    "text", "ids", "logprobs", "alts", "prefill_s", "decode_s", "stop_reason",
};

// One CSV field, after a comma unless it is the first; NULL is an empty field.
static void csv_field(Buf *b, const char *s, size_t n, bool first) {
    if (!first) buf_putc(b, ',');
    if (s) buf_put_csv(b, s, n);
}

static void csv_str(Buf *b, const char *s) { csv_field(b, s, s ? strlen(s) : 0, false); }

static void csv_num(Buf *b, double v) {
    buf_putc(b, ',');
    if (v == v) buf_json_num(b, v);
}

static void csv_run(Buf *b, const DbRun *r) {
    buf_printf(b, "%lld", (long long)r->id);
    csv_str(b, r->created);
    csv_str(b, r->kind);
    buf_putc(b, ',');
    if (r->parent_id > 0) buf_printf(b, "%lld", (long long)r->parent_id);
    csv_str(b, r->annotator);
    csv_str(b, r->qkv_version);
    buf_printf(b, ",%d", r->n_threads);
    csv_str(b, r->kv ? r->kv : "f32");
    csv_str(b, r->model_path);
    csv_str(b, r->model_arch);
    csv_str(b, r->model_sha256);
    csv_field(b, r->prompt, r->prompt_len, false);
    csv_str(b, r->template_name);
    csv_str(b, r->mode);
    csv_str(b, r->exemplars);
    csv_num(b, r->temperature);
    buf_printf(b, ",%d", r->top_k);
    csv_num(b, r->top_p);
    buf_printf(b, ",%llu,%d,%d,%s,%s", (unsigned long long)r->seed, r->max_tokens, r->n_alts,
               r->stop_at_eos ? "true" : "false", r->truncate ? "true" : "false");
    csv_str(b, r->prompt_ids);
    buf_printf(b, ",%d", r->n_truncated);
    csv_field(b, r->output, r->output_len, false);
    csv_str(b, r->ids);
    csv_str(b, r->logprobs);
    csv_str(b, r->alts);
    csv_num(b, r->prefill_s);
    csv_num(b, r->decode_s);
    csv_str(b, r->stop_reason);
    buf_putc(b, '\r'); // RFC 4180 line ends are CRLF; af_line adds the LF
}

typedef struct RunsExport {
    const Db *db;
    AtomicFile *af;
    bool csv;
    Buf line;
    long count;
    Err *e;
} RunsExport;

static int export_run(void *user, const DbRun *r) {
    RunsExport *x = user;
    if (export_stopped(x->db, x->e)) return -1;
    buf_clear(&x->line);
    if (x->csv) {
        csv_run(&x->line, r);
    } else {
        JsonW w;
        jw_init(&w, &x->line);
        db_run_json(r, &w);
    }
    if (af_line(x->af, &x->line, x->e)) return -1;
    x->count++;
    return 0;
}

// ---- rankings and pairs ------------------------------------------------------------------

typedef struct Cand {
    int n, rank;
    DbRun run; // owned copy
} Cand;

// The candidates of ranking id, best first (rank, then n). Returns the count or -1.
static int ranking_cands(Db *db, int64_t id, Cand *c, Err *e) {
    Buf sql = {0};
    buf_printf(&sql, "SELECT i.n, i.rank, %s FROM ranking_items i JOIN runs r ON r.id = i.run_id "
                     "WHERE i.ranking_id = ? ORDER BY i.rank, i.n",
               DB_RUN_COLS);
    sqlite3_stmt *st = db_prepare(db, sql.data, e);
    buf_free(&sql);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, id);
    int n = 0, rc, bad = 0;
    while (!bad && (rc = sqlite3_step(st)) == SQLITE_ROW && n < DB_RANK_MAX) {
        c[n].n = sqlite3_column_int(st, 0);
        c[n].rank = sqlite3_column_int(st, 1);
        bad = db_run_read(st, 2, &c[n].run, true, e);
        n += !bad;
    }
    if (bad || (rc != SQLITE_DONE && rc != SQLITE_ROW)) {
        if (!bad) db_fail(db, rc, e, "cannot read");
        while (n > 0) db_run_done(&c[--n].run);
        n = -1;
    }
    sqlite3_finalize(st);
    return n;
}

// A prompt a chat template rendered gives the Human turn its user's message, not the template's
// markers and system message (the completion is the assistant's turn either way). "Assistant: "
// ends with the space that separates the turn from its text: a completion's own leading space
// (GPT-2-style tokens start with one) is not doubled.
static void hh_transcript(Buf *b, const char *prompt, size_t plen, const DbRun *r) {
    buf_clear(b);
    buf_puts(b, "\n\nHuman: ");
    size_t off, len;
    if (db_run_chat(r) && chat_user_text(prompt, plen, &off, &len)) buf_put(b, prompt + off, len);
    else buf_put(b, prompt, plen);
    buf_puts(b, "\n\nAssistant: ");
    bool space = r->output_len > 0 && r->output[0] == ' ';
    buf_put(b, r->output + space, r->output_len - space);
}

// Write the records of one ranking (a rankings line, or its pairs); *identical counts the pairs
// left out because their chosen and rejected would read the same (utf8_same_text).
static int export_ranking(DbExport what, double margin, AtomicFile *af, const DbRanking *r, const Cand *c, int k,
                          long *count, long *identical, Err *e) {
    const char *prompt = r->prompt;
    size_t plen = r->prompt_len;
    Buf line = {0}, chosen = {0}, rejected = {0};
    JsonW w;
    int status = 0;
    if (what == DB_EXPORT_RANKINGS) {
        jw_init(&w, &line);
        jw_obj(&w);
        jw_kint(&w, "ranking_id", r->id);
        jw_kstr(&w, "created", r->created);
        jw_kstr(&w, "annotator", r->annotator);
        jw_kstr(&w, "note", r->note);
        jw_kstr(&w, "qkv_version", r->qkv_version);
        jw_key(&w, "prompt");
        jw_strn(&w, prompt, plen);
        jw_kint(&w, "k", r->k);
        jw_key(&w, "order");
        jw_arr(&w);
        for (int i = 0; i < k; i++) {
            if (i == 0 || c[i].rank != c[i - 1].rank) {
                if (i) jw_arr_end(&w);
                jw_arr(&w);
            }
            jw_int(&w, c[i].n);
        }
        if (k) jw_arr_end(&w);
        jw_arr_end(&w);
        jw_key(&w, "candidates");
        jw_arr(&w);
        for (int i = 0; i < k; i++) {
            jw_obj(&w);
            jw_kint(&w, "n", c[i].n);
            jw_kint(&w, "rank", c[i].rank);
            jw_key(&w, "run");
            db_run_json(&c[i].run, &w);
            jw_obj_end(&w);
        }
        jw_arr_end(&w);
        jw_obj_end(&w);
        status = af_line(af, &line, e);
        if (!status) (*count)++;
    } else {
        for (int i = 0; i < k && !status; i++)
            for (int j = i + 1; j < k && !status; j++) {
                // two completions that read the same as written give no preference, tied or not
                // (greedy candidates; two cut inside a character; in a transcript, two that differ by
                // the leading space it drops): counted, as the trainers count them; nor does a tie
                bool same;
                if (what == DB_EXPORT_PAIRS_TRL) {
                    same = utf8_same_text(c[i].run.output, c[i].run.output_len, c[j].run.output,
                                          c[j].run.output_len);
                } else {
                    hh_transcript(&chosen, prompt, plen, &c[i].run);
                    hh_transcript(&rejected, prompt, plen, &c[j].run);
                    same = utf8_same_text(chosen.data, chosen.len, rejected.data, rejected.len);
                }
                if (same) {
                    (*identical)++;
                    continue;
                }
                if (c[i].rank == c[j].rank) continue;
                buf_clear(&line);
                jw_init(&w, &line);
                jw_obj(&w);
                if (what == DB_EXPORT_PAIRS_TRL) {
                    jw_key(&w, "prompt");
                    jw_strn(&w, prompt, plen);
                    jw_key(&w, "chosen");
                    jw_strn(&w, c[i].run.output, c[i].run.output_len);
                    jw_key(&w, "rejected");
                    jw_strn(&w, c[j].run.output, c[j].run.output_len);
                    if (margin == 1) jw_kint(&w, "margin", c[j].rank - c[i].rank);
                    else if (margin != 0) jw_knum(&w, "margin", margin * (c[j].rank - c[i].rank));
                } else {
                    jw_key(&w, "chosen");
                    jw_strn(&w, chosen.data, chosen.len);
                    jw_key(&w, "rejected");
                    jw_strn(&w, rejected.data, rejected.len);
                }
                jw_obj_end(&w);
                status = af_line(af, &line, e);
                if (!status) (*count)++;
            }
    }
    buf_free(&line);
    buf_free(&chosen);
    buf_free(&rejected);
    return status;
}

typedef struct {
    Db *db;
    DbExport what;
    double margin;
    AtomicFile *af;
    long *count, *identical;
    Err *e;
} RankingExport;

static int export_one_ranking(void *user, const DbRanking *r) {
    RankingExport *x = user;
    if (export_stopped(x->db, x->e)) return -1;
    Cand c[DB_RANK_MAX];
    int k = ranking_cands(x->db, r->id, c, x->e);
    if (k < 0) return -1;
    int status = export_ranking(x->what, x->margin, x->af, r, c, k, x->count, x->identical, x->e);
    for (int i = 0; i < k; i++) db_run_done(&c[i].run);
    return status;
}

static int export_rankings(Db *db, DbExport what, double margin, AtomicFile *af, const DbFilter *f, long *count,
                           long *identical, Err *e) {
    RankingExport x = {db, what, margin, af, count, identical, e};
    return db_rankings_each(db, f, 0, false, export_one_ranking, &x, e);
}

// ---- entry -------------------------------------------------------------------------------------

int db_export(Db *db, DbExport what, const char *file, const DbFilter *f, double margin, long *count, long *identical,
              Err *e) {
    long same = 0;
    *count = 0;
    if (identical) *identical = 0;
    // check the filter before creating anything
    DbWhere check;
    int bad = db_where_build(f, DB_WHERE_RUNS, &check, e);
    db_where_done(&check);
    if (bad || db_sound(db, e, "cannot export from")) return -1;

    AtomicFile af;
    if (af_open(&af, file, e)) return -1;
    // one read transaction: the export is a consistent snapshot even while others write
    sqlite3_stmt *begin = db_stmt(db, "BEGIN", e);
    bool in_tx = false;
    int status = -1;
    if (begin) {
        int rc = sqlite3_step(begin);
        sqlite3_reset(begin);
        in_tx = rc == SQLITE_DONE;
        if (!in_tx) db_fail(db, rc, e, "cannot read");
    }
    if (in_tx) {
        if (what == DB_EXPORT_RUNS || what == DB_EXPORT_RUNS_CSV) {
            RunsExport x = {.db = db, .af = &af, .csv = what == DB_EXPORT_RUNS_CSV, .e = e};
            status = 0;
            if (x.csv) {
                for (size_t i = 0; i < sizeof CSV_COLS / sizeof CSV_COLS[0]; i++)
                    csv_field(&x.line, CSV_COLS[i], strlen(CSV_COLS[i]), i == 0);
                buf_putc(&x.line, '\r');
                status = af_line(&af, &x.line, e);
            }
            if (!status) status = db_runs_each(db, f, 0, false, export_run, &x, e);
            *count = x.count;
            buf_free(&x.line);
        } else {
            status = export_rankings(db, what, margin, &af, f, count, &same, e);
        }
        sqlite3_stmt *end = db_stmt(db, "COMMIT", NULL);
        if (end) {
            sqlite3_step(end);
            sqlite3_reset(end);
        }
    }
    if (status) {
        af_abort(&af);
        *count = 0;
        return -1;
    }
    if (af_commit(&af, e)) {
        *count = 0;
        return -1;
    }
    if (identical) *identical = same;
    return 0;
}

// ---- experiments ---------------------------------------------------------------------------

void db_experiment_json_fields(const DbExperiment *x, JsonW *w) {
    jw_kint(w, "experiment_id", x->id);
    jw_kstr(w, "created", x->created);
    jw_key(w, "finished");
    if (x->finished[0]) jw_str(w, x->finished);
    else jw_null(w);
    jw_kstr(w, "status", x->status);
    jw_kstr(w, "task", x->task);
    jw_kstr(w, "task_path", x->task_path);
    jw_kstr(w, "task_sha256", x->task_sha256);
    jw_kstr(w, "model_path", x->model_path);
    jw_kstr(w, "model_arch", x->model_arch);
    jw_kstr(w, "model_sha256", x->model_sha256);
    jw_kstr(w, "annotator", x->annotator);
    jw_kstr(w, "qkv_version", x->qkv_version);
    jw_kstr(w, "command", x->command);
    kraw(w, "spec", x->spec);
    jw_kint(w, "n_items", x->n_items);
    jw_kint(w, "n_conditions", x->n_conditions);
    jw_kint(w, "n_done", x->n_done);
}

// A number that may be NaN (no value): null in JSON.
static void knum_or_null(JsonW *w, const char *k, double v) {
    jw_key(w, k);
    if (v == v) jw_num(w, v);
    else jw_null(w);
}

static void cond_fields(const DbCondition *c, JsonW *w) {
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    jw_kint(w, "condition", c->idx);
    jw_kint(w, "shots", c->shots);
    jw_kbool(w, "cot", c->cot);
    jw_kint(w, "samples", c->samples);
    jw_kbool(w, "chat", c->chat);
    jw_key(w, "seed");
    jw_raw(w, seed);
}

void db_cond_stats_json(const DbCondStats *s, JsonW *w) {
    jw_obj(w);
    cond_fields(&s->c, w);
    jw_kint(w, "n", s->n);
    jw_kint(w, "correct", s->correct);
    double lo, hi;
    knum_or_null(w, "accuracy", stats_accuracy(s->correct, s->n));
    knum_or_null(w, "stderr", stats_stderr(s->correct, s->n));
    stats_wilson95(s->correct, s->n, &lo, &hi);
    knum_or_null(w, "ci_low", lo);
    knum_or_null(w, "ci_high", hi);
    if (s->n_norm) {
        knum_or_null(w, "accuracy_norm", stats_accuracy(s->correct_norm, s->n_norm));
        knum_or_null(w, "stderr_norm", stats_stderr(s->correct_norm, s->n_norm));
        stats_wilson95(s->correct_norm, s->n_norm, &lo, &hi);
        knum_or_null(w, "ci_low_norm", lo);
        knum_or_null(w, "ci_high_norm", hi);
    }
    jw_obj_end(w);
}

enum { EXP_MAX_CONDITIONS = 4096 };

typedef struct ExpExport {
    Db *db;
    int64_t id;
    const DbExperiment *x;
    const DbCondStats *conds;
    int n_conds;
    DbExportExp format;
    AtomicFile *af;
    Buf line;
    long count;
    bool first;
    Err *e;
} ExpExport;

static int export_item(void *user, const DbExpItem *it) {
    ExpExport *x = user;
    if (export_stopped(x->db, x->e)) return -1;
    const DbCondition *c = it->condition < x->n_conds ? &x->conds[it->condition].c : NULL;
    // the runs' prompts and completions
    DbRun *runs = calloc((size_t)it->n_runs + 1, sizeof *runs);
    if (!runs) return err_set(x->e, "out of memory");
    int status = 0;
    for (int k = 0; k < it->n_runs && !status; k++)
        if (db_run_get(x->db, it->runs[k].run_id, &runs[k], x->e) < 0) status = -1;
    Buf *b = &x->line;
    buf_clear(b);
    if (!status && x->format == DB_EXPORT_EXP_CSV) {
        buf_printf(b, "%lld", (long long)x->id);
        csv_str(b, x->x->task);
        buf_printf(b, ",%d,%d,%s,%d,%s,%llu,%d", it->condition, c ? c->shots : 0, c && c->cot ? "true" : "false",
                   c ? c->samples : 1, c && c->chat ? "true" : "false", c ? (unsigned long long)c->seed : 0ull, it->item);
        csv_str(b, it->input);
        csv_str(b, it->target);
        csv_str(b, it->answer);
        buf_printf(b, ",%s,%s,%d,", it->correct ? "true" : "false",
                   it->correct_norm < 0 ? "" : it->correct_norm ? "true" : "false", it->n_runs);
        if (it->n_runs) buf_printf(b, "%lld", (long long)it->runs[0].run_id);
        csv_field(b, it->n_runs ? runs[0].prompt : NULL, it->n_runs ? runs[0].prompt_len : 0, false);
        csv_field(b, it->n_runs ? runs[0].output : NULL, it->n_runs ? runs[0].output_len : 0, false);
        buf_putc(b, '\r');
        status = af_line(x->af, b, x->e);
    } else if (!status) {
        JsonW w;
        jw_init(&w, b);
        if (x->format == DB_EXPORT_EXP_JSON && !x->first) buf_putc(b, ',');
        jw_obj(&w);
        if (x->format == DB_EXPORT_EXP_JSONL) jw_kint(&w, "experiment_id", x->id);
        if (c) cond_fields(c, &w);
        else jw_kint(&w, "condition", it->condition);
        jw_kint(&w, "item", it->item);
        jw_kstr(&w, "input", it->input);
        jw_kstr(&w, "target", it->target);
        jw_kstr(&w, "answer", it->answer);
        jw_kbool(&w, "correct", it->correct);
        jw_key(&w, "correct_norm");
        if (it->correct_norm < 0) jw_null(&w);
        else jw_bool(&w, it->correct_norm);
        kraw(&w, "detail", it->detail);
        jw_key(&w, "runs");
        jw_arr(&w);
        for (int k = 0; k < it->n_runs; k++) {
            jw_obj(&w);
            jw_kint(&w, "sample", it->runs[k].sample);
            jw_kint(&w, "run_id", it->runs[k].run_id);
            jw_kstr(&w, "answer", it->runs[k].answer);
            jw_kint(&w, "n_reused", it->runs[k].n_reused);
            kstr_n(&w, "prompt", runs[k].prompt, runs[k].prompt_len);
            kstr_n(&w, "text", runs[k].output, runs[k].output_len);
            jw_obj_end(&w);
        }
        jw_arr_end(&w);
        jw_obj_end(&w);
        if (x->format == DB_EXPORT_EXP_JSONL) {
            status = af_line(x->af, b, x->e);
        } else if (fwrite(b->data, 1, b->len, x->af->f) != b->len) {
            status = err_set(x->e, "cannot write '%s': %s", x->af->dst, strerror(errno));
        }
    }
    for (int k = 0; k < it->n_runs; k++) db_run_done(&runs[k]);
    free(runs);
    if (!status) x->count++, x->first = false;
    return status;
}

static const char *const EXP_CSV_COLS[] = {
    "experiment_id", "task", "condition", "shots", "cot", "samples", "chat", "seed", "item", "input", "target",
    "answer", "correct", "correct_norm", "n_runs", "run_id", "prompt", "text",
};

// The export inside a read transaction (af open, x read).
static int export_experiment_body(ExpExport *x) {
    Buf *b = &x->line;
    int status = 0;
    if (x->format == DB_EXPORT_EXP_CSV) {
        for (size_t i = 0; i < sizeof EXP_CSV_COLS / sizeof *EXP_CSV_COLS; i++)
            csv_field(b, EXP_CSV_COLS[i], strlen(EXP_CSV_COLS[i]), i == 0);
        buf_putc(b, '\r');
        status = af_line(x->af, b, x->e);
    } else if (x->format == DB_EXPORT_EXP_JSON) {
        JsonW w;
        jw_init(&w, b);
        buf_puts(b, "{\"experiment\":");
        jw_obj(&w);
        db_experiment_json_fields(x->x, &w);
        jw_obj_end(&w);
        buf_puts(b, ",\"conditions\":");
        jw_init(&w, b);
        jw_arr(&w);
        for (int i = 0; i < x->n_conds; i++) db_cond_stats_json(&x->conds[i], &w);
        jw_arr_end(&w);
        buf_puts(b, ",\"items\":[");
        if (fwrite(b->data, 1, b->len, x->af->f) != b->len)
            status = err_set(x->e, "cannot write '%s': %s", x->af->dst, strerror(errno));
    }
    x->first = true;
    if (!status) status = db_experiment_items_each(x->db, x->id, -1, -1, export_item, x, x->e);
    if (!status && x->format == DB_EXPORT_EXP_JSON && fputs("]}\n", x->af->f) == EOF)
        status = err_set(x->e, "cannot write '%s': %s", x->af->dst, strerror(errno));
    return status;
}

int db_export_experiment(Db *db, int64_t id, DbExportExp format, const char *file, long *count, Err *e) {
    *count = 0;
    if (db_sound(db, e, "cannot export from")) return -1;
    DbExperiment x;
    int found = db_experiment_get(db, id, &x, e);
    if (found <= 0) return found < 0 ? -1 : err_set(e, "no experiment %lld in '%s'", (long long)id, db->path);
    int nc = x.n_conditions > 0 && x.n_conditions <= EXP_MAX_CONDITIONS ? x.n_conditions : 1;
    DbCondStats *conds = calloc((size_t)nc, sizeof *conds);
    if (!conds) {
        db_experiment_done(&x);
        return err_set(e, "out of memory");
    }
    AtomicFile af;
    int status = af_open(&af, file, e);
    bool opened = !status, in_tx = false;
    if (!status) {
        // one read transaction: a consistent snapshot while the experiment may still be running
        sqlite3_stmt *begin = db_stmt(db, "BEGIN", e);
        int rc = begin ? sqlite3_step(begin) : SQLITE_ERROR;
        if (begin) sqlite3_reset(begin);
        in_tx = rc == SQLITE_DONE;
        if (!in_tx) status = begin ? db_fail(db, rc, e, "cannot read") : -1;
    }
    int n = status ? -1 : db_experiment_stats(db, id, conds, nc, e);
    if (n < 0) status = -1;
    if (!status) {
        ExpExport xe = {db, id, &x, conds, n < nc ? n : nc, format, &af, {0}, 0, true, e};
        status = export_experiment_body(&xe);
        *count = xe.count;
        buf_free(&xe.line);
    }
    if (in_tx) {
        sqlite3_stmt *end = db_stmt(db, "COMMIT", NULL);
        if (end) sqlite3_step(end), sqlite3_reset(end);
    }
    if (opened && status) af_abort(&af);
    else if (opened && af_commit(&af, e)) status = -1;
    if (status) *count = 0;
    free(conds);
    db_experiment_done(&x);
    return status;
}
