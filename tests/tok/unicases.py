# unicases.py - seeded test strings that cover Unicode broadly, for the tokenizer reference tests.
#
# Every function takes a random.Random and returns a list of str; the same seed gives the same
# strings on every run and every machine (only the standard library's random and unicodedata
# are used; unicodedata decides nothing but which code points are preferred as samples).
#   blocks(r)      samples of every 128-code-point window of planes 0-3 and 14 (every block of
#                  those planes) and of the private-use planes, alone and inside words;
#   marks(r)       base letters with 1-5 combining marks in any order (all marks Python knows
#                  plus the spacing ones), precomposed letters with more marks, Hangul jamo;
#   cjk(r)         ideographs of every CJK range (also those BERT's list lacks) among Latin;
#   controls(r)    every C0/C1 control, the format characters, noncharacters, U+0000, U+FFFD;
#   spaces(r)      every White_Space code point and look-alikes, in every word context;
#   long_words(r)  words around the 100-character WordPiece limit, also after accent stripping;
#   newer(r)       letters, numbers, marks and punctuation of Unicode 15.0-17.0 in word contexts;
#   cases(r)       case mappings that differ by Unicode version and language (İ, Σ, ß, ǅ,
#                  Cherokee, Georgian Mtavruli, Deseret, Adlam, Latin additions);
#   specials(r, tokens)  special-token text inside words, partial, nested, in other case;
#   mixed(r, n)    n strings made of parts of all of the above.
# all_cases(seed, n_mixed, specials) gives them all, duplicates dropped.

import random
import unicodedata

# Unicode White_Space (all 25), then look-alikes that are not
WHITE_SPACE = [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680] + list(range(0x2000, 0x200B)) + \
    [0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
NOT_WHITE_SPACE = [0xFEFF, 0x200B, 0x180E, 0x200C, 0x200D, 0x2060, 0x1C, 0x1D, 0x1E, 0x1F, 0x00, 0x7F, 0xAD,
                   0x115F, 0x3164, 0xFFA0, 0x2800, 0xE0020]
FORMAT = [0xAD, 0x600, 0x601, 0x602, 0x603, 0x604, 0x605, 0x61C, 0x6DD, 0x70F, 0x890, 0x891, 0x8E2, 0x180E,
          0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2060, 0x2061,
          0x2062, 0x2063, 0x2064, 0x2066, 0x2067, 0x2068, 0x2069, 0x206A, 0x206F, 0xFEFF, 0xFFF9, 0xFFFA, 0xFFFB,
          0x110BD, 0x110CD, 0x13430, 0x13438, 0x13439, 0x1343F, 0x1BCA0, 0x1BCA3, 0x1D173, 0x1D17A, 0xE0001,
          0xE0020, 0xE007F]
OTHER = [0x0, 0xFFFD, 0xFFFC, 0xFDD0, 0xFDEF, 0xFFFE, 0xFFFF, 0x1FFFE, 0x10FFFF, 0xE000, 0xF8FF, 0xF0000,
         0x100000, 0x10FFFD]
WORDS = ['the', 'The', 'THE', 'hello', 'world', 'a', 'I', 'is', 'ing', 'unaffable', 'café', 'naïve', 'Straße',
         'ÅNGSTRÖM', "don't", 'U.S.A.', 'e-mail', 'İstanbul', 'ǅemal', 'ﬁnance', 'ΣΊΣΥΦΟΣ', 'πάντα', 'мир',
         'Москва', 'ქართული', 'Ⴀ', 'עברית', 'العربية', 'हिन्दी', 'ไทย', '日本語', '中文', 'ひらがな', 'ｶﾀｶﾅ',
         '한국어', 'Ⅻ', '①②', 'x²', '½', '😀', '👍🏽', '🇯🇵', 'iPhone', 'snake_case', '3.14', '1,000']
# letters with case mappings that differ between Unicode versions or languages
CASED = [0x130, 0x131, 0x3A3, 0x3C2, 0x1E9E, 0xDF, 0x1C4, 0x1C5, 0x1C6, 0x1F88, 0x1FBC, 0x2126, 0x212A,
         0x212B, 0x13A0, 0x13F5, 0xAB70, 0x1C90, 0x1CBF, 0x10A0, 0x10400, 0x10428, 0x1E900, 0x1E922, 0x16E40,
         0x10570, 0x10C80, 0x118A0, 0xA7C0, 0xA7C4, 0xA7C7, 0xA7CB, 0xA7CC, 0xA7DA, 0xA7DC, 0xA7F5, 0x2C2F,
         0x1E030, 0x10D50, 0x0149, 0x01F0, 0x0390, 0x1E96, 0xFB00, 0x0587, 0x1F50, 0x1FB3, 0x24B6, 0xFF21]
BASES = 'aeiouAEIOUnNcCsSzZyY' + 'αεηιουωΑΕΙΟ' + 'аеиоуАЕИО' + '각각' + 'ꙮ𝒜ǅ'
# Letters (L), numbers (N), marks (M) and punctuation (P) that Unicode 15.0 to 17.0 assigned (Python
# 3.11's unicodedata, Unicode 14, does not know them; the references' regex engines and tables
# each know some of them): where Unicode versions make tokenizers differ.
NEWER = [(0x88F, 0x88F, 'L'), (0x897, 0x897, 'M'), (0xC5C, 0xC5C, 'L'), (0xCDC, 0xCDC, 'L'), (0xCF3, 0xCF3, 'M'),
         (0xECE, 0xECE, 'M'), (0x1ACF, 0x1ADD, 'M'), (0x1B4E, 0x1B4F, 'P'), (0x1C89, 0x1C8A, 'L'),
         (0xA7CB, 0xA7CF, 'L'), (0xA7D2, 0xA7D2, 'L'), (0xA7DA, 0xA7DC, 'L'), (0xA7F1, 0xA7F1, 'L'),
         (0x105C0, 0x105F3, 'L'), (0x10940, 0x10959, 'L'), (0x10D40, 0x10D49, 'N'), (0x10D4A, 0x10D65, 'L'),
         (0x10D69, 0x10D6D, 'M'), (0x10D6E, 0x10D6E, 'P'), (0x10EC2, 0x10EC7, 'L'), (0x10EFA, 0x10EFF, 'M'),
         (0x1123F, 0x11240, 'L'), (0x11380, 0x11389, 'L'), (0x113B8, 0x113C0, 'M'), (0x113D4, 0x113D5, 'P'),
         (0x116D0, 0x116E3, 'N'), (0x11B00, 0x11B09, 'P'), (0x11BC0, 0x11BE0, 'L'), (0x11BF0, 0x11BF9, 'N'),
         (0x11DB0, 0x11DDB, 'L'), (0x11DE0, 0x11DE9, 'N'), (0x11F04, 0x11F10, 'L'), (0x11F34, 0x11F3A, 'M'),
         (0x11F43, 0x11F4F, 'P'), (0x11F50, 0x11F59, 'N'), (0x13441, 0x13446, 'L'), (0x13460, 0x143FA, 'L'),
         (0x16100, 0x1611D, 'L'), (0x1611E, 0x1612F, 'M'), (0x16130, 0x16139, 'N'), (0x16D40, 0x16D6C, 'L'),
         (0x16D6D, 0x16D6F, 'P'), (0x16D70, 0x16D79, 'N'), (0x16EA0, 0x16EB8, 'L'), (0x16FF4, 0x16FF6, 'N'),
         (0x18D80, 0x18DF2, 'L'), (0x1CCF0, 0x1CCF9, 'N'), (0x1D2C0, 0x1D2D3, 'N'), (0x1DF25, 0x1DF2A, 'L'),
         (0x1E030, 0x1E06D, 'L'), (0x1E4D0, 0x1E4EB, 'L'), (0x1E4F0, 0x1E4F9, 'N'), (0x1E5D0, 0x1E5ED, 'L'),
         (0x1E5F1, 0x1E5FA, 'N'), (0x1E6C0, 0x1E6DE, 'L'), (0x2B739, 0x2B73F, 'L'), (0x2CEA2, 0x2CEAD, 'L'),
         (0x2EBF0, 0x2EE5D, 'L'), (0x31350, 0x33479, 'L')]
CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
              (0x2B820, 0x2CEAF), (0x2CEB0, 0x2EBEF), (0x30000, 0x3134F), (0x31350, 0x323AF), (0xF900, 0xFAFF),
              (0x2F800, 0x2FA1F), (0x2E80, 0x2FDF), (0x3000, 0x303F), (0x3040, 0x30FF), (0xAC00, 0xD7A3)]


def _assigned(cp):
    return unicodedata.category(chr(cp)) != 'Cn'


def _windows():
    """The 128-code-point windows sampled: planes 0-3 and 14 entirely, planes 15-16 every 16th."""
    for w in range(0, 0x40000, 128):
        if not 0xD800 <= w < 0xE000:
            yield w
    for w in range(0xE0000, 0xE1000, 128):
        yield w
    for w in range(0xF0000, 0x110000, 128 * 16):
        yield w


def blocks(r, per=4):
    """Samples of every window: up to `per` code points (assigned ones preferred), each alone and
    in word contexts, and the window's samples together."""
    out = []
    for w in _windows():
        cps = [c for c in range(w, w + 128) if _assigned(c)]
        pick = r.sample(cps, min(per, len(cps))) if cps else []
        pick.append(r.randrange(w, w + 128))  # any code point, assigned or not
        chars = [chr(c) for c in pick]
        for ch in chars:
            out.append(r.choice(['%s', 'a%sb', ' %s ', 'Word%s', '%s%s', '%sX', '[%s]']).replace('%s', ch))
        out.append(''.join(chars))
        out.append(' '.join(chars) + ' ' + r.choice(WORDS))
    return out


def _marks():
    """Combining marks: everything Python gives a nonzero combining class, plus enclosing and
    spacing marks (Me, Mc) and nonspacing marks of class 0."""
    m = []
    for cp in range(0x300, 0x1E950):
        ch = chr(cp)
        if unicodedata.combining(ch) or unicodedata.category(ch) in ('Mn', 'Mc', 'Me'):
            m.append(ch)
    return m


MARKS = _marks()


def marks(r, n=3000):
    common = ['\u0300', '\u0301', '\u0302', '\u0303', '\u0308', '\u030a', '\u0323', '\u0327', '\u0328', '\u031b',
              '\u0345', '\u0334', '\u05b0', '\u0651', '\u093c', '\u0f71', '\u302a', '\u302e', '\U0001d165',
              '\U0001d16d', '\u0e38', '\u0e48', '\u3099', '\u309a', '\u20dd', '\ufe0f', '\u200d']
    out = []
    for _ in range(n):
        base = r.choice(BASES + 'ÀÉÎÕÜåçñøĀǺḈṩỆὢᾏ가힣')
        k = r.randint(1, 5)
        ms = [r.choice(common) if r.random() < 0.5 else r.choice(MARKS) for _ in range(k)]
        s = base + ''.join(ms)
        form = r.choice(['%s', ' %s', '%s ab', 'x%sy', '%s%s', 'ab%s', '%s.'])
        out.append(form.replace('%s', s))
    # every mark once after a letter, in chunks
    for i in range(0, len(MARKS), 7):
        out.append(' '.join('e' + m for m in MARKS[i:i + 7]))
    return out


def newer(r):
    """Code points of NEWER in the contexts where a pre-tokenizer's classes decide: after a space,
    between letters, before digits, repeated."""
    out = []
    for lo, hi, _ in NEWER:
        for cp in sorted(set([lo, hi] + [r.randint(lo, hi) for _ in range(3)])):
            ch = chr(cp)
            for form in ('%s', ' %s', 'a%sb', '%s1', '1%s', '%s%s', ' %s %s', "%s's", 'e\u0301%s', '[%s]', '%s!'):
                out.append(form.replace('%s', ch))
    return out


def cjk(r, n=1500):
    out = []
    for lo, hi in CJK_RANGES:
        for _ in range(20):
            out.append(chr(r.randint(lo, hi)) + chr(r.randint(lo, hi)))
    for _ in range(n):
        parts = []
        for _ in range(r.randint(1, 6)):
            lo, hi = r.choice(CJK_RANGES)
            parts.append(''.join(chr(r.randint(lo, hi)) for _ in range(r.randint(1, 4))))
            if r.random() < 0.5:
                parts.append(r.choice([' ', '', 'abc', 'Ünï', '，', '。', '1']))
        out.append(''.join(parts))
    return out


def controls(r):
    out = []
    cps = list(range(0, 0x20)) + list(range(0x7F, 0xA0)) + FORMAT + OTHER
    for c in cps:
        ch = chr(c)
        for form in ('%s', 'a%sb', 'a %s b', '%s%s', 'é%sé', '%s[MASK]', 'hello%sworld'):
            out.append(form.replace('%s', ch))
    for _ in range(300):
        out.append(''.join(chr(r.choice(cps)) if r.random() < 0.4 else r.choice(WORDS) for _ in range(r.randint(2, 8))))
    return out


def spaces(r):
    out = []
    ws = WHITE_SPACE + NOT_WHITE_SPACE
    for c in ws:
        ch = chr(c)
        for form in ('%s', 'x%s', '%sx', ' %sx', '%s x', 'a %sb', 'a%s b', '%s%s', '\n%s\n', '%s1', ' %s!',
                     '%s%sword', 'word%s ', 'é%sü', '中%s文', '[MASK]%s[SEP]'):
            out.append(form.replace('%s', ch))
    for a in ws:
        for b in ws:
            out.append(chr(a) + chr(b) + 'x')
    out.append(''.join(chr(c) for c in WHITE_SPACE))
    return out


def long_words(r):
    out = []
    for n in (99, 100, 101, 102, 150, 250):
        out.append('a' * n)
        out.append('x ' + 'é' * n + ' y')           # stays n characters once accents are stripped
        out.append('e\u0301' * (n // 2) + 'a')     # 2 characters each before stripping
        out.append('ab' * (n // 2) + '!' + 'c' * n)
        out.append(''.join(r.choice('abcdefghijklmnopqrstuvwxyzé') for _ in range(n)))
        out.append('中' * n)
        out.append('Ⅻ' * n)
        out.append('un' + 'aff' * (n // 3) + 'able')
    return out


def cases(r):
    out = []
    for c in CASED:
        ch = chr(c)
        for form in ('%s', '%sa', 'A%sB', '%s%s', ' %s.'):
            out.append(form.replace('%s', ch))
    for _ in range(300):
        out.append(''.join(chr(r.choice(CASED)) for _ in range(r.randint(1, 6))))
    return out


def specials(r, tokens):
    out = []
    for t in tokens:
        for form in ('%s', 'x%sy', ' %s ', '%s%s', '[%s]', '%s.', 'a %s b', '%s\u00e9', t.lower(), t[:-1],
                     t[1:], t.replace('|', ' '), '%s' + t[:-1]):
            out.append(form.replace('%s', t))
    for _ in range(300):
        out.append(''.join(r.choice(tokens) if r.random() < 0.3 else r.choice(WORDS) + r.choice(['', ' '])
                           for _ in range(r.randint(1, 8))))
    return out


def mixed(r, n, tokens=()):
    pools = [lambda: r.choice(WORDS), lambda: chr(r.choice(WHITE_SPACE)) * r.choice((1, 1, 2, 3)),
             lambda: chr(r.choice(NOT_WHITE_SPACE + FORMAT)), lambda: r.choice(BASES) + r.choice(MARKS),
             lambda: chr(r.randint(*r.choice(CJK_RANGES))), lambda: chr(r.choice(CASED)),
             lambda: chr(r.randrange(0x20, 0x3FFFF)) if r.random() < 0.7 else chr(r.randrange(0xE0000, 0x110000)),
             lambda: r.choice('.,;:!?\'"()[]{}-_/\\@#$%^&*+=<>|~`«»¿¡“”‘’…—'), lambda: str(r.randint(0, 99999))]
    if tokens:
        pools.append(lambda: r.choice(tokens))
    out = []
    for _ in range(n):
        s = ''.join(r.choice(pools)() + (' ' if r.random() < 0.3 else '') for _ in range(r.randint(1, 14)))
        out.append(''.join(ch for ch in s if not 0xD800 <= ord(ch) <= 0xDFFF))
    return out


def all_cases(seed, n_mixed=8000, tokens=()):
    """Every family above from one seeded generator; duplicates dropped (first kept)."""
    r = random.Random(seed)
    seen, out = set(), []
    groups = [blocks(r), newer(r), marks(r), cjk(r), controls(r), spaces(r), long_words(r), cases(r)]
    if tokens:
        groups.append(specials(r, list(tokens)))
    groups.append(mixed(r, n_mixed, list(tokens)))
    for g in groups:
        for s in g:
            if s not in seen:
                seen.add(s)
                out.append(s)
    return out


if __name__ == '__main__':
    import sys
    cs = all_cases(1)
    print('%d strings, %d characters' % (len(cs), sum(map(len, cs))), file=sys.stderr)
