# hf2gguf.py - write an HF model directory (GPT-2, Llama/Mistral, Qwen2, BERT) as GGUF with the
# `gguf` package's GGUFWriter, laid out as llama.cpp's convert_hf_to_gguf.py lays them out:
#   - keys: {arch}.block_count, .context_length, .embedding_length, .feed_forward_length,
#     .attention.head_count(_kv), the norm's epsilon, .rope.freq_base, .rope.dimension_count,
#     .vocab_size (Llama), .attention.causal and .pooling_type (BERT), general.file_type;
#   - tokenizer: "gpt2" for byte-level BPE (tokens as spelled in the vocabulary, added special
#     tokens CONTROL, other added ones USER_DEFINED, merges), "bert" for WordPiece (llama.cpp's
#     "phantom space" spelling), special token ids and add_bos/add_eos through gguf.SpecialVocab;
#   - tensors: llama.cpp's names; GPT-2's Conv1D weights transposed to [out, in] and its head
#     written although tied; Llama's q/k rows permuted so that rotary pairs are adjacent (Qwen2's
#     are not); Llama 3.1 scaling as rope_freqs; BERT without its masked-LM head and pooler;
#   - types: 1-D tensors, norms, biases, position and token-type embeddings F32, the other
#     matrices the file type (Q8_0 falls back to F16 where rows do not divide into blocks).
# Independent of qkv: it reads the directory with transformers, safetensors and torch.

import collections
import functools
import json
import math
import os

import gguf
import numpy as np
import torch
from safetensors.torch import load_file

ARCH = {'gpt2': 'gpt2', 'llama': 'llama', 'mistral': 'llama', 'qwen2': 'qwen2', 'bert': 'bert'}
FTYPES = {'f32': (gguf.LlamaFileType.ALL_F32, gguf.GGMLQuantizationType.F32),
          'f16': (gguf.LlamaFileType.MOSTLY_F16, gguf.GGMLQuantizationType.F16),
          'q8_0': (gguf.LlamaFileType.MOSTLY_Q8_0, gguf.GGMLQuantizationType.Q8_0),
          'q4_0': (gguf.LlamaFileType.MOSTLY_Q4_0, gguf.GGMLQuantizationType.Q4_0),
          'q4_k_m': (gguf.LlamaFileType.MOSTLY_Q4_K_M, gguf.GGMLQuantizationType.Q4_K)}
# Q4_K_M as llama.cpp mixes it: Q6_K for these, Q4_K for the other matrices
Q6_K_TENSORS = ('attn_v.weight', 'ffn_down.weight', 'output.weight')


def load_tensors(model_dir):
    out = {}
    idx = os.path.join(model_dir, 'model.safetensors.index.json')
    files = sorted(set(json.load(open(idx))['weight_map'].values())) if os.path.exists(idx) else ['model.safetensors']
    for f in files:
        out.update(load_file(os.path.join(model_dir, f)))
    return out


def permute(w, n_head, n_head_kv):
    """llama.cpp's LlamaModel.permute: HF's rotate-half row order to adjacent pairs."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def vocab_base(model_dir, vocab_size):
    """convert_hf_to_gguf's get_vocab_base: tokens and token types from transformers' tokenizer."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model_dir)
    reverse = {i: t for t, i in tok.vocab.items()}
    added = tok.get_added_vocab()
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append('[PAD%d]' % i)
            types.append(gguf.TokenType.UNUSED)
            continue
        t = reverse[i]
        if t in added:
            special = tok.added_tokens_decoder[i].special or (t.startswith('<|') and t.endswith('|>'))
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
        tokens.append(t)
    return tokens, types


def set_vocab(w, model_dir, mt, vocab_size, pre, control_as_is=False):
    tokens, types = vocab_base(model_dir, vocab_size)
    if mt == 'bert':
        w.add_token_type_count(2)

        def phantom(t, ty):
            # older converters keep [BRACKETED] tokens as they are, newer ones every control token
            if (t.startswith('[') and t.endswith(']')) if not control_as_is else ty == gguf.TokenType.CONTROL:
                return t
            return t[2:] if t.startswith('##') else '\u2581' + t
        w.add_tokenizer_model('bert')
        w.add_tokenizer_pre(pre)
        w.add_token_list([phantom(t, ty) for t, ty in zip(tokens, types)])
        w.add_token_types(types)
        gguf.SpecialVocab(model_dir, n_vocab=len(tokens)).add_to_gguf(w, quiet=True)
    else:
        w.add_tokenizer_model('gpt2')
        w.add_tokenizer_pre(pre)
        w.add_token_list(tokens)
        w.add_token_types(types)
        gguf.SpecialVocab(model_dir, load_merges=True).add_to_gguf(w, quiet=True)


def set_params(w, cfg, mt, ftype):
    if mt == 'gpt2':
        w.add_block_count(cfg['n_layer'])
        w.add_context_length(cfg['n_ctx'])
        w.add_embedding_length(cfg['n_embd'])
        w.add_feed_forward_length(cfg.get('n_inner') or 4 * cfg['n_embd'])
        w.add_head_count(cfg['n_head'])
        w.add_layer_norm_eps(cfg['layer_norm_epsilon'])
    else:
        w.add_block_count(cfg['num_hidden_layers'])
        w.add_context_length(cfg['max_position_embeddings'])
        w.add_embedding_length(cfg['hidden_size'])
        w.add_feed_forward_length(cfg['intermediate_size'])
        w.add_head_count(cfg['num_attention_heads'])
        if 'num_key_value_heads' in cfg:
            w.add_head_count_kv(cfg['num_key_value_heads'])
        if 'rope_theta' in cfg:
            w.add_rope_freq_base(cfg['rope_theta'])
        if 'rms_norm_eps' in cfg:
            w.add_layer_norm_rms_eps(cfg['rms_norm_eps'])
        if 'layer_norm_eps' in cfg:
            w.add_layer_norm_eps(cfg['layer_norm_eps'])
        if 'head_dim' in cfg and cfg['head_dim'] * cfg['num_attention_heads'] != cfg['hidden_size']:
            w.add_key_length(cfg['head_dim'])
            w.add_value_length(cfg['head_dim'])
    if ARCH[mt] == 'llama':
        w.add_vocab_size(cfg['vocab_size'])
        w.add_rope_dimension_count(cfg.get('head_dim') or cfg['hidden_size'] // cfg['num_attention_heads'])
        rs = cfg.get('rope_scaling') or {}
        if rs.get('rope_type', rs.get('type')) == 'linear':
            w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            w.add_rope_scaling_factor(rs['factor'])
    if mt == 'bert':
        w.add_causal_attention(False)
    w.add_file_type(FTYPES[ftype][0])


def rope_freqs(cfg):
    """LlamaModel.generate_extra_tensors: Llama 3.1's scaling as a divisor per frequency."""
    rs = cfg.get('rope_scaling') or {}
    if rs.get('rope_type', '').lower() != 'llama3':
        return None
    base = cfg.get('rope_theta', 10000.0)
    dim = cfg.get('head_dim', cfg['hidden_size'] // cfg['num_attention_heads'])
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor, lo, hi = rs.get('factor', 8.0), rs.get('low_freq_factor', 1.0), rs.get('high_freq_factor', 4.0)
    old = rs.get('original_max_position_embeddings', 8192)
    lo_wl, hi_wl = old / lo, old / hi
    out = []
    for f in freqs:
        wl = 2 * math.pi / f
        if wl < hi_wl:
            out.append(1)
        elif wl > lo_wl:
            out.append(factor)
        else:
            s = (old / wl - lo) / (hi - lo)
            out.append(1 / ((1 - s) / factor + s))
    return torch.tensor(out, dtype=torch.float32)


@functools.lru_cache(maxsize=None)
def tensor_name_map(arch):
    """gguf's TensorNameMap of an architecture: built once (building it takes about a second)."""
    return gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], 1000)


_readers = collections.OrderedDict()
_GGUFReader = gguf.GGUFReader


def reader(path):
    """gguf.GGUFReader of path, the same one again while the file is unchanged: the reader turns
    every token's string into Python objects, seconds for a 50,000-token vocabulary (the last
    few files read are kept)."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_ino, st.st_mtime_ns, st.st_size)
    r = _readers.pop(key, None) or _GGUFReader(path)
    _readers[key] = r
    while len(_readers) > 4:
        _readers.popitem(last=False)
    return r


def share_readers():
    """transformers' GGUF loading (config, weights and tokenizer: three readings of a file) takes
    the reader above too: each file is parsed once, by the same gguf package."""
    gguf.GGUFReader = reader


def gguf_name(mt, name):
    """llama.cpp's name of an HF tensor (gguf's own TensorNameMap), or None to drop it."""
    tmap = tensor_name_map(ARCH[mt])
    if mt == 'bert' and (name.startswith('cls.') or 'pooler.' in name or name.endswith('position_ids')):
        return None
    if name.endswith(('.attn.bias', '.attn.masked_bias', 'rotary_emb.inv_freq')):
        return None
    if mt == 'bert' and name.startswith('bert.'):
        name = name[5:]
    return tmap.get_name(name, try_suffixes=('.weight', '.bias'))


def layout(model_dir):
    """The directory's tensors as llama.cpp's files hold them, in float32: [(gguf name, tensor)]."""
    cfg = json.load(open(os.path.join(model_dir, 'config.json')))
    mt = cfg.get('model_type', 'gpt2')
    arch = ARCH[mt]
    items = []
    rf = rope_freqs(cfg) if arch == 'llama' else None
    if rf is not None:
        items.append(('rope_freqs.weight', rf))
    for hf_name, t in load_tensors(model_dir).items():
        t = t.float()
        new = gguf_name(mt, hf_name)
        if new is None:
            if mt == 'bert' or hf_name.endswith(('.attn.bias', '.attn.masked_bias')):
                continue
            raise ValueError('cannot map tensor %r' % hf_name)
        if mt == 'gpt2' and hf_name.endswith(('.c_attn.weight', '.c_proj.weight', '.c_fc.weight')):
            t = t.transpose(1, 0)
        if arch == 'llama':
            nh, nkv = cfg['num_attention_heads'], cfg.get('num_key_value_heads')
            if hf_name.endswith(('q_proj.weight', 'q_proj.bias')):
                t = permute(t, nh, nh)
            if hf_name.endswith(('k_proj.weight', 'k_proj.bias')):
                t = permute(t, nh, nkv)
        items.append((new, t))
        if mt == 'gpt2' and new == 'token_embd.weight':  # GPT2Model writes the tied head too
            items.append(('output.weight', t))
    return items


def stored(new, data, qtype):
    """(ggml type, bytes as numpy) of tensor `new` in a file of matrices qtype, as the converter
    stores it: 1-D tensors, norms, biases, position and token-type embeddings F32, the other
    matrices qtype (F16 where rows do not divide into its blocks)."""
    dt = qtype
    if data.ndim <= 1 or new.endswith('_norm.weight') or not new.endswith('.weight') or \
            new.startswith(('position_embd', 'token_types')):
        dt = gguf.GGMLQuantizationType.F32
    if dt == gguf.GGMLQuantizationType.Q4_K and new.endswith(Q6_K_TENSORS):
        dt = gguf.GGMLQuantizationType.Q6_K
    if dt in (gguf.GGMLQuantizationType.Q4_K, gguf.GGMLQuantizationType.Q6_K) and data.shape[-1] % 256 == 0:
        return dt, k_blocks(new, data, dt)
    try:
        return dt, gguf.quants.quantize(data, dt)
    except (gguf.QuantError, NotImplementedError):
        return gguf.GGMLQuantizationType.F16, gguf.quants.quantize(data, gguf.GGMLQuantizationType.F16)


def k_blocks(new, data, dt):
    """Q4_K or Q6_K super-blocks for a matrix shaped as data: the gguf package has no quantizer for
    them, so the blocks are random bytes with their f16 scales set to give values of data's
    spread. The weights are then what the gguf package dequantizes from these bytes (random
    models: only the file's consistency matters)."""
    import zlib
    rng = np.random.default_rng(zlib.crc32(new.encode()))
    rows, cols = data.shape
    nb = rows * cols // 256
    size = gguf.GGML_QUANT_SIZES[dt][1]
    b = rng.integers(0, 256, size=(nb, size), dtype=np.uint8)
    std = float(np.std(data)) or 0.02
    if dt == gguf.GGMLQuantizationType.Q4_K:  # d, dmin (f16), 12 bytes of 6-bit scales and mins, 128 of nibbles
        # x = d * sc * q - dmin * m with sc, m < 64 and q < 16: centre the spread on zero
        b[:, 0:2] = np.full(nb, std / (32 * 8), dtype=np.float16).view(np.uint8).reshape(nb, 2)
        b[:, 2:4] = np.full(nb, std * 7.5 / (32 * 8), dtype=np.float16).view(np.uint8).reshape(nb, 2)
    else:  # 128 bytes of low nibbles, 64 of high bits, 16 int8 scales, d (f16) last
        b[:, 208:210] = np.full(nb, std / (64 * 16), dtype=np.float16).view(np.uint8).reshape(nb, 2)
    return b.reshape(rows, cols // 256 * size)


def convert(model_dir, out_path, ftype='f32', pre='gpt-2', name=None, extra=None, control_as_is=False):
    """extra(w), when given, adds keys after the others (a key added again replaces its value);
    control_as_is: a BERT's control tokens spelled as they are, as convert_hf_to_gguf.py does since
    2025 (before, only [BRACKETED] ones were)."""
    cfg = json.load(open(os.path.join(model_dir, 'config.json')))
    mt = cfg.get('model_type', 'gpt2')
    w = gguf.GGUFWriter(out_path, ARCH[mt])
    w.add_name(name or os.path.basename(model_dir.rstrip('/')))
    set_params(w, cfg, mt, ftype)
    set_vocab(w, model_dir, mt, cfg['vocab_size'], pre, control_as_is)
    if extra:
        extra(w)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for new, t in layout(model_dir):
        dt, q = stored(new, t.contiguous().numpy(), FTYPES[ftype][1])
        w.add_tensor(new, q, raw_dtype=dt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out_path
