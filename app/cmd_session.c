// cmd_session.c - the session commands: set, help, quit (exit, q).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmdutil.h"
#include "commands.h"
#include "base/mem.h"
#include "kern/pool.h"
#include "reward_model.h"

static void settings_json(App *app, Out *out) {
    JsonW *w = &out->w;
    const GenParams *g = &app->gen;
    char seed[32] = "random";
    if (app->seed_set) snprintf(seed, sizeof seed, "%llu", (unsigned long long)g->s.seed);
    jw_knum(w, "temperature", float_decimal(g->s.temperature));
    jw_kint(w, "top_k", g->s.top_k);
    jw_knum(w, "top_p", float_decimal(g->s.top_p));
    if (app->seed_set) jw_kint(w, "seed", (long long)g->s.seed);
    else jw_key(w, "seed"), jw_null(w);
    jw_kint(w, "max", g->max_tokens);
    jw_kint(w, "alts", g->n_alts);
    jw_kbool(w, "truncate", g->truncate);
    jw_kbool(w, "stop", g->stop_at_eos);
    int threads = app->n_threads > 0 ? app->n_threads : pool_cpus();
    jw_kint(w, "threads", threads);
    // kv_dtype: what the current model's cache uses (null under auto before a model is loaded)
    bool known = app->kv_set || app->model;
    const char *kv_dt = known ? dtype_name(app_kv(app, app->model)) : NULL;
    jw_kstr(w, "kv", app_kv_name(app));
    if (kv_dt) jw_kstr(w, "kv_dtype", kv_dt);
    else jw_key(w, "kv_dtype"), jw_null(w);
    jw_kstr(w, "annotator", app->annotator ? app->annotator : "");
    if (app->reward_dir) jw_kstr(w, "reward", app->reward_dir);
    else jw_key(w, "reward"), jw_null(w);
    char kv[32];
    snprintf(kv, sizeof kv, app->kv_set || !known ? "%s" : "%s (%s here)", app_kv_name(app), kv_dt ? kv_dt : "");
    buf_printf(&out->text,
               "temperature %g  top_k %d  top_p %g  seed %s  max %d  alts %d  truncate %s  stop %s  threads %d  "
               "kv %s  annotator %s  reward %s\n",
               g->s.temperature, g->s.top_k, g->s.top_p, seed, g->max_tokens, g->n_alts, g->truncate ? "true" : "false",
               g->stop_at_eos ? "true" : "false", threads, kv, app->annotator ? app->annotator : "(none)",
               app->reward_dir ? app->reward_dir : "(the latest reward run's)");
}

static int cmd_set(App *app, const Args *a, Out *out) {
    const Arg *k = args_pos(a, 0), *v = args_pos(a, 1);
    if (!k) {
        settings_json(app, out);
        return 0;
    }
    if (!v) return out_error(out, "set %s: a value is expected (set KEY VALUE)", k->val);
    if (!strcmp(k->val, "annotator")) {
        free(app->annotator); // "" is no annotator (NULL), as agreement reads it: not a name of its own
        app->annotator = v->len ? xstrndup(v->val, v->len) : NULL;
        settings_json(app, out);
        return 0;
    }
    if (!strcmp(k->val, "reward")) { // checked now, so that a typo is seen at once
        free(app->reward_dir);
        app->reward_dir = NULL;
        if (strcmp(v->val, "none")) {
            Err e = {{0}};
            RewardModel *rm = reward_model_open(v->val, 1, &e);
            if (!rm) return out_error(out, "set reward: %s", e.msg);
            app->reward_dir = xstrdup(reward_model_path(rm));
            reward_model_free(rm);
        }
        settings_json(app, out);
        return 0;
    }
    if (!strcmp(k->val, "seed") && !strcmp(v->val, "random")) {
        app->seed_set = false;
        settings_json(app, out);
        return 0;
    }
    if (!strcmp(k->val, "threads")) {
        char *end;
        long n = strtol(v->val, &end, 10);
        if (*end || n < 1 || n > APP_MAX_THREADS) return out_error(out, "set threads: 1..%d expected", APP_MAX_THREADS);
        app->n_threads = (int)n;
        app_drop_contexts(app); // the original's too: `bench against=original` and `compare` time and run both
        settings_json(app, out);
        return 0;
    }
    if (!strcmp(k->val, "kv")) { // the cache's type: the contexts are rebuilt empty on next use
        DType kv;
        if (strcasecmp(v->val, "auto") && app_kv_parse(v->val, &kv))
            return out_error(out, "set kv: auto, f32, f16 or q8_0 expected, not '%.40s'", v->val);
        Err e = {{0}};
        if (strcasecmp(v->val, "auto") && app->model && app_kv_fits(kv, app->model, &e))
            return out_error(out, "set kv %s: %s", v->val, e.msg);
        app_kv_setting(app, v->val);
        app_drop_contexts(app);
        settings_json(app, out);
        return 0;
    }
    // decoding keys go through the same parser as the per-command options
    static const char *const keys[] = {DECODE_KEYS, NULL};
    bool known = false;
    for (int i = 0; keys[i]; i++) known |= !strcmp(keys[i], k->val);
    if (!known) return out_error(out, "set: unknown setting '%.40s' (temperature, top_k, top_p, seed, max, alts, truncate, stop, threads, kv, annotator, reward)", k->val);
    Arg opt = {k->val, v->val, v->len, false};
    Args one = {"set", &opt, 1};
    GenParams p;
    bool seed_given;
    if (decode_opts(app, &one, &p, &seed_given, out)) return -1;
    app->gen = p;
    if (!strcmp(k->val, "seed")) app->seed_set = true;
    settings_json(app, out);
    return 0;
}

static int cmd_help(App *app, const Args *a, Out *out) {
    (void)app;
    const Arg *name = args_pos(a, 0);
    JsonW *w = &out->w;
    if (name) {
        const Command *c = lang_find(name->val[0] == ':' ? name->val + 1 : name->val);
        if (!c) return out_error(out, "help: unknown command '%.40s'", name->val);
        jw_kstr(w, "command", c->name);
        jw_kstr(w, "usage", c->usage);
        jw_kstr(w, "help", c->help);
        buf_printf(&out->text, "usage: %s\n\n%s\n", c->usage, c->help);
        return 0;
    }
    jw_key(w, "commands");
    jw_arr(w);
    const Command *c;
    buf_puts(&out->text, "commands (help CMD for details):\n");
    for (int i = 0; (c = lang_at(i)); i++) {
        jw_obj(w);
        jw_kstr(w, "name", c->name);
        jw_kstr(w, "usage", c->usage);
        jw_obj_end(w);
        buf_printf(&out->text, "  %s\n", c->usage);
    }
    jw_arr_end(w);
    return 0;
}

static int cmd_quit(App *app, const Args *a, Out *out) {
    (void)a;
    app->quit = true;
    jw_kbool(&out->w, "quit", true);
    out->silent = true;
    return 0;
}

static const char *const k_none[] = {NULL};

const Command session_commands[] = {
    {"set", cmd_set, 0, 2, k_none, "set [KEY VALUE]",
     "Decoding defaults and session settings: temperature, top_k, top_p, seed (a number or random), max, alts, "
     "truncate, stop, threads, kv (the KV cache's element type: f16 keeps keys and values rounded to "
     "half precision as they enter the cache, half its memory and half the bytes attention reads a decoded token; "
     "q8_0 keeps them in ggml's Q8_0 blocks (an 8-bit value each and a scale per 32), about a quarter of f32's bytes, "
     "for heads of a multiple of 32 values; f32 keeps them exact; auto, the default, is f32 for F32 weights and f16 "
     "for every other type; "
     "setting it empties the cache: the next command starts from a clean context), annotator, reward (a reward model's directory: the one reward score and the Rank "
     "view use when no model= is given; none: the latest reward run's). Without arguments, show them.",
     false},
    {"help", cmd_help, 0, 1, k_none, "help [COMMAND]", "List the commands, or show one command's usage.", false},
    {"quit", cmd_quit, 0, 0, k_none, "quit",
     "Leave qkv: headless, the commands after it do not run (the exit status is that of the commands before); "
     "the TUI asks first while a ranking is unfinished. exit and q (:q) are the same command. JSON: quit.",
     false},
    {"exit", cmd_quit, 0, 0, k_none, "exit", "The same as quit. JSON: quit.", false},
    {"q", cmd_quit, 0, 0, k_none, "q", "The same as quit (:q, as vi users type it). JSON: quit.", false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
