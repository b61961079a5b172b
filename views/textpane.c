// textpane.c - scrollable text: the log of commands and their output, and the help pane.
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "view.h"

#define LOG_MAX_LINES 5000

typedef struct PaneLine {
    char *s;
    size_t n;
    int attr; // CELL_* ; CELL_UNDERLINE marks an error line (drawn in the error colour)
} PaneLine;

typedef struct Pane {
    PaneLine *lines;
    int n, cap;
    int top;      // first wrapped row shown
    bool follow;  // keep the end in view (the log)
    int last_h;   // rows shown at the last draw (for paging)
    // wrapped rows, recomputed when the width or the text changes
    int wrap_w, nrows;
    unsigned wrap_ver, ver;
    struct {
        int line, indent;
        size_t start, end;
    } *rows;
} Pane;

static int pane_open(View *v) {
    Pane *p = xcalloc(1, sizeof *p);
    p->follow = v->ops == &log_view_ops;
    p->wrap_w = -1;
    v->state = p;
    return 0;
}

static void pane_clear(Pane *p) {
    for (int i = 0; i < p->n; i++) free(p->lines[i].s);
    p->n = 0;
    p->ver++;
}

static void pane_close(View *v) {
    Pane *p = v->state;
    pane_clear(p);
    free(p->lines);
    free(p->rows);
    free(p);
}

static void add_line(Pane *p, const char *s, size_t n, int attr) {
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->lines = xrealloc(p->lines, sizeof *p->lines * (size_t)p->cap);
    }
    char *c = xmalloc(n + 1); // the text may hold NUL bytes: n of them, not a string
    memcpy(c, s, n);
    c[n] = 0;
    p->lines[p->n++] = (PaneLine){c, n, attr};
}

void textpane_append(View *v, const char *text, size_t n, int attr) {
    Pane *p = v->state;
    if (!p) return;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && text[i] != '\n') continue;
        if (!(i == n && start == n && n > 0)) add_line(p, text + start, i - start, attr);
        start = i + 1;
    }
    if (p->n > LOG_MAX_LINES) { // drop the oldest
        int drop = p->n - LOG_MAX_LINES;
        for (int i = 0; i < drop; i++) free(p->lines[i].s);
        memmove(p->lines, p->lines + drop, sizeof *p->lines * (size_t)(p->n - drop));
        p->n -= drop;
    }
    p->ver++;
}

void textpane_set(View *v, const char *text, size_t n) {
    Pane *p = v->state;
    if (!p) return;
    pane_clear(p);
    textpane_append(v, text, n, 0);
    p->top = 0;
}

static void rewrap(Pane *p, int w, bool utf8) {
    if (p->wrap_w == w && p->wrap_ver == p->ver) return;
    free(p->rows);
    p->rows = NULL;
    p->nrows = 0;
    int cap = 0;
    for (int i = 0; i < p->n; i++) {
        const char *s = p->lines[i].s;
        size_t n = p->lines[i].n, done = 0;
        // continuation rows are indented past the line's own indentation (hanging indent)
        int lead = 0;
        while ((size_t)lead < n && s[lead] == ' ') lead++;
        int indent = lead + 2 < w / 3 ? lead + 2 : 0;
        for (int first = 1; done < n || first; first = 0) {
            VdRow *r;
            int ww = first ? w : w - indent;
            int nr = vd_wrap(s + done, n - done, ww, utf8, &r);
            if (nr < 1) break;
            int take = first ? 1 : nr; // after the first row, wrap the rest at the narrower width
            for (int k = 0; k < take; k++) {
                if (p->nrows == cap) {
                    cap = cap ? cap * 2 : 256;
                    p->rows = xrealloc(p->rows, sizeof *p->rows * (size_t)cap);
                }
                p->rows[p->nrows].line = i;
                p->rows[p->nrows].indent = first ? 0 : indent;
                p->rows[p->nrows].start = done + r[k].start;
                p->rows[p->nrows].end = done + r[k].end;
                p->nrows++;
            }
            size_t next = done + r[take - 1].end;
            while (next < n && s[next] == ' ' && !first) next++;
            free(r);
            if (take == nr || next <= done) break;
            done = next;
        }
    }
    p->wrap_w = w, p->wrap_ver = p->ver;
}

static void pane_draw(View *v, CellGrid *g, int x, int y, int w, int h) {
    Pane *p = v->state;
    bool utf8 = v->host->sh->utf8;
    ColorMode mode = v->host->sh->mode;
    int tw = w - 1; // the last column is the scroll bar
    if (tw < 1) return;
    rewrap(p, tw, utf8);
    p->last_h = h;
    int max_top = p->nrows - h > 0 ? p->nrows - h : 0;
    if (p->follow) p->top = max_top;
    if (p->top > max_top) p->top = max_top;
    if (p->top < 0) p->top = 0;
    for (int j = 0; j < h && p->top + j < p->nrows; j++) {
        int r = p->top + j;
        const PaneLine *L = &p->lines[p->rows[r].line];
        CellColor fg = CELLCOLOR_DEFAULT;
        int attr = L->attr;
        if (attr & CELL_UNDERLINE) fg = vd_error(mode), attr &= ~CELL_UNDERLINE;
        if (attr & CELL_BOLD) fg = vd_accent(mode);
        int ind = p->rows[r].indent;
        vd_text(g, x + ind, y + j, tw - ind, L->s, p->rows[r].start, p->rows[r].end, fg, CELLCOLOR_DEFAULT, attr, utf8);
    }
    if (p->nrows > h && h > 0) { // scroll bar
        int bar = h * h / p->nrows, pos = (int)((long)(h - (bar < 1 ? 1 : bar)) * p->top / (max_top ? max_top : 1));
        if (bar < 1) bar = 1;
        for (int j = 0; j < h; j++)
            cellgrid_put(g, x + w - 1, y + j, j >= pos && j < pos + bar ? (utf8 ? "\u2588" : "#") : (utf8 ? "\u2502" : "|"),
                         1, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, j >= pos && j < pos + bar ? 0 : CELL_DIM);
    }
    if (!p->n) vd_printf(g, x, y, tw, CELL_DIM, utf8, "(empty)");
}

static int pane_key(View *v, int key) {
    Pane *p = v->state;
    int page = p->last_h > 2 ? p->last_h - 1 : 1;
    int max_top = p->nrows - p->last_h > 0 ? p->nrows - p->last_h : 0;
    switch (key) {
    case VK_UP: case 'k': p->top--; break;
    case VK_DOWN: case 'j': p->top++; break;
    case VK_PGUP: case VK_CTRL('b'): p->top -= page; break;
    case VK_PGDN: case VK_CTRL('f'): case ' ': p->top += page; break;
    case VK_HOME: case 'g': p->top = 0; break;
    case VK_END: case 'G': p->top = max_top; break;
    default: return 0;
    }
    if (p->top < 0) p->top = 0;
    if (p->top > max_top) p->top = max_top;
    if (v->ops == &log_view_ops) p->follow = p->top >= max_top;
    return 1;
}

const ViewOps log_view_ops = {
    .name = "log",
    .title = "Log",
    .keys = "up/down j/k  scroll\nPgUp/PgDn  page\ng/G  start/end (the end follows new output)",
    .open = pane_open,
    .close = pane_close,
    .draw = pane_draw,
    .key = pane_key,
};

const ViewOps help_view_ops = {
    .name = "help",
    .title = "Help",
    .keys = "up/down j/k  scroll\nPgUp/PgDn space  page\nEsc  back to the previous view",
    .open = pane_open,
    .close = pane_close,
    .draw = pane_draw,
    .key = pane_key,
};
