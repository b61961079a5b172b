#!/usr/bin/env python3
# test_trace.py - suite 'reference': the values of every trace kind against the NumPy reference.
#
# On a random-weight GPT-2 written by `qkv new-model` (context 1024), tests/ref/trace_dump runs
# the engine through its public API (ctx_eval with a Trace) and hands over what the trace gives:
# embeddings, per layer the residual stream before the block / after attention / after the
# block, q, k, v, attention scores and probabilities, the heads' weighted values (z), the
# attention and MLP sublayers' outputs, the final norm, the logits. For lengths 1,
# 2, 7 and 600 (past the 512-token prefill chunk), each kind is asked alone and all together,
# each time with ctx_eval returning no logits, the last row's, and every row's; with 1 and 2
# threads; also decoding the last tokens one at a time through the KV cache, and with a layer
# mask; and activation patching: a row of each live activation scaled in the callback, against
# the reference patched the same way. Checks: exactly the asked kinds and layers come, every value matches the reference
# within its tolerance (below), masked scores are -inf exactly where the reference's are, and
# the logits ctx_eval returns are the reference's rows (the last one when only it is wanted).
# Usage: test_trace.py [QKV_BINARY [TRACE_DUMP_BINARY]]

import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_ref  # noqa: E402
import qkv_cli  # noqa: E402

STD = 0.2
MODEL = 'layers=2 heads=4 d=64 ctx=1024 vocab=300 seed=11 tied=false'
LENGTHS = (1, 2, 7, 600)
# max |qkv - reference| allowed, relative to max(1, max |reference|) of the tensor compared:
# float32 against float64 through 2 layers. Attention probabilities are absolute (they are <= 1).
TOL = {'embed': 1e-6, 'q': 1e-5, 'k': 1e-5, 'v': 1e-5, 'z': 1e-5, 'scores': 1e-5, 'probs': 1e-5,
       'attn_out': 1e-5, 'resid_pre': 1e-5, 'resid_mid': 1e-5, 'mlp_out': 1e-5, 'resid_post': 1e-5,
       'ln_f': 1e-5, 'logits': 1e-5}
LAYER_KINDS = ('q', 'k', 'v', 'z', 'scores', 'probs', 'attn_out', 'resid_pre', 'resid_mid', 'mlp_out', 'resid_post')

failures = []
worst_seen = {}


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg, flush=True)


def compare(tag, kind, got, want):
    """got (float32) against want (float64) within TOL[kind]; -inf must match -inf exactly."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        fail('%s: shape expected %s, got %s' % (tag, want.shape, got.shape))
        return
    inf_w, inf_g = np.isneginf(want), np.isneginf(got)
    if np.any(inf_w != inf_g):
        i = tuple(int(a[0]) for a in np.nonzero(inf_w != inf_g))
        fail('%s: masked (-inf) entries differ, first at %s: expected %r, got %r' % (tag, i, want[i], got[i]))
        return
    fin = ~inf_w
    if not np.any(fin):
        return
    scale = 1.0 if kind == 'probs' else max(1.0, float(np.max(np.abs(want[fin]))))
    d = np.where(fin, np.abs(got - want), 0.0)
    d = np.where(np.isnan(d), np.inf, d)
    i = np.unravel_index(int(np.argmax(d)), d.shape)
    err = float(d[i]) / scale
    worst_seen[kind] = max(worst_seen.get(kind, 0.0), err)
    if not err <= TOL[kind]:
        fail('%s: max err %.3g (relative to %.3g) > %g at %s: expected %.8g, got %.8g'
             % (tag, err, scale, TOL[kind], i, want[i], got[i]))


def expected_keys(kinds, n_layer, layers_mask=0):
    keys = set()
    for k in kinds:
        if k in LAYER_KINDS:
            keys |= {(k, l) for l in range(n_layer) if not layers_mask or (layers_mask >> l) & 1}
        else:
            keys.add((k, -1))
    return keys


def check_run(tdump, model_dir, ref_tr, ids, kinds, n_layer, threads, logits, steps=0, layers=0, patch=None):
    T = len(ids)
    tag = 'T=%d kinds=%s logits=%s threads=%d%s%s%s' % (T, ','.join(kinds) or 'none', logits, threads,
                                                        ' steps=%d' % steps if steps else '',
                                                        ' layers=%d' % layers if layers else '',
                                                        ' patch=%s:%d:%d:%g' % tuple(patch) if patch else '')
    try:
        points, outs = qkv_cli.trace(tdump, model_dir, ids, kinds, threads, logits, steps, layers, patch)
    except qkv_cli.QkvError as ex:
        fail('%s: %s' % (tag, ex))
        return
    want_keys = expected_keys(kinds, n_layer, layers)
    if set(points) != want_keys:
        fail('%s: trace points expected %s, got %s' % (tag, sorted(want_keys), sorted(points)))
    for key in sorted(want_keys & set(points)):
        compare('%s: %s layer %d' % (tag, key[0], key[1]), key[0], points[key], ref_tr[key])
    # what ctx_eval returned in its logits argument, call by call
    calls = 1 + steps
    want_logits = ref_tr['logits', -1]
    if logits == 'none':
        if outs:
            fail('%s: logits=none but ctx_eval returned %d logits records' % (tag, len(outs)))
        return
    if len(outs) != calls:
        fail('%s: expected %d logits records (one per ctx_eval call), got %d' % (tag, calls, len(outs)))
        return
    end = T - steps
    for c, out in enumerate(outs):
        lo = 0 if c == 0 else end + c - 1
        hi = end if c == 0 else lo + 1
        want = want_logits[lo:hi] if logits == 'all' else want_logits[hi - 1:hi]
        compare('%s: ctx_eval logits of call %d (positions %d..%d)' % (tag, c, lo, hi - 1), 'logits', out, want)


PATCH_SCALE = -0.5


def check_patches(tdump, model_dir, ref, ids, ref_tr, L, positions):
    """Patch every patchable kind (all but scores and probs) at each position: qkv's trace and
    logits must follow the reference patched the same way. Returns the number of runs."""
    runs = 0
    for i, kind in enumerate(k for k in qkv_cli.TRACE_KINDS if k not in qkv_cli.TRACE_ATT):
        layer = L - 1 if kind in LAYER_KINDS else -1
        for pos in positions:
            patch = (kind, layer, pos, PATCH_SCALE)
            want = ref.trace(ids, patch=patch)
            effect = float(np.max(np.abs(want['logits', -1] - ref_tr['logits', -1])))
            if effect < 1e-3:
                fail('patch %s: changes the reference logits by only %.2g: it would not show a patch ignored'
                     % (patch, effect))
            check_run(tdump, model_dir, want, ids, list(qkv_cli.TRACE_KINDS), L, 1 + i % 2, 'all', patch=patch)
            runs += 1
    return runs


def main():
    qkv, tdump = qkv_cli.qkv_path(), qkv_cli.trace_dump_path()
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix='qkv-trace-')
    try:
        model_dir = os.path.join(tmp, 'm')
        p = qkv_cli.new_model(qkv, ['gpt2'] + MODEL.split() + ['std=%g' % STD, 'out=' + model_dir],
                              os.path.join(tmp, 'qkv.db'))
        if p.returncode != 0:
            fail('new-model %s: exit %d: %s' % (MODEL, p.returncode, p.stderr.strip()))
            return 1
        ref = gpt2_ref.GPT2(model_dir)
        L = ref.n_layer
        rng = np.random.default_rng(20261201)
        runs = 0
        for T in LENGTHS:
            ids = [int(i) for i in rng.integers(0, ref.vocab, size=T)]
            ref_tr = ref.trace(ids)
            for logits in ('none', 'last', 'all'):
                # every kind alone, then all together, alternating 1 and 2 threads
                for i, kind in enumerate(qkv_cli.TRACE_KINDS):
                    check_run(tdump, model_dir, ref_tr, ids, [kind], L, 1 + (i + T) % 2, logits)
                    runs += 1
                for threads in (1, 2):
                    check_run(tdump, model_dir, ref_tr, ids, list(qkv_cli.TRACE_KINDS), L, threads, logits)
                    runs += 1
                # nothing traced: the logits alone
                check_run(tdump, model_dir, ref_tr, ids, [], L, 2, logits)
                runs += 1
            if T > 1:
                # the last tokens one at a time through the KV cache
                steps = min(3, T - 1)
                for logits in ('last', 'all'):
                    check_run(tdump, model_dir, ref_tr, ids, list(qkv_cli.TRACE_KINDS), L, 2, logits, steps=steps)
                    check_run(tdump, model_dir, ref_tr, ids, ['ln_f'], L, 1, logits, steps=steps)
                    runs += 2
            # a layer mask: layer 1 only
            check_run(tdump, model_dir, ref_tr, ids, list(qkv_cli.TRACE_KINDS), L, 1, 'last', layers=2)
            runs += 1
            # activation patching: one row of one live activation scaled in the callback flows
            # into the rest of the pass (and, through the KV cache, into the later chunk at T=600)
            if T >= 7:
                runs += check_patches(tdump, model_dir, ref, ids, ref_tr, L, (3, T - 50) if T > 512 else (3,))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('worst relative errors: ' + ', '.join('%s %.2g' % (k, worst_seen.get(k, float('nan')))
                                               for k in qkv_cli.TRACE_KINDS))
    if len(worst_seen) != len(qkv_cli.TRACE_KINDS):
        fail('kinds never compared: %s' % sorted(set(qkv_cli.TRACE_KINDS) - set(worst_seen)))
    print('trace: %d runs, %d failure(s), %.1f s' % (runs, len(failures), time.time() - t0))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
