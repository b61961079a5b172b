// quantize.h - a loaded model's weights converted in memory to another element type (the
// lectures' affine int8, ggml's block formats, half floats), and what the conversion did to
// them: the error of every converted weight, per layer.
#pragma once
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "model/model.h"

enum { QUANT_HIST_BINS = 33 };

// The weights of one layer that were converted.
typedef struct QuantLayer {
    int layer;             // block index; -1 for the weights outside the blocks
    int64_t n;             // weights converted
    double rms_w, rms_err; // root mean square of the weights and of the error (dequantized - original)
    double max_err;        // the largest |error|
    // the errors in QUANT_HIST_BINS equal bins over [-range, range] (QuantReport.range); the
    // end bins also hold the errors beyond
    int64_t hist[QUANT_HIST_BINS];
} QuantLayer;

typedef struct QuantReport {
    DType dt;                  // as asked: an element type or QUANT_Q4_K_M
    int n_by_type[DT_COUNT];   // matrices converted to each element type
    bool embed;                // the token embedding (and a head tied to it) was converted
    int n_tensors;             // matrices converted
    int n_kept;                // matrices left as they were: rows not whole blocks of dt
    char kept_first[64];       // the first of those ("blk.3.attn_q"), "" when none
    int64_t bytes_before, bytes_after; // every weight of each model (vectors as the float32 they are used as)
    double range;              // the histograms' half-width
    int n_layers;              // n_layer + 1: the blocks in order, then layer -1
    QuantLayer *layers;
} QuantReport;

// A model whose matrices are base's converted to dt: the linear layers of every block, the
// head transform and an untied output head; with embed also the token embedding (and so a
// head tied to it). Position and token-type embeddings, norms and biases stay as they are.
// The new model borrows everything else from base (its tokenizer too): base must outlive it.
// A matrix whose rows are not whole blocks of dt is kept as it is (rep says how many).
// dt may not be DT_F32 (the loaded model is the float one). Returns the model and fills rep
// (free it with quant_report_free), or NULL with e filled: no matrix could be converted, a
// weight is not finite or beyond what dt holds, memory ran out, or *stop became non-zero
// (Ctrl-C; checked a chunk of rows at a time: "quantize: interrupted"). stop may be NULL.
Model *model_quantize(const Model *base, DType dt, bool embed, const volatile sig_atomic_t *stop, QuantReport *rep,
                      Err *e);
void quant_report_free(QuantReport *rep);
// Bytes of every weight m computes with: matrices as stored, vectors as float32.
int64_t model_weight_bytes(const Model *m);

// llama.cpp's Q4_K_M mix, where model_quantize takes a type (a value past the element types):
// Q4_K, and Q6_K for the head (the token embedding when the head is tied to it and embed is
// set), for attn_v and ffn_down in the layers llama.cpp's use_more_bits picks (the first and
// last eighth and every third between), and for a fused attn_qkv, to which llama.cpp gives Q5_K
// (qkv has no Q5_K: the next type up stands in, so such a model reads more bytes, not fewer).
#define QUANT_Q4_K_M ((DType)(DT_COUNT + 1))
// The element type model_quantize gives the weight w of layer (-1 outside the blocks) of
// n_layer under the type or mix dt; head: w is the output head or an embedding tied to it.
DType quant_weight_type(DType dt, WeightId w, int layer, int n_layer, bool head);

// quantize's type names (int8, q8_0, ..., off for DT_F32): the name of dt (NULL if it has none),
// and the type of a name, any case (0, or -1 when unknown).
#define QUANT_NAMES "int8|q8_0|q4_0|q4_1|q4_k|q4_k_m|q6_k|f16|bf16|off"
const char *quant_type_name(DType dt);
int quant_type_find(const char *name, size_t len, DType *dt);
