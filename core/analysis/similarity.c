// similarity.c - linear CKA and mean cosine between the layers of a residual stream.
#include "analysis/similarity.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "base/mem.h"

int layer_similarity(const float *h, int L1, int n, int d, volatile sig_atomic_t *stop, float *cka, float *cos, Err *e) {
    size_t nd = (size_t)n * d, dd = (size_t)d * d;
    double *x = malloc(mem_mul(mem_mul(sizeof(double), nd), (size_t)L1)); // centred, (L1, n, d)
    double *c = malloc(mem_mul(sizeof(double), dd));
    double *self = malloc(sizeof(double) * (size_t)L1);
    if (!x || !c || !self) {
        free(x), free(c), free(self);
        return err_set(e, "out of memory for the similarity of %d layers of %d x %d", L1, n, d);
    }
    for (int l = 0; l < L1; l++)
        for (int j = 0; j < d; j++) {
            double m = 0;
            for (int t = 0; t < n; t++) m += h[l * nd + (size_t)t * d + j];
            m /= n;
            for (int t = 0; t < n; t++) x[l * nd + (size_t)t * d + j] = h[l * nd + (size_t)t * d + j] - m;
        }
    // |Xa^T Xb|_F^2 with Xa^T Xb (d, d)
    for (int a = 0; a < L1; a++)
        for (int b = a; b < L1; b++) {
            if (stop && *stop) {
                free(x), free(c), free(self);
                return err_set(e, "interrupted");
            }
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, n, 1.0, x + a * nd, d, x + b * nd, d, 0.0, c, d);
            double s = 0;
            for (size_t k = 0; k < dd; k++) s += c[k] * c[k];
            if (a == b) self[a] = sqrt(s);
            cka[a * L1 + b] = cka[b * L1 + a] = (float)s;
        }
    for (int a = 0; a < L1; a++)
        for (int b = 0; b < L1; b++) {
            double den = self[a] * self[b];
            cka[a * L1 + b] = den > 0 ? (float)(cka[a * L1 + b] / den) : NAN;
        }
    for (int a = 0; a < L1; a++)
        for (int b = 0; b < L1; b++) {
            if (stop && *stop) {
                free(x), free(c), free(self);
                return err_set(e, "interrupted");
            }
            double sum = 0;
            for (int t = 0; t < n; t++) {
                const float *u = h + a * nd + (size_t)t * d, *v = h + b * nd + (size_t)t * d;
                double uv = 0, uu = 0, vv = 0;
                for (int j = 0; j < d; j++) uv += (double)u[j] * v[j], uu += (double)u[j] * u[j], vv += (double)v[j] * v[j];
                sum += uu > 0 && vv > 0 ? uv / sqrt(uu * vv) : NAN;
            }
            cos[a * L1 + b] = (float)(sum / n);
        }
    free(x), free(c), free(self);
    return 0;
}
