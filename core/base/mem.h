// mem.h - qkv's out-of-memory policy and the allocation helpers that carry it out.
//
// The policy, for every folder (core/, db/, views/, app/):
//  1. Memory whose size comes from input -- a model file's shapes, tensors, the KV cache, a
//     trace, attention maps, figures, a file read whole, a command's result, a user's option
//     such as len= or k=, a database row's text -- is allocated with plain malloc/calloc/realloc
//     after the size has been checked for overflow (mem_mul), or in a Buf marked fallible
//     (base/buf.h). A failure returns an error to the caller, "out of memory for ...", through
//     the function's own error path: err_set in core/ and db/, out_error in a command, a
//     message on the status line through the view host in views/ (the view keeps working).
//     The person sees the message and qkv goes on.
//  2. Everything else -- bookkeeping whose size is bounded by what is already in memory or by
//     a small constant (strings, buffers, vectors, parse trees, small tables, view state) --
//     goes through xmalloc, xcalloc, xrealloc, xstrdup and xstrndup. They never return NULL:
//     on failure they call the process's out-of-memory handler, which the application sets
//     (app/main.c: restore the terminal, print "qkv: out of memory (allocating N bytes)",
//     exit with status 3); the default handler prints the same line and aborts. Their results
//     are not checked.
//  3. No other code aborts or exits for lack of memory.
//
// Test hook, compiled into every build: when the environment variable QKV_TEST_XALLOC_MAX
// holds a number of bytes at the first request, every x* request above it fails as if malloc
// had returned NULL (the handler runs). Plain malloc is not affected.
#pragma once
#include <stddef.h>

// Called with the size that could not be allocated; must not return.
typedef void (*OomHandler)(size_t size);

// Install h (NULL: the default, which prints one line and aborts).
void mem_set_oom_handler(OomHandler h);
// Write the handler's one line, "qkv: out of memory (allocating N bytes)", to stderr
// (without allocating: safe in a handler).
void mem_oom_report(size_t size);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
// The n bytes at p (NULs included) and a terminating NUL.
char *xmemdup0(const void *p, size_t n);
// n zeroed bytes for memory that is streamed through (the KV cache, the read bound's buffer):
// from 2 MB on, aligned to 2 MB and advised onto transparent huge pages (MADV_HUGEPAGE, where
// the system has it), so that a stream costs a TLB miss every 2 MB rather than every 4 KB;
// below 2 MB, aligned to 64 bytes. Always to a cache line: the [out, in] decoding kernels start
// their aligned loads where a row meets one (kern/simd.h head_cols), which groups the sums by
// the address, so a KV cache placed where calloc happened to put it gave other bits from one
// process to the next (a replay's log-probabilities differed in their last digits).
// NULL when out of memory (policy rule 1: the caller reports it); release with free().
void *mem_calloc_huge(size_t n);
// n * size, or SIZE_MAX when it overflows (for checking sizes from input before malloc).
size_t mem_mul(size_t n, size_t size);
