// front.h - the interactive front ends over the command language.
#pragma once

#include "session.h"

// The interactive session on a terminal (the TUI, else the line REPL); returns the exit status.
int front_interactive(App *app);
// The plain line REPL (TERM=dumb, --no-tui); returns the exit status.
int repl_run(App *app);
// Give the terminal back when the full-screen interface holds it (leave curses, point stdout
// and stderr at the terminal again); nothing otherwise. The fatal paths call it before they
// print: a fatal signal, the out-of-memory handler.
void front_restore_terminal(void);
