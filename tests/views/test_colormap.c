// test_colormap.c - colour scales (ends, middle, uniformity, symmetry), the xterm-256 nearest
// match, the 8-colour and ASCII levels, and terminal mode detection.
#include <math.h>

#include "../check.h"
#include "colormap.h"

#define CHECK_RGB(got, R, G, B)                                                                \
    do {                                                                                       \
        Rgb c_ = (got);                                                                        \
        if (abs(c_.r - (R)) > 1 || abs(c_.g - (G)) > 1 || abs(c_.b - (B)) > 1) {               \
            fprintf(stderr, "%s:%d: %s: expected #%02x%02x%02x, got #%02x%02x%02x\n", __FILE__, \
                    __LINE__, #got, R, G, B, c_.r, c_.g, c_.b);                                \
            check_failures++;                                                                  \
        }                                                                                      \
    } while (0)

static double dist(Rgb a, Rgb b) {
    double p[3], q[3];
    cmap_oklab(a, p);
    cmap_oklab(b, q);
    return sqrt((p[0] - q[0]) * (p[0] - q[0]) + (p[1] - q[1]) * (p[1] - q[1]) + (p[2] - q[2]) * (p[2] - q[2]));
}

// Perceived steps between n+1 evenly spaced colours of scale s over [t0, t1] stay within 15% of
// their mean (8-bit rounding is what remains).
static void check_uniform(CmapScale s, double t0, double t1, int n) {
    double sum = 0, mn = 1e9, mx = 0;
    for (int i = 0; i < n; i++) {
        double d = dist(cmap_rgb(s, t0 + (t1 - t0) * i / n), cmap_rgb(s, t0 + (t1 - t0) * (i + 1) / n));
        sum += d;
        mn = fmin(mn, d), mx = fmax(mx, d);
    }
    double mean = sum / n;
    if (mn < 0.85 * mean || mx > 1.15 * mean) {
        fprintf(stderr, "scale %d over %g..%g: steps %.5f..%.5f around mean %.5f\n", s, t0, t1, mn, mx, mean);
        check_failures++;
    }
}

int main(void) {
    // ends and middle of the sequential scale
    CHECK_RGB(cmap_rgb(CMAP_SEQUENTIAL, 0), 0x31, 0x0e, 0x57);
    CHECK_RGB(cmap_rgb(CMAP_SEQUENTIAL, 0.5), 0x1b, 0x98, 0x9a);
    CHECK_RGB(cmap_rgb(CMAP_SEQUENTIAL, 1), 0xfa, 0xee, 0x40);
    CHECK_RGB(cmap_rgb(CMAP_SEQUENTIAL, -3), 0x31, 0x0e, 0x57); // clamped
    CHECK_RGB(cmap_rgb(CMAP_SEQUENTIAL, NAN), 0x31, 0x0e, 0x57);
    // diverging: blue, near-white at 0, red
    CHECK_RGB(cmap_rgb(CMAP_DIVERGING, 0), 0x00, 0x4b, 0x96);
    CHECK_RGB(cmap_rgb(CMAP_DIVERGING, 0.5), 0xf5, 0xf5, 0xf5);
    CHECK_RGB(cmap_rgb(CMAP_DIVERGING, 1), 0x8d, 0x1b, 0x19);
    CHECK_RGB(cmap_lut(CMAP_SEQUENTIAL)[0], 0x31, 0x0e, 0x57);
    CHECK_RGB(cmap_lut(CMAP_DIVERGING)[CMAP_LEVELS - 1], 0x8d, 0x1b, 0x19);

    // lightness rises along the sequential scale; diverging is symmetric around the middle
    const Rgb *seq = cmap_lut(CMAP_SEQUENTIAL), *div = cmap_lut(CMAP_DIVERGING);
    for (int i = 1; i < CMAP_LEVELS; i++) CHECK(cmap_lightness(seq[i]) > cmap_lightness(seq[i - 1]));
    for (int i = 0; i < CMAP_LEVELS / 2; i++)
        CHECK_NEAR(cmap_lightness(div[i]), cmap_lightness(div[CMAP_LEVELS - 1 - i]), 0.01);
    CHECK(cmap_lightness(div[CMAP_LEVELS / 2]) > 0.95);
    check_uniform(CMAP_SEQUENTIAL, 0, 1, 32);
    check_uniform(CMAP_DIVERGING, 0, 0.5, 16);
    check_uniform(CMAP_DIVERGING, 0.5, 1, 16);

    // value -> position
    CHECK_NEAR(cmap_pos(CMAP_SEQUENTIAL, 0.25, 0, 1), 0.25, 1e-12);
    CHECK_NEAR(cmap_pos(CMAP_SEQUENTIAL, 5, 0, 1), 1, 0);
    CHECK_NEAR(cmap_pos(CMAP_SEQUENTIAL, -5, 0, 1), 0, 0);
    CHECK_NEAR(cmap_pos(CMAP_SEQUENTIAL, 3, 3, 3), 0, 0); // empty range
    CHECK_NEAR(cmap_pos(CMAP_DIVERGING, 0, -1, 2), 0.5, 0);
    CHECK_NEAR(cmap_pos(CMAP_DIVERGING, -2, -1, 2), 0, 1e-12);
    CHECK_NEAR(cmap_pos(CMAP_DIVERGING, 1, -1, 2), 0.75, 1e-12);
    CHECK(isnan(cmap_pos(CMAP_DIVERGING, NAN, -1, 1)));
    CHECK_INT(cmap_level(0), 0);
    CHECK_INT(cmap_level(1), 255);
    CHECK_INT(cmap_level(0.5), 128);
    CHECK_INT(cmap_level(NAN), 0);

    // nearest xterm-256 colours
    CHECK_INT(cmap_xterm256((Rgb){255, 0, 0}), 196);
    CHECK_INT(cmap_xterm256((Rgb){0, 0, 0}), 16);
    CHECK_INT(cmap_xterm256((Rgb){255, 255, 255}), 231);
    CHECK_INT(cmap_xterm256((Rgb){128, 128, 128}), 244);
    CHECK_INT(cmap_xterm256((Rgb){95, 135, 175}), 67);
    CHECK_INT(cmap_xterm256((Rgb){0, 0, 255}), 21);
    CHECK_INT(cmap_xterm256((Rgb){255, 255, 0}), 226);
    CHECK_INT(cmap_xterm256((Rgb){8, 8, 8}), 232);
    CHECK_INT(cmap_xterm256((Rgb){240, 240, 240}), 255);
    CHECK_INT(cmap_xterm256((Rgb){100, 135, 170}), 67); // near, not exact
    CHECK_RGB(cmap_xterm_rgb(67), 95, 135, 175);
    CHECK_RGB(cmap_xterm_rgb(232), 8, 8, 8);
    CHECK_RGB(cmap_xterm_rgb(255), 238, 238, 238);
    CHECK_RGB(cmap_xterm_rgb(9), 255, 0, 0);
    // the 256-colour scales stay near the exact ones (the cube has nothing nearer than 0.11 to
    // some dark purples)
    double worst = 0;
    for (int i = 0; i < CMAP_LEVELS; i++) {
        worst = check_worst(worst, dist(seq[i], cmap_xterm_rgb(cmap_lut256(CMAP_SEQUENTIAL)[i])));
        worst = check_worst(worst, dist(div[i], cmap_xterm_rgb(cmap_lut256(CMAP_DIVERGING)[i])));
    }
    if (worst > 0.13) fprintf(stderr, "256-colour scale %.3f from the exact one\n", worst), check_failures++;
    // the 256-colour approximation keeps the scales' order of lightness
    for (int i = 1; i < CMAP_LEVELS; i++) {
        double a = cmap_lightness(cmap_xterm_rgb(cmap_lut256(CMAP_SEQUENTIAL)[i - 1]));
        double b = cmap_lightness(cmap_xterm_rgb(cmap_lut256(CMAP_SEQUENTIAL)[i]));
        CHECK(b >= a);
        a = cmap_lightness(cmap_xterm_rgb(cmap_lut256(CMAP_DIVERGING)[i - 1]));
        b = cmap_lightness(cmap_xterm_rgb(cmap_lut256(CMAP_DIVERGING)[i]));
        CHECK(i <= CMAP_LEVELS / 2 ? b >= a : b <= a);
    }
    CHECK_INT(cmap_lut256(CMAP_DIVERGING)[CMAP_LEVELS / 2], 255); // zero is grey, not tinted
    CHECK_INT(cmap_xterm256((Rgb){245, 245, 245}), 255);

    // 8 colours: shade level and hue
    int ansi = -1;
    CHECK_INT(cmap_shade(CMAP_SEQUENTIAL, 0, &ansi), 0);
    CHECK_INT(cmap_shade(CMAP_SEQUENTIAL, 0.5, &ansi), 2);
    CHECK_INT(ansi, 6);
    CHECK_INT(cmap_shade(CMAP_SEQUENTIAL, 1, &ansi), 4);
    CHECK_INT(ansi, 3);
    CHECK_INT(cmap_shade(CMAP_DIVERGING, 0, &ansi), 4);
    CHECK_INT(ansi, 4);
    CHECK_INT(cmap_shade(CMAP_DIVERGING, 0.5, &ansi), 0);
    CHECK_INT(cmap_shade(CMAP_DIVERGING, 1, &ansi), 4);
    CHECK_INT(ansi, 1);
    CHECK_INT(cmap_shade(CMAP_DIVERGING, 0.3, &ansi), 2);
    CHECK_INT(ansi, 4);
    CHECK_STR(cmap_shade_glyph(0), " ");
    CHECK_STR(cmap_shade_glyph(2), "\u2592");
    CHECK_STR(cmap_shade_glyph(4), "\u2588");

    // ASCII ramps
    CHECK_INT(cmap_ascii(CMAP_SEQUENTIAL, 0), ' ');
    CHECK_INT(cmap_ascii(CMAP_SEQUENTIAL, 0.5), '+');
    CHECK_INT(cmap_ascii(CMAP_SEQUENTIAL, 1), '@');
    CHECK_INT(cmap_ascii(CMAP_DIVERGING, 0), '=');
    CHECK_INT(cmap_ascii(CMAP_DIVERGING, 0.5), ' ');
    CHECK_INT(cmap_ascii(CMAP_DIVERGING, 1), '#');
    CHECK_INT(cmap_ascii(CMAP_DIVERGING, 0.25), ';');
    CHECK_INT(cmap_ascii(CMAP_DIVERGING, 0.75), ':');
    CHECK_INT(cmap_ascii(CMAP_DIVERGING, 0.45), ' ');

    // mode detection: COLORTERM, TERM, curses colours, UTF-8 locale
    static const struct {
        const char *colorterm, *term;
        int ncolors;
        bool utf8;
        ColorMode want;
    } modes[] = {
        {"truecolor", "xterm-256color", 256, true, CMODE_TRUECOLOR},
        {"24bit", "xterm-256color", 256, true, CMODE_TRUECOLOR},
        {"TrueColor", "tmux-256color", 256, true, CMODE_TRUECOLOR},
        {NULL, "xterm-direct", 0x1000000, true, CMODE_TRUECOLOR},
        {NULL, "xterm-direct", -1, true, CMODE_TRUECOLOR},
        {"truecolor", "xterm-direct", -1, true, CMODE_TRUECOLOR},
        {NULL, "xterm-256color", 256, true, CMODE_C256},
        {"", "screen-256color", 256, true, CMODE_C256},
        {"truecolor", "xterm", 8, true, CMODE_C8}, // curses can only paint 8
        {NULL, "xterm", 8, true, CMODE_C8},
        {NULL, "linux", 8, true, CMODE_C8},
        {NULL, "xterm-256color", -1, true, CMODE_C256},
        {NULL, "xterm", -1, true, CMODE_C8},
        {NULL, "vt100", 0, true, CMODE_ASCII},
        {NULL, "vt100", -1, true, CMODE_ASCII},
        {NULL, "dumb", 256, true, CMODE_ASCII},
        {NULL, NULL, -1, true, CMODE_ASCII},
        {"truecolor", "xterm-256color", 256, false, CMODE_ASCII}, // not a UTF-8 locale
        {NULL, "xterm-256color", 256, false, CMODE_ASCII},
    };
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        ColorMode got = cmap_detect_mode(modes[i].colorterm, modes[i].term, modes[i].ncolors, modes[i].utf8);
        if (got != modes[i].want) {
            fprintf(stderr, "detect(%s, %s, %d, %d): expected %s, got %s\n", modes[i].colorterm ? modes[i].colorterm : "NULL",
                    modes[i].term ? modes[i].term : "NULL", modes[i].ncolors, modes[i].utf8,
                    cmap_mode_name(modes[i].want), cmap_mode_name(got));
            check_failures++;
        }
    }
    return CHECK_DONE();
}
