"""statsref.py - the statistics of qkv's tables worked out independently of qkv's C, for the tests."""


def wilson95(k, n, z=1.959963984540054):
    """The 95% Wilson score interval of k right out of n, found by bisection from its definition:
    the p0 that the score test |k/n - p0| <= z sqrt(p0 (1 - p0) / n) accepts (not from the closed
    form qkv uses). (lo, hi)."""
    p = k / n

    def inside(p0):
        return (p - p0) ** 2 <= z * z * p0 * (1 - p0) / n

    def edge(a, b):  # a inside the interval, b outside it (or the bound, when inside)
        if inside(b):
            return b
        for _ in range(200):
            m = (a + b) / 2
            a, b = (m, b) if inside(m) else (a, m)
        return a

    return edge(p, 0.0), edge(p, 1.0)


def newcombe_paired95(both, a_only, b_only, neither):
    """The 95% interval of acc_b - acc_a from a paired 2 x 2 table, by Newcombe's method 10
    (Statistics in Medicine 17, 2635-2650, 1998) as its paper states it: the Wilson interval
    (l, u) of each proportion (wilson95 above, by bisection), then
    L = D - sqrt((pB - lB)^2 - 2 phi (pB - lB)(uA - pA) + (uA - pA)^2),
    U = D + sqrt((uB - pB)^2 - 2 phi (uB - pB)(pA - lA) + (pA - lA)^2),
    phi the correlation of the two margins with ad - bc moved n/2 towards 0 when positive."""
    n = both + a_only + b_only + neither
    pa, pb = (both + a_only) / n, (both + b_only) / n
    la, ua = wilson95(both + a_only, n)
    lb, ub = wilson95(both + b_only, n)
    ad_bc = both * neither - a_only * b_only
    num = ad_bc - n / 2 if ad_bc > n / 2 else min(ad_bc, 0)
    den = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    phi = num / den ** 0.5 if den > 0 else 0.0
    d = pb - pa
    lo = d - max(0.0, (pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2) ** 0.5
    hi = d + max(0.0, (ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2) ** 0.5
    return max(-1.0, lo), min(1.0, hi)
