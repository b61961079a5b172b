// test_engine.c - the forward pass against itself: incremental decoding with the KV cache
// equals recomputation, chunked prefill equals one pass, dtypes agree, the trace hands over
// what was asked, decoding rules behave, and bad requests fail cleanly.
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "analysis/heads.h"
#include "eval/forward.h"
#include "eval/generate.h"
#include "model/model.h"
#include "model/newmodel.h"
#include "model/safetensors.h"
#include "model/quantize.h"
#include "kern/ops.h"

static char tmpdir[CHECK_TMP_LEN];

static Model *make(const char *name, NewModelParams p) {
    char dir[CHECK_PATH_LEN];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    Err e = {0};
    if (newmodel_write(dir, &p, NULL, &e)) {
        fprintf(stderr, "new-model %s: %s\n", name, e.msg);
        exit(1);
    }
    Model *m = model_open(dir, NULL, &e);
    if (!m) {
        fprintf(stderr, "open %s: %s\n", name, e.msg);
        exit(1);
    }
    return m;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double x = fabs((double)a[i] - b[i]);
        if (x > d || x != x) d = x != x ? INFINITY : x;
    }
    return d;
}

// Decoding against prefill with an F16 KV cache: prefill makes k and v with sgemm, decoding
// from the matrix-vector kernels, a float's last bit apart; rounded to half precision a few of
// them land on the two sides of a rounding boundary, one half-precision step (2^-11 relative)
// apart. Measured 3e-4 (37 tokens) to 8e-4 (600) on the models here, against 2.5-6e-3 between
// the F16 and the F32 cache.
#define KV_F16_TOL 2e-3
// The same with the Q8_0 cache: a value on the two sides of a rounding boundary is one step of
// its block apart (max |x| / 127, about 1% of the block's largest value). Measured 4e-5 (23
// tokens) to 7e-4 (600) on the models here (2026-12-05). KV_Q8_BOUND: Q8_0 against F32, 0.05
// to 0.45 on these random models (logits of magnitude 6-9; the NumPy reference suite checks
// the rounding itself against the gguf package's Q8_0).
#define KV_Q8_TOL 5e-3
#define KV_Q8_BOUND 1.0

static double kv_tol(DType kv, double tol) {
    double t = kv == DT_Q8_0 ? KV_Q8_TOL : kv == DT_F16 ? KV_F16_TOL : 0;
    return tol > t ? tol : t;
}

// Incremental decoding (one token at a time through the cache) gives the logits of a
// single full pass, at every position. The incremental pass runs first, on a new context:
// beyond 256 positions its cache grows, the keys and values held so far copied over
// (ctx_reserve), twice for T = 600.
static void test_incremental(Model *m, int T, int threads, DType kv) {
    Err e = {0};
    Ctx *c = ctx_new_kv(m, threads, kv, &e);
    CHECK(c != NULL);
    int V = m->cfg.n_vocab;
    int *ids = malloc(sizeof(int) * (size_t)T);
    for (int i = 0; i < T; i++) ids[i] = (i * 7919 + 13) % V;
    float *full = malloc(sizeof(float) * (size_t)T * V), *one = malloc(sizeof(float) * (size_t)T * V);
    for (int t = 0; t < T; t++) CHECK_INT(ctx_eval(c, &ids[t], 1, one + (size_t)t * V, false, NULL, &e), 0);
    ctx_reset(c);
    CHECK_INT(ctx_eval(c, ids, T, full, true, NULL, &e), 0);
    double worst = 0;
    for (int t = 0; t < T; t++) {
        double d = max_diff(one + (size_t)t * V, full + (size_t)t * V, (size_t)V);
        worst = d > worst ? d : worst;
    }
    double tol = kv_tol(kv, 2e-4);
    if (!(worst <= tol))
        fprintf(stderr, "T=%d threads=%d kv=%s: incremental vs full max |d logit| = %g\n", T, threads, dtype_name(kv), worst);
    CHECK(worst <= tol);
    // last-position logits without all=true equal the last row
    ctx_reset(c);
    CHECK_INT(ctx_eval(c, ids, T, one, false, NULL, &e), 0);
    CHECK(max_diff(one, full + (size_t)(T - 1) * V, (size_t)V) <= 1e-5);
    free(ids), free(full), free(one);
    ctx_free(c);
}

typedef struct {
    int calls, att_rows;
    float row_sum_err;
    unsigned kinds;
} Seen;

static void on_trace(void *user, const TracePoint *p) {
    Seen *s = user;
    s->calls++;
    s->kinds |= p->kind;
    if (p->kind == TRACE_ATT_PROBS) {
        for (int h = 0; h < p->n_head; h++)
            for (int i = 0; i < p->n_q; i++) {
                const float *row = p->data + ((size_t)h * p->n_q + i) * p->n_kv;
                double sum = 0;
                for (int j = 0; j < p->n_kv; j++) {
                    sum += row[j];
                    if (j > p->pos0 + i && row[j] != 0) s->row_sum_err = 1; // causal: nothing after the query
                }
                if (fabs(sum - 1) > s->row_sum_err) s->row_sum_err = (float)fabs(sum - 1);
                s->att_rows++;
            }
    }
}

static void test_trace(Model *m) {
    Err e = {0};
    Ctx *c = ctx_new(m, 2, &e);
    int ids[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    Seen s = {0};
    Trace tr = {TRACE_ATT_PROBS, 1u << 1, on_trace, &s}; // layer 1 only
    CHECK_INT(ctx_eval(c, ids, 9, NULL, false, &tr, &e), 0);
    CHECK_INT(s.calls, 1);
    CHECK_INT(s.att_rows, m->cfg.n_head * 9);
    CHECK(s.row_sum_err < 1e-5);
    CHECK_INT(s.kinds, TRACE_ATT_PROBS);
    // decoding one more token hands over one row per head over 10 keys
    s = (Seen){0};
    CHECK_INT(ctx_eval(c, ids, 1, NULL, false, &tr, &e), 0);
    CHECK_INT(s.att_rows, m->cfg.n_head);
    // nothing asked: no callback
    Seen none = {0};
    Trace quiet = {0, 0, on_trace, &none};
    ctx_reset(c);
    CHECK_INT(ctx_eval(c, ids, 9, NULL, false, &quiet, &e), 0);
    CHECK_INT(none.calls, 0);
    // every kind at once
    Seen all = {0};
    Trace every = {~0u, 0, on_trace, &all};
    ctx_reset(c);
    CHECK_INT(ctx_eval(c, ids, 3, NULL, false, &every, &e), 0);
    CHECK_INT(all.kinds, TRACE_ALL);
    ctx_free(c);
}

static void test_errors(Model *m) {
    Err e = {0};
    Ctx *c = ctx_new(m, 1, &e);
    int bad = m->cfg.n_vocab;
    CHECK_INT(ctx_eval(c, &bad, 1, NULL, false, NULL, &e), -1);
    CHECK(strstr(e.msg, "out of range") != NULL);
    int n = m->cfg.n_ctx + 1;
    int *ids = calloc((size_t)n, sizeof *ids);
    CHECK_INT(ctx_eval(c, ids, n, NULL, false, NULL, &e), -1);
    CHECK(strstr(e.msg, "context") != NULL);
    CHECK_INT(ctx_pos(c), 0);
    // generate: a prompt longer than the context is refused, or truncated when asked
    GenParams p = {.s = {.temperature = 0}, .max_tokens = 4, .n_alts = 3};
    GenResult r;
    CHECK_INT(generate(c, m->tok, ids, n, &p, NULL, NULL, NULL, NULL, &r, &e), -1);
    CHECK(strstr(e.msg, "truncate=true") != NULL);
    gen_result_free(&r);
    p.truncate = true;
    CHECK_INT(generate(c, m->tok, ids, n, &p, NULL, NULL, NULL, NULL, &r, &e), 0);
    CHECK_INT(r.ids.n, 4);
    CHECK_INT(r.n_truncated, n + 3 - m->cfg.n_ctx);
    gen_result_free(&r);
    free(ids);
    ctx_free(c);
}

static void test_sampling(Model *m) {
    Err e = {0};
    Ctx *c = ctx_new(m, 2, &e);
    int prompt[3] = {5, 6, 7};
    GenParams p = {.s = {.temperature = 0.9f, .top_k = 0, .top_p = 1, .seed = 1234}, .max_tokens = 12, .n_alts = 5};
    GenResult a, b, g;
    CHECK_INT(generate(c, m->tok, prompt, 3, &p, NULL, NULL, NULL, NULL, &a, &e), 0);
    CHECK_INT(generate(c, m->tok, prompt, 3, &p, NULL, NULL, NULL, NULL, &b, &e), 0);
    CHECK_INT(a.ids.n, 12);
    CHECK(a.ids.n == b.ids.n && !memcmp(a.ids.v, b.ids.v, sizeof(int) * (size_t)a.ids.n));
    // greedy picks the top alternative at every step; top_k=1 is greedy too
    GenParams gp = p;
    gp.s.temperature = 0;
    CHECK_INT(generate(c, m->tok, prompt, 3, &gp, NULL, NULL, NULL, NULL, &g, &e), 0);
    for (int i = 0; i < g.ids.n; i++) {
        CHECK_INT(g.steps[i].id, g.steps[i].alt_ids[0]);
        CHECK_NEAR(g.steps[i].logprob, g.steps[i].alt_logprobs[0], 0);
        for (int k = 1; k < g.steps[i].n_alts; k++) CHECK(g.steps[i].alt_logprobs[k] <= g.steps[i].alt_logprobs[k - 1]);
    }
    GenResult k1;
    GenParams kp = p;
    kp.s.top_k = 1;
    CHECK_INT(generate(c, m->tok, prompt, 3, &kp, NULL, NULL, NULL, NULL, &k1, &e), 0);
    CHECK(!memcmp(k1.ids.v, g.ids.v, sizeof(int) * (size_t)g.ids.n));
    gen_result_free(&a), gen_result_free(&b), gen_result_free(&g), gen_result_free(&k1);
    ctx_free(c);

    // the sampler's distribution on a fixed vector: frequencies follow softmax(x / T),
    // top-k keeps k, top-p keeps the smallest prefix reaching p
    float x[4] = {2.0f, 1.0f, 0.0f, -1.0f};
    float fs[4];
    int is[4], counts[4] = {0};
    Rng r;
    rng_seed(&r, 7);
    SampleParams sp = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f};
    const int N = 200000;
    for (int i = 0; i < N; i++) counts[sample_token(x, 4, &sp, &r, fs, is)]++;
    double z = exp(2) + exp(1) + exp(0) + exp(-1);
    for (int i = 0; i < 4; i++) CHECK_NEAR((double)counts[i] / N, exp(x[i]) / z, 0.005);
    sp.top_k = 2;
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < N; i++) counts[sample_token(x, 4, &sp, &r, fs, is)]++;
    CHECK_INT(counts[2] + counts[3], 0);
    CHECK_NEAR((double)counts[0] / N, exp(2) / (exp(2) + exp(1)), 0.005);
    sp.top_k = 0;
    sp.top_p = 0.7f; // p = .644, .237, ...: the first two are needed to reach 0.7
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < N; i++) counts[sample_token(x, 4, &sp, &r, fs, is)]++;
    CHECK_INT(counts[2] + counts[3], 0);
    CHECK(counts[1] > 0);
    sp.top_p = 0.5f;
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < 1000; i++) counts[sample_token(x, 4, &sp, &r, fs, is)]++;
    CHECK_INT(counts[0], 1000);
    // the same seed gives the same stream
    Rng r1, r2;
    rng_seed(&r1, 99), rng_seed(&r2, 99);
    for (int i = 0; i < 100; i++) CHECK(rng_next(&r1) == rng_next(&r2));
}

// ---------------------------------------------------------------------------------------
// Re-running a cached pass from a layer on (ctx_eval_from) equals the full pass with the same
// change: the residual stream at (layer l, position p) shifted by a vector, run from block l
// (and, causal, from position p with the unchanged prefix in the cache), gives the full
// patched pass's last residual rows and, through ctx_head_pick, its logits.

typedef struct {
    float *resid; // [L + 1, T, d]
    int T, d;
    int layer, pos; // the row shifted (layer -1: none)
    const float *delta;
} FromRun;

static void from_trace(void *user, const TracePoint *p) {
    FromRun *F = user;
    int slot = p->kind == TRACE_EMBED ? 0 : p->layer + 1;
    for (int r = 0; r < p->n_q; r++) {
        float *row = p->data + (size_t)r * F->d;
        if (slot == F->layer && p->pos0 + r == F->pos)
            for (int j = 0; j < F->d; j++) row[j] += F->delta[j];
        memcpy(F->resid + ((size_t)slot * F->T + p->pos0 + r) * F->d, row, sizeof(float) * (size_t)F->d);
    }
}

static void test_from_layer(const char *tag, Model *m, int T) {
    Err e = {0};
    Ctx *c = ctx_new(m, 2, &e);
    CHECK(c != NULL);
    const ModelConfig *cf = &m->cfg;
    int L = cf->n_layer, d = cf->n_embd, V = cf->n_vocab;
    bool causal = cf->a.causal;
    int *ids = malloc(sizeof(int) * (size_t)T);
    for (int i = 0; i < T; i++) ids[i] = 1 + (i * 7919 + 13) % (V - 1);
    size_t nd = (size_t)T * d;
    float *plain = malloc(sizeof(float) * (L + 1) * nd), *patched = malloc(sizeof(float) * (L + 1) * nd);
    float *lg = malloc(sizeof(float) * (size_t)T * V), *xin = malloc(sizeof(float) * nd);
    float *xout = malloc(sizeof(float) * nd), *delta = malloc(sizeof(float) * (size_t)d);
    for (int j = 0; j < d; j++) delta[j] = 0.5f * (float)((j * 37 % 11) - 5);
    FromRun P = {plain, T, d, -1, -1, delta};
    Trace tr = {TRACE_EMBED | TRACE_RESID_POST, 0, from_trace, &P};
    CHECK_INT(ctx_eval(c, ids, T, NULL, false, &tr, &e), 0);
    double worst_x = 0, worst_l = 0, mag = 0;
    int checked = 0;
    const int layers[] = {0, 1, L - 1, L}, poss[] = {0, T / 2, T - 1};
    for (int li = 0; li < 4; li++)
        for (int pi = 0; pi < 3; pi++) {
            int l = layers[li], p = poss[pi], from = causal ? p : 0;
            // the full pass with the row shifted: its residual stream and every row's logits
            FromRun Q = {patched, T, d, l, p, delta};
            Trace tq = {TRACE_EMBED | TRACE_RESID_POST, 0, from_trace, &Q};
            ctx_reset(c);
            CHECK_INT(ctx_eval(c, ids, T, lg, true, &tq, &e), 0);
            // the unpatched pass in the cache, then from block l and position `from` on
            ctx_reset(c);
            CHECK_INT(ctx_eval(c, ids, T, NULL, false, NULL, &e), 0);
            ctx_truncate(c, from);
            memcpy(xin, plain + ((size_t)l * T + from) * d, sizeof(float) * (size_t)(T - from) * d);
            for (int j = 0; j < d; j++) xin[(size_t)(p - from) * d + j] += delta[j];
            CHECK_INT(ctx_eval_from(c, l, xin, T - from, xout, NULL, &e), 0);
            CHECK_INT(ctx_pos(c), T);
            worst_x = check_worst(worst_x, max_diff(xout, patched + ((size_t)L * T + from) * d, (size_t)(T - from) * d));
            for (int t = from; t < T; t++) {
                int tok[3] = {0, ids[t], V - 1};
                float got[3];
                CHECK_INT(ctx_head_pick(c, xout + (size_t)(t - from) * d, tok, 3, got, &e), 0);
                for (int k = 0; k < 3; k++) {
                    float want = lg[(size_t)t * V + tok[k]];
                    worst_l = check_worst(worst_l, fabs((double)got[k] - want));
                    mag = fmax(mag, fabs(want));
                }
            }
            // and the shift changed something (the comparison is not of two unpatched runs)
            CHECK(max_diff(patched + (size_t)L * nd, plain + (size_t)L * nd, nd) > 1e-3);
            checked++;
        }
    if (!(worst_x <= 1e-4 && worst_l <= 1e-4 * (1 + mag)))
        fprintf(stderr, "%s: from-layer vs full: max |d resid| %g, max |d logit| %g (max |logit| %g)\n", tag, worst_x,
                worst_l, mag);
    CHECK(worst_x <= 1e-4 && worst_l <= 1e-4 * (1 + mag));
    CHECK_INT(checked, 12);
    // bad requests: a layer outside the model, a token outside the vocabulary, a bidirectional
    // model's cache not empty
    ctx_reset(c);
    CHECK_INT(ctx_eval_from(c, L + 1, xin, 1, xout, NULL, &e), -1);
    CHECK(strstr(e.msg, "layer") != NULL);
    int bad = V;
    float one;
    CHECK_INT(ctx_head_pick(c, xin, &bad, 1, &one, &e), -1);
    CHECK(strstr(e.msg, "out of range") != NULL);
    if (!causal) {
        CHECK_INT(ctx_eval(c, ids, T, NULL, false, NULL, &e), 0);
        CHECK_INT(ctx_eval_from(c, 0, xin, 1, xout, NULL, &e), -1);
    }
    free(ids), free(plain), free(patched), free(lg), free(xin), free(xout), free(delta);
    ctx_free(c);
}

// Decoding runs q/k/v with attention, and up with its activation and down, in shared
// sections whose tasks wait for one another (eval/forward.c, kern/ops.c): token by token, on
// 1-4 threads, the logits are bit for bit those of one thread and within tol of the prefill's.
static void test_decode_threads_kv(const char *tag, const Model *m, int T, double tol, DType kv) {
    Err e = {0};
    int V = m->cfg.n_vocab;
    int *ids = malloc(sizeof(int) * (size_t)T);
    for (int i = 0; i < T; i++) ids[i] = (i * 7919 + 13) % V;
    float *full = malloc(sizeof(float) * (size_t)T * V), *ref = malloc(sizeof(float) * (size_t)T * V);
    float *one = malloc(sizeof(float) * (size_t)V);
    for (int th = 1; th <= 4; th++) {
        Ctx *c = ctx_new_kv(m, th, kv, &e);
        CHECK(c != NULL);
        if (!c) break;
        if (th == 1) {
            CHECK_INT(ctx_eval(c, ids, T, full, true, NULL, &e), 0);
            ctx_reset(c);
        }
        double worst = 0;
        int same = 1;
        for (int t = 0; t < T; t++) {
            CHECK_INT(ctx_eval(c, &ids[t], 1, one, false, NULL, &e), 0);
            double d = max_diff(one, full + (size_t)t * V, (size_t)V);
            worst = d > worst ? d : worst;
            if (th == 1) memcpy(ref + (size_t)t * V, one, sizeof(float) * (size_t)V);
            else same &= !memcmp(ref + (size_t)t * V, one, sizeof(float) * (size_t)V);
        }
        if (!(worst <= tol) || !same)
            fprintf(stderr, "%s kv=%s threads=%d: decoding vs prefill max |d logit| = %g (tolerance %g); bits %s one "
                    "thread's\n", tag, dtype_name(kv), th, worst, tol, same ? "equal" : "differ from");
        CHECK(worst <= tol);
        CHECK(same);
        ctx_free(c);
    }
    free(ids), free(full), free(ref), free(one);
}

// Every cache type the model's heads allow (Q8_0: heads of a multiple of 32 values).
static void test_decode_threads(const char *tag, const Model *m, int T, double tol) {
    test_decode_threads_kv(tag, m, T, tol, DT_F32);
    test_decode_threads_kv(tag, m, T, kv_tol(DT_F16, tol), DT_F16);
    if (m->cfg.head_dim % 32 == 0) test_decode_threads_kv(tag, m, T, kv_tol(DT_Q8_0, tol), DT_Q8_0);
}

// The F16 (or Q8_0) KV cache against the F32 one on the same model: prefill over T tokens
// (beyond the prefill chunk when T > 512) moves the logits by more than nothing (the rounding
// is really applied) and by at most `bound` (what half precision's 2^-11 relative rounding of
// keys and values does here: measured 1-3e-3 on these random models, logits of magnitude
// 5-10; Q8_0's steps of 1/127 of a block's largest value: KV_Q8_BOUND). The cache's type is
// reported, and other types are refused.
static void test_kv_round(const char *tag, const Model *m, int T, double bound, DType kv) {
    Err e = {0};
    int V = m->cfg.n_vocab;
    Ctx *a = ctx_new_kv(m, 2, DT_F32, &e), *b = ctx_new_kv(m, 2, kv, &e);
    CHECK(a && b);
    if (!a || !b) return;
    CHECK_INT(ctx_kv(a), DT_F32);
    CHECK_INT(ctx_kv(b), kv);
    int *ids = malloc(sizeof(int) * (size_t)T);
    for (int i = 0; i < T; i++) ids[i] = (i * 7919 + 13) % V;
    float *la = malloc(sizeof(float) * (size_t)T * V), *lb = malloc(sizeof(float) * (size_t)T * V);
    CHECK_INT(ctx_eval(a, ids, T, la, true, NULL, &e), 0);
    CHECK_INT(ctx_eval(b, ids, T, lb, true, NULL, &e), 0);
    double d = max_diff(la, lb, (size_t)T * V), mag = 0;
    for (size_t i = 0; i < (size_t)T * V; i++) mag = fmax(mag, fabs(la[i]));
    fprintf(stderr, "%s T=%d: %s vs F32 KV cache max |d logit| = %g (max |logit| %g, bound %g)\n", tag, T,
            dtype_name(kv), d, mag, bound);
    CHECK(d > 0);
    CHECK(d <= bound);
    free(ids), free(la), free(lb);
    ctx_free(a), ctx_free(b);
    CHECK(ctx_new_kv(m, 1, DT_BF16, &e) == NULL);
    CHECK(strstr(e.msg, "BF16") != NULL);
    if (m->cfg.head_dim % 32) { // Q8_0 blocks do not fit the heads: refused with the sizes
        CHECK(ctx_new_kv(m, 1, DT_Q8_0, &e) == NULL);
        char want[64];
        snprintf(want, sizeof want, "this model's have %d", m->cfg.head_dim);
        CHECK(strstr(e.msg, want) != NULL);
    }
}

// Values beyond F16's range: layer 0's attention norm gain scaled by 1e5 makes its keys and
// values ~1e5, finite in F32 but over F16's 65504 (as BF16 weights may). The F16 cache
// saturates them, so the logits stay finite as the F32 cache's are, in prefill and in a
// decoded token (an infinite key or value made them NaN).
static void test_kv_f16_range(void) {
    NewModelParams p = newmodel_defaults();
    p.n_layer = 2, p.n_head = 2, p.n_embd = 32, p.n_ctx = 16, p.std = 0.2f, p.seed = 17;
    char dir[CHECK_PATH_LEN], path[CHECK_PATH_LEN + 32];
    snprintf(dir, sizeof dir, "%s/huge", tmpdir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    Err e = {0};
    CHECK_INT(newmodel_write(dir, &p, NULL, &e), 0);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *img = malloc((size_t)len);
    CHECK(fread(img, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    StFile *st = st_open_mem(img, (size_t)len, path, &e);
    CHECK(st != NULL);
    int scaled = 0;
    for (int i = 0; st && i < st_count(st); i++) {
        const WTensor *t = st_at(st, i);
        if (strcmp(t->name, "h.0.ln_1.weight") || t->t.dt != DT_F32) continue;
        for (size_t j = 0; j < t->nbytes / 4; j++) ((float *)(uintptr_t)t->t.data)[j] *= 1e5f;
        scaled++;
    }
    st_close(st);
    CHECK_INT(scaled, 1);
    f = fopen(path, "wb");
    CHECK(f && fwrite(img, 1, (size_t)len, f) == (size_t)len);
    if (f) fclose(f);
    free(img);
    Model *m = model_open(dir, NULL, &e);
    CHECK(m != NULL);
    if (!m) return;
    int ids[7] = {1, 5, 9, 2, 7, 3, 4}, V = m->cfg.n_vocab;
    float *lg = malloc(sizeof(float) * 7 * (size_t)V);
    for (int k = 0; k < 2; k++) {
        Ctx *c = ctx_new_kv(m, 2, k ? DT_F16 : DT_F32, &e);
        CHECK(c != NULL);
        if (!c) continue;
        CHECK_INT(ctx_eval(c, ids, 7, lg, true, NULL, &e), 0);
        size_t bad = 0;
        for (size_t i = 0; i < 7 * (size_t)V; i++) bad += !isfinite(lg[i]);
        int next = 6;
        CHECK_INT(ctx_eval(c, &next, 1, lg, false, NULL, &e), 0);
        for (int i = 0; i < V; i++) bad += !isfinite(lg[i]);
        fprintf(stderr, "layer 0 norm gain x1e5, kv %s: %zu logits not finite\n", k ? "F16" : "F32", bad);
        CHECK_INT((int)bad, 0);
        ctx_free(c);
    }
    free(lg);
    model_free(m);
}

// The same for m quantized to Q8_0 ([out, in] weights; x quantized for the dot products,
// hence the wider tolerance against the prefill, which dequantizes the weights).
static void test_decode_q8_0(const char *tag, const Model *m, int T) {
    QuantReport rep;
    Err e = {0};
    Model *q = model_quantize(m, DT_Q8_0, true, NULL, &rep, &e);
    CHECK(q != NULL);
    if (!q) return;
    quant_report_free(&rep);
    test_decode_threads(tag, q, T, 2e-2);
    model_free(q);
}

// Resident memory of this process in MB (/proc/self/statm), or -1.
static double rss_mb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = -1;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
        fclose(f);
    }
    return res < 0 ? -1 : (double)res * (double)sysconf(_SC_PAGESIZE) / 1e6;
}

// A long context costs what its text uses: the KV cache grows as the text does (it was
// allocated and zeroed for n_ctx, here 65,536 positions: 537 MB of F32 keys and values, before
// the first token). A prompt, then decoding past the first two doublings, equals a full pass.
static void test_kv_grows(void) {
    NewModelParams p = newmodel_defaults();
    p.family = "llama", p.n_layer = 4, p.n_head = 4, p.n_kv_head = 4, p.n_embd = 256, p.n_ctx = 65536;
    p.std = 0.2f, p.seed = 23;
    Model *m = make("llama-64k", p);
    const int T = 700, P = 200, V = m->cfg.n_vocab;
    Err e = {0};
    double before = rss_mb();
    Ctx *c = ctx_new_kv(m, 2, DT_F32, &e);
    CHECK(c != NULL);
    int *ids = malloc(sizeof(int) * T);
    for (int i = 0; i < T; i++) ids[i] = (i * 31 + 7) % V;
    float *lg = malloc(sizeof(float) * (size_t)T * V), *full = malloc(sizeof(float) * (size_t)T * V);
    CHECK_INT(ctx_eval(c, ids, P, lg, true, NULL, &e), 0);
    for (int t = P; t < T; t++) CHECK_INT(ctx_eval(c, &ids[t], 1, lg + (size_t)t * V, false, NULL, &e), 0);
    double grown = rss_mb() - before;
    if (!(before >= 0 && grown < 64)) fprintf(stderr, "a 65,536-position context after %d tokens: +%.0f MB resident\n", T, grown);
    CHECK(before >= 0 && grown < 64); // 4 layers x 4 groups x 1024 positions x 64 x 4 bytes x 2: 8.4 MB
    ctx_reset(c);
    CHECK_INT(ctx_eval(c, ids, T, full, true, NULL, &e), 0);
    double d = max_diff(lg, full, (size_t)T * V), big = 0;
    for (size_t i = 0; i < (size_t)T * V; i++) big = fabs(full[i]) > big ? fabs(full[i]) : big;
    fprintf(stderr, "llama 64K: prompt %d then decoding to %d against one pass: max |d logit| %g (max |logit| %g)\n", P, T, d, big);
    CHECK(d <= 1e-3); // 2.4e-4 measured (logits up to 16 on this model; 2e-4 on the others' 6-9)
    // room reserved up front (bench does, so that no repetition times a copy), not beyond n_ctx
    CHECK_INT(ctx_reserve(c, p.n_ctx + 1, &e), -1);
    CHECK(strstr(e.msg, "exceed the context of 65536") != NULL);
    CHECK_INT(ctx_reserve(c, 3000, &e), 0);
    ctx_free(c);
    free(ids), free(lg), free(full);
    model_free(m);
}

// Ctrl-C during rollout's products: a watcher sets the stop flag once the product's start
// (out set to the identity) shows, after the forward pass; with 24 layers of 1,024 tokens the
// products take long enough that a later layer sees it: "interrupted". (Before 2026-12-06 the
// products never looked at the flag and ran to their end: a long text on a deep model could not
// be stopped for minutes.)
typedef struct {
    volatile float *out;
    volatile sig_atomic_t stop;
    volatile int done;
} RollWatch;

static void *roll_watch(void *arg) {
    RollWatch *w = arg;
    while (!w->done && w->out[1] != 0.0f) {}
    w->stop = 1;
    return NULL;
}

static void test_rollout_stop(void) {
    NewModelParams p = newmodel_defaults();
    p.n_layer = 24, p.n_head = 1, p.n_embd = 16, p.n_ctx = 1024, p.seed = 5;
    Model *m = make("rollout-deep", p);
    Err e = {0};
    Ctx *c = ctx_new(m, 2, &e);
    CHECK(c != NULL);
    if (!c) return;
    enum { N = 1024 };
    int *ids = malloc(sizeof(int) * N);
    float *out = malloc(sizeof(float) * N * N);
    for (int i = 0; i < N; i++) ids[i] = 3 + i % 50;
    for (size_t i = 0; i < (size_t)N * N; i++) out[i] = 7.0f;
    RollWatch w = {out, 0, 0};
    ctx_set_stop(c, &w.stop);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, roll_watch, &w) == 0);
    int rc = heads_rollout(c, ids, NULL, N, out, &e);
    w.done = 1;
    pthread_join(th, NULL);
    CHECK(rc != 0 && strstr(e.msg, "interrupted"));
    // not stopped: a distribution in each row, nothing above the diagonal (a decoder)
    w.stop = 0;
    e = (Err){0};
    CHECK(heads_rollout(c, ids, NULL, 64, out, &e) == 0);
    double worst = 0;
    for (int i = 0; i < 64; i++) {
        double s = 0;
        for (int j = 0; j < 64; j++) {
            s += out[i * 64 + j];
            if (j > i) CHECK(out[i * 64 + j] == 0.0f);
        }
        if (fabs(s - 1) > worst) worst = fabs(s - 1);
    }
    CHECK(worst < 1e-5);
    free(ids), free(out);
    ctx_free(c);
    model_free(m);
}

int main(void) {
    if (!mkdtemp(check_tmpl(tmpdir, sizeof tmpdir, "qkv-test-engine"))) return 1;
    test_kv_grows();
    test_rollout_stop();
    NewModelParams p = newmodel_defaults();
    p.n_layer = 3, p.n_head = 4, p.n_embd = 64, p.n_ctx = 600, p.std = 0.2f, p.seed = 11;
    Model *m = make("f32", p);
    test_incremental(m, 37, 1, DT_F32);
    test_incremental(m, 37, 2, DT_F32);
    test_incremental(m, 600, 2, DT_F32); // crosses the prefill chunk size
    test_incremental(m, 37, 1, DT_F16);
    test_incremental(m, 600, 2, DT_F16);
    test_kv_round("gpt2", m, 7, 1e-2, DT_F16);
    test_kv_round("gpt2", m, 600, 1e-2, DT_F16);
    test_kv_f16_range();
    test_trace(m);
    test_errors(m);
    test_sampling(m);
    test_from_layer("gpt2", m, 600); // crosses the prefill chunk size
    test_decode_threads("gpt2", m, 29, 2e-4);
    {
        // heads of 32 values: the Q8_0 cache (a block a position and head) too
        NewModelParams q = p;
        q.n_head = 2, q.seed = 18;
        Model *m32 = make("gpt2-hd32", q);
        test_incremental(m32, 37, 1, DT_Q8_0);
        test_incremental(m32, 600, 2, DT_Q8_0); // crosses the prefill chunk size
        test_kv_round("gpt2 hd=32", m32, 7, KV_Q8_BOUND, DT_Q8_0);
        test_kv_round("gpt2 hd=32", m32, 600, KV_Q8_BOUND, DT_Q8_0);
        test_decode_threads("gpt2 hd=32", m32, 29, 2e-4);
        model_free(m32);
    }
    {
        // d = 48: down's row blocks of 24 do not start on multiples of 16, so up and down
        // take a section each
        NewModelParams q = p;
        q.n_embd = 48, q.n_ctx = 64, q.seed = 14;
        Model *m48 = make("gpt2-48", q);
        test_decode_threads("gpt2 d=48", m48, 29, 2e-4);
        test_decode_q8_0("gpt2 d=48 q8_0", m48, 29);
        model_free(m48);
    }
    {
        NewModelParams q = newmodel_defaults();
        q.family = "llama", q.n_layer = 3, q.n_head = 4, q.n_kv_head = 2, q.n_embd = 64, q.n_ctx = 64;
        q.std = 0.2f, q.seed = 12, q.tied = false;
        Model *ml = make("llama", q);
        test_from_layer("llama", ml, 23);
        test_decode_threads("llama", ml, 23, 2e-4);
        test_kv_round("llama", ml, 23, 1e-2, DT_F16);
        test_decode_q8_0("llama q8_0", ml, 23);
        model_free(ml);
        // KV groups that do not divide among the threads (3 on 2 or 4, as SmolLM2's; one on
        // 2-4): their heads go in pieces, each group prepared once
        q.n_head = 6, q.n_kv_head = 3, q.n_embd = 96, q.seed = 15;
        Model *m3 = make("llama-3-groups", q);
        test_decode_threads("llama 3 groups", m3, 23, 2e-4);
        model_free(m3);
        q.n_embd = 192; // the same with heads of 32: the Q8_0 cache's groups in pieces
        m3 = make("llama-3-groups-hd32", q);
        test_decode_threads_kv("llama 3 groups hd=32", m3, 23, KV_Q8_TOL, DT_Q8_0);
        model_free(m3);
        q.n_head = 4, q.n_kv_head = 1, q.n_embd = 64, q.seed = 16;
        Model *m1 = make("llama-1-group", q);
        test_decode_threads("llama 1 group", m1, 23, 2e-4);
        model_free(m1);
        // heads of 64 (GPT-2's, SmolLM2's), two to a KV group: the Q8_0 cache of a block
        // pair a position
        q.n_head = 2, q.n_kv_head = 1, q.n_embd = 128, q.seed = 19;
        Model *m64 = make("llama-hd64", q);
        test_decode_threads("llama hd=64", m64, 23, 2e-4);
        test_kv_round("llama hd=64", m64, 23, KV_Q8_BOUND, DT_Q8_0);
        model_free(m64);
        q.n_head = 4, q.n_kv_head = 2, q.seed = 12;
        q.family = "bert", q.n_kv_head = 0, q.seed = 13, q.tied = true;
        Model *mb = make("bert", q);
        test_from_layer("bert", mb, 17);
        model_free(mb);
    }

    // the same weights stored as F16/BF16 agree with F32 to the precision of the type
    p.n_ctx = 64;
    Model *f = make("f32b", p);
    for (int k = 0; k < 2; k++) {
        NewModelParams q = p;
        q.dtype = k ? DT_BF16 : DT_F16;
        Model *h = make(k ? "bf16" : "f16", q);
        CHECK(h->tok_embd.dt == q.dtype && h->dtype == q.dtype);
        Err e = {0};
        Ctx *c1 = ctx_new(f, 2, &e), *c2 = ctx_new(h, 2, &e);
        int ids[20];
        for (int i = 0; i < 20; i++) ids[i] = i * 11 % f->cfg.n_vocab;
        int V = f->cfg.n_vocab;
        float *a = malloc(sizeof(float) * 20 * V), *b = malloc(sizeof(float) * 20 * V);
        CHECK_INT(ctx_eval(c1, ids, 20, a, true, NULL, &e), 0);
        CHECK_INT(ctx_eval(c2, ids, 20, b, true, NULL, &e), 0);
        double d = max_diff(a, b, (size_t)20 * V), mag = 0;
        for (size_t i = 0; i < (size_t)20 * V; i++) mag = fmax(mag, fabs(a[i]));
        if (!(d < (k ? 0.05 : 0.01) * mag)) fprintf(stderr, "%s vs f32: max |d| %g (max |logit| %g)\n", k ? "bf16" : "f16", d, mag);
        CHECK(d < (k ? 0.05 : 0.01) * mag);
        // and decoding through the F16/BF16 matrix-vector kernels equals their prefill
        ctx_reset(c2);
        float *one = malloc(sizeof(float) * V);
        for (int t = 0; t < 20; t++) CHECK_INT(ctx_eval(c2, &ids[t], 1, one, false, NULL, &e), 0);
        CHECK(max_diff(one, b + (size_t)19 * V, (size_t)V) < 2e-4);
        free(one), free(a), free(b);
        ctx_free(c1), ctx_free(c2);
        model_free(h);
    }
    model_free(f);
    model_free(m);
    char cmd[CHECK_PATH_LEN];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmpdir);
    return CHECK_DONE();
}
