// gguf_vocab.c - tokenizers from GGUF metadata (the tokenizer.ggml.* keys llama.cpp's converter
// writes), and writing a tokenizer back as those keys.
//
// tokenizer.ggml.model says the kind: "gpt2" is byte-level BPE (tokens spelled in GPT-2's
// byte-to-unicode characters, merges "left right", tokenizer.ggml.pre naming the pre-tokenizer),
// "llama" SentencePiece-style BPE (tokens with U+2581 for spaces and <0xNN> byte tokens, scores
// from which the merges follow), "bert" WordPiece (tokens in llama.cpp's "phantom space"
// spelling: a word start is U+2581 + word, a continuation is bare, [SPECIAL] ones as they are;
// normalized and split into words as BertTokenizer does by default, unless qkv's keys say
// otherwise: GGUF has no way to say it, and llama.cpp, which ignores them, does not do it).
// tokenizer.ggml.token_type marks control and unknown tokens (special: llama.cpp finds both in
// text, as it does user-defined ones, which are added) and unused ones: as sentencepiece, where
// the type comes from, encoding never outputs one (llama.cpp does not check; transformers' GGUF
// tokenizer keeps them as plain tokens), and one given by id decodes as its text (llama.cpp
// renders it as nothing, sentencepiece as its text).
#include <stdlib.h>
#include <string.h>

#include "base/gguf.h"
#include "base/mem.h"
#include "tok/chat.h"
#include "tok/tokenizer_impl.h"

#define SP "\xE2\x96\x81" // U+2581, SentencePiece's space

// The special-token ids of the metadata: -1 when absent; -2 (with e) when out of range.
static int special_id(const Gguf *g, const char *key, int n, Err *e) {
    long long v;
    int r = gguf_get_int(g, key, 0, n - 1, &v, e);
    return r < 0 ? -2 : r ? (int)v : -1;
}

// The pieces, types and scores of the metadata.
typedef struct Pieces {
    int n;
    const char **text;
    size_t *len;
    int *type;
    float *score;
} Pieces;

static void pieces_free(Pieces *p) {
    free(p->text);
    free(p->len);
    free(p->type);
    free(p->score);
}

static int read_pieces(const Gguf *g, bool scores, Pieces *p, Err *e) {
    const char *path = gguf_path(g);
    GgufArr toks, types, sc;
    int r = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STR, &toks, e);
    if (r < 0) return -1;
    if (!r) return err_set(e, "'%s': missing key 'tokenizer.ggml.tokens'", path);
    if (toks.n < 1 || toks.n > TOK_MAX_VOCAB)
        return err_set(e, "'%s': tokenizer.ggml.tokens has %llu tokens (1 to %d are allowed)", path,
                       (unsigned long long)toks.n, TOK_MAX_VOCAB);
    int n = (int)toks.n;
    if ((r = gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_I32, &types, e)) < 0) return -1;
    if (r && types.n != toks.n)
        return err_set(e, "'%s': tokenizer.ggml.token_type has %llu entries for %d tokens", path,
                       (unsigned long long)types.n, n);
    bool has_types = r == 1;
    if (scores) {
        if ((r = gguf_get_arr(g, "tokenizer.ggml.scores", GGUF_F32, &sc, e)) < 0) return -1;
        if (!r) return err_set(e, "'%s': missing key 'tokenizer.ggml.scores' (a llama tokenizer needs them)", path);
        if (sc.n != toks.n)
            return err_set(e, "'%s': tokenizer.ggml.scores has %llu entries for %d tokens", path, (unsigned long long)sc.n, n);
    }
    p->n = n;
    p->text = xcalloc((size_t)n, sizeof *p->text);
    p->len = xcalloc((size_t)n, sizeof *p->len);
    p->type = xcalloc((size_t)n, sizeof *p->type);
    if (scores) p->score = xcalloc((size_t)n, sizeof *p->score);
    for (int i = 0; i < n; i++) {
        p->text[i] = gguf_arr_str(&toks, (uint64_t)i, &p->len[i]);
        long long ty = has_types ? gguf_arr_int(&types, (uint64_t)i) : TOKP_NORMAL;
        if (ty < TOKP_NORMAL || ty > TOKP_BYTE)
            return err_set(e, "'%s': token %d has type %lld (1 to 6 are llama.cpp's)", path, i, ty);
        p->type[i] = (int)ty;
        if (scores) p->score[i] = (float)gguf_arr_float(&sc, (uint64_t)i);
    }
    return 0;
}

// Byte-level or SentencePiece-style BPE.
static Tokenizer *load_bpe(const Gguf *g, bool spm, Err *e) {
    const char *path = gguf_path(g);
    Pieces p = {0};
    const char **merge = NULL;
    size_t *merge_len = NULL;
    char *pre = NULL;
    Tokenizer *t = NULL;
    if (read_pieces(g, spm, &p, e)) goto done;
    BpePieces bp = {.path = path, .n = p.n, .text = p.text, .len = p.len, .type = p.type, .score = p.score, .unk = -1};
    if (!spm) {
        GgufArr ma;
        int r = gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_STR, &ma, e);
        if (r < 0) goto done;
        if (!r) {
            err_set(e, "'%s': missing key 'tokenizer.ggml.merges' (a gpt2 tokenizer needs them)", path);
            goto done;
        }
        if (ma.n > TOK_MAX_VOCAB) {
            err_set(e, "'%s': too many merges (%llu)", path, (unsigned long long)ma.n);
            goto done;
        }
        merge = xcalloc((size_t)(ma.n ? ma.n : 1), sizeof *merge);
        merge_len = xcalloc((size_t)(ma.n ? ma.n : 1), sizeof *merge_len);
        for (uint64_t i = 0; i < ma.n; i++) merge[i] = gguf_arr_str(&ma, i, &merge_len[i]);
        bp.merge = merge;
        bp.merge_len = merge_len;
        bp.n_merges = (size_t)ma.n;
        const char *s;
        size_t l;
        if ((r = gguf_get_str(g, "tokenizer.ggml.pre", &s, &l, e)) < 0) goto done;
        if (r) bp.pre = pre = xstrndup(s, l);
    } else {
        int unk = special_id(g, "tokenizer.ggml.unknown_token_id", p.n, e);
        if (unk == -2) goto done;
        for (int i = 0; unk < 0 && i < p.n; i++)
            if (p.type[i] == TOKP_UNKNOWN) unk = i;
        bp.unk = unk;
        bool space = true; // llama.cpp's default for a SentencePiece vocabulary
        if (gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &space, e) < 0) goto done;
        bp.no_space_prefix = !space;
        const char *scheme;
        size_t sl;
        bool if_none = true;
        int r;
        if ((r = gguf_get_str(g, PREPEND_SCHEME_KEY, &scheme, &sl, e)) < 0 ||
            gguf_get_bool(g, PREPEND_IF_NONE_KEY, &if_none, e) < 0)
            goto done;
        if (r && !(sl == 5 && !memcmp(scheme, "first", 5)) && !(sl == 6 && !memcmp(scheme, "always", 6))) {
            err_set(e, "'%s': %s '%.*s' is not supported (first and always are)", path, PREPEND_SCHEME_KEY,
                    (int)(sl < 20 ? sl : 20), scheme);
            goto done;
        }
        bp.prepend_every = r && sl == 6;
        bp.prepend_on_space = !if_none;
    }
    t = bpe_load_pieces(&bp, e);
done:
    pieces_free(&p);
    free(merge);
    free(merge_len);
    free(pre);
    return t;
}

// qkv's keys for what GGUF's "bert" cannot say (absent: BertTokenizer's defaults): the
// BertNormalizer options (strip_accents follows lowercase unless given), "none" for a
// tokenizer.json whose pre_tokenizer is null, and the WordPiece model's continuing_subword_prefix
// (other than "##") and max_input_chars_per_word (other than 100).
#define NORM_KEY(opt) "qkv.tokenizer.normalizer." opt
#define PRE_KEY "qkv.tokenizer.pre_tokenizer"
#define PREFIX_KEY "qkv.tokenizer.continuing_subword_prefix"
#define MAX_CHARS_KEY "qkv.tokenizer.max_input_chars_per_word"

// The WordPiece options of g's qkv keys into *o. 0, or -1 with e filled.
static int read_wordpiece_opts(const Gguf *g, WordPieceOpts *o, Err *e) {
    *o = (WordPieceOpts){.clean_text = true, .chinese = true, .lowercase = true, .pre_split = true};
    if (gguf_get_bool(g, NORM_KEY("clean_text"), &o->clean_text, e) < 0 ||
        gguf_get_bool(g, NORM_KEY("handle_chinese_chars"), &o->chinese, e) < 0 ||
        gguf_get_bool(g, NORM_KEY("lowercase"), &o->lowercase, e) < 0)
        return -1;
    o->strip_accents = o->lowercase;
    if (gguf_get_bool(g, NORM_KEY("strip_accents"), &o->strip_accents, e) < 0) return -1;
    const char *pre;
    size_t pl;
    int r = gguf_get_str(g, PRE_KEY, &pre, &pl, e);
    if (r < 0) return -1;
    if (r && (pl != 4 || memcmp(pre, "none", 4)))
        return err_set(e, "'%s': %s '%.*s' is not supported (none is)", gguf_path(g), PRE_KEY, (int)(pl < 20 ? pl : 20),
                       pre);
    o->pre_split = !r;
    long long mc = 100;
    if (gguf_get_int(g, MAX_CHARS_KEY, 0, 0x7fffffff, &mc, e) < 0) return -1;
    o->max_chars = (int)mc;
    snprintf(o->prefix, sizeof o->prefix, "##");
    if ((r = gguf_get_str(g, PREFIX_KEY, &pre, &pl, e)) < 0) return -1;
    if (r && (pl >= sizeof o->prefix || memchr(pre, '\n', pl) || memchr(pre, 0, pl)))
        return err_set(e, "'%s': %s must be at most %zu bytes on one line", gguf_path(g), PREFIX_KEY, sizeof o->prefix - 1);
    if (r) memcpy(o->prefix, pre, pl), o->prefix[pl] = 0;
    return 0;
}

// t's WordPiece options that are not BertTokenizer's defaults, as read_wordpiece_opts reads them.
static void write_wordpiece_opts(const Tokenizer *t, GgufW *w) {
    WordPieceOpts o = wordpiece_opts(t);
    if (!o.clean_text) gguf_w_bool(w, NORM_KEY("clean_text"), false);
    if (!o.chinese) gguf_w_bool(w, NORM_KEY("handle_chinese_chars"), false);
    if (!o.lowercase) gguf_w_bool(w, NORM_KEY("lowercase"), false);
    if (o.strip_accents != o.lowercase) gguf_w_bool(w, NORM_KEY("strip_accents"), o.strip_accents);
    if (!o.pre_split) gguf_w_str(w, PRE_KEY, "none", 4);
    if (o.max_chars != 100 && o.max_chars >= 0) gguf_w_u32(w, MAX_CHARS_KEY, (uint32_t)o.max_chars);
    if (strcmp(o.prefix, "##")) gguf_w_str(w, PREFIX_KEY, o.prefix, strlen(o.prefix));
}

// How each added token is found in text (tokenizer.json's lstrip, rstrip, single_word and
// normalized: ADD_* bits), which GGUF has no place for: qkv.tokenizer.added_flags, pairs of
// token id and bits for the added tokens whose bits are not 0 (a token it does not name: 0, as
// llama.cpp finds user-defined and control tokens in the text as it is).
#define ADDED_FLAGS_KEY "qkv.tokenizer.added_flags"

static int read_added_flags(const Gguf *g, Tokenizer *t, Err *e) {
    GgufArr a;
    int r = gguf_get_arr(g, ADDED_FLAGS_KEY, GGUF_I32, &a, e);
    if (r <= 0) return r;
    if (a.n % 2)
        return err_set(e, "'%s': %s holds an odd count of numbers (%llu), not pairs of id and flags", gguf_path(g),
                       ADDED_FLAGS_KEY, (unsigned long long)a.n);
    for (uint64_t i = 0; i < a.n; i += 2) {
        long long id = gguf_arr_int(&a, i), f = gguf_arr_int(&a, i + 1);
        int k = 0;
        while (id >= 0 && id < t->n_vocab && k < t->n_added && t->added[k] != id) k++;
        if (id < 0 || id >= t->n_vocab || k == t->n_added)
            return err_set(e, "'%s': %s names token %lld, which is not an added token", gguf_path(g), ADDED_FLAGS_KEY, id);
        if (f < 0 || f > (ADD_LSTRIP | ADD_RSTRIP | ADD_SINGLE_WORD | ADD_NORMALIZED))
            return err_set(e, "'%s': %s gives token %lld the flags %lld (0 to 15 are)", gguf_path(g), ADDED_FLAGS_KEY, id, f);
        tok_set_added_flags(t, (int)id, (unsigned)f);
    }
    return 0;
}

static void write_added_flags(const Tokenizer *t, GgufW *w) {
    int n = 0;
    int32_t *v = xmalloc(sizeof *v * 2 * (size_t)(t->n_added ? t->n_added : 1));
    for (int k = 0; k < t->n_added && t->added_flags; k++)
        if (t->added_flags[t->added[k]]) v[n++] = t->added[k], v[n++] = t->added_flags[t->added[k]];
    if (n) gguf_w_arr_i32(w, ADDED_FLAGS_KEY, (uint64_t)n, v);
    free(v);
}

// WordPiece: the pieces back in vocab.txt's spelling (a continuation prefixed "##", or as
// qkv.tokenizer.continuing_subword_prefix says).
static Tokenizer *load_wordpiece(const Gguf *g, Err *e) {
    Pieces p = {0};
    Buf lines = {0};
    Tokenizer *t = NULL;
    WordPieceOpts o;
    if (read_wordpiece_opts(g, &o, e) || read_pieces(g, false, &p, e)) goto done;
    for (int i = 0; i < p.n; i++) {
        const char *s = p.text[i];
        size_t l = p.len[i];
        if (memchr(s, '\n', l)) {
            err_set(e, "'%s': token %d holds a new line", gguf_path(g), i);
            goto done;
        }
        bool added = p.type[i] == TOKP_USER || p.type[i] == TOKP_CONTROL;
        if (l >= 3 && !memcmp(s, SP, 3)) buf_put(&lines, s + 3, l - 3);
        else if (added) buf_put(&lines, s, l); // as llama.cpp's converter writes control tokens
        else if (l >= 2 && s[0] == '[' && s[l - 1] == ']') buf_put(&lines, s, l);
        else buf_puts(&lines, o.prefix), buf_put(&lines, s, l);
        buf_putc(&lines, '\n');
    }
    t = wordpiece_from_lines(lines.data ? lines.data : "", lines.len, NULL, gguf_path(g), e);
    if (t) { // control tokens are special (BertTokenizer's five are already), user-defined ones
             // added tokens that are not; unused ones never matched
        for (int i = 0; i < t->n_vocab && i < p.n; i++)
            if (p.type[i] == TOKP_CONTROL || p.type[i] == TOKP_USER) tok_mark_added(t, i, p.type[i] == TOKP_CONTROL);
        if (t->n_vocab <= p.n) tok_set_unused(t, p.type);
        tok_index(t);
        if (read_added_flags(g, t, e)) {
            tok_free(t);
            t = NULL;
            goto done;
        }
        wordpiece_set_opts(t, &o);
    }
done:
    pieces_free(&p);
    buf_free(&lines);
    return t;
}

Tokenizer *tok_from_gguf(const Gguf *g, Err *e) {
    const char *path = gguf_path(g), *model;
    size_t ml;
    int r = gguf_get_str(g, "tokenizer.ggml.model", &model, &ml, e);
    if (r < 0) return NULL;
    if (!r) {
        err_set(e, "'%s': no tokenizer in its metadata (missing key 'tokenizer.ggml.model')", path);
        return NULL;
    }
    char kind[24];
    snprintf(kind, sizeof kind, "%.*s", (int)(ml < 23 ? ml : 23), model);
    Tokenizer *t;
    bool bert = !strcmp(kind, "bert");
    if (!strcmp(kind, "gpt2") || !strcmp(kind, "llama")) t = load_bpe(g, kind[0] == 'l', e);
    else if (bert) t = load_wordpiece(g, e);
    else {
        char q[48];
        err_set(e, "'%s': tokenizer.ggml.model '%s' is not supported (gpt2, llama and bert are)", path,
                tok_quote(model, ml, q, sizeof q));
        return NULL;
    }
    if (!t) return NULL;
    // BOS/EOS and what encoding adds: BERT puts [CLS] and [SEP] around a text; SentencePiece
    // vocabularies add BOS unless the file says otherwise, byte-level ones only when it says so
    int n = t->n_vocab;
    int bos = special_id(g, "tokenizer.ggml.bos_token_id", n, e), eos = special_id(g, "tokenizer.ggml.eos_token_id", n, e);
    int cls = special_id(g, "tokenizer.ggml.cls_token_id", n, e), sep = special_id(g, "tokenizer.ggml.seperator_token_id", n, e);
    int unk = special_id(g, "tokenizer.ggml.unknown_token_id", n, e), pad = special_id(g, "tokenizer.ggml.padding_token_id", n, e);
    bool add_bos = kind[0] == 'l', add_eos = false;
    if (bos == -2 || eos == -2 || cls == -2 || sep == -2 || unk == -2 || pad == -2 ||
        gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, e) < 0 ||
        gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &add_eos, e) < 0) {
        tok_free(t);
        return NULL;
    }
    t->unk_named = unk;
    t->pad_named = pad;
    if (bert) {
        if (cls >= 0) t->add_first = t->bos = cls;
        else if (bos >= 0) t->add_first = t->bos = bos;
        if (sep >= 0) t->add_last = t->eos = sep;
        else if (eos >= 0) t->add_last = t->eos = eos;
        if (unk >= 0) wordpiece_set_unk(t, unk);
    } else {
        t->bos = bos;
        t->eos = eos;
        t->add_first = add_bos ? bos : -1;
        t->add_last = add_eos ? eos : -1;
    }
    // the chat template an instruct model's file carries (tokenizer.chat_template), with the
    // texts of its BOS and EOS tokens
    const char *tmpl = NULL;
    size_t tl = 0;
    int has = gguf_get_str(g, "tokenizer.chat_template", &tmpl, &tl, e);
    if (has < 0) {
        tok_free(t);
        return NULL;
    }
    if (has > 0) {
        size_t bl = 0, el = 0;
        const char *bp = bos >= 0 ? tok_piece(t, bos, &bl) : NULL, *ep = eos >= 0 ? tok_piece(t, eos, &el) : NULL;
        char *bs = bp ? xmemdup0(bp, bl) : NULL, *es = ep ? xmemdup0(ep, el) : NULL;
        tok_chat_set_template(t, tmpl, tl, bs, es, path);
        free(bs), free(es);
    }
    return t;
}

// WordPiece in llama.cpp's spelling: a continuation ("##x") bare, a [SPECIAL] piece as it is,
// a word start after U+2581; control and unused tokens typed so, an added token that is not
// special typed user-defined (4), after U+2581 (as llama.cpp's converter writes it).
static void write_wordpiece(const Tokenizer *t, GgufW *w) {
    int n = t->n_vocab;
    WordPieceOpts o = wordpiece_opts(t);
    size_t pl = strlen(o.prefix);
    Buf all = {0};
    size_t *off = xmalloc((size_t)n * sizeof *off), *len = xmalloc((size_t)n * sizeof *len);
    int32_t *type = xmalloc((size_t)n * sizeof *type);
    unsigned char *is_added = xcalloc((size_t)n, 1);
    for (int k = 0; k < t->n_added; k++) is_added[t->added[k]] = 1;
    for (int i = 0; i < n; i++) {
        size_t l;
        const char *s = tok_piece(t, i, &l);
        off[i] = all.len;
        bool user = is_added[i] && !tok_is_special(t, i);
        if (user) buf_puts(&all, SP), buf_put(&all, s, l); // not special: typed user-defined, as llama.cpp spells it
        else if (l >= pl && !memcmp(s, o.prefix, pl)) buf_put(&all, s + pl, l - pl);
        else if (l >= 2 && s[0] == '[' && s[l - 1] == ']') buf_put(&all, s, l);
        else buf_puts(&all, SP), buf_put(&all, s, l);
        len[i] = all.len - off[i];
        type[i] = t->unused && t->unused[i] ? TOKP_UNUSED : tok_is_special(t, i) ? TOKP_CONTROL : user ? TOKP_USER : TOKP_NORMAL;
    }
    const char **text = xmalloc((size_t)n * sizeof *text);
    for (int i = 0; i < n; i++) text[i] = all.data ? all.data + off[i] : "";
    gguf_w_str(w, "tokenizer.ggml.model", "bert", 4);
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", (uint64_t)n, text, len);
    gguf_w_arr_i32(w, "tokenizer.ggml.token_type", (uint64_t)n, type);
    buf_free(&all);
    free(off);
    free(len);
    free(type);
    free(is_added);
    free(text);
}

int tok_write_gguf(const Tokenizer *t, GgufW *w, Err *e) {
    if (t->kind == TOK_KIND_WORDPIECE) {
        write_wordpiece(t, w);
        write_wordpiece_opts(t, w);
        write_added_flags(t, w);
        if (t->add_first >= 0) gguf_w_u32(w, "tokenizer.ggml.cls_token_id", (uint32_t)t->add_first);
        if (t->add_last >= 0) gguf_w_u32(w, "tokenizer.ggml.seperator_token_id", (uint32_t)t->add_last);
        int unk = wordpiece_unk(t), mask = tok_mask(t), pad = t->pad_named >= 0 ? t->pad_named : tok_find(t, "[PAD]", 5);
        if (unk >= 0) gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)unk);
        if (mask >= 0) gguf_w_u32(w, "tokenizer.ggml.mask_token_id", (uint32_t)mask);
        if (pad >= 0) gguf_w_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)pad);
    } else {
        if (bpe_write_gguf(t, w, e)) return -1;
        gguf_w_bool(w, "tokenizer.ggml.add_bos_token", t->add_first >= 0 && t->add_first == t->bos);
        gguf_w_bool(w, "tokenizer.ggml.add_eos_token", t->add_last >= 0 && t->add_last == t->eos);
        if (t->pad_named >= 0) gguf_w_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)t->pad_named);
    }
    if (t->bos >= 0) gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos);
    if (t->eos >= 0) gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos);
    size_t cl;
    const char *chat = tok_chat_template(t, &cl);
    if (chat) gguf_w_str(w, "tokenizer.chat_template", chat, cl);
    return 0;
}

static int no_tensor_data(void *user, int i, FILE *f, Err *e) {
    (void)user, (void)i, (void)f;
    return err_set(e, "a tokenizer GGUF has no tensors");
}

int tok_save_gguf(const Tokenizer *t, const char *path, Err *e) {
    GgufW *w = gguf_w_new();
    int rc = tok_write_gguf(t, w, e);
    if (!rc) rc = gguf_w_write(w, path, no_tensor_data, NULL, e);
    gguf_w_free(w);
    return rc;
}
