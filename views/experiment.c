// experiment.c - the experiment view: an experiment's accuracy per condition as bars with their
// 95% confidence intervals (`experiment show ID`, or the result of the `experiment TASK ...`
// that just ran), a progress bar with the time left while one runs, and any item opened from a
// condition (`experiment show ID item=K condition=C`): its outcome, input, target, the answer
// extracted, and per run the exact prompt and the model's output. It draws those results and
// runs nothing itself.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "barchart.h"
#include "base/clock.h"
#include "base/mem.h"
#include "label.h"
#include "view.h"

typedef struct ExpView {
    // the experiment shown (id 0: none yet)
    long long id;
    long long asked_next; // ] asked for this one: none there is the newest shown, not an error
    char head[256];  // "experiment 3  task en-fr  model builtin  done  16/16 items"
    long n_items;    // test items per condition
    int n;           // conditions
    char **labels;
    int *cond;       // their numbers (the condition= of experiment show)
    float *acc, *se, *count;
    int sel, top;
    bool listed;     // the `experiments 1` of the first show has been asked for
    // a command running now
    bool running;
    bool live; // progress came from a command whose result has not come yet
    ViewProgress prog;
    char what[64], detail[160];
    char stopped[240]; // the message of a run that failed or was stopped
    // the item open (item < 0: none)
    int item, item_cond;
    bool item_pending, correct;
    char item_head[200];
    Buf body;        // its text, wrapped when drawn
    int scroll;
} ExpView;

static int exp_open(View *v) {
    ExpView *E = xcalloc(1, sizeof *E);
    E->item = -1;
    v->state = E;
    return 0;
}

static void table_free(ExpView *E) {
    for (int i = 0; i < E->n; i++) free(E->labels[i]);
    free(E->labels), free(E->cond), free(E->acc), free(E->se), free(E->count);
    E->labels = NULL, E->cond = NULL, E->acc = E->se = E->count = NULL;
    E->n = 0;
}

static void exp_close(View *v) {
    ExpView *E = v->state;
    if (!E) return;
    table_free(E);
    buf_free(&E->body);
    free(E);
}

static float num_or_nan(const Json *o, const char *key) {
    const Json *x = json_get(o, key);
    return x && x->type == JSON_NUM ? (float)x->num : NAN;
}

// The table of an `experiment` result (its conditions with their counts).
static void take_table(ExpView *E, const Json *j) {
    const Json *cs = json_get(j, "conditions");
    table_free(E);
    long long id = (long long)json_num_or(j, "experiment_id", 0);
    if (id != E->id) E->sel = E->top = 0, E->item = -1;
    E->id = id;
    E->n_items = (long)json_num_or(j, "n_items", 0);
    long done = (long)json_num_or(j, "n_done", 0), all = E->n_items * (long)json_num_or(j, "n_conditions", 0);
    snprintf(E->head, sizeof E->head, "experiment %lld  task %s  model %s  %s  %ld/%ld items", id,
             json_str_or(j, "task", "?"), json_str_or(j, "model_path", "?"), json_str_or(j, "status", "?"), done, all);
    int n = (int)cs->len;
    E->labels = xcalloc((size_t)n + 1, sizeof *E->labels);
    E->cond = xcalloc((size_t)n + 1, sizeof *E->cond);
    E->acc = xcalloc((size_t)n + 1, sizeof *E->acc);
    E->se = xcalloc((size_t)n + 1, sizeof *E->se);
    E->count = xcalloc((size_t)n + 1, sizeof *E->count);
    for (int i = 0; i < n; i++) {
        const Json *c = &cs->items[i];
        char label[128];
        int k = snprintf(label, sizeof label, "shots=%d cot=%s seed=%.0f", (int)json_num_or(c, "shots", 0),
                         json_bool_or(c, "cot", false) ? "on" : "off", json_num_or(c, "seed", 0));
        int samples = (int)json_num_or(c, "samples", 1);
        if (samples > 1) k += snprintf(label + k, sizeof label - (size_t)k, " sc=%d", samples);
        if (json_bool_or(c, "chat", false)) snprintf(label + k, sizeof label - (size_t)k, " chat=on");
        E->labels[i] = xstrdup(label);
        E->cond[i] = (int)json_num_or(c, "condition", i);
        E->acc[i] = num_or_nan(c, "accuracy");
        E->se[i] = num_or_nan(c, "stderr");
        E->count[i] = num_or_nan(c, "n");
    }
    E->n = n;
    if (E->sel >= n) E->sel = n ? n - 1 : 0;
}

// Append a heading and the text of string s to the item's body.
static void body_part(Buf *b, const char *title, const Json *s) {
    buf_printf(b, "\n-- %s --\n", title);
    if (s && s->type == JSON_STR) buf_put(b, s->str, s->len);
    if (!s || s->type != JSON_STR || !s->len || s->str[s->len - 1] != '\n') buf_putc(b, '\n');
}

enum { TOKEN_LABEL_W = 14, TOKEN_BAR_W = 24 };

// Append a run's tokens ([{id, piece, logprob}]) to the item's body, a row each: the piece, its
// probability and a bar of TOKEN_BAR_W columns in eighths (UTF-8) or whole '#' (ASCII).
static void body_tokens(Buf *b, const Json *toks, bool u) {
    static const char *const eighths[8] = {"", "\u258f", "\u258e", "\u258d", "\u258c", "\u258b", "\u258a", "\u2589"};
    if (!toks || toks->type != JSON_ARR || !toks->len) return;
    buf_puts(b, "token probabilities:\n");
    for (size_t i = 0; i < toks->len; i++) {
        const Json *t = &toks->items[i];
        const Json *piece = json_get(t, "piece");
        char lab[4 * TOKEN_LABEL_W + 16];
        int used = piece && piece->type == JSON_STR ? label_format(lab, sizeof lab, piece->str, piece->len, TOKEN_LABEL_W, u)
                                                    : snprintf(lab, sizeof lab, "?");
        buf_printf(b, "  %s%*s ", lab, TOKEN_LABEL_W - used, "");
        float lp = num_or_nan(t, "logprob");
        if (lp != lp) {
            buf_puts(b, "     -\n");
            continue;
        }
        double p = exp(lp);
        buf_printf(b, "%6.4f ", p);
        int e8 = (int)lround(p * TOKEN_BAR_W * 8), full = e8 / 8;
        for (int k = 0; k < full; k++) buf_puts(b, u ? "\u2588" : "#");
        if (u) buf_puts(b, eighths[e8 % 8]);
        buf_putc(b, '\n');
    }
}

// One item of `experiment show ID item=K condition=C`; u: UTF-8 bars.
static void take_item(ExpView *E, const Json *j, bool u) {
    const Json *runs = json_get(j, "runs");
    long long id = (long long)json_num_or(j, "experiment_id", 0);
    if (id != E->id) { // typed for another experiment: its table comes when the item closes
        table_free(E);
        E->id = id;
        snprintf(E->head, sizeof E->head, "experiment %lld", id);
    }
    E->item = (int)json_num_or(j, "item", 0);
    E->item_cond = (int)json_num_or(j, "condition", 0);
    E->correct = json_bool_or(j, "correct", false);
    E->item_pending = false;
    E->scroll = 0;
    const char *label = "";
    for (int i = 0; i < E->n; i++)
        if (E->cond[i] == E->item_cond) label = E->labels[i];
    snprintf(E->item_head, sizeof E->item_head, "item %d (of 0-%ld)  condition %d: %s", E->item, E->n_items - 1,
             E->item_cond, label);
    Buf *b = &E->body;
    b->len = 0;
    buf_printf(b, "input:   %s\ntarget:  %s\nanswer:  %s   (extracted from the output)\n", json_str_or(j, "input", ""),
               json_str_or(j, "target", ""), json_str_or(j, "answer", ""));
    size_t n = runs && runs->type == JSON_ARR ? runs->len : 0;
    for (size_t k = 0; k < n; k++) { // the prompt once (the samples share it), every output
        const Json *r = &runs->items[k];
        char t[160];
        if (k == 0) {
            snprintf(t, sizeof t, "prompt (%s, %.0f tokens of it reused from the shared prefix)",
                     json_str_or(r, "mode", "?"), json_num_or(r, "n_reused", 0));
            body_part(b, t, json_get(r, "prompt"));
        }
        if (n > 1)
            snprintf(t, sizeof t, "output of sample %.0f (run %.0f), answer: %s", json_num_or(r, "sample", 0),
                     json_num_or(r, "run_id", 0), json_str_or(r, "answer", ""));
        else snprintf(t, sizeof t, "output (run %.0f)", json_num_or(r, "run_id", 0));
        body_part(b, t, json_get(r, "text"));
        body_tokens(b, json_get(r, "tokens"), u);
    }
    if (!b->data) buf_puts(b, "");
}

static void exp_result(View *v, const ViewResult *r) {
    ExpView *E = v->state;
    if (!strcmp(r->cmd, "experiments")) {
        // the first show asked for the newest experiment: show it
        const Json *xs = r->json ? json_get(r->json, "experiments") : NULL;
        if (r->quiet && !E->id && xs && xs->type == JSON_ARR && xs->len) {
            char line[64];
            snprintf(line, sizeof line, "experiment show %.0f", json_num_or(&xs->items[0], "experiment_id", 0));
            v->host->run(v->host, line, VR_QUIET);
        }
        return;
    }
    if (strcmp(r->cmd, "experiment")) return;
    if (E->asked_next) {
        E->asked_next = 0;
        if (!r->json && r->quiet) { // ] past the newest: calm, as [ before the first
            bool none = !r->err || !strncmp(r->err, "no experiment ", 14); // else the database failed: said as an error
            v->host->message(v->host, !none, none ? "the newest experiment" : r->err);
            return;
        }
    }
    // the live experiment's command ended (its last progress report, finished, may have come
    // first: after Ctrl-C the header still said running)
    bool was_running = E->running || E->live;
    E->running = E->live = false;
    if (!r->json) {
        E->item_pending = false;
        if (was_running) snprintf(E->stopped, sizeof E->stopped, "%s", r->err ? r->err : "failed");
        if (was_running && E->id && E->id == E->prog.id) { // the live bars: reload them as stored
            char line[64];
            snprintf(line, sizeof line, "experiment show %lld", E->id);
            v->host->run(v->host, line, VR_QUIET);
        }
        return;
    }
    const Json *cs = json_get(r->json, "conditions");
    if (cs && cs->type == JSON_ARR) {
        E->stopped[0] = 0;
        take_table(E, r->json);
    } else if (json_get(r->json, "runs")) {
        take_item(E, r->json, v->host->sh->utf8);
    }
}

static void exp_progress(View *v, const ViewProgress *p) {
    ExpView *E = v->state;
    E->prog = *p;
    snprintf(E->what, sizeof E->what, "%s", p->what ? p->what : "");
    snprintf(E->detail, sizeof E->detail, "%s", p->detail ? p->detail : "");
    E->prog.what = E->what, E->prog.detail = E->detail;
    E->running = !p->finished;
    E->live = true; // until the command's result comes
    E->stopped[0] = 0;
    // the bars so far, unless an item is open (the table comes back when it closes)
    Err why = {{0}};
    Json *j = p->table && E->item < 0 ? json_parse(p->table, strlen(p->table), &why) : NULL;
    const Json *cs = j ? json_get(j, "conditions") : NULL;
    if (cs && cs->type == JSON_ARR) take_table(E, j);
    json_free(j);
}

static void exp_show(View *v) {
    ExpView *E = v->state;
    if (E->id || E->listed || E->running) return;
    E->listed = true;
    v->host->run(v->host, "experiments 1", VR_QUIET);
}

// Ask for item `item` of the selected condition.
static void open_item(View *v, int cond, int item) {
    ExpView *E = v->state;
    char line[96];
    snprintf(line, sizeof line, "experiment show %lld item=%d condition=%d", E->id, item, cond);
    E->item_pending = true;
    v->host->run(v->host, line, VR_QUIET);
}

static int exp_key(View *v, int key) {
    ExpView *E = v->state;
    char line[64];
    if (key == 'e') {
        v->host->edit(v->host, "experiment ", 0);
        return 1;
    }
    if (!E->id) return 0;
    if (E->item >= 0) { // an item open
        switch (key) {
        case VK_ESC: case VK_BACKSPACE:
            E->item = -1, E->item_pending = false;
            if (!E->n) {
                snprintf(line, sizeof line, "experiment show %lld", E->id);
                v->host->run(v->host, line, VR_QUIET);
            }
            return 1;
        case VK_UP: case 'k': if (E->scroll > 0) E->scroll--; return 1;
        case VK_DOWN: case 'j': E->scroll++; return 1;
        case VK_PGUP: E->scroll = E->scroll > 10 ? E->scroll - 10 : 0; return 1;
        case VK_PGDN: case ' ': E->scroll += 10; return 1;
        case VK_RIGHT: case 'n':
            if (E->item + 1 < E->n_items) open_item(v, E->item_cond, E->item + 1);
            else v->host->message(v->host, false, "the last item");
            return 1;
        case VK_LEFT: case 'p':
            if (E->item > 0) open_item(v, E->item_cond, E->item - 1);
            else v->host->message(v->host, false, "the first item");
            return 1;
        }
        return 0;
    }
    switch (key) {
    case VK_UP: case 'k': if (E->sel > 0) E->sel--; return 1;
    case VK_DOWN: case 'j': if (E->sel + 1 < E->n) E->sel++; return 1;
    case VK_HOME: case 'g': E->sel = 0; return 1;
    case VK_END: case 'G': E->sel = E->n ? E->n - 1 : 0; return 1;
    case VK_ENTER: case 'o':
        if (E->sel < E->n) open_item(v, E->cond[E->sel], 0);
        return 1;
    case 'r':
        snprintf(line, sizeof line, "experiment show %lld", E->id);
        v->host->run(v->host, line, VR_QUIET);
        return 1;
    case '[': case ']':
        if (key == '[' && E->id <= 1) {
            v->host->message(v->host, false, "the first experiment");
            return 1;
        }
        snprintf(line, sizeof line, "experiment show %lld", E->id + (key == ']' ? 1 : -1));
        E->asked_next = key == ']' ? E->id + 1 : 0;
        v->host->run(v->host, line, key == ']' ? VR_QUIET | VR_OWN_ERROR : VR_QUIET);
        return 1;
    }
    return 0;
}

// The progress bar (vd_progress) and what runs now.
static void draw_progress(ExpView *E, CellGrid *g, int x, int y, int w, bool u) {
    vd_progress(g, x, y, w, E->what, &E->prog, u);
    if (E->detail[0]) vd_printf(g, x, y + 1, w, CELL_DIM, u, "now: %s   (Ctrl-C stops; it resumes later)", E->detail);
}

static void draw_item(ExpView *E, CellGrid *g, int x, int y, int w, int h, bool u) {
    int c = vd_printf(g, x, y, w, CELL_BOLD, u, "%s  ", E->item_head);
    CellColor col = E->correct ? vd_accent(g->mode) : vd_error(g->mode);
    vd_text(g, x + c, y, w - c, E->correct ? "RIGHT" : "WRONG", 0, 5, col, CELLCOLOR_DEFAULT, CELL_BOLD | CELL_REVERSE, u);
    VdRow *rows = NULL;
    int nr = vd_wrap(E->body.data, E->body.len, w, u, &rows), bh = h - 1;
    if (E->scroll > nr - bh) E->scroll = nr - bh > 0 ? nr - bh : 0;
    for (int k = 0; k < bh && E->scroll + k < nr; k++) {
        const VdRow *r = &rows[E->scroll + k];
        bool heading = r->end - r->start > 3 && !memcmp(E->body.data + r->start, "-- ", 3);
        vd_text(g, x, y + 1 + k, w, E->body.data, r->start, r->end, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT,
                heading ? CELL_DIM | CELL_BOLD : 0, u);
    }
    free(rows);
}

static void exp_draw(View *v, CellGrid *g, int x, int y, int w, int h) {
    ExpView *E = v->state;
    bool u = v->host->sh->utf8;
    v->cur_x = v->cur_y = -1;
    int Y = y;
    if (E->running) {
        draw_progress(E, g, x, Y, w, u);
        Y += 3;
        if (E->prog.id != E->id) {
            vd_printf(g, x, Y, w, CELL_DIM, u, "the bars of experiment %lld appear when it finishes", E->prog.id);
            return;
        }
    } else if (E->stopped[0]) { // up to two rows of the message
        VdRow *rows = NULL;
        int nr = vd_wrap(E->stopped, strlen(E->stopped), w, u, &rows);
        for (int k = 0; k < nr && k < 2; k++, Y++)
            vd_text(g, x, Y, w, E->stopped, rows[k].start, rows[k].end, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, CELL_BOLD, u);
        free(rows);
        Y++;
    }
    if (!E->id) {
        vd_printf(g, x, Y, w, CELL_DIM, u, "%s", E->listed ? "no experiment yet" : "");
        vd_printf(g, x, Y + 1, w, CELL_DIM, u, "e types one: experiment TASK shots=0,1,3 cot=off,on seeds=1,2 limit=N");
        vd_printf(g, x, Y + 2, w, CELL_DIM, u, "(:tasks lists the tasks; :prompt show TASK shots=3 shows a prompt)");
        return;
    }
    vd_printf(g, x, Y, w, CELL_BOLD, u, "%s", E->head);
    if (E->item >= 0) {
        vd_printf(g, x, Y + 1, w, CELL_DIM, u, "%s", "n p next/previous item  j k scroll  Esc back to the bars");
        draw_item(E, g, x, Y + 2, w, y + h - Y - 2, u);
        return;
    }
    vd_printf(g, x, Y + 1, w, CELL_DIM, u, "%s",
              E->item_pending ? "loading the item..."
                              : "j k condition  Enter its items  [ ] other experiments  e new  :save F.svg");
    int bh = y + h - Y - 4; // the bars: a header row and a row per condition
    if (bh < 2) bh = 2;
    if (E->sel < E->top) E->top = E->sel;
    if (E->sel >= E->top + bh - 1) E->top = E->sel - (bh - 1) + 1;
    BarChart c = {E->n, (const char *const *)E->labels, E->acc, E->se, E->count, NULL};
    barchart_draw(g, x, Y + 2, w, bh, &c, E->sel, E->top, u);
    int rows = E->n - E->top < bh - 1 ? E->n - E->top : bh - 1;
    vd_printf(g, x, Y + 3 + rows, w, CELL_DIM, u,
              "accuracy %s standard error; error bars: 95%% confidence interval; n: items scored",
              u ? "\u00b1" : "+-");
}

const ViewOps exp_view_ops = {
    .name = "experiment",
    .title = "Experiments",
    .keys = "j k  up down  choose a condition\n"
            "Enter o  open its items one by one (experiment show ID item=K condition=C): outcome, input,\n"
            "         target, the answer extracted, the exact prompt and the output\n"
            "n p  right left  the next or previous item;  j k  scroll;  Esc  back to the bars\n"
            "[ ]  the previous or next experiment;  r  reload\n"
            "e  type a new experiment (experiment TASK shots=0,1,3 cot=off,on seeds=1,2 limit=N);\n"
            "   while it runs a progress bar shows the items done and the time left\n"
            ":save FILE.svg or FILE.csv  exports the bars",
    .open = exp_open,
    .close = exp_close,
    .draw = exp_draw,
    .key = exp_key,
    .show = exp_show,
    .result = exp_result,
    .progress = exp_progress,
};
