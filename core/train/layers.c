// layers.c - forward/backward pairs of the training pass (see layers.h for the contracts).
#include "train/layers.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "kern/ops.h"

void tr_embed_forward(float *out, const int *ids, const float *wte, const float *wpe, int N, int T, int C) {
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * C;
        const float *e = wte + (size_t)ids[n] * C;
        if (wpe) {
            const float *p = wpe + (size_t)(n % T) * C;
            for (int i = 0; i < C; i++) o[i] = e[i] + p[i];
        } else {
            memcpy(o, e, sizeof(float) * (size_t)C);
        }
    }
}

void tr_embed_backward(float *dwte, float *dwpe, const float *dout, const int *ids, int N, int T, int C) {
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C;
        float *e = dwte + (size_t)ids[n] * C;
        for (int i = 0; i < C; i++) e[i] += d[i];
        if (dwpe) {
            float *p = dwpe + (size_t)(n % T) * C;
            for (int i = 0; i < C; i++) p[i] += d[i];
        }
    }
}

// ---------------------------------------------------------------------------------------
// Norms

void tr_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, int N,
                          int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float m = 0;
        for (int i = 0; i < C; i++) m += x[i];
        m /= (float)C;
        float v = 0;
        for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        v /= (float)C;
        float s = 1.0f / sqrtf(v + eps);
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * w[i] + (b ? b[i] : 0.0f);
        mean[n] = m;
        rstd[n] = s;
    }
}

void tr_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                           const float *mean, const float *rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        float m = mean[n], s = rstd[n];
        // dnorm = w * dout; dx = s * (dnorm - mean(dnorm) - norm * mean(dnorm * norm))
        float dm = 0, dmn = 0;
        for (int i = 0; i < C; i++) {
            float nrm = (x[i] - m) * s, dn = w[i] * d[i];
            dm += dn;
            dmn += dn * nrm;
        }
        dm /= (float)C;
        dmn /= (float)C;
        for (int i = 0; i < C; i++) {
            float nrm = (x[i] - m) * s, dn = w[i] * d[i];
            if (db) db[i] += d[i];
            dw[i] += nrm * d[i];
            dx[i] += s * (dn - dm - nrm * dmn);
        }
    }
}

void tr_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float ss = 0;
        for (int i = 0; i < C; i++) ss += x[i] * x[i];
        float s = 1.0f / sqrtf(ss / (float)C + eps);
        for (int i = 0; i < C; i++) o[i] = w[i] * (x[i] * s);
        rstd[n] = s;
    }
}

void tr_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w, const float *rstd,
                         int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        float s = rstd[n];
        // dnorm = w * dout; dx = s * (dnorm - norm * mean(dnorm * norm))
        float dmn = 0;
        for (int i = 0; i < C; i++) dmn += w[i] * d[i] * x[i] * s;
        dmn /= (float)C;
        for (int i = 0; i < C; i++) {
            float nrm = x[i] * s;
            dw[i] += nrm * d[i];
            dx[i] += s * (w[i] * d[i] - nrm * dmn);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Linear layers

void tr_matmul_forward(float *out, const float *inp, const float *w, const float *b, int N, int IC, int OC, bool in_out) {
    if (in_out) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, OC, IC, 1.0f, inp, IC, w, OC, 0.0f, out, OC);
    else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, inp, IC, w, IC, 0.0f, out, OC);
    if (b)
        for (int n = 0; n < N; n++) {
            float *o = out + (size_t)n * OC;
            for (int j = 0; j < OC; j++) o[j] += b[j];
        }
}

void tr_matmul_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, int N,
                        int IC, int OC, bool in_out) {
    if (in_out) {
        // dinp (N, IC) += dout (N, OC) W^T; dW (IC, OC) += inp^T dout
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, IC, OC, 1.0f, dout, OC, w, OC, 1.0f, dinp, IC);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, IC, OC, N, 1.0f, inp, IC, dout, OC, 1.0f, dw, OC);
    } else {
        // dinp (N, IC) += dout (N, OC) W; dW (OC, IC) += dout^T inp
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, w, IC, 1.0f, dinp, IC);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dw, IC);
    }
    if (db)
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * OC;
            for (int j = 0; j < OC; j++) db[j] += d[j];
        }
}

// ---------------------------------------------------------------------------------------
// Rotary embedding and attention

void tr_rope(float *x, int N, int T, int stride, int n_heads, int hd, int rot, const float *cos_t, const float *sin_t,
             bool pairs) {
    for (int n0 = 0; n0 < N; n0 += T)
        rope_apply(x + (size_t)n0 * stride, N - n0 < T ? N - n0 : T, stride, n_heads, hd, rot, cos_t, sin_t, pairs);
}

void tr_attention_forward(float *z, float *att, const float *q, const float *k, const float *v, int B, int T, int H,
                          int Hkv, int hd, int sq, int skv) {
    float scale = 1.0f / sqrtf((float)hd);
    int qd = H * hd;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / (H / Hkv);
            const float *Q = q + (size_t)b * T * sq + (size_t)h * hd;
            const float *K = k + (size_t)b * T * skv + (size_t)g * hd;
            const float *V = v + (size_t)b * T * skv + (size_t)g * hd;
            float *P = att + ((size_t)b * H + h) * T * T;
            // P (T, T) = Q K^T * scale, then the causal softmax of each row
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, Q, sq, K, skv, 0.0f, P, T);
            for (int i = 0; i < T; i++) {
                float *row = P + (size_t)i * T;
                softmax_inplace(row, i + 1);
                memset(row + i + 1, 0, sizeof(float) * (size_t)(T - i - 1));
            }
            // Z_h (T, hd) = P V
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, V, skv, 0.0f,
                        z + (size_t)b * T * qd + (size_t)h * hd, qd);
        }
}

void tr_attention_backward(float *dq, float *dk, float *dv, float *datt, const float *dz, const float *att,
                           const float *q, const float *k, const float *v, int B, int T, int H, int Hkv, int hd, int sq,
                           int skv) {
    float scale = 1.0f / sqrtf((float)hd);
    int qd = H * hd;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / (H / Hkv);
            size_t qo = (size_t)b * T * sq + (size_t)h * hd, ko = (size_t)b * T * skv + (size_t)g * hd;
            const float *P = att + ((size_t)b * H + h) * T * T;
            const float *dZ = dz + (size_t)b * T * qd + (size_t)h * hd;
            float *dP = datt + ((size_t)b * H + h) * T * T;
            // dV (T, hd) += P^T dZ; dP (T, T) = dZ V^T
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, dZ, qd, 1.0f, dv + ko, skv);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, dZ, qd, v + ko, skv, 0.0f, dP, T);
            // through the softmax: dS = P * (dP - rowsum(P * dP)); masked entries have P = 0
            for (int i = 0; i < T; i++) {
                const float *p = P + (size_t)i * T;
                float *d = dP + (size_t)i * T;
                float dot = 0;
                for (int j = 0; j <= i; j++) dot += p[j] * d[j];
                for (int j = 0; j <= i; j++) d[j] = p[j] * (d[j] - dot);
                memset(d + i + 1, 0, sizeof(float) * (size_t)(T - i - 1));
            }
            // dQ (T, hd) += dS K * scale; dK (T, hd) += dS^T Q * scale
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, scale, dP, T, k + ko, skv, 1.0f, dq + qo, sq);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, scale, dP, T, q + qo, sq, 1.0f, dk + ko, skv);
        }
}

// ---------------------------------------------------------------------------------------
// Activations

#define GELU_K 0.7978845608028654f // sqrt(2 / pi)

void tr_gelu_forward(float *out, const float *inp, int n) {
    for (int i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

void tr_gelu_backward(float *dinp, const float *inp, const float *dout, int n) {
    for (int i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + 0.044715f * x * x * x);
        float th = tanhf(u);
        float sech2 = 1.0f - th * th;
        float g = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += g * dout[i];
    }
}

void tr_swiglu_forward(float *out, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void tr_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float g = gate[i], s = 1.0f / (1.0f + expf(-g));
        dup[i] += g * s * dout[i];
        dgate[i] += s * (1.0f + g * (1.0f - s)) * up[i] * dout[i];
    }
}

void tr_residual_forward(float *out, const float *a, const float *b, int n) {
    for (int i = 0; i < n; i++) out[i] = a[i] + b[i];
}

// ---------------------------------------------------------------------------------------
// Loss

double tr_crossentropy_forward(float *probs, float *losses, const float *logits, const int *targets, int N, int V,
                               int *counted) {
    double sum = 0;
    int cnt = 0;
    for (int n = 0; n < N; n++) {
        const float *l = logits + (size_t)n * V;
        float *p = probs + (size_t)n * V;
        float mx = l[0];
        for (int i = 1; i < V; i++) mx = l[i] > mx ? l[i] : mx;
        int t = targets[n];
        float lt = t >= 0 ? l[t] : 0.0f; // read before probs (which may be logits) is written
        double z = 0;
        for (int i = 0; i < V; i++) {
            p[i] = expf(l[i] - mx);
            z += p[i];
        }
        float inv = (float)(1.0 / z);
        // the loss from the logits (log-sum-exp), not from a rounded probability
        losses[n] = t >= 0 ? (float)(log(z) + mx - lt) : 0.0f;
        for (int i = 0; i < V; i++) p[i] *= inv;
        if (t >= 0) sum += losses[n], cnt++;
    }
    *counted = cnt;
    return cnt ? sum / cnt : 0.0;
}

void tr_crossentropy_backward(float *dlogits, const float *probs, const int *targets, int N, int V, float scale,
                              const float *w) {
    for (int n = 0; n < N; n++) {
        int t = targets[n];
        if (t < 0 || (w && w[n] == 0.0f)) continue;
        float scale_n = w ? scale * w[n] : scale;
        const float *p = probs + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        for (int i = 0; i < V; i++) d[i] += p[i] * scale_n;
        d[t] -= scale_n;
    }
}
