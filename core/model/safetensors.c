// safetensors.c - mapping .safetensors files and validating their headers.
//
// Layout: u64 little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data;
// offsets count from the first byte after the header.
#include "model/safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fs.h"
#include "base/json.h"
#include "base/mem.h"

enum { ST_MAX_HEADER = 100 << 20, ST_MAX_DIMS = 4 };

struct StFile {
    char *path;
    const unsigned char *base; // whole file
    size_t size;
    bool mapped;
    WTensor *entries;
    int n;
};

typedef struct {
    const char *name;
    int size;
    int dt; // DType or -1 when qkv does not compute with it
} DtypeInfo;

static const DtypeInfo dtypes[] = {
    {"F32", 4, DT_F32}, {"F16", 2, DT_F16}, {"BF16", 2, DT_BF16}, {"F64", 8, -1},
    {"I64", 8, -1},     {"I32", 4, -1},     {"I16", 2, -1},       {"I8", 1, -1},
    {"U8", 1, -1},      {"U16", 2, -1},     {"U32", 4, -1},       {"U64", 8, -1},
    {"BOOL", 1, -1},    {"F8_E4M3", 1, -1}, {"F8_E5M2", 1, -1},
};

static const DtypeInfo *dtype_lookup(const char *s) {
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (!strcmp(dtypes[i].name, s)) return &dtypes[i];
    return NULL;
}

typedef struct {
    uint64_t begin, end;
    int idx;
} Span;

static int span_cmp(const void *a, const void *b) {
    const Span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

// Parses one entry; returns 0 or -1 with e naming the tensor.
static int parse_entry(StFile *f, const char *name, const Json *v, uint64_t data_len, const unsigned char *data,
                       WTensor *out, Err *e) {
    if (v->type != JSON_OBJ) return err_set(e, "tensor '%s': entry is not an object", name);
    const char *dts = json_str_or(v, "dtype", NULL);
    if (!dts) return err_set(e, "tensor '%s': missing dtype", name);
    const DtypeInfo *di = dtype_lookup(dts);
    if (!di) return err_set(e, "tensor '%s': unknown dtype '%.20s'", name, dts);
    const Json *shape = json_get(v, "shape");
    if (!shape || shape->type != JSON_ARR) return err_set(e, "tensor '%s': missing shape", name);
    if (shape->len > ST_MAX_DIMS)
        return err_set(e, "tensor '%s': %zu dimensions (at most %d supported)", name, shape->len, ST_MAX_DIMS);
    uint64_t count = 1;
    out->t.ndim = (int)shape->len;
    for (size_t i = 0; i < shape->len; i++) {
        long long d;
        if (!json_int_in(json_at(shape, i), 0, (long long)1 << 40, &d))
            return err_set(e, "tensor '%s': bad shape (dimension %zu is not a size)", name, i);
        out->t.shape[i] = d;
        if (d && count > UINT64_MAX / (uint64_t)d) return err_set(e, "tensor '%s': shape overflows", name);
        count *= (uint64_t)d;
    }
    const Json *offs = json_get(v, "data_offsets");
    long long b, en;
    // offsets beyond 2^53 cannot be exact JSON numbers, nor real files
    if (!offs || offs->type != JSON_ARR || offs->len != 2 || !json_int_in(json_at(offs, 0), 0, 1LL << 53, &b) ||
        !json_int_in(json_at(offs, 1), 0, 1LL << 53, &en))
        return err_set(e, "tensor '%s': bad data_offsets", name);
    if (b > en) return err_set(e, "tensor '%s': data_offsets [%lld, %lld] are reversed", name, b, en);
    if ((uint64_t)en > data_len)
        return err_set(e, "tensor '%s': data_offsets end %lld is past the end of the data (%llu bytes)", name, en,
                       (unsigned long long)data_len);
    if (count > UINT64_MAX / (uint64_t)di->size) return err_set(e, "tensor '%s': shape overflows", name);
    if ((uint64_t)(en - b) != count * (uint64_t)di->size)
        return err_set(e, "tensor '%s': %lld bytes of data for shape of %llu %s elements", name, en - b,
                       (unsigned long long)count, dts);
    // Data need not be aligned (files from old writers have unpadded headers): matrices are
    // read with unaligned loads, vectors are copied when unaligned (see model.c).
    const unsigned char *p = data + b;
    out->name = xstrdup(name);
    snprintf(out->dtype, sizeof out->dtype, "%s", dts);
    out->supported = di->dt >= 0;
    out->t.dt = di->dt >= 0 ? (DType)di->dt : DT_F32;
    out->t.n = (int64_t)count;
    out->t.data = p;
    out->nbytes = (size_t)(en - b);
    (void)f;
    return 0;
}

static StFile *st_parse(StFile *f, Err *e) {
    if (f->size < 8) {
        err_set(e, "'%s': not a safetensors file (%zu bytes, too short for a header)", f->path, f->size);
        goto fail;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->base[i];
    if (f->size > 8 && f->base[8] != '{') { // a text file, another format: no header follows its length
        err_set(e, "'%s': not a safetensors file (no JSON header after its first 8 bytes): a model is a folder with "
                   "config.json and model.safetensors, a .safetensors, a .gguf or a llama2.c .bin",
                f->path);
        goto fail;
    }
    if (n > f->size - 8) {
        err_set(e, "'%s': header length %llu is past the end of the file (%zu bytes): truncated or not safetensors",
                f->path, (unsigned long long)n, f->size);
        goto fail;
    }
    if (n > ST_MAX_HEADER || n < 2) {
        err_set(e, "'%s': implausible header length %llu", f->path, (unsigned long long)n);
        goto fail;
    }
    Err je = {0};
    Json *h = json_parse((const char *)f->base + 8, (size_t)n, &je);
    if (!h) {
        err_set(e, "'%s': bad header JSON: %s", f->path, je.msg);
        goto fail;
    }
    if (h->type != JSON_OBJ) {
        json_free(h);
        err_set(e, "'%s': header is not a JSON object", f->path);
        goto fail;
    }
    const unsigned char *data = f->base + 8 + n;
    uint64_t data_len = f->size - 8 - n;
    // one entry per key of the header already parsed: bookkeeping (mem.h rule 2)
    f->entries = xcalloc(h->len ? h->len : 1, sizeof *f->entries);
    Span *spans = xcalloc(h->len ? h->len : 1, sizeof *spans);
    for (size_t i = 0; i < h->len; i++) {
        if (!strcmp(h->keys[i], "__metadata__")) continue;
        if (strlen(h->keys[i]) != h->klens[i]) {
            err_set(e, "'%s': tensor name with a NUL byte", f->path);
            goto fail_h;
        }
        for (int k = 0; k < f->n; k++)
            if (!strcmp(f->entries[k].name, h->keys[i])) {
                err_set(e, "'%s': tensor '%s' appears twice", f->path, h->keys[i]);
                goto fail_h;
            }
        WTensor *en = &f->entries[f->n];
        if (parse_entry(f, h->keys[i], &h->items[i], data_len, data, en, e)) {
            err_prefix(e, "'%s'", f->path);
            goto fail_h;
        }
        spans[f->n].begin = (uint64_t)((const unsigned char *)en->t.data - data);
        spans[f->n].end = spans[f->n].begin + en->nbytes;
        spans[f->n].idx = f->n;
        f->n++;
        continue;
    fail_h:
        free(spans);
        json_free(h);
        goto fail;
    }
    // reject overlapping tensors (empty ones overlap nothing)
    qsort(spans, (size_t)f->n, sizeof *spans, span_cmp);
    int reach = -1; // the non-empty span reaching furthest so far
    for (int k = 0; k < f->n; k++) {
        if (spans[k].end == spans[k].begin) continue;
        if (reach >= 0 && spans[k].begin < spans[reach].end) {
            err_set(e, "'%s': tensors '%s' and '%s' overlap", f->path, f->entries[spans[reach].idx].name,
                    f->entries[spans[k].idx].name);
            free(spans);
            json_free(h);
            goto fail;
        }
        if (reach < 0 || spans[k].end > spans[reach].end) reach = k;
    }
    free(spans);
    json_free(h);
    return f;
fail:
    st_close(f);
    return NULL;
}

StFile *st_open(const char *path, Err *e) {
    const unsigned char *base;
    size_t size;
    if (fs_map(path, &base, &size, e)) return NULL;
    StFile *f = xcalloc(1, sizeof *f); // bookkeeping (mem.h rule 2)
    f->path = xstrdup(path);
    f->base = base;
    f->size = size;
    f->mapped = true;
    return st_parse(f, e);
}

StFile *st_open_mem(const void *data, size_t len, const char *name, Err *e) {
    StFile *f = xcalloc(1, sizeof *f);
    f->path = xstrdup(name);
    f->base = data;
    f->size = len;
    return st_parse(f, e);
}

void st_close(StFile *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->entries[i].name);
    free(f->entries);
    if (f->mapped) fs_unmap(f->base, f->size);
    free(f->path);
    free(f);
}

int st_count(const StFile *f) { return f->n; }
const WTensor *st_at(const StFile *f, int i) { return i >= 0 && i < f->n ? &f->entries[i] : NULL; }
const char *st_path(const StFile *f) { return f->path; }
int64_t st_size(const StFile *f) { return (int64_t)f->size; }

static void close_handle(void *f) { st_close(f); }

// Register every tensor of an opened file (which ws then owns).
static int add_to_source(WSrc *ws, StFile *f, Err *e) {
    if (!f) return -1;
    int file = wsrc_add_file(ws, f->path, (int64_t)f->size, f, close_handle, e);
    for (int i = 0; i < f->n; i++)
        if (wsrc_add_tensor(ws, file, &f->entries[i], e)) return -1;
    return 0;
}

int wsrc_add_safetensors(WSrc *ws, const char *path, Err *e) { return add_to_source(ws, st_open(path, e), e); }

int wsrc_add_safetensors_mem(WSrc *ws, const void *data, size_t len, const char *name, Err *e) {
    return add_to_source(ws, st_open_mem(data, len, name, e), e);
}
