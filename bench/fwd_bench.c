// fwd_bench.c - single-sequence decoding through the whole forward pass, a model and its
// conversions to other weight types in one process, the repetitions interleaved so that every
// type sees the same minutes of a machine whose bandwidth drifts; each figure beside the read
// bandwidth measured just before it.
//   build/tests/unit/fwd_bench MODEL [THREADS [REPS [GEN [TYPES [PROMPT]]]]]
//   TYPES: comma-separated (F32 = the model as loaded, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K,
//   Q4_K_M: llama.cpp's mix of Q4_K and Q6_K), each optionally with /kvf16: the same weights
//   with an F16 KV cache (ctx_new_kv); default F32,Q8_0
//   PROMPT: tokens evaluated before the timed ones (default 16)
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "eval/forward.h"
#include "kern/bound.h"
#include "kern/ops.h"
#include "model/quantize.h"

enum { MAX_TYPES = 8, MAX_REPS = 100 };

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int dtype_named(const char *s) {
    if (!strcmp(s, "Q4_K_M")) return (int)QUANT_Q4_K_M;
    for (int d = 0; d < DT_COUNT; d++)
        if (!strcmp(dtype_name((DType)d), s)) return d;
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: fwd_bench MODEL [THREADS [REPS [GEN [TYPES]]]]\n");
        return 2;
    }
    int nth = argc > 2 ? atoi(argv[2]) : 2, reps = argc > 3 ? atoi(argv[3]) : 3, gen = argc > 4 ? atoi(argv[4]) : 64;
    int prompt = argc > 6 ? atoi(argv[6]) : 16;
    if (reps < 1 || reps > MAX_REPS || prompt < 1) return fprintf(stderr, "fwd_bench: 1..%d reps, a prompt >= 1\n", MAX_REPS), 2;
    char types[256];
    snprintf(types, sizeof types, "%s", argc > 5 ? argv[5] : "F32,Q8_0");
    Err e = {0};
    Model *base = model_open(argv[1], NULL, &e);
    if (!base) return fprintf(stderr, "fwd_bench: %s\n", e.msg), 1;
    Model *models[MAX_TYPES];
    const char *names[MAX_TYPES];
    bool kv16[MAX_TYPES];
    int n = 0;
    for (char *tok = strtok(types, ","); tok && n < MAX_TYPES; tok = strtok(NULL, ",")) {
        char *slash = strchr(tok, '/');
        names[n] = tok;
        kv16[n] = slash && !strcmp(slash, "/kvf16");
        if (slash && !kv16[n]) return fprintf(stderr, "fwd_bench: unknown option '%s' (/kvf16)\n", slash), 2;
        char ty[32];
        snprintf(ty, sizeof ty, "%.*s", slash ? (int)(slash - tok) : (int)strlen(tok), tok);
        int dt = dtype_named(ty);
        if (dt < 0) return fprintf(stderr, "fwd_bench: unknown type '%s'\n", ty), 2;
        if (dt == (int)base->dtype) {
            models[n++] = base;
            continue;
        }
        int same = -1; // the same weights already converted for another entry
        for (int k = 0; k < n; k++)
            if (models[k] != base && (int)(models[k]->quant_dt) == dt) same = k;
        if (same >= 0) {
            models[n++] = models[same];
            continue;
        }
        QuantReport rep;
        double t0 = clock_now();
        models[n] = model_quantize(base, (DType)dt, true, NULL, &rep, &e);
        if (!models[n]) return fprintf(stderr, "fwd_bench: %s\n", e.msg), 1;
        fprintf(stderr, "%s: converted in %.1f s\n", tok, clock_now() - t0);
        quant_report_free(&rep);
        n++;
    }
    int *ids = malloc(sizeof(int) * (size_t)prompt);
    for (int i = 0; i < prompt; i++) ids[i] = (i * 7919) % base->cfg.n_vocab;
    float *lg = malloc(sizeof(float) * (size_t)base->cfg.n_vocab);
    Ctx *ctx[MAX_TYPES];
    double bytes[MAX_TYPES], best[MAX_TYPES], frac[MAX_TYPES], tps[MAX_TYPES][MAX_REPS];
    for (int k = 0; k < n; k++) {
        if (!(ctx[k] = ctx_new_kv(models[k], nth, kv16[k] ? DT_F16 : DT_F32, &e)))
            return fprintf(stderr, "fwd_bench: %s\n", e.msg), 1;
        LinearCount c;
        ctx_eval(ctx[k], ids, prompt, lg, false, NULL, &e);
        linear_count(ctx_pool(ctx[k]), &c);
        int id = argmax(lg, base->cfg.n_vocab);
        ctx_eval(ctx[k], &id, 1, lg, false, NULL, &e);
        linear_count(ctx_pool(ctx[k]), NULL);
        bytes[k] = c.mv_bytes;
        best[k] = 1e30;
        frac[k] = 0;
    }
    printf("%s, %d threads, %s kernels, %d tokens after a prompt of %d, best of %d\n", base->name, nth, ops_kernels(), gen,
           prompt, reps);
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < n; k++) {
            double bs;
            if (bound_read_bytes_s(ctx_pool(ctx[k]), (size_t)256 << 20, 2, &bs, &e))
                return fprintf(stderr, "fwd_bench: %s\n", e.msg), 1;
            ctx_reset(ctx[k]);
            ctx_eval(ctx[k], ids, prompt, lg, false, NULL, &e);
            double t0 = clock_now();
            for (int g = 0; g < gen; g++) {
                int id = argmax(lg, base->cfg.n_vocab);
                if (ctx_eval(ctx[k], &id, 1, lg, false, NULL, &e)) return fprintf(stderr, "fwd_bench: %s\n", e.msg), 1;
            }
            double t = clock_now() - t0;
            double f = bytes[k] * gen / t / bs;
            if (t < best[k]) best[k] = t;
            if (f > frac[k]) frac[k] = f;
            tps[k][r] = gen / t;
            printf("  rep %d %-5s %6.1f tok/s  %4.0f%% of %.1f GB/s\n", r, names[k], gen / t, 100 * f, bs / 1e9);
            fflush(stdout);
        }
    for (int k = 0; k < n; k++) {
        qsort(tps[k], (size_t)reps, sizeof(double), cmp_double);
        double med = reps % 2 ? tps[k][reps / 2] : 0.5 * (tps[k][reps / 2 - 1] + tps[k][reps / 2]);
        printf("%-12s %6.1f MB/token  best %6.1f tok/s = %.2fx %s, median %6.1f; best fraction of the read bandwidth "
               "%.0f%%\n", names[k], bytes[k] / 1e6, gen / best[k], best[0] / best[k], names[0], med, 100 * frac[k]);
    }
    for (int k = 0; k < n; k++) ctx_free(ctx[k]);
    for (int k = 0; k < n; k++) {
        bool first = models[k] != base;
        for (int j = 0; j < k; j++) first &= models[j] != models[k];
        if (first) model_free(models[k]);
    }
    free(ids);
    model_free(base);
    free(lg);
    return 0;
}
