// test_label.c - token labels: visible whitespace and controls, display width of CJK and emoji,
// truncation, in UTF-8 and ASCII modes.
#include <locale.h>
#include <wchar.h>

#include "../check.h"
#include "label.h"

// label_format of C string s in width columns; checks text and columns used.
static void fmt(const char *s, int width, bool utf8, const char *want, int want_cols, int line) {
    char out[256];
    int cols = label_format(out, sizeof out, s, strlen(s), width, utf8);
    if (strcmp(out, want) || cols != want_cols) {
        fprintf(stderr, "%s:%d: label_format(\"%s\", %d, %s): expected \"%s\" (%d cols), got \"%s\" (%d cols)\n",
                __FILE__, line, s, width, utf8 ? "utf8" : "ascii", want, want_cols, out, cols);
        check_failures++;
    }
}
#define FMT(s, w, utf8, want, cols) fmt(s, w, utf8, want, cols, __LINE__)

static int width_of(const char *s) { return label_width(s, strlen(s)); }

int main(void) {
    // whitespace and controls made visible (UTF-8)
    FMT("The", 8, true, "The", 3);
    FMT(" cat", 8, true, "\u00B7cat", 4);
    FMT("\n", 8, true, "\u21B5", 1);
    FMT("\n\n", 8, true, "\u21B5\u21B5", 2);
    FMT("\t", 8, true, "\u2192", 1);
    FMT("a\tb", 8, true, "a\u2192b", 3);
    FMT("\r\n", 8, true, "^M\u21B5", 3);
    FMT("\x01", 8, true, "^A", 2);
    FMT("\x1b[0m", 8, true, "^[[0m", 5);
    FMT("\x7f", 8, true, "^?", 2);
    FMT("\xc2\x85", 12, true, "<U+0085>", 8);        // C1 control NEL
    FMT("a\xe2\x80\x8b", 12, true, "a<U+200B>", 9);  // zero-width space
    FMT("\xe2\x80\xae", 12, true, "<U+202E>", 8);    // right-to-left override
    FMT("\xc2\xa0", 8, true, "\u237D", 1);           // no-break space
    FMT("\xff", 8, true, "<0xFF>", 6);               // invalid byte
    FMT("\xe2\x82", 16, true, "<0xE2><0x82>", 12);   // truncated sequence
    // an escape is cut whole, never inside ("<0x9\u2026" once)
    FMT("ab\xe2\x82", 12, true, "ab<0xE2>\u2026", 9);
    FMT("ab\xe2\x82", 9, true, "ab<0xE2>\u2026", 9);
    FMT("ab\xe2\x82", 8, true, "ab\u2026", 3);
    FMT("x\xc2\x85y", 8, true, "x\u2026", 2);
    FMT("\xcc\x81", 8, true, "\u25CC\xcc\x81", 1);  // lone combining acute gets a base
    FMT("e\xcc\x81", 8, true, "e\xcc\x81", 1);       // combining stays attached
    FMT("", 8, true, "", 0);
    FMT("\u2026", 8, true, "\u2026", 1);

    // the same in ASCII mode
    FMT(" cat", 8, false, "_cat", 4);
    FMT("\n", 8, false, "\\n", 2);
    FMT("\t", 8, false, "\\t", 2);
    FMT("\x01", 8, false, "^A", 2);
    FMT("\xff", 8, false, "<0xFF>", 6);
    FMT("Stra\xc3\x9f" "e", 8, false, "Stra?e", 6);
    FMT("\xe7\x8c\xab", 8, false, "?", 1); // 猫
    FMT("e\xcc\x81", 8, false, "e", 1);    // combining mark dropped
    FMT("\u2026", 8, false, "?", 1);

    // display width: CJK and emoji are two columns, combining marks none
    CHECK_INT(label_cpwidth('a'), 1);
    CHECK_INT(label_cpwidth(0x301), 0);
    CHECK_INT(label_cpwidth(0x732B), 2);  // 猫
    CHECK_INT(label_cpwidth(0xAC00), 2);  // 가
    CHECK_INT(label_cpwidth(0xFF21), 2);  // full-width A
    CHECK_INT(label_cpwidth(0x1F600), 2); // 😀
    CHECK_INT(label_cpwidth(0x1F44D), 2); // 👍
    CHECK_INT(label_cpwidth(0xFE0F), 0);  // variation selector
    CHECK_INT(label_cpwidth(0x200D), 0);  // zero-width joiner
    CHECK_INT(label_cpwidth(0xE9), 1);
    CHECK_INT(label_cpwidth(0x7), -1);
    CHECK_INT(label_cpwidth(0x85), -1);
    CHECK_INT(width_of("\u65E5\u672C\u8A9E"), 6); // 日本語
    CHECK_INT(width_of("a\xf0\x9f\x98\x80" "b"), 4);
    CHECK_INT(width_of("\u00B7cat"), 4);

    // truncation keeps the start and ends with an ellipsis
    FMT(" international", 8, true, "\u00B7intern\u2026", 8);
    FMT(" international", 8, false, "_intern~", 8);
    FMT("\u65E5\u672C\u8A9E", 6, true, "\u65E5\u672C\u8A9E", 6);
    FMT("\u65E5\u672C\u8A9E", 5, true, "\u65E5\u672C\u2026", 5);
    FMT("\u65E5\u672C\u8A9E", 4, true, "\u65E5\u2026", 3); // a wide character does not split
    FMT("a\xf0\x9f\x98\x80" "b", 3, true, "a\u2026", 2);
    FMT("\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 3, true, "\xf0\x9f\x98\x80\u2026", 3);
    FMT("\n\n\n", 2, true, "\u21B5\u2026", 2);
    FMT("\n\n\n", 3, false, "\\n~", 3);
    FMT("The", 1, true, "T", 1);  // one column: the first character
    FMT("\u65E5\u672C", 1, true, "\u2026", 1);
    FMT("The", 0, true, "", 0);
    FMT("\x01\x02\x03", 4, true, "^A^\u2026", 4);
    {   // a name or text rather than a token: spaces stay spaces, the rest as for a token
        char out[64];
        CHECK_INT(label_format_text(out, sizeof out, "Ana Silva\n\x1b", 11, 20), 12);
        CHECK_STR(out, "Ana Silva\u21B5^[");
        CHECK_INT(label_format_text(out, sizeof out, "a \u00e9\u00e9\u00e9\u00e9", 10, 4), 4);
        CHECK_STR(out, "a \u00e9\u2026");
    }
    {   // a long message: its start and its end (the reason) around one ellipsis
        Buf b = {0};
        const char *m = "error: cannot open '/tmp/xxxxxxxxxxxxxxxxxxxxxxxx': No such file";
        CHECK_INT(label_elide_middle(&b, m, strlen(m), 21), 21);
        CHECK_STR(b.data, "error: can\u2026 such file");
        buf_clear(&b);
        // the status line: the long path shortened, the reason kept
        CHECK_INT(label_fit_message(&b, m, strlen(m), 45), 45);
        CHECK_STR(b.data, "error: cannot open '/tmp\u2026xxxxx': No such file");
        buf_clear(&b); // too narrow even so: the path keeps 8 columns (the end is cut where drawn)
        CHECK_INT(label_fit_message(&b, m, strlen(m), 40), 43);
        buf_clear(&b);
        const char *w = "waiting 60 s (Ctrl-C stops waiting): /tmp/qkv-e2e-abcdefgh/locked.db";
        CHECK_INT(label_fit_message(&b, w, strlen(w), 50), 50);
        CHECK_STR(b.data, "waiting 60 s (Ctrl-C stops waiting): /tmp/q\u2026ked.db");
        buf_clear(&b);
        CHECK_INT(label_elide_middle(&b, "short", 5, 21), 5);
        CHECK_STR(b.data, "short");
        buf_clear(&b);
        // wide characters are never split: 日本語日本語 (12 columns) in 6
        CHECK_INT(label_elide_middle(&b, "\u65E5\u672C\u8A9E\u65E5\u672C\u8A9E", 18, 6), 5);
        CHECK_STR(b.data, "\u65E5\u2026\u8A9E");
        buf_free(&b);
    }
    {   // a small buffer cuts at a character boundary
        char small[6];
        int cols = label_format(small, sizeof small, "\u65E5\u672C\u8A9E", 9, 10, true);
        CHECK_STR(small, "\u65E5"); // no room left for the ellipsis either
        CHECK_INT(cols, 2);
    }

    // clusters: base character plus its marks; wide glyphs report 2
    {
        const char *s = "e\xcc\x81\xe7\x8c\xab" "x";
        size_t pos = 0, n = strlen(s);
        char g[LABEL_GLYPH_MAX];
        CHECK_INT(label_next(s, n, &pos, g), 1);
        CHECK_STR(g, "e\xcc\x81");
        CHECK_INT(label_next(s, n, &pos, g), 2);
        CHECK_STR(g, "\xe7\x8c\xab");
        CHECK_INT(label_next(s, n, &pos, g), 1);
        CHECK_STR(g, "x");
        CHECK_INT(label_next(s, n, &pos, g), 0);
    }

    // marks in running text: which join the character before them (label_joins), as label_visible
    // shows the whole text: Devanagari virama, Thai vowel and tone marks, Arabic harakat, NFD Latin
    {
        static const struct { const char *s; size_t at; bool joins; } J[] = {
            {"\u0928\u094D", 3, true},              // न + virama
            {"\u0E17\u0E35\u0E48", 3, true},        // ท + sara ii
            {"\u0E17\u0E35\u0E48", 6, true},        // ... + mai ek, after a mark
            {"\u0639\u064E", 2, true},              // ع + fatha
            {"\u064A\u064E\u0651", 4, true},        // ي + fatha + shadda
            {"e\u0302\u0301", 1, true},             // e + circumflex
            {"e\u0302\u0301", 3, true},             // ... + acute
            {"\xe7\x8c\xab\uFE0F", 3, true},        // a variation selector on a wide character
            {"\u0301", 0, false},                   // a leading mark
            {"a\n\u0301", 2, false},                // after a newline
            {"a \u0301", 2, false},                 // after a space
            {"\t\u0301", 1, false},                 // after a control
            {"\xff\u0301", 1, false},               // after an invalid byte
            {"\xc2\xa0\u0301", 2, false},           // after a no-break space (shown as '⍽')
            {"a\u200B\u0301", 4, false},            // after an escaped character (<U+200B>)
            {"ab", 1, false},                       // not a mark
            {"a\u200B", 1, false},                  // zero width but escaped
            {"\xcc", 0, false},                     // not valid at all
        };
        for (size_t i = 0; i < sizeof J / sizeof *J; i++)
            if (label_joins(J[i].s, strlen(J[i].s), J[i].at) != J[i].joins) {
                fprintf(stderr, "label_joins(case %zu, at %zu): expected %d\n", i, J[i].at, J[i].joins);
                check_failures++;
            }
        // label_visible agrees: a mark gets '◌' exactly where it does not join
        FMT("\u0939\u093F\u0928\u094D\u0926\u0940", 8, true, "\u0939\u093F\u0928\u094D\u0926\u0940", 5);
        FMT("\u0E17\u0E35\u0E48\u0E19\u0E35\u0E48", 8, true, "\u0E17\u0E35\u0E48\u0E19\u0E35\u0E48", 2);
        FMT("\u0639\u064E\u0631\u064E", 8, true, "\u0639\u064E\u0631\u064E", 2);
        FMT("Vie\u0323\u0302t", 8, true, "Vie\u0323\u0302t", 4);
        FMT("\u094D\u0926", 8, true, "\u25CC\u094D\u0926", 2);
        FMT("a\n\u0301", 8, true, "a\u21B5\u25CC\u0301", 3);
    }

    // the width table agrees with the C library's wcwidth where the UTF-8 locale exists
    if (setlocale(LC_CTYPE, "C.UTF-8")) {
        static const uint32_t samples[] = {'a', 0xE9, 0x301, 0x5D0, 0x93F, 0x1100, 0x1160, 0x2E80, 0x3042,
                                           0x4E00, 0x732B, 0xAC00, 0xD7A3, 0xF900, 0xFE0F, 0xFF01, 0xFF61,
                                           0x1F300, 0x1F600, 0x1F44D, 0x1F9D1, 0x20000, 0x200D, 0x2764};
        for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
            int w = wcwidth((wchar_t)samples[i]);
            if (w != label_cpwidth(samples[i])) {
                fprintf(stderr, "U+%04X: wcwidth %d, label_cpwidth %d\n", (unsigned)samples[i], w,
                        label_cpwidth(samples[i]));
                check_failures++;
            }
        }
    }
    return CHECK_DONE();
}
