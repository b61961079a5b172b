// gguf.h - GGUF files (llama.cpp's container for models and tokenizers): reading the typed
// key/values and tensor infos of a mapped file, every size checked against the file; and
// writing one.
//
// Layout, little-endian: magic "GGUF", u32 version (2 or 3; both use 64-bit counts and
// lengths), u64 tensor count, u64 key/value count; each key/value: a string key, a u32 value
// type, the value (an array: u32 element type, u64 count, the elements); each tensor info: a
// string name, u32 n_dims, u64 dims[n_dims] in ggml's order (dims[0] is the contiguous row
// length), u32 ggml type, u64 offset; then padding to general.alignment (a u32 power of two,
// default 32) and the data, each tensor at its offset from the data start, aligned. A string is
// a u64 length and its bytes, without a NUL.
//
// This module knows the container and ggml's element types (their block sizes, to check data
// sizes), not what the tensors mean: model/ and tok/ read models and tokenizers from it.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/err.h"

typedef enum GgufType {
    GGUF_U8 = 0, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STR, GGUF_ARR,
    GGUF_U64, GGUF_I64, GGUF_F64, GGUF_TYPE_COUNT
} GgufType;

enum { GGUF_DEFAULT_ALIGNMENT = 32, GGUF_MAX_DIMS = 4 };

// "u32", "string", "array", ... for messages.
const char *gguf_type_name(GgufType t);

// A ggml element type: its name ("Q4_K") and how its rows are stored, block elements in
// block_bytes bytes. NULL for an id that names no type.
typedef struct GgmlType {
    const char *name;
    int block, block_bytes;
} GgmlType;
const GgmlType *ggml_type(uint32_t id);

// One tensor as the file lists it.
typedef struct GgufTensor {
    const char *name;          // NUL-terminated (names holding a NUL are refused)
    int ndim;
    int64_t ne[GGUF_MAX_DIMS]; // ggml order: ne[0] is the contiguous row length; 1 past ndim
    uint32_t type;             // ggml type id (ggml_type(type) is non-NULL)
    uint64_t offset;           // from the start of the data
    const void *data;          // into the file
    uint64_t nbytes;
} GgufTensor;

typedef struct Gguf Gguf;

// Whether the file at path starts with GGUF's magic.
bool gguf_probe(const char *path);
// Map and validate path: magic, version, counts, every key (unique, no NUL), value type,
// string length and array count, general.alignment, every tensor's name (unique), dims,
// type, offset (aligned, inside the data, no overlap) against the file size. The message
// names the file and what is wrong.
Gguf *gguf_open(const char *path, Err *e);
// The same for a file already in memory (borrowed; must outlive the Gguf).
Gguf *gguf_open_mem(const void *data, size_t len, const char *name, Err *e);
void gguf_close(Gguf *g);

const char *gguf_path(const Gguf *g);
int64_t gguf_file_size(const Gguf *g);
uint32_t gguf_version(const Gguf *g);
uint32_t gguf_alignment(const Gguf *g);

// Key/values in file order.
int gguf_n_kv(const Gguf *g);
const char *gguf_key(const Gguf *g, int i);
GgufType gguf_kv_type(const Gguf *g, int i);
// The index of key, or -1.
int gguf_find(const Gguf *g, const char *key);
// Key/value i's value as the file stores it (after its type; an array from its element type
// and count on), *len bytes; for gguf_w_copy.
const void *gguf_kv_bytes(const Gguf *g, int i, size_t *len);

// Typed reading of the value at key. Each returns 1 when the key holds a value of a fitting
// type (stored in *out), 0 when the key is absent, and -1 with e naming the file and the key
// when the value has another type or is out of range.
int gguf_get_str(const Gguf *g, const char *key, const char **s, size_t *len, Err *e);
// Any integer type (and bool), within [lo, hi].
int gguf_get_int(const Gguf *g, const char *key, long long lo, long long hi, long long *out, Err *e);
// f32 or f64 (or an integer), finite.
int gguf_get_float(const Gguf *g, const char *key, double *out, Err *e);
int gguf_get_bool(const Gguf *g, const char *key, bool *out, Err *e);

// An array value: its element type and count; elements read with the accessors below.
typedef struct GgufArr {
    GgufType type;
    uint64_t n;
    const unsigned char *p;  // the first element's bytes (numbers: n of them, packed)
    const uint64_t *str_at;  // strings: the file offset of each element's length
    const Gguf *g;
} GgufArr;
// 1 with *a filled when key holds an array whose elements have type want (GGUF_TYPE_COUNT:
// any), 0 when absent, -1 with e filled otherwise.
int gguf_get_arr(const Gguf *g, const char *key, GgufType want, GgufArr *a, Err *e);
// Element i (< a->n): a string (len bytes, not NUL-terminated), an integer, a number.
const char *gguf_arr_str(const GgufArr *a, uint64_t i, size_t *len);
long long gguf_arr_int(const GgufArr *a, uint64_t i);
double gguf_arr_float(const GgufArr *a, uint64_t i);

int gguf_n_tensors(const Gguf *g);
const GgufTensor *gguf_tensor(const Gguf *g, int i);
// The tensor called name, or NULL.
const GgufTensor *gguf_find_tensor(const Gguf *g, const char *name);

// ---------------------------------------------------------------------------------------
// Writing: collect key/values and tensor infos, then write the file in one pass, the tensors'
// bytes streamed by a callback.

typedef struct GgufW GgufW;

GgufW *gguf_w_new(void);
void gguf_w_free(GgufW *w);
// Key/values, in the order added (a key added twice is written twice: the caller avoids it).
void gguf_w_str(GgufW *w, const char *key, const char *s, size_t len);
void gguf_w_u32(GgufW *w, const char *key, uint32_t v);
void gguf_w_i32(GgufW *w, const char *key, int32_t v);
void gguf_w_f32(GgufW *w, const char *key, float v);
void gguf_w_bool(GgufW *w, const char *key, bool v);
void gguf_w_arr_str(GgufW *w, const char *key, uint64_t n, const char *const *s, const size_t *len);
void gguf_w_arr_i32(GgufW *w, const char *key, uint64_t n, const int32_t *v);
void gguf_w_arr_f32(GgufW *w, const char *key, uint64_t n, const float *v);
// Key/value i of g, its key, type and value as they are.
void gguf_w_copy(GgufW *w, const Gguf *g, int i);
// A tensor of ggml type `type` and ggml dims ne[0..ndim) (ne[0] contiguous, a multiple of the
// type's block). Returns its index.
int gguf_w_tensor(GgufW *w, const char *name, int ndim, const int64_t *ne, uint32_t type);
// The bytes tensor i takes.
uint64_t gguf_w_tensor_bytes(const GgufW *w, int i);

// Writes tensor i's bytes (exactly gguf_w_tensor_bytes of them) to f; 0, or -1 with e filled.
typedef int (*GgufDataFn)(void *user, int i, FILE *f, Err *e);
// Write the file at path atomically (a temporary file renamed over it): version 3, alignment
// 32, the key/values, the tensor infos, then each tensor's data from data(). 0, or -1 with e
// filled (path is then untouched).
int gguf_w_write(GgufW *w, const char *path, GgufDataFn data, void *user, Err *e);
