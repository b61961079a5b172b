// test_agree.c - suite 'unit': the pair counts, agreement and Kendall's tau-b of agree.h on
// examples computed by hand (ties in one ranking, in the other, in both; pooling).
#include "analysis/agree.h"
#include "../check.h"

int main(void) {
    // a = 1 2 2 3, b = 1 1 2 3. Pairs: (1,2) a orders, b ties; (1,3) (1,4) (2,4) (3,4)
    // concordant; (2,3) a ties, b orders. C = 4, D = 0, n0 = 6, n1 = n2 = 1:
    // tau-b = 4 / sqrt(5 * 5) = 0.8; same relation on 4 of 6 pairs.
    AgreeCounts c = {0};
    agree_add(&c, (int[]){1, 2, 2, 3}, (int[]){1, 1, 2, 3}, 4);
    CHECK_INT(c.pairs, 6);
    CHECK_INT(c.concordant, 4);
    CHECK_INT(c.discordant, 0);
    CHECK_INT(c.tied_a, 1);
    CHECK_INT(c.tied_b, 1);
    CHECK_INT(c.tied_both, 0);
    CHECK(fabs(agree_tau_b(&c) - 0.8) < 1e-12);
    CHECK(fabs(agree_rate(&c) - 4.0 / 6.0) < 1e-12);

    // reversed, with a tie in both: a = 1 2 3 3, b = 3 2 1 1. D = 5, tied both 1:
    // tau-b = -5 / sqrt(5 * 5) = -1; same relation on 1 of 6 (the shared tie).
    AgreeCounts r = {0};
    agree_add(&r, (int[]){1, 2, 3, 3}, (int[]){3, 2, 1, 1}, 4);
    CHECK_INT(r.discordant, 5);
    CHECK_INT(r.tied_both, 1);
    CHECK(fabs(agree_tau_b(&r) + 1.0) < 1e-12);
    CHECK(fabs(agree_rate(&r) - 1.0 / 6.0) < 1e-12);

    // pooled: C = 4, D = 5, n0 = 12, n1 = 1 + 1, n2 = 1 + 1 -> (4 - 5) / sqrt(10 * 10) = -0.1
    agree_merge(&c, &r);
    CHECK_INT(c.pairs, 12);
    CHECK(fabs(agree_tau_b(&c) + 0.1) < 1e-12);
    CHECK(fabs(agree_rate(&c) - 5.0 / 12.0) < 1e-12);

    // every pair tied by one side: tau-b undefined; agreement still counted
    AgreeCounts t = {0};
    agree_add(&t, (int[]){1, 1}, (int[]){1, 2}, 2);
    CHECK(isnan(agree_tau_b(&t)));
    CHECK(agree_rate(&t) == 0.0);
    AgreeCounts none = {0};
    CHECK(isnan(agree_rate(&none)) && isnan(agree_tau_b(&none)));
    return check_failures != 0;
}
