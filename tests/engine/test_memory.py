#!/usr/bin/env python3
"""Memory: a GPT-2 124M-shaped F32 model (500 MB file) is mapped, not copied.

Writes the model with `qkv new-model` into a temporary directory, then checks the
anonymous resident memory (RssAnon: everything but the mapped file) after opening it,
after a short generation, and after a long prefill: it must stay under 150 MB.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

LIMIT_KB = 150 * 1024


def run(qkv, args):
    p = subprocess.run([qkv] + args, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"qkv {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
    return [json.loads(l) for l in p.stdout.split("\n") if l.startswith("{")]


def main():
    qkv = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="qkv-mem-")
    try:
        free = shutil.disk_usage(tmp).free
        if free < 2 << 30:
            print(f"skip: only {free >> 20} MB free in {tmp}")
            return 77
        model = os.path.join(tmp, "gpt2-124m")
        run(qkv, ["-e", f"new-model gpt2 layers=12 heads=12 d=768 ctx=1024 vocab=50257 seed=3 out={model}"])
        info = run(qkv, ["--model", model, "--json", "--db", os.path.join(tmp, "db"), "-e", "model"])[0]
        if info.get("sanitized"):
            print("skip: resident memory is not meaningful under AddressSanitizer")
            return 77
        assert info["params"] > 124_000_000, info
        ids = ",".join(str((i * 7919) % 50257) for i in range(900))
        out = run(qkv, ["--model", model, "--json", "--db", os.path.join(tmp, "db"), "-e",
                        "model; generate ids=1,2,3 max=4 temperature=0; model; "
                        f"logits ids={ids} top=3; model"])
        opened, after_gen, after_long = out[0]["rss_anon_kb"], out[2]["rss_anon_kb"], out[4]["rss_anon_kb"]
        print(f"file {info['file_bytes'] >> 20} MB; anonymous resident memory: opened {opened >> 10} MB, "
              f"after generate {after_gen >> 10} MB, after a 900-token prefill {after_long >> 10} MB")
        bad = [(k, v) for k, v in (("opened", opened), ("generate", after_gen), ("prefill", after_long)) if v > LIMIT_KB]
        if bad:
            print(f"FAIL: over {LIMIT_KB >> 10} MB: {bad}")
            return 1
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
