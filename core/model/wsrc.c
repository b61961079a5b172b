// wsrc.c - the registry of named tensors behind a model, over the files that hold them.
#include "model/wsrc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/mem.h"
#include "base/strmap.h"

typedef struct WFile {
    char *path;
    int64_t size;
    dev_t dev; // the file the path named when it was opened (0, 0: not known)
    ino_t ino;
    void *handle;
    void (*close_fn)(void *);
} WFile;

struct WSrc {
    WFile *files;
    int n_files;
    const WTensor **t;
    int *file_of;
    int n, cap;
    StrMap by_name; // name -> index into t
};

WSrc *wsrc_new(void) { return xcalloc(1, sizeof(WSrc)); }

void wsrc_free(WSrc *ws) {
    if (!ws) return;
    for (int i = 0; i < ws->n_files; i++) {
        if (ws->files[i].close_fn) ws->files[i].close_fn(ws->files[i].handle);
        free(ws->files[i].path);
    }
    free(ws->files);
    free(ws->t);
    free(ws->file_of);
    strmap_free(&ws->by_name);
    free(ws);
}

int wsrc_add_file(WSrc *ws, const char *path, int64_t size, void *handle, void (*close_fn)(void *), Err *e) {
    (void)e;
    ws->files = xrealloc(ws->files, sizeof *ws->files * (size_t)(ws->n_files + 1));
    struct stat st;
    bool known = stat(path, &st) == 0;
    ws->files[ws->n_files] = (WFile){xstrdup(path), size, known ? st.st_dev : 0, known ? st.st_ino : 0, handle, close_fn};
    return ws->n_files++;
}

int wsrc_check(const WSrc *ws, Err *e) {
    for (int i = 0; ws && i < ws->n_files; i++) {
        const WFile *f = &ws->files[i];
        struct stat st;
        // a new file at the path (a rename over it, a delete) leaves the mapped one as it was;
        // the same file cut shorter takes the mapped pages past its end away
        if (!(f->dev || f->ino) || stat(f->path, &st) != 0 || st.st_dev != f->dev || st.st_ino != f->ino) continue;
        if ((int64_t)st.st_size < f->size)
            return err_set(e, "'%s' is shorter than when it was loaded (%lld of %lld bytes): it was cut or is being "
                              "rewritten; load it again when it is whole",
                           f->path, (long long)st.st_size, (long long)f->size);
    }
    return 0;
}

int wsrc_add_tensor(WSrc *ws, int file, const WTensor *t, Err *e) {
    int prev = strmap_get(&ws->by_name, t->name, strlen(t->name));
    if (prev >= 0)
        return err_set(e, "tensor '%s' is in both '%s' and '%s'", t->name, ws->files[ws->file_of[prev]].path,
                       ws->files[file].path);
    if (ws->n == ws->cap) {
        ws->cap = ws->cap ? 2 * ws->cap : 64;
        ws->t = xrealloc(ws->t, sizeof *ws->t * (size_t)ws->cap);
        ws->file_of = xrealloc(ws->file_of, sizeof *ws->file_of * (size_t)ws->cap);
    }
    ws->t[ws->n] = t;
    ws->file_of[ws->n] = file;
    strmap_put(&ws->by_name, t->name, strlen(t->name), ws->n);
    ws->n++;
    return 0;
}

const WTensor *wsrc_find(const WSrc *ws, const char *name) {
    int i = strmap_get(&ws->by_name, name, strlen(name));
    return i >= 0 ? ws->t[i] : NULL;
}

int wsrc_count(const WSrc *ws) { return ws->n; }
const WTensor *wsrc_at(const WSrc *ws, int i) { return i >= 0 && i < ws->n ? ws->t[i] : NULL; }
int wsrc_file_of(const WSrc *ws, int i) { return i >= 0 && i < ws->n ? ws->file_of[i] : -1; }
int wsrc_n_files(const WSrc *ws) { return ws->n_files; }
const char *wsrc_file_path(const WSrc *ws, int file) { return file >= 0 && file < ws->n_files ? ws->files[file].path : NULL; }

int64_t wsrc_bytes(const WSrc *ws) {
    int64_t n = 0;
    for (int i = 0; i < ws->n_files; i++) n += ws->files[i].size;
    return n;
}

int wtensor_check_type(const WTensor *t, Err *e) {
    if (t->supported) return 0;
    char known[96] = "";
    for (int d = 0; d < DT_COUNT; d++) // the types files hold (not qkv's own in-memory ones)
        if (dtype_ggml((DType)d) >= 0)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", d ? ", " : "", dtype_name((DType)d));
    return err_set(e, "tensor '%s': type %s is not supported (%s are)", t->name, t->dtype, known);
}
