// bound.c - the machine's bounds for qkv bench: a STREAM-like read and sgemm at given shapes.
#include "kern/bound.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"

// 32 bytes a vector (two SSE2 loads without AVX, one with): reading, not adding, is the cost.
typedef uint64_t U64x4 __attribute__((vector_size(32)));

typedef struct {
    const U64x4 *buf;
    size_t n;         // vectors in buf
    uint64_t sink[64]; // per thread, so that the reads are not optimised away
} ReadJob;

// Each thread reads its part as STREAMS interleaved sequential streams: one stream per core
// leaves bandwidth unused on the machines measured (about 12 against 18 GB/s on 2 cores of
// a Zen 3 EPYC), and the decoding kernels read eight rows at once. Each stream is prefetched
// PF_AHEAD vectors (2 KB) ahead into L2, and where the CPU has AVX2 the loads are 32 bytes
// wide, as the kernels read: on the Zen 4 host, 2 threads, 16-byte loads without prefetching
// (the bound before 2026-12-02) measured 12-19 GB/s where this reads 22-28 GB/s in the same
// minute, so the fractions held against it then were too high.
enum { STREAMS = 8, PF_AHEAD = 64 };

#define READ_BODY                                                                                 \
    ReadJob *J = arg;                                                                             \
    size_t a = J->n * (size_t)ith / (size_t)nth, b = J->n * (size_t)(ith + 1) / (size_t)nth;      \
    size_t len = (b - a) / STREAMS & ~(size_t)1; /* vectors per stream, even; the rest after */   \
    const U64x4 *p = J->buf + a;                                                                  \
    U64x4 s[STREAMS] = {{0}};                                                                     \
    for (size_t i = 0; i < len; i += 2)                                                           \
        for (int k = 0; k < STREAMS; k++) {                                                       \
            if (i + PF_AHEAD < len) __builtin_prefetch(p + k * len + i + PF_AHEAD, 0, 1);         \
            s[k] ^= p[k * len + i] ^ p[k * len + i + 1];                                          \
        }                                                                                         \
    for (size_t i = a + len * STREAMS; i < b; i++) s[0] ^= J->buf[i];                             \
    U64x4 t = {0};                                                                                \
    for (int k = 0; k < STREAMS; k++) t ^= s[k];                                                  \
    J->sink[ith % 64] = t[0] ^ t[1] ^ t[2] ^ t[3];

static void read_job(void *arg, int ith, int nth) { READ_BODY }

#if defined(__x86_64__)
__attribute__((target("avx2"))) static void read_job_avx2(void *arg, int ith, int nth) { READ_BODY }
#endif

// The reader for this CPU.
static void (*read_fn(void))(void *, int, int) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) return read_job_avx2;
#endif
    return read_job;
}

struct ReadBound {
    ReadJob J;
    void *buf;
};

ReadBound *bound_read_new(size_t bytes, Err *e) {
    ReadBound *r = calloc(1, sizeof *r);
    if (r) r->J.n = bytes / sizeof(U64x4);
    // on 2 MB pages, as the weights (base/fs.c) and the KV cache are: the bound is the best
    // this machine reads
    if (!r || !r->J.n || !(r->buf = mem_calloc_huge(r->J.n * sizeof(U64x4)))) {
        free(r);
        err_set(e, "out of memory for a %zu MB read buffer", bytes >> 20);
        return NULL;
    }
    memset(r->buf, 1, r->J.n * sizeof(U64x4)); // fault every page in before timing
    r->J.buf = r->buf;
    return r;
}

void bound_read_free(ReadBound *r) {
    if (!r) return;
    free(r->buf);
    free(r);
}

double bound_read_sample(Pool *pool, ReadBound *r, int passes) {
    double best = 1e30;
    void (*job)(void *, int, int) = read_fn();
    pool_run(pool, job, &r->J); // warm-up
    for (int p = 0; p < passes; p++) {
        double t0 = clock_now();
        pool_run(pool, job, &r->J);
        double t = clock_now() - t0;
        best = t < best ? t : best;
    }
    return (double)(r->J.n * sizeof(U64x4)) / best;
}

int bound_read_bytes_s(Pool *pool, size_t bytes, int passes, double *bytes_s, Err *e) {
    ReadBound *r = bound_read_new(bytes, e);
    if (!r) return -1;
    *bytes_s = bound_read_sample(pool, r, passes);
    bound_read_free(r);
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bound_median(double *v, int n) {
    if (n > 1) qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int bound_sgemm_flops_s(Pool *pool, const LinearShape *shapes, int n, int reps, double *flops_s, Err *e) {
    double flops = 0, secs = 0;
    for (int s = 0; s < n; s++) {
        const LinearShape *h = &shapes[s];
        size_t na = mem_mul((size_t)h->T, (size_t)h->in), nw = mem_mul((size_t)h->in, (size_t)h->out),
               nc = mem_mul((size_t)h->T, (size_t)h->out);
        float *a = malloc(mem_mul(na, sizeof(float))), *w = malloc(mem_mul(nw, sizeof(float)));
        float *c = malloc(mem_mul(nc, sizeof(float)));
        if (!a || !w || !c) {
            free(a), free(w), free(c);
            return err_set(e, "out of memory for an sgemm of %d x %d x %d", h->T, h->in, h->out);
        }
        for (size_t i = 0; i < na; i++) a[i] = (float)(i % 13) * 0.01f;
        for (size_t i = 0; i < nw; i++) w[i] = (float)(i % 7) * 0.01f;
        Linear L = {.w = {.dt = DT_F32, .ndim = 2, .n = (int64_t)nw, .data = w}, .out_in = h->out_in, .in = h->in,
                    .out = h->out};
        linear_forward_sgemm(pool, c, a, &L, h->T); // warm-up: caches, OpenBLAS buffers
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            double t0 = clock_now();
            linear_forward_sgemm(pool, c, a, &L, h->T);
            double t = clock_now() - t0;
            best = t < best ? t : best;
        }
        flops += 2.0 * h->T * h->in * h->out * (double)h->calls;
        secs += best * (double)h->calls;
        free(a), free(w), free(c);
    }
    *flops_s = secs > 0 ? flops / secs : 0;
    return 0;
}
