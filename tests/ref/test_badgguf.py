#!/usr/bin/env python3
# test_badgguf.py - suite 'unit': broken GGUF files are refused cleanly.
#
# A small good Llama-shaped GGUF (F32, F16 and Q8_0 tensors, a byte-level vocabulary with merges)
# is written by a plain-Python GGUF writer (struct only, no reference library), then broken one
# way per case: bad magic, versions, counts, string lengths, key and element types, nested
# arrays, duplicate keys and tensor names, general.alignment, tensor dims, types (unknown ids and
# ggml types qkv does not compute with), offsets (unaligned, past the end, overlapping),
# truncation anywhere, missing or mistyped metadata keys, unsupported architectures and
# tokenizers, tensor shapes that disagree with the metadata, and a block_count above or below the
# blocks the tensors hold (blk.N.*: the message names the key and the blocks). For each,
# `qkv --model FILE -e model` must exit non-zero (not by a signal) with exactly one stderr line
# starting with `error: ` that names what is wrong (a tuple of texts in a case's names: all of
# them), no sanitizer report, within the timeout (no hang).
# Usage: test_badgguf.py QKV_BINARY

import os
import shutil
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qkv_cli  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tok'))
import tokref  # noqa: E402

failures = []
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
FMT = {U8: '<B', I8: '<b', U16: '<H', I16: '<h', U32: '<I', I32: '<i', F32: '<f', BOOL: '<?', U64: '<Q', I64: '<q',
       F64: '<d'}
GG_F32, GG_F16, GG_Q8_0, GG_Q5_K, GG_I32 = 0, 1, 8, 13, 26


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg, flush=True)


def gstr(s, length=None):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack('<Q', len(b) if length is None else length) + b


def byte_chars():
    """GPT-2's characters for the bytes 0..255."""
    dec = tokref.byte_decoder()
    return [c for c, _ in sorted(dec.items(), key=lambda x: x[1])]


class Model:
    """A GGUF file as data: key/values [(key, type, value[, elem type])], tensors [(name, dims,
    ggml type, data)], and the knobs the cases turn. bytes() writes it."""

    def __init__(self):
        d, ff, V = 32, 64, 260
        self.magic, self.version, self.alignment_kv = b'GGUF', 3, None
        self.n_t = self.n_kv = None  # overrides of the counts
        self.kvs = [
            ('general.architecture', STR, 'llama'),
            ('general.name', STR, 'bad'),
            ('llama.block_count', U32, 1),
            ('llama.context_length', U32, 64),
            ('llama.embedding_length', U32, d),
            ('llama.feed_forward_length', U32, ff),
            ('llama.attention.head_count', U32, 4),
            ('llama.attention.head_count_kv', U32, 2),
            ('llama.attention.layer_norm_rms_epsilon', F32, 1e-5),
            ('llama.rope.freq_base', F32, 10000.0),
            ('tokenizer.ggml.model', STR, 'gpt2'),
            ('tokenizer.ggml.pre', STR, 'gpt-2'),
            ('tokenizer.ggml.tokens', ARR, byte_chars() + ['\u0120t', 'he', '\u0120the', '<|endoftext|>'], STR),
            ('tokenizer.ggml.token_type', ARR, [1] * 259 + [3], I32),
            ('tokenizer.ggml.merges', ARR, ['\u0120 t', 'h e', '\u0120t he'], STR),
            ('tokenizer.ggml.bos_token_id', U32, 259),
            ('tokenizer.ggml.eos_token_id', U32, 259),
        ]
        self.tensors = []
        for name, dims, ty in (('token_embd.weight', [d, V], GG_Q8_0), ('output_norm.weight', [d], GG_F32),
                               ('blk.0.attn_norm.weight', [d], GG_F32), ('blk.0.attn_q.weight', [d, d], GG_F16),
                               ('blk.0.attn_k.weight', [d, 16], GG_F16), ('blk.0.attn_v.weight', [d, 16], GG_Q8_0),
                               ('blk.0.attn_output.weight', [d, d], GG_F32), ('blk.0.ffn_norm.weight', [d], GG_F32),
                               ('blk.0.ffn_gate.weight', [d, ff], GG_Q8_0), ('blk.0.ffn_up.weight', [d, ff], GG_F16),
                               ('blk.0.ffn_down.weight', [ff, d], GG_Q8_0)):
            self.tensors.append({'name': name, 'dims': dims, 'type': ty})
        self.key_len = {}    # key -> a length field to write instead of the true one
        self.val_len = {}    # key -> the length field of its string value
        self.arr_count = {}  # key -> the count field of its array
        self.name_len = {}   # tensor name -> its length field
        self.offsets = {}    # tensor name -> the offset to write
        self.cut = None      # truncate the file to this many bytes (negative: from the end)

    def kv(self, key):
        return next(k for k in self.kvs if k[0] == key)

    def set(self, key, typ, value, elem=None):
        self.kvs = [k if k[0] != key else ((key, typ, value) if elem is None else (key, typ, value, elem))
                    for k in self.kvs]
        if not any(k[0] == key for k in self.kvs):
            self.kvs.append((key, typ, value) if elem is None else (key, typ, value, elem))

    def drop(self, key):
        self.kvs = [k for k in self.kvs if k[0] != key]

    def tensor(self, name):
        return next(t for t in self.tensors if t['name'] == name)

    def value(self, key, typ, v, elem=None):
        if typ == STR:
            return gstr(v, self.val_len.get(key))
        if typ == ARR:
            out = struct.pack('<IQ', elem, self.arr_count.get(key, len(v)))
            for x in v:
                out += gstr(x) if elem == STR else (self.value(key, x[0], x[1], x[2]) if elem == ARR else
                                                    struct.pack(FMT[elem], x))
            return out
        return struct.pack(FMT.get(typ, '<I'), v)  # an unknown type: 4 bytes of something

    def bytes(self):
        out = self.magic + struct.pack('<I', self.version)
        out += struct.pack('<QQ', len(self.tensors) if self.n_t is None else self.n_t,
                           len(self.kvs) if self.n_kv is None else self.n_kv)
        for k in self.kvs:
            key, typ, v = k[0], k[1], k[2]
            out += gstr(key, self.key_len.get(key)) + struct.pack('<I', typ) + self.value(key, typ, v,
                                                                                          k[3] if len(k) > 3 else None)
        align = 32
        for k in self.kvs:
            if k[0] == 'general.alignment' and k[1] == U32 and k[2] and not k[2] & (k[2] - 1):
                align = k[2]
        datas, off = [], 0
        for t in self.tensors:
            n = 1
            for x in t['dims']:
                n *= x
            size = {GG_F32: 4 * n, GG_F16: 2 * n, GG_Q8_0: n // 32 * 34, GG_Q5_K: n // 256 * 176,
                    GG_I32: 4 * n}.get(t['type'], 4 * n)
            size = min(size, 1 << 20)  # absurd shapes get a token of data: the header is what is wrong
            blob = bytes((i * 7 + 3) % 64 if t['type'] != GG_Q8_0 or i % 34 != 1 else 0x20 for i in range(size))
            t['_off'] = off
            datas.append(blob)
            off += (size + align - 1) // align * align
        for t in self.tensors:
            out += gstr(t['name'], self.name_len.get(t['name'])) + struct.pack('<I', len(t['dims']))
            out += b''.join(struct.pack('<Q', x) for x in t['dims'])
            out += struct.pack('<IQ', t['type'], self.offsets.get(t['name'], t['_off']))
        out += b'\0' * (-len(out) % align)
        for blob in datas:
            out += blob + b'\0' * (-len(blob) % align)
        if self.cut is not None:
            out = out[:self.cut]
        return out


class Case:
    def __init__(self, name, mutate, names, cmd='model', tok_only=False):
        self.name, self.mutate, self.names, self.cmd, self.tok_only = name, mutate, names, cmd, tok_only


def m_set(key, typ, value, elem=None):
    return lambda m: m.set(key, typ, value, elem)


def m_attr(**kw):
    def f(m):
        for k, v in kw.items():
            setattr(m, k, v)
    return f


def m_tensor(name, **kw):
    return lambda m: m.tensor(name).update(kw)


def m_dict(attr, key, value):
    return lambda m: getattr(m, attr).__setitem__(key, value)


def two_blocks(count, second=1):
    """Block 0's tensors copied as block `second`, llama.block_count set to count."""
    def f(m):
        for t in list(m.tensors):
            if t['name'].startswith('blk.0.'):
                m.tensors.append(dict(t, name=t['name'].replace('blk.0.', 'blk.%d.' % second)))
        m.set('llama.block_count', U32, count)
    return f


def bert_added_flags(v):
    """A BERT vocabulary ([UNK] [CLS] [SEP] a, <x> user-defined) whose qkv.tokenizer.added_flags is v."""
    def m(g):
        g.set('tokenizer.ggml.model', STR, 'bert')
        g.set('tokenizer.ggml.tokens', ARR, ['[UNK]', '[CLS]', '[SEP]', '\u2581a', '<x>'], STR)
        g.set('tokenizer.ggml.token_type', ARR, [2, 3, 3, 1, 4], I32)
        g.drop('tokenizer.ggml.merges')
        g.set('qkv.tokenizer.added_flags', ARR, v, I32)
    return m


def cases():
    C = Case
    q = 'blk.0.attn_q.weight'
    return [
        C('bad magic', m_attr(magic=b'GGUX'), ['bad magic', 'GGUX']),
        C('version 1', m_attr(version=1), ['version 1']),
        C('version 4', m_attr(version=4), ['version 4']),
        C('big-endian version', m_attr(version=3 << 24), ['version', 'big-endian']),
        C('tensor count huge', m_attr(n_t=1 << 60), ['tensors cannot fit']),
        C('key/value count huge', m_attr(n_kv=1 << 62), ['key/values cannot fit']),
        C('key/value count one short', lambda m: setattr(m, 'n_kv', len(m.kvs) - 1), ['tensor', 'key']),
        C('key/value count one more', lambda m: setattr(m, 'n_kv', len(m.kvs) + 1), ['key', 'type', 'tensor', 'past']),
        C('key length huge', m_dict('key_len', 'llama.block_count', 1 << 40), ['string of', 'past the end']),
        C('key length cut short', m_dict('key_len', 'general.name', 3), ['type', 'key']),
        C('string value length huge', m_dict('val_len', 'general.name', 1 << 50), ['general.name', 'past the end']),
        C('string value length one more', m_dict('val_len', 'general.name', 4), ['key', 'type', 'general']),
        C('array count huge', m_dict('arr_count', 'tokenizer.ggml.tokens', 1 << 58), ['tokenizer.ggml.tokens',
                                                                                       'past the end']),
        C('array of i32 count huge', m_dict('arr_count', 'tokenizer.ggml.token_type', 1 << 61),
          ['tokenizer.ggml.token_type']),
        C('value type unknown', m_set('general.name', 13, 0), ['value type 13']),
        C('array element type unknown', m_set('general.tags', ARR, [], 99), ['element type 99']),
        C('array of arrays', m_set('general.tags', ARR, [(ARR, [], U8)], ARR), ['arrays of arrays']),
        C('key twice', lambda m: m.kvs.append(('llama.block_count', U32, 1)), ['llama.block_count', 'twice']),
        C('key with a NUL', lambda m: m.kvs.append(('a\0b', U32, 1)), ['NUL']),
        C('alignment 3', m_set('general.alignment', U32, 3), ['general.alignment', 'power of two']),
        C('alignment 0', m_set('general.alignment', U32, 0), ['general.alignment']),
        C('alignment a string', m_set('general.alignment', STR, '32'), ['general.alignment']),
        C('tensor name length huge', m_dict('name_len', q, 1 << 45), ['tensor', 'past the end']),
        C('tensor name twice', lambda m: m.tensors.append(dict(m.tensor(q))), [q, 'twice']),
        C('tensor with 0 dims', m_tensor(q, dims=[]), ['0 dimensions']),
        C('tensor with 5 dims', m_tensor(q, dims=[32, 32, 1, 1, 1]), ['5 dimensions']),
        C('tensor dim absurd', m_tensor(q, dims=[32, 1 << 50]), ['absurd']),
        C('tensor shape overflows', m_tensor(q, dims=[1 << 40, 1 << 40]), ['overflows']),
        C('Q8_0 rows not whole blocks', m_tensor('blk.0.ffn_down.weight', dims=[48, 32]), ['multiple of the Q8_0 block']),
        C('tensor type unknown', m_tensor(q, type=99), ['type 99']),
        C('tensor type Q5_K', m_tensor('blk.0.ffn_up.weight', dims=[256, 8], type=GG_Q5_K), ['Q5_K', 'not supported']),
        C('tensor type I32', m_tensor('output_norm.weight', type=GG_I32), ['I32', 'not supported']),
        C('tensor offset unaligned', m_dict('offsets', q, 8), [q, 'alignment']),
        C('tensor offset past the end', m_dict('offsets', q, 1 << 40), [q, 'past the end']),
        # an offset near 2^64: said as such (the end, offset + size, wrapped: "[18446744073709551584, 224)")
        C('tensor offset near 2^64', m_dict('offsets', q, (1 << 64) - 32),
          [(q, 'starts at 18446744073709551584', 'past the end')]),
        C('tensors overlap', m_dict('offsets', 'blk.0.attn_k.weight', 0), ['overlap']),
        C('truncated in the header', m_attr(cut=100), ['truncated']),
        C('truncated after the tensor infos', lambda m: setattr(m, 'cut', header_end(m)), ['truncated', 'past the end']),
        C('truncated data', m_attr(cut=-40), ['truncated']),
        C('empty file', m_attr(cut=0), ['bad magic', 'not a GGUF']),
        C('missing general.architecture', lambda m: m.drop('general.architecture'), ['general.architecture']),
        C('architecture t5', m_set('general.architecture', STR, 't5'), ["'t5'", 'not supported']),
        C('missing block_count', lambda m: m.drop('llama.block_count'), ['llama.block_count']),
        C('missing embedding_length', lambda m: m.drop('llama.embedding_length'), ['llama.embedding_length']),
        C('missing head_count', lambda m: m.drop('llama.attention.head_count'), ['llama.attention.head_count']),
        C('block_count a string', m_set('llama.block_count', STR, '1'), ['llama.block_count', 'string']),
        C('head_count an array', m_set('llama.attention.head_count', ARR, [4], I32), ['llama.attention.head_count',
                                                                                     'array']),
        C('epsilon a string', m_set('llama.attention.layer_norm_rms_epsilon', STR, 'x'), ['layer_norm_rms_epsilon']),
        C('block_count 0', m_set('llama.block_count', U32, 0), ['llama.block_count']),
        C('block_count 2 (one layer stored)', m_set('llama.block_count', U32, 2),
          [('llama.block_count is 2', 'run to blk.0.* (1 block)')]),
        C('block_count 1 (two layers stored)', two_blocks(1), [('llama.block_count is 1', 'run to blk.1.* (2 blocks)')]),
        C('block_count 1 (blocks 0 and 4 stored)', two_blocks(1, 4), [('llama.block_count is 1', 'run to blk.4.*')]),
        C('block_count 3 (two layers stored)', two_blocks(3), [('llama.block_count is 3', 'run to blk.1.* (2 blocks)')]),
        C('block_count 2 (blocks 0 and 2 stored)', two_blocks(2, 2), [('llama.block_count is 2', 'run to blk.2.*')]),
        C('block_count 3 (blocks 0 and 2 stored)', two_blocks(3, 2), ["missing tensor 'blk.1."]),
        C('embedding_length 48 (tensors of 32)', m_set('llama.embedding_length', U32, 48), ['token_embd.weight',
                                                                                           'shape']),
        C('feed_forward_length 96 (tensors of 64)', m_set('llama.feed_forward_length', U32, 96), ['ffn_', 'shape']),
        C('head_count_kv 3 (does not divide)', m_set('llama.attention.head_count_kv', U32, 3), ['key/value heads']),
        C('a tensor transposed', m_tensor('blk.0.attn_k.weight', dims=[16, 32]), ['attn_k', 'shape']),
        C('a tensor missing', lambda m: m.tensors.remove(m.tensor('blk.0.ffn_gate.weight')), ['ffn_gate']),
        C('attention.causal false for llama', m_set('llama.attention.causal', BOOL, False), ['causal',
                                                                                             'not supported']),
        C('rope.dimension_count past the head', m_set('llama.rope.dimension_count', U32, 64), ['rope.dimension_count']),
        C('rope scaling yarn', m_set('llama.rope.scaling.type', STR, 'yarn'), ['yarn', 'not supported']),
        C('pooling median (qkv.sentence_transformers.pooling)', m_set('qkv.sentence_transformers.pooling', STR, 'median'),
          ['qkv.sentence_transformers.pooling', 'median', 'not supported']),
        C('pooling a number (qkv.sentence_transformers.pooling)', m_set('qkv.sentence_transformers.pooling', U32, 3),
          ['qkv.sentence_transformers.pooling']),
        C('rope_freqs of the wrong size', lambda m: m.tensors.append({'name': 'rope_freqs.weight', 'dims': [3],
                                                                      'type': GG_F32}), ['rope_freqs']),
        C('tokenizer missing', lambda m: m.drop('tokenizer.ggml.model'), ['tokenizer.ggml.model']),
        C('tokenizer model rwkv', m_set('tokenizer.ggml.model', STR, 'rwkv'), ['rwkv', 'not supported']),
        C('pre-tokenizer falcon', m_set('tokenizer.ggml.pre', STR, 'falcon'), ['falcon', 'not supported']),
        C('tokens missing', lambda m: m.drop('tokenizer.ggml.tokens'), ['tokenizer.ggml.tokens']),
        C('tokens not strings', m_set('tokenizer.ggml.tokens', ARR, [1, 2], I32), ['tokenizer.ggml.tokens']),
        C('merges missing', lambda m: m.drop('tokenizer.ggml.merges'), ['tokenizer.ggml.merges']),
        C('a merge without its space', m_set('tokenizer.ggml.merges', ARR, ['he'], STR), ['merges']),
        C('a merge of unknown pieces', m_set('tokenizer.ggml.merges', ARR, ['q z'], STR), ['not in the vocabulary']),
        C('token types of another length', m_set('tokenizer.ggml.token_type', ARR, [1, 1], I32), ['token_type']),
        C('a token type 9', m_set('tokenizer.ggml.token_type', ARR, [9] * 260, I32), ['type 9']),
        C('bos id past the vocabulary', m_set('tokenizer.ggml.bos_token_id', U32, 5000), ['bos_token_id']),
        C('llama tokenizer without scores', m_set('tokenizer.ggml.model', STR, 'llama'), ['scores']),
        C('a vocabulary larger than the model', lambda m: m.kv('tokenizer.ggml.tokens')[2].extend(['x%d' % i for i in
                                                                                                  range(40)]) or
          m.kv('tokenizer.ggml.token_type')[2].extend([4] * 40), ['tokenizer has 300 tokens']),  # user-defined:
        # as normal tokens no merge makes them, and the tokenizer says its merges are cut short
        C('vocab_size disagrees with the embedding', m_set('llama.vocab_size', U32, 300), ['token_embd.weight']),
        C('tokenizer alone: tokens missing', lambda m: m.drop('tokenizer.ggml.tokens'), ['tokenizer.ggml.tokens'],
          cmd='tokenize "x"', tok_only=True),
        C('tokenizer alone: bad magic', m_attr(magic=b'GGUZ'), ['bad magic'], cmd='tokenize "x"', tok_only=True),
        C('tokenizer alone: a bert pre-tokenizer qkv has no name for',
          lambda m: m.set('tokenizer.ggml.model', STR, 'bert') or m.set('qkv.tokenizer.pre_tokenizer', STR, 'whitespace'),
          ['qkv.tokenizer.pre_tokenizer', 'whitespace', 'not supported'], cmd='tokenize "x"', tok_only=True),
        C('tokenizer alone: a bert normalizer option not a bool',
          lambda m: m.set('tokenizer.ggml.model', STR, 'bert') or m.set('qkv.tokenizer.normalizer.lowercase', STR, 'no'),
          ['qkv.tokenizer.normalizer.lowercase'], cmd='tokenize "x"', tok_only=True),
        C('tokenizer alone: a bert continuation prefix of 20 bytes',
          lambda m: m.set('tokenizer.ggml.model', STR, 'bert') or
          m.set('qkv.tokenizer.continuing_subword_prefix', STR, '#' * 20),
          ['qkv.tokenizer.continuing_subword_prefix', 'at most 15 bytes'], cmd='tokenize "x"', tok_only=True),
        # qkv.tokenizer.added_flags: pairs of an added token's id and its ADD_* bits
        C('tokenizer alone: bert added flags not in pairs', bert_added_flags([4]), ['qkv.tokenizer.added_flags',
                                                                              'not pairs'], cmd='tokenize "x"',
          tok_only=True),
        C('tokenizer alone: bert added flags of a plain word', bert_added_flags([3, 1]),
          ['qkv.tokenizer.added_flags', 'token 3', 'not an added token'], cmd='tokenize "x"', tok_only=True),
        C('tokenizer alone: bert added flags beyond the tokens', bert_added_flags([99, 1]),
          ['qkv.tokenizer.added_flags', 'token 99'], cmd='tokenize "x"', tok_only=True),
        C('tokenizer alone: bert added flags 99', bert_added_flags([4, 99]),
          ['qkv.tokenizer.added_flags', 'flags 99'], cmd='tokenize "x"', tok_only=True),
        C('tokenizer alone: a bert word-length limit not a number',
          lambda m: m.set('tokenizer.ggml.model', STR, 'bert') or
          m.set('qkv.tokenizer.max_input_chars_per_word', STR, 'x'),
          ['qkv.tokenizer.max_input_chars_per_word'], cmd='tokenize "x"', tok_only=True),
    ]


def header_end(m):
    """The length of m's file before its data (the header, padded)."""
    full = m.bytes()
    first = min(t['_off'] for t in m.tensors)
    data = sum((len_of(t) + 31) // 32 * 32 for t in m.tensors)
    return len(full) - data + first


def len_of(t):
    n = 1
    for x in t['dims']:
        n *= x
    return {GG_F32: 4 * n, GG_F16: 2 * n, GG_Q8_0: n // 32 * 34}.get(t['type'], 4 * n)


def check(qkv, case, path, db):
    args = (['--tokenizer', path] if case.tok_only else ['--model', path]) + ['--db', db, '-e', case.cmd]
    try:
        p = qkv_cli.run(qkv, args, timeout=60)
    except Exception as ex:  # a hang shows as a timeout
        fail('%s: %s' % (case.name, ex))
        return
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
    elif not any(all(x in lines[0] for x in n) if isinstance(n, tuple) else n in lines[0] for n in case.names):
        problems.append('message names none of %s' % case.names)
    if problems:
        fail('%s: %s\n  stderr: %s' % (case.name, '; '.join(problems), p.stderr.strip()[:1500]))
    else:
        print('ok   %-42s %s' % (case.name, lines[0]))


def main():
    qkv = qkv_cli.qkv_path()
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix='qkv-badgguf-')
    try:
        db = os.path.join(tmp, 'qkv.db')
        good = os.path.join(tmp, 'good.gguf')
        with open(good, 'wb') as f:
            f.write(Model().bytes())
        p = qkv_cli.run(qkv, ['--model', good, '--db', db, '--json', '-e', 'model; logits "the cat" top=3'])
        if p.returncode != 0 or p.stderr.strip():
            fail('the good file does not load cleanly: exit %d, stderr: %s' % (p.returncode, p.stderr.strip()))
            return 1
        all_cases = cases()
        for i, case in enumerate(all_cases):
            m = Model()
            case.mutate(m)
            path = os.path.join(tmp, 'case%d.gguf' % i)
            with open(path, 'wb') as f:
                f.write(m.bytes())
            check(qkv, case, path, db)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('badgguf: %d cases, %d failure(s), %.1f s' % (len(all_cases), len(failures), time.time() - t0))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
