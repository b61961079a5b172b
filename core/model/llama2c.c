// llama2c.c - llama2.c checkpoints (the legacy .bin of Karpathy's llama2.c): a header of
// seven int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a
// negative vocab_size means an untied classifier follows), then float32 arrays, each for
// every layer at once: token embeddings, attention norms, wq, wk, wv, wo, ffn norms, w1, w2,
// w3, the final norm, two legacy rotary tables (skipped), and the classifier when untied.
// Matrices are [out, in]; rotary embedding pairs adjacent dimensions; RMSNorm eps 1e-5.
// The file is mapped and each layer's slice registered as a tensor of its own.
#include "model/llama2c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fs.h"
#include "base/mem.h"
#include "model/wsrc.h"

extern const Family family_llama;

static const TensorMap llama2c_names = {
    .names =
        {
            [W_TOK_EMBD] = "tok_embeddings.weight",
            [W_OUT_NORM] = "norm.weight",
            [W_OUTPUT] = "output.weight",
            [W_ATTN_NORM] = "layers.%d.attention_norm.weight",
            [W_Q] = "layers.%d.attention.wq.weight",
            [W_K] = "layers.%d.attention.wk.weight",
            [W_V] = "layers.%d.attention.wv.weight",
            [W_O] = "layers.%d.attention.wo.weight",
            [W_FFN_NORM] = "layers.%d.ffn_norm.weight",
            [W_GATE] = "layers.%d.feed_forward.w1.weight",
            [W_DOWN] = "layers.%d.feed_forward.w2.weight",
            [W_UP] = "layers.%d.feed_forward.w3.weight",
        },
    .prefixes = {"", NULL},
};

typedef struct Header {
    int dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
    bool shared;
} Header;

// The mapping and the tensors registered from it.
typedef struct L2File {
    void *map;
    size_t size;
    WTensor *t;
    int n;
} L2File;

static void l2_close(void *h) {
    L2File *f = h;
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    if (f->map) munmap(f->map, f->size);
    free(f);
}

// Floats the header says the file holds after it, or 0 when the header is implausible.
static uint64_t expected_floats(const Header *h) {
    if (h->dim < 1 || h->dim > 65536 || h->hidden < 1 || h->hidden > 1 << 20 || h->n_layers < 1 || h->n_layers > 1000 ||
        h->n_heads < 1 || h->n_heads > 1024 || h->dim % h->n_heads || h->n_kv_heads < 1 || h->n_heads % h->n_kv_heads ||
        h->vocab < 1 || h->vocab > 1 << 24 || h->seq_len < 1 || h->seq_len > 1 << 20)
        return 0;
    uint64_t d = (uint64_t)h->dim, L = (uint64_t)h->n_layers, hs = d / (uint64_t)h->n_heads;
    uint64_t kv = hs * (uint64_t)h->n_kv_heads, f = (uint64_t)h->hidden, V = (uint64_t)h->vocab;
    uint64_t n = V * d + L * d + L * d * d + 2 * L * d * kv + L * d * d + L * d + 3 * L * d * f + d +
                 (uint64_t)h->seq_len * hs; // the two rotary tables, seq_len * hs / 2 each
    if (!h->shared) n += V * d;
    return n;
}

static void parse_header(const unsigned char *p, Header *h) {
    int32_t v[7];
    memcpy(v, p, sizeof v);
    // a negative vocabulary size marks an untied classifier; -2^31 has no positive twin: read as 0,
    // which expected_floats refuses
    int vocab = v[5] == INT32_MIN ? 0 : v[5] < 0 ? -v[5] : v[5];
    *h = (Header){v[0], v[1], v[2], v[3], v[4], vocab, v[6], v[5] > 0};
}

static int read_header(const unsigned char *p, size_t size, Header *h) {
    if (size < 28) return -1;
    parse_header(p, h);
    uint64_t n = expected_floats(h);
    return n && 28 + 4 * n == size ? 0 : -1;
}

int llama2c_explain(const char *path, Err *e) {
    unsigned char hd[28];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t got = fread(hd, 1, sizeof hd, f);
    struct stat st;
    bool ok = !fstat(fileno(f), &st);
    fclose(f);
    if (!ok) return 0;
    if (got < sizeof hd)
        return err_set(e, "'%s': %zu bytes, too short for a llama2.c checkpoint's header (28 bytes)", path, got);
    Header h;
    parse_header(hd, &h);
    uint64_t n = expected_floats(&h), want = 28 + 4 * n, size = (uint64_t)st.st_size;
    if (!n || want == size) return 0;
    char what[160];
    snprintf(what, sizeof what, "dim %d, %d layers, %d heads, vocabulary %d, context %d", h.dim, h.n_layers, h.n_heads,
             h.vocab, h.seq_len);
    if (size < want)
        return err_set(e, "'%s': a llama2.c checkpoint cut short: its header (%s) needs %llu bytes, the file has %llu "
                          "(an interrupted download or copy?)",
                       path, what, (unsigned long long)want, (unsigned long long)size);
    return err_set(e, "'%s': %llu bytes longer than the llama2.c checkpoint its header describes (%s: %llu bytes); not read",
                   path, (unsigned long long)(size - want), what, (unsigned long long)want);
}

bool llama2c_probe(const char *path) {
    unsigned char hd[28];
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t got = fread(hd, 1, sizeof hd, f);
    struct stat st;
    bool ok = got == sizeof hd && !fstat(fileno(f), &st);
    fclose(f);
    Header h;
    return ok && !read_header(hd, (size_t)st.st_size, &h);
}

// Registers one tensor [rows, cols] (cols 0: a vector of rows) at *at, advancing it.
static void add(L2File *f, const char *fmt, int layer, int64_t rows, int64_t cols, const float **at) {
    WTensor *t = &f->t[f->n++];
    char name[96];
    snprintf(name, sizeof name, fmt, layer);
    t->name = xstrdup(name);
    t->t = (Tensor){.dt = DT_F32, .ndim = cols ? 2 : 1, .shape = {rows, cols}, .n = rows * (cols ? cols : 1), .data = *at};
    t->nbytes = (size_t)t->t.n * 4;
    memcpy(t->dtype, "F32", 4);
    t->supported = true;
    *at += t->t.n;
}

int llama2c_load(Model *m, const char *path, const TensorMap **map, Err *e) {
    size_t size;
    int fd = fs_open_regular(path, &size, e);
    if (fd < 0) return -1;
    if (size < 28) {
        close(fd);
        return err_set(e, "'%s': not a llama2.c checkpoint", path);
    }
    L2File *f = xcalloc(1, sizeof *f);
    f->size = size;
    f->map = mmap(NULL, f->size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        l2_close(f);
        return err_set(e, "cannot map '%s': %s", path, strerror(errno));
    }
    Header h;
    if (read_header(f->map, f->size, &h)) {
        l2_close(f);
        return err_set(e, "'%s': not a llama2.c checkpoint (its header does not match its size)", path);
    }
    int L = h.n_layers, d = h.dim, hs = d / h.n_heads, kv = hs * h.n_kv_heads;
    f->t = xcalloc((size_t)(11 * L + 3), sizeof *f->t);
    const float *at = (const float *)((const char *)f->map + 28);
    add(f, "tok_embeddings.weight", 0, h.vocab, d, &at);
    static const struct {
        const char *fmt;
        int kind; // 0: norm [d]; 1: [d, d]; 2: [kv, d]; 3: [hidden, d]; 4: [d, hidden]
    } arrays[] = {{"layers.%d.attention_norm.weight", 0}, {"layers.%d.attention.wq.weight", 1},
                  {"layers.%d.attention.wk.weight", 2},   {"layers.%d.attention.wv.weight", 2},
                  {"layers.%d.attention.wo.weight", 1},   {"layers.%d.ffn_norm.weight", 0},
                  {"layers.%d.feed_forward.w1.weight", 3}, {"layers.%d.feed_forward.w2.weight", 4},
                  {"layers.%d.feed_forward.w3.weight", 3}};
    for (size_t a = 0; a < sizeof arrays / sizeof *arrays; a++)
        for (int l = 0; l < L; l++) {
            int k = arrays[a].kind;
            int64_t rows = k == 0 ? d : k == 1 ? d : k == 2 ? kv : k == 3 ? h.hidden : d;
            int64_t cols = k == 0 ? 0 : k == 4 ? h.hidden : d;
            add(f, arrays[a].fmt, l, rows, cols, &at);
        }
    add(f, "norm.weight", 0, d, 0, &at);
    at += (size_t)h.seq_len * hs; // freq_cis_real and freq_cis_imag
    if (!h.shared) add(f, "output.weight", 0, h.vocab, d, &at);
    int file = wsrc_add_file(m->src, path, (int64_t)f->size, f, l2_close, e);
    for (int i = 0; i < f->n; i++)
        if (wsrc_add_tensor(m->src, file, &f->t[i], e)) return -1;

    m->family = &family_llama;
    config_init(&m->cfg, &family_llama);
    ModelConfig *c = &m->cfg;
    c->n_layer = L;
    c->n_head = h.n_heads;
    c->n_kv_head = h.n_kv_heads;
    c->head_dim = hs;
    c->n_embd = d;
    c->n_ff = h.hidden;
    c->n_ctx = h.seq_len;
    c->n_vocab = h.vocab;
    c->a.norm_eps = 1e-5f;
    c->a.rope_theta = 10000.0f;
    c->a.rope_style = ROPE_PAIRS;
    c->a.tied = h.shared;
    *map = &llama2c_names;
    return config_check(c, path, e);
}

char *llama2c_tokenizer_beside(const char *path, int n_vocab) {
    char *dir = fs_dirname(path), name[32];
    snprintf(name, sizeof name, "tok%d.bin", n_vocab);
    const char *names[] = {"tokenizer.bin", name};
    char *found = NULL;
    for (int i = 0; i < 2 && !found; i++) {
        char *p = fs_join(dir, names[i]);
        if (fs_is_file(p)) found = p;
        else free(p);
    }
    free(dir);
    return found;
}
