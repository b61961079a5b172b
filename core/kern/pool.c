// pool.c - thread team. A section is nth shares; every thread, the caller included, takes
// shares first come first served until none is left. The section ends when every share is
// done: a worker that has not yet come in by then (descheduled on a busy machine) skips it
// instead of being waited for, so one late thread costs its share's time, not a time slice.
// Waiting (workers for the next section, the caller for workers still running a share)
// spins for a short time, then sleeps on a condition variable: a decode step runs ~100
// sections a few microseconds apart, and a waiter that keeps spinning on a shared core takes
// it from the thread it waits for.
#include "kern/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/mem.h"

// Spinning lasts at most this long before sleeping (a pause takes 5-150 ns depending on
// the CPU and the hypervisor, so the spin is timed, not counted).
#define SPIN_SECONDS 100e-6

// ctl packs a section's generation (high 32 bits), the workers that came in (<< 1) and
// whether the section is closed (bit 0): coming in and closing are one atomic word, so a
// worker either came in before the close (and is waited for) or does nothing.
#define CTL(gen) ((uint64_t)(uint32_t)(gen) << 32)
#define CTL_CLOSED 1u

struct Pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake; // workers: a new section (or quit)
    pthread_cond_t done; // the caller: a worker left the section
    atomic_uint gen;      // bumped to start a section
    atomic_uint_fast64_t ctl;
    atomic_int next;      // the next share to take
    atomic_int left;      // workers that came in and have left
    atomic_int sleepers;  // workers blocked on wake
    atomic_bool waiting;  // the caller is blocked on done
    PoolFn fn;
    void *arg;
    atomic_bool quit;
    struct {
        float *p;
        size_t n;
        char pad[64 - sizeof(float *) - sizeof(size_t)]; // one cache line per share
    } *scratch;
    void *tag;
};

// Take shares of the current section until none is left.
static void run_shares(Pool *p) {
    for (int s; (s = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed)) < p->n;) p->fn(p->arg, s, p->n);
}

// Come into section g unless it is closed or over; true when in.
static bool enter(Pool *p, unsigned g) {
    uint64_t v = atomic_load_explicit(&p->ctl, memory_order_acquire);
    for (;;) {
        if ((v >> 32) != (uint32_t)g || (v & CTL_CLOSED)) return false;
        if (atomic_compare_exchange_weak_explicit(&p->ctl, &v, v + 2, memory_order_acq_rel, memory_order_acquire))
            return true;
    }
}

static void *worker_main(void *a) {
    Pool *p = a;
    unsigned seen = 0;
    for (;;) {
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g == seen) {
            double t0 = clock_now();
            for (int i = 0; (g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen; i++) {
                pool_pause();
                if ((i & 63) || clock_now() - t0 < SPIN_SECONDS) continue;
                pthread_mutex_lock(&p->mu);
                atomic_fetch_add(&p->sleepers, 1);
                while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->wake, &p->mu);
                atomic_fetch_sub(&p->sleepers, 1);
                pthread_mutex_unlock(&p->mu);
                t0 = clock_now();
            }
        }
        seen = g;
        if (atomic_load(&p->quit)) return NULL;
        if (!enter(p, g)) continue;
        run_shares(p);
        atomic_fetch_add(&p->left, 1);
        if (atomic_load(&p->waiting)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

Pool *pool_new(int n) {
    if (n < 1) n = 1;
    Pool *p = xcalloc(1, sizeof *p);
    p->n = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = xcalloc((size_t)n, sizeof *p->threads);
    p->scratch = xcalloc((size_t)n, sizeof *p->scratch);
    for (int i = 1; i < n; i++)
        if (pthread_create(&p->threads[i], NULL, worker_main, p)) {
            p->n = i;
            break;
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
    pthread_cond_destroy(&p->done);
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
    // no worker is in a section now (the last one waited for those that came in)
    unsigned g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->left, 0, memory_order_relaxed);
    atomic_store_explicit(&p->ctl, CTL(g), memory_order_release);
    atomic_store(&p->gen, g);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    run_shares(p);
    // every share is taken: close the section and wait for the workers that came in
    int in = (int)((atomic_fetch_or(&p->ctl, CTL_CLOSED) & 0xFFFFFFFFu) >> 1);
    if (atomic_load_explicit(&p->left, memory_order_acquire) == in) return;
    double t0 = clock_now();
    for (int i = 0; atomic_load_explicit(&p->left, memory_order_acquire) < in; i++) {
        pool_pause();
        if ((i & 63) || clock_now() - t0 < SPIN_SECONDS) continue;
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->waiting, true);
        while (atomic_load(&p->left) < in) pthread_cond_wait(&p->done, &p->mu);
        atomic_store(&p->waiting, false);
        pthread_mutex_unlock(&p->mu);
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
