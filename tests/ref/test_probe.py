#!/usr/bin/env python3
# test_probe.py - suite 'reference': qkv's linear probes and layer similarity against NumPy on the
# hidden states of HF transformers, on random-weight GPT-2, Llama (grouped-query) and BERT models
# that `qkv new-model` writes:
#   - the rows qkv probes (probe train ... dump=DIR): every layer's features equal transformers'
#     residual stream (the embeddings, then each block's output, read with forward hooks) at the
#     row's token (sentence level: a decoder's last token, an encoder's mean over the text's
#     tokens); the labels equal the ones computed here from the dataset's byte spans and the
#     tokenizers package's offsets; the held-out split is every 5th example;
#   - the probe: the same logistic regression (Adam on standardised features, written here in
#     NumPy) trained on transformers' features gives the same held-out and training accuracy per
#     layer; majority baseline and expected layer recomputed from the rows;
#   - a label that is a linear function of layer 2's representation (with a margin) is probed at
#     >= 99% there, and the shuffled-label control stays near chance;
#   - layersim: linear CKA and mean cosine of every pair of layers from transformers' states;
#   - grouped datasets ("group" on a line): the held-out split keeps each group whole (groups
#     numbered in order of first appearance, a line without one a group of its own, group g held
#     out when g % every == every - 1); tense.jsonl's minimal pairs never straddle the split, and
#     MiniLM (when installed) reads tense from every layer at >= 0.75 held out (split by example,
#     the present/past twin of each held-out sentence was trained on with the other label, and
#     layers 0, 1 and 6 scored 0.17-0.33); a dataset without groups splits by example as before;
#   - bad datasets and options are refused with a message; data/probes/ is what qkv writes.
# Skips (77) without the test environment unless QKV_REQUIRE_REFS=1.
# Usage: test_probe.py [QKV_BINARY]

import json
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_VERBOSITY', 'error')

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refenv  # noqa: E402

np, torch, transformers = refenv.need('numpy', 'torch', 'transformers')

import qkv_cli  # noqa: E402

TOL_X = 2e-4      # features, relative to the layer's largest magnitude
TOL_SIM = 2e-4    # CKA and cosine

failures = []


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg, flush=True)


MODELS = [
    ('gpt2', 'gpt2', 'layers=3 heads=4 d=64 ctx=128 seed=61'),
    ('llama-gqa', 'llama', 'layers=2 heads=4 kv_heads=2 d=64 ctx=128 seed=62 tok=gpt2'),
    ('bert', 'bert', 'layers=2 heads=4 d=64 ctx=128 seed=63 tok=bert-vocab'),
]


# ---------------------------------------------------------------------------------------
# References

def ref_fit(X, y, test, k, steps=200, lr=0.05, l2=1e-4):
    """Multinomial logistic regression as analysis/probe.h specifies it: features standardised
    with the training rows' mean and (population) standard deviation, zero start, full-batch Adam
    (0.9, 0.999, 1e-8) on the mean cross-entropy + l2/2 |W|^2 (the bias not decayed). Returns the
    held-out and the training accuracy (argmax, ties to the lower class)."""
    X = np.asarray(X, dtype=np.float64)
    tr = np.asarray(test) == 0
    xt, yt, xe, ye = X[tr], y[tr], X[~tr], y[~tr]
    mu = xt.mean(0)
    sd = np.sqrt(((xt - mu) ** 2).mean(0))
    sd[~(sd > 1e-12)] = 1
    xt, xe = (xt - mu) / sd, (xe - mu) / sd
    n, d = xt.shape
    W, b = np.zeros((k, d)), np.zeros(k)
    mW, vW, mb, vb = np.zeros_like(W), np.zeros_like(W), np.zeros(k), np.zeros(k)
    Y = np.eye(k)[yt]
    for s in range(1, steps + 1):
        z = xt @ W.T + b
        z = np.exp(z - z.max(1, keepdims=True))
        g = (z / z.sum(1, keepdims=True) - Y) / n
        gW, gb = g.T @ xt + l2 * W, g.sum(0)
        c1, c2 = 1 - 0.9 ** s, 1 - 0.999 ** s
        mW, vW = 0.9 * mW + 0.1 * gW, 0.999 * vW + 0.001 * gW * gW
        mb, vb = 0.9 * mb + 0.1 * gb, 0.999 * vb + 0.001 * gb * gb
        W -= lr * (mW / c1) / (np.sqrt(vW / c2) + 1e-8)
        b -= lr * (mb / c1) / (np.sqrt(vb / c2) + 1e-8)

    def acc(x, yy):
        return float(((x @ W.T + b).argmax(1) == yy).mean()) if len(yy) else float('nan')
    return acc(xe, ye), acc(xt, yt)


def ref_cka(a, b):
    a = a - a.mean(0)
    b = b - b.mean(0)
    return np.linalg.norm(a.T @ b) ** 2 / (np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b))


def ref_cos(a, b):
    return float(np.mean((a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))))


class Hf:
    """A transformers model and its fast tokenizer; states(ids) -> [L + 1, T, d] float64: the
    embeddings (hidden_states[0]) and each block's output (forward hooks: transformers puts the
    final norm on its last hidden state)."""

    def __init__(self, family, path):
        auto = transformers.AutoModelForMaskedLM if family == 'bert' else transformers.AutoModelForCausalLM
        self.m = auto.from_pretrained(path, dtype=torch.float32, attn_implementation='eager',
                                      local_files_only=True).eval()
        if os.path.exists(os.path.join(path, 'vocab.json')):
            self.tok = transformers.GPT2TokenizerFast(os.path.join(path, 'vocab.json'),
                                                      os.path.join(path, 'merges.txt'))
        else:
            self.tok = transformers.BertTokenizerFast(os.path.join(path, 'vocab.txt'))
        m = self.m
        self.blocks = (m.transformer.h if family == 'gpt2' else m.model.layers if family == 'llama'
                       else (m.bert if hasattr(m, 'bert') else m).encoder.layer)

    def states(self, ids):
        got, handles = [], []
        for b in self.blocks:
            handles.append(b.register_forward_hook(
                lambda mod, args, out: got.append((out[0] if isinstance(out, tuple) else out)[0].double().numpy())))
        try:
            with torch.no_grad():
                out = self.m(torch.tensor([ids]), output_hidden_states=True)
        finally:
            for h in handles:
                h.remove()
        return np.stack([out.hidden_states[0][0].double().numpy()] + got)

    def encode(self, text):
        """ids (special tokens added as the model does) and each token's byte offsets (None for
        an added special token)."""
        enc = self.tok(text, return_offsets_mapping=True, return_special_tokens_mask=True)
        b = text.encode('utf-8')
        # character offsets -> byte offsets
        cb = [len(text[:i].encode('utf-8')) for i in range(len(text) + 1)]
        offs = [None if sp else (cb[s], cb[e]) for (s, e), sp in zip(enc['offset_mapping'],
                                                                     enc['special_tokens_mask'])]
        return list(enc['input_ids']), offs, b


def token_labels(offs, raw, spans, other):
    """The label of each token as analysis/probe.h says: a token's span without its leading white
    space, an all-space token empty where the previous token ended; the first span it overlaps
    (an empty token: the first holding its position); `other` outside every span (None: no row)."""
    out, cur = [], 0
    for o in offs:
        if o is None:
            out.append(None)
            continue
        s, e = o
        while s < e and raw[s:s + 1] in (b' ', b'\t', b'\n', b'\r'):
            s += 1
        if s == e:
            s = e = cur
        else:
            cur = e
        lab = other
        for a, z, l in spans:
            if max(s, a) < min(e, z) or (s == e and a <= s < z):
                lab = l
                break
        out.append(('row', lab))
    return out


# ---------------------------------------------------------------------------------------
# Checks

def read_jsonl(path):
    with open(path, encoding='utf-8') as f:
        return [json.loads(l) for l in f if l.strip()]


def check_rows(tag, qkv, model, db, hf, causal, dataset, texts, labels_of, opts, tmp):
    """probe train DATASET opts dump=...: features, labels, split and accuracies against the
    references. labels_of(i, offs, raw) -> the expected ('row', label or None) per token of example i
    (None for an added special token), or ('sentence', label)."""
    dump = os.path.join(tmp, tag.replace(' ', '_') + '-dump')
    (res,) = qkv_cli.json_cmds(qkv, model, ['probe train %s %s dump=%s' % (dataset, opts, dump)], db)
    x = np.load(os.path.join(dump, 'x.npy'))
    y = np.load(os.path.join(dump, 'y.npy'))
    test = np.load(os.path.join(dump, 'test.npy'))
    ex = np.load(os.path.join(dump, 'example.npy'))
    pos = np.load(os.path.join(dump, 'pos.npy'))
    classes = res['classes']
    L1 = x.shape[1]
    # the expected rows, from transformers and the tokenizers package
    want_x, want_y, want_ex, want_pos = [], [], [], []
    for i, text in enumerate(texts):
        ids, offs, raw = hf.encode(text)
        h = hf.states(ids)
        labs = labels_of(i, offs, raw)
        if labs[0] == 'sentence':
            rows = [k for k, o in enumerate(offs) if o is not None]
            want_x.append(h[:, rows[-1]] if causal else h[:, rows].mean(1))
            want_y.append(labs[1])
            want_ex.append(i)
            want_pos.append(rows[-1] if causal else -1)
            continue
        for p, lab in enumerate(labs):
            if lab is None or lab[1] is None:
                continue
            want_x.append(h[:, p])
            want_y.append(lab[1])
            want_ex.append(i)
            want_pos.append(p)
    if list(ex) != want_ex or list(pos) != want_pos:
        bad = next((k for k in range(min(len(ex), len(want_ex))) if (ex[k], pos[k]) != (want_ex[k], want_pos[k])),
                   min(len(ex), len(want_ex)))
        fail('%s: rows (example, position) differ from row %d: qkv %s, expected %s (%d vs %d rows)'
             % (tag, bad, list(zip(ex[bad:bad + 3], pos[bad:bad + 3])),
                list(zip(want_ex[bad:bad + 3], want_pos[bad:bad + 3])), len(ex), len(want_ex)))
        return None
    want_x = np.stack(want_x)
    got_y = [classes[k] for k in y]
    if got_y != [str(v) for v in want_y]:
        k = next(k for k in range(len(got_y)) if got_y[k] != str(want_y[k]))
        fail('%s: row %d (example %d position %d) labelled %r, expected %r' % (tag, k, ex[k], pos[k], got_y[k],
                                                                               want_y[k]))
        return None
    for l in range(L1):
        scale = max(1.0, float(np.abs(want_x[:, l]).max()))
        err = float(np.abs(x[:, l] - want_x[:, l]).max()) / scale
        if not err <= TOL_X:
            fail('%s: layer %d features differ from transformers\' by %.3g (relative)' % (tag, l, err))
    want_test = (np.array(want_ex) % 5 == 4).astype(np.int32)
    if not np.array_equal(test, want_test):
        fail('%s: held-out rows are not those of every 5th example' % tag)
    if res['n_test'] != int(want_test.sum()) or res['rows'] != len(want_y):
        fail('%s: n_test %s rows %s, expected %d %d' % (tag, res['n_test'], res['rows'], want_test.sum(), len(want_y)))
    # the probe on transformers' features
    yk = np.array([classes.index(str(v)) for v in want_y])
    n_te = int(want_test.sum())
    for lay in res['layers']:
        l = lay['layer']
        acc, tr_acc = ref_fit(want_x[:, l], yk, want_test, len(classes))
        # float32 features may move a row across the boundary: allow one held-out row
        if abs(lay['accuracy'] - acc) > 1.0 / n_te + 1e-9 or abs(lay['train_accuracy'] - tr_acc) > 1.0 / (
                len(yk) - n_te) + 1e-9:
            fail('%s: layer %d accuracy %.6f (train %.6f), NumPy on transformers\' features %.6f (%.6f)'
                 % (tag, l, lay['accuracy'], lay['train_accuracy'], acc, tr_acc))
        if abs(lay['selectivity'] - (lay['accuracy'] - lay['control'])) > 1e-6:
            fail('%s: layer %d selectivity is not accuracy - control' % (tag, l))
    counts = np.bincount(yk[want_test == 0], minlength=len(classes))
    maj = float((yk[want_test == 1] == counts.argmax()).mean())
    if abs(res['majority'] - maj) > 1e-9:
        fail('%s: majority baseline %.6f, expected %.6f' % (tag, res['majority'], maj))
    accs = [(lay['layer'], lay['accuracy']) for lay in res['layers']]
    best = [max(a for _, a in accs[:i + 1]) for i in range(len(accs))]  # the best up to each layer
    deltas = [(accs[i][0], best[i] - best[i - 1]) for i in range(1, len(accs))]
    den = sum(dl for _, dl in deltas)
    want_e = sum(l * dl for l, dl in deltas) / den if den > 1e-12 else None
    got_e = res['expected_layer']
    if (want_e is None) != (got_e is None) or (want_e is not None and abs(got_e - want_e) > 1e-6):
        fail('%s: expected layer %s, expected %s' % (tag, got_e, want_e))
    best = max(accs, key=lambda a: a[1])
    if res['best_layer'] != [l for l, a in accs if a == best[1]][0]:
        fail('%s: best layer %s, expected %s' % (tag, res['best_layer'], best[0]))
    return res, want_x, yk, want_test, classes


def run_model(name, family, opts, qkv, tmp):
    t0 = time.time()
    model = os.path.join(tmp, name)
    db = os.path.join(tmp, 'qkv.db')
    # the tokenizer of an earlier model (tok=NAME): the tokenizers package reads GPT-2's and BERT's
    words = [w if not w.startswith('tok=') else 'tok=' + os.path.join(tmp, w[4:]) for w in opts.split()]
    p = qkv_cli.new_model(qkv, [family] + words + ['std=0.2', 'out=' + model], db)
    if p.returncode != 0:
        fail('%s: new-model: %s' % (name, p.stderr.strip()))
        return
    hf = Hf(family, model)
    (info,) = qkv_cli.json_cmds(qkv, model, ['model'], db)
    causal = info['causal']
    # token level, a built-in dataset: its sentences and spans as `probe data` writes them
    # (parity's sentences are number's: one generator makes every built-in dataset's sentences)
    for ds in ('bracket', 'number', 'parity'):
        path = os.path.join(tmp, '%s-%s.jsonl' % (name, 'number' if ds == 'parity' else ds))
        if ds != 'parity':
            qkv_cli.json_cmds(qkv, None, ['probe data %s "%s" n=40 seed=3' % (ds, path)], db)
        lines = read_jsonl(path)
        texts = [l['text'] for l in lines]

        def labels_of(i, offs, raw, lines=lines, ds=ds):
            if ds == 'parity':
                out, j = [], 0
                for o in offs:
                    out.append(None if o is None else ('row', 'even' if j % 2 == 0 else 'odd'))
                    j += o is not None
                return out
            return token_labels(offs, raw, [tuple(s) for s in lines[i]['labels']], 'O')
        check_rows('%s %s' % (name, ds), qkv, model, db, hf, causal, ds, texts, labels_of, 'n=40 seed=3', tmp)
    # token level, texts with newlines and tabs: a newline or a tab token is all white space, an
    # empty span where the previous token ended (before 2026-12-07 it was looked for after the
    # white space it is, and took the label of the word after it; after a tab, later tokens too)
    wtexts, wspans = [], []
    words = ['tab', 'here', 'Hello', 'world', 'line', 'end', 'x']
    for i in range(30):
        seps = ['\n', '\t', ' ', '\n\n', ' \t', '\t\n']
        text, sp = '', []
        for k in range(4):
            w = words[(i + 3 * k) % len(words)]
            if k:
                text += seps[(i + k) % len(seps)]
            n0 = len(text.encode('utf-8'))
            text += w
            if (i + k) % 3 == 0:
                sp.append([n0, len(text.encode('utf-8')), 'A' if k % 2 else 'B'])
        if i % 4 == 0 and len(sp) == 1:  # a span over a word and the tab after it
            sp[0][1] += 1
        wtexts.append(text)
        wspans.append(sp)
    wpath = os.path.join(tmp, '%s-white.jsonl' % name)
    with open(wpath, 'w', encoding='utf-8') as f:
        for t, sp in zip(wtexts, wspans):
            f.write(json.dumps({'text': t, 'labels': sp}) + '\n')
    check_rows('%s white space' % name, qkv, model, db, hf, causal, wpath, wtexts,
               lambda i, offs, raw: token_labels(offs, raw, [tuple(x) for x in wspans[i]], 'O'), 'layers=0,1', tmp)
    # token level from a file, the label a linear function of layer 2's representation (with a
    # margin: the tokens near the boundary are left out with other=none)
    lines = read_jsonl(os.path.join(tmp, '%s-number.jsonl' % name))
    texts = [l['text'] for l in lines] * 3
    texts = [t.replace('the', 'a the') if i >= 40 else t for i, t in enumerate(texts)]
    texts = [t if i < 80 else t.upper() for i, t in enumerate(texts)]
    rng = np.random.default_rng(7)
    L2 = 2
    enc = [hf.encode(t) for t in texts]
    feats = [hf.states(ids)[L2] for ids, _, _ in enc]
    w = rng.standard_normal(feats[0].shape[1])
    allscore = np.concatenate([f @ w for f in feats])
    med, gap = float(np.median(allscore)), 0.15 * float(allscore.std())
    file = os.path.join(tmp, '%s-linear.jsonl' % name)
    with open(file, 'w', encoding='utf-8') as f:
        for (ids, offs, raw), t, h in zip(enc, texts, feats):
            spans = []
            for o, s in zip(offs, h @ w):
                if o is None or abs(s - med) < gap or o[0] == o[1]:
                    continue
                a, z = o
                while a < z and raw[a:a + 1] == b' ':
                    a += 1
                if a < z and not any(max(a, sa) < min(z, sz) for sa, sz, _ in spans):
                    spans.append([a, z, 'hi' if s > med else 'lo'])
            f.write(json.dumps({'text': t, 'labels': spans}) + '\n')
    (res,) = qkv_cli.json_cmds(qkv, model, ['probe train "%s" other=none layers=0,%d' % (file, L2)], db)
    at = {l['layer']: l for l in res['layers']}
    if at[L2]['accuracy'] < 0.99:
        fail('%s: a label linear in layer %d is probed at %.4f there (>= 0.99 expected)' % (name, L2,
                                                                                          at[L2]['accuracy']))
    if abs(at[L2]['control'] - 0.5) > 0.1:
        fail('%s: the shuffled-label control at layer %d is %.4f, not near chance (0.5)' % (name, L2,
                                                                                          at[L2]['control']))
    # sentence level: the label of a text is whether it holds a digit
    texts = [l['text'] for l in read_jsonl(os.path.join(tmp, '%s-bracket.jsonl' % name))]
    texts_labels = ['digit' if any(c.isdigit() for c in t) else 'none' for t in texts]
    file = os.path.join(tmp, '%s-sentence.jsonl' % name)
    with open(file, 'w', encoding='utf-8') as f:
        for t, lab in zip(texts, texts_labels):
            f.write(json.dumps({'text': t, 'label': lab}) + '\n')
    check_rows('%s sentence' % name, qkv, model, db, hf, causal, '"%s"' % file, texts,
               lambda i, offs, raw: ('sentence', texts_labels[i]), '', tmp)
    # layersim
    text = texts[0]
    (sim,) = qkv_cli.json_cmds(qkv, model, ['layersim "%s"' % text], db)
    h = hf.states(hf.encode(text)[0])
    L1 = h.shape[0]
    cka = np.array([[ref_cka(h[a], h[b]) for b in range(L1)] for a in range(L1)])
    cos = np.array([[ref_cos(h[a], h[b]) for b in range(L1)] for a in range(L1)])
    for what, got, want in (('cka', sim['cka'], cka), ('cosine', sim['cosine'], cos)):
        got = np.array(got, dtype=np.float64)
        if got.shape != want.shape or not np.abs(got - want).max() <= TOL_SIM:
            fail('%s: layersim %s differs from NumPy on transformers\' states: %s vs %s' % (name, what, got, want))
    if not np.abs(np.diag(np.array(sim['cka'])) - 1).max() <= 1e-6:
        fail('%s: layersim: the CKA of a layer with itself is not 1' % name)
    print('%s: probes and layersim checked (%.1f s)' % (name, time.time() - t0), flush=True)


def bert_vocab(qkv, tmp):
    """tmp/bert-vocab/vocab.txt: new-model's default BERT vocabulary without its second "a" (it
    holds "a" as a character and as a word; transformers gives the word's id, qkv the first)."""
    db = os.path.join(tmp, 'qkv.db')
    d = os.path.join(tmp, 'bert-default')
    p = qkv_cli.new_model(qkv, ['bert', 'layers=1', 'heads=2', 'd=16', 'ctx=16', 'out=' + d], db)
    if p.returncode != 0:
        fail('bert default vocabulary: new-model: %s' % p.stderr.strip())
        return
    seen, keep = set(), []
    for w in open(os.path.join(d, 'vocab.txt'), encoding='utf-8').read().splitlines():
        if w not in seen:
            seen.add(w)
            keep.append(w)
    os.makedirs(os.path.join(tmp, 'bert-vocab'), exist_ok=True)
    with open(os.path.join(tmp, 'bert-vocab', 'vocab.txt'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(keep) + '\n')


def check_normalized(qkv, tmp):
    """Token labels where the tokenizer changes the text: bert-base-uncased lower-cases and strips
    accents ("Zoé" is the token "zoe"), splits CJK characters and gives [UNK] for what it does not
    know. Each token's label is the one its transformers offsets give (token_labels). Before
    2026-12-07 a piece not found as written ("zoe" against "Zoé") got an empty span and the cursor
    stayed behind it: every later token of the text lost its label, or took the first span's."""
    tokdir = os.path.join(os.environ.get('QKV_SHARED_MODELS', ''), 'bert-uncased-tokenizer')
    if not os.path.isfile(os.path.join(tokdir, 'tokenizer.json')):
        print('normalized token labels: no bert-uncased-tokenizer in $QKV_SHARED_MODELS, skipped')
        return
    db = os.path.join(tmp, 'qkv.db')
    model = os.path.join(tmp, 'bert-uncased')
    p = qkv_cli.new_model(qkv, ['bert', 'layers=1', 'heads=2', 'd=32', 'ctx=64', 'seed=64', 'std=0.2',
                                'tok=' + tokdir, 'out=' + model], db)
    if p.returncode != 0:
        fail('bert-uncased: new-model: %s' % p.stderr.strip())
        return
    hf = Hf('bert', model)
    people = ['Anna', 'Zoé', 'José', 'ÉMILE', 'Ünal', 'Bob', 'Ana', 'Noël']
    places = ['Zürich', '東京', 'Malmö', 'Paris', 'Ørsted']
    unknown = ['\U00013000', '\u2603\ufe0f', '']
    rng = np.random.default_rng(11)
    texts, spans = [], []
    for i in range(30):
        a, b = rng.choice(people, 2, replace=False)
        c = places[int(rng.integers(len(places)))]
        u = unknown[i % 3]
        parts = [(a, 'PER'), (' met ', None), (b, 'PER'), (' in ', None), (c, 'LOC'), (' ' + u + ' and Bob' if u
                                                                                       else ' and ', None)]
        if not u:
            parts.append(('Bob', 'PER'))
        parts.append(('.', None))
        text, sp = '', []
        for w, lab in parts:
            if lab:
                n0 = len(text.encode('utf-8'))
                sp.append((n0, n0 + len(w.encode('utf-8')), lab))
            text += w
        texts.append(text)
        spans.append(sp)
    # two [UNK] words side by side, one labelled: each its own word, as transformers' offsets give
    # (the first one's span ran over both, and the second took its label)
    for i in range(10):
        u, v = ('\u01c5', '\U0001F600') if i % 2 else ('\U0001F600', '\u01c5')
        text = 'xyz %s %s abc %s' % (u, v, people[i % len(people)])
        n0 = len('xyz '.encode('utf-8'))
        first = i % 3 != 2
        a = n0 if first else n0 + len((u + ' ').encode('utf-8'))
        texts.append(text)
        spans.append([(a, a + len((u if first else v).encode('utf-8')), 'UNK')])
    path = os.path.join(tmp, 'normalized.jsonl')
    with open(path, 'w', encoding='utf-8') as f:
        for t, sp in zip(texts, spans):
            f.write(json.dumps({'text': t, 'labels': [list(x) for x in sp]}) + '\n')

    def labels_of(i, offs, raw):
        return token_labels(offs, raw, spans[i], 'O')
    check_rows('bert-uncased normalized', qkv, model, db, hf, False, path, texts, labels_of, '', tmp)


def check_shipped(qkv, tmp):
    """data/probes/: the span datasets are what `probe data NAME FILE n=400 seed=1` writes today, and
    tense.jsonl trains (sentence level, two classes)."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'data', 'probes')
    db = os.path.join(tmp, 'qkv.db')
    for ds in ('number', 'capital', 'bracket'):
        out = os.path.join(tmp, 'shipped-%s.jsonl' % ds)
        qkv_cli.json_cmds(qkv, None, ['probe data %s "%s" n=400 seed=1' % (ds, out)], db)
        if open(out, 'rb').read() != open(os.path.join(src, ds + '.jsonl'), 'rb').read():
            fail('data/probes/%s.jsonl differs from what `probe data %s FILE n=400 seed=1` writes' % (ds, ds))
    (res,) = qkv_cli.json_cmds(qkv, os.path.join(tmp, 'gpt2'),
                               ['probe train "%s" layers=0,3' % os.path.join(src, 'tense.jsonl')], db)
    if res['level'] != 'sentence' or sorted(res['classes']) != ['past', 'present'] or res['examples'] != 60:
        fail('data/probes/tense.jsonl: %s' % {k: res[k] for k in ('level', 'classes', 'examples')})


def check_errors(qkv, tmp):
    db = os.path.join(tmp, 'qkv.db')
    model = os.path.join(tmp, 'gpt2')
    files = {
        'notjson.jsonl': '{"text": "a", "label": 1}\n{"text": \n',
        'mixed.jsonl': '{"text": "a", "label": 1}\n{"text": "b", "labels": []}\n',
        'badspan.jsonl': '{"text": "abc", "labels": [[2, 9, "x"]]}\n',
        'nolabel.jsonl': '{"text": "abc"}\n',
        'oneclass.jsonl': ''.join('{"text": "t%d", "label": "same"}\n' % i for i in range(10)),
        'heldclass.jsonl': ''.join('{"text": "t%d", "label": "%s"}\n' % (i, 'b' if i == 4 else 'a') for i in range(10)),
        'empty.jsonl': '\n\n',
        'few.jsonl': '{"text": "a", "label": 1}\n{"text": "b", "label": 2}\n',
        'badgroup.jsonl': '{"text": "a", "label": 1, "group": "x"}\n{"text": "b", "label": 2, "group": 1.5}\n',
        'badgroup2.jsonl': '{"text": "a", "label": 1, "group": 3}\n{"text": "b", "label": 2, "group": [3]}\n',
        'badgroup3.jsonl': '{"text": "a", "labels": [], "group": true}\n',
        'fewgroups.jsonl': ''.join('{"text": "t%d", "label": %d, "group": "g"}\n' % (i, i % 2) for i in range(10)),
        # an empty text gave no row and was dropped: "every row has the label 'y'" of a file with an x
        'emptytext.jsonl': '{"text": "", "label": "x"}\n{"text": "b", "label": "y"}\n',
        # a text of spaces is no token of its own to a WordPiece (only [CLS] [SEP]): dropped too
        'spaces.jsonl': ''.join('{"text": "%s", "label": %d}\n' % ('   ' if i == 3 else 'w%d' % i, i % 2)
                                for i in range(10)),
    }
    for name, body in files.items():
        with open(os.path.join(tmp, name), 'w') as f:
            f.write(body)
    cases = [
        ('probe train "%s"' % os.path.join(tmp, 'notjson.jsonl'), 'line 2'),
        ('probe train "%s"' % os.path.join(tmp, 'mixed.jsonl'), 'one kind per dataset'),
        ('probe train "%s"' % os.path.join(tmp, 'badspan.jsonl'), 'start <= end'),
        ('probe train "%s"' % os.path.join(tmp, 'nolabel.jsonl'), '"label"'),
        ('probe train "%s"' % os.path.join(tmp, 'oneclass.jsonl'), 'two classes'),
        # a label only in held-out rows (the fifth example): trained without it, silently, every
        # layer's accuracy 0.5
        ('probe train "%s"' % os.path.join(tmp, 'heldclass.jsonl'), "the label 'b' is only in held-out rows (1)"),
        ('probe train "%s"' % os.path.join(tmp, 'empty.jsonl'), 'no examples'),
        ('probe train "%s"' % os.path.join(tmp, 'few.jsonl'), 'held-out split'),
        ('probe train "%s"' % os.path.join(tmp, 'badgroup.jsonl'), 'line 2: "group" must be a string or a whole number'),
        ('probe train "%s"' % os.path.join(tmp, 'badgroup2.jsonl'), 'line 2: "group" must be a string or a whole number'),
        ('probe train "%s"' % os.path.join(tmp, 'badgroup3.jsonl'), 'line 1: "group" must be a string or a whole number'),
        ('probe train "%s"' % os.path.join(tmp, 'fewgroups.jsonl'), 'too few for a held-out split of one group in 5'),
        ('probe train "%s"' % os.path.join(tmp, 'emptytext.jsonl'), "'%s' line 1: the text is empty"
         % os.path.join(tmp, 'emptytext.jsonl')),
        ('probe train "%s"' % os.path.join(tmp, 'spaces.jsonl'), 'example 4 ("   ") has no tokens of its own', 'bert'),
        ('probe train nosuch', 'neither a file nor a built-in'),
        ('probe train number layers=9', 'out of range'),
        ('probe train number layers=2,1', 'ascending'),
        ('probe train number steps=0', 'steps'),
        ('probe train', 'give a dataset'),
        ('probe fit number', 'probe train'),
        ('probe data nosuch "%s"' % os.path.join(tmp, 'x.jsonl'), 'no built-in dataset'),
        ('probe data parity "%s"' % os.path.join(tmp, 'x.jsonl'), 'no spans to write'),
        ('layersim "a"', 'at least 2'),
        # another subcommand's options are refused, not ignored (before 2026-12-06 every one of
        # these ran as if the option were not there: no dump, no file written)
        ('probe apply "%s" "x" dump=%s save=%s' % (os.path.join(tmp, 'p.json'), tmp, os.path.join(tmp, 'z.json')),
         'dump= does not apply'),
        ('probe train number n=20 steps=5 limit=3', 'limit= does not apply'),
        ('probe train number n=20 steps=5 ids=1,2', 'ids= does not apply'),
        ('probe runs steps=3', 'steps= does not apply'),
        ('probe runs colour=red', 'probe runs: colour= does not apply (only dataset=, limit=)'),
        ('probe data number "%s" chat=true' % os.path.join(tmp, 'x.jsonl'), 'chat= does not apply'),
    ]
    bert = os.path.join(tmp, 'bert-errors')
    p = qkv_cli.run(qkv, ['--db', db, '-e', 'new-model bert layers=1 heads=2 d=16 ctx=64 seed=1 out=' + bert])
    if p.returncode != 0:
        fail('new-model bert: ' + p.stderr)
    for cmd, want, *on in cases:
        p = qkv_cli.run(qkv, ['--model', bert if on else model, '--db', db, '-e', cmd])
        if p.returncode == 0 or want not in p.stderr or 'error:' not in p.stderr:
            fail('%r: expected an error naming %r, got exit %d: %s' % (cmd, want, p.returncode, p.stderr.strip()))


def want_groups(rows):
    """Each line's group as the split numbers them: in order of first appearance, a string and a
    number apart, a line without "group" a group of its own."""
    seen, out, n = {}, [], 0
    for r in rows:
        g = r.get('group')
        key = None if g is None else (type(g) is str, g)
        if key is not None and key in seen:
            out.append(seen[key])
            continue
        if key is not None:
            seen[key] = n
        out.append(n)
        n += 1
    return out


def check_split(tag, qkv, model, db, path, every, tmp):
    """probe train PATH every=EVERY dump=...: held-out rows are those of the groups g with
    g % every == every - 1, no group on both sides, and the counts the JSON reports."""
    rows = read_jsonl(path)
    groups = np.array(want_groups(rows))
    dump = os.path.join(tmp, tag + '-dump')
    (res,) = qkv_cli.json_cmds(qkv, model, ['probe train "%s" layers=0,1 steps=20 every=%d dump=%s'
                                            % (path, every, dump)], db)
    test = np.load(os.path.join(dump, 'test.npy'))
    ex = np.load(os.path.join(dump, 'example.npy'))
    g = groups[ex]
    both = sorted(set(g[test == 1].tolist()) & set(g[test == 0].tolist()))
    if both:
        fail('%s: groups %s have rows both held out and trained on' % (tag, both[:8]))
    want_test = (g % every == every - 1).astype(np.int32)
    if not np.array_equal(test, want_test):
        fail('%s: held-out rows are not those of the groups g %% %d == %d' % (tag, every, every - 1))
    ng = int(groups.max()) + 1
    want = {'n_test': int(want_test.sum()), 'groups': ng, 'test_groups': sum(1 for k in range(ng) if k % every == every - 1)}
    got = {k: res.get(k) for k in want}
    if got != want:
        fail('%s: %s, expected %s' % (tag, got, want))
    gpath = os.path.join(dump, 'group.npy')
    if not os.path.exists(gpath) or not np.array_equal(np.load(gpath), g):
        fail('%s: dump= group.npy missing or not the rows\' groups' % tag)
    return res


def check_groups(qkv, tmp):
    """Grouped datasets split by group; datasets without one split by example as before."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'data', 'probes')
    db = os.path.join(tmp, 'qkv.db')
    model = os.path.join(tmp, 'gpt2')
    tense = os.path.join(src, 'tense.jsonl')
    rows = read_jsonl(tense)
    # the shipped minimal pairs: present then past, one group a pair
    if [r.get('group') for r in rows] != [i // 2 for i in range(len(rows))]:
        fail('data/probes/tense.jsonl: each minimal pair should be one group (0, 0, 1, 1, ...)')
    check_split('tense', qkv, model, db, tense, 5, tmp)
    check_split('tense-every3', qkv, model, db, tense, 3, tmp)
    # mixed: lines without a group, strings and numbers (1 and "1" differ), a group resumed later
    mixed = os.path.join(tmp, 'mixed-groups.jsonl')
    spec = [None, 'a', 'a', 1, None, '1', 1, 'b', None, 'a', -4, -4, None, 'c', 'c', 2, 2, None, 'd', 'd']
    with open(mixed, 'w') as f:
        for i, gv in enumerate(spec):
            r = {'text': 'the cat number %d saw a dog.' % i, 'label': ['x', 'y'][i % 2]}
            if gv is not None:
                r['group'] = gv
            f.write(json.dumps(r) + '\n')
    if want_groups(read_jsonl(mixed))[:8] != [0, 1, 1, 2, 3, 4, 2, 5]:
        fail('want_groups: numbering')
    check_split('mixed', qkv, model, db, mixed, 2, tmp)
    check_split('mixed-every3', qkv, model, db, mixed, 3, tmp)
    # no group anywhere: every example its own group, the split by example as before
    plain = os.path.join(tmp, 'plain.jsonl')
    with open(plain, 'w') as f:
        for r in rows:
            f.write(json.dumps({'text': r['text'], 'label': r['label']}) + '\n')
    res = check_split('plain', qkv, model, db, plain, 5, tmp)
    if res.get('groups') != len(rows) or res.get('n_test') != len(rows) // 5:
        fail('plain: groups %s n_test %s, expected %d %d' % (res.get('groups'), res.get('n_test'), len(rows), len(rows) // 5))
    check_split('number-shipped', qkv, model, db, os.path.join(src, 'number.jsonl'), 5, tmp)
    # a real encoder: with the pairs kept whole, tense is read from every layer (split by example
    # it scored 0.17-0.33 at layers 0, 1 and 6: each held-out sentence's twin, the other tense,
    # was trained on)
    (listing,) = qkv_cli.json_cmds(qkv, None, ['models'], db)
    path = next((m['path'] for m in listing['models'] if m['name'] == 'minilm'), None)
    if not path:
        print('tense on minilm: skipped (minilm is not installed: ./dev models)')
        return
    (res,) = qkv_cli.json_cmds(qkv, path, ['probe train "%s" steps=200' % tense], db)
    accs = [l['accuracy'] for l in res['layers']]
    print('tense on minilm: held-out accuracy per layer %s' % ' '.join('%.3f' % a for a in accs))
    if min(accs) < 0.75:
        fail('tense on minilm: held-out accuracy %s, expected >= 0.75 at every layer with the pairs kept whole'
             % ['%.3f' % a for a in accs])


def main():
    qkv = qkv_cli.qkv_path()
    torch.set_num_threads(1)
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix='qkv-probe-')
    try:
        bert_vocab(qkv, tmp)
        for name, family, opts in MODELS:
            try:
                run_model(name, family, opts, qkv, tmp)
            except qkv_cli.QkvError as ex:
                fail('%s: %s' % (name, ex))
        check_errors(qkv, tmp)
        check_groups(qkv, tmp)
        check_shipped(qkv, tmp)
        check_normalized(qkv, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('probe: %d failure(s), %.1f s' % (len(failures), time.time() - t0))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
