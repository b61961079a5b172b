// chat.c - recognising a chat template's format and rendering conversations with it (chat.h).
//
// The template is read the way Jinja reads it (transformers compiles it with trim_blocks and
// lstrip_blocks): text and tags {{ }} {% %} {# #} with their whitespace control, string literals
// with their escapes. What it writes becomes a list of items: outputs (a concatenation of
// literals and variables with trim/strip, adjacent ones merged), `set`s, and the if/elif/else/for
// blocks around them with their conditions in a canonical form (message['role'] and message.role
// alike). A family (ChatML, Llama 2, Llama 3, Mistral) is recognised by its markers, its parts are
// looked up among the items (the expression of a message, of the system message, of the
// generation prompt, a default system message, where the system message goes), and a
// conversation is rendered by evaluating those expressions in the family's order. Templates
// that write text outside their expressions, use macros, think (<think>), or lack a part the
// family needs are refused, with the reason kept for tok_chat_render.
#define _GNU_SOURCE // memmem
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/fs.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/utf8.h"
#include "tok/chat.h"
#include "tok/tokenizer_impl.h"

// ---- the template as items ----

typedef struct Term {
    bool var;     // a variable (its canonical name in s), else a literal
    bool trim;    // | trim or .strip()
    char *s;
    size_t len;
} Term;

typedef struct Expr {
    Term *t;
    int n;
} Expr;

typedef enum { IT_OUT, IT_SET, IT_IF, IT_ELIF, IT_ELSE, IT_FOR, IT_OTHER } ItemKind;

typedef struct Item {
    ItemKind kind;
    char *canon;   // statements: the tag after its keyword, canonical (conditions, "x in y", "name=value")
    char *name;    // IT_SET: the variable set
    Expr expr;     // IT_OUT, IT_SET: the value
    bool pure;     // expr is a concatenation of literals and variables
    int parent;    // innermost enclosing if/elif/else/for item, or -1
} Item;

struct TokChat {
    char *text;  // the template
    size_t len;
    char *bos, *eos;
    TokChatKind kind;
    char why[640]; // kind NONE: why
    Item *it;
    int n;
    // the parts found (item indices, -1 when absent)
    int msg, sys, gen, bos_top, dated, sys_val, sys_empty, user, user_sys, sys_set, plain_set, asst, sys_msg;
    bool gen_always;   // the generation prompt is written whether asked for or not
    bool sys_last;     // the system message goes with the last user message (else the first)
    bool today;        // the date is today's (strftime_now), else date_lit
    char *date_lit;
    char *default_sys; // a default system message (Llama 2 style), or NULL
};

static void expr_free(Expr *e) {
    for (int i = 0; i < e->n; i++) free(e->t[i].s);
    free(e->t);
    e->t = NULL;
    e->n = 0;
}

static void expr_add(Expr *e, bool var, bool trim, const char *s, size_t len) {
    if (!var && !trim && e->n && !e->t[e->n - 1].var) { // adjacent literals are one
        Term *p = &e->t[e->n - 1];
        p->s = xrealloc(p->s, p->len + len + 1);
        memcpy(p->s + p->len, s, len);
        p->len += len;
        p->s[p->len] = 0;
        return;
    }
    e->t = xrealloc(e->t, sizeof *e->t * (size_t)(e->n + 1));
    e->t[e->n++] = (Term){var, trim, xmemdup0(s, len), len}; // NULs kept: len is the length
}

void tok_chat_free(struct TokChat *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) {
        free(c->it[i].canon);
        free(c->it[i].name);
        expr_free(&c->it[i].expr);
    }
    free(c->it);
    free(c->text);
    free(c->bos);
    free(c->eos);
    free(c->date_lit);
    free(c->default_sys);
    free(c);
}

// ---- lexing the inside of a tag ----

typedef enum { JT_STR, JT_NAME, JT_NUM, JT_OP } JType;

typedef struct JTok {
    JType type;
    Buf s;
} JTok;

typedef struct JToks {
    JTok *v;
    int n;
} JToks;

static void jtoks_free(JToks *t) {
    for (int i = 0; i < t->n; i++) buf_free(&t->v[i].s);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

static JTok *jtok_new(JToks *t, JType type) {
    t->v = xrealloc(t->v, sizeof *t->v * (size_t)(t->n + 1));
    JTok *k = &t->v[t->n++];
    k->type = type;
    memset(&k->s, 0, sizeof k->s);
    buf_reserve(&k->s, 0);
    return k;
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

// A string literal at s[0] (a quote) of a tag ending at end, decoded as Jinja does (Python's
// unicode-escape: \n \t \r \\ \' \" \a \b \f \v, octal, \x, \u, \U; other escapes stay as they are).
// Returns the position after it, or NULL when it is not closed.
static const char *lex_string(const char *s, const char *end, Buf *out) {
    char q = *s++;
    while (s < end && *s != q) {
        if (*s != '\\' || s + 1 >= end) {
            buf_putc(out, *s++);
            continue;
        }
        char c = s[1];
        const char *simple = strchr("ntr\\'\"abfv", c);
        if (c && simple) {
            static const char map[] = "\n\t\r\\'\"\a\b\f\v";
            buf_putc(out, map[simple - "ntr\\'\"abfv"]);
            s += 2;
        } else if (c >= '0' && c <= '7') {
            unsigned v = 0;
            int k = 1;
            for (; k <= 3 && s + k < end && s[k] >= '0' && s[k] <= '7'; k++) v = v * 8 + (unsigned)(s[k] - '0');
            char u[4];
            buf_put(out, u, (size_t)utf8_encode(v, u));
            s += k;
        } else if (c == 'x' || c == 'u' || c == 'U') {
            int digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            uint32_t v = 0;
            int k = 0;
            for (; k < digits && s + 2 + k < end && hexval(s[2 + k]) >= 0; k++) v = v * 16 + (uint32_t)hexval(s[2 + k]);
            if (k < digits || v > 0x10FFFF) { // as Python would not: keep it as written
                buf_putc(out, *s++);
                continue;
            }
            char u[4];
            buf_put(out, u, (size_t)utf8_encode(v, u));
            s += 2 + digits;
        } else {
            buf_putc(out, *s++);
        }
    }
    return s < end ? s + 1 : NULL;
}

static bool is_word(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (c >= '0' && c <= '9'); }

// The tokens of a tag's inside s[0..n); false when a string is not closed.
static bool lex_tag(const char *s, size_t n, JToks *out) {
    const char *p = s, *end = s + n;
    while (p < end) {
        char c = *p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            p++;
        } else if (c == '\'' || c == '"') {
            JTok *k = jtok_new(out, JT_STR);
            if (!(p = lex_string(p, end, &k->s))) return false;
        } else if (is_word(c)) {
            JTok *k = jtok_new(out, c >= '0' && c <= '9' ? JT_NUM : JT_NAME);
            const char *q = p;
            while (q < end && (is_word(*q) || (k->type == JT_NUM && *q == '.'))) q++;
            buf_put(&k->s, p, (size_t)(q - p));
            p = q;
        } else {
            JTok *k = jtok_new(out, JT_OP);
            static const char *const two[] = {"==", "!=", "<=", ">=", "//", "**"};
            size_t len = 1;
            for (size_t i = 0; i < sizeof two / sizeof *two; i++)
                if (end - p >= 2 && !memcmp(p, two[i], 2)) len = 2;
            buf_put(&k->s, p, len);
            p += len;
        }
    }
    return true;
}

static bool tok_is(const JTok *k, JType type, const char *s) {
    return k->type == type && k->s.len == strlen(s) && !memcmp(k->s.data, s, k->s.len);
}

// A variable path at t[*i]: NAME ('.' NAME | '[' STR|NUM ']')*, into name as "a.b.0"; a trailing
// .strip() sets *trim. Returns false (nothing consumed) when t[*i] does not start one.
static bool parse_path(const JToks *t, int *i, Buf *name, bool *trim) {
    int k = *i;
    if (k >= t->n || t->v[k].type != JT_NAME) return false;
    buf_clear(name);
    buf_put(name, t->v[k].s.data, t->v[k].s.len);
    for (k++; k < t->n;) {
        if (k + 1 < t->n && tok_is(&t->v[k], JT_OP, ".") && t->v[k + 1].type == JT_NAME) {
            if (k + 3 < t->n && tok_is(&t->v[k + 1], JT_NAME, "strip") && tok_is(&t->v[k + 2], JT_OP, "(") &&
                tok_is(&t->v[k + 3], JT_OP, ")")) {
                *trim = true;
                k += 4;
                continue;
            }
            buf_putc(name, '.');
            buf_put(name, t->v[k + 1].s.data, t->v[k + 1].s.len);
            k += 2;
        } else if (k + 2 < t->n && tok_is(&t->v[k], JT_OP, "[") && (t->v[k + 1].type == JT_STR || t->v[k + 1].type == JT_NUM) &&
                   tok_is(&t->v[k + 2], JT_OP, "]")) {
            buf_putc(name, '.');
            buf_put(name, t->v[k + 1].s.data, t->v[k + 1].s.len);
            k += 3;
        } else {
            break;
        }
    }
    *i = k;
    return true;
}

// t[from..t->n) as a concatenation of literals and variables (with | trim or .strip()) into e.
static bool parse_expr(const JToks *t, int from, Expr *e) {
    Buf name = {0};
    bool ok = from < t->n;
    for (int i = from; ok && i < t->n;) {
        bool trim = false;
        if (t->v[i].type == JT_STR) {
            const Buf *s = &t->v[i++].s;
            expr_add(e, false, false, s->data, s->len);
        } else if (parse_path(t, &i, &name, &trim)) {
            while (i + 1 < t->n && tok_is(&t->v[i], JT_OP, "|") && tok_is(&t->v[i + 1], JT_NAME, "trim")) {
                trim = true;
                i += 2;
            }
            expr_add(e, true, trim, name.data, name.len);
        } else {
            ok = false;
            break;
        }
        if (i < t->n) {
            ok = tok_is(&t->v[i], JT_OP, "+") || tok_is(&t->v[i], JT_OP, "~");
            i++;
            ok = ok && i < t->n;
        }
    }
    buf_free(&name);
    if (!ok) expr_free(e);
    return ok;
}

// t[from..) in a canonical form: paths as "a.b.0", strings in single quotes, a space only between
// two words.
static char *canonical(const JToks *t, int from) {
    Buf b = {0}, name = {0};
    bool word = false;
    buf_reserve(&b, 0);
    for (int i = from; i < t->n;) {
        bool trim = false;
        if (parse_path(t, &i, &name, &trim)) {
            if (word) buf_putc(&b, ' ');
            buf_put(&b, name.data, name.len);
            if (trim) buf_puts(&b, ".strip()");
            word = true;
            continue;
        }
        const JTok *k = &t->v[i++];
        if (k->type == JT_STR) {
            buf_putc(&b, '\'');
            buf_put(&b, k->s.data, k->s.len);
            buf_putc(&b, '\'');
            word = false;
        } else {
            if (word && k->type == JT_NUM) buf_putc(&b, ' ');
            buf_put(&b, k->s.data, k->s.len);
            word = k->type == JT_NUM;
        }
    }
    buf_free(&name);
    return buf_take(&b);
}

// ---- reading the template ----

typedef struct Seg {
    char kind;     // 't' text, '{' output, '%' statement, '#' comment
    size_t a, b;   // text: the raw text; tags: the inside, without the delimiters and - / +
    bool lstrip;   // the tag opened with '-'
    bool rstrip;   // the tag closed with '-'
    bool keep;     // the tag opened with '+' (no lstrip_blocks)
} Seg;

static int refuse(struct TokChat *c, const char *fmt, const char *arg) {
    snprintf(c->why, sizeof c->why, fmt, arg);
    return -1;
}

// Split the template into text and tags.
static int segments(struct TokChat *c, Seg **out, int *nout) {
    const char *s = c->text;
    size_t n = c->len, i = 0, text = 0;
    Seg *v = NULL;
    int nv = 0;
    while (i < n) {
        if (s[i] != '{' || i + 1 >= n || (s[i + 1] != '{' && s[i + 1] != '%' && s[i + 1] != '#')) {
            i++;
            continue;
        }
        char kind = s[i + 1];
        const char *close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
        size_t a = i + 2, j = a;
        // the end of the tag, not inside a string literal (comments have none)
        char q = 0;
        for (; j + 1 < n; j++) {
            if (kind != '#' && q) {
                if (s[j] == '\\') j++;
                else if (s[j] == q) q = 0;
            } else if (kind != '#' && (s[j] == '\'' || s[j] == '"')) {
                q = s[j];
            } else if (s[j] == close[0] && s[j + 1] == close[1]) {
                break;
            }
        }
        if (j + 1 >= n) {
            free(v);
            return refuse(c, "a tag is not closed (%s)", close);
        }
        v = xrealloc(v, sizeof *v * (size_t)(nv + 2));
        v[nv++] = (Seg){'t', text, i, false, false, false};
        Seg g = {kind, a, j, false, false, false};
        if (g.a < g.b && (s[g.a] == '-' || s[g.a] == '+')) g.lstrip = s[g.a] == '-', g.keep = s[g.a] == '+', g.a++;
        if (g.b > g.a && s[g.b - 1] == '-') g.rstrip = true, g.b--;
        v[nv++] = g;
        i = text = j + 2;
    }
    v = xrealloc(v, sizeof *v * (size_t)(nv + 1));
    v[nv++] = (Seg){'t', text, n, false, false, false};
    *out = v;
    *nout = nv;
    return 0;
}

static bool is_ws(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v'; }

// The part of text segment k that Jinja writes (whitespace control, trim_blocks, lstrip_blocks).
static void text_kept(const struct TokChat *c, const Seg *v, int nv, int k, size_t *a, size_t *b) {
    const char *s = c->text;
    *a = v[k].a, *b = v[k].b;
    const Seg *prev = k > 0 ? &v[k - 1] : NULL, *next = k + 1 < nv ? &v[k + 1] : NULL;
    if (prev && prev->rstrip) {
        while (*a < *b && is_ws(s[*a])) (*a)++;
    } else if (prev && prev->kind != '{' && *a < *b && s[*a] == '\n') { // trim_blocks
        (*a)++;
    }
    if (next && next->lstrip) {
        while (*b > *a && is_ws(s[*b - 1])) (*b)--;
    } else if (next && next->kind != '{' && !next->keep) { // lstrip_blocks
        size_t l = *b;
        while (l > *a && (s[l - 1] == ' ' || s[l - 1] == '\t')) l--;
        bool line_start = l > *a ? s[l - 1] == '\n' : (v[k].a == 0 || s[v[k].a - 1] == '\n');
        if (line_start) *b = l;
    }
}

static int add_item(struct TokChat *c, ItemKind kind, int parent) {
    c->it = xrealloc(c->it, sizeof *c->it * (size_t)(c->n + 1));
    Item *it = &c->it[c->n];
    memset(it, 0, sizeof *it);
    it->kind = kind;
    it->parent = parent;
    return c->n++;
}

// An output (text or {{ }}) joins the output just before it when nothing came between.
static void add_output(struct TokChat *c, int parent, int *last_out, Expr *e, bool pure) {
    if (*last_out >= 0 && c->it[*last_out].pure && pure) {
        Item *p = &c->it[*last_out];
        for (int i = 0; i < e->n; i++) expr_add(&p->expr, e->t[i].var, e->t[i].trim, e->t[i].s, e->t[i].len);
        expr_free(e);
        return;
    }
    int k = add_item(c, IT_OUT, parent);
    c->it[k].expr = *e;
    c->it[k].pure = pure;
    memset(e, 0, sizeof *e);
    *last_out = k;
}

// The items of the template; -1 (with c->why) when it uses what qkv does not read.
static int parse_items(struct TokChat *c) {
    Seg *v;
    int nv;
    if (segments(c, &v, &nv)) return -1;
    int stack[64], depth = 0, last_out = -1, rc = 0;
    for (int k = 0; k < nv && !rc; k++) {
        int parent = depth ? stack[depth - 1] : -1;
        if (v[k].kind == 't') {
            size_t a, b;
            text_kept(c, v, nv, k, &a, &b);
            if (b > a) {
                Expr e = {0};
                expr_add(&e, false, false, c->text + a, b - a);
                add_output(c, parent, &last_out, &e, true);
            }
            continue;
        }
        if (v[k].kind == '#') continue;
        JToks t = {0};
        if (!lex_tag(c->text + v[k].a, v[k].b - v[k].a, &t)) {
            rc = refuse(c, "a string in a tag is not closed%s", "");
        } else if (v[k].kind == '{') {
            Expr e = {0};
            bool pure = parse_expr(&t, 0, &e);
            add_output(c, parent, &last_out, &e, pure);
        } else if (!t.n || t.v[0].type != JT_NAME) {
            rc = refuse(c, "a statement qkv does not read%s", "");
        } else {
            const char *kw = t.v[0].s.data;
            last_out = -1;
            if (!strcmp(kw, "if") || !strcmp(kw, "for")) {
                if (depth == 64) {
                    rc = refuse(c, "blocks nested too deep%s", "");
                } else {
                    int i = add_item(c, kw[0] == 'i' ? IT_IF : IT_FOR, parent);
                    c->it[i].canon = canonical(&t, 1);
                    stack[depth++] = i;
                }
            } else if (!strcmp(kw, "elif") || !strcmp(kw, "else")) {
                if (!depth) {
                    rc = refuse(c, "'%s' outside an if", kw);
                } else {
                    int up = c->it[stack[depth - 1]].parent;
                    int i = add_item(c, kw[2] == 'i' ? IT_ELIF : IT_ELSE, up);
                    c->it[i].canon = canonical(&t, 1);
                    stack[depth - 1] = i;
                }
            } else if (!strcmp(kw, "endif") || !strcmp(kw, "endfor")) {
                if (!depth) rc = refuse(c, "'%s' without its block", kw);
                else depth--;
            } else if (!strcmp(kw, "set")) {
                int i = add_item(c, IT_SET, parent);
                c->it[i].canon = canonical(&t, 1);
                if (t.n >= 3 && t.v[1].type == JT_NAME && tok_is(&t.v[2], JT_OP, "=")) {
                    c->it[i].name = xstrdup(t.v[1].s.data);
                    c->it[i].pure = parse_expr(&t, 3, &c->it[i].expr);
                }
            } else if (!strcmp(kw, "macro") || !strcmp(kw, "call") || !strcmp(kw, "filter") || !strcmp(kw, "raw") ||
                       !strcmp(kw, "include") || !strcmp(kw, "import") || !strcmp(kw, "extends") ||
                       !strcmp(kw, "block")) {
                rc = refuse(c, "'{%% %s %%}' blocks are not read", kw);
            } else if (strcmp(kw, "generation") && strcmp(kw, "endgeneration")) {
                int i = add_item(c, IT_OTHER, parent);
                c->it[i].canon = canonical(&t, 0);
            }
        }
        jtoks_free(&t);
    }
    free(v);
    if (!rc && depth) rc = refuse(c, "a block is not closed%s", "");
    return rc;
}

// ---- finding the parts ----

static bool expr_lit(const Expr *e, const char *sub) {
    for (int i = 0; i < e->n; i++)
        if (!e->t[i].var && strstr(e->t[i].s, sub)) return true;
    return false;
}

static bool expr_var(const Expr *e, const char *name) {
    for (int i = 0; i < e->n; i++)
        if (e->t[i].var && !strcmp(e->t[i].s, name)) return true;
    return false;
}

// Any literal of the template (outputs, sets, conditions) holding sub.
static bool has_lit(const struct TokChat *c, const char *sub) {
    for (int i = 0; i < c->n; i++)
        if (expr_lit(&c->it[i].expr, sub) || (c->it[i].canon && strstr(c->it[i].canon, sub))) return true;
    return false;
}

static bool has_name(const struct TokChat *c, const char *name) { return memmem(c->text, c->len, name, strlen(name)); }

// Does a condition around item i (its if/elif/for chain) hold sub?
static bool under(const struct TokChat *c, int i, const char *sub) {
    for (int p = c->it[i].parent; p >= 0; p = c->it[p].parent)
        if (c->it[p].canon && strstr(c->it[p].canon, sub)) return true;
    return false;
}

static bool in_loop(const struct TokChat *c, int i) {
    for (int p = c->it[i].parent; p >= 0; p = c->it[p].parent)
        if (c->it[p].kind == IT_FOR) return true;
    return false;
}

static bool is_content(const char *v) { return !strcmp(v, "message.content") || !strcmp(v, "content"); }

// The first pure output (kind IT_OUT) or set (IT_SET, named name) whose expression fits.
typedef bool (*Fits)(const Expr *e);

static int find(const struct TokChat *c, ItemKind kind, const char *name, Fits fits) {
    for (int i = 0; i < c->n; i++) {
        const Item *it = &c->it[i];
        if (it->kind == kind && it->pure && (!name || (it->name && !strcmp(it->name, name))) && fits(&it->expr)) return i;
    }
    return -1;
}

static bool any_content(const Expr *e) {
    for (int i = 0; i < e->n; i++)
        if (e->t[i].var && is_content(e->t[i].s)) return true;
    return false;
}

static bool only_lits(const Expr *e) {
    for (int i = 0; i < e->n; i++)
        if (e->t[i].var) return false;
    return e->n > 0;
}

static bool chatml_msg(const Expr *e) { return expr_lit(e, "<|im_start|>") && expr_var(e, "message.role") && any_content(e); }
static bool chatml_sys(const Expr *e) {
    return expr_lit(e, "<|im_start|>system") && (expr_var(e, "messages.0.content") || expr_var(e, "system_message"));
}
static bool chatml_default(const Expr *e) {
    return only_lits(e) && expr_lit(e, "<|im_start|>system") && expr_lit(e, "<|im_end|>");
}
static bool chatml_gen(const Expr *e) { return only_lits(e) && expr_lit(e, "<|im_start|>assistant"); }
static bool bos_only(const Expr *e) { return e->n == 1 && e->t[0].var && !strcmp(e->t[0].s, "bos_token"); }
static bool llama3_msg(const Expr *e) {
    return expr_lit(e, "<|start_header_id|>") && expr_var(e, "message.role") && any_content(e);
}
static bool llama3_header(const Expr *e) { return only_lits(e) && expr_lit(e, "<|start_header_id|>system<|end_header_id|>"); }
static bool llama3_dated(const Expr *e) { return expr_lit(e, "Cutting Knowledge Date") && expr_var(e, "date_string"); }
static bool llama3_sys(const Expr *e) { return e->n >= 1 && e->t[0].var && !strcmp(e->t[0].s, "system_message"); }
static bool llama3_gen(const Expr *e) { return only_lits(e) && expr_lit(e, "<|start_header_id|>assistant"); }
static bool sys_from_message(const Expr *e) { return e->n == 1 && e->t[0].var && !strcmp(e->t[0].s, "messages.0.content"); }
static bool empty_lit(const Expr *e) { return e->n == 1 && !e->t[0].var && e->t[0].len == 0; }
static bool one_lit(const Expr *e) { return e->n == 1 && !e->t[0].var; }
static bool inst_user(const Expr *e) { return expr_lit(e, "[INST]") && any_content(e) && !expr_var(e, "system_message"); }
static bool inst_user_sys(const Expr *e) { return expr_lit(e, "[INST]") && any_content(e) && expr_var(e, "system_message"); }
static bool inst_sys_set(const Expr *e) { return expr_lit(e, "<<SYS>>") && expr_var(e, "system_message") && expr_var(e, "message.content"); }
static bool inst_plain_set(const Expr *e) { return e->n == 1 && e->t[0].var && !strcmp(e->t[0].s, "message.content"); }
static bool inst_asst(const Expr *e) { return expr_var(e, "eos_token") && any_content(e) && !expr_lit(e, "[INST]"); }
static bool any_expr(const Expr *e) { return any_content(e); }
static bool bos_first(const Expr *e) { return e->n >= 1 && e->t[0].var && !strcmp(e->t[0].s, "bos_token"); }

// The generation prompt: a literal output outside the message loop, the one under
// add_generation_prompt if there is one.
static int find_gen(const struct TokChat *c, Fits fits) {
    int any = -1;
    for (int i = 0; i < c->n; i++) {
        if (c->it[i].kind != IT_OUT || !c->it[i].pure || in_loop(c, i) || !fits(&c->it[i].expr)) continue;
        if (under(c, i, "add_generation_prompt")) return i;
        if (any < 0) any = i;
    }
    return any;
}

// The first output in a branch on the role given (canonical "message.role=='system'").
static int find_role_out(const struct TokChat *c, const char *cond, Fits fits) {
    for (int i = 0; i < c->n; i++)
        if (c->it[i].kind == IT_OUT && c->it[i].pure && under(c, i, cond) && fits(&c->it[i].expr)) return i;
    return -1;
}

static int plan_chatml(struct TokChat *c) {
    c->kind = TOK_CHAT_CHATML;
    if ((c->msg = find(c, IT_OUT, NULL, chatml_msg)) < 0)
        return refuse(c, "a ChatML template without '<|im_start|>' + role + ... + content%s", "");
    c->sys = find(c, IT_OUT, NULL, chatml_sys);
    int d = find(c, IT_OUT, NULL, chatml_default);
    if (d >= 0) c->default_sys = xmemdup0(c->it[d].expr.t[0].s, c->it[d].expr.t[0].len);
    c->gen = find_gen(c, chatml_gen);
    c->bos_top = find(c, IT_OUT, NULL, bos_only);
    return 0;
}

static int plan_llama3(struct TokChat *c) {
    c->kind = TOK_CHAT_LLAMA3;
    if ((c->msg = find(c, IT_OUT, NULL, llama3_msg)) < 0 && (c->msg = find(c, IT_SET, "content", llama3_msg)) < 0)
        return refuse(c, "a Llama 3 template without '<|start_header_id|>' + role + ... + content%s", "");
    c->gen = find_gen(c, llama3_gen);
    c->bos_top = has_name(c, "bos_token") ? 0 : -1;
    if (has_lit(c, "Cutting Knowledge Date")) { // Llama 3.1 - 3.3: the system block always, dated
        c->sys = find(c, IT_OUT, NULL, llama3_header);
        c->dated = find(c, IT_OUT, NULL, llama3_dated);
        c->sys_val = find(c, IT_OUT, NULL, llama3_sys);
        c->sys_set = find(c, IT_SET, "system_message", sys_from_message);
        c->sys_empty = find(c, IT_SET, "system_message", empty_lit);
        c->today = has_name(c, "strftime_now");
        int dl = find(c, IT_SET, "date_string", one_lit);
        if (dl >= 0) c->date_lit = xstrdup(c->it[dl].expr.t[0].s);
        if (c->sys < 0 || c->dated < 0 || c->sys_val < 0 || c->sys_set < 0 || c->sys_empty < 0 ||
            (!c->today && !c->date_lit))
            return refuse(c, "a Llama 3.1-style template whose system block qkv does not follow%s", "");
    }
    return 0;
}

static int plan_inst(struct TokChat *c, bool llama2) {
    c->kind = llama2 ? TOK_CHAT_LLAMA2 : TOK_CHAT_MISTRAL;
    c->user = find(c, IT_OUT, NULL, inst_user);
    c->asst = find(c, IT_OUT, NULL, inst_asst);
    if (c->user < 0 || c->asst < 0)
        return refuse(c, "an [INST] template without the user's '[INST] ...' or the assistant's ... + eos_token%s", "");
    c->user_sys = find(c, IT_OUT, NULL, inst_user_sys);
    c->sys_set = find(c, IT_SET, "content", inst_sys_set);
    c->plain_set = find(c, IT_SET, "content", inst_plain_set);
    if (!llama2 && c->user_sys < 0) c->sys_msg = find_role_out(c, "message.role=='system'", any_expr);
    int at = c->user_sys >= 0 ? c->user_sys : c->sys_set;
    c->sys_last = at >= 0 && under(c, at, "loop.last");
    for (int i = 0; i < c->n; i++) // bos_token written once, before the loop
        if (c->it[i].kind == IT_OUT && c->it[i].pure && !in_loop(c, i) && bos_first(&c->it[i].expr)) c->bos_top = i;
    // a default system message: {% elif true == true ... %}{% set system_message = '...' %}
    for (int i = 0; i < c->n; i++) {
        const Item *it = &c->it[i];
        if (it->kind == IT_SET && it->name && !strcmp(it->name, "system_message") && it->pure && one_lit(&it->expr) &&
            under(c, i, "true==true") && !under(c, i, "false==true"))
            c->default_sys = xstrdup(it->expr.t[0].s);
    }
    return 0;
}

// Recognise c's template; c->kind stays NONE, with c->why, when qkv does not.
static void chat_plan(struct TokChat *c) {
    c->msg = c->sys = c->gen = c->bos_top = c->dated = c->sys_val = c->sys_empty = -1;
    c->user = c->user_sys = c->sys_set = c->plain_set = c->asst = c->sys_msg = -1;
    if (parse_items(c)) return;
    if (has_lit(c, "<think>") || has_name(c, "enable_thinking")) {
        refuse(c, "templates that think (<think>, enable_thinking) are not supported%s", "");
        return;
    }
    int rc;
    if (has_lit(c, "<|im_start|>")) rc = plan_chatml(c);
    else if (has_lit(c, "<|start_header_id|>")) rc = plan_llama3(c);
    else if (has_lit(c, "[INST]")) rc = plan_inst(c, has_lit(c, "<<SYS>>"));
    else rc = refuse(c, "not one of the formats qkv knows (ChatML, Llama 2, Llama 3, Mistral)%s", "");
    if (rc) c->kind = TOK_CHAT_NONE;
}

// ---- rendering ----

typedef struct Bind {
    const char *name;
    const char *s;
    size_t len;
} Bind;

// Is the code point at s (n bytes) white space as Python's str.strip() sees it? Its length in *k.
static bool py_space(const char *s, size_t n, int *k) {
    uint32_t c;
    int len = utf8_valid_len(s, n);
    if (len <= 0) {
        *k = len < 0 ? -len : 1;
        return false;
    }
    *k = utf8_decode(s, n, &c);
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// s[0..n) without the white space at both ends (Python's str.strip(), Jinja's trim).
static void strip(const char **s, size_t *n) {
    int k;
    while (*n && py_space(*s, *n, &k)) *s += k, *n -= (size_t)k;
    // from the end: find the last code point that is not white space
    size_t keep = 0;
    for (size_t i = 0; i < *n;) {
        bool sp = py_space(*s + i, *n - i, &k);
        i += (size_t)k;
        if (!sp) keep = i;
    }
    *n = keep;
}

// Append e with the variables bound by b[0..nb); -1 when e names a variable not bound.
static int eval(const Expr *e, const Bind *b, int nb, Buf *out, Err *err) {
    for (int i = 0; i < e->n; i++) {
        const Term *t = &e->t[i];
        const char *s = t->s;
        size_t n = t->len;
        if (t->var) {
            int k = 0;
            while (k < nb && strcmp(b[k].name, t->s)) k++;
            if (k == nb) return err_set(err, "the chat template uses '%s', which qkv does not know", t->s);
            s = b[k].s, n = b[k].len;
        }
        if (t->trim) strip(&s, &n);
        buf_put(out, s, n);
    }
    return 0;
}

static const char *const MONTHS[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Today as strftime("%d %b %Y") in the C locale, local time (as transformers' strftime_now).
static void today(char *out, size_t cap) {
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    snprintf(out, cap, "%02d %s %d", tm.tm_mday, MONTHS[tm.tm_mon % 12], tm.tm_year + 1900);
}

static bool role_is(const ChatMsg *m, const char *r) { return m->role && !strcmp(m->role, r); }

// The conversation's shape: an optional system message, then user and assistant in turn from a user.
static int check_shape(const ChatMsg *m, int n, Err *e) {
    int first = n > 0 && role_is(&m[0], "system");
    if (n - first < 1) return err_set(e, "a conversation needs a user message");
    for (int i = first; i < n; i++) {
        const char *want = (i - first) % 2 ? "assistant" : "user";
        if (!role_is(&m[i], want))
            return err_set(e, "message %d is '%s', expected '%s' (an optional system message first, then user and "
                              "assistant in turn)", i + 1, m[i].role ? m[i].role : "(none)", want);
        if (!m[i].text && m[i].len) return err_set(e, "message %d has no text", i + 1);
    }
    return 0;
}

static int render_chatml(const struct TokChat *c, const ChatMsg *m, int n, bool gen, Buf *out, Err *e) {
    Bind b[5] = {{"bos_token", c->bos, strlen(c->bos)}, {"eos_token", c->eos, strlen(c->eos)}};
    if (c->bos_top >= 0) buf_puts(out, c->bos);
    int first = role_is(&m[0], "system");
    if (!first && c->default_sys) buf_puts(out, c->default_sys);
    for (int i = 0; i < n; i++) {
        const Expr *x = &c->it[c->msg].expr;
        b[2] = (Bind){"message.role", m[i].role, strlen(m[i].role)};
        b[3] = (Bind){"message.content", m[i].text, m[i].len};
        b[4] = (Bind){"content", m[i].text, m[i].len};
        if (i == 0 && first && c->sys >= 0) {
            x = &c->it[c->sys].expr;
            b[3] = (Bind){"messages.0.content", m[i].text, m[i].len};
            b[4] = (Bind){"system_message", m[i].text, m[i].len};
        }
        if (eval(x, b, 5, out, e)) return -1;
    }
    if (c->gen >= 0 && (gen || !under(c, c->gen, "add_generation_prompt"))) eval(&c->it[c->gen].expr, b, 0, out, e);
    return 0;
}

static int render_llama3(const struct TokChat *c, const ChatMsg *m, int n, bool gen, Buf *out, Err *e) {
    Bind b[6] = {{"bos_token", c->bos, strlen(c->bos)}, {"eos_token", c->eos, strlen(c->eos)}};
    if (c->bos_top >= 0) buf_puts(out, c->bos); // first, in each revision (a set or an output)
    int first = 0;
    if (c->dated >= 0) { // the system block, with or without a system message
        char date[32];
        if (c->today) today(date, sizeof date);
        else snprintf(date, sizeof date, "%s", c->date_lit);
        Buf sys = {0};
        first = role_is(&m[0], "system");
        b[2] = (Bind){"messages.0.content", first ? m[0].text : "", first ? m[0].len : 0};
        if (eval(&c->it[first ? c->sys_set : c->sys_empty].expr, b, 3, &sys, e)) goto fail;
        b[3] = (Bind){"date_string", date, strlen(date)};
        b[4] = (Bind){"system_message", sys.data ? sys.data : "", sys.len};
        int rc = eval(&c->it[c->sys].expr, b, 5, out, e);
        rc = rc ? rc : eval(&c->it[c->dated].expr, b, 5, out, e);
        rc = rc ? rc : eval(&c->it[c->sys_val].expr, b, 5, out, e);
        buf_free(&sys);
        if (rc) return -1;
    }
    for (int i = first; i < n; i++) {
        b[2] = (Bind){"message.role", m[i].role, strlen(m[i].role)};
        b[3] = (Bind){"message.content", m[i].text, m[i].len};
        if (eval(&c->it[c->msg].expr, b, 4, out, e)) return -1;
    }
    if (c->gen >= 0 && (gen || !under(c, c->gen, "add_generation_prompt"))) eval(&c->it[c->gen].expr, b, 0, out, e);
    return 0;
fail:
    return -1;
}

static int render_inst(const struct TokChat *c, const ChatMsg *m, int n, Buf *out, Err *e) {
    Bind b[6] = {{"bos_token", c->bos, strlen(c->bos)}, {"eos_token", c->eos, strlen(c->eos)}};
    if (c->bos_top >= 0) buf_puts(out, c->bos);
    int first = role_is(&m[0], "system");
    const char *sys = first ? m[0].text : NULL;
    size_t sys_len = first ? m[0].len : 0;
    if (!first && c->default_sys && !memmem(m[0].text, m[0].len, "<<SYS>>", 7))
        sys = c->default_sys, sys_len = strlen(sys);
    if (sys && c->user_sys < 0 && c->sys_set < 0 && c->sys_msg < 0)
        return err_set(e, "this chat template (%s) has no place for a system message", tok_chat_kind_name(c->kind));
    if (first && c->sys_msg >= 0) { // a message of its own ([SYSTEM_PROMPT])
        b[2] = (Bind){"message.content", sys, sys_len};
        if (eval(&c->it[c->sys_msg].expr, b, 3, out, e)) return -1;
        sys = NULL;
    }
    int last = n - 1;
    Buf content = {0};
    for (int i = first; i < n; i++) {
        b[2] = (Bind){"message.content", m[i].text, m[i].len};
        b[3] = (Bind){"system_message", sys ? sys : "", sys_len};
        int rc;
        if (role_is(&m[i], "assistant")) {
            b[4] = (Bind){"content", m[i].text, m[i].len};
            rc = eval(&c->it[c->asst].expr, b, 5, out, e);
        } else {
            bool with_sys = sys && (c->sys_last ? i == last : i == first);
            buf_clear(&content);
            if (with_sys && c->user_sys >= 0) {
                rc = eval(&c->it[c->user_sys].expr, b, 4, out, e);
            } else {
                if (with_sys) rc = eval(&c->it[c->sys_set].expr, b, 4, &content, e);
                else if (c->plain_set >= 0) rc = eval(&c->it[c->plain_set].expr, b, 4, &content, e);
                else rc = 0, buf_put(&content, m[i].text, m[i].len);
                b[4] = (Bind){"content", content.data ? content.data : "", content.len};
                rc = rc ? rc : eval(&c->it[c->user].expr, b, 5, out, e);
            }
        }
        if (rc) {
            buf_free(&content);
            return -1;
        }
    }
    buf_free(&content);
    return 0;
}

// ---- the API ----

TokChatKind tok_chat_kind(const Tokenizer *t) { return t->chat ? t->chat->kind : TOK_CHAT_NONE; }

const char *tok_chat_kind_name(TokChatKind k) {
    switch (k) {
    case TOK_CHAT_CHATML: return "chatml";
    case TOK_CHAT_LLAMA2: return "llama2";
    case TOK_CHAT_LLAMA3: return "llama3";
    case TOK_CHAT_MISTRAL: return "mistral";
    case TOK_CHAT_NONE: break;
    }
    return "none";
}

const char *tok_chat_template(const Tokenizer *t, size_t *len) {
    if (!t->chat || !t->chat->text) return NULL;
    if (len) *len = t->chat->len;
    return t->chat->text;
}

int tok_chat_render(const Tokenizer *t, const ChatMsg *msgs, int n, bool gen_prompt, Buf *out, Err *e) {
    const struct TokChat *c = t->chat;
    if (!c || !c->text) return err_set(e, "%s", c && c->why[0] ? c->why : "the tokenizer has no chat template");
    if (c->kind == TOK_CHAT_NONE) {
        char q[48];
        return err_set(e, "chat template not recognised: %s (it begins '%s')", c->why,
                       tok_quote(c->text, c->len, q, sizeof q));
    }
    if (check_shape(msgs, n, e)) return -1;
    size_t start = out->len;
    int rc = c->kind == TOK_CHAT_CHATML  ? render_chatml(c, msgs, n, gen_prompt, out, e)
             : c->kind == TOK_CHAT_LLAMA3 ? render_llama3(c, msgs, n, gen_prompt, out, e)
                                          : render_inst(c, msgs, n, out, e);
    if (rc) out->len = start;
    return rc;
}

TokChatKind tok_chat_set_template(Tokenizer *t, const char *tmpl, size_t len, const char *bos, const char *eos,
                                  const char *where) {
    tok_chat_free(t->chat);
    struct TokChat *c = t->chat = xcalloc(1, sizeof *c);
    // Jinja reads \r\n and \r as \n
    Buf text = {0};
    for (size_t i = 0; i < len; i++) {
        if (tmpl[i] == '\r') {
            buf_putc(&text, '\n');
            if (i + 1 < len && tmpl[i + 1] == '\n') i++;
        } else {
            buf_putc(&text, tmpl[i]);
        }
    }
    c->len = text.len;
    c->text = buf_take(&text);
    if (!c->text) c->text = xstrdup("");
    c->bos = xstrdup(bos ? bos : "");
    c->eos = xstrdup(eos ? eos : "");
    chat_plan(c);
    size_t l = strlen(c->why);
    if (c->kind == TOK_CHAT_NONE && where && l + 8 < sizeof c->why) {
        int w = (int)(sizeof c->why - l - 4);
        snprintf(c->why + l, sizeof c->why - l, " (%.*s)", w, where);
    }
    return c->kind;
}

// The text of a special token in tokenizer_config.json: a string or {"content": "..."}; NULL if absent.
static const char *token_text(const Json *cfg, const char *key) {
    const Json *v = json_get(cfg, key);
    if (v && v->type == JSON_OBJ) v = json_get(v, "content");
    return v && v->type == JSON_STR ? v->str : NULL;
}

// The id of the special token tokenizer_config.json names under key, if the vocabulary has it.
static void config_token(const Tokenizer *t, const Json *cfg, const char *key, int *id) {
    const char *s = token_text(cfg, key);
    int found = s ? tok_find(t, s, strlen(s)) : -1;
    if (found >= 0) *id = found;
}

int tok_config_load(Tokenizer *t, const char *dir, Err *err) {
    char *cfg_path = fs_join(dir, "tokenizer_config.json"), *jinja_path = fs_join(dir, "chat_template.jinja");
    Err e = {{0}};
    Json *cfg = NULL;
    // present but unreadable or broken: an error (its BOS and EOS would be silently missing)
    if (fs_present(cfg_path) && !(cfg = json_parse_file(cfg_path, err))) {
        free(cfg_path), free(jinja_path);
        return -1;
    }
    if (cfg) { // the beginning and end of text as HF names them (a tokenizer.json alone does not say)
        config_token(t, cfg, "bos_token", &t->bos);
        config_token(t, cfg, "eos_token", &t->eos);
    }
    Buf jinja = {0};
    const char *tmpl = NULL, *where = NULL;
    size_t len = 0;
    if (fs_present(jinja_path) && !fs_read_file(jinja_path, (size_t)1 << 24, &jinja, &e)) {
        tmpl = jinja.data ? jinja.data : "", len = jinja.len, where = jinja_path;
    } else if (cfg) {
        const Json *ct = json_get(cfg, "chat_template");
        if (ct && ct->type == JSON_ARR) // [{"name": "default", "template": "..."}, ...]
            for (size_t i = 0; i < ct->len; i++)
                if (!strcmp(json_str_or(&ct->items[i], "name", ""), "default")) ct = json_get(&ct->items[i], "template");
        if (ct && ct->type == JSON_STR) tmpl = ct->str, len = ct->len, where = cfg_path;
    }
    if (tmpl) {
        tok_chat_set_template(t, tmpl, len, token_text(cfg, "bos_token"), token_text(cfg, "eos_token"), where);
    } else if (e.msg[0]) { // keep why there is none
        tok_chat_free(t->chat);
        t->chat = xcalloc(1, sizeof *t->chat);
        snprintf(t->chat->why, sizeof t->chat->why, "no chat template: %s", e.msg);
    }
    json_free(cfg);
    buf_free(&jinja);
    free(cfg_path);
    free(jinja_path);
    return 0;
}
