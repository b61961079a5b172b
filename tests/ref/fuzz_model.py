#!/usr/bin/env python3
# fuzz_model.py - suite 'fuzz': random corruptions of a GPT-2 model directory never crash qkv.
#
# Mutates the safetensors header (numbers replaced by edge values, bytes flipped, chunks cut or
# repeated, the length field changed), config.json values, and the file length, then runs
# `qkv --model DIR -e 'model; logits ids=1,2,3'`. qkv may accept a harmless mutation, but when it
# fails it must exit non-zero (not by a signal) with exactly one `error: ` line on stderr, and no
# sanitizer report. Each run is a separate process, so this is a smoke test; QKV_FUZZ_ITERS sets the
# number of mutations (default 1500) and QKV_FUZZ_SEED the seed (default 1); a failure prints the
# seed and iteration to replay. Usage: fuzz_model.py QKV_BINARY.

import json
import os
import random
import re
import shutil
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qkv_cli  # noqa: E402

ST = 'model.safetensors'
EDGE = [0, 1, -1, 2, 3, 7, 255, 256, 65535, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 53, 2 ** 62,
        2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1, 2 ** 64, 10 ** 30, -2 ** 63]


def mutate_header(rng, hb):
    """One random change to the header JSON bytes."""
    kind = rng.randrange(7)
    if kind <= 2:  # replace a number by an edge value or a neighbour
        nums = list(re.finditer(rb'-?\d+', hb))
        if nums:
            m = rng.choice(nums)
            v = int(m.group())
            new = rng.choice(EDGE + [v + 1, v - 1, v * 2, v // 2, v + 4])
            return hb[:m.start()] + str(new).encode() + hb[m.end():]
    if kind == 3:  # flip bytes
        b = bytearray(hb)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if kind == 4:  # cut a chunk
        i = rng.randrange(len(hb))
        return hb[:i] + hb[i + rng.randrange(1, 40):]
    if kind == 5:  # repeat a chunk
        i = rng.randrange(len(hb))
        return hb[:i] + hb[i:i + rng.randrange(1, 60)] * 2 + hb[i + 1:]
    # swap the values of two dtype/shape fields
    words = [rb'"F32"', rb'"F16"', rb'"BF16"', rb'"I64"', rb'"U8"', rb'"F64"', rb'[]', rb'[0]', rb'null', rb'{}']
    fields = list(re.finditer(rb'"F32"|\[\d+(,\s*\d+)*\]', hb))
    if fields:
        m = rng.choice(fields)
        return hb[:m.start()] + rng.choice(words) + hb[m.end():]
    return hb


def mutate(rng, d):
    """Apply one to three random corruptions to the model directory d; return a description."""
    done = []
    for _ in range(rng.randrange(1, 4)):
        target = rng.random()
        p = os.path.join(d, ST)
        with open(p, 'rb') as f:
            raw = f.read()
        n = struct.unpack('<Q', raw[:8])[0] if len(raw) >= 8 else 2 ** 64
        if 8 + n > len(raw) or n == 0:
            target = 1.0  # already broken beyond parsing: corrupt the config instead
        hb, data = raw[8:8 + n], raw[8 + n:]
        if target < 0.7:
            hb2 = mutate_header(rng, hb)
            hlen = len(hb2) if rng.random() < 0.9 else rng.choice(EDGE[:19] + [len(hb2) + 1, len(hb2) - 1]) % 2 ** 64
            with open(p, 'wb') as f:
                f.write(struct.pack('<Q', hlen) + hb2 + data)
            done.append('header')
        elif target < 0.85:
            cut = rng.randrange(len(raw))
            with open(p, 'wb') as f:
                f.write(raw[:cut])
            done.append('truncate %d' % cut)
        else:
            c = os.path.join(d, 'config.json')
            with open(c) as f:
                cfg = json.load(f)
            key = rng.choice(['n_layer', 'n_head', 'n_embd', 'n_positions', 'vocab_size', 'layer_norm_epsilon'])
            cfg[key] = rng.choice(EDGE + [None, 'x', 1.5, [], {}])
            with open(c, 'w') as f:
                json.dump(cfg, f)
            done.append('config %s=%r' % (key, cfg[key]))
    return ', '.join(done)


def main():
    qkv = qkv_cli.qkv_path()
    if not os.path.exists(qkv):
        print('FAIL: qkv binary not found at %s' % qkv)
        return 1
    iters = int(os.environ.get('QKV_FUZZ_ITERS', '1500'))
    seed = int(os.environ.get('QKV_FUZZ_SEED', '1'))
    rng = random.Random(seed)
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix='qkv-fuzz-')
    bad = accepted = 0
    try:
        good = os.path.join(tmp, 'good')
        db = os.path.join(tmp, 'qkv.db')
        p = qkv_cli.new_model(qkv, ['gpt2', 'layers=2', 'heads=2', 'd=8', 'ctx=16', 'seed=1', 'out=' + good], db)
        if p.returncode != 0:
            print('FAIL: new-model: exit %d, stderr: %s' % (p.returncode, p.stderr.strip()))
            return 1
        for i in range(iters):
            work = os.path.join(tmp, 'w')
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(good, work)
            what = mutate(rng, work)
            p = qkv_cli.run(qkv, ['--model', work, '--db', db, '--json', '-e', 'model; logits ids=1,2,3'],
                            timeout=120)
            lines = p.stderr.splitlines()
            problems = []
            if p.returncode < 0:
                problems.append('killed by signal %d' % -p.returncode)
            if 'Sanitizer' in p.stderr or 'runtime error' in p.stderr:
                problems.append('sanitizer report')
            if p.returncode > 0 and (len(lines) != 1 or not lines[0].startswith('error: ')):
                problems.append('stderr is not exactly one "error: " line')
            if problems:
                bad += 1
                if bad <= 5:  # details of the first few; the rest are counted
                    print('FAIL: seed %d iteration %d (%s): %s\n  stderr: %s'
                          % (seed, i, what, '; '.join(problems), p.stderr.strip()[:1500]), flush=True)
                    keep = os.path.join(tempfile.gettempdir(), 'qkv-fuzz-fail-%d-%d' % (seed, i))
                    shutil.rmtree(keep, ignore_errors=True)
                    shutil.copytree(work, keep)
                    print('  kept the directory as %s' % keep)
                else:
                    print('FAIL: seed %d iteration %d (%s): %s' % (seed, i, what, '; '.join(problems)))
                if bad >= 20:
                    print('stopping after %d failures' % bad)
                    iters = i + 1
                    break
            elif p.returncode == 0:
                accepted += 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rejected = iters - accepted - bad
    print('fuzz_model: %d mutations (seed %d), %d accepted, %d rejected, %d failure(s), %.1f s'
          % (iters, seed, accepted, rejected, bad, time.time() - t0))
    # the mutations must bite: if qkv accepted most of them, they no longer break anything and
    # the run above checked nothing (98% are rejected today)
    if iters >= 20 and rejected < iters // 2:
        print('FAIL: only %d of %d mutated directories were rejected: the mutations do not break the files'
              % (rejected, iters))
        return 1
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
