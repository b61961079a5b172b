// tui.h - the full-screen terminal interface (curses + GNU readline) over the command language.
#pragma once
#include <stdbool.h>

#include "session.h"

// Whether the full-screen interface can run here: stdin and stdout are terminals and TERM names
// one that is not "dumb".
bool tui_usable(void);

// Run the full-screen interface until the person quits; returns the exit status, or -1 when
// curses could not take the terminal (nothing was shown: the caller falls back to the REPL).
int tui_run(App *app);
