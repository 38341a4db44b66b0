/* Denoiser "factorized": x and y reach the image through separate pathways
 * that meet only in an outer product, so a bump's column is decided by x
 * alone and its row by y alone.
 *
 * Why. A training image is a Gaussian bump, exp(-(dx^2 + dy^2) / 2s^2) =
 * exp(-dx^2 / 2s^2) exp(-dy^2 / 2s^2): a column profile that depends on x
 * only times a row profile that depends on y only (scaled to [-1, 1], plus
 * a constant). The ideal conditional noise prediction is a(t) x_t - b(t) x0
 * (x0 fixed by the label), so a net of the form
 *
 *   out = head([ trunk(x_t, t),  P(x, t)[col] * Q(y, t)[row] ])
 *
 * can represent it exactly, while x can only ever say "these columns" and y
 * "these rows". Every training image teaches P about its x whatever its y,
 * so the amount of y data should not limit how fast x is learned: the
 * inductive bias the factorization experiment (scripts/factorization.lua)
 * tests against the vanilla unet, which mixes x, y and the image in every
 * block. The unet's own conditioning (an embedding added per channel) has no
 * place to put this bias, hence a separate plugin rather than a unet option.
 *
 *   trunk     3x3 conv channels -> C; `depth` residual blocks: 3x3 conv,
 *             GroupNorm(1), FiLM from t (per-channel scale and shift),
 *             GELU, 3x3 conv, + input. Never sees the label.
 *   x path    P = Linear(GELU(Linear([enc(t), enc(x)])))  -> (N, K, 1, S)
 *   y path    Q = the same on [enc(t), enc(y)]           -> (N, K, S, 1)
 *   template  T = P * Q (broadcast)                       -> (N, K, S, S)
 *   head      1x1 conv on [trunk, T]: C + K -> channels
 *
 * Guarantee (tests/test_plugin_factorized.c): at fixed x_t, t and x, the
 * change of the output when y changes is sum_k v_k P_k(x)[col] dQ_k[row];
 * with rank K = 1 it is one column profile, x's, times a row profile: y can
 * rescale columns but never move anything from one column to another.
 *
 * Taps: "trunk" (N, C, S, S); "x_profile" P, "y_profile" Q; "layer4"
 * [P, Q] flattened to (N, 2 K S): where the net holds the label, the
 * representation the manifold metric reads (the trunk is label-blind).
 *
 * Config: width C (16), depth (2), rank K (2), hidden (64, the pathways'
 * hidden size), emb E (64, each sinusoidal encoding, base 10000), channels
 * (1), size S (32). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "bd/plugin.h"
#include "common/condition.h"

#define MAX_DEPTH 16
#define NORM_EPS  1e-5f

/* One path from [enc(t), enc(label)] to K profiles of S values. */
typedef struct pathway {
    bd_tensor *w1, *b1, *w2, *b2;
} pathway;

/* h + conv(GELU(FiLM_t(GroupNorm(conv(h))))) */
typedef struct res_block {
    bd_tensor *conv1, *norm_w, *norm_b, *scale_w, *scale_b, *shift_w, *conv2;
} res_block;

typedef struct factorized {
    const bd_host *h;
    int64_t        width, depth, rank, hidden, emb, channels, size;
    int64_t        count;  /* parameters */
    bd_tensor     *stem_w, *stem_b;
    res_block      blocks[MAX_DEPTH];
    pathway        px, py;
    bd_tensor     *head_w, *head_b;
} factorized;

static const char *const TAPS[] = {"trunk", "x_profile", "y_profile", "layer4",
                                   NULL};

/* ---- parameters ------------------------------------------------------------ */

/* A parameter `name` (printf-style), U(-bound, bound); bound 0 leaves it 0. */
static bd_status param(factorized *f, bd_params *p, bd_rng *rng, float bound,
                       int ndim, const int64_t *shape, bd_tensor **out,
                       const char *fmt, ...) __attribute__((format(printf, 8, 9)));

static bd_status param(factorized *f, bd_params *p, bd_rng *rng, float bound,
                       int ndim, const int64_t *shape, bd_tensor **out,
                       const char *fmt, ...)
{
    char name[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    BD_TRY(f->h->param(p, name, ndim, shape, out));
    if (bound > 0)
        f->h->init_uniform(*out, rng, bound);
    f->count += f->h->tensor_numel(*out);
    return BD_OK;
}

/* PyTorch's default bound for a layer with fan_in inputs. */
static float fan(int64_t fan_in) { return 1.0f / sqrtf((float)fan_in); }

static bd_status block_make(factorized *f, bd_params *p, bd_rng *rng, int i,
                            res_block *b)
{
    const int64_t C = f->width, E = f->emb;
    const int64_t conv[4] = {C, C, 3, 3}, emb[2] = {C, E}, per_c[1] = {C};
    BD_TRY(param(f, p, rng, fan(9 * C), 4, conv, &b->conv1, "block%d.conv1.weight", i));
    BD_TRY(param(f, p, rng, 0, 1, per_c, &b->norm_w, "block%d.norm.weight", i));
    BD_TRY(param(f, p, rng, 0, 1, per_c, &b->norm_b, "block%d.norm.bias", i));
    f->h->init_fill(b->norm_w, 1.0f);
    /* FiLM starts near the identity: scale 1 +- a little, shift small */
    BD_TRY(param(f, p, rng, fan(E), 2, emb, &b->scale_w, "block%d.scale.weight", i));
    BD_TRY(param(f, p, rng, 0, 1, per_c, &b->scale_b, "block%d.scale.bias", i));
    f->h->init_fill(b->scale_b, 1.0f);
    BD_TRY(param(f, p, rng, fan(E), 2, emb, &b->shift_w, "block%d.shift.weight", i));
    return param(f, p, rng, fan(9 * C), 4, conv, &b->conv2, "block%d.conv2.weight", i);
}

static bd_status pathway_make(factorized *f, bd_params *p, bd_rng *rng,
                              const char *name, pathway *w)
{
    const int64_t H = f->hidden, in = 2 * f->emb, out = f->rank * f->size;
    const int64_t s1[2] = {H, in}, s2[2] = {out, H};
    BD_TRY(param(f, p, rng, fan(in), 2, s1, &w->w1, "%s.fc1.weight", name));
    BD_TRY(param(f, p, rng, fan(in), 1, s1, &w->b1, "%s.fc1.bias", name));
    BD_TRY(param(f, p, rng, fan(H), 2, s2, &w->w2, "%s.fc2.weight", name));
    return param(f, p, rng, fan(H), 1, s2, &w->b2, "%s.fc2.bias", name);
}

static bd_status make_params(factorized *f, bd_params *p, bd_rng *rng)
{
    const int64_t C = f->width, K = f->rank, ch = f->channels;
    const int64_t stem[4] = {C, ch, 3, 3}, head[4] = {ch, C + K, 1, 1};
    BD_TRY(param(f, p, rng, fan(9 * ch), 4, stem, &f->stem_w, "stem.weight"));
    BD_TRY(param(f, p, rng, fan(9 * ch), 1, stem, &f->stem_b, "stem.bias"));
    for (int i = 0; i < f->depth; i++)
        BD_TRY(block_make(f, p, rng, i + 1, &f->blocks[i]));
    BD_TRY(pathway_make(f, p, rng, "x_path", &f->px));
    BD_TRY(pathway_make(f, p, rng, "y_path", &f->py));
    BD_TRY(param(f, p, rng, fan(C + K), 4, head, &f->head_w, "head.weight"));
    return param(f, p, rng, fan(C + K), 1, head, &f->head_b, "head.bias");
}

/* ---- config ------------------------------------------------------------------ */

static bd_status read_config(const bd_host *h, bd_config *cfg, factorized *f)
{
    BD_TRY(h->config_int(cfg, "width", 16, 1, 4096, &f->width));
    BD_TRY(h->config_int(cfg, "depth", 2, 0, MAX_DEPTH, &f->depth));
    BD_TRY(h->config_int(cfg, "rank", 2, 1, 64, &f->rank));
    BD_TRY(h->config_int(cfg, "hidden", 64, 1, 1 << 16, &f->hidden));
    BD_TRY(h->config_int(cfg, "emb", 64, 2, 8192, &f->emb));
    BD_TRY(h->config_int(cfg, "channels", 1, 1, 64, &f->channels));
    BD_TRY(h->config_int(cfg, "size", 32, 1, 4096, &f->size));
    if (f->emb % 2)
        return h->fail(BD_E_ARG, "factorized: emb = %lld, expected an even"
                       " number (sines and cosines)", (long long)f->emb);
    return BD_OK;
}

static bd_status factorized_create(const bd_host *h, bd_config *cfg,
                                   bd_params *params, bd_rng *rng,
                                   bd_denoiser_instance *inst)
{
    factorized *f = calloc(1, sizeof *f);
    if (!f)
        return h->fail(BD_E_NOMEM, "factorized: out of memory");
    f->h = h;
    bd_status s = read_config(h, cfg, f);
    if (s == BD_OK)
        s = make_params(f, params, rng);
    if (s != BD_OK) {
        free(f);
        return s;
    }
    h->log(BD_LOG_INFO, "factorized: width %lld, depth %lld, rank %lld, %lldx%lld,"
           " %lld parameters", (long long)f->width, (long long)f->depth,
           (long long)f->rank, (long long)f->size, (long long)f->size,
           (long long)f->count);
    inst->state = f;
    inst->channels = f->channels;
    inst->size = f->size;
    return BD_OK;
}

static void factorized_destroy(void *state) { free(state); }

/* ---- forward ----------------------------------------------------------------- */

static bd_status check_inputs(const factorized *f, bd_tensor *x, bd_tensor *t,
                              bd_tensor *cond)
{
    const bd_host *h = f->h;
    const int64_t n = h->tensor_dim(x, 0);
    if (h->tensor_ndim(x) != 4 || h->tensor_dim(x, 1) != f->channels
        || h->tensor_dim(x, 2) != f->size || h->tensor_dim(x, 3) != f->size)
        return h->fail(BD_E_ARG, "factorized: x_t has %lld values in %d dims,"
                       " expected (N, %lld, %lld, %lld)",
                       (long long)h->tensor_numel(x), h->tensor_ndim(x),
                       (long long)f->channels, (long long)f->size,
                       (long long)f->size);
    return cond_check(h, "factorized", n, t, cond);
}

/* et: (N, E) = enc(t), es: (N, E) = enc(label) -> profiles: (N, K, rows, cols),
 * rows * cols = S */
static bd_status pathway_forward(const factorized *f, const pathway *w, bd_tape *tp,
                                 bd_tensor *et, bd_tensor *es, int64_t rows,
                                 int64_t cols, bd_tensor **y)
{
    const bd_host *h = f->h;
    const int64_t shape[4] = {h->tensor_dim(es, 0), f->rank, rows, cols};
    bd_tensor *a;
    BD_TRY(h->concat(tp, et, es, &a));                       /* (N, 2E) */
    BD_TRY(h->linear(tp, a, w->w1, w->b1, &a));
    BD_TRY(h->gelu(tp, a, &a));
    BD_TRY(h->linear(tp, a, w->w2, w->b2, &a));              /* (N, K S) */
    return h->reshape(tp, a, 4, shape, y);
}

/* p: (N, K, 1, S), q: (N, K, S, 1) -> y: (N, K, S, S), y[n,k,i,j] = q[i] p[j] */
static bd_status outer(const factorized *f, bd_tape *tp, bd_tensor *p,
                       bd_tensor *q, bd_tensor **y)
{
    const bd_host *h = f->h;
    const int64_t shape[4] = {h->tensor_dim(p, 0), f->rank, f->size, f->size};
    bd_tensor *ones = h->tape_tensor(tp, 4, shape);
    if (!ones)
        return BD_E_NOMEM;
    float *d = h->tensor_data(ones);
    for (int64_t i = 0; i < h->tensor_numel(ones); i++)
        d[i] = 1.0f;
    BD_TRY(h->mul(tp, ones, p, y));
    return h->mul(tp, *y, q, y);
}

/* x: (N, C, S, S), semb: (N, E) = SiLU(enc(t)) -> y: like x */
static bd_status block_forward(const factorized *f, const res_block *b,
                               bd_tape *tp, bd_tensor *x, bd_tensor *semb,
                               bd_tensor **y)
{
    const bd_host *h = f->h;
    const int64_t per_c[4] = {h->tensor_dim(x, 0), f->width, 1, 1};
    bd_tensor *a, *scale, *shift;
    BD_TRY(h->linear(tp, semb, b->scale_w, b->scale_b, &scale));
    BD_TRY(h->reshape(tp, scale, 4, per_c, &scale));
    BD_TRY(h->linear(tp, semb, b->shift_w, NULL, &shift));
    BD_TRY(h->reshape(tp, shift, 4, per_c, &shift));
    BD_TRY(h->conv2d(tp, x, b->conv1, NULL, 1, 1, &a));
    BD_TRY(h->group_norm(tp, a, 1, b->norm_w, b->norm_b, NORM_EPS, &a));
    BD_TRY(h->mul(tp, a, scale, &a));
    BD_TRY(h->add(tp, a, shift, &a));
    BD_TRY(h->gelu(tp, a, &a));
    BD_TRY(h->conv2d(tp, a, b->conv2, NULL, 1, 1, &a));
    return h->add(tp, x, a, y);
}

/* The tap "layer4": p, q: the profiles -> (N, 2 K S) */
static bd_status offer_layer4(const factorized *f, bd_tape *tp, bd_taps *taps,
                              bd_tensor *p, bd_tensor *q)
{
    const bd_host *h = f->h;
    const int64_t flat[2] = {h->tensor_dim(p, 0), f->rank * f->size};
    bd_tensor *a, *b;
    BD_TRY(h->reshape(tp, p, 2, flat, &a));
    BD_TRY(h->reshape(tp, q, 2, flat, &b));
    BD_TRY(h->concat(tp, a, b, &a));
    h->taps_offer(taps, "layer4", a);
    return BD_OK;
}

static bd_status factorized_forward(void *state, bd_tape *tp, bd_tensor *x_t,
                                    bd_tensor *t, bd_tensor *cond, bd_taps *taps,
                                    bd_tensor **out)
{
    const factorized *f = state;
    const bd_host *h = f->h;
    BD_TRY(check_inputs(f, x_t, t, cond));
    bd_tensor *enc[3], *semb, *p, *q, *tmpl, *x;
    BD_TRY(cond_encode(h, tp, t, cond, f->emb, enc));      /* 3 x (N, E) */
    BD_TRY(h->silu(tp, enc[0], &semb));
    BD_TRY(pathway_forward(f, &f->px, tp, enc[0], enc[1], 1, f->size, &p));
    BD_TRY(pathway_forward(f, &f->py, tp, enc[0], enc[2], f->size, 1, &q));
    BD_TRY(outer(f, tp, p, q, &tmpl));
    h->taps_offer(taps, "x_profile", p);
    h->taps_offer(taps, "y_profile", q);
    if (taps)
        BD_TRY(offer_layer4(f, tp, taps, p, q));

    BD_TRY(h->conv2d(tp, x_t, f->stem_w, f->stem_b, 1, 1, &x));
    for (int i = 0; i < f->depth; i++)
        BD_TRY(block_forward(f, &f->blocks[i], tp, x, semb, &x));
    h->taps_offer(taps, "trunk", x);
    BD_TRY(h->concat(tp, x, tmpl, &x));                       /* (N, C + K, S, S) */
    return h->conv2d(tp, x, f->head_w, f->head_b, 1, 0, out);
}

/* ---- the plugin ----------------------------------------------------------------- */

static const bd_denoiser_desc FACTORIZED = {
    BD_DESC_HEADER(bd_denoiser_desc),
    .name = "factorized",
    .description = "label-blind conv trunk plus x column profiles times y row"
                   " profiles: x and y condition through separate pathways",
    .taps = TAPS,
    .create = factorized_create,
    .forward = factorized_forward,
    .destroy = factorized_destroy,
};

static const bd_denoiser_desc *const DENOISERS[] = {&FACTORIZED};

static const bd_plugin_info INFO = {
    BD_PLUGIN_INFO_HEADER,
    .name = "factorized",
    .version = "1.0",
    .description = "a denoiser with separate x and y conditioning pathways",
    .n_denoisers = 1,
    .denoisers = DENOISERS,
};

BD_PLUGIN_DEFINE(INFO)
