// rank.c - the rank view: the K candidates of a pending ranking (`rank "PROMPT" k=K`), which the
// person orders with the keyboard (move up/down, mark ties), annotates (`note`), and submits
// (`order 3 1 2=4`) or skips (`skip`); after a submit, never before, the order a reward model
// predicts for the same candidates (`reward score ranking=ID`) beside the person's.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "view.h"

#define RANK_MAX 9

typedef struct Cand {
    int n;          // candidate number as `rank` gave it
    long long run_id;
    char *text;
    size_t len;
} Cand;

typedef struct Rank {
    char *prompt;
    size_t prompt_len;
    char *chat_user; // a chat prompt's user message (rank's JSON chat_user), else NULL
    size_t chat_user_len;
    int k;
    Cand c[RANK_MAX];
    int order[RANK_MAX]; // indexes into c, best first
    bool tie[RANK_MAX];  // order[i] is tied with order[i - 1]
    int sel;             // position in order
    bool pending;
    char *note;
    char done[128];      // the last outcome ("ranking 4 stored: 3 1 2=4")
    long long stored;    // the ranking order stored last (0: none): n notes it
    int identical;       // pairs of candidates of the same text (rank's JSON identical)
    char same_text[40];  // which candidates those are, "1=2=3" (rank's JSON same_text)
    int top;             // first candidate row shown
    int scroll;          // the chosen candidate's first line shown (PgDn PgUp), 0 when the choice changes
    int scroll_max;      // its lines below the rows it got, as drawn last
    // after a submit (never before: no anchoring), the reward model's order of the same candidates
    bool judged;             // pred_* hold the reward model's answer for ranking `stored`
    int pred[RANK_MAX];      // indexes into c, the highest reward first
    bool pred_tie[RANK_MAX]; // pred[i] has the reward of pred[i - 1]
    double reward[RANK_MAX]; // by index into c
    int agree, pairs;        // of the annotator's untied pairs, those the rewards order the same way
    char judge[256];         // the reward model's directory, or why there is no prediction
} Rank;

static int rank_open(View *v) {
    Rank *R = xcalloc(1, sizeof *R);
    v->state = R;
    return 0;
}

static void cands_free(Rank *R) {
    for (int i = 0; i < R->k; i++) free(R->c[i].text);
    free(R->prompt);
    free(R->note);
    free(R->chat_user);
    R->prompt = R->note = R->chat_user = NULL;
    R->k = 0;
}

static void rank_close(View *v) {
    Rank *R = v->state;
    cands_free(R);
    free(R);
}

void rank_order_line(const int *order_n, const bool *tie, int k, Buf *out) {
    buf_puts(out, "order");
    for (int i = 0; i < k; i++) buf_printf(out, "%s%d", i && tie[i] ? "=" : " ", order_n[i]);
}

static void submit(View *v) {
    Rank *R = v->state;
    if (!R->pending) return;
    int ns[RANK_MAX];
    for (int i = 0; i < R->k; i++) ns[i] = R->c[R->order[i]].n;
    Buf line = {0};
    rank_order_line(ns, R->tie, R->k, &line);
    v->host->run(v->host, line.data, 0);
    buf_free(&line);
}

static void swap(Rank *R, int a, int b) {
    int t = R->order[a];
    R->order[a] = R->order[b], R->order[b] = t;
}

// Open the command line on the current note (the pending ranking's, or the one just stored), so
// that typing edits it instead of replacing it unseen; the text goes to `note` as typed.
static void edit_note(View *v) {
    Rank *R = v->state;
    v->host->ask(v->host, "note", R->note ? R->note : "", "note");
}

static int rank_key(View *v, int key) {
    Rank *R = v->state;
    ViewShared *sh = v->host->sh;
    if (key == 'r' || (!R->pending && key == VK_ENTER)) { // a new ranking of the lab's prompt, now
        if (R->pending) {
            v->host->message(v->host, true, "a ranking is pending: submit it (Enter) or skip it (x) first");
        } else if (!sh->prompt.len) {
            v->host->message(v->host, true, "the lab's prompt is empty: type one in the Lab (1, then e), "
                                            "or :rank \"PROMPT\" k=4");
        } else {
            Buf line = {0};
            buf_puts(&line, "rank ");
            buf_put_quoted(&line, sh->prompt.data, sh->prompt.len);
            buf_puts(&line, " k=4");
            v->host->run(v->host, line.data, 0);
            buf_free(&line);
        }
        return 1;
    }
    if (!R->pending && key == 'n' && R->stored) { // a note typed after submitting: its note to edit
        edit_note(v);
        return 1;
    }
    if (!R->pending) return 0;
    switch (key) {
    case VK_UP: case 'k': if (R->sel > 0) R->sel--, R->scroll = 0; return 1;
    case VK_DOWN: case 'j': if (R->sel + 1 < R->k) R->sel++, R->scroll = 0; return 1;
    case VK_PGDN: case ' ': // the chosen candidate's text, a page on
        if (R->scroll < R->scroll_max) R->scroll += 3;
        else v->host->message(v->host, false, "the end of this candidate's text");
        if (R->scroll > R->scroll_max) R->scroll = R->scroll_max;
        return 1;
    case VK_PGUP: case 'b':
        R->scroll = R->scroll > 3 ? R->scroll - 3 : 0;
        return 1;
    case VK_SUP: case 'K': case 'u':
        if (R->sel > 0) swap(R, R->sel, R->sel - 1), R->sel--;
        return 1;
    case VK_SDOWN: case 'J': case 'd':
        if (R->sel + 1 < R->k) swap(R, R->sel, R->sel + 1), R->sel++;
        return 1;
    case '=': case 't':
        if (R->sel > 0) R->tie[R->sel] = !R->tie[R->sel];
        else if (R->k > 1) R->tie[1] = !R->tie[1];
        return 1;
    case 'n': edit_note(v); return 1;
    case VK_ENTER: case 's': submit(v); return 1;
    case 'x': v->host->run(v->host, "skip", 0); return 1;
    }
    return 0;
}

static char *dupn(const char *s, size_t n) {
    char *d = xmalloc(n + 1);
    memcpy(d, s, n), d[n] = 0;
    return d;
}

// The answer of `reward score ranking=ID` for the ranking just stored: the predicted order.
static void take_prediction(Rank *R, const ViewResult *r) {
    if (!r->json) { // no reward model (or it failed): say why, dimly
        snprintf(R->judge, sizeof R->judge, "%s", r->err ? r->err : "no reward model");
        return;
    }
    if ((long long)json_num_or(r->json, "ranking_id", 0) != R->stored) return;
    const Json *cs = json_get(r->json, "candidates");
    int n = 0;
    for (size_t i = 0; cs && i < cs->len; i++) {
        const Json *x = &cs->items[i];
        int cn = (int)json_num_or(x, "n", 0);
        for (int j = 0; j < R->k; j++)
            if (R->c[j].n == cn) R->reward[j] = json_num_or(x, "reward", 0), R->pred[n++] = j;
    }
    if (n != R->k) return;
    for (int i = 1; i < n; i++) // the highest reward first, as the command orders them
        for (int j = i; j > 0 && R->reward[R->pred[j]] > R->reward[R->pred[j - 1]]; j--) {
            int t = R->pred[j];
            R->pred[j] = R->pred[j - 1], R->pred[j - 1] = t;
        }
    for (int i = 0; i < n; i++) R->pred_tie[i] = i && R->reward[R->pred[i]] == R->reward[R->pred[i - 1]];
    R->agree = (int)json_num_or(r->json, "agree", 0), R->pairs = (int)json_num_or(r->json, "pairs", 0);
    snprintf(R->judge, sizeof R->judge, "%s", json_str_or(r->json, "model", "?"));
    R->judged = true;
}

static void rank_result(View *v, const ViewResult *r) {
    Rank *R = v->state;
    const char *c = r->cmd;
    if (!strcmp(c, "reward") && r->line && strstr(r->line, "reward score ranking=") && R->stored && !R->pending) {
        take_prediction(R, r);
        return;
    }
    if (!r->json) return;
    if (!strcmp(c, "rank")) {
        cands_free(R);
        R->judged = false, R->judge[0] = 0;
        const Json *p = json_get(r->json, "prompt"), *cs = json_get(r->json, "candidates");
        if (p && p->type == JSON_STR) R->prompt = dupn(p->str, p->len), R->prompt_len = p->len;
        const Json *cu = json_get(r->json, "chat_user"); // (null: a plain prompt, shown whole)
        if (cu && cu->type == JSON_STR) R->chat_user = dupn(cu->str, cu->len), R->chat_user_len = cu->len;
        for (size_t i = 0; cs && i < cs->len && R->k < RANK_MAX; i++) {
            const Json *x = &cs->items[i], *t = json_get(x, "text");
            Cand *d = &R->c[R->k];
            d->n = (int)json_num_or(x, "n", (double)(i + 1));
            d->run_id = (long long)json_num_or(x, "run_id", 0);
            d->text = t && t->type == JSON_STR ? dupn(t->str, t->len) : dupn("", 0);
            d->len = t && t->type == JSON_STR ? t->len : 0;
            R->order[R->k] = R->k;
            R->tie[R->k] = false;
            R->k++;
        }
        R->sel = 0, R->top = 0;
        R->identical = (int)json_num_or(r->json, "identical", 0);
        snprintf(R->same_text, sizeof R->same_text, "%s", json_str_or(r->json, "same_text", "?"));
        R->pending = R->k > 0;
        R->done[0] = 0;
    } else if (!strcmp(c, "order")) {
        R->pending = false;
        R->stored = (long long)json_num_or(r->json, "ranking_id", 0);
        // "your order" is the stored one, as the answer gives it ([[2], [4], [1, 3]]): typed as
        // `:order ...` it need not be the arrangement on the screen
        const Json *og = json_get(r->json, "order");
        int ord[RANK_MAX], m = 0;
        bool tie[RANK_MAX], ok = og && og->type == JSON_ARR;
        for (size_t gi = 0; ok && gi < og->len; gi++) {
            const Json *grp = &og->items[gi];
            ok = grp->type == JSON_ARR && grp->len > 0;
            for (size_t j = 0; ok && j < grp->len; j++) {
                long long n = -1;
                int at = -1;
                json_int_in(&grp->items[j], 1, 1000, &n);
                for (int i = 0; i < R->k; i++)
                    if (R->c[i].n == n) at = i;
                ok = at >= 0 && m < R->k;
                if (ok) ord[m] = at, tie[m] = j > 0, m++;
            }
        }
        if (ok && m == R->k) memcpy(R->order, ord, sizeof ord[0] * (size_t)m), memcpy(R->tie, tie, sizeof tie[0] * (size_t)m);
        snprintf(R->done, sizeof R->done, "ranking %lld stored", R->stored);
        R->judged = false, R->judge[0] = 0;
        if (R->stored && R->k) { // only now: the person's order is in
            char line[64];
            snprintf(line, sizeof line, "reward score ranking=%lld", R->stored);
            v->host->run(v->host, line, VR_QUIET | VR_OWN_ERROR); // no reward model: said in the view
        }
    } else if (!strcmp(c, "skip")) {
        R->pending = false;
        R->stored = 0; // n has no ranking to note now (it noted the one stored before the skip)
        snprintf(R->done, sizeof R->done, "skipped: nothing stored");
    } else if (!strcmp(c, "note")) {
        const Json *n = json_get(r->json, "note"), *id = json_get(r->json, "ranking_id");
        bool text = n && n->type == JSON_STR;
        if (id && id->type == JSON_NUM) { // a stored ranking's note: say so under the outcome
            snprintf(R->done, sizeof R->done, "ranking %lld stored%s%.*s", (long long)id->num,
                     text ? ", note: " : "", text ? (int)n->len : 0, text ? n->str : "");
            if ((long long)id->num != R->stored) return; // another ranking's (note ranking=ID)
        }
        free(R->note); // the pending ranking's, or the one just stored: n edits it next
        R->note = text ? dupn(n->str, n->len) : NULL;
    }
}

// One column of an order: "=2. [3] +1.2345 text" per candidate (the reward when rewards).
static void draw_column(const Rank *R, CellGrid *g, int x, int y, int w, const int *order, const bool *tie,
                        const double *rewards, bool u) {
    int rank_no = 0;
    for (int i = 0; i < R->k; i++) {
        if (!(i > 0 && tie[i])) rank_no++; // dense, as the ranking is stored (1, 2, =2, 3)
        const Cand *c = &R->c[order[i]];
        int X = x + vd_printf(g, x, y + i, w, 0, u, "%s%d. [%d] ", i > 0 && tie[i] ? "=" : " ", rank_no, c->n);
        if (rewards) X += vd_printf(g, X, y + i, x + w - X, CELL_BOLD, u, "%+.4f ", rewards[order[i]]);
        vd_text(g, X, y + i, x + w - X, c->text, 0, c->len, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, CELL_DIM, u);
    }
}

// After a submit: the person's order and, beside it, the reward model's. Returns the next row.
static int draw_orders(const Rank *R, CellGrid *g, int x, int y, int w, bool u) {
    int half = w / 2;
    vd_printf(g, x, y, half - 1, CELL_BOLD, u, "your order");
    if (R->judged) vd_printf(g, x + half, y, w - half, CELL_BOLD, u, "reward model (agrees on %d of %d pairs)",
                             R->agree, R->pairs);
    else vd_printf(g, x + half, y, w - half, CELL_DIM, u, "%s", R->judge[0] ? "no reward model's order" : "scoring...");
    draw_column(R, g, x, y + 1, half - 1, R->order, R->tie, NULL, u);
    if (R->judged) draw_column(R, g, x + half, y + 1, w - half, R->pred, R->pred_tie, R->reward, u);
    int Y = y + 1 + R->k;
    if (R->judge[0]) {
        Buf b = {0};
        buf_puts(&b, R->judged ? "reward model: " : "");
        buf_puts(&b, R->judge);
        if (!R->judged) buf_puts(&b, " (set reward DIR names one)");
        vd_text(g, x, Y++, w, b.data, 0, b.len, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, CELL_DIM, u);
        buf_free(&b);
    }
    return Y;
}

static void rank_draw(View *v, CellGrid *g, int x, int y, int w, int h) {
    Rank *R = v->state;
    ViewShared *sh = v->host->sh;
    bool u = sh->utf8;
    CellColor acc = vd_accent(sh->mode);
    v->cur_x = v->cur_y = -1;
    if (!R->pending) {
        vd_printf(g, x, y, w, CELL_BOLD, u, "Rank");
        int Y = y + 2;
        if (R->done[0]) vd_printf(g, x, Y++, w, 0, u, "%s.", R->done), Y++;
        if (R->done[0] && R->stored && R->k) Y = draw_orders(R, g, x, Y, w, u) + 1;
        vd_printf(g, x, Y++, w, 0, u, "No ranking pending. Press r (or Enter) to rank 4 completions of the lab's prompt,");
        vd_printf(g, x, Y++, w, 0, u, "or type another ranking:");
        vd_printf(g, x, Y++, w, CELL_DIM, u, "  :rank \"PROMPT\" k=4 [max=N temperature=T ...]");
        vd_printf(g, x, Y + 1, w, 0, u, "Then j/k choose, J/K move up/down, = tie with the one above, n note, Enter submit, x skip.");
        if (R->stored && R->note) vd_printf(g, x, Y + 2, w, 0, u, "n edits the note of ranking %lld: %s", R->stored, R->note);
        else if (R->stored) vd_printf(g, x, Y + 2, w, 0, u, "n adds a note to ranking %lld.", R->stored);
        return;
    }
    // heading: the prompt and the keys
    int X = x + cellgrid_text(g, x, y, w, "Rank", acc, CELLCOLOR_DEFAULT, CELL_BOLD);
    X += vd_printf(g, X, y, x + w - X, 0, u, " %d candidates for ", R->k);
    Buf pl = {0};
    // a chat prompt: the user's message, as rankings and history show it
    bool chat = R->chat_user != NULL;
    if (chat) buf_puts(&pl, "chat: ");
    buf_putc(&pl, '"');
    buf_put(&pl, chat ? R->chat_user : R->prompt ? R->prompt : "", chat ? R->chat_user_len : R->prompt_len);
    buf_putc(&pl, '"');
    vd_text(g, X, y, x + w - X, pl.data, 0, pl.len, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, CELL_BOLD, u);
    buf_free(&pl);
    vd_printf(g, x, y + 1, w, CELL_DIM, u, "best first: j/k choose, J/K move, = tie, n note, Enter submit (order), x skip");
    int Y = y + 2;
    if (R->identical) // greedy decoding gives k copies: say it here, not only in the log (it said
                      // "6 of the 4 candidates", counting the pairs)
        vd_printf(g, x, Y++, w, CELL_BOLD, u,
                  "note: candidates %s are the same text: a preference between them teaches nothing "
                  "(rank with temperature > 0)",
                  R->same_text);
    if (R->note) {
        Buf nb = {0};
        buf_puts(&nb, "note: ");
        buf_puts(&nb, R->note);
        vd_text(g, x, Y++, w, nb.data, 0, nb.len, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, CELL_DIM, u);
        buf_free(&nb);
    }
    // the candidates: every one whole when all fit (a blank row between); else each one line and
    // the chosen one the rest, its text scrolled with PgDn/PgUp (a person ranks what they read:
    // an equal share cut every candidate to a few lines)
    int avail = y + h - 1 - Y, tw = w - 10 > 1 ? w - 10 : 1, need[RANK_MAX], total = 0;
    VdRow *rows[RANK_MAX] = {NULL};
    for (int i = 0; i < R->k; i++) {
        const Cand *c = &R->c[R->order[i]];
        need[i] = vd_wrap(c->text, c->len, tw, u, &rows[i]);
        if (need[i] < 1) need[i] = 1;
        total += need[i] + (i > 0);
    }
    bool whole = total <= avail;
    int shown = whole || avail >= R->k + 2 ? R->k : (avail > 3 ? avail - 2 : 1);
    int sel_rows = whole ? need[R->sel] : avail - (shown - 1);
    if (R->sel < R->top) R->top = R->sel;
    if (R->sel >= R->top + shown) R->top = R->sel - shown + 1;
    if (whole) R->top = 0;
    R->scroll_max = need[R->sel] > sel_rows ? need[R->sel] - sel_rows : 0;
    if (R->scroll > R->scroll_max) R->scroll = R->scroll_max;
    int rank_no = 0, Yi = Y;
    for (int i = 0; i < R->k; i++) {
        if (!(i > 0 && R->tie[i])) rank_no++; // dense, as the ranking is stored and shown (1, 2, =2, 3)
        if (i < R->top || i >= R->top + shown) continue;
        const Cand *c = &R->c[R->order[i]];
        bool sel = i == R->sel;
        int attr = sel ? CELL_REVERSE | CELL_BOLD : 0;
        char head[32];
        snprintf(head, sizeof head, "%s%d. [%d]", i > 0 && R->tie[i] ? "=" : " ", rank_no, c->n);
        cellgrid_text(g, x, Yi, 9, head, sel ? acc : CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, attr);
        int lines = whole ? need[i] : sel ? sel_rows : 1, from = sel ? R->scroll : 0;
        for (int k = 0; from + k < need[i] && k < lines && rows[i]; k++) {
            bool more = k == lines - 1 && from + k + 1 < need[i]; // text below: … (and PgDn, chosen)
            const VdRow *r = &rows[i][from + k];
            int used = vd_text(g, x + 10, Yi + k, tw - (more ? 1 : 0), c->text, r->start, r->end, CELLCOLOR_DEFAULT,
                               CELLCOLOR_DEFAULT, sel ? CELL_BOLD : 0, u);
            if (more) cellgrid_text(g, x + 10 + used, Yi + k, 1, u ? "\u2026" : "~", CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, CELL_DIM);
        }
        if (!c->len) vd_printf(g, x + 10, Yi, tw, CELL_DIM, u, "(empty completion)");
        Yi += lines + (whole ? 1 : 0);
    }
    for (int i = 0; i < R->k; i++) free(rows[i]);
    // the order line that submit will run, and where the chosen text stands when it scrolls
    int ns[RANK_MAX];
    for (int i = 0; i < R->k; i++) ns[i] = R->c[R->order[i]].n;
    Buf line = {0};
    rank_order_line(ns, R->tie, R->k, &line);
    if (R->scroll_max && !whole)
        buf_printf(&line, "    [chosen: lines %d-%d of %d, PgDn PgUp]", R->scroll + 1,
                   R->scroll + sel_rows < need[R->sel] ? R->scroll + sel_rows : need[R->sel], need[R->sel]);
    vd_printf(g, x, y + h - 1, w, CELL_DIM, u, "Enter runs:  %s", line.data);
    buf_free(&line);
}

const ViewOps rank_view_ops = {
    .name = "rank",
    .title = "Rank",
    .keys = "r Enter  rank 4 completions of the lab's prompt now (:rank \"PROMPT\" k=K for another)\n"
            "j k  up down  choose a candidate;  J K  shift-up shift-down  move it up or down\n"
            "PgDn PgUp  space b  scroll the chosen candidate's text (it gets the rows the others' first lines leave)\n"
            "= t  tie the chosen candidate with the one above, the first with the one below (again: untie)\n"
            "n  add a note (typed as it is, quotes too; Enter runs note \"...\"); after submitting, to the ranking just stored\n"
            "Enter s  submit: runs order 3 1 2=4 (best first, = between ties);  x  skip\n"
            "after a submit (never before) the reward model's order is shown beside yours:\n"
            "         reward score ranking=ID with set reward DIR, or the latest reward run's model\n"
            "q asks before quitting while a ranking is unfinished",
    .open = rank_open,
    .close = rank_close,
    .draw = rank_draw,
    .key = rank_key,
    .result = rank_result,
};
