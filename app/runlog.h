// runlog.h - every generation becomes a run row: the record built from its result and
// parameters, the model's identity (path and content hash, cached in the database), and the
// insertion. It knows the engine's results and the database, not the session.
#pragma once
#include <limits.h>

#include "db.h"
#include "eval/generate.h"
#include "model/model.h"

// Where a generation came from.
typedef struct RunOrigin {
    const Model *model;
    const char *annotator; // or NULL
    int threads;
    DType kv;              // the KV cache's type (DT_F32 or DT_F16)
    const char *kind;      // "generate" (NULL), "rank", "replay", ...
    int64_t parent_id;     // the run this one replays, or 0
} RunOrigin;

// A run's record and the buffers its JSON columns live in.
typedef struct RunRecord {
    DbRun run;
    Buf pids, ids, lps, alts;
    char hex[65];
    char abs[PATH_MAX];
    char arch[64]; // run.model_arch: the family, with the weights' element type unless F32
} RunRecord;

// The KV cache's type as the run log (column kv), `set kv` and `--kv` spell it: "f32", "f16",
// "q8_0" (app_kv_parse reads it back).
const char *runlog_kv_name(DType kv);
// A model's architecture as runs record it: the family, then the block weights' element type
// when not F32 ("llama Q4_1"), and "(quantize q8_0)" or "(quantize q8_0 embed=true)" when it was
// converted in memory from the file at its path.
void runlog_arch_name(const Model *m, char *out, size_t cap);

// Fill rr from a finished generation (strings borrowed from the arguments, which must outlive
// rr); the model's content hash is not computed (see runlog_identify).
void runlog_record(RunRecord *rr, const RunOrigin *o, const char *prompt, size_t prompt_len, const GenParams *p,
                   const GenResult *r, const char *text, size_t text_len);
// Add the model's content hash (of the file, or of the files qkv reads in a directory: the
// SHA-256 of their sha256sum lines), computed once per file and cached in db. 0 or -1.
int runlog_identify(RunRecord *rr, Db *db, const Model *m, Err *e);
// Whether `file` is one the run log's content hash of the model at model_path reads: that
// model's file, or an existing file of its folder the hash covers (weights, configuration,
// tokenizer, GGUF). Such a file is not to be replaced while the model is loaded: runs logged
// after would name another model than the one that made them.
bool runlog_hashes(const char *model_path, const char *file);
// Only the model's identity, as runs record it: rr's model_path (absolute, or "builtin"),
// model_arch and model_sha256 (free nothing; rr holds no buffers then). 0 or -1 with e filled.
int runlog_model(RunRecord *rr, Db *db, const Model *m, Err *e);
// Identify the model and insert the run: its id (> 0), or 0 with e filled.
int64_t runlog_insert(Db *db, RunRecord *rr, const Model *m, Err *e);
void runlog_record_done(RunRecord *rr);
