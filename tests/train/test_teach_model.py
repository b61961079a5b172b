#!/usr/bin/env python3
# test_teach_model.py - suite 'unit': the built-in teaching model (data/models/teach).
#
#   - it is at most 10 MB, a GPT-2 of the recipe's shape, trained (not marked untrained);
#   - without --model and with no pretrained model installed (an empty $XDG_DATA_HOME) qkv opens
#     it, by the name `teach`; `models` lists it; `--model builtin` is still the untrained GPT-2;
#     with $QKV_TEACH_MODEL empty (no teaching model) the default is `builtin`;
#   - a floor on what it learned (the README's figures are measured with experiment): greedy
#     continuations of sentence openings are sentences of the corpus's grammar (words of
#     core/train/teach.c's lists), which an untrained model's byte noise is not.
# Usage: test_teach_model.py QKV_BINARY

import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, '..', '..')
MODEL = os.path.join(ROOT, 'data', 'models', 'teach')
failures = []


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg, flush=True)


def qkv_json(qkv, args, env, tmp):
    p = subprocess.run([qkv, '--db', os.path.join(tmp, 'q.db'), '--json'] + args, capture_output=True, text=True,
                       timeout=300, env=env)
    if p.returncode != 0:
        fail('qkv %s: exit %d: %s' % (' '.join(args), p.returncode, p.stderr.strip()[:300]))
        return []
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


def main():
    qkv = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, 'build', 'app', 'qkv')
    size = sum(os.path.getsize(os.path.join(MODEL, f)) for f in os.listdir(MODEL))
    if size > 10_000_000:
        fail('data/models/teach holds %d bytes, more than 10 MB' % size)
    with tempfile.TemporaryDirectory(prefix='qkv-teach-model-') as tmp:
        env = dict(os.environ, XDG_DATA_HOME=os.path.join(tmp, 'empty'))
        env.pop('QKV_MODEL', None)
        env.pop('QKV_TEACH_MODEL', None)
        r = qkv_json(qkv, ['-e', 'model; models'], env, tmp)
        if len(r) == 2:
            m, ms = r
            if m.get('name') != 'teach' or m.get('untrained') or m.get('arch') != 'gpt2':
                fail('default model: expected the trained teach, got name %r untrained %r arch %r'
                     % (m.get('name'), m.get('untrained'), m.get('arch')))
            if (m.get('n_layer'), m.get('n_head'), m.get('n_embd'), m.get('n_ctx'), m.get('vocab')) != (4, 4, 128, 256, 257):
                fail('teach: not the recipe\'s shape: %r' % m)
            names = [x.get('name') for x in ms.get('models', [])]
            cur = [x.get('name') for x in ms.get('models', []) if x.get('current')]
            if names[:2] != ['builtin', 'teach'] or cur != ['teach']:
                fail('models: expected builtin and teach (current), got %r (current %r)' % (names, cur))
        r = qkv_json(qkv, ['--model', 'builtin', '-e', 'model'], env, tmp)
        if r and not r[0].get('untrained'):
            fail('--model builtin is not the untrained model: %r' % r[0])
        r = qkv_json(qkv, ['-e', 'model'], dict(env, QKV_TEACH_MODEL=''), tmp)
        if r and not r[0].get('untrained'):
            fail('without the teaching model the default is not builtin: %r' % r[0])
        # a floor on what it learned (an untrained model writes byte noise): greedy continuations
        # of sentence openings are sentences of the corpus's grammar, words it knows
        with open(os.path.join(ROOT, 'core', 'train', 'teach.c')) as f:
            src = f.read()
        vocab = set(re.findall(r'"([a-z]+)"', src)) | {'the', 'a'}
        starts = ['The small', 'A dog', 'The teacher sees', 'A red ball']
        out = qkv_json(qkv, ['--model', 'teach', '-e', '; '.join('generate "%s" max=40 temperature=0' % t for t in starts)],
                       env, tmp)
        for t, o in zip(starts, out):
            sentence = (t + o.get('text', '')).split('.')[0]
            words = sentence.lower().split()
            if len(words) < 4 or any(w not in vocab for w in words):
                fail('teach: %r continues as %r: not a sentence of its grammar' % (t, sentence))
            else:
                print('teach: %r -> %r' % (t, sentence + '.'))
    if failures:
        print('%d failure(s)' % len(failures))
        return 1
    print('teach: the default model without a pretrained one, trained, within 10 MB')
    return 0


if __name__ == '__main__':
    sys.exit(main())
