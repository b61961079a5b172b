#!/usr/bin/env python3
"""bench/exp_reuse.py - prefix reuse in prompt experiments: the same 5-shot experiment over 100
items with the shared prefix's KV cache kept from item to item (reuse=on) and recomputed for
every item (reuse=off), on a real model, each in a fresh database, interleaved (off, on, off,
on ... for ROUNDS rounds) so that a drifting machine load touches both alike. Prints, per run,
the wall time, the seconds qkv reports, the prompt tokens reused and evaluated, and from the
database the mean per item of the prompt's evaluation (prefill_s), of the decoding (decode_s)
and the tokens generated; then the ratio of the best times, and the bound that the decoding
sets: with reuse an item still pays its own tokens' evaluation and its answer's decoding.

Usage: bench/exp_reuse.py [QKV_BINARY] [MODEL] [ITEMS] [SHOTS] [TASK] [ROUNDS]
  QKV_BINARY  default build/app/qkv
  MODEL       default ~/.local/share/qkv/models/smollm2 (SmolLM2-135M-Instruct, ./dev models)
  ITEMS       test items (default 100); SHOTS exemplars (default 5)
  TASK        en-fr (default): English words to translate into French, the exemplars from
              data/tasks/en-fr.jsonl's pool, the test items numbered words (5-shot prompts of
              about 48 tokens, answers of 2 to 8 tokens);
              sentiment: reviews to classify, the exemplars from data/tasks/sentiment.jsonl's
              pool, the test items generated sentences (5-shot prompts of about 110 tokens,
              one-word answers)
  ROUNDS      off/on pairs (default 1)

Run it under the build lock on a shared machine: flock /tmp/qkv-build.lock bench/exp_reuse.py
"""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
QKV = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "app", "qkv")
MODEL = sys.argv[2] if len(sys.argv) > 2 else os.path.expanduser("~/.local/share/qkv/models/smollm2")
ITEMS = int(sys.argv[3]) if len(sys.argv) > 3 else 100
SHOTS = int(sys.argv[4]) if len(sys.argv) > 4 else 5
TASK = sys.argv[5] if len(sys.argv) > 5 else "en-fr"
ROUNDS = int(sys.argv[6]) if len(sys.argv) > 6 else 1

WORDS = ["cat", "dog", "house", "tree", "water", "bread", "cheese", "apple", "book", "chair", "table", "door",
         "window", "river", "mountain", "flower", "sun", "moon", "star", "car"]
THINGS = ["film", "meal", "hotel", "concert", "book", "game", "lecture", "phone", "trip", "show"]
GOOD = ["wonderful", "delightful", "excellent", "a real pleasure", "great fun"]
BAD = ["awful", "tedious", "a waste of money", "disappointing", "painfully slow"]


def test_items():
    if TASK == "en-fr":
        for i in range(ITEMS):
            w = "%s %d" % (WORDS[i % len(WORDS)], i // len(WORDS) + 1)
            yield {"input": w, "target": w}
    else:
        for i in range(ITEMS):
            good = i % 2 == 0
            adj = (GOOD if good else BAD)[(i // 2) % 5]
            yield {"input": "The %s was %s." % (THINGS[(i // 10) % len(THINGS)], adj),
                   "target": "positive" if good else "negative"}


def write_task(path):
    src = os.path.join(HERE, "..", "data", "tasks", TASK + ".jsonl")
    with open(src, encoding="utf-8") as f:
        lines = [json.loads(l) for l in f if l.strip()]
    head = dict(lines[0], name="reuse-bench")
    if TASK == "en-fr":
        head["max_tokens"] = 8
    pool = [l for l in lines[1:] if l.get("split") == "pool"]
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(head) + "\n")
        for p in pool:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
        for it in test_items():
            f.write(json.dumps(it) + "\n")


def run(task, tmp, reuse, rnd):
    db = os.path.join(tmp, "reuse-%s-%d.db" % (reuse, rnd))
    cmd = [QKV, "--threads", "2", "--model", MODEL, "--db", db, "--json", "-e",
           "experiment %s shots=%d seeds=1 reuse=%s" % (task, SHOTS, reuse)]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t0
    if r.returncode:
        sys.exit("qkv failed: %s" % r.stderr.strip().splitlines()[-1:])
    j = json.loads(r.stdout.strip().splitlines()[-1])
    con = sqlite3.connect(db)
    pre, dec, gen = con.execute("SELECT avg(prefill_s), avg(decode_s), avg(json_array_length(ids)) FROM runs "
                                "WHERE kind = 'experiment'").fetchone()
    con.close()
    return wall, j, (pre, dec, gen)


def main():
    if not os.path.exists(MODEL):
        print("skip: no model at %s (./dev models installs SmolLM2)" % MODEL)
        return 77
    if TASK not in ("en-fr", "sentiment"):
        sys.exit("TASK: en-fr or sentiment")
    with tempfile.TemporaryDirectory(prefix="qkv-reuse-") as tmp:
        task = os.path.join(tmp, "reuse-bench.jsonl")
        write_task(task)
        best = {}
        for rnd in range(ROUNDS):
            for reuse in ("off", "on"):
                wall, j, (pre, dec, gen) = run(task, tmp, reuse, rnd)
                print("reuse=%-3s  %d items  wall %6.2f s  qkv %6.2f s  prompt tokens reused %5d, evaluated %5d; "
                      "an item: prompt %5.1f ms, decoding %5.1f ms (%.2f tokens)" %
                      (reuse, j["total"], wall, j["seconds"], j["tokens_reused"], j["tokens_evaluated"],
                       pre * 1e3, dec * 1e3, gen))
                if reuse not in best or j["seconds"] < best[reuse][1]["seconds"]:
                    best[reuse] = (wall, j, (pre, dec))
        off, on = best["off"][1], best["on"][1]
        acc = [c["accuracy"] for c in off["conditions"]], [c["accuracy"] for c in on["conditions"]]
        pre_off, dec_off = best["off"][2]
        print("speed-up with reuse: %.2fx (qkv seconds), %.2fx (wall); accuracy off %s, on %s" %
              (off["seconds"] / on["seconds"], best["off"][0] / best["on"][0], acc[0], acc[1]))
        print("bound with the answers' decoding kept: %.2fx (off's prompt + decoding over its decoding alone)" %
              ((pre_off + dec_off) / dec_off))
    return 0


if __name__ == "__main__":
    sys.exit(main())
