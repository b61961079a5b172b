// train_grad.c - test-only: the trainer's loss and gradients on one batch, for the Python
// reference tests to compare with PyTorch autograd.
//
// Usage: train_grad MODEL_DIR OUT_DIR B T THREADS IDS
//   IDS  comma-separated: B*T inputs then B*T targets (a target -1 is not counted)
// Writes the gradients as an HF model directory OUT_DIR (the model's layout and names, F32,
// the tokenizer copied) and prints {"loss": L, "counted": N} on stdout. Exit 0, or 1 with the
// error on stderr.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "train/tmodel.h"

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: train_grad MODEL_DIR OUT_DIR B T THREADS IDS\n");
        return 1;
    }
    int B = atoi(argv[3]), T = atoi(argv[4]), threads = atoi(argv[5]), n = 0;
    int *ids = calloc((size_t)2 * B * T + 1, sizeof(int));
    for (char *s = argv[6]; *s && n <= 2 * B * T; n++) {
        ids[n] = (int)strtol(s, &s, 10);
        if (*s == ',') s++;
    }
    if (n != 2 * B * T) {
        fprintf(stderr, "train_grad: %d ids, expected %d\n", n, 2 * B * T);
        return 1;
    }
    Err e = {0};
    Model *m = model_open(argv[1], NULL, &e);
    TrainModel *tm = m ? tmodel_from_model(m, threads, &e) : NULL;
    double loss;
    if (!tm || tmodel_forward(tm, ids, ids + B * T, B, T, &loss, &e)) {
        fprintf(stderr, "train_grad: %s\n", e.msg);
        return 1;
    }
    tmodel_zero_grad(tm);
    tmodel_backward(tm, 1.0f);
    if (tmodel_save(tm, argv[2], argv[1], true, &e)) {
        fprintf(stderr, "train_grad: %s\n", e.msg);
        return 1;
    }
    printf("{\"loss\": %.9g}\n", loss);
    tmodel_free(tm);
    model_free(m);
    free(ids);
    return 0;
}
