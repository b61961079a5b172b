// main.c - qkv's entry point: options, headless mode (-e, --script, stdin), the REPL.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fs.h"
#include "base/json.h"
#include "base/mem.h"
#include "commands.h"
#include "front.h"
#include "print.h"
#include "session.h"

enum { EXIT_OOM = 3 }; // the out-of-memory handler's status (1: a command failed, 2: usage, 130: Ctrl-C)

static volatile sig_atomic_t interrupted;
static volatile sig_atomic_t ended_by; // SIGHUP or SIGTERM: its number
static volatile sig_atomic_t headless; // only headless runs leave on a second Ctrl-C

// Ctrl-C stops the command running (a generation keeps its tokens, logged as a cancelled run)
// and, headless, what comes after it. SIGHUP (the SSH connection or the terminal went away) and
// SIGTERM (kill, timeout, a job scheduler) do the same, then qkv leaves with 128+N, as a shell
// reports the signal: they ended qkv at once, and a generation under way was lost. A second
// signal while the first is being handled leaves now, without the temporary file of an export
// or a save (headless only: at the REPL's prompt Ctrl-C just clears the line).
static void on_sigint(int sig) {
    if ((interrupted && headless) || ended_by) {
        af_unlink_pending();
        signal(sig, SIG_DFL);
        raise(sig);
    }
    if (sig != SIGINT) ended_by = sig;
    interrupted = 1;
}

// The out-of-memory handler (core/base/mem.h): a bookkeeping allocation failed somewhere.
// Give the terminal back if the TUI holds it, keep what headless mode printed, say so in one
// line, remove the temporary files of atomic writes under way and leave at once (no atexit
// work: memory is short and the state is unknown).
static void on_oom(size_t size) {
    front_restore_terminal();
    fflush(stdout);
    mem_oom_report(size);
    af_unlink_pending();
    _exit(EXIT_OOM);
}

// A --model or --tokenizer that cannot be opened: said as a command's error is (with --json, the
// {"error": ...} line on stdout too, which it lacked; names read from the file as valid UTF-8).
static int startup_error(const App *app, const char *msg) {
    Out o;
    out_init(&o);
    out_error(&o, "%s", msg);
    print_result(&o, -1, app->json, stdout, stderr);
    out_free(&o);
    return 1;
}

static void usage(FILE *f) {
    fputs("usage: qkv [--model PATH] [--tokenizer PATH] [--db PATH] [--annotator NAME] [--threads N]\n"
          "           [--kv auto|f32|f16|q8_0] [--json] [-e 'CMD; CMD ...'] [--script FILE] [--keep-going]\n"
          "           [--no-tui] [--version] [--help]\n"
          "Without -e/--script and with a terminal on stdin, qkv is interactive; otherwise it runs the\n"
          "commands (from -e, --script, or stdin) and exits non-zero if one failed: it stops at the first\n"
          "that fails, or with --keep-going (-k) runs the rest. `qkv -e help` lists them.\n",
          f);
}

// OpenBLAS picks its kernels when it loads: on AVX-512 CPUs its SkylakeX kernels are about
// twice as fast as the Haswell ones Debian's build chooses, so re-execute once with the
// variable set before anything else happens.
static void maybe_reexec(char **argv) {
#if defined(__x86_64__)
    if (getenv("OPENBLAS_CORETYPE") || getenv("QKV_NO_REEXEC")) return;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) return;
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    setenv("QKV_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    // on failure just go on with the default kernels
#else
    (void)argv;
#endif
}

// ---------------------------------------------------------------------------------------
// Headless

typedef struct {
    App *app;
    int failed;
    bool keep_going;
} Runner;

static int run_one(void *user, const char *cmd, size_t n) {
    Runner *r = user;
    Out o;
    out_init(&o);
    int rc = commands_run(r->app, cmd, n, &o);
    print_result(&o, rc, r->app->json, stdout, stderr);
    fflush(stdout); // a program reading a pipe sees each result as its command ends
    out_free(&o);
    if (rc) r->failed++;
    if (interrupted) return 130; // main says which signal
    if (r->app->quit) return 2; // quit: nothing after it runs
    return rc && !r->keep_going ? 1 : 0;
}

// The longest command line read from a stream (a line, with the lines after it while a quote is
// open): a device such as /dev/zero piped in, or a line that never ends, stops there instead of
// growing memory until the machine runs out.
#define LINE_MAX_BYTES ((size_t)16 << 20)

// Append the next line of f (up to its '\n', included) to b: 1 when one came, 0 at the end of f
// or on a read error (ferror: a line cut by Ctrl-C is not one), -1 when b would pass max bytes.
// Read byte by byte: a NUL is a byte like any other, and nothing past the line is waited for.
static int read_line(FILE *f, Buf *b, size_t max) {
    char chunk[4096];
    size_t n = 0, start = b->len;
    int c = 0;
    while (c != '\n' && (c = getc_unlocked(f)) != EOF) {
        chunk[n++] = (char)c;
        if (c != '\n' && n < sizeof chunk) continue;
        if (b->len + n > max) return -1;
        buf_put(b, chunk, n);
        n = 0;
    }
    if (ferror(f)) return 0;
    if (b->len + n > max) return -1;
    buf_put(b, chunk, n);
    return b->len > start;
}

// Run the commands of a stream as they come: each line (with the lines after it while a quote
// is open) runs before the next is read, so that a program can read one command's output before
// it writes the next (rank, then order; a pipe read to its end first made that hang). name says
// where they come from in messages ("standard input", "'FILE'"). Returns lang_split's, 130 when
// Ctrl-C came while it waited for a line; *status 1 on a read error, a command line longer than
// LINE_MAX_BYTES, or one that outgrew memory.
static int run_stream(FILE *f, const char *name, Runner *r, int *status) {
    Buf text = {.fallible = true}; // a command's size is input (mem.h rule 1)
    char quote = 0; // the quote the lines so far end inside
    int rc = 0, got = 0;
    long line = 0, first = 1; // the line a command starts on, for messages
    for (size_t had = 0; !rc && (got = read_line(f, &text, LINE_MAX_BYTES)) > 0 && !text.failed; had = text.len) {
        line++;
        // a UTF-8 byte-order mark an editor put first is no part of the first command (it read
        // "unknown command 'tokenize'", the mark invisible), as every JSON file qkv reads skips it
        if (line == 1 && text.len >= 3 && !memcmp(text.data, "\xEF\xBB\xBF", 3)) {
            memmove(text.data, text.data + 3, text.len - 3);
            text.len -= 3;
            text.data[text.len] = 0;
        }
        quote = lang_quote_after(text.data + had, text.len - had, quote); // each line looked at once
        if (quote) continue;
        rc = lang_split(text.data, text.len, run_one, r);
        buf_clear(&text);
        first = line + 1;
    }
    if (got < 0) {
        fprintf(stderr, "error: %s, line %ld: a command line longer than %zu MiB, the most qkv reads; nothing from "
                        "there on runs\n", name, first, LINE_MAX_BYTES >> 20);
        *status = 1;
    } else if (text.failed) {
        fprintf(stderr, "error: out of memory for a command of %s (%zu bytes)\n", name, text.failed);
        *status = 1;
    } else if (!rc && interrupted) { // Ctrl-C while waiting for a line (the read failed, or saw the end)
        rc = 130;
    } else if (!rc && ferror(f)) {
        fprintf(stderr, "error: cannot read %s: %s\n", name, strerror(errno ? errno : EIO));
        *status = 1;
    } else if (!rc && text.len) { // the end inside a quote: the command says so
        rc = lang_split(text.data, text.len, run_one, r);
    }
    buf_free(&text);
    return rc;
}

// Open the script path for run_stream: a regular file, a pipe (`--script <(...)`, a FIFO, which
// waits for its writer as a pipe does) or a terminal; NULL with a message on stderr for anything
// else: a device such as /dev/zero never ends and is not read at all.
static FILE *script_open(const char *path) {
    struct stat st;
    int fd = -1;
    const char *why = NULL;
    if (stat(path, &st)) why = strerror(errno);
    else if (S_ISDIR(st.st_mode)) why = fs_not_regular(st.st_mode);
    else if (S_ISCHR(st.st_mode)) { // a terminal (/dev/tty) is read as one; no other device is opened for long
        fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) why = strerror(errno);
        else if (!isatty(fd) || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
            why = "it is a device, not a regular file, a pipe or a terminal";
    } else if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode)) {
        why = "it is a device, not a regular file, a pipe or a terminal";
    } else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        why = strerror(errno);
    }
    FILE *f = why ? NULL : fdopen(fd, "rb");
    if (!f && !why) why = strerror(errno);
    if (why) {
        if (fd >= 0) close(fd);
        fprintf(stderr, "error: cannot read the script '%s': %s\n", path, why);
    }
    return f;
}

// ---------------------------------------------------------------------------------------

int main(int argc, char **argv) {
    mem_set_oom_handler(on_oom);
    maybe_reexec(argv);
    commands_init();
    db_set_fold(app_text_fold); // history, rankings, ... TEXT: "CAFÉ" finds "café"
    App app = {0};
    app.n_threads = 0;
    app.gen = (GenParams){.s = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 0},
                          .max_tokens = 32, .n_alts = 5, .stop_at_eos = true, .truncate = false};
    app.cancel = &interrupted;
    app.ended = &ended_by;
    const char *model = NULL, *tokenizer = NULL, *script = NULL;
    Buf exprs = {0};
    bool have_e = false, no_tui = false, keep_going = false;
    int status = 0; // every exit below goes through `done`, which frees what the options took
    for (int i = 1; i < argc && !status; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDS_ARG                                                         \
    if (!next) {                                                          \
        fprintf(stderr, "error: %s needs an argument\n", a);              \
        status = 2;                                                       \
        goto done;                                                        \
    }                                                                     \
    i++;
        if (!strcmp(a, "--model") || !strcmp(a, "-m")) {
            NEEDS_ARG model = next;
        } else if (!strcmp(a, "--tokenizer")) {
            NEEDS_ARG tokenizer = next;
        } else if (!strcmp(a, "--db")) {
            NEEDS_ARG free(app.db_path);
            app.db_path = xstrdup(next);
        } else if (!strcmp(a, "--annotator")) {
            NEEDS_ARG free(app.annotator);
            app.annotator = xstrdup(next);
        } else if (!strcmp(a, "--threads")) {
            NEEDS_ARG char *end;
            long nt = strtol(next, &end, 10);
            app.n_threads = *next && !*end && nt >= 1 && nt <= APP_MAX_THREADS ? (int)nt : 0; // "1x" is not 1
            if (!app.n_threads) {
                fprintf(stderr, "error: --threads: a whole number in 1..%d expected, not '%.40s'\n", APP_MAX_THREADS, next);
                status = 2;
                goto done;
            }
        } else if (!strcmp(a, "--kv")) {
            NEEDS_ARG if (app_kv_setting(&app, next)) {
                fprintf(stderr, "error: --kv: auto, f32, f16 or q8_0 expected, not '%.40s'\n", next);
                status = 2;
                goto done;
            }
        } else if (!strcmp(a, "--json")) {
            app.json = true;
        } else if (!strcmp(a, "--no-tui")) {
            no_tui = true;
        } else if (!strcmp(a, "--keep-going") || !strcmp(a, "-k")) {
            keep_going = true;
        } else if (!strcmp(a, "-e")) {
            NEEDS_ARG buf_puts(&exprs, next);
            buf_putc(&exprs, '\n');
            have_e = true;
        } else if (!strcmp(a, "--script")) {
            NEEDS_ARG script = next;
        } else if (!strcmp(a, "--version")) {
            printf("qkv %s\n", QKV_VERSION);
            goto done;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            goto done;
        } else if (a[0] != '-') {
            // `qkv CMD ARGS...`: the rest of the line is one command, re-quoted as the shell
            // split it (arguments with spaces or quotes keep their meaning); KEY=VALUE is an
            // option when KEY is one of the command's, else text ("a=b" is tokenized as is)
            const Command *cmd = lang_find(a);
            for (int k = i; k < argc; k++) {
                const char *w = argv[k];
                if (k > i) buf_putc(&exprs, ' ');
                const char *eq = k > i ? strchr(w, '=') : NULL;
                bool option = false;
                for (int o = 0; eq && cmd && cmd->keys && cmd->keys[o] && !option; o++)
                    option = strlen(cmd->keys[o]) == (size_t)(eq - w) && !strncmp(w, cmd->keys[o], (size_t)(eq - w));
                bool plain = w[strcspn(w, " \t\n\"';#\\")] == 0 && *w && (option || !eq || k == i);
                if (plain) {
                    buf_puts(&exprs, w);
                    continue;
                }
                const char *val = w;
                if (option) {
                    buf_put(&exprs, w, (size_t)(eq - w) + 1);
                    val = eq + 1;
                }
                buf_put_quoted(&exprs, val, strlen(val));
            }
            buf_putc(&exprs, '\n');
            have_e = true;
            break;
        } else {
            fprintf(stderr, "error: unknown option '%s'\n", a);
            usage(stderr);
            status = 2;
            goto done;
        }
#undef NEEDS_ARG
    }
    if (!app.annotator && getenv("QKV_ANNOTATOR")) app.annotator = xstrdup(getenv("QKV_ANNOTATOR"));
    if (app.annotator && !*app.annotator) { // "" (--annotator "" over $QKV_ANNOTATOR too): no annotator, NULL as
        free(app.annotator);                // agreement reads it, not a name of its own
        app.annotator = NULL;
    }
    if (app.db_path) app.db_named = "--db";
    else if (getenv("QKV_DB") && *getenv("QKV_DB")) app.db_path = xstrdup(getenv("QKV_DB")), app.db_named = "QKV_DB";
    app_protect_db(&app);

    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL); // (the TUI installs its own while it runs)
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    // past a file-size limit (ulimit -f) a write fails with EFBIG and is reported as a full disk
    // is, the file left as it was; the default would kill qkv mid-write
    signal(SIGXFSZ, SIG_IGN);

    Err e = {0};
    if (tokenizer) {
        app.tok_owned = tok_load(tokenizer, &e);
        if (!app.tok_owned) {
            status = startup_error(&app, e.msg);
            goto done;
        }
        app.tok = app.tok_owned;
    }
    if (model && app_load_model(&app, model, tokenizer, &e)) {
        status = startup_error(&app, e.msg);
        goto done;
    }
    bool interactive = !have_e && !script && isatty(STDIN_FILENO);
    headless = !interactive;
    app.headless = !interactive;
    if (interactive) {
        status = no_tui ? repl_run(&app) : front_interactive(&app);
    } else {
        // the commands of -e, then those of the script or of standard input, read as they come
        FILE *f = NULL;
        if (script && strcmp(script, "-")) {
            if (!(f = script_open(script))) {
                status = 1;
                goto done;
            }
        } else if (script || !have_e) {
            f = stdin;
        }
        Runner r = {&app, 0, keep_going};
        int rc = have_e ? lang_split(exprs.data, exprs.len, run_one, &r) : 0;
        if (!rc && f) {
            Buf name = {0};
            if (f == stdin) buf_puts(&name, "standard input");
            else buf_printf(&name, "'%s'", script);
            rc = run_stream(f, name.data, &r, &status);
            buf_free(&name);
        }
        if (f && f != stdin) fclose(f);
        status = rc == 130 ? 130 : r.failed ? 1 : status;
    }
    if (ended_by) status = 128 + ended_by;
done:
    buf_free(&exprs);
    app_done(&app);
    return status;
}
