// train.c - the Training view: the curve of a training run (`train`, `reward train`) drawn as it
// grows, from the progress reports of the run in this session, or from the database (`curve
// [ID] [kind=reward]`): the training loss and the held-out loss against the step on one axis,
// a reward model's held-out pair accuracy on the line below, a progress bar with the time
// left while a run goes on. It draws results and runs nothing itself.
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

typedef struct TrainView {
    bool reward;     // a reward-model run (else a language-model one)
    long long id;    // the run (0: none yet)
    char head[320];  // "training run 3  gpt2  /path/out"
    Point *pts;
    int n, cap;
    bool running;
    ViewProgress prog;
    char what[64], detail[128];
    char **row_labels; // the steps, for save FILE.csv
} TrainView;

static int train_open(View *v) {
    v->state = xcalloc(1, sizeof(TrainView));
    return 0;
}

static void labels_free(TrainView *T) {
    for (int i = 0; T->row_labels && i < T->n; i++) free(T->row_labels[i]);
    free(T->row_labels);
    T->row_labels = NULL;
}

static void train_close(View *v) {
    TrainView *T = v->state;
    if (!T) return;
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

static void take_curve(View *v, const Json *j) {
    TrainView *T = v->state;
    T->reward = !strcmp(json_str_or(j, "kind", "train"), "reward");
    T->id = (long long)json_num_or(j, "id", 0);
    snprintf(T->head, sizeof T->head, "%s run %lld  %s  %s%s%s", T->reward ? "reward" : "training", T->id,
             json_str_or(j, "model_arch", "?"), json_str_or(j, "out_path", "?"), T->reward ? "  head " : "",
             T->reward ? json_str_or(j, "head", "?") : "");
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

static int train_key(View *v, int key) {
    TrainView *T = v->state;
    char line[64];
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
        v->host->run(v->host, line, VR_QUIET);
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
    int c = vd_printf(g, x, Y, w, 0, u, "%s loss", u ? "\u2022" : "*");
    if (last && isfinite(last->loss)) c += vd_printf(g, x + c, Y, w - c, CELL_BOLD, u, " %.4f", last->loss);
    if (last) c += vd_printf(g, x + c, Y, w - c, 0, u, " (step %d)", last->step);
    c += vd_printf(g, x + c, Y, w - c, 0, u, "   o held-out loss");
    if (isfinite(held)) c += vd_printf(g, x + c, Y, w - c, CELL_BOLD, u, " %.4f", held);
    if (isfinite(held)) c += vd_printf(g, x + c, Y, w - c, 0, u, " (step %d)", held_step);
    if (T->reward && isfinite(acc)) vd_printf(g, x + c, Y, w - c, 0, u, "   held-out pair accuracy %.3f", acc);
    Y += 2;
    if (y + h - Y >= 4) draw_chart(T, g, x, Y, w, y + h - Y, u);
}

const ViewOps train_view_ops = {
    .name = "train",
    .title = "Training",
    .keys = "r        the latest training run (or the shown one again)\n"
            "w        the latest reward-model run\n"
            "[ ]      the run before / after\n"
            "         :train FILE out=DIR draws its loss here as it goes; :curve ID shows a stored one",
    .open = train_open,
    .close = train_close,
    .draw = train_draw,
    .key = train_key,
    .result = train_result,
    .progress = train_progress,
};
