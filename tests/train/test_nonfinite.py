#!/usr/bin/env python3
# test_nonfinite.py - suite 'unit': the trainers never save a NaN or an infinity, and a reward
# model that gives one is not used.
#
#   - a training step whose loss or gradient norm is not a finite number (a base model with a
#     NaN in its weights) stops the run with one error line naming the step, before anything is
#     saved: `train` (out= an untrained model, left as it was; a new out= removed), `reward
#     train` (its run 'failed' in reward_runs, no out=) and `dpo train` (no out=), each run
#     'failed' in train_runs or reward_runs (train_runs had no status before); no loss curve
#     point is logged (train_points.loss is NOT NULL: the NaN was a constraint warning);
#   - a damaged train_state.bin is refused before any step, its checkpoint left as it was: bytes
#     overwritten with 0xff (NaN) or with zeros (finite: the checksum of versions 3 and 4 catches it), a
#     version 2 state (no checksum) holding a NaN; an intact version 2 state still resumes;
#   - a reward model with a NaN in its score.weight: reward score (text, run=, ranking=) and
#     generate best_of= reward= fail with one error saying so, and no score is logged.
# Before 2026-12-06 each trained on with loss nan, exit 0, and saved NaN weights; the reward
# model's nan was printed, logged (NOT NULL warnings) and ranked by.
# Usage: test_nonfinite.py QKV_BINARY

import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'ref'))
import qkv_cli  # noqa: E402

failures = []


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg, flush=True)


def run(qkv, db, cmd, timeout=300):
    return subprocess.run([qkv, '--db', db, '-e', cmd], capture_output=True, text=True, timeout=timeout)


def files(folder):
    """Every file of folder with its bytes (None when there is no folder)."""
    if not os.path.isdir(folder):
        return None
    return {n: open(os.path.join(folder, n), 'rb').read() for n in sorted(os.listdir(folder))}


def set_tensor(path, name, value):
    """Every float32 element of tensor name in the safetensors file path set to value."""
    with open(path, 'r+b') as fh:
        (hn,) = struct.unpack('<Q', fh.read(8))
        a, b = json.loads(fh.read(hn))[name]['data_offsets']
        fh.seek(8 + hn + a)
        fh.write(struct.pack('<f', value) * ((b - a) // 4))


def refused(what, p, want):
    """p failed with one error line holding want."""
    err = [l for l in p.stderr.splitlines() if l.startswith('error: ')]
    if p.returncode == 0 or len(err) != 1 or want not in err[0]:
        fail('%s: expected one error line with %r and a non-zero exit, got exit %d: %s'
             % (what, want, p.returncode, p.stderr.strip()[-500:]))
        return False
    return True


def add_rankings(db, n):
    """n prompts, each with three completions ranked 1, 2, 3 (the schema made by qkv first)."""
    con = sqlite3.connect(db)
    now = '2026-01-01T00:00:00.000Z'
    for i in range(n):
        prompt = 'Q%d: how is it?' % i
        cur = con.execute("INSERT INTO rankings (created, prompt, k, annotator, qkv_version) "
                          "VALUES (?, ?, 3, 'a', 'test')", (now, prompt))
        rid = cur.lastrowid
        for k, word in enumerate((' good', ' meh', ' bad')):
            run_id = con.execute(
                "INSERT INTO runs (created, kind, annotator, qkv_version, model_path, model_arch, prompt, "
                "temperature, top_k, top_p, seed, max_tokens, output) VALUES (?, 'rank', 'a', 'test', 'builtin', "
                "'gpt2', ?, 1.0, 0, 1.0, ?, 8, ?)", (now, prompt, 10 * i + k, ' it is' + word)).lastrowid
            con.execute('INSERT INTO ranking_items (ranking_id, n, run_id, rank) VALUES (?, ?, ?, ?)',
                        (rid, k + 1, run_id, k + 1))
    con.commit()
    con.close()


STEP1 = 'step 1: the loss is not a finite number (NaN): stopped before updating the weights'


def nan_steps(qkv, tmp, nan, corpus):
    """train, reward train and dpo train on a base with NaN weights: stopped at step 1, nothing saved."""
    n0 = len(failures)
    db = os.path.join(tmp, 'steps.db')
    kept = os.path.join(tmp, 'untrained')  # an untrained model: train may write over it
    p = run(qkv, db, 'new-model gpt2 layers=1 heads=2 d=32 ctx=64 seed=4 out=' + kept)
    if p.returncode != 0:
        fail('new-model: ' + p.stderr)
        return
    before = files(kept)
    fresh = os.path.join(tmp, 'fresh')
    for out in (kept, fresh):
        p = run(qkv, db, 'train %s from=%s out=%s steps=4 save_every=1 batch=2 seq=16' % (corpus, nan, out))
        refused('train from= a NaN model into %s' % os.path.basename(out), p, 'train: ' + STEP1)
        if 'NOT NULL' in p.stderr:
            fail('train from= a NaN model: a NaN was logged: ' + p.stderr.strip()[-300:])
    if files(kept) != before:
        fail('train from= a NaN model wrote over the untrained model in out=')
    if os.path.exists(fresh):
        fail('train from= a NaN model left the out= it made')
    con = sqlite3.connect(db)
    points = con.execute('SELECT count(*) FROM train_points').fetchone()[0]
    statuses = [r[0] for r in con.execute('SELECT status FROM train_runs ORDER BY id')]
    con.close()
    if points:
        fail('train from= a NaN model logged %d loss curve points' % points)
    if statuses != ['failed', 'failed']:  # they read as running (its process alive) or finished
        fail('train from= a NaN model: run statuses %r, expected failed twice' % statuses)
    if len(failures) == n0:
        print('ok %-24s stopped at step 1, nothing saved or logged' % 'train NaN step', flush=True)
    n0 = len(failures)

    add_rankings(db, 6)
    rout = os.path.join(tmp, 'rm')
    p = run(qkv, db, 'reward train base=%s head=linear steps=3 val=0 out=%s' % (nan, rout))
    refused('reward train on a NaN base', p, 'reward train: ' + STEP1)
    con = sqlite3.connect(db)
    status = con.execute('SELECT status FROM reward_runs ORDER BY id DESC LIMIT 1').fetchone()
    con.close()
    if status != ('failed',):
        fail('reward train on a NaN base: run status %r, expected failed' % (status,))
    dout = os.path.join(tmp, 'dpo')
    p = run(qkv, db, 'dpo train base=%s steps=3 val=0 out=%s' % (nan, dout))
    refused('dpo train on a NaN base', p, 'dpo train: ' + STEP1)
    con = sqlite3.connect(db)
    status = con.execute('SELECT status FROM train_runs ORDER BY id DESC LIMIT 1').fetchone()
    con.close()
    if status != ('failed',):
        fail('dpo train on a NaN base: run status %r, expected failed' % (status,))
    for out in (rout, dout):
        if os.path.exists(out):
            fail('%s on a NaN base wrote %s' % (os.path.basename(out), out))
    if len(failures) == n0:
        print('ok %-24s reward train and dpo train stopped at step 1' % 'reward/dpo NaN step', flush=True)


def damaged_state(qkv, tmp, corpus):
    """A run stopped mid-way (Ctrl-C), its train_state.bin damaged: the same command refuses it."""
    n0 = len(failures)
    db = os.path.join(tmp, 'state.db')
    out = os.path.join(tmp, 'run')
    cmd = ('train %s out=%s family=gpt2 layers=1 heads=2 d=32 ctx=64 batch=4 seq=32 save_every=50 eval_every=50 '
           'steps=2000' % (corpus, out))
    rc, _, err = qkv_cli.interrupted(qkv, ['--db', db, '-e', cmd], after='(saved)')
    state = os.path.join(out, 'train_state.bin')
    if rc not in (0, 130) or not os.path.exists(state):  # 130: stopped by Ctrl-C (saved)
        fail('the run to damage: exit %d: %s' % (rc, err.strip()[-300:]))
        return
    good = open(state, 'rb').read()
    v2 = bytearray(good)  # the version 2 layout: version 4's head cut to 192 bytes (no checksum, no new model)
    if int.from_bytes(v2[8:12], 'little') == 4:
        v2[8:12] = (2).to_bytes(4, 'little')
        v2 = v2[:192] + v2[224:]

    def at(b, off, fill):
        b = bytearray(b)
        b[off:off + 64] = fill * 64
        return bytes(b)
    for name, data, want in (('0xff bytes', at(good, 1000, b'\xff'), 'damaged training state'),
                             ('zero bytes', at(good, 1000, b'\0'),
                              'damaged training state: its weights and optimizer moments do not match the checksum'),
                             ('version 2, 0xff bytes', at(v2, 1000, b'\xff'), 'damaged training state: weight 202 is')):
        with open(state, 'wb') as f:
            f.write(data)
        before = files(out)
        p = run(qkv, db, cmd)
        refused('train_state.bin with %s' % name, p, "train: '%s': %s" % (state, want))
        if files(out) != before:
            fail('train_state.bin with %s: the checkpoint was changed' % name)
    with open(state, 'wb') as f:
        f.write(bytes(v2))
    p = run(qkv, db, cmd)
    if p.returncode != 0 or 'resuming after step' not in p.stderr:
        fail('an intact version 2 state does not resume: exit %d: %s' % (p.returncode, p.stderr.strip()[-300:]))
    if len(failures) == n0:
        print('ok %-24s refused (NaN, zeros, version 2 with NaN); version 2 resumes' % 'damaged state', flush=True)


def nan_reward(qkv, tmp, good):
    """A reward model whose score.weight is NaN: every use of it refused, nothing logged."""
    n0 = len(failures)
    db = os.path.join(tmp, 'steps.db')  # nan_steps' rankings
    rm = os.path.join(tmp, 'rm-good')
    p = run(qkv, db, 'reward train base=%s head=linear steps=3 val=0 out=%s' % (good, rm))
    if p.returncode != 0:
        fail('reward train: ' + p.stderr.strip()[-300:])
        return
    p = run(qkv, db, 'reward score "a" "b" model=' + rm)
    if p.returncode != 0 or 'nan' in p.stdout:
        fail('the good reward model: exit %d: %s%s' % (p.returncode, p.stdout, p.stderr.strip()[-300:]))
    bad = os.path.join(tmp, 'rm-nan')
    shutil.copytree(rm, bad)
    set_tensor(os.path.join(bad, 'model.safetensors'), 'score.weight', float('nan'))
    want = "the reward model '%s' gives a reward that is not a finite number (NaN)" % os.path.realpath(bad)
    for cmd in ('reward score "a" "b" model=' + bad, 'reward score run=1 model=' + bad,
                'reward score ranking=1 model=' + bad):
        refused(cmd.split(' model=')[0], run(qkv, db, cmd), 'reward score: ' + want)
    p = subprocess.run([qkv, '--db', db, '--model', good, '-e', 'generate "Hi" best_of=3 max=3 reward=' + bad],
                       capture_output=True, text=True, timeout=300)
    refused('generate best_of=3', p, 'generate: reward: ' + want)
    if 'best of' in p.stdout:
        fail('generate best_of=3 with a NaN reward model picked a best: ' + p.stdout[-300:])
    con = sqlite3.connect(db)
    scores = con.execute('SELECT count(*) FROM reward_scores WHERE model_path = ?', (os.path.realpath(bad),)).fetchone()
    con.close()
    if scores[0]:
        fail('a NaN reward model logged %d scores' % scores[0])
    if len(failures) == n0:
        print('ok %-24s reward score (text, run=, ranking=) and best_of= refused' % 'NaN reward model', flush=True)


def main():
    qkv = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, 'q.db')
        good, nan = os.path.join(tmp, 'model'), os.path.join(tmp, 'nan-model')
        p = run(qkv, db, 'new-model gpt2 layers=1 heads=2 d=32 ctx=64 seed=3 out=' + good)
        if p.returncode != 0:
            fail('new-model: ' + p.stderr)
            return 1
        shutil.copytree(good, nan)
        set_tensor(os.path.join(nan, 'model.safetensors'), 'ln_f.weight', float('nan'))
        corpus = os.path.join(tmp, 'corpus.txt')
        with open(corpus, 'w') as f:
            f.write('the cat sat on the mat and the dog ran to the park with a red ball\n' * 200)
        nan_steps(qkv, tmp, nan, corpus)
        damaged_state(qkv, tmp, corpus)
        nan_reward(qkv, tmp, good)
    print('%d failure(s)' % len(failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
