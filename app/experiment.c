// experiment.c - prompt experiments (see experiment.h): the spec and its JSON, the plan and its
// checks, rendering and tokenizing prompts, and the loop that runs, scores and stores every
// item under every condition.
#include "experiment.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/clock.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/utf8.h"
#include "eval/generate.h"
#include "tok/chat.h"
#include "runlog.h"

const char *const exp_style_keys[ST_N] = {"description", "prefix",  "delimiter",    "answer_prefix",
                                          "separator",   "trigger", "answer_phrase"};

// ---- the spec ------------------------------------------------------------------------------

void exp_spec_init(ExpSpec *s) {
    memset(s, 0, sizeof *s);
    s->top_p = 1.0;
    s->alts = 5;
    s->stop_at_eos = true;
    s->reuse = true;
    s->rules = EXP_SCORING_RULES;
}

void exp_spec_free(ExpSpec *s) {
    free(s->task), free(s->task_path), free(s->pool_path), free(s->scorer), free(s->regex);
    for (int i = 0; i < ST_N; i++) free(s->style[i]);
    memset(s, 0, sizeof *s);
}

static void json_int_array(JsonW *w, const char *key, const int *v, int n) {
    jw_key(w, key);
    jw_arr(w);
    for (int i = 0; i < n; i++) jw_int(w, v[i]);
    jw_arr_end(w);
}

void exp_spec_json(const ExpSpec *s, Buf *out) {
    JsonW w;
    jw_init(&w, out);
    jw_obj(&w);
    jw_kstr(&w, "task", s->task);
    jw_kstr(&w, "task_path", s->task_path);
    jw_kstr(&w, "pool", s->pool_path);
    json_int_array(&w, "shots", s->shots, s->n_shots);
    json_int_array(&w, "cot", s->cot, s->n_cot);
    json_int_array(&w, "sc", s->samples, s->n_samples);
    json_int_array(&w, "chat", s->chat, s->n_chat);
    jw_key(&w, "seeds");
    jw_arr(&w);
    for (int i = 0; i < s->n_seeds; i++) {
        char seed[24];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seeds[i]);
        jw_raw(&w, seed);
    }
    jw_arr_end(&w);
    jw_kint(&w, "limit", s->limit);
    jw_key(&w, "style");
    jw_obj(&w);
    for (int i = 0; i < ST_N; i++)
        if (s->style[i]) jw_kstr(&w, exp_style_keys[i], s->style[i]);
    jw_obj_end(&w);
    jw_kstr(&w, "scorer", s->scorer);
    jw_kstr(&w, "regex", s->regex);
    jw_knum(&w, "temperature", s->temperature);
    jw_kint(&w, "top_k", s->top_k);
    jw_knum(&w, "top_p", s->top_p);
    jw_kint(&w, "max", s->max_tokens);
    jw_kint(&w, "alts", s->alts);
    jw_kbool(&w, "stop", s->stop_at_eos);
    jw_kbool(&w, "reuse", s->reuse);
    if (s->kv[0]) jw_kstr(&w, "kv", s->kv);
    jw_kint(&w, "rules", s->rules);
    jw_obj_end(&w);
}

static char *json_dup(const Json *j, const char *key) {
    const Json *v = json_get(j, key);
    return v && v->type == JSON_STR ? xstrndup(v->str, v->len) : NULL;
}

// An int list member into v[cap]; its count, or -1.
static int json_int_list(const Json *j, const char *key, int *v, int cap, long long lo, long long hi) {
    const Json *a = json_get(j, key);
    if (!a || a->type != JSON_ARR || a->len == 0 || a->len > (size_t)cap) return -1;
    for (size_t i = 0; i < a->len; i++) {
        long long x;
        if (!json_int_in(&a->items[i], lo, hi, &x)) return -1;
        v[i] = (int)x;
    }
    return (int)a->len;
}

int exp_spec_parse(const char *text, ExpSpec *s, Err *e) {
    exp_spec_init(s);
    Json *j = json_parse(text, strlen(text), e);
    if (!j) return err_prefix(e, "the experiment's stored spec");
    int rc = 0;
    s->task = json_dup(j, "task");
    s->task_path = json_dup(j, "task_path");
    s->pool_path = json_dup(j, "pool");
    s->n_shots = json_int_list(j, "shots", s->shots, EXP_MAX_LIST, 0, EXP_MAX_SHOTS);
    s->n_cot = json_int_list(j, "cot", s->cot, 2, 0, 1);
    s->n_samples = json_int_list(j, "sc", s->samples, EXP_MAX_LIST, 1, EXP_MAX_SAMPLES);
    s->n_chat = json_int_list(j, "chat", s->chat, 2, 0, 1);
    const Json *seeds = json_get(j, "seeds");
    s->n_seeds = seeds && seeds->type == JSON_ARR && seeds->len && seeds->len <= EXP_MAX_LIST ? (int)seeds->len : -1;
    for (int i = 0; i < s->n_seeds; i++) {
        long long x;
        if (!json_int_in(&seeds->items[i], 0, (1ll << 53) - 1, &x)) s->n_seeds = -1;
        else s->seeds[i] = (uint64_t)x;
    }
    if (!s->task || !s->task_path || s->n_shots < 0 || s->n_cot < 0 || s->n_samples < 0 || s->n_chat < 0 ||
        s->n_seeds < 0)
        rc = err_set(e, "the experiment's stored spec is incomplete");
    s->limit = (int)json_num_or(j, "limit", 0);
    const Json *st = json_get(j, "style");
    for (int i = 0; i < ST_N; i++) s->style[i] = json_dup(st, exp_style_keys[i]);
    s->scorer = json_dup(j, "scorer");
    s->regex = json_dup(j, "regex");
    s->temperature = json_num_or(j, "temperature", 0);
    s->top_k = (int)json_num_or(j, "top_k", 0);
    s->top_p = json_num_or(j, "top_p", 1);
    s->max_tokens = (int)json_num_or(j, "max", 0);
    s->alts = (int)json_num_or(j, "alts", 5);
    s->stop_at_eos = json_bool_or(j, "stop", true);
    s->reuse = json_bool_or(j, "reuse", true);
    snprintf(s->kv, sizeof s->kv, "%s", json_str_or(j, "kv", ""));
    s->rules = (int)json_num_or(j, "rules", 1);
    DType kv;
    if (!rc && s->kv[0] && app_kv_parse(s->kv, &kv))
        rc = err_set(e, "the experiment's stored spec has an unknown KV cache type '%s'", s->kv);
    json_free(j);
    return rc;
}

// ---- tasks ---------------------------------------------------------------------------------

const char *exp_tasks_dir(void) {
    const char *env = getenv("QKV_TASKS");
    if (env && *env) return env;
#ifdef QKV_TASKS_SOURCE
    if (fs_is_dir(QKV_TASKS_SOURCE)) return QKV_TASKS_SOURCE;
#endif
#ifdef QKV_TASKS_INSTALLED
    return QKV_TASKS_INSTALLED;
#else
    return "data/tasks";
#endif
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

char **exp_task_files(const char *dir, int *n) {
    *n = -1;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **names = NULL;
    int k = 0;
    for (struct dirent *de; (de = readdir(d));) {
        size_t l = strlen(de->d_name);
        if (l > 6 && !strcmp(de->d_name + l - 6, ".jsonl") && de->d_name[0] != '.') {
            names = xrealloc(names, sizeof *names * (size_t)(k + 1));
            names[k++] = xstrdup(de->d_name);
        }
    }
    closedir(d);
    if (k) qsort(names, (size_t)k, sizeof *names, by_name);
    *n = k;
    return names;
}

// The files of dir a task name can mean: NAME.jsonl, and those whose header is named name (the
// name `tasks` lists). Their count; the first two (absolute paths, to free) in found[].
static int task_candidates(const char *dir, const char *name, char *found[2]) {
    found[0] = found[1] = NULL;
    size_t nl = strlen(name);
    bool has_ext = nl >= 6 && !strcmp(name + nl - 6, ".jsonl");
    int n, count = 0;
    char **files = exp_task_files(dir, &n);
    for (int i = 0; i < n; i++) {
        Buf path = {0};
        buf_printf(&path, "%s/%s", dir, files[i]);
        size_t fl = strlen(files[i]);
        bool stem = has_ext ? !strcmp(files[i], name) : fl == nl + 6 && !strncmp(files[i], name, nl);
        Task *t = stem ? NULL : task_load(path.data, NULL);
        char abs[PATH_MAX];
        if ((stem || (t && t->name && !strcmp(t->name, name))) && realpath(path.data, abs)) {
            if (count < 2) found[count] = xstrdup(abs);
            count++;
        }
        task_free(t);
        buf_free(&path);
        free(files[i]);
    }
    free(files);
    return count;
}

char *exp_task_find(const char *name, Err *e) {
    char abs[PATH_MAX];
    struct stat st;
    if (!stat(name, &st)) { // there: a task file, or something said to be no task file
        const char *why = S_ISDIR(st.st_mode) ? "it is a folder" : fs_not_regular(st.st_mode);
        if (!why && !realpath(name, abs)) why = strerror(errno);
        if (why) return err_set(e, "cannot read task '%s': %s", name, why), NULL;
        return xstrdup(abs);
    }
    int err = errno; // not there (or not to be looked at: a folder on the way without permission)
    if (!strchr(name, '/') && *name) {
        // a name two files answer to (one's file name and another's header, or two headers) is
        // refused naming both: one of them was opened, silently, and not always the one listed
        const char *dir = exp_tasks_dir();
        char *found[2];
        int n = task_candidates(dir, name, found);
        if (n == 1) return found[0];
        if (n > 1)
            err_set(e, "task name '%s' is ambiguous: %d files in '%s' answer to it (%s and %s, by file name or "
                       "header name): give the file's path",
                    name, n, dir, strrchr(found[0], '/') + 1, strrchr(found[1], '/') + 1);
        else
            err_set(e, "no task '%s': neither a file nor one of the tasks in '%s' (see: tasks)", name, dir);
        free(found[0]), free(found[1]);
        return NULL;
    }
    return err_set(e, "cannot read task '%s': %s", name, strerror(err)), NULL;
}

// ---- the plan ------------------------------------------------------------------------------

void exp_plan_done(ExpPlan *p) {
    exp_spec_free(&p->spec);
    task_free(p->task);
    scorer_free(p->scorer[0]);
    scorer_free(p->scorer[1]);
    free(p->conds);
    free(p->items);
    memset(p, 0, sizeof *p);
}

// PromptChat's render through the tokenizer's chat template (user: the Tokenizer), with the
// start of the assistant's turn.
static int chat_render(void *user, const PromptMsg *msgs, int n, Buf *out, Err *e) {
    ChatMsg *m = xcalloc((size_t)n + 1, sizeof *m);
    for (int i = 0; i < n; i++) m[i] = (ChatMsg){msgs[i].role, msgs[i].text, msgs[i].len};
    int rc = tok_chat_render(user, m, n, true, out, e);
    free(m);
    return rc;
}

// The model's chat template as the prompts use it (ChatML, Llama 2, Llama 3, Mistral recognised
// from the model's own template); a model without one, or with one qkv cannot render, is refused.
static int chat_template(App *app, PromptChat *out, Err *e) {
    memset(out, 0, sizeof *out);
    const Tokenizer *t = app->model->tok;
    size_t len = 0;
    if (!tok_chat_template(t, &len))
        return err_set(e, "chat=on: %s has no chat template (chat=off renders the plain prompts)", app->model->name);
    TokChatKind k = tok_chat_kind(t);
    if (k == TOK_CHAT_NONE) { // let the renderer say what it does not recognise
        ChatMsg m = {"user", "x", 1};
        Buf b = {0};
        Err why = {{0}};
        tok_chat_render(t, &m, 1, true, &b, &why);
        buf_free(&b);
        return err_set(e, "chat=on: %s: %s", app->model->name, why.msg[0] ? why.msg : "its chat template is not one qkv renders");
    }
    *out = (PromptChat){chat_render, (void *)t, tok_chat_kind_name(k)};
    return 0;
}

void exp_condition_label(const DbCondition *c, char *out, size_t cap) {
    int n = snprintf(out, cap, "shots=%d cot=%s", c->shots, c->cot ? "on" : "off");
    if (n > 0 && (size_t)n < cap && c->samples > 1) n += snprintf(out + n, cap - (size_t)n, " sc=%d", c->samples);
    if (n > 0 && (size_t)n < cap && c->chat) n += snprintf(out + n, cap - (size_t)n, " chat=on");
    if (n > 0 && (size_t)n < cap) snprintf(out + n, cap - (size_t)n, " seed=%llu", (unsigned long long)c->seed);
}

// "CONDITION, item K": what the progress says runs now.
static void item_label(const DbCondition *c, int k, char *out, size_t cap) {
    char cl[96];
    exp_condition_label(c, cl, sizeof cl);
    snprintf(out, cap, "%s, item %d", cl, k);
}

uint64_t exp_sample_seed(uint64_t seed, int item, int s) {
    uint64_t x = seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(item + 1)) ^ (0xbf58476d1ce4e5b9ull * (uint64_t)(s + 1));
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x & ((1ull << 53) - 1);
}

int exp_plan_build(App *app, ExpSpec *spec, ExpPlan *p, Err *e) {
    memset(p, 0, sizeof *p);
    p->spec = *spec;
    memset(spec, 0, sizeof *spec); // taken
    ExpSpec *s = &p->spec;
    const Model *m = app->model;
    if (!m->cfg.a.causal)
        return err_set(e, "%s is an encoder: prompt experiments need a model that generates (a decoder)", m->name);
    p->task = task_load(s->task_path, e);
    if (!p->task) return -1;
    Task *t = p->task;
    if (s->pool_path && task_add_pool(t, s->pool_path, e)) return -1;
    if (!t->n_test)
        return err_set(e, "task '%s' has no test items (every item is in the pool: a training set for train)", t->path);
    prompt_style_default(&p->style, t);
    const char **fields[ST_N] = {&p->style.description, &p->style.input_prefix,  &p->style.delimiter,
                                 &p->style.answer_prefix, &p->style.separator, &p->style.cot_trigger,
                                 &p->style.answer_phrase};
    for (int i = 0; i < ST_N; i++)
        if (s->style[i]) *fields[i] = s->style[i];
    if (!p->style.separator || !*p->style.separator) // the query ran into the exemplar before it
        return err_set(e, "separator= is empty: it ends each answer (generation stops at it) and separates the "
                          "exemplars; give one, such as \"\\n\"");
    // the scorer: the command's, else the task's (its header's, or its layout's default)
    const char *sc = s->scorer ? s->scorer : task_scorer(t);
    int kind = score_kind_parse(sc);
    if (kind < 0) return err_set(e, "scorer=%.40s: exact, contains, number, regex or choice expected", sc);
    p->kind = (ScoreKind)kind;
    const char *regex = s->regex ? s->regex : p->kind == SCORE_REGEX ? t->dflt.regex : NULL;
    if (p->kind == SCORE_CHOICE && !t->multiple_choice)
        return err_set(e, "scorer=choice: task '%s' has test items without choices", t->name);
    for (int i = 0; p->kind == SCORE_NUMBER && i < t->n_test; i++) { // no answer could ever match
        const char *tg = t->items[t->test[i]].target;
        double v;
        if (!tg || !score_last_number(tg, strlen(tg), &v))
            return err_set(e, "scorer=number: task '%s' test item %d (line %d): its target \"%.40s\" holds no number%s",
                           t->name, i, t->items[t->test[i]].line, tg ? tg : "", s->scorer ? "" : " (give another scorer=)");
    }
    bool any_cot = false;
    int max_samples = 1;
    for (int i = 0; i < s->n_cot; i++) any_cot |= s->cot[i];
    for (int i = 0; i < s->n_samples; i++) max_samples = s->samples[i] > max_samples ? s->samples[i] : max_samples;
    if (p->kind == SCORE_CHOICE && any_cot)
        return err_set(e, "cot=on: multiple choice is scored by the choices' log-likelihood, with nothing generated "
                          "(use scorer=exact to generate answers)");
    if (p->kind == SCORE_CHOICE && max_samples > 1)
        return err_set(e, "sc=%d: multiple choice by log-likelihood has nothing to sample", max_samples);
    if (max_samples > 1 && s->temperature <= 0)
        return err_set(e, "sc=%d: self-consistency votes over sampled answers: give temperature= above 0 (e.g. 0.7)",
                       max_samples);
    if (!p->style.answer_phrase || !*p->style.answer_phrase) // the prompt dropped it, the scorer looked for the default
        return err_set(e, "answer_phrase= is empty: a chain-of-thought exemplar states its answer after it, and the "
                          "answer is read after it; give one, such as \"The answer is\"");
    // a target (or, with cot=on, a rationale) holding the separator the answer is cut at: no
    // answer could be right, and as an exemplar it ends early (scored wrong every time, silently)
    for (int b = 0; p->kind != SCORE_CHOICE && b < s->n_cot; b++) {
        const char *sep = prompt_separator(p->style.separator, s->cot[b] != 0);
        for (int i = 0; i < t->n_items; i++) {
            const TaskItem *it = &t->items[i];
            const char *where = strstr(it->target, sep) ? "target"
                                : s->cot[b] && it->rationale && strstr(it->rationale, sep) ? "rationale" : NULL;
            if (where) {
                Buf q = {0};
                buf_put_quoted(&q, sep, strlen(sep));
                err_set(e, "task '%s' line %d: the %s holds the separator %s%s, where the answer is cut (and an "
                           "exemplar ends): give another separator=, or write the %s without it",
                        t->name, it->line, where, q.data, s->cot[b] ? " of cot=on" : "", where);
                buf_free(&q);
                return -1;
            }
        }
    }
    for (int cot = 0; cot < 2; cot++) {
        ScoreOpts so = {p->kind, p->style.separator, p->style.answer_phrase, regex, cot == 1};
        p->scorer[cot] = scorer_new(&so, e);
        if (!p->scorer[cot]) return -1;
    }
    for (int i = 0; i < s->n_chat; i++)
        if (s->chat[i] && !p->have_chat) {
            if (chat_template(app, &p->chat, e)) return -1;
            p->have_chat = true;
        }
    // the items: the test items in file order, the first `limit`
    p->n_items = s->limit > 0 && s->limit < t->n_test ? s->limit : t->n_test;
    p->items = xcalloc((size_t)p->n_items, sizeof *p->items);
    memcpy(p->items, t->test, sizeof *p->items * (size_t)p->n_items);
    // the conditions: shots x cot x sc x chat x seeds, the last varying fastest
    long n = (long)s->n_shots * s->n_cot * s->n_samples * s->n_chat * s->n_seeds;
    if (n < 1 || n > EXP_MAX_CONDITIONS)
        return err_set(e, "%ld conditions: 1 to %d expected (shots x cot x sc x chat x seeds)", n, EXP_MAX_CONDITIONS);
    p->conds = xcalloc((size_t)n, sizeof *p->conds);
    for (int a = 0; a < s->n_shots; a++)
        for (int b = 0; b < s->n_cot; b++)
            for (int c = 0; c < s->n_samples; c++)
                for (int d = 0; d < s->n_chat; d++)
                    for (int f = 0; f < s->n_seeds; f++) {
                        DbCondition *k = &p->conds[p->n_conds];
                        *k = (DbCondition){p->n_conds, s->shots[a], s->cot[b] != 0, s->samples[c], s->chat[d] != 0,
                                           s->seeds[f]};
                        p->n_conds++;
                    }
    // whether every item gets each condition's exemplars: exp_preflight, or exp_prompt for one item
    p->max_tokens[0] = s->max_tokens > 0 ? s->max_tokens : t->dflt.max_tokens > 0 ? t->dflt.max_tokens : 16;
    p->max_tokens[1] = s->max_tokens > 0 ? s->max_tokens : t->dflt.max_tokens_cot > 0 ? t->dflt.max_tokens_cot : 128;
    return 0;
}

void exp_prompt_free(ExpPrompt *p) {
    rendered_free(&p->r);
    iv_free(&p->ids);
    iv_free(&p->shared);
}

int exp_prompt(App *app, const ExpPlan *plan, const DbCondition *c, int item, ExpPrompt *p, Err *e) {
    memset(p, 0, sizeof *p);
    const Task *t = plan->task;
    if (c->shots > EXP_MAX_SHOTS) return err_set(e, "shots=%d: at most %d", c->shots, EXP_MAX_SHOTS);
    if (prompt_pick_exemplars(t, c->seed, c->shots, item, c->cot, p->ex, e)) return -1;
    p->n_ex = c->shots;
    if (prompt_render(t, &plan->style, c->chat ? &plan->chat : NULL, c->cot, p->ex, p->n_ex, item, &p->r, e)) return -1;
    // task text never turns into special tokens; a chat template's markers do, and it places BOS itself
    unsigned flags = p->r.special ? TOK_PARSE_SPECIAL : TOK_ADD_SPECIAL;
    const Tokenizer *tok = app->model->tok;
    if (tok_encode(tok, p->r.text.data, p->r.text.len, flags, &p->ids, e) < 0) return -1;
    if (p->r.shared && tok_encode(tok, p->r.text.data, p->r.shared, flags, &p->shared, e) < 0) return -1;
    return 0;
}

// The tokens a choice adds to the prompt: encode(prompt + sep + choice); the scored ones start
// where it stops agreeing with the prompt's tokens.
static int choice_ids(App *app, const ExpPrompt *p, const char *choice, IntVec *out, int *from, Err *e) {
    Buf full = {0};
    buf_put(&full, p->r.text.data, p->r.text.len);
    buf_puts(&full, p->r.choice_sep);
    buf_puts(&full, choice);
    unsigned flags = p->r.special ? TOK_PARSE_SPECIAL : TOK_ADD_SPECIAL;
    int rc = tok_encode(app->model->tok, full.data, full.len, flags, out, e) < 0 ? -1 : 0;
    buf_free(&full);
    if (rc) return -1;
    int k = 0;
    while (k < out->n && k < p->ids.n && out->v[k] == p->ids.v[k]) k++;
    if (k == out->n) return err_set(e, "the choice \"%.40s\" adds no token to the prompt", choice);
    *from = k > 0 ? k : 1;
    return 0;
}

int exp_preflight(App *app, const ExpPlan *plan, Err *e) {
    int n_ctx = app->model->cfg.n_ctx;
    for (int ci = 0; ci < plan->n_conds; ci++) {
        const DbCondition *c = &plan->conds[ci];
        char label[96];
        exp_condition_label(c, label, sizeof label);
        int max = plan->max_tokens[c->cot];
        for (int k = 0; k < plan->n_items; k++) {
            int item = plan->items[k];
            const TaskItem *it = &plan->task->items[item];
            ExpPrompt p;
            int rc = exp_prompt(app, plan, c, item, &p, e), n_prompt = p.ids.n, need = n_prompt + (max > 0 ? max - 1 : 0);
            if (plan->kind == SCORE_CHOICE) need = n_prompt; // the prompt and its longest choice
            for (int j = 0; !rc && plan->kind == SCORE_CHOICE && j < it->n_choices; j++) {
                IntVec ids = {0};
                int from;
                rc = choice_ids(app, &p, it->choices[j], &ids, &from, e);
                if (!rc && ids.n > need) need = ids.n;
                iv_free(&ids);
            }
            exp_prompt_free(&p);
            if (rc) return err_prefix(e, "%s, item %d (line %d)", label, k, it->line);
            if (need <= n_ctx) continue;
            if (plan->kind == SCORE_CHOICE) { // limit=N keeps the first N items: it leaves out those from k on
                char way[64] = "shorten it in the task file";
                if (k > 0) snprintf(way, sizeof way, "limit=%d to stop before it", k);
                return err_set(e, "%s, item %d (line %d): the prompt with its longest choice is %d tokens, more than the "
                                  "%d the context of %s holds: use fewer shots, or %s",
                               label, k, it->line, need, n_ctx, app->model->name, way);
            }
            return err_set(e, "%s, item %d (line %d): the prompt (%d tokens) and max=%d need %d positions, more than "
                              "the %d the context of %s holds: use fewer shots or a lower max",
                           label, k, it->line, n_prompt, max, need, n_ctx, app->model->name);
        }
    }
    return 0;
}

// ---- running -------------------------------------------------------------------------------

// The tokens the context holds (a prefix of what it evaluated), to keep what the next prompt
// shares with them.
typedef struct Cache {
    IntVec ids;
    bool reuse;
} Cache;

// How many leading tokens of ids[n] the cache may keep.
static int cache_keep(const Cache *c, const int *ids, int n) {
    if (!c->reuse) return 0;
    int k = 0;
    while (k < c->ids.n && k < n && c->ids.v[k] == ids[k]) k++;
    return k;
}

static void cache_set(Cache *c, const int *ids, int n) {
    c->ids.n = 0;
    for (int i = 0; i < n; i++) iv_push(&c->ids, ids[i]);
}

// Stopping a generation where its answer ends (the scorer's cut).
typedef struct StopAt {
    const Tokenizer *tok;
    const Scorer *scorer;
    IntVec ids;
    Buf text;
    bool hit;
    volatile sig_atomic_t *cancel;
} StopAt;

static bool stop_step(void *user, const GenStep *st) {
    StopAt *s = user;
    if (s->cancel && *s->cancel) return false;
    iv_push(&s->ids, st->id);
    buf_clear(&s->text);
    tok_decode(s->tok, s->ids.v, s->ids.n, &s->text);
    s->hit = score_cut(s->scorer, s->text.data ? s->text.data : "", s->text.len) < s->text.len;
    return !s->hit;
}

// One sample of a generation task.
typedef struct Sample {
    GenResult r;
    Buf text, answer;
    GenParams p;
    RunRecord rec;
    bool at_sep;
} Sample;

static void sample_free(Sample *s) {
    gen_result_free(&s->r);
    buf_free(&s->text), buf_free(&s->answer);
    runlog_record_done(&s->rec);
}

// The exemplars as a run records them: [{line, input, target}].
static void exemplars_json(const Task *t, const int *ex, int n, Buf *out) {
    JsonW w;
    jw_init(&w, out);
    jw_arr(&w);
    for (int i = 0; i < n; i++) {
        const TaskItem *it = &t->items[ex[i]];
        jw_obj(&w);
        jw_kint(&w, "line", it->line);
        jw_kstr(&w, "input", it->input);
        jw_kstr(&w, "target", it->target);
        jw_obj_end(&w);
    }
    jw_arr_end(&w);
}

static void stats_add(DbCondStats *s, bool correct, int correct_norm) {
    s->n++;
    s->correct += correct;
    if (correct_norm >= 0) s->n_norm++, s->correct_norm += correct_norm;
}

typedef struct Runner {
    App *app;
    Db *db;
    int64_t id;
    const ExpPlan *plan;
    Ctx *ctx;
    Cache cache;
    ExpOutcome *o;
    char template_name[48];
    DbCondStats *stats; // the counts per condition so far, for the progress's table
} Runner;

// Store an item with its samples' runs in one transaction. 0, or -1 with e.
static int store_item(Runner *x, const DbCondition *c, int k, const ExpPrompt *p, Sample *s, int n_s,
                      const char *answer, bool correct, int correct_norm, const char *detail, Err *e) {
    const ExpPlan *plan = x->plan;
    const TaskItem *it = &plan->task->items[plan->items[k]];
    char mode[48];
    prompt_mode_name(c->shots, c->cot, c->samples, mode, sizeof mode);
    Buf ex = {0};
    exemplars_json(plan->task, p->ex, p->n_ex, &ex);
    DbExpRun runs[EXP_MAX_SAMPLES];
    if (db_begin(x->db, e)) {
        buf_free(&ex);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n_s && !rc; i++) {
        Sample *sm = &s[i];
        RunOrigin o = {x->app->model, x->app->annotator, ctx_threads(x->ctx), ctx_kv(x->ctx), "experiment", 0};
        runlog_record(&sm->rec, &o, p->r.text.data, p->r.text.len, &sm->p, &sm->r, sm->text.data ? sm->text.data : "",
                      sm->text.len);
        sm->rec.run.template_name = x->template_name;
        sm->rec.run.mode = mode;
        sm->rec.run.exemplars = ex.data;
        if (sm->at_sep) sm->rec.run.stop_reason = "separator";
        if (plan->kind == SCORE_CHOICE) sm->rec.run.stop_reason = "choice";
        int64_t rid = runlog_insert(x->db, &sm->rec, x->app->model, e);
        if (rid <= 0) rc = -1;
        runs[i] = (DbExpRun){i, rid, sm->answer.data ? sm->answer.data : "", sm->r.n_reused};
    }
    DbExpItem item = {.condition = c->idx, .item = k, .input = it->input, .target = it->target, .answer = answer,
                      .correct = correct, .correct_norm = correct_norm, .detail = detail, .runs = runs, .n_runs = n_s};
    if (!rc && db_experiment_item_insert(x->db, x->id, &item, e) < 0) rc = -1;
    if (rc) db_rollback(x->db);
    else rc = db_commit(x->db, e);
    if (!rc) stats_add(&x->stats[c->idx], correct, correct_norm);
    buf_free(&ex);
    return rc;
}

// A generation task's item: samples, answers, vote, store. 1 when Ctrl-C stopped it.
static int run_gen_item(Runner *x, const DbCondition *c, int k, const ExpPrompt *p, Err *e) {
    const ExpPlan *plan = x->plan;
    App *app = x->app;
    const TaskItem *it = &plan->task->items[plan->items[k]];
    int n_s = c->samples;
    Sample *s = xcalloc((size_t)n_s, sizeof *s);
    const Scorer *scorer = plan->scorer[c->cot];
    int rc = 0;
    for (int i = 0; i < n_s && !rc; i++) {
        Sample *sm = &s[i];
        sm->p = (GenParams){{(float)plan->spec.temperature, plan->spec.top_k, (float)plan->spec.top_p,
                             exp_sample_seed(c->seed, k, i)},
                            plan->max_tokens[c->cot], plan->spec.alts, plan->spec.stop_at_eos, false};
        StopAt stop = {app->model->tok, scorer, {0}, {0}, false, app->cancel};
        int keep = cache_keep(&x->cache, p->ids.v, p->ids.n);
        if (!x->cache.reuse) ctx_reset(x->ctx);
        rc = generate_keep(x->ctx, app->model->tok, p->ids.v, p->ids.n, keep, &sm->p, stop_step, &stop, app->cancel,
                           NULL, &sm->r, e);
        iv_free(&stop.ids), buf_free(&stop.text);
        cache_set(&x->cache, p->ids.v, rc ? 0 : p->ids.n);
        if (rc) break;
        if (sm->r.stop == STOP_CANCELLED && !stop.hit) rc = 1; // Ctrl-C
        sm->at_sep = stop.hit;
        x->o->tokens_reused += sm->r.n_reused;
        x->o->tokens_evaluated += p->ids.n - sm->r.n_reused;
        gen_text(app->model->tok, &sm->r, &sm->text);
        // the answer ends where the text does: stop=false generates past the end-of-text or
        // end-of-turn token ("positive<|im_end|>" was scored wrong), and no answer holds one
        GenResult cut = sm->r;
        for (int j = 0; j < cut.ids.n; j++)
            if (tok_ends_text(app->model->tok, cut.ids.v[j]) || tok_is_special(app->model->tok, cut.ids.v[j])) {
                cut.ids.n = j;
                break;
            }
        Buf said = {0};
        if (cut.ids.n < sm->r.ids.n) gen_text(app->model->tok, &cut, &said);
        const Buf *from = cut.ids.n < sm->r.ids.n ? &said : &sm->text;
        score_extract(scorer, from->data ? from->data : "", from->len, &sm->answer);
        buf_free(&said);
        if (!sm->answer.data) buf_puts(&sm->answer, "");
    }
    if (!rc) {
        const char **answers = xcalloc((size_t)n_s, sizeof *answers);
        for (int i = 0; i < n_s; i++) answers[i] = s[i].answer.data;
        int votes = 0, best = n_s > 1 ? score_vote(scorer, answers, n_s, &votes) : 0;
        const char *answer = answers[best];
        bool correct = score_match(scorer, answer, it->target);
        Buf detail = {0};
        if (n_s > 1) {
            JsonW w;
            jw_init(&w, &detail);
            jw_obj(&w);
            jw_kint(&w, "votes", votes);
            jw_key(&w, "answers");
            jw_arr(&w);
            for (int i = 0; i < n_s; i++) jw_str(&w, answers[i]);
            jw_arr_end(&w);
            jw_obj_end(&w);
        }
        rc = store_item(x, c, k, p, s, n_s, answer, correct, -1, detail.data, e);
        buf_free(&detail);
        free(answers);
    }
    for (int i = 0; i < n_s; i++) sample_free(&s[i]);
    free(s);
    return rc;
}

// A multiple-choice item: each choice's log-likelihood after the prompt, the best by sum and by
// length-normalised sum; one run records the prompt and the chosen choice's tokens.
static int run_choice_item(Runner *x, const DbCondition *c, int k, const ExpPrompt *p, Err *e) {
    const ExpPlan *plan = x->plan;
    App *app = x->app;
    const TaskItem *it = &plan->task->items[plan->items[k]];
    int n = it->n_choices;
    double *ll = xcalloc((size_t)n, sizeof *ll);
    int *chars = xcalloc((size_t)n, sizeof *chars), *ntok = xcalloc((size_t)n, sizeof *ntok);
    IntVec *cids = xcalloc((size_t)n, sizeof *cids);
    int *from = xcalloc((size_t)n, sizeof *from), *reused = xcalloc((size_t)n, sizeof *reused);
    float **lps = xcalloc((size_t)n, sizeof *lps);
    int rc = 0;
    double t0 = clock_now();
    for (int j = 0; j < n && !rc; j++) {
        if (app->cancel && *app->cancel) {
            rc = 1;
            break;
        }
        rc = choice_ids(app, p, it->choices[j], &cids[j], &from[j], e);
        if (rc) break;
        int m = cids[j].n - from[j];
        lps[j] = xcalloc((size_t)m, sizeof **lps);
        int keep = cache_keep(&x->cache, cids[j].v, cids[j].n);
        if (!x->cache.reuse) ctx_reset(x->ctx);
        rc = eval_continuation(x->ctx, cids[j].v, cids[j].n, from[j], keep, lps[j], e);
        cache_set(&x->cache, cids[j].v, rc ? 0 : cids[j].n - 1);
        if (rc) break;
        reused[j] = keep < from[j] - 1 ? keep : from[j] - 1; // of the prompt's tokens
        x->o->tokens_reused += reused[j];
        x->o->tokens_evaluated += cids[j].n - 1 - reused[j];
        for (int i = 0; i < m; i++) ll[j] += lps[j][i];
        ntok[j] = m;
        const char *ch = it->choices[j];
        size_t len = strlen(ch);
        for (size_t b = 0; b < len;) {
            uint32_t cp;
            b += (size_t)utf8_decode(ch + b, len - b, &cp);
            chars[j]++;
        }
    }
    if (!rc) {
        int best = score_choice_best(ll, chars, n, false), best_norm = score_choice_best(ll, chars, n, true);
        Buf detail = {0};
        JsonW w;
        jw_init(&w, &detail);
        jw_obj(&w);
        jw_kint(&w, "pick", best);
        jw_kint(&w, "pick_norm", best_norm);
        jw_kint(&w, "answer", it->answer);
        jw_key(&w, "choices");
        jw_arr(&w);
        for (int j = 0; j < n; j++) {
            jw_obj(&w);
            jw_kstr(&w, "text", it->choices[j]);
            jw_knum(&w, "logprob", ll[j]);
            jw_kint(&w, "tokens", ntok[j]);
            jw_kint(&w, "chars", chars[j]);
            jw_knum(&w, "logprob_norm", ll[j] / (chars[j] > 0 ? chars[j] : 1));
            jw_obj_end(&w);
        }
        jw_arr_end(&w);
        jw_obj_end(&w);
        // the run: the prompt, and the chosen choice's tokens with their log-probabilities
        Sample s = {0};
        s.p = (GenParams){{0, 0, 1, c->seed}, ntok[best], 0, false, false};
        for (int i = 0; i < from[best]; i++) iv_push(&s.r.prompt, cids[best].v[i]);
        s.r.steps = xcalloc((size_t)ntok[best] + 1, sizeof *s.r.steps);
        for (int i = 0; i < ntok[best]; i++) {
            iv_push(&s.r.ids, cids[best].v[from[best] + i]);
            s.r.steps[i] = (GenStep){.index = i, .id = cids[best].v[from[best] + i], .logprob = lps[best][i]};
        }
        s.r.prefill_s = clock_now() - t0;
        s.r.n_reused = reused[best]; // (it was 0: the run said none of its prompt came from the cache)
        tok_decode(app->model->tok, s.r.ids.v, s.r.ids.n, &s.text);
        buf_puts(&s.answer, it->choices[best]);
        rc = store_item(x, c, k, p, &s, 1, it->choices[best], best == it->answer, best_norm == it->answer, detail.data, e);
        sample_free(&s);
        buf_free(&detail);
    }
    for (int j = 0; j < n; j++) iv_free(&cids[j]), free(lps[j]);
    free(ll), free(chars), free(ntok), free(cids), free(from), free(reused), free(lps);
    return rc;
}

// The (condition, item) pairs already stored: done[c * n_items + k], and their counts.
typedef struct Done {
    bool *done;
    int n_items, n_conds;
    long count;
    DbCondStats *stats;
} Done;

static int mark_done(void *user, const DbExpItem *it) {
    Done *d = user;
    if (it->condition >= 0 && it->condition < d->n_conds && it->item >= 0 && it->item < d->n_items &&
        !d->done[(size_t)it->condition * d->n_items + it->item]) {
        d->done[(size_t)it->condition * d->n_items + it->item] = true;
        d->count++;
        stats_add(&d->stats[it->condition], it->correct, it->correct_norm);
    }
    return 0;
}

// The table so far as the progress hands it on (see Progress.table), into out (cleared).
static void progress_table(const char *model_path, int64_t id, const ExpPlan *plan, const DbCondStats *s, long done,
                           Buf *out) {
    buf_clear(out);
    JsonW w;
    jw_init(&w, out);
    jw_obj(&w);
    jw_kint(&w, "experiment_id", id);
    jw_kstr(&w, "task", plan->task->name);
    jw_kstr(&w, "model_path", model_path);
    jw_kstr(&w, "status", "running");
    jw_kint(&w, "n_items", plan->n_items);
    jw_kint(&w, "n_conditions", plan->n_conds);
    jw_kint(&w, "n_done", done);
    jw_key(&w, "conditions");
    jw_arr(&w);
    for (int i = 0; i < plan->n_conds; i++) db_cond_stats_json(&s[i], &w);
    jw_arr_end(&w);
    jw_obj_end(&w);
}

static int execute_on(App *app, Db *db, int64_t id, const ExpPlan *plan, ExpOutcome *o, Err *e) {
    memset(o, 0, sizeof *o);
    Ctx *ctx = app_ctx(app, e);
    if (!ctx) return -1;
    o->total = (long)plan->n_conds * plan->n_items;
    Done d = {xcalloc((size_t)o->total, sizeof *d.done), plan->n_items, plan->n_conds, 0,
              xcalloc((size_t)plan->n_conds, sizeof *d.stats)};
    for (int i = 0; i < plan->n_conds; i++) d.stats[i].c = plan->conds[i];
    if (db_experiment_items_each(db, id, -1, -1, mark_done, &d, e) ||
        (d.count < o->total && db_experiment_claim(db, id, e))) { // (a finished one is left as it is)
        free(d.done), free(d.stats);
        return -1;
    }
    o->done_before = d.count;
    Runner x = {app, db, id, plan, ctx, {{0}, plan->spec.reuse}, o, "", d.stats};
    Buf table = {0};
    char abs[PATH_MAX]; // the model as its runs record it
    const char *model_path = app->model->builtin ? "builtin" : realpath(app->model->path, abs) ? abs : app->model->path;
    ctx_reset(ctx);
    char what[48], label[160];
    snprintf(what, sizeof what, "experiment %lld", (long long)id);
    double t0 = clock_now();
    int rc = 0;
    long done = d.count;
    // the first progress names the first item still to run (the label was read unset: "now: 3")
    label[0] = 0;
    for (int ci = 0; ci < plan->n_conds && !label[0]; ci++)
        for (int k = 0; k < plan->n_items; k++)
            if (!d.done[(size_t)ci * plan->n_items + k]) {
                item_label(&plan->conds[ci], k, label, sizeof label);
                break;
            }
    progress_table(model_path, id, plan, d.stats, done, &table);
    Progress pr = {what, label, id, done, o->total, 0, NAN, false, table.data};
    app_progress(app, &pr);
    for (int ci = 0; ci < plan->n_conds && !rc; ci++) {
        const DbCondition *c = &plan->conds[ci];
        snprintf(x.template_name, sizeof x.template_name, "%s%s", c->chat ? "chat:" : "gpt3",
                 c->chat ? (plan->chat.name ? plan->chat.name : "model") : "");
        for (int k = 0; k < plan->n_items && !rc; k++) {
            if (d.done[(size_t)ci * plan->n_items + k]) continue;
            if (app->cancel && *app->cancel) {
                rc = 1;
                break;
            }
            item_label(c, k, label, sizeof label);
            ExpPrompt p;
            rc = exp_prompt(app, plan, c, plan->items[k], &p, e);
            if (!rc) rc = plan->kind == SCORE_CHOICE ? run_choice_item(&x, c, k, &p, e) : run_gen_item(&x, c, k, &p, e);
            exp_prompt_free(&p);
            if (rc < 0) err_prefix(e, "experiment %lld, %s", (long long)id, label);
            if (rc) break;
            done++;
            o->done_now++;
            double el = clock_now() - t0;
            pr.done = done, pr.elapsed_s = el;
            pr.left_s = el / (double)o->done_now * (double)(o->total - done);
            progress_table(model_path, id, plan, d.stats, done, &table);
            pr.table = table.data;
            app_progress(app, &pr);
        }
    }
    o->seconds = clock_now() - t0;
    o->stopped = rc == 1;
    iv_free(&x.cache.ids);
    free(d.done);
    progress_table(model_path, id, plan, d.stats, done, &table);
    pr.table = table.data;
    pr.elapsed_s = o->seconds, pr.left_s = 0, pr.finished = true;
    app_progress(app, &pr);
    buf_free(&table);
    free(d.stats);
    if (rc < 0) {
        Err ignored = {{0}};
        db_experiment_set_status(db, id, "stopped", &ignored);
        return -1;
    }
    return db_experiment_set_status(db, id, o->stopped ? "stopped" : "done", e);
}

// On a context of the experiment's own cache type (its spec's kv), whatever the session's: a
// resumed experiment's runs are made as its first ones were.
int exp_execute(App *app, Db *db, int64_t id, const ExpPlan *plan, const char *command, ExpOutcome *o, Err *e) {
    (void)command;
    CtxSwitch sw = {0};
    DType kv;
    if (plan->spec.kv[0] && !app_kv_parse(plan->spec.kv, &kv)) app_ctx_switch(app, 0, kv, &sw);
    int rc = execute_on(app, db, id, plan, o, e);
    app_ctx_restore(app, &sw);
    return rc;
}
