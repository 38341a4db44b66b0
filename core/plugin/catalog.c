/* What the listed plugins provide: plugins, denoisers and metrics by index
 * (in load order) and by name. A metric another plugin took over is not
 * listed (registry_impl.h). */
#include <string.h>

#include "registry_impl.h"

int bd_plugin_count(void) { return bd_reg.plugins.n; }

const char *bd_plugin_path(int i)
{
    return i >= 0 && i < bd_reg.plugins.n ? bd_reg.plugins.items[i]->path : NULL;
}

const bd_plugin_info *bd_plugin_info_at(int i)
{
    return i >= 0 && i < bd_reg.plugins.n ? &bd_reg.plugins.items[i]->info : NULL;
}

/* The plugin holding entry i of the list that count() measures, with i
 * made local to it; NULL when out of range. */
static bd_plugin_rec *locate(int *i, int32_t (*count)(const bd_plugin_rec *))
{
    if (*i < 0)
        return NULL;
    for (int k = 0; k < bd_reg.plugins.n; k++) {
        bd_plugin_rec *p = bd_reg.plugins.items[k];
        if (*i < count(p))
            return p;
        *i -= count(p);
    }
    return NULL;
}

static int32_t n_denoisers(const bd_plugin_rec *p) { return p->info.n_denoisers; }
static int32_t n_metrics(const bd_plugin_rec *p) { return p->info.n_metrics; }

int bd_denoiser_count(void)
{
    int n = 0;
    for (int k = 0; k < bd_reg.plugins.n; k++)
        n += n_denoisers(bd_reg.plugins.items[k]);
    return n;
}

const bd_denoiser_desc *bd_denoiser_at(int i)
{
    bd_plugin_rec *p = locate(&i, n_denoisers);
    return p ? &p->denoisers[i] : NULL;
}

const char *bd_denoiser_path(int i)
{
    bd_plugin_rec *p = locate(&i, n_denoisers);
    return p ? p->path : NULL;
}

int bd_denoiser_index(const char *name)
{
    int n = bd_denoiser_count();
    for (int i = 0; i < n; i++)
        if (strcmp(bd_denoiser_at(i)->name, name) == 0)
            return i;
    return -1;
}

const bd_denoiser_desc *bd_denoiser_find(const char *name)
{
    return name ? bd_denoiser_at(bd_denoiser_index(name)) : NULL;
}

int bd_metric_count(void)
{
    int n = 0;
    for (int k = 0; k < bd_reg.plugins.n; k++)
        n += n_metrics(bd_reg.plugins.items[k]);
    return n;
}

const bd_metric_desc *bd_metric_at(int i)
{
    bd_plugin_rec *p = locate(&i, n_metrics);
    return p ? p->metric_ptrs[i] : NULL;
}

const char *bd_metric_path(int i)
{
    bd_plugin_rec *p = locate(&i, n_metrics);
    return p ? p->path : NULL;
}

int bd_metric_index(const char *name)
{
    int n = bd_metric_count();
    for (int i = 0; i < n; i++)
        if (strcmp(bd_metric_at(i)->name, name) == 0)
            return i;
    return -1;
}

const bd_metric_desc *bd_metric_find(const char *name)
{
    return name ? bd_metric_at(bd_metric_index(name)) : NULL;
}

bd_plugin_rec *bd_metric_provider(const char *name, const bd_metric_desc **desc)
{
    int i = name ? bd_metric_index(name) : -1;
    bd_plugin_rec *p = locate(&i, n_metrics);
    *desc = p ? p->metric_ptrs[i] : NULL;
    return p;
}
