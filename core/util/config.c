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
    char (*asked)[KEY_MAX]; /* every key a getter asked for, present or not */
    int    n_asked, cap_asked;
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
    free(c->asked);
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

/* Remember that a getter asked for key, so that an unknown key's message
 * can list the keys the owner reads. Out of memory only shortens that
 * list. */
static void note_asked(bd_config *c, const char *key)
{
    if (strlen(key) >= KEY_MAX)
        return;
    for (int i = 0; i < c->n_asked; i++)
        if (strcmp(c->asked[i], key) == 0)
            return;
    if (c->n_asked == c->cap_asked) {
        int cap = c->cap_asked ? 2 * c->cap_asked : 16;
        char (*grown)[KEY_MAX] = realloc(c->asked, (size_t)cap * KEY_MAX);
        if (!grown)
            return;
        c->asked = grown;
        c->cap_asked = cap;
    }
    strcpy(c->asked[c->n_asked++], key);
}

void bd_config_allow(bd_config *c, const char *key)
{
    note_asked(c, key);
}

/* The entry if present (marked used), checking it holds a number. */
static bd_status lookup_num(bd_config *c, const char *key, entry **out)
{
    note_asked(c, key);
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
    note_asked(c, key);
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

/* Edit distance with adjacent transpositions (optimal string alignment),
 * both strings shorter than KEY_MAX. */
static int edit_distance(const char *a, const char *b)
{
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n >= KEY_MAX || m >= KEY_MAX)
        return KEY_MAX;
    int d[KEY_MAX][KEY_MAX];
    for (int i = 0; i <= n; i++)
        d[i][0] = i;
    for (int j = 0; j <= m; j++)
        d[0][j] = j;
    for (int i = 1; i <= n; i++)
        for (int j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]
                && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

const char *bd_name_nearest(const char *const *names, int n, const char *name)
{
    const char *best = NULL;
    int best_d = KEY_MAX;
    size_t len = strlen(name);
    for (int i = 0; i < n; i++) {
        size_t k = strlen(names[i]);
        int d = edit_distance(name, names[i]);
        bool prefix = len >= 3 && k >= 3
                   && strncmp(name, names[i], len < k ? len : k) == 0;
        bool close = d <= (len < 6 ? 1 : 2) + (int)(len / 8);
        if ((close || prefix) && d < best_d) {
            best = names[i];
            best_d = d;
        }
    }
    return best;
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bd_status bd_config_check_unused(const bd_config *c, const char *owner)
{
    for (int i = 0; i < c->n; i++) {
        if (c->entries[i].used)
            continue;
        const char *key = c->entries[i].key;
        const char **names = malloc(((size_t)c->n_asked + 1) * sizeof *names);
        int n = 0;
        for (int j = 0; names && j < c->n_asked; j++)
            names[n++] = c->asked[j];
        if (names)
            qsort(names, (size_t)n, sizeof *names, compare_keys);
        char allowed[1024] = "";
        for (int j = 0; j < n; j++) {
            size_t at = strlen(allowed);
            snprintf(allowed + at, sizeof allowed - at, "%s%s", j ? ", " : "",
                     names[j]);
        }
        const char *near = names ? bd_name_nearest(names, n, key) : NULL;
        char hint[KEY_MAX + 32] = "";
        if (near)
            snprintf(hint, sizeof hint, "; did you mean '%s'?", near);
        bd_status s = bd_fail(BD_E_ARG, "config: unknown key '%s' for %s"
                              " (allowed: %s%s)", key, owner,
                              n ? allowed : "none: it reads no key", hint);
        free(names);
        return s;
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
