/* The plugin loader: open, find the entry point, call it, check the ABI,
 * validate and copy what the plugin provides, register it. Each stage fails
 * with "plugin '<file>': <stage>: <detail>" and leaves nothing behind. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bd/registry.h"
#include "registry_impl.h"

/* Bytes of a struct up to and including `field`: the 1.0 layouts are the
 * smallest a plugin may hand over. */
#define END_OF(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))
#define INFO_MIN     END_OF(bd_plugin_info, shutdown)
#define DENOISER_MIN END_OF(bd_denoiser_desc, destroy)
#define METRIC_MIN   END_OF(bd_metric_desc, destroy)

#define MAX_PER_PLUGIN 256

bd_registry bd_reg;

static bd_status stage_fail(const char *path, const char *stage,
                            const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bd_status stage_fail(const char *path, const char *stage,
                            const char *fmt, ...)
{
    char detail[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return bd_fail(BD_E_PLUGIN, "plugin '%s': %s: %s", path, stage, detail);
}

static void plugin_free(bd_plugin_rec *p)
{
    if (!p)
        return;
    free(p->path);
    free(p->real);
    free(p->denoisers);
    free(p->denoiser_ptrs);
    free(p->metrics);
    free(p->shown);
    free(p->metric_ptrs);
    free(p);
}

/* ---- abi ------------------------------------------------------------------ */

static bd_status check_version(const char *path, const char *what,
                               uint32_t version)
{
    uint32_t major = BD_ABI_MAJOR_OF(version), minor = BD_ABI_MINOR_OF(version);
    if (major != BD_ABI_MAJOR)
        return stage_fail(path, "abi", "%s built for ABI %u.%u, this host"
                          " provides ABI %u.%u (the major versions must match)",
                          what, major, minor, BD_ABI_MAJOR, BD_ABI_MINOR);
    if (minor > BD_ABI_MINOR)
        return stage_fail(path, "abi", "%s built for ABI %u.%u, newer than this"
                          " host's ABI %u.%u (rebuild it, or update bd)", what,
                          major, minor, BD_ABI_MAJOR, BD_ABI_MINOR);
    return BD_OK;
}

/* Reads only the frozen head (struct_size, abi_version, abi_sizes) before
 * trusting the rest of the struct. */
static bd_status check_abi(const char *path, const bd_plugin_info *info)
{
    BD_TRY(check_version(path, "plugin", info->abi_version));
    if (info->abi_sizes != BD_ABI_SIZES)
        return stage_fail(path, "abi", "type sizes 0x%05x differ from the host's"
                          " 0x%05x (one hex digit each: pointer, size_t, int,"
                          " enum, float)", info->abi_sizes, BD_ABI_SIZES);
    if (info->struct_size < INFO_MIN)
        return stage_fail(path, "abi", "bd_plugin_info is %u bytes, expected at"
                          " least %zu", info->struct_size, INFO_MIN);
    return BD_OK;
}

/* ---- validate ------------------------------------------------------------- */

/* [a-z0-9_]+, at most 63 characters. */
static bool valid_name(const char *name)
{
    if (!name || !*name || strlen(name) > 63)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    return true;
}

static bd_status check_name(const char *path, const char *kind, int i,
                            const char *name)
{
    if (!valid_name(name))
        return stage_fail(path, "validate", "%s %d has name '%s', expected"
                          " 1 to 63 of [a-z0-9_]", kind, i, name ? name : "(null)");
    return BD_OK;
}

static bd_status require(const char *path, const char *kind, const char *name,
                         const void *callback, const char *field)
{
    if (!callback)
        return stage_fail(path, "validate", "%s '%s': required callback '%s' is"
                          " NULL", kind, name, field);
    return BD_OK;
}

/* Copy a descriptor of `size` bytes (at least `min`) into a zeroed `host`
 * struct of `host_size` bytes, after checking its size and version. */
static bd_status copy_desc(const char *path, const char *kind, int i,
                           const void *desc, size_t min, void *copy,
                           size_t host_size)
{
    if (!desc)
        return stage_fail(path, "validate", "%s %d is NULL", kind, i);
    const uint32_t *head = desc; /* struct_size, abi_version */
    if (head[0] < min)
        return stage_fail(path, "validate", "%s %d is %u bytes, expected at"
                          " least %zu", kind, i, head[0], min);
    char what[64];
    snprintf(what, sizeof what, "%s %d", kind, i);
    BD_TRY(check_version(path, what, head[1]));
    memset(copy, 0, host_size);
    memcpy(copy, desc, head[0] < host_size ? head[0] : host_size);
    return BD_OK;
}

static bd_status check_count(const char *path, const char *kind, int32_t n,
                             const void *list)
{
    if (n < 0 || n > MAX_PER_PLUGIN || (n > 0 && !list))
        return stage_fail(path, "validate", "%d %ss listed at %p, expected 0 to"
                          " %d and a list", n, kind, list, MAX_PER_PLUGIN);
    return BD_OK;
}

static bd_status check_taps(const char *path, const bd_denoiser_desc *d)
{
    for (int i = 0; d->taps && d->taps[i]; i++)
        if (!valid_name(d->taps[i]))
            return stage_fail(path, "validate", "denoiser '%s': tap %d is named"
                              " '%s', expected [a-z0-9_]", d->name, i, d->taps[i]);
    return BD_OK;
}

static bd_status adopt_denoisers(bd_plugin_rec *p, const bd_plugin_info *src)
{
    int n = p->info.n_denoisers;
    p->denoisers = calloc((size_t)n + 1, sizeof *p->denoisers);
    p->denoiser_ptrs = calloc((size_t)n + 1, sizeof *p->denoiser_ptrs);
    if (!p->denoisers || !p->denoiser_ptrs)
        return bd_fail(BD_E_NOMEM, "plugin '%s': out of memory", p->path);
    for (int i = 0; i < n; i++) {
        bd_denoiser_desc *d = &p->denoisers[i];
        BD_TRY(copy_desc(p->path, "denoiser", i, src->denoisers[i], DENOISER_MIN,
                         d, sizeof *d));
        BD_TRY(check_name(p->path, "denoiser", i, d->name));
        BD_TRY(require(p->path, "denoiser", d->name, d->create, "create"));
        BD_TRY(require(p->path, "denoiser", d->name, d->forward, "forward"));
        BD_TRY(require(p->path, "denoiser", d->name, d->destroy, "destroy"));
        BD_TRY(check_taps(p->path, d));
        p->denoiser_ptrs[i] = d;
    }
    p->info.denoisers = (const bd_denoiser_desc *const *)p->denoiser_ptrs;
    return BD_OK;
}

static bd_status adopt_metrics(bd_plugin_rec *p, const bd_plugin_info *src)
{
    int n = p->n_all_metrics = p->info.n_metrics;
    p->metrics = calloc((size_t)n + 1, sizeof *p->metrics);
    p->shown = calloc((size_t)n + 1, sizeof *p->shown);
    p->metric_ptrs = calloc((size_t)n + 1, sizeof *p->metric_ptrs);
    if (!p->metrics || !p->shown || !p->metric_ptrs)
        return bd_fail(BD_E_NOMEM, "plugin '%s': out of memory", p->path);
    for (int i = 0; i < n; i++) {
        bd_metric_desc *m = &p->metrics[i];
        BD_TRY(copy_desc(p->path, "metric", i, src->metrics[i], METRIC_MIN, m,
                         sizeof *m));
        BD_TRY(check_name(p->path, "metric", i, m->name));
        BD_TRY(require(p->path, "metric", m->name, m->create, "create"));
        BD_TRY(require(p->path, "metric", m->name, m->update, "update"));
        BD_TRY(require(p->path, "metric", m->name, m->compute, "compute"));
        BD_TRY(require(p->path, "metric", m->name, m->destroy, "destroy"));
        p->shown[i] = true;
    }
    bd_plugin_list_metrics(p);
    return BD_OK;
}

void bd_plugin_list_metrics(bd_plugin_rec *p)
{
    int n = 0;
    for (int i = 0; i < p->n_all_metrics; i++)
        if (p->shown[i])
            p->metric_ptrs[n++] = &p->metrics[i];
    p->metric_ptrs[n] = NULL;
    p->info.n_metrics = n;
    p->info.metrics = (const bd_metric_desc *const *)p->metric_ptrs;
}

static bd_status taken(const char *path, const char *kind, const char *name,
                       const char *owner)
{
    return stage_fail(path, "validate", "%s '%s' is already provided by '%s'",
                      kind, name, owner);
}

/* Two descriptors of one name inside the plugin. */
static bd_status check_twins(const bd_plugin_rec *p)
{
    for (int i = 0; i < p->info.n_denoisers; i++)
        for (int k = 0; k < i; k++)
            if (strcmp(p->denoisers[i].name, p->denoisers[k].name) == 0)
                return taken(p->path, "denoiser", p->denoisers[i].name, p->path);
    for (int i = 0; i < p->n_all_metrics; i++)
        for (int k = 0; k < i; k++)
            if (strcmp(p->metrics[i].name, p->metrics[k].name) == 0)
                return taken(p->path, "metric", p->metrics[i].name, p->path);
    return BD_OK;
}

static bd_status validate(bd_plugin_rec *p, const bd_plugin_info *src)
{
    memcpy(&p->info, src, src->struct_size < sizeof p->info ? src->struct_size
                                                            : sizeof p->info);
    if (!valid_name(p->info.name))
        return stage_fail(p->path, "validate", "plugin name '%s', expected 1 to"
                          " 63 of [a-z0-9_]", p->info.name ? p->info.name : "(null)");
    BD_TRY(check_count(p->path, "denoiser", p->info.n_denoisers, src->denoisers));
    BD_TRY(check_count(p->path, "metric", p->info.n_metrics, src->metrics));
    if (p->info.n_denoisers + p->info.n_metrics == 0)
        return stage_fail(p->path, "validate", "provides no denoiser and no"
                          " metric, expected at least one");
    BD_TRY(adopt_denoisers(p, src));
    BD_TRY(adopt_metrics(p, src));
    return check_twins(p);
}

/* ---- registry lists ------------------------------------------------------- */

bd_status bd_plugin_list_reserve(bd_plugin_list *l)
{
    if (l->n < l->cap)
        return BD_OK;
    int cap = l->cap ? 2 * l->cap : 16;
    bd_plugin_rec **grown = realloc(l->items, (size_t)cap * sizeof *grown);
    if (!grown)
        return bd_fail(BD_E_NOMEM, "plugins: out of memory");
    l->items = grown;
    l->cap = cap;
    return BD_OK;
}

bd_status bd_plugin_list_push(bd_plugin_list *l, bd_plugin_rec *p)
{
    BD_TRY(bd_plugin_list_reserve(l));
    l->items[l->n++] = p;
    return BD_OK;
}

void bd_plugin_list_remove(bd_plugin_list *l, bd_plugin_rec *p)
{
    for (int i = 0; i < l->n; i++)
        if (l->items[i] == p) {
            memmove(&l->items[i], &l->items[i + 1],
                    (size_t)(l->n - i - 1) * sizeof *l->items);
            l->n--;
            return;
        }
}

static bd_plugin_rec *find_in(const bd_plugin_list *l, const char *real)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->items[i]->real, real) == 0)
            return l->items[i];
    return NULL;
}

bd_plugin_rec *bd_plugin_find_loaded(const char *real)
{
    bd_plugin_rec *p = find_in(&bd_reg.plugins, real);
    return p ? p : find_in(&bd_reg.retired, real);
}

/* ---- load ----------------------------------------------------------------- */

/* elf -> open -> symbol -> init -> abi: the plugin's info, or a failure. */
static bd_status open_plugin(const char *path, const char *real, void **handle,
                             const bd_plugin_info **info)
{
    BD_TRY(bd_plugin_check_elf(path, real));
    void *h = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return stage_fail(path, "open", "%s", dlerror());
    bd_plugin_init_fn init;
    *(void **)&init = dlsym(h, BD_PLUGIN_ENTRY);
    if (!init) {
        dlclose(h);
        return stage_fail(path, "symbol", "no entry point '%s' (a bd plugin"
                          " defines it, as declared in bd/plugin.h)", BD_PLUGIN_ENTRY);
    }
    char err[512] = "";
    bd_status s = init(bd_plugin_host(), info, err, sizeof err);
    if (s == BD_OK && !*info) {
        dlclose(h);
        return stage_fail(path, "init", "%s returned ok without its plugin"
                          " info, expected *info set (BD_PLUGIN_DEFINE(INFO)"
                          " does it)", BD_PLUGIN_ENTRY);
    }
    if (s != BD_OK) {
        dlclose(h);
        return stage_fail(path, "init", "%s returned %s: %s", BD_PLUGIN_ENTRY,
                          bd_status_name(s), *err ? err : "(the plugin gave"
                          " no message)");
    }
    s = check_abi(path, *info);
    if (s != BD_OK) {
        dlclose(h);
        return s;
    }
    *handle = h;
    return BD_OK;
}

bd_status bd_plugin_resolve(const char *path, char *real)
{
    if (!path)
        return bd_fail(BD_E_ARG, "plugin: path is NULL");
    if (!realpath(path, real))
        return stage_fail(path, "open", "%s (expected a shared object)",
                          strerror(errno));
    return BD_OK;
}

bd_status bd_plugin_open(const char *path, const char *real,
                         bd_plugin_rec **out)
{
    void *handle = NULL;
    const bd_plugin_info *info = NULL;
    BD_TRY(open_plugin(path, real, &handle, &info));
    bd_plugin_rec *p = calloc(1, sizeof *p);
    if (!p) {
        dlclose(handle);
        return bd_fail(BD_E_NOMEM, "plugin '%s': out of memory", path);
    }
    p->handle = handle;
    p->path = strdup(path);
    p->real = strdup(real);
    bd_status s = p->path && p->real ? validate(p, info)
                : bd_fail(BD_E_NOMEM, "plugin '%s': out of memory", path);
    if (s != BD_OK) {
        bd_plugin_close(p);
        return s;
    }
    *out = p;
    return BD_OK;
}

void bd_plugin_close(bd_plugin_rec *p)
{
    if (p->info.shutdown)
        p->info.shutdown();
    dlclose(p->handle);
    plugin_free(p);
}

bd_status bd_plugin_register(bd_plugin_rec *p, bool hide_taken)
{
    for (int i = 0; i < p->info.n_denoisers; i++) {
        int k = bd_denoiser_index(p->denoisers[i].name);
        if (k >= 0)
            return stage_fail(p->path, "validate", "denoiser '%s' is already"
                              " provided by '%s' (a denoiser's name is never"
                              " replaced: the first plugin on the search path"
                              " keeps it; rename this one)",
                              p->denoisers[i].name, bd_denoiser_path(k));
    }
    for (int i = 0; i < p->n_all_metrics; i++) {
        int k = bd_metric_index(p->metrics[i].name);
        if (k >= 0 && !hide_taken)
            return taken(p->path, "metric", p->metrics[i].name,
                         bd_metric_path(k));
        p->shown[i] = k < 0;
    }
    bd_plugin_list_metrics(p);
    return bd_plugin_list_push(&bd_reg.plugins, p);
}

bd_status bd_plugin_load(const char *path)
{
    char real[PATH_MAX];
    BD_TRY(bd_plugin_resolve(path, real));
    if (bd_plugin_find_loaded(real))
        return BD_OK;
    bd_plugin_rec *p;
    BD_TRY(bd_plugin_open(path, real, &p));
    bd_status s = bd_plugin_register(p, false);
    if (s != BD_OK)
        bd_plugin_close(p);
    return s;
}

static void close_all(bd_plugin_list *l)
{
    for (int i = l->n - 1; i >= 0; i--)
        bd_plugin_close(l->items[i]);
    free(l->items);
}

void bd_plugins_unload_all(void)
{
    close_all(&bd_reg.plugins);
    close_all(&bd_reg.retired);
    bd_strings_clear(&bd_reg.failures);
    bd_strings_clear(&bd_reg.search);
    memset(&bd_reg, 0, sizeof bd_reg);
}
