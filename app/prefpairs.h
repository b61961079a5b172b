// prefpairs.h - the preference pairs of stored rankings as a trainer reads them (reward
// train, dpo train): each candidate's prompt and completion tokenized by the model trained,
// every ordered pair of a ranking (ties dropped or kept as ties), and the split of the
// prompts into training and held-out ones (no prompt on both sides).
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/vec.h"
#include "model/model.h"
#include "rankset.h"
#include "train/optim.h"
#include "train/reward.h"

typedef struct PairSet {
    IntVec *seq;    // one per candidate of every ranking
    IntVec *types;  // their segment ids (an encoder's sentence pairs; empty for a decoder)
    int *start;     // where each completion's tokens begin in seq (split tokenization), else 0
    int *row, *cand; // the ranking (index into the RankSet) and candidate (0-based) of each sequence
    int n_seq, n_trunc;
    int n_other_vocab; // candidates whose stored token ids are not m's tokens of their text
    RewardPair *pairs;
    int n_pairs, n_ties;
    int n_identical; // pairs left out: the two completions read the same (utf8_same_text; no preference)
    int n_ties_out;  // tied pairs left out (ties=exclude); n_ties counts those kept (ties=equal)
    int *group;     // the prompt of each pair (0 .. n_groups-1)
    int n_groups;
} PairSet;

// The tokens a reward model reads for a prompt and a completion (reward train and reward score
// alike), appended to ids (and types): for a decoder the two as one text tokenized as `tokenize`
// and generation read a text and dpo train a prompt (the model's special tokens added, and those
// spelled in the text, <|im_start|>, parsed as one token each), cut to its last max_len tokens;
// for an encoder the sentence pair (special-token text parsed, as HF's tokenizers do)
// [CLS] prompt [SEP] completion [SEP] with segment ids 0 up to the first [SEP] and 1 after it
// in types (an empty completion: [CLS] prompt [SEP], as HF's tokenizers encode a pair with an
// empty second text), the prompt's start cut first to fit max_len, then the completion's end. *cut: the
// tokens cut. 0 or -1 with e filled.
int reward_tokens(const Model *m, const char *prompt, size_t plen, const char *comp, size_t clen, int max_len,
                  IntVec *ids, IntVec *types, int *cut, Err *e);

// The sequences and pairs of the rankings in s (sorted by prompt: rankset_sort_by_prompt).
// split false: each candidate as reward_tokens gives it (reward models). split true: the prompt (special tokens
// parsed and added; an empty one is the beginning-of-text token) followed by the completion
// tokenized alone, start recording where it begins; the prompt's start is cut first to fit
// max_len, then the completion's end (DPO). Ties become tie pairs when ties_equal, else are
// dropped; two candidates that read the same (utf8_same_text, the exports' rule) give no pair (n_identical counts them); a pair's margin is margin_w x its rank difference. Counts in n_other_vocab the
// candidates generated with another vocabulary than m's: stored token ids that are out of m's
// range or that m's tokenizer does not decode to the stored text (their text is tokenized by m
// like every other's). 0 or -1 with e filled.
int pairset_build(const RankSet *s, const Model *m, int max_len, bool split, bool ties_equal, float margin_w,
                  PairSet *ps, Err *e);
void pairset_free(PairSet *ps);
// Hold out the fraction val of the prompts (chosen by a hash of each prompt and seed; at least
// one when val > 0 and there are two prompts or more, never all): the pairs into *train and
// *held (allocated; the caller frees); held_group (ps->n_groups entries, or NULL) marks the
// held-out prompts. Returns the number of held-out prompts.
int pairset_split(const RankSet *s, const PairSet *ps, double val, uint64_t seed, RewardPair **train, int *n_train,
                  RewardPair **held, int *n_held, bool *held_group);

struct App;
struct Args;
struct Out;

// The options the pair trainers share, over the defaults the caller puts in *p: steps epochs
// batch warmup eval_every patience threads max_len lr min_lr (default lr/10) wd clip beta1
// beta2 eps val seed. 0, or -1 with the message (prefixed with cmd) in out.
typedef struct PrefTrainOpts {
    OptParams opt; // opt.steps is left to the caller (steps, or epochs of the training pairs)
    int steps, epochs, batch, eval_every, patience, threads, max_len;
    double val;
    uint64_t seed;
} PrefTrainOpts;
int pref_train_opts(const struct Args *a, const char *cmd, PrefTrainOpts *p, struct Out *out);

// The model to train: base=MODEL opened (into *owned, the caller frees it) or the session's
// (loaded when none is). NULL with the message (prefixed with cmd) in out.
Model *pref_base_model(struct App *app, const struct Args *a, const char *cmd, Model **owned, struct Out *out);

// The files both trainers write beside the checkpoint (the model card, the adapters), NULL-terminated.
extern const char *const pref_out_files[];
// Where a trainer writes its checkpoint: out= made when missing (*made), held for this process
// alone (the descriptor in *lock, -1 before) and the base's tokenizer settled (*tok_dir, see
// tmodel_checkpoint_tokenizer). 0, or -1 with the message (prefixed with cmd) in out.
int pref_out_open(const char *outdir, const Model *base, const char *cmd, bool *made, int *lock, char **tok_dir,
                  struct Out *out);
// A run that failed or stopped before its first step: unless it wrote a checkpoint (out= held
// none before), out= removed when the run made it, else the tokenizer it wrote there.
void pref_out_discard(const char *outdir, bool made, const char *tok_dir);

// The data keys both trainers report: ties, prompts, heldout_prompts, truncated.
// The model card's steps line: steps run, the planned count when Ctrl-C stopped the run (planned
// > 0), the step whose weights were kept.
void pref_card_steps(Buf *b, int steps, int best_step, bool stopped_early, int planned);
void pref_data_json(JsonW *w, const PairSet *ps, int held_prompts);
// The note both trainers print when ranked completions came from another vocabulary.
void pref_data_note(Buf *text, const PairSet *ps);
// The lines both trainers print of the weights they saved: when Ctrl-C stopped the run (planned >
// 0: the steps it was to run), and when no step did better on the held-out pairs than the start
// (best_step 0 after steps: the weights saved are the start's).
void pref_saved_note(Buf *text, int steps, int best_step, int planned);

// The model card's lines on the data: the filters of a, the rankings, prompts, pairs and the
// split, the annotators.
void pref_card_data(Buf *b, const struct Args *a, const RankSet *s, const PairSet *ps, int n_train, int n_held,
                    int prompts, int held_prompts);
