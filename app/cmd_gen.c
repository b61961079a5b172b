// cmd_gen.c - the generation commands: logits, generate, bench.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdutil.h"
#include "commands.h"
#include "reward_model.h"
#include "base/clock.h"
#include "base/mem.h"
#include "kern/bound.h"
#include "kern/kernels.h"
#include "kern/ops.h"
#include "kern/pool.h"
#include "analysis/embed.h"
#include "base/mem.h"
#include "eval/sample.h"

static int cmd_logits(App *app, const Args *a, Out *out) {
    Err e = {0};
    long long top = 10;
    bool full = false;
    if (args_int(a, "top", 1, 1000, &top, &e) < 0 || args_bool(a, "full", &full, &e) < 0)
        return out_error(out, "%s", e.msg);
    Prompt pr;
    if (prompt_read(app, a, &pr, false, out)) {
        prompt_free(&pr);
        return -1;
    }
    IntVec ids = pr.ids; // borrowed from pr
    Ctx *c = app_ctx(app, &e);
    int V = app->model->cfg.n_vocab;
    size_t rows = full ? (size_t)ids.n : 1;
    // sized by the text and the vocabulary (mem.h rule 1)
    float *lg = c ? malloc(mem_mul(mem_mul(rows, (size_t)V), sizeof(float))) : NULL;
    float *lp = lg ? malloc(mem_mul((size_t)V, sizeof(float))) : NULL;
    int rc = 0;
    if (!c) rc = out_error(out, "%s", e.msg);
    else if (!lg || !lp) rc = out_error(out, "out of memory for the logits of %zu positions x %d tokens", rows, V);
    if (!rc) {
        ctx_reset(c);
        if (ctx_eval_types(c, ids.v, PROMPT_TYPES(&pr), ids.n, lg, full, NULL, &e)) rc = out_error(out, "%s", e.msg);
    }
    if (!rc) {
        const float *last = lg + (rows - 1) * (size_t)V;
        log_softmax(last, V, lp);
        int *idx = xmalloc(sizeof(int) * (size_t)top); // top <= 1000
        int n = top_n(last, V, (int)top, idx);
        JsonW *w = &out->w;
        json_ints(w, "ids", ids.v, ids.n);
        json_tokens(w, "tokens", app->model->tok, ids.v, ids.n);
        jw_key(w, "top");
        jw_arr(w);
        Buf tmp = {0};
        for (int i = 0; i < n; i++) {
            token_piece(app->model->tok, idx[i], &tmp);
            jw_obj(w);
            jw_kint(w, "id", idx[i]);
            jw_key(w, "piece");
            jw_strn(w, tmp.data ? tmp.data : "", tmp.len);
            jw_knum(w, "logit", last[idx[i]]);
            jw_knum(w, "prob", exp(lp[idx[i]]));
            jw_obj_end(w);
            buf_printf(&out->text, "%6d  ", idx[i]);
            put_cell(&out->text, tmp.data, tmp.len, 20, true);
            buf_printf(&out->text, "  logit %9.4f  p %.4f\n", last[idx[i]], exp(lp[idx[i]]));
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
    prompt_free(&pr);
    return rc;
}

static int cmd_generate(App *app, const Args *a, Out *out) {
    GenParams p;
    bool seed_given;
    if (decode_opts(app, a, &p, &seed_given, out)) return -1;
    if (!seed_given) p.s.seed = fresh_seed();
    Err e = {0};
    Generation g;
    const Arg *t = args_pos(a, 0);
    Prompt pr = {0};
    bool by_ids = args_opt(a, "ids") != NULL;
    if (!by_ids && !t) return out_error(out, "generate: give TEXT (\"\" starts from the beginning-of-text token) or ids=");
    if (by_ids && prompt_read(app, a, &pr, false, out)) {
        prompt_free(&pr);
        return -1;
    }
    Buf chat = {0};
    TokChatKind kind = TOK_CHAT_NONE;
    if (!by_ids && chat_read(app->model->tok, a, t->val, t->len, &chat, &kind, out) < 0) return -1;
    const char *text = kind ? chat.data : t ? t->val : NULL;
    size_t len = kind ? chat.len : t ? t->len : 0;
    long long best_of = 1;
    int got = args_int(a, "best_of", 1, 64, &best_of, &e);
    const char *rdir = args_opt(a, "reward");
    RewardModel *rm = NULL;
    int rc = 0;
    if (best_of > 1 && !seed_given) p.s.seed %= (1ull << 53) - (uint64_t)best_of; // room for the N seeds
    if (got < 0) rc = out_error(out, "generate: %s", e.msg);
    else if (best_of > 1 && seed_span("generate", p.s.seed, best_of, "candidate", out)) rc = -1;
    // the reward model as reward score takes it: reward=DIR, set reward DIR, the latest reward run's
    else if ((best_of > 1 || rdir) && !(rm = reward_judge_open(app, rdir, "reward", "generate", out))) rc = -1;
    if (rc) {
        prompt_free(&pr);
        buf_free(&chat);
        return -1;
    }
    // best-of-N: N samples (seeds seed, seed+1, ...), each logged and scored; the best is shown
    double *scores = xcalloc((size_t)best_of, sizeof *scores);
    Generation *cand = xcalloc((size_t)best_of, sizeof *cand);
    uint64_t seed0 = p.s.seed;
    int best = -1, made = 0, scored = 0;
    for (int i = 0; i < best_of && !rc; i++) {
        p.s.seed = seed0 + (uint64_t)i;
        if (app_generate(app, text, len, by_ids ? pr.ids.v : NULL, pr.ids.n, &p, kind, NULL, 0, &cand[i], &e)) {
            rc = best_of > 1 ? out_error(out, "generate: candidate %d: %s", i + 1, e.msg) : out_error(out, "%s", e.msg);
            break;
        }
        made++;
        scores[i] = NAN;
        // a candidate Ctrl-C cut short is kept (a logged run) but not scored: it cannot be the best
        if (rm && !(best_of > 1 && cand[i].r.stop == STOP_CANCELLED)) {
            RewardScore sc;
            if (reward_model_score(rm, cand[i].prompt.data ? cand[i].prompt.data : "", cand[i].prompt.len,
                                   cand[i].text.data ? cand[i].text.data : "", cand[i].text.len, &sc, &e)) {
                rc = out_error(out, "generate: reward: %s", e.msg);
                break;
            }
            iv_free(&sc.ids);
            scores[i] = sc.reward;
            Err le = {{0}};
            Db *db = cand[i].rec.run.id > 0 ? app_db(app, &le) : NULL;
            if (db && db_reward_score(db, cand[i].rec.run.id, reward_model_path(rm), sc.reward, &le))
                fprintf(stderr, "warning: the score of run %lld was not logged: %s\n", (long long)cand[i].rec.run.id,
                        le.msg);
            if (best < 0 || scores[i] > scores[best]) best = i;
            scored++;
        }
        if (app->cancel && *app->cancel) break;
    }
    prompt_free(&pr);
    buf_free(&chat);
    if (rc) {
        for (int i = 0; i < made; i++) generation_free(&cand[i]);
        free(cand);
        free(scores);
        reward_model_free(rm);
        return -1;
    }
    if (best < 0) best = 0; // none scored (the first cut short): it is shown as it is
    g = cand[best];
    generation_json(app, &out->w, &g);
    if (rm) {
        JsonW *w = &out->w;
        jw_kint(w, "best_of", best_of);
        jw_kint(w, "scored", scored); // fewer than best_of after Ctrl-C
        jw_kint(w, "best", best + 1);
        jw_knum(w, "reward", scores[best]);
        jw_kstr(w, "reward_model", reward_model_path(rm));
        jw_key(w, "candidates");
        jw_arr(w);
        for (int i = 0; i < made; i++) {
            jw_obj(w);
            jw_kint(w, "n", i + 1);
            jw_kid(w, "run_id", cand[i].rec.run.id);
            jw_kint(w, "seed", (long long)(seed0 + (uint64_t)i));
            jw_knum(w, "reward", scores[i]);
            jw_key(w, "text");
            jw_strn(w, cand[i].text.data ? cand[i].text.data : "", cand[i].text.len);
            jw_obj_end(w);
            char run[32] = "not logged";
            if (cand[i].rec.run.id > 0) snprintf(run, sizeof run, "run %lld", (long long)cand[i].rec.run.id);
            if (isnan(scores[i])) buf_printf(&out->text, " [%d] cut off by Ctrl-C, not scored (%s): ", i + 1, run);
            else buf_printf(&out->text, "%s[%d] reward %+.4f (%s): ", i == best ? "*" : " ", i + 1, scores[i], run);
            text_line(&out->text, cand[i].text.data ? cand[i].text.data : "", cand[i].text.len, 60);
            buf_putc(&out->text, '\n');
        }
        jw_arr_end(w);
        if (!scored) buf_printf(&out->text, "stopped with Ctrl-C before a candidate was whole: none scored:\n");
        else if (scored < best_of) buf_printf(&out->text, "best of the %d scored before Ctrl-C (reward %+.4f):\n", scored, scores[best]);
        else buf_printf(&out->text, "best of %d (reward %+.4f):\n", made, scores[best]);
    }
    for (int i = 0; i < made; i++)
        if (i != best) generation_free(&cand[i]);
    free(cand);
    free(scores);
    reward_model_free(rm);
    buf_put_utf8(&out->text, g.text.data ? g.text.data : "", g.text.len);
    buf_putc(&out->text, '\n');
    if (g.r.stop == STOP_CANCELLED) buf_puts(&out->text, "[stopped]\n");
    if (g.log_err.msg[0]) fprintf(stderr, "warning: the run was not logged: %s\n", g.log_err.msg);
    generation_free(&g);
    return 0;
}

// key: [v[0] * mul, ..., v[n-1] * mul]
// n < 0: a phase not measured (prompt=0, gen=0, an encoder): null, as its median is.
static void jw_knums(JsonW *w, const char *key, const double *v, int n, double mul) {
    jw_key(w, key);
    if (n < 0) {
        jw_null(w);
        return;
    }
    jw_arr(w);
    for (int i = 0; i < n; i++) jw_num(w, v[i] * mul);
    jw_arr_end(w);
}

// What bench times on one model: its context, its logits, the token it feeds next, and each
// repetition's prefill and generation times.
enum { BENCH_MAX_REPS = 100, BENCH_CHUNK = 16 };
typedef struct {
    const Model *m;
    Ctx *x;
    float *lg, *head; // head: NULL for an encoder without a head (no logits)
    int id, start;    // start: the token fed first when there is no prompt
    int ng;           // tokens each repetition generates
    double tp[BENCH_MAX_REPS], tg[BENCH_MAX_REPS];
} BenchSide;

static int bench_prefill(BenchSide *s, const int *ids, int np, int rep, Err *e) {
    ctx_reset(s->x);
    s->tp[rep] = 0;
    // the whole run's positions up front: no repetition times the cache's growth
    if (ctx_reserve(s->x, np + s->ng, e)) return -1;
    if (!np) return 0; // generation from an empty context: its first step feeds s->start
    double t0 = clock_now();
    int rc = ctx_eval(s->x, ids, np, s->head, false, NULL, e);
    s->tp[rep] = clock_now() - t0;
    return rc;
}

// n decoding steps (argmax of the last logits, then one token; s->start into an empty
// context), their time added to rep's
static int bench_decode(BenchSide *s, int n, int rep, const volatile sig_atomic_t *cancel, Err *e) {
    int V = s->m->cfg.n_vocab;
    for (int g = 0; g < n; g++) {
        double t0 = clock_now();
        s->id = ctx_pos(s->x) ? argmax(s->lg, V) : s->start;
        int rc = ctx_eval(s->x, &s->id, 1, s->lg, false, NULL, e);
        s->tg[rep] += clock_now() - t0;
        if (rc) return -1;
        if (cancel && *cancel) return 1;
    }
    return 0;
}

// The median over n repetitions of a's speed over b's, from their times (tb / ta), each
// repetition's ratio in ratios
static double speed_ratio_median(const double *ta, const double *tb, int n, double *ratios) {
    double srt[BENCH_MAX_REPS];
    for (int i = 0; i < n; i++) ratios[i] = srt[i] = ta[i] > 0 ? tb[i] / ta[i] : 0;
    return bound_median(srt, n);
}

// Prefill and generation speed, each with the bound it is measured against in the same run
// (kern/bound.h): generation as weight bytes read per token x tok/s over the read bandwidth,
// prefill as its linear layers' FLOP/s over sgemm's at the same shapes. Each repetition
// measures both bounds again around what it times: speeds are the best over the repetitions,
// fractions the median of the repetitions' own, with their spread. against=original (after
// quantize) times the model it was converted from in the same repetitions, prefills one after
// the other and generation alternating every BENCH_CHUNK tokens, so that the speed ratios
// between the two do not depend on which minute of a drifting host each ran in.
static int cmd_bench(App *app, const Args *a, Out *out) {
    Err e = {0};
    const ModelConfig *c = &app->model->cfg;
    // an encoder reads whole texts: no generation, the prompt at most its context
    long long np = c->n_ctx < 512 ? c->n_ctx : 512, ng = c->a.causal ? 128 : 0, reps = 3, n_emb = 0;
    if (args_int(a, "prompt", 0, 1 << 20, &np, &e) < 0 || args_int(a, "gen", 0, 1 << 20, &ng, &e) < 0 ||
        args_int(a, "reps", 1, BENCH_MAX_REPS, &reps, &e) < 0 || args_int(a, "embed", 0, 1 << 20, &n_emb, &e) < 0)
        return out_error(out, "%s", e.msg);
    const char *against = args_opt(a, "against");
    if (against && strcmp(against, "original"))
        return out_error(out, "bench: against= takes 'original' (the model quantize converted from), not '%.40s'",
                         against);
    if (against && !app->original)
        return out_error(out, "bench against=original: %s is not a conversion (run quantize first)", app->model->name);
    if (!c->a.causal && ng) return out_error(out, "bench: %s is an encoder: it does not generate (gen=0)", app->model->name);
    if (!np && !ng)
        return out_error(out, c->a.causal ? "bench: prompt=0 times generation from an empty context: give gen= > 0"
                                          : "bench: %s is an encoder: it needs prompt= >= 1", app->model->name);
    if (np + ng > c->n_ctx)
        return out_error(out, "prompt=%lld + gen=%lld exceed the context of %d", np, ng, c->n_ctx);
    if (n_emb > c->n_ctx) return out_error(out, "embed=%lld exceeds the context of %d", n_emb, c->n_ctx);
    BenchSide sd[2] = {{.m = app->model, .ng = (int)ng}, {.m = app->original, .ng = (int)ng}};
    int n_sides = against ? 2 : 1;
    sd[0].x = app_ctx(app, &e);
    if (sd[0].x && against) sd[1].x = app_orig_ctx(app, &e);
    if (!sd[0].x || (against && !sd[1].x)) return out_error(out, "%s", e.msg);
    Ctx *x = sd[0].x;
    Pool *pool = ctx_pool(x);
    int V = c->n_vocab;
    long long n_ids = np > n_emb + 4 ? np : n_emb + 4; // embed texts start at 4 offsets
    int *ids = malloc(mem_mul((size_t)n_ids, sizeof(int)));
    for (int s = 0; s < n_sides; s++) sd[s].lg = malloc(mem_mul((size_t)V, sizeof(float)));
    if (!ids || !sd[0].lg || (against && !sd[1].lg)) {
        free(ids), free(sd[0].lg), free(sd[1].lg);
        return out_error(out, "out of memory for a prompt of %lld tokens and the logits of %d tokens", np, V);
    }
    Rng r;
    rng_seed(&r, 42);
    for (int i = 0; i < n_ids; i++) ids[i] = (int)(rng_next(&r) % (uint64_t)V);
    // prompt=0: generation starts from the beginning-of-text token (as llama-bench's tg tests do)
    int bos = app->model->tok ? tok_bos(app->model->tok) : -1;
    sd[0].start = sd[1].start = bos >= 0 && bos < V ? bos : ids[0];
    // warm-up (touch every weight once), counting what a prefill and one decoding step do
    LinearCount pre, dec;
    int rc = 0;
    for (int s = n_sides - 1; s >= 0 && !rc; s--) { // the measured model last: its counts below
        sd[s].head = c->a.lm_head ? sd[s].lg : NULL; // an encoder without a head gives no logits
        if (!s) linear_count(pool, &pre);
        if (bench_prefill(&sd[s], ids, (int)np, 0, &e)) rc = out_error(out, "%s", e.msg);
        if (!s) linear_count(pool, &dec);
        if (!rc && ng && bench_decode(&sd[s], 1, 0, NULL, &e) < 0) rc = out_error(out, "%s", e.msg);
        if (!s) linear_count(pool, NULL);
    }
    // The bounds are sampled interleaved with what they bound, so that one noisy minute does not
    // decide a figure: sgemm before each prefill (and once after the last), the read bandwidth
    // right before and right after each generation. Each repetition's fraction is held against
    // the mean of the samples around it; the fractions reported are the medians over the reps.
    enum { READ_MB = 512 }; // the buffer well beyond the caches of the machines qkv runs on
    double rd0[BENCH_MAX_REPS], rd1[BENCH_MAX_REPS], sg[BENCH_MAX_REPS + 1];
    int done = 0;
    ReadBound *rb = rc ? NULL : bound_read_new((size_t)READ_MB << 20, &e);
    if (!rc && !rb) rc = out_error(out, "%s", e.msg);
    const volatile sig_atomic_t *cancel = app->cancel;
    // a prompt of 0 or 1 tokens has no matrix products: no sgemm bound to hold prefill against
    const bool mm = pre.n_shapes > 0;
    for (int rep = 0; rep <= reps && !rc; rep++) {
        sg[rep] = 0;
        if (mm && bound_sgemm_flops_s(pool, pre.shapes, pre.n_shapes, 1, &sg[rep], &e)) {
            rc = out_error(out, "%s", e.msg);
            break;
        }
        if (rep == reps || (cancel && *cancel)) break;
        for (int k = 0; k < n_sides && !rc; k++) { // the order alternates from one repetition to the next
            BenchSide *s = &sd[(k + rep) % n_sides];
            s->tg[rep] = 0;
            if (bench_prefill(s, ids, (int)np, rep, &e)) rc = out_error(out, "%s", e.msg);
        }
        if (rc) break;
        rd0[rep] = bound_read_sample(pool, rb, 3);
        int stop = 0; // Ctrl-C inside the generation: the repetition is not counted (its time was
                      // of a few tokens, divided by all of them: figures beyond the bound)
        for (int g = 0, chunk = 0; g < ng && !rc && !stop; g += BENCH_CHUNK, chunk++) {
            int n = ng - g < BENCH_CHUNK ? (int)(ng - g) : BENCH_CHUNK;
            for (int k = 0; k < n_sides && !stop; k++)
                if ((stop = bench_decode(&sd[(k + chunk) % n_sides], n, rep, cancel, &e)) < 0)
                    rc = out_error(out, "%s", e.msg);
        }
        if (stop) break;
        rd1[rep] = ng ? bound_read_sample(pool, rb, 3) : rd0[rep];
        if (!rc) done = rep + 1;
    }
    bound_read_free(rb);
    // embeddings per second: texts of n_emb tokens, pooled as embed does (best of reps)
    double best_e = 1e30;
    int n_texts = 16;
    float *vec = n_emb ? xmalloc(sizeof(float) * (size_t)c->n_embd) : NULL;
    for (int rep = 0; n_emb && rep < reps && !rc && !(cancel && *cancel); rep++) {
        double t0 = clock_now();
        for (int k = 0; k < n_texts && !rc; k++)
            if (embed_ids(x, ids + k % 4, NULL, (int)n_emb,
                          c->a.causal ? POOL_LAST : POOL_MEAN, true, vec, &e))
                rc = out_error(out, "%s", e.msg);
        double dt = clock_now() - t0;
        if (dt < best_e) best_e = dt;
    }
    free(vec);
    free(ids);
    free(sd[0].lg), free(sd[1].lg);
    if (rc) return -1;
    if (!done) return out_error(out, "bench: cancelled before the first repetition");
    double *tp = sd[0].tp, *tg = sd[0].tg;
    // the prefill's work: its linear layers as run, plus attention's two products (q k^T and
    // p v: 2 x head_dim multiply-adds per visible query-key pair, every head and layer)
    double pairs = c->a.causal ? np * (np + 1) / 2.0 : (double)np * np;
    double att_flops = 2.0 * 2.0 * c->n_layer * c->n_head * c->head_dim * pairs;
    double pflops = pre.mm_flops + pre.mv_flops + att_flops, wbytes = dec.mv_bytes;
    // the KV cache a generated token reads on average besides the weights (keys and values,
    // every layer, over the mean context of the generation; 4 bytes a value in F32, 2 in F16)
    DType kv = ctx_kv(x);
    double kv_bytes = 2.0 * c->n_layer * c->n_kv_head * (double)dtype_bytes(kv, c->head_dim) * (np + (ng + 1) / 2.0);
    // per repetition: speeds, the bounds around it, the fractions
    double best_p = 1e30, best_g = 1e30, read_bs = 0, sgemm_fs = 0, drift = 0;
    double bwf[BENCH_MAX_REPS], bwkf[BENCH_MAX_REPS], pff[BENCH_MAX_REPS], srt[BENCH_MAX_REPS];
    for (int i = 0; i < done; i++) {
        double bs = 0.5 * (rd0[i] + rd1[i]), fs = 0.5 * (sg[i] + sg[i + 1]);
        double gt_r = ng && tg[i] > 0 ? ng / tg[i] : 0;
        bwf[i] = wbytes * gt_r / bs;
        bwkf[i] = (wbytes + kv_bytes) * gt_r / bs;
        pff[i] = fs > 0 ? pflops / tp[i] / fs : 0;
        best_p = tp[i] < best_p ? tp[i] : best_p;
        best_g = tg[i] < best_g ? tg[i] : best_g;
        read_bs = fmax(read_bs, fmax(rd0[i], rd1[i]));
        sgemm_fs = fmax(sgemm_fs, fmax(sg[i], sg[i + 1]));
        drift = fmax(drift, fabs(rd1[i] - rd0[i]) / bs);
    }
    double pt = np ? np / best_p : 0, gt = ng ? ng / best_g : 0;
    memcpy(srt, bwf, sizeof(double) * (size_t)done);
    double bw_frac = bound_median(srt, done), bw_min = srt[0], bw_max = srt[done - 1];
    memcpy(srt, bwkf, sizeof(double) * (size_t)done);
    double bwk_frac = bound_median(srt, done);
    memcpy(srt, pff, sizeof(double) * (size_t)done);
    double pf_frac = bound_median(srt, done), pf_min = srt[0], pf_max = srt[done - 1];
    JsonW *w = &out->w;
    jw_knum_or_null(w, "prefill_tok_s", np ? pt : NAN); // null: prompt=0, no prefill
    jw_knum_or_null(w, "decode_tok_s", ng ? gt : NAN); // null: gen=0 (an encoder's bench), no generation
    jw_kint(w, "threads", ctx_threads(x));
    jw_kint(w, "prompt", np);
    jw_kint(w, "gen", ng);
    jw_kint(w, "reps", done); // the repetitions measured: fewer than asked after Ctrl-C
    jw_kbool(w, "interrupted", done < reps);
    jw_kstr(w, "model", app->model->name);
    jw_kstr(w, "dtype", dtype_name(app->model->dtype));
    jw_kint(w, "params", app->model->n_params);
    jw_kstr(w, "kernels", ops_kernels());
    if (kern_note()) jw_kstr(w, "kernels_note", kern_note());
    jw_knum(w, "read_gb_s", read_bs / 1e9);
    jw_knum_or_null(w, "sgemm_gflops", mm ? sgemm_fs / 1e9 : NAN);
    jw_knum(w, "weight_bytes_per_token", wbytes);
    jw_kstr(w, "kv_dtype", dtype_name(kv));
    jw_knum_or_null(w, "kv_bytes_per_token", app->model->cfg.a.causal ? kv_bytes : NAN); // an encoder keeps none
    jw_knum_or_null(w, "decode_bw_fraction", ng ? bw_frac : NAN);
    jw_knum_or_null(w, "decode_bw_fraction_with_kv", ng ? bwk_frac : NAN);
    jw_knum(w, "prefill_flops", pflops);
    jw_knum(w, "prefill_attention_flops", att_flops);
    jw_knum_or_null(w, "prefill_gflops", np ? pflops / best_p / 1e9 : NAN);
    jw_knum_or_null(w, "prefill_sgemm_fraction", mm ? pf_frac : NAN); // null without matrix products (prompt=0 or 1)
    // the repetitions one by one, so that a reader sees the spread behind each median
    jw_knum_or_null(w, "decode_bw_fraction_min", ng ? bw_min : NAN);
    jw_knum_or_null(w, "decode_bw_fraction_max", ng ? bw_max : NAN);
    jw_knum_or_null(w, "prefill_sgemm_fraction_min", mm ? pf_min : NAN);
    jw_knum_or_null(w, "prefill_sgemm_fraction_max", mm ? pf_max : NAN);
    jw_knum(w, "read_drift_max", drift);
    // the original's speeds and the ratios to them (medians of the repetitions' own ratios)
    double d_ratio = 0, p_ratio = 0, d_ratios[BENCH_MAX_REPS], p_ratios[BENCH_MAX_REPS];
    if (against) {
        BenchSide *o = &sd[1];
        double ob_p = 1e30, ob_g = 1e30;
        for (int i = 0; i < done; i++) ob_p = fmin(ob_p, o->tp[i]), ob_g = fmin(ob_g, o->tg[i]);
        p_ratio = speed_ratio_median(tp, o->tp, done, p_ratios);
        d_ratio = ng ? speed_ratio_median(tg, o->tg, done, d_ratios) : 0;
        jw_key(w, "against");
        jw_obj(w);
        jw_kstr(w, "model", o->m->name);
        jw_kstr(w, "dtype", dtype_name(o->m->dtype));
        jw_kint(w, "threads", ctx_threads(o->x));
        jw_kstr(w, "kv_dtype", dtype_name(ctx_kv(o->x)));
        jw_knum_or_null(w, "prefill_tok_s", np ? np / ob_p : NAN);
        jw_knum_or_null(w, "decode_tok_s", ng ? ng / ob_g : NAN);
        for (int i = 0; i < done; i++) o->tp[i] = np ? np / o->tp[i] : 0, o->tg[i] = ng ? ng / o->tg[i] : 0;
        jw_knums(w, "prefill_tok_s_reps", o->tp, np ? done : -1, 1);
        jw_knums(w, "decode_tok_s_reps", o->tg, ng ? done : -1, 1);
        jw_obj_end(w);
        jw_knum_or_null(w, "prefill_ratio", np ? p_ratio : NAN);
        jw_knums(w, "prefill_ratio_reps", p_ratios, np ? done : -1, 1);
        if (ng) {
            jw_knum(w, "decode_ratio", d_ratio);
            jw_knums(w, "decode_ratio_reps", d_ratios, done, 1);
        }
    }
    for (int i = 0; i < done; i++) tp[i] = np ? np / tp[i] : 0, tg[i] = ng ? ng / tg[i] : 0;
    jw_knums(w, "prefill_tok_s_reps", tp, np ? done : -1, 1);
    jw_knums(w, "decode_tok_s_reps", tg, ng ? done : -1, 1);
    jw_knums(w, "read_gb_s_before", rd0, done, 1e-9);
    jw_knums(w, "read_gb_s_after", rd1, done, 1e-9);
    jw_knums(w, "sgemm_gflops_reps", sg, mm ? done + 1 : -1, 1e-9);
    jw_knums(w, "decode_bw_fraction_reps", bwf, ng ? done : -1, 1);
    jw_knums(w, "prefill_sgemm_fraction_reps", pff, mm ? done : -1, 1);
    if (n_emb) {
        jw_kint(w, "embed_tokens", n_emb);
        jw_knum(w, "embed_per_s", best_e < 1e30 ? n_texts / best_e : NAN); // null: stopped before
    }
    buf_printf(&out->text, "%s (%s, %.1fM params), %d threads, %s kernels, %s KV cache (best of %lld)\n",
               app->model->name, dtype_name(app->model->dtype), app->model->n_params / 1e6, ctx_threads(x),
               ops_kernels(), dtype_name(kv), (long long)done);
    if (done < reps)
        buf_printf(&out->text, "  stopped with Ctrl-C: the %d of %lld repetitions measured whole\n", done, reps);
    if (!np)
        buf_printf(&out->text, "  no prompt: generation from an empty context, from the beginning-of-text token\n");
    else if (!mm)
        buf_printf(&out->text, "  prefill %lld token: %.1f tok/s (one decoding step: no matrix products to hold against "
                   "sgemm)\n", np, pt);
    else
        buf_printf(&out->text, "  prefill %lld tokens: %.1f tok/s, %.1f GFLOP/s; median %.0f%% (%.0f-%.0f%%) of sgemm's "
                   "%.1f GFLOP/s\n", np, pt, pflops / best_p / 1e9, 100 * pf_frac, 100 * pf_min, 100 * pf_max,
                   sgemm_fs / 1e9);
    if (ng)
        buf_printf(&out->text, "  generation %lld tokens: %.1f tok/s x %.0f MB of weights; median %.0f%% (%.0f-%.0f%%) "
                   "of the read bandwidth taken before and after each rep, up to %.1f GB/s, drifting up to %.0f%% "
                   "(%.0f%% with the KV cache)\n", ng, gt, wbytes / 1e6, 100 * bw_frac, 100 * bw_min, 100 * bw_max,
                   read_bs / 1e9, 100 * drift, 100 * bwk_frac);
    if (against) {
        buf_printf(&out->text, "  against the original %s (%s), timed alternately:", sd[1].m->name,
                   dtype_name(sd[1].m->dtype));
        if (np) buf_printf(&out->text, " prefill %.2fx%s", p_ratio, ng ? "," : "");
        if (ng) buf_printf(&out->text, " generation %.2fx", d_ratio);
        buf_printf(&out->text, " its speed (medians of the repetitions)\n");
    }
    if (n_emb && best_e < 1e30) buf_printf(&out->text, "  embeddings of %lld tokens: %.1f per second\n", n_emb, n_texts / best_e);
    if (kern_note()) buf_printf(&out->text, "  note: %s\n", kern_note());
    return 0;
}

static const char *const k_logits[] = {"ids", "types", "pair", "top", "full", CHAT_KEYS, NULL};
static const char *const k_generate[] = {"ids", "best_of", "reward", DECODE_KEYS, CHAT_KEYS, NULL};
static const char *const k_bench[] = {"prompt", "gen", "reps", "embed", "against", NULL};

const Command gen_commands[] = {
    {"logits", cmd_logits, 0, 1, k_logits,
     "logits \"TEXT\" [pair=\"B\"|chat=true system=\"S\"]|ids=1,2,3 [types=0,0,1] [top=K] [full=true]",
     "Next-token logits and probabilities at the last position (top K, default 10); full=true adds every "
     "position's logits (an encoder's: its masked-LM head's at each position). pair= reads a sentence pair as "
     "BERT does ([CLS] A [SEP] B [SEP], segments 0 and 1); types= gives the segments of ids=. chat=true "
     "renders TEXT as a user turn (after system=\"S\" when given) with the model's chat template and the start "
     "of the assistant's turn.",
     true, true},
    {"generate", cmd_generate, 0, 1, k_generate,
     "generate \"TEXT\"|ids=... [max=N temperature=T top_k=K top_p=P seed=S alts=N truncate=true stop=false] "
     "[chat=true system=\"S\"] [best_of=N reward=DIR]",
     "Complete TEXT. temperature=0 is greedy; a seed makes sampling repeatable (without one a random seed is "
     "chosen, reported in JSON and the run log). Each token comes with its log-probability and the top "
     "alternatives (alts), in JSON, the run log and the Lab view; the text form is the completion alone. "
     "\"\" starts from the beginning-of-text token. chat=true renders TEXT as a user turn (after system=\"S\" "
     "when given) with the model's chat template and the start of the assistant's turn. The run is logged to "
     "the database (a chat prompt with template chat:FORMAT). best_of=N reward=DIR samples N completions (seeds "
     "seed, seed+1, ...), each logged, scores each with the reward model DIR (recorded in reward_scores) and shows "
     "the best (its fields as above) with every candidate's score: best_of, scored, best, reward, reward_model, "
     "candidates: [{n, run_id, seed, reward, text}].",
     true},
    {"bench", cmd_bench, 0, 0, k_bench, "bench [prompt=512 gen=128 reps=3 embed=N against=original]",
     "Measure prefill and generation speed (tokens per second, best of reps) on the current model, with the "
     "machine's bounds measured in the same run: generation as a fraction of the memory read bandwidth (weight "
     "bytes per token x tok/s), prefill as a fraction of sgemm's GFLOP/s at the model's shapes. An encoder is "
     "measured on prefill only; embed=N adds embeddings per second of N-token texts. After quantize, "
     "against=original times the model it converted from in the same repetitions (prefills one after the other, "
     "generation alternating every 16 tokens) and reports the speed ratios: against {model, dtype, threads, kv_dtype, prefill_tok_s, "
     "decode_tok_s}, prefill_ratio, decode_ratio (medians of the repetitions' ratios).",
     true},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
