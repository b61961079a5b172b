// ops.c - linear layers over stored weights, and the element-wise operations, on the
// kernel table chosen for this CPU (kern/kernels.h).
//
// Prefill (T > 1) goes through cblas_sgemm, split by output columns over the pool's
// threads (OpenBLAS itself runs single-threaded so that one team owns the cores); F16/BF16
// weights are converted a panel at a time into the thread's scratch. Decoding (T == 1) is
// memory-bound: the matrix-vector kernels read each weight byte once, converting on the fly.
#include "kern/ops.h"
#include "kern/blocks.h"
#include "kern/kernels.h"

#include <assert.h>
#include <cblas.h>
#include <stdatomic.h>
#include <string.h>

void layernorm_forward(float *out, const float *inp, const float *w, const float *b, int T, int C, float eps) {
    kern_get()->layernorm(out, inp, w, b, T, C, eps);
}

void gelu_tanh(float *x, int n) { kern_get()->gelu_tanh_to(x, x, n); }

void gelu_tanh_to(float *out, const float *inp, int n) { kern_get()->gelu_tanh_to(out, inp, n); }

void gelu_tanh_backward(float *dinp, const float *inp, const float *dout, int n) {
    kern_get()->gelu_tanh_backward(dinp, inp, dout, n);
}

void softmax_inplace(float *x, int n) { kern_get()->softmax(x, n); }

void rmsnorm_forward(float *out, const float *inp, const float *w, int T, int C, float eps) {
    kern_get()->rmsnorm(out, inp, w, T, C, eps);
}

void gelu_erf(float *x, int n) { kern_get()->gelu_erf(x, n); }

void swiglu(float *gate, const float *up, int n) { kern_get()->swiglu(gate, up, n); }

int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

const char *ops_kernels(void) { return kern_name(); }

// ---------------------------------------------------------------------------------------
// Parallel sections

enum { LIN_MAX = 4 }; // linears one decoding section can run

// One linear of a job: its output, and for decoding the [in, out] partial sums or the
// [out, in] chunking.
typedef struct {
    const Linear *l;
    float *out;
    float *partial; // [chunks - 1, out]: the row-block sums of chunks 1.. ([in, out])
    int chunk;      // [out, in]: columns a chunk takes; [in, out]: the number of row blocks
    int c1;         // the end of this linear's chunk indices in the job (chunk c belongs to the
                    // first part with c < c1)
} LinPart;

typedef struct {
    const Kernels *k;
    Pool *pool;
    const float *inp;
    int T;
    int n; // linears (prefill: one)
    LinPart p[LIN_MAX];
    XQ xq;           // inp quantized, when a part is a block type (kern/blocks.h)
    int n_chunks;    // [out, in] chunks of every part
    atomic_int next; // the next chunk to take
} LinJob;

// Split [0, n) into nth parts aligned to `align`; part ith is [*a, *b).
static void split_range(int n, int align, int ith, int nth, int *a, int *b) {
    int blocks = (n + align - 1) / align;
    int per = blocks / nth, extra = blocks % nth;
    int s = ith * per + (ith < extra ? ith : extra);
    int e = s + per + (ith < extra ? 1 : 0);
    *a = s * align < n ? s * align : n;
    *b = e * align < n ? e * align : n;
}

// Row r of a weight stored as rows of cols elements.
static const void *row_ptr(const Tensor *w, int64_t r, int64_t cols) {
    return (const char *)w->data + dtype_row_bytes(w->dt, cols) * (size_t)r;
}

// [out, in] decoding hands out its columns in chunks of about an eighth of a thread's share,
// first come first served: a thread the machine delays (two cores shared with other work)
// holds up the others by one chunk, not by its whole share. Each output is one kernel call
// whichever thread makes it, so the result does not depend on the schedule.
static int chunk_size(int n, int nth, int align) {
    int c = (n + 8 * nth - 1) / (8 * nth);
    c = (c + align - 1) / align * align;
    return c > 4 * align ? c : 4 * align;
}

// [in, out] decoding splits its rows into IO_CHUNKS blocks whatever the team's size, each
// summed into its own partial (block 0 into out) and the partials added in block order after
// the section: the additions' order, hence the logits, is the same from run to run and for
// any number of threads, while the blocks go first come first served. (Splitting rows rather
// than the columns of each row was measured about 1.4x faster. With one block a thread, a
// thread the machine descheduled mid-block held the other up for the rest of its half; with
// eight, for at most an eighth. The partials are 7 x out floats, 2-4% of an F16 layer's bytes,
// read back from the caches.)
enum { IO_CHUNKS = 8 };

// Decoding, every linear of the job in one section: chunks, first come first served, across
// the job's linears. [in, out]: a block of rows streamed into its partial sum; [out, in]:
// a range of outputs, with their bias.
static void mv_job(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    LinJob *J = arg;
    for (int c; (c = atomic_fetch_add_explicit(&J->next, 1, memory_order_relaxed)) < J->n_chunks;) {
        const LinPart *P = J->p;
        int c0 = 0;
        while (c >= P->c1) c0 = P->c1, P++;
        const Linear *l = P->l;
        if (!l->out_in) {
            int i0, i1;
            split_range(l->in, 8, c - c0, P->chunk, &i0, &i1);
            float *y = c == c0 ? P->out : P->partial + (size_t)(c - c0 - 1) * l->out;
            memset(y, 0, sizeof(float) * (size_t)l->out);
            J->k->mv_in_out[l->w.dt](row_ptr(&l->w, i0, l->out), l->out, i1 - i0, l->out, J->inp + i0, y);
            continue;
        }
        int j0 = (c - c0) * P->chunk, j1 = j0 + P->chunk < l->out ? j0 + P->chunk : l->out;
        if (dtype_block(l->w.dt) > 1)
            J->k->mv_out_in_q[l->w.dt](row_ptr(&l->w, j0, l->in), l->in, j1 - j0, &J->xq, P->out + j0);
        else
            J->k->mv_out_in[l->w.dt](row_ptr(&l->w, j0, l->in), l->in, j1 - j0, J->inp, P->out + j0);
        if (l->bias) // these outputs are final: their bias here, not in a serial pass after the section
            for (int j = j0; j < j1; j++) P->out[j] += l->bias[j];
    }
}

// Non-F32 weights are converted a panel of output columns at a time, each panel then one
// sgemm call. OpenBLAS packs the whole input (T x in) again for every call, so panels are
// made as wide as PANEL_FLOATS allows (for GPT-2 124M that is a thread's whole share):
// with 128 columns F16 prefill measured 72-87% of the sgemm bound, with whole shares 86-87%.
enum { PANEL_FLOATS = 2 << 20 }; // 8 MB of scratch a thread

static void gemm_job(void *arg, int ith, int nth) {
    LinJob *J = arg;
    const Linear *l = J->p[0].l;
    float *out = J->p[0].out;
    // [in, out] block types: panels start on a block of the rows' (output) dimension
    const int align = l->out_in || dtype_block(l->w.dt) < 32 ? 32 : dtype_block(l->w.dt);
    int j0, j1;
    split_range(l->out, align, ith, nth, &j0, &j1);
    if (j0 >= j1) return;
    int T = J->T, in = l->in, n_out = l->out;
    // C starts as the bias (beta = 1) so that no separate pass adds it
    float beta = l->bias ? 1.0f : 0.0f;
    if (l->bias)
        for (int t = 0; t < T; t++) memcpy(out + (size_t)t * n_out + j0, l->bias + j0, sizeof(float) * (size_t)(j1 - j0));
    if (l->w.dt == DT_F32 && (uintptr_t)l->w.data % sizeof(float) == 0) {
        const float *W = l->w.data;
        if (l->out_in)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, j1 - j0, in, 1.0f, J->inp, in,
                        W + (size_t)j0 * in, in, beta, out + j0, n_out);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, j1 - j0, in, 1.0f, J->inp, in, W + j0, n_out,
                        beta, out + j0, n_out);
        return;
    }
    // convert a panel of output columns to f32 ([panel, in] for [out, in] weights,
    // [in, panel] for [in, out] ones: both without a transpose), then sgemm
    RowF32Fn row = J->k->row_f32[l->w.dt];
    int panel = PANEL_FLOATS / in / align * align;
    if (panel < align) panel = align;
    if (panel > j1 - j0) panel = j1 - j0;
    float *pan = pool_scratch(J->pool, ith, (size_t)panel * in);
    for (int p0 = j0; p0 < j1; p0 += panel) {
        int pn = j1 - p0 < panel ? j1 - p0 : panel;
        if (l->out_in) {
            for (int r = 0; r < pn; r++) row(row_ptr(&l->w, p0 + r, in), 0, in, pan + (size_t)r * in);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, pn, in, 1.0f, J->inp, in, pan, in, beta,
                        out + p0, n_out);
        } else {
            for (int i = 0; i < in; i++) row(row_ptr(&l->w, i, n_out), p0, pn, pan + (size_t)i * pn);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, pn, in, 1.0f, J->inp, in, pan, pn, beta,
                        out + p0, n_out);
        }
    }
}

static void count(LinearCount *c, const Linear *l, int T) {
    double flops = 2.0 * T * l->in * l->out;
    if (T == 1) {
        c->mv_calls++;
        c->mv_bytes += (double)dtype_row_bytes(l->w.dt, l->out_in ? l->in : l->out) * (l->out_in ? l->out : l->in);
        c->mv_flops += flops;
        return;
    }
    c->mm_calls++;
    c->mm_flops += flops;
    for (int s = 0; s < c->n_shapes; s++) {
        LinearShape *h = &c->shapes[s];
        if (h->T == T && h->in == l->in && h->out == l->out && h->out_in == l->out_in) {
            h->calls++;
            return;
        }
    }
    if (c->n_shapes < LINEAR_MAX_SHAPES) c->shapes[c->n_shapes++] = (LinearShape){T, l->in, l->out, l->out_in, 1};
}

void linear_count(Pool *pool, LinearCount *c) {
    if (c) memset(c, 0, sizeof *c);
    pool_set_tag(pool, c);
}

void linear_forward_n(Pool *pool, float *const *outs, const float *inp, const Linear *const *ls, int n, int T) {
    assert(n >= 1 && n <= LIN_MAX);
    LinearCount *c = pool_tag(pool);
    if (c)
        for (int i = 0; i < n; i++) count(c, ls[i], T);
    if (T > 1) { // prefill: sections long enough that one each costs nothing
        for (int i = 0; i < n; i++) {
            LinJob J = {.k = kern_get(), .pool = pool, .inp = inp, .T = T, .n = 1, .p = {{.l = ls[i], .out = outs[i]}}};
            pool_run(pool, gemm_job, &J);
        }
        return;
    }
    int nth = pool_size(pool);
    LinJob J = {.k = kern_get(), .pool = pool, .inp = inp, .T = 1, .n = n};
    size_t partial = 0;
    for (int i = 0; i < n; i++) {
        LinPart *P = &J.p[i];
        P->l = ls[i], P->out = outs[i];
        if (ls[i]->out_in) {
            P->chunk = chunk_size(ls[i]->out, nth, 16);
            J.n_chunks += (ls[i]->out + P->chunk - 1) / P->chunk;
        } else {
            P->chunk = (ls[i]->in + 7) / 8 < IO_CHUNKS ? (ls[i]->in + 7) / 8 : IO_CHUNKS;
            J.n_chunks += P->chunk;
            partial += (size_t)(P->chunk - 1) * ls[i]->out;
        }
        P->c1 = J.n_chunks;
    }
    // block types multiply x quantized once for the section (every linear has the same in)
    bool quant = false;
    for (int i = 0; i < n; i++) quant |= ls[i]->out_in && dtype_block(ls[i]->w.dt) > 1;
    const int in = ls[0]->in;
    size_t xq_floats = quant ? (size_t)in / 2 + 2 * (size_t)(in / 32) + 1 + (blk_xq_bytes(in) + 3) / 4 : 0;
    float *scr = partial + xq_floats ? pool_scratch(pool, 0, partial + xq_floats) : NULL;
    if (quant) {
        float *d = scr + partial, *sx = d + in / 32, *bytes = sx + in / 32;
        int16_t *q = (int16_t *)(bytes + (blk_xq_bytes(in) + 3) / 4);
        J.k->quant_x(inp, in, q, d, sx, bytes, &J.xq);
    }
    for (int i = 0; i < n; i++)
        if (!ls[i]->out_in) J.p[i].partial = scr, scr += (size_t)(J.p[i].chunk - 1) * ls[i]->out;
    pool_run(pool, mv_job, &J);
    for (int i = 0; i < n; i++) { // [in, out]: the blocks' sums in order, then the bias
        const Linear *l = ls[i];
        float *out = outs[i];
        if (l->out_in) continue;
        for (int t = 1; t < J.p[i].chunk; t++) {
            const float *p = J.p[i].partial + (size_t)(t - 1) * l->out;
            for (int j = 0; j < l->out; j++) out[j] += p[j];
        }
        if (l->bias)
            for (int j = 0; j < l->out; j++) out[j] += l->bias[j];
    }
}

void linear_forward(Pool *pool, float *out, const float *inp, const Linear *l, int T) {
    linear_forward_n(pool, &out, inp, &l, 1, T);
}
