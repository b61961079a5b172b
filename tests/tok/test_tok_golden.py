#!/usr/bin/env python3
# test_tok_golden.py - suite 'real': qkv's tokenizers against the committed golden files of
# tests/tok/golden/ (the ids HF tokenizers, transformers or sentencepiece gave, recorded by
# gen_tok_golden.py), without the test environment: only the standard library and the qkv binary.
#
# Each file names its tokenizer (a file of $QKV_SHARED_MODELS, or a fixture of tests/tok/fixtures);
# a file whose tokenizer is absent is skipped with a line saying so, and the test skips (77) when
# every one is. Every line's `tokenize "..." special=...` must give the recorded ids.
# golden/chat-renders.jsonl (transformers' renders of the chat templates of tests/tok/chat) is
# checked through tests/tok/tok_dump: each conversation must render to the recorded text, or fail
# where transformers raised.
# Usage: test_tok_golden.py [QKV_BINARY [TOK_DUMP_BINARY]]

import glob
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tokrun  # noqa: E402
import qkv_cli  # noqa: E402


def check_chat(rep, path):
    """golden/chat-renders.jsonl through tok_dump chat, one run per template."""
    dump = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.environ.get('QKV_SRCDIR', os.path.join(HERE, '..', '..')), 'build', 'tests', 'tok', 'tok_dump')
    with open(path, encoding='utf-8') as f:
        rows = [json.loads(l) for l in f.read().split('\n')[1:] if l.strip()]
    by = {}
    for r in rows:
        by.setdefault(r['template'], []).append(r)
    n_bad = 0
    for name, rs in sorted(by.items()):
        with open(os.path.join(HERE, 'chat', name + '.json'), encoding='utf-8') as f:
            fx = json.load(f)
        with tempfile.TemporaryDirectory(prefix='qkv-chat-') as tmp:
            with open(os.path.join(tmp, 'tokenizer_config.json'), 'w', encoding='utf-8') as f:
                json.dump({'chat_template': fx['chat_template'], 'bos_token': fx['bos_token'],
                           'eos_token': fx['eos_token']}, f)
            tok = os.path.join(tokrun.FIXTURES, 'gpt2', 'tokenizer.json')
            os.symlink(tok, os.path.join(tmp, 'tokenizer.json'))
            inp = ''.join(json.dumps({'messages': r['messages'], 'gen': r['gen']}) + '\n' for r in rs)
            p = subprocess.run([dump, 'chat', tmp], input=inp.encode(), capture_output=True, timeout=120)
        lines = p.stdout.decode('utf-8').split('\n')[1:-1]
        if p.returncode or len(lines) != len(rs):
            rep.fail('chat %s: tok_dump exit %d, %d lines for %d renders: %s' % (name, p.returncode, len(lines),
                                                                             len(rs), p.stderr.decode()[:300]))
            continue
        for r, l in zip(rs, lines):
            got = None if l.startswith('error ') else bytes.fromhex(l).decode('utf-8')
            if got != r['text']:
                n_bad += 1
                if n_bad <= tokrun.SHOW:
                    print('FAIL: chat %s gen=%s %s\n  expected %r\n  got      %r' % (name, r['gen'], r['messages'],
                                                                                 r['text'], got if got else l))
    if n_bad:
        rep.fail('chat renders: %d of %d differ from the golden file' % (n_bad, len(rows)))
    rep.lines.append('chat renders: %d templates, %d renders, %d mismatches' % (len(by), len(rows), n_bad))


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
        if name == 'chat-renders':
            check_chat(rep, path)
            ran += 1
            continue
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
