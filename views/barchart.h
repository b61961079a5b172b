// barchart.h - horizontal bars with error bars on a 0..1 scale (an experiment's accuracy per
// condition; the error bar is its 95% confidence interval, the Wilson score interval of value x
// count right out of count, stats_wilson95): drawn into a cell grid, exported as SVG or CSV.
// Pure, like the heatmap widget.
#pragma once
#include <stdbool.h>

#include "base/buf.h"
#include "base/err.h"
#include "cellgrid.h"

// The data: borrowed, never copied.
typedef struct BarChart {
    int n;
    const char *const *labels; // n strings
    const float *value;        // n values in [0, 1]; NAN: none yet
    const float *err;          // n standard errors (NAN or 0: none), or NULL
    const float *count;        // n item counts, or NULL (then no interval)
    const char *title;
    // the CSV only: the labels' column name (NULL: "condition"), and n_extra more columns after
    // the interval, extra_names[k] holding extra[k * n + i] for bar i
    const char *label_name;
    int n_extra;
    const char *const *extra_names;
    const float *extra;
} BarChart;

// Draw rows top.. of c into the w x h rectangle of g at (x, y): per row the label, the count,
// the bar with its error bar (the 95% interval) and the value +- its standard error; row sel
// highlighted (-1: none).
void barchart_draw(CellGrid *g, int x, int y, int w, int h, const BarChart *c, int sel, int top, bool utf8);
// Append c as CSV: label, n, value, stderr, ci_low, ci_high (stats_wilson95), lines ending in CRLF.
int barchart_to_csv(Buf *out, const BarChart *c, Err *e);
// Append c as a standalone SVG: a bar per row, its error bar, the label and value, an axis.
int barchart_to_svg(Buf *out, const BarChart *c, Err *e);
