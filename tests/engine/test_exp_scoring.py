#!/usr/bin/env python3
"""How experiments score what a real model writes, on SmolLM2-135M-Instruct.

Usage: test_exp_scoring.py QKV_BINARY

A GSM8K-style file (question, answer ending in "#### N") is scored with the number scorer unless
it says otherwise: each item is right exactly when its answer's last number is the target
(" 6 + 1 = 7 cats" was wrong for 7 under the exact scorer). After a rationale without "the answer
is" or "####", the answer is the rationale's last number (it was its first sentence, "First, we
find the total number of birds"). Every figure is recomputed here from the runs' text in the
exported experiment. Skips (77) when SmolLM2 is not installed (./dev models).
"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
import qkv_cli  # noqa: E402

QKV = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/app/qkv"
failures = []


def check(ok, what, detail=""):
    if not ok:
        failures.append(what)
        print("FAIL: %s %s" % (what, detail), file=sys.stderr)
    return ok


def qkv(db, model, cmd):
    p = subprocess.run([QKV, "--db", db, "--model", model, "--json", "-e", cmd], capture_output=True, text=True,
                       timeout=1200)
    if not check(p.returncode == 0, "'%s' succeeds" % cmd, p.stderr[-1000:]):
        return {}
    return json.loads(p.stdout.strip().split("\n")[-1])


NUMBER = re.compile(r"(?<![\d.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def numbers(s):
    """The numbers in s, as the number scorer reads them (thousands commas, decimals, a sign)."""
    return [float(m.group().replace(",", "")) for m in NUMBER.finditer(s)]


def cut(text, sep):
    """The completion up to the prompt's separator (leading white space is not an answer)."""
    i = len(text) - len(text.lstrip())
    k = text.find(sep, i) if sep else -1
    return text if k < 0 else text[:k]


def exported(db, model, eid, tmp):
    path = os.path.join(tmp, "e%d.json" % eid)
    qkv(db, model, "export experiment %d %s" % (eid, path))
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def gsm8k_default(db, model, tmp):
    f = os.path.join(tmp, "gsm.jsonl")
    with open(f, "w") as fh:
        for q, a, pool in (
                ("Tom has 3 apples and buys 2 more. How many apples does he have?",
                 "Tom has 3 + 2 = <<3+2=5>>5 apples.\n#### 5", True),
                ("A box holds 4 pens. How many pens are in 2 boxes?", "2 boxes hold 2 * 4 = <<2*4=8>>8 pens.\n#### 8", True),
                ("Ann has 6 cats and gets 1 more. How many cats does she have?", "6 + 1 = <<6+1=7>>7\n#### 7", False),
                ("There are 9 birds and 4 fly away. How many birds are left?", "9 - 4 = <<9-4=5>>5\n#### 5", False)):
            fh.write(json.dumps(dict({"question": q, "answer": a}, **({"split": "pool"} if pool else {}))) + "\n")
    x = qkv(db, model, "experiment %s shots=0,2 cot=off,on" % f)
    if not x:
        return
    doc = exported(db, model, x["experiment_id"], tmp)
    worded_right = 0
    for it in doc["items"]:
        want = numbers(it["target"])[-1]
        nums = numbers(it["answer"] or "")
        right = bool(nums) and abs(nums[-1] - want) < 1e-9
        check(it["correct"] == right, "condition %d item %d: scored as numbers (the answer's last number against %s)"
              % (it["condition"], it["item"], it["target"]), it["answer"])
        worded_right += it["correct"] and it["answer"].strip() != it["target"]
        if it["cot"]:
            # a rationale that states no answer: its last number (its first sentence was taken)
            text = cut(it["runs"][0]["text"], "\n\n")
            if "the answer is" not in text.lower() and "####" not in text and numbers(text):
                check(nums and nums[-1] == numbers(text)[-1] and numbers(it["answer"]) == nums[-1:],
                      "condition %d item %d: after a rationale, its last number" % (it["condition"], it["item"]),
                      (text, it["answer"]))
    check(worded_right > 0, "some answer with words around its number is right (' 6 + 1 = 7 cats' for 7)",
          [(i["answer"], i["correct"]) for i in doc["items"]])


def main():
    model = qkv_cli.smollm2_dir()
    if not model:
        print("skip: SmolLM2 is not installed (./dev models)")
        return 77
    tmp = tempfile.mkdtemp(prefix="qkv-exp-scoring-")
    db = os.path.join(tmp, "q.db")
    gsm8k_default(db, model, tmp)
    if failures:
        print("%d failure(s)" % len(failures), file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
