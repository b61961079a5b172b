#!/usr/bin/env python3
# test_dpo.py - suite 'reference': `dpo train` end to end against PyTorch.
#
#   - PyTorch's DPO on the same weights and pairs (transformers' causal LM, float32; the
#     policy's and the frozen reference's log-probabilities of each completion's tokens given
#     the prompt, summed; -log sigmoid(beta ((lp_c - ref_c) - (lp_r - ref_r))) averaged over
#     the pairs; torch.optim.AdamW): qkv's loss of steps 1 and 2 (train_points) within 1e-5,
#     and every weight after one step and after two within 2e-3 of the update's size (eps and
#     lr large make AdamW's update the gradient's running mean), GPT-2 and Llama;
#   - head=lora (rank 4, alpha 8): two steps' losses and every adapter A and B equal PyTorch's
#     DPO with each attention projection parametrized as W + alpha/r B A from the same A;
#   - a toy preference set with a known rule (the chosen completion ends with " good", the
#     others with " bad" or " meh"): after DPO the held-out pairs' implicit reward accuracy is
#     >= 0.9 and their log-probability margin (chosen over rejected) rises; transformers on the
#     base and on the tuned checkpoint confirms the rise on prompts qkv never saw; the model
#     card, train_runs and train_points hold the run;
#   - bad input: no rankings, filters matching nothing, only ties, a missing out=, a bad beta,
#     an unknown subcommand: one error line, non-zero exit, nothing written.
# Usage: test_dpo.py QKV_BINARY

import json
import math
import os
import re
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_reward import adapters, add_adapters, bad, make_db, new_models, qjson, ranked_pairs  # noqa: E402
from trainref import fail, finish, load_causal_lm, np, qkv_cli, tensors, torch  # noqa: E402


def file_name(hf_name, family):
    """The name a parameter of transformers' model has in the checkpoint's layout."""
    if family == 'gpt2' and hf_name.startswith('transformer.'):
        return hf_name[len('transformer.'):]
    return hf_name


def qkv_pairs(qkv, db, model_dir):
    """Each ranking's candidates as qkv tokenizes them for DPO (prompt with its special tokens,
    then the completion alone), and the (chosen, rejected) pairs of their ranks."""
    def tokenize(prompt, output):
        return (qjson(qkv, db, 'tokenize "%s"' % prompt, model=model_dir)['ids'],
                qjson(qkv, db, 'tokenize "%s" special=false' % output, model=model_dir)['ids'])
    return ranked_pairs(qkv, db, tokenize)


def completion_logp(m, prompt, comp):
    ids = torch.tensor([prompt + comp])
    logp = torch.log_softmax(m(input_ids=ids).logits[0].float(), dim=-1)
    n = len(prompt)
    return sum(logp[n - 1 + i, t] for i, t in enumerate(comp))


def dpo_steps(m, seqs, pairs, ref, params, beta, lr, eps, steps):
    """`steps` torch.optim.AdamW steps of params on the mean DPO loss against the reference
    log-probabilities ref: each step's loss."""
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), eps=eps, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        lp = [completion_logp(m, p, c) for p, c in seqs]
        loss = sum(-torch.nn.functional.logsigmoid(beta * ((lp[a] - ref[a]) - (lp[b] - ref[b])))
                   for a, b in pairs) / len(pairs)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def torch_dpo(model_dir, seqs, pairs, beta, lr, eps, steps):
    """transformers' DPO: the weights before and after `steps` AdamW steps over every pair, and
    each step's loss."""
    m = load_causal_lm(model_dir)
    with torch.no_grad():
        ref = [float(completion_logp(m, p, c)) for p, c in seqs]
    w0 = {n: p.detach().clone().double().numpy() for n, p in m.named_parameters()}
    losses = dpo_steps(m, seqs, pairs, ref, m.parameters(), beta, lr, eps, steps)
    return w0, {n: p.detach().double().numpy() for n, p in m.named_parameters()}, losses


def test_torch(qkv, tmp, model_dir, family):
    db = os.path.join(tmp, family + '-ref.db')
    make_db(qkv, db, 3, seed=9, tie_every=100)
    seqs, pairs = qkv_pairs(qkv, db, model_dir)
    beta, lr = 0.5, 1e4
    for steps in (1, 2):
        out = os.path.join(tmp, '%s-dpo%d' % (family, steps))
        r = qjson(qkv, db, 'dpo train base=%s out=%s beta=%g val=0 steps=%d batch=64 lr=%g min_lr=%g eps=%g '
                  'wd=0 clip=0 beta2=0.95 threads=1' % (model_dir, out, beta, steps, lr, lr, lr))
        if not r:
            return
        if r['train_pairs'] != len(pairs) or r['heldout_pairs'] != 0 or r['steps'] != steps:
            fail('%s dpo: %r, want %d training pairs' % (family, {k: r[k] for k in ('train_pairs', 'heldout_pairs',
                                                                                       'steps')}, len(pairs)))
            return
        w0, want, want_loss = torch_dpo(model_dir, seqs, pairs, beta, lr, lr, steps)
        con = sqlite3.connect(db)
        got_loss = [x[0] for x in con.execute('SELECT loss FROM train_points WHERE run_id = ? ORDER BY step',
                                              (r['train_run_id'],))]
        con.close()
        if len(got_loss) != steps or max(abs(a - b) for a, b in zip(got_loss, want_loss)) > 1e-5:
            fail('%s dpo: step losses %r, PyTorch %r' % (family, got_loss, want_loss))
        got = tensors(out)
        worst = 0.0
        for name, w in want.items():
            g = got.get(file_name(name, family))
            if g is None or g.shape != w.shape:
                fail('%s dpo: %s missing or of another shape in the checkpoint' % (family, name))
                continue
            dt, dq = w - w0[name], g - w0[name]
            scale = float(np.max(np.abs(dt)))
            err = float(np.max(np.abs(dt - dq)))
            if not err <= 2e-3 * scale + 1e-6:
                fail('%s dpo: %s after %d steps: update differs from PyTorch\'s by %.3g (update size %.3g)'
                     % (family, name, steps, err, scale))
            if scale:
                worst = max(worst, err / scale)
        print('%s dpo: %d step(s) equal PyTorch\'s: losses %s (PyTorch %s), every tensor (worst relative '
              'difference %.2e)' % (family, steps, ['%.6f' % x for x in got_loss], ['%.6f' % x for x in want_loss],
                                    worst), flush=True)


def torch_dpo_lora(model_dir, seqs, pairs, beta, lr, eps, A0, r, alpha):
    """DPO of adapters (A from A0, B zero) on the named projections of transformers' causal LM,
    the base frozen and its log-probabilities the reference: the adapters after two AdamW steps,
    each step's loss."""
    m = load_causal_lm(model_dir)
    for p in m.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        ref = [float(completion_logp(m, p, c)) for p, c in seqs]
    mods = add_adapters(m, A0, r, alpha)
    train = [x for mod, A, B in mods.values() for x in (A, B)]
    losses = dpo_steps(m, seqs, pairs, ref, train, beta, lr, eps, 2)
    return {k: (A.detach().double().numpy(), B.detach().double().numpy()) for k, (mod, A, B) in mods.items()}, losses


def test_torch_lora(qkv, tmp, model_dir, family):
    db = os.path.join(tmp, family + '-lora.db')
    make_db(qkv, db, 3, seed=9, tie_every=100)
    seqs, pairs = qkv_pairs(qkv, db, model_dir)
    beta, lr, r_, alpha = 0.5, 1e4, 4, 8.0
    common = 'dpo train base=%s head=lora r=%d alpha=%g beta=%g val=0 batch=64 wd=0 clip=0 beta2=0.95 threads=1' % (
        model_dir, r_, alpha, beta)
    out0, out2 = os.path.join(tmp, family + '-dlora0'), os.path.join(tmp, family + '-dlora2')
    # the starting A: the first step leaves it as drawn (B = 0 gives it no gradient)
    if not qjson(qkv, db, common + ' out=%s steps=1 lr=1e-9 min_lr=1e-9' % out0):
        return
    r = qjson(qkv, db, common + ' out=%s steps=2 lr=%g min_lr=%g eps=%g' % (out2, lr, lr, lr))
    if not r:
        return
    A0 = {k: v[0] for k, v in adapters(out0).items()}
    want, want_loss = torch_dpo_lora(model_dir, seqs, pairs, beta, lr, lr, A0, r_, alpha)
    con = sqlite3.connect(db)
    got_loss = [x[0] for x in con.execute('SELECT loss FROM train_points WHERE run_id = ? ORDER BY step',
                                          (r['train_run_id'],))]
    con.close()
    if len(got_loss) != 2 or max(abs(a - b) for a, b in zip(got_loss, want_loss)) > 1e-5:
        fail('%s dpo lora: step losses %r, PyTorch %r' % (family, got_loss, want_loss))
    got, worst = adapters(out2), 0.0
    if sorted(got) != sorted(want) or len(got) != (4 if family == 'gpt2' else 8):
        fail('%s dpo lora: adapters on %r, want %r' % (family, sorted(got), sorted(want)))
    for path, (wa, wb) in want.items():
        for tag, g, w, w0 in (('A', got.get(path, (None, None))[0], wa, A0[path]),
                              ('B', got.get(path, (None, None))[1], wb, np.zeros_like(wb))):
            if g is None or g.shape != w.shape:
                fail('%s dpo lora: %s %s missing or of another shape' % (family, path, tag))
                continue
            dt, dq = w - w0, g - w0
            scale, err = float(np.max(np.abs(dt))), float(np.max(np.abs(dt - dq)))
            if not err <= 2e-3 * scale + 1e-6:
                fail('%s dpo lora: %s %s: update differs from PyTorch\'s by %.3g (size %.3g)'
                     % (family, path, tag, err, scale))
            if scale:
                worst = max(worst, err / scale)
    print('%s dpo lora: two steps equal PyTorch\'s: losses %s, every adapter (worst relative difference %.2e)'
          % (family, ['%.6f' % x for x in got_loss], worst), flush=True)


def test_rule(qkv, tmp, model_dir):
    db = os.path.join(tmp, 'rule.db')
    make_db(qkv, db, 60)
    out = os.path.join(tmp, 'rule-dpo')
    r = qjson(qkv, db, 'dpo train base=%s out=%s beta=0.5 val=0.25 epochs=4 batch=16 lr=3e-3 min_lr=3e-3 '
              'eval_every=4' % (model_dir, out))
    if not r:
        return
    keys = ['pairs', 'train_pairs', 'heldout_pairs', 'heldout_accuracy', 'heldout_margin', 'out']
    if list(r)[:6] != keys:
        fail('rule: JSON keys begin %r, want %r' % (list(r)[:6], keys))
    n_tied = len([i for i in range(60) if i % 4 == 0])
    if r['pairs'] != 60 * 3 - n_tied or r['train_pairs'] + r['heldout_pairs'] != r['pairs'] or not r['heldout_pairs']:
        fail('rule: pair counts %r' % {k: r[k] for k in keys[:3]})
    if not (r['base_heldout_accuracy'] == 0 and abs(r['base_heldout_loss'] - math.log(2)) < 1e-6):
        fail('rule: the base model against itself: accuracy %r, loss %r (want 0 and log 2)'
             % (r['base_heldout_accuracy'], r['base_heldout_loss']))
    if not (r['heldout_accuracy'] >= 0.9 and r['heldout_margin'] > 0 and r['heldout_loss'] < math.log(2)):
        fail('rule: held-out implicit reward accuracy %r, margin %r, loss %r'
             % (r['heldout_accuracy'], r['heldout_margin'], r['heldout_loss']))
    if not r['heldout_logp_margin'] > r['base_heldout_logp_margin'] + 0.5:
        fail('rule: held-out log-probability margin %r, base %r' % (r['heldout_logp_margin'],
                                                                    r['base_heldout_logp_margin']))
    print('rule: held-out implicit reward accuracy %.3f, margin %.3f; log-probability margin %.3f -> %.3f nats '
          '(%d held-out pairs, %d steps, %.0f pairs/s)'
          % (r['heldout_accuracy'], r['heldout_margin'], r['base_heldout_logp_margin'], r['heldout_logp_margin'],
             r['heldout_pairs'], r['steps'], r['pairs_s']), flush=True)
    # transformers, on prompts no ranking had: the chosen-over-rejected margin rises
    rnd = np.random.default_rng(77)
    stems = ['the answer is', 'I think it is', 'it looks', 'that was', 'we found it']
    base_m, tuned_m = load_causal_lm(model_dir), load_causal_lm(out)
    margins = {'base': [], 'tuned': []}
    for i in range(20):
        prompt = 'Q%d: how is item %d?' % (100 + i, int(rnd.integers(1000, 2000)))
        stem = ' ' + stems[int(rnd.integers(0, len(stems)))]
        p = qjson(qkv, db, 'tokenize "%s"' % prompt, model=model_dir)['ids']
        good = qjson(qkv, db, 'tokenize "%s good" special=false' % stem, model=model_dir)['ids']
        worse = qjson(qkv, db, 'tokenize "%s bad" special=false' % stem, model=model_dir)['ids']
        with torch.no_grad():
            for tag, m in (('base', base_m), ('tuned', tuned_m)):
                margins[tag].append(float(completion_logp(m, p, good) - completion_logp(m, p, worse)))
    b, t = np.mean(margins['base']), np.mean(margins['tuned'])
    wins = np.mean(np.array(margins['tuned']) > 0)
    if not (t > b + 0.5 and wins >= 0.9):
        fail('rule: on new prompts (transformers) margin %.3f -> %.3f, chosen ahead in %.2f' % (b, t, wins))
    print('rule: on 20 new prompts (transformers) log p(good) - log p(bad) %.3f -> %.3f nats, good ahead in %.0f%%'
          % (b, t, 100 * wins), flush=True)
    card = open(os.path.join(out, 'README.md')).read()
    for want in ('alice', 'bob', '%d pairs' % r['pairs'], model_dir, 'beta: 0.5'):
        if want not in card:
            fail('rule: the model card does not name %r' % want)
    con = sqlite3.connect(db)
    run = con.execute('SELECT id, model_arch, options FROM train_runs').fetchall()
    pts = con.execute('SELECT step, loss, val_loss FROM train_points ORDER BY step').fetchall()
    con.close()
    if len(run) != 1 or run[0][0] != r['train_run_id'] or json.loads(run[0][2]).get('dpo') != 'train':
        fail('rule: train_runs %r' % run)
    if len(pts) != r['steps'] or [p[0] for p in pts] != list(range(1, r['steps'] + 1)) \
            or not [p for p in pts if p[2] is not None] or not pts[-1][1] < pts[0][1]:
        fail('rule: train_points %r' % (pts[:2] + pts[-2:]))


def test_interrupt(qkv, tmp, model_dir):
    """Ctrl-C in the middle: the weights so far saved, and JSON and text both say it stopped."""
    db = os.path.join(tmp, 'int.db')
    make_db(qkv, db, 8)
    for js in (True, False):
        out = os.path.join(tmp, 'int-dpo-%s' % ('json' if js else 'text'))
        args = ['--db', db, '-e', 'dpo train base=%s out=%s epochs=100000 patience=0' % (model_dir, out)]
        second = []

        def again():  # the same command while it runs: refused, the running one untouched
            second.append(qkv_cli.run_or_none(qkv, ['--json'] + args, 60))
        rc, so, se = qkv_cli.interrupted(qkv, (['--json'] if js else []) + args, after='step', during=again)
        p2 = second[0] if second else None
        if not p2 or p2.returncode == 0 or 'is in use by another qkv process' not in p2.stderr:
            fail('dpo train into an out= another process is training into: exit %s, %r'
                 % (p2 and p2.returncode, p2 and p2.stderr[-300:]))
        saved = os.path.exists(os.path.join(out, 'model.safetensors'))
        if js:
            r = json.loads(so.strip().split('\n')[-1]) if so.strip() else {}
            ok = r.get('stopped') is True
        else:
            ok = re.search(r'stopped with Ctrl-C after step \d+ of \d+: the weights of step \d+ are saved', so)
        if not (ok and saved):
            fail('dpo train stopped with Ctrl-C (%s): exit %d, saved %r, stdout %r, stderr %r'
                 % ('json' if js else 'text', rc, saved, so[-300:], se[-300:]))
    print('dpo train stopped with Ctrl-C: weights saved, JSON and text say so', flush=True)


def test_start_kept(qkv, tmp, model_dir):
    """A learning rate that only makes things worse: no step beats the base on the held-out pairs,
    best_step 0, and the text says the saved weights are the start's (it said "DPO-tuned ..." and
    only the step number told)."""
    db = os.path.join(tmp, 'worse.db')
    make_db(qkv, db, 16)
    out = os.path.join(tmp, 'worse-dpo')
    p = qkv_cli.run(qkv, ['--db', db, '-e', 'dpo train base=%s out=%s val=0.25 steps=3 eval_every=1 lr=1e4 '
                         'min_lr=1e4' % (model_dir, out)])
    m = re.search(r'at step (\d+)', p.stdout)
    if p.returncode != 0 or not m or m.group(1) != '0' or \
            "the weights saved are the start's (step 0; 3 steps ran" not in p.stdout:
        fail('dpo train that never beat the base: exit %d, stdout %r, stderr %r' % (p.returncode, p.stdout[-400:],
                                                                                  p.stderr[-300:]))
    print('dpo train that never beat the base says the start\'s weights are saved', flush=True)


def test_bad(qkv, tmp, model_dir):
    db = os.path.join(tmp, 'bad.db')
    out = os.path.join(tmp, 'bad-out')
    # no database there yet: said so, nothing made (no rankings were found in a new empty one)
    bad(qkv, db, 'dpo train base=%s out=%s' % (model_dir, out), 'no database at', out=out)
    make_db(qkv, db, 4)
    bad(qkv, db, 'dpo train base=%s out=%s since=2999-01-01' % (model_dir, out), 'no rankings match', out=out)
    bad(qkv, db, 'dpo train base=%s' % model_dir, 'out=DIR is required')
    # out= the base itself is refused and the base kept (its weights were replaced by the tuned ones)
    st = os.path.join(model_dir, 'model.safetensors')
    before = open(st, 'rb').read()
    bad(qkv, db, 'dpo train base=%s out=%s steps=1' % (model_dir, model_dir), 'already holds a model')
    if open(st, 'rb').read() != before:
        fail('dpo train out= its base replaced the base\'s weights')
    bad(qkv, db, 'dpo train base=%s out=%s beta=-1' % (model_dir, out), 'beta', out=out)
    bad(qkv, db, 'dpo train base=%s out=%s max_len=1' % (model_dir, out), 'leaves no completion token', out=out)
    bad(qkv, db, 'dpo train base=%s out=%s lr=x' % (model_dir, out), 'lr', out=out)
    bad(qkv, db, 'dpo train base=%s out=%s lr=1e-5 min_lr=1e-3' % (model_dir, out), 'min_lr=0.001 is above lr=1e-05',
        out=out)
    bad(qkv, db, 'dpo train base=/nonexistent out=%s' % out, 'base=/nonexistent', out=out)
    bad(qkv, db, 'dpo fly out=%s' % out, 'unknown subcommand', out=out)
    bad(qkv, db, 'dpo train base=%s out=%s head=sideways' % (model_dir, out), 'head must be', out=out)
    bad(qkv, db, 'dpo train base=%s out=%s r=4' % (model_dir, out), 'head=lora', out=out)
    tdb = os.path.join(tmp, 'ties.db')
    make_db(qkv, tdb, 2)
    con = sqlite3.connect(tdb)
    con.execute('UPDATE ranking_items SET rank = 1')
    con.commit()
    con.close()
    bad(qkv, tdb, 'dpo train base=%s out=%s' % (model_dir, out), 'no preference', out=out)
    # an encoder: not "bert models are not trainable" (reward train trains them), but what DPO needs
    enc = os.path.join(tmp, 'enc')
    p = subprocess.run([qkv, '--db', tdb, '-e', 'new-model bert layers=1 heads=2 d=16 ctx=16 seed=1 out=' + enc],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise SystemExit('new-model bert: ' + p.stderr)
    bad(qkv, tdb, 'dpo train base=%s out=%s' % (enc, out), 'is an encoder: DPO tunes a decoder', out=out)
    print('bad input: one error line each, nothing written', flush=True)


def main():
    qkv = qkv_cli.qkv_path()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        models = new_models(qkv, tmp)
        if not models:
            return finish()
        test_torch(qkv, tmp, models['gpt2'], 'gpt2')
        test_torch(qkv, tmp, models['llama'], 'llama')
        test_torch_lora(qkv, tmp, models['gpt2'], 'gpt2')
        test_torch_lora(qkv, tmp, models['llama'], 'llama')
        test_rule(qkv, tmp, models['gpt2'])
        test_interrupt(qkv, tmp, models['gpt2'])
        test_start_kept(qkv, tmp, models['gpt2'])
        test_bad(qkv, tmp, models['gpt2'])
    return finish()


if __name__ == '__main__':
    sys.exit(main())
