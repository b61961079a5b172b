// lineedit.c - readline completion and history shared by the line REPL and the TUI.
#include "lineedit.h"

#include <readline/history.h>
#include <readline/readline.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "base/fs.h"
#include "base/mem.h"

char *lineedit_history_path(void) {
    const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    char dir[4096];
    if (state && *state) snprintf(dir, sizeof dir, "%s/qkv", state);
    else if (home && *home) snprintf(dir, sizeof dir, "%s/.local/state/qkv", home);
    else return NULL;
    fs_mkdir_p(dir, 0700, NULL); // quietly: history is a convenience
    return fs_join(dir, "history");
}

void lineedit_history_load(const char *path) {
    using_history();
    if (path) read_history(path);
}

void lineedit_history_save(const char *path) {
    if (!path) return;
    write_history(path);
    history_truncate_file(path, 5000);
}

// Tab completion: command names first, then option keys of the command, else file names.
static char *complete_command(const char *text, int state) {
    static int i;
    static size_t len;
    if (!state) i = 0, len = strlen(text);
    const Command *c;
    while ((c = lang_at(i++)))
        if (!strncmp(c->name, text, len)) return xstrdup(c->name); // readline frees it
    return NULL;
}

static const Command *completing_cmd;
static char *complete_option(const char *text, int state) {
    static int i;
    static size_t len;
    if (!state) i = 0, len = strlen(text);
    if (!completing_cmd || !completing_cmd->keys) return NULL;
    const char *k;
    while ((k = completing_cmd->keys[i++])) {
        if (strncmp(k, text, len)) continue;
        size_t n = strlen(k) + 2;
        char *s = xmalloc(n); // readline frees it
        snprintf(s, n, "%s=", k);
        return s;
    }
    return NULL;
}

static char **completion(const char *text, int start, int end) {
    (void)end;
    int s = 0;
    while (s < start && (rl_line_buffer[s] == ' ' || rl_line_buffer[s] == ':')) s++;
    if (s == start) {
        rl_attempted_completion_over = 1;
        return rl_completion_matches(text, complete_command);
    }
    char name[64];
    int n = 0;
    while (s < start && rl_line_buffer[s] != ' ' && n < 63) name[n++] = rl_line_buffer[s++];
    name[n] = 0;
    completing_cmd = lang_find(name);
    if (!strchr(text, '=') && !strchr(text, '/')) {
        char **m = rl_completion_matches(text, complete_option);
        if (m) {
            rl_completion_append_character = '\0';
            rl_attempted_completion_over = 1;
            return m;
        }
    }
    return NULL; // file names
}

void lineedit_setup(void) {
    rl_attempted_completion_function = completion;
    rl_readline_name = "qkv";
}
