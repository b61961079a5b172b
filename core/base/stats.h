// stats.h - the figures of an experiment's table, which db/ exports and the commands both give:
// accuracy with its standard error, and the paired comparison of two conditions on the same
// items (difference with a confidence interval, McNemar's exact and chi-squared tests).
#pragma once

// Accuracy k / n and its standard error as evaluation harnesses give it: the sample standard
// deviation of the 0/1 scores over sqrt(n), sqrt(p (1 - p) / (n - 1)). NaN when n < 2.
double stats_accuracy(long k, long n);
double stats_stderr(long k, long n);
// The 95% Wilson score interval of an accuracy of k right out of n: the p0 that the normal test
// |k/n - p0| <= z sqrt(p0 (1 - p0) / n) accepts, z = 1.959964, in closed form
// (k/n + z^2/2n -+ z sqrt(k/n (1 - k/n) / n + z^2/4n^2)) / (1 + z^2/n). Unlike p -+ z se it
// has width at 0/n and n/n (0/8: [0, 0.324], not [0, 0]) and stays inside [0, 1]. Both NaN
// when n < 1.
void stats_wilson95(long k, long n, double *lo, double *hi);

// The outcome of a paired comparison of conditions A and B on n items.
typedef struct Paired {
    long n;              // items scored under both
    long both, a_only, b_only, neither; // right under both, only A, only B, neither
    double acc_a, acc_b;
    double diff;         // acc_b - acc_a = (b_only - a_only) / n
    double se;           // its standard error for paired proportions
    double ci_low, ci_high; // the 95% interval of diff: Newcombe's hybrid score interval (his method 10)
    double p_exact;      // McNemar's exact test: two-sided binomial on the discordant pairs
    double chi2, p_chi2; // McNemar's chi-squared with continuity correction, 1 degree of freedom
} Paired;

// Fill p from the counts of a 2 x 2 table of paired outcomes.
void stats_paired(long both, long a_only, long b_only, long neither, Paired *p);
// Two-sided p-value of the exact binomial test of k successes in n trials at 1/2.
double stats_binom_two_sided(long k, long n);
