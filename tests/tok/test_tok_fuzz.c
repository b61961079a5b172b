// test_tok_fuzz.c - a few hundred thousand random and mutated byte strings (seeded, so every run
// is the same) through tok_encode with the byte tokenizer and, when present, the real GPT-2
// vocabulary: no crash, ids in range, no special id unless asked for, decode(encode(x)) equal to
// x with ill-formed UTF-8 replaced by U+FFFD, and encoding that text again gives the same ids.
// And the chat templates of tests/tok/chat, mutated a few thousand times each, read and used to
// render conversations of random texts: no crash, a failure always with a message, and each
// template as it is rendering (or, for those qkv refuses, refused).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dirent.h>

#include "../check.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/utf8.h"
#include "tok/chat.h"
#include "tok/tokenizer.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(uint32_t n) { // uniform enough in [0, n)
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545F4914F6CDD1Dull) >> 33) % n;
}

static const char *seeds[] = {
    "Hello world", "  hello", "a\n\nb", "I'm here, I'M there; it's 'tis", "don't we're they've I'll he'd",
    "1,234.56 and 7890", "   \t\n  \r\n", "caf\xC3\xA9 cafe\xCC\x81 na\xC3\xAFve", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
    "\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7", "\xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8\xE0\xA5\x8D\xE0\xA4\xA4\xE0\xA5\x87",
    "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7", "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
    "<|endoftext|>", "hello <|endoftext|> world<|endoftext|", "\",\"],[\"',' .\",\"", "!!!???...---",
    "\xC2\xA0\xE3\x80\x80\xE2\x80\xA8\xEF\xBB\xBF", "x\x01\x02\x1f\x7f y", "\xFF\xFE\xC0\x80\xED\xA0\x80\xF4\x90\x80\x80",
    "supercalifragilisticexpialidocious", "\xE2\x85\xAB \xC2\xBD \xD9\xA3\xD9\xA4",
};
enum { N_SEEDS = sizeof seeds / sizeof seeds[0] };

// Apply muts random edits to b: flip a bit, set a byte, insert one, delete, repeat or cut a range.
static void mutate(Buf *b, uint32_t muts) {
    for (uint32_t m = 0; m < muts && b->len; m++) {
        size_t at = rnd((uint32_t)b->len);
        switch (rnd(6)) {
        case 0: b->data[at] ^= (char)(1u << rnd(8)); break;
        case 1: b->data[at] = (char)rnd(256); break;
        case 2: { // insert a byte
            buf_putc(b, 0);
            memmove(b->data + at + 1, b->data + at, b->len - at - 1);
            b->data[at] = (char)rnd(256);
            break;
        }
        case 3: { // delete a range
            size_t n = 1 + rnd(8);
            if (n > b->len - at) n = b->len - at;
            memmove(b->data + at, b->data + at + n, b->len - at - n);
            b->len -= n;
            break;
        }
        case 4: { // repeat a range
            size_t n = 1 + rnd(6), reps = 1 + rnd(20);
            if (n > b->len - at) n = b->len - at;
            char tmp[8];
            memcpy(tmp, b->data + at, n);
            for (size_t r = 0; r < reps; r++) buf_put(b, tmp, n);
            break;
        }
        default: b->len = at; break; // truncate
        }
    }
    if (b->data) b->data[b->len] = 0;
}

// Fill b with one test string.
static void make_case(Buf *b) {
    buf_clear(b);
    uint32_t kind = rnd(4);
    if (kind == 0) { // random bytes, sometimes only ASCII or only high bytes
        uint32_t n = rnd(80), mode = rnd(3);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t x = rnd(256);
            buf_putc(b, (char)(mode == 0 ? x : mode == 1 ? x & 0x7F : x | 0x80));
        }
        return;
    }
    // a few seeds joined, then mutated
    uint32_t parts = 1 + rnd(3);
    for (uint32_t i = 0; i < parts; i++) {
        buf_puts(b, seeds[rnd(N_SEEDS)]);
        if (rnd(2)) buf_putc(b, " \n\t"[rnd(3)]);
    }
    mutate(b, kind == 1 ? 0 : 1 + rnd(5));
    if (b->data) b->data[b->len] = 0;
}

static void clean_utf8(const char *s, size_t n, Buf *out) {
    buf_clear(out);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        char u[4];
        i += (size_t)utf8_decode(s + i, n - i, &cp);
        buf_put(out, u, (size_t)utf8_encode(cp, u));
    }
}

static int n_reported;

static void report(const char *what, const Buf *x) {
    if (++n_reported > 10) return;
    Buf q = {0};
    buf_json_str(&q, x->data ? x->data : "", x->len);
    fprintf(stderr, "%s: input %s (%zu bytes)\n", what, q.data, x->len);
    buf_free(&q);
}

static void run(const Tokenizer *t, const char *name, int n_cases) {
    Buf x = {0}, want = {0}, got = {0};
    IntVec v = {0}, v2 = {0};
    int fails = 0, n = tok_vocab_size(t);
    for (int c = 0; c < n_cases; c++) {
        make_case(&x);
        unsigned flags = rnd(3) == 0 ? 0 : rnd(2) ? TOK_PARSE_SPECIAL : TOK_PARSE_SPECIAL | TOK_ADD_SPECIAL;
        const char *s = x.data ? x.data : "";
        Err e = {{0}};
        v.n = 0;
        int k = tok_encode(t, s, x.len, flags, &v, &e);
        if (k < 0 || k != v.n) {
            report(k < 0 ? e.msg : "count differs from ids appended", &x), fails++;
            continue;
        }
        bool ok = true;
        for (int i = 0; i < v.n; i++) {
            ok &= v.v[i] >= 0 && v.v[i] < n;
            if (!(flags & TOK_PARSE_SPECIAL)) ok &= !tok_is_special(t, v.v[i]);
        }
        if (!ok) {
            report("id out of range or unasked special id", &x), fails++;
            continue;
        }
        clean_utf8(s, x.len, &want);
        buf_clear(&got);
        tok_decode(t, v.v, v.n, &got);
        if (got.len != want.len || (want.len && memcmp(got.data, want.data, want.len))) {
            report("decode(encode(x)) differs from x", &x), fails++;
            continue;
        }
        if (c % 8 == 0) { // the replaced text tokenizes as the original did
            v2.n = 0;
            tok_encode(t, want.data ? want.data : "", want.len, flags, &v2, &e);
            ok = v2.n == v.n;
            for (int i = 0; ok && i < v.n; i++) ok = v.v[i] == v2.v[i];
            if (!ok) report("encode(clean(x)) differs from encode(x)", &x), fails++;
        }
    }
    fprintf(stderr, "%s: %d cases, %d failures\n", name, n_cases, fails);
    check_failures += fails;
    buf_free(&x), buf_free(&want), buf_free(&got);
    iv_free(&v), iv_free(&v2);
}

// The chat templates of tests/tok/chat/*.json, each as it is and mutated n times.
static void fuzz_chat(int n) {
    const char *src = getenv("QKV_SRCDIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/tok/chat", src ? src : ".");
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "chat: %s absent (QKV_SRCDIR unset?)\n", dir);
        check_failures++;
        return;
    }
    static const ChatMsg conv[] = {{"system", " sys ", 5}, {"user", "hi\n", 3}, {"assistant", "\tok", 3}, {"user", "", 0}};
    Tokenizer *t = tok_bytes_new();
    Buf tmpl = {0}, out = {0}, text = {0};
    int files = 0, fails = 0, rendered = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".json")) continue;
        char *path = fs_join(dir, de->d_name);
        Err e = {{0}};
        Json *j = json_parse_file(path, &e);
        const Json *ct = json_get(j, "chat_template");
        if (!j || !ct || ct->type != JSON_STR) {
            fprintf(stderr, "%s: %s\n", path, j ? "no chat_template" : e.msg);
            fails++;
        } else {
            files++;
            bool refused = !strcmp(json_str_or(j, "kind", ""), "refused");
            for (int k = 0; k <= n; k++) {
                buf_clear(&tmpl);
                buf_put(&tmpl, ct->str, ct->len);
                if (k) mutate(&tmpl, 1 + rnd(6));
                TokChatKind kind = tok_chat_set_template(t, tmpl.data ? tmpl.data : "", tmpl.len, "<s>", "</s>", path);
                for (int c = 0; c < 3; c++) {
                    ChatMsg m[4];
                    memcpy(m, conv, sizeof m);
                    buf_clear(&text);
                    mutate(&text, rnd(4)); // random text for the user's message
                    m[1].text = text.data ? text.data : "", m[1].len = text.len;
                    buf_clear(&out);
                    e.msg[0] = 0;
                    int rc = tok_chat_render(t, m + (c == 2), 4 - (c == 2) - (c == 1), c != 1, &out, &e);
                    rendered += rc == 0;
                    if (rc && !e.msg[0]) fprintf(stderr, "%s: a render failed without a message\n", path), fails++;
                    if (!k && !refused && (kind == TOK_CHAT_NONE || (rc && c == 2)))
                        fprintf(stderr, "%s: not rendered: %s\n", path, e.msg), fails++;
                    if (!k && refused && kind != TOK_CHAT_NONE) fprintf(stderr, "%s: not refused\n", path), fails++;
                }
            }
        }
        json_free(j);
        free(path);
    }
    closedir(d);
    fprintf(stderr, "chat: %d templates, %d mutations each, %d renders succeeded, %d failures\n", files, n, rendered,
            fails);
    if (files < 10) fprintf(stderr, "chat: expected at least 10 templates in %s\n", dir), fails++;
    check_failures += fails;
    buf_free(&tmpl), buf_free(&out), buf_free(&text);
    tok_free(t);
}

int main(void) {
    Tokenizer *t = tok_bytes_new();
    run(t, "bytes", 200000);
    tok_free(t);

    const char *models = check_shared_models();
    char v[1024], m[1024];
    snprintf(v, sizeof v, "%s/gpt2-bpe-tokenizer/encoder.json", models ? models : ".");
    snprintf(m, sizeof m, "%s/gpt2-bpe-tokenizer/vocab.bpe", models ? models : ".");
    if (models && !access(v, R_OK) && !access(m, R_OK)) {
        Err e = {{0}};
        t = tok_load_vocab_merges(v, m, &e);
        CHECK(t != NULL);
        if (t) run(t, "gpt2", 150000);
        else fprintf(stderr, "load: %s\n", e.msg);
        tok_free(t);
    } else {
        fprintf(stderr, "gpt2: vocabulary absent, only the byte tokenizer was fuzzed\n");
    }
    fuzz_chat(3000);
    return CHECK_DONE();
}
