// cellgrid.c - the cell grid the views draw into, and its text form for golden tests.
#include "cellgrid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

static const Cell blank = {" ", {0, 0, 0}, {0, 0, 0}, 0, 0, CELL_FG_DEFAULT | CELL_BG_DEFAULT, 0};

int cellgrid_init(CellGrid *g, int w, int h, ColorMode mode) {
    memset(g, 0, sizeof *g);
    if (w <= 0 || h <= 0 || w > 10000 || h > 10000) return -1;
    g->cells = xmalloc((size_t)w * (size_t)h * sizeof *g->cells); // view state: bookkeeping (mem.h)
    g->w = w, g->h = h, g->mode = mode;
    cellgrid_clear(g);
    return 0;
}

void cellgrid_done(CellGrid *g) {
    free(g->cells);
    memset(g, 0, sizeof *g);
}

void cellgrid_clear(CellGrid *g) {
    for (size_t i = 0, n = (size_t)g->w * (size_t)g->h; i < n; i++) g->cells[i] = blank;
}

void cellgrid_clear_rect(CellGrid *g, int x, int y, int w, int h) {
    for (int j = y < 0 ? 0 : y; j < y + h && j < g->h; j++)
        for (int i = x < 0 ? 0 : x; i < x + w && i < g->w; i++) g->cells[(size_t)j * g->w + i] = blank;
}

Cell *cellgrid_at(CellGrid *g, int x, int y) {
    if (x < 0 || y < 0 || x >= g->w || y >= g->h) return NULL;
    return &g->cells[(size_t)y * g->w + x];
}

CellColor cellcolor_index(ColorMode mode, int idx) {
    if (mode == CMODE_ASCII) return CELLCOLOR_DEFAULT;
    if (mode == CMODE_C8) idx &= 7;
    return (CellColor){cmap_xterm_rgb(idx), (uint8_t)idx, false};
}

CellColor cellcolor_rgb(ColorMode mode, Rgb rgb) {
    switch (mode) {
    case CMODE_ASCII: return CELLCOLOR_DEFAULT;
    case CMODE_C8: {
        double lab[3], best = 1e9;
        int bi = 0;
        cmap_oklab(rgb, lab);
        for (int i = 0; i < 8; i++) {
            double p[3];
            cmap_oklab(cmap_xterm_rgb(i), p);
            double d = (lab[0] - p[0]) * (lab[0] - p[0]) + (lab[1] - p[1]) * (lab[1] - p[1]) +
                       (lab[2] - p[2]) * (lab[2] - p[2]);
            if (d < best) best = d, bi = i;
        }
        return cellcolor_index(mode, bi);
    }
    case CMODE_C256: return cellcolor_index(mode, cmap_xterm256(rgb));
    case CMODE_TRUECOLOR: return (CellColor){rgb, (uint8_t)cmap_xterm256(rgb), false};
    }
    return CELLCOLOR_DEFAULT;
}

static void set_colors(Cell *c, CellColor fg, CellColor bg, int attr) {
    c->fg = fg.rgb, c->fgi = fg.idx;
    c->bg = bg.rgb, c->bgi = bg.idx;
    c->flags = (uint8_t)((fg.deflt ? CELL_FG_DEFAULT : 0) | (bg.deflt ? CELL_BG_DEFAULT : 0));
    c->attr = (uint8_t)attr;
}

void cellgrid_put(CellGrid *g, int x, int y, const char *glyph, int width, CellColor fg,
                  CellColor bg, int attr) {
    Cell *c = cellgrid_at(g, x, y);
    if (!c) return;
    if (width == 2 && x + 1 >= g->w) glyph = " ", width = 1;
    // Overwriting half of a wide glyph leaves the other half as a space.
    if (c->flags & CELL_CONT && x > 0) strcpy(c[-1].g, " ");
    int last = x + width - 1;
    Cell *e = &g->cells[(size_t)y * g->w + last];
    if (last + 1 < g->w && e[1].flags & CELL_CONT) strcpy(e[1].g, " "), e[1].flags &= (uint8_t)~CELL_CONT;
    size_t n = strlen(glyph);
    if (n >= sizeof c->g) n = sizeof c->g - 1;
    memcpy(c->g, glyph, n);
    c->g[n] = 0;
    set_colors(c, fg, bg, attr);
    if (width == 2) {
        c[1].g[0] = 0;
        set_colors(&c[1], fg, bg, attr);
        c[1].flags |= CELL_CONT;
    }
}

int cellgrid_text(CellGrid *g, int x, int y, int maxw, const char *text, CellColor fg,
                  CellColor bg, int attr) {
    size_t pos = 0, n = strlen(text);
    int used = 0;
    char glyph[LABEL_GLYPH_MAX];
    for (;;) {
        int cw = label_next(text, n, &pos, glyph);
        if (!cw || used + cw > maxw) break;
        cellgrid_put(g, x + used, y, glyph, cw, fg, bg, attr);
        used += cw;
    }
    return used;
}

// The meaning of a cell's colours and attributes as text, e.g. "fg=#440154 bg=- bold".
static void key_text(const CellGrid *g, const Cell *c, char *out, size_t cap) {
    char fg[16] = "-", bg[16] = "-";
    if (g->mode == CMODE_TRUECOLOR) {
        if (!(c->flags & CELL_FG_DEFAULT)) snprintf(fg, sizeof fg, "#%02x%02x%02x", c->fg.r, c->fg.g, c->fg.b);
        if (!(c->flags & CELL_BG_DEFAULT)) snprintf(bg, sizeof bg, "#%02x%02x%02x", c->bg.r, c->bg.g, c->bg.b);
    } else if (g->mode != CMODE_ASCII) {
        if (!(c->flags & CELL_FG_DEFAULT)) snprintf(fg, sizeof fg, "%d", c->fgi);
        if (!(c->flags & CELL_BG_DEFAULT)) snprintf(bg, sizeof bg, "%d", c->bgi);
    }
    snprintf(out, cap, "fg=%s bg=%s%s%s%s%s", fg, bg, c->attr & CELL_BOLD ? " bold" : "",
             c->attr & CELL_DIM ? " dim" : "", c->attr & CELL_REVERSE ? " reverse" : "",
             c->attr & CELL_UNDERLINE ? " underline" : "");
}

void cellgrid_dump(const CellGrid *g, Buf *out) {
    static const char keys[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                               "#$%&*+-/:;=?@^_~<>[]{}()!";
    enum { NKEYS = sizeof keys - 1 };
    char seen[NKEYS][48];
    int nseen = 0;
    bool overflow = false;
    buf_printf(out, "mode %s, %dx%d\n", cmap_mode_name(g->mode), g->w, g->h);
    for (int y = 0; y < g->h; y++) {
        buf_putc(out, '|');
        for (int x = 0; x < g->w; x++) buf_puts(out, g->cells[(size_t)y * g->w + x].g);
        buf_puts(out, "|\n");
    }
    buf_puts(out, "colours:\n");
    for (int y = 0; y < g->h; y++) {
        buf_putc(out, '|');
        for (int x = 0; x < g->w; x++) {
            char k[48];
            key_text(g, &g->cells[(size_t)y * g->w + x], k, sizeof k);
            if (!strcmp(k, "fg=- bg=-")) {
                buf_putc(out, '.');
                continue;
            }
            int i = 0;
            while (i < nseen && strcmp(seen[i], k)) i++;
            if (i == nseen) {
                if (nseen == NKEYS) {
                    overflow = true;
                    buf_putc(out, '!');
                    continue;
                }
                strcpy(seen[nseen++], k);
            }
            buf_putc(out, keys[i]);
        }
        buf_puts(out, "|\n");
    }
    for (int i = 0; i < nseen; i++) buf_printf(out, "%c %s\n", keys[i], seen[i]);
    if (overflow) buf_puts(out, "! more colours than keys\n");
}
