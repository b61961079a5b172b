# qkv_cli.py - run the qkv binary headless from the Python tests and read its JSON lines.

import json
import os
import subprocess
import sys


class QkvError(Exception):
    pass


def run(qkv, args, timeout=600):
    """Run qkv with args; return the CompletedProcess (text mode, stdout/stderr captured)."""
    return subprocess.run([qkv] + list(args), capture_output=True, text=True, timeout=timeout)


def json_cmds(qkv, model, cmds, db, timeout=600):
    """Run `qkv --model model --db db --json -e 'c1; c2 ...'`; return one parsed object per command.

    Raises QkvError with the command line, exit status and stderr when qkv fails."""
    args = []
    if model is not None:
        args += ['--model', model]
    args += ['--db', db, '--json', '-e', '; '.join(cmds)]
    p = run(qkv, args, timeout)
    shown = ' '.join(args)
    if len(shown) > 300:
        shown = shown[:300] + '...'
    if p.returncode != 0:
        raise QkvError('qkv %s\n  exit %d\n  stderr: %s' % (shown, p.returncode, p.stderr.strip()[:2000]))
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    if len(lines) != len(cmds):
        raise QkvError('qkv %s\n  expected %d JSON lines, got %d:\n%s'
                       % (shown, len(cmds), len(lines), p.stdout[:2000]))
    try:
        return [json.loads(l) for l in lines]
    except ValueError as ex:
        raise QkvError('qkv %s\n  output is not JSON (%s):\n%s' % (shown, ex, p.stdout[:2000]))


def qkv_path():
    """The qkv binary: argv[1] (meson passes it), else $QKV, else build/app/qkv."""
    if len(sys.argv) > 1:
        return sys.argv[1]
    if os.environ.get('QKV'):
        return os.environ['QKV']
    src = os.environ.get('QKV_SRCDIR', os.path.join(os.path.dirname(__file__), '..', '..'))
    return os.path.join(src, 'build', 'app', 'qkv')


def ids_arg(ids):
    return 'ids=' + ','.join(str(int(i)) for i in ids)


def new_model(qkv, words, db):
    """Run the command `new-model WORDS...` headless (qkv --db db -e '...'); return the process.

    The command language form is used: `qkv new-model ...` as program arguments is not accepted."""
    return run(qkv, ['--db', db, '-e', ' '.join(['new-model'] + list(words))])
