// kernels.c - choosing the kernel table: from the CPU at the first use, or as the
// environment (QKV_KERNELS=scalar|avx2|avx512|avx512vnni|auto) or a test asks.
//
// The choice is process-wide state on purpose: it describes the CPU, which every thread
// shares. It is made once (pthread_once) and changed only by kern_use.
#include "kern/kernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { K_SCALAR, K_AVX2, K_AVX512, K_AVX512VNNI, K_COUNT };

static const char *const names[K_COUNT] = {"scalar", "avx2", "avx512", "avx512vnni"};
static Kernels filled[K_COUNT]; // each table with its NULL entries taken from the scalar one
static _Atomic(const Kernels *) current;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char note[160];

static bool cpu_has(int k) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    switch (k) {
    case K_AVX2:
        return kern_avx2_table.name && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
    case K_AVX512:
        return kern_avx512_table.name && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma");
    case K_AVX512VNNI:
        return kern_avx512vnni_table.name && __builtin_cpu_supports("avx512vnni") && cpu_has(K_AVX512);
    default: return true;
    }
#else
    return k == K_SCALAR;
#endif
}

static int find(const char *name) {
    for (int k = 0; k < K_COUNT; k++)
        if (!strcmp(name, names[k])) return k;
    return -1;
}

static int best(void) {
    for (int k = K_COUNT - 1; k > 0; k--)
        if (cpu_has(k)) return k;
    return K_SCALAR;
}

static void fill(Kernels *f, const Kernels *t) {
    const Kernels *s = &kern_scalar_table;
    *f = t->name ? *t : *s;
    for (int d = 0; d < DT_COUNT; d++) {
        if (!f->row_f32[d]) f->row_f32[d] = s->row_f32[d];
        if (!f->mv_in_out[d]) f->mv_in_out[d] = s->mv_in_out[d];
        if (!f->mv_out_in[d]) f->mv_out_in[d] = s->mv_out_in[d];
        if (!f->mv_out_in_q[d]) f->mv_out_in_q[d] = s->mv_out_in_q[d];
        if (!f->mv_out_in_fx[d]) f->mv_out_in_fx[d] = s->mv_out_in_fx[d];
    }
    if (!f->quant_x) f->quant_x = s->quant_x;
    if (!f->softmax) f->softmax = s->softmax;
    if (!f->layernorm) f->layernorm = s->layernorm;
    if (!f->rmsnorm) f->rmsnorm = s->rmsnorm;
    if (!f->gelu_erf) f->gelu_erf = s->gelu_erf;
    if (!f->gelu_tanh_to) f->gelu_tanh_to = s->gelu_tanh_to;
    if (!f->gelu_tanh_backward) f->gelu_tanh_backward = s->gelu_tanh_backward;
    if (!f->swiglu) f->swiglu = s->swiglu;
    if (!f->q8_0_from_f32) f->q8_0_from_f32 = s->q8_0_from_f32;
    if (!f->f16_from_f32) f->f16_from_f32 = s->f16_from_f32;
}

static void init(void) {
    const Kernels *tables[K_COUNT] = {&kern_scalar_table, &kern_avx2_table, &kern_avx512_table,
                                              &kern_avx512vnni_table};
    for (int k = 0; k < K_COUNT; k++) fill(&filled[k], tables[k]);
    int k = best();
    const char *want = getenv("QKV_KERNELS");
    if (want && *want && strcmp(want, "auto")) {
        int w = find(want);
        if (w < 0)
            snprintf(note, sizeof note, "QKV_KERNELS=%.20s is not one of scalar, avx2, avx512, avx512vnni, auto: using %s", want,
                     names[k]);
        else if (!cpu_has(w))
            snprintf(note, sizeof note, "QKV_KERNELS=%s: this CPU lacks the instructions; using %s", names[w], names[k]);
        else
            k = w;
    }
    atomic_store(&current, &filled[k]);
}

const Kernels *kern_get(void) {
    const Kernels *k = atomic_load_explicit(&current, memory_order_acquire);
    if (k) return k;
    pthread_once(&once, init);
    return atomic_load(&current);
}

const char *kern_name(void) { return kern_get()->name; }

bool kern_supported(const char *name) {
    int k = find(name);
    return k >= 0 && cpu_has(k);
}

int kern_use(const char *name, Err *e) {
    kern_get();
    int k = strcmp(name, "auto") ? find(name) : best();
    if (k < 0) return err_set(e, "unknown kernels '%.20s' (scalar, avx2, avx512, avx512vnni or auto)", name);
    if (!cpu_has(k)) return err_set(e, "kernels '%s': this CPU lacks the instructions", names[k]);
    atomic_store(&current, &filled[k]);
    return 0;
}

const char *kern_note(void) {
    kern_get();
    return note[0] ? note : NULL;
}
