// positions.c - the positions view: the sinusoidal encoding as a position x dimension heatmap for
// any length and width, the model's learned position embeddings, and the position x position
// cosine similarity of either; a rotary model's cos(position x frequency) per dimension pair, or
// its relative pattern (q.k of constant vectors, position x position). A diverging scale (the
// values are signed). Runs `pe sinusoidal|learned|rotary len=L [dim=D] [cosine=true]
// [relative=true]`. It also shows the text x text matrix of `similarity "A" "B" ...` (the same
// kind of picture: cosines of vectors).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "heatmap.h"
#include "view.h"

enum { PE_SIN, PE_LEARNED, PE_ROTARY }; // the kinds, in the order `p` cycles through them
static const char *const kind_names[] = {"sinusoidal", "learned", "rotary"};

typedef struct Pos {
    int kind;           // PE_*
    bool cosine;        // the position x position picture (rotary: relative=true)
    bool sim;           // the shown matrix is a similarity result's, not a pe one
    bool chosen;        // the kind was asked for by its key (L, R): passing over it is said
    int shown;          // the kind of the pe matrix shown (when have and not sim)
    int len, dim;       // what the next request asks for (dim: sinusoidal only)
    float *m;           // [rows, cols] of the last result
    int rows, cols;
    char **row_labels, **col_labels;
    char what[96];
    bool have, pending;
    HeatmapView hv;
    int last_zoom;
} Pos;

static int pos_open(View *v) {
    Pos *P = xcalloc(1, sizeof *P);
    P->len = 64, P->dim = 128;
    P->hv = (HeatmapView){v->host->sh->mode, 0, 0, 0, 0, 0, 0};
    v->state = P;
    return 0;
}

static void labels_free(char **l, int n) {
    for (int i = 0; l && i < n; i++) free(l[i]);
    free(l);
}

static void data_free(Pos *P) {
    free(P->m);
    labels_free(P->row_labels, P->rows);
    labels_free(P->col_labels, P->cols);
    P->m = NULL, P->row_labels = P->col_labels = NULL;
    P->rows = P->cols = 0;
    P->have = false;
}

static void pos_close(View *v) {
    Pos *P = v->state;
    data_free(P);
    free(P);
}

static void request(View *v) {
    Pos *P = v->state;
    char line[128];
    if (P->kind == PE_LEARNED) snprintf(line, sizeof line, "pe learned len=%d%s", P->len, P->cosine ? " cosine=true" : "");
    else if (P->kind == PE_ROTARY) snprintf(line, sizeof line, "pe rotary len=%d%s", P->len, P->cosine ? " relative=true" : "");
    else snprintf(line, sizeof line, "pe sinusoidal len=%d dim=%d%s", P->len, P->dim, P->cosine ? " cosine=true" : "");
    P->pending = true;
    v->host->run(v->host, line, VR_QUIET | VR_OWN_ERROR); // a kind the model lacks is passed over (pos_result)
}

static void publish(View *v) {
    Pos *P = v->state;
    if (P->have)
        v->host->figure(v->host, P->m, P->rows, P->cols, (const char *const *)P->row_labels,
                        (const char *const *)P->col_labels, true, P->what);
}

static char **number_labels(int n) {
    char **l = xcalloc((size_t)n, sizeof *l);
    for (int i = 0; i < n; i++) {
        char s[12];
        snprintf(s, sizeof s, "%d", i);
        l[i] = xstrdup(s);
    }
    return l;
}

// Say on the status line that a rows x cols matrix of kind what did not fit in memory.
static void say_oom(View *v, const char *what, int rows, int cols) {
    char msg[128];
    snprintf(msg, sizeof msg, "out of memory for the %d x %d %s matrix", rows, cols, what);
    v->host->message(v->host, true, msg);
}

// The matrix of a similarity result, its texts as labels.
static void take_similarity(View *v, const Json *j) {
    Pos *P = v->state;
    const Json *mat = json_get(j, "matrix"), *texts = json_get(j, "texts");
    if (!mat || mat->type != JSON_ARR || !mat->len || !texts || texts->len != mat->len) return;
    int n = (int)mat->len;
    float *m = malloc(mem_mul((size_t)n * (size_t)n, sizeof(float))); // a figure: checked
    if (!m) { // the previous matrix stays
        say_oom(v, "similarity", n, n);
        return;
    }
    char **labels = xcalloc((size_t)n, sizeof *labels);
    for (int i = 0; i < n; i++) {
        const Json *row = &mat->items[i];
        for (int c = 0; c < n; c++)
            m[(size_t)i * n + c] = row->type == JSON_ARR && (size_t)c < row->len ? (float)row->items[c].num : 0;
        // whole texts, as headless `similarity` gives its figure: the screen and the SVG cut
        // them to their room, with an ellipsis
        const Json *t = &texts->items[i];
        labels[i] = t->type == JSON_STR ? xstrndup(t->str, t->len) : xstrdup("");
    }
    data_free(P);
    P->m = m, P->rows = P->cols = n;
    P->row_labels = labels;
    P->col_labels = xcalloc((size_t)n, sizeof *labels);
    for (int i = 0; i < n; i++) P->col_labels[i] = xstrdup(labels[i] ? labels[i] : "");
    snprintf(P->what, sizeof P->what, "cosine similarity of %d texts (%s pooling)", n, json_str_or(j, "pool", "?"));
    P->have = P->sim = true;
    P->hv.cur_row = P->hv.cur_col = 0;
    publish(v);
}

static void pos_result(View *v, const ViewResult *r) {
    Pos *P = v->state;
    if (!strcmp(r->cmd, "load") && r->json) {
        if (P->kind != PE_SIN || P->sim) data_free(P), P->sim = false; // the old model's (sinusoids are no one's)
        return;
    }
    if (!strcmp(r->cmd, "similarity")) {
        take_similarity(v, r->json);
        return;
    }
    if (strcmp(r->cmd, "pe")) return;
    if (r->quiet) P->pending = false;
    if (!r->json) {
        // the model has none (the view's own request): learned goes on to rotary, rotary back to
        // sinusoids, so `p` reaches what the model has
        if (r->quiet && P->kind != PE_SIN && P->chosen && P->have && !P->sim && P->shown != P->kind) {
            // asked for by its key while another kind is shown: that one stays (it went on to
            // sinusoids, away from the learned map being looked at)
            char msg[300];
            if (r->err && *r->err) snprintf(msg, sizeof msg, "%s: the %s one stays", r->err, kind_names[P->shown]);
            else snprintf(msg, sizeof msg, "the model has no %s position encoding: the %s one stays",
                          kind_names[P->kind], kind_names[P->shown]);
            v->host->message(v->host, false, msg);
            P->kind = P->shown;
            P->chosen = false;
        } else if (r->quiet && P->kind != PE_SIN) {
            int from = P->kind;
            P->kind = P->kind == PE_LEARNED ? PE_ROTARY : PE_SIN;
            if (P->chosen) { // asked for by its key: say why another kind shows (it passed over silently)
                char msg[300]; // the command's own reason when it gave one (it was nested in another)
                if (r->err && *r->err) snprintf(msg, sizeof msg, "%s: the %s one shown", r->err, kind_names[P->kind]);
                else snprintf(msg, sizeof msg, "the model has no %s position encoding: the %s one shown", kind_names[from],
                              kind_names[P->kind]);
                v->host->message(v->host, false, msg);
                P->chosen = false;
            }
            request(v);
        } else if (r->quiet && r->err) {
            char msg[300];
            snprintf(msg, sizeof msg, "error: %s", r->err);
            v->host->message(v->host, true, msg);
        }
        return;
    }
    const Json *j = r->json, *mat = json_get(j, "matrix");
    if (!mat || mat->type != JSON_ARR || !mat->len) return;
    int rows = (int)mat->len, cols = (int)mat->items[0].len;
    float *m = malloc(mem_mul((size_t)rows * (size_t)cols, sizeof(float))); // a figure: checked
    if (!m) { // the previous matrix stays
        say_oom(v, "position", rows, cols);
        return;
    }
    for (int i = 0; i < rows; i++) {
        const Json *row = &mat->items[i];
        for (int c = 0; c < cols; c++)
            m[(size_t)i * cols + c] = row->type == JSON_ARR && (size_t)c < row->len ? (float)row->items[c].num : 0;
    }
    data_free(P);
    P->m = m, P->rows = rows, P->cols = cols;
    P->row_labels = number_labels(rows);
    P->col_labels = number_labels(cols);
    const char *kind = json_str_or(j, "kind", "sinusoidal");
    P->kind = !strcmp(kind, "learned") ? PE_LEARNED : !strcmp(kind, "rotary") ? PE_ROTARY : PE_SIN;
    P->shown = P->kind;
    P->len = (int)json_num_or(j, "len", P->len);
    if (P->kind == PE_ROTARY) {
        P->cosine = json_bool_or(j, "relative", false);
        if (P->cosine)
            snprintf(P->what, sizeof P->what, "rotary, theta %g: q.k of constant vectors, %d x %d positions",
                     json_num_or(j, "theta", 0), rows, cols);
        else
            snprintf(P->what, sizeof P->what, "rotary, theta %g: cos(position x frequency), %d positions x %d pairs",
                     json_num_or(j, "theta", 0), rows, cols);
    } else {
        P->cosine = cols == rows && strstr(r->line ? r->line : "", "cosine=true") != NULL;
        if (P->kind == PE_SIN) P->dim = (int)json_num_or(j, "dim", P->dim);
        int dim = (int)json_num_or(j, "dim", P->dim);
        if (P->cosine)
            snprintf(P->what, sizeof P->what, "%s positions: cosine similarity of %d position%s (d=%d)",
                     kind_names[P->kind], rows, rows == 1 ? "" : "s", dim);
        else
            snprintf(P->what, sizeof P->what, "%s position encoding: %d positions x %d dimensions", kind_names[P->kind],
                     rows, cols);
    }
    P->have = true, P->sim = false;
    if (P->hv.cur_row >= rows) P->hv.cur_row = rows - 1;
    if (P->hv.cur_col >= cols) P->hv.cur_col = cols - 1;
    publish(v);
}

static void pos_show(View *v) {
    Pos *P = v->state;
    if (!P->have && !P->pending) request(v);
    publish(v);
}

static int clampi(int x, int lo, int hi) { return x < lo ? lo : x > hi ? hi : x; }

static int pos_key(View *v, int key) {
    Pos *P = v->state;
    HeatmapView *hv = &P->hv;
    bool again = false;
    int step_l = P->len < 16 ? 1 : P->len < 128 ? 8 : 32, step_d = P->dim < 16 ? 2 : P->dim < 128 ? 8 : 32;
    switch (key) {
    case VK_UP: case 'k': hv->cur_row--; break;
    case VK_DOWN: case 'j': hv->cur_row++; break;
    case VK_LEFT: case 'h': hv->cur_col--; break;
    case VK_RIGHT: case 'l': hv->cur_col++; break;
    case VK_PGUP: hv->cur_row -= 8; break;
    case VK_PGDN: hv->cur_row += 8; break;
    case '+': hv->zoom = clampi((hv->zoom ? hv->zoom : P->last_zoom ? P->last_zoom : 1) + 1, 1, HM_ZOOM_MAX); break;
    case '-': hv->zoom = clampi((hv->zoom ? hv->zoom : P->last_zoom ? P->last_zoom : 1) - 1, 1, HM_ZOOM_MAX); break;
    case '=': hv->zoom = 0; break; // fit (0 switches to view 0, as everywhere)
    case 's': P->kind = PE_SIN, again = true; break;
    case 'L': P->kind = PE_LEARNED, again = P->chosen = true; break;
    case 'R': P->kind = PE_ROTARY, again = P->chosen = true; break;
    case 'p': P->kind = (P->kind + 1) % 3, again = true, P->chosen = false; break;
    case 'c': P->cosine = !P->cosine, again = true; break;
    case '[': P->len = clampi(P->len - step_l, 1, 8192), again = true; break;
    case ']': P->len = clampi(P->len + (P->len < 16 ? 1 : P->len < 128 ? 8 : 32), 1, 8192), again = true; break;
    case '{': case '}':
        if (P->kind != PE_SIN || P->sim) { // the width of the model's own: not the view's to change
            v->host->message(v->host, false, "{ } set the width of the sinusoids (s); this one is the model's");
            return 1;
        }
        P->dim = key == '{' ? clampi(P->dim - step_d, 2, 8192)
                            : clampi(P->dim + (P->dim < 16 ? 2 : P->dim < 128 ? 8 : 32), 2, 8192);
        again = true;
        break;
    default: return 0;
    }
    if (hv->cur_row < 0) hv->cur_row = 0;
    if (hv->cur_col < 0) hv->cur_col = 0;
    if (again) request(v);
    return 1;
}

static void pos_draw(View *v, CellGrid *g, int x, int y, int w, int h) {
    Pos *P = v->state;
    ViewShared *sh = v->host->sh;
    v->cur_x = v->cur_y = -1;
    int X = x + vd_printf(g, x, y, w, CELL_BOLD, sh->utf8, "%s", P->have ? P->what : "Positions");
    vd_printf(g, X + 2, y, x + w - X - 2, CELL_DIM, sh->utf8, "%s",
              P->sim            ? "p position encodings  +/- = zoom"
              : P->kind == PE_ROTARY ? "p next kind  c relative  [ ] length  +/- = zoom"
              : P->kind == PE_LEARNED ? "p next kind  c cosine  [ ] length  +/- = zoom"
                                     : "p next kind  c cosine  [ ] length  { } width  +/- = zoom");
    if (!P->have) {
        vd_printf(g, x, y + 2, w, 0, sh->utf8, "%s", P->pending ? "computing..." : "no data (press p or run :pe sinusoidal len=64 dim=128)");
        return;
    }
    Heatmap hm = {P->m, P->rows, P->cols, (const char *const *)P->row_labels, (const char *const *)P->col_labels,
                  CMAP_DIVERGING, 0, 0};
    P->hv.mode = sh->mode;
    HeatmapLayout lay;
    HeatmapView probe = P->hv;
    heatmap_layout(&lay, &hm, &probe, w, h - 1);
    P->last_zoom = lay.zoom;
    heatmap_render(g, x, y + 1, w, h - 1, &hm, &P->hv);
}

const ViewOps positions_view_ops = {
    .name = "positions",
    .title = "Positions",
    .keys = "p  next kind: sinusoidal, the model's learned embeddings, its rotary angles (s, L, R choose;\n"
            "   a kind the model does not have is passed over)\n"
            "c  position x position: cosine similarity (rotary: q.k of constant vectors) instead\n"
            "[ ]  fewer/more positions   { }  fewer/more dimensions (sinusoidal)\n"
            "arrows/hjkl move the cursor (value read out below), + - zoom, = fit\n"
            "any length and width: :pe sinusoidal len=100 dim=48\n"
            "texts compared: :similarity \"A\" \"B\" \"C\" shows their cosine matrix here",
    .open = pos_open,
    .close = pos_close,
    .draw = pos_draw,
    .key = pos_key,
    .show = pos_show,
    .result = pos_result,
};
