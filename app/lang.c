// lang.c - the command language: lexer, parser, argument accessors, results, and the
// registry of command tables.
#include "lang.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "base/mem.h"

// ---------------------------------------------------------------------------------------
// Output

void out_init(Out *o) {
    memset(o, 0, sizeof *o);
    o->json.fallible = o->text.fallible = true; // a result's size follows the request (mem.h rule 1)
    jw_init(&o->w, &o->json);
    jw_obj(&o->w);
}

void out_free(Out *o) {
    buf_free(&o->json);
    buf_free(&o->text);
    buf_free(&o->err);
}

int out_error(Out *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    buf_clear(&o->err);
    buf_vprintf(&o->err, fmt, ap);
    va_end(ap);
    return -1;
}

// ---------------------------------------------------------------------------------------
// Lexing

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Reads a double-quoted string with C escapes starting at *p (on the quote) into b.
static int lex_dquoted(const char **p, const char *end, Buf *b, Err *e) {
    const char *s = *p + 1;
    while (s < end && *s != '"') {
        if (*s != '\\') {
            buf_putc(b, *s++);
            continue;
        }
        if (++s >= end) break;
        char c = *s++;
        switch (c) {
        case 'n': buf_putc(b, '\n'); break;
        case 't': buf_putc(b, '\t'); break;
        case 'r': buf_putc(b, '\r'); break;
        case '0': buf_putc(b, '\0'); break;
        case 'a': buf_putc(b, '\a'); break;
        case 'b': buf_putc(b, '\b'); break;
        case 'f': buf_putc(b, '\f'); break;
        case 'v': buf_putc(b, '\v'); break;
        case 'e': buf_putc(b, '\x1b'); break;
        case '\\': buf_putc(b, '\\'); break;
        case '"': buf_putc(b, '"'); break;
        case '\'': buf_putc(b, '\''); break;
        case 'x': {
            int h1 = s < end ? hexval(*s) : -1, h2 = s + 1 < end ? hexval(s[1]) : -1;
            if (h1 < 0) return err_set(e, "bad \\x escape: two hex digits expected");
            if (h2 < 0) {
                buf_putc(b, (char)h1);
                s += 1;
            } else {
                buf_putc(b, (char)(h1 * 16 + h2));
                s += 2;
            }
            break;
        }
        case 'u':
        case 'U': {
            int nd = c == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int i = 0; i < nd; i++) {
                int h = s < end ? hexval(*s) : -1;
                if (h < 0) return err_set(e, "bad \\%c escape: %d hex digits expected", c, nd);
                cp = cp * 16 + (uint32_t)h;
                s++;
            }
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return err_set(e, "bad \\%c escape: U+%X is not a character", c, cp);
            char u[4];
            buf_put(b, u, (size_t)utf8_encode(cp, u));
            break;
        }
        default: return err_set(e, "unknown escape '\\%c' in quoted text", c);
        }
    }
    if (s >= end) return err_set(e, "unterminated quoted text");
    *p = s + 1;
    return 0;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Reads one word (which may mix bare and quoted parts: key="a b") into b.
static int lex_word(const char **p, const char *end, Buf *b, bool *quoted, Err *e) {
    const char *s = *p;
    while (s < end && !is_space(*s)) {
        if (*s == '"') {
            *quoted = true;
            if (lex_dquoted(&s, end, b, e)) return -1;
        } else if (*s == '\'') {
            *quoted = true;
            const char *q = memchr(s + 1, '\'', (size_t)(end - s - 1));
            if (!q) return err_set(e, "unterminated quoted text");
            buf_put(b, s + 1, (size_t)(q - s - 1));
            s = q + 1;
        } else {
            buf_putc(b, *s++);
        }
    }
    *p = s;
    return 0;
}

void args_free(Args *a) {
    for (int i = 0; i < a->n; i++) {
        free(a->a[i].key);
        free(a->a[i].val);
    }
    free(a->a);
    free(a->name);
    memset(a, 0, sizeof *a);
}

int lang_parse(const char *line, size_t len, Args *out, Err *e) {
    memset(out, 0, sizeof *out);
    const char *s = line, *end = line + len;
    int cap = 0;
    while (s < end) {
        while (s < end && is_space(*s)) s++;
        if (s >= end) break;
        // key=value when a bare identifier precedes '=' (so "a=b" quoted stays positional)
        const char *k = s;
        while (k < end && (isalnum((unsigned char)*k) || *k == '_' || *k == '-' || *k == '.')) k++;
        char *key = NULL;
        if (out->name && k > s && k < end && *k == '=') {
            key = xstrndup(s, (size_t)(k - s));
            s = k + 1;
        }
        Buf b = {0};
        bool quoted = false;
        if (lex_word(&s, end, &b, &quoted, e)) {
            free(key);
            buf_free(&b);
            args_free(out);
            return -1;
        }
        size_t blen = b.len;
        char *val = buf_take(&b);
        if (!out->name) {
            out->name = val;
            if (out->name[0] == ':') memmove(out->name, out->name + 1, strlen(out->name));
            continue;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 8;
            out->a = xrealloc(out->a, sizeof *out->a * (size_t)cap);
        }
        out->a[out->n++] = (Arg){key, val, blen, quoted};
    }
    if (!out->name || !*out->name) {
        args_free(out);
        return err_set(e, "empty command");
    }
    return 0;
}

// Walk text's commands as lang_split splits them: fn (when given) gets each non-empty one, and
// the walk stops at its first non-zero return, which is returned. text starts inside the quote
// q0 (0: at a command's start); *open is set to the quote the text ends inside (a command that
// goes on in the text still to come), 0 when none.
static int split(const char *text, size_t len, char q0, int (*fn)(void *user, const char *cmd, size_t n),
                 void *user, char *open) {
    const char *s = text, *end = text + len;
    char q = q0;
    *open = q;
    while (s < end) {
        if (!q) { // a command's start
            while (s < end && is_space(*s)) s++;
            if (s >= end) break;
            if (*s == '#') { // comment to end of line
                while (s < end && *s != '\n') s++;
                continue;
            }
        }
        const char *start = s;
        while (s < end) {
            if (q) {
                if (*s == '\\' && q == '"' && s + 1 < end) s++;
                else if (*s == q) q = 0;
            } else if (*s == '"' || *s == '\'') {
                q = *s;
            } else if (*s == ';' || *s == '\n') {
                break;
            }
            s++;
        }
        *open = q; // (only the last command can reach the end inside a quote)
        const char *stop = s;
        while (stop > start && is_space(stop[-1])) stop--;
        if (stop > start && fn) {
            int rc = fn(user, start, (size_t)(stop - start));
            if (rc) return rc;
        }
        if (s < end) s++;
    }
    return 0;
}

int lang_split(const char *text, size_t len, int (*fn)(void *user, const char *cmd, size_t n), void *user) {
    char open;
    return split(text, len, 0, fn, user, &open);
}

char lang_quote_after(const char *text, size_t len, char quote) {
    char open;
    split(text, len, quote, NULL, NULL, &open);
    return open;
}

// ---------------------------------------------------------------------------------------
// Arguments

const Arg *args_pos(const Args *a, int i) {
    for (int k = 0; k < a->n; k++)
        if (!a->a[k].key && i-- == 0) return &a->a[k];
    return NULL;
}

int args_npos(const Args *a) {
    int n = 0;
    for (int k = 0; k < a->n; k++) n += !a->a[k].key;
    return n;
}

const char *args_opt(const Args *a, const char *key) {
    for (int k = a->n - 1; k >= 0; k--) // lang_check_keys refuses a key given twice
        if (a->a[k].key && !strcmp(a->a[k].key, key)) return a->a[k].val;
    return NULL;
}

int args_int(const Args *a, const char *key, long long lo, long long hi, long long *out, Err *e) {
    const char *v = args_opt(a, key);
    if (!v) return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno) return err_set(e, "%s=%.40s: an integer expected", key, v);
    // a bound that is only a guard against overflow (1 << 30: positions, counts) goes unsaid
    if (x < lo && hi >= 1LL << 30) return err_set(e, "%s=%lld: must be %lld or more", key, x, lo);
    if (x < lo || x > hi) return err_set(e, "%s=%lld: must be in [%lld, %lld]", key, x, lo, hi);
    *out = x;
    return 1;
}

int args_float(const Args *a, const char *key, double lo, double hi, double *out, Err *e) {
    const char *v = args_opt(a, key);
    if (!v) return 0;
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !isfinite(x)) return err_set(e, "%s=%.40s: a number expected", key, v);
    if (x < lo || x > hi) return err_set(e, "%s=%g: must be in [%g, %g]", key, x, lo, hi);
    *out = x;
    return 1;
}

int args_bool(const Args *a, const char *key, bool *out, Err *e) {
    const char *v = args_opt(a, key);
    if (!v) return 0;
    if (!strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1") || !strcmp(v, "yes")) *out = true;
    else if (!strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "no")) *out = false;
    else return err_set(e, "%s=%.40s: true or false expected", key, v);
    return 1;
}

// ---------------------------------------------------------------------------------------
// The registry

enum { MAX_TABLES = 16 };
static const Command *tables[MAX_TABLES];
static int n_tables;

void lang_register(const Command *table) {
    for (int t = 0; t < n_tables; t++)
        if (tables[t] == table) return;
    if (n_tables < MAX_TABLES) tables[n_tables++] = table;
}

const Command *lang_at(int i) {
    for (int t = 0; t < n_tables; t++)
        for (const Command *c = tables[t]; c->name; c++)
            if (i-- == 0) return c;
    return NULL;
}

const Command *lang_find(const char *name) {
    const Command *c;
    for (int i = 0; (c = lang_at(i)); i++)
        if (!strcmp(c->name, name)) return c;
    return NULL;
}

// The options of a against keys (when names) and against each other.
static int check_keys(const char *name, const char *const *keys, bool names, const Args *a, Out *out) {
    for (int k = 0; k < a->n; k++) {
        if (!a->a[k].key) continue;
        bool ok = !names;
        for (int i = 0; keys && keys[i] && !ok; i++) ok = !strcmp(keys[i], a->a[k].key);
        if (!ok) {
            Buf known = {0};
            for (int i = 0; keys && keys[i]; i++) buf_printf(&known, "%s%s", i ? ", " : "", keys[i]);
            out_error(out, "%s: unknown option '%.40s'%s%s", name, a->a[k].key,
                      known.len ? " (options: " : " (it takes no options", known.len ? known.data : "");
            buf_puts(&out->err, ")");
            buf_free(&known);
            return -1;
        }
        // an option given twice is a slip (which one was meant?), not "the last one wins"; order's
        // ties (2=4) are positional words that look like options, and say themselves what repeats
        if (isdigit((unsigned char)a->a[k].key[0])) continue;
        for (int j = 0; j < k; j++)
            if (a->a[j].key && !strcmp(a->a[j].key, a->a[k].key))
                return out_error(out, "%s: %.40s= given twice (%.40s and %.40s): give it once", name, a->a[k].key,
                                 a->a[j].val, a->a[k].val);
    }
    return 0;
}

int lang_check_args(const Command *c, const Args *a, Out *out) {
    int np = args_npos(a);
    if (np < c->min_pos || np > c->max_pos) {
        if (c->max_pos == 0) return out_error(out, "%s takes no positional argument: usage: %s", c->name, c->usage);
        return out_error(out, "%s: wrong number of arguments: usage: %s", c->name, c->usage);
    }
    return check_keys(c->name, c->keys, !c->own_keys, a, out);
}

int lang_check_keys(const char *name, const char *const *keys, const Args *a, Out *out) {
    return check_keys(name, keys, true, a, out);
}

