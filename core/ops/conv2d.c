/* 2-D convolution: direct (conv2d_direct.c) for the stride-1 3x3 and 1x1
 * convs with few channels, direct over channels (conv2d_small.c) for those
 * on small planes with many channels, Winograd F(2x2, 3x3) or F(4x4, 3x3)
 * (conv2d_winograd.c) for the 3x3 stride-1 convs where it measured faster,
 * else im2col + sgemm
 * over chunks of images.
 *
 * The patches of `nb` images side by side form a column matrix col:
 * (C KH KW, nb OH OW), and y = w col + b with w viewed as (O, C KH KW): one
 * product per chunk. A chunk holds about CHUNK_COLUMNS columns, so the
 * small late layers (8x8, 4x4) still make one wide product, and at most
 * CHUNK_FLOATS in its column matrix. The gradients use the same chunks: dy
 * gathered as (O, nb OH OW), dw += dy col^T (one product over the chunk's
 * images), dcol = w^T dy scattered back by col2im.
 *
 * Threads: each pass is one parallel region over the chunks, each thread
 * running whole chunks (im2col, product, scatter) in its own scratch, so no
 * thread waits for another inside a pass. A pass has at most one thread
 * per chunk; with a single chunk (fewer images than threads) it runs on
 * one thread and bd_gemm splits the product instead. Thread t > 0 sums its chunks' dw in its own buffer,
 * added to dw in thread order afterwards. Scratch comes from the tape's
 * arena: the op never mallocs. */
#include <limits.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "bd/parallel.h"
#include "conv2d_direct.h"
#include "conv2d_small.h"
#include "conv2d_winograd.h"
#include "fastmath.h"
#include "op.h"

/* Columns per chunk, and at most this many floats in its column matrix. */
enum { CHUNK_COLUMNS = 2048, CHUNK_FLOATS = 1 << 20 };

typedef struct conv_geom {
    int C, H, W;       /* input channels and size */
    int O, KH, KW;     /* output channels, kernel size */
    int stride, pad;
    int OH, OW;        /* output size */
    int K, P;          /* per image: K = C KH KW patch values, P = OH OW outputs */
} conv_geom;

typedef struct conv_ctx {
    conv_geom g;
    int       chunk;    /* images per chunk */
    int       threads;  /* threads of each pass */
    float    *col;      /* per thread: (K, chunk P) */
    float    *mat;      /* per thread: (O, chunk P), a chunk's outputs or grads */
    float    *pad;      /* per thread: (C, H + 2 pad, W + 2 pad), one image padded */
    float    *dw_part;  /* per thread but the first: (O, K), NULL without grad */
    int       wino;     /* Winograd F(wino x wino, 3x3) for y, dx and dw: 2, 4; 0 not */
    wino_conv wy, wdx;  /* the plans for y (and dw), for dx */
    bool      direct;   /* direct convolution for y, dx and dw */
    bool      small;    /* direct over channels for y, dx and dw */
    direct_conv dy_plan, ddx_plan;  /* direct or small: the plans for y (and dw), for dx */
    float    *scratch;  /* Winograd's or the direct path's (one pass at a time) */
} conv_ctx;

/* The input plane with `pad` zeros around it: Hp x Wp. */
static int padded_w(const conv_geom *g) { return g->W + 2 * g->pad; }
static int64_t padded_plane(const conv_geom *g)
{
    return (int64_t)(g->H + 2 * g->pad) * padded_w(g);
}

/* xp = x with `pad` zeros around each plane.
 * x: (C, H, W) -> xp: (C, H + 2 pad, W + 2 pad) */
static void pad_planes(const conv_geom *g, const float *x, float *xp)
{
    const int W = g->W, Wp = padded_w(g), pad = g->pad;
    const size_t border = (size_t)pad * Wp * sizeof *xp;
    for (int c = 0; c < g->C; c++) {
        float *p = xp + c * padded_plane(g);
        const float *src = x + (int64_t)c * g->H * W;
        memset(p, 0, border);
        for (int h = 0; h < g->H; h++) {
            float *line = p + (int64_t)(h + pad) * Wp;
            for (int i = 0; i < pad; i++)
                line[i] = line[pad + W + i] = 0.0f;
            for (int w = 0; w < W; w++)
                line[pad + w] = src[(int64_t)h * W + w];
        }
        memset(p + (int64_t)(g->H + pad) * Wp, 0, border);
    }
}

/* dx += the inside of dxp (the adjoint of pad_planes).
 * dxp: (C, H + 2 pad, W + 2 pad) -> dx: (C, H, W) */
static void unpad_planes_add(const conv_geom *g, const float *dxp, float *dx)
{
    const int W = g->W, Wp = padded_w(g), pad = g->pad;
    for (int c = 0; c < g->C; c++)
        for (int h = 0; h < g->H; h++) {
            const float *line = dxp + c * padded_plane(g) + (int64_t)(h + pad) * Wp + pad;
            float *dst = dx + ((int64_t)c * g->H + h) * W;
            for (int w = 0; w < W; w++)
                dst[w] += line[w];
        }
}

/* col[(c, kh, kw), (oh, ow)] = xp[c, oh s + kh, ow s + kw]; rows ld apart.
 * xp: (C, Hp, Wp) -> col: (K, P) */
static void im2col(const conv_geom *g, const float *xp, float *col, int64_t ld)
{
    const int OW = g->OW, s = g->stride, Wp = padded_w(g);
    for (int c = 0; c < g->C; c++)
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = 0; kw < g->KW; kw++) {
                float *row = col + ((int64_t)(c * g->KH + kh) * g->KW + kw) * ld;
                const float *src = xp + c * padded_plane(g) + (int64_t)kh * Wp + kw;
                for (int oh = 0; oh < g->OH; oh++) {
                    float *dst = row + (int64_t)oh * OW;
                    const float *line = src + (int64_t)oh * s * Wp;
                    if (s == 1)
                        for (int ow = 0; ow < OW; ow++)
                            dst[ow] = line[ow];
                    else
                        for (int ow = 0; ow < OW; ow++)
                            dst[ow] = line[(int64_t)ow * s];
                }
            }
}

/* dxp += the adjoint of im2col: each entry of col added where it was read
 * from.   col: (K, P), rows ld apart -> dxp: (C, Hp, Wp) */
static void col2im_add(const conv_geom *g, const float *col, int64_t ld, float *dxp)
{
    const int OW = g->OW, s = g->stride, Wp = padded_w(g);
    for (int c = 0; c < g->C; c++)
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = 0; kw < g->KW; kw++) {
                const float *row = col + ((int64_t)(c * g->KH + kh) * g->KW + kw) * ld;
                float *dst = dxp + c * padded_plane(g) + (int64_t)kh * Wp + kw;
                for (int oh = 0; oh < g->OH; oh++) {
                    const float *src = row + (int64_t)oh * OW;
                    float *line = dst + (int64_t)oh * s * Wp;
                    if (s == 1)
                        for (int ow = 0; ow < OW; ow++)
                            line[ow] += src[ow];
                    else
                        for (int ow = 0; ow < OW; ow++)
                            line[(int64_t)ow * s] += src[ow];
                }
            }
}

/* A chunk: images [n0, n0 + nb) of the batch, nb P columns, and the
 * scratch of the thread running it. */
typedef struct chunk {
    int64_t n0;
    int     nb, cols;
    float  *col, *mat, *pad;
} chunk;

static chunk chunk_at(const conv_ctx *ctx, int64_t index, int64_t n, int thread)
{
    const int64_t n0 = index * ctx->chunk;
    const int nb = (int)(n - n0 < ctx->chunk ? n - n0 : ctx->chunk);
    const int64_t cols = (int64_t)ctx->chunk * ctx->g.P;
    return (chunk){n0, nb, nb * ctx->g.P, ctx->col + thread * (int64_t)ctx->g.K * cols,
                   ctx->mat + thread * (int64_t)ctx->g.O * cols,
                   ctx->pad + thread * (int64_t)ctx->g.C * padded_plane(&ctx->g)};
}

static int64_t chunk_count(const conv_ctx *ctx, int64_t n)
{
    return (n + ctx->chunk - 1) / ctx->chunk;
}

/* col = the chunk's column matrix.   x: (N, C, H, W) -> col: (K, nb P) */
static void chunk_im2col(const conv_geom *g, const chunk *ch, const float *x)
{
    const int64_t x_img = (int64_t)g->C * g->H * g->W;
    for (int i = 0; i < ch->nb; i++) {
        pad_planes(g, x + (ch->n0 + i) * x_img, ch->pad);
        im2col(g, ch->pad, ch->col + (int64_t)i * g->P, ch->cols);
    }
}

/* dx[n0 + i] += col2im(col[:, i P : (i + 1) P]). */
static void chunk_col2im(const conv_geom *g, const chunk *ch, float *dx)
{
    const int64_t x_img = (int64_t)g->C * g->H * g->W;
    for (int i = 0; i < ch->nb; i++) {
        memset(ch->pad, 0, (size_t)(g->C * padded_plane(g)) * sizeof(float));
        col2im_add(g, ch->col + (int64_t)i * g->P, ch->cols, ch->pad);
        unpad_planes_add(g, ch->pad, dx + (ch->n0 + i) * x_img);
    }
}

/* y = w col + b for one chunk.   x: (N, C, H, W), w: (O, K) -> y: (N, O, P) */
static void conv_forward_chunk(const conv_geom *g, const chunk *ch,
                               const float *x, const float *w, const float *b,
                               float *y)
{
    const int64_t y_img = (int64_t)g->O * g->P;
    chunk_im2col(g, ch, x);
    bd_gemm(false, false, g->O, ch->cols, g->K, 1.0f, w, g->K, ch->col,
            ch->cols, 0.0f, ch->mat, ch->cols);
    for (int i = 0; i < ch->nb; i++)
        for (int o = 0; o < g->O; o++) {
            const float *src = ch->mat + (int64_t)o * ch->cols + (int64_t)i * g->P;
            float *dst = y + (ch->n0 + i) * y_img + (int64_t)o * g->P;
            const float bias = b ? b[o] : 0.0f;
            for (int p = 0; p < g->P; p++)
                dst[p] = src[p] + bias;
        }
}

/* dw += dy col^T,  dx += col2im(w^T dy) for one chunk; each only when
 * non-NULL.   dy: (N, O, P), x and dx: (N, C, H, W) */
static void conv_backward_chunk(const conv_geom *g, const chunk *ch,
                                const float *x, const float *w, const float *dy,
                                float *dx, float *dw)
{
    const int64_t y_img = (int64_t)g->O * g->P;
    for (int i = 0; i < ch->nb; i++)
        for (int o = 0; o < g->O; o++)
            memcpy(ch->mat + (int64_t)o * ch->cols + (int64_t)i * g->P,
                   dy + (ch->n0 + i) * y_img + (int64_t)o * g->P,
                   (size_t)g->P * sizeof(float));
    if (dw) {
        chunk_im2col(g, ch, x);
        bd_gemm(false, true, g->O, g->K, ch->cols, 1.0f, ch->mat, ch->cols,
                ch->col, ch->cols, 1.0f, dw, g->K);
    }
    if (dx) {
        bd_gemm(true, false, g->K, ch->cols, g->O, 1.0f, w, g->K, ch->mat,
                ch->cols, 0.0f, ch->col, ch->cols);
        chunk_col2im(g, ch, dx);
    }
}

/* db[o] += sum of dy[:, o, :], image after image.   dy: (N, O, P) */
static void conv_bias_grad(const conv_ctx *ctx, int64_t n, const float *dy,
                           float *db)
{
    const conv_geom *g = &ctx->g;
    const int64_t y_img = (int64_t)g->O * g->P;
    #pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int o = 0; o < g->O; o++)
        for (int64_t i = 0; i < n; i++)
            db[o] += (float)bd_sum_lanes(dy + i * y_img + (int64_t)o * g->P,
                                         g->P);
}

/* dw += the other threads' sums, in thread order.   dw: (O, K) */
static void conv_weight_grad_reduce(const conv_ctx *ctx, float *dw)
{
    const int64_t size = (int64_t)ctx->g.O * ctx->g.K;
    #pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int64_t i = 0; i < size; i++)
        for (int t = 1; t < ctx->threads; t++)
            dw[i] += ctx->dw_part[(t - 1) * size + i];
}

/* dw += dy col^T and dx += col2im(w^T dy) (each when non-NULL) over the
 * chunks, thread t > 0 summing dw in its own buffer. */
static void conv_backward_im2col(const conv_ctx *ctx, const bd_tensor *x,
                                 const float *w, const float *dy, float *dx,
                                 float *dw)
{
    const int64_t n = x->shape[0], size = (int64_t)ctx->g.O * ctx->g.K;
    if (dw && ctx->dw_part)
        memset(ctx->dw_part, 0, (size_t)(ctx->threads - 1) * size * sizeof(float));
    #pragma omp parallel num_threads(ctx->threads)
    {
        const int t = omp_get_thread_num();
        float *dw_t = !dw ? NULL : t ? ctx->dw_part + (t - 1) * size : dw;
        #pragma omp for schedule(static)
        for (int64_t c = 0; c < chunk_count(ctx, n); c++) {
            const chunk ch = chunk_at(ctx, c, n, t);
            conv_backward_chunk(&ctx->g, &ch, x->data, w, dy, dx, dw_t);
        }
    }
    if (dw)
        conv_weight_grad_reduce(ctx, dw);
}

/* dx, assigned when unwritten, by Winograd, the small-plane kernel or the
 * direct path (whichever runs this conv). */
static void conv_input_grad_fast(const conv_ctx *ctx, const bd_tensor *x,
                                 const float *w, const float *dy)
{
    bool assign;
    float *dx = bd_grad_first(x, &assign);
    if (!dx)
        return;
    if (ctx->wino) {
        wino_conv p = ctx->wdx;
        p.accumulate = !assign;
        wino_run(&p, dy, w, NULL, dx, ctx->scratch);
        return;
    }
    direct_conv p = ctx->ddx_plan;
    p.accumulate = !assign;
    if (ctx->small)
        small_run(&p, dy, w, NULL, dx, ctx->scratch);
    else
        direct_run(&p, dy, w, NULL, dx, ctx->scratch);
}

static void conv2d_backward(const bd_node *node)
{
    const conv_ctx *ctx = node->ctx;
    const bd_tensor *x = node->in[0], *w = node->in[1], *b = node->in[2];
    const float *dy = node->out->grad;
    float *dw = bd_grad_of(w), *db = bd_grad_of(b);
    if (db)
        conv_bias_grad(ctx, x->shape[0], dy, db);
    if (!ctx->wino && !ctx->small && !ctx->direct) {
        float *dx = bd_grad_of(x);
        if (dx || dw)
            conv_backward_im2col(ctx, x, w->data, dy, dx, dw);
        return;
    }
    if (dw && ctx->wino)
        wino_weight_grad(&ctx->wy, x->data, dy, dw, ctx->scratch);
    else if (dw && ctx->small)
        small_weight_grad(&ctx->dy_plan, x->data, dy, dw, ctx->scratch);
    else if (dw)
        direct_weight_grad(&ctx->dy_plan, x->data, dy, dw, ctx->scratch);
    conv_input_grad_fast(ctx, x, w->data, dy);
}

/* Checks the arguments and derives the geometry. */
static bd_status conv_check(const bd_tensor *x, const bd_tensor *w,
                            const bd_tensor *b, int stride, int pad,
                            conv_geom *g)
{
    char sx[64], sw[64];
    BD_TRY(bd_op_check_ndim("conv2d", "x", x, 4, 4));
    BD_TRY(bd_op_check_ndim("conv2d", "w", w, 4, 4));
    if (w->shape[1] != x->shape[1])
        return bd_fail(BD_E_ARG, "conv2d: w has shape %s, expected %lld input"
                       " channels (dim 1) to match x of shape %s",
                       bd_shape_str(w, sw, sizeof sw), (long long)x->shape[1],
                       bd_shape_str(x, sx, sizeof sx));
    if (b) {
        BD_TRY(bd_op_check_ndim("conv2d", "b", b, 1, 1));
        BD_TRY(bd_op_check_dim("conv2d", "b", b, 0, w->shape[0]));
    }
    if (stride < 1)
        return bd_fail(BD_E_ARG, "conv2d: stride is %d, expected >= 1", stride);
    if (pad < 0)
        return bd_fail(BD_E_ARG, "conv2d: pad is %d, expected >= 0", pad);
    const int64_t hp = x->shape[2] + 2 * (int64_t)pad;
    const int64_t wp = x->shape[3] + 2 * (int64_t)pad;
    const int64_t kh = w->shape[2], kw = w->shape[3];
    if (kh > hp || kw > wp)
        return bd_fail(BD_E_ARG, "conv2d: kernel %lldx%lld is larger than the"
                       " padded input %lldx%lld (x %s, pad %d): the output"
                       " would be empty", (long long)kh, (long long)kw,
                       (long long)hp, (long long)wp,
                       bd_shape_str(x, sx, sizeof sx), pad);
    const int64_t oh = (hp - kh) / stride + 1, ow = (wp - kw) / stride + 1;
    const int64_t k = x->shape[1] * kh * kw;
    if (hp > INT_MAX || wp > INT_MAX || oh * ow > INT_MAX || k > INT_MAX
        || w->shape[0] > INT_MAX)
        return bd_fail(BD_E_ARG, "conv2d: output %lldx%lld, %lld values per"
                       " patch or %lld output channels exceed the int range"
                       " of BLAS", (long long)oh, (long long)ow, (long long)k,
                       (long long)w->shape[0]);
    *g = (conv_geom){
        .C = (int)x->shape[1], .H = (int)x->shape[2], .W = (int)x->shape[3],
        .O = (int)w->shape[0], .KH = (int)kh, .KW = (int)kw,
        .stride = stride, .pad = pad, .OH = (int)oh, .OW = (int)ow,
        .K = (int)k, .P = (int)(oh * ow),
    };
    return BD_OK;
}

/* Images per chunk: about CHUNK_COLUMNS columns, at most CHUNK_FLOATS in
 * the column matrix, at least one image, and few enough for every thread
 * to get a chunk. */
static int chunk_images(const conv_geom *g, int64_t n, int threads)
{
    int64_t nb = (CHUNK_COLUMNS + g->P - 1) / g->P;
    const int64_t fit = CHUNK_FLOATS / ((int64_t)g->K * g->P);
    const int64_t share = (n + threads - 1) / threads;
    if (nb > fit)
        nb = fit;
    if (nb > share)
        nb = share;
    return nb < 1 ? 1 : (int)nb;
}

/* The direct path where the shape allows it and it measured faster than
 * im2col and Winograd (forward and backward, bench_conv2d --cpu, one
 * thread): at most DIRECT_IN input channels, and at most DIRECT_OUT output
 * channels, or twice as many on planes of at least DIRECT_PLANE pixels.
 * Its cost per product does not depend on the channels, while im2col's
 * copying weighs less the more output channels share it; on small planes
 * most of its vector lanes fall on the padding (2x2: half, 4x4: a third). */
enum { DIRECT_IN = 64, DIRECT_OUT = 16, DIRECT_PLANE = 64 };

/* The algorithm BD_CONV names, NULL when unset or empty. */
static const char *conv_forced(void)
{
    const char *force = getenv("BD_CONV");
    return force && *force ? force : NULL;
}

/* Direct over channels where the shape allows it (both planes of at most
 * SMALL_MAX_PLANE pixels) and it measured faster than im2col, Winograd and
 * the direct path over positions (bench_conv2d --cpu, one thread, forward
 * and backward, counting every tap: 32 x 4x4 -> 32 34 -> 137 GFLOP/s,
 * 64 x 2x2 -> 64 42 -> 177, 128 x 4x4 -> 128 65 -> 146): with AVX-512
 * only, on planes of at most SMALL_PLANE pixels, from SMALL_OUT output
 * channels. On 8x8 planes it measured no faster than the others (32 or
 * 64 channels: within the noise in forward and backward, slower in the
 * forward alone). BD_CONV=small forces it where it fits. */
enum { SMALL_PLANE = 16, SMALL_OUT = 16 };

static bool conv_use_small(const conv_geom *g)
{
    if (!direct_fits(g->KH, g->KW, g->stride, g->pad)
        || g->H * g->W > SMALL_MAX_PLANE || g->OH * g->OW > SMALL_MAX_PLANE)
        return false;
    const char *force = conv_forced();
    if (force)
        return !strcmp(force, "small");
    return direct_lanes() == 16 && g->H * g->W <= SMALL_PLANE && g->O >= SMALL_OUT;
}

static bool conv_use_direct(const conv_geom *g)
{
    if (!direct_fits(g->KH, g->KW, g->stride, g->pad))
        return false;
    const char *force = conv_forced();
    if (force)
        return !strcmp(force, "direct");
    if (g->C > DIRECT_IN)
        return false;
    return g->O <= DIRECT_OUT
        || (g->O <= 2 * DIRECT_OUT && g->H * g->W >= DIRECT_PLANE);
}

/* Winograd where the shape allows it and it measured faster than im2col
 * (forward and backward, bench_conv2d, bench_unet): at least WINO_CHANNELS
 * channels in and out, or half as many on planes of at least WINO_PLANE
 * pixels. Small planes have few tiles per image, so the transforms cost
 * more than they save: never under WINO_TINY_PLANE pixels (2x2, one tile),
 * and under WINO_SMALL_PLANE (4x4, four tiles) only from twice
 * WINO_CHANNELS channels.
 *
 * F(4x4, 3x3) from WINO_CHANNELS channels on planes of at least WINO_PLANE
 * pixels, F(2x2, 3x3) elsewhere. Forward + backward, GFLOP/s of the direct
 * conv per CPU second (bench_conv2d --cpu, one thread, batch 64, medians
 * of 3; F(2x2) / F(4x4)): 64 x 32x32 133 / 181, 128 x 16x16 155 / 196,
 * 64 x 16x16 123 / 158; on 8x8 planes F(4x4) has 4 tiles per image and
 * lost: 64 x 8x8 113 / 110 (forward 117 / 107), 128 x 8x8 146 / 131,
 * 256 x 8x8 142 / 120. 32 x 32x32 stays direct (fwd+bwd 121 against
 * F(4x4)'s 121, forward 186 against 137), as does 32 x 16x16 (forward 150
 * against 127).
 *
 * The environment variable BD_CONV=im2col, BD_CONV=winograd (F(2x2)),
 * BD_CONV=winograd4 (F(4x4)), BD_CONV=direct or BD_CONV=small overrides the
 * choice where the algorithm fits (tests, measurements). */
enum {
    WINO_CHANNELS = 64, WINO_PLANE = 256, WINO_TINY_PLANE = 16,
    WINO_SMALL_PLANE = 64,
};

/* The Winograd tile for this conv: 2 (F(2x2, 3x3)), 4 (F(4x4, 3x3)), 0
 * for none. */
static int conv_use_winograd(const conv_geom *g)
{
    if (!wino_fits(g->KH, g->KW, g->stride, g->pad))
        return 0;
    const char *force = conv_forced();
    if (force && !strcmp(force, "im2col"))
        return 0;
    if (force && !strcmp(force, "winograd"))
        return 2;
    if (force && !strcmp(force, "winograd4"))
        return 4;
    const int narrow = g->C < g->O ? g->C : g->O, plane = g->H * g->W;
    if (plane < WINO_TINY_PLANE)
        return 0;
    if (plane < WINO_SMALL_PLANE)
        return narrow >= 2 * WINO_CHANNELS ? 2 : 0;
    if (narrow >= WINO_CHANNELS)
        return plane >= WINO_PLANE ? 4 : 2;
    return narrow >= WINO_CHANNELS / 2 && plane >= WINO_PLANE ? 2 : 0;
}

/* The plans of the direct path or of Winograd: for y, and for dx (dy
 * convolved with the flipped, transposed kernel, pad K - 1 - pad,
 * accumulated). */
static void conv_plan(conv_ctx *ctx, int64_t n)
{
    const conv_geom *g = &ctx->g;
    ctx->small = conv_use_small(g);
    ctx->direct = !ctx->small && conv_use_direct(g);
    ctx->wino = !ctx->small && !ctx->direct ? conv_use_winograd(g) : 0;
    if (ctx->small) {
        ctx->dy_plan = small_plan((int)n, g->C, g->H, g->W, g->O, g->KH, g->pad);
        ctx->ddx_plan = small_plan((int)n, g->O, g->OH, g->OW, g->C, g->KH,
                                   g->KH - 1 - g->pad);
        ctx->ddx_plan.transpose_flip = ctx->ddx_plan.accumulate = true;
    }
    if (ctx->direct) {
        ctx->dy_plan = direct_plan((int)n, g->C, g->H, g->W, g->O, g->KH, g->pad);
        ctx->ddx_plan = direct_plan((int)n, g->O, g->OH, g->OW, g->C, g->KH,
                                    g->KH - 1 - g->pad);
        ctx->ddx_plan.transpose_flip = ctx->ddx_plan.accumulate = true;
    }
    if (ctx->wino) {
        ctx->wy = wino_plan((int)n, g->C, g->H, g->W, g->O, g->pad, ctx->wino);
        ctx->wdx = wino_plan((int)n, g->O, g->OH, g->OW, g->C, 2 - g->pad,
                             ctx->wino);
        ctx->wdx.transpose_flip = ctx->wdx.accumulate = true;
    }
}

/* Floats of scratch the direct path or Winograd needs (the largest of its
 * passes), 0 for im2col. */
static size_t conv_plan_scratch_floats(const conv_ctx *ctx, bool grad)
{
    size_t floats = 0, dx = 0, dw = 0;
    if (ctx->small) {
        floats = small_scratch_floats(&ctx->dy_plan);
        dx = small_scratch_floats(&ctx->ddx_plan);
        dw = small_weight_grad_scratch_floats(&ctx->dy_plan);
    }
    if (ctx->direct) {
        floats = direct_scratch_floats(&ctx->dy_plan);
        dx = direct_scratch_floats(&ctx->ddx_plan);
        dw = direct_weight_grad_scratch_floats(&ctx->dy_plan);
    }
    if (ctx->wino) {
        floats = wino_scratch_floats(&ctx->wy);
        dx = wino_scratch_floats(&ctx->wdx);
        dw = wino_weight_grad_scratch_floats(&ctx->wy);
    }
    if (grad && dx > floats)
        floats = dx;
    if (grad && dw > floats)
        floats = dw;
    return floats;
}

/* The geometry, the plans and the scratch: Winograd's, or per-thread
 * im2col chunks. */
static conv_ctx *conv_ctx_new(bd_tape *tp, const conv_geom *g, int64_t n,
                              bool grad)
{
    conv_ctx *ctx = bd_tape_alloc(tp, sizeof *ctx);
    if (!ctx)
        return NULL;
    *ctx = (conv_ctx){.g = *g};
    conv_plan(ctx, n);
    ctx->threads = bd_threads_for(2.0 * (double)n * g->O * g->K * g->P);
    ctx->chunk = chunk_images(g, n, ctx->threads);
    const int64_t chunks = (n + ctx->chunk - 1) / ctx->chunk;
    if (ctx->threads > chunks) /* fewer images than threads: bd_gemm splits */
        ctx->threads = (int)chunks;
    if (ctx->wino || ctx->direct || ctx->small) {
        ctx->scratch = bd_tape_alloc(tp, conv_plan_scratch_floats(ctx, grad)
                                             * sizeof(float));
        return ctx->scratch ? ctx : NULL;
    }
    const size_t cols = (size_t)ctx->chunk * (size_t)g->P;
    const size_t size = (size_t)g->O * (size_t)g->K;
    ctx->col = bd_tape_alloc(tp, ctx->threads * (size_t)g->K * cols * sizeof(float));
    ctx->mat = bd_tape_alloc(tp, ctx->threads * (size_t)g->O * cols * sizeof(float));
    ctx->pad = bd_tape_alloc(tp, ctx->threads * (size_t)g->C
                                 * (size_t)padded_plane(g) * sizeof(float));
    if (grad && ctx->threads > 1)
        ctx->dw_part = bd_tape_alloc(tp, (ctx->threads - 1) * size * sizeof(float));
    if (!ctx->col || !ctx->mat || !ctx->pad || (grad && ctx->threads > 1 && !ctx->dw_part))
        return NULL;
    return ctx;
}

/* x: (N, C, H, W), w: (O, C, KH, KW), b: (O) -> y: (N, O, OH, OW) */
bd_status bd_conv2d(bd_tape *tp, bd_tensor *x, bd_tensor *w, bd_tensor *b,
                    int stride, int pad, bd_tensor **y)
{
    conv_geom g;
    BD_TRY(conv_check(x, w, b, stride, pad, &g));
    bd_tensor *in[3] = {x, w, b};
    const int64_t n = x->shape[0];
    conv_ctx *ctx = conv_ctx_new(tp, &g, n, bd_tape_needs_node(tp, in, 3));
    if (!ctx)
        return BD_E_NOMEM;
    const int64_t shape[4] = {n, g.O, g.OH, g.OW};
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, 4, shape, &out));
    const float *bias = b ? b->data : NULL;
    if (ctx->wino)
        wino_run(&ctx->wy, x->data, w->data, bias, out->data, ctx->scratch);
    else if (ctx->direct)
        direct_run(&ctx->dy_plan, x->data, w->data, bias, out->data, ctx->scratch);
    else if (ctx->small)
        small_run(&ctx->dy_plan, x->data, w->data, bias, out->data, ctx->scratch);
    else {
        #pragma omp parallel for schedule(static) num_threads(ctx->threads)
        for (int64_t c = 0; c < chunk_count(ctx, n); c++) {
            const chunk ch = chunk_at(ctx, c, n, omp_get_thread_num());
            conv_forward_chunk(&g, &ch, x->data, w->data, bias, out->data);
        }
    }
    BD_TRY(bd_op_finish(tp, conv2d_backward, out, in, 3, ctx));
    *y = out;
    return BD_OK;
}
