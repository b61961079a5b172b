// chatturn.c - the user's turn of a rendered chat prompt (chatturn.h).
#define _GNU_SOURCE // memmem
#include "base/chatturn.h"

#include <string.h>

// The last occurrence of the NUL-terminated needle in p[0..n), or NULL.
static const char *last_of(const char *p, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = n >= k ? n - k + 1 : 0; i-- > 0;)
        if (!memcmp(p + i, needle, k)) return p + i;
    return NULL;
}

// The first occurrence of needle in [a, end), or end.
static const char *first_of(const char *a, const char *end, const char *needle) {
    const char *q = memmem(a, (size_t)(end - a), needle, strlen(needle));
    return q ? q : end;
}

bool chat_user_text(const char *p, size_t n, size_t *off, size_t *len) {
    static const struct {
        const char *open, *close;
    } turns[] = {
        {"<|im_start|>user\n", "<|im_end|>"},                             // chatml
        {"<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"}, // llama3
        {"[INST]", "[/INST]"},                                           // llama2, mistral
    };
    const char *end = p + n;
    for (size_t i = 0; i < sizeof turns / sizeof *turns; i++) {
        const char *a = last_of(p, n, turns[i].open);
        if (!a) continue;
        a += strlen(turns[i].open);
        const char *b = first_of(a, end, turns[i].close);
        const char *sys = first_of(a, b, "<</SYS>>"); // llama2: the system message leads the first turn
        if (sys < b) a = sys + strlen("<</SYS>>");
        while (a < b && (*a == ' ' || *a == '\n')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\n')) b--;
        *off = (size_t)(a - p), *len = (size_t)(b - a);
        return true;
    }
    return false;
}
