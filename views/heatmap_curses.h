// heatmap_curses.h - the thin curses backend of the views: paints a cell grid on a window
// with ncursesw, caching colour pairs (and palette entries for 24-bit colour).
#pragma once
#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1
#endif
#include <curses.h>

#include "cellgrid.h"

typedef struct HmCurses HmCurses;

// Colour state of one painter: colour pairs are taken from first_pair up; for 24-bit colour on
// a terminal that can redefine its palette (and has no direct-colour entry), palette entries
// from first_color up are redefined, so the rest of the UI should use colours below it.
// Call after start_color().
HmCurses *hm_curses_new(int first_pair, int first_color);

// Free the painter (pairs and palette entries stay as they are).
void hm_curses_free(HmCurses *p);

// Forget cached pairs and palette entries (after the UI re-initialised colours itself).
void hm_curses_reset(HmCurses *p);

// Paint g with its top-left corner at (y, x) of win, clipped to the window. Degrades 24-bit
// cells to palette redefinition or the nearest xterm colour, and 256-colour cells to 8 colours,
// as the terminal requires. Returns 0, or -1 when win or p is NULL.
int heatmap_draw_curses(WINDOW *win, int y, int x, const CellGrid *g, HmCurses *p);
