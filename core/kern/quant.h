// quant.h - float32 rows to any stored element type, in memory: the half floats, ggml's
// blocks with the rounding of ggml's reference quantizers, and the lectures' affine int8.
#pragma once
#include <stdint.h>

#include "base/err.h"
#include "kern/tensor.h"

// Store rows x cols floats of src (row-major) as dt into dst, which holds
// rows * dtype_row_bytes(dt, cols) bytes; rows are independent, so callers may split them
// over threads. Q8_0, Q4_0, Q4_1 round exactly as ggml's reference quantizers (and the
// gguf package); Q4_K and Q6_K follow ggml's reference search (make_qkx2 / make_qx);
// I8_AFFINE stores per row s = (max - min) / 255, Z = round(-128 - min / s) and
// q = round(x / s + Z) clamped to int8 (x = s (q - Z)); a constant row, or one whose Z would
// pass 2^23, takes s = max |x| / 127, Z = 0. Returns 0, or -1 with a message when
// cols is not a multiple of dt's block or a value is not finite.
int quant_rows(DType dt, const float *src, int64_t rows, int64_t cols, void *dst, Err *e);
// quant_rows for weights: a value dt cannot hold is refused too, naming its row and columns (F16
// beyond 65504, a block whose largest value needs a scale beyond a half float's range), rather
// than stored as an infinity or NaN (the KV cache's rows, from quant_rows and the kernels'
// q8_0_from_f32, keep such a block, whose infinite scale makes attention's output NaN).
int quant_weights(DType dt, const float *src, int64_t rows, int64_t cols, void *dst, Err *e);
