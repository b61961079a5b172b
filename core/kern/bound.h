// bound.h - what this machine can do at best, measured on the caller's thread team: memory
// read bandwidth and OpenBLAS sgemm throughput, so that a benchmark can state its results
// as fractions of bounds taken in the same run (they drift from minute to minute).
#pragma once
#include <stddef.h>

#include "base/err.h"
#include "kern/ops.h"
#include "kern/pool.h"

// Bytes per second of reading a buffer of `bytes` (choose it much larger than the caches),
// every thread of pool streaming its own contiguous part, best of `passes`. Returns 0, or
// -1 when the buffer cannot be allocated.
int bound_read_bytes_s(Pool *pool, size_t bytes, int passes, double *bytes_s, Err *e);

// A read buffer kept between samples, so that a benchmark can take the read bound right
// before and after each thing it times without allocating and faulting in the buffer again.
typedef struct ReadBound ReadBound;
// A buffer of `bytes`, every page faulted in; NULL (and a message) when out of memory.
ReadBound *bound_read_new(size_t bytes, Err *e);
void bound_read_free(ReadBound *r);
// Bytes per second of reading r's buffer on pool, best of `passes` (after one warm-up pass).
double bound_read_sample(Pool *pool, ReadBound *r, int passes);

// The median of the n > 0 values v (reordered in place: sorted on return).
double bound_median(double *v, int n);

// FLOP/s of F32 linear layers through sgemm on pool, split as linear_forward splits them,
// at the n shapes given (each timed best of reps; the shapes weighted by their calls).
// Returns 0, or -1 when the matrices cannot be allocated.
int bound_sgemm_flops_s(Pool *pool, const LinearShape *shapes, int n, int reps, double *flops_s, Err *e);
