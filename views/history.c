// history.c - the history view: the logged runs (`history 200 ["FILTER"]`, newest first),
// including rank candidates and replays; Enter opens one (`show ID`), r replays it (`replay ID`),
// / filters.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"

#define HISTORY_N 200

typedef struct Run {
    long long id;
    char created[24], kind[16], model[64];
    char *prompt, *text;
    size_t prompt_len, text_len;
    int n_tokens;
} Run;

typedef struct History {
    Run *runs;
    int n;
    int sel, top;
    char query[160]; // the history command that filled the list
    bool have, stale, pending;
    char *detail;    // the human form of `show` for detail_id
    long long detail_id;
    int detail_top;
} History;

static int hist_open(View *v) {
    History *H = calloc(1, sizeof *H);
    if (!H) return -1;
    v->state = H;
    return 0;
}

static void runs_free(History *H) {
    for (int i = 0; i < H->n; i++) free(H->runs[i].prompt), free(H->runs[i].text);
    free(H->runs);
    H->runs = NULL;
    H->n = 0;
}

static void hist_close(View *v) {
    History *H = v->state;
    runs_free(H);
    free(H->detail);
    free(H);
}

static void reload(View *v) {
    History *H = v->state;
    char line[64];
    snprintf(line, sizeof line, "history %d", HISTORY_N);
    H->pending = true;
    v->host->run(v->host, line, VR_QUIET);
}

static char *dupj(const Json *j, size_t *len) {
    size_t n = j && j->type == JSON_STR ? j->len : 0;
    char *s = malloc(n + 1);
    if (s) memcpy(s, n ? j->str : "", n), s[n] = 0;
    *len = n;
    return s;
}

static void hist_result(View *v, const ViewResult *r) {
    History *H = v->state;
    const char *c = r->cmd;
    if (!strcmp(c, "generate") || !strcmp(c, "rank") || !strcmp(c, "replay") || !strcmp(c, "order")) {
        H->stale = true;
        return;
    }
    if (!strcmp(c, "show") && r->json && !r->quiet) {
        free(H->detail);
        H->detail = strdup(r->text ? r->text : "");
        H->detail_id = (long long)json_num_or(r->json, "run_id", 0);
        H->detail_top = 0;
        return;
    }
    if (strcmp(c, "history")) return;
    H->pending = false;
    if (!r->json) return;
    const Json *runs = json_get(r->json, "runs");
    runs_free(H);
    H->runs = calloc(runs && runs->len ? runs->len : 1, sizeof *H->runs);
    for (size_t i = 0; H->runs && runs && i < runs->len; i++) {
        const Json *x = &runs->items[i];
        Run *d = &H->runs[H->n++];
        d->id = (long long)json_num_or(x, "run_id", 0);
        snprintf(d->created, sizeof d->created, "%s", json_str_or(x, "created", ""));
        snprintf(d->kind, sizeof d->kind, "%s", json_str_or(x, "kind", ""));
        const char *m = json_str_or(x, "model", ""), *slash = strrchr(m, '/');
        snprintf(d->model, sizeof d->model, "%s", slash && slash[1] ? slash + 1 : m);
        d->prompt = dupj(json_get(x, "prompt"), &d->prompt_len);
        d->text = dupj(json_get(x, "text"), &d->text_len);
        d->n_tokens = (int)json_num_or(x, "n_tokens", 0);
    }
    snprintf(H->query, sizeof H->query, "%s", r->line ? r->line : "history");
    H->have = true, H->stale = false;
    if (H->sel >= H->n) H->sel = H->n ? H->n - 1 : 0;
}

static void hist_show(View *v) {
    History *H = v->state;
    if ((!H->have || H->stale) && !H->pending) reload(v);
}

static int hist_key(View *v, int key) {
    History *H = v->state;
    char line[64];
    switch (key) {
    case VK_UP: case 'k': if (H->sel > 0) H->sel--; return 1;
    case VK_DOWN: case 'j': if (H->sel + 1 < H->n) H->sel++; return 1;
    case VK_PGUP: H->sel = H->sel > 10 ? H->sel - 10 : 0; return 1;
    case VK_PGDN: H->sel = H->sel + 10 < H->n ? H->sel + 10 : (H->n ? H->n - 1 : 0); return 1;
    case VK_HOME: case 'g': H->sel = 0; return 1;
    case VK_END: case 'G': H->sel = H->n ? H->n - 1 : 0; return 1;
    case '/': case 'f': {
        char pre[64];
        snprintf(pre, sizeof pre, "history %d \"\"", HISTORY_N);
        v->host->edit(v->host, pre, 1);
        return 1;
    }
    case 'R': reload(v); return 1;
    case VK_ESC:
        if (!H->detail) return 0;
        free(H->detail), H->detail = NULL;
        return 1;
    case '}': H->detail_top++; return 1;
    case '{': if (H->detail_top > 0) H->detail_top--; return 1;
    }
    if (H->sel >= H->n) return 0;
    switch (key) {
    case VK_ENTER: case 'o':
        snprintf(line, sizeof line, "show %lld", H->runs[H->sel].id);
        v->host->run(v->host, line, 0);
        return 1;
    case 'r':
        snprintf(line, sizeof line, "replay %lld", H->runs[H->sel].id);
        v->host->run(v->host, line, 0);
        return 1;
    }
    return 0;
}

static void hist_draw(View *v, CellGrid *g, int x, int y, int w, int h) {
    History *H = v->state;
    ViewShared *sh = v->host->sh;
    bool u = sh->utf8;
    v->cur_x = v->cur_y = -1;
    int X = x + vd_printf(g, x, y, w, CELL_BOLD, u, "History: %d runs", H->n);
    vd_printf(g, X + 2, y, x + w - X - 2, CELL_DIM, u, "(%s)  / filter  Enter show  r replay  R reload%s", H->query[0] ? H->query : "history",
              H->detail ? "  Esc close  { } scroll" : "");
    if (!H->have) {
        vd_printf(g, x, y + 2, w, 0, u, "%s", H->pending ? "loading..." : "no runs loaded");
        return;
    }
    int list_h = h - 2, dy = 0;
    if (H->detail) list_h = (h - 2) / 2, dy = y + 2 + list_h;
    if (list_h < 1) list_h = 1;
    vd_printf(g, x, y + 1, w, CELL_DIM | CELL_UNDERLINE, u, "%-6s %-16s %-8s %-14s %s", "run", "created (UTC)", "kind",
              "model", "prompt -> completion");
    if (H->sel < H->top) H->top = H->sel;
    if (H->sel >= H->top + list_h) H->top = H->sel - list_h + 1;
    for (int i = 0; i < list_h && H->top + i < H->n; i++) {
        const Run *r = &H->runs[H->top + i];
        int Y = y + 2 + i, attr = H->top + i == H->sel ? CELL_REVERSE : 0;
        if (attr) for (int k = 0; k < w; k++) cellgrid_put(g, x + k, Y, " ", 1, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, attr);
        int c = vd_printf(g, x, Y, w, attr | CELL_BOLD, u, "#%-5lld ", r->id);
        c += vd_printf(g, x + c, Y, w - c, attr, u, "%-16.16s %-8.8s %-14.14s ", r->created, r->kind, r->model);
        c += vd_text(g, x + c, Y, w - c, r->prompt, 0, r->prompt_len, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, attr | CELL_DIM, u);
        c += vd_printf(g, x + c, Y, w - c, attr, u, " %s ", u ? "\u2192" : "->");
        vd_text(g, x + c, Y, w - c, r->text, 0, r->text_len, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, attr, u);
    }
    if (!H->n) vd_printf(g, x, y + 2, w, CELL_DIM, u, "no runs (generate something in the lab first)");
    if (H->detail) {
        vd_rule(g, x, dy, w, u);
        vd_printf(g, x + 2, dy, w - 2, CELL_BOLD, u, " run %lld ", H->detail_id);
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
    .keys = "j k  up down  choose a run (rank candidates and replays are runs too)\n"
            "Enter o  show everything recorded about it (show ID);  Esc closes, { } scroll it\n"
            "r  replay it (replay ID): the lab shows the new completion\n"
            "/ f  filter: opens :history 200 \"TEXT\" (prompt, completion, model, annotator or kind)\n"
            "R  reload",
    .open = hist_open,
    .close = hist_close,
    .draw = hist_draw,
    .key = hist_key,
    .show = hist_show,
    .result = hist_result,
};
