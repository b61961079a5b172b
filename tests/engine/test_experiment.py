#!/usr/bin/env python3
"""Prompt experiments through the real binary, headless, on the built-in model.

tasks and prompt show (the GPT-3 format rebuilt from the task file in Python, the token count
as qkv's tokenize command gives it, exemplars reproducible and never the test item); an experiment logs exactly one
run per item x condition (x sample), and its table is recomputed here from the exported JSON
and from the database with SQL (accuracy, standard error); experiment show / compare (the
paired comparison recomputed with Python's math: McNemar exact and chi-squared); multiple
choice log-likelihoods equal the sum of log-softmaxed `logits full=true` on the same text, and
prefix reuse gives the same scores as recomputation; chain of thought and self-consistency runs
carry their mode and votes; CSV exports and `save` of the bars; resume after SIGINT and after
SIGKILL runs only the missing items and ends with the table of an uninterrupted run (killed, it
reads as interrupted); a second process refuses to run an experiment the first runs; bad input
gives one error line and a non-zero exit, never a crash.

Usage: test_experiment.py QKV_BINARY
"""
import csv
import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
import qkv_cli  # noqa: E402
from statsref import newcombe_paired95, wilson95  # noqa: E402

QKV = sys.argv[1]
TMP = qkv_cli.scratch_dir("qkv-exp-")
DB = os.path.join(TMP, "qkv.db")
SRC = os.environ.get("QKV_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
TASKS = os.path.join(SRC, "data", "tasks")
failures = 0


def run(cmd, db=DB, timeout=300):
    return subprocess.run([QKV, "--db", db, "--json", "-e", cmd], capture_output=True, timeout=timeout)


def check(cond, what, got=None):
    global failures
    if not cond:
        failures += 1
        print(f"FAIL: {what}" + (f"\n  got: {got!r}" if got is not None else ""))
    return cond


def one(cmd, db=DB):
    p = run(cmd, db)
    if not check(p.returncode == 0, f"'{cmd}' succeeds", p.stderr.decode()[-2000:]):
        return {}
    return json.loads(p.stdout.decode().rstrip("\n").split("\n")[-1])


def fails(cmd, want):
    p = run(cmd)
    err = p.stderr.decode()
    check(p.returncode == 1 and "error: " in err and want in err, f"'{cmd}' fails with '{want}'",
          (p.returncode, err[-400:]))


def q(s):
    """s as a quoted argument of the command language (C escapes)."""
    return json.dumps(s, ensure_ascii=False)


def task_lines(name):
    with open(os.path.join(TASKS, name + ".jsonl"), encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def stderr_of(k, n):
    return math.sqrt((k / n) * (1 - k / n) / (n - 1)) if n > 1 else None


# ---- tasks and prompt show -------------------------------------------------------------------
t = one("tasks")
names = [x["name"] for x in t.get("tasks", [])]
check(names == ["arith", "cipher", "en-fr", "odd-one-out", "pattern", "sentiment", "sort",
                "teach-arith", "teach-cipher", "teach-list", "teach-words"], "the shipped tasks", names)
enfr = task_lines("en-fr")
head, items = enfr[0], enfr[1:]
pool = [x for x in items if x.get("split") == "pool"]
test = [x for x in items if x.get("split") != "pool"]
info = [x for x in t["tasks"] if x["name"] == "en-fr"][0]
check((info["n_test"], info["n_pool"]) == (len(test), len(pool)), "tasks counts the items", info)

shown = {}
for item in (0, 5):
    for shots in (1, 3):
        p = one(f"prompt show en-fr shots={shots} seed=5 item={item}")
        shown[(item, shots)] = p
        want = head["description"] + "\n"
        for ex in p["exemplars"]:
            want += f"{ex['input']} => {ex['target']}\n"
            check(ex["input"] != test[item]["input"], "an exemplar is never the test item", ex)
            check({"input": ex["input"], "target": ex["target"], "split": "pool"} in pool, "exemplars come from the pool", ex)
        want += test[item]["input"] + " =>"
        check(p["text"] == want, f"prompt show item={item} shots={shots}: the GPT-3 format", (p["text"], want))
        tok = one(f"tokenize {q(p['text'])}")
        check(p["n_tokens"] == len(tok["ids"]), "n_tokens is what tokenize counts", (p["n_tokens"], len(tok["ids"])))
        check(p["input"] == test[item]["input"] and p["target"] == test[item]["target"], "the item's input and target")
check(shown[(0, 3)]["exemplars"] == shown[(5, 3)]["exemplars"], "the same seed, the same exemplars for every item")
check(shown[(0, 1)]["exemplars"] == shown[(0, 3)]["exemplars"][:1], "one shot is the first of three")
other = one("prompt show en-fr shots=3 seed=6 item=0")
check(other["exemplars"] != shown[(0, 3)]["exemplars"], "another seed, other exemplars")
z = one("prompt show arith cot=on item=2")
check(z["text"].endswith("\nA: Let's think step by step.") and z["mode"] == "zero-shot-cot", "zero-shot chain of thought", z.get("text"))
f = one("prompt show arith cot=on shots=2 item=2")
check(f["text"].count("The answer is") == 2 and f["mode"] == "few-shot-cot", "few-shot chain of thought shows rationales")
d = one('prompt show en-fr shots=1 item=0 description="Say it in French." delimiter=" ->"')
check(d["text"].startswith("Say it in French.\n") and " -> " in d["text"] and d["text"].endswith(" ->"), "style options", d.get("text"))

# the shipped arith task is sound: each step of each rationale is right, no count goes below zero,
# and the target is the last step's result (line 15 once lost 8 stickers of 6, target -2)
for ln, it in enumerate(task_lines("arith")[1:], 2):
    steps = re.findall(r"((?:\d+ [x+-] )+\d+) = (-?\d+)", it.get("rationale", ""))  # "15 + 2 + 4 = 21"
    sound = bool(steps) and steps[-1][1] == it["target"] and int(it["target"]) >= 0
    for expr, r in steps:
        sound &= eval(expr.replace("x", "*")) == int(r) >= 0
    check(sound, f"arith.jsonl line {ln}: every step right, no count below zero, the target the last result", it)

# ---- an experiment: one run per item x condition, the table recomputed -------------------------
x = one("experiment en-fr shots=0,1,3 seeds=1,2 limit=4")
eid = x.get("experiment_id")
check(x.get("total") == 24 and x.get("done_now") == 24 and x.get("status") == "done", "the experiment ran 24 items", x)
check([(c["shots"], c["cot"], c["seed"]) for c in x["conditions"]] ==
      [(0, False, 1), (0, False, 2), (1, False, 1), (1, False, 2), (3, False, 1), (3, False, 2)], "the conditions in order")
exp = os.path.join(TMP, "e.json")
e = one(f"export experiment {eid} {exp}")
check(e.get("count") == 24, "24 items exported", e)
with open(exp, encoding="utf-8") as fh:
    doc = json.load(fh)
check(doc["experiment"]["experiment_id"] == eid and len(doc["items"]) == 24, "the export holds the experiment")
for c in x["conditions"]:
    its = [i for i in doc["items"] if i["condition"] == c["condition"]]
    k = sum(i["correct"] for i in its)
    check(c["n"] == len(its) == 4 and c["correct"] == k, "n and correct per condition", c)
    check(abs(c["accuracy"] - k / len(its)) < 1e-8, "accuracy from the items", c)
    se = stderr_of(k, len(its))
    check(abs(c["stderr"] - se) < 1e-8, "stderr = sqrt(p(1-p)/(n-1)) from the items", (c["stderr"], se))
    lo, hi = wilson95(k, len(its))
    check(abs(c.get("ci_low", -1) - lo) < 1e-8 and abs(c.get("ci_high", -1) - hi) < 1e-8,
          "ci_low, ci_high: the 95% Wilson interval of the items", (c.get("ci_low"), c.get("ci_high"), lo, hi))
# the untrained model gets none right somewhere: an interval at 0/n (or n/n) has width, where
# accuracy -+ 1.96 stderr gave [0, 0]
edge = [c for c in x["conditions"] if c["correct"] in (0, c["n"])]
check(edge and all(c.get("ci_high", 0) - c.get("ci_low", 0) > 0.3 for c in edge), "0/n and n/n: intervals of some width",
      edge)
con = sqlite3.connect(DB)
con.text_factory = lambda b: b.decode("utf-8", "replace")  # an untrained model writes any bytes
rows = con.execute("SELECT c.idx, count(i.item), sum(i.correct) FROM experiment_conditions c JOIN experiment_items i "
                   "ON i.experiment_id = c.experiment_id AND i.condition = c.idx WHERE c.experiment_id = ? "
                   "GROUP BY c.idx ORDER BY c.idx", (eid,)).fetchall()
check(rows == [(c["condition"], c["n"], c["correct"]) for c in x["conditions"]], "the table recomputed with SQL", rows)
nrun = con.execute("SELECT count(*), count(DISTINCT r.run_id) FROM experiment_runs r JOIN runs u ON u.id = r.run_id "
                   "WHERE r.experiment_id = ? AND u.kind = 'experiment'", (eid,)).fetchone()
check(nrun == (24, 24), "exactly one logged run (kind experiment) per item x condition", nrun)
for inp, ex, mode in con.execute("SELECT i.input, u.exemplars, u.mode FROM experiment_items i JOIN experiment_runs r "
                                 "USING (experiment_id, condition, item) JOIN runs u ON u.id = r.run_id "
                                 "WHERE i.experiment_id = ?", (eid,)):
    check(all(e["input"] != inp for e in json.loads(ex)), "no run's exemplars include its test item", (inp, ex))
    check(mode in ("zero-shot", "one-shot", "few-shot"), "the run's mode", mode)
# the runs are the prompts prompt show renders
pr = con.execute("SELECT u.prompt FROM experiment_runs r JOIN runs u ON u.id = r.run_id WHERE r.experiment_id = ? "
                 "AND r.condition = 4 AND r.item = 2", (eid,)).fetchone()[0]
check(pr == one("prompt show en-fr shots=3 seed=1 item=2")["text"], "the logged prompt is the one prompt show gives")
s = one(f"experiment show {eid}")
check(s.get("conditions") == x["conditions"] and s.get("n_done") == 24, "experiment show gives the same table")
si = one(f"experiment show {eid} item=1 condition=2")
check(si.get("input") == test[1]["input"] and len(si.get("runs", [])) == 1, "experiment show item=K", si)
if si.get("runs"):
    r0 = si["runs"][0]
    lp = json.loads(con.execute("SELECT logprobs FROM runs WHERE id = ?", (r0["run_id"],)).fetchone()[0])
    check([t["logprob"] for t in r0["tokens"]] == lp, "the item's tokens carry the run's log-probabilities")
    check(r0["prompt"].startswith("Translate English to French:\n") and r0["prompt"].endswith(test[1]["input"] + " =>"),
          "the item's exact prompt")
ls = one("experiments")
check(ls["experiments"][0]["experiment_id"] == eid and ls["experiments"][0]["status"] == "done", "experiments lists it")
check(one("experiments en-fr")["experiments"] and not one("experiments nothing-like-this")["experiments"], "experiments TEXT filters")

# the paired comparison against Python
cmp_ = one(f"experiment compare {eid} 0 4")
a = {i["item"]: i["correct"] for i in doc["items"] if i["condition"] == 0}
b = {i["item"]: i["correct"] for i in doc["items"] if i["condition"] == 4}
both = sum(a[k] and b[k] for k in a); a_only = sum(a[k] and not b[k] for k in a)
b_only = sum(b[k] and not a[k] for k in a); neither = sum(not a[k] and not b[k] for k in a)
check((cmp_["both"], cmp_["a_only"], cmp_["b_only"], cmp_["neither"], cmp_["n"]) == (both, a_only, b_only, neither, 4),
      "compare counts the pairs", cmp_)
dd = a_only + b_only
p_exact = min(1.0, 2 * sum(math.comb(dd, i) for i in range(min(a_only, b_only) + 1)) / 2 ** dd) if dd else 1.0
check(abs(cmp_["p_exact"] - p_exact) < 1e-8, "McNemar's exact p", (cmp_["p_exact"], p_exact))
check(abs(cmp_["diff"] - (b_only - a_only) / 4) < 1e-8, "the difference", cmp_)
nlo, nhi = newcombe_paired95(both, a_only, b_only, neither)
check(abs(cmp_["ci_low"] - nlo) < 1e-8 and abs(cmp_["ci_high"] - nhi) < 1e-8, "the difference's 95% interval: "
      "Newcombe's (Wald's went past 1 and was a point at 0/n against n/n)", (cmp_["ci_low"], cmp_["ci_high"], nlo, nhi))
# no item scored under both (a condition not run yet): an error, not a table of NaN with p = 1
nb = one("experiment en-fr shots=0,1 limit=2 new=true")
con.execute("DELETE FROM experiment_items WHERE experiment_id = ? AND condition = 1", (nb.get("experiment_id"),))
con.commit()
fails(f"experiment compare {nb.get('experiment_id')} 0 1", "no item of experiment")

# McNemar and the interval on made-up outcomes: a task whose items the model cannot get right
# except by the cipher's identity... instead check the formulas on the exported 0/1 vectors
diffs = [b[k] - a[k] for k in sorted(a)]
m = sum(diffs) / len(diffs)
se = math.sqrt(sum((v - m) ** 2 for v in diffs) / len(diffs) / len(diffs))
check(abs(cmp_["se"] - se) < 1e-8, "the difference's standard error", cmp_)

# CSV export and the bars
csvf = os.path.join(TMP, "e.csv")
one(f"export experiment {eid} {csvf}")
with open(csvf, newline="", encoding="utf-8", errors="replace") as fh:
    rows = list(csv.DictReader(fh))
check(len(rows) == 24 and list(rows[0].keys())[:4] == ["experiment_id", "task", "condition", "shots"], "the CSV export")
check(sum(r["correct"] == "true" for r in rows) == sum(c["correct"] for c in x["conditions"]), "the CSV's scores")
bars = os.path.join(TMP, "bars.csv")
p = subprocess.run([QKV, "--db", DB, "--json", "-e", f"experiment show {eid}; save {bars}"], capture_output=True)
check(p.returncode == 0, "save after experiment show", p.stderr)
with open(bars, newline="") as fh:
    br = list(csv.reader(fh))
check(len(br) == 7 and br[1][0] == "shots=0 cot=off seed=1", "the bars: one row per condition", br[:2])
check(br and br[0] == ["condition", "n", "accuracy", "stderr", "ci_low", "ci_high"], "the bars' columns", br[:1])
for row, c in zip(br[1:], x["conditions"]):
    check(int(float(row[1])) == c["n"] and abs(float(row[2]) - c["accuracy"]) < 1e-6, "a bar's n and accuracy", (row, c))
    lo, hi = wilson95(c["correct"], c["n"])
    check(abs(float(row[4]) - lo) < 1e-6 and abs(float(row[5]) - hi) < 1e-6, "a bar's 95% interval: Wilson's", (row, lo, hi))
svg = os.path.join(TMP, "bars.svg")
p = subprocess.run([QKV, "--db", DB, "-e", f"experiment show {eid}; save {svg}"], capture_output=True)
svgt = open(svg).read() if os.path.exists(svg) else ""
check(p.returncode == 0 and svgt.startswith("<?xml") and all(f"shots={k} cot=off seed={s}" in svgt for k in (0, 1, 3) for s in (1, 2)),
      "the bars as SVG: a label per condition", (p.stderr, svgt[:300]))

# ---- multiple choice: log-likelihoods against logits, reuse against recomputation --------------
mc1 = one("experiment odd-one-out shots=0,1 limit=3 reuse=off")
mc2 = one("experiment odd-one-out shots=0,1 limit=3 reuse=on")
check(mc1["experiment_id"] != mc2["experiment_id"], "reuse=on is another experiment")
check(mc2.get("tokens_reused", 0) > 0 and mc1.get("tokens_reused") == 0, "prefix reuse keeps tokens", (mc1.get("tokens_reused"), mc2.get("tokens_reused")))
det = {}
for mc in (mc1, mc2):
    f = os.path.join(TMP, f"mc{mc['experiment_id']}.json")
    one(f"export experiment {mc['experiment_id']} {f}")
    with open(f) as fh:
        det[mc["experiment_id"]] = json.load(fh)["items"]
for i1, i2 in zip(det[mc1["experiment_id"]], det[mc2["experiment_id"]]):
    for c1, c2 in zip(i1["detail"]["choices"], i2["detail"]["choices"]):
        check(abs(c1["logprob"] - c2["logprob"]) < 1e-3, "prefix reuse gives the scores of recomputation", (c1, c2))
    check(i1["answer"] == i2["answer"], "the same choice with and without reuse")
# each item's run says how much of its prompt came from the cache (it said 0 for every one)
mc_reused = [it["runs"][0]["n_reused"] for it in det[mc2["experiment_id"]]]
check(all(r == 0 for it in det[mc1["experiment_id"]] for r in [it["runs"][0]["n_reused"]])
      and sum(mc_reused) > 0 and mc_reused[1] > 0, "multiple choice: a run's n_reused with reuse=on", mc_reused)
# generation: the same answers and per-token log-probabilities with the prefix kept as recomputed
g1 = one("experiment en-fr shots=3 limit=4 reuse=off")
g2 = one("experiment en-fr shots=3 limit=4 reuse=on")
check(g2.get("tokens_reused", 0) > 0 and g1.get("tokens_reused") == 0, "generation: prefix reuse keeps tokens",
      (g1.get("tokens_reused"), g2.get("tokens_reused")))
for k in range(4):
    s1 = one(f"experiment show {g1['experiment_id']} item={k} condition=0")
    s2 = one(f"experiment show {g2['experiment_id']} item={k} condition=0")
    r1, r2 = s1["runs"][0], s2["runs"][0]
    check(r1["n_reused"] == 0 and (k == 0 or r2["n_reused"] > 0), "item %d: reused tokens" % k, (r1["n_reused"], r2["n_reused"]))
    check(r1["text"] == r2["text"] and [t["id"] for t in r1["tokens"]] == [t["id"] for t in r2["tokens"]],
          "item %d: the same output with and without reuse" % k, (r1["text"], r2["text"]))
    for t1, t2 in zip(r1["tokens"], r2["tokens"]):
        check(abs(t1["logprob"] - t2["logprob"]) < 1e-4, "item %d: a token's log-probability with reuse" % k, (t1, t2))
it = det[mc1["experiment_id"]][0]
prompt = it["runs"][0]["prompt"]
pids = one(f"tokenize {q(prompt)}")["ids"]
for ch in it["detail"]["choices"]:
    full = prompt + " " + ch["text"]
    lg = one(f"logits {q(full)} full=true top=1")
    ids, L = lg["ids"], lg["logits"]
    k = 0
    while k < len(ids) and k < len(pids) and ids[k] == pids[k]:
        k += 1
    tot = 0.0
    for pos in range(k, len(ids)):
        row = L[pos - 1]
        mx = max(row)
        lse = mx + math.log(sum(math.exp(v - mx) for v in row))
        tot += row[ids[pos]] - lse
    check(abs(tot - ch["logprob"]) < 1e-3, "a choice's log-likelihood is the sum from logits", (tot, ch))
    check(ch["tokens"] == len(ids) - k, "a choice's token count", (ch, len(ids) - k))
    check(abs(ch["logprob_norm"] - ch["logprob"] / len(ch["text"])) < 1e-6 * abs(ch["logprob"]), "length-normalised by characters", ch)
best = max(range(len(it["detail"]["choices"])), key=lambda j: (it["detail"]["choices"][j]["logprob"], -j))
check(it["detail"]["pick"] == best and it["answer"] == it["detail"]["choices"][best]["text"], "the pick is the best choice")

# ---- chain of thought and self-consistency ------------------------------------------------------
cot = one("experiment arith cot=off,on limit=2 max=12")  # few-shot rationales exceed the built-in model's context
check(cot.get("total") == 4, "a chain-of-thought experiment", cot)
modes = {r[0] for r in con.execute("SELECT u.mode FROM experiment_runs r JOIN runs u ON u.id = r.run_id "
                                   "WHERE r.experiment_id = ?", (cot["experiment_id"],))}
check(modes == {"zero-shot", "zero-shot-cot"}, "their runs' modes", modes)
trig = con.execute("SELECT count(*) FROM experiment_runs r JOIN runs u ON u.id = r.run_id WHERE r.experiment_id = ? "
                   "AND u.prompt LIKE '%A: Let''s think step by step.'", (cot["experiment_id"],)).fetchone()[0]
check(trig == 2, "the chain-of-thought runs end with the trigger", trig)
sc = one("experiment en-fr sc=3 temperature=0.9 limit=2")
n = con.execute("SELECT count(*) FROM experiment_runs WHERE experiment_id = ?", (sc["experiment_id"],)).fetchone()[0]
check(n == 6, "self-consistency: three runs per item", n)
scf = os.path.join(TMP, "sc.json")
one(f"export experiment {sc['experiment_id']} {scf}")
with open(scf) as fh:
    for i in json.load(fh)["items"]:
        check(len(i["detail"]["answers"]) == 3 and i["answer"] in i["detail"]["answers"], "the vote's answers", i["detail"])

# ---- replay of an experiment's runs --------------------------------------------------------------
# a run that stopped at the task's separator replays identical: it once ran on to max= and was
# reported DIFFERENT (the separator is the task's, not a parameter of the run); "e" as the
# separator and 40 tokens, so that the built-in model's runs stop there (3 of 12 with seeds 1, 2)
spf = os.path.join(TMP, "sep.jsonl")
with open(spf, "w") as fh:
    fh.write(json.dumps({"name": "sep", "description": "Say it:", "scorer": "exact", "max_tokens": 40,
                         "separator": "e"}) + "\n")
    for w in ("two", "four", "six", "ant", "cow", "dog"):  # (no "e": a target holding the separator is refused)
        fh.write(json.dumps({"input": w, "target": w}) + "\n")
sp = one(f"experiment {spf} shots=0 seeds=1,2 temperature=1")
stopped = [r[0] for r in con.execute("SELECT u.id FROM experiment_runs r JOIN runs u ON u.id = r.run_id WHERE "
                                     "r.experiment_id = ? AND u.stop_reason = 'separator' ORDER BY u.id",
                                     (sp.get("experiment_id"),))]
check(len(stopped) >= 2, "runs that stopped at the separator", len(stopped))
for rid in stopped[:3]:
    rp = one(f"replay {rid}")
    check(rp.get("identical") is True and rp.get("first_difference") is None, f"replay of separator-stopped run {rid}",
          {k: rp.get(k) for k in ("identical", "first_difference", "original_text", "text")})

# ---- pool=FILE: the exemplars come from the file alone, which may have a header ------------------
# (a header line was refused as "must come first" although it was first, and the task's own pool
# stayed in the draw beside the file's)
pf = os.path.join(TMP, "pool.jsonl")
with open(pf, "w") as fh:
    fh.write(json.dumps({"name": "other", "description": "Something else:"}) + "\n")
    fh.write(json.dumps({"input": "dog", "target": "chien"}) + "\n")
    fh.write(json.dumps({"input": "cat", "target": "chat"}) + "\n")
for seed in (1, 2, 3):
    ps = one(f"prompt show en-fr shots=2 seed={seed} pool={pf}")
    ex = sorted(e.get("input") for e in ps.get("exemplars", []))
    check(ex == ["cat", "dog"] and ps.get("text", "").startswith("Translate English to French:"),
          f"pool=FILE (seed {seed}): the file's two items, the task's own description", (ex, ps.get("text", "")[:40]))
fails(f"prompt show en-fr shots=3 pool={pf}", "3-shot prompts need 3 exemplars")

# ---- too few exemplars for an item: the pool's size, how many serve the item and why ------------
# (a pool of 5 one of which has a test item's input was said to hold 4; nothing runs before it)
capf = os.path.join(TMP, "cap.jsonl")
with open(capf, "w") as fh:
    fh.write(json.dumps({"name": "capitals", "description": "Give the capital city of each country."}) + "\n")
    for c, t in (("France", "Paris"), ("Germany", "Berlin"), ("Japan", "Tokyo"), ("Spain", "Madrid"), ("Italy", "Rome")):
        fh.write(json.dumps({"input": c, "target": t, "split": "pool"}) + "\n")
    for c, t in (("Egypt", "Cairo"), ("Peru", "Lima"), ("France", "Paris")):
        fh.write(json.dumps({"input": c, "target": t}) + "\n")
why = ("5-shot prompts need 5 exemplars, but task 'capitals' has 5 exemplars in its pool and only 4 are usable for "
       "this item: 1 has the item's own input \"France\"")
cdb = os.path.join(TMP, "cap.db")
p = run(f"experiment {capf} shots=5", db=cdb)
check(p.returncode == 1 and f"item 2 (line 9): {why}" in p.stderr.decode(), "experiment: too few exemplars for item 2, "
      "said exactly", p.stderr.decode()[-400:])
c = sqlite3.connect(cdb)
try:
    n_cap = c.execute("SELECT count(*) FROM experiment_items").fetchone()[0]
except sqlite3.Error:  # no database written at all
    n_cap = 0
c.close()
check(n_cap == 0, "the refused experiment ran nothing", n_cap)
fails(f"prompt show {capf} shots=5 item=2", f"prompt show: item 2 (line 9): {why}")
check(one(f"prompt show {capf} shots=5 item=1").get("n_tokens", 0) > 0, "prompt show: item 1 gets its 5 shots")
fails(f"experiment {capf} shots=6", "6-shot prompts need 6 exemplars, but task 'capitals' has 5 exemplars in its pool")

# ---- the number scorer: a target must hold a number -------------------------------------------
nf = os.path.join(TMP, "num.jsonl")
with open(nf, "w") as fh:
    fh.write(json.dumps({"name": "num", "scorer": "number", "description": "Count:"}) + "\n")
    fh.write(json.dumps({"input": "one", "target": "1"}) + "\n")
    fh.write(json.dumps({"input": "twelve", "target": "twelve"}) + "\n")
# the item as item= numbers it (from 0) and its line (it said "test item 2", item=1's)
fails(f"experiment {nf} shots=0", "test item 1 (line 3): its target \"twelve\" holds no number")
# a regex is POSIX extended: Perl's \d (read as the letter d) is refused, not run to accuracy 0
fails(f"experiment {nf} shots=0 scorer=regex regex=" + q("([0-9]+)\\d"), "\\d is Perl's, not POSIX extended syntax")
fails(f"experiment {nf} shots=0 scorer=regex regex=" + q("\\D+"), "write [^0-9]")
check(one(f"experiment {nf} shots=0 scorer=regex regex=" + q("([0-9]+)\\\\d")).get("status") == "done",
      "an escaped backslash before d is POSIX's own")
# a GSM8K-style file is scored as numbers unless its header or scorer= says otherwise ("6 + 1 = 7
# cats" was wrong for 7 under the exact scorer it got)
gdir = os.path.join(TMP, "gsm-tasks")
os.makedirs(gdir)
gf = os.path.join(gdir, "gsm.jsonl")
with open(gf, "w") as fh:
    fh.write(json.dumps({"question": "Ann has 6 cats and gets 1 more. How many cats does she have?",
                         "answer": "6 + 1 = <<6+1=7>>7\n#### 7"}) + "\n")
    fh.write(json.dumps({"question": "Is 7 odd?", "answer": "7 is odd.\n#### yes"}) + "\n")
p = subprocess.run([QKV, "--db", DB, "--json", "-e", "tasks"], capture_output=True, timeout=60,
                   env=dict(os.environ, QKV_TASKS=gdir))
listed = json.loads(p.stdout.decode()).get("tasks", []) if p.returncode == 0 else []
check([(x.get("layout"), x.get("scorer")) for x in listed] == [("gsm8k", "number")], "tasks: a GSM8K-style file's "
      "scorer is number", (p.stderr, listed))
fails(f"experiment {gf} shots=0", "test item 1 (line 2): its target \"yes\" holds no number (give another scorer=)")
# a task is found by the name `tasks` lists, its header's (it was listed under that name and then
# not found by it); a file in the folder that is no task is named, the others still listed (one
# such file made `tasks` fail, listing nothing); a second header line is refused (it silently
# replaced the first's name and scorer) (all before 2026-12-07)
ndir = os.path.join(TMP, "named-tasks")
os.makedirs(ndir)
with open(os.path.join(ndir, "mini.jsonl"), "w") as fh:
    fh.write(json.dumps({"name": "capitals", "description": "Capital cities", "scorer": "exact"}) + "\n")
    fh.write(json.dumps({"input": "France", "target": "Paris"}) + "\n")
with open(os.path.join(ndir, "broken.jsonl"), "w") as fh:
    fh.write('{"input": "a", "target": "b"}\n[1, 2]\n')
with open(os.path.join(ndir, "twohead.jsonl"), "w") as fh:
    fh.write('{"name": "h", "scorer": "number"}\n{"name": "h2", "scorer": "contains"}\n{"input": "a", "target": "b 5"}\n')
nenv = dict(os.environ, QKV_TASKS=ndir)
p = subprocess.run([QKV, "--db", DB, "--json", "-e", "tasks"], capture_output=True, timeout=60, env=nenv)
doc = json.loads(p.stdout.decode()) if p.returncode == 0 else {}
bad_listed = sorted(os.path.basename(x.get("path", "")) for x in doc.get("unreadable", []))
check([x.get("name") for x in doc.get("tasks", [])] == ["capitals"] and bad_listed == ["broken.jsonl", "twohead.jsonl"]
      and any("line 2: a second header line" in x.get("error", "") for x in doc.get("unreadable", [])),
      "tasks lists the readable tasks and names the others", (p.returncode, p.stderr, doc))
p = subprocess.run([QKV, "--db", DB, "-e", "tasks"], capture_output=True, timeout=60, env=nenv)
check(p.returncode == 0 and b"broken.jsonl   cannot be read:" in p.stdout and b"capitals" in p.stdout,
      "tasks in text: the unreadable file named", (p.returncode, p.stdout, p.stderr))
p = subprocess.run([QKV, "--db", DB, "--json", "-e", "prompt show capitals"], capture_output=True, timeout=60, env=nenv)
check(p.returncode == 0 and b"France" in p.stdout, "a task found by its header's name", (p.returncode, p.stderr))
# seed= beside seeds=: one was dropped silently
fails("experiment sort shots=0 seed=3 seeds=4 limit=1", "seed= and seeds= name the same setting")
check(one(f"experiment {gf} shots=0 scorer=exact").get("status") == "done", "scorer=exact overrides it")

# ---- resume after SIGINT and after SIGKILL -----------------------------------------------------
CMD = "experiment sort shots=0,1,3 seeds=1,2,3 limit=20"
TOTAL = 9 * 20


def stored(db):
    c = sqlite3.connect(db)
    try:
        return c.execute("SELECT count(*) FROM experiment_items").fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        c.close()


ref_db = os.path.join(TMP, "ref.db")
ref = one(CMD, ref_db)
check(ref.get("done_now") == TOTAL, "the uninterrupted run", ref.get("done_now"))
for sig in (signal.SIGINT, signal.SIGKILL):
    db = os.path.join(TMP, f"resume-{sig}.db")
    proc = subprocess.Popen([QKV, "--db", db, "--json", "-e", CMD], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.time()
    while stored(db) < 30 and time.time() - t0 < 120 and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    c = sqlite3.connect(db)
    c.text_factory = lambda b: b.decode("utf-8", "replace")
    before = c.execute("SELECT condition, item, answer, correct FROM experiment_items ORDER BY 1, 2").fetchall()
    runs_before = c.execute("SELECT id, prompt, output FROM runs ORDER BY id").fetchall()
    status = c.execute("SELECT status FROM experiments").fetchone()[0]
    orphans = c.execute("SELECT count(*) FROM runs WHERE id NOT IN (SELECT run_id FROM experiment_runs)").fetchone()[0]
    c.close()
    check(0 < len(before) < TOTAL, f"{sig.name} stopped it midway", len(before))
    check(orphans == 0, f"{sig.name}: no run without its item (an item is stored whole or not at all)", orphans)
    if sig == signal.SIGINT:
        check(proc.returncode in (1, 130) and b"stopped after" in err and status == "stopped", "Ctrl-C: stopped, resumable",
              (proc.returncode, err[-300:], status))
        # --json: the error, and beside it the experiment's id and the table of the items done (it
        # was {"error"} alone: a script could not tell which experiment to resume)
        try:
            res = json.loads(out.decode().strip().split("\n")[-1])
        except ValueError:
            res = {}
        conds = res.get("conditions") or []
        check("stopped after" in str(res.get("error")) and res.get("experiment_id") == 1 and
              res.get("status") == "stopped" and res.get("stopped") is True and
              sum(cd.get("n", 0) for cd in conds) == len(before) and res.get("n_done") == len(before),
              "Ctrl-C, --json: the error with the experiment's id and the partial table",
              (out[-400:], len(before)))
        # the last progress line says it stopped short (it said "0:00 left", as a finished run's)
        last = [l for l in err.decode(errors="replace").split("\n") if "%)" in l and "after" in l][-1:]
        check(last and last[0].endswith(", stopped") and "0:00 left" not in last[0], "Ctrl-C: the last progress line "
              "says stopped", last)
    else:  # stored as running, its process gone: read back as interrupted (migration 10's owner)
        listed = one("experiments", db).get("experiments") or [{}]
        shown = one("experiment show 1", db)
        check(proc.returncode == -9 and status == "running" and listed[0].get("status") == "interrupted" and
              shown.get("status") == "interrupted", "SIGKILL: the experiment reads as interrupted",
              (proc.returncode, status, listed[0].get("status"), shown.get("status")))
        found = one("experiments interrupted", db).get("experiments") or []
        check([x.get("experiment_id") for x in found] == [1], "experiments interrupted finds it", found)
    again = one(CMD, db)
    check(again.get("resumed") is True and again.get("experiment_id") == 1, f"{sig.name}: the same command resumes it", again)
    check(again.get("done_before") == len(before) and again.get("done_now") == TOTAL - len(before),
          f"{sig.name}: only the missing items run", (again.get("done_before"), again.get("done_now")))
    c = sqlite3.connect(db)
    c.text_factory = lambda b: b.decode("utf-8", "replace")
    runs_after = c.execute("SELECT id, prompt, output FROM runs ORDER BY id").fetchall()
    after = c.execute("SELECT condition, item, answer, correct FROM experiment_items ORDER BY 1, 2").fetchall()
    nexp = c.execute("SELECT count(*) FROM experiments").fetchone()[0]
    per = c.execute("SELECT count(*), count(DISTINCT condition || ',' || item) FROM experiment_runs").fetchone()
    c.close()
    check(runs_after[:len(runs_before)] == runs_before, f"{sig.name}: the runs stored before are untouched")
    check(per == (TOTAL, TOTAL) and len(runs_after) == TOTAL and nexp == 1, f"{sig.name}: one run per item, one experiment",
          (per, len(runs_after), nexp))
    check(again.get("conditions") == ref.get("conditions"), f"{sig.name}: the resumed table is the uninterrupted one",
          (again.get("conditions"), ref.get("conditions")))
    rc = sqlite3.connect(ref_db)
    rc.text_factory = lambda b: b.decode("utf-8", "replace")
    ref_items = rc.execute("SELECT condition, item, answer, correct FROM experiment_items ORDER BY 1, 2").fetchall()
    rc.close()
    check(after == ref_items, f"{sig.name}: every resumed answer is the uninterrupted one")
    fin = again.get("finished")
    r2 = one("experiment resume 1", db)
    check(r2.get("done_now") == 0 and r2.get("done_before") == TOTAL, "resuming a finished experiment runs nothing", r2)
    check(fin and r2.get("finished") == fin and r2.get("status") == "done",
          "resuming a finished experiment leaves it as it was (its finishing time too)", (fin, r2.get("finished")))
    n2 = one(CMD + " new=true", db)
    check(n2.get("experiment_id") == 2 and n2.get("resumed") is False, "new=true starts afresh", n2.get("experiment_id"))

# stopped under new=true: the same command would start another, so only resume ID is offered
db = os.path.join(TMP, "resume-new.db")
proc = subprocess.Popen([QKV, "--db", db, "--json", "-e", CMD + " new=true"], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)
t0 = time.time()
while stored(db) < 30 and time.time() - t0 < 120 and proc.poll() is None:
    time.sleep(0.02)
proc.send_signal(signal.SIGINT)
out, err = proc.communicate(timeout=120)
msg = [l for l in err.decode(errors="replace").split("\n") if l.startswith("error: ")]
check(msg and "stopped after" in msg[0] and "(experiment resume 1, to finish it)" in msg[0]
      and "same command" not in msg[0], "Ctrl-C under new=true: experiment resume offered, not the command", msg)
# ---- two processes: the second does not run an experiment the first is running -----------------
db = os.path.join(TMP, "two.db")
proc = subprocess.Popen([QKV, "--db", db, "--json", "-e", CMD], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
t0 = time.time()
while stored(db) < 10 and time.time() - t0 < 120 and proc.poll() is None:
    time.sleep(0.02)
listed = one("experiments", db).get("experiments") or [{}]
check(listed[0].get("status") == "running", "a running experiment reads as running", listed[0].get("status"))
for cmd in ("experiment resume 1", CMD):
    p = run(cmd, db)
    err = p.stderr.decode()
    check(p.returncode == 1 and f"experiment 1 is running in process {proc.pid}" in err, f"'{cmd}' while another "
          "process runs it: refused, naming the process", (p.returncode, err[-400:]))
proc.send_signal(signal.SIGINT)
proc.communicate(timeout=120)
again = one(CMD, db)
check(again.get("resumed") is True and again.get("done_before", 0) + again.get("done_now", 0) == TOTAL and
      again.get("status") == "done", "then the same command finishes it", again.get("status"))

# ---- the cache type is the experiment's: a resume under another --kv runs with the stored one ---
db = os.path.join(TMP, "kv.db")
proc = subprocess.Popen([QKV, "--db", db, "--kv", "f16", "--json", "-e", CMD], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)
t0 = time.time()
while stored(db) < 10 and time.time() - t0 < 120 and proc.poll() is None:
    time.sleep(0.02)
proc.send_signal(signal.SIGINT)
proc.communicate(timeout=120)
p = subprocess.run([QKV, "--db", db, "--kv", "f32", "--json", "-e", "experiment resume 1"], capture_output=True,
                   timeout=300)
r = json.loads(p.stdout.decode().strip().split("\n")[-1]) if p.returncode == 0 else {}
c = sqlite3.connect(db)
kvs = [k for (k,) in c.execute("SELECT DISTINCT u.kv FROM experiment_runs r JOIN runs u ON u.id = r.run_id")]
c.close()
check(r.get("status") == "done" and (r.get("spec") or {}).get("kv") == "f16" and kvs == ["f16"],
      "a resume under --kv f32 runs with the experiment's F16 cache", (p.stderr[-300:], kvs, r.get("spec")))
p = subprocess.run([QKV, "--db", db, "--kv", "f32", "--json", "-e", CMD], capture_output=True, timeout=600)
r = json.loads(p.stdout.decode().strip().split("\n")[-1]) if p.returncode == 0 else {}
check(r.get("experiment_id") == 2 and r.get("resumed") is False, "the same command under another kv is another "
      "experiment", (r.get("experiment_id"), r.get("resumed")))

# ---- scoring rules: an experiment started under earlier rules is not finished under today's ------
# (2026-12-06 changed self-consistency's vote, GSM8K's default scorer and the answer after a
# rationale, 2026-12-07 regex searches, abbreviations and the end-of-turn token; an experiment
# stopped before then and resumed after scored its remaining items under the new rules beside the
# old ones, with nothing in it to say so)
db = os.path.join(TMP, "rules.db")
RCMD = "experiment sort shots=0,1 limit=4"
r = one(RCMD, db)
check(r.get("status") == "done" and (r.get("spec") or {}).get("rules") == 3, "an experiment stores its scoring rules",
      (r.get("status"), r.get("spec")))
c = sqlite3.connect(db)
c.execute("PRAGMA foreign_keys = ON")
# as one stored before the rules were recorded, stopped with 3 of its 8 items missing
c.execute("UPDATE experiments SET spec = json_remove(spec, '$.rules'), status = 'stopped', finished = NULL")
c.execute("DELETE FROM experiment_items WHERE condition = 1 AND item >= 1")
c.commit()
c.close()
p = run("experiment resume 1", db)
check(p.returncode == 1 and b"experiment 1 was started under qkv's scoring rules 1 and this qkv scores by rules 3" in
      p.stderr, "resuming an experiment of earlier scoring rules is refused", (p.returncode, p.stderr[-400:]))
check(b"its 3 missing items would be scored unlike its 5 stored ones; run its command again with new=true" in p.stderr,
      "the refusal counts the items and says what to do", p.stderr[-400:])
check(stored(db) == 5, "the refused resume stored nothing", stored(db))
r = one(RCMD, db)
check(r.get("experiment_id") == 2 and r.get("resumed") is False and r.get("status") == "done",
      "the same command starts another experiment under today's rules", (r.get("experiment_id"), r.get("resumed")))
c = sqlite3.connect(db)
c.execute("UPDATE experiments SET spec = json_remove(spec, '$.rules') WHERE id = 2")
c.commit()
c.close()
r = one("experiment resume 2", db)
check(r.get("done_now") == 0 and r.get("status") == "done" and r.get("resumed") is False,
      "a finished experiment of earlier rules resumes to nothing (no item to score; resumed false: it said true)",
      (r.get("done_now"), r.get("status"), r.get("resumed")))
# and says so (it said "resumed: 8 items were stored, 0 run now")
p = subprocess.run([QKV, "--db", db, "-e", "experiment resume 2"], capture_output=True, timeout=300)
check(p.returncode == 0 and p.stdout.startswith(b"experiment 2 was finished: nothing to resume"),
      "resuming a finished experiment says it was finished", p.stdout[:200])

# an experiment run on a quantized model is that model's: the same command without the quantize is
# another experiment, and `experiment resume` converts the model as the experiment ran (both resumed
# it on the float model: one experiment's items came from two models, its table said the first)
# (a model file: the built-in model's fingerprint is of its weights, which quantize changes, so the
# same command found another model there)
qdb, qm = os.path.join(TMP, "quant.db"), os.path.join(TMP, "quant-model")
one(f"new-model gpt2 layers=1 heads=2 d=64 ctx=256 seed=3 out={qm}", qdb)
QKV_BUILTIN, QKV = QKV, None


def qrun(*args):
    # one KV cache type for both (under kv auto the float model's is F32, the converted one's F16,
    # which told the two apart already; a GGUF's quantized weights are F16 under both)
    return subprocess.run([QKV_BUILTIN, "--db", qdb, "--model", qm, "--kv", "f16"] + list(args), capture_output=True,
                          timeout=300)


def qone(cmd):
    p = qrun("--json", "-e", cmd)
    check(p.returncode == 0, f"'{cmd}' succeeds on {qm}", p.stderr[-500:])
    return json.loads(p.stdout.decode().rstrip("\n").split("\n")[-1]) if p.returncode == 0 else {}


QKV = QKV_BUILTIN
first = qone("quantize q8_0; experiment sort shots=1 limit=4")
check(first.get("experiment_id") == 1 and "(quantize q8_0)" in str(first.get("model_arch")), "an experiment on Q8_0",
      (first.get("experiment_id"), first.get("model_arch")))
c = sqlite3.connect(qdb)
c.execute("DELETE FROM experiment_runs WHERE experiment_id = 1 AND item >= 2")
c.execute("DELETE FROM experiment_items WHERE experiment_id = 1 AND item >= 2")
c.execute("UPDATE experiments SET status = 'stopped' WHERE id = 1")
c.commit()
c.close()
other = qone("experiment sort shots=1 limit=4")
check(other.get("experiment_id") == 2 and other.get("resumed") is False and "quantize" not in str(other.get("model_arch")),
      "the same command on the float model: another experiment, not the Q8_0 one resumed",
      (other.get("experiment_id"), other.get("resumed"), other.get("model_arch")))
p = qrun("-e", "experiment resume 1")
check(p.returncode == 0 and b"the session's model is now " in p.stdout and b"(quantize q8_0), as experiment 1 ran" in p.stdout,
      "experiment resume 1 says it converts the model as it ran", p.stdout[:300] + p.stderr[-300:])
c = sqlite3.connect(qdb)
archs = c.execute("SELECT r.model_arch FROM experiment_runs e JOIN runs r ON r.id = e.run_id WHERE e.experiment_id = 1"
                  ).fetchall()
c.close()
check(len(archs) == 4 and all("(quantize q8_0)" in a for (a,) in archs), "experiment 1's runs all on Q8_0", archs)

# ---- bad input ---------------------------------------------------------------------------------
bad = os.path.join(TMP, "bad.jsonl")
with open(bad, "w") as fh:
    fh.write('{"input": "a", "target": "b"}\n{"input": 3, ')
fails("experiment no-such-task", "no task 'no-such-task'")
pool_only = os.path.join(TMP, "pool-only.jsonl")
with open(pool_only, "w") as fh:
    fh.write('{"input": "a", "target": "b", "split": "pool"}\n')
fails(f"experiment {pool_only}", "has no test items")
fails(f"experiment {bad}", "line 2: not JSON (column ")  # the line's own column, not "line 1 column"
# bytes that are not UTF-8, and an empty target, are refused with their line (before 2026-12-06
# the first ran with U+FFFD in the prompts, the second scored its item wrong whatever was said)
latin1 = os.path.join(TMP, "latin1.jsonl")
with open(latin1, "wb") as fh:
    fh.write(b'{"input": "x", "target": "y"}\n  {"input": "caf\xe9", "target": "b"}\n')
fails(f"experiment {latin1}", "line 2: not UTF-8 (byte 17 of the line)")
empty_t = os.path.join(TMP, "empty-target.jsonl")
with open(empty_t, "w") as fh:
    fh.write('{"input": "x", "target": "y"}\n{"input": "a", "target": " "}\n')
fails(f"experiment {empty_t}", "line 2: the target is empty")
# a header of neither description nor name is taken for an item without input: the message says
# either key makes a header (it named description alone, and a header of a name is one)
no_name = os.path.join(TMP, "scorer-only.jsonl")
with open(no_name, "w") as fh:
    fh.write('{"scorer": "number"}\n{"input": "c", "target": "4"}\n')
fails(f"prompt show {no_name}", 'line 1: an item needs "input" (or "question"); a header needs "description" or "name"')
# experiments has no kind= (runs' filter): the unknown option's message does not offer it
fails("experiments kind=experiment", "unknown option 'kind' (options: since, until, annotator, model)")
# nothing left once normalised as the scorers compare ("!!!"): no answer could match it (it ran,
# every answer wrong); an empty choice, scored on the space before it alone, won every item
for name, line in (("punct-target", '{"input": "a", "target": "!!!"}'),
                   ("empty-choice", '{"question": "a", "choices": ["x", "  "], "answer": 0}')):
    path = os.path.join(TMP, name + ".jsonl")
    with open(path, "w") as fh:
        fh.write('{"input": "x", "target": "y"}\n' + line + "\n")
    fails(f"experiment {path}", "line 2: the target is empty once normalised" if name == "punct-target"
          else "line 2: choice 1 is empty")
# a task or pool= that is there but is not a regular file is said to be so, never read or waited on
# (it said "No such file or directory")
fifo = os.path.join(TMP, "task.fifo")
os.mkfifo(fifo)
fails(f"experiment {fifo}", f"cannot read task '{fifo}': it is a FIFO, not a regular file")
fails(f"experiment en-fr pool={fifo}", f"pool=: cannot read task '{fifo}': it is a FIFO, not a regular file")
fails("experiment /dev/zero", "cannot read task '/dev/zero': it is a device, not a regular file")
fails(f"experiment {TMP}", f"cannot read task '{TMP}': it is a folder")
fails("experiment en-fr shots=0,x", "shots=0,x")
fails("experiment en-fr shots=0,0", "given twice")
fails("experiment en-fr cot=maybe", "off, on")
fails("experiment en-fr shots=20", "20-shot prompts need 20 exemplars")
fails("experiment en-fr shots=1 cot=on", "rationale")
fails("experiment en-fr sc=3", "temperature")
fails("experiment en-fr scorer=choice", "without choices")
fails("experiment en-fr scorer=regex", "regex=")
fails('experiment en-fr scorer=regex regex="(["', "regex=")
fails("experiment odd-one-out cot=on", "log-likelihood")
fails("experiment en-fr chat=on", "chat template")
# an empty separator ran each query into the exemplar before it ("hookslemon =>") and scored 0
fails('experiment en-fr separator=""', "separator= is empty")
# a key that is a near miss of a known one, or any unknown key in the header, is refused (a typo
# turned an exemplar into a test item, and dropped the header's description and scorer, silently);
# an item's other keys, a dataset's own ("id", "subject"), are not
for name, body, want in (
        ("typo-split", '{"input": "a", "target": "b", "spilt": "pool"}\n{"input": "c", "target": "d"}\n',
         'line 1: unknown key "spilt": did you mean "split"?'),
        ("typo-header", '{"name": "x", "descripton": "d", "scorer": "exact"}\n{"input": "c", "target": "d"}\n',
         'line 1: unknown key "descripton": did you mean "description"?'),
        ("typo-scorer", '{"name": "x", "description": "d", "scorr": "number"}\n{"input": "c", "target": "4"}\n',
         'line 1: unknown key "scorr": did you mean "scorer"?'),
        ("header-extra", '{"name": "x", "description": "d", "colour": "red"}\n{"input": "c", "target": "d"}\n',
         'line 1: unknown key "colour" in the header (a header holds name, description, scorer,'),
        ("typo-targets", '{"input": "c", "targets": "d"}\n', 'line 1: unknown key "targets": did you mean "target"?'),
        # a scorer qkv does not have was listed by tasks as the task's, refused only when run
        ("bad-scorer", '{"name": "x", "description": "d", "scorer": "bogus"}\n{"input": "c", "target": "d"}\n',
         'line 1: scorer must be exact, contains, number, regex or choice')):
    path = os.path.join(TMP, name + ".jsonl")
    with open(path, "w") as fh:
        fh.write(body)
    fails(f"experiment {path}", want)
extra = os.path.join(TMP, "dataset-keys.jsonl")
with open(extra, "w") as fh:
    fh.write('{"id": 7, "subject": "x", "input": "c", "target": "d"}\n')
p = run(f"experiment {extra}")
check(p.returncode == 0, "an item's own keys (id, subject) are not refused", p.stderr[-300:])
# a task name two files answer to (one's file name and another's header, two headers) is refused
# naming both (one of them opened, silently, not always the one `tasks` listed), and `tasks` says so
td = os.path.join(TMP, "tasks-dup")
os.makedirs(td)
for fname, hname in (("one", "same"), ("two", "same"), ("three", "one"), ("four", "uniq")):
    with open(os.path.join(td, fname + ".jsonl"), "w") as fh:
        fh.write(json.dumps({"name": hname, "description": fname}) + '\n{"input": "a", "target": "b"}\n')
tenv = dict(os.environ, QKV_TASKS=td)
for name, want in (("one", "task name 'one' is ambiguous: 2 files in '%s' answer to it (one.jsonl and three.jsonl"
                    % td), ("same", "task name 'same' is ambiguous: 2 files in '%s' answer to it (one.jsonl and "
                                    "two.jsonl" % td)):
    p = subprocess.run([QKV, "--db", DB, "-e", f"prompt show {name}"], capture_output=True, env=tenv, timeout=120)
    check(p.returncode == 1 and want in p.stderr.decode(), f"task name '{name}' is ambiguous", p.stderr[-300:])
for name, desc in (("uniq", "four"), ("four", "four"), ("three.jsonl", "three")):
    p = subprocess.run([QKV, "--db", DB, "--json", "-e", f"prompt show {name}"], capture_output=True, env=tenv,
                       timeout=120)
    check(p.returncode == 0 and json.loads(p.stdout).get("text", "").startswith(desc), f"task '{name}' opens",
          p.stderr[-300:])
p = subprocess.run([QKV, "--db", DB, "--json", "-e", "tasks"], capture_output=True, env=tenv, timeout=120)
amb = {t["path"].rsplit("/", 1)[1]: t.get("ambiguous") for t in json.loads(p.stdout)["tasks"]} if p.returncode == 0 else {}
check(amb == {"one.jsonl": True, "two.jsonl": True, "three.jsonl": True, "four.jsonl": False},
      "tasks marks the names two files answer to", amb)
# an empty answer phrase: the prompt dropped it while the scorer looked for "The answer is"
fails('prompt show en-fr shots=1 answer_phrase=""', "answer_phrase= is empty")
fails('experiment en-fr answer_phrase=""', "answer_phrase= is empty")
# a target holding the separator the answer is cut at: scored wrong whatever was said (it ran)
sep_t = os.path.join(TMP, "sep-target.jsonl")
with open(sep_t, "w") as fh:
    fh.write('{"input": "c", "target": "d"}\n{"input": "a", "target": "x\\ny"}\n')
fails(f"experiment {sep_t}", "line 2: the target holds the separator \"\\n\", where the answer is cut")
p = run(f'experiment {sep_t} separator=";" limit=1')
check(p.returncode == 0, "... another separator= runs it", p.stderr[-300:])
fails("experiment show 999", "no experiment 999")
fails("experiment show x", "not an experiment id")
fails(f"experiment compare {eid} 0 0", "itself")
fails(f"experiment compare {eid} 0 99", "no condition 99")
fails("experiment resume 999", "no experiment 999")
# options of another form are refused, not ignored (item= once ran a whole new experiment)
fails("experiment en-fr item=3 limit=2", "experiment: unknown option 'item'")
fails(f"experiment show {eid} shots=5", "experiment show: unknown option 'shots'")
fails(f"experiment show {eid} item=0 condition=99", "no condition 99")
fails(f"experiment show {eid} item=9999", "no item 9999")
fails(f"experiment compare {eid} 0 1 shots=2", "experiment compare: unknown option 'shots'")
fails("export experiment 999 " + os.path.join(TMP, "x.json"), "no experiment 999")
fails(f"export experiment {eid} {os.path.join(TMP, 'x.txt')} format=xml", "format=xml")
# the database's own name (or its journal) is not an export's file: it replaced the database
fails(f"export experiment {eid} {DB}", "it is qkv's database")
fails(f"export experiment {eid} {DB}-wal format=csv", "it is qkv's database")
fails("prompt show en-fr item=999", "item=999")
fails("prompt show en-fr shots=1,3", "one value")
fails("prompt list en-fr", "usage: prompt show")
check(not os.path.exists(os.path.join(TMP, "x.json")), "a failed export writes nothing")
bert = os.path.join(TMP, "bert")
enc = subprocess.run([QKV, "--db", DB, "-e", f"new-model bert layers=1 heads=2 d=16 ctx=64 seed=1 out={bert}; "
                      f"load {bert}; experiment en-fr limit=1"], capture_output=True)
check(enc.returncode != 0 and b"decoder" in enc.stderr, "an encoder cannot run an experiment", enc.stderr[-300:])

# one item: no standard error in either column (acc_norm's read 0.000 beside accuracy's "-")
p = subprocess.run([QKV, "--db", os.path.join(TMP, "one-item.db"), "-e", "experiment odd-one-out shots=0 limit=1"],
                   capture_output=True)
row = [l for l in p.stdout.decode().splitlines() if l.startswith("  0  ")]
check(p.returncode == 0 and len(row) == 1 and row[0].split()[-1] == "-" and row[0].split()[6] == "-",
      "one item: both stderr columns '-'", (p.returncode, row))

# another model in the session: experiment show names the tokens with the experiment's own model
# (they were the session's: builtin's ids read in the BERT's vocabulary), and a resume loads the
# built-in model it ran on (it loaded the default model for "builtin", then said it had changed)
want = one(f"experiment show {eid} item=1 condition=2")
p = subprocess.run([QKV, "--db", DB, "--json", "-e", f"load {bert}; experiment show {eid} item=1 condition=2"],
                   capture_output=True)
got = json.loads(p.stdout.decode().strip().split("\n")[-1]) if p.returncode == 0 else {}
pieces = lambda r: [[t.get("piece") for t in x.get("tokens", [])] for x in r.get("runs", [])]  # noqa: E731
check(p.returncode == 0 and pieces(got) == pieces(want) and any(pieces(want)),
      "experiment show under another model: the experiment's model's pieces", (pieces(got)[:1], pieces(want)[:1]))
rx = one("experiment en-fr shots=0 limit=3 new=true")
c = sqlite3.connect(DB)
c.execute("UPDATE experiments SET status = 'stopped', finished = NULL WHERE id = ?", (rx["experiment_id"],))
for table in ("experiment_runs", "experiment_items"):  # its last item, as a stop before it leaves it
    c.execute(f"DELETE FROM {table} WHERE experiment_id = ? AND item = 2", (rx["experiment_id"],))
c.commit()
c.close()
p = subprocess.run([QKV, "--db", DB, "--json", "-e", f"experiment resume {rx['experiment_id']}"], capture_output=True,
                   env=dict(os.environ, QKV_MODEL=bert))
r = json.loads(p.stdout.decode().strip().split("\n")[-1]) if p.returncode == 0 else {}
check(r.get("status") == "done" and r.get("done_now") == 1, "a builtin experiment resumed in a session whose default is "
      "another model", (p.returncode, p.stderr.decode()[-300:]))

print("ok" if not failures else f"{failures} failure(s)")
sys.exit(1 if failures else 0)
