#!/usr/bin/env python3
# test_tok_golden.py - suite 'real': qkv's tokenizers against the committed golden files of
# tests/tok/golden/ (the ids HF tokenizers, transformers or sentencepiece gave, recorded by
# gen_tok_golden.py), without the test environment: only the standard library and the qkv binary.
#
# Each file names its tokenizer (a file of $QKV_SHARED_MODELS, or a fixture of tests/tok/fixtures);
# a file whose tokenizer is absent is skipped with a line saying so, and the test skips (77) when
# every one is. Every line's `tokenize "..." special=...` must give the recorded ids.
# Usage: test_tok_golden.py [QKV_BINARY]

import glob
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tokrun  # noqa: E402
import qkv_cli  # noqa: E402


def main():
    qkv = qkv_cli.qkv_path()
    t0 = time.time()
    rep = tokrun.Report()
    files = sorted(glob.glob(os.path.join(tokrun.GOLDEN_DIR, '*.jsonl')))
    if not files:
        rep.fail('no golden files in %s' % tokrun.GOLDEN_DIR)
    ran = 0
    for path in files:
        name = os.path.basename(path)[:-len('.jsonl')]
        head, rows = tokrun.read_golden(name)
        tok = tokrun.resolve(head.get('tokenizer', ''))
        if tok is None:
            rep.fail('%s: unknown tokenizer %r' % (name, head.get('tokenizer')))
            continue
        if not os.path.exists(tok):
            print('skip %s: %s absent' % (name, tok))
            continue
        if len(rows) < 500:
            rep.fail('%s: %d lines, expected at least 500' % (name, len(rows)))
        rep.check(qkv, name, tok, [(b, s) for b, s, _ in rows], [ids for _, _, ids in rows],
                  'golden, from %s' % head.get('reference'))
        ran += 1
    if not ran and not rep.failures:
        print('SKIP: no golden file has its tokenizer here')
        return 77
    return rep.summary('tokenizer golden files: %d of %d checked' % (ran, len(files)), t0)


if __name__ == '__main__':
    sys.exit(main())
