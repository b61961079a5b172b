#!/usr/bin/env python3
# test_families.py - suite 'reference': every family qkv reads besides GPT-2 (Llama, Mistral,
# Qwen2, BERT) against HF transformers itself.
#
# For random-weight models that `qkv new-model FAMILY` writes in the real HF layouts, some
# with config.json edited the way real checkpoints differ (a Mistral sliding window, Llama 3.1
# and linear rope_scaling, an untied head, a BertModel without its MLM head), the same
# directory is loaded with transformers' Auto classes (CPU, float32, eval, eager attention,
# offline) and compared, at several lengths (past qkv's 512-token prefill chunk for decoders)
# and with 1 and 2 qkv threads:
#   - logits at every position (`logits ids=... full=true`): max |d| <= TOL_LOGIT
#     (BERT: the masked-LM head's);
#   - attention probabilities of every layer and head: max |d| <= TOL_ATT (BERT's bidirectional
#     maps are full, the decoders' causal ones lower-triangular, Mistral's banded);
#   - hidden states against qkv's trace (tests/ref/trace_dump): [0] the embeddings (after
#     BERT's embedding LayerNorm), [i] block i-1's output, the last one after the final norm
#     (decoders) or the last block's output (BERT): relative max |d| <= TOL_HIDDEN;
#   - decoders: greedy `generate` through the KV cache equals HF's greedy generate.
# Skips (77) without the test environment unless QKV_REQUIRE_REFS=1 (./dev test).
# Usage: test_families.py [QKV_BINARY [TRACE_DUMP_BINARY]]

import json
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

import qkv_cli  # noqa: E402

TOL_LOGIT = 1e-4
TOL_ATT = 1e-5
TOL_HIDDEN = 1e-5
# The KV cache in F32 (kv auto keeps F16 and BF16 weights' keys and values in F16): these checks
# are about the weights and the arithmetic, to the tolerances above.
F32_KV = ['--kv', 'f32']
STD = 0.2
GEN = 12  # greedy tokens compared with HF's generate

failures = []
worst_seen = {'logit': 0.0, 'att': 0.0, 'hidden': 0.0}


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg, flush=True)


def compare(what, kind, got, want, tol, relative=False):
    """Check got against want within tol (relative to max(1, max |want|) when relative)."""
    if got is None:
        fail('%s: qkv gave nothing' % what)
        return
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
    """A model: new-model FAMILY OPTS, then config.json updated with edit; lengths to check;
    expect: fields the `model` command must report."""

    def __init__(self, name, family, opts, lengths, edit=None, expect=None):
        self.name, self.family, self.opts, self.lengths = name, family, opts, lengths
        self.edit, self.expect = edit or {}, expect or {}


LLAMA3_SCALING = {'rope_type': 'llama3', 'factor': 8.0, 'low_freq_factor': 1.0, 'high_freq_factor': 4.0,
                  'original_max_position_embeddings': 64}

VARIANTS = [
    Variant('llama-gqa', 'llama', 'layers=2 heads=4 kv_heads=2 d=64 ctx=1024 seed=31', (1, 7, 128, 600),
            expect={'arch': 'llama', 'causal': True, 'position': 'rotary', 'norm': 'rmsnorm', 'activation': 'swiglu',
                    'n_kv_head': 2, 'head_dim': 16}),
    Variant('llama-mqa-untied-f16', 'llama', 'layers=2 heads=4 kv_heads=1 d=64 ctx=256 seed=32 tied=false dtype=f16',
            (1, 7, 128), expect={'n_kv_head': 1, 'tied': False}),
    Variant('llama-bf16', 'llama', 'layers=3 heads=2 d=48 ff=100 ctx=256 seed=33 dtype=bf16 theta=500000',
            (1, 7, 128), expect={'rope_theta': 500000}),
    Variant('llama3-scaling', 'llama', 'layers=2 heads=4 d=64 ctx=1024 seed=34 theta=500000', (7, 300),
            edit={'rope_scaling': LLAMA3_SCALING}),
    Variant('llama-linear-scaling', 'llama', 'layers=1 heads=2 d=32 ctx=512 seed=35', (7, 300),
            edit={'rope_scaling': {'rope_type': 'linear', 'factor': 4.0}}),
    # transformers 5 writes the rotary settings as rope_parameters, with no top-level rope_theta
    # (qkv read neither: theta 10000, no scaling, logits off by up to 12, silently)
    Variant('llama-v5-rope-parameters', 'llama', 'layers=2 heads=2 d=64 ctx=256 seed=42', (7, 128),
            edit={'rope_theta': None, 'rope_parameters': {'rope_theta': 500.0, 'rope_type': 'default'}},
            expect={'rope_theta': 500}),
    Variant('llama-v5-linear', 'llama', 'layers=1 heads=2 d=32 ctx=512 seed=43', (7, 300),
            edit={'rope_theta': None, 'rope_parameters': {'rope_theta': 10000.0, 'rope_type': 'linear', 'factor': 4.0}}),
    Variant('qwen2-v5-theta', 'qwen2', 'layers=2 heads=4 kv_heads=2 d=64 ctx=256 seed=44', (7, 128),
            edit={'rope_theta': None, 'rope_parameters': {'rope_theta': 1000000.0, 'rope_type': 'default'}},
            expect={'rope_theta': 1000000}),
    Variant('mistral-window', 'mistral', 'layers=2 heads=4 kv_heads=2 d=64 ctx=1024 seed=36', (7, 128, 600),
            edit={'sliding_window': 48}),
    Variant('qwen2-bias', 'qwen2', 'layers=2 heads=6 kv_heads=2 d=96 ctx=256 seed=37 tied=false', (1, 7, 128)),
    Variant('bert-mlm', 'bert', 'layers=2 heads=4 d=64 ctx=512 seed=38', (1, 7, 128, 512),
            expect={'arch': 'bert', 'causal': False, 'block': 'post-norm', 'activation': 'gelu', 'position': 'learned'}),
    Variant('bert-f16-gelu-new', 'bert', 'layers=3 heads=2 d=32 ctx=128 seed=39 dtype=f16', (2, 64),
            edit={'hidden_act': 'gelu_new', 'layer_norm_eps': 1e-7}),
    Variant('bert-model', 'bert', 'layers=2 heads=4 d=64 ctx=128 seed=40', (5, 100),
            edit={'architectures': ['BertModel']}),
    Variant('bert-bare-names', 'bert', 'layers=2 heads=2 d=32 ctx=64 seed=41 prefix=', (3, 40),
            edit={'architectures': ['BertModel']}),
]


def hf_load(v, model_dir):
    auto = transformers.AutoModelForCausalLM
    if v.family == 'bert':
        auto = transformers.AutoModel if v.edit.get('architectures') == ['BertModel'] else \
            transformers.AutoModelForMaskedLM
    m = auto.from_pretrained(model_dir, dtype=torch.float32, attn_implementation='eager', local_files_only=True)
    m.eval()
    return m


def hf_run(m, ids):
    """(logits [T, V] or None, attentions [L, H, T, T], hidden states [L+1, T, d]) as float64."""
    with torch.no_grad():
        out = m(torch.tensor([ids], dtype=torch.long), output_attentions=True, output_hidden_states=True)
    logits = out.logits[0].double().numpy() if hasattr(out, 'logits') else None
    att = np.stack([a[0].double().numpy() for a in out.attentions])
    hid = np.stack([h[0].double().numpy() for h in out.hidden_states])
    return logits, att, hid


def check_pair_and_padding(v, hf, qkv, model_dir, db, V, has_head, rng):
    """A sentence pair (token types 0 then 1) and a padded batch: HF with token_type_ids and an
    attention mask against qkv on each sequence alone (types=)."""
    seqs = [[int(i) for i in rng.integers(5, V, size=n)] for n in (9, 4, 13)]
    types = [[0] * 5 + [1] * 4, [0, 0, 1, 1], [0] * 13]
    T = max(len(s) for s in seqs)
    ids = torch.zeros((3, T), dtype=torch.long)
    tt = torch.zeros((3, T), dtype=torch.long)
    am = torch.zeros((3, T), dtype=torch.long)
    for i, (s, t) in enumerate(zip(seqs, types)):
        ids[i, :len(s)] = torch.tensor(s)
        tt[i, :len(s)] = torch.tensor(t)
        am[i, :len(s)] = 1
    with torch.no_grad():
        out = hf(input_ids=ids, token_type_ids=tt, attention_mask=am, output_attentions=True)
    for i, (s, t) in enumerate(zip(seqs, types)):
        n = len(s)
        tag = '%s pair/padding %d' % (v.name, i)
        cmds = ['attention %s types=%s layer=all head=all' % (qkv_cli.ids_arg(s), ','.join(map(str, t)))]
        if has_head:
            cmds.append('logits %s types=%s full=true' % (qkv_cli.ids_arg(s), ','.join(map(str, t))))
        try:
            res = qkv_cli.json_cmds(qkv, model_dir, cmds, db, extra=F32_KV)
        except qkv_cli.QkvError as ex:
            fail('%s: %s' % (tag, ex))
            continue
        want_att = np.stack([a[i, :, :n, :n].double().numpy() for a in out.attentions])
        compare(tag + ' attention', 'att', res[0].get('layers'), want_att, TOL_ATT)
        if has_head:
            compare(tag + ' logits', 'logit', res[1].get('logits'), out.logits[i, :n].double().numpy(), TOL_LOGIT)


def check_model_json(v, got):
    for k, want in v.expect.items():
        if got.get(k) != want:
            fail('%s: model %s: expected %r, got %r' % (v.name, k, want, got.get(k)))


def causal_family(v):
    return v.family != 'bert'


def check_tokenizer(v, info, model_dir, qkv, db):
    try:
        tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    except Exception as ex:
        fail('%s: transformers cannot load the tokenizer new-model wrote: %s: %s' % (v.name, type(ex).__name__, ex))
        return
    with open(os.path.join(model_dir, 'config.json')) as f:
        cfg = json.load(f)
    got = (info.get('bos_id'), info.get('eos_id'))
    for who, want in (('HF tokenizer', (tok.bos_token_id, tok.eos_token_id)),
                      ('config.json', (cfg.get('bos_token_id'), cfg.get('eos_token_id')))):
        if got != want:
            fail('%s: qkv bos/eos ids %s, %s says %s' % (v.name, got, who, want))
    text = 'Hi there %s x%s' % (tok.bos_token or '', tok.eos_token or '')
    (q,) = qkv_cli.json_cmds(qkv, model_dir, ['tokenize %s' % json.dumps(text)], db)
    if q.get('ids') != tok(text, add_special_tokens=False).input_ids:
        fail('%s: tokenize %r: qkv %s, HF %s' % (v.name, text, q.get('ids'), tok(text, add_special_tokens=False).input_ids))


def run_variant(v, qkv, tdump, tmp):
    t0 = time.time()
    model_dir = os.path.join(tmp, v.name)
    db = os.path.join(tmp, 'qkv.db')
    p = qkv_cli.new_model(qkv, [v.family] + v.opts.split() + ['std=%g' % STD, 'out=' + model_dir], db)
    if p.returncode != 0:
        fail('%s: new-model %s: exit %d: %s' % (v.name, v.opts, p.returncode, p.stderr.strip()))
        return
    if v.edit:
        cfg_path = os.path.join(model_dir, 'config.json')
        with open(cfg_path) as f:
            cfg = json.load(f)
        for k, val in v.edit.items():  # (None: the key removed)
            if val is None:
                cfg.pop(k, None)
            else:
                cfg[k] = val
        with open(cfg_path, 'w') as f:
            json.dump(cfg, f)
    try:
        hf = hf_load(v, model_dir)
    except Exception as ex:  # a directory HF cannot read is a finding, not a crash of the test
        fail('%s: transformers cannot load %s: %s: %s' % (v.name, model_dir, type(ex).__name__, ex))
        return
    try:
        (info,) = qkv_cli.json_cmds(qkv, model_dir, ['model'], db)
    except qkv_cli.QkvError as ex:
        fail('%s: %s' % (v.name, ex))
        return
    check_model_json(v, info)
    if causal_family(v):  # the tokenizer new-model wrote: HF reads it, with the same end-of-text ids as qkv
        check_tokenizer(v, info, model_dir, qkv, db)
    L, V, causal = info['n_layer'], info['vocab'], info['causal']
    has_head = v.edit.get('architectures') != ['BertModel']
    rng = np.random.default_rng(zlib.crc32(v.name.encode()))
    for T in v.lengths:
        ids = [int(i) for i in rng.integers(0, V, size=T)]
        want_logits, want_att, want_hid = hf_run(hf, ids)
        if causal:  # decoders compare where HF's mask puts exact zeros; so does qkv
            for li in range(L):
                if np.any(want_att[li][:, np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]]):
                    fail('%s T=%d: HF attention is not causal' % (v.name, T))
        for threads in (1, 2):
            tag = '%s T=%d threads=%d' % (v.name, T, threads)
            a = qkv_cli.ids_arg(ids)
            cmds = ['attention %s layer=all head=all' % a] + (['logits %s full=true' % a] if has_head else [])
            try:
                res = qkv_cli.json_cmds(qkv, model_dir, cmds, db, extra=['--threads', str(threads)] + F32_KV)
                points, _ = qkv_cli.trace(tdump, model_dir, ids, ['embed', 'resid_post', 'ln_f'], threads)
            except qkv_cli.QkvError as ex:
                fail('%s: %s' % (tag, ex))
                continue
            compare(tag + ' attention', 'att', res[0].get('layers'), want_att, TOL_ATT)
            if has_head:
                compare(tag + ' logits', 'logit', res[1].get('logits'), want_logits, TOL_LOGIT)
            compare(tag + ' hidden_states[0] vs embed', 'hidden', points.get(('embed', -1)), want_hid[0], TOL_HIDDEN,
                    True)
            for i in range(1, L):
                compare(tag + ' hidden_states[%d] vs resid_post %d' % (i, i - 1), 'hidden',
                        points.get(('resid_post', i - 1)), want_hid[i], TOL_HIDDEN, True)
            # the last: after the final norm (decoders), the last block's output (BERT: ln_f is a copy)
            compare(tag + ' hidden_states[%d] vs ln_f' % L, 'hidden', points.get(('ln_f', -1)), want_hid[L],
                    TOL_HIDDEN, True)
    if v.family == 'bert':
        check_pair_and_padding(v, hf, qkv, model_dir, db, V, has_head, rng)
    if causal:
        prompt = [int(i) for i in rng.integers(0, V, size=9)]
        with torch.no_grad():
            want = hf.generate(torch.tensor([prompt]), max_new_tokens=GEN, do_sample=False, eos_token_id=None,
                               pad_token_id=0)[0, len(prompt):].tolist()
        try:
            (g,) = qkv_cli.json_cmds(qkv, model_dir, ['generate %s max=%d temperature=0 stop=false' %
                                                      (qkv_cli.ids_arg(prompt), GEN)], db, extra=F32_KV)
        except qkv_cli.QkvError as ex:
            fail('%s generate: %s' % (v.name, ex))
        else:
            if g.get('ids') != want:
                fail('%s: greedy generate: HF %s, qkv %s' % (v.name, want, g.get('ids')))
    print('%-22s done (%.1f s)' % (v.name, time.time() - t0), flush=True)


def main():
    qkv, tdump = qkv_cli.qkv_path(), qkv_cli.trace_dump_path()
    torch.set_num_threads(1)
    print('transformers %s, torch %s' % (transformers.__version__, torch.__version__))
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix='qkv-families-')
    try:
        for v in VARIANTS:
            run_variant(v, qkv, tdump, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('max |dlogit| %.3g (tol %g), max |dattention| %.3g (tol %g), max relative |dhidden| %.3g (tol %g)'
          % (worst_seen['logit'], TOL_LOGIT, worst_seen['att'], TOL_ATT, worst_seen['hidden'], TOL_HIDDEN))
    print('families: %d variants, %d failure(s), %.1f s' % (len(VARIANTS), len(failures), time.time() - t0))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
