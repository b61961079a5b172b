// cmd_agree.c - agreement between annotators: for every prompt ranked by more than one
// annotator, each two rankings by different annotators compared on the completions both
// ranked (matched by their text), pooled per annotator pair and per annotator. annotator=NAME
// is whose agreement: NAME's rankings against everyone else's on the prompts NAME ranked.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/agree.h"
#include "base/mem.h"
#include "base/utf8.h"
#include "cmdutil.h"
#include "commands.h"
#include "rankset.h"

// The first candidate of row r with text t when every candidate with that text has the same
// rank (repeats of one completion, common at low temperature, ranked together: one item),
// else -1 (absent, or repeats ranked apart: the annotator's rank for the text is not one).
static int unique_cand(const RankRow *r, const char *t, size_t n) {
    int at = -1;
    for (int i = 0; i < r->k; i++)
        if (utf8_same_text(r->c[i].text, r->c[i].len, t, n)) {
            if (at >= 0 && r->c[i].rank != r->c[at].rank) return -1;
            if (at < 0) at = i;
        }
    return at;
}

// Compare rows a and b on their shared completions into c; returns the items shared.
static int compare_rows(const RankRow *a, const RankRow *b, AgreeCounts *c) {
    int ra[DB_RANK_MAX], rb[DB_RANK_MAX], n = 0;
    for (int i = 0; i < a->k; i++) {
        if (unique_cand(a, a->c[i].text, a->c[i].len) != i) continue;
        int j = unique_cand(b, a->c[i].text, a->c[i].len);
        if (j < 0) continue;
        ra[n] = a->c[i].rank;
        rb[n] = b->c[j].rank;
        n++;
    }
    if (n >= 2) agree_add(c, ra, rb, n);
    return n;
}

typedef struct {
    AgreeCounts c;
    int comparisons; // pairs of rankings compared
    int prompts;     // distinct prompts they came from
    int last_group;  // the group that last counted a prompt
} Tally;

static int name_index(char ***names, int *n, const char *s) {
    for (int i = 0; i < *n; i++)
        if (!strcmp((*names)[i], s)) return i;
    *names = xrealloc(*names, sizeof **names * (size_t)(*n + 1));
    (*names)[*n] = (char *)s;
    return (*n)++;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void counts_json(JsonW *w, const Tally *t) {
    jw_kint(w, "comparisons", t->comparisons);
    jw_kint(w, "prompts", t->prompts);
    jw_kint(w, "item_pairs", t->c.pairs);
    jw_kint(w, "concordant", t->c.concordant);
    jw_kint(w, "discordant", t->c.discordant);
    jw_kint(w, "tied_a", t->c.tied_a);
    jw_kint(w, "tied_b", t->c.tied_b);
    jw_kint(w, "tied_both", t->c.tied_both);
    jw_knum(w, "agreement", agree_rate(&t->c));
    jw_knum(w, "tau_b", agree_tau_b(&t->c));
}

static void tally_add(Tally *t, const AgreeCounts *c, int group) {
    agree_merge(&t->c, c);
    t->comparisons++;
    if (t->last_group != group) t->prompts++;
    t->last_group = group;
}

static void fmt_num(Buf *b, const char *fmt, double v) {
    if (isnan(v)) buf_puts(b, "     -");
    else buf_printf(b, fmt, v);
}

// Keep the rankings of the prompts `who` ranked (s sorted by prompt); false when none is left.
static bool keep_prompts_of(RankSet *s, const char *who) {
    int kept = 0;
    for (int g0 = 0, g1; g0 < s->n; g0 = g1) {
        bool theirs = false;
        for (g1 = g0; g1 < s->n && rankset_same_prompt(&s->r[g0], &s->r[g1]); g1++)
            theirs |= !strcmp(s->r[g1].annotator, who);
        for (int i = g0; i < g1; i++) {
            if (theirs) s->r[kept++] = s->r[i];
            else rankset_row_free(&s->r[i]);
        }
    }
    s->n = kept;
    return kept > 0;
}

static int cmd_agreement(App *app, const Args *a, Out *out) {
    RankSet s = {0};
    // annotator= is whose agreement, not which rankings: the others' are what NAME is compared with
    const char *who = args_opt(a, "annotator");
    if (rankset_command(app, a, "agreement", !who, &s, out)) return -1;
    rankset_sort_by_prompt(&s);
    if (who && !keep_prompts_of(&s, who)) {
        rankset_free(&s);
        return out_error(out, "agreement: no rankings by %s match (rank some first, or widen the filters)", who);
    }
    // the annotators, sorted: pair (i, j) with i < j is stored at i * na + j
    char **names = NULL;
    int na = 0;
    for (int i = 0; i < s.n; i++) name_index(&names, &na, s.r[i].annotator);
    if (na > 1) qsort(names, (size_t)na, sizeof *names, name_cmp);
    Tally *pair = xcalloc((size_t)na * (size_t)na, sizeof *pair), *one = xcalloc((size_t)na, sizeof *one);
    int *nrank = xcalloc((size_t)na, sizeof *nrank);
    for (int i = 0; i < na * na; i++) pair[i].last_group = -1;
    for (int i = 0; i < na; i++) one[i].last_group = -1;
    // shared: prompts ranked by more than one annotator (with annotator=: by NAME and another);
    // compared: those of them where two such rankings have two or more completions in common
    int prompts = 0, shared = 0, compared = 0;
    for (int g0 = 0, g1; g0 < s.n; g0 = g1) {
        for (g1 = g0 + 1; g1 < s.n && rankset_same_prompt(&s.r[g0], &s.r[g1]); g1++) {}
        prompts++;
        bool any = false, two = false;
        for (int i = g0; i < g1; i++) {
            int ai = name_index(&names, &na, s.r[i].annotator);
            nrank[ai]++;
            for (int j = i + 1; j < g1; j++) {
                int aj = name_index(&names, &na, s.r[j].annotator);
                if (ai == aj) continue; // one annotator twice: not agreement between people
                if (who && strcmp(s.r[i].annotator, who) && strcmp(s.r[j].annotator, who)) continue;
                two = true;
                const RankRow *x = ai < aj ? &s.r[i] : &s.r[j], *y = ai < aj ? &s.r[j] : &s.r[i];
                AgreeCounts c = {0};
                if (compare_rows(x, y, &c) < 2) continue;
                any = true;
                int lo = ai < aj ? ai : aj, hi = ai < aj ? aj : ai;
                tally_add(&pair[lo * na + hi], &c, g0);
                // each annotator's summary sees the counts from its side (a = itself)
                AgreeCounts cx = c, cy = c;
                cy.tied_a = c.tied_b, cy.tied_b = c.tied_a;
                tally_add(&one[x == &s.r[i] ? ai : aj], &cx, g0);
                tally_add(&one[x == &s.r[i] ? aj : ai], &cy, g0);
            }
        }
        shared += two, compared += any;
    }
    JsonW *w = &out->w;
    jw_kint(w, "rankings", s.n);
    jw_kint(w, "prompts", prompts);
    jw_kint(w, "shared_prompts", shared);
    jw_kint(w, "compared_prompts", compared);
    jw_key(w, "pairs");
    jw_arr(w);
    buf_printf(&out->text, "%d ranking%s of %d prompt%s, %d ranked by more than one annotator", s.n, s.n == 1 ? "" : "s",
               prompts, prompts == 1 ? "" : "s", shared);
    if (compared < shared) // their rankings share fewer than two completions: no pair to compare
        buf_printf(&out->text, " (%d of them with two or more completions in common, which agreement compares)",
                   compared);
    buf_putc(&out->text, '\n');
    bool any_pairs = compared > 0;
    if (any_pairs) buf_puts(&out->text, "annotators                 prompts  pairs  agreement  tau-b\n");
    for (int i = 0; i < na; i++)
        for (int j = i + 1; j < na; j++) {
            const Tally *t = &pair[i * na + j];
            if (!t->comparisons) continue;
            jw_obj(w);
            jw_kstr(w, "a", *names[i] ? names[i] : NULL); // no annotator: null, as rankings gives it
            jw_kstr(w, "b", *names[j] ? names[j] : NULL);
            counts_json(w, t);
            jw_obj_end(w);
            const char *ni = *names[i] ? names[i] : "(none)", *nj = *names[j] ? names[j] : "(none)";
            put_cell(&out->text, ni, strlen(ni), 12, false);
            buf_putc(&out->text, ' ');
            put_cell(&out->text, nj, strlen(nj), 12, false);
            buf_printf(&out->text, " %8d %6ld  ", t->prompts, t->c.pairs);
            fmt_num(&out->text, "%6.3f", agree_rate(&t->c));
            buf_puts(&out->text, "     ");
            fmt_num(&out->text, "%+.3f", agree_tau_b(&t->c));
            buf_putc(&out->text, '\n');
        }
    jw_arr_end(w);
    jw_key(w, "annotators");
    jw_arr(w);
    if (any_pairs) buf_puts(&out->text, "annotator    rankings  prompts  pairs  agreement  tau-b\n");
    for (int i = 0; i < na; i++) {
        jw_obj(w);
        jw_kstr(w, "annotator", *names[i] ? names[i] : NULL);
        jw_kint(w, "rankings", nrank[i]);
        counts_json(w, &one[i]);
        jw_obj_end(w);
        if (!any_pairs) continue;
        const char *nm = *names[i] ? names[i] : "(none)";
        put_cell(&out->text, nm, strlen(nm), 12, false);
        buf_printf(&out->text, " %8d %8d %6ld  ", nrank[i], one[i].prompts, one[i].c.pairs);
        fmt_num(&out->text, "%6.3f", agree_rate(&one[i].c));
        buf_puts(&out->text, "     ");
        fmt_num(&out->text, "%+.3f", agree_tau_b(&one[i].c));
        buf_putc(&out->text, '\n');
    }
    jw_arr_end(w);
    free(pair);
    free(one);
    free(nrank);
    free(names);
    rankset_free(&s);
    return 0;
}

static const char *const k_agree[] = {"since", "until", "annotator", "model", "text", NULL};

const Command agree_commands[] = {
    {"agreement", cmd_agreement, 0, 0, k_agree, "agreement [since= until= annotator= model= text=]",
     "Agreement between annotators on the stored rankings matching the filters: for every prompt ranked by more "
     "than one annotator, each two rankings by different annotators are compared on the completions both ranked "
     "(the same text), pair by pair of completions: concordant, discordant, tied by one or by both. Per annotator "
     "pair and per annotator, pooled over prompts: agreement (the share of pairs given the same relation, a tie "
     "counting as a relation) and Kendall's tau-b ((C - D) / sqrt((n0 - n1)(n0 - n2)), null when one side ties "
     "every pair). annotator=NAME is whose agreement: NAME's rankings against everyone else's, on the prompts NAME "
     "ranked (the other filters choose the rankings). JSON: rankings, prompts, shared_prompts (ranked by more than "
     "one annotator), compared_prompts (of those, with two or more completions in common), pairs: [{a, b, "
     "comparisons, prompts, item_pairs, "
     "concordant, discordant, tied_a, tied_b, tied_both, agreement, tau_b}], annotators: [{annotator, rankings, "
     "comparisons, prompts, item_pairs, ..., agreement, tau_b}].",
     false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
