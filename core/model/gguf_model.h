// gguf_model.h - GGUF checkpoints (llama.cpp's files): a weight source that carries its
// configuration and tokenizer.
#pragma once
#include <signal.h>
#include <stdint.h>

#include "base/err.h"
#include "model/model.h"

struct Gguf;

// Map the GGUF file path into m->src (which then owns it) and fill m->cfg and m->family from its
// metadata (general.architecture names the family). *map receives the tensor names to bind
// with, *g the open file (for the tokenizer and chat template; it lives as long as m->src).
// 0 or -1 with e filled.
int gguf_model_load(Model *m, const char *path, const TensorMap **map, const struct Gguf **g, Err *e);

// What model_export_gguf wrote.
typedef struct GgufExportInfo {
    int n_tensors;
    int n_kept;    // matrices written as F16, not as the block type asked for: rows not whole blocks of it
    int64_t bytes; // the tensors' data
} GgufExportInfo;

// Write m as a GGUF v3 file at path, as llama.cpp lays out m's family: general.architecture,
// general.file_type, the general.* keys of the GGUF m came from that describe the model (name,
// licence, ...; else general.name from m's name), the {arch}.* hyperparameters with
// {arch}.pooling_type (mean, cls, last), qkv.* keys for what GGUF has none for (max pooling, a
// Normalize module, max_seq_length, random weights), the tokenizer (tokenizer.ggml.*) and chat template, the tensors
// under llama.cpp's names (linears [out, in]; Llama's q/k in adjacent-pair rotary order; GPT-2's
// head copied when tied), the matrices as dt (F32, F16, BF16 or a block type; a matrix whose rows
// are not whole blocks as F16), vectors, position and token-type embeddings as F32. The file is
// replaced atomically. 0 with *info filled (may be NULL), or -1 with e filled: a family without a
// GGUF layout, a tokenizer GGUF cannot describe, a path that cannot be written, stop (may be NULL:
// Ctrl-C) set before the last tensor ("interrupted"; the file at path left as it was).
int model_export_gguf(const Model *m, const char *path, DType dt, volatile sig_atomic_t *stop, GgufExportInfo *info,
                      Err *e);
