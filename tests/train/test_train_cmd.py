#!/usr/bin/env python3
# test_train_cmd.py - suite 'reference': the `train` command end to end.
#
#   - a GPT-2 and a Llama trained from scratch on a generated text: the loss falls; the
#     checkpoint loads in transformers, whose logits equal qkv's on it (|d| <= 1e-4), and whose
#     loss on the held-out windows (the file's last tenth, consecutive windows of seq tokens)
#     equals the held-out loss qkv reported (|d| <= 1e-4);
#   - resumption: the same run killed (SIGKILL) after a checkpoint and started again with the
#     same command ends with exactly the weights of an uninterrupted run, and the loss curve in
#     SQLite (train_points) has every step once, equal to the uninterrupted run's; the run's
#     status (curve) reads done, interrupted once killed, stopped after Ctrl-C, done when resumed
#     to its end, and is null for a row without one (logged before migration 13);
#   - from=: training continues from a checkpoint; a checkpoint of a GGUF Llama (q/k in
#     llama.cpp's pair order) is the same model in HF's layout, its tokenizer kept as tokenizer.gguf;
#     training from a GPT-2 (F32, F16) or Llama GGUF export is training from the folder exported:
#     the same first loss and weights;
#   - a Llama with GPT-2's tokenizer files (tok=), and the committed teaching model: transformers'
#     AutoTokenizer loads them and gives qkv's ids;
#   - a checkpoint of a llama2.c model tokenizes as the source (its space before every text kept);
#   - out= an untrained model (new-model's) and no model named: that model trained, as from= it;
#     out= the session's model: reloaded after the run;
#   - a task file (.jsonl): its exemplars as zero-shot prompts and answers, the loss on the
#     answers only (the held-out loss equals transformers'), the answers learned;
#   - bench-train: FLOPs per token as counted from config.json, speeds and fractions consistent;
#   - threads: a second run with threads=2 gives exactly the same loss curve and weights, one
#     with threads=1 the same within 1e-6 (relative);
#   - bad input: one error line, non-zero exit (missing file, empty file, seq beyond the
#     context, too little text, a resume with other options (the new model's, the optimizer's,
#     the data's) named as the option, an encoder, a truncated or foreign train_state.bin).
# Skips (77) without the test environment unless QKV_REQUIRE_REFS=1.
# Usage: test_train_cmd.py QKV_BINARY

import json
import os
import re
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trainref import fail, failures, finish, load_causal_lm, np, qkv_cli, tensors, torch, transformers  # noqa: E402


def corpus(path, n=600, seed=3):
    """Sentences of a small grammar: learnable structure, deterministic."""
    rnd = random.Random(seed)
    subj = ['the cat', 'a dog', 'my friend', 'the teacher', 'a bird']
    verb = ['sees', 'likes', 'follows', 'helps', 'finds']
    obj = ['the ball', 'a tree', 'the house', 'a river', 'the book']
    with open(path, 'w') as f:
        for _ in range(n):
            f.write('%s %s %s.\n' % (rnd.choice(subj), rnd.choice(verb), rnd.choice(obj)))


def train_cmd(qkv, db, words, timeout=600):
    return qkv_cli.run(qkv, ['--db', db, '--json', '-e', 'train ' + ' '.join(words)], timeout)


def curve(db, out):
    con = sqlite3.connect(db)
    try:
        rid = con.execute('SELECT id FROM train_runs WHERE out_path = ? ORDER BY id DESC LIMIT 1',
                          (os.path.realpath(out),)).fetchone()
        if not rid:
            return None
        return con.execute('SELECT step, loss, val_loss FROM train_points WHERE run_id = ? ORDER BY step',
                           (rid[0],)).fetchall()
    finally:
        con.close()


def hf_checks(tag, qkv, out, data, db, seq, batch, eval_batches, val_loss):
    try:
        m = load_causal_lm(out)
    except Exception as ex:
        fail('%s: transformers cannot load the checkpoint: %s: %s' % (tag, type(ex).__name__, ex))
        return
    # qkv's tokens of the file (its own tokenizer; compared with HF's logits below)
    (tk,) = qkv_cli.json_cmds(qkv, out, ['tokenize "%s" special=false' % open(data).read()[:60].replace('\n', '\\n')], db)
    ids = tk['ids']
    (lg,) = qkv_cli.json_cmds(qkv, out, ['logits %s full=true' % qkv_cli.ids_arg(ids)], db)
    with torch.no_grad():
        want = m(input_ids=torch.tensor([ids])).logits[0].double().numpy()
    got = np.asarray(lg['logits'], dtype=np.float64)
    err = float(np.max(np.abs(got - want))) if got.shape == want.shape else float('inf')
    if not err <= 1e-4:
        fail('%s: logits of the checkpoint: qkv and transformers differ by %.3g (shapes %s, %s)'
             % (tag, err, got.shape, want.shape))
    # the held-out loss, recomputed: the text's tokens as qkv's train reads them
    text = open(data).read()
    all_ids = []
    for k in range(0, len(text), 2000):  # the command line takes the text in pieces (byte-level: no merges)
        piece = text[k:k + 2000].replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')
        (t,) = qkv_cli.json_cmds(qkv, out, ['tokenize "%s" special=false' % piece], db)
        all_ids += t['ids']
    nval = int(len(all_ids) * 0.1)
    val = all_ids[len(all_ids) - nval:]
    # the first eval_batches x batch windows of seq tokens, each once (as many as the held-out part holds)
    used = min(eval_batches * batch, (len(val) - 1) // seq)
    xs = [val[w * seq:w * seq + seq] for w in range(used)]
    ys = [val[w * seq + 1:w * seq + seq + 1] for w in range(used)]
    with torch.no_grad():
        logits = m(input_ids=torch.tensor(xs)).logits
        want_val = float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                           torch.tensor(ys).reshape(-1)))
    if not abs(want_val - val_loss) <= 1e-4:
        fail('%s: held-out loss: transformers %.7f, qkv %.7f' % (tag, want_val, val_loss))
    print('ok %-24s logits max |d| %.2e, held-out loss %.5f (transformers %.5f)' % (tag, err, val_loss, want_val),
          flush=True)


def run_status(what, qkv, db, out, want):
    """The latest training run into out reads as want in `curve ID` (JSON status, and the text's first line)."""
    con = sqlite3.connect(db)
    row = con.execute('SELECT max(id) FROM train_runs WHERE out_path = ?', (os.path.realpath(out),)).fetchone()
    con.close()
    if not row or row[0] is None:
        fail('%s: no training run into %s logged' % (what, out))
        return
    pj = qkv_cli.run(qkv, ['--db', db, '--json', '-e', 'curve %d' % row[0]])
    pt = qkv_cli.run(qkv, ['--db', db, '-e', 'curve %d' % row[0]])
    got = json.loads(pj.stdout).get('status') if pj.returncode == 0 else 'exit %d' % pj.returncode
    line = pt.stdout.splitlines()[0] if pt.returncode == 0 and pt.stdout else ''
    if got != want or not line.endswith(', ' + want):
        fail('%s: status %r, text %r; want %r' % (what, got, line, want))


def scratch_and_resume(qkv, tmp, data, family, arch_opts):
    tag = family
    db = os.path.join(tmp, family + '.db')
    seq, batch, evb = 64, 8, 3
    common = [data] + arch_opts + ['seq=%d' % seq, 'batch=%d' % batch, 'steps=40', 'save_every=5', 'eval_every=10',
                                   'eval_batches=%d' % evb, 'lr=1e-2', 'warmup=4', 'threads=2', 'seed=5']
    out_a = os.path.join(tmp, family + '-a')
    p = train_cmd(qkv, db, common + ['out=' + out_a])
    if p.returncode != 0:
        fail('%s: train: exit %d: %s' % (tag, p.returncode, p.stderr.strip()[-2000:]))
        return None
    res = json.loads(p.stdout.strip().split("\n")[-1])
    steps = [l for l in p.stderr.splitlines() if l.startswith('step ')]
    if len(steps) != 40 or 'held-out' not in steps[9]:
        fail('%s: expected 40 progress lines with a held-out loss every 10 steps, got %d: %s'
             % (tag, len(steps), steps[:2]))
    pts = curve(db, out_a)
    if not pts or [s for s, _, _ in pts] != list(range(1, 41)):
        fail('%s: train_points: expected steps 1..40, got %s' % (tag, [s for s, _, _ in pts or []][:50]))
        return
    first, last = np.mean([l for _, l, _ in pts[:3]]), np.mean([l for _, l, _ in pts[-3:]])
    if not last < first - 1.0:
        fail('%s: the loss did not fall: %.3f -> %.3f' % (tag, first, last))
    if [s for s, _, v in pts if v is not None] != [10, 20, 30, 40]:
        fail('%s: held-out losses at steps %s, expected 10 20 30 40' % (tag, [s for s, _, v in pts if v is not None]))
    # JSON numbers carry 9 significant digits (buf_json_num's %.9g), the log a double
    if abs(pts[-1][2] - res.get('val_loss', -1)) > 1e-8 * abs(pts[-1][2]):
        fail('%s: JSON val_loss %s and the logged %s differ' % (tag, res.get('val_loss'), pts[-1][2]))
    # `curve ID` gives the logged points back (the Training view draws them)
    p = qkv_cli.run(qkv, ['--db', db, '--json', '-e', 'curve %d' % res['train_run_id']])
    cv = json.loads(p.stdout) if p.returncode == 0 else {}
    got = [(x['step'], x['loss'], x['val_loss']) for x in cv.get('points', [])]
    same = len(got) == len(pts) and all(  # JSON carries 9 significant digits
        a[0] == b[0] and all((u is None) == (v is None) and (u is None or abs(u - v) <= 1e-7 * max(1, abs(v)))
                             for u, v in zip(a[1:], b[1:])) for a, b in zip(got, pts))
    if cv.get('kind') != 'train' or cv.get('out_path') != os.path.realpath(out_a) or not same:
        fail('%s: curve %d: kind %r, out_path %r, %d points; expected the %d logged ones'
             % (tag, res['train_run_id'], cv.get('kind'), cv.get('out_path'), len(got), len(pts)))
    run_status(tag + ': a finished run', qkv, db, out_a, 'done')
    # the text form's sparklines: of a run of 300 steps with a held-out loss every 10, 40 losses and
    # 30 held-out ones (it picked 40 of the steps and kept those that had one: 1 to 4 bars)
    con = sqlite3.connect(db)
    cols = 'created, qkv_version, out_path, data_path, model_arch, n_params, n_threads, options'
    con.execute('INSERT INTO train_runs (%s) SELECT %s FROM train_runs WHERE id = ?'
                % (cols, cols.replace('out_path', "out_path || '-long'")), (res['train_run_id'],))
    long_id = con.execute('SELECT max(id) FROM train_runs').fetchone()[0]
    con.executemany('INSERT INTO train_points (run_id, step, loss, val_loss, lr, grad_norm, tokens, elapsed_s, created) '
                    "VALUES (?, ?, ?, ?, 0.001, 1, ?, ?, '2026-01-01T00:00:00.000Z')",
                    [(long_id, s, 5 - s / 100, (5 - s / 100) if s % 10 == 0 else None, 64 * s, s / 10)
                     for s in range(1, 301)])
    con.commit()
    con.close()
    p = qkv_cli.run(qkv, ['--db', db, '-e', 'curve %d' % long_id])
    spark = {l.split()[0]: l.split()[-1] for l in p.stdout.splitlines() if l.startswith('  ')}
    if len(spark.get('loss', '')) != 40 or len(spark.get('held-out', '')) != 30:
        fail('%s: curve sparklines %r: want 40 loss and 30 held-out bars' % (tag, spark))
    # a row without a status (as runs logged before migration 13 have): not known, said so by leaving it out
    p2 = qkv_cli.run(qkv, ['--db', db, '--json', '-e', 'curve %d' % long_id])
    st = json.loads(p2.stdout).get('status', 'absent') if p2.returncode == 0 else 'exit %d' % p2.returncode
    if st is not None or not p.stdout.startswith('training run %d: ' % long_id) or not \
            p.stdout.splitlines()[0].endswith(' 300 points'):
        fail('%s: a run without a status: JSON status %r (want null), text %r' % (tag, st, p.stdout.splitlines()[:1]))
    print('ok %-24s loss %.3f -> %.3f, held-out %.4f, %s params, %.0f tok/s'
          % (tag + ' train', first, last, res['val_loss'], res['params'], res['tok_s']), flush=True)
    hf_checks(tag, qkv, out_a, data, db, seq, batch, evb, res['val_loss'])

    # killed after a checkpoint, then the same command again
    out_b = os.path.join(tmp, family + '-b')
    args = [qkv, '--db', db, '--json', '-e', 'train ' + ' '.join(common + ['out=' + out_b])]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed_at = None
    for line in proc.stderr:
        if line.startswith('step 23/'):
            proc.send_signal(signal.SIGKILL)
            killed_at = 23
            break
    proc.wait()
    if killed_at is None or proc.returncode != -signal.SIGKILL:
        fail('%s: the run to kill was not killed mid-run (exit %s)' % (tag, proc.returncode))
        return
    # the killed run's process is gone: it reads as interrupted (it read as a finished run), and running again on resume
    run_status(tag + ': a killed run', qkv, db, out_b, 'interrupted')
    p = train_cmd(qkv, db, common + ['out=' + out_b])
    if p.returncode != 0:
        fail('%s: resume: exit %d: %s' % (tag, p.returncode, p.stderr.strip()[-2000:]))
        return
    run_status(tag + ': a killed run resumed to its end', qkv, db, out_b, 'done')
    if 'resuming after step 20' not in p.stderr:
        fail('%s: resume: expected "resuming after step 20" on stderr: %s' % (tag, p.stderr[:300]))
    wa, wb = tensors(out_a), tensors(out_b)
    diff = [k for k in wa if k not in wb or not np.array_equal(wa[k], wb[k])]
    if diff or set(wa) != set(wb):
        fail('%s: resumed weights differ from the uninterrupted run in %s' % (tag, diff[:5]))
    pb = curve(db, out_b)
    if pb != pts:
        fail('%s: the resumed loss curve differs from the uninterrupted one: %s ... vs %s ...'
             % (tag, (pb or [])[18:24], pts[18:24]))
    # the resumed curve's clock runs on from the checkpoint's (it restarted at 0 before 2026-12-06)
    con = sqlite3.connect(db)
    el = [r[0] for r in con.execute('SELECT elapsed_s FROM train_points JOIN train_runs ON train_runs.id = run_id '
                                    'WHERE out_path = ? ORDER BY step', (os.path.realpath(out_b),))]
    con.close()
    if len(el) != 40 or any(b < a for a, b in zip(el, el[1:])):
        fail('%s: resumed run: elapsed_s not nondecreasing over steps 1..40: %s' % (tag, [round(x, 3) for x in el[18:24]]))
    # the finished run's command once more: nothing left to run, and the JSON keeps its keys (null);
    # the temporary files of checkpoints a kill cut short are removed (they were left, hundreds of
    # MB each for a larger model), a file of the user's that only looks alike kept
    stale = ['train_state.bin.tmp-7lzG28', 'model.safetensors.tmp-Q2V9Ik', 'tokenizer_config.json.tmp-MFIno6']
    for name in stale + ['notes.tmp-keep']:
        with open(os.path.join(out_b, name), 'wb') as f:
            f.write(b'half written')
    p = train_cmd(qkv, db, common + ['out=' + out_b])
    left = sorted(n for n in os.listdir(out_b) if '.tmp-' in n)
    if left != ['notes.tmp-keep']:
        fail('%s: temporary files in out= after the run: %s (notes.tmp-keep alone expected)' % (tag, left))
    os.remove(os.path.join(out_b, 'notes.tmp-keep'))
    r = json.loads(p.stdout.strip().split("\n")[-1]) if p.returncode == 0 and p.stdout.strip() else {}
    if [r.get(k, 'absent') for k in ('step', 'loss', 'val_loss', 'val_loss_step', 'tok_s')] != [40, None, None, None, None]:
        fail('%s: the finished run again: exit %d, step/loss/val_loss/tok_s %r' % (
            tag, p.returncode, [r.get(k, 'absent') for k in ('step', 'loss', 'val_loss', 'val_loss_step', 'tok_s')]))
    print('ok %-24s killed at step %d, resumed from 20: weights and loss curve identical' % (tag + ' resume', killed_at),
          flush=True)

    # the same command started again while it runs: refused (it would write its checkpoints over
    # the running one's), the running one goes on and stops with Ctrl-C as usual
    out_e = os.path.join(tmp, family + '-e')
    long_run = [o for o in common if not o.startswith('steps=')] + ['steps=100000', 'out=' + out_e]
    second = []

    def again():
        second.append(qkv_cli.run_or_none(qkv, ['--db', db, '--json', '-e', 'train ' + ' '.join(long_run)], 60))
        # nor does new-model write into it (it replaced the running run's untrained model, whose save
        # then failed and removed the folder, before 2026-12-07)
        second.append(qkv_cli.run_or_none(qkv, ['--db', db, '-e', 'new-model llama layers=1 heads=2 d=32 ctx=64 out='
                                                + out_e], 60))
    rc, so, _ = qkv_cli.interrupted(qkv, ['--db', db, '--json', '-e', 'train ' + ' '.join(long_run)], after='step 2/',
                                    during=again)
    r = json.loads(so.strip().split("\n")[-1]) if so.strip() else {}
    p2 = second[0] if second else None
    p3 = second[1] if len(second) > 1 else None
    if not p2 or p2.returncode == 0 or 'is in use by another qkv process' not in p2.stderr:
        fail('%s: a second train into the out= being trained: exit %s, %r'
             % (tag, p2 and p2.returncode, p2 and p2.stderr[-300:]))
    elif not p3 or p3.returncode == 0 or "new-model: '" not in p3.stderr or 'is in use by another qkv process' not in p3.stderr:
        fail('%s: new-model into the out= being trained: exit %s, %r' % (tag, p3 and p3.returncode,
                                                                       p3 and p3.stderr[-300:]))
    elif rc != 130 or not r.get('stopped'):
        fail('%s: the run the second was refused beside: exit %s, %r' % (tag, rc, {k: r.get(k) for k in ('stopped', 'step')}))

    # Ctrl-C without save_every: the run stops after its step and saves it (it saved nothing, and
    # the same command started again from step 0); the same command resumes after it
    out_d = os.path.join(tmp, family + '-d')
    nosave = [o for o in common if not o.startswith('save_every=')] + ['out=' + out_d]
    proc = subprocess.Popen([qkv, '--db', db, '--json', '-e', 'train ' + ' '.join(nosave)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if line.startswith('step 23/'):
            proc.send_signal(signal.SIGINT)
            break
    so, _ = proc.communicate()
    r = json.loads(so.strip().split("\n")[-1]) if so.strip() else {}
    stop = r.get('step', 0)
    if proc.returncode != 130 or not r.get('stopped') or not 23 <= stop < 40:
        fail('%s: Ctrl-C: exit %s, %r' % (tag, proc.returncode, {k: r.get(k) for k in ('stopped', 'step')}))
        return
    # its held-out loss is the last evaluation's (eval_every=10), and says which step's (a script read
    # it as the stopped step's)
    if r.get('val_loss_step') != stop // 10 * 10 or not isinstance(r.get('val_loss'), float):
        fail('%s: Ctrl-C at step %d: val_loss %r of step %r (the evaluation of step %d expected)'
             % (tag, stop, r.get('val_loss'), r.get('val_loss_step', 'absent'), stop // 10 * 10))
    run_status(tag + ': a run stopped with Ctrl-C', qkv, db, out_d, 'stopped')
    p = train_cmd(qkv, db, nosave)
    if p.returncode != 0 or 'resuming after step %d' % stop not in p.stderr:
        fail('%s: resume after Ctrl-C at step %d: exit %d: %s' % (tag, stop, p.returncode, p.stderr.strip()[-500:]))
        return
    wd = tensors(out_d)
    diff = [k for k in wa if k not in wd or not np.array_equal(wa[k], wd[k])]
    if diff or set(wa) != set(wd):
        fail('%s: weights after Ctrl-C and resume differ from the uninterrupted run in %s' % (tag, diff[:5]))
    else:
        print('ok %-24s Ctrl-C at step %d saved it; resumed there: weights identical' % (tag + ' ctrl-c', stop), flush=True)

    # continuing from the checkpoint
    out_c = os.path.join(tmp, family + '-c')
    p = train_cmd(qkv, db, [data, 'from=' + out_a, 'out=' + out_c, 'seq=%d' % seq, 'batch=8', 'steps=3', 'lr=1e-3'])
    if p.returncode != 0:
        fail('%s: from=: exit %d: %s' % (tag, p.returncode, p.stderr.strip()[-500:]))
    else:
        r = json.loads(p.stdout.strip().split("\n")[-1])
        if not r.get('loss', 99) < first - 1.0:
            fail('%s: from= did not start from the trained weights: loss %s' % (tag, r.get('loss')))
    return out_a, common


def threads_same(qkv, tmp, family, trained, common):
    """The run of scratch_and_resume (threads=2) again: the same loss curve and weights exactly.
    With threads=1: the first step's loss within 1e-6, the 40 steps' within 1e-3 and the weights
    within 3e-2 (relative). The passes split their work so that every sum keeps its order for
    any thread count, and on the AVX-512 host GPT-2 comes out identical; but OpenBLAS picks its
    small-matrix kernels (other rounding) by the size of each call, and a share's calls are
    smaller: the first step differs by about 1e-9 to 1e-7, and 40 steps at lr 1e-2 carry it to
    about 1e-5 (GPT-2) and 2e-4 (Llama) in the loss and 2e-3 to 1e-2 in the weights on the AVX2
    host (Zen 3, 2026-12-07: the bounds were 1e-4 and 1e-3, set on the AVX-512 host, and failed
    there)."""
    db = os.path.join(tmp, family + '-threads.db')
    want, wa = curve(os.path.join(tmp, family + '.db'), trained), tensors(trained)
    worst = {}
    for threads in (2, 1):
        out = os.path.join(tmp, '%s-t%d' % (family, threads))
        words = [w for w in common if not w.startswith('threads=')] + ['threads=%d' % threads, 'out=' + out]
        p = train_cmd(qkv, db, words)
        if p.returncode != 0:
            fail('%s threads=%d: exit %d: %s' % (family, threads, p.returncode, p.stderr.strip()[-500:]))
            return
        got, wb = curve(db, out), tensors(out)
        if threads == 2:
            diff = [k for k in wa if k not in wb or not np.array_equal(wa[k], wb[k])]
            if got != want or diff:
                fail('%s: a second run with threads=2 differs: curve %s ... vs %s ..., weights %s'
                     % (family, (got or [])[:3], want[:3], diff[:5]))
            continue
        rel = max([abs(a - b) / max(abs(b), 1e-6) for x, y in zip(got or [], want)
                   for a, b in zip(x[1:], y[1:]) if a is not None and b is not None] or [float('inf')])
        wrel = max(float(np.max(np.abs(wa[k] - wb[k]))) / max(float(np.max(np.abs(wa[k]))), 1e-6) for k in wa)
        rel1 = abs(got[0][1] - want[0][1]) / abs(want[0][1]) if got else float('inf')
        if len(got) != len(want) or not rel1 <= 1e-6 or not rel <= 1e-3 or not wrel <= 3e-2:
            fail('%s: threads=1 and threads=2 differ: the first loss by %.3g, losses by %.3g relative (%d and %d '
                 'points), weights by %.3g' % (family, rel1, rel, len(got or []), len(want), wrel))
        worst = (rel1, rel, wrel)
    if worst:
        print('ok %-24s threads=2 twice identical; threads=1: first loss within %.1e, losses within %.1e, weights '
              'within %.1e (relative)' % ((family + ' threads',) + worst), flush=True)


def bench_train(qkv, tmp, trained):
    """bench-train on the GPT-2 checkpoint: its FLOPs per token as counted here from config.json
    (6 x the linear weights, head included, plus 6 L d (T + 1) for attention's two products over
    the keys each query sees), the GFLOP/s and fractions consistent with the speeds; bad sizes
    refused with one error line."""
    db = os.path.join(tmp, 'bench.db')
    cfg = json.load(open(os.path.join(trained, 'config.json')))
    L, d, V, T = cfg['n_layer'], cfg['n_embd'], cfg['vocab_size'], 64
    want = 6.0 * (12 * d * d * L + V * d) + 6.0 * L * d * (T + 1)
    p = qkv_cli.run(qkv, ['--db', db, '--json', '--model', trained, '-e',
                          'bench-train batch=2 seq=%d steps=1 reps=3 threads=2' % T])
    r = json.loads(p.stdout.strip().split("\n")[-1]) if p.returncode == 0 else {}
    ok = (r and abs(r['flops_per_token'] - want) <= 1e-9 * want and r['threads'] == 2 and r['tok_s'] > 0
          and len(r['tok_s_reps']) == 3 and sorted(r['tok_s_reps'])[1] == r['tok_s']
          and abs(r['gflops'] - r['tok_s'] * want / 1e9) <= 1e-6 * r['gflops'] and r['sgemm_gflops'] > 0
          and r['sgemm_fraction_min'] <= r['sgemm_fraction'] <= r['sgemm_fraction_max'])
    if not ok:
        fail('bench-train: expected flops_per_token %.0f and consistent speeds, got exit %d: %s %s'
             % (want, p.returncode, p.stdout.strip()[-600:], p.stderr.strip()[-300:]))
    # threads= within --threads' bounds (999 ran 999 threads)
    for words, msg in (('seq=129', 'exceeds the model'), ('reps=0', 'reps=0'), ('batch=x', 'batch=x'),
                       ('threads=999', 'threads=999')):
        p = qkv_cli.run(qkv, ['--db', db, '--model', trained, '-e', 'bench-train ' + words])
        err = [l for l in p.stderr.splitlines() if l.startswith('error: ')]
        if p.returncode == 0 or len(err) != 1 or msg not in err[0]:
            fail('bench-train %s: expected one error line with %r, got exit %d: %s'
                 % (words, msg, p.returncode, p.stderr.strip()[-300:]))
    # Ctrl-C stops it (it ran every repetition, printed its result, then exited 130)
    proc = subprocess.Popen([qkv, '--db', db, '--model', trained, '-e', 'bench-train batch=2 seq=%d steps=50 reps=20' % T],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    so, se = proc.communicate(timeout=120)
    if proc.returncode != 130 or 'bench-train: interrupted' not in se or so.strip():
        fail('Ctrl-C during bench-train: exit %d, stdout %r, stderr %r' % (proc.returncode, so[-200:], se[-300:]))
        ok = False
    if ok:
        print('ok %-24s %.0f tok/s, %.3f MFLOP/token, %.0f%% of sgemm; bad sizes refused; Ctrl-C stops it'
              % ('bench-train', r['tok_s'], want / 1e6, 100 * r['sgemm_fraction']), flush=True)


def bad_state(qkv, tmp, trained, common):
    """A checkpoint whose train_state.bin is truncated, or not one: an error, never a crash."""
    db = os.path.join(tmp, 'bad.db')
    for name, damage, want in (('truncated', lambda b: b[:-100], 'truncated'),
                               ('garbage', lambda b: b'\0' * 64 + b[64:], 'not a qkv training state'),
                               ('short', lambda b: b[:10], 'not a qkv training state')):
        d = os.path.join(tmp, 'state-' + name)
        shutil.copytree(trained, d)
        path = os.path.join(d, 'train_state.bin')
        with open(path, 'rb') as f:
            b = f.read()
        with open(path, 'wb') as f:
            f.write(damage(b))
        p = train_cmd(qkv, db, common + ['out=' + d], timeout=120)
        err = [l for l in p.stderr.splitlines() if l.startswith('error: ')]
        if p.returncode == 0 or len(err) != 1 or want not in err[0]:
            fail('%s train_state.bin: expected one error line with %r, got exit %d: %s'
                 % (name, want, p.returncode, p.stderr.strip()[-400:]))
    print('ok %-24s truncated, garbage and short states refused' % 'bad train_state.bin', flush=True)


def bad_at(path, off):
    """The line (from 1) of byte off of a file and its byte in that line (from 1), as qkv names
    where a text is not UTF-8 (it gave the byte of the file: 2003 in a large corpus says little)."""
    head = open(path, 'rb').read()[:off]
    return head.count(b'\n') + 1, off - (head.rfind(b'\n') + 1) + 1


def bad_inputs(qkv, tmp, data, trained, common, llama=None):
    db = os.path.join(tmp, 'bad.db')
    empty = os.path.join(tmp, 'empty.txt')
    open(empty, 'w').close()
    latin1 = os.path.join(tmp, 'latin1.txt')  # not UTF-8: each bad byte became U+FFFD, three tokens
    with open(latin1, 'wb') as f:
        f.write(open(data, 'rb').read()[:2000] + 'caf\u00e9 na\u00efve'.encode('latin-1') * 20)
    short = os.path.join(tmp, 'short.txt')
    with open(short, 'w') as f:
        f.write('a few words')
    bert = os.path.join(tmp, 'bert')
    qkv_cli.new_model(qkv, ['bert', 'layers=1', 'heads=2', 'd=16', 'ctx=32', 'out=' + bert], db)
    onlyvocab = os.path.join(tmp, 'only-vocab')  # vocab.json without merges.txt: no tokenizer
    os.makedirs(onlyvocab, exist_ok=True)
    with open(os.path.join(onlyvocab, 'vocab.json'), 'w') as f:
        f.write('{}')
    onetok = os.path.join(tmp, 'one-token')  # a vocabulary of one token ("a"): nothing to predict
    fewtok = os.path.join(tmp, 'few-tokens')  # tokens for a few letters: most of the text dropped
    for d_, vocab in ((onetok, '{"a": 0}'), (fewtok, '{"a": 0, "b": 1, "c": 2}')):
        os.makedirs(d_, exist_ok=True)
        with open(os.path.join(d_, 'vocab.json'), 'w') as f:
            f.write(vocab)
        with open(os.path.join(d_, 'merges.txt'), 'w') as f:
            f.write('#version: 0.2\n')
    cases = [
        ([os.path.join(tmp, 'missing.txt'), 'out=' + os.path.join(tmp, 'x1')], 'missing.txt'),
        # (each trained to a loss of 0 on the few tokens kept, exit 0)
        ([data, 'out=' + os.path.join(tmp, 'x11'), 'family=llama', 'tok=' + onetok], 'a vocabulary of 1 token'),
        ([data, 'out=' + os.path.join(tmp, 'x12'), 'family=llama', 'tok=' + fewtok], "the model's tokenizer spells "),
        # named as tok= (the error named out= and said "tokenizer written to" it)
        ([data, 'out=' + os.path.join(tmp, 'x9'), 'family=llama', 'tok=' + onlyvocab], 'tok=' + onlyvocab + ': '),
        ([empty, 'out=' + os.path.join(tmp, 'x2')], 'empty'),
        ([data, 'out=' + os.path.join(tmp, 'x3'), 'ctx=16', 'seq=32'], 'exceeds the model'),
        ([short, 'out=' + os.path.join(tmp, 'x4'), 'seq=32'], 'fewer than seq+1'),
        ([data, 'from=' + bert, 'out=' + os.path.join(tmp, 'x5')], 'not trainable'),
        ([data, 'out=' + os.path.join(tmp, 'x6'), 'warmup=5', 'steps=5'], 'warmup'),
        # a floor above the start: the schedule rose (it was accepted)
        ([data, 'out=' + os.path.join(tmp, 'x7'), 'lr=1e-3', 'min_lr=1e-2'], 'min_lr=0.01 is above lr=0.001'),
        ([data], 'out=DIR is required'),
        ([latin1, 'out=' + os.path.join(tmp, 'x9')], 'is not UTF-8 (line %d, byte %d of it)' % bad_at(latin1, 2003)),
        ([data, 'from=' + trained, 'out=' + os.path.join(tmp, 'x7'), 'layers=3'], 'layers= describes a new model'),
        # a new model's options that were ignored with from= (its config kept rope_theta 10000)
        ([data, 'from=' + trained, 'out=' + os.path.join(tmp, 'x7'), 'theta=500'], 'theta= describes a new model'),
        ([data, 'from=' + trained, 'out=' + os.path.join(tmp, 'x7'), 'tied=false'], 'tied= describes a new model'),
        ([data, 'from=' + trained, 'out=' + os.path.join(tmp, 'x7'), 'seed=3'], 'seed= describes a new model'),
        ([data, 'from=builtin', 'out=' + os.path.join(tmp, 'x8')], 'the built-in model is not a file'),
        # a shape too big to train here, refused before its weights are written (2.6 TB of them
        # were written until the disk filled, Ctrl-C not heeded, before 2026-12-07)
        ([data, 'out=' + os.path.join(tmp, 'x10'), 'family=gpt2', 'layers=200', 'heads=16', 'd=16384', 'ctx=64',
          'seq=32'], 'billion parameters needs at least'),
    ]
    # a resume with one option unlike the run's (the same command otherwise): the optimizer's
    # settings, the model's shape and the text's tokens were ignored on resume before
    same = [w for w in common if w != data] + ['out=' + trained]
    swapped = os.path.join(tmp, 'swapped.txt')  # the same lines (so as many tokens) in another order
    with open(data) as f:
        lines = f.read().splitlines(True)
    with open(swapped, 'w') as f:
        f.writelines(lines[::-1])

    def but(opt):  # the run's options with opt (key=value) in place of its own
        k = opt.split('=')[0] + '='
        return [data] + [w for w in same if not w.startswith(k)] + [opt]
    # a trained model given as out= (no run of it there) is not written over
    kept = os.path.join(tmp, 'kept-model')
    shutil.copytree(trained, kept)
    os.unlink(os.path.join(kept, 'train_state.bin'))
    cases.append(([data, 'out=' + kept, 'family=gpt2', 'layers=1', 'heads=1', 'd=32', 'ctx=32', 'steps=2'],
                  'already holds a trained model'))
    # (eps=: train took none, though a resume checks it and reward train and dpo train take it)
    cases += [(but('batch=2'), 'another batch'), (but('lr=0.05'), 'another lr'), (but('clip=100'), 'another clip'),
              (but('eps=1e-6'), 'another eps'), (but('beta2=0.99'), 'another beta1/beta2'), (but('family=llama'), 'another family'),
              (but('layers=3'), 'another layers'),
              ([swapped] + same, 'another training text (the same number of tokens, other ones)')]
    # the new model's other options, the held-out fraction and the batches' seed: the first were
    # ignored on resume (the run went on with the old model), the last two named as "another the
    # data" and "another seed" (before 2026-12-06)
    cases += [(but('ff=64'), 'a model with another ff'), (but('vocab=300'), 'a model with another vocab'),
              (but('tied=false'), 'a model with another tied'), (but('seed=9'), 'a model with another seed'),
              (but('std=0.5'), 'a model with another std'), (but('tok=' + bert), 'a model with another tok'),
              (but('val=0.2'), 'a run with another val'), (but('data_seed=9'), 'a run with another data_seed')]
    if llama:
        lsame = [w for w in llama[1] if w != data] + ['out=' + llama[0]]
        for opt, want in (('kv_heads=4', 'another kv_heads'), ('theta=500', 'another theta')):
            k = opt.split('=')[0] + '='
            cases.append(([data] + [w for w in lsame if not w.startswith(k)] + [opt], 'a model with ' + want))
    for words, want in cases:
        p = train_cmd(qkv, db, words, timeout=120)
        err = [l for l in p.stderr.splitlines() if l.startswith('error: ')]
        if p.returncode == 0 or len(err) != 1 or want not in err[0]:
            fail('bad input %s: expected one error line with %r and a non-zero exit, got exit %d: %s'
                 % (words, want, p.returncode, p.stderr.strip()[-400:]))
    # a failed run leaves no out= directory it made (an untrained model where a trained one was
    # expected); the kept model is untouched
    left = [d for d in ('x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'x7', 'x8', 'x9', 'x10', 'x11', 'x12') if os.path.exists(os.path.join(tmp, d))]
    if left:
        fail('failed runs left their out= directories: %s' % left)
    if any(not np.array_equal(a, b) for a, b in zip(tensors(trained).values(), tensors(kept).values())):
        fail('the trained model given as out= was changed')
    print('ok %-24s %d cases' % ('bad input', len(cases)), flush=True)
    # from= takes an installed model's name, as --model and base= do
    ft = [data, 'from=teach', 'out=' + os.path.join(tmp, 'from-teach'), 'steps=2', 'batch=2', 'seq=16']
    p = train_cmd(qkv, db, ft)
    if p.returncode != 0:
        fail('train from=teach: exit %d: %s' % (p.returncode, p.stderr.strip()[-300:]))
    # the same command again finds its run there; from=teach into the GPT-2 run is refused naming
    # from= (the GPT-2 run went on, the teaching model never read, exit 0: from an audit, 2026-12-07)
    p = train_cmd(qkv, db, ft)
    if p.returncode != 0:
        fail('train from=teach again: exit %d: %s' % (p.returncode, p.stderr.strip()[-300:]))
    before = tensors(trained)
    keep = ('seq', 'batch', 'steps', 'save_every', 'eval_every', 'eval_batches', 'lr', 'warmup', 'threads')
    p = train_cmd(qkv, db, [data] + [w for w in common if w.split('=')[0] in keep] + ['from=teach', 'out=' + trained])
    err = [l for l in p.stderr.splitlines() if l.startswith('error: ')]
    if p.returncode == 0 or len(err) != 1 or not re.search(r'another model than from=\S*teach \(its family differs\)', err[0]):
        fail('train from=teach into another model\'s run: exit %d: %s' % (p.returncode, p.stderr.strip()[-300:]))
    if any(not np.array_equal(a, b) for a, b in zip(before.values(), tensors(trained).values())):
        fail('train from=teach into another model\'s run changed its weights')
    # a version 1 state (before the optimizer's settings and the data's fingerprint were kept:
    # its 120-byte head without the 104 bytes after it), a version 2 one (before the checksum:
    # its 192-byte head) and a version 3 one (before the new model's seed, std and tokenizer were
    # kept: its 200-byte head without the 24 after it) still resume with the same command
    for version, head in ((1, 120), (2, 192), (3, 200)):
        old = os.path.join(tmp, 'v%d-state' % version)
        shutil.copytree(trained, old)
        st = os.path.join(old, 'train_state.bin')
        with open(st, 'rb') as f:
            b = bytearray(f.read())
        b[8:12] = (version).to_bytes(4, 'little')
        with open(st, 'wb') as f:
            f.write(bytes(b[:head]) + bytes(b[224:]))
        p = train_cmd(qkv, db, [data] + [w for w in common if w != data] + ['out=' + old], timeout=120)
        if p.returncode != 0 or 'resuming after step 40' not in p.stderr:
            fail('a version %d training state does not resume: exit %d: %s'
                 % (version, p.returncode, p.stderr.strip()[-300:]))


def small_val(qkv, tmp, data):
    """A held-out part shorter than one window (val=0.001 of a few thousand tokens, seq=32) is
    trained on: no held-out loss, and every token counted for training (they were dropped)."""
    db = os.path.join(tmp, 'val.db')
    got = {}
    for val in ('0', '0.001', '0.9'):  # 0.9: the top of the range the option takes (the run refused it)
        p = train_cmd(qkv, db, [data, 'out=' + os.path.join(tmp, 'val-' + val), 'family=gpt2', 'layers=1', 'heads=1',
                                'd=16', 'ctx=64', 'steps=1', 'batch=2', 'seq=32', 'val=' + val])
        got[val] = json.loads(p.stdout.strip().split('\n')[-1]) if p.returncode == 0 else {}
    a, b = got['0'], got['0.001']
    if not got['0.9'].get('val_tokens'):
        fail('val=0.9 (within [0, 0.9]) did not run: %r' % got['0.9'])
    if not a or not b or b.get('val_tokens') != 0 or b.get('train_tokens') != a.get('train_tokens') \
            or b.get('val_loss') is not None:
        fail('val=0.001: train_tokens %r (all: %r), val_tokens %r, val_loss %r' % (
            b.get('train_tokens'), a.get('train_tokens'), b.get('val_tokens'), b.get('val_loss')))
    else:
        print('ok %-24s a held-out part shorter than a window is trained on (%d tokens)'
              % ('small val', b['train_tokens']), flush=True)
    # ... counted before the size check: a text of seq+1 tokens trains (33 bytes of a byte-level
    # model, seq=32; "30 training tokens, fewer than seq+1" before 2026-12-07: the part not held
    # out was subtracted)
    tiny = os.path.join(tmp, 'tiny.txt')
    with open(tiny, 'w') as f:
        f.write('the cat sat on the mat, and sat.\n')  # 33 bytes
    p = train_cmd(qkv, db, [tiny, 'out=' + os.path.join(tmp, 'val-tiny'), 'family=gpt2', 'layers=1', 'heads=1', 'd=16',
                            'ctx=64', 'steps=1', 'batch=1', 'seq=32'])
    t = json.loads(p.stdout.strip().split('\n')[-1]) if p.returncode == 0 else {}
    if not re.search(r'step 1/1 .* lr 0\.0003 ', p.stderr):  # a one-step run at lr (it ran at min_lr, lr/10)
        fail('steps=1 does not train at lr: %s' % p.stderr.strip()[-300:])
    if (t.get('train_tokens'), t.get('val_tokens')) != (33, 0):
        fail('a text of seq+1 tokens: exit %d, %r, %s' % (p.returncode, {k: t.get(k) for k in ('train_tokens',
                                                                                                'val_tokens')},
                                                          p.stderr.strip()[-200:]))
    # eval_batches past the held-out windows: each window once (they were cycled through, the first
    # counted more often than the rest): the same loss as exactly as many batches as windows
    losses = []
    for eb in (0, 1000):
        opts = [data, 'family=gpt2', 'layers=1', 'heads=1', 'd=16', 'ctx=64', 'steps=1', 'batch=1', 'seq=32',
                'val=0.1']
        if eb == 0:  # the number of windows, from a first run's held-out tokens
            p = train_cmd(qkv, db, opts + ['out=' + os.path.join(tmp, 'eb-probe')])
            n = json.loads(p.stdout.strip().split('\n')[-1]).get('val_tokens', 0) if p.returncode == 0 else 0
            eb = max(1, (n - 1) // 32)
        p = train_cmd(qkv, db, opts + ['out=' + os.path.join(tmp, 'eb-%d' % eb), 'eval_batches=%d' % eb])
        losses.append(json.loads(p.stdout.strip().split('\n')[-1]).get('val_loss') if p.returncode == 0 else None)
    if losses[0] is None or losses[0] != losses[1]:
        fail('eval_batches=1000 past the held-out windows: val_loss %r, over each window once %r' % (losses[1],
                                                                                                     losses[0]))


def untrained_out(qkv, tmp, data):
    """train FILE out=DIR, DIR an untrained model of new-model's and no model named: that model is
    trained (a new model of the default shape replaced it: 2 layers, d=64), the weights exactly those
    of from=its copy, and the same command again finds the run finished (it was refused: "another
    layers"). When DIR is the session's model, the session reloads it after the run: its logits are
    then the trained files' (it kept the untrained weights while the runs it logged named the trained
    files' hash)."""
    db = os.path.join(tmp, 'untrained.db')
    n0 = len(failures)
    u, ref = os.path.join(tmp, 'untrained-u'), os.path.join(tmp, 'untrained-ref')
    p = qkv_cli.run(qkv, ['--db', db, '-e', 'new-model gpt2 layers=1 heads=2 d=32 ctx=64 seed=3 out=' + u])
    if p.returncode != 0:
        fail('new-model: ' + p.stderr)
        return
    shutil.copytree(u, ref + '-src')
    opts = ['steps=3', 'batch=2', 'seq=16', 'save_every=3']
    runs = [train_cmd(qkv, db, [data, 'out=' + u] + opts),
            train_cmd(qkv, db, [data, 'from=' + ref + '-src', 'out=' + ref] + opts),
            train_cmd(qkv, db, [data, 'out=' + u] + opts)]  # the same command again: the run is finished
    res = [json.loads(r.stdout.strip().split('\n')[-1]) if r.returncode == 0 else {'err': r.stderr[-300:]} for r in runs]
    cfg = json.load(open(os.path.join(u, 'config.json')))
    if (cfg.get('n_layer'), cfg.get('n_embd'), cfg.get('n_positions')) != (1, 32, 64):
        fail('train out= an untrained model: trained a model of n_layer %r, n_embd %r, n_positions %r (1, 32, 64 '
             'made by new-model)' % (cfg.get('n_layer'), cfg.get('n_embd'), cfg.get('n_positions')))
    wu, wr = tensors(u), tensors(ref)
    if set(wu) != set(wr) or any(not np.array_equal(wu[k], wr[k]) for k in wu):
        fail('train out= an untrained model: weights differ from train from= its copy')
    if res[0].get('loss') != res[1].get('loss') or res[2].get('step') != 3 or res[2].get('loss', 0) is not None:
        fail('train out= an untrained model: %r; from= its copy %r; the same command again %r' % tuple(res))
    # the session's own model trained in place: reloaded
    s = os.path.join(tmp, 'untrained-s')
    p = qkv_cli.run(qkv, ['--db', db, '-e', 'new-model gpt2 layers=1 heads=2 d=32 ctx=64 seed=4 out=' + s])
    p = qkv_cli.run(qkv, ['--db', db, '--json', '-e', 'load %s; train %s out=%s %s; logits "the cat" top=5; model'
                          % (s, data, s, ' '.join(opts))])
    outs = [json.loads(l) for l in p.stdout.splitlines() if l.startswith('{')] if p.returncode == 0 else []
    fresh = qkv_cli.run(qkv, ['--db', db, '--model', s, '--json', '-e', 'logits "the cat" top=5'])
    want = json.loads(fresh.stdout) if fresh.returncode == 0 else {}
    if len(outs) != 4 or not outs[1].get('reloaded') or outs[3].get('untrained') or \
            [t['logit'] for t in outs[2].get('top', [])] != [t['logit'] for t in want.get('top', [])]:
        fail('train out= the session\'s model: exit %d, reloaded %r, then untrained %r, logits %r (the files\' %r): %s'
             % (p.returncode, outs[1].get('reloaded') if len(outs) > 1 else None,
                outs[3].get('untrained') if len(outs) > 3 else None,
                [t['logit'] for t in outs[2].get('top', [])] if len(outs) > 2 else None,
                [t['logit'] for t in want.get('top', [])], p.stderr[-300:]))
    if len(failures) == n0:
        print('ok %-24s trained as from= it, finished on the next run; the session\'s reloaded' % 'untrained out=',
              flush=True)


def from_gguf(qkv, tmp, data):
    """A checkpoint made from a GGUF Llama (q and k in llama.cpp's adjacent-pair rotary order) is
    the same model in HF's layout: after a step at lr 1e-9 its logits equal the GGUF's, in qkv and
    in transformers, and its tokenizer (the GGUF's metadata) is kept as tokenizer.gguf."""
    tag = 'from gguf'
    db = os.path.join(tmp, 'gguf.db')
    src = os.path.join(tmp, 'gg-src')
    gguf = os.path.join(tmp, 'gg.gguf')
    out = os.path.join(tmp, 'gg-out')
    p = qkv_cli.new_model(qkv, ['llama', 'layers=2', 'heads=4', 'kv_heads=2', 'd=64', 'ctx=128', 'theta=500',
                                'out=' + src], db)
    if p.returncode != 0:
        fail('%s: new-model: %s' % (tag, p.stderr.strip()[-500:]))
        return
    qkv_cli.json_cmds(qkv, src, ['export gguf %s type=f32' % gguf], db)
    p = train_cmd(qkv, db, [data, 'from=' + gguf, 'out=' + out, 'seq=32', 'batch=2', 'steps=1', 'lr=1e-9',
                            'min_lr=0'])
    if p.returncode != 0:
        fail('%s: train: exit %d: %s' % (tag, p.returncode, p.stderr.strip()[-500:]))
        return
    if not os.path.isfile(os.path.join(out, 'tokenizer.gguf')):
        fail('%s: the checkpoint has no tokenizer.gguf: %s' % (tag, sorted(os.listdir(out))))
    # the same command again: the run from the GGUF resumes (finished) as from= it started from
    again = train_cmd(qkv, db, [data, 'from=' + gguf, 'out=' + out, 'seq=32', 'batch=2', 'steps=1', 'lr=1e-9',
                                'min_lr=0'])
    if again.returncode != 0:
        fail('%s: the same train command again: exit %d: %s' % (tag, again.returncode, again.stderr.strip()[-300:]))
    ids = list(range(3, 60))
    (a,) = qkv_cli.json_cmds(qkv, gguf, ['logits %s full=true' % qkv_cli.ids_arg(ids)], db)
    (b,) = qkv_cli.json_cmds(qkv, out, ['logits %s full=true' % qkv_cli.ids_arg(ids)], db)
    la, lb = np.asarray(a['logits'], dtype=np.float64), np.asarray(b['logits'], dtype=np.float64)
    err = float(np.max(np.abs(la - lb))) if la.shape == lb.shape else float('inf')
    if not err <= 1e-4:
        fail('%s: the checkpoint is not the GGUF\'s model: logits differ by %.3g' % (tag, err))
    with torch.no_grad():
        want = load_causal_lm(out)(input_ids=torch.tensor([ids])).logits[0].double().numpy()
    herr = float(np.max(np.abs(want - la))) if want.shape == la.shape else float('inf')
    if not herr <= 1e-4:
        fail('%s: transformers on the checkpoint and qkv on the GGUF differ by %.3g' % (tag, herr))
    print('ok %-24s logits max |d| %.2e (qkv), %.2e (transformers)' % (tag, err, herr), flush=True)


def from_gguf_same(qkv, tmp, data, family, dtype, opts):
    """Training from a model's GGUF export is training from the model: one step at lr 1e-9 from
    the folder (F32 or F16 safetensors) and from its GGUF of the same type gives the same first
    loss and writes the same weights, byte for byte. (A GPT-2 GGUF holds its linears [out, in],
    the folder HF's Conv1D [in, out]: they were read without transposing until 2026-12-06, and
    the first loss differed.)"""
    tag = 'from gguf %s %s' % (family, dtype)
    db = os.path.join(tmp, 'gguf-same.db')
    src = os.path.join(tmp, 'ggs-%s-%s' % (family, dtype))
    gguf = src + '.gguf'
    p = qkv_cli.new_model(qkv, [family, 'layers=2', 'd=64', 'ctx=128', 'dtype=' + dtype, 'out=' + src] + opts, db)
    if p.returncode != 0:
        fail('%s: new-model: %s' % (tag, p.stderr.strip()[-500:]))
        return
    qkv_cli.json_cmds(qkv, src, ['export gguf %s type=%s' % (gguf, dtype)], db)
    res, ws = [], []
    for start in (src, gguf):
        out = start + '-out' + ('-g' if start == gguf else '-f')
        p = train_cmd(qkv, db, [data, 'from=' + start, 'out=' + out, 'seq=32', 'batch=2', 'steps=1', 'lr=1e-9',
                                'min_lr=0'])
        if p.returncode != 0:
            fail('%s: train from=%s: exit %d: %s' % (tag, start, p.returncode, p.stderr.strip()[-500:]))
            return
        res.append(json.loads(p.stdout.strip().split("\n")[-1]))
        ws.append(tensors(out))
    (rf, rg), (wf, wg) = res, ws
    diff = sorted(k for k in set(wf) | set(wg) if k not in wf or k not in wg or not np.array_equal(wf[k], wg[k]))
    if rf['loss'] != rg['loss'] or rf['val_loss'] != rg['val_loss'] or diff:
        fail('%s: from the folder loss %.7f (held-out %.7f), from its GGUF %.7f (held-out %.7f); weights differ in %s'
             % (tag, rf['loss'], rf['val_loss'], rg['loss'], rg['val_loss'], diff[:6]))
    else:
        print('ok %-24s the same first loss (%.5f) and weights as from the folder' % (tag, rf['loss']), flush=True)


def gpt2_files_auto_tokenizer(qkv, tmp, data):
    """A Llama whose tokenizer is GPT-2's files (vocab.json + merges.txt: tok= a train-tokenizer
    output, as the teaching recipe's) loads in transformers' AutoTokenizer, which picks a class by
    tokenizer_config.json or else the model's type (LlamaTokenizer, which cannot read those
    files: "Couldn't instantiate the backend tokenizer" before 2026-12-06), and its ids are qkv's;
    the same for the committed teaching model."""
    tag = 'gpt2 files, a llama'
    db = os.path.join(tmp, 'tokcls.db')
    tok, out = os.path.join(tmp, 'tokcls-bpe'), os.path.join(tmp, 'tokcls-llama')
    p = qkv_cli.run(qkv, ['--db', db, '-e', 'train-tokenizer %s out=%s vocab=300' % (data, tok)])
    if p.returncode == 0:
        p = train_cmd(qkv, db, [data, 'out=' + out, 'family=llama', 'layers=1', 'heads=2', 'd=32', 'ctx=64',
                                'tok=' + tok, 'steps=2', 'batch=2', 'seq=32'])
    if p.returncode != 0:
        fail('%s: exit %d: %s' % (tag, p.returncode, p.stderr.strip()[-500:]))
        return
    texts = ['the cat sees the dog.', ' a bird follows\n\nthe  teacher', 'x<|endoftext|>y', '  Q: 7 + 5 - 3']
    for model in (out, os.path.join(os.environ.get('QKV_SRCDIR', '.'), 'data', 'models', 'teach')):
        try:
            hf = transformers.AutoTokenizer.from_pretrained(model, local_files_only=True)
        except Exception as ex:
            fail('%s: AutoTokenizer cannot load %s: %s: %s' % (tag, model, type(ex).__name__, str(ex)[:200]))
            continue
        got = qkv_cli.json_cmds(qkv, model, ['tokenize "%s"' % t.replace('\n', '\\n') for t in texts], db)
        bad = [(t, g['ids'], hf(t)['input_ids']) for t, g in zip(texts, got) if g['ids'] != hf(t)['input_ids']]
        if bad:
            fail('%s: %s: qkv and AutoTokenizer (%s) differ: %s' % (tag, model, type(hf).__name__, bad[:2]))
        else:
            print('ok %-24s %s: AutoTokenizer (%s) gives qkv\'s ids' % (tag, os.path.basename(model),
                                                                     type(hf).__name__), flush=True)


def llama2c_tokenizer_kept(qkv, tmp, data):
    """A checkpoint trained from a llama2.c model keeps its tokenizer (as tokenizer.gguf): the same
    ids on texts with leading and repeated spaces, where llama2.c puts its space before the text
    whatever it starts with (" one" was ' on', 'e' from the checkpoint, ' ', ' on', 'e' from the
    source, until 2026-12-06). Skipped without ../shared/models' stories260K."""
    tag = 'llama2.c tokenizer kept'
    src = os.path.join(os.environ.get('QKV_SHARED_MODELS', ''), 'llama2c-stories260k', 'stories260K.bin')
    if not os.path.isfile(src):
        print('%s: %s absent, not checked' % (tag, src), flush=True)
        return
    db = os.path.join(tmp, 'l2c.db')
    out = os.path.join(tmp, 'l2c-out')
    p = train_cmd(qkv, db, [data, 'from=' + src, 'out=' + out, 'steps=1', 'batch=2', 'seq=32'])
    if p.returncode != 0:
        fail('%s: train: exit %d: %s' % (tag, p.returncode, p.stderr.strip()[-500:]))
        return
    # the same command again resumes (finished): the checkpoint's tokenizer.gguf holds the source's tokens
    p = train_cmd(qkv, db, [data, 'from=' + src, 'out=' + out, 'steps=1', 'batch=2', 'seq=32'])
    if p.returncode != 0:
        fail('%s: the same train command again: exit %d: %s' % (tag, p.returncode, p.stderr.strip()[-300:]))
    texts = [' one', '  two  spaces', 'one', ' ', '\\n x', 'a <s> b', ' \u2581x']
    cmds = ['tokenize "%s" special=%s' % (t, sp) for t in texts for sp in ('true', 'false')]
    want = qkv_cli.json_cmds(qkv, src, cmds, db)
    got = qkv_cli.json_cmds(qkv, out, cmds, db)
    bad = [(c, w['pieces'], g['pieces']) for c, w, g in zip(cmds, want, got) if w['ids'] != g['ids']]
    if bad:
        fail('%s: the checkpoint tokenizes otherwise than its source on %d of %d texts: %s'
             % (tag, len(bad), len(cmds), bad[:2]))
    else:
        print('ok %-24s %d texts tokenized as the source' % (tag, len(cmds)), flush=True)


def task_examples(qkv, tmp, data):
    """train on a task file: each exemplar its zero-shot prompt (not learned) and its answer (the
    loss); the held-out loss equals transformers' over the held-out exemplars' answer tokens;
    the model learns the answers; bad task input gets one error line."""
    tag = 'task file'
    db = os.path.join(tmp, 'task.db')
    base = os.path.join(tmp, 'task-base')
    out = os.path.join(tmp, 'task-out')
    p = qkv_cli.new_model(qkv, ['gpt2', 'layers=2', 'heads=2', 'd=64', 'ctx=64', 'out=' + base], db)
    if p.returncode != 0:
        fail('%s: new-model: %s' % (tag, p.stderr.strip()[-500:]))
        return
    rnd = random.Random(7)
    words = sorted({''.join(rnd.choice('abcdefgh') for _ in range(3)) for _ in range(40)})[:16]
    head = {'name': 'upper', 'description': '', 'delimiter': ' =>', 'separator': '\n', 'scorer': 'exact',
            'max_tokens': 6}
    task = os.path.join(tmp, 'upper.jsonl')
    with open(task, 'w') as f:
        f.write(json.dumps(head) + '\n')
        for w in words:
            f.write(json.dumps({'input': w, 'target': w.upper(), 'split': 'pool'}) + '\n')
        f.write(json.dumps({'input': 'zzz', 'target': 'ZZZ'}) + '\n')
    # the exemplars as test items: `prompt show` renders each one's zero-shot prompt
    as_test = os.path.join(tmp, 'upper-test.jsonl')
    with open(as_test, 'w') as f:
        f.write(json.dumps(head) + '\n')
        for w in words:
            f.write(json.dumps({'input': w, 'target': w.upper()}) + '\n')
    p = train_cmd(qkv, db, [task, 'from=' + base, 'out=' + out, 'steps=150', 'batch=4', 'lr=1e-2', 'warmup=5',
                            'val=0.25'])
    if p.returncode != 0:
        fail('%s: train: exit %d: %s' % (tag, p.returncode, p.stderr.strip()[-500:]))
        return
    res = json.loads(p.stdout.strip().split("\n")[-1])
    held = [i for i in range(len(words)) if i % 4 == 3]  # val=0.25: every 4th exemplar held out
    cmds = ['prompt show %s shots=0 item=%d' % (as_test, i) for i in range(len(words))]
    prompts = [r['text'] for r in qkv_cli.json_cmds(qkv, out, cmds, db)]
    m = load_causal_lm(out)
    total, count = 0.0, 0
    with torch.no_grad():
        for i in held:
            (pt, at) = qkv_cli.json_cmds(qkv, out, ['tokenize "%s"' % prompts[i].replace('\n', '\\n'),
                                                     'tokenize " %s\\n" special=false' % words[i].upper()], db)
            ids = pt['ids'] + at['ids']
            logits = m(input_ids=torch.tensor([ids[:-1]])).logits[0]
            lp = torch.log_softmax(logits.double(), -1)
            for t in range(len(pt['ids']) - 1, len(ids) - 1):
                total -= float(lp[t, ids[t + 1]])
                count += 1
    want = total / count
    if not abs(want - res.get('val_loss', -1)) <= 1e-4:
        fail('%s: held-out loss over the answers: transformers %.6f, qkv %.6f' % (tag, want, res.get('val_loss', -1)))
    if res.get('train_tokens', 0) + res.get('val_tokens', 0) <= 0 or not res.get('loss', 99) < 0.3:
        fail('%s: the answers were not learned: %s' % (tag, res))
    # what it learned, through experiment: the training exemplars' answers
    (ex,) = qkv_cli.json_cmds(qkv, out, ['experiment %s shots=0' % as_test], db)
    trained = [i for i in range(len(words)) if i not in held]
    acc = ex['conditions'][0]['accuracy']
    if not acc >= 0.5 * len(trained) / len(words):
        fail('%s: zero-shot accuracy on the exemplars after training %.2f' % (tag, acc))
    print('ok %-24s loss %.4f, held-out %.5f (transformers %.5f), zero-shot on the exemplars %.2f'
          % (tag, res['loss'], res['val_loss'], want, acc), flush=True)
    # exemplars alone (no test item) are a training set too (refused before: "no test items")
    pool_only = os.path.join(tmp, 'upper-pool.jsonl')
    with open(pool_only, 'w') as f:
        f.write(json.dumps(head) + '\n' + ''.join(json.dumps({'input': w, 'target': w.upper(), 'split': 'pool'}) + '\n'
                                                 for w in words))
    p = train_cmd(qkv, db, [pool_only, 'from=' + base, 'out=' + os.path.join(tmp, 'pool-only'), 'steps=2', 'batch=4'])
    if p.returncode != 0:
        fail('%s: train on exemplars alone: exit %d: %s' % (tag, p.returncode, p.stderr.strip()[-300:]))
    # bad input: no exemplars, cot without rationales, cot with a text file, an example beyond seq
    nopool = os.path.join(tmp, 'nopool.jsonl')
    with open(nopool, 'w') as f:
        f.write(json.dumps(head) + '\n' + json.dumps({'input': 'a', 'target': 'A'}) + '\n')
    cases = [([nopool, 'from=' + base, 'out=' + os.path.join(tmp, 't1')], 'no exemplars'),
             ([task, 'from=' + base, 'out=' + os.path.join(tmp, 't2'), 'cot=on'], 'no rationale'),
             ([data, 'from=' + base, 'out=' + os.path.join(tmp, 't3'), 'cot=on'], 'task file'),
             ([task, 'from=' + base, 'out=' + os.path.join(tmp, 't4'), 'seq=3'], 'more than seq+1')]
    for words_, want_err in cases:
        p = train_cmd(qkv, db, words_, timeout=120)
        err = [l for l in p.stderr.splitlines() if l.startswith('error: ')]
        if p.returncode == 0 or len(err) != 1 or want_err not in err[0]:
            fail('%s: bad input %s: expected one error line with %r, got exit %d: %s'
                 % (tag, words_, want_err, p.returncode, p.stderr.strip()[-300:]))


def main():
    qkv = sys.argv[1] if len(sys.argv) > 1 else qkv_cli.qkv_path()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, 'corpus.txt')
        corpus(data)
        trained = scratch_and_resume(qkv, tmp, data, 'gpt2', ['family=gpt2', 'layers=2', 'heads=2', 'd=64', 'ctx=128'])
        if trained:
            threads_same(qkv, tmp, 'gpt2', *trained)
            bench_train(qkv, tmp, trained[0])
            bad_state(qkv, tmp, *trained)
            trained, gpt2_common = trained
        llama = scratch_and_resume(qkv, tmp, data, 'llama', ['family=llama', 'layers=2', 'heads=4', 'kv_heads=2',
                                                             'd=64', 'ctx=128'])
        if llama:
            threads_same(qkv, tmp, 'llama', *llama)
        if trained:
            bad_inputs(qkv, tmp, data, trained, gpt2_common, llama)
        from_gguf(qkv, tmp, data)
        small_val(qkv, tmp, data)
        untrained_out(qkv, tmp, data)
        from_gguf_same(qkv, tmp, data, 'gpt2', 'f32', ['heads=2'])
        from_gguf_same(qkv, tmp, data, 'gpt2', 'f16', ['heads=2'])
        from_gguf_same(qkv, tmp, data, 'llama', 'f32', ['heads=4', 'kv_heads=2', 'theta=500'])
        gpt2_files_auto_tokenizer(qkv, tmp, data)
        llama2c_tokenizer_kept(qkv, tmp, data)
        task_examples(qkv, tmp, data)
    return finish()


if __name__ == '__main__':
    sys.exit(main())
