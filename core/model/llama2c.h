// llama2c.h - llama2.c checkpoints: a weight source that also carries the configuration.
#pragma once
#include <stdbool.h>

#include "base/err.h"
#include "model/model.h"

// Whether path is a llama2.c checkpoint (its header's sizes match the file's length).
bool llama2c_probe(const char *path);
// For a file llama2c_probe refused: -1 with e saying why when it looks like one (a plausible
// header with the wrong size: cut short or with bytes after it; shorter than a header), else 0.
int llama2c_explain(const char *path, Err *e);
// Map the checkpoint into m->src, fill m->cfg and m->family (Llama, adjacent rotary pairs)
// and the tensor-name map to bind with. 0 or -1 with e filled.
int llama2c_load(Model *m, const char *path, const TensorMap **map, Err *e);
// The tokenizer beside a checkpoint, as llama2.c names them: tokenizer.bin, or tok<V>.bin for
// a vocabulary of V; NULL when there is none (the caller frees the path).
char *llama2c_tokenizer_beside(const char *path, int n_vocab);
