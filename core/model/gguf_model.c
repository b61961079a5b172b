// gguf_model.c - GGUF checkpoints as models: the element types qkv reads from them, the
// family and configuration from their metadata, their tensors registered as stored (mapped,
// never converted). ggml lists dims innermost first: a [in, out] ggml matrix is qkv's
// row-major [out, in].
#include "model/gguf_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/gguf.h"
#include "base/mem.h"
#include "model/wsrc.h"

// The open file and the tensors registered from it.
typedef struct GFile {
    Gguf *g;
    WTensor *t;
    int n;
} GFile;

static void gfile_close(void *h) {
    GFile *f = h;
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    gguf_close(f->g);
    free(f);
}

// Register every tensor of g in ws (which then owns g). Tensors of types qkv does not compute
// with are registered unsupported: binding one names its type.
static int add_tensors(WSrc *ws, Gguf *g, Err *e) {
    GFile *f = xcalloc(1, sizeof *f);
    f->g = g;
    int n = gguf_n_tensors(g);
    f->t = xcalloc((size_t)(n ? n : 1), sizeof *f->t);
    int file = wsrc_add_file(ws, gguf_path(g), gguf_file_size(g), f, gfile_close, e);
    for (int i = 0; i < n; i++) {
        const GgufTensor *gt = gguf_tensor(g, i);
        WTensor *t = &f->t[f->n++];
        int dt = dtype_from_ggml(gt->type);
        t->name = xstrdup(gt->name);
        t->t.ndim = gt->ndim;
        t->t.n = 1;
        for (int k = 0; k < gt->ndim; k++) {
            t->t.shape[k] = gt->ne[gt->ndim - 1 - k];
            t->t.n *= gt->ne[k];
        }
        t->t.dt = dt >= 0 ? (DType)dt : DT_F32;
        t->t.data = gt->data;
        t->nbytes = (size_t)gt->nbytes;
        snprintf(t->dtype, sizeof t->dtype, "%s", ggml_type(gt->type)->name);
        t->supported = dt >= 0;
        if (wsrc_add_tensor(ws, file, t, e)) return -1;
    }
    return 0;
}

int gguf_model_load(Model *m, const char *path, const TensorMap **map, const struct Gguf **gp, Err *e) {
    Gguf *g = gguf_open(path, e);
    if (!g) return -1;
    if (add_tensors(m->src, g, e)) return -1; // m->src owns g from here
    const char *arch;
    size_t al;
    int r = gguf_get_str(g, "general.architecture", &arch, &al, e);
    if (r < 0) return -1;
    if (!r) return err_set(e, "'%s': missing key 'general.architecture'", path);
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(al < 63 ? al : 63), arch);
    const Family *f = memchr(arch, 0, al) ? NULL : family_find_gguf(name);
    if (!f) {
        Buf known = {0};
        for (int i = 0; family_at(i); i++) {
            const GgufFamily *gf = family_at(i)->gguf;
            if (gf && !strstr(known.data ? known.data : "", gf->arch))
                buf_printf(&known, "%s%s", known.len ? ", " : "", gf->arch);
        }
        err_set(e, "'%s': general.architecture '%s' is not supported (%s are)", path, name, known.data);
        buf_free(&known);
        return -1;
    }
    m->family = f;
    if (config_read_gguf(f, g, &m->cfg, e)) return -1;
    // how llama.cpp pools embeddings (sentence-transformers conversions): 1 mean, 2 cls, 3 last
    char k[96];
    long long pool;
    snprintf(k, sizeof k, "%s.pooling_type", name);
    if ((r = gguf_get_int(g, k, 0, 1000, &pool, e)) < 0) return -1;
    if (r && pool >= 1 && pool <= 3) snprintf(m->st_pool, sizeof m->st_pool, "%s", pool == 1 ? "mean" : pool == 2 ? "cls" : "last");
    *map = f->gguf->names;
    *gp = g;
    return 0;
}
