// positions.c - positional encodings and their similarity matrices.
#include "analysis/positions.h"
#include "base/mem.h"

#include <math.h>
#include <stdlib.h>

void pe_sinusoidal(float *out, int len, int dim) {
    for (int pos = 0; pos < len; pos++)
        for (int i = 0; i < dim; i += 2) {
            double angle = pos / pow(10000.0, (double)i / dim);
            out[(size_t)pos * dim + i] = (float)sin(angle);
            if (i + 1 < dim) out[(size_t)pos * dim + i + 1] = (float)cos(angle);
        }
}

int pe_learned(const Model *m, float *out, int len, Err *e) {
    if (m->cfg.a.pos != POS_LEARNED || !m->pos_embd.data)
        return err_set(e, "%s has no learned position embeddings (its positions are %s)", m->name,
                       pos_kind_name(m->cfg.a.pos));
    if (len < 1 || len > m->cfg.n_ctx) return err_set(e, "len=%d: must be in [1, %d]", len, m->cfg.n_ctx);
    tensor_row_f32(&m->pos_embd, 0, (int64_t)len * m->cfg.n_embd, out);
    return 0;
}

void pe_cosine(float *out, const float *x, int len, int dim) {
    double *norm = xmalloc(sizeof(double) * (size_t)len);
    for (int i = 0; i < len; i++) {
        double s = 0;
        for (int k = 0; k < dim; k++) s += (double)x[(size_t)i * dim + k] * x[(size_t)i * dim + k];
        norm[i] = sqrt(s);
    }
    for (int i = 0; i < len; i++)
        for (int j = 0; j <= i; j++) {
            double s = 0;
            for (int k = 0; k < dim; k++) s += (double)x[(size_t)i * dim + k] * x[(size_t)j * dim + k];
            double c = norm[i] > 0 && norm[j] > 0 ? s / (norm[i] * norm[j]) : 0;
            out[(size_t)i * len + j] = out[(size_t)j * len + i] = (float)c;
        }
    free(norm);
}

int pe_rotary_pairs(const Model *m) {
    if (m->cfg.a.pos != POS_ROTARY) return 0;
    return (m->cfg.a.rope_dim ? m->cfg.a.rope_dim : m->cfg.head_dim) / 2;
}

int pe_rotary(const Model *m, float *out, int len, bool relative, int *cols, Err *e) {
    int half = pe_rotary_pairs(m);
    if (!half)
        return err_set(e, "%s has no rotary positions (its positions are %s)", m->name, pos_kind_name(m->cfg.a.pos));
    if (len < 1 || len > m->cfg.n_ctx) return err_set(e, "len=%d: must be in [1, %d]", len, m->cfg.n_ctx);
    float *inv = xmalloc(sizeof(float) * (size_t)half);
    rope_freqs(&m->cfg.a, 2 * half, inv);
    *cols = relative ? len : half;
    for (int p = 0; p < len; p++)
        for (int c = 0; c < *cols; c++) {
            if (!relative) {
                out[(size_t)p * half + c] = (float)cos((double)p * inv[c]);
                continue;
            }
            double s = 0;
            for (int i = 0; i < half; i++) s += cos((double)(p - c) * inv[i]);
            out[(size_t)p * len + c] = (float)(s / half);
        }
    free(inv);
    return 0;
}
