#!/usr/bin/env python3
# nano_sort.py - suite 'real': the trained minGPT sorter (../shared/models/gpt-nano-sort) run by qkv.
#
# Converts the minGPT JSON checkpoint to an HF GPT-2 directory in a temp dir (nn.Linear weights
# [out, in] transposed to Conv1D [in, out]; untied lm_head [3, 48]; attn.bias mask buffers kept as
# real files have them), then checks that qkv reproduces the reference activations of
# gpt-nano-sort-t0-partials.json (attSm, probs within 1e-5) and that greedy decoding sorts.
# The NumPy reference (gpt2_ref.py) is checked against the same partials first, so a mismatch
# points at qkv, not at the conversion. Usage: nano_sort.py QKV_BINARY. Exit 77 if files are absent.

import base64
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_ref  # noqa: E402
import qkv_cli  # noqa: E402

TOL = 1e-5
LINEAR = ('attn.c_attn.weight', 'attn.c_proj.weight', 'mlp.c_fc.weight', 'mlp.c_proj.weight')
failures = []


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg)


def b64_array(entry):
    a = np.frombuffer(base64.b64decode(entry['data']), dtype='<f4')
    return a.reshape(entry['shape'])


def convert(src_json, out_dir):
    """Write the minGPT checkpoint src_json as an HF GPT-2 directory out_dir; return its config."""
    with open(src_json) as f:
        m = json.load(f)
    cfg = m['config']
    tensors = {}
    for name, entry in m.items():
        if name == 'config':
            continue
        if entry['dtype'] != 'torch.float32':
            raise ValueError('%s: unexpected dtype %s' % (name, entry['dtype']))
        a = b64_array(entry)
        if name.endswith(LINEAR):
            a = np.ascontiguousarray(a.T)  # nn.Linear [out, in] -> Conv1D [in, out]
        tensors[name] = ('F32', a.shape, a.astype('<f4').tobytes())
    gpt2_ref.write_safetensors(os.path.join(out_dir, 'model.safetensors'), tensors)
    hf = {
        'model_type': 'gpt2', 'architectures': ['GPT2LMHeadModel'],
        'n_layer': cfg['n_layer'], 'n_head': cfg['n_head'], 'n_embd': cfg['n_embd'],
        'n_positions': cfg['block_size'], 'n_ctx': cfg['block_size'], 'vocab_size': cfg['vocab_size'],
        'layer_norm_epsilon': 1e-5, 'activation_function': 'gelu_new', 'tie_word_embeddings': False,
    }
    with open(os.path.join(out_dir, 'config.json'), 'w') as f:
        json.dump(hf, f, indent=2)
    with open(os.path.join(out_dir, 'vocab.json'), 'w') as f:
        json.dump({str(i): i for i in range(cfg['vocab_size'])}, f)
    with open(os.path.join(out_dir, 'merges.txt'), 'w') as f:
        f.write('#version: 0.2\n')
    return cfg


def maxdiff(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float('inf')
    d = np.abs(a - b)
    return float(np.max(np.where(np.isnan(d), np.inf, d))) if a.size else 0.0  # a NaN is a difference


def main():
    models = os.environ.get('QKV_SHARED_MODELS',
                            os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'shared', 'models'))
    src = os.path.join(models, 'gpt-nano-sort', 'gpt-nano-sort-model.json')
    partials_path = os.path.join(models, 'gpt-nano-sort', 'gpt-nano-sort-t0-partials.json')
    if not (os.path.exists(src) and os.path.exists(partials_path)):
        print('skip: gpt-nano-sort files not found under %s' % models)
        return 77
    qkv = qkv_cli.qkv_path()
    if not os.path.exists(qkv):
        print('FAIL: qkv binary not found at %s' % qkv)
        return 1
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix='qkv-nano-sort-')
    try:
        model_dir = os.path.join(tmp, 'model')
        os.mkdir(model_dir)
        db = os.path.join(tmp, 'qkv.db')
        cfg = convert(src, model_dir)
        with open(partials_path) as f:
            part = json.load(f)
        idx = b64_array(part['idx']).astype(np.int64)      # [B, T]
        att_sm = b64_array(part['attSm'])                  # [B, H, T, T] of one block
        probs = b64_array(part['probs'])                   # [B, T, V]
        L, H = cfg['n_layer'], cfg['n_head']

        # 1. the reference itself reproduces the partials (validates conversion + reference)
        ref = gpt2_ref.GPT2(model_dir)
        att_layer = None
        for b in range(idx.shape[0]):
            logits, att = ref.forward(idx[b])
            p = np.exp(gpt2_ref.log_softmax(logits))
            e = maxdiff(p, probs[b])
            if not e <= TOL:
                fail('reference probs differ from partials for input %d: max err %.3g' % (b, e))
            if att_layer is None:  # which block's attSm the partials hold
                errs = [maxdiff(att[l], att_sm[b]) for l in range(L)]
                att_layer = int(np.argmin(errs))
            e = maxdiff(att[att_layer], att_sm[b])
            if not e <= TOL:
                fail('reference attention (layer %d) differs from partials for input %d: max err %.3g'
                     % (att_layer, b, e))
        print('partials hold the attention of layer %d' % att_layer)

        # 2. model summary
        (info,) = qkv_cli.json_cmds(qkv, model_dir, ['model'], db)
        for key, want in (('n_layer', L), ('n_head', H), ('n_embd', cfg['n_embd']),
                          ('n_ctx', cfg['block_size']), ('vocab', cfg['vocab_size'])):
            if info.get(key) != want:
                fail('model: %s expected %r, got %r' % (key, want, info.get(key)))
        if info.get('arch') != 'gpt2':
            fail("model: arch expected 'gpt2', got %r" % info.get('arch'))

        # 3. qkv's attention and probabilities against the partials
        worst_att = worst_p = 0.0
        for b in range(idx.shape[0]):
            ids = qkv_cli.ids_arg(idx[b])
            lo, at = qkv_cli.json_cmds(qkv, model_dir, ['logits %s full=true' % ids,
                                                        'attention %s layer=all head=all' % ids], db)
            got_p = np.exp(gpt2_ref.log_softmax(np.asarray(lo['logits'], dtype=np.float64)))
            e = maxdiff(got_p, probs[b])
            worst_p = max(worst_p, e)
            if not e <= TOL:
                pos = np.unravel_index(np.argmax(np.abs(got_p - probs[b])), probs[b].shape) \
                    if got_p.shape == probs[b].shape else None
                fail('input %d: probs max err %.3g > %g (shape expected %s, got %s; at %s expected %s got %s)'
                     % (b, e, TOL, probs[b].shape, got_p.shape, pos,
                        None if pos is None else probs[b][pos], None if pos is None else got_p[pos]))
            layers = np.asarray(at.get('layers'), dtype=np.float64)
            if layers.shape != (L, H, idx.shape[1], idx.shape[1]):
                fail('input %d: attention layers shape expected %s, got %s'
                     % (b, (L, H, idx.shape[1], idx.shape[1]), layers.shape))
                continue
            e = maxdiff(layers[att_layer], att_sm[b])
            worst_att = max(worst_att, e)
            if not e <= TOL:
                pos = np.unravel_index(np.argmax(np.abs(layers[att_layer] - att_sm[b])), att_sm[b].shape)
                fail('input %d: attSm (layer %d) max err %.3g > %g at %s: expected %.7g got %.7g'
                     % (b, att_layer, e, TOL, pos, att_sm[b][pos], layers[att_layer][pos]))
            # the other layers against the (validated) reference
            _, ref_att = ref.forward(idx[b])
            e = maxdiff(layers, ref_att)
            worst_att = max(worst_att, e)
            if not e <= TOL:
                fail('input %d: attention of all layers vs reference max err %.3g' % (b, e))
        print('max |dprob| %.3g, max |dattention| %.3g (tolerance %g)' % (worst_p, worst_att, TOL))

        # 4. greedy generation sorts
        inputs = ['002101', '012220', '102122', '222000', '121212', '000000', '210210', '201011']
        cmds = ['generate "%s" max=6 temperature=0' % s for s in inputs]
        outs = qkv_cli.json_cmds(qkv, model_dir, cmds, db)
        for s, out in zip(inputs, outs):
            want = ''.join(sorted(s))
            got = out.get('text')
            got_ids = out.get('ids')
            if got != want or got_ids != [int(c) for c in want]:
                fail('generate "%s" max=6 temperature=0: expected text %r ids %s, got text %r ids %s'
                     % (s, want, [int(c) for c in want], got, got_ids))
            else:
                print('sorted %s -> %s' % (s, got))
    except qkv_cli.QkvError as ex:
        fail(str(ex))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('nano_sort: %d failure(s), %.1f s' % (len(failures), time.time() - t0))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
