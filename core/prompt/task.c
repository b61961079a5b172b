// task.c - reading task files (see task.h): qkv's JSON Lines layout, GSM8K-style and
// multiple-choice items, every line checked with a message naming the file and the line.
#include "prompt/task.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/sha256.h"
#include "prompt/score.h"

enum { TASK_MAX_BYTES = 256 << 20, TASK_MAX_CHOICES = 26 };

static void item_free(TaskItem *it) {
    free(it->input), free(it->target), free(it->rationale);
    for (int c = 0; c < it->n_choices; c++) free(it->choices[c]);
    free(it->choices);
}

void task_free(Task *t) {
    if (!t) return;
    for (int i = 0; i < t->n_items; i++) item_free(&t->items[i]);
    TaskDefaults *d = &t->dflt;
    free(d->input_prefix), free(d->delimiter), free(d->answer_prefix), free(d->separator);
    free(d->cot_trigger), free(d->answer_phrase), free(d->scorer), free(d->regex);
    free(t->items), free(t->test), free(t->pool);
    free(t->name), free(t->path), free(t->description);
    free(t);
}

// Where a message points: "task 'PATH' line N".
typedef struct Where {
    const char *path;
    int line;
    Err *e;
} Where;

static int bad(const Where *w, const char *msg) {
    return err_set(w->e, "task '%s' line %d: %s", w->path, w->line, msg);
}

// A string member (NULL when absent); -1 when present but not a string or holding a NUL.
static int get_str(const Json *o, const char *key, const Where *w, char **out) {
    *out = NULL;
    const Json *v = json_get(o, key);
    if (!v || v->type == JSON_NULL) return 0;
    char msg[160];
    if (v->type == JSON_NUM && v->num == (double)(long long)v->num) { // "target": 42 reads as "42"
        snprintf(msg, sizeof msg, "%lld", (long long)v->num);
        *out = xstrdup(msg);
        return 0;
    }
    if (v->type != JSON_STR) {
        snprintf(msg, sizeof msg, "\"%s\" must be a string", key);
        return bad(w, msg);
    }
    if (memchr(v->str, 0, v->len)) {
        snprintf(msg, sizeof msg, "\"%s\" holds a NUL character", key);
        return bad(w, msg);
    }
    *out = xstrndup(v->str, v->len);
    return 0;
}

static void trim(char *s) {
    size_t n = strlen(s), a = 0;
    while (a < n && isspace((unsigned char)s[a])) a++;
    while (n > a && isspace((unsigned char)s[n - 1])) n--;
    memmove(s, s + a, n - a);
    s[n - a] = 0;
}

// GSM8K's answer: "rationale lines <<calc=1>>...\n#### 42" -> rationale (annotations dropped,
// lines joined by spaces) and target ("42", thousands separators dropped).
static int gsm8k_answer(const char *ans, const Where *w, char **rationale, char **target) {
    const char *mark = strstr(ans, "####");
    if (!mark) return bad(w, "a GSM8K-style answer must end with \"#### ANSWER\"");
    const char *next;
    while ((next = strstr(mark + 4, "####"))) mark = next; // the last one
    Buf t = {0}, r = {0};
    for (const char *s = mark + 4; *s; s++)
        if (*s != ',') buf_putc(&t, *s);
    if (t.len) trim(t.data), t.len = strlen(t.data);
    bool space = false;
    for (const char *s = ans; s < mark; s++) {
        if (s[0] == '<' && s[1] == '<') { // a calculator annotation <<6*7=42>>
            const char *end = strstr(s + 2, ">>");
            if (end && end < mark) {
                s = end + 1;
                continue;
            }
        }
        if (isspace((unsigned char)*s)) {
            space = r.len > 0;
            continue;
        }
        if (space) buf_putc(&r, ' ');
        space = false;
        buf_putc(&r, *s);
    }
    if (!t.len) {
        buf_free(&t), buf_free(&r);
        return bad(w, "the GSM8K-style answer after \"####\" is empty");
    }
    *target = buf_take(&t);
    *rationale = r.len ? buf_take(&r) : NULL;
    buf_free(&r);
    return 0;
}

// The index named by an answer: a number, a letter A-Z, a label, or a choice's text.
static int choice_index(const Json *ans, char **choices, int n, char **labels, const Where *w, int *out) {
    char msg[200];
    if (ans->type == JSON_NUM) {
        long long v;
        if (!json_int_in(ans, 0, n - 1, &v)) {
            snprintf(msg, sizeof msg, "answer %g is not the index of one of the %d choices (0..%d)", ans->num, n, n - 1);
            return bad(w, msg);
        }
        *out = (int)v;
        return 0;
    }
    if (ans->type != JSON_STR) return bad(w, "answer must be an index, a letter or a choice");
    for (int i = 0; labels && i < n; i++)
        if (labels[i] && !strcmp(labels[i], ans->str)) return *out = i, 0;
    if (ans->len == 1 && isupper((unsigned char)ans->str[0]) && ans->str[0] - 'A' < n) return *out = ans->str[0] - 'A', 0;
    if (ans->len && strspn(ans->str, "0123456789") == ans->len) { // "2", as some files write indices
        long v = strtol(ans->str, NULL, 10);
        if (v >= 0 && v < n) return *out = (int)v, 0;
    }
    for (int i = 0; i < n; i++)
        if (!strcmp(choices[i], ans->str)) return *out = i, 0;
    snprintf(msg, sizeof msg, "answer \"%.40s\" is none of the %d choices (an index, a letter A-%c, or a choice's text)",
             ans->str, n, 'A' + n - 1);
    return bad(w, msg);
}

// The choices of an item: a list of strings, or {"text": [...], "label": [...]}.
static int read_choices(const Json *c, const Where *w, TaskItem *it, char ***labels) {
    *labels = NULL;
    const Json *text = c, *lab = NULL;
    if (c->type == JSON_OBJ) {
        text = json_get(c, "text");
        lab = json_get(c, "label");
        if (!text) return bad(w, "choices as an object need \"text\" (and \"label\")");
    }
    if (text->type != JSON_ARR) return bad(w, "choices must be a list of strings");
    if (text->len < 2 || text->len > TASK_MAX_CHOICES) return bad(w, "choices must number 2 to 26");
    if (lab && (lab->type != JSON_ARR || lab->len != text->len)) return bad(w, "choices' labels must match their texts");
    it->choices = xcalloc(text->len, sizeof *it->choices);
    it->n_choices = (int)text->len;
    if (lab) *labels = xcalloc(text->len, sizeof **labels);
    for (size_t i = 0; i < text->len; i++) {
        const Json *s = &text->items[i];
        if (s->type != JSON_STR || memchr(s->str, 0, s->len)) return bad(w, "every choice must be a string");
        it->choices[i] = xstrndup(s->str, s->len);
        if (lab && lab->items[i].type == JSON_STR) (*labels)[i] = xstrndup(lab->items[i].str, lab->items[i].len);
        size_t k = 0;
        while (k < s->len && isspace((unsigned char)s->str[k])) k++;
        if (k == s->len) { // scored on the space before it alone: near-certain, and per character undefined
            char msg[96];
            snprintf(msg, sizeof msg, "choice %zu is empty: there is no text to score", i);
            return bad(w, msg);
        }
    }
    return 0;
}

static void free_labels(char **labels, int n) {
    for (int i = 0; labels && i < n; i++) free(labels[i]);
    free(labels);
}

static const char *const header_keys[] = {"name", "description", "scorer", "regex", "max_tokens", "max_tokens_cot",
                                          "input_prefix", "delimiter", "answer_prefix", "separator", "cot_trigger",
                                          "answer_phrase", NULL};
static const char *const item_keys[] = {"input", "question", "target", "answer", "answerKey", "choices", "options",
                                        "split", "rationale", NULL};

// The edit distance of a and b (insertions, deletions, substitutions and swaps of neighbours),
// up to 3 (more counts as 3).
static int key_distance(const char *a, size_t na, const char *b) {
    size_t nb = strlen(b);
    if (na > 40 || nb > 40 || (na > nb ? na - nb : nb - na) > 2) return 3;
    int d[42][42];
    for (size_t i = 0; i <= na; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= nb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= na; i++)
        for (size_t j = 1; j <= nb; j++) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < c)
                c = d[i - 2][j - 2] + 1;
            d[i][j] = c;
        }
    return d[na][nb] < 3 ? d[na][nb] : 3;
}

// The keys of line o against the known ones: the header's are all qkv's, so any other is refused;
// an item's may carry a dataset's own ("id", "subject"), so only a near miss of a known key is
// refused ("spilt" turned an exemplar into a test item, "scorr" dropped the scorer, silently).
static int check_keys(const Json *o, const Where *w, bool header) {
    const char *const *known = header ? header_keys : item_keys;
    for (size_t k = 0; k < o->len; k++) {
        const char *key = o->keys[k];
        size_t n = o->klens[k];
        const char *near = NULL;
        bool ok = false;
        for (int i = 0; known[i] && !ok; i++) {
            ok = strlen(known[i]) == n && !memcmp(known[i], key, n);
            int dist = ok ? 0 : key_distance(key, n, known[i]);
            if (!ok && !near && (dist <= 1 || (dist == 2 && n >= 7))) near = known[i];
        }
        if (ok || (!header && !near)) continue;
        char msg[700];
        if (near) snprintf(msg, sizeof msg, "unknown key \"%.40s\": did you mean \"%s\"?", key, near);
        else {
            Buf list = {0};
            for (int i = 0; known[i]; i++) buf_printf(&list, "%s%s", i ? ", " : "", known[i]);
            snprintf(msg, sizeof msg, "unknown key \"%.40s\" in the header (a header holds %s)", key, list.data);
            buf_free(&list);
        }
        return bad(w, msg);
    }
    return 0;
}

// One item line into it; *layout gets its layout's name.
static int read_item(const Json *o, const Where *w, TaskItem *it, const char **layout) {
    memset(it, 0, sizeof *it);
    it->answer = -1;
    it->line = w->line;
    if (check_keys(o, w, false)) return -1;
    char *split = NULL;
    if (get_str(o, "split", w, &split)) return -1;
    if (split) {
        if (!strcmp(split, "pool") || !strcmp(split, "train")) it->pool = true;
        else if (strcmp(split, "test")) {
            free(split);
            return bad(w, "split must be \"pool\" (an exemplar) or \"test\"");
        }
        free(split);
    }
    const Json *question = json_get(o, "question"), *input = json_get(o, "input");
    const char *in_key = input ? "input" : "question";
    if (get_str(o, in_key, w, &it->input)) return -1;
    if (!it->input) return bad(w, "an item needs \"input\" (or \"question\"): the text the prompt asks about");
    if (get_str(o, "rationale", w, &it->rationale)) return -1;
    if (it->rationale && !it->rationale[strspn(it->rationale, " \t\r\n")]) // it counted as a worked solution
        return bad(w, "\"rationale\" is empty: a chain-of-thought exemplar would show no reasoning (leave the key "
                      "out for an exemplar without one)");
    const Json *choices = json_get(o, "choices");
    if (!choices) choices = json_get(o, "options");
    const Json *ans = json_get(o, "answer");
    if (!ans) ans = json_get(o, "answerKey");
    if (choices) {
        char **labels = NULL;
        int rc = read_choices(choices, w, it, &labels);
        if (!rc && ans) rc = choice_index(ans, it->choices, it->n_choices, labels, w, &it->answer);
        free_labels(labels, it->n_choices);
        if (rc) return -1;
        char *target = NULL;
        if (get_str(o, "target", w, &target)) return -1;
        if (target && it->answer < 0) {
            for (int i = 0; i < it->n_choices && it->answer < 0; i++)
                if (!strcmp(it->choices[i], target)) it->answer = i;
            if (it->answer < 0) {
                free(target);
                return bad(w, "the target is none of the choices");
            }
        }
        free(target);
        if (it->answer < 0) return bad(w, "a multiple-choice item needs \"answer\" (index, letter or text) or \"target\"");
        it->target = xstrdup(it->choices[it->answer]);
        *layout = input ? "qkv" : "choice";
        return 0;
    }
    if (get_str(o, "target", w, &it->target)) return -1;
    if (!it->target && question && ans && ans->type == JSON_STR && strstr(ans->str, "####")) {
        free(it->rationale);
        it->rationale = NULL;
        if (gsm8k_answer(ans->str, w, &it->rationale, &it->target)) return -1;
        *layout = "gsm8k";
        return 0;
    }
    if (!it->target && get_str(o, "answer", w, &it->target)) return -1;
    if (!it->target) return bad(w, "an item needs \"target\" (or a GSM8K-style \"answer\" ending in \"#### N\")");
    // the scorers compare normalised texts (score_normalize): a target with nothing left after it
    // ("", spaces, "!!!") matches no answer
    Buf nt = {0};
    score_normalize(it->target, strlen(it->target), &nt);
    bool empty = nt.len == 0;
    buf_free(&nt);
    if (empty)
        return bad(w, "the target is empty once normalised as the scorers compare it (case, accents, punctuation and "
                      "spaces dropped): no answer could be scored right against it");
    *layout = "qkv";
    return 0;
}

// The header's fields into t.
static int read_header(const Json *o, const Where *w, Task *t) {
    TaskDefaults *d = &t->dflt;
    if (check_keys(o, w, true)) return -1;
    char *name = NULL, *desc = NULL;
    if (get_str(o, "name", w, &name) || get_str(o, "description", w, &desc) ||
        get_str(o, "input_prefix", w, &d->input_prefix) || get_str(o, "delimiter", w, &d->delimiter) ||
        get_str(o, "answer_prefix", w, &d->answer_prefix) || get_str(o, "separator", w, &d->separator) ||
        get_str(o, "cot_trigger", w, &d->cot_trigger) || get_str(o, "answer_phrase", w, &d->answer_phrase) ||
        get_str(o, "scorer", w, &d->scorer) || get_str(o, "regex", w, &d->regex)) {
        free(name), free(desc);
        return -1;
    }
    if (name) free(t->name), t->name = name;
    if (desc) free(t->description), t->description = desc;
    if (d->scorer && score_kind_parse(d->scorer) < 0) // (it was listed as the task's scorer, refused only when run)
        return bad(w, "scorer must be exact, contains, number, regex or choice");
    static const char *const ints[] = {"max_tokens", "max_tokens_cot"};
    int *dst[] = {&d->max_tokens, &d->max_tokens_cot};
    for (int i = 0; i < 2; i++) {
        const Json *v = json_get(o, ints[i]);
        long long x;
        if (!v) continue;
        if (!json_int_in(v, 1, 1 << 16, &x)) {
            char msg[80];
            snprintf(msg, sizeof msg, "%s must be an integer from 1 to 65536", ints[i]);
            return bad(w, msg);
        }
        *dst[i] = (int)x;
    }
    return 0;
}

// Read the lines of path into t: items (as pool items when all_pool), and the header: read
// when header_ok, else (a pool file, which may be another task's file) allowed first and
// skipped. The file's bytes go into h.
static int read_lines(Task *t, const char *path, bool all_pool, bool header_ok, Sha256 *h, Err *e) {
    Buf b = {0};
    if (fs_read_file(path, TASK_MAX_BYTES, &b, e)) {
        buf_free(&b);
        return err_prefix(e, "cannot read task");
    }
    sha256_update(h, b.data ? b.data : "", b.len);
    Where w = {path, 0, e};
    int status = 0;
    bool seen_item = false;
    int header_line = 0;
    const char *p = b.data ? b.data : "", *end = p + b.len;
    while (p < end && !status) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        w.line++;
        const char *s = p, *line0 = p;
        p += n + (nl ? 1 : 0);
        while (n && isspace((unsigned char)*s)) s++, n--;
        if (!n || (n >= 2 && s[0] == '/' && s[1] == '/')) continue;
        Err je = {{0}};
        if (json_line_ready(line0, &s, &n, w.line, &je)) {
            status = bad(&w, je.msg);
            break;
        }
        Json *o = json_parse(s, n, &je);
        if (!o) {
            char msg[600];
            // the parser counts lines within this one: "line 1 column 12: ..." is "column 12: ..."
            const char *why = strncmp(je.msg, "line 1 column ", 14) ? je.msg : je.msg + 7;
            snprintf(msg, sizeof msg, "not JSON (%s)", why);
            status = bad(&w, msg);
            break;
        }
        if (o->type != JSON_OBJ) {
            status = bad(&w, "each line must be a JSON object");
        } else if (!json_get(o, "input") && !json_get(o, "question")) {
            if (!json_get(o, "description") && !json_get(o, "name"))
                status = bad(&w, "an item needs \"input\" (or \"question\"); a header needs \"description\" or \"name\"");
            else if (seen_item)
                status = bad(&w, "a header line must come first (before the items)");
            else if (header_line) { // the second would silently replace the first's name and scorer
                char msg[120];
                snprintf(msg, sizeof msg, "a second header line (the header is line %d): give one", header_line);
                status = bad(&w, msg);
            } else {
                header_line = w.line;
                if (header_ok) status = read_header(o, &w, t);
            }
        } else {
            seen_item = true;
            TaskItem it;
            const char *layout = "qkv";
            status = read_item(o, &w, &it, &layout);
            if (!status) {
                if (all_pool) it.pool = true;
                if (!t->layout) t->layout = layout;
                t->items = xrealloc(t->items, sizeof *t->items * (size_t)(t->n_items + 1));
                t->items[t->n_items++] = it;
            } else {
                item_free(&it);
            }
        }
        json_free(o);
    }
    buf_free(&b);
    return status;
}

// Index the test and pool items and what they hold.
static int index_items(Task *t, Err *e) {
    free(t->test), free(t->pool);
    t->test = xcalloc((size_t)t->n_items + 1, sizeof *t->test);
    t->pool = xcalloc((size_t)t->n_items + 1, sizeof *t->pool);
    t->n_test = t->n_pool = t->n_rationale = 0;
    for (int i = 0; i < t->n_items; i++) {
        if (t->items[i].pool) t->pool[t->n_pool++] = i;
        else t->test[t->n_test++] = i;
    }
    (void)e; // a file of exemplars alone is a training set (train); experiments need test items
    const int *from = t->n_pool ? t->pool : t->test;
    int n_from = t->n_pool ? t->n_pool : t->n_test;
    for (int i = 0; i < n_from; i++) t->n_rationale += t->items[from[i]].rationale != NULL;
    // multiple choice when the items scored have choices (the exemplars when there are only those)
    const int *scored = t->n_test ? t->test : t->pool;
    int n_scored = t->n_test ? t->n_test : t->n_pool;
    t->multiple_choice = n_scored > 0;
    for (int i = 0; i < n_scored; i++) t->multiple_choice &= t->items[scored[i]].n_choices > 0;
    return 0;
}

static void hash_done(Task *t, Sha256 *h) {
    unsigned char d[32];
    sha256_final(h, d);
    sha256_hex(d, t->sha256);
}

Task *task_load(const char *path, Err *e) {
    Task *t = xcalloc(1, sizeof *t);
    t->path = xstrdup(path);
    t->description = xstrdup("");
    t->dflt.max_tokens = t->dflt.max_tokens_cot = -1;
    const char *base = fs_basename(path);
    size_t n = strlen(base);
    if (n > 6 && !strcmp(base + n - 6, ".jsonl")) n -= 6;
    else if (n > 5 && !strcmp(base + n - 5, ".json")) n -= 5;
    t->name = xstrndup(base, n);
    Sha256 h;
    sha256_init(&h);
    if (read_lines(t, path, false, true, &h, e)) {
        task_free(t);
        return NULL;
    }
    hash_done(t, &h);
    if (!t->n_items) {
        err_set(e, "task '%s' holds no items (one JSON object a line: {\"input\": ..., \"target\": ...})", path);
        task_free(t);
        return NULL;
    }
    if (!t->layout) t->layout = "qkv";
    if (index_items(t, e)) {
        task_free(t);
        return NULL;
    }
    return t;
}

const char *task_scorer(const Task *t) {
    if (t->dflt.scorer) return t->dflt.scorer;
    if (t->multiple_choice) return "choice";
    return t->layout && !strcmp(t->layout, "gsm8k") ? "number" : "exact";
}

int task_add_pool(Task *t, const char *path, Err *e) {
    Sha256 h;
    sha256_init(&h);
    sha256_update(&h, t->sha256, 64); // the task file's hash, then the pool's bytes
    // the exemplars come from the file alone: the task's own pool items go
    int kept = 0;
    for (int i = 0; i < t->n_items; i++) {
        if (t->items[i].pool) {
            item_free(&t->items[i]);
            continue;
        }
        t->items[kept++] = t->items[i];
    }
    t->n_items = kept;
    if (read_lines(t, path, true, false, &h, e)) return -1;
    if (t->n_items == kept) return err_set(e, "pool '%s' holds no items", path);
    hash_done(t, &h);
    return index_items(t, e);
}
