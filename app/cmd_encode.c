// cmd_encode.c - the commands of encoders (BERT and sentence-transformers): fill (the
// masked-language model's fillers for each [MASK]), embed (a text's vector) and similarity
// (cosine between texts, a matrix for several, shown as a heatmap).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/embed.h"
#include "base/mem.h"
#include "cmdutil.h"
#include "commands.h"
#include "eval/sample.h"

// ---------------------------------------------------------------------------------------
// fill

static int cmd_fill(App *app, const Args *a, Out *out) {
    const Model *m = app->model;
    const Tokenizer *t = m->tok;
    Err e = {0};
    long long top = 5;
    if (args_int(a, "top", 1, 100, &top, &e) < 0) return out_error(out, "%s", e.msg);
    if (m->cfg.a.causal)
        return out_error(out, "fill: %s is a causal model: it predicts the next token, not masked ones (use logits or "
                              "generate); fill needs a masked-language model such as BERT",
                         m->name);
    if (!m->cfg.a.lm_head)
        return out_error(out, "fill: %s has no masked-language-model head (an embedding model: use embed or similarity)",
                         m->name);
    int mask = tok_mask(t);
    if (mask < 0) return out_error(out, "fill: the tokenizer of %s has no mask token", m->name);
    const Arg *text = args_pos(a, 0);
    IntVec ids = {0};
    if (tok_encode(t, text->val, text->len, TOK_ADD_SPECIAL | TOK_PARSE_SPECIAL, &ids, &e) < 0) {
        iv_free(&ids);
        return out_error(out, "fill: %s", e.msg);
    }
    int n_mask = 0;
    for (int i = 0; i < ids.n; i++) n_mask += ids.v[i] == mask;
    Buf mname = {0};
    token_piece(t, mask, &mname);
    if (!n_mask) {
        out_error(out, "fill: no %s in the text (write %s where a word is missing)", mname.data, mname.data);
        buf_free(&mname);
        iv_free(&ids);
        return -1;
    }
    buf_free(&mname);
    int V = m->cfg.n_vocab, T = ids.n;
    Ctx *c = app_ctx(app, &e);
    float *lg = c ? malloc(mem_mul(sizeof(float) * (size_t)T, (size_t)V)) : NULL;
    float *lp = xmalloc(sizeof(float) * (size_t)V);
    int *idx = xmalloc(sizeof(int) * (size_t)top);
    int rc = 0;
    if (!c) rc = out_error(out, "%s", e.msg);
    else if (!lg) rc = out_error(out, "fill: out of memory for the logits of %d tokens", T);
    else if (ctx_reset(c), ctx_eval(c, ids.v, T, lg, true, NULL, &e)) rc = out_error(out, "fill: %s", e.msg);
    if (!rc) {
        JsonW *w = &out->w;
        json_tokens(w, "tokens", t, ids.v, T);
        json_ints(w, "ids", ids.v, T);
        IntVec filled = {0};
        for (int i = 0; i < T; i++) iv_push(&filled, ids.v[i]);
        jw_key(w, "masks");
        jw_arr(w);
        Buf piece = {0};
        for (int i = 0; i < T; i++) {
            if (ids.v[i] != mask) continue;
            const float *row = lg + (size_t)i * V;
            log_softmax(row, V, lp);
            int k = top_n(row, V, (int)top, idx);
            filled.v[i] = idx[0];
            jw_obj(w);
            jw_kint(w, "position", i);
            jw_key(w, "top");
            jw_arr(w);
            buf_printf(&out->text, "[MASK] at %d:", i);
            for (int j = 0; j < k; j++) {
                token_piece(t, idx[j], &piece);
                jw_obj(w);
                jw_kint(w, "id", idx[j]);
                jw_key(w, "piece");
                jw_strn(w, piece.data ? piece.data : "", piece.len);
                jw_knum(w, "prob", exp(lp[idx[j]]));
                jw_obj_end(w);
                buf_printf(&out->text, "  %s %.3f", piece.data ? piece.data : "", exp(lp[idx[j]]));
            }
            buf_putc(&out->text, '\n');
            jw_arr_end(w);
            jw_obj_end(w);
        }
        jw_arr_end(w);
        // the text with every mask replaced by its most likely filler (special tokens dropped)
        Buf best = {0};
        IntVec plain = {0};
        for (int i = 0; i < T; i++)
            if (!tok_is_special(t, filled.v[i])) iv_push(&plain, filled.v[i]);
        tok_decode(t, plain.v, plain.n, &best);
        jw_key(w, "text");
        jw_strn(w, best.data ? best.data : "", best.len);
        buf_puts(&out->text, "-> ");
        buf_put_utf8(&out->text, best.data ? best.data : "", best.len);
        buf_putc(&out->text, '\n');
        buf_free(&best);
        buf_free(&piece);
        iv_free(&plain);
        iv_free(&filled);
    }
    free(lg), free(lp), free(idx);
    iv_free(&ids);
    return rc;
}

// ---------------------------------------------------------------------------------------
// embed, similarity

typedef struct {
    PoolKind pool;
    bool normalize;
} EmbedOpts;

// pool= and normalize= over the model's defaults: a sentence-transformers folder says how it
// pools and whether it normalizes; otherwise encoders average and decoders take the last token.
static int embed_opts(App *app, const Args *a, EmbedOpts *o, Out *out) {
    const Model *m = app->model;
    o->pool = m->cfg.a.causal ? POOL_LAST : POOL_MEAN;
    if (m->st_pool[0]) pool_parse(m->st_pool, &o->pool);
    o->normalize = m->st_normalize;
    const char *p = args_opt(a, "pool");
    if (p && pool_parse(p, &o->pool)) return out_error(out, "pool=%.20s: mean, cls, max or last expected", p);
    Err e = {0};
    if (args_bool(a, "normalize", &o->normalize, &e) < 0) return out_error(out, "%s", e.msg);
    return 0;
}

// The embedding of text into v[n_embd]; *n_tok gets its token count and *cut whether it was
// cut to the model's maximum sequence length (sentence-transformers' max_seq_length).
static int embed_text(App *app, const Arg *text, const EmbedOpts *o, float *v, int *n_tok, bool *cut, Err *e) {
    const Model *m = app->model;
    const Tokenizer *t = m->tok;
    IntVec body = {0}, ids = {0};
    *cut = false;
    if (tok_encode(t, text->val, text->len, TOK_PARSE_SPECIAL, &body, e) < 0) {
        iv_free(&body);
        return -1;
    }
    // as tokenizers truncate to a maximum length: the text's first tokens, then the special
    // tokens around them
    int first = tok_add_first(t), last = tok_add_last(t);
    int max = m->st_max_seq > 0 && m->st_max_seq < m->cfg.n_ctx ? m->st_max_seq : m->cfg.n_ctx;
    int room = max - (first >= 0) - (last >= 0);
    if (body.n > room && room > 0) body.n = room, *cut = true;
    if (first >= 0) iv_push(&ids, first);
    for (int i = 0; i < body.n; i++) iv_push(&ids, body.v[i]);
    if (last >= 0) iv_push(&ids, last);
    iv_free(&body);
    int rc = 0;
    Ctx *c = app_ctx(app, e);
    if (!c) rc = -1;
    if (!rc && ids.n == 0) rc = err_set(e, "the text has no tokens");
    if (!rc) rc = embed_ids(c, ids.v, NULL, ids.n, o->pool, o->normalize, v, e);
    *n_tok = ids.n;
    iv_free(&ids);
    return rc;
}

static int cmd_embed(App *app, const Args *a, Out *out) {
    EmbedOpts o;
    if (embed_opts(app, a, &o, out)) return -1;
    int d = app->model->cfg.n_embd, n_tok = 0;
    bool cut;
    float *v = xmalloc(sizeof(float) * (size_t)d);
    Err e = {0};
    if (embed_text(app, args_pos(a, 0), &o, v, &n_tok, &cut, &e)) {
        free(v);
        return out_error(out, "embed: %s", e.msg);
    }
    JsonW *w = &out->w;
    jw_kint(w, "dim", d);
    jw_kstr(w, "pool", pool_name(o.pool));
    jw_kbool(w, "normalized", o.normalize);
    jw_kint(w, "n_tokens", n_tok);
    jw_kbool(w, "truncated", cut);
    jw_key(w, "embedding");
    jw_arr(w);
    for (int j = 0; j < d; j++) jw_num(w, v[j]);
    jw_arr_end(w);
    buf_printf(&out->text, "%d dimensions (%s pooling%s) of %d token%s%s:", d, pool_name(o.pool),
               o.normalize ? ", normalized" : "", n_tok, n_tok == 1 ? "" : "s", cut ? " (cut to the model's maximum length)" : "");
    for (int j = 0; j < d && j < 8; j++) buf_printf(&out->text, " %.4f", v[j]);
    buf_puts(&out->text, d > 8 ? " ... (--json for all)\n" : "\n");
    free(v);
    return 0;
}

enum { SIM_MAX_TEXTS = 64 };

static int cmd_similarity(App *app, const Args *a, Out *out) {
    EmbedOpts o;
    if (embed_opts(app, a, &o, out)) return -1;
    int n = args_npos(a), d = app->model->cfg.n_embd;
    if (n < 2) return out_error(out, "similarity: give two texts or more");
    float *v = xmalloc(sizeof(float) * (size_t)n * (size_t)d);
    float *sim = xmalloc(sizeof(float) * (size_t)n * (size_t)n);
    Err e = {0};
    for (int i = 0; i < n; i++) {
        int n_tok;
        bool cut;
        if (embed_text(app, args_pos(a, i), &o, v + (size_t)i * d, &n_tok, &cut, &e)) {
            free(v), free(sim);
            return out_error(out, "similarity: text %d: %s", i + 1, e.msg);
        }
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) sim[i * n + j] = (float)embed_cosine(v + (size_t)i * d, v + (size_t)j * d, d);
    JsonW *w = &out->w;
    jw_kstr(w, "pool", pool_name(o.pool));
    jw_kbool(w, "normalized", o.normalize);
    if (n == 2) jw_knum(w, "cosine", sim[1]);
    jw_key(w, "texts");
    jw_arr(w);
    for (int i = 0; i < n; i++) jw_strn(w, args_pos(a, i)->val, args_pos(a, i)->len);
    jw_arr_end(w);
    jw_key(w, "matrix");
    jw_arr(w);
    for (int i = 0; i < n; i++) {
        jw_arr(w);
        for (int j = 0; j < n; j++) jw_num(w, sim[i * n + j]);
        jw_arr_end(w);
    }
    jw_arr_end(w);
    // the figure (save FILE.csv / FILE.svg): the whole texts as labels (newlines shown as a
    // sign), which an SVG and the views cut to their width and a CSV keeps
    char **labels = xcalloc((size_t)n, sizeof *labels);
    Buf b = {0};
    for (int i = 0; i < n; i++) {
        buf_clear(&b);
        text_line(&b, args_pos(a, i)->val, args_pos(a, i)->len, args_pos(a, i)->len);
        labels[i] = xstrdup(b.data ? b.data : "");
    }
    char title[160];
    snprintf(title, sizeof title, "%s: cosine similarity (%s pooling)", app->model->name, pool_name(o.pool));
    int fig = app_set_figure(app, sim, n, n, (const char *const *)labels, (const char *const *)labels, true, title);
    if (fig) {
        out_error(out, "similarity: out of memory for the figure of %d x %d texts", n, n);
    } else if (n == 2) {
        buf_printf(&out->text, "cosine %.4f\n", sim[1]);
    } else { // the texts numbered, whole, then the matrix under their numbers
        for (int i = 0; i < n; i++) buf_printf(&out->text, "%3d  %s\n", i + 1, labels[i]);
        buf_puts(&out->text, "   ");
        for (int j = 0; j < n; j++) buf_printf(&out->text, " %6d", j + 1);
        buf_putc(&out->text, '\n');
        for (int i = 0; i < n; i++) {
            buf_printf(&out->text, "%3d", i + 1);
            for (int j = 0; j < n; j++) buf_printf(&out->text, " %6.3f", sim[i * n + j]);
            buf_putc(&out->text, '\n');
        }
    }
    for (int i = 0; i < n; i++) free(labels[i]);
    free(labels);
    buf_free(&b);
    free(v), free(sim);
    return fig;
}

static const char *const k_fill[] = {"top", NULL};
static const char *const k_embed[] = {"pool", "normalize", NULL};

const Command encode_commands[] = {
    {"fill", cmd_fill, 1, 1, k_fill, "fill \"TEXT with [MASK]\" [top=5]",
     "A masked-language model's (BERT's) most likely fillers for each [MASK] in TEXT, with their probabilities, "
     "and the text with the best ones put in. JSON: tokens, ids, masks: [{position, top: [{id, piece, prob}]}], "
     "text.",
     true, true},
    {"embed", cmd_embed, 1, 1, k_embed, "embed \"TEXT\" [pool=mean|cls|max|last normalize=true|false]",
     "The text's vector: the final hidden states pooled over its tokens (a sentence-transformers model's own "
     "pooling and normalization by default; otherwise mean for encoders, the last token for decoders). Texts "
     "longer than the model's maximum length are cut, as its tokenizer would. JSON: dim, pool, normalized, "
     "n_tokens, truncated, embedding.",
     true, true},
    {"similarity", cmd_similarity, 2, SIM_MAX_TEXTS, k_embed,
     "similarity \"A\" \"B\" [\"C\" ...] [pool=... normalize=...]",
     "Cosine similarity of the texts' embeddings (as embed makes them); for several texts the matrix, which "
     "save FILE.svg exports as a heatmap. JSON: pool, normalized, texts, matrix, cosine (for two).",
     true, true},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
