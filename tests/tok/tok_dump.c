// tok_dump.c - test-only: core/tok functions that the qkv command language does not reach,
// line by line, so that the Python reference tests can compare them with HF tokenizers,
// transformers and Python's unicodedata.
//
// Usage: tok_dump nfc|nfd     stdin: one text per line as hex of its UTF-8 (well-formed);
//                             stdout: the NFC / NFD of each (uni_nfc, uni_nfd), hex, one a line
//        tok_dump chat PATH   loads the tokenizer PATH (tok_load) with its chat template;
//                             stdout first "kind NAME"; then per stdin line, a JSON object
//                             {"messages": [{"role": ..., "content": ...}], "gen": true|false},
//                             the rendered text in hex (tok_chat_render) or "error MESSAGE"
// Exit 0, or 1 with a message on stderr.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/utf8.h"
#include "tok/chat.h"
#include "tok/unicode_norm.h"

// The bytes of the hex text s (n characters) into out; false when s is not hex.
static bool unhex(const char *s, size_t n, Buf *out) {
    if (n % 2) return false;
    for (size_t i = 0; i < n; i += 2) {
        unsigned v;
        if (sscanf(s + i, "%2x", &v) != 1) return false;
        buf_putc(out, (char)v);
    }
    return true;
}

static void put_hex(const Buf *b) {
    for (size_t i = 0; i < b->len; i++) printf("%02x", (unsigned char)b->data[i]);
    putchar('\n');
}

static int normal_form(bool nfc) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    Buf text = {0}, out = {0};
    CpVec in = {0}, res = {0};
    long n = 0;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        n++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        buf_clear(&text);
        if (!unhex(line, (size_t)len, &text)) {
            fprintf(stderr, "line %ld: not hex\n", n);
            return 1;
        }
        in.n = res.n = 0;
        for (size_t i = 0; i < text.len;) {
            uint32_t c;
            i += (size_t)utf8_decode(text.data + i, text.len - i, &c);
            cp_push(&in, c);
        }
        if (nfc) uni_nfc(in.v, in.n, &res);
        else uni_nfd(in.v, in.n, &res);
        buf_clear(&out);
        for (size_t k = 0; k < res.n; k++) {
            char u[4];
            buf_put(&out, u, (size_t)utf8_encode(res.v[k], u));
        }
        put_hex(&out);
    }
    free(line);
    buf_free(&text);
    buf_free(&out);
    cp_free(&in);
    cp_free(&res);
    return 0;
}

static int chat(const char *path) {
    Err e = {{0}};
    Tokenizer *t = tok_load(path, &e);
    if (!t) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    printf("kind %s\n", tok_chat_kind_name(tok_chat_kind(t)));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    Buf out = {0};
    int rc = 0;
    while (!rc && (len = getline(&line, &cap, stdin)) >= 0) {
        Json *j = json_parse(line, (size_t)len, &e);
        const Json *msgs = json_get(j, "messages");
        if (!j || !msgs || msgs->type != JSON_ARR) {
            fprintf(stderr, "not a conversation: %s\n", line);
            rc = 1;
        } else {
            ChatMsg *m = calloc(msgs->len + 1, sizeof *m);
            for (size_t i = 0; i < msgs->len; i++) {
                const Json *c = json_get(&msgs->items[i], "content");
                m[i].role = json_str_or(&msgs->items[i], "role", NULL);
                m[i].text = c && c->type == JSON_STR ? c->str : "";
                m[i].len = c && c->type == JSON_STR ? c->len : 0;
            }
            buf_clear(&out);
            if (tok_chat_render(t, m, (int)msgs->len, json_bool_or(j, "gen", false), &out, &e) == 0) put_hex(&out);
            else printf("error %s\n", e.msg);
            free(m);
        }
        json_free(j);
    }
    free(line);
    buf_free(&out);
    tok_free(t);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "chat")) return chat(argv[2]);
    if (argc == 2 && (!strcmp(argv[1], "nfc") || !strcmp(argv[1], "nfd"))) return normal_form(!strcmp(argv[1], "nfc"));
    fprintf(stderr, "usage: tok_dump nfc|nfd < hex lines; tok_dump chat TOKENIZER < JSON lines\n");
    return 1;
}
