// train.c - the Training view: the curve of a training run (`train`, `reward train`) drawn as it
// grows, from the progress reports of the run in this session, or from the database (`curve
// [ID] [kind=reward]`): the training loss and the held-out loss against the step on one axis,
// a reward model's held-out pair accuracy on the line below, a progress bar with the time
// left while a run goes on; for a reward run, a panel of its held-out pairs (the rewards of
// chosen and rejected completions as histograms, the pairs it gets most wrong, each openable).
// It draws results and runs nothing itself.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "view.h"

typedef struct {
    int step;
    float loss, held, acc; // NAN: none at this step
} Point;

// A held-out pair of a reward run, as its final weights score it.
typedef struct HeldPair {
    char *prompt, *chosen, *rejected; // owned
    long long ranking;
    float rc, rr;
} HeldPair;

enum { MODE_CURVE, MODE_PAIRS, MODE_PAIR }; // the curve; a reward run's held-out pairs; one pair opened

typedef struct TrainView {
    bool reward;     // a reward-model run (else a language-model one)
    HeldPair *held;  // a reward run's held-out pairs, the most wrong first (largest r_rejected - r_chosen)
    int n_held;
    int mode, sel, top; // MODE_*; the pair under the cursor, the first one shown
    long long id;    // the run (0: none yet)
    bool asked_next; // ] asked for the run after it: none there is the newest shown, not an error
    char head[320];  // "training run 3  gpt2  /path/out"
    Point *pts;
    int n, cap;
    bool running;
    ViewProgress prog;
    char what[64], detail[128];
    char **row_labels; // the steps, for save FILE.csv
    int n_labels;      // how many (T->n may have changed since they were made)
} TrainView;

static int train_open(View *v) {
    v->state = xcalloc(1, sizeof(TrainView));
    return 0;
}

static void labels_free(TrainView *T) {
    for (int i = 0; T->row_labels && i < T->n_labels; i++) free(T->row_labels[i]);
    free(T->row_labels);
    T->row_labels = NULL;
    T->n_labels = 0;
}

static void held_free(TrainView *T) {
    for (int i = 0; i < T->n_held; i++) free(T->held[i].prompt), free(T->held[i].chosen), free(T->held[i].rejected);
    free(T->held);
    T->held = NULL;
    T->n_held = T->sel = T->top = 0;
    T->mode = MODE_CURVE;
}

static void train_close(View *v) {
    TrainView *T = v->state;
    if (!T) return;
    held_free(T);
    labels_free(T);
    free(T->pts);
    free(T);
}

// Add a point in step order; a step at or before the last one starts the curve again from
// there (a resumed run redoes the steps after its checkpoint).
static void add_point(TrainView *T, Point p) {
    while (T->n && T->pts[T->n - 1].step >= p.step) T->n--;
    if (T->n == T->cap) {
        T->cap = T->cap ? 2 * T->cap : 256;
        T->pts = xrealloc(T->pts, sizeof *T->pts * (size_t)T->cap);
    }
    T->pts[T->n++] = p;
}

static float num_or_nan(const Json *o, const char *key) {
    const Json *x = json_get(o, key);
    return x && x->type == JSON_NUM ? (float)x->num : NAN;
}

// Give the host the curve as the figure `save` exports: a row per point, step as its label.
static void publish(View *v) {
    TrainView *T = v->state;
    if (!T->n) return;
    float *m = xmalloc(sizeof *m * (size_t)T->n * 3);
    labels_free(T);
    T->row_labels = xcalloc((size_t)T->n, sizeof *T->row_labels);
    T->n_labels = T->n;
    for (int i = 0; i < T->n; i++) {
        m[3 * i] = T->pts[i].loss, m[3 * i + 1] = T->pts[i].held, m[3 * i + 2] = T->pts[i].acc;
        char s[16];
        snprintf(s, sizeof s, "%d", T->pts[i].step);
        T->row_labels[i] = xstrdup(s);
    }
    static const char *const cols[] = {"loss", "held-out loss", "held-out accuracy"};
    char title[96];
    snprintf(title, sizeof title, "%s run %lld", T->reward ? "reward" : "training", T->id);
    v->host->figure(v->host, m, T->n, 3, (const char *const *)T->row_labels, cols, false, title);
    free(m);
}

static int most_wrong_first(const void *a, const void *b) {
    const HeldPair *x = a, *y = b;
    float dx = x->rr - x->rc, dy = y->rr - y->rc;
    return (dx < dy) - (dx > dy);
}

// A reward run's held-out pairs from its curve (key "heldout"), the most wrong first.
static void take_held(TrainView *T, const Json *j) {
    int mode = T->mode;
    held_free(T);
    const Json *h = json_get(j, "heldout");
    if (!h || h->type != JSON_ARR || !h->len) return;
    T->held = xcalloc(h->len, sizeof *T->held);
    for (size_t i = 0; i < h->len; i++) {
        const Json *o = json_at(h, i);
        HeldPair *p = &T->held[T->n_held++];
        p->prompt = xstrdup(json_str_or(o, "prompt", ""));
        p->chosen = xstrdup(json_str_or(o, "chosen", ""));
        p->rejected = xstrdup(json_str_or(o, "rejected", ""));
        p->ranking = (long long)json_num_or(o, "ranking_id", 0);
        p->rc = num_or_nan(o, "r_chosen"), p->rr = num_or_nan(o, "r_rejected");
    }
    qsort(T->held, (size_t)T->n_held, sizeof *T->held, most_wrong_first);
    T->mode = mode == MODE_CURVE ? MODE_CURVE : MODE_PAIRS; // the same panel for the next run
}

static void take_curve(View *v, const Json *j) {
    TrainView *T = v->state;
    take_held(T, j);
    T->reward = !strcmp(json_str_or(j, "kind", "train"), "reward");
    T->id = (long long)json_num_or(j, "id", 0);
    const char *status = json_str_or(j, "status", NULL); // NULL: a run logged before it had one
    snprintf(T->head, sizeof T->head, "%s run %lld  %s  %s%s%s%s%s", T->reward ? "reward" : "training", T->id,
             json_str_or(j, "model_arch", "?"), json_str_or(j, "out_path", "?"), T->reward ? "  head " : "",
             T->reward ? json_str_or(j, "head", "?") : "", status ? "  " : "", status ? status : "");
    T->n = 0;
    const Json *pts = json_get(j, "points");
    for (size_t i = 0; pts && i < pts->len; i++) {
        const Json *o = json_at(pts, i);
        Point p = {(int)json_num_or(o, "step", 0), num_or_nan(o, "loss"),
                   num_or_nan(o, T->reward ? "heldout_loss" : "val_loss"), num_or_nan(o, "heldout_accuracy")};
        add_point(T, p);
    }
    publish(v);
}

static void train_result(View *v, const ViewResult *r) {
    TrainView *T = v->state;
    if (!strcmp(r->cmd, "curve") && T->asked_next) {
        T->asked_next = false;
        if (!r->json && r->quiet) { // ] past the newest: calm, as [ before the first
            bool none = !r->err || strstr(r->err, ": no training run") || strstr(r->err, ": no reward run"); // else the database failed: said as an error
            v->host->message(v->host, !none, none ? "the newest run" : r->err);
            return;
        }
    }
    if (!r->json) {
        if (!strcmp(r->cmd, "train") || (!strcmp(r->cmd, "reward") && r->arg && !strcmp(r->arg, "train")))
            T->running = false;
        return;
    }
    char line[64];
    if (!strcmp(r->cmd, "curve")) {
        take_curve(v, r->json);
    } else if (!strcmp(r->cmd, "train") && json_num_or(r->json, "train_run_id", 0) > 0) {
        T->running = false; // the whole curve as stored (a resumed run's earlier steps too)
        snprintf(line, sizeof line, "curve %lld", (long long)json_num_or(r->json, "train_run_id", 0));
        v->host->run(v->host, line, VR_QUIET);
    } else if (!strcmp(r->cmd, "reward") && json_num_or(r->json, "reward_run_id", 0) > 0) {
        T->running = false;
        snprintf(line, sizeof line, "curve %lld kind=reward", (long long)json_num_or(r->json, "reward_run_id", 0));
        v->host->run(v->host, line, VR_QUIET);
    }
}

static void train_progress(View *v, const ViewProgress *p) {
    TrainView *T = v->state;
    if (!p->point) return; // another long command's
    bool reward = p->what && !strncmp(p->what, "reward", 6);
    if (p->id != T->id || reward != T->reward || !T->running) { // a new run starts
        T->n = 0;
        held_free(T);
        T->id = p->id, T->reward = reward;
        snprintf(T->head, sizeof T->head, "%s run %lld (running)", reward ? "reward" : "training", p->id);
    }
    T->prog = *p;
    snprintf(T->what, sizeof T->what, "%s", p->what ? p->what : "");
    snprintf(T->detail, sizeof T->detail, "%s", p->detail ? p->detail : "");
    T->prog.what = T->what, T->prog.detail = T->detail;
    T->running = !p->finished;
    add_point(T, (Point){p->step, (float)p->loss, (float)p->held_loss, (float)p->held_acc});
}

// Keys of the held-out pairs panel and of an opened pair; 1 when used.
static int pairs_key(TrainView *T, int key) {
    if (T->mode == MODE_PAIR) {
        if (key == VK_ESC || key == VK_ENTER || key == 'p' || key == VK_BACKSPACE) T->mode = MODE_PAIRS;
        else if (key == 'n' && T->sel + 1 < T->n_held) T->sel++;
        else if (key == 'N' && T->sel > 0) T->sel--;
        else return 0;
        return 1;
    }
    switch (key) {
    case 'j': case VK_DOWN: if (T->sel + 1 < T->n_held) T->sel++; return 1;
    case 'k': case VK_UP: if (T->sel > 0) T->sel--; return 1;
    case VK_PGDN: T->sel = T->sel + 10 < T->n_held ? T->sel + 10 : T->n_held - 1; return 1;
    case VK_PGUP: T->sel = T->sel > 10 ? T->sel - 10 : 0; return 1;
    case VK_ENTER: T->mode = MODE_PAIR; return 1;
    case VK_ESC: T->mode = MODE_CURVE; return 1;
    }
    return 0;
}

static int train_key(View *v, int key) {
    TrainView *T = v->state;
    char line[64];
    if (key == 'p') {
        if (!T->reward || !T->n_held) {
            v->host->message(v->host, false, T->reward ? "this reward run has no held-out pairs stored"
                                                       : "p shows a reward run's held-out pairs (w: the latest reward run)");
            return 1;
        }
        T->mode = T->mode == MODE_CURVE ? MODE_PAIRS : MODE_CURVE;
        return 1;
    }
    if (T->mode != MODE_CURVE && pairs_key(T, key)) return 1;
    switch (key) {
    case 'r':
        if (T->id) snprintf(line, sizeof line, "curve %lld%s", T->id, T->reward ? " kind=reward" : "");
        else snprintf(line, sizeof line, "curve");
        v->host->run(v->host, line, VR_QUIET);
        return 1;
    case 'w':
        v->host->run(v->host, "curve kind=reward", VR_QUIET);
        return 1;
    case '[': case ']':
        if (!T->id || (key == '[' && T->id <= 1)) {
            v->host->message(v->host, false, T->id ? "the first run" : "no run shown: r shows the latest");
            return 1;
        }
        snprintf(line, sizeof line, "curve %lld%s", T->id + (key == ']' ? 1 : -1), T->reward ? " kind=reward" : "");
        T->asked_next = key == ']';
        v->host->run(v->host, line, key == ']' ? VR_QUIET | VR_OWN_ERROR : VR_QUIET);
        return 1;
    }
    return 0;
}

// The chart: loss and held-out loss against the step, the value axis on the left.
static void draw_chart(TrainView *T, CellGrid *g, int x, int y, int w, int h, bool u) {
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < T->n; i++) {
        if (isfinite(T->pts[i].loss)) lo = fminf(lo, T->pts[i].loss), hi = fmaxf(hi, T->pts[i].loss);
        if (isfinite(T->pts[i].held)) lo = fminf(lo, T->pts[i].held), hi = fmaxf(hi, T->pts[i].held);
    }
    if (!(hi >= lo)) {
        vd_printf(g, x, y, w, CELL_DIM, u, "no loss yet");
        return;
    }
    if (hi - lo < 1e-6f) hi = lo + 1e-3f, lo -= 1e-3f;
    const int ax = 9; // "  5.2345 " then the axis
    int pw = w - ax - 1, ph = h - 1;
    if (pw < 4 || ph < 2) return;
    for (int r = 0; r < ph; r++) {
        float val = hi - (hi - lo) * (float)r / (float)(ph - 1);
        if (r == 0 || r == ph - 1 || (ph > 8 && r == ph / 2)) vd_printf(g, x, y + r, ax, CELL_DIM, u, "%8.4f", val);
        cellgrid_put(g, x + ax, y + r, u ? "\u2502" : "|", 1, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, CELL_DIM);
    }
    int s0 = T->pts[0].step, s1 = T->pts[T->n - 1].step;
    if (s1 <= s0) s1 = s0 + 1;
    CellColor acc = vd_accent(g->mode), err = vd_error(g->mode);
    for (int pass = 0; pass < 2; pass++) // the held-out points over the training ones
        for (int i = 0; i < T->n; i++) {
            float val = pass ? T->pts[i].held : T->pts[i].loss;
            if (!isfinite(val)) continue;
            int cx = x + ax + 1 + (int)((double)(T->pts[i].step - s0) * (pw - 1) / (s1 - s0) + 0.5);
            int cy = y + (int)((double)(hi - val) * (ph - 1) / (hi - lo) + 0.5);
            cellgrid_put(g, cx, cy, pass ? "o" : u ? "\u2022" : "*", 1, pass ? err : acc, CELLCOLOR_DEFAULT,
                         pass ? CELL_BOLD : 0);
        }
    int by = y + ph;
    vd_printf(g, x + ax + 1, by, pw, CELL_DIM, u, "step %d", s0);
    char end[24];
    int el = snprintf(end, sizeof end, "step %d", T->pts[T->n - 1].step);
    if (pw > 2 * el + 2) vd_printf(g, x + ax + 1 + pw - el, by, el, CELL_DIM, u, "%s", end);
}

// Chosen and rejected rewards of the held-out pairs as two histograms over the same bins, one
// bin a row (the highest reward on top): chosen as full blocks, rejected as shaded ones.
static int draw_hist(TrainView *T, CellGrid *g, int x, int y, int w, int rows, bool u) {
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < T->n_held; i++) {
        float a = T->held[i].rc, b = T->held[i].rr;
        if (isfinite(a)) lo = fminf(lo, a), hi = fmaxf(hi, a);
        if (isfinite(b)) lo = fminf(lo, b), hi = fmaxf(hi, b);
    }
    if (!(hi >= lo) || rows < 2) return 0;
    if (hi - lo < 1e-6f) hi = lo + 1e-3f, lo -= 1e-3f;
    int nb = rows > 8 ? 8 : rows, cc[8] = {0}, cr[8] = {0}, most = 1;
    for (int i = 0; i < T->n_held; i++)
        for (int side = 0; side < 2; side++) {
            float val = side ? T->held[i].rr : T->held[i].rc;
            if (!isfinite(val)) continue;
            int b = (int)((val - lo) / (hi - lo) * nb);
            if (b >= nb) b = nb - 1;
            if (b < 0) b = 0;
            side ? cr[b]++ : cc[b]++;
        }
    for (int b = 0; b < nb; b++) most = cc[b] > most ? cc[b] : cr[b] > most ? cr[b] : most;
    const int lab = 19; // "-12.345 .. -10.123 "
    int bw = (w - lab - 8) / 2;
    if (bw < 3) return 0;
    CellColor acc = vd_accent(g->mode), err = vd_error(g->mode);
    for (int r = 0; r < nb; r++) {
        int b = nb - 1 - r;
        float b0 = lo + (hi - lo) * (float)b / (float)nb, b1 = lo + (hi - lo) * (float)(b + 1) / (float)nb;
        vd_printf(g, x, y + r, lab, CELL_DIM, u, "%7.3f..%7.3f", b0, b1);
        int nc = (cc[b] * bw + most - 1) / most, nr = (cr[b] * bw + most - 1) / most, X = x + lab;
        for (int k = 0; k < nc; k++) cellgrid_put(g, X + k, y + r, u ? "\u2588" : "#", 1, acc, CELLCOLOR_DEFAULT, 0);
        vd_printf(g, X + nc + (nc ? 1 : 0), y + r, 4, 0, u, "%d", cc[b]);
        X += bw + 4;
        for (int k = 0; k < nr; k++) cellgrid_put(g, X + k, y + r, u ? "\u2592" : "=", 1, err, CELLCOLOR_DEFAULT, 0);
        vd_printf(g, X + nr + (nr ? 1 : 0), y + r, 4, 0, u, "%d", cr[b]);
    }
    return nb;
}

// One line of text, its line breaks shown, cut to maxw columns.
static int draw_snippet(CellGrid *g, int x, int y, int maxw, const char *s, int attr, bool u) {
    return vd_text(g, x, y, maxw, s, 0, strlen(s), CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, attr, u);
}

// The held-out pairs panel: the reward distributions, then the pairs the model gets most wrong.
static void draw_pairs(TrainView *T, CellGrid *g, int x, int y, int w, int h, bool u) {
    int right = 0;
    double mc = 0, mr = 0;
    for (int i = 0; i < T->n_held; i++) right += T->held[i].rc > T->held[i].rr, mc += T->held[i].rc, mr += T->held[i].rr;
    vd_printf(g, x, y, w, 0, u, "%d held-out pairs, %d right (%.3f); mean reward: chosen %.3f, rejected %.3f",
              T->n_held, right, (double)right / T->n_held, mc / T->n_held, mr / T->n_held);
    CellColor acc = vd_accent(g->mode), err = vd_error(g->mode);
    int c = vd_printf(g, x, y + 1, w, CELL_DIM, u, "reward bins            ");
    cellgrid_put(g, x + c, y + 1, u ? "\u2588" : "#", 1, acc, CELLCOLOR_DEFAULT, 0);
    c += 1 + vd_printf(g, x + c + 1, y + 1, w - c - 1, CELL_DIM, u, " chosen");
    int bw = (w - 19 - 8) / 2;
    c = 19 + bw + 4 > c + 2 ? 19 + bw + 4 : c + 2;
    cellgrid_put(g, x + c, y + 1, u ? "\u2592" : "=", 1, err, CELLCOLOR_DEFAULT, 0);
    vd_printf(g, x + c + 1, y + 1, w - c - 1, CELL_DIM, u, " rejected");
    int rows = h >= 16 ? 8 : h - 8 > 2 ? h - 8 : 2;
    int used = draw_hist(T, g, x, y + 2, w, rows, u);
    int Y = y + 2 + used + 1;
    if (Y >= y + h) return;
    vd_printf(g, x, Y++, w, CELL_BOLD, u, "most wrong first (r_rejected - r_chosen)   j k move, Enter opens, p curve");
    int list_h = y + h - Y;
    if (list_h < 1) return;
    if (T->sel < T->top) T->top = T->sel;
    if (T->sel >= T->top + list_h) T->top = T->sel - list_h + 1;
    for (int r = 0; r < list_h && T->top + r < T->n_held; r++) {
        const HeldPair *p = &T->held[T->top + r];
        bool cur = T->top + r == T->sel;
        int attr = cur ? CELL_REVERSE : 0;
        if (cur)
            for (int k = 0; k < w; k++) cellgrid_put(g, x + k, Y + r, " ", 1, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, attr);
        int cx = vd_printf(g, x, Y + r, w, attr | (p->rr > p->rc ? CELL_BOLD : 0), u, "%+8.3f ", p->rr - p->rc);
        int pw = (w - cx) / 3;
        cx += draw_snippet(g, x + cx, Y + r, pw - 1, p->prompt, attr | CELL_DIM, u) + 1;
        cx += vd_printf(g, x + cx, Y + r, w - cx, attr, u, "| ");
        int rest = (w - cx) / 2;
        cx += draw_snippet(g, x + cx, Y + r, rest - 1, p->chosen, attr, u) + 1;
        cx += vd_printf(g, x + cx, Y + r, w - cx, attr, u, "| ");
        draw_snippet(g, x + cx, Y + r, w - cx, p->rejected, attr, u);
    }
}

// Wrapped text under a label; returns the rows used (at most maxh).
static int draw_wrapped(CellGrid *g, int x, int y, int w, int maxh, const char *s, bool u) {
    VdRow *rows = NULL;
    size_t n = strlen(s);
    int nr = vd_wrap(s, n, w, u, &rows), k;
    for (k = 0; k < nr && k < maxh; k++)
        vd_text(g, x, y + k, w, s, rows[k].start, rows[k].end, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, 0, u);
    free(rows);
    return k;
}

// One held-out pair opened: the prompt, both completions and both rewards.
static void draw_pair(TrainView *T, CellGrid *g, int x, int y, int w, int h, bool u) {
    const HeldPair *p = &T->held[T->sel];
    int Y = y, end = y + h;
    vd_printf(g, x, Y++, w, CELL_BOLD, u, "held-out pair %d of %d (ranking %lld): r_rejected - r_chosen %+.4f  %s",
              T->sel + 1, T->n_held, p->ranking, p->rr - p->rc,
              p->rr > p->rc ? "WRONG" : p->rr == p->rc ? "tied: not right" : "right"); // as the count above
    int share = (end - Y - 3) / 3 > 1 ? (end - Y - 3) / 3 : 1;
    if (Y < end) vd_printf(g, x, Y++, w, CELL_DIM, u, "prompt");
    Y += draw_wrapped(g, x + 2, Y, w - 2, end - Y < share ? end - Y : share, p->prompt, u);
    if (Y < end) vd_printf(g, x, Y++, w, 0, u, "chosen    reward %.4f", p->rc);
    Y += draw_wrapped(g, x + 2, Y, w - 2, end - Y < share ? end - Y : share, p->chosen, u);
    if (Y < end) vd_printf(g, x, Y++, w, 0, u, "rejected  reward %.4f", p->rr);
    Y += draw_wrapped(g, x + 2, Y, w - 2, end - Y - 1 > 0 ? end - Y - 1 : 0, p->rejected, u);
    if (Y < end) vd_printf(g, x, end - 1, w, CELL_DIM, u, "Esc back to the pairs   n N next/previous pair");
}

static void train_draw(View *v, CellGrid *g, int x, int y, int w, int h) {
    TrainView *T = v->state;
    bool u = v->host->sh->utf8;
    v->cur_x = v->cur_y = -1;
    if (!T->id && !T->running) {
        vd_printf(g, x, y, w, CELL_BOLD, u, "Training");
        static const char *const lines[] = {
            "No curve shown yet.",
            "  :train FILE out=DIR ...      trains a model; its loss is drawn here as it goes",
            "  :reward train out=DIR ...    the same for a reward model, with its held-out accuracy",
            "  r  the latest training run   w  the latest reward run   [ ]  the one before/after",
        };
        for (int i = 0; i < 4 && 2 + i < h; i++) vd_printf(g, x, y + 2 + i, w, i ? 0 : CELL_DIM, u, "%s", lines[i]);
        return;
    }
    vd_printf(g, x, y, w, CELL_BOLD, u, "%s", T->head);
    if (T->mode != MODE_CURVE && T->n_held && !T->running) {
        if (T->mode == MODE_PAIR) draw_pair(T, g, x, y + 1, w, h - 1, u);
        else draw_pairs(T, g, x, y + 1, w, h - 1, u);
        return;
    }
    int Y = y + 1;
    if (T->running) {
        vd_progress(g, x, Y, w, T->what, &T->prog, u);
        if (T->detail[0]) vd_printf(g, x, Y + 1, w, CELL_DIM, u, "now: %s   (Ctrl-C stops; train resumes later)", T->detail);
        Y += 2;
    }
    // the latest values, the legend
    const Point *last = T->n ? &T->pts[T->n - 1] : NULL;
    float held = NAN, acc = NAN;
    int held_step = 0;
    for (int i = T->n; i-- > 0 && !isfinite(held);)
        if (isfinite(T->pts[i].held)) held = T->pts[i].held, acc = T->pts[i].acc, held_step = T->pts[i].step;
    // in full when it fits (a reward run's is about 95 columns), else shorter: 80 columns hold it
    bool show_acc = T->reward && isfinite(acc);
    char full[200];
    snprintf(full, sizeof full, "* loss %.4f (step %d)   o held-out loss %.4f (step %d)%s%.3f", last ? last->loss : 0.0,
             last ? last->step : 0, held, held_step, show_acc ? "   held-out pair accuracy " : "", acc);
    bool brief = (int)strlen(full) > w;
    const char *gap = brief ? "  " : "   ";
    int c = vd_printf(g, x, Y, w, 0, u, "%s loss", u ? "\u2022" : "*");
    if (last && isfinite(last->loss)) c += vd_printf(g, x + c, Y, w - c, CELL_BOLD, u, " %.4f", last->loss);
    if (last) c += vd_printf(g, x + c, Y, w - c, 0, u, " (step %d)", last->step);
    c += vd_printf(g, x + c, Y, w - c, 0, u, "%so held-out%s", gap, brief ? "" : " loss");
    if (isfinite(held)) c += vd_printf(g, x + c, Y, w - c, CELL_BOLD, u, " %.4f", held);
    if (isfinite(held) && !(brief && last && held_step == last->step))
        c += vd_printf(g, x + c, Y, w - c, 0, u, " (step %d)", held_step);
    if (show_acc) vd_printf(g, x + c, Y, w - c, 0, u, "%s%s %.3f", gap, brief ? "pair accuracy" : "held-out pair accuracy", acc);
    if (T->n_held && !T->running)
        vd_printf(g, x, Y + 1, w, CELL_DIM, u, "p  the %d held-out pairs: chosen vs rejected rewards, the most wrong",
                  T->n_held);
    Y += 2;
    if (y + h - Y >= 4) draw_chart(T, g, x, Y, w, y + h - Y, u);
}

const ViewOps train_view_ops = {
    .name = "train",
    .title = "Training",
    .keys = "r        the latest training run (or the shown one again)\n"
            "w        the latest reward-model run\n"
            "[ ]      the run before / after\n"
            "p        a reward run's held-out pairs: the rewards of chosen and rejected completions as histograms,\n"
            "         the pairs it gets most wrong (largest r_rejected - r_chosen) first; j k move, Enter opens one\n"
            "         (prompt, both completions, both rewards; n N next/previous), Esc back\n"
            "         :train FILE out=DIR draws its loss here as it goes; :curve ID shows a stored one",
    .open = train_open,
    .close = train_close,
    .draw = train_draw,
    .key = train_key,
    .result = train_result,
    .progress = train_progress,
};
