#!/usr/bin/env python3
"""test_cmd_db.py - the data commands through the real qkv binary, headless.

Every generation is logged; history (each filter) /show/replay (identical, and different after the
model file was rewritten); rank/note/order/skip with ties, notes after order, and the
annotator from --annotator, QKV_ANNOTATOR and `set annotator`; exports parsed with Python's
json and csv modules with exactly the documented fields; a hostile prompt stored and
exported verbatim; an unfinished ranking stores nothing; a qkv killed just after order was given
(the ranking whole or not at all; QKV_KILL_SEED repeats the delays) and while generating candidates;
two qkv processes logging at once; databases qkv must not touch; listing rankings (filters, ties,
show ranking=ID) and no half ranking listed after a kill; the element type of a quantized model's
weights in a run's model_arch.

Usage: test_cmd_db.py QKV_BINARY
"""
import csv
import hashlib
import itertools
import json
import os
import stat
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

QKV = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', '..', 'build', 'app', 'qkv')
TMP = tempfile.mkdtemp(prefix='qkv-cmddb-')
failures = 0

RUN_KEYS = ['run_id', 'created', 'kind', 'parent_id', 'annotator', 'qkv_version', 'threads', 'kv', 'model_path',
            'model_arch', 'model_sha256', 'prompt', 'template', 'mode', 'exemplars', 'temperature', 'top_k',
            'top_p', 'seed', 'max_tokens', 'n_alts', 'stop_at_eos', 'truncate', 'prompt_ids', 'n_truncated',
            'text', 'ids', 'logprobs', 'alts', 'prefill_s', 'decode_s', 'stop_reason']
RANKING_KEYS = ['ranking_id', 'created', 'annotator', 'note', 'qkv_version', 'prompt', 'k', 'order', 'candidates']
RANK_KEYS = ['ranking_pending', 'prompt', 'chat_user', 'k', 'candidates', 'identical', 'same_text']
CAND_KEYS = ['n', 'run_id', 'seed', 'text']
ORDER_KEYS = ['ranking_id', 'order', 'k', 'annotator', 'note']
EXPORT_KEYS = ['file', 'count', 'what', 'format']
RANKINGS_ROW_KEYS = ['ranking_id', 'created', 'annotator', 'note', 'prompt', 'k', 'order', 'candidates', 'chat_user']
SHOW_RANKING_KEYS = [k for k in RANKINGS_ROW_KEYS if k != 'chat_user'] + ['qkv_version']  # the whole prompt shown
HISTORY_KEYS = ['run_id', 'created', 'kind', 'annotator', 'model_path', 'model_arch', 'prompt', 'text', 'seed',
                'temperature', 'stop_reason', 'n_tokens', 'chat_user']

# quotes, newlines, tabs, control bytes, DEL, accents, CJK, emoji, BOM, a backslash-n that is not
# a newline, and SQL injection attempts
NASTY = ('He said "hi" and \'bye\'\n\tline 2\r\n\x01\x02\x1b[31m\x7f caf\u00e9 \u65e5\u672c \U0001F600 \ufeff '
         '\\n not-a-newline \'); DROP TABLE runs;-- "; DELETE FROM rankings; --')


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print('FAIL: ' + what, file=sys.stderr)
    return cond


def quote(s):
    """s as a double-quoted argument of the command language (C escapes)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '\\':
            out.append('\\\\')
        elif ch == '"':
            out.append('\\"')
        elif ch == '\n':
            out.append('\\n')
        elif ch == '\r':
            out.append('\\r')
        elif ch == '\t':
            out.append('\\t')
        elif o < 0x20 or o == 0x7f:
            out.append('\\x%02x' % o)
        else:
            out.append(ch)
    out.append('"')
    return ''.join(out)


def env(**extra):
    e = dict(os.environ)
    for k in ('QKV_DB', 'QKV_ANNOTATOR'):
        e.pop(k, None)
    e['HOME'] = os.path.join(TMP, 'home')
    e['XDG_DATA_HOME'] = os.path.join(TMP, 'xdg')
    e.update(extra)
    return e


def qkv(args, environ=None, timeout=300, stdin=None):
    return subprocess.run([QKV] + args, capture_output=True, timeout=timeout, env=environ or env(),
                          input=stdin)


def qjson(db, cmds, extra=(), environ=None, ok=True):
    """Run commands with --json; return (objects, stderr)."""
    args = list(extra) + (['--db', db] if db else []) + ['--json', '-e', '; '.join(cmds)]
    p = qkv(args, environ)
    out = p.stdout.decode('utf-8')
    err = p.stderr.decode('utf-8', 'replace')
    if ok and p.returncode != 0:
        raise SystemExit('qkv %s failed (%d): %s' % (' '.join(args)[:300], p.returncode, err))
    return [json.loads(l) for l in out.split("\n") if l.strip()], err


def keys_are(obj, keys, what):
    return check(isinstance(obj, dict) and sorted(obj) == sorted(keys),
                 '%s: keys %s, expected %s' % (what, sorted(obj) if isinstance(obj, dict) else obj, sorted(keys)))


def jsonl(path):
    with open(path, 'rb') as f:
        data = f.read()
    check(data == b'' or data.endswith(b'\n'), path + ': last line has no newline')
    return [json.loads(l) for l in data.decode('utf-8').split('\n') if l]


def db_count(path, table):
    c = sqlite3.connect(path)
    try:
        return c.execute('SELECT count(*) FROM ' + table).fetchone()[0]
    finally:
        c.close()


def integrity(path):
    c = sqlite3.connect(path)
    try:
        return c.execute('PRAGMA integrity_check').fetchone()[0]
    finally:
        c.close()


def main():
    db = os.path.join(TMP, 'main.db')

    # ---- where the database lives: XDG default (created), QKV_DB, --db over QKV_DB
    qjson(None, ['generate "a" max=1'])
    check(os.path.exists(os.path.join(TMP, 'xdg', 'qkv', 'qkv.db')), 'default $XDG_DATA_HOME/qkv/qkv.db created')
    envdb = os.path.join(TMP, 'env.db')
    qjson(None, ['generate "a" max=1'], environ=env(QKV_DB=envdb))
    check(db_count(envdb, 'runs') == 1, 'QKV_DB used')
    qjson(db, ['generate "a" max=1'], environ=env(QKV_DB=envdb))
    check(db_count(envdb, 'runs') == 1 and db_count(db, 'runs') == 1, '--db wins over QKV_DB')
    p = qkv(['-e', 'generate "a" max=1'], environ=env(XDG_DATA_HOME='', HOME=os.path.join(TMP, 'h2')))
    check(p.returncode == 0 and os.path.exists(os.path.join(TMP, 'h2', '.local', 'share', 'qkv', 'qkv.db')),
          'default ~/.local/share/qkv/qkv.db')

    # ---- every generation is logged, and show returns it verbatim, hostile prompt included
    (g, s), _ = qjson(db, ['generate %s max=6 seed=77 temperature=0.8 top_k=20 top_p=0.9' % quote(NASTY),
                           'show 2'], extra=['--annotator', 'ann1'])
    check(g['run_id'] == 2, 'generate logs run 2, got %s' % g.get('run_id'))
    keys_are(s, RUN_KEYS, 'show')
    check(s['prompt'] == NASTY, 'show: prompt verbatim: %r' % s['prompt'])
    check(s['ids'] == g['ids'] and s['logprobs'] == g['logprobs'], 'show: ids and logprobs as generated')
    check(s['text'] == g['text'], 'show: text as generated')
    check(s['seed'] == 77 and s['top_k'] == 20 and abs(s['temperature'] - 0.8) < 1e-6 and abs(s['top_p'] - 0.9) < 1e-6
          and s['max_tokens'] == 6, 'show: decoding parameters')
    check(s['annotator'] == 'ann1' and s['kind'] == 'generate' and s['model_path'] == 'builtin'
          and s['model_arch'] == 'gpt2' and len(s['model_sha256'] or '') == 64, 'show: provenance %r' % {
              k: s[k] for k in ('annotator', 'kind', 'model_path', 'model_sha256')})
    check(len(s['alts']) == len(s['ids']) and all(len(a) == s['n_alts'] for a in s['alts']), 'show: alternatives')
    check(s['qkv_version'] and s['threads'] >= 1 and s['stop_reason'] == 'length', 'show: version, threads, stop')

    # ---- history
    (h,), _ = qjson(db, ['history 10 DROP'])
    check(len(h['runs']) == 1 and h['runs'][0]['run_id'] == 2, 'history filter by text')
    keys_are(h['runs'][0], HISTORY_KEYS, 'history row')
    (h,), _ = qjson(db, ['history 1'])
    check(len(h['runs']) == 1 and h['runs'][0]['run_id'] == 2, 'history newest first, limited')
    (h,), _ = qjson(db, ['history annotator=ann1'])
    check([r['run_id'] for r in h['runs']] == [2], 'history annotator=')
    # a filter text is read whole, a NUL byte in it too (it ended the text there: "lait\x00zzz"
    # found "lait", "\x00zzz" every run, before 2026-12-07)
    ndb = os.path.join(TMP, 'nul-filter.db')
    qjson(ndb, ['generate "caf\\xc3\\xa9 au lait" max=1 seed=1', 'generate "a\\x00b" max=1 seed=1',
                'rank "a\\x00b" k=2 max=1 seed=1', 'order 1 2'], extra=['--model', 'builtin'])
    for q, want in (('history "lait\\x00zzz"', []), ('history "a\\x00c"', []), ('history "\\x00zzz"', []),
                    ('history "a\\x00b"', [4, 3, 2]), ('rankings "\\x00zzz"', []), ('rankings "a\\x00b"', [1])):
        (h,), _ = qjson(ndb, [q])
        got = [r.get('run_id', r.get('ranking_id')) for r in h.get('runs', h.get('rankings', []))]
        check(got == want, '%s: %r, expected %r' % (q, got, want))

    # ---- replay: greedy and seeded are identical
    (g0,), _ = qjson(db, ['generate "The cat" max=8 temperature=0'])
    (r1, r2), _ = qjson(db, ['replay %d' % g0['run_id'], 'replay 2'])
    check(r1['identical'] is True and r1['first_difference'] is None, 'replay greedy identical')
    check(r1['max_logprob_diff'] == 0 and r2['max_logprob_diff'] == 0 and r1['logprobs'] == g0['logprobs'],
          'replay: the same log-probabilities to the bit: %s, %s' % (r1['max_logprob_diff'], r2['max_logprob_diff']))
    check(r2['identical'] is True and r2['text'] == g['text'], 'replay seeded identical')
    check(r2['replay_of'] == 2 and r2['run_id'] > 0, 'replay logged')
    (s2,), _ = qjson(db, ['show %d' % r2['run_id']])
    check(s2['kind'] == 'replay' and s2['parent_id'] == 2 and s2['prompt'] == NASTY, 'replay run recorded')
    # a replay of a truncated run logs the run's whole prompt and its count of tokens left out (it
    # logged the kept tokens' text and n_truncated 0, before 2026-12-07)
    long = 'abcdefghij ' * 60
    (gt,), _ = qjson(db, ['generate "%s" max=10 seed=1 truncate=true' % long])
    (rt,), _ = qjson(db, ['replay %d' % gt['run_id']])
    (st_, sr_), _ = qjson(db, ['show %d' % gt['run_id'], 'show %d' % rt['run_id']])
    check(gt['n_truncated'] > 0 and rt['identical'] is True and sr_['prompt'] == st_['prompt'] == long
          and sr_['n_truncated'] == st_['n_truncated'] == gt['n_truncated'] and sr_['prompt_ids'] == st_['prompt_ids'],
          'the replay of a truncated run: prompt %d chars, n_truncated %r (the run: %d chars, %r)'
          % (len(sr_['prompt']), sr_['n_truncated'], len(st_['prompt']), st_['n_truncated']))
    # a stored run holding parameters generate refuses (an edited or damaged database) is not
    # replayed: it ran and logged a run of temperature -5, top_k -9 and seed -1
    for col, val, want in (('temperature', -5, 'temperature=-5'), ('top_k', -9, 'top_k=-9'), ('seed', -1, 'seed='),
                           ('top_p', 2, 'top_p=2'), ('max_tokens', 1 << 21, 'max=2097152')):
        edb = os.path.join(TMP, 'edited.db')
        shutil.copy(db, edb)
        con = sqlite3.connect(edb)
        con.execute('PRAGMA ignore_check_constraints = 1')
        con.execute('UPDATE runs SET %s = ? WHERE id = 2' % col, (val,))
        con.commit()
        con.close()
        n0 = db_count(edb, 'runs')
        _, err = qjson(edb, ['replay 2'], ok=False)
        check(err.startswith('error: replay: run 2 holds ' + want) and db_count(edb, 'runs') == n0,
              'replay of a run edited to %s=%s: %s' % (col, val, err))

    # a run whose stored text was edited, its tokens not: the text says what JSON does (it said
    # "DIFFERENT from token 0" beside first_difference null)
    edb = os.path.join(TMP, 'edited.db')
    shutil.copy(db, edb)
    con = sqlite3.connect(edb)
    con.execute("UPDATE runs SET output = 'EDITED' WHERE id = 2")
    con.commit()
    con.close()
    (rj,), _ = qjson(edb, ['replay 2'])
    p = qkv(['--db', edb, '-e', 'replay 2'])
    first_line = p.stdout.decode('utf-8', 'replace').split('\n')[0]
    check(rj['identical'] is False and rj['first_difference'] is None and
          first_line.endswith('DIFFERENT: the same tokens, but the run\'s stored text is not theirs'),
          'replay of a run whose text alone was edited: %r, %r' % (rj['first_difference'], first_line))

    # ---- rank / note / order, annotator from --annotator, QKV_ANNOTATOR and set annotator
    k = 4
    (rk, nt, od), _ = qjson(db, ['rank %s k=%d max=5 seed=100' % (quote(NASTY), k),
                                 'note %s' % quote('a "note"\nwith \'); DROP TABLE rankings;--'),
                                 'order 3 1 2=4'], environ=env(QKV_ANNOTATOR='alice'))
    keys_are(rk, RANK_KEYS, 'rank')
    check(rk['ranking_pending'] is True and rk['prompt'] == NASTY and rk['k'] == k, 'rank fields')
    check(len(rk['candidates']) == k, 'rank: k candidates')
    for i, c in enumerate(rk['candidates']):
        keys_are(c, CAND_KEYS, 'rank candidate')
        check(c['n'] == i + 1 and c['seed'] == 100 + i, 'candidate %d: n and seed+i' % (i + 1))
    keys_are(od, ORDER_KEYS, 'order')
    check(od['order'] == [[3], [1], [2, 4]] and od['annotator'] == 'alice', 'order: groups and annotator')
    check(od['note'] == 'a "note"\nwith \'); DROP TABLE rankings;--', 'order: the note')
    cand_runs = [c['run_id'] for c in rk['candidates']]
    (s3,), _ = qjson(db, ['show %d' % cand_runs[0]])
    check(s3['kind'] == 'rank' and s3['seed'] == 100, 'rank candidates are logged runs of kind rank')

    # random seeds are recorded; set annotator; --annotator
    # typed 3=2: the answer lists a tie group in candidate order, as rankings does
    (rk2, _a, od2), _ = qjson(db, ['rank "Tell me" k=3 max=4', 'set annotator bob', 'order 3=2 1'])
    seeds = [c['seed'] for c in rk2['candidates']]
    check(len(set(seeds)) == 3, 'random seeds differ: %s' % seeds)
    (s4,), _ = qjson(db, ['show %d' % rk2['candidates'][1]['run_id']])
    check(s4['seed'] == seeds[1], 'random seed recorded')
    (r4,), _ = qjson(db, ['replay %d' % rk2['candidates'][1]['run_id']])
    check(r4['identical'] is True, 'a random-seed candidate replays identically')
    check(od2['annotator'] == 'bob' and od2['order'] == [[2, 3], [1]], 'set annotator; ties first')
    (_r, od3), _ = qjson(db, ['rank "Third" k=2 max=3 temperature=0', 'order 2 1'], extra=['--annotator', 'carol'])
    check(od3['annotator'] == 'carol', '--annotator')
    # an empty annotator is none (stored NULL, as agreement reads it), however given; --annotator ""
    # overrides $QKV_ANNOTATOR (it was stored '', a name of its own beside NULL, before 2026-12-07)
    adb = os.path.join(TMP, 'empty-annotator.db')
    for cmds, extra, environ in ((['rank "E1" k=2 max=2 seed=1', 'order 1 2'], ['--annotator', ''], env(QKV_ANNOTATOR='zed')),
                                 (['rank "E2" k=2 max=2 seed=1', 'order 1 2'], [], env(QKV_ANNOTATOR='')),
                                 (['set annotator ""', 'rank "E3" k=2 max=2 seed=1', 'order 1 2'], ['--annotator', 'x'], None)):
        qjson(adb, cmds, extra=extra, environ=environ)
    con = sqlite3.connect(adb)
    stored = con.execute('SELECT annotator FROM rankings UNION ALL SELECT DISTINCT annotator FROM runs').fetchall()
    con.close()
    check(stored and all(a is None for (a,) in stored), 'an empty annotator is stored as none: %r' % stored)

    # ---- a note typed after order goes with the ranking just stored; note ranking=ID with any stored one
    ndb = os.path.join(TMP, 'notes.db')
    (_r, on, n1, s1, n2, s2), _ = qjson(ndb, ['rank "Note me" k=3 max=2 seed=1', 'order 2 1 3',
                                                'note "typed after order"', 'show ranking=1',
                                                'note %s' % quote(NASTY), 'show ranking=1'])
    keys_are(n1, ['note', 'ranking_id'], 'note after order')
    check(n1 == {'note': 'typed after order', 'ranking_id': on['ranking_id']} and s1['note'] == 'typed after order',
          'note after order attaches to the ranking just stored: %r, shown %r' % (n1, s1.get('note')))
    check(n2['note'] == NASTY and s2['note'] == NASTY and s2['order'] == [[2], [1], [3]],
          'a second note replaces the first, verbatim: %r' % s2.get('note'))
    (_r, _o), _ = qjson(ndb, ['rank "Second" k=2 max=2 seed=3', 'order 1 2'])
    (n3, ls, sh3), _ = qjson(ndb, ['note ranking=1 "changed later"', 'rankings', 'show ranking=1'])
    check(n3 == {'note': 'changed later', 'ranking_id': 1} and sh3['note'] == 'changed later',
          'note ranking=ID in another session: %r, shown %r' % (n3, sh3.get('note')))
    check([(r_['ranking_id'], r_['note']) for r_ in ls['rankings']] == [(2, None), (1, 'changed later')],
          'rankings lists the notes: %r' % [(r_['ranking_id'], r_['note']) for r_ in ls['rankings']])
    (_r, pn, on2), _ = qjson(ndb, ['rank "Third" k=2 max=2', 'note "while pending"', 'order 2 1'])
    check(pn == {'note': 'while pending', 'ranking_id': None} and on2['note'] == 'while pending',
          'a note while pending is stored by order: %r, %r' % (pn, on2['note']))
    (nr, sh4), _ = qjson(ndb, ['note ranking=#%d ""' % on2['ranking_id'], 'show ranking=%d' % on2['ranking_id']])
    check(nr['note'] is None and sh4['note'] is None, 'an empty note removes it: %r' % sh4.get('note'))
    # a note after a skipped ranking does not reach back to the one stored before it (it replaced
    # that ranking's note before 2026-12-06)
    sdb = os.path.join(TMP, 'skipnote.db')
    p = qkv(['--db', sdb, '-e', 'rank "Fourth" k=2 max=2; order 1 2; note "kept"; rank "Fifth" k=2 max=2; skip; '
             'note "after the skip"'])
    (sh5,), _ = qjson(sdb, ['show ranking=1'])
    check(p.returncode != 0 and b'no ranking pending or stored' in p.stderr and sh5['note'] == 'kept',
          'note after skip is refused, the earlier note kept: %r, %r' % (p.stderr[-200:], sh5.get('note')))
    ex = os.path.join(TMP, 'notes.jsonl')
    qjson(ndb, ['export rankings ' + ex])
    check([r_['note'] for r_ in jsonl(ex)] == ['changed later', None, None], 'the notes are exported: %r' %
          [r_['note'] for r_ in jsonl(ex)])
    p = qkv(['--db', ndb, '-e', 'note ranking=1 "in words"; rankings 5 words; show ranking=1'])
    out = p.stdout.decode('utf-8', 'replace')
    check(p.returncode == 0 and out.count('in words') == 3, 'the human forms of note, rankings and show: %r' % out)
    for cmds, msg in ((['note "nothing yet"'], 'no ranking pending'), (['note ranking=9 "x"'], 'no ranking 9'),
                      (['note ranking=x "x"'], "'x' is not a ranking id"), (['note'], 'note "TEXT"')):
        _, err = qjson(ndb, cmds, ok=False)
        check(msg in err, '%s: %s' % (cmds, err))
    check(db_count(ndb, 'rankings') == 3 and integrity(ndb) == 'ok', 'notes: three rankings, a sound file')

    # ---- bad orders keep the ranking pending; skip drops it
    objs, err = qjson(db, ['rank "p" k=3 max=2', 'order 1 2'], ok=False)
    check('candidate 3 is missing' in err, 'order must name every candidate: %s' % err)
    # its example names the three candidates there are (it named a fourth: "e.g. order 3 1 2=4")
    check('(e.g. order 3 1=2)' in err, 'the example is of 3 candidates: %s' % err)
    check('warning' in err and 'no ranking was stored (the candidates stay in the run log as runs' in err,
          'unfinished ranking warns: %s' % err)
    for bad, msg in (('order 1 1 2 3', 'named twice'), ('order 1 2 4', 'no candidate 4'),
                     ('order 1 2=', 'must join'), ('order 1 x 2 3', 'not a candidate'),
                     # a word with '=' that is no tie is no candidate (it was "unknown option 'extra'
                     # (options: 1, 2, ..., 9)")
                     ('order 1 2 3 extra=1', "order: 'extra=1' is not a candidate number")):
        objs, err = qjson(db, ['rank "p" k=3 max=2', bad], ok=False)
        check(msg in err, '%s: %s' % (bad, err))
    objs, _ = qjson(db, ['rank "p" k=2 max=2', 'skip'])
    sk = objs[1]
    check(sk == {'skipped': True, 'k': 2}, 'skip: %s' % sk)
    _, err = qjson(db, ['order 1 2'], ok=False)
    check('no ranking pending' in err, 'order without rank')
    _, err = qjson(db, ['rank "p" k=2 max=2', 'rank "q" k=2 max=2'], ok=False)
    check('pending' in err, 'rank while one is pending')
    check(db_count(db, 'rankings') == 3, 'only the 3 ordered rankings are stored, got %d' % db_count(db, 'rankings'))

    # ---- rankings: newest first, the order as `order` answers it (ties grouped), filters
    (ls,), _ = qjson(db, ['rankings'])
    rl = ls['rankings']
    check([r_['ranking_id'] for r_ in rl] == [od3['ranking_id'], od2['ranking_id'], od['ranking_id']],
          'rankings: newest first: %s' % [r_['ranking_id'] for r_ in rl])
    for r_ in rl:
        keys_are(r_, RANKINGS_ROW_KEYS, 'rankings row')
        for c in r_['candidates']:
            keys_are(c, ['n', 'run_id', 'rank'], 'rankings candidate')
    r1, r2 = rl[2], rl[1]
    check(r1['order'] == od['order'] and r1['prompt'] == NASTY and r1['annotator'] == 'alice' and
          r1['note'] == od['note'] and r1['k'] == 4, 'rankings: the first ranking as stored: %r' % r1)
    check([(c['n'], c['rank'], c['run_id']) for c in r1['candidates']] ==
          [(3, 1, cand_runs[2]), (1, 2, cand_runs[0]), (2, 3, cand_runs[1]), (4, 3, cand_runs[3])],
          'rankings: candidates best first, 2 and 4 tied: %r' % r1['candidates'])
    check(r2['order'] == [[2, 3], [1]] == od2['order'] and [c['rank'] for c in r2['candidates']] == [1, 1, 2],
          'rankings: a tie for first: %r' % r2['order'])
    ids = lambda o: [r_['ranking_id'] for r_ in o['rankings']]
    one, two, three = od['ranking_id'], od2['ranking_id'], od3['ranking_id']
    for cmd, want in (('rankings 1', [three]), ('rankings tell', [two]), ('rankings BOB', [two]),
                      ('rankings NOTE', [one]), ('rankings "drop table"', [one]), ('rankings "%"', []),
                      ('rankings 5 e annotator=bob', [two]), ('rankings annotator=alice', [one]),
                      ('rankings model=builtin', [three, two, one]), ('rankings model=/nonexistent', []),
                      ('rankings since=9999-01-01', []), ('rankings until=2000-01-01', []),
                      ('rankings 2 since=2000-01-01 until=9999-12-31', [three, two])):
        (o,), _ = qjson(db, [cmd])
        check(ids(o) == want, '%s: %s, expected %s' % (cmd, ids(o), want))
    p = qkv(['--db', db, '-e', 'rankings'])
    out = p.stdout.decode('utf-8', 'replace')
    check(p.returncode == 0 and '3 1 2=4' in out and '2=3 1' in out and 'note: a "note"' in out
          and len(out.splitlines()) == 3, 'rankings: the text form: %r' % out)
    # listings that find nothing say so as probe runs does (list_none): "match" under a filter
    for cmd, want in (('rankings nothing-like-this', b'no rankings match\n'), ('history kind=experiment', b'no runs match\n'),
                      ('history 5 nothing-like-this', b'no runs match\n'), ('experiments annotator=nobody',
                                                                           b'no experiments match\n'),
                      ('experiments', b'no experiments yet\n')):
        p = qkv(['--db', db, '-e', cmd])
        check(p.returncode == 0 and p.stdout == want, '%s: none found: %r, expected %r' % (cmd, p.stdout, want))
    # show ranking=ID: the candidates best first with their completions
    (sr,), _ = qjson(db, ['show ranking=%d' % one])
    keys_are(sr, SHOW_RANKING_KEYS, 'show ranking')
    for c in sr['candidates']:
        keys_are(c, ['n', 'run_id', 'rank', 'text'], 'show ranking candidate')
    by_n = {c['n']: c['text'] for c in rk['candidates']}
    check(sr['order'] == od['order'] and sr['prompt'] == NASTY and
          [c['text'] for c in sr['candidates']] == [by_n[n] for n in (3, 1, 2, 4)], 'show ranking: completions best first')
    p = qkv(['--db', db, '-e', 'show ranking=#%d' % two])
    out = p.stdout.decode('utf-8', 'replace')
    check(p.returncode == 0 and 'order 2=3 1' in out and out.count('rank 1 (tie)') == 2, 'show ranking text: %r' % out)
    # a NUL byte does not end the human form (the TUI's panes take it as a C string)
    p = qkv(['--db', os.path.join(TMP, 'nul.db'), '-e', 'generate "nul\\0here" max=1; history 1; show 1'])
    out = p.stdout.decode('utf-8', 'replace')
    check(p.returncode == 0 and out.count('nul\u2400here') == 2,
          'NUL shown as \u2400 in history and show: %r' % out)
    for cmd, msg in (('show ranking=99', 'no ranking 99'), ('show ranking=x', "'x' is not a ranking id"),
                     ('show 1 ranking=1', 'not both'), ('show', 'show ranking=ID'), ('rankings 0', 'at least 1'),
                     ('rankings a b', 'one filter text'), ('rankings kind=rank', "unknown option 'kind'"),
                     ('rankings since=yesterday', 'not an ISO date'),
                     # a kind qkv does not log is refused (it listed nothing: "no runs match")
                     ('history kind=nothing', 'kind=nothing: runs are of the kinds generate, rank, replay, '
                      'experiment and judge'), ('export runs %s kind=ranks' % os.path.join(TMP, 'k.jsonl'), 'kind=ranks')):
        _, err = qjson(db, [cmd], ok=False)
        check(err.startswith('error: ') and msg in err, '%s: %s' % (cmd, err))

    # ---- exports, parsed with Python, with exactly the documented fields
    f = lambda n: os.path.join(TMP, n)
    objs, _ = qjson(db, ['export pairs %s' % f('trl.jsonl'), 'export pairs %s format=hh' % f('hh.jsonl'),
                         'export rankings %s' % f('rankings.jsonl'), 'export runs %s' % f('runs.jsonl'),
                         'export runs %s format=csv' % f('runs.csv')])
    for o in objs:
        keys_are(o, EXPORT_KEYS + (['identical'] if o.get('what') == 'pairs' else []), 'export')
    # pairs: ranking 1 (3 1 2=4): 6 - 1 tie = 5; ranking 2 (2=3 1): 3 - 1 = 2; ranking 3 (greedy:
    # its two candidates are one text) none
    check([o['count'] for o in objs[:3]] == [7, 7, 3], 'export counts %s' % [o['count'] for o in objs])
    trl = jsonl(f('trl.jsonl'))
    check(len(trl) == 7, 'trl lines')
    for p_ in trl:
        keys_are(p_, ['prompt', 'chosen', 'rejected', 'margin'], 'trl pair')
    texts = {c['n']: c['text'] for c in rk['candidates']}
    want = [(3, 1, 1), (3, 2, 2), (3, 4, 2), (1, 2, 1), (1, 4, 1)]
    for (c, r_, m), p_ in zip(want, trl[:5]):
        check(p_['prompt'] == NASTY and p_['chosen'] == texts[c] and p_['rejected'] == texts[r_] and p_['margin'] == m,
              'trl pair %d>%d' % (c, r_))
    # a plain prompt whose text holds a chat template's markers is no chat prompt: listed, given as
    # chat_user and exported as the Human turn whole (they were cut to the text after the marker)
    mdb = f('markers.db')
    plain = ['Explain what the [INST] tag means in Llama 2 prompts.', 'Q: parse <|im_start|>user\nhello<|im_end|> here?']
    for pr_ in plain:
        (rk_, _), _ = qjson(mdb, ['rank %s k=2 max=3 temperature=1 seed=1' % quote(pr_), 'order 1 2'])
        check(rk_.get('chat_user', 'absent') is None, 'rank: a plain prompt has no chat_user: %r' % rk_.get('chat_user'))
    (lst, hist), _ = qjson(mdb, ['rankings', 'history 4'])
    check([r_['chat_user'] for r_ in lst['rankings']] == [None, None] and
          all(r_['chat_user'] is None for r_ in hist['runs']), 'plain prompts: chat_user null')
    p = qkv(['--db', mdb, '-e', 'rankings; history 4'])
    out = p.stdout.decode('utf-8', 'replace')
    check('chat: ' not in out and '"Explain what the [INST] tag means' in out, 'plain prompts listed whole: %r' % out)
    qjson(mdb, ['export pairs %s format=hh' % f('markers-hh.jsonl')])
    humans = sorted(json.loads(l)['chosen'].split('\n\nAssistant:')[0] for l in open(f('markers-hh.jsonl'), encoding='utf-8'))
    check(humans == sorted('\n\nHuman: ' + x for x in plain), 'HH: a plain prompt is the Human turn whole: %r' % humans)
    # text= chooses the rankings as reward train text= does (export had no such filter)
    (ex_,), _ = qjson(mdb, ['export pairs %s text="[INST] tag"' % f('markers-text.jsonl')])
    got_ = [json.loads(l)['prompt'] for l in open(f('markers-text.jsonl'), encoding='utf-8')]
    check(ex_['count'] == 1 and got_ == [plain[0]], 'export pairs text=: the matching ranking only: %r' % got_)
    # margin=K scales it as reward train margin=K does (TRL subtracts it in the loss); margin=0
    # leaves the field out, so TRL trains on reward train's default loss
    objs, _ = qjson(db, ['export pairs %s margin=0.5' % f('trl-half.jsonl'), 'export pairs %s margin=0' % f('trl-0.jsonl')])
    half, zero = jsonl(f('trl-half.jsonl')), jsonl(f('trl-0.jsonl'))
    check([p_['margin'] for p_ in half] == [0.5 * p_['margin'] for p_ in trl], 'trl margin=0.5: %r' % half[:2])
    check([list(p_) for p_ in zero] == [['prompt', 'chosen', 'rejected']] * len(trl) and
          [p_['chosen'] for p_ in zero] == [p_['chosen'] for p_ in trl], 'trl margin=0: %r' % zero[:1])
    for cmd, msg in (('export pairs %s margin=-1' % f('m.jsonl'), 'margin'),
                     ('export pairs %s format=hh margin=1' % f('m.jsonl'), 'margin= applies to export pairs format=trl'),
                     ('export runs %s margin=1' % f('m.jsonl'), 'margin= applies to export pairs format=trl')):
        _, err = qjson(db, [cmd], ok=False)
        check(err.startswith('error: ') and msg in err and not os.path.exists(f('m.jsonl')), '%s: %s' % (cmd, err))
    hh = jsonl(f('hh.jsonl'))
    for p_ in hh:
        keys_are(p_, ['chosen', 'rejected'], 'hh pair')
    t3 = texts[3][1:] if texts[3].startswith(' ') else texts[3]  # its leading space not doubled
    check(hh[0]['chosen'] == '\n\nHuman: ' + NASTY + '\n\nAssistant: ' + t3, 'hh transcript')
    rks = jsonl(f('rankings.jsonl'))
    check(len(rks) == 3, 'rankings lines')
    for r_ in rks:
        keys_are(r_, RANKING_KEYS, 'ranking')
        for c in r_['candidates']:
            keys_are(c, ['n', 'rank', 'run'], 'ranking candidate')
            keys_are(c['run'], RUN_KEYS, 'ranking candidate run')
    check(rks[0]['order'] == [[3], [1], [2, 4]] and rks[0]['prompt'] == NASTY and rks[0]['annotator'] == 'alice',
          'rankings export: order, prompt, annotator')
    check([c['n'] for c in rks[0]['candidates']] == [3, 1, 2, 4] and
          [c['rank'] for c in rks[0]['candidates']] == [1, 2, 3, 3], 'rankings export: candidates best first')
    runs = jsonl(f('runs.jsonl'))
    n_runs = db_count(db, 'runs')
    check(len(runs) == n_runs, 'runs export: every run')
    for r_ in runs:
        keys_are(r_, RUN_KEYS, 'run')
    check(any(r_['prompt'] == NASTY for r_ in runs), 'runs export: hostile prompt verbatim')
    with open(f('runs.csv'), newline='', encoding='utf-8', errors='surrogateescape') as fh:  # bytes verbatim
        rows = list(csv.reader(fh))
    check(rows[0] == RUN_KEYS, 'csv header %s' % rows[0][:5])
    check(len(rows) == n_runs + 1, 'csv rows')
    check(rows[2][RUN_KEYS.index('prompt')] == NASTY, 'csv: hostile prompt verbatim')
    # filters
    objs, _ = qjson(db, ['export pairs %s annotator=bob' % f('bob.jsonl'),
                         'export rankings %s since=9999-01-01' % f('none.jsonl'),
                         'export runs %s kind=rank' % f('rank.jsonl'),
                         'export runs %s model=builtin until=2000-01-01' % f('old.jsonl')])
    check([o['count'] for o in objs] == [2, 0, len([r_ for r_ in runs if r_['kind'] == 'rank']), 0],
          'export filters %s' % [o['count'] for o in objs])
    check(os.path.getsize(f('none.jsonl')) == 0, 'an empty export is an empty file')
    check(not [n for n in os.listdir(TMP) if '.tmp-' in n], 'no temporary export files left')
    # an export given the database's own name (or another name of it, or its journal) is refused:
    # before 2026-12-06 it replaced the database with the export
    runs_before = db_count(db, 'runs')
    os.symlink(db, f('alias.db'))
    for target in (db, db + '-wal', f('alias.db'), os.path.join(TMP, '.', os.path.basename(db))):
        for cmd in ('export runs %s', 'export rankings %s'):
            p = qkv(['--db', db, '-e', cmd % target])
            check(p.returncode != 0 and b"it is qkv's database" in p.stderr,
                  '%s over the database is refused: %s' % (cmd % target, p.stderr.decode()[:200]))
    # ... also by the first command of a session, before anything opened the database (export
    # gguf opens none: it replaced the database, its -wal and -journal, until 2026-12-06)
    for target in (db, db + '-wal', db + '-journal', f('alias.db')):
        p = qkv(['--db', db, '--model', 'builtin', '-e', 'export gguf %s' % target])
        check(p.returncode != 0 and b"it is qkv's database" in p.stderr,
              'export gguf %s as the first command is refused: %s' % (target, p.stderr.decode()[:200]))
    check(db_count(db, 'runs') == runs_before, 'the database survives exports aimed at it')
    # targets that are not regular files: a FIFO is refused, as a device is (the rename replaced
    # the node itself: /dev/null, run as root; not tried here, where a regression would do it
    # again), a symbolic link is written through (it became a file, the file it named
    # untouched), a link to nothing is refused
    fifo = f('fifo')
    os.mkfifo(fifo)
    with open(f('target.jsonl'), 'w') as fh:
        fh.write('old\n')
    os.symlink('target.jsonl', f('link.jsonl'))
    os.symlink('nowhere.jsonl', f('dangling.jsonl'))
    for target, want in ((fifo, b'it is a FIFO, not a regular file'), (f('dangling.jsonl'), b'a symbolic link to nothing')):
        p = qkv(['--db', db, '-e', 'export runs %s' % target])
        check(p.returncode != 0 and want in p.stderr, 'export runs to %s is refused: %s' % (target, p.stderr.decode()[:200]))
    check(stat.S_ISFIFO(os.lstat(fifo).st_mode), 'the FIFO stays')
    p = qkv(['--db', db, '-e', 'export runs %s' % f('link.jsonl')])
    check(p.returncode == 0 and os.path.islink(f('link.jsonl')) and len(jsonl(f('target.jsonl'))) == len(runs),
          'export runs through a symbolic link writes the file it names, the link kept: %s' % p.stderr.decode()[:200])

    # ---- a model file: replay loads it, its hash is recorded, a changed file is noticed
    mdir = f('tiny')
    p = qkv(['--db', db, '-e', 'new-model gpt2 layers=1 heads=2 d=32 ctx=64 seed=5 out=%s' % mdir])
    if check(p.returncode == 0, 'new-model: %s' % p.stderr.decode()[:300]):
        (gm,), _ = qjson(db, ['generate "hello" max=5 seed=9'], extra=['--model', mdir])
        (sm,), _ = qjson(db, ['show %d' % gm['run_id']])
        check(sm['model_path'] == os.path.realpath(mdir), 'model path recorded absolute: %s' % sm['model_path'])
        lines = ''.join('%s  %s\n' % (hashlib.sha256(open(os.path.join(mdir, n), 'rb').read()).hexdigest(), n)
                        for n in sorted(os.listdir(mdir)) if n.endswith(('.safetensors', '.json', '.txt')))
        check(sm['model_sha256'] == hashlib.sha256(lines.encode()).hexdigest(), 'model hash of the directory')
        (rm,), _ = qjson(db, ['replay %d' % gm['run_id']])  # from the built-in model: loads the directory
        check(rm['identical'] is True and rm['model_changed'] is False, 'replay loads the model file: %s' % {
            k: rm.get(k) for k in ('identical', 'model_changed')})
        st = os.path.join(mdir, 'model.safetensors')
        before = os.stat(st)
        with open(st, 'r+b') as fh:
            fh.seek(-2, 2)
            b = fh.read(2)
            fh.seek(-2, 2)
            fh.write(bytes([b[0] ^ 0x40, b[1]]))
        # its modification time set back (touch -r, a copy keeping times): the change is still
        # noticed (the cache was keyed by size and mtime: replay said model_changed false)
        os.utime(st, ns=(before.st_atime_ns, before.st_mtime_ns))
        (rm2,), _ = qjson(db, ['replay %d' % gm['run_id']])
        check(rm2['model_changed'] is True, 'a changed model file is noticed, its mtime set back (hash cache keyed '
                                            'by size and the inode change time)')
        # export gguf over the loaded model's own files is refused: the runs logged after it
        # recorded the new file's hash beside the old model's text (a new name in its folder is fine)
        gg = f('tiny.gguf')
        p = qkv(['--db', db, '--model', mdir, '-e', 'export gguf %s' % gg])
        check(p.returncode == 0, 'export gguf %s: %s' % (gg, p.stderr.decode()[:200]))
        for model, target in ((gg, gg), (mdir, st), (mdir, os.path.join(mdir, 'config.json'))):
            before = open(target, 'rb').read()
            p = qkv(['--db', db, '--model', model, '-e', 'export gguf %s type=f16' % target])
            check(p.returncode != 0 and b"one of the loaded model's files" in p.stderr and open(target, 'rb').read() == before,
                  'export gguf over the loaded model (%s) is refused: %s' % (target, p.stderr.decode()[:200]))
        p = qkv(['--db', db, '--model', mdir, '-e', 'export gguf %s' % os.path.join(mdir, 'new.gguf')])
        check(p.returncode == 0, 'export gguf to a new name in the model\'s folder: %s' % p.stderr.decode()[:200])

    # ---- the KV cache's type is logged, and replay evaluates with the run's (an F16 cache rounds
    # keys and values: replayed on the session's F32 cache the log-probabilities would move)
    kvm = f('kv-model')
    qkv(['--db', db, '-e', 'new-model gpt2 layers=2 heads=2 d=32 ctx=64 std=0.5 seed=41 out=' + kvm])
    gen = 'generate "The cat sat" max=12 seed=4 alts=3'
    (g16,), _ = qjson(db, [gen], extra=['--model', kvm, '--kv', 'f16'])
    (g32,), _ = qjson(db, [gen], extra=['--model', kvm])
    check(g16['kv'] == 'f16' and g32['kv'] == 'f32', 'generate reports the KV cache type: %s, %s' % (g16['kv'], g32['kv']))
    check(g16['logprobs'] != g32['logprobs'], 'the F16 cache moves the log-probabilities (sanity)')
    (r16, st16, s16), _ = qjson(db, ['replay %d' % g16['run_id'], 'set', 'show %d' % g16['run_id']], extra=['--model', kvm])
    check(r16['identical'] is True and r16['logprobs'] == g16['logprobs'] and r16['kv'] == 'f16' and
          r16['max_logprob_diff'] == 0,
          'an F16-cache run replays on an F16 cache in a session on F32: identical %s, kv %s, logprobs equal %s' % (
              r16['identical'], r16['kv'], r16['logprobs'] == g16['logprobs']))
    check(st16['kv'] == 'auto' and st16['kv_dtype'] == 'F32' and s16['kv'] == 'f16',
          'the session keeps its own kv after replay (%s, %s); show: %s' % (st16['kv'], st16['kv_dtype'], s16['kv']))
    (r32,), _ = qjson(db, ['replay %d' % g32['run_id']], extra=['--model', kvm, '--kv', 'f16'])
    check(r32['identical'] is True and r32['logprobs'] == g32['logprobs'] and r32['kv'] == 'f32',
          'an F32-cache run replays on an F32 cache in a session on F16')
    # auto (the default) gives a quantized model an F16 cache: logged as such, and replayed on
    # one in a session set to f32
    (_, gq), _ = qjson(db, ['quantize q8_0', gen], extra=['--model', kvm])
    (_, rq, stq), _ = qjson(db, ['quantize q8_0', 'replay %d' % gq['run_id'], 'set'], extra=['--model', kvm, '--kv', 'f32'])
    check(gq['kv'] == 'f16' and rq['kv'] == 'f16' and rq['identical'] is True and rq['logprobs'] == gq['logprobs']
          and stq['kv'] == 'f32', 'a quantized model under kv auto: logged %s, replayed on %s (identical %s) in a '
          'session on %s' % (gq['kv'], rq['kv'], rq['identical'], stq['kv']))
    (ek,), _ = qjson(db, ['export runs %s model=kv-model format=csv' % f('kv.csv')])
    with open(f('kv.csv'), newline='', encoding='utf-8', errors='surrogateescape') as fh:  # bytes verbatim
        rows = list(csv.DictReader(fh))
    check(ek['count'] == len(rows) and sorted(r_['kv'] for r_ in rows) == ['f16', 'f16', 'f16', 'f16', 'f32', 'f32'],
          'export CSV has the kv column: %s' % [r_['kv'] for r_ in rows])

    # ---- history's filters through the command line: N, TEXT, since=, until=, annotator=, model=, kind=
    hdb, hm = f('history.db'), f('hist-model')
    qkv(['--db', hdb, '-e', 'new-model gpt2 layers=1 heads=2 d=32 ctx=64 seed=8 out=%s' % hm])
    (h1,), _ = qjson(hdb, ['generate "alpha one" max=2 seed=1'], extra=['--annotator', 'ann'])
    time.sleep(1.1)  # the next runs are created in a later second
    (h2,), _ = qjson(hdb, ['generate "beta two" max=2 seed=2'], extra=['--model', hm])
    (hr, _o, hp), _ = qjson(hdb, ['rank "gamma" k=2 max=2 seed=3', 'order 1 2', 'replay %d' % h1['run_id']])
    (s1, s2), _ = qjson(hdb, ['show %d' % h1['run_id'], 'show %d' % h2['run_id']])
    r1, r2, r5 = h1['run_id'], h2['run_id'], hp['run_id']
    r3, r4 = [c['run_id'] for c in hr['candidates']]
    for cmd, want in (('history', [r5, r4, r3, r2, r1]), ('history 2', [r5, r4]), ('history ALPHA', [r5, r1]),
                      ('history 1 alpha', [r5]), ('history "two"', [r2]),
                      ('history since=%s' % s2['created'][:19], [r5, r4, r3, r2]),
                      ('history until=%s' % s1['created'][:19], [r1]),
                      ('history since=%s until=%s' % (s1['created'][:10], s2['created'][:10]), [r5, r4, r3, r2, r1]),
                      ('history since=9999-01-01', []), ('history until=2000-12-31', []),
                      ('history annotator=ann', [r1]), ('history annotator=nobody', []),
                      ('history model=hist-model', [r2]), ('history model=%s' % s2['model_sha256'][:12], [r2]),
                      ('history model=builtin', [r5, r4, r3, r1]), ('history kind=rank', [r4, r3]),
                      ('history kind=replay', [r5]), ('history kind=generate', [r2, r1]),
                      ('history 1 gamma kind=rank', [r4]), ('history alpha kind=generate annotator=ann', [r1])):
        (o,), _ = qjson(hdb, [cmd])
        check([r_['run_id'] for r_ in o['runs']] == want, '%s: %s, expected %s' % (cmd, [r_['run_id'] for r_ in o['runs']],
                                                                                 want))
    # kind=judge: the runs a DPO judge logs (refused as a kind qkv does not log before 2026-12-07)
    jdb = f('judge.db')
    (jg, jo), _ = qjson(jdb, ['generate "judged" max=1 seed=1', 'generate "other" max=1 seed=2'])
    with sqlite3.connect(jdb) as con:
        con.execute("UPDATE runs SET kind = 'judge' WHERE id = ?", (jg['run_id'],))
    (o, ex), _ = qjson(jdb, ['history kind=judge', 'export runs %s kind=judge' % f('judge.jsonl')])
    check([r_['run_id'] for r_ in o['runs']] == [jg['run_id']] and ex['count'] == 1,
          'history/export kind=judge: %s %s' % (o, ex))
    # TEXT in any case beyond ASCII, after a NUL too, and %, _ as themselves (LIKE folded ASCII alone
    # and stopped at a NUL: "CAFÉ" missed "café", "cxyz" a prompt "a\0cxyz")
    (u1, u2, u3), _ = qjson(hdb, ['generate %s max=1 seed=4' % quote('\u00c9mile, caf\u00e9 a\x00cxyz'),
                                  'generate %s max=1 seed=5' % quote('100% _mile'),
                                  'generate %s max=1 seed=6' % quote('\u0395\u039b\u039b\u0391\u0394\u0391')],
                                 extra=['--annotator', 'Zo\u00eb'])
    for text, want in (('\u00e9MILE', [u1['run_id']]), ('CAF\u00c9', [u1['run_id']]), ('cxyz', [u1['run_id']]),
                       ('100%', [u2['run_id']]), ('_mile', [u2['run_id']]), ('0%_', []),
                       ('\u03b5\u03bb\u03bb\u03b1\u03b4\u03b1', [u3['run_id']]),
                       ('ZO\u00cb', [u3['run_id'], u2['run_id'], u1['run_id']])):
        (o,), _ = qjson(hdb, ['history %s' % quote(text)])
        check([r_['run_id'] for r_ in o['runs']] == want, 'history %r: %s, expected %s' % (
            text, [r_['run_id'] for r_ in o['runs']], want))
    for cmd, msg in (('history since=soon', 'not an ISO date'), ('history 0', 'at least 1'),
                     ('history a b', 'one filter text'), ('history colour=red', "unknown option 'colour'")):
        _, err = qjson(hdb, [cmd], ok=False)
        check(err.startswith('error: ') and msg in err, '%s: %s' % (cmd, err))

    # ---- a replay that differs: the model file at the same path rewritten with other weights
    rm_ = f('replay-model')
    make = 'new-model gpt2 layers=2 heads=2 d=32 ctx=64 std=0.5 seed=%d out=' + rm_
    qkv(['--db', db, '-e', make % 31])
    (go,), _ = qjson(db, ['generate "The cat" max=12 temperature=0'], extra=['--model', rm_])
    qkv(['--db', db, '-e', make % 32])
    (gn,), _ = qjson(db, ['generate "The cat" max=12 temperature=0'], extra=['--model', rm_])
    first = next((i for i, (a, b) in enumerate(zip(go['ids'], gn['ids'])) if a != b), None)
    check(first is not None, 'other weights, other greedy tokens (sanity): %s' % go['ids'])
    (rp,), _ = qjson(db, ['replay %d' % go['run_id']])
    check(rp['identical'] is False and rp['first_difference'] == first and rp['model_changed'] is True,
          'replay after the weights changed: identical %s, first_difference %s (expected %s), model_changed %s' % (
              rp['identical'], rp['first_difference'], first, rp['model_changed']))
    check(rp['ids'] == gn['ids'] and rp['text'] == gn['text'] and rp['original_text'] == go['text'],
          'the replay is the new weights\' completion, beside the original')
    p = qkv(['--db', db, '-e', 'replay %d' % go['run_id']])
    check(p.returncode == 0 and ('DIFFERENT from token %d' % first).encode() in p.stdout and b'model file changed'
          in p.stdout, 'the text form says so: %r' % p.stdout[:200])

    # ---- killed just after order was given: the ranking whole or not at all, the database sound. The
    # kill lands a random time after rank answers (QKV_KILL_SEED=N repeats a run's delays)
    import random
    seed = int(os.environ.get('QKV_KILL_SEED') or random.randrange(1 << 30))
    print('kill test seed %d (run again with QKV_KILL_SEED=%d)' % (seed, seed), file=sys.stderr)
    rng = random.Random(seed)
    busy = '; '.join(['generate "busy" max=200'] * 500)  # keeps qkv working after the ranking
    outcomes = []
    for i in range(6):
        before = db_count(db, 'rankings')
        proc = subprocess.Popen([QKV, '--db', db, '--json', '-e', 'rank "ordered %d" k=3 max=3; order 3 1=2; %s'
                                 % (i, busy)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env())
        line = proc.stdout.readline()
        check(b'ranking_pending' in line, 'rank answered before the kill')
        time.sleep(rng.choice([0, 0, rng.uniform(0, 0.002), 0.3]))
        proc.kill()
        answered = b'ranking_id' in proc.stdout.readline()
        proc.wait()
        (ls,), _ = qjson(db, ['rankings "ordered %d"' % i])
        stored = ls['rankings']
        outcomes.append('stored' if stored else 'not stored')
        check(integrity(db) == 'ok' and db_count(db, 'rankings') == before + len(stored) and len(stored) <= 1,
              'SIGKILL after order: %d rankings more, integrity %s' % (db_count(db, 'rankings') - before, integrity(db)))
        check(not answered or stored, 'order answered before the kill, so its ranking is stored')
        check(all(r_['order'] == [[3], [1, 2]] and [c['rank'] for c in r_['candidates']] == [1, 2, 2]
                  for r_ in stored), 'a ranking stored before the kill is whole: %r' % stored)
    print('kill test: the ranking was %s' % ', '.join(outcomes), file=sys.stderr)
    before = db_count(db, 'rankings')
    # and in the middle of generating candidates
    proc = subprocess.Popen([QKV, '--db', db, '-e', 'rank "killed" k=9 max=200'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    check(db_count(db, 'rankings') == before and integrity(db) == 'ok', 'SIGKILL during rank')
    # the candidates of the rankings killed before they were stored are logged runs, but no ranking of
    # them is listed
    (ls, hs), _ = qjson(db, ['rankings 1000', 'history 1000 "ordered "'])
    check(len(ls['rankings']) == before and all(len(r_['candidates']) == r_['k'] for r_ in ls['rankings']),
          'after the kills: %d rankings listed, each whole' % len(ls['rankings']))
    cands = set(r_['prompt'] for r_ in hs['runs'] if r_['kind'] == 'rank')
    check(cands == set('ordered %d' % i for i in range(6)),
          'the killed rankings\' candidates are in the run log: %r' % sorted(cands))
    (ls,), _ = qjson(db, ['rankings killed'])
    check(ls['rankings'] == [], 'no half ranking listed: %r' % ls['rankings'][:1])

    # ---- two qkv processes logging at once
    cdb = f('concurrent.db')
    script = '\n'.join('generate "p%d" max=1' % i for i in range(40)).encode()
    procs = [subprocess.Popen([QKV, '--db', cdb, '--script', '-'], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env()) for _ in range(2)]
    errs = [p_.communicate(script, timeout=300)[1].decode() for p_ in procs]
    check(all(p_.returncode == 0 for p_ in procs), 'both processes succeed')
    check(not any('locked' in e_ or 'warning' in e_ for e_ in errs), 'no "database is locked": %s' % errs)
    check(db_count(cdb, 'runs') == 80, 'no run lost: %d' % db_count(cdb, 'runs'))

    # ---- another process holding the write lock: qkv says it waits, Ctrl-C stops the wait at once with a
    # clear message (the generation's text still printed), and the wait ends by itself when the lock goes
    ldb = f('locked.db')
    qjson(ldb, ['generate "first" max=1'])
    holder = sqlite3.connect(ldb, isolation_level=None)
    holder.execute('BEGIN IMMEDIATE')
    holder.execute("UPDATE runs SET prompt = prompt")
    proc = subprocess.Popen([QKV, '--db', ldb, '-e', 'generate "while locked" max=2 seed=1'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    said, t0 = b'', time.time()
    while b'waiting for the database' not in said and time.time() - t0 < 20:
        said += os.read(proc.stderr.fileno(), 4096) or b''
    check(b'waiting for the database' in said and ldb.encode() in said and b'Ctrl-C' in said,
          'a wait for the lock is said on stderr: %r' % said)
    t1 = time.time()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    err = (said + err).decode()
    check(time.time() - t1 < 5, 'Ctrl-C stops the wait at once (%.1f s)' % (time.time() - t1))
    check('stopped waiting for another process that holds the database' in err and 'not logged' in err,
          'the message says the run was not logged and why: %r' % err)
    check(proc.returncode == 130 and len(out.strip()) > 0, 'the text was printed, exit status 130: %d %r'
          % (proc.returncode, out))
    check(db_count(ldb, 'runs') == 1, 'nothing half written while locked')
    # the lock released after a while: the waiting process goes on and logs its run
    # (the lock goes once qkv says it waits: a fixed sleep raced a slow start, under the sanitizers)
    proc = subprocess.Popen([QKV, '--db', ldb, '--json', '-e', 'generate "after the lock" max=2 seed=1'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    err, t0 = b'', time.time()
    while b'waiting for the database' not in err and time.time() - t0 < 60:
        err += os.read(proc.stderr.fileno(), 4096) or b''
    time.sleep(0.5)
    holder.execute('COMMIT')
    holder.close()
    out, rest = proc.communicate(timeout=60)
    err += rest
    check(proc.returncode == 0 and b'waiting for the database' in err and db_count(ldb, 'runs') == 2
          and json.loads(out)['run_id'] == 2, 'logged once the lock was released: %d %r %r' % (proc.returncode, out, err))

    # ---- files qkv must not damage: generation still works, the run is not logged, the file is unchanged
    notdb = f('notes.txt')
    with open(notdb, 'wb') as fh:
        fh.write(b'not a database\n' * 300)
    newer = f('newer.db')
    shutil.copy(cdb, newer)
    c = sqlite3.connect(newer)
    c.execute('PRAGMA user_version = 99')
    c.close()
    for path, msg in ((notdb, 'not a database'), (newer, 'newer qkv')):
        data = open(path, 'rb').read()
        p = qkv(['--db', path, '-e', 'generate "x" max=2'])
        err = p.stderr.decode()
        check(p.returncode == 0 and 'not logged' in err and msg in err, '%s: generate warns: %s' % (msg, err))
        # the JSON of a run not logged has no id: run_id and created null (they were 0 and "", a
        # run id that does not exist, which a script would store)
        p = qkv(['--db', path, '--json', '-e', 'generate "x" max=2'])
        g = json.loads(p.stdout) if p.returncode == 0 else {}
        check('run_id' in g and g['run_id'] is None and 'created' in g and g['created'] is None,
              '%s: generate --json: run_id and created null: %r' % (msg, {k: g.get(k) for k in ('run_id', 'created')}))
        p = qkv(['--db', path, '-e', 'history'])
        err = p.stderr.decode()
        check(p.returncode != 0 and msg in err and path in err, '%s: history fails clearly: %s' % (msg, err))
        check(open(path, 'rb').read() == data, '%s: file unchanged' % msg)
    # ---- a damaged database (a page's cells point outside it): writes are refused before they make
    # it worse, naming the problem and how to recover what it holds (rank and order wrote into it)
    ddb = f('damaged.db')
    qjson(ddb, ['rank "d1" k=3 max=2', 'order 3 1 2', 'rank "d2" k=2 max=2', 'order 1 2'])
    c = sqlite3.connect(ddb)
    root = c.execute("SELECT rootpage FROM sqlite_master WHERE name = 'ranking_items'").fetchone()[0]
    psize = c.execute('PRAGMA page_size').fetchone()[0]
    c.close()
    with open(ddb, 'r+b') as fh:
        fh.seek((root - 1) * psize + 8)  # the table's one leaf page: its cell pointers
        fh.write(b'\xff\xff\xff\xff')
    data = open(ddb, 'rb').read()
    p = qkv(['--db', ddb, '-e', 'rank "d3" k=2 max=2; order 1 2'])
    err = p.stderr.decode()
    check(p.returncode != 0 and "the database is damaged (On tree page %d" % root in err
          and "recover what it holds with: sqlite3 '%s' .recover | sqlite3 NEW.db" % ddb in err,
          'damaged: rank refused, the problem and the recovery named: %s' % err)
    p = qkv(['--db', ddb, '-e', 'generate "x" max=2'])
    err = p.stderr.decode()
    check(p.returncode == 0 and 'the run was not logged' in err and 'damaged' in err, 'damaged: generate warns: %s' % err)
    check(open(ddb, 'rb').read() == data and not os.path.exists(ddb + '-wal'), 'damaged: file unchanged')
    p = qkv(['--db', ddb, '-e', 'rankings'])
    err = p.stderr.decode()
    check(p.returncode != 0 and 'the database is corrupt' in err and '.recover' in err, 'damaged: a read says so: %s' % err)
    # damage SQLite does not see while reading (the newest cells of the rankings' page overwritten):
    # the listing drops rows; an export, whose rows become training data, checks the structure
    # first and refuses (it wrote 61 of 62 rankings, exit 0)
    sdb = f('silent.db')
    with open(f('silent-script'), 'w') as fh:
        for i in range(40):
            fh.write('rank "silent %d" k=2 max=2 temperature=1 seed=%d\norder 1 2\n' % (i, i + 1))
    p = qkv(['--db', sdb, '--script', f('silent-script')])
    check(p.returncode == 0, 'forty rankings stored: %s' % p.stderr[-200:])
    c = sqlite3.connect(sdb)
    c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    root = c.execute("SELECT rootpage FROM sqlite_master WHERE name = 'rankings'").fetchone()[0]
    psize = c.execute('PRAGMA page_size').fetchone()[0]
    c.close()
    with open(sdb, 'r+b') as fh:  # the newest cells, where the page's content area begins
        fh.seek((root - 1) * psize + 5)
        content = int.from_bytes(fh.read(2), 'big')
        fh.seek((root - 1) * psize + content)
        fh.write(b'\xff' * 300)
    c = sqlite3.connect(sdb)
    qc = c.execute('PRAGMA quick_check').fetchone()[0]
    c.close()
    out_pairs = f('silent-pairs.jsonl')
    p = qkv(['--db', sdb, '-e', 'export pairs %s' % out_pairs])
    err = p.stderr.decode()
    check(qc != 'ok' and p.returncode != 0 and 'cannot export from' in err and 'the database is damaged (' in err
          and '.recover' in err and not os.path.exists(out_pairs), 'damage reads do not see: export refused: %s %s'
          % (qc[:80], err[-300:]))
    blocker = f('blocker')
    open(blocker, 'w').close()
    p = qkv(['--db', os.path.join(blocker, 'sub', 'q.db'), '-e', 'history'])
    check(p.returncode != 0 and 'cannot create directory' in p.stderr.decode(), 'uncreatable directory')

    # ---- a run names the element type of a quantized model's weights in model_arch: converted in
    # memory by quantize (the file at model_path is the float one), or stored so in the file
    qdb = f('quant.db')
    (_, g), _ = qjson(qdb, ['quantize q8_0', 'generate "abc" max=2 seed=1'])
    (s, h), _ = qjson(qdb, ['show %d' % g['run_id'], 'history 1'])
    check(s['model_arch'] == 'gpt2 Q8_0 (quantize q8_0)' and h['runs'][0]['model_arch'] == 'gpt2 Q8_0 (quantize q8_0)',
          'quantized run: model_arch %r, history %r' % (s['model_arch'], h['runs'][0]['model_arch']))
    # replay converts the model again as the run had it (in a new process, the float model loaded),
    # and goes back to the float model for a run made without quantize
    sampled = 'generate "The quick brown fox" max=24 temperature=1.5 seed=3'
    (_, q4, _, fl), _ = qjson(qdb, ['quantize q4_0 embed=true', sampled, 'quantize off', sampled])
    check(q4['ids'] != fl['ids'], 'q4_0 changes the sampled tokens (else the replays below prove nothing)')
    (s,), _ = qjson(qdb, ['show %d' % q4['run_id']])
    check(s['model_arch'] == 'gpt2 Q4_0 (quantize q4_0 embed=true)', 'model_arch names embed=true: %r' % s['model_arch'])
    (r,), _ = qjson(qdb, ['replay %d' % q4['run_id']])
    check(r['identical'] and r['ids'] == q4['ids'], 'replay of a quantize q4_0 run: identical (%s vs %s)'
          % (r.get('ids'), q4['ids']))
    (_, r), _ = qjson(qdb, ['quantize q4_0', 'replay %d' % fl['run_id']])
    check(r['identical'], 'replay of a float run while the model is quantized: identical')
    (_, r), _ = qjson(qdb, ['quantize int8', 'replay %d' % q4['run_id']])
    check(r['identical'], 'replay of a q4_0 run while the model is int8: identical')
    con = sqlite3.connect(qdb)  # a run logged before the type was named in model_arch
    con.execute("UPDATE runs SET model_arch = 'gpt2 Q4_0 (quantize)' WHERE id = ?", (q4['run_id'],))
    con.commit()
    con.close()
    (r,), _ = qjson(qdb, ['replay %d' % q4['run_id']])
    (s,), _ = qjson(qdb, ['show %d' % r['run_id']])
    check(s['model_arch'] == 'gpt2 Q4_0 (quantize q4_0)', 'replay of an old "(quantize)" run converts to the type it '
          'names (without the embedding, which it did not record): %r' % s['model_arch'])
    qfile = f('q8.gguf')
    qjson(qdb, ['export gguf %s type=q8_0' % qfile])
    (g,), _ = qjson(qdb, ['generate "abc" max=2 seed=1'], extra=['--model', qfile])
    (s,), _ = qjson(qdb, ['show %d' % g['run_id']])
    check(s['model_arch'] == 'gpt2 Q8_0' and s['model_path'] == os.path.realpath(qfile),
          'run of a Q8_0 file: model_arch %r, path %r' % (s['model_arch'], s['model_path']))

    # a .csv name: runs are written as CSV without format= (they were JSON Lines in a .csv file);
    # rankings and pairs, which have no CSV form, are refused rather than written as JSON Lines
    (ec,), _ = qjson(db, ['export runs %s' % f('by-name.csv')])
    with open(f('by-name.csv'), newline='') as fh:
        first = fh.readline()
    check(ec['format'] == 'csv' and first.startswith('run_id,created,'), 'export runs NAME.csv: %r %r' % (ec, first[:40]))
    for what in ('rankings', 'pairs'):
        _, err = qjson(db, ['export %s %s' % (what, f('x.csv'))], ok=False)
        check('JSON Lines only' in err and not os.path.exists(f('x.csv')), 'export %s x.csv: %r' % (what, err))

    # greedy candidates are one text k times: rank says so, and no pair of the same text is
    # exported or trained on (they once were: chosen == rejected, a reward model at loss log 2)
    gdb = f('greedy.db')
    (rk3, _), _ = qjson(gdb, ['rank "The capital" k=3 max=4 temperature=0', 'order 1 2 3'], extra=['--model', 'builtin'])
    check(rk3.get('identical') == 3 and len({c['text'] for c in rk3['candidates']}) == 1,
          'rank of greedy candidates: identical %r (the 3 pairs; 2 candidates repeating the first before '
          '2026-12-07)' % rk3.get('identical'))
    # tied identical candidates count as identical pairs in rank, export pairs and the trainers alike
    # (export counted the tied pair nowhere, the trainers as identical, rank counted candidates)
    tdb = f('tied-same.db')
    (rk6, _), _ = qjson(tdb, ['rank "g1" k=3 max=3 temperature=0', 'order 1=2 3'], extra=['--model', 'builtin'])
    qjson(tdb, ['rank "g2" k=2 max=3 seed=4', 'order 2 1'], extra=['--model', 'builtin'])  # a pair to train on
    outs = [qjson(tdb, [c], extra=['--model', 'builtin'], ok=False)[0] or [{}] for c in
            ('export pairs %s' % f('tied-same.jsonl'), 'reward train out=%s steps=1 val=0 ties=equal' % f('rm-ts'),
             'dpo train out=%s steps=1 val=0' % f('dpo-ts'))]
    check(rk6.get('same_text') == '1=2=3', 'rank JSON same_text names the candidates of one text: %r' % rk6.get('same_text'))
    check([rk6.get('identical')] + [o[0].get('identical') for o in outs] == [3, 3, 3, 3],
          'identical pairs of a tied greedy ranking: rank, export, reward train, dpo train %r'
          % ([rk6.get('identical')] + [o[0].get('identical') for o in outs]))
    p = qkv(['--model', 'builtin', '--db', gdb, '-e', 'rank "The capital" k=3 max=4 temperature=0'])
    check('candidates 1=2=3 are the same text' in p.stdout.decode() and 'rank with temperature > 0' in p.stdout.decode(),
          'rank says which candidates are the same text, and that sampling would vary them')
    # the advice fits the cause: sampling already (a near-greedy temperature), no tokens asked for
    for cmd, want in (('rank "The capital" k=2 max=1 temperature=0.01 seed=1', 'a higher temperature'),
                      ('rank "The capital" k=2 max=0', 'max=0 asks for no tokens')):
        p = qkv(['--model', 'builtin', '--db', gdb, '-e', cmd + '; skip'])
        out_ = p.stdout.decode()
        check('are the same text' in out_ and want in out_ and 'temperature > 0' not in out_, '%s: %r' % (cmd, out_))
    (ex,), _ = qjson(gdb, ['export pairs %s' % f('same.jsonl')], extra=['--model', 'builtin'])
    check(ex['count'] == 0 and jsonl(f('same.jsonl')) == [], 'no pair of identical completions exported: %r' % ex)
    _, err = qjson(gdb, ['reward train out=%s steps=2' % f('rm-same')], extra=['--model', 'builtin'], ok=False)
    check('give no preference' in err and 'same text' in err, 'reward train on identical pairs: %r' % err)
    # an empty completion (a generation that stopped at once) beside another: compared without
    # handing memcmp a NULL (UBSan aborts the sanitizer build), a pair exported and trained on
    (rk4, _), _ = qjson(gdb, ['rank "Other" k=2 max=3 seed=4', 'order 2 1'], extra=['--model', 'builtin'])
    con = sqlite3.connect(gdb)
    con.execute("UPDATE runs SET output = '', ids = '[]', logprobs = '[]' WHERE id = ?",
                (rk4['candidates'][0]['run_id'],))
    con.commit()
    con.close()
    (ex2, rt), err = qjson(gdb, ['export pairs %s' % f('empty.jsonl'),
                                 'reward train out=%s steps=2 val=0 eval_every=1' % f('rm-e')], extra=['--model', 'builtin'])
    pe = jsonl(f('empty.jsonl'))
    check(ex2['count'] == 1 and pe[0]['rejected'] == '' and rt.get('pairs') == 1,
          'a pair with an empty completion: %r, %r' % (pe, rt.get('pairs')))
    # nothing held out: no step is called the best (each evaluation simply keeps the latest weights)
    check('step 2/2' in err and '(best)' not in err, 'reward train val=0 progress: %r' % err[-300:])
    # completions that read the same but differ in bytes, all ranked apart: two cut inside a
    # character (both read U+FFFD there, as every export writes them) are no preference in any
    # export nor to the trainers; two that differ only by the leading space a transcript drops
    # are none in HH transcripts. Each is counted (JSON identical) and named in a note (they were
    # exported with chosen == rejected, and not counted)
    sdb = f('same.db')
    (rk5, _), _ = qjson(sdb, ['rank "Same" k=4 max=3 seed=5', 'order 1 2 3 4'], extra=['--model', 'builtin'])
    con = sqlite3.connect(sdb)
    for c, text in zip(rk5['candidates'], (b'Paris', b' Paris', b'e\xe2\x82', b'e\xe2\x83')):
        con.execute("UPDATE runs SET output = CAST(? AS TEXT) WHERE id = ?", (text, c['run_id']))
    con.commit()
    con.close()
    p = qkv(['--model', 'builtin', '--db', sdb, '-e', 'export pairs %s' % f('same-trl.jsonl')])
    cmds = ['export pairs %s' % f('same-trl.jsonl'), 'export pairs %s format=hh' % f('same-hh.jsonl'),
            'reward train out=%s steps=1 val=0' % f('rm-same2'), 'dpo train out=%s steps=1 val=0' % f('dpo-same2')]
    outs = [qjson(sdb, [c], extra=['--model', 'builtin'], ok=False) for c in cmds]
    (ex_t,), (ex_h,), (rt2,), (dp2,) = [o or [{}] for o, _ in outs]
    trl_s, hh_s = jsonl(f('same-trl.jsonl')), jsonl(f('same-hh.jsonl'))
    check(len(trl_s) == 5 and all(x['chosen'] != x['rejected'] for x in trl_s) and ex_t.get('identical') == 1,
          'trl: the pair of two cut characters left out and counted: %d pairs, identical %r' % (len(trl_s),
                                                                                             ex_t.get('identical')))
    check(len(hh_s) == 4 and all(x['chosen'] != x['rejected'] for x in hh_s) and ex_h.get('identical') == 2,
          'hh: that pair and "Paris"/" Paris" left out and counted: %d pairs, identical %r' % (len(hh_s),
                                                                                           ex_h.get('identical')))
    check('1 pairs were left out' in p.stdout.decode('utf-8', 'replace'),
          'export pairs names the pairs left out: %r' % p.stdout)
    check(rt2.get('pairs') == 5 and rt2.get('identical') == 1 and dp2.get('pairs') == 5 and dp2.get('identical') == 1,
          'reward train and dpo train read the same rule: pairs %r/%r, identical %r/%r (%s)' % (
              rt2.get('pairs'), dp2.get('pairs'), rt2.get('identical'), dp2.get('identical'),
              ' | '.join(e[-200:] for _, e in outs[2:])))


def interrupted_export():
    """Ctrl-C during a long export runs FILE: it stops at the next record, removes its temporary file,
    leaves the previous FILE as it was, says "export: interrupted" and exits 130, the next command not
    run (the export ran to its end and replaced FILE, "30001 runs written"); a second Ctrl-C, which
    ends a headless qkv at once, leaves no temporary file either (it left FILE.tmp-XXXXXX, ~100 MB)."""
    d = os.path.join(TMP, 'bigexport')
    os.makedirs(d)
    big, out = os.path.join(d, 'big.db'), os.path.join(d, 'runs.jsonl')
    qjson(big, ['generate "hello" max=32 seed=1'], extra=['--model', 'builtin'])
    con = sqlite3.connect(big)
    con.execute('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000) '
                'INSERT INTO runs (created, kind, qkv_version, n_threads, model_path, model_arch, model_sha256, '
                'prompt, temperature, top_k, top_p, seed, max_tokens, prompt_ids, output, ids, logprobs, alts, '
                'stop_reason, kv) SELECT created, kind, qkv_version, n_threads, model_path, model_arch, model_sha256, '
                'prompt || x, temperature, top_k, top_p, seed, max_tokens, prompt_ids, output, ids, logprobs, alts, '
                'stop_reason, kv FROM runs, c WHERE runs.id = 1')
    con.commit()
    con.close()
    for signals in (1, 2):
        with open(out, 'w') as fh:
            fh.write('the previous export\n')
        proc = subprocess.Popen([QKV, '--db', big, '-e', 'export runs %s; history 1' % out], env=env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        t0, grown = time.time(), False
        while not grown and proc.poll() is None and time.time() - t0 < 60:  # the export well under way
            tmps = [n for n in os.listdir(d) if n.startswith('runs.jsonl.tmp-')]
            grown = any(os.path.getsize(os.path.join(d, n)) > (1 << 20) for n in tmps if os.path.exists(os.path.join(d, n)))
            time.sleep(0.002)
        for k in range(signals):
            if k:
                time.sleep(0.001)
            proc.send_signal(signal.SIGINT)
        so, se = proc.communicate(timeout=120)
        left = [n for n in os.listdir(d) if n.startswith('runs.jsonl.tmp-')]
        with open(out) as fh:
            kept = fh.read() == 'the previous export\n'
        what = 'Ctrl-C' if signals == 1 else 'two Ctrl-C'
        check(grown, '%s: the export was under way when it came' % what)
        check(not left and kept, '%s during export runs: no temporary file left %s, the previous file kept (%s)' % (
            what, left, kept))
        if signals == 1:
            check(proc.returncode == 130 and b'error: export: interrupted' in se and b'written' not in so and
                  not so.strip(), 'Ctrl-C stops the export: "export: interrupted", exit 130, history not run: '
                  '%d %r %r' % (proc.returncode, so[-200:], se[-300:]))
        else:
            check(proc.returncode in (130, -signal.SIGINT), 'two Ctrl-C: exit %d' % proc.returncode)
        for n in left:
            os.remove(os.path.join(d, n))
    shutil.rmtree(d, ignore_errors=True)


def named_database_missing():
    """A command that only reads the database, given one by --db or QKV_DB that does not exist (a
    mistyped name), says so and creates nothing: history listed nothing and export wrote an empty
    file, both successfully, over a new empty database. A listing answers empty with the reason
    (JSON "warning"), the others are refused. The default database is created as before (a fresh
    machine has logged nothing: history is empty), and a command that logs creates a named one."""
    d = os.path.join(TMP, 'named')
    os.makedirs(d)
    typo, out = os.path.join(d, 'typo.db'), os.path.join(d, 'pairs.jsonl')
    lists = {'history': 'runs', 'rankings': 'rankings', 'experiments': 'experiments', 'probe runs': 'probe_runs'}
    for cmd in list(lists) + ['show 1', 'show ranking=1', 'replay 1', 'export pairs ' + out, 'export runs ' + out,
                              'curve', 'experiment show 1', 'experiment compare 1 2', 'agreement',
                              'note ranking=1 "x"', 'reward score run=1 model=' + d]:
        for how, extra, environ in (('--db', ['--db', typo], None), ('QKV_DB', [], env(QKV_DB=typo))):
            said = "no database at '%s': nothing has been logged there" % typo
            p = qkv(extra + ['--model', 'builtin', '--json', '-e', cmd], environ)
            err, so = p.stderr.decode('utf-8', 'replace'), p.stdout.decode('utf-8', 'replace')
            if cmd in lists:
                o = json.loads(so) if p.returncode == 0 and so.strip() else {}
                check(o.get(lists[cmd]) == [] and said in o.get('warning', '') and
                      ('the name %s gives' % how) in o['warning'],
                      '%s on a database %s names that does not exist: empty, saying why (%d %r %r)' % (
                          cmd, how, p.returncode, so[-300:], err[-200:]))
                t = qkv(extra + ['--model', 'builtin', '-e', cmd], environ)
                check(t.returncode == 0 and said.encode() in t.stdout, '%s (%s), text: %r' % (cmd, how, t.stdout))
            else:
                check(p.returncode == 1 and said in err and ('the name %s gives' % how) in err,
                      '%s on a database %s names that does not exist: refused naming it (%d %r)' % (
                          cmd, how, p.returncode, err[-300:]))
            check(not os.path.exists(typo) and not os.path.exists(out),
                  '%s (%s): no database and no export file made: %s' % (cmd, how, sorted(os.listdir(d))))
            for n in os.listdir(d):
                os.remove(os.path.join(d, n))
    e = env(XDG_DATA_HOME=os.path.join(d, 'fresh'))
    p = qkv(['--model', 'builtin', '--json', '-e', 'history'], e)
    default = os.path.join(e['XDG_DATA_HOME'], 'qkv', 'qkv.db')
    check(p.returncode == 0 and json.loads(p.stdout)['runs'] == [] and os.path.exists(default),
          'history on the default database of a fresh machine: empty, the database made (%d %r)' % (
              p.returncode, p.stderr[-200:]))
    objs, _ = qjson(typo, ['generate "a" max=2 seed=1', 'history'], extra=['--model', 'builtin'])
    check(len(objs[1]['runs']) == 1, 'a run logged creates the named database, history then reads it')
    shutil.rmtree(d, ignore_errors=True)


try:
    main()
    interrupted_export()
    named_database_missing()
finally:
    if not os.environ.get('QKV_KEEP_TMP'):
        shutil.rmtree(TMP, ignore_errors=True)
print('%d failure(s)' % failures if failures else 'ok', file=sys.stderr)
sys.exit(1 if failures else 0)
