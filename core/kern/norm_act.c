// norm_act.c - rotary position embedding (RMSNorm, erf-GELU and SwiGLU's gate are in the
// kernel tables, kern/kernels.h).
#include <math.h>
#include <stddef.h>

#include "kern/ops.h"

void rope_table(float *cos_out, float *sin_out, int pos0, int n_pos, int half, const float *inv) {
    for (int i = 0; i < half; i++) {
        for (int p = 0; p < n_pos; p++) {
            float ang = (float)(pos0 + p) * inv[i]; // in float32, as HF computes it
            cos_out[(size_t)p * half + i] = cosf(ang);
            sin_out[(size_t)p * half + i] = sinf(ang);
        }
    }
}

void rope_apply(float *x, int n, int stride, int n_heads, int hd, int rot, const float *cos_t, const float *sin_t,
                bool pairs) {
    int half = rot / 2;
    for (int t = 0; t < n; t++) {
        const float *c = cos_t + (size_t)t * half, *s = sin_t + (size_t)t * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)t * stride + (size_t)h * hd;
            for (int i = 0; i < half; i++) {
                int a = pairs ? 2 * i : i, b = pairs ? 2 * i + 1 : i + half;
                float x0 = v[a], x1 = v[b];
                v[a] = x0 * c[i] - x1 * s[i];
                v[b] = x0 * s[i] + x1 * c[i];
            }
        }
    }
}
