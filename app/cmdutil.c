// cmdutil.c - what the command handlers share: decoding options, prompt token ids, token
// pieces and generations as JSON, the database and id arguments, filters, and text shown on
// one line.
#include "cmdutil.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/chatturn.h"
#include "base/fs.h"
#include "base/json.h"
#include "tok/chat.h"
#include "label.h"
#include "runlog.h"

enum { MAX_TOKENS = 1 << 20, MAX_TOP_K = 1 << 24 };
#define MAX_TEMPERATURE 100.0
#define SEED_LIMIT (1ull << 53)

const char *decode_out_of_range(const GenParams *p, char *buf, size_t size) {
    if (p->max_tokens < 0 || p->max_tokens > MAX_TOKENS) snprintf(buf, size, "max=%d", p->max_tokens);
    else if (!(p->s.temperature >= 0 && p->s.temperature <= MAX_TEMPERATURE))
        snprintf(buf, size, "temperature=%g", p->s.temperature);
    else if (p->s.top_k < 0 || p->s.top_k > MAX_TOP_K) snprintf(buf, size, "top_k=%d", p->s.top_k);
    else if (!(p->s.top_p >= 0 && p->s.top_p <= 1)) snprintf(buf, size, "top_p=%g", p->s.top_p);
    else if (p->n_alts < 0 || p->n_alts > GEN_MAX_ALTS) snprintf(buf, size, "alts=%d", p->n_alts);
    else if (p->s.seed >= SEED_LIMIT) snprintf(buf, size, "seed=%llu (%lld as stored)", (unsigned long long)p->s.seed, (long long)p->s.seed);
    else return NULL;
    return buf;
}

// Decoding options on top of the defaults. Returns 0 or -1 (message in out).
int decode_opts(App *app, const Args *a, GenParams *p, bool *seed_given, Out *out) {
    Err e = {0};
    *p = app->gen;
    long long v;
    double f;
    bool b;
    int r;
    if ((r = args_int(a, "max", 0, MAX_TOKENS, &v, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p->max_tokens = (int)v;
    if ((r = args_float(a, "temperature", 0, MAX_TEMPERATURE, &f, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p->s.temperature = (float)f;
    if ((r = args_int(a, "top_k", 0, MAX_TOP_K, &v, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p->s.top_k = (int)v;
    if ((r = args_float(a, "top_p", 0, 1, &f, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p->s.top_p = (float)f; // 0: only the most likely token (as transformers keeps one)
    if ((r = args_int(a, "alts", 0, GEN_MAX_ALTS, &v, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p->n_alts = (int)v;
    if ((r = args_bool(a, "truncate", &b, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p->truncate = b;
    if ((r = args_bool(a, "stop", &b, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p->stop_at_eos = b;
    const char *s = args_opt(a, "seed");
    *seed_given = false;
    if (s) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(s, &end, 10);
        if (!*s || *end || *s == '-' || (errno && errno != ERANGE))
            return out_error(out, "seed=%.40s: a non-negative integer expected", s);
        // a number too large for 64 bits (ERANGE) is out of the same range
        if (errno == ERANGE || x >= SEED_LIMIT)
            return out_error(out, "seed=%.40s: must be below 2^53 (so that JSON keeps it exact)", s);
        p->s.seed = x;
        *seed_given = true;
    } else if (app->seed_set) {
        *seed_given = true;
    }
    return 0;
}

int seed_span(const char *cmd, uint64_t seed, long long n, const char *what, Out *out) {
    if (n < 1 || seed + (uint64_t)n - 1 < SEED_LIMIT) return 0;
    return out_error(out, "%s: seed=%llu: %s %lld would use seed %llu, and seeds are below 2^53: give a seed= up to %llu",
                     cmd, (unsigned long long)seed, what, n, (unsigned long long)(seed + (uint64_t)n - 1),
                     (unsigned long long)(SEED_LIMIT - (uint64_t)n));
}

uint64_t fresh_seed(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    uint64_t x = (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x & ((1ull << 53) - 1); // exact in JSON numbers
}

// A comma-separated list of non-negative ints below limit into v; what names it in messages.
int int_list(const char *list, const char *what, int limit, IntVec *v, Out *out) {
    for (const char *s = list; *s;) {
        char *end;
        errno = 0;
        long x = strtol(s, &end, 10);
        if (end == s || errno || x < 0 || x > 1 << 30)
            return out_error(out, "%s=%.60s: comma-separated numbers expected", what, list);
        if (x >= limit) return out_error(out, "%s=%.60s: %ld is out of range (0 to %d)", what, list, x, limit - 1);
        iv_push(v, (int)x);
        s = end;
        if (*s == ',') s++;
        else if (*s) return out_error(out, "%s=%.60s: comma-separated numbers expected", what, list);
    }
    return 0;
}

int chat_read(const Tokenizer *t, const Args *a, const char *text, size_t len, Buf *rendered, TokChatKind *kind,
              Out *out) {
    Err e = {0};
    bool chat = false;
    if (args_bool(a, "chat", &chat, &e) < 0) return out_error(out, "%s", e.msg);
    const char *sys = args_opt(a, "system");
    *kind = TOK_CHAT_NONE;
    if (!chat) return sys ? out_error(out, "system= goes with chat=true") : 0;
    ChatMsg msgs[2];
    int n = 0;
    if (sys) msgs[n++] = (ChatMsg){"system", sys, strlen(sys)};
    msgs[n++] = (ChatMsg){"user", text, len};
    buf_clear(rendered);
    if (tok_chat_render(t, msgs, n, true, rendered, &e)) return out_error(out, "chat=true: %s", e.msg);
    *kind = tok_chat_kind(t);
    return 1;
}

int prompt_read(App *app, const Args *a, Prompt *p, bool allow_empty, Out *out) {
    const Model *m = app->model;
    const char *list = args_opt(a, "ids"), *types = args_opt(a, "types"), *pair = args_opt(a, "pair");
    const Arg *text = args_pos(a, 0);
    memset(p, 0, sizeof *p);
    if (list && text) return out_error(out, "give either TEXT or ids=, not both");
    if (types && !list) return out_error(out, "types= goes with ids= (a sentence pair from text: pair=\"B\")");
    if (pair && !text) return out_error(out, "pair= goes with TEXT");
    if (!text && (args_opt(a, "chat") || args_opt(a, "system"))) return out_error(out, "chat= and system= go with TEXT");
    if (list) {
        if (int_list(list, "ids", m->cfg.n_vocab, &p->ids, out)) return -1;
        if (types) {
            int nt = m->cfg.a.token_types ? m->cfg.n_types : 1;
            if (int_list(types, "types", nt, &p->types, out)) return -1;
            if (p->types.n != p->ids.n)
                return out_error(out, "types= gives %d values for %d ids", p->types.n, p->ids.n);
        }
    } else if (text) {
        Err e = {0};
        const Tokenizer *t = m->tok;
        Buf chat = {0};
        int c = chat_read(t, a, text->val, text->len, &chat, &p->chat, out);
        if (c > 0 && pair) c = out_error(out, "chat=true does not go with pair=");
        // a rendered chat holds its own BOS where the template puts it
        if (c > 0 && tok_encode(t, chat.data, chat.len, TOK_PARSE_SPECIAL, &p->ids, &e) < 0)
            c = out_error(out, "%s", e.msg);
        buf_free(&chat);
        if (c < 0) return -1;
        if (c == 0 && !pair) {
            if (tok_encode(t, text->val, text->len, TOK_ADD_SPECIAL | TOK_PARSE_SPECIAL, &p->ids, &e) < 0)
                return out_error(out, "%s", e.msg);
        } else if (c == 0) {
            // a sentence pair as BERT reads it: [CLS] A [SEP] B [SEP], segment 0 then 1
            int first = tok_add_first(t), last = tok_add_last(t);
            if (!m->cfg.a.token_types || last < 0)
                return out_error(out, "pair=: %s does not read sentence pairs (no token types or separator)", m->name);
            if (first >= 0) iv_push(&p->ids, first);
            if (tok_encode(t, text->val, text->len, TOK_PARSE_SPECIAL, &p->ids, &e) < 0)
                return out_error(out, "%s", e.msg);
            iv_push(&p->ids, last);
            int n_a = p->ids.n;
            if (tok_encode(t, pair, strlen(pair), TOK_PARSE_SPECIAL, &p->ids, &e) < 0) return out_error(out, "%s", e.msg);
            iv_push(&p->ids, last);
            for (int i = 0; i < p->ids.n; i++) iv_push(&p->types, i < n_a ? 0 : 1);
        }
    }
    if (p->ids.n == 0 && !allow_empty) return out_error(out, "no tokens: give TEXT or ids=");
    return 0;
}

void prompt_free(Prompt *p) {
    iv_free(&p->ids);
    iv_free(&p->types);
}

int args_only(const Args *a, const char *const *keys, const char *cmd, Out *out) {
    for (int i = 0; i < a->n; i++) {
        const char *k = a->a[i].key;
        bool known = !k;
        for (int j = 0; !known && keys[j]; j++) known = !strcmp(k, keys[j]);
        if (known) continue;
        Buf only = {0};
        for (int j = 0; keys[j]; j++) buf_printf(&only, "%s%s=", j ? ", " : "only ", keys[j]);
        int rc = out_error(out, "%s: %.40s= does not apply (%s)", cmd, k, only.data ? only.data : "it takes no options");
        buf_free(&only);
        return rc;
    }
    return 0;
}

void token_piece(const Tokenizer *t, int id, Buf *tmp) {
    buf_clear(tmp);
    tok_piece_display(t, id, tmp);
}

void token_shown(const Tokenizer *t, int id, Buf *out) {
    Buf raw = {0};
    token_piece(t, id, &raw);
    buf_clear(out);
    label_visible(out, raw.data ? raw.data : "", raw.len, true);
    buf_free(&raw);
}

void json_tokens(JsonW *w, const char *key, const Tokenizer *t, const int *ids, int n) {
    Buf tmp = {0};
    jw_key(w, key);
    jw_arr(w);
    for (int i = 0; i < n; i++) {
        token_piece(t, ids[i], &tmp);
        jw_strn(w, tmp.data ? tmp.data : "", tmp.len);
    }
    jw_arr_end(w);
    buf_free(&tmp);
}

void json_matrix(JsonW *w, const char *key, const float *m, int rows, int cols) {
    if (key) jw_key(w, key);
    jw_arr(w);
    for (int i = 0; i < rows; i++) {
        jw_arr(w);
        for (int j = 0; j < cols; j++) {
            float x = m[(size_t)i * cols + j];
            if (isnan(x)) jw_null(w);
            else jw_num(w, x);
        }
        jw_arr_end(w);
    }
    jw_arr_end(w);
}

void jw_knum_or_null(JsonW *w, const char *key, double v) {
    jw_key(w, key);
    if (isnan(v)) jw_null(w);
    else jw_num(w, v);
}

void json_ints(JsonW *w, const char *key, const int *v, int n) {
    jw_key(w, key);
    jw_arr(w);
    for (int i = 0; i < n; i++) jw_int(w, v[i]);
    jw_arr_end(w);
}

// A generation's fields: the run as the log recorded it (every field show gives), then what
// only a fresh generation has: speeds and each step's pieces and alternatives.
void generation_json(App *app, JsonW *w, const Generation *g) {
    const Tokenizer *t = app->model->tok;
    const GenResult *r = &g->r;
    db_run_json_fields(&g->rec.run, w, true);
    jw_kint(w, "n_prompt", r->prompt.n);
    // null without an interval to measure (as bench's): a generation of one token decodes none
    // after the prefill, which gives the first
    jw_knum_or_null(w, "prefill_tok_s", r->prefill_s > 0 && r->prompt.n ? r->prompt.n / r->prefill_s : NAN);
    int decoded = r->ids.n > 1 ? r->ids.n - 1 : 0;
    jw_knum_or_null(w, "decode_tok_s", r->decode_s > 0 && decoded ? decoded / r->decode_s : NAN);
    if (g->log_err.msg[0]) jw_kstr(w, "log_error", g->log_err.msg);
    jw_key(w, "steps");
    jw_arr(w);
    Buf tmp = {0};
    for (int i = 0; i < r->ids.n; i++) {
        const GenStep *s = &r->steps[i];
        jw_obj(w);
        jw_kint(w, "id", s->id);
        token_piece(t, s->id, &tmp);
        jw_key(w, "piece");
        jw_strn(w, tmp.data ? tmp.data : "", tmp.len);
        jw_knum(w, "logprob", s->logprob);
        jw_key(w, "top");
        jw_arr(w);
        for (int k = 0; k < s->n_alts; k++) {
            jw_obj(w);
            jw_kint(w, "id", s->alt_ids[k]);
            token_piece(t, s->alt_ids[k], &tmp);
            jw_key(w, "piece");
            jw_strn(w, tmp.data ? tmp.data : "", tmp.len);
            jw_knum(w, "logprob", s->alt_logprobs[k]);
            jw_obj_end(w);
        }
        jw_arr_end(w);
        jw_obj_end(w);
    }
    jw_arr_end(w);
    buf_free(&tmp);
}

// The database or an error in out; read: for a command that only reads it (app_db_read).
static Db *db_or_error(App *app, bool read, Out *out) {
    Err e = {{0}};
    Db *db = read ? app_db_read(app, &e) : app_db(app, &e);
    if (!db) out_error(out, "%s", e.msg);
    return db;
}

Db *need_db(App *app, Out *out) { return db_or_error(app, false, out); }
Db *need_db_read(App *app, Out *out) { return db_or_error(app, true, out); }

// A run or ranking id argument ("12" or "#12"); what names it in the message ("run").
int id_arg(const char *val, const char *what, int64_t *id, Out *out) {
    const char *s = val + (val[0] == '#');
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v <= 0) return out_error(out, "'%.40s' is not a%s %s id", val, strchr("aeiou", what[0]) ? "n" : "", what);
    *id = v;
    return 0;
}

// The optional count and filter text of history and rankings: [N] [TEXT].
int count_text_args(const Args *a, const char *cmd, const char *rows, long long *n, const Arg **text, Out *out) {
    for (int i = 0; i < args_npos(a); i++) {
        const Arg *p = args_pos(a, i);
        char *end;
        long long v = strtoll(p->val, &end, 10);
        if (i == 0 && !p->quoted && *p->val && !*end) {
            if (v < 1) return out_error(out, "%s: the number of %s must be at least 1", cmd, rows);
            *n = v;
        } else if (!*text) {
            *text = p;
        } else {
            return out_error(out, "%s: one filter text at most: usage: %s [N] [TEXT]", cmd, cmd);
        }
    }
    return 0;
}

// A listing (history, rankings, experiments): [N] [TEXT] and the filters, then each row into key: [...].
int list_command(App *app, const Args *a, Out *out, const char *cmd, const char *key, ListEach each) {
    long long n = 20;
    const Arg *text = NULL;
    if (count_text_args(a, cmd, key, &n, &text, out)) return -1;
    DbFilter f = {0};
    if (filter_opts(a, &f, out)) return -1;
    if (text) f.text = text->val, f.text_len = text->len;
    if (list_absent(app, out, key)) return 0;
    Db *db = need_db_read(app, out);
    if (!db) return -1;
    Err e = {{0}};
    ListCtx c = {out, 0};
    jw_key(&out->w, key);
    jw_arr(&out->w);
    int rc = each(db, &f, (long)n, &c, &e);
    jw_arr_end(&out->w);
    if (rc) return out_error(out, "%s: %s", cmd, e.msg);
    if (!c.n) list_none(out, key, text || f.since || f.until || f.annotator || f.model || f.kind);
    return 0;
}

void list_none(Out *out, const char *what, bool filtered) {
    buf_printf(&out->text, "no %s %s\n", what, filtered ? "match" : "yet");
}

bool list_absent(App *app, Out *out, const char *key) {
    if (!app_db_absent(app)) return false;
    Err e = {{0}};
    app_db_absent_msg(app, &e);
    jw_key(&out->w, key);
    jw_arr(&out->w);
    jw_arr_end(&out->w);
    jw_kstr(&out->w, "warning", e.msg);
    buf_printf(&out->text, "%s\n", e.msg);
    return true;
}

// Filters of history and export from their options; -1 with the message in out for a kind of
// run qkv does not log (it listed nothing: "no runs match").
int filter_opts(const Args *a, DbFilter *f, Out *out) {
    f->since = args_opt(a, "since");
    f->until = args_opt(a, "until");
    f->annotator = args_opt(a, "annotator");
    f->model = args_opt(a, "model");
    f->kind = args_opt(a, "kind");
    for (int k = 0; k < a->n; k++) // text= (of the commands that take it), a NUL in it too
        if (a->a[k].key && !strcmp(a->a[k].key, "text")) f->text = a->a[k].val, f->text_len = a->a[k].len;
    static const char *const kinds[] = {"generate", "rank", "replay", "experiment", "judge"};
    for (size_t i = 0; f->kind && i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(f->kind, kinds[i])) return 0;
    if (f->kind)
        return out_error(out, "kind=%.40s: runs are of the kinds generate, rank, replay, experiment and judge", f->kind);
    return 0;
}

// Append n bytes of s as valid UTF-8 text with NUL bytes shown as ␀ (a human form is a C
// string: a NUL would end it there, in the TUI's panes for one).
void put_text(Buf *b, const char *s, size_t n) {
    const char *nul;
    while (n && (nul = memchr(s, 0, n))) {
        buf_put_utf8(b, s, (size_t)(nul - s));
        buf_puts(b, "\xe2\x90\x80");
        n -= (size_t)(nul - s) + 1;
        s = nul + 1;
    }
    buf_put_utf8(b, s, n);
}

void put_token(Buf *b, const char *s, size_t n) {
    int width = (int)(8 * n + 8); // the widest visible form of a byte ("<0xC3>", "<U+009B>") fits
    size_t cap = 4 * (size_t)width + 16; // label_format's room: never cut
    char *cell = xmalloc(cap);
    label_format(cell, cap, s ? s : "", s ? n : 0, width, true);
    buf_puts(b, cell);
    free(cell);
}

void put_cell(Buf *b, const char *s, size_t n, int width, bool token) {
    char cell[4 * CELL_MAX + 16]; // label_format never cuts into a character with this room
    if (width > CELL_MAX) width = CELL_MAX;
    int used = token ? label_format(cell, sizeof cell, s ? s : "", s ? n : 0, width, true)
                     : label_format_text(cell, sizeof cell, s ? s : "", s ? n : 0, width);
    buf_puts(b, cell);
    for (; used < width; used++) buf_putc(b, ' ');
}

// Append about max bytes of s on one line (newlines shown as ⏎), "..." when cut.
bool has_ext(const char *path, const char *ext) {
    size_t n = strlen(path), k = strlen(ext);
    return n > k && !strcasecmp(path + n - k, ext);
}

bool dir_has_ext(const char *dir, const char *ext, const char *except) {
    DIR *d = opendir(dir);
    bool found = false;
    for (struct dirent *de; d && !found && (de = readdir(d));)
        found = has_ext(de->d_name, ext) && !(except && !strcmp(de->d_name, except));
    if (d) closedir(d);
    return found;
}

void text_line(Buf *b, const char *s, size_t n, size_t max) {
    size_t cut = n < max ? n : max;
    while (cut < n && cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80) cut--; // not inside a character
    size_t start = 0;
    for (size_t i = 0; i <= cut; i++) {
        if (i < cut && s[i] != '\n' && s[i] != '\r') continue;
        put_text(b, s + start, i - start);
        if (i < cut) buf_puts(b, "\xe2\x8f\x8e");
        start = i + 1;
    }
    if (cut < n) buf_puts(b, "...");
}

void prompt_line(Buf *b, const char *s, size_t n, size_t max, bool chat) {
    size_t off, len;
    chat = chat && chat_user_text(s, n, &off, &len);
    if (chat) buf_puts(b, "chat: ");
    buf_putc(b, '"');
    text_line(b, chat ? s + off : s, chat ? len : n, max);
    buf_putc(b, '"');
}

void jw_chat_user(JsonW *w, const char *s, size_t n, bool chat) {
    size_t off, len;
    jw_key(w, "chat_user");
    if (chat && chat_user_text(s, n, &off, &len)) jw_strn(w, s + off, len);
    else jw_null(w);
}

int newmodel_args(const Args *a, const Family *f, NewModelParams *out_p, Out *out) {
    NewModelParams p = newmodel_defaults();
    p.family = f->model_type;
    p.masks = f->hf->mask_buffer != NULL;
    Err e = {0};
    long long v;
    double x;
    bool b;
    int r;
#define INT_OPT(k, lo, hi, field)                                                         \
    if ((r = args_int(a, k, lo, hi, &v, &e)) < 0) return out_error(out, "%s", e.msg); \
    if (r) p.field = (int)v;
    INT_OPT("layers", 1, 200, n_layer)
    INT_OPT("heads", 1, 1024, n_head)
    INT_OPT("d", 1, 16384, n_embd)
    INT_OPT("ctx", 1, 65536, n_ctx)
    INT_OPT("vocab", 1, 1 << 22, n_vocab)
    INT_OPT("shards", 1, 64, shards)
    INT_OPT("kv_heads", 1, 1024, n_kv_head)
    INT_OPT("ff", 1, 65536, n_ff)
#undef INT_OPT
    if ((r = args_int(a, "seed", 0, (1ll << 53), &v, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p.seed = (uint64_t)v;
    if ((r = args_float(a, "std", 0, 99, &x, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p.std = (float)x;
    if ((r = args_float(a, "theta", 1, 1e9, &x, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p.rope_theta = (float)x;
    if ((r = args_bool(a, "tied", &b, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p.tied = b;
    if ((r = args_bool(a, "masks", &b, &e)) < 0) return out_error(out, "%s", e.msg);
    if (r) p.masks = b;
    const char *dt = args_opt(a, "dtype");
    if (dt) {
        if (!strcasecmp(dt, "f32")) p.dtype = DT_F32;
        else if (!strcasecmp(dt, "f16")) p.dtype = DT_F16;
        else if (!strcasecmp(dt, "bf16")) p.dtype = DT_BF16;
        else return out_error(out, "dtype=%.20s: f32, f16 or bf16 expected", dt);
    }
    const char *prefix = args_opt(a, "prefix");
    if (prefix) p.prefix = prefix;
    else p.prefix = f->hf->prefixes[0];
    if (p.n_embd % p.n_head) return out_error(out, "d=%d must be a multiple of heads=%d", p.n_embd, p.n_head);
    *out_p = p;
    return 0;
}

void options_json(const Args *a, const char *pos_key, Buf *b) {
    JsonW w;
    jw_init(&w, b);
    jw_obj(&w);
    if (pos_key) jw_kstr(&w, pos_key, args_pos(a, 0)->val);
    for (int i = 0; i < a->n; i++)
        if (a->a[i].key) jw_kstr(&w, a->a[i].key, a->a[i].val);
    jw_obj_end(&w);
}

const char *app_loaded_file_in(const App *app, const char *dir) {
    const Model *m = app->original ? app->original : app->model;
    for (int i = 0; m && m->path && newmodel_files[i]; i++) {
        char *p = fs_join(dir, newmodel_files[i]);
        bool hit = runlog_hashes(m->path, p);
        free(p);
        if (hit) return newmodel_files[i];
    }
    return NULL;
}
