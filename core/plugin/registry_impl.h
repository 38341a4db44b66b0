/* The plugin registry's state, shared by the files of core/plugin (not a
 * public header). */
#ifndef BD_CORE_REGISTRY_IMPL_H
#define BD_CORE_REGISTRY_IMPL_H

#include "bd/registry.h"

/* A growable list of owned strings. */
typedef struct bd_strings {
    char **items;
    int    n, cap;
} bd_strings;

bd_status bd_strings_push(bd_strings *s, const char *str);
void      bd_strings_clear(bd_strings *s);

/* The bd_*.so file names in dir, sorted (BD_E_IO if it cannot be read). */
bd_status bd_plugin_files(const char *dir, bd_strings *names);

/* A loaded plugin: its file, handle and the host's copies of what it
 * provides (zero-extended to the host's struct sizes). All its metrics are
 * kept in `metrics`; info.metrics lists those whose names resolve to it
 * (`shown`): a metric replaced by another plugin's stays for the instances
 * made from it. */
typedef struct bd_plugin_rec {
    char                    *path;  /* as given */
    char                    *real;  /* resolved: the same file loads once */
    void                    *handle;
    bd_plugin_info           info;  /* its lists point at the copies below */
    bd_denoiser_desc        *denoisers;
    const bd_denoiser_desc **denoiser_ptrs;
    bd_metric_desc          *metrics;     /* all n_all_metrics it provides */
    bool                    *shown;       /* per metric: its name resolves here */
    const bd_metric_desc   **metric_ptrs; /* the shown ones: info.metrics */
    int                      n_all_metrics;
    int                      instances;   /* live bd_metric made from it */
    bool                     retired;     /* provides nothing any more */
} bd_plugin_rec;

typedef struct bd_plugin_list {
    bd_plugin_rec **items;
    int             n, cap;
} bd_plugin_list;

typedef struct bd_registry {
    bd_plugin_list plugins;      /* listed: they provide something */
    bd_plugin_list retired;      /* superseded, kept for their instances */
    bd_strings     failures;     /* messages of plugins that failed in scans */
    bd_strings     search;       /* the search path */
    int            n_scanned;    /* search[0..n_scanned) have been loaded */
    bool           have_defaults;/* search starts with the default folders */
} bd_registry;

extern bd_registry bd_reg;

/* A metric instance: its descriptor, the plugin's state, and the plugin,
 * which stays loaded while instances of it live. */
struct bd_metric {
    const bd_metric_desc *desc;
    void                 *state;
    bd_plugin_rec        *plugin;
};

/* Global index of a registered denoiser / metric, or -1. */
int bd_denoiser_index(const char *name);
int bd_metric_index(const char *name);
/* The listed plugin `name` resolves to, and its descriptor; NULL if none. */
bd_plugin_rec *bd_metric_provider(const char *name, const bd_metric_desc **desc);

/* The resolved path of a plugin file into real (PATH_MAX bytes); fails at
 * the open stage. */
bd_status      bd_plugin_resolve(const char *path, char *real);
/* The file at real (named path in messages) is an ELF shared object of
 * this machine whose mapped segments lie inside the file (elf.c); fails at
 * the elf stage naming what is wrong. */
bd_status      bd_plugin_check_elf(const char *path, const char *real);
/* Open, check and copy the plugin file at path (resolved: real) without
 * registering it. */
bd_status      bd_plugin_open(const char *path, const char *real,
                              bd_plugin_rec **out);
/* The plugin's shutdown, dlclose, and the record freed. */
void           bd_plugin_close(bd_plugin_rec *p);
/* A loaded plugin (listed or retired) of this resolved path, or NULL. */
bd_plugin_rec *bd_plugin_find_loaded(const char *real);
/* List p, refusing names it shares with listed plugins; with
 * hide_taken its metrics of taken names are kept hidden instead. */
bd_status      bd_plugin_register(bd_plugin_rec *p, bool hide_taken);
/* Rebuild info.metrics from shown. */
void           bd_plugin_list_metrics(bd_plugin_rec *p);

/* Room for one more item; push reserves it and appends. */
bd_status bd_plugin_list_reserve(bd_plugin_list *l);
bd_status bd_plugin_list_push(bd_plugin_list *l, bd_plugin_rec *p);
void      bd_plugin_list_remove(bd_plugin_list *l, bd_plugin_rec *p);

/* One instance of p fewer: a retired plugin goes with its last one. */
void bd_plugin_release(bd_plugin_rec *p);

#endif
