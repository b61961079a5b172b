// golden.h - comparing a cell grid with a golden screen in tests/views/golden/ (the text
// form of cellgrid_dump). QKV_UPDATE_GOLDEN=1 rewrites the file instead; a mismatch prints
// the first differing line, expected and got, and counts a failure (check.h).
#pragma once
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "../golden_file.h"
#include "cellgrid.h"

static const char *golden_dir(void) { return golden_dir_of("views", __FILE__); }

// Compare g with golden/<file>.txt.
static void golden_check(const char *file, const CellGrid *g) {
    Buf got = {0};
    cellgrid_dump(g, &got);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.txt", golden_dir(), file);
    if (golden_updating()) {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(got.data, 1, got.len, f) != got.len) {
            fprintf(stderr, "cannot write '%s': %s\n", path, strerror(errno));
            check_failures++;
        } else {
            fprintf(stderr, "updated %s\n", path);
        }
        if (f) fclose(f);
        buf_free(&got);
        return;
    }
    char *want = golden_read(path);
    if (!want) {
        fprintf(stderr, "%s: missing golden file '%s' (create it with QKV_UPDATE_GOLDEN=1)\n", file, path);
        check_failures++;
    } else if (strcmp(want, got.data)) {
        const char *a = want, *b = got.data;
        for (int line = 1;; line++) {
            const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
            size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
            if (la != lb || memcmp(a, b, la) || !ea || !eb) {
                fprintf(stderr, "%s: golden screen differs at line %d\n  expected: %.*s\n  got:      %.*s\n", file,
                        line, (int)la, a, (int)lb, b);
                break;
            }
            a = ea + 1, b = eb + 1;
        }
        check_failures++;
    }
    free(want);
    buf_free(&got);
}
