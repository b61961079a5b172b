// lang.h - the command language: lexing and parsing command lines, arguments and options,
// the result of a command (Out), and the registry of command tables every front end
// (headless, REPL, TUI) dispatches through. It knows no command and no session: a handler
// gets the application state as an opaque App.
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

typedef struct App App;

// One argument: positional (key == NULL) or key=value. Quoted text has C escapes decoded,
// so val may contain NUL bytes: use len.
typedef struct Arg {
    char *key;
    char *val;
    size_t len;
    bool quoted;
} Arg;

typedef struct Args {
    char *name; // the command word (a leading ':' removed)
    Arg *a;
    int n;
} Args;

// Split one command (text up to but not including a top-level ';' or newline is the
// caller's job: see lang_split) into words. Returns 0, or -1 with e filled.
int lang_parse(const char *line, size_t len, Args *out, Err *e);
void args_free(Args *a);
// Split a script into commands at ';' and newlines outside quotes; '#' starts a comment
// at the start of a command. Calls fn for each non-empty command; stops at the first
// non-zero return and returns it.
int lang_split(const char *text, size_t len, int (*fn)(void *user, const char *cmd, size_t n), void *user);
// The quote (' or ") text ends inside, 0 when none: its last command goes on in what follows (a
// quoted text may hold new lines), so that a reader of a stream runs what it has only at 0. quote:
// the one text starts inside (what this said of the lines before), 0 at a command's start; so a
// reader looks at each line once, however many lines one quoted text spans.
char lang_quote_after(const char *text, size_t len, char quote);

// Positional argument i, or NULL.
const Arg *args_pos(const Args *a, int i);
int args_npos(const Args *a);
// Option values. Each returns 0 when absent (leaving *out), 1 when set, -1 with e filled
// when present but malformed or out of range.
const char *args_opt(const Args *a, const char *key);
int args_int(const Args *a, const char *key, long long lo, long long hi, long long *out, Err *e);
int args_float(const Args *a, const char *key, double lo, double hi, double *out, Err *e);
int args_bool(const Args *a, const char *key, bool *out, Err *e);

// Where a command puts its result: always a JSON object (the fields of DESIGN.md's
// table), optionally a human-readable text used instead of the generic rendering when
// not in --json mode. json and text grow with what the person asked for, so they are
// fallible buffers (base/buf.h): when one runs out of memory the command fails with
// "out of memory for the result of ..." (commands_run checks).
typedef struct Out {
    Buf json;  // the object being built through w
    JsonW w;
    Buf text;  // human form; empty = render the JSON generically
    bool silent; // in text mode, nothing at all (quit), not the JSON rendered generically
    Buf err;   // the error message when the command fails
    bool partial; // failed, but json holds what was done (an experiment stopped with Ctrl-C): --json prints it beside "error"
} Out;

void out_init(Out *o);
void out_free(Out *o);
// Fill the error (printf-style) and return -1, for `return out_error(out, ...)`.
int out_error(Out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef int (*CmdFn)(App *app, const Args *args, Out *out);

typedef struct Command {
    const char *name;
    CmdFn fn;
    int min_pos, max_pos;    // positional arguments accepted
    const char *const *keys; // options accepted (NULL-terminated), NULL = none
    const char *usage;       // "generate \"TEXT\" [max=N ...]"
    const char *help;        // one paragraph
    bool needs_model;
    bool stoppable;          // Ctrl-C fails its model evaluations ("interrupted"): long analyses
    bool own_keys;           // each form checks its own options (keys: their union, for completion),
                             // so an unknown one is named with the form's list, not the union
} Command;

// Add a command table (NULL-name terminated; borrowed, usually static) to the registry.
void lang_register(const Command *table);
// The command called name (exactly), NULL when unknown.
const Command *lang_find(const char *name);
// Every registered command: i from 0 until NULL.
const Command *lang_at(int i);
// The generic checks every command gets before its handler runs: arity and option names (an
// option given twice only, for an own_keys command).
// 0, or -1 with the message in out.
int lang_check_args(const Command *c, const Args *a, Out *out);
// The options of a against keys (NULL-terminated; NULL: none), for a command `name` or one of
// its forms ("experiment show"): 0, or -1 with "NAME: unknown option 'K' (options: ...)" in out.
int lang_check_keys(const char *name, const char *const *keys, const Args *a, Out *out);
