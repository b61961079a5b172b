// gpt2.c - the GPT-2 family: pre-LayerNorm blocks, learned absolute positions, tanh-GELU,
// fused q|k|v in Conv1D layout ([in, out]), biases everywhere, head tied to wte.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fs.h"
#include "base/utf8.h"
#include "model/arch.h"
#include "model/wsrc.h"
#include "tok/tokenizer.h"

static const TensorMap gpt2_names = {
    .names =
        {
            [W_TOK_EMBD] = "wte.weight",
            [W_POS_EMBD] = "wpe.weight",
            [W_OUT_NORM] = "ln_f.weight",
            [W_OUT_NORM_B] = "ln_f.bias",
            [W_OUTPUT] = "/lm_head.weight", // untied checkpoints, outside "transformer."
            [W_ATTN_NORM] = "h.%d.ln_1.weight",
            [W_ATTN_NORM_B] = "h.%d.ln_1.bias",
            [W_QKV] = "h.%d.attn.c_attn.weight",
            [W_QKV_B] = "h.%d.attn.c_attn.bias",
            [W_O] = "h.%d.attn.c_proj.weight",
            [W_O_B] = "h.%d.attn.c_proj.bias",
            [W_FFN_NORM] = "h.%d.ln_2.weight",
            [W_FFN_NORM_B] = "h.%d.ln_2.bias",
            [W_UP] = "h.%d.mlp.c_fc.weight",
            [W_UP_B] = "h.%d.mlp.c_fc.bias",
            [W_DOWN] = "h.%d.mlp.c_proj.weight",
            [W_DOWN_B] = "h.%d.mlp.c_proj.bias",
        },
    .prefixes = {"", "transformer.", NULL},
    .in_out = true,
    .mask_buffer = "h.%d.attn.bias",
    .masked_bias = "h.%d.attn.masked_bias",
};

// llama.cpp's names (convert_hf_to_gguf.py GPT2Model): the Conv1D weights transposed to
// [out, in], the head stored even though tied.
static const TensorMap gpt2_gguf_names = {
    .names =
        {
            [W_TOK_EMBD] = "token_embd.weight",
            [W_POS_EMBD] = "position_embd.weight",
            [W_OUT_NORM] = "output_norm.weight",
            [W_OUT_NORM_B] = "output_norm.bias",
            [W_OUTPUT] = "output.weight",
            [W_ATTN_NORM] = "blk.%d.attn_norm.weight",
            [W_ATTN_NORM_B] = "blk.%d.attn_norm.bias",
            [W_QKV] = "blk.%d.attn_qkv.weight",
            [W_QKV_B] = "blk.%d.attn_qkv.bias",
            [W_O] = "blk.%d.attn_output.weight",
            [W_O_B] = "blk.%d.attn_output.bias",
            [W_FFN_NORM] = "blk.%d.ffn_norm.weight",
            [W_FFN_NORM_B] = "blk.%d.ffn_norm.bias",
            [W_UP] = "blk.%d.ffn_up.weight",
            [W_UP_B] = "blk.%d.ffn_up.bias",
            [W_DOWN] = "blk.%d.ffn_down.weight",
            [W_DOWN_B] = "blk.%d.ffn_down.bias",
        },
    .prefixes = {"", NULL},
};

static const GgufFamily gpt2_gguf = {.arch = "gpt2", .names = &gpt2_gguf_names, .head_copy = true};

static int gpt2_read_config(const Json *cfg, const char *file, ModelConfig *c, Err *e) {
    static const char *const k_layer[] = {"n_layer", "num_hidden_layers", NULL};
    static const char *const k_head[] = {"n_head", "num_attention_heads", NULL};
    static const char *const k_embd[] = {"n_embd", "hidden_size", NULL};
    static const char *const k_ctx[] = {"n_positions", "n_ctx", "max_position_embeddings", NULL};
    static const char *const k_vocab[] = {"vocab_size", NULL};
    static const char *const k_inner[] = {"n_inner", NULL};
    if (config_int(cfg, k_layer, 1, 1000, true, &c->n_layer, file, e) < 0 ||
        config_int(cfg, k_head, 1, 1024, true, &c->n_head, file, e) < 0 ||
        config_int(cfg, k_embd, 1, 1 << 16, true, &c->n_embd, file, e) < 0 ||
        config_int(cfg, k_ctx, 1, 1 << 20, true, &c->n_ctx, file, e) < 0 ||
        config_int(cfg, k_vocab, 1, 1 << 24, true, &c->n_vocab, file, e) < 0)
        return -1;
    c->n_ff = 4 * c->n_embd;
    if (config_int(cfg, k_inner, 1, 1 << 20, false, &c->n_ff, file, e) < 0) return -1;
    if (c->n_embd % c->n_head)
        return err_set(e, "'%s': n_embd %d is not a multiple of n_head %d", file, c->n_embd, c->n_head);
    c->n_kv_head = c->n_head;
    c->head_dim = c->n_embd / c->n_head;
    c->a.norm_eps = (float)json_num_or(cfg, "layer_norm_epsilon", 1e-5);
    c->a.tied = json_bool_or(cfg, "tie_word_embeddings", true);
    const char *act = json_str_or(cfg, "activation_function", "gelu_new");
    if (strcmp(act, "gelu_new") && strcmp(act, "gelu_pytorch_tanh") && strcmp(act, "gelu_fast"))
        return err_set(e, "'%s': activation_function \"%.40s\" is not supported (gelu_new is)", file, act);
    // attention scaled otherwise than by 1/sqrt(head size): refused, not computed the usual way
    if (!json_bool_or(cfg, "scale_attn_weights", true))
        return err_set(e, "'%s': scale_attn_weights false (attention scores not scaled) is not supported", file);
    if (json_bool_or(cfg, "scale_attn_by_inverse_layer_idx", false))
        return err_set(e, "'%s': scale_attn_by_inverse_layer_idx (scores also divided by the layer's number) is not "
                          "supported",
                       file);
    return 0;
}

// Without config.json (a lone .safetensors): the shape read off the tensors, with GPT-2's
// head size of 64.
static int gpt2_infer_config(const WSrc *ws, ModelConfig *c, Err *e) {
    const char *prefix = wsrc_find(ws, "wte.weight") ? "" : "transformer.";
    char name[96];
    snprintf(name, sizeof name, "%swte.weight", prefix);
    const WTensor *wte = wsrc_find(ws, name);
    snprintf(name, sizeof name, "%swpe.weight", prefix);
    const WTensor *wpe = wsrc_find(ws, name);
    if (!wte || !wpe || wte->t.ndim != 2 || wpe->t.ndim != 2)
        return err_set(e, "no config.json and the tensors are not GPT-2's (wte/wpe missing)");
    c->n_vocab = (int)wte->t.shape[0];
    c->n_embd = (int)wte->t.shape[1];
    c->n_ctx = (int)wpe->t.shape[0];
    c->n_layer = 0;
    for (;;) {
        snprintf(name, sizeof name, "%sh.%d.ln_1.weight", prefix, c->n_layer);
        if (c->n_layer >= 1000 || !wsrc_find(ws, name)) break;
        c->n_layer++;
    }
    if (!c->n_layer || c->n_embd % 64) return err_set(e, "no config.json and the shape cannot be inferred");
    c->n_head = c->n_kv_head = c->n_embd / 64;
    c->head_dim = 64;
    c->n_ff = 4 * c->n_embd;
    return 0;
}

static void gpt2_write_config(const ModelConfig *c, JsonW *w) {
    jw_key(w, "architectures");
    jw_arr(w);
    jw_str(w, "GPT2LMHeadModel");
    jw_arr_end(w);
    jw_kstr(w, "model_type", "gpt2");
    jw_kint(w, "n_layer", c->n_layer);
    jw_kint(w, "n_head", c->n_head);
    jw_kint(w, "n_embd", c->n_embd);
    if (c->n_ff != 4 * c->n_embd) jw_kint(w, "n_inner", c->n_ff);
    jw_kint(w, "n_positions", c->n_ctx);
    jw_kint(w, "n_ctx", c->n_ctx);
    jw_kint(w, "vocab_size", c->n_vocab);
    jw_knum(w, "layer_norm_epsilon", c->a.norm_eps);
    jw_kstr(w, "activation_function", "gelu_new");
    jw_kbool(w, "tie_word_embeddings", c->a.tied);
}

// A byte-level vocabulary: ids 0..255 in GPT-2's order (bytes that stand for themselves
// first, then the rest), then <|endoftext|>; no merges.
static int gpt2_write_tokenizer(const char *dir, Err *e) {
    Buf vocab = {0};
    JsonW w;
    jw_init(&w, &vocab);
    jw_obj(&w);
    int id = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++) {
            char ch[5] = {0}, self[5] = {0};
            int n = tok_gpt2_byte_char((unsigned char)b, ch);
            utf8_encode((uint32_t)b, self);
            bool is_self = (int)strlen(self) == n && !memcmp(ch, self, (size_t)n) && b != 0;
            if (is_self != (pass == 0)) continue;
            jw_key(&w, ch);
            jw_int(&w, id++);
        }
    jw_kint(&w, "<|endoftext|>", id);
    jw_obj_end(&w);
    char *vp = fs_join(dir, "vocab.json"), *mp = fs_join(dir, "merges.txt");
    static const char merges[] = "#version: 0.2\n";
    int rc = fs_write_atomic(vp, vocab.data, vocab.len, e) || fs_write_atomic(mp, merges, sizeof merges - 1, e) ? -1 : 0;
    free(vp);
    free(mp);
    buf_free(&vocab);
    return rc;
}

const Family family_gpt2 = {
    .model_type = "gpt2",
    .hf_class = "GPT2",
    .arch =
        {
            .name = "gpt2",
            .norm = NORM_LAYER,
            .norm_eps = 1e-5f,
            .pos = POS_LEARNED,
            .act = ACT_GELU_TANH,
            .causal = true,
            .fused_qkv = true,
            .tied = true,
            .final_norm = true,
            .lm_head = true,
            .biases = BIAS_QKV | BIAS_O | BIAS_FFN | BIAS_NORM,
        },
    .hf = &gpt2_names,
    .read_config = gpt2_read_config,
    .infer_config = gpt2_infer_config,
    .write_config = gpt2_write_config,
    .write_tokenizer = gpt2_write_tokenizer,
    .gguf = &gpt2_gguf,
};
