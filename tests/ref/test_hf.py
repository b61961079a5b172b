#!/usr/bin/env python3
# test_hf.py - suite 'reference': qkv's GPT-2 engine against HF transformers itself.
#
# For random-weight models that `qkv new-model gpt2` writes in the real HF layouts (f32, f16 and
# bf16 files, tied and untied heads, the `transformer.` prefix, 2 shards), the same directory is
# loaded with transformers.GPT2LMHeadModel.from_pretrained (CPU, float32, eval mode, eager
# attention, offline) and, at several lengths (one past qkv's 512-token prefill chunk), with 1
# and 2 qkv threads, compared:
#   - logits at every position (`qkv logits ids=... full=true`): max |d| <= TOL_LOGIT;
#   - attention probabilities of every layer and head (`attention ids=... layer=all head=all`)
#     against output_attentions: max |d| <= TOL_ATT;
#   - hidden states (output_hidden_states) against qkv's trace (tests/ref/trace_dump):
#     hidden_states[0] = the embeddings, [i] for 0 < i < L = the residual stream after block
#     i-1 (= before block i), [L] = AFTER the final LayerNorm (HF ties the last one to
#     last_hidden_state): max |d| / max(1, max |HF|) <= TOL_HIDDEN;
#   - and, as a check of the references themselves, HF's logits against the float64 NumPy
#     reference (gpt2_ref.py) within TOL_LOGIT.
# Skips (77) without the test environment unless QKV_REQUIRE_REFS=1 (./dev test).
# Usage: test_hf.py [QKV_BINARY [TRACE_DUMP_BINARY]]

import os
import shutil
import sys
import tempfile
import time
import zlib

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_VERBOSITY', 'error')

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refenv  # noqa: E402

np, torch, transformers = refenv.need('numpy', 'torch', 'transformers')

import gpt2_ref  # noqa: E402
import qkv_cli  # noqa: E402

TOL_LOGIT = 1e-4
TOL_ATT = 1e-5
TOL_HIDDEN = 1e-5
# The KV cache in F32 (kv auto keeps F16 and BF16 weights' keys and values in F16): these checks
# are about the weights and the arithmetic, to the tolerances above.
F32_KV = ['--kv', 'f32']
STD = 0.2

failures = []
worst_seen = {'logit': 0.0, 'att': 0.0, 'hidden': 0.0, 'hf-numpy': 0.0}


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg, flush=True)


def compare(what, kind, got, want, tol, relative=False):
    """Check got against want within tol (relative to max(1, max |want|) when relative)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        fail('%s: shape expected %s, got %s' % (what, want.shape, got.shape))
        return
    if got.size == 0:
        fail('%s: nothing to compare' % what)
        return
    scale = max(1.0, float(np.max(np.abs(want)))) if relative else 1.0
    d = np.abs(got - want)
    d = np.where(np.isnan(d), np.inf, d)
    i = np.unravel_index(int(np.argmax(d)), d.shape)
    err = float(d[i]) / scale
    worst_seen[kind] = max(worst_seen[kind], err)
    if not err <= tol:
        fail('%s: max err %.3g%s > %g at %s: expected %.8g, got %.8g'
             % (what, err, ' (relative to %.3g)' % scale if relative else '', tol, i, want[i], got[i]))


class Variant:
    def __init__(self, name, opts, lengths):
        self.name, self.opts, self.lengths = name, opts, lengths


VARIANTS = [
    Variant('f32', 'layers=2 heads=4 d=64 ctx=1024 seed=21', (1, 7, 128, 600)),
    Variant('f16', 'layers=3 heads=3 d=48 ctx=256 seed=22 dtype=f16', (1, 7, 128)),
    Variant('bf16', 'layers=2 heads=2 d=40 ctx=256 seed=23 dtype=bf16', (1, 7, 128)),
    Variant('untied', 'layers=2 heads=4 d=64 ctx=256 seed=24 tied=false vocab=300', (1, 7, 128)),
    Variant('prefix', 'layers=1 heads=2 d=32 ctx=256 seed=25 prefix=transformer. tied=false', (1, 7, 128)),
    Variant('shards', 'layers=4 heads=4 d=32 ctx=1024 seed=26 shards=2 dtype=f16', (1, 7, 600)),
]


def hf_load(model_dir):
    m = transformers.GPT2LMHeadModel.from_pretrained(model_dir, dtype=torch.float32, attn_implementation='eager',
                                                     local_files_only=True)
    m.eval()
    return m


def hf_run(m, ids):
    """(logits [T, V], attentions [L, H, T, T], hidden states [L+1, T, d]) as float64 arrays."""
    with torch.no_grad():
        out = m(torch.tensor([ids], dtype=torch.long), output_attentions=True, output_hidden_states=True,
                use_cache=False)
    logits = out.logits[0].double().numpy()
    att = np.stack([a[0].double().numpy() for a in out.attentions])
    hid = np.stack([h[0].double().numpy() for h in out.hidden_states])
    return logits, att, hid


def run_variant(v, qkv, tdump, tmp):
    t0 = time.time()
    model_dir = os.path.join(tmp, v.name)
    db = os.path.join(tmp, 'qkv.db')
    p = qkv_cli.new_model(qkv, ['gpt2'] + v.opts.split() + ['std=%g' % STD, 'out=' + model_dir], db)
    if p.returncode != 0:
        fail('%s: new-model %s: exit %d: %s' % (v.name, v.opts, p.returncode, p.stderr.strip()))
        return
    try:
        hf = hf_load(model_dir)
    except Exception as ex:  # a directory HF cannot read is a finding, not a crash of the test
        fail('%s: transformers cannot load %s: %s: %s' % (v.name, model_dir, type(ex).__name__, ex))
        return
    ref = gpt2_ref.GPT2(model_dir)
    L, H, V = ref.n_layer, ref.n_head, ref.vocab
    if hf.config.n_layer != L or hf.config.vocab_size != V:
        fail('%s: HF config n_layer %d vocab %d, expected %d %d' % (v.name, hf.config.n_layer,
                                                                   hf.config.vocab_size, L, V))
        return
    # the head HF uses is the file's: tied to wte, or lm_head.weight
    compare('%s: HF lm_head vs the file' % v.name, 'hf-numpy', hf.lm_head.weight.detach().double().numpy(),
            ref.head, 0.0)
    rng = np.random.default_rng(zlib.crc32(v.name.encode()))
    for T in v.lengths:
        ids = [int(i) for i in rng.integers(0, V, size=T)]
        want_logits, want_att, want_hid = hf_run(hf, ids)
        compare('%s T=%d: HF logits vs NumPy reference' % (v.name, T), 'hf-numpy', want_logits, ref.logits(ids),
                TOL_LOGIT)
        for threads in (1, 2):
            tag = '%s T=%d threads=%d' % (v.name, T, threads)
            a = qkv_cli.ids_arg(ids)
            try:
                lo, at = qkv_cli.json_cmds(qkv, model_dir, ['logits %s full=true' % a,
                                                            'attention %s layer=all head=all' % a], db,
                                           extra=['--threads', str(threads)] + F32_KV)
                points, _ = qkv_cli.trace(tdump, model_dir, ids, ['embed', 'resid_pre', 'resid_post', 'ln_f'],
                                          threads)
            except qkv_cli.QkvError as ex:
                fail('%s: %s' % (tag, ex))
                continue
            compare(tag + ' logits', 'logit', lo.get('logits'), want_logits, TOL_LOGIT)
            compare(tag + ' attention', 'att', at.get('layers'), want_att, TOL_ATT)
            # hidden states: [0] embeddings = block 0's input; [i] block i-1's output = block i's input
            compare(tag + ' hidden_states[0] vs embed', 'hidden', points.get(('embed', -1)), want_hid[0],
                    TOL_HIDDEN, True)
            for i in range(1, L):
                compare(tag + ' hidden_states[%d] vs resid_post layer %d' % (i, i - 1), 'hidden',
                        points.get(('resid_post', i - 1)), want_hid[i], TOL_HIDDEN, True)
            for i in range(L):
                compare(tag + ' hidden_states[%d] vs resid_pre layer %d' % (i, i), 'hidden',
                        points.get(('resid_pre', i)), want_hid[i], TOL_HIDDEN, True)
            # [L] is after the final LayerNorm
            compare(tag + ' hidden_states[%d] vs ln_f' % L, 'hidden', points.get(('ln_f', -1)), want_hid[L],
                    TOL_HIDDEN, True)
    print('%-7s done (%.1f s)' % (v.name, time.time() - t0), flush=True)


def main():
    qkv, tdump = qkv_cli.qkv_path(), qkv_cli.trace_dump_path()
    torch.set_num_threads(1)
    print('transformers %s, torch %s' % (transformers.__version__, torch.__version__))
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix='qkv-hf-')
    try:
        for v in VARIANTS:
            run_variant(v, qkv, tdump, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('max |dlogit| %.3g (tol %g), max |dattention| %.3g (tol %g), max relative |dhidden| %.3g (tol %g), '
          'HF vs NumPy logits %.3g' % (worst_seen['logit'], TOL_LOGIT, worst_seen['att'], TOL_ATT,
                                       worst_seen['hidden'], TOL_HIDDEN, worst_seen['hf-numpy']))
    print('hf-reference: %d variants, %d failure(s), %.1f s' % (len(VARIANTS), len(failures), time.time() - t0))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
