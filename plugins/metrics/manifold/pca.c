/* PCA by randomized subspace iteration; the spectrum's moments by blocks of
 * the Gram matrix. */
#include "pca.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rand.h"

#define OVERSAMPLE 10
#define POWER_ITERS 6
#define GRAM_BLOCK 256

/* xc = x - column means: (n, d). Returns 0 or -1 (memory). */
static int centre(const float *x, int64_t n, int64_t d, float *xc)
{
    double *mean = calloc((size_t)d, sizeof *mean);
    if (!mean)
        return -1;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++)
            mean[j] += x[i * d + j];
    for (int64_t j = 0; j < d; j++)
        mean[j] /= (double)n;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++)
            xc[i * d + j] = (float)(x[i * d + j] - mean[j]);
    free(mean);
    return 0;
}

/* ||G||_F^2 for the Gram matrix G = xc^T xc (d x d, when d <= n) or
 * xc xc^T (n x n): by blocks of GRAM_BLOCK columns of G, each from its
 * diagonal down, so each off-diagonal block counts twice and is made once. */
static int gram_sum_sq(const float *xc, int64_t n, int64_t d, double *out)
{
    const bool cols = d <= n;
    const int64_t m = cols ? d : n, inner = cols ? n : d;
    float *t = malloc((size_t)m * GRAM_BLOCK * sizeof *t);
    if (!t)
        return -1;
    double s = 0;
    for (int64_t c0 = 0; c0 < m; c0 += GRAM_BLOCK) {
        int64_t bs = m - c0 < GRAM_BLOCK ? m - c0 : GRAM_BLOCK, rows = m - c0;
        const float *a = cols ? xc + c0 : xc + c0 * d;
        /* t (rows, bs) = G[c0:, c0:c0+bs] */
        if (cols)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)rows,
                        (int)bs, (int)inner, 1.0f, a, (int)d, a, (int)d, 0.0f,
                        t, (int)bs);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows,
                        (int)bs, (int)inner, 1.0f, a, (int)d, a, (int)d, 0.0f,
                        t, (int)bs);
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < bs; j++) {
                double v = t[i * bs + j];
                s += (i < bs ? 1.0 : 2.0) * v * v;
            }
    }
    free(t);
    *out = s;
    return 0;
}

/* Orthonormal columns spanning those of a (rows, cols), in place. */
static int orthonormalize(float *a, int64_t rows, int64_t cols, float *tau)
{
    if (LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, (lapack_int)rows, (lapack_int)cols, a,
                       (lapack_int)cols, tau) != 0)
        return -2;
    if (LAPACKE_sorgqr(LAPACK_ROW_MAJOR, (lapack_int)rows, (lapack_int)cols,
                       (lapack_int)cols, a, (lapack_int)cols, tau) != 0)
        return -2;
    return 0;
}

/* y (n, l): an orthonormal basis close to the top-l left singular space of
 * xc, by subspace iteration from a random start. z: (d, l) scratch. */
static int range_finder(const float *xc, int64_t n, int64_t d, int64_t l,
                        uint64_t seed, float *y, float *z, float *tau)
{
    rand_state r = {seed};
    for (int64_t i = 0; i < d * l; i++)
        z[i] = (float)rand_normal(&r);
    int rc = 0;
    for (int it = 0; rc == 0 && it <= POWER_ITERS; it++) {
        if (it > 0) { /* z = xc^T y */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)l,
                        (int)n, 1.0f, xc, (int)d, y, (int)l, 0.0f, z, (int)l);
            rc = orthonormalize(z, d, l, tau);
        }
        if (rc == 0) { /* y = xc z */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n,
                        (int)l, (int)d, 1.0f, xc, (int)d, z, (int)l, 0.0f, y,
                        (int)l);
            rc = orthonormalize(y, n, l, tau);
        }
    }
    return rc;
}

/* With b = y^T xc (l, d): eigenpairs of b b^T (l x l, double) are the
 * squared singular values and the rotation u of y onto the components:
 * scores = y u sigma. Writes out->var and out->scores (top k). */
static int project(const float *xc, int64_t n, int64_t d, int64_t l,
                   const float *y, float *b, pca_result *out)
{
    double *g = malloc((size_t)(l * l) * sizeof *g);
    double *w = malloc((size_t)l * sizeof *w);
    double *u = malloc((size_t)(l * l) * sizeof *u);
    lapack_int *support = malloc((size_t)(2 * l) * sizeof *support);
    int rc = g && w && u && support ? 0 : -1;
    if (rc == 0) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)l, (int)d,
                    (int)n, 1.0f, y, (int)l, xc, (int)d, 0.0f, b, (int)d);
        for (int64_t i = 0; i < l; i++)
            for (int64_t j = i; j < l; j++) {
                double s = 0;
                for (int64_t k = 0; k < d; k++)
                    s += (double)b[i * d + k] * b[j * d + k];
                g[i * l + j] = g[j * l + i] = s;
            }
        lapack_int found;
        if (LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'A', 'U', (lapack_int)l, g,
                           (lapack_int)l, 0, 0, 0, 0, 0, &found, w, u,
                           (lapack_int)l, support) != 0)
            rc = -2;
    }
    for (int c = 0; rc == 0 && c < out->k; c++) {
        int64_t e = l - 1 - c;  /* eigenvalues ascend */
        double sigma = sqrt(fmax(w[e], 0.0)), big = 0;
        out->var[c] = w[e] / (double)(n - 1);
        for (int64_t i = 0; i < n; i++) {
            double s = 0;
            for (int64_t j = 0; j < l; j++)
                s += (double)y[i * l + j] * u[j * l + e];
            out->scores[i * out->k + c] = (float)(s * sigma);
            if (fabs(s) > fabs(big))
                big = s;
        }
        if (big < 0)
            for (int64_t i = 0; i < n; i++)
                out->scores[i * out->k + c] = -out->scores[i * out->k + c];
    }
    free(g);
    free(w);
    free(u);
    free(support);
    return rc;
}

int pca_fit(const float *x, int64_t n, int64_t d, int k, uint64_t seed,
            pca_result *out)
{
    memset(out, 0, sizeof *out);
    int64_t m = n < d ? n : d;
    out->k = k < m ? k : (int)m;
    int64_t l = out->k + OVERSAMPLE < m ? out->k + OVERSAMPLE : m;
    float *xc = malloc((size_t)(n * d) * sizeof *xc);
    float *y = malloc((size_t)(n * l) * sizeof *y);
    float *z = malloc((size_t)(d * l) * sizeof *z);
    float *tau = malloc((size_t)l * sizeof *tau);
    out->var = malloc((size_t)out->k * sizeof *out->var);
    out->scores = malloc((size_t)(n * out->k) * sizeof *out->scores);
    int rc = xc && y && z && tau && out->var && out->scores ? 0 : -1;
    if (rc == 0)
        rc = centre(x, n, d, xc);
    if (rc == 0) {
        double ss = 0;
        for (int64_t i = 0; i < n * d; i++)
            ss += (double)xc[i] * xc[i];
        out->total = ss / (double)(n - 1);
        rc = gram_sum_sq(xc, n, d, &out->sum_sq);
        out->sum_sq /= (double)(n - 1) * (double)(n - 1);
    }
    if (rc == 0)
        rc = range_finder(xc, n, d, l, seed, y, z, tau);
    if (rc == 0) {
        float *b = malloc((size_t)(l * d) * sizeof *b);
        rc = b ? project(xc, n, d, l, y, b, out) : -1;
        free(b);
    }
    free(xc);
    free(y);
    free(z);
    free(tau);
    return rc;
}

void pca_free(pca_result *r)
{
    free(r->var);
    free(r->scores);
    memset(r, 0, sizeof *r);
}

double pca_participation_ratio(const pca_result *r)
{
    return r->sum_sq > 0 ? r->total * r->total / r->sum_sq : NAN;
}
