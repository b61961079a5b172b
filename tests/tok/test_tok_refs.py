#!/usr/bin/env python3
# test_tok_refs.py - suite 'reference': qkv's GPT-2 BPE against tiktoken and HF tokenizers, live.
#
# Both references are built from the real GPT-2 vocabulary in $QKV_SHARED_MODELS/gpt2-bpe-tokenizer
# (tokref.py; nothing is downloaded). On every string of tokref.cases() (a fixed list rich in
# Unicode white space, scripts, combining marks, emoji, digits, contractions, long runs, ill-formed
# UTF-8, plus seeded random strings) and on every line of the committed golden file
# tests/tok/bpe-golden.jsonl:
#   - tiktoken and HF tokenizers agree with each other (else the case cannot judge qkv);
#   - `qkv --tokenizer DIR tokenize "..." special=false` gives their ids;
#   - the golden file's ids are what the references give today (it is regenerated only
#     deliberately, by gen_golden.py with QKV_REGEN_GOLDEN=1).
# Skips (77) without the test environment (unless QKV_REQUIRE_REFS=1) or without the vocabulary.
# Usage: test_tok_refs.py [QKV_BINARY]

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'ref'))
import qkv_cli  # noqa: E402
import refenv  # noqa: E402
import tokref  # noqa: E402
import tokrun  # noqa: E402

SHOW = 10  # mismatches printed in full


def show(b):
    return '%r (hex %s)' % (b.decode('utf-8', 'replace')[:80], b.hex()[:160])


def main():
    qkv = qkv_cli.qkv_path()
    models = os.environ.get('QKV_SHARED_MODELS', os.path.join(HERE, '..', '..', '..', 'shared', 'models'))
    tokdir = os.path.join(models, 'gpt2-bpe-tokenizer')
    if not os.path.exists(os.path.join(tokdir, 'encoder.json')):
        print('SKIP: %s absent (the real GPT-2 vocabulary)' % tokdir)
        return 77
    refenv.need('tiktoken', 'tokenizers')
    t0 = time.time()
    enc_tt, enc_hf = tokref.references(tokdir)
    golden = tokref.read_golden(os.path.join(HERE, 'bpe-golden.jsonl'))
    texts = tokref.cases()
    seen = set(texts)
    texts += [b for b, _ in golden if b not in seen]
    failures = 0

    # the golden file is what the references give today
    stale = [(b, ids) for b, ids in golden if enc_tt(b) != ids]
    for b, ids in stale[:SHOW]:
        print('FAIL: golden %s: file has %s, tiktoken gives %s' % (show(b), ids, enc_tt(b)))
    if stale:
        print('FAIL: %d of %d golden lines differ from the references (regenerate deliberately: '
              'QKV_REGEN_GOLDEN=1 tests/tok/gen_golden.py)' % (len(stale), len(golden)))
        failures += 1
    if len(golden) < 5000:
        print('FAIL: golden file has %d lines, expected at least 5000' % len(golden))
        failures += 1

    want = [enc_tt(b) for b in texts]
    disagree = [(b, w, enc_hf(b)) for b, w in zip(texts, want) if enc_hf(b) != w]
    for b, w, h in disagree[:SHOW]:
        print('FAIL: references disagree on %s: tiktoken %s, HF tokenizers %s' % (show(b), w, h))
    if disagree:
        print('FAIL: tiktoken and HF tokenizers disagree on %d strings' % len(disagree))
        failures += 1

    try:
        got = tokrun.encode_all(qkv, tokdir, [(b, False) for b in texts])
    except qkv_cli.QkvError as ex:
        print('FAIL: %s' % ex)
        return 1
    bad = [(b, w, g) for b, w, g in zip(texts, want, got) if g != w]
    for b, w, g in bad[:SHOW]:
        print('FAIL: tokenize %s special=false\n  expected %s (tiktoken, HF tokenizers)\n  got      %s' % (show(b), w, g))
    if bad:
        print('FAIL: qkv differs from the references on %d of %d strings' % (len(bad), len(texts)))
        failures += 1
    n_ws = sum(1 for b in texts if any(ch in b.decode('utf-8', 'replace') for ch in tokref.WS[6:] + tokref.NOT_WS))
    print('tokenizer references: %d strings (%d with non-ASCII white space or look-alikes, %d golden lines), '
          '%d token ids; qkv mismatches %d, reference disagreements %d, stale golden lines %d (%.1f s)'
          % (len(texts), n_ws, len(golden), sum(len(w) for w in want), len(bad), len(disagree), len(stale),
             time.time() - t0))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
