// json.h - a strict JSON parser producing a read-only tree (RFC 8259).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ } JsonType;

typedef struct Json Json;
struct Json {
    JsonType type;
    bool b;
    double num;
    char *str;     // JSON_STR: decoded UTF-8, NUL-terminated (may hold NUL: use len)
    size_t len;    // JSON_STR: byte length; JSON_ARR/OBJ: number of items
    Json *items;   // JSON_ARR/OBJ: the items
    char **keys;   // JSON_OBJ: key of each item
    size_t *klens; // JSON_OBJ: byte length of each key
};

// Parse n bytes of JSON text. Returns a tree to free with json_free, or NULL with e filled
// ("line L column C: ..."). Nesting deeper than 512 levels is rejected.
Json *json_parse(const char *text, size_t n, Err *e);
// Parse a whole file. A UTF-8 byte-order mark at its start is no part of the text (Python's json
// refuses one, naming it; Windows editors write it): every JSON file qkv reads comes through here.
Json *json_parse_file(const char *path, Err *e);
// Ready line `line` (from 1) of a JSON Lines file, *s and *n, for json_parse, as every JSONL file
// qkv reads (task files, probe datasets) is read: the byte-order mark the first line may start
// with is dropped, and a line that is not UTF-8 is refused (read with U+FFFD in place of such
// bytes, the texts would not be the file's): -1 with e "not UTF-8 (byte K of the line): convert
// the file first (iconv)", K counted from line0, the line's first byte. 0 when it is ready.
int json_line_ready(const char *line0, const char **s, size_t *n, int line, Err *e);
void json_free(Json *j);

// Member of an object by key, or NULL (also when j is NULL or not an object).
const Json *json_get(const Json *j, const char *key);
// Item i of an array, or NULL.
const Json *json_at(const Json *j, size_t i);
// Typed accessors with a default when the value is missing or of another type.
double json_num_or(const Json *j, const char *key, double dflt);
const char *json_str_or(const Json *j, const char *key, const char *dflt);
bool json_bool_or(const Json *j, const char *key, bool dflt);
// True when j is a number that is an integer in [lo, hi]; stores it in *out.
bool json_int_in(const Json *j, long long lo, long long hi, long long *out);
