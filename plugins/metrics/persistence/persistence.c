/* Metric "persistence": the H0 and H1 barcodes (over Z/2) of the
 * Vietoris-Rips filtration of a representation's point cloud, one point
 * per sample (the follow-up paper's topology of the torus code: a torus
 * has two independent loops, so two long H1 bars).
 *
 * The cloud: the tap `tap` (common/samples.h), flattened to (n, d), or its
 * top `pca` principal components (the manifold metric's pca.c); Euclidean
 * distances, divided by the cloud's root mean square distance to its
 * centroid with normalize = rms (clouds of different sizes then compare).
 * The filtration and the algorithm: rips.h (union-find for H0; for H1 the
 * reduction of the coboundary matrix with clearing). It runs to
 * max_length, or when that is 0 to the enclosing radius, where the complex
 * is a cone and nothing is lost (every bar ends by then but one H0 bar).
 * CPU time (tests/bench/bench_persistence.c, one thread, load 14 on 2
 * cores): 256 points of 128 values 0.1 s, 500 points 0.6 s, 1,024 points
 * 4 to 7 s (a Gaussian cloud, a noisy torus).
 *
 * Config:
 *   tap         layer4  which activation to read (common/samples.h)
 *   pca         0       0: the cloud as it is; k: its top k principal
 *                       components (at most min(n, d) are taken)
 *   normalize   none    none | rms
 *   max_length  0       the filtration's end (after normalize); 0: the
 *                       enclosing radius min_i max_j d(i, j)
 *   long        0       h1_long counts the H1 bars longer than this
 *   top         5       the lengths of this many longest H1 bars are given
 *   max_points  1000    more points are refused (time grows as n^3)
 *
 * Results:
 *   n, dims            points, and values per point measured
 *   scale              the root mean square distance to the centroid (the
 *                      divisor of every distance with normalize = rms)
 *   end, edges         the filtration's end and its number of edges
 *   h0 (n, 2)          (birth, death) per bar: n - c deaths are the minimum
 *                      spanning tree's edge lengths (ascending, zero-length
 *                      ones included: duplicate points), then c bars of
 *                      death inf, the components at the end
 *   h0_components      c
 *   h0_max             the longest finite H0 bar (0 with none)
 *   h1 (h1_count, 2)   (birth, death), longest first; death inf for a
 *                      class alive at max_length; absent when there is no
 *                      bar (pairs of equal birth and death are not bars)
 *   h1_count, h1_essential   bars, and those of death inf
 *   h1_long            bars longer than `long` (inf counts)
 *   h1_longest (top)   the top lengths, longest first, 0 past the last bar
 * h0 and h1 are gudhi's RipsComplex barcodes over Z/2 (homology_coeff_field
 * = 2, min_persistence = -1, H1 pairs of equal values dropped; gudhi's
 * defaults leave out zero-length bars and use Z/11), within 1e-7 in
 * tests/test_stats_reference.c. */
#include <math.h>
#include <stdlib.h>

#include "bd/plugin.h"
#include "common/samples.h"
#include "pca.h"
#include "rips.h"

enum { NORMALIZE_NONE, NORMALIZE_RMS };
static const char *const NORMALIZE[] = {"none", "rms", NULL};

/* the largest max_points allowed: distances and edge ranks take 12 n^2
 * bytes (300 MB) and the time grows as n^3 */
#define POINTS_LIMIT 5000

typedef struct persistence {
    const bd_host *h;
    samples        s;
    int            normalize, top;
    int64_t        pca, max_points;
    double         max_length, long_bar;
} persistence;

static void pers_destroy(void *state)
{
    persistence *p = state;
    if (p)
        samples_free(&p->s);
    free(p);
}

static bd_status read_config(persistence *p, bd_config *cfg)
{
    const bd_host *h = p->h;
    int64_t top;
    BD_TRY(samples_init(&p->s, h, cfg, "persistence"));
    BD_TRY(h->config_int(cfg, "pca", 0, 0, 1000, &p->pca));
    BD_TRY(h->config_choice(cfg, "normalize", "none", NORMALIZE, &p->normalize));
    BD_TRY(h->config_num(cfg, "max_length", 0, 0, INFINITY, &p->max_length));
    BD_TRY(h->config_num(cfg, "long", 0, 0, INFINITY, &p->long_bar));
    BD_TRY(h->config_int(cfg, "top", 5, 1, 1000, &top));
    BD_TRY(h->config_int(cfg, "max_points", 1000, 2, POINTS_LIMIT, &p->max_points));
    p->top = (int)top;
    return BD_OK;
}

static bd_status pers_create(const bd_host *h, bd_config *cfg, void **state)
{
    persistence *p = calloc(1, sizeof *p);
    if (!p)
        return h->fail(BD_E_NOMEM, "persistence: out of memory");
    p->h = h;
    bd_status s = read_config(p, cfg);
    if (s != BD_OK) {
        pers_destroy(p);
        return s;
    }
    *state = p;
    return BD_OK;
}

static bd_status pers_update(void *state, const bd_metric_batch *b)
{
    persistence *p = state;
    return samples_add(&p->s, p->h, b);
}

/* ---- compute --------------------------------------------------------------- */

/* The cloud is measurable: 2 to max_points points, every value finite. */
static bd_status check_cloud(const persistence *p)
{
    const bd_host *h = p->h;
    const samples *s = &p->s;
    if (s->n < 2)
        return h->fail(BD_E_ARG, "persistence: %lld points, expected at least 2"
                       " (one edge)", (long long)s->n);
    if (s->n > p->max_points)
        return h->fail(BD_E_ARG, "persistence: %lld points, expected at most"
                       " max_points = %lld (the time grows as n^3; max_points"
                       " may be raised to %d)", (long long)s->n,
                       (long long)p->max_points, POINTS_LIMIT);
    for (int64_t k = 0; k < s->n * s->d; k++)
        if (!isfinite(s->x[k]))
            return h->fail(BD_E_ARG, "persistence: point %lld has value %g at"
                           " %lld, expected finite values", (long long)(k / s->d),
                           (double)s->x[k], (long long)(k % s->d));
    return BD_OK;
}

/* The root mean square distance of the rows of x (n, d) to their mean. */
static double rms_radius(const float *x, int64_t n, int64_t d)
{
    double sum = 0;
    for (int64_t k = 0; k < d; k++) {
        double mean = 0, sq = 0;
        for (int64_t i = 0; i < n; i++)
            mean += x[i * d + k];
        mean /= (double)n;
        for (int64_t i = 0; i < n; i++)
            sq += ((double)x[i * d + k] - mean) * ((double)x[i * d + k] - mean);
        sum += sq;
    }
    return sqrt(sum / (double)n);
}

/* bars (count, 2) as floats into the result `name` (nothing when empty). */
static bd_status put_bars(const bd_host *h, bd_metric_result *r,
                          const char *name, const rips_bar *bars, int64_t count)
{
    if (count == 0)
        return BD_OK;
    float *buf = malloc((size_t)(2 * count) * sizeof *buf);
    if (!buf)
        return h->fail(BD_E_NOMEM, "persistence: out of memory");
    for (int64_t k = 0; k < count; k++) {
        buf[2 * k] = (float)bars[k].birth;
        buf[2 * k + 1] = (float)bars[k].death;
    }
    const int64_t shape[2] = {count, 2};
    bd_status s = h->result_array(r, name, 2, shape, buf);
    free(buf);
    return s;
}

static bd_status summaries(const persistence *p, const rips_bars *b,
                           bd_metric_result *r)
{
    const bd_host *h = p->h;
    int64_t components = 0, essential = 0, longer = 0;
    double h0_max = 0;
    for (int64_t k = 0; k < b->n0; k++) {
        if (isinf(b->h0[k].death))
            components++;
        else if (b->h0[k].death > h0_max)
            h0_max = b->h0[k].death;
    }
    for (int64_t k = 0; k < b->n1; k++) {
        essential += isinf(b->h1[k].death);
        longer += b->h1[k].death - b->h1[k].birth > p->long_bar;
    }
    float *top = calloc((size_t)p->top, sizeof *top);
    if (!top)
        return h->fail(BD_E_NOMEM, "persistence: out of memory");
    for (int64_t k = 0; k < p->top && k < b->n1; k++)
        top[k] = (float)(b->h1[k].death - b->h1[k].birth);
    const int64_t shape[1] = {p->top};
    bd_status s = h->result_array(r, "h1_longest", 1, shape, top);
    free(top);
    BD_TRY(s);
    BD_TRY(h->result_number(r, "h0_components", (double)components));
    BD_TRY(h->result_number(r, "h0_max", h0_max));
    BD_TRY(h->result_number(r, "h1_count", (double)b->n1));
    BD_TRY(h->result_number(r, "h1_essential", (double)essential));
    return h->result_number(r, "h1_long", (double)longer);
}

static bd_status report(const persistence *p, const rips_bars *b, int64_t dims,
                        double scale, bd_metric_result *r)
{
    const bd_host *h = p->h;
    BD_TRY(h->result_number(r, "n", (double)p->s.n));
    BD_TRY(h->result_number(r, "dims", (double)dims));
    BD_TRY(h->result_number(r, "scale", scale));
    BD_TRY(h->result_number(r, "end", b->end));
    BD_TRY(h->result_number(r, "edges", (double)b->edges));
    BD_TRY(put_bars(h, r, "h0", b->h0, b->n0));
    BD_TRY(put_bars(h, r, "h1", b->h1, b->n1));
    return summaries(p, b, r);
}

/* The bars of the cloud x (n, dims). */
static bd_status measure(const persistence *p, const float *x, int64_t dims,
                         bd_metric_result *r)
{
    const bd_host *h = p->h;
    const int64_t n = p->s.n;
    double scale = rms_radius(x, n, dims);
    if (p->normalize == NORMALIZE_RMS && !(scale > 0))
        return h->fail(BD_E_ARG, "persistence: normalize = rms, but all %lld"
                       " points coincide (rms 0); expected points that differ",
                       (long long)n);
    double *dist = malloc((size_t)(n * n) * sizeof *dist);
    if (!dist)
        return h->fail(BD_E_NOMEM, "persistence: out of memory for %lld x %lld"
                       " distances", (long long)n, (long long)n);
    rips_distances(x, n, dims, dist);
    for (int64_t k = 0; p->normalize == NORMALIZE_RMS && k < n * n; k++)
        dist[k] /= scale;
    double end = p->max_length > 0 ? p->max_length : rips_enclosing_radius(dist, n);
    rips_bars b;
    bd_status s = rips_persistence(dist, n, end, &b) == 0
                ? report(p, &b, dims, scale, r)
                : h->fail(BD_E_NOMEM, "persistence: out of memory for the"
                          " filtration of %lld points", (long long)n);
    rips_bars_free(&b);
    free(dist);
    return s;
}

static bd_status pers_compute(void *state, bd_metric_result *r)
{
    persistence *p = state;
    const bd_host *h = p->h;
    const samples *s = &p->s;
    BD_TRY(check_cloud(p));
    if (p->pca == 0)
        return measure(p, s->x, s->d, r);
    pca_result pc;
    /* seed 0: the randomized PCA's start (exact when pca + 10 >= min(n, d)) */
    int rc = pca_fit(s->x, s->n, s->d, (int)p->pca, 0, &pc);
    bd_status st = rc == 0 ? measure(p, pc.scores, pc.k, r)
                 : rc == -2 ? h->fail(BD_E_NUMERIC, "persistence: LAPACK failed on"
                                      " the PCA of %lld x %lld activations",
                                      (long long)s->n, (long long)s->d)
                 : h->fail(BD_E_NOMEM, "persistence: out of memory for the PCA"
                           " of %lld x %lld activations", (long long)s->n,
                           (long long)s->d);
    pca_free(&pc);
    return st;
}

/* ---- the plugin ------------------------------------------------------------ */

static const bd_metric_desc pers_desc = {
    BD_DESC_HEADER(bd_metric_desc),
    .name = "persistence",
    .description = "H0 and H1 barcodes of the Vietoris-Rips filtration of "
                   "the activations' point cloud",
    .create = pers_create,
    .update = pers_update,
    .compute = pers_compute,
    .destroy = pers_destroy,
};

static const bd_metric_desc *const metrics[] = {&pers_desc};

static const bd_plugin_info info = {
    BD_PLUGIN_INFO_HEADER,
    .name = "persistence",
    .version = "1.0",
    .description = "persistent homology (H0, H1) of a representation",
    .n_metrics = 1,
    .metrics = metrics,
};

BD_PLUGIN_DEFINE(info)
