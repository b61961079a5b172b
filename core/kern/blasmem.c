// blasmem.c - see blasmem.h. The table is filled from the lowest free slot, so holding k
// buffers at once leaves slots 0..k-1 all mapped; a later caller takes the lowest free slot,
// which is mapped as long as fewer than k callers overlap. Twice the callers plus two are
// held, for OpenBLAS's own per-thread placement of buffers.
#include "kern/blasmem.h"

#include <cblas.h>
#include <pthread.h>
#include <sys/mman.h>

// OpenBLAS's allocator (driver/others/memory.c), exported by its shared library; weak, so
// that qkv still links against a BLAS without it.
extern void *blas_memory_alloc(int procpos) __attribute__((weak));
extern void blas_memory_free(void *addr) __attribute__((weak));

enum { MAX_HELD = 64 };
// What one buffer maps: BUFFER_SIZE (128 MB on x86-64) plus a page and alignment slack.
static const size_t BUFFER_BYTES = ((size_t)128 << 20) + ((size_t)8 << 20);

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int served; // callers the mapped buffers serve

int blas_reserved(void) {
    pthread_mutex_lock(&mu);
    int n = served;
    pthread_mutex_unlock(&mu);
    return n;
}

int blas_reserve(int callers, Err *e) {
    if (!blas_memory_alloc || !blas_memory_free) return 0;
    if (callers < 1) callers = 1;
    int hold = 2 * callers + 2;
    if (hold > MAX_HELD) hold = MAX_HELD, callers = (MAX_HELD - 2) / 2;
    pthread_mutex_lock(&mu);
    if (callers <= served) {
        pthread_mutex_unlock(&mu);
        return 0;
    }
    // OpenBLAS would loop forever on a failed mapping: first see that the address space is
    // there (reserved, not committed), then let OpenBLAS map its buffers into it.
    int have = served ? 2 * served + 2 : 0;
    size_t probe = BUFFER_BYTES * (size_t)(hold - have);
    void *p = mmap(NULL, probe, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        pthread_mutex_unlock(&mu);
        return err_set(e, "out of memory for OpenBLAS's work buffers (%zu MB of address space for %d threads)",
                       probe >> 20, callers);
    }
    munmap(p, probe);
    void *held[MAX_HELD];
    for (int i = 0; i < hold; i++) held[i] = blas_memory_alloc(0);
    for (int i = 0; i < hold; i++) blas_memory_free(held[i]);
    served = callers;
    pthread_mutex_unlock(&mu);
    return 0;
}
