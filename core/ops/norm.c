/* Normalisation: group norm and layer norm, one kernel for both.
 *
 * Both see the tensor as rows of `channels` x `inner` values. Each row is
 * normalised over all its values (two-pass statistics in double), then
 * scaled and shifted per channel; row r covers the affine channels
 * (r % groups) * channels + [0, channels).
 *   group norm: rows N*G, channels C/G, inner H*W, groups G
 *   layer norm: rows numel/C, channels C, inner 1, groups 1 */
#include <math.h>

#include "op.h"

typedef struct norm_layout {
    int64_t rows, groups, channels, inner;
} norm_layout;

/* What backward needs besides the inputs: per-row statistics. */
typedef struct norm_saved {
    norm_layout l;
    float      *mean; /* (rows) */
    float      *rstd; /* (rows), 1 / sqrt(var + eps) */
} norm_saved;

static float affine_scale(const bd_tensor *gamma, int64_t c)
{
    return gamma ? gamma->data[c] : 1.0f;
}

/* Mean and 1 / sqrt(biased variance + eps) of n values, two-pass in double. */
static void row_stats(const float *x, int64_t n, float eps, float *mean,
                      float *rstd)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += x[i];
    const double m = sum / (double)n;
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double d = x[i] - m;
        ss += d * d;
    }
    *mean = (float)m;
    *rstd = (float)(1.0 / sqrt(ss / (double)n + eps));
}

/* y = (x - mean) rstd gamma[c] + beta[c] over one row starting at channel c0 */
static void row_forward(const float *x, float *y, norm_layout l, int64_t c0,
                        float mean, float rstd, const bd_tensor *gamma,
                        const bd_tensor *beta)
{
    for (int64_t j = 0; j < l.channels; j++) {
        const float a = rstd * affine_scale(gamma, c0 + j);
        const float b = beta ? beta->data[c0 + j] : 0.0f;
        const float *xj = x + j * l.inner;
        float *yj = y + j * l.inner;
        for (int64_t s = 0; s < l.inner; s++)
            yj[s] = (xj[s] - mean) * a + b;
    }
}

/* xhat = (x - mean) rstd, g = dy gamma:
 * dx += rstd (g - mean(g) - xhat mean(g xhat)),
 * dgamma[c] += sum dy xhat,  dbeta[c] += sum dy  (over the row's channel c) */
static void row_backward(const float *x, const float *dy, float *dx,
                         norm_layout l, int64_t c0, float mean, float rstd,
                         const bd_tensor *gamma, float *dgamma, float *dbeta)
{
    double sum_g = 0.0, sum_gx = 0.0;
    for (int64_t j = 0; j < l.channels; j++) {
        const float *xj = x + j * l.inner, *dyj = dy + j * l.inner;
        double sum_dy = 0.0, sum_dyx = 0.0;
        for (int64_t s = 0; s < l.inner; s++) {
            const double xhat = (xj[s] - mean) * rstd;
            sum_dy += dyj[s];
            sum_dyx += dyj[s] * xhat;
        }
        const double g = affine_scale(gamma, c0 + j);
        sum_g += g * sum_dy;
        sum_gx += g * sum_dyx;
        if (dgamma)
            dgamma[c0 + j] += (float)sum_dyx;
        if (dbeta)
            dbeta[c0 + j] += (float)sum_dy;
    }
    if (!dx)
        return;
    const double n = (double)(l.channels * l.inner);
    const float mean_g = (float)(sum_g / n), mean_gx = (float)(sum_gx / n);
    for (int64_t j = 0; j < l.channels; j++) {
        const float g = affine_scale(gamma, c0 + j);
        const float *xj = x + j * l.inner, *dyj = dy + j * l.inner;
        float *dxj = dx + j * l.inner;
        for (int64_t s = 0; s < l.inner; s++) {
            const float xhat = (xj[s] - mean) * rstd;
            dxj[s] += rstd * (dyj[s] * g - mean_g - xhat * mean_gx);
        }
    }
}

static void norm_backward(const bd_node *node)
{
    const norm_saved *sv = node->ctx;
    const norm_layout l = sv->l;
    const bd_tensor *x = node->in[0], *gamma = node->in[1], *beta = node->in[2];
    float *dx = bd_grad_of(x), *dgamma = bd_grad_of(gamma);
    float *dbeta = bd_grad_of(beta);
    const int64_t width = l.channels * l.inner;
    for (int64_t r = 0; r < l.rows; r++)
        row_backward(x->data + r * width, node->out->grad + r * width,
                     dx ? dx + r * width : NULL, l, (r % l.groups) * l.channels,
                     sv->mean[r], sv->rstd[r], gamma, dgamma, dbeta);
}

/* gamma, beta: (C) when given */
static bd_status check_affine(const char *op, const char *arg,
                              const bd_tensor *t, int64_t C)
{
    if (!t)
        return BD_OK;
    BD_TRY(bd_op_check_ndim(op, arg, t, 1, 1));
    return bd_op_check_dim(op, arg, t, 0, C);
}

static bd_status check_eps(const char *op, float eps)
{
    if (!(eps >= 0.0f) || isinf(eps))
        return bd_fail(BD_E_ARG, "%s: eps = %g, expected a finite value >= 0",
                       op, (double)eps);
    return BD_OK;
}

/* x: rows x channels x inner (layout l) -> y: like x */
static bd_status norm_forward(bd_tape *tp, norm_layout l, bd_tensor *x,
                              bd_tensor *gamma, bd_tensor *beta, float eps,
                              bd_tensor **y)
{
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, x->ndim, x->shape, &out));
    bd_tensor *in[3] = {x, gamma, beta};
    norm_saved *sv = NULL;
    if (bd_tape_needs_node(tp, in, 3)) {
        sv = bd_tape_alloc(tp, sizeof *sv);
        const size_t bytes = 2 * (size_t)l.rows * sizeof(float);
        float *stats = sv ? bd_tape_alloc(tp, bytes) : NULL;
        if (!stats)
            return BD_E_NOMEM;
        *sv = (norm_saved){.l = l, .mean = stats, .rstd = stats + l.rows};
    }
    const int64_t width = l.channels * l.inner;
    for (int64_t r = 0; r < l.rows; r++) {
        float mean, rstd;
        row_stats(x->data + r * width, width, eps, &mean, &rstd);
        row_forward(x->data + r * width, out->data + r * width, l,
                    (r % l.groups) * l.channels, mean, rstd, gamma, beta);
        if (sv) {
            sv->mean[r] = mean;
            sv->rstd[r] = rstd;
        }
    }
    BD_TRY(bd_op_finish(tp, norm_backward, out, in, 3, sv));
    *y = out;
    return BD_OK;
}

/* x: (N, C, ...) up to 4 dims, gamma, beta: (C) -> y: like x */
bd_status bd_group_norm(bd_tape *tp, bd_tensor *x, int groups, bd_tensor *gamma,
                        bd_tensor *beta, float eps, bd_tensor **y)
{
    BD_TRY(bd_op_check_ndim("group_norm", "x", x, 2, BD_MAX_DIMS));
    const int64_t N = x->shape[0], C = x->shape[1];
    if (groups < 1 || C % groups != 0) {
        char s[64];
        return bd_fail(BD_E_ARG, "group_norm: groups = %d does not divide"
                       " C = %lld of x %s", groups, (long long)C,
                       bd_shape_str(x, s, sizeof s));
    }
    BD_TRY(check_affine("group_norm", "gamma", gamma, C));
    BD_TRY(check_affine("group_norm", "beta", beta, C));
    BD_TRY(check_eps("group_norm", eps));
    const norm_layout l = {.rows = N * groups, .groups = groups,
                           .channels = C / groups,
                           .inner = bd_tensor_inner(x, 2)};
    return norm_forward(tp, l, x, gamma, beta, eps, y);
}

/* x: (..., C), gamma, beta: (C) -> y: like x */
bd_status bd_layer_norm(bd_tape *tp, bd_tensor *x, bd_tensor *gamma,
                        bd_tensor *beta, float eps, bd_tensor **y)
{
    BD_TRY(bd_op_check_ndim("layer_norm", "x", x, 1, BD_MAX_DIMS));
    const int64_t C = x->shape[x->ndim - 1];
    BD_TRY(check_affine("layer_norm", "gamma", gamma, C));
    BD_TRY(check_affine("layer_norm", "beta", beta, C));
    BD_TRY(check_eps("layer_norm", eps));
    const norm_layout l = {.rows = x->numel / C, .groups = 1, .channels = C,
                           .inner = 1};
    return norm_forward(tp, l, x, gamma, beta, eps, y);
}
