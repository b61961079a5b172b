// bpe.c - GPT-2 byte-level BPE: loading (vocab.json + merges.txt, tokenizer.json), the GPT-2
// pre-tokenizer as a hand-written scanner, and merging by rank.
//
// The references are OpenAI's original encoder.py (Python `regex`), tiktoken's GPT-2 encoding
// and HF tokenizers' ByteLevel pre-tokenizer with BPE. They split the text with the regex
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// where \s is Unicode White_Space (unicode.h has the classes), UTF-8 encode each match, map
// each byte to a printable character, and merge pieces: repeatedly the adjacent pair of lowest
// rank. qkv keys ranks by id pairs, as they do. (The npm package gpt-3-encoder differs in two
// ways: JavaScript's \s, which counts U+FEFF and not U+0085 as white space, and ranks keyed by
// the string "a,b", which for 11 GPT-2 merges whose pieces hold a comma also matches another
// split of the same text; with GPT-2's merges the latter never changes the result.)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok/tokenizer_impl.h"
#include "tok/unicode.h"
#include "base/utf8.h"
#include "base/mem.h"

enum { SYM_DEAD = -2 };
#define PAIR_EMPTY UINT64_MAX

// One merge: the pair (left id, right id) and what it becomes.
typedef struct PairSlot {
    uint64_t key; // left << 32 | right, or PAIR_EMPTY
    int rank, merged;
} PairSlot;

struct Bpe {
    int byte_id[256]; // the token of each single byte, -1 when the vocabulary lacks it
    PairSlot *pairs;  // open addressing, pair_mask + 1 slots
    size_t pair_mask;
    bool add_prefix_space; // tokenizer.json ByteLevel option: prepend ' ' to each part
};

void bpe_free(struct Bpe *b) {
    if (!b) return;
    free(b->pairs);
    free(b);
}

// ---- GPT-2's byte-to-unicode map ----

static bool byte_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

// The code point standing for byte b: printable Latin-1 bytes stand for themselves, the other
// 68 bytes for U+0100 onwards in byte order.
static uint32_t byte_cp(unsigned b) {
    if (byte_printable(b)) return b;
    uint32_t n = 0;
    for (unsigned c = 0; c < b; c++) n += !byte_printable(c);
    return 256 + n;
}

int tok_gpt2_byte_char(unsigned char b, char *out) { return utf8_encode(byte_cp(b), out); }

// ---- merge table ----

static size_t pair_slot(uint64_t k, size_t mask) {
    k *= 0x9E3779B97F4A7C15ull;
    return (size_t)(k ^ (k >> 32)) & mask;
}

static uint64_t pair_key(int l, int r) { return (uint64_t)(uint32_t)l << 32 | (uint32_t)r; }

static void pairs_init(struct Bpe *b, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    b->pairs = xmalloc(cap * sizeof *b->pairs);
    for (size_t i = 0; i < cap; i++) b->pairs[i].key = PAIR_EMPTY;
    b->pair_mask = cap - 1;
}

// Set the merge of (l, r); a later line for the same pair replaces the rank, as in the reference.
static void pair_set(struct Bpe *b, int l, int r, int rank, int merged) {
    uint64_t k = pair_key(l, r);
    size_t i = pair_slot(k, b->pair_mask);
    while (b->pairs[i].key != PAIR_EMPTY && b->pairs[i].key != k) i = (i + 1) & b->pair_mask;
    b->pairs[i] = (PairSlot){k, rank, merged};
}

static const PairSlot *pair_get(const struct Bpe *b, int l, int r) {
    uint64_t k = pair_key(l, r);
    for (size_t i = pair_slot(k, b->pair_mask);; i = (i + 1) & b->pair_mask) {
        const PairSlot *s = &b->pairs[i];
        if (s->key == k) return s;
        if (s->key == PAIR_EMPTY) return NULL;
    }
}

// ---- building a tokenizer from a vocabulary, merges and added tokens ----

typedef struct Str {
    const char *s;
    size_t len;
} Str;

typedef struct MergeIn {
    Str a, b;
    long where; // line of merges.txt or index in tokenizer.json's model.merges (1-based)
} MergeIn;

typedef struct AddedIn {
    Str content;
    int id;
    bool special;
} AddedIn;

typedef struct Spec {
    const char *vocab_file, *merges_file; // for messages
    const char *where_word;               // "line" (merges.txt) or "merge" (tokenizer.json)
    const Json *vocab;                    // object: token text -> id
    const MergeIn *merges;
    size_t n_merges;
    const AddedIn *added;
    size_t n_added;
    bool endoftext_special; // vocab.json: "<|endoftext|>" is a special token
    bool add_prefix_space;
} Spec;

// State of build(), released in one place.
typedef struct Build {
    Str *text;          // [n] token text as the file gives it
    unsigned char *src; // [n] 0: no token, 1: model vocabulary, 2: added token only
    StrMap by_text;
    Buf blob, cat;
    uint32_t *off;
    unsigned char *special;
    int *added;
    struct Bpe *bpe;
} Build;

static void build_done(Build *B) {
    free(B->text);
    free(B->src);
    strmap_free(&B->by_text);
    buf_free(&B->blob);
    buf_free(&B->cat);
    free(B->off);
    free(B->special);
    free(B->added);
    bpe_free(B->bpe);
}

// The id of a model-vocabulary token given by its text, or -1.
static int vocab_id(const Build *B, const char *s, size_t len) {
    int id = strmap_get(&B->by_text, s, len);
    return id >= 0 && B->src[id] == 1 ? id : -1;
}

// Append the bytes that the byte-level text s stands for; false (nothing appended) when a
// character of s is not in the byte-to-unicode map.
static bool append_bytes(Buf *out, Str s, const short rev[324]) {
    size_t start = out->len;
    for (size_t i = 0; i < s.len;) {
        uint32_t cp;
        i += (size_t)utf8_decode(s.s + i, s.len - i, &cp);
        if (cp >= 324 || rev[cp] < 0) {
            out->len = start;
            return false;
        }
        buf_putc(out, (char)rev[cp]);
    }
    return true;
}

static int bad_id(Err *e, const char *file, const char *what, Str tok, const Json *j) {
    char q[64];
    tok_quote(tok.s, tok.len, q, sizeof q);
    if (j && j->type == JSON_NUM)
        return err_set(e, "'%s': %s '%s' has id %.17g (ids are integers from 0 to %d)", file, what, q, j->num,
                       TOK_MAX_VOCAB - 1);
    return err_set(e, "'%s': %s '%s' has an id that is not a number", file, what, q);
}

static Tokenizer *build(const Spec *sp, Err *e) {
    const Json *v = sp->vocab;
    char q1[64], q2[64];
    Build B = {0};
    if (!v || v->type != JSON_OBJ) {
        err_set(e, "'%s': the vocabulary is not a JSON object", sp->vocab_file);
        return NULL;
    }
    // ids and their range
    int n = 0;
    for (size_t i = 0; i < v->len; i++) {
        long long id;
        if (!json_int_in(&v->items[i], 0, TOK_MAX_VOCAB - 1, &id)) {
            bad_id(e, sp->vocab_file, "token", (Str){v->keys[i], v->klens[i]}, &v->items[i]);
            return NULL;
        }
        if (id >= n) n = (int)id + 1;
    }
    for (size_t i = 0; i < sp->n_added; i++)
        if (sp->added[i].id >= n) n = sp->added[i].id + 1;
    if (n == 0) {
        err_set(e, "'%s': the vocabulary is empty", sp->vocab_file);
        return NULL;
    }
    B.text = xcalloc((size_t)n, sizeof *B.text);
    B.src = xcalloc((size_t)n, 1);
    B.special = xcalloc((size_t)n, 1);
    B.added = xcalloc(sp->n_added + 1, sizeof *B.added);
    strmap_init(&B.by_text, v->len + sp->n_added);
    for (size_t i = 0; i < v->len; i++) {
        int id = (int)v->items[i].num;
        Str s = {v->keys[i], v->klens[i]};
        if (B.src[id]) {
            err_set(e, "'%s': tokens '%s' and '%s' both have id %d", sp->vocab_file,
                    tok_quote(B.text[id].s, B.text[id].len, q1, sizeof q1), tok_quote(s.s, s.len, q2, sizeof q2), id);
            goto fail;
        }
        B.text[id] = s;
        B.src[id] = 1;
        int prev = strmap_put(&B.by_text, s.s, s.len, id);
        if (prev >= 0) {
            err_set(e, "'%s': token '%s' appears twice (ids %d and %d)", sp->vocab_file,
                    tok_quote(s.s, s.len, q1, sizeof q1), prev, id);
            goto fail;
        }
    }
    int n_added = 0;
    for (size_t i = 0; i < sp->n_added; i++) {
        const AddedIn *a = &sp->added[i];
        Str s = a->content;
        if (B.src[a->id]) {
            Str o = B.text[a->id];
            if (o.len != s.len || memcmp(o.s, s.s, s.len)) {
                err_set(e, "'%s': added token '%s' has id %d, which belongs to '%s'", sp->vocab_file,
                        tok_quote(s.s, s.len, q1, sizeof q1), a->id, tok_quote(o.s, o.len, q2, sizeof q2));
                goto fail;
            }
        } else {
            B.text[a->id] = s;
            B.src[a->id] = 2;
            int prev = strmap_put(&B.by_text, s.s, s.len, a->id);
            if (prev >= 0) {
                err_set(e, "'%s': added token '%s' has id %d but the vocabulary gives it id %d", sp->vocab_file,
                        tok_quote(s.s, s.len, q1, sizeof q1), a->id, prev);
                goto fail;
            }
        }
        bool seen = false;
        for (int k = 0; k < n_added; k++) seen |= B.added[k] == a->id;
        if (!seen) B.added[n_added++] = a->id;
        B.special[a->id] |= a->special;
    }
    for (int id = 0; id < n; id++)
        if (!B.src[id]) {
            err_set(e, "'%s': no token has id %d (ids must run from 0 to %d without gaps)", sp->vocab_file, id,
                    n - 1);
            goto fail;
        }
    int eos = strmap_get(&B.by_text, "<|endoftext|>", 13);
    if (eos >= 0 && sp->endoftext_special) {
        B.special[eos] = 1;
        B.added[n_added++] = eos;
    }

    // the bytes of each token: byte-level text mapped back to bytes; added and special tokens,
    // and text outside the map, stand for their own UTF-8
    short rev[324];
    for (int c = 0; c < 324; c++) rev[c] = -1;
    for (unsigned b = 0; b < 256; b++) rev[byte_cp(b)] = (short)b;
    B.off = xmalloc(((size_t)n + 1) * sizeof *B.off);
    for (int id = 0; id < n; id++) {
        if (B.blob.len > UINT32_MAX - 1) {
            err_set(e, "'%s': the vocabulary is too large", sp->vocab_file);
            goto fail;
        }
        B.off[id] = (uint32_t)B.blob.len;
        if (B.src[id] == 2 || B.special[id] || !append_bytes(&B.blob, B.text[id], rev))
            buf_put(&B.blob, B.text[id].s, B.text[id].len);
        buf_putc(&B.blob, 0);
    }
    if (B.blob.len > UINT32_MAX) {
        err_set(e, "'%s': the vocabulary is too large", sp->vocab_file);
        goto fail;
    }
    B.off[n] = (uint32_t)B.blob.len;

    // byte tokens and merges
    B.bpe = xcalloc(1, sizeof *B.bpe);
    B.bpe->add_prefix_space = sp->add_prefix_space;
    for (unsigned b = 0; b < 256; b++) {
        char u[4];
        B.bpe->byte_id[b] = vocab_id(&B, u, (size_t)utf8_encode(byte_cp(b), u));
    }
    if (sp->n_merges > (size_t)TOK_MAX_VOCAB) {
        err_set(e, "'%s': too many merges (%zu)", sp->merges_file, sp->n_merges);
        goto fail;
    }
    pairs_init(B.bpe, sp->n_merges);
    for (size_t i = 0; i < sp->n_merges; i++) {
        const MergeIn *m = &sp->merges[i];
        int l = vocab_id(&B, m->a.s, m->a.len), r = vocab_id(&B, m->b.s, m->b.len);
        if (l < 0 || r < 0) {
            Str u = l < 0 ? m->a : m->b;
            err_set(e, "'%s' %s %ld: unknown piece '%s'", sp->merges_file, sp->where_word, m->where,
                    tok_quote(u.s, u.len, q1, sizeof q1));
            goto fail;
        }
        buf_clear(&B.cat);
        buf_put(&B.cat, m->a.s, m->a.len);
        buf_put(&B.cat, m->b.s, m->b.len);
        int merged = vocab_id(&B, B.cat.data, B.cat.len);
        if (merged < 0) {
            err_set(e, "'%s' %s %ld: the merged piece '%s' is not in the vocabulary", sp->merges_file,
                    sp->where_word, m->where, tok_quote(B.cat.data, B.cat.len, q1, sizeof q1));
            goto fail;
        }
        pair_set(B.bpe, l, r, (int)i, merged);
    }

    Tokenizer *t = tok_alloc(TOK_KIND_BYTE_BPE);
    t->n_vocab = n;
    t->blob = buf_take(&B.blob);
    t->off = B.off, B.off = NULL;
    t->special = B.special, B.special = NULL;
    t->added = B.added, B.added = NULL;
    t->n_added = n_added;
    t->bos = t->eos = eos; // GPT-2: <|endoftext|> both ends and starts a text
    t->bpe = B.bpe, B.bpe = NULL;
    build_done(&B);
    tok_index(t);
    return t;
fail:
    build_done(&B);
    return NULL;
}

// ---- loaders ----

static int read_all(const char *path, Buf *out, Err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(e, "cannot open '%s': %s", path, strerror(errno));
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) buf_put(out, chunk, got);
    int bad = ferror(f);
    fclose(f);
    if (bad) return err_set(e, "cannot read '%s'", path);
    if (!out->data) buf_reserve(out, 0);
    return 0;
}

static void merges_push(MergeIn **m, size_t *n, size_t *cap, MergeIn x) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        MergeIn *p = xrealloc(*m, *cap * sizeof *p);
        *m = p;
    }
    (*m)[(*n)++] = x;
}

Tokenizer *bpe_load_vocab(const Json *vocab, const char *vocab_path, const char *merges_path, Err *e) {
    Buf file = {0};
    if (read_all(merges_path, &file, e)) return NULL;
    MergeIn *m = NULL;
    size_t nm = 0, cap = 0;
    Tokenizer *t = NULL;
    const char *s = file.data, *end = file.data + file.len;
    for (long line = 1; s < end; line++) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *ls = s, *le = nl ? nl : end;
        s = nl ? nl + 1 : end;
        if (le > ls && le[-1] == '\r') le--;
        if (line == 1 && le - ls >= 8 && !memcmp(ls, "#version", 8)) continue;
        Str f[2];
        int nf = 0;
        for (const char *p = ls; p < le;) {
            while (p < le && (*p == ' ' || *p == '\t')) p++;
            if (p == le) break;
            const char *q = p;
            while (q < le && *q != ' ' && *q != '\t') q++;
            if (nf < 2) f[nf] = (Str){p, (size_t)(q - p)};
            nf++;
            p = q;
        }
        if (nf == 0) continue;
        if (nf != 2) {
            err_set(e, "'%s' line %ld: expected two pieces separated by a space", merges_path, line);
            goto done;
        }
        merges_push(&m, &nm, &cap, (MergeIn){f[0], f[1], line});
    }
    Spec sp = {vocab_path, merges_path, "line", vocab, m, nm, NULL, 0, true, false};
    t = build(&sp, e);
done:
    free(m);
    buf_free(&file);
    return t;
}

Tokenizer *tok_load_vocab_merges(const char *vocab_path, const char *merges_path, Err *e) {
    Json *j = json_parse_file(vocab_path, e);
    if (!j) return NULL;
    Tokenizer *t = bpe_load_vocab(j, vocab_path, merges_path, e);
    json_free(j);
    return t;
}

// Check that pt is GPT-2's ByteLevel pre-tokenizer (alone or in a Sequence of them).
static int check_pre_tokenizer(const Json *pt, const char *path, bool *add_prefix_space, Err *e) {
    const char *type = json_str_or(pt, "type", NULL);
    char q[64];
    if (!type) return err_set(e, "'%s': pre_tokenizer is missing (only GPT-2's ByteLevel is supported)", path);
    if (!strcmp(type, "Sequence")) {
        const Json *list = json_get(pt, "pretokenizers");
        if (!list || list->type != JSON_ARR || !list->len)
            return err_set(e, "'%s': pre_tokenizer Sequence without pretokenizers", path);
        for (size_t i = 0; i < list->len; i++)
            if (check_pre_tokenizer(&list->items[i], path, add_prefix_space, e)) return -1;
        return 0;
    }
    if (strcmp(type, "ByteLevel"))
        return err_set(e, "'%s': pre-tokenizer '%s' is not supported (only GPT-2's ByteLevel)", path,
                       tok_quote(type, strlen(type), q, sizeof q));
    if (!json_bool_or(pt, "use_regex", true))
        return err_set(e, "'%s': ByteLevel without use_regex is not supported", path);
    *add_prefix_space |= json_bool_or(pt, "add_prefix_space", false);
    return 0;
}

static bool json_str_item(const Json *j) { return j && j->type == JSON_STR; }

Tokenizer *bpe_load_json(const Json *root, const char *path, Err *e) {
    const Json *model = json_get(root, "model");
    const Json *vocab = json_get(model, "vocab");
    const Json *merges = json_get(model, "merges");
    const Json *added = json_get(root, "added_tokens");
    const Json *norm = json_get(root, "normalizer");
    char q[64];
    if (!vocab || vocab->type != JSON_OBJ) {
        err_set(e, "'%s': model.vocab is missing or not an object", path);
        return NULL;
    }
    if (!merges || merges->type != JSON_ARR) {
        err_set(e, "'%s': model.merges is missing or not an array", path);
        return NULL;
    }
    if (json_bool_or(model, "byte_fallback", false) || json_bool_or(model, "ignore_merges", false) ||
        *json_str_or(model, "continuing_subword_prefix", "") || *json_str_or(model, "end_of_word_suffix", "")) {
        err_set(e, "'%s': this BPE variant (byte_fallback, ignore_merges or subword affixes) is not supported",
                path);
        return NULL;
    }
    if (norm && norm->type != JSON_NULL) {
        const char *type = json_str_or(norm, "type", "?");
        err_set(e, "'%s': normalizer '%s' is not supported", path, tok_quote(type, strlen(type), q, sizeof q));
        return NULL;
    }
    bool aps = false;
    if (check_pre_tokenizer(json_get(root, "pre_tokenizer"), path, &aps, e)) return NULL;
    if (added && added->type != JSON_ARR && added->type != JSON_NULL) {
        err_set(e, "'%s': added_tokens is not an array", path);
        return NULL;
    }

    MergeIn *m = xcalloc(merges->len, sizeof *m);
    size_t na = added && added->type == JSON_ARR ? added->len : 0;
    AddedIn *a = xcalloc(na, sizeof *a);
    Tokenizer *t = NULL;
    for (size_t i = 0; i < merges->len; i++) {
        const Json *it = &merges->items[i];
        m[i].where = (long)i + 1;
        if (it->type == JSON_STR) {
            const char *sp = memchr(it->str, ' ', it->len);
            if (sp && sp > it->str && sp + 1 < it->str + it->len &&
                !memchr(sp + 1, ' ', (size_t)(it->str + it->len - sp - 1))) {
                m[i].a = (Str){it->str, (size_t)(sp - it->str)};
                m[i].b = (Str){sp + 1, (size_t)(it->str + it->len - sp - 1)};
                continue;
            }
        } else if (it->type == JSON_ARR && it->len == 2 && json_str_item(&it->items[0]) &&
                   json_str_item(&it->items[1])) {
            m[i].a = (Str){it->items[0].str, it->items[0].len};
            m[i].b = (Str){it->items[1].str, it->items[1].len};
            continue;
        }
        err_set(e, "'%s' merge %zu: expected \"a b\" or [\"a\", \"b\"]", path, i + 1);
        goto done;
    }
    for (size_t i = 0; i < na; i++) {
        const Json *it = &added->items[i], *content = json_get(it, "content");
        long long id;
        if (!json_str_item(content)) {
            err_set(e, "'%s': added token %zu has no content", path, i + 1);
            goto done;
        }
        a[i].content = (Str){content->str, content->len};
        if (!json_int_in(json_get(it, "id"), 0, TOK_MAX_VOCAB - 1, &id)) {
            bad_id(e, path, "added token", a[i].content, json_get(it, "id"));
            goto done;
        }
        a[i].id = (int)id;
        a[i].special = json_bool_or(it, "special", false);
    }
    Spec spec = {path, path, "merge", vocab, m, merges->len, a, na, false, aps};
    t = build(&spec, e);
done:
    free(m);
    free(a);
    return t;
}

Tokenizer *tok_bytes_new(void) {
    Tokenizer *t = tok_alloc(TOK_KIND_BYTE_BPE);
    Buf blob = {0};
    t->n_vocab = 257;
    t->off = xcalloc(258, sizeof *t->off);
    t->special = xcalloc(257, 1);
    t->added = xcalloc(1, sizeof *t->added);
    t->bpe = xcalloc(1, sizeof *t->bpe);
    // ids in GPT-2's order: the printable bytes first, then the others
    int id = 0;
    for (int pass = 0; pass < 2; pass++)
        for (unsigned b = 0; b < 256; b++) {
            if (byte_printable(b) != (pass == 0)) continue;
            t->off[id] = (uint32_t)blob.len;
            buf_putc(&blob, (char)b);
            buf_putc(&blob, 0);
            t->bpe->byte_id[b] = id++;
        }
    t->off[256] = (uint32_t)blob.len;
    buf_put(&blob, "<|endoftext|>", 14); // with its NUL
    t->off[257] = (uint32_t)blob.len;
    t->blob = buf_take(&blob);
    t->special[256] = 1;
    t->added[0] = 256;
    t->n_added = 1;
    t->bos = t->eos = 256;
    pairs_init(t->bpe, 0);
    tok_index(t);
    return t;
}

// ---- the pre-tokenizer ----

// The code point at s[i] of well-formed UTF-8; its length in *len.
static inline uint32_t cp_at(const unsigned char *s, size_t n, size_t i, size_t *len) {
    if (s[i] < 0x80) {
        *len = 1;
        return s[i];
    }
    uint32_t cp;
    *len = (size_t)utf8_decode((const char *)s + i, n - i, &cp);
    return cp;
}

static inline UniClass class_at(const unsigned char *s, size_t n, size_t i, size_t *len) {
    if (s[i] < 0x80) {
        *len = 1;
        return (UniClass)uni_latin1[s[i]];
    }
    return uni_class(cp_at(s, n, i, len));
}

// The end of the regex match that starts at s[i] (i < n), alternatives tried in order:
// 's 't 're 've 'm 'll 'd | ' '?L+ | ' '?N+ | ' '?[^\s L N]+ | \s+(?!\S) | \s+
static size_t pretok_end(const unsigned char *s, size_t n, size_t i) {
    if (s[i] == '\'' && i + 1 < n) {
        unsigned char a = s[i + 1], b = i + 2 < n ? s[i + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
    size_t len;
    UniClass cls = class_at(s, n, i, &len);
    size_t j = i + len;
    if (s[i] == ' ' && j < n) { // an optional space before a run of letters, numbers or others
        UniClass next = class_at(s, n, j, &len);
        if (next != UNI_S) cls = next, j += len;
    }
    if (cls != UNI_S) {
        while (j < n && class_at(s, n, j, &len) == cls) j += len;
        return j;
    }
    // white space: the whole run at the end of the text; before anything else the run less
    // its last character (\s+(?!\S) backtracks), or the single character (\s+)
    size_t last = i;
    while (j < n && class_at(s, n, j, &len) == UNI_S) last = j, j += len;
    return j == n || last == i ? j : last;
}

// ---- merging ----

typedef struct Sym {
    int id, prev, next; // a linked list over the word's bytes; merged-away symbols are SYM_DEAD
} Sym;

typedef struct Cand {
    int rank, l, r; // the merge of symbols l and r (adjacent when pushed)
    int lid, rid;   // their ids when pushed: the candidate is stale once either changed
    int merged;
} Cand;

// Scratch space of one tok_encode call.
typedef struct Work {
    Sym *sym;
    Cand *heap, *round; // each 3 * cap: a word of n symbols pushes at most 3n candidates
    size_t cap, hn;
} Work;

static void work_reserve(Work *w, size_t n) {
    if (n <= w->cap) return;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < n) cap *= 2;
    free(w->sym);
    free(w->heap);
    free(w->round);
    w->sym = xmalloc(cap * sizeof *w->sym);
    w->heap = xmalloc(3 * cap * sizeof *w->heap);
    w->round = xmalloc(3 * cap * sizeof *w->round);
    w->cap = cap;
}

static void work_free(Work *w) {
    free(w->sym);
    free(w->heap);
    free(w->round);
}

static inline bool cand_less(const Cand *a, const Cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->l < b->l);
}

static void heap_push(Work *w, Cand c) {
    size_t i = w->hn++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
}

static Cand heap_pop(Work *w) {
    Cand top = w->heap[0], last = w->heap[--w->hn];
    size_t i = 0, n = w->hn;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && cand_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!cand_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

static void try_pair(const struct Bpe *b, Work *w, int l, int r) {
    int lid = w->sym[l].id, rid = w->sym[r].id;
    if (lid < 0 || rid < 0) return;
    const PairSlot *p = pair_get(b, lid, rid);
    if (p) heap_push(w, (Cand){p->rank, l, r, lid, rid, p->merged});
}

static inline bool cand_valid(const Work *w, const Cand *c) {
    return w->sym[c->l].id == c->lid && w->sym[c->l].next == c->r && w->sym[c->r].id == c->rid;
}

static int no_byte(Err *e, unsigned char b) {
    return err_set(e, "the vocabulary has no token for the byte 0x%02X", b);
}

// Append the ids of one pre-token (n >= 1 bytes). Each round takes the lowest rank among the
// adjacent pairs and merges all its occurrences left to right (a rank names one pair), as the
// reference does; candidates a merge made stale are skipped when they come up.
static int bpe_word(const struct Bpe *b, const unsigned char *s, size_t n, Work *w, IntVec *out, Err *e) {
    if (n == 1) {
        if (b->byte_id[s[0]] < 0) return no_byte(e, s[0]);
        iv_push(out, b->byte_id[s[0]]);
        return 0;
    }
    if (n > (size_t)(INT32_MAX / 4)) return err_set(e, "a pre-token of %zu bytes is too long", n);
    work_reserve(w, n);
    Sym *sym = w->sym;
    for (size_t i = 0; i < n; i++) sym[i] = (Sym){b->byte_id[s[i]], (int)i - 1, (int)i + 1};
    sym[n - 1].next = -1;
    w->hn = 0;
    for (size_t i = 0; i + 1 < n; i++) try_pair(b, w, (int)i, (int)i + 1);
    while (w->hn) {
        Cand c = heap_pop(w);
        if (!cand_valid(w, &c)) continue;
        size_t rn = 0;
        w->round[rn++] = c;
        while (w->hn && w->heap[0].rank == c.rank) w->round[rn++] = heap_pop(w);
        for (size_t k = 0; k < rn; k++) { // in order of position
            Cand d = w->round[k];
            if (!cand_valid(w, &d)) continue;
            int nx = sym[d.r].next;
            sym[d.l].id = d.merged;
            sym[d.l].next = nx;
            if (nx >= 0) sym[nx].prev = d.l;
            sym[d.r].id = SYM_DEAD;
            if (sym[d.l].prev >= 0) try_pair(b, w, sym[d.l].prev, d.l);
            if (nx >= 0) try_pair(b, w, d.l, nx);
        }
    }
    for (int i = 0; i >= 0; i = sym[i].next) {
        if (sym[i].id < 0) return no_byte(e, s[i]);
        iv_push(out, sym[i].id);
    }
    return 0;
}

int bpe_encode(const Tokenizer *t, const char *text, size_t n, IntVec *out, Err *e) {
    const struct Bpe *b = t->bpe;
    Buf tmp = {0};
    const unsigned char *s = (const unsigned char *)text;
    if (b->add_prefix_space && n && text[0] != ' ') {
        buf_putc(&tmp, ' ');
        buf_put(&tmp, text, n);
        s = (const unsigned char *)tmp.data, n = tmp.len;
    }
    Work w = {0};
    int rc = 0;
    for (size_t i = 0; i < n && !rc;) {
        size_t j = pretok_end(s, n, i);
        rc = bpe_word(b, s + i, j - i, &w, out, e);
        i = j;
    }
    work_free(&w);
    buf_free(&tmp);
    return rc;
}
