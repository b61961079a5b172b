// golden_file.h - golden files of the C tests: the folder tests/SUB/golden (from QKV_SRCDIR,
// else beside the test's source), reading one, and whether QKV_UPDATE_GOLDEN=1 asks to rewrite
// them instead of comparing.
#pragma once
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

// tests/SUB/golden; file is the including test's __FILE__ (for the fallback beside it).
static const char *golden_dir_of(const char *sub, const char *file) {
    static char dir[4096];
    const char *src = getenv("QKV_SRCDIR");
    if (src && *src) {
        snprintf(dir, sizeof dir, "%s/tests/%s/golden", src, sub);
    } else {
        snprintf(dir, sizeof dir, "%s", file);
        char *slash = strrchr(dir, '/');
        snprintf(slash ? slash + 1 : dir, sizeof dir - (size_t)(slash ? slash + 1 - dir : 0), "golden");
    }
    return dir;
}

// The whole file (malloc'd, NUL-terminated), or NULL when it cannot be read.
static char *golden_read(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    Buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_put(&b, chunk, n);
    fclose(f);
    return b.data ? buf_take(&b) : calloc(1, 1);
}

static bool golden_updating(void) {
    const char *upd = getenv("QKV_UPDATE_GOLDEN");
    return upd && !strcmp(upd, "1");
}
