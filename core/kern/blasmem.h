// blasmem.h - OpenBLAS's work buffers, made while memory is free.
//
// Every cblas_sgemm call takes a work buffer (about 128 MB of address space, touched only as
// far as it is used) from a process-wide table in OpenBLAS, and maps a new one when every
// buffer made so far is in use. OpenBLAS 0.3.x retries a failed mapping forever
// (OpenMathLib/OpenBLAS#5289): under an address-space limit or with overcommit off, the
// first time more threads than ever before run sgemm at once, qkv would hang. So whoever is
// about to run sgemm on several threads first reserves buffers for all of them, here, and
// gets an error (not a hang) when they cannot be had.
#pragma once
#include "base/err.h"

#include <stdbool.h>

// Make sure OpenBLAS holds buffers for `callers` threads running sgemm at once (our pool's
// threads plus OpenBLAS's own). Cheap after the first call for as many callers. Returns 0,
// or -1 with "out of memory for OpenBLAS's work buffers ..." in e (then no sgemm may run
// with more callers than before). A BLAS without OpenBLAS's buffer table needs nothing: 0.
int blas_reserve(int callers, Err *e);
// How many simultaneous callers the buffers made so far serve (test hook).
int blas_reserved(void);
