// heatmap.c - layout and drawing of the heatmap widget into a cell grid, SVG and CSV export.
//
// Geometry: a matrix cell is `zoom` columns wide and cell_h rows high (about square on a
// terminal); at zoom 1 in the colour modes two matrix rows share a terminal row as the upper and
// lower halves of '▀'. When even zoom 1 does not fit and the view asks to fit, blocks of
// pool x pool matrix cells are reduced to one drawn cell (their mean or maximum).
#include "heatmap.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "label.h"
#include "base/utf8.h"

#define FIT_ZOOM_MAX 8 // largest zoom the fit mode picks
#define LABEL_W_MAX 16 // widest row label column
#define HEAD_H_MAX 8   // most rows for vertical column labels

static const char *const MASKED_UTF8 = "\u00B7"; // '·'
// not ' ', which the ASCII ramp gives the smallest values (a causal triangle of blanks could not be
// told from weights near 0), nor any other character of the ramps
static const char *const MASKED_ASCII = "/";

static bool is_colour(ColorMode m) { return m == CMODE_C256 || m == CMODE_TRUECOLOR; }

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void heatmap_range(const Heatmap *hm, float *lo, float *hi) {
    float a = hm->lo, b = hm->hi;
    if (a == b) {
        float mn = INFINITY, mx = -INFINITY;
        size_t n = (size_t)(hm->rows > 0 ? hm->rows : 0) * (size_t)(hm->cols > 0 ? hm->cols : 0);
        for (size_t i = 0; i < n; i++) {
            float x = hm->v[i];
            if (isfinite(x)) mn = fminf(mn, x), mx = fmaxf(mx, x);
        }
        if (mn > mx) a = 0, b = 1;
        else if (mn == mx) a = fminf(mn, 0), b = fmaxf(mx, 0); // one value: from 0 to it (one token's 1)
        else a = mn, b = mx;
        if (a == b) b = 1; // all 0
    }
    if (a > b) {
        float t = a;
        a = b, b = t;
    }
    if (hm->scale == CMAP_DIVERGING) {
        float m = fmaxf(fabsf(a), fabsf(b));
        if (!(m > 0)) m = 1;
        a = -m, b = m;
    }
    *lo = a, *hi = b;
}

// Display width and number of glyph clusters of the visible form of s.
static void label_metrics(const char *s, bool utf8, int *width, int *clusters) {
    Buf v = {0};
    label_visible(&v, s, strlen(s), utf8);
    *width = label_width(v.data ? v.data : "", v.len);
    int n = 0;
    size_t pos = 0;
    char g[LABEL_GLYPH_MAX];
    while (label_next(v.data, v.len, &pos, g)) n++;
    *clusters = n;
    buf_free(&v);
}

static void labels_max(const char *const *labels, int n, bool utf8, int *width, int *clusters) {
    *width = *clusters = 0;
    for (int i = 0; labels && i < n; i++) {
        int w, c;
        label_metrics(labels[i] ? labels[i] : "", utf8, &w, &c);
        if (w > *width) *width = w;
        if (c > *clusters) *clusters = c;
    }
}

typedef struct Metrics {
    int row_w;            // widest row label
    int col_w, col_n;     // widest column label, most clusters in one
    bool rows_on, cols_on;
    int body_h;           // rows above the legend
} Metrics;

// Fill L's geometry for zoom z and pool p; returns whether the whole matrix fits.
static bool geometry(HeatmapLayout *L, const Heatmap *hm, const HeatmapView *v, const Metrics *M,
                     int z, int p, bool labels) {
    L->zoom = z, L->pool = p;
    L->half = is_colour(v->mode) && z == 1;
    L->cell_h = L->half || z <= 2 ? 1 : (z + 1) / 2;
    L->label_w = 0;
    if (labels && M->rows_on && M->row_w > 0 && L->w >= 16)
        L->label_w = M->row_w < clampi(L->w / 4, 4, LABEL_W_MAX) ? M->row_w : clampi(L->w / 4, 4, LABEL_W_MAX);
    L->head_h = 0, L->col_vertical = false;
    if (labels && M->cols_on && M->col_w > 0) {
        if (M->col_w + 1 <= z) L->head_h = 1;
        else {
            // vertical: whole labels when the matrix leaves room, else at least a third
            L->col_vertical = true;
            int need = L->half ? (hm->rows + 1) / 2 : hm->rows * L->cell_h;
            int cap = clampi((M->body_h - 2) / 3, 1, HEAD_H_MAX);
            if (M->body_h - need > cap) cap = M->body_h - need < HEAD_H_MAX ? M->body_h - need : HEAD_H_MAX;
            L->head_h = M->col_n < cap ? M->col_n : cap;
        }
        if (L->head_h > M->body_h - 1) L->head_h = M->body_h > 1 ? M->body_h - 1 : 0;
    }
    // half blocks put two rows on a terminal row: the upper one's label left of the matrix, the
    // lower one's right of it (only the upper rows were labelled: half the tokens of a text had none)
    L->rlabel_w = L->half ? L->label_w : 0;
    L->mx = L->label_w ? L->label_w + 1 : 0;
    L->my = L->head_h;
    L->mw = L->w - L->mx - (L->rlabel_w ? L->rlabel_w + 1 : 0);
    if (L->mw < 0) L->mw = 0;
    L->mh = M->body_h - L->my > 0 ? M->body_h - L->my : 0;
    long cap_cols = (long)(L->mw / z) * p;
    long cap_rows = (long)(L->half ? 2 * L->mh : L->mh / L->cell_h) * p;
    return cap_cols >= hm->cols && cap_rows >= hm->rows;
}

// Scroll one axis so that cursor cur is inside [*first, *first + cap) and the window is valid.
static int scroll_axis(int first, int cur, int cap, int n) {
    if (cur >= 0) {
        if (cur < first) first = cur;
        else if (cur >= first + cap) first = cur - cap + 1;
    }
    int max_first = n - cap > 0 ? n - cap : 0;
    return clampi(first, 0, max_first);
}

void heatmap_layout(HeatmapLayout *L, const Heatmap *hm, HeatmapView *v, int w, int h) {
    memset(L, 0, sizeof *L);
    L->w = w > 0 ? w : 0, L->h = h > 0 ? h : 0;
    heatmap_range(hm, &L->lo, &L->hi);
    v->zoom = clampi(v->zoom, 0, HM_ZOOM_MAX);
    if ((v->cur_row < 0 && v->cur_col < 0) || hm->rows <= 0 || hm->cols <= 0) {
        v->cur_row = v->cur_col = -1; // no cursor
    } else {
        v->cur_row = clampi(v->cur_row, 0, hm->rows - 1);
        v->cur_col = clampi(v->cur_col, 0, hm->cols - 1);
    }

    bool utf8 = v->mode != CMODE_ASCII;
    Metrics M = {0};
    L->legend_y = !(v->flags & HM_NO_LEGEND) && L->h >= 3 ? L->h - 1 : -1;
    M.body_h = L->legend_y >= 0 ? L->h - 1 : L->h;
    M.rows_on = hm->row_labels && !(v->flags & HM_NO_LABELS);
    M.cols_on = hm->col_labels && !(v->flags & HM_NO_LABELS);
    int n;
    if (M.rows_on) labels_max(hm->row_labels, hm->rows, utf8, &M.row_w, &n);
    if (M.cols_on) labels_max(hm->col_labels, hm->cols, utf8, &M.col_w, &M.col_n);

    bool fit = v->zoom == 0;
    if (fit) {
        bool ok = false;
        for (int z = FIT_ZOOM_MAX; z >= 1 && !ok; z--) ok = geometry(L, hm, v, &M, z, 1, true);
        if (!ok) { // reduce blocks of the matrix, without labels
            geometry(L, hm, v, &M, 1, 1, false);
            int pc = L->mw, pr = L->half ? 2 * L->mh : L->mh, p = 1;
            if (pc > 0 && pr > 0) {
                int a = (hm->cols + pc - 1) / pc, b = (hm->rows + pr - 1) / pr;
                p = a > b ? a : b;
                if (p < 1) p = 1;
            }
            geometry(L, hm, v, &M, 1, p, false);
        }
    } else {
        geometry(L, hm, v, &M, v->zoom, 1, true);
    }
    int cap_cols = (L->mw / L->zoom) * L->pool;
    int cap_rows = (L->half ? 2 * L->mh : L->mh / L->cell_h) * L->pool;
    if (fit) v->top = v->left = 0;
    v->top = scroll_axis(v->top, v->cur_row, cap_rows, hm->rows);
    v->left = scroll_axis(v->left, v->cur_col, cap_cols, hm->cols);
    L->top = v->top, L->left = v->left;
    L->nrows = hm->rows - L->top < cap_rows ? hm->rows - L->top : cap_rows;
    L->ncols = hm->cols - L->left < cap_cols ? hm->cols - L->left : cap_cols;
    if (L->nrows < 0) L->nrows = 0;
    if (L->ncols < 0) L->ncols = 0;
}

void heatmap_fit_or_scroll(HeatmapView *v, const Heatmap *hm, int w, int h, bool reduce) {
    if (v->zoom != 0 || reduce) return;
    HeatmapLayout lay;
    HeatmapView probe = *v;
    heatmap_layout(&lay, hm, &probe, w, h);
    if (lay.pool > 1 || (hm->row_labels && !(v->flags & HM_NO_LABELS) && !lay.label_w)) v->zoom = 1;
}

HmRegion heatmap_visible(const HeatmapLayout *L) {
    return (HmRegion){L->top, L->top + L->nrows, L->left, L->left + L->ncols};
}

void heatmap_cell_at(const HeatmapLayout *L, int tx, int ty, int *r, int *c) {
    *r = *c = -1;
    int x = tx - L->mx, y = ty - L->my;
    if (x < 0 || y < 0 || x >= L->mw || y >= L->mh) return;
    int pc = x / L->zoom, pr = L->half ? 2 * y : y / L->cell_h; // half blocks: the upper row
    int cc = L->left + pc * L->pool, rr = L->top + pr * L->pool;
    if (cc >= L->left + L->ncols || rr >= L->top + L->nrows) return;
    *r = rr, *c = cc;
}

// ---- drawing ----

// How one value looks in a mode.
typedef struct Look {
    bool masked;
    char glyph[8];        // C8 shade glyph or ASCII ramp character
    CellColor fg, colour; // colour: the value's colour in the colour modes
    Rgb rgb;
} Look;

static Look look_t(const Heatmap *hm, ColorMode mode, double t) {
    Look k = {0};
    k.fg = k.colour = CELLCOLOR_DEFAULT;
    int level = cmap_level(t);
    switch (mode) {
    case CMODE_TRUECOLOR:
        k.rgb = cmap_lut(hm->scale)[level];
        k.colour = (CellColor){k.rgb, cmap_lut256(hm->scale)[level], false};
        strcpy(k.glyph, " ");
        break;
    case CMODE_C256:
        k.colour = cellcolor_index(mode, cmap_lut256(hm->scale)[level]);
        k.rgb = k.colour.rgb;
        strcpy(k.glyph, " ");
        break;
    case CMODE_C8: {
        int ansi, s = cmap_shade(hm->scale, t, &ansi);
        strcpy(k.glyph, cmap_shade_glyph(s));
        k.fg = cellcolor_index(mode, ansi);
        k.rgb = k.fg.rgb;
        break;
    }
    case CMODE_ASCII:
        k.glyph[0] = cmap_ascii(hm->scale, t), k.glyph[1] = 0;
        break;
    }
    return k;
}

static Look look_value(const Heatmap *hm, const HeatmapLayout *L, ColorMode mode, float x) {
    if (isnan(x)) {
        Look k = {0};
        k.masked = true;
        k.fg = k.colour = CELLCOLOR_DEFAULT;
        strcpy(k.glyph, mode == CMODE_ASCII ? MASKED_ASCII : MASKED_UTF8);
        return k;
    }
    return look_t(hm, mode, cmap_pos(hm->scale, x, L->lo, L->hi));
}

// Black or white, whichever reads on rgb.
static CellColor contrast(ColorMode mode, Rgb rgb) {
    bool light = cmap_lightness(rgb) > 0.6;
    if (mode == CMODE_TRUECOLOR) return (CellColor){light ? (Rgb){0, 0, 0} : (Rgb){255, 255, 255}, light ? 16 : 231, false};
    return cellcolor_index(mode, light ? 16 : 231);
}

// Mean (or maximum) of the finite values of rows [r0,r1) x cols [c0,c1); NAN when none.
static float pooled(const Heatmap *hm, int r0, int r1, int c0, int c1, bool use_max) {
    if (r1 - r0 == 1 && c1 - c0 == 1) return hm->v[(size_t)r0 * hm->cols + c0];
    double s = 0;
    float m = -INFINITY;
    int n = 0;
    for (int r = r0; r < r1; r++) {
        const float *row = hm->v + (size_t)r * hm->cols;
        for (int c = c0; c < c1; c++) {
            float x = row[c];
            if (isnan(x)) continue;
            s += x, n++;
            if (x > m) m = x;
        }
    }
    if (!n) return NAN;
    return use_max ? m : (float)(s / n);
}

// The value of drawn pixel (pr, pc) of the visible matrix.
static float pixel_value(const Heatmap *hm, const HeatmapLayout *L, const HeatmapView *v, int pr, int pc) {
    int r0 = L->top + pr * L->pool, c0 = L->left + pc * L->pool;
    int r1 = r0 + L->pool, c1 = c0 + L->pool;
    if (r1 > L->top + L->nrows) r1 = L->top + L->nrows;
    if (c1 > L->left + L->ncols) c1 = L->left + L->ncols;
    return pooled(hm, r0, r1, c0, c1, v->flags & HM_POOL_MAX);
}

// x in at most maxw characters with as many decimals as fit, a leading "0." shortened to "."
// only when that gains a decimal ("" when nothing fits).
static void fmt_fit(char *out, size_t cap, double x, int maxw) {
    char t[64], best[64] = "";
    int best_score = -99;
    for (int prec = 3; prec >= 0; prec--) {
        for (int strip = 0; strip <= 1; strip++) {
            snprintf(t, sizeof t, "%.*f", prec, x);
            char *z = strstr(t, "0.");
            if (strip) {
                if (!z || !(z == t || (z == t + 1 && t[0] == '-'))) continue;
                memmove(z, z + 1, strlen(z));
            }
            int score = 2 * prec - strip; // a decimal is worth more than the leading zero
            if ((int)strlen(t) <= maxw && score > best_score) best_score = score, strcpy(best, t);
        }
    }
    if (!best[0]) {
        snprintf(t, sizeof t, "%.0e", x);
        if ((int)strlen(t) <= maxw) strcpy(best, t);
    }
    snprintf(out, cap, "%s", best);
}

// A block of zoom x cell_h terminal cells at (X, Y) showing value x.
static void draw_block(CellGrid *g, int X, int Y, const HeatmapLayout *L, const Heatmap *hm,
                       const HeatmapView *v, float x, bool cursor) {
    ColorMode mode = v->mode;
    Look k = look_value(hm, L, mode, x);
    int z = L->zoom, ch = L->cell_h, mid_r = (ch - 1) / 2, mid_c = (z - 1) / 2;
    CellColor bg = is_colour(mode) ? k.colour : CELLCOLOR_DEFAULT;
    CellColor fg = k.fg;
    CellColor text = k.masked || !is_colour(mode) ? CELLCOLOR_DEFAULT : contrast(mode, k.rgb);
    for (int rr = 0; rr < ch; rr++) {
        for (int cc = 0; cc < z; cc++) {
            const char *gl = k.masked ? (rr == mid_r && cc == mid_c ? k.glyph : " ") : k.glyph;
            int attr = k.masked ? CELL_DIM : 0;
            CellColor f = fg;
            if (cursor) {
                if (is_colour(mode) && z >= 2) {
                    if (cc == 0) gl = "[", f = text, attr = CELL_BOLD;
                    else if (cc == z - 1) gl = "]", f = text, attr = CELL_BOLD;
                } else {
                    attr = CELL_REVERSE | CELL_BOLD;
                }
            }
            cellgrid_put(g, X + cc, Y + rr, gl, 1, f, bg, attr);
        }
    }
    if (z >= 5 && is_colour(mode) && !k.masked && !(v->flags & HM_NO_VALUES)) {
        char num[32];
        fmt_fit(num, sizeof num, x, z - 2);
        int n = (int)strlen(num), x0 = 1 + (z - 2 - n + 1) / 2;
        cellgrid_text(g, X + x0, Y + mid_r, n, num, text, bg, cursor ? CELL_BOLD : 0);
    }
}

// One terminal cell holding two pixel rows: upper value a, lower value b (has_b: it exists).
// cur: 0 none, 1 the upper half is the cursor, 2 the lower.
static void draw_half(CellGrid *g, int X, int Y, const HeatmapLayout *L, const Heatmap *hm,
                      ColorMode mode, float a, float b, bool has_b, int cur) {
    Look ka = look_value(hm, L, mode, a), kb = has_b ? look_value(hm, L, mode, b) : ka;
    if (!has_b) kb.masked = true;
    CellColor ca = ka.colour, cb = kb.colour;
    if (cur == 1) ca = contrast(mode, ka.masked ? (Rgb){0, 0, 0} : ka.rgb), ka.masked = false;
    if (cur == 2) cb = contrast(mode, kb.masked ? (Rgb){0, 0, 0} : kb.rgb), kb.masked = false;
    if (ka.masked && kb.masked)
        cellgrid_put(g, X, Y, MASKED_UTF8, 1, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, CELL_DIM);
    else if (kb.masked) cellgrid_put(g, X, Y, "\u2580", 1, ca, CELLCOLOR_DEFAULT, 0); // ▀
    else if (ka.masked) cellgrid_put(g, X, Y, "\u2584", 1, cb, CELLCOLOR_DEFAULT, 0); // ▄
    else cellgrid_put(g, X, Y, "\u2580", 1, ca, cb, 0);
}

static void draw_matrix(CellGrid *g, int x, int y, const HeatmapLayout *L, const Heatmap *hm,
                        const HeatmapView *v) {
    int pcols = (L->ncols + L->pool - 1) / L->pool, prows = (L->nrows + L->pool - 1) / L->pool;
    int cur_pr = -1, cur_pc = -1;
    if (v->cur_row >= L->top && v->cur_row < L->top + L->nrows && v->cur_col >= L->left &&
        v->cur_col < L->left + L->ncols)
        cur_pr = (v->cur_row - L->top) / L->pool, cur_pc = (v->cur_col - L->left) / L->pool;
    for (int pc = 0; pc < pcols; pc++) {
        int X = x + L->mx + pc * L->zoom;
        if (L->half) {
            for (int ty = 0; 2 * ty < prows; ty++) {
                int pa = 2 * ty, pb = pa + 1;
                bool has_b = pb < prows;
                float a = pixel_value(hm, L, v, pa, pc), b = has_b ? pixel_value(hm, L, v, pb, pc) : NAN;
                int cur = pc != cur_pc ? 0 : cur_pr == pa ? 1 : cur_pr == pb ? 2 : 0;
                draw_half(g, X, y + L->my + ty, L, hm, v->mode, a, b, has_b, cur);
            }
        } else {
            for (int pr = 0; pr < prows; pr++)
                draw_block(g, X, y + L->my + pr * L->cell_h, L, hm, v, pixel_value(hm, L, v, pr, pc),
                           pr == cur_pr && pc == cur_pc);
        }
    }
}

static void draw_row_labels(CellGrid *g, int x, int y, const HeatmapLayout *L, const Heatmap *hm,
                            const HeatmapView *v) {
    if (!L->label_w || L->pool > 1) return;
    bool utf8 = v->mode != CMODE_ASCII;
    char text[4 * LABEL_W_MAX + 16];
    int lines = L->half ? (L->nrows + 1) / 2 : L->nrows;
    for (int i = 0; i < lines; i++) {
        int r = L->half ? L->top + 2 * i : L->top + i;
        int ty = L->half ? i : i * L->cell_h + (L->cell_h - 1) / 2;
        for (int side = 0; side < (L->half ? 2 : 1); side++, r++) {
            if (r >= L->top + L->nrows) break;
            const char *s = hm->row_labels[r] ? hm->row_labels[r] : "";
            int used = label_format(text, sizeof text, s, strlen(s), side ? L->rlabel_w : L->label_w, utf8);
            int attr = r == v->cur_row ? CELL_REVERSE | CELL_BOLD : 0;
            int X = side ? x + L->mx + L->ncols * L->zoom + 1 : x + L->label_w - used; // right: after the gap
            cellgrid_text(g, X, y + L->my + ty, used, text, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, attr);
        }
    }
}

static void draw_col_labels(CellGrid *g, int x, int y, const HeatmapLayout *L, const Heatmap *hm,
                            const HeatmapView *v) {
    if (!L->head_h || L->pool > 1) return;
    bool utf8 = v->mode != CMODE_ASCII;
    for (int i = 0; i < L->ncols; i++) {
        int c = L->left + i, X = x + L->mx + i * L->zoom;
        const char *s = hm->col_labels[c] ? hm->col_labels[c] : "";
        int attr = c == v->cur_col ? CELL_REVERSE | CELL_BOLD : 0;
        if (!L->col_vertical) {
            char text[4 * HM_ZOOM_MAX + 16];
            int used = label_format(text, sizeof text, s, strlen(s), L->zoom - 1, utf8);
            cellgrid_text(g, X, y, used, text, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, attr);
            continue;
        }
        Buf vis = {0};
        label_visible(&vis, s, strlen(s), utf8);
        char glyph[LABEL_GLYPH_MAX];
        size_t pos = 0;
        int n = 0;
        while (label_next(vis.data, vis.len, &pos, glyph)) n++;
        int shown = n <= L->head_h ? n : L->head_h;
        int row0 = L->head_h - shown;
        pos = 0;
        for (int k = 0; k < shown; k++) {
            int cw = label_next(vis.data, vis.len, &pos, glyph);
            const char *gl = glyph;
            if ((k == shown - 1 && shown < n) || cw > L->zoom) gl = utf8 ? "\u2026" : "~", cw = 1;
            cellgrid_put(g, X, y + row0 + k, gl, cw, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, attr);
        }
        buf_free(&vis);
    }
}

// A range's ends lo and hi in 3 significant digits, more (up to 7) where 3 print them alike: the
// entropies of a model's heads spanning 2.849-2.851 read "2.85 2.85" under a full colour ramp.
static void fmt_range(char *a, char *b, size_t cap, double lo, double hi, bool sign) {
    for (int p = 3; p <= 7; p++) {
        snprintf(a, cap, sign ? "%+.*g" : "%.*g", p, lo);
        snprintf(b, cap, sign ? "%+.*g" : "%.*g", p, hi);
        if (lo == hi || strcmp(a, b)) return;
    }
}

// The cursor's readout "(r,c) row × col = value" with each label in at most lw columns (0: no
// labels), or the value alone ("0.25", "masked") when bare.
static void readout_text(Buf *t, const Heatmap *hm, const HeatmapView *v, int lw, bool bare, bool utf8) {
    int r = v->cur_row, c = v->cur_col;
    float val = hm->v[(size_t)r * hm->cols + c];
    if (!bare) {
        char rl[4 * 10 + 16] = "", cl[4 * 10 + 16] = "";
        const char *rs = hm->row_labels ? hm->row_labels[r] : NULL, *cs = hm->col_labels ? hm->col_labels[c] : NULL;
        if (lw > 0 && rs) label_format(rl, sizeof rl, rs, strlen(rs), lw, utf8);
        if (lw > 0 && cs) label_format(cl, sizeof cl, cs, strlen(cs), lw, utf8);
        buf_printf(t, "(%d,%d) ", r, c);
        if (rl[0] && cl[0]) buf_printf(t, "%s %s %s ", rl, utf8 ? "\u00D7" : "x", cl);
        else if (rl[0] || cl[0]) buf_printf(t, "%s ", rl[0] ? rl : cl);
    }
    if (isnan(val)) buf_puts(t, "masked");
    else buf_printf(t, bare ? "%.4g" : "= %.4g", val);
}

// Columns of the legend's range part: lo, a colour bar of bar cells, hi; "lo..hi" when bar is 0;
// nothing when bar is -1.
static int range_cols(int bar, int nlo, int nhi) { return bar < 0 ? 0 : bar == 0 ? nlo + 2 + nhi : nlo + 1 + bar + 1 + nhi; }

// The legend row: the value range with its colour bar, then the readout of the cursor's cell and
// where the view is scrolled to. The readout's number is never cut: to make room its labels go
// short, then none, then the bar narrows, gives way to "lo..hi", then to nothing; what still does not
// fit (the scroll position, the readout at the narrowest) is left out whole.
static void draw_legend(CellGrid *g, int x, int y, const HeatmapLayout *L, const Heatmap *hm,
                        const HeatmapView *v) {
    if (L->legend_y < 0) return;
    ColorMode mode = v->mode;
    bool utf8 = mode != CMODE_ASCII, div = hm->scale == CMAP_DIVERGING;
    int Y = y + L->legend_y, X = x, W = L->w, end = x + W;
    char lo[32], hi[32];
    fmt_range(lo, hi, sizeof lo, L->lo, L->hi, div);
    int nlo = (int)strlen(lo), nhi = (int)strlen(hi);
    int bar = W - nlo - nhi - 2; // the widest bar, 16 at most; 0 for "lo..hi"
    if (bar > 16) bar = 16;
    if (div && bar % 2 == 0) bar--;
    if (bar < 3) bar = range_cols(0, nlo, nhi) <= W ? 0 : -1; // a cut number would read as another

    Buf t = {0};
    bool cursor = v->cur_row >= 0 && !(v->flags & HM_NO_READOUT);
    if (cursor) {
        int room = W - range_cols(bar, nlo, nhi) - 2, tw = 0;
        for (int lw = 10; lw >= 0; lw = lw > 3 ? lw - 1 : lw - 3) { // 10..3 columns a label, then none
            buf_clear(&t);
            readout_text(&t, hm, v, lw, false, utf8);
            if ((tw = label_width(t.data, t.len)) <= room) break;
        }
        if (tw > room) { // a narrower bar, "lo..hi", no range at all, the value alone, nothing
            int b = W - 2 - tw - nlo - nhi - 2;
            if (div && b % 2 == 0) b--;
            if (bar > 0 && b >= 3) bar = b;
            else if (range_cols(0, nlo, nhi) + 2 + tw <= W) bar = 0;
            else if (tw <= W) bar = -1;
            else {
                buf_clear(&t);
                readout_text(&t, hm, v, 0, true, utf8);
                if (label_width(t.data, t.len) <= W) bar = -1;
                else buf_clear(&t);
            }
        }
    }
    if (bar >= 3) {
        X += cellgrid_text(g, X, Y, end - X, lo, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, 0) + 1;
        for (int i = 0; i < bar; i++) {
            double tt = (double)i / (bar - 1);
            Look k = look_t(hm, mode, tt);
            CellColor bg = is_colour(mode) ? k.colour : CELLCOLOR_DEFAULT;
            if (div && 2 * i == bar - 1) {
                CellColor f = is_colour(mode) ? contrast(mode, k.rgb) : CELLCOLOR_DEFAULT;
                cellgrid_put(g, X + i, Y, "0", 1, f, bg, CELL_BOLD);
            } else {
                cellgrid_put(g, X + i, Y, k.glyph, 1, k.fg, bg, 0);
            }
        }
        X += bar + 1;
        X += cellgrid_text(g, X, Y, end - X, hi, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, 0);
    } else if (bar == 0) {
        Buf r = {0};
        buf_printf(&r, "%s..%s", lo, hi);
        X += cellgrid_text(g, X, Y, end - X, r.data, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, 0);
        buf_free(&r);
    }
    int at = X > x ? X + 2 : X; // where the readout starts
    if (!(v->flags & HM_NO_READOUT) && (L->nrows < hm->rows || L->ncols < hm->cols)) {
        Buf s = {0};
        buf_printf(&s, "%srows %d-%d/%d cols %d-%d/%d", t.len ? "  " : "", L->top, L->top + L->nrows - 1, hm->rows,
                   L->left, L->left + L->ncols - 1, hm->cols);
        if (at + label_width(t.data, t.len) + label_width(s.data, s.len) <= end) buf_put(&t, s.data, s.len); // whole or not at all
        buf_free(&s);
    }
    if (t.len) cellgrid_text(g, at, Y, end - at, t.data, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, 0);
    buf_free(&t);
}

void heatmap_render(CellGrid *g, int x, int y, int w, int h, const Heatmap *hm, HeatmapView *v) {
    HeatmapLayout L;
    heatmap_layout(&L, hm, v, w, h);
    cellgrid_clear_rect(g, x, y, w, h);
    if (hm->rows <= 0 || hm->cols <= 0 || !hm->v) return;
    draw_matrix(g, x, y, &L, hm, v);
    draw_row_labels(g, x, y, &L, hm, v);
    draw_col_labels(g, x, y, &L, hm, v);
    draw_legend(g, x, y, &L, hm, v);
}

// ---- export ----

static int check_region(const Heatmap *hm, const HmRegion *reg, HmRegion *out, Err *e) {
    *out = reg ? *reg : (HmRegion){0, hm->rows, 0, hm->cols};
    if (!hm->v || out->r0 < 0 || out->c0 < 0 || out->r1 > hm->rows || out->c1 > hm->cols ||
        out->r0 >= out->r1 || out->c0 >= out->c1)
        return err_set(e, "heatmap export: empty or out-of-range region rows %d-%d cols %d-%d of %dx%d",
                       out->r0, out->r1, out->c0, out->c1, hm->rows, hm->cols);
    return 0;
}

// A CSV field for token text: quoted, quotes doubled, invalid UTF-8 bytes as <0xNN>.
static void csv_text(Buf *out, const char *s) {
    buf_putc(out, '"');
    for (size_t i = 0, n = strlen(s); i < n;) {
        int len = utf8_valid_len(s + i, n - i);
        if (len < 0) {
            for (int k = 0; k < -len; k++) buf_printf(out, "<0x%02X>", (unsigned char)s[i + (size_t)k]);
            i += (size_t)-len;
        } else {
            if (s[i] == '"') buf_putc(out, '"');
            buf_put(out, s + i, (size_t)len);
            i += (size_t)len;
        }
    }
    buf_putc(out, '"');
}

int heatmap_to_csv(Buf *out, const Heatmap *hm, const HmRegion *reg, Err *e) {
    HmRegion R;
    if (check_region(hm, reg, &R, e)) return -1;
    buf_puts(out, "\"\"");
    for (int c = R.c0; c < R.c1; c++) {
        buf_putc(out, ',');
        if (hm->col_labels) csv_text(out, hm->col_labels[c] ? hm->col_labels[c] : "");
        else buf_printf(out, "%d", c);
    }
    buf_puts(out, "\r\n");
    for (int r = R.r0; r < R.r1; r++) {
        if (hm->row_labels) csv_text(out, hm->row_labels[r] ? hm->row_labels[r] : "");
        else buf_printf(out, "%d", r);
        for (int c = R.c0; c < R.c1; c++) {
            float x = hm->v[(size_t)r * hm->cols + c];
            buf_putc(out, ',');
            if (isfinite(x)) buf_printf(out, "%.9g", x);
            else if (!isnan(x)) buf_puts(out, x > 0 ? "inf" : "-inf");
        }
        buf_puts(out, "\r\n");
    }
    return 0;
}

void svg_begin(Buf *out, int w, int h) {
    buf_printf(out,
               "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n"
               "<g font-family=\"monospace\" font-size=\"11\" fill=\"#000000\">\n",
               w, h, w, h);
}

#define SVG_CELL 16
#define SVG_CHAR 7 // approximate advance of an 11px monospace character
#define SVG_LABEL_MAX 24

static int svg_label(char *text, size_t cap, const char *const *labels, int i) {
    const char *s = labels && labels[i] ? labels[i] : "";
    return label_format(text, cap, s, strlen(s), SVG_LABEL_MAX, true);
}

// Open the document for a figure of mw x mh pixels at (left, top) with its title (NULL: none)
// above and the legend's place below it (*legend_y, *legend_w).
static void svg_frame(Buf *out, const char *title, int left, int top, int mw, int mh, int *legend_y, int *legend_w) {
    *legend_y = top + mh + 14, *legend_w = mw < 256 ? (mw > 128 ? mw : 128) : 256;
    int W = left + (mw > *legend_w ? mw : *legend_w) + 16, H = *legend_y + 34;
    bool titled = title && *title;
    int tw = titled ? 24 + label_width(title, strlen(title)) * 8 : 0; // 13px characters
    if (W < tw) W = tw;
    svg_begin(out, W, H);
    if (titled) {
        buf_puts(out, "<text x=\"12\" y=\"18\" font-size=\"13\">");
        buf_put_xml(out, title);
        buf_puts(out, "</text>\n");
    }
}

static void svg_cells(Buf *out, const Heatmap *hm, const float *v, const HmRegion *R, int left, int top, int cell,
                      float lo, float hi, const char *caption);
static void svg_legend_end(Buf *out, CmapScale scale, int left, int y, int w, float lo, float hi);

int heatmap_to_svg(Buf *out, const Heatmap *hm, const HmRegion *reg, const char *title, Err *e) {
    HmRegion R;
    if (check_region(hm, reg, &R, e)) return -1;
    float lo, hi;
    heatmap_range(hm, &lo, &hi);
    char text[4 * SVG_LABEL_MAX + 16];
    int rw = 0, cw = 0;
    for (int r = R.r0; hm->row_labels && r < R.r1; r++) {
        int w = svg_label(text, sizeof text, hm->row_labels, r);
        if (w > rw) rw = w;
    }
    for (int c = R.c0; hm->col_labels && c < R.c1; c++) {
        int w = svg_label(text, sizeof text, hm->col_labels, c);
        if (w > cw) cw = w;
    }
    int nr = R.r1 - R.r0, nc = R.c1 - R.c0;
    bool titled = title && *title;
    int head = titled ? 26 : 0; // the title's line, as the bar charts place theirs
    int left = 8 + (rw ? rw * SVG_CHAR + 6 : 0), top = 8 + head + (cw ? cw * SVG_CHAR + 6 : 0);
    int mw = nc * SVG_CELL, mh = nr * SVG_CELL, legend_y, legend_w;
    svg_frame(out, title, left, top, mw, mh, &legend_y, &legend_w);
    for (int r = R.r0; hm->row_labels && r < R.r1; r++) {
        svg_label(text, sizeof text, hm->row_labels, r);
        buf_printf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" dominant-baseline=\"central\">",
                   left - 6, top + (r - R.r0) * SVG_CELL + SVG_CELL / 2);
        buf_put_xml(out, text);
        buf_puts(out, "</text>\n");
    }
    for (int c = R.c0; hm->col_labels && c < R.c1; c++) {
        svg_label(text, sizeof text, hm->col_labels, c);
        buf_printf(out,
                   "<text transform=\"translate(%d,%d) rotate(-90)\" dominant-baseline=\"central\">",
                   left + (c - R.c0) * SVG_CELL + SVG_CELL / 2, top - 6);
        buf_put_xml(out, text);
        buf_puts(out, "</text>\n");
    }
    buf_puts(out, "</g>\n<g shape-rendering=\"crispEdges\">\n");
    svg_cells(out, hm, hm->v, &R, left, top, SVG_CELL, lo, hi, NULL);
    svg_legend_end(out, hm->scale, left, legend_y, legend_w, lo, hi);
    return 0;
}

// The unmasked cells of region R of the matrix v (hm's shape and scale) as rects of `cell`
// pixels from (left, top), each with its value (after `caption` when given) as a tooltip.
static void svg_cells(Buf *out, const Heatmap *hm, const float *v, const HmRegion *R, int left, int top, int cell,
                      float lo, float hi, const char *caption) {
    for (int r = R->r0; r < R->r1; r++) {
        for (int c = R->c0; c < R->c1; c++) {
            float x = v[(size_t)r * hm->cols + c];
            if (isnan(x)) continue;
            Rgb k = cmap_rgb(hm->scale, cmap_pos(hm->scale, x, lo, hi));
            buf_printf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\"><title>",
                       left + (c - R->c0) * cell, top + (r - R->r0) * cell, cell, cell, k.r, k.g, k.b);
            if (caption) buf_put_xml(out, caption), buf_putc(out, ' ');
            buf_printf(out, "%d,%d: %.6g</title></rect>\n", r, c, x);
        }
    }
}

// The colour legend (w pixels from (left, y)) with the range's ends below it, then the end of
// the document svg_begin opened (the cells' group is open).
static void svg_legend_end(Buf *out, CmapScale scale, int left, int y, int w, float lo, float hi) {
    int steps = 64;
    for (int i = 0; i < steps; i++) {
        Rgb k = cmap_rgb(scale, (i + 0.5) / steps);
        int x0 = left + i * w / steps, x1 = left + (i + 1) * w / steps;
        buf_printf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"10\" fill=\"#%02x%02x%02x\"/>\n", x0, y,
                   x1 - x0, k.r, k.g, k.b);
    }
    bool div = scale == CMAP_DIVERGING;
    char a[32], b[32];
    fmt_range(a, b, sizeof a, lo, hi, div);
    buf_printf(out,
               "</g>\n<g font-family=\"monospace\" font-size=\"11\" fill=\"#000000\">\n"
               "<text x=\"%d\" y=\"%d\">%s</text>\n<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n",
               left, y + 24, a, left + w, y + 24, b);
    if (div) buf_printf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">0</text>\n", left + w / 2, y + 24);
    buf_puts(out, "</g>\n</svg>\n");
}

// The value range over n maps of hm's shape (hm->v the first, the others after it): as
// heatmap_range over all of them together.
static void maps_range(const Heatmap *hm, int n, float *lo, float *hi) {
    Heatmap all = *hm;
    all.rows = hm->rows * n; // the maps are contiguous: one tall matrix
    heatmap_range(&all, lo, hi);
}

int heatmap_grid_to_svg(Buf *out, const Heatmap *hm, int grid_rows, int grid_cols, const char *const *row_names,
                        const char *const *col_names, const char *title, Err *e) {
    if (grid_rows < 1 || grid_cols < 1 || hm->rows < 1 || hm->cols < 1)
        return err_set(e, "no maps to draw (%d x %d maps of %d x %d)", grid_rows, grid_cols, hm->rows, hm->cols);
    const int n = grid_rows * grid_cols, big = hm->rows > hm->cols ? hm->rows : hm->cols;
    // cells of 16 pixels down to 2, each map at most about 192 pixels wide
    int cell = 192 / big;
    cell = cell > SVG_CELL ? SVG_CELL : cell < 2 ? 2 : cell;
    float lo, hi;
    maps_range(hm, n, &lo, &hi);
    int rw = 0;
    for (int r = 0; row_names && r < grid_rows; r++) {
        int w = label_width(row_names[r], strlen(row_names[r]));
        if (w > rw) rw = w;
    }
    const int gap = 10, mw = hm->cols * cell, mh = hm->rows * cell;
    bool titled = title && *title;
    int left = 8 + (rw ? rw * SVG_CHAR + 8 : 0), top = 8 + (titled ? 26 : 0) + (col_names ? 16 : 0);
    int gw = grid_cols * mw + (grid_cols - 1) * gap, gh = grid_rows * mh + (grid_rows - 1) * gap;
    int legend_y, legend_w;
    svg_frame(out, title, left, top, gw, gh, &legend_y, &legend_w);
    for (int c = 0; col_names && c < grid_cols; c++) {
        buf_printf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", left + c * (mw + gap) + mw / 2, top - 6);
        buf_put_xml(out, col_names[c]);
        buf_puts(out, "</text>\n");
    }
    for (int r = 0; row_names && r < grid_rows; r++) {
        buf_printf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" dominant-baseline=\"central\">", left - 8,
                   top + r * (mh + gap) + mh / 2);
        buf_put_xml(out, row_names[r]);
        buf_puts(out, "</text>\n");
    }
    buf_puts(out, "</g>\n<g shape-rendering=\"crispEdges\">\n");
    const HmRegion R = {0, hm->rows, 0, hm->cols};
    Buf cap = {0};
    for (int r = 0; r < grid_rows; r++)
        for (int c = 0; c < grid_cols; c++) {
            buf_clear(&cap);
            buf_printf(&cap, "%s %s", row_names ? row_names[r] : "", col_names ? col_names[c] : "");
            const float *v = hm->v + (size_t)(r * grid_cols + c) * hm->rows * hm->cols;
            svg_cells(out, hm, v, &R, left + c * (mw + gap), top + r * (mh + gap), cell, lo, hi,
                      cap.data ? cap.data : "");
        }
    buf_free(&cap);
    svg_legend_end(out, hm->scale, left, legend_y, legend_w, lo, hi);
    return 0;
}

int heatmap_maps_to_csv(Buf *out, const Heatmap *hm, int n, const char *key_a, const char *key_b, const int *a,
                        const int *b) {
    buf_puts(out, key_a), buf_putc(out, ','), buf_puts(out, key_b);
    buf_puts(out, ",query,key,query_token,key_token,weight\r\n");
    for (int k = 0; k < n; k++) {
        const float *v = hm->v + (size_t)k * hm->rows * hm->cols;
        for (int r = 0; r < hm->rows; r++)
            for (int c = 0; c < hm->cols; c++) {
                float x = v[(size_t)r * hm->cols + c];
                if (isnan(x)) continue; // masked: not an entry of the map
                buf_printf(out, "%d,%d,%d,%d,", a[k], b[k], r, c);
                csv_text(out, hm->row_labels && hm->row_labels[r] ? hm->row_labels[r] : "");
                buf_putc(out, ',');
                csv_text(out, hm->col_labels && hm->col_labels[c] ? hm->col_labels[c] : "");
                if (isfinite(x)) buf_printf(out, ",%.9g\r\n", x);
                else buf_printf(out, ",%s\r\n", x > 0 ? "inf" : "-inf");
            }
    }
    return 0;
}
