/* Spectral layout of a weighted graph, as umap-learn starts UMAP: the
 * eigenvectors of the normalised Laplacian I - D^-1/2 W D^-1/2 with the
 * smallest eigenvalues after the trivial one. By block Lanczos with full
 * reorthogonalisation on D^-1/2 W D^-1/2 (the trivial vector sqrt(degree)
 * projected out), block size dims + 1 so repeated eigenvalues (a square
 * grid's x and y modes) are found together; stops when every wanted Ritz
 * pair has a residual under 1e-4 (ARPACK's tolerance in umap-learn) or the
 * basis reaches SPECTRAL_MAX_BASIS vectors. Plain C with no host calls. */
#ifndef BD_MANIFOLD_SPECTRAL_H
#define BD_MANIFOLD_SPECTRAL_H

#include <stdint.h>

#define SPECTRAL_MAX_BASIS 600

/* The graph: n vertices, edges (head[e], tail[e], w[e] > 0) listing both
 * directions, sorted by head. out: (n, dims). Returns 0; -1 when out of
 * memory; -3 when the graph is not connected (no single spectral layout:
 * umap-learn then lays out components apart; the caller picks another
 * start) or has fewer than dims + 2 vertices. */
int spectral_layout(const int32_t *head, const int32_t *tail, const float *w,
                    int64_t n_edges, int64_t n, int dims, uint64_t seed,
                    float *out);

#endif
