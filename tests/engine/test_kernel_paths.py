#!/usr/bin/env python3
"""One model's logits under every kernel table (QKV_KERNELS=scalar|avx2|avx512|avx512vnni), end to end.

A random-weight GPT-2 with sizes that are not multiples of the vector widths (d=40, 4 heads
of 10, vocabulary 257) is written in F32, F16 and BF16. Each table the CPU runs computes
every position's logits of a 21-token prompt (the GEMM path), one token alone (the
matrix-vector path) and 8 greedy tokens (decoding over the KV cache); all must agree with
the scalar table within 1e-4 of the largest |logit| (the kernels differ only in the order of
float additions). A table the CPU lacks is reported as not tested here; asking for it must
still work, naming the table used instead in `model`'s kernels_note.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'ref'))
from qkv_cli import run  # noqa: E402

QKV = sys.argv[1]
TMP = tempfile.mkdtemp(prefix='qkv-kernels-')
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


def worst_diff(a, b):
    scale = max(abs(v) for row in b for v in row)
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb)) / max(scale, 1e-30)


def main():
    # the table qkv picks for this CPU: asked without a QKV_KERNELS the caller may have set
    env = {k: v for k, v in os.environ.items() if k != 'QKV_KERNELS'}
    probe = subprocess.run([QKV, '--db', DB, '--json', '-e', 'model'], capture_output=True, text=True, env=env,
                           timeout=300)
    auto = json.loads(probe.stdout.split("\n")[0])['kernels']
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
            d_full, d_one = worst_diff(full, ref[1]), worst_diff(one, ref[2])
            print('kernels %s, %s: prefill logits within %.2g, one token within %.2g of scalar' % (k, dt, d_full, d_one))
            check(d_full <= 1e-4, '%s %s prefill logits agree with scalar' % (k, dt), d_full)
            check(d_one <= 1e-4, '%s %s one-token logits agree with scalar' % (k, dt), d_one)
            check(gen['ids'] == ref[3]['ids'], '%s %s greedy tokens equal scalar' % (k, dt), (gen['ids'], ref[3]['ids']))
            lp = max(abs(a - b) for a, b in zip(gen['logprobs'], ref[3]['logprobs']))
            check(lp <= 1e-4, '%s %s greedy log-probabilities agree with scalar' % (k, dt), lp)
    # a context of one token with a head of 256: decoding keeps its scaled q after the rows of
    # scores, which at this context are shorter than the head (it once wrote past them: the
    # sanitizer pass of the suite sees that)
    tiny = os.path.join(TMP, 'gpt2-ctx1')
    p = run(QKV, ['--db', DB, '-e', 'new-model gpt2 layers=1 heads=1 d=256 ctx=1 seed=4 out=%s' % tiny])
    check(p.returncode == 0, 'new-model ctx=1 d=256 heads=1', p.stderr)
    one = {k: qkv_json(tiny, k, ['logits ids=7 full=true top=1'])[0]['logits'] for k in ('scalar', auto)}
    check(all(math.isfinite(v) for v in one['scalar'][0]), 'ctx=1: finite logits')
    check(worst_diff(one[auto], one['scalar']) <= 1e-4, 'ctx=1: %s logits agree with scalar' % auto)
    m = qkv_json(os.path.join(TMP, 'gpt2-f32'), 'sse9', ['model'])[0]
    check(m['kernels'] == auto and 'sse9' in m.get('kernels_note', ''), 'QKV_KERNELS=sse9 is named and ignored', m)
    print('%d failed' % failures if failures else 'kernel paths agree')
    return 1 if failures else 0


sys.exit(main())
