// json.c - strict recursive-descent JSON parser.
#include "base/json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/mem.h"
#include "base/utf8.h"

enum { JSON_MAX_DEPTH = 512 };

typedef struct {
    const char *s, *end, *start;
    Err *e;
    int depth;
} P;

static int perr(P *p, const char *what) {
    int line = 1, col = 1;
    for (const char *q = p->start; q < p->s && q < p->end; q++) {
        if (*q == '\n') line++, col = 1;
        else col++;
    }
    return err_set(p->e, "line %d column %d: %s", line, col, what);
}

static void ws(P *p) {
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')) p->s++;
}

static int hex4(P *p, uint32_t *v) {
    if (p->end - p->s < 4) return perr(p, "truncated \\u escape");
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[i];
        x <<= 4;
        if (c >= '0' && c <= '9') x |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') x |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') x |= (uint32_t)(c - 'A' + 10);
        else return perr(p, "bad \\u escape");
    }
    p->s += 4;
    *v = x;
    return 0;
}

// Parses a string literal at p->s (which is '"') into out.
static int parse_str(P *p, Buf *out) {
    p->s++;
    for (;;) {
        if (p->s >= p->end) return perr(p, "unterminated string");
        unsigned char c = (unsigned char)*p->s;
        if (c == '"') {
            p->s++;
            return 0;
        }
        if (c < 0x20) return perr(p, "control character in string");
        if (c != '\\') {
            // copy a run of plain bytes; invalid UTF-8 is kept as U+FFFD
            if (c < 0x80) {
                buf_putc(out, (char)c);
                p->s++;
            } else {
                int len = utf8_valid_len(p->s, (size_t)(p->end - p->s));
                if (len > 0) buf_put(out, p->s, (size_t)len), p->s += len;
                else buf_puts(out, "\xEF\xBF\xBD"), p->s += -len;
            }
            continue;
        }
        p->s++;
        if (p->s >= p->end) return perr(p, "unterminated escape");
        char esc = *p->s++;
        switch (esc) {
        case '"': buf_putc(out, '"'); break;
        case '\\': buf_putc(out, '\\'); break;
        case '/': buf_putc(out, '/'); break;
        case 'b': buf_putc(out, '\b'); break;
        case 'f': buf_putc(out, '\f'); break;
        case 'n': buf_putc(out, '\n'); break;
        case 'r': buf_putc(out, '\r'); break;
        case 't': buf_putc(out, '\t'); break;
        case 'u': {
            uint32_t cp;
            if (hex4(p, &cp)) return -1;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (p->end - p->s >= 6 && p->s[0] == '\\' && p->s[1] == 'u') {
                    const char *save = p->s;
                    p->s += 2;
                    if (hex4(p, &lo)) return -1;
                    if (lo >= 0xDC00 && lo <= 0xDFFF) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    else p->s = save, cp = 0xFFFD;
                } else {
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            char tmp[4];
            buf_put(out, tmp, (size_t)utf8_encode(cp, tmp));
            break;
        }
        default: return perr(p, "bad escape");
        }
    }
}

static int parse_value(P *p, Json *j);
static void json_free_children(Json *j);

static int parse_num(P *p, Json *j) {
    const char *q = p->s;
    if (q < p->end && *q == '-') q++;
    if (q >= p->end) return perr(p, "bad number");
    if (*q == '0') q++;
    else if (*q >= '1' && *q <= '9') while (q < p->end && *q >= '0' && *q <= '9') q++;
    else return perr(p, "bad number");
    if (q < p->end && *q == '.') {
        q++;
        if (q >= p->end || *q < '0' || *q > '9') return perr(p, "bad number");
        while (q < p->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < p->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < p->end && (*q == '+' || *q == '-')) q++;
        if (q >= p->end || *q < '0' || *q > '9') return perr(p, "bad number");
        while (q < p->end && *q >= '0' && *q <= '9') q++;
    }
    char tmp[64];
    size_t n = (size_t)(q - p->s);
    if (n >= sizeof tmp) {
        // very long literal: parse from a heap copy
        char *h = xstrndup(p->s, n);
        j->num = strtod(h, NULL);
        free(h);
    } else {
        memcpy(tmp, p->s, n);
        tmp[n] = 0;
        j->num = strtod(tmp, NULL);
    }
    j->type = JSON_NUM;
    p->s = q;
    return 0;
}

static int lit(P *p, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(p->end - p->s) < n || memcmp(p->s, w, n)) return perr(p, "unexpected character");
    p->s += n;
    return 0;
}

// The parse tree is bookkeeping (mem.h rule 2): bounded by the text already in memory.
static void push(Json **items, size_t *n, size_t *cap, Json *v) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *items = xrealloc(*items, mem_mul(*cap, sizeof **items));
    }
    (*items)[(*n)++] = *v;
}

static int parse_container(P *p, Json *j, bool obj) {
    if (++p->depth > JSON_MAX_DEPTH) return perr(p, "nesting too deep");
    p->s++;
    size_t n = 0, cap = 0, kcap = 0;
    Json *items = NULL;
    char **keys = NULL;
    size_t *klens = NULL;
    j->type = obj ? JSON_OBJ : JSON_ARR;
    ws(p);
    char close = obj ? '}' : ']';
    if (p->s < p->end && *p->s == close) {
        p->s++;
        p->depth--;
        return 0;
    }
    for (;;) {
        ws(p);
        Buf key = {0};
        if (obj) {
            if (p->s >= p->end || *p->s != '"') goto bad_key;
            if (parse_str(p, &key)) goto fail_key;
            ws(p);
            if (p->s >= p->end || *p->s != ':') {
                perr(p, "expected ':'");
                goto fail_key;
            }
            p->s++;
        }
        Json v = {0};
        if (parse_value(p, &v)) {
            json_free_children(&v);
            goto fail_key;
        }
        if (obj && n == kcap) {
            kcap = kcap ? kcap * 2 : 8;
            keys = xrealloc(keys, mem_mul(kcap, sizeof *keys));
            klens = xrealloc(klens, mem_mul(kcap, sizeof *klens));
        }
        if (obj) {
            klens[n] = key.len;
            keys[n] = buf_take(&key);
        }
        push(&items, &n, &cap, &v);
        ws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->end && *p->s == close) {
            p->s++;
            break;
        }
        perr(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        goto fail;
    fail_key:
        buf_free(&key);
        goto fail;
    bad_key:
        perr(p, "expected a string key");
        goto fail;
    }
    j->items = items;
    j->keys = keys;
    j->klens = klens;
    j->len = n;
    p->depth--;
    return 0;
fail:
    j->items = items;
    j->keys = keys;
    j->klens = klens;
    j->len = n;
    return -1;
}

static int parse_value(P *p, Json *j) {
    ws(p);
    if (p->s >= p->end) return perr(p, "unexpected end of input");
    switch (*p->s) {
    case '{': return parse_container(p, j, true);
    case '[': return parse_container(p, j, false);
    case '"': {
        Buf b = {0};
        if (parse_str(p, &b)) {
            buf_free(&b);
            return -1;
        }
        j->type = JSON_STR;
        j->len = b.len;
        j->str = buf_take(&b);
        return 0;
    }
    case 't': j->type = JSON_BOOL, j->b = true; return lit(p, "true");
    case 'f': j->type = JSON_BOOL, j->b = false; return lit(p, "false");
    case 'n': j->type = JSON_NULL; return lit(p, "null");
    default: return parse_num(p, j);
    }
}

static void json_free_children(Json *j) {
    if (j->type == JSON_STR) free(j->str);
    if (j->type == JSON_ARR || j->type == JSON_OBJ) {
        for (size_t i = 0; i < j->len; i++) {
            json_free_children(&j->items[i]);
            if (j->keys) free(j->keys[i]);
        }
        free(j->items);
        free(j->keys);
        free(j->klens);
    }
}

Json *json_parse(const char *text, size_t n, Err *e) {
    P p = {text, text + n, text, e, 0};
    Json *j = xcalloc(1, sizeof *j);
    if (parse_value(&p, j)) {
        json_free(j);
        return NULL;
    }
    ws(&p);
    if (p.s != p.end) {
        perr(&p, "trailing characters after the JSON value");
        json_free(j);
        return NULL;
    }
    return j;
}

// The length of the UTF-8 byte-order mark s (n bytes) starts with: 3, or 0 when none.
static size_t bom_len(const char *s, size_t n) { return n >= 3 && !memcmp(s, "\xef\xbb\xbf", 3) ? 3 : 0; }

Json *json_parse_file(const char *path, Err *e) {
    Buf b = {0};
    // the JSON files qkv reads (configs, tokenizer.json: tens of MB) are far below 1 GB
    if (fs_read_file(path, (size_t)1 << 30, &b, e)) return NULL;
    const char *s = b.data ? b.data : "";
    size_t bom = bom_len(s, b.len);
    Json *j = json_parse(s + bom, b.len - bom, e);
    buf_free(&b);
    if (!j) err_prefix(e, "'%s'", path);
    return j;
}

int json_line_ready(const char *line0, const char **s, size_t *n, int line, Err *e) {
    if (line == 1) {
        size_t bom = bom_len(*s, *n);
        *s += bom, *n -= bom;
    }
    size_t bad_at = utf8_invalid_at(*s, *n);
    if (bad_at == SIZE_MAX) return 0;
    return err_set(e, "not UTF-8 (byte %zu of the line): convert the file first (iconv)",
                   (size_t)(*s - line0) + bad_at + 1);
}

void json_free(Json *j) {
    if (!j) return;
    json_free_children(j);
    free(j);
}

const Json *json_get(const Json *j, const char *key) {
    if (!j || j->type != JSON_OBJ) return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < j->len; i++)
        if (j->klens[i] == kl && !memcmp(j->keys[i], key, kl)) return &j->items[i];
    return NULL;
}

const Json *json_at(const Json *j, size_t i) {
    if (!j || j->type != JSON_ARR || i >= j->len) return NULL;
    return &j->items[i];
}

double json_num_or(const Json *j, const char *key, double dflt) {
    const Json *v = json_get(j, key);
    return v && v->type == JSON_NUM ? v->num : dflt;
}

const char *json_str_or(const Json *j, const char *key, const char *dflt) {
    const Json *v = json_get(j, key);
    return v && v->type == JSON_STR ? v->str : dflt;
}

bool json_bool_or(const Json *j, const char *key, bool dflt) {
    const Json *v = json_get(j, key);
    return v && v->type == JSON_BOOL ? v->b : dflt;
}

bool json_int_in(const Json *j, long long lo, long long hi, long long *out) {
    if (!j || j->type != JSON_NUM || !isfinite(j->num) || j->num != floor(j->num)) return false;
    if (j->num < (double)lo || j->num > (double)hi) return false;
    *out = (long long)j->num;
    return true;
}
