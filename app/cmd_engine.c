// cmd_engine.c - the engine commands: model, load, tokenize, logits, generate, attention,
// bench, new-model, set, help, quit (exit, q).
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "cmd.h"
#include "model/newmodel.h"
#include "kern/bound.h"
#include "kern/kernels.h"
#include "kern/ops.h"
#include "kern/pool.h"
#include "analysis/positions.h"
#include "heatmap.h"
#include "base/fs.h"
#include "base/clock.h"

// ---------------------------------------------------------------------------------------
// Shared pieces

// Decoding options on top of the defaults. Returns 0 or -1 (message in out).
int decode_opts(App *app, const Args *a, GenParams *p, bool *seed_given, Out *out) {
    Err e = {0};
    *p = app->gen;
    long long v;
    double f;
    bool b;
    int r;
    if ((r = args_int(a, "max", 0, 1 << 20, &v, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p->max_tokens = (int)v;
    if ((r = args_float(a, "temperature", 0, 100, &f, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p->s.temperature = (float)f;
    if ((r = args_int(a, "top_k", 0, 1 << 24, &v, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p->s.top_k = (int)v;
    if ((r = args_float(a, "top_p", 0, 1, &f, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p->s.top_p = f <= 0 ? 1.0f : (float)f;
    if ((r = args_int(a, "alts", 0, GEN_MAX_ALTS, &v, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p->n_alts = (int)v;
    if ((r = args_bool(a, "truncate", &b, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p->truncate = b;
    if ((r = args_bool(a, "stop", &b, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p->stop_at_eos = b;
    const char *s = args_opt(a, "seed");
    *seed_given = false;
    if (s) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(s, &end, 10);
        if (!*s || *end || errno || *s == '-') return out_error(out, "seed=%.40s: a non-negative integer expected", s);
        if (x >= 1ull << 53) return out_error(out, "seed=%.40s: must be below 2^53 (so that JSON keeps it exact)", s);
        p->s.seed = x;
        *seed_given = true;
    } else if (app->seed_set) {
        *seed_given = true;
    }
    return 0;
}

uint64_t fresh_seed(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    uint64_t x = (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x & ((1ull << 53) - 1); // exact in JSON numbers
}

// Token ids of the prompt: from ids=1,2,3 or from the TEXT argument. Returns 0 or -1.
static int prompt_ids(App *app, const Args *a, IntVec *ids, bool allow_empty, Out *out) {
    const char *list = args_opt(a, "ids");
    const Arg *text = args_pos(a, 0);
    if (list && text) return out_error(out, "give either TEXT or ids=, not both");
    if (list) {
        const char *s = list;
        while (*s) {
            char *end;
            errno = 0;
            long v = strtol(s, &end, 10);
            if (end == s || errno || v < 0 || v > 1 << 30)
                return out_error(out, "ids=%.60s: comma-separated token ids expected", list);
            iv_push(ids, (int)v);
            s = end;
            if (*s == ',') s++;
            else if (*s) return out_error(out, "ids=%.60s: comma-separated token ids expected", list);
        }
        for (int i = 0; i < ids->n; i++)
            if (ids->v[i] >= app->model->cfg.n_vocab)
                return out_error(out, "token id %d is out of range (vocabulary of %d)", ids->v[i], app->model->cfg.n_vocab);
    } else if (text) {
        Err e = {0};
        if (tok_encode(app->model->tok, text->val, text->len, TOK_ADD_SPECIAL | TOK_PARSE_SPECIAL, ids, &e) < 0)
            return out_error(out, "%s", e.msg);
    }
    if (ids->n == 0 && !allow_empty) return out_error(out, "no tokens: give TEXT or ids=");
    return 0;
}

static void piece(const Tokenizer *t, int id, Buf *tmp) {
    buf_clear(tmp);
    tok_piece_display(t, id, tmp);
}

static void json_tokens(JsonW *w, const char *key, const Tokenizer *t, const int *ids, int n) {
    Buf tmp = {0};
    jw_key(w, key);
    jw_arr(w);
    for (int i = 0; i < n; i++) {
        piece(t, ids[i], &tmp);
        jw_strn(w, tmp.data ? tmp.data : "", tmp.len);
    }
    jw_arr_end(w);
    buf_free(&tmp);
}

static void json_ints(JsonW *w, const char *key, const int *v, int n) {
    jw_key(w, key);
    jw_arr(w);
    for (int i = 0; i < n; i++) jw_int(w, v[i]);
    jw_arr_end(w);
}

static long rss_anon_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "RssAnon:", 8)) kb = strtol(line + 8, NULL, 10);
    fclose(f);
    return kb;
}

// ---------------------------------------------------------------------------------------
// model, load

static void model_json(App *app, Out *out) {
    const Model *m = app->model;
    const ModelConfig *c = &m->cfg;
    const Arch *a = &c->a;
    JsonW *w = &out->w;
    jw_kstr(w, "arch", a->name);
    jw_kint(w, "n_layer", c->n_layer);
    jw_kint(w, "n_head", c->n_head);
    jw_kint(w, "n_kv_head", c->n_kv_head);
    jw_kint(w, "head_dim", c->head_dim);
    jw_kint(w, "n_embd", c->n_embd);
    jw_kint(w, "n_ff", c->n_ff);
    jw_kint(w, "n_ctx", c->n_ctx);
    jw_kint(w, "vocab", c->n_vocab);
    jw_kint(w, "params", m->n_params);
    jw_kbool(w, "causal", a->causal);
    jw_kstr(w, "position", pos_kind_name(a->pos));
    if (a->pos == POS_ROTARY) {
        jw_knum(w, "rope_theta", a->rope_theta);
        jw_kint(w, "rope_dim", a->rope_dim ? a->rope_dim : c->head_dim);
    }
    jw_kstr(w, "norm", norm_kind_name(a->norm));
    jw_knum(w, "norm_eps", a->norm_eps);
    jw_kstr(w, "block", a->post_norm ? "post-norm" : "pre-norm");
    jw_kstr(w, "activation", act_kind_name(a->act));
    jw_kbool(w, "fused_qkv", a->fused_qkv);
    jw_kstr(w, "path", m->path);
    jw_kstr(w, "name", m->name);
    jw_kstr(w, "dtype", dtype_name(m->dtype));
    jw_kbool(w, "untrained", m->untrained);
    jw_kbool(w, "builtin", m->builtin);
    jw_kbool(w, "tied", a->tied);
    jw_kint(w, "file_bytes", m->file_bytes);
    jw_kint(w, "threads", app->ctx ? ctx_threads(app->ctx) : app->n_threads > 0 ? app->n_threads : pool_cpus());
    jw_kint(w, "rss_anon_kb", rss_anon_kb());
    jw_kstr(w, "kernels", ops_kernels());
    if (kern_note()) jw_kstr(w, "kernels_note", kern_note());
#if defined(__SANITIZE_ADDRESS__)
    jw_kbool(w, "sanitized", true);
#else
    jw_kbool(w, "sanitized", false);
#endif
    buf_printf(&out->text,
               "%s: %s, %d layers, %d heads (%d key/value), d=%d, context %d, vocabulary %d, %.1fM parameters (%s)%s\n"
               "  %s %s, %s positions, %s, %s\n",
               m->name, a->name, c->n_layer, c->n_head, c->n_kv_head, c->n_embd, c->n_ctx, c->n_vocab,
               (double)m->n_params / 1e6, dtype_name(m->dtype), m->untrained ? ", untrained (random weights)" : "",
               a->causal ? "causal" : "bidirectional", a->post_norm ? "post-norm" : "pre-norm", pos_kind_name(a->pos),
               norm_kind_name(a->norm), act_kind_name(a->act));
}

static int cmd_model(App *app, const Args *a, Out *out) {
    model_json(app, out);
    return 0;
}

static int cmd_load(App *app, const Args *a, Out *out) {
    Err e = {0};
    const Arg *p = args_pos(a, 0);
    const char *tok = args_opt(a, "tokenizer");
    if (app_load_model(app, p->val, tok, &e)) return out_error(out, "%s", e.msg);
    model_json(app, out);
    return 0;
}

// ---------------------------------------------------------------------------------------
// tokenize

static int cmd_tokenize(App *app, const Args *a, Out *out) {
    Err e = {0};
    if (!app->tok && app_load_model(app, NULL, NULL, &e)) return out_error(out, "%s", e.msg);
    const Tokenizer *t = app->tok;
    bool special = true;
    if (args_bool(a, "special", &special, &e) < 0) return out_error(out, "%s", e.msg);
    const Arg *text = args_pos(a, 0);
    IntVec ids = {0};
    unsigned flags = special ? TOK_ADD_SPECIAL | TOK_PARSE_SPECIAL : 0;
    if (tok_encode(t, text->val, text->len, flags, &ids, &e) < 0) {
        iv_free(&ids);
        return out_error(out, "%s", e.msg);
    }
    json_ints(&out->w, "ids", ids.v, ids.n);
    json_tokens(&out->w, "pieces", t, ids.v, ids.n);
    jw_kint(&out->w, "count", ids.n);
    Buf tmp = {0};
    for (int i = 0; i < ids.n; i++) {
        piece(t, ids.v[i], &tmp);
        buf_printf(&out->text, "%6d  ", ids.v[i]);
        // make whitespace visible in the human form
        for (size_t k = 0; k < tmp.len; k++) {
            char ch = tmp.data[k];
            if (ch == ' ') buf_puts(&out->text, "\xc2\xb7");
            else if (ch == '\n') buf_puts(&out->text, "\\n");
            else if (ch == '\t') buf_puts(&out->text, "\\t");
            else if ((unsigned char)ch < 0x20) buf_printf(&out->text, "\\x%02x", (unsigned char)ch);
            else buf_putc(&out->text, ch);
        }
        buf_putc(&out->text, '\n');
    }
    buf_printf(&out->text, "%d tokens\n", ids.n);
    buf_free(&tmp);
    iv_free(&ids);
    return 0;
}

// ---------------------------------------------------------------------------------------
// logits

static int cmd_logits(App *app, const Args *a, Out *out) {
    Err e = {0};
    long long top = 10;
    bool full = false;
    if (args_int(a, "top", 1, 1000, &top, &e) < 0 || args_bool(a, "full", &full, &e) < 0)
        return out_error(out, "%s", e.msg);
    IntVec ids = {0};
    if (prompt_ids(app, a, &ids, false, out)) {
        iv_free(&ids);
        return -1;
    }
    Ctx *c = app_ctx(app, &e);
    int V = app->model->cfg.n_vocab;
    size_t rows = full ? (size_t)ids.n : 1;
    float *lg = c ? malloc(sizeof(float) * rows * (size_t)V) : NULL;
    float *lp = lg ? malloc(sizeof(float) * (size_t)V) : NULL;
    int rc = 0;
    if (!c) rc = out_error(out, "%s", e.msg);
    else if (!lg || !lp) rc = out_error(out, "out of memory");
    if (!rc) {
        ctx_reset(c);
        if (ctx_eval(c, ids.v, ids.n, lg, full, NULL, &e)) rc = out_error(out, "%s", e.msg);
    }
    if (!rc) {
        const float *last = lg + (rows - 1) * (size_t)V;
        log_softmax(last, V, lp);
        int *idx = malloc(sizeof(int) * (size_t)top);
        int n = top_n(last, V, (int)top, idx);
        JsonW *w = &out->w;
        json_ints(w, "ids", ids.v, ids.n);
        json_tokens(w, "tokens", app->model->tok, ids.v, ids.n);
        jw_key(w, "top");
        jw_arr(w);
        Buf tmp = {0};
        for (int i = 0; i < n; i++) {
            piece(app->model->tok, idx[i], &tmp);
            jw_obj(w);
            jw_kint(w, "id", idx[i]);
            jw_key(w, "piece");
            jw_strn(w, tmp.data ? tmp.data : "", tmp.len);
            jw_knum(w, "logit", last[idx[i]]);
            jw_knum(w, "prob", exp(lp[idx[i]]));
            jw_obj_end(w);
            buf_printf(&out->text, "%6d  %-20s  logit %9.4f  p %.4f\n", idx[i], tmp.data ? tmp.data : "", last[idx[i]],
                       exp(lp[idx[i]]));
        }
        jw_arr_end(w);
        buf_free(&tmp);
        free(idx);
        if (full) {
            jw_key(w, "logits");
            jw_arr(w);
            for (size_t r = 0; r < rows; r++) {
                jw_arr(w);
                for (int j = 0; j < V; j++) jw_num(w, lg[r * (size_t)V + j]);
                jw_arr_end(w);
            }
            jw_arr_end(w);
        }
    }
    free(lg);
    free(lp);
    iv_free(&ids);
    return rc;
}

// ---------------------------------------------------------------------------------------
// generate

// Writes a generation's fields (shared with replay and rank through app_generation_json).
void generation_json(App *app, JsonW *w, const GenParams *p, const GenResult *r, const Buf *text, int64_t run_id) {
    const Tokenizer *t = app->model->tok;
    jw_kint(w, "run_id", run_id);
    jw_key(w, "text");
    jw_strn(w, text->data ? text->data : "", text->len);
    json_ints(w, "ids", r->ids.v, r->ids.n);
    jw_key(w, "logprobs");
    jw_arr(w);
    for (int i = 0; i < r->ids.n; i++) jw_num(w, r->steps[i].logprob);
    jw_arr_end(w);
    json_ints(w, "prompt_ids", r->prompt.v, r->prompt.n);
    jw_kint(w, "n_prompt", r->prompt.n);
    jw_kint(w, "truncated", r->n_truncated);
    jw_knum(w, "prefill_tok_s", r->prefill_s > 0 ? r->prompt.n / r->prefill_s : 0);
    int decoded = r->ids.n > 1 ? r->ids.n - 1 : 0; // the first token comes from the prefill
    jw_knum(w, "decode_tok_s", r->decode_s > 0 && decoded ? decoded / r->decode_s : 0);
    jw_knum(w, "prefill_ms", r->prefill_s * 1e3);
    jw_knum(w, "decode_ms", r->decode_s * 1e3);
    jw_kstr(w, "stop_reason", stop_reason_name(r->stop));
    jw_knum(w, "temperature", p->s.temperature);
    jw_kint(w, "top_k", p->s.top_k);
    jw_knum(w, "top_p", p->s.top_p);
    jw_kint(w, "seed", (long long)p->s.seed);
    jw_kint(w, "max", p->max_tokens);
    jw_key(w, "steps");
    jw_arr(w);
    Buf tmp = {0};
    for (int i = 0; i < r->ids.n; i++) {
        const GenStep *s = &r->steps[i];
        jw_obj(w);
        jw_kint(w, "id", s->id);
        piece(t, s->id, &tmp);
        jw_key(w, "piece");
        jw_strn(w, tmp.data ? tmp.data : "", tmp.len);
        jw_knum(w, "logprob", s->logprob);
        jw_key(w, "top");
        jw_arr(w);
        for (int k = 0; k < s->n_alts; k++) {
            jw_obj(w);
            jw_kint(w, "id", s->alt_ids[k]);
            piece(t, s->alt_ids[k], &tmp);
            jw_key(w, "piece");
            jw_strn(w, tmp.data ? tmp.data : "", tmp.len);
            jw_knum(w, "logprob", s->alt_logprobs[k]);
            jw_obj_end(w);
        }
        jw_arr_end(w);
        jw_obj_end(w);
    }
    jw_arr_end(w);
    buf_free(&tmp);
}

static int cmd_generate(App *app, const Args *a, Out *out) {
    GenParams p;
    bool seed_given;
    if (decode_opts(app, a, &p, &seed_given, out)) return -1;
    if (!seed_given) p.s.seed = fresh_seed();
    Err e = {0}, le = {0};
    GenResult r;
    Buf text = {0};
    int64_t run_id = 0;
    int rc;
    const Arg *t = args_pos(a, 0);
    if (args_opt(a, "ids")) {
        IntVec ids = {0};
        rc = prompt_ids(app, a, &ids, false, out);
        if (!rc && app_generate_ids(app, ids.v, ids.n, &p, &r, &text, &e)) rc = out_error(out, "%s", e.msg);
        if (!rc) {
            Buf ptxt = {0};
            tok_decode(app->model->tok, ids.v, ids.n, &ptxt);
            run_id = app_log_run(app, ptxt.data ? ptxt.data : "", ptxt.len, &p, &r, text.data ? text.data : "",
                                 text.len, &le);
            buf_free(&ptxt);
        }
        iv_free(&ids);
        if (rc) {
            buf_free(&text);
            return -1;
        }
    } else {
        if (!t) return out_error(out, "generate: give TEXT (\"\" starts from the beginning-of-text token) or ids=");
        if (app_generate(app, t->val, t->len, &p, &r, &text, &run_id, &le, &e)) {
            buf_free(&text);
            return out_error(out, "%s", e.msg);
        }
    }
    generation_json(app, &out->w, &p, &r, &text, run_id);
    if (le.msg[0]) jw_kstr(&out->w, "log_error", le.msg);
    buf_put_utf8(&out->text, text.data ? text.data : "", text.len);
    buf_putc(&out->text, '\n');
    if (r.stop == STOP_CANCELLED) buf_puts(&out->text, "[stopped]\n");
    if (le.msg[0]) fprintf(stderr, "warning: the run was not logged: %s\n", le.msg);
    gen_result_free(&r);
    buf_free(&text);
    return 0;
}

// ---------------------------------------------------------------------------------------
// attention

typedef struct {
    int layer, head; // -1 = all
    int nl, nh, T;   // layers and heads kept (1 or all)
    float *all;      // [nl, nh, T, T]: only what was asked for
} AttCollect;

// The kept map of (layer, head), or NULL when it was not asked for.
static float *att_map(const AttCollect *ac, int layer, int head) {
    if ((ac->layer >= 0 && layer != ac->layer) || (ac->head >= 0 && head != ac->head)) return NULL;
    int li = ac->layer >= 0 ? 0 : layer, hi = ac->head >= 0 ? 0 : head;
    return ac->all + ((size_t)li * ac->nh + hi) * (size_t)ac->T * ac->T;
}

static void att_trace(void *user, const TracePoint *p) {
    AttCollect *ac = user;
    if (p->kind != TRACE_ATT_PROBS) return;
    int T = ac->T;
    for (int h = 0; h < p->n_head; h++)
        for (int i = 0; i < p->n_q; i++) {
            float *map = att_map(ac, p->layer, h);
            if (!map) continue;
            float *dst = map + (size_t)(p->pos0 + i) * T;
            const float *src = p->data + ((size_t)h * p->n_q + i) * p->n_kv;
            memcpy(dst, src, sizeof(float) * (size_t)p->n_kv);
        }
}

static int layer_head_opt(const Args *a, const char *key, int n, int *out, Out *o) {
    const char *v = args_opt(a, key);
    if (!v) {
        *out = 0;
        return 0;
    }
    if (!strcmp(v, "all")) {
        *out = -1;
        return 0;
    }
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < 0 || x >= n) return out_error(o, "%s=%.20s: must be 0..%d or all", key, v, n - 1);
    *out = (int)x;
    return 0;
}

static void json_matrix(JsonW *w, const float *m, int T) {
    jw_arr(w);
    for (int i = 0; i < T; i++) {
        jw_arr(w);
        for (int j = 0; j < T; j++) jw_num(w, m[(size_t)i * T + j]);
        jw_arr_end(w);
    }
    jw_arr_end(w);
}

static int cmd_attention(App *app, const Args *a, Out *out) {
    const ModelConfig *c = &app->model->cfg;
    AttCollect ac = {0};
    if (layer_head_opt(a, "layer", c->n_layer, &ac.layer, out) || layer_head_opt(a, "head", c->n_head, &ac.head, out))
        return -1;
    IntVec ids = {0};
    if (prompt_ids(app, a, &ids, false, out)) {
        iv_free(&ids);
        return -1;
    }
    Err e = {0};
    Ctx *x = app_ctx(app, &e);
    if (!x) {
        iv_free(&ids);
        return out_error(out, "%s", e.msg);
    }
    int T = ids.n;
    if (T > c->n_ctx) {
        iv_free(&ids);
        return out_error(out, "%d tokens do not fit in the context of %d", T, c->n_ctx);
    }
    ac.nl = ac.layer < 0 ? c->n_layer : 1;
    ac.nh = ac.head < 0 ? c->n_head : 1;
    ac.T = T;
    double bytes = 4.0 * ac.nl * ac.nh * (double)T * T;
    if (bytes > 2e9) {
        iv_free(&ids);
        return out_error(out, "%d x %d attention maps of %d tokens need %.1f GB: ask for one layer or head", ac.nl, ac.nh,
                         T, bytes / 1e9);
    }
    ac.all = calloc((size_t)ac.nl * ac.nh * T * T, sizeof(float));
    if (!ac.all) {
        iv_free(&ids);
        return out_error(out, "out of memory for %d x %d attention maps", c->n_layer * c->n_head, T);
    }
    Trace tr = {TRACE_ATT_PROBS, ac.layer >= 0 ? 1ull << ac.layer : 0, att_trace, &ac};
    ctx_reset(x);
    if (ctx_eval(x, ids.v, ids.n, NULL, false, &tr, &e)) {
        free(ac.all);
        iv_free(&ids);
        return out_error(out, "%s", e.msg);
    }
    JsonW *w = &out->w;
    json_tokens(w, "tokens", app->model->tok, ids.v, ids.n);
    json_ints(w, "ids", ids.v, ids.n);
    int L0 = ac.layer < 0 ? 0 : ac.layer, H0 = ac.head < 0 ? 0 : ac.head;
    jw_kint(w, "layer", L0);
    jw_kint(w, "head", H0);
    size_t TT = (size_t)T * T;
    jw_key(w, "matrix");
    json_matrix(w, att_map(&ac, L0, H0), T);
    if (ac.layer < 0 || ac.head < 0) {
        jw_key(w, "layers");
        jw_arr(w);
        for (int l = 0; l < c->n_layer; l++) {
            if (ac.layer >= 0 && l != ac.layer) continue;
            jw_arr(w);
            for (int h = 0; h < c->n_head; h++) {
                if (ac.head >= 0 && h != ac.head) continue;
                json_matrix(w, att_map(&ac, l, h), T);
            }
            jw_arr_end(w);
        }
        jw_arr_end(w);
    }
    // human form: the selected matrix as a table
    const float *mtx = att_map(&ac, L0, H0);
    {
        float *shown = malloc(sizeof(float) * TT);
        char **labels = calloc((size_t)T, sizeof *labels);
        Buf lb = {0};
        for (int i = 0; shown && labels && i < T; i++) {
            for (int j = 0; j < T; j++) shown[(size_t)i * T + j] = c->a.causal && j > i ? NAN : mtx[(size_t)i * T + j];
            piece(app->model->tok, ids.v[i], &lb);
            labels[i] = strdup(lb.data ? lb.data : "");
        }
        char title[160];
        snprintf(title, sizeof title, "%s: layer %d head %d", app->model->name, L0, H0);
        if (shown && labels) app_set_figure(app, shown, T, T, (const char *const *)labels, (const char *const *)labels, false, title);
        for (int i = 0; labels && i < T; i++) free(labels[i]);
        free(labels);
        free(shown);
        buf_free(&lb);
    }
    buf_printf(&out->text, "layer %d head %d (rows: queries, columns: keys)\n", L0, H0);
    Buf tmp = {0};
    for (int i = 0; i < T; i++) {
        piece(app->model->tok, ids.v[i], &tmp);
        buf_printf(&out->text, "%-12.12s", tmp.data ? tmp.data : "");
        for (int j = 0; j < (c->a.causal ? i + 1 : T); j++) buf_printf(&out->text, " %5.3f", mtx[(size_t)i * T + j]);
        buf_putc(&out->text, '\n');
    }
    buf_free(&tmp);
    free(ac.all);
    iv_free(&ids);
    return 0;
}

// ---------------------------------------------------------------------------------------
// bench

// Prefill and generation speed, each with the bound it is measured against in the same run
// (kern/bound.h): generation as weight bytes read per token x tok/s over the read bandwidth,
// prefill as its linear layers' FLOP/s over sgemm's at the same shapes. Each repetition
// measures both bounds again; every figure is the best over the repetitions.
static int cmd_bench(App *app, const Args *a, Out *out) {
    Err e = {0};
    const ModelConfig *c = &app->model->cfg;
    long long np = 512, ng = 128, reps = 3;
    if (args_int(a, "prompt", 1, 1 << 20, &np, &e) < 0 || args_int(a, "gen", 0, 1 << 20, &ng, &e) < 0 ||
        args_int(a, "reps", 1, 100, &reps, &e) < 0)
        return out_error(out, "%s", e.msg);
    if (np + ng > c->n_ctx)
        return out_error(out, "prompt=%lld + gen=%lld exceed the context of %d", np, ng, c->n_ctx);
    Ctx *x = app_ctx(app, &e);
    if (!x) return out_error(out, "%s", e.msg);
    Pool *pool = ctx_pool(x);
    int V = c->n_vocab;
    int *ids = malloc(sizeof(int) * (size_t)np);
    float *lg = malloc(sizeof(float) * (size_t)V);
    if (!ids || !lg) {
        free(ids), free(lg);
        return out_error(out, "out of memory");
    }
    Rng r;
    rng_seed(&r, 42);
    for (int i = 0; i < np; i++) ids[i] = (int)(rng_next(&r) % (uint64_t)V);
    // warm-up (touch every weight once), counting what a prefill and one decoding step do
    LinearCount pre, dec;
    int rc = 0;
    ctx_reset(x);
    linear_count(pool, &pre);
    if (ctx_eval(x, ids, (int)np, lg, false, NULL, &e)) rc = out_error(out, "%s", e.msg);
    linear_count(pool, &dec);
    int id = argmax(lg, V);
    if (!rc && ctx_eval(x, &id, 1, lg, false, NULL, &e)) rc = out_error(out, "%s", e.msg);
    linear_count(pool, NULL);
    double best_p = 1e30, best_g = 1e30, read_bs = 0, sgemm_fs = 0;
    enum { READ_MB = 512 }; // well beyond the caches of the machines qkv runs on
    for (int rep = 0; rep < reps && !rc; rep++) {
        double bs, fs;
        if (bound_read_bytes_s(pool, (size_t)READ_MB << 20, 3, &bs, &e) ||
            bound_sgemm_flops_s(pool, pre.shapes, pre.n_shapes, 1, &fs, &e)) {
            rc = out_error(out, "%s", e.msg);
            break;
        }
        read_bs = bs > read_bs ? bs : read_bs;
        sgemm_fs = fs > sgemm_fs ? fs : sgemm_fs;
        ctx_reset(x);
        double t0 = clock_now();
        if (ctx_eval(x, ids, (int)np, lg, false, NULL, &e)) rc = out_error(out, "%s", e.msg);
        double t1 = clock_now();
        for (int g = 0; g < ng && !rc; g++) {
            id = argmax(lg, V);
            if (ctx_eval(x, &id, 1, lg, false, NULL, &e)) rc = out_error(out, "%s", e.msg);
            if (app->cancel && *app->cancel) break;
        }
        double t2 = clock_now();
        if (t1 - t0 < best_p) best_p = t1 - t0;
        if (ng && t2 - t1 < best_g) best_g = t2 - t1;
        if (app->cancel && *app->cancel) break;
    }
    free(ids);
    free(lg);
    if (rc) return -1;
    double pt = np / best_p, gt = ng ? ng / best_g : 0;
    // the prefill's work: its linear layers as run, plus attention's two products (q k^T and
    // p v: 2 x head_dim multiply-adds per visible query-key pair, every head and layer)
    double pairs = c->a.causal ? np * (np + 1) / 2.0 : (double)np * np;
    double att_flops = 2.0 * 2.0 * c->n_layer * c->n_head * c->head_dim * pairs;
    double pflops = pre.mm_flops + pre.mv_flops + att_flops, wbytes = dec.mv_bytes;
    double bw_frac = read_bs > 0 ? wbytes * gt / read_bs : 0, pf_frac = sgemm_fs > 0 ? pflops / best_p / sgemm_fs : 0;
    // the F32 KV cache a generated token reads on average besides the weights (keys and values,
    // every layer, over the mean context of the generation)
    double kv_bytes = 2.0 * c->n_layer * c->n_kv_head * c->head_dim * sizeof(float) * (np + (ng + 1) / 2.0);
    JsonW *w = &out->w;
    jw_knum(w, "prefill_tok_s", pt);
    jw_knum(w, "decode_tok_s", gt);
    jw_kint(w, "threads", ctx_threads(x));
    jw_kint(w, "prompt", np);
    jw_kint(w, "gen", ng);
    jw_kint(w, "reps", reps);
    jw_kstr(w, "model", app->model->name);
    jw_kstr(w, "dtype", dtype_name(app->model->dtype));
    jw_kint(w, "params", app->model->n_params);
    jw_kstr(w, "kernels", ops_kernels());
    if (kern_note()) jw_kstr(w, "kernels_note", kern_note());
    jw_knum(w, "read_gb_s", read_bs / 1e9);
    jw_knum(w, "sgemm_gflops", sgemm_fs / 1e9);
    jw_knum(w, "weight_bytes_per_token", wbytes);
    jw_knum(w, "kv_bytes_per_token", kv_bytes);
    jw_knum(w, "decode_bw_fraction", bw_frac);
    jw_knum(w, "decode_bw_fraction_with_kv", read_bs > 0 ? (wbytes + kv_bytes) * gt / read_bs : 0);
    jw_knum(w, "prefill_flops", pflops);
    jw_knum(w, "prefill_attention_flops", att_flops);
    jw_knum(w, "prefill_gflops", pflops / best_p / 1e9);
    jw_knum(w, "prefill_sgemm_fraction", pf_frac);
    buf_printf(&out->text, "%s (%s, %.1fM params), %d threads, %s kernels (best of %lld)\n", app->model->name,
               dtype_name(app->model->dtype), app->model->n_params / 1e6, ctx_threads(x), ops_kernels(), reps);
    buf_printf(&out->text, "  prefill %lld tokens: %.1f tok/s, %.1f GFLOP/s = %.0f%% of sgemm's %.1f GFLOP/s\n", np, pt,
               pflops / best_p / 1e9, 100 * pf_frac, sgemm_fs / 1e9);
    buf_printf(&out->text, "  generation %lld tokens: %.1f tok/s x %.0f MB of weights = %.0f%% of the %.1f GB/s read "
               "bandwidth (%.0f%% with the KV cache)\n", ng, gt, wbytes / 1e6, 100 * bw_frac, read_bs / 1e9,
               read_bs > 0 ? 100 * (wbytes + kv_bytes) * gt / read_bs : 0);
    if (kern_note()) buf_printf(&out->text, "  note: %s\n", kern_note());
    return 0;
}

// ---------------------------------------------------------------------------------------
// new-model

static int cmd_new_model(App *app, const Args *a, Out *out) {
    (void)app;
    const Arg *fam = args_pos(a, 0);
    const Family *f = family_find(fam->val);
    if (!f || !f->write_config) {
        Buf known = {0};
        for (int i = 0; family_at(i); i++)
            if (family_at(i)->write_config) buf_printf(&known, "%s%s", known.len ? ", " : "", family_at(i)->model_type);
        out_error(out, "new-model: unknown family '%.20s' (%s)", fam->val, known.data ? known.data : "");
        buf_free(&known);
        return -1;
    }
    const char *dir = args_opt(a, "out");
    if (!dir || !*dir) return out_error(out, "new-model: out=DIR is required");
    NewModelParams p = newmodel_defaults();
    p.family = f->model_type;
    p.masks = f->hf->mask_buffer != NULL;
    Err e = {0};
    long long v;
    double x;
    bool b;
    int r;
#define INT_OPT(k, lo, hi, field)                                            \
    if ((r = args_int(a, k, lo, hi, &v, &e)) < 0) return out_error(out, "%s", e.msg); \
    if (r) p.field = (int)v;
    INT_OPT("layers", 1, 200, n_layer)
    INT_OPT("heads", 1, 1024, n_head)
    INT_OPT("d", 1, 16384, n_embd)
    INT_OPT("ctx", 1, 65536, n_ctx)
    INT_OPT("vocab", 1, 1 << 22, n_vocab)
    INT_OPT("shards", 1, 64, shards)
    INT_OPT("kv_heads", 1, 1024, n_kv_head)
    INT_OPT("ff", 1, 65536, n_ff)
#undef INT_OPT
    if ((r = args_int(a, "seed", 0, (1ll << 53), &v, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p.seed = (uint64_t)v;
    if ((r = args_float(a, "std", 0, 99, &x, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p.std = (float)x;
    if ((r = args_float(a, "theta", 1, 1e9, &x, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p.rope_theta = (float)x;
    if ((r = args_bool(a, "tied", &b, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p.tied = b;
    if ((r = args_bool(a, "masks", &b, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p.masks = b;
    const char *dt = args_opt(a, "dtype");
    if (dt) {
        if (!strcasecmp(dt, "f32")) p.dtype = DT_F32;
        else if (!strcasecmp(dt, "f16")) p.dtype = DT_F16;
        else if (!strcasecmp(dt, "bf16")) p.dtype = DT_BF16;
        else return out_error(out, "dtype=%.20s: f32, f16 or bf16 expected", dt);
    }
    const char *prefix = args_opt(a, "prefix");
    if (prefix) p.prefix = prefix;
    else p.prefix = f->hf->prefixes[0];
    if (p.n_embd % p.n_head) return out_error(out, "d=%d must be a multiple of heads=%d", p.n_embd, p.n_head);
    if (newmodel_write(dir, &p, args_opt(a, "tok"), &e)) return out_error(out, "%s", e.msg);
    JsonW *w = &out->w;
    jw_kstr(w, "path", dir);
    jw_kint(w, "n_layer", p.n_layer);
    jw_kint(w, "n_head", p.n_head);
    jw_kint(w, "n_embd", p.n_embd);
    jw_kint(w, "n_ctx", p.n_ctx);
    jw_kint(w, "seed", (long long)p.seed);
    jw_kstr(w, "dtype", dtype_name(p.dtype));
    jw_kstr(w, "family", f->model_type);
    buf_printf(&out->text, "wrote an untrained %s (%d layers, %d heads, d=%d, context %d, %s) to %s\n", f->model_type,
               p.n_layer, p.n_head, p.n_embd, p.n_ctx, dtype_name(p.dtype), dir);
    return 0;
}

// ---------------------------------------------------------------------------------------
// pe

static int cmd_pe(App *app, const Args *a, Out *out) {
    Err e = {0};
    const char *kind = args_pos(a, 0)->val;
    bool learned = !strcmp(kind, "learned");
    if (!learned && strcmp(kind, "sinusoidal")) return out_error(out, "pe: sinusoidal or learned expected, not '%.20s'", kind);
    if (learned && !app->model && app_load_model(app, NULL, NULL, &e)) return out_error(out, "%s", e.msg);
    long long len = learned ? app->model->cfg.n_ctx : 64, dim = learned ? app->model->cfg.n_embd : 128;
    if (learned && len > 256) len = 256;
    bool cos = false;
    if (args_int(a, "len", 1, 8192, &len, &e) < 0 || args_bool(a, "cosine", &cos, &e) < 0) return out_error(out, "%s", e.msg);
    if (!learned && args_int(a, "dim", 2, 8192, &dim, &e) < 0) return out_error(out, "%s", e.msg);
    if (learned && args_opt(a, "dim")) return out_error(out, "pe learned: dim is the model's (n_embd)");
    float *m = malloc(sizeof(float) * (size_t)len * (size_t)dim);
    float *c = cos ? malloc(sizeof(float) * (size_t)len * (size_t)len) : NULL;
    if (!m || (cos && !c)) {
        free(m), free(c);
        return out_error(out, "out of memory");
    }
    if (learned) {
        if (pe_learned(app->model, m, (int)len, &e)) {
            free(m), free(c);
            return out_error(out, "%s", e.msg);
        }
    } else {
        pe_sinusoidal(m, (int)len, (int)dim);
    }
    int cols = cos ? (int)len : (int)dim;
    const float *show = m;
    if (cos) pe_cosine(c, m, (int)len, (int)dim), show = c;
    // published only once computed: `save` exports it
    char title[96];
    snprintf(title, sizeof title, "%s position %s", kind, cos ? "cosine similarity" : "encoding");
    app_set_figure(app, show, (int)len, cols, NULL, NULL, !cos, title);
    JsonW *w = &out->w;
    jw_kstr(w, "kind", kind);
    jw_kint(w, "len", len);
    jw_kint(w, "dim", dim);
    jw_key(w, "matrix");
    jw_arr(w);
    for (long long i = 0; i < len; i++) {
        jw_arr(w);
        for (int j = 0; j < cols; j++) jw_num(w, show[(size_t)i * cols + j]);
        jw_arr_end(w);
    }
    jw_arr_end(w);
    buf_printf(&out->text, "%s position %s: %lld positions x %d %s (use --json for the values)\n", kind,
               cos ? "cosine similarity" : "encoding", len, cols, cos ? "positions" : "dimensions");
    free(m), free(c);
    return 0;
}

// ---------------------------------------------------------------------------------------
// save

static int cmd_save(App *app, const Args *a, Out *out) {
    const char *path = args_pos(a, 0)->val;
    const Figure *f = &app->fig;
    if (!f->v) return out_error(out, "save: nothing to save yet (run attention or pe, or open a view)");
    size_t n = strlen(path);
    bool svg = n > 4 && !strcasecmp(path + n - 4, ".svg"), csv = n > 4 && !strcasecmp(path + n - 4, ".csv");
    if (!svg && !csv) return out_error(out, "save: '%.200s': the name must end in .svg or .csv", path);
    Heatmap hm = {f->v, f->rows, f->cols, (const char *const *)f->row_labels, (const char *const *)f->col_labels,
                  f->diverging ? CMAP_DIVERGING : CMAP_SEQUENTIAL, 0, 0};
    Buf b = {0};
    Err e = {0};
    int rc = svg ? heatmap_to_svg(&b, &hm, NULL, &e) : heatmap_to_csv(&b, &hm, NULL, &e);
    if (!rc) rc = fs_write_atomic(path, b.data, b.len, &e);
    buf_free(&b);
    if (rc) return out_error(out, "%s", e.msg);
    jw_kstr(&out->w, "file", path);
    jw_kstr(&out->w, "format", svg ? "svg" : "csv");
    jw_kint(&out->w, "rows", f->rows);
    jw_kint(&out->w, "cols", f->cols);
    jw_kstr(&out->w, "title", f->title);
    buf_printf(&out->text, "saved %s (%d x %d) to %s\n", f->title, f->rows, f->cols, path);
    return 0;
}

// ---------------------------------------------------------------------------------------
// set, help

static void settings_json(App *app, Out *out) {
    JsonW *w = &out->w;
    const GenParams *g = &app->gen;
    char seed[32] = "random";
    if (app->seed_set) snprintf(seed, sizeof seed, "%llu", (unsigned long long)g->s.seed);
    jw_knum(w, "temperature", g->s.temperature);
    jw_kint(w, "top_k", g->s.top_k);
    jw_knum(w, "top_p", g->s.top_p);
    if (app->seed_set) jw_kint(w, "seed", (long long)g->s.seed);
    else jw_key(w, "seed"), jw_null(w);
    jw_kint(w, "max", g->max_tokens);
    jw_kint(w, "alts", g->n_alts);
    jw_kbool(w, "truncate", g->truncate);
    jw_kbool(w, "stop", g->stop_at_eos);
    int threads = app->n_threads > 0 ? app->n_threads : pool_cpus();
    jw_kint(w, "threads", threads);
    jw_kstr(w, "annotator", app->annotator ? app->annotator : "");
    buf_printf(&out->text,
               "temperature %g  top_k %d  top_p %g  seed %s  max %d  alts %d  truncate %s  stop %s  threads %d  "
               "annotator %s\n",
               g->s.temperature, g->s.top_k, g->s.top_p, seed, g->max_tokens, g->n_alts, g->truncate ? "true" : "false",
               g->stop_at_eos ? "true" : "false", threads, app->annotator ? app->annotator : "(none)");
}

static int cmd_set(App *app, const Args *a, Out *out) {
    const Arg *k = args_pos(a, 0), *v = args_pos(a, 1);
    if (!k) {
        settings_json(app, out);
        return 0;
    }
    if (!v) return out_error(out, "set %s: a value is expected (set KEY VALUE)", k->val);
    if (!strcmp(k->val, "annotator")) {
        free(app->annotator);
        app->annotator = strndup(v->val, v->len);
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
        if (*end || n < 1 || n > 256) return out_error(out, "set threads: 1..256 expected");
        app->n_threads = (int)n;
        ctx_free(app->ctx);
        app->ctx = NULL;
        settings_json(app, out);
        return 0;
    }
    // decoding keys go through the same parser as the per-command options
    static const char *const keys[] = {"temperature", "top_k", "top_p", "seed", "max", "alts", "truncate", "stop", NULL};
    bool known = false;
    for (int i = 0; keys[i]; i++) known |= !strcmp(keys[i], k->val);
    if (!known) return out_error(out, "set: unknown setting '%.40s' (temperature, top_k, top_p, seed, max, alts, truncate, stop, threads, annotator)", k->val);
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
        const Command *c = cmd_find(name->val[0] == ':' ? name->val + 1 : name->val);
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
    for (int i = 0; (c = cmd_at(i)); i++) {
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
    return 0;
}

// ---------------------------------------------------------------------------------------

static const char *const k_none[] = {NULL};
static const char *const k_load[] = {"tokenizer", NULL};
static const char *const k_tokenize[] = {"special", NULL};
static const char *const k_logits[] = {"ids", "top", "full", NULL};
static const char *const k_generate[] = {"ids", "max", "temperature", "top_k", "top_p", "seed", "alts", "truncate", "stop", NULL};
static const char *const k_attention[] = {"ids", "layer", "head", NULL};
static const char *const k_pe[] = {"len", "dim", "cosine", NULL};
static const char *const k_bench[] = {"prompt", "gen", "reps", NULL};
static const char *const k_new[] = {"layers", "heads", "kv_heads", "d", "ff", "ctx", "vocab", "seed", "std", "theta",
                                    "dtype", "tok", "tied", "prefix", "shards", "masks", "out", NULL};

const Command engine_commands[] = {
    {"model", cmd_model, 0, 0, k_none, "model", "Show the current model: architecture, sizes, parameters, file.", true},
    {"load", cmd_load, 1, 1, k_load, "load PATH [tokenizer=PATH]",
     "Open a model: an HF directory (config.json, model.safetensors or shards, tokenizer files) or a single "
     ".safetensors file with its tokenizer beside it. On failure the current model stays.",
     false},
    {"tokenize", cmd_tokenize, 1, 1, k_tokenize, "tokenize \"TEXT\" [special=true|false]",
     "Split TEXT into tokens: ids and pieces. special=false treats special-token text such as <|endoftext|> as "
     "plain text and adds no BOS/CLS/SEP; the default follows the model.",
     false},
    {"logits", cmd_logits, 0, 1, k_logits, "logits \"TEXT\"|ids=1,2,3 [top=K] [full=true]",
     "Next-token logits and probabilities at the last position (top K, default 10); full=true adds every "
     "position's logits.",
     true},
    {"generate", cmd_generate, 0, 1, k_generate,
     "generate \"TEXT\"|ids=... [max=N temperature=T top_k=K top_p=P seed=S alts=N truncate=true stop=false]",
     "Complete TEXT. temperature=0 is greedy; a seed makes sampling repeatable (without one a random seed is "
     "chosen and reported). Each token comes with its log-probability and the top alternatives (alts). "
     "\"\" starts from the beginning-of-text token. The run is logged to the database.",
     true},
    {"attention", cmd_attention, 0, 1, k_attention, "attention \"TEXT\"|ids=... [layer=L|all] [head=H|all]",
     "Attention probabilities of one head (rows: query positions, columns: keys; masked entries are 0). "
     "layer=all and/or head=all add every selected map as layers[layer][head].",
     true},
    {"pe", cmd_pe, 1, 1, k_pe, "pe sinusoidal|learned [len=L dim=D cosine=true]",
     "Positional encodings as a matrix (rows = positions): the original Transformer's sinusoids for any length "
     "and width, or the current model's learned position embeddings. cosine=true gives the position x position "
     "cosine-similarity matrix instead.",
     false},
    {"save", cmd_save, 1, 1, k_none, "save FILE.svg|FILE.csv",
     "Export what was last shown as a heatmap (the attention map or position matrix of the last command, or the "
     "TUI's current view) as SVG (exact colours, labels, legend) or CSV (labels and values).",
     false},
    {"bench", cmd_bench, 0, 0, k_bench, "bench [prompt=512 gen=128 reps=3]",
     "Measure prefill and generation speed (tokens per second, best of reps) on the current model, with the "
     "machine's bounds measured in the same run: generation as a fraction of the memory read bandwidth (weight "
     "bytes per token x tok/s), prefill as a fraction of sgemm's GFLOP/s at the model's shapes.",
     true},
    {"new-model", cmd_new_model, 1, 1, k_new,
     "new-model FAMILY layers=L heads=H d=D ctx=C seed=S out=DIR [kv_heads=K ff=F theta=T std=0.02 "
     "dtype=f32|f16|bf16 vocab=V tok=DIR tied=true prefix=P shards=N masks=true]",
     "Write an untrained model of a family (gpt2, ...) with random weights in its real HF layout (config.json, "
     "model.safetensors or N shards with an index, the tokenizer files copied from tok=DIR, else the family's "
     "small default tokenizer). kv_heads: grouped-query attention; ff: feed-forward width (4 d); theta: rotary base; "
     "prefix: one the family's files use (transformer. for GPT-2).",
     false},
    {"set", cmd_set, 0, 2, k_none, "set [KEY VALUE]",
     "Decoding defaults and session settings: temperature, top_k, top_p, seed (a number or random), max, alts, "
     "truncate, stop, threads, annotator. Without arguments, show them.",
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
