// quant.c - the quantization view: what `quantize` did to the weights (a histogram of the
// error dequantized - original per layer, with its RMS and largest value) and what `compare`
// found on a text (the KL divergence of the converted model from the loaded one at each
// position as a strip of shades, top-1 disagreements marked under it, the position under the
// cursor read out). It draws those results and runs nothing itself.
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"

enum { STRIP_LEVELS = 5 }; // shade levels of the KL strip: 0 (no divergence) .. 4 (the largest)

typedef struct QLayer {
    int layer;
    double rel_err, max_err;
    int nb;
    long long *hist;
} QLayer;

typedef struct Quant {
    // from quantize
    char what[160];
    double range;
    QLayer *layers;
    int n_layers;
    // from compare
    char cmp[200];
    int T;
    double *kl, *dlogit, kl_max;
    bool *top1;
    char **tokens;
    int cur, scroll_x, scroll_layer;
} Quant;

static int quant_open(View *v) {
    v->state = calloc(1, sizeof(Quant));
    return v->state ? 0 : -1;
}

static void layers_free(Quant *Q) {
    for (int i = 0; i < Q->n_layers; i++) free(Q->layers[i].hist);
    free(Q->layers);
    Q->layers = NULL, Q->n_layers = 0, Q->what[0] = 0;
}

static void compare_free(Quant *Q) {
    for (int t = 0; t < Q->T; t++) free(Q->tokens ? Q->tokens[t] : NULL);
    free(Q->tokens), free(Q->kl), free(Q->dlogit), free(Q->top1);
    Q->tokens = NULL, Q->kl = Q->dlogit = NULL, Q->top1 = NULL, Q->T = 0, Q->cmp[0] = 0;
}

static void quant_close(View *v) {
    layers_free(v->state);
    compare_free(v->state);
    free(v->state);
}

static void take_quantize(Quant *Q, const Json *j) {
    layers_free(Q);
    compare_free(Q); // a comparison was of the previous conversion
    const Json *ls = json_get(j, "layers");
    if (!ls || ls->type != JSON_ARR) return; // "off": back to the loaded model
    Q->layers = calloc(ls->len ? ls->len : 1, sizeof *Q->layers);
    if (!Q->layers) return;
    for (size_t i = 0; i < ls->len; i++) {
        const Json *l = &ls->items[i], *h = json_get(l, "hist");
        QLayer *q = &Q->layers[Q->n_layers++];
        q->layer = (int)json_num_or(l, "layer", -1);
        q->rel_err = json_num_or(l, "rel_err", 0);
        q->max_err = json_num_or(l, "max_err", 0);
        q->nb = h && h->type == JSON_ARR ? (int)h->len : 0;
        q->hist = calloc(q->nb ? (size_t)q->nb : 1, sizeof *q->hist);
        for (int b = 0; q->hist && b < q->nb; b++) q->hist[b] = (long long)h->items[b].num;
        if (!q->hist) q->nb = 0;
    }
    Q->range = json_num_or(j, "hist_range", 0);
    double before = json_num_or(j, "bytes_before", 0), after = json_num_or(j, "bytes_after", 0);
    // the type asked for, and the element types it made when more than one (Q4_K_M: "Q4_K 16,
    // Q6_K 14"); not "dtype", which is the converted model's most common type, kept matrices too
    char mix[64] = "";
    const Json *ty = json_get(j, "types");
    for (size_t i = 0; ty && ty->type == JSON_OBJ && ty->len > 1 && i < ty->len; i++) {
        size_t at = strlen(mix);
        snprintf(mix + at, sizeof mix - at, "%s%s %d", i ? ", " : " (", ty->keys[i], (int)ty->items[i].num);
        if (i + 1 == ty->len) snprintf(mix + strlen(mix), sizeof mix - strlen(mix), ")");
    }
    char tname[24];
    snprintf(tname, sizeof tname, "%s", json_str_or(j, "type", "?"));
    for (char *c = tname; *c; c++) *c = (char)toupper((unsigned char)*c); // as the types are written
    char kept[48] = "";
    int nk = (int)json_num_or(j, "kept", 0);
    if (nk) snprintf(kept, sizeof kept, ", %d kept as they were", nk);
    snprintf(Q->what, sizeof Q->what, "%s: %d matrices as %s%s%s, weights %.2f MB -> %.2f MB (%.1f%%)",
             json_str_or(j, "name", "?"), (int)json_num_or(j, "tensors", 0), tname, mix, kept,
             before / 1e6, after / 1e6, before > 0 ? 100 * after / before : 0);
    Q->scroll_layer = 0;
}

static void take_compare(Quant *Q, const Json *j) {
    const Json *kl = json_get(j, "kl"), *top = json_get(j, "top1"), *dl = json_get(j, "max_logit_diffs"),
               *tok = json_get(j, "tokens");
    if (!kl || kl->type != JSON_ARR || !top || top->len != kl->len || !dl || dl->len != kl->len) return;
    compare_free(Q);
    int T = (int)kl->len;
    Q->kl = calloc((size_t)T + 1, sizeof *Q->kl);
    Q->dlogit = calloc((size_t)T + 1, sizeof *Q->dlogit);
    Q->top1 = calloc((size_t)T + 1, sizeof *Q->top1);
    Q->tokens = calloc((size_t)T + 1, sizeof *Q->tokens);
    if (!Q->kl || !Q->dlogit || !Q->top1 || !Q->tokens) {
        compare_free(Q);
        return;
    }
    Q->T = T;
    Q->kl_max = 0;
    int agree = 0;
    for (int t = 0; t < T; t++) {
        Q->kl[t] = kl->items[t].num;
        Q->dlogit[t] = dl->items[t].num;
        Q->top1[t] = top->items[t].type == JSON_BOOL && top->items[t].b;
        agree += Q->top1[t];
        if (Q->kl[t] > Q->kl_max) Q->kl_max = Q->kl[t];
        const Json *s = tok && tok->type == JSON_ARR && (size_t)t < tok->len ? &tok->items[t] : NULL;
        Q->tokens[t] = s && s->type == JSON_STR ? strndup(s->str, s->len) : strdup("?");
    }
    snprintf(Q->cmp, sizeof Q->cmp, "KL per position (nats): mean %.3g, max %.3g; top-1 agrees at %d of %d",
             json_num_or(j, "kl_mean", 0), Q->kl_max, agree, T);
    Q->cur = 0, Q->scroll_x = 0;
}

static void quant_result(View *v, const ViewResult *r) {
    Quant *Q = v->state;
    if (!r->json) return;
    if (!strcmp(r->cmd, "load")) layers_free(Q), compare_free(Q);
    else if (!strcmp(r->cmd, "quantize")) take_quantize(Q, r->json);
    else if (!strcmp(r->cmd, "compare")) take_compare(Q, r->json);
}

static int quant_key(View *v, int key) {
    Quant *Q = v->state;
    switch (key) {
    case VK_LEFT: case 'h': Q->cur--; break;
    case VK_RIGHT: case 'l': Q->cur++; break;
    case VK_HOME: Q->cur = 0; break;
    case VK_END: Q->cur = Q->T - 1; break;
    case VK_UP: case 'k': Q->scroll_layer--; break;
    case VK_DOWN: case 'j': Q->scroll_layer++; break;
    default: return 0;
    }
    if (Q->cur >= Q->T) Q->cur = Q->T - 1;
    if (Q->cur < 0) Q->cur = 0;
    if (Q->scroll_layer > Q->n_layers - 1) Q->scroll_layer = Q->n_layers - 1;
    if (Q->scroll_layer < 0) Q->scroll_layer = 0;
    return 1;
}

// The strip's shade of KL k: 0 for none, else 1..4 in equal steps up to the largest.
static int strip_level(double k, double max) {
    if (!(k > 0) || !(max > 0)) return 0;
    int l = (int)ceil((STRIP_LEVELS - 1) * k / max);
    return l < 1 ? 1 : l > STRIP_LEVELS - 1 ? STRIP_LEVELS - 1 : l;
}

static const char *const ascii_shade[STRIP_LEVELS] = {" ", ".", ":", "*", "#"};
static const char *const bars_utf8[9] = {" ", "\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"};
static const char *const bars_ascii[9] = {" ", ".", ",", ":", "-", "=", "+", "*", "#"};

static int draw_strip(Quant *Q, CellGrid *g, int x, int y, int w, const ViewShared *sh) {
    bool u = sh->utf8;
    vd_printf(g, x, y, w, CELL_BOLD, u, "%s", Q->cmp);
    int sw = w - 6;
    if (sw < 1) return y + 1;
    if (Q->cur < Q->scroll_x) Q->scroll_x = Q->cur;
    if (Q->cur >= Q->scroll_x + sw) Q->scroll_x = Q->cur - sw + 1;
    vd_printf(g, x, y + 1, 6, CELL_DIM, u, "KL");
    vd_printf(g, x, y + 2, 6, CELL_DIM, u, "top-1");
    for (int i = 0; i < sw && Q->scroll_x + i < Q->T; i++) {
        int t = Q->scroll_x + i, lv = strip_level(Q->kl[t], Q->kl_max);
        double pos = Q->kl_max > 0 ? Q->kl[t] / Q->kl_max : 0;
        CellColor fg = sh->mode >= CMODE_C256 ? cellcolor_rgb(sh->mode, cmap_rgb(CMAP_SEQUENTIAL, pos)) : CELLCOLOR_DEFAULT;
        const char *gl = u ? cmap_shade_glyph(lv) : ascii_shade[lv];
        cellgrid_put(g, x + 6 + i, y + 1, gl, 1, fg, CELLCOLOR_DEFAULT, t == Q->cur ? CELL_REVERSE : 0);
        if (!Q->top1[t]) cellgrid_put(g, x + 6 + i, y + 2, u ? "\u00d7" : "x", 1, vd_error(sh->mode), CELLCOLOR_DEFAULT, 0);
        else cellgrid_put(g, x + 6 + i, y + 2, u ? "\u00b7" : ".", 1, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, CELL_DIM);
    }
    int t = Q->cur;
    const char *s = Q->tokens[t];
    int X = x + vd_printf(g, x, y + 3, w, 0, u, "pos %d \"", t);
    X += vd_text(g, X, y + 3, 24, s, 0, strlen(s), vd_accent(sh->mode), CELLCOLOR_DEFAULT, CELL_BOLD, u);
    X += vd_printf(g, X, y + 3, x + w - X, 0, u, "\"");
    vd_printf(g, X, y + 3, x + w - X, 0, u, "  KL %.4e  top-1 %s  max |dlogit| %.4f", Q->kl[t],
              Q->top1[t] ? "same" : "differs", Q->dlogit[t]);
    return y + 5;
}

static void draw_hists(Quant *Q, CellGrid *g, int x, int y, int h, int w, const ViewShared *sh) {
    bool u = sh->utf8;
    vd_printf(g, x, y, w, CELL_BOLD, u, "Weight error (dequantized - original) per layer, from -%.3g to +%.3g", Q->range,
              Q->range);
    int nb = Q->n_layers ? Q->layers[0].nb : 0, hx = x + 7;
    vd_printf(g, x, y + 1, w, CELL_DIM, u, "layer");
    vd_printf(g, hx, y + 1, w - 7, CELL_DIM, u, "%-*s  rms err/w   max|err|", nb, "histogram");
    int rows = h - 2;
    for (int i = 0; i < rows && Q->scroll_layer + i < Q->n_layers; i++) {
        const QLayer *q = &Q->layers[Q->scroll_layer + i];
        int yy = y + 2 + i;
        if (q->layer >= 0) vd_printf(g, x, yy, 6, 0, u, "%d", q->layer);
        else vd_printf(g, x, yy, 6, 0, u, "other");
        long long mx = 0;
        for (int b = 0; b < q->nb; b++) mx = q->hist[b] > mx ? q->hist[b] : mx;
        for (int b = 0; b < q->nb && hx + b < x + w; b++) {
            int lv = q->hist[b] <= 0 || mx <= 0 ? 0 : 1 + (int)(7.0 * (double)q->hist[b] / (double)mx);
            if (lv > 8) lv = 8;
            cellgrid_put(g, hx + b, yy, u ? bars_utf8[lv] : bars_ascii[lv], 1, vd_accent(sh->mode), CELLCOLOR_DEFAULT, 0);
        }
        vd_printf(g, hx + nb + 2, yy, x + w - hx - nb - 2, 0, u, "%8.3f%%   %.3e", 100 * q->rel_err, q->max_err);
    }
}

static void quant_draw(View *v, CellGrid *g, int x, int y, int w, int h) {
    Quant *Q = v->state;
    const ViewShared *sh = v->host->sh;
    bool u = sh->utf8;
    v->cur_x = v->cur_y = -1;
    int X = x + cellgrid_text(g, x, y, w, "Quantization", vd_accent(sh->mode), CELLCOLOR_DEFAULT, CELL_BOLD);
    vd_printf(g, X + 2, y, x + w - X - 2, CELL_DIM, u, "h/l position  j/k layers  :compare \"TEXT\"");
    if (!Q->n_layers) {
        vd_printf(g, x, y + 2, w, 0, u, "no converted model: run :quantize q8_0 (or int8, q4_0, q4_1, q4_k, q6_k, f16)");
        return;
    }
    vd_printf(g, x, y + 1, w, 0, u, "%s", Q->what);
    int yy = y + 3;
    if (Q->T) yy = draw_strip(Q, g, x, yy, w, sh);
    else vd_printf(g, x, yy, w, CELL_DIM, u, "no comparison yet: :compare \"TEXT\" runs both models on a text"), yy += 2;
    if (y + h - yy >= 3) draw_hists(Q, g, x, yy, y + h - yy, w, sh);
}

const ViewOps quant_view_ops = {
    .name = "quant",
    .title = "Quant",
    .keys = "h/l or arrows  move along the KL strip (the position's KL, top-1 and logit change read out)\n"
            "j/k  scroll the layers' error histograms\n"
            ":quantize q8_0|q4_0|int8|...  convert the loaded model (histograms per layer)\n"
            ":compare \"TEXT\"  KL per position of the converted model against the loaded one\n"
            "strip: shade rises with KL (a full block is the largest); x under a position: top-1 differs",
    .open = quant_open,
    .close = quant_close,
    .draw = quant_draw,
    .key = quant_key,
    .result = quant_result,
};
