// wsrc.h - weight sources: named tensors from one or more files, whatever their format.
//
// A file reader (safetensors.c today, a GGUF reader next) maps a file, validates its
// header and registers its tensors here; the model loader then asks for tensors by name
// only. The tensors' bytes stay in the readers' mappings: nothing is copied.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "kern/tensor.h"

// One tensor as a file stores it.
typedef struct WTensor {
    char *name;
    Tensor t;          // dims as the file lists them, outermost first; data into the mapping
    size_t nbytes;
    char dtype[16];    // as the file names the element type ("F32", "I64", "Q4_K", ...)
    bool supported;    // t.dt is an element type qkv computes with
} WTensor;

typedef struct WSrc WSrc;

WSrc *wsrc_new(void);
void wsrc_free(WSrc *ws);

// Register a file: its path, size and the reader's handle, closed with close_fn when the
// source is freed (also when this call fails). Returns the file's index (>= 0), or -1.
int wsrc_add_file(WSrc *ws, const char *path, int64_t size, void *handle, void (*close_fn)(void *), Err *e);
// Register a tensor of file (borrowed: it must live as long as the file's handle). A name
// already registered by another file is an error naming both files.
int wsrc_add_tensor(WSrc *ws, int file, const WTensor *t, Err *e);

// The tensor called name, or NULL.
const WTensor *wsrc_find(const WSrc *ws, const char *name);
// 0 when t's element type is one qkv computes with, else -1 with e "tensor 'NAME': type F64 is
// not supported (F32, F16, ... are)": said before its shape, which such a type may also store.
int wtensor_check_type(const WTensor *t, Err *e);
// Every tensor in registration order.
int wsrc_count(const WSrc *ws);
const WTensor *wsrc_at(const WSrc *ws, int i);
// The file that holds tensor i.
int wsrc_file_of(const WSrc *ws, int i);
int wsrc_n_files(const WSrc *ws);
const char *wsrc_file_path(const WSrc *ws, int file);
// 0 while every file is as long as when it was added; -1 with e naming one that the same file,
// rewritten in place, has made shorter (its mapped weights past the new end would fault: SIGBUS).
int wsrc_check(const WSrc *ws, Err *e);
// Bytes of every file together.
int64_t wsrc_bytes(const WSrc *ws);
