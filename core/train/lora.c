// lora.c - low-rank adapters on the attention projections (see lora.h).
#include "train/lora.h"

#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/mem.h"
#include "eval/sample.h"

static const WeightId TARGETS[] = {W_QKV, W_Q, W_K, W_V, W_O};

int lora_init(Lora *L, TrainModel *tm, int r, float alpha, uint64_t seed, Err *e) {
    memset(L, 0, sizeof *L);
    if (r < 1) return err_set(e, "lora: the rank must be positive");
    L->r = r, L->alpha = alpha, L->scale = alpha / (float)r;
    for (int i = 0; i < tmodel_n_tensors(tm); i++) {
        const TParam *t = tmodel_tensor(tm, i);
        bool target = false;
        for (size_t k = 0; k < sizeof TARGETS / sizeof *TARGETS; k++) target |= t->s.w == TARGETS[k];
        if (!target || t->s.kind != WK_LINEAR) continue;
        if (r > t->s.in || r > t->s.out) {
            lora_done(L);
            return err_set(e, "lora: rank %d exceeds the projection's %d x %d", r, t->s.in, t->s.out);
        }
        L->m = xrealloc(L->m, sizeof *L->m * (size_t)(L->n + 1));
        LoraMat *m = &L->m[L->n++];
        *m = (LoraMat){t->s.w, t->s.layer, t->s.in, t->s.out, L->size, L->size + (size_t)r * t->s.in, NULL};
        L->size += (size_t)r * (t->s.in + t->s.out);
        m->w0 = xmalloc(sizeof(float) * t->n);
        memcpy(m->w0, tmodel_param(tm, t->s.w, t->s.layer), sizeof(float) * t->n);
    }
    if (!L->n) return err_set(e, "lora: the model has no attention projection to adapt");
    L->params = calloc(L->size, sizeof(float));
    L->grads = calloc(L->size, sizeof(float));
    if (!L->params || !L->grads) {
        lora_done(L);
        return err_set(e, "lora: out of memory for the adapters");
    }
    Rng rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < L->n; i++) {
        float bound = 1.0f / sqrtf((float)L->m[i].in);
        for (size_t j = 0; j < (size_t)r * L->m[i].in; j++) L->params[L->m[i].a + j] = (2 * rng_uniform(&rng) - 1) * bound;
    }
    return 0;
}

void lora_done(Lora *L) {
    for (int i = 0; i < L->n; i++) free(L->m[i].w0);
    free(L->m);
    free(L->params);
    free(L->grads);
    memset(L, 0, sizeof *L);
}

void lora_merge(const Lora *L, TrainModel *tm) {
    bool in_out = tmodel_map(tm)->in_out;
    for (int i = 0; i < L->n; i++) {
        const LoraMat *m = &L->m[i];
        float *w = tmodel_param(tm, m->w, m->layer);
        const float *A = L->params + m->a, *B = L->params + m->b;
        memcpy(w, m->w0, sizeof(float) * (size_t)m->in * m->out);
        if (in_out) // W [in, out] += s A^T B^T
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, m->in, m->out, L->r, L->scale, A, m->in, B, L->r, 1.0f,
                        w, m->out);
        else // W [out, in] += s B A
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m->out, m->in, L->r, L->scale, B, L->r, A, m->in,
                        1.0f, w, m->in);
    }
}

void lora_grads(Lora *L, TrainModel *tm) {
    bool in_out = tmodel_map(tm)->in_out;
    for (int i = 0; i < L->n; i++) {
        const LoraMat *m = &L->m[i];
        const float *g = tmodel_grad(tm, m->w, m->layer), *A = L->params + m->a, *B = L->params + m->b;
        float *dA = L->grads + m->a, *dB = L->grads + m->b;
        if (in_out) { // g [in, out]: dB [out, r] = s g^T A^T, dA [r, in] = s B^T g^T
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, m->out, L->r, m->in, L->scale, g, m->out, A, m->in, 0.0f,
                        dB, L->r);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, L->r, m->in, m->out, L->scale, B, L->r, g, m->out, 0.0f,
                        dA, m->in);
        } else { // g [out, in]: dB = s g A^T, dA = s B^T g
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m->out, L->r, m->in, L->scale, g, m->in, A, m->in,
                        0.0f, dB, L->r);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L->r, m->in, m->out, L->scale, B, L->r, g, m->in, 0.0f,
                        dA, m->in);
        }
    }
}

// The PEFT name of an adapter matrix ("A" or "B") of m.
static void peft_name(const TrainModel *tm, const LoraMat *m, const char *prefix, const char *ab, char *out, size_t n) {
    const char *fmt = tmodel_map(tm)->names[m->w];
    bool top = *fmt == '/';
    char base[200];
    snprintf(base, sizeof base, fmt + top, m->layer);
    size_t bl = strlen(base);
    if (bl > 7 && !strcmp(base + bl - 7, ".weight")) base[bl - 7] = 0;
    snprintf(out, n, "base_model.model.%s%s.lora_%s.weight", top ? "" : prefix, base, ab);
}

int lora_save(const Lora *L, const TrainModel *tm, const char *dir, const char *task_type, Err *e) {
    const char *prefix = tmodel_task_prefix(tm);
    Buf h = {0}, f = {0};
    JsonW w;
    jw_init(&w, &h);
    jw_obj(&w);
    size_t at = 0;
    char name[320];
    for (int i = 0; i < L->n; i++)
        for (int k = 0; k < 2; k++) {
            const LoraMat *m = &L->m[i];
            size_t rows = k ? (size_t)m->out : (size_t)L->r, cols = k ? (size_t)L->r : (size_t)m->in;
            peft_name(tm, m, prefix, k ? "B" : "A", name, sizeof name);
            jw_key(&w, name);
            jw_obj(&w);
            jw_kstr(&w, "dtype", "F32");
            jw_key(&w, "shape");
            jw_arr(&w);
            jw_int(&w, (int64_t)rows);
            jw_int(&w, (int64_t)cols);
            jw_arr_end(&w);
            jw_key(&w, "data_offsets");
            jw_arr(&w);
            jw_int(&w, (int64_t)at);
            jw_int(&w, (int64_t)(at + rows * cols * 4));
            jw_arr_end(&w);
            jw_obj_end(&w);
            at += rows * cols * 4;
        }
    jw_obj_end(&w);
    while (h.len % 8) buf_putc(&h, ' ');
    uint64_t hl = h.len;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hl >> (8 * i));
    buf_put(&f, (const char *)len8, 8);
    buf_put(&f, h.data, h.len);
    for (int i = 0; i < L->n; i++) { // A then B of each, as the header lists them
        const LoraMat *m = &L->m[i];
        buf_put(&f, (const char *)(L->params + m->a), sizeof(float) * (size_t)L->r * m->in);
        buf_put(&f, (const char *)(L->params + m->b), sizeof(float) * (size_t)m->out * L->r);
    }
    char *path = fs_join(dir, "adapter_model.safetensors");
    int rc = fs_write_atomic(path, f.data, f.len, e);
    free(path);
    buf_clear(&h);
    if (!rc) {
        jw_init(&w, &h);
        jw_obj(&w);
        jw_kstr(&w, "peft_type", "LORA");
        jw_kstr(&w, "task_type", task_type);
        jw_kint(&w, "r", L->r);
        jw_knum(&w, "lora_alpha", L->alpha);
        jw_knum(&w, "lora_dropout", 0);
        jw_kbool(&w, "fan_in_fan_out", tmodel_map(tm)->in_out);
        jw_key(&w, "target_modules");
        jw_arr(&w);
        for (int i = 0; i < L->n; i++) {
            bool seen = false;
            for (int j = 0; j < i && !seen; j++) seen = L->m[j].w == L->m[i].w;
            if (seen) continue;
            // the module's path inside its block ("attn.c_attn", BERT's "attention.output.dense"):
            // PEFT matches target_modules as name suffixes, and a bare "dense" would also take
            // BERT's feed-forward layers
            const char *fmt = tmodel_map(tm)->names[L->m[i].w], *in = strstr(fmt, "%d.");
            snprintf(name, sizeof name, "%s", in ? in + 3 : fmt + (*fmt == '/'));
            size_t nl = strlen(name);
            if (nl > 7 && !strcmp(name + nl - 7, ".weight")) name[nl - 7] = 0;
            jw_str(&w, name);
        }
        jw_arr_end(&w);
        jw_kbool(&w, "merged_into_model", true);
        jw_obj_end(&w);
        buf_putc(&h, '\n');
        path = fs_join(dir, "adapter_config.json");
        rc = fs_write_atomic(path, h.data, h.len, e);
        free(path);
    }
    buf_free(&h);
    buf_free(&f);
    return rc;
}
