// llama.c - the Llama family and its close relatives: pre-RMSNorm blocks, rotary positions
// (HF's rotate-half pairing), SwiGLU, grouped-query attention, separate q/k/v projections
// stored as nn.Linear ([out, in]). Mistral adds sliding-window attention, Qwen2 biases on
// q/k/v; SmolLM checkpoints are "llama".
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fs.h"
#include "model/arch.h"
#include "tok/tokenizer.h"

static const TensorMap llama_names = {
    .names =
        {
            [W_TOK_EMBD] = "embed_tokens.weight",
            [W_OUT_NORM] = "norm.weight",
            [W_OUTPUT] = "/lm_head.weight",
            [W_ATTN_NORM] = "layers.%d.input_layernorm.weight",
            [W_Q] = "layers.%d.self_attn.q_proj.weight",
            [W_Q_B] = "layers.%d.self_attn.q_proj.bias",
            [W_K] = "layers.%d.self_attn.k_proj.weight",
            [W_K_B] = "layers.%d.self_attn.k_proj.bias",
            [W_V] = "layers.%d.self_attn.v_proj.weight",
            [W_V_B] = "layers.%d.self_attn.v_proj.bias",
            [W_O] = "layers.%d.self_attn.o_proj.weight",
            [W_O_B] = "layers.%d.self_attn.o_proj.bias",
            [W_FFN_NORM] = "layers.%d.post_attention_layernorm.weight",
            [W_GATE] = "layers.%d.mlp.gate_proj.weight",
            [W_GATE_B] = "layers.%d.mlp.gate_proj.bias",
            [W_UP] = "layers.%d.mlp.up_proj.weight",
            [W_UP_B] = "layers.%d.mlp.up_proj.bias",
            [W_DOWN] = "layers.%d.mlp.down_proj.weight",
            [W_DOWN_B] = "layers.%d.mlp.down_proj.bias",
        },
    // LlamaForCausalLM files say "model."; a bare LlamaModel's do not
    .prefixes = {"model.", "", NULL},
};

// llama.cpp's names (convert_hf_to_gguf.py LlamaModel, Qwen2Model): Llama's q and k rows
// permuted so that rotary pairs are adjacent, Qwen2's kept in HF's order; no head when tied;
// Llama 3.1's frequency scaling as a tensor of divisors.
static const TensorMap llama_gguf_names = {
    .names =
        {
            [W_TOK_EMBD] = "token_embd.weight",
            [W_OUT_NORM] = "output_norm.weight",
            [W_OUTPUT] = "output.weight",
            [W_ATTN_NORM] = "blk.%d.attn_norm.weight",
            [W_Q] = "blk.%d.attn_q.weight",
            [W_Q_B] = "blk.%d.attn_q.bias",
            [W_K] = "blk.%d.attn_k.weight",
            [W_K_B] = "blk.%d.attn_k.bias",
            [W_V] = "blk.%d.attn_v.weight",
            [W_V_B] = "blk.%d.attn_v.bias",
            [W_O] = "blk.%d.attn_output.weight",
            [W_O_B] = "blk.%d.attn_output.bias",
            [W_FFN_NORM] = "blk.%d.ffn_norm.weight",
            [W_GATE] = "blk.%d.ffn_gate.weight",
            [W_GATE_B] = "blk.%d.ffn_gate.bias",
            [W_UP] = "blk.%d.ffn_up.weight",
            [W_UP_B] = "blk.%d.ffn_up.bias",
            [W_DOWN] = "blk.%d.ffn_down.weight",
            [W_DOWN_B] = "blk.%d.ffn_down.bias",
        },
    .prefixes = {"", NULL},
};

static const GgufFamily llama_gguf = {
    .arch = "llama", .names = &llama_gguf_names, .rope_style = ROPE_PAIRS, .rope_freqs = "rope_freqs.weight"};
static const GgufFamily qwen2_gguf = {
    .arch = "qwen2", .names = &llama_gguf_names, .rope_style = ROPE_HALF, .rope_freqs = "rope_freqs.weight"};

// rope_scaling: none, linear and llama3 change the frequencies; dynamic (NTK) equals none
// within max_position_embeddings, which qkv never exceeds; the others are refused.
// what names it in messages: "rope_scaling", or transformers 5's "rope_parameters"
static int read_rope_scaling(const Json *rs, const char *what, const char *file, Arch *a, Err *e) {
    if (!rs || rs->type == JSON_NULL) return 0;
    if (rs->type != JSON_OBJ) return err_set(e, "'%s': %s is not an object", file, what);
    const char *type = json_str_or(rs, "rope_type", json_str_or(rs, "type", NULL));
    const Json *fj = json_get(rs, "factor");
    if (!type) { // (transformers refuses it; a factor without a kind was dropped, silently)
        if (fj) return err_set(e, "'%s': %s has a factor but no rope_type", file, what);
        type = "default";
    }
    if (!strcmp(type, "default") || !strcmp(type, "dynamic")) return 0;
    if (!fj || fj->type != JSON_NUM) return err_set(e, "'%s': %s %s without a factor", file, what, type);
    double f = fj->num;
    if (!(f >= 1 && f <= 1024)) return err_set(e, "'%s': %s factor %g is out of range", file, what, f);
    a->rope_factor = (float)f;
    if (!strcmp(type, "linear")) {
        a->rope_scaling = ROPE_SCALE_LINEAR;
        return 0;
    }
    if (!strcmp(type, "llama3")) {
        a->rope_scaling = ROPE_SCALE_LLAMA3;
        a->rope_low_freq = (float)json_num_or(rs, "low_freq_factor", 1.0);
        a->rope_high_freq = (float)json_num_or(rs, "high_freq_factor", 4.0);
        long long orig;
        if (!json_int_in(json_get(rs, "original_max_position_embeddings"), 1, 1 << 24, &orig))
            return err_set(e, "'%s': %s llama3 without original_max_position_embeddings", file, what);
        a->rope_orig_ctx = (int)orig;
        if (!(a->rope_high_freq > a->rope_low_freq && a->rope_low_freq > 0))
            return err_set(e, "'%s': %s llama3 needs high_freq_factor > low_freq_factor > 0", file, what);
        return 0;
    }
    return err_set(e, "'%s': %s type \"%.20s\" is not supported (linear, dynamic and llama3 are)", file, what, type);
}

static int llama_read_config(const Json *cfg, const char *file, ModelConfig *c, Err *e) {
    static const char *const k_layer[] = {"num_hidden_layers", NULL};
    static const char *const k_head[] = {"num_attention_heads", NULL};
    static const char *const k_kv[] = {"num_key_value_heads", NULL};
    static const char *const k_embd[] = {"hidden_size", NULL};
    static const char *const k_ff[] = {"intermediate_size", NULL};
    static const char *const k_ctx[] = {"max_position_embeddings", NULL};
    static const char *const k_vocab[] = {"vocab_size", NULL};
    static const char *const k_hd[] = {"head_dim", NULL};
    static const char *const k_win[] = {"sliding_window", NULL};
    Arch *a = &c->a;
    if (config_int(cfg, k_layer, 1, 1000, true, &c->n_layer, file, e) < 0 ||
        config_int(cfg, k_head, 1, 1024, true, &c->n_head, file, e) < 0 ||
        config_int(cfg, k_embd, 1, 1 << 16, true, &c->n_embd, file, e) < 0 ||
        config_int(cfg, k_ff, 1, 1 << 20, true, &c->n_ff, file, e) < 0 ||
        config_int(cfg, k_ctx, 1, 1 << 24, true, &c->n_ctx, file, e) < 0 ||
        config_int(cfg, k_vocab, 1, 1 << 24, true, &c->n_vocab, file, e) < 0)
        return -1;
    c->n_kv_head = c->n_head;
    if (config_int(cfg, k_kv, 1, 1024, false, &c->n_kv_head, file, e) < 0) return -1;
    if (c->n_embd % c->n_head && !json_get(cfg, "head_dim"))
        return err_set(e, "'%s': hidden_size %d is not a multiple of num_attention_heads %d", file, c->n_embd, c->n_head);
    c->head_dim = c->n_embd / c->n_head;
    if (config_int(cfg, k_hd, 1, 1024, false, &c->head_dim, file, e) < 0) return -1;
    a->norm_eps = (float)json_num_or(cfg, "rms_norm_eps", 1e-6);
    a->rope_theta = (float)json_num_or(cfg, "rope_theta", 10000.0);
    // transformers 5 writes the rotary settings into one object, rope_parameters: {rope_theta,
    // rope_type, factor, ...} (they were not read: theta 10000 and no scaling, silently); a model
    // whose layer kinds each have their own is refused
    const Json *rp = json_get(cfg, "rope_parameters");
    if (rp && rp->type != JSON_NULL) {
        if (rp->type != JSON_OBJ) return err_set(e, "'%s': rope_parameters is not an object", file);
        const Json *th = json_get(rp, "rope_theta");
        if (!th) return err_set(e, "'%s': rope_parameters without rope_theta (one per kind of layer is not supported)", file);
        if (th->type != JSON_NUM) return err_set(e, "'%s': rope_parameters' rope_theta is not a number", file);
        a->rope_theta = (float)th->num;
    }
    a->tied = json_bool_or(cfg, "tie_word_embeddings", a->tied);
    if (json_bool_or(cfg, "attention_bias", false)) a->biases |= BIAS_QKV | BIAS_O;
    if (json_bool_or(cfg, "mlp_bias", false)) a->biases |= BIAS_FFN;
    const char *act = json_str_or(cfg, "hidden_act", "silu");
    if (strcmp(act, "silu") && strcmp(act, "swish"))
        return err_set(e, "'%s': hidden_act \"%.40s\" is not supported (silu is)", file, act);
    // Qwen2 says whether its sliding_window is used; Mistral's applies when it is set
    const Json *use = json_get(cfg, "use_sliding_window");
    if (use && use->type == JSON_BOOL && use->b)
        return err_set(e, "'%s': use_sliding_window (per-layer sliding windows) is not supported", file);
    if (!use && config_int(cfg, k_win, 1, 1 << 24, false, &a->window, file, e) < 0) return -1;
    if (a->window >= c->n_ctx) a->window = 0; // a window as long as the context changes nothing
    const Json *rs = json_get(cfg, "rope_scaling");
    if (rs && rs->type != JSON_NULL && rp && rp->type != JSON_NULL)
        return err_set(e, "'%s': both rope_scaling and rope_parameters: give one", file);
    return rs && rs->type != JSON_NULL ? read_rope_scaling(rs, "rope_scaling", file, a, e)
                                       : read_rope_scaling(rp, "rope_parameters", file, a, e);
}

static void llama_write_config(const ModelConfig *c, JsonW *w) {
    static const char *const archs[][2] = {
        {"llama", "LlamaForCausalLM"}, {"mistral", "MistralForCausalLM"}, {"qwen2", "Qwen2ForCausalLM"}};
    const char *arch = archs[0][1];
    for (size_t i = 0; i < sizeof archs / sizeof *archs; i++)
        if (!strcmp(archs[i][0], c->a.name)) arch = archs[i][1];
    jw_key(w, "architectures");
    jw_arr(w);
    jw_str(w, arch);
    jw_arr_end(w);
    jw_kstr(w, "model_type", c->a.name);
    jw_kint(w, "num_hidden_layers", c->n_layer);
    jw_kint(w, "num_attention_heads", c->n_head);
    jw_kint(w, "num_key_value_heads", c->n_kv_head);
    jw_kint(w, "hidden_size", c->n_embd);
    jw_kint(w, "head_dim", c->head_dim);
    jw_kint(w, "intermediate_size", c->n_ff);
    jw_kint(w, "max_position_embeddings", c->n_ctx);
    jw_kint(w, "vocab_size", c->n_vocab);
    jw_knum(w, "rms_norm_eps", c->a.norm_eps);
    jw_knum(w, "rope_theta", c->a.rope_theta);
    jw_kstr(w, "hidden_act", "silu");
    jw_kbool(w, "tie_word_embeddings", c->a.tied);
    jw_kbool(w, "attention_bias", false);
    if (!strcmp(c->a.name, "qwen2")) jw_kbool(w, "use_sliding_window", false);
}

// tokenizer_config.json naming <s> and </s> the beginning and end of text (HF and qkv read them there).
static int llama_write_tokenizer_config(const char *dir, Err *e) {
    static const char text[] = "{\"tokenizer_class\": \"PreTrainedTokenizerFast\", \"bos_token\": \"<s>\", "
                               "\"eos_token\": \"</s>\", \"add_bos_token\": false}\n";
    char *p = fs_join(dir, "tokenizer_config.json");
    int rc = fs_write_atomic(p, text, sizeof text - 1, e);
    free(p);
    return rc;
}

// A byte-level BPE tokenizer.json (the 256 byte tokens in GPT-2's order, no merges) with
// <s> and </s> as added special tokens, and its tokenizer_config.json.
static int llama_write_tokenizer(const char *dir, Err *e) {
    Buf b = {0};
    JsonW w;
    jw_init(&w, &b);
    jw_obj(&w);
    jw_kstr(&w, "version", "1.0");
    jw_key(&w, "added_tokens");
    jw_arr(&w);
    for (int i = 0; i < 2; i++) {
        jw_obj(&w);
        jw_kint(&w, "id", 256 + i);
        jw_kstr(&w, "content", i ? "</s>" : "<s>");
        jw_kbool(&w, "single_word", false);
        jw_kbool(&w, "lstrip", false);
        jw_kbool(&w, "rstrip", false);
        jw_kbool(&w, "normalized", false);
        jw_kbool(&w, "special", true);
        jw_obj_end(&w);
    }
    jw_arr_end(&w);
    jw_key(&w, "normalizer");
    jw_null(&w);
    jw_key(&w, "pre_tokenizer");
    jw_obj(&w);
    jw_kstr(&w, "type", "ByteLevel");
    jw_kbool(&w, "add_prefix_space", false);
    jw_kbool(&w, "trim_offsets", true);
    jw_kbool(&w, "use_regex", true);
    jw_obj_end(&w);
    jw_key(&w, "decoder"); // every field: HF tokenizers refuses a ByteLevel decoder without them
    jw_obj(&w);
    jw_kstr(&w, "type", "ByteLevel");
    jw_kbool(&w, "add_prefix_space", false);
    jw_kbool(&w, "trim_offsets", true);
    jw_kbool(&w, "use_regex", true);
    jw_obj_end(&w);
    jw_key(&w, "model");
    jw_obj(&w);
    jw_kstr(&w, "type", "BPE");
    jw_key(&w, "vocab");
    jw_obj(&w);
    int id = 0;
    for (int b8 = 0; b8 < 256; b8++) { // ids in byte order
        char ch[5] = {0};
        tok_gpt2_byte_char((unsigned char)b8, ch);
        jw_kint(&w, ch, id++);
    }
    jw_kint(&w, "<s>", 256);
    jw_kint(&w, "</s>", 257);
    jw_obj_end(&w);
    jw_key(&w, "merges");
    jw_arr(&w);
    jw_arr_end(&w);
    jw_obj_end(&w);
    jw_obj_end(&w);
    char *p = fs_join(dir, "tokenizer.json");
    int rc = fs_write_atomic(p, b.data, b.len, e);
    free(p);
    buf_free(&b);
    return rc ? rc : llama_write_tokenizer_config(dir, e);
}

#define LLAMA_ARCH(nm, bias)                                                                                     \
    {                                                                                                            \
        .name = nm, .norm = NORM_RMS, .norm_eps = 1e-6f, .pos = POS_ROTARY, .rope_theta = 10000.0f,            \
        .rope_style = ROPE_HALF, .act = ACT_SWIGLU, .causal = true, .gqa = true, .tied = false,                \
        .final_norm = true, .lm_head = true, .biases = bias,                                                   \
    }

const Family family_llama = {
    .model_type = "llama",
    .hf_class = "Llama",
    .arch = LLAMA_ARCH("llama", 0),
    .hf = &llama_names,
    .read_config = llama_read_config,
    .write_config = llama_write_config,
    .write_tokenizer = llama_write_tokenizer,
    .gguf = &llama_gguf,
};

// llama.cpp converts Mistral as "llama" (GGUF files of it load as Llama)
const Family family_mistral = {
    .model_type = "mistral",
    .hf_class = "Mistral",
    .arch = LLAMA_ARCH("mistral", 0),
    .hf = &llama_names,
    .read_config = llama_read_config,
    .write_config = llama_write_config,
    .write_tokenizer = llama_write_tokenizer,
    .gguf = &llama_gguf,
};

const Family family_qwen2 = {
    .model_type = "qwen2",
    .hf_class = "Qwen2",
    .arch = LLAMA_ARCH("qwen2", BIAS_QKV),
    .hf = &llama_names,
    .read_config = llama_read_config,
    .write_config = llama_write_config,
    .write_tokenizer = llama_write_tokenizer,
    .gguf = &qwen2_gguf,
};
