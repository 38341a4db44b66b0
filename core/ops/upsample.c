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

/* Taps of both axes and a scratch plane of H x 2W (x widened along W), in
 * the arena: the backward reuses them. */
typedef struct bilinear_plan {
    axis_tap *rows, *cols; /* 2H and 2W of them */
    float    *wide;
} bilinear_plan;

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

/* Separable, per plane: widen each row of x along W into `wide`, then
 * blend pairs of wide rows into the rows of y. */
static void bilinear_forward(const float *x, const plane_dims *d,
                             const bilinear_plan *b, float *y)
{
    const int64_t H2 = 2 * d->H, W2 = 2 * d->W;
    for (int64_t p = 0; p < d->planes; p++) {
        for (int64_t iy = 0; iy < d->H; iy++) {
            const float *xr = x + (p * d->H + iy) * d->W;
            float *wr = b->wide + iy * W2;
            for (int64_t ox = 0; ox < W2; ox++) {
                const axis_tap t = b->cols[ox];
                wr[ox] = (1.0f - t.w) * xr[t.lo] + t.w * xr[t.hi];
            }
        }
        for (int64_t oy = 0; oy < H2; oy++) {
            const axis_tap t = b->rows[oy];
            const float *w0 = b->wide + t.lo * W2, *w1 = b->wide + t.hi * W2;
            float *yr = y + (p * H2 + oy) * W2;
            for (int64_t ox = 0; ox < W2; ox++)
                yr[ox] = (1.0f - t.w) * w0[ox] + t.w * w1[ox];
        }
    }
}

/* The forward's two passes transposed: spread each dy row onto its two wide
 * rows, then each wide row onto its row of dx. */
static void bilinear_backward(const bd_node *node)
{
    const bd_tensor *x = node->in[0];
    const bilinear_plan *b = node->ctx;
    const plane_dims d = dims_of(x);
    const int64_t H2 = 2 * d.H, W2 = 2 * d.W;
    const float *dy = node->out->grad;
    float *dx = bd_grad_of(x);
    for (int64_t p = 0; p < d.planes; p++) {
        memset(b->wide, 0, (size_t)(d.H * W2) * sizeof *b->wide);
        for (int64_t oy = 0; oy < H2; oy++) {
            const axis_tap t = b->rows[oy];
            float *w0 = b->wide + t.lo * W2, *w1 = b->wide + t.hi * W2;
            const float *dyr = dy + (p * H2 + oy) * W2;
            for (int64_t ox = 0; ox < W2; ox++) {
                w0[ox] += (1.0f - t.w) * dyr[ox];
                w1[ox] += t.w * dyr[ox];
            }
        }
        for (int64_t iy = 0; iy < d.H; iy++) {
            const float *wr = b->wide + iy * W2;
            float *dxr = dx + (p * d.H + iy) * d.W;
            for (int64_t ox = 0; ox < W2; ox++) {
                const axis_tap t = b->cols[ox];
                dxr[t.lo] += (1.0f - t.w) * wr[ox];
                dxr[t.hi] += t.w * wr[ox];
            }
        }
    }
}

static bilinear_plan *bilinear_plan_new(bd_tape *tp, const plane_dims *d)
{
    bilinear_plan *b = bd_tape_alloc(tp, sizeof *b);
    if (!b)
        return NULL;
    b->rows = bd_tape_alloc(tp, (size_t)(2 * d->H) * sizeof *b->rows);
    b->cols = bd_tape_alloc(tp, (size_t)(2 * d->W) * sizeof *b->cols);
    b->wide = bd_tape_alloc(tp, (size_t)(2 * d->H * d->W) * sizeof *b->wide);
    if (!b->rows || !b->cols || !b->wide)
        return NULL;
    axis_taps(d->H, b->rows);
    axis_taps(d->W, b->cols);
    return b;
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
        bilinear_plan *b = bilinear_plan_new(tp, &d);
        if (!b)
            return BD_E_NOMEM;
        bilinear_forward(x->data, &d, b, out->data);
        BD_TRY(bd_op_finish(tp, bilinear_backward, out, &x, 1, b));
    }
    *y = out;
    return BD_OK;
}
