// wordpiece.c - BERT's WordPiece: loading (tokenizer.json with a WordPiece model, or
// vocab.txt with tokenizer_config.json beside it), the BERT normalizer and pre-tokenizer,
// greedy longest-match-first pieces, and the WordPiece decoder.
//
// The reference is HF tokenizers (BertNormalizer, BertPreTokenizer, WordPiece), which
// BertTokenizerFast also uses for a bare vocab.txt:
//   normalizer: clean_text drops U+0000, U+FFFD and control characters (category C* except
//     \t \n \r) and turns white space into ' '; handle_chinese_chars puts spaces around CJK
//     ideographs; strip_accents (defaults to lowercase) puts the text in NFD (decomposed, marks
//     in canonical order) and drops nonspacing marks (Mn); lowercase maps every character to
//     its lower case. The categories are those of HF's Unicode tables (unicode_norm.h).
//   pre-tokenizer: splits at white space (dropped) and around every punctuation character
//     (ASCII punctuation or category P*). A tokenizer.json whose pre_tokenizer is null (or
//     absent) has none: the text between added tokens is one word, spaces and all.
//   model: a word longer than max_input_chars_per_word characters is [UNK]; otherwise the
//     longest vocabulary piece from the left, continuations prefixed "##"; a word with a
//     position no piece covers is [UNK] as a whole.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fs.h"
#include "base/mem.h"
#include "base/utf8.h"
#include "tok/tokenizer_impl.h"
#include "tok/unicode_norm.h"

struct WordPiece {
    bool clean_text, chinese, strip_accents, lowercase;
    bool pre_split; // BertPreTokenizer's words; without a pre-tokenizer the text is one word
    int unk;
    int max_chars;
    char prefix[16];
    size_t prefix_len;
};

void wordpiece_free(struct WordPiece *w) { free(w); }

// ---- normalizer and pre-tokenizer ----

// The ideographs handle_chinese_chars spaces out, as HF tokenizers lists them: its range
// 0x2B920-0x2CEAF leaves out 0x2B820-0x2B91F, which Google's original BERT includes.
static bool is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static bool is_space(uint32_t c) { return c == '\t' || c == '\n' || c == '\r' || (uni_props(c) & UP_SPACE); }

static bool is_control(uint32_t c) { return c != '\t' && c != '\n' && c != '\r' && (uni_props(c) & UP_OTHER); }

static bool is_punct(uint32_t c) {
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126) ||
           (uni_props(c) & UP_PUNCT);
}

// The normalized code points of s (n bytes of well-formed UTF-8), as BertNormalizer does it:
// clean_text, then handle_chinese_chars, then strip_accents (NFD of the whole text, then the
// nonspacing marks dropped), then lowercase, each step over the whole text.
static void normalize(const struct WordPiece *w, const char *s, size_t n, CpVec *out) {
    CpVec a = {0}, b = {0};
    for (size_t i = 0; i < n;) {
        uint32_t c;
        i += (size_t)utf8_decode(s + i, n - i, &c);
        if (w->clean_text) {
            if (c == 0 || c == 0xFFFD || is_control(c)) continue;
            if (is_space(c)) c = ' ';
        }
        bool cjk = w->chinese && is_cjk(c);
        if (cjk) cp_push(&a, ' ');
        cp_push(&a, c);
        if (cjk) cp_push(&a, ' ');
    }
    if (w->strip_accents) {
        uni_nfd(a.v, a.n, &b);
        a.n = 0;
        for (size_t k = 0; k < b.n; k++)
            if (!(uni_props(b.v[k]) & UP_MN)) cp_push(&a, b.v[k]);
    }
    for (size_t k = 0; k < a.n; k++) {
        uint32_t l[4];
        int nl = 1;
        l[0] = a.v[k];
        if (w->lowercase) nl = uni_tolower(a.v[k], l);
        for (int j = 0; j < nl; j++) cp_push(out, l[j]);
    }
    cp_free(&a);
    cp_free(&b);
}

// The pieces of one word (code points w[0..n)), appended to out.
static void word_pieces(const Tokenizer *t, const uint32_t *wd, size_t n, Buf *tmp, IntVec *out) {
    const struct WordPiece *w = t->wp;
    if ((int)n > w->max_chars) {
        iv_push(out, w->unk);
        return;
    }
    // the UTF-8 of the word and where each character starts
    Buf utf = {0};
    size_t *at = xmalloc((n + 1) * sizeof *at);
    for (size_t i = 0; i < n; i++) {
        char u[4];
        at[i] = utf.len;
        buf_put(&utf, u, (size_t)utf8_encode(wd[i], u));
    }
    at[n] = utf.len;
    int first = out->n;
    for (size_t start = 0; start < n;) {
        int id = -1;
        size_t end = n;
        for (; end > start; end--) {
            buf_clear(tmp);
            if (start > 0) buf_put(tmp, w->prefix, w->prefix_len);
            buf_put(tmp, utf.data + at[start], at[end] - at[start]);
            id = tok_find(t, tmp->data, tmp->len);
            if (id >= 0) break;
        }
        if (id < 0) { // no piece fits: the whole word is unknown
            out->n = first;
            iv_push(out, w->unk);
            break;
        }
        iv_push(out, id);
        start = end;
    }
    free(at);
    buf_free(&utf);
}

// The words of normalized code points cps[0..n) (split at white space, punctuation alone; without
// a pre-tokenizer, as HF's tokenizers, the whole text, spaces included), as pieces.
static void words(const Tokenizer *t, const uint32_t *cps, size_t n, Buf *tmp, IntVec *out) {
    if (!t->wp->pre_split) {
        if (n) word_pieces(t, cps, n, tmp, out);
        return;
    }
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        bool end = i == n, sp = !end && is_space(cps[i]), pu = !end && is_punct(cps[i]);
        if (!end && !sp && !pu) continue;
        if (i > start) word_pieces(t, cps + start, i - start, tmp, out);
        if (pu) word_pieces(t, cps + i, 1, tmp, out);
        start = i + 1;
    }
}

// The normalized code points of the UTF-8 s[0..n) into out (cleared first).
static void decode_cps(const char *s, size_t n, CpVec *out) {
    out->n = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        i += (size_t)utf8_decode(s + i, n - i, &c);
        cp_push(out, c);
    }
}

int wordpiece_encode(const Tokenizer *t, const char *s, size_t n, unsigned flags, IntVec *out, Err *e) {
    (void)e;
    CpVec cps = {0}, sub = {0};
    normalize(t->wp, s, n, &cps);
    Buf tmp = {0}, text = {0};
    if (!t->split_normalized) {
        words(t, cps.v, cps.n, &tmp, out);
    } else { // added tokens with normalized: true are found in the normalized text
        for (size_t i = 0; i < cps.n; i++) {
            char u[4];
            buf_put(&text, u, (size_t)utf8_encode(cps.v[i], u));
        }
        size_t part = 0, lo, hi;
        int id;
        while (tok_next_added(t, text.data, text.len, part, part, flags, true, &id, &lo, &hi)) {
            decode_cps(text.data + part, lo - part, &sub);
            words(t, sub.v, sub.n, &tmp, out);
            iv_push(out, id);
            part = hi;
        }
        decode_cps(text.data ? text.data + part : "", text.len - part, &sub);
        words(t, sub.v, sub.n, &tmp, out);
    }
    buf_free(&tmp);
    buf_free(&text);
    cp_free(&cps);
    cp_free(&sub);
    return 0;
}

// The normalizer's text of s (n bytes), for the added tokens found after normalization.
static void normal_form(const Tokenizer *t, const char *s, size_t n, Buf *out) {
    CpVec cps = {0};
    normalize(t->wp, s, n, &cps);
    buf_clear(out);
    for (size_t i = 0; i < cps.n; i++) {
        char u[4];
        buf_put(out, u, (size_t)utf8_encode(cps.v[i], u));
    }
    cp_free(&cps);
}

void wordpiece_decode(const Tokenizer *t, const int *ids, int n, Buf *out) {
    const struct WordPiece *w = t->wp;
    Buf raw = {0};
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *p = tok_piece(t, ids[i], &len);
        if (!p) continue;
        if (len >= w->prefix_len && !memcmp(p, w->prefix, w->prefix_len)) p += w->prefix_len, len -= w->prefix_len;
        else if (raw.len) buf_putc(&raw, ' ');
        buf_put(&raw, p, len);
    }
    // the decoder's clean-up of spaces before punctuation and contractions
    static const char *const fix[][2] = {{" .", "."},   {" ?", "?"},   {" !", "!"},   {" ,", ","},
                                         {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"},
                                         {" 've", "'ve"}, {" 're", "'re"}};
    for (size_t k = 0; k < sizeof fix / sizeof *fix && raw.len; k++) {
        Buf next = {0};
        size_t fl = strlen(fix[k][0]);
        for (size_t i = 0; i < raw.len;) {
            if (i + fl <= raw.len && !memcmp(raw.data + i, fix[k][0], fl)) {
                buf_puts(&next, fix[k][1]);
                i += fl;
            } else {
                buf_putc(&next, raw.data[i++]);
            }
        }
        buf_free(&raw);
        raw = next;
    }
    if (raw.len) buf_put(out, raw.data, raw.len);
    buf_free(&raw);
}

// ---- loading ----

// Options of a BertNormalizer (tokenizer.json) or of tokenizer_config.json (vocab.txt).
static void read_options(struct WordPiece *w, const Json *norm, const Json *cfg) {
    w->clean_text = w->chinese = w->lowercase = true;
    const Json *sa = NULL;
    if (norm) {
        w->clean_text = json_bool_or(norm, "clean_text", true);
        w->chinese = json_bool_or(norm, "handle_chinese_chars", true);
        w->lowercase = json_bool_or(norm, "lowercase", true);
        sa = json_get(norm, "strip_accents");
    } else if (cfg) {
        w->chinese = json_bool_or(cfg, "tokenize_chinese_chars", true);
        w->lowercase = json_bool_or(cfg, "do_lower_case", true);
        sa = json_get(cfg, "strip_accents");
    }
    w->strip_accents = sa && sa->type == JSON_BOOL ? sa->b : w->lowercase;
}

static int set_unk(Tokenizer *t, const char *unk, const char *path, Err *e) {
    t->wp->unk = tok_find(t, unk, strlen(unk));
    if (t->wp->unk < 0) return err_set(e, "'%s': the unknown token '%.40s' is not in the vocabulary", path, unk);
    return 0;
}

// [CLS] and [SEP] around a text (BertTokenizer's defaults for a bare vocab.txt).
static void set_template(Tokenizer *t, const char *cls, const char *sep) {
    t->add_first = tok_find(t, cls, strlen(cls));
    t->add_last = tok_find(t, sep, strlen(sep));
    t->bos = t->add_first;
    t->eos = t->add_last;
}

Tokenizer *wordpiece_load_json(const Json *root, const char *path, Err *e) {
    const Json *model = json_get(root, "model");
    const Json *vocab = json_get(model, "vocab");
    const Json *norm = json_get(root, "normalizer"), *pre = json_get(root, "pre_tokenizer");
    if (!vocab || vocab->type != JSON_OBJ) {
        err_set(e, "'%s': model.vocab is missing or not an object", path);
        return NULL;
    }
    if (norm && norm->type != JSON_NULL && strcmp(json_str_or(norm, "type", ""), "BertNormalizer")) {
        err_set(e, "'%s': a WordPiece normalizer other than BertNormalizer is not supported", path);
        return NULL;
    }
    if (pre && pre->type != JSON_NULL && strcmp(json_str_or(pre, "type", ""), "BertPreTokenizer")) {
        err_set(e, "'%s': a WordPiece pre-tokenizer other than BertPreTokenizer is not supported", path);
        return NULL;
    }
    Tokenizer *t = tok_from_vocab_json(vocab, json_get(root, "added_tokens"), TOK_KIND_WORDPIECE, path, e);
    if (!t) return NULL;
    t->wp = xcalloc(1, sizeof *t->wp);
    if (norm && norm->type != JSON_NULL) read_options(t->wp, norm, NULL);
    else t->wp->lowercase = t->wp->strip_accents = t->wp->chinese = t->wp->clean_text = false;
    t->wp->pre_split = pre && pre->type != JSON_NULL; // null or absent: no pre-tokenizer, as for the normalizer
    // HF tokenizers reads max_input_chars_per_word as a usize (a negative or fractional one is
    // refused there too); beyond INT_MAX characters no word is that long
    const Json *mc = json_get(model, "max_input_chars_per_word");
    long long max_chars = 100;
    if (mc && mc->type != JSON_NULL && !json_int_in(mc, 0, LLONG_MAX, &max_chars)) {
        err_set(e, "'%s': model.max_input_chars_per_word must be a whole number >= 0", path);
        tok_free(t);
        return NULL;
    }
    t->wp->max_chars = max_chars > INT_MAX ? INT_MAX : (int)max_chars;
    const char *prefix = json_str_or(model, "continuing_subword_prefix", "##");
    t->wp->prefix_len = strlen(prefix);
    if (t->wp->prefix_len >= sizeof t->wp->prefix) {
        err_set(e, "'%s': model.continuing_subword_prefix is %zu bytes; qkv keeps at most %zu", path, t->wp->prefix_len,
                sizeof t->wp->prefix - 1);
        tok_free(t);
        return NULL;
    }
    memcpy(t->wp->prefix, prefix, t->wp->prefix_len + 1);
    if (set_unk(t, json_str_or(model, "unk_token", "[UNK]"), path, e)) {
        tok_free(t);
        return NULL;
    }
    if (tok_read_template(t, json_get(root, "post_processor"), path, e)) {
        tok_free(t);
        return NULL;
    }
    if (norm && norm->type != JSON_NULL) tok_set_added_forms(t, normal_form);
    if (t->add_first >= 0) t->bos = t->add_first;
    if (t->add_last >= 0) t->eos = t->add_last;
    return t;
}

Tokenizer *wordpiece_from_lines(const char *text, size_t n, const Json *cfg, const char *path, Err *e) {
    Tokenizer *t = tok_from_lines(text, n, TOK_KIND_WORDPIECE, path, e);
    if (!t) return NULL;
    // the special tokens of BertTokenizer: never split, recognised in text
    static const char *const keys[] = {"unk_token", "sep_token", "pad_token", "cls_token", "mask_token"};
    static const char *const dflt[] = {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"};
    for (int i = 0; i < 5; i++) {
        const char *s = json_str_or(cfg, keys[i], dflt[i]);
        int id = tok_find(t, s, strlen(s));
        if (id >= 0) tok_mark_added(t, id, true);
    }
    tok_index(t);
    t->wp = xcalloc(1, sizeof *t->wp);
    read_options(t->wp, NULL, cfg);
    t->wp->clean_text = t->wp->pre_split = true;
    t->wp->max_chars = 100;
    memcpy(t->wp->prefix, "##", 3);
    t->wp->prefix_len = 2;
    if (set_unk(t, json_str_or(cfg, "unk_token", "[UNK]"), path, e)) {
        tok_free(t);
        return NULL;
    }
    set_template(t, json_str_or(cfg, "cls_token", "[CLS]"), json_str_or(cfg, "sep_token", "[SEP]"));
    return t;
}

void wordpiece_set_unk(Tokenizer *t, int id) { t->wp->unk = id; }
int wordpiece_unk(const Tokenizer *t) { return t->wp->unk; }
WordPieceOpts wordpiece_opts(const Tokenizer *t) {
    const struct WordPiece *w = t->wp;
    WordPieceOpts o = {w->clean_text, w->chinese, w->strip_accents, w->lowercase, w->pre_split, w->max_chars, ""};
    memcpy(o.prefix, w->prefix, sizeof o.prefix);
    return o;
}

void wordpiece_set_opts(Tokenizer *t, const WordPieceOpts *o) {
    struct WordPiece *w = t->wp;
    w->clean_text = o->clean_text, w->chinese = o->chinese, w->strip_accents = o->strip_accents;
    w->lowercase = o->lowercase, w->pre_split = o->pre_split, w->max_chars = o->max_chars;
    snprintf(w->prefix, sizeof w->prefix, "%s", o->prefix);
    w->prefix_len = strlen(w->prefix);
    // as wordpiece_load_json with a normalizer: normalized added tokens are found after it
    if (w->clean_text || w->chinese || w->strip_accents || w->lowercase) tok_set_added_forms(t, normal_form);
}

Tokenizer *wordpiece_load_vocab_txt(const char *path, Err *e) {
    Buf text = {0};
    if (fs_read_file(path, (size_t)1 << 28, &text, e)) return NULL;
    // tokenizer_config.json beside it says how BertTokenizer normalizes and names its specials
    char *dir = fs_dirname(path), *cfg_path = fs_join(dir, "tokenizer_config.json");
    Json *cfg = fs_present(cfg_path) ? json_parse_file(cfg_path, e) : NULL;
    Tokenizer *t = NULL;
    if (!fs_present(cfg_path) || cfg) t = wordpiece_from_lines(text.data ? text.data : "", text.len, cfg, path, e);
    if (t) t->unterminated = text.len && text.data[text.len - 1] != '\n';
    json_free(cfg);
    free(cfg_path);
    free(dir);
    buf_free(&text);
    return t;
}
