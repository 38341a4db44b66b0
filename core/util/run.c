/* Run directories and the JSON text they hold (see bd/run.h). Only the
 * writer (bd_dist_is_writer: rank 0) creates or writes them: on the other
 * ranks a run knows its directory and every write succeeds doing nothing. */
#include "bd/run.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bd/dist.h"

#define NAME_MAX_LEN 128

/* ---- JSON ---------------------------------------------------------------- */

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

/* ---- run directory ------------------------------------------------------- */

struct bd_run {
    char  dir[4096];
    FILE *metrics; /* NULL on a rank that does not write */
};

static bd_status check_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN)
        return bd_fail(BD_E_ARG, "run: name '%s' has %zu characters, expected"
                       " 1 to %d", name, n, NAME_MAX_LEN);
    if (name[0] == '.')
        return bd_fail(BD_E_ARG, "run: name '%s' starts with '.', expected a"
                       " letter, digit, '_' or '-'", name);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return bd_fail(BD_E_ARG, "run: name '%s' has '%c', expected"
                           " A-Z, a-z, 0-9, '_', '-' or '.'", name, c);
    }
    return BD_OK;
}

/* mkdir -p: every prefix of path that ends before a '/', then path. */
static bd_status make_dirs(char *path)
{
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        int rc = mkdir(path, 0777);
        int err = errno;
        *p = saved;
        if (rc != 0 && err != EEXIST)
            return bd_fail(BD_E_IO, "run: cannot create directory '%.*s': %s",
                           (int)(p - path), path, strerror(err));
        if (saved == '\0')
            return BD_OK;
    }
}

bd_status bd_run_open(const char *root, const char *name, bool resume,
                      bd_run **out)
{
    *out = NULL;
    BD_TRY(check_name(name));
    if (!root)
        root = "runs";
    bd_run *r = calloc(1, sizeof *r);
    if (!r)
        return bd_fail(BD_E_NOMEM, "run: out of memory");
    bd_status s = BD_OK;
    int n = snprintf(r->dir, sizeof r->dir, "%s/%s", root, name);
    if (n < 0 || (size_t)n >= sizeof r->dir)
        s = bd_fail(BD_E_ARG, "run: directory '%s/%s' is too long", root, name);
    bool writes = bd_dist_is_writer();
    if (s == BD_OK && writes)
        s = make_dirs(r->dir);
    char path[sizeof r->dir + 32];
    if (s == BD_OK && writes)
        s = bd_run_file(r, "metrics.jsonl", path, sizeof path);
    if (s == BD_OK && writes && !(r->metrics = fopen(path, resume ? "a" : "w")))
        s = bd_fail(BD_E_IO, "run: cannot open '%s': %s", path,
                    strerror(errno));
    if (s != BD_OK) {
        bd_run_close(r);
        return s;
    }
    *out = r;
    return BD_OK;
}

void bd_run_close(bd_run *r)
{
    if (!r)
        return;
    if (r->metrics)
        fclose(r->metrics);
    free(r);
}

const char *bd_run_dir(const bd_run *r) { return r->dir; }

bd_status bd_run_file(const bd_run *r, const char *file, char *path,
                      size_t len)
{
    int n = snprintf(path, len, "%s/%s", r->dir, file);
    if (n < 0 || (size_t)n >= len)
        return bd_fail(BD_E_ARG, "run: path '%s/%s' is longer than %zu bytes",
                       r->dir, file, len - 1);
    return BD_OK;
}

bd_status bd_run_write_json(bd_run *r, const char *file, const bd_json *doc)
{
    BD_TRY(doc->status);
    if (!r->metrics)
        return BD_OK;
    char path[sizeof r->dir + 256];
    BD_TRY(bd_run_file(r, file, path, sizeof path));
    char *text = malloc(doc->len + 1);
    if (!text)
        return bd_fail(BD_E_NOMEM, "run: out of memory writing '%s'", path);
    if (doc->len)
        memcpy(text, doc->text, doc->len);
    text[doc->len] = '\n';
    bd_status s = bd_write_file_atomic(path, text, doc->len + 1);
    free(text);
    return s;
}

bd_status bd_run_log(bd_run *r, const bd_json *event)
{
    BD_TRY(event->status);
    if (event->len == 0 || event->text[0] != '{')
        return bd_fail(BD_E_ARG, "run: a metrics event must be a JSON object,"
                       " got '%.40s'", event->text ? event->text : "");
    if (!r->metrics)
        return BD_OK;
    if (fwrite(event->text, 1, event->len, r->metrics) != event->len ||
        fputc('\n', r->metrics) == EOF || fflush(r->metrics) != 0)
        return bd_fail(BD_E_IO, "run: cannot append to %s/metrics.jsonl: %s",
                       r->dir, strerror(errno));
    return BD_OK;
}
