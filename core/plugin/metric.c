/* Metric instances (made by bd_metric_create) and their results: a list of
 * named numbers and arrays. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry_impl.h"

bd_status bd_metric_update(bd_metric *m, bd_tensor *images, bd_tensor *labels,
                           bd_taps *taps)
{
    if (!images || images->ndim != 4)
        return bd_fail(BD_E_ARG, "metric '%s': images must be (N, C, H, W)",
                       m->desc->name);
    if (!labels || labels->ndim != 2 || labels->shape[0] != images->shape[0]
        || labels->shape[1] != 2) {
        char s[64] = "NULL";
        if (labels)
            bd_shape_str(labels, s, sizeof s);
        return bd_fail(BD_E_ARG, "metric '%s': labels have shape %s, expected"
                       " (%lld, 2)", m->desc->name, s,
                       (long long)images->shape[0]);
    }
    bd_metric_batch batch = {.struct_size = sizeof batch, .images = images,
                             .labels = labels, .taps = taps};
    return m->desc->update(m->state, &batch);
}

bd_status bd_metric_compute(bd_metric *m, bd_metric_result *result)
{
    return m->desc->compute(m->state, result);
}

void bd_metric_free(bd_metric *m)
{
    if (!m)
        return;
    if (m->state)
        m->desc->destroy(m->state);
    if (m->plugin)
        bd_plugin_release(m->plugin);
    free(m);
}

const char *bd_metric_name(const bd_metric *m) { return m->desc->name; }

const char *bd_metric_plugin(const bd_metric *m) { return m->plugin->path; }

/* ---- results -------------------------------------------------------------- */

typedef struct result_entry {
    char       name[64];
    double     number;
    bd_tensor *array;  /* NULL for a number */
} result_entry;

struct bd_metric_result {
    result_entry *entries;
    int           n, cap;
};

bd_metric_result *bd_metric_result_new(void)
{
    bd_metric_result *r = calloc(1, sizeof *r);
    if (!r)
        bd_fail(BD_E_NOMEM, "metric result: out of memory");
    return r;
}

void bd_metric_result_free(bd_metric_result *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++)
        bd_tensor_free(r->entries[i].array);
    free(r->entries);
    free(r);
}

/* A new entry named `name`: [a-z0-9_.]+, at most 63 characters, unique. */
static bd_status add_entry(bd_metric_result *r, const char *name,
                           result_entry **out)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > 63 || strspn(name, "abcdefghijklmnopqrstuvwxyz"
                                              "0123456789_.") != len)
        return bd_fail(BD_E_ARG, "metric result: name '%s', expected 1 to 63"
                       " of [a-z0-9_.]", name ? name : "(null)");
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->entries[i].name, name) == 0)
            return bd_fail(BD_E_ARG, "metric result: '%s' is reported twice",
                           name);
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 16;
        result_entry *grown = realloc(r->entries, (size_t)cap * sizeof *grown);
        if (!grown)
            return bd_fail(BD_E_NOMEM, "metric result: out of memory");
        r->entries = grown;
        r->cap = cap;
    }
    result_entry *e = &r->entries[r->n];
    memset(e, 0, sizeof *e);
    memcpy(e->name, name, len + 1);
    *out = e;
    return BD_OK;
}

bd_status bd_metric_result_add_number(bd_metric_result *r, const char *name,
                                      double value)
{
    result_entry *e;
    BD_TRY(add_entry(r, name, &e));
    e->number = value;
    r->n++;
    return BD_OK;
}

bd_status bd_metric_result_add_array(bd_metric_result *r, const char *name,
                                     int ndim, const int64_t *shape,
                                     const float *data)
{
    result_entry *e;
    BD_TRY(add_entry(r, name, &e));
    bd_tensor *t = bd_tensor_new(ndim, shape, false);
    if (!t) {
        char why[256];
        snprintf(why, sizeof why, "%s", bd_last_error());
        return bd_fail(BD_E_ARG, "metric result '%s': %s", name, why);
    }
    memcpy(t->data, data, (size_t)t->numel * sizeof(float));
    e->array = t;
    r->n++;
    return BD_OK;
}

int bd_metric_result_count(const bd_metric_result *r) { return r->n; }

const char *bd_metric_result_name(const bd_metric_result *r, int i)
{
    return i >= 0 && i < r->n ? r->entries[i].name : NULL;
}

double bd_metric_result_number(const bd_metric_result *r, int i)
{
    return i >= 0 && i < r->n ? r->entries[i].number : 0.0;
}

const bd_tensor *bd_metric_result_array(const bd_metric_result *r, int i)
{
    return i >= 0 && i < r->n ? r->entries[i].array : NULL;
}
