#!/usr/bin/env python3
"""quantize and compare against independent references (suite reference).

Usage: test_quantize.py QKV_BINARY

On random-weight GPT-2 models that `qkv new-model` writes (weights std 0.2, so that the
next-token distributions are far from uniform):
1. The quantized model's logits at every position equal those of the NumPy reference
   (gpt2_ref.py, float64) run on weights that the gguf package quantized and dequantized
   (GPT-2's [in, out] matrices transposed first: qkv converts them to [out, in])
   (Q8_0, Q4_0, Q4_1: gguf.quants) or that NumPy converted (the lectures' affine int8 per row,
   F16), within 1e-3: the model runs from weights as stored, in every kernel table this CPU has.
2. quantize's report: per layer the weights converted, the RMS of the weights and of the
   error, the largest error, histogram counts summing to the weights, equal to NumPy's from the
   same dequantized weights; the bytes of each model counted here from the shapes.
3. compare: per-position KL divergence, top-1 agreement and the largest logit change equal
   those computed here from the `logits full=true` of the loaded and the converted model; Q8_0's
   mean KL <= 1e-3 on a model with weights std 0.02 and below Q4_0's; Q6_K's below Q4_K's.
4. A Llama (nn.Linear [out, in] weights, separate q/k/v, SwiGLU, grouped-query attention, an
   untied head) converted to Q8_0, Q4_0, Q4_1: its logits equal HF transformers' (CPU, float32)
   with the gguf package's quantized-dequantized weights within 1e-3.
5. quantize q4_k_m, llama.cpp's Q4_K_M mix (llama-quant.cpp's llama_tensor_get_type): Q6_K for
   the head (here the tied token embedding, with embed=true), for the fused attn_qkv (Q5_K in
   llama.cpp, which qkv lacks) and for ffn_down in the layers use_more_bits picks (of 12: 0, 3,
   6, 9, 10, 11; of 2: 1), Q4_K for the rest: the count of each type, the bytes from the shapes,
   and its KL between Q6_K's and Q4_K's in test 3.
6. Bad input: an unknown type, a bad embed= value, compare before quantize, Q4_K on rows that are
   not whole 256-element blocks, a weight that is not finite: one error line each, exit status 1;
   matrices with rows of whole blocks converted and the others kept, counted.
"""
import json
import math
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refenv import need  # noqa: E402
import gpt2_ref  # noqa: E402
import qkv_cli  # noqa: E402

np, gguf = need('numpy', 'gguf')
from gguf import GGMLQuantizationType as GT  # noqa: E402
from gguf import quants  # noqa: E402

QKV = qkv_cli.qkv_path()
TEXT = 'The quick brown fox jumps over the lazy dog. 0123'
LINEARS = ('attn.c_attn.weight', 'attn.c_proj.weight', 'mlp.c_fc.weight', 'mlp.c_proj.weight')
BLOCK_BYTES = {'q8_0': (32, 34), 'q4_0': (32, 18), 'q4_1': (32, 20), 'q4_k': (256, 144), 'q6_k': (256, 210)}
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL: ' + what, flush=True)


def np_roundf(v):
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def i8_affine(w):
    """Rows of w through the lectures' affine int8 (quant.h's choice of s and Z), decoded."""
    out = np.empty_like(w, dtype=np.float32)
    for i, r in enumerate(w.astype(np.float32)):
        mn, mx = r.min(), r.max()
        s = np.float32((mx - mn) / np.float32(255))
        z = np_roundf(-128.0 - float(mn) / float(s))
        q = np.clip(np_roundf(r.astype(np.float64) / float(s) + z), -128, 127)
        out[i] = s * (q - z).astype(np.float32)
    return out


def converted(w, typ):
    """w (float64, [rows, cols] as stored) as the type stores it, decoded to float."""
    w32 = w.astype(np.float32)
    if typ == 'int8':
        return i8_affine(w32)
    if typ == 'f16':
        return w32.astype(np.float16).astype(np.float32)
    qt = {'q8_0': GT.Q8_0, 'q4_0': GT.Q4_0, 'q4_1': GT.Q4_1}[typ]
    return quants.dequantize(quants.quantize(w32, qt), qt).astype(np.float32)


def new_model(tmp, name, std, d=256, seed=3):
    out = os.path.join(tmp, name)
    p = qkv_cli.run(QKV, ['--db', os.path.join(tmp, 'db'), '-e',
                          'new-model gpt2 layers=2 heads=4 d=%d ctx=64 seed=%d std=%g out=%s' % (d, seed, std, out)])
    if p.returncode:
        raise SystemExit('new-model failed: %s' % p.stderr)
    return out


def q(s):
    return json.dumps(s)


def kl_rows(p, qq):
    lp, lq = gpt2_ref.log_softmax(p), gpt2_ref.log_softmax(qq)
    return (np.exp(lp) * (lp - lq)).sum(axis=-1)


def test_against_numpy(tmp, kernels):
    mdir = new_model(tmp, 'm', 0.2)
    ref = gpt2_ref.GPT2(mdir)
    types = ['q8_0', 'q4_0', 'q4_1', 'int8', 'f16']
    cmds = ['tokenize %s' % q(TEXT)]
    for t in types:
        cmds += ['quantize %s' % t, 'logits %s full=true' % q(TEXT)]
    for table in kernels:
        env = dict(os.environ, QKV_KERNELS=table)
        # an F32 KV cache (auto gives quantized models F16): only the weights' conversion differs
        p = qkv_cli.subprocess.run([QKV, '--model', mdir, '--db', os.path.join(tmp, 'db'), '--threads', '2', '--kv', 'f32',
                                    '--json', '-e', '; '.join(cmds)], capture_output=True, text=True, env=env, timeout=600)
        check(p.returncode == 0, '%s: qkv failed: %s' % (table, p.stderr[-500:]))
        if p.returncode:
            continue
        res = [json.loads(l) for l in p.stdout.split("\n") if l.strip()]
        ids = res[0]['ids']
        for i, t in enumerate(types):
            rep, lg = res[1 + 2 * i], res[2 + 2 * i]
            saved = dict(ref.w)
            sums = {}
            for l in range(ref.n_layer):
                n = se = sw = mx = 0.0
                errs = []
                for name in LINEARS:
                    key = 'h.%d.%s' % (l, name)
                    w = saved[key]
                    dq = converted(w.T, t).T  # stored [in, out]: converted as [out, in], blocks along the inputs
                    ref.w[key] = dq.astype(np.float64)
                    err = dq.astype(np.float64) - w.astype(np.float32).astype(np.float64)
                    errs.append(err.ravel())
                    n += w.size
                    se += (err ** 2).sum()
                    sw += (w.astype(np.float32).astype(np.float64) ** 2).sum()
                    mx = max(mx, np.abs(err).max())
                sums[l] = (n, np.sqrt(sw / n), np.sqrt(se / n), mx, np.concatenate(errs))
            want = ref.logits(ids)
            ref.w = saved
            got = np.array(lg['logits'])
            worst = np.abs(got - want).max()
            check(worst <= 1e-3, '%s %s: logits within 1e-3 of NumPy on gguf/NumPy-converted weights, got %g'
                  % (table, t, worst))
            if table != kernels[0]:
                continue
            print('%s: logits within %.2g of the reference' % (t, worst), flush=True)
            # the report
            check(rep['tensors'] == 4 * ref.n_layer and rep['kept'] == 0,
                  '%s: %d matrices converted, 0 kept, got %s, %s' % (t, 4 * ref.n_layer, rep['tensors'], rep['kept']))
            layers = {r['layer']: r for r in rep['layers']}
            check(sorted(layers) == list(range(ref.n_layer)), '%s: report layers %s' % (t, sorted(layers)))
            rng_ = rep['hist_range']
            want_range = 4 * max(sums[l][2] for l in sums)
            check(abs(rng_ - want_range) <= 1e-6 * want_range, '%s: hist_range %g, expected %g' % (t, rng_, want_range))
            for l, (n, rw, re_, mx, errs) in sums.items():
                r = layers.get(l, {})
                for key, val in (('rms_w', rw), ('rms_err', re_), ('max_err', mx)):
                    check(abs(r.get(key, -1) - val) <= 1e-6 * max(val, 1e-12),
                          '%s layer %d %s: expected %g, got %s' % (t, l, key, val, r.get(key)))
                check(r.get('n') == n, '%s layer %d: n %s, expected %d' % (t, l, r.get('n'), n))
                bins = rep['hist_bins']
                idx = np.clip(np.floor((errs + rng_) * (bins / (2 * rng_))), 0, bins - 1).astype(int)
                want_h = np.bincount(idx, minlength=bins)
                got_h = np.array(r.get('hist', []))
                # an error on a bin edge may fall either side in float arithmetic
                off = np.abs(got_h - want_h).sum() if got_h.shape == want_h.shape else -1
                check(got_h.sum() == n and 0 <= off <= 4,
                      '%s layer %d: histogram %s, expected %s' % (t, l, got_h.tolist(), want_h.tolist()))
            # bytes: the four matrices per layer as the type stores them, everything else float32
            mat = sum(saved['h.%d.%s' % (l, nm)].size for l in range(ref.n_layer) for nm in LINEARS)
            rows = sum(saved['h.%d.%s' % (l, nm)].shape[1] for l in range(ref.n_layer) for nm in LINEARS)
            total = ref.n_params()
            if t in BLOCK_BYTES:
                blk, by = BLOCK_BYTES[t]
                conv = mat // blk * by
            else:
                conv = {'int8': mat + 8 * rows, 'f16': 2 * mat}[t]
            check(rep['bytes_before'] == 4 * total, '%s: bytes_before %s, expected %d' % (t, rep['bytes_before'], 4 * total))
            want_after = 4 * (total - mat) + conv
            check(rep['bytes_after'] == want_after, '%s: bytes_after %s, expected %d' % (t, rep['bytes_after'], want_after))


def compare_run(tmp, mdir, typ, text=TEXT):
    return qkv_cli.json_cmds(QKV, mdir, ['logits %s full=true' % q(text), 'quantize %s' % typ,
                                         'logits %s full=true' % q(text), 'compare %s' % q(text)], os.path.join(tmp, 'db'))


def test_compare(tmp):
    small = new_model(tmp, 'small', 0.02, seed=5)
    big = new_model(tmp, 'big', 0.2, seed=7)
    kl = {}
    for mdir, label in ((small, 'std 0.02'), (big, 'std 0.2')):
        for typ in ('q8_0', 'q4_0', 'q6_k', 'q4_k', 'q4_k_m', 'int8'):
            a, _, b, c = compare_run(tmp, mdir, typ)
            p, qq = np.array(a['logits'], np.float64), np.array(b['logits'], np.float64)
            want_kl = kl_rows(p, qq)
            got_kl = np.array(c['kl'])
            check(got_kl.shape == want_kl.shape and np.allclose(got_kl, want_kl, rtol=1e-4, atol=1e-7),
                  '%s %s: per-position KL %s, expected %s' % (label, typ, got_kl[:5], want_kl[:5]))
            top1 = (p.argmax(axis=1) == qq.argmax(axis=1)).tolist()
            check(c['top1'] == top1, '%s %s: top1 %s, expected %s' % (label, typ, c['top1'], top1))
            check(abs(c['top1_agree'] - np.mean(top1)) < 1e-6, '%s %s: top1_agree' % (label, typ))
            md = np.abs(p - qq).max(axis=1)
            check(np.allclose(c['max_logit_diffs'], md, rtol=1e-6, atol=1e-6) and
                  abs(c['max_logit_diff'] - md.max()) <= 1e-6 and c['max_logit_pos'] == int(md.argmax()),
                  '%s %s: largest logit change %s at %s, expected %s at %d' % (label, typ, c['max_logit_diff'],
                                                                         c['max_logit_pos'], md.max(), md.argmax()))
            check(abs(c['kl_mean'] - want_kl.mean()) <= 1e-4 * want_kl.mean() + 1e-9, '%s %s: kl_mean' % (label, typ))
            check(c['bytes_converted'] < c['bytes_original'], '%s %s: fewer bytes' % (label, typ))
            kl[label, typ] = want_kl.mean()
            print('%s %s: mean KL %.3g, top-1 agreement %.2f' % (label, typ, want_kl.mean(), np.mean(top1)), flush=True)
    check(kl['std 0.02', 'q8_0'] <= 1e-3, 'Q8_0 mean KL <= 1e-3 (std 0.02), got %g' % kl['std 0.02', 'q8_0'])
    for label in ('std 0.02', 'std 0.2'):
        check(kl[label, 'q8_0'] < kl[label, 'q4_0'], '%s: Q8_0 KL below Q4_0\'s' % label)
        check(kl[label, 'q6_k'] < kl[label, 'q4_k'], '%s: Q6_K KL below Q4_K\'s' % label)
        check(kl[label, 'q4_k'] < kl[label, 'q4_0'], '%s: Q4_K KL below Q4_0\'s' % label)
        check(kl[label, 'q6_k'] < kl[label, 'q4_k_m'] < kl[label, 'q4_k'],
              '%s: Q4_K_M KL between Q6_K\'s and Q4_K\'s' % label)


def test_save(tmp):
    """save after quantize: per layer the share of its weights in each error bin (hist / n, the bins
    by their centres over -hist_range..hist_range); after compare: one row, the KL at each token.
    Both said "nothing to save yet" (the Quant view drew them, headless had no figure)."""
    import csv
    mdir = new_model(tmp, 'save', 0.02, seed=9)
    qa, qc = os.path.join(tmp, 'quant.csv'), os.path.join(tmp, 'compare.csv')
    rep, _, cmp_, _ = qkv_cli.json_cmds(QKV, mdir, ['quantize q4_0', 'save ' + qa, 'compare %s' % q(TEXT), 'save ' + qc],
                                        os.path.join(tmp, 'db'))
    with open(qa, newline='') as fh:
        rows = list(csv.reader(fh))
    bins, rng_ = rep['hist_bins'], rep['hist_range']
    want_head = ['%.3g' % (rng_ * (2 * b + 1 - bins) / bins) for b in range(bins)]
    got = np.array([[float(x) for x in r[1:]] for r in rows[1:]])
    want = np.array([np.array(r['hist']) / r['n'] for r in rep['layers']])
    check(rows[0][1:] == want_head and [r[0] for r in rows[1:]] == [str(r['layer']) for r in rep['layers']] and
          got.shape == want.shape and np.allclose(got, want, rtol=1e-6, atol=1e-9),
          'save after quantize: header %s..., rows %s' % (rows[0][:3], [r[0] for r in rows[1:]]))
    with open(qc, newline='') as fh:
        rows = list(csv.reader(fh))
    check(len(rows) == 2 and rows[1][0] == 'KL' and len(rows[0]) == len(cmp_['kl']) + 1 and
          np.allclose([float(x) for x in rows[1][1:]], cmp_['kl'], rtol=1e-6, atol=1e-12),
          'save after compare: %r' % rows[:2])


def more_bits(i, n):
    """llama.cpp's use_more_bits."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def test_q4_k_m(tmp):
    d = 256
    for layers, embed in ((2, True), (12, False), (12, True)):
        out = os.path.join(tmp, 'km%d' % layers)
        if not os.path.exists(out):
            p = qkv_cli.run(QKV, ['--db', os.path.join(tmp, 'db'), '-e', 'new-model gpt2 layers=%d heads=4 d=%d ctx=64 '
                                  'vocab=512 seed=11 std=0.02 out=%s' % (layers, d, out)])
            check(p.returncode == 0, 'new-model for q4_k_m: %s' % p.stderr)
        e = 'embed=%s' % ('true' if embed else 'false')
        r = qkv_cli.json_cmds(QKV, out, ['quantize q4_k_m ' + e, 'quantize q4_k ' + e], os.path.join(tmp, 'db'))
        km, k = r[0], r[1]
        # (rows, cols) as converted, [out, in], and the type the rule gives
        mats = [((512, d), 'Q6_K')] if embed else []
        for i in range(layers):
            mats += [((3 * d, d), 'Q6_K'), ((d, d), 'Q4_K'), ((4 * d, d), 'Q4_K'),
                     ((d, 4 * d), 'Q6_K' if more_bits(i, layers) else 'Q4_K')]
        want = {}
        for _, t in mats:
            want[t] = want.get(t, 0) + 1
        label = 'q4_k_m, %d layers, embed=%s' % (layers, embed)
        check(km['types'] == want, '%s: matrices per type %s, expected %s' % (label, km['types'], want))
        check(km['type'] == 'q4_k_m' and km['name'].endswith('Q4_K_M'), '%s: type %s, name %s' % (label, km['type'], km['name']))
        per = {'Q4_K': 144, 'Q6_K': 210}
        extra = sum(rows * cols // 256 * per[t] for (rows, cols), t in mats) - \
            sum(rows * cols * 4 for (rows, cols), _ in mats)
        check(km['bytes_after'] == km['bytes_before'] + extra,
              '%s: bytes after %d, expected %d' % (label, km['bytes_after'], km['bytes_before'] + extra))
        check(k['types'] == {'Q4_K': len(mats)}, '%s: q4_k converts every matrix to Q4_K: %s' % (label, k['types']))


def test_llama(tmp):
    try:
        import torch
        import transformers
    except ImportError as ex:
        check(not os.environ.get('QKV_REQUIRE_REFS'), 'torch/transformers cannot be imported: %s' % ex)
        print('Llama check skipped: %s' % ex)
        return
    mdir = os.path.join(tmp, 'llama')
    p = qkv_cli.run(QKV, ['--db', os.path.join(tmp, 'db'), '-e', 'new-model llama layers=2 heads=4 kv_heads=2 d=256 '
                          'ff=512 ctx=64 seed=9 std=0.2 tied=false out=' + mdir])
    if p.returncode:
        raise SystemExit('new-model llama failed: %s' % p.stderr)
    types = ('q8_0', 'q4_0', 'q4_1')
    cmds = ['tokenize %s' % q(TEXT)]
    for t in types:
        cmds += ['quantize %s' % t, 'logits %s full=true' % q(TEXT)]
    res = qkv_cli.json_cmds(QKV, mdir, cmds, os.path.join(tmp, 'db'), extra=['--kv', 'f32'])
    ids = res[0]['ids']
    m = transformers.AutoModelForCausalLM.from_pretrained(mdir, dtype=torch.float32, attn_implementation='eager',
                                                          local_files_only=True)
    m.eval()
    names = [n for n, _ in m.named_parameters() if n.endswith('proj.weight') or n == 'lm_head.weight']
    check(len(names) == 2 * 7 + 1, 'llama: %d matrices to convert, expected 15' % len(names))
    orig = {n: t.detach().clone() for n, t in m.named_parameters() if n in names}
    for i, t in enumerate(types):
        rep = res[1 + 2 * i]
        check(rep['tensors'] == len(names) and rep['kept'] == 0, 'llama %s: %s converted, %s kept' % (t, rep['tensors'],
                                                                                                      rep['kept']))
        with torch.no_grad():
            for n, prm in m.named_parameters():
                if n in names:
                    prm.copy_(torch.from_numpy(converted(orig[n].numpy().astype(np.float64), t)))
            want = m(torch.tensor([ids])).logits[0].double().numpy()
        worst = np.abs(np.array(res[2 + 2 * i]['logits']) - want).max()
        check(worst <= 1e-3, 'llama %s: logits within 1e-3 of transformers on gguf-converted weights, got %g'
              % (t, worst))
        print('llama %s: logits within %.2g of transformers' % (t, worst), flush=True)


def test_bad(tmp):
    mdir = os.path.join(tmp, 'm')
    narrow = new_model(tmp, 'narrow', 0.02, d=48)
    part = new_model(tmp, 'part', 0.02, d=64)

    def with_value(name, value):  # the model of mdir with one weight of h.1's c_fc set to value
        path = os.path.join(tmp, name)
        shutil.copytree(mdir, path)
        t = gpt2_ref.read_safetensors(os.path.join(path, 'model.safetensors'))
        t['h.1.mlp.c_fc.weight'][3, 5] = value
        gpt2_ref.write_safetensors(os.path.join(path, 'model.safetensors'),
                                   {k: ('F32', v.shape, v.astype(np.float32).tobytes()) for k, v in t.items()
                                    if not k.endswith(('.attn.bias', '.attn.masked_bias'))})
        return path
    nan, big, huge = with_value('nan', np.nan), with_value('holds-1e5', 1e5), with_value('holds-1e30', 1e30)
    cases = [
        (mdir, 'quantize q5_0', "unknown type 'q5_0'"),
        (mdir, 'quantize', 'quantize'),
        (mdir, 'quantize q8_0 embed=maybe', 'embed'),
        (mdir, 'quantize q8_0 block=32', 'block'),
        (mdir, 'compare "x"', 'run quantize'),
        (narrow, 'quantize q4_k', "no matrix has rows of whole 256-element blocks ('blk.0.attn_qkv' has rows of 48)"),
        # (the column too: "row 5 holds nan" named a row of 64 values; rows and columns as the GGUF
        # matrix holds them, [out, in], which GPT-2's c_fc [in, out] transposes)
        (nan, 'quantize q8_0', "'blk.1.ffn_up': cannot quantize to Q8_0: row 5, column 3 holds nan"),
        # a value a half float cannot hold: F16 stored it as infinity, the block types' half-float
        # scale overflowed (NaN errors then crashed quantize's histogram, exit 139)
        (big, 'quantize f16', "quantize F16: 'blk.1.ffn_up': cannot store 100000 (row 5, column 3) as F16: beyond its "
                              "range (|x| up to 65504)"),
        (huge, 'quantize q8_0', "quantize Q8_0: 'blk.1.ffn_up': cannot quantize to Q8_0: row 5, columns 0-31 hold "
                                "1e+30, whose block scale is beyond a half float's range"),
        (huge, 'quantize q4_0', "'blk.1.ffn_up': cannot quantize to Q4_0: row 5, columns 0-31 hold 1e+30"),
        (huge, 'quantize q4_1', "'blk.1.ffn_up': cannot quantize to Q4_1: row 5, columns 0-31 hold 1e+30"),
        (huge, 'quantize q4_k', "'blk.1.ffn_up': cannot quantize to Q4_K: row 5, columns 0-255 hold 1e+30"),
        (huge, 'quantize q6_k', "'blk.1.ffn_up': cannot quantize to Q6_K: row 5, columns 0-255 hold 1e+30"),
        # export gguf wrote the infinity into a file qkv then refused to run
        (big, 'export gguf %s type=f16' % os.path.join(tmp, 'big.gguf'), "ffn_up of layer 1: cannot store 100000"),
        (huge, 'export gguf %s type=q8_0' % os.path.join(tmp, 'big.gguf'), "ffn_up of layer 1: cannot quantize to "
                                                                           "Q8_0: row 5, columns 0-31 hold 1e+30"),
    ]
    for model, cmd, want in cases:
        p = qkv_cli.run(QKV, ['--model', model, '--db', os.path.join(tmp, 'db'), '-e', cmd + '; model'])
        lines = [l for l in p.stderr.splitlines() if l.startswith('error:')]
        check(p.returncode == 1 and len(lines) == 1 and want in lines[0],
              '%s: exit 1 and one error line naming %r; got exit %d, stderr %r' % (cmd, want, p.returncode, p.stderr[-400:]))
    check(not os.path.exists(os.path.join(tmp, 'big.gguf')), 'a refused export leaves no file')
    # what the types can hold is converted: int8's float scale, BF16's range
    for model, typ in ((huge, 'int8'), (huge, 'bf16'), (big, 'q8_0')):
        r = qkv_cli.json_cmds(QKV, model, ['quantize ' + typ], os.path.join(tmp, 'db'))[0]
        check(r['tensors'] > 0 and all(math.isfinite(l['max_err']) for l in r['layers']),
              'quantize %s of a model holding %s: converted, finite errors' % (typ, os.path.basename(model)))
    # inputs of 64 are not whole 256-element blocks, the MLP's c_proj's 256 are: kept, converted
    r = qkv_cli.json_cmds(QKV, part, ['quantize q4_k'], os.path.join(tmp, 'db'))[0]
    check(r['tensors'] == 2 and r['kept'] == 6 and r['kept_first'] == 'blk.0.attn_qkv',
          'q4_k at d=64: 2 converted, 6 kept from blk.0.attn_qkv; got %s, %s, %s' % (r['tensors'], r['kept'],
                                                                                    r.get('kept_first')))
    # nothing kept: kept_first is there, null (the key was left out; the README lists it always)
    r = qkv_cli.json_cmds(QKV, part, ['quantize q8_0'], os.path.join(tmp, 'db'))[0]
    check(r['kept'] == 0 and 'kept_first' in r and r['kept_first'] is None,
          'q8_0 at d=64: nothing kept, kept_first null; got %s, %s' % (r['kept'], r.get('kept_first', 'absent')))
    # an export of a converted model in another type says so in general.name (a Q4_K_M model
    # written as F32 was named "... Q4_K_M")
    import gguf
    for typ, export, want in (('q4_k_m', '', ' Q4_K_M as F32'), ('q8_0', ' type=q8_0', ' Q8_0'),
                              ('q8_0', ' type=f16', ' Q8_0 as F16')):
        f = os.path.join(tmp, 'named.gguf')
        qkv_cli.json_cmds(QKV, mdir, ['quantize ' + typ, 'export gguf %s%s' % (f, export)], os.path.join(tmp, 'db'))
        fld = gguf.GGUFReader(f).fields['general.name']
        name = bytes(fld.parts[fld.data[0]]).decode()
        check(name.endswith(want), 'quantize %s, export gguf%s: general.name %r ends with %r' % (typ, export, name, want))
        os.remove(f)
    # a GGUF model converted: named as qkv names it, not with the source file's general.name (kept,
    # it read as the source's weights)
    src_gguf, f = os.path.join(tmp, 'named-src.gguf'), os.path.join(tmp, 'named.gguf')
    qkv_cli.json_cmds(QKV, mdir, ['export gguf %s' % src_gguf], os.path.join(tmp, 'db'))
    for cmds, want in ((['quantize q4_0', 'export gguf %s type=q8_0' % f], ' Q4_0 as Q8_0'),
                       (['export gguf %s type=q8_0' % f], None)):
        qkv_cli.json_cmds(QKV, src_gguf, cmds, os.path.join(tmp, 'db'))
        fld = gguf.GGUFReader(f).fields['general.name']
        name = bytes(fld.parts[fld.data[0]]).decode()
        src_fld = gguf.GGUFReader(src_gguf).fields['general.name']
        src_name = bytes(src_fld.parts[src_fld.data[0]]).decode()
        check(name.endswith(want) if want else name == src_name,
              'GGUF source, %s: general.name %r (source %r)' % (cmds[0], name, src_name))
        os.remove(f)
    # a folder of two GGUF files and no safetensors checkpoint: which to open is asked, naming them (it
    # said "no model.safetensors or model.safetensors.index.json")
    two = os.path.join(tmp, 'two')
    os.makedirs(two)
    qkv_cli.json_cmds(QKV, mdir, ['export gguf %s' % os.path.join(two, 'a.gguf'),
                                  'export gguf %s' % os.path.join(two, 'b.gguf')], os.path.join(tmp, 'db'))
    p = qkv_cli.run(QKV, ['--model', two, '--db', os.path.join(tmp, 'db'), '-e', 'model'])
    check(p.returncode == 1 and "holds 2 GGUF files" in p.stderr and 'a.gguf' in p.stderr and 'b.gguf' in p.stderr
          and 'name the one to open' in p.stderr, 'a folder of two GGUF files: %r' % p.stderr[-300:])
    shutil.rmtree(two)
    # a failed quantize leaves the loaded model in place
    r = qkv_cli.json_cmds(QKV, part, ['quantize q8_0', 'model', 'quantize off', 'model'], os.path.join(tmp, 'db'))
    check(r[1]['dtype'] == 'Q8_0' and r[3]['dtype'] == 'F32', 'quantize / off: dtype %s then %s' % (r[1]['dtype'], r[3]['dtype']))


def main():
    tmp = tempfile.mkdtemp(prefix='qkv-quantize-')
    try:
        kernels = []
        for k in ('scalar', 'avx2', 'avx512', 'avx512vnni'):
            env = dict(os.environ, QKV_KERNELS=k)
            p = qkv_cli.subprocess.run([QKV, '--db', os.path.join(tmp, 'db'), '--json', '-e', 'model'],
                                       capture_output=True, text=True, env=env)
            if p.returncode == 0 and json.loads(p.stdout.rstrip("\n").split("\n")[-1])['kernels'] == k:
                kernels.append(k)
            else:
                print('kernels %s: not tested on this CPU' % k)
        test_against_numpy(tmp, kernels)
        test_compare(tmp)
        test_save(tmp)
        test_llama(tmp)
        test_q4_k_m(tmp)
        test_bad(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print('%d failures' % len(failures))
        return 1
    print('quantize and compare: all checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
