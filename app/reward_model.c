// reward_model.c - a reward model opened for scoring (see reward_model.h).
#include "reward_model.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "model/model.h"
#include "model/wsrc.h"
#include "train/reward.h"

struct RewardModel {
    Model *m;
    TrainModel *tm;
    float *score; // (n_embd)
    char *path;
};

void reward_model_free(RewardModel *rm) {
    if (!rm) return;
    tmodel_free(rm->tm);
    model_free(rm->m);
    free(rm->score);
    free(rm->path);
    free(rm);
}

RewardModel *reward_model_open(const char *dir, int threads, Err *e) {
    RewardModel *rm = xcalloc(1, sizeof *rm);
    char abs[PATH_MAX];
    rm->path = xstrdup(realpath(dir, abs) ? abs : dir);
    if (!(rm->m = model_open(dir, NULL, e))) goto fail;
    const WTensor *t = rm->m->src ? wsrc_find(rm->m->src, "score.weight") : NULL;
    int d = rm->m->cfg.n_embd;
    if (!t) {
        err_set(e, "'%s' is not a reward model: it has no score.weight", dir);
        goto fail;
    }
    if (!t->supported || t->t.n != d || (t->t.ndim == 2 && t->t.shape[0] != 1)) {
        err_set(e, "'%s': score.weight must be [1, %d] (one label), not %lld elements", dir, d, (long long)t->t.n);
        goto fail;
    }
    rm->score = xmalloc(sizeof(float) * (size_t)d);
    tensor_row_f32(&t->t, 0, d, rm->score);
    if (!(rm->tm = tmodel_from_model(rm->m, threads, e))) goto fail;
    return rm;
fail:
    reward_model_free(rm);
    return NULL;
}

const char *reward_model_path(const RewardModel *rm) { return rm->path; }

int reward_model_score(RewardModel *rm, const char *prompt, size_t plen, const char *completion, size_t clen,
                       RewardScore *out, Err *e) {
    memset(out, 0, sizeof *out);
    Buf text = {0};
    buf_put(&text, prompt, plen);
    buf_put(&text, completion, clen);
    int rc = tok_encode(rm->m->tok, text.data ? text.data : "", text.len, TOK_ADD_SPECIAL, &out->ids, e) < 0;
    buf_free(&text);
    if (rc) return -1;
    if (!out->ids.n) return err_set(e, "nothing to score: the text has no tokens");
    int ctx = rm->m->cfg.n_ctx;
    if (out->ids.n > ctx) { // keep the end, as training does
        out->truncated = out->ids.n - ctx;
        memmove(out->ids.v, out->ids.v + out->truncated, sizeof(int) * (size_t)ctx);
        out->ids.n = ctx;
    }
    const int *seq = out->ids.v;
    float r;
    if (reward_eval(rm->tm, rm->score, &seq, &out->ids.n, 1, &r, e)) {
        iv_free(&out->ids);
        return -1;
    }
    out->reward = r;
    return 0;
}
