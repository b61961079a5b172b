# tokref.py - the GPT-2 tokenizer's reference implementations, built from the local vocabulary
# only, and the test strings they are compared on.
#
# references(tokdir) builds, from encoder.json (= vocab.json) and vocab.bpe (= merges.txt):
#   - tiktoken: tiktoken.Encoding with GPT-2's pattern, mergeable ranks = the bytes of each
#     token (through GPT-2's byte decoder) -> its id, and <|endoftext|> = 50256. Nothing is
#     downloaded (no tiktoken.get_encoding).
#   - HF tokenizers: a BPE model from the vocabulary and merges with the ByteLevel pre-tokenizer
#     (add_prefix_space=False, GPT-2's regex), as the published tokenizer.json configures it.
# Each encodes plain text: special-token text is ordinary text (qkv's `tokenize ... special=false`).
# Bytes that are not well-formed UTF-8 reach them as Python decodes them ('replace': one U+FFFD
# per maximal ill-formed subpart), as qkv reads them.
#
# cases(seed, n) gives a fixed list (every White_Space code point, U+FEFF, U+200B, U+180E and
# other look-alikes, scripts, combining marks, emoji with ZWJ and skin tones, digits of other
# scripts, contractions in odd cases, long runs of spaces and newlines, ill-formed UTF-8) and n
# strings from a seeded generator over the same pools: the same bytes on every run.

import json
import os
import random
import sys

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ENDOFTEXT = '<|endoftext|>'


def byte_decoder():
    """GPT-2's printable character -> byte map (the inverse of its bytes_to_unicode)."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def references(tokdir):
    """(encode_tiktoken, encode_hf): functions bytes -> list of ids, built from tokdir's files."""
    import tiktoken
    from tokenizers import Tokenizer, models, pre_tokenizers
    with open(os.path.join(tokdir, 'encoder.json'), encoding='utf-8') as f:
        vocab = json.load(f)
    dec = byte_decoder()
    ranks = {bytes(dec[ch] for ch in tok): i for tok, i in vocab.items() if tok != ENDOFTEXT}
    enc = tiktoken.Encoding(name='gpt2-local', pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                            special_tokens={ENDOFTEXT: vocab[ENDOFTEXT]})
    with open(os.path.join(tokdir, 'vocab.bpe'), encoding='utf-8') as f:
        merges = [tuple(line.split(' ')) for line in f.read().split('\n')[1:] if line]
    hf = Tokenizer(models.BPE(vocab, merges))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)

    def encode_tiktoken(b):
        return enc.encode_ordinary(b.decode('utf-8', 'replace'))

    def encode_hf(b):
        return hf.encode(b.decode('utf-8', 'replace'), add_special_tokens=False).ids

    return encode_tiktoken, encode_hf


# ---- the strings ----

# Unicode White_Space (all 25), then look-alikes that are NOT white space
WHITE_SPACE = [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680] + list(range(0x2000, 0x200B)) + \
    [0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
NOT_WHITE_SPACE = [0xFEFF, 0x200B, 0x180E, 0x200C, 0x200D, 0x2060, 0x1C, 0x1D, 0x1E, 0x1F, 0x00, 0x7F, 0xAD,
                   0x115F, 0x3164, 0xFFA0, 0x2800, 0xE0020]
WS = [chr(c) for c in WHITE_SPACE]
NOT_WS = [chr(c) for c in NOT_WHITE_SPACE]
WORDS = ['the', 'The', 'THE', 'hello', 'world', 'a', 'I', 'is', 'ing', 'disestablishment', 'café', 'naïve',
         'straße', 'İstanbul', 'ǅemal', 'ﬁne', 'Ω', 'πάντα', 'мир', 'Москва', 'ქართული', 'Հայերեն', 'עברית',
         'العربية', 'فارسی', 'हिन्दी', 'নমস্কার', 'தமிழ்', 'ไทย', 'ລາວ', 'ខ្មែរ', 'မြန်မာ', '日本語', '中文',
         'ひらがな', 'カタカナ', 'ｶﾀｶﾅ', '한국어', '각', 'አማርኛ', 'ᐃᓄᒃᑎᑐᑦ', 'Ꮳꮳ', 'ⴰⵎⴰⵣⵉⵖ', 'ᠮᠣᠩᠭᠣᠯ',
         '𐌰𐌱𐌲', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', '𠀀𠀁', 'ᚠᛇᚻ', 'ª', 'µ', 'º', 'iPhone', 'camelCase', 'snake_case']
COMBINING = ['\u0301', '\u0308', '\u0327', '\u0300\u0301\u0302', '\u20dd', '\u093e', '\u094d', '\u0e31',
             '\u05b7', '\u0651', '\u1ab0', '\u302a', '\U000e0100', '\ufe0f', '\u200d']
NUMBERS = ['0', '42', '007', '3.14', '1,000', '٣٤٥', '۴۵', '५६', '১২৩', '௧௨', '๑๒', '０１２', '²³', '½', '⅞',
           'Ⅻ', 'ⅻ', '①②', '𝟙𝟚', '𒐕', '〇', '〡〢', '፩፪', '12345678901234567890']
PUNCT = ['.', ',', '!', '?', ';', ':', '-', '--', '—', '…', '"', "'", '(', ')', '[', ']', '{', '}', '<', '>',
         '/', '\\', '|', '@', '#', '$', '%', '^', '&', '*', '_', '+', '=', '~', '`', '«', '»', '¿', '¡', '“',
         '”', '‘', '’', '©', '°', '×', '€', '§', '•', '→', '∑', '√', '≠', '♪', '☃', '\ufffd', '<|endoftext|>']
EMOJI = ['😀', '😂', '👍', '👍🏻', '👍🏿', '👋🏽', '❤️', '❤', '🔥', '🚀', '🇺🇸', '🇯🇵', '🏴‍☠️', '🏳️‍🌈', '👨‍💻',
         '👩‍❤️‍💋‍👨', '👨‍👩‍👧‍👦', '🧔🏽‍♂️', '🤷‍♀️', '🧑🏿‍🤝‍🧑🏻', '#️⃣', '1️⃣', '🐈‍⬛', '🦄',
         '🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f']
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Re", "'rE", "'VE", "'vE",
                "'M", "'LL", "'Ll", "'lL", "'D", "’s", "'x", "'", "''"]
ILL_FORMED = [b'\xff', b'\xfe', b'\xc3', b'\xe2\x82', b'\xf0\x9f\x98', b'\xed\xa0\x80', b'\xed\xbf\xbf',
              b'\xc0\xaf', b'\xc1\xbf', b'\x80', b'\xbf\x80', b'\xf4\x90\x80\x80', b'\xf5\x80', b'\xe0\x80\x80',
              b'\xf8\x88\x80\x80\x80', b'\xe2\x28\xa1', b'\xc2']


def fixed_cases():
    """The hand-picked strings, as bytes."""
    out = []
    add = out.append
    # every white-space code point and look-alike, alone and in each pre-tokenizer context
    for ch in WS + NOT_WS:
        for form in ('%s', 'x%s', '%sx', ' %sx', '%s x', 'a %sb', 'a%s b', '%s%s', ' %s%s x', '\n%s\n',
                     "%s's", "x%s's", '%s1', ' %s!', '%s%sword', 'word%s ', 'word %s'):
            add(form.replace('%s', ch).encode('utf-8'))
    # pairs of white space and look-alikes before a word, a number, punctuation and the end
    for a in WS + NOT_WS:
        for b in WS + NOT_WS:
            for tail in ('x', ''):
                add((a + b + tail).encode('utf-8'))
    add(''.join(WS).encode('utf-8'))
    add(('x' + ''.join(WS) + 'x').encode('utf-8'))
    add(('x' + ''.join(NOT_WS[:9]) + 'x').encode('utf-8'))
    # the two examples of the issue
    add(' \u0085x'.encode('utf-8'))
    add('a \ufeffb'.encode('utf-8'))
    # long runs of spaces, newlines, tabs, mixed
    for n in (1, 2, 3, 4, 7, 8, 15, 16, 31, 64, 100, 257):
        for run in (' ', '\n', '\t', '\r\n', ' \n', '\u3000', '\u00a0', '\u0085'):
            add((run * n).encode('utf-8'))
            add(('a' + run * n + 'b').encode('utf-8'))
            add(('a' + run * n).encode('utf-8'))
    # contractions in odd cases and contexts
    for c in CONTRACTIONS:
        for pre in ('', 'I', 'it', ' ', '!', '1', 'é', '\n', "'", '\u0085', '\ufeff', '\u00a0'):
            for suf in ('', 's', ' ', 'x', '!', "'s", '1', 'é', '\u3000'):
                add((pre + c + suf).encode('utf-8'))
    # scripts, combining marks (alone, after a space, stacked), digits, emoji
    for w in WORDS:
        add(w.encode('utf-8'))
        add((' ' + w).encode('utf-8'))
        add(('\u00a0' + w + '\u2003' + w).encode('utf-8'))
    for m in COMBINING:
        for form in ('%s', ' %s', 'e%s', ' e%s e', '1%s', '%s%s%s', '\u0085%s', '%sx'):
            add(form.replace('%s', m).encode('utf-8'))
    for num in NUMBERS:
        for form in ('%s', ' %s', 'x%s', '%s%s', '%s.%s', ' %s\u2009%s'):
            add(form.replace('%s', num).encode('utf-8'))
    for e in EMOJI:
        for form in ('%s', ' %s', '%s%s', 'a%sb', ' %s %s', '\u200b%s'):
            add(form.replace('%s', e).encode('utf-8'))
    # ill-formed UTF-8 alone and between words and spaces
    for bad in ILL_FORMED:
        for pre, post in ((b'', b''), (b'a', b'b'), (b' ', b''), (b'', b' x'), (b"'", b's'), (b'1', b'2'),
                          (b'\xc2\x85', b''), (b' ', b'\xef\xbb\xbf')):
            add(pre + bad + post)
    return out


def random_case(r):
    """One string from the pools: 1 to 12 parts, often separated by white space."""
    parts = []
    for _ in range(r.randint(1, 12)):
        k = r.random()
        pool = next(pool for bound, pool in _POOLS if k < bound)
        parts.append(pool(r) if callable(pool) else r.choice(pool))
        if r.random() < 0.3:
            parts.append(' ')
    return b''.join(p if isinstance(p, bytes) else p.encode('utf-8') for p in parts)


def random_code_point(r):
    """A code point assigned in every reference's Unicode version (not unassigned, not a surrogate):
    classes of code points assigned after the oldest reference's tables would differ by version."""
    import unicodedata
    while True:
        cp = r.choice((r.randint(0x20, 0x2FFF), r.randint(0x3000, 0xFFFF), r.randint(0x10000, 0x1FFFF)))
        if 0xD800 <= cp <= 0xDFFF:
            continue
        if unicodedata.category(chr(cp)) != 'Cn':
            return chr(cp)


# (cumulative probability, pool or function of the generator) for the parts of random_case
_POOLS = [(0.22, lambda r: r.choice(WS) * r.choice((1, 1, 1, 2, 3, 5, 9))), (0.30, NOT_WS), (0.48, WORDS),
          (0.55, COMBINING), (0.63, NUMBERS), (0.73, PUNCT), (0.80, EMOJI), (0.87, CONTRACTIONS),
          (0.95, random_code_point), (1.01, ILL_FORMED)]


def cases(seed=20261201, n=4000):
    """The fixed list, then n seeded random strings; duplicates dropped (first kept)."""
    r = random.Random(seed)
    out, seen = [], set()
    for b in fixed_cases() + [random_case(r) for _ in range(n)]:
        if b not in seen:
            seen.add(b)
            out.append(b)
    return out


def read_golden(path):
    """[(bytes, ids)] of a golden file: one JSON object per line, {"text_hex": ..., "ids": [...]}."""
    out = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            if line.strip():
                j = json.loads(line)
                out.append((bytes.fromhex(j['text_hex']), [int(i) for i in j['ids']]))
    return out


if __name__ == '__main__':
    print('%d cases' % len(cases()), file=sys.stderr)
