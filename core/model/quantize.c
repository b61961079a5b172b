// quantize.c - converting a model's matrices in memory (see quantize.h): the new model
// borrows every other weight from the loaded one and owns one allocation holding the
// converted matrices; each converted weight is decoded again to measure its error.
#include "model/quantize.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "kern/quant.h"

enum { CHUNK_FLOATS = 1 << 18 }; // rows converted at a time: about 1 MB of float32

// One matrix to convert: src (base's), into *dst (the new model's), in layer `layer`. A linear
// stored [in, out] (GPT-2's Conv1D) is converted to [out, in] (lin, the new model's layer,
// then says so), as GGUF holds it: blocks run along the inputs, and decoding uses the
// [out, in] kernels, which read each output's row of blocks once.
typedef struct Item {
    const Tensor *src;
    Tensor *dst;
    Linear *lin; // the new model's linear when the item is transposed, else NULL
    DType dt;    // the type it is converted to
    int layer;
    char name[48];
    int64_t rows, cols; // as converted
    size_t offset;      // in the new allocation
} Item;

typedef struct Plan {
    Item *items;
    int n, cap;
} Plan;

static void plan_add(Plan *p, const Tensor *src, Tensor *dst, Linear *lin, int layer, WeightId w, DType dt) {
    if (!src->data) return;
    if (p->n == p->cap) p->items = xrealloc(p->items, sizeof *p->items * (size_t)(p->cap = p->cap ? 2 * p->cap : 16));
    Item *it = &p->items[p->n++];
    memset(it, 0, sizeof *it);
    it->src = src, it->dst = dst, it->layer = layer, it->dt = dt;
    if (layer >= 0) snprintf(it->name, sizeof it->name, "blk.%d.%s", layer, weight_name(w));
    else snprintf(it->name, sizeof it->name, "%s", weight_name(w));
    it->rows = src->shape[0];
    it->cols = src->ndim > 1 ? src->n / src->shape[0] : src->n;
    if (lin && !lin->out_in) it->lin = lin, it->rows = lin->out, it->cols = lin->in;
}

static size_t matrix_bytes(const Tensor *t) {
    if (!t->data) return 0;
    int64_t rows = t->ndim > 1 ? t->shape[0] : 1;
    return (size_t)rows * dtype_row_bytes(t->dt, t->n / rows);
}

static int64_t linear_bytes(const Linear *l) {
    return (int64_t)matrix_bytes(&l->w) + (l->bias ? (int64_t)sizeof(float) * l->out : 0);
}

static int64_t norm_bytes(const Norm *n, int d) {
    return (int64_t)sizeof(float) * d * ((n->w != NULL) + (n->b != NULL));
}

int64_t model_weight_bytes(const Model *m) {
    int d = m->cfg.n_embd;
    int64_t b = (int64_t)(matrix_bytes(&m->tok_embd) + matrix_bytes(&m->pos_embd) + matrix_bytes(&m->type_embd));
    b += norm_bytes(&m->emb_norm, d) + norm_bytes(&m->out_norm, d) + norm_bytes(&m->head_norm, d);
    b += linear_bytes(&m->head_dense);
    if (m->output.w.data && m->output.w.data != m->tok_embd.data) b += linear_bytes(&m->output);
    else if (m->output.bias) b += (int64_t)sizeof(float) * m->output.out;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const Layer *y = &m->layers[l];
        b += norm_bytes(&y->attn_norm, d) + norm_bytes(&y->ffn_norm, d);
        const Linear *ls[] = {&y->qkv, &y->q, &y->k, &y->v, &y->o, &y->up, &y->gate, &y->down};
        for (size_t i = 0; i < sizeof ls / sizeof *ls; i++) b += linear_bytes(ls[i]);
    }
    return b;
}

void quant_report_free(QuantReport *rep) {
    free(rep->layers);
    memset(rep, 0, sizeof *rep);
}

static QuantLayer *layer_of(QuantReport *rep, int layer) {
    return &rep->layers[layer >= 0 ? layer : rep->n_layers - 1];
}

// Rows r0..r0+nr of it's matrix as converted, as float32 into f (nr * cols); a transposed
// item's rows are columns of its source, whole in full ([in, out]).
static void src_rows(const Item *it, const float *full, int64_t r0, int64_t nr, float *f) {
    if (it->lin) {
        for (int64_t r = 0; r < nr; r++)
            for (int64_t i = 0; i < it->cols; i++) f[r * it->cols + i] = full[i * it->rows + r0 + r];
        return;
    }
    for (int64_t r = 0; r < nr; r++) tensor_row_f32(it->src, (r0 + r) * it->cols, it->cols, f + r * it->cols);
}

// Converts one matrix chunk by chunk; pass 0 quantizes and sums the error, pass 1 bins it.
static int item_run(const Item *it, int pass, QuantReport *rep, float *f, float *g, int64_t chunk,
                    const volatile sig_atomic_t *stop, Err *e) {
    QuantLayer *q = layer_of(rep, it->layer);
    const DType dt = it->dt;
    size_t rb = dtype_row_bytes(dt, it->cols);
    double scale = QUANT_HIST_BINS / (2 * rep->range);
    float *full = NULL;
    if (it->lin) { // [in, out] source: all of it as float32, then columns as rows
        size_t n = mem_mul((size_t)it->rows, (size_t)it->cols);
        if (n == SIZE_MAX || !(full = malloc(n * sizeof(float))))
            return err_set(e, "out of memory converting '%s'", it->name);
        tensor_row_f32(it->src, 0, it->src->n, full);
    }
    for (int64_t r0 = 0; r0 < it->rows; r0 += chunk) {
        if (stop && *stop) {
            free(full);
            return err_set(e, "quantize: interrupted");
        }
        int64_t nr = it->rows - r0 < chunk ? it->rows - r0 : chunk;
        src_rows(it, full, r0, nr, f);
        unsigned char *dst = (unsigned char *)it->dst->data + (size_t)r0 * rb;
        Err qe = {0};
        if (pass == 0 && quant_weights(dt, f, nr, it->cols, dst, &qe)) {
            free(full);
            return err_set(e, "quantize %s: '%s': %s", dtype_name(dt), it->name, qe.msg);
        }
        for (int64_t r = 0; r < nr; r++) tensor_row_f32(it->dst, (r0 + r) * it->cols, it->cols, g + r * it->cols);
        for (int64_t i = 0; i < nr * it->cols; i++) {
            double err = (double)g[i] - f[i];
            if (pass == 0) {
                q->rms_w += (double)f[i] * f[i], q->rms_err += err * err;
                if (fabs(err) > q->max_err) q->max_err = fabs(err);
            } else {
                double b = floor((err + rep->range) * scale); // NaN (an infinite range) in bin 0, not past it
                q->hist[b >= QUANT_HIST_BINS ? QUANT_HIST_BINS - 1 : b >= 0 ? (int)b : 0]++;
            }
        }
        if (pass == 0) q->n += nr * it->cols;
    }
    free(full);
    return 0;
}

// llama.cpp's use_more_bits: the layers its _M mixes give more bits
static bool more_bits(int layer, int n_layer) {
    return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

DType quant_weight_type(DType dt, WeightId w, int layer, int n_layer, bool head) {
    if (dt != QUANT_Q4_K_M) return dt;
    if (head || w == W_QKV) return DT_Q6_K;
    if ((w == W_V || w == W_DOWN) && layer >= 0 && more_bits(layer, n_layer)) return DT_Q6_K;
    return DT_Q4_K;
}

static void plan_model(Plan *p, const Model *b, Model *m, DType dt, bool embed) {
    const int nl = b->cfg.n_layer;
    const bool tied = b->output.w.data == b->tok_embd.data;
    if (embed) plan_add(p, &b->tok_embd, &m->tok_embd, NULL, -1, W_TOK_EMBD, quant_weight_type(dt, W_TOK_EMBD, -1, nl, tied));
    for (int l = 0; l < nl; l++) {
        const Layer *s = &b->layers[l];
        Layer *d = &m->layers[l];
        const struct {
            const Linear *s;
            Linear *d;
            WeightId w;
        } ls[] = {{&s->qkv, &d->qkv, W_QKV}, {&s->q, &d->q, W_Q},       {&s->k, &d->k, W_K},
                  {&s->v, &d->v, W_V},       {&s->o, &d->o, W_O},       {&s->up, &d->up, W_UP},
                  {&s->gate, &d->gate, W_GATE}, {&s->down, &d->down, W_DOWN}};
        for (size_t i = 0; i < sizeof ls / sizeof *ls; i++)
            plan_add(p, &ls[i].s->w, &ls[i].d->w, ls[i].d, l, ls[i].w, quant_weight_type(dt, ls[i].w, l, nl, false));
    }
    plan_add(p, &b->head_dense.w, &m->head_dense.w, &m->head_dense, -1, W_HEAD_DENSE,
             quant_weight_type(dt, W_HEAD_DENSE, -1, nl, false));
    if (!tied) plan_add(p, &b->output.w, &m->output.w, &m->output, -1, W_OUTPUT, quant_weight_type(dt, W_OUTPUT, -1, nl, true));
}

static const char *type_name(DType dt) { return dt == QUANT_Q4_K_M ? "Q4_K_M" : dtype_name(dt); }

Model *model_quantize(const Model *base, DType dt, bool embed, const volatile sig_atomic_t *stop, QuantReport *rep,
                      Err *e) {
    memset(rep, 0, sizeof *rep);
    if (dt == DT_F32 || dt < 0 || (dt >= DT_COUNT && dt != QUANT_Q4_K_M)) {
        err_set(e, "quantize: no conversion to %s", type_name(dt));
        return NULL;
    }
    rep->dt = dt, rep->embed = embed;
    Model *m = xcalloc(1, sizeof *m);
    *m = *base;
    m->base = base;
    m->quant_dt = dt;
    m->quant_embed = embed;
    m->src = NULL;
    m->owned_bytes = NULL, m->owned_vecs = NULL, m->n_owned_vecs = 0;
    m->path = xstrdup(base->path);
    size_t nl = strlen(base->name) + 16;
    m->name = xmalloc(nl);
    snprintf(m->name, nl, "%s %s", base->name, type_name(dt));
    m->layers = xmalloc(sizeof *m->layers * (size_t)base->cfg.n_layer);
    memcpy(m->layers, base->layers, sizeof *m->layers * (size_t)base->cfg.n_layer);
    Plan p = {0};
    plan_model(&p, base, m, dt, embed);
    // lay the converted matrices out in one allocation, each on a 64-byte boundary
    size_t total = 0;
    int64_t widest = 0;
    for (int i = 0; i < p.n; i++) {
        Item *it = &p.items[i];
        if (it->cols % dtype_block(it->dt)) {
            if (!rep->n_kept++) snprintf(rep->kept_first, sizeof rep->kept_first, "%s", it->name);
            it->dst = NULL;
            continue;
        }
        it->offset = total;
        total += ((size_t)it->rows * dtype_row_bytes(it->dt, it->cols) + 63) / 64 * 64;
        if (it->cols > widest) widest = it->cols;
        rep->n_tensors++;
        rep->n_by_type[it->dt]++;
    }
    int rc = 0;
    float *f = NULL, *g = NULL;
    int64_t chunk = widest ? (CHUNK_FLOATS / widest > 0 ? CHUNK_FLOATS / widest : 1) : 0;
    if (!rep->n_tensors && p.n)
        rc = err_set(e, "quantize %s: no matrix has rows of whole %d-element blocks ('%s' has rows of %lld)",
                     type_name(dt), dtype_block(p.items[0].dt), p.items[0].name, (long long)p.items[0].cols);
    else if (!rep->n_tensors)
        rc = err_set(e, "quantize %s: the model has no matrix to convert", type_name(dt));
    if (!rc && posix_memalign(&m->owned_bytes, 64, total)) m->owned_bytes = NULL;
    if (!rc && (!m->owned_bytes || !(f = malloc(sizeof(float) * (size_t)(chunk * widest))) ||
                !(g = malloc(sizeof(float) * (size_t)(chunk * widest)))))
        rc = err_set(e, "out of memory for the %s weights (%.1f MB)", type_name(dt), total / 1e6);
    if (!rc) {
        unsigned char *bytes = m->owned_bytes;
        rep->n_layers = base->cfg.n_layer + 1;
        rep->layers = xcalloc((size_t)rep->n_layers, sizeof *rep->layers);
        for (int l = 0; l < rep->n_layers; l++) rep->layers[l].layer = l < base->cfg.n_layer ? l : -1;
        for (int i = 0; i < p.n; i++) {
            Item *it = &p.items[i];
            if (!it->dst) continue;
            *it->dst = *it->src;
            it->dst->dt = it->dt;
            it->dst->data = bytes + it->offset;
            if (it->lin) it->dst->shape[0] = it->rows, it->dst->shape[1] = it->cols, it->lin->out_in = true;
        }
        // a head tied to the embedding follows it
        if (embed && base->output.w.data == base->tok_embd.data && base->output.w.data) m->output.w = m->tok_embd;
        for (int i = 0; i < p.n && !rc; i++)
            if (p.items[i].dst) rc = item_run(&p.items[i], 0, rep, f, g, chunk, stop, e);
    }
    if (!rc) {
        // the histograms' range: four times the largest layer's RMS error
        double worst = 0;
        for (int l = 0; l < rep->n_layers; l++) {
            QuantLayer *q = &rep->layers[l];
            if (q->n) q->rms_w = sqrt(q->rms_w / q->n), q->rms_err = sqrt(q->rms_err / q->n);
            if (q->rms_err > worst) worst = q->rms_err;
        }
        rep->range = worst > 0 ? 4 * worst : 1e-30;
        for (int i = 0; i < p.n; i++)
            if (p.items[i].dst) item_run(&p.items[i], 1, rep, f, g, chunk, NULL, e);
        m->dtype = model_block_dtype(m);
        if (m->builtin) m->file_bytes = (int64_t)total; // runs log the hash of the weights in memory
        rep->bytes_before = model_weight_bytes(base);
        rep->bytes_after = model_weight_bytes(m);
    }
    free(f), free(g), free(p.items);
    if (rc) {
        quant_report_free(rep);
        model_free(m);
        return NULL;
    }
    return m;
}

static const struct {
    const char *name;
    DType dt;
} quant_types[] = {
    {"int8", DT_I8_AFFINE}, {"q8_0", DT_Q8_0}, {"q4_0", DT_Q4_0}, {"q4_1", DT_Q4_1},
    {"q4_k", DT_Q4_K},      {"q4_k_m", QUANT_Q4_K_M}, {"q6_k", DT_Q6_K}, {"f16", DT_F16},   {"bf16", DT_BF16},
    {"off", DT_F32},
};

const char *quant_type_name(DType dt) {
    for (size_t i = 0; i < sizeof quant_types / sizeof *quant_types; i++)
        if (quant_types[i].dt == dt) return quant_types[i].name;
    return NULL;
}

int quant_type_find(const char *name, size_t len, DType *dt) {
    for (size_t i = 0; i < sizeof quant_types / sizeof *quant_types; i++)
        if (strlen(quant_types[i].name) == len && !strncasecmp(name, quant_types[i].name, len)) {
            *dt = quant_types[i].dt;
            return 0;
        }
    return -1;
}
