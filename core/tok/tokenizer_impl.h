// tokenizer_impl.h - what tokenizer.c (loading dispatch, shared functions) and the
// per-kind tokenizer files (bpe.c) share. Other modules use tokenizer.h only.
#pragma once
#include <stdint.h>

#include "base/json.h"
#include "base/strmap.h"
#include "tok/tokenizer.h"

// Largest vocabulary qkv accepts (ids are checked against it before anything is allocated).
enum { TOK_MAX_VOCAB = 1 << 24 };

// How an added token is found in text (tokenizer.json's lstrip, rstrip, single_word, normalized).
enum { ADD_LSTRIP = 1, ADD_RSTRIP = 2, ADD_SINGLE_WORD = 4, ADD_NORMALIZED = 8 };

struct Tokenizer {
    TokKind kind;
    int n_vocab;
    char *blob;             // the bytes of every token, each followed by a NUL
    uint32_t *off;          // [n_vocab + 1]: token i is blob[off[i], off[i+1] - 1)
    unsigned char *special; // [n_vocab]: 1 for special (control) tokens
    unsigned char *fallback; // [n_vocab] or NULL: 1 for byte-fallback tokens <0xNN>
    unsigned char *unused;  // [n_vocab] or NULL: 1 for tokens a GGUF types unused (5): never found
                            // by their text nor output by encoding (a merge that makes one is split
                            // back into what it was made of, as sentencepiece does), decoded as text
    int *added;             // ids of the added tokens recognised in text before pre-tokenizing
    int n_added;
    unsigned char added_first[256]; // 1 for each first byte of an added token's text
    unsigned char *added_flags; // [n_vocab] or NULL: ADD_* of each added token
    char **added_text;      // [n_added] or NULL: the text an added token is found by where it is not
                            // its bytes (NULL entries: its bytes): a byte-fallback piece's content
                            // "<0xNN>", and with split_normalized the normalized content of each
                            // ADD_NORMALIZED token
    bool split_normalized;  // ADD_NORMALIZED tokens are found after normalization, by the kind's
                            // encode (tok_next_added with normalized), not in the text itself
    int bos, eos;           // -1 when absent
    bool bos_ends;          // BOS also ends a text: llama2.c's models end a story with it (run.c stops there)
    int unk_named, pad_named; // the unknown and padding tokens a GGUF file names (-1: none), for
                              // writing back where the kind has no unknown token of its own
    int add_first, add_last; // added around a text with TOK_ADD_SPECIAL, -1 for none
    StrMap by_bytes;        // token bytes -> lowest id
    struct Bpe *bpe;        // TOK_KIND_BYTE_BPE: merges and byte ids (bpe.c)
    struct WordPiece *wp;   // TOK_KIND_WORDPIECE: options (wordpiece.c)
    struct TokChat *chat;   // the chat template (chat.c), or NULL
    bool unterminated;      // a vocab.txt whose last line has no newline (every writer ends each token
                            // with one): perhaps a file cut short, which the model's vocabulary tells
};

// A tokenizer of kind with nothing in it (bos, eos and the added ends at -1).
Tokenizer *tok_alloc(TokKind kind);
// A tokenizer whose pieces are the texts of a vocabulary object {text: id} (tokenizer.json)
// and its added_tokens (array or NULL), indexed. Ids must run from 0 without gaps.
Tokenizer *tok_from_vocab_json(const Json *vocab, const Json *added, TokKind kind, const char *path, Err *e);
// A tokenizer whose pieces are the lines of text (vocab.txt: id = line number), indexed.
Tokenizer *tok_from_lines(const char *text, size_t n, TokKind kind, const char *path, Err *e);
// The special tokens a tokenizer.json post_processor puts around a single text
// (TemplateProcessing, BertProcessing, or a Sequence holding one) into add_first/add_last, by the
// ids HF tokenizers takes (a template's special_tokens map). 0, or -1 with e naming a special
// token that is no token (path: the file, for the message).
int tok_read_template(Tokenizer *t, const Json *pp, const char *path, Err *e);
// Make id an added token (recognised in text before anything else; special: a control
// token). Call tok_index after.
void tok_mark_added(Tokenizer *t, int id, bool special);

// The ADD_* flags of an entry of tokenizer.json's added_tokens.
unsigned tok_added_flags_json(const Json *entry);
// Set flags (ADD_*) of added token id.
void tok_set_added_flags(Tokenizer *t, int id, unsigned flags);
// Added token k (an index into t->added) is found by the text s (n bytes), not by its bytes.
void tok_set_added_text(Tokenizer *t, int k, const char *s, size_t n);
// When t has ADD_NORMALIZED tokens, find them after normalization: their normalized text is
// form(t, text, len, out) (out cleared first) of their content; sets split_normalized.
void tok_set_added_forms(Tokenizer *t, void (*form)(const Tokenizer *t, const char *s, size_t n, Buf *out));
// The next added token in s[from..n) (n bytes of well-formed UTF-8) that flags allow: among
// those found in the text itself, or with normalized those found after normalization (s is then
// normalized text). True with its id and the span [*a, *b) it takes: its text, and with lstrip /
// rstrip the white space before it (not before floor) / after it. A single_word token next to a
// word character is text, as in HF tokenizers.
bool tok_next_added(const Tokenizer *t, const char *s, size_t n, size_t from, size_t floor, unsigned flags,
                    bool normalized, int *id, size_t *a, size_t *b);

// Build t->by_bytes from t's pieces (not the unused ones) and added_first from t->added's texts.
void tok_index(Tokenizer *t);
// Mark the tokens type[0..n_vocab) types TOKP_UNUSED (type NULL: none) in t->unused; true when
// there are any (t->unused is then set; call tok_index after).
bool tok_set_unused(Tokenizer *t, const int *type);
// Write s (len bytes) into out (cap >= 8) as a short quotable one-line text: control bytes
// become \xNN, long strings are cut with "...". Returns out.
const char *tok_quote(const char *s, size_t len, char *out, size_t cap);

// bpe.c: a tokenizer.json whose model.type is "BPE" (root is the parsed file).
Tokenizer *bpe_load_json(const Json *root, const char *path, Err *e);
// bpe.c: GPT-2 BPE from a parsed vocab.json and the path of its merges file.
Tokenizer *bpe_load_vocab(const Json *vocab, const char *vocab_path, const char *merges_path, Err *e);
// bpe.c: append the ids of s (n bytes of well-formed UTF-8 holding no added token found in the
// text itself; at_start: the text's first part; flags: tok_encode's) to out. Returns 0, or -1
// with e filled.
int bpe_encode(const Tokenizer *t, const char *s, size_t n, bool at_start, unsigned flags, IntVec *out, Err *e);
void bpe_free(struct Bpe *b);
// Whether t is SentencePiece-style and puts a space before a text (its first piece carries it).
bool bpe_space_prefixed(const Tokenizer *t);
// bpe.c: llama2.c's tokenizer.bin (pieces with scores), as SentencePiece-style BPE.
Tokenizer *bpe_load_llama2c(const char *path, Err *e);

// chat.c: read what tokenizer_config.json beside the tokenizer in dir says: bos_token and
// eos_token (they set t->bos and t->eos when the vocabulary has them) and the chat template
// (chat_template.jinja, or tokenizer_config.json's chat_template) into t->chat; a template
// qkv does not recognise, or a template file it cannot read, is kept with the reason. Returns 0,
// or -1 with e when tokenizer_config.json is there but cannot be read or is not JSON.
int tok_config_load(Tokenizer *t, const char *dir, Err *e);
void tok_chat_free(struct TokChat *c);
// How llama.cpp's GGUF metadata types each piece (tokenizer.ggml.token_type).
enum { TOKP_NORMAL = 1, TOKP_UNKNOWN, TOKP_CONTROL, TOKP_USER, TOKP_UNUSED, TOKP_BYTE };

// A BPE vocabulary given piece by piece (GGUF metadata). Control pieces become special added
// tokens, user-defined ones plain added tokens.
typedef struct BpePieces {
    const char *path;        // for messages
    int n;
    const char *const *text; // [n] pieces as the file spells them (byte-level characters, or U+2581 and <0xNN>)
    const size_t *len;
    const int *type;         // [n] TOKP_*, or NULL (all normal)
    const float *score;      // SentencePiece-style: [n] scores, the merges follow from them; NULL: byte-level
    const char *const *merge; // byte-level: n_merges "left right", best first
    const size_t *merge_len;
    size_t n_merges;
    const char *pre;         // byte-level: llama.cpp's pre-tokenizer name (NULL: GPT-2's)
    int unk;                 // SentencePiece-style: the unknown token, or -1
    bool no_space_prefix;    // SentencePiece-style: tokenizer.ggml.add_space_prefix false (no U+2581 before the text)
    bool prepend_every;      // SentencePiece-style: PREPEND_SCHEME_KEY "always" (U+2581 before every part)
    bool prepend_on_space;   // SentencePiece-style: PREPEND_IF_NONE_KEY false (before a part starting with a space too)
} BpePieces;
// qkv's keys for how a SentencePiece-style vocabulary puts U+2581 before its text, which
// tokenizer.ggml.add_space_prefix does not say. Absent, the text's first part gets one unless it
// starts with a space (HF's Metaspace with prepend_scheme "first", as transformers reads a GGUF);
// "always" gives every part between added tokens one, and prepend_if_none false gives one to a
// part that starts with a space too (a Prepend normalizer; SentencePiece's add_dummy_prefix and
// llama2.c's tokenizer for the first part).
#define PREPEND_SCHEME_KEY "qkv.tokenizer.prepend_scheme"
#define PREPEND_IF_NONE_KEY "qkv.tokenizer.prepend_if_none"
// bpe.c: BPE from pieces (bos, eos and the added ends left at -1).
Tokenizer *bpe_load_pieces(const BpePieces *p, Err *e);
struct GgufW;
// bpe.c: t as the GGUF keys bpe_load_pieces reads back: tokenizer.ggml.model (gpt2 or llama),
// .pre (byte-level), .tokens, .merges (byte-level, best first) or .scores (SentencePiece-style:
// a merged piece scores minus the rank of its best merge), .token_type, .unknown_token_id. 0, or
// -1 with e filled
// when GGUF has no name for t's pre-tokenizer.
int bpe_write_gguf(const Tokenizer *t, struct GgufW *w, Err *e);

// wordpiece.c: BERT's WordPiece.
Tokenizer *wordpiece_load_json(const Json *root, const char *path, Err *e);
Tokenizer *wordpiece_load_vocab_txt(const char *path, Err *e);
// The lines of text (n bytes) as a vocabulary, with BertTokenizer's options from cfg (a parsed
// tokenizer_config.json, or NULL for its defaults).
Tokenizer *wordpiece_from_lines(const char *text, size_t n, const Json *cfg, const char *path, Err *e);
// Make id the unknown token.
void wordpiece_set_unk(Tokenizer *t, int id);
// The unknown token, or -1.
int wordpiece_unk(const Tokenizer *t);
// How a WordPiece tokenizer reads text before the pieces: BertNormalizer's options (all false:
// no normalizer) and whether BertPreTokenizer splits it into words (false: a tokenizer.json whose
// pre_tokenizer is null, the text taken whole).
typedef struct WordPieceOpts {
    bool clean_text, chinese, strip_accents, lowercase, pre_split;
    int max_chars;   // a longer word is the unknown token (max_input_chars_per_word)
    char prefix[16]; // a continuation's spelling (continuing_subword_prefix)
} WordPieceOpts;
WordPieceOpts wordpiece_opts(const Tokenizer *t);
// Set t's options (after its added tokens and their flags: the normalized ones are found after
// normalization, as wordpiece_load_json finds them).
void wordpiece_set_opts(Tokenizer *t, const WordPieceOpts *o);
int wordpiece_encode(const Tokenizer *t, const char *s, size_t n, unsigned flags, IntVec *out, Err *e);
void wordpiece_decode(const Tokenizer *t, const int *ids, int n, Buf *out);
void wordpiece_free(struct WordPiece *w);
