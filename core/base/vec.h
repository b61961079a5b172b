// vec.h - a growable int vector (token ids).
#pragma once
#include <stdlib.h>

#include "base/mem.h"

typedef struct IntVec {
    int *v;
    int n, cap;
} IntVec;

static inline void iv_push(IntVec *a, int x) {
    if (a->n == a->cap) {
        int nc = a->cap ? a->cap * 2 : 16;
        a->v = (int *)xrealloc(a->v, (size_t)nc * sizeof *a->v);
        a->cap = nc;
    }
    a->v[a->n++] = x;
}

static inline void iv_free(IntVec *a) {
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}
