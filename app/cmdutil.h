// cmdutil.h - what the command handlers (cmd_*.c) share.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "lang.h"
#include "model/newmodel.h"
#include "session.h"

// The names of the decoding options (decode_opts reads them).
#define DECODE_KEYS "max", "temperature", "top_k", "top_p", "seed", "alts", "truncate", "stop"

// Decoding options of a command (max=, temperature=, top_k=, top_p=, seed=, alts=, truncate=,
// stop=) over the session's defaults; 0 or -1 with the message in out. *seed_given tells
// whether a seed was fixed (by the option or `set seed`).
int decode_opts(App *app, const Args *a, GenParams *p, bool *seed_given, Out *out);
// The ranges decode_opts takes: the first parameter of p outside them as "name=value" in buf
// (a stored run's, which an edited or damaged database can hold), or NULL when all are in range.
const char *decode_out_of_range(const GenParams *p, char *buf, size_t size);
// A fresh random seed (below 2^53: exact as a JSON number).
uint64_t fresh_seed(void);
// 0 when the n runs seeded seed, seed+1, ... seed+n-1 all have seeds below 2^53, as generate and
// replay take them (a logged seed above made replay call the run damaged); else -1 with the
// message in out naming cmd and what a run is ("candidate", "judge sample").
int seed_span(const char *cmd, uint64_t seed, long long n, const char *what, Out *out);
// A comma-separated list of non-negative ints below limit appended to v; what names the option
// in messages. 0 or -1 (message in out).
int int_list(const char *list, const char *what, int limit, IntVec *v, Out *out);
// The options of the commands that read a prompt text as a chat turn.
#define CHAT_KEYS "chat", "system"
// The chat=true [system="..."] options on text (len bytes): with chat=true, the text as a
// one-turn conversation (the system message first when given) rendered with t's chat template
// and the start of the assistant's turn (tok_chat_render) into rendered (cleared first), and 1
// with *kind its format; 0 when chat is off; -1 with the message in out (no chat template, one
// qkv does not know, system= without chat=true). Encode the rendered text with
// TOK_PARSE_SPECIAL and without TOK_ADD_SPECIAL.
int chat_read(const Tokenizer *t, const Args *a, const char *text, size_t len, Buf *rendered, TokChatKind *kind,
              Out *out);
// A command's input tokens, and their segment ids when given.
typedef struct Prompt {
    IntVec ids;
    IntVec types;     // empty: all 0
    TokChatKind chat; // the chat template the text was rendered with, or TOK_CHAT_NONE
} Prompt;

// The input of a command: TEXT (tokenized as the model does; with pair="B" a sentence pair
// [CLS] A [SEP] B [SEP] with segments 0 and 1; with chat=true [system=S] rendered with the
// model's chat template, see chat_read), or ids=1,2,3 [types=0,0,1]. 0 or -1 (message in out);
// free with prompt_free either way.
int prompt_read(App *app, const Args *a, Prompt *p, bool allow_empty, Out *out);
void prompt_free(Prompt *p);
// The segment ids of p for ctx_eval_types (NULL when all 0).
#define PROMPT_TYPES(p) ((p)->types.n ? (p)->types.v : NULL)
// For a command whose subcommands read different options (the command's key list is their
// union): 0 when every key= of a is in keys (NULL-terminated), else -1 with "CMD: KEY= does not
// apply (only A=, B=)" in out.
int args_only(const Args *a, const char *const *keys, const char *cmd, Out *out);
// The reward model a command uses: dir (its option opt=, model= or reward=), else `set reward
// DIR`, else the latest finished reward run's directory while it still exists. NULL with the
// message (prefixed with cmd) in out.
struct RewardModel *reward_judge_open(App *app, const char *dir, const char *opt, const char *cmd, Out *out);
// A token's readable text into tmp (cleared first).
void token_piece(const Tokenizer *t, int id, Buf *tmp);
// Its visible form (label_visible: spaces, newlines and control characters shown, never raw)
// into out (cleared first): for titles and lines of text a terminal prints.
void token_shown(const Tokenizer *t, int id, Buf *out);
// key: [pieces of ids] / key: [ints].
void json_tokens(JsonW *w, const char *key, const Tokenizer *t, const int *ids, int n);
void json_ints(JsonW *w, const char *key, const int *v, int n);
// key: v, or null when v is NAN.
void jw_knum_or_null(JsonW *w, const char *key, double v);
// key (NULL: none): m (rows, cols) as an array of rows; NAN as null.
void json_matrix(JsonW *w, const char *key, const float *m, int rows, int cols);
// The fields of a generation: the run as logged (db_run_json_fields), plus n_prompt,
// prefill_tok_s, decode_tok_s, steps: [{id, piece, logprob, top}] and log_error when unlogged.
void generation_json(App *app, JsonW *w, const Generation *g);

// The session's database, or NULL with the message in out.
Db *need_db(App *app, Out *out);
// need_db for a command that only reads the database (app_db_read: a named one is not created).
Db *need_db_read(App *app, Out *out);
// A run or ranking id argument ("12" or "#12"); what names it in the message ("run").
int id_arg(const char *val, const char *what, int64_t *id, Out *out);
// The optional count and filter text of a listing: [N] [TEXT].
int count_text_args(const Args *a, const char *cmd, const char *rows, long long *n, const Arg **text, Out *out);
// What a listing (history, rankings, experiments) fills: the rows of the JSON array and the
// lines of the human form, and how many.
typedef struct ListCtx {
    Out *out;
    int n;
} ListCtx;
// Visits the rows of a listing for filter f, newest first, at most n.
typedef int (*ListEach)(Db *db, const DbFilter *f, long n, ListCtx *c, Err *e);
// A listing command: [N] [TEXT] and the filters, then each row into key: [...] (list_none's line
// when there is none).
int list_command(App *app, const Args *a, Out *out, const char *cmd, const char *key, ListEach each);
// The human form of a listing that found no rows of what ("runs", "probe runs"): "no WHAT match"
// when filtered (a filter or text was given), else "no WHAT yet". Every listing says it this way.
// A listing's answer when the database --db or QKV_DB names does not exist (app_db_absent):
// key: [] and the reason (the text; JSON "warning"). Nothing is created: a mistyped name listed
// nothing, successfully, over a new empty database. False otherwise.
bool list_absent(App *app, Out *out, const char *key);
void list_none(Out *out, const char *what, bool filtered);
// The since=, until=, annotator=, model=, kind= and text= filters (text=: a substring of a
// run's or ranking's text, as the listings' TEXT; for the commands whose options hold it).
int filter_opts(const Args *a, DbFilter *f, Out *out);
// Append n bytes of s as valid UTF-8 with NUL bytes shown as U+2400 (a human form is a C string).
void put_text(Buf *b, const char *s, size_t n);
// Append a token's visible form whole (label_format: · for a space, ↵ for a newline, ^[ ...).
void put_token(Buf *b, const char *s, size_t n);
// Append the n bytes at s as one cell of a text table, `width` columns wide (at most CELL_MAX):
// a token's visible form (views/label.h: its spaces as '·', newlines and controls shown,
// never raw), or with `token` false a name's (its spaces stay spaces); cut at a character
// with '…' when wider, padded with spaces to the width.
enum { CELL_MAX = 64 };
void put_cell(Buf *b, const char *s, size_t n, int width, bool token);

// Append about max bytes of s on one line (newlines shown as U+23CE), "..." when cut.
void text_line(Buf *b, const char *s, size_t n, size_t max);
// Whether a file name ends in ext (".csv"), in any case.
bool has_ext(const char *path, const char *ext);
// Whether folder dir holds a file whose name ends in ext (has_ext), other than one named except
// (NULL: none excepted).
bool dir_has_ext(const char *dir, const char *ext, const char *except);
// A prompt as a listing shows it, quoted, text_line's max bytes: a chat prompt (chat: one a
// chat template rendered, chat_user_text finding its turns) as "chat: " and its last user
// message, which tells one from the next where their common start (the system message) would
// not. Another prompt is shown whole, whatever markers its text holds.
void prompt_line(Buf *b, const char *s, size_t n, size_t max, bool chat);
// JSON key "chat_user": a chat prompt's last user message (as prompt_line shows it), else null.
void jw_chat_user(JsonW *w, const char *s, size_t n, bool chat);

// The options of a new model of family f (layers= heads= kv_heads= d= ff= ctx= vocab= seed=
// std= theta= tied= masks= dtype= prefix= shards=) over newmodel_defaults(), for new-model and
// train. -1 with the message in out.
int newmodel_args(const Args *a, const Family *f, NewModelParams *p, Out *out);
// The options of a command as a JSON object (its first positional argument under pos_key
// when pos_key is non-NULL), for a run's record.
void options_json(const Args *a, const char *pos_key, Buf *b);
// The first of the files a model folder holds (new-model's, train's: config, weights, tokenizer)
// whose name in dir is one of the loaded model's files (the original's when quantized), or NULL.
const char *app_loaded_file_in(const App *app, const char *dir);
