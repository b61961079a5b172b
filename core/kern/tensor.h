// tensor.h - weight tensors as they sit in a mapped file, and element types.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef enum { DT_F32 = 0, DT_F16, DT_BF16, DT_Q8_0, DT_COUNT } DType;

// A read-only view of a weight tensor (shape[0] is the outermost dimension).
typedef struct Tensor {
    DType dt;
    int ndim;
    int64_t shape[4];
    int64_t n;        // element count
    const void *data; // mapped bytes; NULL when the tensor is absent
} Tensor;

const char *dtype_name(DType dt);
// Bytes taken by n elements of dt (n a multiple of the block size for block types).
size_t dtype_bytes(DType dt, int64_t n);

// Convert n elements of a tensor row starting at element offset off into f32.
void tensor_row_f32(const Tensor *t, int64_t off, int64_t n, float *out);
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
