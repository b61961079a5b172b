// safetensors.h - reading .safetensors files: validated header, mapped data.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "kern/tensor.h"

typedef struct StEntry {
    char *name;
    Tensor t;           // data points into the mapping
    size_t nbytes;
    char dtype_str[16]; // as written in the file (e.g. "F32", "I64")
    bool supported;     // dtype is one qkv computes with
} StEntry;

typedef struct StFile StFile;

// Map and validate path: header length and JSON, every dtype, shape and data_offsets
// checked against each other and the file size (no overlap, no overflow). The message
// names the file and the tensor at fault.
StFile *st_open(const char *path, Err *e);
// The same for a file already in memory (borrowed; must outlive the StFile).
StFile *st_open_mem(const void *data, size_t len, const char *name, Err *e);
void st_close(StFile *f);
int st_count(const StFile *f);
const StEntry *st_at(const StFile *f, int i);
const StEntry *st_find(const StFile *f, const char *name);
const char *st_path(const StFile *f);
int64_t st_size(const StFile *f);
