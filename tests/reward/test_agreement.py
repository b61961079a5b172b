#!/usr/bin/env python3
# test_agreement.py - suite 'reference': `agreement` through the qkv binary against a NumPy
# computation of the same figures from the orders given.
#
# Three annotators rank the same candidates (fixed seeds give the same completions) of two
# prompts with ties in several places; a third prompt is ranked by one annotator only (it
# must not count); a fourth pair of rankings shares only one completion (nothing to compare).
# Per annotator pair and per annotator: concordant, discordant, ties, agreement and Kendall's
# tau-b pooled over prompts, recomputed with NumPy from sign matrices. A completion repeated in
# a ranking is one item when its repeats share a rank, none when not. Bad input: filters that
# match nothing give one error line and a non-zero exit.
# Usage: test_agreement.py QKV_BINARY

import math
import os
import shutil
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'ref'))
import refenv  # noqa: E402

np = refenv.need('numpy')
import qkv_cli  # noqa: E402

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print('FAIL: ' + msg, flush=True)


def ranks_of(order, k):
    """'1 2=3 4' -> ranks by candidate (1 = best, a tie shares the rank of its group's place)."""
    r = [0] * k
    for place, grp in enumerate(order.split(), start=1):
        for c in grp.split('='):
            r[int(c) - 1] = place
    return r


def pair_signs(r):
    r = np.asarray(r)
    iu = np.triu_indices(len(r), 1)
    return np.sign(r[iu[0]] - r[iu[1]])


def reference(sa, sb):
    sa, sb = np.concatenate(sa), np.concatenate(sb)
    n0 = len(sa)
    c = int(np.sum(sa * sb > 0))
    d = int(np.sum(sa * sb < 0))
    n1, n2 = int(np.sum(sa == 0)), int(np.sum(sb == 0))
    den = (n0 - n1) * (n0 - n2)
    tau = (c - d) / math.sqrt(den) if den > 0 else None
    same = int(np.sum(sa == sb))
    return {'item_pairs': n0, 'concordant': c, 'discordant': d, 'agreement': same / n0 if n0 else None,
            'tau_b': tau}


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-9


def main():
    qkv = qkv_cli.qkv_path()
    tmp = qkv_cli.scratch_dir('qkv-agree-')
    db = os.path.join(tmp, 'q.db')
    # (prompt, seed, k, {annotator: order})
    plan = [
        ('The cat', 11, 4, {'ann': '1 2=3 4', 'bob': '2 1 3 4', 'cy': '4=3 2=1'}),
        ('A dog', 12, 3, {'ann': '3 1 2', 'bob': '3 1=2', 'cy': '1 2 3'}),
        ('Alone', 13, 3, {'ann': '1 2 3'}),
    ]
    texts = {}
    for prompt, seed, k, orders in plan:
        for who, order in orders.items():
            rk, od = qkv_cli.json_cmds(qkv, 'builtin', ['rank "%s" k=%d max=4 seed=%d' % (prompt, k, seed),
                                                        'order ' + order], db, extra=['--annotator', who])
            got = [c['text'] for c in rk['candidates']]
            texts.setdefault(prompt, got)
            check(got == texts[prompt], '%s: the same seeds give the same completions' % prompt)
            check(len(set(got)) == k, '%s: the completions differ (%r)' % (prompt, got))
    # two rankings of one prompt with different completions: no shared pair of completions
    for who, seed in (('ann', 21), ('bob', 22)):
        qkv_cli.json_cmds(qkv, 'builtin', ['rank "Other" k=2 max=6 seed=%d' % seed, 'order 1 2'], db,
                          extra=['--annotator', who])

    # "Other" is ranked by two annotators (shared_prompts counts it: it said 2, "ranked by more than one
    # annotator" of 3) without two completions in common (compared_prompts leaves it out), and the text says so
    (ag,) = qkv_cli.json_cmds(qkv, None, ['agreement'], db)
    keys = ('rankings', 'prompts', 'shared_prompts', 'compared_prompts')
    check([ag.get(k) for k in keys] == [9, 4, 3, 2], 'counts: %r' % {k: ag.get(k) for k in keys})
    p = qkv_cli.run(qkv, ['--db', db, '-e', 'agreement'])
    check(p.stdout.startswith('9 rankings of 4 prompts, 3 ranked by more than one annotator (2 of them with two or '
                              'more completions in common, which agreement compares)\n'), 'text: %r' % p.stdout[:200])
    # one prompt: singular ("2 rankings of 1 prompts")
    p = qkv_cli.run(qkv, ['--db', db, '-e', 'agreement text=Other'])
    check(p.stdout.startswith('2 rankings of 1 prompt, 1 ranked by more than one annotator'), 'text, one prompt: %r'
          % p.stdout[:200])
    signs = {}
    for prompt, _seed, k, orders in plan:
        for who, order in orders.items():
            signs.setdefault(who, {})[prompt] = pair_signs(ranks_of(order, k))
    names = ['ann', 'bob', 'cy']
    by_pair = {(p['a'], p['b']): p for p in ag['pairs']}
    check(sorted(by_pair) == [('ann', 'bob'), ('ann', 'cy'), ('bob', 'cy')], 'pairs: %r' % sorted(by_pair))
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = [p for p in signs[a] if p in signs[b]]
            want = reference([signs[a][p] for p in shared], [signs[b][p] for p in shared])
            got = by_pair.get((a, b), {})
            for key in ('item_pairs', 'concordant', 'discordant'):
                check(got.get(key) == want[key], '%s/%s %s: qkv %r, numpy %r' % (a, b, key, got.get(key), want[key]))
            for key in ('agreement', 'tau_b'):
                check(close(got.get(key), want[key]), '%s/%s %s: qkv %r, numpy %r'
                      % (a, b, key, got.get(key), want[key]))
            check(got.get('prompts') == 2, '%s/%s prompts: %r' % (a, b, got.get('prompts')))
    by_ann = {x['annotator']: x for x in ag['annotators']}
    for a in names:
        others = [b for b in names if b != a]
        sa, sb = [], []
        for b in others:
            for p in signs[a]:
                if p in signs[b]:
                    sa.append(signs[a][p])
                    sb.append(signs[b][p])
        want = reference(sa, sb)
        got = by_ann.get(a, {})
        for key in ('agreement', 'tau_b'):
            check(close(got.get(key), want[key]), 'annotator %s %s: qkv %r, numpy %r' % (a, key, got.get(key), want[key]))
    check(by_ann.get('ann', {}).get('rankings') == 4, 'ann has 4 rankings: %r' % by_ann.get('ann'))

    # repeated completions (greedy candidates): a text ranked the same wherever it repeats is one
    # item; one whose repeats are ranked apart is left out. Texts A B A C: ann 2 1=3 4 (A second),
    # bob 4 1=3 2 (A second): A, B and C are three items, every pair of them discordant; dan ranks
    # A's repeats apart (1 2 3 4): only B and C compare with him.
    ddb = os.path.join(tmp, 'dup.db')
    qkv_cli.new_db(qkv, ddb)
    con = sqlite3.connect(ddb)
    texts4 = [' A', ' B', ' A', ' C']
    for who, order in (('ann', '2 1=3 4'), ('bob', '4 1=3 2'), ('dan', '1 2 3 4'), (None, '1 2 3 4')):
        qkv_cli.insert_ranking(con, 'P', texts4, ranks_of(order, 4), annotator=who)
    con.commit()
    con.close()
    (dup,) = qkv_cli.json_cmds(qkv, None, ['agreement'], ddb)
    dp = {(p['a'], p['b']): p for p in dup['pairs']}
    ab, ad = dp.get(('ann', 'bob'), {}), dp.get(('ann', 'dan'), {})
    check((ab.get('item_pairs'), ab.get('concordant'), ab.get('discordant')) == (3, 0, 3),
          'repeated completions ranked together are one item: %r' % ab)
    # ann: B 1, C 3; dan: B 2, C 4: one pair, concordant
    check((ad.get('item_pairs'), ad.get('concordant'), ad.get('discordant')) == (1, 1, 0),
          'a text whose repeats are ranked apart is left out: %r' % ad)
    # rankings without an annotator: null in JSON, as rankings gives it (it was "")
    check(None in [x['annotator'] for x in dup['annotators']] and
          any(p['a'] is None or p['b'] is None for p in dup['pairs']), 'no annotator is null: %r' % dup['annotators'])

    # annotator=ann: ann against the others (it kept ann's rankings alone, so compared nothing):
    # the pairs with ann as in the whole table, bob and cy against ann only
    (one,) = qkv_cli.json_cmds(qkv, None, ['agreement annotator=ann'], db)
    check([one.get(k) for k in keys] == [9, 4, 3, 2], 'annotator=ann counts: %r' % {k: one.get(k) for k in keys})
    one_pairs = {(p_['a'], p_['b']): p_ for p_ in one['pairs']}
    check(sorted(one_pairs) == [('ann', 'bob'), ('ann', 'cy')], 'annotator=ann pairs: %r' % sorted(one_pairs))
    for key, p_ in one_pairs.items():
        check(p_ == by_pair.get(key), 'annotator=ann pair %s equals the whole table\'s: %r, %r' % (key, p_, by_pair.get(key)))
    one_ann = {x['annotator']: x for x in one['annotators']}
    check(one_ann.get('ann') == by_ann.get('ann'), 'annotator=ann: ann as in the whole table: %r' % one_ann.get('ann'))
    for b in ('bob', 'cy'):
        want = reference([signs[b][p_] for p_ in signs[b] if p_ in signs['ann']],
                         [signs['ann'][p_] for p_ in signs[b] if p_ in signs['ann']])
        got = one_ann.get(b, {})
        check(got.get('item_pairs') == want['item_pairs'] and close(got.get('agreement'), want['agreement']) and
              close(got.get('tau_b'), want['tau_b']), 'annotator=ann: %s against ann only: qkv %r, numpy %r' % (b, got, want))
    p = qkv_cli.run(qkv, ['--db', db, '-e', 'agreement annotator=nobody'])
    check(p.returncode != 0 and p.stderr.startswith('error: agreement: no rankings by nobody match'),
          'annotator=nobody: exit %d, %r' % (p.returncode, p.stderr))
    # filters matching nothing are an error
    p = qkv_cli.run(qkv, ['--db', db, '-e', 'agreement since=2999-01-01'])
    check(p.returncode != 0 and p.stderr.startswith('error: agreement: no rankings match'),
          'no rankings: exit %d, %r' % (p.returncode, p.stderr))
    qkv_cli.new_db(qkv, os.path.join(tmp, 'empty.db'))
    p = qkv_cli.run(qkv, ['--db', os.path.join(tmp, 'empty.db'), '-e', 'agreement'])
    check(p.returncode != 0 and 'no rankings' in p.stderr, 'empty database: %r' % p.stderr)
    p = qkv_cli.run(qkv, ['--db', os.path.join(tmp, 'missing.db'), '-e', 'agreement'])
    check(p.returncode != 0 and 'no database at' in p.stderr and not os.path.exists(os.path.join(tmp, 'missing.db')),
          'a database that does not exist: %r' % p.stderr)
    shutil.rmtree(tmp, ignore_errors=True)

    if failures:
        print('%d failure(s)' % len(failures))
        return 1
    print('agreement: 3 pairs and 3 annotators equal NumPy')
    return 0


if __name__ == '__main__':
    sys.exit(main())
