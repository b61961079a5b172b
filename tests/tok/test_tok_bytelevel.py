#!/usr/bin/env python3
# test_tok_bytelevel.py - suite 'reference': qkv's byte-level BPE from tokenizer.json against HF
# tokenizers, live, in every pre-tokenizer style qkv reads.
#
# The tokenizer.json files are trained at test time by HF tokenizers itself (BpeTrainer, 1,000
# tokens, on a seeded corpus of English-like words and broad Unicode), one per family, laid out
# as the published files are:
#   llama3  Split(Llama 3's regex) + ByteLevel without its regex, ignore_merges, and a
#           TemplateProcessing that puts <|begin_of_text|> first;
#   qwen2   the NFC normalizer, Split(Qwen2's regex) + ByteLevel without its regex;
#   smollm  Digits(individual_digits) + ByteLevel with GPT-2's regex;
#   gpt2    ByteLevel alone; gpt2-prefix the same with add_prefix_space;
# each with special added tokens (<|endoftext|>, <|im_start|>, ...), a non-special one, and added
# tokens with lstrip, rstrip, single_word and normalized (found after NFC in Qwen2's); and the
# real GPT-2 vocabulary ($QKV_SHARED_MODELS/gpt2-bpe-tokenizer) written as a tokenizer.json by HF
# tokenizers (BPE + ByteLevel, <|endoftext|> special).
# On every string of tokref.cases() (GPT-2's white space, contractions, digits, runs and
# ill-formed UTF-8 cases) and unicases.all_cases() (every block, marks, CJK, controls, ...):
# `tokenize ... special=true` against encode(text), `special=false` against
# encode(text, add_special_tokens=False) on the strings without added-token text. The golden
# files golden/bytelevel-*.jsonl, for the committed fixtures tests/tok/fixtures/*/tokenizer.json
# (trained the same way by gen_tok_golden.py), must be what HF gives today.
# Skips (77) without the test environment unless QKV_REQUIRE_REFS=1.
# Usage: test_tok_bytelevel.py [QKV_BINARY]

import json
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tokref  # noqa: E402
import tokrun  # noqa: E402
import unicases  # noqa: E402
import qkv_cli  # noqa: E402
import refenv  # noqa: E402

SEED = 20261209
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
SPECIAL = {'llama3': ['<|begin_of_text|>', '<|end_of_text|>', '<|eot_id|>', '<|start_header_id|>',
                      '<|end_header_id|>'],
           'qwen2': ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
           'smollm': ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
           'gpt2': ['<|endoftext|>'], 'gpt2-prefix': ['<|endoftext|>']}
PLAIN_ADDED = '<tool>'  # a non-special added token: recognised in text with or without special=true
# added tokens with tokenizer.json's flags: (content, special, lstrip, rstrip, single_word, normalized)
FLAGGED = [('<l>', False, True, False, False, False), ('<r>', False, False, True, False, False),
           ('<lr>', True, True, True, False, False), ('word', False, False, False, True, False),
           ('cafe\u0301', False, False, False, False, True), ('<n> x', False, True, False, False, True)]
ADDED = [PLAIN_ADDED] + [f[0] for f in FLAGGED] + ['café']
FAMILIES = ['llama3', 'qwen2', 'smollm', 'gpt2', 'gpt2-prefix']


def corpus(seed):
    r = random.Random(seed)
    words = ('the of and to in is was he she it capital paris france city cat dog sat on mat once upon a '
             'time there little girl named lily 1234 56789 2024 3.14 don\'t I\'m we\'ll they\'ve DON\'T '
             'éclair naïve Straße 東京 日本語 привет мир 😀 👍🏽 \n\n \r\n  \t hello world ...').split(' ')
    out = [' '.join(r.choice(words) for _ in range(r.randint(1, 30))) for _ in range(3000)]
    out += unicases.mixed(r, 2000)
    return out


def train(family, out_dir, seed=SEED):
    """Train family's tokenizer.json into out_dir/family/tokenizer.json; return its path."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, \
        processors, trainers
    bl = pre_tokenizers.ByteLevel
    if family == 'llama3':
        pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3), 'isolated'),
                                       bl(add_prefix_space=False, use_regex=False)])
    elif family == 'qwen2':
        pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2), 'isolated'),
                                       bl(add_prefix_space=False, use_regex=False)])
    elif family == 'smollm':
        pre = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                       bl(add_prefix_space=False, use_regex=True)])
    else:
        pre = bl(add_prefix_space=family == 'gpt2-prefix')
    t = Tokenizer(models.BPE(ignore_merges=family == 'llama3'))
    t.pre_tokenizer = pre
    t.decoder = decoders.ByteLevel()
    if family == 'qwen2':
        t.normalizer = normalizers.NFC()
    tr = trainers.BpeTrainer(vocab_size=1000, initial_alphabet=bl.alphabet(), special_tokens=SPECIAL[family],
                             show_progress=False)
    t.train_from_iterator(corpus(seed), tr)
    t.add_tokens([AddedToken(PLAIN_ADDED, special=False, normalized=False)])
    for content, special, lstrip, rstrip, single_word, normalized in FLAGGED:
        tok = AddedToken(content, special=special, lstrip=lstrip, rstrip=rstrip, single_word=single_word,
                         normalized=normalized)
        (t.add_special_tokens if special else t.add_tokens)([tok])
    if family == 'llama3':
        t.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single='<|begin_of_text|> $A', pair='<|begin_of_text|> $A <|begin_of_text|> $B',
                                          special_tokens=[('<|begin_of_text|>', t.token_to_id('<|begin_of_text|>'))])])
    else:
        t.post_processor = processors.ByteLevel(trim_offsets=False)
    d = os.path.join(out_dir, family)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, 'tokenizer.json')
    t.save(path)
    return path


def gpt2_json(out_dir):
    """The real GPT-2 vocabulary as a tokenizer.json (HF tokenizers' BPE + ByteLevel), or None."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    src = os.path.join(tokrun.shared_models(), 'gpt2-bpe-tokenizer')
    if not os.path.exists(os.path.join(src, 'encoder.json')):
        return None
    with open(os.path.join(src, 'encoder.json'), encoding='utf-8') as f:
        vocab = json.load(f)
    with open(os.path.join(src, 'vocab.bpe'), encoding='utf-8') as f:
        merges = [tuple(line.split(' ')) for line in f.read().split('\n')[1:] if line]
    t = Tokenizer(models.BPE(vocab, merges))
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    t.post_processor = processors.ByteLevel(trim_offsets=False)
    t.add_special_tokens([AddedToken('<|endoftext|>', special=True)])
    d = os.path.join(out_dir, 'gpt2-real')
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, 'tokenizer.json')
    t.save(path)
    return path


def hf_encoder(path):
    import tokenizers
    hf = tokenizers.Tokenizer.from_file(path)
    return lambda t, special: hf.encode(tokrun.as_bytes(t).decode('utf-8', 'replace'),
                                        add_special_tokens=special).ids


def texts(seed=SEED, n_mixed=6000):
    tokens = sorted(set(sum(SPECIAL.values(), [])) | set(ADDED))
    out, seen = [], set()
    for t in tokref.cases(seed, 3000) + [s.encode('utf-8') for s in unicases.all_cases(seed, n_mixed, tokens)]:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def items_of(ts, added):
    """(text, special) pairs: all texts with special=true; without, those holding no added-token text."""
    added = [a.encode('utf-8') for a in added]
    return [(t, True) for t in ts] + [(t, False) for t in ts if not any(a in t for a in added)]


def golden_specs(regen=False):
    """For gen_tok_golden.py: [(name, header, reference, items)] for the fixtures
    tests/tok/fixtures/FAMILY/tokenizer.json, trained first when regen."""
    ts = texts()
    specs = []
    for fam in FAMILIES:
        path = train(fam, tokrun.FIXTURES) if regen else os.path.join(tokrun.FIXTURES, fam, 'tokenizer.json')
        items = tokrun.sample([(t, True) for t in ts], 1200) + tokrun.sample(
            [it for it in items_of(ts[::5], SPECIAL[fam] + ADDED) if not it[1]], 300)
        head = {'tokenizer': 'fixture:%s/tokenizer.json' % fam, 'reference': 'HF tokenizers'}
        specs.append(('bytelevel-' + fam, head, hf_encoder(path), items))
    return specs


def main():
    qkv = qkv_cli.qkv_path()
    refenv.need('tokenizers')
    t0 = time.time()
    rep = tokrun.Report()
    ts = texts()
    with tempfile.TemporaryDirectory(prefix='qkv-bl-') as tmp:
        paths = [(fam, train(fam, tmp), SPECIAL[fam] + ADDED) for fam in FAMILIES]
        real = gpt2_json(tmp)
        if real:
            paths.append(('gpt2-real', real, ['<|endoftext|>']))
        else:
            print('note: the real GPT-2 vocabulary is absent: gpt2-real not checked')
        for fam, path, added in paths:
            rep.check(qkv, fam, path, items_of(ts, added), hf_encoder(path), 'HF tokenizers')
    for fam in FAMILIES:
        fixture = os.path.join(tokrun.FIXTURES, fam, 'tokenizer.json')
        if not os.path.exists(fixture):
            rep.fail('fixture %s is missing (QKV_REGEN_GOLDEN=1 tests/tok/gen_tok_golden.py writes it)' % fixture)
            continue
        enc = hf_encoder(fixture)
        tokrun.check_golden(rep, 'bytelevel-' + fam, lambda b, s: enc(b, s))
    return rep.summary('byte-level BPE references: %d strings' % len(ts), t0)


if __name__ == '__main__':
    sys.exit(main())
