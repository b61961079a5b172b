// train_grad.c - test-only: the trainer's loss and gradients on one batch, or the weights
// after AdamW steps on it, for the Python reference tests to compare with PyTorch.
//
// Usage: train_grad MODEL_DIR OUT_DIR B T THREADS IDS [adamw STEPS ACCUM LR MIN_LR WD CLIP WARMUP]
//   IDS    comma-separated: B*T inputs then B*T targets (a target -1 is not counted)
//   adamw  STEPS optimizer steps, each over the batch split into ACCUM micro-batches of B/ACCUM
//          sequences (gradients accumulated), clipped to global norm CLIP (0: not clipped), at
//          the learning rate of the schedule (optim_lr: WARMUP steps, cosine from LR to MIN_LR),
//          weight decay WD on matrices and embeddings, betas 0.9/0.95, eps 1e-8
// Writes the gradients (or, after adamw, the weights) as an HF model directory OUT_DIR (the
// model's layout and names, F32, the tokenizer copied) and prints {"loss": L} on stdout (the
// loss of the first forward; after adamw also "norms": the gradient norm of each step before
// clipping, "lrs": the learning rates). Exit 0, or 1 with the error on stderr.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "train/optim.h"
#include "train/tmodel.h"

static int die(const char *msg) {
    fprintf(stderr, "train_grad: %s\n", msg);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 7 && !(argc == 15 && !strcmp(argv[7], "adamw")))
        return die("usage: train_grad MODEL_DIR OUT_DIR B T THREADS IDS [adamw STEPS ACCUM LR MIN_LR WD CLIP WARMUP]");
    int B = atoi(argv[3]), T = atoi(argv[4]), threads = atoi(argv[5]), n = 0;
    int *ids = calloc((size_t)2 * B * T + 1, sizeof(int));
    for (char *s = argv[6]; *s && n <= 2 * B * T; n++) {
        ids[n] = (int)strtol(s, &s, 10);
        if (*s == ',') s++;
    }
    if (n != 2 * B * T) return die("wrong number of ids");
    Err e = {0};
    Model *m = model_open(argv[1], NULL, &e);
    TrainModel *tm = m ? tmodel_from_model(m, threads, &e) : NULL;
    if (!tm) return die(e.msg);
    double loss = 0;
    bool adamw = argc == 15;
    if (!adamw) {
        if (tmodel_forward(tm, ids, ids + B * T, B, T, &loss, &e)) return die(e.msg);
        tmodel_zero_grad(tm);
        tmodel_backward(tm, 1.0f);
        if (tmodel_save(tm, argv[2], argv[1], true, &e)) return die(e.msg);
        printf("{\"loss\": %.9g}\n", loss);
    } else {
        OptParams p = optim_defaults();
        int steps = atoi(argv[8]), accum = atoi(argv[9]);
        p.steps = steps;
        p.lr = strtof(argv[10], NULL);
        p.min_lr = strtof(argv[11], NULL);
        p.weight_decay = strtof(argv[12], NULL);
        p.clip = strtof(argv[13], NULL);
        p.warmup = atoi(argv[14]);
        if (accum < 1 || B % accum) return die("ACCUM must divide B");
        AdamW o;
        if (adamw_init(&o, tmodel_size(tm), &e)) return die(e.msg);
        int mb = B / accum;
        printf("{\"norms\": [");
        for (int s = 0; s < steps; s++) {
            tmodel_zero_grad(tm);
            for (int k = 0; k < accum; k++) {
                double l;
                const int *in = ids + (size_t)k * mb * T, *tg = ids + (size_t)B * T + (size_t)k * mb * T;
                if (tmodel_forward(tm, in, tg, mb, T, &l, &e)) return die(e.msg);
                tmodel_backward(tm, 1.0f / (float)accum);
            }
            double norm = optim_clip(tmodel_grads(tm), tmodel_size(tm), p.clip);
            float lr = optim_lr(&p, s);
            adamw_step(&o, tm, &p, lr);
            printf("%s[%.9g, %.9g]", s ? ", " : "", norm, lr);
        }
        printf("]}\n");
        adamw_done(&o);
        if (tmodel_save(tm, argv[2], argv[1], false, &e)) return die(e.msg);
    }
    tmodel_free(tm);
    model_free(m);
    free(ids);
    return 0;
}
