#!/usr/bin/env python3
# test_reference.py - suite 'reference': qkv's GPT-2 engine against the NumPy reference (gpt2_ref.py).
#
# For several random-weight models that `qkv new-model gpt2` writes in the real HF layouts
# (f32, f16, bf16, tied and untied heads, a `transformer.` prefix, 2 shards, the real GPT-2
# vocabulary), checks:
#   - the files: config fields, tensor names/shapes/dtypes, mask buffers, shards + index;
#   - `model`: the summary fields and the parameter count;
#   - logits: max |dlogit| <= 1e-3 at every position for lengths 1, 7, 128 and the full context;
#   - attention: probabilities of every layer and head within 1e-5 (and the single-head form);
#   - the KV cache: greedy `generate` equals recomputing `logits` of prompt+generated (argmax and
#     per-step log-probabilities within 1e-4), and follows the reference's greedy choices; one run
#     decodes up to the last position of the context.
# Usage: test_reference.py QKV_BINARY. Prints the max errors; fails with expected vs got.

import json
import os
import shutil
import sys
import tempfile
import time
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_ref  # noqa: E402
import qkv_cli  # noqa: E402

TOL_LOGIT = 1e-3
TOL_ATT = 1e-5
TOL_LOGPROB = 1e-4
STD = 0.2

failures = []


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg, flush=True)


def worst(got, want):
    """(max |got - want|, index of it) for same-shaped arrays; (inf, None) on a shape mismatch."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float('inf'), None
    if got.size == 0:
        return 0.0, None
    d = np.abs(got - want)
    d = np.where(np.isnan(d), np.inf, d)
    i = np.unravel_index(int(np.argmax(d)), d.shape)
    return float(d[i]), i


def compare(what, got, want, tol):
    """Check got against want within tol; report shape or the worst entry; return the max error."""
    got_a, want_a = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    err, i = worst(got_a, want_a)
    if got_a.shape != want_a.shape:
        fail('%s: shape expected %s, got %s' % (what, want_a.shape, got_a.shape))
    elif err > tol:
        fail('%s: max err %.3g > %g at %s: expected %.8g, got %.8g' % (what, err, tol, i, want_a[i], got_a[i]))
    return err


class Variant:
    def __init__(self, name, opts, lengths, gens, tok=None, texts=()):
        self.name, self.opts, self.lengths, self.gens, self.tok, self.texts = \
            name, opts, lengths, gens, tok, texts


def check_files(v, model_dir, opts):
    """The directory new-model wrote has the real HF GPT-2 layout."""
    with open(os.path.join(model_dir, 'config.json')) as f:
        cfg = json.load(f)
    for key, want in (('model_type', 'gpt2'), ('n_layer', int(opts['layers'])), ('n_head', int(opts['heads'])),
                      ('n_embd', int(opts['d'])), ('n_positions', int(opts['ctx']))):
        if cfg.get(key) != want:
            fail('%s: config.json %s expected %r, got %r' % (v.name, key, want, cfg.get(key)))
    for key in ('vocab_size', 'layer_norm_epsilon'):
        if key not in cfg:
            fail('%s: config.json has no %s' % (v.name, key))
    for fname in ('vocab.json', 'merges.txt'):
        if not os.path.exists(os.path.join(model_dir, fname)):
            fail('%s: new-model wrote no %s' % (v.name, fname))
    shards = int(opts.get('shards', 1))
    if shards > 1:
        idx = os.path.join(model_dir, 'model.safetensors.index.json')
        if not os.path.exists(idx):
            fail('%s: shards=%d but no model.safetensors.index.json' % (v.name, shards))
            return
        with open(idx) as f:
            files = sorted(set(json.load(f)['weight_map'].values()))
        want = ['model-%05d-of-%05d.safetensors' % (i + 1, shards) for i in range(shards)]
        if files != want:
            fail('%s: shard files expected %s, got %s' % (v.name, want, files))
    else:
        files = ['model.safetensors']
    headers = {}
    for fn in files:
        h, _, _ = gpt2_ref.read_safetensors_header(os.path.join(model_dir, fn))
        headers.update({k: x for k, x in h.items() if k != '__metadata__'})
    prefix = opts.get('prefix', '')
    L, d, ctx = int(opts['layers']), int(opts['d']), int(opts['ctx'])
    V = cfg.get('vocab_size')
    dtype = {'f32': 'F32', 'f16': 'F16', 'bf16': 'BF16'}[opts.get('dtype', 'f32')]
    shapes = {'wte.weight': [V, d], 'wpe.weight': [ctx, d], 'ln_f.weight': [d], 'ln_f.bias': [d]}
    for l in range(L):
        p = 'h.%d.' % l
        shapes.update({p + 'ln_1.weight': [d], p + 'ln_1.bias': [d], p + 'ln_2.weight': [d], p + 'ln_2.bias': [d],
                       p + 'attn.c_attn.weight': [d, 3 * d], p + 'attn.c_attn.bias': [3 * d],
                       p + 'attn.c_proj.weight': [d, d], p + 'attn.c_proj.bias': [d],
                       p + 'mlp.c_fc.weight': [d, 4 * d], p + 'mlp.c_fc.bias': [4 * d],
                       p + 'mlp.c_proj.weight': [4 * d, d], p + 'mlp.c_proj.bias': [d]})
    for name, shape in shapes.items():
        got = headers.get(prefix + name)
        if got is None:
            fail('%s: tensor %s missing from the written files' % (v.name, prefix + name))
        elif got['shape'] != shape or got['dtype'] != dtype:
            fail('%s: tensor %s expected %s %s, got %s %s' % (v.name, prefix + name, dtype, shape,
                                                              got['dtype'], got['shape']))
    if not any(k.endswith('.attn.bias') for k in headers):
        fail('%s: no h.N.attn.bias mask buffers written (real files have them)' % v.name)
    untied = opts.get('tied') == 'false'
    if untied != ('lm_head.weight' in headers):
        fail('%s: tied=%s but lm_head.weight %s' % (v.name, opts.get('tied', 'default'),
                                                    'present' if 'lm_head.weight' in headers else 'absent'))


def check_weights(v, ref):
    """Weights look like N(0, std); LayerNorm weights around 1."""
    wte = ref.w['wte.weight']
    s = float(wte.std())
    if abs(s - STD) > 0.1 * STD:
        fail('%s: wte std expected ~%g, got %.4g' % (v.name, STD, s))
    m = float(ref.w['ln_f.weight'].mean())
    if abs(m - 1.0) > 0.5:
        fail('%s: ln_f.weight mean expected ~1, got %.4g' % (v.name, m))


def run_variant(v, qkv, tmp):
    t0 = time.time()
    model_dir = os.path.join(tmp, v.name)
    db = os.path.join(tmp, 'qkv.db')
    opts = dict(kv.split('=', 1) for kv in v.opts.split())
    args = ['gpt2'] + v.opts.split() + ['std=%g' % STD, 'out=' + model_dir]
    if v.tok:
        args.append('tok=' + v.tok)
    p = qkv_cli.new_model(qkv, args, db)
    if p.returncode != 0:
        fail('%s: new-model %s\n  exit %d, stderr: %s' % (v.name, ' '.join(args), p.returncode, p.stderr.strip()))
        return
    check_files(v, model_dir, opts)
    ref = gpt2_ref.GPT2(model_dir)
    check_weights(v, ref)
    V, L, H = ref.vocab, ref.n_layer, ref.n_head
    rng = np.random.default_rng(zlib.crc32(v.name.encode()))
    errs = {'logit': 0.0, 'att': 0.0, 'logprob': 0.0, 'spread': 0.0}

    (info,) = qkv_cli.json_cmds(qkv, model_dir, ['model'], db)
    for key, want in (('arch', 'gpt2'), ('n_layer', L), ('n_head', H), ('n_embd', ref.d),
                      ('n_ctx', ref.n_ctx), ('vocab', V), ('params', ref.n_params())):
        if info.get(key) != want:
            fail('%s: model: %s expected %r, got %r' % (v.name, key, want, info.get(key)))

    # logits and attention at each length, all positions
    for T in v.lengths:
        ids = rng.integers(0, V, size=T)
        want_logits, want_att = ref.forward(ids)
        errs['spread'] = max(errs['spread'], float(want_logits.std()))
        l, h = int(rng.integers(0, L)), int(rng.integers(0, H))
        a = qkv_cli.ids_arg(ids)
        lo, at_all, at_one = qkv_cli.json_cmds(
            qkv, model_dir, ['logits %s full=true' % a, 'attention %s layer=all head=all' % a,
                             'attention %s layer=%d head=%d' % (a, l, h)], db)
        tag = '%s T=%d' % (v.name, T)
        if lo.get('ids') != [int(i) for i in ids]:
            fail('%s: logits echoed ids differ from the ids given' % tag)
        errs['logit'] = max(errs['logit'], compare(tag + ' logits', lo.get('logits'), want_logits, TOL_LOGIT))
        top = lo.get('top') or []
        want_last = want_logits[-1]
        if not top:
            fail('%s: logits has no top entries' % tag)
        else:
            if top[0].get('id') != int(np.argmax(want_last)) and \
                    want_last.max() - want_last[top[0].get('id', 0) % V] > TOL_LOGIT:
                fail('%s: top[0].id expected %d, got %r' % (tag, int(np.argmax(want_last)), top[0].get('id')))
            lp = gpt2_ref.log_softmax(want_last)
            for t in top:
                compare(tag + ' top id %r logit' % t.get('id'), t.get('logit'), want_last[t['id']], TOL_LOGIT)
                compare(tag + ' top id %r prob' % t.get('id'), t.get('prob'), np.exp(lp[t['id']]), TOL_LOGPROB)
        errs['att'] = max(errs['att'], compare(tag + ' attention layer=all head=all', at_all.get('layers'),
                                               want_att, TOL_ATT))
        errs['att'] = max(errs['att'], compare(tag + ' attention layer=%d head=%d' % (l, h), at_one.get('matrix'),
                                               want_att[l, h], TOL_ATT))
        if len(at_one.get('tokens') or []) != T:
            fail('%s: attention tokens expected %d entries, got %r' % (tag, T, len(at_one.get('tokens') or [])))
        m = np.asarray(at_one.get('matrix'), dtype=np.float64)
        if m.shape == (T, T) and np.any(np.triu(m, 1) != 0):
            fail('%s: attention has non-zero entries above the diagonal (future positions)' % tag)

    # incremental decoding (KV cache) against recomputation and the reference
    for plen, n in v.gens:
        prompt = [int(i) for i in rng.integers(0, V, size=plen)]
        errs['logprob'] = max(errs['logprob'], check_generate(v, qkv, model_dir, db, ref,
                                                              'ids=' + ','.join(map(str, prompt)), prompt, n))
    for text in v.texts:
        errs['logprob'] = max(errs['logprob'], check_generate(v, qkv, model_dir, db, ref, '"%s"' % text, None, 12))
    print('%-10s max |dlogit| %.3g  max |dattention| %.3g  max |dlogprob| %.3g  (logit std %.2f, %.1f s)'
          % (v.name, errs['logit'], errs['att'], errs['logprob'], errs['spread'], time.time() - t0), flush=True)


def check_generate(v, qkv, model_dir, db, ref, prompt_arg, prompt, n):
    """Greedy generate n tokens; recompute prompt+generated from scratch; compare. Returns max err."""
    tag = '%s generate %s max=%d' % (v.name, prompt_arg if len(prompt_arg) < 40 else prompt_arg[:40] + '...', n)
    (g,) = qkv_cli.json_cmds(qkv, model_dir, ['generate %s max=%d temperature=0' % (prompt_arg, n)], db)
    for key in ('run_id', 'text', 'ids', 'logprobs', 'prefill_tok_s', 'decode_tok_s', 'prompt_ids', 'steps'):
        if key not in g:
            fail('%s: JSON has no %s' % (tag, key))
    gen = [int(i) for i in g.get('ids') or []]
    pids = [int(i) for i in g.get('prompt_ids') or []]
    if prompt is not None and pids != prompt:
        fail('%s: prompt_ids expected %s, got %s' % (tag, prompt[:10], pids[:10]))
    if not gen or not pids:
        fail('%s: nothing generated (ids %s, prompt_ids %s)' % (tag, gen, pids[:10]))
        return 0.0
    if len(gen) != n:
        print('note: %s stopped after %d tokens' % (tag, len(gen)))
    steps = g.get('steps') or []
    if len(steps) != len(gen) or len(g.get('logprobs') or []) != len(gen):
        fail('%s: %d ids but %d steps and %d logprobs' % (tag, len(gen), len(steps), len(g.get('logprobs') or [])))
        return 0.0
    full = (pids + gen)[:-1]  # the last generated token is never fed back
    (lo,) = qkv_cli.json_cmds(qkv, model_dir, ['logits %s full=true' % qkv_cli.ids_arg(full)], db)
    rec = np.asarray(lo.get('logits'), dtype=np.float64)
    if rec.shape != (len(full), ref.vocab):
        fail('%s: recomputed logits shape expected %s, got %s' % (tag, (len(full), ref.vocab), rec.shape))
        return 0.0
    want = ref.logits(full)
    err = 0.0
    for i, tok in enumerate(gen):
        pos = len(pids) - 1 + i
        row = rec[pos]
        lp = gpt2_ref.log_softmax(row)
        if steps[i].get('id') != tok:
            fail('%s step %d: steps.id %r but ids[%d] = %d' % (tag, i, steps[i].get('id'), i, tok))
        # greedy = argmax of the recomputation (allowing float ties)
        if row.max() - row[tok] > TOL_LOGPROB:
            fail('%s step %d: generated %d (logit %.6g) but recomputed argmax is %d (logit %.6g)'
                 % (tag, i, tok, row[tok], int(np.argmax(row)), row.max()))
        # and of the float64 reference
        if want[pos].max() - want[pos][tok] > TOL_LOGIT:
            fail('%s step %d: generated %d but the reference argmax is %d (logits %.6g vs %.6g)'
                 % (tag, i, tok, int(np.argmax(want[pos])), want[pos][tok], want[pos].max()))
        for what, got in (('steps.logprob', steps[i].get('logprob')), ('logprobs', g['logprobs'][i])):
            e = abs(float(got) - lp[tok]) if got is not None else float('inf')
            err = max(err, e)
            if e > TOL_LOGPROB:
                fail('%s step %d: %s expected %.7g (recomputed), got %r' % (tag, i, what, lp[tok], got))
        for t in steps[i].get('top') or []:
            e = abs(float(t.get('logprob')) - lp[int(t.get('id'))])
            err = max(err, e)
            if e > TOL_LOGPROB:
                fail('%s step %d: top id %r logprob expected %.7g, got %r' % (tag, i, t.get('id'),
                                                                            lp[int(t['id'])], t.get('logprob')))
        if not steps[i].get('top'):
            fail('%s step %d: no top alternatives' % (tag, i))
    return err


def main():
    qkv = qkv_cli.qkv_path()
    if not os.path.exists(qkv):
        print('FAIL: qkv binary not found at %s' % qkv)
        return 1
    models = os.environ.get('QKV_SHARED_MODELS',
                            os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'shared', 'models'))
    tokdir = os.path.join(models, 'gpt2-bpe-tokenizer')
    full = [1, 7, 128, 256]
    variants = [
        Variant('f32', 'layers=2 heads=4 d=64 ctx=256 seed=1', full, [(5, 40), (200, 57)]),
        Variant('f16', 'layers=3 heads=3 d=48 ctx=256 seed=2 dtype=f16', full, [(7, 24)]),
        Variant('bf16', 'layers=2 heads=2 d=40 ctx=256 seed=3 dtype=bf16', full, [(7, 24)]),
        Variant('untied', 'layers=2 heads=4 d=64 ctx=256 seed=4 tied=false vocab=300', full, [(3, 30)]),
        Variant('prefix', 'layers=1 heads=1 d=32 ctx=256 seed=5 prefix=transformer. tied=false', full, [(7, 24)]),
        Variant('shards', 'layers=4 heads=4 d=32 ctx=256 seed=6 shards=2', full, [(7, 24)]),
    ]
    if os.path.exists(os.path.join(tokdir, 'encoder.json')):
        variants.append(Variant('gpt2vocab', 'layers=2 heads=4 d=64 ctx=32 seed=7', [1, 7, 32], [(4, 20)],
                                tok=tokdir, texts=('Hello world',)))
    else:
        print('note: %s absent; the real-vocabulary variant is skipped' % tokdir)
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix='qkv-ref-')
    try:
        for v in variants:
            try:
                run_variant(v, qkv, tmp)
            except qkv_cli.QkvError as ex:
                fail('%s: %s' % (v.name, ex))
            if v.name == 'gpt2vocab' and os.path.exists(os.path.join(tmp, v.name, 'config.json')):
                check_text(v, qkv, os.path.join(tmp, v.name), os.path.join(tmp, 'qkv.db'))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('reference: %d failure(s), %.1f s' % (len(failures), time.time() - t0))
    return 1 if failures else 0


def check_text(v, qkv, model_dir, db):
    """With the real GPT-2 vocabulary, text prompts go through the BPE: "Hello world" = [15496, 995]."""
    try:
        (lo,) = qkv_cli.json_cmds(qkv, model_dir, ['logits "Hello world"'], db)
    except qkv_cli.QkvError as ex:
        fail('%s: %s' % (v.name, ex))
        return
    if lo.get('ids') != [15496, 995]:
        fail('%s: logits "Hello world" ids expected [15496, 995], got %r' % (v.name, lo.get('ids')))
    want = gpt2_ref.GPT2(model_dir).logits([15496, 995])[-1]
    top = lo.get('top') or [{}]
    if top[0].get('id') != int(np.argmax(want)):
        fail('%s: logits "Hello world" top id expected %d, got %r' % (v.name, int(np.argmax(want)), top[0].get('id')))


if __name__ == '__main__':
    sys.exit(main())
