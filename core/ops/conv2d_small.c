/* Direct convolution on small planes, vectorised over output channels. For
 * an output position q and the taps t that read inside the input there,
 *
 *     y[n, o, q] = sum over those t and c of g[o, c, t] x[n, c, in(q, t)],
 *
 * with the kernel packed as wk (taps, C, O rounded up to lanes): a tile
 * keeps kv vectors of output channels for a few images at one position in
 * registers and runs over the taps and input channels, a broadcast of x
 * and kv kernel vectors per step. Taps that would read padding are never
 * computed. The weight gradient is the same product the other way round:
 * dw[o, c, t] sums dy[n, o, q] x[n, c, in(q, t)] over the images and the
 * positions q where tap t reads inside, with dy transposed to
 * (N, OH OW, O rounded up) so that its channels are a vector; a tile keeps
 * kv vectors of output channels for a few input channels. */
#include "conv2d_small.h"

#include <omp.h>
#include <string.h>

#include "bd/parallel.h"
#include "fastmath.h"

enum { MAX_TAPS = 9 };

typedef struct small_dims {
    int OH, OW, taps;
    int in_plane, out_plane;  /* H W, OH OW */
    int Opad;                 /* O rounded up to lanes */
} small_dims;

/* Pairs (at, in) of flat offsets: for the forward, per output position,
 * the taps that read inside and the input pixels they read; for the
 * weight grad, per tap, the output positions where it reads inside and
 * the input pixels it reads there. */
typedef struct tap_list {
    int count;
    int at[SMALL_MAX_PLANE], in[SMALL_MAX_PLANE];
} tap_list;

static int round_up(int n, int m) { return (n + m - 1) / m * m; }

static small_dims dims_of(const direct_conv *p)
{
    small_dims d = {.OH = p->H + 2 * p->pad - p->K + 1,
                    .OW = p->W + 2 * p->pad - p->K + 1, .taps = p->K * p->K};
    d.in_plane = p->H * p->W;
    d.out_plane = d.OH * d.OW;
    d.Opad = round_up(p->O, p->lanes);
    return d;
}

#define TILE_FILE "conv2d_small_tiles.inc"
#include "conv2d_lanes.inc"

direct_conv small_plan(int N, int C, int H, int W, int O, int K, int pad)
{
    direct_conv p = {.N = N, .C = C, .H = H, .W = W, .O = O, .K = K, .pad = pad,
                     .lanes = direct_lanes(), .chunk = N};
    const small_dims d = dims_of(&p);
    p.threads = bd_threads_for(2.0 * N * O * C * d.taps * d.out_plane);
    if (p.threads > N)
        p.threads = N;
    return p;
}

/* Does tap t read inside the input at output position q? Its input pixel
 * in *in if so. */
static bool reads_inside(const direct_conv *p, const small_dims *d, int q,
                         int t, int *in)
{
    const int ih = q / d->OW + t / p->K - p->pad, iw = q % d->OW + t % p->K - p->pad;
    if (ih < 0 || ih >= p->H || iw < 0 || iw >= p->W)
        return false;
    *in = ih * p->W + iw;
    return true;
}

/* lists[q] = the taps reading inside at output position q (by_tap false),
 * or lists[t] = the positions where tap t reads inside (by_tap true). */
static void list_taps(const direct_conv *p, const small_dims *d, bool by_tap,
                      tap_list *lists)
{
    for (int i = 0; i < (by_tap ? d->taps : d->out_plane); i++) {
        tap_list *l = &lists[i];
        l->count = 0;
        for (int j = 0; j < (by_tap ? d->out_plane : d->taps); j++) {
            int in;
            if (reads_inside(p, d, by_tap ? j : i, by_tap ? i : j, &in)) {
                l->at[l->count] = j;
                l->in[l->count++] = in;
            }
        }
    }
}

/* ---- forward ---------------------------------------------------------------- */

/* wk[t, c, o] = g[o, c, t], zero for o >= O, split over the team.
 * -> wk: (taps, C, Opad) */
static void pack_kernel(const direct_conv *p, const small_dims *d,
                        const float *w, float *wk)
{
    const int taps = d->taps;
    #pragma omp for schedule(static)
    for (int t = 0; t < taps; t++)
        for (int c = 0; c < p->C; c++)
            for (int o = 0; o < d->Opad; o++) {
                float v = 0.0f;
                if (o < p->O)
                    v = p->transpose_flip ? w[((int64_t)c * p->O + o) * taps + taps - 1 - t]
                                          : w[((int64_t)o * p->C + c) * taps + t];
                wk[((int64_t)t * p->C + c) * d->Opad + o] = v;
            }
}

/* y for images [n0, n0 + nb), in the plan's vector width. */
static void forward_images(const direct_conv *p, const small_dims *d,
                           const tap_list *lists, const float *x, const float *wk,
                           const float *b, int64_t n0, int nb, float *y)
{
#ifdef BD_DIRECT_AVX512
    if (p->lanes == 16) {
        forward_images_16(p, d, lists, x, wk, b, n0, nb, y);
        return;
    }
#endif
    forward_images_8(p, d, lists, x, wk, b, n0, nb, y);
}

size_t small_scratch_floats(const direct_conv *p)
{
    const small_dims d = dims_of(p);
    return (size_t)d.taps * (size_t)p->C * (size_t)d.Opad;
}

void small_run(const direct_conv *p, const float *x, const float *w,
               const float *b, float *y, float *scratch)
{
    const small_dims d = dims_of(p);
    tap_list lists[SMALL_MAX_PLANE];
    list_taps(p, &d, false, lists);
    const int64_t share = (p->N + p->threads - 1) / p->threads;
    #pragma omp parallel num_threads(p->threads)
    {
        pack_kernel(p, &d, w, scratch);
        const int64_t n0 = omp_get_thread_num() * share;
        if (n0 < p->N)
            forward_images(p, &d, lists, x, scratch, b, n0,
                           (int)(p->N - n0 < share ? p->N - n0 : share), y);
    }
}

/* ---- the gradient of the kernel --------------------------------------------- */

/* dyT[n, q, o] = dy[n, o, q], zero for o >= O, split over the team.
 * dy: (N, O, OH OW) -> dyT: (N, OH OW, Opad) */
static void transpose_grad(const direct_conv *p, const small_dims *d,
                           const float *dy, float *dyT)
{
    #pragma omp for schedule(static)
    for (int64_t n = 0; n < p->N; n++)
        for (int q = 0; q < d->out_plane; q++) {
            float *dst = dyT + (n * d->out_plane + q) * d->Opad;
            for (int o = 0; o < d->Opad; o++)
                dst[o] = o < p->O ? dy[(n * p->O + o) * d->out_plane + q] : 0.0f;
        }
}

/* dw for tap t and output channels [o0, o0 + 4 lanes), in the plan's width. */
static void weight_block(const direct_conv *p, const small_dims *d,
                         const tap_list *tl, int t, const float *x,
                         const float *dyT, int o0, float *dw)
{
#ifdef BD_DIRECT_AVX512
    if (p->lanes == 16) {
        weight_block_16(p, d, tl, t, x, dyT, o0, dw);
        return;
    }
#endif
    weight_block_8(p, d, tl, t, x, dyT, o0, dw);
}

size_t small_weight_grad_scratch_floats(const direct_conv *p)
{
    const small_dims d = dims_of(p);
    return (size_t)p->N * (size_t)d.out_plane * (size_t)d.Opad;
}

/* Each (tap, block of 4 vectors of output channels) is one thread's: the
 * sums do not depend on the thread count. */
void small_weight_grad(const direct_conv *p, const float *x, const float *dy,
                       float *dw, float *scratch)
{
    const small_dims d = dims_of(p);
    tap_list lists[MAX_TAPS];
    list_taps(p, &d, true, lists);
    const int block = 4 * p->lanes, blocks = (p->O + block - 1) / block;
    #pragma omp parallel num_threads(p->threads)
    {
        transpose_grad(p, &d, dy, scratch);
        #pragma omp for schedule(static)
        for (int task = 0; task < d.taps * blocks; task++)
            weight_block(p, &d, &lists[task / blocks], task / blocks, x, scratch,
                         task % blocks * block, dw);
    }
}
