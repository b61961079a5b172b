// test_json.c - the JSON parser and writer.
#include "../check.h"
#include "base/buf.h"
#include "base/json.h"

static void parse_ok(const char *s) {
    Err e = {0};
    Json *j = json_parse(s, strlen(s), &e);
    if (!j) fprintf(stderr, "parse of %s failed: %s\n", s, e.msg), check_failures++;
    json_free(j);
}

static void parse_bad(const char *s, const char *want) {
    Err e = {0};
    Json *j = json_parse(s, strlen(s), &e);
    CHECK(j == NULL);
    json_free(j);
    if (!strstr(e.msg, want)) fprintf(stderr, "for %s expected error with '%s', got '%s'\n", s, want, e.msg), check_failures++;
}

// The JSON files qkv reads (tokenizer.json, config.json, ...) all go through json_parse_file:
// one starting with a UTF-8 byte-order mark is read as without it (it said "line 1 column 1: bad
// number"); a BOM anywhere else is still an error.
static void test_file_bom(void) {
    char path[CHECK_TMP_LEN];
    check_tmpl(path, sizeof path, "qkv-test-json");
    int fd = mkstemp(path);
    static const char text[] = "\xef\xbb\xbf{\"model\": {\"type\": \"BPE\"}}\n";
    CHECK(fd >= 0 && write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1));
    close(fd);
    Err e = {0};
    Json *j = json_parse_file(path, &e);
    if (!j) fprintf(stderr, "a file with a byte-order mark: %s\n", e.msg);
    CHECK(j && json_get(j, "model") != NULL);
    json_free(j);
    FILE *f = fopen(path, "wb");
    fputs("[1, \xef\xbb\xbf" "2]", f);
    fclose(f);
    j = json_parse_file(path, &e);
    CHECK(j == NULL);
    json_free(j);
    unlink(path);
}

int main(void) {
    test_file_bom();
    Err e = {0};
    const char *doc = "{\"a\": [1, 2.5, -3e2, true, false, null], \"s\": \"x\\n\\u00e9\\ud83d\\ude00\", \"o\": {}}";
    Json *j = json_parse(doc, strlen(doc), &e);
    CHECK(j != NULL);
    const Json *a = json_get(j, "a");
    CHECK(a && a->type == JSON_ARR && a->len == 6);
    CHECK_NEAR(json_at(a, 1)->num, 2.5, 0);
    CHECK_NEAR(json_at(a, 2)->num, -300, 0);
    CHECK(json_at(a, 3)->type == JSON_BOOL && json_at(a, 3)->b);
    CHECK(json_at(a, 5)->type == JSON_NULL);
    CHECK_STR(json_str_or(j, "s", NULL), "x\n\xc3\xa9\xf0\x9f\x98\x80");
    CHECK(json_get(j, "o")->type == JSON_OBJ && json_get(j, "o")->len == 0);
    long long v;
    CHECK(json_int_in(json_at(a, 0), 0, 10, &v) && v == 1);
    CHECK(!json_int_in(json_at(a, 1), 0, 10, &v));
    json_free(j);

    parse_ok("[]");
    parse_ok("  \"\"  ");
    parse_bad("", "unexpected end");
    parse_bad("[1,]", "line 1 column 4");
    parse_bad("{\"a\" 1}", "expected ':'");
    parse_bad("[1] x", "trailing");
    parse_bad("\"abc", "unterminated");
    parse_bad("01", "trailing");
    parse_bad("{\"a\":[1,{\"b\":", "unexpected end");
    // deep nesting is refused, not a stack overflow
    char deep[5000];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = 0;
    parse_bad(deep, "nesting too deep");

    // writer: commas, escapes, invalid UTF-8 and non-finite numbers
    Buf b = {0};
    JsonW w;
    jw_init(&w, &b);
    jw_obj(&w);
    jw_kint(&w, "n", 3);
    jw_key(&w, "xs");
    jw_arr(&w);
    jw_num(&w, 0.5);
    jw_num(&w, NAN);
    jw_obj(&w);
    jw_obj_end(&w);
    jw_arr_end(&w);
    jw_kstr(&w, "s", "q\"\x01\xff");
    jw_obj_end(&w);
    CHECK_STR(b.data, "{\"n\":3,\"xs\":[0.5,null,{}],\"s\":\"q\\\"\\u0001\\ufffd\"}");
    Json *back = json_parse(b.data, b.len, &e);
    CHECK(back != NULL);
    json_free(back);
    buf_free(&b);
    return CHECK_DONE();
}
