// rankset.h - the stored rankings a command works on, read whole: each ranking's prompt,
// annotator and candidates with their completion text and rank (agreement, reward training).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

typedef struct RankCand {
    char *text; // the completion (owned), len bytes
    size_t len;
    char *ids;  // its generated token ids as the run stored them (JSON array, owned; NULL when none)
    int rank;   // 1 = best; ties share a rank
} RankCand;

typedef struct RankRow {
    int64_t id;
    char *prompt; // owned, prompt_len bytes
    size_t prompt_len;
    char *annotator; // owned; "" when none was recorded
    int k;
    RankCand c[DB_RANK_MAX];
} RankRow;

typedef struct RankSet {
    RankRow *r;
    int n, cap;
} RankSet;

// Read the rankings matching f (oldest first) with their candidates' completions. 0 or -1
// with e filled.
int rankset_load(Db *db, const DbFilter *f, RankSet *s, Err *e);
void rankset_free(RankSet *s);
// The strings of one row (rankset_free frees every row's and the array).
void rankset_row_free(RankRow *r);
// Sort the rows by prompt (bytes), then by id: the rankings of one prompt become neighbours.
void rankset_sort_by_prompt(RankSet *s);
// Whether rows a and b rank the same prompt.
int rankset_same_prompt(const RankRow *a, const RankRow *b);

struct App;
struct Args;
struct Out;
// A command's rankings: the session's database, the filters since= until= annotator= model=
// text= of a (annotator= only when by_annotator), every matching ranking into s. 0, or -1 with
// the message (prefixed with cmd) in out, also when none matches.
int rankset_command(struct App *app, const struct Args *a, const char *cmd, bool by_annotator, RankSet *s,
                    struct Out *out);
