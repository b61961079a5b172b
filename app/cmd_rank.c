// cmd_rank.c - ranking: rank (K candidates), order (best first, ties), skip, note. The
// ranking waiting for `order` is the session's (PendingRank).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdutil.h"
#include "commands.h"
#include "base/mem.h"
#include "base/utf8.h"

_Static_assert((int)RANK_MAX_CANDIDATES == (int)DB_RANK_MAX, "a pending ranking holds as many candidates as a stored one");

// An order of k candidates to show as an example: "order 3 1 2" for 3, "order 4 1 2=3" for 4
// (the last one best, the tie joining two), named only of candidates there are.
static void order_example(Buf *b, int k) {
    buf_printf(b, "order %d", k);
    for (int c = 1; c < k; c++) buf_printf(b, "%c%d", c == k - 1 && c > 1 ? '=' : ' ', c);
}

static int cmd_rank(App *app, const Args *a, Out *out) {
    if (app->pending)
        return out_error(out, "rank: a ranking of %d candidates is pending: finish it with order or skip first",
                         app->pending->k);
    const Arg *arg = args_pos(a, 0);
    long long k = 0;
    Err e = {{0}};
    int got = args_int(a, "k", DB_RANK_MIN, DB_RANK_MAX, &k, &e);
    if (got < 0) return out_error(out, "rank: %s", e.msg);
    if (!got) return out_error(out, "rank: give the number of candidates: k=%d..%d", DB_RANK_MIN, DB_RANK_MAX);
    GenParams p;
    bool seed_given;
    if (decode_opts(app, a, &p, &seed_given, out)) return -1;
    // candidate i's seed is S+i-1: each one generate and replay take (below 2^53; a logged seed
    // above it made replay call the run damaged)
    if (seed_given && seed_span("rank", p.s.seed, k, "candidate", out)) return -1;
    if (!need_db(app, out)) return -1; // the candidates must be logged runs
    // with chat=true the prompt ranked (and logged) is the rendered chat
    Buf chat = {0};
    TokChatKind kind;
    if (chat_read(app->model->tok, a, arg->val, arg->len, &chat, &kind, out) < 0) return -1;
    const char *ptext = kind ? chat.data : arg->val;
    size_t plen = kind ? chat.len : arg->len;
    uint64_t seed0 = p.s.seed;
    PendingRank *pr = xcalloc(1, sizeof *pr);
    pr->k = (int)k;
    pr->prompt = xmalloc(plen + 1); // the text may hold NUL bytes
    memcpy(pr->prompt, ptext, plen);
    pr->prompt[plen] = 0;
    pr->prompt_len = plen;
    JsonW *w = &out->w;
    jw_kbool(w, "ranking_pending", true);
    jw_key(w, "prompt");
    jw_strn(w, ptext, plen);
    jw_chat_user(w, ptext, plen, kind != 0);
    jw_kint(w, "k", k);
    jw_key(w, "candidates");
    jw_arr(w);
    int rc = 0;
    Buf texts[DB_RANK_MAX] = {{0}}; // to say which candidates are the same text
    for (int i = 0; i < pr->k && !rc; i++) {
        p.s.seed = seed_given ? seed0 + (uint64_t)i : fresh_seed();
        Generation g;
        if (app_generate(app, ptext, plen, NULL, 0, &p, kind, "rank", 0, &g, &e)) {
            rc = out_error(out, "rank: candidate %d: %s", i + 1, e.msg);
            break;
        }
        int64_t run_id = g.rec.run.id;
        bool cut = g.r.stop == STOP_CANCELLED; // stopped inside this candidate: logged, not finished
        if (run_id <= 0) {
            rc = out_error(out, "rank: candidate %d could not be logged: %s", i + 1, g.log_err.msg);
        } else {
            pr->run_ids[i] = run_id;
            jw_obj(w);
            jw_kint(w, "n", i + 1);
            jw_kint(w, "run_id", run_id);
            char seed[24];
            snprintf(seed, sizeof seed, "%llu", (unsigned long long)p.s.seed);
            jw_key(w, "seed");
            jw_raw(w, seed);
            jw_key(w, "text");
            jw_strn(w, g.text.data ? g.text.data : "", g.text.len);
            jw_obj_end(w);
            buf_printf(&out->text, "[%d] (run %lld, seed %s)\n", i + 1, (long long)run_id, seed);
            buf_put_utf8(&out->text, g.text.data ? g.text.data : "", g.text.len);
            buf_puts(&out->text, "\n\n");
            buf_put(&texts[i], g.text.data ? g.text.data : "", g.text.len);
        }
        generation_free(&g);
        if (app->cancel && *app->cancel && !rc) { // what was logged stays logged: say so
            if (cut)
                rc = out_error(out, "rank: interrupted during candidate %d of %d: %d finished, logged as runs %lld..%lld "
                                    "with the last one cut off (stop_reason cancelled); no ranking pending", i + 1,
                               pr->k, i, (long long)pr->run_ids[0], (long long)pr->run_ids[i]);
            else
                rc = out_error(out, "rank: interrupted after %d of %d candidates (logged as runs %lld..%lld; no "
                                    "ranking pending)", i + 1, pr->k, (long long)pr->run_ids[0], (long long)pr->run_ids[i]);
        }
    }
    jw_arr_end(w);
    buf_free(&chat);
    // candidates of the same text (greedy decoding gives k copies): a preference between them
    // teaches a reward model nothing, and the trainers leave such pairs out
    int same = 0;
    bool all_empty = true; // every repeated text is empty: the model ended at once
    Buf note = {0};
    for (int i = 0; !rc && i < pr->k; i++) {
        bool first = true;
        for (int j = i + 1; j < pr->k; j++) {
            bool dup = false; // j is the same text as an earlier one than i: counted there
            for (int h = 0; h < i && !dup; h++)
                dup = utf8_same_text(texts[h].data, texts[h].len, texts[j].data, texts[j].len);
            if (!utf8_same_text(texts[i].data, texts[i].len, texts[j].data, texts[j].len)) continue;
            same++; // the pair (i, j) reads the same: no preference, whatever the order given
            if (dup) continue; // named in the note with the earlier one
            all_empty &= texts[i].len == 0;
            if (first) buf_printf(&note, "%s%d=%d", note.len ? ", " : "", i + 1, j + 1);
            else buf_printf(&note, "=%d", j + 1);
            first = false;
        }
    }
    for (int i = 0; i < DB_RANK_MAX; i++) buf_free(&texts[i]);
    jw_kint(w, "identical", same); // pairs of candidates that read the same (those the exports and trainers leave out)
    jw_kstr(w, "same_text", note.data ? note.data : ""); // which: "1=2=3", "1=3, 2=4"
    if (same) // what would give different ones
        buf_printf(&out->text, "note: candidates %s are the same text: a preference between them teaches nothing "
                               "(the trainers leave such pairs out); %s\n",
                   note.data,
                   all_empty && !p.max_tokens ? "they are empty: max=0 asks for no tokens"
                   : all_empty         ? "they are empty: the model ended the text at once (another prompt, or "
                                         "stop=false, gives text to rank)"
                   : p.s.temperature <= 0 ? "rank with temperature > 0 for different ones"
                                         : "a higher temperature (or a wider top_k / top_p) varies them more");
    buf_free(&note);
    if (rc) {
        app->pending = pr;
        app_rank_drop(app, false);
        return -1;
    }
    buf_puts(&out->text, "order them best first, '=' for ties (e.g. ");
    order_example(&out->text, pr->k);
    buf_puts(&out->text, "), or skip\n");
    app->pending = pr;
    app->last_ranking = 0; // `note` now means this ranking, stored or skipped, not the one before
    return 0;
}

// Read one group "2" or "2=4=5" into grp; returns its size or -1 with the message in out.
static int order_group(const char *s, int k, int *grp, bool *seen, Out *out) {
    int n = 0;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || (*end && *end != '='))
            return out_error(out, "order: '%.40s' is not a candidate number (1..%d, '=' between ties)", s, k);
        if (v < 1 || v > k) return out_error(out, "order: there is no candidate %ld (1..%d)", v, k);
        if (seen[v]) return out_error(out, "order: candidate %ld is named twice", v);
        seen[v] = true;
        grp[n++] = (int)v;
        s = *end ? end + 1 : end;
        if (*end && !*s) return out_error(out, "order: '=' must join two candidates");
    }
    return n;
}

static int cmd_order(App *app, const Args *a, Out *out) {
    PendingRank *pr = app->pending;
    if (!pr) return out_error(out, "order: no ranking pending (start one with rank \"PROMPT\" k=K)");
    bool seen[DB_RANK_MAX + 1] = {0};
    int groups[DB_RANK_MAX][DB_RANK_MAX], sizes[DB_RANK_MAX], ng = 0;
    Buf word = {0};
    for (int i = 0; i < a->n; i++) {
        const Arg *arg = &a->a[i];
        buf_clear(&word);
        if (arg->key) buf_printf(&word, "%s=%s", arg->key, arg->val); // 2=4 parses as an option
        else buf_puts(&word, arg->val);
        if (ng == DB_RANK_MAX) {
            buf_free(&word);
            return out_error(out, "order: more groups than candidates");
        }
        int n = order_group(word.data, pr->k, groups[ng], seen, out);
        if (n < 0) {
            buf_free(&word);
            return -1;
        }
        if (n) sizes[ng++] = n;
    }
    buf_free(&word);
    for (int c = 1; c <= pr->k; c++)
        if (!seen[c]) {
            Buf ex = {0};
            order_example(&ex, pr->k);
            out_error(out, "order: candidate %d is missing: name each of the %d candidates once, best first (e.g. %s)",
                      c, pr->k, ex.data);
            buf_free(&ex);
            return -1;
        }
    DbRanking rk = {0};
    rk.prompt = pr->prompt;
    rk.prompt_len = pr->prompt_len;
    rk.annotator = app->annotator;
    rk.note = pr->note;
    rk.k = pr->k;
    for (int g = 0; g < ng; g++) // a tie group in candidate order, as rankings lists it (3=1 is 1=3)
        for (int j = 1; j < sizes[g]; j++)
            for (int i = j; i > 0 && groups[g][i] < groups[g][i - 1]; i--) {
                int t = groups[g][i];
                groups[g][i] = groups[g][i - 1], groups[g][i - 1] = t;
            }
    for (int g = 0; g < ng; g++)
        for (int j = 0; j < sizes[g]; j++) {
            int c = groups[g][j];
            rk.items[c - 1] = (DbRankItem){c, pr->run_ids[c - 1], g + 1};
        }
    Err e = {{0}};
    Db *db = need_db(app, out);
    if (!db) return -1;
    int64_t id = db_ranking_insert(db, &rk, &e);
    if (id <= 0) return out_error(out, "order: %s (the ranking is still pending)", e.msg);
    JsonW *w = &out->w;
    jw_kint(w, "ranking_id", id);
    jw_key(w, "order");
    jw_arr(w);
    for (int g = 0; g < ng; g++) {
        jw_arr(w);
        for (int j = 0; j < sizes[g]; j++) jw_int(w, groups[g][j]);
        jw_arr_end(w);
    }
    jw_arr_end(w);
    jw_kint(w, "k", pr->k);
    jw_kstr(w, "annotator", app->annotator);
    jw_kstr(w, "note", pr->note);
    app->last_ranking = id;
    buf_printf(&out->text, "ranking %lld stored:", (long long)id);
    for (int g = 0; g < ng; g++) {
        buf_putc(&out->text, ' ');
        for (int j = 0; j < sizes[g]; j++) buf_printf(&out->text, "%s%d", j ? "=" : "", groups[g][j]);
    }
    buf_putc(&out->text, '\n');
    app_rank_drop(app, false);
    return 0;
}

static int cmd_skip(App *app, const Args *a, Out *out) {
    PendingRank *pr = app->pending;
    if (!pr) return out_error(out, "skip: no ranking pending");
    jw_kbool(&out->w, "skipped", true);
    jw_kint(&out->w, "k", pr->k);
    buf_printf(&out->text, "skipped: the %d candidates stay in the run log, no ranking stored\n", pr->k);
    app_rank_drop(app, false);
    return 0;
}

// note "TEXT": the pending ranking's, else the one order stored last in this session;
// note ranking=ID "TEXT": a stored one's. An empty text removes the note.
static int cmd_note(App *app, const Args *a, Out *out) {
    const Arg *t = args_pos(a, 0);
    if (!t) return out_error(out, "note: which text? usage: note \"TEXT\" or note ranking=ID \"TEXT\"");
    if (memchr(t->val, 0, t->len)) return out_error(out, "note: the text contains a NUL byte");
    const char *which = args_opt(a, "ranking");
    PendingRank *pr = app->pending;
    if (!which && pr) {
        free(pr->note);
        pr->note = t->len ? xstrdup(t->val) : NULL;
        jw_kstr(&out->w, "note", pr->note);
        jw_key(&out->w, "ranking_id");
        jw_null(&out->w);
        buf_puts(&out->text, pr->note ? "note kept for the pending ranking (order stores it)\n"
                                      : "note removed from the pending ranking\n");
        return 0;
    }
    int64_t id = app->last_ranking;
    if (which && id_arg(which, "ranking", &id, out)) return -1;
    if (!id)
        return out_error(out, "note: no ranking pending or stored in this session (note ranking=ID \"TEXT\" "
                              "for a stored one)");
    Db *db = need_db_read(app, out);
    if (!db) return -1;
    Err e = {{0}};
    int found = db_ranking_set_note(db, id, t->val, &e);
    if (found < 0) return out_error(out, "note: %s", e.msg);
    if (!found) return out_error(out, "note: no ranking %lld in '%s'", (long long)id, db_path(db));
    jw_kstr(&out->w, "note", t->len ? t->val : NULL);
    jw_kint(&out->w, "ranking_id", id);
    if (t->len) {
        buf_printf(&out->text, "note stored with ranking %lld: ", (long long)id);
        text_line(&out->text, t->val, t->len, 4000);
        buf_putc(&out->text, '\n');
    } else {
        buf_printf(&out->text, "note removed from ranking %lld\n", (long long)id);
    }
    return 0;
}

static const char *const k_none[] = {NULL};
static const char *const k_rank[] = {"k", DECODE_KEYS, CHAT_KEYS, NULL};
static const char *const k_order[] = {"1", "2", "3", "4", "5", "6", "7", "8", "9", NULL}; // "2=4" is a tie
static const char *const k_note[] = {"ranking", NULL};

const Command rank_commands[] = {
    {"rank", cmd_rank, 1, 1, k_rank,
     "rank \"PROMPT\" k=K [max=N temperature=T top_k=K top_p=P seed=S alts=N] [chat=true system=\"S\"]",
     "Generate K (2..9) candidate completions of PROMPT for a person to rank, each a logged run. With seed=S "
     "candidate i uses seed S+i-1, else each gets a fresh random seed (recorded). Finish with order, or skip; "
     "note adds a comment. chat=true ranks completions of PROMPT as a user turn rendered with the model's chat "
     "template (as for generate; the ranking's prompt is the rendered text). JSON: ranking_pending, prompt, chat_user, k, "
     "candidates: [{n, run_id, seed, text}], identical (pairs of candidates of one text), same_text (which: \"1=2=3\").",
     true},
    {"order", cmd_order, 0, DB_RANK_MAX, k_order, "order 3 1 2=4",
     "Rank the pending candidates best first; '=' joins tied candidates (order 3 1 2=4: 3 best, then 1, then 2 "
     "and 4 tied). Every candidate must be named once. The ranking is stored whole, with the annotator and the "
     "note. JSON: ranking_id, order (groups best first), k, annotator, note.",
     false, false, true}, // its words are checked by order_group: extra=1 is no candidate, not an unknown option
    {"skip", cmd_skip, 0, 0, k_none, "skip",
     "Drop the pending ranking: nothing is stored (the candidates stay in the run log). JSON: skipped, k.", false},
    {"note", cmd_note, 0, 1, k_note, "note \"TEXT\" | note ranking=ID \"TEXT\"",
     "Attach a note to the pending ranking (order stores it), or, when none is pending, to the ranking order "
     "stored last in this session (until the next rank: after a skip there is none); ranking=ID names any stored ranking. The note replaces an earlier one; "
     "\"\" removes it. JSON: note, ranking_id (null while the ranking is pending).",
     false},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, false},
};
