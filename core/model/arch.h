// arch.h - architectures as data: the descriptor one generic forward pass follows, the
// logical weights of a block with the tensor names each file layout gives them, and the
// table of model families (one entry, a config reader and a name map per family).
#pragma once
#include <stdbool.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"

typedef enum { NORM_LAYER, NORM_RMS } NormKind;
typedef enum { POS_NONE, POS_LEARNED, POS_ROTARY } PosKind;
// ACT_SWIGLU: down(silu(gate(x)) * up(x)); the others: down(act(up(x))).
typedef enum { ACT_GELU_TANH, ACT_GELU_ERF, ACT_SWIGLU } ActKind;
// Which dimensions rotary embedding pairs: HF "rotate half" pairs i with i + rot/2 (GPT-NeoX
// style); llama.cpp's GGUF Llama and llama2.c pair 2i with 2i + 1.
typedef enum { ROPE_HALF, ROPE_PAIRS } RopeStyle;
// How a long-context checkpoint rescales the rotary frequencies (HF rope_scaling; FACTORS: a
// divisor per frequency, as llama.cpp's GGUF stores Llama 3.1's in rope_freqs.weight).
typedef enum { ROPE_SCALE_NONE, ROPE_SCALE_LINEAR, ROPE_SCALE_LLAMA3, ROPE_SCALE_FACTORS } RopeScaling;

// Which linears carry a bias.
enum {
    BIAS_QKV = 1u << 0,  // the q/k/v projections (fused or separate)
    BIAS_O = 1u << 1,    // the attention output projection
    BIAS_FFN = 1u << 2,  // up (and gate) and down
    BIAS_NORM = 1u << 3, // LayerNorm shifts
    BIAS_HEAD = 1u << 4, // the output head (BERT's MLM decoder bias)
};

// What kind of block a model is made of. A family's entry gives the defaults; its config
// reader fills in what varies per checkpoint (eps, theta, tied head, ...).
typedef struct Arch {
    const char *name;   // family name as reported ("gpt2")
    NormKind norm;
    float norm_eps;
    PosKind pos;
    float rope_theta;   // POS_ROTARY: base of the frequencies
    int rope_dim;       // POS_ROTARY: rotated dimensions per head (0: all of head_dim)
    RopeStyle rope_style;
    RopeScaling rope_scaling;
    float rope_factor;          // LINEAR, LLAMA3: the scaling factor
    float rope_low_freq, rope_high_freq; // LLAMA3: low_freq_factor, high_freq_factor
    int rope_orig_ctx;          // LLAMA3: original_max_position_embeddings
    const float *rope_factors;  // FACTORS: [rot/2] divisors of the frequencies (in the model's file)
    int window;         // sliding-window attention: each query sees its last `window` keys (0: all)
    ActKind act;
    bool post_norm;     // x = norm(x + f(x)) (BERT) instead of x = x + f(norm(x))
    bool causal;        // each position sees only itself and earlier ones
    bool fused_qkv;     // one projection yields q | k | v
    bool gqa;           // fewer key/value heads than query heads, each shared by a group (grouped-query attention)
    bool tied;          // the output head is the token embedding matrix
    bool emb_norm;      // a norm right after the embeddings (BERT)
    bool final_norm;    // a norm between the last block and the head (pre-norm models)
    bool head_transform; // dense + activation + norm before the head (BERT's MLM head)
    bool token_types;   // segment (token type) embeddings are added
    bool lm_head;       // the model predicts tokens (false: an encoder without its head)
    unsigned biases;    // BIAS_* bits
} Arch;

// Sizes of one checkpoint, with its descriptor.
typedef struct ModelConfig {
    Arch a;
    int n_layer, n_head, n_kv_head, head_dim;
    int n_embd, n_ff, n_ctx, n_vocab;
    int n_types; // token types (a.token_types)
} ModelConfig;

// The logical weights. Per-layer ones come after W_LAYER_FIRST.
typedef enum {
    W_TOK_EMBD, W_POS_EMBD, W_TYPE_EMBD, W_EMB_NORM, W_EMB_NORM_B,
    W_OUT_NORM, W_OUT_NORM_B, W_HEAD_DENSE, W_HEAD_DENSE_B, W_HEAD_NORM, W_HEAD_NORM_B,
    W_OUTPUT, W_OUTPUT_B,
    W_LAYER_FIRST,
    W_ATTN_NORM = W_LAYER_FIRST, W_ATTN_NORM_B,
    W_QKV, W_QKV_B, W_Q, W_Q_B, W_K, W_K_B, W_V, W_V_B, W_O, W_O_B,
    W_FFN_NORM, W_FFN_NORM_B, W_UP, W_UP_B, W_GATE, W_GATE_B, W_DOWN, W_DOWN_B,
    W_COUNT
} WeightId;

// How a file layout names the logical weights: printf formats (per-layer ones take the
// layer number), NULL for weights the layout does not have. Names are tried with each
// prefix in turn (the first that finds it wins); a name starting with '/' sits outside every
// prefix ("/lm_head.weight" beside "transformer.h.0..."). Linear weights are stored [out, in] (nn.Linear) unless in_out ([in, out],
// GPT-2's Conv1D); embeddings and the output head are always [rows, n_embd].
typedef struct TensorMap {
    const char *names[W_COUNT];
    const char *prefixes[4]; // "" first when names may come bare; NULL-terminated
    bool in_out;
    // Per-layer buffers that are not parameters, which older files of the layout carry
    // (GPT-2's causal mask [1, 1, n_ctx, n_ctx] of BOOL and its masked_bias scalar): the
    // loader ignores them, the writer of random models can add them.
    const char *mask_buffer, *masked_bias;
    // Other spellings of a name's ending that older files use: {usual, old} pairs, tried when
    // the usual name is absent.
    const char *alt_suffix[2][2];
    // The one-label sequence classifier's head outside the base model's prefix: its weight
    // [1, n_embd] and bias [1] (NULL: "score.weight" without a bias, as GPT-2's and Llama's).
    const char *cls_weight, *cls_bias;
} TensorMap;

// How a logical weight is stored: an embedding table [rows, n_embd] (also the output head),
// a linear layer in -> out (its storage order is the file layout's), or a vector.
typedef enum { WK_EMBED, WK_LINEAR, WK_VEC } WeightKind;

typedef struct WeightSlot {
    WeightId w;
    int layer;      // -1 outside the blocks
    WeightKind kind;
    int64_t rows;   // WK_EMBED: rows of [rows, n_embd]; WK_VEC: length
    int in, out;    // WK_LINEAR
    bool required;  // false: used when present (an untied copy of the head)
    bool gain;      // a norm's gain (random models start it near 1)
} WeightSlot;

// The inverse rotary frequencies inv[rot/2] of a, as HF computes them (float32), scaling included.
void rope_freqs(const Arch *a, int rot, float *inv);

// Reorder the rows of one head's q or k (rows of c values each, the first rot of them rotated)
// from HF's halves (row i pairs with i + rot/2) to adjacent pairs (2i with 2i + 1) when
// to_pairs, or back. tmp holds rot * c values.
void rope_permute_head(float *v, int rot, int64_t c, bool to_pairs, float *tmp);

// Calls fn for every weight a model of config c has, in the order checkpoints store them;
// stops at the first non-zero return and returns it.
int arch_plan(const ModelConfig *c, int (*fn)(void *user, const WeightSlot *s), void *user);

// "gpt2", "layernorm", ... for reports and JSON.
const char *norm_kind_name(NormKind k);
const char *pos_kind_name(PosKind k);
const char *act_kind_name(ActKind k);
const char *weight_name(WeightId w); // "tok_embd", "attn_q", ...

struct WSrc;
struct Gguf;
struct GgufW;

// How llama.cpp's GGUF files hold a family: general.architecture, its tensor names (every
// linear stored [out, in]; a weight without a name there is not in such files: BERT's masked-LM
// head, so GGUF BERT is an encoder without one) and the row order of q and k. The keys are read
// and written alike for every family (config_read_gguf).
typedef struct GgufFamily {
    const char *arch;
    const TensorMap *names;
    RopeStyle rope_style;   // llama.cpp's converter permutes Llama's q/k to pairs, keeps Qwen2's halves
    bool head_copy;         // the head is stored even when tied (llama.cpp's gpt2 requires output.weight)
    const char *rope_freqs; // the tensor of per-frequency rotary divisors (Llama 3.1), or NULL
} GgufFamily;

// A model family: its descriptor defaults, how its config.json reads, and its HF tensor
// names. infer_config is optional: the sizes read off the tensors of a checkpoint that came
// without config.json.
typedef struct Family {
    const char *model_type; // config.json "model_type"
    const char *hf_class;   // transformers' class names start with it: GPT2LMHeadModel, LlamaForCausalLM
    Arch arch;
    const TensorMap *hf;
    int (*read_config)(const Json *cfg, const char *file, ModelConfig *c, Err *e);
    int (*infer_config)(const struct WSrc *ws, ModelConfig *c, Err *e);
    // Writing random models: the family's config.json fields for c (inside the open object),
    // and its small default tokenizer (files written into dir).
    void (*write_config)(const ModelConfig *c, struct JsonW *w);
    int (*write_tokenizer)(const char *dir, Err *e);
    const GgufFamily *gguf; // NULL: no GGUF layout
} Family;

// The family of a config.json model_type, or NULL.
const Family *family_find(const char *model_type);
// The family of a transformers class name (config.json "architectures"): its hf_class followed
// by "For", "Model" or "LMHead" (Qwen2ForCausalLM, BertModel; not Qwen2MoeForCausalLM), or NULL.
const Family *family_find_class(const char *name);
// The family whose GGUF files say general.architecture arch, or NULL.
const Family *family_find_gguf(const char *arch);
// Every family: i from 0 until NULL.
const Family *family_at(int i);
// Fill c->a with f's defaults and zero the sizes.
void config_init(ModelConfig *c, const Family *f);
// Check the sizes against each other (heads divide, kv heads divide heads, fewer kv heads only
// with gqa, ...): 0 or -1.
int config_check(const ModelConfig *c, const char *file, Err *e);

// Read a GGUF's configuration into c for family f (which has a GGUF layout): config_init, then
// {arch}.block_count, .context_length, .embedding_length, .feed_forward_length,
// .attention.head_count(_kv), .attention.key_length, .attention.layer_norm(_rms)_epsilon,
// .attention.causal, .attention.sliding_window, .rope.freq_base, .rope.dimension_count,
// .rope.scaling.*, .vocab_size (else the token embedding's rows), the tokenizer's
// token_type_count; a head and biases as the file's tensors have them; then config_check.
// 0 or -1 with e naming the file and the key.
int config_read_gguf(const Family *f, const struct Gguf *g, ModelConfig *c, Err *e);
// Write c's keys for f (the same keys, general.architecture included).
void config_write_gguf(const Family *f, const ModelConfig *c, struct GgufW *w);

// Reading integer fields of a config.json: the first of keys present must be an integer
// in [lo, hi]. Returns 1 when set, 0 when absent and not required, -1 with e filled.
int config_int(const Json *cfg, const char *const *keys, long long lo, long long hi, bool required, int *out,
               const char *file, Err *e);
