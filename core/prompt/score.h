// score.h - scoring a model's answers: the answer extracted from a completion (cut at the
// prompt's separator; what follows "the answer is", or "#### N"; without them, after a
// rationale, its last number, all of it or its last sentence, by scorer), compared with the
// target after normalisation (exact), found in it (contains), as numbers (number), through a
// regular expression (regex); multiple choice by log-likelihood, summed and length-normalised;
// majority votes for self-consistency.
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

typedef enum {
    SCORE_EXACT,    // the extracted answer equals the target after normalisation
    SCORE_CONTAINS, // the normalised target appears in the normalised answer as whole words
    SCORE_NUMBER,   // the extracted answer's last number equals the target's
    SCORE_REGEX,    // the regular expression's capture (its last match) equals the target
    SCORE_CHOICE,   // multiple choice: the choice of highest log-likelihood is the target
} ScoreKind;

// "exact" ... "choice" -> kind; -1 when unknown.
int score_kind_parse(const char *name);
const char *score_kind_name(ScoreKind k);

// How answers are found in a completion.
typedef struct ScoreOpts {
    ScoreKind kind;
    const char *separator;     // the prompt's separator: the completion is cut where it begins
    const char *answer_phrase; // "The answer is" (matched in any case)
    const char *regex;         // SCORE_REGEX: POSIX extended, case-insensitive; capture 1 or the match
    bool cot;                  // the completion may hold a rationale
} ScoreOpts;

// A compiled scorer (the regex compiled once).
typedef struct Scorer Scorer;

// Check o and compile its regex. NULL with e filled (a bad regex, regex without SCORE_REGEX).
Scorer *scorer_new(const ScoreOpts *o, Err *e);
void scorer_free(Scorer *s);
// The separator a prompt's blocks are joined with and its completions cut at: sep, except that
// with a rationale (cot) a blank separator without a blank line ("\n", the default) would cut a
// rationale after its first line, so a blank line ("\n\n") serves instead, in the prompt
// (template.c) and in the cut alike.
const char *prompt_separator(const char *sep, bool cot);
// Where a completion (n bytes) ends: at the first prompt_separator after some content (n when
// there is none yet).
size_t score_cut(const Scorer *s, const char *text, size_t n);
// The answer of a completion (n bytes) into out (cleared first), from the completion cut at the
// separator (score_cut):
//   regex: its last match (capture 1, else the match), with or without a rationale;
//   contains without a rationale: all of it;
//   otherwise what follows the last answer_phrase (any case) to the end of its sentence, else
//   what follows the last "####"; else, after a rationale (cot), for number its last number,
//   for contains all of it, for exact (and choice, and number without a number) its last
//   sentence; without one, its first sentence (of its first line).
void score_extract(const Scorer *s, const char *text, size_t n, Buf *out);
// Whether an extracted answer is right for target.
bool score_match(const Scorer *s, const char *answer, const char *target);

// Normalise for comparison into out (cleared first): canonical decomposition (NFD), lower
// case, punctuation and symbols removed, white space collapsed to one space and trimmed.
void score_normalize(const char *s, size_t n, Buf *out);
// The number in s (n bytes) at or after *pos: optional sign, digits with optional thousands
// commas, optional decimals ("$" and "%" around it are not part of it). Returns true with *v,
// *pos past it and *start (when non-NULL) where it begins; false when there is none.
bool score_number_at(const char *s, size_t n, size_t *pos, double *v, size_t *start);
// The last number in s, or false.
bool score_last_number(const char *s, size_t n, double *v);

// Multiple choice: the index of the best of n choices by summed log-likelihood ll[i], or by
// ll[i] / chars[i] (its length in characters, as evaluation harnesses' acc_norm) when norm.
// Ties go to the lower index.
int score_choice_best(const double *ll, const int *chars, int n, bool norm);

// Self-consistency: n answers grouped by the value s compares with the target (score_match):
// under SCORE_NUMBER the answer's last number ("7" and "7 cars" agree, "5 books" and "5 is not
// possible" too), else the normalised text (score_normalize). Answers without one (no number,
// nothing left after normalisation) do not vote. The largest group wins, and among groups of
// equal size the one whose first answer comes first; returns the index of the winning group's
// first answer and sets *votes to the group's size. When no answer has a value: the first
// non-empty answer (else 0), with 0 votes.
int score_vote(const Scorer *s, const char *const *answers, int n, int *votes);
