// norm_act.c - the element-wise operations of the non-GPT-2 blocks: RMSNorm, erf-GELU,
// SwiGLU's gate and rotary position embedding.
#include <math.h>
#include <stddef.h>

#include "kern/ops.h"

void rmsnorm_forward(float *out, const float *inp, const float *w, int T, int C, float eps) {
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        float *o = out + (size_t)t * C;
        double ss = 0;
        for (int i = 0; i < C; i++) ss += (double)x[i] * x[i];
        float r = (float)(1.0 / sqrt(ss / C + eps));
        for (int i = 0; i < C; i++) o[i] = x[i] * r * w[i];
    }
}

void gelu_erf(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void swiglu(float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

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
