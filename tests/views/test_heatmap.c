// test_heatmap.c - the heatmap widget: golden screens in every colour mode (glyphs plus a colour
// key per cell, compared with tests/views/golden/*.txt; QKV_UPDATE_GOLDEN=1 rewrites them),
// scrolling that keeps the cursor visible, fitting, tiny areas, and the CSV and SVG exports.
#include <errno.h>
#include <math.h>

#include "../check.h"
#include "golden.h"
#include "heatmap.h"

// Compare the text form of g with golden file NAME.txt.
static void golden(const char *name, const CellGrid *g) {
    char file[256];
    snprintf(file, sizeof file, "%s", name);
    golden_check(file, g);
}

// Render hm in a fresh w x h grid and compare with golden file name.
static void screen(const char *name, const Heatmap *hm, ColorMode mode, int zoom, int w, int h, int cr, int cc,
                   unsigned flags) {
    CellGrid g;
    if (cellgrid_init(&g, w, h, mode)) {
        fprintf(stderr, "%s: cannot allocate grid\n", name);
        check_failures++;
        return;
    }
    HeatmapView v = {mode, zoom, 0, 0, cr, cc, flags};
    heatmap_render(&g, 0, 0, w, h, hm, &v);
    golden(name, &g);
    cellgrid_done(&g);
}

static const char *const toks5[] = {"The", " cat", " sat", "\n", "\u2026"};

// A 5x5 causal attention pattern: rows sum to 1, NAN above the diagonal.
static void causal5(float *m) {
    static const float w[5][5] = {{1}, {0.7f, 0.3f}, {0.5f, 0.2f, 0.3f}, {0.1f, 0.6f, 0.1f, 0.2f},
                                  {0.05f, 0.15f, 0.4f, 0.1f, 0.3f}};
    for (int r = 0; r < 5; r++)
        for (int c = 0; c < 5; c++) m[r * 5 + c] = c > r ? NAN : w[r][c];
}

static void causal_n(float *m, int n) {
    for (int r = 0; r < n; r++) {
        float s = 0;
        for (int c = 0; c <= r; c++) s += m[r * n + c] = 1.0f / (1 + r - c) + (c == 0 ? 1.0f : 0.0f);
        for (int c = 0; c < n; c++) m[r * n + c] = c > r ? NAN : m[r * n + c] / s;
    }
}

static void test_goldens(void) {
    float m5[25];
    causal5(m5);
    Heatmap hm = {m5, 5, 5, toks5, toks5, CMAP_SEQUENTIAL, 0, 1};
    static const ColorMode modes[] = {CMODE_TRUECOLOR, CMODE_C256, CMODE_C8, CMODE_ASCII};
    static const char *const names[] = {"causal5_truecolor_z2", "causal5_256_z2", "causal5_8_z2", "causal5_ascii_z2"};
    for (int i = 0; i < 4; i++) screen(names[i], &hm, modes[i], 2, 30, 16, 3, 1, 0);
    screen("causal5_truecolor_z1", &hm, CMODE_TRUECOLOR, 1, 30, 10, 3, 1, 0);
    screen("causal5_256_z1", &hm, CMODE_C256, 1, 30, 10, 4, 2, 0);
    screen("causal5_ascii_z1", &hm, CMODE_ASCII, 1, 30, 12, 4, 2, 0);
    screen("causal5_truecolor_z6", &hm, CMODE_TRUECOLOR, 6, 48, 20, 2, 2, 0);

    // diverging: a sinusoidal position encoding, 6 positions x 8 dimensions
    float pe[48];
    for (int p = 0; p < 6; p++)
        for (int i = 0; i < 8; i++) {
            double f = p / pow(10000.0, (i / 2 * 2) / 8.0);
            pe[p * 8 + i] = (float)(i % 2 ? cos(f) : sin(f));
        }
    static const char *const pos[] = {"0", "1", "2", "3", "4", "5"};
    Heatmap pm = {pe, 6, 8, pos, NULL, CMAP_DIVERGING, 0, 0};
    screen("pe_truecolor_z2", &pm, CMODE_TRUECOLOR, 2, 34, 8, 1, 0, 0);
    screen("pe_8_z2", &pm, CMODE_C8, 2, 34, 8, 1, 0, 0);
    screen("pe_ascii_z2", &pm, CMODE_ASCII, 2, 34, 8, 1, 0, 0);

    // larger than the screen: the view scrolls to the cursor
    float big[40 * 40];
    for (int r = 0; r < 40; r++)
        for (int c = 0; c < 40; c++) big[r * 40 + c] = (float)(sin(r * 0.3) * cos(c * 0.2));
    char lbl[40][8];
    const char *lp[40];
    for (int i = 0; i < 40; i++) snprintf(lbl[i], sizeof lbl[i], "t%d", i), lp[i] = lbl[i];
    Heatmap bm = {big, 40, 40, lp, lp, CMAP_SEQUENTIAL, 0, 0};
    screen("scroll_256_z2", &bm, CMODE_C256, 2, 36, 14, 35, 30, 0);

    // a model-view thumbnail: 64x64 reduced to fit 16x4, no labels or legend
    static float th[64 * 64];
    causal_n(th, 64);
    Heatmap tm = {th, 64, 64, NULL, NULL, CMAP_SEQUENTIAL, 0, 1};
    screen("thumb64_truecolor_fit", &tm, CMODE_TRUECOLOR, 0, 16, 4, -1, -1, HM_NO_LABELS | HM_NO_LEGEND);

    // wide and invisible characters in labels, vertical and horizontal column labels
    static const char *const odd[] = {"\xe7\x8c\xab", "\xf0\x9f\x98\x80", "a\tb", "\x01x"};
    float m4[16];
    for (int i = 0; i < 16; i++) m4[i] = (float)i / 15;
    Heatmap om = {m4, 4, 4, odd, odd, CMAP_SEQUENTIAL, 0, 1};
    screen("labels_truecolor_z2", &om, CMODE_TRUECOLOR, 2, 24, 10, 0, 1, 0);
    screen("labels_truecolor_z1", &om, CMODE_TRUECOLOR, 1, 24, 10, 0, 1, 0);
    screen("labels_truecolor_z5", &om, CMODE_TRUECOLOR, 5, 32, 14, 0, 1, 0);
    screen("labels_ascii_z2", &om, CMODE_ASCII, 2, 24, 10, 0, 1, 0);
}

static void test_scrolling(void) {
    static float big[100 * 70];
    for (int i = 0; i < 100 * 70; i++) big[i] = (float)(i % 13);
    Heatmap hm = {big, 100, 70, NULL, NULL, CMAP_SEQUENTIAL, 0, 0};
    CellGrid g;
    cellgrid_init(&g, 40, 15, CMODE_C256);
    HeatmapView v = {CMODE_C256, 2, 0, 0, 0, 0, 0};
    unsigned seed = 7;
    for (int step = 0; step < 300; step++) {
        seed = seed * 1103515245u + 12345u;
        v.cur_row += (int)((seed >> 16) % 21) - 10;
        v.cur_col += (int)((seed >> 8) % 15) - 7;
        if (step % 50 == 0) v.zoom = 1 + step / 50; // zooms 1..6
        heatmap_render(&g, 0, 0, 40, 15, &hm, &v);
        HeatmapLayout L;
        heatmap_layout(&L, &hm, &v, 40, 15);
        CHECK(v.cur_row >= 0 && v.cur_row < 100 && v.cur_col >= 0 && v.cur_col < 70);
        CHECK(v.cur_row >= L.top && v.cur_row < L.top + L.nrows);
        CHECK(v.cur_col >= L.left && v.cur_col < L.left + L.ncols);
        CHECK(L.top >= 0 && L.top + L.nrows <= 100 && L.left >= 0 && L.left + L.ncols <= 70);
        // the cell under the cursor's screen position is the cursor
        int tx = L.mx + (v.cur_col - L.left) * L.zoom;
        int ty = L.my + (L.half ? (v.cur_row - L.top) / 2 : (v.cur_row - L.top) * L.cell_h);
        int r, c;
        heatmap_cell_at(&L, tx, ty, &r, &c);
        CHECK_INT(c, v.cur_col);
        if (L.half) CHECK(r == v.cur_row || r + 1 == v.cur_row); // a terminal row holds two
        else CHECK_INT(r, v.cur_row);
        if (L.zoom >= 2) CHECK_STR(cellgrid_at(&g, tx, ty)->g, "[");
    }
    cellgrid_done(&g);
}

static void test_fit_and_tiny(void) {
    float m5[25];
    causal5(m5);
    Heatmap hm = {m5, 5, 5, toks5, toks5, CMAP_SEQUENTIAL, 0, 1};
    HeatmapView v = {CMODE_TRUECOLOR, 0, 3, 3, -1, -1, 0};
    HeatmapLayout L;
    heatmap_layout(&L, &hm, &v, 80, 24);
    CHECK_INT(L.zoom, 8);
    CHECK_INT(L.pool, 1);
    CHECK_INT(L.nrows, 5);
    CHECK_INT(L.ncols, 5);
    CHECK_INT(v.top, 0);
    static float th[64 * 64];
    causal_n(th, 64);
    Heatmap tm = {th, 64, 64, NULL, NULL, CMAP_SEQUENTIAL, 0, 1};
    HeatmapView tv = {CMODE_TRUECOLOR, 0, 0, 0, -1, -1, HM_NO_LEGEND};
    heatmap_layout(&L, &tm, &tv, 16, 4);
    CHECK_INT(L.pool, 8);
    CHECK_INT(L.nrows, 64);
    CHECK_INT(L.ncols, 64);
    tv.mode = CMODE_ASCII; // no half blocks: 4 rows of 16 matrix rows
    heatmap_layout(&L, &tm, &tv, 16, 4);
    CHECK_INT(L.pool, 16);

    // any area, however small, in any mode and zoom, draws without writing outside it
    CellGrid g;
    cellgrid_init(&g, 12, 8, CMODE_C8);
    for (int mode = 0; mode < 4; mode++)
        for (int z = 0; z <= HM_ZOOM_MAX; z += 3)
            for (int w = 0; w <= 6; w++)
                for (int h = 0; h <= 6; h++) {
                    cellgrid_clear(&g);
                    g.mode = (ColorMode)mode;
                    HeatmapView tv2 = {(ColorMode)mode, z, 0, 0, 4, 4, 0};
                    heatmap_render(&g, 3, 1, w, h, &hm, &tv2);
                    for (int y = 0; y < g.h; y++)
                        for (int x = 0; x < g.w; x++)
                            if (x < 3 || y < 1 || x >= 3 + w || y >= 1 + h) CHECK_STR(cellgrid_at(&g, x, y)->g, " ");
                }
    cellgrid_done(&g);
    // an all-masked matrix and an empty one
    float nan4[4] = {NAN, NAN, NAN, NAN};
    Heatmap nm = {nan4, 2, 2, NULL, NULL, CMAP_DIVERGING, 0, 0};
    float lo, hi;
    heatmap_range(&nm, &lo, &hi);
    CHECK_NEAR(lo, -1, 0);
    CHECK_NEAR(hi, 1, 0);
    cellgrid_init(&g, 10, 5, CMODE_TRUECOLOR);
    HeatmapView nv = {CMODE_TRUECOLOR, 2, 0, 0, 0, 0, 0};
    heatmap_render(&g, 0, 0, 10, 5, &nm, &nv);
    Heatmap em = {nan4, 0, 0, NULL, NULL, CMAP_SEQUENTIAL, 0, 0};
    heatmap_render(&g, 0, 0, 10, 5, &em, &nv);
    cellgrid_done(&g);
}

// The glyphs of row y of g as one string (the right halves of wide glyphs add nothing).
static void row_text(const CellGrid *g, int y, Buf *out) {
    buf_clear(out);
    for (int x = 0; x < g->w; x++) buf_puts(out, g->cells[(size_t)y * g->w + x].g);
}

// The readout of the value under the cursor is never cut: at every width down to what the number
// needs, in every mode and with long labels, the legend row shows the whole number; the labels
// go short, then the colour bar, to make room.
static void test_readout_narrow(void) {
    // 8 queries x 3 keys: the cursor (7,2) holds 1.862e-05, the smallest value 1.02e-07
    static const char *const rows[] = {"<|im_start|>", "Mr", " Dursley", " saw", " Mr", " D", "urs", "urs"};
    static const char *const cols[] = {"<|im_start|>assistant", " Dursley", "urs"};
    float m[24];
    for (int i = 0; i < 24; i++) m[i] = (float)(i + 1) / 24;
    m[0] = 1.02e-07f, m[7 * 3 + 2] = 1.862e-05f, m[7 * 3 + 1] = NAN;
    static const ColorMode modes[] = {CMODE_TRUECOLOR, CMODE_C256, CMODE_C8, CMODE_ASCII};
    static const struct { CmapScale scale; int r, c; const char *want; } cases[] = {
        {CMAP_SEQUENTIAL, 7, 2, "= 1.862e-05"},
        {CMAP_SEQUENTIAL, 7, 1, "masked"},
        {CMAP_DIVERGING, 4, 0, "= -0.08555"}, // m[12] is set to it below
    };
    Buf row = {0};
    for (int k = 0; k < 3; k++) {
        float mk[24];
        memcpy(mk, m, sizeof mk);
        if (cases[k].scale == CMAP_DIVERGING) mk[12] = -0.08555f;
        Heatmap hm = {mk, 8, 3, rows, cols, cases[k].scale, 0, 0};
        const char *num = cases[k].want[0] == '=' ? cases[k].want + 2 : cases[k].want;
        for (int mode = 0; mode < 4; mode++)
            for (int w = 80; w >= 6; w--) {
                CellGrid g;
                cellgrid_init(&g, w, 12, modes[mode]);
                HeatmapView v = {modes[mode], 0, 0, 0, cases[k].r, cases[k].c, 0};
                heatmap_render(&g, 0, 0, w, 12, &hm, &v);
                row_text(&g, 11, &row);
                // the readout "(r,c) ... = value" while it fits, then the value alone; never a cut number
                bool whole = strstr(row.data, num) != NULL;
                int need = 6 + (int)strlen(cases[k].want); // "(7,2) = 1.862e-05"
                if (w >= need && !strstr(row.data, cases[k].want)) {
                    fprintf(stderr, "width %d mode %d: readout cut: |%s| (want %s)\n", w, mode, row.data, num);
                    CHECK(0);
                } else if ((int)strlen(num) <= w && !whole) {
                    fprintf(stderr, "width %d mode %d: value missing: |%s| (want %s)\n", w, mode, row.data, num);
                    CHECK(whole);
                }
                // a prefix of the number at the row's end is a cut readout
                const char *end = row.data + row.len;
                while (end > row.data && end[-1] == ' ') end--;
                for (size_t n = 2; !whole && n < strlen(num); n++)
                    if ((size_t)(end - row.data) >= n && !memcmp(end - n, num, n)) {
                        fprintf(stderr, "width %d mode %d: cut number at the end: |%s|\n", w, mode, row.data);
                        CHECK(0);
                    }
                // with room, the labels of the cell are in it
                if (w >= 70 && k == 0) CHECK(strstr(row.data, mode == 3 ? "urs x urs = " : "urs \u00D7 urs = ") != NULL);
                cellgrid_done(&g);
            }
    }
    buf_free(&row);
    // the screen at the TUI's smallest width
    Heatmap hm = {m, 8, 3, rows, cols, CMAP_SEQUENTIAL, 0, 0};
    screen("readout_256_w50", &hm, CMODE_C256, 0, 50, 12, 7, 2, 0);
    screen("readout_ascii_w30", &hm, CMODE_ASCII, 0, 30, 12, 7, 2, 0);
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p++) n++;
    return n;
}

static void test_export(void) {
    float m[6] = {0.5f, NAN, 1, -0.25f, 0, 1e-7f};
    static const char *const rows[] = {"<s>", "say \"hi\""};
    static const char *const cols[] = {" a", "b,c", "\n"};
    Heatmap hm = {m, 2, 3, rows, cols, CMAP_SEQUENTIAL, 0, 0};
    Buf b = {0};
    Err e = {0};
    CHECK_INT(heatmap_to_csv(&b, &hm, NULL, &e), 0);
    CHECK_STR(b.data, "\"\",\" a\",\"b,c\",\"\n\"\r\n\"<s>\",0.5,,1\r\n\"say \"\"hi\"\"\",-0.25,0,1.00000001e-07\r\n");
    buf_clear(&b);
    HmRegion reg = {1, 2, 0, 2};
    CHECK_INT(heatmap_to_csv(&b, &hm, &reg, &e), 0);
    CHECK_STR(b.data, "\"\",\" a\",\"b,c\"\r\n\"say \"\"hi\"\"\",-0.25,0\r\n");
    buf_clear(&b);
    Heatmap nl = {m, 2, 3, NULL, NULL, CMAP_SEQUENTIAL, 0, 0};
    CHECK_INT(heatmap_to_csv(&b, &nl, NULL, &e), 0);
    CHECK_STR(b.data, "\"\",0,1,2\r\n0,0.5,,1\r\n1,-0.25,0,1.00000001e-07\r\n");
    buf_clear(&b);
    HmRegion bad = {0, 3, 0, 1};
    CHECK_INT(heatmap_to_csv(&b, &hm, &bad, &e), -1);
    CHECK(strstr(e.msg, "region") != NULL);

    CHECK_INT(heatmap_to_svg(&b, &hm, NULL, NULL, &e), 0);
    CHECK(!strncmp(b.data, "<?xml", 5));
    CHECK(strstr(b.data, "</svg>") != NULL);
    CHECK_INT(count(b.data, "<rect "), 1 + 5 + 64); // background, unmasked cells, legend
    CHECK(strstr(b.data, "&lt;s&gt;") != NULL);
    CHECK(strstr(b.data, "say&#160;") == NULL);
    CHECK(strstr(b.data, "\u00B7a") != NULL); // labels as the widget shows them
    CHECK(strstr(b.data, "\u21B5") != NULL);
    char fill[32];
    Rgb lo = cmap_rgb(CMAP_SEQUENTIAL, 0), hi = cmap_rgb(CMAP_SEQUENTIAL, 1);
    snprintf(fill, sizeof fill, "fill=\"#%02x%02x%02x\"", lo.r, lo.g, lo.b); // the -0.25 cell
    CHECK(strstr(b.data, fill) != NULL);
    snprintf(fill, sizeof fill, "fill=\"#%02x%02x%02x\"", hi.r, hi.g, hi.b); // the 1
    CHECK_INT(count(b.data, fill), 1);
    CHECK(strstr(b.data, ">-0.25<") != NULL);
    CHECK(strstr(b.data, ">1<") != NULL);
    buf_clear(&b);
    Heatmap dm = {m, 2, 3, rows, cols, CMAP_DIVERGING, 0, 0};
    CHECK_INT(heatmap_to_svg(&b, &dm, NULL, "gpt2: layer 0 head 1 <causal>", &e), 0);
    CHECK(strstr(b.data, ">gpt2: layer 0 head 1 &lt;causal&gt;</text>") != NULL); // the figure says what it is
    CHECK(strstr(b.data, ">-1<") != NULL);
    CHECK(strstr(b.data, ">+1<") != NULL);
    CHECK(strstr(b.data, ">0</text>") != NULL);
    buf_free(&b);
}

// A matrix of one value (the attention of a one-token prompt: 1): the scale runs from 0 to it, and
// the legend says so (it read 0.5 ... 1.5, a range around the value that no cell had).
static void test_one_value(void) {
    static const struct {
        float v, lo, hi;
    } cases[] = {{1, 0, 1}, {0, 0, 1}, {-3, -3, 0}, {0.25f, 0, 0.25f}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        float m[4] = {cases[i].v, NAN, cases[i].v, cases[i].v}, lo, hi;
        Heatmap hm = {m, 2, 2, NULL, NULL, CMAP_SEQUENTIAL, 0, 0};
        heatmap_range(&hm, &lo, &hi);
        CHECK_NEAR(lo, cases[i].lo, 0);
        CHECK_NEAR(hi, cases[i].hi, 0);
    }
    float one = 1;
    static const char *const tok[] = {"x"};
    Heatmap hm = {&one, 1, 1, tok, tok, CMAP_SEQUENTIAL, 0, 0};
    CellGrid g;
    cellgrid_init(&g, 40, 8, CMODE_ASCII);
    HeatmapView v = {CMODE_ASCII, 0, 0, 0, 0, 0, 0};
    heatmap_render(&g, 0, 0, 40, 8, &hm, &v);
    Buf row = {0};
    bool legend = false;
    for (int y = 0; y < g.h; y++) {
        row_text(&g, y, &row);
        if (!strstr(row.data, "(0,0)")) continue; // the legend's row, with the readout
        legend = true;
        if (strncmp(row.data, "0 ", 2) || strstr(row.data, " 1 ") == NULL || strstr(row.data, "0.5") ||
            strstr(row.data, "1.5")) {
            fprintf(stderr, "the legend of a map of one 1 reads '%s', expected 0 ... 1\n", row.data);
            check_failures++;
        }
    }
    CHECK(legend);
    buf_free(&row);
    cellgrid_done(&g);
}

// A narrow range (the entropies of a model's heads, 2.849-2.851): the legend's ends differ, in
// the view and the SVG export (both read "2.85 ... 2.85" under a full colour ramp).
static void test_narrow_range(void) {
    float m[4] = {2.849f, 2.8495f, 2.8505f, 2.851f};
    Heatmap hm = {m, 2, 2, NULL, NULL, CMAP_SEQUENTIAL, 0, 0};
    CellGrid g;
    cellgrid_init(&g, 60, 8, CMODE_ASCII);
    HeatmapView v = {CMODE_ASCII, 0, 0, 0, -1, -1, 0};
    heatmap_render(&g, 0, 0, 60, 8, &hm, &v);
    Buf row = {0};
    bool legend = false;
    for (int y = 0; y < g.h; y++) {
        row_text(&g, y, &row);
        if (strncmp(row.data, "2.849 ", 6)) continue;
        legend = true;
        if (!strstr(row.data, " 2.851")) {
            fprintf(stderr, "the legend of 2.849-2.851 reads '%s'\n", row.data);
            check_failures++;
        }
    }
    CHECK(legend);
    Buf b = {0};
    CHECK(heatmap_to_svg(&b, &hm, NULL, "narrow", NULL) == 0);
    CHECK(strstr(b.data, ">2.849<") != NULL && strstr(b.data, ">2.851<") != NULL);
    // a range 3 digits tell apart keeps 3
    float w[2] = {0.1f, 0.9f};
    Heatmap hw = {w, 1, 2, NULL, NULL, CMAP_SEQUENTIAL, 0, 0};
    buf_clear(&b);
    CHECK(heatmap_to_svg(&b, &hw, NULL, "wide", NULL) == 0);
    CHECK(strstr(b.data, ">0.1<") != NULL && strstr(b.data, ">0.9<") != NULL);
    buf_free(&b);
    buf_free(&row);
    cellgrid_done(&g);
}

int main(void) {
    test_goldens();
    test_narrow_range();
    test_one_value();
    test_scrolling();
    test_fit_and_tiny();
    test_readout_narrow();
    test_export();
    return CHECK_DONE();
}
