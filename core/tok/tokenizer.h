// tokenizer.h - text <-> token ids for every model family qkv reads.
//
// A Tokenizer is immutable after loading and safe to share between threads.
// Today: GPT-2 byte-level BPE (vocab.json + merges.txt, or tokenizer.json with a BPE
// model and the ByteLevel pre-tokenizer). Later: BERT WordPiece, SentencePiece BPE.
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/vec.h"

typedef struct Tokenizer Tokenizer;

typedef enum { TOK_KIND_BYTE_BPE = 1, TOK_KIND_WORDPIECE } TokKind;

// Flags for tok_encode.
enum {
    TOK_ADD_SPECIAL = 1,   // add BOS, or [CLS] ... [SEP], as the model does (GPT-2 adds nothing)
    TOK_PARSE_SPECIAL = 2, // recognise special-token text such as "<|endoftext|>" as one id
};

// Load a tokenizer from a model directory (tokenizer.json, or vocab.json + merges.txt, or
// encoder.json + vocab.bpe) or from one of those files (for vocab.json, merges.txt must sit
// beside it).
Tokenizer *tok_load(const char *path, Err *e);
struct Gguf;
// A tokenizer from GGUF metadata (tokenizer.ggml.*): model gpt2 (byte-level BPE, the
// pre-tokenizer named by tokenizer.ggml.pre: gpt-2, llama-bpe, qwen2, smollm, ...), llama
// (SentencePiece-style BPE with scores and byte fallback) or bert (WordPiece; BertTokenizer's
// normalizer and pre-tokenizer but where qkv.tokenizer.* keys say otherwise, as tok_write_gguf
// writes them); control tokens and unknown tokens special, user-defined ones added, unused ones
// never output by encoding (as sentencepiece: one a merge makes is split back into its two
// parts); BOS/EOS (BERT: CLS/SEP) and add_bos/add_eos as the file says; the unknown and padding
// ids it names are kept for tok_write_gguf.
Tokenizer *tok_from_gguf(const struct Gguf *g, Err *e);
struct GgufW;
// Write t as the GGUF metadata tok_from_gguf reads (tokenizer.ggml.model, .pre, .tokens,
// .token_type, .merges or .scores, the special-token ids (the unknown and padding ones too),
// add_bos/add_eos; qkv.tokenizer.* for a WordPiece normalizer or pre-tokenizer other than
// BertTokenizer's defaults) and its chat template as tokenizer.chat_template. 0, or -1 with e filled when
// GGUF cannot hold t (a pre-tokenizer llama.cpp has no name for).
int tok_write_gguf(const Tokenizer *t, struct GgufW *w, Err *e);
// Write t alone as a GGUF file at path (tok_write_gguf's metadata, no tensors): the tokenizer
// of a model that came from a GGUF, beside the HF files of a checkpoint made from it (a model
// directory's tokenizer.gguf is read when it has no other tokenizer file). 0, or -1 with e filled.
int tok_save_gguf(const Tokenizer *t, const char *path, Err *e);
// Load GPT-2 byte-level BPE from an explicit vocabulary (vocab.json, encoder.json) and merges
// file (merges.txt, vocab.bpe; an optional first "#version" line) of any names.
Tokenizer *tok_load_vocab_merges(const char *vocab_path, const char *merges_path, Err *e);
// A byte-level BPE tokenizer with the 256 byte tokens (ids 0..255 in GPT-2's
// byte-to-unicode order) plus "<|endoftext|>" (id 256) and no merges.
Tokenizer *tok_bytes_new(void);
void tok_free(Tokenizer *t);

TokKind tok_kind(const Tokenizer *t);
int tok_vocab_size(const Tokenizer *t);
// The tokenizer's file (a vocab.txt) ends inside a line: with fewer tokens than the model's
// vocabulary, a file cut short.
bool tok_unterminated(const Tokenizer *t);
int tok_bos(const Tokenizer *t); // -1 when the tokenizer has none
int tok_eos(const Tokenizer *t); // -1 when the tokenizer has none
// Whether generating id ends the text: the end-of-text token, or for a llama2.c tokenizer the
// beginning-of-text one too (its models never write </s>: the next story's <s> ends one).
bool tok_ends_text(const Tokenizer *t, int id);
// Whether t is SentencePiece-style with a space put before a text (Llama 2, Mistral, llama2.c):
// decoded from the text's start, its first piece's space is that one, not the text's.
bool tok_space_prefixed(const Tokenizer *t);
int tok_mask(const Tokenizer *t); // the masked-LM mask token ([MASK], <mask>), -1 when none
// The tokens TOK_ADD_SPECIAL puts before and after a text (BOS; [CLS] and [SEP]), -1 when none.
int tok_add_first(const Tokenizer *t);
int tok_add_last(const Tokenizer *t);

// Append the ids of len bytes of text to out. Ill-formed UTF-8 is read as U+FFFD per
// maximal subpart (as the reference implementations see it after decoding). Returns the
// number of ids appended, or -1 with e filled (e.g. a piece missing from the vocabulary).
int tok_encode(const Tokenizer *t, const char *text, size_t len, unsigned flags, IntVec *out, Err *e);

// The bytes a token stands for (special tokens: their text); NULL for an id out of range.
const char *tok_piece(const Tokenizer *t, int id, size_t *len);
// Append the bytes of ids to out (the exact inverse of tok_encode for byte-level BPE).
void tok_decode(const Tokenizer *t, const int *ids, int n, Buf *out);
// Append a token as readable text: its bytes when they are valid UTF-8, bytes that are
// not shown as <0xNN>.
void tok_piece_display(const Tokenizer *t, int id, Buf *out);
// The id of a token given by its bytes, or -1.
int tok_find(const Tokenizer *t, const char *bytes, size_t len);
// True when id is a special (added/control) token.
bool tok_is_special(const Tokenizer *t, int id);

// GPT-2's byte-to-unicode map: writes the UTF-8 of the character standing for byte b
// into out (at least 4 bytes) and returns its length.
int tok_gpt2_byte_char(unsigned char b, char *out);
// The end of the piece that GPT-2's pre-tokenizer regex cuts at s[i] (i < n) of well-formed
// UTF-8 s[n].
size_t tok_gpt2_piece_end(const char *s, size_t n, size_t i);
