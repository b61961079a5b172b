// gguf_model.h - GGUF checkpoints (llama.cpp's files): a weight source that carries its
// configuration and tokenizer.
#pragma once
#include <stdint.h>

#include "base/err.h"
#include "model/model.h"

struct Gguf;

// Map the GGUF file path into m->src (which then owns it) and fill m->cfg and m->family from its
// metadata (general.architecture names the family). *map receives the tensor names to bind
// with, *g the open file (for the tokenizer and chat template; it lives as long as m->src).
// 0 or -1 with e filled.
int gguf_model_load(Model *m, const char *path, const TensorMap **map, const struct Gguf **g, Err *e);
