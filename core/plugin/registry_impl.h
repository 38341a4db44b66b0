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

/* A loaded plugin: its file, handle and the host's copies of what it
 * provides (zero-extended to the host's struct sizes). */
typedef struct bd_plugin_rec {
    char                    *path;  /* as given */
    char                    *real;  /* resolved: the same file loads once */
    void                    *handle;
    bd_plugin_info           info;  /* its lists point at the copies below */
    bd_denoiser_desc        *denoisers;
    const bd_denoiser_desc **denoiser_ptrs;
    bd_metric_desc          *metrics;
    const bd_metric_desc   **metric_ptrs;
} bd_plugin_rec;

typedef struct bd_registry {
    bd_plugin_rec **plugins;
    int             n_plugins, cap_plugins;
    bd_strings      failures;     /* messages of plugins that failed in scans */
    bd_strings      search;       /* the search path */
    int             n_scanned;    /* search[0..n_scanned) have been loaded */
    bool            have_defaults;/* search starts with the default folders */
} bd_registry;

extern bd_registry bd_reg;

/* A metric instance: its descriptor and the plugin's state. */
struct bd_metric {
    const bd_metric_desc *desc;
    void                 *state;
};

/* Global index of a registered denoiser / metric, or -1. */
int bd_denoiser_index(const char *name);
int bd_metric_index(const char *name);

#endif
