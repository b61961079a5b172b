-- schema.sql - qkv's SQLite schema, written as the sequence of forward migrations that
-- builds it. This file is the single source: it is embedded in the binary at build time
-- (db/embed_sql.py), and a fresh database runs every section in order.
--
-- Each section starting with a line "-- migration N: what" runs once, in its own
-- transaction, on a database whose PRAGMA user_version is below N; user_version is then
-- set to N in the same transaction. Never edit a released section: append a new one.
--
-- Conventions: times are UTC text 'YYYY-MM-DDTHH:MM:SS.mmmZ' (they sort as strings);
-- lists of numbers are JSON text; a u64 seed is stored as the i64 with the same bits.

-- migration 1: the run log
CREATE TABLE file_hashes (           -- content hashes of model files, computed once
    path TEXT NOT NULL,              -- absolute path
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,            -- lower-case hex
    computed TEXT NOT NULL,
    PRIMARY KEY (path, size, mtime_ns)
) WITHOUT ROWID;

CREATE TABLE runs (                  -- one generation, with what is needed to reproduce it
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'generate', -- generate | rank | replay | experiment
    parent_id INTEGER REFERENCES runs(id) ON DELETE SET NULL, -- replay: the run replayed
    annotator TEXT,
    qkv_version TEXT NOT NULL,
    n_threads INTEGER NOT NULL DEFAULT 0,
    model_path TEXT NOT NULL,        -- absolute path of the model file or directory, or 'builtin'
    model_arch TEXT NOT NULL,
    model_sha256 TEXT,               -- content hash; NULL for the built-in model
    prompt TEXT NOT NULL,            -- the full rendered prompt
    template TEXT,                   -- prompt experiments: template name,
    mode TEXT,                       --   mode (zero-shot, few-shot, cot ...),
    exemplars TEXT CHECK (exemplars IS NULL OR json_valid(exemplars)), --   exemplars as a JSON array
    temperature REAL NOT NULL,
    top_k INTEGER NOT NULL,
    top_p REAL NOT NULL,
    seed INTEGER NOT NULL,
    max_tokens INTEGER NOT NULL,
    n_alts INTEGER NOT NULL DEFAULT 0,
    stop_at_eos INTEGER NOT NULL DEFAULT 1,
    truncate INTEGER NOT NULL DEFAULT 0,
    prompt_ids TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(prompt_ids)), -- ids evaluated (after truncation)
    n_truncated INTEGER NOT NULL DEFAULT 0,
    output TEXT NOT NULL,            -- the completion's text
    ids TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(ids)), -- generated ids
    logprobs TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(logprobs)), -- log p of each generated id
    alts TEXT CHECK (alts IS NULL OR json_valid(alts)), -- per step: [[id, logprob], ...] top alternatives
    prefill_s REAL,
    decode_s REAL,
    stop_reason TEXT                 -- length | eos | cancelled | context
);
CREATE INDEX runs_created ON runs(created);

-- migration 2: human rankings
CREATE TABLE rankings (              -- one annotator's ordering of K completions of a prompt
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    prompt TEXT NOT NULL,
    k INTEGER NOT NULL CHECK (k BETWEEN 2 AND 9),
    annotator TEXT,
    note TEXT,
    qkv_version TEXT NOT NULL
);
CREATE INDEX rankings_created ON rankings(created);

CREATE TABLE ranking_items (         -- candidate n of a ranking, its run and its rank
    ranking_id INTEGER NOT NULL REFERENCES rankings(id) ON DELETE CASCADE,
    n INTEGER NOT NULL CHECK (n BETWEEN 1 AND 9),      -- number shown to the annotator
    run_id INTEGER NOT NULL REFERENCES runs(id),
    rank INTEGER NOT NULL CHECK (rank >= 1),           -- 1 = best; ties share a rank
    PRIMARY KEY (ranking_id, n),
    UNIQUE (ranking_id, run_id)
) WITHOUT ROWID;
CREATE INDEX ranking_items_run ON ranking_items(run_id);

-- migration 3: training runs and their loss curves
CREATE TABLE train_runs (            -- one `qkv train` run into a checkpoint directory (resumes continue it)
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    qkv_version TEXT NOT NULL,
    out_path TEXT NOT NULL,          -- absolute path of the checkpoint directory
    data_path TEXT NOT NULL,         -- absolute path of the text trained on
    model_arch TEXT NOT NULL,
    n_params INTEGER NOT NULL,
    n_threads INTEGER NOT NULL DEFAULT 0,
    options TEXT NOT NULL CHECK (json_valid(options)) -- every option of the command, as JSON
);
CREATE INDEX train_runs_out ON train_runs(out_path);

CREATE TABLE train_points (          -- the loss curve: one row per optimizer step
    run_id INTEGER NOT NULL REFERENCES train_runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL CHECK (step >= 1),
    loss REAL NOT NULL,              -- mean training loss of the step
    val_loss REAL,                   -- held-out loss, NULL when not evaluated at this step
    lr REAL NOT NULL,
    grad_norm REAL NOT NULL,         -- before clipping
    tokens INTEGER NOT NULL,         -- training tokens seen so far
    elapsed_s REAL NOT NULL,         -- seconds since the process started the run
    created TEXT NOT NULL,
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;

-- migration 4: prompt experiments
CREATE TABLE experiments (           -- one experiment: a task, a model, a matrix of conditions
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    finished TEXT,                   -- when its last item was stored; NULL while unfinished
    status TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'stopped', 'done')),
    task TEXT NOT NULL,              -- the task's name
    task_path TEXT NOT NULL,         -- the task file (absolute path)
    task_sha256 TEXT NOT NULL,       -- of its bytes (and its pool file's): resume refuses a changed file
    model_path TEXT NOT NULL,        -- as runs record it
    model_arch TEXT NOT NULL,
    model_sha256 TEXT,
    annotator TEXT,
    qkv_version TEXT NOT NULL,
    command TEXT NOT NULL,           -- the command as typed
    spec TEXT NOT NULL CHECK (json_valid(spec)), -- everything needed to run it again (app/experiment.c)
    n_items INTEGER NOT NULL CHECK (n_items >= 1), -- test items under each condition
    n_conditions INTEGER NOT NULL CHECK (n_conditions >= 1)
);
CREATE INDEX experiments_created ON experiments(created);

CREATE TABLE experiment_conditions ( -- one cell of the matrix, in the order of the table
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL CHECK (idx >= 0),
    shots INTEGER NOT NULL CHECK (shots >= 0),
    cot INTEGER NOT NULL CHECK (cot IN (0, 1)),   -- chain of thought
    samples INTEGER NOT NULL CHECK (samples >= 1), -- self-consistency: runs voted per item
    chat INTEGER NOT NULL CHECK (chat IN (0, 1)), -- the model's chat template
    seed INTEGER NOT NULL,           -- chooses the exemplars and seeds the sampling
    PRIMARY KEY (experiment_id, idx)
) WITHOUT ROWID;

CREATE TABLE experiment_items (      -- one test item under one condition, scored
    experiment_id INTEGER NOT NULL,
    condition INTEGER NOT NULL,
    item INTEGER NOT NULL CHECK (item >= 0), -- 0-based among the task's test items, in file order
    input TEXT NOT NULL,
    target TEXT NOT NULL,
    answer TEXT NOT NULL,            -- extracted, voted or chosen
    correct INTEGER NOT NULL CHECK (correct IN (0, 1)),
    correct_norm INTEGER CHECK (correct_norm IS NULL OR correct_norm IN (0, 1)), -- multiple choice,
                                     --   by length-normalised log-likelihood
    detail TEXT CHECK (detail IS NULL OR json_valid(detail)), -- votes; each choice's log-likelihood
    created TEXT NOT NULL,
    PRIMARY KEY (experiment_id, condition, item),
    FOREIGN KEY (experiment_id, condition) REFERENCES experiment_conditions(experiment_id, idx) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE experiment_runs (       -- the runs of an item: one, or one per self-consistency sample
    experiment_id INTEGER NOT NULL,
    condition INTEGER NOT NULL,
    item INTEGER NOT NULL,
    sample INTEGER NOT NULL CHECK (sample >= 0),
    run_id INTEGER NOT NULL UNIQUE REFERENCES runs(id),
    answer TEXT NOT NULL,            -- extracted from this run
    n_reused INTEGER NOT NULL DEFAULT 0, -- prompt tokens whose keys and values came from the cache
    PRIMARY KEY (experiment_id, condition, item, sample),
    FOREIGN KEY (experiment_id, condition, item) REFERENCES experiment_items(experiment_id, condition, item)
        ON DELETE CASCADE
) WITHOUT ROWID;

-- migration 5: reward models
CREATE TABLE reward_runs (           -- one `qkv reward train` run into a checkpoint directory
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    qkv_version TEXT NOT NULL,
    out_path TEXT NOT NULL,          -- absolute path of the checkpoint directory
    base_path TEXT NOT NULL,         -- the base model as loaded ('builtin' for the built-in one)
    model_arch TEXT NOT NULL,
    head TEXT NOT NULL CHECK (head IN ('linear', 'full', 'lora')),
    options TEXT NOT NULL CHECK (json_valid(options)), -- every option of the command, filters included
    pairs INTEGER NOT NULL,          -- preference pairs from the rankings matched
    train_pairs INTEGER NOT NULL,
    heldout_pairs INTEGER NOT NULL,  -- pairs of the held-out prompts (no prompt on both sides)
    status TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    best_step INTEGER,               -- the step whose weights were kept
    heldout_accuracy REAL            -- at best_step; NULL without held-out pairs
);
CREATE INDEX reward_runs_out ON reward_runs(out_path);

CREATE TABLE reward_points (         -- the curve: one row per evaluation (step 0: before training)
    run_id INTEGER NOT NULL REFERENCES reward_runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL CHECK (step >= 0),
    loss REAL,                       -- mean training loss since the previous point; NULL at step 0
    heldout_loss REAL,
    heldout_accuracy REAL,
    train_accuracy REAL,
    elapsed_s REAL NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;

CREATE TABLE reward_scores (         -- a reward model's score of a logged run (reward score, best_of=)
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    model_path TEXT NOT NULL,        -- the reward model's directory (absolute)
    reward REAL NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (run_id, model_path)
) WITHOUT ROWID;

-- migration 6: linear probe runs
CREATE TABLE probe_runs (            -- one `probe train` sweep over the layers of a model
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    qkv_version TEXT NOT NULL,
    model_path TEXT NOT NULL,        -- absolute ('builtin' for the built-in model)
    model_arch TEXT NOT NULL,
    dataset TEXT NOT NULL,           -- a built-in dataset's name, or the file (absolute)
    level TEXT NOT NULL CHECK (level IN ('token', 'sentence')),
    options TEXT NOT NULL CHECK (json_valid(options)), -- every, seed, steps, lr, l2, n, other
    examples INTEGER NOT NULL,
    n_rows INTEGER NOT NULL,
    n_train INTEGER NOT NULL,
    n_test INTEGER NOT NULL,
    classes TEXT NOT NULL CHECK (json_valid(classes)), -- the class names, in their index order
    majority REAL,                   -- held-out accuracy of the training rows' most frequent class
    best_layer INTEGER NOT NULL,
    expected_layer REAL,             -- NULL when the accuracy never rises
    features_s REAL NOT NULL,
    fit_s REAL NOT NULL
);
CREATE INDEX probe_runs_dataset ON probe_runs(dataset, model_path);

CREATE TABLE probe_layers (          -- one layer of a sweep (0 = the embeddings, l = after block l-1)
    run_id INTEGER NOT NULL REFERENCES probe_runs(id) ON DELETE CASCADE,
    layer INTEGER NOT NULL CHECK (layer >= 0),
    accuracy REAL,                   -- held out; NULL without held-out rows
    train_accuracy REAL,
    control REAL,                    -- held-out accuracy of the probe on shuffled labels
    PRIMARY KEY (run_id, layer)
) WITHOUT ROWID;

-- migration 7: the held-out pairs of a reward model, scored by it
CREATE TABLE reward_heldout (        -- one held-out preference pair of a `reward train` run, scored at its end
    run_id INTEGER NOT NULL REFERENCES reward_runs(id) ON DELETE CASCADE,
    n INTEGER NOT NULL CHECK (n >= 0), -- the pair's place among the run's held-out pairs
    ranking_id INTEGER NOT NULL,     -- the ranking it comes from (the row may be gone since)
    chosen_n INTEGER NOT NULL,       -- the candidates' numbers in that ranking (1-based)
    rejected_n INTEGER NOT NULL,
    tie INTEGER NOT NULL DEFAULT 0,  -- ties=equal: ranked equal
    prompt TEXT NOT NULL,
    chosen TEXT NOT NULL,            -- the completions as they were ranked
    rejected TEXT NOT NULL,
    r_chosen REAL NOT NULL,          -- the rewards of the kept weights (best_step)
    r_rejected REAL NOT NULL,
    PRIMARY KEY (run_id, n)
) WITHOUT ROWID;

-- migration 8: the KV cache's element type of a run (`set kv`): it changes the logits, so replay needs it
ALTER TABLE runs ADD COLUMN kv TEXT NOT NULL DEFAULT 'f32' CHECK (kv IN ('f32', 'f16'));

-- migration 9: the Q8_0 KV cache (`set kv q8_0`) among a run's cache types: the column rebuilt with the wider CHECK, its values kept
ALTER TABLE runs ADD COLUMN kv_type TEXT NOT NULL DEFAULT 'f32' CHECK (kv_type IN ('f32', 'f16', 'q8_0'));
UPDATE runs SET kv_type = kv;
ALTER TABLE runs DROP COLUMN kv;
ALTER TABLE runs RENAME COLUMN kv_type TO kv;

-- migration 10: the process running an experiment ('HOST PID START', base/proc.h), NULL once it stops: a running experiment whose process is gone reads as interrupted, and a second process does not run it too
ALTER TABLE experiments ADD COLUMN owner TEXT;

-- migration 11: the process training a reward model ('HOST PID START', base/proc.h), NULL once it stops: a running reward run whose process is gone reads as interrupted
ALTER TABLE reward_runs ADD COLUMN owner TEXT;

-- migration 12: a reward training stopped with Ctrl-C reads as 'stopped' (it was recorded 'done', and its model became the default reward model): the status column rebuilt with the wider CHECK, its values kept
ALTER TABLE reward_runs ADD COLUMN status_new TEXT NOT NULL DEFAULT 'running' CHECK (status_new IN ('running', 'stopped', 'done', 'failed'));
UPDATE reward_runs SET status_new = status;
ALTER TABLE reward_runs DROP COLUMN status;
ALTER TABLE reward_runs RENAME COLUMN status_new TO status;

-- migration 13: a training run's state (train, dpo train), as reward runs have theirs: 'running' with the process training it ('HOST PID START', base/proc.h; it reads as 'interrupted' once that process is gone), then 'done', 'stopped' (Ctrl-C: train resumes after its saved step) or 'failed' (an error ended it); NULL for runs recorded before this migration (not known)
ALTER TABLE train_runs ADD COLUMN status TEXT CHECK (status IN ('running', 'stopped', 'done', 'failed'));
ALTER TABLE train_runs ADD COLUMN owner TEXT;
