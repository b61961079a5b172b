// heatmap_curses.c - paint a cell grid with ncursesw. All drawing decisions were made by the
// pure code; this file only turns cell colours into curses colour numbers and pairs.
#include "heatmap_curses.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "base/mem.h"
#include "base/utf8.h"

#define PAIR_TABLE (1u << 16) // slots of the (fg, bg) -> pair hash table
#define RGB_TABLE 1024u       // slots of the per-frame colour -> palette entry table

struct HmCurses {
    int first_pair, next_pair, max_pair;
    bool colours, direct, palette;
    int ncolors;
    uint64_t *pair_key; // (fg + 1) << 32 | (bg + 1); 0 = empty
    int *pair_val;
    // palette redefinition for 24-bit colour
    int first_color, nslots;
    uint32_t *slot_rgb; // per palette entry: rgb + 1, 0 = unused
    uint8_t *slot_kept;
    uint32_t rgb_key[RGB_TABLE]; // this frame's colours (rgb + 1) -> entry
    int rgb_val[RGB_TABLE];
    int shift;                   // bits dropped per channel to fit the palette this frame
    uint8_t to8[256];            // xterm index -> ANSI colour, for 8-colour terminals
};

static uint32_t pack(Rgb c) { return (uint32_t)c.r << 16 | (uint32_t)c.g << 8 | c.b; }

void hm_curses_reset(HmCurses *p) {
    memset(p->pair_key, 0, PAIR_TABLE * sizeof *p->pair_key);
    p->next_pair = p->first_pair;
    if (p->slot_rgb) memset(p->slot_rgb, 0, (size_t)p->nslots * sizeof *p->slot_rgb);
}

HmCurses *hm_curses_new(int first_pair, int first_color) {
    HmCurses *p = xcalloc(1, sizeof *p);
    p->pair_key = xcalloc(PAIR_TABLE, sizeof *p->pair_key);
    p->pair_val = xcalloc(PAIR_TABLE, sizeof *p->pair_val);
    p->colours = has_colors() && COLORS >= 8 && COLOR_PAIRS > first_pair + 1;
    if (p->colours) use_default_colors();
    p->ncolors = COLORS;
    p->first_pair = first_pair < 1 ? 1 : first_pair;
    p->next_pair = p->first_pair;
    p->max_pair = COLOR_PAIRS - 1;
    if (p->max_pair - p->first_pair > (int)PAIR_TABLE / 2) p->max_pair = p->first_pair + PAIR_TABLE / 2;
    p->direct = p->colours && COLORS >= 0x1000000;
    p->first_color = first_color < 16 ? 16 : first_color;
    if (p->colours && !p->direct && can_change_color() && COLORS >= 256 && COLORS > p->first_color + 16) {
        p->palette = true;
        p->nslots = COLORS - p->first_color;
        if (p->nslots > (int)RGB_TABLE / 2) p->nslots = RGB_TABLE / 2;
        p->slot_rgb = xcalloc((size_t)p->nslots, sizeof *p->slot_rgb);
        p->slot_kept = xcalloc((size_t)p->nslots, 1);
    }
    for (int i = 0; i < 256; i++) p->to8[i] = cellcolor_rgb(CMODE_C8, cmap_xterm_rgb(i)).idx;
    return p;
}

void hm_curses_free(HmCurses *p) {
    if (!p) return;
    free(p->pair_key);
    free(p->pair_val);
    free(p->slot_rgb);
    free(p->slot_kept);
    free(p);
}

// The pair for colour numbers fg, bg (-1: the terminal default).
static int pair_for(HmCurses *p, int fg, int bg) {
    if (fg < 0 && bg < 0) return 0;
    uint64_t key = (uint64_t)(uint32_t)(fg + 1) << 32 | (uint32_t)(bg + 1);
    uint32_t h = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 48) & (PAIR_TABLE - 1);
    while (p->pair_key[h]) {
        if (p->pair_key[h] == key) return p->pair_val[h];
        h = (h + 1) & (PAIR_TABLE - 1);
    }
    if (p->next_pair > p->max_pair) { // all used: start over (cells drawn earlier may change)
        memset(p->pair_key, 0, PAIR_TABLE * sizeof *p->pair_key);
        p->next_pair = p->first_pair;
        h = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 48) & (PAIR_TABLE - 1);
    }
    int pair = p->next_pair++;
    init_extended_pair(pair, fg, bg);
    p->pair_key[h] = key, p->pair_val[h] = pair;
    return pair;
}

static uint32_t quantise(uint32_t rgb, int shift) {
    if (!shift) return rgb;
    uint32_t out = 0;
    for (int k = 0; k < 3; k++) {
        uint32_t c = (rgb >> (8 * k)) & 0xFF;
        c = ((c >> shift) << shift) | (1u << (shift - 1));
        out |= c << (8 * k);
    }
    return out;
}

// Slot of colour key (rgb + 1) in the frame table, inserting it (value -1) when insert.
static int rgb_slot(HmCurses *p, uint32_t key, bool insert, int *count) {
    uint32_t h = (key * 2654435761u >> 20) & (RGB_TABLE - 1);
    while (p->rgb_key[h]) {
        if (p->rgb_key[h] == key) return (int)h;
        h = (h + 1) & (RGB_TABLE - 1);
    }
    if (!insert) return -1;
    p->rgb_key[h] = key, p->rgb_val[h] = -1;
    (*count)++;
    return (int)h;
}

// Choose palette entries for the 24-bit colours of g, dropping low bits until they fit.
static void palette_prepare(HmCurses *p, const CellGrid *g) {
    size_t n = (size_t)g->w * g->h;
    for (p->shift = 0; p->shift <= 5; p->shift++) {
        memset(p->rgb_key, 0, sizeof p->rgb_key);
        int count = 0;
        for (size_t i = 0; i < n && count <= p->nslots; i++) {
            const Cell *c = &g->cells[i];
            if (!(c->flags & CELL_FG_DEFAULT)) rgb_slot(p, quantise(pack(c->fg), p->shift) + 1, true, &count);
            if (!(c->flags & CELL_BG_DEFAULT)) rgb_slot(p, quantise(pack(c->bg), p->shift) + 1, true, &count);
        }
        if (count <= p->nslots) break;
    }
    if (p->shift > 5) p->shift = 5; // still too many: the rest fall back to xterm colours
    memset(p->slot_kept, 0, (size_t)p->nslots);
    int dummy = 0;
    for (int s = 0; s < p->nslots; s++) {
        int h = p->slot_rgb[s] ? rgb_slot(p, p->slot_rgb[s], false, &dummy) : -1;
        if (h >= 0 && p->rgb_val[h] < 0) p->rgb_val[h] = s, p->slot_kept[s] = 1;
    }
    int free_s = 0;
    for (uint32_t h = 0; h < RGB_TABLE; h++) {
        if (!p->rgb_key[h] || p->rgb_val[h] >= 0) continue;
        while (free_s < p->nslots && p->slot_kept[free_s]) free_s++;
        if (free_s >= p->nslots) break; // cannot happen: the colours fit
        uint32_t rgb = p->rgb_key[h] - 1;
        p->slot_rgb[free_s] = p->rgb_key[h], p->slot_kept[free_s] = 1, p->rgb_val[h] = free_s;
        init_extended_color(p->first_color + free_s, (int)((rgb >> 16) * 1000 / 255),
                            (int)(((rgb >> 8) & 0xFF) * 1000 / 255), (int)((rgb & 0xFF) * 1000 / 255));
    }
}

// Colour number for one side of a cell.
static int colour_of(HmCurses *p, ColorMode mode, Rgb rgb, uint8_t idx, bool deflt) {
    if (deflt || mode == CMODE_ASCII) return -1;
    if (mode == CMODE_TRUECOLOR) {
        if (p->direct) return (int)pack(rgb);
        if (p->palette) {
            int dummy = 0, h = rgb_slot(p, quantise(pack(rgb), p->shift) + 1, false, &dummy);
            if (h >= 0 && p->rgb_val[h] >= 0) return p->first_color + p->rgb_val[h];
        }
    }
    if (mode == CMODE_C8) return idx & 7;
    return p->ncolors >= 256 ? idx : p->to8[idx];
}

int heatmap_draw_curses(WINDOW *win, int y, int x, const CellGrid *g, HmCurses *p) {
    if (!win || !p) return -1;
    int maxy = getmaxy(win), maxx = getmaxx(win);
    bool colours = p->colours && g->mode != CMODE_ASCII;
    if (colours && g->mode == CMODE_TRUECOLOR && p->palette) palette_prepare(p, g);
    for (int j = 0; j < g->h; j++) {
        int Y = y + j;
        if (Y < 0 || Y >= maxy) continue;
        for (int i = 0; i < g->w; i++) {
            int X = x + i;
            const Cell *c = &g->cells[(size_t)j * g->w + i];
            if (X < 0 || X >= maxx || c->flags & CELL_CONT) continue;
            wchar_t wch[CCHARW_MAX + 1];
            int k = 0;
            for (size_t b = 0, n = strlen(c->g); b < n && k < CCHARW_MAX;) {
                uint32_t cp;
                b += (size_t)utf8_decode(c->g + b, n - b, &cp);
                wch[k++] = (wchar_t)cp;
            }
            if (!k) wch[k++] = L' ';
            wch[k] = 0;
            attr_t a = A_NORMAL;
            if (c->attr & CELL_BOLD) a |= A_BOLD;
            if (c->attr & CELL_DIM) a |= A_DIM;
            if (c->attr & CELL_REVERSE) a |= A_REVERSE;
            if (c->attr & CELL_UNDERLINE) a |= A_UNDERLINE;
            int pair = 0;
            if (colours)
                pair = pair_for(p, colour_of(p, g->mode, c->fg, c->fgi, c->flags & CELL_FG_DEFAULT),
                                colour_of(p, g->mode, c->bg, c->bgi, c->flags & CELL_BG_DEFAULT));
            cchar_t cc;
            setcchar(&cc, wch, a, 0, &pair);
            mvwadd_wch(win, Y, X, &cc);
        }
    }
    return 0;
}
