// chatturn.h - the user's turn in a prompt a chat template rendered, found by the markers of
// the common formats (ChatML, Llama 3, Llama 2 / Mistral's [INST]), whichever model rendered
// it: the tokenizer renders these prompts (tok/chat.h), the run log stores them whole, and the
// listings and exports (app/, db/) show what the person typed.
#pragma once
#include <stdbool.h>
#include <stddef.h>

// The last user message of p[0..n): *off and *len its bytes in p (without the markers, the
// [INST] block's system message and the spaces around it). False when p has no such message.
bool chat_user_text(const char *p, size_t n, size_t *off, size_t *len);
