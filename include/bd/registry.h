/* The plugin host: loading plugins, listing what they provide, and creating
 * models and metrics from them by name.
 *
 * Search path, in order: the build's plugin folder (the installed one when
 * the build's is absent), the folders in BD_PLUGIN_PATH (':'-separated),
 * then folders added with bd_plugin_add_path. A folder scan loads every
 * bd_*.so in it, sorted by name. bd_model_create and bd_metric_create run
 * bd_plugins_scan first (listing and lookups do not). A plugin that fails
 * to load in a scan is recorded and the scan carries on, so one broken file
 * never hides the others.
 *
 * Every load failure is BD_E_PLUGIN with the message
 *     plugin '<file>': <stage>: <found, against what was expected>
 * where stage is elf (the file is not a whole shared object of this
 * machine: checked before dlopen, which would map a truncated file and die
 * of SIGBUS), open, symbol, abi, init or validate. Failures in scans are
 * also logged as warnings.
 *
 * A metric's name can be given to another plugin at run time (a new
 * version of a metric, from another folder): see bd_metric_load_from.
 * Denoiser names are never replaced, and a second plugin offering a taken
 * name is refused as above.
 *
 * The registry is process-wide and not thread-safe: load from one thread,
 * before training starts. Free every model and metric made from a plugin
 * before bd_plugins_unload_all. */
#ifndef BD_REGISTRY_H
#define BD_REGISTRY_H

#include "bd/config.h"
#include "bd/model.h"
#include "bd/plugin.h"

/* ---- loading ------------------------------------------------------------- */

/* Load one plugin file and register its denoisers and metrics (all or none).
 * Loading a file that is already loaded is a no-op. */
bd_status bd_plugin_load(const char *path);

/* Load every bd_*.so in a folder. Fails only if the folder cannot be read;
 * plugins that fail are recorded (bd_plugin_failure) and counted in
 * *n_failed (may be NULL). */
bd_status bd_plugin_load_dir(const char *dir, int *n_failed);

/* Append a folder to the search path; scanned by the next bd_plugins_scan. */
bd_status bd_plugin_add_path(const char *dir);

/* bd.model(name, cfg, {from = dir}): add dir to the search path (once),
 * scan it, and fail (BD_E_ARG) unless denoiser `name` then comes from a
 * plugin in dir: none there, or the name already taken by a plugin found
 * earlier (denoiser names are never replaced). */
bd_status bd_denoiser_load_from(const char *name, const char *dir);

/* Load the folders of the search path not scanned yet. Failures of single
 * plugins are recorded, not returned. */
bd_status bd_plugins_scan(void);

/* Call each plugin's shutdown, dlclose it, and forget everything: plugins
 * (the replaced ones too), failures, added folders. The next use scans
 * again. */
void bd_plugins_unload_all(void);

/* ---- listing ------------------------------------------------------------- */

/* Loaded plugins: the file and the host's copy of its info (descriptors
 * included, normalised to the host's struct sizes). */
int                   bd_plugin_count(void);
const char           *bd_plugin_path(int i);
const bd_plugin_info *bd_plugin_info_at(int i);

/* Plugins that failed during scans: the full message of each. */
int         bd_plugin_failure_count(void);
const char *bd_plugin_failure(int i);

/* The search path as it stands (existing folders and missing ones). */
int         bd_plugin_search_count(void);
const char *bd_plugin_search_dir(int i);

/* Registered denoisers and metrics, and the file each came from. A
 * descriptor pointer stays valid until its plugin is unloaded: by
 * bd_plugins_unload_all, or when bd_metric_load_from replaces the last
 * thing it provides while no instance of it lives. */
int                     bd_denoiser_count(void);
const bd_denoiser_desc *bd_denoiser_at(int i);
const char             *bd_denoiser_path(int i);
/* NULL if no loaded plugin provides it (lookups do not scan). */
const bd_denoiser_desc *bd_denoiser_find(const char *name);

int                   bd_metric_count(void);
const bd_metric_desc *bd_metric_at(int i);
const char           *bd_metric_path(int i);
const bd_metric_desc *bd_metric_find(const char *name);

/* ---- models -------------------------------------------------------------- */

/* Create the denoiser `name` (scanning the search path if needed) from cfg
 * (NULL: all defaults) with parameters initialised from seed. Fails naming
 * the known denoisers if `name` is unknown, and naming the key if cfg holds
 * one the denoiser did not read. Free with bd_model_free. */
bd_status bd_model_create(const char *name, bd_config *cfg, uint64_t seed,
                          bd_model **out);

/* ---- metrics ------------------------------------------------------------- */

typedef struct bd_metric bd_metric;

/* An instance of the metric `name` resolves to (scanning the search path
 * if needed), from cfg (NULL: all defaults). Fails naming the known
 * metrics if `name` is unknown, and naming the key if cfg holds one the
 * metric did not read. Free with bd_metric_free. */
bd_status bd_metric_create(const char *name, bd_config *cfg, bd_metric **out);
/* An instance of the same metric of the same plugin as `like`, even after
 * its name was given to another plugin. */
bd_status bd_metric_create_like(const bd_metric *like, bd_config *cfg,
                                bd_metric **out);
/* images: (N, C, H, W), labels: (N, 2), taps may be NULL */
bd_status bd_metric_update(bd_metric *m, bd_tensor *images, bd_tensor *labels,
                           bd_taps *taps);
/* Appends the metric's named numbers and arrays to result. */
bd_status bd_metric_compute(bd_metric *m, bd_metric_result *result);
void      bd_metric_free(bd_metric *m);
const char *bd_metric_name(const bd_metric *m);
/* The file of the plugin the instance came from (as it was loaded). */
const char *bd_metric_plugin(const bd_metric *m);

/* ---- replacing a metric ----------------------------------------------------
 * Load, from the bd_*.so files of folder dir (in name order, the first that
 * provides it), the plugin providing metric `name`, and make it the one
 * `name` resolves to: bd_metric_find and bd_metric_create use it from now
 * on. Scans the search path first, so the plugin replaced is the one a
 * plain bd_metric_create would have used.
 *   - The plugin that provided `name` keeps its other metrics. Instances
 *     made from it keep working (bd_metric_create_like makes more), and it
 *     stays loaded while any lives: each plugin counts its live instances.
 *     Once it provides nothing (no metric a name resolves to, no
 *     denoiser) it leaves the listing, and is unloaded (shutdown, dlclose)
 *     with its last instance, at once if none lives, or by
 *     bd_plugins_unload_all.
 *   - The new plugin's other metrics take only names still free; those of
 *     taken names stay with their plugins. Its denoisers must have new
 *     names (models are not counted, so a denoiser is never replaced): else
 *     the load fails as any duplicate does, and nothing changes.
 *   - A folder whose plugin already provides `name` is a no-op; one whose
 *     plugin provided it before (e.g. the build's plugin folder, after a
 *     swap) gives the name back to that plugin.
 * Fails with BD_E_IO if dir cannot be read, and with BD_E_ARG when no
 * plugin there provides `name`:
 *     metric 'bump': no plugin in folder '<dir>' provides it (its plugins
 *     provide: <metrics>; <n> failed to load, the first: <message>) */
bd_status bd_metric_load_from(const char *name, const char *dir);

/* A list of named numbers and arrays; names are [a-z0-9_.]+, unique. */
bd_metric_result *bd_metric_result_new(void);
void              bd_metric_result_free(bd_metric_result *r);
bd_status bd_metric_result_add_number(bd_metric_result *r, const char *name,
                                      double value);
/* Copies data (numel of shape floats) into a heap tensor. */
bd_status bd_metric_result_add_array(bd_metric_result *r, const char *name,
                                     int ndim, const int64_t *shape,
                                     const float *data);
int               bd_metric_result_count(const bd_metric_result *r);
const char       *bd_metric_result_name(const bd_metric_result *r, int i);
/* An entry is a number (array NULL) or an array (heap tensor, owned by r). */
double            bd_metric_result_number(const bd_metric_result *r, int i);
const bd_tensor  *bd_metric_result_array(const bd_metric_result *r, int i);

/* The host table handed to plugins (for tests and the Lua bindings). */
const bd_host *bd_plugin_host(void);

#endif
