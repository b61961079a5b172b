#!/usr/bin/env python3
# test_gguf.py - suite 'reference': GGUF checkpoints of every family qkv runs, written by the
# `gguf` package as llama.cpp's convert_hf_to_gguf.py lays them out (hf2gguf.py), against the
# same models from their HF safetensors and against HF transformers loading the GGUF file.
#
# For random-weight models that `qkv new-model FAMILY` writes (GPT-2 and Llama/Qwen2 with the real
# GPT-2 vocabulary and merges, BERT with bert-base-uncased's vocabulary), converted to GGUF:
#   - `model` reports the same configuration as from the safetensors directory;
#   - logits at every position within TOL_LOGIT and attention of every layer and head within
#     TOL_ATT of qkv on the safetensors directory (F32 and F16: the same weights; the F16 model
#     is written as F16 safetensors), at lengths past the 512-token prefill chunk, 1 and 2
#     threads; greedy `generate` the same tokens; BERT (an encoder without its masked-LM head in
#     GGUF) its attention, hidden states (trace) and embeddings, and `logits` refused;
#   - where transformers reads the architecture from GGUF (gpt2, llama, qwen2; not bert),
#     `from_pretrained(dir, gguf_file=...)` gives the same logits (TOL_LOGIT) and attention
#     (TOL_ATT) as qkv on the GGUF, the same greedy continuation, and its GGUF tokenizer the same
#     ids as qkv's tokenizer read from the GGUF metadata;
#   - Q8_0 files: qkv's logits within TOL_Q8 of transformers' (which dequantizes the same
#     blocks) and the mean KL divergence from the F32 model's next-token distribution <= KL_Q8;
#   - Q4_0 files (the gguf package's quantizer) and Q4_K_M-style files (Q4_K, with Q6_K for attn_v
#     and ffn_down, as random blocks): qkv's logits within TOL_Q4 of transformers' on the same
#     file, and the same greedy continuation;
#   - the tokenizer from the GGUF metadata gives the ids of the directory's own tokenizer.
# Skips (77) without the test environment (unless QKV_REQUIRE_REFS=1) or the shared vocabularies.
# Usage: test_gguf.py [QKV_BINARY [TRACE_DUMP_BINARY]]  (QKV_GGUF_ONLY=name,name runs those variants alone)

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
os.environ.setdefault('HF_HUB_DISABLE_PROGRESS_BARS', '1')

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'tok'))
import refenv  # noqa: E402

np, torch, transformers, gguf, _ = refenv.need('numpy', 'torch', 'transformers', 'gguf', 'accelerate')

import hf2gguf  # noqa: E402
import qkv_cli  # noqa: E402
import tokref  # noqa: E402
import tokrun  # noqa: E402

TOL_LOGIT = 1e-4
TOL_ATT = 1e-5
TOL_HIDDEN = 1e-5
TOL_Q8 = 2e-3
KL_Q8 = 1e-3
TOL_Q4 = 2e-3
Q4 = ('q4_0', 'q4_k_m')
DTYPE = {'q8_0': 'Q8_0', 'q4_0': 'Q4_0', 'q4_k_m': 'Q4_K'}  # a mix reports the type of most of its weights
STD = 0.2
GEN = 12

failures = []
worst = {'logit': 0.0, 'att': 0.0, 'hidden': 0.0, 'q8': 0.0, 'kl': 0.0, 'q4': 0.0}


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg, flush=True)


def compare(what, kind, got, want, tol, relative=False):
    if got is None:
        fail('%s: qkv gave nothing' % what)
        return
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        fail('%s: shape expected %s, got %s' % (what, want.shape, got.shape))
        return
    scale = max(1.0, float(np.max(np.abs(want)))) if relative else 1.0
    d = np.abs(got - want)
    d = np.where(np.isnan(d), np.inf, d)
    i = np.unravel_index(int(np.argmax(d)), d.shape)
    err = float(d[i]) / scale
    worst[kind] = max(worst[kind], err)
    if not err <= tol:
        fail('%s: max err %.3g > %g at %s: expected %.8g, got %.8g' % (what, err, tol, i, want[i], got[i]))


class Variant:
    def __init__(self, name, family, opts, ftype, lengths, hf=True, edit=None, threads=(1,), tok_check=False):
        self.name, self.family, self.opts, self.ftype, self.lengths = name, family, opts, ftype, lengths
        self.hf, self.edit, self.threads, self.tok_check = hf, edit or {}, threads, tok_check


LLAMA3 = {'rope_type': 'llama3', 'factor': 8.0, 'low_freq_factor': 1.0, 'high_freq_factor': 4.0,
          'original_max_position_embeddings': 64}
VARIANTS = [
    # transformers' GGUF GPT-2 keeps n_positions at 1024 whatever context_length says: ctx=1024
    Variant('gpt2-f32', 'gpt2', 'layers=2 heads=4 d=64 ctx=1024 seed=61', 'f32', (1, 7, 100, 600), threads=(1, 2),
            tok_check=True),
    Variant('gpt2-f16', 'gpt2', 'layers=2 heads=4 d=64 ctx=1024 seed=62 dtype=f16', 'f16', (7, 100)),
    Variant('gpt2-q8_0', 'gpt2', 'layers=2 heads=4 d=64 ctx=1024 seed=63', 'q8_0', (7, 100)),
    Variant('llama-gqa-tied', 'llama', 'layers=2 heads=4 kv_heads=2 d=64 ctx=1024 seed=64', 'f32', (1, 7, 100, 600),
            threads=(1, 2), tok_check=True),
    Variant('llama-mqa-untied-f16', 'llama', 'layers=2 heads=4 kv_heads=1 d=64 ctx=256 seed=65 tied=false dtype=f16',
            'f16', (7, 100)),
    # KL grows with the logits' scale: these random weights are drawn at std 0.1, not 0.2
    Variant('llama-q8_0', 'llama', 'layers=2 heads=4 kv_heads=2 d=64 ctx=256 seed=66 std=0.1', 'q8_0', (7, 100)),
    # Q4_0 blocks from the gguf package's quantizer; a Q4_K_M-style mix (Q4_K, Q6_K for attn_v and
    # ffn_down) of random blocks (hf2gguf.k_blocks): both against transformers only, whose GGUF loader
    # dequantizes them with the gguf package (the safetensors hold other weights)
    Variant('llama-q4_0', 'llama', 'layers=2 heads=4 kv_heads=2 d=64 ctx=256 seed=81 std=0.1', 'q4_0', (7, 100)),
    Variant('llama-q4_k_m', 'llama', 'layers=2 heads=4 kv_heads=2 d=256 ctx=256 seed=82 std=0.05', 'q4_k_m', (7, 100)),
    # transformers' GGUF loader does not read llama.cpp's rope_freqs: compared with qkv on safetensors only
    Variant('llama3-rope-freqs', 'llama', 'layers=2 heads=4 d=64 ctx=1024 seed=67 theta=500000', 'f32', (7, 300),
            hf=False, edit={'rope_scaling': LLAMA3}),
    Variant('qwen2-bias-untied', 'qwen2', 'layers=2 heads=6 kv_heads=2 d=96 ctx=256 seed=68 tied=false', 'f32',
            (1, 7, 100), tok_check=True),
    Variant('bert', 'bert', 'layers=2 heads=4 d=64 ctx=512 seed=69', 'f32', (1, 7, 128, 512), hf=False,
            tok_check=True),
]
SAME_FIELDS = ('arch', 'n_layer', 'n_head', 'n_kv_head', 'head_dim', 'n_embd', 'n_ff', 'n_ctx', 'vocab', 'causal',
               'position', 'rope_theta', 'norm', 'norm_eps', 'block', 'activation', 'fused_qkv', 'dtype')


def byte_level_tokenizer_json(d):
    """Llama and Qwen2 directories get the GPT-2 vocabulary as tokenizer.json (their usual file)."""
    t = transformers.GPT2TokenizerFast(os.path.join(d, 'vocab.json'), os.path.join(d, 'merges.txt'))
    t.backend_tokenizer.save(os.path.join(d, 'tokenizer.json'))
    os.remove(os.path.join(d, 'vocab.json'))
    os.remove(os.path.join(d, 'merges.txt'))


def make(v, qkv, tmp, shared):
    """The safetensors directory and its GGUF; (dir, gguf path) or None after a failure."""
    d = os.path.join(tmp, v.name)
    tok = os.path.join(shared, 'bert-uncased-tokenizer' if v.family == 'bert' else 'gpt2-bpe-tokenizer')
    vocab = 30522 if v.family == 'bert' else 50257
    std = [] if 'std=' in v.opts else ['std=%g' % STD]
    p = qkv_cli.new_model(qkv, [v.family] + v.opts.split() + ['vocab=%d' % vocab, 'tok=' + tok, 'out=' + d] + std,
                          os.path.join(tmp, 'qkv.db'))
    if p.returncode != 0:
        fail('%s: new-model: exit %d: %s' % (v.name, p.returncode, p.stderr.strip()))
        return None
    if v.edit:
        cfg = json.load(open(os.path.join(d, 'config.json')))
        cfg.update(v.edit)
        json.dump(cfg, open(os.path.join(d, 'config.json'), 'w'))
    if v.family in ('llama', 'qwen2'):
        byte_level_tokenizer_json(d)
    path = os.path.join(tmp, v.name + '.gguf')
    hf2gguf.convert(d, path, v.ftype, pre='bert-bge' if v.family == 'bert' else 'gpt-2', name=v.name)
    return d, path


def hf_gguf(path):
    m = transformers.AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path),
                                                          dtype=torch.float32, attn_implementation='eager')
    m.eval()
    return m


def kl_mean(p_logits, q_logits):
    """Mean over positions of KL(p || q) of the softmaxes of two [T, V] logit arrays."""
    p = np.asarray(p_logits, dtype=np.float64)
    q = np.asarray(q_logits, dtype=np.float64)
    lp = p - p.max(axis=1, keepdims=True)
    lp -= np.log(np.exp(lp).sum(axis=1, keepdims=True))
    lq = q - q.max(axis=1, keepdims=True)
    lq -= np.log(np.exp(lq).sum(axis=1, keepdims=True))
    return float(np.mean(np.sum(np.exp(lp) * (lp - lq), axis=1)))


def check_tokenizer(v, qkv, d, path, db, hf_tok):
    texts = tokref.cases(seed=7, n=300) + [b'hello <|endoftext|> world', b'[CLS] a [MASK] b']
    try:
        got = tokenize_all(qkv, path, texts, db)
        want = tokenize_all(qkv, d, texts, db)
    except qkv_cli.QkvError as ex:
        fail('%s tokenizer: %s' % (v.name, ex))
        return
    bad = [b for b, g, w in zip(texts, got, want) if g != w]
    if bad:
        fail('%s: the GGUF tokenizer differs from the directory\'s on %d of %d strings, first %r'
             % (v.name, len(bad), len(texts), bad[0][:60]))
    if hf_tok is not None:
        ref = [hf_tok.encode(b.decode('utf-8', 'replace'), add_special_tokens=False) for b in texts]
        bad = [(b, g, r) for b, g, r in zip(texts, got, ref) if g != r]
        if bad:
            fail('%s: qkv\'s GGUF tokenizer differs from transformers\' GGUF tokenizer on %d of %d strings, first %r: '
                 'qkv %s, HF %s' % (v.name, len(bad), len(texts), bad[0][0][:60], bad[0][1][:20], bad[0][2][:20]))


def tokenize_all(qkv, model, texts, db, extra=()):
    cmds = ['tokenize %s special=true' % tokrun.qkv_escape(b) for b in texts]
    with tempfile.NamedTemporaryFile('w', suffix='.qkv', delete=False, encoding='ascii') as f:
        f.write('\n'.join(cmds) + '\n')
        script = f.name
    try:
        p = qkv_cli.run(qkv, ['--model', model, '--db', db, '--json', '--script', script] + list(extra))
    finally:
        os.unlink(script)
    if p.returncode != 0:
        raise qkv_cli.QkvError('tokenize script on %s: exit %d: %s' % (model, p.returncode, p.stderr.strip()[:500]))
    return [json.loads(l)['ids'] for l in p.stdout.split("\n") if l.strip()]


def qkv_run(tdump, model, ids, threads):
    """(logits [T, V], attention [L, H, T, T]) of qkv on model, through trace_dump (binary)."""
    points, outs = qkv_cli.trace(tdump, model, ids, ['probs'], threads, logits='all')
    L = 1 + max(k[1] for k in points)
    return np.concatenate(outs, axis=0), np.stack([points[('probs', l)] for l in range(L)])


def run_decoder(v, qkv, tdump, d, path, db, rng):
    hf = None
    if v.hf:
        try:
            hf = hf_gguf(path)
        except Exception as ex:
            fail('%s: transformers cannot load %s: %s: %s' % (v.name, path, type(ex).__name__, ex))
    for T in v.lengths:
        ids = [int(i) for i in rng.integers(0, 50257, size=T)]
        try:
            want_l, want_a = qkv_run(tdump, d, ids, 1)
        except qkv_cli.QkvError as ex:
            fail('%s T=%d safetensors: %s' % (v.name, T, ex))
            continue
        for threads in v.threads:
            tag = '%s T=%d threads=%d' % (v.name, T, threads)
            try:
                got_l, got_a = qkv_run(tdump, path, ids, threads)
            except qkv_cli.QkvError as ex:
                fail('%s: %s' % (tag, ex))
                continue
            if v.ftype in Q4:
                pass  # other weights than the safetensors': against transformers below
            elif v.ftype == 'q8_0':
                kl = kl_mean(want_l, got_l)
                worst['kl'] = max(worst['kl'], kl)
                if kl > KL_Q8:
                    fail('%s: mean KL(F32 || Q8_0) %.3g > %g' % (tag, kl, KL_Q8))
            else:
                compare(tag + ' logits vs safetensors', 'logit', got_l, want_l, TOL_LOGIT)
                compare(tag + ' attention vs safetensors', 'att', got_a, want_a, TOL_ATT)
        if hf is not None:
            with torch.no_grad():
                out = hf(torch.tensor([ids]), output_attentions=True)
            tag = '%s T=%d vs transformers(gguf)' % (v.name, T)
            hl = out.logits[0].double().numpy()
            if v.ftype in Q4:
                compare(tag + ' logits', 'q4', got_l, hl, TOL_Q4)
            elif v.ftype == 'q8_0':
                compare(tag + ' logits', 'q8', got_l, hl, TOL_Q8)
            else:
                compare(tag + ' logits', 'logit', got_l, hl, TOL_LOGIT)
                compare(tag + ' attention', 'att', got_a, np.stack([x[0].double().numpy() for x in out.attentions]),
                        TOL_ATT)
    prompt = [int(i) for i in rng.integers(0, 50257, size=9)]
    cmd = ['generate %s max=%d temperature=0 stop=false' % (qkv_cli.ids_arg(prompt), GEN)]
    try:
        (g,) = qkv_cli.json_cmds(qkv, path, cmd, db)
        (s,) = qkv_cli.json_cmds(qkv, d, cmd, db)
    except qkv_cli.QkvError as ex:
        fail('%s generate: %s' % (v.name, ex))
        return hf
    if v.ftype not in DTYPE and g.get('ids') != s.get('ids'):
        fail('%s: greedy generate: safetensors %s, gguf %s' % (v.name, s.get('ids'), g.get('ids')))
    if hf is not None:
        with torch.no_grad():
            want = hf.generate(torch.tensor([prompt]), max_new_tokens=GEN, do_sample=False, eos_token_id=None,
                               pad_token_id=0)[0, len(prompt):].tolist()
        if g.get('ids') != want:
            fail('%s: greedy generate: transformers(gguf) %s, qkv(gguf) %s' % (v.name, want, g.get('ids')))
    return hf


def run_bert(v, qkv, tdump, d, path, db, rng):
    for T in v.lengths:
        ids = [101] + [int(i) for i in rng.integers(1000, 30522, size=max(T - 2, 0))] + [102]
        ids = ids[:T]
        a = qkv_cli.ids_arg(ids)
        cmds = ['attention %s layer=all head=all' % a]
        tag = '%s T=%d' % (v.name, T)
        try:
            want = qkv_cli.json_cmds(qkv, d, cmds, db)
            got = qkv_cli.json_cmds(qkv, path, cmds, db)
            pw, _ = qkv_cli.trace(tdump, d, ids, ['embed', 'resid_post'])
            pg, _ = qkv_cli.trace(tdump, path, ids, ['embed', 'resid_post'])
        except qkv_cli.QkvError as ex:
            fail('%s: %s' % (tag, ex))
            continue
        compare(tag + ' attention vs safetensors', 'att', got[0].get('layers'), want[0]['layers'], TOL_ATT)
        for key in sorted(pw):
            compare('%s %s %d vs safetensors' % (tag, key[0], key[1]), 'hidden', pg.get(key), pw[key], TOL_HIDDEN, True)
    text = 'The capital of France is Paris.'
    try:
        (eg,) = qkv_cli.json_cmds(qkv, path, ['embed "%s" pool=mean' % text], db)
        (ew,) = qkv_cli.json_cmds(qkv, d, ['embed "%s" pool=mean' % text], db)
    except qkv_cli.QkvError as ex:
        fail('%s embed: %s' % (v.name, ex))
    else:
        compare(v.name + ' embed', 'hidden', eg.get('embedding'), ew['embedding'], TOL_HIDDEN, True)
    p = qkv_cli.run(qkv, ['--model', path, '--db', db, '-e', 'logits "a b"'])
    if p.returncode == 0 or not p.stderr.startswith('error: ') or 'no output head' not in p.stderr:
        fail('%s: logits on a GGUF BERT (no masked-LM head) should be refused with one error line, got exit %d: %r'
             % (v.name, p.returncode, p.stderr[:300]))
    # transformers reads no bert GGUF: say so, and notice the day it does
    try:
        transformers.AutoModel.from_pretrained(tmp_dir_of(path), gguf_file=os.path.basename(path))
        print('NOTE: transformers now loads bert GGUF files: compare against it', flush=True)
    except Exception as ex:
        print('%s: transformers does not load a bert GGUF (%s)' % (v.name, str(ex).splitlines()[0][:100]), flush=True)


def tmp_dir_of(path):
    return os.path.dirname(path)


def run_variant(v, qkv, tdump, tmp, shared):
    t0 = time.time()
    made = make(v, qkv, tmp, shared)
    if not made:
        return
    d, path = made
    db = os.path.join(tmp, 'qkv.db')
    try:
        (ig,) = qkv_cli.json_cmds(qkv, path, ['model'], db)
        (iw,) = qkv_cli.json_cmds(qkv, d, ['model'], db)
    except qkv_cli.QkvError as ex:
        fail('%s: %s' % (v.name, ex))
        return
    for k in SAME_FIELDS:
        want = iw.get(k)
        if k == 'dtype' and v.ftype in DTYPE:
            want = DTYPE[v.ftype]
        if ig.get(k) != want:
            fail('%s: model %s: safetensors %r, gguf %r' % (v.name, k, want, ig.get(k)))
    rng = np.random.default_rng(zlib.crc32(v.name.encode()))
    hf_tok = None
    if v.family == 'bert':
        run_bert(v, qkv, tdump, d, path, db, rng)
    else:
        run_decoder(v, qkv, tdump, d, path, db, rng)
        if v.hf and v.tok_check:
            hf_tok = transformers.AutoTokenizer.from_pretrained(tmp, gguf_file=os.path.basename(path))
    if v.tok_check:
        check_tokenizer(v, qkv, d, path, db, hf_tok)
    print('%-22s done (%.1f s)' % (v.name, time.time() - t0), flush=True)


def shared_models():
    """../shared/models with the GPT-2 and BERT vocabularies, or None (said why)."""
    shared = os.environ.get('QKV_SHARED_MODELS', os.path.join(HERE, '..', '..', '..', 'shared', 'models'))
    for sub in ('gpt2-bpe-tokenizer/encoder.json', 'bert-uncased-tokenizer/vocab.txt'):
        if not os.path.exists(os.path.join(shared, sub)):
            print('SKIP: %s absent (the shared vocabularies)' % os.path.join(shared, sub))
            return None
    return shared


def main():
    qkv, tdump = qkv_cli.qkv_path(), qkv_cli.trace_dump_path()
    shared = shared_models()
    if not shared:
        return 77
    torch.set_num_threads(1)
    hf2gguf.share_readers()
    print('transformers %s, gguf %s, torch %s' % (transformers.__version__, gguf.__version__ if hasattr(gguf, '__version__')
                                                  else '?', torch.__version__))
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix='qkv-gguf-')
    try:
        only = os.environ.get('QKV_GGUF_ONLY')  # a comma-separated list of variant names, to run those alone
        for v in VARIANTS:
            if not only or v.name in only.split(','):
                run_variant(v, qkv, tdump, tmp, shared)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('max |dlogit| %.3g (tol %g), |dattention| %.3g (tol %g), relative |dhidden| %.3g (tol %g), Q8_0 |dlogit| '
          'vs transformers %.3g (tol %g), mean KL %.3g (tol %g), Q4_0/Q4_K_M |dlogit| vs transformers %.3g (tol %g)'
          % (worst['logit'], TOL_LOGIT, worst['att'], TOL_ATT, worst['hidden'], TOL_HIDDEN, worst['q8'], TOL_Q8,
             worst['kl'], KL_Q8, worst['q4'], TOL_Q4))
    print('gguf: %d variants, %d failure(s), %.1f s' % (len(VARIANTS), len(failures), time.time() - t0))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
