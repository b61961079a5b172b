// colormap.h - colour scales for heatmaps and what a terminal can show of them: 24-bit RGB,
// the nearest xterm-256 colour, an 8-colour shade level, an ASCII ramp; terminal mode detection.
#pragma once
#include <stdbool.h>
#include <stdint.h>

typedef struct Rgb {
    uint8_t r, g, b;
} Rgb;

typedef enum CmapScale {
    CMAP_SEQUENTIAL, // dark purple -> blue -> teal -> green -> yellow, lightness rising evenly
    CMAP_DIVERGING,  // blue -> near-white at 0 -> red, symmetric in lightness
} CmapScale;

// What the terminal can show, best last.
typedef enum ColorMode {
    CMODE_ASCII,     // no colour, no UTF-8: the ramp " .:-=+*#%@"
    CMODE_C8,        // 8 ANSI colours with shade glyphs ' ' ░ ▒ ▓ █
    CMODE_C256,      // the xterm 6x6x6 cube and grey ramp
    CMODE_TRUECOLOR, // 24-bit RGB
} ColorMode;

#define CMAP_LEVELS 256 // quantisation of the scales used for drawing

// Exact colour of scale s at position t in [0,1] (clamped; NaN gives the t=0 colour).
Rgb cmap_rgb(CmapScale s, double t);

// Position in [0,1] of value v on scale s over [lo,hi]. Sequential: (v-lo)/(hi-lo), clamped.
// Diverging: 0 maps to 0.5 and +-max(|lo|,|hi|) to the ends. NaN stays NaN.
double cmap_pos(CmapScale s, double v, double lo, double hi);

// Quantised level 0..CMAP_LEVELS-1 of position t (NaN gives 0).
int cmap_level(double t);

// The CMAP_LEVELS colours of scale s (level -> RGB); valid for the life of the program.
const Rgb *cmap_lut(CmapScale s);

// An xterm-256 index (16..255) for each level of scale s: as near as possible while the
// lightness order of the levels is kept (so the 256-colour scale never reverses).
const uint8_t *cmap_lut256(CmapScale s);

// Nearest colour of the xterm 6x6x6 cube and grey ramp (16..255) to c, by OKLab distance
// (greys match greys).
int cmap_xterm256(Rgb c);

// The RGB value xterm uses for palette index idx (0..255).
Rgb cmap_xterm_rgb(int idx);

// Shade level 0..4 (index into cmap_shade_glyph) and ANSI colour 0..7 for position t of scale s.
int cmap_shade(CmapScale s, double t, int *ansi);

// The shade glyph for level 0..4: " ", "░", "▒", "▓", "█".
const char *cmap_shade_glyph(int level);

// The ASCII ramp character for position t of scale s (diverging uses ",;-=" below 0, ".:+#" above).
char cmap_ascii(CmapScale s, double t);

// OKLab lightness (0..1) of c, for choosing readable text on it.
double cmap_lightness(Rgb c);

// Convert c to OKLab (L, a, b).
void cmap_oklab(Rgb c, double lab[3]);

// Choose the display mode from the environment and curses: colorterm = $COLORTERM, term = $TERM
// (either may be NULL), ncolors = what curses reports (COLORS or tigetnum("colors"); <0 unknown),
// utf8 = whether the locale's charset is UTF-8.
ColorMode cmap_detect_mode(const char *colorterm, const char *term, int ncolors, bool utf8);

// "ascii", "8", "256" or "truecolor".
const char *cmap_mode_name(ColorMode m);
