// winrate.c - a tuned policy against its base as a reward model judges them (see winrate.h).
#include "winrate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"
#include "session.h"

void judge_result_free(JudgeResult *r) {
    free(r->s);
    memset(r, 0, sizeof *r);
}

// One completion of prompt from m (context c), logged and scored: its run id and reward.
static int sample_one(App *app, const Model *m, Ctx *c, RewardModel *rm, const char *prompt, size_t len,
                      const GenParams *p, int64_t *run, double *reward, Err *e) {
    Generation g;
    if (app_generate_on(app, m, c, prompt, len, NULL, 0, p, TOK_CHAT_NONE, "judge", 0, &g, e)) return -1;
    RewardScore sc;
    int rc = reward_model_score(rm, prompt, len, g.text.data ? g.text.data : "", g.text.len, &sc, e);
    if (!rc) {
        iv_free(&sc.ids);
        *reward = sc.reward;
        *run = g.rec.run.id;
        Err le = {{0}};
        Db *db = *run > 0 ? app_db(app, &le) : NULL;
        if (db && db_reward_score(db, *run, reward_model_path(rm), sc.reward, &le))
            fprintf(stderr, "warning: the score of run %lld was not logged: %s\n", (long long)*run, le.msg);
    }
    if (g.log_err.msg[0]) fprintf(stderr, "warning: a judged run was not logged: %s\n", g.log_err.msg);
    generation_free(&g);
    return rc;
}

int judge_win_rate(App *app, const Model *base, const Model *tuned, RewardModel *rm, const char *const *prompts,
                   const size_t *lens, int n, int samples, const GenParams *p, JudgeResult *r, Err *e) {
    memset(r, 0, sizeof *r);
    Ctx *cb = ctx_new_kv(base, app->n_threads, app_kv(app, base), e);
    Ctx *ct = cb ? ctx_new_kv(tuned, app->n_threads, app_kv(app, tuned), e) : NULL;
    if (!ct) {
        ctx_free(cb);
        return -1;
    }
    r->s = xcalloc((size_t)n * (size_t)(samples > 0 ? samples : 1), sizeof *r->s);
    double t0 = clock_now(), sb = 0, st = 0;
    int rc = 0;
    GenParams q = *p;
    r->planned = n * samples;
    for (int i = 0; i < n && !rc && !r->stopped; i++) {
        for (int k = 0; k < samples && !rc; k++) {
            JudgeSample *js = &r->s[r->n];
            js->prompt = i;
            js->seed = q.s.seed = p->s.seed + (uint64_t)k; // the same seeds for both models
            rc = sample_one(app, base, cb, rm, prompts[i], lens[i], &q, &js->base_run, &js->base_reward, e) ||
                 sample_one(app, tuned, ct, rm, prompts[i], lens[i], &q, &js->tuned_run, &js->tuned_reward, e);
            if (rc) break;
            if (app->cancel && *app->cancel) { // a completion cut short is not judged
                r->stopped = true;
                break;
            }
            r->n++;
            sb += js->base_reward, st += js->tuned_reward;
            if (js->tuned_reward > js->base_reward) r->wins++;
            else if (js->tuned_reward < js->base_reward) r->losses++;
            else r->ties++;
        }
        char detail[64];
        snprintf(detail, sizeof detail, "prompt %d of %d", i + 1, n);
        double el = clock_now() - t0;
        Progress pr = {.what = "judge", .detail = detail, .done = i + 1, .total = n, .elapsed_s = el,
                       .left_s = el / (i + 1) * (n - i - 1), .finished = i + 1 == n, .loss = NAN, .held_loss = NAN,
                       .held_acc = NAN};
        if (!rc && !r->stopped) app_progress(app, &pr);
    }
    ctx_free(ct);
    ctx_free(cb);
    if (rc) {
        judge_result_free(r);
        return -1;
    }
    r->win_rate = r->n ? (r->wins + 0.5 * r->ties) / r->n : NAN;
    r->base_mean = r->n ? sb / r->n : NAN;
    r->tuned_mean = r->n ? st / r->n : NAN;
    return 0;
}
