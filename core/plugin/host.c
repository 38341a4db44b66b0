/* The host API table handed to every plugin (see bd/plugin.h). Most entries
 * are the core functions themselves; the few wrappers below adapt a type the
 * plugin sees as opaque or as a plain int. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bd/log.h"
#include "bd/ops.h"
#include "bd/registry.h"

static void host_log(int level, const char *fmt, ...)
{
    if (level <= BD_LOG_DEBUG && !getenv("BD_DEBUG"))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (level >= BD_LOG_ERROR)
        bd_log_warn("error: %s", msg);
    else if (level == BD_LOG_WARN)
        bd_log_warn("%s", msg);
    else
        bd_log_info("%s", msg);
}

static float *host_tensor_data(bd_tensor *t) { return t->data; }
static int host_tensor_ndim(const bd_tensor *t) { return t->ndim; }
static int64_t host_tensor_numel(const bd_tensor *t) { return t->numel; }

/* Dims past ndim read as 1, like the tensor's own shape array. */
static int64_t host_tensor_dim(const bd_tensor *t, int i)
{
    return i >= 0 && i < BD_MAX_DIMS ? t->shape[i] : 1;
}

static bd_status host_upsample2x(bd_tape *tp, bd_tensor *x, int mode,
                                 bd_tensor **y)
{
    if (mode != BD_PLUGIN_UPSAMPLE_NEAREST && mode != BD_PLUGIN_UPSAMPLE_BILINEAR)
        return bd_fail(BD_E_ARG, "upsample2x: mode %d, expected %d (nearest) or"
                       " %d (bilinear)", mode, BD_PLUGIN_UPSAMPLE_NEAREST,
                       BD_PLUGIN_UPSAMPLE_BILINEAR);
    return bd_upsample2x(tp, x, mode == BD_PLUGIN_UPSAMPLE_BILINEAR
                                    ? BD_UPSAMPLE_BILINEAR : BD_UPSAMPLE_NEAREST, y);
}

static bd_tensor *host_taps_get(const bd_taps *taps, const char *name)
{
    for (int i = 0; taps && i < taps->n; i++)
        if (strcmp(taps->names[i], name) == 0)
            return taps->values[i];
    return NULL;
}

static const bd_host host = {
    .struct_size = sizeof(bd_host),
    .abi_version = BD_ABI_VERSION,

    .fail = bd_fail,
    .last_error = bd_last_error,
    .log = host_log,

    .tensor_new = bd_tensor_new,
    .tensor_free = bd_tensor_free,
    .tape_tensor = bd_tape_tensor,
    .tensor_data = host_tensor_data,
    .tensor_ndim = host_tensor_ndim,
    .tensor_dim = host_tensor_dim,
    .tensor_numel = host_tensor_numel,

    .linear = bd_linear,
    .matmul = bd_matmul,
    .conv2d = bd_conv2d,
    .group_norm = bd_group_norm,
    .layer_norm = bd_layer_norm,
    .silu = bd_silu,
    .gelu = bd_gelu,
    .add = bd_add,
    .mul = bd_mul,
    .scale = bd_scale,
    .reshape = bd_reshape,
    .concat = bd_concat,
    .max_pool = bd_max_pool,
    .avg_pool = bd_avg_pool,
    .upsample2x = host_upsample2x,
    .softmax = bd_softmax,
    .to_tokens = bd_to_tokens,
    .from_tokens = bd_from_tokens,
    .attention = bd_attention,
    .sinusoidal = bd_sinusoidal,
    .sum = bd_sum,
    .mean = bd_mean,
    .mse = bd_mse,

    .param = bd_params_add,
    .init_uniform = bd_init_uniform,
    .init_normal = bd_init_normal,
    .init_fill = bd_tensor_fill,

    .config_int = bd_config_int,
    .config_num = bd_config_num,
    .config_str = bd_config_str,
    .config_choice = bd_config_choice,

    .taps_offer = bd_taps_offer,
    .taps_get = host_taps_get,

    .result_number = bd_metric_result_add_number,
    .result_array = bd_metric_result_add_array,

    .tape_release = bd_tape_release,
};

const bd_host *bd_plugin_host(void) { return &host; }
