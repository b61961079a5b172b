// runlog.c - every generation is logged: turning a GenResult with its parameters and where
// it came from (model identity, annotator, threads) into a run row, and the model content
// hash computed once per file and cached in the database.
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runlog.h"

#include "model/quantize.h"

#include "base/fs.h"
#include "base/sha256.h"
#include "base/mem.h"

// The hash of one file, from the cache when its path, size and inode change time match (the
// cache's column is named mtime_ns: the modification time can be set back, touch -r or a copy
// keeping times, after the content changed; the change time cannot, and moves with every write).
static int file_hash(Db *db, const char *path, char hex[65], Err *e) {
    struct stat st;
    if (stat(path, &st) != 0) return err_set(e, "cannot hash '%s': %s", path, strerror(errno));
    int64_t mtime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
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

// Whether files a and b are one (both exist).
static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

bool runlog_hashes(const char *model_path, const char *file) {
    struct stat st;
    if (stat(model_path, &st) != 0) return false;
    if (!S_ISDIR(st.st_mode)) return same_file(model_path, file);
    if (stat(file, &st) != 0 || !S_ISREG(st.st_mode)) return false; // a new name: the loaded files stay
    char *dir = fs_dirname(file);
    const char *base = strrchr(file, '/');
    bool in = same_file(dir, model_path) && model_file(base ? base + 1 : file);
    free(dir);
    return in;
}

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
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n > 1) qsort(names, n, sizeof *names, cmp_str); // names is NULL when the folder has none
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

// The model's path as runs record it (absolute, or "builtin") and its architecture
// (runlog_arch_name; replay converts a quantized one again: app_quantize_as).
void runlog_arch_name(const Model *m, char *out, size_t cap) {
    if (m->dtype == DT_F32 && !m->base) snprintf(out, cap, "%s", m->cfg.a.name);
    else if (!m->base) snprintf(out, cap, "%s %s", m->cfg.a.name, dtype_name(m->dtype));
    else
        snprintf(out, cap, "%s %s (quantize %s%s)", m->cfg.a.name, dtype_name(m->dtype), quant_type_name(m->quant_dt),
                 m->quant_embed ? " embed=true" : "");
}

static void record_model(RunRecord *rr, const Model *m) {
    rr->run.model_path = m->builtin ? "builtin" : realpath(m->path, rr->abs) ? rr->abs : m->path;
    runlog_arch_name(m, rr->arch, sizeof rr->arch);
    rr->run.model_arch = rr->arch;
}

int runlog_model(RunRecord *rr, Db *db, const Model *m, Err *e) {
    memset(rr, 0, sizeof *rr);
    record_model(rr, m);
    return runlog_identify(rr, db, m, e);
}

const char *runlog_kv_name(DType kv) { return kv == DT_F16 ? "f16" : kv == DT_Q8_0 ? "q8_0" : "f32"; }

void runlog_record(RunRecord *rr, const RunOrigin *o, const char *prompt, size_t prompt_len, const GenParams *p,
                   const GenResult *r, const char *text, size_t text_len) {
    memset(rr, 0, sizeof *rr);
    DbRun *run = &rr->run;
    record_model(rr, o->model);
    run->kind = o->kind ? o->kind : "generate";
    run->parent_id = o->parent_id;
    run->annotator = o->annotator;
    run->n_threads = o->threads;
    run->kv = runlog_kv_name(o->kv);
    run->prompt = prompt;
    run->prompt_len = prompt_len;
    run->temperature = float_decimal(p->s.temperature); // 0.9, not 0.899999976
    run->top_k = p->s.top_k;
    run->top_p = float_decimal(p->s.top_p);
    run->seed = p->s.seed;
    run->max_tokens = p->max_tokens;
    run->n_alts = p->n_alts;
    run->stop_at_eos = p->stop_at_eos;
    run->truncate = p->truncate;
    run->n_truncated = r->n_truncated + p->n_dropped;
    run->output = text;
    run->output_len = text_len;
    run->prefill_s = r->prefill_s;
    run->decode_s = r->decode_s;
    run->stop_reason = stop_reason_name(r->stop);
    run->qkv_version = QKV_VERSION;
    json_int_list(&rr->pids, r->prompt.v, r->prompt.n);
    json_int_list(&rr->ids, r->ids.v, r->ids.n);
    buf_putc(&rr->lps, '[');
    buf_putc(&rr->alts, '[');
    for (int i = 0; i < r->ids.n; i++) {
        const GenStep *s = &r->steps[i];
        if (i) buf_putc(&rr->lps, ','), buf_putc(&rr->alts, ',');
        buf_json_num(&rr->lps, s->logprob);
        buf_putc(&rr->alts, '[');
        for (int k = 0; k < s->n_alts; k++) {
            buf_printf(&rr->alts, "%s[%d,", k ? "," : "", s->alt_ids[k]);
            buf_json_num(&rr->alts, s->alt_logprobs[k]);
            buf_putc(&rr->alts, ']');
        }
        buf_putc(&rr->alts, ']');
    }
    buf_putc(&rr->lps, ']');
    buf_putc(&rr->alts, ']');
    run->prompt_ids = rr->pids.data;
    run->ids = rr->ids.data;
    run->logprobs = rr->lps.data;
    run->alts = p->n_alts > 0 ? rr->alts.data : NULL;
}

int runlog_identify(RunRecord *rr, Db *db, const Model *m, Err *e) {
    if (m->builtin) {
        if (m->owned_bytes && m->file_bytes > 0) { // its weights are in memory: hash those
            unsigned char d[32];
            sha256(m->owned_bytes, (size_t)m->file_bytes, d);
            sha256_hex(d, rr->hex);
            rr->run.model_sha256 = rr->hex;
        }
        return 0;
    }
    if (model_hash(db, rr->run.model_path, rr->hex, e)) return -1;
    rr->run.model_sha256 = rr->hex;
    return 0;
}

void runlog_record_done(RunRecord *rr) {
    buf_free(&rr->pids), buf_free(&rr->ids), buf_free(&rr->lps), buf_free(&rr->alts);
}

int64_t runlog_insert(Db *db, RunRecord *rr, const Model *m, Err *e) {
    if (runlog_identify(rr, db, m, e)) return 0;
    int64_t id = db_run_insert(db, &rr->run, e);
    if (id > 0) rr->run.id = id;
    return id > 0 ? id : 0;
}
