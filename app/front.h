// front.h - the front ends over the command language: result printing, interactive mode.
#pragma once
#include <stdio.h>

#include "app.h"
#include "cmd.h"

// Print a command's result as headless mode does: JSON line, text, or the generic form;
// errors as "error: ..." on err (and {"error": ...} on out in JSON mode).
void front_print_result(const App *app, const Out *o, int rc, FILE *out, FILE *err);
// The interactive session on a terminal; returns the exit status.
int front_interactive(App *app);
// The plain line REPL (TERM=dumb, --no-tui); returns the exit status.
int repl_run(App *app);
// Release everything the App holds.
void app_done(App *app);
