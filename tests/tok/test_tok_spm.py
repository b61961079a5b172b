#!/usr/bin/env python3
# test_tok_spm.py - suite 'reference': qkv's SentencePiece-style BPE against its references, live,
# on the real llama2.c vocabulary ($QKV_SHARED_MODELS/llama2c-stories260k: tok512.model and the
# same vocabulary as llama2.c's tok512.bin).
#
# 1. tokenizer.json files converted from tok512.model by transformers (a directory holding it as
#    tokenizer.model with tokenizer_config.json {"tokenizer_class": "LlamaTokenizer", "legacy":
#    true|false}, loaded by AutoTokenizer and saved), against HF tokenizers on those files:
#      spm-legacy     the legacy conversion: Metaspace pre-tokenizer, prepend_scheme "always";
#      spm-first      the non-legacy one: Metaspace, prepend_scheme "first";
#      spm-prepend    the layout of the Llama 2 files on the hub: normalizer Prepend("▁") +
#                     Replace(" ", "▁"), no pre-tokenizer, a TemplateProcessing "<s> $A";
#      spm-first-bos  spm-first with that template (the layout of Mistral's files);
#      spm-unk        spm-prepend without byte fallback: characters the vocabulary lacks are
#                     <unk>, consecutive ones fused into one (fuse_unk), as the converted model says;
#      spm-normalized spm-prepend with its special tokens found after normalization ("normalized":
#                     true, as early Llama conversions have them: "<s>" is then "\u2581<s>"), and
#                     added tokens with lstrip + rstrip, normalized, single_word, and byte-fallback
#                     pieces (<0xAA>, <0x41>) as non-special added tokens, found by their text.
#    (The last three are the converted file with those parts rewritten.)
# 2. GGUF vocabularies (tokenizer.ggml.model "llama": pieces, scores, token types from
#    tok512.model) with tokenizer.ggml.add_space_prefix true and false, against spm-first and
#    spm-first with prepend_scheme "never" (llama.cpp adds no U+2581 before the text when false);
#    special=true on the strings with "<unk>" (typed unknown), "<s>", "</s>" too: llama.cpp and HF
#    split all three out of text.
# 3. llama2.c's tok512.bin against sentencepiece on tok512.model, with BOS (special=true against
#    add_bos=True) and without (special=false against add_bos=False). tok512.model's normalizer
#    removes extra white space (leading and repeated ' ', trailing ' ' and U+2581); a tokenizer.bin does not record
#    that and qkv, like llama2.c, keeps every space: qkv is given the text as that normalizer leaves
#    it (the same text for most strings; the count is printed).
# Strings: tokref.cases() and unicases.all_cases() with "<s>", "</s>", "<unk>" and U+2581 inside
# text. special=false is compared on the strings without special-token text (HF splits those out
# even then; sentencepiece never does, so the BOS comparison skips them too).
# The golden file golden/spm-bin.jsonl (sentencepiece's ids for tok512.bin) must be what
# sentencepiece gives today; the converted files have none (it would copy the vocabulary here).
# Skips (77) without the vocabulary, or without the test environment unless QKV_REQUIRE_REFS=1.
# Usage: test_tok_spm.py [QKV_BINARY]

import copy
import json
import os
import re
import shutil
import sys
import tempfile
import time

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_VERBOSITY', 'error')

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tokref  # noqa: E402
import tokrun  # noqa: E402
import unicases  # noqa: E402
import qkv_cli  # noqa: E402
import refenv  # noqa: E402

SEED = 20261211
SPECIALS = ['<s>', '</s>', '<unk>', '<pad>']
OTHER_ADDED = ['Lily', 'once upon', '<0xAA>', '<0x41>']
GOLDEN = 'spm-bin'


def stories_dir():
    return os.path.join(tokrun.shared_models(), 'llama2c-stories260k')


def texts():
    extra = ['', ' ', '  ', 'a', ' a', 'a ', 'a  b', '  a', 'a\tb', '\ta', 'a\n\nb', 'Once upon a time',
             'Once upon a time, there was a little girl named Lily.', '\u2581', '\u2581a', 'a\u2581\u2581b',
             ' \u2581 ', 'x\u3000y', '\u00a0a', 'Lily<s>Tom', '<s> <s>', '</s>\n<s>']
    out, seen = [], set()
    for t in [e.encode('utf-8') for e in extra] + tokref.cases(SEED, 3000) + [
            s.encode('utf-8') for s in unicases.all_cases(SEED, 6000, SPECIALS + OTHER_ADDED + ['\u2581', ' \u2581'])]:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def has_special(b):
    return any(s.encode() in b for s in SPECIALS)


def convert(tmp, legacy):
    """tok512.model converted by transformers (legacy or not); the tokenizer.json path."""
    import transformers
    src = os.path.join(tmp, 'model-%s' % legacy)
    os.makedirs(src)
    shutil.copy(os.path.join(stories_dir(), 'tok512.model'), os.path.join(src, 'tokenizer.model'))
    with open(os.path.join(src, 'tokenizer_config.json'), 'w') as f:
        json.dump({'tokenizer_class': 'LlamaTokenizer', 'legacy': legacy}, f)
    out = os.path.join(tmp, 'spm-legacy' if legacy else 'spm-first')
    transformers.AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return os.path.join(out, 'tokenizer.json')


def rewrite(tmp, base, name, edit):
    """A copy of the tokenizer.json base with edit(json) applied, as tmp/name/tokenizer.json."""
    with open(base, encoding='utf-8') as f:
        j = json.load(f)
    j = copy.deepcopy(j)
    edit(j)
    os.makedirs(os.path.join(tmp, name))
    path = os.path.join(tmp, name, 'tokenizer.json')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(j, f, ensure_ascii=False)
    return path


BOS_TEMPLATE = {'type': 'TemplateProcessing',
                'single': [{'SpecialToken': {'id': '<s>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}}],
                'pair': [{'SpecialToken': {'id': '<s>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}},
                         {'SpecialToken': {'id': '<s>', 'type_id': 1}}, {'Sequence': {'id': 'B', 'type_id': 1}}],
                'special_tokens': {'<s>': {'id': '<s>', 'ids': [1], 'tokens': ['<s>']}}}
PREPEND = {'type': 'Sequence', 'normalizers': [{'type': 'Prepend', 'prepend': '\u2581'},
                                               {'type': 'Replace', 'pattern': {'String': ' '}, 'content': '\u2581'}]}


def llama2_layout(j):
    j['normalizer'] = copy.deepcopy(PREPEND)
    j['pre_tokenizer'] = None
    j['post_processor'] = copy.deepcopy(BOS_TEMPLATE)


def mistral_layout(j):
    j['post_processor'] = copy.deepcopy(BOS_TEMPLATE)


def unk_layout(j):
    llama2_layout(j)
    j['model']['byte_fallback'] = False
    j['model']['unk_token'] = '<unk>'
    j['model']['fuse_unk'] = True


EXTRA_ADDED = [{'id': 512, 'content': '<pad>', 'special': True, 'lstrip': True, 'rstrip': True},
               {'id': 513, 'content': 'Lily', 'special': False, 'normalized': True},
               {'id': 514, 'content': 'once upon', 'special': False, 'normalized': True, 'single_word': True}]

BYTE_ADDED = [('<0xAA>', False), ('<0x41>', True)]


def normalized_layout(j):
    """The Llama 2 layout with added tokens found after normalization (normalized: true, as in early
    Llama conversions), and added tokens with lstrip, rstrip and single_word."""
    llama2_layout(j)
    for a in j['added_tokens']:
        a['normalized'] = True
    for a in EXTRA_ADDED:
        j['added_tokens'].append(dict({'single_word': False, 'lstrip': False, 'rstrip': False, 'normalized': False},
                                      **a))
    # byte-fallback pieces as non-special added tokens: found by their text "<0xNN>", not their byte
    for piece, normalized in BYTE_ADDED:
        j['added_tokens'].append({'id': j['model']['vocab'][piece], 'content': piece, 'special': False,
                                  'single_word': False, 'lstrip': False, 'rstrip': False, 'normalized': normalized})


def tokenizer_files(tmp):
    legacy, first = convert(tmp, True), convert(tmp, False)
    return [('spm-legacy', legacy), ('spm-first', first),
            ('spm-prepend', rewrite(tmp, legacy, 'spm-prepend', llama2_layout)),
            ('spm-first-bos', rewrite(tmp, first, 'spm-first-bos', mistral_layout)),
            ('spm-unk', rewrite(tmp, legacy, 'spm-unk', unk_layout)),
            ('spm-normalized', rewrite(tmp, legacy, 'spm-normalized', normalized_layout))]


def gguf_vocab(tmp, space_prefix):
    """tok512.model's vocabulary as a GGUF holding only tokenizer metadata."""
    import gguf
    import sentencepiece
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(stories_dir(), 'tok512.model'))
    n = sp.get_piece_size()
    types = [gguf.TokenType.UNKNOWN if sp.is_unknown(i) else gguf.TokenType.CONTROL if sp.is_control(i)
             else gguf.TokenType.BYTE if sp.is_byte(i) else gguf.TokenType.NORMAL for i in range(n)]
    path = os.path.join(tmp, 'vocab-space-%s.gguf' % space_prefix)
    w = gguf.GGUFWriter(path, 'llama')
    w.add_tokenizer_model('llama')
    w.add_token_list([sp.id_to_piece(i) for i in range(n)])
    w.add_token_scores([sp.get_score(i) for i in range(n)])
    w.add_token_types(types)
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_add_bos_token(False)
    w.add_add_space_prefix(space_prefix)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def never_layout(j):
    j['pre_tokenizer']['prepend_scheme'] = 'never'


def hf_encoder(path):
    import tokenizers
    hf = tokenizers.Tokenizer.from_file(path)
    return lambda t, special: hf.encode(tokrun.as_bytes(t).decode('utf-8', 'replace'),
                                        add_special_tokens=special).ids


def ws_normalize(b):
    """tok512.model's remove_extra_whitespaces as sentencepiece does it: leading spaces removed,
    runs of spaces made one, trailing spaces and U+2581 removed (U+2581 elsewhere stays)."""
    b = re.sub(b' +', b' ', b.lstrip(b' '))
    meta = '\u2581'.encode()
    while b.endswith(b' ') or b.endswith(meta):
        b = b[:-1] if b.endswith(b' ') else b[:-len(meta)]
    return b


def sp_encoder():
    import sentencepiece
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(stories_dir(), 'tok512.model'))
    return lambda t, special: sp.encode(tokrun.as_bytes(t).decode('utf-8', 'replace'), add_bos=special)


def bin_items(ts):
    """(text as qkv gets it, special) for the llama2.c comparison: the normalized text."""
    return [(ws_normalize(t), s) for t in ts for s in (True, False) if not has_special(t)]


def golden_specs(regen=False):
    ts = texts()
    items = tokrun.sample(bin_items(ts), 3000)
    head = {'tokenizer': 'shared:llama2c-stories260k/tok512.bin', 'reference': 'sentencepiece (tok512.model)'}
    return [(GOLDEN, head, sp_encoder(), items)]


def main():
    qkv = qkv_cli.qkv_path()
    if not os.path.exists(os.path.join(stories_dir(), 'tok512.model')):
        print('SKIP: %s absent (the llama2.c vocabulary)' % stories_dir())
        return 77
    refenv.need('tokenizers', 'transformers', 'sentencepiece', 'google.protobuf', 'gguf')
    t0 = time.time()
    rep = tokrun.Report()
    ts = texts()
    with tempfile.TemporaryDirectory(prefix='qkv-spm-') as tmp:
        for name, path in tokenizer_files(tmp):
            items = [(t, True) for t in ts] + [(t, False) for t in ts if not has_special(t)]
            rep.check(qkv, name, path, items, hf_encoder(path), 'HF tokenizers')
            if name == 'spm-first':  # GGUF vocabularies with and without the space prefix
                never = rewrite(tmp, path, 'spm-never', never_layout)
                for space, ref in ((True, path), (False, never)):
                    rep.check(qkv, 'gguf add_space_prefix=%s' % str(space).lower(), gguf_vocab(tmp, space), items,
                              hf_encoder(ref), 'HF tokenizers, prepend_scheme %s' % ('first' if space else 'never'))
    sp = sp_encoder()
    want = [sp(t, s) for t in ts for s in (True, False) if not has_special(t)]
    rep.check(qkv, 'tok512.bin', os.path.join(stories_dir(), 'tok512.bin'), bin_items(ts), want,
              'sentencepiece on tok512.model')
    tokrun.check_golden(rep, GOLDEN, sp)
    n_norm = sum(1 for t in ts if not has_special(t) and ws_normalize(t) != t)
    return rep.summary('SentencePiece-style references: %d strings (tok512.bin: %d of them given as the .model\'s '
                       'normalizer leaves them, with extra white space removed)' % (len(ts), n_norm), t0)


if __name__ == '__main__':
    sys.exit(main())
