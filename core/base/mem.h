// mem.h - qkv's out-of-memory policy and the allocation helpers that carry it out.
//
// The policy, for every folder (core/, db/, views/, app/):
//  1. Memory whose size comes from input -- a model file's shapes, tensors, the KV cache, a
//     trace, attention maps, a user's option such as len= or k= -- is allocated with plain
//     malloc/calloc after the size has been checked for overflow, and a failure returns an error
//     to the caller ("out of memory for ..."): the person sees a message and qkv goes on.
//  2. Everything else -- bookkeeping whose size is bounded by what is already in memory
//     (strings, buffers, vectors, parse trees, small tables) -- goes through xmalloc, xcalloc,
//     xrealloc and xstrdup. They never return NULL: on failure they call the process's
//     out-of-memory handler, which the application sets (restore the terminal, say so, exit);
//     the default handler writes one line to stderr and aborts. Their results are not checked.
//  3. No other code aborts or exits for lack of memory.
#pragma once
#include <stddef.h>

// Called with the size that could not be allocated; must not return.
typedef void (*OomHandler)(size_t size);

// Install h (NULL: the default, which prints one line and aborts).
void mem_set_oom_handler(OomHandler h);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
// n * size, or SIZE_MAX when it overflows (for checking sizes from input before malloc).
size_t mem_mul(size_t n, size_t size);
