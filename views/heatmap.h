// heatmap.h - the heatmap widget: a matrix with token labels drawn into a cell grid (colour
// scale, half blocks, cursor, scrolling, zoom, legend), and exported as SVG or CSV.
// Everything here is pure; heatmap_curses.h paints a cell grid on a curses window.
#pragma once
#include <stdbool.h>

#include "base/buf.h"
#include "cellgrid.h"
#include "colormap.h"
#include "base/err.h"

#define HM_ZOOM_MAX 16 // widest cell, in columns

// The data: borrowed, never copied.
typedef struct Heatmap {
    const float *v;                // [rows, cols] row-major; rows = queries, cols = keys; NAN = masked
    int rows, cols;
    const char *const *row_labels; // rows NUL-terminated token strings, or NULL
    const char *const *col_labels; // cols strings, or NULL
    CmapScale scale;
    float lo, hi;                  // value range; lo == hi: take it from the data
} Heatmap;

enum {
    HM_NO_LABELS = 1,  // no row or column labels
    HM_NO_LEGEND = 2,  // no legend / readout line
    HM_NO_VALUES = 4,  // no numbers inside wide cells
    HM_POOL_MAX = 8,   // when reduced to fit, a cell shows the maximum of its block, not the mean
    HM_NO_READOUT = 16 // legend without the cursor readout
};

// What the person controls: mode, zoom, scroll position, cursor.
typedef struct HeatmapView {
    ColorMode mode;
    int zoom;             // cell width in columns, 1..HM_ZOOM_MAX; 0 = fit the matrix to the area
    int top, left;        // first matrix row and column shown (kept valid by heatmap_layout)
    int cur_row, cur_col; // cursor cell (clamped to the matrix); both -1 for no cursor
    unsigned flags;       // HM_*
} HeatmapView;

// Where things go inside a w x h area (coordinates relative to its top-left corner).
typedef struct HeatmapLayout {
    int w, h;
    int label_w;          // columns of row labels (0: none); a gap column follows
    int rlabel_w;         // half blocks with row labels: the lower row's label of each terminal row,
                          // after a gap column right of the matrix, in this many columns (0: none)
    int head_h;           // rows of column labels (0: none)
    bool col_vertical;    // column labels written top to bottom, one character per row
    int mx, my, mw, mh;   // the matrix area
    int zoom;             // columns per matrix cell (>= 1)
    int cell_h;           // terminal rows per matrix cell (1 in half-block mode)
    bool half;            // half blocks: each terminal row shows two matrix rows
    int pool;             // matrix rows and columns per drawn cell when reduced to fit (1: none)
    int top, left;        // first visible matrix row and column
    int nrows, ncols;     // visible matrix rows and columns
    int legend_y;         // row of the legend, or -1
    float lo, hi;         // value range in use
} HeatmapLayout;

// A block of matrix rows [r0, r1) and columns [c0, c1).
typedef struct HmRegion {
    int r0, r1, c0, c1;
} HmRegion;

// The value range drawn: hm's lo/hi, or when equal the finite min and max of the data (one value
// v: 0..v or v..0, all 0: 0..1; diverging: -m..m with m the largest magnitude); 0..1 when nothing
// is finite.
void heatmap_range(const Heatmap *hm, float *lo, float *hi);

// Compute the layout of hm in a w x h area; moves v->top/left so that the cursor is visible
// and clamps the cursor to the matrix.
void heatmap_layout(HeatmapLayout *L, const Heatmap *hm, HeatmapView *v, int w, int h);

// A view that asks to fit (v->zoom 0) a matrix that fits a w x h area only reduced (blocks of
// cells drawn as one) or without its row labels gets zoom 1 with the labels instead, scrolled to
// the cursor (a 30 x 9 map on 8 rows was 5 columns of unlabelled blocks, no cursor); reduce: keep
// the reduced overview (a key asked for it).
void heatmap_fit_or_scroll(HeatmapView *v, const Heatmap *hm, int w, int h, bool reduce);

// Draw hm into the w x h rectangle of g at (x, y) as heatmap_layout places it (scrolling v).
// Colours are chosen for v->mode; g->mode should be the same.
void heatmap_render(CellGrid *g, int x, int y, int w, int h, const Heatmap *hm, HeatmapView *v);

// The matrix cell under area position (tx, ty), or -1 in *r / *c when there is none.
void heatmap_cell_at(const HeatmapLayout *L, int tx, int ty, int *r, int *c);

// The block of the matrix the layout shows.
HmRegion heatmap_visible(const HeatmapLayout *L);

// Append hm (region reg, or all when NULL) as CSV: a header of column labels, then one line per
// row: its label and the values (%.9g; empty when masked). Returns 0, or -1 with e for a bad region.
int heatmap_to_csv(Buf *out, const Heatmap *hm, const HmRegion *reg, Err *e);

// Append hm (region reg, or all when NULL) as a standalone SVG: the title (NULL: none) above,
// one rect per unmasked cell in the exact scale colour, visible token labels, a legend with the
// range. Returns 0 or -1 with e.
int heatmap_to_svg(Buf *out, const Heatmap *hm, const HmRegion *reg, const char *title, Err *e);
// A grid of maps as one SVG: hm is the first (its shape, labels and scale serve all), the
// others follow it in hm->v, row by row of the grid (grid_rows x grid_cols maps); row_names and
// col_names (or NULL) name the grid's rows and columns, every map shares one colour range and
// legend, each cell's tooltip names its map, position and value. Returns 0 or -1 with e.
int heatmap_grid_to_svg(Buf *out, const Heatmap *hm, int grid_rows, int grid_cols, const char *const *row_names,
                        const char *const *col_names, const char *title, Err *e);
// n maps of hm's shape (hm->v the first, the others after it) as one long CSV table: key_a,
// key_b (the maps' two keys, a[k] and b[k] for map k: layer and head), query, key,
// query_token, key_token (hm's labels), weight (%.9g); masked entries are left out. Returns 0.
int heatmap_maps_to_csv(Buf *out, const Heatmap *hm, int n, const char *key_a, const char *key_b, const int *a,
                        const int *b);
// Open a w x h SVG document on a white background with the figures' text style (a <g> the
// caller closes with </g></svg>).
void svg_begin(Buf *out, int w, int h);
