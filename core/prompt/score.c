// score.c - extracting answers from completions and comparing them with targets (see score.h).
#include "prompt/score.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "base/utf8.h"
#include "tok/unicode_norm.h"

struct Scorer {
    ScoreOpts o;
    char *separator, *phrase;
    regex_t re;
    bool have_re;
};

static const char *const KIND_NAMES[] = {"exact", "contains", "number", "regex", "choice"};

int score_kind_parse(const char *name) {
    for (int i = 0; i < (int)(sizeof KIND_NAMES / sizeof *KIND_NAMES); i++)
        if (!strcmp(name, KIND_NAMES[i])) return i;
    return -1;
}

const char *score_kind_name(ScoreKind k) {
    return (unsigned)k < sizeof KIND_NAMES / sizeof *KIND_NAMES ? KIND_NAMES[k] : "?";
}

Scorer *scorer_new(const ScoreOpts *o, Err *e) {
    if (o->kind == SCORE_REGEX && (!o->regex || !*o->regex))
        return err_set(e, "scorer=regex needs regex=\"...\" (its first group, or the match, is the answer)"), NULL;
    if (o->kind != SCORE_REGEX && o->regex && *o->regex)
        return err_set(e, "regex= goes with scorer=regex"), NULL;
    Scorer *s = xcalloc(1, sizeof *s);
    s->o = *o;
    s->separator = xstrdup(o->separator ? o->separator : "\n");
    s->phrase = xstrdup(o->answer_phrase && *o->answer_phrase ? o->answer_phrase : "The answer is");
    s->o.separator = s->separator;
    s->o.answer_phrase = s->phrase;
    s->o.regex = NULL;
    // POSIX extended syntax (glibc's, with its \w \s \b): Perl's \d, read as the letter d, matched
    // nothing a number was meant to, silently
    for (const char *p = o->kind == SCORE_REGEX && o->regex ? o->regex : ""; *p; p++)
        if (*p == '\\' && p[1]) {
            if (p[1] == 'd' || p[1] == 'D') {
                err_set(e, "regex=\"%.100s\": \\%c is Perl's, not POSIX extended syntax, which qkv's regex is: write "
                           "%s", o->regex, p[1], p[1] == 'd' ? "[0-9]" : "[^0-9]");
                free(s->separator), free(s->phrase), free(s);
                return NULL;
            }
            p++; // an escaped character, a backslash included
        }
    if (o->kind == SCORE_REGEX) {
        int rc = regcomp(&s->re, o->regex, REG_EXTENDED | REG_ICASE);
        if (rc) {
            char msg[200];
            regerror(rc, &s->re, msg, sizeof msg);
            err_set(e, "regex=\"%.100s\": %s", o->regex, msg);
            free(s->separator), free(s->phrase), free(s);
            return NULL;
        }
        s->have_re = true;
    }
    return s;
}

void scorer_free(Scorer *s) {
    if (!s) return;
    if (s->have_re) regfree(&s->re);
    free(s->separator), free(s->phrase);
    free(s);
}

static bool is_blank(const char *s) {
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) return false;
    return true;
}

const char *prompt_separator(const char *sep, bool cot) { return cot && is_blank(sep) && !strstr(sep, "\n\n") ? "\n\n" : sep; }

size_t score_cut(const Scorer *s, const char *t, size_t n) {
    const char *sep = prompt_separator(s->separator, s->o.cot);
    size_t k = strlen(sep), i = 0;
    while (i < n && isspace((unsigned char)t[i])) i++;
    if (!k) return n;
    for (; i + k <= n; i++)
        if (!memcmp(t + i, sep, k)) return i;
    return n;
}

// Append s[a, b) trimmed of white space.
static void put_trimmed(Buf *out, const char *s, size_t a, size_t b) {
    while (a < b && isspace((unsigned char)s[a])) a++;
    while (b > a && isspace((unsigned char)s[b - 1])) b--;
    buf_put(out, s + a, b - a);
}

// A single letter followed by a point at s[w, w + 2): an initial.
static bool initial_at(const char *s, size_t n, size_t w) {
    return w + 1 < n && isalpha((unsigned char)s[w]) && s[w + 1] == '.' && (w == 0 || !isalpha((unsigned char)s[w - 1])) &&
           (w + 2 == n || !isalpha((unsigned char)s[w + 2]));
}

// Whether the point at s[i] ends an abbreviation rather than a sentence: a title or a Latin
// abbreviation ("Mr. Smith", "e.g. 8"), a dotted one ("U.S."), or an initial among initials
// ("J. K. Rowling"; a lone capital, "The answer is B. It ...", ends its sentence).
static bool abbreviation_at(const char *s, size_t n, size_t i) {
    static const char *const known[] = {"mr", "mrs", "ms", "dr", "st", "mt", "prof", "jr", "sr", "vs", "cf", "approx", "fig"};
    size_t w = i;
    while (w > 0 && (isalpha((unsigned char)s[w - 1]) || (s[w - 1] == '.' && w >= 2 && isalpha((unsigned char)s[w - 2]))))
        w--;
    size_t len = i - w;
    if (!len || len > 8) return false;
    if (memchr(s + w, '.', len)) return true; // "e.g", "U.S"
    for (size_t k = 0; k < sizeof known / sizeof *known; k++)
        if (strlen(known[k]) == len && !strncasecmp(s + w, known[k], len)) return true;
    if (len != 1) return false;
    size_t nx = i + 1;
    while (nx < n && s[nx] == ' ') nx++;
    return (w >= 3 && s[w - 1] == ' ' && initial_at(s, n, w - 3)) || initial_at(s, n, nx);
}

// A sentence ends at s[i]: ".!?" before white space or the end ("3.5" keeps its point), not
// an abbreviation's point.
static bool sentence_end(const char *s, size_t n, size_t i) {
    if (!strchr(".!?", s[i]) || !s[i] || (i + 1 < n && !isspace((unsigned char)s[i + 1]))) return false;
    return s[i] != '.' || !abbreviation_at(s, n, i);
}

// The final answer after position a: up to the end of the line, and of its sentence
// (sentence_end), without closing punctuation.
static void final_answer(Buf *out, const char *s, size_t a, size_t n) {
    while (a < n && (isspace((unsigned char)s[a]) || s[a] == ':')) a++;
    size_t b = a;
    while (b < n && s[b] != '\n' && !sentence_end(s, n, b)) b++;
    while (b > a && strchr(".!?,;:", s[b - 1])) b--;
    put_trimmed(out, s, a, b);
    // "**42**" or "$42": surrounding markup and currency are not the answer
    while (out->len && strchr("*_`\"'", out->data[0])) memmove(out->data, out->data + 1, out->len--);
    while (out->len && strchr("*_`\"'", out->data[out->len - 1])) out->data[--out->len] = 0;
}

// Where the last sentence of s[0, n) with a word in it begins: sentences end at a new line, or
// where sentence_end says.
static size_t last_sentence(const char *s, size_t n) {
    size_t cur = 0, last = 0;
    bool worded = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n' || sentence_end(s, n, i)) {
            cur = i + 1, worded = false;
        } else if (!worded && !isspace(c) && !(c && strchr(".!?,;:", c))) {
            last = cur, worded = true;
        }
    }
    return last;
}

// The last case-insensitive occurrence of phrase in s[0, n); SIZE_MAX when none.
static size_t last_ci(const char *s, size_t n, const char *phrase) {
    size_t k = strlen(phrase), at = (size_t)-1;
    for (size_t i = 0; k && i + k <= n; i++)
        if (!strncasecmp(s + i, phrase, k)) at = i;
    return at;
}

void score_extract(const Scorer *s, const char *text, size_t n, Buf *out) {
    buf_clear(out);
    size_t len = score_cut(s, text, n);
    if (s->o.kind == SCORE_REGEX) {
        // the last match in the completion: after a rationale, the final answer
        Buf z = {0};
        buf_put(&z, text, len); // regexec wants a C string
        const char *p = z.data ? z.data : "";
        regmatch_t m[2], best[2] = {{-1, -1}, {-1, -1}};
        size_t off = 0;
        // each search from the end of the last match, in the whole text (REG_STARTEND: offsets
        // into p, and what comes before the start seen, so that \b and ^ do not match there as at
        // a text's beginning: "\b([0-9]{1,2})" found "0" in "150" after "15")
        for (;;) {
            m[0].rm_so = (regoff_t)off, m[0].rm_eo = (regoff_t)z.len;
            if (off > z.len || regexec(&s->re, p, 2, m, REG_STARTEND)) break;
            memcpy(best, m, sizeof best);
            off = (size_t)m[0].rm_eo + (m[0].rm_eo == m[0].rm_so); // an empty match moves on
        }
        const regmatch_t *g = best[1].rm_so >= 0 ? &best[1] : &best[0];
        if (g->rm_so >= 0) put_trimmed(out, p, (size_t)g->rm_so, (size_t)g->rm_eo);
        buf_free(&z);
        return;
    }
    if (s->o.kind == SCORE_CONTAINS && !s->o.cot) { // the target anywhere in what it said
        put_trimmed(out, text, 0, len);
        return;
    }
    size_t at = last_ci(text, len, s->phrase);
    if (at != (size_t)-1) {
        final_answer(out, text, at + strlen(s->phrase), len);
        return;
    }
    at = last_ci(text, len, "####");
    if (at != (size_t)-1) {
        final_answer(out, text, at + 4, len);
        return;
    }
    if (s->o.cot) {
        // a rationale that never states its answer: where it ends up. For numbers its last
        // number; for contains all it said; for exact (and a rationale without a number) its last
        // sentence (its first is where the reasoning starts: "First, we find the total number of birds")
        size_t pos = 0, start = 0, a = 0, b = 0;
        double x;
        bool any = false;
        while (s->o.kind == SCORE_NUMBER && score_number_at(text, len, &pos, &x, &start)) a = start, b = pos, any = true;
        if (any) {
            put_trimmed(out, text, a, b);
            return;
        }
        if (s->o.kind == SCORE_CONTAINS) {
            put_trimmed(out, text, 0, len);
            return;
        }
        final_answer(out, text, last_sentence(text, len), len);
    } else {
        final_answer(out, text, 0, len); // the first sentence of the first line
    }
    if (!out->len) put_trimmed(out, text, 0, len); // a lone "." is still what it said
}

// ---- normalisation -----------------------------------------------------------------------

void score_normalize(const char *s, size_t n, Buf *out) {
    buf_clear(out);
    bool space = false;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += (size_t)utf8_decode(s + i, n - i, &cp);
        uint32_t d[18];
        int nd = uni_decompose(cp, d);
        for (int k = 0; k < nd; k++) {
            uint32_t lo[3];
            int nl = uni_tolower(d[k], lo);
            for (int j = 0; j < nl; j++) {
                uint32_t c = lo[j];
                unsigned p = uni_props(c);
                bool ascii_punct = c < 128 && ispunct((int)c);
                if (c == '\t' || c == '\n' || c == '\r' || c == ' ' || (p & UP_SPACE)) {
                    space = out->len > 0;
                    continue;
                }
                if (ascii_punct || (p & UP_PUNCT) || (c < 0x20) || c == 0x7f) continue;
                if (space) buf_putc(out, ' ');
                space = false;
                char u[4];
                buf_put(out, u, (size_t)utf8_encode(c, u));
            }
        }
    }
    if (!out->data) buf_puts(out, "");
}

// ---- numbers -------------------------------------------------------------------------------

// Whether the comma at s[j] separates thousands: three digits follow it, and no fourth.
static bool thousands_comma(const char *s, size_t n, size_t j) {
    if (s[j] != ',' || j + 3 >= n) return false;
    for (size_t k = 1; k <= 3; k++)
        if (!isdigit((unsigned char)s[j + k])) return false;
    return j + 4 >= n || !isdigit((unsigned char)s[j + 4]);
}

// A number starts at a digit, or at a point before one (".5"); a minus sign just before it
// (not after a letter or digit: "x-1" is no negative) makes it negative; a fraction of whole
// numbers ("3/4") is its quotient.
bool score_number_at(const char *s, size_t n, size_t *pos, double *v, size_t *start) {
    for (size_t i = *pos; i < n; i++) {
        bool point = s[i] == '.' && i + 1 < n && isdigit((unsigned char)s[i + 1]) &&
                     (i == 0 || !isdigit((unsigned char)s[i - 1]));
        if (!isdigit((unsigned char)s[i]) && !point) continue;
        bool neg = i > 0 && s[i - 1] == '-' && (i < 2 || !isalnum((unsigned char)s[i - 2]));
        Buf digits = {0};
        buf_putc(&digits, '0'); // "0" ahead of ".5"; harmless before a digit
        size_t j = i;
        while (j < n && (isdigit((unsigned char)s[j]) || thousands_comma(s, n, j))) {
            if (s[j] != ',') buf_putc(&digits, s[j]);
            j++;
        }
        bool whole = true;
        if (j + 1 < n && s[j] == '.' && isdigit((unsigned char)s[j + 1])) {
            whole = false;
            buf_putc(&digits, '.');
            j++;
            while (j < n && isdigit((unsigned char)s[j])) buf_putc(&digits, s[j++]);
        }
        double x = strtod(digits.data, NULL);
        buf_free(&digits);
        if (whole && j + 1 < n && s[j] == '/' && isdigit((unsigned char)s[j + 1])) {
            size_t k = j + 1;
            double d = 0;
            while (k < n && isdigit((unsigned char)s[k])) d = d * 10 + (s[k++] - '0');
            if (d > 0 && (k >= n || s[k] != '.')) x /= d, j = k; // "1/2"; not a date's "1/2.5"
        }
        *v = x * (neg ? -1 : 1);
        if (start) *start = neg ? i - 1 : i;
        *pos = j;
        return true;
    }
    return false;
}

bool score_last_number(const char *s, size_t n, double *v) {
    size_t pos = 0;
    double x;
    bool any = false;
    while (score_number_at(s, n, &pos, &x, NULL)) *v = x, any = true;
    return any;
}

// ---- matching ------------------------------------------------------------------------------

// needle occurs in hay as whole words (both normalised: words separated by single spaces).
static bool has_words(const char *hay, const char *needle) {
    size_t k = strlen(needle);
    if (!k) return false;
    for (const char *p = hay; (p = strstr(p, needle)); p++) {
        bool left = p == hay || p[-1] == ' ', right = p[k] == 0 || p[k] == ' ';
        if (left && right) return true;
    }
    return false;
}

bool score_match(const Scorer *s, const char *answer, const char *target) {
    if (s->o.kind == SCORE_NUMBER) {
        // the answer's last number: an echoed question ("9 + 8" for "9 + 8 - 8", target 9) is
        // not its first number's answer (lm-evaluation-harness's flexible extraction takes the last)
        double a, t;
        size_t pt = 0;
        if (!score_last_number(answer, strlen(answer), &a) || !score_number_at(target, strlen(target), &pt, &t, NULL))
            return false;
        return fabs(a - t) <= 1e-9 * fmax(1.0, fabs(t));
    }
    Buf na = {0}, nt = {0};
    score_normalize(answer, strlen(answer), &na);
    score_normalize(target, strlen(target), &nt);
    bool ok = s->o.kind == SCORE_CONTAINS ? has_words(na.data, nt.data) : nt.len > 0 && !strcmp(na.data, nt.data);
    buf_free(&na), buf_free(&nt);
    return ok;
}

int score_choice_best(const double *ll, const int *chars, int n, bool norm) {
    int best = 0;
    double bv = -INFINITY;
    for (int i = 0; i < n; i++) {
        double v = norm ? ll[i] / (chars[i] > 0 ? chars[i] : 1) : ll[i];
        if (v > bv) bv = v, best = i;
    }
    return best;
}

// The value an answer votes for: what score_match compares with the target, the answer's last
// number (*num) under SCORE_NUMBER, else its normalised text (into text). False when it has none:
// no number, or nothing left after normalisation.
static bool vote_value(const Scorer *s, const char *a, double *num, Buf *text) {
    if (s->o.kind == SCORE_NUMBER) return score_last_number(a, strlen(a), num);
    score_normalize(a, strlen(a), text);
    return text->len > 0;
}

int score_vote(const Scorer *s, const char *const *answers, int n, int *votes) {
    size_t m = (size_t)(n > 0 ? n : 1);
    double *num = xcalloc(m, sizeof *num);
    Buf *text = xcalloc(m, sizeof *text);
    int *group = xcalloc(m, sizeof *group), *size = xcalloc(m, sizeof *size);
    // each answer with a value joins the group of the first answer of the same value
    for (int i = 0; i < n; i++) {
        group[i] = vote_value(s, answers[i], &num[i], &text[i]) ? i : -1;
        for (int j = 0; group[i] == i && j < i; j++) {
            if (group[j] != j) continue; // no value, or not its group's first
            bool same = s->o.kind == SCORE_NUMBER ? fabs(num[i] - num[j]) <= 1e-9 * fmax(1.0, fabs(num[j]))
                                                  : !strcmp(text[i].data, text[j].data);
            if (same) group[i] = j;
        }
        if (group[i] >= 0) size[group[i]]++;
    }
    // the largest group wins, the earliest to begin among equals; its first answer is reported
    int best = -1;
    for (int j = 0; j < n; j++)
        if (size[j] > (best < 0 ? 0 : size[best])) best = j;
    if (votes) *votes = best < 0 ? 0 : size[best];
    if (best < 0) // nothing to vote for: the first answer that says something
        for (best = 0; best + 1 < n && !*answers[best]; best++) {}
    for (int i = 0; i < n; i++) buf_free(&text[i]);
    free(num), free(text), free(group), free(size);
    return best;
}
