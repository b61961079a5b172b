// task.h - task files for prompt experiments: a description, a pool of worked examples and
// test items, read from JSON Lines in qkv's own layout or in the common public layouts
// (GSM8K-style question/answer with "#### 42", multiple choice with question/choices/answer).
//
// qkv's layout, one JSON object a line (blank lines and lines starting with // are skipped):
//   {"description": "Translate English to French:", "name": "en-fr", "scorer": "exact", ...}
//       an optional header (the first object without input/question): description, name,
//       scorer (exact | contains | number | regex | choice), regex, max_tokens, max_tokens_cot,
//       and the template's input_prefix, delimiter, answer_prefix, separator, cot_trigger,
//       answer_phrase (see template.h)
//   {"input": "cheese", "target": "fromage"}                          a test item
//   {"input": "sea otter", "target": "loutre de mer", "split": "pool"} an exemplar for the prompts
//   {"input": ..., "target": ..., "rationale": "..."}                  with a worked rationale
//   {"input": ..., "choices": ["a", "b"], "answer": 1}                 multiple choice (target
//       may replace answer; answer may be an index, a letter A-Z or the choice's text)
// GSM8K-style: {"question": ..., "answer": "rationale ...\n#### 42"} (calculator annotations
// <<6*7=42>> are dropped from the rationale). Multiple choice: {"question": ..., "choices": [...]
// or {"text": [...], "label": [...]}, "answer" or "answerKey": index, letter or label}.
// Items without "split" are test items; when a task has no pool, the exemplars of a test item
// are drawn from the other test items.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

typedef struct TaskItem {
    char *input;     // the question, word or text the prompt asks about
    char *target;    // the expected answer (a multiple-choice item's correct choice)
    char *rationale; // a worked solution ending before the answer, or NULL
    char **choices;  // n_choices strings, or NULL
    int n_choices;
    int answer;      // index of the correct choice; -1 without choices
    int line;        // line of the file (1-based), for messages
    bool pool;       // an exemplar, never a test item
} TaskItem;

// Defaults a task's header may set; NULL (or -1 for numbers) when the header leaves them.
typedef struct TaskDefaults {
    char *input_prefix, *delimiter, *answer_prefix, *separator, *cot_trigger, *answer_phrase;
    char *scorer, *regex;
    int max_tokens, max_tokens_cot;
} TaskDefaults;

typedef struct Task {
    char *name;        // the header's name, else the file name without .jsonl
    char *path;        // as given
    char *description; // "" when none
    const char *layout; // "qkv", "gsm8k", "choice" (the first item's), for messages
    TaskItem *items;   // every item, in file order (pool files appended after)
    int n_items;
    int *test, n_test; // indices of the test items, in file order
    int *pool, n_pool; // indices of the exemplars (may be empty)
    int n_rationale;   // pool items (or, without a pool, test items) with a rationale
    bool multiple_choice; // every test item has choices
    TaskDefaults dflt;
    char sha256[65];   // of the file's bytes (and of the pool file's, see task_add_pool)
} Task;

// Read the task file at path. Returns a task to free with task_free, or NULL with e filled
// ("cannot read task 'x.jsonl' line 7: ..."): a line that is not JSON, an item without
// input and target, choices without a valid answer, a file without test items.
Task *task_load(const char *path, Err *e);
// Add the items of another file (a training split, say) as t's exemplar pool; its test items
// count as pool items too. The task's hash then covers both files. 0 or -1 with e filled.
int task_add_pool(Task *t, const char *path, Err *e);
void task_free(Task *t);
// The scorer t's experiments use unless the command names one: the header's "scorer", else
// "choice" for multiple choice, "number" for a GSM8K-style file (its answers are numbers after
// "####", and a rationale's "6 + 1 = 7 cats" is right for 7), "exact" otherwise.
const char *task_scorer(const Task *t);
// Whether t's exemplars come from its test items (it has no pool of its own).
static inline bool task_pool_is_test(const Task *t) { return t->n_pool == 0; }
