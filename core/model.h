// model.h - model files: configuration, weights (mapped, never copied) and tokenizer.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "tensor.h"
#include "tokenizer.h"

typedef enum { ARCH_GPT2 = 1 } Arch;

typedef struct ModelConfig {
    Arch arch;
    int n_layer, n_head, n_kv_head, head_dim;
    int n_embd, n_ff, n_ctx, n_vocab;
    float norm_eps;
} ModelConfig;

// GPT-2 block weights. Linear weights are stored [in, out] (Conv1D) unless the
// tensor's `trans` flag below says [out, in].
typedef struct Gpt2Layer {
    Tensor ln1_w, ln1_b;
    Tensor attn_w, attn_b; // [d, 3d], [3d]  (q | k | v)
    Tensor proj_w, proj_b; // [d, d], [d]
    Tensor ln2_w, ln2_b;
    Tensor fc_w, fc_b;     // [d, ff], [ff]
    Tensor fc2_w, fc2_b;   // [ff, d], [d]
} Gpt2Layer;

typedef struct Mapping Mapping;

typedef struct Model {
    ModelConfig cfg;
    char *path;       // as given by the user
    char *name;       // short display name
    bool untrained;   // random weights (new-model, built-in default)
    bool builtin;     // the built-in default, not from a file
    Tokenizer *tok;   // owned
    Tensor wte, wpe, lnf_w, lnf_b;
    Tensor lm_head;   // [V, d]; equals wte when tied
    bool tied;
    Gpt2Layer *layers;
    int64_t n_params;
    int64_t file_bytes;
    Mapping **maps;   // owned file mappings (one per shard)
    int n_maps;
    void *owned;      // memory holding the weights of the built-in model
} Model;

// Open an HF model directory or a single .safetensors file (tokenizer beside it).
// tok_path, when non-NULL, overrides where the tokenizer comes from.
Model *model_open(const char *path, const char *tok_path, Err *e);
// The built-in default: a small untrained GPT-2 with a byte-level tokenizer.
Model *model_builtin(Err *e);
void model_free(Model *m);
const char *arch_name(Arch a);
