#!/usr/bin/env python3
# test_badfiles.py - suite 'unit': qkv rejects broken GPT-2 model directories cleanly.
#
# From a good small model written by `qkv new-model`, builds broken copies: truncated safetensors,
# bad header lengths, broken header JSON, offsets past the end / overlapping / not matching the
# shape, absurd shapes, wrong dtypes, missing and misshapen tensors, broken config.json, missing
# tokenizer files, broken shard indexes. For each, `qkv --model DIR -e model` must exit non-zero
# (not by a signal), print exactly one stderr line starting with `error: ` that names the file or
# the tensor, and no sanitizer report. Usage: test_badfiles.py QKV_BINARY.

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qkv_cli  # noqa: E402

ST = 'model.safetensors'
failures = []


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg, flush=True)


def read_st(path):
    """(header dict, data bytes) of a safetensors file; the header keeps its order."""
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write_st(path, header, data, hlen=None, pad=True):
    """Write header (dict, or raw bytes) and data; hlen overrides the length field. The header is
    padded with spaces to a multiple of 8 bytes as safetensors writers do (so that the data stays
    aligned) unless pad is False."""
    hb = header if isinstance(header, bytes) else json.dumps(header).encode()
    if pad:
        hb += b' ' * (-len(hb) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hb) if hlen is None else hlen))
        f.write(hb)
        f.write(data)


def nbytes(dt, shape):
    n = {'F32': 4, 'F16': 2, 'BF16': 2}[dt]
    for s in shape:
        n *= s
    return n


def compact(header, data, drop=(), reshape=None):
    """Rebuild (header, data) without the tensors in drop, with reshape {name: shape} applied
    (data cut or zero-padded to the new size), offsets recomputed."""
    out_h, out_d, off = {}, [], 0
    for name, info in header.items():
        if name == '__metadata__' or name in drop:
            continue
        b, e = info['data_offsets']
        blob = data[b:e]
        info = dict(info)
        if reshape and name in reshape:
            info['shape'] = reshape[name]
            size = nbytes(info['dtype'], info['shape'])
            blob = blob[:size] + b'\0' * max(0, size - len(blob))
        info['data_offsets'] = [off, off + len(blob)]
        out_h[name] = info
        out_d.append(blob)
        off += len(blob)
    return out_h, b''.join(out_d)


class Case:
    """A broken model: mutate(dir) breaks a copy of base; the error must name one of names.
    may_load: the file is unusual but valid, so loading it is also right (an error must still be clean)."""

    def __init__(self, name, mutate, names, base='good', may_load=False):
        self.name, self.mutate, self.names, self.base, self.may_load = name, mutate, names, base, may_load


# --- mutations: each takes the model directory and breaks it -------------------------------

def truncate_at(cut):
    def m(d):
        p = os.path.join(d, ST)
        with open(p, 'rb') as f:
            raw = f.read()
        (n,) = struct.unpack('<Q', raw[:8])
        at = {'zero': 0, 'four': 4, 'len_only': 8, 'mid_header': 8 + n // 2, 'header_end': 8 + n,
              'mid_data': 8 + n + (len(raw) - 8 - n) // 2, 'last_byte': len(raw) - 1}[cut]
        with open(p, 'wb') as f:
            f.write(raw[:at])
    return m


def header_len(fn):
    def m(d):
        p = os.path.join(d, ST)
        h, data = read_st(p)
        hb = json.dumps(h).encode()
        write_st(p, hb, data, hlen=fn(len(hb), 8 + len(hb) + len(data)))
    return m


def raw_header(fn):
    def m(d):
        p = os.path.join(d, ST)
        h, data = read_st(p)
        write_st(p, fn(json.dumps(h).encode()), data)
    return m


def unpadded(d):
    p = os.path.join(d, ST)
    h, data = read_st(p)
    hb = json.dumps(h).encode()
    if len(hb) % 4 == 0:
        hb += b' '
    write_st(p, hb, data, pad=False)


def edit_header(fn):
    def m(d):
        p = os.path.join(d, ST)
        h, data = read_st(p)
        r = fn(h, data)
        if isinstance(r, tuple):
            h, data = r
        write_st(p, h, data)
    return m


def edit_file(fname, fn):
    def m(d):
        p = os.path.join(d, fname)
        with open(p, 'rb') as f:
            raw = f.read()
        with open(p, 'wb') as f:
            f.write(fn(raw))
    return m


def edit_config(fn):
    def m(d):
        p = os.path.join(d, 'config.json')
        with open(p) as f:
            cfg = json.load(f)
        fn(cfg)
        with open(p, 'w') as f:
            json.dump(cfg, f)
    return m


def remove(*fnames):
    def m(d):
        for f in fnames:
            os.remove(os.path.join(d, f))
    return m


def replace_with(fname, kind):
    """fname becomes something that is not a readable regular file: a FIFO (opening it waited for a
    writer forever), a link to /dev/zero (read without end), a broken link or a directory (both
    were taken for a missing file: config.json's shape was then guessed, silently wrong)."""
    def m(d):
        p = os.path.join(d, fname)
        if os.path.exists(p) or os.path.islink(p):
            os.remove(p)
        if kind == 'fifo':
            os.mkfifo(p)
        elif kind == 'zero':
            os.symlink('/dev/zero', p)
        elif kind == 'broken':
            os.symlink(os.path.join(d, 'no-such-file'), p)
        else:
            os.mkdir(p)
    return m


def write_file(fname, raw):
    def m(d):
        with open(os.path.join(d, fname), 'wb') as f:
            f.write(raw)
    return m


def set_field(tensor, key, value):
    def f(h, data):
        h[tensor][key] = value
    return f


def offsets(tensor, fn):
    def f(h, data):
        b, e = h[tensor]['data_offsets']
        h[tensor]['data_offsets'] = fn(b, e, len(data), h)
    return f


def same_offsets_as(other):
    return lambda b, e, n, h: list(h[other]['data_offsets'])


def inside_of(other):
    return lambda b, e, n, h: [h[other]['data_offsets'][0] + 4, h[other]['data_offsets'][0] + 4 + (e - b)]


U64 = 2 ** 64


def cases(L, d, V, ctx):
    W = 'h.0.attn.c_attn.weight'
    return [
        # truncated files
        *[Case('truncated (%s)' % c, truncate_at(c), [ST]) for c in
          ('zero', 'four', 'len_only', 'mid_header', 'header_end', 'mid_data', 'last_byte')],
        # header length field
        Case('header length 1 past the end', header_len(lambda n, size: size - 8 + 1), [ST]),
        Case('header length twice the file', header_len(lambda n, size: 2 * size), [ST]),
        Case('header length 2^63', header_len(lambda n, size: 2 ** 63), [ST]),
        Case('header length 2^64-1', header_len(lambda n, size: U64 - 1), [ST]),
        Case('header length 0', header_len(lambda n, size: 0), [ST]),
        Case('header length too short', header_len(lambda n, size: n // 2), [ST]),
        # header JSON
        Case('header JSON cut in half', raw_header(lambda hb: hb[:len(hb) // 2] + b' ' * (len(hb) - len(hb) // 2)),
             [ST]),
        Case('header JSON with invalid UTF-8', raw_header(lambda hb: hb.replace(b'"wpe.weight"', b'"wpe.\xff\xfeght"')),
             [ST, 'wpe']),
        Case('header JSON is an array', raw_header(lambda hb: b'[]'), [ST]),
        Case('header JSON nested 100000 deep', raw_header(lambda hb: b'[' * 100000 + b']' * 100000), [ST]),
        Case('header JSON with NUL bytes', raw_header(lambda hb: b'\0' * len(hb)), [ST]),
        Case('tensor entry is a number', edit_header(lambda h, _: h.__setitem__(W, 5)), [ST, W]),
        Case('tensor entry without data_offsets', edit_header(lambda h, _: h[W].pop('data_offsets')), [ST, W]),
        Case('tensor entry without shape', edit_header(lambda h, _: h[W].pop('shape')), [ST, W]),
        Case('tensor entry without dtype', edit_header(lambda h, _: h[W].pop('dtype')), [ST, W]),
        Case('data_offsets with 3 numbers', edit_header(offsets(W, lambda b, e, n, h: [b, e, e])), [ST, W]),
        Case('data_offsets as strings', edit_header(offsets(W, lambda b, e, n, h: [str(b), str(e)])), [ST, W]),
        Case('data_offsets reversed', edit_header(offsets(W, lambda b, e, n, h: [e, b])), [ST, W]),
        Case('header not padded (data unaligned)', unpadded, [ST], may_load=True),
        # offsets past the end
        Case('data_offsets past the end', edit_header(offsets(W, lambda b, e, n, h: [b + n, e + n])), [ST, W]),
        Case('data_offsets end 1 past the end', edit_header(offsets(W, lambda b, e, n, h: [n - (e - b) + 1, n + 1])),
             [ST, W]),
        Case('data_offsets near 2^64 (overflow)', edit_header(offsets(W, lambda b, e, n, h: [U64 - 1 - (e - b),
                                                                                             U64 - 1])), [ST, W]),
        Case('data_offsets 2^63', edit_header(offsets(W, lambda b, e, n, h: [2 ** 63, 2 ** 63 + (e - b)])), [ST, W]),
        Case('data_offsets negative', edit_header(offsets(W, lambda b, e, n, h: [-4, -4 + (e - b)])), [ST, W]),
        # overlapping
        Case('two tensors at the same offsets', edit_header(offsets('h.0.ln_1.bias',
                                                                    same_offsets_as('h.0.ln_1.weight'))),
             [ST, 'h.0.ln_1.bias', 'h.0.ln_1.weight']),
        Case('a tensor inside another', edit_header(offsets('wpe.weight', inside_of('wte.weight'))),
             [ST, 'wpe.weight', 'wte.weight']),
        # offsets vs shape
        Case('data size 4 bytes short of shape', edit_header(offsets('ln_f.weight', lambda b, e, n, h: [b, e - 4])),
             [ST, 'ln_f.weight']),
        Case('data size 4 bytes over shape', edit_header(offsets('ln_f.weight', lambda b, e, n, h: [b - 4, e])),
             [ST, 'ln_f.weight']),
        Case('data size 0', edit_header(offsets('ln_f.weight', lambda b, e, n, h: [b, b])), [ST, 'ln_f.weight']),
        # absurd shapes
        Case('negative dimension', edit_header(set_field('wte.weight', 'shape', [-V, d])), [ST, 'wte.weight']),
        Case('dimension 2^40', edit_header(set_field('wte.weight', 'shape', [2 ** 40, d])), [ST, 'wte.weight']),
        Case('shape product overflows 64 bits', edit_header(set_field('wte.weight', 'shape', [2 ** 62, 2 ** 62])),
             [ST, 'wte.weight']),
        Case('shape 256^8 (overflow to 0)', edit_header(set_field('wte.weight', 'shape', [256] * 8)),
             [ST, 'wte.weight']),
        Case('dimension 2^64-1', edit_header(set_field('wte.weight', 'shape', [U64 - 1, d])), [ST, 'wte.weight']),
        Case('dimension a string', edit_header(set_field('wte.weight', 'shape', ['%d' % V, d])), [ST, 'wte.weight']),
        Case('dimension fractional', edit_header(set_field('wte.weight', 'shape', [V + 0.5, d])), [ST, 'wte.weight']),
        Case('shape not a list', edit_header(set_field('wte.weight', 'shape', V * d)), [ST, 'wte.weight']),
        Case('scalar shape for a matrix', edit_header(set_field('wte.weight', 'shape', [])), [ST, 'wte.weight']),
        # dtypes
        Case('dtype I32 for a weight', edit_header(set_field(W, 'dtype', 'I32')), [ST, W]),
        Case('dtype I64 for a weight', edit_header(set_field(W, 'dtype', 'I64')), [ST, W]),
        Case('dtype U8 for a weight', edit_header(set_field(W, 'dtype', 'U8')), [ST, W]),
        Case('dtype BOOL for a weight', edit_header(set_field(W, 'dtype', 'BOOL')), [ST, W]),
        Case('unknown dtype Q9', edit_header(set_field(W, 'dtype', 'Q9')), [ST, W]),
        Case('dtype a number', edit_header(set_field(W, 'dtype', 123)), [ST, W]),
        # missing / misshapen tensors
        *[Case('missing tensor %s' % t, edit_header(lambda h, data, t=t: compact(h, data, drop=(t,))), [t])
          for t in ('wte.weight', 'wpe.weight', 'h.%d.mlp.c_proj.bias' % (L - 1), 'ln_f.weight', W)],
        Case('c_attn stored [3d, d] (nn.Linear order)',
             edit_header(lambda h, data: compact(h, data, reshape={W: [3 * d, d]})), [W]),
        Case('c_fc weight [d, 3d]', edit_header(lambda h, data: compact(h, data, reshape={'h.0.mlp.c_fc.weight':
                                                                                          [d, 3 * d]})),
             ['h.0.mlp.c_fc.weight']),
        Case('wpe with ctx-1 rows', edit_header(lambda h, data: compact(h, data, reshape={'wpe.weight': [ctx - 1, d]})),
             ['wpe.weight']),
        Case('wte with V-1 rows', edit_header(lambda h, data: compact(h, data, reshape={'wte.weight': [V - 1, d]})),
             ['wte.weight']),
        Case('ln_f.weight [d+1]', edit_header(lambda h, data: compact(h, data, reshape={'ln_f.weight': [d + 1]})),
             ['ln_f.weight']),
        Case('ln_1.bias as a matrix', edit_header(lambda h, data: compact(h, data, reshape={'h.0.ln_1.bias': [1, d]})),
             ['h.0.ln_1.bias']),
        # config.json
        Case('config.json missing', remove('config.json'), ['config.json']),
        Case('config.json empty', edit_file('config.json', lambda raw: b''), ['config.json']),
        Case('config.json bad JSON', edit_file('config.json', lambda raw: raw[:len(raw) // 2]), ['config.json']),
        Case('config.json is an array', edit_file('config.json', lambda raw: b'[1, 2]'), ['config.json']),
        Case('config.json without n_embd', edit_config(lambda c: c.pop('n_embd')), ['config.json', 'n_embd']),
        Case('config.json without n_layer', edit_config(lambda c: c.pop('n_layer')), ['config.json', 'n_layer']),
        Case('config.json without n_head', edit_config(lambda c: c.pop('n_head')), ['config.json', 'n_head']),
        Case('n_head not dividing n_embd', edit_config(lambda c: c.update(n_head=3)), ['config.json', 'n_head']),
        Case('n_head 0', edit_config(lambda c: c.update(n_head=0)), ['config.json', 'n_head']),
        Case('n_head negative', edit_config(lambda c: c.update(n_head=-2)), ['config.json', 'n_head']),
        Case('n_embd 0', edit_config(lambda c: c.update(n_embd=0)), ['config.json', 'n_embd']),
        Case('n_embd negative', edit_config(lambda c: c.update(n_embd=-d)), ['config.json', 'n_embd']),
        Case('n_embd 2^40', edit_config(lambda c: c.update(n_embd=2 ** 40)), ['config.json', 'n_embd', 'wte']),
        Case('n_layer 0', edit_config(lambda c: c.update(n_layer=0)), ['config.json', 'n_layer']),
        Case('n_layer negative', edit_config(lambda c: c.update(n_layer=-1)), ['config.json', 'n_layer']),
        Case('n_layer beyond the tensors', edit_config(lambda c: c.update(n_layer=L + 1)),
             ['config.json', 'n_layer', 'h.%d.' % L]),
        # one layer fewer ran the model cut short, silently
        Case('n_layer below the tensors', edit_config(lambda c: c.update(n_layer=L - 1)),
             ['%d layer' % (L - 1), 'hold %d' % L, 'h.%d.' % (L - 1)]),
        Case('n_layer 2^31', edit_config(lambda c: c.update(n_layer=2 ** 31)), ['config.json', 'n_layer', 'h.']),
        Case('n_positions 0', edit_config(lambda c: c.update(n_positions=0)), ['config.json', 'n_positions', 'wpe']),
        Case('n_positions negative', edit_config(lambda c: c.update(n_positions=-ctx)),
             ['config.json', 'n_positions', 'wpe']),
        Case('n_positions beyond wpe', edit_config(lambda c: c.update(n_positions=2 * ctx)),
             ['config.json', 'n_positions', 'wpe']),
        Case('vocab_size 0', edit_config(lambda c: c.update(vocab_size=0)), ['config.json', 'vocab_size', 'wte']),
        Case('vocab_size negative', edit_config(lambda c: c.update(vocab_size=-V)),
             ['config.json', 'vocab_size', 'wte']),
        Case('n_embd a string', edit_config(lambda c: c.update(n_embd='big')), ['config.json', 'n_embd']),
        Case('n_embd fractional', edit_config(lambda c: c.update(n_embd=d + 0.5)), ['config.json', 'n_embd']),
        # attention scaled in ways qkv does not compute (they loaded and were silently ignored)
        Case('scale_attn_weights false', edit_config(lambda c: c.update(scale_attn_weights=False)),
             ['scale_attn_weights']),
        Case('scale_attn_by_inverse_layer_idx', edit_config(lambda c: c.update(scale_attn_by_inverse_layer_idx=True)),
             ['scale_attn_by_inverse_layer_idx']),
        # tokenizer
        Case('vocab.json missing', remove('vocab.json'), ['vocab.json', 'tokenizer']),
        Case('merges.txt missing', remove('merges.txt'), ['merges.txt', 'tokenizer']),
        Case('tokenizer files missing', remove('vocab.json', 'merges.txt'), ['vocab.json', 'merges.txt', 'tokenizer']),
        Case('vocab.json bad JSON', edit_file('vocab.json', lambda raw: raw[:len(raw) // 2]), ['vocab.json']),
        Case('vocab.json is an array', edit_file('vocab.json', lambda raw: b'["a", "b"]'), ['vocab.json']),
        # weights file itself
        Case('model.safetensors missing', remove(ST), [ST, 'safetensors']),
        # names that are there but are not readable regular files (each said as what it is)
        Case('config.json a FIFO', replace_with('config.json', 'fifo'), ['not a regular file']),
        Case('config.json a broken link', replace_with('config.json', 'broken'), ['broken symbolic link']),
        Case('config.json a directory', replace_with('config.json', 'dir'), ['it is a directory']),
        Case('model.safetensors a FIFO', replace_with(ST, 'fifo'), ['not a regular file']),
        Case('model.safetensors a broken link', replace_with(ST, 'broken'), ['broken symbolic link']),
        Case('vocab.json a FIFO', replace_with('vocab.json', 'fifo'), ['not a regular file']),
        Case('vocab.json is /dev/zero', replace_with('vocab.json', 'zero'), ['not a regular file']),
        Case('merges.txt a broken link', replace_with('merges.txt', 'broken'), ['broken symbolic link']),
        Case('tokenizer_config.json bad JSON', write_file('tokenizer_config.json', b'{not json'),
             ['tokenizer_config.json']),
        Case('tokenizer_config.json a FIFO', replace_with('tokenizer_config.json', 'fifo'), ['not a regular file']),
        # another kind of file where the weights should be (said as such, not "header length 7143...")
        Case('model.safetensors a text file', write_file(ST, b'hello, this is a text file and not a model\n' * 4),
             ['not a safetensors file']),
        # shards
        Case('shard 2 missing', remove('model-00002-of-00002.safetensors'), ['model-00002-of-00002.safetensors'],
             base='sharded'),
        Case('index names a shard that does not exist',
             edit_file('model.safetensors.index.json',
                       lambda raw: raw.replace(b'model-00002-of-00002', b'model-00003-of-00002')),
             ['model-00003-of-00002.safetensors'], base='sharded'),
        Case('index bad JSON', edit_file('model.safetensors.index.json', lambda raw: raw[:len(raw) // 2]),
             ['model.safetensors.index.json'], base='sharded'),
        Case('index without weight_map', edit_file('model.safetensors.index.json', lambda raw: b'{"metadata": {}}'),
             ['model.safetensors.index.json', 'weight_map'], base='sharded'),
        Case('shard 1 truncated', edit_file('model-00001-of-00002.safetensors', lambda raw: raw[:len(raw) - 3]),
             ['model-00001-of-00002.safetensors'], base='sharded'),
    ]


def check(qkv, case, d, db):
    try:
        p = qkv_cli.run(qkv, ['--model', d, '--db', db, '--json', '-e', 'model'], timeout=60)
    except subprocess.TimeoutExpired:
        fail('%s: hangs (no answer in 60 s)' % case.name)
        return
    lines = p.stderr.splitlines()
    problems = []
    if p.returncode == 0 and case.may_load:
        if p.stderr.strip():
            problems.append('loaded, but wrote to stderr')
        if problems:
            fail('%s: %s\n  stderr: %s' % (case.name, '; '.join(problems), p.stderr.strip()[:1500]))
        else:
            print('ok   %-45s (loaded)' % case.name)
        return
    if p.returncode == 0:
        problems.append('exit 0 (expected non-zero)')
    elif p.returncode < 0:
        problems.append('killed by signal %d' % -p.returncode)
    if 'Sanitizer' in p.stderr or 'runtime error' in p.stderr:
        problems.append('sanitizer report')
    if len(lines) != 1 or not lines[0].startswith('error: '):
        problems.append('stderr is not exactly one line starting with "error: "')
    elif not any(n in lines[0] for n in case.names):
        problems.append('message names none of %s' % case.names)
    if problems:
        fail('%s: %s\n  stderr: %s' % (case.name, '; '.join(problems), p.stderr.strip()[:1500]))
    else:
        print('ok   %-45s %s' % (case.name, lines[0]))


def check_commands(qkv, good, db, V, L, H, ctx):
    """Bad arguments on a good model: each a clean one-line error and a non-zero exit."""
    over = ','.join(['1'] * (ctx + 1))
    cmds = [
        ('a prompt longer than the context', 'logits ids=%s' % over),
        ('generate from a prompt longer than the context', 'generate ids=%s max=2 temperature=0' % over),
        ('a token id past the vocabulary', 'logits ids=1,%d,2' % V),
        ('a negative token id', 'logits ids=1,-1,2'),
        ('attention layer out of range', 'attention ids=1,2 layer=%d head=0' % L),
        ('attention head out of range', 'attention ids=1,2 layer=0 head=%d' % H),
    ]
    for name, cmd in cmds:
        p = qkv_cli.run(qkv, ['--model', good, '--db', db, '--json', '-e', cmd], timeout=120)
        lines = p.stderr.splitlines()
        problems = []
        if p.returncode == 0:
            problems.append('exit 0 (expected non-zero)')
        elif p.returncode < 0:
            problems.append('killed by signal %d' % -p.returncode)
        if 'Sanitizer' in p.stderr or 'runtime error' in p.stderr:
            problems.append('sanitizer report')
        if len(lines) != 1 or not lines[0].startswith('error: '):
            problems.append('stderr is not exactly one line starting with "error: "')
        if problems:
            fail('%s (%s): %s\n  stderr: %s' % (name, cmd[:60], '; '.join(problems), p.stderr.strip()[:1500]))
        else:
            print('ok   %-45s %s' % (name, lines[0]))
    return len(cmds)


def main():
    qkv = qkv_cli.qkv_path()
    if not os.path.exists(qkv):
        print('FAIL: qkv binary not found at %s' % qkv)
        return 1
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix='qkv-badfiles-')
    L, H, d, ctx = 2, 2, 8, 16
    try:
        db = os.path.join(tmp, 'qkv.db')
        bases = {}
        for base, extra in (('good', []), ('sharded', ['shards=2'])):
            out = os.path.join(tmp, base)
            args = ['gpt2', 'layers=%d' % L, 'heads=%d' % H, 'd=%d' % d, 'ctx=%d' % ctx, 'seed=1',
                    'out=' + out] + extra
            p = qkv_cli.new_model(qkv, args, db)
            if p.returncode != 0:
                fail('new-model %s: exit %d, stderr: %s' % (' '.join(args), p.returncode, p.stderr.strip()))
                return 1
            p = qkv_cli.run(qkv, ['--model', out, '--db', db, '--json', '-e', 'model'])
            if p.returncode != 0 or p.stderr.strip():
                fail('the good %s model does not load cleanly: exit %d, stderr: %s'
                     % (base, p.returncode, p.stderr.strip()))
                return 1
            bases[base] = out
        with open(os.path.join(bases['good'], 'config.json')) as f:
            V = json.load(f)['vocab_size']
        with open(os.path.join(bases['good'], ST), 'rb') as f:
            (n,) = struct.unpack('<Q', f.read(8))
            tensor_names = [k for k in json.loads(f.read(n)) if k != '__metadata__']
        all_cases = cases(L, d, V, ctx)
        for case in all_cases:  # a broken weights file may be reported by the tensor it breaks
            if ST in case.names:
                case.names = case.names + tensor_names
        for i, case in enumerate(all_cases):
            work = os.path.join(tmp, 'case%d' % i)
            shutil.copytree(bases[case.base], work)
            case.mutate(work)
            check(qkv, case, work, db)
            shutil.rmtree(work, ignore_errors=True)
        n_cmds = check_commands(qkv, bases['good'], db, V, L, H, ctx)
        # a configuration given as the tokenizer (it asked for a merges.txt); a vocabulary-only GGUF
        # given as the model (it said a tensor was missing)
        odd_cmds = [(['--model', bases['good'], '--tokenizer', os.path.join(bases['good'], 'config.json'), '-e', 'model'],
                     'is not a tokenizer')]
        vocab_gguf = os.path.join(os.environ.get('QKV_SHARED_MODELS', ''), 'gpt2-bpe-tokenizer', 'ggml-vocab-gpt-2.gguf')
        if os.path.exists(vocab_gguf):
            odd_cmds.append((['--model', vocab_gguf, '-e', 'model'], 'give it as --tokenizer'))
        for args, want in odd_cmds:
            n_cmds += 1
            p = qkv_cli.run(qkv, ['--db', db] + args, timeout=60)
            lines = p.stderr.splitlines()
            if p.returncode <= 0 or len(lines) != 1 or want not in lines[0]:
                fail('%s: exit %d, stderr %r (expected %r)' % (' '.join(args[2:]), p.returncode, p.stderr[:300], want))
            else:
                print('ok   %-45s %s' % (os.path.basename(args[3 if args[2] == '--tokenizer' else 1]), lines[0]))
        # --tokenizer and load ... tokenizer= given a FIFO or an endless device
        odd = os.path.join(tmp, 'odd')
        os.mkdir(odd)
        os.mkfifo(os.path.join(odd, 'fifo.json'))
        os.symlink('/dev/zero', os.path.join(odd, 'zero.json'))
        for name in ('fifo.json', 'zero.json'):
            path = os.path.join(odd, name)
            for args in (['--model', bases['good'], '--tokenizer', path, '-e', 'model'],
                         ['--model', bases['good'], '-e', 'load %s tokenizer=%s' % (bases['good'], path)]):
                n_cmds += 1
                try:
                    p = qkv_cli.run(qkv, ['--db', db] + args, timeout=60)
                except subprocess.TimeoutExpired:
                    fail('%s: hangs' % ' '.join(args[2:]))
                    continue
                lines = p.stderr.splitlines()
                if p.returncode <= 0 or len(lines) != 1 or 'not a regular file' not in lines[0]:
                    fail('%s: exit %d, stderr %r' % (' '.join(args[2:]), p.returncode, p.stderr[:300]))
                else:
                    print('ok   %-45s %s' % (name + ' as the tokenizer', lines[0]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('badfiles: %d files, %d commands, %d failure(s), %.1f s'
          % (len(all_cases), n_cmds, len(failures), time.time() - t0))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
