// agree.c - pair counts, agreement and Kendall's tau-b of two rankings (see agree.h).
#include "analysis/agree.h"

#include <math.h>

void agree_add(AgreeCounts *c, const int *ra, const int *rb, int n) {
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            int da = (ra[i] > ra[j]) - (ra[i] < ra[j]), db = (rb[i] > rb[j]) - (rb[i] < rb[j]);
            c->pairs++;
            if (!da && !db) c->tied_both++;
            else if (!da) c->tied_a++;
            else if (!db) c->tied_b++;
            else if (da == db) c->concordant++;
            else c->discordant++;
        }
}

void agree_merge(AgreeCounts *c, const AgreeCounts *x) {
    c->pairs += x->pairs;
    c->concordant += x->concordant;
    c->discordant += x->discordant;
    c->tied_a += x->tied_a;
    c->tied_b += x->tied_b;
    c->tied_both += x->tied_both;
}

double agree_rate(const AgreeCounts *c) {
    return c->pairs ? (double)(c->concordant + c->tied_both) / (double)c->pairs : NAN;
}

double agree_tau_b(const AgreeCounts *c) {
    double n0 = (double)c->pairs, n1 = (double)(c->tied_a + c->tied_both), n2 = (double)(c->tied_b + c->tied_both);
    double den = (n0 - n1) * (n0 - n2);
    return den > 0 ? (double)(c->concordant - c->discordant) / sqrt(den) : NAN;
}
