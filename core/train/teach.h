// teach.h - the teaching corpus: text generated from a seed on which a small model learns
// what the lectures show. Documents (separated by a blank line) of
//   - rules read from examples: a letter cipher (each letter shifted by k, k in 1..4, the same
//     k for the whole document), list operations on digits (reverse, sort, first, last, drop
//     the first: one per document), word mappings (plural, first letter, last letter, upper
//     case, the word twice: one per document), as lines "INPUT => OUTPUT";
//   - two-step arithmetic "Q: 7 + 5 - 3\nA: ..." answered directly ("9"), with a worked
//     rationale ("7 + 5 = 12. 12 - 3 = 9. The answer is 9."), or after "Let's think step by
//     step." (blocks separated by a blank line);
//   - repeated sequences (random characters or words, written two to four times: induction);
//   - sentences of a small grammar.
// Held-out items: an input is held out when a hash of (task, input) says so; training never
// writes a held-out input in the task it is held out of, and the task files (the
// experiment format of data/tasks/) test on held-out inputs only, their exemplar pool drawn
// from the training side.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

typedef enum { TEACH_CIPHER, TEACH_LIST, TEACH_WORDS, TEACH_ARITH, TEACH_N_TASKS } TeachTask;

// The task's file name stem ("teach-cipher").
const char *teach_task_name(TeachTask t);

// Whether input is held out of training for task t.
bool teach_held_out(TeachTask t, const char *input);

// Append about `bytes` bytes of training text (whole documents) generated from seed to out.
void teach_corpus(uint64_t seed, size_t bytes, Buf *out);

// Append the JSON Lines task file of t to out: a header, n_pool exemplars ("split": "pool",
// training-side inputs) and n_test held-out items, generated from seed. The rule-from-examples
// tasks use one fixed rule (cipher: shift 2; list: reverse; words: plural); arithmetic items
// carry a rationale.
void teach_task_file(TeachTask t, uint64_t seed, int n_pool, int n_test, Buf *out);
