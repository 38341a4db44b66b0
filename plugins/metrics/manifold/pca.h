/* Principal components of n samples of d values: the top k variances and
 * the samples' coordinates along them, by randomized subspace iteration
 * (Halko, Martinsson, Tropp 2011; k + 10 vectors, 6 power iterations;
 * exact when k + 10 >= min(n, d)), and the whole spectrum's sum and sum of
 * squares (trace and squared Frobenius norm of the covariance), which give
 * the participation ratio without computing every eigenvalue. Plain C with
 * no host calls (OpenBLAS and LAPACKE), so the tests compile it directly. */
#ifndef BD_MANIFOLD_PCA_H
#define BD_MANIFOLD_PCA_H

#include <stdint.h>

typedef struct pca_result {
    int     k;       /* components computed: min(k asked, n, d) */
    double  total;   /* sum of all variances (covariance eigenvalues) */
    double  sum_sq;  /* sum of their squares */
    double *var;     /* (k) the top variances, descending */
    float  *scores;  /* (n, k) centred samples projected on the components */
} pca_result;

/* x: (n, d) row-major, n >= 2. Components have a fixed sign (the largest
 * |score| is positive). Returns 0, -1 when out of memory, -2 when LAPACK
 * fails. Free with pca_free (also after a failure). */
int  pca_fit(const float *x, int64_t n, int64_t d, int k, uint64_t seed,
             pca_result *out);
void pca_free(pca_result *r);

/* Effective dimension: (sum of variances)^2 / sum of squared variances;
 * 1 for one direction, m for m equal ones. */
double pca_participation_ratio(const pca_result *r);

#endif
