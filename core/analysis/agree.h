// agree.h - agreement between two rankings of the same items (ranks with ties, 1 = best):
// pair counts (concordant, discordant, tied by one or by both), the share of pairs on which
// both give the same relation, and Kendall's tau-b. Counts add up over several rankings (of
// several prompts), so that one figure pools them.
#pragma once

typedef struct AgreeCounts {
    long pairs;                     // item pairs compared
    long concordant, discordant;    // both order the pair, alike / opposite
    long tied_a, tied_b, tied_both; // a tie in a only, in b only, in both
} AgreeCounts;

// Add the C(n, 2) pairs of n items that a ranks ra and b ranks rb (equal ranks tie).
void agree_add(AgreeCounts *c, const int *ra, const int *rb, int n);
// Add the counts of x into c.
void agree_merge(AgreeCounts *c, const AgreeCounts *x);
// The share of pairs with the same relation in a and b (concordant or tied in both); NAN when
// there are no pairs.
double agree_rate(const AgreeCounts *c);
// Kendall's tau-b: (C - D) / sqrt((n0 - n1) (n0 - n2)), n0 pairs, n1 and n2 the pairs tied in
// a and in b; NAN when either ranks every pair as a tie.
double agree_tau_b(const AgreeCounts *c);
