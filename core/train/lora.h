// lora.h - low-rank adapters (Hu et al., 2021) on a trained model's attention projections:
// each adapted weight W = W0 + (alpha / r) B A with W0 frozen, A [r, in] and B [out, r]
// trained (B starts at zero, so the model starts as it was). The model's arena holds the
// merged W, so its forward and backward passes run unchanged; the adapters' gradients come
// from the merged weight's: dB = s dW A^T, dA = s B^T dW (dW as [out, in]).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "train/tmodel.h"

typedef struct LoraMat {
    WeightId w;
    int layer, in, out;
    size_t a, b; // offsets of A (r x in) and B (out x r) in the adapter arena
    float *w0;   // the frozen weight, as the model stores it
} LoraMat;

typedef struct Lora {
    int r;
    float alpha, scale; // scale = alpha / r
    LoraMat *m;
    int n;
    float *params, *grads; // every A and B, one after the other
    size_t size;
} Lora;

// Adapters of rank r on every attention projection of tm (fused q/k/v or q, k, v; the
// output), A drawn uniform in +-1/sqrt(in) from seed (as torch's kaiming_uniform_ with a =
// sqrt(5)), B zero. 0 or -1 with e filled.
int lora_init(Lora *L, TrainModel *tm, int r, float alpha, uint64_t seed, Err *e);
void lora_done(Lora *L);
// Write W0 + scale B A into tm's weights.
void lora_merge(const Lora *L, TrainModel *tm);
// The adapters' gradients (L->grads, overwritten) from the gradients of tm's merged weights.
void lora_grads(Lora *L, TrainModel *tm);
// Write the adapters as PEFT keeps them beside the merged checkpoint: dir/adapter_model.safetensors
// (F32, `base_model.model.<weight name>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r])
// and dir/adapter_config.json of task_type ("SEQ_CLS", "CAUSAL_LM"); the weights are named
// under the task model's prefix (tmodel_task_prefix).
int lora_save(const Lora *L, const TrainModel *tm, const char *dir, const char *task_type, Err *e);
