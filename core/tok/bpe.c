// bpe.c - BPE tokenizers: loading (vocab.json + merges.txt, tokenizer.json), the
// pre-tokenizers of the families qkv reads as hand-written scanners, and merging by rank.
//
// Two kinds of symbols. Byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM) splits the text with
// a pre-tokenizer regex, maps every byte of a piece to a printable character and merges
// those. SentencePiece-style BPE (Llama 2, Mistral, llama2.c) keeps the text whole, with
// spaces written as U+2581 ("\u2581") and one in front, starts from its characters (a
// character the vocabulary lacks becomes its UTF-8 bytes as <0xNN> tokens: byte fallback)
// and merges those. Pieces are stored as the bytes they stand for (U+2581 as a space, <0xNN>
// as the byte), so decoding is concatenation.
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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tok/tokenizer_impl.h"
#include "base/gguf.h"
#include "tok/unicode.h"
#include "tok/unicode_norm.h"
#include "base/utf8.h"
#include "base/fs.h"
#include "base/mem.h"

enum { SYM_DEAD = -2 };
#define PAIR_EMPTY UINT64_MAX

// One merge: the pair (left id, right id) and what it becomes.
typedef struct PairSlot {
    uint64_t key; // left << 32 | right, or PAIR_EMPTY
    int rank, merged;
} PairSlot;

// The pre-tokenizer: the regex of each family, written out as a scanner.
typedef enum {
    PRE_GPT2,        // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    PRE_GPT2_DIGITS, // every \p{N} alone first, then GPT-2's (SmolLM, StarCoder: Digits + ByteLevel)
    PRE_LLAMA3,      // Llama 3's Split regex, numbers in runs of up to three
    PRE_QWEN2,       // the same with single digits
    PRE_NONE,        // SentencePiece-style: the text is one piece
} PreTok;

struct Bpe {
    int byte_id[256]; // byte-level: the token of each byte; SentencePiece: its <0xNN> token; -1 when absent
    PairSlot *pairs;  // open addressing, pair_mask + 1 slots
    size_t pair_mask;
    PreTok pre;
    bool byte_level;       // symbols are bytes (else characters, SentencePiece-style)
    bool add_prefix_space; // ByteLevel option: prepend ' ' to each part
    bool ignore_merges;    // a piece that is a vocabulary token is taken whole (Llama 3)
    unsigned char *model;  // [n_vocab] with ignore_merges: 1 for the model vocabulary's tokens (not added ones)
    int prepend;           // SentencePiece: ' ' before 0 no part, 1 the text's first part, 2 every part
    bool prepend_if_none;  // Metaspace: only when the part does not start with a space already
    bool nfc;              // normalizer NFC: each part is put in NFC first
    int unk;               // SentencePiece without byte fallback: the unknown token, or -1
    bool fuse_unk;         // consecutive unknown characters are one unknown token
};

void bpe_free(struct Bpe *b) {
    if (!b) return;
    free(b->pairs);
    free(b->model);
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
    unsigned flags; // ADD_*
} AddedIn;

typedef struct Spec {
    const char *vocab_file, *merges_file; // for messages
    const char *where_word;               // "line" (merges.txt) or "merge" (tokenizer.json)
    const Json *vocab;                    // object: token text -> id, or NULL when vtext is given
    const Str *vtext;                     // else: token text by id (n_vtext of them)
    size_t n_vtext;
    const MergeIn *merges;
    size_t n_merges;
    const AddedIn *added;
    size_t n_added;
    bool endoftext_special; // vocab.json: "<|endoftext|>" is a special token
    bool add_prefix_space;
    PreTok pre;
    bool byte_level, byte_fallback, ignore_merges;
    int prepend;
    bool prepend_if_none;
    bool nfc;            // the NFC normalizer
    bool fuse_unk;       // model.fuse_unk
    const char *unk;     // unk_token, or NULL
    bool rank_by_where;  // a merge's rank is its `where` (several merges may share one)
} Spec;

// State of build(), released in one place.
typedef struct Build {
    Str *text;          // [n] token text as the file gives it
    unsigned char *src; // [n] 0: no token, 1: model vocabulary, 2: added token only
    StrMap by_text;
    Buf blob, cat;
    uint32_t *off;
    unsigned char *special, *fallback, *aflags;
    int *added;
    unsigned char *made; // [n] 1: a merge makes the token
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
    free(B->fallback);
    free(B->aflags);
    free(B->added);
    free(B->made);
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

// The byte of a byte-fallback piece "<0xNN>", or -1.
static int fallback_byte(Str s) {
    static const char hex[] = "0123456789ABCDEF";
    if (s.len != 6 || memcmp(s.s, "<0x", 3) || s.s[5] != '>') return -1;
    const char *h = strchr(hex, s.s[3]), *l = strchr(hex, s.s[4]);
    return h && l && s.s[3] && s.s[4] ? (int)((h - hex) * 16 + (l - hex)) : -1;
}

// Append a SentencePiece piece with U+2581 as a space.
static void append_spaces(Buf *out, Str s) {
    for (size_t i = 0; i < s.len;) {
        if (i + 3 <= s.len && !memcmp(s.s + i, "\xE2\x96\x81", 3)) {
            buf_putc(out, ' ');
            i += 3;
        } else {
            buf_putc(out, s.s[i++]);
        }
    }
}

static int bad_id(Err *e, const char *file, const char *what, Str tok, const Json *j) {
    char q[64];
    tok_quote(tok.s, tok.len, q, sizeof q);
    if (j && j->type == JSON_NUM)
        return err_set(e, "'%s': %s '%s' has id %.17g (ids are integers from 0 to %d)", file, what, q, j->num,
                       TOK_MAX_VOCAB - 1);
    return err_set(e, "'%s': %s '%s' has an id that is not a number", file, what, q);
}

// The text and id of vocabulary entry i (from the JSON object or the array).
static Str vocab_entry(const Spec *sp, size_t i, int *id) {
    if (sp->vtext) {
        *id = (int)i;
        return sp->vtext[i];
    }
    *id = (int)sp->vocab->items[i].num;
    return (Str){sp->vocab->keys[i], sp->vocab->klens[i]};
}

static Tokenizer *build(const Spec *sp, Err *e) {
    const Json *v = sp->vocab;
    char q1[64], q2[64];
    Build B = {0};
    if (!sp->vtext && (!v || v->type != JSON_OBJ)) {
        err_set(e, "'%s': the vocabulary is not a JSON object", sp->vocab_file);
        return NULL;
    }
    size_t nv = sp->vtext ? sp->n_vtext : v->len;
    // ids and their range
    int n = sp->vtext ? (int)sp->n_vtext : 0;
    for (size_t i = 0; !sp->vtext && i < v->len; i++) {
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
    B.aflags = xcalloc((size_t)n, 1);
    B.added = xcalloc(sp->n_added + 1, sizeof *B.added);
    strmap_init(&B.by_text, nv + sp->n_added);
    for (size_t i = 0; i < nv; i++) {
        int id;
        Str s = vocab_entry(sp, i, &id);
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
        B.aflags[a->id] = (unsigned char)a->flags;
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
    // and text outside the map, stand for their own UTF-8. SentencePiece pieces: U+2581 is a
    // space and <0xNN> the byte NN.
    short rev[324];
    for (int c = 0; c < 324; c++) rev[c] = -1;
    for (unsigned b = 0; b < 256; b++) rev[byte_cp(b)] = (short)b;
    B.off = xmalloc(((size_t)n + 1) * sizeof *B.off);
    B.fallback = xcalloc((size_t)n, 1);
    for (int id = 0; id < n; id++) {
        if (B.blob.len > UINT32_MAX - 3 * B.text[id].len - 1) {
            err_set(e, "'%s': the vocabulary is too large", sp->vocab_file);
            goto fail;
        }
        B.off[id] = (uint32_t)B.blob.len;
        Str tx = B.text[id];
        int byte = -1;
        if (B.src[id] == 2 || B.special[id]) buf_put(&B.blob, tx.s, tx.len);
        else if (!sp->byte_level && (byte = fallback_byte(tx)) >= 0) buf_putc(&B.blob, (char)byte), B.fallback[id] = 1;
        else if (!sp->byte_level) append_spaces(&B.blob, tx);
        else if (!append_bytes(&B.blob, tx, rev)) buf_put(&B.blob, tx.s, tx.len);
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
    B.bpe->pre = sp->pre;
    B.bpe->byte_level = sp->byte_level;
    B.bpe->ignore_merges = sp->ignore_merges;
    if (sp->ignore_merges) {
        B.bpe->model = xcalloc((size_t)n, 1);
        for (int id = 0; id < n; id++) B.bpe->model[id] = B.src[id] == 1;
    }
    B.bpe->prepend = sp->prepend;
    B.bpe->prepend_if_none = sp->prepend_if_none;
    B.bpe->nfc = sp->nfc;
    B.bpe->unk = sp->unk ? vocab_id(&B, sp->unk, strlen(sp->unk)) : -1;
    B.bpe->fuse_unk = sp->fuse_unk;
    for (unsigned b = 0; b < 256; b++) {
        char u[8];
        if (sp->byte_level) {
            B.bpe->byte_id[b] = vocab_id(&B, u, (size_t)utf8_encode(byte_cp(b), u));
        } else {
            snprintf(u, sizeof u, "<0x%02X>", b);
            B.bpe->byte_id[b] = sp->byte_fallback ? vocab_id(&B, u, 6) : -1;
        }
    }
    if (!sp->byte_level && sp->unk && B.bpe->unk < 0 && !sp->byte_fallback) {
        err_set(e, "'%s': the unknown token '%s' is not in the vocabulary", sp->vocab_file,
                tok_quote(sp->unk, strlen(sp->unk), q1, sizeof q1));
        goto fail;
    }
    if (sp->n_merges > (size_t)TOK_MAX_VOCAB) {
        err_set(e, "'%s': too many merges (%zu)", sp->merges_file, sp->n_merges);
        goto fail;
    }
    pairs_init(B.bpe, sp->n_merges);
    B.made = xcalloc((size_t)n, 1);
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
        pair_set(B.bpe, l, r, sp->rank_by_where ? (int)m->where : (int)i, merged);
        B.made[merged] = 1;
    }
    // every model-vocabulary token of more than one symbol (a byte of byte-level text, else a
    // character) is what some merge makes: many that none makes is a merges file cut short (a
    // truncated download tokenized every text into smaller pieces, silently). Llama 3's tokens
    // are taken whole (ignore_merges): not checked.
    if (!sp->ignore_merges) {
        int orphans = 0;
        for (size_t i = 0; i < sp->n_added; i++) B.made[sp->added[i].id] = 1; // added: found whole in text
        for (int id = 0; id < n; id++) {
            if (B.src[id] != 1 || B.special[id] || B.fallback[id] || B.made[id]) continue;
            const char *s = B.blob.data + B.off[id];
            size_t len = B.off[id + 1] - B.off[id] - 1, symbols = 0; // the bytes may hold a NUL
            for (size_t k = 0; k < len && symbols < 2; k++) symbols += sp->byte_level || !utf8_is_cont(s[k]);
            orphans += symbols > 1;
        }
        if (orphans > 16 + n / 100) {
            err_set(e, "'%s': %d tokens of the vocabulary are made by none of its %zu merges: the merges are cut short "
                       "(a truncated download?)", sp->merges_file, orphans, sp->n_merges);
            goto fail;
        }
    }

    Tokenizer *t = tok_alloc(TOK_KIND_BYTE_BPE);
    t->n_vocab = n;
    t->blob = buf_take(&B.blob);
    t->off = B.off, B.off = NULL;
    t->special = B.special, B.special = NULL;
    t->added_flags = B.aflags, B.aflags = NULL;
    t->added = B.added, B.added = NULL;
    t->n_added = n_added;
    t->bos = t->eos = eos; // GPT-2: <|endoftext|> both ends and starts a text
    t->fallback = B.fallback, B.fallback = NULL;
    t->bpe = B.bpe, B.bpe = NULL;
    // an added token that is a byte-fallback piece stands for its byte but is found by its content
    for (int k = 0; k < n_added; k++)
        if (t->fallback[t->added[k]]) tok_set_added_text(t, k, B.text[t->added[k]].s, B.text[t->added[k]].len);
    build_done(&B);
    tok_index(t);
    return t;
fail:
    build_done(&B);
    return NULL;
}

// ---- loaders ----

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
    if (fs_read_file(merges_path, (size_t)1 << 30, &file, e)) return NULL;
    if (!file.data) buf_reserve(&file, 0);
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
    Spec sp = {.vocab_file = vocab_path, .merges_file = merges_path, .where_word = "line", .vocab = vocab, .merges = m,
               .n_merges = nm, .endoftext_special = true, .pre = PRE_GPT2, .byte_level = true};
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

// The Split regexes of the byte-level families qkv scans by hand (as tokenizer.json spells them).
static const char LLAMA3_REGEX[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                                   "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char QWEN2_REGEX[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                                  "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static int unsupported(Err *e, const char *path, const char *what, const char *name) {
    char q[96];
    return err_set(e, "'%s': %s '%s' is not supported", path, what, tok_quote(name, strlen(name), q, sizeof q));
}

// One step of a pre_tokenizer (alone or in a Sequence), into sp.
static int read_pre_step(const Json *pt, const char *path, Spec *sp, int *seen_regex, Err *e) {
    const char *type = json_str_or(pt, "type", "");
    if (!strcmp(type, "ByteLevel")) {
        sp->add_prefix_space |= json_bool_or(pt, "add_prefix_space", false);
        if (json_bool_or(pt, "use_regex", true)) {
            if (*seen_regex) return err_set(e, "'%s': ByteLevel with its regex after a Split", path);
            *seen_regex = 1;
        }
        return 0;
    }
    if (!strcmp(type, "Digits")) {
        if (!json_bool_or(pt, "individual_digits", false))
            return err_set(e, "'%s': Digits without individual_digits is not supported", path);
        sp->pre = PRE_GPT2_DIGITS;
        return 0;
    }
    if (!strcmp(type, "Split")) {
        const char *re = json_str_or(json_get(pt, "pattern"), "Regex", NULL);
        const char *beh = json_str_or(pt, "behavior", "Isolated");
        if (!re) return err_set(e, "'%s': Split without a Regex pattern is not supported", path);
        if (strcmp(beh, "Isolated") || json_bool_or(pt, "invert", false))
            return err_set(e, "'%s': Split other than Isolated is not supported", path);
        if (!strcmp(re, LLAMA3_REGEX)) sp->pre = PRE_LLAMA3;
        else if (!strcmp(re, QWEN2_REGEX)) sp->pre = PRE_QWEN2;
        else return unsupported(e, path, "pre-tokenizer regex (GPT-2's, Llama 3's and Qwen2's are)", re);
        *seen_regex = 2;
        return 0;
    }
    return unsupported(e, path, "pre-tokenizer", type);
}

// The byte-level pre-tokenizer: ByteLevel (GPT-2), Digits + ByteLevel (SmolLM), or
// Split(regex) + ByteLevel without its regex (Llama 3, Qwen2).
static int read_byte_level(const Json *pt, const char *path, Spec *sp, Err *e) {
    const char *type = json_str_or(pt, "type", NULL);
    int seen_regex = 0;
    sp->pre = PRE_GPT2;
    if (!type) return err_set(e, "'%s': pre_tokenizer is missing", path);
    if (!strcmp(type, "Sequence")) {
        const Json *list = json_get(pt, "pretokenizers");
        if (!list || list->type != JSON_ARR || !list->len)
            return err_set(e, "'%s': pre_tokenizer Sequence without pretokenizers", path);
        for (size_t i = 0; i < list->len; i++)
            if (read_pre_step(&list->items[i], path, sp, &seen_regex, e)) return -1;
    } else if (read_pre_step(pt, path, sp, &seen_regex, e)) {
        return -1;
    }
    if (!seen_regex) return err_set(e, "'%s': a ByteLevel pre-tokenizer without any regex is not supported", path);
    return 0;
}

// The normalizer: null, or NFC, Prepend("\u2581") and Replace(" ", "\u2581") alone or in a
// Sequence. *spm: it has the SentencePiece steps (older Llama 2 style files).
static int read_normalizer(const Json *norm, const char *path, Spec *sp, bool *spm, Err *e) {
    const Json *steps = norm;
    size_t n = norm && norm->type != JSON_NULL ? 1 : 0;
    bool prepend = false, replace = false;
    if (n && !strcmp(json_str_or(norm, "type", ""), "Sequence")) {
        const Json *list = json_get(norm, "normalizers");
        n = list && list->type == JSON_ARR ? list->len : 0;
        steps = n ? list->items : NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const Json *st = &steps[i];
        const char *type = json_str_or(st, "type", "");
        if (!strcmp(type, "NFC")) sp->nfc = true;
        else if (!strcmp(type, "Prepend") && !strcmp(json_str_or(st, "prepend", ""), "\xE2\x96\x81")) prepend = true;
        else if (!strcmp(type, "Replace") && !strcmp(json_str_or(json_get(st, "pattern"), "String", ""), " ") &&
                 !strcmp(json_str_or(st, "content", ""), "\xE2\x96\x81"))
            replace = true;
        else return unsupported(e, path, "normalizer", type);
    }
    if (prepend && !replace)
        return err_set(e, "'%s': a Prepend normalizer without Replace(' ', '\xE2\x96\x81') is not supported", path);
    if (prepend) sp->prepend = 2;
    *spm = prepend || replace;
    return 0;
}

// SentencePiece-style: the normalizer's Prepend("\u2581") + Replace(" ", "\u2581") (older
// files) or a Metaspace pre-tokenizer (newer ones).
static int read_spm(const Json *pt, const char *path, Spec *sp, Err *e) {
    sp->byte_level = false;
    sp->pre = PRE_NONE;
    if (pt && pt->type != JSON_NULL) {
        const char *type = json_str_or(pt, "type", "");
        if (strcmp(type, "Metaspace")) return unsupported(e, path, "pre-tokenizer for a SentencePiece-style BPE", type);
        if (json_bool_or(pt, "split", false)) return err_set(e, "'%s': Metaspace with split is not supported", path);
        const char *scheme = json_str_or(pt, "prepend_scheme", json_bool_or(pt, "add_prefix_space", true) ? "always" : "never");
        sp->prepend = !strcmp(scheme, "first") ? 1 : !strcmp(scheme, "always") ? 2 : 0;
        sp->prepend_if_none = true;
    }
    return 0;
}

// The normalizer's text of s (n bytes) as bpe_encode sees it: NFC, or SentencePiece's Prepend +
// Replace (spaces kept as ' ', the pieces' form of U+2581).
static void normal_form(const Tokenizer *t, const char *s, size_t n, Buf *out) {
    Buf nfc = {0};
    if (t->bpe->nfc && uni_nfc_utf8(s, n, &nfc)) s = nfc.data, n = nfc.len;
    buf_clear(out);
    if (!t->bpe->byte_level && t->bpe->prepend == 2 && n) buf_putc(out, ' ');
    for (size_t i = 0; i < n; i++) {
        if (!t->bpe->byte_level && i + 3 <= n && !memcmp(s + i, "\xE2\x96\x81", 3)) buf_putc(out, ' '), i += 2;
        else buf_putc(out, s[i]);
    }
    buf_free(&nfc);
}

static bool json_str_item(const Json *j) { return j && j->type == JSON_STR; }

Tokenizer *bpe_load_json(const Json *root, const char *path, Err *e) {
    const Json *model = json_get(root, "model");
    const Json *vocab = json_get(model, "vocab");
    const Json *merges = json_get(model, "merges");
    const Json *added = json_get(root, "added_tokens");
    const Json *norm = json_get(root, "normalizer");
    if (!vocab || vocab->type != JSON_OBJ) {
        err_set(e, "'%s': model.vocab is missing or not an object", path);
        return NULL;
    }
    if (!merges || merges->type != JSON_ARR) {
        err_set(e, "'%s': model.merges is missing or not an array", path);
        return NULL;
    }
    if (*json_str_or(model, "continuing_subword_prefix", "") || *json_str_or(model, "end_of_word_suffix", "")) {
        err_set(e, "'%s': BPE with subword affixes is not supported", path);
        return NULL;
    }
    Spec spec = {.vocab_file = path, .merges_file = path, .where_word = "merge", .vocab = vocab,
                 .n_merges = merges->len, .pre = PRE_GPT2, .byte_level = true};
    spec.byte_fallback = json_bool_or(model, "byte_fallback", false);
    spec.ignore_merges = json_bool_or(model, "ignore_merges", false);
    spec.unk = json_str_or(model, "unk_token", NULL);
    spec.fuse_unk = json_bool_or(model, "fuse_unk", false);
    const Json *pre = json_get(root, "pre_tokenizer");
    const char *pre_type = json_str_or(pre, "type", "");
    bool spm_norm = false;
    if (read_normalizer(norm, path, &spec, &spm_norm, e)) return NULL;
    bool spm = spec.byte_fallback || !strcmp(pre_type, "Metaspace") || spm_norm;
    if (spm ? read_spm(pre, path, &spec, e) : read_byte_level(pre, path, &spec, e)) return NULL;
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
        a[i].flags = tok_added_flags_json(it);
    }
    spec.merges = m;
    spec.added = a;
    spec.n_added = na;
    t = build(&spec, e);
    if (t && tok_read_template(t, json_get(root, "post_processor"), path, e)) {
        tok_free(t);
        t = NULL;
    }
    // added tokens with normalized: true are found in the normalized text
    if (t && (spec.nfc || (!spec.byte_level && spm_norm))) tok_set_added_forms(t, normal_form);
done:
    free(m);
    free(a);
    return t;
}

bool bpe_space_prefixed(const Tokenizer *t) { return t->bpe && !t->bpe->byte_level && t->bpe->prepend != 0; }

// ---- llama2.c's tokenizer.bin ----

typedef struct ScoredPiece {
    Str s;
    float score;
    int id;
} ScoredPiece;

static int by_score(const void *a, const void *b) {
    const ScoredPiece *x = a, *y = b;
    return x->score > y->score ? -1 : x->score < y->score ? 1 : x->id - y->id;
}

// SentencePiece BPE merges the adjacent pair whose concatenation scores best: every split of a
// piece into two pieces is a merge ranked by the piece's score (its place in score order, so
// that the splits of one piece share a rank). Pieces with skip[i] are never made by merging.
// Sets *m (xmalloc'd) and *nm.
static void spm_merges(const Str *text, const float *score, size_t n, const unsigned char *skip, MergeIn **m,
                       size_t *nm) {
    ScoredPiece *order = xmalloc((n ? n : 1) * sizeof *order);
    size_t cap = 0;
    *m = NULL;
    *nm = 0;
    for (size_t i = 0; i < n; i++) order[i] = (ScoredPiece){text[i], score[i], (int)i};
    qsort(order, n, sizeof *order, by_score);
    StrMap ids = {0};
    strmap_init(&ids, n);
    for (size_t i = 0; i < n; i++) strmap_put(&ids, text[i].s, text[i].len, (int)i);
    for (size_t r = 0; r < n; r++) {
        Str s = order[r].s;
        if (skip[order[r].id]) continue;
        for (size_t k = 1; k < s.len; k++) {
            if (strmap_get(&ids, s.s, k) < 0 || strmap_get(&ids, s.s + k, s.len - k) < 0) continue;
            merges_push(m, nm, &cap, (MergeIn){{s.s, k}, {s.s + k, s.len - k}, (long)r});
        }
    }
    strmap_free(&ids);
    free(order);
}

Tokenizer *bpe_load_llama2c(const char *path, Err *e) {
    Buf file = {0};
    if (fs_read_file(path, (size_t)1 << 30, &file, e)) return NULL;
    const unsigned char *p = (const unsigned char *)file.data, *end = p + file.len;
    Str *text = NULL;
    float *score = NULL;
    size_t n = 0, cap = 0;
    Tokenizer *t = NULL;
    MergeIn *m = NULL;
    size_t nm = 0;
    int32_t maxlen;
    // int32 max_token_length, then per token: float32 score, int32 length, the bytes
    if (file.len < 4 || (memcpy(&maxlen, p, 4), maxlen < 1 || maxlen > 1 << 16)) {
        err_set(e, "'%s': not a llama2.c tokenizer (bad header)", path);
        goto done;
    }
    for (p += 4; p < end;) {
        int32_t len;
        if (end - p < 8 || (memcpy(&len, p + 4, 4), len < 0 || len > maxlen || (size_t)(end - p - 8) < (size_t)len)) {
            err_set(e, "'%s': not a llama2.c tokenizer (token %zu is cut or longer than %d bytes)", path, n, maxlen);
            goto done;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            text = xrealloc(text, cap * sizeof *text);
            score = xrealloc(score, cap * sizeof *score);
        }
        memcpy(&score[n], p, 4);
        text[n++] = (Str){(const char *)p + 8, (size_t)len};
        p += 8 + len;
        if (n > (size_t)TOK_MAX_VOCAB) {
            err_set(e, "'%s': more than %d tokens", path, TOK_MAX_VOCAB);
            goto done;
        }
    }
    if (n < 3) {
        err_set(e, "'%s': not a llama2.c tokenizer (%zu tokens)", path, n);
        goto done;
    }
    // <unk>, <s>, </s> and the byte tokens are never made by merging
    unsigned char *skip = xcalloc(n, 1);
    for (size_t i = 0; i < n; i++) skip[i] = i < 3 || fallback_byte(text[i]) >= 0;
    spm_merges(text, score, n, skip, &m, &nm);
    free(skip);
    // llama2.c writes <s> and </s> between newlines ("\n<s>\n"): they are named without them
    for (int i = 0; i < 3; i++)
        while (text[i].len > 2 && text[i].s[0] == '\n' && text[i].s[text[i].len - 1] == '\n')
            text[i].s++, text[i].len -= 2;
    AddedIn added[3];
    for (int i = 0; i < 3; i++) added[i] = (AddedIn){text[i], i, true};
    Spec sp = {.vocab_file = path, .merges_file = path, .where_word = "piece", .vtext = text, .n_vtext = n,
               .merges = m, .n_merges = nm, .added = added, .n_added = 3, .pre = PRE_NONE, .byte_level = false,
               .byte_fallback = true, .prepend = 1, .rank_by_where = true};
    t = build(&sp, e);
    if (t) { // SentencePiece's ids: <unk> 0 (what a byte without a token becomes), <s> 1, </s> 2
        t->bpe->unk = 0;
        t->bos = t->add_first = 1;
        t->eos = 2;
        t->bos_ends = true; // its models never write </s>: the next story's <s> ends one
    }
done:
    free(m);
    free(text);
    free(score);
    buf_free(&file);
    return t;
}

// ---- pieces given by id (GGUF metadata) ----

// llama.cpp's names of the byte-level pre-tokenizers (tokenizer.ggml.pre) qkv scans.
static const struct {
    const char *name;
    PreTok pre;
    bool ignore_merges;
} gguf_pre[] = {
    {"gpt-2", PRE_GPT2, false},        {"llama-bpe", PRE_LLAMA3, true}, {"llama3", PRE_LLAMA3, true},
    {"llama-v3", PRE_LLAMA3, true},    {"qwen2", PRE_QWEN2, false},     {"smollm", PRE_GPT2_DIGITS, false},
    {"starcoder", PRE_GPT2_DIGITS, false}, {"refact", PRE_GPT2_DIGITS, false},
};

Tokenizer *bpe_load_pieces(const BpePieces *p, Err *e) {
    Spec sp = {.vocab_file = p->path, .merges_file = p->path, .where_word = "merge", .n_vtext = (size_t)p->n,
               .byte_level = !p->score};
    Str *text = xcalloc((size_t)(p->n ? p->n : 1), sizeof *text);
    AddedIn *added = xcalloc((size_t)(p->n ? p->n : 1), sizeof *added);
    MergeIn *m = NULL;
    unsigned char *skip = NULL;
    char *unk = NULL;
    size_t nm = 0;
    Tokenizer *t = NULL;
    for (int i = 0; i < p->n; i++) {
        text[i] = (Str){p->text[i], p->len[i]};
        int ty = p->type ? p->type[i] : TOKP_NORMAL;
        // as llama.cpp splits them out of text: control, user-defined and unknown tokens
        if (ty == TOKP_CONTROL || ty == TOKP_USER || ty == TOKP_UNKNOWN)
            added[sp.n_added++] = (AddedIn){text[i], i, ty != TOKP_USER};
    }
    sp.vtext = text;
    sp.added = added;
    if (sp.byte_level) {
        const char *pre = p->pre ? p->pre : "gpt-2";
        size_t k = 0;
        while (k < sizeof gguf_pre / sizeof *gguf_pre && strcmp(gguf_pre[k].name, pre)) k++;
        if (k == sizeof gguf_pre / sizeof *gguf_pre) {
            Buf known = {0};
            for (size_t j = 0; j < sizeof gguf_pre / sizeof *gguf_pre; j++) buf_printf(&known, "%s%s", j ? ", " : "", gguf_pre[j].name);
            char q[48];
            err_set(e, "'%s': tokenizer.ggml.pre '%s' is not supported (%s are)", p->path, tok_quote(pre, strlen(pre), q, sizeof q),
                    known.data);
            buf_free(&known);
            goto done;
        }
        sp.pre = gguf_pre[k].pre;
        sp.ignore_merges = gguf_pre[k].ignore_merges;
        m = xcalloc(p->n_merges ? p->n_merges : 1, sizeof *m);
        for (size_t i = 0; i < p->n_merges; i++) {
            const char *a = p->merge[i], *sp1 = memchr(a, ' ', p->merge_len[i]);
            size_t la = sp1 ? (size_t)(sp1 - a) : 0, lb = sp1 ? p->merge_len[i] - la - 1 : 0;
            if (!sp1 || !la || !lb || memchr(sp1 + 1, ' ', lb)) {
                err_set(e, "'%s': tokenizer.ggml.merges element %zu is not \"left right\"", p->path, i);
                goto done;
            }
            m[nm++] = (MergeIn){{a, la}, {sp1 + 1, lb}, (long)i + 1};
        }
    } else {
        // SentencePiece-style: U+2581 for spaces, <0xNN> byte tokens, merges from the scores
        sp.pre = PRE_NONE;
        sp.prepend = p->no_space_prefix ? 0 : p->prepend_every ? 2 : 1;
        sp.prepend_if_none = !p->prepend_on_space;
        sp.rank_by_where = true;
        skip = xcalloc((size_t)(p->n ? p->n : 1), 1);
        for (int i = 0; i < p->n; i++) { // unused pieces are made, then split back (put_symbol)
            int ty = p->type ? p->type[i] : TOKP_NORMAL;
            skip[i] = ty != TOKP_NORMAL && ty != TOKP_UNUSED;
            sp.byte_fallback |= ty == TOKP_BYTE;
        }
        spm_merges(text, p->score, (size_t)p->n, skip, &m, &nm);
        if (p->unk >= 0 && p->unk < p->n) sp.unk = unk = xstrndup(text[p->unk].s, text[p->unk].len);
    }
    sp.merges = m;
    sp.n_merges = nm;
    t = build(&sp, e);
    if (t && tok_set_unused(t, p->type)) { // not found by text, a byte's token included
        for (int b = 0; b < 256; b++)
            if (t->bpe->byte_id[b] >= 0 && t->unused[t->bpe->byte_id[b]]) t->bpe->byte_id[b] = -1;
        tok_index(t);
    }
done:
    free(text);
    free(added);
    free(m);
    free(skip);
    free(unk);
    return t;
}

// How GGUF metadata spells token id of t into out (cleared): added and special tokens as
// their text; byte-level tokens in GPT-2's byte-to-unicode characters; SentencePiece-style
// ones with U+2581 for a space and <0xNN> for a byte-fallback token. Returns its TOKP_* type.
static int gguf_piece(const Tokenizer *t, int id, const unsigned char *is_added, Buf *out) {
    buf_clear(out);
    const unsigned char *s = (const unsigned char *)t->blob + t->off[id];
    size_t n = t->off[id + 1] - t->off[id] - 1;
    if (t->fallback && t->fallback[id] && n == 1) {
        buf_printf(out, "<0x%02X>", s[0]);
        return TOKP_BYTE;
    }
    bool unused = t->unused && t->unused[id];
    if (is_added[id]) { // SentencePiece's <unk> is an added token too, typed unknown
        buf_put(out, s, n);
        return id == t->bpe->unk && !t->bpe->byte_level ? TOKP_UNKNOWN : t->special[id] ? TOKP_CONTROL : TOKP_USER;
    }
    for (size_t i = 0; i < n; i++) {
        char u[8];
        if (t->bpe->byte_level) buf_put(out, u, (size_t)tok_gpt2_byte_char(s[i], u));
        else if (s[i] == ' ') buf_put(out, "\xE2\x96\x81", 3);
        else buf_putc(out, (char)s[i]);
    }
    return unused ? TOKP_UNUSED : id == t->bpe->unk ? TOKP_UNKNOWN : TOKP_NORMAL;
}

static int by_rank(const void *a, const void *b) {
    const PairSlot *x = a, *y = b;
    return x->rank != y->rank ? (x->rank < y->rank ? -1 : 1) : (x->key < y->key ? -1 : x->key > y->key);
}

int bpe_write_gguf(const Tokenizer *t, GgufW *w, Err *e) {
    const struct Bpe *b = t->bpe;
    const char *pre = NULL;
    if (b->byte_level) {
        for (size_t k = 0; !pre && k < sizeof gguf_pre / sizeof *gguf_pre; k++)
            if (gguf_pre[k].pre == b->pre && gguf_pre[k].ignore_merges == b->ignore_merges) pre = gguf_pre[k].name;
        if (!pre || b->add_prefix_space || b->nfc)
            return err_set(e, "the tokenizer's pre-tokenizer%s has no tokenizer.ggml.pre name in GGUF",
                           b->add_prefix_space ? " (with add_prefix_space)" : b->nfc ? " (with NFC)" : "");
    }
    int n = t->n_vocab;
    unsigned char *is_added = xcalloc((size_t)n, 1);
    for (int k = 0; k < t->n_added; k++) is_added[t->added[k]] = 1;
    // the merges in rank order
    size_t nm = 0;
    PairSlot *m = xmalloc((b->pair_mask + 1) * sizeof *m);
    for (size_t i = 0; i <= b->pair_mask; i++)
        if (b->pairs[i].key != PAIR_EMPTY) m[nm++] = b->pairs[i];
    qsort(m, nm, sizeof *m, by_rank);
    // the pieces in one buffer, then pointers into it
    Buf all = {0}, one = {0};
    size_t *off = xmalloc(((size_t)n + 1) * sizeof *off), *len = xmalloc((size_t)(n ? n : 1) * sizeof *len);
    int32_t *type = xmalloc((size_t)(n ? n : 1) * sizeof *type);
    for (int id = 0; id < n; id++) {
        type[id] = gguf_piece(t, id, is_added, &one);
        off[id] = all.len, len[id] = one.len;
        buf_put(&all, one.data ? one.data : "", one.len);
    }
    const char **text = xmalloc((size_t)(n ? n : 1) * sizeof *text);
    for (int id = 0; id < n; id++) text[id] = all.data ? all.data + off[id] : "";
    gguf_w_str(w, "tokenizer.ggml.model", b->byte_level ? "gpt2" : "llama", b->byte_level ? 4 : 5);
    if (pre) gguf_w_str(w, "tokenizer.ggml.pre", pre, strlen(pre));
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", (uint64_t)n, text, len);
    if (b->byte_level) { // "left right", best first
        Buf mt = {0};
        size_t *moff = xmalloc((nm ? nm : 1) * sizeof *moff), *mlen = xmalloc((nm ? nm : 1) * sizeof *mlen);
        for (size_t i = 0; i < nm; i++) {
            int l = (int)(m[i].key >> 32), r = (int)(m[i].key & 0xFFFFFFFFu);
            moff[i] = mt.len;
            buf_put(&mt, text[l], len[l]);
            buf_putc(&mt, ' ');
            buf_put(&mt, text[r], len[r]);
            mlen[i] = mt.len - moff[i];
        }
        const char **mp = xmalloc((nm ? nm : 1) * sizeof *mp);
        for (size_t i = 0; i < nm; i++) mp[i] = mt.data + moff[i];
        gguf_w_arr_str(w, "tokenizer.ggml.merges", (uint64_t)nm, mp, mlen);
        free(mp);
        free(moff);
        free(mlen);
        buf_free(&mt);
    } else { // scores whose order gives the merges back: a merged piece scores minus its best rank,
             // the others below every merged one
        float *score = xmalloc((size_t)(n ? n : 1) * sizeof *score);
        for (int id = 0; id < n; id++) score[id] = -1e9f;
        for (size_t i = nm; i-- > 0;) score[m[i].merged] = -(float)m[i].rank;
        gguf_w_arr_f32(w, "tokenizer.ggml.scores", (uint64_t)n, score);
        free(score);
        gguf_w_bool(w, "tokenizer.ggml.add_space_prefix", b->prepend != 0);
        if (b->prepend == 2) gguf_w_str(w, PREPEND_SCHEME_KEY, "always", 6);
        if (b->prepend && !b->prepend_if_none) gguf_w_bool(w, PREPEND_IF_NONE_KEY, false);
    }
    gguf_w_arr_i32(w, "tokenizer.ggml.token_type", (uint64_t)n, type);
    // SentencePiece's unknown token, else the one the tokenizer's GGUF named (byte-level BPE has
    // none of its own)
    int unk = !b->byte_level && b->unk >= 0 ? b->unk : t->unk_named;
    if (unk >= 0) gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)unk);
    free(is_added);
    free(m);
    buf_free(&all);
    buf_free(&one);
    free(off);
    free(len);
    free(type);
    free(text);
    return 0;
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

size_t tok_gpt2_piece_end(const char *s, size_t n, size_t i) { return pretok_end((const unsigned char *)s, n, i); }

static bool is_nl(unsigned char c) { return c == '\r' || c == '\n'; }

// The end of the Llama 3 / Qwen2 Split regex match at s[i] (max_digits 3 or 1):
// (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n L N]?L+ | N{1,max} | ' '?[^\s L N]+[\r\n]* | \s*[\r\n]+ |
// \s+(?!\S) | \s+
static size_t pretok_llama3_end(const unsigned char *s, size_t n, size_t i, int max_digits) {
    if (s[i] == '\'' && i + 1 < n) {
        unsigned char a = (unsigned char)(s[i + 1] | 0x20), b = i + 2 < n ? (unsigned char)(s[i + 2] | 0x20) : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
    size_t len, l2;
    UniClass cls = class_at(s, n, i, &len);
    size_t j = i + len;
    // [^\r\n L N]? L+
    if (cls == UNI_L || (cls != UNI_N && !is_nl(s[i]) && j < n && class_at(s, n, j, &l2) == UNI_L)) {
        while (j < n && class_at(s, n, j, &l2) == UNI_L) j += l2;
        return j;
    }
    if (cls == UNI_N) {
        for (int k = 1; k < max_digits && j < n && class_at(s, n, j, &l2) == UNI_N; k++) j += l2;
        return j;
    }
    // ' '? [^\s L N]+ [\r\n]*
    size_t k = s[i] == ' ' ? i + 1 : i;
    size_t m = k;
    while (m < n) {
        UniClass c = class_at(s, n, m, &l2);
        if (c != UNI_OTHER) break;
        m += l2;
    }
    if (m > k) {
        while (m < n && is_nl(s[m])) m++;
        return m;
    }
    // white space: \s*[\r\n]+ up to the last line break of the run; else \s+(?!\S), \s+
    size_t last_nl = 0, last = i;
    bool nl = false;
    for (j = i; j < n && class_at(s, n, j, &l2) == UNI_S; j += l2) {
        if (is_nl(s[j])) nl = true, last_nl = j + 1;
        last = j;
    }
    if (nl) return last_nl;
    return j == n || last == i ? j : last;
}

// The end of the next piece at s[i] for pre-tokenizer pre. *num: where the numeric character
// at or after the previous call's i is (n: none; start a text with SIZE_MAX), which a call for
// a later i reuses: searched for once per stretch, not once per piece (per piece, a text of
// 100,000 words without a digit took 14 s; SmolLM2's tokenizer).
static size_t pretok_next(PreTok pre, const unsigned char *s, size_t n, size_t i, size_t *num) {
    size_t len;
    switch (pre) {
    case PRE_LLAMA3: return pretok_llama3_end(s, n, i, 3);
    case PRE_QWEN2: return pretok_llama3_end(s, n, i, 1);
    case PRE_GPT2_DIGITS: {
        // digits alone (Digits: Rust's is_numeric), then GPT-2's regex within the stretch
        // before the next digit
        if (*num == SIZE_MAX || *num < i) {
            size_t stop = i;
            while (stop < n && !uni_is_numeric(cp_at(s, n, stop, &len))) stop += len;
            *num = stop;
        }
        if (*num == i) {
            cp_at(s, n, i, &len);
            return i + len;
        }
        return pretok_end(s, *num, i);
    }
    case PRE_NONE: return n;
    case PRE_GPT2: break;
    }
    return pretok_end(s, n, i);
}

// ---- merging ----

typedef struct Sym {
    int id, prev, next; // a linked list over the word's bytes; merged-away symbols are SYM_DEAD
    int made;           // the Made record of the merge that made it, -1 for a symbol of the text
} Sym;

// A merge done: the two symbols it joined (their ids and Made records), for splitting an unused
// token back into them.
typedef struct Made {
    int lid, rid, lmade, rmade;
} Made;

typedef struct Cand {
    int rank, l, r; // the merge of symbols l and r (adjacent when pushed)
    int lid, rid;   // their ids when pushed: the candidate is stale once either changed
    int merged;
} Cand;

// Scratch space of one tok_encode call.
typedef struct Work {
    Sym *sym;
    Cand *heap, *round; // each 3 * cap: a word of n symbols pushes at most 3n candidates
    Made *made;         // cap: a word of n symbols merges at most n - 1 times
    int *stack;         // 2 * cap (id, made) pairs: the symbols an unused one splits into
    size_t cap, hn;
} Work;

static void work_free(Work *w) {
    free(w->sym);
    free(w->heap);
    free(w->round);
    free(w->made);
    free(w->stack);
}

static void work_reserve(Work *w, size_t n) {
    if (n <= w->cap) return;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < n) cap *= 2;
    work_free(w);
    w->sym = xmalloc(cap * sizeof *w->sym);
    w->heap = xmalloc(3 * cap * sizeof *w->heap);
    w->round = xmalloc(3 * cap * sizeof *w->round);
    w->made = xmalloc(cap * sizeof *w->made);
    w->stack = xmalloc(4 * cap * sizeof *w->stack);
    w->cap = cap;
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

// Append the symbol id, made by w->made[made] (or of the text when made < 0): an unused token
// made by a merge as the two symbols it was made of, each split again while it is unused, as
// sentencepiece resegments its unused pieces.
static void put_symbol(const Tokenizer *t, Work *w, int id, int made, IntVec *out) {
    size_t top = 0;
    w->stack[top++] = id, w->stack[top++] = made;
    while (top) {
        made = w->stack[--top], id = w->stack[--top];
        if (made < 0 || !t->unused || !t->unused[id]) {
            iv_push(out, id);
            continue;
        }
        const Made *m = &w->made[made]; // the right part under the left: the left comes out first
        w->stack[top++] = m->rid, w->stack[top++] = m->rmade;
        w->stack[top++] = m->lid, w->stack[top++] = m->lmade;
    }
}

// Merge the n >= 1 symbols w->sym[0..n) (ids, -1 for a byte the vocabulary lacks, at that
// byte of s) and append the result. Each round takes the lowest rank among the adjacent pairs
// and merges all its occurrences left to right (a rank names one pair), as the reference does;
// candidates a merge made stale are skipped when they come up.
static int merge_symbols(const Tokenizer *t, const unsigned char *s, size_t n, Work *w, IntVec *out, Err *e) {
    const struct Bpe *b = t->bpe;
    Sym *sym = w->sym;
    sym[n - 1].next = -1;
    w->hn = 0;
    int n_made = 0;
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
            w->made[n_made] = (Made){d.lid, d.rid, sym[d.l].made, sym[d.r].made};
            sym[d.l].made = n_made++;
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
        put_symbol(t, w, sym[i].id, sym[i].made, out);
    }
    return 0;
}

// A byte-level pre-token (n >= 1 bytes): its bytes' tokens, merged.
static int bpe_word(const Tokenizer *t, const unsigned char *s, size_t n, Work *w, IntVec *out, Err *e) {
    const struct Bpe *b = t->bpe;
    if (n > (size_t)(INT32_MAX / 4)) return err_set(e, "a pre-token of %zu bytes is too long", n);
    if (b->ignore_merges && n > 1) { // a piece that is a token of the model's vocabulary is taken whole
        int id = tok_find(t, (const char *)s, n);
        if (id >= 0 && b->model[id]) {
            iv_push(out, id);
            return 0;
        }
    }
    work_reserve(w, n);
    // a byte the vocabulary lacks (SmolLM2's has no 0x04, 0x1D, ...) is the unknown token, or
    // without one dropped before merging, so that its neighbours merge: as HF tokenizers does
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int id = b->byte_id[s[i]] >= 0 ? b->byte_id[s[i]] : b->unk;
        if (id >= 0) w->sym[k] = (Sym){id, (int)k - 1, (int)k + 1, -1}, k++;
    }
    return k ? merge_symbols(t, s, k, w, out, e) : 0;
}

// A SentencePiece-style text: its characters' tokens (or their bytes' <0xNN> tokens, or the
// unknown token), merged. s has its spaces as ' ' (the pieces' form of U+2581).
static int spm_text(const Tokenizer *t, const unsigned char *s, size_t n, Work *w, IntVec *out, Err *e) {
    const struct Bpe *b = t->bpe;
    if (n > (size_t)(INT32_MAX / 4)) return err_set(e, "a text of %zu bytes is too long", n);
    work_reserve(w, n);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        int cl = utf8_valid_len((const char *)s + i, n - i);
        size_t len = (size_t)(cl < 0 ? -cl : cl); // an ill-formed subpart goes to its bytes
        int id = tok_find(t, (const char *)s + i, len);
        // a byte token <0xNN> stands for its byte only as byte fallback, not as a character
        if (id >= 0 && (t->special[id] || (t->fallback && t->fallback[id]))) id = -1;
        if (id >= 0) {
            w->sym[k] = (Sym){id, (int)k - 1, (int)k + 1, -1};
            k++;
        } else {
            bool unk = false;
            for (size_t j = 0; j < len && !unk; j++) {
                int bid = b->byte_id[s[i + j]];
                if (bid < 0 && b->unk < 0) return no_byte(e, s[i + j]);
                unk = bid < 0; // one unknown token for the whole character
                if (unk && b->fuse_unk && k > 0 && w->sym[k - 1].id == b->unk) break; // fused with the one before
                w->sym[k] = (Sym){unk ? b->unk : bid, (int)k - 1, (int)k + 1, -1};
                k++;
            }
        }
        i += len;
    }
    return k ? merge_symbols(t, s, k, w, out, e) : 0;
}

// A piece of normalized text holding no added token: pre-tokenized (ByteLevel's add_prefix_space
// on each piece, as HF does per split) and merged.
static int bpe_piece(const Tokenizer *t, const unsigned char *s, size_t n, Work *w, IntVec *out, Err *e) {
    const struct Bpe *b = t->bpe;
    if (!n) return 0;
    if (!b->byte_level) return spm_text(t, s, n, w, out, e);
    Buf pre = {0};
    if (b->add_prefix_space && s[0] != ' ') {
        buf_putc(&pre, ' ');
        buf_put(&pre, s, n);
        s = (const unsigned char *)pre.data, n = pre.len;
    }
    int rc = 0;
    size_t num = SIZE_MAX;
    for (size_t i = 0; i < n && !rc;) {
        size_t j = pretok_next(b->pre, s, n, i, &num);
        rc = bpe_word(t, s + i, j - i, w, out, e);
        i = j;
    }
    buf_free(&pre);
    return rc;
}

int bpe_encode(const Tokenizer *t, const char *text, size_t n, bool at_start, unsigned flags, IntVec *out, Err *e) {
    const struct Bpe *b = t->bpe;
    Buf tmp = {0}, nfc = {0};
    if (b->nfc && uni_nfc_utf8(text, n, &nfc)) text = nfc.data, n = nfc.len;
    const unsigned char *s = (const unsigned char *)text;
    if (!b->byte_level) {
        // SentencePiece pieces hold spaces where the text has U+2581 or ' ': write both as ' '
        for (size_t i = 0; i < n; i++) {
            if (i + 3 <= n && !memcmp(text + i, "\xE2\x96\x81", 3)) {
                if (!tmp.data) buf_put(&tmp, text, i);
                buf_putc(&tmp, ' ');
                i += 2;
            } else if (tmp.data) {
                buf_putc(&tmp, text[i]);
            }
        }
        if (tmp.data) s = (const unsigned char *)tmp.data, n = tmp.len;
        bool prepend = (b->prepend == 2 || (b->prepend == 1 && at_start)) && !(b->prepend_if_none && s[0] == ' ');
        if (prepend && n) {
            Buf pre = {0};
            buf_putc(&pre, ' ');
            buf_put(&pre, s, n);
            buf_free(&tmp);
            tmp = pre;
            s = (const unsigned char *)tmp.data, n = tmp.len;
        }
    }
    Work w = {0};
    int rc = 0, id;
    size_t part = 0, lo, hi;
    // added tokens with normalized: true are found in the normalized text
    while (!rc && t->split_normalized && tok_next_added(t, (const char *)s, n, part, part, flags, true, &id, &lo, &hi)) {
        rc = bpe_piece(t, s + part, lo - part, &w, out, e);
        if (!rc) iv_push(out, id);
        part = hi;
    }
    if (!rc) rc = bpe_piece(t, s + part, n - part, &w, out, e);
    work_free(&w);
    buf_free(&tmp);
    buf_free(&nfc);
    return rc;
}
