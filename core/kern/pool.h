// pool.h - a fixed team of threads that run one parallel section at a time.
#pragma once
#include <stddef.h>

typedef struct Pool Pool;

// A section body: thread ith of nth does its share of arg's work.
typedef void (*PoolFn)(void *arg, int ith, int nth);

// n threads in all, the caller included (n >= 1); fewer when the system refuses a thread.
Pool *pool_new(int n);
void pool_free(Pool *p);
int pool_size(const Pool *p);
// Run fn on every thread of the team (the caller is thread 0) and wait for all.
void pool_run(Pool *p, PoolFn fn, void *arg);
// Scratch of at least n floats owned by thread ith, kept from section to section: grown when
// a larger one is asked for, else handed back as it is (so steady work allocates nothing).
// Only thread ith may ask for its own; the caller of pool_run is thread 0. Never NULL.
float *pool_scratch(Pool *p, int ith, size_t n);
// A pointer the team carries for whoever runs sections on it (borrowed; NULL at first).
void pool_set_tag(Pool *p, void *tag);
void *pool_tag(const Pool *p);
// Number of online CPUs (>= 1).
int pool_cpus(void);
