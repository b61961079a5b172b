// kernels.h - the CPU kernels one instruction set provides, as a table, and the choice
// among the tables (scalar, AVX2+FMA+F16C, AVX-512) made once per process.
//
// Adding an element type: one entry per table (row_f32, and mv_in_out / mv_out_in where the
// instruction set has a faster kernel for it); an entry left NULL falls back to the scalar
// table's, so the scalar table must have all three.
#pragma once
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "kern/blocks.h"
#include "kern/tensor.h"

// Stored matrices are rows; row r of a matrix of dt with rows of `cols` elements starts
// dtype_row_bytes(dt, cols) * r bytes after the first. Block types hold whole blocks per row
// (kern/blocks.h); DT_I8_AFFINE rows begin with their scale and zero point.

// Convert n stored elements starting at element off of the row at base to f32 (block types:
// off and n multiples of the block). Every type but DT_I8_AFFINE has no row header, so base
// may be a whole array and off any element of it.
typedef void (*RowF32Fn)(const void *base, int64_t off, int64_t n, float *out);

// [in, out] weights (GPT-2 Conv1D), `rows` rows of ld elements starting at w:
// y (n) += x (rows) . W[0:rows, 0:n) (accumulates, so that row blocks add up). Any rows, n
// (block types: n a multiple of the block).
typedef void (*MvInOutFn)(const void *w, int64_t ld, int rows, int n, const float *x, float *y);

// [out, in] weights (nn.Linear, output heads), n rows of in elements starting at w:
// y[j] = dot(W[j, 0:in), x) for j < n. Overwrites y. Any in (block types: a multiple of the block).
typedef void (*MvOutInFn)(const void *w, int in, int n, const float *x, float *y);

// [out, in] block types on a quantized x: y[j] = dot(W[j, 0:in), x) over whole blocks, x as
// blk_quant_x rounds it. Overwrites y. (Their mv_out_in quantizes x itself, then does this.)
typedef void (*MvOutInQFn)(const void *w, int in, int n, const XQ *x, float *y);

// x (n, a multiple of 32) quantized for MvOutInQFn, bit for bit as blk_quant_x and then
// blk_quant_x_bytes do it: q (n), d and s (n / 32), the byte planes in bytes (blk_xq_bytes(n)
// bytes, aligned to a float); *xq is pointed at them all.
typedef void (*QuantXFn)(const float *x, int n, int16_t *q, float *d, float *s, void *bytes, XQ *xq);

// Prefill (T > 1) in the table's own tiles: out[t, j] = (acc ? out[t, j] : bias ? bias[j] : 0)
// + x[t, 0:in) . W[0:in, j] for t < T, j0 <= j < j1, W stored [in, out] (rows of n_out
// elements) or, out_in, [out, in] (rows of in), x rows of in floats, out rows of n_out, bias
// n_out floats or NULL. scratch: gemm_scratch_floats(T) floats, any alignment. Each output is
// summed in the same order whatever j0 and j1, so a team's split does not change it.
typedef void (*GemmFn)(const float *x, int T, int in, const void *w, bool out_in, int n_out, int j0, int j1, float *out,
                       bool acc, const float *bias, float *scratch);
// The tiles' depth (rows of W a pass: 512 against 256, paired on GPT-2's 48 linears alone, was
// as fast at 128 tokens and 1.5-3% faster at 512, where fewer passes re-read fewer sums), the
// most rows of x and columns of W a tile takes, the columns of W converted at once (a block),
// and the rows of x taken at once (more go GEMM_TB at a time: a pass of them is 2 MB; a
// multiple of every table's tile rows, past a 512-token prefill chunk).
enum { GEMM_KC = 512, GEMM_MR_MAX = 16, GEMM_NR_MAX = 32, GEMM_NB = 128, GEMM_TB = 1032 };
static inline size_t gemm_scratch_floats(int T) {
    return ((size_t)(T < GEMM_TB ? T : GEMM_TB) + GEMM_MR_MAX) * GEMM_KC + (size_t)GEMM_KC * GEMM_NB + 16;
}

typedef struct Kernels {
    const char *name; // "scalar", "avx2", "avx512", "avx512vnni"
    RowF32Fn row_f32[DT_COUNT];
    MvInOutFn mv_in_out[DT_COUNT];
    MvOutInFn mv_out_in[DT_COUNT];
    MvOutInQFn mv_out_in_q[DT_COUNT]; // block types only
    // Q8_0 only: MvOutInFn with x kept in float (each block's products summed in float, then
    // times its d), for the Q8_0 KV cache's scores, where x is a query, not an activation
    MvOutInFn mv_out_in_fx[DT_COUNT];
    QuantXFn quant_x;
    GemmFn gemm[DT_COUNT]; // F32, F16, BF16 where the table has tiles; else NULL (sgemm serves)
    // x (n): GELU, tanh approximation, in place
    // x (n): softmax in place
    void (*softmax)(float *x, int n);
    // out, inp (T, C); w, b (C), b may be NULL; out may equal inp
    void (*layernorm)(float *out, const float *inp, const float *w, const float *b, int T, int C, float eps);
    // out, inp (T, C); w (C): out = inp / rms(inp) * w; out may equal inp
    void (*rmsnorm)(float *out, const float *inp, const float *w, int T, int C, float eps);
    // out, inp (n): GELU, tanh approximation, out of place (the training pass keeps inp)
    void (*gelu_tanh_to)(float *out, const float *inp, int n);
    // dinp (n) += gelu_tanh'(inp) * dout (the training pass's backward)
    void (*gelu_tanh_backward)(float *dinp, const float *inp, const float *dout, int n);
    // x (n): GELU with erf, in place
    void (*gelu_erf)(float *x, int n);
    // gate, up (n): gate = silu(gate) * up, in place
    void (*swiglu)(float *gate, const float *up, int n);
    // x (n) into h as F16: rounded to nearest even, beyond +-65504 saturated (f32_to_f16_sat,
    // bit for bit; a NaN stays a NaN, its payload as the instruction leaves it)
    void (*f16_from_f32)(const float *x, int n, uint16_t *h);
    // x (n, a multiple of 32) into dst as Q8_0 blocks, bit for bit as quant_rows(DT_Q8_0, x, 1,
    // n, ...) (the Q8_0 KV cache's rows): 0, or -1 when a value is not finite (dst then partly
    // written)
    int (*q8_0_from_f32)(const float *x, int n, void *dst);
} Kernels;

// gelu'(x) of the training pass's GELU (kern/scalar.c), one element: the scalar table's and the
// vector tables' tails. e^(-2u) is taken at most at e^88, as the vector exponential clamps it:
// beyond that (x below about -10.06) e overflowed to infinity and s e = 0 x infinity made the
// derivative NaN; clamped, s e stays near 1 and the derivative goes to 0 as it should.
static inline float gelu_tanh_grad1(float x) {
    const float k = 0.7978845608028654f, c = 0.044715f;
    float e = expf(fminf(-2.0f * k * (x + c * x * x * x), 88.0f)), s = 1.0f / (1.0f + e);
    return s + x * (s * (s * e)) * (2.0f * k * (1.0f + 3.0f * c * x * x));
}

// The tables (an instruction set this build cannot target has a table with name NULL).
extern const Kernels kern_scalar_table, kern_avx2_table, kern_avx512_table, kern_avx512vnni_table;

// The table in use, every entry filled. The first call chooses it (see kern_use).
const Kernels *kern_get(void);

// Name of the kernels in use.
const char *kern_name(void);
// Whether this build and CPU can run the kernels named ("scalar", "avx2", "avx512", "avx512vnni").
bool kern_supported(const char *name);
// Use the kernels named: "scalar", "avx2", "avx512", "avx512vnni", or "auto" (the best this CPU runs).
// Returns 0, or -1 with a message when the name is unknown or the CPU lacks the
// instructions (the choice is then unchanged). Not while kernels are running.
int kern_use(const char *name, Err *e);
// When QKV_KERNELS named kernels that could not be used: what happened instead; else NULL.
const char *kern_note(void);
