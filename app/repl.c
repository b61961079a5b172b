// repl.c - the plain line mode: GNU readline over the command language, with history under
// $XDG_STATE_HOME/qkv/. The full-screen TUI (tui.c) is the default on a terminal; this stays
// for TERM=dumb, terminals curses cannot drive, and `qkv --no-tui`.
#include <readline/history.h>
#include <readline/readline.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "front.h"
#include "lineedit.h"
#include "print.h"

int repl_run(App *app) {
    char *hist = lineedit_history_path();
    lineedit_history_load(hist);
    lineedit_setup();
    printf("qkv %s - type help for the commands, quit or Ctrl-D to leave\n", QKV_VERSION);
    if (!app->model) {
        Err e = {0};
        if (app_load_model(app, NULL, NULL, &e)) fprintf(stderr, "error: %s\n", e.msg);
        else if (app->model->untrained) printf("model: %s (untrained, random weights; load PATH opens a real one)\n", app->model->name);
        else printf("model: %s (models lists the installed ones, load NAME|PATH opens another)\n", app->model->name);
    }
    char *line;
    // (SIGHUP or SIGTERM at the prompt: readline returns NULL as at the end of input)
    while (!(app->ended && *app->ended) && (line = readline("qkv> "))) {
        if (*line && !(app->ended && *app->ended)) {
            add_history(line);
            if (app->cancel) *app->cancel = 0;
            Out o;
            out_init(&o);
            int rc = commands_run(app, line, strlen(line), &o);
            print_result(&o, rc, app->json, stdout, stderr);
            out_free(&o);
        }
        free(line);
        if (app->quit) break; // the quit command; after SIGHUP or SIGTERM the loop's test leaves
    }
    lineedit_history_save(hist);
    free(hist);
    return 0;
}
