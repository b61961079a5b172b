// newmodel.h - writing random-weight models of any family in its real HF layout (tests,
// teaching, the built-in default): config.json, safetensors (optionally sharded) and a
// tokenizer.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "kern/tensor.h"
#include "model/arch.h"

typedef struct NewModelParams {
    const char *family; // config.json model_type: "gpt2" (the default), ...
    int n_layer, n_head, n_embd, n_ctx, n_vocab; // n_vocab 0: from the tokenizer
    int n_kv_head;    // 0: n_head
    int n_ff;         // 0: 4 n_embd
    float rope_theta; // 0: the family's default
    uint64_t seed;
    float std;        // weights ~ N(0, std); norm gains ~ 1 + N(0, std)
    DType dtype;      // F32, F16 or BF16
    bool tied;        // false: write an explicit output head
    bool masks;       // write the mask buffers old files of the family carry (GPT-2's attn.bias)
    const char *prefix; // one of the family's name prefixes ("" or "transformer." for GPT-2)
    int shards;       // 1, or split into N files with model.safetensors.index.json
    // Writing given weights instead of random ones (the trainer's checkpoints): when config is
    // set it is the configuration written (its sizes win over the fields above), and
    // weights(user, w, layer) returns each logical weight as float32 in the layout's stored
    // order (arch_plan's slots); the model is then not marked untrained.
    const ModelConfig *config;
    const float *(*weights)(void *user, WeightId w, int layer);
    void *weights_user;
    // A sequence classifier with one label (a reward model): score.weight [1, n_embd] (F32),
    // config.json's architectures named ...ForSequenceClassification and num_labels 1.
    const float *score;
    // An encoder's pooling ("cls", "mean") written as config.json's qkv_pooling, or NULL.
    const char *pooling;
    // config.json's bos_token_id and eos_token_id: the tokenizer's (newmodel_write reads them
    // from the tokenizer it writes or copies); -1: none (written as null).
    int bos_id, eos_id;
} NewModelParams;

NewModelParams newmodel_defaults(void);

// Build config.json text and one safetensors image in memory (the tokenizer is the
// caller's: n_vocab must be set). Mark safetensors fallible (base/buf.h) to get an error
// rather than the out-of-memory handler when the image does not fit.
int newmodel_build(const NewModelParams *p, Buf *config, Buf *safetensors, Err *e);

// The configuration newmodel_write writes for p (whose n_vocab must be set): 0, or -1 with e
// filled when p is refused.
int newmodel_config(const NewModelParams *p, ModelConfig *c, Err *e);

// The parameters of the model p describes (n_vocab 0: taken as 256, a byte-level tokenizer's
// size, the least a tokenizer adds) into *n: 0, or -1 with e filled when p is refused.
int newmodel_params(const NewModelParams *p, uint64_t *n, Err *e);

// Whether dir holds tokenizer files that newmodel_write's tok_dir copies.
bool newmodel_has_tokenizer(const char *dir);
// A fingerprint (FNV-1a) of the tokenizer files newmodel_write copies from tok_dir, their names
// and bytes, into *hash; 0 for tok_dir NULL (the family's own tokenizer). 0, or -1 with e filled
// when one cannot be read.
int newmodel_tokenizer_hash(const char *tok_dir, uint64_t *hash, Err *e);
// The files newmodel_write may write into a directory (config.json, the weights, a tokenizer
// file of every layout qkv reads), NULL-terminated.
extern const char *const newmodel_files[];

// Write an HF model directory: config.json, weights, and the tokenizer (the tokenizer
// files found in tok_dir, copied; else the family's own small default). The directory is
// created if needed; existing model files are replaced.
int newmodel_write(const char *dir, const NewModelParams *p, const char *tok_dir, Err *e);
