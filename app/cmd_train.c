// cmd_train.c - the training commands: train a decoder on a text file into a checkpoint
// directory (core/train/trainer.h), log its loss curve in the database, report progress on
// stderr when headless (to the Training view in the TUI); curve shows a stored curve.
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fs.h"
#include "base/mem.h"
#include "cmdutil.h"
#include "commands.h"
#include "experiment.h"
#include "models.h"
#include "prompt/template.h"
#include "tok/bpe_train.h"
#include "train/teach.h"
#include "train/tmodel.h"
#include "train/trainer.h"

typedef struct {
    App *app;
    Db *db;
    int64_t run_id;
    const TrainOpts *o;
    Buf options; // the command's options as JSON
    Err log_err; // the first logging failure (training goes on)
    TrainPoint last;
    TrainInfo info;
    double last_val;
    int last_val_step; // the step last_val was measured at
    double elapsed0;   // a resumed run: the logged seconds at its checkpoint (the curve's clock runs on)
} TrainLog;

static int find_elapsed(void *user, const DbTrainPoint *p) {
    TrainLog *L = user;
    if (p->step == L->info.start_step) L->elapsed0 = p->elapsed_s;
    return p->step >= L->info.start_step;
}

static int on_begin(void *user, const TrainInfo *info) {
    TrainLog *L = user;
    L->info = *info;
    char out_abs[PATH_MAX], data_abs[PATH_MAX];
    DbTrainRun r = {realpath(L->o->out, out_abs) ? out_abs : L->o->out,
                    realpath(L->o->data, data_abs) ? data_abs : L->o->data, info->cfg.a.name, info->n_params,
                    L->o->threads, L->options.data};
    if (L->db) L->run_id = db_train_begin(L->db, &r, info->start_step, &L->log_err);
    if (L->run_id > 0 && info->start_step > 0 && !L->log_err.msg[0])
        db_train_points(L->db, L->run_id, find_elapsed, L, &L->log_err);
    if (L->app->headless)
        fprintf(stderr, "train: %s, %lld parameters, %lld training and %lld held-out tokens%s\n", info->cfg.a.name,
                (long long)info->n_params, (long long)info->train_tokens, (long long)info->val_tokens,
                info->start_step ? " (resumed)" : "");
    if (info->start_step && L->app->headless) fprintf(stderr, "train: resuming after step %d\n", info->start_step);
    return 0;
}

static int on_step(void *user, const TrainPoint *p) {
    TrainLog *L = user;
    L->last = *p;
    if (p->val_loss >= 0) L->last_val = p->val_loss, L->last_val_step = p->step;
    if (L->db && L->run_id > 0 && !L->log_err.msg[0]) {
        DbTrainPoint dp = {p->step, p->loss, p->val_loss, p->lr, p->grad_norm, p->tokens, L->elapsed0 + p->elapsed_s};
        db_train_point(L->db, L->run_id, &dp, &L->log_err);
    }
    if (L->app->headless) {
        fprintf(stderr, "step %d/%d  loss %.4f", p->step, p->steps, p->loss);
        if (p->val_loss >= 0) fprintf(stderr, "  held-out %.4f", p->val_loss);
        fprintf(stderr, "  lr %.3g  norm %.3f  %.0f tok/s  %.0fs left%s\n", p->lr, p->grad_norm, p->tok_s, p->eta_s,
                p->saved ? "  (saved)" : "");
    }
    if (L->app->on_progress) { // the Training view draws the curve as it grows
        char what[48], detail[96];
        snprintf(what, sizeof what, "train %lld", (long long)L->run_id);
        snprintf(detail, sizeof detail, "step %d of %d, loss %.4f, %.0f tok/s", p->step, p->steps, p->loss, p->tok_s);
        Progress pr = {.what = what, .detail = detail, .id = L->run_id, .done = p->step, .total = p->steps,
                       .elapsed_s = p->elapsed_s, .left_s = p->eta_s, .finished = p->step >= p->steps, .point = true,
                       .step = p->step, .loss = p->loss, .held_loss = p->val_loss >= 0 ? p->val_loss : NAN,
                       .held_acc = NAN};
        app_progress(L->app, &pr);
    }
    return L->app->cancel && *L->app->cancel;
}

// The teaching recipe: the model and run of the built-in teaching model (README, Training).
// Options given on the command line win over these.
// A Llama (rotary positions: a head that looks one token back is the same at every position,
// what the induction heads are built from) with GPT-2's byte-level vocabulary of 257 tokens
// (tok= the recipe's own copy of it: the tasks are about letters and digits).
static const char *const RECIPE_TEACH[][2] = {
    {"family", "llama"}, {"layers", "4"},   {"heads", "4"},       {"d", "128"},         {"ctx", "256"},
    {"seed", "1"},      {"steps", "12000"}, {"batch", "8"},       {"seq", "256"},       {"lr", "2e-3"},
    {"min_lr", "1e-4"}, {"warmup", "100"}, {"wd", "0.1"},        {"eval_every", "250"}, {"save_every", "250"},
    {"data_seed", "1"}, {"val", "0.05"},   {"eval_batches", "8"}, {NULL, NULL}};
enum { TEACH_SEED = 1, TEACH_BYTES = 12 << 20 };

// Write the teaching corpus of seed (bytes of training text at least: whole documents) and its
// task files into dir; *wrote (may be NULL): the training text's bytes. A file already there
// is left as it is when it holds what would be written (a recipe run resumed) and refused,
// before anything is written, when it holds anything else (a person's train.txt was replaced).
static int teach_write(const char *dir, uint64_t seed, size_t bytes, size_t *wrote, Err *e) {
    enum { N = 1 + TEACH_N_TASKS };
    Buf b[N] = {{0}};
    char *path[N];
    bool same[N] = {false};
    teach_corpus(seed, bytes, &b[0]);
    if (wrote) *wrote = b[0].len;
    path[0] = fs_join(dir, "train.txt");
    for (int t = 0; t < TEACH_N_TASKS; t++) {
        teach_task_file((TeachTask)t, seed, 40, 100, &b[1 + t]);
        char name[64];
        snprintf(name, sizeof name, "%s.jsonl", teach_task_name((TeachTask)t));
        path[1 + t] = fs_join(dir, name);
    }
    int rc = 0;
    for (int i = 0; i < N && !rc; i++) {
        if (!fs_present(path[i])) continue;
        Buf old = {.fallible = true};
        same[i] = fs_is_file(path[i]) && !fs_read_file(path[i], b[i].len + 1, &old, e) && old.len == b[i].len &&
                  !memcmp(old.data, b[i].data, b[i].len);
        buf_free(&old);
        if (!same[i])
            rc = err_set(e, "'%s' is there and is not the teaching corpus's (seed %llu, bytes=%zu): the corpus "
                            "does not write over it; choose another out= (or move the file)",
                         path[i], (unsigned long long)seed, bytes);
    }
    if (!rc) rc = fs_mkdir_p(dir, 0755, e);
    for (int i = 0; i < N && !rc; i++)
        if (!same[i]) rc = fs_write_atomic(path[i], b[i].data, b[i].len, e);
    for (int i = 0; i < N; i++) buf_free(&b[i]), free(path[i]);
    return rc;
}

// a with the recipe's options added where a does not give them (the added Arg structs are
// the caller's to free; their strings are the recipe's).
static Args recipe_args(const Args *a, const char *const (*recipe)[2]) {
    int n = 0;
    while (recipe[n][0]) n++;
    Args r = *a;
    r.a = xmalloc(sizeof(Arg) * (size_t)(a->n + n));
    memcpy(r.a, a->a, sizeof(Arg) * (size_t)a->n);
    for (int i = 0; i < n; i++)
        if (!args_opt(a, recipe[i][0]))
            r.a[r.n++] = (Arg){(char *)recipe[i][0], (char *)recipe[i][1], strlen(recipe[i][1]), false};
    return r;
}

static int train_with(App *app, const Args *a, bool out_held, Out *out);
static int train_run_opts(App *app, const Args *a, TrainOpts *op, Out *out);


static int cmd_train(App *app, const Args *a, Out *out) {
    const char *recipe = args_opt(a, "recipe");
    if (!recipe) {
        if (!args_pos(a, 0)) return out_error(out, "train: FILE or recipe=teach expected");
        return train_with(app, a, false, out);
    }
    if (strcmp(recipe, "teach")) return out_error(out, "train: recipe=%.20s: the recipes are: teach", recipe);
    if (args_pos(a, 0)) return out_error(out, "train: recipe=teach makes its own corpus: no FILE");
    const char *dir = args_opt(a, "out");
    if (!dir || !*dir) return out_error(out, "train: out=DIR is required");
    Err e = {0};
    // fewer steps than the recipe's warmup, which the person did not give: said as the recipe's
    // (the trainer's "warmup must be below steps" named an option nobody had typed)
    long long steps = 0, warmup = 0;
    for (int i = 0; RECIPE_TEACH[i][0]; i++)
        if (!strcmp(RECIPE_TEACH[i][0], "warmup")) warmup = atoll(RECIPE_TEACH[i][1]);
    if (!args_opt(a, "warmup") && args_int(a, "steps", 1, 10000000, &steps, &e) == 1 && steps <= warmup)
        return out_error(out, "train: recipe=teach warms up for %lld steps (its warmup=%lld), more than steps=%lld: "
                              "give warmup= below steps too (warmup=0: none)", warmup, warmup, steps);
    const bool made = !fs_is_dir(dir); // created here: removed when the run fails before its first checkpoint
    // held from before the corpus is written: a second recipe=teach into it is refused first
    int lock = fs_mkdir_p(dir, 0755, &e) ? -1 : fs_lock_dir(dir, "training into it", &e);
    if (lock < 0) return out_error(out, "train: %s", e.msg); // made or not, the folder is the other's now
    char *corpus = fs_join(dir, "corpus");
    int rc = teach_write(corpus, TEACH_SEED, TEACH_BYTES, NULL, &e);
    char *data = fs_join(corpus, "train.txt"), *tok = fs_join(corpus, "tokenizer");
    free(corpus);
    const Family *bytes = family_find("gpt2");
    if (!rc && !args_opt(a, "tok")) rc = fs_mkdir_p(tok, 0755, &e) || bytes->write_tokenizer(tok, &e) ? -1 : 0;
    if (rc) {
        free(data), free(tok);
        if (made) fs_remove_tree(dir);
        close(lock);
        return out_error(out, "train: %s", e.msg);
    }
    Args r = recipe_args(a, RECIPE_TEACH);
    Arg *all = xmalloc(sizeof(Arg) * (size_t)(r.n + 2));
    all[0] = (Arg){NULL, data, strlen(data), false};
    memcpy(all + 1, r.a, sizeof(Arg) * (size_t)r.n);
    free(r.a);
    r.a = all, r.n++;
    if (!args_opt(a, "tok") && !args_opt(a, "from")) r.a[r.n++] = (Arg){(char *)"tok", tok, strlen(tok), false};
    rc = train_with(app, &r, true, out);
    free(r.a);
    free(data), free(tok);
    char *ckpt = fs_join(dir, "model.safetensors");
    if (rc && made && !fs_present(ckpt)) fs_remove_tree(dir);
    free(ckpt);
    close(lock);
    return rc;
}

static int cmd_teach_corpus(App *app, const Args *a, Out *out) {
    (void)app;
    const char *dir = args_opt(a, "out");
    if (!dir || !*dir) return out_error(out, "teach-corpus: out=DIR is required");
    Err e = {0};
    long long seed = TEACH_SEED, bytes = TEACH_BYTES;
    if (args_int(a, "seed", 0, (1ll << 53), &seed, &e) < 0 || args_int(a, "bytes", 1, 1ll << 32, &bytes, &e) < 0)
        return out_error(out, "%s", e.msg);
    size_t wrote;
    if (teach_write(dir, (uint64_t)seed, (size_t)bytes, &wrote, &e)) return out_error(out, "%s", e.msg);
    JsonW *w = &out->w;
    jw_kstr(w, "out", dir);
    jw_kint(w, "seed", seed);
    jw_kint(w, "bytes", (long long)wrote); // whole documents: a little over the bytes= asked for
    jw_key(w, "tasks");
    jw_arr(w);
    for (int t = 0; t < TEACH_N_TASKS; t++) jw_str(w, teach_task_name((TeachTask)t));
    jw_arr_end(w);
    buf_printf(&out->text, "wrote the teaching corpus (seed %lld, %zu bytes) and its task files to %s\n", seed, wrote,
               dir);
    return 0;
}

static int cmd_train_tokenizer(App *app, const Args *a, Out *out) {
    const char *dir = args_opt(a, "out");
    if (!dir || !*dir) return out_error(out, "train-tokenizer: out=DIR is required");
    Err e = {0};
    if (tmodel_out_free(dir, "train-tokenizer", &e)) return out_error(out, "%s", e.msg); // a model's tokenizer replaced broke it
    long long vocab = 0, min_freq = 0;
    if (args_int(a, "vocab", 257, 1 << 22, &vocab, &e) < 0 || args_int(a, "min_freq", 0, 1ll << 53, &min_freq, &e) < 0)
        return out_error(out, "%s", e.msg);
    if (!vocab) return out_error(out, "train-tokenizer: vocab=N is required");
    BpeTrainer *t = bpe_trainer_new();
    bpe_trainer_set_cancel(t, app->cancel); // Ctrl-C: nothing written
    int rc = 0;
    for (int i = 0; !rc && args_pos(a, i); i++) {
        const char *path = args_pos(a, i)->val;
        Buf text = {.fallible = true};
        if (fs_read_file(path, (size_t)1 << 32, &text, &e) || bpe_trainer_feed(t, text.data, text.len, &e)) {
            char msg[sizeof e.msg];
            snprintf(msg, sizeof msg, "%s", e.msg);
            // a file's fault names the file; Ctrl-C while reading one is no fault of it
            if (!strstr(msg, path) && !(app->cancel && *app->cancel))
                snprintf(e.msg, sizeof e.msg, "'%.200s': %.300s", path, msg);
            rc = -1;
        }
        buf_free(&text);
    }
    static const char *const specials[] = {"<|endoftext|>"};
    Buf vj = {0}, mt = {0};
    BpeTrainResult res = {0};
    if (!rc) rc = bpe_trainer_train(t, (int)vocab, min_freq, specials, 1, &vj, &mt, &res, &e);
    bpe_trainer_free(t);
    char *vp = fs_join(dir, "vocab.json"), *mp = fs_join(dir, "merges.txt");
    if (!rc) rc = fs_mkdir_p(dir, 0755, &e) || fs_write_atomic(vp, vj.data, vj.len, &e) ||
                          fs_write_atomic(mp, mt.data, mt.len, &e)
                      ? -1
                      : 0;
    free(vp), free(mp), buf_free(&vj), buf_free(&mt);
    if (rc) return out_error(out, "train-tokenizer: %s", e.msg);
    JsonW *w = &out->w;
    jw_kstr(w, "out", dir);
    jw_kint(w, "vocab", res.vocab);
    jw_kint(w, "merges", res.merges);
    jw_kint(w, "words", res.words);
    jw_kint(w, "last_freq", res.last_freq);
    buf_printf(&out->text, "trained a byte-level BPE of %d tokens (%d merges, the last seen %lld times) on %lld distinct words: %s\n",
               res.vocab, res.merges, (long long)res.last_freq, (long long)res.words, dir);
    return 0;
}

// The examples of a task file (experiment's format) to fine-tune on: each exemplar (split
// "pool"; the test items stay for experiment) as its zero-shot prompt and its answer, as
// `experiment TASK shots=0` asks and scores it (with cot, the rationale before the answer and
// the trigger after the query). The strings live in *texts (one per example: the prompt, then
// the answer).
static int task_examples(const char *path, bool cot, TrainExample **ex, int *n, Buf **texts, Err *e) {
    char *file = exp_task_find(path, e);
    Task *t = file ? task_load(file, e) : NULL;
    free(file);
    if (!t) return -1;
    int rc = 0;
    if (!t->n_pool) rc = err_set(e, "train: the task '%s' has no exemplars (\"split\": \"pool\") to train on", t->name);
    PromptStyle st;
    prompt_style_default(&st, t);
    *ex = rc ? NULL : xcalloc((size_t)t->n_pool, sizeof **ex);
    *texts = rc ? NULL : xcalloc((size_t)t->n_pool, sizeof **texts);
    *n = 0;
    for (int i = 0; !rc && i < t->n_pool; i++) {
        const TaskItem *it = &t->items[t->pool[i]];
        if (cot && !it->rationale) {
            rc = err_set(e, "train: cot=on: exemplar at line %d of '%s' has no rationale", it->line, t->path);
            break;
        }
        Rendered r;
        if (prompt_render(t, &st, NULL, cot, NULL, 0, t->pool[i], &r, e)) {
            rc = -1;
            break;
        }
        Buf *b = &(*texts)[i];
        buf_put(b, r.text.data, r.text.len);
        size_t plen = b->len;
        if (!plen || b->data[plen - 1] != '\n') buf_putc(b, ' '); // as prompt_render puts an answer after its head
        prompt_answer_text(&st, it, cot, b);
        buf_puts(b, st.separator); // an answer ends as in the prompts: where the next block would start
        (*ex)[i] = (TrainExample){b->data, b->data + plen, plen, b->len - plen, r.special};
        rendered_free(&r);
        (*n)++;
    }
    task_free(t);
    return rc;
}

static int train_with(App *app, const Args *a, bool out_held, Out *out) {
    TrainOpts o = train_defaults();
    o.out_held = out_held;
    o.data = args_pos(a, 0)->val;
    o.out = args_opt(a, "out");
    o.from = args_opt(a, "from");
    o.tok_dir = args_opt(a, "tok");
    if (!o.out || !*o.out) return out_error(out, "train: out=DIR is required");
    const char *fam = args_opt(a, "family");
    if (o.from && fam) return out_error(out, "train: from= and family= exclude each other");
    // from= a model's shape and weights are its own: the options of a new model do not apply
    static const char *const shape_keys[] = {"layers", "heads", "kv_heads", "d", "ff", "ctx", "vocab", "tied", "theta",
                                             "seed", "std", "tok", NULL};
    for (int i = 0; o.from && shape_keys[i]; i++)
        if (args_opt(a, shape_keys[i]))
            return out_error(out, "train: %s= describes a new model; from=%.100s has its own", shape_keys[i], o.from);
    // no model named (from=, family=, a new model's options) and out= holds an untrained model (new-model's)
    // or a run to resume: that model is the one trained, as from=out (a new model of the default shape
    // replaced the untrained one, and a resume of that run was refused as having "another layers")
    bool named_model = o.from || fam;
    for (int i = 0; !named_model && shape_keys[i]; i++) named_model = args_opt(a, shape_keys[i]) != NULL;
    char *state = named_model ? NULL : fs_join(o.out, "train_state.bin");
    if (state && tmodel_file_in(o.out) && (tmodel_untrained_in(o.out) || fs_present(state))) o.from = o.out;
    free(state);
    if (o.from && !strcmp(o.from, "builtin"))
        return out_error(out, "train: from=builtin: the built-in model is not a file to start from (new-model "
                              "writes one, or train from scratch with family=)");
    char *named = o.from ? models_find(o.from) : NULL; // an installed model's name (teach, smollm2)
    if (named) o.from = named;
    int rc = train_run_opts(app, a, &o, out);
    free(named);
    return rc;
}

static int train_run_opts(App *app, const Args *a, TrainOpts *op, Out *out) {
    TrainOpts o = *op;
    Err e = {0};
    const char *fam = args_opt(a, "family");
    const Family *f = family_find(fam ? fam : "gpt2");
    if (!f || !f->write_config) return out_error(out, "train: unknown family '%.20s'", fam);
    if (newmodel_args(a, f, &o.newp, out)) return -1;
    long long v;
    double x;
    int r;
#define INT_OPT(k, lo, hi, field)                                                         \
    if ((r = args_int(a, k, lo, hi, &v, &e)) < 0) return out_error(out, "%s", e.msg); \
    if (r) field = (int)v;
#define NUM_OPT(k, lo, hi, field)                                                           \
    if ((r = args_float(a, k, lo, hi, &x, &e)) < 0) return out_error(out, "%s", e.msg); \
    if (r) field = (float)x;
    INT_OPT("steps", 1, 10000000, o.opt.steps)
    INT_OPT("batch", 1, 4096, o.batch)
    INT_OPT("seq", 2, 65536, o.seq)
    INT_OPT("accum", 1, 4096, o.accum)
    INT_OPT("warmup", 0, 10000000, o.opt.warmup)
    INT_OPT("eval_every", 0, 10000000, o.eval_every)
    INT_OPT("eval_batches", 1, 10000, o.eval_batches)
    INT_OPT("save_every", 0, 10000000, o.save_every)
    INT_OPT("threads", 0, APP_MAX_THREADS, o.threads)
    NUM_OPT("lr", 1e-9, 10, o.opt.lr)
    NUM_OPT("wd", 0, 10, o.opt.weight_decay)
    NUM_OPT("clip", 0, 1e6, o.opt.clip)
    NUM_OPT("beta1", 0, 0.999999, o.opt.beta1)
    NUM_OPT("beta2", 0, 0.999999, o.opt.beta2)
    NUM_OPT("eps", 1e-12, 1e6, o.opt.eps) // as reward train and dpo train take it
#undef INT_OPT
#undef NUM_OPT
    o.opt.min_lr = o.opt.lr / 10;
    if ((r = args_float(a, "min_lr", 0, 10, &x, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) o.opt.min_lr = (float)x;
    if (o.opt.min_lr > o.opt.lr) // (the schedule rose from lr to it)
        return out_error(out, "train: min_lr=%g is above lr=%g: the learning rate decays from lr to min_lr",
                         (double)o.opt.min_lr, (double)o.opt.lr);
    if ((r = args_float(a, "val", 0, 0.9, &x, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) o.val_frac = x;
    if ((r = args_int(a, "data_seed", 0, (1ll << 53), &v, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) o.seed = (uint64_t)v;
    if ((r = args_bool(a, "resume", &o.resume, &e)) < 0) return out_error(out, "%s", e.msg);
    if (o.threads <= 0) o.threads = app->n_threads;
    bool cot = false;
    if ((r = args_bool(a, "cot", &cot, &e)) < 0) return out_error(out, "%s", e.msg);
    TrainExample *ex = NULL;
    Buf *texts = NULL;
    int n_ex = 0;
    if (has_ext(o.data, ".jsonl")) { // a task file: fine-tune on its exemplars
        if (task_examples(o.data, cot, &ex, &n_ex, &texts, &e)) {
            for (int i = 0; texts && i < n_ex; i++) buf_free(&texts[i]);
            free(ex), free(texts);
            return out_error(out, "%s", e.msg);
        }
        o.examples = ex, o.n_examples = n_ex;
    } else if (r) {
        return out_error(out, "train: cot= goes with a task file (.jsonl)");
    }

    TrainLog L = {.app = app, .o = &o, .last_val = -1};
    options_json(a, "data", &L.options);
    Err dberr = {0};
    L.db = app_db(app, &dberr);
    if (!L.db) snprintf(L.log_err.msg, sizeof L.log_err.msg, "%s", dberr.msg);
    TrainHooks h = {on_begin, on_step, &L};
    TrainInfo info = {0};
    // out= the session's own folder (an untrained model, which train writes over): reloaded after,
    // so that the session runs the weights on disk, the ones the runs it logs name by their hash
    bool in_place = app_loaded_file_in(app, o.out) != NULL, reloaded = false;
    int rc = train_run(&o, &h, &info, &e);
    Err le = {0};
    if (in_place && !(reloaded = !app_load_model(app, o.out, NULL, &le)))
        fprintf(stderr, "warning: the session's model is still the one before training: '%s' cannot be reloaded: %s\n",
                o.out, le.msg);
    if (L.db && L.run_id > 0) { // how it ended (a process killed first leaves it running: read as interrupted)
        Err fe = {0};
        if (db_train_finish(L.db, L.run_id, rc ? "failed" : info.stop_step > 0 ? "stopped" : "done", &fe) &&
            !L.log_err.msg[0])
            L.log_err = fe;
    }
    buf_free(&L.options);
    for (int i = 0; i < n_ex; i++) buf_free(&texts[i]);
    free(ex), free(texts);
    if (rc) return out_error(out, "train: %s", e.msg);
    if (L.log_err.msg[0]) fprintf(stderr, "warning: the loss curve was not logged: %s\n", L.log_err.msg);
    JsonW *w = &out->w;
    jw_kstr(w, "out", o.out);
    jw_kid(w, "train_run_id", L.run_id);
    jw_kstr(w, "arch", info.cfg.a.name);
    jw_kint(w, "params", info.n_params);
    jw_kint(w, "start_step", info.start_step);
    jw_kint(w, "step", L.last.step ? L.last.step : info.start_step);
    jw_kint(w, "steps", o.opt.steps);
    jw_kint(w, "train_tokens", info.train_tokens);
    jw_kint(w, "val_tokens", info.val_tokens);
    // null where this command ran no step (the run was finished already) or held nothing out
    jw_key(w, "loss");
    if (L.last.step) jw_num(w, L.last.loss);
    else jw_null(w);
    jw_key(w, "val_loss");
    if (L.last_val >= 0) jw_num(w, L.last_val);
    else jw_null(w);
    jw_key(w, "val_loss_step"); // the step it was computed at: a run stopped with Ctrl-C ends between two
    if (L.last_val >= 0) jw_int(w, L.last_val_step);
    else jw_null(w);
    jw_key(w, "tok_s");
    if (L.last.step) jw_num(w, L.last.tok_s);
    else jw_null(w);
    jw_kbool(w, "stopped", info.stop_step > 0);
    jw_kbool(w, "reloaded", reloaded);
    buf_printf(&out->text, "trained %s (%lld parameters) to step %d of %d in %s", info.cfg.a.name,
               (long long)info.n_params, L.last.step ? L.last.step : info.start_step, o.opt.steps, o.out);
    if (L.last.step) buf_printf(&out->text, ": loss %.4f", L.last.loss);
    if (L.last_val >= 0 && L.last_val_step == L.last.step) buf_printf(&out->text, ", held-out %.4f", L.last_val);
    else if (L.last_val >= 0) buf_printf(&out->text, ", held-out %.4f at step %d", L.last_val, L.last_val_step);
    buf_putc(&out->text, '\n');
    if (info.stop_step)
        buf_printf(&out->text, "stopped: saved at step %d; the same command resumes after it\n", info.stop_step);
    if (reloaded) buf_printf(&out->text, "the session's model is %s: reloaded with the weights saved there\n", o.out);
    return 0;
}

// A sparkline of the finite values of key in points (at most width of them, evenly picked among
// the points that have one: a held-out loss is there every eval_every steps only).
static void sparkline(const Json *points, const char *key, int width, Buf *out) {
    static const char *const bars[] = {"\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"};
    if (width > 64) width = 64;
    size_t np = 0, total = points ? points->len : 0;
    for (size_t i = 0; i < total; i++) {
        const Json *x = json_get(json_at(points, i), key);
        np += x && x->type == JSON_NUM;
    }
    float v[64];
    int n = 0;
    for (size_t i = 0, seen = 0; i < total && n < width; i++) {
        const Json *x = json_get(json_at(points, i), key);
        if (!x || x->type != JSON_NUM) continue;
        // the k-th of width picks is value round(k (np - 1) / (width - 1)); all of them when few
        size_t want = np <= (size_t)width ? seen : (size_t)((double)n * (double)(np - 1) / (width - 1) + 0.5);
        if (seen++ == want) v[n++] = (float)x->num;
    }
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) lo = fminf(lo, v[i]), hi = fmaxf(hi, v[i]);
    for (int i = 0; i < n; i++) buf_puts(out, bars[hi > lo ? (int)(7.999f * (v[i] - lo) / (hi - lo)) : 0]);
}

// The last finite value of key in points, and its step; false when there is none.
static bool last_value(const Json *points, const char *key, double *v, long *step) {
    for (size_t i = points ? points->len : 0; i-- > 0;) {
        const Json *x = json_get(json_at(points, i), key);
        if (x && x->type == JSON_NUM) {
            *v = x->num, *step = (long)json_num_or(json_at(points, i), "step", 0);
            return true;
        }
    }
    return false;
}

static int cmd_curve(App *app, const Args *a, Out *out) {
    int64_t id = 0;
    const Arg *p = args_pos(a, 0);
    if (p && id_arg(p->val, "training run", &id, out)) return -1;
    const char *kind = args_opt(a, "kind");
    if (!kind) kind = "train";
    if (strcmp(kind, "train") && strcmp(kind, "reward"))
        return out_error(out, "curve: kind= is train or reward, not '%.40s'", kind);
    bool reward = !strcmp(kind, "reward");
    Db *db = need_db_read(app, out);
    if (!db) return -1;
    Err e = {0};
    Buf b = {0};
    JsonW w;
    jw_init(&w, &b);
    jw_obj(&w);
    int r = db_curve_json(db, reward, id, &w, &e);
    jw_obj_end(&w);
    Json *j = r > 0 ? json_parse(b.data, b.len, &e) : NULL;
    buf_free(&b);
    if (r < 0 || (r > 0 && !j)) return out_error(out, "curve: %s", e.msg);
    if (!r) {
        if (id) return out_error(out, "curve: no %s run %lld in '%s'", reward ? "reward" : "training", (long long)id, db_path(db));
        return out_error(out, "curve: no %s run in '%s' yet (%s)", reward ? "reward" : "training", db_path(db),
                         reward ? "reward train ... out=DIR" : "train FILE out=DIR");
    }
    if (db_curve_json(db, reward, json_num_or(j, "id", 0), &out->w, &e) <= 0) {
        json_free(j);
        return out_error(out, "curve: %s", e.msg);
    }
    const Json *pts = json_get(j, "points");
    const char *held = reward ? "heldout_loss" : "val_loss";
    // how it ended; not known for runs logged before training runs had a status (migration 13)
    const char *status = json_str_or(j, "status", NULL);
    buf_printf(&out->text, "%s run %lld: %s, %s, %zu points%s%s\n", reward ? "reward" : "training",
               (long long)json_num_or(j, "id", 0), json_str_or(j, "model_arch", "?"), json_str_or(j, "out_path", "?"),
               pts ? pts->len : 0, status ? ", " : "", status ? status : "");
    double v;
    long step;
    if (last_value(pts, "loss", &v, &step)) {
        buf_printf(&out->text, "  loss      %.4f at step %ld  ", v, step);
        sparkline(pts, "loss", 40, &out->text);
        buf_putc(&out->text, '\n');
    }
    if (last_value(pts, held, &v, &step)) {
        buf_printf(&out->text, "  held-out  %.4f at step %ld  ", v, step);
        sparkline(pts, held, 40, &out->text);
        buf_putc(&out->text, '\n');
    }
    if (reward && last_value(pts, "heldout_accuracy", &v, &step))
        buf_printf(&out->text, "  held-out pair accuracy %.3f at step %ld\n", v, step);
    json_free(j);
    return 0;
}

// Training speed on the current model: tokens/s of whole steps and the FLOP/s they reach as a
// fraction of sgemm's at the model's linear shapes, both measured in this run (train_bench).
static int cmd_bench_train(App *app, const Args *a, Out *out) {
    Err e = {0};
    const Model *m = app->model;
    long long B = 8, T = m->cfg.n_ctx < 256 ? m->cfg.n_ctx : 256, steps = 3, reps = 5, th = 0;
    if (args_int(a, "batch", 1, 4096, &B, &e) < 0 || args_int(a, "seq", 2, 65536, &T, &e) < 0 ||
        args_int(a, "steps", 1, 100000, &steps, &e) < 0 ||
        args_int(a, "reps", 1, TRAIN_BENCH_MAX_REPS, &reps, &e) < 0 || args_int(a, "threads", 0, APP_MAX_THREADS, &th, &e) < 0)
        return out_error(out, "bench-train: %s", e.msg);
    // what it times is train's step, next-token loss through the head: a model train refuses is refused
    // here in bench-train's name (it said "train: bert models are not trainable")
    if (tmodel_check(&m->cfg, true, &e)) {
        if (!m->cfg.a.causal)
            return out_error(out, "bench-train: '%s' is an encoder (bidirectional attention): bench-train times "
                             "language-model training (next-token loss), which qkv runs for decoders only; an "
                             "encoder is trained as a reward model (reward train base=%s)", m->name, m->name);
        return out_error(out, "bench-train: %s: bench-train times train's steps", e.msg);
    }
    TrainBench r;
    if (train_bench(app->model, th > 0 ? (int)th : app->n_threads, (int)B, (int)T, (int)steps, (int)reps, app->cancel,
                    &r, &e))
        return out_error(out, "bench-train: %s", e.msg);
    JsonW *w = &out->w;
    jw_kstr(w, "model", app->model->name);
    jw_kint(w, "params", app->model->n_params);
    jw_kint(w, "threads", r.threads);
    jw_kint(w, "batch", B);
    jw_kint(w, "seq", T);
    jw_kint(w, "steps", steps);
    jw_kint(w, "reps", reps);
    jw_knum(w, "tok_s", r.tok_s);
    jw_knum(w, "flops_per_token", r.flops_per_token);
    jw_knum(w, "attention_flops_per_token", r.attention_flops_per_token);
    jw_knum(w, "gflops", r.flops_s / 1e9);
    jw_knum(w, "sgemm_gflops", r.sgemm_flops_s / 1e9);
    jw_knum(w, "sgemm_fraction", r.frac);
    jw_knum(w, "sgemm_fraction_min", r.frac_min);
    jw_knum(w, "sgemm_fraction_max", r.frac_max);
    jw_key(w, "tok_s_reps");
    jw_arr(w);
    for (int i = 0; i < r.reps; i++) jw_num(w, r.tok_s_reps[i]);
    jw_arr_end(w);
    buf_printf(&out->text, "training %s (%.2fM params), %d threads, batch %lld x %lld tokens, %lld steps x %lld reps\n",
               app->model->name, app->model->n_params / 1e6, r.threads, B, T, steps, reps);
    buf_printf(&out->text, "  %.0f tok/s (median), %.1f MFLOP/token (attention %.1f), %.1f GFLOP/s; median %.0f%% "
               "(%.0f-%.0f%%) of sgemm's %.1f GFLOP/s at the model's shapes\n",
               r.tok_s, r.flops_per_token / 1e6, r.attention_flops_per_token / 1e6, r.flops_s / 1e9, 100 * r.frac,
               100 * r.frac_min, 100 * r.frac_max, r.sgemm_flops_s / 1e9);
    return 0;
}

static const char *const k_curve[] = {"kind", NULL};
static const char *const k_bench_train[] = {"batch", "seq", "steps", "reps", "threads", NULL};
static const char *const k_train[] = {"out", "from", "family", "tok", "layers", "heads", "kv_heads", "d", "ff", "ctx",
                                      "vocab", "seed", "std", "theta", "tied", "steps", "batch", "seq", "accum",
                                      "warmup", "lr", "min_lr", "wd", "clip", "beta1", "beta2", "eps", "eval_every",
                                      "eval_batches", "save_every", "val", "data_seed", "threads", "resume", "recipe", "cot", NULL};
static const char *const k_teach[] = {"out", "seed", "bytes", NULL};
static const char *const k_train_tok[] = {"out", "vocab", "min_freq", NULL};

const Command train_commands[] = {
    {"train", cmd_train, 0, 1, k_train,
     "train FILE|TASK.jsonl|recipe=teach out=DIR [from=MODEL | family=gpt2|llama|... layers= heads= kv_heads= d= ff= ctx= vocab= theta= "
     "tied= seed= std= tok=DIR] [steps=100 batch=8 seq=64 accum=1 lr=3e-4 min_lr=lr/10 warmup=0 wd=0.1 clip=1 beta1=0.9 beta2=0.95 eps=1e-8 eval_every=0 "
     "eval_batches=4 save_every=0 val=0.1 data_seed=1 threads=N resume=true cot=off]",
     "Train a decoder (GPT-2 or Llama family) on the text of FILE, tokenized with the model's tokenizer (the last "
     "val fraction held out), from MODEL or from scratch (a new model of the family with new-model's options; with "
     "neither, an untrained model new-model wrote in DIR is the one trained, as from=DIR), with "
     "AdamW, global-norm clipping, warmup and cosine decay to min_lr, and accum micro-batches per step. Writes DIR "
     "as an HF checkpoint (config.json, model.safetensors, tokenizer) every save_every steps and at the end, with "
     "train_state.bin: running the same command again after a kill resumes exactly. The loss curve goes to the "
     "database (train_runs, train_points). A task file (.jsonl, experiment's format) instead fine-tunes on its "
     "exemplars: each its zero-shot prompt (no loss) and its answer (the loss), every 1/val-th held out; cot=on "
     "trains on the rationales. JSON: out, train_run_id, arch, params, start_step, step, steps, "
     "train_tokens, val_tokens, loss, val_loss, val_loss_step (the step val_loss is of: held-out losses are "
     "computed every eval_every steps and at the end), tok_s, stopped, reloaded (out= was the session's model's folder: "
     "reloaded after the run). recipe=teach: the built-in teaching model's run (the teaching "
     "corpus written to DIR/corpus by teach-corpus, then a 4-layer Llama with GPT-2's byte-level vocabulary trained on it; options given win).",
     false},
    {"curve", cmd_curve, 0, 1, k_curve, "curve [ID] [kind=train|reward]",
     "The curve of a training run from the database (default: the latest; kind=reward: a reward train run): the run "
     "and its points in step order, as sparklines; the Training view draws it. JSON: kind, id, created, out_path, "
     "model_arch and the run's other columns (train_runs or reward_runs), points: [{step, loss, val_loss, lr, "
     "grad_norm, tokens, elapsed_s}] (reward: [{step, loss, heldout_loss, heldout_accuracy, train_accuracy, "
     "elapsed_s}], and heldout: [{n, ranking_id, chosen_n, rejected_n, tie, prompt, chosen, rejected, r_chosen, "
     "r_rejected}], the held-out pairs as the kept weights score them).",
     false},
    {"train-tokenizer", cmd_train_tokenizer, 1, 16, k_train_tok, "train-tokenizer FILE... out=DIR vocab=N [min_freq=0]",
     "Train a GPT-2-style byte-level BPE tokenizer on the UTF-8 text of the FILEs into DIR/vocab.json and "
     "DIR/merges.txt (<|endoftext|> id 0, the 256 bytes, then the merges): what HF tokenizers' BpeTrainer with the "
     "ByteLevel pre-tokenizer learns on the same files, ties broken the same way (the most frequent pair, then the "
     "smallest ids). JSON: out, vocab, merges, words, last_freq.",
     false},
    {"teach-corpus", cmd_teach_corpus, 0, 0, k_teach, "teach-corpus out=DIR [seed=1 bytes=12582912]",
     "Write the teaching corpus generated from seed (about `bytes` bytes of documents: letter ciphers, list "
     "operations and word mappings whose rule shows only in the examples, two-step arithmetic answered directly or "
     "step by step, repeated sequences, sentences of a small grammar) to DIR/train.txt, and the held-out task files "
     "DIR/teach-cipher.jsonl, teach-list, teach-words, teach-arith (experiment's format; their test items are never "
     "in training). JSON: out, seed, bytes, tasks.",
     false},
    {"bench-train", cmd_bench_train, 0, 0, k_bench_train, "bench-train [batch=8 seq=256 steps=3 reps=5 threads=N]",
     "Measure training speed on the current model (a GPT-2 or Llama family decoder; its weights are copied, not "
     "changed): after a warm-up step, reps repetitions of steps training steps (forward, backward, clipping, AdamW) "
     "on batch random windows of seq tokens, with sgemm's GFLOP/s at the model's linear shapes measured on the same "
     "threads before each repetition and after the last. FLOPs per token: 6 x the linear layers' weights (head "
     "included) plus attention's two products over the keys each query sees, forward and backward. JSON: model, "
     "params, threads, batch, seq, steps, reps, tok_s (median), flops_per_token, attention_flops_per_token, gflops, "
     "sgemm_gflops, sgemm_fraction (median of each rep's GFLOP/s over the mean of the bound's samples around it), "
     "sgemm_fraction_min, sgemm_fraction_max, tok_s_reps.",
     true},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
