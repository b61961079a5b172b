// gguf_write.c - writing GGUF files (version 3, little-endian, alignment 32): the key/values
// are serialized as they are added, the tensor infos get offsets in the order added, and the
// data is streamed by the caller into an atomically replaced file.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/gguf.h"
#include "base/mem.h"

typedef struct WTensorInfo {
    char *name;
    int ndim;
    int64_t ne[GGUF_MAX_DIMS];
    uint32_t type;
    uint64_t nbytes, offset;
} WTensorInfo;

struct GgufW {
    Buf kv; // serialized key/values
    uint64_t n_kv;
    WTensorInfo *t;
    int n_t;
};

GgufW *gguf_w_new(void) { return xcalloc(1, sizeof(GgufW)); }

void gguf_w_free(GgufW *w) {
    if (!w) return;
    buf_free(&w->kv);
    for (int i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t);
    free(w);
}

static void put_le(Buf *b, uint64_t v, int n) {
    unsigned char p[8];
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
    buf_put(b, p, (size_t)n);
}

static void put_str(Buf *b, const char *s, size_t len) {
    put_le(b, len, 8);
    buf_put(b, s, len);
}

static void key(GgufW *w, const char *k, GgufType t) {
    put_str(&w->kv, k, strlen(k));
    put_le(&w->kv, (uint64_t)t, 4);
    w->n_kv++;
}

static uint32_t f32_bits(float v) {
    uint32_t b;
    memcpy(&b, &v, 4);
    return b;
}

void gguf_w_str(GgufW *w, const char *k, const char *s, size_t len) {
    key(w, k, GGUF_STR);
    put_str(&w->kv, s, len);
}

void gguf_w_u32(GgufW *w, const char *k, uint32_t v) {
    key(w, k, GGUF_U32);
    put_le(&w->kv, v, 4);
}

void gguf_w_i32(GgufW *w, const char *k, int32_t v) {
    key(w, k, GGUF_I32);
    put_le(&w->kv, (uint32_t)v, 4);
}

void gguf_w_f32(GgufW *w, const char *k, float v) {
    key(w, k, GGUF_F32);
    put_le(&w->kv, f32_bits(v), 4);
}

void gguf_w_bool(GgufW *w, const char *k, bool v) {
    key(w, k, GGUF_BOOL);
    put_le(&w->kv, v ? 1 : 0, 1);
}

static void arr_head(GgufW *w, const char *k, GgufType elem, uint64_t n) {
    key(w, k, GGUF_ARR);
    put_le(&w->kv, (uint64_t)elem, 4);
    put_le(&w->kv, n, 8);
}

void gguf_w_arr_str(GgufW *w, const char *k, uint64_t n, const char *const *s, const size_t *len) {
    arr_head(w, k, GGUF_STR, n);
    for (uint64_t i = 0; i < n; i++) put_str(&w->kv, s[i], len[i]);
}

void gguf_w_arr_i32(GgufW *w, const char *k, uint64_t n, const int32_t *v) {
    arr_head(w, k, GGUF_I32, n);
    for (uint64_t i = 0; i < n; i++) put_le(&w->kv, (uint32_t)v[i], 4);
}

void gguf_w_arr_f32(GgufW *w, const char *k, uint64_t n, const float *v) {
    arr_head(w, k, GGUF_F32, n);
    for (uint64_t i = 0; i < n; i++) put_le(&w->kv, f32_bits(v[i]), 4);
}

void gguf_w_copy(GgufW *w, const Gguf *g, int i) {
    size_t len;
    const void *v = gguf_kv_bytes(g, i, &len);
    key(w, gguf_key(g, i), gguf_kv_type(g, i));
    buf_put(&w->kv, v, len);
}

int gguf_w_tensor(GgufW *w, const char *name, int ndim, const int64_t *ne, uint32_t type) {
    w->t = xrealloc(w->t, sizeof *w->t * (size_t)(w->n_t + 1));
    WTensorInfo *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->ndim = ndim;
    t->type = type;
    uint64_t count = 1;
    for (int k = 0; k < GGUF_MAX_DIMS; k++) t->ne[k] = k < ndim ? ne[k] : 1;
    for (int k = 0; k < ndim; k++) count *= (uint64_t)ne[k];
    const GgmlType *ty = ggml_type(type);
    t->nbytes = ty ? count / (uint64_t)ty->block * (uint64_t)ty->block_bytes : 0;
    return w->n_t++;
}

uint64_t gguf_w_tensor_bytes(const GgufW *w, int i) { return i >= 0 && i < w->n_t ? w->t[i].nbytes : 0; }

static int pad(FILE *f, uint64_t at, Err *e, const char *path) {
    static const char zeros[GGUF_DEFAULT_ALIGNMENT] = {0};
    uint64_t n = (GGUF_DEFAULT_ALIGNMENT - at % GGUF_DEFAULT_ALIGNMENT) % GGUF_DEFAULT_ALIGNMENT;
    if (n && fwrite(zeros, 1, (size_t)n, f) != n)
        return err_set(e, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
    return 0;
}

int gguf_w_write(GgufW *w, const char *path, GgufDataFn data, void *user, Err *e) {
    Buf head = {0};
    buf_put(&head, "GGUF", 4);
    put_le(&head, 3, 4);
    put_le(&head, (uint64_t)w->n_t, 8);
    put_le(&head, w->n_kv, 8);
    buf_put(&head, w->kv.data, w->kv.len);
    uint64_t off = 0;
    for (int i = 0; i < w->n_t; i++) {
        WTensorInfo *t = &w->t[i];
        t->offset = off;
        put_str(&head, t->name, strlen(t->name));
        put_le(&head, (uint64_t)t->ndim, 4);
        for (int k = 0; k < t->ndim; k++) put_le(&head, (uint64_t)t->ne[k], 8);
        put_le(&head, t->type, 4);
        put_le(&head, off, 8);
        off += (t->nbytes + GGUF_DEFAULT_ALIGNMENT - 1) / GGUF_DEFAULT_ALIGNMENT * GGUF_DEFAULT_ALIGNMENT;
    }
    AtomicFile af;
    if (af_open(&af, path, e)) {
        buf_free(&head);
        return -1;
    }
    int rc = 0;
    errno = 0;
    if (fwrite(head.data, 1, head.len, af.f) != head.len) rc = err_set(e, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
    if (!rc && w->n_t) rc = pad(af.f, head.len, e, path);
    for (int i = 0; i < w->n_t && !rc; i++) {
        long long before = ftello(af.f);
        rc = data(user, i, af.f, e);
        long long after = ftello(af.f);
        if (!rc && (before < 0 || after - before != (long long)w->t[i].nbytes))
            rc = err_set(e, "cannot write '%s': tensor '%s' wrote %lld bytes, expected %llu", path, w->t[i].name,
                         after - before, (unsigned long long)w->t[i].nbytes);
        if (!rc) rc = pad(af.f, w->t[i].nbytes, e, path); // after the last too, as gguf-py does
    }
    buf_free(&head);
    if (rc) {
        af_abort(&af);
        return -1;
    }
    return af_commit(&af, e);
}
