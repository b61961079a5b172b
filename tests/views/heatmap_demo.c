// heatmap_demo.c - paints the heatmap widget with curses, for looking at it (not a test).
// Usage: heatmap_demo [--mode ascii|8|256|truecolor] [--data attn|pe|big] [--zoom N]
// Keys: arrows/hjkl move the cursor, + and - zoom, 0 fits, m cycles the colour mode,
// d cycles the data, q quits. Run it in tmux and capture the pane to see what a person sees.
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heatmap.h"
#include "heatmap_curses.h"

static const char *const toks[] = {"The", " cat", " sat", " on", " the", " mat", ".", "\n", "It",
                                   " was", " happy", " \xf0\x9f\x98\x80", " \xe7\x8c\xab", "\t", " international", "!"};
enum { NT = sizeof toks / sizeof *toks };

typedef struct Data {
    float *v;
    int rows, cols;
    const char **rl, **cl;
    CmapScale scale;
    float lo, hi;
} Data;

static void make_attn(Data *d) {
    int n = NT;
    d->v = malloc(sizeof(float) * n * n), d->rows = d->cols = n;
    d->rl = d->cl = (const char **)toks;
    d->scale = CMAP_SEQUENTIAL, d->lo = 0, d->hi = 1;
    for (int r = 0; r < n; r++) {
        float s = 0;
        for (int c = 0; c <= r; c++) { // a sink on the first token, previous-token heads, a little noise
            float x = (c == 0 ? 2.0f : 0.1f) + (c == r - 1 ? 1.5f : 0) + 0.3f * (float)((r * 7 + c * 3) % 5) / 5;
            d->v[r * n + c] = x, s += x;
        }
        for (int c = 0; c < n; c++) d->v[r * n + c] = c > r ? NAN : d->v[r * n + c] / s;
    }
}

static void make_pe(Data *d) {
    int n = 48, dim = 64;
    d->v = malloc(sizeof(float) * n * dim), d->rows = n, d->cols = dim;
    d->rl = d->cl = NULL, d->scale = CMAP_DIVERGING, d->lo = d->hi = 0;
    for (int p = 0; p < n; p++)
        for (int i = 0; i < dim; i++) {
            double f = p / pow(10000.0, (i / 2 * 2) / (double)dim);
            d->v[p * dim + i] = (float)(i % 2 ? cos(f) : sin(f));
        }
}

static void make_big(Data *d) {
    int n = 120;
    d->v = malloc(sizeof(float) * n * n), d->rows = d->cols = n;
    d->rl = d->cl = NULL, d->scale = CMAP_SEQUENTIAL, d->lo = d->hi = 0;
    for (int r = 0; r < n; r++)
        for (int c = 0; c < n; c++) d->v[r * n + c] = c > r ? NAN : (float)(exp(-(r - c) / 8.0) + (c % 17 == 0));
}

static void make(Data *d, int which) {
    free(d->v);
    if (which == 0) make_attn(d);
    else if (which == 1) make_pe(d);
    else make_big(d);
}

int main(int argc, char **argv) {
    setlocale(LC_ALL, "");
    int which = 0, zoom = 2, force = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--mode")) {
            for (int m = 0; m < 4; m++)
                if (!strcmp(argv[i + 1], cmap_mode_name((ColorMode)m))) force = m;
        } else if (!strcmp(argv[i], "--data")) {
            which = !strcmp(argv[i + 1], "pe") ? 1 : !strcmp(argv[i + 1], "big") ? 2 : 0;
        } else if (!strcmp(argv[i], "--zoom")) {
            zoom = atoi(argv[i + 1]);
        }
    }
    initscr();
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    if (has_colors()) start_color();
    bool utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
    ColorMode mode = cmap_detect_mode(getenv("COLORTERM"), getenv("TERM"), has_colors() ? COLORS : 0, utf8);
    if (force >= 0) mode = (ColorMode)force;
    HmCurses *pc = hm_curses_new(1, 16);
    Data d = {0};
    make(&d, which);
    HeatmapView v = {mode, zoom, 0, 0, d.rows - 1, 0, 0};
    CellGrid g = {0};
    for (;;) {
        if (g.w != COLS || g.h != LINES) {
            cellgrid_done(&g);
            if (cellgrid_init(&g, COLS, LINES, mode)) break;
        }
        g.mode = v.mode;
        cellgrid_clear(&g);
        char title[160];
        snprintf(title, sizeof title, "heatmap demo: mode %s zoom %d%s  arrows move, +/- zoom, 0 fit, m mode, d data, q quit",
                 cmap_mode_name(v.mode), v.zoom, v.zoom ? "" : " (fit)");
        cellgrid_text(&g, 0, 0, g.w, title, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, CELL_BOLD);
        Heatmap hm = {d.v, d.rows, d.cols, d.rl, d.cl, d.scale, d.lo, d.hi};
        heatmap_render(&g, 0, 2, g.w, g.h - 2, &hm, &v);
        heatmap_draw_curses(stdscr, 0, 0, &g, pc);
        refresh();
        int ch = getch();
        if (ch == 'q' || ch == ERR) break;
        switch (ch) {
        case KEY_UP: case 'k': v.cur_row--; break;
        case KEY_DOWN: case 'j': v.cur_row++; break;
        case KEY_LEFT: case 'h': v.cur_col--; break;
        case KEY_RIGHT: case 'l': v.cur_col++; break;
        case '+': case '=': v.zoom = v.zoom ? v.zoom + 1 : 1; break;
        case '-': if (v.zoom > 1) v.zoom--; break;
        case '0': v.zoom = 0; break;
        case 'm': v.mode = (ColorMode)((v.mode + 3) % 4); break;
        case 'd': which = (which + 1) % 3, make(&d, which), v.cur_row = v.cur_col = 0; break;
        default: break;
        }
        if (v.cur_row < 0) v.cur_row = 0;
        if (v.cur_col < 0) v.cur_col = 0;
    }
    endwin();
    hm_curses_free(pc);
    cellgrid_done(&g);
    free(d.v);
    return 0;
}
