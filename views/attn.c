// attn.c - the attention view: the head view (query x key heatmap with the tokens on both axes,
// a cursor reading out the exact value, the causal mask left empty), the model view (every layer
// x head as thumbnails, plus the mean over heads; Enter zooms into one). It shows the lab's
// prompt, or prompt + completion after a generation, by running
// `attention ids=... layer=all head=all` (one layer or one head at a time for long sequences).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "heatmap.h"
#include "view.h"

#define ALL_MAX 1500000 // numbers fetched at once with layer=all head=all; above, a layer at a time

typedef struct Attn {
    int L, H, T;
    float **maps;    // [L*H] each [T*T] or NULL (not loaded); NaN where masked
    float **means;   // [L] mean over heads, when every head of the layer is loaded
    char **tokens;   // [T]
    IntVec ids, types; // types: a sentence pair's segment ids, or none
    bool own;        // the data is of a text typed in an :attention command, not the lab's: the
                     // view's requests (the model view's other heads) are for its ids
    int n_prompt;    // prompt tokens (the rest were generated)
    long long run_id;
    unsigned version; // the shared version the data belongs to
    bool have;
    bool pending;    // a request is queued
    bool model_view;
    int layer, head; // head view (head == H: the mean)
    int head_back;   // the head `a` left for the mean, which `a` goes back to
    HeatmapView hv;
    int last_zoom;   // zoom of the last head-view layout
    int sel_l, sel_h, top_l, left_h; // model view
    int grid_rows, grid_cols;        // thumbnails visible at the last draw
    char note[128];  // where the data came from
    bool filling;    // the model view is loading its layers one by one
    bool fit_all;    // the head view reduces the whole matrix to the screen (key 0)
} Attn;

static void data_free(Attn *A) {
    for (int i = 0; A->maps && i < A->L * A->H; i++) free(A->maps[i]);
    for (int i = 0; A->means && i < A->L; i++) free(A->means[i]);
    for (int i = 0; A->tokens && i < A->T; i++) free(A->tokens[i]);
    free(A->maps), free(A->means), free(A->tokens);
    A->maps = A->means = NULL, A->tokens = NULL;
    A->ids.n = A->types.n = 0;
    A->own = false;
    A->L = A->H = A->T = 0;
    A->have = false;
}

static int attn_open(View *v) {
    Attn *A = xcalloc(1, sizeof *A);
    A->hv = (HeatmapView){v->host->sh->mode, 0, 0, 0, 0, 0, 0};
    v->state = A; // the head view first: tokens on both axes
    return 0;
}

static void attn_close(View *v) {
    Attn *A = v->state;
    data_free(A);
    iv_free(&A->ids), iv_free(&A->types);
    free(A);
}

static const float *map_of(const Attn *A, int l, int h) {
    if (l < 0 || l >= A->L) return NULL;
    if (h == A->H) return A->means[l];
    if (h < 0 || h > A->H) return NULL;
    return A->maps[(size_t)l * A->H + h];
}

// Say on the status line that what (of T tokens) did not fit in memory.
static void oom(View *v, const char *what, int T) {
    char msg[160];
    snprintf(msg, sizeof msg, "out of memory for %s of %d tokens: ask for one layer (:attention ... layer=L head=all)",
             what, T);
    v->host->message(v->host, true, msg);
}

// ---- requests ----

// How much one request fetches: 0 everything, 1 a layer, 2 a head.
static int grain(const Attn *A, const ViewShared *sh, int T) {
    double per_head = (double)T * T;
    if (per_head * sh->n_layer * sh->n_head <= ALL_MAX) return 0;
    if (per_head * sh->n_head <= ALL_MAX) return 1;
    return 2;
}

// Queue the attention command for layer l / head h of the lab's prompt or last generation.
static void request(View *v, int l, int h) {
    Attn *A = v->state;
    ViewShared *sh = v->host->sh;
    if (A->pending) return;
    Buf line = {0};
    // a generation that filled the context holds one token more than it (the last one sampled
    // is never fed back): the map is of the first n_ctx
    int n_seq = sh->n_ctx > 0 && sh->seq.n > sh->n_ctx ? sh->n_ctx : sh->seq.n;
    int T = n_seq;
    if (A->own && A->ids.n) { // the typed text's other heads
        T = A->ids.n;
        buf_puts(&line, "attention ids=");
        for (int i = 0; i < A->ids.n; i++) buf_printf(&line, "%s%d", i ? "," : "", A->ids.v[i]);
        if (A->types.n) buf_puts(&line, " types=");
        for (int i = 0; i < A->types.n; i++) buf_printf(&line, "%s%d", i ? "," : "", A->types.v[i]);
    } else if (n_seq) {
        buf_puts(&line, "attention ids=");
        for (int i = 0; i < n_seq; i++) buf_printf(&line, "%s%d", i ? "," : "", sh->seq.v[i]);
    } else if (sh->prompt.len) {
        buf_puts(&line, "attention ");
        buf_put_quoted(&line, sh->prompt.data, sh->prompt.len);
        T = (int)sh->prompt.len + 1; // an upper bound for byte-level tokenizers; good enough for the grain
        if (A->have && A->version == sh->version) T = A->T;
    } else {
        v->host->message(v->host, false, "no prompt yet: type one in the lab (1, then e), or run :attention \"TEXT\"");
        buf_free(&line);
        return;
    }
    int gr = grain(A, sh, T);
    if (gr == 0) buf_puts(&line, " layer=all head=all");
    else if (gr == 1) buf_printf(&line, " layer=%d head=all", l < 0 ? 0 : l);
    else buf_printf(&line, " layer=%d head=%d", l < 0 ? 0 : l, h < 0 || h >= sh->n_head ? 0 : h);
    A->pending = true;
    v->host->run(v->host, line.data, VR_QUIET);
    buf_free(&line);
}

static bool layer_loaded(const Attn *A, int l) {
    if (l < 0 || l >= A->L) return false;
    for (int h = 0; h < A->H; h++)
        if (!A->maps[(size_t)l * A->H + h]) return false;
    return true;
}

// Make sure what is on screen is loaded.
static void want(View *v) {
    Attn *A = v->state;
    ViewShared *sh = v->host->sh;
    // the Lab's `a` asks for its run's map, whatever text an :attention command showed last (that
    // text was shown, the cursor on a row of it)
    bool lab_asks = A->own && sh->focus && (sh->seq.n || sh->prompt.len);
    if (A->own && (A->version != sh->version || lab_asks)) A->own = false; // the lab moved on: follow it again
    if (!A->have || lab_asks || (A->version != sh->version && (sh->seq.n || sh->prompt.len))) {
        request(v, A->model_view ? A->sel_l : A->layer, A->model_view ? A->sel_h : A->head);
        return;
    }
    if (A->model_view) { // the selected layer first, then the others, one request at a time
        A->filling = false;
        if (!layer_loaded(A, A->sel_l) && !(A->sel_h < A->H && map_of(A, A->sel_l, A->sel_h))) {
            request(v, A->sel_l, A->sel_h);
            A->filling = true;
            return;
        }
        int gr = grain(A, sh, A->T);
        if (gr == 2) return; // a head at a time is too slow for the whole grid
        for (int l = 0; l < A->L; l++)
            if (!layer_loaded(A, l)) { // (grain 0: every layer in one request, as after one typed head)
                request(v, l, 0);
                A->filling = true;
                return;
            }
    } else if (!map_of(A, A->layer, A->head)) {
        request(v, A->layer, A->head == A->H ? 0 : A->head);
    }
}

// ---- the figure ----

static void publish(View *v) {
    Attn *A = v->state;
    if (!A->have) return;
    char title[200];
    const char *model = v->host->sh->model;
    if (!A->model_view) {
        const float *m = map_of(A, A->layer, A->head);
        if (!m) return;
        // as the screen says it, the axes too (and headless attention's figure names them alike)
        if (A->head == A->H)
            snprintf(title, sizeof title, "%s: layer %d, mean over heads (rows: queries, columns: keys)", model, A->layer);
        else snprintf(title, sizeof title, "%s: layer %d head %d (rows: queries, columns: keys)", model, A->layer, A->head);
        v->host->figure(v->host, m, A->T, A->T, (const char *const *)A->tokens, (const char *const *)A->tokens, false,
                        title);
        return;
    }
    // the model view: every map tiled, layers down, heads (then the mean) across, NaN between
    int T = A->T, C = A->H + 1;
    long rows = (long)A->L * (T + 1) - 1, cols = (long)C * (T + 1) - 1;
    if (rows * cols > 1000000) { // too big for a useful file: the selected map
        bool sv = A->model_view;
        int l = A->layer, h = A->head;
        A->model_view = false, A->layer = A->sel_l, A->head = A->sel_h;
        publish(v);
        A->model_view = sv, A->layer = l, A->head = h;
        return;
    }
    float *t = malloc(mem_mul((size_t)rows * (size_t)cols, sizeof(float))); // a figure: checked
    if (!t) {
        oom(v, "the figure of every layer and head", T);
        return;
    }
    for (long i = 0; i < rows * cols; i++) t[i] = NAN;
    for (int l = 0; l < A->L; l++)
        for (int h = 0; h < C; h++) {
            const float *m = map_of(A, l, h);
            if (!m) continue;
            for (int r = 0; r < T; r++)
                memcpy(t + ((size_t)l * (T + 1) + r) * (size_t)cols + (size_t)h * (T + 1), m + (size_t)r * T,
                       sizeof(float) * (size_t)T);
        }
    snprintf(title, sizeof title, "%s: attention of every layer (down) and head (across, the mean last)", model);
    // each row names its layer and query token, each column its head and key token; the blank
    // row and column between two maps have none
    char **rl = xcalloc((size_t)rows, sizeof *rl), **cl = xcalloc((size_t)cols, sizeof *cl);
    for (long r = 0; r < rows; r++) {
        Buf b = {0};
        const char *tok = A->tokens && r % (T + 1) < T ? A->tokens[r % (T + 1)] : NULL;
        if (r % (T + 1) < T) buf_printf(&b, "L%ld %s", r / (T + 1), tok ? tok : "");
        rl[r] = b.data ? buf_take(&b) : xstrdup("");
    }
    for (long c = 0; c < cols; c++) {
        Buf b = {0};
        long h = c / (T + 1);
        if (c % (T + 1) < T) {
            if (h == A->H) buf_puts(&b, "mean ");
            else buf_printf(&b, "h%ld ", h);
            const char *tok = A->tokens ? A->tokens[c % (T + 1)] : NULL;
            buf_puts(&b, tok ? tok : "");
        }
        cl[c] = b.data ? buf_take(&b) : xstrdup("");
    }
    v->host->figure(v->host, t, (int)rows, (int)cols, (const char *const *)rl, (const char *const *)cl, false, title);
    for (long r = 0; r < rows; r++) free(rl[r]);
    for (long c = 0; c < cols; c++) free(cl[c]);
    free(rl), free(cl);
    free(t);
}

// ---- results ----

static bool same_ids(const Attn *A, const Json *ids) {
    if (!ids || (int)ids->len != A->ids.n) return false;
    for (int i = 0; i < A->ids.n; i++)
        if ((int)ids->items[i].num != A->ids.v[i]) return false;
    return true;
}

// The mean over heads of layer l when all its heads are loaded; -1 when memory ran out.
static int compute_mean(Attn *A, int l) {
    if (!layer_loaded(A, l)) return 0;
    size_t TT = (size_t)A->T * A->T;
    float *m = A->means[l] ? A->means[l] : malloc(mem_mul(TT, sizeof(float))); // an attention map: checked
    if (!m) return -1;
    for (size_t i = 0; i < TT; i++) {
        double s = 0;
        for (int h = 0; h < A->H; h++) s += A->maps[(size_t)l * A->H + h][i];
        m[i] = (float)(s / A->H);
    }
    A->means[l] = m;
    return 0;
}

// Store one T x T matrix for (l, h), masking above the diagonal for decoders; -1 when memory
// ran out (the map stays unloaded).
static int store(Attn *A, int l, int h, const Json *mat, bool causal) {
    if (!mat || mat->type != JSON_ARR || (int)mat->len != A->T || l < 0 || l >= A->L || h < 0 || h >= A->H) return 0;
    size_t k = (size_t)l * A->H + h, T = (size_t)A->T;
    float *m = A->maps[k] ? A->maps[k] : malloc(mem_mul(T * T, sizeof(float))); // an attention map: checked
    if (!m) return -1;
    for (size_t i = 0; i < T; i++) {
        const Json *row = &mat->items[i];
        for (size_t j = 0; j < T; j++) {
            float x = row->type == JSON_ARR && j < row->len && row->items[j].type == JSON_NUM ? (float)row->items[j].num : NAN;
            m[i * T + j] = causal && j > i ? NAN : x;
        }
    }
    A->maps[k] = m;
    return 0;
}

// The cursor on the row (and the diagonal) of the position the Lab asked for, once the map of
// that sequence is there.
static void take_focus(View *v) {
    Attn *A = v->state;
    ViewShared *sh = v->host->sh;
    // not yet this sequence's map (pending: the Lab's asked for, the map shown another text's)
    if (!sh->focus || !A->T || A->model_view || A->pending || A->version != sh->version) return;
    int p = sh->focus - 1 < A->T ? sh->focus - 1 : A->T - 1;
    A->hv.cur_row = A->hv.cur_col = p;
    sh->focus = 0;
}

static void attn_result(View *v, const ViewResult *r) {
    Attn *A = v->state;
    ViewShared *sh = v->host->sh;
    const char *c = r->cmd;
    if (!strcmp(c, "load") && r->json) {
        data_free(A);
        A->sel_l = A->sel_h = A->layer = A->head = 0;
        return;
    }
    if (strcmp(c, "attention")) return;
    if (r->quiet) A->pending = false;
    if (!r->json) return;
    const Json *j = r->json, *ids = json_get(j, "ids"), *toks = json_get(j, "tokens");
    if (!ids || !toks || ids->len != toks->len || !ids->len) return;
    int T = (int)ids->len;
    if (!same_ids(A, ids) || A->L != sh->n_layer || A->H != sh->n_head) {
        data_free(A);
        A->L = sh->n_layer > 0 ? sh->n_layer : 1, A->H = sh->n_head > 0 ? sh->n_head : 1, A->T = T;
        A->maps = xcalloc((size_t)A->L * A->H, sizeof *A->maps);
        A->means = xcalloc((size_t)A->L, sizeof *A->means);
        A->tokens = xcalloc((size_t)T, sizeof *A->tokens);
        for (int i = 0; i < T; i++) {
            iv_push(&A->ids, (int)ids->items[i].num);
            const Json *s = &toks->items[i];
            A->tokens[i] = xstrdup(s->type == JSON_STR ? s->str : "");
        }
        const Json *ty = json_get(j, "types");
        for (int i = 0; ty && ty->type == JSON_ARR && ty->len == ids->len && i < T; i++)
            iv_push(&A->types, (int)ty->items[i].num);
        A->hv.cur_row = A->hv.cur_col = 0;
        A->hv.top = A->hv.left = 0;
    }
    int l0 = (int)json_num_or(j, "layer", 0), h0 = (int)json_num_or(j, "head", 0);
    const Json *layers = json_get(j, "layers");
    bool causal = sh->causal;
    int bad = 0; // maps that did not fit in memory
    if (layers && layers->type == JSON_ARR && layers->len) {
        int nl = (int)layers->len, nh = (int)layers->items[0].len;
        for (int li = 0; li < nl; li++) {
            int l = nl == A->L ? li : l0;
            const Json *hs = &layers->items[li];
            for (int hi = 0; hi < (int)hs->len; hi++) bad |= store(A, l, nh == A->H ? hi : h0, &hs->items[hi], causal);
        }
    } else {
        bad |= store(A, l0, h0, json_get(j, "matrix"), causal);
    }
    for (int l = 0; l < A->L; l++) bad |= compute_mean(A, l);
    A->have = true;
    if (bad) { // keep what fits; asking again would fail again
        A->filling = false;
        oom(v, "the attention maps", T);
    } else if (r->quiet && A->filling && A->model_view) {
        want(v);
    }
    A->version = sh->version;
    A->n_prompt = sh->seq.n == T ? sh->n_prompt : T;
    A->run_id = sh->seq.n == T ? sh->run_id : 0;
    if (A->run_id) snprintf(A->note, sizeof A->note, "run #%lld: %d prompt + %d generated tokens", A->run_id, A->n_prompt, T - A->n_prompt);
    else snprintf(A->note, sizeof A->note, "%d tokens", T);
    if (!r->quiet) { // typed by the person: show what was asked for
        A->own = !(sh->seq.n == T && !memcmp(sh->seq.v, A->ids.v, sizeof(int) * (size_t)T));
        bool all = layers && (int)layers->len == A->L && (int)layers->items[0].len == A->H;
        A->model_view = all;
        A->layer = l0, A->head = h0;
        A->sel_l = l0, A->sel_h = h0;
    }
    take_focus(v);
    publish(v);
}

static void attn_show(View *v) {
    Attn *A = v->state;
    if (v->host->sh->focus && A->model_view) { // the Lab's `a`: one head's map, the cursor on the token
        A->model_view = false;
        A->layer = A->sel_l, A->head = A->sel_h;
    }
    want(v);
    take_focus(v);
    publish(v);
}

// ---- keys ----

static int clampi(int x, int lo, int hi) { return x < lo ? lo : x > hi ? hi : x; }

static void zoom(Attn *A, int dir) {
    int z = A->hv.zoom ? A->hv.zoom : A->last_zoom ? A->last_zoom : 1;
    A->hv.zoom = clampi(z + dir, 1, HM_ZOOM_MAX);
}

static int head_key(View *v, int key) {
    Attn *A = v->state;
    HeatmapView *hv = &A->hv;
    int page = 8;
    switch (key) {
    case VK_UP: case 'k': hv->cur_row--; break;
    case VK_DOWN: case 'j': hv->cur_row++; break;
    case VK_LEFT: case 'h': hv->cur_col--; break;
    case VK_RIGHT: case 'l': hv->cur_col++; break;
    case VK_PGUP: hv->cur_row -= page; break;
    case VK_PGDN: hv->cur_row += page; break;
    case VK_HOME: hv->cur_col = 0; break;
    case VK_END: hv->cur_col = A->T - 1; break;
    case '+': zoom(A, 1), A->fit_all = false; break;
    case '-': zoom(A, -1), A->fit_all = false; break;
    case '=': hv->zoom = 0, A->fit_all = !A->fit_all; break; // (0 switches to view 0, as everywhere)
    case '[': A->layer = clampi(A->layer - 1, 0, A->L - 1); break;
    case ']': A->layer = clampi(A->layer + 1, 0, A->L - 1); break;
    case '<': case '{': A->head = clampi(A->head - 1, 0, A->H); break;
    case '>': case '}': A->head = clampi(A->head + 1, 0, A->H); break;
    case 'a': // the mean and back to the head it was opened from (it went to head 0)
        if (A->head == A->H) A->head = clampi(A->head_back, 0, A->H - 1 > 0 ? A->H - 1 : 0);
        else A->head_back = A->head, A->head = A->H;
        break;
    case 'm': case VK_ESC: case VK_BACKSPACE:
        if (key == VK_ESC && !A->have) return 0;
        A->model_view = true, A->sel_l = A->layer, A->sel_h = A->head;
        break;
    default: return 0;
    }
    if (hv->cur_row < 0) hv->cur_row = 0;
    if (hv->cur_col < 0) hv->cur_col = 0;
    want(v);
    publish(v);
    return 1;
}

static int model_key(View *v, int key) {
    Attn *A = v->state;
    switch (key) {
    case VK_UP: case 'k': A->sel_l--; break;
    case VK_DOWN: case 'j': A->sel_l++; break;
    case VK_LEFT: case 'h': A->sel_h--; break;
    case VK_RIGHT: case 'l': A->sel_h++; break;
    // a screen of layers: the grid and the selection move together (from layers 0-4, PgDn showed
    // 1-5 with the selection on 5), the drawing clamps both
    case VK_PGUP: case VK_PGDN: {
        int page = (A->grid_rows > 1 ? A->grid_rows : 1) * (key == VK_PGDN ? 1 : -1);
        A->sel_l += page, A->top_l += page;
        if (A->top_l < 0) A->top_l = 0;
        break;
    }
    case VK_HOME: A->sel_h = 0; break;
    case VK_END: A->sel_h = A->H; break;
    case VK_ENTER: case 'm': case '+':
        A->model_view = false, A->layer = A->sel_l, A->head = A->sel_h;
        break;
    default: return 0;
    }
    A->sel_l = clampi(A->sel_l, 0, A->L > 0 ? A->L - 1 : 0);
    A->sel_h = clampi(A->sel_h, 0, A->H);
    want(v);
    publish(v);
    return 1;
}

static int attn_key(View *v, int key) {
    Attn *A = v->state;
    if (key == 'r') {
        A->version = 0;
        A->have = false;
        want(v);
        return 1;
    }
    if (!A->have) return 0;
    return A->model_view ? model_key(v, key) : head_key(v, key);
}

// ---- drawing ----

// The note after a grid's title: where its data came from and the keys, or, while the map of a
// newer text (a generation, a new prompt) is being computed, that the one shown is the old one
// (a new generation's map takes seconds on a real model, the previous map on screen meanwhile).
static void draw_note(const Attn *A, const ViewShared *sh, CellGrid *g, int X, int y, int w, const char *keys) {
    if (A->pending && A->version != sh->version)
        vd_printf(g, X, y, w, CELL_BOLD, sh->utf8, "computing the map of the new text; shown meanwhile: %s", A->note);
    else vd_printf(g, X, y, w, CELL_DIM, sh->utf8, "%s  %s", A->note, keys);
}

static void draw_head(View *v, CellGrid *g, int x, int y, int w, int h) {
    Attn *A = v->state;
    ViewShared *sh = v->host->sh;
    const float *m = map_of(A, A->layer, A->head);
    char hd[32];
    if (A->head == A->H) snprintf(hd, sizeof hd, "mean of %d heads", A->H);
    else snprintf(hd, sizeof hd, "head %d/%d", A->head, A->H - 1);
    int X = x + vd_printf(g, x, y, w, CELL_BOLD, sh->utf8, "layer %d/%d  %s", A->layer, A->L - 1, hd);
    draw_note(A, sh, g, X + 2, y, x + w - X - 2, "rows: queries, columns: keys  [ ] layer  < > head  a mean  m model view  +/- = zoom");
    if (!m) {
        vd_printf(g, x, y + 2, w, CELL_DIM, sh->utf8, "loading layer %d...", A->layer);
        return;
    }
    Heatmap hm = {m, A->T, A->T, (const char *const *)A->tokens, (const char *const *)A->tokens, CMAP_SEQUENTIAL, 0, 0};
    A->hv.mode = sh->mode;
    A->hv.flags = 0;
    heatmap_fit_or_scroll(&A->hv, &hm, w, h - 1, A->fit_all); // too long: keep the labels, scroll
    HeatmapLayout lay;
    HeatmapView probe = A->hv;
    heatmap_layout(&lay, &hm, &probe, w, h - 1);
    A->last_zoom = lay.zoom;
    heatmap_render(g, x, y + 1, w, h - 1, &hm, &A->hv);
}

#define MODEL_MIN_PITCH 3 // text rows per layer of the model view's grid, at least (when the area has them)

// Append to b which layers and heads of the model view's grid are on screen, vis_r layers from
// top_l and vis_c columns (heads, then the mean) from left_h ("layers 0-4 of 12"); nothing when
// the whole grid is.
static void shown_text(Buf *b, const Attn *A, int vis_r, int vis_c) {
    int l1 = A->top_l + vis_r - 1, c0 = A->left_h, c1 = A->left_h + vis_c - 1;
    if (vis_r < A->L) {
        if (vis_r == 1) buf_printf(b, "layer %d of %d", A->top_l, A->L);
        else buf_printf(b, "layers %d-%d of %d", A->top_l, l1, A->L);
    }
    if (vis_c < A->H + 1) {
        int last = c1 < A->H ? c1 : A->H - 1; // the last head shown, the mean aside
        if (b->len) buf_puts(b, ", ");
        if (c0 >= A->H) buf_printf(b, "the mean of %d heads", A->H);
        else if (last == c0) buf_printf(b, "head %d of %d", c0, A->H);
        else buf_printf(b, "heads %d-%d of %d", c0, last, A->H);
        if (c0 < A->H && c1 >= A->H) buf_puts(b, " + mean");
    }
}

static void draw_model(View *v, CellGrid *g, int x, int y, int w, int h) {
    Attn *A = v->state;
    ViewShared *sh = v->host->sh;
    bool u = sh->utf8;
    CellColor acc = vd_accent(sh->mode);
    int X = x + vd_printf(g, x, y, w, CELL_BOLD, u, "model view: %d layers x %d heads + mean", A->L, A->H);
    draw_note(A, sh, g, X + 2, y, x + w - X - 2, "arrows move, Enter zooms in, r reloads");
    int C = A->H + 1, lw = 4;
    int aw = w - lw, ah = h - 3;
    if (aw < 4 || ah < 1) return;
    // a row pitch of at least MODEL_MIN_PITCH (two text rows of map, four half-block pixel rows,
    // and a blank row): a deep model's grid then scrolls rather than squeezing each map into a row
    int pw = aw / C, ph = ah / A->L;
    if (pw < 4) pw = 4;
    // thumbnails up to about as tall as they are wide (a text row is two half-block pixel rows, or
    // one cell twice as tall as wide), as tall as a map of the text's tokens needs a cell each:
    // where the layers would leave each map a sliver of its slot, the grid scrolls instead (30
    // layers at 250 x 70 drew 99 tokens' maps in 4 x 2 cells of 24 x 2 slots); three layers, or
    // all of fewer, stay on screen
    int target = (pw - 1) / 2 + 1, need = (sh->mode == CMODE_ASCII || sh->mode == CMODE_C8 ? A->T : (A->T + 1) / 2) + 1;
    int keep = A->L < 3 ? A->L : 3;
    if (target > need) target = need;
    if (keep > 0 && target > ah / keep) target = ah / keep;
    if (2 * ph < target) ph = target < ah ? target : ah; // (not to gain a row or two at the cost of layers)
    if (ph < MODEL_MIN_PITCH) ph = ah < MODEL_MIN_PITCH ? ah : MODEL_MIN_PITCH;
    int tw = pw - 1, th = ph >= 3 ? ph - 1 : ph;
    int vis_c = aw / pw, vis_r = ah / ph;
    if (vis_c > C) vis_c = C;
    if (vis_r > A->L) vis_r = A->L;
    if (vis_c < 1) vis_c = 1;
    if (vis_r < 1) vis_r = 1;
    A->grid_rows = vis_r, A->grid_cols = vis_c;
    // scroll so that the selection is visible
    if (A->sel_l < A->top_l) A->top_l = A->sel_l;
    if (A->sel_l >= A->top_l + vis_r) A->top_l = A->sel_l - vis_r + 1;
    if (A->sel_h < A->left_h) A->left_h = A->sel_h;
    if (A->sel_h >= A->left_h + vis_c) A->left_h = A->sel_h - vis_c + 1;
    A->top_l = clampi(A->top_l, 0, A->L - vis_r > 0 ? A->L - vis_r : 0);
    A->left_h = clampi(A->left_h, 0, C - vis_c > 0 ? C - vis_c : 0);
    // head labels
    for (int c = 0; c < vis_c; c++) {
        int hh = A->left_h + c;
        int attr = hh == A->sel_h ? CELL_REVERSE | CELL_BOLD : CELL_DIM;
        if (hh == A->H) vd_printf(g, x + lw + c * pw, y + 1, tw, attr, u, "%s", tw >= 4 ? "mean" : "m");
        else vd_printf(g, x + lw + c * pw, y + 1, tw, attr, u, "h%d", hh);
    }
    HeatmapView tv = {sh->mode, 0, 0, 0, -1, -1, HM_NO_LABELS | HM_NO_LEGEND | HM_NO_VALUES};
    for (int r = 0; r < vis_r; r++) {
        int l = A->top_l + r, Y = y + 2 + r * ph;
        vd_printf(g, x, Y + (th - 1) / 2, lw - 1, l == A->sel_l ? CELL_REVERSE | CELL_BOLD : CELL_DIM, u, "L%d", l);
        for (int c = 0; c < vis_c; c++) {
            int hh = A->left_h + c, X0 = x + lw + c * pw;
            const float *m = map_of(A, l, hh);
            int used_h = th;
            if (m) {
                Heatmap hm = {m, A->T, A->T, NULL, NULL, CMAP_SEQUENTIAL, 0, 0};
                tv.top = tv.left = 0;
                HeatmapLayout lay;
                HeatmapView probe = tv;
                heatmap_layout(&lay, &hm, &probe, tw, th);
                int prows = (lay.nrows + lay.pool - 1) / lay.pool;
                used_h = lay.half ? (prows + 1) / 2 : prows * lay.cell_h;
                if (used_h < 1 || used_h > th) used_h = th;
                heatmap_render(g, X0, Y, tw, th, &hm, &tv);
            } else {
                for (int k = 0; k < th; k++) vd_printf(g, X0, Y + k, tw, CELL_DIM, u, "%s", u ? "\u00B7" : ".");
            }
            if (l == A->sel_l && hh == A->sel_h)
                for (int k = 0; k < used_h; k++)
                    cellgrid_put(g, X0 - 1, Y + k, u ? "\u258C" : "|", 1, sh->mode == CMODE_ASCII ? CELLCOLOR_DEFAULT : acc,
                                 CELLCOLOR_DEFAULT, CELL_BOLD);
        }
    }
    // legend
    int ly = y + h - 1;
    const float *sel = map_of(A, A->sel_l, A->sel_h);
    float mx = 0;
    for (int i = 0; sel && i < A->T * A->T; i++)
        if (sel[i] > mx) mx = sel[i];
    char hd[24];
    if (A->sel_h == A->H) snprintf(hd, sizeof hd, "mean over heads");
    else snprintf(hd, sizeof hd, "head %d", A->sel_h);
    int loaded = 0; // a long text's maps come a layer or a head at a time (grain): say how many are in
    for (int l = 0; l < A->L; l++)
        for (int hh = 0; hh <= A->H; hh++) loaded += map_of(A, l, hh) != NULL;
    char what[48];
    if (sel) snprintf(what, sizeof what, "largest weight %.4f", mx);
    else snprintf(what, sizeof what, "not loaded yet");
    // the part of the grid on screen when it does not all fit, right after the readout where a
    // narrow terminal still shows it; before it, while maps are missing, why their cells are dots
    // (at 80 columns the reason came last and was cut)
    Buf shown = {0};
    shown_text(&shown, A, vis_r, vis_c);
    char tail[128];
    if (loaded < A->L * C) {
        if (A->pending || A->filling) snprintf(tail, sizeof tail, "loading: %d of %d maps in", loaded, A->L * C);
        else snprintf(tail, sizeof tail, "%d of %d maps in; move to load more", loaded, A->L * C);
        vd_printf(g, x, ly, w, 0, u, "layer %d %s: %s  (%s)%s%s", A->sel_l, hd, what, tail, shown.len ? "  " : "",
                  shown.len ? shown.data : "");
    } else {
        snprintf(tail, sizeof tail, "each thumbnail scaled to its own range; %s",
                 shown.len ? "arrows, PgUp/PgDn scroll" : "all shown");
        vd_printf(g, x, ly, w, 0, u, "layer %d %s: %s%s%s  (%s)", A->sel_l, hd, what, shown.len ? "  " : "",
                  shown.len ? shown.data : "", tail);
    }
    buf_free(&shown);
}

static void attn_draw(View *v, CellGrid *g, int x, int y, int w, int h) {
    Attn *A = v->state;
    ViewShared *sh = v->host->sh;
    v->cur_x = v->cur_y = -1;
    if (!A->have) {
        vd_printf(g, x, y, w, CELL_BOLD, sh->utf8, "Attention");
        if (A->pending) vd_printf(g, x, y + 2, w, 0, sh->utf8, "computing attention...");
        else {
            vd_printf(g, x, y + 2, w, 0, sh->utf8, "Nothing to show yet. Type a prompt in the lab (press 1, then e) and come back,");
            vd_printf(g, x, y + 3, w, 0, sh->utf8, "or run a command such as  :attention \"The cat sat on the mat\" layer=all head=all");
        }
        return;
    }
    if (A->model_view) draw_model(v, g, x, y, w, h);
    else draw_head(v, g, x, y, w, h);
}

void attn_view_set(View *v, int L, int H, int T, const float *data, const char *const *tokens) {
    Attn *A = v->state;
    data_free(A);
    A->L = L, A->H = H, A->T = T;
    A->maps = xcalloc((size_t)L * H, sizeof *A->maps);
    A->means = xcalloc((size_t)L, sizeof *A->means);
    A->tokens = xcalloc((size_t)T, sizeof *A->tokens);
    for (int i = 0; i < T; i++) A->tokens[i] = xstrdup(tokens ? tokens[i] : "");
    int bad = 0;
    for (int k = 0; k < L * H; k++) {
        A->maps[k] = malloc(mem_mul((size_t)T * T, sizeof(float))); // an attention map: checked
        if (A->maps[k]) memcpy(A->maps[k], data + (size_t)k * T * T, sizeof(float) * (size_t)T * T);
        else bad = -1;
    }
    for (int l = 0; l < L; l++) bad |= compute_mean(A, l);
    if (bad) oom(v, "the attention maps", T);
    A->have = true;
    A->version = v->host->sh->version;
    A->model_view = true;
    snprintf(A->note, sizeof A->note, "%d tokens", T);
}

const ViewOps attn_view_ops = {
    .name = "attn",
    .title = "Attention",
    .keys = "model view: arrows/hjkl choose a head (the last column is the mean), Enter zooms in;\n"
            "  PgUp PgDn  a screen of layers (a deep model scrolls: the line below names the layers shown)\n"
            "head view: arrows/hjkl move the cursor (its value is read out below the map)\n"
            "  [ ]  previous/next layer   < >  previous/next head   a  mean over heads\n"
            "  + - zoom, = the whole matrix (reduced) or back   m or Esc  back to the model view\n"
            "r  recompute (after changing the prompt in the lab)",
    .open = attn_open,
    .close = attn_close,
    .draw = attn_draw,
    .key = attn_key,
    .show = attn_show,
    .result = attn_result,
};
