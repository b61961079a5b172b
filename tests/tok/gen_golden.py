#!/usr/bin/env python3
# gen_golden.py - tests/tok/bpe-golden.jsonl: the GPT-2 token ids of some 14,000 strings as the
# reference implementations give them, so that test_bpe_real.c (suite real) checks qkv without
# the test environment.
#
# The ids come from tiktoken and HF tokenizers, both built from the local vocabulary
# ($QKV_SHARED_MODELS/gpt2-bpe-tokenizer, see tokref.py), which must agree on every string. The
# strings: those already in the file, in their order (the first 3,959 came from the seeded
# generator of the retired gen-golden.js; their ids then came from the npm package gpt-3-encoder,
# whose JavaScript \s was wrong on U+0085 and U+FEFF), then tokref.cases() not yet in it.
#
# Check that the committed file matches the references (prints differences, exit 1 if any):
#     .venv-test/bin/python tests/tok/gen_golden.py
# Regenerate it, deliberately (an unchanged tokref.py writes an identical file):
#     QKV_REGEN_GOLDEN=1 .venv-test/bin/python tests/tok/gen_golden.py
#
# Each line is {"text_hex": "...", "ids": [...]}: the text as bytes in hex, so that ill-formed
# UTF-8 survives (the references see it decoded with one U+FFFD per maximal ill-formed subpart).

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tokref  # noqa: E402

OUT = os.path.join(HERE, 'bpe-golden.jsonl')


def main():
    models = os.environ.get('QKV_SHARED_MODELS', os.path.join(HERE, '..', '..', '..', 'shared', 'models'))
    tokdir = os.path.join(models, 'gpt2-bpe-tokenizer')
    enc_tt, enc_hf = tokref.references(tokdir)
    old = tokref.read_golden(OUT) if os.path.exists(OUT) else []
    texts, seen = [], set()
    for b in [b for b, _ in old] + tokref.cases():
        if b not in seen:
            seen.add(b)
            texts.append(b)
    lines, disagree = [], 0
    for b in texts:
        ids = enc_tt(b)
        if enc_hf(b) != ids:
            disagree += 1
            print('references disagree on %r: tiktoken %s, HF tokenizers %s' % (b, ids, enc_hf(b)), file=sys.stderr)
        lines.append(json.dumps({'text_hex': b.hex(), 'ids': ids}, separators=(',', ':')))
    if disagree:
        print('%d disagreements: nothing written' % disagree, file=sys.stderr)
        return 1
    text = '\n'.join(lines) + '\n'
    if os.environ.get('QKV_REGEN_GOLDEN') == '1':
        with open(OUT, 'w', encoding='utf-8') as f:
            f.write(text)
        print('wrote %s: %d lines' % (OUT, len(lines)), file=sys.stderr)
        return 0
    with open(OUT, encoding='utf-8') as f:
        have = f.read()
    if have == text:
        print('%s matches the references (%d lines)' % (OUT, len(lines)), file=sys.stderr)
        return 0
    old_map = dict(old)
    n = 0
    for b in texts:
        if old_map.get(b) != enc_tt(b):
            n += 1
            if n <= 10:
                print('%r: file %s, references %s' % (b, old_map.get(b, '(absent)'), enc_tt(b)), file=sys.stderr)
    print('%s differs from the references on %d strings; QKV_REGEN_GOLDEN=1 rewrites it' % (OUT, n), file=sys.stderr)
    return 1


if __name__ == '__main__':
    sys.exit(main())
