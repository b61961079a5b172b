// heatmap_bench.c - cost of the attention model view: a 12 x 12 grid of 64 x 64 thumbnails drawn
// into a 200 x 60 cell grid, per colour mode; then the same painted by curses into /dev/null.
// Prints milliseconds per frame. Built, not run as a test (speed is never asserted in tests).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heatmap.h"
#include "heatmap_curses.h"

enum { L = 12, H = 12, T = 64, W = 200, HT = 60, FRAMES = 200 };

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// Causal softmax rows of pseudo-random scores for every layer and head: [2][L*H][T*T].
static float *make_data(void) {
    float *d = malloc(sizeof(float) * 2 * L * H * T * T);
    unsigned s = 1;
    for (int k = 0; k < 2 * L * H; k++) {
        float *m = d + (size_t)k * T * T;
        for (int r = 0; r < T; r++) {
            float sum = 0;
            for (int c = 0; c <= r; c++) {
                s = s * 1664525u + 1013904223u;
                float x = expf(3.0f * (float)(s >> 8) / (1u << 24));
                m[r * T + c] = x, sum += x;
            }
            for (int c = 0; c < T; c++) m[r * T + c] = c > r ? NAN : m[r * T + c] / sum;
        }
    }
    return d;
}

// One model-view frame: a title and a thumbnail per head.
static void frame(CellGrid *g, const float *data, ColorMode mode) {
    int cw = W / H, ch = HT / L;
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            char t[16];
            snprintf(t, sizeof t, "L%dH%d", l, h);
            cellgrid_clear_rect(g, h * cw, l * ch, cw, 1);
            cellgrid_text(g, h * cw, l * ch, cw - 1, t, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, CELL_DIM);
            Heatmap hm = {data + (size_t)(l * H + h) * T * T, T, T, NULL, NULL, CMAP_SEQUENTIAL, 0, 1};
            HeatmapView v = {mode, 0, 0, 0, -1, -1, HM_NO_LABELS | HM_NO_LEGEND};
            heatmap_render(g, h * cw, l * ch + 1, cw - 1, ch - 1, &hm, &v);
        }
}

int main(void) {
    float *data = make_data();
    CellGrid g;
    if (cellgrid_init(&g, W, HT, CMODE_TRUECOLOR)) return 1;
    printf("model view: %d layers x %d heads of %dx%d into %dx%d cells\n", L, H, T, T, W, HT);
    for (int mode = CMODE_TRUECOLOR; mode >= CMODE_ASCII; mode--) {
        g.mode = (ColorMode)mode;
        frame(&g, data, (ColorMode)mode); // warm the tables
        double t0 = now_ms();
        for (int f = 0; f < FRAMES; f++) frame(&g, data + (size_t)(f % 2) * L * H * T * T, (ColorMode)mode);
        printf("  render %-9s %.3f ms/frame\n", cmap_mode_name((ColorMode)mode), (now_ms() - t0) / FRAMES);
    }

    // render and paint with curses (every cell changes between frames), output to /dev/null
    FILE *out = fopen("/dev/null", "w"), *in = fopen("/dev/null", "r");
    setenv("LINES", "60", 1);
    setenv("COLUMNS", "200", 1);
    const char *terms[] = {"xterm-256color", "xterm"};
    for (int k = 0; k < 2 && out && in; k++) {
        SCREEN *scr = newterm(terms[k], out, in);
        if (!scr) {
            printf("  (no terminfo entry for %s: curses timing skipped)\n", terms[k]);
            continue;
        }
        start_color();
        HmCurses *pc = hm_curses_new(1, 16);
        ColorMode mode = COLORS >= 256 ? CMODE_C256 : CMODE_C8;
        g.mode = mode;
        double t0 = now_ms();
        for (int f = 0; f < FRAMES; f++) {
            frame(&g, data + (size_t)(f % 2) * L * H * T * T, mode);
            heatmap_draw_curses(stdscr, 0, 0, &g, pc);
            wnoutrefresh(stdscr);
            doupdate();
        }
        printf("  render+curses %s (%s) %.3f ms/frame\n", terms[k], cmap_mode_name(mode), (now_ms() - t0) / FRAMES);
        hm_curses_free(pc);
        endwin();
        delscreen(scr);
    }
    if (out) fclose(out);
    if (in) fclose(in);
    cellgrid_done(&g);
    free(data);
    return 0;
}
