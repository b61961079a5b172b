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

// FLOP/s of F32 linear layers through sgemm on pool, split as linear_forward splits them,
// at the n shapes given (each timed best of reps; the shapes weighted by their calls).
// Returns 0, or -1 when the matrices cannot be allocated.
int bound_sgemm_flops_s(Pool *pool, const LinearShape *shapes, int n, int reps, double *flops_s, Err *e);
