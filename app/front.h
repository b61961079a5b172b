// front.h - the interactive front ends over the command language.
#pragma once

#include "session.h"

// The interactive session on a terminal (the TUI, else the line REPL); returns the exit status.
int front_interactive(App *app);
// The plain line REPL (TERM=dumb, --no-tui); returns the exit status.
int repl_run(App *app);
