// experiment.h - prompt experiments: the plan (a task, its prompt style and scorer, the matrix
// of conditions, the items), the checks made before anything runs, and running what is not
// stored yet, one transaction per item (its runs, their links and its score), so that Ctrl-C
// or a killed process loses at most the item in progress and `experiment resume` finishes the
// rest. The prompts of a condition share their description and exemplars: their keys and
// values are computed once and kept in the cache for the next item (prefix reuse).
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "prompt/score.h"
#include "prompt/task.h"
#include "prompt/template.h"
#include "session.h"

enum { EXP_MAX_LIST = 16, EXP_MAX_CONDITIONS = 1024, EXP_MAX_SAMPLES = 64, EXP_MAX_SHOTS = 64 };

// The version of the rules that turn an output into a scored answer (extraction, the default
// scorer, self-consistency's vote). An experiment stores the version it was started under, and
// its missing items are never scored under other rules than its stored ones. 1: before
// 2026-12-06 (votes on the normalised text; GSM8K-style files scored exact; the rationale's first
// sentence taken as the answer); 2: votes on what the scorer compares, GSM8K-style files scored by
// number, the answer after a rationale by the README's rules; 3 (2026-12-07): a regex's later
// searches see the text before them, a sentence does not end at an abbreviation's point, the
// answer ends at an end-of-text or end-of-turn token.
enum { EXP_SCORING_RULES = 3 };

// The options of the prompt style a command may override (NULL: the task's).
enum { ST_DESCRIPTION, ST_PREFIX, ST_DELIMITER, ST_ANSWER_PREFIX, ST_SEPARATOR, ST_TRIGGER, ST_ANSWER_PHRASE, ST_N };
// Their option names: description, prefix, delimiter, answer_prefix, separator, trigger, answer_phrase.
extern const char *const exp_style_keys[ST_N];

// What an experiment is asked to do (its command's options); stored as JSON in its row so that
// it can be resumed.
typedef struct ExpSpec {
    char *task;      // as named: a shipped task or a file
    char *task_path; // the file (absolute)
    char *pool_path; // exemplars from another file (absolute), or NULL
    int shots[EXP_MAX_LIST], n_shots;
    int cot[2], n_cot;          // 0 off, 1 on
    int samples[EXP_MAX_LIST], n_samples; // self-consistency
    int chat[2], n_chat;        // 0 off, 1 on
    uint64_t seeds[EXP_MAX_LIST];
    int n_seeds;
    int limit;                  // the first N test items; 0: all
    char *style[ST_N];          // overrides of the task's prompt style
    char *scorer, *regex;       // NULL: the task's (exact, or choice for multiple choice)
    double temperature, top_p;  // decoding: greedy unless temperature > 0
    int top_k, max_tokens, alts; // max_tokens 0: the task's (16, or 128 with chain of thought)
    bool stop_at_eos;
    bool reuse;                 // keep the shared prefix's keys and values between items
    char kv[8];                 // the KV cache's type it runs with ("f32", "f16", "q8_0": runlog_kv_name);
                                // "" in specs stored before it was: the session's then
    int rules;                  // EXP_SCORING_RULES when it was started (1 in specs stored without)
} ExpSpec;

void exp_spec_init(ExpSpec *s);
void exp_spec_free(ExpSpec *s);
// The spec as JSON (appended), and back (0, or -1 with e filled).
void exp_spec_json(const ExpSpec *s, Buf *out);
int exp_spec_parse(const char *json, ExpSpec *s, Err *e);

// A spec made ready to run: the task read, the style and scorer settled, the conditions and
// the items listed, every option checked against the task and the model.
typedef struct ExpPlan {
    ExpSpec spec;
    Task *task;
    PromptStyle style;
    Scorer *scorer[2];     // without and with chain of thought (which cuts completions later)
    ScoreKind kind;
    PromptChat chat;       // the model's chat template (when a condition uses it)
    bool have_chat;
    DbCondition *conds;
    int n_conds;
    int *items, n_items;   // indices into task->items of the test items used
    int max_tokens[2];     // without and with chain of thought
} ExpPlan;

// The folder of the tasks qkv ships ($QKV_TASKS, else the source tree's when it exists, else the
// installed one).
const char *exp_tasks_dir(void);
// The file of a task named name (a path; a shipped task's file name with or without .jsonl; or
// the name its header gives, as `tasks` lists it), as an absolute path (malloc'd), or NULL with e
// filled.
char *exp_task_find(const char *name, Err *e);
// The .jsonl files of the tasks folder dir, sorted by name (malloc'd, each and the array), or
// NULL with *n = -1 and errno set when the folder cannot be read.
char **exp_task_files(const char *dir, int *n);
// Build plan from spec (taken, even on failure). 0, or -1 with e filled.
int exp_plan_build(App *app, ExpSpec *spec, ExpPlan *plan, Err *e);
void exp_plan_done(ExpPlan *plan);

// One prompt of a plan: condition c, test item `item` (an index into plan->task->items).
typedef struct ExpPrompt {
    int ex[EXP_MAX_SHOTS], n_ex; // the exemplars
    Rendered r;
    IntVec ids;                  // r.text tokenized as the model reads it
    IntVec shared;               // ids of the shared part alone (r.shared bytes)
} ExpPrompt;
// Render and tokenize; 0 or -1 with e filled. Free with exp_prompt_free either way.
int exp_prompt(App *app, const ExpPlan *plan, const DbCondition *c, int item, ExpPrompt *p, Err *e);
void exp_prompt_free(ExpPrompt *p);
// "shots=3 cot=on seed=1" (with " sc=N" and " chat=on" when they apply) into out.
void exp_condition_label(const DbCondition *c, char *out, size_t cap);
// The seed of sample s of item `item` under condition seed `seed` (below 2^53).
uint64_t exp_sample_seed(uint64_t seed, int item, int s);

// Check every prompt of the plan before anything runs: its item gets the condition's exemplars
// (prompt_pick_exemplars) and it fits in the context with the tokens to generate (or the
// longest choice). 0, or -1 with e naming the condition and the item.
int exp_preflight(App *app, const ExpPlan *plan, Err *e);

// What a run of the remaining items did.
typedef struct ExpOutcome {
    long done_before, done_now, total; // items (under every condition)
    bool stopped;                      // Ctrl-C: stopped between items, resumable
    double seconds;
    long tokens_reused, tokens_evaluated; // prompt tokens kept from the cache / evaluated
} ExpOutcome;

// Run the items of experiment id that are not stored yet, storing each with its runs, and set
// the experiment's status (done, or stopped on Ctrl-C). 0 (o filled), or -1 with e filled.
int exp_execute(App *app, Db *db, int64_t id, const ExpPlan *plan, const char *command, ExpOutcome *o, Err *e);
