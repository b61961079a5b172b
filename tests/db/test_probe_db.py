#!/usr/bin/env python3
"""test_probe_db.py - probe sweeps logged in SQLite (migration 6), through the real qkv binary.

`probe train` records its sweep (probe_runs) and every layer (probe_layers) with exactly the numbers
it printed, read back here with Python's sqlite3; `probe runs` lists them newest first, filtered by
dataset (a file by its absolute path) and limited; a database at schema version 5 is migrated on
the first probe run; bad options are refused with a message. A probe kept with save=FILE holds the
weights that give the sweep's held-out accuracy on its rows (dump=, recomputed with NumPy), and
`probe apply FILE "TEXT"` gives at each token the probabilities NumPy computes from the file and
those rows; bad probe files are refused with a message.

Usage: test_probe_db.py QKV_BINARY
"""
import csv
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
import qkv_cli  # noqa: E402
from statsref import wilson95  # noqa: E402

QKV = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', '..', 'build', 'app', 'qkv'))
TMP = qkv_cli.scratch_dir('qkv-probedb-')
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print('FAIL: ' + what, file=sys.stderr)
    return cond


def qkv(db, *cmds, ok=True, cwd=None):
    args = [QKV, '--model', 'builtin', '--db', db, '--json']
    for c in cmds:
        args += ['-e', c]
    p = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=cwd)
    if ok and p.returncode != 0:
        raise SystemExit('qkv %s failed (%d): %s' % (cmds, p.returncode, p.stderr))
    return p, [json.loads(line) for line in p.stdout.split("\n") if line.strip()]


def same(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-9 * (1 + abs(b))


def check_logged(db, res, dataset):
    rid = res.get('probe_run_id')
    if not check(isinstance(rid, int) and rid > 0, 'probe train gives probe_run_id: %r' % rid):
        return
    c = sqlite3.connect(db)
    c.row_factory = sqlite3.Row
    row = c.execute('SELECT * FROM probe_runs WHERE id = ?', (rid,)).fetchone()
    check(row is not None, 'probe run %d is in probe_runs' % rid)
    want = {'dataset': dataset, 'level': res['level'], 'examples': res['examples'], 'n_rows': res['rows'],
            'n_train': res['n_train'], 'n_test': res['n_test'], 'best_layer': res['best_layer'],
            'model_path': 'builtin'}
    for k, v in want.items():
        check(row[k] == v, 'probe_runs.%s = %r, want %r' % (k, row[k], v))
    check(json.loads(row['classes']) == res['classes'], 'classes %s vs %s' % (row['classes'], res['classes']))
    check(same(row['majority'], res['majority']), 'majority %r vs %r' % (row['majority'], res['majority']))
    check(same(row['expected_layer'], res['expected_layer']), 'expected_layer %r vs %r'
          % (row['expected_layer'], res['expected_layer']))
    opts = json.loads(row['options'])
    check(str(opts.get('steps')) == str(res['steps']), 'options record steps: %s' % row['options'])
    layers = c.execute('SELECT * FROM probe_layers WHERE run_id = ? ORDER BY layer', (rid,)).fetchall()
    check([l['layer'] for l in layers] == [l['layer'] for l in res['layers']], 'probe_layers rows: %s'
          % [l['layer'] for l in layers])
    for got, l in zip(layers, res['layers']):
        for k, j in (('accuracy', 'accuracy'), ('train_accuracy', 'train_accuracy'), ('control', 'control')):
            check(same(got[k], l[j]), 'layer %d %s %r vs %r' % (l['layer'], k, got[k], l[j]))
    c.close()


def npy(path):
    import numpy as np
    return np.load(path)


def saved_probe(db):
    try:
        import numpy as np
    except ImportError:
        print('numpy missing: saved probes not checked')
        return
    pf, dump = os.path.join(TMP, 'p.json'), os.path.join(TMP, 'rows')
    _, (r,) = qkv(db, 'probe train number n=20 layers=1,3 steps=30 seed=3 save=%s dump=%s' % (pf, dump))
    best = max(r['layers'], key=lambda l: l['accuracy'])  # the first of the best, as qkv picks it
    check(r.get('saved') == pf and r.get('saved_layer') == best['layer'], 'saved=%r saved_layer=%r, best %d'
          % (r.get('saved'), r.get('saved_layer'), best['layer']))
    P = json.load(open(pf))
    L = P['layer']
    mu, sd, W, b = (np.array(P[k]) for k in ('mu', 'sd', 'W', 'b'))
    x, y, test, ex, pos = (npy(os.path.join(dump, n + '.npy')) for n in ('x', 'y', 'test', 'example', 'pos'))
    check(P['classes'] == r['classes'] and W.shape == (len(r['classes']), x.shape[2]),
          'probe file classes %s, W %s' % (P['classes'], W.shape))

    def probs(rows):
        z = ((rows.astype(np.float64) - mu) / sd) @ W.T + b
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)
    held = test == 1
    acc = float((probs(x[held, L]).argmax(1) == y[held]).mean())
    check(abs(acc - best['accuracy']) < 1e-8 and abs(P['accuracy'] - acc) < 1e-12,  # JSON prints 9 digits
          'saved probe: held-out accuracy %r from the file, sweep %r, file says %r' % (acc, best['accuracy'],
                                                                                    P['accuracy']))
    # applied to the first sentence: the probabilities at its labelled tokens
    _, _ = qkv(db, 'probe data number %s n=20 seed=3' % os.path.join(TMP, 'n.jsonl'))
    text = json.loads(open(os.path.join(TMP, 'n.jsonl')).readline())['text']
    _, (ap,) = qkv(db, 'probe apply %s "%s"' % (pf, text))
    got = np.array(ap['probs'])
    rows = np.where(ex == 0)[0]
    want = probs(x[rows, L])
    check(ap['layer'] == L and ap['classes'] == P['classes'] and len(ap['tokens']) == len(ap['labels']) == len(got),
          'probe apply fields: %s' % {k: ap[k] for k in ('layer', 'classes')})
    err = float(np.abs(got[pos[rows]] - want).max()) if len(rows) else 1
    check(err < 1e-5, 'probe apply probabilities vs NumPy on the dumped rows: max |d| %g' % err)
    check([ap['labels'][p] for p in pos[rows]] == [P['classes'][k] for k in want.argmax(1)], 'probe apply labels')
    text_out = subprocess.run([QKV, '--model', 'builtin', '--db', db, '-e', 'probe apply %s "%s"' % (pf, text)],
                              capture_output=True, text=True, timeout=60).stdout
    check('probe of layer %d' % L in text_out, 'probe apply text: %s' % text_out[:200])

    check(P.get('level') == 'token' and ap.get('pooled') is None, 'a token-level probe: level %r, pooled %r'
          % (P.get('level'), ap.get('pooled')))
    # a probe trained on one row a text (sentence level) also answers for the text as a whole, from
    # the row training pooled (a decoder's last token, an encoder's mean over its own tokens): it
    # only labelled each token (before 2026-12-07), which no sentence probe was trained on
    sent = os.path.join(TMP, 'sent.jsonl')
    with open(sent, 'w') as f:
        for i in range(30):
            animal = 'cat' if i % 2 else 'dog'
            f.write(json.dumps({'text': 'on day %d I saw a %s in the garden' % (i, animal), 'label': animal}) + '\n')
    bert = os.path.join(TMP, 'bert')
    qkv(db, 'new-model bert layers=1 heads=2 d=16 ctx=64 seed=4 out=%s' % bert)
    for model in ('builtin', bert):
        spf, sdump = os.path.join(TMP, 'sent-probe.json'), os.path.join(TMP, 'sent-rows')
        args = ['--model', model, '--db', db, '--json']
        p = subprocess.run([QKV] + args + ['-e', 'probe train %s layers=1 steps=30 save=%s dump=%s' % (sent, spf, sdump)],
                           capture_output=True, text=True, timeout=300)
        if not check(p.returncode == 0, 'sentence probe on %s: %s' % (model, p.stderr)):
            continue
        SP = json.load(open(spf))
        smu, ssd, sW, sb = (np.array(SP[k]) for k in ('mu', 'sd', 'W', 'b'))
        sx, sex = npy(os.path.join(sdump, 'x.npy')), npy(os.path.join(sdump, 'example.npy'))
        z = ((sx[sex == 0, SP['layer']].astype(np.float64) - smu) / ssd) @ sW.T + sb
        want = np.exp(z - z.max(1, keepdims=True))
        want = (want / want.sum(1, keepdims=True))[0]
        first = json.loads(open(sent).readline())['text']
        p = subprocess.run([QKV] + args + ['-e', 'probe apply %s "%s"' % (spf, first)], capture_output=True, text=True,
                           timeout=300)
        got = (json.loads(p.stdout) if p.returncode == 0 else {}).get('pooled') or {}
        err = float(np.abs(np.array(got.get('probs', [9] * len(want))) - want).max())
        check(SP.get('level') == 'sentence' and err < 1e-5 and got.get('label') == SP['classes'][int(want.argmax())]
              and got.get('pool') == ('last' if model == 'builtin' else 'mean'),
              'probe apply of a sentence probe on %s: the pooled row as trained (max |d| %g): %r' % (model, err, got))
        p = subprocess.run([QKV, '--model', model, '--db', db, '-e', 'probe apply %s "%s"' % (spf, first)],
                           capture_output=True, text=True, timeout=300)
        check('the text (' in p.stdout and 'as the probe was trained): %s' % got.get('label') in p.stdout,
              'probe apply text of a sentence probe: %r' % p.stdout[-300:])

    # bad probe files
    bad = os.path.join(TMP, 'bad.json')
    cases = [({'a': 1}, 'not a probe'), (dict(P, layer=99), 'layers'), (dict(P, d=P['d'] + 1), 'must hold'),
             (dict(P, level='word'), '"level" must be'),
             (dict(P, W=[row[:-1] for row in P['W']]), 'row 1'), (dict(P, classes=['x']), 'classes'),
             (dict(P, sd=[0.0] * len(P['sd'])), 'positive')]
    for obj, msg in cases:
        with open(bad, 'w') as f:
            json.dump(obj, f)
        p, _ = qkv(db, 'probe apply %s "a b"' % bad, ok=False)
        check(p.returncode == 1 and msg in p.stderr, 'bad probe %r: exit %d, %r' % (msg, p.returncode, p.stderr))
    with open(bad, 'w') as f:
        f.write('{"format": "qkv-probe", ')
    # the cause whole after its context, said once (the message was once built over itself:
    # "cannot read probe 'none.json': cannot read probe 'none.json': h file or directory")
    none = os.path.join(TMP, 'none.json')
    for cmd, path, msgs in (('probe apply %s "a"' % bad, bad, ['cannot read the probe: ', 'line 1 column']),
                            ('probe apply %s "a"' % none, none, ['cannot read the probe: ', 'No such file or directory']),
                            ('probe apply', None, ['give the probe'])):
        p, _ = qkv(db, cmd, ok=False)
        check(p.returncode == 1 and all(m in p.stderr for m in msgs) and (not path or p.stderr.count(path) == 1),
              '%s: exit %d, %r' % (cmd, p.returncode, p.stderr))


def main():
    db = os.path.join(TMP, 'q.db')
    train = 'probe train %s n=20 layers=0,2,4 steps=20 seed=3'
    _, (r1,) = qkv(db, train % 'number')
    check_logged(db, r1, 'number')
    _, (r2,) = qkv(db, train % 'capital')
    check_logged(db, r2, 'capital')
    # a dataset file: its absolute path is recorded, and found by a relative one
    _, _ = qkv(db, 'probe data bracket br.jsonl n=20 seed=4', cwd=TMP)
    _, (r3,) = qkv(db, 'probe train br.jsonl layers=1,3 steps=10', cwd=TMP)
    check_logged(db, r3, os.path.join(os.path.realpath(TMP), 'br.jsonl'))

    _, (ls,) = qkv(db, 'probe runs')
    runs = ls['probe_runs']
    check([r['id'] for r in runs] == [r3['probe_run_id'], r2['probe_run_id'], r1['probe_run_id']],
          'probe runs newest first: %s' % [r['id'] for r in runs])
    top = runs[-1]
    check(top['dataset'] == 'number' and top['rows'] == r1['rows'] and top['best_layer'] == r1['best_layer'],
          'probe runs row of the first sweep: %s' % top)
    check([l['accuracy'] for l in top['layers']] == [l['accuracy'] for l in r1['layers']] and
          [l['selectivity'] for l in top['layers']] == [l['selectivity'] for l in r1['layers']],
          'probe runs layers equal the sweep\'s: %s vs %s' % (top['layers'], r1['layers']))
    _, (ls,) = qkv(db, 'probe runs dataset=capital')
    check([r['id'] for r in ls['probe_runs']] == [r2['probe_run_id']], 'dataset=capital: %s' % ls)
    _, (ls,) = qkv(db, 'probe runs dataset=br.jsonl', cwd=TMP)
    check([r['id'] for r in ls['probe_runs']] == [r3['probe_run_id']], 'dataset=br.jsonl (relative): %s' % ls)
    _, (ls,) = qkv(db, 'probe runs limit=1')
    check([r['id'] for r in ls['probe_runs']] == [r3['probe_run_id']], 'limit=1: %s' % ls)
    text = subprocess.run([QKV, '--model', 'builtin', '--db', db, '-e', 'probe runs'], capture_output=True,
                          text=True, timeout=60).stdout
    check('capital' in text and 'number' in text and 'builtin' in text, 'probe runs table: %s' % text)
    check(all(r['model_arch'] == 'gpt2' for r in runs), 'probe runs: the float model is gpt2: %s'
          % [r['model_arch'] for r in runs])
    # a sweep names the model as runs and experiments do, with its weights' type: a quantized
    # model's sweep said 'gpt2' (SmolLM2's 'llama') where its runs said 'gpt2 Q8_0 (quantize q8_0)'
    qdb = os.path.join(TMP, 'quant.db')
    _, (_, rq, g, ls, hist) = qkv(qdb, 'quantize q8_0', 'probe train number n=20 layers=1 steps=10 seed=3',
                                  'generate "abc" max=2 seed=1', 'probe runs', 'history 1')
    arch = hist['runs'][0]['model_arch']
    check(arch == 'gpt2 Q8_0 (quantize q8_0)', 'the quantized run: model_arch %r' % arch)
    check([r['model_arch'] for r in ls['probe_runs']] == [arch], 'probe runs under quantize q8_0: model_arch %s, '
          'the run %r' % ([r['model_arch'] for r in ls['probe_runs']], arch))
    # none matching: said in words, not a table's header over nothing; JSON an empty list (it
    # printed the header alone); a database without sweeps says they are none yet
    qkv(os.path.join(TMP, 'no-probes.db'), 'generate "a" max=2 seed=1')  # it exists, with a run
    for where, cmd, want in ((db, 'probe runs dataset=nothing', 'no probe runs match\n'),
                             (os.path.join(TMP, 'no-probes.db'), 'probe runs', 'no probe runs yet\n')):
        p = subprocess.run([QKV, '--model', 'builtin', '--db', where, '-e', cmd], capture_output=True, text=True,
                           timeout=60)
        check(p.returncode == 0 and p.stdout == want, '%s: %r, expected %r' % (cmd, p.stdout, want))
        _, (ls,) = qkv(where, cmd)
        check(ls == {'probe_runs': []}, '%s (JSON): %s' % (cmd, ls))

    # the figure as CSV: each layer's held-out accuracy over n_test rows, with its binomial
    # standard error and 95% Wilson interval (it once wrote n and stderr empty; the interval was
    # accuracy -+ 1.96 se, [1, 1] for a layer right on every row)
    pcsv = os.path.join(TMP, 'probe.csv')
    _, (r5, _) = qkv(db, train % 'number', 'save ' + pcsv)
    rows = list(csv.reader(open(pcsv)))
    # ... and what the text shows beside it: training accuracy, control, selectivity (they were missing)
    check(rows[0] == ['layer', 'n', 'accuracy', 'stderr', 'ci_low', 'ci_high', 'train_accuracy', 'control',
                      'selectivity'] and len(rows) == 4, 'probe CSV: %s' % rows)
    for row, l in zip(rows[1:], r5['layers']):
        a, n = l['accuracy'], r5['n_test']
        se = math.sqrt(a * (1 - a) / n)
        lo, hi = wilson95(round(a * n), n)
        check(row[0] == ('L%d' % l['layer'] if l['layer'] else 'emb') and int(float(row[1])) == n and
              abs(float(row[2]) - a) < 1e-6 and abs(float(row[3]) - se) < 1e-6 and
              abs(float(row[4]) - lo) < 1e-6 and abs(float(row[5]) - hi) < 1e-6,
              'probe CSV row %s for layer %s (n_test %d): Wilson [%s, %s]' % (row, l, n, lo, hi))
        check(len(row) == 9 and all(abs(float(row[6 + k]) - l[key]) < 1e-6 for k, key in
                                    enumerate(('train_accuracy', 'control', 'selectivity'))),
              'probe CSV row %s: train accuracy, control and selectivity of %s' % (row, l))

    # a database at schema version 5 (before probe runs) is migrated by the first sweep
    old = os.path.join(TMP, 'old.db')
    shutil.copy(db, old)
    c = sqlite3.connect(old)
    c.executescript('DROP TABLE IF EXISTS reward_heldout; DROP TABLE probe_layers; DROP TABLE probe_runs; '
                    'ALTER TABLE runs DROP COLUMN kv; ALTER TABLE experiments DROP COLUMN owner; '
                    'ALTER TABLE reward_runs DROP COLUMN owner; '
                    'ALTER TABLE train_runs DROP COLUMN status; ALTER TABLE train_runs DROP COLUMN owner; '
                    'PRAGMA user_version = 5;')  # what migrations 6-13 add (9 rebuilds runs.kv, 12 reward_runs.status)
    c.close()
    _, (r4,) = qkv(old, train % 'number')
    check_logged(old, r4, 'number')
    c = sqlite3.connect(old)
    check(c.execute('PRAGMA user_version').fetchone()[0] >= 6, 'migrated to schema version 6 (or later)')
    c.close()

    # bad requests; a dataset that is there but is not a regular file is said to be so (it was
    # "neither a file nor a built-in dataset")
    fifo = os.path.join(TMP, 'data.fifo')
    os.mkfifo(fifo)
    for cmd, msg in (('probe runs limit=0', 'limit'), ('probe runs limit=x', 'limit'), ('probe list', 'probe runs'),
                     ('probe train /dev/zero', "cannot open '/dev/zero': it is a device, not a regular file"),
                     ('probe train %s' % fifo, "cannot open '%s': it is a FIFO, not a regular file" % fifo)):
        p, _ = qkv(db, cmd, ok=False)
        check(p.returncode != 0 and msg in p.stderr, '%s: exit %d, %r' % (cmd, p.returncode, p.stderr))

    failures_before = failures
    saved_probe(db)
    print('saved probes: %s' % ('ok' if failures == failures_before else 'FAILED'))

    shutil.rmtree(TMP, ignore_errors=True)
    if failures:
        print('%d failure(s)' % failures, file=sys.stderr)
        return 1
    print('probe runs: 4 sweeps logged and listed, migration 5 -> 6')
    return 0


if __name__ == '__main__':
    sys.exit(main())
