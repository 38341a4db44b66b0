/* The JSON text of run records (see bd/run.h): a builder that appends
 * values in order. */
#include "bd/run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bd_json_init(bd_json *j)
{
    memset(j, 0, sizeof *j);
}

void bd_json_free(bd_json *j)
{
    free(j->text);
    bd_json_init(j);
}

static void put(bd_json *j, const char *s, size_t n)
{
    if (j->status != BD_OK)
        return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (j->len + n + 1 > cap)
            cap *= 2;
        char *grown = realloc(j->text, cap);
        if (!grown) {
            j->status = bd_fail(BD_E_NOMEM, "json: cannot grow to %zu bytes",
                                cap);
            return;
        }
        j->text = grown;
        j->cap = cap;
    }
    memcpy(j->text + j->len, s, n);
    j->len += n;
    j->text[j->len] = '\0';
}

static void put_str(bd_json *j, const char *s) { put(j, s, strlen(s)); }

/* A JSON string literal with ", \ and control characters escaped. */
static void put_quoted(bd_json *j, const char *s)
{
    put(j, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*c;
            put(j, esc, 2);
        } else if (*c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *c);
            put_str(j, esc);
        } else {
            put(j, (const char *)c, 1);
        }
    }
    put(j, "\"", 1);
}

/* The separator and "key": that precede a value. */
static void begin_value(bd_json *j, const char *key)
{
    if (j->need_comma)
        put(j, ",", 1);
    if (key) {
        put_quoted(j, key);
        put(j, ":", 1);
    }
    j->need_comma = true;
}

void bd_json_begin_object(bd_json *j, const char *key)
{
    begin_value(j, key);
    put(j, "{", 1);
    j->need_comma = false;
}

void bd_json_end_object(bd_json *j)
{
    put(j, "}", 1);
    j->need_comma = true;
}

void bd_json_begin_array(bd_json *j, const char *key)
{
    begin_value(j, key);
    put(j, "[", 1);
    j->need_comma = false;
}

void bd_json_end_array(bd_json *j)
{
    put(j, "]", 1);
    j->need_comma = true;
}

/* Integers exactly; other numbers in the shortest of %.15g and %.17g that
 * reads back as the same double. */
void bd_json_number(bd_json *j, const char *key, double v)
{
    begin_value(j, key);
    char buf[32];
    if (!isfinite(v))
        snprintf(buf, sizeof buf, "null");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        snprintf(buf, sizeof buf, "%.0f", v);
    else {
        snprintf(buf, sizeof buf, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, sizeof buf, "%.17g", v);
    }
    put_str(j, buf);
}

void bd_json_string(bd_json *j, const char *key, const char *s)
{
    begin_value(j, key);
    put_quoted(j, s);
}

void bd_json_bool(bd_json *j, const char *key, bool v)
{
    begin_value(j, key);
    put_str(j, v ? "true" : "false");
}

