# tokrun.py - what the tokenizer tests share: running qkv's tokenize on many strings at once,
# comparing with a reference and reporting, and the golden files.
#
# A golden file (tests/tok/golden/NAME.jsonl) records the ids the reference gave, so that
# test_tok_golden.py checks qkv without the test environment. Its first line names the
# tokenizer: {"tokenizer": "shared:DIR/FILE" | "fixture:DIR/FILE", "reference": "..."}
# (shared: under $QKV_SHARED_MODELS, fixture: under tests/tok/fixtures); each further line is
# {"text_hex": ..., "special": true|false, "ids": [...]} (the text as UTF-8 bytes in hex).
# Golden files are written only by gen_tok_golden.py with QKV_REGEN_GOLDEN=1.

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'ref'))
import qkv_cli  # noqa: E402

SHOW = 8  # mismatches printed in full
GOLDEN_DIR = os.path.join(HERE, 'golden')
FIXTURES = os.path.join(HERE, 'fixtures')


def shared_models():
    return os.environ.get('QKV_SHARED_MODELS', os.path.join(HERE, '..', '..', '..', 'shared', 'models'))


def qkv_escape(b):
    """b (bytes) as a double-quoted argument of qkv's command language: letters, digits and
    spaces as they are, every other byte as \\xNN (quotes, backslashes, ; and any byte survive)."""
    out = ['"']
    for c in b:
        ch = chr(c)
        out.append(ch if (ch.isascii() and ch.isalnum()) or ch == ' ' else '\\x%02x' % c)
    out.append('"')
    return ''.join(out)


def as_bytes(t):
    return t if isinstance(t, bytes) else t.encode('utf-8')


def encode_all(qkv, tokpath, items, timeout=900):
    """qkv's ids for each (text, special) of items (text: str or bytes), through one headless
    run of a script of `tokenize "..." special=true|false` commands with --tokenizer tokpath.
    Raises qkv_cli.QkvError when qkv fails."""
    with tempfile.NamedTemporaryFile('w', suffix='.qkv', delete=False, encoding='ascii') as f:
        for text, special in items:
            f.write('tokenize %s special=%s\n' % (qkv_escape(as_bytes(text)), 'true' if special else 'false'))
        script = f.name
    try:
        with tempfile.TemporaryDirectory(prefix='qkv-tok-') as tmp:
            p = subprocess.run([qkv, '--tokenizer', tokpath, '--db', os.path.join(tmp, 'qkv.db'), '--json',
                                '--script', script], capture_output=True, text=True, timeout=timeout)
    finally:
        os.unlink(script)
    lines = [l for l in p.stdout.split('\n') if l.strip()]  # not splitlines: U+2028 may stand in JSON
    if p.returncode != 0:
        at = len(lines) - 1
        what = show(items[at][0]) if 0 <= at < len(items) else '?'
        raise qkv_cli.QkvError('qkv --tokenizer %s --script (%d tokenize commands): exit %d at command %d (%s): %s'
                               % (tokpath, len(items), p.returncode, at + 1, what, p.stderr.strip()[:2000]))
    if len(lines) != len(items):
        raise qkv_cli.QkvError('qkv --script: %d tokenize commands but %d JSON lines' % (len(items), len(lines)))
    return [json.loads(l).get('ids') for l in lines]


def show(t):
    b = as_bytes(t)
    return '%r (hex %s)' % (b.decode('utf-8', 'replace')[:80], b.hex()[:120])


class Report:
    """Counts checks and failures of one test and prints the first few failures of each kind."""

    def __init__(self):
        self.failures = 0
        self.lines = []

    def fail(self, msg):
        print('FAIL: ' + msg, flush=True)
        self.failures += 1

    def compare(self, label, items, want, got, ref_name, unit='ids'):
        """Compare got with want (lists of id lists, one per item); print the first SHOW
        mismatches with expected vs got; return the number of mismatches."""
        if len(want) != len(got) or len(want) != len(items):
            self.fail('%s: %d strings, %d expected, %d got' % (label, len(items), len(want), len(got)))
            return len(items)
        bad = [(it, w, g) for it, w, g in zip(items, want, got) if w != g]
        for (text, special), w, g in bad[:SHOW]:
            print('FAIL: %s: tokenize %s special=%s\n  expected %s (%s)\n  got      %s'
                  % (label, show(text), str(special).lower(), w, ref_name, g), flush=True)
        if bad:
            self.fail('%s: qkv differs from %s on %d of %d strings' % (label, ref_name, len(bad), len(items)))
        self.lines.append('%s: %d strings, %d %s, %d mismatches' % (label, len(items), sum(len(w) for w in want), unit,
                                                                     len(bad)))
        return len(bad)

    def check(self, qkv, label, tokpath, items, want, ref_name):
        """Run qkv --tokenizer tokpath on items and compare with want (see compare); a qkv that
        fails counts as a failure. want: lists of ids, or a function (text, special) -> ids."""
        if callable(want):
            want = [want(t, s) for t, s in items]
        try:
            got = encode_all(qkv, tokpath, items)
        except qkv_cli.QkvError as ex:
            self.fail('%s: %s' % (label, ex))
            return len(items)
        return self.compare(label, items, want, got, ref_name)

    def summary(self, head, t0=None):
        import time
        print(head + (' (%.1f s)' % (time.time() - t0) if t0 else ''))
        for l in self.lines:
            print('  ' + l)
        return 1 if self.failures else 0


# ---- golden files ----

def golden_path(name):
    return os.path.join(GOLDEN_DIR, name + '.jsonl')


def resolve(spec):
    """The path a golden file's "tokenizer" names (None when its kind is unknown)."""
    kind, _, rel = spec.partition(':')
    if kind == 'shared':
        return os.path.join(shared_models(), rel)
    if kind == 'fixture':
        return os.path.join(FIXTURES, rel)
    return None


def read_golden(name):
    """(header, [(bytes, special, ids)]) of golden file name."""
    with open(golden_path(name), encoding='utf-8') as f:
        lines = [l for l in f.read().split('\n') if l.strip()]
    head = json.loads(lines[0])
    rows = []
    for l in lines[1:]:
        j = json.loads(l)
        rows.append((bytes.fromhex(j['text_hex']), bool(j['special']), [int(i) for i in j['ids']]))
    return head, rows


def golden_text(head, rows):
    out = [json.dumps(head, sort_keys=True)]
    for b, special, ids in rows:
        out.append(json.dumps({'text_hex': b.hex(), 'special': special, 'ids': ids}, separators=(',', ':')))
    return '\n'.join(out) + '\n'


def check_golden(report, name, encode):
    """The golden file's ids are what encode(bytes, special) gives today (encode: the reference)."""
    if not os.path.exists(golden_path(name)):
        report.fail('golden file %s is missing (QKV_REGEN_GOLDEN=1 tests/tok/gen_tok_golden.py writes it)'
                    % golden_path(name))
        return
    head, rows = read_golden(name)
    stale = [(b, s, ids, encode(b, s)) for b, s, ids in rows]
    stale = [x for x in stale if x[2] != x[3]]
    for b, s, ids, now in stale[:SHOW]:
        print('FAIL: golden %s: %s special=%s: file has %s, the reference gives %s' % (name, show(b), s, ids, now))
    if stale:
        report.fail('%d of %d lines of golden %s differ from the reference (regenerate deliberately: '
                    'QKV_REGEN_GOLDEN=1 tests/tok/gen_tok_golden.py)' % (len(stale), len(rows), name))
    report.lines.append('golden %s: %d lines, %d stale' % (name, len(rows), len(stale)))


def sample(items, n):
    """About n of items, evenly spread (the golden files' share of a live corpus)."""
    if len(items) <= n:
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]
