// tui_bench.c - how fast the TUI answers. (1) A full redraw of the attention model view (12 layers
// x 12 heads on 64 tokens) into a 200x60 cell grid, then the same painted by curses to a terminal
// (a pseudo-terminal drained by a thread); target < 16 ms. (2) Keystroke to screen update with
// the real qkv binary idle in a 200x60 pseudo-terminal: the time from writing a key to the last
// byte of the screen update; target < 50 ms. Prints the figures; built, not run as a test.
// Usage: tui_bench [QKV_BINARY]   (default: qkv beside this program)
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heatmap_curses.h"
#include "view.h"

enum { L = 12, H = 12, T = 64, W = 200, HT = 60, FRAMES = 100, KEYS = 40 };

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// ---- (1) the model view, drawn and painted ----

static ViewShared sh;
static void h_run(ViewHost *h, const char *l, unsigned f) { (void)h, (void)l, (void)f; }
static void h_msg(ViewHost *h, bool e, const char *t) { (void)h, (void)e, (void)t; }
static void h_edit(ViewHost *h, const char *t, int b) { (void)h, (void)t, (void)b; }
static void h_ask(ViewHost *h, const char *l, const char *t, const char *c) { (void)h, (void)l, (void)t, (void)c; }
static void h_fig(ViewHost *h, const float *v, int r, int c, const char *const *rl, const char *const *cl, bool d,
                  const char *t) {
    (void)h, (void)v, (void)r, (void)c, (void)rl, (void)cl, (void)d, (void)t;
}
static void h_open(ViewHost *h, const char *n) { (void)h, (void)n; }
static ViewHost host = {&sh, NULL, h_run, h_msg, h_edit, h_ask, h_fig, h_open};

// Causal softmax rows of pseudo-random scores for every layer and head: [L][H][T][T].
static float *make_data(unsigned seed) {
    float *d = malloc(sizeof(float) * L * H * T * T);
    unsigned s = seed;
    for (int k = 0; k < L * H; k++) {
        float *m = d + (size_t)k * T * T;
        for (int r = 0; r < T; r++) {
            float sum = 0;
            for (int c = 0; c <= r; c++) {
                s = s * 1664525u + 1013904223u;
                float x = expf(3.0f * (float)(s >> 8) / (1u << 24));
                m[r * T + c] = x, sum += x;
            }
            for (int c = 0; c < T; c++) m[r * T + c] = c > r ? NAN : m[r * T + c] / sum;
        }
    }
    return d;
}

static void *drain(void *arg) {
    int fd = *(int *)arg;
    char buf[65536];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    return NULL;
}

static void bench_model_view(void) {
    float *data[2] = {make_data(1), make_data(2)};
    char *labels[T];
    for (int i = 0; i < T; i++) {
        labels[i] = malloc(8);
        snprintf(labels[i], 8, "t%d", i);
    }
    sh.n_layer = L, sh.n_head = H, sh.causal = true, sh.utf8 = true;
    printf("model view: %d layers x %d heads (+ mean) on %d tokens into %dx%d cells\n", L, H, T, W, HT);
    View v[2];
    for (int k = 0; k < 2; k++) {
        view_open(&v[k], &attn_view_ops, &host);
        attn_view_set(&v[k], L, H, T, data[k], (const char *const *)labels);
    }
    CellGrid g;
    static const ColorMode modes[] = {CMODE_TRUECOLOR, CMODE_C256, CMODE_C8, CMODE_ASCII};
    for (int m = 0; m < 4; m++) {
        sh.mode = modes[m];
        cellgrid_init(&g, W, HT, modes[m]);
        v[0].ops->draw(&v[0], &g, 0, 0, W, HT);
        double t0 = now_ms();
        for (int f = 0; f < FRAMES; f++) {
            cellgrid_clear(&g);
            v[f & 1].ops->draw(&v[f & 1], &g, 0, 0, W, HT);
        }
        printf("  draw into the cell grid, %-9s %7.3f ms/frame\n", cmap_mode_name(modes[m]), (now_ms() - t0) / FRAMES);
        cellgrid_done(&g);
    }

    // through curses to a pseudo-terminal, every frame different
    int master, slave;
    struct winsize ws = {HT, W, 0, 0};
    if (openpty(&master, &slave, NULL, NULL, &ws)) {
        printf("  (no pseudo-terminal: %s; curses timing skipped)\n", strerror(errno));
        return;
    }
    pthread_t th;
    pthread_create(&th, NULL, drain, &master);
    FILE *out = fdopen(slave, "w"), *in = fdopen(dup(slave), "r");
    const char *terms[] = {"xterm-256color", "xterm"};
    for (int k = 0; k < 2; k++) {
        SCREEN *scr = newterm(terms[k], out, in);
        if (!scr) {
            printf("  (no terminfo entry for %s: skipped)\n", terms[k]);
            continue;
        }
        set_term(scr);
        start_color();
        HmCurses *pc = hm_curses_new(1, 16);
        sh.mode = COLORS >= 256 ? CMODE_C256 : CMODE_C8;
        cellgrid_init(&g, W, HT, sh.mode);
        double worst = 0, t0 = now_ms();
        for (int f = 0; f < FRAMES; f++) {
            double f0 = now_ms();
            cellgrid_clear(&g);
            v[f & 1].ops->draw(&v[f & 1], &g, 0, 0, W, HT);
            heatmap_draw_curses(stdscr, 0, 0, &g, pc);
            wnoutrefresh(stdscr);
            doupdate();
            double dt = now_ms() - f0;
            if (dt > worst) worst = dt;
        }
        printf("  draw + curses paint to a %s pty (%s): %7.3f ms/frame, worst %.3f (target < 16)\n", terms[k],
               cmap_mode_name(sh.mode), (now_ms() - t0) / FRAMES, worst);
        cellgrid_done(&g);
        hm_curses_free(pc);
        endwin();
        delscreen(scr);
    }
    for (int k = 0; k < 2; k++) view_close(&v[k]);
    for (int i = 0; i < T; i++) free(labels[i]);
    free(data[0]), free(data[1]);
    close(slave);
    close(master);
    pthread_cancel(th);
    pthread_join(th, NULL);
}

// ---- (2) keystroke to screen update with the real binary ----

// Read what the program writes until it has been quiet for quiet_ms (or max_ms passed); returns the
// time of the last byte (or -1 when nothing came), and the first byte's in *first.
static double read_update(int fd, double quiet_ms, double max_ms, double *first) {
    char buf[65536];
    double start = now_ms(), last = -1;
    if (first) *first = -1;
    for (;;) {
        double now = now_ms();
        double wait = last < 0 ? max_ms - (now - start) : quiet_ms - (now - last);
        if (wait <= 0) break;
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, (int)ceil(wait));
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            if (last < 0 && now_ms() - start < max_ms) continue;
            break;
        }
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        last = now_ms();
        if (first && *first < 0) *first = last;
    }
    return last;
}

static void send_text(int fd, const char *s) {
    for (; *s; s++) {
        if (write(fd, s, 1) != 1) return;
        read_update(fd, 5, 200, NULL);
    }
}

static void measure(int fd, const char *what, const char *keys) {
    double lat[KEYS], first[KEYS];
    size_t nk = strlen(keys);
    int n = 0;
    for (int i = 0; i < KEYS; i++) {
        read_update(fd, 20, 20, NULL); // idle first
        double t0 = now_ms();
        if (write(fd, &keys[i % nk], 1) != 1) break;
        double f;
        double last = read_update(fd, 15, 2000, &f);
        if (last < 0) continue;
        lat[n] = last - t0, first[n] = f - t0;
        n++;
    }
    if (!n) {
        printf("  %-34s no screen updates seen\n", what);
        return;
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    qsort(first, (size_t)n, sizeof *first, cmp_double);
    printf("  %-34s median %6.2f ms, worst %6.2f ms (first byte: median %.2f ms)  n=%d  (target < 50)\n", what,
           lat[n / 2], lat[n - 1], first[n / 2], n);
}

static void bench_keys(const char *qkv) {
    printf("keystroke to screen update: %s in a %dx%d pseudo-terminal, idle\n", qkv, W, HT);
    char tmp[] = "/tmp/qkv-tui-bench-XXXXXX";
    if (!mkdtemp(tmp)) {
        printf("  (cannot make a temporary directory)\n");
        return;
    }
    char db[PATH_MAX], state[PATH_MAX];
    snprintf(db, sizeof db, "%s/bench.db", tmp);
    snprintf(state, sizeof state, "%s/state", tmp);
    int master;
    struct winsize ws = {HT, W, 0, 0};
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    if (pid < 0) {
        printf("  (forkpty: %s)\n", strerror(errno));
        return;
    }
    if (pid == 0) {
        setenv("TERM", "xterm-256color", 1);
        setenv("LANG", "C.UTF-8", 1);
        setenv("LC_ALL", "C.UTF-8", 1);
        setenv("XDG_STATE_HOME", state, 1);
        unsetenv("COLORTERM");
        execl(qkv, qkv, "--db", db, (char *)NULL);
        _exit(127);
    }
    if (read_update(master, 300, 10000, NULL) < 0) {
        printf("  (qkv showed nothing)\n");
    } else {
        send_text(master, ":generate \"The quick brown fox jumps over the lazy dog again and again\" max=18\r");
        read_update(master, 300, 10000, NULL);
        measure(master, "lab: select tokens (l/h)", "lh");
        send_text(master, "2");
        read_update(master, 500, 10000, NULL);
        measure(master, "attention head view: cursor j/k", "jk");
        send_text(master, "m");
        read_update(master, 300, 10000, NULL);
        measure(master, "attention model view: move l/h", "lh");
        measure(master, "switch views (Tab)", "\t");
        send_text(master, ":");
        measure(master, "command line: type a character", "abcdefgh");
        send_text(master, "\033");
        read_update(master, 100, 1000, NULL);
    }
    send_text(master, "q");
    read_update(master, 200, 2000, NULL);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    close(master);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) {
    }
}

int main(int argc, char **argv) {
    bench_model_view();
    char qkv[PATH_MAX];
    if (argc > 1) {
        snprintf(qkv, sizeof qkv, "%s", argv[1]);
    } else { // qkv beside this program
        ssize_t n = readlink("/proc/self/exe", qkv, sizeof qkv - 8);
        if (n < 0) n = 0;
        qkv[n] = 0;
        char *slash = strrchr(qkv, '/');
        strcpy(slash ? slash + 1 : qkv, "qkv");
    }
    if (access(qkv, X_OK)) {
        printf("keystroke to screen update: no qkv binary at %s (pass its path)\n", qkv);
        return 0;
    }
    bench_keys(qkv);
    return 0;
}
