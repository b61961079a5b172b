// tmodel.h - a model being trained: every parameter carved out of one float32 arena
// (in arch_plan's order, each stored as its HF layout stores it), a gradient arena of the
// same layout, and the activations of one batch, with the forward pass and the backward pass
// built from the pairs of train/layers.h, driven by the architecture descriptor.
//
// Supported: causal pre-norm decoders (GPT-2, Llama and its relatives): learned or rotary
// positions, LayerNorm (with or without shifts) or RMSNorm, fused or separate q/k/v with
// grouped-query heads, GELU (tanh) or SwiGLU feed-forward, linear biases, tied or untied head.
// Without the head (tmodel_new_body, what a reward model reads) also BERT-style encoders:
// post-norm blocks, token-type embeddings and an embedding norm, erf GELU, bidirectional
// attention over each sequence's valid tokens (a padding mask).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "kern/pool.h"
#include "model/arch.h"
#include "model/model.h"

// One parameter tensor of the arena.
typedef struct TParam {
    WeightSlot s;    // which logical weight, its kind and sizes
    size_t off, n;   // floats from the start of the arena
    bool decay;      // matrices and embeddings take weight decay; vectors (norms, biases) do not
} TParam;

typedef struct TrainModel TrainModel;

// Whether the trainer runs a model of configuration c: with its language-model head (lm), or,
// body only, also an encoder (post-norm, embedding norm, token types, erf GELU, bidirectional
// attention). 0, or -1 with e filled ("ARCH models are not trainable (why)", no command named).
int tmodel_check(const ModelConfig *c, bool lm, Err *e);
// A model of configuration c stored as layout map stores it, with zero parameters.
// threads: the passes' thread team (<= 0: the CPUs; see train/layers.h for how work is split). NULL with e filled when the
// architecture is not one the trainer supports.
TrainModel *tmodel_new(const ModelConfig *c, const TensorMap *map, int threads, Err *e);
// A trainable copy of a loaded model's weights (converted to float32).
TrainModel *tmodel_from_model(const Model *m, int threads, Err *e);
// As tmodel_new and tmodel_from_model, also for encoders, which are taken without their
// masked-LM head (tmodel_forward refuses them; tmodel_encode and its backward run them).
TrainModel *tmodel_new_body(const ModelConfig *c, const TensorMap *map, int threads, Err *e);
TrainModel *tmodel_body_from_model(const Model *m, int threads, Err *e);
void tmodel_free(TrainModel *m);

const ModelConfig *tmodel_config(const TrainModel *m);
const TensorMap *tmodel_map(const TrainModel *m);
Pool *tmodel_pool(TrainModel *m);           // the passes' thread team
int tmodel_threads(const TrainModel *m);    // its size
size_t tmodel_size(const TrainModel *m);   // floats in each arena (the parameter count)
float *tmodel_params(TrainModel *m);       // the parameter arena
float *tmodel_grads(TrainModel *m);        // the gradient arena
int tmodel_n_tensors(const TrainModel *m);
const TParam *tmodel_tensor(const TrainModel *m, int i);
// The parameter (or its gradient) of logical weight w of layer (-1 outside the blocks), or NULL.
float *tmodel_param(TrainModel *m, WeightId w, int layer);
float *tmodel_grad(TrainModel *m, WeightId w, int layer);

// The forward pass over B sequences of T tokens: inputs, targets (B*T; a target < 0 is not
// counted). Returns 0 and the mean loss over counted targets in *loss, or -1 with e filled
// (T beyond the context, an id out of range, out of memory). The activations stay for
// tmodel_backward.
int tmodel_forward(TrainModel *m, const int *inputs, const int *targets, int B, int T, double *loss, Err *e);
// The logits of the last forward pass, (B*T, n_vocab), before they became probabilities:
// only valid when it ran with targets NULL.
const float *tmodel_logits(const TrainModel *m);
// The backward pass of the last forward: adds scale * d(mean loss)/d(parameter) into the
// gradient arena (scale 1/k for k accumulated micro-batches).
void tmodel_backward(TrainModel *m, float scale);
void tmodel_zero_grad(TrainModel *m);
// The loss of each row (B*T) of the last forward with targets: -log p(target), 0 where the
// target was not counted; NULL after a forward without targets.
const float *tmodel_losses(const TrainModel *m);
// The backward pass of the last forward for the loss sum_n w[n] * loss[n] (w: B*T weights,
// one per row; what a per-token weighting of log-probabilities needs, as DPO's): adds its
// gradient into the gradient arena.
void tmodel_backward_rows(TrainModel *m, const float *w);
// The forward pass without the language-model head: the final hidden states (after the final
// norm), (B*T, n_embd), valid until the next pass; NULL with e filled as tmodel_forward.
const float *tmodel_hidden(TrainModel *m, const int *inputs, int B, int T, Err *e);
// tmodel_hidden with segment ids types (B*T, each below the model's token types; NULL: all 0)
// and the valid tokens of each sequence lens (B, 1..T; NULL: all T): an encoder's attention
// sees a sequence's first lens[b] tokens only (a decoder's is causal, so padding at the end
// changes nothing before it and lens is not read).
const float *tmodel_encode(TrainModel *m, const int *inputs, const int *types, const int *lens, int B, int T, Err *e);
// The backward pass of the last tmodel_hidden / tmodel_encode from the gradient of its output dhidden (B*T,
// n_embd): adds d(loss)/d(parameter) into the gradient arena.
void tmodel_backward_hidden(TrainModel *m, const float *dhidden);

// Where a checkpoint written from model m into out finds its tokenizer (the tok_dir of the
// savers below), settled before training so that a model without one is refused before the
// work: m's directory when it holds tokenizer files; else, for a GGUF model (a file, or a
// directory of one: its tokenizer lives in the file's metadata), out itself, where m's
// tokenizer is written now as tokenizer.gguf; NULL for the built-in model (its family's own).
// *tok_dir is allocated (free it). 0, or -1 with e filled.
int tmodel_checkpoint_tokenizer(const Model *m, const char *out, char **tok_dir, Err *e);

// 0 when out (a directory to write a new model or tokenizer into) holds no model: no
// config.json, model.safetensors or model.safetensors.index.json; else -1 with "CMD: 'out'
// already holds a model (FILE): choose another out=" in e (train-tokenizer replaced it; the
// trainers check more, tmodel_out_unused).
int tmodel_out_free(const char *out, const char *cmd, Err *e);
// 0 when out holds no model (tmodel_out_free) and none of the files a trainer writes there: a
// checkpoint's (newmodel_files) and the NULL-terminated extra (README.md, ...); else -1 with
// "'out' already holds FILE, which CMD writes: ..." in e naming the first (a person's
// README.md or an unrelated tokenizer.json was written over, or read as the model's tokenizer).
int tmodel_out_unused(const char *out, const char *cmd, const char *const *extra, Err *e);
// 0 when a new model may be written into out: it holds an untrained model (config.json with
// "qkv_untrained": true, as new-model writes it), replaced; or no model and none of the files cmd
// writes (tmodel_out_unused). Else -1 with "'out' already holds a trained model (FILE): ..." or
// tmodel_out_unused's message in e.
int tmodel_out_replaceable(const char *out, const char *cmd, const char *const *extra, Err *e);
// Whether dir holds an untrained model (config.json with "qkv_untrained": true, as new-model writes it).
bool tmodel_untrained_in(const char *dir);
// The first file of a model (config.json, model.safetensors, its index) present in dir, or NULL.
const char *tmodel_file_in(const char *dir);

// Write the parameters (or, when grads, the gradients) as an HF model directory: config.json,
// model.safetensors (F32) and the tokenizer files copied from tok_dir (NULL: the family's
// small default tokenizer).
int tmodel_save(TrainModel *m, const char *dir, const char *tok_dir, bool grads, Err *e);
// Write the model with a scalar head score (n_embd floats) as an HF sequence-classification
// checkpoint (GPT2ForSequenceClassification, LlamaForSequenceClassification,
// BertForSequenceClassification, ...): config.json with num_labels 1 (and, for an encoder,
// qkv_pooling: pooling, "cls" or "mean"), the family's classifier (score.weight [1, n_embd];
// BERT's classifier.weight and a zero classifier.bias), the base model's tensors under the
// family's task-model prefix, and the tokenizer files of tok_dir.
// The prefix of the weight names inside a task model (GPT2ForSequenceClassification reads
// "transformer.", LlamaForSequenceClassification "model.").
const char *tmodel_task_prefix(const TrainModel *m);
int tmodel_save_reward(TrainModel *m, const float *score, const char *pooling, const char *dir, const char *tok_dir,
                       Err *e);
