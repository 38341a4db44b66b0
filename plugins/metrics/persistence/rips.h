/* Persistent homology in dimensions 0 and 1, over Z/2, of the Vietoris-Rips
 * filtration of a finite metric space: a simplex enters at the length of
 * its longest edge. Plain C with no host calls, so the tests compile it
 * directly.
 *
 * The filtration holds the edges of length <= end and the triangles whose
 * edges all are, ordered simplexwise: edges by (length, i, j), each
 * triangle right after its latest edge (ties among them by the opposite
 * vertex). end = the enclosing radius min_i max_j d(i, j) loses nothing:
 * there a vertex reaches every other, the complex is a cone and every class
 * but one component has died (Ripser's default threshold).
 *   H0: union-find over the edges in order; an edge joining two
 *       components kills one, a bar [0, length) (the minimum spanning
 *       tree's edges); the components alive at `end`: bars [0, inf).
 *   H1: the coboundary matrix (the boundary matrix of edges and triangles
 *       transposed and read in reverse order) reduced column by column,
 *       latest edge first, with clearing: the spanning tree's edges are
 *       paired already (with a vertex) and are skipped. An edge column
 *       whose lowest entry is triangle t pairs them: the bar [length of
 *       the edge, length of t's longest edge). An edge column that reduces
 *       to zero is a class alive at `end`: a bar [length, inf). Pairs of
 *       equal values (most: a triangle paired with its own latest edge) are
 *       not bars. These are the pairs of the boundary matrix's own
 *       reduction (de Silva, Morozov, Vejdemo-Johansson 2011; Bauer 2021,
 *       Ripser); tests/test_metric_persistence.c checks them against the
 *       textbook reduction of the boundary matrix. Reduced columns are kept
 *       as the edges that sum to them and regenerated when needed. */
#ifndef BD_PERSISTENCE_RIPS_H
#define BD_PERSISTENCE_RIPS_H

#include <stdint.h>

typedef struct rips_bar {
    double birth, death; /* death INFINITY: alive at the filtration's end */
} rips_bar;

typedef struct rips_bars {
    int64_t   n0, n1;
    rips_bar *h0;     /* (n0 = n): the finite bars by death, then the
                         essential ones */
    rips_bar *h1;     /* (n1): longest first (essential first) */
    double    end;    /* the filtration's last value */
    int64_t   edges;  /* edges of length <= end */
} rips_bars;

/* dist (n, n): the Euclidean distances between the rows of x (n, d). */
void rips_distances(const float *x, int64_t n, int64_t d, double *dist);

/* min_i max_j dist(i, j); 0 for n < 2. */
double rips_enclosing_radius(const double *dist, int64_t n);

/* The bars of the filtration up to `end` of the metric dist (n, n),
 * n >= 1 with n (n - 1) / 2 < 2^31 (symmetric, zero diagonal). Returns 0, or -1 when out of
 * memory. Free with rips_bars_free (also after a failure). */
int  rips_persistence(const double *dist, int64_t n, double end, rips_bars *out);
void rips_bars_free(rips_bars *b);

#endif
