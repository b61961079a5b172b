// test_views.c - the TUI views' pure parts against golden screens (tests/views/golden/view_*.txt,
// rewritten only with QKV_UPDATE_GOLDEN=1): the attention model-view thumbnail grid and head view,
// the rank list and the order it submits, the lab's streamed tokens and the generate line it
// runs, the history's runs and rankings lists and a ranking shown, the experiment's bars, item
// and progress bar, the text pane; and the helpers (wrapping, quoting) the views share. A fake host records
// the command lines views ask to run.
#include <errno.h>
#include <math.h>

#include "../check.h"
#include "../aslimit.h"
#include "barchart.h"
#include "base/utf8.h"
#include "golden.h"
#include "view.h"

// ---- golden screens ----

// Compare the text form of g with golden file view_NAME.txt.
static void golden(const char *name, const CellGrid *g) {
    char file[256];
    snprintf(file, sizeof file, "view_%s", name);
    golden_check(file, g);
}

// The rows of g as plain text, for substring checks.
static char *rows_text(const CellGrid *g) {
    Buf b = {0};
    for (int y = 0; y < g->h; y++) {
        for (int x = 0; x < g->w; x++) buf_puts(&b, g->cells[(size_t)y * g->w + x].g);
        buf_putc(&b, '\n');
    }
    return buf_take(&b);
}

// Whether the cell at (x, y) of g shows something: a glyph other than a space, a background
// colour or an attribute.
static bool painted(CellGrid *g, int x, int y) {
    const Cell *c = cellgrid_at(g, x, y);
    return c && (strcmp(c->g, " ") || !(c->flags & CELL_BG_DEFAULT) || c->attr);
}

// Whether row y of g holds text.
static bool row_has(const CellGrid *g, int y, const char *text) {
    Buf b = {0};
    for (int x = 0; y >= 0 && y < g->h && x < g->w; x++) buf_puts(&b, g->cells[(size_t)y * g->w + x].g);
    bool has = b.len && strstr(b.data, text) != NULL;
    if (!has) fprintf(stderr, "row %d is %s, not holding '%s'\n", y, b.len ? b.data : "(none)", text);
    buf_free(&b);
    return has;
}

// Whether g shows text on any row.
static bool grid_has(const CellGrid *g, const char *text) {
    char *txt = rows_text(g);
    bool has = strstr(txt, text) != NULL;
    free(txt);
    return has;
}

// ---- a fake host ----

typedef struct Fake {
    char runs[16][512];
    unsigned flags[16]; // the run flags of each
    int nrun;
    bool msg_err;       // the last message was an error
    char edit[256];
    int edit_back;
    char ask[256]; // "label|text|cmd" of the last ask
    char msg[256];
    int figures, fig_rows, fig_cols;
    char fig_title[160];
    char fig_rl[3][32], fig_cl[3][32]; // labels 0, 16 and 17 of the rows and columns ("" when none)
} Fake;

static Fake fake;
static ViewShared sh;

static void f_run(ViewHost *h, const char *line, unsigned flags) {
    (void)h;
    if (fake.nrun < 16) fake.flags[fake.nrun] = flags, snprintf(fake.runs[fake.nrun++], sizeof fake.runs[0], "%s", line);
}
static void f_message(ViewHost *h, bool err, const char *t) {
    (void)h;
    fake.msg_err = err;
    snprintf(fake.msg, sizeof fake.msg, "%s", t);
}
static void f_edit(ViewHost *h, const char *t, int back) {
    (void)h;
    snprintf(fake.edit, sizeof fake.edit, "%s", t);
    fake.edit_back = back;
}
static void f_ask(ViewHost *h, const char *label, const char *text, const char *cmd) {
    (void)h;
    snprintf(fake.ask, sizeof fake.ask, "%s|%s|%s", label, text, cmd);
}
static void f_figure(ViewHost *h, const float *v, int rows, int cols, const char *const *rl, const char *const *cl,
                     bool div, const char *title) {
    (void)h, (void)v, (void)div;
    fake.figures++, fake.fig_rows = rows, fake.fig_cols = cols;
    snprintf(fake.fig_title, sizeof fake.fig_title, "%s", title);
    static const int at[3] = {0, 16, 17};
    for (int k = 0; k < 3; k++) {
        snprintf(fake.fig_rl[k], sizeof fake.fig_rl[k], "%s", rl && at[k] < rows && rl[at[k]] ? rl[at[k]] : "");
        snprintf(fake.fig_cl[k], sizeof fake.fig_cl[k], "%s", cl && at[k] < cols && cl[at[k]] ? cl[at[k]] : "");
    }
}
static void f_open(ViewHost *h, const char *name) { (void)h, (void)name; }

static ViewHost host = {&sh, NULL, f_run, f_message, f_edit, f_ask, f_figure, f_open};

static void reset(ColorMode mode) {
    memset(&fake, 0, sizeof fake);
    buf_free(&sh.prompt);
    iv_free(&sh.seq);
    memset(&sh, 0, sizeof sh);
    snprintf(sh.model, sizeof sh.model, "test-model");
    snprintf(sh.arch, sizeof sh.arch, "gpt2");
    sh.n_layer = 3, sh.n_head = 2, sh.n_embd = 16, sh.n_ctx = 64;
    sh.causal = true;
    sh.mode = mode;
    sh.utf8 = mode != CMODE_ASCII;
}

static void draw(View *v, CellGrid *g, int w, int h) {
    cellgrid_init(g, w, h, sh.mode);
    v->ops->draw(v, g, 0, 0, w, h);
}

// Whether v drawn at w x h shows every text of want (NULL-ended); the screen is printed when not.
static bool shows(View *v, int w, int h, const char *const *want) {
    CellGrid g;
    draw(v, &g, w, h);
    char *txt = rows_text(&g);
    bool all = true;
    for (int i = 0; want[i]; i++) all &= strstr(txt, want[i]) != NULL;
    if (!all) fprintf(stderr, "the screen lacks an expected text:\n%s", txt);
    free(txt);
    cellgrid_done(&g);
    return all;
}

// Whether the drawn view lacks text (the screen printed when it does not).
static bool lacks(View *v, int w, int h, const char *text) {
    CellGrid g;
    draw(v, &g, w, h);
    char *txt = rows_text(&g);
    bool none = !strstr(txt, text);
    if (!none) fprintf(stderr, "the screen still shows '%s':\n%s", text, txt);
    free(txt);
    cellgrid_done(&g);
    return none;
}

// A view result from JSON text.
static void result(View *v, const char *cmd, const char *json, const char *line) {
    Err e = {{0}};
    Json *j = json_parse(json, strlen(json), &e);
    if (!j) {
        fprintf(stderr, "bad test JSON: %s\n", e.msg);
        check_failures++;
        return;
    }
    ViewResult r = {cmd, line, NULL, 0, j, NULL, "", false};
    v->ops->result(v, &r);
    json_free(j);
}

// The same with the human form and the quiet flag as the host hands them over.
static void result_full(View *v, const char *cmd, const char *json, const char *line, const char *text, bool quiet) {
    Json *j = json_parse(json, strlen(json), NULL);
    CHECK(j != NULL);
    ViewResult r = {cmd, line, NULL, 0, j, NULL, text, quiet};
    v->ops->result(v, &r);
    json_free(j);
}

// A command's result with its first argument's text, as the host hands it over.
static void result_arg(View *v, const char *cmd, const char *line, const char *arg, const char *json) {
    Json *j = json_parse(json, strlen(json), NULL);
    CHECK(j != NULL);
    ViewResult r = {cmd, line, arg, strlen(arg), j, NULL, "", false};
    v->ops->result(v, &r);
    json_free(j);
}

// A failed command's result as the host hands it over (no JSON, the message).
static void result_err(View *v, const char *cmd, const char *line, const char *err, bool quiet) {
    ViewResult r = {cmd, line, NULL, 0, NULL, err, "", quiet};
    v->ops->result(v, &r);
}

// ---- the Heads view's probe and layersim modes ----

static void test_analysis_modes(void) {
    reset(CMODE_ASCII);
    View v;
    CHECK_INT(view_open(&v, &heads_view_ops, &host), 0);
    result(&v, "probe",
           "{\"dataset\":\"number\",\"level\":\"token\",\"rows\":120,\"classes\":[\"O\",\"num\"],"
           "\"majority\":0.9,\"layers\":[{\"layer\":0,\"accuracy\":0.91,\"control\":0.9,\"selectivity\":0.01},"
           "{\"layer\":1,\"accuracy\":0.95,\"control\":0.88,\"selectivity\":0.07},"
           "{\"layer\":2,\"accuracy\":0.99,\"control\":0.9,\"selectivity\":0.09}],"
           "\"best_layer\":2,\"expected_layer\":1.5}",
           "probe train number");
    CHECK_INT(fake.figures, 1);
    CHECK_INT(fake.fig_rows, 3);
    CHECK_INT(fake.fig_cols, 3);
    CellGrid g;
    draw(&v, &g, 100, 14);
    char *txt = rows_text(&g);
    CHECK(strstr(txt, "mode: heads lens patch probe layersim") != NULL);
    CHECK(strstr(txt, "probe on 'number' (120 token rows, 2 classes): accuracy, control, selectivity") != NULL);
    CHECK(strstr(txt, "majority baseline 0.900, best layer 2, expected layer 1.50") != NULL);
    CHECK(strstr(txt, "emb") != NULL && strstr(txt, "selectivity") != NULL);
    free(txt);
    cellgrid_done(&g);
    // probe data has no layers: the probe stays
    result(&v, "probe", "{\"dataset\":\"number\",\"file\":\"x.jsonl\",\"examples\":3}", "probe data number x.jsonl");
    CHECK_INT(fake.figures, 1);
    // layersim: CKA, then s for the cosine
    result(&v, "layersim",
           "{\"tokens\":[\"a\",\"b\",\"c\",\"d\"],\"layers\":2,\"cka\":[[1,0.5],[0.5,1]],"
           "\"cosine\":[[1,0.25],[0.25,1]]}",
           "layersim \"abcd\"");
    CHECK_INT(fake.fig_rows, 2);
    CHECK(strstr(fake.fig_title, "layer similarity on 4 tokens, layer x layer: cka") != NULL);
    draw(&v, &g, 100, 12);
    txt = rows_text(&g);
    CHECK(strstr(txt, "layer similarity on 4 tokens, layer x layer: cka") != NULL);
    free(txt);
    cellgrid_done(&g);
    CHECK_INT(v.ops->key(&v, 's'), 1);
    CHECK(strstr(fake.fig_title, ": cosine") != NULL);
    // r without a prompt in the lab: heads induction, and why (it did so without a word, and the
    // view often showed heads induction already)
    CHECK_INT(v.ops->key(&v, 'r'), 1);
    CHECK_INT(fake.nrun, 1);
    CHECK_STR(fake.runs[0], "heads induction");
    CHECK(strstr(fake.msg, "the lab's prompt is empty: r shows heads induction") != NULL);
    fake.nrun = 0;
    // the keys ask for the commands
    buf_puts(&sh.prompt, "hi there");
    CHECK_INT(v.ops->key(&v, 'c'), 1);
    CHECK_INT(v.ops->key(&v, 'p'), 1);
    CHECK_INT(fake.nrun, 2);
    CHECK_STR(fake.runs[0], "layersim \"hi there\"");
    CHECK_STR(fake.runs[1], "probe train number n=100");
    // patch with sites=mlp: one row, each layer's MLP (the row read 'MLP0')
    result(&v, "patch",
           "{\"corrupt_tokens\":[\"a\",\"b\"],\"resid\":null,\"heads\":null,\"mlp\":[0.5,0.25,0.125]}",
           "patch \"a b\" \"a c\" sites=mlp");
    CHECK(shows(&v, 100, 14, (const char *[]){"MLP", "L2", NULL}) && lacks(&v, 100, 14, "MLP0"));
    view_close(&v);

    // a map taller than the area (SmolLM2's 30 layers x 9 heads at 60 x 15): labelled and scrolled
    // to the cursor, not reduced to blocks of cells without labels or cursor (5 columns of 2 x 2
    // blocks before 2026-12-07); = asks for the reduced overview, = again goes back
    CHECK_INT(view_open(&v, &heads_view_ops, &host), 0);
    Buf hj = {0};
    buf_puts(&hj, "{\"n_layer\":30,\"n_head\":9,\"stat\":\"entropy\",\"tokens\":[\"a\",\"b\"],\"heads\":[");
    for (int k = 0; k < 30 * 9; k++) buf_printf(&hj, "%s{\"entropy\":%g}", k ? "," : "", (double)(k % 17) / 17);
    buf_puts(&hj, "]}");
    result(&v, "heads", hj.data, "heads \"a b\"");
    buf_free(&hj);
    CHECK(shows(&v, 60, 12, (const char *[]){"L0 ", "L2 ", NULL}));
    for (int i = 0; i < 25; i++) v.ops->key(&v, 'j');
    CHECK(shows(&v, 60, 12, (const char *[]){"L24", "(25,0) L25", NULL}) && lacks(&v, 60, 12, "L0 "));
    CHECK_INT(v.ops->key(&v, '='), 1);
    CHECK(lacks(&v, 60, 12, "L24"));
    CHECK_INT(v.ops->key(&v, '='), 1);
    CHECK(shows(&v, 60, 12, (const char *[]){"L24", NULL}));
    view_close(&v);
}

// ---- attention ----

enum { L = 3, HH = 2, T = 6 };
static const char *const toks[T] = {"The", " cat", " sat", "\n", "on", "\t!"};

// Causal rows: a sink on token 0 (layer 0), the previous token (layer 1), uniform (layer 2).
static void attn_data(float *d) {
    for (int l = 0; l < L; l++)
        for (int h = 0; h < HH; h++)
            for (int r = 0; r < T; r++) {
                float *row = d + (((size_t)l * HH + h) * T + r) * T;
                float s = 0;
                for (int c = 0; c < T; c++) {
                    float x = c > r ? 0 : l == 0 ? (c == 0 ? 4.0f : 1.0f + h) : l == 1 ? (c == r - 1 ? 5.0f : 1.0f) : 1.0f;
                    row[c] = x, s += x;
                }
                for (int c = 0; c < T; c++) row[c] = c > r ? NAN : row[c] / s;
            }
}

// A deep model's grid at a wide screen (30 layers x 9 heads of 99 tokens at 250 x 70): thumbnails
// about as tall as wide, the grid scrolling, not 30 rows of maps 4 cells wide in 24-cell slots.
static void test_attention_deep(void) {
    enum { DL = 30, DH = 9, DT = 99 };
    float *d = malloc(sizeof(float) * DL * DH * DT * DT);
    const char **tk = malloc(sizeof(char *) * DT);
    for (int i = 0; i < DT; i++) tk[i] = "w";
    for (size_t m = 0; m < (size_t)DL * DH; m++)
        for (int r = 0; r < DT; r++)
            for (int c = 0; c < DT; c++) d[(m * DT + r) * DT + c] = c > r ? NAN : 1.0f / (float)(r + 1);
    reset(CMODE_C256);
    View v;
    CHECK_INT(view_open(&v, &attn_view_ops, &host), 0);
    attn_view_set(&v, DL, DH, DT, d, tk);
    CellGrid g;
    draw(&v, &g, 250, 70);
    char *txt = rows_text(&g);
    CHECK(strstr(txt, "layers 0-4 of 30") != NULL);
    // L0's thumbnail (from the grid's first row, in its first column): 8 rows of map or more
    int rows = 0;
    while (2 + rows < g.h && strcmp(g.cells[(size_t)(2 + rows) * g.w + 4].g, " ")) rows++;
    if (rows < 8) fprintf(stderr, "deep model view: L0 h0's map is %d rows tall\n%s\n", rows, txt);
    CHECK(rows >= 8);
    free(txt);
    cellgrid_done(&g);
    view_close(&v);
    free(d);
    free(tk);
}

static void test_attention(void) {
    static const ColorMode modes[] = {CMODE_C256, CMODE_ASCII};
    static const char *const names[] = {"256", "ascii"};
    float data[L * HH * T * T];
    attn_data(data);
    for (int m = 0; m < 2; m++) {
        reset(modes[m]);
        View v;
        CHECK_INT(view_open(&v, &attn_view_ops, &host), 0);
        attn_view_set(&v, L, HH, T, data, toks);
        CellGrid g;
        char name[64];
        draw(&v, &g, 60, 16);
        snprintf(name, sizeof name, "attn_model_%s", names[m]);
        golden(name, &g);
        char *txt = rows_text(&g);
        CHECK(strstr(txt, "model view: 3 layers x 2 heads + mean") != NULL);
        CHECK(strstr(txt, "L2") != NULL && strstr(txt, "h1") != NULL && strstr(txt, "mean") != NULL);
        free(txt);
        cellgrid_done(&g);
        // move to layer 1, the mean column, and zoom in
        CHECK_INT(v.ops->key(&v, VK_DOWN), 1);
        CHECK_INT(v.ops->key(&v, VK_END), 1);
        CHECK_INT(v.ops->key(&v, VK_ENTER), 1);
        draw(&v, &g, 60, 16);
        txt = rows_text(&g);
        CHECK(strstr(txt, "layer 1/2  mean of 2 heads") != NULL);
        free(txt);
        cellgrid_done(&g);
        CHECK(v.ops->key(&v, '<') == 1); // head 1 of layer 1: the previous-token head
        CHECK(v.ops->key(&v, VK_DOWN) == 1 && v.ops->key(&v, VK_DOWN) == 1 && v.ops->key(&v, VK_RIGHT) == 1);
        draw(&v, &g, 60, 16);
        snprintf(name, sizeof name, "attn_head_%s", names[m]);
        golden(name, &g);
        txt = rows_text(&g);
        // (2,1): " sat" attending to " cat" = 5/7
        char want[64];
        snprintf(want, sizeof want, "(2,1) %s %s %s = 0.7143", m ? "_sat" : "\u00B7sat", m ? "x" : "\u00D7",
                 m ? "_cat" : "\u00B7cat");
        if (!strstr(txt, want)) {
            fprintf(stderr, "readout %s not on screen:\n%s", want, txt);
            check_failures++;
        }
        free(txt);
        cellgrid_done(&g);
        CHECK(fake.figures > 0);
        CHECK_INT(fake.fig_rows, T);
        CHECK_STR(fake.fig_title, "test-model: layer 1 head 1 (rows: queries, columns: keys)");
        view_close(&v);
    }
}

// The Lab's `a` after an :attention command of another text: the Lab's run is asked for (the
// typed text's map stayed, the cursor on a row of it).
static void test_attention_lab_after_typed(void) {
    reset(CMODE_C256);
    View v;
    CHECK_INT(view_open(&v, &attn_view_ops, &host), 0);
    int run[] = {1, 2, 3};
    for (int i = 0; i < 3; i++) iv_push(&sh.seq, run[i]);
    sh.n_prompt = 2, sh.run_id = 9, sh.version = 1;
    result(&v, "attention",
           "{\"tokens\":[\"Hello\",\" world\"],\"ids\":[7,8],\"layer\":1,\"head\":1,\"matrix\":[[1,0],[0.5,0.5]]}",
           "attention \"Hello world\" layer=1 head=1");
    CHECK(shows(&v, 80, 14, (const char *[]){"2 tokens", NULL}));
    int n0 = fake.nrun;
    sh.focus = 3; // the Lab's `a` on its second generated token
    v.ops->show(&v);
    CHECK_INT(fake.nrun, n0 + 1);
    CHECK(!strncmp(fake.runs[n0], "attention ids=1,2,3 ", 20));
    result_full(&v, "attention",
                "{\"tokens\":[\"a\",\"b\",\"c\"],\"ids\":[1,2,3],\"layer\":1,\"head\":1,"
                "\"matrix\":[[1,0,0],[0.5,0.5,0],[0.2,0.3,0.5]]}",
                fake.runs[n0], "", true);
    CHECK(shows(&v, 80, 14, (const char *[]){"run #9: 2 prompt + 1 generated tokens", "(2,2) c ", NULL}));
    view_close(&v);
}

// A 12 x 12 model view: every thumbnail drawn, the grid scrolls to the selection.
static void test_attention_big(void) {
    reset(CMODE_C256);
    sh.n_layer = 12, sh.n_head = 12;
    int n = 12 * 12 * 16 * 16;
    float *d = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) d[i] = (float)((i * 37) % 101) / 100.0f;
    const char *t16[16];
    for (int i = 0; i < 16; i++) t16[i] = "x";
    View v;
    view_open(&v, &attn_view_ops, &host);
    attn_view_set(&v, 12, 12, 16, d, t16);
    CellGrid g;
    draw(&v, &g, 80, 20);
    char *txt = rows_text(&g);
    CHECK(strstr(txt, "L0") && strstr(txt, "h0"));
    free(txt);
    // 17 rows for the grid: not 12 maps of one row each (17 / 12) but 5 of two rows and a blank
    // one, the footer saying which
    CHECK(painted(&g, 4, 2) && painted(&g, 4, 3) && !painted(&g, 4, 4) && painted(&g, 4, 5));
    CHECK(row_has(&g, 2, "L0") && row_has(&g, 5, "L1") && row_has(&g, 14, "L4") && !grid_has(&g, "L5"));
    CHECK(row_has(&g, 19, "layer 0 head 0: largest weight 1.0000  layers 0-4 of 12  (each thumbnail"));
    cellgrid_done(&g);
    // PgDn and PgUp move a screen of layers: the next five shown, the selection on the first
    v.ops->key(&v, VK_PGDN);
    draw(&v, &g, 80, 20);
    CHECK(row_has(&g, 19, "layer 5 head 0: largest weight") && row_has(&g, 19, "layers 5-9 of 12  ("));
    cellgrid_done(&g);
    v.ops->key(&v, VK_PGDN);
    draw(&v, &g, 80, 20);
    CHECK(row_has(&g, 19, "layer 10 head 0: largest weight") && row_has(&g, 19, "layers 7-11 of 12  ("));
    cellgrid_done(&g);
    v.ops->key(&v, VK_PGUP);
    draw(&v, &g, 80, 20);
    CHECK(row_has(&g, 19, "layer 5 head 0: largest weight") && row_has(&g, 19, "layers 2-6 of 12  ("));
    cellgrid_done(&g);
    v.ops->key(&v, VK_PGUP);
    v.ops->key(&v, VK_PGUP);
    draw(&v, &g, 80, 20);
    CHECK(row_has(&g, 19, "layer 0 head 0: largest weight") && row_has(&g, 19, "layers 0-4 of 12  ("));
    cellgrid_done(&g);
    for (int i = 0; i < 11; i++) v.ops->key(&v, VK_DOWN);
    for (int i = 0; i < 12; i++) v.ops->key(&v, VK_RIGHT);
    draw(&v, &g, 80, 20);
    txt = rows_text(&g);
    CHECK(strstr(txt, "L11") != NULL);
    CHECK(strstr(txt, "mean") != NULL);
    CHECK(strstr(txt, "layer 11 mean over heads") != NULL);
    CHECK(strstr(txt, "layers 7-11 of 12  (") != NULL && !strstr(txt, "L6"));
    free(txt);
    cellgrid_done(&g);
    // the head view: a to the mean and back to the head it left (it went to head 0)
    for (int i = 0; i < 9; i++) v.ops->key(&v, VK_LEFT);
    v.ops->key(&v, VK_ENTER);
    const char *const heads[] = {"layer 11/11  head 3/11", "layer 11/11  mean of 12 heads", "layer 11/11  head 3/11"};
    for (int i = 0; i < 3; i++) {
        if (i) v.ops->key(&v, 'a');
        draw(&v, &g, 80, 20);
        txt = rows_text(&g);
        if (!strstr(txt, heads[i])) fprintf(stderr, "after %d a: no '%s' in\n%s\n", i, heads[i], txt);
        CHECK(strstr(txt, heads[i]) != NULL);
        free(txt);
        cellgrid_done(&g);
    }
    v.ops->key(&v, 'm');
    // every size down to one cell: nothing drawn outside the view's rectangle
    for (int w = 1; w <= 24; w++)
        for (int h = 1; h <= 9; h++) {
            cellgrid_init(&g, w + 4, h + 4, sh.mode);
            v.ops->draw(&v, &g, 2, 2, w, h);
            for (int y = 0; y < h + 4; y++)
                for (int x = 0; x < w + 4; x++)
                    if ((x < 2 || y < 2 || x >= w + 2 || y >= h + 2) && painted(&g, x, y)) {
                        fprintf(stderr, "the model view at %dx%d drew at (%d,%d) outside its area\n", w, h, x - 2, y - 2);
                        check_failures++;
                        x = w + 4, y = h + 4;
                    }
            cellgrid_done(&g);
        }
    // the model view's figure (every map, a blank row and column between two): each row named by
    // its layer and query token, each column by its head and key token
    CHECK_INT(fake.fig_rows, 12 * 17 - 1);
    CHECK_INT(fake.fig_cols, 13 * 17 - 1);
    CHECK_STR(fake.fig_rl[0], "L0 x");
    CHECK_STR(fake.fig_rl[1], "");
    CHECK_STR(fake.fig_rl[2], "L1 x");
    CHECK_STR(fake.fig_cl[0], "h0 x");
    CHECK_STR(fake.fig_cl[2], "h1 x");
    view_close(&v);
    free(d);
}

// A model view of 24 heads in 80 columns: 19 of the 25 columns fit, the footer names them.
static void test_attention_wide(void) {
    reset(CMODE_C256);
    sh.n_layer = 2, sh.n_head = 24;
    float d[2 * 24 * 2 * 2];
    for (int i = 0; i < 2 * 24; i++) d[4 * i] = 1, d[4 * i + 1] = NAN, d[4 * i + 2] = 0.5f, d[4 * i + 3] = 0.5f;
    const char *t2[2] = {"a", "b"};
    View v;
    view_open(&v, &attn_view_ops, &host);
    attn_view_set(&v, 2, 24, 2, d, t2);
    CellGrid g;
    draw(&v, &g, 80, 20);
    CHECK(row_has(&g, 19, "layer 0 head 0: largest weight 1.0000  heads 0-18 of 24  ("));
    cellgrid_done(&g);
    v.ops->key(&v, VK_END);
    draw(&v, &g, 80, 20);
    CHECK(row_has(&g, 19, "layer 0 mean over heads: largest weight 1.0000  heads 6-23 of 24 + mean  ("));
    cellgrid_done(&g);
    draw(&v, &g, 80, 6); // three rows for the grid: one layer of two rows
    CHECK(row_has(&g, 5, "layer 0 mean over heads: largest weight 1.0000  layer 0 of 2, heads 6-23 of 24"));
    cellgrid_done(&g);
    view_close(&v);
}

// ---- out of memory (mem.h rule 1: attention maps and figures are input-sized) ----

// JSON text of an attention, similarity or pe result: an n x n matrix of 0.5 (and the ids and
// tokens, or the texts).
static char *square_json(const char *cmd, int n) {
    Buf b = {0};
    buf_puts(&b, "{");
    if (!strcmp(cmd, "attention")) {
        buf_puts(&b, "\"layer\":0,\"head\":0,\"ids\":[");
        for (int i = 0; i < n; i++) buf_printf(&b, "%s%d", i ? "," : "", i);
        buf_puts(&b, "],\"tokens\":[");
        for (int i = 0; i < n; i++) buf_printf(&b, "%s\"t%d\"", i ? "," : "", i);
        buf_puts(&b, "],");
    } else if (!strcmp(cmd, "similarity")) {
        buf_puts(&b, "\"pool\":\"mean\",\"texts\":[");
        for (int i = 0; i < n; i++) buf_printf(&b, "%s\"text %d\"", i ? "," : "", i);
        buf_puts(&b, "],");
    } else {
        buf_printf(&b, "\"kind\":\"sinusoidal\",\"len\":%d,\"dim\":%d,", n, n);
    }
    buf_puts(&b, "\"matrix\":[");
    for (int i = 0; i < n; i++) {
        buf_puts(&b, i ? ",[" : "[");
        for (int j = 0; j < n; j++) buf_puts(&b, j ? ",0.5" : "0.5");
        buf_puts(&b, "]");
    }
    buf_puts(&b, "]}");
    return buf_take(&b);
}

// In a child whose address space is capped 512 KB above what it maps: results whose matrices
// need 1 MB each (attention, pe, similarity) are refused with a message on the status line, no
// request is queued again, and the views keep drawing what they had.
static int oom_child(void *arg) {
    (void)arg;
    enum { N = 512 }; // 512 x 512 floats: 1 MB, above the cap
    reset(CMODE_C256);
    sh.n_layer = 1, sh.n_head = 1;
    char *aj = square_json("attention", N), *pj = square_json("pe", N), *mj = square_json("similarity", N);
    Json *att = json_parse(aj, strlen(aj), NULL), *pe = json_parse(pj, strlen(pj), NULL);
    Json *sim = json_parse(mj, strlen(mj), NULL);
    const char *sj = "{\"kind\":\"sinusoidal\",\"len\":2,\"dim\":2,\"matrix\":[[0,1],[1,0]]}";
    Json *small = json_parse(sj, strlen(sj), NULL);
    CHECK(att && pe && sim && small);
    View a, p;
    view_open(&a, &attn_view_ops, &host);
    view_open(&p, &positions_view_ops, &host);
    ViewResult r0 = {"pe", "pe sinusoidal len=2 dim=2", NULL, 0, small, NULL, "", true};
    p.ops->result(&p, &r0); // a matrix that fits, shown before the one that does not
    CellGrid g;
    cellgrid_init(&g, 80, 20, sh.mode);
    if (aslimit_set(512 << 10)) return 77;

    ViewResult ra = {"attention", "attention ids=... layer=0 head=0", NULL, 0, att, NULL, "", true};
    a.ops->result(&a, &ra);
    CHECK(strstr(fake.msg, "out of memory for the attention maps of 512 tokens") != NULL);
    CHECK_INT(fake.nrun, 0);
    cellgrid_clear(&g);
    a.ops->draw(&a, &g, 0, 0, 80, 20); // the view still draws (the map stays unloaded)

    // the Positions view refuses a pe matrix, then a similarity matrix; the 2 x 2 one stays
    const struct {
        const char *cmd, *line, *msg;
        const Json *j;
    } refused[] = {{"pe", "pe sinusoidal len=512 dim=512", "out of memory for the 512 x 512 position matrix", pe},
                   {"similarity", "similarity \"text 0\" ...", "out of memory for the 512 x 512 similarity matrix", sim}};
    for (int i = 0; i < 2; i++) {
        fake.msg[0] = 0;
        ViewResult rr = {refused[i].cmd, refused[i].line, NULL, 0, refused[i].j, NULL, "", true};
        p.ops->result(&p, &rr);
        CHECK(strstr(fake.msg, refused[i].msg) != NULL);
        cellgrid_clear(&g);
        p.ops->draw(&p, &g, 0, 0, 80, 20);
        char *txt = rows_text(&g);
        CHECK(strstr(txt, "2 positions x 2 dimensions") != NULL);
        free(txt);
    }
    return check_failures ? 1 : 0;
}

static void test_oom(void) { aslimit_fork("views out of memory", oom_child, NULL); }

// ---- rank ----

static const char *const rank_json =
    "{\"ranking_pending\":true,\"prompt\":\"Once upon\",\"k\":4,\"candidates\":["
    "{\"n\":1,\"run_id\":11,\"seed\":1,\"text\":\" a time there was a cat\"},"
    "{\"n\":2,\"run_id\":12,\"seed\":2,\"text\":\" a hill stood a very old and very tall tree that nobody had ever climbed\"},"
    "{\"n\":3,\"run_id\":13,\"seed\":3,\"text\":\"\\nthe end\"},"
    "{\"n\":4,\"run_id\":14,\"seed\":4,\"text\":\"\"}]}";

static void test_rank(void) {
    reset(CMODE_C256);
    View v;
    CHECK_INT(view_open(&v, &rank_view_ops, &host), 0);
    CellGrid g;
    draw(&v, &g, 64, 14);
    char *txt = rows_text(&g);
    CHECK(strstr(txt, "No ranking pending") != NULL);
    free(txt);
    cellgrid_done(&g);
    // a chat prompt: the heading shows the question asked, not the template's system turn
    result(&v, "rank",
           "{\"ranking_pending\":true,\"prompt\":\"<|im_start|>system\\nYou are a helpful AI assistant named "
           "SmolLM<|im_end|>\\n<|im_start|>user\\nName a vegetable.<|im_end|>\\n<|im_start|>assistant\\n\","
           "\"chat_user\":\"Name a vegetable.\",\"k\":2,"
           "\"candidates\":[{\"n\":1,\"run_id\":1,\"seed\":1,\"text\":\"Carrot.\"},"
           "{\"n\":2,\"run_id\":2,\"seed\":2,\"text\":\"Leek.\"}]}",
           "rank \"Name a vegetable.\" k=2 chat=true");
    CHECK(shows(&v, 64, 14, (const char *[]){"Rank 2 candidates for chat: \"Name a vegetable.\"", NULL}));
    CHECK_INT(v.ops->key(&v, 'x'), 1); // skipped: back to none pending
    result(&v, "skip", "{}", "skip");
    // a plain prompt holding a template's marker as text is shown whole (it was cut after it)
    result(&v, "rank",
           "{\"ranking_pending\":true,\"prompt\":\"What does [INST] mean?\",\"chat_user\":null,\"k\":2,"
           "\"candidates\":[{\"n\":1,\"run_id\":3,\"seed\":1,\"text\":\"A tag.\"},"
           "{\"n\":2,\"run_id\":4,\"seed\":2,\"text\":\"No idea.\"}]}",
           "rank \"What does [INST] mean?\" k=2");
    CHECK(shows(&v, 64, 14, (const char *[]){"Rank 2 candidates for \"What does [INST] mean?\"", NULL}));
    CHECK_INT(v.ops->key(&v, 'x'), 1);
    result(&v, "skip", "{}", "skip");
    // four candidates of one text (greedy decoding): named as rank names them, not counted as
    // pairs ("6 of the 4 candidates repeat another's text")
    result(&v, "rank",
           "{\"ranking_pending\":true,\"prompt\":\"Hi\",\"k\":4,\"identical\":6,\"same_text\":\"1=2=3=4\","
           "\"candidates\":[{\"n\":1,\"run_id\":5,\"seed\":1,\"text\":\"-by-\"},{\"n\":2,\"run_id\":6,\"seed\":2,"
           "\"text\":\"-by-\"},{\"n\":3,\"run_id\":7,\"seed\":3,\"text\":\"-by-\"},{\"n\":4,\"run_id\":8,\"seed\":4,"
           "\"text\":\"-by-\"}]}",
           "rank \"Hi\" k=4 temperature=0");
    CHECK(shows(&v, 200, 14, (const char *[]){"note: candidates 1=2=3=4 are the same text", NULL}));
    CHECK(lacks(&v, 200, 14, "6 of the 4"));
    CHECK_INT(v.ops->key(&v, 'x'), 1);
    result(&v, "skip", "{}", "skip");
    // a candidate longer than the screen: the chosen one gets the rows the others' first lines leave
    // and scrolls with PgDn (each had an equal share: 3 lines of 20, the rest never readable)
    {
        Buf long_json = {0};
        buf_puts(&long_json, "{\"ranking_pending\":true,\"prompt\":\"Tell\",\"k\":3,\"candidates\":[{\"n\":1,"
                             "\"run_id\":21,\"seed\":1,\"text\":\"");
        for (int i = 0; i < 20; i++) buf_printf(&long_json, "line%02d of the first candidate's long text\\n", i);
        buf_puts(&long_json, "\"},{\"n\":2,\"run_id\":22,\"seed\":2,\"text\":\"two\"},{\"n\":3,\"run_id\":23,"
                             "\"seed\":3,\"text\":\"three\"}]}");
        result(&v, "rank", long_json.data, "rank \"Tell\" k=3");
        buf_free(&long_json);
        CHECK(shows(&v, 64, 14, (const char *[]){"line00", "line07", "two", "three",
                                                 "[chosen: lines 1-9 of 21, PgDn PgUp]", NULL}));
        CHECK_INT(v.ops->key(&v, VK_PGDN), 1);
        CHECK(shows(&v, 64, 14, (const char *[]){"line03", "line11", "[chosen: lines 4-12 of 21", NULL}));
        for (int i = 0; i < 6; i++) v.ops->key(&v, VK_PGDN);
        CHECK(shows(&v, 64, 14, (const char *[]){"line19", "[chosen: lines 13-21 of 21", NULL}));
        CHECK_INT(v.ops->key(&v, 'j'), 1); // another chosen: its text from the top, the first one line
        CHECK(shows(&v, 64, 14, (const char *[]){"line00", "two", NULL}));
        CHECK_INT(v.ops->key(&v, 'x'), 1);
        result(&v, "skip", "{}", "skip");
    }
    fake.nrun = 0;
    result(&v, "rank", rank_json, "rank \"Once upon\" k=4");
    draw(&v, &g, 64, 14);
    golden("rank_start", &g);
    cellgrid_done(&g);
    // 1 down, then 3 down, then tie 3 with 4: order 2 1 4=3
    CHECK_INT(v.ops->key(&v, 'J'), 1);
    CHECK_INT(v.ops->key(&v, 'j'), 1);
    CHECK_INT(v.ops->key(&v, 'J'), 1);
    CHECK_INT(v.ops->key(&v, '='), 1);
    draw(&v, &g, 64, 14);
    golden("rank_moved", &g);
    txt = rows_text(&g);
    CHECK(strstr(txt, "Enter runs:  order 2 1 4=3") != NULL);
    free(txt);
    cellgrid_done(&g);
    // n asks for the note's text alone: the host quotes it for `note` (a typed quote or backslash
    // ended the string early when the command line opened inside `note ""`)
    CHECK_INT(v.ops->key(&v, 'n'), 1);
    CHECK_STR(fake.ask, "note||note");
    result(&v, "note", "{\"note\":\"close \\\"call\\\"\"}", "note \"close \\\"call\\\"\"");
    CHECK_INT(v.ops->key(&v, 'n'), 1);
    CHECK_STR(fake.ask, "note|close \"call\"|note");
    CHECK_INT(v.ops->key(&v, VK_ENTER), 1);
    CHECK_INT(fake.nrun, 1);
    CHECK_STR(fake.runs[0], "order 2 1 4=3");
    // the answer's order is what is shown as "your order" (here [4] tied before [3]: typed as
    // `:order 2 1 4=3` it need not be the screen's arrangement)
    result(&v, "order", "{\"ranking_id\":7,\"order\":[[2],[1],[4,3]],\"k\":4}", "order 2 1 4=3");
    // only after the submit: the reward model's order of the stored ranking is asked for, then shown
    CHECK_INT(fake.nrun, 2);
    CHECK_STR(fake.runs[1], "reward score ranking=7");
    result(&v, "reward",
           "{\"ranking_id\":7,\"model\":\"/rm\",\"candidates\":[{\"n\":1,\"reward\":0.5},{\"n\":2,\"reward\":-1},"
           "{\"n\":3,\"reward\":2},{\"n\":4,\"reward\":0.25}],\"order\":[[3],[1],[4],[2]],\"pairs\":5,\"agree\":1}",
           "reward score ranking=7");
    draw(&v, &g, 80, 16);
    txt = rows_text(&g);
    CHECK(strstr(txt, "reward model (agrees on 1 of 5 pairs)") != NULL);
    CHECK(strstr(txt, " 1. [3] +2.0000") != NULL && strstr(txt, " 4. [2] -1.0000") != NULL);
    CHECK(strstr(txt, "reward model: /rm") != NULL);
    free(txt);
    cellgrid_done(&g);
    draw(&v, &g, 64, 14);
    txt = rows_text(&g);
    CHECK(strstr(txt, "ranking 7 stored") != NULL);
    free(txt);
    cellgrid_done(&g);
    // n after submitting: the note of the ranking just stored, to edit (it opened on an empty
    // note before 2026-12-06, so that typing replaced the stored one unseen)
    CHECK(shows(&v, 100, 20, (const char *[]){"n edits the note of ranking 7: close \"call\"", NULL}));
    CHECK_INT(v.ops->key(&v, 'n'), 1);
    CHECK_STR(fake.ask, "note|close \"call\"|note");
    result(&v, "note", "{\"note\":\"typed after\",\"ranking_id\":7}", "note \"typed after\"");
    draw(&v, &g, 64, 14);
    txt = rows_text(&g);
    CHECK(strstr(txt, "ranking 7 stored, note: typed after") != NULL);
    free(txt);
    cellgrid_done(&g);
    CHECK_INT(v.ops->key(&v, 'n'), 1);
    CHECK_STR(fake.ask, "note|typed after|note");
    // r starts a ranking of the lab's prompt at once (as the hint says), nothing left to edit;
    // with no prompt in the lab it says where to type one
    fake.edit[0] = 0;
    CHECK_INT(v.ops->key(&v, 'r'), 1);
    CHECK_INT(fake.nrun, 2);
    CHECK(strstr(fake.msg, "the lab's prompt is empty") != NULL);
    buf_puts(&sh.prompt, "Say \"hi\"");
    CHECK_INT(v.ops->key(&v, 'r'), 1);
    CHECK_INT(fake.nrun, 3);
    CHECK_STR(fake.runs[2], "rank \"Say \\\"hi\\\"\" k=4");
    CHECK_STR(fake.edit, "");
    // while it is pending, r does not start another
    result(&v, "rank", rank_json, "rank \"Once upon\" k=4");
    CHECK_INT(v.ops->key(&v, 'r'), 1);
    CHECK_INT(fake.nrun, 3);
    CHECK(strstr(fake.msg, "pending") != NULL);
    // `:order 3 1=4 2` typed with the candidates still as shown (1 2 3 4): "your order" is the
    // stored one from the answer, not the screen's
    result(&v, "order", "{\"ranking_id\":8,\"order\":[[3],[1,4],[2]],\"k\":4}", "order 3 1=4 2");
    // ranks numbered densely, as show ranking= and the database number them (it said 4 for rank 3)
    CHECK(shows(&v, 80, 16, (const char *[]){" 1. [3]", " 2. [1]", "=2. [4]", " 3. [2]", NULL}));
    // candidates of the same text are said in the view (before, only in the log); after a skip, n
    // notes nothing (it noted the ranking stored before the skip)
    result(&v, "rank",
           "{\"ranking_pending\":true,\"prompt\":\"x\",\"k\":2,\"identical\":1,\"same_text\":\"1=2\",\"candidates\":[{\"n\":1,\"run_id\":1,"
           "\"seed\":1,\"text\":\"same\"},{\"n\":2,\"run_id\":2,\"seed\":2,\"text\":\"same\"}]}",
           "rank \"x\" k=2 temperature=0");
    CHECK(shows(&v, 120, 16, (const char *[]){"note: candidates 1=2 are the same text", NULL}));
    result(&v, "skip", "{}", "skip");
    fake.edit[0] = 0;
    CHECK_INT(v.ops->key(&v, 'n'), 0);
    CHECK_STR(fake.edit, "");
    CHECK(!shows(&v, 100, 20, (const char *[]){"note of ranking", NULL}) &&
          !shows(&v, 100, 20, (const char *[]){"adds a note", NULL}));
    view_close(&v);

    Buf b = {0};
    int ns[4] = {3, 1, 2, 4};
    bool tie[4] = {false, false, true, false};
    rank_order_line(ns, tie, 4, &b);
    CHECK_STR(b.data, "order 3 1=2 4");
    buf_free(&b);
}

// ---- history ----

static const char *const history_json =
    "{\"runs\":[{\"run_id\":12,\"created\":\"2024-05-01T12:31:07.000Z\",\"kind\":\"rank\",\"model_path\":\"builtin\","
    "\"annotator\":\"alice\",\"prompt\":\"Once upon\",\"text\":\" a time\\nthere\",\"seed\":3,\"temperature\":1,"
    "\"n_tokens\":4,\"stop_reason\":\"length\"},"
    "{\"run_id\":9,\"created\":\"2024-05-01T12:30:00.000Z\",\"kind\":\"experiment\",\"model_path\":\"/m/gpt2\","
    "\"annotator\":null,\"prompt\":\"The cat\",\"text\":\" sat\",\"seed\":1,\"temperature\":0,"
    "\"n_tokens\":1,\"stop_reason\":\"length\"},"
    "{\"run_id\":7,\"created\":\"2024-05-01T12:29:00.000Z\",\"kind\":\"generate\",\"model_path\":\"/m/smollm2\","
    "\"annotator\":null,\"prompt\":\"<|im_start|>system\\nBe brief<|im_end|>\\n<|im_start|>user\\nName a cat<|im_end|>\\n"
    "<|im_start|>assistant\\n\",\"text\":\"Luna\",\"seed\":1,\"temperature\":0,\"n_tokens\":2,"
    "\"stop_reason\":\"eos\",\"chat_user\":\"Name a cat\"}]}";

static const char *const rankings_json =
    "{\"rankings\":[{\"ranking_id\":2,\"created\":\"2024-05-01T12:40:00.000Z\",\"annotator\":\"bob\",\"note\":null,"
    "\"prompt\":\"<|im_start|>user\\nTell me<|im_end|>\\n<|im_start|>assistant\\n\",\"chat_user\":\"Tell me\","
    "\"k\":3,\"order\":[[2,3],[1]],\"candidates\":[{\"n\":2,\"run_id\":14,\"rank\":1},"
    "{\"n\":3,\"run_id\":15,\"rank\":1},{\"n\":1,\"run_id\":13,\"rank\":2}]},"
    "{\"ranking_id\":1,\"created\":\"2024-05-01T12:32:00.000Z\",\"annotator\":\"alice\",\"note\":\"close call\","
    "\"prompt\":\"Once upon\",\"k\":4,\"order\":[[3],[1],[2,4]],\"candidates\":[{\"n\":3,\"run_id\":12,\"rank\":1},"
    "{\"n\":1,\"run_id\":10,\"rank\":2},{\"n\":2,\"run_id\":11,\"rank\":3},{\"n\":4,\"run_id\":13,\"rank\":3}]}]}";

// show ranking=1 as cmd_db.c answers it (JSON trimmed to what the view reads).
static const char *const show_ranking_text =
    "ranking 1  2024-05-01T12:32:00.000Z  by alice  k=4  order 3 1 2=4\n"
    "note: close call\n"
    "prompt: \"Once upon\"\n"
    "rank 1  candidate 3, run 12: \" a time\u23CEthere\"\n"
    "rank 2  candidate 1, run 10: \" a hill\"\n"
    "rank 3 (tie)  candidate 2, run 11: \"\"\n"
    "rank 3 (tie)  candidate 4, run 13: \" the end\"\n";

static void test_history(void) {
    reset(CMODE_C256);
    View v;
    CHECK_INT(view_open(&v, &history_view_ops, &host), 0);
    v.ops->show(&v); // the runs load first
    CHECK_INT(fake.nrun, 1);
    CHECK_STR(fake.runs[0], "history 200");
    result_full(&v, "history", history_json, "history 200", "", true);
    CellGrid g;
    draw(&v, &g, 80, 12);
    golden("history_runs", &g);
    char *txt = rows_text(&g);
    CHECK(strstr(txt, "#12    2024-05-01T12:31 rank") != NULL);
    CHECK(strstr(txt, "#9     2024-05-01T12:30 experiment gpt2") != NULL); // the kind whole (it read "experime")
    // a chat prompt by its last user message, not by the template's start
    CHECK(strstr(txt, "smollm2        chat: Name a cat") != NULL);
    CHECK(strstr(txt, "im_start") == NULL);
    free(txt);
    cellgrid_done(&g);
    // t: the rankings, loaded on first use
    CHECK_INT(v.ops->key(&v, 't'), 1);
    CHECK_INT(fake.nrun, 2);
    CHECK_STR(fake.runs[1], "rankings 200");
    draw(&v, &g, 80, 12);
    txt = rows_text(&g);
    CHECK(strstr(txt, "loading...") != NULL);
    free(txt);
    cellgrid_done(&g);
    result_full(&v, "rankings", rankings_json, "rankings 200", "", true);
    draw(&v, &g, 80, 12);
    golden("history_rankings", &g);
    txt = rows_text(&g);
    CHECK(strstr(txt, "2 rankings") != NULL);
    CHECK(strstr(txt, "#2      2024-05-01T12:40 bob        3  2=3 1   chat: Tell me") != NULL);
    CHECK(strstr(txt, "3 1 2=4 Once upon  note: close call") != NULL);
    free(txt);
    cellgrid_done(&g);
    // a ranking stored since: the count is not shown until the list is reloaded (it showed the
    // old one, 2 rankings when there were 3)
    result(&v, "order", "{\"ranking_id\":3,\"order\":[[1],[2]],\"k\":2}", "order 1 2");
    CHECK(!shows(&v, 80, 12, (const char *[]){"2 rankings", NULL}) && shows(&v, 80, 12, (const char *[]){" rankings ", NULL}));
    result_full(&v, "rankings", rankings_json, "rankings 200", "", true);
    CHECK(shows(&v, 80, 12, (const char *[]){" 2 rankings ", NULL}));
    // Enter shows the selected ranking; r does not replay a ranking
    CHECK_INT(v.ops->key(&v, 'j'), 1);
    CHECK_INT(v.ops->key(&v, VK_ENTER), 1);
    CHECK_INT(fake.nrun, 3);
    CHECK_STR(fake.runs[2], "show ranking=1");
    result_full(&v, "show", "{\"ranking_id\":1,\"k\":4,\"order\":[[3],[1],[2,4]]}", "show ranking=1",
                show_ranking_text, false);
    draw(&v, &g, 80, 14);
    golden("history_ranking_shown", &g);
    txt = rows_text(&g);
    CHECK(strstr(txt, " ranking 1 ") != NULL);
    CHECK(strstr(txt, "rank 3 (tie)  candidate 4, run 13: \" the end\"") != NULL);
    free(txt);
    cellgrid_done(&g);
    CHECK_INT(v.ops->key(&v, 'r'), 1);
    CHECK_INT(fake.nrun, 3);
    CHECK(strstr(fake.msg, "not replayed") != NULL);
    // / filters the list shown
    CHECK_INT(v.ops->key(&v, '/'), 1); // the text alone, quoted by the host (a typed quote broke it)
    CHECK_STR(fake.ask, "filter rankings||rankings 200");
    // back to the runs (still loaded): Enter shows a run, r replays it
    CHECK_INT(v.ops->key(&v, VK_ESC), 1);
    CHECK_INT(v.ops->key(&v, 't'), 1);
    CHECK_INT(fake.nrun, 3);
    CHECK_INT(v.ops->key(&v, VK_ENTER), 1);
    CHECK_STR(fake.runs[3], "show 12");
    // t with a run's detail open: the rankings without it (the run's detail stayed under them)
    result_full(&v, "show", "{\"run_id\":12}", "show 12", "run 12  2024-05-01T12:31 generate\nprompt: Once\n", false);
    CHECK(shows(&v, 80, 14, (const char *[]){" run 12 ", "run 12  2024-05-01T12:31 generate", NULL}));
    CHECK_INT(v.ops->key(&v, 't'), 1);
    CHECK(lacks(&v, 80, 14, "run 12  2024-05-01T12:31 generate"));
    CHECK_INT(v.ops->key(&v, 't'), 1);
    CHECK_INT(fake.nrun, 4);
    CHECK_INT(v.ops->key(&v, 'r'), 1);
    CHECK_STR(fake.runs[4], "replay 12");
    // a stored ranking makes the rankings stale; a rankings command typed by the person shows them
    result_full(&v, "order", "{\"ranking_id\":3,\"order\":[[1],[2]],\"k\":2}", "order 1 2", "", false);
    CHECK_INT(v.ops->key(&v, 't'), 1);
    CHECK_INT(fake.nrun, 6);
    CHECK_STR(fake.runs[5], "rankings 200");
    CHECK_INT(v.ops->key(&v, 't'), 1); // runs again
    result_full(&v, "rankings", "{\"rankings\":[]}", "rankings \"zzz\"", "no rankings\n", false);
    draw(&v, &g, 80, 12);
    txt = rows_text(&g);
    // a filter that matches nothing says so, not that there are no rankings at all
    CHECK(strstr(txt, "no ranking matches the filter (R lists them all)") != NULL &&
          strstr(txt, "(rankings \"zzz\")") != NULL);
    free(txt);
    cellgrid_done(&g);
    view_close(&v);
}

// ---- lab ----

static void stream(View *v, int index, const char *piece, float lp) {
    static const int ids[3] = {5, 6, 7};
    static const char *const alts[3] = {"a", " b", "\n"};
    static const float alp[3] = {-0.2f, -1.9f, -3.0f};
    ViewToken t = {index, 5, piece, lp, 3, ids, alts, alp};
    v->ops->stream(v, &t);
}

static void test_lab(void) {
    reset(CMODE_C256);
    View v;
    CHECK_INT(view_open(&v, &lab_view_ops, &host), 0);
    // type a prompt with a quote, a newline and a tab
    CHECK_INT(v.ops->key(&v, 'e'), 1);
    CHECK(v.capture);
    const char *typed = "Say \"hi\"";
    for (const char *s = typed; *s; s++) v.ops->key(&v, (unsigned char)*s);
    v.ops->key(&v, VK_ENTER);
    v.ops->key(&v, VK_TAB);
    v.ops->key(&v, 0x00E9); // é
    v.ops->key(&v, VK_BACKSPACE);
    v.ops->key(&v, 0x732B); // 猫, a wide character
    CHECK_STR(sh.prompt.data, "Say \"hi\"\n\t\xe7\x8c\xab");
    v.ops->key(&v, VK_ESC);
    CHECK(!v.capture);
    result(&v, "set", "{\"temperature\":0.7,\"top_k\":40,\"top_p\":0.9,\"seed\":42,\"max\":16,\"alts\":3}", "set");
    CHECK_INT(v.ops->key(&v, 'g'), 1);
    CHECK_INT(fake.nrun, 1);
    CHECK_STR(fake.runs[0], "generate \"Say \\\"hi\\\"\\n\\t\xe7\x8c\xab\" max=16 temperature=0.7 top_k=40 top_p=0.9 seed=42");
    // parameters: choose top_k and raise it
    v.ops->key(&v, '>');
    v.ops->key(&v, '>');
    v.ops->key(&v, '+');
    CHECK_STR(fake.runs[1], "set top_k 50");
    // streamed tokens, coloured by probability
    stream(&v, 0, " Hello", -0.1f);
    stream(&v, 1, ",", -2.5f);
    stream(&v, 2, "\n", -0.7f);
    stream(&v, 3, " world", -5.0f);
    CellGrid g;
    draw(&v, &g, 72, 18);
    golden("lab_streaming", &g);
    cellgrid_done(&g);
    // the final result replaces the stream; select a token to see its alternatives
    result(&v, "generate",
           "{\"run_id\":9,\"text\":\" Hello, world\",\"ids\":[5,6,8],\"prompt_ids\":[1,2],\"decode_tok_s\":100,"
           "\"stop_reason\":\"length\",\"steps\":[{\"id\":5,\"piece\":\" Hello\",\"logprob\":-0.1,\"top\":"
           "[{\"id\":5,\"piece\":\" Hello\",\"logprob\":-0.1},{\"id\":9,\"piece\":\" Hi\",\"logprob\":-2.4}]},"
           "{\"id\":6,\"piece\":\",\",\"logprob\":-2.5,\"top\":[]},{\"id\":8,\"piece\":\" world\",\"logprob\":-5,\"top\":[]}]}",
           "generate \"x\"");
    CHECK_INT(sh.seq.n, 5);
    CHECK_INT(sh.n_prompt, 2);
    CHECK_INT((int)sh.run_id, 9);
    CHECK_INT(v.ops->key(&v, 'l'), 1);
    draw(&v, &g, 72, 18);
    golden("lab_selected", &g);
    char *txt = rows_text(&g);
    CHECK(strstr(txt, "token 1/3") != NULL);
    CHECK(strstr(txt, "\u25B6 \u00B7Hello") != NULL);
    CHECK(strstr(txt, "0.0907") != NULL); // exp(-2.4)
    free(txt);
    cellgrid_done(&g);
    CHECK(fake.figures > 0);
    CHECK_INT(fake.fig_rows, 3);
    // beside the completion on a wide terminal, the chosen token's whole line (it was cut at 44
    // columns at any width)
    result(&v, "generate",
           "{\"run_id\":10,\"text\":\" extraordinary\",\"ids\":[7],\"prompt_ids\":[1,2],\"decode_tok_s\":null,"
           "\"stop_reason\":\"length\",\"steps\":[{\"id\":7,\"piece\":\" extraordinary\",\"logprob\":-1.25,\"top\":[]}]}",
           "generate \"x\"");
    // one token (max=1) was not decoded after the prefill: no speed (it read "1 tokens, 0.0 tok/s")
    CHECK(shows(&v, 72, 18, (const char *[]){"run #10, 1 token, stop: length", NULL}) && lacks(&v, 72, 18, "tok/s"));
    CHECK_INT(v.ops->key(&v, 'l'), 1);
    CHECK(shows(&v, 160, 18, (const char *[]){"token 1/1  \u00B7extraordinary  p 0.2865  logprob -1.250", NULL}));
    // editing the prompt forgets the generation the attention view would show
    v.ops->key(&v, 'e');
    v.ops->key(&v, '!');
    CHECK_INT(sh.seq.n, 0);
    view_close(&v);
}

// A byte-level model writes a CJK character or an emoji as two to four byte tokens, each "<0xE7>"
// alone: the lab shows the character they make (it showed "<0xE7><0x8C><0xAB>" where the log and
// the rank view showed 猫), coloured by their joint probability, the group selected as one; a byte
// nothing completes keeps its code.
// A prompt taller than the editor's rows: the bar's ends say that it goes on above or below.
static void test_lab_prompt_scroll(void) {
    reset(CMODE_C256);
    View v;
    CHECK_INT(view_open(&v, &lab_view_ops, &host), 0);
    CHECK_INT(v.ops->key(&v, 'e'), 1);
    for (int i = 0; i < 11; i++) {
        char line[16];
        snprintf(line, sizeof line, "line %d", i + 1);
        for (const char *s = line; *s; s++) v.ops->key(&v, (unsigned char)*s);
        if (i < 10) v.ops->key(&v, VK_ENTER);
    }
    CellGrid g;
    draw(&v, &g, 80, 24); // editing, the cursor on the last line: the end shown, more above
    char *txt = rows_text(&g);
    CHECK(strstr(txt, "\u2191 line ") != NULL && strstr(txt, "line 11") != NULL && !strstr(txt, "line 1\n"));
    CHECK(strstr(txt, "\u2193") == NULL);
    free(txt);
    cellgrid_done(&g);
    for (int i = 0; i < 10; i++) v.ops->key(&v, VK_UP); // to the first line: more below
    draw(&v, &g, 80, 24);
    txt = rows_text(&g);
    CHECK(strstr(txt, "line 1 ") != NULL || strstr(txt, "line 1\n") != NULL);
    CHECK(strstr(txt, "\u2193 line ") != NULL && strstr(txt, "\u2191") == NULL);
    if (!strstr(txt, "\u2193 line ")) fprintf(stderr, "the lab shows:\n%s", txt);
    free(txt);
    cellgrid_done(&g);
    view_close(&v);
}

static void test_lab_byte_tokens(void) {
    reset(CMODE_C256);
    View v;
    CHECK_INT(view_open(&v, &lab_view_ops, &host), 0);
    result(&v, "generate",
           "{\"run_id\":3,\"text\":\"\",\"ids\":[1,2,3,4,5,6,7,8,9],\"prompt_ids\":[1],\"decode_tok_s\":50,"
           "\"stop_reason\":\"length\",\"steps\":[{\"id\":1,\"piece\":\"<0xE7>\",\"logprob\":-0.1,\"top\":[]},"
           "{\"id\":2,\"piece\":\"<0x8C>\",\"logprob\":-0.2,\"top\":[]},{\"id\":3,\"piece\":\"<0xAB>\",\"logprob\":-0.3,\"top\":[]},"
           "{\"id\":4,\"piece\":\" and <0xF0><0x9F>\",\"logprob\":-1,\"top\":[]},{\"id\":5,\"piece\":\"<0x98>\",\"logprob\":-1,\"top\":[]},"
           "{\"id\":6,\"piece\":\"<0x80>!\",\"logprob\":-1,\"top\":[]},{\"id\":7,\"piece\":\" <0xFA>\",\"logprob\":-1,\"top\":[]},"
           "{\"id\":8,\"piece\":\"<0xE4>\",\"logprob\":-1,\"top\":[]},{\"id\":9,\"piece\":\"x\",\"logprob\":-1,\"top\":[]}]}",
           "generate \"x\"");
    CellGrid g;
    draw(&v, &g, 72, 18);
    char *txt = rows_text(&g);
    CHECK(strstr(txt, "\xe7\x8c\xab and \xf0\x9f\x98\x80! <0xFA><0xE4>x") != NULL);
    if (!strstr(txt, "\xe7\x8c\xab and")) fprintf(stderr, "the lab shows:\n%s", txt);
    free(txt);
    // the completion's first row: 猫 in one wide cell, coloured as p = exp(-0.6)
    int y = -1;
    for (int r = 0; r < 18 && y < 0; r++)
        if (!strcmp(cellgrid_at(&g, 0, r)->g, "\xe7\x8c\xab")) y = r;
    CHECK(y >= 0);
    int b6 = cellcolor_rgb(CMODE_C256, cmap_rgb(CMAP_SEQUENTIAL, exp(-0.6))).idx;
    int b1 = cellcolor_rgb(CMODE_C256, cmap_rgb(CMAP_SEQUENTIAL, exp(-0.1))).idx;
    CHECK(b6 != b1);
    if (y >= 0) {
        CHECK_INT(cellgrid_at(&g, 0, y)->bgi, b6);
        CHECK(!(cellgrid_at(&g, 0, y)->attr & CELL_REVERSE));
    }
    cellgrid_done(&g);
    // the second byte token selected: the character is shown selected, the panel names that token
    v.ops->key(&v, 'l'), v.ops->key(&v, 'l');
    draw(&v, &g, 72, 18);
    if (y >= 0) CHECK(cellgrid_at(&g, 0, y)->attr & CELL_REVERSE);
    CHECK(grid_has(&g, "token 2/9  <0x8C>"));
    cellgrid_done(&g);
    view_close(&v);
}

// A generation the Lab did not start (:generate "other" temperature=0, a replay) shows its own
// prompt from its first token on (the old prompt stood above the new tokens until the end), and
// the completion's heading names the settings it ran with that the parameter line does not (the
// line showed the session's, as if they had made it). A prompt being edited is kept: u brings it
// back.
static void test_lab_foreign_run(void) {
    reset(CMODE_C256);
    View v;
    CHECK_INT(view_open(&v, &lab_view_ops, &host), 0);
    result(&v, "set", "{\"temperature\":0.7,\"top_k\":40,\"top_p\":0.9,\"seed\":null,\"max\":16,\"alts\":3}", "set");
    v.ops->key(&v, 'e');
    for (const char *s = "my draft"; *s; s++) v.ops->key(&v, (unsigned char)*s);
    v.ops->key(&v, VK_ESC);
    // a :generate streams: its prompt replaces the draft at once, the heading names its settings
    ViewRunSettings rs = {5, 40, 0, 0.9, 77};
    ViewToken t = {0, 5, " Paris", -0.1f, 0, NULL, NULL, NULL, "The capital", 11, &rs};
    fake.msg[0] = 0;
    v.ops->stream(&v, &t);
    CHECK_STR(sh.prompt.data, "The capital");
    CHECK(strstr(fake.msg, "u brings yours back") != NULL);
    CHECK(shows(&v, 100, 18, (const char *[]){"The capital", "generating... 1 token (Ctrl-C stops)", "ran with temperature 0 max 5 (the line above is for the next generation)", NULL}));
    CHECK(lacks(&v, 100, 18, "my draft"));
    // its result: the same prompt; a sampled run's seed is named when the line says random
    result_arg(&v, "generate", "generate \"The capital\" max=5 temperature=0", "The capital",
               "{\"run_id\":4,\"ids\":[5],\"prompt_ids\":[1],\"decode_tok_s\":9,\"stop_reason\":\"length\","
               "\"temperature\":0.7,\"top_k\":40,\"top_p\":0.9,\"max_tokens\":5,\"seed\":123,"
               "\"steps\":[{\"id\":5,\"piece\":\" Paris\",\"logprob\":-0.1,\"top\":[]}]}");
    CHECK(shows(&v, 100, 18, (const char *[]){"stop: length", "ran with seed 123 max 5 (the line", NULL}));
    // the Lab's own line says so (the status line's word was overwritten by the run's summary)
    CHECK(shows(&v, 100, 18, (const char *[]){"Prompt  u: back to yours (a run replaced it)", NULL}));
    // u: the draft back (the completion now of the previous prompt); u again: the run's prompt,
    // the completion its own again (it stayed "of the previous prompt")
    v.ops->key(&v, 'u');
    CHECK_STR(sh.prompt.data, "my draft");
    CHECK(shows(&v, 100, 18, (const char *[]){"Completion (of the previous prompt)", "u: the run's prompt", NULL}));
    v.ops->key(&v, 'u');
    CHECK_STR(sh.prompt.data, "The capital");
    CHECK(strstr(fake.msg, "the run's prompt again") != NULL);
    CHECK(lacks(&v, 100, 18, "of the previous prompt"));
    // a prompt generated from is no draft: a run replacing it keeps nothing
    result(&v, "set", "{\"temperature\":0,\"top_k\":40,\"top_p\":0.9,\"seed\":null,\"max\":5,\"alts\":3}", "set");
    v.ops->key(&v, 'g');
    CHECK(lacks(&v, 100, 18, "u: ")); // generated from: no draft left
    fake.msg[0] = 0;
    ViewToken t2 = {0, 5, " x", -0.1f, 0, NULL, NULL, NULL, "Other", 5, &rs};
    v.ops->stream(&v, &t2);
    CHECK_STR(sh.prompt.data, "Other");
    CHECK_STR(fake.msg, "");
    // the settings the line shows are not repeated
    CHECK(lacks(&v, 100, 18, "ran with"));
    // a chat=true run: the prompt the template rendered, which g goes on from (the user's message
    // alone was shown, and g generated from it without the template)
    result_arg(&v, "generate", "generate \"Name a colour.\" chat=true", "Name a colour.",
               "{\"run_id\":5,\"ids\":[5],\"prompt_ids\":[1,2,3],\"stop_reason\":\"eos\",\"temperature\":0,"
               "\"top_k\":40,\"top_p\":0.9,\"max_tokens\":5,\"seed\":null,\"template\":\"chat:chatml\","
               "\"prompt\":\"<|im_start|>user\\nName a colour.<|im_end|>\\n<|im_start|>assistant\\n\","
               "\"steps\":[{\"id\":5,\"piece\":\"Red\",\"logprob\":-0.1,\"top\":[]}]}");
    CHECK_STR(sh.prompt.data, "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n");
    view_close(&v);
}

// ---- text pane and helpers ----

// Text cut at the edge ends in a mark (… or ~ in ASCII), so that a person knows there is more (a
// status or key line at 80 columns ended mid-word); spaces left out are no text; a wide glyph cut
// in half leaves room for the mark.
static void test_cut_mark(void) {
    CellGrid g;
    cellgrid_init(&g, 12, 4, CMODE_C256);
    CHECK_INT(vd_printf(&g, 0, 0, 8, 0, true, "abcdefghij"), 8);
    CHECK(row_has(&g, 0, "abcdefg\u2026"));
    CHECK_INT(vd_printf(&g, 0, 1, 8, 0, false, "abcdefghij"), 8);
    CHECK(row_has(&g, 1, "abcdefg~"));
    vd_printf(&g, 0, 2, 8, 0, true, "abcdefgh   ");
    CHECK(row_has(&g, 2, "abcdefgh"));
    CHECK(!grid_has(&g, "h\u2026"));
    vd_printf(&g, 0, 3, 5, 0, true, "ab\xe7\x8c\xab\xe7\x8c\xab"); // a 猫 猫: the second one cut
    CHECK_STR(cellgrid_at(&g, 4, 3)->g, "\u2026");
    CHECK_STR(cellgrid_at(&g, 2, 3)->g, "\xe7\x8c\xab");
    cellgrid_done(&g);
    cellgrid_init(&g, 12, 1, CMODE_C256);
    vd_printf(&g, 0, 0, 4, 0, true, "ab\xe7\x8c\xab\xe7\x8c\xab"); // 猫 in columns 2-3, the text cut after it
    CHECK_STR(cellgrid_at(&g, 2, 0)->g, "\u2026");
    CHECK_STR(cellgrid_at(&g, 1, 0)->g, "b");
    cellgrid_done(&g);
}

static void test_textpane(void) {
    reset(CMODE_C8);
    View v;
    view_open(&v, &log_view_ops, &host);
    for (int i = 0; i < 30; i++) {
        char line[64];
        snprintf(line, sizeof line, "> line %d with some words to wrap around the edge", i);
        textpane_append(&v, line, strlen(line), i % 10 ? 0 : CELL_BOLD);
    }
    CellGrid g;
    draw(&v, &g, 30, 8);
    golden("log_end", &g);
    char *txt = rows_text(&g);
    CHECK(strstr(txt, "line 29") != NULL); // the log follows its end
    free(txt);
    cellgrid_done(&g);
    v.ops->key(&v, 'g');
    draw(&v, &g, 30, 8);
    txt = rows_text(&g);
    CHECK(strstr(txt, "line 0 ") != NULL);
    free(txt);
    cellgrid_done(&g);
    view_close(&v);
}

static void test_helpers(void) {
    VdRow *r;
    const char *s = "one two three\nfour";
    int n = vd_wrap(s, strlen(s), 8, true, &r);
    CHECK_INT(n, 3);
    if (n == 3) {
        CHECK_INT((int)r[0].start, 0); // "one two "
        CHECK_INT((int)r[0].end, 8);
        CHECK_INT((int)r[1].start, 8); // "three"
        CHECK_INT((int)r[1].end, 13);
        CHECK_INT((int)r[2].start, 14); // "four"
        CHECK_INT((int)r[2].end, 18);
    }
    free(r);
    n = vd_wrap("abcdefghij", 10, 4, true, &r); // no space: hard breaks
    CHECK_INT(n, 3);
    free(r);
    n = vd_wrap("ab\n", 3, 10, true, &r); // a final newline opens an empty row
    CHECK_INT(n, 2);
    free(r);
    CHECK_INT(vd_width("a\tb\x01\xe7\x8c\xab", 7, true), 1 + 1 + 1 + 2 + 2);
    Buf b = {0};
    buf_put_quoted(&b, "a\"b\\c\nd\x01", 8);
    CHECK_STR(b.data, "\"a\\\"b\\\\c\\nd\\x01\"");
    buf_free(&b);
}

// ---- experiment ----

static const char exp_list_json[] = "{\"experiments\":[{\"experiment_id\":3,\"task\":\"en-fr\"}]}";

// Two conditions of 8 items: 6 right (0.75, stderr sqrt(.75 * .25 / 7) = 0.1637), 2 right.
static const char exp_table_json[] =
    "{\"experiment_id\":3,\"status\":\"done\",\"task\":\"en-fr\",\"model_path\":\"builtin\",\"n_items\":8,"
    "\"n_conditions\":2,\"n_done\":16,\"conditions\":["
    "{\"condition\":0,\"shots\":0,\"cot\":false,\"samples\":1,\"chat\":false,\"seed\":1,\"n\":8,\"correct\":6,"
    "\"accuracy\":0.75,\"stderr\":0.16366341767699427},"
    "{\"condition\":1,\"shots\":3,\"cot\":true,\"samples\":5,\"chat\":false,\"seed\":2,\"n\":8,\"correct\":2,"
    "\"accuracy\":0.25,\"stderr\":0.16366341767699427}]}";

static const char exp_item_json[] =
    "{\"experiment_id\":3,\"condition\":1,\"item\":0,\"input\":\"cheese\",\"target\":\"fromage\",\"answer\":\"fromage\","
    "\"correct\":true,\"runs\":[{\"sample\":0,\"run_id\":41,\"answer\":\"fromage\",\"n_reused\":7,"
    "\"prompt\":\"Translate English to French:\\nsea otter => loutre de mer\\ncheese =>\",\"text\":\" fromage\\n\","
    "\"mode\":\"few-shot-cot\",\"tokens\":[{\"id\":5,\"piece\":\" from\",\"logprob\":-0.105360516},"
    "{\"id\":6,\"piece\":\"age\",\"logprob\":-1.386294361},{\"id\":7,\"piece\":\"\\n\",\"logprob\":null}]},{\"sample\":1,\"run_id\":42,\"answer\":\"lait\",\"n_reused\":30,"
    "\"prompt\":\"Translate English to French:\\nsea otter => loutre de mer\\ncheese =>\",\"text\":\" lait\","
    "\"mode\":\"few-shot-cot\"}]}";

// Row y of g as text.
static char *row_text(const CellGrid *g, int y) {
    Buf b = {0};
    for (int x = 0; x < g->w; x++) buf_puts(&b, g->cells[(size_t)y * g->w + x].g);
    return buf_take(&b);
}

// The row of g whose text contains s (-1: none).
static int find_row(const CellGrid *g, const char *s) {
    for (int y = 0; y < g->h; y++) {
        char *t = row_text(g, y);
        bool hit = strstr(t, s) != NULL;
        free(t);
        if (hit) return y;
    }
    return -1;
}

// The column of the cell at row y holding glyph s (-1: none).
static int find_glyph(const CellGrid *g, int y, const char *s) {
    for (int x = 0; x < g->w; x++)
        if (!strcmp(g->cells[(size_t)y * g->w + x].g, s)) return x;
    return -1;
}

// Combining marks in running text (the lab's editor, the log, vd_text/vd_width): a mark after a
// base character joins it (no width, drawn in its cell); one at the start of a text, after a
// newline, a space or a control gets '◌' as in token labels.
static const char *const marked[] = {
    "\u0939\u093F\u0928\u094D\u0926\u0940",                         // हिन्दी: a virama
    "\u0E20\u0E32\u0E29\u0E32\u0E44\u0E17\u0E22",                   // ภาษาไทย: no marks
    "\u0E17\u0E35\u0E48\u0E19\u0E35\u0E48",                         // ที่นี่: vowel and tone marks
    "\u0627\u0644\u0639\u064E\u0631\u064E\u0628\u0650\u064A\u064E\u0651\u0629", // العَرَبِيَّة: harakat
    "Tie\u0302\u0301ng Vie\u0323\u0302t nai\u0308ve",               // NFD Latin: two marks on one e
};
static const int marked_w[] = {5, 7, 2, 7, 16};

// How many times what occurs in s.
static int count_of(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p++) n++;
    return n;
}

static void test_combining_marks(void) {
    for (int i = 0; i < 5; i++) {
        int w = vd_width(marked[i], strlen(marked[i]), true);
        if (w != marked_w[i]) fprintf(stderr, "vd_width of %s\n", marked[i]);
        CHECK_INT(w, marked_w[i]);
    }
    CHECK_INT(vd_width("\u0301x", 3, true), 2);          // a leading mark: '◌' and the mark
    CHECK_INT(vd_width("a\n\u0301", 4, true), 3);        // after a newline ("↵")
    CHECK_INT(vd_width("a \u0301", 4, true), 3);         // after a space
    CHECK_INT(vd_width("\t\u0301", 3, true), 2);         // after a control ("→")
    CHECK_INT(vd_width("e\u0301", 3, false), 1);         // ASCII: the mark is not shown
    CHECK_INT(vd_width("\xe7\x8c\xab\u0301", 5, true), 2); // on a wide character

    CellGrid g;
    cellgrid_init(&g, 24, 3, CMODE_C256);
    const char *t = marked[4];
    CHECK_INT(vd_text(&g, 1, 0, 23, t, 0, strlen(t), CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, 0, true), 16);
    CHECK_STR(cellgrid_at(&g, 3, 0)->g, "e\u0302\u0301"); // ế in one cell
    CHECK_STR(cellgrid_at(&g, 4, 0)->g, "n");
    CHECK_STR(cellgrid_at(&g, 0, 0)->g, " ");          // nothing joined before the text
    t = "\u0301a \xe7\x8c\xab\u0302";
    CHECK_INT(vd_text(&g, 0, 1, 24, t, 0, strlen(t), CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, 0, true), 5);
    CHECK_STR(cellgrid_at(&g, 0, 1)->g, "\u25CC\u0301");
    CHECK_STR(cellgrid_at(&g, 1, 1)->g, "a");
    CHECK_STR(cellgrid_at(&g, 3, 1)->g, "\xe7\x8c\xab\u0302"); // joins the wide glyph, not its right half
    CHECK_STR(cellgrid_at(&g, 4, 1)->g, "");
    // a row that starts at a mark is a text of its own: the mark is not put on the cell before it
    t = "xe\u0301";
    CHECK_INT(vd_text(&g, 5, 2, 5, t, 2, strlen(t), CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, 0, true), 1);
    CHECK_STR(cellgrid_at(&g, 4, 2)->g, " ");
    CHECK_STR(cellgrid_at(&g, 5, 2)->g, "\u25CC\u0301");
    cellgrid_done(&g);

    // the lab's editor, typed key by key, and its cursor
    reset(CMODE_C256);
    View v;
    CHECK_INT(view_open(&v, &lab_view_ops, &host), 0);
    v.ops->key(&v, 'e');
    Buf all = {0};
    for (int i = 0; i < 5; i++) buf_printf(&all, "%s%s", i ? " " : "", marked[i]);
    for (size_t p = 0; p < all.len;) {
        uint32_t cp;
        p += (size_t)utf8_decode(all.data + p, all.len - p, &cp);
        v.ops->key(&v, (int)cp);
    }
    CHECK_STR(sh.prompt.data, all.data);
    draw(&v, &g, 72, 18);
    int y = find_row(&g, marked[0]);
    CHECK(y >= 0);
    char *txt = rows_text(&g);
    CHECK(strstr(txt, all.data) != NULL);
    if (!strstr(txt, all.data)) fprintf(stderr, "the editor shows:\n%s", txt);
    CHECK(strstr(txt, "\u25CC") == NULL);
    free(txt);
    // the cursor is just after the text: 2 + 5 + 1 + 7 + 1 + 2 + 1 + 7 + 1 + 16 columns
    CHECK_INT(v.cur_y, y);
    CHECK_INT(v.cur_x, 2 + 41);
    CHECK_STR(cellgrid_at(&g, v.cur_x - 1, y)->g, "e");
    cellgrid_done(&g);
    for (int k = 0; k < 3; k++) v.ops->key(&v, VK_LEFT); // before e, v, then between i and U+0308
    draw(&v, &g, 72, 18);
    CHECK_INT(v.cur_x, 2 + 41 - 2);
    CHECK_STR(cellgrid_at(&g, v.cur_x - 1, y)->g, "i\u0308");
    cellgrid_done(&g);
    v.ops->key(&v, VK_LEFT); // before i
    draw(&v, &g, 72, 18);
    CHECK_INT(v.cur_x, 2 + 41 - 3);
    cellgrid_done(&g);
    // a narrow editor wraps by columns: the marks do not count
    draw(&v, &g, 18, 18);
    txt = rows_text(&g);
    CHECK(strstr(txt, "\u0E17\u0E35\u0E48\u0E19\u0E35\u0E48") != NULL);
    CHECK(strstr(txt, "\u25CC") == NULL);
    free(txt);
    cellgrid_done(&g);
    // completion tokens: a mark inside a token joins its letter, one that starts a token shows on '◌'
    v.ops->key(&v, VK_ESC);
    stream(&v, 0, " nai\u0308ve", -0.1f);
    stream(&v, 1, "\u0308s", -0.1f);
    draw(&v, &g, 72, 18);
    txt = rows_text(&g);
    CHECK(strstr(txt, "nai\u0308ve\u25CC\u0308s") != NULL);
    if (!strstr(txt, "nai\u0308ve\u25CC\u0308s")) fprintf(stderr, "the lab shows:\n%s", txt);
    free(txt);
    cellgrid_done(&g);
    view_close(&v);

    // the log
    reset(CMODE_C8);
    view_open(&v, &log_view_ops, &host);
    textpane_append(&v, all.data, all.len, 0);
    textpane_append(&v, "\u0301 leads", strlen("\u0301 leads"), 0);
    draw(&v, &g, 60, 8);
    txt = rows_text(&g);
    CHECK(strstr(txt, "\u0939\u093F\u0928\u094D\u0926\u0940 \u0E20") != NULL);
    CHECK(strstr(txt, "Tie\u0302\u0301ng Vie\u0323\u0302t nai\u0308ve") != NULL);
    CHECK(strstr(txt, "\u25CC\u0301 leads") != NULL);
    CHECK_INT(count_of(txt, "\u25CC"), 1);
    if (count_of(txt, "\u25CC") != 1) fprintf(stderr, "the log shows:\n%s", txt);
    free(txt);
    cellgrid_done(&g);
    view_close(&v);
    buf_free(&all);
}

static void test_experiment(void) {
    reset(CMODE_C256);
    View v;
    CHECK_INT(view_open(&v, &exp_view_ops, &host), 0);
    CellGrid g;
    // first shown: the newest experiment is asked for, then its table
    v.ops->show(&v);
    CHECK_INT(fake.nrun, 1);
    CHECK_STR(fake.runs[0], "experiments 1");
    result_full(&v, "experiments", exp_list_json, "experiments 1", "", true);
    CHECK_INT(fake.nrun, 2);
    CHECK_STR(fake.runs[1], "experiment show 3");
    v.ops->show(&v); // shown again: nothing more is asked
    CHECK_INT(fake.nrun, 2);
    result_full(&v, "experiment", exp_table_json, "experiment show 3", "", true);
    draw(&v, &g, 80, 12);
    golden("experiment_bars", &g);
    char *txt = rows_text(&g);
    CHECK(strstr(txt, "experiment 3  task en-fr  model builtin  done  16/16 items") != NULL);
    CHECK(strstr(txt, "0.750 \u00b1 0.164") != NULL);
    CHECK(strstr(txt, "error bars: 95% confidence interval") != NULL);
    free(txt);
    // the bars at 80 columns: labels 26 columns + " " + n (6) + " ": the bar from column 34, 31
    // wide. 0.75 of it is 23 full cells (and 2/8); the 95% Wilson interval of 6 of 8,
    // [0.409, 0.929] (Python's math), spans columns 34 + round(0.409 x 30) = 46 to
    // 34 + round(0.929 x 30) = 62 (p -+ 1.96 se gave [0.429, 1]: 47 to 64).
    int y0 = find_row(&g, "shots=0 cot=off seed=1"), y1 = find_row(&g, "shots=3 cot=on seed=2 sc=5");
    CHECK(y0 > 0 && y1 == y0 + 1);
    if (y0 > 0) {
        int full = 0;
        for (int x = 34; x < 65; x++) full += (g.cells[(size_t)y0 * g.w + x].flags & CELL_BG_DEFAULT) == 0;
        CHECK_INT(full, 23);
        CHECK_INT(find_glyph(&g, y0, "\u251c"), 46);
        CHECK_INT(find_glyph(&g, y0, "\u2524"), 62);
    }
    if (y1 > 0) { // 2 of 8 and [0.071, 0.591]: columns 34 + 2 = 36 to 34 + round(0.591 x 30) = 52
        CHECK_INT(find_glyph(&g, y1, "\u251c"), 36);
        CHECK_INT(find_glyph(&g, y1, "\u2524"), 52);
    }
    // the second condition opened: its first item, asked for quietly
    CHECK_INT(v.ops->key(&v, 'j'), 1);
    CHECK_INT(v.ops->key(&v, VK_ENTER), 1);
    CHECK_INT(fake.nrun, 3);
    CHECK_STR(fake.runs[2], "experiment show 3 item=0 condition=1");
    result_full(&v, "experiment", exp_item_json, fake.runs[2], "", true);
    cellgrid_done(&g);
    draw(&v, &g, 80, 26);
    golden("experiment_item", &g);
    txt = rows_text(&g);
    CHECK(strstr(txt, "item 0 (of 0-7)  condition 1: shots=3 cot=on seed=2 sc=5  RIGHT") != NULL);
    CHECK(strstr(txt, "target:  fromage") != NULL);
    CHECK(strstr(txt, "answer:  fromage") != NULL);
    int yp = find_row(&g, "sea otter => loutre de mer"); // the prompt as it was, line by line
    CHECK(yp > 0 && find_row(&g, "cheese =>") == yp + 1);
    CHECK(strstr(txt, "output of sample 1 (run 42), answer: lait") != NULL);
    free(txt);
    // the answer's token probabilities: exp(-0.10536) = 0.9, exp(-1.38629) = 0.25 as bars of
    // 24 columns in eighths: 0.9 x 24 = 21.6 -> 21 full cells and 5/8; 0.25 -> 6 full cells
    int yt = find_row(&g, "token probabilities:");
    CHECK(yt > 0 && find_row(&g, "output of sample 0 (run 41), answer: fromage") == yt - 2);
    if (yt > 0) {
        char *r1 = row_text(&g, yt + 1), *r2 = row_text(&g, yt + 2), *r3 = row_text(&g, yt + 3);
        Buf want = {0};
        buf_puts(&want, "  \u00b7from          0.9000 ");
        for (int k = 0; k < 21; k++) buf_puts(&want, "\u2588");
        buf_puts(&want, "\u258b");
        CHECK(strstr(r1, want.data) == r1);
        if (strstr(r1, want.data) != r1) fprintf(stderr, "  want '%s'\n  got  '%s'\n", want.data, r1);
        buf_clear(&want);
        buf_puts(&want, "  age            0.2500 ");
        for (int k = 0; k < 6; k++) buf_puts(&want, "\u2588");
        buf_puts(&want, " ");
        CHECK(strstr(r2, want.data) == r2);
        if (strstr(r2, want.data) != r2) fprintf(stderr, "  want '%s'\n  got  '%s'\n", want.data, r2);
        CHECK(strstr(r3, "-") != NULL); // no log-probability: no bar
        buf_free(&want);
        free(r1), free(r2), free(r3);
    }
    // n: the next item; p at the first one says so
    CHECK_INT(v.ops->key(&v, 'n'), 1);
    CHECK_STR(fake.runs[3], "experiment show 3 item=1 condition=1");
    CHECK_INT(v.ops->key(&v, VK_ESC), 1);
    CHECK_INT(v.ops->key(&v, 'p'), 0); // back on the bars, p is not the view's
    cellgrid_done(&g);
    draw(&v, &g, 80, 12);
    CHECK(find_row(&g, "shots=3 cot=on seed=2 sc=5") > 0);
    cellgrid_done(&g);
    // a new experiment running: the progress bar, the time left, what it works on
    ViewProgress p = {"experiment 4", "shots=1 cot=off seed=1, item 5", 4, 12, 40, 12.4, 28.2, false};
    v.ops->progress(&v, &p);
    draw(&v, &g, 80, 12);
    golden("experiment_progress", &g);
    txt = row_text(&g, 0);
    CHECK(strstr(txt, "running experiment 4 ") == txt);
    CHECK(strstr(txt, " 12/40 30%  0:12, 0:28 left") != NULL);
    int blocks = 0;
    for (int x = 0; x < g.w; x++) blocks += !strcmp(g.cells[x].g, "\u2588");
    CHECK_INT(blocks, 5); // 12/40 of a 19-column bar (80 - 21 - 40)
    free(txt);
    txt = rows_text(&g);
    CHECK(strstr(txt, "now: shots=1 cot=off seed=1, item 5") != NULL);
    CHECK(strstr(txt, "the bars of experiment 4 appear when it finishes") != NULL);
    free(txt);
    cellgrid_done(&g);
    // the next report carries the table so far: its bars under the progress, updated live
    static const char live_json[] =
        "{\"experiment_id\":4,\"task\":\"en-fr\",\"model_path\":\"builtin\",\"status\":\"running\",\"n_items\":20,"
        "\"n_conditions\":2,\"n_done\":13,\"conditions\":["
        "{\"condition\":0,\"shots\":0,\"cot\":false,\"samples\":1,\"chat\":false,\"seed\":1,\"n\":13,\"correct\":13,"
        "\"accuracy\":1,\"stderr\":0},"
        "{\"condition\":1,\"shots\":1,\"cot\":false,\"samples\":1,\"chat\":false,\"seed\":1,\"n\":0,\"correct\":0,"
        "\"accuracy\":null,\"stderr\":null}]}";
    ViewProgress p2 = {"experiment 4", "shots=0 cot=off seed=1, item 13", 4, 13, 40, 13.0, 27.0, false, live_json};
    v.ops->progress(&v, &p2);
    draw(&v, &g, 80, 12);
    golden("experiment_live", &g);
    txt = rows_text(&g);
    CHECK(strstr(txt, "running experiment 4 ") == txt);
    CHECK(strstr(txt, "appear when it finishes") == NULL);
    CHECK(strstr(txt, "experiment 4  task en-fr  model builtin  running  13/40 items") != NULL);
    free(txt);
    y0 = find_row(&g, "shots=1 cot=off seed=1") - 1; // the first bar (row 1 names it as the item running)
    CHECK(y0 > 3);
    if (y0 > 3) { // all 13 right: the whole bar (31 cells) filled
        int full = 0;
        for (int x = 34; x < 65; x++) full += (g.cells[(size_t)y0 * g.w + x].flags & CELL_BG_DEFAULT) == 0;
        CHECK_INT(full, 31);
    }
    cellgrid_done(&g);
    // stopped with Ctrl-C: the message stays over the bars shown before. The command's last
    // progress report (finished) comes before its result, as in the TUI (the header then still
    // said running until r before 2026-12-06)
    ViewProgress p3 = p2;
    p3.finished = true;
    v.ops->progress(&v, &p3);
    ViewResult r = {"experiment", "experiment en-fr", NULL, 0, NULL,
                    "experiment 4: stopped after 13 of 40 items (run the same command again, or experiment resume 4, to finish it)",
                    "", false};
    v.ops->result(&v, &r);
    draw(&v, &g, 80, 12);
    txt = rows_text(&g);
    CHECK(strstr(txt, "experiment 4: stopped after 13 of 40 items") != NULL);
    CHECK(strstr(txt, "running experiment") == NULL);
    free(txt);
    // the live bars are then reloaded as stored (status stopped)
    CHECK_STR(fake.runs[fake.nrun - 1], "experiment show 4");
    cellgrid_done(&g);
    // ASCII: the same bars in '#' and '|'
    sh.mode = CMODE_ASCII, sh.utf8 = false;
    draw(&v, &g, 80, 12);
    golden("experiment_bars_ascii", &g);
    cellgrid_done(&g);
    // ] past the newest experiment: said calmly, as [ before the first (it was an error)
    v.ops->key(&v, ']');
    CHECK(!strncmp(fake.runs[fake.nrun - 1], "experiment show ", 16) && (fake.flags[fake.nrun - 1] & VR_OWN_ERROR));
    result_err(&v, "experiment", fake.runs[fake.nrun - 1], "no experiment 5 (see: experiments)", true);
    CHECK_STR(fake.msg, "the newest experiment");
    CHECK(!fake.msg_err);
    view_close(&v);

    // never loaded: a fresh view says how to start one; an empty list asks for nothing more
    reset(CMODE_C256);
    CHECK_INT(view_open(&v, &exp_view_ops, &host), 0);
    v.ops->show(&v);
    result_full(&v, "experiments", "{\"experiments\":[]}", "experiments 1", "no experiments\n", true);
    CHECK_INT(fake.nrun, 1);
    draw(&v, &g, 80, 12);
    txt = rows_text(&g);
    CHECK(strstr(txt, "no experiment yet") != NULL);
    CHECK(strstr(txt, "e types one: experiment TASK") != NULL);
    free(txt);
    cellgrid_done(&g);
    CHECK_INT(v.ops->key(&v, 'e'), 1);
    CHECK_STR(fake.edit, "experiment ");
    // bad JSON shapes are drawn without crashing
    result_full(&v, "experiment", "{\"experiment_id\":5,\"conditions\":[{}],\"n_items\":0}", "experiment show 5", "", true);
    result_full(&v, "experiment", "{\"experiment_id\":5,\"runs\":{}}", "experiment show 5 item=0", "", true);
    draw(&v, &g, 30, 5);
    cellgrid_done(&g);
    view_close(&v);
}

// ---- bars: the 95% interval of an accuracy is Wilson's, with width at 0/n and n/n ----

static void test_barchart_interval(void) {
    // 0 of 8, 8 of 8 (standard error 0) and 6 of 8; the intervals worked out with Python's math
    const char *labels[] = {"none", "all", "most"};
    float v[] = {0, 1, 0.75f}, se[] = {0, 0, 0.16366342f}, n[] = {8, 8, 8};
    BarChart c = {3, labels, v, se, n, "t", NULL, 0, NULL, NULL};
    Buf b = {0};
    Err e = {{0}};
    CHECK_INT(barchart_to_csv(&b, &c, &e), 0);
    CHECK_STR(b.data, "condition,n,accuracy,stderr,ci_low,ci_high\r\n"
                      "none,8,0,0,0,0.3244076\r\n" // p -+ 1.96 se said [0, 0]
                      "all,8,1,0,0.6755924,1\r\n"  // and [1, 1]
                      "most,8,0.75,0.1636634,0.4092754,0.9285208\r\n");
    buf_free(&b);
    // the SVG and the cells draw those intervals too, where a standard error of 0 drew none
    CHECK_INT(barchart_to_svg(&b, &c, &e), 0);
    int paths = 0;
    for (const char *p = b.data; (p = strstr(p, "<path d=\"M")); p++) paths++;
    CHECK_INT(paths, 3);
    buf_free(&b);
    CellGrid g;
    cellgrid_init(&g, 80, 4, CMODE_C256);
    barchart_draw(&g, 0, 0, 80, 4, &c, -1, 0, true);
    // labels 9 columns + " " + n (6) + " ": the bar from column 17, 80 - 17 - 15 = 48 wide; 0 of 8
    // spans columns 17 to 17 + round(0.324 x 47) = 32, 8 of 8 from 17 + round(0.676 x 47) = 49 to 64
    CHECK_INT(find_glyph(&g, 1, "\u251c"), 17);
    CHECK_INT(find_glyph(&g, 1, "\u2524"), 32);
    CHECK_INT(find_glyph(&g, 2, "\u251c"), 49);
    CHECK_INT(find_glyph(&g, 2, "\u2524"), 64);
    cellgrid_done(&g);
    // without a count there is no interval: the CSV leaves it empty
    c.count = NULL;
    CHECK_INT(barchart_to_csv(&b, &c, &e), 0);
    CHECK(strstr(b.data, "none,,0,0,,\r\n") != NULL);
    buf_free(&b);
}

// ---- the Positions view: each kind under its own name, and requests that keep it ----

static void test_positions(void) {
    reset(CMODE_ASCII);
    View v;
    CHECK_INT(view_open(&v, &positions_view_ops, &host), 0);
    // a rotary result (`:pe rotary len=4` typed on the command line) is named as rotary, with its
    // pairs and theta; the sinusoidal encoding's value at (1, 0) would be sin(1) = 0.84
    result(&v, "pe",
           "{\"kind\":\"rotary\",\"len\":4,\"pairs\":2,\"theta\":10000,\"relative\":false,"
           "\"matrix\":[[1,1],[0.5403,0.99995],[-0.4161,0.9998],[-0.99,0.99955]]}",
           "pe rotary len=4");
    CellGrid g;
    draw(&v, &g, 120, 12); // the TUI's width in the README's figures
    char *txt = rows_text(&g);
    CHECK(strstr(txt, "rotary, theta 10000: cos(position x frequency), 4 positions x 2 pairs") != NULL);
    CHECK(strstr(txt, "sinusoidal") == NULL);
    CHECK(strstr(txt, "c relative") != NULL);
    free(txt);
    cellgrid_done(&g);
    CHECK(strstr(fake.fig_title, "rotary") != NULL);
    // ] asks for more positions of the same kind (it asked for sinusoids of 128 dimensions)
    v.ops->key(&v, ']');
    CHECK_INT(fake.nrun, 1);
    CHECK_STR(fake.runs[0], "pe rotary len=5");
    // c: the relative pattern
    v.ops->key(&v, 'c');
    CHECK_STR(fake.runs[1], "pe rotary len=5 relative=true");
    result(&v, "pe",
           "{\"kind\":\"rotary\",\"len\":2,\"pairs\":2,\"theta\":500000,\"relative\":true,\"matrix\":[[1,0.5],[0.5,1]]}",
           "pe rotary len=2 relative=true");
    draw(&v, &g, 100, 12);
    txt = rows_text(&g);
    CHECK(strstr(txt, "rotary, theta 500000: q.k of constant vectors, 2 x 2 positions") != NULL);
    free(txt);
    cellgrid_done(&g);
    // p from rotary: sinusoids; again: the learned embeddings, which a rotary model does not
    // have: their refusal passes on to rotary
    v.ops->key(&v, 'p');
    CHECK_STR(fake.runs[2], "pe sinusoidal len=2 dim=128 cosine=true");
    v.ops->key(&v, 'p');
    CHECK_STR(fake.runs[3], "pe learned len=2 cosine=true");
    ViewResult no = {"pe", "pe learned len=2 cosine=true", NULL, 0, NULL, NULL, "", true};
    v.ops->result(&v, &no);
    CHECK_INT(fake.nrun, 5);
    CHECK_STR(fake.runs[4], "pe rotary len=2 relative=true");
    // and a model with neither: back to sinusoids, and no further request
    ViewResult no2 = {"pe", "pe rotary len=2 relative=true", NULL, 0, NULL, NULL, "", true};
    v.ops->result(&v, &no2);
    CHECK_INT(fake.nrun, 6);
    CHECK_STR(fake.runs[5], "pe sinusoidal len=2 dim=128 cosine=true");
    // L asks for the learned embeddings by name: passing over them is said (it was silent)
    fake.msg[0] = 0;
    v.ops->key(&v, 'L');
    ViewResult no3 = {"pe", "pe learned len=2 cosine=true", NULL, 0, NULL,
                      "pe learned: m.bin has no learned position embeddings (its positions are rotary)", "", true};
    v.ops->result(&v, &no3);
    // the reason once, not nested in another ("the model has no learned position encoding (m.bin
    // has no learned position embeddings (...)): ...", cut off at 120 columns)
    CHECK_STR(fake.msg, "pe learned: m.bin has no learned position embeddings (its positions are rotary): the rotary one "
                        "stays");
    // R while the learned embeddings are shown, on a model without rotary positions: they stay
    // (it went on to the sinusoids, away from the map being looked at)
    result(&v, "pe", "{\"kind\":\"learned\",\"len\":2,\"dim\":4,\"matrix\":[[0.1,0.2,0.3,0.4],[0.5,0.6,0.7,0.8]]}",
           "pe learned len=2");
    CHECK(shows(&v, 100, 12, (const char *[]){"learned position encoding: 2 positions x 4 dimensions", NULL}));
    v.ops->key(&v, 'R');
    int asked = fake.nrun;
    CHECK_STR(fake.runs[asked - 1], "pe rotary len=2");
    ViewResult no4 = {"pe", "pe rotary len=2", NULL, 0, NULL,
                      "pe rotary: m has no rotary positions (its positions are learned)", "", true};
    v.ops->result(&v, &no4);
    CHECK_STR(fake.msg, "pe rotary: m has no rotary positions (its positions are learned): the learned one stays");
    CHECK_INT(fake.nrun, asked); // nothing else asked for
    CHECK(shows(&v, 100, 12, (const char *[]){"learned position encoding: 2 positions x 4 dimensions", NULL}));
    v.ops->key(&v, ']'); // and the next request is of the learned kind
    CHECK_STR(fake.runs[fake.nrun - 1], "pe learned len=3");
    // one position: "1 position" (it said "1 positions")
    result(&v, "pe", "{\"kind\":\"learned\",\"len\":1,\"dim\":4,\"matrix\":[[1]]}", "pe learned len=1 cosine=true");
    CHECK(shows(&v, 100, 12, (const char *[]){"cosine similarity of 1 position (d=4)", NULL}));
    // { } change the sinusoids' width only; on the model's own encoding they say so (they were silent)
    int before = fake.nrun;
    fake.msg[0] = 0;
    CHECK_INT(v.ops->key(&v, '}'), 1);
    CHECK_INT(fake.nrun, before);
    CHECK(strstr(fake.msg, "{ } set the width of the sinusoids") != NULL);
    view_close(&v);
}

// ---- the Quant view names the type asked for (a mix with its parts), not the model's ----

// The Training view shows one stored curve after another (:curve 1, :curve 2, ...): each figure's
// step labels are freed as many as were made (it freed as many as the new curve has points, and
// crashed when a longer curve followed a shorter one).
static void test_train_curves(void) {
    reset(CMODE_ASCII);
    View v;
    CHECK_INT(view_open(&v, &train_view_ops, &host), 0);
    for (int k = 0; k < 4; k++) {
        int n = (int[]){2, 7, 3, 9}[k];
        Buf j = {0};
        buf_printf(&j, "{\"kind\":\"train\",\"id\":%d,\"model_arch\":\"gpt2\",\"out_path\":\"/tmp/t%d\",\"points\":[", k + 1,
                   k + 1);
        for (int i = 0; i < n; i++)
            buf_printf(&j, "%s{\"step\":%d,\"loss\":%g,\"val_loss\":null}", i ? "," : "", i + 1, 3.0 - 0.1 * i);
        buf_puts(&j, "]}");
        result(&v, "curve", j.data, "curve");
        buf_free(&j);
        CHECK_INT(fake.fig_rows, n);
        char want[32];
        snprintf(want, sizeof want, "training run %d", k + 1);
        CHECK(shows(&v, 100, 24, (const char *[]){want, NULL}));
    }
    // ] past the newest run: said calmly, as [ before the first (it was an error on the status line)
    int n0 = fake.nrun;
    v.ops->key(&v, ']');
    CHECK_INT(fake.nrun, n0 + 1);
    CHECK_STR(fake.runs[n0], "curve 5");
    CHECK(fake.flags[n0] & VR_OWN_ERROR);
    result_err(&v, "curve", "curve 5", "curve: no training run 5 in '/tmp/q.db'", true);
    CHECK_STR(fake.msg, "the newest run");
    CHECK(!fake.msg_err);
    // another failure (the database) stays an error
    v.ops->key(&v, ']');
    result_err(&v, "curve", "curve 5", "database is locked", true);
    CHECK_STR(fake.msg, "database is locked");
    CHECK(fake.msg_err);
    CHECK(shows(&v, 100, 24, (const char *[]){"training run 4", NULL}));
    view_close(&v);
}

// A held-out pair the reward model scores equally is not called right (the count above it, as the
// trainer's accuracy, counts only r_chosen > r_rejected; the opened pair said "right").
static void test_train_tied_pair(void) {
    reset(CMODE_ASCII);
    View v;
    CHECK_INT(view_open(&v, &train_view_ops, &host), 0);
    result(&v, "curve",
           "{\"kind\":\"reward\",\"id\":2,\"model_arch\":\"gpt2\",\"out_path\":\"/tmp/r\",\"head\":\"linear\","
           "\"points\":[{\"step\":1,\"loss\":0.6,\"heldout_loss\":0.7,\"heldout_accuracy\":0.5}],\"heldout\":["
           "{\"ranking_id\":1,\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\",\"r_chosen\":1,\"r_rejected\":0},"
           "{\"ranking_id\":2,\"prompt\":\"q\",\"chosen\":\"c\",\"rejected\":\"d\",\"r_chosen\":0.5,\"r_rejected\":0.5}]}",
           "curve 2 kind=reward");
    v.ops->key(&v, 'p');
    CHECK(shows(&v, 100, 24, (const char *[]){"2 held-out pairs, 1 right (0.500)", NULL}));
    v.ops->key(&v, VK_ENTER); // the first, most wrong: the tie
    CHECK(shows(&v, 100, 24, (const char *[]){"held-out pair 1 of 2 (ranking 2): r_rejected - r_chosen +0.0000  tied: not right", NULL}));
    v.ops->key(&v, 'n');
    CHECK(shows(&v, 100, 24, (const char *[]){"held-out pair 2 of 2 (ranking 1): r_rejected - r_chosen -1.0000  right", NULL}));
    view_close(&v);
}

static void test_quant(void) {
    reset(CMODE_ASCII);
    View v;
    CHECK_INT(view_open(&v, &quant_view_ops, &host), 0);
    // SmolLM2 after `quantize q4_k_m`: rows of 576 are not whole Q4_K blocks, so most matrices
    // stay Q4_1, the model's most common type ("dtype")
    result(&v, "quantize",
           "{\"type\":\"q4_k_m\",\"dtype\":\"Q4_1\",\"name\":\"smollm2\",\"embed\":false,\"tensors\":30,"
           "\"types\":{\"Q4_K\":16,\"Q6_K\":14},\"kept\":180,\"bytes_before\":96580000,\"bytes_after\":98110000,"
           "\"hist_range\":0.01,\"hist_bins\":3,\"layers\":[{\"layer\":0,\"rel_err\":0.1,\"max_err\":0.01,\"hist\":[1,2,1]}]}",
           "quantize q4_k_m");
    CellGrid g;
    draw(&v, &g, 160, 12);
    char *txt = rows_text(&g);
    CHECK(strstr(txt, "smollm2: 30 matrices as Q4_K_M (Q4_K 16, Q6_K 14), 180 kept as they were, weights 96.58 MB -> "
                      "98.11 MB") != NULL);
    CHECK(strstr(txt, "as Q4_1") == NULL);
    free(txt);
    cellgrid_done(&g);
    view_close(&v);
}

// ---- the attention view fills the model view for the text a command asked about ----

static void test_attention_typed(void) {
    reset(CMODE_ASCII);
    sh.n_layer = 2, sh.n_head = 2;
    iv_push(&sh.seq, 7), iv_push(&sh.seq, 8); // the lab's text: another one
    sh.prompt.len = 0;
    View v;
    CHECK_INT(view_open(&v, &attn_view_ops, &host), 0);
    // `:attention "A B C" pair="D" layer=0 head=1`, typed: one head of a sentence pair
    result_full(&v, "attention",
                "{\"tokens\":[\"A\",\"B\",\"C\"],\"ids\":[101,5,102],\"types\":[0,0,1],\"layer\":0,\"head\":1,"
                "\"matrix\":[[1,0,0],[0.5,0.5,0],[0.2,0.3,0.5]]}",
                "attention \"A B\" pair=\"C\" layer=0 head=1", "", false);
    CHECK_INT(fake.nrun, 0);
    // m: the model view asks for the other heads of that text (ids and segments), not the lab's
    v.ops->key(&v, 'm');
    CHECK(fake.nrun >= 1);
    CHECK(fake.nrun >= 1 && !strncmp(fake.runs[fake.nrun - 1], "attention ids=101,5,102 types=0,0,1 layer=", 42));
    // the lab's text changes: the view follows the lab again
    sh.version++;
    fake.nrun = 0;
    ViewResult done = {"attention", fake.runs[0], NULL, 0, NULL, NULL, "", true};
    v.ops->result(&v, &done); // the pending request ends (refused, say)
    v.ops->show(&v);
    CHECK(fake.nrun >= 1 && !strncmp(fake.runs[fake.nrun - 1], "attention ids=7,8 ", 18));
    view_close(&v);
    // a generation that filled the context (n_ctx + 1 ids: the last sampled one never fed
    // back): the map asks for the first n_ctx, which fit
    reset(CMODE_ASCII);
    sh.n_layer = 2, sh.n_head = 2, sh.n_ctx = 4;
    for (int i = 0; i < 5; i++) iv_push(&sh.seq, 10 + i);
    sh.n_prompt = 3;
    CHECK_INT(view_open(&v, &attn_view_ops, &host), 0);
    v.ops->show(&v);
    CHECK(fake.nrun >= 1 && !strcmp(fake.runs[fake.nrun - 1], "attention ids=10,11,12,13 layer=all head=all"));
    view_close(&v);
}

// A new generation's map is being computed: the previous map stays on screen meanwhile (seconds on
// a real model) and the title says it is the previous text's, in the head and model views alike
// (nothing said so: the old map looked like the new one).
static void test_attention_computing(void) {
    reset(CMODE_ASCII);
    sh.n_layer = 1, sh.n_head = 2;
    iv_push(&sh.seq, 7), iv_push(&sh.seq, 8);
    sh.version = 1;
    View v;
    CHECK_INT(view_open(&v, &attn_view_ops, &host), 0);
    v.ops->show(&v);
    CHECK(fake.nrun == 1 && !strcmp(fake.runs[0], "attention ids=7,8 layer=all head=all"));
    const char *maps = "{\"tokens\":[\"A\",\"B\"],\"ids\":[7,8],\"layers\":[[[[1,0],[0.5,0.5]],[[1,0],[0.25,0.75]]]]}";
    result_full(&v, "attention", maps, fake.runs[0], "", true);
    for (int model = 0; model < 2; model++) {
        CellGrid g;
        draw(&v, &g, 120, 20);
        CHECK(!grid_has(&g, "computing"));
        cellgrid_done(&g);
        // the lab generates: a new text, its map asked for
        iv_push(&sh.seq, 9);
        sh.version++;
        fake.nrun = 0;
        v.ops->show(&v);
        CHECK(fake.nrun == 1 && !strncmp(fake.runs[0], "attention ids=7,8,9 ", 20));
        draw(&v, &g, 120, 20);
        CHECK(row_has(&g, 0, "computing the map of the new text; shown meanwhile: 2 tokens"));
        cellgrid_done(&g);
        // it comes: the note goes
        result_full(&v, "attention",
                    "{\"tokens\":[\"A\",\"B\",\"C\"],\"ids\":[7,8,9],\"layers\":[[[[1,0,0],[0.5,0.5,0],[0.2,0.3,0.5]],"
                    "[[1,0,0],[0.5,0.5,0],[0.2,0.3,0.5]]]]}",
                    fake.runs[0], "", true);
        draw(&v, &g, 120, 20);
        CHECK(!grid_has(&g, "computing") && row_has(&g, 0, "3 tokens"));
        cellgrid_done(&g);
        sh.seq.n = 2; // back to two tokens for the model view's round
        sh.version++;
        v.ops->show(&v);
        result_full(&v, "attention", maps, fake.runs[fake.nrun - 1], "", true);
        v.ops->key(&v, 'm');
    }
    view_close(&v);
}

// A deep model's grid with maps missing: the footer says so before the layers shown, where 80
// columns still show it (it came last and was cut: the dots had no reason on screen).
static void test_attention_partial(void) {
    reset(CMODE_ASCII);
    sh.n_layer = 30, sh.n_head = 9;
    for (int round = 0; round < 2; round++) {
        // a typed head: of 3 tokens (the other maps come in one request), of 410 (a head at a time,
        // as the cursor visits them)
        int nt = round ? 410 : 3;
        size_t cap = (size_t)nt * nt * 2 + (size_t)nt * 16 + 256, n = 0;
        char *js = malloc(cap);
        n += (size_t)snprintf(js + n, cap - n, "{\"tokens\":[");
        for (int i = 0; i < nt; i++) n += (size_t)snprintf(js + n, cap - n, "%s\"t\"", i ? "," : "");
        n += (size_t)snprintf(js + n, cap - n, "],\"ids\":[");
        for (int i = 0; i < nt; i++) n += (size_t)snprintf(js + n, cap - n, "%s%d", i ? "," : "", 100 + i);
        n += (size_t)snprintf(js + n, cap - n, "],\"layer\":0,\"head\":1,\"matrix\":[");
        for (int i = 0; i < nt; i++) {
            n += (size_t)snprintf(js + n, cap - n, "%s[", i ? "," : "");
            for (int k = 0; k < nt; k++) n += (size_t)snprintf(js + n, cap - n, "%s%d", k ? "," : "", k == 0);
            n += (size_t)snprintf(js + n, cap - n, "]");
        }
        snprintf(js + n, cap - n, "]}");
        View v;
        CHECK_INT(view_open(&v, &attn_view_ops, &host), 0);
        fake.nrun = 0;
        result_full(&v, "attention", js, "attention \"t\" layer=0 head=1", "", false);
        free(js);
        v.ops->key(&v, 'm');
        CellGrid g;
        draw(&v, &g, 80, 24);
        const char *want = round ? "layer 0 head 1: largest weight 1.0000  (1 of 300 maps in; move to load more)"
                                 : "layer 0 head 1: largest weight 1.0000  (loading: 1 of 300 maps in)";
        if (!row_has(&g, 23, want)) {
            char *txt = rows_text(&g);
            fprintf(stderr, "no '%s' on the last row of\n%s\n", want, txt);
            free(txt);
        }
        CHECK(row_has(&g, 23, want));
        CHECK(round || row_has(&g, 23, "maps in)  layers 0-"));
        CHECK(round ? fake.nrun == 0 : fake.nrun == 1); // the grid of 410 tokens waits for the cursor
        cellgrid_done(&g);
        view_close(&v);
    }
}

// A similarity matrix's figure is labelled with the whole texts (the screen and the SVG cut them
// to their room; it once kept 24 bytes, cut mid-word without an ellipsis in a saved SVG).
static void test_similarity_labels(void) {
    reset(CMODE_C256);
    View v;
    CHECK_INT(view_open(&v, &positions_view_ops, &host), 0);
    result(&v, "similarity",
           "{\"pool\":\"mean\",\"texts\":[\"A man is playing a guitar now\",\"b\"],\"matrix\":[[1,0.5],[0.5,1]]}",
           "similarity \"A man is playing a guitar now\" \"b\"");
    CHECK(shows(&v, 100, 20, (const char *[]){"A·man", NULL})); // drawn: the figure published
    CHECK(fake.figures > 0);
    CHECK_STR(fake.fig_rl[0], "A man is playing a guitar now");
    // another model loaded: its embeddings are not these, so the matrix goes (it stayed on screen)
    result(&v, "load", "{\"model\":\"other\"}", "load other");
    CHECK(lacks(&v, 100, 20, "A·man") && lacks(&v, 100, 20, "cosine similarity of 2 texts"));
    view_close(&v);
}

int main(void) {
    test_helpers();
    test_combining_marks();
    test_similarity_labels();
    test_attention();
    test_attention_lab_after_typed();
    test_attention_deep();
    test_attention_big();
    test_attention_wide();
    test_attention_typed();
    test_attention_computing();
    test_attention_partial();
    test_rank();
    test_history();
    test_lab();
    test_lab_byte_tokens();
    test_lab_prompt_scroll();
    test_lab_foreign_run();
    test_cut_mark();
    test_experiment();
    test_barchart_interval();
    test_textpane();
    test_analysis_modes();
    test_positions();
    test_quant();
    test_train_curves();
    test_train_tied_pair();
    test_oom();
    buf_free(&sh.prompt);
    iv_free(&sh.seq);
    return CHECK_DONE();
}
