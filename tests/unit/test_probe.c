// test_probe.c - the expected layer of a probe sweep (core/analysis/probe.h): Tenney et al.'s
// center of gravity on the accuracy reached by the layers up to each one, so that it stays
// within the layers swept when a later layer's probe does worse than an earlier one's.
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "../check.h"
#include "analysis/probe.h"

static double expected(const int *layers, const double *acc, int n) {
    ProbeLayer l[16] = {{0}};
    for (int i = 0; i < n; i++) l[i].layer = layers[i], l[i].acc = acc[i];
    return probe_expected_layer(l, n);
}

// Read the dataset text (written to a temporary file) with probe_set_read: its status, e filled.
static int read_set(const char *text, ProbeSet *s, Err *e) {
    char path[CHECK_TMP_LEN];
    check_tmpl(path, sizeof path, "qkv-test-probe");
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    int rc = probe_set_read(path, NULL, s, e);
    unlink(path);
    return rc;
}

// Datasets read as task files are: a UTF-8 byte-order mark at the start is no part of the first
// line (it said "line 1 column 1: bad number"), and a line that is not UTF-8 is refused naming the
// line and the byte (it was read, the bytes becoming U+FFFD in the texts the model saw).
static void test_read(void) {
    ProbeSet s;
    Err e = {0};
    int rc = read_set("\xef\xbb\xbf{\"text\": \"a b\", \"label\": 1}\n{\"text\": \"c\", \"label\": 2}\n", &s, &e);
    if (rc) fprintf(stderr, "a dataset with a byte-order mark: %s\n", e.msg);
    CHECK(rc == 0 && s.n == 2 && !strcmp(s.text[0], "a b"));
    if (!rc) probe_set_free(&s);
    rc = read_set("{\"text\": \"a\", \"label\": 1}\n{\"text\": \"caf\xe9\", \"label\": 2}\n", &s, &e);
    if (!rc || !strstr(e.msg, "line 2: not UTF-8 (byte 14 of the line)")) {
        fprintf(stderr, "a line that is not UTF-8: %s\n", rc ? e.msg : "read");
        check_failures++;
    }
    if (!rc) probe_set_free(&s);
}

int main(void) {
    test_read();
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
