// label.h - token labels for the views: whitespace and control characters made visible,
// display width counted as the terminal counts it, truncation to a width with an ellipsis.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define LABEL_GLYPH_MAX 16 // bytes of one cell's glyph cluster, NUL included

// Columns code point cp occupies: 0 (combining, zero-width), 1, or 2 (wide: CJK, emoji);
// -1 for control characters.
int label_cpwidth(uint32_t cp);

// Append to out the visible form of the n bytes at s. UTF-8 mode: ' ' -> '·', '\n' -> '↵',
// '\t' -> '→', other C0 controls -> "^X", DEL -> "^?", C1 and format characters -> "<U+XXXX>",
// no-break space -> '⍽', invalid bytes -> "<0xNN>", a leading combining mark gets a '◌' base.
// ASCII mode: ' ' -> '_', '\n' -> "\n" (backslash n), '\t' -> "\t", controls -> "^X",
// invalid bytes -> "<0xNN>", other non-ASCII characters -> '?'.
void label_visible(Buf *out, const char *s, size_t n, bool utf8);

// Whether the character at byte at of text s (n bytes of UTF-8) is a zero-width mark that joins
// the character before it, as label_visible shows the text whole (UTF-8 mode): a combining mark
// after a printable character or after another such mark; not one at the start of s or after a
// space, a control, an escape or an invalid byte, which label_visible gives a '◌' base.
bool label_joins(const char *s, size_t n, size_t at);

// Display width in columns of visible text s (n bytes of valid UTF-8 without controls).
int label_width(const char *s, size_t n);

// Next glyph cluster of visible text s (n bytes) at *pos: one spacing character with the
// zero-width characters after it. Copies the cluster into glyph (NUL-terminated, trailing
// marks dropped if they do not fit), advances *pos, returns its width (1 or 2), or 0 at the end.
int label_next(const char *s, size_t n, size_t *pos, char glyph[LABEL_GLYPH_MAX]);

// Write into out (cap bytes, NUL-terminated) the visible form of token s (n bytes) in at most
// width columns; when it is wider, keep its start and end it with '…' (UTF-8) or '~' (ASCII);
// with one column, show the first character. Returns the columns used. cap >= 4 * width + 16 never cuts.
int label_format(char *out, size_t cap, const char *s, size_t n, int width, bool utf8);
// The same in UTF-8 for a name or text rather than a token: its spaces stay spaces.
int label_format_text(char *out, size_t cap, const char *s, size_t n, int width);
// Append visible text s (n bytes, as label_width takes it) to out in at most width columns: all
// of it when it fits, else its start and its end around '…' (a message's reason is at its end).
// Returns the columns used.
int label_elide_middle(Buf *out, const char *s, size_t n, int width);
// Append message s (n bytes of visible text) to out, made to fit in width columns where it can:
// its longest 'quoted' part, else its longest word holding a '/' (a path), shortened in the
// middle (to no fewer than 8 columns), so that what follows it (the reason) stays in view.
// Returns the columns used (more than width when that was not enough).
int label_fit_message(Buf *out, const char *s, size_t n, int width);
