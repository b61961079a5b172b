// trace_dump.c - test-only: evaluate token ids with the public engine API (model_open, ctx_new,
// ctx_eval with a Trace) and write what the trace hands over to stdout, so that the Python
// reference tests can compare every intermediate with HF transformers and the NumPy reference.
//
// Usage: trace_dump MODEL IDS KINDS THREADS [logits=none|last|all] [steps=K] [layers=MASK]
//                   [patch=KIND:LAYER:POS:SCALE]
//   MODEL    an HF model directory or .safetensors file (as `qkv --model`)
//   IDS      comma-separated token ids, e.g. 1,2,3
//   KINDS    comma-separated: embed q k v z scores probs attn_out resid_pre resid_mid mlp_out
//            resid_post ln_f logits, "all", or "none"
//   THREADS  threads of the context (ctx_new)
//   logits=  what ctx_eval itself returns: nothing (default), the last row, or every row
//   steps=K  evaluate the first n-K ids in one call, then the last K one at a time (KV cache)
//   layers=  the Trace's layer mask (bit l = layer l; 0 = all, the default)
//   patch=   activation patching: in the callback, multiply the row of position POS of KIND at
//            LAYER (-1 outside the blocks) by SCALE, in the engine's live buffer, before it is
//            written out; KIND must be among KINDS and not scores/probs (those are copies)
//
// Output, all little-endian float32 after a header line of JSON per record:
//   {"point":"KIND","layer":L,"pos0":P,"n_q":N,"n_kv":KV,"n_head":H,"dim":D,"count":C}\n
//   followed by C floats: one record per TracePoint, in the order the engine emits them
//   (layout as in core/eval/forward.h: [n_q, dim] rows, or [n_head, n_q, n_kv] for attention);
//   {"point":"out_logits","call":I,"rows":R,"dim":V,"count":C}\n + C floats: what ctx_eval
//   wrote to its logits argument in call I (when logits= is not none);
//   {"done":true,"calls":N}\n last. Exit 0, or 1 with the error on stderr.
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/forward.h"
#include "model/model.h"

static const struct {
    const char *name;
    unsigned kind;
} KINDS[] = {
    {"embed", TRACE_EMBED},         {"q", TRACE_Q},
    {"k", TRACE_K},                 {"v", TRACE_V},
    {"scores", TRACE_ATT_SCORES},   {"probs", TRACE_ATT_PROBS},
    {"resid_pre", TRACE_RESID_PRE}, {"resid_mid", TRACE_RESID_MID},
    {"resid_post", TRACE_RESID_POST}, {"ln_f", TRACE_LN_F},
    {"logits", TRACE_LOGITS},       {"z", TRACE_Z},
    {"attn_out", TRACE_ATTN_OUT},   {"mlp_out", TRACE_MLP_OUT},
};
enum { N_KINDS = sizeof KINDS / sizeof KINDS[0] };

static const char *kind_name(unsigned kind) {
    for (int i = 0; i < N_KINDS; i++)
        if (KINDS[i].kind == kind) return KINDS[i].name;
    return "?";
}

static int parse_kinds(const char *s, unsigned *want) {
    *want = 0;
    if (!strcmp(s, "none")) return 0;
    if (!strcmp(s, "all")) {
        for (int i = 0; i < N_KINDS; i++) *want |= KINDS[i].kind;
        return 0;
    }
    char *dup = strdup(s), *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int i = 0; i < N_KINDS; i++)
            if (!strcmp(tok, KINDS[i].name)) found = i;
        if (found < 0) {
            fprintf(stderr, "trace_dump: unknown kind '%s'\n", tok);
            rc = -1;
            break;
        }
        *want |= KINDS[found].kind;
    }
    free(dup);
    return rc;
}

static int parse_ids(const char *s, int **ids) {
    int n = 1;
    for (const char *p = s; *p; p++) n += *p == ',';
    *ids = malloc(sizeof(int) * (size_t)n);
    int k = 0;
    for (const char *p = s; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > INT32_MAX) {
            fprintf(stderr, "trace_dump: bad id list at '%s'\n", p);
            return -1;
        }
        (*ids)[k++] = (int)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') {
            fprintf(stderr, "trace_dump: bad id list at '%s'\n", end);
            return -1;
        }
    }
    return k;
}

static void write_floats(const float *x, size_t n) {
    // the engine computes in host order; the format is little-endian (every supported host)
    fwrite(x, sizeof(float), n, stdout);
}

typedef struct Patch {
    unsigned kind; // 0: no patch
    int layer, pos;
    float scale;
} Patch;

static void on_point(void *user, const TracePoint *p) {
    const Patch *pa = user;
    bool att = p->kind == TRACE_ATT_SCORES || p->kind == TRACE_ATT_PROBS;
    size_t count = att ? (size_t)p->n_head * p->n_q * p->n_kv : (size_t)p->n_q * p->dim;
    if (pa->kind == p->kind && pa->layer == p->layer && pa->pos >= p->pos0 && pa->pos < p->pos0 + p->n_q) {
        float *row = p->data + (size_t)(pa->pos - p->pos0) * p->dim;
        for (int i = 0; i < p->dim; i++) row[i] *= pa->scale;
    }
    printf("{\"point\":\"%s\",\"layer\":%d,\"pos0\":%d,\"n_q\":%d,\"n_kv\":%d,\"n_head\":%d,\"dim\":%d,"
           "\"count\":%zu}\n",
           kind_name(p->kind), p->layer, p->pos0, p->n_q, p->n_kv, p->n_head, p->dim, count);
    write_floats(p->data, count);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: trace_dump MODEL IDS KINDS THREADS [logits=none|last|all] [steps=K] [layers=MASK] "
                        "[patch=KIND:LAYER:POS:SCALE]\n");
        return 2;
    }
    const char *logits_mode = "none";
    int steps = 0;
    uint64_t layers = 0;
    Patch patch = {0};
    for (int i = 5; i < argc; i++) {
        if (!strncmp(argv[i], "logits=", 7)) logits_mode = argv[i] + 7;
        else if (!strncmp(argv[i], "steps=", 6)) steps = atoi(argv[i] + 6);
        else if (!strncmp(argv[i], "layers=", 7)) layers = strtoull(argv[i] + 7, NULL, 0);
        else if (!strncmp(argv[i], "patch=", 6)) {
            char name[32];
            if (sscanf(argv[i] + 6, "%31[a-z_]:%d:%d:%f", name, &patch.layer, &patch.pos, &patch.scale) != 4 ||
                parse_kinds(name, &patch.kind) || (patch.kind & (patch.kind - 1)) ||
                (patch.kind & (TRACE_ATT_SCORES | TRACE_ATT_PROBS))) {
                fprintf(stderr, "trace_dump: patch= takes KIND:LAYER:POS:SCALE (not scores or probs)\n");
                return 2;
            }
        } else {
            fprintf(stderr, "trace_dump: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (strcmp(logits_mode, "none") && strcmp(logits_mode, "last") && strcmp(logits_mode, "all")) {
        fprintf(stderr, "trace_dump: logits= takes none, last or all\n");
        return 2;
    }
    unsigned want;
    int *ids = NULL;
    int n = parse_ids(argv[2], &ids);
    if (n <= 0 || parse_kinds(argv[3], &want)) {
        free(ids);
        return 2;
    }
    if (patch.kind && !(want & patch.kind)) {
        fprintf(stderr, "trace_dump: the patched kind must be among KINDS\n");
        free(ids);
        return 2;
    }
    if (steps < 0 || steps >= n) steps = 0;
    Err e = {{0}};
    Model *m = model_open(argv[1], NULL, &e);
    if (!m) {
        fprintf(stderr, "trace_dump: %s\n", e.msg);
        free(ids);
        return 1;
    }
    Ctx *c = ctx_new(m, atoi(argv[4]), &e);
    if (!c) {
        fprintf(stderr, "trace_dump: %s\n", e.msg);
        model_free(m);
        free(ids);
        return 1;
    }
    bool all = !strcmp(logits_mode, "all");
    bool want_out = strcmp(logits_mode, "none") != 0;
    int V = ctx_config(c)->n_vocab;
    float *out = want_out ? malloc(sizeof(float) * (size_t)n * V) : NULL;
    Trace tr = {want, layers, on_point, &patch};
    int rc = 0, calls = 0;
    for (int done = 0; done < n && !rc; calls++) {
        int k = calls == 0 ? n - steps : 1;
        if (ctx_eval(c, ids + done, k, out, all, &tr, &e)) {
            fprintf(stderr, "trace_dump: %s\n", e.msg);
            rc = 1;
            break;
        }
        if (want_out) {
            int rows = all ? k : 1;
            printf("{\"point\":\"out_logits\",\"call\":%d,\"rows\":%d,\"dim\":%d,\"count\":%zu}\n", calls, rows, V,
                   (size_t)rows * V);
            write_floats(out, (size_t)rows * V);
        }
        done += k;
    }
    if (!rc) printf("{\"done\":true,\"calls\":%d}\n", calls);
    if (fflush(stdout)) rc = 1;
    free(out);
    ctx_free(c);
    model_free(m);
    free(ids);
    return rc;
}
