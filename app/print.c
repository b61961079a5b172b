// print.c - printing a command's result as headless mode, the REPL and the TUI's log show it:
// a JSON line, the command's human text, or a generic rendering of its JSON.
#include "print.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/json.h"

// Prints a JSON value compactly for the generic human form.
static void print_value(FILE *f, const Json *v, int depth) {
    switch (v->type) {
    case JSON_NULL: fputs("null", f); break;
    case JSON_BOOL: fputs(v->b ? "true" : "false", f); break;
    case JSON_NUM: fprintf(f, "%.6g", v->num); break;
    case JSON_STR: fwrite(v->str, 1, v->len, f); break;
    case JSON_ARR:
        fputc('[', f);
        for (size_t i = 0; i < v->len; i++) {
            if (i) fputs(", ", f);
            if (i >= 64 && depth > 0) {
                fprintf(f, "... (%zu)", v->len);
                break;
            }
            print_value(f, &v->items[i], depth + 1);
        }
        fputc(']', f);
        break;
    case JSON_OBJ:
        fputc('{', f);
        for (size_t i = 0; i < v->len; i++) {
            fprintf(f, "%s%s: ", i ? ", " : "", v->keys[i]);
            print_value(f, &v->items[i], depth + 1);
        }
        fputc('}', f);
        break;
    }
}

// Write s (n bytes) to f; on a terminal as valid UTF-8 with its control characters shown (^[
// ..., and the C1 controls U+0080-U+009F, which a UTF-8 terminal may take as CSI and the like,
// as <U+009B>) instead of letting them act: model output, and names read from files in error
// messages (a GGUF's architecture "\e[2J" cleared the screen as qkv said it was unknown).
static void put_safe(FILE *f, const char *s, size_t n) {
    if (!isatty(fileno(f))) {
        fwrite(s, 1, n, f);
        return;
    }
    Buf safe = {0};
    buf_put_utf8(&safe, s, n);
    for (size_t i = 0; i < safe.len; i++) {
        unsigned char ch = (unsigned char)safe.data[i];
        if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f) {
            fputc('^', f);
            fputc(ch == 0x7f ? '?' : ch + '@', f);
        } else if (ch == 0xC2 && i + 1 < safe.len && (unsigned char)safe.data[i + 1] < 0xA0) {
            fprintf(f, "<U+%04X>", (unsigned char)safe.data[++i]); // valid UTF-8: 0x80-0x9F
        } else {
            fputc(ch, f);
        }
    }
    buf_free(&safe);
}

void print_result(const Out *o, int rc, bool json, FILE *out, FILE *err) {
    if (rc) {
        // names read from a file (a GGUF key, a tensor's name) may be any bytes: valid UTF-8 on
        // the terminal, as in the JSON
        Buf safe = {0};
        if (o->err.data) buf_put_utf8(&safe, o->err.data, o->err.len);
        fputs("error: ", err);
        put_safe(err, safe.data ? safe.data : "failed", safe.data ? safe.len : 6);
        fputc('\n', err);
        buf_free(&safe);
        if (json) {
            Buf b = {0};
            JsonW w;
            jw_init(&w, &b);
            jw_obj(&w);
            jw_kstr(&w, "error", o->err.data ? o->err.data : "failed");
            jw_obj_end(&w);
            // a partial result's fields follow the error in the same object
            bool fields = o->partial && o->json.len > 2 && o->json.data[0] == '{' && o->json.data[1] != '}';
            if (fields) fprintf(out, "%.*s,%s\n", (int)(b.len - 1), b.data, o->json.data + 1);
            else fprintf(out, "%s\n", b.data);
            buf_free(&b);
        }
        fflush(out);
        return;
    }
    if (json) {
        fprintf(out, "%s\n", o->json.data);
    } else if (o->text.len) {
        put_safe(out, o->text.data, o->text.len);
    } else if (!o->silent) {
        Json *j = json_parse(o->json.data, o->json.len, NULL);
        if (j) {
            for (size_t i = 0; i < j->len; i++) {
                fprintf(out, "%s: ", j->keys[i]);
                print_value(out, &j->items[i], 0);
                fputc('\n', out);
            }
            json_free(j);
        }
    }
    fflush(out);
}

