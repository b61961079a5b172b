// dbtest.h - helpers shared by the db/ tests: a scratch directory, whole-file reads and
// a fully populated sample run.
#pragma once
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../check.h"
#include "base/buf.h"
#include "db.h"

// The prompt every test stores: quotes, newlines, tabs, control bytes, DEL, multi-byte
// UTF-8 (accents, CJK, emoji, BOM) and an SQL injection attempt. NUL-free, valid UTF-8.
static const char NASTY[] = "He said \"hi\" and 'bye'\n\tline 2\r\n\x01\x02\x1b[31m\x7f caf\xc3\xa9 "
                            "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xef\xbb\xbf \\n not-a-newline "
                            "'); DROP TABLE runs;-- \"; DELETE FROM rankings; --";
// Bytes that are not UTF-8 at all (stored verbatim; JSON shows them as U+FFFD).
static const char BINARY[] = "bin\xff\xfe\x80\xc3(\xed\xa0\x80" "end";

static char dbt_dir[256];

static int dbt_rm(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    chmod(p, 0700);
    return remove(p);
}

static void dbt_cleanup(void) {
    if (dbt_dir[0] && !getenv("QKV_KEEP_TMP")) nftw(dbt_dir, dbt_rm, 16, FTW_DEPTH | FTW_PHYS);
}

// Create the scratch directory (removed at exit) and return it.
static const char *dbt_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    snprintf(dbt_dir, sizeof dbt_dir, "%s/qkv-dbtest-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dbt_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    atexit(dbt_cleanup);
    return dbt_dir;
}

// dir/name in a static rotating buffer.
static inline const char *dbt_path(const char *name) {
    static char bufs[8][512];
    static int i;
    char *p = bufs[i++ & 7];
    snprintf(p, 512, "%s/%s", dbt_dir, name);
    return p;
}

// The whole file in b (cleared first); false when it cannot be read.
static inline bool dbt_read(const char *path, Buf *b) {
    buf_clear(b);
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_put(b, chunk, n);
    fclose(f);
    if (!b->data) buf_reserve(b, 0);
    return true;
}

static inline void dbt_write(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

static inline bool dbt_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

// A run with every field set; i varies the numbers and the output.
static inline void dbt_run(DbRun *r, int i, const char *prompt, char *out, size_t outcap) {
    memset(r, 0, sizeof *r);
    snprintf(out, outcap, "completion %d with \"quotes\"\nand a second line", i);
    r->kind = "generate";
    r->annotator = "ann";
    r->n_threads = 2;
    r->model_path = "/models/gpt2";
    r->model_arch = "gpt2";
    r->model_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    r->prompt = prompt;
    r->prompt_len = strlen(prompt);
    r->template_name = "qa";
    r->mode = "few-shot";
    r->exemplars = "[{\"q\":\"2+2\",\"a\":\"4\"}]";
    r->temperature = 0.7;
    r->top_k = 40;
    r->top_p = 0.95;
    r->seed = 18446744073709551615ull - (uint64_t)i; // above INT64_MAX on purpose
    r->max_tokens = 16;
    r->n_alts = 2;
    r->stop_at_eos = true;
    r->truncate = false;
    r->prompt_ids = "[1,2,3]";
    r->n_truncated = 0;
    r->output = out;
    r->output_len = strlen(out);
    r->ids = "[5,6]";
    r->logprobs = "[-0.5,-1.25]";
    r->alts = "[[[5,-0.5],[7,-2]],[[6,-1.25],[8,-3]]]";
    r->prefill_s = 0.125;
    r->decode_s = 0.5;
    r->stop_reason = "length";
}
