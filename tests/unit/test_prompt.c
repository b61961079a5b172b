// test_prompt.c - prompt experiments below the app: task files (qkv's layout, GSM8K-style,
// multiple choice, and the messages of bad files), the rendered prompts of every mode against
// golden files in tests/unit/golden/ (QKV_UPDATE_GOLDEN=1 rewrites them) and the GPT-3 format
// checked by hand, exemplars (reproducible, never the test item), every scorer with its edge
// cases, and the statistics of the table (numbers worked out by hand or with Python's math).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "../golden_file.h"
#include "base/stats.h"
#include "prompt/score.h"
#include "prompt/task.h"
#include "prompt/template.h"

static char dir[CHECK_TMP_LEN];

// Write text to dir/name; its path (static buffer, one at a time).
static const char *put_file(const char *name, const char *text) {
    static char path[CHECK_PATH_LEN];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write '%s': %s\n", path, strerror(errno));
        exit(1);
    }
    fputs(text, f);
    fclose(f);
    return path;
}

// Compare text with tests/unit/golden/NAME.txt (or rewrite it with QKV_UPDATE_GOLDEN=1).
static void golden(const char *name, const char *text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.txt", golden_dir_of("unit", __FILE__), name);
    if (golden_updating()) {
        FILE *f = fopen(path, "wb");
        if (!f || fputs(text, f) == EOF) check_failures++, fprintf(stderr, "cannot write '%s'\n", path);
        if (f) fclose(f);
        fprintf(stderr, "updated %s\n", path);
        return;
    }
    char *want = golden_read(path);
    if (!want) {
        fprintf(stderr, "%s: missing golden file '%s' (create it with QKV_UPDATE_GOLDEN=1)\n", name, path);
        check_failures++;
        return;
    }
    if (strcmp(want, text)) {
        fprintf(stderr, "%s: rendered prompt differs from %s\n--- expected ---\n%s\n--- got ---\n%s\n", name, path,
                want, text);
        check_failures++;
    }
    free(want);
}

static const char EN_FR[] =
    "{\"description\": \"Translate English to French:\", \"name\": \"en-fr\"}\n"
    "// the GPT-3 paper's examples\n"
    "{\"input\": \"sea otter\", \"target\": \"loutre de mer\", \"split\": \"pool\"}\n"
    "{\"input\": \"peppermint\", \"target\": \"menthe poivrée\", \"split\": \"pool\"}\n"
    "{\"input\": \"plush girafe\", \"target\": \"girafe peluche\", \"split\": \"pool\"}\n"
    "{\"input\": \"cheese\", \"target\": \"fromage\", \"split\": \"pool\"}\n"
    "\n"
    "{\"input\": \"cheese\", \"target\": \"fromage\"}\n"
    "{\"input\": \"bread\", \"target\": \"pain\"}\n";

static const char ARITH[] =
    "{\"description\": \"Solve.\", \"input_prefix\": \"Q: \", \"delimiter\": \"\\nA:\", \"separator\": \"\\n\\n\"}\n"
    "{\"input\": \"2 + 3 * 2?\", \"target\": \"8\", \"rationale\": \"3 * 2 = 6 and 2 + 6 = 8.\", \"split\": \"pool\"}\n"
    "{\"input\": \"10 - 4 - 1?\", \"target\": \"5\", \"rationale\": \"10 - 4 = 6 and 6 - 1 = 5.\", \"split\": \"pool\"}\n"
    "{\"input\": \"(1 + 1) * 7?\", \"target\": \"14\"}\n";

// Render test item k of t with the first n pool items (in file order) as exemplars.
static char *render(const Task *t, const PromptStyle *st, const PromptChat *chat, bool cot, int n, int k) {
    int ex[8];
    for (int i = 0; i < n; i++) ex[i] = t->pool[i];
    Rendered r;
    Err e = {{0}};
    if (prompt_render(t, st, chat, cot, ex, n, t->test[k], &r, &e)) {
        fprintf(stderr, "render failed: %s\n", e.msg);
        check_failures++;
        return strdup("");
    }
    char *s = strdup(r.text.data);
    rendered_free(&r);
    return s;
}

// A chat template in the ChatML style, for the chat mode.
static int chatml(void *user, const PromptMsg *m, int n, Buf *out, Err *e) {
    (void)user, (void)e;
    for (int i = 0; i < n; i++) buf_printf(out, "<|im_start|>%s\n%.*s<|im_end|>\n", m[i].role, (int)m[i].len, m[i].text);
    buf_puts(out, "<|im_start|>assistant\n");
    return 0;
}

static void test_tasks_and_templates(void) {
    Err e = {{0}};
    Task *t = task_load(put_file("en-fr.jsonl", EN_FR), &e);
    CHECK(t != NULL);
    if (!t) {
        fprintf(stderr, "%s\n", e.msg);
        return;
    }
    CHECK_STR(t->name, "en-fr");
    CHECK_INT(t->n_test, 2);
    CHECK_INT(t->n_pool, 4);
    PromptStyle st;
    prompt_style_default(&st, t);
    // the GPT-3 paper's format, written out by hand
    char *s = render(t, &st, NULL, false, 3, 0);
    CHECK_STR(s, "Translate English to French:\nsea otter => loutre de mer\npeppermint => menthe poivrée\n"
                 "plush girafe => girafe peluche\ncheese =>");
    free(s);
    s = render(t, &st, NULL, false, 0, 0);
    CHECK_STR(s, "Translate English to French:\ncheese =>");
    golden("prompt_zero_shot", s);
    free(s);
    s = render(t, &st, NULL, false, 1, 1);
    CHECK_STR(s, "Translate English to French:\nsea otter => loutre de mer\nbread =>");
    golden("prompt_one_shot", s);
    free(s);
    s = render(t, &st, NULL, false, 3, 1);
    golden("prompt_few_shot", s);
    free(s);
    // a style of its own: no description, prefix, delimiter with a trailing space, answer prefix
    PromptStyle own = st;
    own.description = "", own.input_prefix = "English: ", own.delimiter = "\nFrench: ", own.separator = "\n---\n";
    s = render(t, &own, NULL, false, 2, 1);
    CHECK_STR(s, "English: sea otter\nFrench: loutre de mer\n---\nEnglish: peppermint\nFrench: menthe poivrée\n---\n"
                 "English: bread\nFrench:");
    golden("prompt_custom_style", s);
    free(s);
    // the shared part is the prefix up to the query, the same for every item
    int ex[2] = {t->pool[0], t->pool[1]};
    Rendered r0, r1;
    CHECK(!prompt_render(t, &st, NULL, false, ex, 2, t->test[0], &r0, &e));
    CHECK(!prompt_render(t, &st, NULL, false, ex, 2, t->test[1], &r1, &e));
    CHECK_INT(r0.shared, r1.shared);
    CHECK(!memcmp(r0.text.data, r1.text.data, r0.shared));
    CHECK_INT(r0.shared, strlen("Translate English to French:\nsea otter => loutre de mer\npeppermint => menthe poivrée\n"));
    CHECK_STR(r0.choice_sep, " ");
    rendered_free(&r0), rendered_free(&r1);
    // chat: the description as a system message, exemplars as turns
    PromptChat chat = {chatml, NULL, "chatml"};
    s = render(t, &st, &chat, false, 1, 1);
    CHECK_STR(s, "<|im_start|>system\nTranslate English to French:<|im_end|>\n<|im_start|>user\nsea otter<|im_end|>\n"
                 "<|im_start|>assistant\nloutre de mer<|im_end|>\n<|im_start|>user\nbread<|im_end|>\n"
                 "<|im_start|>assistant\n");
    golden("prompt_chat", s);
    free(s);

    // exemplars: reproducible from the seed, never the test item nor one with its input
    int a[3], b[5], c[1]; // b takes up to 5 (the refused 5-shot pick fills 4 before it gives up)
    CHECK(!prompt_pick_exemplars(t, 7, 3, t->test[0], false, a, &e));
    CHECK(!prompt_pick_exemplars(t, 7, 3, t->test[0], false, b, &e));
    CHECK(!memcmp(a, b, sizeof a));
    for (int i = 0; i < 3; i++) CHECK(strcmp(t->items[a[i]].input, "cheese"));
    CHECK(prompt_pick_exemplars(t, 7, 4, t->test[0], false, b, &e)); // only 3 pool items are not "cheese"
    // the pool holds 4: the message says so, and why one is left out for this item (it said the
    // pool had 3, the number usable, as if the file were short of an exemplar)
    CHECK_STR(e.msg, "4-shot prompts need 4 exemplars, but task 'en-fr' has 4 exemplars in its pool and only 3 are "
                     "usable for this item: 1 has the item's own input \"cheese\"");
    CHECK(!prompt_pick_exemplars(t, 7, 4, t->test[1], false, b, &e)); // "bread" gets all 4
    CHECK(prompt_pick_exemplars(t, 7, 5, t->test[1], false, b, &e)); // a pool too small for every item
    CHECK_STR(e.msg, "5-shot prompts need 5 exemplars, but task 'en-fr' has 4 exemplars in its pool");
    CHECK(!prompt_pick_exemplars(t, 7, 1, t->test[0], false, c, &e));
    CHECK_INT(c[0], a[0]); // one shot is the first of three
    bool differs = false;
    for (uint64_t seed = 1; seed < 20 && !differs; seed++) {
        CHECK(!prompt_pick_exemplars(t, seed, 3, t->test[1], false, b, &e));
        differs = memcmp(a, b, sizeof a) != 0;
    }
    CHECK(differs); // the seed matters
    // few-shot chain of thought needs rationales
    CHECK(prompt_pick_exemplars(t, 1, 1, t->test[0], true, b, &e));
    CHECK_STR(e.msg, "1-shot chain of thought needs 1 exemplar with a rationale, but task 'en-fr' has 4 exemplars in "
                     "its pool and none is usable for this item: 3 have no rationale, 1 has the item's own input "
                     "\"cheese\"");
    task_free(t);

    t = task_load(put_file("arith.jsonl", ARITH), &e);
    CHECK(t != NULL);
    if (!t) return;
    prompt_style_default(&st, t);
    s = render(t, &st, NULL, true, 2, 0);
    CHECK_STR(s, "Solve.\n\nQ: 2 + 3 * 2?\nA: 3 * 2 = 6 and 2 + 6 = 8. The answer is 8.\n\nQ: 10 - 4 - 1?\nA: 10 - 4 = "
                 "6 and 6 - 1 = 5. The answer is 5.\n\nQ: (1 + 1) * 7?\nA:");
    golden("prompt_few_shot_cot", s);
    free(s);
    s = render(t, &st, NULL, true, 0, 0);
    CHECK_STR(s, "Solve.\n\nQ: (1 + 1) * 7?\nA: Let's think step by step.");
    golden("prompt_zero_shot_cot", s);
    free(s);
    char mode[48];
    prompt_mode_name(0, true, 1, mode, sizeof mode);
    CHECK_STR(mode, "zero-shot-cot");
    prompt_mode_name(1, false, 1, mode, sizeof mode);
    CHECK_STR(mode, "one-shot");
    prompt_mode_name(5, true, 8, mode, sizeof mode);
    CHECK_STR(mode, "few-shot-cot-sc8");
    task_free(t);

    // A GSM8K-style file has no header, so its separator is the default "\n"; with chain of
    // thought its exemplars are joined by a blank line, the one the completion is cut at (before
    // 2026-12-06 they were joined by "\n" while the cut waited for "\n\n": the model's next
    // made-up question and answer stayed in the completion, and its last answer was scored).
    t = task_load(put_file("gsm.jsonl",
                           "{\"question\": \"What is 2 + 3?\", \"answer\": \"2 + 3 = 5\\n#### 5\", \"split\": \"pool\"}\n"
                           "{\"question\": \"What is 4 + 4?\", \"answer\": \"4 + 4 = 8\\n#### 8\", \"split\": \"pool\"}\n"
                           "{\"question\": \"What is 1 + 1?\", \"answer\": \"1 + 1 = 2\\n#### 2\"}\n"),
                  &e);
    CHECK(t != NULL);
    if (!t) return;
    prompt_style_default(&st, t);
    s = render(t, &st, NULL, true, 2, 0);
    CHECK_STR(s, "What is 2 + 3? => 2 + 3 = 5 The answer is 5.\n\nWhat is 4 + 4? => 4 + 4 = 8 The answer is 8.\n\n"
                 "What is 1 + 1? =>");
    free(s);
    s = render(t, &st, NULL, false, 2, 0); // without a rationale the default separator stays
    CHECK_STR(s, "What is 2 + 3? => 5\nWhat is 4 + 4? => 8\nWhat is 1 + 1? =>");
    free(s);
    Scorer *sc = scorer_new(&(ScoreOpts){SCORE_NUMBER, st.separator, st.answer_phrase, NULL, true}, &e);
    CHECK(sc != NULL);
    Buf ans = {0};
    const char *out = " 1 + 1 = 2 The answer is 2.\n\nWhat is 2 + 4? => 2 + 4 = 6 The answer is 6.";
    score_extract(sc, out, strlen(out), &ans);
    CHECK_STR(ans.data ? ans.data : "", "2");
    buf_free(&ans);
    scorer_free(sc);
    task_free(t);
}

static void test_layouts(void) {
    Err e = {{0}};
    // GSM8K: the calculator annotations dropped, the answer after ####
    Task *t = task_load(put_file("gsm.jsonl", "{\"question\": \"Tom has 3 bags of 4 apples. How many?\", \"answer\": "
                                              "\"He has 3*4=<<3*4=12>>12 apples.\\n#### 1,200\"}\n"),
                        &e);
    CHECK(t != NULL);
    if (t) {
        CHECK_STR(t->layout, "gsm8k");
        CHECK_STR(task_scorer(t), "number"); // its answers are numbers: "6 + 1 = 7 cats" is right for 7
        CHECK_STR(t->items[0].target, "1200");
        CHECK_STR(t->items[0].rationale, "He has 3*4=12 apples.");
        task_free(t);
    }
    // multiple choice: index, letter, text, and the ARC layout {text, label} with answerKey
    t = task_load(put_file("mc.jsonl", "{\"question\": \"2+2?\", \"choices\": [\"3\", \"4\"], \"answer\": 1}\n"
                                       "{\"question\": \"Sky?\", \"choices\": [\"green\", \"blue\"], \"answer\": \"B\"}\n"
                                       "{\"question\": \"Cold?\", \"choices\": [\"ice\", \"fire\"], \"answer\": \"ice\"}\n"
                                       "{\"question\": \"Up?\", \"choices\": {\"text\": [\"down\", \"up\"], \"label\": "
                                       "[\"1\", \"2\"]}, \"answerKey\": \"2\"}\n"),
                  &e);
    CHECK(t != NULL);
    if (t) {
        CHECK(t->multiple_choice);
        CHECK_STR(task_scorer(t), "choice");
        CHECK_INT(t->n_test, 4);
        CHECK_INT(t->items[0].answer, 1);
        CHECK_INT(t->items[1].answer, 1);
        CHECK_STR(t->items[1].target, "blue");
        CHECK_INT(t->items[2].answer, 0);
        CHECK_INT(t->items[3].answer, 1);
        task_free(t);
    } else {
        fprintf(stderr, "%s\n", e.msg);
    }
    // a header's scorer wins over the layout's
    t = task_load(put_file("gsm-exact.jsonl", "{\"name\": \"g\", \"scorer\": \"exact\"}\n"
                                              "{\"question\": \"q\", \"answer\": \"1 + 1 = 2\\n#### 2\"}\n"),
                  &e);
    CHECK(t && !strcmp(t->layout, "gsm8k") && !strcmp(task_scorer(t), "exact"));
    task_free(t);
    t = task_load(put_file("plain.jsonl", "{\"input\": \"a\", \"target\": \"7\"}\n"), &e);
    CHECK(t && !strcmp(task_scorer(t), "exact"));
    task_free(t);
    // bad files: one message naming the file and the line
    struct {
        const char *text, *want;
    } bad[] = {
        {"{\"input\": \"a\", \"target\": \"b\"}\n{not json\n", "line 2"},
        {"{\"input\": \"a\"}\n", "line 1"},
        {"{\"question\": \"q\", \"choices\": [\"a\", \"b\"], \"answer\": 5}\n", "line 1"},
        {"", "no items"},
        {"{\"question\": \"q\", \"choices\": \"ab\", \"answer\": 0}\n", "line 1"},
        {"{\"input\": \"a\", \"target\": \"b\"}\n{\"description\": \"late\"}\n", "header"},
        // an empty rationale counted as one: a chain-of-thought exemplar with no reasoning
        {"{\"input\": \"a\", \"target\": \"b\"}\n{\"input\": \"c\", \"target\": \"d\", \"rationale\": \" \"}\n",
         "line 2: \"rationale\" is empty"},
        // two headers: the second replaced the first's name and scorer, silently (before 2026-12-07)
        {"{\"name\": \"h\", \"scorer\": \"number\"}\n{\"name\": \"h2\", \"scorer\": \"contains\"}\n"
         "{\"input\": \"a\", \"target\": \"b 5\"}\n",
         "line 2: a second header line (the header is line 1)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        Err e2 = {{0}};
        Task *b = task_load(put_file("bad.jsonl", bad[i].text), &e2);
        CHECK(b == NULL);
        task_free(b);
        if (!strstr(e2.msg, bad[i].want)) {
            fprintf(stderr, "bad task %zu: expected a message with \"%s\", got \"%s\"\n", i, bad[i].want, e2.msg);
            check_failures++;
        }
    }
    // exemplars alone: a training set (train reads it; experiment refuses it, test_experiment.py)
    Err e4 = {{0}};
    Task *pool_only = task_load(put_file("pool.jsonl", "{\"input\": \"a\", \"target\": \"b\", \"split\": \"pool\"}\n"), &e4);
    CHECK(pool_only && pool_only->n_test == 0 && pool_only->n_pool == 1 && !pool_only->multiple_choice);
    task_free(pool_only);
    // without a pool the exemplars are the other test items, less those with the item's input
    Err e5 = {{0}};
    Task *dup = task_load(put_file("same.jsonl", "{\"input\": \"a\", \"target\": \"1\"}\n"
                                                 "{\"input\": \"b\", \"target\": \"2\"}\n"
                                                 "{\"input\": \"a\", \"target\": \"1\"}\n"),
                          &e5);
    CHECK(dup != NULL);
    if (dup) {
        int ex2[2];
        CHECK(!prompt_pick_exemplars(dup, 1, 2, dup->test[1], false, ex2, &e5));
        CHECK(prompt_pick_exemplars(dup, 1, 2, dup->test[0], false, ex2, &e5));
        CHECK_STR(e5.msg, "2-shot prompts need 2 exemplars, but task 'same' has 2 other test items to draw exemplars "
                          "from and only 1 is usable for this item: 1 has the item's own input \"a\"");
        CHECK(prompt_pick_exemplars(dup, 1, 3, dup->test[1], false, ex2, &e5));
        CHECK_STR(e5.msg, "3-shot prompts need 3 exemplars, but task 'same' has 2 other test items to draw exemplars from");
        task_free(dup);
    }
    Err e3 = {{0}};
    CHECK(task_load("/nonexistent/x.jsonl", &e3) == NULL);
    CHECK(strstr(e3.msg, "/nonexistent/x.jsonl") != NULL);
}

static Scorer *mk(ScoreKind k, const char *sep, bool cot, const char *regex) {
    ScoreOpts o = {k, sep, "The answer is", regex, cot};
    Err e = {{0}};
    Scorer *s = scorer_new(&o, &e);
    if (!s) fprintf(stderr, "scorer_new: %s\n", e.msg), check_failures++;
    return s;
}

// The extracted answer of text under s.
static const char *extract(const Scorer *s, const char *text) {
    static Buf b;
    score_extract(s, text, strlen(text), &b);
    return b.data ? b.data : "";
}

static void test_scorers(void) {
    Scorer *ex = mk(SCORE_EXACT, "\n", false, NULL);
    // the completion stops at the separator; leading white space is not an answer
    CHECK_STR(extract(ex, " fromage\nbread => pain"), "fromage");
    CHECK_STR(extract(ex, "\n\n fromage."), "fromage");
    CHECK_STR(extract(ex, ""), ""); // empty output
    CHECK(!score_match(ex, "", "fromage"));
    CHECK(!score_match(ex, "", "")); // an empty target matches nothing
    CHECK(score_match(ex, "Fromage!", "fromage"));
    CHECK(score_match(ex, "menthe  poivrée", "Menthe poivrée"));
    CHECK(score_match(ex, "CAFÉ", "café"));        // unicode case folding
    CHECK(score_match(ex, "cafe\xcc\x81", "café")); // decomposed and composed é
    CHECK(!score_match(ex, "cafe", "café"));
    CHECK(!score_match(ex, "fromage de chèvre", "fromage"));
    Buf n = {0};
    score_normalize("  Hello,   WORLD!\t", 18, &n);
    CHECK_STR(n.data, "hello world");
    buf_free(&n);
    scorer_free(ex);

    Scorer *co = mk(SCORE_CONTAINS, "\n", false, NULL);
    CHECK(score_match(co, extract(co, "I think it is fromage, surely"), "fromage"));
    CHECK(!score_match(co, "fromages", "fromage")); // whole words
    CHECK(score_match(co, "la loutre de mer", "loutre de mer"));
    scorer_free(co);

    // after a rationale: "the answer is X", several numbers, "####", the last number
    Scorer *num = mk(SCORE_NUMBER, "\n\n", true, NULL);
    CHECK_STR(extract(num, " 3 * 2 = 6 and 2 + 6 = 8. The answer is 8.\n\nQ: next"), "8");
    CHECK(score_match(num, extract(num, "12 apples, then 3 more: 15. The answer is $1,215.50."), "1215.5"));
    CHECK_STR(extract(num, "so 4 + 4 = 8\n#### 8"), "8");
    CHECK_STR(extract(num, "First 5, then 7, finally 12"), "12");
    CHECK_STR(extract(num, "the answer is 3. Wait, the answer is 4."), "4"); // the last statement counts
    CHECK(score_match(num, "-3", "-3"));
    // without a rationale, the answer's last number counts: an echo of the question is not right
    Scorer *num0 = mk(SCORE_NUMBER, "\n", false, NULL);
    CHECK(!score_match(num0, extract(num0, " 9 + 8\n7 + 1 => 8"), "9"));
    CHECK(score_match(num0, extract(num0, " 9 + 8 = 17\n"), "17"));
    CHECK(score_match(num0, extract(num0, " 1,200 apples"), "1200"));
    scorer_free(num0);
    CHECK(!score_match(num, "3", "-3"));
    CHECK(!score_match(num, "no number", "3"));
    CHECK(!score_match(num, "", "3"));
    // a leading point is part of the number (".5" read as 5 once scored against 5 and 25)
    CHECK(!score_match(num, ".5", "5"));
    CHECK(!score_match(num, ".25", "25"));
    CHECK(score_match(num, ".5", "0.5"));
    CHECK(score_match(num, "0.1", ".1"));
    CHECK(score_match(num, "-.5", "-0.5"));
    CHECK(score_match(num, "the end.5", "0.5")); // a sentence's point before a digit: still a number
    CHECK(score_match(num, "3.5", "3.5") && !score_match(num, "3.5", "0.5"));
    // a fraction is its quotient ("1/2" once matched 1)
    CHECK(!score_match(num, "1/2", "1"));
    CHECK(score_match(num, "1/2", "0.5"));
    CHECK(score_match(num, "-3/4", "-0.75"));
    CHECK(!score_match(num, "7/0", "7")); // no quotient: its last number, 0, is not 7
    double v;
    CHECK(score_last_number("x 1,234 and 5.5%", 16, &v));
    CHECK_NEAR(v, 5.5, 0);
    CHECK(score_last_number("half is .5", 10, &v));
    CHECK_NEAR(v, 0.5, 0);
    scorer_free(num);

    Scorer *cot = mk(SCORE_EXACT, "\n", true, NULL);
    // a rationale runs over lines: a blank line ends it, not the first new line
    CHECK_STR(extract(cot, " Paris is in France.\nThe answer is **Paris**.\n\nQ: next"), "Paris");
    // a rationale that never says "the answer is": its last sentence, where it ends up (its
    // first, where the reasoning starts, was taken: "First, we find the total number of birds")
    CHECK_STR(extract(cot, " First, we find the total number of birds. 9 - 4 = 5. So 5 birds are left.\n\nQ:"),
              "So 5 birds are left");
    CHECK_STR(extract(cot, " 3 + 4 = 7.\nParis"), "Paris"); // a new line ends a sentence too
    CHECK_STR(extract(cot, " It costs 3.5 dollars. "), "It costs 3.5 dollars"); // "3.5" keeps its point
    CHECK_STR(extract(cot, " Cairo!!"), "Cairo");
    scorer_free(cot);
    // without a rationale: the first sentence of the first line
    Scorer *ex1 = mk(SCORE_EXACT, "\n\n", false, NULL);
    CHECK_STR(extract(ex1, " Paris. It is in France."), "Paris");
    scorer_free(ex1);
    // contains after a rationale: the answer it states, not every word of the reasoning ("Sydney"
    // was right for a rationale that rejects it); without a stated answer, all of it
    Scorer *coc = mk(SCORE_CONTAINS, "\n\n", true, NULL);
    const char *syd = " Sydney is the largest city, but not the capital. The answer is Canberra.";
    CHECK_STR(extract(coc, syd), "Canberra");
    CHECK(!score_match(coc, extract(coc, syd), "Sydney") && score_match(coc, extract(coc, syd), "Canberra"));
    CHECK_STR(extract(coc, " Its capital is Canberra, I think.\n\nQ:"), "Its capital is Canberra, I think.");
    CHECK_STR(extract(coc, " so 2 + 2\n#### 4"), "4");
    scorer_free(coc);
    // the number scorer without the phrase: a rationale's last number, and its sentence without one
    Scorer *nc = mk(SCORE_NUMBER, "\n\n", true, NULL);
    CHECK_STR(extract(nc, " 6 + 1 = 7 cats. So she has 7 now"), "7");
    CHECK_STR(extract(nc, " First, we count the cats. Then we add one."), "Then we add one"); // no number
    Scorer *n0 = mk(SCORE_NUMBER, "\n", false, NULL);
    CHECK_STR(extract(n0, " 6 + 1 = 7 cats. Then 9"), "6 + 1 = 7 cats");
    CHECK(score_match(n0, extract(n0, " 6 + 1 = 7 cats. Then 9"), "7"));
    scorer_free(nc), scorer_free(n0);

    Scorer *re = mk(SCORE_REGEX, "\n", false, "answer: ([a-z]+)");
    CHECK_STR(extract(re, "answer: foo then ANSWER: Bar\n"), "Bar"); // the last match, case-insensitive
    CHECK_STR(extract(re, "nothing"), "");
    scorer_free(re);
    // the searches after the first see the text before them: \b and ^ match only where they
    // would in the whole text (the last "match" of \b([0-9]{1,2}) in "150" was "0")
    Scorer *wb = mk(SCORE_REGEX, "\n", false, "\\b([0-9]{1,2})");
    CHECK_STR(extract(wb, " Answer: 150"), "15");
    CHECK_STR(extract(wb, "Code 4321 here, then 7"), "7");
    CHECK_STR(extract(wb, "9876"), "98");
    scorer_free(wb);
    Scorer *bol = mk(SCORE_REGEX, "\n", false, "^([a-z]+)");
    CHECK_STR(extract(bol, "foo bar baz"), "foo");
    scorer_free(bol);
    // a point after an abbreviation or an initial does not end the answer's sentence; after a
    // lone capital (a choice's letter) it does
    Scorer *ab = mk(SCORE_EXACT, "\n", true, NULL);
    CHECK_STR(extract(ab, " He wrote it. The answer is Mr. Smith. Next"), "Mr. Smith");
    CHECK_STR(extract(ab, " The answer is J. K. Rowling. She"), "J. K. Rowling");
    CHECK_STR(extract(ab, " The answer is St. Louis."), "St. Louis");
    CHECK_STR(extract(ab, " The answer is the U.S. Army. Then"), "the U.S. Army");
    CHECK_STR(extract(ab, " The answer is B. It is the only one."), "B");
    CHECK_STR(extract(ab, " The answer is 8. 9 is wrong."), "8");
    CHECK_STR(extract(ab, " We looked. Dr. Who is the one"), "Dr. Who is the one"); // the last sentence
    scorer_free(ab);
    Scorer *abn = mk(SCORE_NUMBER, "\n", true, NULL);
    CHECK_STR(extract(abn, " The answer is e.g. 8."), "e.g. 8");
    CHECK(score_match(abn, extract(abn, " The answer is e.g. 8."), "8"));
    scorer_free(abn);
    Scorer *ab0 = mk(SCORE_EXACT, "\n", false, NULL);
    CHECK_STR(extract(ab0, " Dr. Who. Then more"), "Dr. Who"); // the first sentence
    scorer_free(ab0);
    Err e = {{0}};
    ScoreOpts bad = {SCORE_REGEX, "\n", NULL, "([a-", false};
    CHECK(scorer_new(&bad, &e) == NULL);
    CHECK(strstr(e.msg, "regex") != NULL);
    ScoreOpts none = {SCORE_REGEX, "\n", NULL, NULL, false};
    CHECK(scorer_new(&none, &e) == NULL);
    CHECK_INT(score_kind_parse("number"), SCORE_NUMBER);
    CHECK_INT(score_kind_parse("nope"), -1);

    // multiple choice: summed and length-normalised log-likelihood; ties to the lower index
    double ll[3] = {-4.0, -6.0, -4.0};
    int chars[3] = {2, 12, 2};
    CHECK_INT(score_choice_best(ll, chars, 3, false), 0);
    CHECK_INT(score_choice_best(ll, chars, 3, true), 1); // -0.5 per character beats -2
    // self-consistency: answers grouped by what the scorer compares; those without it do not vote
    Scorer *vt = mk(SCORE_EXACT, "\n", false, NULL);
    const char *votes1[] = {"8", "", " 8.", "7", ""};
    int nv;
    CHECK_INT(score_vote(vt, votes1, 5, &nv), 0);
    CHECK_INT(nv, 2);
    const char *votes2[] = {"7", "8", "8", "7"}; // a tie goes to the group seen first
    CHECK_INT(score_vote(vt, votes2, 4, &nv), 0);
    CHECK_INT(nv, 2);
    const char *votes3[] = {"", "."}; // nothing to vote for: the first answer saying something
    CHECK_INT(score_vote(vt, votes3, 2, &nv), 1);
    CHECK_INT(nv, 0);
    const char *books[] = {"", "2", "5 books", "5 is not possible", "11 books"};
    CHECK_INT(score_vote(vt, books, 5, &nv), 1); // as text every answer differs: the first, "2"
    CHECK_INT(nv, 1);
    scorer_free(vt);
    // under the number scorer the vote is for the number score_match compares, the answer's last
    // (the audit's samples: "2" won with 1 vote where "5 books" and "5 is not possible" agree)
    Scorer *vn = mk(SCORE_NUMBER, "\n\n", true, NULL);
    CHECK_INT(score_vote(vn, books, 5, &nv), 2);
    CHECK_INT(nv, 2);
    const char *cars[] = {"8 camels", "7", "7 cars", "3", "7 cars"}; // reported: the group's first
    CHECK_INT(score_vote(vn, cars, 5, &nv), 1);
    CHECK_INT(nv, 3);
    const char *fmt[] = {"1200", "no idea", "1,200.0 coins", "$1,200", "12"};
    CHECK_INT(score_vote(vn, fmt, 5, &nv), 0);
    CHECK_INT(nv, 3);
    const char *wordy[] = {"many", "lots", "I think so", "4"}; // no number never beats a number
    CHECK_INT(score_vote(vn, wordy, 4, &nv), 3);
    CHECK_INT(nv, 1);
    const char *unnumbered[] = {"", "many", "lots"};
    CHECK_INT(score_vote(vn, unnumbered, 3, &nv), 1);
    CHECK_INT(nv, 0);
    scorer_free(vn);
    // regex: its extracted match, compared as normalised text
    Scorer *vr = mk(SCORE_REGEX, "\n", false, "answer: ([a-z]+)");
    const char *caps[] = {"Paris", "", "paris", "Lyon"};
    CHECK_INT(score_vote(vr, caps, 4, &nv), 0);
    CHECK_INT(nv, 2);
    scorer_free(vr);
}

static void test_stats(void) {
    CHECK_NEAR(stats_accuracy(3, 10), 0.3, 1e-15);
    // sqrt(0.3 * 0.7 / 9), the sample standard deviation over sqrt(n)
    CHECK_NEAR(stats_stderr(3, 10), 0.15275252316519466, 1e-15);
    CHECK(stats_stderr(1, 1) != stats_stderr(1, 1)); // NaN below 2 items
    CHECK_NEAR(stats_stderr(0, 5), 0, 0);
    // the 95% Wilson score interval, worked out with Python's math from the closed form
    // (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n); at 0/n and n/n it has width
    // (p -+ 1.96 se gave [0, 0] and [1, 1] there, se being 0)
    static const struct {
        long k, n;
        double lo, hi;
    } wilson[] = {
        {6, 8, 0.40927543031016883, 0.9285207872478909}, {2, 8, 0.071479212752109, 0.5907245696898311},
        {0, 8, 0.0, 0.32440756488388023},                {8, 8, 0.6755924351161198, 1.0},
        {3, 10, 0.10779126740630099, 0.6032218525388546}, {0, 1, 0.0, 0.7934506856227626},
        {1, 1, 0.20654931437723745, 1.0},                 {5, 20, 0.11186170140766569, 0.468700877618744},
    };
    const double z = 1.959963984540054;
    for (size_t i = 0; i < sizeof wilson / sizeof *wilson; i++) {
        double lo, hi, k = (double)wilson[i].k, n = (double)wilson[i].n;
        stats_wilson95(wilson[i].k, wilson[i].n, &lo, &hi);
        CHECK_NEAR(lo, wilson[i].lo, 1e-14);
        CHECK_NEAR(hi, wilson[i].hi, 1e-14);
        // each end p0 is where the score test is at its bound: (k/n - p0)^2 = z^2 p0 (1 - p0) / n
        // (an end at 0 or 1 is the boundary itself, at 0/n or n/n)
        for (int j = 0; j < 2; j++) {
            double p0 = j ? hi : lo;
            if (p0 > 0 && p0 < 1) CHECK_NEAR((k / n - p0) * (k / n - p0), z * z * p0 * (1 - p0) / n, 1e-13);
        }
    }
    double lo, hi;
    stats_wilson95(0, 0, &lo, &hi);
    CHECK(lo != lo && hi != hi); // no items: no interval
    // exact binomial: k=1 of 10 -> 2 * (1 + 10) / 1024; k=2 of 10 -> 2 * (1 + 10 + 45) / 1024
    CHECK_NEAR(stats_binom_two_sided(1, 10), 22.0 / 1024, 1e-15);
    CHECK_NEAR(stats_binom_two_sided(2, 10), 0.109375, 1e-14);
    CHECK_NEAR(stats_binom_two_sided(5, 10), 1.0, 0);
    CHECK_NEAR(stats_binom_two_sided(0, 0), 1.0, 0);
    Paired p;
    stats_paired(5, 2, 8, 5, &p); // 20 items
    CHECK_INT(p.n, 20);
    CHECK_NEAR(p.acc_a, 0.35, 1e-15);
    CHECK_NEAR(p.acc_b, 0.65, 1e-15);
    CHECK_NEAR(p.diff, 0.3, 1e-15);
    CHECK_NEAR(p.se, 0.14317821063276354, 1e-12); // sqrt(mean((d - mean d)^2) / n) of d = b - a per item
    // Newcombe's method 10 (tests/ref/statsref.py's newcombe_paired95, from the paper's formulas and
    // Wilson bounds found by bisection); the Wald interval diff +- 1.96 se was [0.019, 0.581]
    CHECK_NEAR(p.ci_low, -0.00709042692305439, 1e-9);
    CHECK_NEAR(p.ci_high, 0.538730811795713, 1e-9);
    CHECK_NEAR(p.p_exact, 0.109375, 1e-14);       // the 10 discordant pairs, 2 one way
    CHECK_NEAR(p.chi2, 2.5, 1e-15);               // (|8 - 2| - 1)^2 / 10
    CHECK_NEAR(p.p_chi2, 0.11384629800665803, 1e-12); // erfc(sqrt(2.5 / 2))
    stats_paired(3, 0, 0, 2, &p); // no discordant pair: an interval of some width about 0 (Wald: [0, 0])
    CHECK_NEAR(p.p_exact, 1, 0);
    CHECK_NEAR(p.diff, 0, 0);
    CHECK_NEAR(p.ci_low, -0.307323109194212, 1e-9);
    CHECK_NEAR(p.ci_high, 0.307323109194212, 1e-9);
    stats_paired(0, 0, 4, 0, &p); // 0/4 against 4/4: not the point [1, 1] (Wald), the bound 1 kept
    CHECK_NEAR(p.ci_low, 0.307189735003609, 1e-9);
    CHECK_NEAR(p.ci_high, 1, 0);
    stats_paired(0, 4, 0, 0, &p);
    CHECK_NEAR(p.ci_low, -1, 0);
    CHECK_NEAR(p.ci_high, -0.307189735003609, 1e-9);
    stats_paired(1, 0, 3, 0, &p); // Wald: [+0.326, +1.174], past 1
    CHECK_NEAR(p.ci_low, 0.0852325329260435, 1e-9);
    CHECK_NEAR(p.ci_high, 0.954412739190299, 1e-9);
    // large n does not overflow
    double big = stats_binom_two_sided(4000, 10000);
    CHECK(big >= 0 && big < 1e-80);
}

int main(void) {
    if (!mkdtemp(check_tmpl(dir, sizeof dir, "qkv-prompt"))) {
        perror("mkdtemp");
        return 1;
    }
    test_tasks_and_templates();
    test_layouts();
    test_scorers();
    test_stats();
    char cmd[CHECK_PATH_LEN];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return CHECK_DONE();
}
