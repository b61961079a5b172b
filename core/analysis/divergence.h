// divergence.h - how far one model's next-token distributions are from another's on the
// same tokens: what `compare` reports for a quantized model against the loaded one.
#pragma once
#include <stdbool.h>

typedef struct LogitDiff {
    double kl;       // KL(P || Q) in nats, P = softmax of the reference's logits, Q of the other's
    int top_p, top_q; // the argmax of each (the first of equals)
    double max_diff; // the largest |logit difference| over the vocabulary
    int max_at;      // the token where it is
} LogitDiff;

// p, q are (T, V) logits of the reference and of the other model; out (T) per position.
void logits_diff(const float *p, const float *q, int T, int V, LogitDiff *out);
