// model.h - model files: configuration, weights (mapped, never copied) and tokenizer.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "kern/ops.h"
#include "kern/tensor.h"
#include "tok/tokenizer.h"

typedef enum { ARCH_GPT2 = 1 } Arch;

typedef struct ModelConfig {
    Arch arch;
    int n_layer, n_head, n_kv_head, head_dim;
    int n_embd, n_ff, n_ctx, n_vocab;
    float norm_eps;
} ModelConfig;

// GPT-2 block weights: matrices as stored (Conv1D, [in, out]), vectors as float32
// (pointing into the mapping when stored as F32, else converted once at load).
typedef struct Gpt2Layer {
    const float *ln1_w, *ln1_b;
    Linear attn;  // [d, 3d] (q | k | v)
    Linear proj;  // [d, d]
    const float *ln2_w, *ln2_b;
    Linear fc;    // [d, ff]
    Linear fc2;   // [ff, d]
} Gpt2Layer;

typedef struct Model {
    ModelConfig cfg;
    char *path;       // as given by the user
    char *name;       // short display name
    bool untrained;   // random weights (new-model, built-in default)
    bool builtin;     // the built-in default, not from a file
    Tokenizer *tok;   // owned
    Tensor wte, wpe;  // [V, d], [ctx, d]
    const float *lnf_w, *lnf_b;
    Linear lm_head;   // [V, d] stored [out, in]; the wte tensor when tied
    bool tied;
    Gpt2Layer *layers;
    int64_t n_params;
    int64_t file_bytes;
    struct StFile **files; // owned weight files (one per shard)
    int n_files;
    void *owned_bytes;     // memory holding the weights of the built-in model
    float **owned_vecs;    // vectors converted to float32 at load
    int n_owned_vecs;
} Model;

// Open an HF model directory or a single .safetensors file (tokenizer beside it).
// tok_path, when non-NULL, overrides where the tokenizer comes from.
Model *model_open(const char *path, const char *tok_path, Err *e);
// The built-in default: a small untrained GPT-2 with a byte-level tokenizer.
Model *model_builtin(Err *e);
void model_free(Model *m);
const char *arch_name(Arch a);
