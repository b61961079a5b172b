#!/usr/bin/env python3
# test_dpo_judge.py - suite 'reference': DPO moves the teaching model's SAMPLED completions toward
# a known rule, and `dpo train judge=DIR` reports the tuned model's win rate against the base as
# a trained reward model judges it.
#
#   - a synthetic preference set on sentences of the teaching corpus's grammar: a prompt
#     "The NOUN VERBS", three completions " the ADJ NOUN PREP the NOUN."; the one whose adjective
#     is "red" is ranked first, the other two tied second (the rule: the completion contains
#     " red");
#   - a reward model (head=lora) on the built-in teaching model (base=teach) trained on it is
#     the judge; `dpo train base=teach judge=... judge_samples=4` samples 4 completions of every
#     held-out prompt from the base and from the tuned checkpoint (same seeds and decoding);
#   - the rule's rate in those sampled completions (read from the logged runs) rises by >= 30
#     points; the judge ranks the tuned model's samples with the rule above its samples without
#     (AUC >= 0.7); the win
#     rate equals (wins + ties / 2) / n recomputed from the logged rewards (reported, not bounded:
#     see the README's DPO figures); every sample is a run of kind 'judge'
#     with its reward in reward_scores; the rewards of some samples equal transformers' GPT2ForSequenceClassification on the judge's
#     checkpoint (same ids) within 1e-3; the prompts judged are exactly the held-out ones (none
#     of them in a training pair); the model card states the win rate;
#   - bad input: judge= with val=0, judge_samples= without judge=, a judge that is not a reward
#     model: one error line, nothing written.
# Usage: test_dpo_judge.py QKV_BINARY

import json
import os
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_reward import bad, hf_reward, qjson  # noqa: E402
from trainref import fail, finish, np, qkv_cli  # noqa: E402

NOUNS = ('cat dog bird fish tree house book ball river hill road car boat cup chair table door lamp hat shoe coat '
         'bag box key pen desk bell cake apple plum pear bean seed leaf rock star moon cloud train ship farm barn '
         'goat horse sheep duck frog bear wolf fox mouse owl').split()
ADJS = 'small big blue old young happy quiet green tall little brown kind busy sleepy clever'.split()
VERBS = 'sees likes finds follows helps paints carries watches visits wants'.split()
PREPS = 'near under behind beside above inside'.split()
RULE = b' red'


def make_grammar_db(qkv, db, n_prompts, seed=5):
    """Runs and rankings of the rule: the completion with ' red' first, the two others tied second."""
    qkv_cli.new_db(qkv, db)
    rnd = np.random.default_rng(seed)
    con = sqlite3.connect(db)
    now = '2026-01-01T00:00:00.000Z'

    def pick(xs):
        return xs[int(rnd.integers(0, len(xs)))]
    for i in range(n_prompts):
        prompt = 'The %s %s' % (pick(NOUNS), pick(VERBS))
        tail = ' %s the %s.' % (pick(PREPS), pick(NOUNS))
        texts = [' the red %s%s' % (pick(NOUNS), tail)] + [' the %s %s%s' % (pick(ADJS), pick(NOUNS), tail)
                                                          for _ in range(2)]
        order = rnd.permutation(3)
        ids = []
        for n, w in enumerate(order):
            cur = con.execute(
                "INSERT INTO runs (created, kind, annotator, qkv_version, model_path, model_arch, prompt, "
                "temperature, top_k, top_p, seed, max_tokens, output) VALUES (?, 'rank', 'syn', 'test', 'teach', "
                "'gpt2', ?, 1.0, 0, 1.0, ?, 8, ?)", (now, prompt, i * 10 + n, texts[w]))
            ids.append((n + 1, cur.lastrowid, w))
        rid = con.execute("INSERT INTO rankings (created, prompt, k, annotator, qkv_version) VALUES (?, ?, 3, ?, "
                          "'test')", (now, prompt, 'alice' if i % 2 else 'bob')).lastrowid
        for n, run_id, w in ids:
            con.execute('INSERT INTO ranking_items (ranking_id, n, run_id, rank) VALUES (?, ?, ?, ?)',
                        (rid, n, run_id, 1 if w == 0 else 2))
    con.commit()
    con.close()


def test_judge(qkv, tmp):
    db = os.path.join(tmp, 'grammar.db')
    make_grammar_db(qkv, db, 60)
    judge = os.path.join(tmp, 'judge')
    rm = qjson(qkv, db, 'reward train base=teach head=lora out=%s val=0.25 epochs=20 batch=8 lr=2e-3 patience=0'
               % judge)
    if not rm:
        return
    if not rm['heldout_accuracy'] >= 0.95:
        fail('judge: the reward model\'s held-out accuracy %r (want >= 0.95)' % rm['heldout_accuracy'])
    out = os.path.join(tmp, 'dpo')
    r = qjson(qkv, db, 'dpo train base=teach out=%s beta=0.1 val=0.25 epochs=2 batch=8 lr=2e-4 judge=%s '
              'judge_samples=4 judge_max=24' % (out, judge))
    if not r:
        return
    judged = r.get('judged', [])
    n = len(judged)
    if n != 4 * r['heldout_prompts'] or n == 0:
        fail('judge: %d samples judged, want 4 x %d held-out prompts' % (n, r['heldout_prompts']))
        return
    wins = sum(j['tuned_reward'] > j['base_reward'] for j in judged)
    ties = sum(j['tuned_reward'] == j['base_reward'] for j in judged)
    want_rate = (wins + ties / 2) / n
    if abs(r['win_rate'] - want_rate) > 1e-9 or r['judge_wins'] != wins or r['judge_ties'] != ties \
            or r['judge_losses'] != n - wins - ties:
        fail('judge: win_rate %r (%r/%r/%r), recomputed %r (%d/%d/%d)' % (
            r['win_rate'], r['judge_wins'], r['judge_ties'], r['judge_losses'], want_rate, wins, ties,
            n - wins - ties))
    for key, side in (('tuned_reward', 'tuned_reward'), ('base_reward', 'base_reward')):
        m = float(np.mean([j[side] for j in judged]))
        if abs(r[key] - m) > 1e-5 * max(1, abs(m)):
            fail('judge: %s %r, mean of the samples %r' % (key, r[key], m))
    con = sqlite3.connect(db)
    con.text_factory = bytes
    texts, scored = {}, []  # scored: (reward, text) of the tuned model's samples
    for j in judged:
        for side in ('base', 'tuned'):
            row = con.execute("SELECT r.kind, r.seed, r.prompt, r.output, r.model_path, s.reward FROM runs r JOIN "
                              "reward_scores s ON s.run_id = r.id WHERE r.id = ?", (j[side + '_run_id'],)).fetchone()
            if not row or row[0] != b'judge' or row[1] != j['seed'] or row[2] != j['prompt'].encode() \
                    or abs(row[5] - j[side + '_reward']) > 1e-5 * max(1, abs(row[5])):
                fail('judge: the %s run of %r seed %d: %r' % (side, j['prompt'], j['seed'], row and row[:3]))
                continue
            if (side == 'tuned') != (os.path.realpath(out).encode() in row[4]):
                fail('judge: the %s run %d was generated by %r' % (side, j[side + '_run_id'], row[4]))
            texts.setdefault(side, []).append(row[3])
            if side == 'tuned':
                scored.append((row[5], row[3]))
    # the judged prompts are the held-out ones: none is the prompt of a training ranking's pair
    prompts = {j['prompt'] for j in judged}
    all_prompts = {p.decode() for (p,) in con.execute('SELECT DISTINCT prompt FROM rankings')}
    con.close()
    if len(prompts) != r['heldout_prompts'] or not prompts <= all_prompts:
        fail('judge: %d distinct prompts judged, %d held out' % (len(prompts), r['heldout_prompts']))
    if sorted(j['seed'] for j in judged if j['prompt'] == judged[0]['prompt']) != [1, 2, 3, 4]:
        fail('judge: seeds %r, want 1..4 per prompt' % [j['seed'] for j in judged if j['prompt'] == judged[0]['prompt']])
    base_rate = np.mean([RULE in t for t in texts.get('base', [])])
    tuned_rate = np.mean([RULE in t for t in texts.get('tuned', [])])
    if not tuned_rate >= base_rate + 0.30:
        fail('judge: the rule\'s rate in sampled completions %.3f -> %.3f (want a rise of >= 0.30)'
             % (base_rate, tuned_rate))
    # the judge reads the rule in sampled text: the tuned model's samples with " red" get higher
    # rewards than its samples without (AUC). Its verdict on the tuned model as a whole, the win rate,
    # is reported, not bounded: the tuned model's samples without the rule score lower than the
    # base's (README, DPO)
    red = [x for x, t in scored if RULE in t]
    other = [x for x, t in scored if RULE not in t]
    auc = np.mean([(a > b) + 0.5 * (a == b) for a in red for b in other]) if red and other else float('nan')
    if not auc >= 0.7:
        fail('judge: the tuned model\'s samples with the rule rank above those without with probability %.3f '
             '(want >= 0.7)' % auc)
    # transformers' reward of a few samples on the judge's checkpoint, on qkv's ids
    worst = 0.0
    for j in judged[:3]:
        for side in ('base', 'tuned'):
            sc = qjson(qkv, db, 'reward score run=%d model=%s' % (j[side + '_run_id'], judge))
            if not sc:
                continue
            want, _ = hf_reward(judge, sc['ids'])
            worst = max(worst, abs(want - j[side + '_reward']), abs(sc['reward'] - j[side + '_reward']))
    if not worst <= 1e-3:
        fail('judge: rewards differ from transformers\' (or from reward score) by %.3g' % worst)
    card = open(os.path.join(out, 'README.md')).read()
    if 'win rate against the base model' not in card or ('%.4f' % r['win_rate']) not in card:
        fail('judge: the model card does not state the win rate %.4f' % r['win_rate'])
    print('judge: %d held-out prompts x 4 samples; the rule " red" in %.0f%% of the base\'s completions, %.0f%% of '
          'the tuned model\'s; with the rule above those without: AUC %.3f; win rate %.3f (%d wins, %d ties), '
          'mean reward %.3f vs %.3f (base); transformers agrees within %.1e'
          % (r['heldout_prompts'], 100 * base_rate, 100 * tuned_rate, auc, r['win_rate'], wins, ties,
             r['tuned_reward'], r['base_reward'], worst), flush=True)
    # bad input
    bout = os.path.join(tmp, 'bad-out')
    bad(qkv, db, 'dpo train base=teach out=%s judge=%s val=0' % (bout, judge), 'val > 0', out=bout)
    bad(qkv, db, 'dpo train base=teach out=%s judge_samples=3' % bout, 'need judge=DIR', out=bout)
    bad(qkv, db, 'dpo train base=teach out=%s judge=%s' % (bout, out), 'not a reward model', out=bout)
    bad(qkv, db, 'dpo train base=teach out=%s judge=%s judge_samples=0' % (bout, judge), 'judge_samples', out=bout)
    bad(qkv, db, 'dpo train base=teach out=%s judge=%s judge_samples=3 seed=9007199254740990' % (bout, judge),
        'judge sample 3 would use seed 9007199254740992', out=bout)
    print('judge bad input: one error line each, nothing written', flush=True)
    # Ctrl-C while judging: the tuned model and its card kept, the win rate of the samples judged
    # before it, the run stopped (the command failed "judge: stopped", the card unwritten, the run
    # recorded failed)
    sout = os.path.join(tmp, 'dpo-judge-stop')
    r = qkv_cli.interrupted_when(qkv, ['--db', db, '--json', '-e', 'dpo train base=teach out=%s beta=0.1 val=0.25 '
                                       'epochs=1 batch=8 lr=2e-4 judge=%s judge_samples=200 judge_max=64' % (sout, judge)],
                                 db, "SELECT count(*) FROM runs WHERE kind = 'judge' AND model_path LIKE ?",
                                 ('%' + os.path.basename(sout) + '%',), at_least=3, wait=600, timeout=600)
    if not r:  # a few samples judged
        fail('dpo train went on judging after Ctrl-C')
        return
    rc, so, se = r
    try:
        j = json.loads(so.splitlines()[0])
    except (ValueError, IndexError):
        fail('judge stopped with Ctrl-C: no result: exit %d, %r' % (rc, se[-300:]))
        return
    n = len(j.get('judged', []))
    card = open(os.path.join(sout, 'README.md')).read() if os.path.exists(os.path.join(sout, 'README.md')) else ''
    cv = qjson(qkv, db, 'curve %d' % j['train_run_id']) if j.get('train_run_id') else None
    if not j.get('judge_stopped') or not 0 < n < 200 * j['heldout_prompts'] \
            or j['judge_wins'] + j['judge_ties'] + j['judge_losses'] != n \
            or 'the judging was stopped with Ctrl-C after %d of the %d' % (n, 200 * j['heldout_prompts']) not in card \
            or not cv or cv.get('status') != 'stopped':
        fail('judge stopped with Ctrl-C: judge_stopped %r, %d judged, card %r, status %r'
             % (j.get('judge_stopped'), n, card[-200:], cv and cv.get('status')))
    else:
        print('judge stopped with Ctrl-C after %d samples: model and card kept, run stopped' % n, flush=True)


def main():
    qkv = qkv_cli.qkv_path()
    with tempfile.TemporaryDirectory() as tmp:
        test_judge(qkv, tmp)
    return finish()


if __name__ == '__main__':
    sys.exit(main())
