/* Denoiser "unet": the conditional UNet of the study (docs/PAPER.md, "Model").
 *
 *   stem      double conv channels -> C                      size
 *   down1..3  max-pool, double convs, + emb; C->2C->4C->4C   size/2, /4, /8
 *             each followed by self-attention; down3 = "layer4"
 *   mid1..3   double convs 4C->8C->8C->4C                    size/8
 *   up1..3    bilinear 2x, concat the skip, double convs, + emb, attention
 *             8C->2C, 4C->C, 2C->C                           size/4, /2, /1
 *   head      1x1 conv C -> channels
 *   emb       [enc(t), enc(x), enc(y)], sinusoidal (base 10000) of size E
 *             each; every block adds Linear(SiLU(emb)) per channel.
 *
 * Taps (activations a script can read, bd.sample / bd.represent):
 *   stem, down1, down2, up1, up2, up3   each block's output
 *   down3 = layer4   the last down block's output (4C x size/8 x size/8,
 *                    after its embedding and its attention): docs/PAPER.md's
 *                    layer 4
 *   layer4_pre       the same block's double convs' output before its
 *                    Linear(SiLU(emb)) is added (and before its attention):
 *                    what the image path holds at that depth, though the
 *                    label has entered through down1 and down2's embeddings
 *   bottleneck       after mid1..3
 *
 * Config: width C (64), attention 1/0 (1), attention_blocks (all six:
 * "down1,down2,down3,up1,up2,up3"), emb E (256), channels (1), size (32, a
 * multiple of 8). At C = 64, 32x32: 23.79M parameters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/condition.h"
#include "unet.h"

#define LEVELS 3

typedef struct unet {
    const bd_host *h;
    int64_t        width, emb, channels, size;
    double_conv    stem;
    block          down[LEVELS];
    double_conv    mid[LEVELS];
    block          up[LEVELS];
    bd_tensor     *head_w, *head_b;
} unet;

/* Blocks that may attend, in the order of attend[] below. */
static const char *const BLOCKS[] = {"down1", "down2", "down3",
                                     "up1", "up2", "up3", NULL};
static const char *const TAPS[] = {"stem", "down1", "down2", "down3", "layer4",
                                   "layer4_pre", "bottleneck", "up1", "up2", "up3",
                                   NULL};

/* Channel multiples of C: {in, out} of each down block, mid conv, up block. */
static const int64_t DOWN_IO[LEVELS][2] = {{1, 2}, {2, 4}, {4, 4}};
static const int64_t MID_IO[LEVELS][2]  = {{4, 8}, {8, 8}, {8, 4}};
static const int64_t UP_IO[LEVELS][2]   = {{8, 2}, {4, 1}, {2, 1}};

/* ---- config ----------------------------------------------------------------- */

/* attention (on/off) and attention_blocks (which, comma-separated). */
static bd_status read_attention(const bd_host *h, bd_config *cfg, bool attend[6])
{
    int64_t on;
    const char *list;
    BD_TRY(h->config_int(cfg, "attention", 1, 0, 1, &on));
    BD_TRY(h->config_str(cfg, "attention_blocks", "down1,down2,down3,up1,up2,up3",
                         &list));
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        int i = 0;
        while (BLOCKS[i] && !(strlen(BLOCKS[i]) == len && !strncmp(BLOCKS[i], p, len)))
            i++;
        if (!BLOCKS[i])
            return h->fail(BD_E_ARG, "unet: attention_blocks names '%.*s',"
                           " expected blocks from down1, down2, down3, up1,"
                           " up2, up3", (int)len, p);
        attend[i] = on;
        p += len + (p[len] == ',');
    }
    return BD_OK;
}

static bd_status read_config(const bd_host *h, bd_config *cfg, unet *u,
                             bool attend[6])
{
    BD_TRY(h->config_int(cfg, "width", 64, 1, 4096, &u->width));
    BD_TRY(h->config_int(cfg, "emb", 256, 2, 8192, &u->emb));
    BD_TRY(h->config_int(cfg, "channels", 1, 1, 64, &u->channels));
    BD_TRY(h->config_int(cfg, "size", 32, 8, 4096, &u->size));
    BD_TRY(read_attention(h, cfg, attend));
    if (u->size % 8)
        return h->fail(BD_E_ARG, "unet: size = %lld, expected a multiple of 8"
                       " (three 2x down-samplings)", (long long)u->size);
    if (u->emb % 2)
        return h->fail(BD_E_ARG, "unet: emb = %lld, expected an even number"
                       " (sines and cosines)", (long long)u->emb);
    for (int i = 0; i < 6; i++)
        if (attend[i] && u->width % 4)
            return h->fail(BD_E_ARG, "unet: width = %lld, expected a multiple"
                           " of 4 (4 attention heads) while attention is on",
                           (long long)u->width);
    return BD_OK;
}

/* ---- parameters ------------------------------------------------------------- */

static bd_status make_layers(unet *u, builder *b, const bool attend[6])
{
    const int64_t C = u->width, E3 = 3 * u->emb;
    char scope[32];
    BD_TRY(double_conv_make(b, "stem", u->channels, C, C, false, &u->stem));
    for (int i = 0; i < LEVELS; i++) {
        snprintf(scope, sizeof scope, "down%d", i + 1);
        BD_TRY(block_make(b, scope, C * DOWN_IO[i][0], C * DOWN_IO[i][1],
                          C * DOWN_IO[i][1], E3, attend[i], &u->down[i]));
        snprintf(scope, sizeof scope, "mid%d", i + 1);
        BD_TRY(double_conv_make(b, scope, C * MID_IO[i][0], C * MID_IO[i][1],
                                C * MID_IO[i][1], false, &u->mid[i]));
        snprintf(scope, sizeof scope, "up%d", i + 1);
        BD_TRY(block_make(b, scope, C * UP_IO[i][0], C * UP_IO[i][1],
                          C * UP_IO[i][0] / 2, E3, attend[LEVELS + i], &u->up[i]));
    }
    return dense_make(b, "head", u->channels, C, 1, true, &u->head_w, &u->head_b);
}

static bd_status unet_create(const bd_host *h, bd_config *cfg, bd_params *params,
                             bd_rng *rng, bd_denoiser_instance *inst)
{
    unet *u = calloc(1, sizeof *u);
    if (!u)
        return h->fail(BD_E_NOMEM, "unet: out of memory");
    u->h = h;
    bool attend[6] = {false};
    builder b = {.h = h, .params = params, .rng = rng};
    bd_status s = read_config(h, cfg, u, attend);
    if (s == BD_OK)
        s = make_layers(u, &b, attend);
    if (s != BD_OK) {
        free(u);
        return s;
    }
    h->log(BD_LOG_INFO, "unet: width %lld, %lldx%lld, %lld parameters",
           (long long)u->width, (long long)u->size, (long long)u->size,
           (long long)b.count);
    inst->state = u;
    inst->channels = u->channels;
    inst->size = u->size;
    return BD_OK;
}

static void unet_destroy(void *state) { free(state); }

/* ---- forward ---------------------------------------------------------------- */

static bd_status check_inputs(const unet *u, bd_tensor *x, bd_tensor *t,
                              bd_tensor *cond)
{
    const bd_host *h = u->h;
    const int64_t n = h->tensor_dim(x, 0);
    if (h->tensor_ndim(x) != 4 || h->tensor_dim(x, 1) != u->channels
        || h->tensor_dim(x, 2) != u->size || h->tensor_dim(x, 3) != u->size)
        return h->fail(BD_E_ARG, "unet: x_t has %d dims (%lld, %lld, %lld, %lld),"
                       " expected (N, %lld, %lld, %lld)", h->tensor_ndim(x),
                       (long long)n, (long long)h->tensor_dim(x, 1),
                       (long long)h->tensor_dim(x, 2), (long long)h->tensor_dim(x, 3),
                       (long long)u->channels, (long long)u->size,
                       (long long)u->size);
    return cond_check(h, "unet", n, t, cond);
}

/* t: (N), cond: (N, 2) -> semb: (N, 3E) = SiLU([enc(t), enc(x), enc(y)]) */
static bd_status embed(const unet *u, bd_tape *tp, bd_tensor *t, bd_tensor *cond,
                       bd_tensor **semb)
{
    bd_tensor *e;
    BD_TRY(cond_embed(u->h, tp, t, cond, u->emb, &e));
    BD_TRY(u->h->silu(tp, e, semb));
    u->h->tape_release(tp, e);
    return BD_OK;
}

/* The down path: skip[i] the input of down block i + 1 before its pooling,
 * *pre the last block's double convs' output (the caller hands it back),
 * x: (N, C, size, size) -> (N, 4C, size/8, size/8) */
static bd_status down_path(const unet *u, bd_tape *tp, bd_tensor *semb,
                           bd_taps *taps, bd_tensor **skip, bd_tensor **pre,
                           bd_tensor **x)
{
    const bd_host *h = u->h;
    bd_tensor *pooled;
    for (int i = 0; i < LEVELS; i++) {
        skip[i] = *x;
        BD_TRY(h->max_pool(tp, *x, 2, &pooled));
        BD_TRY(block_forward(h, &u->down[i], tp, pooled, semb,
                             i == LEVELS - 1 ? pre : NULL, x));
        h->tape_release(tp, pooled);
        h->taps_offer(taps, BLOCKS[i], *x);
    }
    return BD_OK;
}

/* The up path, handing each skip back once read: x: (N, 4C, size/8,
 * size/8) -> (N, C, size, size) */
static bd_status up_path(const unet *u, bd_tape *tp, bd_tensor *semb,
                         bd_taps *taps, bd_tensor **skip, bd_tensor **x)
{
    const bd_host *h = u->h;
    bd_tensor *up, *cat;
    for (int i = 0; i < LEVELS; i++) {
        BD_TRY(h->upsample2x(tp, *x, BD_PLUGIN_UPSAMPLE_BILINEAR, &up));
        h->tape_release(tp, *x);
        BD_TRY(h->concat(tp, skip[LEVELS - 1 - i], up, &cat));
        h->tape_release(tp, skip[LEVELS - 1 - i]);
        h->tape_release(tp, up);
        BD_TRY(block_forward(h, &u->up[i], tp, cat, semb, NULL, x));
        h->tape_release(tp, cat);
        h->taps_offer(taps, BLOCKS[LEVELS + i], *x);
    }
    return BD_OK;
}

static bd_status unet_forward(void *state, bd_tape *tp, bd_tensor *x_t,
                              bd_tensor *t, bd_tensor *cond, bd_taps *taps,
                              bd_tensor **out)
{
    const unet *u = state;
    const bd_host *h = u->h;
    BD_TRY(check_inputs(u, x_t, t, cond));
    bd_tensor *semb, *x, *y, *pre = NULL, *skip[LEVELS];
    BD_TRY(embed(u, tp, t, cond, &semb));
    BD_TRY(double_conv_forward(h, &u->stem, tp, x_t, &x));
    h->taps_offer(taps, "stem", x);
    BD_TRY(down_path(u, tp, semb, taps, skip, &pre, &x));
    h->taps_offer(taps, "layer4_pre", pre);
    h->taps_offer(taps, "layer4", x);
    h->tape_release(tp, pre);
    for (int i = 0; i < LEVELS; i++) {
        BD_TRY(double_conv_forward(h, &u->mid[i], tp, x, &y));
        h->tape_release(tp, x);
        x = y;
    }
    h->taps_offer(taps, "bottleneck", x);
    BD_TRY(up_path(u, tp, semb, taps, skip, &x));
    BD_TRY(h->conv2d(tp, x, u->head_w, u->head_b, 1, 0, out));
    h->tape_release(tp, x);
    h->tape_release(tp, semb);
    return BD_OK;
}

/* ---- the plugin --------------------------------------------------------------- */

static const bd_denoiser_desc UNET = {
    BD_DESC_HEADER(bd_denoiser_desc),
    .name = "unet",
    .description = "conditional UNet of the study: 3 down/up blocks with"
                   " self-attention, GroupNorm + GELU, sinusoidal t, x, y",
    .taps = TAPS,
    .create = unet_create,
    .forward = unet_forward,
    .destroy = unet_destroy,
};

static const bd_denoiser_desc *const DENOISERS[] = {&UNET};

static const bd_plugin_info INFO = {
    BD_PLUGIN_INFO_HEADER,
    .name = "unet",
    .version = "1.0",
    .description = "the paper's UNet denoiser",
    .n_denoisers = 1,
    .denoisers = DENOISERS,
};

BD_PLUGIN_DEFINE(INFO)
