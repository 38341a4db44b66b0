/* Clusters of points linked when closer than a cutoff: union-find over the
 * pairs found through a grid of cells at least `cutoff` wide, so the work
 * grows with the number of close pairs, not with n^2. Plain C with no host
 * calls, so the tests compile it directly. */
#ifndef BD_PERCOLATION_CLUSTER_H
#define BD_PERCOLATION_CLUSTER_H

#include <stdint.h>

typedef struct clusters {
    int64_t  n;         /* points */
    int64_t  count;     /* clusters */
    int64_t  largest;   /* points in the largest one */
    int64_t  links;     /* pairs closer than the cutoff */
    int64_t *root;      /* n: the cluster of each point (a point's index) */
} clusters;

/* xy: (n, 2) points; two are linked when their distance is < cutoff (a
 * cutoff <= 0 links none). Fills c (c->root is allocated; free with
 * clusters_free). Returns 0, or -1 when out of memory. */
int  clusters_find(const float *xy, int64_t n, double cutoff, clusters *c);
void clusters_free(clusters *c);

#endif
