#!/usr/bin/env python3
# test_reward.py - suite 'reference': `reward train` and `reward score` end to end.
#
#   - a synthetic preference set with a known rule (the chosen completion ends with " good",
#     the others with " bad" or " meh", some tied), stored as runs and rankings in SQLite;
#   - head=linear on a random-weight GPT-2 reaches >= 95% held-out pair accuracy, the curve is
#     in reward_points, the run in reward_runs; no prompt is on both sides of the split;
#   - the checkpoint loads in transformers as GPT2ForSequenceClassification /
#     LlamaForSequenceClassification (num_labels 1) and gives the reward `reward score` gives
#     (|d| <= 1e-4), on the same ids; the model card names the data;
#   - head=full: two AdamW steps over every pair equal PyTorch's on the same weights and pairs
#     (the Bradley–Terry loss's gradients through the whole model: eps and lr large make
#     AdamW's update the gradient's running mean; tolerance relative to the update), GPT-2 and
#     Llama;
#   - head=lora: two AdamW steps of the head and the adapters (rank 4, alpha 8, on every
#     attention projection) equal PyTorch's (the projections' weights parametrized as
#     W + alpha/r B A from the same starting A, the rest frozen): every A, B and the head
#     within 2e-3 of the update, and the merged weights in model.safetensors; GPT-2 and Llama;
#   - reward score run=ID logs the score in reward_scores;
#   - bad input: no rankings, filters matching nothing, only ties, a non-reward model for
#     score, a missing out=: one error line, non-zero exit, nothing written.
# Usage: test_reward.py QKV_BINARY

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'train'))
from trainref import fail, finish, np, qkv_cli, torch, transformers  # noqa: E402

WORDS = [' good', ' bad', ' meh']


def make_db(qkv, db, n_prompts, seed=5, tie_every=4):
    """Runs and rankings of the rule: ' good' best; ' bad' and ' meh' below (tied every tie_every prompts)."""
    qkv_cli.new_db(qkv, db)
    rnd = np.random.default_rng(seed)
    con = sqlite3.connect(db)
    con.execute('PRAGMA foreign_keys = ON')
    now = '2026-01-01T00:00:00.000Z'
    stems = ['the answer is', 'I think it is', 'it looks', 'that was', 'we found it']
    for i in range(n_prompts):
        prompt = 'Q%d: how is item %d?' % (i, int(rnd.integers(0, 1000)))
        order = rnd.permutation(3)
        ids = []
        for n, w in enumerate(order):
            text = ' ' + stems[int(rnd.integers(0, len(stems)))] + WORDS[w]
            cur = con.execute(
                "INSERT INTO runs (created, kind, annotator, qkv_version, model_path, model_arch, prompt, "
                "temperature, top_k, top_p, seed, max_tokens, output) VALUES (?, 'rank', 'syn', 'test', 'builtin', "
                "'gpt2', ?, 1.0, 0, 1.0, ?, 8, ?)", (now, prompt, i * 10 + n, text))
            ids.append((n + 1, cur.lastrowid, w))
        ann = 'alice' if i % 2 else 'bob'
        cur = con.execute("INSERT INTO rankings (created, prompt, k, annotator, qkv_version) VALUES (?, ?, 3, ?, 'test')",
                          (now, prompt, ann))
        rid = cur.lastrowid
        for n, run_id, w in ids:
            rank = 1 if w == 0 else (2 if (i % tie_every == 0 or w == 1) else 3)
            con.execute('INSERT INTO ranking_items (ranking_id, n, run_id, rank) VALUES (?, ?, ?, ?)',
                        (rid, n, run_id, rank))
    con.commit()
    con.close()


def qjson(qkv, db, cmd, model=None, timeout=900):
    try:
        (r,) = qkv_cli.json_cmds(qkv, model, [cmd], db, timeout=timeout)
        return r
    except qkv_cli.QkvError as ex:
        fail('%s: %s' % (cmd, ex))
        return None


def bad(qkv, db, cmd, want, model=None, out=None):
    args = (['--model', model] if model else []) + ['--db', db, '-e', cmd]
    p = qkv_cli.run(qkv, args)
    lines = p.stderr.strip().splitlines()
    ok = p.returncode != 0 and lines and lines[-1].startswith('error: ') and want in lines[-1]
    if not ok:
        fail('bad input %r: exit %d, stderr %r (want %r)' % (cmd, p.returncode, p.stderr[-400:], want))
    if out and os.path.exists(out):
        fail('bad input %r wrote %s' % (cmd, out))


def hf_reward(out_dir, ids):
    m = transformers.AutoModelForSequenceClassification.from_pretrained(
        out_dir, dtype=torch.float32, attn_implementation='eager', local_files_only=True)
    m.eval()
    with torch.no_grad():
        return float(m(input_ids=torch.tensor([ids])).logits[0, 0]), m


def test_linear(qkv, tmp, model_dir, family, cls_name):
    db = os.path.join(tmp, family + '-lin.db')
    make_db(qkv, db, 60)
    out = os.path.join(tmp, family + '-rm')
    r = qjson(qkv, db, 'reward train base=%s head=linear out=%s val=0.25 epochs=40 batch=16 lr=0.05 patience=0'
              % (model_dir, out))
    if not r:
        return
    want_keys = ['pairs', 'train_pairs', 'heldout_pairs', 'heldout_accuracy', 'out']
    if list(r)[:5] != want_keys:
        fail('%s: JSON keys begin %r, want %r' % (family, list(r)[:5], want_keys))
    # 60 prompts x (2 pairs, + 1 when not tied): ties excluded
    n_tied = len([i for i in range(60) if i % 4 == 0])
    if r['pairs'] != 60 * 3 - n_tied or r['train_pairs'] + r['heldout_pairs'] != r['pairs']:
        fail('%s: pair counts %r' % (family, {k: r[k] for k in want_keys[:3]}))
    if r.get('ties') != 0 or r.get('ties_excluded') != n_tied:
        fail('%s: ties %r, ties_excluded %r (want 0 and %d)' % (family, r.get('ties'), r.get('ties_excluded'), n_tied))
    if not r['heldout_pairs'] or not r['heldout_accuracy'] >= 0.95:
        fail('%s: held-out accuracy %r on %d pairs (want >= 0.95)' % (family, r['heldout_accuracy'], r['heldout_pairs']))
    print('%s linear: held-out accuracy %.3f on %d pairs, %d steps, %.0f pairs/s'
          % (family, r['heldout_accuracy'], r['heldout_pairs'], r['steps'], r['pairs_s']), flush=True)
    con = sqlite3.connect(db)
    run = con.execute('SELECT head, pairs, train_pairs, heldout_pairs, status, heldout_accuracy FROM reward_runs').fetchall()
    pts = con.execute('SELECT step, loss, heldout_loss, heldout_accuracy FROM reward_points ORDER BY step').fetchall()
    con.close()
    if len(run) != 1 or run[0][:5] != ('linear', r['pairs'], r['train_pairs'], r['heldout_pairs'], 'done') \
            or abs(run[0][5] - r['heldout_accuracy']) > 1e-9:
        fail('%s: reward_runs row %r' % (family, run))
    if len(pts) < 3 or pts[0][0] != 0 or pts[0][1] is not None or not pts[-1][2] < pts[0][2]:
        fail('%s: reward_points %r' % (family, pts[:3] + pts[-2:]))
    cv = qjson(qkv, db, 'curve kind=reward')  # the latest reward run's curve, as the Training view draws it
    got = [(x['step'], x['loss'], x['heldout_loss'], x['heldout_accuracy']) for x in (cv or {}).get('points', [])]
    same = len(got) == len(pts) and all(  # JSON carries 9 significant digits
        a[0] == b[0] and all((u is None) == (v is None) and (u is None or abs(u - v) <= 1e-7 * max(1, abs(v)))
                             for u, v in zip(a[1:], b[1:])) for a, b in zip(got, pts))
    if not cv or cv['kind'] != 'reward' or cv['head'] != 'linear' or cv['status'] != 'done' or not same:
        fail('%s: curve kind=reward: %r, %d points; expected the %d logged ones'
             % (family, {k: (cv or {}).get(k) for k in ('kind', 'head', 'status')}, len(got), len(pts)))
    with open(os.path.join(out, 'config.json')) as f:
        cfg = json.load(f)
    if cfg.get('num_labels', len(cfg.get('id2label', {}))) != 1 or cfg['architectures'] != [cls_name]:
        fail('%s: config %r' % (family, {k: cfg.get(k) for k in ('architectures', 'num_labels', 'id2label')}))
    card = open(os.path.join(out, 'README.md')).read()
    for want in ('alice', 'bob', '%d pairs (%d tied pairs left out)' % (r['pairs'], n_tied), model_dir):
        if want not in card:
            fail('%s: the model card does not name %r' % (family, want))
    # transformers' reward equals qkv's
    worst = 0.0
    scored = []
    for prompt, comp in (('Q1: how is item 3?', ' it looks good'), ('Hello', ' that was bad'), ('x', '')):
        s = qjson(qkv, db, 'reward score "%s" "%s" model=%s' % (prompt, comp, out))
        if not s:
            return
        scored.append(s)
        if 'run_id' not in s or s['run_id'] is not None:  # the README's fields: run_id null for a given text
            fail('reward score "P" "C": run_id should be null, got %r' % s.get('run_id', 'absent'))
        try:
            want, m = hf_reward(out, s['ids'])
        except Exception as ex:
            fail('%s: transformers cannot load the reward model: %s: %s' % (family, type(ex).__name__, ex))
            return
        if type(m).__name__ != cls_name:
            fail('%s: transformers made a %s' % (family, type(m).__name__))
        worst = max(worst, abs(want - s['reward']))
    if not worst <= 1e-4:
        fail('%s: reward score and transformers differ by %.3g' % (family, worst))
    # a padded batch, as TRL and a person's scoring loop run it: config.json names the pad token
    # (without it transformers refuses batches of more than one)
    pad = cfg.get('pad_token_id')
    if pad is None:
        fail('%s: config.json has no pad_token_id: transformers cannot score a batch' % family)
    else:
        n = max(len(s['ids']) for s in scored)
        for side in ('right', 'left'):
            rows = [(s['ids'] + [pad] * (n - len(s['ids'])) if side == 'right' else [pad] * (n - len(s['ids'])) + s['ids'])
                    for s in scored]
            mask = [[int(i < len(s['ids'])) if side == 'right' else int(i >= n - len(s['ids'])) for i in range(n)]
                    for s in scored]
            am = torch.tensor(mask)
            pos = (am.cumsum(-1) - 1).clamp(min=0)  # left padding moves learned positions unless given
            with torch.no_grad():
                got = m(input_ids=torch.tensor(rows), attention_mask=am, position_ids=pos).logits[:, 0].tolist()
            d = max(abs(g - s['reward']) for g, s in zip(got, scored))
            if not d <= 1e-4:
                fail('%s: a %s-padded batch of %d in transformers gives %r, reward score %r'
                     % (family, side, len(rows), got, [s['reward'] for s in scored]))
    print('%s: transformers %s gives reward score\'s rewards (max |d| %.2e)' % (family, cls_name, worst), flush=True)
    # the held-out pairs stored at the end (reward_heldout): the split's pairs, scored by the saved weights
    held = cv.get('heldout', [])
    con = sqlite3.connect(db)
    rank_prompt = dict(con.execute('SELECT id, prompt FROM rankings'))
    con.close()
    if len(held) != r['heldout_pairs'] or any(h['prompt'] != rank_prompt.get(h['ranking_id']) for h in held):
        fail('%s: %d held-out pairs stored for %d, or of other rankings' % (family, len(held), r['heldout_pairs']))
    acc = sum(h['r_chosen'] > h['r_rejected'] for h in held) / max(1, len(held))
    if abs(acc - r['heldout_accuracy']) > 1e-9:
        fail('%s: the stored held-out pairs give accuracy %r, the run %r' % (family, acc, r['heldout_accuracy']))
    worst = 0.0
    for h in held[:3]:
        for side in ('chosen', 'rejected'):
            sc = qjson(qkv, db, 'reward score "%s" "%s" model=%s' % (h['prompt'], h[side], out))
            want, _ = hf_reward(out, sc['ids']) if sc else (None, None)
            if sc is None or abs(want - h['r_' + side]) > 1e-4:
                fail('%s: held-out pair %d: stored r_%s %r, transformers %r' % (family, h['n'], side, h['r_' + side],
                                                                                 want))
            else:
                worst = max(worst, abs(want - h['r_' + side]))
    print('%s: %d held-out pairs stored with their rewards (transformers agrees within %.1e)'
          % (family, len(held), worst), flush=True)
    # a logged run scored: recorded in reward_scores
    s = qjson(qkv, db, 'reward score run=1 model=%s' % out)
    con = sqlite3.connect(db)
    rows = con.execute('SELECT run_id, reward FROM reward_scores').fetchall()
    con.close()
    if not s or len(rows) != 1 or rows[0][0] != 1 or abs(rows[0][1] - s['reward']) > 1e-6:
        fail('%s: reward_scores %r after reward score run=1 (%r)' % (family, rows, s))
    test_best_of(qkv, db, model_dir, out, family)
    test_score_ranking(qkv, db, out, family)
    return out, db


def test_score_ranking(qkv, db, rm, family):
    """reward score ranking=ID: every candidate as reward score run= scores it, the order by reward, the
    agreement counted here; the reward model from set reward, or the latest reward run's."""
    r = qjson(qkv, db, 'reward score ranking=2 model=%s' % rm)
    if not r:
        return
    con = sqlite3.connect(db)
    items = con.execute('SELECT n, run_id, rank FROM ranking_items WHERE ranking_id = 2 ORDER BY n').fetchall()
    con.close()
    want = {}
    for n, run_id, rank in items:
        want[n] = (qjson(qkv, db, 'reward score run=%d model=%s' % (run_id, rm)) or {}).get('reward'), rank
    got = {c['n']: (c['reward'], c['rank']) for c in r['candidates']}
    if sorted(got) != sorted(want) or any(abs(got[n][0] - want[n][0]) > 1e-6 or got[n][1] != want[n][1]
                                          for n in want):
        fail('%s: reward score ranking=2: %r, reward score run= gives %r' % (family, got, want))
        return
    order = sorted(want, key=lambda n: -want[n][0])
    pairs = [(a, b) for a in want for b in want if a < b and want[a][1] != want[b][1]]
    agree = sum((want[a][1] < want[b][1]) == (want[a][0] > want[b][0]) for a, b in pairs)
    if [n for g in r['order'] for n in g] != order or r['pairs'] != len(pairs) or r['agree'] != agree:
        fail('%s: reward score ranking=2: order %r, pairs %r, agree %r; expected %r, %d, %d'
             % (family, r['order'], r['pairs'], r['agree'], order, len(pairs), agree))
    # a ranking with two identical completions ranked apart: that pair is no preference (as the
    # exports and trainers count pairs); the other two are
    con = sqlite3.connect(db)
    rid = qkv_cli.insert_ranking(con, 'Qd', [' good', ' good', ' bad'], [1, 2, 3])
    con.commit()
    con.close()
    rd = qjson(qkv, db, 'reward score ranking=%d model=%s' % (rid, rm))
    if not rd or rd['pairs'] != 2:
        fail('%s: reward score of a ranking with two identical completions counts %r pairs, not 2'
             % (family, rd and rd['pairs']))
    latest = qjson(qkv, db, 'reward score ranking=2')  # no model=: the latest reward run's directory
    via_set = qkv_cli.json_cmds(qkv, None, ['set reward %s' % rm, 'reward score "a" "b"'], db)
    direct = qjson(qkv, db, 'reward score "a" "b" model=%s' % rm)
    if not latest or latest['model'] != os.path.realpath(rm) or via_set[0]['reward'] != os.path.realpath(rm) \
            or abs(via_set[1]['reward'] - direct['reward']) > 1e-9:
        fail('%s: the default reward model: %r, set reward: %r' % (family, latest and latest['model'], via_set))
    bad(qkv, db, 'set reward /nonexistent', 'set reward')
    bad(qkv, db, 'reward score ranking=999 model=%s' % rm, 'no ranking 999')
    print('%s: reward score ranking=2 orders the candidates as their rewards do (agrees on %d of %d pairs)'
          % (family, agree, len(pairs)), flush=True)


def test_best_of(qkv, db, model_dir, rm, family):
    g = qjson(qkv, db, 'generate "Q7: how is item 1?" max=5 seed=40 best_of=3 reward=%s' % rm, model=model_dir)
    if not g:
        return
    c = g.get('candidates', [])
    if len(c) != 3 or len({x['run_id'] for x in c}) != 3 or [x['seed'] for x in c] != [40, 41, 42]:
        fail('%s best_of: candidates %r' % (family, c))
        return
    best = max(range(3), key=lambda i: c[i]['reward'])
    if g['best'] != best + 1 or g['run_id'] != c[best]['run_id'] or g['text'] != c[best]['text'] \
            or g['reward'] != c[best]['reward']:
        fail('%s best_of: best %r run %r, want candidate %d %r' % (family, g['best'], g['run_id'], best + 1, c[best]))
    con = sqlite3.connect(db)
    logged = dict(con.execute('SELECT run_id, reward FROM reward_scores').fetchall())
    con.close()
    for x in c:
        s = qjson(qkv, db, 'reward score run=%d model=%s' % (x['run_id'], rm))
        if not s or abs(s['reward'] - x['reward']) > 1e-6 or abs(logged.get(x['run_id'], 1e9) - x['reward']) > 1e-6:
            fail('%s best_of: candidate %r scored %r, logged %r' % (family, x, s, logged.get(x['run_id'])))
    # set reward DIR serves best_of= without reward= (as it serves reward score)
    via = qkv_cli.json_cmds(qkv, model_dir, ['set reward %s' % rm, 'generate "Q7: how is item 1?" max=5 seed=40 best_of=3'],
                            db)
    if len(via) != 2 or [x['reward'] for x in via[1].get('candidates', [])] != [x['reward'] for x in c]:
        fail('%s best_of with set reward: %r' % (family, via[-1:]))
    # ... and so does the latest reward run (rm here), as it serves reward score: best_of refused
    # ("needs a reward model") before 2026-12-06
    latest = qkv_cli.json_cmds(qkv, model_dir, ['generate "Q7: how is item 1?" max=5 seed=40 best_of=3'], db)
    if [x['reward'] for x in latest[0].get('candidates', [])] != [x['reward'] for x in c] \
            or latest[0].get('reward_model') != os.path.realpath(rm):
        fail('%s best_of with the latest reward run: %r' % (family, latest[0].get('candidates')))
    print('%s best_of=3: every candidate logged and scored, the best shown' % family, flush=True)


def test_best_of_stopped(qkv, tmp, rm):
    """best_of= seeds S..S+N-1 at or above 2^53 are refused (runs were logged with seeds replay calls
    damaged); Ctrl-C while candidate 2 of 4 generates keeps candidate 1 as the best, candidate 2 a
    logged run with no reward (it was scored, could be chosen, and the line said best of 2)."""
    db = os.path.join(tmp, 'bo-stop.db')
    p = qkv_cli.run(qkv, ['--db', db, '-e', 'generate "x" best_of=3 seed=9007199254740990 reward=%s' % rm])
    if p.returncode != 1 or 'candidate 3 would use seed 9007199254740992' not in p.stderr:
        fail('best_of= past 2^53: exit %d, %r' % (p.returncode, p.stderr[-300:]))
    big = os.path.join(tmp, 'bo-big')
    qkv_cli.run(qkv, ['--db', db, '-e', 'new-model gpt2 layers=4 heads=8 d=512 ctx=1024 seed=2 out=' + big])
    r = qkv_cli.interrupted_when(qkv, ['--db', db, '--model', big, '--json', '-e',
                                       'generate "Q-stop" best_of=4 max=1000 seed=7 temperature=1 reward=%s' % rm],
                                 db, "SELECT count(*) FROM runs WHERE prompt = 'Q-stop'", delay=0.2)
    if not r:  # candidate 1 logged: Ctrl-C while candidate 2 generates
        fail('best_of went on after Ctrl-C')
        return
    _, so, se = r
    try:
        g = json.loads(so.splitlines()[0])
    except (ValueError, IndexError):
        fail('best_of stopped with Ctrl-C: no JSON: %r %r' % (so[-300:], se[-300:]))
        return
    c = g.get('candidates', [])
    if g.get('scored') != 1 or len(c) != 2 or c[1].get('reward') is not None or g.get('best') != 1 \
            or g.get('run_id') != c[0].get('run_id') or g.get('reward') != c[0].get('reward'):
        fail('best_of stopped with Ctrl-C during candidate 2: scored %r best %r, candidates %r'
             % (g.get('scored'), g.get('best'), [(x.get('n'), x.get('reward')) for x in c]))
    else:
        print('best_of stopped with Ctrl-C: the candidate cut off is logged, not scored, not chosen', flush=True)


def ranked_pairs(qkv, db, tokenize):
    """Each ranked candidate's tokens (tokenize(prompt, output)) and the (better, worse) pairs of
    their ranks, ties dropped."""
    con = sqlite3.connect(db)
    rows = con.execute('SELECT g.id, g.prompt, r.output, i.rank FROM rankings g JOIN ranking_items i ON '
                       'i.ranking_id = g.id JOIN runs r ON r.id = i.run_id ORDER BY g.id, i.n').fetchall()
    con.close()
    seqs, pairs, by_rank = [], [], {}
    for rid, prompt, output, rank in rows:
        by_rank.setdefault(rid, []).append((rank, len(seqs)))
        seqs.append(tokenize(prompt, output))
    for items in by_rank.values():
        pairs += [(a, b) for ra, a in items for rb, b in items if ra < rb]
    return seqs, pairs


def bt_steps(m, seqs, pairs, params, lr, eps):
    """Two torch.optim.AdamW steps of params on the mean Bradley-Terry loss of m's rewards."""
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), eps=eps, weight_decay=0.0)
    for _ in range(2):
        opt.zero_grad()
        r = [m(input_ids=torch.tensor([s])).logits[0, 0] for s in seqs]
        loss = sum(-torch.nn.functional.logsigmoid(r[c] - r[j]) for c, j in pairs) / len(pairs)
        loss.backward()
        opt.step()


def torch_two_steps(model_dir, seqs, pairs, lr, eps):
    m = transformers.AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=1, dtype=torch.float32, attn_implementation='eager', local_files_only=True)
    m.train()
    for mod in m.modules():  # no dropout
        if isinstance(mod, torch.nn.Dropout):
            mod.p = 0.0
    with torch.no_grad():
        m.score.weight.zero_()
    w0 = {n: p.detach().clone().double().numpy() for n, p in m.named_parameters()}
    bt_steps(m, seqs, pairs, m.parameters(), lr, eps)
    return w0, {n: p.detach().double().numpy() for n, p in m.named_parameters()}


def test_full_grads(qkv, tmp, model_dir, family):
    db = os.path.join(tmp, family + '-full.db')
    make_db(qkv, db, 3, seed=9, tie_every=100)
    out = os.path.join(tmp, family + '-full')
    lr = eps = 1e4
    r = qjson(qkv, db, 'reward train base=%s head=full out=%s val=0 steps=2 batch=64 lr=%g min_lr=%g eps=%g wd=0 '
              'clip=0 beta2=0.95 threads=1' % (model_dir, out, lr, lr, eps))
    if not r:
        return
    # the sequences as qkv tokenizes them, and the pairs of the rule
    seqs, pairs = ranked_pairs(qkv, db, lambda p, o: qjson(qkv, db, 'tokenize "%s"' % (p + o), model=model_dir)['ids'])
    if r['train_pairs'] != len(pairs):
        fail('%s full: %d training pairs, want %d' % (family, r['train_pairs'], len(pairs)))
    w0, want = torch_two_steps(model_dir, seqs, pairs, lr, eps)
    from safetensors.numpy import load_file
    got = {k: v.astype(np.float64) for k, v in load_file(os.path.join(out, 'model.safetensors')).items()}
    worst = 0.0
    for name, w in want.items():
        if name not in got:
            fail('%s full: %s missing from the checkpoint' % (family, name))
            continue
        g = got[name].reshape(w.shape) if got[name].size == w.size else None
        if g is None:
            fail('%s full: %s has shape %r, want %r' % (family, name, got[name].shape, w.shape))
            continue
        dt, dq = w - w0[name], g - w0[name]
        scale = float(np.max(np.abs(dt)))
        err = float(np.max(np.abs(dt - dq)))
        if not err <= 2e-3 * scale + 1e-6:
            fail('%s full: %s: update differs from PyTorch\'s by %.3g (update size %.3g)' % (family, name, err, scale))
        if scale > 5e-4:  # where the relative bound, not the 1e-6 floor, is what holds
            worst = max(worst, err / scale)
    print('%s full: two steps equal PyTorch\'s, every tensor (worst relative difference %.2e among updates over '
          '5e-4; the others within 1e-6)' % (family, worst), flush=True)


class LoraParam(torch.nn.Module):
    """W -> W + s B A (nn.Linear, [out, in]) or W + s (B A)^T (GPT-2's Conv1D, [in, out])."""

    def __init__(self, A, B, s, in_out):
        super().__init__()
        self.A, self.B, self.s, self.in_out = A, B, s, in_out

    def forward(self, W):
        d = self.s * (self.B @ self.A)
        return W + (d.T if self.in_out else d)


def add_adapters(m, A0, r, alpha):
    """Parametrize the weight of each module path of A0 as W + alpha/r B A, A from A0 and B zero:
    {path: (module, A, B)}."""
    import torch.nn.utils.parametrize as P
    mods = {}
    for path, a in A0.items():
        mod = m.get_submodule(path)
        in_out = type(mod).__name__ == 'Conv1D'
        out_f = mod.weight.shape[1] if in_out else mod.weight.shape[0]
        A = torch.nn.Parameter(torch.tensor(a, dtype=torch.float32))
        B = torch.nn.Parameter(torch.zeros(out_f, r))
        P.register_parametrization(mod, 'weight', LoraParam(A, B, alpha / r, in_out))
        mods[path] = (mod, A, B)
    return mods


def torch_lora_two_steps(model_dir, seqs, pairs, A0, r, alpha, lr, eps):
    """transformers' reward model with adapters (A from A0, B zero) on the named projections: two
    AdamW steps of the head and the adapters. Returns {name: A, B} after, the score and the
    merged weights."""
    m = transformers.AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=1, dtype=torch.float32, attn_implementation='eager', local_files_only=True)
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        m.score.weight.zero_()
    m.score.weight.requires_grad_(True)
    mods = add_adapters(m, A0, r, alpha)
    train = [m.score.weight] + [x for mod, A, B in mods.values() for x in (A, B)]
    bt_steps(m, seqs, pairs, train, lr, eps)
    with torch.no_grad():
        merged = {path: mod.weight.detach().double().numpy() for path, (mod, A, B) in mods.items()}
    return ({path: (A.detach().double().numpy(), B.detach().double().numpy()) for path, (mod, A, B) in mods.items()},
            m.score.weight.detach().double().numpy(), merged)


def adapters(out_dir):
    from safetensors.numpy import load_file
    t = load_file(os.path.join(out_dir, 'adapter_model.safetensors'))
    res = {}
    for k, v in t.items():
        path = k[len('base_model.model.'):k.index('.lora_')]
        res.setdefault(path, [None, None])[0 if '.lora_A.' in k else 1] = v.astype(np.float64)
    return res


def test_lora_grads(qkv, tmp, model_dir, family):
    db = os.path.join(tmp, family + '-lora.db')
    make_db(qkv, db, 3, seed=9, tie_every=100)
    r_, alpha, lr = 4, 8.0, 1e4
    common = 'reward train base=%s head=lora r=%d alpha=%g val=0 batch=64 wd=0 clip=0 beta2=0.95 threads=1' % (
        model_dir, r_, alpha)
    # the adapters' starting A: the first step leaves it as drawn (B = 0 gives it no gradient)
    out0, out2 = os.path.join(tmp, family + '-lora0'), os.path.join(tmp, family + '-lora2')
    if not qjson(qkv, db, common + ' out=%s steps=1 lr=1e-9 min_lr=1e-9' % out0):
        return
    r = qjson(qkv, db, common + ' out=%s steps=2 lr=%g min_lr=%g eps=%g' % (out2, lr, lr, lr))
    if not r:
        return
    cfg = json.load(open(os.path.join(out2, 'adapter_config.json')))
    if cfg.get('peft_type') != 'LORA' or cfg.get('r') != r_ or cfg.get('lora_alpha') != alpha:
        fail('%s lora: adapter_config.json %r' % (family, cfg))
    A0 = {k: v[0] for k, v in adapters(out0).items()}
    want_targets = 4 if family == 'gpt2' else 8  # c_attn, c_proj / q, k, v, o_proj per layer (2 layers)
    if len(A0) != want_targets:
        fail('%s lora: adapters on %r' % (family, sorted(A0)))
    seqs, pairs = ranked_pairs(qkv, db, lambda p, o: qjson(qkv, db, 'tokenize "%s"' % (p + o), model=model_dir)['ids'])
    want, want_score, want_merged = torch_lora_two_steps(model_dir, seqs, pairs, A0, r_, alpha, lr, lr)
    got = adapters(out2)
    from safetensors.numpy import load_file
    model = {k: v.astype(np.float64) for k, v in load_file(os.path.join(out2, 'model.safetensors')).items()}
    worst = 0.0
    checks = [('score.weight', model['score.weight'], want_score, np.zeros_like(want_score))]
    for path, (wa, wb) in want.items():
        ga, gb = got.get(path, (None, None))
        checks += [(path + ' A', ga, wa, A0[path]), (path + ' B', gb, wb, np.zeros_like(wb)),
                   (path + ' merged', model.get(path + '.weight'), want_merged[path], None)]
    for name, g, w, w0 in checks:
        if g is None or g.shape != w.shape:
            fail('%s lora: %s missing or of shape %r, want %r' % (family, name, None if g is None else g.shape, w.shape))
            continue
        if w0 is None:  # the merged weight: to float32's rounding of the weights
            err, scale = float(np.max(np.abs(g - w))), float(np.max(np.abs(w)))
            ok = err <= 1e-5 * scale
        else:  # an update: to 2e-3 of its size
            dt, dq = w - w0, g - w0
            scale, err = float(np.max(np.abs(dt))), float(np.max(np.abs(dt - dq)))
            ok = err <= 2e-3 * scale + 1e-6
            if scale:
                worst = max(worst, err / scale)
        if not ok:
            fail('%s lora: %s differs from PyTorch\'s by %.3g (size %.3g)' % (family, name, err, scale))
    print('%s lora: two steps equal PyTorch\'s: the head and every adapter (worst relative difference %.2e), '
          'the merged weights' % (family, worst), flush=True)


def retype_tensor(path, name, dtype, npdtype):
    """Store tensor name of the safetensors file path as dtype (a NumPy type of the same name), the
    same shape and values."""
    import struct
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop('__metadata__', None)
    blobs = {k: raw[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]] for k, v in header.items()}
    blobs[name] = np.frombuffer(blobs[name], dtype='<f4').astype(npdtype).tobytes()
    header[name]['dtype'] = dtype
    off, out = 0, {}
    for k, v in header.items():
        out[k] = dict(v, data_offsets=[off, off + len(blobs[k])])
        off += len(blobs[k])
    if meta is not None:
        out['__metadata__'] = meta
    hb = json.dumps(out).encode()
    hb += b' ' * (-len(hb) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hb)) + hb + b''.join(blobs[k] for k in header))


def test_score_dtype(qkv, tmp, db, rm_dir):
    """A score.weight of the right size stored in a type qkv does not compute with (F64, I32) is named
    as such: it said "score.weight must be [1, 32] (one label), not 32 elements"."""
    for dt, npdt in (('F64', '<f8'), ('I32', '<i4')):
        odd = os.path.join(tmp, 'rm-score-' + dt)
        shutil.copytree(rm_dir, odd)
        retype_tensor(os.path.join(odd, 'model.safetensors'), 'score.weight', dt, npdt)
        bad(qkv, db, 'reward score "a" "b" model=%s' % odd, "tensor 'score.weight': type %s is not supported" % dt)


def test_bad(qkv, tmp, model_dir, rm_dir):
    db = os.path.join(tmp, 'bad.db')
    out = os.path.join(tmp, 'bad-out')
    # no database there yet: said so, nothing made (no rankings were found in a new empty one)
    bad(qkv, db, 'reward train base=%s out=%s' % (model_dir, out), 'no database at', out=out)
    make_db(qkv, db, 4)
    bad(qkv, db, 'reward train base=%s out=%s since=2999-01-01' % (model_dir, out), 'no rankings match', out=out)
    bad(qkv, db, 'reward train base=%s' % model_dir, 'out=DIR is required')
    # a floor above the start: the learning rate rose (it was accepted)
    bad(qkv, db, 'reward train base=%s out=%s min_lr=1' % (model_dir, out), 'min_lr=1 is above lr=0.01', out=out)
    # out= holding a model (the base itself, a reward model) is refused and the model kept: it was
    # replaced (the base's config.json became LlamaForSequenceClassification)
    for target in (model_dir, rm_dir):
        before = {n: open(os.path.join(target, n), 'rb').read() for n in sorted(os.listdir(target))
                  if os.path.isfile(os.path.join(target, n))}
        bad(qkv, db, 'reward train base=%s out=%s steps=1' % (model_dir, target), 'already holds a model')
        after = {n: open(os.path.join(target, n), 'rb').read() for n in before}
        if after != before or sorted(before) != sorted(n for n in os.listdir(target) if os.path.isfile(os.path.join(target, n))):
            fail('reward train out=%s changed the model there' % target)
    bad(qkv, db, 'reward train base=%s out=%s head=sideways' % (model_dir, out), 'head must be', out=out)
    bad(qkv, db, 'reward train base=%s out=%s head=linear r=4' % (model_dir, out), 'head=lora', out=out)
    bad(qkv, db, 'reward train base=%s out=%s head=lora r=0' % (model_dir, out), 'r', out=out)
    bad(qkv, db, 'reward train base=%s out=%s head=lora r=1000' % (model_dir, out), 'rank 1000 exceeds', out=out)
    # only ties
    tdb = os.path.join(tmp, 'ties.db')
    make_db(qkv, tdb, 2)
    con = sqlite3.connect(tdb)
    con.execute('UPDATE ranking_items SET rank = 1')
    con.commit()
    con.close()
    bad(qkv, tdb, 'reward train base=%s out=%s' % (model_dir, out), 'no preference', out=out)
    bad(qkv, tdb, 'reward train base=%s out=%s ties=equal' % (model_dir, out), 'no preference', out=out)
    bad(qkv, db, 'reward score "a" "b" model=%s' % model_dir, 'no score.weight')
    bad(qkv, db, 'reward score "a" model=%s' % rm_dir, 'usage')
    bad(qkv, db, 'reward score "a" "b"', 'model=DIR')
    bad(qkv, db, 'reward score run=999 model=%s' % rm_dir, 'no such run')
    # train's options on score are refused, not ignored
    bad(qkv, db, 'reward score "a" "b" model=%s epochs=5' % rm_dir, 'epochs= does not apply')
    bad(qkv, db, 'reward score "a" "b" model=%s since=garbage' % rm_dir, 'since= does not apply')
    bad(qkv, db, 'reward train base=%s out=%s ranking=3' % (model_dir, out), 'ranking= does not apply', out=out)
    # an option of neither form: named with train's own list, not with score's run=/ranking= in it
    bad(qkv, db, 'reward train base=%s out=%s colour=red' % (model_dir, out), 'reward train: colour= does not apply',
        out=out)
    bad(qkv, db, 'reward score "a" "b" model=%s colour=red' % rm_dir, 'reward score: colour= does not apply (only '
        'model=, run=, ranking=)')
    bad(qkv, db, 'reward fly', 'unknown subcommand')
    bad(qkv, db, 'generate "a" best_of=2', 'no reward model: give reward=DIR, set reward DIR', model=model_dir)
    bad(qkv, db, 'generate "a" best_of=2 reward=%s' % model_dir, 'no score.weight', model=model_dir)
    test_score_dtype(qkv, tmp, db, rm_dir)


def test_out_files(qkv, tmp, model_dir):
    """out= holding a file the trainer would write (a person's README.md, an unrelated tokenizer.json) is
    refused naming it, and nothing there is changed or added: reward train, dpo train and train (README.md
    was replaced by the model card; tokenizer.json was read as the checkpoint's tokenizer and the run failed
    saying "tokenizer written to ...", leaving tokenizer.gguf)."""
    db = os.path.join(tmp, 'outfiles.db')
    make_db(qkv, db, 4)
    text = os.path.join(tmp, 'outfiles.txt')
    with open(text, 'w') as f:
        f.write('hello world ' * 200)
    cases = [('reward train base=%s steps=1' % model_dir, 'README.md', 'notes\n'),
             ('reward train base=%s steps=1' % model_dir, 'tokenizer.json', '{}'),
             ('dpo train base=%s steps=1' % model_dir, 'README.md', 'notes\n'),
             ('train %s from=%s steps=1 seq=8 batch=2' % (text, model_dir), 'vocab.json', '{}')]
    for k, (cmd, name, body) in enumerate(cases):
        out = os.path.join(tmp, 'outfiles-%d' % k)
        os.makedirs(out)
        with open(os.path.join(out, name), 'w') as f:
            f.write(body)
        bad(qkv, db, '%s out=%s' % (cmd, out), "already holds %s, which %s writes" % (name, cmd.split(' base')[0]
                                                                                      .split(' ' + text)[0]))
        if os.listdir(out) != [name] or open(os.path.join(out, name)).read() != body:
            fail('%s into a folder holding %s: it now holds %r' % (cmd.split()[0], name, sorted(os.listdir(out))))
    print('out= holding a file a trainer writes is refused, the file kept', flush=True)


def test_killed(qkv, tmp, model_dir):
    """A reward training killed mid-run reads as interrupted (its row said running for ever), and a
    finished one as done."""
    import signal
    import time
    db = os.path.join(tmp, 'killed.db')
    make_db(qkv, db, 12)
    out = os.path.join(tmp, 'killed-rm')
    proc = subprocess.Popen([qkv, '--db', db, '--model', model_dir, '-e',
                             'reward train head=full out=%s epochs=100000 patience=0' % out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 60:  # until its first curve point is stored
        time.sleep(0.3)
        try:
            con = sqlite3.connect(db)
            n = con.execute('SELECT count(*) FROM reward_points').fetchone()[0]
            con.close()
        except sqlite3.Error:
            n = 0
        if n:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cv = qjson(qkv, db, 'curve kind=reward')
    # stopped with Ctrl-C instead: the kept weights and a card that says the run was stopped
    out2 = out + '-int'
    _, so, _ = qkv_cli.interrupted(qkv, ['--db', db, '--model', model_dir, '--json', '-e',
                                         'reward train head=full out=%s epochs=100000 patience=0' % out2])
    r = json.loads(so.strip().split('\n')[-1]) if so.strip() else {}
    card = open(os.path.join(out2, 'README.md')).read() if os.path.exists(os.path.join(out2, 'README.md')) else ''
    if not r.get('stopped') or 'planned (stopped with Ctrl-C' not in card:
        fail('reward train stopped with Ctrl-C: JSON stopped %r, card %r'
             % (r.get('stopped'), [l for l in card.splitlines() if 'steps' in l]))
    # and in text: the line says it was stopped, and where (it read as a finished run)
    args = ['--db', db, '--model', model_dir, '-e', 'reward train head=full out=%s-text epochs=100000 patience=0' % out2]
    second = []

    def again():  # the same command while it runs: refused (it would write its model over the running one's)
        second.append(qkv_cli.run_or_none(qkv, args, 60))
    _, so, _ = qkv_cli.interrupted(qkv, args, during=again)
    p2 = second[0] if second else None
    if not p2 or p2.returncode == 0 or 'is in use by another qkv process' not in p2.stderr:
        fail('reward train into an out= another process is training into: exit %s, %r'
             % (p2 and p2.returncode, p2 and p2.stderr[-300:]))
    if not re.search(r'stopped with Ctrl-C after step \d+ of \d+: the weights of step \d+ are saved', so):
        fail('reward train stopped with Ctrl-C, text: %r' % so[-400:])
    if not cv or cv.get('status') != 'interrupted':
        fail('a killed reward training: status %r, want interrupted' % (cv or {}).get('status'))
    else:
        print('a reward training killed after %d points reads as interrupted' % len(cv.get('points', [])), flush=True)


def test_stopped_before_step(qkv, tmp, model_dir):
    """Ctrl-C before a reward training's first step (during its hidden-state pass): no model is written
    (out= it made is removed), the run reads as stopped, not done, and the default reward model stays
    the latest finished run's, with a note naming it (it was recorded done, and reward score used its
    all-zero head). dpo train the same: no checkpoint of the untouched base."""
    for attempt, n in enumerate((60, 240, 960)):  # more rankings when the run got past its first step
        db = os.path.join(tmp, 'stop0-%d.db' % attempt)
        make_db(qkv, db, n)
        done_rm = os.path.join(tmp, 'stop0-done-%d' % attempt)
        if not qjson(qkv, db, 'reward train base=%s head=linear out=%s steps=2' % (model_dir, done_rm)):
            return
        got = []
        for cmd, table in (('reward train head=linear', 'reward_runs'), ('dpo train', 'train_runs')):
            out = os.path.join(tmp, 'stop0-%s-%d' % (cmd.split()[0], attempt))
            r = qkv_cli.interrupted_when(qkv, ['--db', db, '--model', model_dir, '--json', '-e',
                                               '%s out=%s epochs=1000 patience=0' % (cmd, out)],
                                         db, 'SELECT count(*) FROM %s' % table,
                                         at_least=2 if table == 'reward_runs' else 1, wait=60)
            rc, so, se = r if r else (None, '', 'went on after Ctrl-C')  # its run row written: the pass follows
            got.append((cmd, out, rc, so, se))
        if any(re.search(r'"steps":[1-9]', so) for _, _, _, so, _ in got):
            continue  # a step ran before the signal came: again with a longer pass
        break
    for cmd, out, rc, so, se in got:
        if rc == 0 or 'stopped with Ctrl-C before the first step: no model written' not in se \
                or os.path.exists(out):
            fail('%s stopped before its first step: exit %d, %r; out= %s' % (cmd, rc, se.strip()[-300:],
                 sorted(os.listdir(out)) if os.path.isdir(out) else 'absent'))
    cv = qjson(qkv, db, 'curve kind=reward')
    if not cv or cv.get('status') != 'stopped':
        fail('reward train stopped before its first step: status %r, want stopped' % (cv or {}).get('status'))
    p = qkv_cli.run(qkv, ['--db', db, '-e', 'reward score "Q1: how?" " it looks good"'])
    s = qjson(qkv, db, 'reward score "Q1: how?" " it looks good"')
    if not s or s['model'] != os.path.realpath(done_rm) or 'the latest finished one (1 later run did not finish' \
            not in p.stdout:
        fail('the default reward model after a stopped run: %r (want %s), text %r' % (s and s['model'], done_rm,
                                                                                    p.stdout + p.stderr))
    else:
        print('a reward training stopped before its first step writes no model and reads as stopped; the default '
              'reward model stays the finished run\'s', flush=True)


def test_stop_between_evaluations(qkv, tmp, model_dir):
    """Ctrl-C between two evaluations stops a reward training at its next step (it trained on to the
    next evaluation, an epoch by default: here a million steps away); the weights kept are then the
    start's zero head, so no model is written, the run reads as stopped. A run in which no step
    beats the start's held-out loss (lr=1e-9) writes none either and is recorded failed, and reward
    score keeps the finished model (an all-zero head was written, recorded done and taken as the
    default reward model: every candidate rewarded 0)."""
    db = os.path.join(tmp, 'stop-mid.db')
    make_db(qkv, db, 60)
    done_rm = os.path.join(tmp, 'stop-mid-done')
    if not qjson(qkv, db, 'reward train base=%s head=linear out=%s' % (model_dir, done_rm)):
        return
    out = os.path.join(tmp, 'stop-mid-out')
    r = qkv_cli.interrupted_when(qkv, ['--db', db, '--model', model_dir, '--json', '-e', 'reward train head=full out=%s '
                                       'steps=1000000 eval_every=1000000 patience=0' % out], db,
                                 'SELECT count(*) FROM reward_points p JOIN reward_runs r ON r.id = p.run_id '
                                 'WHERE r.out_path = ?', (os.path.realpath(out),), delay=0.3)
    if not r:  # the start's evaluation logged: Ctrl-C while the steps run
        fail('reward train went on after Ctrl-C between evaluations (killed 120 s later)')
        return
    rc, so, se = r
    if rc != 130 or 'stopped with Ctrl-C before the first evaluation: no model written' not in se \
            or os.path.exists(out):
        fail('reward train stopped between evaluations: exit %d, %r, out= %s' % (rc, se.strip()[-300:],
                                                                              os.path.exists(out)))
    cv = qjson(qkv, db, 'curve kind=reward')
    if not cv or cv.get('status') != 'stopped':
        fail('reward train stopped between evaluations: status %r, want stopped' % (cv or {}).get('status'))
    # no step better than the start: nothing written, recorded failed, not the default reward model
    zero = os.path.join(tmp, 'stop-mid-zero')
    p = qkv_cli.run(qkv, ['--db', db, '--model', model_dir, '-e', 'reward train head=linear lr=1e-9 steps=2 out=%s' % zero])
    if p.returncode == 0 or 'no step improved on the untrained head' not in p.stderr or os.path.exists(zero):
        fail('reward train with no step better than the start: exit %d, %r, out= %s' % (p.returncode, p.stderr[-300:],
                                                                                    os.path.exists(zero)))
    cv = qjson(qkv, db, 'curve kind=reward')
    if not cv or cv.get('status') != 'failed':
        fail('reward train with no step better than the start: status %r, want failed' % (cv or {}).get('status'))
    sc = qjson(qkv, db, 'reward score "Q1: how?" " it looks good"')
    if not sc or sc['model'] != os.path.realpath(done_rm):
        fail('the default reward model after a run that wrote none: %r (want %s)' % (sc and sc['model'], done_rm))
    else:
        print('reward train stops at the next step on Ctrl-C; a run no better than its zero start writes no model',
              flush=True)


def test_quantized_base(qkv, tmp, model_dir):
    """A session's model quantized in memory is the base a trainer starts from: the JSON, the model
    card and the database say so (they named the float file alone)."""
    db = os.path.join(tmp, 'quant-base.db')
    make_db(qkv, db, 6)
    out = os.path.join(tmp, 'quant-base-rm')
    try:
        _, r = qkv_cli.json_cmds(qkv, model_dir, ['quantize q8_0', 'reward train head=linear out=%s steps=2' % out], db)
    except qkv_cli.QkvError as ex:
        fail('reward train on a quantized session model: %s' % ex)
        return
    card = open(os.path.join(out, 'README.md')).read()
    con = sqlite3.connect(db)
    arch = con.execute('SELECT model_arch FROM reward_runs ORDER BY id DESC LIMIT 1').fetchone()[0]
    con.close()
    if not r.get('base_arch', '').endswith('(quantize q8_0)') or '(quantize q8_0)' not in card or arch != r['base_arch']:
        fail('quantized base: base_arch %r, card %r, reward_runs.model_arch %r'
             % (r.get('base_arch'), [l for l in card.splitlines() if 'base model' in l], arch))
    else:
        print('a quantized base is named so: %s' % r['base_arch'], flush=True)


def test_other_vocab(qkv, tmp, models):
    """Ranked completions generated with another vocabulary: the base tokenizes their text like
    any other and both trainers say so (JSON other_vocab, a note line, the model card)."""
    db = os.path.join(tmp, 'vocab.db')
    make_db(qkv, db, 12)
    con = sqlite3.connect(db)
    runs = con.execute('SELECT id, output FROM runs').fetchall()
    toks = qkv_cli.json_cmds(qkv, models['gpt2'], ['tokenize %s special=false' % json.dumps(t) for _, t in runs]
                             + ['model'], db)
    eos = toks.pop()['eos_id']
    for k, ((rid, _), t) in enumerate(zip(runs, toks)):  # as if GPT-2 had generated them, every other
        # one stopping at end-of-text: that token is among the run's ids but not in its text
        ids = t['ids'] + ([eos] if k % 2 else [])
        con.execute('UPDATE runs SET ids = ?, stop_reason = ? WHERE id = ?',
                    (json.dumps(ids), 'eos' if k % 2 else 'length', rid))
    con.commit()
    con.close()
    for family, want in (('gpt2', 0), ('llama', len(runs))):
        out = os.path.join(tmp, 'vocab-' + family)
        p = subprocess.run([qkv, '--db', db, '-e', 'reward train base=%s head=linear out=%s val=0.25 epochs=2'
                            % (models[family], out)], capture_output=True, text=True, timeout=300)
        r = qjson(qkv, db, 'reward train base=%s head=linear out=%s val=0.25 epochs=2' % (models[family], out + 'j'))
        if not r or p.returncode:
            fail('other vocabulary, base %s: %s' % (family, p.stderr.strip()[:300]))
            continue
        note = 'note: %d of the %d ranked completions were generated with another vocabulary' % (want, len(runs))
        card = open(os.path.join(out, 'README.md')).read()
        if r.get('other_vocab') != want or (note in p.stdout) != (want > 0) or \
                (('%d of the %d ranked completions' % (want, len(runs))) in card) != (want > 0):
            fail('other vocabulary, base %s: other_vocab %r (want %d); note in the text %r; in the card %r'
                 % (family, r.get('other_vocab'), want, note in p.stdout, 'another vocabulary' in card))


def small_llama(qkv, what, db, out, tokdir, opts):
    """A random Llama (2 heads, 1 key/value head, d=32) with tokdir's tokenizer into out; False
    after a failure (said in what's name)."""
    p = qkv_cli.new_model(qkv, ['llama', 'heads=2', 'kv_heads=1', 'd=32', 'ff=48', 'ctx=64'] + opts +
                          ['tok=' + tokdir, 'out=' + out], db)
    if p.returncode != 0:
        fail('%s: new-model: %s' % (what, p.stderr.strip()[-400:]))
    return p.returncode == 0


def gpt2_tokenizer(what):
    """The shared GPT-2 BPE tokenizer's folder, or None (a skip of what printed) when it is missing."""
    shared = os.environ.get('QKV_SHARED_MODELS', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..',
                                                              '..', 'shared', 'models'))
    tokdir = os.path.join(shared, 'gpt2-bpe-tokenizer')
    if not os.path.isdir(tokdir):
        print('skip %s: no %s' % (what, tokdir))
        return None
    return tokdir


def test_gguf_base(qkv, tmp):
    """reward train and dpo train on a GGUF base, the file or a directory holding only it (as ./dev
    models installs SmolLM2): the checkpoint keeps the GGUF's own tokenizer (tokenizer.gguf, from
    its metadata), so it tokenizes as the base does. (A directory once failed after the training
    with 'no tokenizer files'; the file gave the family's byte-level default tokenizer.)"""
    tokdir = gpt2_tokenizer('gguf base')
    if not tokdir:
        return
    db = os.path.join(tmp, 'gguf-base.db')
    src = os.path.join(tmp, 'gg-src')
    if not small_llama(qkv, 'gguf base', db, src, tokdir, ['layers=2', 'seed=63']):
        return
    gguf = os.path.join(tmp, 'gg-base.gguf')
    gdir = os.path.join(tmp, 'gg-dir')
    qkv_cli.json_cmds(qkv, src, ['export gguf %s type=f32' % gguf], db)
    os.makedirs(gdir)
    with open(gguf, 'rb') as f, open(os.path.join(gdir, 'model.gguf'), 'wb') as g:
        g.write(f.read())
    make_db(qkv, db, 6)
    text = 'Hello world, tokenizers agree!'
    want = qjson(qkv, db, 'tokenize "%s"' % text, model=gguf)
    if not want or len(want['ids']) >= len(text):
        fail('gguf base: the base does not tokenize as BPE: %r' % want)
        return
    for kind, base in (('file', gguf), ('directory', gdir)):
        for cmd in ('reward train', 'dpo train'):
            out = os.path.join(tmp, 'gg-%s-%s' % (cmd.split()[0], kind))
            r = qjson(qkv, db, '%s base=%s out=%s epochs=1' % (cmd, base, out))
            if not r:
                continue
            got = qjson(qkv, db, 'tokenize "%s"' % text, model=out)
            if not os.path.isfile(os.path.join(out, 'tokenizer.gguf')) or not got or got['ids'] != want['ids']:
                fail('%s on a GGUF %s: the checkpoint does not keep its tokenizer: %s, ids %r, want %r' %
                     (cmd, kind, sorted(os.listdir(out)), got and got['ids'], want['ids']))
            else:
                print('ok %s on a GGUF %s: tokenizer.gguf kept, %d ids as the base' % (cmd, kind, len(want['ids'])))


def test_special_tokens(qkv, tmp):
    """A prompt holding special-token text (<|endoftext|>, as a chat template's <|im_start|>): the reward
    model reads it as the token, in training and scoring, as `tokenize` and generation read it and as
    transformers' tokenizer does (it was spelled out as plain characters, 7 tokens for <|endoftext|>)."""
    tokdir = gpt2_tokenizer('special tokens')
    if not tokdir:
        return
    db = os.path.join(tmp, 'special.db')
    base = os.path.join(tmp, 'special-base')
    p = qkv_cli.new_model(qkv, ['gpt2', 'layers=1', 'heads=2', 'd=32', 'ctx=64', 'seed=64', 'tok=' + tokdir,
                                'out=' + base], db)
    if p.returncode != 0:
        fail('special tokens: new-model: %s' % p.stderr.strip()[-400:])
        return
    make_db(qkv, db, 6)
    con = sqlite3.connect(db)  # every prompt as a turn after an end-of-text
    con.execute("UPDATE rankings SET prompt = 'Hi<|endoftext|>' || prompt")
    con.execute("UPDATE runs SET prompt = 'Hi<|endoftext|>' || prompt")
    con.commit()
    con.close()
    out = os.path.join(tmp, 'special-rm')
    r = qjson(qkv, db, 'reward train base=%s head=linear out=%s val=0.34 steps=2 patience=0' % (base, out))
    if not r:
        return
    eot = qjson(qkv, db, 'model', model=base)['eos_id']
    held = qjson(qkv, db, 'curve kind=reward').get('heldout', [])
    prompt, comp = 'Hi<|endoftext|>Q: how?', ' it looks good'
    cases = [(prompt, comp)] + [(h['prompt'], h['chosen']) for h in held[:1]]
    for prompt, comp in cases:
        s = qjson(qkv, db, 'reward score %s %s model=%s' % (json.dumps(prompt), json.dumps(comp), out))
        t = qjson(qkv, db, 'tokenize %s' % json.dumps(prompt + comp), model=out)
        if not s or not t:
            return
        hf_ids = transformers.AutoTokenizer.from_pretrained(out, local_files_only=True)(prompt + comp)['input_ids']
        want, _ = hf_reward(out, t['ids'])
        if s['ids'] != t['ids'] or eot not in s['ids'] or hf_ids != t['ids'] or abs(want - s['reward']) > 1e-4:
            fail('special tokens: reward score read %r, tokenize %r, transformers\' tokenizer %r (end-of-text %d); '
                 'reward %r, transformers %r' % (s['ids'], t['ids'], hf_ids, eot, s['reward'], want))
            return
    # the held-out pair's stored reward (training's tokens) is the reward of scoring's
    h = held[0] if held else None
    sc = h and qjson(qkv, db, 'reward score %s %s model=%s' % (json.dumps(h['prompt']), json.dumps(h['chosen']), out))
    if not sc or abs(sc['reward'] - h['r_chosen']) > 1e-4:
        fail('special tokens: a held-out pair stored r_chosen %r, reward score %r' % (h and h['r_chosen'],
                                                                                       sc and sc['reward']))
        return
    print('special-token text read as the token by reward train and reward score, as tokenize and transformers '
          'read it (%d ids)' % len(t['ids']), flush=True)


LLAMA3_CHAT = ("{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>"
               "\n\n{{ message['content'] | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
               "<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")


def test_chat_bos(qkv, tmp):
    """A chat prompt whose template begins with {{ bos_token }} (Llama 3) on a tokenizer that adds BOS
    itself: generate reads the rendered chat with one BOS, and the reward model reads the stored prompt
    with one too (it read two: the added one and the template's), as TRL's trainers add BOS only when
    it is not there. dpo train's prompts go through the same function."""
    tokdir = os.path.join(tmp, 'l3tok')
    os.makedirs(tokdir)
    shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tok', 'fixtures', 'llama3',
                             'tokenizer.json'), tokdir)
    with open(os.path.join(tokdir, 'tokenizer_config.json'), 'w') as f:
        json.dump({'bos_token': '<|begin_of_text|>', 'eos_token': '<|eot_id|>', 'chat_template': LLAMA3_CHAT}, f)
    db = os.path.join(tmp, 'chatbos.db')
    base = os.path.join(tmp, 'chatbos-base')
    if not small_llama(qkv, 'chat bos', db, base, tokdir, ['layers=1', 'seed=65']):
        return
    g = qjson(qkv, db, 'generate "Hi" chat=true max=3 seed=1', model=base)
    bos = qjson(qkv, db, 'model', model=base)['bos_id']
    run = qjson(qkv, db, 'show %d' % g['run_id']) if g else None
    if not run or run['prompt_ids'][0] != bos or run['prompt_ids'][1] == bos or not run['prompt'].startswith('<|begin_of_text|>'):
        fail('chat bos: generate chat=true read %r from %r' % (run and run['prompt_ids'][:4], run and run['prompt']))
        return
    make_db(qkv, db, 6)
    con = sqlite3.connect(db)  # every ranked prompt a rendered chat, as rank chat=true stores it
    con.execute("UPDATE rankings SET prompt = ? || prompt", (run['prompt'],))
    con.execute("UPDATE runs SET prompt = ? || prompt WHERE kind = 'rank'", (run['prompt'],))
    con.commit()
    con.close()
    out = os.path.join(tmp, 'chatbos-rm')
    if not qjson(qkv, db, 'reward train base=%s head=linear out=%s val=0.34 steps=2 patience=0' % (base, out)):
        return
    s = qjson(qkv, db, 'reward score %s %s model=%s' % (json.dumps(run['prompt']), json.dumps(run['text']), out))
    if not s or s['ids'][:len(run['prompt_ids'])] != run['prompt_ids']:
        fail('chat bos: reward score read the chat prompt as %r, generate as %r' % (s and s['ids'][:4],
                                                                                   run['prompt_ids'][:4]))
        return
    print('a chat prompt rendered with its BOS: one BOS for generate and the reward model (%d prompt ids)'
          % len(run['prompt_ids']), flush=True)


def new_models(qkv, tmp):
    """The random-weight GPT-2 and Llama (grouped-query) models both tests train: {family: dir}, or
    None after a failure."""
    db0 = os.path.join(tmp, 'models.db')
    models = {}
    for family, opts in (('gpt2', 'layers=2 heads=2 d=32 ctx=64 seed=61 std=0.1'),
                         ('llama', 'layers=2 heads=4 kv_heads=2 d=32 ff=48 ctx=64 seed=62 std=0.1')):
        d = os.path.join(tmp, family)
        p = qkv_cli.new_model(qkv, [family] + opts.split() + ['out=' + d], db0)
        if p.returncode != 0:
            fail('%s: new-model: %s' % (family, p.stderr.strip()))
            return None
        models[family] = d
    return models


def test_pair_counts(qkv, tmp, model_dir):
    """Every pair of candidates of a ranking is counted once: a pair, a tie left out, or two
    identical completions. A tied pair of identical completions was counted nowhere under
    ties=exclude (neither ties_excluded nor identical) before 2026-12-07."""
    db = os.path.join(tmp, 'counts.db')
    qkv_cli.new_db(qkv, db)
    con = sqlite3.connect(db)
    rankings = [('Qa', [' good', ' good', ' bad'], [1, 1, 2]),  # a tied identical pair
                ('Qb', [' x', ' x', ' y'], [1, 2, 3]),            # an identical pair ranked apart
                ('Qc', [' p', ' q', ' r'], [1, 1, 2]),            # a tie of two different texts
                ('Qd', [' u', ' v', ' w'], [1, 2, 3])]
    for prompt, texts, ranks in rankings:
        qkv_cli.insert_ranking(con, prompt, texts, ranks)
    con.commit()
    con.close()
    for ties, want in (('exclude', {'pairs': 9, 'ties': 0, 'ties_excluded': 1, 'identical': 2}),
                       ('equal', {'pairs': 10, 'ties': 1, 'ties_excluded': 0, 'identical': 2})):
        cmds = ['reward train base=%s head=linear out=%s val=0.25 epochs=1 ties=%s'
                % (model_dir, os.path.join(tmp, 'counts-rm-' + ties), ties)]
        if ties == 'exclude':  # DPO always leaves ties out
            cmds.append('dpo train base=%s out=%s val=0.25 epochs=1' % (model_dir, os.path.join(tmp, 'counts-dpo')))
        for cmd in cmds:
            r = qjson(qkv, db, cmd)
            got = {k: r.get(k) for k in want} if r else None
            if got != want:
                fail('%s: pair counts %r, want %r (4 rankings of 3: 12 pairs in all)' % (cmd.split(' base')[0], got, want))


def main():
    qkv = qkv_cli.qkv_path()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        models = new_models(qkv, tmp)
        if not models:
            return finish()
        res = test_linear(qkv, tmp, models['gpt2'], 'gpt2', 'GPT2ForSequenceClassification')
        test_linear(qkv, tmp, models['llama'], 'llama', 'LlamaForSequenceClassification')
        test_full_grads(qkv, tmp, models['gpt2'], 'gpt2')
        test_full_grads(qkv, tmp, models['llama'], 'llama')
        test_lora_grads(qkv, tmp, models['gpt2'], 'gpt2')
        test_lora_grads(qkv, tmp, models['llama'], 'llama')
        if res:
            test_bad(qkv, tmp, models['gpt2'], res[0])
            test_best_of_stopped(qkv, tmp, res[0])
        test_killed(qkv, tmp, models['gpt2'])
        test_stopped_before_step(qkv, tmp, models['gpt2'])
        test_stop_between_evaluations(qkv, tmp, models['gpt2'])
        test_out_files(qkv, tmp, models['gpt2'])
        test_quantized_base(qkv, tmp, models['gpt2'])
        test_other_vocab(qkv, tmp, models)
        test_gguf_base(qkv, tmp)
        test_special_tokens(qkv, tmp)
        test_chat_bos(qkv, tmp)
        test_pair_counts(qkv, tmp, models['gpt2'])
    return finish()


if __name__ == '__main__':
    sys.exit(main())
