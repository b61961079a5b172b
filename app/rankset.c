// rankset.c - stored rankings read whole with their completions (see rankset.h).
#include "rankset.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "cmdutil.h"

typedef struct {
    Db *db;
    RankSet *s;
    Err *e;
} Load;

static int load_one(void *user, const DbRanking *g) {
    Load *L = user;
    RankSet *s = L->s;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->r = xrealloc(s->r, sizeof *s->r * (size_t)s->cap);
    }
    RankRow *r = &s->r[s->n];
    memset(r, 0, sizeof *r);
    r->id = g->id;
    r->prompt = xmemdup0(g->prompt, g->prompt_len);
    r->prompt_len = g->prompt_len;
    r->annotator = xstrdup(g->annotator ? g->annotator : "");
    s->n++;
    for (int i = 0; i < g->k; i++) {
        DbRun run;
        int got = db_run_get(L->db, g->items[i].run_id, &run, L->e);
        if (got <= 0) {
            if (!got)
                err_set(L->e, "ranking %lld: run %lld is missing", (long long)g->id, (long long)g->items[i].run_id);
            return -1;
        }
        RankCand *c = &r->c[r->k++];
        c->text = xmemdup0(run.output ? run.output : "", run.output ? run.output_len : 0);
        c->len = run.output ? run.output_len : 0;
        c->ids = run.ids ? xstrdup(run.ids) : NULL;
        c->rank = g->items[i].rank;
        db_run_done(&run);
    }
    return 0;
}

int rankset_load(Db *db, const DbFilter *f, RankSet *s, Err *e) {
    Load L = {db, s, e};
    int rc = db_rankings_each(db, f, 0, false, load_one, &L, e);
    return rc ? -1 : 0;
}

void rankset_row_free(RankRow *r) {
    free(r->prompt);
    free(r->annotator);
    for (int j = 0; j < r->k; j++) free(r->c[j].text), free(r->c[j].ids);
}

void rankset_free(RankSet *s) {
    for (int i = 0; i < s->n; i++) rankset_row_free(&s->r[i]);
    free(s->r);
    memset(s, 0, sizeof *s);
}

static int bytes_cmp(const char *a, size_t na, const char *b, size_t nb) {
    int c = memcmp(a, b, na < nb ? na : nb);
    return c ? c : (na > nb) - (na < nb);
}

static int by_prompt(const void *pa, const void *pb) {
    const RankRow *a = pa, *b = pb;
    int c = bytes_cmp(a->prompt, a->prompt_len, b->prompt, b->prompt_len);
    return c ? c : (a->id > b->id) - (a->id < b->id);
}

void rankset_sort_by_prompt(RankSet *s) {
    if (s->n > 1) qsort(s->r, (size_t)s->n, sizeof *s->r, by_prompt);
}

int rankset_same_prompt(const RankRow *a, const RankRow *b) {
    return !bytes_cmp(a->prompt, a->prompt_len, b->prompt, b->prompt_len);
}

int rankset_command(App *app, const Args *a, const char *cmd, bool by_annotator, RankSet *s, Out *out) {
    Db *db = need_db_read(app, out);
    if (!db) return -1;
    DbFilter f = {0};
    if (filter_opts(a, &f, out)) return -1;
    if (!by_annotator) f.annotator = NULL;
    Err e = {{0}};
    if (rankset_load(db, &f, s, &e)) {
        rankset_free(s);
        return out_error(out, "%s: %s", cmd, e.msg);
    }
    if (!s->n) {
        rankset_free(s);
        return out_error(out, "%s: no rankings match (rank some first, or widen the filters)", cmd);
    }
    return 0;
}
