// test_probe.c - the expected layer of a probe sweep (core/analysis/probe.h): Tenney et al.'s
// center of gravity on the accuracy reached by the layers up to each one, so that it stays
// within the layers swept when a later layer's probe does worse than an earlier one's.
#include <math.h>

#include "../check.h"
#include "analysis/probe.h"

static double expected(const int *layers, const double *acc, int n) {
    ProbeLayer l[16] = {{0}};
    for (int i = 0; i < n; i++) l[i].layer = layers[i], l[i].acc = acc[i];
    return probe_expected_layer(l, n);
}

int main(void) {
    // rising: the plain center of gravity, sum l d_l / sum d_l
    CHECK_NEAR(expected((int[]){0, 1, 2, 3}, (double[]){0.5, 0.7, 0.8, 1.0}, 4), (0.2 * 1 + 0.1 * 2 + 0.2 * 3) / 0.5,
               1e-12);
    // a fall after a rise counts as no gain (it gave -1.5 before: outside layers 0..3)
    CHECK_NEAR(expected((int[]){0, 1, 2, 3}, (double[]){0.5, 0.9, 0.55, 0.6}, 4), 1.0, 1e-12);
    // a dip and a new best: only the part above the earlier best counts
    CHECK_NEAR(expected((int[]){0, 10, 29, 30}, (double[]){0.6, 0.8, 0.5, 0.9}, 4), (10 * 0.2 + 30 * 0.1) / 0.3, 1e-12);
    // never above the first layer's accuracy: none
    CHECK(isnan(expected((int[]){0, 1, 2}, (double[]){0.9, 0.6, 0.9}, 3)));
    CHECK(isnan(expected((int[]){4}, (double[]){0.9}, 1)));
    // a sweep whose accuracies rise anywhere has one, within its layers
    for (int k = 0; k < 200; k++) {
        int layers[8];
        double acc[8];
        unsigned s = 2654435761u * (unsigned)(k + 1);
        for (int i = 0; i < 8; i++) layers[i] = 2 * i + 1, s = s * 1103515245u + 12345u, acc[i] = (s >> 8) % 1000 / 1000.0;
        double e = expected(layers, acc, 8);
        bool rises = false;
        for (int i = 1; i < 8; i++) rises |= acc[i] > acc[0];
        CHECK(rises ? e >= 1 && e <= 15 : isnan(e));
    }
    return CHECK_DONE();
}
