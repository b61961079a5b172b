// template.c - rendering experiment prompts (see template.h) and choosing their exemplars.
#include "prompt/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "prompt/score.h"
#include "eval/sample.h"

static const char *or_default(const char *v, const char *d) { return v ? v : d; }

void prompt_style_default(PromptStyle *st, const Task *t) {
    const TaskDefaults *d = t ? &t->dflt : NULL;
    st->description = t ? t->description : "";
    st->input_prefix = or_default(d ? d->input_prefix : NULL, "");
    st->delimiter = or_default(d ? d->delimiter : NULL, " =>");
    st->answer_prefix = or_default(d ? d->answer_prefix : NULL, "");
    st->separator = or_default(d ? d->separator : NULL, "\n");
    st->cot_trigger = or_default(d ? d->cot_trigger : NULL, "Let's think step by step.");
    st->answer_phrase = or_default(d ? d->answer_phrase : NULL, "The answer is");
}

void rendered_free(Rendered *r) {
    buf_free(&r->text);
    memset(r, 0, sizeof *r);
}

void prompt_mode_name(int shots, bool cot, int samples, char *out, size_t cap) {
    int n = snprintf(out, cap, "%s%s", shots == 0 ? "zero-shot" : shots == 1 ? "one-shot" : "few-shot", cot ? "-cot" : "");
    if (samples > 1 && n > 0 && (size_t)n < cap) snprintf(out + n, cap - (size_t)n, "-sc%d", samples);
}

// Whether s ends with a character that closes a sentence.
static bool ends_sentence(const char *s) {
    size_t n = strlen(s);
    return n && strchr(".!?", s[n - 1]);
}

void prompt_answer_text(const PromptStyle *st, const TaskItem *it, bool cot, Buf *out) {
    if (!cot) {
        buf_puts(out, it->target);
        return;
    }
    if (it->rationale && *it->rationale) {
        buf_puts(out, it->rationale);
        buf_putc(out, ' ');
    }
    buf_printf(out, "%s %s", st->answer_phrase, it->target);
    if (!ends_sentence(it->target)) buf_putc(out, '.');
}

// The head of a block: PREFIX input DELIM ANSPREFIX with trailing spaces and tabs removed.
static void head(const PromptStyle *st, const TaskItem *it, Buf *out) {
    buf_printf(out, "%s%s%s%s", st->input_prefix, it->input, st->delimiter, st->answer_prefix);
    while (out->len && (out->data[out->len - 1] == ' ' || out->data[out->len - 1] == '\t')) out->data[--out->len] = 0;
}

// What joins a head and the answer after it: one space, or nothing after a new line.
static const char *join_after(const Buf *b) {
    return b->len == 0 || b->data[b->len - 1] == '\n' ? "" : " ";
}

static int render_plain(const Task *t, const PromptStyle *st, bool cot, const int *ex, int n_ex, int item,
                        Rendered *out) {
    Buf *b = &out->text;
    // what the completion is cut at (score_cut) is what ends each exemplar
    const char *sep = prompt_separator(st->separator, cot);
    if (st->description && *st->description) buf_printf(b, "%s%s", st->description, sep);
    for (int i = 0; i < n_ex; i++) {
        const TaskItem *e = &t->items[ex[i]];
        head(st, e, b);
        buf_puts(b, join_after(b));
        prompt_answer_text(st, e, cot, b);
        buf_puts(b, sep);
    }
    out->shared = b->len;
    head(st, &t->items[item], b);
    out->choice_sep = join_after(b);
    if (cot && n_ex == 0) buf_printf(b, "%s%s", join_after(b), st->cot_trigger);
    return 0;
}

// The conversation of a prompt: n_msgs messages into m (room for 2 * n_ex + 2), texts in bufs;
// query, when not NULL, stands for the test item's input.
static int chat_messages(const Task *t, const PromptStyle *st, bool cot, const int *ex, int n_ex, int item,
                         bool system, PromptMsg *m, Buf *bufs, const char *query) {
    int n = 0;
    const char *desc = st->description ? st->description : "";
    bool merge = *desc && !system; // the description opens the first user message instead
    if (*desc && system) m[n++] = (PromptMsg){"system", desc, strlen(desc)};
    for (int i = 0; i <= n_ex; i++) {
        const TaskItem *it = &t->items[i < n_ex ? ex[i] : item];
        Buf *u = &bufs[2 * i], *a = &bufs[2 * i + 1];
        buf_clear(u), buf_clear(a);
        if (merge && i == 0) buf_printf(u, "%s\n\n", desc);
        buf_printf(u, "%s%s", st->input_prefix, i == n_ex && query ? query : it->input);
        m[n++] = (PromptMsg){"user", u->data, u->len};
        if (i == n_ex) break;
        prompt_answer_text(st, it, cot, a);
        m[n++] = (PromptMsg){"assistant", a->data, a->len};
    }
    return n;
}

static int render_chat(const Task *t, const PromptStyle *st, const PromptChat *chat, bool cot, const int *ex, int n_ex,
                       int item, Rendered *out, Err *e) {
    PromptMsg *m = xcalloc((size_t)(2 * n_ex + 3), sizeof *m);
    Buf *bufs = xcalloc((size_t)(2 * n_ex + 2), sizeof *bufs);
    Buf shared = {0};
    int rc = -1;
    bool system = st->description && *st->description;
    for (int attempt = 0; attempt < 2 && rc; attempt++) {
        if (attempt == 1 && !system) break;
        if (attempt == 1) system = false; // a template without a system role: merge the description
        buf_clear(&out->text);
        int n = chat_messages(t, st, cot, ex, n_ex, item, system, m, bufs, NULL);
        rc = chat->render(chat->user, m, n, &out->text, e);
    }
    if (!rc) {
        // the shared part: what this conversation has in common with the same one about another
        // input, up to where the item's input begins (the exemplars' conversation alone, rendered
        // for it, ended with the template's start of a reply: and for zero-shot, a system message
        // alone, no conversation to render, so "0 shared" of what every item shares)
        int n = chat_messages(t, st, cot, ex, n_ex, item, system, m, bufs, "\x01");
        Err ignored = {{0}};
        size_t k = 0;
        if (chat->render(chat->user, m, n, &shared, &ignored) == 0)
            while (k < shared.len && k < out->text.len && shared.data[k] == out->text.data[k]) k++;
        out->shared = k;
        out->special = true;
        out->choice_sep = "";
        if (cot && n_ex == 0) buf_puts(&out->text, st->cot_trigger);
    }
    for (int i = 0; i < 2 * n_ex + 2; i++) buf_free(&bufs[i]);
    free(bufs), free(m), buf_free(&shared);
    return rc;
}

int prompt_render(const Task *t, const PromptStyle *st, const PromptChat *chat, bool cot, const int *ex, int n_ex,
                  int item, Rendered *out, Err *e) {
    memset(out, 0, sizeof *out);
    out->choice_sep = " ";
    for (int i = 0; cot && i < n_ex; i++)
        if (!t->items[ex[i]].rationale)
            return err_set(e, "few-shot chain of thought needs exemplars with a rationale: line %d of '%s' has none",
                           t->items[ex[i]].line, t->path);
    int rc = chat ? render_chat(t, st, chat, cot, ex, n_ex, item, out, e) : render_plain(t, st, cot, ex, n_ex, item, out);
    if (rc) rendered_free(out);
    else if (!out->text.data) buf_puts(&out->text, ""); // never NULL
    return rc;
}

int prompt_pick_exemplars(const Task *t, uint64_t seed, int k, int item, bool need_rationale, int *out, Err *e) {
    const int *from = t->n_pool ? t->pool : t->test;
    int n = t->n_pool ? t->n_pool : t->n_test;
    if (k <= 0) return 0;
    int *perm = xmalloc(sizeof *perm * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) perm[i] = from[i];
    Rng r;
    rng_seed(&r, seed);
    for (int i = n - 1; i > 0; i--) { // Fisher-Yates, the same for every item
        int j = (int)(rng_next(&r) % (uint64_t)(i + 1));
        int x = perm[i];
        perm[i] = perm[j], perm[j] = x;
    }
    const char *in = t->items[item].input;
    int got = 0, usable = 0, same_input = 0, no_rationale = 0;
    for (int i = 0; i < n; i++) {
        const TaskItem *c = &t->items[perm[i]];
        if (perm[i] == item) continue;
        if (!strcmp(c->input, in)) {
            same_input++;
            continue;
        }
        if (need_rationale && !c->rationale) {
            no_rationale++;
            continue;
        }
        usable++;
        if (got < k) out[got++] = perm[i];
    }
    free(perm);
    if (got == k) return 0;
    // what the pool holds, then why fewer serve this item: every item must get its k shots
    const char *what = t->n_pool ? "exemplars in its pool" : "other test items to draw exemplars from";
    int have = t->n_pool ? n : n - 1;
    char why[300] = "";
    if (usable < have) {
        int m = usable ? snprintf(why, sizeof why, " and only %d %s usable for this item:", usable, usable == 1 ? "is" : "are")
                       : snprintf(why, sizeof why, " and none is usable for this item:");
        if (no_rationale && m > 0 && (size_t)m < sizeof why)
            m += snprintf(why + m, sizeof why - (size_t)m, " %d %s no rationale%s", no_rationale,
                          no_rationale == 1 ? "has" : "have", same_input ? "," : "");
        if (same_input && m > 0 && (size_t)m < sizeof why)
            snprintf(why + m, sizeof why - (size_t)m, " %d %s the item's own input \"%.60s\"", same_input,
                     same_input == 1 ? "has" : "have", in);
    }
    if (need_rationale)
        return err_set(e, "%d-shot chain of thought needs %d exemplar%s with a rationale, but task '%s' has %d %s%s", k,
                       k, k == 1 ? "" : "s", t->name, have, what, why);
    return err_set(e, "%d-shot prompts need %d exemplar%s, but task '%s' has %d %s%s", k, k, k == 1 ? "" : "s", t->name,
                   have, what, why);
}
