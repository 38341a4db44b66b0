/* Denoiser "tinyconv": a sample plugin built outside the bd tree.
 *
 *   h   = GELU(conv3x3(x_t) + Linear(enc(t)))    (N, W, S, S)
 *   out = conv3x3(h)                             (N, C, S, S)
 *
 * Config: width W (16), channels C (1), size S (8). It ignores the label,
 * so it is a toy: the point is the build (see CMakeLists.txt). */
#include <math.h>
#include <stdlib.h>

#include "bd/plugin.h"

typedef struct tinyconv {
    const bd_host *h;
    int64_t        width, channels, size;
    bd_tensor     *conv1, *conv2, *emb_w, *emb_b;
} tinyconv;

#define EMB 16

static bd_status param(const bd_host *h, bd_params *p, bd_rng *rng,
                       const char *name, int ndim, const int64_t *shape,
                       int64_t fan_in, bd_tensor **out)
{
    BD_TRY(h->param(p, name, ndim, shape, out));
    h->init_uniform(*out, rng, 1.0f / sqrtf((float)fan_in));
    return BD_OK;
}

static bd_status make(tinyconv *m, bd_config *cfg, bd_params *p, bd_rng *rng)
{
    const bd_host *h = m->h;
    BD_TRY(h->config_int(cfg, "width", 16, 1, 1024, &m->width));
    BD_TRY(h->config_int(cfg, "channels", 1, 1, 64, &m->channels));
    BD_TRY(h->config_int(cfg, "size", 8, 1, 1024, &m->size));
    const int64_t W = m->width, C = m->channels;
    const int64_t c1[4] = {W, C, 3, 3}, c2[4] = {C, W, 3, 3}, e[2] = {W, EMB};
    BD_TRY(param(h, p, rng, "conv1.weight", 4, c1, 9 * C, &m->conv1));
    BD_TRY(param(h, p, rng, "conv2.weight", 4, c2, 9 * W, &m->conv2));
    BD_TRY(param(h, p, rng, "emb.weight", 2, e, EMB, &m->emb_w));
    return param(h, p, rng, "emb.bias", 1, e, EMB, &m->emb_b);
}

static bd_status tiny_create(const bd_host *h, bd_config *cfg, bd_params *p,
                             bd_rng *rng, bd_denoiser_instance *inst)
{
    tinyconv *m = calloc(1, sizeof *m);
    if (!m)
        return h->fail(BD_E_NOMEM, "tinyconv: out of memory");
    m->h = h;
    bd_status s = make(m, cfg, p, rng);
    if (s != BD_OK) {
        free(m);
        return s;
    }
    inst->state = m;
    inst->channels = m->channels;
    inst->size = m->size;
    return BD_OK;
}

static void tiny_destroy(void *state) { free(state); }

/* x_t: (N, C, S, S), t: (N) -> (N, C, S, S) */
static bd_status tiny_forward(void *state, bd_tape *tp, bd_tensor *x_t,
                              bd_tensor *t, bd_tensor *cond, bd_taps *taps,
                              bd_tensor **out)
{
    const tinyconv *m = state;
    const bd_host *h = m->h;
    (void)cond;
    bd_tensor *x, *e;
    const int64_t col[4] = {h->tensor_dim(t, 0), m->width, 1, 1};
    BD_TRY(h->sinusoidal(tp, t, EMB, 10000.0f, &e));
    BD_TRY(h->linear(tp, e, m->emb_w, m->emb_b, &e));
    BD_TRY(h->reshape(tp, e, 4, col, &e));
    BD_TRY(h->conv2d(tp, x_t, m->conv1, NULL, 1, 1, &x));
    BD_TRY(h->add(tp, x, e, &x));
    BD_TRY(h->gelu(tp, x, &x));
    h->taps_offer(taps, "hidden", x);
    return h->conv2d(tp, x, m->conv2, NULL, 1, 1, out);
}

static const char *const TAPS[] = {"hidden", NULL};

static const bd_denoiser_desc TINYCONV = {
    BD_DESC_HEADER(bd_denoiser_desc),
    .name = "tinyconv",
    .description = "two 3x3 convs and a timestep embedding (out-of-tree sample)",
    .taps = TAPS,
    .create = tiny_create,
    .forward = tiny_forward,
    .destroy = tiny_destroy,
};

static const bd_denoiser_desc *const DENOISERS[] = {&TINYCONV};

static const bd_plugin_info INFO = {
    BD_PLUGIN_INFO_HEADER,
    .name = "tinyconv",
    .version = "0.1",
    .description = "a plugin built outside the bd tree",
    .n_denoisers = 1,
    .denoisers = DENOISERS,
};

BD_PLUGIN_DEFINE(INFO)
