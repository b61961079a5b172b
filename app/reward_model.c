// reward_model.c - a reward model opened for scoring (see reward_model.h).
#include "reward_model.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/fs.h"
#include "base/json.h"
#include "base/mem.h"
#include "model/model.h"
#include "model/wsrc.h"
#include "prefpairs.h"
#include "train/reward.h"

struct RewardModel {
    Model *m;
    TrainModel *tm;
    float *score; // (n_embd)
    float bias;   // the classifier's bias (BERT's; 0 without one)
    PoolKind pool;
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

// An encoder's pooling as reward train records it: config.json's qkv_pooling.
static int read_pooling(const char *dir, PoolKind *pool, Err *e) {
    char *p = fs_join(dir, "config.json");
    Json *cfg = json_parse_file(p, e);
    int rc = 0;
    const char *s = cfg ? json_str_or(cfg, "qkv_pooling", NULL) : NULL;
    if (!cfg) rc = -1;
    else if (!s)
        rc = err_set(e, "'%s' is an encoder's sequence classifier without qkv_pooling (cls or mean) in config.json: "
                        "qkv does not know what its classifier reads (transformers' own forward reads BERT's pooler, "
                        "which qkv does not compute); reward train writes it",
                     dir);
    else if (pool_parse(s, pool) || (*pool != POOL_CLS && *pool != POOL_MEAN))
        rc = err_set(e, "'%s': qkv_pooling \"%.20s\" in config.json is not cls or mean", p, s);
    json_free(cfg);
    free(p);
    return rc;
}

RewardModel *reward_model_open(const char *dir, int threads, Err *e) {
    RewardModel *rm = xcalloc(1, sizeof *rm);
    char abs[PATH_MAX];
    rm->path = xstrdup(realpath(dir, abs) ? abs : dir);
    if (!(rm->m = model_open(dir, NULL, e))) goto fail;
    const TensorMap *map = rm->m->family->hf;
    const char *wname = map->cls_weight ? map->cls_weight : "score.weight";
    const WTensor *t = rm->m->src ? wsrc_find(rm->m->src, wname) : NULL;
    const WTensor *tb = rm->m->src && map->cls_bias ? wsrc_find(rm->m->src, map->cls_bias) : NULL;
    int d = rm->m->cfg.n_embd;
    if (!t) {
        err_set(e, "'%s' is not a reward model: it has no %s", dir, wname);
        goto fail;
    }
    if (wtensor_check_type(t, e) || (tb && wtensor_check_type(tb, e))) { // a type it cannot read, before its size
        err_prefix(e, "'%s'", dir);
        goto fail;
    }
    if (t->t.n != d || (t->t.ndim == 2 && t->t.shape[0] != 1)) {
        err_set(e, "'%s': %s must be [1, %d] (one label), not %lld elements", dir, wname, d, (long long)t->t.n);
        goto fail;
    }
    if (tb && tb->t.n != 1) {
        err_set(e, "'%s': %s must be [1] (one label), not %lld elements", dir, map->cls_bias, (long long)tb->t.n);
        goto fail;
    }
    rm->pool = POOL_LAST;
    if (!rm->m->cfg.a.causal && read_pooling(dir, &rm->pool, e)) goto fail;
    rm->score = xmalloc(sizeof(float) * (size_t)d);
    tensor_row_f32(&t->t, 0, d, rm->score);
    if (tb) tensor_row_f32(&tb->t, 0, 1, &rm->bias);
    if (!(rm->tm = tmodel_body_from_model(rm->m, threads, e))) goto fail;
    return rm;
fail:
    reward_model_free(rm);
    return NULL;
}

const char *reward_model_path(const RewardModel *rm) { return rm->path; }

int reward_model_score(RewardModel *rm, const char *prompt, size_t plen, const char *completion, size_t clen,
                       RewardScore *out, Err *e) {
    memset(out, 0, sizeof *out);
    IntVec types = {0};
    if (reward_tokens(rm->m, prompt, plen, completion, clen, rm->m->cfg.n_ctx, &out->ids, &types, &out->truncated, e)) {
        iv_free(&out->ids);
        iv_free(&types);
        return -1;
    }
    const int *seq = out->ids.v, *ty = types.v;
    float r;
    int rc = reward_eval(rm->tm, rm->score, &seq, types.n ? &ty : NULL, &out->ids.n, 1, rm->pool, &r, e);
    iv_free(&types);
    if (rc) {
        iv_free(&out->ids);
        return -1;
    }
    out->reward = (double)r + rm->bias;
    // a NaN or an infinity in the weights: said, not scored, logged or ranked by
    if (!isfinite(out->reward)) {
        iv_free(&out->ids);
        return err_set(e, "the reward model '%s' gives a reward that is not a finite number (%s): its weights hold a "
                          "NaN or an infinity (a damaged file?)", rm->path, isnan(out->reward) ? "NaN" : "an infinity");
    }
    return 0;
}
