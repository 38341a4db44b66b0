/* k x k pooling with stride k: max and average. Each (n, c) plane is pooled
 * on its own; windows do not overlap, so H and W must be divisible by k. */
#include "op.h"

typedef struct pool_dims {
    int64_t planes, H, W, k; /* planes = N * C */
} pool_dims;

static pool_dims dims_of(const bd_tensor *x, int64_t k)
{
    return (pool_dims){x->shape[0] * x->shape[1], x->shape[2], x->shape[3], k};
}

static bd_status pool_check(const char *op, const bd_tensor *x, int k)
{
    BD_TRY(bd_op_check_ndim(op, "x", x, 4, 4));
    if (k < 1)
        return bd_fail(BD_E_ARG, "%s: k = %d, expected k >= 1", op, k);
    if (x->shape[2] % k || x->shape[3] % k) {
        char s[64];
        return bd_fail(BD_E_ARG, "%s: x has shape %s, expected H = %lld and"
                       " W = %lld divisible by k = %d", op,
                       bd_shape_str(x, s, sizeof s), (long long)x->shape[2],
                       (long long)x->shape[3], k);
    }
    return BD_OK;
}

/* ---- max ------------------------------------------------------------------ */

/* Offset in its plane of the largest value in the window of output (oy, ox);
 * the first one on ties, and a NaN wins (it propagates, as in PyTorch). */
static int64_t window_argmax(const float *plane, const pool_dims *d,
                             int64_t oy, int64_t ox)
{
    int64_t best = oy * d->k * d->W + ox * d->k;
    for (int64_t ky = 0; ky < d->k; ky++) {
        const int64_t row = (oy * d->k + ky) * d->W + ox * d->k;
        for (int64_t kx = 0; kx < d->k; kx++) {
            const float v = plane[row + kx];
            if (v > plane[best] || (v != v && plane[best] == plane[best]))
                best = row + kx;
        }
    }
    return best;
}

/* y = max over the window */
static void max_pool_forward(const float *x, const pool_dims *d, float *y)
{
    const int64_t OH = d->H / d->k, OW = d->W / d->k;
    for (int64_t p = 0; p < d->planes; p++) {
        const float *plane = x + p * d->H * d->W;
        float *yp = y + p * OH * OW;
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++)
                yp[oy * OW + ox] = plane[window_argmax(plane, d, oy, ox)];
    }
}

/* dx[argmax] += dy; the argmax is found again from x */
static void max_pool_backward(const bd_node *node)
{
    const bd_tensor *x = node->in[0];
    const pool_dims d = dims_of(x, *(const int *)node->ctx);
    const int64_t OH = d.H / d.k, OW = d.W / d.k;
    const float *dy = node->out->grad;
    float *dx = bd_grad_of(x);
    for (int64_t p = 0; p < d.planes; p++) {
        const float *plane = x->data + p * d.H * d.W;
        float *dxp = dx + p * d.H * d.W;
        const float *dyp = dy + p * OH * OW;
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++)
                dxp[window_argmax(plane, &d, oy, ox)] += dyp[oy * OW + ox];
    }
}

/* ---- average -------------------------------------------------------------- */

/* y = mean over the window; row by row so x is read in order */
static void avg_pool_forward(const float *x, const pool_dims *d, float *y)
{
    const int64_t OH = d->H / d->k, OW = d->W / d->k;
    const float inv = 1.0f / (float)(d->k * d->k);
    for (int64_t p = 0; p < d->planes; p++) {
        for (int64_t oy = 0; oy < OH; oy++) {
            float *yr = y + (p * OH + oy) * OW;
            for (int64_t ox = 0; ox < OW; ox++)
                yr[ox] = 0.0f;
            for (int64_t ky = 0; ky < d->k; ky++) {
                const float *xr = x + (p * d->H + oy * d->k + ky) * d->W;
                for (int64_t ox = 0; ox < OW; ox++)
                    for (int64_t kx = 0; kx < d->k; kx++)
                        yr[ox] += xr[ox * d->k + kx];
            }
            for (int64_t ox = 0; ox < OW; ox++)
                yr[ox] *= inv;
        }
    }
}

/* dx += dy / k^2 over each window */
static void avg_pool_backward(const bd_node *node)
{
    const bd_tensor *x = node->in[0];
    const pool_dims d = dims_of(x, *(const int *)node->ctx);
    const int64_t OH = d.H / d.k, OW = d.W / d.k;
    const float inv = 1.0f / (float)(d.k * d.k);
    const float *dy = node->out->grad;
    float *dx = bd_grad_of(x);
    for (int64_t p = 0; p < d.planes; p++)
        for (int64_t iy = 0; iy < d.H; iy++) {
            const float *dyr = dy + (p * OH + iy / d.k) * OW;
            float *dxr = dx + (p * d.H + iy) * d.W;
            for (int64_t ox = 0; ox < OW; ox++)
                for (int64_t kx = 0; kx < d.k; kx++)
                    dxr[ox * d.k + kx] += dyr[ox] * inv;
        }
}

/* ---- entry points --------------------------------------------------------- */

typedef void (*pool_forward_fn)(const float *x, const pool_dims *d, float *y);

/* x: (N, C, H, W) -> y: (N, C, H / k, W / k) */
static bd_status pool(bd_tape *tp, const char *op, pool_forward_fn forward,
                      bd_backward_fn backward, bd_tensor *x, int k,
                      bd_tensor **y)
{
    BD_TRY(pool_check(op, x, k));
    const int64_t shape[4] = {x->shape[0], x->shape[1], x->shape[2] / k,
                              x->shape[3] / k};
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, 4, shape, &out));
    int *saved_k = bd_tape_alloc(tp, sizeof *saved_k);
    if (!saved_k)
        return BD_E_NOMEM;
    *saved_k = k;
    const pool_dims d = dims_of(x, k);
    forward(x->data, &d, out->data);
    BD_TRY(bd_op_finish(tp, backward, out, &x, 1, saved_k));
    *y = out;
    return BD_OK;
}

bd_status bd_max_pool(bd_tape *tp, bd_tensor *x, int k, bd_tensor **y)
{
    return pool(tp, "max_pool", max_pool_forward, max_pool_backward, x, k, y);
}

bd_status bd_avg_pool(bd_tape *tp, bd_tensor *x, int k, bd_tensor **y)
{
    return pool(tp, "avg_pool", avg_pool_forward, avg_pool_backward, x, k, y);
}
