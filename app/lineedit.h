// lineedit.h - what the REPL and the TUI share of GNU readline: tab completion of commands,
// their options and file names, and the history file under $XDG_STATE_HOME/qkv/.
#pragma once

// Point readline's completion at the command table (command names first, then the options of
// the command being typed, else file names) and name the application "qkv" for ~/.inputrc.
void lineedit_setup(void);

// The history file ($XDG_STATE_HOME/qkv/history, else ~/.local/state/qkv/history), its
// directory created; NULL when neither variable is set. The caller frees it.
char *lineedit_history_path(void);

// Read the history file into readline's history (if it exists).
void lineedit_history_load(const char *path);

// Write readline's history to path, keeping the last 5000 lines.
void lineedit_history_save(const char *path);
