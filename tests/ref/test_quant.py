#!/usr/bin/env python3
"""qkv's element types against the gguf package (llama.cpp's own Python reader and writer).

Usage: test_quant.py QUANT_DUMP   (tests/ref/quant_dump, built by meson)

1. Dequantization, bit for bit: blocks of Q8_0, Q4_0, Q4_1, Q4_K and Q6_K made by
   gguf.quants.quantize where it can (Q8_0, Q4_0, Q4_1: data of every magnitude, all zeros,
   negative zeros, values whose scales are f16 subnormals or overflow) and of random bytes
   whose scale fields are set to the f16 corner cases (+-0, subnormals, the largest finite,
   infinities, NaN); every kernel table this CPU runs converts them, and the float32 bytes must
   equal gguf.quants.dequantize's.
2. Quantization: qkv's Q8_0, Q4_0 and Q4_1 bytes equal gguf.quants.quantize's on random rows
   (with ties for the largest magnitude, constant rows, zeros). gguf 0.19.0 has no quantizer
   for Q4_K and Q6_K: their blocks must dequantize in gguf to what qkv decodes, and their
   error must stay below Q4_1's (Q4_K) and a third of it (Q6_K) on the same rows. I8_AFFINE
   (qkv's own) equals the lectures' formula computed here in NumPy.
3. Matrix-vector products of each type on every table within 1e-5 of sum |w x| of the
   float64 product of gguf's dequantized weights with x as qkv quantizes it for them (int16
   blocks of 32, computed here in NumPy: within half a step of x).
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refenv import need  # noqa: E402

np, gguf = need('numpy', 'gguf')
from gguf import GGMLQuantizationType as T  # noqa: E402
from gguf import quants  # noqa: E402

DUMP = sys.argv[1]
TABLES = ('scalar', 'avx2', 'avx512', 'avx512vnni')
BLOCK = {'Q8_0': (32, 34), 'Q4_0': (32, 18), 'Q4_1': (32, 20), 'Q4_K': (256, 144), 'Q6_K': (256, 210)}
# where each type keeps its f16 scales (byte offsets in a block)
SCALES = {'Q8_0': [0], 'Q4_0': [0], 'Q4_1': [0, 2], 'Q4_K': [0, 2], 'Q6_K': [208]}
F16_CORNERS = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00, 0x7C00, 0xFC00, 0x7E00, 0x7C01]
failures = 0
tested_tables = set()


def check(cond, what, got=None):
    global failures
    if not cond:
        failures += 1
        print('FAIL: %s%s' % (what, '' if got is None else '\n  got: %s' % (got,)), flush=True)


def dump(mode, name, cols, data, table=None):
    args = [DUMP, mode, name, str(cols)] + ([table] if table else [])
    p = subprocess.run(args, input=data, capture_output=True, timeout=300)
    if p.returncode == 77:
        return None
    if p.returncode != 0:
        raise SystemExit('quant_dump %s failed: %s' % (' '.join(args[1:]), p.stderr.decode()[:500]))
    if table:
        tested_tables.add(table)
    return p.stdout


def first_diff(a, b):
    a, b = np.frombuffer(a, np.uint32), np.frombuffer(b, np.uint32)
    if a.shape != b.shape:
        return 'sizes %d and %d' % (a.size, b.size)
    i = int(np.nonzero(a != b)[0][0])
    return 'element %d: expected %08x (%r), got %08x (%r)' % (i, b[i], b[i:i + 1].view(np.float32)[0], a[i],
                                                            a[i:i + 1].view(np.float32)[0])


def random_data(rng, rows, cols):
    """Rows of every magnitude and shape a quantizer meets."""
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    mags = np.array([1, 1e-3, 1e3, 6e4, 1e5, 1e-6, 1e-8, 3e-10, 1e-30, 0.02], np.float32)
    x *= mags[np.arange(rows) % len(mags)][:, None]
    x[1] = 0
    x[2] = -0.0
    x[3, ::3] = -0.0
    x[4] = np.abs(x[4])       # all positive
    x[5] = -np.abs(x[5])      # all negative
    x[6] = 0.75               # constant
    x[7, :] = x[7, 0]
    x[8, 5::32] = np.abs(x[8]).max() * 1.5   # ties for the largest magnitude, both signs
    x[8, 9::32] = -np.abs(x[8]).max()
    return x


def test_dequant(rng):
    for name, (blk, size) in BLOCK.items():
        qt = T[name]
        cols = blk * 4
        sets = []
        if name in ('Q8_0', 'Q4_0', 'Q4_1'):
            sets.append(('quantized', quants.quantize(random_data(rng, 40, cols), qt)))
        raw = rng.integers(0, 256, (64, cols // blk, size), dtype=np.uint8)
        for r in range(raw.shape[0]):
            for off in SCALES[name]:
                h = F16_CORNERS[(r + off) % len(F16_CORNERS)] if r < 40 else int(rng.integers(0, 0x7C00))
                raw[r, :, off:off + 2] = np.frombuffer(np.uint16(h).tobytes(), np.uint8)
        sets.append(('random bytes', raw.reshape(64, -1)))
        for what, blocks in sets:
            want = quants.dequantize(blocks, qt).astype(np.float32).tobytes()
            for table in TABLES:
                got = dump('dequant', name, cols, blocks.tobytes(), table)
                if got is None:
                    continue
                check(got == want, '%s dequantization of %s blocks on %s equals gguf\'s bit for bit' % (name, what, table),
                      None if got == want else first_diff(got, want))
        print('%s: dequantization equals gguf\'s' % name, flush=True)


def np_roundf(v):
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def i8_affine_ref(x):
    """The lectures' affine int8 per row, as quant.h states it (float32 scale, float64 rounding)."""
    rows, cols = x.shape
    out = bytearray()
    for r in x:
        mn, mx = r.min(), r.max()
        s = np.float32((mx - mn) / np.float32(255))
        z = np_roundf(-128.0 - float(mn) / float(s)) if s > 0 and np.isfinite(s) else 0.0
        if not (s > 0 and np.isfinite(s)) or abs(z) > 2 ** 23:
            amax = max(abs(mn), abs(mx))
            s, z = (np.float32(amax / np.float32(127)) if amax > 0 else np.float32(1)), 0.0
        z = int(z)
        q = np.clip(np_roundf(r.astype(np.float64) / float(s) + z), -128, 127).astype(np.int8)
        out += np.float32(s).tobytes() + np.int32(z).tobytes() + q.tobytes()
    return bytes(out)


def test_quant(rng):
    cols = 512
    x = random_data(rng, 60, cols)
    for name in ('Q8_0', 'Q4_0', 'Q4_1'):
        want = quants.quantize(x, T[name]).tobytes()
        got = dump('quant', name, cols, x.tobytes())
        if got != want:
            bs = BLOCK[name][1]
            i = next(k for k in range(len(want)) if got[k] != want[k])
            check(False, '%s quantization equals gguf\'s' % name,
                  'block %d byte %d: expected %s, got %s' % (i // bs, i % bs, want[i // bs * bs:(i // bs + 1) * bs].hex(),
                                                              got[i // bs * bs:(i // bs + 1) * bs].hex()))
        else:
            print('%s: quantization equals gguf\'s (%d blocks)' % (name, len(want) // BLOCK[name][1]), flush=True)
    # K-quants: valid blocks, and an error below the simpler formats' on ordinary weights
    w = (rng.standard_normal((64, 1024)) * 0.02).astype(np.float32)
    w[3] = 0
    w[5, 7] = 0.5   # an outlier
    q41 = quants.dequantize(quants.quantize(w, T.Q4_1), T.Q4_1)
    rmse41 = float(np.sqrt(np.mean((q41 - w) ** 2)))
    for name, limit in (('Q4_K', 1.0), ('Q6_K', 1 / 3)):
        got = dump('quant', name, 1024, w.tobytes())
        blocks = np.frombuffer(got, np.uint8).reshape(64, -1)
        deq = quants.dequantize(blocks, T[name])
        mine = np.frombuffer(dump('dequant', name, 1024, got, 'scalar'), np.float32).reshape(64, -1)
        check(np.array_equal(deq.view(np.uint32), mine.view(np.uint32)), '%s blocks qkv writes decode alike in gguf' % name)
        check(np.all(deq[3] == 0), '%s keeps a zero row zero' % name, deq[3][:8])
        rmse = float(np.sqrt(np.mean((deq - w) ** 2)))
        print('%s: rmse %.3g of weights of std 0.02 (Q4_1: %.3g)' % (name, rmse, rmse41), flush=True)
        check(rmse < limit * rmse41, '%s error below %.2f x Q4_1\'s' % (name, limit), (rmse, rmse41))
    # the lectures' affine int8
    x8 = random_data(rng, 30, 96)
    x8[9] = np.linspace(-3, 5, 96, dtype=np.float32)
    x8[10] = 1000 + np.linspace(0, 1e-3, 96, dtype=np.float32)  # Z would pass 2^23
    got = dump('quant', 'I8_AFFINE', 96, x8.tobytes())
    want = i8_affine_ref(x8)
    check(got == want, 'I8_AFFINE quantization equals the formula', None if got == want else (got[:24].hex(), want[:24].hex()))
    raw = np.frombuffer(got, np.uint8).reshape(30, -1)
    s_, z_ = raw[:, :4].copy().view(np.float32), raw[:, 4:8].copy().view(np.int32)
    want_f = (s_ * (raw[:, 8:].view(np.int8).astype(np.int64) - z_).astype(np.float32)).astype(np.float32).tobytes()
    for table in TABLES:
        f = dump('dequant', 'I8_AFFINE', 96, got, table)
        check(f is None or f == want_f, 'I8_AFFINE dequantization on %s is s (q - Z) bit for bit' % table)
    deq = np.frombuffer(dump('dequant', 'I8_AFFINE', 96, got, 'scalar'), np.float32).reshape(30, -1)
    s = np.frombuffer(got, np.uint8).reshape(30, -1)[:, :4].copy().view(np.float32)[:, 0]
    err = np.abs(deq - x8).max(axis=1)
    check(np.all(err <= s * 0.5001 + 1e-30), 'I8_AFFINE reconstructs within half a step', (err / s).max())
    check(abs(deq[9] - x8[9]).max() <= (8 / 255) / 2 * 1.001, 'I8_AFFINE of a [-3, 5] ramp within 8/255/2')
    print('I8_AFFINE: the formula, within half a step', flush=True)
    bad = subprocess.run([DUMP, 'quant', 'Q4_0', '32'], input=np.full(32, np.nan, np.float32).tobytes(),
                         capture_output=True)
    check(bad.returncode == 1 and b'nan' in bad.stderr, 'a NaN is refused with a message', bad.stderr)


def xq_values(x):
    """x as qkv's block-type matrix-vector products take it: blocks of 32 as int16, d = max|x| / 32767,
    q = round-half-even(x * (32767 / max|x|)), in float32 as kern/blocks.h's blk_quant_x computes it."""
    xb = x.reshape(-1, 32).astype(np.float32)
    amax = np.abs(xb).max(axis=1).astype(np.float32)
    ok = amax >= np.float32(1e-30)
    safe = np.where(ok, amax, np.float32(1))
    inv = np.where(ok, np.float32(32767) / safe, np.float32(0)).astype(np.float32)
    q = np.rint(np.clip(xb * inv[:, None], -32767, 32767)).astype(np.float32)
    d = np.where(ok, safe / np.float32(32767), np.float32(0)).astype(np.float32)
    return (d[:, None] * q).astype(np.float32).reshape(-1)


def test_matvec(rng):
    for name, (blk, size) in BLOCK.items():
        for cols in (blk, 3 * blk, 768 // blk * blk or blk):
            rows = 37
            w = (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32)
            stored = dump('quant', name, cols, w.tobytes())
            deq = quants.dequantize(np.frombuffer(stored, np.uint8).reshape(rows, -1), T[name]).astype(np.float64)
            x = rng.standard_normal(cols).astype(np.float32)
            # the product is of the weights and x quantized to int16 blocks (within half a step of x)
            xq = xq_values(x).astype(np.float64)
            check(np.all(np.abs(xq - x) <= np.repeat(np.abs(x.reshape(-1, 32)).max(axis=1), 32) / 65534 * 1.02),
                  'x quantized within half a step', np.abs(xq - x).max())
            ref = deq @ xq
            mag = np.abs(deq) @ np.abs(xq)
            for table in TABLES:
                got = dump('matvec', name, cols, stored + x.tobytes(), table)
                if got is None:
                    continue
                err = float(np.max(np.abs(np.frombuffer(got, np.float32) - ref) / mag))
                check(err <= 1e-5, '%s matvec on %s, %d x %d, within 1e-5 of sum |w x|' % (name, table, rows, cols), err)
    print('matrix-vector products agree with gguf\'s dequantized weights', flush=True)


def main():
    np.seterr(all='ignore')  # the corner-case scales make NaNs on purpose
    rng = np.random.default_rng(9)
    test_dequant(rng)
    test_quant(rng)
    test_matvec(rng)
    print('tables run:', ', '.join(t for t in TABLES if t in tested_tables))
    check('scalar' in tested_tables, 'the scalar table ran')
    print('%d failed' % failures if failures else 'element types agree with gguf')
    return 1 if failures else 0


sys.exit(main())
