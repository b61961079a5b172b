// newmodel.h - writing random-weight models in the real HF layouts (tests, teaching, the
// built-in default).
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "kern/tensor.h"

typedef struct NewModelParams {
    int n_layer, n_head, n_embd, n_ctx, n_vocab; // n_vocab 0: from the tokenizer
    uint64_t seed;
    float std;        // weights ~ N(0, std); LayerNorm gains ~ 1 + N(0, std)
    DType dtype;      // F32, F16 or BF16
    bool tied;        // false: write an explicit lm_head.weight
    bool masks;       // write the h.N.attn.bias / attn.masked_bias buffers old files carry
    const char *prefix; // "" or "transformer."
    int shards;       // 1, or split into N files with model.safetensors.index.json
} NewModelParams;

NewModelParams newmodel_defaults(void);

// Build config.json text and one safetensors image in memory.
int newmodel_gpt2_build(const NewModelParams *p, Buf *config, Buf *safetensors, Err *e);

// Write an HF GPT-2 directory: config.json, weights, and the tokenizer (copied from
// tok_dir: vocab.json+merges.txt or encoder.json+vocab.bpe; else a 257-token byte-level
// vocabulary). The directory is created if needed; existing model files are replaced.
int newmodel_gpt2_write(const char *dir, const NewModelParams *p, const char *tok_dir, Err *e);
