// cmd_probe.c - where the model knows it: probe (linear probes per layer on a dataset, and the
// built-in datasets) and layersim (CKA and cosine between the layers of one text).
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdutil.h"
#include "commands.h"
#include "analysis/lens.h"
#include "analysis/probe.h"
#include "analysis/similarity.h"
#include "base/clock.h"
#include "base/fs.h"
#include "base/mem.h"
#include "db.h"
#include "runlog.h"

// Write a NumPy .npy file (format 1.0): descr ("<f4", "<i4"), shape[nd], n bytes of data.
static int npy_write(const char *path, const char *descr, const int *shape, int nd, const void *data, size_t n,
                     Err *e) {
    Buf b = {0};
    char dims[128] = "";
    for (int i = 0, k = 0; i < nd; i++) k += snprintf(dims + k, sizeof dims - k, "%d,%s", shape[i], i + 1 < nd ? " " : "");
    char head[256];
    int hl = snprintf(head, sizeof head, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims);
    int total = 10 + hl + 1, pad = (64 - total % 64) % 64;
    buf_put(&b, "\x93NUMPY\x01\x00", 8);
    unsigned short len = (unsigned short)(hl + pad + 1);
    unsigned char le[2] = {(unsigned char)(len & 255), (unsigned char)(len >> 8)};
    buf_put(&b, le, 2);
    buf_put(&b, head, (size_t)hl);
    for (int i = 0; i < pad; i++) buf_putc(&b, ' ');
    buf_putc(&b, '\n');
    buf_put(&b, data, n);
    int rc = fs_write_atomic(path, b.data, b.len, e);
    buf_free(&b);
    return rc;
}

// The probe's rows into dir: x.npy (n, layers + 1, d) float32, y.npy, test.npy, example.npy,
// pos.npy, group.npy (n) int32 (group: the row's example's group, as the split saw it).
static int dump_rows(const char *dir, const ProbeRows *r, const int *group, const unsigned char *test, Err *e) {
    if (fs_mkdir_p(dir, 0755, e)) return -1;
    int *t = malloc(sizeof(int) * 2 * (size_t)r->n), rc = -1;
    if (!t) return err_set(e, "out of memory");
    for (int i = 0; i < r->n; i++) t[i] = test[i], t[r->n + i] = group[r->ex[i]];
    int s3[3] = {r->n, r->n_layer1, r->d}, s1[1] = {r->n};
    const char *names[] = {"x.npy", "y.npy", "test.npy", "example.npy", "pos.npy", "group.npy"};
    const void *data[] = {r->x, r->y, t, r->ex, r->pos, t + r->n};
    for (int i = 0; i < 6; i++) {
        char *p = fs_join(dir, names[i]);
        rc = i ? npy_write(p, "<i4", s1, 1, data[i], sizeof(int) * (size_t)r->n, e)
               : npy_write(p, "<f4", s3, 3, data[i], sizeof(float) * (size_t)r->n * r->n_layer1 * r->d, e);
        free(p);
        if (rc) break;
    }
    free(t);
    return rc;
}

// The dataset a probe command names: a JSONL file, or a built-in name (when no such file).
static int dataset_read(const Args *a, const char *name, ProbeSet *s, Out *out) {
    Err e = {0};
    long long n = 400, seed = 1;
    const char *other = args_opt(a, "other");
    if (args_int(a, "n", 1, 1000000, &n, &e) < 0 || args_int(a, "seed", 0, (1ll << 53), &seed, &e) < 0)
        return out_error(out, "probe: %s", e.msg);
    bool builtin = false;
    for (int i = 0; probe_builtin_names[i]; i++) builtin |= !strcmp(name, probe_builtin_names[i]);
    if (builtin && !fs_is_file(name)) {
        if (other) return out_error(out, "probe: other= goes with a dataset file; '%s' is built in", name);
        if (probe_set_builtin(name, (int)n, (uint64_t)seed, s, &e)) return out_error(out, "probe: %s", e.msg);
        return 0;
    }
    if (args_opt(a, "n"))
        return out_error(out, "probe: n= sets the size of a built-in dataset (%s), not of a file", "number, capital, "
                         "bracket, parity, prev");
    if (!fs_present(name)) // a name there that is no regular file is read, to say what it is
        return out_error(out, "probe: '%.200s' is neither a file nor a built-in dataset (number, capital, bracket, "
                         "parity, prev)", name);
    if (probe_set_read(name, other && strcmp(other, "none") ? other : other ? NULL : "O", s, &e))
        return out_error(out, "probe: %s", e.msg);
    return 0;
}

static int probe_data(App *app, const Args *a, Out *out) {
    (void)app;
    const Arg *name = args_pos(a, 1), *file = args_pos(a, 2);
    if (!name || !file) return out_error(out, "probe data: give a built-in dataset's name and the file to write");
    ProbeSet s;
    Err e = {0};
    bool builtin = false;
    for (int i = 0; probe_builtin_names[i]; i++) builtin |= !strcmp(name->val, probe_builtin_names[i]);
    if (!builtin)
        return out_error(out, "probe data: no built-in dataset '%.40s' (number, capital, bracket, parity, prev)",
                         name->val);
    if (dataset_read(a, name->val, &s, out)) return -1;
    if (s.rule != PROBE_SPANS) {
        probe_set_free(&s);
        return out_error(out, "probe data: '%s' labels each token as the model splits the text: it has no spans to "
                         "write (probe train %s generates it)", name->val, name->val);
    }
    int rc = probe_set_write(&s, file->val, &e) ? out_error(out, "probe data: %s", e.msg) : 0;
    if (!rc) {
        jw_kstr(&out->w, "dataset", s.name);
        jw_kstr(&out->w, "file", file->val);
        jw_kint(&out->w, "examples", s.n);
        buf_printf(&out->text, "wrote %d sentences of the built-in dataset '%s' to %s\n", s.n, s.name, file->val);
    }
    probe_set_free(&s);
    return rc;
}

// Record a sweep in the database (the run's id, or -1 with e filled).
static int64_t probe_log(App *app, const Args *a, const ProbeSet *s, const char *dataset, const ProbeRows *r,
                         int n_test, const ProbeLayer *res, int nl, double majority, int best, double expected,
                         double features_s, double fit_s, Err *e) {
    Db *db = app_db(app, e);
    if (!db) return -1;
    const Model *m = app->model;
    char model_abs[PATH_MAX], data_abs[PATH_MAX], arch[64];
    Buf opts = {0}, classes = {0};
    options_json(a, NULL, &opts);
    JsonW w;
    jw_init(&w, &classes);
    jw_arr(&w);
    for (int k = 0; k < r->k; k++) jw_str(&w, r->classes[k]);
    jw_arr_end(&w);
    DbProbeLayer *dl = xcalloc((size_t)nl, sizeof *dl);
    for (int i = 0; i < nl; i++) dl[i] = (DbProbeLayer){res[i].layer, res[i].acc, res[i].train_acc, res[i].control};
    DbProbeRun dr = {0};
    dr.model_path = m->builtin ? "builtin" : realpath(m->path, model_abs) ? model_abs : m->path;
    runlog_arch_name(m, arch, sizeof arch); // as runs and experiments name it ("llama Q4_1")
    dr.model_arch = arch;
    dr.dataset = fs_is_file(dataset) && realpath(dataset, data_abs) ? data_abs : dataset;
    dr.level = s->token_level ? "token" : "sentence";
    dr.options = opts.data, dr.classes = classes.data;
    dr.examples = s->n, dr.n_rows = r->n, dr.n_train = r->n - n_test, dr.n_test = n_test;
    dr.majority = majority, dr.best_layer = best, dr.expected_layer = expected;
    dr.features_s = features_s, dr.fit_s = fit_s;
    dr.n_layers = nl, dr.layers = dl;
    int64_t id = db_probe_insert(db, &dr, e);
    free(dl), buf_free(&opts), buf_free(&classes);
    return id;
}

static int probe_train(App *app, const Args *a, Out *out) {
    Err e = {0};
    const Arg *name = args_pos(a, 1);
    if (!name) return out_error(out, "probe train: give a dataset (a JSONL file, or number, capital, bracket, "
                                     "parity, prev)");
    if (!app->model && app_load_model(app, NULL, NULL, &e)) return out_error(out, "probe: %s", e.msg);
    const Model *m = app->model;
    const ModelConfig *c = &m->cfg;
    long long every = 5, seed = 1, steps = 200;
    ProbeFit fit = probe_fit_defaults();
    if (args_int(a, "every", 2, 1000, &every, &e) < 0 || args_int(a, "steps", 1, 100000, &steps, &e) < 0 ||
        args_float(a, "lr", 1e-9, 100, &fit.lr, &e) < 0 || args_float(a, "l2", 0, 1e6, &fit.l2, &e) < 0 ||
        args_int(a, "seed", 0, (1ll << 53), &seed, &e) < 0)
        return out_error(out, "probe: %s", e.msg);
    fit.steps = (int)steps;
    IntVec layers = {0};
    const char *ls = args_opt(a, "layers");
    if (ls && strcmp(ls, "all")) {
        if (int_list(ls, "layers", c->n_layer + 1, &layers, out)) {
            iv_free(&layers);
            return -1;
        }
        if (!layers.n) {
            iv_free(&layers);
            return out_error(out, "probe: layers= is empty");
        }
        for (int i = 1; i < layers.n; i++)
            if (layers.v[i] <= layers.v[i - 1]) {
                iv_free(&layers);
                return out_error(out, "probe: layers=%.60s: give them ascending, each once", ls);
            }
    } else
        for (int l = 0; l <= c->n_layer; l++) iv_push(&layers, l);
    ProbeSet s;
    if (dataset_read(a, name->val, &s, out)) {
        iv_free(&layers);
        return -1;
    }
    ProbeRows r = {0};
    ProbeLayer *res = calloc((size_t)layers.n, sizeof *res);
    unsigned char *test = NULL;
    double majority = NAN, t0 = clock_now(), t1 = t0, t2 = t0;
    Ctx *x = app_ctx(app, &e);
    int rc = 0;
    if (!x || !res) rc = out_error(out, "probe: %s", x ? "out of memory" : e.msg);
    else if (probe_rows(x, m->tok, &s, &r, &e)) rc = out_error(out, "probe: %s: %s", s.name, e.msg);
    if (!rc) {
        t1 = clock_now();
        test = malloc((size_t)r.n);
        if (!test) rc = out_error(out, "probe: out of memory");
    }
    int n_test = 0, test_groups = 0;
    if (!rc) {
        probe_split(&r, s.group, (int)every, test);
        for (int i = 0; i < r.n; i++) n_test += test[i];
        for (int g = 0; g < s.n_group; g++) test_groups += g % every == every - 1;
        if (!n_test || n_test == r.n)
            rc = s.grouped ? out_error(out, "probe: %d examples in %d group%s: too few for a held-out split of one group in "
                                       "%lld (give more, or a smaller every=)", s.n, s.n_group, s.n_group == 1 ? "" : "s", every)
                           : out_error(out, "probe: %d examples: too few for a held-out split of one example in %lld (give "
                                       "more, or a smaller every=)", s.n, every);
    }
    // a label only in held-out rows: the probe never meets it in training, and its accuracy on
    // them reads as the probe's (every layer 0.5 of two rows, no word said)
    for (int k = 0; !rc && k < r.k; k++) {
        int n_train = 0, n_held = 0;
        for (int i = 0; i < r.n; i++)
            if (r.y[i] == k) test[i] ? n_held++ : n_train++;
        if (!n_train)
            rc = out_error(out, "probe: the label '%.40s' is only in held-out rows (%d): the probe would never see it in "
                                "training; give more examples of it, or another every=",
                           r.classes[k], n_held);
    }
    fit.stop = x ? ctx_stop(x) : NULL;
    if (!rc && probe_sweep(ctx_pool(x), &r, layers.v, layers.n, test, (uint64_t)seed, &fit, res, &majority, &e))
        rc = out_error(out, "probe: %s", e.msg);
    const char *dump = args_opt(a, "dump"), *save = args_opt(a, "save");
    if (!rc && dump && dump_rows(dump, &r, s.group, test, &e)) rc = out_error(out, "probe: dump=: %s", e.msg);
    int saved = -1; // the layer whose probe save= wrote
    if (!rc && save) {
        // one layer asked for: its probe; several: the best one's, fitted again to keep its weights
        int bi = 0;
        for (int i = 1; i < layers.n; i++)
            if (res[i].acc > res[bi].acc) bi = i;
        ProbeWeights pw;
        const int *ys[1] = {r.y};
        double acc;
        saved = res[bi].layer;
        if (probe_fit(r.x + (size_t)saved * r.d, r.n, r.d, (size_t)r.n_layer1 * r.d, ys, 1, r.k, test, &fit, &acc,
                      NULL, &pw, &e))
            rc = out_error(out, "probe: save=: %s", e.msg);
        else {
            pw.layer = saved, pw.accuracy = acc, pw.sentence = !s.token_level;
            pw.model = xstrdup(m->name), pw.dataset = xstrdup(s.name);
            pw.classes = xcalloc((size_t)r.k, sizeof *pw.classes);
            for (int k = 0; k < r.k; k++) pw.classes[k] = xstrdup(r.classes[k]);
            if (probe_save(save, &pw, &e)) rc = out_error(out, "probe: save=: %s", e.msg);
            probe_weights_free(&pw);
        }
    }
    if (!rc) {
        t2 = clock_now();
        double expected = probe_expected_layer(res, layers.n);
        int best = 0;
        for (int i = 1; i < layers.n; i++)
            if (res[i].acc > res[best].acc) best = i;
        JsonW *w = &out->w;
        jw_kstr(w, "dataset", s.name);
        jw_kstr(w, "level", s.token_level ? "token" : "sentence");
        jw_kint(w, "examples", s.n);
        jw_kint(w, "rows", r.n);
        jw_kint(w, "n_train", r.n - n_test);
        jw_kint(w, "n_test", n_test);
        jw_kint(w, "every", every);
        jw_kint(w, "groups", s.n_group);
        jw_kint(w, "test_groups", test_groups);
        jw_kint(w, "seed", seed);
        jw_kint(w, "steps", fit.steps);
        jw_knum(w, "lr", fit.lr);
        jw_knum(w, "l2", fit.l2);
        jw_key(w, "classes");
        jw_arr(w);
        for (int k = 0; k < r.k; k++) jw_str(w, r.classes[k]);
        jw_arr_end(w);
        jw_knum_or_null(w, "majority", majority);
        jw_key(w, "layers");
        jw_arr(w);
        for (int i = 0; i < layers.n; i++) {
            jw_obj(w);
            jw_kint(w, "layer", res[i].layer);
            jw_knum_or_null(w, "accuracy", res[i].acc);
            jw_knum_or_null(w, "train_accuracy", res[i].train_acc);
            jw_knum_or_null(w, "control", res[i].control);
            jw_knum_or_null(w, "selectivity", res[i].acc - res[i].control);
            jw_obj_end(w);
        }
        jw_arr_end(w);
        jw_kint(w, "best_layer", res[best].layer);
        jw_knum_or_null(w, "expected_layer", expected);
        jw_knum(w, "features_s", t1 - t0);
        jw_knum(w, "fit_s", t2 - t1);
        if (save) {
            jw_kstr(w, "saved", save);
            jw_kint(w, "saved_layer", saved);
        }
        Err le = {{0}};
        int64_t run_id = probe_log(app, a, &s, name->val, &r, n_test, res, layers.n, majority, res[best].layer,
                                   expected, t1 - t0, t2 - t1, &le);
        jw_kid(w, "probe_run_id", run_id);
        // the figure: held-out accuracy per layer, each over the n_test held-out rows with its
        // binomial standard error (the bars' 95% intervals; the CSV's n, stderr, ci_low, ci_high)
        float *v = malloc(sizeof(float) * 3 * (size_t)layers.n), *se = v ? v + layers.n : NULL,
              *cnt = v ? v + 2 * layers.n : NULL;
        char **lab = calloc((size_t)layers.n, sizeof *lab);
        for (int i = 0; v && lab && i < layers.n; i++) {
            char t[16];
            snprintf(t, sizeof t, res[i].layer ? "L%d" : "emb", res[i].layer);
            lab[i] = strdup(t);
            v[i] = (float)res[i].acc;
            se[i] = n_test > 0 && isfinite(res[i].acc) ? (float)sqrt(res[i].acc * (1 - res[i].acc) / n_test) : NAN;
            cnt[i] = (float)n_test;
        }
        char title[200];
        snprintf(title, sizeof title, "%s: linear probe on '%s', held-out accuracy per layer (majority %.3f)", m->name,
                 s.name, majority);
        if (v && lab) {
            app_set_bars(app, v, se, cnt, layers.n, (const char *const *)lab, title);
            // the CSV carries what the text shows beside the accuracy
            float *ex = malloc(sizeof(float) * 3 * (size_t)layers.n);
            for (int i = 0; ex && i < layers.n; i++) {
                ex[i] = (float)res[i].train_acc;
                ex[layers.n + i] = (float)res[i].control;
                ex[2 * layers.n + i] = (float)(res[i].acc - res[i].control);
            }
            static const char *const names[] = {"train_accuracy", "control", "selectivity"};
            if (ex) app_bars_extra(app, "layer", 3, names, ex);
            free(ex);
        }
        for (int i = 0; lab && i < layers.n; i++) free(lab[i]);
        free(v), free(lab);
        buf_printf(&out->text, "%s\n%d %s-level rows from %d examples (%d held out: one ", title, r.n,
                   s.token_level ? "token" : "sentence", s.n, n_test);
        if (s.grouped) buf_printf(&out->text, "group in %lld, whole: %d of %d groups)", every, test_groups, s.n_group);
        else buf_printf(&out->text, "example in %lld)", every);
        buf_printf(&out->text, ", %d classes\nlayer  accuracy  train  control  selectivity\n", r.k);
        for (int i = 0; i < layers.n; i++)
            buf_printf(&out->text, "%5d  %8.3f  %5.3f  %7.3f  %11.3f\n", res[i].layer, res[i].acc, res[i].train_acc,
                       res[i].control, res[i].acc - res[i].control);
        buf_printf(&out->text, "majority-class baseline %.3f; best layer %d; expected layer ", majority, res[best].layer);
        if (isnan(expected)) buf_printf(&out->text, "- (no layer beats the first)");
        else buf_printf(&out->text, "%.2f", expected);
        buf_printf(&out->text, "\n(%.2f s reading features, %.2f s fitting)", t1 - t0, t2 - t1);
        if (run_id > 0) buf_printf(&out->text, "; logged as probe run %lld", (long long)run_id);
        else buf_printf(&out->text, "; not logged: %s", le.msg);
        buf_putc(&out->text, '\n');
        if (save) buf_printf(&out->text, "saved the probe of layer %d to %s (probe apply %s \"TEXT\")\n", saved, save, save);
    }
    free(res), free(test);
    probe_rows_free(&r);
    probe_set_free(&s);
    iv_free(&layers);
    return rc;
}

// probe apply FILE "TEXT"|ids=..: a saved probe's class and probabilities at every token of a text (and,
// for a sentence-level probe, of the text as training pooled it).
static int probe_apply(App *app, const Args *a, Out *out) {
    Err e = {{0}};
    const Arg *file = args_pos(a, 1);
    if (!file) return out_error(out, "probe apply: give the probe's file (probe train ... save=FILE) and a text");
    if (!app->model && app_load_model(app, NULL, NULL, &e)) return out_error(out, "probe apply: %s", e.msg);
    const Model *m = app->model;
    const ModelConfig *c = &m->cfg;
    ProbeWeights pw;
    if (probe_load(file->val, &pw, &e)) return out_error(out, "probe apply: %s", e.msg);
    if (pw.d != c->n_embd || pw.layer > c->n_layer) {
        int rc = out_error(out, "probe apply: the probe reads layer %d of width %d (trained on %s); %s has %d layers "
                           "of width %d", pw.layer, pw.d, pw.model, m->name, c->n_layer, c->n_embd);
        probe_weights_free(&pw);
        return rc;
    }
    // the text is the argument after the file: prompt_read reads the first positional one
    Args rest = {a->name, xcalloc((size_t)a->n + 1, sizeof(Arg)), 0};
    for (int k = 0, pos = 0; k < a->n; k++)
        if (a->a[k].key || pos++ >= 2) rest.a[rest.n++] = a->a[k];
    Prompt pr;
    int rc = prompt_read(app, &rest, &pr, false, out);
    free(rest.a);
    int T = pr.ids.n, L1 = c->n_layer + 1, d = c->n_embd;
    float *hid = NULL;
    double *probs = NULL;
    Ctx *x = rc ? NULL : app_ctx(app, &e);
    if (!rc && !x) rc = out_error(out, "probe apply: %s", e.msg);
    if (!rc && (T < 1 || T > c->n_ctx)) rc = out_error(out, "probe apply: %d tokens: at least 1 and at most %d", T, c->n_ctx);
    if (!rc) {
        hid = malloc(mem_mul(sizeof(float) * (size_t)L1 * d, (size_t)T));
        probs = malloc(sizeof(double) * (size_t)T * pw.k);
        if (!hid || !probs) rc = out_error(out, "probe apply: out of memory for %d tokens", T);
    }
    if (!rc && lens_hidden(x, pr.ids.v, PROMPT_TYPES(&pr), T, hid, NULL, &e)) rc = out_error(out, "probe apply: %s", e.msg);
    if (!rc) {
        probe_predict(&pw, hid + (size_t)pw.layer * T * d, T, (size_t)d, probs);
        JsonW *w = &out->w;
        jw_kstr(w, "file", file->val);
        jw_kint(w, "layer", pw.layer);
        jw_kstr(w, "dataset", pw.dataset);
        jw_key(w, "classes");
        jw_arr(w);
        for (int k = 0; k < pw.k; k++) jw_str(w, pw.classes[k]);
        jw_arr_end(w);
        json_tokens(w, "tokens", m->tok, pr.ids.v, T);
        jw_key(w, "labels");
        jw_arr(w);
        Buf piece = {0};
        buf_printf(&out->text, "probe of layer %d (%s, %d classes) on %d tokens\n", pw.layer, pw.dataset, pw.k, T);
        for (int t = 0; t < T; t++) {
            const double *pt = probs + (size_t)t * pw.k;
            int best = 0;
            for (int k = 1; k < pw.k; k++)
                if (pt[k] > pt[best]) best = k;
            jw_str(w, pw.classes[best]);
            token_piece(m->tok, pr.ids.v[t], &piece);
            buf_printf(&out->text, "%4d  ", t);
            put_cell(&out->text, piece.data, piece.len, 16, true);
            buf_putc(&out->text, ' ');
            put_cell(&out->text, pw.classes[best], strlen(pw.classes[best]), 10, false);
            buf_printf(&out->text, " %.3f\n", pt[best]);
        }
        jw_arr_end(w);
        buf_free(&piece);
        jw_key(w, "probs");
        jw_arr(w);
        for (int t = 0; t < T; t++) {
            jw_arr(w);
            for (int k = 0; k < pw.k; k++) jw_num(w, probs[(size_t)t * pw.k + k]);
            jw_arr_end(w);
        }
        jw_arr_end(w);
        // a probe trained on one row a text reads the text as training pooled it (a decoder's
        // last token, an encoder's mean over its own tokens): that is its answer for the text
        const Tokenizer *tk = m->tok;
        int first = tok_add_first(tk), last = tok_add_last(tk);
        int ta = first >= 0 && pr.ids.v[0] == first, tb = last >= 0 && T > ta && pr.ids.v[T - 1] == last ? T - 1 : T;
        if (pw.sentence == 1 && tb > ta) {
            float *row = xmalloc(sizeof(float) * (size_t)d);
            double *sp = xmalloc(sizeof(double) * (size_t)pw.k);
            probe_pool(hid + (size_t)pw.layer * T * d, ta, tb, d, c->a.causal, row);
            probe_predict(&pw, row, 1, (size_t)d, sp);
            int best = 0;
            for (int k = 1; k < pw.k; k++)
                if (sp[k] > sp[best]) best = k;
            jw_key(w, "pooled");
            jw_obj(w);
            jw_kstr(w, "label", pw.classes[best]);
            jw_kstr(w, "pool", c->a.causal ? "last" : "mean");
            jw_key(w, "probs");
            jw_arr(w);
            for (int k = 0; k < pw.k; k++) jw_num(w, sp[k]);
            jw_arr_end(w);
            jw_obj_end(w);
            buf_printf(&out->text, "the text (%s, as the probe was trained): %s %.3f\n",
                       c->a.causal ? "its last token" : "the mean of its tokens", pw.classes[best], sp[best]);
            free(row), free(sp);
        } else {
            jw_key(w, "pooled");
            jw_null(w);
        }
    }
    free(hid), free(probs);
    prompt_free(&pr);
    probe_weights_free(&pw);
    return rc;
}

typedef struct {
    JsonW *w;
    Buf *text;
    int n; // rows so far: the table's header comes with the first
} RunsOut;

static int probe_run_row(void *user, const DbProbeRun *r) {
    RunsOut *o = user;
    JsonW *w = o->w;
    if (!o->n++)
        buf_puts(o->text, "   id  created              dataset    level      rows  majority  best  accuracy  control  "
                          "expected  model\n");
    int bi = 0;
    for (int i = 0; i < r->n_layers; i++)
        if (r->layers[i].layer == r->best_layer) bi = i;
    jw_obj(w);
    jw_kint(w, "id", r->id);
    jw_kstr(w, "created", r->created);
    jw_kstr(w, "qkv_version", r->qkv_version);
    jw_kstr(w, "model_path", r->model_path);
    jw_kstr(w, "model_arch", r->model_arch);
    jw_kstr(w, "dataset", r->dataset);
    jw_kstr(w, "level", r->level);
    jw_key(w, "options");
    jw_raw(w, r->options);
    jw_kint(w, "examples", r->examples);
    jw_kint(w, "rows", r->n_rows);
    jw_kint(w, "n_train", r->n_train);
    jw_kint(w, "n_test", r->n_test);
    jw_key(w, "classes");
    jw_raw(w, r->classes);
    jw_knum_or_null(w, "majority", r->majority);
    jw_kint(w, "best_layer", r->best_layer);
    jw_knum_or_null(w, "expected_layer", r->expected_layer);
    jw_knum(w, "features_s", r->features_s);
    jw_knum(w, "fit_s", r->fit_s);
    jw_key(w, "layers");
    jw_arr(w);
    for (int i = 0; i < r->n_layers; i++) {
        const DbProbeLayer *l = &r->layers[i];
        jw_obj(w);
        jw_kint(w, "layer", l->layer);
        jw_knum_or_null(w, "accuracy", l->accuracy);
        jw_knum_or_null(w, "train_accuracy", l->train_accuracy);
        jw_knum_or_null(w, "control", l->control);
        jw_knum_or_null(w, "selectivity", l->accuracy - l->control);
        jw_obj_end(w);
    }
    jw_arr_end(w);
    jw_obj_end(w);
    double acc = r->n_layers ? r->layers[bi].accuracy : NAN, ctl = r->n_layers ? r->layers[bi].control : NAN;
    buf_printf(o->text, "%5lld  %.19s  %-10.40s %-8s %6d  %8.3f  %4d  %8.3f  %7.3f  ", (long long)r->id, r->created,
               r->dataset, r->level, r->n_rows, r->majority, r->best_layer, acc, ctl);
    if (isnan(r->expected_layer)) buf_puts(o->text, "       -");
    else buf_printf(o->text, "%8.2f", r->expected_layer);
    buf_printf(o->text, "  %s\n", r->model_path);
    return 0;
}

// probe runs [dataset=NAME] [limit=N]: the logged sweeps, newest first.
static int probe_runs(App *app, const Args *a, Out *out) {
    Err e = {{0}};
    long long limit = 20;
    if (args_int(a, "limit", 1, 1000000, &limit, &e) < 0) return out_error(out, "probe runs: %s", e.msg);
    const char *ds = args_opt(a, "dataset");
    char abs[PATH_MAX];
    if (ds && fs_is_file(ds) && realpath(ds, abs)) ds = abs;
    if (list_absent(app, out, "probe_runs")) return 0;
    Db *db = need_db_read(app, out);
    if (!db) return -1;
    JsonW *w = &out->w;
    jw_key(w, "probe_runs");
    jw_arr(w);
    RunsOut o = {w, &out->text, 0};
    int rc = db_probes_each(db, ds, (long)limit, probe_run_row, &o, &e);
    jw_arr_end(w);
    if (rc) return out_error(out, "probe runs: %s", e.msg);
    if (!o.n) list_none(out, "probe runs", ds != NULL);
    return 0;
}

static int cmd_probe(App *app, const Args *a, Out *out) {
    // each subcommand's own options (k_probe is their union): another's is refused, not ignored
    static const char *const k_train[] = {"layers", "every", "seed", "steps", "lr", "l2", "n", "other", "dump", "save", NULL};
    static const char *const k_data[] = {"n", "seed", NULL}, *const k_runs[] = {"dataset", "limit", NULL};
    static const char *const k_apply[] = {"ids", "types", "pair", CHAT_KEYS, NULL};
    const Arg *sub = args_pos(a, 0);
    if (sub && !strcmp(sub->val, "train")) return args_only(a, k_train, "probe train", out) ? -1 : probe_train(app, a, out);
    if (sub && !strcmp(sub->val, "data")) return args_only(a, k_data, "probe data", out) ? -1 : probe_data(app, a, out);
    if (sub && !strcmp(sub->val, "runs")) return args_only(a, k_runs, "probe runs", out) ? -1 : probe_runs(app, a, out);
    if (sub && !strcmp(sub->val, "apply")) return args_only(a, k_apply, "probe apply", out) ? -1 : probe_apply(app, a, out);
    return out_error(out, "probe: `probe train DATASET ...`, `probe apply FILE \"TEXT\"`, `probe data NAME FILE` or "
                          "`probe runs` expected");
}

// ---------------------------------------------------------------------------------------
// layersim

static int cmd_layersim(App *app, const Args *a, Out *out) {
    const Model *m = app->model;
    const ModelConfig *c = &m->cfg;
    Err e = {0};
    Prompt pr;
    if (prompt_read(app, a, &pr, false, out)) {
        prompt_free(&pr);
        return -1;
    }
    int T = pr.ids.n, L1 = c->n_layer + 1, d = c->n_embd;
    if (T < 2 || T > c->n_ctx) {
        prompt_free(&pr);
        return out_error(out, "layersim: %d token%s: at least 2 and at most the context of %d", T, T == 1 ? "" : "s",
                         c->n_ctx);
    }
    Ctx *x = app_ctx(app, &e);
    float *hid = malloc(sizeof(float) * (size_t)L1 * T * d);
    float *cka = malloc(sizeof(float) * (size_t)L1 * L1), *cs = malloc(sizeof(float) * (size_t)L1 * L1);
    int rc = 0;
    if (!x) rc = out_error(out, "layersim: %s", e.msg);
    else if (!hid || !cka || !cs) rc = out_error(out, "layersim: out of memory for %d layers x %d tokens", L1, T);
    else if (lens_hidden(x, pr.ids.v, PROMPT_TYPES(&pr), T, hid, NULL, &e) ||
             layer_similarity(hid, L1, T, d, ctx_stop(x), cka, cs, &e))
        rc = out_error(out, "layersim: %s", e.msg);
    if (!rc) {
        JsonW *w = &out->w;
        json_tokens(w, "tokens", m->tok, pr.ids.v, T);
        jw_kint(w, "layers", L1);
        json_matrix(w, "cka", cka, L1, L1);
        json_matrix(w, "cosine", cs, L1, L1);
        char **lab = calloc((size_t)L1, sizeof *lab);
        for (int l = 0; lab && l < L1; l++) {
            char t[16];
            snprintf(t, sizeof t, l ? "L%d" : "emb", l);
            lab[l] = strdup(t);
        }
        char title[160];
        snprintf(title, sizeof title, "%s: linear CKA between layers (%d tokens)", m->name, T);
        if (lab) app_set_figure(app, cka, L1, L1, (const char *const *)lab, (const char *const *)lab, false, title);
        buf_printf(&out->text, "%s\n(layer 0 = embeddings, l = after block l-1; upper triangle CKA, lower mean "
                               "cosine)\n      ", title);
        for (int l = 0; l < L1; l++) buf_printf(&out->text, " %5s", lab && lab[l] ? lab[l] : "");
        for (int i = 0; i < L1; i++) {
            buf_printf(&out->text, "\n%5s ", lab && lab[i] ? lab[i] : "");
            for (int j = 0; j < L1; j++) buf_printf(&out->text, " %5.2f", j >= i ? cka[i * L1 + j] : cs[i * L1 + j]);
        }
        buf_putc(&out->text, '\n');
        for (int l = 0; lab && l < L1; l++) free(lab[l]);
        free(lab);
    }
    free(hid), free(cka), free(cs);
    prompt_free(&pr);
    return rc;
}

static const char *const k_probe[] = {"layers", "every", "seed", "steps", "lr", "l2", "n", "other", "dump", "dataset",
                                      "limit", "save", "ids", "types", "pair", CHAT_KEYS, NULL};
static const char *const k_layersim[] = {"ids", "types", "pair", CHAT_KEYS, NULL};

const Command probe_commands[] = {
    {"probe", cmd_probe, 1, 3, k_probe,
     "probe train DATASET [layers=all|0,3,6 every=5 seed=1 steps=200 lr=0.05 l2=1e-4 other=O|none n=400 dump=DIR "
     "save=FILE] | probe apply FILE \"TEXT\"|ids=.. | "
     "probe data NAME FILE [n=400 seed=1] | probe runs [dataset=NAME|FILE limit=20]",
     "Linear probes: a multinomial logistic regression trained on the frozen residual stream of each layer (0 = the "
     "embeddings, l = after block l-1) to predict a dataset's labels; every every-th example is held out. Reports "
     "held-out accuracy per layer beside the majority-class baseline and a control (the same probe on labels "
     "shuffled with seed; selectivity = accuracy - control), the best layer and the expected layer (Tenney et al.'s "
     "center of gravity). DATASET: a JSONL file, one {\"text\", \"label\"} (sentence level: a decoder's last token, "
     "an encoder's mean) or {\"text\", \"labels\": [[start, end, \"LABEL\"], ...]} (token level; byte offsets; "
     "tokens outside every span are labelled other=, or skipped with other=none) a line; or a built-in dataset of n "
     "sentences: number, capital, bracket (the token is in a number, a capitalised word, brackets), parity (its "
     "position is even or odd), prev (the previous token). `probe data NAME FILE` writes number, capital or bracket as JSONL. "
     "The probe is trained with Adam on standardised features (steps, lr, l2). dump=DIR writes the rows as NumPy files "
     "(x, y, test, example, pos, group). Every sweep is logged in the database; `probe runs` lists them, newest first. save=FILE keeps the probe of the layer asked for (of the best layer when several) as JSON; `probe apply FILE \"TEXT\"` gives its class and probabilities at each token of a text (a sentence-level probe's also for the text, from the row training pooled: JSON pooled).",
     false, true, true},
    {"layersim", cmd_layersim, 0, 1, k_layersim, "layersim \"TEXT\"|ids=...",
     "Layer similarity: linear CKA (Kornblith et al. 2019; the positions as examples) and the mean cosine between "
     "the residual stream of every pair of layers (0 = the embeddings, l = after block l-1), on one text.",
     true, true},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
