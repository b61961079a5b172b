// lab.c - the prompt lab: a multi-line prompt editor, the decoding parameters (kept with `set`),
// the completion streamed token by token and coloured by probability, and the top alternatives
// of a selected token. Generating runs `generate "PROMPT" max=... temperature=...`.
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "colormap.h"
#include "base/mem.h"
#include "base/utf8.h"
#include "view.h"

#define LAB_MAX_ALTS 20

typedef struct LabTok {
    char *piece;
    int id;
    float logprob;
    int n_alts;
    int alt_ids[LAB_MAX_ALTS];
    char *alt_pieces[LAB_MAX_ALTS];
    float alt_lp[LAB_MAX_ALTS];
} LabTok;

enum { P_MAX, P_TEMP, P_TOPK, P_TOPP, P_SEED, P_N };

typedef struct Lab {
    // the editor works on sh->prompt
    size_t cur;     // cursor, a byte offset
    int scroll;     // first editor row shown
    bool editing;
    // decoding parameters, as `set` reports them
    int max, top_k, alts;
    double temperature, top_p;
    long long seed; // < 0: random
    int sel_param;
    // the completion
    LabTok *toks;
    int n, cap;
    int sel;        // selected token, -1: none
    bool running, stale;
    char stop[16];
    long long run_id;
    double tok_s;
    int n_prompt;
    long long replay_of; // a replay whose prompt `show` will tell
    ViewRunSettings ran; // the settings of the completion shown (ran_known)
    bool ran_known;
    Buf sent;            // the prompt last generated from or shown with its run
    Buf draft;           // a prompt being edited that a run's prompt replaced (u brings it back)
    bool draft_shown;    // u put it in the editor (the run's prompt is the draft now)
    int last_w;          // width of the last draw (row movement in the editor)
} Lab;

static bool same(const Buf *b, const char *s, size_t n) {
    return b->len == n && (!n || !memcmp(b->data, s, n));
}

static void tok_clear(Lab *L) {
    for (int i = 0; i < L->n; i++) {
        free(L->toks[i].piece);
        for (int k = 0; k < L->toks[i].n_alts; k++) free(L->toks[i].alt_pieces[k]);
    }
    L->n = 0;
    L->sel = -1;
}

static LabTok *tok_add(Lab *L) {
    if (L->n == L->cap) {
        L->cap = L->cap ? L->cap * 2 : 64;
        L->toks = xrealloc(L->toks, sizeof *L->toks * (size_t)L->cap);
    }
    LabTok *t = &L->toks[L->n++];
    memset(t, 0, sizeof *t);
    return t;
}

static int lab_open(View *v) {
    Lab *L = xcalloc(1, sizeof *L);
    L->max = 32, L->last_w = 80, L->temperature = 1, L->top_p = 1, L->seed = -1, L->alts = 5;
    L->sel = -1;
    v->state = L;
    return 0;
}

static void lab_close(View *v) {
    Lab *L = v->state;
    tok_clear(L);
    free(L->toks);
    buf_free(&L->sent), buf_free(&L->draft);
    free(L);
}

// ---- the figure: each completion token's probability and its top alternatives' ----

static void publish(View *v) {
    Lab *L = v->state;
    if (L->n <= 0) return;
    int cols = 1;
    for (int i = 0; i < L->n; i++)
        if (1 + L->toks[i].n_alts > cols) cols = 1 + L->toks[i].n_alts;
    if (cols > 1 + LAB_MAX_ALTS) cols = 1 + LAB_MAX_ALTS;
    float *m = malloc(mem_mul((size_t)L->n * (size_t)cols, sizeof(float))); // a figure: checked
    if (!m) {
        char msg[96];
        snprintf(msg, sizeof msg, "out of memory for the figure of %d tokens x %d probabilities", L->n, cols);
        v->host->message(v->host, true, msg);
        return;
    }
    const char **rl = xmalloc(sizeof *rl * (size_t)L->n);
    char **cl = xcalloc((size_t)cols, sizeof *cl);
    for (int i = 0; i < L->n; i++) {
        const LabTok *t = &L->toks[i];
        rl[i] = t->piece ? t->piece : "";
        m[(size_t)i * cols] = expf(t->logprob);
        for (int k = 0; k + 1 < cols; k++) m[(size_t)i * cols + 1 + k] = k < t->n_alts ? expf(t->alt_lp[k]) : NAN;
    }
    for (int c = 0; c < cols; c++) {
        char name[16];
        snprintf(name, sizeof name, c ? "top%d" : "chosen", c);
        cl[c] = xstrdup(name);
    }
    char title[96];
    if (L->run_id > 0) snprintf(title, sizeof title, "token probabilities of run %lld", L->run_id);
    else snprintf(title, sizeof title, "token probabilities of a run not logged");
    v->host->figure(v->host, m, L->n, cols, rl, (const char *const *)cl, false, title);
    for (int c = 0; c < cols; c++) free(cl[c]);
    free(m), free(rl), free(cl);
}

// ---- editing ----

static ViewShared *shared(View *v) { return v->host->sh; }

static void prompt_changed(View *v) {
    ViewShared *sh = shared(v);
    Lab *L = v->state;
    if (sh->seq.n) L->stale = true;
    sh->seq.n = 0, sh->n_prompt = 0;
    sh->version++;
}

static void insert(View *v, const char *s, size_t n) {
    Lab *L = v->state;
    Buf *b = &shared(v)->prompt;
    buf_reserve(b, n);
    memmove(b->data + L->cur + n, b->data + L->cur, b->len - L->cur);
    memcpy(b->data + L->cur, s, n);
    b->len += n;
    b->data[b->len] = 0;
    L->cur += n;
    prompt_changed(v);
}

static void erase(View *v, size_t from, size_t to) {
    Lab *L = v->state;
    Buf *b = &shared(v)->prompt;
    if (from >= to || to > b->len) return;
    memmove(b->data + from, b->data + to, b->len - to + 1);
    b->len -= to - from;
    L->cur = from;
    prompt_changed(v);
}

static size_t prev_char(const Buf *b, size_t p) {
    if (!p) return 0;
    p--;
    while (p > 0 && ((unsigned char)b->data[p] & 0xC0) == 0x80) p--;
    return p;
}

static size_t next_char(const Buf *b, size_t p) {
    if (p >= b->len) return b->len;
    int l = utf8_valid_len(b->data + p, b->len - p);
    return p + (size_t)(l < 0 ? -l : l);
}

// The editor's rows at width w, and the row and column of the cursor.
static int editor_rows(View *v, int w, VdRow **rows, int *crow, int *ccol) {
    Lab *L = v->state;
    const Buf *b = &shared(v)->prompt;
    int nr = vd_wrap(b->data ? b->data : "", b->len, w, shared(v)->utf8, rows);
    *crow = 0, *ccol = 0;
    for (int r = 0; r < nr; r++) {
        if (L->cur < (*rows)[r].start) break;
        // the cursor belongs to the last row that starts at or before it
        *crow = r;
    }
    if (nr > 0) *ccol = vd_width(b->data + (*rows)[*crow].start, L->cur - (*rows)[*crow].start, shared(v)->utf8);
    return nr;
}

// The byte offset in row r nearest to column col.
static size_t row_offset(View *v, const VdRow *r, int col) {
    const Buf *b = &shared(v)->prompt;
    size_t p = r->start;
    int c = 0;
    char vis[32];
    while (p < r->end) {
        size_t q = p;
        int cw = vd_char(b->data, r->end, &q, vis, shared(v)->utf8);
        if (c + cw > col) break;
        c += cw, p = q;
    }
    return p;
}

static int editor_width(int w) { return w - 2 > 1 ? w - 2 : 1; }

static void move_rows(View *v, int delta, int w) {
    Lab *L = v->state;
    VdRow *rows;
    int cr, cc, nr = editor_rows(v, editor_width(w), &rows, &cr, &cc);
    if (nr < 0) return;
    int t = cr + delta;
    if (t >= 0 && t < nr) L->cur = row_offset(v, &rows[t], cc);
    else if (t < 0) L->cur = 0;
    else L->cur = shared(v)->prompt.len;
    free(rows);
}

static void row_edge(View *v, bool end, int w) {
    Lab *L = v->state;
    VdRow *rows;
    int cr, cc, nr = editor_rows(v, editor_width(w), &rows, &cr, &cc);
    if (nr < 0) return;
    L->cur = end ? rows[cr].end : rows[cr].start;
    free(rows);
}

// ---- commands ----

static void fmt_num(char *out, size_t cap, double x) {
    snprintf(out, cap, "%.4g", x);
}

static void generate(View *v) {
    Lab *L = v->state;
    const Buf *b = &shared(v)->prompt;
    Buf line = {0};
    buf_puts(&line, "generate ");
    buf_put_quoted(&line, b->data ? b->data : "", b->len);
    char t[32], p[32];
    fmt_num(t, sizeof t, L->temperature);
    fmt_num(p, sizeof p, L->top_p);
    buf_printf(&line, " max=%d temperature=%s top_k=%d top_p=%s", L->max, t, L->top_k, p);
    if (L->seed >= 0) buf_printf(&line, " seed=%lld", L->seed);
    buf_clear(&L->sent);
    buf_put(&L->sent, b->data ? b->data : "", b->len);
    buf_clear(&L->draft), L->draft_shown = false; // generated from: nothing left to bring back
    L->editing = false;
    v->capture = false;
    v->host->run(v->host, line.data, 0);
    buf_free(&line);
}

static void change_param(View *v, int dir) {
    Lab *L = v->state;
    char cmd[96];
    switch (L->sel_param) {
    case P_MAX: {
        int m = dir > 0 ? (L->max < 8 ? L->max + 1 : L->max + 8) : (L->max <= 8 ? L->max - 1 : L->max - 8);
        if (m < 1) m = 1;
        snprintf(cmd, sizeof cmd, "set max %d", m);
        break;
    }
    case P_TEMP: {
        double t = round((L->temperature + 0.1 * dir) * 10) / 10;
        if (t < 0) t = 0;
        snprintf(cmd, sizeof cmd, "set temperature %g", t);
        break;
    }
    case P_TOPK: {
        static const int steps[] = {0, 1, 2, 5, 10, 20, 40, 50, 100, 200, 500, 1000};
        int n = (int)(sizeof steps / sizeof *steps), i = 0;
        while (i < n - 1 && steps[i] < L->top_k) i++;
        if (dir > 0) i = steps[i] > L->top_k ? i : i + 1 < n ? i + 1 : i;
        else i = i > 0 ? i - 1 : 0;
        snprintf(cmd, sizeof cmd, "set top_k %d", steps[i]);
        break;
    }
    case P_TOPP: {
        double p = round((L->top_p + 0.05 * dir) * 100) / 100;
        if (p > 1) p = 1;
        if (p < 0.05) p = 0.05;
        snprintf(cmd, sizeof cmd, "set top_p %g", p);
        break;
    }
    default: {
        long long s = L->seed + dir;
        if (s < 0) snprintf(cmd, sizeof cmd, "set seed random");
        else snprintf(cmd, sizeof cmd, "set seed %lld", s);
    }
    }
    v->host->run(v->host, cmd, 0);
}

// ---- keys ----

static int edit_key(View *v, int key, int w) {
    Lab *L = v->state;
    Buf *b = &shared(v)->prompt;
    if (L->cur > b->len) L->cur = b->len;
    switch (key) {
    case VK_ESC: L->editing = false, v->capture = false; return 1;
    case VK_CTRL('g'): case VK_F5: generate(v); return 1;
    case VK_ENTER: insert(v, "\n", 1); return 1;
    case VK_TAB: insert(v, "\t", 1); return 1;
    case VK_BACKSPACE: case VK_CTRL('h'): erase(v, prev_char(b, L->cur), L->cur); return 1;
    case VK_DELETE: case VK_CTRL('d'): erase(v, L->cur, next_char(b, L->cur)); return 1;
    case VK_LEFT: case VK_CTRL('b'): L->cur = prev_char(b, L->cur); return 1;
    case VK_RIGHT: case VK_CTRL('f'): L->cur = next_char(b, L->cur); return 1;
    case VK_UP: case VK_CTRL('p'): move_rows(v, -1, w); return 1;
    case VK_DOWN: case VK_CTRL('n'): move_rows(v, 1, w); return 1;
    case VK_HOME: row_edge(v, false, w); return 1;
    case VK_END: row_edge(v, true, w); return 1;
    // Ctrl-A and Ctrl-E go to the line's ends, as in readline and Emacs, not the screen row's: on
    // a line wrapped over several rows, Ctrl-A Ctrl-K deleted its last row alone, and what was
    // typed next joined the line's other rows
    case VK_CTRL('a'):
        while (L->cur > 0 && b->data[L->cur - 1] != '\n') L->cur--;
        return 1;
    case VK_CTRL('e'):
        while (L->cur < b->len && b->data[L->cur] != '\n') L->cur++;
        return 1;
    case VK_CTRL('k'): { // to the end of the line (or the newline itself)
        size_t e = L->cur;
        while (e < b->len && b->data[e] != '\n') e++;
        if (e == L->cur && e < b->len) e++;
        erase(v, L->cur, e);
        return 1;
    }
    case VK_CTRL('u'): {
        size_t s = L->cur;
        while (s > 0 && b->data[s - 1] != '\n') s--;
        erase(v, s, L->cur);
        return 1;
    }
    case VK_CTRL('w'): {
        size_t s = L->cur;
        while (s > 0 && b->data[s - 1] == ' ') s--;
        while (s > 0 && b->data[s - 1] != ' ' && b->data[s - 1] != '\n') s--;
        erase(v, s, L->cur);
        return 1;
    }
    }
    if (key >= 0x20 && key < VK_BASE && key != 0x7F) {
        char u[4];
        insert(v, u, (size_t)utf8_encode((uint32_t)key, u));
    }
    return 1; // the editor takes every key
}

static int lab_key(View *v, int key) {
    Lab *L = v->state;
    if (L->editing) return edit_key(v, key, L->last_w);
    switch (key) {
    case 'e': case 'i': case VK_ENTER:
        if (key == VK_ENTER && L->sel >= 0) return 0;
        L->editing = true, v->capture = true;
        if (L->cur > shared(v)->prompt.len) L->cur = shared(v)->prompt.len;
        return 1;
    case 'g': case VK_CTRL('g'): case VK_F5: generate(v); return 1;
    case 'u': { // the draft and the prompt change places
        if (!L->draft.len) {
            v->host->message(v->host, false, "no prompt of yours to bring back: u does so after a run replaced one you were editing");
            return 1;
        }
        Buf *b = &shared(v)->prompt, t = *b;
        *b = L->draft, L->draft = t;
        L->cur = b->len, L->scroll = 0;
        L->draft_shown = !L->draft_shown;
        // the completion is of the prompt shown again only when that is the run's, unedited
        L->stale = L->n && !same(&L->sent, b->data ? b->data : "", b->len);
        v->host->message(v->host, false, L->draft_shown ? "your prompt is back (u again shows the run's)"
                                                        : "the run's prompt again (u brings yours back)");
        return 1;
    }
    case VK_LEFT: case 'h':
        if (L->n) L->sel = L->sel < 0 ? L->n - 1 : L->sel > 0 ? L->sel - 1 : 0;
        return 1;
    case VK_RIGHT: case 'l':
        if (L->n) L->sel = L->sel < 0 ? 0 : L->sel + 1 < L->n ? L->sel + 1 : L->sel;
        return 1;
    case VK_HOME: if (L->n) L->sel = 0; return 1;
    case VK_END: if (L->n) L->sel = L->n - 1; return 1;
    case VK_ESC: if (L->sel < 0) return 0; L->sel = -1; return 1;
    case '<': case ',': L->sel_param = (L->sel_param + P_N - 1) % P_N; return 1;
    case '>': case '.': L->sel_param = (L->sel_param + 1) % P_N; return 1;
    case '+': case '=': change_param(v, 1); return 1;
    case '-': case '_': change_param(v, -1); return 1;
    case 'a': // the chosen token's row of the attention: what it attends to
        v->host->sh->focus = L->sel >= 0 ? L->n_prompt + L->sel + 1 : 0;
        v->host->open_view(v->host, "attn");
        return 1;
    }
    return 0;
}

// ---- results ----

static void take_settings(Lab *L, const Json *j) {
    L->max = (int)json_num_or(j, "max", L->max);
    L->temperature = json_num_or(j, "temperature", L->temperature);
    L->top_k = (int)json_num_or(j, "top_k", L->top_k);
    L->top_p = json_num_or(j, "top_p", L->top_p);
    L->alts = (int)json_num_or(j, "alts", L->alts);
    const Json *s = json_get(j, "seed");
    L->seed = s && s->type == JSON_NUM ? (long long)s->num : -1;
}

static char *jstr(const Json *j) {
    if (!j || j->type != JSON_STR) return xstrdup("");
    char *s = xmalloc(j->len + 1);
    memcpy(s, j->str, j->len + 1);
    return s;
}

static void take_generation(View *v, const Json *j) {
    Lab *L = v->state;
    ViewShared *sh = shared(v);
    tok_clear(L);
    const Json *steps = json_get(j, "steps");
    for (size_t i = 0; steps && i < steps->len; i++) {
        const Json *s = &steps->items[i];
        LabTok *t = tok_add(L);
        t->id = (int)json_num_or(s, "id", -1);
        t->piece = jstr(json_get(s, "piece"));
        t->logprob = (float)json_num_or(s, "logprob", 0);
        const Json *top = json_get(s, "top");
        for (size_t k = 0; top && k < top->len && k < LAB_MAX_ALTS; k++) {
            t->alt_ids[k] = (int)json_num_or(&top->items[k], "id", -1);
            t->alt_pieces[k] = jstr(json_get(&top->items[k], "piece"));
            t->alt_lp[k] = (float)json_num_or(&top->items[k], "logprob", 0);
            t->n_alts = (int)k + 1;
        }
    }
    L->run_id = (long long)json_num_or(j, "run_id", 0);
    L->tok_s = json_num_or(j, "decode_tok_s", NAN);
    const Json *seed = json_get(j, "seed"), *temp = json_get(j, "temperature");
    L->ran_known = temp && temp->type == JSON_NUM;
    L->ran = (ViewRunSettings){(int)json_num_or(j, "max_tokens", 0), (int)json_num_or(j, "top_k", 0),
                               json_num_or(j, "temperature", 0), json_num_or(j, "top_p", 1),
                               seed && seed->type == JSON_NUM ? (long long)seed->num : -1};
    snprintf(L->stop, sizeof L->stop, "%s", json_str_or(j, "stop_reason", ""));
    L->running = false, L->stale = false;
    // the sequence the attention view shows: prompt ids, then the generated ids
    const Json *pid = json_get(j, "prompt_ids"), *ids = json_get(j, "ids");
    sh->seq.n = 0;
    for (size_t i = 0; pid && i < pid->len; i++) iv_push(&sh->seq, (int)pid->items[i].num);
    sh->n_prompt = sh->seq.n;
    L->n_prompt = sh->seq.n;
    for (size_t i = 0; ids && i < ids->len; i++) iv_push(&sh->seq, (int)ids->items[i].num);
    sh->run_id = L->run_id;
    sh->version++;
    publish(v);
}

// Show a run's prompt in the editor. A prompt typed and not yet generated from is kept as the
// draft (u brings it back): a :generate or a replay would otherwise drop it without a word.
static void set_prompt(View *v, const char *s, size_t n) {
    Lab *L = v->state;
    Buf *b = &shared(v)->prompt;
    if (b->len && !same(b, s, n) && !same(&L->sent, b->data, b->len)) {
        buf_clear(&L->draft);
        buf_put(&L->draft, b->data, b->len);
        v->host->message(v->host, false, "the run's prompt replaced the one you were editing: u brings yours back");
    }
    buf_clear(&L->sent);
    buf_put(&L->sent, s, n);
    L->draft_shown = false;
    buf_clear(b);
    buf_put(b, s, n);
    L->cur = b->len;
    L->scroll = 0;
}

static void lab_result(View *v, const ViewResult *r) {
    Lab *L = v->state;
    const char *c = r->cmd;
    if (!strcmp(c, "set") && r->json) {
        take_settings(L, r->json);
    } else if (!strcmp(c, "generate")) {
        L->running = false;
        if (!r->json) return;
        // a chat=true run (a template rendered the prompt): the text the model read, as a replay
        // shows it, so that g goes on from it (the user's message alone lost the template)
        const Json *tp = json_get(r->json, "template"), *pr = json_get(r->json, "prompt");
        if (tp && tp->type == JSON_STR && pr && pr->type == JSON_STR) set_prompt(v, pr->str, pr->len);
        else if (r->arg) set_prompt(v, r->arg, r->arg_len);
        take_generation(v, r->json);
    } else if (!strcmp(c, "replay")) {
        L->running = false;
        if (!r->json) return;
        take_generation(v, r->json);
        L->replay_of = (long long)json_num_or(r->json, "replay_of", 0);
        char line[64];
        snprintf(line, sizeof line, "show %lld", L->replay_of);
        v->host->run(v->host, line, VR_QUIET);
    } else if (!strcmp(c, "show") && r->json && L->replay_of &&
               (long long)json_num_or(r->json, "run_id", 0) == L->replay_of) {
        const Json *p = json_get(r->json, "prompt");
        if (p && p->type == JSON_STR) set_prompt(v, p->str, p->len);
        L->replay_of = 0;
    } else if ((!strcmp(c, "load") || !strcmp(c, "model")) && r->json && !r->quiet) {
        if (!strcmp(c, "load")) tok_clear(L);
    }
}

static void lab_stream(View *v, const ViewToken *t) {
    Lab *L = v->state;
    if (t->index == 0) {
        tok_clear(L);
        L->running = true, L->stale = false;
        L->stop[0] = 0;
        L->run_id = 0;
        if (t->prompt) set_prompt(v, t->prompt, t->prompt_len);
        L->ran_known = t->settings != NULL;
        if (t->settings) L->ran = *t->settings;
    }
    LabTok *k = tok_add(L);
    k->id = t->id;
    k->piece = xstrdup(t->piece ? t->piece : "");
    k->logprob = t->logprob;
    for (int i = 0; i < t->n_alts && i < LAB_MAX_ALTS; i++) {
        k->alt_ids[i] = t->alt_ids[i];
        k->alt_pieces[i] = xstrdup(t->alt_pieces[i] ? t->alt_pieces[i] : "");
        k->alt_lp[i] = t->alt_logprobs[i];
        k->n_alts = i + 1;
    }
}

static void lab_show(View *v) { publish(v); }

// ---- drawing ----

// Background and text colours for probability p.
static void prob_colours(ColorMode mode, double p, CellColor *bg, CellColor *fg) {
    if (mode == CMODE_ASCII) {
        *bg = *fg = CELLCOLOR_DEFAULT;
        return;
    }
    Rgb c = cmap_rgb(CMAP_SEQUENTIAL, p);
    *bg = cellcolor_rgb(mode, c);
    bool light = cmap_lightness(mode == CMODE_TRUECOLOR ? c : bg->rgb) > 0.6;
    *fg = mode == CMODE_TRUECOLOR ? cellcolor_rgb(mode, light ? (Rgb){0, 0, 0} : (Rgb){255, 255, 255})
                                  : cellcolor_index(mode, light ? (mode == CMODE_C8 ? 0 : 16) : (mode == CMODE_C8 ? 7 : 231));
}

// The bytes of a token as the application shows it: a byte that is not UTF-8 on its own comes as
// "<0xNN>" (tok_piece_display); those of 0x80 and above are turned back into that byte.
static void piece_bytes(const char *s, Buf *out) {
    buf_clear(out);
    for (size_t i = 0; s[i];) {
        unsigned b;
        if (!strncmp(s + i, "<0x", 3) && isxdigit((unsigned char)s[i + 3]) && isxdigit((unsigned char)s[i + 4]) &&
            s[i + 5] == '>' && sscanf(s + i + 3, "%2X", &b) == 1 && b >= 0x80) {
            buf_putc(out, (char)b);
            i += 6;
        } else {
            buf_putc(out, s[i++]);
        }
    }
}

// True when s[0..n) ends inside a UTF-8 sequence: a lead byte with fewer continuation bytes after
// it than it announces.
static bool utf8_cut_tail(const char *s, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned char c = (unsigned char)s[n - k];
        if ((c & 0xC0) == 0x80) continue;
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 1;
        return c >= 0xC2 && need > k;
    }
    return false;
}

// The tokens from i on that show one character together, as a byte-level model writes a CJK
// character or an emoji in two to four byte tokens (each alone is "<0xE7>"...): i..*end-1, their
// bytes in *text, the probability of all of them in *p. One token alone when nothing continues it.
static void token_group(const Lab *L, int i, int *end, Buf *text, double *p) {
    Buf nx = {0};
    piece_bytes(L->toks[i].piece ? L->toks[i].piece : "", text);
    double lp = L->toks[i].logprob;
    int j = i + 1;
    while (j < L->n && j - i < 4 && utf8_cut_tail(text->data, text->len)) {
        piece_bytes(L->toks[j].piece ? L->toks[j].piece : "", &nx);
        if (!nx.len || !utf8_is_cont(nx.data[0])) break;
        buf_put(text, nx.data, nx.len);
        lp += L->toks[j].logprob, j++;
    }
    buf_free(&nx);
    *end = j, *p = exp(lp);
}

// Lays out the completion tokens in w columns; calls put for each glyph when g is non-NULL; the
// tokens of one character (token_group) are one glyph, coloured by their joint probability and
// selected together. Returns the number of rows; *sel_row gets the row of the selected token.
static int layout_tokens(View *v, CellGrid *g, int x, int y, int w, int first_row, int max_rows, int *sel_row) {
    Lab *L = v->state;
    ViewShared *sh = shared(v);
    int row = 0, col = 0;
    char vis[32], glyph[LABEL_GLYPH_MAX];
    Buf text = {0};
    if (sel_row) *sel_row = 0;
    for (int i = 0, end; i < L->n; i = end) {
        double p;
        token_group(L, i, &end, &text, &p);
        const char *s = text.len ? text.data : "";
        size_t n = text.len;
        CellColor bg, fg;
        prob_colours(sh->mode, p, &bg, &fg);
        bool sel = L->sel >= i && L->sel < end;
        int attr = sel ? CELL_REVERSE | CELL_BOLD : 0;
        if (sh->mode == CMODE_ASCII && p < 0.1) attr |= CELL_UNDERLINE;
        int tw = vd_width(s, n, sh->utf8);
        if (col > 0 && col + tw > w && tw <= w) row++, col = 0; // keep short tokens whole
        if (sel && sel_row) *sel_row = row;
        if (n == 0) { // an empty piece still gets a cell
            s = " ", n = 1;
        }
        for (size_t q = 0; q < n;) {
            bool nl = s[q] == '\n';
            int cw = vd_char(s, n, &q, vis, sh->utf8);
            if (cw == 0) { // a combining mark: on the glyph before it
                if (g && col > 0 && row >= first_row && row < first_row + max_rows)
                    vd_join(g, x + col - 1, y + row - first_row, vis);
                continue;
            }
            if (col + cw > w) row++, col = 0;
            size_t vp = 0, vn = strlen(vis);
            int gw;
            while ((gw = label_next(vis, vn, &vp, glyph)) > 0) {
                if (g && row >= first_row && row < first_row + max_rows)
                    cellgrid_put(g, x + col, y + row - first_row, glyph, gw, fg, bg, attr);
                col += gw;
            }
            if (nl) row++, col = 0;
        }
    }
    buf_free(&text);
    return L->n ? row + 1 : 0;
}

static void draw_alternatives(View *v, CellGrid *g, int x, int y, int w, int h) {
    Lab *L = v->state;
    ViewShared *sh = shared(v);
    if (h < 1 || w < 12) return;
    if (L->sel < 0 || L->sel >= L->n) {
        if (L->n) vd_printf(g, x, y, w, CELL_DIM, sh->utf8, "h/l or left/right: pick a token to see its alternatives");
        return;
    }
    const LabTok *t = &L->toks[L->sel];
    char lab[64];
    label_format(lab, sizeof lab, t->piece, strlen(t->piece), 16, sh->utf8);
    vd_printf(g, x, y, w, CELL_BOLD, sh->utf8, "token %d/%d  %s  p %.4f  logprob %.3f", L->sel + 1, L->n, lab,
              exp(t->logprob), t->logprob);
    int bar_w = w - 30 > 0 ? (w - 30 < 24 ? w - 30 : 24) : 0;
    for (int k = 0; k < t->n_alts && k + 1 < h; k++) {
        double p = exp(t->alt_lp[k]);
        int used = label_format(lab, sizeof lab, t->alt_pieces[k], strlen(t->alt_pieces[k]), 14, sh->utf8);
        bool chosen = t->alt_ids[k] == t->id;
        int X = x, a = chosen ? CELL_BOLD : 0;
        X += vd_printf(g, X, y + 1 + k, w, a, sh->utf8, "%s ", chosen ? (sh->utf8 ? "\u25B6" : ">") : " ");
        X += cellgrid_text(g, X, y + 1 + k, x + w - X, lab, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, a) + 14 - used;
        X += vd_printf(g, X, y + 1 + k, x + w - X, a, sh->utf8, " %7.4f ", p);
        CellColor bg, fg;
        prob_colours(sh->mode, p, &bg, &fg);
        int n = (int)lround(p * bar_w);
        for (int i = 0; i < n && X + i < x + w; i++)
            cellgrid_put(g, X + i, y + 1 + k, sh->mode == CMODE_ASCII ? "#" : sh->utf8 ? "\u2588" : "#", 1,
                         sh->mode == CMODE_ASCII ? CELLCOLOR_DEFAULT : bg, CELLCOLOR_DEFAULT, 0);
    }
}

static const char *const param_names[P_N] = {"max", "temperature", "top_k", "top_p", "seed"};

// The settings of the completion shown that the parameter line (the next generation's) does not
// say (" temperature 0 max 5"): a :generate with its own options, a replay, a sampled run's seed
// when the line says random.
static void ran_with(const Lab *L, Buf *out) {
    if (!L->ran_known) return;
    const ViewRunSettings *r = &L->ran;
    Buf d = {0};
    if (fabs(r->temperature - L->temperature) > 1e-6) buf_printf(&d, " temperature %.4g", r->temperature);
    if (r->temperature > 0) {
        if (r->top_k != L->top_k) buf_printf(&d, " top_k %d", r->top_k);
        if (fabs(r->top_p - L->top_p) > 1e-6) buf_printf(&d, " top_p %.4g", r->top_p);
        if (r->seed >= 0 && r->seed != L->seed) buf_printf(&d, " seed %lld", r->seed);
    }
    if (r->max > 0 && r->max != L->max) buf_printf(&d, " max %d", r->max);
    buf_put(out, d.data, d.len);
    buf_free(&d);
}

static void lab_draw(View *v, CellGrid *g, int x, int y, int w, int h) {
    Lab *L = v->state;
    ViewShared *sh = shared(v);
    bool u = sh->utf8;
    L->last_w = w;
    v->cur_x = v->cur_y = -1;
    if (h < 6) return;
    // prompt editor
    CellColor acc = vd_accent(sh->mode);
    int X = x + cellgrid_text(g, x, y, w, "Prompt", acc, CELLCOLOR_DEFAULT, CELL_BOLD);
    if (L->draft.len && !L->editing) // first, where 80 columns show it: the status line's word is soon gone
        X += 2 + vd_printf(g, X + 2, y, w - X - 2 + x, CELL_BOLD, u, "%s",
                           L->draft_shown ? "u: the run's prompt" : "u: back to yours (a run replaced it)");
    vd_printf(g, X + 2, y, w - X - 2 + x, CELL_DIM, u, "%s",
              L->editing ? "editing: Esc done, Enter new line, Ctrl-G or F5 generate"
                         : "e edit, g/Ctrl-G/F5 generate, </> +/- parameters, h/l tokens, a attention");
    int ew = editor_width(w);
    VdRow *rows = NULL;
    int cr, cc, nr = editor_rows(v, ew, &rows, &cr, &cc);
    if (nr < 1) nr = 1;
    int eh = nr < 2 ? 2 : nr;
    int cap = h / 3 > 2 ? h / 3 : 2;
    if (eh > cap) eh = cap;
    if (L->editing) {
        if (cr < L->scroll) L->scroll = cr;
        if (cr >= L->scroll + eh) L->scroll = cr - eh + 1;
    }
    if (L->scroll > nr - eh) L->scroll = nr - eh > 0 ? nr - eh : 0;
    const Buf *b = &sh->prompt;
    for (int r = 0; r < eh; r++) {
        // the bar's ends say when the prompt goes on above or below (an 11-line prompt showed its
        // last 6 lines with nothing to say there were more)
        bool above = r == 0 && L->scroll > 0, below = r == eh - 1 && L->scroll + eh < nr;
        const char *bar = above ? (u ? "\u2191" : "^") : below ? (u ? "\u2193" : "v") : u ? "\u2502" : "|";
        cellgrid_put(g, x, y + 1 + r, bar, 1, L->editing ? acc : CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT,
                     L->editing || above || below ? CELL_BOLD : CELL_DIM);
        int k = L->scroll + r;
        if (rows && k < nr && b->data) vd_text(g, x + 2, y + 1 + r, ew, b->data, rows[k].start, rows[k].end,
                                              CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, 0, u);
    }
    if (!b->len && !L->editing)
        vd_printf(g, x + 2, y + 1, ew, CELL_DIM, u, "(empty: press e and type a prompt; empty starts from the beginning-of-text token)");
    if (L->editing) v->cur_x = 2 + (cc < ew ? cc : ew - 1), v->cur_y = 1 + cr - L->scroll;
    free(rows);
    // parameters
    int py = y + 1 + eh;
    X = x;
    for (int i = 0; i < P_N && X < x + w; i++) {
        char val[32];
        switch (i) {
        case P_MAX: snprintf(val, sizeof val, "%d", L->max); break;
        case P_TEMP: snprintf(val, sizeof val, "%.4g", L->temperature); break;
        case P_TOPK: snprintf(val, sizeof val, "%d%s", L->top_k, L->top_k ? "" : " (off)"); break;
        case P_TOPP: snprintf(val, sizeof val, "%.4g", L->top_p); break;
        default: if (L->seed < 0) snprintf(val, sizeof val, "random"); else snprintf(val, sizeof val, "%lld", L->seed);
        }
        int attr = i == L->sel_param ? CELL_REVERSE : 0;
        X += vd_printf(g, X, py, x + w - X, attr | CELL_DIM, u, "%s ", param_names[i]);
        X += vd_printf(g, X, py, x + w - X, attr | CELL_BOLD, u, "%s", val);
        X += 2;
    }
    // completion heading
    int cy = py + 1;
    vd_rule(g, x, cy, w, u);
    Buf head = {0};
    if (L->running) {
        buf_printf(&head, " Completion: generating... %d token%s (Ctrl-C stops) ", L->n, L->n == 1 ? "" : "s");
    } else if (L->n) {
        char run[32] = "not logged"; // the database could not take it (run_id null)
        if (L->run_id > 0) snprintf(run, sizeof run, "run #%lld", L->run_id);
        buf_printf(&head, " Completion%s: %s, ", L->stale ? " (of the previous prompt)" : "", run);
        vd_gen_size(&head, L->n, L->tok_s);
        buf_printf(&head, ", stop: %s ", L->stop[0] ? L->stop : "?");
    } else {
        buf_puts(&head, " Completion ");
    }
    vd_text(g, x + 2, cy, w - 2, head.data, 0, head.len, acc, CELLCOLOR_DEFAULT, CELL_BOLD, u);
    buf_free(&head);
    // the settings the completion ran with that the parameter line (the next generation's) does
    // not say, on a row of their own
    int top = cy + 1;
    Buf ran = {0};
    if (L->n || L->running) ran_with(L, &ran);
    if (ran.len && top < y + h - 3) {
        vd_printf(g, x, top, w, CELL_DIM, u, "ran with%s (the line above is for the next generation)", ran.data);
        top++;
    }
    buf_free(&ran);
    // completion tokens and the alternatives of the selected one
    int avail = y + h - 1 - top; // the last row is the legend
    bool side = w >= 100; // the alternatives beside the completion: wider on wide terminals, so
                          // that the chosen token's line (its text, p, logprob) is not cut
    int aw = side ? (w >= 150 ? 60 : 44) : w, ah = side ? avail : (L->alts + 2 < avail / 2 ? L->alts + 2 : avail / 2);
    int tw = side ? w - aw - 2 : w, th = side ? avail : avail - ah;
    if (th < 1) th = 1;
    int sel_row = 0, total = layout_tokens(v, NULL, 0, 0, tw, 0, 0, &sel_row);
    int first = 0;
    if (L->sel >= 0) first = sel_row >= th ? sel_row - th + 1 : 0;
    else if (total > th) first = total - th; // follow the end
    layout_tokens(v, g, x, top, tw, first, th, NULL);
    if (!L->n && !L->running)
        vd_printf(g, x, top, tw, CELL_DIM, u, "(no completion yet)");
    if (side) {
        for (int r = 0; r < avail; r++)
            cellgrid_put(g, x + tw + 1, top + r, u ? "\u2502" : "|", 1, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, CELL_DIM);
        draw_alternatives(v, g, x + tw + 3, top, aw - 1, avail);
    } else if (ah > 0) {
        draw_alternatives(v, g, x, top + th, w, ah);
    }
    // legend: the probability scale
    int ly = y + h - 1;
    X = x + vd_printf(g, x, ly, w, CELL_DIM, u, "probability  0 ");
    for (int i = 0; i < 16 && X + i < x + w; i++) {
        CellColor bg, fg;
        prob_colours(sh->mode, i / 15.0, &bg, &fg);
        cellgrid_put(g, X + i, ly, sh->mode == CMODE_ASCII ? "_" : " ", 1, fg, bg, 0);
    }
    vd_printf(g, X + 17, ly, x + w - X - 17, CELL_DIM, u, "1%s", sh->mode == CMODE_ASCII ? "  (underlined: p < 0.1)" : "");
}

const ViewOps lab_view_ops = {
    .name = "lab",
    .title = "Lab",
    .keys = "e i Enter  edit the prompt (Esc ends editing; Enter is a new line while editing)\n"
            "g Ctrl-G F5  generate with the parameters shown\n"
            "< > (or , .)  choose a parameter;  + -  change it (runs set KEY VALUE)\n"
            "h l  left right  select a completion token: its probability and top alternatives\n"
            "a  the attention of prompt + completion\n"
            "u  bring back the prompt you were editing when a run (:generate, a replay) replaced it\n"
            "Ctrl-C  stop a generation (what was produced is kept)",
    .open = lab_open,
    .close = lab_close,
    .draw = lab_draw,
    .key = lab_key,
    .show = lab_show,
    .result = lab_result,
    .stream = lab_stream,
};
