# gpt2_ref.py - an independent NumPy (float64) GPT-2 forward pass, used to check qkv.
#
# Written from the published math of GPT-2 (Radford et al. 2019, the HF layout):
#   x = wte[ids] + wpe[0..T-1]
#   per block: x += attn(LN1(x)); x += mlp(LN2(x))          (pre-LN)
#   attn: q|k|v = h·W_attn + b (Conv1D, W stored [in, out]), per head
#         softmax(q·kᵀ/√hd) with a causal mask, heads concatenated, ·W_proj + b
#   mlp:  GELU_tanh(h·W_fc + b)·W_proj + b
#   logits = LN_f(x)·W_headᵀ, W_head = lm_head.weight [V, d] or the tied wte.
# It shares no code with qkv: its own safetensors reader (F32/F16/BF16, shards via
# model.safetensors.index.json), its own config reading. Mask buffers (h.N.attn.bias,
# attn.masked_bias) are ignored. Also holds a small safetensors writer for the tests.

import json
import os
import struct

import numpy as np

_DTYPES = {
    'F64': ('<f8', 8), 'F32': ('<f4', 4), 'F16': ('<f2', 2), 'BF16': (None, 2),
    'I64': ('<i8', 8), 'I32': ('<i4', 4), 'I16': ('<i2', 2), 'I8': ('i1', 1),
    'U8': ('u1', 1), 'BOOL': ('?', 1),
}


def read_safetensors_header(path):
    """Return (header dict, data start offset, file bytes) of one safetensors file."""
    with open(path, 'rb') as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError('%s: shorter than 8 bytes' % path)
    (n,) = struct.unpack('<Q', raw[:8])
    if 8 + n > len(raw):
        raise ValueError('%s: header length %d past end of file' % (path, n))
    header = json.loads(raw[8:8 + n].decode('utf-8'))
    return header, 8 + n, raw


def _decode(raw, start, info, name, path):
    dt = info['dtype']
    if dt not in _DTYPES:
        raise ValueError('%s: tensor %s: unknown dtype %s' % (path, name, dt))
    npdt, size = _DTYPES[dt]
    shape = [int(s) for s in info['shape']]
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    b, e = info['data_offsets']
    if e - b != count * size or start + e > len(raw) or b < 0:
        raise ValueError('%s: tensor %s: bad data_offsets' % (path, name))
    buf = raw[start + b:start + e]
    if dt == 'BF16':
        u16 = np.frombuffer(buf, dtype='<u2').astype(np.uint32)
        arr = (u16 << 16).view(np.float32)
    else:
        arr = np.frombuffer(buf, dtype=npdt)
    return arr.astype(np.float64).reshape(shape)


def read_safetensors(path):
    """All tensors of one safetensors file as float64 arrays keyed by name."""
    header, start, raw = read_safetensors_header(path)
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        out[name] = _decode(raw, start, info, name, path)
    return out


def load_tensors(model_dir):
    """All tensors of an HF model directory (single file or shards via the index)."""
    index = os.path.join(model_dir, 'model.safetensors.index.json')
    if os.path.exists(index):
        with open(index) as f:
            wmap = json.load(f)['weight_map']
        out = {}
        for shard in sorted(set(wmap.values())):
            part = read_safetensors(os.path.join(model_dir, shard))
            for name, arr in part.items():
                if wmap.get(name) == shard:
                    out[name] = arr
        missing = [n for n in wmap if n not in out]
        if missing:
            raise ValueError('index names tensors not in their shard: %s' % missing[:3])
        return out
    return read_safetensors(os.path.join(model_dir, 'model.safetensors'))


class GPT2:
    """A GPT-2 model held in float64: config values and the parameter arrays."""

    def __init__(self, model_dir):
        with open(os.path.join(model_dir, 'config.json')) as f:
            cfg = json.load(f)
        self.cfg = cfg
        self.n_layer = int(cfg['n_layer'])
        self.n_head = int(cfg['n_head'])
        self.d = int(cfg['n_embd'])
        self.n_ctx = int(cfg.get('n_positions', cfg.get('n_ctx', 1024)))
        self.eps = float(cfg.get('layer_norm_epsilon', 1e-5))
        raw = load_tensors(model_dir)
        w = {}
        for name, arr in raw.items():
            if name.startswith('transformer.'):
                name = name[len('transformer.'):]
            if name.endswith('.attn.bias') or name.endswith('.attn.masked_bias'):
                continue  # causal-mask buffers, not parameters
            w[name] = arr
        self.w = w
        self.vocab = w['wte.weight'].shape[0]
        self.head = w['lm_head.weight'] if 'lm_head.weight' in w else w['wte.weight']
        self.tied = 'lm_head.weight' not in w

    def n_params(self):
        """Parameter count as HF counts it (a tied head is counted once)."""
        return int(sum(a.size for a in self.w.values()))

    def _ln(self, x, prefix):
        # x is (T, d); normalise over d with biased variance
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * self.w[prefix + '.weight'] + self.w[prefix + '.bias']

    @staticmethod
    def _gelu(x):
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))

    def trace(self, ids, patch=None, kv='f32'):
        """Run ids (length T <= n_ctx); return every intermediate, keyed (kind, layer) as qkv's trace
        names them (layer -1 outside the blocks):
          ('embed', -1) [T, d]; per layer l: ('resid_pre', l) the block's input, ('q'|'k'|'v', l)
          [T, d], ('scores', l) [H, T, T] scaled q·kᵀ with -inf above the diagonal, ('probs', l)
          [H, T, T], ('z', l) [T, d] the heads' weighted values before the output projection,
          ('attn_out', l) the attention sublayer's output, ('resid_mid', l) the stream after it,
          ('mlp_out', l) the MLP's output, ('resid_post', l) the block's output;
          ('ln_f', -1) [T, d]; ('logits', -1) [T, V].
        patch: None or (kind, layer, pos, scale): that row of that intermediate is multiplied by
        scale as soon as it is computed, and the rest of the pass uses the patched value
        (activation patching; not for scores and probs).
        kv: 'f16': attention reads k and v rounded to IEEE half precision (np.float16: to nearest
        even), as qkv's F16 KV cache holds them; 'q8_0': each position's head of k and v in Q8_0
        blocks of 32 as the gguf package quantizes and dequantizes them (ggml's reference
        rounding), as qkv's Q8_0 cache holds them; the traced k and v stay as computed."""
        ids = np.asarray(ids, dtype=np.int64)
        T, d, H = len(ids), self.d, self.n_head
        hd = d // H
        assert 1 <= T <= self.n_ctx
        out = {}

        def put(kind, layer, value):
            if patch is not None and (kind, layer) == tuple(patch[:2]):
                value = value.copy()
                value[patch[2]] *= patch[3]
            out[kind, layer] = value
            return value

        x = put('embed', -1, self.w['wte.weight'][ids] + self.w['wpe.weight'][:T])
        causal = np.tril(np.ones((T, T), dtype=bool))
        for l in range(self.n_layer):
            p = 'h.%d.' % l
            x = put('resid_pre', l, x)
            h = self._ln(x, p + 'ln_1')
            qkv = h @ self.w[p + 'attn.c_attn.weight'] + self.w[p + 'attn.c_attn.bias']  # (T, 3d)
            for i, n in enumerate(('q', 'k', 'v')):
                put(n, l, qkv[:, i * d:(i + 1) * d])
            q, k, v = (out[n, l].reshape(T, H, hd).transpose(1, 0, 2) for n in ('q', 'k', 'v'))  # (H, T, hd)
            if kv != 'f32':
                k, v = (round_kv(a, kv) for a in (k, v))
            s = q @ k.transpose(0, 2, 1) / np.sqrt(hd)  # (H, T, T)
            s = np.where(causal, s, -np.inf)
            out['scores', l] = s
            s = s - s.max(axis=-1, keepdims=True)
            e = np.exp(s)
            a = e / e.sum(axis=-1, keepdims=True)
            out['probs', l] = a
            z = put('z', l, (a @ v).transpose(1, 0, 2).reshape(T, d))
            x = x + put('attn_out', l, z @ self.w[p + 'attn.c_proj.weight'] + self.w[p + 'attn.c_proj.bias'])
            x = put('resid_mid', l, x)
            h = self._ln(x, p + 'ln_2')
            m = self._gelu(h @ self.w[p + 'mlp.c_fc.weight'] + self.w[p + 'mlp.c_fc.bias'])
            x = x + put('mlp_out', l, m @ self.w[p + 'mlp.c_proj.weight'] + self.w[p + 'mlp.c_proj.bias'])
            x = put('resid_post', l, x)
        hf = put('ln_f', -1, self._ln(x, 'ln_f'))
        put('logits', -1, hf @ self.head.T)
        return out

    def forward(self, ids):
        """Run ids (length T <= n_ctx); return (logits [T, V], attention probs [L, H, T, T])."""
        tr = self.trace(ids)
        return tr['logits', -1], np.stack([tr['probs', l] for l in range(self.n_layer)])

    def logits(self, ids, kv='f32'):
        return self.trace(ids, kv=kv)['logits', -1]

    def attention(self, ids):
        return self.forward(ids)[1]


def round_kv(a, kv):
    """a (..., hd) as a KV cache of type kv ('f16' or 'q8_0': blocks of 32 along hd) holds it,
    back in float64."""
    if kv == 'f16':
        return a.astype(np.float16).astype(np.float64)
    import gguf  # the test environment's gguf package: ggml's reference Q8_0 in NumPy
    t = gguf.GGMLQuantizationType.Q8_0
    flat = np.ascontiguousarray(a, dtype=np.float32).reshape(-1, a.shape[-1])
    return gguf.quants.dequantize(gguf.quants.quantize(flat, t), t).reshape(a.shape).astype(np.float64)


def log_softmax(z):
    """log_softmax over the last axis, in float64."""
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def write_safetensors(path, tensors, header_override=None):
    """Write {name: (dtype str, shape, bytes)} as a safetensors file, in the given order.

    header_override(header) may edit the header dict before it is written (for corrupt files)."""
    header, blobs, off = {}, [], 0
    for name, (dt, shape, data) in tensors.items():
        header[name] = {'dtype': dt, 'shape': list(shape), 'data_offsets': [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    if header_override is not None:
        header = header_override(header) or header
    hb = json.dumps(header, separators=(',', ':')).encode('utf-8')
    hb += b' ' * ((8 - len(hb) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
