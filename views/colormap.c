// colormap.c - the two colour scales of qkv's heatmaps and their terminal approximations.
//
// The scales are piecewise-linear curves in OKLab (Ottosson 2020), a space where Euclidean
// distance approximates perceived colour difference. The anchors below were derived for qkv
// (tests/views/derive_scales.py): the sequential curve has lightness rising linearly from 0.27 to
// 0.93 while the hue turns from purple (300 deg) to yellow (105 deg) with moderate chroma; the
// diverging curve goes from a dark blue (hue 255) through near-white to a dark red (hue 27) with
// the same lightness profile on both sides. Anchors are spaced at equal OKLab arc length (per
// half for the diverging one), so equal steps in value are equal steps in perceived colour;
// every anchor and chord is inside sRGB. For 256 colours each level gets the nearest palette
// entry that keeps the scale's lightness order (fit_monotone).
#include "colormap.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define NANCH 9

// OKLab (L, a, b) anchors at t = i / (NANCH - 1).
static const double seq_anchors[NANCH][3] = {
    {0.2700, 0.0600, -0.1039},  // #310e57
    {0.3548, 0.0095, -0.1093},  // #2d3374
    {0.4416, -0.0353, -0.0934}, // #1f5687
    {0.5297, -0.0707, -0.0666}, // #087795
    {0.6178, -0.0954, -0.0296}, // #1b989a
    {0.7013, -0.1216, 0.0159},  // #31b797
    {0.7808, -0.1234, 0.0739},  // #6fd184
    {0.8571, -0.0967, 0.1304},  // #b4e365
    {0.9300, -0.0466, 0.1739},  // #faee40
};

static const double div_anchors[NANCH][3] = {
    {0.4200, -0.0357, -0.1333}, // #004b96
    {0.5547, -0.0338, -0.1263}, // #3874bd
    {0.6994, -0.0285, -0.1063}, // #6ea1e2
    {0.8347, -0.0143, -0.0532}, // #b1cbed
    {0.9700, 0.0000, 0.0000},   // #f5f5f5
    {0.8369, 0.0483, 0.0246},   // #ebbdb7
    {0.7038, 0.0966, 0.0492},   // #db847b
    {0.5620, 0.1156, 0.0589},   // #b5524a
    {0.4200, 0.1337, 0.0681},   // #8d1b19
};

static double srgb_to_linear(double c) {
    return c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4);
}

static double linear_to_srgb(double c) {
    if (c <= 0.0) return 0.0;
    if (c >= 1.0) return 1.0;
    return c <= 0.0031308 ? 12.92 * c : 1.055 * pow(c, 1 / 2.4) - 0.055;
}

static uint8_t to_byte(double c) { return (uint8_t)lrint(linear_to_srgb(c) * 255.0); }

void cmap_oklab(Rgb c, double lab[3]) {
    double r = srgb_to_linear(c.r / 255.0), g = srgb_to_linear(c.g / 255.0),
           b = srgb_to_linear(c.b / 255.0);
    double l = cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b);
    double m = cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b);
    double s = cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b);
    lab[0] = 0.2104542553 * l + 0.7936177850 * m - 0.0040720468 * s;
    lab[1] = 1.9779984951 * l - 2.4285922050 * m + 0.4505937099 * s;
    lab[2] = 0.0259040371 * l + 0.7827717662 * m - 0.8086757660 * s;
}

static Rgb oklab_to_rgb(const double lab[3]) {
    double l = lab[0] + 0.3963377774 * lab[1] + 0.2158037573 * lab[2];
    double m = lab[0] - 0.1055613458 * lab[1] - 0.0638541728 * lab[2];
    double s = lab[0] - 0.0894841775 * lab[1] - 1.2914855480 * lab[2];
    l = l * l * l, m = m * m * m, s = s * s * s;
    double r = 4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s;
    double g = -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s;
    double b = -0.0041960863 * l - 0.7034186147 * m + 1.7076147010 * s;
    return (Rgb){to_byte(r), to_byte(g), to_byte(b)};
}

double cmap_lightness(Rgb c) {
    double lab[3];
    cmap_oklab(c, lab);
    return lab[0];
}

Rgb cmap_rgb(CmapScale s, double t) {
    const double(*a)[3] = s == CMAP_DIVERGING ? div_anchors : seq_anchors;
    if (!(t > 0)) t = 0; // also NaN
    if (t > 1) t = 1;
    double x = t * (NANCH - 1);
    int i = (int)x;
    if (i > NANCH - 2) i = NANCH - 2;
    double f = x - i, lab[3];
    for (int k = 0; k < 3; k++) lab[k] = a[i][k] * (1 - f) + a[i + 1][k] * f;
    return oklab_to_rgb(lab);
}

double cmap_pos(CmapScale s, double v, double lo, double hi) {
    if (isnan(v)) return v;
    double t;
    if (s == CMAP_DIVERGING) {
        double m = fmax(fabs(lo), fabs(hi));
        t = m > 0 ? 0.5 + 0.5 * v / m : 0.5;
    } else {
        t = hi > lo ? (v - lo) / (hi - lo) : 0.0;
    }
    return t < 0 ? 0 : t > 1 ? 1 : t;
}

int cmap_level(double t) {
    if (!(t > 0)) return 0;
    if (t >= 1) return CMAP_LEVELS - 1;
    return (int)(t * (CMAP_LEVELS - 1) + 0.5);
}

Rgb cmap_xterm_rgb(int idx) {
    static const Rgb base[16] = {
        {0, 0, 0},       {205, 0, 0},     {0, 205, 0},     {205, 205, 0},
        {0, 0, 238},     {205, 0, 205},   {0, 205, 205},   {229, 229, 229},
        {127, 127, 127}, {255, 0, 0},     {0, 255, 0},     {255, 255, 0},
        {92, 92, 255},   {255, 0, 255},   {0, 255, 255},   {255, 255, 255},
    };
    static const uint8_t cube[6] = {0, 95, 135, 175, 215, 255};
    if (idx < 0) idx = 0;
    if (idx > 255) idx = 255;
    if (idx < 16) return base[idx];
    if (idx < 232) {
        int i = idx - 16;
        return (Rgb){cube[i / 36], cube[i / 6 % 6], cube[i % 6]};
    }
    uint8_t v = (uint8_t)(8 + 10 * (idx - 232));
    return (Rgb){v, v, v};
}

// Tables computed once: OKLab of the 240 palette colours, and the scale lookup tables.
static double pal_lab[240][3];
static Rgb luts[2][CMAP_LEVELS];
static uint8_t luts256[2][CMAP_LEVELS];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

// Nearest palette entry to an OKLab colour; a neutral grey only matches neutral entries, so
// that greys stay untinted.
static int nearest256(const double lab[3]) {
    bool neutral = lab[1] * lab[1] + lab[2] * lab[2] < 0.02 * 0.02;
    int best = 16;
    double bd = INFINITY;
    for (int i = 0; i < 240; i++) {
        const double *p = pal_lab[i];
        if (neutral && p[1] * p[1] + p[2] * p[2] >= 0.02 * 0.02) continue;
        double d0 = lab[0] - p[0], d1 = lab[1] - p[1], d2 = lab[2] - p[2];
        double d = d0 * d0 + d1 * d1 + d2 * d2;
        if (d < bd) bd = d, best = 16 + i;
    }
    return best;
}

// Map levels [from, to) of a scale to palette entries: each level as near as it can be
// (plain OKLab distance) while lightness never reverses along the levels (dir +1 rising, -1
// falling), so that the ordering of values survives; a coloured level never takes a grey entry.
// Dynamic programming over the palette sorted by lightness.
static void fit_monotone(const Rgb *lut, int from, int to, int dir, uint8_t *out) {
    enum { N = CMAP_LEVELS, P = 240 };
    static int order[P];
    static double cost[N][P];
    static short back[N][P];
    for (int i = 0; i < P; i++) order[i] = i;
    for (int i = 1; i < P; i++) // insertion sort by lightness in the direction of travel
        for (int j = i; j > 0 && dir * (pal_lab[order[j]][0] - pal_lab[order[j - 1]][0]) < 0; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    for (int l = from; l < to; l++) {
        double lab[3];
        cmap_oklab(lut[l], lab);
        bool coloured = lab[1] * lab[1] + lab[2] * lab[2] >= 0.02 * 0.02;
        double best = INFINITY;
        short arg = 0;
        for (int k = 0; k < P; k++) { // best predecessor among entries not after k
            if (l > from && cost[l - 1][k] < best) best = cost[l - 1][k], arg = (short)k;
            const double *p = pal_lab[order[k]];
            double d = (lab[0] - p[0]) * (lab[0] - p[0]) + (lab[1] - p[1]) * (lab[1] - p[1]) +
                       (lab[2] - p[2]) * (lab[2] - p[2]);
            if (coloured && p[1] * p[1] + p[2] * p[2] < 0.02 * 0.02) d += 1.0; // no greys
            cost[l][k] = d + (l > from ? best : 0);
            back[l][k] = arg;
        }
    }
    int k = 0;
    for (int j = 1; j < P; j++)
        if (cost[to - 1][j] < cost[to - 1][k]) k = j;
    for (int l = to - 1; l >= from; l--) {
        out[l] = (uint8_t)(16 + order[k]);
        k = back[l][k];
    }
}

static void tables_init(void) {
    for (int i = 0; i < 240; i++) cmap_oklab(cmap_xterm_rgb(16 + i), pal_lab[i]);
    for (int s = 0; s < 2; s++)
        for (int l = 0; l < CMAP_LEVELS; l++) luts[s][l] = cmap_rgb((CmapScale)s, (double)l / (CMAP_LEVELS - 1));
    fit_monotone(luts[CMAP_SEQUENTIAL], 0, CMAP_LEVELS, +1, luts256[CMAP_SEQUENTIAL]);
    fit_monotone(luts[CMAP_DIVERGING], 0, CMAP_LEVELS / 2, +1, luts256[CMAP_DIVERGING]);
    fit_monotone(luts[CMAP_DIVERGING], CMAP_LEVELS / 2, CMAP_LEVELS, -1, luts256[CMAP_DIVERGING]);
}

const Rgb *cmap_lut(CmapScale s) {
    pthread_once(&tables_once, tables_init);
    return luts[s == CMAP_DIVERGING];
}

const uint8_t *cmap_lut256(CmapScale s) {
    pthread_once(&tables_once, tables_init);
    return luts256[s == CMAP_DIVERGING];
}

int cmap_xterm256(Rgb c) {
    pthread_once(&tables_once, tables_init);
    double lab[3];
    cmap_oklab(c, lab);
    return nearest256(lab);
}

// Signed magnitude of position t on a diverging scale: -1..1.
static double div_x(double t) { return 2.0 * t - 1.0; }

static int bin(double m, int n) {
    if (!(m > 0)) return 0;
    int k = (int)(m * n);
    return k >= n ? n - 1 : k;
}

int cmap_shade(CmapScale s, double t, int *ansi) {
    int level, colour;
    if (isnan(t)) t = 0;
    if (s == CMAP_DIVERGING) {
        double x = div_x(t);
        level = bin(fabs(x), 5);
        colour = x < 0 ? 4 : 1; // blue below zero, red above
    } else {
        level = bin(t, 5);
        colour = t < 0.3 ? 4 : t < 0.55 ? 6 : t < 0.8 ? 2 : 3; // blue, cyan, green, yellow
    }
    if (ansi) *ansi = colour;
    return level;
}

const char *cmap_shade_glyph(int level) {
    static const char *const g[5] = {" ", "\u2591", "\u2592", "\u2593", "\u2588"};
    return g[level < 0 ? 0 : level > 4 ? 4 : level];
}

char cmap_ascii(CmapScale s, double t) {
    if (isnan(t)) t = 0;
    if (s == CMAP_DIVERGING) {
        double x = div_x(t);
        int k = bin(fabs(x), 5);
        if (k == 0) return ' ';
        return x < 0 ? ",;-="[k - 1] : ".:+#"[k - 1];
    }
    return " .:-=+*#%@"[bin(t, 10)];
}

static bool has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

ColorMode cmap_detect_mode(const char *colorterm, const char *term, int ncolors, bool utf8) {
    if (!utf8) return CMODE_ASCII;
    if (!term) term = "";
    if (!strcmp(term, "dumb")) return CMODE_ASCII;
    if (ncolors < 0) { // curses not asked: judge by the name
        if (strstr(term, "256color") || has_suffix(term, "-direct")) ncolors = 256;
        else if (strstr(term, "color") || strstr(term, "xterm") || strstr(term, "screen") ||
                 strstr(term, "tmux") || strstr(term, "rxvt") || !strcmp(term, "linux"))
            ncolors = 8;
        else ncolors = 0;
    }
    if (ncolors >= 0x1000000) return CMODE_TRUECOLOR; // a direct-colour terminfo entry
    bool rgb_env = colorterm && (!strcasecmp(colorterm, "truecolor") || !strcasecmp(colorterm, "24bit"));
    if ((rgb_env || has_suffix(term, "-direct")) && ncolors >= 256) return CMODE_TRUECOLOR;
    if (ncolors >= 256) return CMODE_C256;
    if (ncolors >= 8) return CMODE_C8;
    return CMODE_ASCII;
}

const char *cmap_mode_name(ColorMode m) {
    switch (m) {
    case CMODE_ASCII: return "ascii";
    case CMODE_C8: return "8";
    case CMODE_C256: return "256";
    case CMODE_TRUECOLOR: return "truecolor";
    }
    return "?";
}
