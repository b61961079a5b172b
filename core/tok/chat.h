// chat.h - a model's chat template: the Jinja text that turns a conversation into the prompt an
// instruct model was trained on (tokenizer_config.json's "chat_template", chat_template.jinja,
// or GGUF's tokenizer.chat_template).
//
// qkv does not run Jinja. It recognises the common instruct formats in the template text and
// renders a conversation byte for byte as transformers' apply_chat_template(messages,
// tokenize=False, add_generation_prompt=...) does with that same template:
//   chatml   <|im_start|>role\n...<|im_end|>\n (SmolLM2, Qwen2, Qwen2.5, OpenHermes; a default
//            system message when the template has one and none is given)
//   llama2   [INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] (Llama 2 chat; a default system message)
//   llama3   <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> (Llama 3; 3.1-3.3's system
//            block with "Cutting Knowledge Date" and today's or a fixed date)
//   mistral  [INST] ... [/INST] (Mistral v0.1-v0.3, Mixtral, Nemo, v7's [SYSTEM_PROMPT]; the system
//            message in the first or the last [INST], as the template puts it)
// The pieces of text (markers, spaces, new lines, trimming, BOS/EOS) come from the template's own
// expressions; the family fixes only the order. Anything else is refused with a message naming it.
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"
#include "tok/tokenizer.h"

// One message of a conversation: role "system", "user" or "assistant", and its text (UTF-8).
typedef struct ChatMsg {
    const char *role;
    const char *text;
    size_t len;
} ChatMsg;

typedef enum { TOK_CHAT_NONE = 0, TOK_CHAT_CHATML, TOK_CHAT_LLAMA2, TOK_CHAT_LLAMA3, TOK_CHAT_MISTRAL } TokChatKind;

// The chat format of t's template; TOK_CHAT_NONE when t has none or qkv does not recognise it
// (tok_chat_render then says which).
TokChatKind tok_chat_kind(const Tokenizer *t);
// "chatml", "llama2", "llama3", "mistral" or "none".
const char *tok_chat_kind_name(TokChatKind k);
// The template text as the model gives it (len bytes), or NULL when it has none.
const char *tok_chat_template(const Tokenizer *t, size_t *len);
// Render msgs[0..n) (an optional system message first, then user and assistant in turn, from a
// user message on) with t's template, and with gen_prompt the start of the assistant's turn, into
// out (appended). The text holds special-token text ("<|im_start|>", "<s>", ...): encode it with
// TOK_PARSE_SPECIAL and without TOK_ADD_SPECIAL (the template puts BOS where the model wants it),
// as transformers does. Returns 0, or -1 with e filled (no template, an unrecognised one, a
// conversation of another shape, a system message the template has no place for).
int tok_chat_render(const Tokenizer *t, const ChatMsg *msgs, int n, bool gen_prompt, Buf *out, Err *e);
// (The last user message of a prompt rendered so: chat_user_text, base/chatturn.h.)
// Give t the chat template tmpl (len bytes; from GGUF metadata, say) with the texts of its BOS
// and EOS tokens (NULL: none), replacing any it had; where names the source in messages. Returns
// the kind recognised (TOK_CHAT_NONE: tok_chat_render will say why).
TokChatKind tok_chat_set_template(Tokenizer *t, const char *tmpl, size_t len, const char *bos, const char *eos,
                                  const char *where);
