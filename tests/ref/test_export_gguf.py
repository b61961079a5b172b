#!/usr/bin/env python3
# test_export_gguf.py - suite 'reference': `export gguf FILE type=f32|f16|q8_0` against the `gguf`
# package (llama.cpp's own Python reader and quantizers) and against qkv on the source model.
#
# For random-weight GPT-2, Llama (GQA tied, with a ChatML chat template), Qwen2 (biases, untied)
# and BERT models that `qkv new-model` writes with the real GPT-2 / bert-base-uncased
# vocabularies, exported in each type:
#   - the JSON result (file, what, type, arch, tensors, kept, bytes);
#   - gguf.GGUFReader reads the file: version 3, alignment 32, every key of the file the `gguf`
#     package writes from the same directory as llama.cpp's converter lays it out (hf2gguf.py)
#     with the same value (hyperparameters, tokens, token types, merges, special ids, the chat
#     template); the same tensor names, shapes and types; each tensor's bytes equal to the `gguf`
#     package's quantization of the reference layout (F32 and F16 exact, Q8_0 bit for bit), and
#     its dequantized values within the type's precision of the source weights;
#   - qkv reopens the file: logits at every position (BERT: every block's hidden states) within
#     TOL_SAME of qkv on the source directory for F32; for F16 and Q8_0 within TOL_SAME of qkv on
#     hf2gguf's file of the same type (the same bytes) and a mean KL from the source's
#     next-token distribution <= KL_MAX; the tokenizer gives the directory's ids on a corpus;
#     chat=true renders as from the directory;
#   - llama2.c's stories260K (a SentencePiece-style tokenizer with scores) exported and reopened:
#     the same logits and ids (texts holding <unk>, <s>, </s> too), and the token types llama.cpp's
#     converter gives tok512.model's pieces (sentencepiece: <unk> unknown, <s> and </s> control)
#     and its unknown_token_id (skipped when ../shared/models lacks it);
#   - GGUF -> GGUF: a file with general.* metadata (licence, authors, tags, ...) and the tokenizer's
#     unknown and padding ids exported as Q8_0 keeps them all, with its own general.file_type and
#     quantization version, and without the source's general.quantized_by;
#   - the built-in GPT-2 (untrained, tied head) exported as F32 and Q8_0 and reopened: `model` the
#     same (tied, untrained, params; not the file's own fields), F32 logits within TOL_SAME;
#   - sentence-transformers folders pooling by max, mean and [CLS] exported, reopened and exported
#     again: `embed` with the model's own pooling the same vectors, pooled alike; mean and cls as
#     llama.cpp's bert.pooling_type, max (which it has no value for) as qkv.sentence_transformers.pooling;
#     a GGUF pooling by the last token keeps bert.pooling_type 3 through GGUF -> GGUF;
#   - tokens typed unused (5), as sentencepiece has them and llama.cpp's converter writes them:
#     tok512.model with a quarter of its merged pieces and a character unused, against sentencepiece
#     on the same model (an unused piece a merge makes is split back into its parts, merges from it
#     still made); GPT-2's vocabulary with [PADn] tokens past its end and merged tokens unused (never
#     output, the ids still spell the text); bert-base-uncased with word starts and continuations
#     unused, against HF tokenizers with those tokens renamed out of reach. Each exported GGUF ->
#     GGUF keeps the types and the ids; the unused tokens given by id show as their text;
#   - BERTs whose tokenizer.json is not what GGUF's "bert" means (no pre-tokenizer, "pre_tokenizer":
#     null; BertNormalizer cased, accents stripped or kept against the case, no CJK spacing or
#     clean-up; no normalizer) exported, reopened and exported again: the qkv.tokenizer.* keys that
#     say so in both files (none in a plain BERT's), and the ids of HF tokenizers on that
#     tokenizer.json for texts with punctuation, white space, case, accents, CJK, controls and
#     special tokens, from the directory and from both files;
#   - bad input: an unknown type, a directory that does not exist, a FILE that is a directory,
#     options of other exports: one error line each, and nothing left behind; Ctrl-C during an
#     export (SmolLM2's, when installed): "interrupted", exit 130, the previous FILE kept.
# Skips (77) without the test environment (unless QKV_REQUIRE_REFS=1) or the shared vocabularies.
# Usage: test_export_gguf.py [QKV_BINARY [TRACE_DUMP_BINARY]]  (QKV_EXPORT_ONLY=bert,stories,meta,builtin,pooling,unused,wordpiece,interrupted runs those alone)

import json
import logging
import os
import shutil
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'tok'))
import test_gguf as tg  # noqa: E402  (its helpers; importing it checks the test environment)

np, gguf, hf2gguf, qkv_cli, tokref, tokrun = tg.np, tg.gguf, tg.hf2gguf, tg.qkv_cli, tg.tokref, tg.tokrun

TOL_SAME = 1e-5
KL_MAX = 1e-3
# relative to the largest |w| of the tensor: F16 rounding, half a Q8_0 step of the largest block
# (Q8_0: half a step, and the step itself rounded to f16 times up to 127 steps)
TOL_VALUE = {'f32': 0.0, 'f16': 1e-3, 'q8_0': 0.6 / 127}
# keys the two writers need not share: the name, and SpecialVocab's extras from tokenizer files
# that qkv keeps as its own settings; bos_token_id, which new-model's Llama config.json gives as
# n_vocab - 2 while its GPT-2 tokenizer.json begins texts with <|endoftext|> (the export writes the
# tokenizer qkv uses: the ids it encodes are checked below)
SKIP_KEYS = {'general.name', 'tokenizer.ggml.bos_token_id', 'tokenizer.ggml.padding_token_id', 'tokenizer.ggml.unknown_token_id',
             'tokenizer.ggml.add_sep_token', 'tokenizer.ggml.add_cls_token', 'bert.pooling_type',
             'tokenizer.ggml.add_bos_token', 'tokenizer.ggml.add_eos_token', 'tokenizer.ggml.pre'}
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

failures = []
worst = {'same': 0.0, 'kl': 0.0, 'value': 0.0}


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg, flush=True)


class Src:
    def __init__(self, name, family, opts, types, chat=False, tok_check=True):
        self.name, self.family, self.opts, self.types, self.chat = name, family, opts, types, chat
        self.hf, self.tok_check = False, tok_check


SOURCES = [
    Src('gpt2', 'gpt2', 'layers=2 heads=4 d=64 ctx=128 seed=71', ('f32', 'q8_0')),
    Src('llama-gqa-chat', 'llama', 'layers=2 heads=4 kv_heads=2 d=64 ctx=128 seed=72 std=0.1',
        ('f32', 'f16', 'q8_0'), chat=True),
    Src('qwen2-bias-untied', 'qwen2', 'layers=2 heads=6 kv_heads=2 d=96 ctx=128 seed=74 tied=false', ('f32',),
        tok_check=False),
    Src('bert', 'bert', 'layers=2 heads=4 d=64 ctx=128 seed=75', ('f32',)),
]


def field_value(r, key):
    """A GGUFReader field as Python: a string, a number, or a list of them."""
    f = r.fields[key]
    t = f.types[0]
    if t == gguf.GGUFValueType.ARRAY:
        if f.types[1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode('utf-8', 'surrogateescape') for i in f.data]
        return [float(f.parts[i][0]) for i in f.data]
    if t == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode('utf-8', 'surrogateescape')
    return float(f.parts[f.data[0]][0])


def make_source(s, qkv, tmp, shared, db):
    d = os.path.join(tmp, s.name)
    tok = os.path.join(shared, 'bert-uncased-tokenizer' if s.family == 'bert' else 'gpt2-bpe-tokenizer')
    vocab = 30522 if s.family == 'bert' else 50257
    std = [] if 'std=' in s.opts else ['std=0.2']
    p = qkv_cli.new_model(qkv, [s.family] + s.opts.split() + ['vocab=%d' % vocab, 'tok=' + tok, 'out=' + d] + std, db)
    if p.returncode != 0:
        fail('%s: new-model: exit %d: %s' % (s.name, p.returncode, p.stderr.strip()))
        return None
    if s.family in ('llama', 'qwen2'):
        tg.byte_level_tokenizer_json(d)
    if s.chat:
        with open(os.path.join(d, 'tokenizer_config.json'), 'w') as f:
            json.dump({'chat_template': CHATML, 'bos_token': '<|endoftext|>', 'eos_token': '<|endoftext|>'}, f)
    return d


def check_file(tag, path, ref_path, d, ftype):
    """The exported file against the gguf package's conversion of the same directory."""
    try:
        r = hf2gguf.reader(path)
    except Exception as ex:
        fail('%s: gguf.GGUFReader cannot read it: %s: %s' % (tag, type(ex).__name__, ex))
        return
    ref = hf2gguf.reader(ref_path)
    version = field_value(r, 'GGUF.version')
    if version != 3 or r.alignment != 32:
        fail('%s: version %s, alignment %s (3, 32 expected)' % (tag, version, r.alignment))
    for key in ref.fields:
        if key.startswith('GGUF.') or key in SKIP_KEYS:
            continue
        if key not in r.fields:
            fail('%s: key %s missing (the gguf package\'s conversion has it)' % (tag, key))
            continue
        a, b = field_value(r, key), field_value(ref, key)
        same = a == b if not isinstance(b, float) else abs(a - b) <= 1e-6 * max(1.0, abs(b))
        if not same:
            fail('%s: key %s: %r, the gguf package\'s conversion %r' % (tag, key, str(a)[:200], str(b)[:200]))
    got = {t.name: t for t in r.tensors}
    want = {t.name: t for t in ref.tensors}
    if sorted(got) != sorted(want):
        fail('%s: tensors %s, expected %s' % (tag, sorted(set(got) ^ set(want)), 'the same set'))
    src = {n: t.contiguous().numpy() for n, t in hf2gguf.layout(d)}
    qtype = hf2gguf.FTYPES[ftype][1]
    for name in sorted(set(got) & set(want)):
        g, w = got[name], want[name]
        if g.tensor_type != w.tensor_type or list(g.shape) != list(w.shape):
            fail('%s: %s: %s %s, expected %s %s' % (tag, name, g.tensor_type.name, list(g.shape), w.tensor_type.name,
                                                   list(w.shape)))
            continue
        _, q = hf2gguf.stored(name, src[name], qtype)
        if not np.array_equal(np.asarray(g.data).view(np.uint8).ravel(), np.asarray(q).view(np.uint8).ravel()):
            fail('%s: %s: the bytes differ from the gguf package\'s %s of the same weights'
                 % (tag, name, g.tensor_type.name))
        deq = gguf.quants.dequantize(g.data, g.tensor_type).reshape(src[name].shape)
        scale = float(np.max(np.abs(src[name]))) or 1.0
        err = float(np.max(np.abs(deq.astype(np.float64) - src[name]))) / scale
        worst['value'] = max(worst['value'], err)
        tol = TOL_VALUE['f32' if g.tensor_type == gguf.GGMLQuantizationType.F32 else
                        'f16' if g.tensor_type == gguf.GGMLQuantizationType.F16 else ftype]
        if not err <= tol:
            fail('%s: %s: dequantized values off by %.3g of the largest (tol %g)' % (tag, name, err, tol))


def logits_or_hidden(s, tdump, model, ids):
    """[T, V] logits of a decoder, or a BERT's hidden states after every block stacked."""
    if s.family == 'bert':
        points, _ = qkv_cli.trace(tdump, model, ids, ['resid_post'])
        return np.stack([points[k] for k in sorted(points)])
    return tg.qkv_run(tdump, model, ids, 1)[0]


def compare(tag, got, want, tol):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        fail('%s: shape %s, expected %s' % (tag, got.shape, want.shape))
        return
    err = float(np.max(np.abs(got - want)))
    worst['same'] = max(worst['same'], err)
    if not err <= tol:
        fail('%s: max |difference| %.3g > %g' % (tag, err, tol))


def check_model(s, qkv, tdump, tag, path, ref_path, d, ftype, db, rng):
    vocab = 30522 if s.family == 'bert' else 50257
    ids = ([101] if s.family == 'bert' else []) + [int(i) for i in rng.integers(1000, vocab, size=40)]
    try:
        want = logits_or_hidden(s, tdump, d, ids)
        got = logits_or_hidden(s, tdump, path, ids)
        ref = logits_or_hidden(s, tdump, ref_path, ids) if ftype != 'f32' else want
    except qkv_cli.QkvError as ex:
        fail('%s: %s' % (tag, ex))
        return
    compare(tag + (' vs the source' if ftype == 'f32' else ' vs the gguf package\'s file'), got, ref, TOL_SAME)
    if ftype != 'f32' and s.family != 'bert':
        kl = tg.kl_mean(want, got)
        worst['kl'] = max(worst['kl'], kl)
        if kl > KL_MAX:
            fail('%s: mean KL(source || export) %.3g > %g' % (tag, kl, KL_MAX))
    if ftype == 'f32' and s.tok_check:
        tg.check_tokenizer(s, qkv, d, path, db, None)
    if s.chat:
        cmds = ['tokenize "Hello, who are you?" chat=true', 'tokenize "Hi" chat=true system="Be brief."']
        try:
            a, b = qkv_cli.json_cmds(qkv, path, cmds, db), qkv_cli.json_cmds(qkv, d, cmds, db)
        except qkv_cli.QkvError as ex:
            fail('%s chat: %s' % (tag, ex))
            return
        if [(x.get('text'), x.get('ids')) for x in a] != [(x.get('text'), x.get('ids')) for x in b] or a[0].get('chat') != 'chatml':
            fail('%s: chat=true on the export %s, on the source %s' % (tag, a, b))


def run_source(s, qkv, tdump, tmp, shared):
    t0 = time.time()
    db = os.path.join(tmp, 'qkv.db')
    d = make_source(s, qkv, tmp, shared, db)
    if not d:
        return
    rng = np.random.default_rng(zlib.crc32(s.name.encode()))
    for ftype in s.types:
        tag = '%s %s' % (s.name, ftype)
        path = os.path.join(tmp, '%s-%s.gguf' % (s.name, ftype))
        ref_path = os.path.join(tmp, '%s-%s-ref.gguf' % (s.name, ftype))
        hf2gguf.convert(d, ref_path, ftype, pre='bert-bge' if s.family == 'bert' else 'gpt-2', name=s.name)
        try:
            (res,) = qkv_cli.json_cmds(qkv, d, ['export gguf %s type=%s' % (path, ftype)], db)
        except qkv_cli.QkvError as ex:
            fail('%s: %s' % (tag, ex))
            continue
        arch = hf2gguf.ARCH[s.family]
        ts = hf2gguf.reader(path).tensors
        want = {'file': path, 'what': 'gguf', 'type': ftype, 'arch': arch, 'tensors': len(ts), 'kept': 0,
                'bytes': sum(int(t.n_bytes) for t in ts)}
        if any(res.get(k) != v for k, v in want.items()):
            fail('%s: export JSON %s, expected %s' % (tag, res, want))
        check_file(tag, path, ref_path, d, ftype)
        check_model(s, qkv, tdump, tag, path, ref_path, d, ftype, db, rng)
    print('%-20s %s done (%.1f s)' % (s.name, ','.join(s.types), time.time() - t0), flush=True)


def run_stories(qkv, tdump, tmp, shared):
    """A llama2.c model with its SentencePiece-style tokenizer (scores, byte fallback)."""
    d = os.path.join(shared, 'llama2c-stories260k')
    model, tok = os.path.join(d, 'stories260K.bin'), os.path.join(d, 'tok512.bin')
    if not os.path.exists(model) or not os.path.exists(tok):
        print('stories260K absent: its export is not checked')
        return
    db = os.path.join(tmp, 'qkv.db')
    path = os.path.join(tmp, 'stories.gguf')
    p = qkv_cli.run(qkv, ['--model', model, '--db', db, '--json', '-e', 'export gguf %s' % path])
    if p.returncode != 0:
        fail('stories260K: export: exit %d: %s' % (p.returncode, p.stderr.strip()))
        return
    r = hf2gguf.reader(path)
    if field_value(r, 'tokenizer.ggml.model') != 'llama' or len(field_value(r, 'tokenizer.ggml.scores')) != 512:
        fail('stories260K: tokenizer.ggml.model %r with %d scores (llama, 512 expected)'
             % (field_value(r, 'tokenizer.ggml.model'), len(field_value(r, 'tokenizer.ggml.scores'))))
    prefix = [field_value(r, k) if k in r.fields else None for k in
              ('tokenizer.ggml.add_space_prefix', 'qkv.tokenizer.prepend_if_none', 'qkv.tokenizer.prepend_scheme')]
    if prefix != [True, False, None]:
        fail('stories260K: add_space_prefix, qkv.tokenizer.prepend_if_none, .prepend_scheme %r; [True, False, None] '
             'expected (a space before every text, as llama2.c)' % prefix)
    # the token types llama.cpp's converter gives the same vocabulary (from sentencepiece's
    # tok512.model): <unk> unknown (2), <s> and </s> control (3), bytes 6, the rest normal
    sp_path = os.path.join(d, 'tok512.model')
    if os.path.exists(sp_path):
        import sentencepiece
        sp = sentencepiece.SentencePieceProcessor(model_file=sp_path)
        T = gguf.TokenType
        want = [T.UNKNOWN if sp.is_unknown(i) else T.CONTROL if sp.is_control(i) else T.BYTE if sp.is_byte(i)
                else T.UNUSED if sp.is_unused(i) else T.NORMAL for i in range(sp.get_piece_size())]
        got = [int(x) for x in field_value(r, 'tokenizer.ggml.token_type')]
        bad = [(i, sp.id_to_piece(i), g, int(w)) for i, (g, w) in enumerate(zip(got, want)) if g != w]
        if len(got) != len(want) or bad or want[0] != T.UNKNOWN:
            fail('stories260K: %d token types differ from the converter\'s (id, piece, got, expected): %s'
                 % (len(bad), bad[:4]))
        unk = field_value(r, 'tokenizer.ggml.unknown_token_id') if 'tokenizer.ggml.unknown_token_id' in r.fields else None
        if unk != sp.unk_id():
            fail('stories260K: tokenizer.ggml.unknown_token_id %r, expected %d' % (unk, sp.unk_id()))
    else:
        print('tok512.model absent: the token types are not checked')
    ids = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315]
    # texts that start with a space too: llama2.c prepends a space to every text, which the file
    # says with qkv.tokenizer.prepend_if_none false (a GGUF "llama" vocabulary is otherwise read as
    # HF's Metaspace, with no space added before one: " one" was ' on', 'e' instead of ' ', ' on',
    # 'e' until 2026-12-06, when these texts were left out)
    texts = [b'Once upon a time', b'Lily saw a big red ball. She was happy!', b'two  spaces  ', b'caf\xc3\xa9 \xe2\x98\x83',
             b'Tom said: "hi" 123', b'<unk>', b'a<unk>b <s> c</s>', b' one', b'  two  spaces', b' ', b'\xe2\x96\x81x',
             b' <s> a'] + [t for t in tokref.cases(seed=9, n=40) if t and len(t) < 200]
    try:
        compare('stories260K logits', tg.qkv_run(tdump, path, ids, 1)[0], tg.qkv_run(tdump, model, ids, 1)[0], TOL_SAME)
        a = tg.tokenize_all(qkv, path, texts, db)  # through a --script file: the texts exceed one argument
        b = tg.tokenize_all(qkv, model, texts, db)
    except qkv_cli.QkvError as ex:
        fail('stories260K: %s' % ex)
        return
    bad = [t for t, x, y in zip(texts, a, b) if x != y]
    if bad:
        fail('stories260K: the exported tokenizer differs on %d of %d texts, first %r' % (len(bad), len(texts), bad[0]))
    print('stories260K          exported and reopened: %d texts, logits as the source' % len(texts), flush=True)


def add_meta(w):
    """What a GGUF says of its model beyond the weights: general.* facts, and the tokenizer's
    unknown and padding ids (which a byte-level tokenizer does not use itself)."""
    w.add_type('model')
    w.add_author('A. Author')
    w.add_organization('An Org')
    w.add_version('v1.2')
    w.add_description('a random model with metadata')
    w.add_basename('meta')
    w.add_finetune('none')
    w.add_size_label('1M')
    w.add_license('apache-2.0')
    w.add_license_name('Apache License 2.0')
    w.add_license_link('https://www.apache.org/licenses/LICENSE-2.0')
    w.add_url('https://example.org/meta')
    w.add_uuid('6f1d3a52-0000-4000-8000-000000000001')
    w.add_source_url('https://example.org/source')
    w.add_base_model_count(1)
    w.add_base_model_name(0, 'base-model')
    w.add_tags(['test', 'random'])
    w.add_languages(['en', 'fr'])
    w.add_quantized_by('someone')  # who made the source's quantization: not who made the export's
    w.add_unk_token_id(50255)
    w.add_pad_token_id(50254)


def run_meta(qkv, tmp, shared):
    """GGUF -> GGUF: the source file's general.* facts about the model and its tokenizer's unknown
    and padding ids carried over; the file's own (file type, quantization version, alignment,
    quantized_by) written for what is written."""
    db = os.path.join(tmp, 'qkv.db')
    d = make_source(Src('meta', 'llama', 'layers=1 heads=2 d=32 ctx=64 seed=76', ()), qkv, tmp, shared, db)
    if not d:
        return
    src, out = os.path.join(tmp, 'meta-src.gguf'), os.path.join(tmp, 'meta-out.gguf')
    hf2gguf.convert(d, src, 'f32', name='Meta Model 1M', extra=add_meta)
    p = qkv_cli.run(qkv, ['--model', src, '--db', db, '--json', '-e', 'export gguf %s type=q8_0' % out])
    if p.returncode != 0:
        fail('meta: export: exit %d: %s' % (p.returncode, p.stderr.strip()))
        return
    a, b = hf2gguf.reader(src), hf2gguf.reader(out)
    own = {'general.file_type', 'general.quantization_version', 'general.alignment', 'general.quantized_by'}
    keys = [k for k in a.fields if k.startswith('general.') and k not in own] + \
        ['tokenizer.ggml.unknown_token_id', 'tokenizer.ggml.padding_token_id']
    if len(keys) < 22:
        fail('meta: the source has %d of the keys to carry, 22 expected' % len(keys))
    for k in keys:
        if k not in b.fields:
            fail('meta: %s missing from the export' % k)
        elif field_value(b, k) != field_value(a, k) or b.fields[k].types != a.fields[k].types:
            fail('meta: %s: %r (%s), the source %r (%s)' % (k, field_value(b, k), b.fields[k].types, field_value(a, k),
                                                           a.fields[k].types))
    made = {'general.file_type': 7.0, 'general.quantization_version': 2.0}  # Q8_0
    for k, v in made.items():
        if k not in b.fields or field_value(b, k) != v:
            fail('meta: %s: %r, expected %r' % (k, field_value(b, k) if k in b.fields else None, v))
    extra = sorted(k for k in b.fields if k.startswith('general.') and k not in keys and k not in made and
                   k != 'general.architecture')
    if extra:
        fail('meta: the export has general.* keys the source does not give: %s' % extra)
    print('meta                 GGUF -> GGUF: %d keys carried over' % len(keys), flush=True)


# sentence-transformers' Pooling config.json flag of each pooling, and the bert.pooling_type
# llama.cpp gives it (max has none: qkv.sentence_transformers.pooling carries it)
POOLINGS = {'max': ('pooling_mode_max_tokens', None), 'mean': ('pooling_mode_mean_tokens', 1),
            'cls': ('pooling_mode_cls_token', 2)}
POOL_TEXTS = ['The cat sat on the mat.', 'a', 'Pooling by max, mean or [CLS] gives other vectors.']


def st_folder(d, out, pool):
    """A copy of the BERT directory d at out as a sentence-transformers folder whose Pooling module
    pools by pool; out."""
    shutil.copytree(d, out)
    os.makedirs(os.path.join(out, '1_Pooling'))
    with open(os.path.join(out, 'modules.json'), 'w') as f:
        json.dump([{'idx': 0, 'name': '0', 'path': '', 'type': 'sentence_transformers.models.Transformer'},
                   {'idx': 1, 'name': '1', 'path': '1_Pooling', 'type': 'sentence_transformers.models.Pooling'}], f)
    with open(os.path.join(out, '1_Pooling', 'config.json'), 'w') as f:
        json.dump({'word_embedding_dimension': 32, POOLINGS[pool][0]: True}, f)
    return out


def export_twice(tag, qkv, src, base, db):
    """src exported as base.gguf, which is exported as base-again.gguf: their paths, or None
    (said) when qkv fails."""
    once, twice = base + '.gguf', base + '-again.gguf'
    try:
        qkv_cli.json_cmds(qkv, src, ['export gguf %s' % once], db)
        qkv_cli.json_cmds(qkv, once, ['export gguf %s' % twice], db)
    except qkv_cli.QkvError as ex:
        fail('%s: %s' % (tag, ex))
        return None
    return once, twice


def check_embed(tag, qkv, a, b, db, pool):
    """`embed` (pooling chosen by the model) on a and on b: pooled by pool, the same vectors."""
    cmds = ['embed %s' % tokrun.qkv_escape(t.encode()) for t in POOL_TEXTS]
    try:
        x, y = qkv_cli.json_cmds(qkv, a, cmds, db), qkv_cli.json_cmds(qkv, b, cmds, db)
    except qkv_cli.QkvError as ex:
        fail('%s: %s' % (tag, ex))
        return
    for t, ex, ey in zip(POOL_TEXTS, x, y):
        if ex.get('pool') != pool or ey.get('pool') != pool:
            fail('%s: embed %r pools by %s, the source by %s (%s expected)' % (tag, t, ey.get('pool'), ex.get('pool'), pool))
        else:
            compare('%s embed %r' % (tag, t), ey['embedding'], ex['embedding'], TOL_SAME)


def check_pool_keys(tag, path, pool):
    """How the file says pool: llama.cpp's bert.pooling_type where it has a value, else
    qkv.sentence_transformers.pooling; never both."""
    r = hf2gguf.reader(path)
    std = field_value(r, 'bert.pooling_type') if 'bert.pooling_type' in r.fields else None
    own = field_value(r, 'qkv.sentence_transformers.pooling') if 'qkv.sentence_transformers.pooling' in r.fields else None
    want_std = {'max': None, 'mean': 1, 'cls': 2, 'last': 3}[pool]
    want_own = 'max' if pool == 'max' else None
    if std != want_std or own != want_own:
        fail('%s: bert.pooling_type %r and qkv.sentence_transformers.pooling %r (%r and %r expected)'
             % (tag, std, own, want_std, want_own))


def run_pooling(qkv, tmp, shared):
    """Sentence-transformers folders pooling by max, mean and [CLS] exported and reopened, then
    exported again from the GGUF: `embed` pools as the folder does, with the same vectors; a GGUF
    pooling by the last token (llama.cpp's pooling_type 3) keeps it through GGUF -> GGUF."""
    db = os.path.join(tmp, 'qkv.db')
    d = make_source(Src('pool', 'bert', 'layers=1 heads=2 d=32 ctx=64 seed=77', ()), qkv, tmp, shared, db)
    if not d:
        return
    for pool in POOLINGS:
        st = st_folder(d, os.path.join(tmp, 'pool-' + pool), pool)
        files = export_twice('pooling ' + pool, qkv, st, st, db)
        if not files:
            continue
        once, twice = files
        for tag, path in (('pooling %s: folder -> GGUF' % pool, once), ('pooling %s: GGUF -> GGUF' % pool, twice)):
            check_pool_keys(tag, path, pool)
            check_embed(tag, qkv, st, path, db, pool)
    src, out = os.path.join(tmp, 'pool-last-src.gguf'), os.path.join(tmp, 'pool-last.gguf')
    hf2gguf.convert(d, src, 'f32', extra=lambda w: w.add_pooling_type(gguf.PoolingType.LAST))
    try:
        qkv_cli.json_cmds(qkv, src, ['export gguf %s' % out], db)
    except qkv_cli.QkvError as ex:
        fail('pooling last: %s' % ex)
        return
    check_pool_keys('pooling last: GGUF -> GGUF', out, 'last')
    check_embed('pooling last: GGUF -> GGUF', qkv, src, out, db, 'last')
    print('pooling              max, mean, cls exported and reopened, twice; last GGUF -> GGUF', flush=True)


def token_types(path):
    return [int(x) for x in field_value(hf2gguf.reader(path), 'tokenizer.ggml.token_type')]


def retyped(types, ids, to):
    """A writer hook (hf2gguf.convert's extra) that writes types again with ids typed to."""
    def extra(w):
        t = list(types)
        for i in ids:
            t[i] = to
        logging.getLogger('gguf.gguf_writer').setLevel(logging.ERROR)  # the key written again: said at length
        w.add_token_types(t)
    return extra


def tokenize_checked(tag, qkv, model, texts, db, want=None, ref='', unused=frozenset(), extra=()):
    """qkv's ids of texts on model (None when qkv fails): no id of unused among them, and each
    text's ids want's (ref's) when want is given."""
    try:
        got = tg.tokenize_all(qkv, model, texts, db, extra=extra)
    except qkv_cli.QkvError as ex:
        fail('%s: %s' % (tag, ex))
        return None
    bad = [(t, g) for t, g in zip(texts, got) if set(g) & unused]
    if bad:
        fail('%s: %d of %d texts encode to unused tokens, first %r -> %s' % (tag, len(bad), len(texts), bad[0][0][:60],
                                                                            sorted(set(bad[0][1]) & unused)))
    bad = [(t, g, x) for t, g, x in zip(texts, got, want or got) if g != x]
    if bad:
        fail('%s: %d of %d texts differ from %s, first %r: %s, %s %s' % (tag, len(bad), len(texts), ref, bad[0][0][:60],
                                                                        bad[0][1][:16], ref, bad[0][2][:16]))
    return got


def check_roundtrip(tag, qkv, src, out, db, texts, want_ids, extra=()):
    """src (a GGUF, or a model with extra's --tokenizer) exported as out: out's token types are
    the source tokenizer's and out tokenizes texts to want_ids."""
    try:
        qkv_cli.json_cmds(qkv, src, ['export gguf %s' % out], db, extra=extra)
        got = tg.tokenize_all(qkv, out, texts, db)
    except qkv_cli.QkvError as ex:
        fail('%s: %s' % (tag, ex))
        return
    a, b = token_types(extra[1] if extra else src), token_types(out)
    diff = [(i, x, y) for i, (x, y) in enumerate(zip(a, b)) if x != y]
    if len(a) != len(b) or diff:
        fail('%s: %d token types differ from the source\'s (id, source, export): %s' % (tag, len(diff), diff[:6]))
    bad = [t for t, x, y in zip(texts, got, want_ids) if x != y]
    if bad:
        fail('%s: the export tokenizes %d of %d texts otherwise, first %r' % (tag, len(bad), len(texts), bad[0][:60]))


def check_shown(tag, qkv, model, db, ids, want, extra=()):
    """Tokens given by id (attention ids=...) are shown as want (their text)."""
    try:
        (r,) = qkv_cli.json_cmds(qkv, model, ['attention ids=%s layer=0 head=0' % ','.join(map(str, ids))], db,
                                 extra=extra)
    except qkv_cli.QkvError as ex:
        fail('%s: %s' % (tag, ex))
        return
    if r.get('tokens') != want:
        fail('%s: tokens %s shown as %r, expected %r' % (tag, ids, r.get('tokens'), want))


def unused_spm(qkv, tmp, shared, texts):
    """tok512.model with a quarter of its merged pieces and the character 'q' typed unused, written
    as GGUF metadata as llama.cpp's converter types sentencepiece's pieces: qkv encodes as
    sentencepiece does with that model (an unused piece is never output: one made by merging is
    split back into the pieces it was made of, further merges from it still made; an unused
    character goes to its byte tokens), through GGUF -> GGUF too; the unused pieces shown as their
    text."""
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2 as pb
    d = os.path.join(shared, 'llama2c-stories260k')
    model, sp_path = os.path.join(d, 'stories260K.bin'), os.path.join(d, 'tok512.model')
    if not os.path.exists(model) or not os.path.exists(sp_path):
        print('stories260K or tok512.model absent: unused SentencePiece pieces are not checked')
        return
    db = os.path.join(tmp, 'qkv.db')
    proto = pb.ModelProto()
    with open(sp_path, 'rb') as f:
        proto.ParseFromString(f.read())
    # llama.cpp does not collapse white space (nor does qkv): neither does the reference
    proto.normalizer_spec.remove_extra_whitespaces = False
    P = pb.ModelProto.SentencePiece
    unused = [i for i, p in enumerate(proto.pieces) if p.type == P.NORMAL and len(p.piece) > 1][::4]
    unused += [i for i, p in enumerate(proto.pieces) if p.piece == 'q']
    for i in unused:
        proto.pieces[i].type = P.UNUSED
    sp = sentencepiece.SentencePieceProcessor(model_proto=proto.SerializeToString())
    T = gguf.TokenType
    path = os.path.join(tmp, 'unused-spm.gguf')
    w = gguf.GGUFWriter(path, 'llama')
    w.add_tokenizer_model('llama')
    w.add_token_list([sp.id_to_piece(i) for i in range(sp.get_piece_size())])
    w.add_token_scores([sp.get_score(i) for i in range(sp.get_piece_size())])
    w.add_token_types([T.UNKNOWN if sp.is_unknown(i) else T.CONTROL if sp.is_control(i) else T.UNUSED if sp.is_unused(i)
                       else T.BYTE if sp.is_byte(i) else T.NORMAL for i in range(sp.get_piece_size())])
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    # sentencepiece puts U+2581 before every text, qkv (as HF's Metaspace) not before a space
    texts = [t for t in texts if t and not t[:1].isspace()]
    want = [[sp.bos_id()] + sp.encode(t.decode('utf-8', 'replace')) for t in texts]
    tool = ['--tokenizer', path]
    if tokenize_checked('unused spm', qkv, model, texts, db, want, 'sentencepiece', set(unused), tool) is None:
        return
    check_roundtrip('unused spm: GGUF -> GGUF', qkv, model, os.path.join(tmp, 'unused-spm-out.gguf'), db, texts, want,
                    extra=tool)
    check_shown('unused spm', qkv, model, db, unused[:6], [sp.id_to_piece(i).replace('\u2581', ' ') for i in unused[:6]],
                extra=tool)
    print('unused spm           %d of 512 pieces unused: %d texts as sentencepiece, GGUF -> GGUF' % (len(unused), len(texts)),
          flush=True)


def unused_byte_level(qkv, tmp, shared, texts):
    """A GPT-2 vocabulary converted as llama.cpp does for a model whose vocab_size is past the
    tokenizer's ([PADn] tokens typed unused), with some merged tokens typed unused too: qkv never
    outputs them, its ids still spell the text, GGUF -> GGUF keeps the types; shown as their text."""
    db = os.path.join(tmp, 'qkv.db')
    d = os.path.join(tmp, 'unused-gpt2')
    # three embedding rows past the tokenizer's 50257 tokens: [PADn] tokens in the file
    p = qkv_cli.new_model(qkv, ['gpt2', 'layers=1', 'heads=2', 'd=32', 'ctx=64', 'seed=78', 'vocab=50260', 'out=' + d,
                                'tok=' + os.path.join(shared, 'gpt2-bpe-tokenizer')], db)
    if p.returncode != 0:
        fail('unused byte-level: new-model: exit %d: %s' % (p.returncode, p.stderr.strip()))
        return
    vocab = json.load(open(os.path.join(shared, 'gpt2-bpe-tokenizer', 'encoder.json'), encoding='utf-8'))
    marked = [vocab[t] for t in ('\u0120the', 'ing', '\u0120and', 'er', '\u0120a', 'he', 'in', '\u0120t')]
    src = os.path.join(tmp, 'unused-gpt2.gguf')
    tokens, types = hf2gguf.vocab_base(d, 50260)
    hf2gguf.convert(d, src, 'f32', extra=retyped(types, marked, gguf.TokenType.UNUSED))
    ttypes = token_types(src)
    unused = {i for i, t in enumerate(ttypes) if t == gguf.TokenType.UNUSED}
    if unused != set(marked) | {50257, 50258, 50259}:
        fail('unused byte-level: the source has unused tokens %s' % sorted(unused)[:12])
    dec = tokref.byte_decoder()
    got = tokenize_checked('unused byte-level', qkv, src, texts, db, unused=unused)
    if got is None:
        return
    spelled = [b''.join(bytes(dec.get(c, 0) for c in tokens[i]) for i in g) for g in got]
    clean = [t.decode('utf-8', 'replace').encode('utf-8') for t in texts]
    bad = [t for t, s in zip(clean, spelled) if s != t]
    if bad:
        fail('unused byte-level: %d of %d texts are not what their ids spell, first %r' % (len(bad), len(texts), bad[0][:60]))
    check_roundtrip('unused byte-level: GGUF -> GGUF', qkv, src, os.path.join(tmp, 'unused-gpt2-out.gguf'), db, texts, got)
    check_shown('unused byte-level', qkv, src, db, [50257, vocab['\u0120the'], vocab['ing']], ['[PAD50257]', ' the', 'ing'])
    print('unused byte-level    %d tokens unused: %d texts spelled without them, GGUF -> GGUF' % (len(unused), len(texts)),
          flush=True)


def unused_wordpiece(qkv, tmp, shared, texts):
    """bert-base-uncased converted as llama.cpp does, some word starts and continuations typed
    unused: qkv encodes as HF tokenizers does with those tokens renamed out of reach (so that
    WordPiece's longest match never takes them), GGUF -> GGUF too; shown as their text."""
    import tokenizers
    db = os.path.join(tmp, 'qkv.db')
    d = make_source(Src('unused-bert', 'bert', 'layers=1 heads=2 d=32 ctx=64 seed=79', ()), qkv, tmp, shared, db)
    if not d:
        return
    j = json.load(open(os.path.join(d, 'tokenizer.json'), encoding='utf-8'))
    names = ('the', 'un', '##s', '##ing', 'hello', 'a', '##a', '.')
    marked = [j['model']['vocab'][t] for t in names]
    for t in names:  # out of reach: BertPreTokenizer splits every '[' from a word
        j['model']['vocab']['[qkv-unused-%s]' % t] = j['model']['vocab'].pop(t)
    hf = tokenizers.Tokenizer.from_str(json.dumps(j))
    src = os.path.join(tmp, 'unused-bert.gguf')
    _, types = hf2gguf.vocab_base(d, 30522)
    hf2gguf.convert(d, src, 'f32', pre='bert-bge', extra=retyped(types, marked, gguf.TokenType.UNUSED))
    texts = [t for t in texts if b'[' not in t]  # no special-token text: [UNK] and the others are checked elsewhere
    texts += [b'The unhappy cats were singing. Hello, a.a!', b'un the s ing hello', b'aaaa', b'the...']
    want = [hf.encode(t.decode('utf-8', 'replace')).ids for t in texts]
    if tokenize_checked('unused wordpiece', qkv, src, texts, db, want, 'HF tokenizers without those tokens',
                        set(marked)) is None:
        return
    check_roundtrip('unused wordpiece: GGUF -> GGUF', qkv, src, os.path.join(tmp, 'unused-bert-out.gguf'), db, texts, want)
    check_shown('unused wordpiece', qkv, src, db, marked[:4], list(names[:4]))
    print('unused wordpiece     %d tokens unused: %d texts as HF tokenizers without them, GGUF -> GGUF'
          % (len(marked), len(texts)), flush=True)


def run_unused(qkv, tmp, shared):
    """Tokens of type UNUSED (5): never output by encoding (as sentencepiece, where the type comes
    from), shown as their text when given by id, typed so again through GGUF -> GGUF."""
    texts = [t for t in tokref.cases(seed=11, n=600)] + [b'Once upon a time, the quick cat sat.', b'quiz q', b'q']
    unused_spm(qkv, tmp, shared, texts)
    unused_byte_level(qkv, tmp, shared, texts)
    unused_wordpiece(qkv, tmp, shared, texts)


# punctuation, white space and CJK that BertPreTokenizer would split, special tokens between them
NO_PRE_TEXT = [b'hello', b'hello world', b'Hello, world!', b'a.b', b'unaffable', b"don't", b' x', b'x ', b'  ', b'a\tb',
               b'ab [MASK] cd', b'hello [SEP]world', b'caf\xc3\xa9', b'\xe4\xb8\xad\xe6\x96\x87', b'\xe4\xb8\xad x',
               b'x' * 100, b'x' * 101, b'...', b'(a) [b] {c}', b'1,000.5%']


# WordPiece tokenizer.json files that GGUF's "bert" (BertNormalizer and BertPreTokenizer with
# BertTokenizer's defaults) cannot describe: (name, change to tokenizer.json, the qkv.tokenizer.*
# keys the export must carry)
NORM = 'qkv.tokenizer.normalizer.'
WORDPIECE_VARIANTS = [
    ('no pre-tokenizer', {'pre_tokenizer': None}, {'qkv.tokenizer.pre_tokenizer': 'none'}),
    ('cased', {'normalizer.lowercase': False}, {NORM + 'lowercase': False}),
    ('cased, accents stripped', {'normalizer.lowercase': False, 'normalizer.strip_accents': True},
     {NORM + 'lowercase': False, NORM + 'strip_accents': True}),
    ('accents kept', {'normalizer.strip_accents': False}, {NORM + 'strip_accents': False}),
    ('no CJK spacing, no clean-up', {'normalizer.handle_chinese_chars': False, 'normalizer.clean_text': False},
     {NORM + 'handle_chinese_chars': False, NORM + 'clean_text': False}),
    ('no normalizer', {'normalizer': None},
     {NORM + 'lowercase': False, NORM + 'handle_chinese_chars': False, NORM + 'clean_text': False}),
    ('neither', {'normalizer': None, 'pre_tokenizer': None},
     {NORM + 'lowercase': False, NORM + 'handle_chinese_chars': False, NORM + 'clean_text': False,
      'qkv.tokenizer.pre_tokenizer': 'none'}),
]


def continuation_prefix(j, prefix='@@'):
    """The tokenizer.json with its continuations spelled prefix + piece instead of ##piece."""
    m = j['model']
    m['vocab'] = {(prefix + t[2:] if t.startswith('##') and len(t) > 2 else t): i for t, i in m['vocab'].items()}
    m['continuing_subword_prefix'] = prefix
    if isinstance(j.get('decoder'), dict) and 'prefix' in j['decoder']:
        j['decoder']['prefix'] = prefix


WORDPIECE_VARIANTS += [
    ('words of at most 5 characters', {'model.max_input_chars_per_word': 5},
     {'qkv.tokenizer.max_input_chars_per_word': 5}),
    ('continuations spelled @@', continuation_prefix, {'qkv.tokenizer.continuing_subword_prefix': '@@'}),
    # HF tokenizers takes any usize: 2^40 was read as int, wrapped to 0, and every word became [UNK]
    ('a word-length limit of 2^40', {'model.max_input_chars_per_word': 2 ** 40},
     {'qkv.tokenizer.max_input_chars_per_word': 2 ** 31 - 1}),
    # an empty prefix (continuations spelled as word starts) was written and then refused on reading
    ('continuations without a prefix', {'model.continuing_subword_prefix': ''},
     {'qkv.tokenizer.continuing_subword_prefix': ''}),
]

# added tokens found after normalization, with lstrip, single_word or rstrip, one of them special
# (as test_tok_wordpiece's), in place of [unused0]..[unused3]: a non-special one was written as a
# plain word (U+2581 and its content, type normal), so that reopened it was no longer found in text
ADDED = [('Qkv Tool', False, {'normalized': True}), ('<mask2>', True, {'lstrip': True}),
         ('café', False, {'normalized': True, 'single_word': True}), ('->', False, {'rstrip': True})]


def with_added_tokens(j):
    for k, (content, special, flags) in enumerate(ADDED):
        del j['model']['vocab']['[unused%d]' % k]
        j['model']['vocab'][content] = k + 1  # (a hole in the vocabulary makes HF renumber added tokens)
        j['added_tokens'].append(dict({'id': k + 1, 'content': content, 'special': special, 'single_word': False,
                                       'lstrip': False, 'rstrip': False, 'normalized': False}, **flags))


WORDPIECE_VARIANTS += [('added tokens', with_added_tokens, {'qkv.tokenizer.added_flags': [1, 8, 2, 1, 3, 12, 4, 2]})]
ADDED_TEXTS = [t.encode() for t in ('Qkv Tool', 'qkv tool', 'QKV TOOL', 'qkv  tool', 'Qkv Tóol', 'a <mask2>', 'café',
                                    'CAFÉ', 'cafe\u0301', 'xcafé', 'a -> b', '->  b', 'QKV TOOL->café <mask2>')]

WORDPIECE_TEXTS = NO_PRE_TEXT + [b'Hello World', b'CAF\xc3\x89 caf\xc3\xa9 cafe\xcc\x81', b'\xc3\x9cN\xc3\x8fC\xc3\x96D\xc3\x89',
                                 b'\xe4\xb8\xad\xe6\x96\x87\xe5\xad\x97', b'a\x07b\x00c', b'Stra\xc3\x9fe \xef\xac\x81ne', b'\xc4\xb0stanbul']


def run_wordpiece(qkv, tmp, shared):
    """BERTs whose tokenizer.json differs from what GGUF's "bert" means (WORDPIECE_VARIANTS: no
    pre-tokenizer, where HF splits nothing and the text between special tokens is one word; other
    BertNormalizer options; no normalizer; a word-length limit other than 100 characters;
    continuations spelled other than ##) exported, reopened and exported again: the files carry
    the variant's qkv.tokenizer.* keys and no others (a plain BERT none), and from the directory
    and both files qkv gives HF tokenizers' ids on texts with punctuation, white space, case,
    accents, CJK, controls and special tokens."""
    import tokenizers
    db = os.path.join(tmp, 'qkv.db')
    d = make_source(Src('wordpiece-src', 'bert', 'layers=1 heads=2 d=32 ctx=64 seed=80', ()), qkv, tmp, shared, db)
    if not d:
        return
    texts = WORDPIECE_TEXTS + ADDED_TEXTS + [t for t in tokref.cases(seed=12, n=300) if len(t) < 120]
    plain = os.path.join(tmp, 'wordpiece-plain.gguf')
    try:
        qkv_cli.json_cmds(qkv, d, ['export gguf %s' % plain], db)
    except qkv_cli.QkvError as ex:
        fail('wordpiece: %s' % ex)
        return
    own = sorted(k for k in hf2gguf.reader(plain).fields if k.startswith('qkv.tokenizer.'))
    if own:
        fail('wordpiece: a plain BERT\'s export has %s' % own)
    for k, (name, change, keys) in enumerate(WORDPIECE_VARIANTS):
        v = os.path.join(tmp, 'wordpiece-%d' % k)
        shutil.copytree(d, v)
        tj = os.path.join(v, 'tokenizer.json')
        with open(tj, encoding='utf-8') as f:
            j = json.load(f)
        for path, value in (change.items() if isinstance(change, dict) else ()):
            at = j
            for part in path.split('.')[:-1]:
                at = at[part]
            at[path.split('.')[-1]] = value
        if callable(change):
            change(j)
        with open(tj, 'w', encoding='utf-8') as f:
            json.dump(j, f, ensure_ascii=False)
        hf = tokenizers.Tokenizer.from_file(tj)
        want = [hf.encode(t.decode('utf-8', 'replace')).ids for t in texts]
        files = export_twice('wordpiece ' + name, qkv, v, v, db)
        if not files:
            continue
        once, twice = files
        for path in files:
            r = hf2gguf.reader(path)
            got = {f: field_value(r, f) for f in r.fields if f.startswith('qkv.tokenizer.')}
            if got != keys:
                fail('wordpiece %s: %s has %s, expected %s' % (name, os.path.basename(path), got, keys))
        for tag, model in (('directory', v), ('folder -> GGUF', once), ('GGUF -> GGUF', twice)):
            tokenize_checked('wordpiece %s: %s' % (name, tag), qkv, model, texts, db, want, 'HF tokenizers')
        if change is with_added_tokens:
            # as llama.cpp's converter writes them: control tokens as they are (<mask2> was read as
            # ##<mask2>), user-defined ones after U+2581, no flags (texts where they do not matter)
            # (transformers reads the added tokens from tokenizer.json only without vocab.txt and
            # tokenizer_config.json beside it)
            fast = os.path.join(tmp, 'wordpiece-fast')
            shutil.copytree(v, fast)
            os.remove(os.path.join(fast, 'vocab.txt'))
            os.remove(os.path.join(fast, 'tokenizer_config.json'))
            lc = hf2gguf.convert(fast, os.path.join(tmp, 'wordpiece-llama.cpp.gguf'), 'f32', pre='bert-bge',
                                 control_as_is=True)
            plain = [b'Qkv Tool', b'a <mask2> b', b'x -> y', 'café au lait'.encode(), b'[MASK] <mask2>']
            tokenize_checked('wordpiece %s: llama.cpp\'s spelling' % name, qkv, lc, plain, db,
                             [hf.encode(t.decode()).ids for t in plain], 'HF tokenizers')
    print('wordpiece            %d tokenizer.json variants exported and reopened, twice: %d texts as HF tokenizers'
          % (len(WORDPIECE_VARIANTS), len(texts)), flush=True)


# `model` fields that name the file or the run rather than the model
NOT_MODEL = {'path', 'name', 'file_bytes', 'builtin', 'rss_anon_kb', 'threads', 'kernels', 'kernels_note', 'sanitized',
             'dtype', 'kv_dtype'}


def run_builtin(qkv, tmp):
    """The built-in GPT-2 (untrained, its head tied to the token embedding) exported and loaded
    back: `model` says the same of it (tied, untrained, the parameters counted once) and F32's
    logits are the source's."""
    db = os.path.join(tmp, 'qkv.db')
    text = 'logits "The cat sat on the mat." top=8'
    for ftype in ('f32', 'q8_0'):
        path = os.path.join(tmp, 'builtin-%s.gguf' % ftype)
        try:
            _, a, la = qkv_cli.json_cmds(qkv, 'builtin', ['export gguf %s type=%s' % (path, ftype), 'model', text], db)
            b, lb = qkv_cli.json_cmds(qkv, path, ['model', text], db)
        except qkv_cli.QkvError as ex:
            fail('builtin %s: %s' % (ftype, ex))
            continue
        diff = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if k not in NOT_MODEL and a.get(k) != b.get(k)}
        if diff or not a.get('tied') or not a.get('untrained'):
            fail('builtin %s: model (built-in, GGUF) differs: %s' % (ftype, diff or 'not tied and untrained'))
        if ftype == 'f32':
            compare('builtin f32 logits', [t['logit'] for t in lb['top']], [t['logit'] for t in la['top']], TOL_SAME)
            if [t['id'] for t in lb['top']] != [t['id'] for t in la['top']]:
                fail('builtin f32: top ids %s, the source %s' % ([t['id'] for t in lb['top']], [t['id'] for t in la['top']]))
    print('builtin              exported and reopened: the same model, logits as the source', flush=True)


def check_interrupted(qkv, tmp):
    """Ctrl-C during an export (SmolLM2 as Q8_0: 272 tensors, seconds of quantizing) stops it at the
    next tensor: "export gguf: interrupted", exit 130, the next command not run, no temporary file
    left, the previous FILE as it was (the export ran to its end, exit 0, FILE replaced)."""
    import signal
    import subprocess
    src = qkv_cli.smollm2_dir()
    if not src:
        print('interrupted          skipped: SmolLM2 is not installed (./dev models)', flush=True)
        return
    d = os.path.join(tmp, 'interrupted')
    os.makedirs(d)
    out = os.path.join(d, 'int.gguf')
    with open(out, 'w') as fh:  # a GGUF by its magic (export writes over a GGUF only)
        fh.write('GGUF, the previous file\n')
    proc = subprocess.Popen([qkv, '--model', src, '--db', os.path.join(tmp, 'qkv.db'), '-e',
                             'export gguf %s type=q8_0; model' % out], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0, grown = time.time(), False
    while not grown and proc.poll() is None and time.time() - t0 < 120:  # the export well under way
        tmps = [os.path.join(d, n) for n in os.listdir(d) if n.startswith('int.gguf.tmp-')]
        try:
            grown = any(os.path.getsize(n) > (4 << 20) for n in tmps)
        except OSError:
            pass
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    so, se = proc.communicate(timeout=120)
    left = [n for n in os.listdir(d) if n != 'int.gguf']
    with open(out, 'rb') as fh:
        kept = fh.read() == b'GGUF, the previous file\n'
    if not grown or proc.returncode != 130 or b'error: export gguf: interrupted' not in se or so.strip() or left \
            or not kept:
        fail('Ctrl-C during export gguf: under way %s, exit %d, stdout %r, stderr %r, left %s, previous file kept %s'
             % (grown, proc.returncode, so[-200:], se[-300:], left, kept))
    else:
        print('interrupted          Ctrl-C stopped the export: nothing left, the previous file kept', flush=True)


def check_bad(qkv, tmp, shared):
    db = os.path.join(tmp, 'qkv.db')
    model = os.path.join(tmp, 'gpt2')
    cases = [('export gguf %s type=q5_k' % os.path.join(tmp, 'x.gguf'), "unknown type 'q5_k'"),
             ('export gguf %s' % os.path.join(tmp, 'no', 'such', 'dir', 'x.gguf'), 'No such file or directory'),
             ('export gguf %s' % tmp, 'cannot'),
             ('export gguf %s format=trl' % os.path.join(tmp, 'x.gguf'), 'format= does not apply'),
             ('export gguf a.gguf b.gguf', 'one FILE'),
             ('export runs %s type=f16' % os.path.join(tmp, 'runs.jsonl'), 'type= applies to export gguf only')]
    for cmd, want in cases:
        p = qkv_cli.run(qkv, ['--model', model, '--db', db, '-e', cmd])
        lines = p.stderr.strip().splitlines()
        if p.returncode == 0 or len(lines) != 1 or not lines[0].startswith('error: ') or want not in lines[0]:
            fail('%r: expected one error line with %r, got exit %d: %r' % (cmd, want, p.returncode, p.stderr[:300]))
    left = [f for f in os.listdir(tmp) if f.startswith(('x.gguf', '.x.gguf')) or f.endswith('.tmp')]
    if left:
        fail('failed exports left files behind: %s' % left)


def main():
    qkv, tdump = qkv_cli.qkv_path(), qkv_cli.trace_dump_path()
    shared = tg.shared_models()
    if not shared:
        return 77
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix='qkv-export-gguf-')
    try:
        only = os.environ.get('QKV_EXPORT_ONLY', '').split(',')  # source names (and "stories") to run alone
        for s in SOURCES:
            if only == [''] or s.name in only:
                run_source(s, qkv, tdump, tmp, shared)
        if only == [''] or 'stories' in only:
            run_stories(qkv, tdump, tmp, shared)
        if only == [''] or 'meta' in only:
            run_meta(qkv, tmp, shared)
        if only == [''] or 'builtin' in only:
            run_builtin(qkv, tmp)
        if only == [''] or 'pooling' in only:
            run_pooling(qkv, tmp, shared)
        if only == [''] or 'unused' in only:
            run_unused(qkv, tmp, shared)
        if only == [''] or 'wordpiece' in only:
            run_wordpiece(qkv, tmp, shared)
        if only == [''] or 'gpt2' in only:
            check_bad(qkv, tmp, shared)
        if only == [''] or 'interrupted' in only:
            check_interrupted(qkv, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('max |dlogit| vs the same weights %.3g (tol %g), mean KL of F16/Q8_0 %.3g (tol %g), largest value error '
          '%.3g of a tensor\'s largest' % (worst['same'], TOL_SAME, worst['kl'], KL_MAX, worst['value']))
    print('export-gguf: %d sources, %d failure(s), %.1f s' % (len(SOURCES), len(failures), time.time() - t0))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
