#!/usr/bin/env python3
"""bench/exp_reuse.py - prefix reuse in prompt experiments: the same 5-shot experiment over 100
items with the shared prefix's KV cache kept from item to item (reuse=on) and recomputed for
every item (reuse=off), on a real model, each in a fresh database. Prints the wall time, the
seconds qkv reports, the prompt tokens reused and evaluated, and the ratio.

Usage: bench/exp_reuse.py [QKV_BINARY] [MODEL] [ITEMS] [SHOTS]
  QKV_BINARY  default build/app/qkv
  MODEL       default ~/.local/share/qkv/models/smollm2 (SmolLM2-135M-Instruct, ./dev models)
  ITEMS       test items (default 100); SHOTS exemplars (default 5)

The task is written for the benchmark: English words to translate into French (the exemplars from
data/tasks/en-fr.jsonl's pool), the test items numbered words so that there are 100 of them.
Run it under the build lock on a shared machine: flock /tmp/qkv-build.lock bench/exp_reuse.py
"""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
QKV = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "app", "qkv")
MODEL = sys.argv[2] if len(sys.argv) > 2 else os.path.expanduser("~/.local/share/qkv/models/smollm2")
ITEMS = int(sys.argv[3]) if len(sys.argv) > 3 else 100
SHOTS = int(sys.argv[4]) if len(sys.argv) > 4 else 5

WORDS = ["cat", "dog", "house", "tree", "water", "bread", "cheese", "apple", "book", "chair", "table", "door",
         "window", "river", "mountain", "flower", "sun", "moon", "star", "car"]


def write_task(path):
    src = os.path.join(HERE, "..", "data", "tasks", "en-fr.jsonl")
    with open(src, encoding="utf-8") as f:
        lines = [json.loads(l) for l in f if l.strip()]
    head = dict(lines[0], name="reuse-bench", max_tokens=8)
    pool = [l for l in lines[1:] if l.get("split") == "pool"]
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(head) + "\n")
        for p in pool:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
        for i in range(ITEMS):
            w = "%s %d" % (WORDS[i % len(WORDS)], i // len(WORDS) + 1)
            f.write(json.dumps({"input": w, "target": w}) + "\n")


def run(task, tmp, reuse):
    db = os.path.join(tmp, "reuse-%s.db" % reuse)
    cmd = [QKV, "--threads", "2", "--model", MODEL, "--db", db, "--json", "-e",
           "experiment %s shots=%d seeds=1 reuse=%s" % (task, SHOTS, reuse)]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t0
    if r.returncode:
        sys.exit("qkv failed: %s" % r.stderr.strip().splitlines()[-1:])
    j = json.loads(r.stdout.strip().splitlines()[-1])
    return wall, j


def main():
    if not os.path.exists(MODEL):
        print("skip: no model at %s (./dev models installs SmolLM2)" % MODEL)
        return 77
    with tempfile.TemporaryDirectory(prefix="qkv-reuse-") as tmp:
        task = os.path.join(tmp, "reuse-bench.jsonl")
        write_task(task)
        res = {}
        for reuse in ("off", "on"):
            wall, j = run(task, tmp, reuse)
            res[reuse] = (wall, j)
            print("reuse=%-3s  %d items  wall %.2f s  qkv %.2f s  prompt tokens reused %d, evaluated %d" %
                  (reuse, j["total"], wall, j["seconds"], j["tokens_reused"], j["tokens_evaluated"]))
        off, on = res["off"][1], res["on"][1]
        acc = [c["accuracy"] for c in off["conditions"]], [c["accuracy"] for c in on["conditions"]]
        print("speed-up with reuse: %.2fx (qkv seconds), %.2fx (wall); accuracy off %s, on %s" %
              (off["seconds"] / on["seconds"], res["off"][0] / res["on"][0], acc[0], acc[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
