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
