// cellgrid.h - a rectangle of terminal cells (glyph, colours, attributes): what the views'
// pure drawing code produces and a backend (curses, the golden tests) shows.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "colormap.h"
#include "label.h"

enum { CELL_BOLD = 1, CELL_DIM = 2, CELL_REVERSE = 4, CELL_UNDERLINE = 8 };   // Cell.attr
enum { CELL_FG_DEFAULT = 1, CELL_BG_DEFAULT = 2, CELL_CONT = 4 };             // Cell.flags

// One terminal cell. Colours: rgb is the colour meant (in 256/8-colour modes the palette's
// own value); fgi/bgi the palette index to paint it with: the xterm index (C256, and the
// nearest one as a fallback in TRUECOLOR) or the ANSI colour 0..7 (C8). CELL_FG_DEFAULT /
// CELL_BG_DEFAULT mean the terminal's own colour. CELL_CONT marks the right half of a wide glyph.
typedef struct Cell {
    char g[LABEL_GLYPH_MAX]; // UTF-8 glyph cluster; "" in a CELL_CONT cell
    Rgb fg, bg;
    uint8_t fgi, bgi;
    uint8_t flags, attr;
} Cell;

typedef struct CellGrid {
    int w, h;
    ColorMode mode; // how the colours of the cells were chosen
    Cell *cells;    // [h, w] row-major
} CellGrid;

// A colour as the drawing code hands it to cells: the terminal default, or rgb + palette index.
typedef struct CellColor {
    Rgb rgb;
    uint8_t idx;
    bool deflt;
} CellColor;

#define CELLCOLOR_DEFAULT ((CellColor){{0, 0, 0}, 0, true})

// Allocate a w x h grid of blank cells for mode; returns 0, or -1 for a bad size.
int cellgrid_init(CellGrid *g, int w, int h, ColorMode mode);

// Free the cells.
void cellgrid_done(CellGrid *g);

// Blank every cell (space, default colours, no attributes).
void cellgrid_clear(CellGrid *g);

// Blank the cells of a rectangle (clipped to the grid).
void cellgrid_clear_rect(CellGrid *g, int x, int y, int w, int h);

// The cell at (x, y), or NULL outside the grid.
Cell *cellgrid_at(CellGrid *g, int x, int y);

// The colour of palette index idx for mode (C256: xterm index; C8: ANSI 0..7).
CellColor cellcolor_index(ColorMode mode, int idx);

// The colour rgb for mode: itself in TRUECOLOR, the nearest xterm colour in C256.
CellColor cellcolor_rgb(ColorMode mode, Rgb rgb);

// Put glyph cluster glyph of width 1 or 2 at (x, y) with colours and attributes; a wide glyph
// that does not fit before the right edge becomes a space. Repairs wide glyphs it overwrites.
void cellgrid_put(CellGrid *g, int x, int y, const char *glyph, int width, CellColor fg,
                  CellColor bg, int attr);

// Write visible text (see label_visible) at (x, y) in at most maxw columns; returns the
// columns written.
int cellgrid_text(CellGrid *g, int x, int y, int maxw, const char *text, CellColor fg,
                  CellColor bg, int attr);

// Append the text form of g used by the golden tests: the glyph rows between '|', then one
// colour key per cell, then what each key means ('.' is default colours, no attributes).
void cellgrid_dump(const CellGrid *g, Buf *out);
