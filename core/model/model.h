// model.h - a model in memory: its descriptor and sizes, its weights (mapped from the files,
// never copied) bound to the logical weights of arch.h, and its tokenizer.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "kern/ops.h"
#include "kern/tensor.h"
#include "model/arch.h"
#include "tok/tokenizer.h"

struct WSrc;

// A norm's gain and shift (shift NULL for RMSNorm), as float32: pointing into the mapping
// when stored as aligned F32, else converted once at load.
typedef struct Norm {
    const float *w, *b;
} Norm;

// One block's weights; a linear's w.data is NULL when the architecture does not have it
// (q/k/v when fused, gate without SwiGLU).
typedef struct Layer {
    Norm attn_norm, ffn_norm; // pre-norm: before the sublayer; post-norm: after its residual
    Linear qkv, q, k, v, o;   // qkv: [d] -> [(n_head + 2 n_kv_head) head_dim], q | k | v
    Linear up, gate, down;
} Layer;

typedef struct Model {
    ModelConfig cfg;
    const Family *family;
    char *path;       // as given by the user
    char *name;       // short display name
    bool untrained;   // random weights (new-model, built-in default)
    bool builtin;     // the built-in default, not from a file
    Tokenizer *tok;   // owned
    Tensor tok_embd;  // [V, d]
    Tensor pos_embd;  // [n_ctx, d] (learned positions), else absent
    Tensor type_embd; // [n_types, d] (token types), else absent
    Norm emb_norm, out_norm, head_norm;
    Linear head_dense; // [d] -> [d] (head transform)
    Linear output;     // [d] -> [V], stored [V, d]; tok_embd when tied
    Layer *layers;
    int64_t n_params;
    int64_t file_bytes;
    DType dtype;       // the element type of most of the block weights (for reports)
    // sentence-transformers folders (modules.json): how their embeddings are made
    char st_pool[8];   // "mean", "cls", "max", or "" when the folder does not say
    bool st_normalize; // a Normalize module follows the pooling
    int st_max_seq;    // sentence_bert_config.json max_seq_length (0: none)
    struct WSrc *src;  // owned: the files the weights come from
    const struct Gguf *gguf; // the GGUF file they come from (src owns it), else NULL
    const struct Model *base; // a model converted in memory (quantize.h): the one it borrows its
                              // tokenizer and unconverted weights from; else NULL
    DType quant_dt;    // with base: the type model_quantize converted to, and whether the token
    bool quant_embed;  // embedding was converted too
    void *owned_bytes; // memory holding the weights of the built-in model
    float **owned_vecs; // vectors converted to float32 at load
    int n_owned_vecs;
} Model;

// Open an HF model directory (config.json, model.safetensors or shards) or a single
// .safetensors file (tokenizer and, optionally, config.json beside it). tok_path, when
// non-NULL, overrides where the tokenizer comes from.
Model *model_open(const char *path, const char *tok_path, Err *e);
// The built-in default: a small untrained GPT-2 with a byte-level tokenizer.
Model *model_builtin(Err *e);
void model_free(Model *m);

// Bind m's weights from its source m->src through map, for m->cfg (already read): every
// weight the descriptor needs must be present with the expected shape. Fills the layers,
// n_params, dtype and, for a head found in the files, cfg.a.tied (a head stored as a byte-for-byte
// copy of the token embedding, under a tied cfg, is bound as the embedding). 0 or -1 with e filled.
int model_bind(Model *m, const TensorMap *map, Err *e);
// Copy the logical weight of slot s (see arch_plan) as float32 into out, a linear [in, out]
// when in_out (GPT-2's Conv1D) else [out, in], whichever way m's file stores it (a GGUF GPT-2
// holds [out, in]). -1 when m does not have it.
int model_weight_f32(const Model *m, const WeightSlot *s, bool in_out, float *out);
// The linear layer w (of layer, -1 outside the blocks) as bound, or NULL when m has none.
// The element type holding most of the blocks' weights (a Q4_K_M file: Q4_K, with some
// matrices in Q6_K): what Model.dtype reports.
DType model_block_dtype(const Model *m);
const Linear *model_linear(const Model *m, WeightId w, int layer);
