// err.h - the error convention of core/: a status plus a caller-owned message.
#pragma once
#include <stdarg.h>
#include <stddef.h>

// A caller-owned error message. Functions that can fail on input take an Err *
// (which may be NULL) and return a negative status after filling it.
typedef struct Err {
    char msg[512];
} Err;

// Fill e (if non-NULL) with a printf-style message, which may quote e->msg; always returns -1.
int err_set(Err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Prefix the existing message in e with "what: " (for adding context on the way up); returns -1.
int err_prefix(Err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
