// pool.c - thread team: workers spin briefly on a generation counter, then sleep on a
// condition variable, so back-to-back sections (a decode step runs ~100) start fast.
#include "kern/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/mem.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

enum { SPIN_ITERS = 20000 };

struct Pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint gen;     // bumped to start a section
    atomic_int pending;  // workers still running the current section
    atomic_int sleepers; // workers blocked on wake
    PoolFn fn;
    void *arg;
    atomic_bool quit;
    struct {
        float *p;
        size_t n;
        char pad[64 - sizeof(float *) - sizeof(size_t)]; // one cache line per thread
    } *scratch;
    void *tag;
};

typedef struct {
    Pool *p;
    int ith;
} Worker;

static void *worker_main(void *a) {
    Worker *w = a;
    Pool *p = w->p;
    int ith = w->ith;
    free(w);
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ITERS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        seen = g;
        if (atomic_load(&p->quit)) return NULL;
        p->fn(p->arg, ith, p->n);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
}

Pool *pool_new(int n) {
    if (n < 1) n = 1;
    Pool *p = xcalloc(1, sizeof *p);
    p->n = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->threads = xcalloc((size_t)n, sizeof *p->threads);
    p->scratch = xcalloc((size_t)n, sizeof *p->scratch);
    for (int i = 1; i < n; i++) {
        Worker *w = xmalloc(sizeof *w);
        w->p = p;
        w->ith = i;
        if (pthread_create(&p->threads[i], NULL, worker_main, w)) {
            free(w);
            p->n = i;
            break;
        }
    }
    return p;
}

void pool_free(Pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, true);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    for (int i = 0; i < p->n; i++) free(p->scratch[i].p);
    free(p->scratch);
    free(p->threads);
    free(p);
}

int pool_size(const Pool *p) { return p->n; }

void pool_run(Pool *p, PoolFn fn, void *arg) {
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, p->n - 1);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0, p->n);
    // spin while the others finish; on a busy machine give the core away instead
    for (int spins = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++) {
        if (spins < SPIN_ITERS) cpu_relax();
        else sched_yield();
    }
}

// Sizes come from the shapes of layers already in memory (a panel of a weight, one partial
// output row per thread), so growth follows mem.h's rule 2.
float *pool_scratch(Pool *p, int ith, size_t n) {
    if (p->scratch[ith].n < n || !p->scratch[ith].p) {
        free(p->scratch[ith].p);
        p->scratch[ith].p = xmalloc(mem_mul(n ? n : 1, sizeof(float)));
        p->scratch[ith].n = n;
    }
    return p->scratch[ith].p;
}

void pool_set_tag(Pool *p, void *tag) { p->tag = tag; }
void *pool_tag(const Pool *p) { return p->tag; }

int pool_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}
