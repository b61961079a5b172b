// history.c - the history view: two lists, switched with t. The logged runs (`history 200
// ["FILTER"]`, newest first), including rank candidates and replays: Enter opens one (`show ID`),
// r replays it (`replay ID`). The stored rankings (`rankings 200 ["FILTER"]`, newest first): Enter
// opens one (`show ranking=ID`: its candidates best first, ties marked). / filters either list.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "view.h"

#define HISTORY_N 200

typedef struct Run {
    long long id;
    char created[24], kind[16], model[64];
    char *prompt, *text; // prompt: a chat prompt's last user message (chat)
    size_t prompt_len, text_len;
    bool chat;
    int n_tokens;
} Run;

typedef struct Ranking {
    long long id;
    char created[24], annotator[32];
    char order[40]; // "3 1 2=4"
    char *prompt, *note; // prompt: as a run's
    size_t prompt_len, note_len;
    bool chat;
    int k;
} Ranking;

enum { L_RUNS, L_RANKINGS };

// What both lists keep: the selection and the command that filled them.
typedef struct List {
    int n;
    int sel, top;
    char query[160]; // the command that filled the list
    bool have, stale, pending;
} List;

typedef struct History {
    int cur; // L_RUNS or L_RANKINGS
    List list[2];
    Run *runs;
    Ranking *rankings;
    char *detail;   // the human form of the last `show`
    char title[48]; // " run 12 " or " ranking 3 "
    int detail_top;
} History;

static const char *const list_cmd[2] = {"history", "rankings"};

static int hist_open(View *v) {
    History *H = xcalloc(1, sizeof *H);
    v->state = H;
    return 0;
}

static void runs_free(History *H) {
    for (int i = 0; i < H->list[L_RUNS].n; i++) free(H->runs[i].prompt), free(H->runs[i].text);
    free(H->runs);
    H->runs = NULL;
    H->list[L_RUNS].n = 0;
}

static void rankings_free(History *H) {
    for (int i = 0; i < H->list[L_RANKINGS].n; i++) free(H->rankings[i].prompt), free(H->rankings[i].note);
    free(H->rankings);
    H->rankings = NULL;
    H->list[L_RANKINGS].n = 0;
}

static void hist_close(View *v) {
    History *H = v->state;
    runs_free(H);
    rankings_free(H);
    free(H->detail);
    free(H);
}

// Ask for list l again (unfiltered).
static void reload(View *v, int l) {
    History *H = v->state;
    char line[64];
    snprintf(line, sizeof line, "%s %d", list_cmd[l], HISTORY_N);
    H->list[l].pending = true;
    v->host->run(v->host, line, VR_QUIET);
}

static char *dupj(const Json *j, size_t *len) {
    size_t n = j && j->type == JSON_STR ? j->len : 0;
    char *s = xmalloc(n + 1);
    memcpy(s, n ? j->str : "", n), s[n] = 0;
    *len = n;
    return s;
}

static void take_runs(History *H, const Json *runs) {
    runs_free(H);
    H->runs = xcalloc(runs && runs->len ? runs->len : 1, sizeof *H->runs);
    for (size_t i = 0; runs && i < runs->len; i++) {
        const Json *x = &runs->items[i];
        Run *d = &H->runs[H->list[L_RUNS].n++];
        d->id = (long long)json_num_or(x, "run_id", 0);
        snprintf(d->created, sizeof d->created, "%s", json_str_or(x, "created", ""));
        snprintf(d->kind, sizeof d->kind, "%s", json_str_or(x, "kind", ""));
        const char *m = json_str_or(x, "model_path", ""), *slash = strrchr(m, '/');
        snprintf(d->model, sizeof d->model, "%s", slash && slash[1] ? slash + 1 : m);
        d->chat = json_str_or(x, "chat_user", NULL) != NULL; // (the listing's JSON)
        d->prompt = dupj(json_get(x, d->chat ? "chat_user" : "prompt"), &d->prompt_len);
        d->text = dupj(json_get(x, "text"), &d->text_len);
        d->n_tokens = (int)json_num_or(x, "n_tokens", 0);
    }
}

static void take_rankings(History *H, const Json *rankings) {
    rankings_free(H);
    H->rankings = xcalloc(rankings && rankings->len ? rankings->len : 1, sizeof *H->rankings);
    for (size_t i = 0; rankings && i < rankings->len; i++) {
        const Json *x = &rankings->items[i];
        Ranking *d = &H->rankings[H->list[L_RANKINGS].n++];
        d->id = (long long)json_num_or(x, "ranking_id", 0);
        d->k = (int)json_num_or(x, "k", 0);
        snprintf(d->created, sizeof d->created, "%s", json_str_or(x, "created", ""));
        snprintf(d->annotator, sizeof d->annotator, "%s", json_str_or(x, "annotator", "-"));
        d->chat = json_str_or(x, "chat_user", NULL) != NULL;
        d->prompt = dupj(json_get(x, d->chat ? "chat_user" : "prompt"), &d->prompt_len);
        d->note = json_str_or(x, "note", NULL) ? dupj(json_get(x, "note"), &d->note_len) : NULL;
        // the groups best first: "3 1 2=4"
        const Json *order = json_get(x, "order");
        size_t o = 0;
        for (size_t g = 0; order && order->type == JSON_ARR && g < order->len; g++) {
            const Json *grp = &order->items[g];
            for (size_t m = 0; grp->type == JSON_ARR && m < grp->len && o + 4 < sizeof d->order; m++)
                o += (size_t)snprintf(d->order + o, sizeof d->order - o, "%s%d", m ? "=" : g ? " " : "",
                                      (int)grp->items[m].num);
        }
    }
}

static void hist_result(View *v, const ViewResult *r) {
    History *H = v->state;
    const char *c = r->cmd;
    if (!strcmp(c, "generate") || !strcmp(c, "rank") || !strcmp(c, "replay")) {
        H->list[L_RUNS].stale = true;
        return;
    }
    if (!strcmp(c, "order") || !strcmp(c, "note")) {
        H->list[L_RANKINGS].stale = true;
        return;
    }
    if (!strcmp(c, "show") && r->json && !r->quiet) {
        free(H->detail);
        H->detail = xstrdup(r->text ? r->text : "");
        const Json *rk = json_get(r->json, "ranking_id");
        if (rk) snprintf(H->title, sizeof H->title, " ranking %lld ", (long long)rk->num);
        else snprintf(H->title, sizeof H->title, " run %lld ", (long long)json_num_or(r->json, "run_id", 0));
        H->detail_top = 0;
        return;
    }
    int l = !strcmp(c, "history") ? L_RUNS : !strcmp(c, "rankings") ? L_RANKINGS : -1;
    if (l < 0) return;
    List *L = &H->list[l];
    L->pending = false;
    if (!r->json) return;
    if (l == L_RUNS) take_runs(H, json_get(r->json, "runs"));
    else take_rankings(H, json_get(r->json, "rankings"));
    snprintf(L->query, sizeof L->query, "%s", r->line ? r->line : list_cmd[l]);
    L->have = true, L->stale = false;
    if (L->sel >= L->n) L->sel = L->n ? L->n - 1 : 0;
    if (!r->quiet) H->cur = l; // a list asked for on the command line is the one to show
}

static void hist_show(View *v) {
    History *H = v->state;
    List *L = &H->list[H->cur];
    if ((!L->have || L->stale) && !L->pending) reload(v, H->cur);
}

static int hist_key(View *v, int key) {
    History *H = v->state;
    List *L = &H->list[H->cur];
    char line[64];
    switch (key) {
    case VK_UP: case 'k': if (L->sel > 0) L->sel--; return 1;
    case VK_DOWN: case 'j': if (L->sel + 1 < L->n) L->sel++; return 1;
    case VK_PGUP: L->sel = L->sel > 10 ? L->sel - 10 : 0; return 1;
    case VK_PGDN: L->sel = L->sel + 10 < L->n ? L->sel + 10 : (L->n ? L->n - 1 : 0); return 1;
    case VK_HOME: case 'g': L->sel = 0; return 1;
    case VK_END: case 'G': L->sel = L->n ? L->n - 1 : 0; return 1;
    case 't': // the other list; a run's detail does not stay under the rankings (nor the reverse)
        H->cur = H->cur == L_RUNS ? L_RANKINGS : L_RUNS;
        free(H->detail), H->detail = NULL;
        hist_show(v);
        return 1;
    case '/': case 'f': { // the text alone, quoted on Enter: a typed quote is part of it
        char cmd[64];
        snprintf(cmd, sizeof cmd, "%s %d", list_cmd[H->cur], HISTORY_N);
        v->host->ask(v->host, H->cur ? "filter rankings" : "filter runs", "", cmd);
        return 1;
    }
    case 'R': reload(v, H->cur); return 1;
    case VK_ESC:
        if (!H->detail) return 0;
        free(H->detail), H->detail = NULL;
        return 1;
    case '}': H->detail_top++; return 1;
    case '{': if (H->detail_top > 0) H->detail_top--; return 1;
    }
    if (L->sel >= L->n) return 0;
    switch (key) {
    case VK_ENTER: case 'o':
        if (H->cur == L_RUNS) snprintf(line, sizeof line, "show %lld", H->runs[L->sel].id);
        else snprintf(line, sizeof line, "show ranking=%lld", H->rankings[L->sel].id);
        v->host->run(v->host, line, 0);
        return 1;
    case 'r':
        if (H->cur == L_RANKINGS) {
            v->host->message(v->host, false, "a ranking is not replayed: t shows the runs, whose candidates replay");
            return 1;
        }
        snprintf(line, sizeof line, "replay %lld", H->runs[L->sel].id);
        v->host->run(v->host, line, 0);
        return 1;
    }
    return 0;
}

// The selected row's background across the width.
static int row_attr(CellGrid *g, int x, int Y, int w, bool selected) {
    if (!selected) return 0;
    for (int k = 0; k < w; k++) cellgrid_put(g, x + k, Y, " ", 1, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, CELL_REVERSE);
    return CELL_REVERSE;
}

// Whether list l shows a filtered query (`/`), not the plain listing.
static bool filtered(const History *H, int l) {
    char plain[64];
    snprintf(plain, sizeof plain, "%s %d", list_cmd[l], HISTORY_N);
    return H->list[l].query[0] && strcmp(H->list[l].query, plain);
}

static void draw_runs(History *H, CellGrid *g, int x, int y, int w, int list_h, bool u) {
    List *L = &H->list[L_RUNS];
    vd_printf(g, x, y, w, CELL_DIM | CELL_UNDERLINE, u, "%-6s %-16s %-10s %-14s %s", "run", "created (UTC)", "kind",
              "model", "prompt -> completion");
    for (int i = 0; i < list_h && L->top + i < L->n; i++) {
        const Run *r = &H->runs[L->top + i];
        int Y = y + 1 + i, attr = row_attr(g, x, Y, w, L->top + i == L->sel);
        int c = vd_printf(g, x, Y, w, attr | CELL_BOLD, u, "#%-5lld ", r->id);
        c += vd_printf(g, x + c, Y, w - c, attr, u, "%-16.16s %-10.10s %-14.14s ", r->created, r->kind, r->model); // "experiment" whole
        if (r->chat) c += vd_printf(g, x + c, Y, w - c, attr | CELL_BOLD, u, "chat: ");
        c += vd_text(g, x + c, Y, w - c, r->prompt, 0, r->prompt_len, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT,
                     attr | CELL_DIM, u);
        c += vd_printf(g, x + c, Y, w - c, attr, u, " %s ", u ? "\u2192" : "->");
        vd_text(g, x + c, Y, w - c, r->text, 0, r->text_len, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, attr, u);
    }
    if (!L->n)
        vd_printf(g, x, y + 1, w, CELL_DIM, u, "%s", filtered(H, L_RUNS) ? "no run matches the filter (R lists them all)"
                                                                         : "no runs (generate something in the lab first)");
}

static void draw_rankings(History *H, CellGrid *g, int x, int y, int w, int list_h, bool u) {
    List *L = &H->list[L_RANKINGS];
    int ow = 5; // the order column fits the longest order
    for (int i = 0; i < L->n; i++) {
        int n = (int)strlen(H->rankings[i].order);
        if (n > ow) ow = n;
    }
    vd_printf(g, x, y, w, CELL_DIM | CELL_UNDERLINE, u, "%-7s %-16s %-10s %-2s %-*s %s", "ranking", "created (UTC)",
              "annotator", "k", ow, "order", "prompt");
    for (int i = 0; i < list_h && L->top + i < L->n; i++) {
        const Ranking *r = &H->rankings[L->top + i];
        int Y = y + 1 + i, attr = row_attr(g, x, Y, w, L->top + i == L->sel);
        int c = vd_printf(g, x, Y, w, attr | CELL_BOLD, u, "#%-6lld ", r->id);
        c += vd_printf(g, x + c, Y, w - c, attr, u, "%-16.16s %-10.10s %-2d ", r->created, r->annotator, r->k);
        c += vd_printf(g, x + c, Y, w - c, attr | CELL_BOLD, u, "%-*s ", ow, r->order);
        if (r->chat) c += vd_printf(g, x + c, Y, w - c, attr | CELL_DIM, u, "chat: ");
        c += vd_text(g, x + c, Y, w - c, r->prompt, 0, r->prompt_len, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, attr, u);
        if (r->note) {
            c += vd_printf(g, x + c, Y, w - c, attr | CELL_DIM, u, "  note: ");
            vd_text(g, x + c, Y, w - c, r->note, 0, r->note_len, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT,
                    attr | CELL_DIM, u);
        }
    }
    if (!L->n)
        vd_printf(g, x, y + 1, w, CELL_DIM, u, "%s",
                  filtered(H, L_RANKINGS) ? "no ranking matches the filter (R lists them all)"
                                          : "no rankings (rank candidates of a prompt in the Rank view first)");
}

static void hist_draw(View *v, CellGrid *g, int x, int y, int w, int h) {
    History *H = v->state;
    ViewShared *sh = v->host->sh;
    bool u = sh->utf8;
    v->cur_x = v->cur_y = -1;
    List *L = &H->list[H->cur];
    // the two lists as tabs, the current one highlighted
    int X = x + vd_printf(g, x, y, w, CELL_BOLD, u, "History: ");
    for (int l = 0; l < 2; l++) {
        const List *o = &H->list[l];
        char tab[40];
        // a count only while it is current (a ranking stored since: not yet reloaded), "200+" when
        // the list stops at its length (the newest 200, not all there are)
        const char *what = l == L_RUNS ? (o->n == 1 ? "run" : "runs") : (o->n == 1 ? "ranking" : "rankings");
        if (o->have && !o->stale) snprintf(tab, sizeof tab, " %d%s %s ", o->n, o->n >= HISTORY_N ? "+" : "", what);
        else snprintf(tab, sizeof tab, " %s ", l == L_RUNS ? "runs" : "rankings");
        X += vd_printf(g, X, y, x + w - X, l == H->cur ? CELL_REVERSE | CELL_BOLD : CELL_DIM, u, "%s", tab);
    }
    // the hints, after the filter when the list is filtered
    bool fil = filtered(H, H->cur);
    vd_printf(g, X + 2, y, x + w - X - 2, CELL_DIM, u, "%s%s%st switch  / filter  Enter show%s%s", fil ? "(" : "",
              fil ? L->query : "", fil ? ")  " : "", H->cur == L_RUNS ? "  r replay" : "",
              H->detail ? "  Esc close  { } scroll" : "  R reload");
    if (!L->have) {
        vd_printf(g, x, y + 2, w, 0, u, "%s", L->pending ? "loading..." : "nothing loaded");
        return;
    }
    int list_h = h - 2, dy = 0;
    if (H->detail) { // the list above (no taller than it needs), what show said below
        list_h = (h - 2) / 2;
        if (list_h > L->n) list_h = L->n;
    }
    if (list_h < 1) list_h = 1;
    if (H->detail) dy = y + 2 + list_h;
    if (L->sel < L->top) L->top = L->sel;
    if (L->sel >= L->top + list_h) L->top = L->sel - list_h + 1;
    if (H->cur == L_RUNS) draw_runs(H, g, x, y + 1, w, list_h, u);
    else draw_rankings(H, g, x, y + 1, w, list_h, u);
    if (H->detail) {
        vd_rule(g, x, dy, w, u);
        vd_printf(g, x + 2, dy, w - 2, CELL_BOLD, u, "%s", H->title);
        VdRow *rows = NULL;
        int nr = vd_wrap(H->detail, strlen(H->detail), w, u, &rows);
        int dh = y + h - dy - 1;
        if (H->detail_top > nr - dh) H->detail_top = nr - dh > 0 ? nr - dh : 0;
        for (int k = 0; k < dh && H->detail_top + k < nr; k++)
            vd_text(g, x, dy + 1 + k, w, H->detail, rows[H->detail_top + k].start, rows[H->detail_top + k].end,
                    CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, 0, u);
        free(rows);
    }
}

const ViewOps history_view_ops = {
    .name = "history",
    .title = "History",
    .keys = "t  switch between the runs and the rankings\n"
            "j k  up down  choose a run (rank candidates and replays are runs too) or a ranking\n"
            "Enter o  show everything recorded about it (show ID, show ranking=ID: the candidates best first,\n"
            "         ties marked);  Esc closes, { } scroll it\n"
            "r  replay the run (replay ID): the lab shows the new completion\n"
            "/ f  filter: asks for TEXT, then history 200 \"TEXT\" (prompt, completion, model, annotator or kind) or\n"
            "     :rankings 200 \"TEXT\" (prompt, annotator or note)\n"
            "R  reload",
    .open = hist_open,
    .close = hist_close,
    .draw = hist_draw,
    .key = hist_key,
    .show = hist_show,
    .result = hist_result,
};
