// sample.c - seeded randomness and the decoding rules (greedy, temperature, top-k, top-p).
#define _GNU_SOURCE
#include "eval/sample.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void rng_seed(Rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next(Rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

float rng_uniform(Rng *r) { return (float)(rng_next(r) >> 40) * (1.0f / 16777216.0f); }

static float max_of(const float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

// out[i] = x[i] - (mx + log s)
static void sub_lse(const float *x, int n, float mx, double s, float *out) {
    float lse = mx + (float)log(s);
    for (int i = 0; i < n; i++) out[i] = x[i] - lse;
}

void log_softmax(const float *x, int n, float *out) {
    float mx = max_of(x, n);
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)x[i] - mx);
    sub_lse(x, n, mx, s, out);
}

typedef struct {
    const float *x;
    double *e;
    float mx;
    int n;
} ExpJob;

static void exp_job(void *arg, int ith, int nth) {
    ExpJob *J = arg;
    int a = (int)((int64_t)J->n * ith / nth), b = (int)((int64_t)J->n * (ith + 1) / nth);
    for (int i = a; i < b; i++) J->e[i] = exp((double)J->x[i] - J->mx);
}

// Generation takes every step's log-probabilities over the vocabulary: 50257 calls of exp were
// 0.55 ms a token on the Zen 4 host, as long as a tenth of a Q4_K_M GPT-2 124M token. Each
// exponential is the same whichever thread makes it, and the sum keeps log_softmax's order.
void log_softmax_pool(Pool *pool, const float *x, int n, float *out, double *scratch) {
    ExpJob J = {x, scratch, max_of(x, n), n};
    pool_run(pool, exp_job, &J);
    double s = 0;
    for (int i = 0; i < n; i++) s += scratch[i];
    sub_lse(x, n, J.mx, s, out);
}

// Descending by value, ties by lower index: a strict total order, so results do not
// depend on the sort algorithm.
static int cmp_desc(const void *a, const void *b, void *ctx) {
    const float *vals = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    float x = vals[i], y = vals[j];
    if (x != y) return x > y ? -1 : 1;
    return (i > j) - (i < j);
}

// Keys whose ascending order is cmp_desc's: the float's bits made to order as unsigned
// integers (-0 as +0, which compare equal), then complemented for descending.
static uint32_t desc_key(float v) {
    uint32_t u;
    if (v == 0) v = 0; // -0 -> +0
    memcpy(&u, &v, sizeof u);
    u = u >> 31 ? ~u : u | 0x80000000u;
    return ~u;
}

enum { RADIX_BITS = 11, RADIX = 1 << RADIX_BITS };

// is[0..n) := 0..n-1 sorted by cmp_desc over vals: a stable LSD radix sort of the keys (three
// passes of 11 bits) on indices that start in ascending order, so ties keep the lower index
// first, the permutation qsort_r with cmp_desc gives (a strict total order has one). qsort_r
// took 7 ms a step over GPT-2's 50257 logits (top_p sorts them every step); this about 0.3.
// Returns -1 when out of memory for its scratch.
static int sort_desc(const float *vals, int n, int *is) {
    uint32_t *k = malloc(sizeof(uint32_t) * (size_t)n * 2);
    int *is2 = malloc(sizeof(int) * (size_t)n);
    if (!k || !is2) {
        free(k), free(is2);
        return -1;
    }
    uint32_t *k2 = k + n;
    for (int i = 0; i < n; i++) is[i] = i, k[i] = desc_key(vals[i]);
    for (int shift = 0; shift < 32; shift += RADIX_BITS) {
        int count[RADIX + 1] = {0};
        for (int i = 0; i < n; i++) count[((k[i] >> shift) & (RADIX - 1)) + 1]++;
        for (int b = 0; b < RADIX; b++) count[b + 1] += count[b];
        for (int i = 0; i < n; i++) {
            int d = count[(k[i] >> shift) & (RADIX - 1)]++;
            k2[d] = k[i], is2[d] = is[i];
        }
        uint32_t *tk = k;
        k = k2, k2 = tk;
        memcpy(is, is2, sizeof(int) * (size_t)n);
    }
    free(k < k2 ? k : k2), free(is2);
    return 0;
}

static bool before(const float *x, int i, int j) { return x[i] > x[j] || (x[i] == x[j] && i < j); }

int top_n(const float *x, int n, int k, int *idx) {
    if (k > n) k = n;
    if (k <= 0) return 0;
    // insertion into a small sorted list: O(n k), fine for k <= a few dozen
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (m == k && !before(x, i, idx[m - 1])) continue;
        int pos = m < k ? m++ : k - 1;
        while (pos > 0 && before(x, i, idx[pos - 1])) {
            idx[pos] = idx[pos - 1];
            pos--;
        }
        idx[pos] = i;
    }
    return m;
}

int sample_token(const float *logits, int V, const SampleParams *p, Rng *r, float *fs, int *is) {
    if (p->temperature <= 0 || p->top_k == 1 || p->top_p <= 0) { // top_p 0 keeps the most likely token
        int best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    // candidates: all ids, or the top k
    int n = V;
    if (p->top_k > 0 && p->top_k < V) {
        n = top_n(logits, V, p->top_k, is);
    } else {
        if (p->top_p >= 1.0f || sort_desc(logits, V, is)) {
            for (int i = 0; i < V; i++) is[i] = i;
            if (p->top_p < 1.0f) qsort_r(is, (size_t)V, sizeof *is, cmp_desc, (void *)logits);
        }
    }
    // probabilities at temperature over the candidates (sorted when filtered)
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = logits[is[i]] > mx ? logits[is[i]] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        fs[i] = expf((logits[is[i]] - mx) / p->temperature);
        sum += fs[i];
    }
    if (p->top_p < 1.0f && p->top_p > 0.0f) {
        // smallest prefix (by descending probability) whose mass reaches top_p
        double acc = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            acc += fs[i] / sum;
            if (acc >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        sum = 0;
        for (int i = 0; i < n; i++) sum += fs[i];
    }
    double u = (double)rng_uniform(r) * sum, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += fs[i];
        if (u < acc) return is[i];
    }
    return is[n - 1];
}
