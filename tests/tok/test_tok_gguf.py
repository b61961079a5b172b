#!/usr/bin/env python3
# test_tok_gguf.py - suite 'real': tokenizers read from GGUF metadata alone (`--tokenizer
# FILE.gguf`: llama.cpp's vocabulary files in $QKV_SHARED_MODELS) tokenize exactly as the same
# vocabularies do from their usual files, on the corpus of tokref.cases() (Unicode white space,
# scripts, combining marks, emoji, digits, contractions, long runs, ill-formed UTF-8, seeded
# random strings) plus special-token text:
#   - ggml-vocab-gpt-2.gguf (model gpt2, pre gpt-2) against encoder.json + vocab.bpe, both
#     without special tokens (the golden ids of tiktoken and HF tokenizers where the golden file
#     has the string) and with them (<|endoftext|> is one token);
#   - ggml-vocab-bert-bge.gguf (model bert, llama.cpp's "phantom space" spelling) against
#     vocab.txt, with [CLS] ... [SEP] added and without (the vocab.txt tokenizer is checked
#     against HF elsewhere).
# Skips (77) when the shared vocabularies are absent.
# Usage: test_tok_gguf.py [QKV_BINARY]

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'ref'))
import qkv_cli  # noqa: E402
import tokref  # noqa: E402
import tokrun  # noqa: E402

SHOW = 8
SPECIAL_CASES = [b'hello <|endoftext|>', b'<|endoftext|>', b'a<|endoftext|>b<|endoftext|>', b'<|endoftext',
                 b'[CLS] x [SEP] [MASK] [UNK] [PAD]', b'[mask]', b'un[MASK]able', b'##ing', b'\xe2\x96\x81hello']


def encode_all(qkv, tok, texts, special):
    """qkv's ids for each text (bytes) with --tokenizer tok, through one headless --script run."""
    with tempfile.TemporaryDirectory(prefix='qkv-tokgguf-') as tmp:
        script = os.path.join(tmp, 'script.qkv')
        with open(script, 'w', encoding='ascii') as f:
            for b in texts:
                f.write('tokenize %s special=%s\n' % (tokrun.qkv_escape(b), 'true' if special else 'false'))
        p = subprocess.run([qkv, '--tokenizer', tok, '--db', os.path.join(tmp, 'qkv.db'), '--json', '--script', script],
                           capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise qkv_cli.QkvError('qkv --tokenizer %s --script: exit %d: %s' % (tok, p.returncode, p.stderr.strip()[:2000]))
    lines = [l for l in p.stdout.split("\n") if l.strip()]
    if len(lines) != len(texts):
        raise qkv_cli.QkvError('%d tokenize commands but %d JSON lines' % (len(texts), len(lines)))
    return [json.loads(l).get('ids') for l in lines]


def compare(tag, texts, want, got):
    bad = [(b, w, g) for b, w, g in zip(texts, want, got) if w != g]
    for b, w, g in bad[:SHOW]:
        print('FAIL: %s: %r\n  expected %s\n  got      %s' % (tag, b.decode('utf-8', 'replace')[:80], w, g))
    if bad:
        print('FAIL: %s: %d of %d strings differ' % (tag, len(bad), len(texts)))
    return len(bad)


def main():
    qkv = qkv_cli.qkv_path()
    models = os.environ.get('QKV_SHARED_MODELS', os.path.join(HERE, '..', '..', '..', 'shared', 'models'))
    gpt2_dir, bert_dir = os.path.join(models, 'gpt2-bpe-tokenizer'), os.path.join(models, 'bert-uncased-tokenizer')
    gpt2_gguf, bert_gguf = os.path.join(gpt2_dir, 'ggml-vocab-gpt-2.gguf'), os.path.join(bert_dir, 'ggml-vocab-bert-bge.gguf')
    for p in (gpt2_gguf, bert_gguf, os.path.join(gpt2_dir, 'encoder.json'), os.path.join(bert_dir, 'vocab.txt')):
        if not os.path.exists(p):
            print('SKIP: %s absent (the shared vocabularies)' % p)
            return 77
    t0 = time.time()
    texts = tokref.cases(n=3000) + SPECIAL_CASES
    golden = dict(tokref.read_golden(os.path.join(HERE, 'bpe-golden.jsonl')))
    failures = 0
    try:
        # GPT-2: without special tokens, against the vocabulary's own files and the golden ids
        got = encode_all(qkv, gpt2_gguf, texts, False)
        want = encode_all(qkv, gpt2_dir, texts, False)
        failures += compare('gpt-2 gguf special=false vs encoder.json', texts, want, got)
        in_golden = [(b, golden[b], g) for b, g in zip(texts, got) if b in golden]
        failures += compare('gpt-2 gguf special=false vs golden (tiktoken)', [x[0] for x in in_golden],
                            [x[1] for x in in_golden], [x[2] for x in in_golden])
        got_s = encode_all(qkv, gpt2_gguf, texts, True)
        want_s = encode_all(qkv, gpt2_dir, texts, True)
        failures += compare('gpt-2 gguf special=true vs encoder.json', texts, want_s, got_s)
        if got_s[len(texts) - len(SPECIAL_CASES)] != [31373, 220, 50256]:
            print('FAIL: "hello <|endoftext|>" gave %s, expected [31373, 220, 50256]' % got_s[-len(SPECIAL_CASES)])
            failures += 1
        # BERT: [CLS] ... [SEP] around each text
        got_b = encode_all(qkv, bert_gguf, texts, True)
        want_b = encode_all(qkv, os.path.join(bert_dir, 'vocab.txt'), texts, True)
        failures += compare('bert-bge gguf vs vocab.txt', texts, want_b, got_b)
        got_bp = encode_all(qkv, bert_gguf, texts, False)
        want_bp = encode_all(qkv, os.path.join(bert_dir, 'vocab.txt'), texts, False)
        failures += compare('bert-bge gguf special=false vs vocab.txt', texts, want_bp, got_bp)
    except qkv_cli.QkvError as ex:
        print('FAIL: %s' % ex)
        return 1
    print('GGUF vocabularies: %d strings, gpt-2 %d ids, bert %d ids, %d failure(s) (%.1f s)'
          % (len(texts), sum(len(g) for g in got), sum(len(g) for g in got_b), failures, time.time() - t0))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
