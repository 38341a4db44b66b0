/* Denoiser "mlp": a small fully connected denoiser, and the tutorial for
 * writing a plugin. Read it top to bottom.
 *
 * The network, on images flattened to D = channels * size * size values:
 *
 *   e   = [enc(t), enc(x), enc(y)]              (N, 3E) sinusoidal encodings
 *   h   = GELU(W_in x_t + W_emb e + b_in)       (N, H)
 *   h   = GELU(W_k h + b_k), k = 1 .. depth-1   (N, H)
 *   out = W_out h + b_out, as (N, C, S, S)      the predicted noise
 *
 * Config: hidden H (256), depth (2), emb E (32), channels (1), size (32).
 *
 * 1. Include bd/plugin.h and nothing else from bd: a plugin never links
 *    libbd. Everything it needs comes through the host table `h`. In the
 *    bd tree, helpers shared by plugins (here the conditioning e, as the
 *    unet and factorized denoisers compute it) are header-only functions
 *    over that table in plugins/common/; a plugin outside the tree copies
 *    the header or writes its own.
 * 2. create() reads its config with typed getters, adds named parameters
 *    and initialises them from the rng the host hands over (so a seed
 *    reproduces a model), and keeps its state in a struct it allocates.
 * 3. forward() composes host ops on the tape. There is no backward code:
 *    the core records each op and differentiates the whole pass.
 *    Temporaries come from the tape (h->tape_tensor), never from malloc:
 *    they vanish at the next step.
 * 4. bd_plugin_init() returns static descriptors: what the plugin provides.
 * Build it with bd_add_plugin(mlp mlp.c) in CMake (see cmake/bdPlugin.cmake
 * and tests/out_of_tree for a plugin outside the bd tree). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bd/plugin.h"
#include "common/condition.h"

#define MAX_DEPTH 8

typedef struct mlp {
    const bd_host *h;                 /* kept for forward */
    int64_t        hidden, depth, emb, channels, size;
    bd_tensor     *w_in, *w_emb, *b_in;
    bd_tensor     *w[MAX_DEPTH], *b[MAX_DEPTH]; /* hidden layers 1 .. depth-1 */
    bd_tensor     *w_out, *b_out;
} mlp;

/* A parameter named `name`, uniform in +-1/sqrt(fan_in) (PyTorch's default
 * for Linear). Names are checkpoint names: keep them stable. */
static bd_status param(const bd_host *h, bd_params *p, bd_rng *rng,
                       const char *name, int64_t rows, int64_t cols,
                       int64_t fan_in, bd_tensor **out)
{
    const int64_t shape[2] = {rows, cols};
    BD_TRY(h->param(p, name, cols ? 2 : 1, shape, out));
    h->init_uniform(*out, rng, 1.0f / sqrtf((float)fan_in));
    return BD_OK;
}

static bd_status make_params(mlp *m, bd_params *p, bd_rng *rng)
{
    const bd_host *h = m->h;
    const int64_t D = m->channels * m->size * m->size, H = m->hidden;
    const int64_t E3 = 3 * m->emb;
    BD_TRY(param(h, p, rng, "in.weight", H, D, D, &m->w_in));
    BD_TRY(param(h, p, rng, "in.bias", H, 0, D, &m->b_in));
    BD_TRY(param(h, p, rng, "emb.weight", H, E3, E3, &m->w_emb));
    for (int k = 1; k < m->depth; k++) {
        char name[32];
        snprintf(name, sizeof name, "hidden%d.weight", k);
        BD_TRY(param(h, p, rng, name, H, H, H, &m->w[k]));
        snprintf(name, sizeof name, "hidden%d.bias", k);
        BD_TRY(param(h, p, rng, name, H, 0, H, &m->b[k]));
    }
    BD_TRY(param(h, p, rng, "out.weight", D, H, H, &m->w_out));
    return param(h, p, rng, "out.bias", D, 0, H, &m->b_out);
}

/* Step 2. Errors: h->fail(status, fmt, ...) records the message and returns
 * the status. A failed create frees what it made; the host ignores state. */
static bd_status mlp_create(const bd_host *h, bd_config *cfg, bd_params *params,
                            bd_rng *rng, bd_denoiser_instance *inst)
{
    mlp *m = calloc(1, sizeof *m);
    if (!m)
        return h->fail(BD_E_NOMEM, "mlp: out of memory");
    m->h = h;
    bd_status s = h->config_int(cfg, "hidden", 256, 1, 1 << 16, &m->hidden);
    if (s == BD_OK)
        s = h->config_int(cfg, "depth", 2, 1, MAX_DEPTH, &m->depth);
    if (s == BD_OK)
        s = h->config_int(cfg, "emb", 32, 2, 4096, &m->emb);
    if (s == BD_OK)
        s = h->config_int(cfg, "channels", 1, 1, 64, &m->channels);
    if (s == BD_OK)
        s = h->config_int(cfg, "size", 32, 1, 1024, &m->size);
    if (s == BD_OK && m->emb % 2)
        s = h->fail(BD_E_ARG, "mlp: emb = %lld, expected an even number",
                    (long long)m->emb);
    if (s == BD_OK)
        s = make_params(m, params, rng);
    if (s != BD_OK) {
        free(m);
        return s;
    }
    inst->state = m;
    inst->channels = m->channels;
    inst->size = m->size;
    return BD_OK;
}

static void mlp_destroy(void *state) { free(state); }

/* Step 3. x_t: (N, C, S, S), t: (N), cond: (N, 2) -> out: (N, C, S, S).
 * Check what the host cannot know (the shapes this instance was built for);
 * the ops check the rest. Offer activations by name: the caller keeps the
 * ones it asked for. */
static bd_status mlp_forward(void *state, bd_tape *tp, bd_tensor *x_t,
                             bd_tensor *t, bd_tensor *cond, bd_taps *taps,
                             bd_tensor **out)
{
    const mlp *m = state;
    const bd_host *h = m->h;
    const int64_t n = h->tensor_dim(x_t, 0);
    const int64_t D = m->channels * m->size * m->size, flat[2] = {n, D};
    if (h->tensor_numel(x_t) != n * D || h->tensor_numel(cond) != 2 * n)
        return h->fail(BD_E_ARG, "mlp: x_t has %lld values and cond %lld for"
                       " %lld samples, expected %lld and %lld per sample",
                       (long long)h->tensor_numel(x_t),
                       (long long)h->tensor_numel(cond), (long long)n,
                       (long long)D, 2LL);
    bd_tensor *x, *e, *a;
    BD_TRY(h->reshape(tp, x_t, 2, flat, &x));
    BD_TRY(cond_embed(h, tp, t, cond, m->emb, &e));    /* (N, 3E) */
    BD_TRY(h->linear(tp, x, m->w_in, m->b_in, &x));
    BD_TRY(h->linear(tp, e, m->w_emb, NULL, &a));
    BD_TRY(h->add(tp, x, a, &x));
    BD_TRY(h->gelu(tp, x, &x));
    for (int k = 1; k < m->depth; k++) {
        BD_TRY(h->linear(tp, x, m->w[k], m->b[k], &x));
        BD_TRY(h->gelu(tp, x, &x));
    }
    h->taps_offer(taps, "hidden", x);
    BD_TRY(h->linear(tp, x, m->w_out, m->b_out, &x));
    const int64_t image[4] = {n, m->channels, m->size, m->size};
    return h->reshape(tp, x, 4, image, out);
}

/* Step 4. Descriptors start with BD_DESC_HEADER (their size and ABI
 * version), so the host can check them and later versions can grow them. */
static const char *const TAPS[] = {"hidden", NULL};

static const bd_denoiser_desc MLP = {
    BD_DESC_HEADER(bd_denoiser_desc),
    .name = "mlp",
    .description = "small fully connected denoiser on flattened images",
    .taps = TAPS,
    .create = mlp_create,
    .forward = mlp_forward,
    .destroy = mlp_destroy,
};

static const bd_denoiser_desc *const DENOISERS[] = {&MLP};

static const bd_plugin_info INFO = {
    BD_PLUGIN_INFO_HEADER,
    .name = "mlp",
    .version = "1.0",
    .description = "fully connected denoiser (the plugin tutorial)",
    .n_denoisers = 1,
    .denoisers = DENOISERS,
};

/* The entry point only describes; it does no work. Plugins whose entry
 * point is just this write BD_PLUGIN_DEFINE(INFO) instead (bd/plugin.h). */
bd_status bd_plugin_init(const bd_host *host, const bd_plugin_info **info,
                         char *err, size_t err_len)
{
    (void)host, (void)err, (void)err_len;
    *info = &INFO;
    return BD_OK;
}
