/* Models and metrics by name: scan, look up, create from a config, and
 * reject config keys the plugin did not read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry_impl.h"

/* "unknown denoiser 'unte' (loaded: unet, mlp; 1 plugin failed to load,
 * the first: <its message>; searched: <folders>; <how to add one>)" */
static bd_status unknown(const char *kind, const char *name, int n,
                         const char *(*name_at)(int))
{
    char known[512] = "";
    for (int i = 0; i < n; i++) {
        size_t at = strlen(known);
        snprintf(known + at, sizeof known - at, "%s%s", i ? ", " : "", name_at(i));
    }
    char failed[600] = "";
    if (bd_plugin_failure_count() > 0)
        snprintf(failed, sizeof failed, "; %d plugin%s failed to load, the"
                 " first: %s", bd_plugin_failure_count(),
                 bd_plugin_failure_count() > 1 ? "s" : "", bd_plugin_failure(0));
    char where[1200] = "";
    for (int i = 0; i < bd_plugin_search_count(); i++) {
        size_t at = strlen(where);
        snprintf(where + at, sizeof where - at, "%s%s", i ? ", " : "",
                 bd_plugin_search_dir(i));
    }
    return bd_fail(BD_E_ARG, "unknown %s '%s' (loaded: %s%s; searched: %s; a"
                   " plugin elsewhere: add its folder to BD_PLUGIN_PATH, or"
                   " pass {from = folder})", kind, name ? name : "(null)",
                   n ? known : "none", failed, where);
}

static const char *denoiser_name(int i) { return bd_denoiser_at(i)->name; }
static const char *metric_name(int i) { return bd_metric_at(i)->name; }

/* The plugin's create, then the unused-key check and the instance check. */
static bd_status build(const bd_denoiser_desc *d, bd_config *cfg, bd_model *m,
                       uint64_t seed)
{
    bd_rng rng = bd_rng_make(seed, 0);
    bd_denoiser_instance inst = {.struct_size = sizeof inst};
    BD_TRY(d->create(bd_plugin_host(), cfg, m->params, &rng, &inst));
    m->state = inst.state;
    m->destroy = d->destroy;
    BD_TRY(bd_config_check_unused(cfg, d->name));
    if (inst.channels < 1 || inst.size < 1)
        return bd_fail(BD_E_PLUGIN, "model: denoiser '%s': create returned an"
                       " instance with channels = %lld and size = %lld; its"
                       " create must set inst->channels and inst->size (the"
                       " images it denoises: channels x size x size), both"
                       " >= 1", d->name, (long long)inst.channels,
                       (long long)inst.size);
    if (!(m->config = bd_config_copy(cfg)))
        return BD_E_NOMEM;
    snprintf(m->arch, sizeof m->arch, "%s", d->name);
    m->channels = inst.channels;
    m->size = inst.size;
    m->forward = d->forward;
    return BD_OK;
}

bd_status bd_model_create(const char *name, bd_config *cfg, uint64_t seed,
                          bd_model **out)
{
    BD_TRY(bd_plugins_scan());
    const bd_denoiser_desc *d = bd_denoiser_find(name);
    if (!d)
        return unknown("denoiser", name, bd_denoiser_count(), denoiser_name);
    bd_config *own = cfg ? NULL : bd_config_new();
    bd_model *m = calloc(1, sizeof *m);
    bd_status s = (cfg || own) && m ? BD_OK
                : bd_fail(BD_E_NOMEM, "model '%s': out of memory", name);
    if (s == BD_OK && !(m->params = bd_params_new()))
        s = BD_E_NOMEM;
    if (s == BD_OK)
        s = build(d, cfg ? cfg : own, m, seed);
    bd_config_free(own);
    if (s != BD_OK) {
        bd_model_free(m);
        return s;
    }
    *out = m;
    return BD_OK;
}

/* An instance of metric d of plugin p from cfg (NULL: all defaults). */
static bd_status make_metric(bd_plugin_rec *p, const bd_metric_desc *d,
                             bd_config *cfg, bd_metric **out)
{
    bd_config *own = cfg ? NULL : bd_config_new();
    bd_metric *m = calloc(1, sizeof *m);
    bd_status s = (cfg || own) && m ? BD_OK
                : bd_fail(BD_E_NOMEM, "metric '%s': out of memory", d->name);
    if (s == BD_OK) {
        m->desc = d;
        m->plugin = p;
        p->instances++;
        s = d->create(bd_plugin_host(), cfg ? cfg : own, &m->state);
        if (s != BD_OK)
            m->state = NULL; /* a failed create leaves nothing to destroy */
    }
    if (s == BD_OK)
        s = bd_config_check_unused(cfg ? cfg : own, d->name);
    bd_config_free(own);
    if (s != BD_OK) {
        bd_metric_free(m);
        return s;
    }
    *out = m;
    return BD_OK;
}

bd_status bd_metric_create(const char *name, bd_config *cfg, bd_metric **out)
{
    BD_TRY(bd_plugins_scan());
    const bd_metric_desc *d;
    bd_plugin_rec *p = bd_metric_provider(name, &d);
    if (!p)
        return unknown("metric", name, bd_metric_count(), metric_name);
    return make_metric(p, d, cfg, out);
}

bd_status bd_metric_create_like(const bd_metric *like, bd_config *cfg,
                                bd_metric **out)
{
    return make_metric(like->plugin, like->desc, cfg, out);
}
