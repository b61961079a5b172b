#!/usr/bin/env python3
# test_badfamilies.py - suite 'unit': broken checkpoints of the families besides GPT-2 (Llama,
# Mistral, Qwen2, BERT, sentence-transformers folders, llama2.c) and mismatched tokenizers. Each
# must give one line on stderr starting with "error: " that names what is wrong, a non-zero exit
# and no sanitizer report, never a crash (test_badfiles.py does the same for GPT-2 files).
# Usage: test_badfamilies.py QKV_BINARY

import json
import os
import shutil
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qkv_cli  # noqa: E402
import test_badfiles as bf  # noqa: E402


def edit_config(fn):
    def m(d):
        p = os.path.join(d, 'config.json')
        with open(p) as f:
            c = json.load(f)
        fn(c)
        with open(p, 'w') as f:
            json.dump(c, f)
    return m


def put(name, text):
    return bf.write_file(name, text.encode())


def rename_tensor(old, new):
    def m(d):
        p = os.path.join(d, bf.ST)
        h, data = bf.read_st(p)
        h[new] = h.pop(old)
        bf.write_st(p, h, data)
    return m


def transpose_tensor(name):
    def m(d):
        p = os.path.join(d, bf.ST)
        h, data = bf.read_st(p)
        h[name]['shape'] = list(reversed(h[name]['shape']))
        bf.write_st(p, h, data)
    return m


def st_pooling(cfg, sentence_bert=None):
    """A sentence-transformers folder: a Pooling module with config cfg, and sentence_bert_config.json's
    text when given."""
    def m(d):
        put('modules.json', json.dumps([{'type': 'sentence_transformers.models.Pooling', 'path': '1_Pooling'}]))(d)
        os.makedirs(os.path.join(d, '1_Pooling'), exist_ok=True)
        put('1_Pooling/config.json', json.dumps(cfg))(d)
        if sentence_bert is not None:
            put('sentence_bert_config.json', sentence_bert)(d)
    return m


def swap_tokenizer(d):
    """The model's tokenizer.json replaced by BERT's vocab.txt of 30,522 tokens."""
    os.remove(os.path.join(d, 'tokenizer.json'))
    with open(os.path.join(d, 'vocab.txt'), 'w') as f:
        f.write('[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n' + ''.join('w%d\n' % i for i in range(30522 - 5)))


def cut_vocab(d):
    """vocab.txt cut inside its 80th line, as a download stopped there."""
    p = os.path.join(d, 'vocab.txt')
    with open(p, 'rb') as f:
        lines = f.read().split(b'\n')
    assert len(lines) > 80 and len(lines[79]) >= 2
    with open(p, 'wb') as f:
        f.write(b'\n'.join(lines[:79]) + b'\n' + lines[79][:1])


C = bf.Case
LLAMA_CASES = [
    C('unknown model_type', edit_config(lambda c: c.update(model_type='t5')), ['t5', 'not supported']),
    # without model_type the family comes from "architectures" (a Llama one fell back to GPT-2:
    # "missing tensor 'wte.weight'")
    C('no model_type nor architectures', edit_config(lambda c: (c.pop('model_type'), c.pop('architectures'))),
      ['no model_type (nor architectures)']),
    C('no model_type, architectures of another family', edit_config(
        lambda c: (c.pop('model_type'), c.update(architectures=['T5ForConditionalGeneration']))),
      ['T5ForConditionalGeneration']),
    C('llama without num_hidden_layers', edit_config(lambda c: c.pop('num_hidden_layers')), ['num_hidden_layers']),
    C('llama with 0 heads', edit_config(lambda c: c.update(num_attention_heads=0)), ['num_attention_heads']),
    C('kv heads that do not divide the heads', edit_config(lambda c: c.update(num_key_value_heads=3)),
      ['key/value heads', 'divide']),
    C('hidden_size not a multiple of the heads', edit_config(lambda c: (c.pop('head_dim'), c.update(hidden_size=66))),
      ['hidden_size', 'multiple']),
    C('rope_theta negative', edit_config(lambda c: c.update(rope_theta=-5)), ['rope_theta']),
    # an odd head size: it said "9 rotary dimensions do not fit a head of 9"
    C('an odd head size under rotary positions', edit_config(lambda c: c.update(head_dim=9)),
      ['9 rotary dimensions (the head size)', 'even']),
    # rotary settings read otherwise than transformers reads them (each was taken silently)
    C('rope_scaling linear without a factor', edit_config(lambda c: c.update(rope_scaling={'rope_type': 'linear'})),
      ['rope_scaling linear without a factor']),
    C('rope_scaling with a factor and no type', edit_config(lambda c: c.update(rope_scaling={'factor': 2.0})),
      ['rope_scaling has a factor but no rope_type']),
    C('rope_parameters per kind of layer', edit_config(lambda c: c.update(rope_parameters={
        'full_attention': {'rope_theta': 1e6, 'rope_type': 'default'}})), ['rope_parameters without rope_theta']),
    C('rope_parameters beside rope_scaling', edit_config(lambda c: c.update(
        rope_parameters={'rope_theta': 1e4, 'rope_type': 'default'}, rope_scaling={'rope_type': 'linear', 'factor': 2.0})),
      ['both rope_scaling and rope_parameters']),
    C('rope_parameters yarn', edit_config(lambda c: c.update(rope_parameters={'rope_theta': 1e4, 'rope_type': 'yarn',
                                                                               'factor': 4.0})),
      ['rope_parameters type "yarn" is not supported']),
    # a key given twice: transformers reads the last (n_layer 2 then 1: qkv ran 2 layers, silently)
    C('a config key given twice', lambda d: put('config.json', open(os.path.join(d, 'config.json')).read().rstrip()
                                                 .rstrip('}') + ', "num_hidden_layers": 1}')(d),
      ['the key "num_hidden_layers" is given twice']),
    C('model_type a number', edit_config(lambda c: c.update(model_type=5)), ['model_type is not a string']),
    C('rope_scaling yarn', edit_config(lambda c: c.update(rope_scaling={'rope_type': 'yarn', 'factor': 4.0})),
      ['yarn', 'not supported']),
    C('rope_scaling llama3 without its context', edit_config(lambda c: c.update(
        rope_scaling={'rope_type': 'llama3', 'factor': 8.0})), ['original_max_position_embeddings']),
    C('hidden_act gelu for llama', edit_config(lambda c: c.update(hidden_act='gelu')), ['hidden_act', 'gelu']),
    C('max_position_embeddings 0', edit_config(lambda c: c.update(max_position_embeddings=0)),
      ['max_position_embeddings']),
    C('vocab_size larger than the embeddings', edit_config(lambda c: c.update(vocab_size=100000)),
      ['embed_tokens', 'shape']),
    C('rms_norm_eps absurd', edit_config(lambda c: c.update(rms_norm_eps=5)), ['epsilon']),
    C('k_proj transposed', transpose_tensor('model.layers.0.self_attn.k_proj.weight'), ['k_proj', 'shape']),
    C('k_proj missing', rename_tensor('model.layers.1.self_attn.k_proj.weight', 'model.layers.1.self_attn.kk.weight'),
      ['k_proj']),
    # the file holds 2 layers: one fewer in the config ran the model cut short, silently
    C('num_hidden_layers below the layers held', edit_config(lambda c: c.update(num_hidden_layers=1)),
      ['1 layer', 'hold 2', 'model.layers.1.']),
    C('untied without lm_head', edit_config(lambda c: c.update(tie_word_embeddings=False)), ['lm_head']),
    C('qwen2 with its per-layer sliding windows', edit_config(lambda c: c.update(model_type='qwen2',
                                                                                 use_sliding_window=True)),
      ['use_sliding_window']),
    C('tokenizer.json of another kind', put('tokenizer.json', '{"model": {"type": "Unigram", "vocab": []}}'),
      ['Unigram']),
    C('a tokenizer larger than the model', lambda d: swap_tokenizer(d), ['tokenizer has 30522 tokens']),
]
def wp_template(cls, special_tokens, kind='TemplateProcessing'):
    """A WordPiece tokenizer.json ([UNK] 0, [CLS] 1, [SEP] 2, a 3) whose post_processor puts the
    special token cls first and [SEP] last; special_tokens: its map (None: left out)."""
    if kind == 'TemplateProcessing':
        pp = {'type': kind, 'single': [{'SpecialToken': {'id': cls, 'type_id': 0}},
                                       {'Sequence': {'id': 'A', 'type_id': 0}},
                                       {'SpecialToken': {'id': '[SEP]', 'type_id': 0}}], 'pair': []}
        if special_tokens is not None:
            pp['special_tokens'] = special_tokens
    else:
        pp = {'type': kind, 'cls': cls, 'sep': ['[SEP]', 2]}
    return json.dumps({'model': {'type': 'WordPiece', 'vocab': {'[UNK]': 0, '[CLS]': 1, '[SEP]': 2, 'a': 3}},
                       'post_processor': pp})


SEP_ONLY = {'[SEP]': {'id': '[SEP]', 'ids': [2], 'tokens': ['[SEP]']}}

BERT_CASES = [
    C('bert relative positions', edit_config(lambda c: c.update(position_embedding_type='relative_key')),
      ['position_embedding_type']),
    C('bert hidden_act relu', edit_config(lambda c: c.update(hidden_act='relu')), ['hidden_act']),
    # a BERT made a decoder: transformers masks it causally (qkv ran it bidirectional, silently)
    C('bert is_decoder', edit_config(lambda c: c.update(is_decoder=True)), ['is_decoder']),
    C('bert type_vocab_size 0', edit_config(lambda c: c.update(type_vocab_size=0)), ['type_vocab_size']),
    C('bert without its MLM head', rename_tensor('cls.predictions.bias', 'cls.predictions.biases'),
      ['cls.predictions.bias']),
    C('bert num_hidden_layers below the layers held', edit_config(lambda c: c.update(num_hidden_layers=1)),
      ['1 layer', 'hold 2', 'bert.encoder.layer.1.']),
    C('bert query missing', rename_tensor('bert.encoder.layer.0.attention.self.query.weight', 'bert.x'), ['query']),
    C('modules.json broken', put('modules.json', '[{"type": "sentence_transformers.models.Pooling", "path":'),
      ['modules.json']),
    C('a pooling mode qkv lacks', lambda d: (put('modules.json', json.dumps(
        [{'type': 'sentence_transformers.models.Pooling', 'path': '1_Pooling'}]))(d), os.makedirs(
        os.path.join(d, '1_Pooling'), exist_ok=True), put('1_Pooling/config.json', json.dumps(
            {'pooling_mode_weightedmean_tokens': True}))(d)), ['pooling']),
    # sentence-transformers settings read otherwise than sentence-transformers reads them (each
    # was taken silently: mean pooling, or no length cap)
    C('modules.json not a list', put('modules.json', '{"0": "Pooling"}'), ['modules.json', 'list of modules']),
    C('a Pooling module without its config', put('modules.json', json.dumps(
        [{'type': 'sentence_transformers.models.Pooling', 'path': '9_Gone'}])), ['9_Gone/config.json']),
    C('a Pooling module with no mode', st_pooling({'pooling_mode_cls_token': False}), ['no pooling mode']),
    C('a Pooling module with three modes', st_pooling({'pooling_mode_cls_token': True, 'pooling_mode_mean_tokens': True,
                                                       'pooling_mode_max_tokens': True}), ['cls and mean at once']),
    C('max_seq_length 0', st_pooling({'pooling_mode_mean_tokens': True}, '{"max_seq_length": 0}'),
      ['max_seq_length']),
    C('max_seq_length -5', st_pooling({'pooling_mode_mean_tokens': True}, '{"max_seq_length": -5}'),
      ['max_seq_length']),
    C('max_seq_length "256"', st_pooling({'pooling_mode_mean_tokens': True}, '{"max_seq_length": "256"}'),
      ['max_seq_length']),
    C('vocab.txt missing its [UNK]', put('vocab.txt', 'a\nb\nc\n'), ['[UNK]', 'vocab.txt']),
    # a download cut short mid-line: it loaded, the words past the cut tokenized otherwise, silently
    C('vocab.txt cut short', cut_vocab, ['has 80 tokens, the model 161', 'vocab.txt ends inside a line',
                                         'cut short']),
    # a WordPiece tokenizer.json's limits as HF tokenizers reads them (a usize; -1 ran with every
    # word [UNK]) and a continuation prefix longer than qkv keeps (it was cut to 15 bytes)
    C('wordpiece max_input_chars_per_word -1', put('tokenizer.json', json.dumps(
        {'model': {'type': 'WordPiece', 'vocab': {'[UNK]': 0, 'a': 1}, 'max_input_chars_per_word': -1}})),
      ['max_input_chars_per_word', 'whole number']),
    C('wordpiece max_input_chars_per_word 1.5', put('tokenizer.json', json.dumps(
        {'model': {'type': 'WordPiece', 'vocab': {'[UNK]': 0, 'a': 1}, 'max_input_chars_per_word': 1.5}})),
      ['max_input_chars_per_word', 'whole number']),
    C('wordpiece continuation prefix of 20 bytes', put('tokenizer.json', json.dumps(
        {'model': {'type': 'WordPiece', 'vocab': {'[UNK]': 0, 'a': 1}, 'continuing_subword_prefix': '#' * 20}})),
      ['continuing_subword_prefix', '20 bytes', 'at most 15']),
    # a post_processor's special token that resolves to no token is refused naming it, as HF
    # tokenizers cannot use such a file (it was dropped: texts went in without their [CLS])
    C('template token missing from special_tokens', put('tokenizer.json', wp_template('[XCLS]', SEP_ONLY)),
      ["special token '[XCLS]'"]),
    C('template token id past the vocabulary', put('tokenizer.json', wp_template('[CLS]', dict(
        SEP_ONLY, **{'[CLS]': {'id': '[CLS]', 'ids': [99], 'tokens': ['[CLS]']}}))),
      ["special token '[CLS]' is id 99"]),
    C('template token of two ids', put('tokenizer.json', wp_template('[CLS]', dict(
        SEP_ONLY, **{'[CLS]': {'id': '[CLS]', 'ids': [1, 3], 'tokens': ['[CLS]', 'a']}}))),
      ["special token '[CLS]' stands for 2 ids"]),
    C('template token not in the vocabulary, no special_tokens', put('tokenizer.json', wp_template('[XCLS]', None)),
      ["special token '[XCLS]'"]),
    C('BertProcessing cls id past the vocabulary', put('tokenizer.json', wp_template(['[CLS]', 99], None,
                                                                                     'BertProcessing')),
      ["special token '[CLS]' is id 99"]),
]


def template_ids(qkv, base, db, tmp):
    """A template's special token is the id its special_tokens map gives, as in HF tokenizers,
    whether or not the vocabulary holds its name: [XCLS] mapped to 1 puts 1 first."""
    work = os.path.join(tmp, 'template-ids')
    shutil.copytree(base, work)
    put('tokenizer.json', wp_template('[XCLS]', dict(
        SEP_ONLY, **{'[XCLS]': {'id': '[XCLS]', 'ids': [1], 'tokens': ['[XCLS]']}})))(work)
    p = qkv_cli.run(qkv, ['--model', work, '--db', db, '--json', '-e', 'tokenize "a"'], timeout=60)
    ids = json.loads(p.stdout)['ids'] if p.returncode == 0 else None
    if ids != [1, 3, 2]:
        bf.fail('a template special token mapped to id 1: ids %r, expected [1, 3, 2] (%s)' % (ids, p.stderr.strip()))
    else:
        print('ok   %-45s %r' % ('template special token by its special_tokens id', ids))
    return 1


def llama2c_cases(story):
    """Broken copies of a llama2.c checkpoint: the header must match the size exactly."""
    with open(story, 'rb') as f:
        raw = f.read()
    hdr = list(struct.unpack('<7i', raw[:28]))

    def write(data):
        def m(d):
            with open(os.path.join(d, 'model.bin'), 'wb') as f:
                f.write(data)
        return m

    def header(**kw):
        h = hdr[:]
        for i, k in enumerate(('dim', 'hidden', 'layers', 'heads', 'kv', 'vocab', 'seq')):
            if k in kw:
                h[i] = kw[k]
        return struct.pack('<7i', *h) + raw[28:]

    return [
        # cut short or padded, the header still reads: the message says which and by how much
        C('llama2.c truncated', write(raw[:-4]), ['llama2.c checkpoint cut short', 'needs %d bytes, the file has %d'
                                                   % (len(raw), len(raw) - 4)]),
        C('llama2.c cut at 1000 bytes', write(raw[:1000]), ['llama2.c checkpoint cut short', 'the file has 1000']),
        C('llama2.c one byte too many', write(raw + b'\0'), ['1 bytes longer than the llama2.c checkpoint']),
        C('llama2.c header only', write(raw[:28]), ['llama2.c checkpoint cut short', 'the file has 28']),
        C('llama2.c part of a header', write(raw[:20]), ['20 bytes, too short for a llama2.c checkpoint']),
        C('llama2.c absurd dim', write(header(dim=1 << 30)), ['not a llama2.c checkpoint']),
        C('llama2.c heads not dividing dim', write(header(heads=7)), ['not a llama2.c checkpoint']),
        C('llama2.c negative layers', write(header(layers=-5)), ['not a llama2.c checkpoint']),
        # a negative vocabulary marks an untied classifier; -2^31 has no positive twin (its negation
        # overflowed: seen by UBSan only, the message was the same)
        C('llama2.c vocabulary -2^31', write(header(vocab=-2 ** 31)), ['not a llama2.c checkpoint']),
        C('llama2.c empty file', write(b''), ['0 bytes, too short for a llama2.c checkpoint']),
    ]


def untyped_configs(qkv, bases, db, tmp):
    """config.json without model_type but naming its class in "architectures" (LlamaForCausalLM,
    BertModel): the model loads as its family and gives the same logits / embedding."""
    checks = (('llama', 'logits "the cat" top=3'), ('bert', 'embed "the cat"'))
    for name, cmd in checks:
        work = os.path.join(tmp, 'untyped-' + name)
        shutil.copytree(bases[name], work)
        edit_config(lambda c: c.pop('model_type'))(work)
        a = qkv_cli.run(qkv, ['--model', bases[name], '--db', db, '--json', '-e', cmd], timeout=60)
        b = qkv_cli.run(qkv, ['--model', work, '--db', db, '--json', '-e', cmd], timeout=60)
        if b.returncode != 0 or a.returncode != 0 or a.stdout != b.stdout:
            bf.fail('%s without model_type: %s\n  %s\n  against %s' % (name, b.stderr.strip()[:300], b.stdout[:300],
                                                                       a.stdout[:300]))
        else:
            print('ok   %-45s (loaded, same result)' % (name + ' without model_type'))
    return len(checks)


def run_cases(qkv, cases, base, db, tmp, model_file=None):
    for i, case in enumerate(cases):
        work = os.path.join(tmp, 'case-%s-%d' % (os.path.basename(base), i))
        shutil.copytree(base, work)
        case.mutate(work)
        bf.check(qkv, case, os.path.join(work, model_file) if model_file else work, db)
        shutil.rmtree(work, ignore_errors=True)


def main():
    qkv = qkv_cli.qkv_path()
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix='qkv-badfamilies-')
    n = 0
    try:
        db = os.path.join(tmp, 'qkv.db')
        bases = {}
        for name, words in (('llama', 'llama layers=2 heads=4 kv_heads=2 d=64 ctx=64 seed=1 tied=true'),
                            ('bert', 'bert layers=2 heads=2 d=32 ctx=32 seed=2 prefix=bert.')):
            out = os.path.join(tmp, name)
            p = qkv_cli.new_model(qkv, words.split() + ['out=' + out], db)
            if p.returncode != 0:
                bf.fail('new-model %s: %s' % (words, p.stderr.strip()))
                return 1
            bases[name] = out
        run_cases(qkv, LLAMA_CASES, bases['llama'], db, tmp)
        run_cases(qkv, BERT_CASES, bases['bert'], db, tmp)
        n = len(LLAMA_CASES) + len(BERT_CASES) + untyped_configs(qkv, bases, db, tmp)
        n += template_ids(qkv, bases['bert'], db, tmp)
        shared = os.environ.get('QKV_SHARED_MODELS', '')
        story = os.path.join(shared, 'llama2c-stories260k', 'stories260K.bin')
        if os.path.exists(story):
            base = os.path.join(tmp, 'l2c')
            os.makedirs(base)
            shutil.copy(story, os.path.join(base, 'model.bin'))
            shutil.copy(os.path.join(os.path.dirname(story), 'tok512.bin'), os.path.join(base, 'tokenizer.bin'))
            cases = llama2c_cases(story)
            run_cases(qkv, cases, base, db, tmp, 'model.bin')
            n += len(cases)
            # a llama2.c checkpoint whose tokenizer is missing, or is not one
            work = os.path.join(tmp, 'l2c-notok')
            shutil.copytree(base, work)
            os.remove(os.path.join(work, 'tokenizer.bin'))
            bf.check(qkv, C('llama2.c without its tokenizer', None, ['tokenizer']), os.path.join(work, 'model.bin'), db)
            with open(os.path.join(work, 'tokenizer.bin'), 'wb') as f:
                f.write(b'\x10\x00\x00\x00' + b'\xff' * 10)
            bf.check(qkv, C('llama2.c with a broken tokenizer', None, ['tokenizer.bin']), os.path.join(work, 'model.bin'),
                     db)
            # cut short at a token's end: 332 of the 512 tokens (it loaded, and ids past its end
            # decoded to nothing)
            with open(os.path.join(os.path.dirname(story), 'tok512.bin'), 'rb') as f:
                raw = f.read()
            with open(os.path.join(work, 'tokenizer.bin'), 'wb') as f:
                f.write(raw[:4389])
            bf.check(qkv, C('llama2.c with its tokenizer cut short', None, ['332 tokens', 'cut short']),
                     os.path.join(work, 'model.bin'), db)
            n += 3
        else:
            print('(llama2.c cases skipped: %s is absent)' % story)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('badfamilies: %d cases, %d failure(s), %.1f s' % (n, len(bf.failures), time.time() - t0))
    return 1 if bf.failures else 0


if __name__ == '__main__':
    sys.exit(main())
