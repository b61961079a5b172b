// tui.c - the full-screen interface: curses setup and teardown, the layout (header, view bar,
// view, status line, command line), the event loop, GNU readline through its callback interface,
// running command lines and handing their results to the views, and terminal hygiene: resize at
// any moment, a message below the minimum size, nothing on stdout while curses owns the screen
// (stdout and stderr go to the log pane), the terminal restored on every way out.
#include "tui.h"

#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "heatmap_curses.h" // curses.h with wide characters
#include <readline/history.h>
#include <readline/readline.h>

#include "commands.h"
#include "db.h"
#include "front.h"
#include "print.h"
#include "lineedit.h"
#include "tok/tokenizer.h"
#include "label.h"
#include "view.h"
#include "base/clock.h"
#include "base/mem.h"

// The views in the order of the view bar and of their keys 1..9, then 0.
enum { V_LAB, V_ATTN, V_POS, V_RANK, V_HIST, V_LOG, V_HELP, V_QUANT, V_HEADS, V_EXP, V_TRAIN, V_N };
static const ViewOps *const view_table[V_N] = {&lab_view_ops,  &attn_view_ops,  &positions_view_ops,
                                               &rank_view_ops, &history_view_ops, &log_view_ops,
                                               &help_view_ops, &quant_view_ops, &heads_view_ops,
                                               &exp_view_ops,  &train_view_ops};

#define MIN_W 50 // below this size only a message is shown
#define MIN_H 12
#define VK_RESIZE (VK_BASE + 0x100)
#define VK_ALT 0x40000000    // or-ed into a key typed with Alt (ESC first)
#define RUN_HELP 0x100       // run flag: show the help pane with the view's keys
#define QUEUE_MAX 32
#define TYPEAHEAD_MAX 256

typedef struct Queued {
    char *line;
    unsigned flags;
} Queued;

typedef struct Tui {
    App *app;
    SCREEN *scr;
    FILE *tty_out, *devnull;
    int saved_out, saved_err; // the real stdout and stderr while theirs point at the log file
    int log_fd;
    off_t log_off;
    HmCurses *painter;
    CellGrid grid;
    ViewShared sh;
    ViewHost host;
    View views[V_N];
    int cur, prev, help_from;
    // each view's figure while another is current (`save` exports the current view's: it wrote
    // the positions map from the Experiments view); the current one's is the App's own
    Figure vfig[V_N];
    int calling; // the view whose result or progress hook runs now (-1: none)
    bool cmd_focus, confirm_quit, quit, too_small, view_dirty;
    bool batch, batch_full; // taking the keys of a paste: paint later (batch_full: in full)
    bool keys_utf8;         // the C locale: LC_CTYPE is C.UTF-8 for the keys (tui_run)
    char status[600];
    bool status_err;
    Queued queue[QUEUE_MAX];
    int nq;
    int typeahead[TYPEAHEAD_MAX];
    int nta;
    char *hist_path;
    // bytes waiting for readline, and the line it finished
    unsigned char rl_in[64];
    int rl_n, rl_pos;
    char *rl_line;
    bool rl_done;
    // the command line asks for the text of one argument (host_ask): the command it goes to,
    // "" on an ordinary command line
    char ask_cmd[64];
    // the command running now
    const char *running;
    bool q_noted; // q was pressed while the command runs: said on the status line, not kept
    int gen_tokens, gen_candidate;
    double last_paint;
    char db[300];
    unsigned model_serial; // the App's model_serial of the model the header and views describe
} Tui;

static Tui *T;              // the one interface (signal handlers and readline callbacks reach it here)
static volatile sig_atomic_t active;  // curses owns the terminal
static volatile sig_atomic_t got_int; // Ctrl-C arrived
static volatile sig_atomic_t got_hup; // SIGHUP or SIGTERM (the terminal went away, the session ends): its number
static volatile sig_atomic_t *cancel_flag;

// ---------------------------------------------------------------------------------------
// Terminal hygiene

// Give the terminal back: leave curses (the alternate screen, the modes) and point stdout and
// stderr at the terminal again. Safe to call twice, and from the fatal-signal handler.
static void restore_terminal(void) {
    if (!active) return;
    active = 0;
    endwin();
    if (T) {
        if (T->tty_out) fflush(T->tty_out);
        fflush(stdout);
        fflush(stderr);
        if (T->saved_out >= 0) dup2(T->saved_out, STDOUT_FILENO);
        if (T->saved_err >= 0) dup2(T->saved_err, STDERR_FILENO);
    }
}

void front_restore_terminal(void) { restore_terminal(); }

static void on_fatal(int sig) {
    restore_terminal();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_interrupt(int sig) {
    (void)sig;
    got_int = 1;
    if (cancel_flag) *cancel_flag = 1;
}

// A closed terminal (an SSH connection dropped, a tmux pane killed) or a polite kill: the command
// running stops as at Ctrl-C, so that what it made is kept (a generation's tokens are logged as a
// cancelled run; they were lost when SIGHUP ended qkv at once), then qkv leaves (an unfinished
// ranking stores nothing, as when q is confirmed) with the signal's status.
static void on_hangup(int sig) {
    got_hup = sig;
    if (cancel_flag) *cancel_flag = 1;
}

static const int fatal_signals[] = {SIGQUIT, SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL};
static const int hangup_signals[] = {SIGHUP, SIGTERM};
static struct sigaction saved_int, saved_fatal[sizeof fatal_signals / sizeof *fatal_signals],
    saved_hup[sizeof hangup_signals / sizeof *hangup_signals];

static void install_signals(void) {
    struct sigaction sa = {0};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_interrupt; // no SA_RESTART: a blocked read returns to the loop
    sigaction(SIGINT, &sa, &saved_int);
    sa.sa_handler = on_hangup;
    for (size_t i = 0; i < sizeof hangup_signals / sizeof *hangup_signals; i++)
        sigaction(hangup_signals[i], &sa, &saved_hup[i]);
    sa.sa_handler = on_fatal;
    sa.sa_flags = SA_RESETHAND;
    for (size_t i = 0; i < sizeof fatal_signals / sizeof *fatal_signals; i++)
        sigaction(fatal_signals[i], &sa, &saved_fatal[i]);
}

static void uninstall_signals(void) {
    sigaction(SIGINT, &saved_int, NULL);
    for (size_t i = 0; i < sizeof fatal_signals / sizeof *fatal_signals; i++)
        sigaction(fatal_signals[i], &saved_fatal[i], NULL);
    for (size_t i = 0; i < sizeof hangup_signals / sizeof *hangup_signals; i++)
        sigaction(hangup_signals[i], &saved_hup[i], NULL);
}

static void at_exit(void) { restore_terminal(); }

bool tui_usable(void) {
    const char *term = getenv("TERM");
    return isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && term && *term && strcmp(term, "dumb");
}

// Move what commands wrote to stdout or stderr since the last call into the log pane.
static void drain_output(void) {
    char buf[4096];
    ssize_t n;
    while ((n = pread(T->log_fd, buf, sizeof buf, T->log_off)) > 0) {
        T->log_off += n;
        textpane_append(&T->views[V_LOG], buf, (size_t)n, CELL_DIM);
    }
}

// ---------------------------------------------------------------------------------------
// Drawing

static void set_status(bool err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_status(bool err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(T->status, sizeof T->status, fmt, ap);
    va_end(ap);
    T->status_err = err;
}

static void fill_row(CellGrid *g, int y, CellColor fg, CellColor bg, int attr) {
    for (int x = 0; x < g->w; x++) cellgrid_put(g, x, y, " ", 1, fg, bg, attr);
}

static void draw_header(void) {
    CellGrid *g = &T->grid;
    ViewShared *sh = &T->sh;
    CellColor bg = vd_accent(sh->mode), fg = sh->mode == CMODE_ASCII ? CELLCOLOR_DEFAULT : cellcolor_index(sh->mode, 0);
    int attr = sh->mode == CMODE_ASCII ? CELL_REVERSE : 0;
    if (sh->mode == CMODE_TRUECOLOR) fg = cellcolor_rgb(sh->mode, (Rgb){0, 0, 0});
    if (sh->mode == CMODE_C256) fg = cellcolor_index(sh->mode, 16);
    fill_row(g, 0, fg, bg, attr);
    Buf b = {0};
    buf_printf(&b, " qkv  %s", sh->model[0] ? sh->model : "(no model)");
    if (sh->arch[0]) // the weights' type and the KV cache's beside the shape
        buf_printf(&b, " (%s%s%s, %d layers x %d heads, d=%d, ctx %d%s%s)", sh->arch, sh->dtype[0] ? " " : "", sh->dtype,
                   sh->n_layer, sh->n_head, sh->n_embd, sh->n_ctx, sh->kv[0] ? ", kv " : "", sh->kv);
    // then the run shown and the database, each only whole (a cut path tells nothing; the model's
    // part is cut with a mark when even it does not fit)
    char run[40] = "";
    if (sh->run_id) snprintf(run, sizeof run, "  run #%lld", sh->run_id);
    int w = vd_width(b.data, b.len, sh->utf8) + vd_width(run, strlen(run), sh->utf8);
    if (w <= g->w) buf_puts(&b, run);
    Buf db = {0};
    buf_printf(&db, "  db %s", T->app->db_path ? T->app->db_path : T->db);
    if (vd_width(b.data, b.len, sh->utf8) + vd_width(db.data, db.len, sh->utf8) <= g->w) buf_put(&b, db.data, db.len);
    buf_free(&db);
    vd_text(g, 0, 0, g->w, b.data, 0, b.len, fg, bg, attr | CELL_BOLD, sh->utf8);
    buf_free(&b);
}

// The key of view i: 1..9, then 0; the views after those have none (Tab reaches them).
static int view_key(int i) { return i < 9 ? '1' + i : i == 9 ? '0' : 0; }

// View i's entry in the view bar: " 1 Lab " (a '*' after a pending ranking's), the title cut to
// `shown` letters unless i is the current view, or the key alone when shown is 0 (a view without
// a key: its title's first letter).
static void viewbar_entry(int i, int shown, char *t, size_t cap) {
    const char *title = view_table[i]->title, *mark = i == V_RANK && app_rank_pending(T->app) ? "*" : "";
    int key = view_key(i);
    if (i != T->cur && !shown) {
        snprintf(t, cap, " %c%s ", key ? key : title[0], mark);
        return;
    }
    if (i != T->cur && shown <= 2 && view_table[i]->abbrev) title = view_table[i]->abbrev; // not "He" twice
    snprintf(t, cap, " %c %.*s%s ", key ? key : ' ', i == T->cur ? 40 : shown, title, mark);
}

// The columns of the view bar's entries (viewbar_entry) with `gap` columns between them.
static int viewbar_width(int shown, int gap) {
    int w = 1;
    for (int i = 0; i < V_N; i++) {
        char t[64];
        viewbar_entry(i, shown, t, sizeof t);
        w += (int)strlen(t) + gap;
    }
    return w;
}

// Every view, however narrow the terminal: the names without the space between them, then the
// other views' names cut to as many first letters as fit (at least 2; 80 columns), then their
// keys alone (below about 70 columns).
static void draw_viewbar(void) {
    CellGrid *g = &T->grid;
    bool u = T->sh.utf8;
    int x = 0;
    int gap = viewbar_width(40, 1) <= g->w ? 1 : 0;
    int shown = 40;
    while (shown > 2 && viewbar_width(shown, gap) > g->w) shown--;
    if (viewbar_width(shown, gap) > g->w) shown = 0;
    for (int i = 0; i < V_N && x < g->w; i++) {
        char t[64];
        viewbar_entry(i, shown, t, sizeof t);
        int attr = i == T->cur ? CELL_REVERSE | CELL_BOLD : CELL_DIM;
        CellColor fg = i == T->cur ? vd_accent(T->sh.mode) : CELLCOLOR_DEFAULT;
        x += vd_text(g, x, 1, g->w - x, t, 0, strlen(t), fg, CELLCOLOR_DEFAULT, attr, u);
        x += gap;
    }
    if (x < g->w - 10) vd_printf(g, x + 1, 1, g->w - x - 1, CELL_DIM, u, "Tab next  ? help  : command  q quit");
}

static void draw_status(void) {
    CellGrid *g = &T->grid;
    int y = g->h - 2;
    CellColor fg = T->status_err ? vd_error(T->sh.mode) : CELLCOLOR_DEFAULT;
    int attr = T->status_err ? CELL_BOLD : 0;
    const char *s = T->status;
    size_t n = strcspn(s, "\n"); // one line
    // an error too long for the line says where it is whole (the Log view): cut at 60-80 columns,
    // "rank: interrupted during candidate 1 of 4: 0 finished, logged as runs 13..." read as all of it
    const char *whole = T->status_err && label_width(s, n) > g->w && g->w >= 40 ? "  (6: Log)" : "";
    int room = g->w - (int)strlen(whole);
    Buf b = {0};
    if (T->sh.utf8) label_fit_message(&b, s, n, room); // a long path shortened: the reason stays in view
    else buf_put(&b, s, n);
    int used = vd_text(g, 0, y, room, b.data ? b.data : "", 0, b.len, fg, CELLCOLOR_DEFAULT, attr, T->sh.utf8);
    if (*whole) vd_printf(g, used, y, g->w - used, CELL_DIM, T->sh.utf8, "%s", whole);
    buf_free(&b);
}

// The command line; returns the cursor column (or -1 when it is not focused).
static int draw_cmdline(void) {
    CellGrid *g = &T->grid;
    int y = g->h - 1;
    bool u = T->sh.utf8;
    if (!T->cmd_focus) {
        const char *hint = T->views[T->cur].capture ? "editing the prompt: Esc ends, Ctrl-G generates"
                                                    : "press : for a command, ? for help, 0-9 or Tab for views, q to quit";
        vd_printf(g, 0, y, g->w, CELL_DIM, u, "%s", hint);
        return -1;
    }
    const char *prompt = rl_display_prompt ? rl_display_prompt : ":";
    int pw = vd_text(g, 0, y, g->w, prompt, 0, strlen(prompt), vd_accent(T->sh.mode), CELLCOLOR_DEFAULT, CELL_BOLD, u);
    const char *line = rl_line_buffer ? rl_line_buffer : "";
    size_t n = (size_t)(rl_end > 0 ? rl_end : 0), point = (size_t)(rl_point > 0 ? rl_point : 0);
    if (point > n) point = n;
    int room = g->w - pw - 1;
    if (room < 1) return g->w - 1;
    // scroll so that the cursor is visible: drop whole characters from the start
    // (in one pass: measuring the rest after each dropped character made a 3,000-character paste
    // take half a minute)
    size_t start = 0;
    char vis[32];
    int before = vd_width(line, point, u);
    while (before > room - 1 && start < point) before -= vd_char(line, n, &start, vis, u);
    if (start > 0) before = vd_width(line + start, point - start, u);
    vd_text(g, pw, y, room, line, start, n, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, 0, u);
    if (start > 0) cellgrid_put(g, pw, y, u ? "\u2026" : "<", 1, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, CELL_DIM);
    return pw + before;
}

static void draw_small(void) {
    CellGrid *g = &T->grid;
    Buf b = {0};
    if (T->confirm_quit) // the question is on the status line, which this screen does not show
        buf_printf(&b, "A ranking is unfinished: quit anyway and drop it? y/n");
    else
        buf_printf(&b, "qkv needs a terminal of at least %dx%d; this one is %dx%d. Enlarge it, or press q to quit.",
                   MIN_W, MIN_H, g->w, g->h);
    VdRow *rows = NULL;
    int nr = vd_wrap(b.data, b.len, g->w, T->sh.utf8, &rows);
    int y0 = g->h > nr ? (g->h - nr) / 2 : 0;
    for (int r = 0; r < nr && y0 + r < g->h; r++)
        vd_text(g, 0, y0 + r, g->w, b.data, rows[r].start, rows[r].end, CELLCOLOR_DEFAULT, CELLCOLOR_DEFAULT, CELL_BOLD,
                T->sh.utf8);
    free(rows);
    buf_free(&b);
}

// Draw and show the screen; the view itself only when it changed (view_dirty) or full.
static void paint(bool full) {
    if (!active) return;
    if (T->batch) { // keys still waiting: painted once they are taken (drain_cmdline)
        T->batch_full |= full;
        return;
    }
    int W = COLS, H = LINES;
    CellGrid *g = &T->grid;
    if (!g->cells || g->w != W || g->h != H || g->mode != T->sh.mode) {
        cellgrid_done(g);
        if (W < 1 || H < 1 || cellgrid_init(g, W, H, T->sh.mode)) return;
        full = true;
    }
    T->too_small = W < MIN_W || H < MIN_H;
    View *v = &T->views[T->cur];
    int cx = -1, cy = -1;
    if (T->too_small) {
        cellgrid_clear(g);
        draw_small();
    } else {
        if (full || T->view_dirty) {
            cellgrid_clear(g);
            v->ops->draw(v, g, 0, 2, W, H - 4);
            T->view_dirty = false;
        } else {
            cellgrid_clear_rect(g, 0, 0, W, 2);
            cellgrid_clear_rect(g, 0, H - 2, W, 2);
        }
        draw_header();
        draw_viewbar();
        draw_status();
        int c = draw_cmdline();
        if (c >= 0) cx = c, cy = H - 1;
        else if (v->cur_x >= 0 && v->cur_y >= 0) cx = v->cur_x, cy = 2 + v->cur_y;
    }
    if (full) clearok(stdscr, TRUE);
    heatmap_draw_curses(stdscr, 0, 0, g, T->painter);
    if (cx >= 0 && cx < W && cy < H) {
        curs_set(1);
        wmove(stdscr, cy, cx);
    } else {
        curs_set(0);
        wmove(stdscr, H - 1, W - 1);
    }
    wnoutrefresh(stdscr);
    doupdate();
    T->last_paint = clock_now();
}

static void on_resize(void) {
    // ncurses has updated LINES and COLS when it delivers KEY_RESIZE
    for (int i = 0; i < V_N; i++)
        if (T->views[i].ops->resize) T->views[i].ops->resize(&T->views[i], COLS, LINES - 4);
    T->view_dirty = true;
    paint(true);
}

// ---------------------------------------------------------------------------------------
// Keys

static int key_of(int r, wint_t ch) {
    if (r == KEY_CODE_YES) {
        switch (ch) {
        case KEY_RESIZE: return VK_RESIZE;
        case KEY_UP: return VK_UP;
        case KEY_DOWN: return VK_DOWN;
        case KEY_LEFT: return VK_LEFT;
        case KEY_RIGHT: return VK_RIGHT;
        case KEY_SR: return VK_SUP;
        case KEY_SF: return VK_SDOWN;
        case KEY_SLEFT: return VK_SLEFT;
        case KEY_SRIGHT: return VK_SRIGHT;
        case KEY_PPAGE: return VK_PGUP;
        case KEY_NPAGE: return VK_PGDN;
        case KEY_HOME: return VK_HOME;
        case KEY_END: return VK_END;
        case KEY_DC: return VK_DELETE;
        case KEY_BACKSPACE: return VK_BACKSPACE;
        case KEY_ENTER: return VK_ENTER;
        case KEY_BTAB: return VK_BTAB;
        default:
            if (ch >= KEY_F(1) && ch <= KEY_F(12)) return VK_F1 + (int)(ch - KEY_F(1));
            return 0;
        }
    }
    switch (ch) {
    case '\r': case '\n': return VK_ENTER;
    case '\t': return VK_TAB;
    case 127: case 8: return VK_BACKSPACE;
    case 27: return VK_ESC;
    }
    return (int)ch;
}

// The rest of an escape sequence the terminal description does not name, after ESC and intro
// ('[' or 'O'), read without waiting: Home and End as the keys (rxvt's and PuTTY's ESC [ 1 ~
// and ESC [ 4 ~ under another TERM), anything else ignored with a word on the status line (it
// ran as ESC, '[', digits and a letter: Ctrl-Right under TERM=screen switched views four times).
static int read_sequence(wint_t intro) {
    char seq[24];
    int n = 0;
    wint_t c;
    int r;
    while ((r = wget_wch(stdscr, &c)) == OK && n < (int)sizeof seq - 1) {
        seq[n++] = c < 0x80 ? (char)c : '?';
        if (intro == 'O' || (c >= 0x40 && c <= 0x7E)) break; // SS3: one letter; CSI: its final byte
    }
    seq[n] = 0;
    if (!strcmp(seq, "1~") || !strcmp(seq, "7~") || !strcmp(seq, "H")) return VK_HOME;
    if (!strcmp(seq, "4~") || !strcmp(seq, "8~") || !strcmp(seq, "F")) return VK_END;
    set_status(false, "a key qkv does not know (ESC %c%s) was ignored", (char)intro, seq);
    return 0;
}

// Read one key, waiting up to the window's timeout; 0 when none came. ESC followed at once by
// another key is that key with VK_ALT; by '[' or 'O' and more at once, a sequence curses did not
// recognise (read_sequence).
static int read_key(void) {
    wint_t ch;
    int r = wget_wch(stdscr, &ch);
    if (r == ERR) return 0;
    int k = key_of(r, ch);
    if (k == VK_ESC) {
        wtimeout(stdscr, 0);
        wint_t c2;
        int r2 = wget_wch(stdscr, &c2);
        if (r2 == OK && (c2 == '[' || c2 == 'O')) {
            wint_t c3;
            if (wget_wch(stdscr, &c3) == OK) {
                unget_wch(c3);
                k = read_sequence(c2);
                wtimeout(stdscr, 250);
                return k;
            }
        }
        wtimeout(stdscr, 250);
        if (r2 == OK && c2 != 27) return (int)c2 | VK_ALT;
        if (r2 == KEY_CODE_YES) {
            int k2 = key_of(r2, c2);
            if (k2 && T->nta < TYPEAHEAD_MAX) T->typeahead[T->nta++] = k2;
        }
    }
    return k;
}

// Ctrl-C abandons what was typed before it: the terminal raises SIGINT as the byte arrives,
// ahead of the keys still waiting to be read (a fast typist's or a paste's), which would
// otherwise reach the view once the command line is closed or the command stopped (a pending
// ranking skipped, a ranking started by a stray r, a q that quits).
static void drop_typeahead(void) {
    T->nta = 0;
    flushinp();
}

// While a command runs: take resizes now, keep other keys for afterwards.
static void poll_keys(void) {
    wtimeout(stdscr, 0);
    for (;;) {
        wint_t ch;
        int r = wget_wch(stdscr, &ch);
        if (r == ERR) break;
        int k = key_of(r, ch);
        if (k == VK_RESIZE) on_resize();
        else if (k == VK_CTRL('c')) on_interrupt(SIGINT);
        else if (k == 'q' && !T->cmd_focus && !T->views[T->cur].capture) // not kept to quit later, unasked
            T->q_noted = true;
        else if (k && T->nta < TYPEAHEAD_MAX) T->typeahead[T->nta++] = k;
    }
    wtimeout(stdscr, 250);
}

// ---------------------------------------------------------------------------------------
// Readline through its callback interface: curses reads the keys, readline edits the line.

static int rl_getc_cb(FILE *f) {
    (void)f;
    if (T->rl_pos < T->rl_n) return T->rl_in[T->rl_pos++];
    return EOF; // not reached: readline is only called with bytes waiting
}

static int rl_avail_cb(void) { return T->rl_pos < T->rl_n; }

static void rl_redisplay_cb(void) { paint(false); }

static void rl_prep_cb(int meta) { (void)meta; }
static void rl_deprep_cb(void) {}

// Back to the ordinary command line (':') after a text asked for (host_ask).
static void ask_done(void) {
    if (!T->ask_cmd[0]) return;
    T->ask_cmd[0] = 0;
    rl_set_prompt(":");
}

static void on_line(char *line) {
    if (line && T->ask_cmd[0]) { // the text asked for, typed: the command it goes to, quoted
        Buf b = {0};
        buf_printf(&b, "%s ", T->ask_cmd);
        buf_put_quoted(&b, line, strlen(line));
        free(line);
        line = buf_take(&b);
    }
    ask_done(); // before readline starts the next line, on ':'
    // add it here, before readline starts the next line: its history position must follow
    if (line && *line) add_history(line);
    free(T->rl_line);
    T->rl_line = line; // NULL: end of input (Ctrl-D on an empty line)
    T->rl_done = true;
}

static void show_matches(char **matches, int num, int max_len) {
    (void)max_len;
    Buf b = {0};
    buf_puts(&b, "completions:");
    for (int i = 1; i <= num; i++) buf_printf(&b, " %s", matches[i]);
    set_status(false, "%s", b.data);
    buf_free(&b);
    paint(false);
}

// The keys' locale again where tui_run chose UTF-8 for the C locale: readline sets the
// environment's locale each time it starts a line.
static void keys_locale(void) {
    if (T->keys_utf8) setlocale(LC_CTYPE, "C.UTF-8");
}

static void rl_feed(const char *bytes, size_t n) {
    if (n > sizeof T->rl_in) n = sizeof T->rl_in;
    memcpy(T->rl_in, bytes, n);
    T->rl_n = (int)n, T->rl_pos = 0;
    while (T->rl_pos < T->rl_n && !T->rl_done) rl_callback_read_char();
    T->rl_n = T->rl_pos = 0;
    keys_locale();
}

static void cmd_leave(void) {
    T->cmd_focus = false;
    ask_done();
    rl_callback_sigcleanup();
    rl_replace_line("", 0);
    rl_point = rl_end = 0;
    T->view_dirty = true;
}

static void cmd_enter(const char *text, int back) {
    T->cmd_focus = true;
    rl_replace_line(text ? text : "", 0);
    rl_point = rl_end - back > 0 ? rl_end - back : 0;
    paint(false);
}

static void queue_line(const char *line, unsigned flags);

// A key for the command line.
static void cmdline_key(int key) {
    char b[16];
    size_t n = 0;
    if (key & VK_ALT) {
        b[n++] = 27;
        key &= ~VK_ALT;
    }
    switch (key) {
    case VK_ESC: {
        Keymap vi_cmd = rl_get_keymap_by_name("vi-command");
        if (rl_editing_mode == 0 && rl_get_keymap() != vi_cmd) { // vi insert mode: ESC is readline's
            rl_feed("\033", 1);
            return;
        }
        cmd_leave();
        return;
    }
    case VK_CTRL('c'): cmd_leave(); return;
    case VK_UP: case VK_DOWN: // the command history: not for a text asked for (a note, a filter)
        if (T->ask_cmd[0]) return;
        memcpy(b + n, key == VK_UP ? "\033[A" : "\033[B", 3), n += 3;
        break;
    case VK_RIGHT: memcpy(b + n, "\033[C", 3), n += 3; break;
    case VK_LEFT: memcpy(b + n, "\033[D", 3), n += 3; break;
    case VK_HOME: rl_beg_of_line(1, 0); paint(false); return;
    case VK_END: rl_end_of_line(1, 0); paint(false); return;
    case VK_DELETE: rl_delete(1, 0); paint(false); return;
    case VK_BACKSPACE: b[n++] = 127; break;
    case VK_ENTER: b[n++] = '\r'; break;
    case VK_TAB:
        if (T->ask_cmd[0]) { // a text, not a command to complete: the tab is part of it
            rl_insert_text("\t");
            paint(false);
            return;
        }
        b[n++] = '\t';
        break;
    default:
        if (key >= VK_BASE) return;
        if (key < 0x80) b[n++] = (char)key;
        else {
            wchar_t w = (wchar_t)key;
            char u[8];
            mbstate_t st = {0};
            size_t k = wcrtomb(u, w, &st);
            if (k == (size_t)-1) return;
            memcpy(b + n, u, k), n += k;
        }
    }
    T->rl_done = false;
    rl_feed(b, n);
    if (T->rl_done) {
        char *line = T->rl_line;
        T->rl_line = NULL;
        T->rl_done = false;
        if (!line) {
            cmd_leave();
            return;
        }
        T->cmd_focus = false;
        if (*line) queue_line(line, 0);
        free(line);
        T->view_dirty = true;
    }
}

// ---------------------------------------------------------------------------------------
// Running commands

static void queue_line(const char *line, unsigned flags) {
    if (T->nq == QUEUE_MAX) {
        set_status(true, "too many commands queued: '%.60s' dropped", line);
        return;
    }
    T->queue[T->nq++] = (Queued){xstrdup(line), flags};
}

static int view_index(const char *name) {
    for (int i = 0; i < V_N; i++)
        if (!strcmp(view_table[i]->name, name)) return i;
    return -1;
}

// Move the figure src into dst (freeing dst's), leaving src empty.
static void fig_move(Figure *dst, Figure *src) {
    figure_free(dst);
    *dst = *src;
    memset(src, 0, sizeof *src);
}

// Make view i the current one; show: let it fetch what it needs and publish its figure.
static void switch_view(int i, bool show) {
    if (i < 0 || i >= V_N) return;
    if (i != T->cur) {
        fig_move(&T->vfig[T->cur], &T->app->fig); // the figure goes with the view it belongs to
        fig_move(&T->app->fig, &T->vfig[i]);
        if (T->cur != V_HELP) T->prev = T->cur;
        T->cur = i;
    }
    View *v = &T->views[i];
    if (show && v->ops->show) v->ops->show(v);
    T->view_dirty = true;
}

static void open_help(int from);

// Make view i the current one as a person asks for it (a key, a view's request): the help
// view is filled first with the keys of the view left and the commands.
static void switch_to(int i) {
    if (i == V_HELP && T->cur != V_HELP) open_help(T->cur);
    else switch_view(i, true);
}

// The view that shows a command's result (-1: none; the output stays in the log).
static int view_for(const char *cmd) {
    static const struct {
        const char *cmd;
        int view;
    } map[] = {{"generate", V_LAB},   {"replay", V_LAB},    {"attention", V_ATTN}, {"pe", V_POS}, {"similarity", V_POS},      {"rank", V_RANK},
               {"order", V_RANK},     {"skip", V_RANK},     {"note", V_RANK},      {"history", V_HIST}, {"show", V_HIST},
               {"rankings", V_HIST},  {"quantize", V_QUANT}, {"compare", V_QUANT}, {"help", V_HELP},
               {"heads", V_HEADS},    {"lens", V_HEADS},     {"patch", V_HEADS},   {"probe", V_HEADS},
               {"layersim", V_HEADS}, {"experiment", V_EXP}, {"train", V_TRAIN},   {"curve", V_TRAIN}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (!strcmp(map[i].cmd, cmd)) return map[i].view;
    return -1;
}

static void take_model(const Json *j) {
    ViewShared *sh = &T->sh;
    snprintf(sh->model, sizeof sh->model, "%s", json_str_or(j, "name", ""));
    snprintf(sh->arch, sizeof sh->arch, "%s", json_str_or(j, "arch", ""));
    snprintf(sh->dtype, sizeof sh->dtype, "%s", json_str_or(j, "dtype", ""));
    snprintf(sh->kv, sizeof sh->kv, "%s", json_str_or(j, "kv_dtype", ""));
    sh->n_layer = (int)json_num_or(j, "n_layer", 0);
    sh->n_head = (int)json_num_or(j, "n_head", 0);
    sh->n_embd = (int)json_num_or(j, "n_embd", 0);
    sh->n_ctx = (int)json_num_or(j, "n_ctx", 0);
    sh->causal = json_bool_or(j, "causal", true);
    sh->learned_pe = !strcmp(json_str_or(j, "position", ""), "learned");
}

// The streaming hook of generations (app->on_step).
static bool on_step(void *user, const GenStep *s) {
    (void)user;
    App *app = T->app;
    T->gen_tokens++;
    if (s->index == 0) T->gen_candidate++;
    bool to_lab = T->running && (!strcmp(T->running, "generate") || !strcmp(T->running, "replay"));
    if (to_lab) {
        const Tokenizer *tok = app->model->tok;
        Buf piece = {0}, alts[GEN_MAX_ALTS];
        const char *alt_p[GEN_MAX_ALTS];
        memset(alts, 0, sizeof alts);
        tok_piece_display(tok, s->id, &piece);
        for (int k = 0; k < s->n_alts; k++) {
            tok_piece_display(tok, s->alt_ids[k], &alts[k]);
            alt_p[k] = alts[k].data ? alts[k].data : "";
        }
        ViewToken vt = {s->index, s->id, piece.data ? piece.data : "", s->logprob, s->n_alts, s->alt_ids, alt_p,
                        s->alt_logprobs, NULL, 0, NULL};
        ViewRunSettings rs;
        if (s->index == 0 && app->gen_prompt && app->gen_params) { // what the Lab shows above the tokens
            const GenParams *p = app->gen_params;
            rs = (ViewRunSettings){p->max_tokens, p->s.top_k, p->s.temperature, p->s.top_p,
                                   p->s.seed <= (uint64_t)INT64_MAX ? (long long)p->s.seed : -1};
            vt.prompt = app->gen_prompt->data ? app->gen_prompt->data : "", vt.prompt_len = app->gen_prompt->len;
            vt.settings = &rs;
        }
        View *lab = &T->views[V_LAB];
        lab->ops->stream(lab, &vt);
        buf_free(&piece);
        for (int k = 0; k < s->n_alts; k++) buf_free(&alts[k]);
        set_status(false, "generating: %d tokens (%s)", s->index + 1,
                   T->q_noted ? "q is not taken while it runs: Ctrl-C stops it, keeping them, then q quits"
                              : "Ctrl-C stops and keeps them");
    } else if (!T->running || strcmp(T->running, "experiment")) { // an experiment's status is its progress
        set_status(false, "%s: candidate %d, %d tokens (%sCtrl-C stops)", T->running ? T->running : "generating",
                   T->gen_candidate, s->index + 1, T->q_noted ? "q is not taken while it runs: " : "");
    }
    poll_keys();
    if (clock_now() - T->last_paint > 0.04) {
        T->view_dirty = true;
        paint(false);
    }
    return !got_int;
}

// The progress hook of long commands (app->on_progress): the views that show it, the status
// line, the screen kept current and the keys read while it runs.
static void on_progress(void *user, const Progress *p) {
    (void)user;
    ViewProgress vp = {p->what,   p->detail, (long long)p->id, p->done,  p->total, p->elapsed_s, p->left_s,
                       p->finished, p->table, p->point, p->step, p->loss, p->held_loss, p->held_acc};
    for (int i = 0; i < V_N; i++)
        if (T->views[i].ops->progress) {
            T->calling = i;
            T->views[i].ops->progress(&T->views[i], &vp);
            T->calling = -1;
        }
    char left[32] = "?";
    if (p->left_s == p->left_s) clock_fmt_duration(p->left_s, left, sizeof left);
    set_status(false, "%s: %ld/%ld, %s left (Ctrl-C stops)", p->what, p->done, p->total, p->finished ? "0:00" : left);
    poll_keys();
    if (p->finished || clock_now() - T->last_paint > 0.1) {
        T->view_dirty = true;
        paint(false);
    }
}

// The database's wait hook (app->on_db_wait): after a moment, the status line says what qkv waits
// for; the keys are read (Ctrl-C stops the wait) and the screen kept current.
static bool on_db_wait(void *user, const char *path, double waited) {
    (void)user;
    if (waited < 0.3) return true;
    set_status(false, "waiting %.0f s for another process to finish writing (Ctrl-C stops waiting): %s", waited,
               path);
    poll_keys();
    if (clock_now() - T->last_paint > 0.1) paint(false);
    return true;
}

// Render a result as the log shows it (the same text headless mode prints).
static void human_form(const Out *o, int rc, Buf *out) {
    char *mem = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&mem, &len);
    if (!m) return;
    print_result(o, rc, T->app->json, m, m);
    fclose(m);
    buf_put(out, mem, len);
    free(mem);
}

static void request_quit(void) {
    if (app_rank_pending(T->app)) {
        T->confirm_quit = true;
        set_status(true, "quit and drop the unfinished ranking? y/n (n, then submit or skip it in the Rank view)");
        return;
    }
    T->quit = true;
}

static void compose_help(const ViewResult *r, bool with_keys) {
    Buf b = {0};
    if (with_keys) {
        const ViewOps *o = view_table[T->help_from];
        buf_printf(&b, "qkv %s. Every action here is a command of the language below, which also runs headless: "
                       "qkv -e 'CMD; CMD'.\n\n", QKV_VERSION);
        buf_printf(&b, "Keys of the %s view\n", o->title);
        for (const char *s = o->keys; s && *s;) {
            const char *e = strchr(s, '\n');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            buf_puts(&b, "  ");
            buf_put(&b, s, n);
            buf_putc(&b, '\n');
            s += n + (e ? 1 : 0);
        }
        // one key per line, each short enough for an 80-column terminal
        buf_puts(&b, "\nEverywhere\n"
                     "  :  type a command; Enter runs it, Esc cancels\n"
                     "     Tab completes commands, options and file names; Up/Down walk the history\n"
                     "     (kept across sessions); Emacs or vi editing as set in ~/.inputrc\n"
                     "  1-9 0 Tab Shift-Tab  switch views (Training: Tab, or :curve)\n"
                     "  ? F1  this help;  Esc  back to the view it was opened from\n"
                     "  Ctrl-L  redraw\n"
                     "  q  quit (so do :q and :quit)\n"
                     "  Ctrl-C  stops a running generation and keeps what was produced; never quits\n"
                     "  :save FILE.svg or :save FILE.csv  exports what the current view shows\n\n");
    }
    buf_puts(&b, r->text ? r->text : "");
    textpane_set(&T->views[V_HELP], b.data ? b.data : "", b.len);
    buf_free(&b);
}

// The model changed under a command other than `load`: what a load's result does, from the new
// model's own `model` JSON, before that command's result reaches the views.
static void model_changed(void) {
    Out o;
    out_init(&o);
    Json *j = commands_run(T->app, "model", 5, &o) ? NULL : json_parse(o.json.data, o.json.len, NULL);
    if (j) {
        take_model(j);
        T->sh.seq.n = T->sh.n_prompt = 0;
        T->sh.run_id = 0;
        T->sh.version++;
        ViewResult r = {"load", "model", NULL, 0, j, NULL, "", true};
        for (int i = 0; i < V_N; i++)
            if (T->views[i].ops->result) {
                T->calling = i;
                T->views[i].ops->result(&T->views[i], &r);
                T->calling = -1;
            }
        json_free(j);
    }
    out_free(&o);
}

// Run one command line now and hand its result to the views.
static void run_line(const char *line, unsigned flags) {
    App *app = T->app;
    size_t len = strlen(line);
    bool quiet = flags & VR_QUIET;
    Args a;
    Err e = {0};
    bool parsed = lang_parse(line, len, &a, &e) == 0;
    const char *name = parsed ? a.name : "";
    const Arg *arg0 = parsed ? args_pos(&a, 0) : NULL;
    // the log shows every command, the views' own ones dimmed
    Buf echo = {0};
    buf_printf(&echo, "> %s", line);
    if (echo.len > 400) echo.len = 400, buf_puts(&echo, "...");
    textpane_append(&T->views[V_LOG], echo.data, echo.len, quiet ? CELL_DIM : CELL_BOLD);
    buf_free(&echo);
    // show where the result will appear while it is computed
    int target = view_for(name);
    if (!strcmp(name, "reward") && arg0 && !strcmp(arg0->val, "train")) target = V_TRAIN; // its curve, live
    if (!quiet && target >= 0 && target != V_HELP) switch_view(target, false);
    bool gen = !strcmp(name, "generate") || !strcmp(name, "replay") || !strcmp(name, "rank");
    if (!quiet || gen) set_status(false, "%s...", name[0] ? name : "running");
    T->running = name;
    T->gen_tokens = T->gen_candidate = 0;
    got_int = 0;
    if (cancel_flag) *cancel_flag = 0;
    app->on_step = on_step;
    app->on_step_user = T;
    app->on_progress = on_progress;
    app->on_progress_user = T;
    app->on_db_wait = on_db_wait;
    T->view_dirty = true;
    paint(false);

    Out o;
    out_init(&o);
    unsigned gen0 = app->fig_gen;
    int rc = commands_run(app, line, len, &o);
    if (app->fig_gen != gen0) { // its figure belongs to the view that shows its result
        int owner = target >= 0 && target != V_HELP ? target : T->cur;
        if (owner != T->cur) fig_move(&T->vfig[owner], &app->fig);
    }
    app->on_step = NULL;
    app->on_progress = NULL;
    app->on_db_wait = NULL;
    T->running = NULL;
    bool stopped = got_int;
    got_int = 0;
    if (cancel_flag) *cancel_flag = 0;
    if (stopped) drop_typeahead(); // keys typed before the Ctrl-C (a q) are not run after it
    // keys typed while rank generated were typed before any candidate was seen: a second Enter
    // (or key repeat) stored the default order of candidates nobody had read
    int unseen = !rc && !strcmp(name, "rank") ? T->nta : 0;
    if (unseen) drop_typeahead();
    T->q_noted = false;
    drain_output();

    Buf human = {0};
    human_form(&o, rc, &human);
    if (!quiet || rc) {
        size_t keep = human.len, lines = 0;
        for (size_t i = 0; i < human.len; i++)
            if (human.data[i] == '\n' && ++lines == 200) {
                keep = i + 1;
                break;
            }
        textpane_append(&T->views[V_LOG], human.data ? human.data : "", keep, rc ? CELL_UNDERLINE : 0);
        if (keep < human.len) textpane_append(&T->views[V_LOG], "... (cut; the whole output: qkv --json -e '...')", 48, CELL_DIM);
    }
    Json *j = rc ? NULL : json_parse(o.json.data, o.json.len, NULL);
    if (rc) {
        if (!(flags & VR_OWN_ERROR)) set_status(true, "error: %s", o.err.data ? o.err.data : "failed");
    } else if (j && (!strcmp(name, "generate") || !strcmp(name, "replay"))) {
        const Json *ids = json_get(j, "ids"), *same = json_get(j, "identical");
        char replay[96] = ""; // a replay says first whether it came out the same
        if (same) {
            int first = (int)json_num_or(j, "first_difference", 0);
            snprintf(replay, sizeof replay, "replay of run #%lld: %s", (long long)json_num_or(j, "replay_of", 0),
                     same->type == JSON_BOOL && same->b ? "identical; " : "");
            if (same->type == JSON_NULL) // stopped with Ctrl-C before it could tell
                snprintf(replay + strlen(replay), sizeof replay - strlen(replay), "stopped, identical so far; ");
            else if (!(same->type == JSON_BOOL && same->b))
                snprintf(replay + strlen(replay), sizeof replay - strlen(replay), "DIFFERENT from token %d; ", first);
        }
        // a run the database could not take has no number (run_id null: the Log has the warning);
        // Ctrl-C stopped the generation only when it says so (it may have stopped the wait for a
        // database another process holds, after the generation)
        long long id = (long long)json_num_or(j, "run_id", 0);
        char run[40] = "not logged (the Log, 6, says why)";
        if (id > 0) snprintf(run, sizeof run, "run #%lld", id);
        const char *reason = json_str_or(j, "stop_reason", "?");
        Buf size = {0};
        vd_gen_size(&size, ids ? (int)ids->len : 0, json_num_or(j, "decode_tok_s", NAN));
        set_status(false, "%s%s: %s, stop: %s%s", replay, run, size.data, reason,
                   stopped && !strcmp(reason, "cancelled") ? " (stopped with Ctrl-C: what was produced is kept)" : "");
        buf_free(&size);
    } else if (!quiet) { // its first line, and where the rest is (one line of a table alone said little)
        const char *t = o.text.len ? o.text.data : human.data ? human.data : "";
        int first = (int)strcspn(t, "\n"), more = 0;
        for (const char *c = t + first; *c; c++) more += *c == '\n' && c[1];
        if (more) set_status(false, "%s: %.*s (and %d more line%s: the Log, 6)", name, first, t, more, more == 1 ? "" : "s");
        else set_status(false, "%.*s", first, t);
    }
    if (j && (!strcmp(name, "model") || !strcmp(name, "load"))) take_model(j);
    // another model opened by a command other than load (a replay of a run made by another model,
    // an experiment resumed on its own): the header, the views and the last generation's ids follow
    // it as after a load (the attention of a replayed run drew the old model's layer and head
    // counts, an encoder's unmasked grid for a decoder's run)
    bool other_model = app->model_serial != T->model_serial && strcmp(name, "load");
    T->model_serial = app->model_serial;
    if (other_model) model_changed();
    // the header's weight and cache types follow `set kv` and `quantize`
    bool set_kv = !strcmp(name, "set") && arg0 && !strcmp(arg0->val, "kv");
    if (j && !rc && (set_kv || !strcmp(name, "quantize"))) queue_line("model", VR_QUIET);
    if (j && !strcmp(name, "load")) { // the last generation's ids belong to the old model
        T->sh.seq.n = T->sh.n_prompt = 0;
        T->sh.run_id = 0;
        T->sh.version++;
    }
    if (j && (!strcmp(name, "generate") || !strcmp(name, "replay"))) T->sh.run_id = (long long)json_num_or(j, "run_id", 0);

    ViewResult r = {name, line, arg0 ? arg0->val : NULL, arg0 ? arg0->len : 0, j, rc ? o.err.data : NULL,
                    o.text.data ? o.text.data : "", quiet};
    for (int i = 0; i < V_N; i++)
        if (T->views[i].ops->result) {
            T->calling = i;
            T->views[i].ops->result(&T->views[i], &r);
            T->calling = -1;
        }
    if (!strcmp(name, "help") && j) {
        compose_help(&r, flags & RUN_HELP);
        switch_view(V_HELP, true);
    } else if (!quiet && target >= 0 && !rc) {
        switch_to(target);
    }
    if (unseen)
        set_status(false, "%d key%s typed while the candidates were generated dropped: read them, then rank (Enter "
                          "stores the order)", unseen, unseen == 1 ? "" : "s");
    T->view_dirty = true;
    json_free(j);
    buf_free(&human);
    out_free(&o);
    if (parsed) args_free(&a);
    if (app->quit) { // the quit command: leave, asking first when a ranking is unfinished
        app->quit = false;
        request_quit();
    }
}

// Run the first queued command line.
static void run_queued(void) {
    Queued q = T->queue[0];
    memmove(T->queue, T->queue + 1, sizeof *T->queue * (size_t)--T->nq);
    run_line(q.line, q.flags);
    free(q.line);
}

// ---------------------------------------------------------------------------------------
// The host the views talk to

static void host_run(ViewHost *h, const char *line, unsigned flags) {
    (void)h;
    queue_line(line, flags);
}

static void host_message(ViewHost *h, bool error, const char *text) {
    (void)h;
    set_status(error, "%s", text);
}

static void host_edit(ViewHost *h, const char *text, int back) {
    (void)h;
    cmd_enter(text, back);
}

static void host_ask(ViewHost *h, const char *label, const char *text, const char *cmd) {
    (void)h;
    char prompt[72];
    snprintf(T->ask_cmd, sizeof T->ask_cmd, "%s", cmd);
    snprintf(prompt, sizeof prompt, "%s: ", label);
    rl_set_prompt(prompt); // (readline keeps a copy)
    cmd_enter(text, 0);
}

static void host_figure(ViewHost *h, const float *v, int rows, int cols, const char *const *rl, const char *const *cl,
                        bool diverging, const char *title) {
    (void)h;
    int k = T->calling >= 0 ? T->calling : T->cur; // a view not shown files its figure apart
    unsigned gen = T->app->fig_gen; // a view's figure is not a command's (run_line files those)
    Figure keep = {0};
    if (k != T->cur) fig_move(&keep, &T->app->fig);
    if (app_set_figure(T->app, v, rows, cols, rl, cl, diverging, title))
        set_status(true, "out of memory for the figure of %d x %d: save has nothing to export", rows, cols);
    if (k != T->cur) {
        fig_move(&T->vfig[k], &T->app->fig);
        fig_move(&T->app->fig, &keep);
    }
    T->app->fig_gen = gen;
}

static void host_open_view(ViewHost *h, const char *name) {
    (void)h;
    switch_to(view_index(name));
}

// ---------------------------------------------------------------------------------------
// The loop

// Show the help view with the keys of view `from` (its result switches to the help view).
static void open_help(int from) {
    T->help_from = from;
    queue_line("help", VR_QUIET | RUN_HELP);
}

static void help_key(void) { open_help(T->cur == V_HELP ? T->prev : T->cur); }

// Ctrl-Z: the terminal given back and qkv stopped, as a shell's job control does it (fg resumes;
// the screen is drawn again). Raw mode turns the terminal's suspend key off, so it comes as a key
// (it did nothing). Where no job control can resume qkv (its process group orphaned: started as a
// tmux pane's command, say) the kernel ignores the stop and qkv carries on.
static void suspend(void) {
    def_prog_mode();
    endwin();
    if (T->tty_out) fflush(T->tty_out);
    kill(0, SIGTSTP);
    reset_prog_mode();
    clearok(curscr, TRUE);
    on_resize(); // the terminal may have changed size meanwhile
    set_status(false, "back from Ctrl-Z");
}

static void handle_key(int key) {
    if (key == VK_RESIZE) {
        on_resize();
        return;
    }
    if (T->confirm_quit) { // (answered on the small screen too, which shows the question)
        T->confirm_quit = false;
        if (key == 'y' || key == 'Y') {
            run_line("skip", VR_QUIET); // nothing is stored; say so in the log
            T->quit = true;
        } else {
            set_status(false, "not quitting");
        }
        return;
    }
    if (T->too_small) { // what is being typed goes on unseen (a q there is a letter, not quit)
        if (T->cmd_focus) cmdline_key(key);
        else if (T->views[T->cur].capture) T->views[T->cur].ops->key(&T->views[T->cur], key);
        else if (key == 'q') request_quit();
        return;
    }
    if (key == VK_F1) {
        help_key();
        return;
    }
    if (key == VK_CTRL('l')) {
        paint(true);
        return;
    }
    if (key == VK_CTRL('z')) {
        suspend();
        return;
    }
    if (T->cmd_focus) {
        cmdline_key(key);
        return;
    }
    if (key & VK_ALT) { // outside the command line, ESC and the key after it are two keys
        handle_key(VK_ESC);
        handle_key(key & ~VK_ALT);
        return;
    }
    View *v = &T->views[T->cur];
    T->view_dirty = true;
    if (v->capture) {
        v->ops->key(v, key);
        return;
    }
    if (v->ops->key && v->ops->key(v, key)) return;
    switch (key) {
    case ':': cmd_enter("", 0); return;
    case '?': help_key(); return;
    case 'q': request_quit(); return;
    case VK_TAB: switch_to((T->cur + 1) % V_N); return;
    case VK_BTAB: switch_to((T->cur + V_N - 1) % V_N); return;
    case VK_ESC:
        if (T->cur == V_HELP) switch_to(T->prev);
        return;
    }
    for (int i = 0; i < V_N; i++)
        if (view_key(i) && key == view_key(i)) {
            switch_to(i);
            return;
        }
    if (key >= 0x20 && key < 0x7F) set_status(false, "'%c' does nothing here: ? shows the keys, : types a command", key);
}

// The first key kept for later (T->nta > 0).
static int take_typeahead(void) {
    int k = T->typeahead[0];
    memmove(T->typeahead, T->typeahead + 1, sizeof *T->typeahead * (size_t)--T->nta);
    return k;
}

// The keys already waiting while the command line has the focus (the rest of a paste) are
// taken before the screen is painted again: a paint for each key made a 3,000-character paste
// take half a minute.
static void drain_cmdline(void) {
    T->batch = true;
    while (T->cmd_focus && !T->quit && !got_int && !got_hup && !T->nq) {
        int k;
        if (T->nta) {
            k = take_typeahead();
        } else {
            wtimeout(stdscr, 0);
            k = read_key();
            wtimeout(stdscr, 250);
            if (!k) break;
        }
        handle_key(k);
    }
    T->batch = false;
    bool full = T->batch_full;
    T->batch_full = false;
    paint(full);
}

static int loop(void) {
    while (!T->quit && !got_hup) {
        // one queued command at a time, the screen and the keys looked at in between (a view
        // loading its data in several commands stays responsive)
        if (T->nq) run_queued();
        if (T->quit || got_hup) break;
        int key;
        if (T->nta) {
            key = take_typeahead();
        } else {
            paint(false);
            if (T->nq) wtimeout(stdscr, 0);
            key = read_key();
            wtimeout(stdscr, 250);
        }
        if (got_int) {
            got_int = 0;
            if (cancel_flag) *cancel_flag = 0;
            key = 0;
            drop_typeahead();
            if (T->cmd_focus) cmd_leave();
            else if (T->views[T->cur].capture) T->views[T->cur].ops->key(&T->views[T->cur], VK_ESC);
            if (T->confirm_quit) { // the question is withdrawn with the status that asked it
                T->confirm_quit = false;
                set_status(false, "Ctrl-C: not quitting (q asks again)");
            } else {
                set_status(false, "Ctrl-C: nothing is running (q quits qkv)");
            }
            T->view_dirty = true;
        }
        if (key) handle_key(key);
        if (T->cmd_focus) drain_cmdline();
    }
    if (got_hup) {
        if (app_rank_pending(T->app)) app_rank_drop(T->app, false);
        return 128 + got_hup;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------
// Setup and teardown

static int start_curses(void) {
    fflush(stdout);
    fflush(stderr);
    T->saved_out = dup(STDOUT_FILENO);
    T->saved_err = dup(STDERR_FILENO);
    int tty = dup(STDOUT_FILENO);
    T->tty_out = tty >= 0 ? fdopen(tty, "w") : NULL;
    char path[] = "/tmp/qkv-tui-XXXXXX";
    T->log_fd = mkstemp(path);
    if (T->log_fd >= 0) unlink(path);
    if (T->saved_out < 0 || T->saved_err < 0 || !T->tty_out || T->log_fd < 0) return -1;
    T->scr = newterm(NULL, T->tty_out, stdin);
    if (!T->scr) return -1;
    set_term(T->scr);
    active = 1;
    // from here on, stray output of any part of qkv lands in the log pane, not on the screen
    dup2(T->log_fd, STDOUT_FILENO);
    dup2(T->log_fd, STDERR_FILENO);
    raw();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    intrflush(stdscr, FALSE);
    set_escdelay(25);
    wtimeout(stdscr, 250);
    // raw mode, but Ctrl-C still raises SIGINT (so that it stops a computation at once)
    struct termios t;
    if (!tcgetattr(STDIN_FILENO, &t)) {
        t.c_lflag |= ISIG;
        t.c_lflag &= ~(tcflag_t)IEXTEN;
        t.c_cc[VQUIT] = _POSIX_VDISABLE;
        t.c_cc[VSUSP] = _POSIX_VDISABLE;
        tcsetattr(STDIN_FILENO, TCSANOW, &t);
        def_prog_mode();
    }
    if (has_colors()) start_color();
    const char *cm = getenv("QKV_COLOR"); // ascii | 8 | 256 | truecolor: override the detection
    if (cm && !strcmp(cm, "ascii")) T->sh.mode = CMODE_ASCII;
    else if (cm && !strcmp(cm, "8")) T->sh.mode = CMODE_C8;
    else if (cm && !strcmp(cm, "256")) T->sh.mode = CMODE_C256;
    else if (cm && !strcmp(cm, "truecolor")) T->sh.mode = CMODE_TRUECOLOR;
    else if (getenv("NO_COLOR") && *getenv("NO_COLOR")) T->sh.mode = CMODE_ASCII; // no-color.org: the glyph ramp
    else T->sh.mode = cmap_detect_mode(getenv("COLORTERM"), getenv("TERM"), has_colors() ? COLORS : 0, T->sh.utf8);
    if (!T->sh.utf8 && T->sh.mode != CMODE_ASCII) T->sh.mode = CMODE_ASCII;
    T->painter = hm_curses_new(1, 16);
    return T->painter ? 0 : -1;
}

static void setup_readline(void) {
    T->hist_path = lineedit_history_path();
    lineedit_history_load(T->hist_path);
    lineedit_setup();
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_change_environment = 0;
    rl_prep_term_function = rl_prep_cb;
    rl_deprep_term_function = rl_deprep_cb;
    rl_getc_function = rl_getc_cb;
    rl_input_available_hook = rl_avail_cb;
    rl_redisplay_function = rl_redisplay_cb;
    rl_completion_display_matches_hook = show_matches;
    T->devnull = fopen("/dev/null", "w");
    rl_outstream = T->devnull;
    rl_instream = stdin;
    rl_variable_bind("enable-bracketed-paste", "off");
    // the keys come as UTF-8 whatever the locale (tui_run): in the C locale readline would take
    // a byte above 127 for Meta and a key
    rl_variable_bind("input-meta", "on");
    rl_variable_bind("convert-meta", "off");
    rl_variable_bind("output-meta", "on");
    rl_callback_handler_install(":", on_line);
}

int tui_run(App *app) {
    static Tui tui;
    memset(&tui, 0, sizeof tui);
    T = &tui;
    T->app = app;
    T->model_serial = app->model_serial;
    T->saved_out = T->saved_err = T->log_fd = -1;
    setlocale(LC_CTYPE, ""); // LC_CTYPE only: numbers keep their C form
    T->sh.utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
    // In the C locale (an SSH session that forwarded none) curses cannot read a key that is not
    // ASCII: it dropped the character and the keys after it (the rest of a paste, its Esc or
    // Enter). The keys are read as UTF-8 then, what every terminal sends today; the screen
    // stays in ASCII, as the locale asks.
    T->keys_utf8 = !T->sh.utf8 && setlocale(LC_CTYPE, "C.UTF-8");
    Err e = {0};
    char *db = db_resolve_path(NULL, &e);
    snprintf(T->db, sizeof T->db, "%s", db ? db : "(none)");
    free(db);
    cancel_flag = app->cancel;
    atexit(at_exit);
    install_signals();
    if (start_curses()) {
        restore_terminal();
        uninstall_signals();
        if (T->log_fd >= 0) close(T->log_fd);
        if (T->tty_out) fclose(T->tty_out);
        if (T->saved_out >= 0) close(T->saved_out);
        if (T->saved_err >= 0) close(T->saved_err);
        T = NULL;
        return -1;
    }
    T->host = (ViewHost){&T->sh, T, host_run, host_message, host_edit, host_ask, host_figure, host_open_view};
    for (int i = 0; i < V_N; i++) view_open(&T->views[i], view_table[i], &T->host);
    setup_readline();
    keys_locale();
    T->cur = T->prev = V_LAB;
    T->calling = -1;
    set_status(false, "qkv %s: e types a prompt, g generates; ? shows every key, : a command, q quits", QKV_VERSION);
    queue_line("model", VR_QUIET);
    queue_line("set", VR_QUIET);
    paint(true);

    int status = loop();

    rl_callback_handler_remove();
    lineedit_history_save(T->hist_path);
    free(T->hist_path);
    restore_terminal();
    uninstall_signals();
    delscreen(T->scr);
    for (int i = 0; i < V_N; i++) view_close(&T->views[i]), figure_free(&T->vfig[i]);
    for (int i = 0; i < T->nq; i++) free(T->queue[i].line);
    cellgrid_done(&T->grid);
    hm_curses_free(T->painter);
    buf_free(&T->sh.prompt);
    iv_free(&T->sh.seq);
    free(T->rl_line);
    if (T->devnull) fclose(T->devnull);
    rl_outstream = NULL;
    fclose(T->tty_out);
    close(T->log_fd);
    close(T->saved_out);
    close(T->saved_err);
    T = NULL;
    return status;
}

int front_interactive(App *app) {
    if (!tui_usable()) return repl_run(app);
    int rc = tui_run(app);
    return rc < 0 ? repl_run(app) : rc;
}
