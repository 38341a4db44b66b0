/* Trustworthiness, kNN label consistency and linear-regression R^2. */
#include "quality.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>

#include "knn.h"

double trustworthiness(const float *x, int64_t n, int64_t d,
                       const int32_t *emb_idx, int k)
{
    if (k < 1 || 2 * n <= 3 * (int64_t)k + 1 || 2 * (int64_t)k >= n)
        return NAN;
    float *norm2 = malloc((size_t)n * sizeof *norm2);
    float *rows = malloc((size_t)(KNN_BLOCK * n) * sizeof *rows);
    double penalty = 0;
    for (int64_t r0 = 0; norm2 && rows && r0 < n; r0 += KNN_BLOCK) {
        int64_t nr = n - r0 < KNN_BLOCK ? n - r0 : KNN_BLOCK;
        if (r0 == 0)
            knn_sq_norms(x, n, d, norm2);
        knn_sq_dist_rows(x, norm2, n, d, r0, nr, rows);
        for (int64_t i = 0; i < nr; i++) {
            const float *row = rows + i * n;
            for (int c = 0; c < k; c++) {
                float dj = row[emb_idx[(r0 + i) * k + c]];
                int64_t rank = 1;  /* 1 + points strictly nearer than j */
                for (int64_t l = 0; l < n; l++)
                    rank += l != r0 + i && row[l] < dj;
                penalty += rank > k ? (double)(rank - k) : 0.0;
            }
        }
    }
    double t = norm2 && rows
             ? 1.0 - penalty * 2.0 / ((double)n * k * (2.0 * n - 3.0 * k - 1.0))
             : NAN;
    free(norm2);
    free(rows);
    return t;
}

double label_consistency(const float *labels, int64_t n,
                         const int32_t *emb_idx, int k)
{
    int32_t *lidx = malloc((size_t)(n * k) * sizeof *lidx);
    float *ldist = malloc((size_t)(n * k) * sizeof *ldist);
    double sum = NAN;
    if (lidx && ldist && knn_exact(labels, n, 2, k, lidx, ldist) == 0) {
        sum = 0;
        for (int64_t i = 0; i < n; i++) {
            double r = ldist[i * k + k - 1] * (1 + 1e-6) + 1e-9;
            int hits = 0;
            for (int c = 0; c < k; c++) {
                int64_t j = emb_idx[i * k + c];
                double dx = labels[2 * i] - labels[2 * j];
                double dy = labels[2 * i + 1] - labels[2 * j + 1];
                hits += sqrt(dx * dx + dy * dy) <= r;
            }
            sum += (double)hits / k;
        }
        sum /= (double)n;
    }
    free(lidx);
    free(ldist);
    return sum;
}

/* The least-squares solution by SVD (dgelsd), so collinear features (a
 * collapsed embedding) still give the best fit. */
double r2_linear(const float *feat, int64_t n, int p, const float *target,
                 int stride)
{
    if (n <= p + 1)
        return NAN;
    const int64_t q = p + 1;
    double *a = malloc((size_t)(n * q) * sizeof *a);
    double *b = malloc((size_t)n * sizeof *b);
    double *sv = malloc((size_t)q * sizeof *sv);
    double r2 = NAN, mean = 0, ss_tot = 0, ss_res = 0;
    lapack_int rank;
    if (!a || !b || !sv)
        goto done;
    for (int64_t i = 0; i < n; i++)
        mean += target[i * stride];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) {
        a[i * q] = 1.0;
        for (int j = 0; j < p; j++)
            a[i * q + 1 + j] = feat[i * p + j];
        b[i] = target[i * stride] - mean;
        ss_tot += b[i] * b[i];
    }
    if (ss_tot <= 0 || LAPACKE_dgelsd(LAPACK_ROW_MAJOR, (lapack_int)n,
                                      (lapack_int)q, 1, a, (lapack_int)q, b, 1,
                                      sv, -1.0, &rank) != 0)
        goto done;
    for (int64_t i = 0; i < n; i++) {  /* b[0..q) is now the solution */
        double fit = b[0];
        for (int j = 0; j < p; j++)
            fit += b[1 + j] * feat[i * p + j];
        double res = target[i * stride] - mean - fit;
        ss_res += res * res;
    }
    r2 = 1.0 - ss_res / ss_tot;
done:
    free(a);
    free(b);
    free(sv);
    return r2;
}
