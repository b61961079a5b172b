// runlog.c - every generation is logged: turning a GenResult with its parameters and the
// App's state (model identity, annotator, threads) into a run row, and the model content
// hash computed once per file and cached in the database.
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app.h"
#include "appdb.h"
#include "kern/pool.h"
#include "base/sha256.h"
#include "base/mem.h"

Db *app_db(App *app, Err *e) {
    if (app->db) return app->db;
    if (!app->db_path) {
        app->db_path = db_resolve_path(NULL, e);
        if (!app->db_path) return NULL;
    }
    if (db_open(app->db_path, 0, &app->db, e)) app->db = NULL;
    return app->db;
}

// The hash of one file, from the cache when its path, size and modification time match.
static int file_hash(Db *db, const char *path, char hex[65], Err *e) {
    struct stat st;
    if (stat(path, &st) != 0) return err_set(e, "cannot hash '%s': %s", path, strerror(errno));
    int64_t mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    int found = db_hash_lookup(db, path, (int64_t)st.st_size, mtime_ns, hex, e);
    if (found) return found < 0 ? -1 : 0;
    unsigned char d[32];
    if (sha256_file(path, d, e)) return -1;
    sha256_hex(d, hex);
    return db_hash_store(db, path, (int64_t)st.st_size, mtime_ns, hex, e);
}

// Files of a model directory that qkv reads (weights, configuration, tokenizer).
static bool model_file(const char *name) {
    if (name[0] == '.') return false;
    const char *dot = strrchr(name, '.');
    return dot && (!strcmp(dot, ".safetensors") || !strcmp(dot, ".json") || !strcmp(dot, ".txt") ||
                   !strcmp(dot, ".model") || !strcmp(dot, ".gguf"));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// The content hash of a model: of the file itself, or for a directory the SHA-256 of the
// "HASH  NAME\n" lines (sha256sum's format) of the files qkv reads in it, sorted by name.
static int model_hash(Db *db, const char *path, char hex[65], Err *e) {
    struct stat st;
    if (stat(path, &st) != 0) return err_set(e, "cannot hash '%s': %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return file_hash(db, path, hex, e);
    DIR *d = opendir(path);
    if (!d) return err_set(e, "cannot hash '%s': %s", path, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!model_file(de->d_name)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            names = xrealloc(names, cap * sizeof *names);
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    Buf list = {0}, file = {0};
    int status = 0;
    for (size_t i = 0; i < n && !status; i++) {
        buf_clear(&file);
        buf_printf(&file, "%s/%s", path, names[i]);
        struct stat fs;
        if (stat(file.data, &fs) != 0 || !S_ISREG(fs.st_mode)) continue;
        char h[65];
        status = file_hash(db, file.data, h, e);
        if (!status) buf_printf(&list, "%s  %s\n", h, names[i]);
    }
    if (!status) {
        unsigned char dg[32];
        sha256(list.data ? list.data : "", list.len, dg);
        sha256_hex(dg, hex);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    buf_free(&list);
    buf_free(&file);
    return status;
}

static void json_int_list(Buf *b, const int *v, int n) {
    buf_putc(b, '[');
    for (int i = 0; i < n; i++) buf_printf(b, "%s%d", i ? "," : "", v[i]);
    buf_putc(b, ']');
}

int64_t app_log_run(App *app, const char *prompt, size_t prompt_len, const GenParams *p, const GenResult *r,
                    const char *text, size_t text_len, Err *e) {
    Db *db = app_db(app, e);
    if (!db) return 0;
    const Model *m = app->model;
    char abs[PATH_MAX], hex[65];
    DbRun run = {0};
    if (m->builtin) {
        run.model_path = "builtin";
        if (m->owned_bytes && m->file_bytes > 0) { // its weights are in memory: hash those
            unsigned char d[32];
            sha256(m->owned_bytes, (size_t)m->file_bytes, d);
            sha256_hex(d, hex);
            run.model_sha256 = hex;
        }
    } else {
        run.model_path = realpath(m->path, abs) ? abs : m->path;
        if (model_hash(db, run.model_path, hex, e)) return 0;
        run.model_sha256 = hex;
    }
    run.model_arch = m->cfg.a.name;
    run.kind = "generate";
    run.annotator = app->annotator;
    run.n_threads = app->ctx ? ctx_threads(app->ctx) : app->n_threads > 0 ? app->n_threads : pool_cpus();
    run.prompt = prompt;
    run.prompt_len = prompt_len;
    run.temperature = p->s.temperature;
    run.top_k = p->s.top_k;
    run.top_p = p->s.top_p;
    run.seed = p->s.seed;
    run.max_tokens = p->max_tokens;
    run.n_alts = p->n_alts;
    run.stop_at_eos = p->stop_at_eos;
    run.truncate = p->truncate;
    run.n_truncated = r->n_truncated;
    run.output = text;
    run.output_len = text_len;
    run.prefill_s = r->prefill_s;
    run.decode_s = r->decode_s;
    run.stop_reason = stop_reason_name(r->stop);

    Buf pids = {0}, ids = {0}, lps = {0}, alts = {0};
    json_int_list(&pids, r->prompt.v, r->prompt.n);
    json_int_list(&ids, r->ids.v, r->ids.n);
    buf_putc(&lps, '[');
    buf_putc(&alts, '[');
    for (int i = 0; i < r->ids.n; i++) {
        const GenStep *s = &r->steps[i];
        if (i) buf_putc(&lps, ','), buf_putc(&alts, ',');
        buf_json_num(&lps, s->logprob);
        buf_putc(&alts, '[');
        for (int k = 0; k < s->n_alts; k++) {
            buf_printf(&alts, "%s[%d,", k ? "," : "", s->alt_ids[k]);
            buf_json_num(&alts, s->alt_logprobs[k]);
            buf_putc(&alts, ']');
        }
        buf_putc(&alts, ']');
    }
    buf_putc(&lps, ']');
    buf_putc(&alts, ']');
    run.prompt_ids = pids.data;
    run.ids = ids.data;
    run.logprobs = lps.data;
    run.alts = p->n_alts > 0 ? alts.data : NULL;
    int64_t id = db_run_insert(db, &run, e);
    buf_free(&pids), buf_free(&ids), buf_free(&lps), buf_free(&alts);
    return id > 0 ? id : 0;
}
