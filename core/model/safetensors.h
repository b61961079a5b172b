// safetensors.h - reading .safetensors files: validated header, mapped data, tensors
// registered in a weight source.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "model/wsrc.h"

typedef struct StFile StFile;

// Map and validate path: header length and JSON, every dtype, shape and data_offsets
// checked against each other and the file size (no overlap, no overflow). The message
// names the file and the tensor at fault.
StFile *st_open(const char *path, Err *e);
// The same for a file already in memory (borrowed; must outlive the StFile).
StFile *st_open_mem(const void *data, size_t len, const char *name, Err *e);
void st_close(StFile *f);
int st_count(const StFile *f);
const WTensor *st_at(const StFile *f, int i);
const char *st_path(const StFile *f);
int64_t st_size(const StFile *f);

// Open path (or the in-memory image data[len] called name) and register its tensors in ws,
// which then owns the file. 0, or -1 with e filled.
int wsrc_add_safetensors(WSrc *ws, const char *path, Err *e);
int wsrc_add_safetensors_mem(WSrc *ws, const void *data, size_t len, const char *name, Err *e);
