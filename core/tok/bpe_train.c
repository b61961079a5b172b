// bpe_train.c - byte-level BPE training (see bpe_train.h).
#include "tok/bpe_train.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/strmap.h"
#include "base/utf8.h"
#include "base/vec.h"
#include "tok/tokenizer.h"

typedef struct Word {
    char *bytes; // the word's text (the map's key)
    int64_t count;
    int *sym; // its symbols (token ids), n of them
    int n;
} Word;

struct BpeTrainer {
    StrMap index; // word text -> index in words
    Word *words;
    int n_words, cap_words;
    volatile sig_atomic_t *cancel; // polled by feed (each line) and train (each merge)
};

BpeTrainer *bpe_trainer_new(void) { return xcalloc(1, sizeof(BpeTrainer)); }

void bpe_trainer_set_cancel(BpeTrainer *t, volatile sig_atomic_t *cancel) { t->cancel = cancel; }

static bool cancelled(const BpeTrainer *t) { return t->cancel && *t->cancel; }

void bpe_trainer_free(BpeTrainer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_words; i++) free(t->words[i].bytes), free(t->words[i].sym);
    free(t->words);
    strmap_free(&t->index);
    free(t);
}

static void count_word(BpeTrainer *t, const char *s, size_t n) {
    int w = strmap_get(&t->index, s, n);
    if (w < 0) {
        if (t->n_words == t->cap_words) {
            t->cap_words = t->cap_words ? 2 * t->cap_words : 1024;
            t->words = xrealloc(t->words, sizeof(Word) * (size_t)t->cap_words);
        }
        w = t->n_words++;
        t->words[w] = (Word){xmemdup0(s, n), 0, NULL, 0};
        strmap_put(&t->index, t->words[w].bytes, n, w);
    }
    t->words[w].count++;
}

int bpe_trainer_feed(BpeTrainer *t, const char *text, size_t n, Err *e) {
    size_t bad = utf8_invalid_at(text, n);
    if (bad != SIZE_MAX) {
        size_t line, byte;
        text_line_of(text, bad, &line, &byte);
        return err_set(e, "the text is not UTF-8 (line %zu, byte %zu of it)", line, byte);
    }
    for (size_t line = 0; line < n;) {
        if (cancelled(t)) return err_set(e, "interrupted");
        const char *nl = memchr(text + line, '\n', n - line);
        size_t end = nl ? (size_t)(nl - text) + 1 : n;
        for (size_t i = line; i < end;) {
            size_t j = tok_gpt2_piece_end(text + line, end - line, i - line) + line;
            count_word(t, text + i, j - i);
            i = j;
        }
        line = end;
    }
    return 0;
}

// ---- pair counts: an open-addressing map from (left, right) to an int64 and a slot ----

typedef struct PairMap {
    uint64_t *key; // (left + 1) << 32 | right; 0: empty
    int64_t *count;
    int *where; // index of the pair's word list this step, -1 when none
    size_t mask, n;
} PairMap;

static uint64_t pkey(int l, int r) { return (uint64_t)(uint32_t)(l + 1) << 32 | (uint32_t)r; }

static size_t pm_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k;
}

static void pm_init(PairMap *m, size_t cap) {
    m->key = xcalloc(cap, sizeof *m->key);
    m->count = xcalloc(cap, sizeof *m->count);
    m->where = xmalloc(cap * sizeof *m->where);
    m->mask = cap - 1, m->n = 0;
}

static void pm_free(PairMap *m) { free(m->key), free(m->count), free(m->where); }

static size_t pm_slot(PairMap *m, int l, int r);

static void pm_grow(PairMap *m) {
    PairMap o = *m;
    pm_init(m, 2 * (o.mask + 1));
    for (size_t i = 0; i <= o.mask; i++)
        if (o.key[i]) {
            size_t s = pm_slot(m, (int)(o.key[i] >> 32) - 1, (int)(uint32_t)o.key[i]);
            m->count[s] = o.count[i], m->where[s] = o.where[i];
        }
    pm_free(&o);
}

// The slot of (l, r), inserted (count 0, no list) when absent.
static size_t pm_slot(PairMap *m, int l, int r) {
    if (2 * (m->n + 1) > m->mask + 1) pm_grow(m);
    uint64_t k = pkey(l, r);
    size_t i = pm_hash(k) & m->mask;
    while (m->key[i] && m->key[i] != k) i = (i + 1) & m->mask;
    if (!m->key[i]) m->key[i] = k, m->count[i] = 0, m->where[i] = -1, m->n++;
    return i;
}

// ---- the queue: the most frequent pair first, ties the smallest (left, right) ----

typedef struct Merge {
    int64_t count;
    int l, r;
    int pos; // its word list (index into lists)
} Merge;

typedef struct Queue {
    Merge *a;
    size_t n, cap;
} Queue;

static bool before(const Merge *x, const Merge *y) {
    if (x->count != y->count) return x->count > y->count;
    if (x->l != y->l) return x->l < y->l;
    return x->r < y->r;
}

static void q_push(Queue *q, Merge m) {
    if (q->n == q->cap) {
        q->cap = q->cap ? 2 * q->cap : 1024;
        q->a = xrealloc(q->a, q->cap * sizeof *q->a);
    }
    size_t i = q->n++;
    while (i && before(&m, &q->a[(i - 1) / 2])) q->a[i] = q->a[(i - 1) / 2], i = (i - 1) / 2;
    q->a[i] = m;
}

static Merge q_pop(Queue *q) {
    Merge top = q->a[0], last = q->a[--q->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->n) break;
        if (c + 1 < q->n && before(&q->a[c + 1], &q->a[c])) c++;
        if (!before(&q->a[c], &last)) break;
        q->a[i] = q->a[c], i = c;
    }
    if (q->n) q->a[i] = last;
    return top;
}

// ---- training ----

typedef struct Lists {
    IntVec *v; // word lists, reused through a free list
    int n, cap;
    IntVec free_ids;
} Lists;

static int list_new(Lists *L) {
    if (L->free_ids.n) return L->free_ids.v[--L->free_ids.n];
    if (L->n == L->cap) {
        L->cap = L->cap ? 2 * L->cap : 1024;
        L->v = xrealloc(L->v, sizeof(IntVec) * (size_t)L->cap);
    }
    L->v[L->n] = (IntVec){0};
    return L->n++;
}

static void list_release(Lists *L, int i) {
    L->v[i].n = 0;
    iv_push(&L->free_ids, i);
}

typedef struct Run {
    PairMap pairs;
    Lists lists;
    IntVec touched; // the pairs (left, right) whose word list was opened this step
} Run;

// Add d * count to the pair (l, r) of word w; a pair that gains remembers the word.
static void change(Run *R, int l, int r, int d, int64_t count, int w) {
    size_t s = pm_slot(&R->pairs, l, r);
    R->pairs.count[s] += d * count;
    if (d <= 0) return;
    if (R->pairs.where[s] < 0) {
        R->pairs.where[s] = list_new(&R->lists);
        iv_push(&R->touched, l);
        iv_push(&R->touched, r);
    }
    IntVec *v = &R->lists.v[R->pairs.where[s]];
    if (!v->n || v->v[v->n - 1] != w) iv_push(v, w);
}

// Merge every (a, b) of w into id, left to right, updating the pair counts.
static void merge_word(Run *R, Word *wd, int w, int a, int b, int id) {
    int k = 0;
    for (int i = 0; i < wd->n; i++) {
        if (i + 1 < wd->n && wd->sym[i] == a && wd->sym[i + 1] == b) {
            if (k > 0) {
                change(R, wd->sym[k - 1], a, -1, wd->count, w);
                change(R, wd->sym[k - 1], id, 1, wd->count, w);
            }
            if (i + 2 < wd->n) {
                change(R, b, wd->sym[i + 2], -1, wd->count, w);
                change(R, id, wd->sym[i + 2], 1, wd->count, w);
            }
            wd->sym[k++] = id;
            i++;
        } else {
            wd->sym[k++] = wd->sym[i];
        }
    }
    wd->n = k;
}

// Turn the word lists opened this step into queue entries (pairs that still occur).
static void flush(Run *R, Queue *q) {
    for (int i = 0; i < R->touched.n; i += 2) {
        int l = R->touched.v[i], r = R->touched.v[i + 1];
        size_t s = pm_slot(&R->pairs, l, r);
        int list = R->pairs.where[s];
        R->pairs.where[s] = -1;
        if (R->pairs.count[s] > 0) q_push(q, (Merge){R->pairs.count[s], l, r, list});
        else list_release(&R->lists, list);
    }
    R->touched.n = 0;
}

int bpe_trainer_train(BpeTrainer *t, int vocab_size, int64_t min_frequency, const char *const *specials,
                      int n_specials, Buf *vocab, Buf *merges, BpeTrainResult *res, Err *e) {
    if (vocab_size < n_specials + 256)
        return err_set(e, "vocab=%d: at least %d (the specials and the 256 bytes)", vocab_size, n_specials + 256);
    if (!t->n_words) return err_set(e, "no text to train on");
    // the token strings (GPT-2 characters), by id
    int cap = vocab_size + 1;
    char **str = xcalloc((size_t)cap, sizeof *str);
    size_t *slen = xcalloc((size_t)cap, sizeof *slen);
    StrMap by_str = {0};
    int n_ids = 0;
    for (int i = 0; i < n_specials; i++) {
        str[n_ids] = xstrdup(specials[i]), slen[n_ids] = strlen(specials[i]);
        strmap_put(&by_str, str[n_ids], slen[n_ids], n_ids);
        n_ids++;
    }
    // the bytes in the code point order of their characters
    int byte_id[256];
    uint32_t cp[256];
    int order[256];
    for (int b = 0; b < 256; b++) {
        char ch[5];
        tok_gpt2_byte_char((unsigned char)b, ch);
        utf8_decode(ch, 4, &cp[b]);
        order[b] = b;
    }
    for (int i = 1; i < 256; i++)
        for (int j = i; j > 0 && cp[order[j - 1]] > cp[order[j]]; j--) {
            int x = order[j];
            order[j] = order[j - 1], order[j - 1] = x;
        }
    for (int i = 0; i < 256; i++) {
        int b = order[i];
        char ch[5] = {0};
        slen[n_ids] = (size_t)tok_gpt2_byte_char((unsigned char)b, ch);
        str[n_ids] = xstrdup(ch);
        strmap_put(&by_str, str[n_ids], slen[n_ids], n_ids);
        byte_id[b] = n_ids++;
    }
    // the words as byte ids, their pairs counted
    Run R = {0};
    pm_init(&R.pairs, 1 << 12);
    for (int w = 0; w < t->n_words; w++) {
        Word *wd = &t->words[w];
        size_t n = strlen(wd->bytes);
        free(wd->sym);
        wd->sym = xmalloc(sizeof(int) * (n ? n : 1));
        wd->n = (int)n;
        for (size_t i = 0; i < n; i++) wd->sym[i] = byte_id[(unsigned char)wd->bytes[i]];
        for (int i = 0; i + 1 < wd->n; i++) change(&R, wd->sym[i], wd->sym[i + 1], 1, wd->count, w);
    }
    Queue q = {0};
    flush(&R, &q);
    buf_puts(merges, "#version: 0.2\n");
    int n_merges = 0, rc = 0;
    int64_t last = 0;
    while (n_ids < vocab_size && q.n) {
        if (cancelled(t)) { // polled before the pop: nothing of the queue is lost
            rc = err_set(e, "interrupted");
            break;
        }
        Merge top = q_pop(&q);
        int64_t now = R.pairs.count[pm_slot(&R.pairs, top.l, top.r)];
        if (top.count != now) { // stale: its words merged since; back with the count of today
            top.count = now;
            q_push(&q, top);
            continue;
        }
        if (top.count < 1 || top.count < min_frequency) {
            list_release(&R.lists, top.pos);
            break;
        }
        size_t nl = slen[top.l] + slen[top.r];
        char *s = xmalloc(nl + 1);
        memcpy(s, str[top.l], slen[top.l]);
        memcpy(s + slen[top.l], str[top.r], slen[top.r]);
        s[nl] = 0;
        int id = strmap_get(&by_str, s, nl);
        if (id < 0) {
            id = n_ids++;
            str[id] = s, slen[id] = nl;
            strmap_put(&by_str, s, nl, id);
        } else {
            free(s);
        }
        buf_printf(merges, "%s %s\n", str[top.l], str[top.r]);
        n_merges++;
        last = top.count;
        // the list array may move while merging opens lists: index it afresh each time
        for (int i = 0; i < R.lists.v[top.pos].n; i++) {
            int w = R.lists.v[top.pos].v[i];
            merge_word(&R, &t->words[w], w, top.l, top.r, id);
        }
        list_release(&R.lists, top.pos);
        flush(&R, &q);
    }
    JsonW jw;
    jw_init(&jw, vocab);
    jw_obj(&jw);
    for (int i = 0; i < n_ids; i++) {
        jw_key(&jw, str[i]);
        jw_int(&jw, i);
    }
    jw_obj_end(&jw);
    buf_putc(vocab, '\n');
    if (res) *res = (BpeTrainResult){n_ids, n_merges, t->n_words, last};
    for (int i = 0; i < n_ids; i++) free(str[i]);
    free(str), free(slen);
    strmap_free(&by_str);
    pm_free(&R.pairs);
    for (int i = 0; i < R.lists.n; i++) iv_free(&R.lists.v[i]);
    free(R.lists.v);
    iv_free(&R.lists.free_ids);
    iv_free(&R.touched);
    free(q.a);
    return rc;
}
