/* Order of a representation read from its own geometry, with no embedding
 * (no UMAP, no PCA): how well the labels can be read back from the
 * activations as they are. Plain C with no host calls, so the tests
 * compile it directly.
 *
 *   kNN regression R^2 (leave-one-out): each sample's label is predicted
 *     as the mean label of its k nearest other samples (Euclidean distance
 *     between activations); R^2 = 1 - SS_res / SS_tot per axis. An ordered
 *     code scores near 1; a code unrelated to the labels about -1 / k (the
 *     mean of k random labels misses by (1 + 1/k) of the variance).
 *   distance rank correlation: Spearman's rho between the activation
 *     distance and the label distance over pairs of samples; 1 when one is
 *     an increasing function of the other, about 0 for an unrelated code.
 *
 * Sample order carries no information: it follows the label grid, so ties
 * (equal distances, as in a constant code) are broken by a seeded random
 * order, never by index (sklearn's KNeighborsRegressor breaks them by
 * index: the two agree exactly where the k-th neighbour is not tied, and
 * the rank correlation is scipy's spearmanr; tests/test_stats_reference.c). */
#ifndef BD_MANIFOLD_ORDER_H
#define BD_MANIFOLD_ORDER_H

#include <stdint.h>

#define ORDER_MAX_PAIRS (1 << 20)  /* beyond: a seeded sample of this many pairs */

/* x: (n, d) activations, labels: (n, 2), 1 <= k < n -> r2[0] for x, r2[1]
 * for y (NaN for a constant label). Returns 0, or -1 when out of memory. */
int order_knn_r2(const float *x, int64_t n, int64_t d, const float *labels,
                 int k, uint64_t seed, double r2[2]);

/* Spearman's rho (average ranks for ties) between |x_i - x_j| and
 * |label_i - label_j| over all pairs i < j, or over ORDER_MAX_PAIRS pairs
 * drawn at random (seed) when there are more. NaN when either distance is
 * constant, n < 3, or out of memory. */
double order_rank_corr(const float *x, int64_t n, int64_t d,
                       const float *labels, uint64_t seed);

#endif
