// teach.c - the teaching corpus generator and its held-out task files (see teach.h).
#include "train/teach.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "eval/sample.h"

static const char *const TASK_NAMES[TEACH_N_TASKS] = {"teach-cipher", "teach-list", "teach-words", "teach-arith"};

const char *teach_task_name(TeachTask t) { return TASK_NAMES[t]; }

// FNV-1a over the task's name and the input: one in five inputs is held out.
bool teach_held_out(TeachTask t, const char *input) {
    uint64_t h = 1469598103934665603ull;
    for (const char *s = TASK_NAMES[t]; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *s = input; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h ^= h >> 29;
    return h % 5 == 0;
}

static int pick(Rng *r, int n) { return (int)(rng_next(r) % (uint64_t)n); }

static const char *const NOUNS[] = {
    "cat",   "dog",   "bird",  "fish",  "tree",  "house", "book",  "ball",  "river", "hill",  "road",  "car",
    "boat",  "cup",   "chair", "table", "door",  "lamp",  "hat",   "shoe",  "coat",  "bag",   "box",   "key",
    "pen",   "desk",  "bell",  "cake",  "apple", "plum",  "pear",  "bean",  "seed",  "leaf",  "rock",  "star",
    "moon",  "cloud", "train", "ship",  "farm",  "barn",  "goat",  "horse", "sheep", "duck",  "frog",  "bear",
    "wolf",  "fox",   "mouse", "owl",   "ant",   "bee",   "worm",  "snake", "king",  "queen", "girl",  "boy",
    "friend","teacher","baker","cook",  "nurse", "pilot", "farmer","clown", "drum",  "song",  "game",  "toy",
    "kite",  "coin",  "ring",  "map",   "card",  "gift",  "sock",  "bed",   "wall",  "roof",  "park",  "lake",
    "field", "shell", "stone", "nest",  "egg",   "milk",  "bread", "soup",  "rose",  "tulip", "web",   "wing",
    "sun", "rain", "snow", "wind", "tent", "bus", "van", "truck", "plane", "bike", "sofa", "clock", "cap", "belt",
    "vase", "pot", "pan", "bowl", "fork", "spoon", "plate", "jar", "jug", "brick", "rope", "tool", "saw", "nail",
    "bolt", "hook", "gate", "path", "pond", "sea", "bay", "cave", "tower", "bridge", "castle", "window", "garden",
    "forest", "island", "valley", "beach", "shore", "lion", "tiger", "zebra", "camel", "whale", "shark", "crab",
    "seal", "otter", "deer", "rabbit", "panda", "monkey", "parrot", "eagle", "hawk", "swan", "goose", "hen", "lamb",
    "calf", "pony", "mule", "puppy", "kitten", "doctor", "singer", "dancer", "writer", "painter", "sailor", "driver",
    "artist", "guard", "judge", "chief", "uncle", "aunt", "cousin", "sister", "brother", "mother", "father", "baby",
    "lemon", "melon", "grape", "peach", "cherry", "berry", "onion", "carrot", "potato", "tomato", "pepper", "cookie",
    "candle", "button", "pocket", "mirror", "pillow", "blanket", "basket", "bucket", "ladder", "hammer", "rocket",
    "robot", "dragon", "giant", "wizard"};
#define N_NOUNS ((int)(sizeof NOUNS / sizeof NOUNS[0]))
static const char *const ADJS[] = {"small", "big", "red", "blue", "old", "young", "happy", "quiet", "green", "tall",
                                   "little", "brown", "kind", "busy", "sleepy", "clever"};
static const char *const VERBS[] = {"sees", "likes", "finds", "follows", "helps", "paints", "carries", "watches",
                                    "visits", "wants"};
static const char *const PREPS[] = {"near", "under", "behind", "beside", "above", "inside"};
#define N_OF(a) ((int)(sizeof a / sizeof a[0]))

// --- the rule-from-examples tasks: an input and its output under a rule ---------------------

enum { N_SHIFTS = 4, N_LIST_OPS = 5, N_WORD_OPS = 5 };

static void cipher_input(Rng *r, char *s) {
    int n = 3 + pick(r, 3);
    for (int i = 0; i < n; i++) s[i] = (char)('a' + pick(r, 26));
    s[n] = 0;
}

static void cipher_apply(int shift, const char *in, Buf *out) {
    for (const char *s = in; *s; s++) buf_putc(out, (char)('a' + (*s - 'a' + shift) % 26));
}

static void list_input(Rng *r, char *s) {
    int n = 3 + pick(r, 3), k = 0;
    for (int i = 0; i < n; i++) {
        if (i) s[k++] = ' ';
        s[k++] = (char)('0' + pick(r, 10));
    }
    s[k] = 0;
}

// op: 0 reverse, 1 sort, 2 first, 3 last, 4 drop the first
static void list_apply(int op, const char *in, Buf *out) {
    char d[8];
    int n = 0;
    for (const char *s = in; *s; s++)
        if (isdigit((unsigned char)*s)) d[n++] = *s;
    if (op == 1)
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && d[j - 1] > d[j]; j--) {
                char t = d[j];
                d[j] = d[j - 1], d[j - 1] = t;
            }
    int from = op == 3 ? n - 1 : op == 4 ? 1 : 0, to = op == 2 ? 1 : n;
    for (int i = from; i < to; i++) {
        if (i > from) buf_putc(out, ' ');
        buf_putc(out, op == 0 ? d[n - 1 - i] : d[i]);
    }
}

static void words_input(Rng *r, char *s) { strcpy(s, NOUNS[pick(r, N_NOUNS)]); }

// op: 0 plural (+s), 1 first letter, 2 last letter, 3 upper case, 4 the word twice
static void words_apply(int op, const char *in, Buf *out) {
    size_t n = strlen(in);
    if (op == 0) buf_printf(out, "%ss", in);
    else if (op == 1) buf_putc(out, in[0]);
    else if (op == 2) buf_putc(out, in[n - 1]);
    else if (op == 3)
        for (size_t i = 0; i < n; i++) buf_putc(out, (char)toupper((unsigned char)in[i]));
    else buf_printf(out, "%s %s", in, in);
}

typedef struct {
    void (*input)(Rng *r, char *s);
    void (*apply)(int rule, const char *in, Buf *out);
    int n_rules, test_rule;
} RuleTask;

static const RuleTask RULE_TASKS[3] = {
    {cipher_input, cipher_apply, N_SHIFTS, 2}, // shifts 1..N_SHIFTS
    {list_input, list_apply, N_LIST_OPS, 0},
    {words_input, words_apply, N_WORD_OPS, 0},
};

static int rule_of(TeachTask t, int k) { return t == TEACH_CIPHER ? k + 1 : k; }

// An input of t on the side asked for (held out or not), drawn from r.
static void draw_input(TeachTask t, Rng *r, bool held, char *s) {
    do RULE_TASKS[t].input(r, s);
    while (teach_held_out(t, s) != held);
}

// One document: 4 to 10 lines of one rule, distinct inputs in a row.
static void rule_doc(TeachTask t, Rng *r, Buf *out) {
    const RuleTask *rt = &RULE_TASKS[t];
    int rule = rule_of(t, pick(r, rt->n_rules)), n = 4 + pick(r, 7);
    char in[32], prev[32] = "";
    for (int i = 0; i < n; i++) {
        do draw_input(t, r, false, in);
        while (!strcmp(in, prev));
        strcpy(prev, in);
        buf_printf(out, "%s => ", in);
        rt->apply(rule, in, out);
        buf_putc(out, '\n');
    }
}

// --- two-step arithmetic ------------------------------------------------------------------

typedef struct {
    int a, b, c;
    char op1, op2; // '+', '-' or '*'
} Arith;

static int apply_op(int x, char op, int y) { return op == '+' ? x + y : op == '-' ? x - y : x * y; }

static void arith_input(const Arith *q, char *s) { sprintf(s, "%d %c %d %c %d", q->a, q->op1, q->b, q->op2, q->c); }

// A problem of three digits 1..9 (a op1 b op2 c; op1 +, - or *, op2 + or -) whose
// intermediate and final results are not negative. Each step of its rationale is one of a few
// hundred facts (a op1 b) or a few thousand (m op2 c) that the corpus states again and again,
// while the whole problem, when held out, is never seen: what makes a written rationale help.
static void arith_draw(Rng *r, bool held, Arith *q, char *s) {
    static const char OPS[] = "+-*";
    for (;;) {
        q->op1 = OPS[pick(r, 3)], q->op2 = OPS[pick(r, 2)];
        q->a = 1 + pick(r, 9), q->b = 1 + pick(r, 9), q->c = 1 + pick(r, 9);
        int m = apply_op(q->a, q->op1, q->b), v = apply_op(m, q->op2, q->c);
        if (m < 0 || v < 0) continue;
        arith_input(q, s);
        if (teach_held_out(TEACH_ARITH, s) == held) return;
    }
}

static void arith_rationale(const Arith *q, Buf *out) {
    int m = apply_op(q->a, q->op1, q->b);
    buf_printf(out, "%d %c %d = %d. %d %c %d = %d.", q->a, q->op1, q->b, m, m, q->op2, q->c, apply_op(m, q->op2, q->c));
}

static int arith_value(const Arith *q) { return apply_op(apply_op(q->a, q->op1, q->b), q->op2, q->c); }

// One document: 3 to 6 problems answered in one way (0 directly, 1 with a rationale, 2 after
// the trigger), blocks separated by a blank line.
static void arith_doc(Rng *r, Buf *out) {
    int how = pick(r, 3), n = 3 + pick(r, 4);
    for (int i = 0; i < n; i++) {
        Arith q;
        char s[64];
        arith_draw(r, false, &q, s);
        buf_printf(out, "%sQ: %s\nA:", i ? "\n" : "", s);
        if (how == 0) buf_printf(out, " %d\n", arith_value(&q));
        else {
            buf_puts(out, how == 2 ? " Let's think step by step. " : " ");
            arith_rationale(&q, out);
            buf_printf(out, " The answer is %d.\n", arith_value(&q));
        }
    }
}

// --- repeated sequences and sentences ------------------------------------------------------

static void repeat_doc(Rng *r, Buf *out) {
    char seq[256];
    int k = 0;
    if (pick(r, 2)) { // random printable characters
        int n = 10 + pick(r, 41);
        for (int i = 0; i < n; i++) seq[k++] = (char)(33 + pick(r, 94));
    } else { // random words
        int n = 3 + pick(r, 8);
        for (int i = 0; i < n; i++) k += sprintf(seq + k, "%s%s", i ? " " : "", NOUNS[pick(r, N_NOUNS)]);
    }
    seq[k] = 0;
    int reps = 2 + pick(r, 3);
    for (int i = 0; i < reps; i++) buf_printf(out, "%s%s", i ? " " : "", seq);
    buf_putc(out, '\n');
}

static void noun_phrase(Rng *r, Buf *out) {
    buf_puts(out, pick(r, 2) ? "the " : "a ");
    if (pick(r, 2)) buf_printf(out, "%s ", ADJS[pick(r, N_OF(ADJS))]);
    buf_puts(out, NOUNS[pick(r, N_NOUNS)]);
}

static void grammar_doc(Rng *r, Buf *out) {
    int n = 2 + pick(r, 4);
    for (int i = 0; i < n; i++) {
        Buf s = {0};
        noun_phrase(r, &s);
        buf_printf(&s, " %s ", VERBS[pick(r, N_OF(VERBS))]);
        noun_phrase(r, &s);
        if (!pick(r, 3)) {
            buf_printf(&s, " %s ", PREPS[pick(r, N_OF(PREPS))]);
            noun_phrase(r, &s);
        }
        s.data[0] = (char)toupper((unsigned char)s.data[0]);
        buf_printf(out, "%s%s.", i ? " " : "", s.data);
        buf_free(&s);
    }
    buf_putc(out, '\n');
}

void teach_corpus(uint64_t seed, size_t bytes, Buf *out) {
    Rng r;
    rng_seed(&r, seed);
    size_t start = out->len;
    while (out->len - start < bytes) {
        if (out->len > start) buf_putc(out, '\n');
        int k = pick(&r, 20); // cipher 1, list 3, words 5, arithmetic 5, repeats 5, sentences 1
        if (k < 1) rule_doc(TEACH_CIPHER, &r, out);
        else if (k < 4) rule_doc(TEACH_LIST, &r, out);
        else if (k < 9) rule_doc(TEACH_WORDS, &r, out);
        else if (k < 14) arith_doc(&r, out);
        else if (k < 19) repeat_doc(&r, out);
        else grammar_doc(&r, out);
    }
}

// --- task files ------------------------------------------------------------------------------

static void item_line(const char *in, const char *target, const char *rationale, bool pool, Buf *out) {
    JsonW w;
    jw_init(&w, out);
    jw_obj(&w);
    jw_kstr(&w, "input", in);
    jw_kstr(&w, "target", target);
    if (rationale) jw_kstr(&w, "rationale", rationale);
    if (pool) jw_kstr(&w, "split", "pool");
    jw_obj_end(&w);
    buf_putc(out, '\n');
}

void teach_task_file(TeachTask t, uint64_t seed, int n_pool, int n_test, Buf *out) {
    Rng r;
    rng_seed(&r, seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(t + 1)));
    if (t == TEACH_ARITH)
        buf_printf(out, "{\"name\": \"%s\", \"description\": \"\", \"input_prefix\": \"Q: \", \"delimiter\": \"\\nA:\", "
                        "\"separator\": \"\\n\\n\", \"scorer\": \"number\", \"max_tokens\": 6, \"max_tokens_cot\": 64}\n",
                   TASK_NAMES[t]);
    else
        buf_printf(out, "{\"name\": \"%s\", \"description\": \"\", \"scorer\": \"exact\", \"max_tokens\": 16}\n",
                   TASK_NAMES[t]);
    // distinct inputs: a test item never repeats, nor does an exemplar
    if (t == TEACH_WORDS) { // the word list bounds both sides
        int held = 0;
        for (int i = 0; i < N_NOUNS; i++) held += teach_held_out(t, NOUNS[i]);
        if (n_test > held) n_test = held;
        if (n_pool > N_NOUNS - held) n_pool = N_NOUNS - held;
    }
    char seen[1024][64]; // as long as an input, so that no two inputs compare equal cut short
    int n_seen = 0;
    for (int i = 0; i < n_pool + n_test && i < 1024; i++) {
        bool held = i >= n_pool, dup;
        char in[64];
        Buf target = {0}, rat = {0};
        Arith q;
        do {
            if (t == TEACH_ARITH) arith_draw(&r, held, &q, in);
            else draw_input(t, &r, held, in);
            dup = false;
            for (int j = 0; j < n_seen && !dup; j++) dup = !strcmp(seen[j], in);
        } while (dup);
        snprintf(seen[n_seen++], sizeof seen[0], "%s", in);
        if (t == TEACH_ARITH) {
            buf_printf(&target, "%d", arith_value(&q));
            arith_rationale(&q, &rat);
        } else {
            RULE_TASKS[t].apply(RULE_TASKS[t].test_rule, in, &target);
        }
        item_line(in, target.data, t == TEACH_ARITH ? rat.data : NULL, !held, out);
        buf_free(&target);
        buf_free(&rat);
    }
}
