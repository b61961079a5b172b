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

// Newcombe's hybrid score interval for the difference of two paired proportions (Newcombe
// 1998, method 10): each accuracy's Wilson interval, squared and added with a correction for the
// correlation phi of the two conditions' scores; phi's numerator, both x neither - a_only x
// b_only, moved n/2 towards 0 when positive, as the paper advises (0 when a margin is empty).
// Unlike diff +- z se it stays inside [-1, 1], is not a point at 0/n against n/n, and has width
// with no discordant pair.
static void paired_newcombe(long both, long a_only, long b_only, long neither, Paired *p) {
    long n = both + a_only + b_only + neither;
    if (n < 1) {
        p->ci_low = p->ci_high = NAN;
        return;
    }
    double la, ua, lb, ub;
    stats_wilson95(both + a_only, n, &la, &ua);
    stats_wilson95(both + b_only, n, &lb, &ub);
    double margins = (double)(both + a_only) * (double)(b_only + neither) * (double)(both + b_only) *
                     (double)(a_only + neither);
    double num = (double)both * (double)neither - (double)a_only * (double)b_only, phi = 0;
    if (num > (double)n / 2) num -= (double)n / 2;
    else if (num > 0) num = 0;
    if (margins > 0) phi = num / sqrt(margins);
    // B - A: its lower end pairs B's distance down with A's distance up, its upper end the reverse
    double bd = p->acc_b - lb, bu = ub - p->acc_b, ad = p->acc_a - la, au = ua - p->acc_a;
    double lo2 = bd * bd - 2 * phi * bd * au + au * au, hi2 = bu * bu - 2 * phi * bu * ad + ad * ad;
    p->ci_low = fmax(-1, p->diff - sqrt(lo2 > 0 ? lo2 : 0));
    p->ci_high = fmin(1, p->diff + sqrt(hi2 > 0 ? hi2 : 0));
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
    paired_newcombe(both, a_only, b_only, neither, p);
    p->p_exact = stats_binom_two_sided(a_only, d);
    if (d > 0) {
        double x = fabs((double)(b_only - a_only)) - 1;
        p->chi2 = x > 0 ? x * x / (double)d : 0;
        p->p_chi2 = erfc(sqrt(p->chi2 / 2));
    } else {
        p->chi2 = 0, p->p_chi2 = 1;
    }
}
