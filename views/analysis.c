// analysis.c - the Heads view: the result of the last `heads`, `lens`, `patch`, `probe train` or
// `layersim` command as a heatmap, one mode each (named on the mode line). heads: one statistic
// per layer x head (s picks which); lens: the probability of the final prediction (or the
// target) per layer x position, the top token under the cursor read out; patch: the fraction
// restored per site (s picks the residual stream, heads or MLPs); probe: held-out accuracy,
// control and selectivity per layer, the baseline and expected layer read out; layersim: CKA or
// mean cosine per pair of layers (s picks).
// Views never run the model: the view asks for `heads` on the lab's prompt (or `heads
// induction`) and draws what comes back.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heatmap.h"
#include "view.h"

enum { K_NONE, K_HEADS, K_LENS, K_PATCH, K_PROBE, K_SIM, K_N };
enum { N_STATS = 5, N_SITES = 3, MAX_MATS = 5 };

static const char *const k_stats[N_STATS] = {"entropy", "prev_token", "sink", "self", "induction"};
static const char *const k_sites[N_SITES] = {"resid", "heads", "mlp"};
static const char *const k_sims[2] = {"cka", "cosine"};
static const char *const k_modes[K_N] = {"", "heads", "lens", "patch", "probe", "layersim"};

typedef struct Mat {
    float *v;
    int rows, cols;
    char **rl, **cl;
} Mat;

typedef struct An {
    int kind;
    Mat m[MAX_MATS]; // heads: one per statistic; lens: one; patch: resid, heads, mlp
    int n_mats, cur;
    int site[MAX_MATS]; // patch: the site kind of each matrix (k_sites)
    char **lens_top; // lens: "piece p" per layer x position, for the readout
    char what[200];
    char note[200];  // probe: the baseline and expected layer, read out below the heatmap
    bool pending;
    HeatmapView hv;
    int last_zoom;
    bool fit_all; // = : the whole matrix reduced to the area, unlabelled if need be
} An;

static void labels_free(char **l, int n) {
    for (int i = 0; l && i < n; i++) free(l[i]);
    free(l);
}

static char **labels_new(int n, const char *prefix, int start) {
    char **l = calloc((size_t)n, sizeof *l);
    for (int i = 0; l && i < n; i++) {
        char s[32];
        if (!prefix) snprintf(s, sizeof s, i + start ? "%d" : "emb", i + start);
        else snprintf(s, sizeof s, "%s%d", prefix, i + start);
        l[i] = strdup(s);
    }
    return l;
}

static char **label_single(const char *s) {
    char **l = calloc(1, sizeof *l);
    if (l) l[0] = strdup(s);
    return l;
}

static char **labels_json(const Json *arr, int n) {
    char **l = calloc((size_t)n, sizeof *l);
    for (int i = 0; l && i < n; i++) {
        const Json *t = arr && (size_t)i < arr->len ? &arr->items[i] : NULL;
        l[i] = t && t->type == JSON_STR ? strndup(t->str, t->len) : strdup("");
    }
    return l;
}

static void data_free(An *A) {
    for (int i = 0; i < A->n_mats; i++) {
        free(A->m[i].v);
        labels_free(A->m[i].rl, A->m[i].rows);
        labels_free(A->m[i].cl, A->m[i].cols);
    }
    if (A->kind == K_LENS) labels_free(A->lens_top, A->m[0].rows * A->m[0].cols);
    memset(A->m, 0, sizeof A->m);
    A->lens_top = NULL;
    A->n_mats = 0;
    A->kind = K_NONE;
}

static int an_open(View *v) {
    An *A = calloc(1, sizeof *A);
    if (!A) return -1;
    A->hv = (HeatmapView){v->host->sh->mode, 0, 0, 0, 0, 0, 0};
    v->state = A;
    return 0;
}

static void an_close(View *v) {
    An *A = v->state;
    data_free(A);
    free(A);
}

static const char *mat_name(const An *A) {
    if (A->kind == K_HEADS) return k_stats[A->cur];
    if (A->kind == K_PATCH) return k_sites[A->site[A->cur]];
    if (A->kind == K_SIM) return k_sims[A->cur];
    if (A->kind == K_PROBE) return "accuracy, control, selectivity";
    return "probability";
}

static void publish(View *v) {
    An *A = v->state;
    if (A->kind == K_NONE) return;
    const Mat *m = &A->m[A->cur];
    char title[260];
    snprintf(title, sizeof title, "%s: %s", A->what, mat_name(A));
    v->host->figure(v->host, m->v, m->rows, m->cols, (const char *const *)m->rl, (const char *const *)m->cl,
                    A->kind == K_PATCH, title);
}

// A JSON array of arrays of numbers into a new matrix (NAN for null); 0 or -1.
static int mat_from(Mat *m, const Json *arr) {
    if (!arr || arr->type != JSON_ARR || !arr->len) return -1;
    bool nested = arr->items[0].type == JSON_ARR;
    int rows = nested ? (int)arr->len : 1, cols = nested ? (int)arr->items[0].len : (int)arr->len;
    if (!cols) return -1;
    m->v = malloc(sizeof(float) * (size_t)rows * cols);
    if (!m->v) return -1;
    for (int i = 0; i < rows; i++) {
        const Json *row = nested ? &arr->items[i] : arr;
        for (int c = 0; c < cols; c++) {
            const Json *x = row->type == JSON_ARR && (size_t)c < row->len ? &row->items[c] : NULL;
            m->v[(size_t)i * cols + c] = x && x->type == JSON_NUM ? (float)x->num : NAN;
        }
    }
    m->rows = rows, m->cols = cols;
    return 0;
}

static void take_heads(An *A, const Json *j) {
    int L = (int)json_num_or(j, "n_layer", 0), H = (int)json_num_or(j, "n_head", 0);
    const Json *hs = json_get(j, "heads");
    if (L <= 0 || H <= 0 || !hs || hs->type != JSON_ARR || hs->len != (size_t)L * H) return;
    data_free(A);
    A->kind = K_HEADS;
    for (int s = 0; s < N_STATS; s++) {
        Mat *m = &A->m[s];
        m->v = malloc(sizeof(float) * (size_t)L * H);
        m->rows = L, m->cols = H;
        m->rl = labels_new(L, "L", 0), m->cl = labels_new(H, "H", 0);
        for (int k = 0; m->v && k < L * H; k++) {
            const Json *x = json_get(&hs->items[k], k_stats[s]);
            m->v[k] = x && x->type == JSON_NUM ? (float)x->num : NAN;
        }
        A->n_mats++;
    }
    const char *stat = json_str_or(j, "stat", "entropy");
    A->cur = 0;
    for (int s = 0; s < N_STATS; s++)
        if (!strcmp(stat, k_stats[s])) A->cur = s;
    const Json *toks = json_get(j, "tokens");
    snprintf(A->what, sizeof A->what, "heads on %d tokens%s", toks ? (int)toks->len : 0,
             json_get(j, "seed") ? " (repeated random)" : "");
}

static void take_lens(An *A, const Json *j) {
    const Json *layers = json_get(j, "layers"), *toks = json_get(j, "tokens");
    if (!layers || layers->type != JSON_ARR || !layers->len || !toks || !toks->len) return;
    int L1 = (int)layers->len, T = (int)toks->len;
    data_free(A);
    A->kind = K_LENS;
    Mat *m = &A->m[0];
    m->v = malloc(sizeof(float) * (size_t)L1 * T);
    m->rows = L1, m->cols = T;
    m->rl = labels_new(L1, NULL, 0), m->cl = labels_json(toks, T);
    A->lens_top = calloc((size_t)L1 * T, sizeof *A->lens_top);
    A->n_mats = 1, A->cur = 0;
    for (int l = 0; l < L1; l++) {
        const Json *tp = json_get(&layers->items[l], "target_prob"), *top = json_get(&layers->items[l], "top");
        for (int t = 0; t < T; t++) {
            const Json *x = tp && (size_t)t < tp->len ? &tp->items[t] : NULL;
            if (m->v) m->v[(size_t)l * T + t] = x && x->type == JSON_NUM ? (float)x->num : NAN;
            const Json *best = top && (size_t)t < top->len && top->items[t].len ? &top->items[t].items[0] : NULL;
            if (A->lens_top && best) {
                char s[96];
                snprintf(s, sizeof s, "'%s' %.3f", json_str_or(best, "piece", "?"), json_num_or(best, "prob", 0));
                A->lens_top[(size_t)l * T + t] = strdup(s);
            }
        }
    }
    const Json *tg = json_get(j, "target");
    if (tg && tg->type == JSON_OBJ)
        snprintf(A->what, sizeof A->what, "logit lens, probability of '%s' per layer x position",
                 json_str_or(tg, "piece", "?"));
    else snprintf(A->what, sizeof A->what, "logit lens, probability of the final prediction per layer x position");
}

static void take_patch(An *A, const Json *j) {
    const Json *toks = json_get(j, "corrupt_tokens");
    Mat m[N_SITES] = {{0}};
    int kind[N_SITES], n = 0;
    for (int s = 0; s < N_SITES; s++) {
        const Json *x = json_get(j, k_sites[s]);
        if (!x || x->type == JSON_NULL) continue; // a kind sites= left out
        if (mat_from(&m[n], x)) {
            for (int k = 0; k < n; k++) free(m[k].v);
            return;
        }
        kind[n++] = s;
    }
    if (!n) return;
    data_free(A);
    A->kind = K_PATCH;
    for (int i = 0; i < n; i++) {
        Mat *x = &m[i];
        if (kind[i] == 0) x->rl = labels_new(x->rows, NULL, 0), x->cl = labels_json(toks, x->cols);
        else if (kind[i] == 1) x->rl = labels_new(x->rows, "L", 0), x->cl = labels_new(x->cols, "H", 0);
        else x->rl = label_single("MLP"), x->cl = labels_new(x->cols, "L", 0); // one row: each layer's MLP
        A->site[i] = kind[i];
    }
    memcpy(A->m, m, sizeof m);
    A->n_mats = n, A->cur = 0;
    const Json *an = json_get(j, "answer"), *wr = json_get(j, "wrong");
    snprintf(A->what, sizeof A->what, "patching: fraction of logit('%s') - logit('%s') restored",
             an ? json_str_or(an, "piece", "?") : "?", wr ? json_str_or(wr, "piece", "?") : "?");
}

static void take_probe(An *A, const Json *j) {
    const Json *layers = json_get(j, "layers");
    if (!layers || layers->type != JSON_ARR || !layers->len) return;
    int n = (int)layers->len;
    static const char *const cols[3] = {"accuracy", "control", "selectivity"};
    data_free(A);
    A->kind = K_PROBE;
    Mat *m = &A->m[0];
    m->v = malloc(sizeof(float) * (size_t)n * 3);
    m->rows = n, m->cols = 3;
    m->rl = calloc((size_t)n, sizeof *m->rl), m->cl = calloc(3, sizeof *m->cl);
    for (int c = 0; m->cl && c < 3; c++) m->cl[c] = strdup(cols[c]);
    for (int l = 0; l < n; l++) {
        const Json *o = &layers->items[l];
        int layer = (int)json_num_or(o, "layer", l);
        char t[16];
        snprintf(t, sizeof t, layer ? "%d" : "emb", layer);
        if (m->rl) m->rl[l] = strdup(t);
        for (int c = 0; m->v && c < 3; c++) {
            const Json *x = json_get(o, cols[c]);
            m->v[(size_t)l * 3 + c] = x && x->type == JSON_NUM ? (float)x->num : NAN;
        }
    }
    A->n_mats = 1, A->cur = 0;
    const Json *cl = json_get(j, "classes"), *ex = json_get(j, "expected_layer");
    snprintf(A->what, sizeof A->what, "probe on '%s' (%d %s rows, %d classes)", json_str_or(j, "dataset", "?"),
             (int)json_num_or(j, "rows", 0), json_str_or(j, "level", "?"), cl ? (int)cl->len : 0);
    char e[32] = "-";
    if (ex && ex->type == JSON_NUM) snprintf(e, sizeof e, "%.2f", ex->num);
    snprintf(A->note, sizeof A->note, "majority baseline %.3f, best layer %d, expected layer %s",
             json_num_or(j, "majority", NAN), (int)json_num_or(j, "best_layer", 0), e);
}

static void take_sim(An *A, const Json *j) {
    Mat m[2] = {{0}};
    for (int s = 0; s < 2; s++)
        if (mat_from(&m[s], json_get(j, k_sims[s])) || m[s].rows != m[s].cols) {
            free(m[0].v), free(m[1].v);
            return;
        }
    data_free(A);
    A->kind = K_SIM;
    for (int s = 0; s < 2; s++) m[s].rl = labels_new(m[s].rows, NULL, 0), m[s].cl = labels_new(m[s].cols, NULL, 0);
    memcpy(A->m, m, sizeof m);
    A->n_mats = 2, A->cur = 0;
    const Json *toks = json_get(j, "tokens");
    snprintf(A->what, sizeof A->what, "layer similarity on %d tokens, layer x layer", toks ? (int)toks->len : 0);
}

static void an_result(View *v, const ViewResult *r) {
    An *A = v->state;
    bool mine = !strcmp(r->cmd, "heads") || !strcmp(r->cmd, "lens") || !strcmp(r->cmd, "patch") ||
                !strcmp(r->cmd, "probe") || !strcmp(r->cmd, "layersim");
    if (!strcmp(r->cmd, "load") && r->json) {
        data_free(A);
        return;
    }
    if (!mine) return;
    A->pending = false;
    if (!r->json) return;
    if (!strcmp(r->cmd, "heads")) take_heads(A, r->json);
    else if (!strcmp(r->cmd, "lens")) take_lens(A, r->json);
    else if (!strcmp(r->cmd, "patch")) take_patch(A, r->json);
    else if (!strcmp(r->cmd, "layersim")) take_sim(A, r->json);
    else if (json_get(r->json, "layers")) take_probe(A, r->json); // probe train (probe data has no layers)
    else return;
    A->hv.cur_row = A->hv.cur_col = 0;
    publish(v);
}

// Run line for the view, with the host's flags: 0 after a key, as if typed (its first line on the
// status line, its output in the Log: the status line then speaks of what the view shows, not of
// the command before), VR_QUIET for what the view fetches by itself.
static void fetch(View *v, const char *line, unsigned flags) {
    An *A = v->state;
    A->pending = true;
    v->host->run(v->host, line, flags);
}

// Run cmd ("heads", "lens", "layersim") on the lab's prompt, or `heads induction` when there is
// none (flags as fetch's; a key is told why on the status line, which the command leaves as it is).
static void request(View *v, const char *cmd, unsigned flags) {
    ViewShared *sh = v->host->sh;
    Buf line = {0};
    if (sh->prompt.len) {
        buf_printf(&line, "%s ", cmd);
        buf_put_quoted(&line, sh->prompt.data, sh->prompt.len);
    } else if (strcmp(cmd, "heads")) { // the lens and layer similarity read a text
        char msg[160];
        snprintf(msg, sizeof msg, "%s needs a prompt: write one in the Lab (1, then e), or type :%s \"TEXT\"", cmd, cmd);
        v->host->message(v->host, false, msg);
        return;
    } else {
        buf_printf(&line, "heads induction");
        if (!(flags & VR_QUIET))
            v->host->message(v->host, false, "the lab's prompt is empty: r shows heads induction (repeated random tokens) "
                                             "instead; type one in the Lab (1, then e), or :heads \"TEXT\"");
        flags |= VR_QUIET;
    }
    fetch(v, line.data, flags);
    buf_free(&line);
}

static void an_show(View *v) {
    An *A = v->state;
    if (A->kind == K_NONE && !A->pending) request(v, "heads", VR_QUIET);
    publish(v);
}

static int clampi(int x, int lo, int hi) { return x < lo ? lo : x > hi ? hi : x; }

static int an_key(View *v, int key) {
    An *A = v->state;
    HeatmapView *hv = &A->hv;
    switch (key) {
    case VK_UP: case 'k': hv->cur_row--; break;
    case VK_DOWN: case 'j': hv->cur_row++; break;
    case VK_LEFT: case 'h': hv->cur_col--; break;
    case VK_RIGHT: case 'l': hv->cur_col++; break;
    case '+':
    case '-':
        hv->zoom = clampi((hv->zoom ? hv->zoom : A->last_zoom ? A->last_zoom : 1) + (key == '+' ? 1 : -1), 1, HM_ZOOM_MAX);
        A->fit_all = false;
        break;
    case '=': hv->zoom = 0, A->fit_all = !A->fit_all; break; // fit, reduced if need be (0 is view 0, as everywhere)
    case 's':
        if (A->n_mats > 1) {
            A->cur = (A->cur + 1) % A->n_mats;
            hv->cur_row = hv->cur_col = 0;
            publish(v);
        }
        break;
    case 'r': request(v, "heads", 0); break;
    case 'i': fetch(v, "heads induction", 0); break;
    case 'n': request(v, "lens", 0); break;
    case 'c': request(v, "layersim", 0); break;
    case 'p': fetch(v, "probe train number n=100", 0); break;
    default: return 0;
    }
    if (hv->cur_row < 0) hv->cur_row = 0;
    if (hv->cur_col < 0) hv->cur_col = 0;
    return 1;
}

static void an_draw(View *v, CellGrid *g, int x, int y, int w, int h) {
    An *A = v->state;
    ViewShared *sh = v->host->sh;
    v->cur_x = v->cur_y = -1;
    if (A->kind == K_NONE) {
        vd_printf(g, x, y, w, CELL_BOLD, sh->utf8, "Heads");
        vd_printf(g, x, y + 2, w, 0, sh->utf8, "%s",
                  A->pending ? "computing..."
                             : "no data: r heads on the lab's prompt, i induction, n logit lens, c layer similarity, "
                               "p probe, or :patch \"A\" \"B\"");
        return;
    }
    const Mat *m = &A->m[A->cur];
    // the mode line: every mode, the current one bold
    int X = x + vd_printf(g, x, y, w, CELL_DIM, sh->utf8, "mode:");
    for (int k = K_HEADS; k < K_N && X < x + w; k++)
        X += 1 + vd_printf(g, X + 1, y, x + w - X - 1, k == A->kind ? CELL_BOLD | CELL_REVERSE : CELL_DIM, sh->utf8,
                           "%s", k_modes[k]);
    vd_printf(g, X + 2, y, x + w - X - 2, CELL_DIM, sh->utf8, "%s r heads  i induction  n lens  c layersim  p probe  "
              "+/- = zoom", A->n_mats > 1 ? "s next" : "");
    y++, h--;
    vd_printf(g, x, y, w, CELL_BOLD, sh->utf8, "%s: %s", A->what, mat_name(A));
    int hh = h - 1;
    if (A->kind == K_PROBE) {
        hh--;
        vd_printf(g, x, y + h - 1, w, 0, sh->utf8, "%s", A->note);
    }
    if (A->kind == K_LENS) { // the top token under the cursor
        hh--;
        int r = clampi(A->hv.cur_row, 0, m->rows - 1), c = clampi(A->hv.cur_col, 0, m->cols - 1);
        const char *top = A->lens_top ? A->lens_top[(size_t)r * m->cols + c] : NULL;
        vd_printf(g, x, y + h - 1, w, 0, sh->utf8, "layer %d, position %d ('%s'): top token %s", r, c,
                  m->cl && m->cl[c] ? m->cl[c] : "", top ? top : "?");
    }
    Heatmap hm = {m->v, m->rows, m->cols, (const char *const *)m->rl, (const char *const *)m->cl,
                  A->kind == K_PATCH ? CMAP_DIVERGING : CMAP_SEQUENTIAL, 0, 0};
    A->hv.mode = sh->mode;
    heatmap_fit_or_scroll(&A->hv, &hm, w, hh, A->fit_all); // too big for the area: keep the labels, scroll
    HeatmapLayout lay;
    HeatmapView probe = A->hv;
    heatmap_layout(&lay, &hm, &probe, w, hh);
    A->last_zoom = lay.zoom;
    heatmap_render(g, x, y + 1, w, hh, &hm, &A->hv);
}

const ViewOps heads_view_ops = {
    .name = "heads",
    .title = "Heads",
    .abbrev = "Hd",
    .keys = "r  head statistics of the lab's prompt (layer x head; without a prompt: heads induction)\n"
            "i  head statistics on a repeated random sequence (the induction score)\n"
            "n  the logit lens of the lab's prompt (layer x position)\n"
            "c  layer similarity of the lab's prompt (CKA, cosine: layer x layer)\n"
            "p  a linear probe per layer on the built-in 'number' dataset (100 sentences)\n"
            "s  the next statistic (heads), site kind (patch: residual stream, heads, MLPs) or measure (CKA, cosine)\n"
            "arrows/hjkl move the cursor (value read out below), + - zoom, = fit (reduced) or back\n"
            ":heads, :lens, :patch, :probe train and :layersim show here, each in its mode (the mode line)",
    .open = an_open,
    .close = an_close,
    .draw = an_draw,
    .key = an_key,
    .show = an_show,
    .result = an_result,
};
