// barchart.c - bars with error bars (see barchart.h): terminal cells in eighths of a column,
// SVG, CSV.
#include "barchart.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/stats.h"
#include "heatmap.h"
#include "label.h"
#include "view.h"

static bool has(float v) { return v == v; }

// Bar i's 95% interval: the Wilson interval of value x count right out of count (the bars are
// accuracies). False without a value or a count.
static bool bar_interval(const BarChart *c, int i, double *lo, double *hi) {
    float v = c->value[i], n = c->count ? c->count[i] : NAN;
    *lo = *hi = NAN;
    if (!has(v) || !has(n) || n < 1) return false;
    double vv = v < 0 ? 0 : v > 1 ? 1 : v;
    stats_wilson95(lround(vv * n), lround(n), lo, hi);
    return *lo == *lo;
}

static int label_cols(const BarChart *c, bool utf8) {
    int w = 9; // "condition"
    for (int i = 0; i < c->n; i++) {
        const char *s = c->labels && c->labels[i] ? c->labels[i] : "";
        int lw = vd_width(s, strlen(s), utf8);
        if (lw > w) w = lw;
    }
    return w;
}

void barchart_draw(CellGrid *g, int x, int y, int w, int h, const BarChart *c, int sel, int top, bool utf8) {
    if (w < 10 || h < 1) return;
    int lw = label_cols(c, utf8), cw = 6, vw = 15; // label, " n=NNN", " 0.620 ± 0.049"
    if (lw > w / 3) lw = w / 3;
    int bx = x + lw + 1 + cw + 1, bw = w - (bx - x) - vw;
    if (bw < 8) bw = 8, vw = 0;
    CellColor bar = vd_accent(g->mode), dflt = CELLCOLOR_DEFAULT;
    bool ascii = g->mode == CMODE_ASCII || !utf8;
    // the axis: 0, .5 and 1 over the bars
    vd_printf(g, x, y, lw + 1 + cw, CELL_DIM | CELL_UNDERLINE, utf8, "%-*s %*s", lw, "condition", cw, "n");
    for (int k = 0; k < bw; k++) cellgrid_put(g, bx + k, y, ascii ? "-" : "\u2500", 1, dflt, dflt, CELL_DIM);
    cellgrid_put(g, bx, y, "0", 1, dflt, dflt, CELL_DIM);
    cellgrid_put(g, bx + bw / 2, y, ascii ? "+" : "\u253c", 1, dflt, dflt, CELL_DIM);
    cellgrid_put(g, bx + bw - 1, y, "1", 1, dflt, dflt, CELL_DIM);
    if (vw) vd_printf(g, bx + bw + 1, y, vw - 1, CELL_DIM | CELL_UNDERLINE, utf8, "%-*s", vw - 1, "accuracy");
    static const char *const eighths[8] = {"", "\u258f", "\u258e", "\u258d", "\u258c", "\u258b", "\u258a", "\u2589"};
    for (int r = 0; r + 1 < h && top + r < c->n; r++) {
        int i = top + r, Y = y + 1 + r;
        int attr = i == sel ? CELL_REVERSE : 0;
        const char *lab = c->labels && c->labels[i] ? c->labels[i] : "";
        if (attr)
            for (int k = 0; k < bx - x - 1; k++) cellgrid_put(g, x + k, Y, " ", 1, dflt, dflt, attr);
        vd_text(g, x, Y, lw, lab, 0, strlen(lab), dflt, dflt, attr | (i == sel ? CELL_BOLD : 0), utf8);
        if (c->count && has(c->count[i])) vd_printf(g, x + lw + 1, Y, cw, attr | CELL_DIM, utf8, "%*.0f", cw, c->count[i]);
        float v = c->value[i];
        if (!has(v)) {
            vd_printf(g, bx, Y, bw, CELL_DIM, utf8, "%s", "(no items yet)");
            continue;
        }
        double vv = v < 0 ? 0 : v > 1 ? 1 : v;
        // the bar in eighths of a column (ASCII: whole columns of '#')
        int e8 = (int)lround(vv * bw * 8);
        for (int k = 0; k < bw; k++) {
            int f = e8 - 8 * k;
            if (ascii) {
                if (f >= 4) cellgrid_put(g, bx + k, Y, "#", 1, dflt, dflt, 0);
            } else if (f >= 8) {
                cellgrid_put(g, bx + k, Y, " ", 1, dflt, bar, 0);
            } else if (f > 0) {
                cellgrid_put(g, bx + k, Y, eighths[f], 1, bar, dflt, 0);
            }
        }
        // the error bar: the 95% interval as |---| over the bar
        float se = c->err ? c->err[i] : NAN;
        double lo, hi;
        if (bar_interval(c, i, &lo, &hi)) {
            int a = (int)floor(lo * (bw - 1) + 0.5), b = (int)floor(hi * (bw - 1) + 0.5);
            for (int k = a; k <= b; k++) {
                Cell *cell = cellgrid_at(g, bx + k, Y);
                bool in_bar = cell && (cell->flags & CELL_BG_DEFAULT) == 0;
                const char *gl = k == a ? (ascii ? "|" : "\u251c") : k == b ? (ascii ? "|" : "\u2524") : (ascii ? "-" : "\u2500");
                if (a == b) gl = ascii ? "|" : "\u2502";
                cellgrid_put(g, bx + k, Y, gl, 1, dflt, in_bar ? bar : dflt, CELL_BOLD);
            }
        }
        if (vw) {
            if (has(se)) vd_printf(g, bx + bw + 1, Y, vw - 1, attr, utf8, "%.3f %s %.3f", v, ascii ? "+-" : "\u00b1", se);
            else vd_printf(g, bx + bw + 1, Y, vw - 1, attr, utf8, "%.3f", v);
        }
    }
}

// A float as the digits it holds (7 significant: 0.6, not 0.600000024).
static void csv_num(Buf *b, float v) {
    buf_putc(b, ',');
    if (has(v)) buf_printf(b, "%.7g", v);
}

int barchart_to_csv(Buf *out, const BarChart *c, Err *e) {
    (void)e;
    buf_put_csv(out, c->label_name ? c->label_name : "condition", strlen(c->label_name ? c->label_name : "condition"));
    buf_puts(out, ",n,accuracy,stderr,ci_low,ci_high");
    for (int k = 0; k < c->n_extra; k++) {
        buf_putc(out, ',');
        buf_put_csv(out, c->extra_names[k], strlen(c->extra_names[k]));
    }
    buf_puts(out, "\r\n");
    for (int i = 0; i < c->n; i++) {
        const char *lab = c->labels && c->labels[i] ? c->labels[i] : "";
        buf_put_csv(out, lab, strlen(lab));
        float v = c->value[i], se = c->err ? c->err[i] : NAN;
        csv_num(out, c->count ? c->count[i] : NAN);
        csv_num(out, v);
        csv_num(out, se);
        double lo, hi;
        bar_interval(c, i, &lo, &hi);
        csv_num(out, (float)lo);
        csv_num(out, (float)hi);
        for (int k = 0; k < c->n_extra; k++) csv_num(out, c->extra[(size_t)k * c->n + i]);
        buf_puts(out, "\r\n");
    }
    return 0;
}

// A bar's label as written (spaces kept, unlike a token's visible form), cut to 60 bytes at a
// character boundary; its length.
static int bar_label(char *out, size_t cap, const char *s) {
    size_t n = strlen(s);
    if (n > 60) {
        n = 60;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    snprintf(out, cap, "%.*s", (int)n, s);
    return (int)n;
}

int barchart_to_svg(Buf *out, const BarChart *c, Err *e) {
    (void)e;
    enum { ROW = 22, BAR = 14, PLOT = 400, CHAR = 7 };
    char text[256];
    int lw = 0;
    for (int i = 0; i < c->n; i++) {
        const char *s = c->labels && c->labels[i] ? c->labels[i] : "";
        int w = bar_label(text, sizeof text, s);
        if (w > lw) lw = w;
    }
    int left = 12 + lw * CHAR + 10, top = 40, W = left + PLOT + 150, H = top + c->n * ROW + 40;
    svg_begin(out, W, H);
    if (c->title) {
        buf_printf(out, "<text x=\"12\" y=\"18\" font-size=\"13\">");
        buf_put_xml(out, c->title);
        buf_puts(out, "</text>\n");
    }
    // the axis and its grid: 0, 0.25 ... 1
    for (int k = 0; k <= 4; k++) {
        int gx = left + k * PLOT / 4;
        buf_printf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#dddddd\"/>\n", gx, top - 4, gx,
                   top + c->n * ROW);
        buf_printf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%.2f</text>\n", gx, top + c->n * ROW + 16,
                   k / 4.0);
    }
    buf_printf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">accuracy \u00b1 standard error (error bars: 95%% "
                    "Wilson score interval)</text>\n",
               left + PLOT / 2, top + c->n * ROW + 32);
    for (int i = 0; i < c->n; i++) {
        int yy = top + i * ROW;
        const char *s = c->labels && c->labels[i] ? c->labels[i] : "";
        bar_label(text, sizeof text, s);
        buf_printf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" dominant-baseline=\"central\">", left - 8,
                   yy + ROW / 2);
        buf_put_xml(out, text);
        buf_puts(out, "</text>\n");
        float v = c->value[i], se = c->err ? c->err[i] : NAN;
        if (!has(v)) continue;
        double vv = fmin(1, fmax(0, v));
        buf_printf(out, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"#4fa3d8\"><title>", left,
                   yy + (ROW - BAR) / 2, vv * PLOT, BAR);
        buf_put_xml(out, text);
        buf_printf(out, ": %.4f</title></rect>\n", v);
        double lo, hi;
        if (bar_interval(c, i, &lo, &hi)) {
            double a = left + lo * PLOT, b = left + hi * PLOT;
            int ym = yy + ROW / 2;
            buf_printf(out,
                       "<path d=\"M%.1f %d H%.1f M%.1f %d V%d M%.1f %d V%d\" stroke=\"#000000\" stroke-width=\"1.5\" "
                       "fill=\"none\"/>\n",
                       a, ym, b, a, ym - 5, ym + 5, b, ym - 5, ym + 5);
        }
        buf_printf(out, "<text x=\"%d\" y=\"%d\" dominant-baseline=\"central\">%.3f", left + PLOT + 10, yy + ROW / 2, v);
        if (has(se)) buf_printf(out, " \u00b1 %.3f", se);
        if (c->count && has(c->count[i])) buf_printf(out, " (n=%.0f)", c->count[i]);
        buf_puts(out, "</text>\n");
    }
    buf_puts(out, "</g>\n</svg>\n");
    return 0;
}
