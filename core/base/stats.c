// stats.c - accuracy, standard error and the paired comparison (McNemar) of two conditions.
#include "base/stats.h"

#include <math.h>

#define STATS_Z95 1.959963984540054 // the 97.5% quantile of the standard normal

double stats_accuracy(long k, long n) { return n > 0 ? (double)k / (double)n : NAN; }

double stats_stderr(long k, long n) {
    if (n < 2) return NAN;
    double p = (double)k / (double)n;
    return sqrt(p * (1 - p) / (double)(n - 1));
}

void stats_wilson95(long k, long n, double *lo, double *hi) {
    if (n < 1 || k < 0 || k > n) {
        *lo = *hi = NAN;
        return;
    }
    double p = (double)k / (double)n, z2 = STATS_Z95 * STATS_Z95, d = 1 + z2 / (double)n;
    double mid = (p + z2 / (2.0 * (double)n)) / d;
    double half = STATS_Z95 * sqrt(p * (1 - p) / (double)n + z2 / (4.0 * (double)n * (double)n)) / d;
    // the ends are exact at 0/n and n/n (the formula gives them to a rounding)
    *lo = k == 0 ? 0 : fmax(0, mid - half);
    *hi = k == n ? 1 : fmin(1, mid + half);
}

double stats_binom_two_sided(long k, long n) {
    if (n <= 0) return 1.0;
    long m = k < n - k ? k : n - k;
    // P(X <= m) for X ~ Binomial(n, 1/2), summed in logs so that large n does not overflow
    double sum = 0, lfn = lgamma((double)n + 1);
    for (long i = 0; i <= m; i++) sum += exp(lfn - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) - n * log(2.0));
    double p = 2 * sum;
    if (2 * m == n) p = 1.0; // the two tails share the middle term
    return p > 1 ? 1 : p;
}

void stats_paired(long both, long a_only, long b_only, long neither, Paired *p) {
    long n = both + a_only + b_only + neither, d = a_only + b_only;
    p->n = n;
    p->both = both, p->a_only = a_only, p->b_only = b_only, p->neither = neither;
    p->acc_a = stats_accuracy(both + a_only, n);
    p->acc_b = stats_accuracy(both + b_only, n);
    p->diff = n ? (double)(b_only - a_only) / (double)n : NAN;
    double var = n ? ((double)d - (double)(b_only - a_only) * (double)(b_only - a_only) / (double)n) : NAN;
    p->se = n ? sqrt(var > 0 ? var : 0) / (double)n : NAN;
    p->ci_low = p->diff - STATS_Z95 * p->se;
    p->ci_high = p->diff + STATS_Z95 * p->se;
    p->p_exact = stats_binom_two_sided(a_only, d);
    if (d > 0) {
        double x = fabs((double)(b_only - a_only)) - 1;
        p->chi2 = x > 0 ? x * x / (double)d : 0;
        p->p_chi2 = erfc(sqrt(p->chi2 / 2));
    } else {
        p->chi2 = 0, p->p_chi2 = 1;
    }
}
