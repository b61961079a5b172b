// fwd_bench.c - single-sequence decoding through the whole forward pass, a model and its
// conversions to other weight types in one process, the repetitions interleaved so that every
// type sees the same minutes of a machine whose bandwidth drifts; each figure beside the read
// bandwidth measured just before it.
//   build/tests/unit/fwd_bench MODEL [THREADS [REPS [GEN [TYPES]]]]
//   TYPES: comma-separated (F32 = the model as loaded, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K,
//   Q4_K_M: llama.cpp's mix of Q4_K and Q6_K);
//   default F32,Q8_0
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "eval/forward.h"
#include "kern/bound.h"
#include "kern/ops.h"
#include "model/quantize.h"

enum { MAX_TYPES = 8, PROMPT = 16 };

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
    char types[256];
    snprintf(types, sizeof types, "%s", argc > 5 ? argv[5] : "F32,Q8_0");
    Err e = {0};
    Model *base = model_open(argv[1], NULL, &e);
    if (!base) return fprintf(stderr, "fwd_bench: %s\n", e.msg), 1;
    Model *models[MAX_TYPES];
    const char *names[MAX_TYPES];
    int n = 0;
    for (char *tok = strtok(types, ","); tok && n < MAX_TYPES; tok = strtok(NULL, ",")) {
        int dt = dtype_named(tok);
        if (dt < 0) return fprintf(stderr, "fwd_bench: unknown type '%s'\n", tok), 2;
        names[n] = tok;
        if (dt == (int)base->dtype) {
            models[n++] = base;
            continue;
        }
        QuantReport rep;
        double t0 = clock_now();
        models[n] = model_quantize(base, (DType)dt, true, &rep, &e);
        if (!models[n]) return fprintf(stderr, "fwd_bench: %s\n", e.msg), 1;
        fprintf(stderr, "%s: converted in %.1f s\n", tok, clock_now() - t0);
        quant_report_free(&rep);
        n++;
    }
    int ids[PROMPT];
    for (int i = 0; i < PROMPT; i++) ids[i] = (i * 7919) % base->cfg.n_vocab;
    float *lg = malloc(sizeof(float) * (size_t)base->cfg.n_vocab);
    Ctx *ctx[MAX_TYPES];
    double bytes[MAX_TYPES], best[MAX_TYPES], frac[MAX_TYPES];
    for (int k = 0; k < n; k++) {
        if (!(ctx[k] = ctx_new(models[k], nth, &e))) return fprintf(stderr, "fwd_bench: %s\n", e.msg), 1;
        LinearCount c;
        ctx_eval(ctx[k], ids, PROMPT, lg, false, NULL, &e);
        linear_count(ctx_pool(ctx[k]), &c);
        int id = argmax(lg, base->cfg.n_vocab);
        ctx_eval(ctx[k], &id, 1, lg, false, NULL, &e);
        linear_count(ctx_pool(ctx[k]), NULL);
        bytes[k] = c.mv_bytes;
        best[k] = 1e30;
        frac[k] = 0;
    }
    printf("%s, %d threads, %s kernels, %d tokens after a prompt of %d, best of %d\n", base->name, nth, ops_kernels(), gen,
           PROMPT, reps);
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < n; k++) {
            double bs;
            if (bound_read_bytes_s(ctx_pool(ctx[k]), (size_t)256 << 20, 2, &bs, &e))
                return fprintf(stderr, "fwd_bench: %s\n", e.msg), 1;
            ctx_reset(ctx[k]);
            ctx_eval(ctx[k], ids, PROMPT, lg, false, NULL, &e);
            double t0 = clock_now();
            for (int g = 0; g < gen; g++) {
                int id = argmax(lg, base->cfg.n_vocab);
                if (ctx_eval(ctx[k], &id, 1, lg, false, NULL, &e)) return fprintf(stderr, "fwd_bench: %s\n", e.msg), 1;
            }
            double t = clock_now() - t0;
            double f = bytes[k] * gen / t / bs;
            if (t < best[k]) best[k] = t;
            if (f > frac[k]) frac[k] = f;
            printf("  rep %d %-5s %6.1f tok/s  %4.0f%% of %.1f GB/s\n", r, names[k], gen / t, 100 * f, bs / 1e9);
            fflush(stdout);
        }
    for (int k = 0; k < n; k++)
        printf("%-5s %6.1f MB/token  best %6.1f tok/s = %.2fx %s; best fraction of the read bandwidth %.0f%%\n", names[k],
               bytes[k] / 1e6, gen / best[k], best[0] / best[k], names[0], 100 * frac[k]);
    for (int k = 0; k < n; k++) ctx_free(ctx[k]);
    for (int k = 0; k < n; k++)
        if (models[k] != base) model_free(models[k]);
    model_free(base);
    free(lg);
    return 0;
}
