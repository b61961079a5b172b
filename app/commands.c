// commands.c - the command tables in the order help lists them, and the dispatch of one line.
#include "commands.h"

#include "model/wsrc.h"

void commands_init(void) {
    static const Command *const all[] = {model_commands,  gen_commands,   inspect_commands, analysis_commands, probe_commands,
                                         encode_commands, quant_commands, data_commands,    exp_commands,
                                         rank_commands,   agree_commands, reward_commands, dpo_commands, session_commands, train_commands};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) lang_register(all[i]);
}

int commands_run(App *app, const char *line, size_t len, Out *out) {
    commands_init();
    Args a;
    Err e = {0};
    if (lang_parse(line, len, &a, &e)) {
        jw_obj_end(&out->w);
        return out_error(out, "%s", e.msg);
    }
    const Command *c = lang_find(a.name);
    int rc;
    if (!c) {
        rc = out_error(out, "unknown command '%.40s' (try: help)", a.name);
    } else if (lang_check_args(c, &a, out)) {
        rc = -1;
    } else if (c->needs_model && !app->model && app_load_model(app, NULL, NULL, &e)) {
        rc = out_error(out, "%s", e.msg);
    } else if (c->needs_model && app->model && wsrc_check(app->model->src, &e)) {
        rc = out_error(out, "%s: %s", a.name, e.msg);
    } else {
        app->stoppable = c->stoppable;
        rc = c->fn(app, &a, out);
        app_stoppable_done(app);
        size_t failed = out->json.failed > out->text.failed ? out->json.failed : out->text.failed;
        if (!rc && failed) rc = out_error(out, "out of memory for the result of %s (%zu bytes)", c->name, failed);
        if (rc && !out->err.len) out_error(out, "%s failed", c->name);
    }
    jw_obj_end(&out->w);
    args_free(&a);
    return rc;
}
