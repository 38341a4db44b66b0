/* Replacing a metric at run time: bd_metric_load_from, and the lifetime of
 * the plugins whose metrics were replaced (registry.h). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "registry_impl.h"

/* Index of p's metric `name` among all it provides, or -1. */
static int metric_slot(const bd_plugin_rec *p, const char *name)
{
    for (int i = 0; i < p->n_all_metrics; i++)
        if (strcmp(p->metrics[i].name, name) == 0)
            return i;
    return -1;
}

/* Move p between the listed and the retired plugins (the caller reserved
 * room in `to`). */
static void move(bd_plugin_list *from, bd_plugin_list *to, bd_plugin_rec *p)
{
    bd_plugin_list_remove(from, p);
    to->items[to->n++] = p;
    p->retired = to == &bd_reg.retired;
}

/* q no longer provides its metric d. Left providing nothing, it leaves the
 * listing, and is unloaded now or with its last instance. */
static void withdraw(bd_plugin_rec *q, const bd_metric_desc *d)
{
    q->shown[d - q->metrics] = false;
    bd_plugin_list_metrics(q);
    if (q->info.n_metrics + q->info.n_denoisers > 0)
        return;
    if (q->instances > 0) {
        move(&bd_reg.plugins, &bd_reg.retired, q);
        return;
    }
    bd_plugin_list_remove(&bd_reg.plugins, q);
    bd_plugin_close(q);
}

/* Make p's metric `slot` the one its name resolves to. */
static bd_status promote(bd_plugin_rec *p, int slot)
{
    const bd_metric_desc *d;
    bd_plugin_rec *q = bd_metric_provider(p->metrics[slot].name, &d);
    if (q == p)
        return BD_OK;
    BD_TRY(bd_plugin_list_reserve(&bd_reg.plugins));
    BD_TRY(bd_plugin_list_reserve(&bd_reg.retired));
    if (p->retired)
        move(&bd_reg.retired, &bd_reg.plugins, p);
    if (q)
        withdraw(q, d);
    p->shown[slot] = true;
    bd_plugin_list_metrics(p);
    return BD_OK;
}

void bd_plugin_release(bd_plugin_rec *p)
{
    if (--p->instances > 0 || !p->retired)
        return;
    bd_plugin_list_remove(&bd_reg.retired, p);
    bd_plugin_close(p);
}

/* What a folder held besides the metric looked for. */
typedef struct folder_survey {
    bd_strings metrics;   /* names its plugins provide */
    bd_strings failures;  /* messages of the files that did not load */
} folder_survey;

/* The plugin file at path, if it provides `name`: *out (registered, its
 * other metrics under free names only) and the metric's slot. Otherwise
 * what it holds goes into the survey and a plugin opened for the look is
 * closed again. Fails only when the plugin providing `name` cannot be
 * registered. */
static bd_status look_at(const char *path, const char *name,
                         bd_plugin_rec **out, int *slot, folder_survey *sv)
{
    char real[PATH_MAX];
    bd_plugin_rec *p = NULL;
    bool fresh = false;
    if (bd_plugin_resolve(path, real) == BD_OK && !(p = bd_plugin_find_loaded(real))) {
        if (bd_plugin_open(path, real, &p) != BD_OK)
            p = NULL;
        fresh = p != NULL;
    }
    if (!p)
        return bd_strings_push(&sv->failures, bd_last_error());
    *slot = metric_slot(p, name);
    if (*slot < 0) {
        bd_status s = BD_OK;
        for (int i = 0; s == BD_OK && i < p->n_all_metrics; i++)
            s = bd_strings_push(&sv->metrics, p->metrics[i].name);
        if (fresh)
            bd_plugin_close(p);
        return s;
    }
    bd_status s = fresh ? bd_plugin_register(p, true) : BD_OK;
    if (s != BD_OK) {
        bd_plugin_close(p);
        return s;
    }
    *out = p;
    return BD_OK;
}

/* "metric 'bump': no plugin in folder 'x' provides it (its plugins provide:
 * a, b; 1 failed to load, the first: ...)" */
static bd_status not_found(const char *name, const char *dir, int n_files,
                           const folder_survey *sv)
{
    char found[512] = "";
    for (int i = 0; i < sv->metrics.n; i++) {
        size_t at = strlen(found);
        snprintf(found + at, sizeof found - at, "%s%s", i ? ", " : "",
                 sv->metrics.items[i]);
    }
    char detail[1200];
    if (n_files == 0)
        snprintf(detail, sizeof detail, "it holds no bd_*.so file");
    else
        snprintf(detail, sizeof detail, "its plugins provide: %s",
                 sv->metrics.n ? found : "no metric");
    if (sv->failures.n > 0) {
        size_t at = strlen(detail);
        snprintf(detail + at, sizeof detail - at, "; %d failed to load, the"
                 " first: %s", sv->failures.n, sv->failures.items[0]);
    }
    return bd_fail(BD_E_ARG, "metric '%s': no plugin in folder '%s' provides it"
                   " (%s)", name, dir, detail);
}

bd_status bd_metric_load_from(const char *name, const char *dir)
{
    if (!name || !dir)
        return bd_fail(BD_E_ARG, "metric: load from a folder needs a name and"
                       " a folder, got %s and %s", name ? name : "NULL",
                       dir ? dir : "NULL");
    BD_TRY(bd_plugins_scan());
    bd_strings files = {0};
    folder_survey sv = {0};
    bd_plugin_rec *p = NULL;
    int slot = -1;
    bd_status s = bd_plugin_files(dir, &files);
    for (int i = 0; s == BD_OK && !p && i < files.n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files.items[i]);
        s = look_at(path, name, &p, &slot, &sv);
    }
    if (s == BD_OK)
        s = p ? promote(p, slot) : not_found(name, dir, files.n, &sv);
    bd_strings_clear(&files);
    bd_strings_clear(&sv.metrics);
    bd_strings_clear(&sv.failures);
    return s;
}
