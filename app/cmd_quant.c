// cmd_quant.c - quantization you can see: quantize (the loaded model's matrices converted in
// memory, with the error of the weights per layer) and compare (the converted model against
// the loaded one on a text: KL divergence, top-1 agreement, logit change, bytes); and export
// gguf (the current model written as llama.cpp's file, F32, F16 or Q8_0).
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "analysis/divergence.h"
#include "cmdutil.h"
#include "commands.h"
#include "base/fs.h"
#include "model/gguf_model.h"
#include "models.h"
#include "runlog.h"

static void layer_json(JsonW *w, const QuantLayer *q) {
    jw_obj(w);
    jw_kint(w, "layer", q->layer);
    jw_kint(w, "n", q->n);
    jw_knum(w, "rms_w", q->rms_w);
    jw_knum(w, "rms_err", q->rms_err);
    jw_knum(w, "rel_err", q->rms_w > 0 ? q->rms_err / q->rms_w : 0);
    jw_knum(w, "max_err", q->max_err);
    jw_key(w, "hist");
    jw_arr(w);
    for (int b = 0; b < QUANT_HIST_BINS; b++) jw_int(w, q->hist[b]);
    jw_arr_end(w);
    jw_obj_end(w);
}

static int cmd_quantize(App *app, const Args *a, Out *out) {
    Err e = {0};
    const char *name = args_pos(a, 0)->val;
    DType dt;
    if (quant_type_find(name, strlen(name), &dt))
        return out_error(out, "quantize: unknown type '%.40s' (" QUANT_NAMES ")", name);
    bool embed = false;
    if (args_bool(a, "embed", &embed, &e) < 0) return out_error(out, "%s", e.msg);
    QuantReport rep;
    if (app_quantize(app, dt, embed, &rep, &e)) return out_error(out, "%s", e.msg);
    JsonW *w = &out->w;
    const Model *m = app->model;
    jw_kstr(w, "type", quant_type_name(dt));
    jw_kstr(w, "dtype", dtype_name(m->dtype));
    jw_kstr(w, "name", m->name);
    if (dt == DT_F32) {
        jw_kint(w, "bytes", model_weight_bytes(m));
        buf_printf(&out->text, "back to %s as loaded (%.1f MB of weights)\n", m->name, model_weight_bytes(m) / 1e6);
        return 0;
    }
    jw_kbool(w, "embed", rep.embed);
    jw_kint(w, "tensors", rep.n_tensors);
    jw_key(w, "types"); // matrices per element type (a mix has more than one)
    jw_obj(w);
    for (int t = 0; t < DT_COUNT; t++)
        if (rep.n_by_type[t]) jw_kint(w, dtype_name((DType)t), rep.n_by_type[t]);
    jw_obj_end(w);
    jw_kint(w, "kept", rep.n_kept);
    jw_kstr(w, "kept_first", rep.n_kept ? rep.kept_first : NULL); // null: every matrix converted
    jw_kint(w, "bytes_before", rep.bytes_before);
    jw_kint(w, "bytes_after", rep.bytes_after);
    jw_knum(w, "ratio", (double)rep.bytes_after / (double)rep.bytes_before);
    jw_knum(w, "hist_range", rep.range);
    jw_kint(w, "hist_bins", QUANT_HIST_BINS);
    jw_key(w, "layers");
    jw_arr(w);
    for (int l = 0; l < rep.n_layers; l++)
        if (rep.layers[l].n) layer_json(w, &rep.layers[l]);
    jw_arr_end(w);
    buf_printf(&out->text, "%s: %d matrices as %s%s, weights %.2f MB -> %.2f MB (%.1f%%)\n", m->name, rep.n_tensors,
               dt == QUANT_Q4_K_M ? "Q4_K_M (Q4_K and Q6_K)" : dtype_name(dt), rep.embed ? " (token embedding too)" : "", rep.bytes_before / 1e6, rep.bytes_after / 1e6,
               100.0 * rep.bytes_after / rep.bytes_before);
    if (rep.n_kept)
        buf_printf(&out->text, "  %d kept as they were (rows not whole %d-element blocks), first '%s'\n", rep.n_kept,
                   dtype_block(dt == QUANT_Q4_K_M ? DT_Q4_K : dt), rep.kept_first);
    buf_puts(&out->text, "  layer  weights   rms(w)      rms(err)    err/w    max|err|\n");
    // the figure save exports, as the Quant view draws it: per layer, the share of its weights
    // whose error (dequantized - original) falls in each bin of -range..range
    enum { NB = QUANT_HIST_BINS };
    int nl = 0;
    float *v = xmalloc(sizeof *v * NB * (size_t)(rep.n_layers + 1));
    char **rl = xcalloc((size_t)rep.n_layers + 1, sizeof *rl), **cl = xcalloc(NB, sizeof *cl);
    for (int l = 0; l < rep.n_layers; l++) {
        const QuantLayer *q = &rep.layers[l];
        if (!q->n) continue;
        char lname[16];
        snprintf(lname, sizeof lname, q->layer < 0 ? "other" : "%d", q->layer);
        buf_printf(&out->text, "  %-5s %9lld  %.3e  %.3e  %6.3f%%  %.3e\n", lname, (long long)q->n, q->rms_w,
                   q->rms_err, q->rms_w > 0 ? 100 * q->rms_err / q->rms_w : 0.0, q->max_err);
        for (int b = 0; b < NB; b++) v[(size_t)nl * NB + b] = (float)((double)q->hist[b] / (double)q->n);
        rl[nl++] = xstrdup(lname);
    }
    for (int b = 0; b < NB; b++) { // each bin by its centre
        char c[32];
        snprintf(c, sizeof c, "%.3g", rep.range * (2.0 * b + 1 - NB) / NB);
        cl[b] = xstrdup(c);
    }
    char title[200];
    snprintf(title, sizeof title, "%s: error (dequantized - original), the share of each layer's weights per bin "
             "(rows: layers, columns: bin centres)", m->name);
    if (nl) app_set_figure(app, v, nl, NB, (const char *const *)rl, (const char *const *)cl, false, title);
    for (int i = 0; i < nl; i++) free(rl[i]);
    for (int b = 0; b < NB; b++) free(cl[b]);
    free(rl), free(cl), free(v);
    quant_report_free(&rep);
    return 0;
}

// Every position's logits of ids from context c into lg (n, V).
static int all_logits(Ctx *c, const Prompt *pr, float *lg, Err *e) {
    ctx_reset(c);
    return ctx_eval_types(c, pr->ids.v, PROMPT_TYPES(pr), pr->ids.n, lg, true, NULL, e);
}

static int cmd_compare(App *app, const Args *a, Out *out) {
    Err e = {0};
    if (!app->original)
        return out_error(out, "compare: the model is not converted: run quantize TYPE first (int8, q8_0, q4_k_m, f16, ...)");
    if (!app->model->cfg.a.lm_head) return out_error(out, "compare: %s has no output head to compare", app->model->name);
    Prompt pr;
    if (prompt_read(app, a, &pr, false, out)) {
        prompt_free(&pr);
        return -1;
    }
    int T = pr.ids.n, V = app->model->cfg.n_vocab;
    Ctx *co = app_orig_ctx(app, &e), *cq = co ? app_ctx(app, &e) : NULL;
    size_t n = (size_t)T * V;
    float *p = cq ? malloc(sizeof(float) * n) : NULL, *q = p ? malloc(sizeof(float) * n) : NULL;
    LogitDiff *d = q ? malloc(sizeof *d * (size_t)T) : NULL;
    int rc = 0;
    if (!cq) rc = out_error(out, "%s", e.msg);
    else if (!d) rc = out_error(out, "out of memory for the logits of %d tokens", T);
    else if (all_logits(co, &pr, p, &e) || all_logits(cq, &pr, q, &e)) rc = out_error(out, "%s", e.msg);
    if (!rc) {
        logits_diff(p, q, T, V, d);
        double kl_sum = 0, kl_max = 0, big = -1;
        int agree = 0, big_at = 0;
        for (int t = 0; t < T; t++) {
            kl_sum += d[t].kl;
            if (d[t].kl > kl_max) kl_max = d[t].kl;
            agree += d[t].top_p == d[t].top_q;
            if (d[t].max_diff > big) big = d[t].max_diff, big_at = t;
        }
        JsonW *w = &out->w;
        const Tokenizer *tok = app->model->tok;
        int64_t bo = model_weight_bytes(app->original), bq = model_weight_bytes(app->model);
        jw_kstr(w, "original", app->original->name);
        jw_kstr(w, "converted", app->model->name);
        json_ints(w, "ids", pr.ids.v, T);
        json_tokens(w, "tokens", tok, pr.ids.v, T);
        jw_key(w, "kl");
        jw_arr(w);
        for (int t = 0; t < T; t++) jw_num(w, d[t].kl);
        jw_arr_end(w);
        jw_key(w, "top1");
        jw_arr(w);
        for (int t = 0; t < T; t++) jw_bool(w, d[t].top_p == d[t].top_q);
        jw_arr_end(w);
        jw_key(w, "max_logit_diffs");
        jw_arr(w);
        for (int t = 0; t < T; t++) jw_num(w, d[t].max_diff);
        jw_arr_end(w);
        jw_knum(w, "kl_mean", kl_sum / T);
        jw_knum(w, "kl_max", kl_max);
        jw_knum(w, "top1_agree", (double)agree / T);
        jw_knum(w, "max_logit_diff", big);
        jw_kint(w, "max_logit_pos", big_at);
        jw_kint(w, "max_logit_token", d[big_at].max_at);
        jw_kint(w, "bytes_original", bo);
        jw_kint(w, "bytes_converted", bq);
        jw_knum(w, "ratio", (double)bq / (double)bo);
        Buf tmp = {0};
        buf_printf(&out->text, "%s against %s\n  pos  token                KL (nats)  top-1  max|dlogit|\n",
                   app->model->name, app->original->name);
        for (int t = 0; t < T; t++) {
            token_piece(tok, pr.ids.v[t], &tmp);
            buf_printf(&out->text, "  %3d  ", t);
            put_cell(&out->text, tmp.data, tmp.len, 20, true); // padded, whitespace shown (· ↵)
            buf_printf(&out->text, " %.3e  %-5s  %.4f\n", d[t].kl, d[t].top_p == d[t].top_q ? "same" : "DIFF",
                       d[t].max_diff);
        }
        // the figure save exports, the Quant view's strip: one row, the KL at each token
        float *kl = xmalloc(sizeof *kl * (size_t)T);
        char **lab = xcalloc((size_t)T, sizeof *lab);
        for (int t = 0; t < T; t++) {
            token_piece(tok, pr.ids.v[t], &tmp);
            lab[t] = xstrdup(tmp.data ? tmp.data : "");
            kl[t] = (float)d[t].kl;
        }
        char title[200];
        static const char *const row[1] = {"KL"};
        snprintf(title, sizeof title, "%s against %s: KL (nats) of the next-token distribution at each token",
                 app->model->name, app->original->name);
        app_set_figure(app, kl, 1, T, row, (const char *const *)lab, false, title);
        for (int t = 0; t < T; t++) free(lab[t]);
        free(lab), free(kl);
        buf_free(&tmp);
        buf_printf(&out->text,
                   "mean KL %.3e, max %.3e; top-1 agrees at %d of %d; largest logit change %.4f (position %d); "
                   "weights %.2f MB -> %.2f MB (%.1f%%)\n",
                   kl_sum / T, kl_max, agree, T, big, big_at, bo / 1e6, bq / 1e6, 100.0 * bq / bo);
    }
    free(p), free(q), free(d);
    prompt_free(&pr);
    return rc;
}

// Why file may not be written by export gguf, or NULL: an existing file that is not a GGUF (a
// checkpoint's model.safetensors was written over without a word), or a second GGUF in a model's
// folder that opens by its single GGUF file, the loaded model's (opened by its folder or name) or
// an installed one's (SmolLM2's folder then refused to open as "holds 2 GGUF files", and so did
// every replay of its runs).
static const char *export_refusal(const Model *m, const char *file, char *why, size_t cap) {
    if (fs_is_file(file)) {
        FILE *f = fopen(file, "rb");
        char magic[4] = {0};
        bool gguf = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
        if (f) fclose(f);
        if (!gguf) {
            snprintf(why, cap, "'%s' exists and is not a GGUF file: export writes over a GGUF only (remove it first, "
                               "or choose another name)", file);
            return why;
        }
    }
    char *dir = fs_dirname(file), target[PATH_MAX], model_dir[PATH_MAX], inst[PATH_MAX];
    bool have = realpath(dir, target) != NULL;
    free(dir);
    if (!have || !dir_has_ext(target, ".gguf", fs_basename(file))) return NULL;
    bool in_model = false;
    // the loaded model's folder when it was opened as one (by its name or folder); one opened by
    // its file's path is a file among others there
    if (m && m->path && !m->builtin && fs_is_dir(m->path))
        in_model = realpath(m->path, model_dir) && !strcmp(model_dir, target);
    char *models = models_dir(), *parent = fs_dirname(target);
    bool installed = models && parent && realpath(models, inst) && !strcmp(inst, parent);
    free(models), free(parent);
    if (!in_model && !installed) return NULL;
    snprintf(why, cap, "'%s' is the folder of %s, which opens by its one GGUF file: a second one there would leave it "
                       "unopenable by its folder or name (choose another folder)", target,
             in_model ? "the loaded model" : "an installed model");
    return why;
}

int export_gguf(App *app, const Args *a, Out *out) {
    const char *file = args_pos(a, 1)->val, *type = args_opt(a, "type");
    if (args_npos(a) != 2) return out_error(out, "export gguf takes one FILE");
    static const char *const keys[] = {"type", NULL};
    if (args_only(a, keys, "export gguf", out)) return -1;
    static const struct {
        const char *name;
        DType dt;
    } types[] = {{"f32", DT_F32}, {"f16", DT_F16}, {"q8_0", DT_Q8_0}};
    int k = type ? -1 : 0;
    for (int i = 0; type && i < (int)(sizeof types / sizeof *types); i++)
        if (!strcasecmp(type, types[i].name)) k = i;
    if (k < 0) return out_error(out, "export gguf: unknown type '%.40s' (f32, f16 or q8_0)", type);
    GgufExportInfo info;
    Err e = {0};
    // export dispatches without a model: open the default one as commands that need one do
    if (!app->model && app_load_model(app, NULL, NULL, &e)) return out_error(out, "%s", e.msg);
    const Model *m = app->model;
    if (m->path && runlog_hashes(m->path, file))
        return out_error(out, "export gguf: cannot write '%s': it is one of the loaded model's files (choose another name "
                              "or folder: the runs logged from now on would name the new file's hash)", file);
    char why[PATH_MAX + 256];
    if (fs_check_protected(file, &e)) return out_error(out, "export gguf: %s", e.msg);
    if (export_refusal(m, file, why, sizeof why)) return out_error(out, "export gguf: %s", why);
    if (model_export_gguf(m, file, types[k].dt, app->cancel, &info, &e)) return out_error(out, "export gguf: %s", e.msg);
    JsonW *w = &out->w;
    jw_kstr(w, "file", file);
    jw_kstr(w, "what", "gguf");
    jw_kstr(w, "type", types[k].name);
    jw_kstr(w, "arch", m->family->gguf->arch);
    jw_kstr(w, "model", m->name);
    jw_kint(w, "tensors", info.n_tensors);
    jw_kint(w, "kept", info.n_kept);
    jw_kint(w, "bytes", info.bytes);
    buf_printf(&out->text, "%s written to %s as GGUF (%s, %d tensors, %.2f MB of data)\n", m->name, file,
               types[k].name, info.n_tensors, info.bytes / 1e6);
    if (info.n_kept)
        buf_printf(&out->text, "  %d matrices as F16 (rows not whole %d-element blocks)\n", info.n_kept,
                   dtype_block(types[k].dt));
    return 0;
}

static const char *const k_quantize[] = {"embed", NULL};
static const char *const k_compare[] = {"ids", "types", "pair", NULL};

const Command quant_commands[] = {
    {"quantize", cmd_quantize, 1, 1, k_quantize, "quantize " QUANT_NAMES " [embed=false]",
     "Convert the loaded model's matrices in memory: the linear layers of every block, a head transform and an "
     "untied output head (embed=true: the token embedding too, and so a head tied to it); position and "
     "token-type embeddings, norms and biases stay. int8 is the lectures' affine int8 per row "
     "(x_q = round(x/s + Z), x = s (x_q - Z)); q8_0, q4_0, q4_1, q4_k, q6_k are ggml's blocks; off goes back to "
     "the model as loaded. Always converts from the loaded model; reports the error of the weights per layer "
     "(RMS, largest, a histogram).",
     true},
    {"compare", cmd_compare, 0, 1, k_compare, "compare \"TEXT\"|ids=1,2,3 [pair=\"B\"]",
     "Run the model as loaded and the quantized one on a text: per position the KL divergence of the converted "
     "model's next-token distribution from the original's, whether their top-1 tokens agree and the largest "
     "logit change; the bytes of each model's weights.",
     true},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
