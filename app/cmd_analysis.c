// cmd_analysis.c - what the heads do and where the model knows it: heads (head statistics),
// lens (the logit lens) and patch (activation patching). Each reads the engine's trace.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdutil.h"
#include "commands.h"
#include "analysis/heads.h"
#include "analysis/lens.h"
#include "kern/ops.h"

// Labels "prefix0".."prefix{n-1}" (free with labels_free).
static char **num_labels(const char *prefix, int n) {
    char **l = calloc((size_t)n, sizeof *l);
    for (int i = 0; l && i < n; i++) {
        char s[32];
        snprintf(s, sizeof s, "%s%d", prefix, i);
        l[i] = strdup(s);
    }
    return l;
}

// The readable pieces of ids[n] (free with labels_free).
static char **piece_labels(const Tokenizer *t, const int *ids, int n) {
    char **l = calloc((size_t)n, sizeof *l);
    Buf b = {0};
    for (int i = 0; l && i < n; i++) {
        token_piece(t, ids[i], &b);
        l[i] = strdup(b.data ? b.data : "");
    }
    buf_free(&b);
    return l;
}

static void labels_free(char **l, int n) {
    for (int i = 0; l && i < n; i++) free(l[i]);
    free(l);
}

// ---------------------------------------------------------------------------------------
// heads

enum { INDUCTION_SMALL_VOCAB = 512 };
#define INDUCTION_LETTERS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

static int cmd_heads(App *app, const Args *a, Out *out) {
    const Model *m = app->model;
    const ModelConfig *c = &m->cfg;
    Err e = {0};
    const Arg *p0 = args_pos(a, 0);
    bool induction = p0 && !p0->quoted && !strcmp(p0->val, "induction");
    long long len = 50, seed = 1;
    if (args_int(a, "len", 2, 100000, &len, &e) < 0 || args_int(a, "seed", 0, (1ll << 53), &seed, &e) < 0)
        return out_error(out, "%s", e.msg);
    const char *from = args_opt(a, "from");
    if (!induction && (args_opt(a, "len") || args_opt(a, "seed") || from))
        return out_error(out, "heads: len=, seed= and from= go with `heads induction`");
    const char *stat_name = args_opt(a, "stat");
    int stat = stat_name ? head_stat_find(stat_name) : induction ? 4 : 0;
    if (stat < 0)
        return out_error(out, "heads: stat=%.20s: entropy, prev_token, sink, self or induction expected", stat_name);
    Prompt pr = {0};
    bool distinct = true;
    int last = -1;
    if (induction) {
        // the tokens the model's inputs begin and end with (GPT-2: none; Llama: BOS; BERT: [CLS]
        // and [SEP], an encoder's sequences as it was trained on them)
        int first = m->tok ? tok_add_first(m->tok) : -1;
        last = m->tok ? tok_add_last(m->tok) : -1;
        // the default length shrinks to a small model's context (a context under 100 refused it);
        // a length asked for is kept or refused
        int room = (c->n_ctx - (first >= 0) - (last >= 0)) / 2;
        if (!args_opt(a, "len") && len > room && room >= 2) len = room;
        if (2 * len + (first >= 0) + (last >= 0) > c->n_ctx)
            return out_error(out, "heads induction: len=%lld: twice that%s does not fit in the context of %d", len,
                             first >= 0 && last >= 0 ? " and the first and last tokens"
                             : first >= 0            ? " and the first token"
                             : last >= 0             ? " and the last token"
                                                     : "",
                             c->n_ctx);
        // a byte- or character-level vocabulary: most of its ids are bytes no text uses (their
        // embeddings say nothing), so by default the letters
        if (!from && m->tok && c->n_vocab <= INDUCTION_SMALL_VOCAB) from = INDUCTION_LETTERS;
        IntVec pool = {0}; // from=: the tokens of that text (no BOS/[CLS]/[SEP])
        if (from && (!m->tok || tok_encode(m->tok, from, strlen(from), 0, &pool, &e) < 0 || !pool.n)) {
            iv_free(&pool);
            return out_error(out, "heads induction: from=: %s", !m->tok ? "the model has no tokenizer"
                                                                  : pool.n || e.msg[0] ? e.msg : "no tokens in the text");
        }
        int *seq = malloc(sizeof(int) * (size_t)(2 * len + 2));
        int n = seq ? heads_induction_ids(m->tok, c->n_vocab, first, (int)len, (uint64_t)seed, pool.v, pool.n, seq, &distinct, &e)
                    : -1;
        iv_free(&pool);
        if (n >= 0 && last >= 0) seq[n++] = last;
        for (int i = 0; i < n; i++) iv_push(&pr.ids, seq[i]);
        free(seq);
        if (n < 0) return out_error(out, "heads induction: %s", seq ? e.msg : "out of memory");
    } else if (prompt_read(app, a, &pr, false, out)) {
        prompt_free(&pr);
        return -1;
    }
    int T = pr.ids.n;
    if (T < 2 || T > c->n_ctx) {
        prompt_free(&pr);
        return out_error(out, "heads: %d token%s: at least 2 and at most the context of %d", T, T == 1 ? "" : "s",
                         c->n_ctx);
    }
    Ctx *x = app_ctx(app, &e);
    size_t nh = (size_t)c->n_layer * c->n_head;
    HeadStat *hs = x ? calloc(nh, sizeof *hs) : NULL;
    if (!x || !hs || heads_stats(x, pr.ids.v, PROMPT_TYPES(&pr), T, induction ? (int)len : 0, induction && last >= 0, hs, &e)) {
        free(hs);
        prompt_free(&pr);
        return out_error(out, "heads: %s", x && hs ? e.msg : x ? "out of memory" : e.msg);
    }
    JsonW *w = &out->w;
    json_tokens(w, "tokens", m->tok, pr.ids.v, T);
    json_ints(w, "ids", pr.ids.v, T);
    jw_kint(w, "n_layer", c->n_layer);
    jw_kint(w, "n_head", c->n_head);
    jw_kstr(w, "stat", head_stat_name(stat));
    if (induction) {
        jw_kint(w, "len", len);
        jw_kint(w, "seed", seed);
        if (from) jw_kstr(w, "from", from);
        jw_kint(w, "tail", last >= 0); // tokens after the second copy (an encoder's [SEP])
        jw_kbool(w, "distinct", distinct);
    }
    jw_key(w, "heads");
    jw_arr(w);
    for (int l = 0; l < c->n_layer; l++)
        for (int h = 0; h < c->n_head; h++) {
            const HeadStat *s = &hs[(size_t)l * c->n_head + h];
            jw_obj(w);
            jw_kint(w, "layer", l);
            jw_kint(w, "head", h);
            for (int k = 0; k < HEAD_N_STATS; k++) jw_knum_or_null(w, head_stat_name(k), head_stat(s, k));
            jw_obj_end(w);
        }
    jw_arr_end(w);
    // the figure: layer x head of the chosen statistic
    float *fig = malloc(sizeof(float) * nh);
    char **rl = num_labels("L", c->n_layer), **cl = num_labels("H", c->n_head);
    for (size_t k = 0; fig && k < nh; k++) fig[k] = (float)head_stat(&hs[k], stat);
    char title[160];
    snprintf(title, sizeof title, "%s: %s per layer x head (%d tokens%s)", m->name, head_stat_name(stat), T,
             !induction ? "" : distinct ? ", repeated random" : ", repeated random, drawn with replacement");
    if (fig && rl && cl)
        app_set_figure(app, fig, c->n_layer, c->n_head, (const char *const *)rl, (const char *const *)cl, false, title);
    free(fig);
    labels_free(rl, c->n_layer);
    labels_free(cl, c->n_head);
    buf_printf(&out->text, "%s\nlayer head  entropy prev_token   sink   self induction\n", title);
    for (size_t k = 0; k < nh; k++) {
        const HeadStat *s = &hs[k];
        buf_printf(&out->text, "%5d %4d %8.3f %10.3f %6.3f %6.3f", (int)(k / c->n_head), (int)(k % c->n_head),
                   s->entropy, s->prev_token, s->sink, s->self);
        if (isnan(s->induction)) buf_printf(&out->text, "         -\n");
        else buf_printf(&out->text, " %9.3f\n", s->induction);
    }
    free(hs);
    prompt_free(&pr);
    return 0;
}

// ---------------------------------------------------------------------------------------
// lens and patch

// The one token that text names (a token's text as the tokenizer splits it, or #ID): 0 or -1.
static int one_token(App *app, const char *what, const char *text, int *id, Out *out) {
    const Model *m = app->model;
    if (text[0] == '#' && text[1]) {
        char *end;
        long v = strtol(text + 1, &end, 10);
        if (*end || v < 0 || v >= m->cfg.n_vocab)
            return out_error(out, "%s=%.40s: #ID must be a token id below %d", what, text, m->cfg.n_vocab);
        *id = (int)v;
        return 0;
    }
    IntVec v = {0};
    Err e = {0};
    if (tok_encode(m->tok, text, strlen(text), TOK_PARSE_SPECIAL, &v, &e) < 0) {
        iv_free(&v);
        return out_error(out, "%s=: %s", what, e.msg);
    }
    int n = v.n;
    if (n == 1) *id = v.v[0];
    iv_free(&v);
    if (n != 1)
        return out_error(out, "%s=\"%.40s\" is %d tokens, not one (name a token by its text, or #ID)", what, text, n);
    return 0;
}

static void json_token(JsonW *w, const Tokenizer *t, int id, double prob, Buf *tmp) {
    jw_obj(w);
    jw_kint(w, "id", id);
    token_piece(t, id, tmp);
    jw_key(w, "piece");
    jw_strn(w, tmp->data ? tmp->data : "", tmp->len);
    if (!isnan(prob)) jw_knum(w, "prob", prob);
    jw_obj_end(w);
}

// The k best of v[n] into best[k] (descending).
static void top_k(const float *v, int n, int k, int *best) {
    for (int j = 0; j < k; j++) best[j] = -1;
    for (int i = 0; i < n; i++) {
        if (best[k - 1] >= 0 && v[i] <= v[best[k - 1]]) continue;
        int j = k - 1;
        while (j > 0 && (best[j - 1] < 0 || v[i] > v[best[j - 1]])) best[j] = best[j - 1], j--;
        best[j] = i;
    }
}

static int cmd_lens(App *app, const Args *a, Out *out) {
    const Model *m = app->model;
    const ModelConfig *c = &m->cfg;
    Err e = {0};
    long long top = 1;
    if (args_int(a, "top", 1, 20, &top, &e) < 0) return out_error(out, "lens: %s", e.msg);
    if (!c->a.lm_head)
        return out_error(out, "lens: %s has no language-model head to read the residual stream with", m->name);
    int target = -1;
    const char *tg = args_opt(a, "target");
    if (tg && one_token(app, "target", tg, &target, out)) return -1;
    Prompt pr;
    if (prompt_read(app, a, &pr, false, out)) {
        prompt_free(&pr);
        return -1;
    }
    // top= beyond a tiny vocabulary is all of it (top_k leaves the places past V at -1)
    int T = pr.ids.n, L = c->n_layer, V = c->n_vocab, d = c->n_embd, K = (int)(top < V ? top : V);
    if (T > c->n_ctx) {
        prompt_free(&pr);
        return out_error(out, "lens: %d tokens do not fit in the context of %d", T, c->n_ctx);
    }
    Ctx *x = app_ctx(app, &e);
    float *hid = malloc(sizeof(float) * (size_t)(L + 1) * T * d), *final = malloc(sizeof(float) * (size_t)T * V);
    float *probs = malloc(sizeof(float) * (size_t)T * V), *tprob = malloc(sizeof(float) * (size_t)(L + 1) * T);
    int *best = malloc(sizeof(int) * (size_t)(L + 1) * T * K), *fin = malloc(sizeof(int) * (size_t)T);
    float *bestp = malloc(sizeof(float) * (size_t)(L + 1) * T * K);
    int rc = 0;
    if (!x) rc = out_error(out, "lens: %s", e.msg);
    else if (!hid || !final || !probs || !tprob || !best || !fin || !bestp)
        rc = out_error(out, "lens: out of memory for %d layers x %d tokens", L + 1, T);
    else if (lens_hidden(x, pr.ids.v, PROMPT_TYPES(&pr), T, hid, final, &e))
        rc = out_error(out, "lens: %s", e.msg);
    for (int t = 0; !rc && t < T; t++) {
        top_k(final + (size_t)t * V, V, 1, &fin[t]);
        softmax_inplace(final + (size_t)t * V, V);
    }
    for (int l = 0; !rc && l <= L; l++) {
        if (lens_probs(x, hid + (size_t)l * T * d, T, probs, &e)) {
            rc = out_error(out, "lens: %s", e.msg);
            break;
        }
        for (int t = 0; t < T; t++) {
            const float *row = probs + (size_t)t * V;
            int *b = best + ((size_t)l * T + t) * K;
            top_k(row, V, K, b);
            for (int k = 0; k < K; k++) bestp[((size_t)l * T + t) * K + k] = row[b[k]];
            tprob[(size_t)l * T + t] = row[target >= 0 ? target : fin[t]];
        }
    }
    if (!rc) {
        JsonW *w = &out->w;
        Buf tmp = {0};
        json_tokens(w, "tokens", m->tok, pr.ids.v, T);
        json_ints(w, "ids", pr.ids.v, T);
        jw_kint(w, "n_layer", L);
        jw_key(w, "target");
        if (target >= 0) json_token(w, m->tok, target, NAN, &tmp);
        else jw_null(w);
        jw_key(w, "final");
        jw_arr(w);
        for (int t = 0; t < T; t++) json_token(w, m->tok, fin[t], final[(size_t)t * V + fin[t]], &tmp);
        jw_arr_end(w);
        jw_key(w, "layers");
        jw_arr(w);
        for (int l = 0; l <= L; l++) {
            jw_obj(w);
            jw_kint(w, "layer", l);
            jw_key(w, "top");
            jw_arr(w);
            for (int t = 0; t < T; t++) {
                jw_arr(w);
                for (int k = 0; k < K; k++) {
                    size_t i = ((size_t)l * T + t) * K + k;
                    json_token(w, m->tok, best[i], bestp[i], &tmp);
                }
                jw_arr_end(w);
            }
            jw_arr_end(w);
            jw_key(w, "target_prob");
            jw_arr(w);
            for (int t = 0; t < T; t++) jw_num(w, tprob[(size_t)l * T + t]);
            jw_arr_end(w);
            jw_obj_end(w);
        }
        jw_arr_end(w);
        // the figure: probability of the target (or the final prediction) per layer x position
        char **rl = calloc((size_t)L + 1, sizeof *rl), **cl = piece_labels(m->tok, pr.ids.v, T);
        for (int l = 0; rl && l <= L; l++) {
            char s[16];
            snprintf(s, sizeof s, l ? "%d" : "emb", l);
            rl[l] = strdup(s);
        }
        char title[160];
        if (target >= 0) token_shown(m->tok, target, &tmp);
        snprintf(title, sizeof title, "%s: logit lens, probability of %s%s%s per layer x position", m->name,
                 target >= 0 ? "'" : "the final prediction", target >= 0 ? (tmp.data ? tmp.data : "") : "",
                 target >= 0 ? "'" : "");
        if (rl && cl)
            app_set_figure(app, tprob, L + 1, T, (const char *const *)rl, (const char *const *)cl, false, title);
        labels_free(rl, L + 1);
        labels_free(cl, T);
        // human form: per layer, each position's top token and its probability
        // (the figure, which `save` exports, is the last column's quantity at every position)
        buf_printf(&out->text, "%s\n(layer emb = the embeddings, layer l = after block l-1; each cell: top token, its "
                               "probability; last column: the target's probability at the last position, which "
                               "save FILE.csv exports at every position)\n", title);
        for (int l = 0; l <= L; l++) {
            if (l) buf_printf(&out->text, "%5d", l);
            else buf_puts(&out->text, "  emb");
            for (int t = 0; t < T; t++) {
                size_t i = ((size_t)l * T + t) * K;
                token_piece(m->tok, best[i], &tmp);
                buf_puts(&out->text, "  ");
                put_cell(&out->text, tmp.data, tmp.len, 8, true);
                buf_printf(&out->text, " %4.2f", bestp[i]);
            }
            buf_printf(&out->text, "  | %.3f\n", tprob[(size_t)l * T + T - 1]);
        }
        buf_free(&tmp);
    }
    free(hid), free(final), free(probs), free(tprob), free(best), free(fin), free(bestp);
    prompt_free(&pr);
    return rc;
}

// The tokens of a text argument as the model reads it (special tokens added).
static int text_ids(App *app, const Arg *arg, IntVec *ids, Out *out) {
    Err e = {0};
    if (tok_encode(app->model->tok, arg->val, arg->len, TOK_ADD_SPECIAL | TOK_PARSE_SPECIAL, ids, &e) < 0)
        return out_error(out, "patch: %s", e.msg);
    return 0;
}

// The figure of a patch without the residual stream: rows the layers, columns each head (when
// visited) then the MLP (when visited), the fraction restored by patching that one site.
static void patch_site_figure(App *app, const Model *m, const PatchResult *r, int L, int H, char *title, size_t size) {
    int hc = r->head ? H : 0, cols = hc + (r->mlp ? 1 : 0);
    float *v = malloc(sizeof *v * (size_t)L * (size_t)cols);
    char **rl = calloc((size_t)L, sizeof *rl), **cl = calloc((size_t)cols, sizeof *cl);
    for (int l = 0; v && rl && cl && l < L; l++) {
        for (int h = 0; h < hc; h++) v[(size_t)l * cols + h] = r->head[(size_t)l * H + h];
        if (r->mlp) v[(size_t)l * cols + hc] = r->mlp[l];
    }
    for (int l = 0; rl && l < L; l++) {
        char s[16];
        snprintf(s, sizeof s, "%d", l);
        rl[l] = strdup(s);
    }
    for (int i = 0; cl && i < cols; i++) {
        char s[16];
        snprintf(s, sizeof s, i < hc ? "h%d" : "mlp", i);
        cl[i] = strdup(s);
    }
    snprintf(title, size, "%s: patching %s, fraction of the logit difference restored (rows: layers, columns: %s)",
             m->name, r->head && r->mlp ? "each head's and each MLP's output" : r->head ? "each head's output"
                                                                                    : "each MLP's output",
             r->head && r->mlp ? "heads, then the MLP" : r->head ? "heads" : "the MLP");
    if (v && rl && cl) app_set_figure(app, v, L, cols, (const char *const *)rl, (const char *const *)cl, true, title);
    labels_free(rl, L);
    labels_free(cl, cols);
    free(v);
}

static int cmd_patch(App *app, const Args *a, Out *out) {
    const Model *m = app->model;
    const ModelConfig *c = &m->cfg;
    Err e = {0};
    const char *metric = args_opt(a, "metric");
    if (metric && strcmp(metric, "logit_diff"))
        return out_error(out, "patch: metric=%.20s: only logit_diff (logit of answer minus logit of wrong)", metric);
    if (!c->a.lm_head) return out_error(out, "patch: %s has no language-model head to read an answer from", m->name);
    int answer = -1, wrong = -1;
    const char *as = args_opt(a, "answer"), *ws = args_opt(a, "wrong");
    if ((as && one_token(app, "answer", as, &answer, out)) || (ws && one_token(app, "wrong", ws, &wrong, out)))
        return -1;
    if (answer >= 0 && answer == wrong) return out_error(out, "patch: answer and wrong are the same token");
    static const char *const site_names[3] = {"resid", "heads", "mlp"};
    unsigned sites = 0;
    const char *ss = args_opt(a, "sites");
    for (const char *p = ss ? ss : "resid,heads,mlp"; *p;) {
        size_t k = strcspn(p, ",");
        int found = -1;
        for (int i = 0; i < 3; i++)
            if (strlen(site_names[i]) == k && !strncmp(p, site_names[i], k)) found = i;
        if (found < 0)
            return out_error(out, "patch: sites=%.60s: a comma-separated list of resid, heads and mlp expected", ss);
        sites |= 1u << found;
        p += k + (p[k] == ',');
    }
    if (!sites) return out_error(out, "patch: sites= is empty (resid, heads, mlp)");
    IntVec cl = {0}, co = {0};
    int rc = 0;
    const char *cli = args_opt(a, "clean_ids"), *coi = args_opt(a, "corrupt_ids");
    if (!!cli != !!coi || (cli && args_npos(a)) || (!cli && args_npos(a) != 2))
        rc = out_error(out, "patch: give \"CLEAN\" \"CORRUPT\", or clean_ids=... corrupt_ids=...");
    else if (cli ? int_list(cli, "clean_ids", c->n_vocab, &cl, out) || int_list(coi, "corrupt_ids", c->n_vocab, &co, out)
                 : text_ids(app, args_pos(a, 0), &cl, out) || text_ids(app, args_pos(a, 1), &co, out))
        rc = -1;
    else if (cl.n != co.n)
        rc = out_error(out, "patch: the clean prompt is %d tokens and the corrupt one %d: patching needs prompts of "
                            "the same token length",
                       cl.n, co.n);
    else if (!cl.n) rc = out_error(out, "patch: the prompts have no tokens");
    else if (cl.n > c->n_ctx) rc = out_error(out, "patch: %d tokens do not fit in the context of %d", cl.n, c->n_ctx);
    int T = cl.n, L = c->n_layer, H = c->n_head;
    long long pos = T - 1;
    if (!rc && args_int(a, "pos", 0, T - 1, &pos, &e) < 0) rc = out_error(out, "patch: %s", e.msg);
    Ctx *x = rc ? NULL : app_ctx(app, &e);
    if (!rc && !x) rc = out_error(out, "patch: %s", e.msg);
    PatchResult r = {0};
    if (!rc && patch_run(x, cl.v, co.v, T, (int)pos, answer, wrong, sites, &r, &e)) {
        if (r.same_top) { // the default side equals the other: which one, and what to give instead
            Buf t = {0};
            token_shown(m->tok, r.answer, &t);
            const char *tk = t.data ? t.data : "";
            if (wrong >= 0)
                rc = out_error(out, "patch: the clean prompt's top token at position %lld, the default answer, is '%s', "
                                    "the token wrong= names: say which token the clean prompt should favour with "
                                    "answer=TOKEN (or answer=#ID)", pos, tk);
            else if (answer >= 0)
                rc = out_error(out, "patch: the corrupt prompt's top token at position %lld, the default wrong, is '%s', "
                                    "the token answer= names: say which token the corrupt prompt should favour instead "
                                    "with wrong=TOKEN (or wrong=#ID)", pos, tk);
            else
                rc = out_error(out, "patch: both prompts' top token at position %lld is '%s', the answer: say which "
                                    "token the corrupt prompt should favour instead with wrong=TOKEN (or wrong=#ID)",
                               pos, tk);
            buf_free(&t);
        } else rc = out_error(out, "patch: %s", e.msg);
    }
    if (!rc) {
        JsonW *w = &out->w;
        Buf tmp = {0};
        json_tokens(w, "clean_tokens", m->tok, cl.v, T);
        json_tokens(w, "corrupt_tokens", m->tok, co.v, T);
        json_ints(w, "clean_ids", cl.v, T);
        json_ints(w, "corrupt_ids", co.v, T);
        jw_kstr(w, "metric", "logit_diff");
        jw_kint(w, "pos", pos);
        jw_key(w, "answer");
        json_token(w, m->tok, r.answer, NAN, &tmp);
        jw_key(w, "wrong");
        json_token(w, m->tok, r.wrong, NAN, &tmp);
        jw_knum(w, "clean", r.clean);
        jw_knum(w, "corrupt", r.corrupt);
        jw_key(w, "sites");
        jw_arr(w);
        for (int i = 0; i < 3; i++)
            if (sites & (1u << i)) jw_str(w, site_names[i]);
        jw_arr_end(w);
        // the kinds not visited are null
        if (r.resid) json_matrix(w, "resid", r.resid, L + 1, T);
        else jw_key(w, "resid"), jw_null(w);
        if (r.head) json_matrix(w, "heads", r.head, L, H);
        else jw_key(w, "heads"), jw_null(w);
        jw_key(w, "mlp");
        if (r.mlp) {
            jw_arr(w);
            for (int l = 0; l < L; l++) jw_num(w, r.mlp[l]);
            jw_arr_end(w);
        } else jw_null(w);
        // the figure: the residual stream, layer x position (what a patch at each site restores)
        char **rlab = calloc((size_t)L + 1, sizeof *rlab), **clab = piece_labels(m->tok, co.v, T);
        for (int l = 0; rlab && l <= L; l++) {
            char s[16];
            snprintf(s, sizeof s, l ? "%d" : "emb", l);
            rlab[l] = strdup(s);
        }
        char title[200];
        snprintf(title, sizeof title,
                 "%s: patching the residual stream, fraction of the logit difference restored (rows: layers, columns: "
                 "the corrupt prompt's tokens)",
                 m->name);
        if (rlab && clab && r.resid)
            app_set_figure(app, r.resid, L + 1, T, (const char *const *)rlab, (const char *const *)clab, true, title);
        labels_free(rlab, L + 1);
        labels_free(clab, T);
        if (!r.resid) // sites=heads and/or mlp: layer x (each head, then the MLP), as save exports it
            patch_site_figure(app, m, &r, L, H, title, sizeof title);
        Buf ta = {0};
        token_shown(m->tok, r.answer, &ta);
        token_shown(m->tok, r.wrong, &tmp);
        buf_printf(&out->text, "logit('%s') - logit('%s') at position %lld: clean %.4f, corrupt %.4f\n",
                   ta.data ? ta.data : "", tmp.data ? tmp.data : "", pos, r.clean, r.corrupt);
        if (r.resid)
            buf_printf(&out->text, "fraction restored by patching the residual stream (rows: 0 = embeddings, l = "
                                   "after block l-1; columns: positions)\n");
        for (int l = 0; r.resid && l <= L; l++) {
            buf_printf(&out->text, "%5d", l);
            for (int t = 0; t < T; t++) buf_printf(&out->text, " %6.3f", r.resid[(size_t)l * T + t]);
            buf_putc(&out->text, '\n');
        }
        if (r.head) buf_printf(&out->text, "by one head's output (rows: layers, columns: heads)\n");
        for (int l = 0; r.head && l < L; l++) {
            buf_printf(&out->text, "%5d", l);
            for (int h = 0; h < H; h++) buf_printf(&out->text, " %6.3f", r.head[(size_t)l * H + h]);
            buf_putc(&out->text, '\n');
        }
        if (r.mlp) {
            buf_printf(&out->text, "by one MLP's output (per layer)\n     ");
            for (int l = 0; l < L; l++) buf_printf(&out->text, " %6.3f", r.mlp[l]);
            buf_putc(&out->text, '\n');
        }
        buf_free(&ta);
        buf_free(&tmp);
    }
    patch_result_free(&r);
    iv_free(&cl), iv_free(&co);
    return rc;
}

// ---------------------------------------------------------------------------------------
// rollout and attend

// The floats of the maps rollout holds (every layer's T x T): 2 GB.
#define ROLLOUT_MAX_FLOATS 5e8

static int cmd_rollout(App *app, const Args *a, Out *out) {
    const Model *m = app->model;
    Prompt pr;
    Err e = {0};
    if (prompt_read(app, a, &pr, false, out)) {
        prompt_free(&pr);
        return -1;
    }
    // the limit hit first: the context the model reads, then the maps of every layer, held at
    // once (L x T x T floats, at most ROLLOUT_MAX_FLOATS), which a shorter text fits
    int T = pr.ids.n, L = m->cfg.n_layer;
    int max_t = (int)sqrt(ROLLOUT_MAX_FLOATS / L);
    while ((double)L * (max_t + 1) * (max_t + 1) <= ROLLOUT_MAX_FLOATS) max_t++;
    while (max_t > 0 && (double)L * max_t * max_t > ROLLOUT_MAX_FLOATS) max_t--;
    if (T > m->cfg.n_ctx || T > max_t) {
        prompt_free(&pr);
        if (T > m->cfg.n_ctx) return out_error(out, "rollout: %d tokens do not fit in the context of %d", T, m->cfg.n_ctx);
        return out_error(out, "rollout: %d tokens: the %d layers' attention maps of %d x %d would take %.1f GB; at most "
                         "%d tokens for this model", T, L, T, T, (double)L * T * T * sizeof(float) / 1e9, max_t);
    }
    Ctx *x = app_ctx(app, &e);
    float *r = x ? malloc(sizeof(float) * (size_t)T * T) : NULL;
    int rc = 0;
    if (!x || !r || heads_rollout(x, pr.ids.v, PROMPT_TYPES(&pr), T, r, &e))
        rc = out_error(out, "rollout: %s", x && !r ? "out of memory" : e.msg);
    if (!rc) {
        JsonW *w = &out->w;
        json_tokens(w, "tokens", m->tok, pr.ids.v, T);
        json_ints(w, "ids", pr.ids.v, T);
        json_matrix(w, "matrix", r, T, T);
        char **lab = piece_labels(m->tok, pr.ids.v, T);
        char title[160];
        snprintf(title, sizeof title, "%s: attention rollout over %d layers (rows: queries, columns: input tokens)",
                 m->name, m->cfg.n_layer);
        if (lab) app_set_figure(app, r, T, T, (const char *const *)lab, (const char *const *)lab, false, title);
        buf_printf(&out->text, "%s\n", title);
        for (int i = 0; i < T; i++) {
            put_cell(&out->text, lab ? lab[i] : NULL, lab && lab[i] ? strlen(lab[i]) : 0, 12, true);
            for (int j = 0; j < T; j++) buf_printf(&out->text, " %5.3f", r[(size_t)i * T + j]);
            buf_putc(&out->text, '\n');
        }
        labels_free(lab, T);
    }
    free(r);
    prompt_free(&pr);
    return rc;
}

static int cmd_attend(App *app, const Args *a, Out *out) {
    const Model *m = app->model;
    const ModelConfig *c = &m->cfg;
    Err e = {0};
    long long from = -1, to = -1, top = 10;
    if (args_int(a, "from", 0, 1 << 30, &from, &e) < 0 || args_int(a, "to", 0, 1 << 30, &to, &e) < 0 ||
        args_int(a, "top", 1, 100000, &top, &e) < 0)
        return out_error(out, "attend: %s", e.msg);
    if (from < 0 || to < 0) return out_error(out, "attend: from=POSITION and to=POSITION are required");
    Prompt pr;
    if (prompt_read(app, a, &pr, false, out)) {
        prompt_free(&pr);
        return -1;
    }
    int T = pr.ids.n, L = c->n_layer, H = c->n_head;
    size_t nh = (size_t)L * H;
    Ctx *x = T <= c->n_ctx ? app_ctx(app, &e) : NULL;
    float *v = x ? malloc(sizeof(float) * nh) : NULL;
    int *order = v ? malloc(sizeof(int) * nh) : NULL;
    int rc = 0;
    if (T > c->n_ctx) rc = out_error(out, "attend: %d tokens do not fit in the context of %d", T, c->n_ctx);
    else if (!x || !v || !order || heads_attend(x, pr.ids.v, PROMPT_TYPES(&pr), T, (int)from, (int)to, v, &e))
        rc = out_error(out, "attend: %s", x && (!v || !order) ? "out of memory" : e.msg);
    if (!rc) {
        for (size_t k = 0; k < nh; k++) order[k] = (int)k;
        for (size_t k = 1; k < nh; k++) // insertion sort, largest first (stable: lower layers first on ties)
            for (size_t j = k; j > 0 && v[order[j]] > v[order[j - 1]]; j--) {
                int t = order[j];
                order[j] = order[j - 1], order[j - 1] = t;
            }
        if (top > (long long)nh) top = (long long)nh;
        JsonW *w = &out->w;
        Buf bf = {0}, bt = {0};
        json_tokens(w, "tokens", m->tok, pr.ids.v, T);
        jw_kint(w, "from", from);
        jw_kint(w, "to", to);
        // a decoder's query never sees a later key, nor (a sliding window, Mistral's) one `window`
        // or more positions back
        bool later = c->a.causal && to > from, outside = c->a.window && to <= from - c->a.window;
        bool masked = later || outside;
        jw_kbool(w, "masked", masked);
        jw_key(w, "heads");
        jw_arr(w);
        for (long long k = 0; k < top; k++) {
            jw_obj(w);
            jw_kint(w, "layer", order[k] / H);
            jw_kint(w, "head", order[k] % H);
            jw_knum(w, "prob", v[order[k]]);
            jw_obj_end(w);
        }
        jw_arr_end(w);
        json_matrix(w, "matrix", v, L, H);
        token_shown(m->tok, pr.ids.v[from], &bf);
        token_shown(m->tok, pr.ids.v[to], &bt);
        char title[200];
        snprintf(title, sizeof title, "%s: attention from %lld '%s' to %lld '%s' per layer x head", m->name, from,
                 bf.data ? bf.data : "", to, bt.data ? bt.data : "");
        char **rl = num_labels("L", L), **cl = num_labels("H", H);
        if (rl && cl) app_set_figure(app, v, L, H, (const char *const *)rl, (const char *const *)cl, false, title);
        labels_free(rl, L);
        labels_free(cl, H);
        buf_printf(&out->text, "%s\n", title);
        if (later)
            buf_printf(&out->text, "%s is a decoder: position %lld cannot attend to the later position %lld (the causal "
                                   "mask), so every head gives 0 there; try to=%lld or lower\n",
                       m->name, from, to, from);
        else if (outside)
            buf_printf(&out->text, "%s attends over a sliding window of %d positions: position %lld cannot attend to "
                                   "position %lld, so every head gives 0 there; try to=%lld or higher\n",
                       m->name, c->a.window, from, to, from - c->a.window + 1);
        if (!masked) buf_puts(&out->text, "layer head   prob\n");
        for (long long k = 0; !masked && k < top; k++)
            buf_printf(&out->text, "%5d %4d  %5.3f\n", order[k] / H, order[k] % H, v[order[k]]);
        buf_free(&bf), buf_free(&bt);
    }
    free(v), free(order);
    prompt_free(&pr);
    return rc;
}

// ---------------------------------------------------------------------------------------
// neuron view

// The dimensions of the three largest |row[d]| of row (hd values), largest first; -1 past hd.
static void top3_abs(const float *row, int hd, int best[3]) {
    for (int b = 0; b < 3; b++) best[b] = -1;
    for (int d = 0; d < hd; d++)
        for (int b = 0; b < 3; b++)
            if (best[b] < 0 || fabsf(row[d]) > fabsf(row[best[b]])) {
                for (int s = 2; s > b; s--) best[s] = best[s - 1];
                best[b] = d;
                break;
            }
}

// neuron's text: under the title, each key's score and its three largest contributions (contrib
// is (T, hd), score (T), NAN for a key not seen), each column as wide as its widest entry.
static void neuron_text(Buf *b, const char *title, const char *const *rl, const float *score, const float *contrib,
                        int T, int hd) {
    int ws = 5, wc[3] = {0, 0, 0}, best[3]; // "score", then the widest "dN +x.xxx" of each rank
    for (int j = 0; j < T; j++) {
        if (isnan(score[j])) continue;
        int n = snprintf(NULL, 0, "%.3f", score[j]);
        if (n > ws) ws = n;
        top3_abs(contrib + (size_t)j * hd, hd, best);
        for (int r = 0; r < 3 && best[r] >= 0; r++) {
            n = snprintf(NULL, 0, "d%d %+.3f", best[r], contrib[(size_t)j * hd + best[r]]);
            if (n > wc[r]) wc[r] = n;
        }
    }
    buf_printf(b, "%s\n", title);
    put_cell(b, "key", 3, 12, false);
    buf_printf(b, " %*s  (the three largest contributions: dimension value)\n", ws, "score");
    for (int j = 0; j < T; j++) {
        put_cell(b, rl ? rl[j] : NULL, rl && rl[j] ? strlen(rl[j]) : 0, 12, true);
        if (isnan(score[j])) {
            buf_printf(b, " %*s\n", ws, "-");
            continue;
        }
        buf_printf(b, " %*.3f", ws, score[j]);
        top3_abs(contrib + (size_t)j * hd, hd, best);
        for (int r = 0; r < 3 && best[r] >= 0; r++) {
            char c[48];
            snprintf(c, sizeof c, "d%d %+.3f", best[r], contrib[(size_t)j * hd + best[r]]);
            buf_printf(b, "  %-*s", r < 2 && best[r + 1] >= 0 ? wc[r] : 0, c); // no spaces at the end
        }
        buf_putc(b, '\n');
    }
}

static int cmd_neuron(App *app, const Args *a, Out *out) {
    const Model *m = app->model;
    const ModelConfig *c = &m->cfg;
    Err e = {0};
    long long layer = 0, head = 0, query = -1;
    if (args_int(a, "layer", 0, c->n_layer - 1, &layer, &e) < 0 || args_int(a, "head", 0, c->n_head - 1, &head, &e) < 0 ||
        args_int(a, "query", 0, 1 << 30, &query, &e) < 0)
        return out_error(out, "neuron: %s", e.msg);
    Prompt pr;
    if (prompt_read(app, a, &pr, false, out)) {
        prompt_free(&pr);
        return -1;
    }
    int T = pr.ids.n, hd = c->head_dim;
    if (query < 0) query = T - 1;
    Ctx *x = T <= c->n_ctx ? app_ctx(app, &e) : NULL;
    float *q = malloc(sizeof(float) * (size_t)hd), *k = malloc(sizeof(float) * (size_t)T * hd);
    float *contrib = malloc(sizeof(float) * (size_t)T * hd), *score = malloc(sizeof(float) * (size_t)T);
    int rc = 0;
    if (T > c->n_ctx) rc = out_error(out, "neuron: %d tokens do not fit in the context of %d", T, c->n_ctx);
    else if (!x) rc = out_error(out, "neuron: %s", e.msg);
    else if (!q || !k || !contrib || !score) rc = out_error(out, "neuron: out of memory");
    else if (heads_qk(x, pr.ids.v, PROMPT_TYPES(&pr), T, (int)layer, (int)head, (int)query, q, k, &e))
        rc = out_error(out, "neuron: %s", e.msg);
    if (!rc) {
        // contrib[j][d] = q[d] k[j][d] / sqrt(hd); a decoder's future keys are not seen (NAN in the figure)
        float scale = 1.0f / sqrtf((float)hd);
        int win = c->a.window;
        for (int j = 0; j < T; j++) {
            bool seen = (!c->a.causal || j <= query) && (!win || j > query - win);
            double s = 0;
            for (int d = 0; d < hd; d++) {
                float v = q[d] * k[(size_t)j * hd + d] * scale;
                contrib[(size_t)j * hd + d] = seen ? v : NAN;
                s += v;
            }
            score[j] = seen ? (float)s : NAN;
        }
        JsonW *w = &out->w;
        json_tokens(w, "tokens", m->tok, pr.ids.v, T);
        jw_kint(w, "layer", layer);
        jw_kint(w, "head", head);
        jw_kint(w, "query", query);
        jw_key(w, "q");
        jw_arr(w);
        for (int d = 0; d < hd; d++) jw_num(w, q[d]);
        jw_arr_end(w);
        json_matrix(w, "k", k, T, hd);
        json_matrix(w, "contributions", contrib, T, hd);
        jw_key(w, "scores");
        jw_arr(w);
        for (int j = 0; j < T; j++) {
            if (isnan(score[j])) jw_null(w);
            else jw_num(w, score[j]);
        }
        jw_arr_end(w);
        char **rl = piece_labels(m->tok, pr.ids.v, T), **cl = num_labels("d", hd);
        char title[200];
        Buf qs = {0};
        token_shown(m->tok, pr.ids.v[query], &qs);
        snprintf(title, sizeof title, "%s: layer %lld head %lld, query %lld '%s': q[d] k[d] / sqrt(%d) per key x dimension",
                 m->name, layer, head, query, qs.data ? qs.data : "", hd);
        buf_free(&qs);
        if (rl && cl) app_set_figure(app, contrib, T, hd, (const char *const *)rl, (const char *const *)cl, true, title);
        neuron_text(&out->text, title, (const char *const *)rl, score, contrib, T, hd);
        labels_free(rl, T);
        labels_free(cl, hd);
    }
    free(q), free(k), free(contrib), free(score);
    prompt_free(&pr);
    return rc;
}

static const char *const k_heads[] = {"ids", "types", "pair", "stat", "len", "seed", "from", CHAT_KEYS, NULL};
static const char *const k_rollout[] = {"ids", "types", "pair", CHAT_KEYS, NULL};
static const char *const k_attend[] = {"ids", "types", "pair", "from", "to", "top", CHAT_KEYS, NULL};
static const char *const k_neuron[] = {"ids", "types", "pair", "layer", "head", "query", CHAT_KEYS, NULL};
static const char *const k_lens[] = {"ids", "types", "pair", "target", "top", CHAT_KEYS, NULL};
static const char *const k_patch[] = {"metric", "answer", "wrong", "pos", "clean_ids", "corrupt_ids", "sites", NULL};

const Command analysis_commands[] = {
    {"heads", cmd_heads, 0, 1, k_heads,
     "heads \"TEXT\"|ids=...|induction [stat=entropy|prev_token|sink|self|induction len=50 seed=1 from=\"TEXT\"]",
     "Statistics of every layer x head's attention, averaged over the query rows after the first: entropy (nats), "
     "previous-token, first-token (sink) and self scores, and the induction score (attention to the token after an "
     "earlier occurrence of the query's token; null when no token repeats). `heads induction` measures them on a "
     "random sequence of len distinct tokens repeated once (after the model's BOS/[CLS], an encoder's [SEP] after "
     "it: JSON tail 1), drawn from seed; from=\"TEXT\" "
     "draws them (with replacement) from the tokens of TEXT instead, e.g. the letters a small model was trained on "
     "(tokens it never saw tell nothing), distinct when TEXT has at least len of them (else with replacement, "
     "distinct: false); a vocabulary of at most 512 tokens (byte- or character-level) draws from the 52 letters a-z "
     "and A-Z unless from= says otherwise. Its induction score is the attention of each token of the second "
     "copy to the token after the same position in the first (Olsson et al. 2022; TransformerLens): rows of the first "
     "copy whose letter occurred before by chance are not counted. stat= "
     "picks the statistic of the layer x head heatmap (save exports it).",
     true, true},
    {"lens", cmd_lens, 0, 1, k_lens, "lens \"TEXT\"|ids=... [target=TOKEN|#ID top=K]",
     "The logit lens: the model's final norm and head applied to the residual stream after every block (layer 0 = "
     "the embeddings, layer l = after block l-1, as HF numbers hidden_states). For every layer and position the top "
     "token(s) and the probability of the token the model finally predicts there, or of target= (a text that is "
     "one token, or #ID). The heatmap (save exports it) is that probability per layer x position.",
     true, true},
    {"patch", cmd_patch, 0, 2, k_patch,
     "patch \"CLEAN\" \"CORRUPT\"|clean_ids=.. corrupt_ids=.. [metric=logit_diff answer=TOKEN|#ID wrong=TOKEN|#ID pos=P "
     "sites=resid,heads,mlp]",
     "Activation patching: run both prompts (of equal token length), then the corrupt one again with one site at a "
     "time taken from the clean run: the residual stream at each layer x position, each head's output (its weighted "
     "values, at every position), each MLP's output. Reports the fraction of logit(answer) - logit(wrong) at pos "
     "(default the last) that each site restores: 1 = the clean run's, 0 = the corrupt's. answer defaults to the "
     "clean run's top token, wrong to the corrupt run's (when that is the answer too, wrong= must say which token the "
     "corrupt prompt favours instead). sites= picks the kinds of site visited (the others are null).",
     true, true},
    {"rollout", cmd_rollout, 0, 1, k_rollout, "rollout \"TEXT\"|ids=...",
     "Attention rollout (Abnar & Zuidema 2020): the product over layers of 0.5 x the heads' mean attention + 0.5 x "
     "the identity (the residual stream), first layer rightmost: how much each position draws on each input "
     "token. Rows sum to 1.",
     true, true},
    {"attend", cmd_attend, 0, 1, k_attend, "attend \"TEXT\"|ids=... from=POSITION to=POSITION [top=10]",
     "Which heads attend most from one position (a query) to another (a key): every layer x head's attention "
     "there, as a heatmap, and the top heads listed, largest first. Positions count tokens from 0 (as tokenize "
     "lists them).",
     true, true},
    {"neuron", cmd_neuron, 0, 1, k_neuron, "neuron \"TEXT\"|ids=... [layer=L head=H query=POSITION]",
     "The neuron view of one head (bertviz's): the query vector q of one position (default the last) and the key "
     "vectors k of every position, after the rotary embedding, and each dimension's contribution q[d] k[d] / "
     "sqrt(head_dim) to the score of each key (a row sums to the score before the softmax; keys a decoder's query "
     "cannot see are null). The heatmap is key x dimension.",
     true, true},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
