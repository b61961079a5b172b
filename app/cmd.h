// cmd.h - the command language: parsing one command line and the table every front end
// (headless, REPL, TUI) dispatches through.
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
// caller's job: see cmd_split) into words. Returns 0, or -1 with e filled.
int cmd_parse(const char *line, size_t len, Args *out, Err *e);
void args_free(Args *a);
// Split a script into commands at ';' and newlines outside quotes; '#' starts a comment
// at the start of a command. Calls fn for each non-empty command; stops at the first
// non-zero return and returns it.
int cmd_split(const char *text, size_t len, int (*fn)(void *user, const char *cmd, size_t n), void *user);

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
// not in --json mode.
typedef struct Out {
    Buf json;  // the object being built through w
    JsonW w;
    Buf text;  // human form; empty = render the JSON generically
    Buf err;   // the error message when the command fails
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
} Command;

// The command tables of each area, NULL-name terminated.
extern const Command engine_commands[];
extern const Command db_commands[];

// Find a command by name (or unique prefix? no: exact), NULL when unknown.
const Command *cmd_find(const char *name);
// Iterate every command: i from 0 until NULL.
const Command *cmd_at(int i);

// Run one command line: parse, check arity and options generically, dispatch. The result
// is in out (out->err on failure). Returns 0 or -1.
int cmd_run(App *app, const char *line, size_t len, Out *out);
