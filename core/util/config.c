/* Flat typed configuration with usage tracking (see bd/config.h). */
#include "bd/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 64

typedef struct entry {
    char   key[KEY_MAX];
    bool   is_num;
    bool   used;
    double num;
    char  *str;
} entry;

struct bd_config {
    entry *entries;
    int    n, cap;
};

bd_config *bd_config_new(void)
{
    bd_config *c = calloc(1, sizeof *c);
    if (!c)
        bd_fail(BD_E_NOMEM, "config: out of memory");
    return c;
}

void bd_config_free(bd_config *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++)
        free(c->entries[i].str);
    free(c->entries);
    free(c);
}

static entry *find(const bd_config *c, const char *key)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->entries[i].key, key) == 0)
            return &c->entries[i];
    return NULL;
}

static bd_status check_key(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n >= KEY_MAX)
        return bd_fail(BD_E_ARG, "config: key '%s' has %zu characters, expected"
                       " 1 to %d", key, n, KEY_MAX - 1);
    for (size_t i = 0; i < n; i++) {
        char ch = key[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'
              || ch == '.'))
            return bd_fail(BD_E_ARG, "config: key '%s' has '%c', expected"
                           " a-z, 0-9, '_' or '.'", key, ch);
    }
    return BD_OK;
}

/* The entry for key, created empty if absent. */
static bd_status slot(bd_config *c, const char *key, entry **out)
{
    BD_TRY(check_key(key));
    entry *e = find(c, key);
    if (!e) {
        if (c->n == c->cap) {
            int cap = c->cap ? 2 * c->cap : 16;
            entry *grown = realloc(c->entries, (size_t)cap * sizeof *grown);
            if (!grown)
                return bd_fail(BD_E_NOMEM, "config: out of memory");
            c->entries = grown;
            c->cap = cap;
        }
        e = &c->entries[c->n++];
        memset(e, 0, sizeof *e);
        strcpy(e->key, key);
    }
    free(e->str);
    e->str = NULL;
    *out = e;
    return BD_OK;
}

bd_status bd_config_set_num(bd_config *c, const char *key, double value)
{
    entry *e = NULL;
    BD_TRY(slot(c, key, &e));
    e->is_num = true;
    e->num = value;
    return BD_OK;
}

bd_status bd_config_set_str(bd_config *c, const char *key, const char *value)
{
    entry *e = NULL;
    BD_TRY(slot(c, key, &e));
    e->is_num = false;
    e->str = strdup(value);
    return e->str ? BD_OK : bd_fail(BD_E_NOMEM, "config: out of memory");
}

bd_config *bd_config_copy(const bd_config *c)
{
    bd_config *copy = bd_config_new();
    bd_status s = copy ? BD_OK : BD_E_NOMEM;
    for (int i = 0; s == BD_OK && c && i < c->n; i++) {
        const entry *e = &c->entries[i];
        s = e->is_num ? bd_config_set_num(copy, e->key, e->num)
                      : bd_config_set_str(copy, e->key, e->str);
    }
    if (s != BD_OK) {
        bd_config_free(copy);
        return NULL;
    }
    return copy;
}

bool bd_config_has(const bd_config *c, const char *key)
{
    return find(c, key) != NULL;
}

/* The entry if present (marked used), checking it holds a number. */
static bd_status lookup_num(bd_config *c, const char *key, entry **out)
{
    entry *e = find(c, key);
    *out = e;
    if (!e)
        return BD_OK;
    e->used = true;
    if (!e->is_num)
        return bd_fail(BD_E_ARG, "config: %s = '%s', expected a number", key,
                       e->str);
    return BD_OK;
}

bd_status bd_config_num(bd_config *c, const char *key, double dflt, double lo,
                        double hi, double *out)
{
    entry *e = NULL;
    BD_TRY(lookup_num(c, key, &e));
    double v = e ? e->num : dflt;
    if (!(v >= lo && v <= hi)) /* also catches NaN */
        return bd_fail(BD_E_ARG, "config: %s = %g, expected a number in"
                       " [%g, %g]", key, v, lo, hi);
    *out = v;
    return BD_OK;
}

bd_status bd_config_int(bd_config *c, const char *key, int64_t dflt,
                        int64_t lo, int64_t hi, int64_t *out)
{
    entry *e = NULL;
    BD_TRY(lookup_num(c, key, &e));
    double v = e ? e->num : (double)dflt;
    if (v != floor(v) || !(v >= (double)lo && v <= (double)hi))
        return bd_fail(BD_E_ARG, "config: %s = %g, expected an integer in"
                       " [%lld, %lld]", key, v, (long long)lo, (long long)hi);
    *out = (int64_t)v;
    return BD_OK;
}

bd_status bd_config_str(bd_config *c, const char *key, const char *dflt,
                        const char **out)
{
    entry *e = find(c, key);
    if (!e) {
        *out = dflt;
        return BD_OK;
    }
    e->used = true;
    if (e->is_num)
        return bd_fail(BD_E_ARG, "config: %s = %g, expected a string", key,
                       e->num);
    *out = e->str;
    return BD_OK;
}

int bd_name_find(const char *const *names, const char *name)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

const char *bd_names_join(const char *const *names, char *buf, size_t len)
{
    if (len)
        buf[0] = '\0';
    for (int i = 0; names[i] && len; i++) {
        size_t at = strlen(buf);
        snprintf(buf + at, len - at, "%s%s", i ? ", " : "", names[i]);
    }
    return buf;
}

bd_status bd_config_choice(bd_config *c, const char *key, const char *dflt,
                           const char *const *choices, int *index)
{
    const char *v;
    BD_TRY(bd_config_str(c, key, dflt, &v));
    int i = bd_name_find(choices, v);
    if (i >= 0) {
        *index = i;
        return BD_OK;
    }
    char allowed[256];
    return bd_fail(BD_E_ARG, "config: %s = '%s', expected one of: %s", key, v,
                   bd_names_join(choices, allowed, sizeof allowed));
}

bd_status bd_config_check_unused(const bd_config *c, const char *owner)
{
    for (int i = 0; i < c->n; i++) {
        if (c->entries[i].used)
            continue;
        char known[512] = "";
        for (int j = 0; j < c->n; j++) {
            size_t at = strlen(known);
            if (c->entries[j].used && at < sizeof known)
                snprintf(known + at, sizeof known - at, "%s%s", at ? ", " : "",
                         c->entries[j].key);
        }
        return bd_fail(BD_E_ARG, "config: unknown key '%s' for %s (keys it"
                       " read: %s)", c->entries[i].key, owner,
                       known[0] ? known : "none");
    }
    return BD_OK;
}

int bd_config_count(const bd_config *c) { return c->n; }

const char *bd_config_key(const bd_config *c, int i) { return c->entries[i].key; }

bool bd_config_value(const bd_config *c, int i, double *num, const char **str)
{
    const entry *e = &c->entries[i];
    if (e->is_num)
        *num = e->num;
    else
        *str = e->str;
    return e->is_num;
}
