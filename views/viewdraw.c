// viewdraw.c - small drawing helpers shared by the views: running text with visible controls,
// wrapping, rules, UI colours, and quoting text for the command language.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"
#include "label.h"
#include "base/utf8.h"
#include "view.h"

int view_open(View *v, const ViewOps *ops, ViewHost *h) {
    memset(v, 0, sizeof *v);
    v->ops = ops;
    v->host = h;
    v->cur_x = v->cur_y = -1;
    return ops->open ? ops->open(v) : 0;
}

void view_close(View *v) {
    if (v->ops && v->ops->close && v->state) v->ops->close(v);
    v->state = NULL;
}

int vd_char(const char *s, size_t n, size_t *pos, char vis[32], bool utf8) {
    size_t i = *pos;
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7F) { // the common case
        vis[0] = (char)c, vis[1] = 0;
        *pos = i + 1;
        return 1;
    }
    int len = utf8_valid_len(s + i, n - i);
    size_t step = len < 0 ? (size_t)-len : (size_t)len;
    if (c == '\n') {
        strcpy(vis, utf8 ? "\u21B5" : "\\n");
        *pos = i + 1;
        return utf8 ? 1 : 2;
    }
    if (utf8 && label_joins(s, n, i)) { // a combining mark on the character before it
        memcpy(vis, s + i, step);
        vis[step] = 0;
        *pos = i + step;
        return 0;
    }
    Buf b = {0};
    label_visible(&b, s + i, step, utf8);
    size_t bl = b.len < 31 ? b.len : 31;
    memcpy(vis, b.data ? b.data : "", bl);
    vis[bl] = 0;
    buf_free(&b);
    *pos = i + step;
    return label_width(vis, bl);
}

int vd_width(const char *s, size_t n, bool utf8) {
    int w = 0;
    char vis[32];
    for (size_t p = 0; p < n;) w += vd_char(s, n, &p, vis, utf8);
    return w;
}

int vd_wrap(const char *s, size_t n, int w, bool utf8, VdRow **rows) {
    int cap = 16, nr = 0;
    VdRow *r = xmalloc(sizeof *r * (size_t)cap);
    if (w < 1) w = 1;
    size_t start = 0, p = 0, brk = (size_t)-1; // brk: just after the last space of the row
    int col = 0;
    char vis[32];
    for (;;) {
        bool end = p >= n, nl = !end && s[p] == '\n';
        size_t q = p;
        int cw = end || nl ? 0 : vd_char(s, n, &q, vis, utf8);
        bool full = !end && !nl && col + cw > w && col > 0;
        if (end || nl || full) {
            size_t stop = p;
            if (full && brk != (size_t)-1 && brk > start) stop = brk;
            if (nr == cap) {
                r = xrealloc(r, sizeof *r * (size_t)(cap *= 2));
            }
            r[nr++] = (VdRow){start, stop};
            if (end) break;
            if (nl) {
                start = p = p + 1;
                if (p >= n) { // a final newline opens an empty last row
                    if (nr == cap) {
                        r = xrealloc(r, sizeof *r * (size_t)(cap *= 2));
                    }
                    r[nr++] = (VdRow){p, p};
                    break;
                }
            } else {
                start = p = stop;
            }
            col = 0, brk = (size_t)-1;
            continue;
        }
        col += cw;
        p = q;
        if (s[q - 1] == ' ') brk = q;
    }
    *rows = r;
    return nr;
}

void vd_join(CellGrid *g, int x, int y, const char *mark) {
    Cell *c = cellgrid_at(g, x, y);
    if (c && c->flags & CELL_CONT) c = cellgrid_at(g, x - 1, y); // the left half of a wide glyph
    if (c && strlen(c->g) + strlen(mark) < LABEL_GLYPH_MAX) strcat(c->g, mark);
}

int vd_text(CellGrid *g, int x, int y, int maxw, const char *s, size_t start, size_t end, CellColor fg,
            CellColor bg, int attr, bool utf8) {
    int used = 0;
    char vis[32], glyph[LABEL_GLYPH_MAX];
    s += start; // [start, end) is a text of its own: a mark at its start is not put on what lies before
    for (size_t p = 0, n = end - start; p < n;) {
        int cw = vd_char(s, n, &p, vis, utf8);
        if (cw == 0) { // a combining mark: join the glyph before it
            if (used > 0) vd_join(g, x + used - 1, y, vis);
            continue;
        }
        if (used + cw > maxw) { // cut: the last column says so, unless only spaces are left out
            bool more = false;
            for (size_t k = p - 1; k < n && !more; k++) more = s[k] != ' ' && s[k] != '\n';
            if (more && maxw > 0) { // in the column left free by a wide glyph, else on the last glyph
                Cell *c = cellgrid_at(g, x + used - 1, y);
                int at = used < maxw ? used : c && (c->flags & CELL_CONT) ? used - 2 : used - 1;
                cellgrid_put(g, x + at, y, utf8 ? "\u2026" : "~", 1, fg, bg, attr);
                if (at == used) used++;
            }
            break;
        }
        size_t vp = 0, vn = strlen(vis);
        int gw;
        while ((gw = label_next(vis, vn, &vp, glyph)) > 0) {
            cellgrid_put(g, x + used, y, glyph, gw, fg, bg, attr);
            used += gw;
        }
    }
    return used;
}

int vd_printf(CellGrid *g, int x, int y, int maxw, int attr, bool utf8, const char *fmt, ...) {
    Buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    int n = vd_text(g, x, y, maxw, b.data ? b.data : "", 0, b.len, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, attr, utf8);
    buf_free(&b);
    return n;
}

void vd_gen_size(Buf *b, int n_tokens, double tok_s) {
    buf_printf(b, "%d token%s", n_tokens, n_tokens == 1 ? "" : "s");
    if (tok_s > 0 && isfinite(tok_s)) buf_printf(b, ", %.1f tok/s", tok_s);
}

void vd_rule(CellGrid *g, int x, int y, int w, bool utf8) {
    for (int i = 0; i < w; i++)
        cellgrid_put(g, x + i, y, utf8 ? "\u2500" : "-", 1, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, CELL_DIM);
}

CellColor vd_accent(ColorMode mode) {
    if (mode == CMODE_TRUECOLOR) return cellcolor_rgb(mode, (Rgb){0x4f, 0xa3, 0xd8});
    if (mode == CMODE_C256) return cellcolor_index(mode, 74);
    if (mode == CMODE_C8) return cellcolor_index(mode, 6);
    return CELLCOLOR_DEFAULT;
}

CellColor vd_error(ColorMode mode) {
    if (mode == CMODE_TRUECOLOR) return cellcolor_rgb(mode, (Rgb){0xe0, 0x40, 0x40});
    if (mode == CMODE_C256) return cellcolor_index(mode, 167);
    if (mode == CMODE_C8) return cellcolor_index(mode, 1);
    return CELLCOLOR_DEFAULT;
}

void vd_progress(CellGrid *g, int x, int y, int w, const char *what, const ViewProgress *p, bool u) {
    char took[32], left[32] = "?";
    clock_fmt_duration(p->elapsed_s, took, sizeof took);
    if (p->left_s == p->left_s) clock_fmt_duration(p->left_s, left, sizeof left);
    int pct = p->total > 0 ? (int)(100 * p->done / p->total) : 0;
    int c = vd_printf(g, x, y, w, CELL_BOLD, u, "running %s ", what);
    int bw = w - c - 40;
    if (bw > 40) bw = 40;
    if (bw >= 5) {
        bool ascii = g->mode == CMODE_ASCII || !u;
        CellColor acc = vd_accent(g->mode), d = CELLCOLOR_DEFAULT;
        int full = p->total > 0 ? (int)(bw * p->done / p->total) : 0;
        for (int k = 0; k < bw; k++) {
            if (ascii) cellgrid_put(g, x + c + k, y, k < full ? "#" : ".", 1, d, d, k < full ? 0 : CELL_DIM);
            else cellgrid_put(g, x + c + k, y, k < full ? "\u2588" : "\u2591", 1, k < full ? acc : d, d, k < full ? 0 : CELL_DIM);
        }
        c += bw + 1;
    }
    vd_printf(g, x + c, y, w - c, 0, u, "%ld/%ld %d%%  %s, %s left", p->done, p->total, pct, took, left);
}
