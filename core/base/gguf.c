// gguf.c - reading GGUF files: the header, key/values and tensor infos of a mapped file,
// validated against its size before anything points into it (see gguf.h for the layout).
#include "base/gguf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/fs.h"
#include "base/mem.h"
#include "base/strmap.h"

// ggml's element types by id (ggml.h), as gguf-py's GGML_QUANT_SIZES gives their blocks.
static const GgmlType ggml_types[] = {
    [0] = {"F32", 1, 4},         [1] = {"F16", 1, 2},        [2] = {"Q4_0", 32, 18},      [3] = {"Q4_1", 32, 20},
    [6] = {"Q5_0", 32, 22},      [7] = {"Q5_1", 32, 24},     [8] = {"Q8_0", 32, 34},      [9] = {"Q8_1", 32, 40},
    [10] = {"Q2_K", 256, 84},    [11] = {"Q3_K", 256, 110},  [12] = {"Q4_K", 256, 144},   [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},   [15] = {"Q8_K", 256, 292},  [16] = {"IQ2_XXS", 256, 66}, [17] = {"IQ2_XS", 256, 74},
    [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},  [20] = {"IQ4_NL", 32, 18},   [21] = {"IQ3_S", 256, 110},
    [22] = {"IQ2_S", 256, 82},   [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},        [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},        [27] = {"I64", 1, 8},       [28] = {"F64", 1, 8},        [29] = {"IQ1_M", 256, 56},
    [30] = {"BF16", 1, 2},       [34] = {"TQ1_0", 256, 54},  [35] = {"TQ2_0", 256, 66},   [39] = {"MXFP4", 32, 17},
};

const GgmlType *ggml_type(uint32_t id) {
    return id < sizeof ggml_types / sizeof *ggml_types && ggml_types[id].name ? &ggml_types[id] : NULL;
}

// Bytes of one element of each value type (strings and arrays: 0, they vary).
static const int type_size[GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *gguf_type_name(GgufType t) {
    static const char *const names[GGUF_TYPE_COUNT] = {"u8",     "i8",    "u16", "i16", "u32", "i32", "f32",
                                                       "bool",   "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < GGUF_TYPE_COUNT ? names[t] : "?";
}

typedef struct Kv {
    char *key;        // NUL-terminated copy
    GgufType type;
    uint64_t at;      // file offset of the value (arrays: of the first element)
    uint64_t begin, end; // file offsets of the value as stored (arrays: from their header)
    GgufType elem;    // arrays
    uint64_t n;       // arrays: count
    uint64_t *str_at; // arrays of strings: file offset of each element
} Kv;

struct Gguf {
    char *path;
    const unsigned char *base;
    size_t size;
    bool mapped;
    uint32_t version, alignment;
    Kv *kv;
    int n_kv;
    StrMap keys;
    GgufTensor *t;
    int n_t;
    StrMap names;
};

// ---- little-endian reading with bounds ----

typedef struct Cur {
    const unsigned char *p;
    size_t size, at;
} Cur;

static bool has(const Cur *c, uint64_t n) { return c->at <= c->size && n <= c->size - c->at; }

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

// Callers check has() first.
static uint32_t rd32(Cur *c) {
    uint32_t v = (uint32_t)le(c->p + c->at, 4);
    c->at += 4;
    return v;
}

static uint64_t rd64(Cur *c) {
    uint64_t v = le(c->p + c->at, 8);
    c->at += 8;
    return v;
}

// A string at the cursor: its bytes' offset and length. what names it for the message.
static int rd_str(const Gguf *g, Cur *c, uint64_t *off, uint64_t *len, const char *what, Err *e) {
    if (!has(c, 8))
        return err_set(e, "'%s': %s: the file ends inside its length (truncated at byte %zu)", g->path, what, c->size);
    *len = rd64(c);
    if (!has(c, *len))
        return err_set(e, "'%s': %s: a string of %llu bytes runs past the end of the file (%zu bytes)", g->path, what,
                       (unsigned long long)*len, c->size);
    *off = c->at;
    c->at += *len;
    return 0;
}

// ---- parsing ----

static void gguf_free(Gguf *g) {
    if (!g) return;
    for (int i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].str_at);
    }
    free(g->kv);
    strmap_free(&g->keys);
    for (int i = 0; i < g->n_t; i++) free((char *)g->t[i].name);
    free(g->t);
    strmap_free(&g->names);
    if (g->mapped) fs_unmap(g->base, g->size);
    free(g->path);
    free(g);
}

void gguf_close(Gguf *g) { gguf_free(g); }

// A copy of len bytes at off as a NUL-terminated name; NULL when they hold a NUL.
static char *name_at(const Gguf *g, uint64_t off, uint64_t len) {
    if (memchr(g->base + off, 0, (size_t)len)) return NULL;
    return xstrndup((const char *)g->base + off, (size_t)len);
}

// The value of kv (type already read) at the cursor.
static int parse_value(Gguf *g, Cur *c, Kv *kv, Err *e) {
    kv->at = c->at;
    if (kv->type == GGUF_STR) {
        uint64_t off, len;
        char what[160];
        snprintf(what, sizeof what, "key '%.100s'", kv->key);
        return rd_str(g, c, &off, &len, what, e);
    }
    if (kv->type != GGUF_ARR) {
        if (!has(c, (uint64_t)type_size[kv->type]))
            return err_set(e, "'%s': key '%.100s': its %s value runs past the end of the file", g->path, kv->key,
                           gguf_type_name(kv->type));
        c->at += (size_t)type_size[kv->type];
        return 0;
    }
    if (!has(c, 12)) return err_set(e, "'%s': key '%.100s': the file ends inside an array header", g->path, kv->key);
    uint32_t et = rd32(c);
    kv->n = rd64(c);
    if (et >= GGUF_TYPE_COUNT)
        return err_set(e, "'%s': key '%.100s': array element type %u is not a GGUF type", g->path, kv->key, et);
    if (et == GGUF_ARR) return err_set(e, "'%s': key '%.100s': arrays of arrays are not supported", g->path, kv->key);
    kv->elem = (GgufType)et;
    kv->at = c->at;
    uint64_t room = c->size - c->at;
    if (et != GGUF_STR) {
        if (kv->n > room / (uint64_t)type_size[et])
            return err_set(e, "'%s': key '%.100s': an array of %llu %s runs past the end of the file", g->path, kv->key,
                           (unsigned long long)kv->n, gguf_type_name(kv->elem));
        c->at += (size_t)(kv->n * (uint64_t)type_size[et]);
        return 0;
    }
    // every string takes at least its 8-byte length: n is bounded by the file before allocating
    if (kv->n > room / 8)
        return err_set(e, "'%s': key '%.100s': an array of %llu strings runs past the end of the file", g->path,
                       kv->key, (unsigned long long)kv->n);
    kv->str_at = malloc((size_t)(kv->n ? kv->n : 1) * sizeof *kv->str_at);
    if (!kv->str_at) return err_set(e, "'%s': out of memory for key '%.100s'", g->path, kv->key);
    for (uint64_t i = 0; i < kv->n; i++) {
        uint64_t off, len;
        char what[160];
        snprintf(what, sizeof what, "key '%.100s' element %llu", kv->key, (unsigned long long)i);
        kv->str_at[i] = c->at;
        if (rd_str(g, c, &off, &len, what, e)) return -1;
    }
    return 0;
}

static int parse_kvs(Gguf *g, Cur *c, uint64_t n, Err *e) {
    g->kv = calloc((size_t)(n ? n : 1), sizeof *g->kv);
    if (!g->kv) return err_set(e, "'%s': out of memory for %llu key/values", g->path, (unsigned long long)n);
    strmap_init(&g->keys, (size_t)n);
    for (uint64_t i = 0; i < n; i++) {
        Kv *kv = &g->kv[g->n_kv];
        uint64_t off, len;
        char what[64];
        snprintf(what, sizeof what, "key/value %llu", (unsigned long long)i);
        if (rd_str(g, c, &off, &len, what, e)) return -1;
        if (!(kv->key = name_at(g, off, len)))
            return err_set(e, "'%s': key/value %llu: the key holds a NUL byte", g->path, (unsigned long long)i);
        g->n_kv++;
        if (strmap_put(&g->keys, kv->key, strlen(kv->key), (int)i) >= 0)
            return err_set(e, "'%s': key '%.100s' appears twice", g->path, kv->key);
        if (!has(c, 4)) return err_set(e, "'%s': key '%.100s': the file ends before its value type", g->path, kv->key);
        uint32_t t = rd32(c);
        if (t >= GGUF_TYPE_COUNT)
            return err_set(e, "'%s': key '%.100s': value type %u is not a GGUF type (0 to %d are)", g->path, kv->key, t,
                           GGUF_TYPE_COUNT - 1);
        kv->type = (GgufType)t;
        kv->begin = c->at;
        if (parse_value(g, c, kv, e)) return -1;
        kv->end = c->at;
    }
    return 0;
}

typedef struct Span {
    uint64_t begin, end;
    int idx;
} Span;

static int span_cmp(const void *a, const void *b) {
    const Span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static int parse_tensor(Gguf *g, Cur *c, uint64_t i, GgufTensor *t, Err *e) {
    uint64_t off, len;
    char what[64];
    snprintf(what, sizeof what, "tensor %llu", (unsigned long long)i);
    if (rd_str(g, c, &off, &len, what, e)) return -1;
    char *name = name_at(g, off, len);
    if (!name) return err_set(e, "'%s': tensor %llu: its name holds a NUL byte", g->path, (unsigned long long)i);
    t->name = name;
    if (!has(c, 4)) return err_set(e, "'%s': tensor '%.100s': the file ends inside its info", g->path, name);
    uint32_t nd = rd32(c);
    if (nd < 1 || nd > GGUF_MAX_DIMS)
        return err_set(e, "'%s': tensor '%.100s': %u dimensions (1 to %d are allowed)", g->path, name, nd, GGUF_MAX_DIMS);
    t->ndim = (int)nd;
    if (!has(c, 8 * (uint64_t)nd + 12)) return err_set(e, "'%s': tensor '%.100s': the file ends inside its info", g->path, name);
    uint64_t count = 1;
    bool over = false;
    for (int k = 0; k < GGUF_MAX_DIMS; k++) t->ne[k] = 1;
    for (uint32_t k = 0; k < nd; k++) {
        uint64_t d = rd64(c);
        if (d > (uint64_t)1 << 40)
            return err_set(e, "'%s': tensor '%.100s': dimension %u is %llu (absurd)", g->path, name, k,
                           (unsigned long long)d);
        t->ne[k] = (int64_t)d;
        if (d && count > UINT64_MAX / d) over = true;
        count *= d;
    }
    t->type = rd32(c);
    t->offset = rd64(c);
    const GgmlType *ty = ggml_type(t->type);
    if (!ty) return err_set(e, "'%s': tensor '%.100s': type %u is not a ggml type", g->path, name, t->type);
    if (over || count > ((uint64_t)1 << 50)) return err_set(e, "'%s': tensor '%.100s': its shape overflows", g->path, name);
    if (t->ne[0] % ty->block)
        return err_set(e, "'%s': tensor '%.100s': row length %lld is not a multiple of the %s block (%d)", g->path, name,
                       (long long)t->ne[0], ty->name, ty->block);
    t->nbytes = count / (uint64_t)ty->block * (uint64_t)ty->block_bytes;
    return 0;
}

static int parse(Gguf *g, Err *e) {
    Cur c = {g->base, g->size, 0};
    if (g->size < 4 || memcmp(g->base, "GGUF", 4)) {
        char m[20] = "";
        for (size_t i = 0; i < 4 && i < g->size; i++)
            snprintf(m + strlen(m), sizeof m - strlen(m), g->base[i] >= 0x20 && g->base[i] < 0x7f ? "%c" : "\\x%02x",
                     g->base[i]);
        return err_set(e, "'%s': not a GGUF file (bad magic '%s')", g->path, m);
    }
    c.at = 4;
    if (!has(&c, 20)) return err_set(e, "'%s': GGUF header truncated (%zu bytes)", g->path, g->size);
    g->version = rd32(&c);
    if (g->version != 2 && g->version != 3) {
        // a big-endian file reads as a huge version
        if (g->version > 0xffff)
            return err_set(e, "'%s': GGUF version %u is not supported (big-endian file? 2 and 3 little-endian are)",
                           g->path, g->version);
        return err_set(e, "'%s': GGUF version %u is not supported (2 and 3 are)", g->path, g->version);
    }
    uint64_t n_t = rd64(&c), n_kv = rd64(&c);
    uint64_t room = g->size - c.at;
    // each key/value takes at least 8 + 4 bytes, each tensor info 8 + 4 + 8 + 4 + 8
    if (n_kv > room / 12)
        return err_set(e, "'%s': %llu key/values cannot fit in a file of %zu bytes (truncated or corrupt)", g->path, (unsigned long long)n_kv,
                       g->size);
    if (n_t > room / 32)
        return err_set(e, "'%s': %llu tensors cannot fit in a file of %zu bytes (truncated or corrupt)", g->path, (unsigned long long)n_t,
                       g->size);
    if (parse_kvs(g, &c, n_kv, e)) return -1;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int ai = gguf_find(g, "general.alignment");
    if (ai >= 0) {
        const Kv *kv = &g->kv[ai];
        uint32_t a = kv->type == GGUF_U32 ? (uint32_t)le(g->base + kv->at, 4) : 0;
        if (kv->type != GGUF_U32 || a == 0 || (a & (a - 1)))
            return err_set(e, "'%s': general.alignment must be a u32 power of two (it is %s %llu)", g->path,
                           gguf_type_name(kv->type), kv->type == GGUF_U32 ? (unsigned long long)a : 0ULL);
        g->alignment = a;
    }
    g->t = calloc((size_t)(n_t ? n_t : 1), sizeof *g->t);
    if (!g->t) return err_set(e, "'%s': out of memory for %llu tensors", g->path, (unsigned long long)n_t);
    strmap_init(&g->names, (size_t)n_t);
    for (uint64_t i = 0; i < n_t; i++) {
        GgufTensor *t = &g->t[g->n_t];
        int rc = parse_tensor(g, &c, i, t, e);
        if (t->name) g->n_t++;
        if (rc) return -1;
        if (strmap_put(&g->names, t->name, strlen(t->name), (int)i) >= 0)
            return err_set(e, "'%s': tensor '%.100s' appears twice", g->path, t->name);
    }
    // the data starts at the next multiple of the alignment
    uint64_t data = (c.at + g->alignment - 1) / g->alignment * g->alignment;
    if (n_t && data > g->size)
        return err_set(e, "'%s': the file ends before its tensor data (%zu bytes, the data would start at %llu): "
                          "truncated",
                       g->path, g->size, (unsigned long long)data);
    uint64_t data_len = n_t ? g->size - data : 0;
    Span *spans = calloc((size_t)(n_t ? n_t : 1), sizeof *spans);
    if (!spans) return err_set(e, "'%s': out of memory", g->path);
    int rc = 0;
    for (int i = 0; i < g->n_t && !rc; i++) {
        GgufTensor *t = &g->t[i];
        if (t->offset % g->alignment)
            rc = err_set(e, "'%s': tensor '%.100s': offset %llu is not a multiple of the alignment %u", g->path, t->name,
                         (unsigned long long)t->offset, g->alignment);
        else if (t->offset > data_len)
            rc = err_set(e, "'%s': tensor '%.100s': its data starts at %llu, past the end of the file (%llu bytes of "
                            "data): damaged or truncated",
                         g->path, t->name, (unsigned long long)t->offset, (unsigned long long)data_len);
        else if (t->nbytes > data_len - t->offset) // (offset + nbytes may pass 2^64: not printed)
            rc = err_set(e, "'%s': tensor '%.100s': its %llu bytes from %llu run past the end of the file (%llu bytes "
                            "of data): truncated",
                         g->path, t->name, (unsigned long long)t->nbytes, (unsigned long long)t->offset,
                         (unsigned long long)data_len);
        if (rc) break; // t->offset is not inside the file: no pointer to it
        t->data = g->base + data + t->offset;
        spans[i] = (Span){t->offset, t->offset + t->nbytes, i};
    }
    if (!rc) { // no two tensors share bytes (empty ones share nothing)
        qsort(spans, (size_t)g->n_t, sizeof *spans, span_cmp);
        int reach = -1;
        for (int k = 0; k < g->n_t && !rc; k++) {
            if (spans[k].end == spans[k].begin) continue;
            if (reach >= 0 && spans[k].begin < spans[reach].end)
                rc = err_set(e, "'%s': tensors '%.100s' and '%.100s' overlap", g->path, g->t[spans[reach].idx].name,
                             g->t[spans[k].idx].name);
            if (reach < 0 || spans[k].end > spans[reach].end) reach = k;
        }
    }
    free(spans);
    return rc;
}

static Gguf *finish(Gguf *g, Err *e) {
    if (parse(g, e)) {
        gguf_free(g);
        return NULL;
    }
    return g;
}

bool gguf_probe(const char *path) {
    unsigned char m[4];
    return fs_read_head(path, m, 4) == 4 && !memcmp(m, "GGUF", 4);
}

Gguf *gguf_open(const char *path, Err *e) {
    const unsigned char *base;
    size_t size;
    if (fs_map(path, &base, &size, e)) return NULL;
    Gguf *g = xcalloc(1, sizeof *g);
    g->path = xstrdup(path);
    g->base = base;
    g->size = size;
    g->mapped = true;
    return finish(g, e);
}

Gguf *gguf_open_mem(const void *data, size_t len, const char *name, Err *e) {
    Gguf *g = xcalloc(1, sizeof *g);
    g->path = xstrdup(name);
    g->base = data;
    g->size = len;
    return finish(g, e);
}

// ---- queries ----

const char *gguf_path(const Gguf *g) { return g->path; }
int64_t gguf_file_size(const Gguf *g) { return (int64_t)g->size; }
uint32_t gguf_version(const Gguf *g) { return g->version; }
uint32_t gguf_alignment(const Gguf *g) { return g->alignment; }
int gguf_n_kv(const Gguf *g) { return g->n_kv; }
const char *gguf_key(const Gguf *g, int i) { return i >= 0 && i < g->n_kv ? g->kv[i].key : NULL; }
GgufType gguf_kv_type(const Gguf *g, int i) { return i >= 0 && i < g->n_kv ? g->kv[i].type : GGUF_TYPE_COUNT; }
int gguf_find(const Gguf *g, const char *key) { return strmap_get(&g->keys, key, strlen(key)); }

const void *gguf_kv_bytes(const Gguf *g, int i, size_t *len) {
    if (i < 0 || i >= g->n_kv) return *len = 0, NULL;
    *len = (size_t)(g->kv[i].end - g->kv[i].begin);
    return g->base + g->kv[i].begin;
}
int gguf_n_tensors(const Gguf *g) { return g->n_t; }
const GgufTensor *gguf_tensor(const Gguf *g, int i) { return i >= 0 && i < g->n_t ? &g->t[i] : NULL; }

const GgufTensor *gguf_find_tensor(const Gguf *g, const char *name) {
    int i = strmap_get(&g->names, name, strlen(name));
    return i >= 0 ? &g->t[i] : NULL;
}

// A number of type t at p as a double (integers exactly up to 2^53), and as an integer.
static bool is_int_type(GgufType t) { return t <= GGUF_I32 || t == GGUF_BOOL || t == GGUF_U64 || t == GGUF_I64; }

static long long int_at(const unsigned char *p, GgufType t) {
    switch (t) {
    case GGUF_U8:
    case GGUF_BOOL: return p[0];
    case GGUF_I8: return (int8_t)p[0];
    case GGUF_U16: return (long long)le(p, 2);
    case GGUF_I16: return (int16_t)le(p, 2);
    case GGUF_U32: return (long long)le(p, 4);
    case GGUF_I32: return (int32_t)le(p, 4);
    case GGUF_I64: return (int64_t)le(p, 8);
    case GGUF_U64: {
        uint64_t v = le(p, 8);
        return v > (uint64_t)INT64_MAX ? INT64_MAX : (long long)v;
    }
    default: return 0;
    }
}

static double float_at(const unsigned char *p, GgufType t) {
    if (t == GGUF_F32) {
        uint32_t b = (uint32_t)le(p, 4);
        float f;
        memcpy(&f, &b, 4);
        return f;
    }
    if (t == GGUF_F64) {
        uint64_t b = le(p, 8);
        double d;
        memcpy(&d, &b, 8);
        return d;
    }
    return (double)int_at(p, t);
}

static const Kv *kv_of(const Gguf *g, const char *key) {
    int i = gguf_find(g, key);
    return i >= 0 ? &g->kv[i] : NULL;
}

static int wrong_type(const Gguf *g, const Kv *kv, const char *want, Err *e) {
    if (kv->type == GGUF_ARR)
        return err_set(e, "'%s': key '%.100s' is an array of %s, expected %s", g->path, kv->key, gguf_type_name(kv->elem),
                       want);
    return err_set(e, "'%s': key '%.100s' has type %s, expected %s", g->path, kv->key, gguf_type_name(kv->type), want);
}

int gguf_get_str(const Gguf *g, const char *key, const char **s, size_t *len, Err *e) {
    const Kv *kv = kv_of(g, key);
    if (!kv) return 0;
    if (kv->type != GGUF_STR) return wrong_type(g, kv, "a string", e);
    uint64_t n = le(g->base + kv->at, 8);
    *s = (const char *)g->base + kv->at + 8;
    if (len) *len = (size_t)n;
    return 1;
}

int gguf_get_int(const Gguf *g, const char *key, long long lo, long long hi, long long *out, Err *e) {
    const Kv *kv = kv_of(g, key);
    if (!kv) return 0;
    if (!is_int_type(kv->type)) return wrong_type(g, kv, "an integer", e);
    long long v = int_at(g->base + kv->at, kv->type);
    if (v < lo || v > hi)
        return err_set(e, "'%s': key '%.100s' is %lld, out of range [%lld, %lld]", g->path, kv->key, v, lo, hi);
    *out = v;
    return 1;
}

int gguf_get_float(const Gguf *g, const char *key, double *out, Err *e) {
    const Kv *kv = kv_of(g, key);
    if (!kv) return 0;
    if (kv->type != GGUF_F32 && kv->type != GGUF_F64 && (!is_int_type(kv->type) || kv->type == GGUF_BOOL))
        return wrong_type(g, kv, "a number", e);
    double v = float_at(g->base + kv->at, kv->type);
    if (!isfinite(v)) return err_set(e, "'%s': key '%.100s' is not a finite number", g->path, kv->key);
    *out = v;
    return 1;
}

int gguf_get_bool(const Gguf *g, const char *key, bool *out, Err *e) {
    const Kv *kv = kv_of(g, key);
    if (!kv) return 0;
    if (kv->type != GGUF_BOOL) return wrong_type(g, kv, "a bool", e);
    *out = g->base[kv->at] != 0;
    return 1;
}

int gguf_get_arr(const Gguf *g, const char *key, GgufType want, GgufArr *a, Err *e) {
    const Kv *kv = kv_of(g, key);
    if (!kv) return 0;
    bool ok = kv->type == GGUF_ARR;
    if (ok && want != GGUF_TYPE_COUNT && kv->elem != want) {
        // integer arrays of any integer type, number arrays of any number type, are read alike
        bool want_int = is_int_type(want) && want != GGUF_BOOL, want_num = want == GGUF_F32 || want == GGUF_F64;
        ok = (want_int && is_int_type(kv->elem) && kv->elem != GGUF_BOOL) ||
             (want_num && (kv->elem == GGUF_F32 || kv->elem == GGUF_F64 || is_int_type(kv->elem)));
    }
    if (!ok) {
        char w[48];
        snprintf(w, sizeof w, "an array of %s", want == GGUF_TYPE_COUNT ? "values" : gguf_type_name(want));
        return wrong_type(g, kv, w, e);
    }
    *a = (GgufArr){kv->elem, kv->n, g->base + kv->at, kv->str_at, g};
    return 1;
}

const char *gguf_arr_str(const GgufArr *a, uint64_t i, size_t *len) {
    if (a->type != GGUF_STR || i >= a->n) return NULL;
    const unsigned char *p = a->g->base + a->str_at[i];
    *len = (size_t)le(p, 8);
    return (const char *)p + 8;
}

long long gguf_arr_int(const GgufArr *a, uint64_t i) {
    return i < a->n && a->type != GGUF_STR ? int_at(a->p + i * (uint64_t)type_size[a->type], a->type) : 0;
}

double gguf_arr_float(const GgufArr *a, uint64_t i) {
    return i < a->n && a->type != GGUF_STR ? float_at(a->p + i * (uint64_t)type_size[a->type], a->type) : 0;
}
