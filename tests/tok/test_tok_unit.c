// test_tok_unit.c - the GPT-2 byte-level BPE without real data: the byte tokenizer, the
// byte-to-unicode map, the pre-tokenizer on hand-checked cases, merging by rank on a tiny
// handmade vocabulary, and loader errors.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "base/chatturn.h"
#include "tok/chat.h"
#include "tok/tokenizer.h"
#include "tok/unicode.h"
#include "tok/unicode_norm.h"
#include "base/utf8.h"

static char tmpdir[CHECK_TMP_LEN];

// Write text to tmpdir/name; returns the path (static buffer rotation of 4).
static const char *put_file(const char *name, const char *text) {
    static char paths[4][CHECK_PATH_LEN];
    static int k;
    char *p = paths[k++ & 3];
    snprintf(p, CHECK_PATH_LEN, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    if (!f) {
        perror(p);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
    return p;
}

static void rm_file(const char *name) {
    char p[CHECK_PATH_LEN];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    unlink(p);
}

// The tokenizer the files in tmpdir make; NULL (a failed check) when they do not load.
static Tokenizer *load_tmpdir(void) {
    Err e = {{0}};
    Tokenizer *t = tok_load(tmpdir, &e);
    CHECK(t != NULL);
    if (!t) fprintf(stderr, "load: %s\n", e.msg);
    return t;
}

// Encode text and compare with the expected ids (n of them); prints both on mismatch.
static void check_ids(const Tokenizer *t, const char *text, size_t len, unsigned flags, const int *want, int n) {
    IntVec v = {0};
    Err e = {{0}};
    int got = tok_encode(t, text, len, flags, &v, &e);
    bool ok = got == n && v.n == n;
    for (int i = 0; ok && i < n; i++) ok = v.v[i] == want[i];
    if (!ok) {
        fprintf(stderr, "encode \"%.*s\": expected [", (int)len, text);
        for (int i = 0; i < n; i++) fprintf(stderr, "%s%d", i ? " " : "", want[i]);
        fprintf(stderr, "], got %d: [", got);
        for (int i = 0; i < v.n; i++) fprintf(stderr, "%s%d", i ? " " : "", v.v[i]);
        fprintf(stderr, "] %s\n", got < 0 ? e.msg : "");
        check_failures++;
    }
    iv_free(&v);
}
#define IDS(t, s, flags, ...)                                                                   \
    do {                                                                                        \
        const int w_[] = {__VA_ARGS__};                                                         \
        check_ids(t, s, sizeof(s) - 1, flags, w_, (int)(sizeof w_ / sizeof w_[0]));             \
    } while (0)

// The text that encode/decode must give back: ill-formed UTF-8 replaced by U+FFFD per subpart.
static void clean_utf8(const char *s, size_t n, Buf *out) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        char u[4];
        int k = utf8_decode(s + i, n - i, &cp);
        buf_put(out, u, (size_t)utf8_encode(cp, u));
        i += (size_t)k;
    }
}

static void test_byte_map(void) {
    char u[4];
    int seen[512] = {0};
    for (int b = 0; b < 256; b++) {
        int n = tok_gpt2_byte_char((unsigned char)b, u);
        uint32_t cp;
        CHECK_INT(utf8_decode(u, (size_t)n, &cp), n);
        CHECK(cp < 512);
        if (cp < 512) seen[cp]++;
    }
    for (int c = 0; c < 512; c++) CHECK(seen[c] <= 1); // a bijection
    CHECK_INT(tok_gpt2_byte_char('!', u), 1);
    CHECK(u[0] == '!');
    tok_gpt2_byte_char(' ', u);
    CHECK(!memcmp(u, "\xC4\xA0", 2)); // U+0120 'Ġ'
    tok_gpt2_byte_char('\n', u);
    CHECK(!memcmp(u, "\xC4\x8A", 2)); // U+010A 'Ċ'
    tok_gpt2_byte_char(0, u);
    CHECK(!memcmp(u, "\xC4\x80", 2)); // U+0100 'Ā'
    tok_gpt2_byte_char(0xAD, u);
    CHECK(!memcmp(u, "\xC5\x83", 2)); // U+0143, the last
    tok_gpt2_byte_char(0xE9, u);
    CHECK(!memcmp(u, "\xC3\xA9", 2)); // 'é' stands for itself
}

static void test_bytes_tokenizer(void) {
    Tokenizer *t = tok_bytes_new();
    CHECK_INT(tok_kind(t), TOK_KIND_BYTE_BPE);
    CHECK_INT(tok_vocab_size(t), 257);
    CHECK_INT(tok_eos(t), 256);
    CHECK_INT(tok_bos(t), 256);
    CHECK(tok_is_special(t, 256));
    CHECK(!tok_is_special(t, 0));
    CHECK_INT(tok_find(t, "!", 1), 0);
    CHECK_INT(tok_find(t, "a", 1), 64); // as in GPT-2
    CHECK_INT(tok_find(t, "\0", 1), 188);
    CHECK_INT(tok_find(t, " ", 1), 220);
    CHECK_INT(tok_find(t, "<|endoftext|>", 13), 256);
    CHECK_INT(tok_find(t, "ab", 2), -1);
    size_t len;
    CHECK(tok_piece(t, 257, &len) == NULL);
    CHECK(tok_piece(t, -1, &len) == NULL);
    CHECK_STR(tok_piece(t, 256, &len), "<|endoftext|>");
    IDS(t, "hi", 0, 71, 72);
    IDS(t, "<|endoftext|>", TOK_PARSE_SPECIAL, 256);
    IDS(t, "a<|endoftext|>", TOK_PARSE_SPECIAL | TOK_ADD_SPECIAL, 64, 256);
    IDS(t, "<|endoftext|", TOK_PARSE_SPECIAL, 27, 91, 68, 77, 67, 78, 69, 83, 68, 87, 83, 91);
    IDS(t, "<|x", 0, 27, 91, 87);
    // ill-formed UTF-8: one U+FFFD (EF BF BD) per maximal subpart
    IDS(t, "\xF0\x9F\x98x", 0, 171, 123, 121, 87);
    IDS(t, "\xC0\x80", 0, 171, 123, 121, 171, 123, 121);

    // display: valid UTF-8 as is, other bytes as <0xNN>
    Buf b = {0};
    tok_piece_display(t, tok_find(t, "\x80", 1), &b);
    CHECK_STR(b.data, "<0x80>");
    buf_clear(&b);
    tok_piece_display(t, 64, &b);
    CHECK_STR(b.data, "a");
    buf_free(&b);

    // arbitrary bytes round trip after U+FFFD replacement
    uint64_t x = 88172645463325252ull;
    Buf want = {0}, got = {0};
    IntVec v = {0};
    for (int round = 0; round < 3000; round++) {
        char s[64];
        size_t n = (size_t)(round % 64);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            s[i] = (char)(round & 1 ? x : (x % 3 ? x & 0x7F : x));
        }
        buf_clear(&want), buf_clear(&got);
        v.n = 0;
        clean_utf8(s, n, &want);
        Err e;
        int k = tok_encode(t, s, n, round & 2 ? TOK_PARSE_SPECIAL : 0, &v, &e);
        CHECK_INT(k, (int)want.len);
        tok_decode(t, v.v, v.n, &got);
        CHECK(got.len == want.len && (!n || !memcmp(got.data, want.data, want.len)));
    }
    iv_free(&v);
    buf_free(&want);
    buf_free(&got);
    tok_free(t);
}

// The pre-tokenizer's white space is Unicode White_Space (as in Python regex, tiktoken, HF
// tokenizers): all 25 code points, and none of the look-alikes (JavaScript's \s has U+FEFF).
static void test_white_space(void) {
    static const uint32_t ws[] = {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x2001,
                                  0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A,
                                  0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
    static const uint32_t not_ws[] = {0xFEFF, 0x200B, 0x180E, 0x200C, 0x200D, 0x2060, 0x1C, 0x1D, 0x1E,
                                      0x1F, 0x00, 0x7F, 0xAD, 0x3164, 0xFFA0, 0x2800};
    int n = 0;
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
        if (!uni_is_space(ws[i])) fprintf(stderr, "U+%04X: expected white space, got class %d\n", ws[i], uni_class(ws[i]));
        CHECK(uni_is_space(ws[i]));
    }
    for (size_t i = 0; i < sizeof not_ws / sizeof not_ws[0]; i++) {
        if (uni_is_space(not_ws[i])) fprintf(stderr, "U+%04X: expected not white space\n", not_ws[i]);
        CHECK(!uni_is_space(not_ws[i]));
    }
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) n += uni_is_space(cp);
    CHECK_INT(n, 25); // nothing else is
}

// Normalize in[0..n) with f and compare with want[0..nw); prints both on mismatch.
static void check_form(const char *name, void (*f)(const uint32_t *, size_t, CpVec *), const uint32_t *in, size_t n,
                       const uint32_t *want, size_t nw) {
    CpVec out = {0};
    f(in, n, &out);
    bool ok = out.n == nw && (!nw || !memcmp(out.v, want, nw * sizeof *want));
    if (!ok) {
        fprintf(stderr, "%s(", name);
        for (size_t i = 0; i < n; i++) fprintf(stderr, "%sU+%04X", i ? " " : "", in[i]);
        fprintf(stderr, "): expected");
        for (size_t i = 0; i < nw; i++) fprintf(stderr, " U+%04X", want[i]);
        fprintf(stderr, ", got");
        for (size_t i = 0; i < out.n; i++) fprintf(stderr, " U+%04X", out.v[i]);
        fprintf(stderr, "\n");
        check_failures++;
    }
    cp_free(&out);
}
#define FORM(f, in, ...)                                                                         \
    do {                                                                                         \
        const uint32_t i_[] = in, w_[] = {__VA_ARGS__};                                          \
        check_form(#f, f, i_, sizeof i_ / sizeof i_[0], w_, sizeof w_ / sizeof w_[0]);           \
    } while (0)
#define CPS(...) {__VA_ARGS__}

// NFD and NFC on cases checked by hand against UAX #15 (and Python's unicodedata): marks
// reordered by combining class, compositions blocked by a mark of the same class or a starter,
// Hangul by formula, exclusions and singletons never recomposed.
static void test_normal_forms(void) {
    CHECK_INT(uni_ccc('a'), 0);
    CHECK_INT(uni_ccc(0x301), 230);
    CHECK_INT(uni_ccc(0x323), 220);
    CHECK_INT(uni_ccc(0x334), 1);
    CHECK_INT(uni_compose('e', 0x301), 0xE9);
    CHECK_INT(uni_compose(0x1100, 0x1161), 0xAC00);
    CHECK_INT(uni_compose(0xAC00, 0x11A8), 0xAC01);
    CHECK_INT(uni_compose(0xAC01, 0x11A8), 0);
    CHECK_INT(uni_compose(0x915, 0x93C), 0); // U+0958 is a composition exclusion
    // ḍ̇ : d, dot above (230), dot below (220) -> NFD puts the dot below first
    FORM(uni_nfd, CPS('d', 0x307, 0x323), 'd', 0x323, 0x307);
    FORM(uni_nfd, CPS(0x1E0B, 0x323), 'd', 0x323, 0x307);
    FORM(uni_nfc, CPS('d', 0x307, 0x323), 0x1E0D, 0x307);
    FORM(uni_nfc, CPS(0x1E0B, 0x323), 0x1E0D, 0x307);
    // ê then acute: ế (two compositions in a row)
    FORM(uni_nfc, CPS('e', 0x302, 0x301), 0x1EBF);
    // two marks of class 230: only the first composes (the second is blocked by it)
    FORM(uni_nfc, CPS('a', 0x301, 0x301), 0xE1, 0x301);
    FORM(uni_nfc, CPS('a', 0x308, 0x301), 0xE4, 0x301);
    // a mark of class 1 (U+0334) between them does not block a 230 mark
    FORM(uni_nfc, CPS('a', 0x334, 0x301), 0xE1, 0x334);
    // a starter between blocks
    FORM(uni_nfc, CPS('a', 'b', 0x301), 'a', 'b', 0x301);
    // no starter before the mark
    FORM(uni_nfc, CPS(0x301, 'a'), 0x301, 'a');
    // Hangul: L V T composes, a decomposed syllable comes back
    FORM(uni_nfc, CPS(0x1100, 0x1161, 0x11A8), 0xAC01);
    FORM(uni_nfd, CPS(0xAC01), 0x1100, 0x1161, 0x11A8);
    // singleton (Ohm sign -> Omega) and exclusion (U+0958) are not recomposed
    FORM(uni_nfc, CPS(0x2126), 0x3A9);
    FORM(uni_nfc, CPS(0x958), 0x915, 0x93C);
    // a long run of marks is sorted stably (class 230 and 220 alternating, 40 of them)
    uint32_t in[41], want[41];
    in[0] = want[0] = 'x';
    for (int i = 1; i <= 40; i++) in[i] = i & 1 ? 0x301 + (uint32_t)(i % 4 == 1) : 0x323 + (uint32_t)(i % 4 == 2);
    int k = 1;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 1; i <= 40; i++)
            if ((uni_ccc(in[i]) == 220) == (pass == 0)) want[k++] = in[i];
    check_form("uni_nfd", uni_nfd, in, 41, want, 41);
    // UTF-8: text below U+0300 is left alone; "e\u0301" becomes "é"
    Buf b = {0};
    CHECK(!uni_nfc_utf8("abc \xC3\xA9", 6, &b));
    CHECK(uni_nfc_utf8("e\xCC\x81", 3, &b));
    CHECK(b.len == 2 && !memcmp(b.data, "\xC3\xA9", 2));
    buf_free(&b);
}

// A tiny vocabulary: the 256 byte tokens are not all there, so unknown bytes fail cleanly.
static const char *tiny_vocab =
    "{\"a\": 0, \"b\": 1, \"c\": 2, \"\\u0120\": 3, \"ab\": 4, \"abc\": 5, \"\\u0120ab\": 6, \"aba\": 7,"
    " \"'\": 8, \"s\": 9, \"'s\": 10, \"\\u010a\": 11, \"<|endoftext|>\": 12, \"\\u0120\\u0120\": 13,"
    " \"I\": 14, \"M\": 15, \"m\": 16, \"'m\": 17, \"\\u0120c\": 18}";

static void test_tiny(void) {
    // 'Ġ' (U+0120, the space) written raw in UTF-8; a CRLF line and a blank line at the end
    const char *merges =
        "#version: 0.2\nab a\na b\nab c\n\xC4\xA0 ab\n' s\n' m\n\xC4\xA0 \xC4\xA0\r\n\xC4\xA0 c\n\n";
    const char *vp = put_file("vocab.json", tiny_vocab);
    put_file("merges.txt", merges);
    Tokenizer *t = load_tmpdir();
    if (!t) return;
    CHECK_INT(tok_vocab_size(t), 19);
    CHECK_INT(tok_eos(t), 12);
    CHECK_INT(tok_bos(t), 12);
    CHECK(tok_is_special(t, 12));
    size_t len;
    CHECK_STR(tok_piece(t, 6, &len), " ab");
    CHECK_INT(len, 3);
    CHECK_INT(tok_find(t, " ab", 3), 6);
    IDS(t, "ab", 0, 4);
    IDS(t, "abc", 0, 5);
    IDS(t, " ab", 0, 6);
    IDS(t, "abcab", 0, 5, 4);
    // one round merges every (a b) before the lower-ranked (ab a) can apply: [ab ab], not [aba b]
    IDS(t, "abab", 0, 4, 4);
    IDS(t, "aba", 0, 7);
    // the pre-tokenizer: contractions are lower case only; whitespace runs leave their last
    // character to a following word
    IDS(t, "a's", 0, 0, 10);
    IDS(t, "I'm", 0, 14, 17);
    IDS(t, "I'M", 0, 14, 8, 15);
    IDS(t, "  ab", 0, 3, 6);
    IDS(t, "   ab", 0, 13, 6);
    IDS(t, "a  ", 0, 0, 13);
    IDS(t, "a\n\nb", 0, 0, 11, 11, 1);
    IDS(t, "ab c", 0, 4, 18);
    IDS(t, "<|endoftext|>a", TOK_PARSE_SPECIAL, 12, 0);
    // a byte the vocabulary lacks is dropped (no unknown token), as HF tokenizers does
    IntVec v = {0};
    Err e = {{0}};
    CHECK_INT(tok_encode(t, "d", 1, 0, &v, &e), 0);
    CHECK_INT(v.n, 0);
    IDS(t, "ab d", 0, 4, 3);
    iv_free(&v);
    tok_free(t);

    // the same files by explicit paths, and the vocabulary file alone
    t = tok_load_vocab_merges(vp, put_file("m.bpe", merges), &e);
    CHECK(t != NULL);
    if (t) IDS(t, "abc", 0, 5);
    tok_free(t);
    t = tok_load(vp, &e);
    CHECK(t != NULL);
    tok_free(t);
    rm_file("m.bpe");

    // merges without the #version line
    put_file("merges.txt", "a b\n");
    t = tok_load(tmpdir, &e);
    CHECK(t != NULL);
    if (t) IDS(t, "abab", 0, 4, 4);
    tok_free(t);
}

// tokenizer.json with merges as pairs and added tokens
static void test_tokenizer_json(void) {
    put_file("tokenizer.json",
             "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 5, \"content\": \"<|endoftext|>\", \"special\": true},"
             " {\"id\": 6, \"content\": \"<pad>\", \"special\": true}],"
             " \"normalizer\": null, \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false,"
             " \"trim_offsets\": true, \"use_regex\": true},"
             " \"model\": {\"type\": \"BPE\", \"dropout\": null, \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2,"
             " \"\\u0120\": 3, \"\\u0120ab\": 4, \"<|endoftext|>\": 5}, \"merges\": [[\"a\", \"b\"], \"\\u0120 ab\"]}}");
    Tokenizer *t = load_tmpdir(); // tokenizer.json is preferred over vocab.json
    if (!t) return;
    CHECK_INT(tok_vocab_size(t), 7);
    CHECK_INT(tok_eos(t), 5);
    CHECK(tok_is_special(t, 6));
    size_t len;
    CHECK_STR(tok_piece(t, 6, &len), "<pad>");
    IDS(t, "ab ab", 0, 2, 4);
    IDS(t, "ab<pad><|endoftext|> ab", TOK_PARSE_SPECIAL, 2, 6, 5, 4);
    tok_free(t);
    rm_file("tokenizer.json");
}

// SentencePiece-style tokenizer.json without byte fallback: a character the vocabulary lacks is
// <unk> (runs of them one <unk> with fuse_unk), and a byte token "<0x09>" is not the character
// tab (it stands for its byte only as byte fallback). HF tokenizers gives these ids.
static void test_spm_unk(void) {
    static const char *const json_fmt =
        "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true}],"
        " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"\\u2581\"},"
        " {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"}]}, \"pre_tokenizer\": null,"
        " \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": %s, \"byte_fallback\": false,"
        " \"vocab\": {\"<unk>\": 0, \"<0x09>\": 1, \"\\u2581\": 2, \"a\": 3, \"\\u2581a\": 4},"
        " \"merges\": [\"\\u2581 a\"]}}";
    for (int fuse = 0; fuse < 2; fuse++) {
        char json[1024];
        snprintf(json, sizeof json, json_fmt, fuse ? "true" : "false");
        put_file("tokenizer.json", json);
        Err e = {{0}};
        Tokenizer *t = tok_load(tmpdir, &e);
        CHECK(t != NULL);
        if (!t) {
            fprintf(stderr, "load: %s\n", e.msg);
            continue;
        }
        IDS(t, "a", 0, 4);
        IDS(t, "a\ta", 0, 4, 0, 3);
        if (fuse) IDS(t, "a\xC3\xA9\xC3\xA9 a\t\t", 0, 4, 0, 4, 0);
        else IDS(t, "a\xC3\xA9\xC3\xA9 a\t\t", 0, 4, 0, 0, 4, 0, 0);
        tok_free(t);
    }
    rm_file("tokenizer.json");
}

// Each broken input must fail with one line naming the file and the fault.
static void expect_error(const char *what, const char *path, const char *vocab, const char *merges,
                         const char *want1, const char *want2) {
    Err e = {{0}};
    Tokenizer *t = vocab ? tok_load_vocab_merges(vocab, merges, &e) : tok_load(path, &e);
    if (t) {
        fprintf(stderr, "%s: loaded, expected an error\n", what);
        check_failures++;
        tok_free(t);
        return;
    }
    if (!strstr(e.msg, want1) || (want2 && !strstr(e.msg, want2)) || strchr(e.msg, '\n')) {
        fprintf(stderr, "%s: expected a message with '%s' and '%s', got '%s'\n", what, want1, want2 ? want2 : "",
                e.msg);
        check_failures++;
    }
}

static void test_errors(void) {
    char dir2[CHECK_PATH_LEN], p[CHECK_PATH_LEN], m[CHECK_PATH_LEN], v[CHECK_PATH_LEN];
    snprintf(dir2, sizeof dir2, "%s/nothing", tmpdir);
    expect_error("missing path", dir2, NULL, NULL, "nothing", "No such file");
    snprintf(v, sizeof v, "%s/vocab.json", tmpdir);
    snprintf(m, sizeof m, "%s/merges.txt", tmpdir);

    put_file("vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 2}");
    rm_file("merges.txt");
    expect_error("missing merges (dir)", tmpdir, NULL, NULL, tmpdir, "no tokenizer found");
    expect_error("missing merges (vocab)", v, NULL, NULL, "vocab.json", "merges.txt");
    expect_error("missing merges (pair)", NULL, v, m, "merges.txt", "No such file");

    put_file("merges.txt", "a b\na z\n");
    expect_error("unknown piece", tmpdir, NULL, NULL, "merges.txt' line 2", "unknown piece 'z'");
    // a merges file cut short (a truncated download): 30 of 40 two-letter tokens made by no
    // merge; it tokenized into smaller pieces without a word. Whole, it loads.
    {
        Buf vj = {0}, mg = {0};
        buf_puts(&vj, "{");
        for (int c = 0; c < 26; c++) buf_printf(&vj, "%s\"%c\": %d", c ? ", " : "", 'a' + c, c);
        for (int k = 0; k < 40; k++) {
            buf_printf(&vj, ", \"%c%c\": %d", 'a' + k / 26, 'a' + k % 26, 26 + k);
            buf_printf(&mg, "%c %c\n", 'a' + k / 26, 'a' + k % 26);
        }
        buf_puts(&vj, "}");
        put_file("vocab.json", vj.data);
        put_file("merges.txt", mg.data);
        Err e = {{0}};
        Tokenizer *t = tok_load(tmpdir, &e);
        CHECK(t != NULL);
        if (!t) fprintf(stderr, "the whole merges: %s\n", e.msg);
        tok_free(t);
        mg.len = 10 * 4; // the first ten lines
        mg.data[mg.len] = 0;
        put_file("merges.txt", mg.data);
        expect_error("merges cut short", tmpdir, NULL, NULL, "merges.txt'", "30 tokens of the vocabulary are made by none of its 10 merges");
        buf_free(&vj), buf_free(&mg);
        put_file("vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 2}");
    }
    put_file("merges.txt", "a b c\n");
    expect_error("three pieces", tmpdir, NULL, NULL, "merges.txt' line 1", "two pieces");
    put_file("merges.txt", "b a\n");
    expect_error("merge result missing", tmpdir, NULL, NULL, "merges.txt' line 1", "'ba'");
    put_file("merges.txt", "a b\n");

    put_file("vocab.json", "{\"a\": 0, \"b\": 1,");
    expect_error("broken JSON", tmpdir, NULL, NULL, "vocab.json", "line 1");
    put_file("vocab.json", "[1, 2]");
    expect_error("not an object", tmpdir, NULL, NULL, "vocab.json", "not a JSON object");
    put_file("vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 99999999}");
    expect_error("id out of range", tmpdir, NULL, NULL, "vocab.json", "99999999");
    put_file("vocab.json", "{\"a\": 0, \"b\": -1, \"ab\": 2}");
    expect_error("negative id", tmpdir, NULL, NULL, "vocab.json", "'b' has id -1");
    put_file("vocab.json", "{\"a\": 0, \"b\": 1.5, \"ab\": 2}");
    expect_error("fractional id", tmpdir, NULL, NULL, "vocab.json", "1.5");
    put_file("vocab.json", "{\"a\": 0, \"b\": \"1\", \"ab\": 2}");
    expect_error("string id", tmpdir, NULL, NULL, "vocab.json", "not a number");
    put_file("vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 1}");
    expect_error("duplicate id", tmpdir, NULL, NULL, "vocab.json", "both have id 1");
    put_file("vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 3}");
    expect_error("id gap", tmpdir, NULL, NULL, "vocab.json", "no token has id 2");
    put_file("vocab.json", "{\"a\": 0, \"b\": 1, \"a\": 2}");
    expect_error("duplicate token", tmpdir, NULL, NULL, "vocab.json", "appears twice");
    put_file("vocab.json", "{}");
    expect_error("empty", tmpdir, NULL, NULL, "vocab.json", "empty");
    rm_file("vocab.json");
    rm_file("merges.txt");

    snprintf(p, sizeof p, "%s/tokenizer.json", tmpdir);
    put_file("tokenizer.json", "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}");
    expect_error("unsupported model", tmpdir, NULL, NULL, "tokenizer.json", "'Unigram' is not supported");
    put_file("tokenizer.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}");
    expect_error("empty WordPiece", tmpdir, NULL, NULL, "tokenizer.json", "the vocabulary is empty");
    put_file("tokenizer.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0, \"b\": 2}}}");
    expect_error("WordPiece id gap", tmpdir, NULL, NULL, "tokenizer.json", "no token has id 1");
    put_file("tokenizer.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}, \"unk_token\": \"[UNK]\"}}");
    expect_error("WordPiece without its unknown token", tmpdir, NULL, NULL, "tokenizer.json", "'[UNK]' is not in the vocabulary");
    put_file("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                               " \"pre_tokenizer\": {\"type\": \"Whitespace\"}}");
    expect_error("unsupported pre-tokenizer", p, NULL, NULL, "tokenizer.json", "'Whitespace'");
    put_file("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                               " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\","
                               " \"pattern\": {\"Regex\": \"\\\\w+\"}}, {\"type\": \"ByteLevel\", \"use_regex\": false}]}}");
    expect_error("unsupported split regex", p, NULL, NULL, "tokenizer.json", "regex");
    put_file("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2},"
                               " \"merges\": [\"ab\"]}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}");
    expect_error("bad merge string", p, NULL, NULL, "tokenizer.json' merge 1", "expected");
    put_file("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2},"
                               " \"merges\": [[\"a\", \"x\"]]}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}");
    expect_error("unknown piece (json)", p, NULL, NULL, "tokenizer.json' merge 1", "unknown piece 'x'");
    put_file("tokenizer.json", "{\"added_tokens\": [{\"id\": 1, \"content\": \"<s>\"}],"
                               " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": []},"
                               " \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}");
    expect_error("added token clash", p, NULL, NULL, "tokenizer.json", "belongs to 'b'");
    put_file("tokenizer.json", "{\"added_tokens\": [{\"id\": 70000000, \"content\": \"<s>\"}],"
                               " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                               " \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}");
    expect_error("added id out of range", p, NULL, NULL, "tokenizer.json", "70000000");
    rm_file("tokenizer.json");

    put_file("tok.pt", "PK");
    snprintf(p, sizeof p, "%s/tok.pt", tmpdir);
    expect_error("other file", p, NULL, NULL, "tok.pt", "not a tokenizer file");
    rm_file("tok.pt");
    // a GGUF is read for its tokenizer metadata: a broken one says what is wrong with it
    put_file("tok.gguf", "GGUF");
    snprintf(p, sizeof p, "%s/tok.gguf", tmpdir);
    expect_error("truncated GGUF", p, NULL, NULL, "tok.gguf", "truncated");
    rm_file("tok.gguf");
}

// A non-special added token that is a byte-fallback piece ("<0xAA>", which the vocabulary
// stores as the byte 0xAA) must not split a character whose UTF-8 holds that byte: 語 is
// E8 AA 9E. (Found by fuzz_tokenizers: the part before the match ended inside 語.)
static void test_added_byte_piece(void) {
    Buf j = {0};
    buf_puts(&j, "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 173, \"content\": \"<0xAA>\", \"special\": false}],"
                 " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"\\u2581\"},"
                 " {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"}]},"
                 " \"pre_tokenizer\": null, \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"byte_fallback\": true,"
                 " \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2");
    for (int b = 0; b < 256; b++) buf_printf(&j, ", \"<0x%02X>\": %d", b, 3 + b);
    buf_puts(&j, ", \"\\u2581\": 259, \"a\": 260}, \"merges\": []}}");
    buf_putc(&j, 0);
    put_file("tokenizer.json", j.data);
    buf_free(&j);
    Tokenizer *t = load_tmpdir();
    if (!t) return;
    IDS(t, "a\xE8\xAA\x9E", 0, 259, 260, 3 + 0xE8, 3 + 0xAA, 3 + 0x9E);
    IDS(t, "\xE8\xAA\x9E" "a", TOK_PARSE_SPECIAL, 259, 3 + 0xE8, 3 + 0xAA, 3 + 0x9E, 260);
    // but its text "<0xAA>" is the added token (HF tokenizers: [259, 260, 173, 259, 260], [259, 260, 259, 173])
    IDS(t, "a<0xAA>a", 0, 259, 260, 173, 259, 260);
    IDS(t, "a <0xAA>", TOK_PARSE_SPECIAL, 259, 260, 259, 173);
    tok_free(t);
    rm_file("tokenizer.json");
}

// A vocab.txt that lists a token twice: its text finds the last id, as BertTokenizerFast,
// BertTokenizer and tokenizers' WordPiece.from_file give ([2, 8, 6, 8, 7, 3] for "a b ab"
// here); qkv gave the first id (5).
static void test_vocab_dup(void) {
    Err e = {{0}};
    Tokenizer *t = tok_load(put_file("dup.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\n##b\na\n"), &e);
    CHECK(t != NULL);
    if (!t) {
        fprintf(stderr, "load: %s\n", e.msg);
        return;
    }
    CHECK_INT(tok_find(t, "a", 1), 8);
    IDS(t, "a b ab", TOK_ADD_SPECIAL, 2, 8, 6, 8, 7, 3);
    tok_free(t);
    rm_file("dup.txt");
}

// A chat template whose text holds a NUL byte: its literal parts keep their length (the copy
// of a part stopped at the NUL, and joining the next part then wrote past it: found by
// tok_fuzz under ASan). Every position of a ChatML template in turn.
static void test_chat_nul(void) {
    static const char chatml[] =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
        "'<|im_end|>' + '\n'}}{% endfor %}{# note #}x{# note #}y{% if add_generation_prompt %}"
        "{{ '<|im_start|>assistant\n' }}{% endif %}";
    const size_t n = sizeof chatml - 1;
    static const ChatMsg conv[] = {{"user", "hi", 2}};
    Tokenizer *t = tok_bytes_new();
    char *tmpl = malloc(n + 1);
    Buf out = {0};
    Err e = {{0}};
    CHECK(tok_chat_set_template(t, chatml, n, "<s>", "</s>", "chatml") == TOK_CHAT_CHATML);
    CHECK(tok_chat_render(t, conv, 1, true, &out, &e) == 0);
    for (size_t i = 0; i <= n; i++) {
        memcpy(tmpl, chatml, i);
        tmpl[i] = 0;
        memcpy(tmpl + i + 1, chatml + i, n - i);
        tok_chat_set_template(t, tmpl, n + 1, "<s>", "</s>", "chatml with a NUL");
        buf_clear(&out);
        e.msg[0] = 0;
        if (tok_chat_render(t, conv, 1, true, &out, &e)) CHECK(e.msg[0] != 0);
    }
    free(tmpl);
    buf_free(&out);
    tok_free(t);
}

// The last user message of prompts as transformers renders the four formats, found by their
// markers; plain text has none.
static void test_chat_user_text(void) {
    static const struct {
        const char *prompt, *want; // want NULL: no chat prompt
    } cases[] = {
        {"<|im_start|>system\nYou are X<|im_end|>\n<|im_start|>user\nfirst<|im_end|>\n<|im_start|>assistant\n"
         "reply<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
         "What is 2+2?"},
        {"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nSys<|eot_id|><|start_header_id|>user"
         "<|end_header_id|>\n\nHello there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
         "Hello there"},
        {"<s>[INST] <<SYS>>\nBe kind\n<</SYS>>\n\nName a cat. [/INST]", "Name a cat."},
        {"<s>[INST] a [/INST] b</s>[INST] Second question [/INST]", "Second question"},
        {"[SYSTEM_PROMPT]S[/SYSTEM_PROMPT][INST]q[/INST]", "q"},
        {"<|im_start|>user\nunfinished", "unfinished"},
        {"<|im_start|>user\n<|im_end|>\n", ""},
        {"The cat sat on the mat", NULL},
        {"", NULL},
        {"<|im_start|>user", NULL}, // the marker cut short
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t off = 99, len = 99, n = strlen(cases[i].prompt);
        bool got = chat_user_text(cases[i].prompt, n, &off, &len);
        CHECK(got == (cases[i].want != NULL));
        if (got && cases[i].want) {
            CHECK(off + len <= n);
            CHECK(len == strlen(cases[i].want) && !memcmp(cases[i].prompt + off, cases[i].want, len));
        }
    }
}

int main(void) {
    if (!mkdtemp(check_tmpl(tmpdir, sizeof tmpdir, "qkv-tok"))) {
        perror("mkdtemp");
        return 1;
    }
    test_byte_map();
    test_bytes_tokenizer();
    test_white_space();
    test_normal_forms();
    test_tiny();
    test_tokenizer_json();
    test_spm_unk();
    test_added_byte_piece();
    test_chat_user_text();
    test_chat_nul();
    test_vocab_dup();
    test_errors();
    rm_file("vocab.json");
    rm_file("merges.txt");
    rmdir(tmpdir);
    return CHECK_DONE();
}
