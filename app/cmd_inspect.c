// cmd_inspect.c - the inspection commands: attention, pe, save (the figures views show).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmdutil.h"
#include "commands.h"
#include "analysis/positions.h"
#include "base/fs.h"
#include "base/mem.h"
#include "barchart.h"
#include "heatmap.h"

typedef struct {
    int layer, head; // -1 = all
    int nl, nh, T;   // layers and heads kept (1 or all)
    float *all;      // [nl, nh, T, T]: only what was asked for
} AttCollect;

// The kept map of (layer, head), or NULL when it was not asked for.
static float *att_map(const AttCollect *ac, int layer, int head) {
    if ((ac->layer >= 0 && layer != ac->layer) || (ac->head >= 0 && head != ac->head)) return NULL;
    int li = ac->layer >= 0 ? 0 : layer, hi = ac->head >= 0 ? 0 : head;
    return ac->all + ((size_t)li * ac->nh + hi) * (size_t)ac->T * ac->T;
}

static void att_trace(void *user, const TracePoint *p) {
    AttCollect *ac = user;
    if (p->kind != TRACE_ATT_PROBS) return;
    int T = ac->T;
    for (int h = 0; h < p->n_head; h++)
        for (int i = 0; i < p->n_q; i++) {
            float *map = att_map(ac, p->layer, h);
            if (!map) continue;
            float *dst = map + (size_t)(p->pos0 + i) * T;
            const float *src = p->data + ((size_t)h * p->n_q + i) * p->n_kv;
            memcpy(dst, src, sizeof(float) * (size_t)p->n_kv);
        }
}

static int layer_head_opt(const Args *a, const char *key, int n, int *out, Out *o) {
    const char *v = args_opt(a, key);
    if (!v) {
        *out = 0;
        return 0;
    }
    if (!strcmp(v, "all")) {
        *out = -1;
        return 0;
    }
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < 0 || x >= n) return out_error(o, "%s=%.20s: must be 0..%d or all", key, v, n - 1);
    *out = (int)x;
    return 0;
}

static int cmd_attention(App *app, const Args *a, Out *out) {
    const ModelConfig *c = &app->model->cfg;
    AttCollect ac = {0};
    if (layer_head_opt(a, "layer", c->n_layer, &ac.layer, out) || layer_head_opt(a, "head", c->n_head, &ac.head, out))
        return -1;
    Prompt pr;
    if (prompt_read(app, a, &pr, false, out)) {
        prompt_free(&pr);
        return -1;
    }
    IntVec ids = pr.ids; // borrowed from pr
    Err e = {0};
    Ctx *x = app_ctx(app, &e);
    if (!x) {
        prompt_free(&pr);
        return out_error(out, "%s", e.msg);
    }
    int T = ids.n;
    if (T > c->n_ctx) {
        prompt_free(&pr);
        return out_error(out, "%d tokens do not fit in the context of %d", T, c->n_ctx);
    }
    ac.nl = ac.layer < 0 ? c->n_layer : 1;
    ac.nh = ac.head < 0 ? c->n_head : 1;
    ac.T = T;
    double bytes = 4.0 * ac.nl * ac.nh * (double)T * T;
    if (bytes > 2e9) {
        prompt_free(&pr);
        return out_error(out, "%d x %d attention maps of %d tokens need %.1f GB: ask for one layer or head", ac.nl, ac.nh,
                         T, bytes / 1e9);
    }
    ac.all = calloc(mem_mul((size_t)ac.nl * ac.nh, (size_t)T * T), sizeof(float)); // input-sized (mem.h rule 1)
    if (!ac.all) {
        prompt_free(&pr);
        return out_error(out, "out of memory for %d attention maps of %d x %d tokens (%.1f MB)", ac.nl * ac.nh, T, T,
                         bytes / 1e6);
    }
    Trace tr = {TRACE_ATT_PROBS, ac.layer >= 0 ? 1ull << ac.layer : 0, att_trace, &ac};
    ctx_reset(x);
    if (ctx_eval_types(x, ids.v, PROMPT_TYPES(&pr), ids.n, NULL, false, &tr, &e)) {
        free(ac.all);
        prompt_free(&pr);
        return out_error(out, "%s", e.msg);
    }
    JsonW *w = &out->w;
    json_tokens(w, "tokens", app->model->tok, ids.v, ids.n);
    json_ints(w, "ids", ids.v, ids.n);
    if (PROMPT_TYPES(&pr)) json_ints(w, "types", pr.types.v, pr.types.n); // a sentence pair's segments
    int L0 = ac.layer < 0 ? 0 : ac.layer, H0 = ac.head < 0 ? 0 : ac.head;
    jw_kint(w, "layer", L0);
    jw_kint(w, "head", H0);
    size_t TT = (size_t)T * T;
    json_matrix(w, "matrix", att_map(&ac, L0, H0), T, T);
    if (ac.layer < 0 || ac.head < 0) {
        jw_key(w, "layers");
        jw_arr(w);
        for (int l = 0; l < c->n_layer; l++) {
            if (ac.layer >= 0 && l != ac.layer) continue;
            jw_arr(w);
            for (int h = 0; h < c->n_head; h++) {
                if (ac.head >= 0 && h != ac.head) continue;
                json_matrix(w, NULL, att_map(&ac, l, h), T, T);
            }
            jw_arr_end(w);
        }
        jw_arr_end(w);
    }
    // the figure `save` exports: the selected matrix, the causal mask empty
    const float *mtx = att_map(&ac, L0, H0);
    float *shown = malloc(mem_mul(TT, sizeof(float))); // a figure: input-sized
    int fig = -1;
    if (shown) {
        char **labels = xcalloc((size_t)T, sizeof *labels);
        Buf lb = {0};
        for (int i = 0; i < T; i++) {
            for (int j = 0; j < T; j++) shown[(size_t)i * T + j] = c->a.causal && j > i ? NAN : mtx[(size_t)i * T + j];
            token_piece(app->model->tok, ids.v[i], &lb);
            labels[i] = xstrdup(lb.data ? lb.data : "");
        }
        char title[160];
        snprintf(title, sizeof title, "%s: layer %d head %d (rows: queries, columns: keys)", app->model->name, L0, H0);
        fig = app_set_figure(app, shown, T, T, (const char *const *)labels, (const char *const *)labels, false, title);
        for (int i = 0; i < T; i++) free(labels[i]);
        free(labels);
        free(shown);
        buf_free(&lb);
    }
    if (!fig && ac.nl * ac.nh > 1) { // every map asked for, as a grid: layers down, heads across
        if (c->a.causal) // the JSON is written: the future is masked from here on (the text reads j <= i)
            for (size_t k = 0; k < (size_t)ac.nl * ac.nh; k++)
                for (int i = 0; i < T; i++)
                    for (int j = i + 1; j < T; j++) ac.all[k * TT + (size_t)i * T + j] = NAN;
        int *ls = xmalloc(sizeof(int) * (size_t)ac.nl), *hs = xmalloc(sizeof(int) * (size_t)ac.nh);
        for (int l = 0; l < ac.nl; l++) ls[l] = ac.layer >= 0 ? ac.layer : l;
        for (int h = 0; h < ac.nh; h++) hs[h] = ac.head >= 0 ? ac.head : h;
        fig = app_figure_grid(app, ac.all, ac.nl, ac.nh, ls, hs);
        free(ls), free(hs);
        if (!fig) {
            Figure *f = &app->fig;
            char what[48];
            if (ac.layer >= 0) snprintf(what, sizeof what, "layer %d, every head", ac.layer);
            else if (ac.head >= 0) snprintf(what, sizeof what, "head %d of every layer", ac.head);
            else snprintf(what, sizeof what, "every head of every layer");
            snprintf(f->title, sizeof f->title, "%s: attention, %s (rows: queries, columns: keys)", app->model->name,
                     what);
        }
    }
    if (fig) {
        free(ac.all);
        prompt_free(&pr);
        return out_error(out, "out of memory for the figure of %d x %d attention maps (%d x %d)", ac.nl, ac.nh, T, T);
    }
    // the human form: every map asked for (layer=all and head=all: each layer's heads in turn)
    Buf tmp = {0};
    for (int l = 0; l < c->n_layer; l++)
        for (int h = 0; h < c->n_head; h++) {
            if ((ac.layer >= 0 && l != ac.layer) || (ac.head >= 0 && h != ac.head)) continue;
            const float *mp = att_map(&ac, l, h);
            if (l != L0 || h != H0) buf_putc(&out->text, '\n');
            buf_printf(&out->text, "layer %d head %d (rows: queries, columns: keys)\n", l, h);
            for (int i = 0; i < T; i++) {
                token_piece(app->model->tok, ids.v[i], &tmp);
                put_cell(&out->text, tmp.data, tmp.len, 12, true);
                for (int j = 0; j < (c->a.causal ? i + 1 : T); j++) buf_printf(&out->text, " %5.3f", mp[(size_t)i * T + j]);
                buf_putc(&out->text, '\n');
            }
        }
    buf_free(&tmp);
    free(ac.all);
    prompt_free(&pr);
    return 0;
}

// pe rotary [len=L relative=true]: the model's rotary angles per position x dimension pair, or
// the relative-position pattern of q.k for constant vectors (position x position).
static int pe_rotary_cmd(App *app, const Args *a, Out *out) {
    Err e = {0};
    const Model *m = app->model;
    long long len = m->cfg.n_ctx < 64 ? m->cfg.n_ctx : 64;
    bool rel = false;
    if (args_int(a, "len", 1, 8192, &len, &e) < 0 || args_bool(a, "relative", &rel, &e) < 0)
        return out_error(out, "pe rotary: %s", e.msg);
    if (args_opt(a, "dim") || args_opt(a, "cosine"))
        return out_error(out, "pe rotary: dim and cosine do not apply (the pairs are the model's; relative=true)");
    int half = pe_rotary_pairs(m), cols = 0;
    float *v = half ? malloc(sizeof(float) * (size_t)len * (size_t)(rel ? len : half)) : NULL;
    if (half && !v) return out_error(out, "out of memory");
    if (pe_rotary(m, v, (int)len, rel, &cols, &e)) {
        free(v);
        return out_error(out, "pe rotary: %s", e.msg);
    }
    char title[160];
    snprintf(title, sizeof title, "%s rotary positions: %s", m->name,
             rel ? "q.k of constant vectors, position x position" : "cos(position x frequency), position x pair");
    app_set_figure(app, v, (int)len, cols, NULL, NULL, true, title);
    JsonW *w = &out->w;
    jw_kstr(w, "kind", "rotary");
    jw_kint(w, "len", len);
    jw_kint(w, "pairs", half);
    jw_knum(w, "theta", m->cfg.a.rope_theta);
    jw_kbool(w, "relative", rel);
    jw_key(w, "frequencies");
    jw_arr(w);
    {
        float *inv = malloc(sizeof(float) * (size_t)half);
        if (inv) rope_freqs(&m->cfg.a, 2 * half, inv);
        for (int i = 0; inv && i < half; i++) jw_num(w, inv[i]);
        free(inv);
    }
    jw_arr_end(w);
    json_matrix(w, "matrix", v, (int)len, cols);
    buf_printf(&out->text, "%s: %lld positions x %d %s, theta %g (use --json for the values)\n", title, len, cols,
               rel ? "positions" : "dimension pairs", m->cfg.a.rope_theta);
    free(v);
    return 0;
}

static int cmd_pe(App *app, const Args *a, Out *out) {
    Err e = {0};
    const char *kind = args_pos(a, 0)->val;
    bool learned = !strcmp(kind, "learned"), rotary = !strcmp(kind, "rotary");
    if (!learned && !rotary && strcmp(kind, "sinusoidal"))
        return out_error(out, "pe: sinusoidal, learned or rotary expected, not '%.20s'", kind);
    if ((learned || rotary) && !app->model && app_load_model(app, NULL, NULL, &e)) return out_error(out, "%s", e.msg);
    if (rotary) return pe_rotary_cmd(app, a, out);
    if (args_opt(a, "relative"))
        return out_error(out, "pe %s: relative=true is rotary's (cosine=true shows how alike positions are)", kind);
    long long len = learned ? app->model->cfg.n_ctx : 64, dim = learned ? app->model->cfg.n_embd : 128;
    if (learned && len > 256) len = 256;
    bool cos = false;
    if (args_int(a, "len", 1, 8192, &len, &e) < 0 || args_bool(a, "cosine", &cos, &e) < 0) return out_error(out, "%s", e.msg);
    if (!learned && args_int(a, "dim", 2, 8192, &dim, &e) < 0) return out_error(out, "%s", e.msg);
    if (learned && args_opt(a, "dim")) return out_error(out, "pe learned: dim is the model's (n_embd)");
    // len= and dim= size these (mem.h rule 1)
    float *m = malloc(mem_mul((size_t)len * (size_t)dim, sizeof(float)));
    float *c = cos ? malloc(mem_mul((size_t)len * (size_t)len, sizeof(float))) : NULL;
    if (!m || (cos && !c)) {
        free(m), free(c);
        return out_error(out, "out of memory for %s %lld x %lld position matrix", cos && m ? "the cosine" : "a",
                         len, cos && m ? len : dim);
    }
    if (learned) {
        if (pe_learned(app->model, m, (int)len, &e)) {
            free(m), free(c);
            return out_error(out, "pe learned: %s", e.msg);
        }
    } else {
        pe_sinusoidal(m, (int)len, (int)dim);
    }
    int cols = cos ? (int)len : (int)dim;
    const float *show = m;
    if (cos) pe_cosine(c, m, (int)len, (int)dim), show = c;
    // published only once computed: `save` exports it
    char title[200]; // as the Positions view names it, with the sizes (and the model, when it is the model's)
    snprintf(title, sizeof title, "%s%s%s position %s: %lld positions x %d %s", learned ? app->model->name : "",
             learned ? " " : "", kind, cos ? "cosine similarity" : "encoding", len, cols, cos ? "positions" : "dimensions");
    if (app_set_figure(app, show, (int)len, cols, NULL, NULL, !cos, title)) {
        free(m), free(c);
        return out_error(out, "out of memory for the figure of %lld x %d", len, cols);
    }
    JsonW *w = &out->w;
    jw_kstr(w, "kind", kind);
    jw_kint(w, "len", len);
    jw_kint(w, "dim", dim);
    json_matrix(w, "matrix", show, (int)len, cols);
    buf_printf(&out->text, "%s position %s: %lld positions x %d %s (use --json for the values)\n", kind,
               cos ? "cosine similarity" : "encoding", len, cols, cos ? "positions" : "dimensions");
    free(m), free(c);
    return 0;
}

// A grid of attention maps (attention layer=all and/or head=all): SVG as the grid, layers down
// and heads across; CSV as one long table (layer, head, query, key, the tokens, weight).
static int save_grid(Buf *b, const Heatmap *hm, const Figure *f, bool svg, Err *e) {
    const int maps = f->grid_rows * f->grid_cols;
    if (svg) {
        char **rn = xcalloc((size_t)f->grid_rows, sizeof *rn), **cn = xcalloc((size_t)f->grid_cols, sizeof *cn);
        char name[32];
        for (int r = 0; r < f->grid_rows; r++)
            snprintf(name, sizeof name, "layer %d", f->grid_layer[r]), rn[r] = xstrdup(name);
        for (int c = 0; c < f->grid_cols; c++) snprintf(name, sizeof name, "head %d", f->grid_head[c]), cn[c] = xstrdup(name);
        int rc = heatmap_grid_to_svg(b, hm, f->grid_rows, f->grid_cols, (const char *const *)rn,
                                     (const char *const *)cn, f->title, e);
        for (int r = 0; r < f->grid_rows; r++) free(rn[r]);
        for (int c = 0; c < f->grid_cols; c++) free(cn[c]);
        free(rn), free(cn);
        return rc;
    }
    int *la = xmalloc(sizeof(int) * (size_t)maps), *hb = xmalloc(sizeof(int) * (size_t)maps);
    for (int k = 0; k < maps; k++) la[k] = f->grid_layer[k / f->grid_cols], hb[k] = f->grid_head[k % f->grid_cols];
    int rc = heatmap_maps_to_csv(b, hm, maps, "layer", "head", la, hb);
    free(la), free(hb);
    return rc;
}

static int cmd_save(App *app, const Args *a, Out *out) {
    const char *path = args_pos(a, 0)->val;
    const Figure *f = &app->fig;
    if (!f->v)
        return out_error(out, "save: nothing to save yet (run a command that makes a figure: attention, heads, lens, "
                              "patch, attend, rollout, neuron, layersim, similarity, pe, probe train, quantize, compare, "
                              "experiment or experiment show ID (the table); or open a view)");
    bool svg = has_ext(path, ".svg"), csv = has_ext(path, ".csv");
    if (!svg && !csv) return out_error(out, "save: '%.200s': the name must end in .svg or .csv", path);
    Heatmap hm = {f->v, f->rows, f->cols, (const char *const *)f->row_labels, (const char *const *)f->col_labels,
                  f->diverging ? CMAP_DIVERGING : CMAP_SEQUENTIAL, 0, 0};
    BarChart bars = {f->rows,          (const char *const *)f->row_labels, f->v,     f->err,
                     f->count,         f->title,                          f->label_name, f->n_extra,
                     (const char *const *)f->extra_names, f->extra};
    Buf b = {.fallible = true}; // the file's text grows with the figure (mem.h rule 1)
    Err e = {0};
    const int maps = f->grid_rows * f->grid_cols;
    int rc;
    if (f->err) rc = svg ? barchart_to_svg(&b, &bars, &e) : barchart_to_csv(&b, &bars, &e);
    else if (maps > 1) rc = save_grid(&b, &hm, f, svg, &e);
    else rc = svg ? heatmap_to_svg(&b, &hm, NULL, f->title, &e) : heatmap_to_csv(&b, &hm, NULL, &e);
    if (!rc && b.failed)
        rc = err_set(&e, "out of memory for the %s of the %d x %d figure (%zu bytes)", svg ? "SVG" : "CSV", f->rows,
                     f->cols, b.failed);
    if (!rc) rc = fs_write_atomic(path, b.data, b.len, &e);
    buf_free(&b);
    if (rc) return out_error(out, "%s", e.msg);
    jw_kstr(&out->w, "file", path);
    jw_kstr(&out->w, "format", svg ? "svg" : "csv");
    jw_kint(&out->w, "rows", f->rows);
    jw_kint(&out->w, "cols", f->cols);
    jw_kstr(&out->w, "title", f->title);
    jw_kstr(&out->w, "figure", f->err ? "bars" : "heatmap");
    if (maps > 1) jw_kint(&out->w, "maps", maps);
    if (f->err) buf_printf(&out->text, "saved %s (%d bars) to %s\n", f->title, f->rows, path);
    else if (maps > 1)
        buf_printf(&out->text, "saved %s (%d x %d maps of %d x %d) to %s\n", f->title, f->grid_rows, f->grid_cols,
                   f->rows, f->cols, path);
    else buf_printf(&out->text, "saved %s (%d x %d) to %s\n", f->title, f->rows, f->cols, path);
    return 0;
}

static const char *const k_none[] = {NULL};
static const char *const k_attention[] = {"ids", "types", "pair", "layer", "head", CHAT_KEYS, NULL};
static const char *const k_pe[] = {"len", "dim", "cosine", "relative", NULL};

const Command inspect_commands[] = {
    {"attention", cmd_attention, 0, 1, k_attention,
     "attention \"TEXT\" [pair=\"B\"|chat=true system=\"S\"]|ids=... [types=...] [layer=L|all] [head=H|all]",
     "Attention probabilities of one head (rows: query positions, columns: keys; a decoder's masked entries are "
     "0, an encoder's maps are full). layer=all and/or head=all add every selected map as layers[layer][head]. "
     "pair=, types=, chat= and system= as for logits.",
     true, true},
    {"pe", cmd_pe, 1, 1, k_pe, "pe sinusoidal|learned|rotary [len=L dim=D cosine=true relative=true]",
     "Positional encodings as a matrix (rows = positions): the original Transformer's sinusoids for any length "
     "and width, or the current model's learned position embeddings. cosine=true gives the position x position "
     "cosine-similarity matrix instead (sinusoidal, learned; dim= sinusoidal only). pe rotary (Llama family): cos(position x frequency) per position x dimension "
     "pair, with the model's frequencies (JSON frequencies); relative=true the position x position q.k of constant "
     "vectors rotated to each position (the mean over pairs of cos((m - n) theta_i): it depends on m - n alone).",
     false},
    {"save", cmd_save, 1, 1, k_none, "save FILE.svg|FILE.csv",
     "Export what was last shown as a heatmap (the attention map or position matrix of the last command, or the "
     "TUI's current view) as SVG (exact colours, labels, legend) or CSV (labels and values); after attention with "
     "layer=all or head=all every map: the SVG a grid (layers down, heads across), the CSV one long table (layer, "
     "head, query, key, query_token, key_token, weight); after an experiment "
     "(experiment, experiment show ID, or the Experiment view) its accuracy per condition as bars with error bars "
     "(SVG) or a table (CSV: condition, n, accuracy, stderr, ci_low, ci_high); after probe train its accuracy per "
     "layer the same way (CSV: layer, n, accuracy, stderr, ci_low, ci_high, train_accuracy, control, selectivity). JSON: file, format, rows, cols, title, "
     "figure (heatmap or bars), maps (a grid's count).",
     false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
