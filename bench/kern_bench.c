// kern_bench.c - the decoding kernels alone, at GPT-2 124M's shapes, against the read
// bandwidth measured in the same run: each weight type's GB/s per kind of layer and for a
// whole token (12 layers of attention c_attn/c_proj and MLP c_fc/c_proj, then the tied head
// [50257, 768]), as a fraction of the read bound, and its tokens per second of weights read
// against F32's (the yardstick) in the same run.
//
// F32, F16 and BF16 layers are [in, out] as GPT-2's safetensors hold them; quantized ones are
// [out, in] as GGUF holds them, made by quant_rows from random weights (std 0.02). Q4_K_M is
// `quantize q4_k_m` (quant_weight_type: llama.cpp's mix): for this shape Q6_K for the head,
// for c_attn (a fused attn_qkv: Q5_K in llama.cpp, which qkv lacks) and for mlp c_proj in
// layers 0, 3, 6, 9, 10 and 11, Q4_K elsewhere.
// "one section": the same token's kernels with no section between the linears: each thread
// runs its fixed share of every linear's rows in turn (its own partial sums of an [in, out]
// one, not added), all in one pool_run. Against the token through linear_forward (a section a
// linear, chunks first come first served, the partial sums added) it shows what the sections
// themselves cost where the memory is fast.
// Prefill: the same weights through linear_forward at T = PREFILL tokens (sgemm over panels
// converted to f32), every layer once, against F32's time.
//   build/tests/unit/kern_bench [THREADS [REPS [KERNELS [TYPES [decode]]]]]
//   TYPES: comma-separated names (F32,F16,BF16,Q8_0,Q4_0,Q4_1,Q4_K,Q6_K,I8_AFFINE,Q4_K_M); default all
//   decode: leave the prefill out
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"
#include "eval/sample.h"
#include "kern/bound.h"
#include "kern/blocks.h"
#include "kern/kernels.h"
#include "kern/ops.h"
#include "kern/quant.h"
#include "model/quantize.h"

enum { LAYERS = 12, D = 768, VOCAB = 50257, KIND_HEAD = 4, SRC_ROWS = 1024, PREFILL = 512, MAX_REPS = 64 };

typedef struct {
    const char *name;
    int in, out;
    int count;
} Kind;

static const Kind kinds[] = {
    {"c_attn [768,2304]", D, 3 * D, LAYERS}, {"attn c_proj [768,768]", D, D, LAYERS},
    {"c_fc [768,3072]", D, 4 * D, LAYERS},   {"mlp c_proj [3072,768]", 4 * D, D, LAYERS},
    {"head [50257,768]", D, VOCAB, 1},
};
enum { KINDS = sizeof kinds / sizeof kinds[0] };

typedef struct {
    const char *name;
    DType dt; // every layer's type, unless mixed
    bool mixed; // Q4_K_M
} Config;

static const Config configs[] = {
    {"F32", DT_F32, false},   {"F16", DT_F16, false},   {"BF16", DT_BF16, false},
    {"Q8_0", DT_Q8_0, false}, {"Q4_0", DT_Q4_0, false}, {"Q4_1", DT_Q4_1, false},
    {"Q4_K", DT_Q4_K, false}, {"Q6_K", DT_Q6_K, false}, {"I8_AFFINE", DT_I8_AFFINE, false},
    {"Q4_K_M", DT_Q4_K, true},
};
enum { CONFIGS = sizeof configs / sizeof configs[0] };

static DType type_of(const Config *c, int kind, int layer) {
    static const WeightId ids[KINDS] = {W_QKV, W_O, W_UP, W_DOWN, W_OUTPUT};
    if (!c->mixed) return c->dt;
    return quant_weight_type(QUANT_Q4_K_M, ids[kind], kind == KIND_HEAD ? -1 : layer, LAYERS, kind == KIND_HEAD);
}

static bool wanted(const char *list, const char *name) {
    if (!list) return true;
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n])) return true;
    return false;
}

// A weight of `kind` stored as dt: float types filled with random values, quantized ones
// quantized from SRC_ROWS random rows and tiled (quantizing all 124M values would take longer
// than the measurement).
static void *make_weight(const Kind *k, DType dt, bool out_in, Rng *rng, size_t *bytes) {
    const int rows = out_in ? k->out : k->in, cols = out_in ? k->in : k->out;
    const size_t rb = dtype_row_bytes(dt, cols);
    *bytes = rb * (size_t)rows;
    unsigned char *w = mem_calloc_huge(*bytes); // on 2 MB pages, as the engine maps weights (base/fs.c)
    const int src_rows = rows < SRC_ROWS ? rows : SRC_ROWS;
    float *src = malloc(sizeof(float) * (size_t)src_rows * cols);
    for (size_t i = 0; i < (size_t)src_rows * cols; i++) { // about normal, std 0.02
        float u = rng_uniform(rng) + rng_uniform(rng) + rng_uniform(rng) - 1.5f;
        src[i] = u * 0.04f;
    }
    Err e = {0};
    if (quant_rows(dt, src, src_rows, cols, w, &e)) {
        fprintf(stderr, "kern_bench: %s\n", e.msg);
        exit(1);
    }
    for (int r = src_rows; r < rows; r++) memcpy(w + rb * (size_t)r, w + rb * (size_t)(r % src_rows), rb);
    free(src);
    return w;
}

// A token's linears with no section between them (see the top): thread ith takes rows
// [ith/nth, (ith+1)/nth) of each, block types on x quantized beforehand (xq768, xq3072).
typedef struct {
    Linear *const *L;
    const float *x;
    float *y[8];
    const XQ *xq768, *xq3072;
} OneSection;

static void one_section_job(void *arg, int ith, int nth) {
    const OneSection *J = arg;
    const Kernels *K = kern_get();
    float *y = J->y[ith % 8];
    for (int l = 0; l <= LAYERS; l++)
        for (int k = 0; k < KINDS; k++) {
            if ((k == KIND_HEAD) != (l == LAYERS)) continue;
            const Linear *ln = &J->L[k][k == KIND_HEAD ? 0 : l];
            const int rows = ln->out_in ? ln->out : ln->in, align = ln->out_in ? 16 : 8;
            int r0 = rows / align * ith / nth * align, r1 = ith + 1 == nth ? rows : rows / align * (ith + 1) / nth * align;
            if (r1 <= r0) continue;
            const DType dt = ln->w.dt;
            const char *w = (const char *)ln->w.data + dtype_row_bytes(dt, ln->out_in ? ln->in : ln->out) * (size_t)r0;
            if (!ln->out_in) {
                memset(y, 0, sizeof(float) * (size_t)ln->out);
                K->mv_in_out[dt](w, ln->out, r1 - r0, ln->out, J->x + r0, y);
            } else if (dtype_block(dt) > 1) {
                K->mv_out_in_q[dt](w, ln->in, r1 - r0, ln->in == D ? J->xq768 : J->xq3072, y);
            } else {
                K->mv_out_in[dt](w, ln->in, r1 - r0, J->x, y);
            }
        }
}

// x's first n values quantized for the block types' kernels, in buffers of their own.
static XQ quantized_x(const float *x, int n) {
    int16_t *q = malloc(sizeof(int16_t) * (size_t)n);
    float *d = malloc(sizeof(float) * (size_t)(n / QK)), *s = malloc(sizeof(float) * (size_t)(n / QK));
    void *bytes = malloc(blk_xq_bytes(n));
    XQ xq;
    kern_get()->quant_x(x, n, q, d, s, bytes, &xq);
    return xq;
}

// "; of the read bound: median M% (min-max)" over the n repetitions' fractions f (reordered)
static void print_fractions(double *f, int n) {
    double lo = f[0], hi = f[0];
    for (int i = 1; i < n; i++) lo = f[i] < lo ? f[i] : lo, hi = f[i] > hi ? f[i] : hi;
    printf("; of the read bound %.0f%% (%.0f-%.0f%%)\n", 100 * bound_median(f, n), 100 * lo, 100 * hi);
}

int main(int argc, char **argv) {
    int nth = argc > 1 ? atoi(argv[1]) : 2, reps = argc > 2 ? atoi(argv[2]) : 5;
    reps = reps < 1 ? 1 : reps > MAX_REPS ? MAX_REPS : reps;
    const char *types = argc > 4 ? argv[4] : NULL;
    const bool prefill = !(argc > 5 && !strcmp(argv[5], "decode"));
    Err e = {0};
    if (argc > 3 && strcmp(argv[3], "auto") && kern_use(argv[3], &e)) {
        fprintf(stderr, "kern_bench: %s\n", e.msg);
        return 2;
    }
    Pool *pool = pool_new(nth);
    ReadBound *rb = bound_read_new((size_t)512 << 20, &e);
    if (!rb) return fprintf(stderr, "kern_bench: %s\n", e.msg), 1;
    Rng rng;
    rng_seed(&rng, 1);
    float *x = calloc((size_t)PREFILL * 4 * D, sizeof(float)), *y = calloc((size_t)PREFILL * 4 * D + VOCAB, sizeof(float));
    for (int i = 0; i < PREFILL * 4 * D; i++) x[i] = (float)(i % 17) * 0.01f;
    printf("kernels %s, %d threads, best of %d\n", kern_name(), nth, reps);
    const XQ xq768 = quantized_x(x, D), xq3072 = quantized_x(x, 4 * D);
    float *ys = calloc((size_t)8 * VOCAB, sizeof(float)); // a thread's outputs: at most VOCAB
    double f32_tok_s = 0, f32_prefill = 0;
    for (int c = 0; c < CONFIGS; c++) {
        const Config *cf = &configs[c];
        if (!wanted(types, cf->name)) continue;
        const bool quantized = dtype_block(cf->dt) > 1 || cf->dt == DT_I8_AFFINE;
        Linear *L[KINDS];
        double bytes_kind[KINDS] = {0}, total_bytes = 0;
        for (int k = 0; k < KINDS; k++) {
            L[k] = calloc((size_t)kinds[k].count, sizeof(Linear));
            const bool out_in = quantized || k == KIND_HEAD;
            for (int l = 0; l < kinds[k].count; l++) {
                DType dt = type_of(cf, k, l);
                size_t b;
                const void *w = make_weight(&kinds[k], dt, out_in, &rng, &b);
                bytes_kind[k] += (double)b;
                L[k][l] = (Linear){.w = {.dt = dt, .ndim = 2, .n = (int64_t)kinds[k].in * kinds[k].out, .data = w},
                                   .out_in = out_in, .in = kinds[k].in, .out = kinds[k].out};
            }
            total_bytes += bytes_kind[k];
        }
        // the read bound is sampled right before and after the token and after the layers
        // kind by kind, each time held against the mean of the samples around it (the
        // machine's bandwidth drifts by a quarter from minute to minute here)
        double best_kind[KINDS], best_tok = 1e30, best_one = 1e30, best_prefill = 1e30, lo = 1e30, hi = 0;
        double f_tok[MAX_REPS], f_one[MAX_REPS], f_kind[KINDS][MAX_REPS];
        OneSection one = {L, x, {0}, &xq768, &xq3072};
        for (int i = 0; i < 8; i++) one.y[i] = ys + (size_t)i * VOCAB;
        for (int k = 0; k < KINDS; k++) best_kind[k] = 1e30;
        for (int r = 0; r < reps; r++) {
            double b[3];
            b[0] = bound_read_sample(pool, rb, 2);
            double t0 = clock_now();
            for (int l = 0; l < LAYERS; l++)
                for (int k = 0; k < KIND_HEAD; k++) linear_forward(pool, y, x, &L[k][l], 1);
            linear_forward(pool, y, x, &L[KIND_HEAD][0], 1);
            double t = clock_now() - t0;
            b[1] = bound_read_sample(pool, rb, 2);
            best_tok = t < best_tok ? t : best_tok;
            f_tok[r] = total_bytes / t / (0.5 * (b[0] + b[1]));
            t0 = clock_now();
            pool_run(pool, one_section_job, &one);
            double t1 = clock_now() - t0, b1 = bound_read_sample(pool, rb, 2);
            best_one = t1 < best_one ? t1 : best_one;
            f_one[r] = total_bytes / t1 / (0.5 * (b[1] + b1));
            double tk[KINDS];
            for (int k = 0; k < KINDS; k++) {
                t0 = clock_now();
                for (int l = 0; l < kinds[k].count; l++) linear_forward(pool, y, x, &L[k][l], 1);
                tk[k] = clock_now() - t0;
                best_kind[k] = tk[k] < best_kind[k] ? tk[k] : best_kind[k];
            }
            b[2] = bound_read_sample(pool, rb, 2);
            for (int k = 0; k < KINDS; k++) f_kind[k][r] = bytes_kind[k] / tk[k] / (0.5 * (b[1] + b[2]));
            for (int i = 0; i < 3; i++) lo = b[i] < lo ? b[i] : lo, hi = b[i] > hi ? b[i] : hi;
            // the layers at T = PREFILL (the head for the last token only, as a forward pass does)
            if (!prefill) continue;
            t0 = clock_now();
            for (int l = 0; l < LAYERS; l++)
                for (int k = 0; k < KIND_HEAD; k++) linear_forward(pool, y, x, &L[k][l], PREFILL);
            t = clock_now() - t0;
            best_prefill = t < best_prefill ? t : best_prefill;
        }
        if (c == 0) f32_tok_s = 1 / best_tok, f32_prefill = best_prefill;
        printf("%s: read bound %.1f-%.1f GB/s; one token's weights (%.0f MB) best %.1f GB/s, %.0f tok/s", cf->name,
               lo / 1e9, hi / 1e9, total_bytes / 1e6, total_bytes / best_tok / 1e9, 1 / best_tok);
        if (f32_tok_s > 0) printf(" = %.2fx F32", 1 / best_tok / f32_tok_s);
        print_fractions(f_tok, reps);
        printf("  the same kernels in one section (no section between the linears): best %.1f GB/s", total_bytes / best_one / 1e9);
        print_fractions(f_one, reps);
        if (prefill) {
            printf("  prefill, the layers at T=%d: %.0f tok/s", PREFILL, PREFILL / best_prefill);
            if (f32_prefill > 0) printf(" = %.2fx F32", f32_prefill / best_prefill);
            printf("\n");
        }
        for (int k = 0; k < KINDS; k++) {
            printf("  %-24s x%-2d best %5.1f GB/s", kinds[k].name, kinds[k].count, bytes_kind[k] / best_kind[k] / 1e9);
            print_fractions(f_kind[k], reps);
            for (int l = 0; l < kinds[k].count; l++) free((void *)L[k][l].w.data);
            free(L[k]);
        }
    }
    free(x), free(y), free(ys);
    bound_read_free(rb);
    pool_free(pool);
    return 0;
}
