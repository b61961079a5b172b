// test_lang.c - the command language on its own (app/lang.c): lexing words, quotes and C
// escapes, options against positionals, splitting scripts at ';' and newlines, comments,
// typed option accessors and their messages, the generic arity/option checks, the registry,
// and quoting (buf_put_quoted) read back byte for byte.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../check.h"
#include "lang.h"

// Parse line; on success return the Args (caller frees), else fill msg.
static int parse(const char *line, Args *a, char *msg, size_t cap) {
    Err e = {0};
    int rc = lang_parse(line, strlen(line), a, &e);
    snprintf(msg, cap, "%s", e.msg);
    return rc;
}

static void test_words(void) {
    Args a;
    char msg[512];
    CHECK_INT(parse("generate \"Hello world\" max=20 temperature=0.5", &a, msg, sizeof msg), 0);
    CHECK_STR(a.name, "generate");
    CHECK_INT(a.n, 3);
    CHECK_INT(args_npos(&a), 1);
    CHECK_STR(args_pos(&a, 0)->val, "Hello world");
    CHECK(args_pos(&a, 0)->quoted);
    CHECK_STR(args_opt(&a, "max"), "20");
    CHECK_STR(args_opt(&a, "temperature"), "0.5");
    CHECK(args_opt(&a, "seed") == NULL);
    CHECK(args_pos(&a, 1) == NULL);
    args_free(&a);

    // a leading ':' is allowed; the last of a repeated option wins
    CHECK_INT(parse(":logits ids=1,2 top=3 top=5", &a, msg, sizeof msg), 0);
    CHECK_STR(a.name, "logits");
    CHECK_STR(args_opt(&a, "top"), "5");
    args_free(&a);

    // "a=b" quoted is text, a=b bare is an option, key="a b" is an option with spaces
    CHECK_INT(parse("tokenize \"a=b\" k=\"x y\" 'single q'", &a, msg, sizeof msg), 0);
    CHECK_INT(args_npos(&a), 2);
    CHECK_STR(args_pos(&a, 0)->val, "a=b");
    CHECK_STR(args_opt(&a, "k"), "x y");
    CHECK_STR(args_pos(&a, 1)->val, "single q");
    args_free(&a);

    // the command word itself is never an option
    CHECK_INT(parse("x=1 y=2", &a, msg, sizeof msg), 0);
    CHECK_STR(a.name, "x=1");
    CHECK_STR(args_opt(&a, "y"), "2");
    args_free(&a);

    CHECK(parse("", &a, msg, sizeof msg) < 0);
    CHECK(strstr(msg, "empty command") != NULL);
    CHECK(parse("   \t ", &a, msg, sizeof msg) < 0);
}

static void test_escapes(void) {
    Args a;
    char msg[512];
    CHECK_INT(parse("t \"a\\nb\\tc\\\\d\\\"e\\x41\\u00e9\\U0001F600\\0z\"", &a, msg, sizeof msg), 0);
    const Arg *p = args_pos(&a, 0);
    static const char want[] = "a\nb\tc\\d\"eA\xc3\xa9\xf0\x9f\x98\x80\0z";
    CHECK_INT(p->len, sizeof want - 1);
    CHECK(p->len == sizeof want - 1 && !memcmp(p->val, want, p->len));
    args_free(&a);
    static const struct {
        const char *line, *msg;
    } bad[] = {
        {"t \"abc", "unterminated"},
        {"t 'abc", "unterminated"},
        {"t \"\\q\"", "unknown escape"},
        {"t \"\\xZZ\"", "hex digits"},
        {"t \"\\u12\"", "4 hex digits"},
        {"t \"\\ud800\"", "not a character"},
        {"t \"\\U00110000\"", "not a character"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = parse(bad[i].line, &a, msg, sizeof msg);
        if (rc == 0) {
            fprintf(stderr, "parse(%s): expected an error with \"%s\", it parsed\n", bad[i].line, bad[i].msg);
            check_failures++;
            args_free(&a);
        } else if (!strstr(msg, bad[i].msg)) {
            fprintf(stderr, "parse(%s): expected \"%s\" in \"%s\"\n", bad[i].line, bad[i].msg, msg);
            check_failures++;
        }
    }
}

typedef struct {
    char cmds[8][64];
    int n;
} Split;

static int collect(void *user, const char *cmd, size_t n) {
    Split *s = user;
    if (s->n < 8) snprintf(s->cmds[s->n++], 64, "%.*s", (int)n, cmd);
    return 0;
}

static int stop_at_two(void *user, const char *cmd, size_t n) {
    Split *s = user;
    collect(user, cmd, n);
    return s->n == 2 ? 7 : 0;
}

static void test_split(void) {
    static const char script[] = "model; tokenize \"a;b\" \n# a comment; not a command\n  generate 'x;\"y'  ;;\n"
                                 "set seed 3 # trailing text is an argument\n";
    Split s = {0};
    CHECK_INT(lang_split(script, sizeof script - 1, collect, &s), 0);
    CHECK_INT(s.n, 4);
    CHECK_STR(s.cmds[0], "model");
    CHECK_STR(s.cmds[1], "tokenize \"a;b\"");
    CHECK_STR(s.cmds[2], "generate 'x;\"y'");
    CHECK_STR(s.cmds[3], "set seed 3 # trailing text is an argument");
    // an escaped quote inside double quotes does not end them
    Split t = {0};
    static const char esc[] = "a \"x\\\";y\"; b";
    CHECK_INT(lang_split(esc, sizeof esc - 1, collect, &t), 0);
    CHECK_INT(t.n, 2);
    CHECK_STR(t.cmds[0], "a \"x\\\";y\"");
    // the first non-zero return stops the split and is returned
    Split u = {0};
    CHECK_INT(lang_split("a;b;c", 5, stop_at_two, &u), 7);
    CHECK_INT(u.n, 2);
}

// Whether a stream's text so far ends inside a quote (its last command goes on), read whole and
// line by line (each line from the quote the lines before ended in): the same answer.
static void test_open_quote(void) {
    static const struct {
        const char *text;
        char open;
    } cases[] = {{"tokenize \"a", '"'},      {"tokenize \"a\"\n", 0}, {"x 'a", '\''},
                 {"x \"a\\\"", '"'},          {"x \"a\\\\\"", 0},   {"# it's a comment\n", 0},
                 {"a; b \"c\nd", '"'},        {"a \"b\nc\"\n", 0},    {"", 0},
                 {"x 'say \"hi' \"", '"'},     {"x \"a\\\nb\nc\"; # \"\n", 0}, {"x \"a\n\"#'\n", '\''},
                 {"x 'a\n\n' ; y \"\n", '"'}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *t = cases[i].text;
        char whole = lang_quote_after(t, strlen(t), 0), lines = 0;
        for (const char *l = t; *l;) {
            const char *nl = strchr(l, '\n');
            size_t n = nl ? (size_t)(nl - l) + 1 : strlen(l);
            lines = lang_quote_after(l, n, lines);
            l += n;
        }
        if (whole != cases[i].open || lines != cases[i].open)
            fprintf(stderr, "lang_quote_after(%s): %d whole, %d line by line; %d expected\n", t, whole, lines,
                    cases[i].open);
        CHECK(whole == cases[i].open && lines == cases[i].open);
    }
}

static void test_accessors(void) {
    Args a;
    char msg[512];
    CHECK_INT(parse("c n=5 big=99999999999 f=0.25 neg=-2 b1=on b2=no bad=maybe x=1e999 s=12abc", &a, msg, sizeof msg), 0);
    Err e = {0};
    long long v = -1;
    double f = -1;
    bool b = false;
    CHECK_INT(args_int(&a, "n", 0, 10, &v, &e), 1);
    CHECK_INT(v, 5);
    CHECK_INT(args_int(&a, "absent", 0, 10, &v, &e), 0);
    CHECK_INT(v, 5); // untouched when absent
    CHECK_INT(args_int(&a, "big", 0, 1000, &v, &e), -1);
    CHECK(strstr(e.msg, "must be in [0, 1000]") != NULL);
    // a guard bound of 2^30 is not quoted to a person ("from=-1: must be in [0, 1073741824]")
    Args big;
    CHECK_INT(lang_parse("attend from=-1", 14, &big, &e), 0);
    long long pos = 0;
    CHECK_INT(args_int(&big, "from", 0, 1 << 30, &pos, &e), -1);
    CHECK_STR(e.msg, "from=-1: must be 0 or more");
    args_free(&big);
    CHECK_INT(args_int(&a, "s", 0, 1000, &v, &e), -1);
    CHECK(strstr(e.msg, "an integer expected") != NULL);
    CHECK_INT(args_int(&a, "neg", 0, 10, &v, &e), -1);
    CHECK_INT(args_float(&a, "f", 0, 1, &f, &e), 1);
    CHECK_NEAR(f, 0.25, 0);
    CHECK_INT(args_float(&a, "x", 0, 1, &f, &e), -1);
    CHECK(strstr(e.msg, "a number expected") != NULL);
    CHECK_INT(args_bool(&a, "b1", &b, &e), 1);
    CHECK(b);
    CHECK_INT(args_bool(&a, "b2", &b, &e), 1);
    CHECK(!b);
    CHECK_INT(args_bool(&a, "bad", &b, &e), -1);
    CHECK(strstr(e.msg, "true or false expected") != NULL);
    args_free(&a);
}

static int fake_fn(App *app, const Args *a, Out *out) {
    (void)app, (void)a;
    jw_kint(&out->w, "ran", 1);
    return 0;
}

static const char *const k_fake[] = {"alpha", "beta", NULL};
static const Command fake_commands[] = {
    {"fake", fake_fn, 1, 2, k_fake, "fake A [B] [alpha= beta=]", "A test command.", false},
    {"bare", fake_fn, 0, 0, NULL, "bare", "No arguments.", false},
    {"forms", fake_fn, 1, 1, k_fake, "forms a [alpha=] | forms b [beta=]", "Checks its forms' options.", false, false,
     true},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};

static void expect_check(const char *line, const char *want) {
    Args a;
    char msg[512];
    if (parse(line, &a, msg, sizeof msg)) {
        fprintf(stderr, "%s: did not parse: %s\n", line, msg);
        check_failures++;
        return;
    }
    Out o;
    out_init(&o);
    int rc = lang_check_args(lang_find(a.name), &a, &o);
    if (!want && rc) {
        fprintf(stderr, "%s: expected to pass the checks, got \"%s\"\n", line, o.err.data);
        check_failures++;
    } else if (want && (!rc || !strstr(o.err.data ? o.err.data : "", want))) {
        fprintf(stderr, "%s: expected an error with \"%s\", got %s\n", line, want, rc ? o.err.data : "success");
        check_failures++;
    }
    out_free(&o);
    args_free(&a);
}

static void test_registry(void) {
    CHECK(lang_find("fake") == NULL);
    lang_register(fake_commands);
    lang_register(fake_commands); // twice: once in the registry
    CHECK(lang_find("fake") == &fake_commands[0]);
    CHECK(lang_find("bare") == &fake_commands[1]);
    CHECK(lang_find("fak") == NULL); // exact names only
    int n = 0;
    while (lang_at(n)) n++;
    CHECK_INT(n, 3);
    expect_check("fake one", NULL);
    expect_check("fake one two alpha=1 beta=2", NULL);
    expect_check("fake", "wrong number of arguments: usage: fake A [B]");
    expect_check("fake a b c", "wrong number of arguments");
    expect_check("fake a gamma=1", "unknown option 'gamma' (options: alpha, beta)");
    expect_check("bare x", "takes no positional argument");
    expect_check("bare k=1", "unknown option 'k' (it takes no options)");
    // an option given twice is refused (it was: the last one won, silently)
    expect_check("fake a alpha=1 beta=2 alpha=3", "fake: alpha= given twice (1 and 3): give it once");
    // a command whose forms check their own options: an unknown one reaches the handler, which
    // names the form and its list (reward train's listed reward score's too); twice still refused
    expect_check("forms a gamma=1", NULL);
    expect_check("forms a alpha=1 alpha=2", "forms: alpha= given twice (1 and 2): give it once");
}

// buf_put_quoted then lang_parse gives back the same bytes, for every byte value and for
// random strings.
static void test_quoting(void) {
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int round = 0; round < 2000; round++) {
        char s[64];
        size_t n = round < 256 ? 1 : (size_t)(x % 40);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            s[i] = round < 256 ? (char)round : (char)(x & 0xff);
        }
        Buf line = {0};
        buf_puts(&line, "t ");
        buf_put_quoted(&line, s, n);
        buf_puts(&line, " k=");
        buf_put_quoted(&line, s, n);
        Args a;
        Err e = {0};
        if (lang_parse(line.data, line.len, &a, &e)) {
            fprintf(stderr, "quoted string of %zu bytes did not parse back: %s\n", n, e.msg);
            check_failures++;
        } else {
            const Arg *p = args_pos(&a, 0);
            if (!p || p->len != n || memcmp(p->val, s, n)) {
                fprintf(stderr, "round %d: quoting lost bytes (%zu in, %zu out)\n", round, n, p ? p->len : 0);
                check_failures++;
            }
            const char *k = args_opt(&a, "k");
            if (!k || (n && memcmp(k, s, n))) {
                fprintf(stderr, "round %d: quoted option value differs\n", round);
                check_failures++;
            }
            args_free(&a);
        }
        buf_free(&line);
    }
}

int main(void) {
    test_words();
    test_escapes();
    test_split();
    test_open_quote();
    test_accessors();
    test_registry();
    test_quoting();
    return CHECK_DONE();
}
