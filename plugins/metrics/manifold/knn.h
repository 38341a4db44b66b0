/* Exact nearest neighbours: distances by blocks of rows, through one
 * matrix product per block (|a|^2 + |b|^2 - 2 a.b) in high dimension and
 * directly in low dimension (d <= 8: labels, embeddings), where the product
 * form would lose the small distances to rounding. Plain C with no host
 * calls (OpenBLAS), so the tests compile it directly. */
#ifndef BD_MANIFOLD_KNN_H
#define BD_MANIFOLD_KNN_H

#include <stdint.h>

#define KNN_BLOCK 256  /* rows per block of distances */

/* Squared norms of the n rows of x (n, d), for knn_sq_dist_rows. */
void knn_sq_norms(const float *x, int64_t n, int64_t d, float *norm2);

/* Squared distances of rows [r0, r0 + nr) of x (n, d) to every row:
 * out (nr, n), clamped at 0. */
void knn_sq_dist_rows(const float *x, const float *norm2, int64_t n, int64_t d,
                      int64_t r0, int64_t nr, float *out);

/* The k nearest other rows of each row of x (n, d), k < n: idx (n, k) and
 * Euclidean dist (n, k), nearest first (ties by index). Returns 0, or -1
 * when out of memory. */
int knn_exact(const float *x, int64_t n, int64_t d, int k, int32_t *idx,
              float *dist);

#endif
