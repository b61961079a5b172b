// print.h - printing a command's result (headless, REPL, the TUI's log).
#pragma once
#include <stdbool.h>
#include <stdio.h>

#include "lang.h"

// Print a command's result: with json, its JSON line; else its human text (control
// characters shown, not acted on, when out is a terminal), or a generic rendering of its
// JSON. A failure prints "error: ..." on err (and {"error": ...} on out with json).
void print_result(const Out *o, int rc, bool json, FILE *out, FILE *err);
