// bert.c - the BERT family (encoders): post-LayerNorm blocks, learned absolute positions plus
// token-type (segment) embeddings and an embedding LayerNorm, erf-GELU, bidirectional
// attention, separate q/k/v as nn.Linear ([out, in]) with biases, and the masked-language-model
// head (dense, GELU, LayerNorm, then the decoder tied to the word embeddings, with a bias).
// sentence-transformers checkpoints drop the "bert." prefix and have no head.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fs.h"
#include "model/arch.h"

static const TensorMap bert_names = {
    .names =
        {
            [W_TOK_EMBD] = "embeddings.word_embeddings.weight",
            [W_POS_EMBD] = "embeddings.position_embeddings.weight",
            [W_TYPE_EMBD] = "embeddings.token_type_embeddings.weight",
            [W_EMB_NORM] = "embeddings.LayerNorm.weight",
            [W_EMB_NORM_B] = "embeddings.LayerNorm.bias",
            [W_Q] = "encoder.layer.%d.attention.self.query.weight",
            [W_Q_B] = "encoder.layer.%d.attention.self.query.bias",
            [W_K] = "encoder.layer.%d.attention.self.key.weight",
            [W_K_B] = "encoder.layer.%d.attention.self.key.bias",
            [W_V] = "encoder.layer.%d.attention.self.value.weight",
            [W_V_B] = "encoder.layer.%d.attention.self.value.bias",
            [W_O] = "encoder.layer.%d.attention.output.dense.weight",
            [W_O_B] = "encoder.layer.%d.attention.output.dense.bias",
            [W_ATTN_NORM] = "encoder.layer.%d.attention.output.LayerNorm.weight",
            [W_ATTN_NORM_B] = "encoder.layer.%d.attention.output.LayerNorm.bias",
            [W_UP] = "encoder.layer.%d.intermediate.dense.weight",
            [W_UP_B] = "encoder.layer.%d.intermediate.dense.bias",
            [W_DOWN] = "encoder.layer.%d.output.dense.weight",
            [W_DOWN_B] = "encoder.layer.%d.output.dense.bias",
            [W_FFN_NORM] = "encoder.layer.%d.output.LayerNorm.weight",
            [W_FFN_NORM_B] = "encoder.layer.%d.output.LayerNorm.bias",
            [W_HEAD_DENSE] = "/cls.predictions.transform.dense.weight",
            [W_HEAD_DENSE_B] = "/cls.predictions.transform.dense.bias",
            [W_HEAD_NORM] = "/cls.predictions.transform.LayerNorm.weight",
            [W_HEAD_NORM_B] = "/cls.predictions.transform.LayerNorm.bias",
            [W_OUTPUT] = "/cls.predictions.decoder.weight",
            [W_OUTPUT_B] = "/cls.predictions.bias",
        },
    .prefixes = {"bert.", "", NULL},
    // files written by old TensorFlow conversions name LayerNorm's parameters gamma and beta
    .alt_suffix = {{"LayerNorm.weight", "LayerNorm.gamma"}, {"LayerNorm.bias", "LayerNorm.beta"}},
    // BertForSequenceClassification's head (it reads the pooler's output; see tmodel_save_reward)
    .cls_weight = "classifier.weight",
    .cls_bias = "classifier.bias",
};

// llama.cpp's names (convert_hf_to_gguf.py BertModel): the encoder only, without the
// masked-LM head or the pooler.
static const TensorMap bert_gguf_names = {
    .names =
        {
            [W_TOK_EMBD] = "token_embd.weight",
            [W_POS_EMBD] = "position_embd.weight",
            [W_TYPE_EMBD] = "token_types.weight",
            [W_EMB_NORM] = "token_embd_norm.weight",
            [W_EMB_NORM_B] = "token_embd_norm.bias",
            [W_Q] = "blk.%d.attn_q.weight",
            [W_Q_B] = "blk.%d.attn_q.bias",
            [W_K] = "blk.%d.attn_k.weight",
            [W_K_B] = "blk.%d.attn_k.bias",
            [W_V] = "blk.%d.attn_v.weight",
            [W_V_B] = "blk.%d.attn_v.bias",
            [W_O] = "blk.%d.attn_output.weight",
            [W_O_B] = "blk.%d.attn_output.bias",
            [W_ATTN_NORM] = "blk.%d.attn_output_norm.weight",
            [W_ATTN_NORM_B] = "blk.%d.attn_output_norm.bias",
            [W_UP] = "blk.%d.ffn_up.weight",
            [W_UP_B] = "blk.%d.ffn_up.bias",
            [W_DOWN] = "blk.%d.ffn_down.weight",
            [W_DOWN_B] = "blk.%d.ffn_down.bias",
            [W_FFN_NORM] = "blk.%d.layer_output_norm.weight",
            [W_FFN_NORM_B] = "blk.%d.layer_output_norm.bias",
        },
    .prefixes = {"", NULL},
};

static const GgufFamily bert_gguf = {.arch = "bert", .names = &bert_gguf_names};

// The activations BERT configs name: "gelu" is erf-GELU; the tanh approximations are
// "gelu_new", "gelu_pytorch_tanh" and "gelu_fast".
static int read_act(const char *act, const char *file, ActKind *out, Err *e) {
    if (!strcmp(act, "gelu")) *out = ACT_GELU_ERF;
    else if (!strcmp(act, "gelu_new") || !strcmp(act, "gelu_pytorch_tanh") || !strcmp(act, "gelu_fast"))
        *out = ACT_GELU_TANH;
    else return err_set(e, "'%s': hidden_act \"%.40s\" is not supported (gelu and gelu_new are)", file, act);
    return 0;
}

static int bert_read_config(const Json *cfg, const char *file, ModelConfig *c, Err *e) {
    static const char *const k_layer[] = {"num_hidden_layers", NULL};
    static const char *const k_head[] = {"num_attention_heads", NULL};
    static const char *const k_embd[] = {"hidden_size", NULL};
    static const char *const k_ff[] = {"intermediate_size", NULL};
    static const char *const k_ctx[] = {"max_position_embeddings", NULL};
    static const char *const k_vocab[] = {"vocab_size", NULL};
    static const char *const k_types[] = {"type_vocab_size", NULL};
    Arch *a = &c->a;
    if (config_int(cfg, k_layer, 1, 1000, true, &c->n_layer, file, e) < 0 ||
        config_int(cfg, k_head, 1, 1024, true, &c->n_head, file, e) < 0 ||
        config_int(cfg, k_embd, 1, 1 << 16, true, &c->n_embd, file, e) < 0 ||
        config_int(cfg, k_ff, 1, 1 << 20, true, &c->n_ff, file, e) < 0 ||
        config_int(cfg, k_ctx, 1, 1 << 20, true, &c->n_ctx, file, e) < 0 ||
        config_int(cfg, k_vocab, 1, 1 << 24, true, &c->n_vocab, file, e) < 0)
        return -1;
    c->n_types = 2;
    if (config_int(cfg, k_types, 1, 1 << 16, false, &c->n_types, file, e) < 0) return -1;
    if (c->n_embd % c->n_head)
        return err_set(e, "'%s': hidden_size %d is not a multiple of num_attention_heads %d", file, c->n_embd, c->n_head);
    c->n_kv_head = c->n_head;
    c->head_dim = c->n_embd / c->n_head;
    a->norm_eps = (float)json_num_or(cfg, "layer_norm_eps", 1e-12);
    a->tied = json_bool_or(cfg, "tie_word_embeddings", true);
    if (read_act(json_str_or(cfg, "hidden_act", "gelu"), file, &a->act, e)) return -1;
    // a BERT made a decoder (a causal mask, cross-attention) is no encoder qkv runs (it ran
    // bidirectional, silently)
    if (json_bool_or(cfg, "is_decoder", false))
        return err_set(e, "'%s': is_decoder (a BERT with a causal mask) is not supported", file);
    if (json_bool_or(cfg, "add_cross_attention", false))
        return err_set(e, "'%s': add_cross_attention is not supported", file);
    const char *pet = json_str_or(cfg, "position_embedding_type", "absolute");
    if (strcmp(pet, "absolute"))
        return err_set(e, "'%s': position_embedding_type \"%.40s\" is not supported (absolute is)", file, pet);
    // the masked-LM head comes with BertForMaskedLM / BertForPreTraining; BertModel (and
    // sentence-transformers) has none
    const Json *archs = json_get(cfg, "architectures");
    if (archs && archs->type == JSON_ARR) {
        a->lm_head = false;
        for (size_t i = 0; i < archs->len; i++) {
            const char *s = archs->items[i].type == JSON_STR ? archs->items[i].str : "";
            if (strstr(s, "ForMaskedLM") || strstr(s, "ForPreTraining")) a->lm_head = true;
        }
    }
    return 0;
}

static void bert_write_config(const ModelConfig *c, JsonW *w) {
    jw_key(w, "architectures");
    jw_arr(w);
    jw_str(w, c->a.lm_head ? "BertForMaskedLM" : "BertModel");
    jw_arr_end(w);
    jw_kstr(w, "model_type", "bert");
    jw_kint(w, "num_hidden_layers", c->n_layer);
    jw_kint(w, "num_attention_heads", c->n_head);
    jw_kint(w, "hidden_size", c->n_embd);
    jw_kint(w, "intermediate_size", c->n_ff);
    jw_kint(w, "max_position_embeddings", c->n_ctx);
    jw_kint(w, "type_vocab_size", c->n_types);
    jw_kint(w, "vocab_size", c->n_vocab);
    jw_knum(w, "layer_norm_eps", c->a.norm_eps);
    jw_kstr(w, "hidden_act", c->a.act == ACT_GELU_TANH ? "gelu_new" : "gelu");
    jw_kstr(w, "position_embedding_type", "absolute");
    jw_kbool(w, "tie_word_embeddings", c->a.tied);
    jw_kint(w, "pad_token_id", 0);
}

// A small WordPiece vocabulary: the special tokens, then every printable ASCII character
// alone and as a continuation, then a few common words.
static int bert_write_tokenizer(const char *dir, Err *e) {
    static const char *const words[] = {"the", "of", "and", "to", "in", "is", "was", "he", "she", "it", "capital",
                                        "paris", "france", "city", "a", "cat", "dog", "sat", "on", "mat", NULL};
    Buf b = {0};
    buf_puts(&b, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    for (int pass = 0; pass < 2; pass++)
        for (int c = '!'; c <= '~'; c++) {
            if (c >= 'A' && c <= 'Z') continue; // lower-cased away
            buf_printf(&b, "%s%c\n", pass ? "##" : "", c);
        }
    for (int i = 0; words[i]; i++) buf_printf(&b, "%s\n", words[i]);
    char *p = fs_join(dir, "vocab.txt");
    int rc = fs_write_atomic(p, b.data, b.len, e);
    free(p);
    buf_free(&b);
    return rc;
}

const Family family_bert = {
    .model_type = "bert",
    .hf_class = "Bert",
    .arch =
        {
            .name = "bert",
            .norm = NORM_LAYER,
            .norm_eps = 1e-12f,
            .pos = POS_LEARNED,
            .act = ACT_GELU_ERF,
            .post_norm = true,
            .causal = false,
            .fused_qkv = false,
            .tied = true,
            .emb_norm = true,
            .head_transform = true,
            .token_types = true,
            .lm_head = true,
            .biases = BIAS_QKV | BIAS_O | BIAS_FFN | BIAS_NORM | BIAS_HEAD,
        },
    .hf = &bert_names,
    .read_config = bert_read_config,
    .write_config = bert_write_config,
    .write_tokenizer = bert_write_tokenizer,
    .gguf = &bert_gguf,
};
