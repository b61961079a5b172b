// layers.c - forward/backward pairs of the training pass (see layers.h for the contracts).
//
// Every operation is a pool section: a job struct holding the arguments, and a share
// function doing share ith of nth. Splits depend on nth only (never on which thread runs a
// share), and each float of an output is computed whole by one share in the serial order, so
// any pool size gives the serial result bit for bit.
#include "train/layers.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kern/ops.h"

// Run fn's shares on pool, or as the only share on the caller when pool is NULL.
static void run(Pool *pool, PoolFn fn, void *arg) {
    if (pool) pool_run(pool, fn, arg);
    else fn(arg, 0, 1);
}

// [*a, *b): share ith of nth of n items, in blocks of `align` (the last block may be short),
// so that vector kernels split at the same elements whatever nth is.
static void share(int64_t n, int align, int ith, int nth, int64_t *a, int64_t *b) {
    int64_t blocks = (n + align - 1) / align;
    int64_t b0 = blocks * ith / nth, b1 = blocks * (ith + 1) / nth;
    *a = b0 * align < n ? b0 * align : n;
    *b = b1 * align < n ? b1 * align : n;
}

// The job of most operations: row-wise outputs, and sums over rows kept per column.
typedef struct {
    float *out, *out2, *out3, *out4;
    const float *in1, *in2, *in3, *in4, *in5, *in6;
    const int *ids, *types;
    int N, T, C, V;
    float eps, scale;
} Job;

// ---------------------------------------------------------------------------------------
// Embeddings

static void embed_fwd_job(void *arg, int ith, int nth) {
    const Job *J = arg;
    int64_t n0, n1;
    share(J->N, 1, ith, nth, &n0, &n1);
    int C = J->C;
    for (int64_t n = n0; n < n1; n++) {
        float *o = J->out + (size_t)n * C;
        const float *e = J->in1 + (size_t)J->ids[n] * C;
        if (J->in2) {
            const float *p = J->in2 + (size_t)(n % J->T) * C;
            for (int i = 0; i < C; i++) o[i] = e[i] + p[i];
        } else {
            memcpy(o, e, sizeof(float) * (size_t)C);
        }
        if (J->in3) { // the segment's row: types[n], or type 0 without types
            const float *t = J->in3 + (size_t)(J->types ? J->types[n] : 0) * C;
            for (int i = 0; i < C; i++) o[i] += t[i];
        }
    }
}

void tr_embed_forward(Pool *pool, float *out, const int *ids, const int *types, const float *wte, const float *wpe,
                      const float *wtt, int N, int T, int C) {
    Job J = {.out = out, .ids = ids, .types = types, .in1 = wte, .in2 = wpe, .in3 = wtt, .N = N, .T = T, .C = C};
    run(pool, embed_fwd_job, &J);
}

// Columns: rows of dwte that several positions share are summed in row order.
static void embed_bwd_job(void *arg, int ith, int nth) {
    const Job *J = arg;
    int64_t c0, c1;
    share(J->C, 16, ith, nth, &c0, &c1);
    int C = J->C;
    for (int n = 0; n < J->N; n++) {
        const float *d = J->in1 + (size_t)n * C;
        float *e = J->out + (size_t)J->ids[n] * C;
        for (int64_t i = c0; i < c1; i++) e[i] += d[i];
        if (J->out2) {
            float *p = J->out2 + (size_t)(n % J->T) * C;
            for (int64_t i = c0; i < c1; i++) p[i] += d[i];
        }
        if (J->out3) {
            float *t = J->out3 + (size_t)(J->types ? J->types[n] : 0) * C;
            for (int64_t i = c0; i < c1; i++) t[i] += d[i];
        }
    }
}

void tr_embed_backward(Pool *pool, float *dwte, float *dwpe, float *dwtt, const float *dout, const int *ids,
                       const int *types, int N, int T, int C) {
    Job J = {.out = dwte, .out2 = dwpe, .out3 = dwtt, .in1 = dout, .ids = ids, .types = types, .N = N, .T = T,
             .C = C};
    run(pool, embed_bwd_job, &J);
}

// ---------------------------------------------------------------------------------------
// Norms

static void layernorm_fwd_job(void *arg, int ith, int nth) {
    const Job *J = arg;
    int64_t n0, n1;
    share(J->N, 1, ith, nth, &n0, &n1);
    int C = J->C;
    const float *w = J->in2, *b = J->in3;
    for (int64_t n = n0; n < n1; n++) {
        const float *x = J->in1 + (size_t)n * C;
        float *o = J->out + (size_t)n * C;
        float m = 0;
        for (int i = 0; i < C; i++) m += x[i];
        m /= (float)C;
        float v = 0;
        for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        v /= (float)C;
        float s = 1.0f / sqrtf(v + J->eps);
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * w[i] + (b ? b[i] : 0.0f);
        J->out2[n] = m;
        J->out3[n] = s;
    }
}

void tr_layernorm_forward(Pool *pool, float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, int N, int C, float eps) {
    Job J = {.out = out, .out2 = mean, .out3 = rstd, .in1 = inp, .in2 = w, .in3 = b, .N = N, .C = C, .eps = eps};
    run(pool, layernorm_fwd_job, &J);
}

// dinp by rows; dw, db by columns (summed over all rows in row order).
static void layernorm_bwd_job(void *arg, int ith, int nth) {
    const Job *J = arg;
    int C = J->C;
    const float *dout = J->in1, *inp = J->in2, *w = J->in3, *mean = J->in4, *rstd = J->in5;
    int64_t n0, n1;
    share(J->N, 1, ith, nth, &n0, &n1);
    for (int64_t n = n0; n < n1; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float *dx = J->out + (size_t)n * C;
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
            dx[i] += s * (dn - dm - nrm * dmn);
        }
    }
    int64_t c0, c1;
    share(C, 16, ith, nth, &c0, &c1);
    float *dw = J->out2, *db = J->out3;
    for (int n = 0; n < J->N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float m = mean[n], s = rstd[n];
        for (int64_t i = c0; i < c1; i++) {
            if (db) db[i] += d[i];
            dw[i] += (x[i] - m) * s * d[i];
        }
    }
}

void tr_layernorm_backward(Pool *pool, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *w, const float *mean, const float *rstd, int N, int C) {
    Job J = {.out = dinp, .out2 = dw, .out3 = db, .in1 = dout, .in2 = inp, .in3 = w, .in4 = mean, .in5 = rstd,
             .N = N, .C = C};
    run(pool, layernorm_bwd_job, &J);
}

static void rmsnorm_fwd_job(void *arg, int ith, int nth) {
    const Job *J = arg;
    int64_t n0, n1;
    share(J->N, 1, ith, nth, &n0, &n1);
    int C = J->C;
    const float *w = J->in2;
    for (int64_t n = n0; n < n1; n++) {
        const float *x = J->in1 + (size_t)n * C;
        float *o = J->out + (size_t)n * C;
        float ss = 0;
        for (int i = 0; i < C; i++) ss += x[i] * x[i];
        float s = 1.0f / sqrtf(ss / (float)C + J->eps);
        for (int i = 0; i < C; i++) o[i] = w[i] * (x[i] * s);
        J->out3[n] = s;
    }
}

void tr_rmsnorm_forward(Pool *pool, float *out, float *rstd, const float *inp, const float *w, int N, int C,
                        float eps) {
    Job J = {.out = out, .out3 = rstd, .in1 = inp, .in2 = w, .N = N, .C = C, .eps = eps};
    run(pool, rmsnorm_fwd_job, &J);
}

static void rmsnorm_bwd_job(void *arg, int ith, int nth) {
    const Job *J = arg;
    int C = J->C;
    const float *dout = J->in1, *inp = J->in2, *w = J->in3, *rstd = J->in5;
    int64_t n0, n1;
    share(J->N, 1, ith, nth, &n0, &n1);
    for (int64_t n = n0; n < n1; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float *dx = J->out + (size_t)n * C;
        float s = rstd[n];
        // dnorm = w * dout; dx = s * (dnorm - norm * mean(dnorm * norm))
        float dmn = 0;
        for (int i = 0; i < C; i++) dmn += w[i] * d[i] * x[i] * s;
        dmn /= (float)C;
        for (int i = 0; i < C; i++) dx[i] += s * (w[i] * d[i] - x[i] * s * dmn);
    }
    int64_t c0, c1;
    share(C, 16, ith, nth, &c0, &c1);
    for (int n = 0; n < J->N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float s = rstd[n];
        for (int64_t i = c0; i < c1; i++) J->out2[i] += x[i] * s * d[i];
    }
}

void tr_rmsnorm_backward(Pool *pool, float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                         const float *rstd, int N, int C) {
    Job J = {.out = dinp, .out2 = dw, .in1 = dout, .in2 = inp, .in3 = w, .in5 = rstd, .N = N, .C = C};
    run(pool, rmsnorm_bwd_job, &J);
}

// ---------------------------------------------------------------------------------------
// Linear layers

typedef struct {
    float *out, *dinp, *dw, *db;
    const float *inp, *w, *b, *dout;
    int N, IC, OC;
    bool in_out;
} MatJob;

// Rows of out; the bias is copied in first and sgemm adds to it (beta 1).
static void matmul_fwd_job(void *arg, int ith, int nth) {
    const MatJob *J = arg;
    int64_t n0, n1;
    share(J->N, 1, ith, nth, &n0, &n1);
    int rows = (int)(n1 - n0), IC = J->IC, OC = J->OC;
    if (rows <= 0) return;
    float *out = J->out + (size_t)n0 * OC;
    const float *inp = J->inp + (size_t)n0 * IC;
    if (J->b)
        for (int n = 0; n < rows; n++) memcpy(out + (size_t)n * OC, J->b, sizeof(float) * (size_t)OC);
    float beta = J->b ? 1.0f : 0.0f;
    if (J->in_out) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, OC, IC, 1.0f, inp, IC, J->w, OC, beta,
        out, OC);
    else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, OC, IC, 1.0f, inp, IC, J->w, IC, beta, out, OC);
}

void tr_matmul_forward(Pool *pool, float *out, const float *inp, const float *w, const float *b, int N, int IC, int OC,
                       bool in_out) {
    MatJob J = {.out = out, .inp = inp, .w = w, .b = b, .N = N, .IC = IC, .OC = OC, .in_out = in_out};
    run(pool, matmul_fwd_job, &J);
}

// dinp by rows; dW and db by output columns (each a sum over all N rows).
static void matmul_bwd_job(void *arg, int ith, int nth) {
    const MatJob *J = arg;
    int N = J->N, IC = J->IC, OC = J->OC;
    int64_t n0, n1, j0, j1;
    share(N, 1, ith, nth, &n0, &n1);
    share(OC, 16, ith, nth, &j0, &j1);
    int rows = (int)(n1 - n0), cols = (int)(j1 - j0);
    const float *dout = J->dout;
    if (rows > 0) {
        float *dinp = J->dinp + (size_t)n0 * IC;
        const float *dor = dout + (size_t)n0 * OC;
        // dinp (N, IC) += dout (N, OC) W^T ([IC, OC]) or dout W ([OC, IC])
        if (J->in_out)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, IC, OC, 1.0f, dor, OC, J->w, OC, 1.0f, dinp, IC);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, IC, OC, 1.0f, dor, OC, J->w, IC, 1.0f, dinp,
                        IC);
    }
    if (cols > 0) {
        // dW (IC, OC) += inp^T dout, or dW (OC, IC) += dout^T inp: columns j0..j1 of OC
        if (J->in_out)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, IC, cols, N, 1.0f, J->inp, IC, dout + j0, OC, 1.0f,
                        J->dw + j0, OC);
        else
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, IC, N, 1.0f, dout + j0, OC, J->inp, IC, 1.0f,
                        J->dw + (size_t)j0 * IC, IC);
        if (J->db)
            for (int n = 0; n < N; n++) {
                const float *d = dout + (size_t)n * OC;
                for (int64_t j = j0; j < j1; j++) J->db[j] += d[j];
            }
    }
}

void tr_matmul_backward(Pool *pool, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int N, int IC, int OC, bool in_out) {
    MatJob J = {.dinp = dinp, .dw = dw, .db = db, .dout = dout, .inp = inp, .w = w, .N = N, .IC = IC, .OC = OC,
                .in_out = in_out};
    run(pool, matmul_bwd_job, &J);
}

// ---------------------------------------------------------------------------------------
// Rotary embedding and attention

typedef struct {
    float *x;
    int N, T, stride, n_heads, hd, rot;
    const float *cos_t, *sin_t;
    bool pairs;
} RopeJob;

// Rows, each run of rows within one sequence rotated by its own table rows.
static void rope_job(void *arg, int ith, int nth) {
    const RopeJob *J = arg;
    int64_t n0, n1;
    share(J->N, 1, ith, nth, &n0, &n1);
    int half = J->rot / 2;
    for (int64_t n = n0; n < n1;) {
        int pos = (int)(n % J->T);
        int64_t end = n - pos + J->T < n1 ? n - pos + J->T : n1;
        rope_apply(J->x + (size_t)n * J->stride, (int)(end - n), J->stride, J->n_heads, J->hd, J->rot,
                   J->cos_t + (size_t)pos * half, J->sin_t + (size_t)pos * half, J->pairs);
        n = end;
    }
}

void tr_rope(Pool *pool, float *x, int N, int T, int stride, int n_heads, int hd, int rot, const float *cos_t,
             const float *sin_t, bool pairs) {
    RopeJob J = {x, N, T, stride, n_heads, hd, rot, cos_t, sin_t, pairs};
    run(pool, rope_job, &J);
}

typedef struct {
    float *z, *att, *dq, *dk, *dv, *datt;
    const float *q, *k, *v, *dz, *probs; // probs: the forward's att, for the backward
    const int *lens;                     // bidirectional: the valid keys of each sequence; NULL: causal
    int B, T, H, Hkv, hd, sq, skv;
} AttJob;

// A share is a range of (sequence, key/value head) units, each with all the query heads
// reading that key/value head (so that their dk, dv sums stay in one share, in head order).
static void att_units(const AttJob *J, int ith, int nth, int64_t *u0, int64_t *u1) {
    share((int64_t)J->B * J->Hkv, 1, ith, nth, u0, u1);
}

// Causal attention in blocks of ATT_ROWS query rows: the queries of rows [i0, i1) see keys
// [0, i1) only, so the products skip all but the diagonal block above the diagonal (for
// T = 256, 62% of the full T x T work). What lies right of i1 in a row of P is never written
// nor read (the buffer starts zeroed).
enum { ATT_ROWS = 64 };

// The keys the query rows [.., i1) of sequence b see: [0, i1) when causal, else the sequence's
// valid ones (its padding is masked out for every query, padded queries included).
static int keys_end(const AttJob *J, int b, int i1) { return J->lens ? J->lens[b] : i1; }

static void attention_fwd_job(void *arg, int ith, int nth) {
    const AttJob *J = arg;
    int T = J->T, H = J->H, hd = J->hd, sq = J->sq, skv = J->skv, qd = H * hd, per = H / J->Hkv;
    float scale = 1.0f / sqrtf((float)hd);
    int64_t u0, u1;
    att_units(J, ith, nth, &u0, &u1);
    for (int64_t u = u0; u < u1; u++)
        for (int h = (int)(u % J->Hkv) * per; h < (int)(u % J->Hkv + 1) * per; h++) {
            int b = (int)(u / J->Hkv), g = h / per;
            const float *Q = J->q + (size_t)b * T * sq + (size_t)h * hd;
            const float *K = J->k + (size_t)b * T * skv + (size_t)g * hd;
            const float *V = J->v + (size_t)b * T * skv + (size_t)g * hd;
            float *P = J->att + ((size_t)b * H + h) * T * T, *Z = J->z + (size_t)b * T * qd + (size_t)h * hd;
            for (int i0 = 0; i0 < T; i0 += ATT_ROWS) {
                int i1 = i0 + ATT_ROWS < T ? i0 + ATT_ROWS : T, m = i1 - i0, kend = keys_end(J, b, i1);
                float *Pb = P + (size_t)i0 * T;
                // P[i0:i1, 0:kend] = Q[i0:i1] K[0:kend]^T * scale, then the (causal) softmax of each row
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, kend, hd, scale, Q + (size_t)i0 * sq, sq, K,
                            skv, 0.0f, Pb, T);
                for (int i = i0; i < i1; i++) {
                    float *row = P + (size_t)i * T;
                    softmax_inplace(row, J->lens ? kend : i + 1);
                    if (!J->lens) memset(row + i + 1, 0, sizeof(float) * (size_t)(i1 - i - 1));
                }
                // Z[i0:i1] (m, hd) = P[i0:i1, 0:kend] V[0:kend]
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hd, kend, 1.0f, Pb, T, V, skv, 0.0f,
                            Z + (size_t)i0 * qd, qd);
            }
        }
}

void tr_attention_forward(Pool *pool, float *z, float *att, const float *q, const float *k, const float *v,
                          const int *lens, int B, int T, int H, int Hkv, int hd, int sq, int skv) {
    AttJob J = {.z = z, .att = att, .q = q, .k = k, .v = v, .lens = lens, .B = B, .T = T, .H = H, .Hkv = Hkv, .hd = hd, .sq = sq,
                .skv = skv};
    run(pool, attention_fwd_job, &J);
}

static void attention_bwd_job(void *arg, int ith, int nth) {
    const AttJob *J = arg;
    int T = J->T, H = J->H, hd = J->hd, sq = J->sq, skv = J->skv, qd = H * hd, per = H / J->Hkv;
    float scale = 1.0f / sqrtf((float)hd);
    int64_t u0, u1;
    att_units(J, ith, nth, &u0, &u1);
    for (int64_t u = u0; u < u1; u++)
        for (int h = (int)(u % J->Hkv) * per; h < (int)(u % J->Hkv + 1) * per; h++) {
            int b = (int)(u / J->Hkv), g = h / per;
            size_t qo = (size_t)b * T * sq + (size_t)h * hd, ko = (size_t)b * T * skv + (size_t)g * hd;
            const float *P = J->probs + ((size_t)b * H + h) * T * T;
            const float *dZ = J->dz + (size_t)b * T * qd + (size_t)h * hd;
            float *dP = J->datt + ((size_t)b * H + h) * T * T;
            for (int i0 = 0; i0 < T; i0 += ATT_ROWS) {
                int i1 = i0 + ATT_ROWS < T ? i0 + ATT_ROWS : T, m = i1 - i0, kend = keys_end(J, b, i1);
                const float *Pb = P + (size_t)i0 * T, *dZb = dZ + (size_t)i0 * qd;
                float *dPb = dP + (size_t)i0 * T;
                // dV[0:kend] += P[i0:i1, 0:kend]^T dZ[i0:i1]; dP[i0:i1, 0:kend] = dZ[i0:i1] V[0:kend]^T
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kend, hd, m, 1.0f, Pb, T, dZb, qd, 1.0f,
                            J->dv + ko, skv);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, kend, hd, 1.0f, dZb, qd, J->v + ko, skv, 0.0f,
                            dPb, T);
                // through the softmax: dS = P * (dP - rowsum(P * dP)); masked entries have P = 0
                for (int i = i0; i < i1; i++) {
                    const float *p = P + (size_t)i * T;
                    float *d = dP + (size_t)i * T;
                    int lim = J->lens ? kend : i + 1;
                    float dot = 0;
                    for (int j = 0; j < lim; j++) dot += p[j] * d[j];
                    for (int j = 0; j < lim; j++) d[j] = p[j] * (d[j] - dot);
                    if (!J->lens) memset(d + i + 1, 0, sizeof(float) * (size_t)(i1 - i - 1));
                }
                // dQ[i0:i1] += dS K[0:kend] * scale; dK[0:kend] += dS^T Q[i0:i1] * scale
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hd, kend, scale, dPb, T, J->k + ko, skv, 1.0f,
                            J->dq + qo + (size_t)i0 * sq, sq);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kend, hd, m, scale, dPb, T,
                            J->q + qo + (size_t)i0 * sq, sq, 1.0f, J->dk + ko, skv);
            }
        }
}

void tr_attention_backward(Pool *pool, float *dq, float *dk, float *dv, float *datt, const float *dz,
                           const float *att, const float *q, const float *k, const float *v, const int *lens, int B,
                           int T, int H, int Hkv, int hd, int sq, int skv) {
    AttJob J = {.dq = dq, .dk = dk, .dv = dv, .datt = datt, .dz = dz, .probs = att, .q = q, .k = k, .v = v,
                .lens = lens, .B = B,
                .T = T, .H = H, .Hkv = Hkv, .hd = hd, .sq = sq, .skv = skv};
    run(pool, attention_bwd_job, &J);
}

// ---------------------------------------------------------------------------------------
// Element-wise operations, split in blocks of 64 elements (whole vectors for every kernel
// table, so that a vector kernel's scalar tail falls on the same elements for every split).

enum { ELEM_ALIGN = 64 };

typedef struct {
    float *out, *out2;
    const float *a, *b, *c;
    int64_t n;
    int op;
} ElemJob;

enum { E_GELU, E_GELU_BWD, E_GELU_ERF, E_GELU_ERF_BWD, E_SWIGLU, E_SWIGLU_BWD, E_ADD };

static void elem_job(void *arg, int ith, int nth) {
    const ElemJob *J = arg;
    int64_t i0, i1;
    share(J->n, ELEM_ALIGN, ith, nth, &i0, &i1);
    int n = (int)(i1 - i0);
    if (n <= 0) return;
    float *out = J->out + i0, *out2 = J->out2 ? J->out2 + i0 : NULL;
    const float *a = J->a + i0, *b = J->b ? J->b + i0 : NULL, *c = J->c ? J->c + i0 : NULL;
    switch (J->op) {
    case E_GELU: gelu_tanh_to(out, a, n); break;
    case E_GELU_BWD: gelu_tanh_backward(out, a, b, n); break;
    case E_GELU_ERF:
        memcpy(out, a, sizeof(float) * (size_t)n);
        gelu_erf(out, n);
        break;
    case E_GELU_ERF_BWD: // d/dx x Phi(x) = Phi(x) + x phi(x)
        for (int i = 0; i < n; i++) {
            float x = a[i];
            float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
            float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
            out[i] += (cdf + x * pdf) * b[i];
        }
        break;
    case E_SWIGLU:
        for (int i = 0; i < n; i++) out[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
        break;
    case E_SWIGLU_BWD: // out: dgate, out2: dup; a: dout, b: gate, c: up
        for (int i = 0; i < n; i++) {
            float g = b[i], s = 1.0f / (1.0f + expf(-g));
            out2[i] += g * s * a[i];
            out[i] += s * (1.0f + g * (1.0f - s)) * c[i] * a[i];
        }
        break;
    case E_ADD:
        for (int i = 0; i < n; i++) out[i] = a[i] + b[i];
        break;
    }
}

void tr_gelu_forward(Pool *pool, float *out, const float *inp, int n) {
    ElemJob J = {.out = out, .a = inp, .n = n, .op = E_GELU};
    run(pool, elem_job, &J);
}

void tr_gelu_backward(Pool *pool, float *dinp, const float *inp, const float *dout, int n) {
    ElemJob J = {.out = dinp, .a = inp, .b = dout, .n = n, .op = E_GELU_BWD};
    run(pool, elem_job, &J);
}

void tr_gelu_erf_forward(Pool *pool, float *out, const float *inp, int n) {
    ElemJob J = {.out = out, .a = inp, .n = n, .op = E_GELU_ERF};
    run(pool, elem_job, &J);
}

void tr_gelu_erf_backward(Pool *pool, float *dinp, const float *inp, const float *dout, int n) {
    ElemJob J = {.out = dinp, .a = inp, .b = dout, .n = n, .op = E_GELU_ERF_BWD};
    run(pool, elem_job, &J);
}

void tr_swiglu_forward(Pool *pool, float *out, const float *gate, const float *up, int n) {
    ElemJob J = {.out = out, .a = gate, .b = up, .n = n, .op = E_SWIGLU};
    run(pool, elem_job, &J);
}

void tr_swiglu_backward(Pool *pool, float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                        int n) {
    ElemJob J = {.out = dgate, .out2 = dup, .a = dout, .b = gate, .c = up, .n = n, .op = E_SWIGLU_BWD};
    run(pool, elem_job, &J);
}

void tr_residual_forward(Pool *pool, float *out, const float *a, const float *b, int n) {
    ElemJob J = {.out = out, .a = a, .b = b, .n = n, .op = E_ADD};
    run(pool, elem_job, &J);
}

// ---------------------------------------------------------------------------------------
// Loss

static void ce_fwd_job(void *arg, int ith, int nth) {
    const Job *J = arg;
    int64_t n0, n1;
    share(J->N, 1, ith, nth, &n0, &n1);
    int V = J->V;
    for (int64_t n = n0; n < n1; n++) {
        const float *l = J->in1 + (size_t)n * V;
        float *p = J->out + (size_t)n * V;
        float mx = l[0];
        for (int i = 1; i < V; i++) mx = l[i] > mx ? l[i] : mx;
        int t = J->ids[n];
        float lt = t >= 0 ? l[t] : 0.0f; // read before probs (which may be logits) is written
        double z = 0;
        for (int i = 0; i < V; i++) {
            p[i] = expf(l[i] - mx);
            z += p[i];
        }
        float inv = (float)(1.0 / z);
        // the loss from the logits (log-sum-exp), not from a rounded probability
        J->out2[n] = t >= 0 ? (float)(log(z) + mx - lt) : 0.0f;
        for (int i = 0; i < V; i++) p[i] *= inv;
    }
}

double tr_crossentropy_forward(Pool *pool, float *probs, float *losses, const float *logits, const int *targets, int N,
                               int V, int *counted) {
    Job J = {.out = probs, .out2 = losses, .in1 = logits, .ids = targets, .N = N, .V = V};
    run(pool, ce_fwd_job, &J);
    double sum = 0; // in row order, after the section
    int cnt = 0;
    for (int n = 0; n < N; n++)
        if (targets[n] >= 0) sum += losses[n], cnt++;
    *counted = cnt;
    return cnt ? sum / cnt : 0.0;
}

static void ce_bwd_job(void *arg, int ith, int nth) {
    const Job *J = arg;
    int64_t n0, n1;
    share(J->N, 1, ith, nth, &n0, &n1);
    int V = J->V;
    const float *w = J->in2;
    for (int64_t n = n0; n < n1; n++) {
        int t = J->ids[n];
        if (t < 0 || (w && w[n] == 0.0f)) continue;
        float scale_n = w ? J->scale * w[n] : J->scale;
        const float *p = J->in1 + (size_t)n * V;
        float *d = J->out + (size_t)n * V;
        for (int i = 0; i < V; i++) d[i] += p[i] * scale_n;
        d[t] -= scale_n;
    }
}

void tr_crossentropy_backward(Pool *pool, float *dlogits, const float *probs, const int *targets, int N, int V,
                              float scale, const float *w) {
    Job J = {.out = dlogits, .in1 = probs, .in2 = w, .ids = targets, .N = N, .V = V, .scale = scale};
    run(pool, ce_bwd_job, &J);
}
