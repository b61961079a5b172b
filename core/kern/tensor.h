// tensor.h - weight tensors as they sit in a mapped file, and element types.
#pragma once
#include <stddef.h>
#include <stdint.h>

// Element types. The order is fixed (tables are indexed by it); add new ones before DT_COUNT.
// Block types store their elements in blocks along each row (kern/blocks.h has the layouts):
// a row holds whole blocks. DT_I8_AFFINE is qkv's own: each row starts with its float32 scale
// s and int32 zero point Z, then one int8 q per element, x = s (q - Z).
typedef enum {
    DT_F32 = 0,
    DT_F16,
    DT_BF16,
    DT_Q8_0,      // blocks of 32: f16 scale, 32 int8 (34 bytes)
    DT_Q4_0,      // blocks of 32: f16 scale, 32 4-bit values offset 8 (18 bytes)
    DT_Q4_1,      // blocks of 32: f16 scale, f16 min, 32 4-bit values (20 bytes)
    DT_Q4_K,      // super-blocks of 256: 8 sub-blocks of 32 with 6-bit scales and mins (144 bytes)
    DT_Q6_K,      // super-blocks of 256: 6-bit values, 16 int8 scales, f16 scale (210 bytes)
    DT_I8_AFFINE, // per row: f32 s, int32 Z, int8 q[cols] (8 + cols bytes)
    DT_COUNT
} DType;

// A read-only view of a weight tensor (shape[0] is the outermost dimension).
typedef struct Tensor {
    DType dt;
    int ndim;
    int64_t shape[4];
    int64_t n;        // element count
    const void *data; // mapped bytes; NULL when the tensor is absent
} Tensor;

// The name as ggml spells it ("F32", "Q4_K", ...; "I8_AFFINE"), "?" for no type.
const char *dtype_name(DType dt);
// Elements per block: 32 (Q8_0, Q4_0, Q4_1), 256 (Q4_K, Q6_K), else 1.
int dtype_block(DType dt);
// Bytes of a stored row of n elements (n a multiple of the block size), its header included.
size_t dtype_row_bytes(DType dt, int64_t n);
// Bytes taken by n elements of dt (n a multiple of the block size). Rows of every type but
// DT_I8_AFFINE have no header, so n may span rows; for DT_I8_AFFINE n is one row.
size_t dtype_bytes(DType dt, int64_t n);
// ggml's (GGUF's) type id of dt, or -1 for a type GGUF does not have (DT_I8_AFFINE).
int dtype_ggml(DType dt);
// The DType of ggml type id `ggml`, or -1 when qkv does not compute with that type.
int dtype_from_ggml(uint32_t ggml);

// Convert n elements of a tensor starting at element offset off into f32 (block types: off
// and n multiples of the block). Crosses rows as the tensor's last dimension says.
void tensor_row_f32(const Tensor *t, int64_t off, int64_t n, float *out);
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
// f32_to_f16, but a finite value beyond half precision's largest (65504) becomes +-65504, not
// infinity (NaN stays NaN): the F16 KV cache's store, where one infinite key or value would make
// every later attention output NaN.
uint16_t f32_to_f16_sat(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
