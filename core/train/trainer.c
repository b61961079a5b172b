// trainer.c - a training run over a text file with checkpoints and exact resumption (see
// trainer.h).
#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "kern/bound.h"
#include "base/fs.h"
#include "base/mem.h"
#include "base/utf8.h"
#include "base/vec.h"
#include "eval/sample.h"
#include "model/model.h"
#include "train/tmodel.h"

TrainOpts train_defaults(void) {
    TrainOpts o = {0};
    o.newp = newmodel_defaults();
    o.batch = 8;
    o.seq = 64;
    o.accum = 1;
    o.opt = optim_defaults();
    o.opt.steps = 100;
    o.eval_every = 0;
    o.eval_batches = 4;
    o.save_every = 0;
    o.val_frac = 0.1;
    o.seed = 1;
    o.resume = true;
    return o;
}

// ---------------------------------------------------------------------------------------
// The state file

#define STATE_FILE "train_state.bin"
static const char STATE_MAGIC[8] = {'Q', 'K', 'V', 'T', 'R', 'A', 'I', 'N'};
enum { STATE_VERSION = 4 };

// What must match for a run to continue, then where it is. Little-endian on the hosts qkv
// targets; written and read by the same code. Version 2 adds the optimizer's settings and a
// fingerprint of the data, version 3 a checksum of what follows the head, version 4 the new
// model's seed, std and tokenizer (files of older versions, without them, still resume).
typedef struct StateHead {
    char magic[8];
    uint32_t version, pad;
    int64_t n_params, train_tokens;
    int64_t batch, seq, accum, steps;
    uint64_t seed;
    int64_t step, adam_t;
    uint64_t rng[4];
    // version 2
    double lr, min_lr, beta1, beta2, eps, weight_decay, clip;
    int64_t warmup;
    uint64_t data_hash; // FNV-1a of the token ids (and the examples' prompt lengths)
    // version 3
    uint64_t payload_hash; // FNV-1a of the weights, then AdamW's first and second moments
    // version 4: a run from scratch's new model (newp's seed and std, tok=DIR's files)
    uint64_t init_seed;
    double init_std;
    uint64_t tok_hash; // newmodel_tokenizer_hash
} StateHead;
enum {
    STATE_HEAD_V1 = offsetof(StateHead, lr),
    STATE_HEAD_V2 = offsetof(StateHead, payload_hash),
    STATE_HEAD_V3 = offsetof(StateHead, init_seed)
};

#define FNV_OFFSET 14695981039346656037ull

// FNV-1a from h over n 32-bit words at p (ints or floats, as their bits).
static uint64_t fnv_words(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        uint32_t w;
        memcpy(&w, b + 4 * i, 4);
        h = (h ^ w) * 1099511628211ull;
    }
    return h;
}

static uint64_t payload_hash(const float *params, const AdamW *o, size_t n) {
    return fnv_words(fnv_words(fnv_words(FNV_OFFSET, params, n), o->m, n), o->v, n);
}

static int state_write(const char *out, const StateHead *h0, const float *params, const AdamW *o, Err *e) {
    char *path = fs_join(out, STATE_FILE);
    StateHead h = *h0;
    size_t n = (size_t)h.n_params;
    h.payload_hash = payload_hash(params, o, n);
    AtomicFile af;
    int rc = af_open(&af, path, e);
    if (!rc) {
        bool ok = fwrite(&h, sizeof h, 1, af.f) == 1 && fwrite(params, sizeof(float), n, af.f) == n &&
                  fwrite(o->m, sizeof(float), n, af.f) == n && fwrite(o->v, sizeof(float), n, af.f) == n;
        if (!ok) {
            rc = err_set(e, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
            af_abort(&af);
        } else {
            rc = af_commit(&af, e);
        }
    }
    free(path);
    return rc;
}

// The index of the first of x[0..n) that is not a finite number (or, with nonneg, is below
// zero), or -1.
static int64_t first_bad(const float *x, size_t n, bool nonneg) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || (nonneg && x[i] < 0)) return (int64_t)i;
    return -1;
}

// Whether the weights and moments read are what was written: the checksum (version 3), and
// for every version finite numbers with second moments at least zero. 0, or -1 with e filled.
static int state_payload_check(const char *path, const StateHead *h, const float *params, const AdamW *o, Err *e) {
    static const char *const hint = "(the checkpoint's model.safetensors, written before it, may be good: "
                                    "from= that folder starts a new run)";
    size_t n = (size_t)h->n_params;
    if (h->version >= 3 && payload_hash(params, o, n) != h->payload_hash)
        return err_set(e, "'%s': damaged training state: its weights and optimizer moments do not match the "
                          "checksum saved with them %s", path, hint);
    const struct {
        const float *x;
        bool nonneg;
        const char *what;
    } parts[] = {{params, false, "weight"}, {o->m, false, "first moment"}, {o->v, true, "second moment"}};
    for (int k = 0; k < 3; k++) {
        int64_t i = first_bad(parts[k].x, n, parts[k].nonneg);
        if (i >= 0)
            return err_set(e, "'%s': damaged training state: %s %lld is %g %s", path, parts[k].what, (long long)i,
                           (double)parts[k].x[i], hint);
    }
    return 0;
}

// Reads the state of out into h (and, when params is non-NULL, the weights and moments, checked:
// state_payload_check). Returns 1 when read, 0 when there is no state file, -1 with e filled.
static int state_read(const char *out, StateHead *h, float *params, AdamW *o, Err *e) {
    char *path = fs_join(out, STATE_FILE);
    FILE *f = fopen(path, "rb");
    int rc = 0;
    if (!f) {
        if (errno != ENOENT) rc = err_set(e, "cannot open '%s': %s", path, strerror(errno));
        free(path);
        return rc;
    }
    memset(h, 0, sizeof *h);
    size_t head = 0;
    if (fread(h, STATE_HEAD_V1, 1, f) != 1 || memcmp(h->magic, STATE_MAGIC, 8)) {
        rc = err_set(e, "'%s': not a qkv training state", path);
    } else if (h->version < 1 || h->version > STATE_VERSION) {
        rc = err_set(e, "'%s': training state version %u (this qkv reads 1 to %d)", path, h->version, STATE_VERSION);
    } else if ((head = h->version == 1 ? STATE_HEAD_V1 : h->version == 2 ? STATE_HEAD_V2 : h->version == 3 ? STATE_HEAD_V3 : sizeof *h) > STATE_HEAD_V1 &&
               fread((char *)h + STATE_HEAD_V1, head - STATE_HEAD_V1, 1, f) != 1) {
        rc = err_set(e, "'%s': truncated or of the wrong size", path);
    } else if (h->n_params < 1 || h->step < 0 || h->step > h->steps) {
        rc = err_set(e, "'%s': corrupt training state", path);
    } else if (params) {
        size_t n = (size_t)h->n_params;
        if (fread(params, sizeof(float), n, f) != n || fread(o->m, sizeof(float), n, f) != n ||
            fread(o->v, sizeof(float), n, f) != n || fgetc(f) != EOF)
            rc = err_set(e, "'%s': truncated or of the wrong size", path);
        else
            rc = state_payload_check(path, h, params, o, e) ? -1 : 1;
    } else {
        rc = 1;
    }
    fclose(f);
    free(path);
    return rc;
}


// ---------------------------------------------------------------------------------------
// Data

// The training data: a text's tokens, batches of windows at random starts; or examples, one
// per batch row, padded, with a loss on their answers only.
typedef struct Data {
    IntVec ids;        // the text's tokens, or every example's one after another
    int64_t ntr, nval; // tokens for training and held out (text: ids[0, ntr) and the rest)
    int n_ex;          // examples: example i is ids[start[i], start[i] + len[i]), its first n_prompt[i] the prompt
    int64_t *start;
    int *len, *n_prompt;
    int *tr, n_tr, *va, n_va; // the training and the held-out examples
    int pad;                  // the input at a padded position (its target is never counted)
} Data;

static void data_free(Data *d) {
    iv_free(&d->ids);
    free(d->start), free(d->len), free(d->n_prompt), free(d->tr), free(d->va);
}

static int load_tokens(const TrainOpts *o, const Model *m, Data *d, Err *e) {
    Buf text = {0};
    if (fs_read_file(o->data, (size_t)1 << 31, &text, e)) return err_prefix(e, "data");
    // text, as train-tokenizer reads it: bytes that are not UTF-8 would each become U+FFFD (three
    // tokens of a byte-level vocabulary) and teach the model that instead
    size_t bad = utf8_invalid_at(text.data, text.len);
    if (bad != SIZE_MAX) {
        size_t line, byte;
        text_line_of(text.data, bad, &line, &byte);
        buf_free(&text);
        return err_set(e, "data '%s' is not UTF-8 (line %zu, byte %zu of it): convert it first (iconv)", o->data, line,
                       byte);
    }
    int rc = text.len ? tok_encode(m->tok, text.data, text.len, 0, &d->ids, e) : err_set(e, "data '%s' is empty", o->data);
    if (rc >= 0) { // a tokenizer without tokens for most of the text drops it (a one-token vocabulary
                   // kept 3% of a text, and the run trained to a loss of 0)
        Buf back = {0};
        tok_decode(m->tok, d->ids.v, (int)d->ids.n, &back);
        if (back.len < text.len / 2)
            rc = err_set(e, "the model's tokenizer spells %zu of the %zu bytes of '%s' (it has no token for the rest, "
                            "which would be dropped): train one on the text (train-tokenizer) and give it as tok=",
                         back.len, text.len, o->data);
        buf_free(&back);
    }
    buf_free(&text);
    if (rc < 0) return -1;
    d->nval = (int64_t)(d->ids.n * o->val_frac), d->ntr = d->ids.n - d->nval;
    return 0;
}

// Tokenizes the examples; with val > 0 every k-th is held out (k = 1/val rounded, at least 2).
// *T becomes the longest example's inputs (its tokens less one) when that is below seq.
static int load_examples(const TrainOpts *o, const Model *m, Data *d, int *T, Err *e) {
    int n = o->n_examples, longest = 0;
    d->n_ex = n;
    d->start = malloc(sizeof(int64_t) * (size_t)n);
    d->len = malloc(sizeof(int) * (size_t)n), d->n_prompt = malloc(sizeof(int) * (size_t)n);
    d->tr = malloc(sizeof(int) * (size_t)n), d->va = malloc(sizeof(int) * (size_t)n);
    if (!d->start || !d->len || !d->n_prompt || !d->tr || !d->va) return err_set(e, "out of memory for %d examples", n);
    int eos = tok_eos(m->tok), bos = tok_bos(m->tok);
    d->pad = eos >= 0 ? eos : bos >= 0 ? bos : 0;
    int k = o->val_frac > 0 ? (int)(1.0 / o->val_frac + 0.5) : 0;
    if (k == 1) k = 2;
    for (int i = 0; i < n; i++) {
        const TrainExample *x = &o->examples[i];
        d->start[i] = d->ids.n;
        if (x->prompt_len) {
            if (tok_encode(m->tok, x->prompt, x->prompt_len, x->special ? TOK_PARSE_SPECIAL : TOK_ADD_SPECIAL, &d->ids, e) < 0)
                return err_prefix(e, "example %d", i + 1);
        } else if (bos >= 0) { // as generate starts from nothing
            iv_push(&d->ids, bos);
        }
        d->n_prompt[i] = (int)(d->ids.n - d->start[i]);
        if (d->n_prompt[i] < 1) return err_set(e, "example %d: the prompt gives no tokens", i + 1);
        if (tok_encode(m->tok, x->answer, x->answer_len, 0, &d->ids, e) < 0) return err_prefix(e, "example %d", i + 1);
        d->len[i] = (int)(d->ids.n - d->start[i]);
        if (d->len[i] == d->n_prompt[i]) return err_set(e, "example %d has an empty answer", i + 1);
        if (d->len[i] > o->seq + 1)
            return err_set(e, "example %d is %d tokens, more than seq+1 = %d (a larger seq= fits it)", i + 1,
                           d->len[i], o->seq + 1);
        if (d->len[i] > longest) longest = d->len[i];
        bool held = k && n >= 2 && i % k == k - 1;
        if (held) d->va[d->n_va++] = i, d->nval += d->len[i];
        else d->tr[d->n_tr++] = i, d->ntr += d->len[i];
    }
    if (longest - 1 < *T) *T = longest - 1;
    return 0;
}

// Row b of a batch: example x from position 0, its answer's tokens the counted targets, padded
// to T (or, x < 0, only padding).
static void example_row(const Data *d, int x, int T, int *in, int *tg) {
    const int *v = x >= 0 ? d->ids.v + d->start[x] : NULL;
    int len = x >= 0 ? d->len[x] : 0, np = x >= 0 ? d->n_prompt[x] : 0;
    for (int t = 0; t < T; t++) {
        in[t] = t < len ? v[t] : d->pad;
        tg[t] = t + 1 < len && t + 1 >= np ? v[t + 1] : -1;
    }
}

// A training batch: B windows of T+1 tokens at random starts, or B examples drawn at random.
static void sample_batch(Rng *r, const Data *d, int B, int T, int *in, int *tg) {
    for (int b = 0; b < B; b++) {
        if (d->n_ex) {
            example_row(d, d->tr[rng_next(r) % (uint64_t)d->n_tr], T, in + (size_t)b * T, tg + (size_t)b * T);
            continue;
        }
        int64_t s = (int64_t)(rng_next(r) % (uint64_t)(d->ntr - T));
        memcpy(in + (size_t)b * T, d->ids.v + s, sizeof(int) * (size_t)T);
        memcpy(tg + (size_t)b * T, d->ids.v + s + 1, sizeof(int) * (size_t)T);
    }
}

// One optimizer step (step s, 0-based) over accum micro-batches of B rows of T tokens drawn
// from d: the mean loss in *loss, the gradient norm before clipping in *norm and
// the learning rate in *lr. in, tg: room for B*T ids each.
static int take_step(TrainModel *tm, AdamW *opt, const OptParams *p, int s, int accum, Rng *rng, const Data *d, int B,
                     int T, int *in, int *tg, double *loss, double *norm, float *lr, Err *e) {
    tmodel_zero_grad(tm);
    *loss = 0;
    for (int k = 0; k < accum; k++) {
        double l;
        sample_batch(rng, d, B, T, in, tg);
        if (tmodel_forward(tm, in, tg, B, T, &l, e)) return -1;
        tmodel_backward(tm, 1.0f / (float)accum);
        *loss += l / accum;
    }
    *norm = optim_clip(tmodel_grads(tm), tmodel_size(tm), p->clip);
    if (optim_check_step(s + 1, *loss, *norm, e)) return -1;
    *lr = optim_lr(p, s);
    adamw_step(opt, tm, p, *lr);
    return 0;
}

// The held-out loss (always the same data): the mean over eval_batches batches of consecutive
// held-out windows, each window once: fewer when the held-out text holds fewer (they were cycled
// through, some counted once more than others); or over every held-out example's answer tokens.
static int held_out_loss(TrainModel *tm, const TrainOpts *o, const Data *d, int B, int T, int *in, int *tg,
                         double *loss, Err *e) {
    if (d->n_ex) {
        double sum = 0;
        long cnt = 0;
        for (int i = 0; i < d->n_va; i += B) {
            int c = 0;
            for (int b = 0; b < B; b++) {
                example_row(d, i + b < d->n_va ? d->va[i + b] : -1, T, in + (size_t)b * T, tg + (size_t)b * T);
                for (int t = 0; t < T; t++) c += tg[(size_t)b * T + t] >= 0;
            }
            double l;
            if (tmodel_forward(tm, in, tg, B, T, &l, e)) return -1;
            sum += l * c, cnt += c;
        }
        *loss = cnt ? sum / (double)cnt : 0;
        return 0;
    }
    const int *val = d->ids.v + d->ntr;
    int64_t windows = (d->nval - 1) / T, total = (int64_t)o->eval_batches * B;
    if (total > windows) total = windows;
    double sum = 0;
    for (int64_t w = 0; w < total; w += B) {
        for (int b = 0; b < B; b++) { // rows past the last window: no targets
            int64_t s = (w + b < total ? w + b : 0) * T;
            memcpy(in + (size_t)b * T, val + s, sizeof(int) * (size_t)T);
            if (w + b < total) memcpy(tg + (size_t)b * T, val + s + 1, sizeof(int) * (size_t)T);
            else
                for (int t = 0; t < T; t++) tg[(size_t)b * T + t] = -1;
        }
        double l;
        if (tmodel_forward(tm, in, tg, B, T, &l, e)) return -1;
        sum += l * (double)((w + B <= total ? B : total - w) * T);
    }
    *loss = sum / (double)(total * T);
    return 0;
}

// ---------------------------------------------------------------------------------------
// The run

static int check_opts(const TrainOpts *o, Err *e) {
    if (!o->data || !o->out || !*o->out) return err_set(e, "data and out= are required");
    if (o->batch < 1 || o->seq < 2 || o->accum < 1 || o->opt.steps < 1)
        return err_set(e, "batch, accum and steps must be at least 1, seq at least 2");
    if (!(o->opt.lr > 0) || o->opt.min_lr < 0 || o->opt.min_lr > o->opt.lr)
        return err_set(e, "lr must be positive and min_lr in [0, lr]");
    if (o->opt.warmup < 0 || o->opt.warmup >= o->opt.steps) return err_set(e, "warmup must be below steps");
    if (!(o->val_frac >= 0 && o->val_frac <= 0.9)) return err_set(e, "val must be in [0, 0.9]");
    if (o->eval_batches < 1) return err_set(e, "eval_batches must be at least 1");
    return 0;
}

static int train_locked(const TrainOpts *o, const TrainHooks *h, TrainInfo *info, bool made, Err *e);

// The first option of a new model (o->newp, o->tok_dir: a run from scratch) that differs from the
// run in out= (its checkpoint m, its state sh; tok_hash: o->tok_dir's), named as the option, into
// *what (NULL: none). The seed, std and tokenizer are kept since state version 4. 0, or -1 with e
// filled.
static int new_model_differs(const TrainOpts *o, const Model *m, const StateHead *sh, uint64_t tok_hash,
                             const char **what, Err *e) {
    const ModelConfig *c = &m->cfg;
    NewModelParams p = o->newp;
    *what = NULL;
    if (m->family && p.family && strcmp(p.family, m->family->model_type)) {
        *what = "family";
        return 0;
    }
    if (!p.n_vocab) p.n_vocab = tok_vocab_size(m->tok); // the tokenizer's (the same one: checked below)
    ModelConfig want;
    if (newmodel_config(&p, &want, e)) return -1;
    bool v4 = sh->version >= 4;
    *what = want.n_layer != c->n_layer ? "layers"
          : want.n_head != c->n_head ? "heads"
          : want.n_kv_head != c->n_kv_head ? "kv_heads"
          : want.n_embd != c->n_embd ? "d"
          : want.n_ff != c->n_ff ? "ff"
          : want.n_ctx != c->n_ctx ? "ctx"
          : v4 && sh->tok_hash != tok_hash ? "tok"
          : want.n_vocab != c->n_vocab ? "vocab"
          : want.a.tied != c->a.tied ? "tied"
          : c->a.pos == POS_ROTARY && want.a.rope_theta != c->a.rope_theta ? "theta"
          : v4 && sh->init_seed != p.seed ? "seed"
          : v4 && sh->init_std != (double)p.std ? "std"
          : NULL;
    return 0;
}

// What of the checkpoint m in out= tells it did not start from the model f given as from= (its
// family, shape or vocabulary), or NULL: a resume with another from= went on with the old run,
// the model asked for never read.
static const char *other_start(const Model *m, const Model *f) {
    const ModelConfig *a = &m->cfg, *b = &f->cfg;
    if (!m->family != !f->family || (m->family && strcmp(m->family->model_type, f->family->model_type)))
        return "family";
    const char *what = a->n_layer != b->n_layer ? "layers"
                     : a->n_head != b->n_head ? "heads"
                     : a->n_kv_head != b->n_kv_head ? "kv_heads"
                     : a->n_embd != b->n_embd ? "d"
                     : a->n_ff != b->n_ff ? "ff"
                     : a->n_vocab != b->n_vocab || tok_vocab_size(m->tok) != tok_vocab_size(f->tok) ? "vocabulary"
                     : a->a.tied != b->a.tied ? "tied head"
                     : NULL;
    for (int i = 0; !what && i < tok_vocab_size(m->tok); i++) { // the same tokens, by their text
        size_t na, nb;
        const char *pa = tok_piece(m->tok, i, &na), *pb = tok_piece(f->tok, i, &nb);
        if (na != nb || (na && memcmp(pa, pb, na))) what = "tokenizer";
    }
    return what;
}

// out= held for this run alone: a second process training into it (the same command started
// twice) would write its checkpoints and state over this one's.
int train_run(const TrainOpts *o, const TrainHooks *h, TrainInfo *info, Err *e) {
    if (check_opts(o, e)) return -1;
    if (o->out_held) return train_locked(o, h, info, false, e);
    bool made = !fs_is_dir(o->out); // out= created here: removed if the run fails before a save
    if (fs_mkdir_p(o->out, 0755, e)) return -1;
    int lock = fs_lock_dir(o->out, "training into it", e);
    if (lock < 0) return -1; // made or not, the folder is the other's now
    int rc = train_locked(o, h, info, made, e);
    close(lock);
    return rc;
}

static int train_locked(const TrainOpts *o, const TrainHooks *h, TrainInfo *info, bool made, Err *e) {
    // a run killed while it wrote a checkpoint left its temporary files (hundreds of MB each for a
    // larger model), which no later run removed
    fs_remove_stale_tmp(o->out);
    StateHead sh;
    int have = o->resume ? state_read(o->out, &sh, NULL, NULL, e) : 0;
    if (have < 0) return -1;
    if (!have && !o->resume) {
        char *p = fs_join(o->out, STATE_FILE);
        bool exists = fs_is_file(p);
        free(p);
        if (exists) return err_set(e, "'%s' holds a training run: resume=true continues it", o->out);
    }
    // a new run: a trained model is never written over (given as out= by mistake), only an
    // untrained one, as new-model and a run killed before its first checkpoint leave; nor
    // anything else of another's (train_state.bin was refused above)
    static const char *const extra[] = {STATE_FILE, NULL};
    if (!have && tmodel_out_replaceable(o->out, "train", extra, e)) return -1;
    bool saved_once = false;
    // the model: the checkpoint's own files when resuming; else the given one, or a new one
    // written to out first
    const char *src = have ? o->out : o->from;
    char *tok_keep = NULL; // the given model's tokenizer, as the checkpoint keeps it (tmodel_checkpoint_tokenizer)
    const char *tok_dir = have ? o->out : o->from ? o->from : o->out;
    if (!src) {
        NewModelParams p = o->newp;
        // a shape too big to train here is refused before its weights are written (they were
        // written, gigabytes of them, before the memory for training was asked for)
        uint64_t n_par = 0;
        double need = 0, ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
        int bad = newmodel_params(&p, &n_par, e);
        if (!bad && ram > 0 && (need = 16.0 * (double)n_par) > ram)
            bad = err_set(e, "training %.3g %s parameters needs at least %.3g GB of memory (the weights, their "
                             "gradients and AdamW's two moments, 16 bytes a parameter) and this machine has %.3g GB",
                          (double)n_par / (n_par >= 1000000000 ? 1e9 : 1e6), n_par >= 1000000000 ? "billion" : "million",
                          need / 1e9, ram / 1e9);
        if (bad || newmodel_write(o->out, &p, o->tok_dir, e)) {
            if (made) fs_remove_tree(o->out);
            return -1;
        }
        src = o->out;
    } else if (fs_mkdir_p(o->out, 0755, e)) {
        return -1;
    }
    Model *m = model_open(src, NULL, e);
    if (!m) {
        if (made) fs_remove_tree(o->out);
        return -1;
    }
    uint64_t tok_hash = 0; // a run from scratch's tok=DIR, kept in the state
    if (!o->from && newmodel_tokenizer_hash(o->tok_dir, &tok_hash, e)) {
        model_free(m);
        if (made) fs_remove_tree(o->out);
        return -1;
    }
    if (have && !o->from) { // the checkpoint's model is this command's (the same command resumes)
        const char *what;
        if (new_model_differs(o, m, &sh, tok_hash, &what, e) || what) {
            model_free(m);
            if (!what) return -1;
            return err_set(e, "'%s' holds a run of a model with another %s: resume with the same options, or "
                              "choose another out=", o->out, what);
        }
    }
    if (have && o->from) { // the run resumed started from from=: the same model's shape and tokens
        Model *f = model_open(o->from, NULL, e);
        const char *what = f ? other_start(m, f) : NULL;
        model_free(f);
        if (!f || what) {
            model_free(m);
            if (!what) return -1;
            return err_set(e, "'%s' holds a run of another model than from=%s (its %s differs): resume with the "
                              "from= it started from, or choose another out=", o->out, o->from, what);
        }
    }
    if (!have && o->from) {
        if (tmodel_checkpoint_tokenizer(m, o->out, &tok_keep, e)) {
            model_free(m);
            if (made) fs_remove_tree(o->out);
            return -1;
        }
        tok_dir = tok_keep;
    }
    TrainModel *tm = tmodel_from_model(m, o->threads, e);
    Data data = {0};
    AdamW opt = {0};
    int *in = NULL, *tg = NULL;
    int rc = -1;
    int B = o->batch, T = o->seq;
    if (!tm) goto done;
    if (T > m->cfg.n_ctx) {
        err_set(e, "seq=%d exceeds the model's context of %d", T, m->cfg.n_ctx);
        goto done;
    }
    if (o->n_examples > 0 ? load_examples(o, m, &data, &T, e) : load_tokens(o, m, &data, e)) goto done;
    if (data.n_ex && !data.n_tr) {
        err_set(e, "no example left to train on");
        goto done;
    }
    if (!data.n_ex && data.nval > 0 && data.nval < T + 1) { // too few to hold a window: trained on, no held-out loss
        data.ntr += data.nval;                                  // (before the size check: 33 tokens train seq=32)
        data.nval = 0;
    }
    if (!data.n_ex && data.ntr < T + 1) {
        err_set(e, "'%s' gives %lld training tokens, fewer than seq+1 = %d", o->data, (long long)data.ntr, T + 1);
        goto done;
    }
    int64_t ntr = data.ntr, nval = data.nval;
    // FNV-1a over the ids, then the examples' prompt lengths
    uint64_t data_hash = fnv_words(fnv_words(FNV_OFFSET, data.ids.v, (size_t)data.ids.n), data.n_prompt, (size_t)data.n_ex);
    if (adamw_init(&opt, tmodel_size(tm), e)) goto done;
    in = malloc(sizeof(int) * (size_t)B * T);
    tg = malloc(sizeof(int) * (size_t)B * T);
    if (!in || !tg) {
        err_set(e, "out of memory for a batch");
        goto done;
    }
    Rng rng;
    rng_seed(&rng, o->seed);
    int step0 = 0;
    if (have) {
        // the text's fingerprint does not depend on val, which moves tokens between training and held out
        bool v2 = sh.version >= 2, other_text = v2 && sh.data_hash != data_hash;
        const char *what = sh.n_params != (int64_t)tmodel_size(tm) ? "model"
                         : other_text && sh.train_tokens != ntr ? "training text"
                         : other_text ? "training text (the same number of tokens, other ones)"
                         : sh.train_tokens != ntr ? (v2 ? "val" : "val or training text")
                         : sh.batch != B ? "batch"
                         : sh.seq != T ? "seq"
                         : sh.accum != o->accum ? "accum"
                         : sh.steps != o->opt.steps ? "steps"
                         : sh.seed != o->seed ? "data_seed"
                         : !v2 ? NULL // the settings below were not kept before version 2
                         : sh.lr != (double)o->opt.lr ? "lr"
                         : sh.min_lr != (double)o->opt.min_lr ? "min_lr"
                         : sh.warmup != o->opt.warmup ? "warmup"
                         : sh.weight_decay != (double)o->opt.weight_decay ? "wd"
                         : sh.clip != (double)o->opt.clip ? "clip"
                         : sh.beta1 != (double)o->opt.beta1 || sh.beta2 != (double)o->opt.beta2 ? "beta1/beta2"
                         : sh.eps != (double)o->opt.eps ? "eps"
                         : NULL;
        if (what) {
            err_set(e, "'%s' holds a run with another %s: resume with the same options, or choose another out=",
                    o->out, what);
            goto done;
        }
        if (state_read(o->out, &sh, tmodel_params(tm), &opt, e) != 1) goto done;
        step0 = (int)sh.step;
        opt.t = sh.adam_t;
        memcpy(rng.s, sh.rng, sizeof rng.s);
    }
    TrainInfo inf = {step0, (int64_t)tmodel_size(tm), ntr, nval, m->cfg};
    if (info) *info = inf;
    if (h && h->begin && h->begin(h->user, &inf)) {
        rc = 0;
        goto done;
    }
    double t0 = clock_now();
    int64_t per_step = (int64_t)B * T * o->accum;
    for (int s = step0; s < o->opt.steps; s++) {
        double loss, norm;
        float lr;
        if (take_step(tm, &opt, &o->opt, s, o->accum, &rng, &data, B, T, in, tg, &loss, &norm, &lr, e)) goto done;
        int done_steps = s + 1;
        bool last = done_steps == o->opt.steps;
        TrainPoint p = {done_steps, o->opt.steps, loss, -1, lr, norm, per_step * done_steps, 0, 0, 0, false};
        if (nval && (last || (o->eval_every && done_steps % o->eval_every == 0)))
            if (held_out_loss(tm, o, &data, B, T, in, tg, &p.val_loss, e)) goto done;
        StateHead st = {{0},       STATE_VERSION,    0,          (int64_t)tmodel_size(tm), ntr, B, T, o->accum,
                        o->opt.steps, o->seed, done_steps, opt.t, {0}, o->opt.lr, o->opt.min_lr, o->opt.beta1,
                        o->opt.beta2, o->opt.eps, o->opt.weight_decay, o->opt.clip, o->opt.warmup, data_hash, 0 /* payload_hash: state_write */,
                        o->newp.seed, o->newp.std, tok_hash};
        memcpy(st.magic, STATE_MAGIC, 8);
        memcpy(st.rng, rng.s, sizeof st.rng);
        if (last || (o->save_every && done_steps % o->save_every == 0)) {
            if (tmodel_save(tm, o->out, tok_dir, false, e) || state_write(o->out, &st, tmodel_params(tm), &opt, e))
                goto done;
            p.saved = saved_once = true;
        }
        p.elapsed_s = clock_now() - t0;
        p.tok_s = p.elapsed_s > 0 ? (double)per_step * (done_steps - step0) / p.elapsed_s : 0;
        p.eta_s = p.elapsed_s / (done_steps - step0) * (o->opt.steps - done_steps);
        if (h && h->step && h->step(h->user, &p)) {
            // stopped (Ctrl-C): the checkpoint and the state of this step, so that nothing done is
            // lost and the same command resumes after it
            if (!p.saved &&
                (tmodel_save(tm, o->out, tok_dir, false, e) || state_write(o->out, &st, tmodel_params(tm), &opt, e)))
                goto done;
            if (info) info->stop_step = done_steps;
            break;
        }
    }
    rc = 0;
done:
    free(in);
    free(tg);
    adamw_done(&opt);
    data_free(&data);
    tmodel_free(tm);
    model_free(m);
    free(tok_keep);
    // out= made by this run and nothing saved: removed with what was written there (no untrained
    // model left where a trained one was expected)
    if (rc && made && !saved_once) fs_remove_tree(o->out);
    return rc;
}

// ---------------------------------------------------------------------------------------
// The benchmark

// The model's linear layers as sgemm shapes over N rows (the output head included), for
// bound_sgemm_flops_s; returns how many (at most max), *weights their multiply-adds per row.
static int linear_shapes(TrainModel *tm, int N, LinearShape *sh, int max, double *weights) {
    const ModelConfig *c = tmodel_config(tm);
    bool out_in = !tmodel_map(tm)->in_out;
    int n = 0;
    *weights = 0;
    for (int i = 0; i < tmodel_n_tensors(tm) + 1; i++) {
        LinearShape h = {N, c->n_embd, c->n_vocab, true, 1}; // after the tensors: a tied head
        if (i < tmodel_n_tensors(tm)) {
            const WeightSlot *s = &tmodel_tensor(tm, i)->s;
            if (s->kind != WK_LINEAR) continue;
            h = (LinearShape){N, s->in, s->out, s->w == W_OUTPUT || out_in, 1};
        } else if (tmodel_param(tm, W_OUTPUT, -1)) {
            continue;
        }
        *weights += (double)h.in * h.out;
        int k = 0;
        while (k < n && !(sh[k].in == h.in && sh[k].out == h.out && sh[k].out_in == h.out_in)) k++;
        if (k < n) sh[k].calls++;
        else if (n < max) sh[n++] = h;
    }
    return n;
}

int train_bench(const Model *m, int threads, int B, int T, int steps, int reps, volatile sig_atomic_t *cancel,
                TrainBench *r, Err *e) {
    enum { MAX_REPS = TRAIN_BENCH_MAX_REPS };
    if (B < 1 || T < 2 || steps < 1 || reps < 1 || reps > MAX_REPS)
        return err_set(e, "batch, steps and reps (up to %d) must be at least 1, seq at least 2",
                       MAX_REPS);
    if (T > m->cfg.n_ctx) return err_set(e, "seq=%d exceeds the model's context of %d", T, m->cfg.n_ctx);
    TrainModel *tm = tmodel_from_model(m, threads, e);
    if (!tm) return -1;
    const ModelConfig *c = tmodel_config(tm);
    // random ids as the text: the speed does not depend on them
    int64_t n = (int64_t)B * T * 4 + 1;
    int *tokens = malloc(sizeof(int) * (size_t)n), *in = malloc(sizeof(int) * (size_t)B * T);
    int *tg = malloc(sizeof(int) * (size_t)B * T);
    AdamW opt = {0};
    int rc = -1;
    if (!tokens || !in || !tg) {
        err_set(e, "out of memory for a batch of %d x %d", B, T);
        goto done;
    }
    if (adamw_init(&opt, tmodel_size(tm), e)) goto done;
    Rng rng;
    rng_seed(&rng, 1);
    for (int64_t i = 0; i < n; i++) tokens[i] = (int)(rng_next(&rng) % (uint64_t)c->n_vocab);
    OptParams p = optim_defaults();
    p.steps = (reps + 1) * steps;
    LinearShape sh[LINEAR_MAX_SHAPES];
    double weights;
    int nsh = linear_shapes(tm, B * T, sh, LINEAR_MAX_SHAPES, &weights);
    // per token, forward and backward: 2 FLOPs per multiply-add, 3 products (output, input
    // gradient, weight gradient) of every weight; attention's two products (q k^T, p v) over
    // the (T + 1) / 2 keys a query sees on average, also 3 times
    double att = 3.0 * 2.0 * 2.0 * c->n_layer * c->n_head * c->head_dim * (T + 1) / 2.0;
    r->flops_per_token = 6.0 * weights + att;
    r->attention_flops_per_token = att;
    r->threads = tmodel_threads(tm);
    r->reps = reps;
    double loss, norm, sg[MAX_REPS + 1];
    float lr;
    int s = 0;
    Data d = {.ids = {tokens, (int)n, (int)n}, .ntr = n}; // not freed: the tokens are freed below
    if (take_step(tm, &opt, &p, s++, 1, &rng, &d, B, T, in, tg, &loss, &norm, &lr, e)) goto done; // warm-up
    // the bound sampled before each repetition and after the last; each repetition's fraction
    // is held against the mean of the samples around it
    for (int rep = 0; rep <= reps; rep++) {
        if (bound_sgemm_flops_s(tmodel_pool(tm), sh, nsh, 1, &sg[rep], e)) goto done;
        if (rep == reps) break;
        double t0 = clock_now();
        for (int k = 0; k < steps; k++) {
            if (cancel && *cancel) {
                err_set(e, "interrupted");
                goto done;
            }
            if (take_step(tm, &opt, &p, s++, 1, &rng, &d, B, T, in, tg, &loss, &norm, &lr, e)) goto done;
        }
        r->tok_s_reps[rep] = (double)B * T * steps / (clock_now() - t0);
    }
    double fr[MAX_REPS], ts[MAX_REPS];
    for (int i = 0; i < reps; i++) {
        fr[i] = r->tok_s_reps[i] * r->flops_per_token / (0.5 * (sg[i] + sg[i + 1]));
        r->frac_reps[i] = fr[i];
        ts[i] = r->tok_s_reps[i];
    }
    r->tok_s = bound_median(ts, reps);
    r->flops_s = r->tok_s * r->flops_per_token;
    r->sgemm_flops_s = bound_median(sg, reps + 1);
    r->frac = bound_median(fr, reps);
    r->frac_min = fr[0];
    r->frac_max = fr[reps - 1];
    rc = 0;
done:
    free(tokens);
    free(in);
    free(tg);
    adamw_done(&opt);
    tmodel_free(tm);
    return rc;
}
