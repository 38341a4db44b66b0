/* UMAP (McInnes, Healy, Melville 2018) as umap-learn 0.5 computes it:
 * exact kNN (the point itself counts as one of the `neighbors`), smooth
 * kNN distances (rho, sigma by bisection to log2(neighbors)), the fuzzy
 * union A + A^T - A o A^T, edges weaker than max / epochs dropped, a
 * spectral start (spectral.h; or a given layout, or random), then SGD
 * on the cross-entropy with edges sampled in proportion to their weight,
 * `negative_rate` negative samples per positive one, gradients clipped to
 * +-4 and a learning rate falling linearly from 1 to 0. Single-threaded and
 * seeded, so a seed gives the same layout. Plain C with no host calls, so
 * the tests compile it directly. */
#ifndef BD_MANIFOLD_UMAP_H
#define BD_MANIFOLD_UMAP_H

#include <stdint.h>

typedef enum umap_init {
    UMAP_INIT_SPECTRAL,  /* spectral.h, as umap-learn; on a disconnected
                            graph the given layout, else random */
    UMAP_INIT_GIVEN,     /* the given layout (PCA scores, say) */
    UMAP_INIT_RANDOM,    /* uniform in [-10, 10] */
} umap_init;

typedef struct umap_options {
    int      dims;           /* embedding dimension */
    int      neighbors;      /* 15 */
    double   min_dist;       /* 0.1 */
    double   spread;         /* 1.0 */
    int      epochs;         /* 0: 500 for n <= 10000, else 200 */
    int      negative_rate;  /* 5 */
    umap_init init;          /* spectral */
    uint64_t seed;
} umap_options;

/* umap-learn's defaults, in `dims` dimensions. */
umap_options umap_defaults(int dims);

/* a, b of the curve 1 / (1 + a d^(2b)) fitted (Levenberg-Marquardt, least
 * squares, 300 points over [0, 3 spread]) to 1 below min_dist and
 * exp(-(d - min_dist) / spread) above: a = 1.577, b = 0.895 for the
 * defaults. */
void umap_find_ab(double min_dist, double spread, double *a, double *b);

/* x: (n, d), n >= 2 -> y: (n, dims). given: (n, dims), a starting layout
 * (o->init GIVEN, or the fallback of SPECTRAL), or NULL; the start is
 * scaled to max |y| = 10 with N(0, 1e-4) noise, then to [0, 10] in each
 * dimension. *used: the start taken. Returns 0, or -1 when out of memory. */
int umap_embed(const float *x, int64_t n, int64_t d, const float *given,
               const umap_options *o, float *y, umap_init *used);

#endif
