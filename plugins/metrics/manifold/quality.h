/* How well an embedding keeps the data's structure and its labels. Plain C
 * with no host calls, so the tests compile it directly. */
#ifndef BD_MANIFOLD_QUALITY_H
#define BD_MANIFOLD_QUALITY_H

#include <stdint.h>

/* Trustworthiness (Venna and Kaski 2001, as sklearn computes it) of an
 * embedding whose k nearest neighbours are emb_idx (n, k), for data
 * x (n, d):
 *   T = 1 - 2 / (n k (2n - 3k - 1)) sum_i sum_{j in emb_idx[i]} max(0, r(i, j) - k)
 * with r(i, j) the rank of j among i's neighbours in x (nearest = 1).
 * 1 when every embedding neighbour is a data neighbour. Needs k < n / 2 - 1;
 * NaN otherwise, or when out of memory. */
double trustworthiness(const float *x, int64_t n, int64_t d,
                       const int32_t *emb_idx, int k);

/* kNN label consistency: the mean over points of the fraction of its k
 * embedding neighbours emb_idx (n, k) whose label lies within r_i of its
 * own, r_i the distance from label i to its k-th nearest other label. So a
 * neighbour counts when it is among the label-space k nearest (ties
 * included: for clusters sharing one label, when it has the same label).
 * labels: (n, 2). NaN when out of memory. */
double label_consistency(const float *labels, int64_t n,
                         const int32_t *emb_idx, int k);

/* R^2 of the least-squares fit target ~ c + feat w, with feat (n, p)
 * row-major and target[i * stride]: 1 - SS_res / SS_tot. NaN when the
 * target is constant, n <= p + 1, or LAPACK fails. */
double r2_linear(const float *feat, int64_t n, int p, const float *target,
                 int stride);

#endif
