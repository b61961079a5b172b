#!/usr/bin/env python3
# test_tok_wordpiece.py - suite 'reference': qkv's WordPiece (BERT) against HF, live.
#
# The real bert-base-uncased vocabulary ($QKV_SHARED_MODELS/bert-uncased-tokenizer) is loaded
# two ways, each compared with its reference:
#   - tokenizer.json: qkv --tokenizer tokenizer.json  vs  tokenizers.Tokenizer.from_file;
#   - vocab.txt (+ tokenizer_config.json beside it): qkv --tokenizer vocab.txt  vs
#     transformers.AutoTokenizer on a directory holding only those two files (a BertTokenizer);
#   - a copy of tokenizer.json with added tokens found after normalization ("normalized": true:
#     "Qkv Tool" is found in "QKV TOOL"), and with lstrip, rstrip, single_word;
#   - a copy with "pre_tokenizer": null: HF splits nothing then (the text between added tokens
#     is one word, spaces and punctuation included, mostly [UNK]); qkv split it as BERT does.
# On every string of unicases.all_cases (samples of every 128-code-point window of planes 0-3
# and 14, combining marks in any order, every CJK range, every control, format and White_Space
# code point, words around the 100-character limit, case mappings, [MASK] and the other
# specials inside text, and mixtures): `tokenize ... special=true` against the reference's
# encode with its special tokens ([CLS] ... [SEP], specials recognised), and `special=false`
# against encode without special tokens on the strings that hold no special-token text (the
# references split special tokens out of the text even then). The two references must agree,
# and the golden file golden/wordpiece.jsonl must be what tokenizer.json gives today.
# Skips (77) without the vocabulary, or without the test environment unless QKV_REQUIRE_REFS=1.
# Usage: test_tok_wordpiece.py [QKV_BINARY]

import json
import os
import sys
import tempfile
import time

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_VERBOSITY', 'error')

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tokrun  # noqa: E402
import unicases  # noqa: E402
import qkv_cli  # noqa: E402
import refenv  # noqa: E402

SEED = 20261208
SPECIALS = ['[MASK]', '[CLS]', '[SEP]', '[UNK]', '[PAD]']
# added to a copy of tokenizer.json: found after normalization (lower case, accents stripped) or
# with lstrip / rstrip / single_word
EXTRA_ADDED = [{'id': 30522, 'content': 'Qkv Tool', 'special': False, 'normalized': True},
               {'id': 30523, 'content': '<mask2>', 'special': True, 'normalized': False, 'lstrip': True},
               {'id': 30524, 'content': 'café', 'special': False, 'normalized': True, 'single_word': True},
               {'id': 30525, 'content': '->', 'special': False, 'normalized': False, 'rstrip': True}]
EXTRA_TEXT = ['Qkv Tool', 'qkv tool', 'QKV TOOL', 'qkv  tool', 'Qkv Tóol', '<mask2>', 'café', 'CAFÉ', 'cafe\u0301',
              'xcafé', '->', '-> ']
GOLDEN = 'wordpiece'


def bert_dir():
    return os.path.join(tokrun.shared_models(), 'bert-uncased-tokenizer')


def texts():
    return unicases.all_cases(SEED, n_mixed=10000, tokens=SPECIALS + EXTRA_TEXT)


def items_of(ts):
    """(text, special) pairs: every text with special tokens, those without special-token text also
    without."""
    return [(t, True) for t in ts] + [(t, False) for t in ts if not any(s in t for s in SPECIALS)]


def hf_json(path=None):
    """A tokenizer.json through HF tokenizers: encode(text, special) -> ids."""
    import tokenizers
    hf = tokenizers.Tokenizer.from_file(path or os.path.join(bert_dir(), 'tokenizer.json'))
    return lambda t, special: hf.encode(t, add_special_tokens=special).ids


def with_added(tmp):
    """A copy of tokenizer.json with EXTRA_ADDED; its path."""
    with open(os.path.join(bert_dir(), 'tokenizer.json'), encoding='utf-8') as f:
        j = json.load(f)
    for a in EXTRA_ADDED:
        j['added_tokens'].append(dict({'single_word': False, 'lstrip': False, 'rstrip': False}, **a))
    path = os.path.join(tmp, 'added', 'tokenizer.json')
    os.makedirs(os.path.dirname(path))
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(j, f, ensure_ascii=False)
    return path


def without_pre_tokenizer(tmp):
    """A copy of tokenizer.json with "pre_tokenizer": null; its path."""
    with open(os.path.join(bert_dir(), 'tokenizer.json'), encoding='utf-8') as f:
        j = json.load(f)
    j['pre_tokenizer'] = None
    path = os.path.join(tmp, 'no-pre', 'tokenizer.json')
    os.makedirs(os.path.dirname(path))
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(j, f, ensure_ascii=False)
    return path


# words, punctuation and spaces that BertPreTokenizer would split, with [MASK] between them
NO_PRE_TEXT = ['hello', 'hello world', 'Hello, world!', 'a.b', 'unaffable', "don't", ' x', 'x ', '  ', 'ab [MASK] cd',
               'hello [MASK]world', 'caf\u00e9', '\u4e2d\u6587', 'x' * 100, 'x' * 101, '...', 'a\tb']


def hf_vocab_txt(tmp):
    """vocab.txt + tokenizer_config.json through transformers' AutoTokenizer."""
    import transformers
    for name in ('vocab.txt', 'tokenizer_config.json'):
        os.symlink(os.path.join(os.path.abspath(bert_dir()), name), os.path.join(tmp, name))
    tk = transformers.AutoTokenizer.from_pretrained(tmp)
    return lambda t, special: tk.encode(t, add_special_tokens=special)


def golden_specs(regen=False):
    """For gen_tok_golden.py: [(name, header, reference, items)]."""
    ts = texts()
    items = tokrun.sample([(t, True) for t in ts], 2500) + tokrun.sample([(t, False) for t in ts[::7] if not any(
        s in t for s in SPECIALS)], 500)
    head = {'tokenizer': 'shared:bert-uncased-tokenizer/tokenizer.json', 'reference': 'HF tokenizers'}
    return [(GOLDEN, head, hf_json(), items)]


def main():
    qkv = qkv_cli.qkv_path()
    if not os.path.exists(os.path.join(bert_dir(), 'vocab.txt')):
        print('SKIP: %s absent (the real BERT vocabulary)' % bert_dir())
        return 77
    refenv.need('tokenizers', 'transformers')
    t0 = time.time()
    rep = tokrun.Report()
    ts = texts()
    items = items_of(ts)
    ref_json = hf_json()
    want_json = [ref_json(t, s) for t, s in items]
    with tempfile.TemporaryDirectory(prefix='qkv-wp-') as tmp:
        ref_txt = hf_vocab_txt(tmp)
        want_txt = [ref_txt(t, s) for t, s in items]
        added = with_added(tmp)
        items_added = [(t, True) for t in ts] + [(t, False) for t in ts if '<mask2>' not in t and not any(
            s in t for s in SPECIALS)]
        rep.check(qkv, 'tokenizer.json + added tokens', added, items_added, hf_json(added), 'HF tokenizers')
        no_pre = without_pre_tokenizer(tmp)
        rep.check(qkv, 'tokenizer.json, pre_tokenizer null', no_pre, items_of(NO_PRE_TEXT) + items, hf_json(no_pre),
                  'HF tokenizers')
    disagree = [(it, a, b) for it, a, b in zip(items, want_json, want_txt) if a != b]
    for (t, s), a, b in disagree[:tokrun.SHOW]:
        print('FAIL: references disagree on %s special=%s: tokenizers %s, transformers %s' % (tokrun.show(t), s, a, b))
    if disagree:
        rep.fail('HF tokenizers (tokenizer.json) and transformers (vocab.txt) disagree on %d strings' % len(disagree))
    for name, want, ref in (('tokenizer.json', want_json, 'HF tokenizers'),
                            ('vocab.txt', want_txt, 'transformers BertTokenizer')):
        rep.check(qkv, name, os.path.join(bert_dir(), name), items, want, ref)
    tokrun.check_golden(rep, GOLDEN, lambda b, s: ref_json(b.decode('utf-8', 'replace'), s))
    n_chars = len(set(ch for t in ts for ch in t))
    return rep.summary('WordPiece references: %d strings (%d distinct code points), %d checks each, %d reference '
                       'disagreements' % (len(ts), n_chars, len(items), len(disagree)), t0)


if __name__ == '__main__':
    sys.exit(main())
