// view.h - the TUI's views (tig-style): each a small ops table (open, draw, key, resize, close,
// plus show, result, stream and progress) drawing into a CellGrid that the curses painter
// shows. Views never run the model: they ask their host to run lines of the command language and draw the
// results they are handed (ViewResult), so the TUI stays a way of showing command results.
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "cellgrid.h"
#include "base/json.h"
#include "base/vec.h"

// Keys as views see them: Unicode code points for text (>= 0x20), control characters 1..31
// (VK_CTRL('g') is Ctrl-G), and the named keys below.
enum {
    VK_BASE = 0x200000,
    VK_UP, VK_DOWN, VK_LEFT, VK_RIGHT, VK_SUP, VK_SDOWN, VK_SLEFT, VK_SRIGHT,
    VK_PGUP, VK_PGDN, VK_HOME, VK_END, VK_DELETE, VK_BACKSPACE, VK_ENTER, VK_TAB, VK_BTAB, VK_ESC,
    VK_F1, VK_F2, VK_F3, VK_F4, VK_F5, VK_F6, VK_F7, VK_F8, VK_F9, VK_F10, VK_F11, VK_F12,
};
#define VK_CTRL(c) ((c) & 0x1f)

// What every view may read (the host keeps the model part; the lab keeps the prompt and
// the last generation).
typedef struct ViewShared {
    char model[128];  // model name, "" before the first `model` result
    char arch[16];
    char dtype[12];   // the weights' element type ("F32", "Q4_1", ...), "" before the first `model` result
    char kv[8];       // the KV cache's element type under the session's `set kv`
    int n_layer, n_head, n_embd, n_ctx;
    bool causal;      // a decoder: attention above the diagonal is masked
    bool learned_pe;  // the model has learned absolute position embeddings
    Buf prompt;       // the lab's prompt
    IntVec seq;       // prompt ids + generated ids of the last generation (n = 0: none)
    int n_prompt;     // how many of seq are the prompt
    long long run_id; // run id of the last generation (0: none)
    unsigned version; // bumped whenever the prompt or the generation changes
    int focus;        // 1 + a position of seq the attention view puts its cursor on when it next
                      // shows (the Lab's chosen token, `a`), 0: none
    ColorMode mode;   // what the terminal shows
    bool utf8;        // the locale is UTF-8
} ViewShared;

// run flags: VR_QUIET no log entry, no status message, no view switch; VR_OWN_ERROR the view
// shows a failure itself (no error on the status line either)
enum { VR_QUIET = 1, VR_OWN_ERROR = 2 };

typedef struct ViewHost ViewHost;
struct ViewHost {
    ViewShared *sh;
    void *user;
    // Queue a command line; it runs after the current key, and its result reaches every view.
    void (*run)(ViewHost *h, const char *line, unsigned flags);
    // Show text on the status line (in the error style when error).
    void (*message)(ViewHost *h, bool error, const char *text);
    // Open the command line holding text, the cursor back characters before its end.
    void (*edit)(ViewHost *h, const char *text, int back);
    // Open the command line on text alone, under the prompt `label: `: Enter runs `cmd "TEXT"`
    // with what was typed quoted (quotes and backslashes kept as typed; an empty text too).
    void (*ask)(ViewHost *h, const char *label, const char *text, const char *cmd);
    // Make this matrix what `save FILE.svg|csv` exports (copied).
    void (*figure)(ViewHost *h, const float *v, int rows, int cols, const char *const *row_labels,
                   const char *const *col_labels, bool diverging, const char *title);
    // Make the view called name the current one.
    void (*open_view)(ViewHost *h, const char *name);
};

// A command's result as the views receive it.
typedef struct ViewResult {
    const char *cmd;  // the command name ("generate")
    const char *line; // the line as it ran
    const char *arg;  // its first positional argument, decoded (NULL when none)
    size_t arg_len;
    const Json *json; // the result object; NULL when the command failed
    const char *err;  // the message when it failed, else NULL
    const char *text; // the human form ("" when none)
    bool quiet;       // run with VR_QUIET
} ViewResult;

// The decoding settings of a generation (the Lab names those of the completion it shows).
typedef struct ViewRunSettings {
    int max, top_k;
    double temperature, top_p;
    long long seed; // < 0: not known
} ViewRunSettings;

// One generated token as it is produced.
typedef struct ViewToken {
    int index;        // step of the generation; 0 starts a new one
    int id;
    const char *piece; // display form (tok_piece_display)
    float logprob;
    int n_alts;
    const int *alt_ids;
    const char *const *alt_pieces;
    const float *alt_logprobs;
    // with index 0: the run's prompt (NULL when not known) and its decoding settings
    const char *prompt;
    size_t prompt_len;
    const ViewRunSettings *settings; // NULL when not known
} ViewToken;

// Where a long command stands (an experiment's items), as the progress bar shows it.
typedef struct ViewProgress {
    const char *what;   // "experiment 3"
    const char *detail; // what it works on now ("shots=3 cot=off seed=1, item 17"), or NULL
    long long id;       // the experiment's id
    long done, total;   // units stored so far and in all
    double elapsed_s;   // since the command started
    double left_s;      // estimated time left; NAN until known
    bool finished;      // the command's last report
    const char *table;  // the experiment's table so far (JSON, as an `experiment` result), or NULL
    // a training run's point at this report when point; NAN where it has none
    bool point;
    int step;
    double loss, held_loss, held_acc;
} ViewProgress;

typedef struct View View;

typedef struct ViewOps {
    const char *name;  // "lab": for open_view and the routing of results
    const char *title; // "Lab": the view bar
    const char *abbrev; // what a narrow view bar shows when the title's first two letters are
                        // another view's ("Hd" for Heads beside Help), or NULL
    const char *keys;  // its keys, for the help pane (lines "key  what it does")
    int (*open)(View *v); // allocate v->state (bookkeeping: x*, mem.h); 0
    void (*close)(View *v);
    // Draw into the w x h rectangle of g at (x, y); set v->cur_x/cur_y for a text cursor.
    void (*draw)(View *v, CellGrid *g, int x, int y, int w, int h);
    int (*key)(View *v, int key);              // 1 when the key was used
    void (*resize)(View *v, int w, int h);     // NULL: nothing to do
    void (*show)(View *v);                     // became the current view; NULL: nothing to do
    void (*result)(View *v, const ViewResult *r); // every command result; NULL: ignores them
    void (*stream)(View *v, const ViewToken *t);  // tokens of a running generation; NULL: ignores
    void (*progress)(View *v, const ViewProgress *p); // a long command's progress; NULL: ignores
} ViewOps;

struct View {
    const ViewOps *ops;
    ViewHost *host;
    void *state;
    int cur_x, cur_y; // text cursor relative to the view after draw; -1: none
    bool capture;     // the view takes every key (text editing); the host keeps F1, Ctrl-C, resize
};

extern const ViewOps lab_view_ops, attn_view_ops, positions_view_ops, rank_view_ops, history_view_ops,
    quant_view_ops, log_view_ops, help_view_ops, heads_view_ops, exp_view_ops, train_view_ops;

// Open view v with ops for host h; 0 or -1.
int view_open(View *v, const ViewOps *ops, ViewHost *h);
// Close v (safe on a view that failed to open).
void view_close(View *v);

// Hand the attention view L x H maps of T x T (data [L][H][T][T]) and T token labels directly,
// in the model view (for the benchmark and the golden tests).
void attn_view_set(View *v, int L, int H, int T, const float *data, const char *const *tokens);

// Append the command that submits a ranking: "order" and the candidate numbers best first,
// '=' joining order_n[i] to the one before when tie[i] ("order 3 1 2=4").
void rank_order_line(const int *order_n, const bool *tie, int k, Buf *out);

// ---- text pane: the log and the help (views/textpane.c) ----

// Append text (lines separated by '\n') to the log view, scrolling to the end unless the
// person scrolled up.
void textpane_append(View *v, const char *text, size_t n, int attr);
// Replace the whole text of a pane and scroll to the top.
void textpane_set(View *v, const char *text, size_t n);

// ---- drawing helpers (views/viewdraw.c) ----

// The next character of s (n bytes) at *pos as it is shown in running text: itself when
// printable, spaces as spaces, tab and controls and invalid bytes as their visible forms
// (see label_visible); '\n' as "↵" (or "\n" in ASCII). vis receives it; returns its width
// in columns: 0 for a combining mark that joins the character before it (label_joins; s[0] starts
// the text), which the caller draws on that character's cell; a mark with no character before it
// shows on '◌'.
int vd_char(const char *s, size_t n, size_t *pos, char vis[32], bool utf8);

// One row of wrapped text: bytes [start, end) of the source.
typedef struct VdRow {
    size_t start, end;
} VdRow;

// Break s into rows of at most w columns, at spaces when it can; '\n' ends a row (and is
// not part of it). Returns the number of rows (at least 1) and the rows in *rows (caller frees).
int vd_wrap(const char *s, size_t n, int w, bool utf8, VdRow **rows);

// Draw bytes [start, end) of s at (x, y) in at most maxw columns; returns the columns used.
int vd_text(CellGrid *g, int x, int y, int maxw, const char *s, size_t start, size_t end, CellColor fg,
            CellColor bg, int attr, bool utf8);

// Put zero-width mark (a combining mark as vd_char gives it) on the glyph of the cell at (x, y),
// the left half when that is the right half of a wide glyph; dropped when the cell has no room.
void vd_join(CellGrid *g, int x, int y, const char *mark);

// printf-style text at (x, y) in at most maxw columns, default colours; returns columns used.
int vd_printf(CellGrid *g, int x, int y, int maxw, int attr, bool utf8, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

// A progress bar: "running WHAT [█████     ] 12/40 30%  0:12, 0:28 left".
void vd_progress(CellGrid *g, int x, int y, int w, const char *what, const ViewProgress *p, bool utf8);

// A generation's length and decoding speed, as the Lab and the status line say them: "6 tokens,
// 812.3 tok/s"; the speed left out when it is not a number above 0 (decode_tok_s is null when no
// token was decoded after the prefill's: max=1).
void vd_gen_size(Buf *b, int n_tokens, double tok_s);

// A horizontal rule of w columns ('─', or '-' in ASCII).
void vd_rule(CellGrid *g, int x, int y, int w, bool utf8);

// Display width of the visible form of s (n bytes) as vd_text shows it.
int vd_width(const char *s, size_t n, bool utf8);

// Colours of the UI chrome for mode: an accent (the current view, headings), an error colour.
CellColor vd_accent(ColorMode mode);
CellColor vd_error(ColorMode mode);

