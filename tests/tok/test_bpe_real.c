// test_bpe_real.c - the real GPT-2 vocabulary ($QKV_SHARED_MODELS/gpt2-bpe-tokenizer): known
// encodings, the ways of loading it, and every line of the golden file tests/tok/bpe-golden.jsonl
// (ids from tiktoken and HF tokenizers, which agree on every line; see gen_golden.py).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "base/json.h"
#include "tok/tokenizer.h"

static void print_ids(const char *label, const int *ids, int n) {
    fprintf(stderr, "  %s [", label);
    for (int i = 0; i < n; i++) fprintf(stderr, "%s%d", i ? ", " : "", ids[i]);
    fprintf(stderr, "]\n");
}

static bool same_ids(const IntVec *v, const int *want, int n) {
    if (v->n != n) return false;
    for (int i = 0; i < n; i++)
        if (v->v[i] != want[i]) return false;
    return true;
}

static void check_ids(const Tokenizer *t, const char *text, unsigned flags, const int *want, int n) {
    IntVec v = {0};
    Err e = {{0}};
    int got = tok_encode(t, text, strlen(text), flags, &v, &e);
    if (got != n || !same_ids(&v, want, n)) {
        fprintf(stderr, "encode \"%s\" (flags %u): %s\n", text, flags, got < 0 ? e.msg : "");
        print_ids("expected", want, n);
        print_ids("got     ", v.v, v.n);
        check_failures++;
    }
    iv_free(&v);
}
#define IDS(t, s, flags, ...)                                                       \
    do {                                                                            \
        const int w_[] = {__VA_ARGS__};                                             \
        check_ids(t, s, flags, w_, (int)(sizeof w_ / sizeof w_[0]));                \
    } while (0)

static void test_known(const Tokenizer *t) {
    CHECK_INT(tok_vocab_size(t), 50257);
    CHECK_INT(tok_eos(t), 50256);
    CHECK_INT(tok_bos(t), 50256);
    CHECK(tok_is_special(t, 50256));
    CHECK(!tok_is_special(t, 15496));
    size_t len;
    CHECK_STR(tok_piece(t, 15496, &len), "Hello");
    CHECK_STR(tok_piece(t, 995, &len), " world");
    CHECK_INT(tok_find(t, " world", 6), 995);
    CHECK_INT(tok_find(t, "\n", 1), 198);
    IDS(t, "Hello world", 0, 15496, 995);
    IDS(t, "hello <|endoftext|>", TOK_PARSE_SPECIAL, 31373, 220, 50256);
    IDS(t, "hello <|endoftext|>", TOK_PARSE_SPECIAL | TOK_ADD_SPECIAL, 31373, 220, 50256);
    IDS(t, "hello <|endoftext|>", 0, 31373, 1279, 91, 437, 1659, 5239, 91, 29);
    // hand-checked pre-tokenizer cases: "  hello" is " " + " hello"; "\n\n" before a word is
    // two "\n"; 'm is a contraction, 'M is not
    IDS(t, "  hello", 0, 220, 23748);
    IDS(t, "a\n\nb", 0, 64, 198, 198, 65);
    IDS(t, "I'm", 0, 40, 1101);
    IDS(t, "I'M", 0, 40, 6, 44);
    // white space is Unicode White_Space, as in the original encoder (Python regex), tiktoken and
    // HF tokenizers: U+0085 is white space, U+FEFF is not (JavaScript's \s has it the other way)
    IDS(t, " \xc2\x85" "x", 0, 220, 126, 227, 87);      // " \u0085x"
    IDS(t, "a \xef\xbb\xbf" "b", 0, 64, 27332, 119, 123, 65); // "a \ufeffb"
    Buf b = {0};
    const int ids[] = {15496, 995, 50256};
    tok_decode(t, ids, 3, &b);
    CHECK_STR(b.data, "Hello world<|endoftext|>");
    buf_free(&b);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void test_golden(const Tokenizer *t, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open golden file '%s'\n", path);
        check_failures++;
        return;
    }
    Buf line = {0}, text = {0}, dec = {0};
    IntVec got = {0}, want = {0};
    int n_lines = 0, n_bad = 0, c;
    for (;;) {
        buf_clear(&line);
        while ((c = fgetc(f)) != EOF && c != '\n') buf_putc(&line, (char)c);
        if (!line.len && c == EOF) break;
        n_lines++;
        Err e = {{0}};
        Json *j = json_parse(line.data, line.len, &e);
        const Json *hex = json_get(j, "text_hex"), *ids = json_get(j, "ids");
        if (!j || !hex || hex->type != JSON_STR || hex->len % 2 || !ids || ids->type != JSON_ARR) {
            fprintf(stderr, "%s line %d: malformed (%s)\n", path, n_lines, j ? "fields" : e.msg);
            check_failures++;
            json_free(j);
            continue;
        }
        buf_clear(&text);
        for (size_t i = 0; i < hex->len; i += 2)
            buf_putc(&text, (char)(hexval(hex->str[i]) * 16 + hexval(hex->str[i + 1])));
        want.n = got.n = 0;
        for (size_t i = 0; i < ids->len; i++) iv_push(&want, (int)ids->items[i].num);
        int r = tok_encode(t, text.data ? text.data : "", text.len, 0, &got, &e);
        if (r < 0 || !same_ids(&got, want.v, want.n)) {
            if (++n_bad <= 10) {
                buf_clear(&dec);
                buf_json_str(&dec, text.data ? text.data : "", text.len);
                fprintf(stderr, "%s line %d: text %.300s (hex %.200s)%s%s\n", path, n_lines, dec.data, hex->str,
                        r < 0 ? ": " : "", r < 0 ? e.msg : "");
                print_ids("expected", want.v, want.n);
                print_ids("got     ", got.v, got.n);
            }
        }
        json_free(j);
    }
    fclose(f);
    fprintf(stderr, "golden: %d lines, %d mismatches\n", n_lines, n_bad);
    CHECK(n_lines >= 14000);
    CHECK_INT(n_bad, 0);
    buf_free(&line), buf_free(&text), buf_free(&dec);
    iv_free(&got), iv_free(&want);
}

static bool read_file(const char *path, Buf *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) buf_put(out, chunk, got);
    fclose(f);
    return true;
}

// Write the same vocabulary as an HF tokenizer.json (merges as "a b" strings) into dir.
static bool write_tokenizer_json(const char *vocab, const char *merges, const char *dir) {
    Buf v = {0}, m = {0}, j = {0};
    bool ok = read_file(vocab, &v) && read_file(merges, &m);
    buf_puts(&j, "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": [{\"id\": 50256, "
                 "\"content\": \"<|endoftext|>\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
                 "\"normalized\": true, \"special\": true}], \"normalizer\": null, \"pre_tokenizer\": {\"type\": "
                 "\"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}, "
                 "\"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": false, "
                 "\"use_regex\": true}, \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, "
                 "\"trim_offsets\": true, \"use_regex\": true}, \"model\": {\"type\": \"BPE\", \"dropout\": null, "
                 "\"unk_token\": null, \"continuing_subword_prefix\": \"\", \"end_of_word_suffix\": \"\", "
                 "\"fuse_unk\": false, \"byte_fallback\": false, \"ignore_merges\": false, \"vocab\": ");
    buf_put(&j, v.data, v.len);
    buf_puts(&j, ", \"merges\": [");
    int n = 0;
    for (char *s = m.data, *end = m.data + m.len; ok && s < end;) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        char *le = nl ? nl : end;
        if (le > s && strncmp(s, "#version", 8)) {
            if (n++) buf_puts(&j, ", ");
            buf_json_str(&j, s, (size_t)(le - s));
        }
        s = nl ? nl + 1 : end;
    }
    buf_puts(&j, "]}}");
    char path[CHECK_PATH_LEN];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = ok ? fopen(path, "wb") : NULL;
    ok = f && fwrite(j.data, 1, j.len, f) == j.len;
    if (f) ok &= fclose(f) == 0;
    buf_free(&v), buf_free(&m), buf_free(&j);
    return ok;
}

int main(void) {
    const char *models = check_shared_models();
    const char *src = getenv("QKV_SRCDIR");
    char dir[1024], vocab[1100], merges[1100], golden[1100];
    snprintf(dir, sizeof dir, "%s/gpt2-bpe-tokenizer", models ? models : ".");
    snprintf(vocab, sizeof vocab, "%s/encoder.json", dir);
    snprintf(merges, sizeof merges, "%s/vocab.bpe", dir);
    if (!models || access(vocab, R_OK) || access(merges, R_OK)) {
        printf("skip: the GPT-2 vocabulary is not in %s\n", dir);
        return 77;
    }
    Err e = {{0}};
    Tokenizer *t = tok_load_vocab_merges(vocab, merges, &e);
    if (!t) {
        fprintf(stderr, "load '%s': %s\n", vocab, e.msg);
        return 1;
    }
    test_known(t);
    snprintf(golden, sizeof golden, "%s/tests/tok/bpe-golden.jsonl", src ? src : ".");
    test_golden(t, golden);
    tok_free(t);

    // the directory and the vocabulary file alone load the same tokenizer
    const char *paths[2] = {dir, vocab};
    for (int i = 0; i < 2; i++) {
        t = tok_load(paths[i], &e);
        CHECK(t != NULL);
        if (!t) {
            fprintf(stderr, "load '%s': %s\n", paths[i], e.msg);
            continue;
        }
        IDS(t, "Hello world", 0, 15496, 995);
        tok_free(t);
    }

    // the GGUF copy of the vocabulary is not needed: a directory holding only links to the two files
    char tmp[CHECK_TMP_LEN], l1[CHECK_PATH_LEN], l2[CHECK_PATH_LEN];
    if (!mkdtemp(check_tmpl(tmp, sizeof tmp, "qkv-bpe"))) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(l1, sizeof l1, "%s/encoder.json", tmp);
    snprintf(l2, sizeof l2, "%s/vocab.bpe", tmp);
    CHECK(symlink(vocab, l1) == 0 && symlink(merges, l2) == 0);
    t = tok_load(tmp, &e);
    CHECK(t != NULL);
    if (t) IDS(t, "hello <|endoftext|>", TOK_PARSE_SPECIAL, 31373, 220, 50256);
    else fprintf(stderr, "load '%s': %s\n", tmp, e.msg);
    tok_free(t);

    // the same vocabulary as a tokenizer.json, which the directory then prefers
    char tj[CHECK_PATH_LEN];
    snprintf(tj, sizeof tj, "%s/tokenizer.json", tmp);
    CHECK(write_tokenizer_json(vocab, merges, tmp));
    t = tok_load(tmp, &e);
    CHECK(t != NULL);
    if (t) {
        test_known(t);
        test_golden(t, golden);
    } else {
        fprintf(stderr, "load '%s': %s\n", tj, e.msg);
    }
    tok_free(t);
    unlink(tj), unlink(l1), unlink(l2), rmdir(tmp);
    return CHECK_DONE();
}
