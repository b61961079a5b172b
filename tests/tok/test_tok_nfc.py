#!/usr/bin/env python3
# test_tok_nfc.py - suite 'reference': qkv's NFC and NFD (core/tok/uniprops.c, through
# tests/tok/tok_dump) against HF tokenizers' normalizers.NFC / NFD and Python's unicodedata.
#
# The strings: every code point that has a canonical decomposition, alone, decomposed, and
# followed by marks; random Hangul jamo sequences (L V T in and out of order); base letters with
# 1-5 marks in any order (unicases.marks), samples of every block, case-mapping letters, and
# long runs of marks. qkv must equal HF on all of them (qkv's tables are HF's: gen-unicode.py).
# Python's unicodedata (its own Unicode version) must equal qkv on the strings made only of code
# points on which the two versions agree (same NFD, same NFC, the same combining class seen in
# reordering, no part of a composition that only one of them knows): an independent check of the algorithm (reordering, blocking, composition).
# Skips (77) without the test environment unless QKV_REQUIRE_REFS=1.
# Usage: test_tok_nfc.py [QKV_BINARY] TOK_DUMP_BINARY

import os
import random
import subprocess
import sys
import time
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tokrun  # noqa: E402
import unicases  # noqa: E402
import refenv  # noqa: E402

SEED = 20261210


def dump_path():
    if len(sys.argv) > 2:
        return sys.argv[2]
    return os.path.join(os.environ.get('QKV_SRCDIR', os.path.join(HERE, '..', '..')), 'build', 'tests', 'tok',
                        'tok_dump')


def qkv_forms(dump, form, texts):
    p = subprocess.run([dump, form], input=''.join(t.encode('utf-8').hex() + '\n' for t in texts),
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise SystemExit('FAIL: tok_dump %s: exit %d: %s' % (form, p.returncode, p.stderr[:500]))
    out = [bytes.fromhex(l).decode('utf-8') for l in p.stdout.split('\n')[:-1]]
    if len(out) != len(texts):
        raise SystemExit('FAIL: tok_dump %s: %d texts, %d lines' % (form, len(texts), len(out)))
    return out


def texts(r):
    out = []
    decomposable = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF
                    and unicodedata.decomposition(chr(cp)) and not unicodedata.decomposition(chr(cp)).startswith('<')]
    marks = unicases._marks()
    for cp in decomposable:
        c = chr(cp)
        out.append(c)
        out.append(unicodedata.normalize('NFD', c))
        out.append('x' + c + r.choice(marks) + r.choice(marks))
        out.append(c + '\u0323\u0301' + c)
    jamo = [chr(c) for c in list(range(0x1100, 0x1113)) + list(range(0x1161, 0x1176)) + list(range(0x11A7, 0x11C3))]
    for _ in range(2000):
        out.append(''.join(r.choice(jamo + ['\uac00', '\uac01', '\ud7a3', 'a', '\u0301']) for _ in range(r.randint(1, 6))))
    out += unicases.marks(r, 6000) + unicases.blocks(r, 2) + unicases.cases(r)
    for _ in range(50):
        out.append('a' + ''.join(r.choice(marks) for _ in range(r.randint(30, 300))) + 'b\u0301')
    return [t for t in out if t]


def main():
    dump = dump_path()
    refenv.need('tokenizers')
    from tokenizers import normalizers
    t0 = time.time()
    rep = tokrun.Report()
    r = random.Random(SEED)
    ts = texts(r)
    hf = {'nfc': normalizers.NFC(), 'nfd': normalizers.NFD()}
    items = [(t, True) for t in ts]
    # the code points on which HF and Python agree
    seen = sorted(set(ch for t in ts for ch in t))
    # parts of a composition only Python's version knows (U+11935 U+11930 -> U+11938)
    newer = set()
    for cp in range(0x110000):
        c = chr(cp)
        if not 0xD800 <= cp <= 0xDFFF and hf['nfd'].normalize_str(c) != unicodedata.normalize('NFD', c):
            newer.update(unicodedata.normalize('NFD', c))
    agree = set()
    for ch in seen:
        if ch in newer:
            continue
        if any(hf[f].normalize_str(ch) != unicodedata.normalize(f.upper(), ch) for f in ('nfc', 'nfd')):
            continue
        v = unicodedata.combining(ch)
        if v > 1 and hf['nfd'].normalize_str('a' + ch + '\u0334') != 'a\u0334' + ch:
            continue
        if v == 1 and hf['nfd'].normalize_str('a\u0301' + ch) != 'a' + ch + '\u0301':
            continue
        agree.add(ch)
    py_ts = [t for t in ts if all(ch in agree for ch in t)]
    for form in ('nfc', 'nfd'):
        got = qkv_forms(dump, form, ts)
        want = [hf[form].normalize_str(t) for t in ts]
        rep.compare('%s vs HF tokenizers' % form.upper(), items, want, got, 'HF tokenizers', 'code points')
        got_py = qkv_forms(dump, form, py_ts)
        want_py = [unicodedata.normalize(form.upper(), t) for t in py_ts]
        rep.compare('%s vs Python unicodedata %s' % (form.upper(), unicodedata.unidata_version),
                    [(t, True) for t in py_ts], want_py, got_py, 'unicodedata', 'code points')
    changed = sum(1 for t in ts if unicodedata.normalize('NFC', t) != t)
    return rep.summary('NFC/NFD: %d strings (%d not in NFC), %d code points, %d of them agreed between HF and '
                       'Python (%d strings)' % (len(ts), changed, len(seen), len(agree), len(py_ts)), t0)


if __name__ == '__main__':
    sys.exit(main())
