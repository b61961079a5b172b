// probe.h - linear probes: what a linear read-out of each layer's frozen representation (the
// residual stream, read through the trace) can tell about a label. Datasets (JSONL files or
// built in), the feature rows they give, a multinomial logistic regression, and the sweep over
// layers with the majority-class baseline and a shuffled-label control.
#pragma once
#include <signal.h>
#include <stdint.h>

#include "base/err.h"
#include "eval/forward.h"
#include "tok/tokenizer.h"

// A labelled character span [start, end) of an example's text (bytes).
typedef struct ProbeSpan {
    int start, end;
    char *label;
} ProbeSpan;

// How the tokens of a token-level dataset get their labels.
typedef enum {
    PROBE_SPANS,  // from the spans (the tokens outside every span: `other`, or skipped when NULL)
    PROBE_PARITY, // "even" / "odd": the token's position among the text's tokens
    PROBE_PREV,   // the previous token's text (from the text's second token on)
} ProbeRule;

// A probing dataset. Sentence level: one label per text (label[i]). Token level: labels per
// token, by rule.
typedef struct ProbeSet {
    char *name;
    bool token_level;
    ProbeRule rule;
    int n;           // examples
    char **text;     // [n], NUL-terminated
    char **label;    // sentence level: [n]
    int *span0;      // token level: [n + 1], example i's spans are spans[span0[i] .. span0[i + 1])
    ProbeSpan *spans;
    char *other;     // PROBE_SPANS: the label of a token outside every span, or NULL: skip it
    int *group;      // [n]: example i's group, numbered from 0 in order of first appearance (a
                     // line without "group", and a built-in example, is a group of its own)
    int n_group;     // groups
    bool grouped;    // some line of the file carried a "group"
} ProbeSet;

void probe_set_free(ProbeSet *s);

// Read a JSONL dataset: one object a line, {"text": ..., "label": ...} (sentence level) or
// {"text": ..., "labels": [[start, end, "LABEL"], ...]} (token level, byte offsets into text);
// every line of one kind, each with an optional "group" (a string or a whole number: the
// examples the held-out split keeps together, such as the two sentences of a minimal pair). other: the label of tokens outside every span ("O"), or NULL to skip
// them. 0 or -1 with e naming the line.
int probe_set_read(const char *path, const char *other, ProbeSet *s, Err *e);

// The built-in datasets, whose labels need no annotator: "number" (the token is part of a
// number), "capital" (of a capitalised word), "bracket" (inside brackets), "parity" (its
// position is even or odd) and "prev" (the previous token's text), on n sentences made from a
// small vocabulary with seed. 0, or -1 with e filled for an unknown name.
int probe_set_builtin(const char *name, int n, uint64_t seed, ProbeSet *s, Err *e);
// The names of the built-in datasets, NULL-terminated.
extern const char *const probe_builtin_names[];

// Write s as the JSONL probe_set_read reads (rule PROBE_SPANS or sentence level: the other rules
// label the model's tokens and have no spans). 0 or -1 with e filled.
int probe_set_write(const ProbeSet *s, const char *path, Err *e);

// The rows a probe is trained on: one per labelled token (token level) or per text (sentence
// level: a decoder's last token, an encoder's mean over the text's tokens), with the residual
// stream of every layer (0 = the embeddings, l = after block l-1, as lens_hidden numbers them).
typedef struct ProbeRows {
    int n, n_layer1, d; // rows, layers + 1, width
    float *x;           // [n, n_layer1, d]
    int *y;             // [n]: class index
    int *ex, *pos;      // [n]: the example and the token position (sentence level: -1) of each row
    int k;              // classes
    char **classes;     // [k], in order of first appearance
} ProbeRows;

void probe_rows_free(ProbeRows *r);

// Evaluate every text of s (tokenized as the model does, each from an empty cache) and gather
// its rows. Special tokens the tokenizer adds (BOS, [CLS], [SEP]) get no row. A token's byte
// span is found by matching its piece in the text (folded as a normalizing tokenizer folds it;
// a piece not found takes the text up to the next token found); it takes the label of the first
// span it overlaps. 0 or -1 with e filled (a text longer than the context, no labelled row, one class).
int probe_rows(Ctx *c, const Tokenizer *t, const ProbeSet *s, ProbeRows *r, Err *e);

// The optimiser's settings: Adam (beta 0.9, 0.999, eps 1e-8) on the mean cross-entropy plus
// l2/2 |W|^2, full batch, from zero weights, on features standardised with the training rows'
// mean and standard deviation (population; a constant column is left centred).
typedef struct ProbeFit {
    int steps;
    double lr, l2;
    volatile sig_atomic_t *stop; // non-NULL: the fit fails with "interrupted" once *stop is set
} ProbeFit;
ProbeFit probe_fit_defaults(void); // 200 steps, lr 0.05, l2 1e-4

// A trained probe: the features x of its layer standardised, (x - mu) / sd, then the logits
// W x' + b of its k classes.
typedef struct ProbeWeights {
    int k, d, layer;
    char **classes;         // [k]
    double *mu, *sd, *W, *b; // [d], [d], [k, d], [k]
    char *model, *dataset;  // what it was trained on (for the reader; may be NULL)
    double accuracy;        // held out (NAN: none)
    int sentence;           // 1: trained on one row a text (probe_pool's); 0: on tokens; -1: not said (older files)
} ProbeWeights;

// A sentence-level example's row from the hidden states h [T, d] of one layer, its own tokens
// [a, b) (the tokenizer's added first and last left out): a decoder's (causal) last token, an
// encoder's mean over them. Into out [d].
void probe_pool(const float *h, int a, int b, int d, bool causal, float *out);

void probe_weights_free(ProbeWeights *p);
// Write p as a JSON file ({"format": "qkv-probe", "version": 1, layer, d, classes, mu, sd, W, b,
// model, dataset, accuracy}; numbers exact). 0 or -1 with e filled.
int probe_save(const char *path, const ProbeWeights *p, Err *e);
// Read a file probe_save wrote, checking every field. 0 or -1 with e filled.
int probe_load(const char *path, ProbeWeights *p, Err *e);
// probs (n, k): the softmax of p's logits on the rows x (n, d; row i at x + i * stride).
void probe_predict(const ProbeWeights *p, const float *x, int n, size_t stride, double *probs);

// Train ny multinomial logistic regressions side by side on the rows x (n, d) with test[i] == 0,
// probe q on the labels ys[q] (n, in [0, k)); acc_test[q] and acc_train[q] (either array may be
// NULL) the fraction probe q predicts right (argmax, ties to the lower class) on the held-out
// rows and the training rows. Each probe's numbers are those it gets alone. 0 or -1 with e filled.
// keep: NULL, or filled with probe 0's standardisation and weights (its k, d, mu, sd, W, b; the
// caller sets the rest and frees it with probe_weights_free).
int probe_fit(const float *x, int n, int d, size_t stride, const int *const *ys, int ny, int k,
              const unsigned char *test, const ProbeFit *f, double *acc_test, double *acc_train, ProbeWeights *keep,
              Err *e);

// One layer of a sweep.
typedef struct ProbeLayer {
    int layer;
    double acc, train_acc; // held out, training rows
    double control;        // held-out accuracy of the same probe trained on shuffled labels
} ProbeLayer;

// The held-out rows: every row of the examples whose group g (group[i] of example i; NULL: i
// itself) has g % every == every - 1, so that a group is either all held out or all trained on.
void probe_split(const ProbeRows *r, const int *group, int every, unsigned char *test);

// Train a probe on each of layers[nl] of r, and one on labels shuffled with seed (one
// permutation over all rows, the same for every layer), the layers shared out over pool (NULL:
// this thread alone). majority: the held-out accuracy of predicting the training rows' most
// frequent class. 0 or -1 with e filled.
int probe_sweep(Pool *pool, const ProbeRows *r, const int *layers, int nl, const unsigned char *test, uint64_t seed,
                const ProbeFit *f, ProbeLayer *out, double *majority, Err *e);

// The expected layer (Tenney et al. 2019, "center of gravity") of the accuracies of layers
// sorted ascending, on the best accuracy reached up to each layer (Tenney's scores, of a mix of
// the layers up to l, never fall; one probe per layer can): sum l (best_l - best_prev) /
// sum (best_l - best_prev) over the layers after the first, within the layers swept; NAN when
// no layer beats the first.
double probe_expected_layer(const ProbeLayer *l, int nl);
