# qkv_cli.py - run the qkv binary headless from the Python tests and read its JSON lines.

import atexit
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile


class QkvError(Exception):
    pass


def insert_ranking(con, prompt, texts, ranks, annotator='syn', created='2026-01-01T00:00:00.000Z'):
    """Store a ranking straight into an open qkv database (sqlite3 connection): one rank-kind run of
    the built-in model per completion text, ranked as ranks says (1 best, equal ranks tied).
    Returns the ranking's id."""
    rid = con.execute("INSERT INTO rankings (created, prompt, k, annotator, qkv_version) VALUES (?, ?, ?, ?, 'test')",
                      (created, prompt, len(texts), annotator)).lastrowid
    for n, (text, rank) in enumerate(zip(texts, ranks), start=1):
        run = con.execute("INSERT INTO runs (created, kind, annotator, qkv_version, model_path, model_arch, prompt, "
                          "temperature, top_k, top_p, seed, max_tokens, output) VALUES (?, 'rank', ?, 'test', "
                          "'builtin', 'gpt2', ?, 1.0, 0, 1.0, ?, 8, ?)", (created, annotator, prompt, n, text)).lastrowid
        con.execute('INSERT INTO ranking_items (ranking_id, n, run_id, rank) VALUES (?, ?, ?, ?)', (rid, n, run, rank))
    return rid


def scratch_dir(prefix):
    """A new temporary folder removed when the test process exits, whatever way it exits
    short of a signal (QKV_KEEP_TMP=1 keeps it, and says where, for a failure to be looked at).

    A test that leaves its folder behind fills the machine's disk over repeated runs (a
    model converted to F32 is hundreds of MB), so every test's scratch comes from here or
    from a `with tempfile.TemporaryDirectory()`."""
    path = tempfile.mkdtemp(prefix=prefix)

    def remove():
        if os.environ.get('QKV_KEEP_TMP'):
            print(f'kept {path} (QKV_KEEP_TMP)', file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)
    atexit.register(remove)
    return path


def run(qkv, args, timeout=600):
    """Run qkv with args; return the CompletedProcess (text mode, stdout/stderr captured)."""
    return subprocess.run([qkv] + list(args), capture_output=True, text=True, timeout=timeout)


def json_cmds(qkv, model, cmds, db, timeout=600, extra=()):
    """Run `qkv --model model --db db [extra...] --json -e 'c1; c2 ...'`; return one parsed object
    per command.

    Raises QkvError with the command line, exit status and stderr when qkv fails."""
    args = list(extra)
    if model is not None:
        args += ['--model', model]
    args += ['--db', db, '--json', '-e', '; '.join(cmds)]
    p = run(qkv, args, timeout)
    shown = ' '.join(args)
    if len(shown) > 300:
        shown = shown[:300] + '...'
    if p.returncode != 0:
        raise QkvError('qkv %s\n  exit %d\n  stderr: %s' % (shown, p.returncode, p.stderr.strip()[:2000]))
    lines = [l for l in p.stdout.split("\n") if l.strip()]
    if len(lines) != len(cmds):
        raise QkvError('qkv %s\n  expected %d JSON lines, got %d:\n%s'
                       % (shown, len(cmds), len(lines), p.stdout[:2000]))
    try:
        return [json.loads(l) for l in lines]
    except ValueError as ex:
        raise QkvError('qkv %s\n  output is not JSON (%s):\n%s' % (shown, ex, p.stdout[:2000]))


def new_db(qkv, db):
    """A new qkv database at db holding nothing (its schema, for rows a test inserts itself): a run
    logged, then deleted (a command that only reads, such as history, does not create a database
    --db names)."""
    json_cmds(qkv, 'builtin', ['generate "a" max=1 seed=1'], db)
    con = sqlite3.connect(db)
    con.execute('DELETE FROM runs')
    con.commit()
    con.close()


def run_or_none(qkv, args, timeout):
    """run(), or None when qkv was still running after timeout seconds (then killed)."""
    try:
        return run(qkv, args, timeout)
    except subprocess.TimeoutExpired:
        return None


def interrupted(qkv, args, after='step', delay=0.5, timeout=120, during=None):
    """Run qkv with args, send Ctrl-C (SIGINT) once stderr shows a line with `after` and delay
    seconds more have passed (first calling during(), when given, while it runs); return (exit
    status, stdout, stderr)."""
    import signal
    import time
    proc = subprocess.Popen([qkv] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if after in line:
            break
    time.sleep(delay)
    if during:
        during()
    proc.send_signal(signal.SIGINT)
    so, se = proc.communicate(timeout=timeout)
    return proc.returncode, so, ''.join(seen) + se


def interrupted_when(qkv, args, db, sql, params=(), at_least=1, delay=0.0, wait=300, timeout=120):
    """Run qkv with args, send Ctrl-C (SIGINT) once the count the query sql (params) gives in the
    database db reaches at_least (a run, a point logged: what the process has done so far) and delay
    seconds more have passed; (exit status, stdout, stderr), or None when it had not stopped
    timeout seconds after the signal (then killed)."""
    import signal
    import sqlite3
    import time
    proc = subprocess.Popen([qkv] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while time.time() - t0 < wait and proc.poll() is None:
        try:
            con = sqlite3.connect(db)
            k = con.execute(sql, params).fetchone()[0]
            con.close()
        except sqlite3.Error:  # not created yet, or locked by the writer
            k = 0
        if k >= at_least:
            break
        time.sleep(0.02)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    try:
        so, se = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    return proc.returncode, so, se


def _binary(argi, env, rel):
    """A built program: sys.argv[argi] (meson passes it), else $env, else build/rel in the source tree."""
    if len(sys.argv) > argi:
        return sys.argv[argi]
    if os.environ.get(env):
        return os.environ[env]
    src = os.environ.get('QKV_SRCDIR', os.path.join(os.path.dirname(__file__), '..', '..'))
    return os.path.join(src, 'build', rel)


def qkv_path():
    """The qkv binary: argv[1], else $QKV, else build/app/qkv."""
    return _binary(1, 'QKV', os.path.join('app', 'qkv'))


def trace_dump_path():
    """tests/ref/trace_dump: argv[2], else $QKV_TRACE_DUMP, else build/tests/ref/trace_dump."""
    return _binary(2, 'QKV_TRACE_DUMP', os.path.join('tests', 'ref', 'trace_dump'))


def smollm2_dir():
    """The folder of the SmolLM2 GGUF `./dev models` installs ($XDG_DATA_HOME/qkv/models/smollm2),
    or None when it is not installed."""
    data = os.environ.get('XDG_DATA_HOME') or os.path.join(os.path.expanduser('~'), '.local', 'share')
    d = os.path.join(data, 'qkv', 'models', 'smollm2')
    return d if len([f for f in os.listdir(d) if f.endswith('.gguf')] if os.path.isdir(d) else []) == 1 else None


def ids_arg(ids):
    return 'ids=' + ','.join(str(int(i)) for i in ids)


def new_model(qkv, words, db):
    """Run the command `new-model WORDS...` headless (qkv --db db -e '...'); return the process.

    The command language form is used: `qkv new-model ...` as program arguments is not accepted."""
    return run(qkv, ['--db', db, '-e', ' '.join(['new-model'] + list(words))])


# Trace kinds of tests/ref/trace_dump.c, and the attention ones ([n_head, n_q, n_kv] records).
TRACE_KINDS = ('embed', 'q', 'k', 'v', 'z', 'scores', 'probs', 'attn_out', 'resid_pre', 'resid_mid', 'mlp_out',
               'resid_post', 'ln_f', 'logits')
TRACE_ATT = ('scores', 'probs')


def trace(trace_dump, model, ids, kinds, threads=1, logits='none', steps=0, layers=0, patch=None, timeout=600):
    """Run trace_dump on ids; return (points, outs).

    points: {(kind, layer): float32 array over all positions}, the calls of ctx_eval put together
      along the query rows: [T, dim], or [n_head, T, T] for attention (entries a call did not
      cover, the future keys, are -inf for scores and 0 for probs).
    outs: the logits ctx_eval returned, one [rows, V] array per call.
    patch: None or (kind, layer, pos, scale): multiply that row of the live activation by scale.
    Raises QkvError when trace_dump fails or its output is malformed."""
    import numpy as np
    args = [trace_dump, model, ','.join(str(int(i)) for i in ids), ','.join(kinds) if kinds else 'none',
            str(threads), 'logits=' + logits, 'steps=%d' % steps, 'layers=%d' % layers]
    if patch:
        args.append('patch=%s:%d:%d:%r' % tuple(patch))
    p = subprocess.run(args, capture_output=True, timeout=timeout)
    if p.returncode != 0:
        raise QkvError('%s ... exit %d: %s' % (' '.join(args[:1] + args[3:]), p.returncode,
                                               p.stderr.decode('utf-8', 'replace').strip()))
    raw, off, T = p.stdout, 0, len(ids)
    parts, outs, done = {}, [], None
    while off < len(raw):
        nl = raw.find(b'\n', off)
        if nl < 0:
            raise QkvError('trace_dump: output ends inside a header')
        head = json.loads(raw[off:nl].decode('utf-8'))
        off = nl + 1
        if head.get('done'):
            done = head
            break
        count = int(head['count'])
        data = np.frombuffer(raw, dtype='<f4', count=count, offset=off)
        off += 4 * count
        if head['point'] == 'out_logits':
            outs.append(data.reshape(head['rows'], head['dim']))
        else:
            parts.setdefault((head['point'], head['layer']), []).append((head, data))
    if done is None or off != len(raw):
        raise QkvError('trace_dump: output not closed by its "done" line (%d of %d bytes read)' % (off, len(raw)))
    points = {}
    for key, recs in parts.items():
        kind = key[0]
        if kind in TRACE_ATT:
            H = recs[0][0]['n_head']
            full = np.full((H, T, T), -np.inf if kind == 'scores' else 0.0, dtype=np.float32)
            for h, data in recs:
                p0, nq, nkv = h['pos0'], h['n_q'], h['n_kv']
                full[:, p0:p0 + nq, :nkv] = data.reshape(H, nq, nkv)
        else:
            dim = recs[0][0]['dim']
            full = np.zeros((T, dim), dtype=np.float32)
            for h, data in recs:
                full[h['pos0']:h['pos0'] + h['n_q']] = data.reshape(h['n_q'], dim)
        rows = sum(h['n_q'] for h, _ in recs)
        if rows != T:
            raise QkvError('trace_dump: %s layer %d covers %d query rows, expected %d' % (kind, key[1], rows, T))
        points[key] = full
    return points, outs
