/* Exact k nearest neighbours by blocks of distance rows. */
#include "knn.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#define DIRECT_DIMS 8  /* up to this many dims, distances are summed directly */

void knn_sq_norms(const float *x, int64_t n, int64_t d, float *norm2)
{
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t k = 0; k < d; k++)
            s += (double)x[i * d + k] * x[i * d + k];
        norm2[i] = (float)s;
    }
}

void knn_sq_dist_rows(const float *x, const float *norm2, int64_t n, int64_t d,
                      int64_t r0, int64_t nr, float *out)
{
    if (d <= DIRECT_DIMS) {
        for (int64_t i = 0; i < nr; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t k = 0; k < d; k++) {
                    double t = (double)x[(r0 + i) * d + k] - x[j * d + k];
                    s += t * t;
                }
                out[i * n + j] = (float)s;
            }
        return;
    }
    /* out = -2 x[r0:r0+nr] x^T, then + |a|^2 + |b|^2 */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)n,
                (int)d, -2.0f, x + r0 * d, (int)d, x, (int)d, 0.0f, out, (int)n);
    for (int64_t i = 0; i < nr; i++)
        for (int64_t j = 0; j < n; j++) {
            float v = out[i * n + j] + norm2[r0 + i] + norm2[j];
            out[i * n + j] = v > 0 ? v : 0;
        }
}

/* Insert (v, j) into the ascending lists of length k if it belongs there. */
static void keep_smallest(float *best, int32_t *at, int k, float v, int32_t j)
{
    if (v >= best[k - 1])
        return;
    int p = k - 1;
    while (p > 0 && best[p - 1] > v) {
        best[p] = best[p - 1];
        at[p] = at[p - 1];
        p--;
    }
    best[p] = v;
    at[p] = j;
}

int knn_exact(const float *x, int64_t n, int64_t d, int k, int32_t *idx,
              float *dist)
{
    float *norm2 = malloc((size_t)n * sizeof *norm2);
    float *rows = malloc((size_t)(KNN_BLOCK * n) * sizeof *rows);
    if (!norm2 || !rows) {
        free(norm2);
        free(rows);
        return -1;
    }
    knn_sq_norms(x, n, d, norm2);
    for (int64_t r0 = 0; r0 < n; r0 += KNN_BLOCK) {
        int64_t nr = n - r0 < KNN_BLOCK ? n - r0 : KNN_BLOCK;
        knn_sq_dist_rows(x, norm2, n, d, r0, nr, rows);
        for (int64_t i = 0; i < nr; i++) {
            float *best = dist + (r0 + i) * k;
            int32_t *at = idx + (r0 + i) * k;
            for (int c = 0; c < k; c++) {
                best[c] = INFINITY;
                at[c] = -1;
            }
            for (int64_t j = 0; j < n; j++)
                if (j != r0 + i)
                    keep_smallest(best, at, k, rows[i * n + j], (int32_t)j);
            for (int c = 0; c < k; c++)
                best[c] = sqrtf(best[c]);
        }
    }
    free(norm2);
    free(rows);
    return 0;
}
