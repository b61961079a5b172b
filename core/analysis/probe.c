// probe.c - linear probes over the residual stream: datasets (JSONL or built in), feature rows
// read through the trace (lens_hidden), multinomial logistic regression, the layer sweep.
#include "analysis/probe.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/lens.h"
#include "base/buf.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/strmap.h"
#include "base/utf8.h"
#include "base/vec.h"
#include "eval/sample.h"
#include "kern/pool.h"
#include "tok/unicode_norm.h"

// ---------------------------------------------------------------------------------------
// Datasets

void probe_set_free(ProbeSet *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->text[i]);
        if (s->label) free(s->label[i]);
    }
    for (int i = 0; s->span0 && i < s->span0[s->n + 1]; i++) free(s->spans[i].label); // and a refused line's
    free(s->name), free(s->text), free(s->label), free(s->span0), free(s->spans), free(s->other), free(s->group);
    memset(s, 0, sizeof *s);
}

// Room for one more example (and its label slot).
static void set_grow(ProbeSet *s, int *cap) {
    if (s->n < *cap) return;
    *cap = *cap ? 2 * *cap : 64;
    s->text = xrealloc(s->text, sizeof *s->text * (size_t)*cap);
    s->label = xrealloc(s->label, sizeof *s->label * (size_t)*cap);
    s->group = xrealloc(s->group, sizeof *s->group * (size_t)*cap);
    s->span0 = xrealloc(s->span0, sizeof *s->span0 * (size_t)(*cap + 2));
}

// Add a span to the example being built (s->n): its spans end at span0[n + 1].
static void set_span(ProbeSet *s, int *cap, int start, int end, const char *label) {
    int k = s->span0[s->n + 1];
    if (k >= *cap) {
        *cap = *cap ? 2 * *cap : 256;
        s->spans = xrealloc(s->spans, sizeof *s->spans * (size_t)*cap);
    }
    s->spans[k] = (ProbeSpan){start, end, xstrdup(label)};
    s->span0[s->n + 1]++;
}

int probe_set_read(const char *path, const char *other, ProbeSet *s, Err *e) {
    memset(s, 0, sizeof *s);
    Buf b = {0};
    if (fs_read_file(path, (size_t)1 << 30, &b, e)) return -1;
    s->name = xstrdup(fs_basename(path));
    s->other = other ? xstrdup(other) : NULL;
    int cap = 0, scap = 0, line = 0, kind = 0; // kind: 1 sentence level, 2 token level
    int rc = 0;
    // the groups seen, keyed "s" + a string or "i" + a whole number (so "1" and 1 differ); the
    // map borrows its keys from gkeys
    StrMap groups = {0};
    char **gkeys = NULL;
    int gcap = 0, ngk = 0;
    set_grow(s, &cap);
    s->span0[0] = s->span0[1] = 0;
    for (size_t at = 0; at < b.len && !rc;) {
        const char *p = b.data + at, *nl = memchr(p, '\n', b.len - at);
        size_t len = nl ? (size_t)(nl - p) : b.len - at;
        at += len + 1, line++;
        size_t k = 0;
        while (k < len && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r')) k++;
        if (k == len) continue;
        Json *j = json_line_ready(p, &p, &len, line, e) ? NULL : json_parse(p, len, e);
        if (!j) {
            rc = err_prefix(e, "'%s' line %d", path, line);
            break;
        }
        const Json *text = json_get(j, "text"), *label = json_get(j, "label"), *labels = json_get(j, "labels");
        const Json *group = json_get(j, "group");
        long long gi = 0;
        int kj = labels ? 2 : label ? 1 : 0;
        if (j->type != JSON_OBJ || !text || text->type != JSON_STR || memchr(text->str, 0, text->len))
            rc = err_set(e, "'%s' line %d: an object with a \"text\" string expected", path, line);
        else if (!kj || (label && labels))
            rc = err_set(e, "'%s' line %d: \"label\" (sentence level) or \"labels\" (token level) expected", path, line);
        else if (kind && kj != kind)
            rc = err_set(e, "'%s' line %d: %s, after lines with %s: one kind per dataset", path, line,
                         kj == 2 ? "\"labels\"" : "\"label\"", kind == 2 ? "\"labels\"" : "\"label\"");
        else if (kj == 1 && label->type != JSON_STR && label->type != JSON_NUM && label->type != JSON_BOOL)
            rc = err_set(e, "'%s' line %d: \"label\" must be a string, number or boolean", path, line);
        else if (kj == 2 && labels->type != JSON_ARR)
            rc = err_set(e, "'%s' line %d: \"labels\" must be a list of [start, end, \"LABEL\"]", path, line);
        else if (!text->len) // no token of its own: it gave no row, and its label went unseen
            rc = err_set(e, "'%s' line %d: the text is empty", path, line);
        else if (group && group->type != JSON_STR && !json_int_in(group, -(1ll << 53), 1ll << 53, &gi))
            rc = err_set(e, "'%s' line %d: \"group\" must be a string or a whole number", path, line);
        for (size_t i = 0; !rc && kj == 2 && i < labels->len; i++) {
            const Json *sp = json_at(labels, i);
            long long a, z;
            const Json *l = sp && sp->type == JSON_ARR && sp->len == 3 ? json_at(sp, 2) : NULL;
            if (!l || !json_int_in(json_at(sp, 0), 0, (long long)text->len, &a) ||
                !json_int_in(json_at(sp, 1), a, (long long)text->len, &z) || l->type != JSON_STR)
                rc = err_set(e, "'%s' line %d: label %zu: [start, end, \"LABEL\"] with 0 <= start <= end <= %zu "
                             "(bytes of the text) expected", path, line, i + 1, text->len);
            else set_span(s, &scap, (int)a, (int)z, l->str);
        }
        if (!rc) {
            char num[64];
            kind = kj;
            s->text[s->n] = xstrdup(text->str);
            s->label[s->n] = NULL;
            s->group[s->n] = s->n_group; // a group of its own, unless it names one seen before
            if (group) {
                Buf key = {0};
                if (group->type == JSON_STR) buf_putc(&key, 's'), buf_put(&key, group->str, group->len);
                else buf_printf(&key, "i%lld", gi);
                int g = strmap_put(&groups, key.data, key.len, s->n_group);
                if (g >= 0) s->group[s->n] = g, buf_free(&key);
                else {
                    if (ngk >= gcap) gcap = gcap ? 2 * gcap : 64, gkeys = xrealloc(gkeys, sizeof *gkeys * (size_t)gcap);
                    gkeys[ngk++] = key.data;
                }
                s->grouped = true;
            }
            if (s->group[s->n] == s->n_group) s->n_group++;
            if (kj == 1) {
                if (label->type == JSON_STR) s->label[s->n] = xstrdup(label->str);
                else if (label->type == JSON_BOOL) s->label[s->n] = xstrdup(label->b ? "true" : "false");
                else snprintf(num, sizeof num, "%.17g", label->num), s->label[s->n] = xstrdup(num);
            }
            s->n++;
            set_grow(s, &cap);
            s->span0[s->n + 1] = s->span0[s->n];
        }
        json_free(j);
    }
    buf_free(&b);
    for (int g = 0; g < ngk; g++) free(gkeys[g]);
    free(gkeys);
    strmap_free(&groups);
    if (!rc && !s->n) rc = err_set(e, "'%s': no examples", path);
    s->token_level = kind == 2;
    if (rc) probe_set_free(s);
    return rc;
}

const char *const probe_builtin_names[] = {"number", "capital", "bracket", "parity", "prev", NULL};

static const char *const k_words[] = {"the", "a", "cat", "dog", "bird", "saw", "found", "near", "under", "and",
                                      "with", "small", "red", "tree", "house", "river", "city", "book", "was", "big"};
static const char *const k_names[] = {"Alice", "Bob", "Paris", "London", "Monday", "Rome", "Maria", "Tokyo"};

int probe_set_builtin(const char *name, int n, uint64_t seed, ProbeSet *s, Err *e) {
    memset(s, 0, sizeof *s);
    int which = -1;
    for (int i = 0; probe_builtin_names[i]; i++)
        if (!strcmp(name, probe_builtin_names[i])) which = i;
    if (which < 0)
        return err_set(e, "no built-in dataset '%.40s' (number, capital, bracket, parity or prev)", name);
    static const char *const tag[] = {"num", "cap", "in"};
    s->name = xstrdup(name);
    s->token_level = true;
    s->rule = which == 3 ? PROBE_PARITY : which == 4 ? PROBE_PREV : PROBE_SPANS;
    s->other = xstrdup("O");
    int cap = 0, scap = 0;
    set_grow(s, &cap);
    s->span0[0] = s->span0[1] = 0;
    Rng r;
    rng_seed(&r, seed);
    Buf b = {0};
    for (int i = 0; i < n; i++) {
        buf_clear(&b);
        int items = 6 + (int)(rng_next(&r) % 7), open = 0, start = 0;
        for (int w = 0; w < items; w++) {
            if (w) buf_putc(&b, ' ');
            unsigned u = (unsigned)(rng_next(&r) % 100);
            if (!open && w < items - 2 && u < 12) { // a bracket group of 1 to 3 items
                buf_putc(&b, '(');
                open = 1 + (int)(rng_next(&r) % 3), start = (int)b.len;
                u = (unsigned)(rng_next(&r) % 100);
            }
            int a = (int)b.len, kind = u < 15 ? 0 : u < 30 ? 1 : -1;
            if (kind == 0) { // two draws in a fixed order (as operands of one % their order was the compiler's)
                uint64_t draw = rng_next(&r), small = rng_next(&r) % 2;
                buf_printf(&b, "%u", (unsigned)(draw % (small ? 100 : 10000)));
            }
            else if (kind == 1) buf_puts(&b, k_names[rng_next(&r) % (sizeof k_names / sizeof *k_names)]);
            else buf_puts(&b, k_words[rng_next(&r) % (sizeof k_words / sizeof *k_words)]);
            if (which == kind) set_span(s, &scap, a, (int)b.len, tag[which]);
            if (open && --open == 0) {
                if (which == 2) set_span(s, &scap, start, (int)b.len, tag[2]);
                buf_putc(&b, ')');
            }
        }
        if (open && which == 2) set_span(s, &scap, start, (int)b.len, tag[2]);
        if (open) buf_putc(&b, ')');
        buf_putc(&b, '.');
        s->text[s->n] = xstrdup(b.data);
        s->label[s->n] = NULL;
        s->group[s->n] = s->n_group++;
        s->n++;
        set_grow(s, &cap);
        s->span0[s->n + 1] = s->span0[s->n];
    }
    buf_free(&b);
    if (!n) {
        probe_set_free(s);
        return err_set(e, "a built-in dataset needs at least one sentence");
    }
    return 0;
}

int probe_set_write(const ProbeSet *s, const char *path, Err *e) {
    Buf b = {0};
    for (int i = 0; i < s->n; i++) {
        buf_puts(&b, "{\"text\": ");
        buf_put_quoted(&b, s->text[i], strlen(s->text[i]));
        if (!s->token_level) {
            buf_puts(&b, ", \"label\": ");
            buf_put_quoted(&b, s->label[i], strlen(s->label[i]));
        } else {
            buf_puts(&b, ", \"labels\": [");
            for (int k = s->span0[i]; k < s->span0[i + 1]; k++) {
                buf_printf(&b, "%s[%d, %d, ", k > s->span0[i] ? ", " : "", s->spans[k].start, s->spans[k].end);
                buf_put_quoted(&b, s->spans[k].label, strlen(s->spans[k].label));
                buf_putc(&b, ']');
            }
            buf_putc(&b, ']');
        }
        if (s->grouped) buf_printf(&b, ", \"group\": %d", s->group[i]);
        buf_puts(&b, "}\n");
    }
    int rc = fs_write_atomic(path, b.data ? b.data : "", b.len, e);
    buf_free(&b);
    return rc;
}

// ---------------------------------------------------------------------------------------
// Rows

void probe_rows_free(ProbeRows *r) {
    for (int i = 0; i < r->k; i++) free(r->classes[i]);
    free(r->x), free(r->y), free(r->ex), free(r->pos), free(r->classes);
    memset(r, 0, sizeof *r);
}

static int class_of(ProbeRows *r, const char *label) {
    for (int i = 0; i < r->k; i++)
        if (!strcmp(r->classes[i], label)) return i;
    r->classes = xrealloc(r->classes, sizeof *r->classes * (size_t)(r->k + 1));
    r->classes[r->k] = xstrdup(label);
    return r->k++;
}

// One code point as the tokenizers' normalizers may have changed it, appended to out: lower
// case, decomposed, marks (Mn) dropped ("É" -> "e"; room for 3 x 18).
static int fold_cp(uint32_t cp, uint32_t *out) {
    uint32_t low[3], dec[18];
    int n = 0, nl = uni_tolower(cp, low);
    for (int i = 0; i < nl; i++) {
        int nd = uni_decompose(low[i], dec);
        for (int k = 0; k < nd; k++)
            if (!(uni_props(dec[k]) & UP_MN)) out[n++] = dec[k];
    }
    return n;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Where the piece p (pl bytes) ends when it is the text at j: its bytes (ASCII case aside), or
// its characters once both are folded as a normalizing tokenizer folds them (lower case, accents
// stripped: BERT's "zoe" is "Zoé"). 0 when it is not there.
static size_t piece_at(const char *text, size_t len, size_t j, const char *p, size_t pl) {
    if (j + pl <= len) {
        size_t k = 0;
        for (; k < pl; k++) {
            unsigned char x = (unsigned char)text[j + k], y = (unsigned char)p[k];
            if (x >= 'A' && x <= 'Z') x += 32;
            if (y >= 'A' && y <= 'Z') y += 32;
            if (x != y) break;
        }
        if (k == pl) return j + pl;
    }
    uint32_t pf[54], tf[54], cp;
    int np = 0, nt = 0, ip = 0, it = 0;
    size_t i = 0, t = j;
    for (;;) {
        if (ip == np) { // the piece's next character, folded
            if (i >= pl) break;
            i += (size_t)utf8_decode(p + i, pl - i, &cp);
            np = fold_cp(cp, pf), ip = 0;
            continue;
        }
        if (it == nt) { // the text's
            if (t >= len) return 0;
            t += (size_t)utf8_decode(text + t, len - t, &cp);
            nt = fold_cp(cp, tf), it = 0;
            continue;
        }
        if (pf[ip++] != tf[it++]) return 0;
    }
    // the text's marks after the last character belong to it
    while (t < len) {
        int k = utf8_decode(text + t, len - t, &cp);
        if (!(uni_props(cp) & UP_MN)) break;
        t += (size_t)k;
    }
    return t > j ? t : 0;
}

// The text of token i's piece (without its leading white space, SentencePiece's U+2581 or
// WordPiece's ##): a newline or a tab token is all space, as a space token is (it was looked for
// after the white space it is, and took the label of the word after it).
static const char *bare_piece(const Tokenizer *t, int id, bool wp, size_t *pl) {
    const char *p = tok_piece(t, id, pl);
    if (!p) *pl = 0;
    if (wp && *pl >= 2 && p[0] == '#' && p[1] == '#') p += 2, *pl -= 2;
    while (*pl && (is_ws(*p) || (*pl >= 3 && !memcmp(p, "\xe2\x96\x81", 3)))) {
        size_t k = is_ws(*p) ? 1 : 3;
        p += k, *pl -= k;
    }
    return p;
}

// The byte span [st[i], en[i]) in text of each token ids[a..b): its piece found at the cursor
// after white space (piece_at); an all-space token gets the empty span at the cursor. A token
// whose piece is not there (an [UNK], a piece the tokenizer's normalizer changed past folding)
// takes the text up to where the next token that is found begins, shared with the tokens
// between (the cursor kept in step: every later token was labelled from the wrong place), or,
// when that text holds as many words as there are such tokens, a word each.
static void token_spans(const Tokenizer *t, const char *text, const int *ids, int a, int b, int *st, int *en) {
    size_t cur = 0, len = strlen(text);
    bool wp = tok_kind(t) == TOK_KIND_WORDPIECE;
    for (int i = a; i < b; i++) {
        size_t pl, j = cur, k = 0;
        const char *p = bare_piece(t, ids[i], wp, &pl);
        while (pl && j < len && is_ws(text[j])) j++;
        if (!pl) {
            st[i - a] = en[i - a] = (int)cur;
            continue;
        }
        if ((k = piece_at(text, len, j, p, pl))) {
            st[i - a] = (int)j, en[i - a] = (int)k;
            cur = k;
            continue;
        }
        // not found: the next token found (nearest first) bounds the unmatched run i..m-1
        size_t stop = len;
        int m = i + 1;
        for (; m < b; m++) {
            size_t ql;
            const char *q = bare_piece(t, ids[m], wp, &ql);
            if (!ql) continue;
            size_t at = j + 1;
            while (at < len && !piece_at(text, len, at, q, ql)) at++;
            if (at < len) {
                stop = at;
                break;
            }
        }
        while (stop > j && is_ws(text[stop - 1])) stop--;
        if (stop <= j) stop = j;
        int run = (m < b ? m : b) - i, words = 0;
        for (size_t q = j; q < stop; q++) words += !is_ws(text[q]) && (q == j || is_ws(text[q - 1]));
        if (run > 1 && words == run) { // [UNK] [UNK] of two words: a word each, as the pre-tokenizer split them
            size_t q = j;
            for (int r = i; r < i + run; r++) {
                while (is_ws(text[q])) q++;
                st[r - a] = (int)q;
                while (q < stop && !is_ws(text[q])) q++;
                en[r - a] = (int)q;
            }
        } else {
            for (int r = i; r < i + run; r++) st[r - a] = (int)j, en[r - a] = (int)stop;
        }
        cur = stop;
        i = (m < b ? m : b) - 1;
    }
}

// The label of the token [ts, te) among spans[n]: the first it overlaps (an empty token: the
// first holding its position), else NULL.
static const char *span_label(const ProbeSpan *sp, int n, int ts, int te) {
    for (int k = 0; k < n; k++) {
        int lo = ts > sp[k].start ? ts : sp[k].start, hi = te < sp[k].end ? te : sp[k].end;
        if (lo < hi || (ts == te && ts >= sp[k].start && ts < sp[k].end)) return sp[k].label;
    }
    return NULL;
}

void probe_pool(const float *h, int a, int b, int d, bool causal, float *out) {
    if (causal) {
        memcpy(out, h + (size_t)(b - 1) * d, sizeof(float) * (size_t)d);
        return;
    }
    for (int j = 0; j < d; j++) {
        double m = 0;
        for (int p = a; p < b; p++) m += h[(size_t)p * d + j];
        out[j] = (float)(m / (b - a));
    }
}

int probe_rows(Ctx *c, const Tokenizer *t, const ProbeSet *s, ProbeRows *r, Err *e) {
    const ModelConfig *cf = ctx_config(c);
    int L1 = cf->n_layer + 1, d = cf->n_embd, first = tok_add_first(t), last = tok_add_last(t);
    memset(r, 0, sizeof *r);
    r->n_layer1 = L1, r->d = d;
    IntVec ids = {0}, y = {0}, ex = {0}, pos = {0};
    float *hidden = NULL;
    int *st = NULL, *en = NULL, hcap = 0, rcap = 0, rc = 0;
    Buf piece = {0};
    size_t row_bytes = sizeof(float) * (size_t)L1 * d;
    for (int i = 0; i < s->n && !rc; i++) {
        ids.n = 0;
        if (tok_encode(t, s->text[i], strlen(s->text[i]), TOK_ADD_SPECIAL, &ids, e) < 0) {
            rc = err_prefix(e, "example %d", i + 1);
            break;
        }
        int n = ids.n, a = first >= 0 && n && ids.v[0] == first, b = last >= 0 && n > a && ids.v[n - 1] == last ? n - 1 : n;
        if (n > cf->n_ctx) {
            rc = err_set(e, "example %d: %d tokens do not fit in the context of %d", i + 1, n, cf->n_ctx);
            break;
        }
        if (b <= a) { // only the tokenizer's own (a text of spaces a WordPiece drops): no row to learn from
            rc = err_set(e, "example %d (\"%.40s\") has no tokens of its own", i + 1, s->text[i]);
            break;
        }
        if (n > hcap) {
            free(hidden), free(st), free(en);
            hcap = n;
            hidden = malloc(mem_mul(row_bytes, (size_t)n));
            st = malloc(sizeof(int) * (size_t)n), en = malloc(sizeof(int) * (size_t)n);
            if (!hidden || !st || !en) {
                rc = err_set(e, "out of memory for the hidden states of %d tokens", n);
                break;
            }
        }
        if (lens_hidden(c, ids.v, NULL, n, hidden, NULL, e)) {
            rc = err_prefix(e, "example %d", i + 1);
            break;
        }
        // the rows of this example: (token position, label)
        int first_row = y.n;
        if (!s->token_level) {
            iv_push(&y, class_of(r, s->label[i]));
            iv_push(&pos, cf->a.causal ? b - 1 : -1);
        } else {
            if (s->rule == PROBE_SPANS) token_spans(t, s->text[i], ids.v, a, b, st, en);
            for (int p = a; p < b; p++) {
                const char *lab;
                if (s->rule == PROBE_PARITY) lab = (p - a) % 2 ? "odd" : "even";
                else if (s->rule == PROBE_PREV) {
                    if (p == a) continue;
                    buf_clear(&piece);
                    tok_piece_display(t, ids.v[p - 1], &piece);
                    lab = piece.data ? piece.data : "";
                } else {
                    lab = span_label(s->spans + s->span0[i], s->span0[i + 1] - s->span0[i], st[p - a], en[p - a]);
                    if (!lab) lab = s->other;
                    if (!lab) continue;
                }
                iv_push(&y, class_of(r, lab));
                iv_push(&pos, p);
            }
        }
        if (y.n > rcap) {
            while (rcap < y.n) rcap = rcap ? 2 * rcap : 1024;
            float *nx = realloc(r->x, mem_mul(row_bytes, (size_t)rcap));
            if (!nx) {
                rc = err_set(e, "out of memory for the features of %d rows", rcap);
                break;
            }
            r->x = nx;
        }
        for (int k = first_row; k < y.n; k++) {
            iv_push(&ex, i);
            float *dst = r->x + (size_t)k * L1 * d;
            for (int l = 0; l < L1; l++) {
                const float *h = hidden + (size_t)l * n * d;
                if (s->token_level) memcpy(dst + (size_t)l * d, h + (size_t)pos.v[k] * d, sizeof(float) * (size_t)d);
                else probe_pool(h, a, b, d, cf->a.causal, dst + (size_t)l * d);
            }
        }
    }
    free(hidden), free(st), free(en), iv_free(&ids), buf_free(&piece);
    r->n = y.n, r->y = y.v, r->ex = ex.v, r->pos = pos.v;
    if (!rc && !r->n) rc = err_set(e, "no labelled token or text in the dataset");
    else if (!rc && r->k < 2) rc = err_set(e, "every row has the label '%.40s': a probe needs two classes", r->classes[0]);
    if (rc) probe_rows_free(r);
    return rc;
}

// ---------------------------------------------------------------------------------------
// The probe

ProbeFit probe_fit_defaults(void) { return (ProbeFit){200, 0.05, 1e-4}; }

// The fraction of rows x (n, d) whose argmax of x W_q^T + b_q (probe q's k classes among the
// K rows of W) is y[rows[i]].
static double accuracy(const double *x, int n, int d, const double *W, const double *bias, int k, int q, int K,
                       const int *y, const int *rows, double *z) {
    if (!n) return NAN;
    const double *Wq = W + (size_t)q * k * d, *bq = bias + q * k;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, k, d, 1.0, x, d, Wq, d, 0.0, z, k);
    int right = 0;
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int c = 1; c < k; c++)
            if (z[(size_t)i * k + c] + bq[c] > z[(size_t)i * k + best] + bq[best]) best = c;
        right += best == y[rows[i]];
    }
    return (double)right / n;
}

int probe_fit(const float *x, int n, int d, size_t stride, const int *const *ys, int ny, int k,
              const unsigned char *test, const ProbeFit *f, double *acc_test, double *acc_train, ProbeWeights *keep,
              Err *e) {
    int ntr = 0;
    for (int i = 0; i < n; i++) ntr += !test[i];
    int nte = n - ntr, K = ny * k; // the ny probes side by side: K rows of W, K logits a row
    if (!ntr) return err_set(e, "no training rows");
    size_t kd = (size_t)K * d;
    double *xtr = malloc(mem_mul(sizeof(double) * (size_t)ntr, (size_t)d));
    double *xte = malloc(mem_mul(sizeof(double) * (size_t)(nte ? nte : 1), (size_t)d));
    double *mu = calloc((size_t)d, sizeof(double)), *sd = calloc((size_t)d, sizeof(double));
    double *W = calloc(kd * 4, sizeof(double)); // W, its gradient, Adam's m and v
    double *bias = calloc((size_t)K * 4, sizeof(double));
    double *z = malloc(mem_mul(sizeof(double) * (size_t)(n > 0 ? n : 1), (size_t)K));
    int *rows = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1)); // training rows first, then the held-out ones
    if (!xtr || !xte || !mu || !sd || !W || !bias || !z || !rows) {
        free(xtr), free(xte), free(mu), free(sd), free(W), free(bias), free(z), free(rows);
        return err_set(e, "out of memory for a probe on %d rows of %d", n, d);
    }
    for (int i = 0, a = 0, b = 0; i < n; i++) {
        double *dst = test[i] ? xte + (size_t)b * d : xtr + (size_t)a * d;
        if (test[i]) rows[ntr + b++] = i;
        else rows[a++] = i;
        for (int j = 0; j < d; j++) dst[j] = x[(size_t)i * stride + j];
    }
    for (int i = 0; i < ntr; i++)
        for (int j = 0; j < d; j++) mu[j] += xtr[(size_t)i * d + j];
    for (int j = 0; j < d; j++) mu[j] /= ntr;
    for (int i = 0; i < ntr; i++)
        for (int j = 0; j < d; j++) {
            double v = xtr[(size_t)i * d + j] - mu[j];
            sd[j] += v * v;
        }
    for (int j = 0; j < d; j++) {
        sd[j] = sqrt(sd[j] / ntr);
        if (!(sd[j] > 1e-12)) sd[j] = 1;
    }
    for (int i = 0; i < ntr; i++)
        for (int j = 0; j < d; j++) xtr[(size_t)i * d + j] = (xtr[(size_t)i * d + j] - mu[j]) / sd[j];
    for (int i = 0; i < nte; i++)
        for (int j = 0; j < d; j++) xte[(size_t)i * d + j] = (xte[(size_t)i * d + j] - mu[j]) / sd[j];
    double *gW = W + kd, *mW = W + 2 * kd, *vW = W + 3 * kd;
    double *gb = bias + K, *mb = bias + 2 * K, *vb = bias + 3 * K;
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    for (int step = 1; step <= f->steps; step++) {
        if (f->stop && *f->stop) {
            free(xtr), free(xte), free(mu), free(sd), free(W), free(bias), free(z), free(rows);
            return err_set(e, "interrupted");
        }
        // z = x W^T + b -> softmax per probe -> minus the one-hot, over ntr: the gradient of the
        // logits (one pass over x for every probe)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ntr, K, d, 1.0, xtr, d, W, d, 0.0, z, K);
        memset(gb, 0, sizeof(double) * (size_t)K);
        for (int i = 0; i < ntr; i++)
            for (int q = 0; q < ny; q++) {
                double *zi = z + (size_t)i * K + q * k, *bq = bias + q * k, mx = -INFINITY, sum = 0;
                int yi = ys[q][rows[i]];
                for (int c = 0; c < k; c++) zi[c] += bq[c], mx = zi[c] > mx ? zi[c] : mx;
                for (int c = 0; c < k; c++) sum += zi[c] = exp(zi[c] - mx);
                for (int c = 0; c < k; c++) {
                    zi[c] = (zi[c] / sum - (c == yi)) / ntr;
                    gb[q * k + c] += zi[c];
                }
            }
        // gW = z^T x + l2 W
        memcpy(gW, W, sizeof(double) * kd);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, d, ntr, 1.0, z, K, xtr, d, f->l2, gW, d);
        double c1 = 1 - pow(b1, step), c2 = 1 - pow(b2, step);
        for (size_t j = 0; j < kd; j++) {
            mW[j] = b1 * mW[j] + (1 - b1) * gW[j];
            vW[j] = b2 * vW[j] + (1 - b2) * gW[j] * gW[j];
            W[j] -= f->lr * (mW[j] / c1) / (sqrt(vW[j] / c2) + eps);
        }
        for (int c = 0; c < K; c++) {
            mb[c] = b1 * mb[c] + (1 - b1) * gb[c];
            vb[c] = b2 * vb[c] + (1 - b2) * gb[c] * gb[c];
            bias[c] -= f->lr * (mb[c] / c1) / (sqrt(vb[c] / c2) + eps);
        }
    }
    for (int q = 0; q < ny; q++) {
        if (acc_train) acc_train[q] = accuracy(xtr, ntr, d, W, bias, k, q, K, ys[q], rows, z);
        if (acc_test) acc_test[q] = accuracy(xte, nte, d, W, bias, k, q, K, ys[q], rows + ntr, z);
    }
    if (keep) { // probe 0: the first k rows of W and b
        memset(keep, 0, sizeof *keep);
        keep->k = k, keep->d = d, keep->mu = mu, keep->sd = sd, mu = sd = NULL;
        keep->W = xmalloc(sizeof(double) * (size_t)k * d);
        keep->b = xmalloc(sizeof(double) * (size_t)k);
        memcpy(keep->W, W, sizeof(double) * (size_t)k * d);
        memcpy(keep->b, bias, sizeof(double) * (size_t)k);
    }
    free(xtr), free(xte), free(mu), free(sd), free(W), free(bias), free(z), free(rows);
    return 0;
}

void probe_split(const ProbeRows *r, const int *group, int every, unsigned char *test) {
    for (int i = 0; i < r->n; i++) {
        int g = group ? group[r->ex[i]] : r->ex[i];
        test[i] = every > 1 && g % every == every - 1;
    }
}

// The layers of a sweep, shared out over a thread team: share ith fits layers ith, ith + nth, ...
// (each layer's numbers do not depend on the team's size).
typedef struct {
    const ProbeRows *r;
    const int *layers;
    int nl;
    const unsigned char *test;
    const ProbeFit *f;
    ProbeLayer *out;
    const int *ys[2]; // the labels and the shuffled ones
    _Atomic int rc;   // the first failure's (set once, by compare-and-swap), with its message
    Err e;
} Sweep;

static void sweep_share(void *arg, int ith, int nth) {
    Sweep *S = arg;
    const ProbeRows *r = S->r;
    size_t stride = (size_t)r->n_layer1 * r->d;
    for (int i = ith; i < S->nl && !S->rc; i += nth) {
        Err e = {0};
        double acc[2], train[2];
        ProbeLayer *o = &S->out[i];
        o->layer = S->layers[i];
        if (probe_fit(r->x + (size_t)S->layers[i] * r->d, r->n, r->d, stride, S->ys, 2, r->k, S->test, S->f, acc, train,
                      NULL, &e)) {
            int none = 0; // only the share that sets rc first writes the message
            if (atomic_compare_exchange_strong(&S->rc, &none, -1)) S->e = e; // read after the team joins
            return;
        }
        o->acc = acc[0], o->train_acc = train[0], o->control = acc[1];
    }
}

int probe_sweep(Pool *pool, const ProbeRows *r, const int *layers, int nl, const unsigned char *test, uint64_t seed,
                const ProbeFit *f, ProbeLayer *out, double *majority, Err *e) {
    int *yc = malloc(sizeof(int) * (size_t)r->n);
    long *count = calloc((size_t)r->k, sizeof(long));
    if (!yc || !count) {
        free(yc), free(count);
        return err_set(e, "out of memory for the labels of %d rows", r->n);
    }
    // the control: the labels permuted over the rows (Fisher-Yates)
    memcpy(yc, r->y, sizeof(int) * (size_t)r->n);
    Rng g;
    rng_seed(&g, seed);
    for (int i = r->n - 1; i > 0; i--) {
        int j = (int)(rng_next(&g) % (uint64_t)(i + 1)), v = yc[i];
        yc[i] = yc[j], yc[j] = v;
    }
    int best = 0, nte = 0, right = 0;
    for (int i = 0; i < r->n; i++)
        if (!test[i]) count[r->y[i]]++;
    for (int c = 1; c < r->k; c++)
        if (count[c] > count[best]) best = c;
    for (int i = 0; i < r->n; i++)
        if (test[i]) nte++, right += r->y[i] == best;
    *majority = nte ? (double)right / nte : NAN;
    Sweep S = {r, layers, nl, test, f, out, {r->y, yc}, 0, {{0}}};
    if (pool) pool_run(pool, sweep_share, &S);
    else sweep_share(&S, 0, 1);
    free(yc), free(count);
    if (S.rc) *e = S.e;
    return S.rc ? -1 : 0;
}

double probe_expected_layer(const ProbeLayer *l, int nl) {
    double num = 0, den = 0, best = nl ? l[0].acc : 0;
    for (int i = 1; i < nl; i++) {
        if (!(l[i].acc > best)) continue; // no gain over the layers before
        double delta = l[i].acc - best;
        num += l[i].layer * delta, den += delta, best = l[i].acc;
    }
    return den > 1e-12 ? num / den : NAN;
}

// ---------------------------------------------------------------------------------------
// A trained probe, saved and applied

void probe_weights_free(ProbeWeights *p) {
    for (int i = 0; p->classes && i < p->k; i++) free(p->classes[i]);
    free(p->classes), free(p->mu), free(p->sd), free(p->W), free(p->b), free(p->model), free(p->dataset);
    memset(p, 0, sizeof *p);
}

static void put_nums(Buf *b, const char *key, const double *v, size_t n) {
    buf_printf(b, ",\n \"%s\": [", key);
    for (size_t i = 0; i < n; i++) buf_printf(b, "%s%.17g", i ? ", " : "", v[i]);
    buf_putc(b, ']');
}

int probe_save(const char *path, const ProbeWeights *p, Err *e) {
    Buf b = {0};
    buf_printf(&b, "{\"format\": \"qkv-probe\", \"version\": 1, \"layer\": %d, \"d\": %d,\n \"model\": ", p->layer, p->d);
    buf_put_quoted(&b, p->model ? p->model : "", strlen(p->model ? p->model : ""));
    buf_puts(&b, ", \"dataset\": ");
    buf_put_quoted(&b, p->dataset ? p->dataset : "", strlen(p->dataset ? p->dataset : ""));
    if (isfinite(p->accuracy)) buf_printf(&b, ", \"accuracy\": %.17g", p->accuracy);
    else buf_puts(&b, ", \"accuracy\": null");
    if (p->sentence >= 0) buf_printf(&b, ", \"level\": \"%s\"", p->sentence ? "sentence" : "token");
    buf_puts(&b, ",\n \"classes\": [");
    for (int i = 0; i < p->k; i++) {
        if (i) buf_puts(&b, ", ");
        buf_put_quoted(&b, p->classes[i], strlen(p->classes[i]));
    }
    buf_putc(&b, ']');
    put_nums(&b, "mu", p->mu, (size_t)p->d);
    put_nums(&b, "sd", p->sd, (size_t)p->d);
    put_nums(&b, "b", p->b, (size_t)p->k);
    buf_puts(&b, ",\n \"W\": [");
    for (int c = 0; c < p->k; c++) {
        buf_puts(&b, c ? ",\n  [" : "\n  [");
        for (int j = 0; j < p->d; j++) buf_printf(&b, "%s%.17g", j ? ", " : "", p->W[(size_t)c * p->d + j]);
        buf_putc(&b, ']');
    }
    buf_puts(&b, "]}\n");
    int rc = fs_write_atomic(path, b.data, b.len, e);
    buf_free(&b);
    return rc;
}

// n numbers of the array j into out; false when j is not such an array.
static bool get_nums(const Json *j, size_t n, double *out) {
    if (!j || j->type != JSON_ARR || j->len != n) return false;
    for (size_t i = 0; i < n; i++) {
        const Json *v = json_at(j, i);
        if (!v || v->type != JSON_NUM || !isfinite(v->num)) return false;
        out[i] = v->num;
    }
    return true;
}

int probe_load(const char *path, ProbeWeights *p, Err *e) {
    memset(p, 0, sizeof *p);
    Json *j = json_parse_file(path, e);
    if (!j) return err_prefix(e, "cannot read the probe"); // the message names the file
    long long layer, d;
    const Json *cl = json_get(j, "classes"), *W = json_get(j, "W");
    int rc = 0;
    if (j->type != JSON_OBJ || strcmp(json_str_or(j, "format", ""), "qkv-probe") || json_num_or(j, "version", 0) != 1)
        rc = err_set(e, "'%s' is not a probe qkv saved (format \"qkv-probe\", version 1)", path);
    else if (!json_int_in(json_get(j, "layer"), 0, 100000, &layer) || !json_int_in(json_get(j, "d"), 1, 1 << 20, &d))
        rc = err_set(e, "probe '%s': \"layer\" must be a whole number >= 0 and \"d\" one >= 1", path);
    else if (!cl || cl->type != JSON_ARR || cl->len < 2 || cl->len > 100000 || !W || W->type != JSON_ARR ||
             W->len != cl->len)
        rc = err_set(e, "probe '%s': \"classes\" (two or more) and one row of \"W\" for each expected", path);
    if (!rc) {
        p->layer = (int)layer, p->d = (int)d, p->k = (int)cl->len;
        p->classes = xcalloc((size_t)p->k, sizeof *p->classes);
        p->mu = xmalloc(sizeof(double) * (size_t)d), p->sd = xmalloc(sizeof(double) * (size_t)d);
        p->b = xmalloc(sizeof(double) * (size_t)p->k);
        p->W = malloc(mem_mul(sizeof(double) * (size_t)p->k, (size_t)d));
        if (!p->W) rc = err_set(e, "probe '%s': out of memory for %d x %lld weights", path, p->k, d);
        for (int c = 0; !rc && c < p->k; c++) {
            const Json *s = json_at(cl, (size_t)c);
            if (!s || s->type != JSON_STR) rc = err_set(e, "probe '%s': class %d is not a string", path, c + 1);
            else p->classes[c] = xstrdup(s->str);
            if (!rc && !get_nums(json_at(W, (size_t)c), (size_t)d, p->W + (size_t)c * d))
                rc = err_set(e, "probe '%s': row %d of \"W\" must hold %lld numbers", path, c + 1, d);
        }
        if (!rc && (!get_nums(json_get(j, "mu"), (size_t)d, p->mu) || !get_nums(json_get(j, "sd"), (size_t)d, p->sd) ||
                    !get_nums(json_get(j, "b"), (size_t)p->k, p->b)))
            rc = err_set(e, "probe '%s': \"mu\" and \"sd\" must hold %lld numbers, \"b\" %d", path, d, p->k);
        for (int i = 0; !rc && i < d; i++)
            if (!(p->sd[i] > 0)) rc = err_set(e, "probe '%s': \"sd\" must be positive", path);
    }
    const char *level = json_str_or(j, "level", NULL);
    p->sentence = !level ? -1 : !strcmp(level, "sentence") ? 1 : !strcmp(level, "token") ? 0 : -2;
    if (!rc && p->sentence == -2)
        rc = err_set(e, "probe '%s': \"level\" must be \"sentence\" or \"token\"", path);
    if (!rc) {
        p->model = xstrdup(json_str_or(j, "model", ""));
        p->dataset = xstrdup(json_str_or(j, "dataset", ""));
        p->accuracy = json_num_or(j, "accuracy", NAN);
    }
    json_free(j);
    if (rc) probe_weights_free(p);
    return rc;
}

void probe_predict(const ProbeWeights *p, const float *x, int n, size_t stride, double *probs) {
    for (int i = 0; i < n; i++) {
        const float *row = x + (size_t)i * stride;
        double *z = probs + (size_t)i * p->k, mx = -INFINITY, sum = 0;
        for (int c = 0; c < p->k; c++) {
            double s = p->b[c];
            const double *w = p->W + (size_t)c * p->d;
            for (int j = 0; j < p->d; j++) s += w[j] * ((row[j] - p->mu[j]) / p->sd[j]);
            z[c] = s, mx = s > mx ? s : mx;
        }
        for (int c = 0; c < p->k; c++) sum += z[c] = exp(z[c] - mx);
        for (int c = 0; c < p->k; c++) z[c] /= sum;
    }
}
