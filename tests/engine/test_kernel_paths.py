#!/usr/bin/env python3
"""One model's logits under every kernel table (QKV_KERNELS=scalar|avx2|avx512|avx512vnni), end to end.

A random-weight GPT-2 with sizes that are not multiples of the vector widths (d=40, 4 heads
of 10, vocabulary 257) is written in F32, F16 and BF16. Each table the CPU runs computes
every position's logits of a 21-token prompt (the GEMM path), one token alone (the
matrix-vector path) and 8 greedy tokens (decoding over the KV cache); all must agree with
the scalar table within 1e-4 of the largest |logit| (the kernels differ only in the order of
float additions). The block types' decoding kernels likewise: a GPT-2 of d=256 (so that every
matrix is whole Q4_K super-blocks) quantized in memory to Q8_0, Q4_0, Q4_1 and Q4_K_M, one
token alone and 8 greedy tokens under each table against the scalar one, within 5e-4: the
block products are exact integers on x quantized to int16 by the same operations in every
table, but the float parts' order (1e-7 apart) now and then moves an x value across a rounding
boundary, one step of 1/65534 of its group's largest value, and 3e-5 to 7e-5 is what that
gives here; a kernel reading one byte off gives 1. (`kernels` checks each kernel's values,
this the engine's use of them: a broken Q4_1 step once passed this test's float-only form.)
A table the CPU lacks is reported as not tested here; asking for it must still work, naming
the table used instead in `model`'s kernels_note.
"""
import json
import math
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'ref'))
import qkv_cli  # noqa: E402
from qkv_cli import run  # noqa: E402

QKV = sys.argv[1]
TMP = qkv_cli.scratch_dir('qkv-kernels-')
DB = os.path.join(TMP, 'qkv.db')
PROMPT = [(i * 37 + 11) % 257 for i in range(21)]
failures = 0


def check(cond, what, got=None):
    global failures
    if not cond:
        failures += 1
        print('FAIL: %s%s' % (what, '' if got is None else '\n  got: %r' % (got,)))


def qkv_json(model, kernels, cmds):
    env = dict(os.environ, QKV_KERNELS=kernels)
    args = [QKV, '--db', DB, '--model', model, '--json', '-e', '; '.join(cmds)]
    p = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    if p.returncode != 0:
        raise SystemExit('qkv failed (QKV_KERNELS=%s): %s' % (kernels, p.stderr.strip()[:1000]))
    return [json.loads(l) for l in p.stdout.split("\n") if l.strip()]


def logits_of(model, kernels):
    ids = ','.join(map(str, PROMPT))
    m, full, one, gen = qkv_json(model, kernels, [
        'model', 'logits ids=%s full=true top=1' % ids, 'logits ids=%d full=true top=1' % PROMPT[0],
        'generate ids=%s max=8 temperature=0 stop=false' % ids])
    return m, full['logits'], one['logits'], gen


def quantized_of(model, kernels, qtype):
    m, one, gen = qkv_json(model, kernels, [
        'quantize %s embed=true' % qtype, 'logits ids=%d full=true top=1' % PROMPT[0],
        'generate ids=%s max=8 temperature=0 stop=false' % ','.join(map(str, PROMPT))])
    return m, one['logits'], gen


def check_quantized(tables):
    """tables: the kernel tables other than scalar that this CPU runs."""
    model = os.path.join(TMP, 'gpt2-d256')
    p = run(QKV, ['--db', DB, '-e', 'new-model gpt2 layers=2 heads=4 d=256 ctx=64 seed=5 out=%s' % model])
    check(p.returncode == 0, 'new-model d=256', p.stderr)
    for qtype in ('q8_0', 'q4_0', 'q4_1', 'q4_k_m'):
        ref = quantized_of(model, 'scalar', qtype)
        want = 'Q4_K' if qtype == 'q4_k_m' else qtype.upper()
        check(ref[0]['dtype'] == want, 'quantize %s gives %s weights' % (qtype, want), ref[0].get('dtype'))
        for k in tables:
            _, one, gen = quantized_of(model, k, qtype)
            print('kernels %s, %s: one token within %.2g of scalar' % (k, qtype, worst_diff(one, ref[1])))
            check_decoding('%s %s' % (k, qtype), one, gen, ref[1], ref[2], 5e-4)


def check_decoding(what, one, gen, ref_one, ref_gen, tol):
    """One token's logits within tol of the scalar table's (relative to the largest), the same
    greedy tokens, their log-probabilities within tol."""
    d_one = worst_diff(one, ref_one)
    check(d_one <= tol, '%s one-token logits agree with scalar' % what, d_one)
    check(gen['ids'] == ref_gen['ids'], '%s greedy tokens equal scalar' % what, (gen['ids'], ref_gen['ids']))
    lp = max(abs(a - b) for a, b in zip(gen['logprobs'], ref_gen['logprobs']))
    check(lp <= tol, '%s greedy log-probabilities agree with scalar' % what, lp)


def worst_diff(a, b):
    scale = max(abs(v) for row in b for v in row)
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb)) / max(scale, 1e-30)


def main():
    # the table qkv picks for this CPU: asked without a QKV_KERNELS the caller may have set
    env = {k: v for k, v in os.environ.items() if k != 'QKV_KERNELS'}
    probe = subprocess.run([QKV, '--db', DB, '--json', '-e', 'model'], capture_output=True, text=True, env=env,
                           timeout=300)
    auto = json.loads(probe.stdout.split("\n")[0])['kernels']
    tables = []  # those this CPU runs, besides scalar
    for dt in ('f32', 'f16', 'bf16'):
        model = os.path.join(TMP, 'gpt2-' + dt)
        p = run(QKV, ['--db', DB, '-e', 'new-model gpt2 layers=2 heads=4 d=40 ctx=64 seed=3 dtype=%s out=%s'
                      % (dt, model)])
        check(p.returncode == 0, 'new-model dtype=%s' % dt, p.stderr)
        ref = logits_of(model, 'scalar')
        check(ref[0]['kernels'] == 'scalar', 'QKV_KERNELS=scalar is used', ref[0].get('kernels'))
        for k in ('avx2', 'avx512', 'avx512vnni'):
            m, full, one, gen = logits_of(model, k)
            if m['kernels'] != k:
                if dt == 'f32':
                    print('kernels %s: not tested on this CPU (qkv used %s)' % (k, m['kernels']))
                check(m['kernels'] == auto and k in m.get('kernels_note', ''),
                      'an unsupported QKV_KERNELS=%s falls back to %s and says so' % (k, auto), m)
                continue
            if k not in tables:
                tables.append(k)
            d_full, d_one = worst_diff(full, ref[1]), worst_diff(one, ref[2])
            print('kernels %s, %s: prefill logits within %.2g, one token within %.2g of scalar' % (k, dt, d_full, d_one))
            check(d_full <= 1e-4, '%s %s prefill logits agree with scalar' % (k, dt), d_full)
            check_decoding('%s %s' % (k, dt), one, gen, ref[2], ref[3], 1e-4)
    # a context of one token with a head of 256: decoding keeps its scaled q after the rows of
    # scores, which at this context are shorter than the head (it once wrote past them: the
    # sanitizer pass of the suite sees that)
    tiny = os.path.join(TMP, 'gpt2-ctx1')
    p = run(QKV, ['--db', DB, '-e', 'new-model gpt2 layers=1 heads=1 d=256 ctx=1 seed=4 out=%s' % tiny])
    check(p.returncode == 0, 'new-model ctx=1 d=256 heads=1', p.stderr)
    one = {k: qkv_json(tiny, k, ['logits ids=7 full=true top=1'])[0]['logits'] for k in ('scalar', auto)}
    check(all(math.isfinite(v) for v in one['scalar'][0]), 'ctx=1: finite logits')
    check(worst_diff(one[auto], one['scalar']) <= 1e-4, 'ctx=1: %s logits agree with scalar' % auto)
    check_quantized(tables)
    m = qkv_json(os.path.join(TMP, 'gpt2-f32'), 'sse9', ['model'])[0]
    check(m['kernels'] == auto and 'sse9' in m.get('kernels_note', ''), 'QKV_KERNELS=sse9 is named and ignored', m)
    print('%d failed' % failures if failures else 'kernel paths agree')
    return 1 if failures else 0


sys.exit(main())
