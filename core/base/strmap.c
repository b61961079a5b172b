// strmap.c - open addressing with linear probing, kept at most half full.
#include "base/strmap.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

static uint32_t str_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; // FNV-1a, then a final mix
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (uint32_t)h;
}

static void alloc_slots(StrMap *m, size_t cap) {
    m->slots = xmalloc(cap * sizeof *m->slots);
    for (size_t i = 0; i < cap; i++) m->slots[i].val = -1;
    m->mask = cap - 1;
    m->count = 0;
}

void strmap_init(StrMap *m, size_t n_keys) {
    size_t cap = 16;
    while (cap < 2 * n_keys) cap *= 2;
    alloc_slots(m, cap);
}

static void insert_slot(StrMap *m, const StrSlot *s) {
    for (size_t i = s->hash & m->mask;; i = (i + 1) & m->mask)
        if (m->slots[i].val < 0) {
            m->slots[i] = *s;
            m->count++;
            return;
        }
}

// The slot holding k, or NULL.
static StrSlot *find(const StrMap *m, const char *k, size_t len) {
    if (!m->slots) return NULL;
    uint32_t h = str_hash(k, len);
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        StrSlot *s = &m->slots[i];
        if (s->val < 0) return NULL;
        if (s->hash == h && s->len == len && !memcmp(s->key, k, len)) return s;
    }
}

int strmap_put(StrMap *m, const char *k, size_t len, int val) {
    if (!m->slots) strmap_init(m, 8);
    const StrSlot *had = find(m, k, len);
    if (had) return had->val;
    uint32_t h = str_hash(k, len);
    if (2 * (m->count + 1) > m->mask + 1) { // keep it at most half full
        StrSlot *old = m->slots;
        size_t n = m->mask + 1;
        alloc_slots(m, 2 * n);
        for (size_t i = 0; i < n; i++)
            if (old[i].val >= 0) insert_slot(m, &old[i]);
        free(old);
    }
    StrSlot s = {k, (uint32_t)len, h, val};
    insert_slot(m, &s);
    return -1;
}

int strmap_get(const StrMap *m, const char *k, size_t len) {
    const StrSlot *s = find(m, k, len);
    return s ? s->val : -1;
}

void strmap_set(StrMap *m, const char *k, size_t len, int val) {
    StrSlot *s = find(m, k, len);
    if (s) s->val = val;
    else strmap_put(m, k, len, val);
}

void strmap_free(StrMap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}
