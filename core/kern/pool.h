// pool.h - a fixed team of threads that run one parallel section at a time.
#pragma once

typedef struct Pool Pool;

// A section body: thread ith of nth does its share of arg's work.
typedef void (*PoolFn)(void *arg, int ith, int nth);

// n threads in all, the caller included (n >= 1). Returns NULL on failure.
Pool *pool_new(int n);
void pool_free(Pool *p);
int pool_size(const Pool *p);
// Run fn on every thread of the team (the caller is thread 0) and wait for all.
void pool_run(Pool *p, PoolFn fn, void *arg);
// Number of online CPUs (>= 1).
int pool_cpus(void);
