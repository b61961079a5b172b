// prefpairs.c - preference pairs of stored rankings for the trainers (see prefpairs.h).
#include "prefpairs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fs.h"
#include "base/mem.h"
#include "base/utf8.h"
#include "cmdutil.h"
#include "tok/tokenizer.h"

void pairset_free(PairSet *p) {
    for (int i = 0; i < p->n_seq; i++) iv_free(&p->seq[i]), iv_free(&p->types[i]);
    free(p->seq);
    free(p->types);
    free(p->start);
    free(p->row);
    free(p->cand);
    free(p->pairs);
    free(p->group);
    memset(p, 0, sizeof *p);
}

// An encoder's sentence pair (see reward_tokens).
static int pair_tokens(const Model *m, const char *prompt, size_t plen, const char *comp, size_t clen, int max_len,
                       IntVec *ids, IntVec *types, int *cut, Err *e) {
    int cls = tok_add_first(m->tok), sep = tok_add_last(m->tok);
    if (cls < 0 || sep < 0)
        return err_set(e, "the encoder's tokenizer has no [CLS]/[SEP] tokens to make a (prompt, completion) pair of");
    if (max_len < 4) return err_set(e, "max_len=%d leaves no room for a pair ([CLS] A [SEP] B [SEP])", max_len);
    IntVec a = {0}, b = {0};
    int rc = 0;
    // special-token text ([SEP], [MASK]) read as the token, as HF's tokenizers read a pair
    if ((plen && tok_encode(m->tok, prompt, plen, TOK_PARSE_SPECIAL, &a, e) < 0) ||
        (clen && tok_encode(m->tok, comp, clen, TOK_PARSE_SPECIAL, &b, e) < 0))
        rc = -1;
    bool pair = clen > 0; // an empty completion: the prompt alone, as HF's tokenizers encode (prompt, "")
    int budget = max_len - (pair ? 3 : 2), na = a.n, nb = b.n;
    if (!rc && na + nb > budget) { // the prompt's start first, then the completion's end
        na = budget - nb > 0 ? budget - nb : 0;
        if (nb > budget) nb = budget;
    }
    if (!rc) {
        *cut = a.n - na + b.n - nb;
        iv_push(ids, cls);
        for (int i = a.n - na; i < a.n; i++) iv_push(ids, a.v[i]);
        iv_push(ids, sep);
        for (int i = 0; i < na + 2; i++) iv_push(types, 0);
        for (int i = 0; pair && i < nb; i++) iv_push(ids, b.v[i]);
        if (pair) iv_push(ids, sep);
        for (int i = 0; pair && i < nb + 1; i++) iv_push(types, 1);
    }
    iv_free(&a);
    iv_free(&b);
    return rc;
}

// A text as a decoder reads a prompt (generate, tokenize, dpo train's prompts, reward models):
// the model's special tokens added (BOS) and those spelled in it parsed, <|im_start|> one token.
// A text that begins with the beginning token spelled out (a chat prompt as its template renders
// it, {{ bos_token }} first) keeps one: generate read the rendered chat so, and TRL's trainers
// add BOS only when it is not there.
static int text_tokens(const Model *m, const char *s, size_t n, IntVec *v, Err *e) {
    int n0 = v->n, first = tok_add_first(m->tok);
    if (tok_encode(m->tok, s, n, TOK_ADD_SPECIAL | TOK_PARSE_SPECIAL, v, e) < 0) return -1;
    if (first >= 0 && v->n - n0 >= 2 && v->v[n0] == first && v->v[n0 + 1] == first) {
        memmove(v->v + n0, v->v + n0 + 1, sizeof(int) * (size_t)(v->n - n0 - 1));
        v->n--;
    }
    return 0;
}

int reward_tokens(const Model *m, const char *prompt, size_t plen, const char *comp, size_t clen, int max_len,
                  IntVec *ids, IntVec *types, int *cut, Err *e) {
    *cut = 0;
    if (!m->cfg.a.causal) return pair_tokens(m, prompt, plen, comp, clen, max_len, ids, types, cut, e);
    Buf text = {0};
    buf_put(&text, prompt, plen);
    buf_put(&text, comp, clen);
    int n0 = ids->n, rc = text_tokens(m, text.data ? text.data : "", text.len, ids, e);
    buf_free(&text);
    if (rc) return -1;
    int n = ids->n - n0;
    if (n > max_len) { // keep the end: the completion is what is judged
        *cut = n - max_len;
        memmove(ids->v + n0, ids->v + n0 + *cut, sizeof(int) * (size_t)max_len);
        ids->n = n0 + max_len;
    }
    return n < 1 ? err_set(e, "nothing to score: the text has no tokens") : 0;
}

// The tokens of one candidate into v (empty) and types; *start where its completion begins
// (split), and whether it was cut to max_len.
static int cand_tokens(const Model *m, const RankRow *row, int i, int max_len, bool split, IntVec *v, IntVec *types,
                       int *start, bool *cut, Err *e) {
    const RankCand *c = &row->c[i];
    *start = 0;
    *cut = false;
    if (!split) {
        int n_cut;
        if (reward_tokens(m, row->prompt, row->prompt_len, c->text, c->len, max_len, v, types, &n_cut, e)) return -1;
        *cut = n_cut > 0;
        return 0;
    }
    if (row->prompt_len == 0) { // as generate starts from nothing: the beginning-of-text token
        int bos = tok_bos(m->tok);
        if (bos < 0) return err_set(e, "empty prompt and the tokenizer has no beginning-of-text token");
        iv_push(v, bos);
    } else if (text_tokens(m, row->prompt, row->prompt_len, v, e)) {
        return -1;
    }
    int np = v->n;
    if (np < 1) return err_set(e, "the prompt gives no tokens");
    if (c->len && tok_encode(m->tok, c->text, c->len, 0, v, e) < 0) return -1;
    int nc = v->n - np, keep_p = np;
    if (v->n > max_len) { // the prompt's start first (one token of it stays), then the completion's end
        *cut = true;
        keep_p = max_len - nc < 1 ? 1 : max_len - nc;
        if (keep_p > np) keep_p = np;
        memmove(v->v, v->v + (np - keep_p), sizeof(int) * (size_t)(keep_p + nc));
        v->n = max_len < keep_p + nc ? max_len : keep_p + nc;
    }
    *start = keep_p;
    return 0;
}

// Whether ids (the JSON array a run stored) are m's tokens of text: in range and decoding to it,
// or to it without the end-of-text token a generation stopped at (among its ids but not in its
// text, gen_text). A run that stored no ids says nothing (true).
static bool same_vocab(const Model *m, const char *ids, const char *text, size_t len) {
    if (!ids || !m->tok) return true;
    Json *j = json_parse(ids, strlen(ids), NULL);
    bool same = j && j->type == JSON_ARR;
    IntVec v = {0};
    for (size_t i = 0; same && i < j->len; i++) {
        double x = j->items[i].num;
        same = j->items[i].type == JSON_NUM && x >= 0 && x < m->cfg.n_vocab && x == (int)x;
        if (same) iv_push(&v, (int)x);
    }
    if (same) {
        Buf b = {0};
        tok_decode(m->tok, v.v, v.n, &b); // (runs logged before 2026-12-05 kept the end token as text)
        same = bytes_eq(b.data, b.len, text, len);
        if (!same && v.n > 0 && v.v[v.n - 1] == tok_eos(m->tok)) {
            buf_clear(&b);
            tok_decode(m->tok, v.v, v.n - 1, &b);
            same = bytes_eq(b.data, b.len, text, len);
        }
        buf_free(&b);
    }
    iv_free(&v);
    json_free(j);
    return same;
}

int pairset_build(const RankSet *s, const Model *m, int max_len, bool split, bool ties_equal, float margin_w,
                  PairSet *ps, Err *e) {
    memset(ps, 0, sizeof *ps);
    int cap_seq = 0, cap_pairs = 0, g = -1;
    for (int r = 0; r < s->n; r++) {
        const RankRow *row = &s->r[r];
        if (r == 0 || !rankset_same_prompt(&s->r[r - 1], row)) g++;
        int first = ps->n_seq;
        for (int i = 0; i < row->k; i++) {
            if (ps->n_seq == cap_seq) {
                cap_seq = cap_seq ? 2 * cap_seq : 64;
                ps->seq = xrealloc(ps->seq, sizeof *ps->seq * (size_t)cap_seq);
                ps->types = xrealloc(ps->types, sizeof *ps->types * (size_t)cap_seq);
                ps->start = xrealloc(ps->start, sizeof *ps->start * (size_t)cap_seq);
                ps->row = xrealloc(ps->row, sizeof *ps->row * (size_t)cap_seq);
                ps->cand = xrealloc(ps->cand, sizeof *ps->cand * (size_t)cap_seq);
            }
            ps->row[ps->n_seq] = r, ps->cand[ps->n_seq] = i;
            IntVec *v = &ps->seq[ps->n_seq], *ty = &ps->types[ps->n_seq];
            memset(v, 0, sizeof *v);
            memset(ty, 0, sizeof *ty);
            bool cut;
            ps->n_seq++;
            if (cand_tokens(m, row, i, max_len, split, v, ty, &ps->start[ps->n_seq - 1], &cut, e))
                return err_prefix(e, "ranking %lld, candidate %d", (long long)row->id, i + 1);
            ps->n_trunc += cut;
            ps->n_other_vocab += !same_vocab(m, row->c[i].ids, row->c[i].text, row->c[i].len);
        }
        for (int i = 0; i < row->k; i++)
            for (int j = 0; j < row->k; j++) {
                int ri = row->c[i].rank, rj = row->c[j].rank;
                bool tie = ri == rj;
                bool same = utf8_same_text(row->c[i].text, row->c[i].len, row->c[j].text, row->c[j].len);
                if (tie ? j <= i : ri > rj) continue; // each pair once: i better than j, or a tie
                if (same) {
                    ps->n_identical++; // the same completion on both sides, tied or not: nothing to learn
                    continue;
                }
                if (tie && !ties_equal) {
                    ps->n_ties_out++;
                    continue;
                }
                if (ps->n_pairs == cap_pairs) {
                    cap_pairs = cap_pairs ? 2 * cap_pairs : 64;
                    ps->pairs = xrealloc(ps->pairs, sizeof *ps->pairs * (size_t)cap_pairs);
                    ps->group = xrealloc(ps->group, sizeof *ps->group * (size_t)cap_pairs);
                }
                ps->pairs[ps->n_pairs] = (RewardPair){first + i, first + j, tie ? 0 : margin_w * (float)(rj - ri), tie};
                ps->group[ps->n_pairs++] = g;
                ps->n_ties += tie;
            }
    }
    ps->n_groups = g + 1;
    return 0;
}

static uint64_t fnv(const char *s, size_t n, uint64_t h) {
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

typedef struct {
    uint64_t key;
    int group;
} GroupKey;

static int by_key(const void *a, const void *b) {
    const GroupKey *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

int pairset_split(const RankSet *s, const PairSet *ps, double val, uint64_t seed, RewardPair **train, int *n_train,
                  RewardPair **held, int *n_held, bool *held_group) {
    int n_groups = ps->n_groups;
    GroupKey *gk = xmalloc(sizeof *gk * (size_t)(n_groups > 0 ? n_groups : 1));
    for (int i = 0, g = -1; i < s->n; i++)
        if (i == 0 || !rankset_same_prompt(&s->r[i - 1], &s->r[i])) {
            g++;
            gk[g] = (GroupKey){fnv(s->r[i].prompt, s->r[i].prompt_len, 1469598103934665603ull ^ (seed * 0x9e3779b97f4a7c15ull)), g};
        }
    if (n_groups > 1) qsort(gk, (size_t)n_groups, sizeof *gk, by_key);
    int n_held_g = (int)ceil(val * n_groups - 1e-9);
    if (val > 0 && n_held_g < 1 && n_groups >= 2) n_held_g = 1;
    if (n_held_g >= n_groups) n_held_g = n_groups - 1;
    if (n_held_g < 0) n_held_g = 0;
    bool *is_held = xcalloc((size_t)(n_groups > 0 ? n_groups : 1), sizeof *is_held);
    for (int i = 0; i < n_held_g; i++) is_held[gk[i].group] = true;
    if (held_group) memcpy(held_group, is_held, sizeof *is_held * (size_t)n_groups);
    *train = xmalloc(sizeof **train * (size_t)(ps->n_pairs > 0 ? ps->n_pairs : 1));
    *held = xmalloc(sizeof **held * (size_t)(ps->n_pairs > 0 ? ps->n_pairs : 1));
    *n_train = *n_held = 0;
    for (int i = 0; i < ps->n_pairs; i++) {
        if (is_held[ps->group[i]]) (*held)[(*n_held)++] = ps->pairs[i];
        else (*train)[(*n_train)++] = ps->pairs[i];
    }
    free(gk);
    free(is_held);
    return n_held_g;
}

int pref_train_opts(const Args *a, const char *cmd, PrefTrainOpts *p, Out *out) {
    Err e = {{0}};
    long long v;
    double x;
    int r;
    // each option over its default, in its range
#define INT_OPT(k, lo, hi, field)                                                          \
    if ((r = args_int(a, k, lo, hi, &v, &e)) < 0) return out_error(out, "%s: %s", cmd, e.msg); \
    if (r) field = (int)v;
#define NUM_OPT(k, lo, hi, field)                                                            \
    if ((r = args_float(a, k, lo, hi, &x, &e)) < 0) return out_error(out, "%s: %s", cmd, e.msg); \
    if (r) field = (float)x;
    INT_OPT("steps", 1, 10000000, p->steps)
    INT_OPT("epochs", 1, 100000, p->epochs)
    INT_OPT("batch", 1, 4096, p->batch)
    INT_OPT("warmup", 0, 10000000, p->opt.warmup)
    INT_OPT("eval_every", 0, 10000000, p->eval_every)
    INT_OPT("patience", 0, 1000000, p->patience)
    INT_OPT("threads", 0, APP_MAX_THREADS, p->threads)
    INT_OPT("max_len", 1, 1 << 20, p->max_len)
    float min_lr = -1;
    NUM_OPT("lr", 1e-9, 1e6, p->opt.lr)
    NUM_OPT("min_lr", 0, 1e6, min_lr)
    NUM_OPT("wd", 0, 10, p->opt.weight_decay)
    NUM_OPT("clip", 0, 1e6, p->opt.clip)
    NUM_OPT("beta1", 0, 0.999999, p->opt.beta1)
    NUM_OPT("beta2", 0, 0.999999, p->opt.beta2)
    NUM_OPT("eps", 1e-12, 1e6, p->opt.eps)
#undef INT_OPT
#undef NUM_OPT
    if ((r = args_float(a, "val", 0, 0.9, &x, &e)) < 0) return out_error(out, "%s: %s", cmd, e.msg);
    if (r) p->val = x;
    if ((r = args_int(a, "seed", 0, (1ll << 53), &v, &e)) < 0) return out_error(out, "%s: %s", cmd, e.msg);
    if (r) p->seed = (uint64_t)v;
    p->opt.min_lr = min_lr >= 0 ? min_lr : p->opt.lr / 10;
    if (p->opt.min_lr > p->opt.lr) // (the schedule rose from lr to it)
        return out_error(out, "%s: min_lr=%g is above lr=%g: the learning rate decays from lr to min_lr", cmd,
                         (double)p->opt.min_lr, (double)p->opt.lr);
    return 0;
}

Model *pref_base_model(App *app, const Args *a, const char *cmd, Model **owned, Out *out) {
    Err e = {{0}};
    const char *base_s = args_opt(a, "base");
    *owned = NULL;
    if (base_s) {
        if (!(*owned = app_open_model(base_s, NULL, &e))) out_error(out, "%s: base=%s: %s", cmd, base_s, e.msg);
        return *owned;
    }
    if (!app->model && app_load_model(app, NULL, NULL, &e)) {
        out_error(out, "%s: %s", cmd, e.msg);
        return NULL;
    }
    return app->model;
}

const char *const pref_out_files[] = {"README.md", "adapter_model.safetensors", "adapter_config.json", NULL};

int pref_out_open(const char *outdir, const Model *base, const char *cmd, bool *made, int *lock, char **tok_dir,
                  Out *out) {
    Err e = {{0}};
    *made = !fs_is_dir(outdir);
    if (fs_mkdir_p(outdir, 0755, &e) || (*lock = fs_lock_dir(outdir, "training into it", &e)) < 0)
        return out_error(out, "%s: %s", cmd, e.msg); // made or not, a folder held is the other's now
    // the tokenizer settled before the work: a base without one to keep fails now
    if (tmodel_checkpoint_tokenizer(base, outdir, tok_dir, &e)) {
        pref_out_discard(outdir, *made, *tok_dir);
        return out_error(out, "%s: %s", cmd, e.msg);
    }
    return 0;
}

void pref_out_discard(const char *outdir, bool made, const char *tok_dir) {
    if (tmodel_file_in(outdir)) return; // a checkpoint was written (out= held none): kept
    if (made) {
        fs_remove_tree(outdir);
        return;
    }
    if (tok_dir && !strcmp(tok_dir, outdir)) { // tokenizer.gguf, written from a GGUF base
        char *p = fs_join(outdir, "tokenizer.gguf");
        unlink(p);
        free(p);
    }
}

void pref_card_data(Buf *b, const Args *a, const RankSet *s, const PairSet *ps, int n_train, int n_held, int prompts,
                    int held_prompts) {
    buf_puts(b, "- filters:");
    int nf = 0;
    static const char *const keys[] = {"since", "until", "annotator", "model", "text", "ties", "margin", NULL};
    for (int i = 0; keys[i]; i++) {
        const char *v = args_opt(a, keys[i]);
        if (v) buf_printf(b, " %s=%s", keys[i], v), nf++;
    }
    buf_puts(b, nf ? "\n" : " none (every stored ranking)\n");
    char ties[64];
    if (ps->n_ties_out) snprintf(ties, sizeof ties, "%d tied pairs left out", ps->n_ties_out);
    else snprintf(ties, sizeof ties, "%d of them ties, pulled to equal rewards", ps->n_ties);
    buf_printf(b, "- data: %d rankings of %d prompts; %d pairs (%s), %d for training, %d held out (%d "
                   "prompts, no prompt on both sides); %d sequences truncated\n",
               s->n, prompts, ps->n_pairs, ties, n_train, n_held, held_prompts, ps->n_trunc);
    if (ps->n_other_vocab)
        buf_printf(b, "- %d of the %d ranked completions were generated with another vocabulary: their text was "
                      "tokenized by the base's tokenizer\n", ps->n_other_vocab, ps->n_seq);
    buf_puts(b, "- annotators:");
    for (int i = 0; i < s->n; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++) seen = !strcmp(s->r[j].annotator, s->r[i].annotator);
        if (!seen) buf_printf(b, " %s", *s->r[i].annotator ? s->r[i].annotator : "(none)");
    }
    buf_putc(b, '\n');
}

void pref_data_note(Buf *text, const PairSet *ps) {
    if (ps->n_identical)
        buf_printf(text,
                   "note: %d pairs were left out: their two completions are the same text (greedy candidates are "
                   "identical; rank with temperature > 0 for different ones)\n",
                   ps->n_identical);
    if (ps->n_other_vocab)
        buf_printf(text,
                   "note: %d of the %d ranked completions were generated with another vocabulary than the base's; "
                   "their text is what the annotators ranked, and the base tokenized it like the rest\n",
                   ps->n_other_vocab, ps->n_seq);
}

void pref_saved_note(Buf *text, int steps, int best_step, int planned) {
    if (planned)
        buf_printf(text, "stopped with Ctrl-C after step %d of %d: the weights of step %d are saved\n", steps, planned,
                   best_step);
    if (steps > 0 && best_step == 0)
        buf_printf(text, "no step did better on the held-out pairs than the start: the weights saved are the start's "
                         "(step 0; %d step%s ran: try a smaller lr, more steps or more rankings)\n",
                   steps, steps == 1 ? "" : "s");
}

void pref_card_steps(Buf *b, int steps, int best_step, bool stopped_early, int planned) {
    buf_printf(b, "- steps: %d", steps);
    if (planned) buf_printf(b, " of %d planned (stopped with Ctrl-C; ", planned);
    else buf_puts(b, " (");
    buf_printf(b, "weights of step %d kept%s)\n", best_step, stopped_early ? ", stopped early" : "");
}

void pref_data_json(JsonW *w, const PairSet *ps, int held_prompts) {
    jw_kint(w, "ties", ps->n_ties);
    jw_kint(w, "ties_excluded", ps->n_ties_out);
    jw_kint(w, "identical", ps->n_identical);
    jw_kint(w, "prompts", ps->n_groups);
    jw_kint(w, "heldout_prompts", held_prompts);
    jw_kint(w, "truncated", ps->n_trunc);
    jw_kint(w, "other_vocab", ps->n_other_vocab);
}
