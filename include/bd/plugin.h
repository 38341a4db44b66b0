/* The plugin ABI: the one header a plugin needs.
 *
 * A plugin is a shared object that exports one symbol, bd_plugin_init. The
 * host calls it with its API table (bd_host) and receives a bd_plugin_info
 * that lists the plugin's denoisers and metrics. The plugin never links
 * against libbd: every core service (tensors, the differentiable ops, named
 * parameters, typed config, taps, logging) is a function pointer in the
 * table, so gradients come from the core's tape and a plugin has no backward
 * code. Build plugins with -fvisibility=hidden (bd_add_plugin in CMake
 * does); the declaration of bd_plugin_init below exports it.
 *
 *     static const bd_denoiser_desc mine = {
 *         BD_DESC_HEADER(bd_denoiser_desc),
 *         .name = "mine", .description = "...",
 *         .create = mine_create, .forward = mine_forward,
 *         .destroy = mine_destroy,
 *     };
 *     bd_status bd_plugin_init(const bd_host *host,
 *         const bd_plugin_info **info, char *err, size_t err_len) { ... }
 *
 * plugins/denoisers/mlp/mlp.c is the tutorial.
 *
 * Evolution rule. BD_ABI_MAJOR changes when anything below changes in an
 * incompatible way; the host refuses plugins of another major. Within a
 * major, fields and table entries are only ever APPENDED at the end of their
 * struct, and BD_ABI_MINOR grows. The host accepts plugins built for its
 * minor or an older one (it copies a descriptor's struct_size bytes into a
 * zeroed struct, so fields a plugin does not know read as 0 / NULL) and
 * refuses plugins built for a newer minor. Hence a plugin may use every
 * field of the bd_host it was compiled with. Frozen across all majors: the
 * signature of bd_plugin_init and the first three fields of bd_plugin_info.
 *
 * Rules for plugin authors.
 *  - Never call exit, abort, or anything that prints and dies; return a
 *    bd_status, setting the message with host->fail(status, fmt, ...).
 *  - Never call a bd_* function directly (the plugin does not link libbd):
 *    use the host table. Never free host memory with free().
 *  - bd_plugin_init only describes: it returns static descriptors and does no
 *    work; on failure it writes a message into err.
 *  - Names (plugins, denoisers, metrics, parameters, taps): [a-z0-9_], with
 *    '.' as a separator in parameter names ("down1.conv1.weight"). Parameter
 *    names are checkpoint names: keep them stable.
 *  - Read every setting through the host's config getters: the host names
 *    any key no getter read as a misspelling.
 *  - Per-step temporaries come from the tape (host->tape_tensor); no
 *    malloc inside forward. Hand each one back (host->tape_release) once
 *    every op that reads it has run: sampling then needs only the live
 *    activations.
 */
#ifndef BD_PLUGIN_H
#define BD_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bd/status.h" /* only for the bd_status codes: do not call its functions */

#define BD_ABI_MAJOR 1
#define BD_ABI_MINOR 1
#define BD_ABI_VERSION ((uint32_t)(BD_ABI_MAJOR << 16 | BD_ABI_MINOR))
#define BD_ABI_MAJOR_OF(v) ((uint32_t)(v) >> 16)
#define BD_ABI_MINOR_OF(v) ((uint32_t)(v) & 0xffffu)

/* The sizes of the basic types, one hex digit each, so a plugin built for
 * another data model is refused even when the version numbers agree. */
#define BD_ABI_SIZES ((uint32_t)(sizeof(void *) << 16 | sizeof(size_t) << 12 | \
                                 sizeof(int) << 8 | sizeof(bd_status) << 4 |   \
                                 sizeof(float)))

#define BD_PLUGIN_EXPORT __attribute__((visibility("default")))

/* Opaque to plugins: reached only through the host table. */
typedef struct bd_tensor        bd_tensor;
typedef struct bd_tape          bd_tape;
typedef struct bd_params        bd_params;
typedef struct bd_config        bd_config;
typedef struct bd_rng           bd_rng;
typedef struct bd_taps          bd_taps;
typedef struct bd_metric_result bd_metric_result;

enum { BD_LOG_DEBUG, BD_LOG_INFO, BD_LOG_WARN, BD_LOG_ERROR };

/* Modes of host->upsample2x (the values of bd_upsample_mode in ops.h). */
enum { BD_PLUGIN_UPSAMPLE_NEAREST, BD_PLUGIN_UPSAMPLE_BILINEAR };

/* ---- the host API table ---------------------------------------------------
 * Filled by the host; plugins call the core only through it. The ops are
 * those of bd/ops.h, same arguments, same shapes (see the comments there):
 * tape first, output last. */
typedef struct bd_host {
    uint32_t struct_size;  /* sizeof(bd_host) in the host */
    uint32_t abi_version;  /* BD_ABI_VERSION of the host */

    /* errors and logging: fail records the message and returns s */
    bd_status   (*fail)(bd_status s, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
    const char *(*last_error)(void);
    void        (*log)(int level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

    /* tensors: float32, 1..4 dims, contiguous */
    bd_tensor *(*tensor_new)(int ndim, const int64_t *shape, bool requires_grad);
    void       (*tensor_free)(bd_tensor *t);
    bd_tensor *(*tape_tensor)(bd_tape *tp, int ndim, const int64_t *shape);
    float     *(*tensor_data)(bd_tensor *t);
    int        (*tensor_ndim)(const bd_tensor *t);
    int64_t    (*tensor_dim)(const bd_tensor *t, int i);
    int64_t    (*tensor_numel)(const bd_tensor *t);

    /* differentiable ops */
    bd_status (*linear)(bd_tape *tp, bd_tensor *x, bd_tensor *w, bd_tensor *b,
                        bd_tensor **y);
    bd_status (*matmul)(bd_tape *tp, bd_tensor *a, bd_tensor *b, bd_tensor **y);
    bd_status (*conv2d)(bd_tape *tp, bd_tensor *x, bd_tensor *w, bd_tensor *b,
                        int stride, int pad, bd_tensor **y);
    bd_status (*group_norm)(bd_tape *tp, bd_tensor *x, int groups,
                            bd_tensor *gamma, bd_tensor *beta, float eps,
                            bd_tensor **y);
    bd_status (*layer_norm)(bd_tape *tp, bd_tensor *x, bd_tensor *gamma,
                            bd_tensor *beta, float eps, bd_tensor **y);
    bd_status (*silu)(bd_tape *tp, bd_tensor *x, bd_tensor **y);
    bd_status (*gelu)(bd_tape *tp, bd_tensor *x, bd_tensor **y);
    bd_status (*add)(bd_tape *tp, bd_tensor *a, bd_tensor *b, bd_tensor **y);
    bd_status (*mul)(bd_tape *tp, bd_tensor *a, bd_tensor *b, bd_tensor **y);
    bd_status (*scale)(bd_tape *tp, bd_tensor *x, float alpha, bd_tensor **y);
    bd_status (*reshape)(bd_tape *tp, bd_tensor *x, int ndim,
                         const int64_t *shape, bd_tensor **y);
    bd_status (*concat)(bd_tape *tp, bd_tensor *a, bd_tensor *b, bd_tensor **y);
    bd_status (*max_pool)(bd_tape *tp, bd_tensor *x, int k, bd_tensor **y);
    bd_status (*avg_pool)(bd_tape *tp, bd_tensor *x, int k, bd_tensor **y);
    bd_status (*upsample2x)(bd_tape *tp, bd_tensor *x, int mode, bd_tensor **y);
    bd_status (*softmax)(bd_tape *tp, bd_tensor *x, bd_tensor **y);
    bd_status (*to_tokens)(bd_tape *tp, bd_tensor *x, bd_tensor **y);
    bd_status (*from_tokens)(bd_tape *tp, bd_tensor *x, int64_t h, int64_t w,
                             bd_tensor **y);
    bd_status (*attention)(bd_tape *tp, bd_tensor *qkv, int heads, bd_tensor **y);
    bd_status (*sinusoidal)(bd_tape *tp, bd_tensor *s, int dim, float base,
                            bd_tensor **y);
    bd_status (*sum)(bd_tape *tp, bd_tensor *x, bd_tensor **y);
    bd_status (*mean)(bd_tape *tp, bd_tensor *x, bd_tensor **y);
    bd_status (*mse)(bd_tape *tp, bd_tensor *a, bd_tensor *b, bd_tensor **y);

    /* parameters: a zero-filled trainable tensor with a dotted name, owned by
     * the model; then an initialiser drawing from the model's seeded rng */
    bd_status (*param)(bd_params *p, const char *name, int ndim,
                       const int64_t *shape, bd_tensor **out);
    void      (*init_uniform)(bd_tensor *t, bd_rng *rng, float bound);
    void      (*init_normal)(bd_tensor *t, bd_rng *rng, float std);
    void      (*init_fill)(bd_tensor *t, float value);

    /* typed config (bd/config.h): the value or dflt; a value of the wrong
     * type or out of range fails with a message naming the key */
    bd_status (*config_int)(bd_config *c, const char *key, int64_t dflt,
                            int64_t lo, int64_t hi, int64_t *out);
    bd_status (*config_num)(bd_config *c, const char *key, double dflt,
                            double lo, double hi, double *out);
    bd_status (*config_str)(bd_config *c, const char *key, const char *dflt,
                            const char **out);
    bd_status (*config_choice)(bd_config *c, const char *key, const char *dflt,
                               const char *const *choices, int *index);

    /* taps: offer a named activation during forward (kept if requested; taps
     * may be NULL); get one back by name (NULL if absent) */
    void       (*taps_offer)(bd_taps *taps, const char *name, bd_tensor *value);
    bd_tensor *(*taps_get)(const bd_taps *taps, const char *name);

    /* metric results: named numbers and arrays (the array is copied) */
    bd_status (*result_number)(bd_metric_result *r, const char *name,
                               double value);
    bd_status (*result_array)(bd_metric_result *r, const char *name, int ndim,
                              const int64_t *shape, const float *data);

    /* ABI 1.1: hand a tape tensor back once its consumers have read it.
     * With grad off (sampling) its memory goes to the tensors that follow,
     * so a forward holds only its live activations; with grad on, and for
     * tensors the forward did not make or a tap keeps, nothing happens. */
    void (*tape_release)(bd_tape *tp, bd_tensor *t);
    /* ---- append new entries here (and bump BD_ABI_MINOR) ---- */
} bd_host;

/* Every descriptor starts with this pair. */
#define BD_DESC_HEADER(type) .struct_size = sizeof(type), .abi_version = BD_ABI_VERSION

/* ---- denoisers ------------------------------------------------------------ */

/* What create reports back (zeroed by the host). */
typedef struct bd_denoiser_instance {
    uint32_t struct_size;  /* set by the host */
    void    *state;        /* handed to forward and destroy */
    int64_t  channels;     /* the images it takes: (N, channels, size, size) */
    int64_t  size;
} bd_denoiser_instance;

typedef struct bd_denoiser_desc {
    uint32_t    struct_size;   /* sizeof(bd_denoiser_desc) */
    uint32_t    abi_version;   /* BD_ABI_VERSION */
    const char *name;          /* [a-z0-9_]+, unique among loaded plugins */
    const char *description;   /* one line */
    const char *const *taps;   /* NULL-terminated names forward offers; may be NULL */
    /* Read the config, add parameters (named, initialised from rng), and
     * fill inst. Required. On failure it frees what it made: the host then
     * ignores inst->state (and frees the parameters itself). */
    bd_status (*create)(const bd_host *host, bd_config *cfg, bd_params *params,
                        bd_rng *rng, bd_denoiser_instance *inst);
    /* x_t: (N, C, H, W), t: (N) timesteps, cond: (N, 2) the (x, y) label
     *   -> out: (N, C, H, W), a tape tensor. Offers its taps. Required. */
    bd_status (*forward)(void *state, bd_tape *tp, bd_tensor *x_t, bd_tensor *t,
                         bd_tensor *cond, bd_taps *taps, bd_tensor **out);
    void      (*destroy)(void *state);  /* required */
} bd_denoiser_desc;

/* ---- metrics ------------------------------------------------------------- */

/* A batch of generated images with what was asked for. */
typedef struct bd_metric_batch {
    uint32_t   struct_size;  /* set by the host */
    bd_tensor *images;       /* (N, C, H, W) generated images */
    bd_tensor *labels;       /* (N, 2) the (x, y) each was generated for */
    bd_taps   *taps;         /* activations tapped while generating, or NULL */
} bd_metric_batch;

typedef struct bd_metric_desc {
    uint32_t    struct_size;   /* sizeof(bd_metric_desc) */
    uint32_t    abi_version;   /* BD_ABI_VERSION */
    const char *name;          /* [a-z0-9_]+, unique among loaded plugins */
    const char *description;
    /* All required. create reads the config; update takes batches; compute
     * reports named numbers and arrays through host->result_*. */
    bd_status (*create)(const bd_host *host, bd_config *cfg, void **state);
    bd_status (*update)(void *state, const bd_metric_batch *batch);
    bd_status (*compute)(void *state, bd_metric_result *result);
    void      (*destroy)(void *state);
} bd_metric_desc;

/* ---- the plugin ------------------------------------------------------------ */

typedef struct bd_plugin_info {
    uint32_t struct_size;   /* sizeof(bd_plugin_info) } frozen across     */
    uint32_t abi_version;   /* BD_ABI_VERSION         } all majors        */
    uint32_t abi_sizes;     /* BD_ABI_SIZES           }                   */
    const char *name;        /* [a-z0-9_]+ */
    const char *version;     /* the plugin's own version, e.g. "1.0" */
    const char *description;
    int32_t n_denoisers;
    const bd_denoiser_desc *const *denoisers;
    int32_t n_metrics;
    const bd_metric_desc *const *metrics;
    void (*shutdown)(void); /* optional: called before the host unloads it */
} bd_plugin_info;

#define BD_PLUGIN_INFO_HEADER \
    .struct_size = sizeof(bd_plugin_info), .abi_version = BD_ABI_VERSION, \
    .abi_sizes = BD_ABI_SIZES

/* The entry point, defined by every plugin (this declaration exports it and
 * checks its signature). Return BD_OK and set *info (static storage), or an
 * error with a message in err. */
BD_PLUGIN_EXPORT bd_status bd_plugin_init(const bd_host *host,
                                          const bd_plugin_info **info,
                                          char *err, size_t err_len);
typedef bd_status (*bd_plugin_init_fn)(const bd_host *host,
                                       const bd_plugin_info **info, char *err,
                                       size_t err_len);
#define BD_PLUGIN_ENTRY "bd_plugin_init"

/* The entry point of a plugin whose init only describes (most plugins):
 *     BD_PLUGIN_DEFINE(INFO)
 * defines bd_plugin_init to hand out the static bd_plugin_info INFO. */
#define BD_PLUGIN_DEFINE(info_var)                                            \
    bd_status bd_plugin_init(const bd_host *host,                             \
                             const bd_plugin_info **bd_info_out, char *err,   \
                             size_t err_len)                                  \
    {                                                                         \
        (void)host, (void)err, (void)err_len;                                 \
        *bd_info_out = &(info_var);                                           \
        return BD_OK;                                                         \
    }

#endif
