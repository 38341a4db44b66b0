/* Direct convolution on flat padded planes. An image's planes, padded to
 * Hp x Wp, are stored flat, `plane` floats apart; the output at (oh, ow)
 * sits at flat position q = oh Wp + ow, and
 *
 *     y[o, q] = sum over c and taps (i, j) of g[o, c, i, j] xp[c, q + i Wp + j],
 *
 * so each tap reads the same contiguous run of xp shifted by i Wp + j: one
 * vector load per 8 positions (16 with AVX-512), no column matrix. The flat grid has K - 1
 * junk columns per row (ow >= OW), computed and dropped. The forward keeps
 * 8 output channels x 3 vectors of positions in registers while it runs over the
 * C K K inputs; the weight gradient keeps 2 output channels x K K taps
 * while it runs over a chunk's images and positions. */
#include "conv2d_direct.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "bd/parallel.h"
#include "fastmath.h"

/* Output channels per forward block, vectors per forward block, at most
 * this many floats in a chunk of the weight grad. */
enum { OUT_BLOCK = 8, SPAN = 3, CHUNK_FLOATS = 1 << 16, MAX_TAPS = 9 };

typedef struct flat_dims {
    int Hp, Wp, OH, OW;
    int L;               /* flat outputs per image: OH Wp rounded up to lanes */
    int plane;           /* floats per padded plane: the last vector's last tap reads inside */
    int taps;            /* K K */
    int toff[MAX_TAPS];  /* flat offset of tap (i, j): i Wp + j */
} flat_dims;

static int round_up(int n, int m) { return (n + m - 1) / m * m; }

static flat_dims dims_of(const direct_conv *p)
{
    flat_dims d = {.Hp = p->H + 2 * p->pad, .Wp = p->W + 2 * p->pad};
    d.OH = d.Hp - p->K + 1;
    d.OW = d.Wp - p->K + 1;
    d.L = round_up(d.OH * d.Wp, p->lanes);
    d.plane = round_up(d.L + (p->K - 1) * (d.Wp + 1), p->lanes);
    d.taps = p->K * p->K;
    for (int i = 0; i < p->K; i++)
        for (int j = 0; j < p->K; j++)
            d.toff[i * p->K + j] = i * d.Wp + j;
    return d;
}

/* ---- the tiles, per vector width ------------------------------------------- */

#define TILE_FILE "conv2d_direct_tiles.inc"
#include "conv2d_lanes.inc"

int direct_lanes(void)
{
#ifdef BD_DIRECT_AVX512
    const char *force = getenv("BD_CONV_LANES");
    if (force && !strcmp(force, "8"))
        return 8;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
        return 16;
#endif
    return 8;
}

/* out = g * xp on the flat grid, one image, in the plan's vector width.
 * xp: (C, plane) -> out: (O rounded up to OUT_BLOCK, L) */
static void forward_image(const direct_conv *p, const flat_dims *d,
                          const float *xp, const float *wb, float *out)
{
#ifdef BD_DIRECT_AVX512
    if (p->lanes == 16) {
        forward_image_16(p, d, xp, wb, out);
        return;
    }
#endif
    forward_image_8(p, d, xp, wb, out);
}

/* dw += the weight grad of one chunk of nb images, in the plan's width. */
static void weight_chunk(const direct_conv *p, const flat_dims *d,
                         const float *xg, const float *dg, int nb, float *dw)
{
#ifdef BD_DIRECT_AVX512
    if (p->lanes == 16) {
        weight_chunk_16(p, d, xg, dg, nb, dw);
        return;
    }
#endif
    weight_chunk_8(p, d, xg, dg, nb, dw);
}

bool direct_fits(int KH, int KW, int stride, int pad)
{
    return stride == 1 && KH == KW && ((KH == 3 && pad <= 2) || (KH == 1 && pad == 0));
}

/* Floats of one image in a weight-grad chunk: its padded planes and its
 * output grad on the flat grid (O rounded up to 2 rows). */
static int64_t chunk_image_floats(const direct_conv *p, const flat_dims *d)
{
    return (int64_t)p->C * d->plane + (int64_t)round_up(p->O, 2) * d->L;
}

direct_conv direct_plan(int N, int C, int H, int W, int O, int K, int pad)
{
    direct_conv p = {.N = N, .C = C, .H = H, .W = W, .O = O, .K = K, .pad = pad,
                     .lanes = direct_lanes()};
    const flat_dims d = dims_of(&p);
    p.threads = bd_threads_for(2.0 * N * O * C * d.taps * d.OH * d.OW);
    if (p.threads > N)
        p.threads = N;
    int64_t nb = CHUNK_FLOATS / chunk_image_floats(&p, &d);
    const int64_t share = (N + p.threads - 1) / p.threads;
    if (nb > share)
        nb = share;
    p.chunk = nb < 1 ? 1 : (int)nb;
    return p;
}

/* ---- flat planes ------------------------------------------------------------ */

/* xp = x's planes padded with zeros to Hp x Wp, flat, `plane` floats
 * apart, zeros past Hp Wp.   x: (C, H, W) -> xp: (C, plane) */
static void pad_flat(const direct_conv *p, const flat_dims *d, const float *x,
                     float *xp)
{
    const int W = p->W, Wp = d->Wp, pad = p->pad;
    for (int c = 0; c < p->C; c++) {
        float *dst = xp + (int64_t)c * d->plane;
        const float *src = x + (int64_t)c * p->H * W;
        memset(dst, 0, (size_t)(pad * Wp + pad) * sizeof *dst);
        for (int h = 0; h < p->H; h++) {
            float *line = dst + (int64_t)(pad + h) * Wp + pad;
            memcpy(line, src + (int64_t)h * W, (size_t)W * sizeof *dst);
            /* this row's right pad and the next row's left pad */
            memset(line + W, 0, (size_t)(2 * pad) * sizeof *dst);
        }
        const int used = (pad + p->H) * Wp + pad;
        memset(dst + used, 0, (size_t)(d->plane - used) * sizeof *dst);
    }
}

/* dq = dy on the flat output grid: row oh at oh Wp, zeros in the junk
 * columns, past OH Wp and in row O when O is odd.
 * dy: (O, OH, OW) -> dq: (O rounded up to 2, L) */
static void flatten_grad(const direct_conv *p, const flat_dims *d,
                         const float *dy, float *dq)
{
    const int OW = d->OW, junk = d->Wp - OW;
    for (int o = 0; o < round_up(p->O, 2); o++) {
        float *dst = dq + (int64_t)o * d->L;
        if (o == p->O) {
            memset(dst, 0, (size_t)d->L * sizeof *dst);
            continue;
        }
        for (int oh = 0; oh < d->OH; oh++) {
            memcpy(dst + (int64_t)oh * d->Wp,
                   dy + ((int64_t)o * d->OH + oh) * OW, (size_t)OW * sizeof *dst);
            memset(dst + (int64_t)oh * d->Wp + OW, 0, (size_t)junk * sizeof *dst);
        }
        const int used = d->OH * d->Wp;
        memset(dst + used, 0, (size_t)(d->L - used) * sizeof *dst);
    }
}

/* y = the valid columns of out (+ b, or += y when accumulating).
 * out: (O rounded up to OUT_BLOCK, L) -> y: (O, OH, OW) */
static void unflatten(const direct_conv *p, const flat_dims *d, const float *out,
                      const float *b, float *y)
{
    for (int o = 0; o < p->O; o++)
        for (int oh = 0; oh < d->OH; oh++) {
            const float *src = out + (int64_t)o * d->L + (int64_t)oh * d->Wp;
            float *dst = y + ((int64_t)o * d->OH + oh) * d->OW;
            const float bias = b ? b[o] : 0.0f;
            if (p->accumulate)
                for (int ow = 0; ow < d->OW; ow++)
                    dst[ow] += src[ow];
            else
                for (int ow = 0; ow < d->OW; ow++)
                    dst[ow] = src[ow] + bias;
        }
}

/* ---- forward ---------------------------------------------------------------- */

/* wb[ob, c, t, j] = g[ob OUT_BLOCK + j, c, t], zero past O, split over
 * the team.   -> wb: (O rounded up to OUT_BLOCK / OUT_BLOCK, C, K K, OUT_BLOCK) */
static void kernel_blocks(const direct_conv *p, const float *w, float *wb)
{
    const int taps = p->K * p->K;
    #pragma omp for schedule(static)
    for (int o = 0; o < round_up(p->O, OUT_BLOCK); o++)
        for (int c = 0; c < p->C; c++)
            for (int t = 0; t < taps; t++) {
                float v = 0.0f;
                if (o < p->O)
                    v = p->transpose_flip ? w[((int64_t)c * p->O + o) * taps + taps - 1 - t]
                                          : w[((int64_t)o * p->C + c) * taps + t];
                wb[(((int64_t)(o / OUT_BLOCK) * p->C + c) * taps + t) * OUT_BLOCK
                   + o % OUT_BLOCK] = v;
            }
}

/* Per thread: one image's padded planes (C, plane) and outputs (O8, L). */
static int64_t forward_thread_floats(const direct_conv *p, const flat_dims *d)
{
    return (int64_t)p->C * d->plane + (int64_t)round_up(p->O, OUT_BLOCK) * d->L;
}

size_t direct_scratch_floats(const direct_conv *p)
{
    const flat_dims d = dims_of(p);
    return (size_t)round_up(p->O, OUT_BLOCK) * (size_t)p->C * (size_t)d.taps
         + (size_t)p->threads * (size_t)forward_thread_floats(p, &d);
}

void direct_run(const direct_conv *p, const float *x, const float *w,
                const float *b, float *y, float *scratch)
{
    const flat_dims d = dims_of(p);
    const int64_t x_img = (int64_t)p->C * p->H * p->W;
    const int64_t y_img = (int64_t)p->O * d.OH * d.OW;
    float *wb = scratch;
    #pragma omp parallel num_threads(p->threads)
    {
        float *xp = scratch + (int64_t)round_up(p->O, OUT_BLOCK) * p->C * d.taps
                  + omp_get_thread_num() * forward_thread_floats(p, &d);
        float *out = xp + (int64_t)p->C * d.plane;
        kernel_blocks(p, w, wb);
        #pragma omp for schedule(static)
        for (int64_t n = 0; n < p->N; n++) {
            pad_flat(p, &d, x + n * x_img, xp);
            forward_image(p, &d, xp, wb, out);
            unflatten(p, &d, out, b, y + n * y_img);
        }
    }
}

/* ---- the gradient of the kernel --------------------------------------------- */

/* Per thread: its dw sum (O, C, K K), then a chunk's padded planes and
 * flat output grads. */
static int64_t grad_thread_floats(const direct_conv *p, const flat_dims *d)
{
    return (int64_t)p->O * p->C * d->taps + p->chunk * chunk_image_floats(p, d);
}

size_t direct_weight_grad_scratch_floats(const direct_conv *p)
{
    const flat_dims d = dims_of(p);
    return (size_t)p->threads * (size_t)grad_thread_floats(p, &d);
}

void direct_weight_grad(const direct_conv *p, const float *x, const float *dy,
                        float *dw, float *scratch)
{
    const flat_dims d = dims_of(p);
    const int64_t chunks = (p->N + p->chunk - 1) / p->chunk;
    const int64_t x_img = (int64_t)p->C * p->H * p->W;
    const int64_t y_img = (int64_t)p->O * d.OH * d.OW;
    const int64_t size = (int64_t)p->O * p->C * d.taps, per = grad_thread_floats(p, &d);
    #pragma omp parallel num_threads(p->threads)
    {
        float *dwt = scratch + omp_get_thread_num() * per;
        float *xg = dwt + size;
        float *dg = xg + (int64_t)p->chunk * p->C * d.plane;
        memset(dwt, 0, (size_t)size * sizeof *dwt);
        #pragma omp for schedule(static)
        for (int64_t ci = 0; ci < chunks; ci++) {
            const int64_t n0 = ci * p->chunk;
            const int nb = (int)(p->N - n0 < p->chunk ? p->N - n0 : p->chunk);
            for (int i = 0; i < nb; i++) {
                pad_flat(p, &d, x + (n0 + i) * x_img, xg + (int64_t)i * p->C * d.plane);
                flatten_grad(p, &d, dy + (n0 + i) * y_img,
                             dg + (int64_t)i * round_up(p->O, 2) * d.L);
            }
            weight_chunk(p, &d, xg, dg, nb, dwt);
        }
        /* dw += the threads' sums, in thread order */
        #pragma omp for schedule(static)
        for (int64_t k = 0; k < size; k++)
            for (int th = 0; th < omp_get_num_threads(); th++)
                dw[k] += scratch[th * per + k];
    }
}
