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

// One linear of a job: its output, and for decoding the [in, out] partial sums or the
// [out, in] chunking; an [out, in] part may pair a second linear of the same rows (l2) and
// apply an activation to each chunk of its outputs once made.
typedef struct {
    const Linear *l, *l2;
    float *out, *out2;
    LinActFn act;
    const float *x; // a late part's input (LinDecode.late), else NULL: the section's
    bool chain;     // the input is the previous part's output (both [in, out])
    bool lazy;      // [in, out] rows made final by whoever waits for them, not after the section
    float *partial; // [chunks - 1, out]: the row-block sums of chunks 1.. ([in, out])
    int chunk;      // [out, in]: columns a chunk takes; [in, out]: the number of row blocks
    int c1;         // the end of this linear's chunk indices in the job (chunk c belongs to the
                    // first part with c < c1)
} LinPart;

struct LinJob {
    const Kernels *k;
    bool blas; // prefill through sgemm even where the kernels have tiles (the bound: kern/bound.h)
    Pool *pool;
    const float *inp;
    int T;
    int n; // linears (prefill: one)
    LinPart p[LIN_MAX];
    XQ xq;           // inp quantized, when a part is a block type (kern/blocks.h)
    int n_chunks;    // [out, in] chunks of every part
    int n_early;     // chunks before the after tasks (the late parts' come after them)
    atomic_int next; // the next chunk to take
    atomic_int *done; // [n_chunks]: chunk c's outputs are final (only with `after`)
    const LinAfter *after;
};

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
// four, for at most a quarter. Four blocks against eight, paired in one process on the Intel
// host, 2 threads, a token of GPT-2 124M: F32 1.5% faster, F16 3.1%, BF16 2.2% after 128
// tokens, F16 2.6% and BF16 3.6% after 512; sixteen were 2.5-6% slower than eight, two 0.6-1.1%
// faster than four. A team of more than four threads has four working on such a linear: its
// decoding is bound by the memory's bandwidth, which four cores already draw.)
enum { IO_CHUNKS = 4 };

// Outputs j0..j1 of an [out, in] linear on x with their bias (block types: on J->xq).
static void mv_rows(const LinJob *J, const Linear *l, const float *x, float *out, int j0, int j1) {
    if (dtype_block(l->w.dt) > 1)
        J->k->mv_out_in_q[l->w.dt](row_ptr(&l->w, j0, l->in), l->in, j1 - j0, &J->xq, out + j0);
    else
        J->k->mv_out_in[l->w.dt](row_ptr(&l->w, j0, l->in), l->in, j1 - j0, x, out + j0);
    if (l->bias) // these outputs are final: their bias here, not in a serial pass after the section
        for (int j = j0; j < j1; j++) out[j] += l->bias[j];
}

// Rows j0..j1 of [in, out] part P: the row blocks' partial sums in block order, then the bias.
static void io_reduce(const LinPart *P, int j0, int j1) {
    const Linear *l = P->l;
    for (int t = 1; t < P->chunk; t++) {
        const float *p = P->partial + (size_t)(t - 1) * l->out;
        for (int j = j0; j < j1; j++) P->out[j] += p[j];
    }
    if (l->bias)
        for (int j = j0; j < j1; j++) P->out[j] += l->bias[j];
}

void linear_wait_rows(const LinJob *J, int part, int j0, int j1) {
    const LinPart *P = &J->p[part];
    assert(J->done && j0 < j1);
    int c0 = part ? J->p[part - 1].c1 : 0, a = c0, b = P->c1 - 1; // [in, out]: every block
    if (P->l->out_in) a = c0 + j0 / P->chunk, b = c0 + (j1 - 1) / P->chunk;
    for (int c = a; c <= b; c++) pool_wait_for(&J->done[c], 1); // the chunk waited for is running
    if (!P->l->out_in) io_reduce(P, j0, j1);
}

// Decoding, every linear of the job in one section: chunks, first come first served, across
// the job's linears. [in, out]: a block of rows streamed into its partial sum (a chained
// part first waits for the previous part's blocks and makes its own slice of that input
// final: sums, bias, activation); [out, in]: a range of outputs, with their bias (and the
// paired linear's, then the activation). Then the tasks of `after`, which may wait for the
// chunks they read (linear_wait_rows), then the late parts' chunks, which wait for the rows of
// their input that the tasks make. Tasks are taken in order, so a task waited for is already
// running on another thread (or done, on a team of one).
static void mv_job(void *arg, int ith, int nth) {
    (void)nth;
    LinJob *J = arg;
    const int n_after = J->after ? J->after->n : 0, n_all = J->n_chunks + n_after;
    for (int t; (t = atomic_fetch_add_explicit(&J->next, 1, memory_order_relaxed)) < n_all;) {
        if (t >= J->n_early && t < J->n_early + n_after) {
            J->after->fn(J->after->arg, J, t - J->n_early, ith);
            continue;
        }
        const int c = t < J->n_early ? t : t - n_after;
        const LinPart *P = J->p;
        int c0 = 0;
        while (c >= P->c1) c0 = P->c1, P++;
        const Linear *l = P->l;
        const float *x = P->x ? P->x : J->inp;
        if (!l->out_in) {
            int i0, i1;
            split_range(l->in, 8, c - c0, P->chunk, &i0, &i1);
            if (P->x) J->after->wait_in(J->after->arg, i0, i1);
            if (P->chain) {
                const LinPart *Q = P - 1;
                linear_wait_rows(J, (int)(Q - J->p), i0, i1);
                if (Q->act) Q->act(Q->out + i0, NULL, i1 - i0);
                x = Q->out;
            }
            float *y = c == c0 ? P->out : P->partial + (size_t)(c - c0 - 1) * l->out;
            memset(y, 0, sizeof(float) * (size_t)l->out);
            J->k->mv_in_out[l->w.dt](row_ptr(&l->w, i0, l->out), l->out, i1 - i0, l->out, x + i0, y);
        } else {
            int j0 = (c - c0) * P->chunk, j1 = j0 + P->chunk < l->out ? j0 + P->chunk : l->out;
            if (P->x) J->after->wait_in(J->after->arg, 0, l->in);
            mv_rows(J, l, x, P->out, j0, j1);
            if (P->l2) mv_rows(J, P->l2, x, P->out2, j0, j1);
            // chunks start on a multiple of 16 floats: SIMD activations treat each element as
            // they do in one pass over the whole row
            if (P->act) P->act(P->out + j0, P->out2 ? P->out2 + j0 : NULL, j1 - j0);
        }
        if (J->done) atomic_store_explicit(&J->done[c], 1, memory_order_release);
    }
}

// Prefill goes through the kernels' own tiles where they have them (F32, F16 and BF16 on
// AVX-512, kern/simd.h GemmFn), else through sgemm: F32 weights directly, the others as below.
// Non-F32 weights are converted a panel of output columns at a time, each panel then one
// sgemm call. OpenBLAS packs the whole input (T x in) again for every call, so panels are
// made as wide as PANEL_FLOATS allows (for GPT-2 124M that is a thread's whole share):
// with 128 columns F16 prefill measured 72-87% of the sgemm bound, with whole shares 86-87%.
enum { PANEL_FLOATS = 2 << 20 }; // 8 MB of scratch a thread

// [in, out] weights with more than 2 K_SLICE rows go K_SLICE rows at a time instead: a panel of
// K_SLICE rows by up to K_PANEL_FLOATS / K_SLICE columns (1 MB), converted, then multiplied by
// the input's K_SLICE columns at once (beta = 1 after the first slice), so that OpenBLAS packs
// a panel still in L2 and each call packs only that slice of the input. Paired in one process on the Intel host, 2 threads, GPT-2 124M prefill: F16 5.6-7%
// faster at 128 tokens and 3% at 512, BF16 6.8% and 5.9% (slices of 128 or 384 rows gained 0-1.5%,
// a 2 MB panel the same as 1 MB). Not for [out, in] weights (a BF16 Llama shape 3% slower at 128
// tokens), nor for F32 weights copied into such panels (2.6% slower at 512 tokens).
enum { K_SLICE = 256, K_PANEL_FLOATS = 256 << 10 };

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
    GemmFn tiles = J->blas ? NULL : J->k->gemm[l->w.dt];
    if (tiles) { // the bias added as the first pass stores its sums
        tiles(J->inp, T, in, l->w.data, l->out_in, n_out, j0, j1, out, false, l->bias,
              pool_scratch(J->pool, ith, gemm_scratch_floats(T)));
        return;
    }
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
    // [in, panel] for [in, out] ones: both without a transpose), then sgemm; [in, out] weights
    // of more than 2 K_SLICE rows a slice of K_SLICE rows at a time
    RowF32Fn row = J->k->row_f32[l->w.dt];
    const int ks = !l->out_in && in > 2 * K_SLICE ? K_SLICE : in;
    int panel = (ks < in ? K_PANEL_FLOATS : PANEL_FLOATS) / ks / align * align;
    if (panel < align) panel = align;
    if (panel > j1 - j0) panel = j1 - j0;
    float *pan = pool_scratch(J->pool, ith, (size_t)panel * ks);
    for (int p0 = j0; p0 < j1; p0 += panel) {
        int pn = j1 - p0 < panel ? j1 - p0 : panel;
        for (int k0 = 0; k0 < in; k0 += ks) {
            int kn = in - k0 < ks ? in - k0 : ks;
            float b = k0 ? 1.0f : beta;
            if (l->out_in) {
                for (int r = 0; r < pn; r++) row(row_ptr(&l->w, p0 + r, in), k0, kn, pan + (size_t)r * kn);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, pn, kn, 1.0f, J->inp + k0, in, pan, kn, b,
                            out + p0, n_out);
            } else {
                for (int i = 0; i < kn; i++) row(row_ptr(&l->w, k0 + i, n_out), p0, pn, pan + (size_t)i * pn);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, pn, kn, 1.0f, J->inp + k0, in, pan, pn, b,
                            out + p0, n_out);
            }
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

// Whether part i of ls can take its input from part i - 1 in the same section: both [in, out]
// (part i's row blocks read slices of i - 1's outputs), and with an activation the slices
// start on multiples of 16, so that SIMD activations treat each element as in one pass.
static bool chainable(const LinDecode *ls, int i) {
    const Linear *a = ls[i - 1].l, *b = ls[i].l;
    if (a->out_in || b->out_in || ls[i - 1].l2 || a->out != b->in) return false;
    int blocks = (b->in + 7) / 8 < IO_CHUNKS ? (b->in + 7) / 8 : IO_CHUNKS;
    for (int k = 0; ls[i - 1].act && k < blocks; k++) {
        int i0, i1;
        split_range(b->in, 8, k, blocks, &i0, &i1);
        if (i0 % 16) return false;
    }
    return true;
}

// Decoding (T == 1) of the parts ls in one section, then after's tasks in it; a chained part
// that cannot run in the same section as its input starts a second one.
static void decode(Pool *pool, const float *inp, const LinDecode *ls, int n, const LinAfter *after) {
    for (int i = 1; i < n; i++)
        if (ls[i].chain && !chainable(ls, i)) {
            assert(!after);
            decode(pool, inp, ls, i, NULL);
            LinDecode rest[LIN_MAX];
            memcpy(rest, ls + i, sizeof(LinDecode) * (size_t)(n - i));
            rest[0].chain = false;
            decode(pool, ls[i - 1].out, rest, n - i, NULL);
            return;
        }
    int nth = pool_size(pool);
    LinJob J = {.k = kern_get(), .pool = pool, .inp = inp, .T = 1, .n = n, .after = after};
    size_t partial = 0;
    bool quant = false, wait = after != NULL; // block types multiply x quantized once for the section
    for (int i = 0; i < n; i++) {
        LinPart *P = &J.p[i];
        const Linear *l = ls[i].l;
        *P = (LinPart){.l = l, .l2 = ls[i].l2, .out = ls[i].out, .out2 = ls[i].out2, .act = ls[i].act,
                       .x = ls[i].late ? ls[i].x : NULL, .chain = i > 0 && ls[i].chain};
        assert(!P->l2 || (P->l2->out_in && P->l2->out == l->out && P->l2->in == l->in));
        assert(!ls[i].late || (after && after->wait_in && ls[i].x && !ls[i].chain && !ls[i].l2 &&
                               dtype_block(l->w.dt) == 1 && (i + 1 == n || ls[i + 1].late)));
        if (l->out_in) {
            P->chunk = chunk_size(l->out, nth, 16);
            J.n_chunks += (l->out + P->chunk - 1) / P->chunk;
            quant |= dtype_block(l->w.dt) > 1 || (P->l2 && dtype_block(P->l2->w.dt) > 1);
        } else {
            assert(!P->l2);
            P->chunk = (l->in + 7) / 8 < IO_CHUNKS ? (l->in + 7) / 8 : IO_CHUNKS;
            J.n_chunks += P->chunk;
            partial += (size_t)(P->chunk - 1) * l->out;
            P->lazy = !ls[i].late && (after || (i + 1 < n && ls[i + 1].chain)); // late: summed after
        }
        wait |= P->chain;
        P->c1 = J.n_chunks;
        if (!ls[i].late) J.n_early = J.n_chunks;
    }
    const int in = ls[0].l->in;
    size_t xq_floats = quant ? (size_t)in / 2 + 2 * (size_t)(in / 32) + 1 + (blk_xq_bytes(in) + 3) / 4 : 0;
    size_t done_floats = wait ? (J.n_chunks * sizeof(atomic_int) + sizeof(float) - 1) / sizeof(float) : 0;
    size_t need = partial + xq_floats + done_floats;
    float *scr = need ? pool_scratch(pool, 0, need) : NULL;
    if (quant) {
        float *d = scr + partial, *sx = d + in / 32, *bytes = sx + in / 32;
        int16_t *q = (int16_t *)(bytes + (blk_xq_bytes(in) + 3) / 4);
        J.k->quant_x(inp, in, q, d, sx, bytes, &J.xq);
    }
    if (wait) {
        J.done = (atomic_int *)(scr + partial + xq_floats);
        for (int c = 0; c < J.n_chunks; c++) atomic_init(&J.done[c], 0);
    }
    for (int i = 0; i < n; i++)
        if (!ls[i].l->out_in) J.p[i].partial = scr, scr += (size_t)(J.p[i].chunk - 1) * ls[i].l->out;
    pool_run(pool, mv_job, &J);
    for (int i = 0; i < n; i++) { // [in, out] not made final in the section: its sums, bias, activation
        const LinPart *P = &J.p[i];
        if (P->l->out_in || P->lazy) continue;
        io_reduce(P, 0, P->l->out);
        if (P->act) P->act(P->out, NULL, P->l->out);
    }
}

// Prefill (T > 1) of l, one section; blas: through sgemm whatever the kernels have.
static void prefill(Pool *pool, float *out, const float *inp, const Linear *l, int T, bool blas) {
    LinJob J = {.k = kern_get(), .blas = blas, .pool = pool, .inp = inp, .T = T, .n = 1, .p = {{.l = l, .out = out}}};
    pool_run(pool, gemm_job, &J);
}

void linear_forward_n(Pool *pool, float *const *outs, const float *inp, const Linear *const *ls, int n, int T) {
    assert(n >= 1 && n <= LIN_MAX);
    LinearCount *c = pool_tag(pool);
    if (c)
        for (int i = 0; i < n; i++) count(c, ls[i], T);
    if (T > 1) { // prefill: sections long enough that one each costs nothing
        for (int i = 0; i < n; i++) prefill(pool, outs[i], inp, ls[i], T, false);
        return;
    }
    LinDecode d[LIN_MAX];
    for (int i = 0; i < n; i++) d[i] = (LinDecode){.l = ls[i], .out = outs[i]};
    decode(pool, inp, d, n, NULL);
}

void linear_decode(Pool *pool, const float *inp, const LinDecode *ls, int n, const LinAfter *after) {
    assert(n >= 1 && n <= LIN_MAX);
    LinearCount *c = pool_tag(pool);
    if (c)
        for (int i = 0; i < n; i++) {
            count(c, ls[i].l, 1);
            if (ls[i].l2) count(c, ls[i].l2, 1);
        }
    decode(pool, inp, ls, n, after);
}

void linear_forward(Pool *pool, float *out, const float *inp, const Linear *l, int T) {
    linear_forward_n(pool, &out, inp, &l, 1, T);
}

void linear_forward_sgemm(Pool *pool, float *out, const float *inp, const Linear *l, int T) {
    assert(T > 1);
    prefill(pool, out, inp, l, T, true);
}
