// tokenizer.c - finding and loading a tokenizer from a path, and what every kind of tokenizer
// shares: pieces, lookup by bytes, special-token splitting, decoding.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tok/tokenizer_impl.h"
#include "tok/unicode.h"
#include "base/gguf.h"
#include "base/utf8.h"
#include "base/fs.h"
#include "base/mem.h"

// ---- shared helpers ----

// The text added token k (an index into t->added) is found by in the text: its content.
static const char *added_text(const Tokenizer *t, int k, size_t *len) {
    if (t->added_text && t->added_text[k]) {
        *len = strlen(t->added_text[k]);
        return t->added_text[k];
    }
    int id = t->added[k];
    *len = t->off[id + 1] - t->off[id] - 1;
    return t->blob + t->off[id];
}

void tok_index(Tokenizer *t) {
    strmap_free(&t->by_bytes);
    strmap_init(&t->by_bytes, (size_t)t->n_vocab);
    // A text the vocabulary lists twice finds its last id, as HF's loaders and llama.cpp fill
    // their maps (vocab.txt, vocab.json, tokenizer.json, GGUF); byte-fallback tokens only where
    // no other token has their bytes: the text "a" finds the token a, not <0x61>. Unused tokens
    // are not found by their text.
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < t->n_vocab; i++) {
            if ((t->fallback && t->fallback[i]) != (pass == 1) || (t->unused && t->unused[i])) continue;
            const char *s = t->blob + t->off[i];
            size_t len = t->off[i + 1] - t->off[i] - 1;
            if (pass == 0) strmap_set(&t->by_bytes, s, len, i);
            else strmap_put(&t->by_bytes, s, len, i);
        }
    memset(t->added_first, 0, sizeof t->added_first);
    for (int k = 0; k < t->n_added; k++) {
        size_t len;
        const char *s = added_text(t, k, &len);
        if (len) t->added_first[(unsigned char)s[0]] = 1;
    }
}

bool tok_set_unused(Tokenizer *t, const int *type) {
    for (int i = 0; type && i < t->n_vocab; i++)
        if (type[i] == TOKP_UNUSED) {
            if (!t->unused) t->unused = xcalloc((size_t)t->n_vocab, 1);
            t->unused[i] = 1;
        }
    return t->unused != NULL;
}

const char *tok_quote(const char *s, size_t len, char *out, size_t cap) {
    size_t o = 0, limit = cap > 8 ? cap - 8 : 0;
    for (size_t i = 0; i < len; i++) {
        if (o >= limit) {
            memcpy(out + o, "...", 4);
            return out;
        }
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else out[o++] = (char)c;
    }
    out[o] = 0;
    return out;
}

// ---- building ----

Tokenizer *tok_alloc(TokKind kind) {
    Tokenizer *t = xcalloc(1, sizeof *t);
    t->kind = kind;
    t->bos = t->eos = t->add_first = t->add_last = t->unk_named = t->pad_named = -1;
    return t;
}

unsigned tok_added_flags_json(const Json *entry) {
    return (json_bool_or(entry, "lstrip", false) ? ADD_LSTRIP : 0) | (json_bool_or(entry, "rstrip", false) ? ADD_RSTRIP : 0) |
           (json_bool_or(entry, "single_word", false) ? ADD_SINGLE_WORD : 0) |
           (json_bool_or(entry, "normalized", false) ? ADD_NORMALIZED : 0);
}

void tok_set_added_flags(Tokenizer *t, int id, unsigned flags) {
    if (!t->added_flags) t->added_flags = xcalloc((size_t)t->n_vocab, 1);
    t->added_flags[id] = (unsigned char)flags;
}

void tok_set_added_text(Tokenizer *t, int k, const char *s, size_t n) {
    if (!t->added_text) t->added_text = xcalloc((size_t)t->n_added, sizeof *t->added_text);
    free(t->added_text[k]);
    t->added_text[k] = xstrndup(s, n);
}

void tok_set_added_forms(Tokenizer *t, void (*form)(const Tokenizer *t, const char *s, size_t n, Buf *out)) {
    if (!t->added_flags) return;
    Buf b = {0};
    for (int k = 0; k < t->n_added; k++) {
        if (!(t->added_flags[t->added[k]] & ADD_NORMALIZED)) continue;
        size_t len;
        const char *s = added_text(t, k, &len);
        buf_clear(&b);
        form(t, s, len, &b);
        tok_set_added_text(t, k, b.data ? b.data : "", b.len);
        t->split_normalized = true;
    }
    buf_free(&b);
}

void tok_mark_added(Tokenizer *t, int id, bool special) {
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i] == id) {
            t->special[id] |= special;
            return;
        }
    t->added = xrealloc(t->added, sizeof *t->added * (size_t)(t->n_added + 1));
    if (t->added_text) {
        t->added_text = xrealloc(t->added_text, sizeof *t->added_text * (size_t)(t->n_added + 1));
        t->added_text[t->n_added] = NULL;
    }
    t->added[t->n_added++] = id;
    t->special[id] |= special;
}

// The pieces text[id] (n of them, none missing) as a tokenizer.
static Tokenizer *from_texts(const char *const *text, const size_t *len, int n, TokKind kind, const char *path,
                             Err *e) {
    Buf blob = {0};
    Tokenizer *t = tok_alloc(kind);
    t->n_vocab = n;
    t->off = xmalloc(((size_t)n + 1) * sizeof *t->off);
    t->special = xcalloc((size_t)n, 1);
    for (int id = 0; id < n; id++) {
        if (!text[id]) {
            err_set(e, "'%s': no token has id %d (ids must run from 0 to %d without gaps)", path, id, n - 1);
            goto fail;
        }
        if (blob.len > UINT32_MAX - len[id] - 1) {
            err_set(e, "'%s': the vocabulary is too large", path);
            goto fail;
        }
        t->off[id] = (uint32_t)blob.len;
        buf_put(&blob, text[id], len[id]);
        buf_putc(&blob, 0);
    }
    t->off[n] = (uint32_t)blob.len;
    t->blob = buf_take(&blob);
    return t;
fail:
    buf_free(&blob);
    tok_free(t);
    return NULL;
}

Tokenizer *tok_from_vocab_json(const Json *vocab, const Json *added, TokKind kind, const char *path, Err *e) {
    char q[64];
    int n = 0;
    size_t na = added && added->type == JSON_ARR ? added->len : 0;
    if (added && added->type != JSON_ARR && added->type != JSON_NULL) {
        err_set(e, "'%s': added_tokens is not an array", path);
        return NULL;
    }
    for (size_t i = 0; i < vocab->len; i++) {
        long long id;
        if (!json_int_in(&vocab->items[i], 0, TOK_MAX_VOCAB - 1, &id)) {
            err_set(e, "'%s': token '%s' has an id that is not an integer from 0 to %d", path,
                    tok_quote(vocab->keys[i], vocab->klens[i], q, sizeof q), TOK_MAX_VOCAB - 1);
            return NULL;
        }
        if (id >= n) n = (int)id + 1;
    }
    for (size_t i = 0; i < na; i++) {
        long long id;
        if (!json_int_in(json_get(&added->items[i], "id"), 0, TOK_MAX_VOCAB - 1, &id) ||
            json_str_or(&added->items[i], "content", NULL) == NULL) {
            err_set(e, "'%s': added token %zu has no content or a bad id", path, i + 1);
            return NULL;
        }
        if (id >= n) n = (int)id + 1;
    }
    if (!n) {
        err_set(e, "'%s': the vocabulary is empty", path);
        return NULL;
    }
    const char **text = xcalloc((size_t)n, sizeof *text);
    size_t *len = xcalloc((size_t)n, sizeof *len);
    Tokenizer *t = NULL;
    for (size_t i = 0; i < vocab->len; i++) {
        int id = (int)vocab->items[i].num;
        if (text[id]) {
            err_set(e, "'%s': two tokens have id %d", path, id);
            goto done;
        }
        text[id] = vocab->keys[i];
        len[id] = vocab->klens[i];
    }
    for (size_t i = 0; i < na; i++) {
        const Json *c = json_get(&added->items[i], "content");
        int id = (int)json_num_or(&added->items[i], "id", 0);
        if (text[id] && (len[id] != c->len || memcmp(text[id], c->str, c->len))) {
            err_set(e, "'%s': added token '%s' has id %d, which belongs to another token", path,
                    tok_quote(c->str, c->len, q, sizeof q), id);
            goto done;
        }
        text[id] = c->str;
        len[id] = c->len;
    }
    t = from_texts(text, len, n, kind, path, e);
    for (size_t i = 0; t && i < na; i++) {
        int id = (int)json_num_or(&added->items[i], "id", 0);
        tok_mark_added(t, id, json_bool_or(&added->items[i], "special", false));
        tok_set_added_flags(t, id, tok_added_flags_json(&added->items[i]));
    }
    if (t) tok_index(t);
done:
    free(text);
    free(len);
    return t;
}

Tokenizer *tok_from_lines(const char *s, size_t n, TokKind kind, const char *path, Err *e) {
    int count = 0;
    for (size_t i = 0; i < n; i++) count += s[i] == '\n';
    if (n && s[n - 1] != '\n') count++;
    if (!count) {
        err_set(e, "'%s': the vocabulary is empty", path);
        return NULL;
    }
    if (count > TOK_MAX_VOCAB) {
        err_set(e, "'%s': more than %d tokens", path, TOK_MAX_VOCAB);
        return NULL;
    }
    const char **text = xcalloc((size_t)count, sizeof *text);
    size_t *len = xcalloc((size_t)count, sizeof *len);
    int id = 0;
    for (size_t i = 0; i < n && id < count;) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - s) : n, l = end - i;
        if (l && s[i + l - 1] == '\r') l--;
        text[id] = s + i;
        len[id++] = l;
        i = end + 1;
    }
    Tokenizer *t = from_texts(text, len, count, kind, path, e);
    if (t) tok_index(t);
    free(text);
    free(len);
    return t;
}

// The id of the special token name (len bytes) a post_processor puts around a text: as HF
// tokenizers takes it, the one id its special_tokens entry gives (map: that object; NULL when the
// post_processor has none, BertProcessing: then given, the id beside the name; else the
// vocabulary's token of that name). -1 with e naming the token when none is found or the id is no
// token: HF cannot use such a file, and dropping the token fed the model texts without it.
static int template_token(const Tokenizer *t, const Json *map, const Json *given, const char *name, size_t len,
                          const char *path, Err *e) {
    char q[64];
    tok_quote(name, len, q, sizeof q);
    long long id = -1;
    if (map) {
        const Json *ent = NULL;
        for (size_t i = 0; map->type == JSON_OBJ && i < map->len && !ent; i++)
            if (map->klens[i] == len && !memcmp(map->keys[i], name, len)) ent = &map->items[i];
        const Json *ids = json_get(ent, "ids");
        if (!ent)
            return err_set(e, "'%s': post_processor: special token '%s' of its template is not in its special_tokens",
                           path, q);
        if (!ids || ids->type != JSON_ARR || ids->len != 1)
            return err_set(e, "'%s': post_processor: special token '%s' stands for %zu ids; qkv reads one", path, q,
                           ids && ids->type == JSON_ARR ? ids->len : 0);
        given = json_at(ids, 0);
    }
    if (given && !json_int_in(given, 0, INT32_MAX, &id))
        return err_set(e, "'%s': post_processor: special token '%s': its id is not a whole number", path, q);
    if (!given && (id = tok_find(t, name, len)) < 0)
        return err_set(e, "'%s': post_processor: special token '%s' is not in the vocabulary", path, q);
    if (id >= tok_vocab_size(t))
        return err_set(e, "'%s': post_processor: special token '%s' is id %lld, past the vocabulary (%d tokens)", path,
                       q, id, tok_vocab_size(t));
    return (int)id;
}

int tok_read_template(Tokenizer *t, const Json *pp, const char *path, Err *e) {
    const char *type = json_str_or(pp, "type", "");
    const Json *single = NULL;
    if (!strcmp(type, "Sequence")) { // e.g. ByteLevel then TemplateProcessing
        const Json *list = json_get(pp, "processors");
        for (size_t i = 0; list && i < list->len; i++)
            if (tok_read_template(t, &list->items[i], path, e)) return -1;
        return 0;
    }
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) { // cls, sep: [name, id]
        const Json *cls = json_get(pp, "cls"), *sep = json_get(pp, "sep");
        const Json *cn = json_at(cls, 0), *sn = json_at(sep, 0);
        if (cn && cn->type == JSON_STR &&
            (t->add_first = template_token(t, NULL, json_at(cls, 1), cn->str, cn->len, path, e)) < 0)
            return -1;
        if (sn && sn->type == JSON_STR &&
            (t->add_last = template_token(t, NULL, json_at(sep, 1), sn->str, sn->len, path, e)) < 0)
            return -1;
        return 0;
    }
    if (strcmp(type, "TemplateProcessing") || !(single = json_get(pp, "single")) || single->type != JSON_ARR) return 0;
    const Json *map = json_get(pp, "special_tokens");
    bool before = true; // special tokens before $A go first, those after it last
    for (size_t i = 0; i < single->len; i++) {
        const Json *st = json_get(&single->items[i], "SpecialToken"), *id = json_get(st, "id");
        if (!id || id->type != JSON_STR) {
            before = false;
            continue;
        }
        int tid = template_token(t, map, NULL, id->str, id->len, path, e);
        if (tid < 0) return -1;
        if (before) t->add_first = tid;
        else t->add_last = tid;
    }
    return 0;
}

// ---- loading ----

// The path of name in the directory that holds file (or in dir itself when is_dir).
static char *sibling(const char *path, bool is_dir, const char *name) {
    Buf b = {0};
    if (is_dir) {
        buf_printf(&b, "%s/%s", path, name);
    } else {
        const char *slash = strrchr(path, '/');
        if (slash) buf_put(&b, path, (size_t)(slash - path + 1));
        buf_puts(&b, name);
    }
    return buf_take(&b);
}

// A tokenizer.json (already parsed): dispatch on model.type.
static Tokenizer *load_tokenizer_json(const Json *root, const char *path, Err *e) {
    const Json *model = json_get(root, "model");
    const char *type = json_str_or(model, "type", NULL);
    if (!type && json_get(model, "merges")) type = "BPE"; // files written before "type" existed
    if (!type) {
        err_set(e, "'%s': model.type is missing", path);
        return NULL;
    }
    if (!strcmp(type, "BPE")) return bpe_load_json(root, path, e);
    if (!strcmp(type, "WordPiece")) return wordpiece_load_json(root, path, e);
    char q[64];
    err_set(e, "'%s': tokenizer model type '%s' is not supported", path,
            tok_quote(type, strlen(type), q, sizeof q));
    return NULL;
}

// vocab.json / encoder.json (already parsed): its merges file sits beside it.
static Tokenizer *load_vocab_json(const Json *vocab, const char *path, Err *e) {
    bool encoder = !strcmp(fs_basename(path), "encoder.json");
    const char *names[2] = {encoder ? "vocab.bpe" : "merges.txt", encoder ? "merges.txt" : "vocab.bpe"};
    for (int i = 0; i < 2; i++) {
        char *m = sibling(path, false, names[i]);
        if (fs_present(m)) {
            Tokenizer *t = bpe_load_vocab(vocab, path, m, e);
            free(m);
            return t;
        }
        free(m);
    }
    err_set(e, "'%s': no %s beside it (a BPE vocabulary needs its merges)", path, names[0]);
    return NULL;
}

static Tokenizer *load_json_file(const char *path, Err *e) {
    Json *j = json_parse_file(path, e);
    if (!j) return NULL;
    Tokenizer *t;
    const Json *model = json_get(j, "model");
    bool vocab = j->type == JSON_OBJ && j->len && j->items[0].type == JSON_NUM; // token -> id
    if (model && model->type == JSON_OBJ) t = load_tokenizer_json(j, path, e);
    else if (vocab) t = load_vocab_json(j, path, e);
    else // config.json, tokenizer_config.json, ...: not a tokenizer (it asked for merges.txt)
        err_set(e, "'%s' is not a tokenizer (a tokenizer.json has \"model\", a vocab.json maps tokens to ids): give "
                   "the tokenizer file or the model's folder",
                path), t = NULL;
    json_free(j);
    return t;
}

// Load the pair vocab + merges named vocab_name / merges_name in dir; NULL with *found false
// when either file is absent.
static Tokenizer *load_pair(const char *dir, bool is_dir, const char *vocab_name, const char *merges_name,
                            bool *found, Err *e) {
    char *v = sibling(dir, is_dir, vocab_name), *m = sibling(dir, is_dir, merges_name);
    Tokenizer *t = NULL;
    *found = fs_present(v) && fs_present(m);
    if (*found) t = tok_load_vocab_merges(v, m, e);
    free(v);
    free(m);
    return t;
}

static Tokenizer *load_dir(const char *dir, Err *e) {
    char *tj = sibling(dir, true, "tokenizer.json");
    if (fs_present(tj)) {
        Tokenizer *t = load_json_file(tj, e);
        free(tj);
        return t;
    }
    free(tj);
    bool found;
    Tokenizer *t = load_pair(dir, true, "vocab.json", "merges.txt", &found, e);
    if (found) return t;
    t = load_pair(dir, true, "encoder.json", "vocab.bpe", &found, e);
    if (found) return t;
    char *vt = sibling(dir, true, "vocab.txt");
    if (fs_present(vt)) {
        t = wordpiece_load_vocab_txt(vt, e);
        free(vt);
        return t;
    }
    free(vt);
    char *tg = sibling(dir, true, "tokenizer.gguf"); // what a checkpoint of a GGUF model keeps
    if (fs_present(tg)) {
        Gguf *g = gguf_open(tg, e);
        t = g ? tok_from_gguf(g, e) : NULL;
        gguf_close(g);
        free(tg);
        return t;
    }
    free(tg);
    err_set(e, "'%s': no tokenizer found (expected tokenizer.json, vocab.json + merges.txt, "
               "encoder.json + vocab.bpe, vocab.txt or tokenizer.gguf)", dir);
    return NULL;
}

static Tokenizer *load_path(const char *path, Err *e);

Tokenizer *tok_load(const char *path, Err *e) {
    Tokenizer *t = load_path(path, e);
    if (t) { // the chat template beside the tokenizer (or in its directory)
        struct stat st;
        char *dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? xstrdup(path) : fs_dirname(path);
        if (tok_config_load(t, dir, e)) tok_free(t), t = NULL;
        free(dir);
    }
    return t;
}

static Tokenizer *load_path(const char *path, Err *e) {
    struct stat st;
    if (stat(path, &st) != 0) {
        err_set(e, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) return load_dir(path, e);
    size_t pl = strlen(path);
    if (gguf_probe(path) || (pl > 5 && !strcmp(path + pl - 5, ".gguf"))) { // its metadata (a model's, or a vocabulary alone)
        Gguf *g = gguf_open(path, e);
        Tokenizer *t = g ? tok_from_gguf(g, e) : NULL;
        gguf_close(g);
        return t;
    }
    const char *name = fs_basename(path);
    size_t n = strlen(name);
    if (n >= 5 && !strcmp(name + n - 5, ".json")) return load_json_file(path, e);
    bool found;
    Tokenizer *t = NULL;
    if (!strcmp(name, "merges.txt")) t = load_pair(path, false, "vocab.json", "merges.txt", &found, e);
    else if (!strcmp(name, "vocab.bpe")) t = load_pair(path, false, "encoder.json", "vocab.bpe", &found, e);
    else if (n >= 4 && !strcmp(name + n - 4, ".txt")) return wordpiece_load_vocab_txt(path, e);
    else if (n >= 4 && !strcmp(name + n - 4, ".bin")) return bpe_load_llama2c(path, e);
    else {
        err_set(e, "'%s': not a tokenizer file qkv reads (tokenizer.json, vocab.json + merges.txt, "
                   "encoder.json + vocab.bpe, vocab.txt, a llama2.c tokenizer .bin, a GGUF)", path);
        return NULL;
    }
    if (!found) err_set(e, "'%s': its vocabulary (%s) is not beside it", path,
                        !strcmp(name, "merges.txt") ? "vocab.json" : "encoder.json");
    return t;
}

void tok_free(Tokenizer *t) {
    if (!t) return;
    free(t->blob);
    free(t->off);
    free(t->special);
    free(t->fallback);
    free(t->unused);
    free(t->added);
    free(t->added_flags);
    for (int k = 0; t->added_text && k < t->n_added; k++) free(t->added_text[k]);
    free(t->added_text);
    strmap_free(&t->by_bytes);
    bpe_free(t->bpe);
    wordpiece_free(t->wp);
    tok_chat_free(t->chat);
    free(t);
}

// ---- queries ----

TokKind tok_kind(const Tokenizer *t) { return t->kind; }
int tok_vocab_size(const Tokenizer *t) { return t->n_vocab; }
bool tok_unterminated(const Tokenizer *t) { return t->unterminated; }
int tok_bos(const Tokenizer *t) { return t->bos; }
int tok_eos(const Tokenizer *t) { return t->eos; }
bool tok_space_prefixed(const Tokenizer *t) { return t->kind == TOK_KIND_BYTE_BPE && bpe_space_prefixed(t); }
bool tok_ends_text(const Tokenizer *t, int id) { return id >= 0 && (id == t->eos || (t->bos_ends && id == t->bos)); }

const char *tok_piece(const Tokenizer *t, int id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->off[id + 1] - t->off[id] - 1;
    return t->blob + t->off[id];
}

int tok_find(const Tokenizer *t, const char *bytes, size_t len) {
    return strmap_get(&t->by_bytes, bytes, len);
}

bool tok_is_special(const Tokenizer *t, int id) {
    return id >= 0 && id < t->n_vocab && t->special[id];
}

void tok_decode(const Tokenizer *t, const int *ids, int n, Buf *out) {
    if (t->kind == TOK_KIND_WORDPIECE) {
        wordpiece_decode(t, ids, n, out);
        return;
    }
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *p = tok_piece(t, ids[i], &len);
        if (p) buf_put(out, p, len);
    }
}

void tok_piece_display(const Tokenizer *t, int id, Buf *out) {
    size_t len;
    const char *p = tok_piece(t, id, &len);
    if (!p) return;
    for (size_t i = 0; i < len;) {
        int k = utf8_valid_len(p + i, len - i);
        if (k > 0) {
            buf_put(out, p + i, (size_t)k);
            i += (size_t)k;
        } else {
            for (int j = 0; j < -k; j++) buf_printf(out, "<0x%02X>", (unsigned char)p[i + (size_t)j]);
            i += (size_t)-k;
        }
    }
}

// ---- encoding ----

// The code point ending at s[i] (i > 0) / starting at s[i] (i < n), its length in *len.
static uint32_t cp_before(const char *s, size_t i, size_t *len) {
    size_t k = i - 1;
    while (k > 0 && utf8_is_cont(s[k])) k--;
    uint32_t c;
    utf8_decode(s + k, i - k, &c);
    *len = i - k;
    return c;
}

static uint32_t cp_at(const char *s, size_t n, size_t i, size_t *len) {
    uint32_t c;
    *len = (size_t)utf8_decode(s + i, n - i, &c);
    return c;
}

bool tok_next_added(const Tokenizer *t, const char *s, size_t n, size_t from, size_t floor, unsigned flags,
                    bool normalized, int *id, size_t *a, size_t *b) {
    for (size_t i = from; i < n;) {
        // the longest token of this pass whose text starts at s[i]
        size_t best = 0;
        int best_k = -1;
        if (normalized || t->added_first[(unsigned char)s[i]]) {
            for (int k = 0; k < t->n_added; k++) {
                int tid = t->added[k];
                unsigned f = t->added_flags ? t->added_flags[tid] : 0;
                if (t->special[tid] && !(flags & TOK_PARSE_SPECIAL)) continue;
                bool late = t->split_normalized && (f & ADD_NORMALIZED);
                if (late != normalized) continue;
                size_t len;
                const char *txt = added_text(t, k, &len);
                if (len > best && len <= n - i && !memcmp(s + i, txt, len)) best = len, best_k = k;
            }
        }
        // the text is whole characters: a match starts and ends between two (an added token
        // that stands for a lone byte matches no character)
        if (best && (utf8_is_cont(s[i]) || (i + best < n && utf8_is_cont(s[i + best])))) best = 0;
        if (!best) {
            i++;
            continue;
        }
        int tid = t->added[best_k];
        unsigned f = t->added_flags ? t->added_flags[tid] : 0;
        size_t lo = i, hi = i + best, k;
        if ((f & ADD_SINGLE_WORD) &&
            ((lo > 0 && uni_is_word(cp_before(s, lo, &k))) || (hi < n && uni_is_word(cp_at(s, n, hi, &k))))) {
            i = hi; // not a word of its own: plain text
            continue;
        }
        if (f & ADD_LSTRIP) // the white space before it, back to floor
            while (lo > floor && uni_is_space(cp_before(s, lo, &k))) lo -= k;
        if (f & ADD_RSTRIP)
            while (hi < n && uni_is_space(cp_at(s, n, hi, &k))) hi += k;
        *id = tid, *a = lo, *b = hi;
        return true;
    }
    return false;
}

static int encode_part(const Tokenizer *t, const char *s, size_t n, bool at_start, unsigned flags, IntVec *out,
                       Err *e) {
    if (!n) return 0;
    switch (t->kind) {
    case TOK_KIND_BYTE_BPE: return bpe_encode(t, s, n, at_start, flags, out, e);
    case TOK_KIND_WORDPIECE: return wordpiece_encode(t, s, n, flags, out, e);
    }
    return err_set(e, "unknown tokenizer kind");
}

int tok_encode(const Tokenizer *t, const char *text, size_t len, unsigned flags, IntVec *out, Err *e) {
    int start = out->n;
    if (!text) text = "", len = 0;
    // Read the text as the reference does: ill-formed UTF-8 becomes U+FFFD per maximal subpart.
    Buf clean = {0};
    const char *s = text;
    size_t n = len;
    for (size_t i = 0; i < len;) {
        int k = utf8_valid_len(text + i, len - i);
        if (k < 0 && !clean.data) buf_put(&clean, text, i);
        if (k < 0) buf_put(&clean, "\xEF\xBF\xBD", 3);
        else if (clean.data) buf_put(&clean, text + i, (size_t)k);
        i += (size_t)(k < 0 ? -k : k);
    }
    if (clean.data) s = clean.data, n = clean.len;

    if ((flags & TOK_ADD_SPECIAL) && t->add_first >= 0) iv_push(out, t->add_first);
    // Added tokens split the text first; each part between them is pre-tokenized alone.
    size_t part = 0, a, b;
    int id;
    while (t->n_added && tok_next_added(t, s, n, part, part, flags, false, &id, &a, &b)) {
        if (encode_part(t, s + part, a - part, part == 0, flags, out, e) < 0) goto fail;
        iv_push(out, id);
        part = b;
    }
    if (encode_part(t, s + part, n - part, part == 0, flags, out, e) < 0) goto fail;
    if ((flags & TOK_ADD_SPECIAL) && t->add_last >= 0) iv_push(out, t->add_last);
    buf_free(&clean);
    return out->n - start;
fail:
    buf_free(&clean);
    out->n = start;
    return -1;
}

int tok_mask(const Tokenizer *t) {
    static const char *const names[] = {"[MASK]", "<mask>"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        int id = tok_find(t, names[i], strlen(names[i]));
        if (id >= 0 && t->special[id]) return id;
    }
    return -1;
}

int tok_add_first(const Tokenizer *t) { return t->add_first; }
int tok_add_last(const Tokenizer *t) { return t->add_last; }
