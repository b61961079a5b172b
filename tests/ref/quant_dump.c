// quant_dump.c - test-only: qkv's element types between bytes and floats, so that the Python
// reference tests can compare them with the gguf package (llama.cpp's reader) byte for byte.
//
// Usage: quant_dump dequant TYPE COLS KERNELS   stored rows on stdin -> float32 on stdout
//        quant_dump quant TYPE COLS             float32 rows on stdin -> stored rows on stdout
//        quant_dump matvec TYPE COLS KERNELS    stored rows, then COLS float32 x, on stdin ->
//                                               W x (one float32 per row) through linear_forward
//   TYPE     a name as dtype_name spells it (Q8_0, Q4_K, I8_AFFINE, ...)
//   COLS     elements per row (a multiple of the type's block); rows = what stdin holds
//   KERNELS  scalar, avx2, avx512 or avx512vnni: the kernel table that converts (exit 77 when this CPU
//            cannot run it)
// Exit 0, 77 for a table this CPU lacks, else 1 with the error on stderr.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern/kernels.h"
#include "kern/ops.h"
#include "kern/quant.h"

static unsigned char *read_all(size_t *n) {
    size_t cap = 1 << 20;
    unsigned char *b = malloc(cap);
    *n = 0;
    for (size_t k; (k = fread(b + *n, 1, cap - *n, stdin)) > 0;)
        if ((*n += k) == cap) b = realloc(b, cap *= 2);
    return b;
}

static int fail(const char *msg) {
    fprintf(stderr, "quant_dump: %s\n", msg);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4) return fail("usage: quant_dump dequant|quant|matvec TYPE COLS [KERNELS]");
    int dt = -1;
    for (int d = 0; d < DT_COUNT; d++)
        if (!strcmp(argv[2], dtype_name((DType)d))) dt = d;
    long long cols = atoll(argv[3]);
    if (dt < 0 || cols <= 0 || cols % dtype_block((DType)dt)) return fail("bad TYPE or COLS");
    Err e = {0};
    if (argc > 4) {
        if (!kern_supported(argv[4])) return 77;
        if (kern_use(argv[4], &e)) return fail(e.msg);
    }
    size_t n;
    unsigned char *in = read_all(&n);
    const size_t rb = dtype_row_bytes((DType)dt, cols);
    if (!strcmp(argv[1], "quant")) {
        int64_t rows = (int64_t)(n / (4 * (size_t)cols));
        unsigned char *out = malloc(rb * (size_t)rows + 1);
        if (quant_rows((DType)dt, (const float *)in, rows, cols, out, &e)) {
            free(out), free(in); // the sanitizers' leak check runs on this path too
            return fail(e.msg);
        }
        fwrite(out, rb, (size_t)rows, stdout);
        free(out);
    } else if (!strcmp(argv[1], "dequant")) {
        int64_t rows = (int64_t)(n / rb);
        Tensor t = {.dt = (DType)dt, .ndim = 2, .shape = {rows, cols}, .n = rows * cols, .data = in};
        float *out = malloc(sizeof(float) * (size_t)(rows * cols) + 1);
        tensor_row_f32(&t, 0, rows * cols, out);
        fwrite(out, sizeof(float), (size_t)(rows * cols), stdout);
        free(out);
    } else if (!strcmp(argv[1], "matvec")) {
        int64_t rows = (int64_t)((n - 4 * (size_t)cols) / rb);
        float *x = malloc(sizeof(float) * (size_t)cols), *y = malloc(sizeof(float) * (size_t)rows + 1);
        memcpy(x, in + rb * (size_t)rows, sizeof(float) * (size_t)cols);
        Linear l = {.w = {.dt = (DType)dt, .ndim = 2, .shape = {rows, cols}, .n = rows * cols, .data = in},
                    .out_in = true, .in = (int)cols, .out = (int)rows};
        Pool *pool = pool_new(2);
        linear_forward(pool, y, x, &l, 1);
        pool_free(pool);
        fwrite(y, sizeof(float), (size_t)rows, stdout);
        free(x), free(y);
    } else {
        free(in);
        return fail("unknown mode");
    }
    free(in);
    return 0;
}
