// pool.h - a fixed team of threads that run one parallel section at a time. A section is
// n shares (n the team's size); each share runs exactly once, on whichever thread takes it
// first, so a thread the machine delays is not waited for (its shares are run by the others).
#pragma once
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

// One step of a spin-wait: a pause instruction where the CPU has one (it frees the core's
// resources for a sibling thread and keeps the loop from flooding the memory system).
static inline void pool_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}

// Wait until *flag equals want, acquiring what its setter released: spinning on pool_pause,
// but yielding now and then, since what is waited for runs on another thread and on a machine
// short of cores the waiter must not keep that thread off this one.
static inline void pool_wait_for(atomic_int *flag, int want) {
    for (int i = 1; atomic_load_explicit(flag, memory_order_acquire) != want; i++)
        if (i % 4096) pool_pause();
        else sched_yield();
}

typedef struct Pool Pool;

// A section body: share ith of nth of arg's work. Shares must not wait for one another (two
// may run one after the other on one thread).
typedef void (*PoolFn)(void *arg, int ith, int nth);

// n threads in all, the caller included (n >= 1); fewer when the system refuses a thread.
Pool *pool_new(int n);
void pool_free(Pool *p);
int pool_size(const Pool *p);
// Run fn's n shares on the team (the caller takes shares too) and return when all are done.
void pool_run(Pool *p, PoolFn fn, void *arg);
// Scratch of at least n floats owned by share ith, kept from section to section: grown when
// a larger one is asked for, else handed back as it is (so steady work allocates nothing).
// Only share ith may ask for its own (outside sections: the caller, for share 0). Never NULL.
float *pool_scratch(Pool *p, int ith, size_t n);
// A pointer the team carries for whoever runs sections on it (borrowed; NULL at first).
void pool_set_tag(Pool *p, void *tag);
void *pool_tag(const Pool *p);
// Number of online CPUs (>= 1).
int pool_cpus(void);
