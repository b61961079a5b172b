// strmap.h - an open-addressing hash map from byte strings to non-negative ints.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct StrSlot {
    const char *key;
    uint32_t len;
    uint32_t hash;
    int val; // -1: empty
} StrSlot;

// Keys are borrowed: they must outlive the map. Zero-initialise or strmap_init, then
// strmap_free. The map grows as keys are added.
typedef struct StrMap {
    StrSlot *slots;
    size_t mask, count;
} StrMap;

// Prepare m for about n_keys keys (it still grows past them).
void strmap_init(StrMap *m, size_t n_keys);
// Insert k -> val (val >= 0) unless k is present; returns the value already stored for k, or
// -1 when inserted.
int strmap_put(StrMap *m, const char *k, size_t len, int val);
// Insert k -> val, or replace the value stored for k.
void strmap_set(StrMap *m, const char *k, size_t len, int val);
// The value stored for k, or -1.
int strmap_get(const StrMap *m, const char *k, size_t len);
void strmap_free(StrMap *m);
