// template.h - rendering the prompts of an experiment exactly: zero-, one- and few-shot in the
// GPT-3 paper's format, chain of thought (zero-shot with a trigger, few-shot with worked
// rationales), and a model's chat template; and choosing the exemplars reproducibly.
//
// The plain format, with st = {description, input_prefix, delimiter, answer_prefix, separator}:
//   DESCRIPTION SEP                                     (when there is a description)
//   PREFIX input DELIM ANSPREFIX answer SEP             (one block per exemplar)
//   PREFIX input DELIM ANSPREFIX                        (the query, trailing spaces removed)
// An answer follows its head after one space unless the head ends with a new line; so
// delimiter " =>" and " => " both give "sea otter => loutre de mer" and the query "cheese =>"
// (a byte-level BPE model writes the space as part of its first token).
// Chain of thought: an exemplar's answer is "RATIONALE ANSWER_PHRASE target." ("... The answer
// is 42."); zero-shot, the query ends with " COT_TRIGGER" ("Let's think step by step."). A
// blank SEP without a blank line ("\n") becomes "\n\n" there (prompt_separator: rationales
// span lines, and the completion is cut where SEP begins).
// Chat: the description as a system message, each exemplar a user turn (PREFIX input) and an
// assistant turn (its answer), the query a user turn, then the template's generation prompt
// (and the trigger, zero-shot with chain of thought).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "prompt/task.h"

typedef struct PromptStyle {
    const char *description;   // "" for none
    const char *input_prefix;  // "" ("Q: ")
    const char *delimiter;     // between an input and its answer (" =>")
    const char *answer_prefix; // opens every answer ("" or "A:")
    const char *separator;     // after the description and after each exemplar ("\n")
    const char *cot_trigger;   // "Let's think step by step."
    const char *answer_phrase; // "The answer is"
} PromptStyle;

// The GPT-3 defaults, with t's description and its header's choices when t is non-NULL.
void prompt_style_default(PromptStyle *st, const Task *t);

// One message of a conversation for a chat template.
typedef struct PromptMsg {
    const char *role; // "system", "user", "assistant"
    const char *text;
    size_t len;
} PromptMsg;

// A model's chat template: render msgs with the start of the assistant's turn appended to out.
// 0, or -1 with e filled (no template, or one that cannot hold this conversation).
typedef struct PromptChat {
    int (*render)(void *user, const PromptMsg *msgs, int n, Buf *out, Err *e);
    void *user;
    const char *name; // the template's name ("chatml"), recorded as the runs' template
} PromptChat;

// A rendered prompt.
typedef struct Rendered {
    Buf text;       // the prompt exactly as the model reads it
    size_t shared;  // its first bytes, the same for every item of the condition (description,
                    // exemplars): the part whose KV cache experiments reuse
    bool special;   // a chat template's text: encode parsing special tokens, adding none
    const char *choice_sep; // what goes between the prompt and a multiple-choice continuation
} Rendered;

// Render the prompt for test item `item` (an index into t->items) with the exemplars ex[n_ex]
// (indices into t->items), chain of thought when cot, through chat when non-NULL. Returns 0
// (out filled; free with rendered_free), or -1 with e filled (an exemplar without a rationale
// under few-shot chain of thought, a chat template that refuses the conversation).
int prompt_render(const Task *t, const PromptStyle *st, const PromptChat *chat, bool cot, const int *ex, int n_ex,
                  int item, Rendered *out, Err *e);
void rendered_free(Rendered *r);
// The mode a run records: "zero-shot", "one-shot" or "few-shot", "-cot" with chain of thought,
// "-scN" with N self-consistency samples (N > 1). Into out (at least 32 bytes).
void prompt_mode_name(int shots, bool cot, int samples, char *out, size_t cap);
// An exemplar's answer as the prompts show it (the target, or with cot the rationale, the
// answer phrase and the target), into out (appended).
void prompt_answer_text(const PromptStyle *st, const TaskItem *it, bool cot, Buf *out);

// The k exemplars of test item `item`: the first k of the seed's permutation of the pool (of
// the other test items when the task has none) that are not the item itself nor an item with
// the same input; with need_rationale, only items that have a rationale. The same seed gives
// the same order for every item and every k, so that the exemplars of a condition are shared
// (and those of 1 shot are the first of 3). Writes out[k]; 0, or -1 with e filled when fewer
// than k serve this item: the message gives the pool's size and, when some are left out for it,
// how many are usable and why (the item's own input, no rationale).
int prompt_pick_exemplars(const Task *t, uint64_t seed, int k, int item, bool need_rationale, int *out, Err *e);
