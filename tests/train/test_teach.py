#!/usr/bin/env python3
# test_teach.py - suite 'unit': the teaching corpus generator (`teach-corpus`, core/train/teach.c).
#
#   - determinism: the same seed writes byte-identical files, another seed other text;
#   - format: every document of train.txt is one of the six kinds (rule lines "IN => OUT" of one
#     rule, arithmetic blocks answered in one way, a repeated sequence, grammar sentences); the
#     outputs are right (recomputed here); the task files are experiment's format (a header, then
#     items with input, target, and rationales for arithmetic), their targets right, 40 pool items
#     and distinct held-out test items; qkv's `prompt` renders them; the committed
#     data/tasks/teach-*.jsonl are what seed 1 writes;
#   - held out: no test item's input appears in training in its task (a cipher line of the input
#     under any shift, a word line under any mapping, a list line, an arithmetic question);
#   - bad input: no out=, a bad seed: one error line.
# Usage: test_teach.py QKV_BINARY

import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, '..', '..')
sys.path.insert(0, os.path.join(HERE, '..', 'ref'))
import qkv_cli  # noqa: E402
failures = []


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg, flush=True)


def run(qkv, cmd, tmp):
    return subprocess.run([qkv, '--db', os.path.join(tmp, 'q.db'), '--json', '-e', cmd], capture_output=True,
                          text=True, timeout=300)


def shift(s, k):
    return ''.join(chr(ord('a') + (ord(c) - ord('a') + k) % 26) for c in s)


def list_ops(s):
    d = s.split(' ')
    return [' '.join(reversed(d)), ' '.join(sorted(d)), d[0], d[-1], ' '.join(d[1:])]


def word_ops(w):
    return [w + 's', w[0], w[-1], w.upper(), w + ' ' + w]


def rule_kind(lines):
    """The task and rule of a document of "IN => OUT" lines, or None when the lines follow none."""
    pairs = [l.split(' => ', 1) for l in lines]
    if any(len(p) != 2 for p in pairs):
        return None
    for k in range(1, 5):
        if all(re.fullmatch('[a-z]{3,5}', i) and o == shift(i, k) for i, o in pairs):
            return ('cipher', k)
    for op in range(5):
        if all(re.fullmatch(r'\d( \d){2,4}', i) and o == list_ops(i)[op] for i, o in pairs):
            return ('list', op)
        if all(re.fullmatch('[a-z]+', i) and o == word_ops(i)[op] for i, o in pairs):
            return ('words', op)
    return None


ARITH = re.compile(r'Q: (\d+) ([-+*]) (\d+) ([-+]) (\d+)\nA: (.*)')


def arith_check(block):
    m = ARITH.fullmatch(block)
    if not m:
        return None
    a, op1, b, op2, c, ans = m.groups()
    mid = eval('%s %s %s' % (a, op1, b))
    val = eval('%d %s %s' % (mid, op2, c))
    rat = '%s %s %s = %d. %d %s %s = %d.' % (a, op1, b, mid, mid, op2, c, val)
    if ans == str(val):
        return 'direct', m.group(0).split('\n')[0][3:]
    if ans == '%s The answer is %d.' % (rat, val):
        return 'rationale', m.group(0).split('\n')[0][3:]
    if ans == "Let's think step by step. %s The answer is %d." % (rat, val):
        return 'trigger', m.group(0).split('\n')[0][3:]
    return None


def check_corpus(text):
    """Classify every document; return the inputs seen per task (for the held-out check)."""
    seen = {'cipher': set(), 'list': set(), 'words': set(), 'arith': set()}
    kinds = {}
    docs = text.split('\n\n')
    for d in docs:
        lines = d.strip('\n').split('\n')
        kind = None
        if ' => ' in lines[0]:
            rk = rule_kind(lines)
            if rk:
                kind = rk[0]
                for l in lines:
                    seen[kind].add(l.split(' => ')[0])
        elif lines[0].startswith('Q: '):
            r = arith_check(d.strip('\n'))
            if r:
                kind = 'arith-' + r[0]
                seen['arith'].add(r[1])
        elif len(lines) == 1 and re.fullmatch(r'[A-Z][a-z ]+\.( [A-Z][a-z ]+\.)*', lines[0]):
            kind = 'grammar'
        elif len(lines) == 1:
            # a sequence written 2 to 4 times, separated by spaces
            for reps in (2, 3, 4):
                n = (len(lines[0]) - (reps - 1)) // reps
                s = lines[0][:n]
                if n > 0 and ' '.join([s] * reps) == lines[0]:
                    kind = 'repeat'
                    break
        if not kind:
            fail('a document of no kind: %r' % d[:200])
            if len([f for f in failures if f.startswith('a document')]) > 5:
                break
            continue
        kinds[kind] = kinds.get(kind, 0) + 1
    for k in ('cipher', 'list', 'words', 'arith-direct', 'arith-rationale', 'arith-trigger', 'grammar', 'repeat'):
        if kinds.get(k, 0) < 10:
            fail('too few documents of kind %s: %d' % (k, kinds.get(k, 0)))
    print('documents: %s' % ', '.join('%s %d' % kv for kv in sorted(kinds.items())))
    return seen


def check_tasks(qkv, tmp, d, seen):
    for name, kind in [('teach-cipher', 'cipher'), ('teach-list', 'list'), ('teach-words', 'words'),
                       ('teach-arith', 'arith')]:
        path = os.path.join(d, name + '.jsonl')
        with open(path) as f:
            rows = [json.loads(l) for l in f if l.strip()]
        head, items = rows[0], rows[1:]
        if head.get('name') != name:
            fail('%s: header %r' % (name, head))
        pool = [it for it in items if it.get('split') == 'pool']
        test = [it for it in items if it.get('split') != 'pool']
        want_pool = 40 if kind != 'words' else min(40, len(pool))
        if len(pool) != want_pool or len(test) < (13 if kind == 'words' else 100):
            fail('%s: %d pool and %d test items' % (name, len(pool), len(test)))
        ins = [it['input'] for it in items]
        if len(set(ins)) != len(ins):
            fail('%s: repeated inputs' % name)
        for it in items:
            i, t = it['input'], it['target']
            want = {'cipher': lambda: shift(i, 2), 'list': lambda: list_ops(i)[0], 'words': lambda: word_ops(i)[0],
                    'arith': lambda: str(eval(i))}[kind]()
            if t != want:
                fail('%s: %r => %r, expected %r' % (name, i, t, want))
            if kind == 'arith' and not it.get('rationale', '').endswith('= %s.' % t):
                fail('%s: %r: rationale %r' % (name, i, it.get('rationale')))
        leaked = [it['input'] for it in test if it['input'] in seen[kind]]
        if leaked:
            fail('%s: %d held-out inputs appear in training, e.g. %r' % (name, len(leaked), leaked[:3]))
        if kind != 'arith' and not any(it['input'] in seen[kind] for it in pool):
            fail('%s: no exemplar input seen in training (the pool is the training side)' % name)
        p = run(qkv, 'prompt show %s shots=3 %s' % (path, 'cot=on' if kind == 'arith' else ''), tmp)
        if p.returncode != 0:
            fail('%s: prompt: %s' % (name, p.stderr.strip()))
        committed = os.path.join(ROOT, 'data', 'tasks', name + '.jsonl')
        with open(path) as f, open(committed) as g:
            if f.read() != g.read():
                fail('%s: data/tasks/%s.jsonl is not what teach-corpus seed=1 writes' % (name, name))
        print('%s: %d pool, %d held-out test items' % (name, len(pool), len(test)))


def main():
    qkv = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, 'build', 'app', 'qkv')
    with tempfile.TemporaryDirectory(prefix='qkv-teach-') as tmp:
        a, b, c = (os.path.join(tmp, x) for x in 'abc')
        for d, seed in ((a, 1), (b, 1), (c, 2)):
            p = run(qkv, 'teach-corpus out=%s seed=%d bytes=400000' % (d, seed), tmp)
            if p.returncode != 0:
                fail('teach-corpus seed=%d: %s' % (seed, p.stderr.strip()))
                return 1
        names = sorted(os.listdir(a))
        for n in names:
            with open(os.path.join(a, n), 'rb') as f, open(os.path.join(b, n), 'rb') as g:
                if f.read() != g.read():
                    fail('%s: seed 1 twice gives different files' % n)
        with open(os.path.join(a, 'train.txt')) as f, open(os.path.join(c, 'train.txt')) as g:
            text = f.read()
            if text == g.read():
                fail('seeds 1 and 2 give the same text')
        if not 400000 <= len(text.encode()) < 401000:
            fail('bytes=400000 wrote %d bytes' % len(text.encode()))
        p = run(qkv, 'teach-corpus out=%s seed=1 bytes=400000' % a, tmp)  # JSON: the bytes written, not asked
        got = json.loads(p.stdout.strip().split('\n')[-1]).get('bytes') if p.returncode == 0 and p.stdout.strip() else None
        if got != len(text.encode()):
            fail('teach-corpus JSON bytes %r, train.txt holds %d' % (got, len(text.encode())))
        seen = check_corpus(text)
        # the held-out check on the full corpus of the recipe (12 MiB)
        full = os.path.join(tmp, 'full')
        p = run(qkv, 'teach-corpus out=%s' % full, tmp)
        if p.returncode != 0:
            fail('teach-corpus: %s' % p.stderr.strip())
        else:
            with open(os.path.join(full, 'train.txt')) as f:
                seen = check_corpus(f.read())
            check_tasks(qkv, tmp, full, seen)
        for label, cmd, want in [('no out', 'teach-corpus seed=1', 'out='),
                                 ('bad seed', 'teach-corpus out=%s seed=x' % c, 'seed'),
                                 ('bad bytes', 'teach-corpus out=%s bytes=0' % c, 'bytes')]:
            p = run(qkv, cmd, tmp)
            err = p.stderr.strip()
            if p.returncode == 0 or want not in err or len(err.splitlines()) != 1:
                fail('bad input (%s): exit %d, %r' % (label, p.returncode, err[:200]))
        # a person's file where the corpus goes is refused, kept as it was (teach-corpus and the
        # recipe wrote over train.txt and the task files); the corpus's own files are left alone
        mine = os.path.join(tmp, 'mine')
        for d in (mine, os.path.join(mine, 'r', 'corpus')):
            os.makedirs(d)
            with open(os.path.join(d, 'train.txt'), 'w') as f:
                f.write('precious\n')
        for cmd, where in (('teach-corpus out=%s bytes=1000' % mine, mine),
                           ('train recipe=teach out=%s steps=2 warmup=0' % os.path.join(mine, 'r'),
                            os.path.join(mine, 'r', 'corpus'))):
            p = run(qkv, cmd, tmp)
            with open(os.path.join(where, 'train.txt')) as f:
                kept = f.read() == 'precious\n'
            if p.returncode == 0 or 'is not the teaching corpus' not in p.stderr or not kept:
                fail('%s over a person\'s train.txt: exit %d, %r, kept: %s' % (cmd.split()[0], p.returncode,
                                                                               p.stderr.strip()[-200:], kept))
        ino = os.stat(os.path.join(a, 'train.txt')).st_ino
        p = run(qkv, 'teach-corpus out=%s seed=1 bytes=400000' % a, tmp)  # its own corpus again: kept as it is
        if p.returncode != 0 or os.stat(os.path.join(a, 'train.txt')).st_ino != ino:
            fail('teach-corpus again into its own corpus: exit %d, %r' % (p.returncode, p.stderr.strip()[-200:]))
        # train recipe=teach that fails before its first checkpoint removes the out= it made, its
        # 12 MiB corpus with it (both were left behind before 2026-12-06), as train FILE does
        # (steps= at most the recipe's warmup, none given, is refused naming the recipe's: the
        # message named warmup, which nobody had typed)
        for i, (opts, want) in enumerate((('steps=1', 'recipe=teach warms up for 100 steps (its warmup=100), more '
                                                      'than steps=1: give warmup= below steps too'),
                                          ('steps=100', 'more than steps=100'),
                                          ('steps=2 warmup=2', 'warmup must be below steps'),
                                          ('layers=abc', 'layers=abc'))):
            out = os.path.join(tmp, 'recipe-%d' % i)
            p = run(qkv, 'train recipe=teach out=%s %s' % (out, opts), tmp)
            if p.returncode == 0 or want not in p.stderr or os.path.exists(out):
                fail('train recipe=teach %s: exit %d, %r, out= left: %s' % (opts, p.returncode, p.stderr.strip()[:200],
                                                                           os.path.exists(out)))
        # recipe=teach started again into the folder it is training in: refused before it writes
        # anything there (it wrote the corpus over the running one's, and removed the folder it
        # thought it made when both started together)
        out = os.path.join(tmp, 'recipe-twice')
        args = ['--db', os.path.join(tmp, 'q.db'), '--json', '-e', 'train recipe=teach out=%s steps=100000' % out]
        second = []

        corpus = os.path.join(out, 'corpus', 'train.txt')

        def again():
            ino = os.stat(corpus).st_ino
            second.append(qkv_cli.run_or_none(qkv, args, 60))
            second.append(os.stat(corpus).st_ino == ino)
        rc, so, se = qkv_cli.interrupted(qkv, args, after='step 1/', during=again)
        p2, kept = second if len(second) == 2 else (None, None)
        r = json.loads(so.strip().split('\n')[-1]) if so.strip() else {}
        if not p2 or p2.returncode == 0 or 'is in use by another qkv process' not in p2.stderr or not kept:
            fail('train recipe=teach twice into one out=: the second: exit %s, %r, the corpus left alone: %s'
                 % (p2 and p2.returncode, p2 and p2.stderr.strip()[-300:], kept))
        elif rc != 130 or not r.get('stopped') or not os.path.exists(os.path.join(out, 'model.safetensors')):
            fail('train recipe=teach beside a refused second: exit %s, %r, %r' % (rc, r, se.strip()[-300:]))
    if failures:
        print('%d failure(s)' % len(failures))
        return 1
    print('teach-corpus: deterministic, well-formed, held-out items never in training')
    return 0


if __name__ == '__main__':
    sys.exit(main())
