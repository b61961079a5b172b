#!/usr/bin/env python3
# gen_tok_golden.py - the golden files of tests/tok/golden/: the ids the references give on a
# share of each live reference test's strings, so that test_tok_golden.py checks qkv without the
# test environment. Each reference test module (test_tok_*.py) offers golden_specs(regen): for
# each file its name, header (the tokenizer it is for and the reference), the reference's encode
# function and the (text, special) items; with regen it first writes the fixtures the file is for
# (tests/tok/fixtures: tokenizer.json files trained by HF tokenizers).
#
# Check that the committed files match the references (prints differences, exit 1 if any):
#     .venv-test/bin/python tests/tok/gen_tok_golden.py
# Regenerate them, deliberately:
#     QKV_REGEN_GOLDEN=1 .venv-test/bin/python tests/tok/gen_tok_golden.py [NAME...]
# golden/chat-renders.jsonl holds chat template renders (test_tok_chat.py writes it).
# (tests/tok/bpe-golden.jsonl, GPT-2's, has its own generator: gen_golden.py.)

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tokrun  # noqa: E402
import test_tok_bytelevel  # noqa: E402
import test_tok_spm  # noqa: E402
import test_tok_chat  # noqa: E402
import test_tok_wordpiece  # noqa: E402

MODULES = [test_tok_wordpiece, test_tok_bytelevel, test_tok_spm]


def main():
    only = set(sys.argv[1:])
    regen = os.environ.get('QKV_REGEN_GOLDEN') == '1'
    bad = 0
    for mod in MODULES:
        for name, head, encode, items in mod.golden_specs(regen):
            if only and name not in only:
                continue
            rows = [(tokrun.as_bytes(t), s, encode(t, s)) for t, s in items]
            text = tokrun.golden_text(head, rows)
            path = tokrun.golden_path(name)
            if regen:
                with open(path, 'w', encoding='utf-8') as f:
                    f.write(text)
                print('wrote %s: %d lines' % (path, len(rows)), file=sys.stderr)
                continue
            have = open(path, encoding='utf-8').read() if os.path.exists(path) else ''
            if have != text:
                bad += 1
                print('%s differs from the reference (or is missing); QKV_REGEN_GOLDEN=1 rewrites it' % path,
                      file=sys.stderr)
            else:
                print('%s matches the reference (%d lines)' % (path, len(rows)), file=sys.stderr)
    if not only or test_tok_chat.CHAT_GOLDEN in only:
        bad += not test_tok_chat.write_or_check_golden(regen)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
