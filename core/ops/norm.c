/* Normalisation: group norm and layer norm, one kernel for both.
 *
 * Both see the tensor as rows of `channels` x `inner` values. Each row is
 * normalised over all its values (two-pass statistics in double), then
 * scaled and shifted per channel; row r covers the affine channels
 * (r % groups) * channels + [0, channels).
 *   group norm: rows N*G, channels C/G, inner H*W, groups G
 *   layer norm: rows numel/C, channels C, inner 1, groups 1 */
#include <math.h>
#include <string.h>

#include "bd/parallel.h"
#include "fastmath.h"
#include "op.h"

typedef struct norm_layout {
    int64_t rows, groups, channels, inner;
} norm_layout;

/* What backward needs besides the inputs: per-row statistics, and room
 * for the affine gradients of each chunk of rows. */
typedef struct norm_saved {
    norm_layout l;
    float      *mean;     /* (rows) */
    float      *rstd;     /* (rows), 1 / sqrt(var + eps) */
    float      *partial;  /* (chunks, 2, C): dgamma, dbeta per chunk */
    int64_t     chunk;    /* rows per chunk, a multiple of groups */
} norm_saved;

/* Rows per chunk of the backward's affine gradients: 16K values or more,
 * whole samples (a multiple of groups), fixed by the shapes so that the
 * sum over chunks is the same at any thread count. */
static int64_t norm_chunk(norm_layout l)
{
    const int64_t width = l.channels * l.inner;
    const int64_t samples = (16384 + width * l.groups - 1) / (width * l.groups);
    return samples * l.groups;
}

/* Sum of n floats, and of their squared distances to m, in 8 double lanes
 * (so that it vectorises). */
BD_VECTOR_CLONES
static double sum_lanes(const float *x, int64_t n)
{
    double lanes[8] = {0}, sum = 0.0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            lanes[j] += x[i + j];
    for (; i < n; i++)
        sum += x[i];
    for (int j = 0; j < 8; j++)
        sum += lanes[j];
    return sum;
}

BD_VECTOR_CLONES
static double sum_sq_dist_lanes(const float *x, int64_t n, double m)
{
    double lanes[8] = {0}, sum = 0.0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            const double d = x[i + j] - m;
            lanes[j] += d * d;
        }
    for (; i < n; i++)
        sum += (x[i] - m) * (x[i] - m);
    for (int j = 0; j < 8; j++)
        sum += lanes[j];
    return sum;
}

/* sum dy and sum dy (x - m) over n values, in 8 double lanes */
BD_VECTOR_CLONES
static void sums_dy_lanes(const float *x, const float *dy, int64_t n, float m,
                          double *sum_dy, double *sum_dyx)
{
    double a[8] = {0}, b[8] = {0}, sa = 0.0, sb = 0.0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            a[j] += dy[i + j];
            b[j] += (double)dy[i + j] * (x[i + j] - m);
        }
    for (; i < n; i++) {
        sa += dy[i];
        sb += (double)dy[i] * (x[i] - m);
    }
    for (int j = 0; j < 8; j++) {
        sa += a[j];
        sb += b[j];
    }
    *sum_dy = sa;
    *sum_dyx = sb;
}

static float affine_scale(const bd_tensor *gamma, int64_t c)
{
    return gamma ? gamma->data[c] : 1.0f;
}

/* Mean and 1 / sqrt(biased variance + eps) of n values, two-pass in double. */
static void row_stats(const float *x, int64_t n, float eps, float *mean,
                      float *rstd)
{
    const double m = sum_lanes(x, n) / (double)n;
    *mean = (float)m;
    *rstd = (float)(1.0 / sqrt(sum_sq_dist_lanes(x, n, m) / (double)n + eps));
}

/* y = (x - mean) rstd gamma[c] + beta[c] over one row starting at channel c0 */
BD_VECTOR_CLONES
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
 * dx (+)= rstd (g - mean(g) - xhat mean(g xhat)) (= when assign),
 * dgamma[c] += sum dy xhat,  dbeta[c] += sum dy  (over the row's channel c) */
BD_VECTOR_CLONES
static void row_backward(const float *x, const float *dy, float *dx,
                         bool assign, norm_layout l, int64_t c0, float mean,
                         float rstd, const bd_tensor *gamma, float *dgamma,
                         float *dbeta)
{
    double sum_g = 0.0, sum_gx = 0.0;
    for (int64_t j = 0; j < l.channels; j++) {
        double sum_dy, sum_dyx;
        sums_dy_lanes(x + j * l.inner, dy + j * l.inner, l.inner, mean,
                      &sum_dy, &sum_dyx);
        sum_dyx *= rstd;
        const double g = affine_scale(gamma, c0 + j);
        sum_g += g * sum_dy;
        sum_gx += g * sum_dyx;
        dgamma[c0 + j] += (float)sum_dyx;
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
        if (assign)
            for (int64_t s = 0; s < l.inner; s++)
                dxj[s] = rstd * (dyj[s] * g - mean_g
                                 - (xj[s] - mean) * rstd * mean_gx);
        else
            for (int64_t s = 0; s < l.inner; s++)
                dxj[s] += rstd * (dyj[s] * g - mean_g
                                  - (xj[s] - mean) * rstd * mean_gx);
    }
}

/* Chunks of rows on bd's threads, each summing its affine gradients into
 * its own partial; then the partials added in chunk order. */
static void norm_backward(const bd_node *node)
{
    const norm_saved *sv = node->ctx;
    const norm_layout l = sv->l;
    const bd_tensor *x = node->in[0], *gamma = node->in[1], *beta = node->in[2];
    float *dgamma = bd_grad_of(gamma), *dbeta = bd_grad_of(beta);
    bool assign;
    float *dx = bd_grad_first(x, &assign);
    const int64_t width = l.channels * l.inner, C = l.groups * l.channels;
    const int64_t chunks = (l.rows + sv->chunk - 1) / sv->chunk;
    #pragma omp parallel for schedule(static) \
        num_threads(bd_threads_for(3.0 * (double)l.rows * width))
    for (int64_t k = 0; k < chunks; k++) {
        float *pg = sv->partial + 2 * k * C, *pb = pg + C;
        memset(pg, 0, 2 * (size_t)C * sizeof *pg);
        const int64_t end = (k + 1) * sv->chunk < l.rows ? (k + 1) * sv->chunk
                                                          : l.rows;
        for (int64_t r = k * sv->chunk; r < end; r++)
            row_backward(x->data + r * width, node->out->grad + r * width,
                         dx ? dx + r * width : NULL, assign, l,
                         (r % l.groups) * l.channels, sv->mean[r], sv->rstd[r],
                         gamma, pg, pb);
    }
    for (int64_t k = 0; k < chunks; k++)
        for (int64_t c = 0; c < C; c++) {
            if (dgamma)
                dgamma[c] += sv->partial[2 * k * C + c];
            if (dbeta)
                dbeta[c] += sv->partial[(2 * k + 1) * C + c];
        }
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
    float *mean = NULL, *rstd = NULL;
    if (bd_tape_needs_node(tp, in, 3)) {
        const int64_t chunk = norm_chunk(l);
        const int64_t chunks = (l.rows + chunk - 1) / chunk;
        const size_t floats = 2 * (size_t)l.rows
                              + 2 * (size_t)(chunks * l.groups * l.channels);
        sv = bd_tape_alloc(tp, sizeof *sv);
        float *stats = sv ? bd_tape_alloc(tp, floats * sizeof(float)) : NULL;
        if (!stats)
            return BD_E_NOMEM;
        *sv = (norm_saved){.l = l, .mean = stats, .rstd = stats + l.rows,
                           .partial = stats + 2 * l.rows, .chunk = chunk};
        mean = sv->mean;
        rstd = sv->rstd;
    }
    const int64_t width = l.channels * l.inner;
    #pragma omp parallel for schedule(static) \
        num_threads(bd_threads_for(3.0 * (double)l.rows * width))
    for (int64_t r = 0; r < l.rows; r++) {
        float m, rs;
        row_stats(x->data + r * width, width, eps, &m, &rs);
        row_forward(x->data + r * width, out->data + r * width, l,
                    (r % l.groups) * l.channels, m, rs, gamma, beta);
        if (mean) {
            mean[r] = m;
            rstd[r] = rs;
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
