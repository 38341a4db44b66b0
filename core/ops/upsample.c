/* 2x upsampling: nearest and bilinear (align_corners = true, as PyTorch's
 * nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)). */
#include <string.h>

#include "op.h"

typedef struct plane_dims {
    int64_t planes, H, W; /* of x; planes = N * C; y is 2H x 2W */
} plane_dims;

static plane_dims dims_of(const bd_tensor *x)
{
    return (plane_dims){x->shape[0] * x->shape[1], x->shape[2], x->shape[3]};
}

/* ---- nearest -------------------------------------------------------------- */

/* y[2i + a, 2j + b] = x[i, j] */
static void nearest_forward(const float *x, const plane_dims *d, float *y)
{
    const int64_t W2 = 2 * d->W;
    for (int64_t r = 0; r < d->planes * d->H; r++) {
        const float *xr = x + r * d->W;
        float *y0 = y + 2 * r * W2;
        for (int64_t j = 0; j < d->W; j++)
            y0[2 * j] = y0[2 * j + 1] = xr[j];
        memcpy(y0 + W2, y0, (size_t)W2 * sizeof *y);
    }
}

/* dx[i, j] += the 2 x 2 block of dy it was copied to */
static void nearest_backward(const bd_node *node)
{
    const bd_tensor *x = node->in[0];
    const plane_dims d = dims_of(x);
    const int64_t W2 = 2 * d.W;
    const float *dy = node->out->grad;
    float *dx = bd_grad_of(x);
    for (int64_t r = 0; r < d.planes * d.H; r++) {
        const float *d0 = dy + 2 * r * W2, *d1 = d0 + W2;
        float *dxr = dx + r * d.W;
        for (int64_t j = 0; j < d.W; j++)
            dxr[j] += d0[2 * j] + d0[2 * j + 1] + d1[2 * j] + d1[2 * j + 1];
    }
}

/* ---- bilinear ------------------------------------------------------------- */

/* Output index o of an axis reads input lo with weight 1 - w and hi with w. */
typedef struct axis_tap {
    int64_t lo, hi;
    float   w;
} axis_tap;

typedef struct bilinear_taps {
    axis_tap *rows, *cols; /* 2H and 2W of them */
} bilinear_taps;

/* align_corners: src = o (n - 1) / (2n - 1), in exact integer arithmetic;
 * n = 1 reads index 0 everywhere. */
static void axis_taps(int64_t n, axis_tap *taps)
{
    const int64_t den = 2 * n - 1;
    for (int64_t o = 0; o < 2 * n; o++) {
        const int64_t num = o * (n - 1);
        taps[o].lo = num / den;
        taps[o].hi = taps[o].lo + 1 < n ? taps[o].lo + 1 : taps[o].lo;
        taps[o].w = (float)(num - taps[o].lo * den) / (float)den;
    }
}

/* y = (1 - wy) ((1 - wx) x[lo, lo'] + wx x[lo, hi']) + wy (... row hi) */
static void bilinear_forward(const float *x, const plane_dims *d,
                             const bilinear_taps *t, float *y)
{
    const int64_t H2 = 2 * d->H, W2 = 2 * d->W;
    for (int64_t p = 0; p < d->planes; p++) {
        const float *xp = x + p * d->H * d->W;
        for (int64_t oy = 0; oy < H2; oy++) {
            const axis_tap ty = t->rows[oy];
            const float *r0 = xp + ty.lo * d->W, *r1 = xp + ty.hi * d->W;
            float *yr = y + (p * H2 + oy) * W2;
            for (int64_t ox = 0; ox < W2; ox++) {
                const axis_tap tx = t->cols[ox];
                const float top = (1.0f - tx.w) * r0[tx.lo] + tx.w * r0[tx.hi];
                const float bot = (1.0f - tx.w) * r1[tx.lo] + tx.w * r1[tx.hi];
                yr[ox] = (1.0f - ty.w) * top + ty.w * bot;
            }
        }
    }
}

/* dx at each of the four taps += dy * its weight */
static void bilinear_backward(const bd_node *node)
{
    const bd_tensor *x = node->in[0];
    const bilinear_taps *t = node->ctx;
    const plane_dims d = dims_of(x);
    const int64_t H2 = 2 * d.H, W2 = 2 * d.W;
    const float *dy = node->out->grad;
    float *dx = bd_grad_of(x);
    for (int64_t p = 0; p < d.planes; p++) {
        float *dxp = dx + p * d.H * d.W;
        for (int64_t oy = 0; oy < H2; oy++) {
            const axis_tap ty = t->rows[oy];
            float *r0 = dxp + ty.lo * d.W, *r1 = dxp + ty.hi * d.W;
            const float *dyr = dy + (p * H2 + oy) * W2;
            for (int64_t ox = 0; ox < W2; ox++) {
                const axis_tap tx = t->cols[ox];
                const float g0 = (1.0f - ty.w) * dyr[ox], g1 = ty.w * dyr[ox];
                r0[tx.lo] += (1.0f - tx.w) * g0;
                r0[tx.hi] += tx.w * g0;
                r1[tx.lo] += (1.0f - tx.w) * g1;
                r1[tx.hi] += tx.w * g1;
            }
        }
    }
}

/* Taps of both axes, in the arena: the backward reads them too. */
static bilinear_taps *bilinear_plan(bd_tape *tp, const plane_dims *d)
{
    bilinear_taps *t = bd_tape_alloc(tp, sizeof *t);
    if (!t)
        return NULL;
    t->rows = bd_tape_alloc(tp, (size_t)(2 * d->H) * sizeof *t->rows);
    t->cols = bd_tape_alloc(tp, (size_t)(2 * d->W) * sizeof *t->cols);
    if (!t->rows || !t->cols)
        return NULL;
    axis_taps(d->H, t->rows);
    axis_taps(d->W, t->cols);
    return t;
}

/* ---- entry point ---------------------------------------------------------- */

/* x: (N, C, H, W) -> y: (N, C, 2H, 2W) */
bd_status bd_upsample2x(bd_tape *tp, bd_tensor *x, bd_upsample_mode mode,
                        bd_tensor **y)
{
    BD_TRY(bd_op_check_ndim("upsample2x", "x", x, 4, 4));
    if (mode != BD_UPSAMPLE_NEAREST && mode != BD_UPSAMPLE_BILINEAR)
        return bd_fail(BD_E_ARG, "upsample2x: mode is %d, expected"
                       " BD_UPSAMPLE_NEAREST or BD_UPSAMPLE_BILINEAR", (int)mode);
    const int64_t shape[4] = {x->shape[0], x->shape[1], 2 * x->shape[2],
                              2 * x->shape[3]};
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, 4, shape, &out));
    const plane_dims d = dims_of(x);
    if (mode == BD_UPSAMPLE_NEAREST) {
        nearest_forward(x->data, &d, out->data);
        BD_TRY(bd_op_finish(tp, nearest_backward, out, &x, 1, NULL));
    } else {
        bilinear_taps *t = bilinear_plan(tp, &d);
        if (!t)
            return BD_E_NOMEM;
        bilinear_forward(x->data, &d, t, out->data);
        BD_TRY(bd_op_finish(tp, bilinear_backward, out, &x, 1, t));
    }
    *y = out;
    return BD_OK;
}
