#!/usr/bin/env python3
# test_tok_train.py - suite 'reference': `train-tokenizer` (byte-level BPE training) against HF
# tokenizers' BpeTrainer, live.
#
#   - on seeded corpora (English-like words with many ties of frequency, digits, punctuation,
#     white-space runs, broad Unicode, several lines; and the teaching corpus of teach-corpus),
#     at several vocabulary sizes and min_freq: qkv's vocab.json and merges.txt equal, entry for
#     entry, those HF tokenizers writes after training BPE with the ByteLevel pre-tokenizer
#     (add_prefix_space=False), the 256 byte characters as its initial alphabet and
#     <|endoftext|> as its special token, on the same file; the merge count and the last merge's
#     frequency qkv reports equal a count by hand (Python) of that pair in the corpus's words
#     after the earlier merges;
#   - HF tokenizers loading qkv's files (BPE.from_file + ByteLevel) encodes every test string
#     (tokref.cases() and the corpus's lines) to exactly the ids qkv's tokenize gives with them,
#     and decodes them back to the text;
#   - bad input: a missing file, a file that is not UTF-8, an empty file, vocab below 257, no
#     vocab: one error line, non-zero exit.
# Skips (77) without the test environment unless QKV_REQUIRE_REFS=1.
# Usage: test_tok_train.py QKV_BINARY

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'ref'))
import refenv  # noqa: E402
import tokref  # noqa: E402
import tokrun  # noqa: E402

tokenizers = refenv.need('tokenizers')
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

failures = []


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg, flush=True)


def corpus_text(seed, n_lines):
    r = random.Random(seed)
    words = ['the', 'a', 'cat', 'dog', 'sat', 'on', 'mat', 'ran', 'to', 'it', "it's", "we'll", 'hello', 'world',
             'zebra', 'abba', 'aaaa', 'ab', 'ba', 'éclair', 'naïve', 'Straße', '日本語', 'кошка', 'λόγος', '🙂']
    lines = []
    for _ in range(n_lines):
        k = r.randint(0, 12)
        parts = []
        for _ in range(k):
            c = r.random()
            if c < 0.7:
                parts.append(r.choice(words))
            elif c < 0.8:
                parts.append(str(r.randint(0, 999)))
            elif c < 0.9:
                parts.append(r.choice(['.', ',', '!!', '...', '(', ')', '=>', '--']))
            else:
                parts.append(''.join(chr(r.randint(0x20, 0x2FF)) for _ in range(r.randint(1, 3))))
        sep = r.choice([' ', ' ', ' ', '  ', '\t', ' \n '])
        lines.append(sep.join(parts) + r.choice(['', ' ', '  ', '\t']))
    return '\n'.join(lines) + '\n'


def hf_train(path, vocab, min_freq, out):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tr = trainers.BpeTrainer(vocab_size=vocab, min_frequency=min_freq, special_tokens=['<|endoftext|>'],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train([path], tr)
    os.makedirs(out, exist_ok=True)
    tok.model.save(out)


def read_merges(path):
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    return [l for l in lines if l and not l.startswith('#version')]


def qkv_run(qkv, cmd, db):
    return subprocess.run([qkv, '--db', db, '--json', '-e', cmd], capture_output=True, text=True, timeout=600)


def byte_words(text):
    """The corpus's words (GPT-2's regex, line by line) as tuples of byte characters, counted."""
    pat = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+""")
    dec = tokref.byte_decoder()
    enc = {v: k for k, v in dec.items()}
    counts = {}
    for line in text.splitlines(keepends=True):
        for w in pat.findall(line):
            t = tuple(enc[b] for b in w.encode('utf-8'))
            counts[t] = counts.get(t, 0) + 1
    return counts


def pair_count_after(counts, merges):
    """Apply merges[:-1] to the words, then count the last merge's pair (non-overlapping, left
    to right, as a merge applies)."""
    words = {w: c for w, c in counts.items()}
    for m in merges:
        a, b = m.split(' ')
        new = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        words = new
    return words


def check_one(qkv, tmp, label, path, vocab, min_freq, text, db):
    qdir, hdir = os.path.join(tmp, label + '-qkv'), os.path.join(tmp, label + '-hf')
    p = qkv_run(qkv, 'train-tokenizer %s out=%s vocab=%d min_freq=%d' % (path, qdir, vocab, min_freq), db)
    if p.returncode != 0:
        fail('%s: qkv train-tokenizer failed: %s' % (label, p.stderr.strip()))
        return None
    res = json.loads(p.stdout.rstrip("\n").split("\n")[-1])
    hf_train(path, vocab, min_freq, hdir)
    with open(os.path.join(qdir, 'vocab.json'), encoding='utf-8') as f:
        qv = json.load(f)
    with open(os.path.join(hdir, 'vocab.json'), encoding='utf-8') as f:
        hv = json.load(f)
    qm, hm = read_merges(os.path.join(qdir, 'merges.txt')), read_merges(os.path.join(hdir, 'merges.txt'))
    if qm != hm:
        at = next((i for i, (a, b) in enumerate(zip(qm, hm)) if a != b), min(len(qm), len(hm)))
        fail('%s: merges differ from HF tokenizers at rank %d (qkv %d merges, HF %d): qkv %r, HF %r'
             % (label, at, len(qm), len(hm), qm[at:at + 3], hm[at:at + 3]))
    if qv != hv:
        diff = [k for k in set(qv) | set(hv) if qv.get(k) != hv.get(k)][:5]
        fail('%s: vocab.json differs from HF tokenizers (%d vs %d entries), e.g. %r'
             % (label, len(qv), len(hv), [(k, qv.get(k), hv.get(k)) for k in diff]))
    if res['merges'] != len(qm) or res['vocab'] != len(qv):
        fail('%s: reported %d merges, %d tokens; the files hold %d, %d' % (label, res['merges'], res['vocab'],
                                                                          len(qm), len(qv)))
    if qm:
        words = pair_count_after(byte_words(text), qm[:-1])
        a, b = qm[-1].split(' ')
        want = 0
        for w, c in words.items():
            i = 0
            while i + 1 < len(w):
                if w[i] == a and w[i + 1] == b:
                    want += c
                    i += 2
                else:
                    i += 1
        if res['last_freq'] != want:
            fail('%s: the last merge %r: reported frequency %d, counted %d' % (label, qm[-1], res['last_freq'], want))
        if min_freq and want < min_freq:
            fail('%s: the last merge occurs %d times, below min_freq=%d' % (label, want, min_freq))
    print('%s: vocab=%d min_freq=%d: %d merges, last seen %d times, %s' % (
        label, vocab, min_freq, len(qm), res['last_freq'], 'same as HF' if qm == hm and qv == hv else 'DIFFERENT'))
    return qdir


def check_encode(qkv, label, qdir, texts):
    hf = Tokenizer(models.BPE.from_file(os.path.join(qdir, 'vocab.json'), os.path.join(qdir, 'merges.txt')))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens(['<|endoftext|>'])
    items = [(t, False) for t in texts]
    rep = tokrun.Report()
    rep.check(qkv, label + ' encode', qdir, items, lambda t, s: hf.encode(t, add_special_tokens=False).ids,
              'HF tokenizers on qkv\'s files')
    for line in rep.lines:
        print('  ' + line)
    if rep.failures:
        fail('%s: qkv and HF tokenizers encode differently with qkv\'s files' % label)
    bad = [t for t in texts if hf.decode(hf.encode(t, add_special_tokens=False).ids) != t]
    if bad:
        fail('%s: %d strings do not decode back to themselves, e.g. %r' % (label, len(bad), bad[0][:60]))


def check_new_model(qkv, tmp, qdir, db):
    """A model written with the trained tokenizer (tok=DIR) names its <|endoftext|> (id 0 here, not
    the last id) as the beginning and end of text in config.json, and qkv reports it as its end of text."""
    with open(os.path.join(qdir, 'vocab.json'), encoding='utf-8') as f:
        eot = json.load(f)['<|endoftext|>']
    for family in ('gpt2', 'llama'):
        mdir = os.path.join(tmp, 'model-' + family)
        p = qkv_run(qkv, 'new-model %s layers=1 heads=2 d=64 ctx=32 tok=%s out=%s' % (family, qdir, mdir), db)
        if p.returncode != 0:
            fail('new-model %s tok=: %s' % (family, p.stderr.strip()))
            continue
        with open(os.path.join(mdir, 'config.json')) as f:
            cfg = json.load(f)
        if (cfg.get('bos_token_id'), cfg.get('eos_token_id')) != (eot, eot):
            fail('new-model %s tok=: config.json bos/eos %s, %s; <|endoftext|> is %d'
                 % (family, cfg.get('bos_token_id'), cfg.get('eos_token_id'), eot))
        p = subprocess.run([qkv, '--db', db, '--model', mdir, '--json', '-e', 'model'], capture_output=True, text=True)
        info = json.loads(p.stdout) if p.returncode == 0 else {}
        if info.get('eos_id') != eot:
            fail('new-model %s tok=: qkv model eos_id %s, <|endoftext|> is %d' % (family, info.get('eos_id'), eot))


def bad_input(qkv, tmp, db):
    nonutf = os.path.join(tmp, 'latin1.txt')
    with open(nonutf, 'wb') as f:
        f.write(b'a first line\ncaf\xe9 au lait\n')
    empty = os.path.join(tmp, 'empty.txt')
    open(empty, 'w').close()
    good = os.path.join(tmp, 'good.txt')
    with open(good, 'w') as f:
        f.write('hello world\n')
    out = os.path.join(tmp, 'bad-out')
    # a model's folder: its tokenizer replaced broke the model ("the tokenizer has 300 tokens but
    # the model only 257")
    model_dir = os.path.join(tmp, 'a-model')
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, 'config.json'), 'w') as f:
        f.write('{"model_type": "gpt2"}')
    cases = [('a model\'s folder', 'train-tokenizer %s out=%s vocab=300' % (good, model_dir), 'already holds a model'),
             ('missing file', 'train-tokenizer %s/nope.txt out=%s vocab=300' % (tmp, out), 'nope.txt'),
             ('not UTF-8', 'train-tokenizer %s out=%s vocab=300' % (nonutf, out), 'not UTF-8 (line 2, byte 4 of it)'),
             ('empty file', 'train-tokenizer %s out=%s vocab=300' % (empty, out), 'no text'),
             ('vocab too small', 'train-tokenizer %s out=%s vocab=100' % (good, out), 'vocab'),
             ('no vocab', 'train-tokenizer %s out=%s' % (good, out), 'vocab'),
             ('no out', 'train-tokenizer %s vocab=300' % good, 'out')]
    for label, cmd, want in cases:
        p = qkv_run(qkv, cmd, db)
        err = p.stderr.strip()
        if p.returncode == 0 or want not in err or len(err.splitlines()) != 1:
            fail('bad input (%s): expected one error line naming %r and a non-zero exit; got exit %d, %r'
                 % (label, want, p.returncode, err[:300]))


def interrupted(qkv, tmp, db, text):
    """Ctrl-C stops train-tokenizer (reading the text or merging): exit 130, "interrupted", no files
    written (it ran to its end and wrote them, then exited 130)."""
    path = os.path.join(tmp, 'big.txt')
    rnd = random.Random(7)
    letters = 'abcdefghijklmnopqrstuvwxyz'
    with open(path, 'w', encoding='utf-8') as f:  # about 8 MB of mostly distinct words
        for _ in range(20000):
            f.write(' '.join(''.join(rnd.choice(letters) for _ in range(rnd.randint(3, 9))) for _ in range(60)) + '\n')
    out = os.path.join(tmp, 'stopped')
    for after in (0.3, 1.0, 0.5, 0.25):  # 0.3: while the text is read (it said "'FILE': interrupted"), then merging
        proc = subprocess.Popen([qkv, '--db', db, '-e', 'train-tokenizer %s out=%s vocab=30000' % (path, out)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(after)
        proc.send_signal(signal.SIGINT)
        so, se = proc.communicate(timeout=120)
        if proc.returncode == 0:  # finished before the signal: sooner
            shutil.rmtree(out, ignore_errors=True)
            continue
        if proc.returncode != 130 or 'train-tokenizer: interrupted' not in se or os.path.exists(
                os.path.join(out, 'vocab.json')):
            fail('Ctrl-C during train-tokenizer: exit %d, stderr %r, files %r' % (
                proc.returncode, se[-300:], os.listdir(out) if os.path.isdir(out) else None))
        return
    fail('train-tokenizer finished before each Ctrl-C: the test needs a longer text')


def main():
    qkv = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, '..', '..', 'build', 'app', 'qkv')
    with tempfile.TemporaryDirectory(prefix='qkv-tok-train-') as tmp:
        db = os.path.join(tmp, 'qkv.db')
        text = corpus_text(20261202, 3000)
        path = os.path.join(tmp, 'corpus.txt')
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)
        qdir = None
        for label, vocab, min_freq in [('small', 300, 0), ('mid', 700, 2), ('large', 3000, 0)]:
            d = check_one(qkv, tmp, label, path, vocab, min_freq, text, db)
            qdir = qdir or d
        # the teaching corpus (a part of it)
        tdir = os.path.join(tmp, 'teach')
        p = qkv_run(qkv, 'teach-corpus out=%s bytes=200000' % tdir, db)
        if p.returncode != 0:
            fail('teach-corpus failed: %s' % p.stderr.strip())
        else:
            tpath = os.path.join(tdir, 'train.txt')
            with open(tpath, encoding='utf-8') as f:
                ttext = f.read()
            tq = check_one(qkv, tmp, 'teach', tpath, 512, 0, ttext, db)
            if tq:
                check_encode(qkv, 'teach', tq, ttext.splitlines(keepends=True)[:300])
        if qdir:
            texts = []
            for c in tokref.cases():  # the well-formed ones (the trainer takes UTF-8 text)
                try:
                    t = c.decode('utf-8') if isinstance(c, bytes) else c
                except UnicodeDecodeError:
                    continue
                if '<|endoftext|>' not in t:
                    texts.append(t)
            texts += text.splitlines(keepends=True)[:300]
            check_encode(qkv, 'small', qdir, texts)
            check_new_model(qkv, tmp, qdir, db)
        bad_input(qkv, tmp, db)
        interrupted(qkv, tmp, db, text)
    if failures:
        print('%d failure(s)' % len(failures))
        return 1
    print('train-tokenizer: merges and vocabularies equal to HF tokenizers; encodings equal')
    return 0


if __name__ == '__main__':
    sys.exit(main())
