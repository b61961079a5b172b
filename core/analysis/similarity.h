// similarity.h - how alike the representations of two layers are: linear CKA and the mean
// cosine, over the positions of one text's residual stream.
#pragma once
#include <signal.h>
#include "base/err.h"

// h (L1, n, d): the residual stream of n positions at L1 layers (lens_hidden). cka (L1, L1):
// linear CKA of every pair of layers (Kornblith et al. 2019; positions are the examples,
// each layer's features centred over them): |Xa^T Xb|_F^2 / (|Xa^T Xa|_F |Xb^T Xb|_F), NAN
// when a layer is constant over the positions. cos (L1, L1): the mean over positions of the
// cosine of the two layers' vectors (NAN where a vector is zero). 0 or -1 with e filled.
int layer_similarity(const float *h, int L1, int n, int d, volatile sig_atomic_t *stop, float *cka, float *cos, Err *e);
