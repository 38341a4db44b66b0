/* Metric "factorization": does a code represent x and y as separate
 * factors? (docs/PAPER.md, follow-up measures: orthogonality and parallelism of
 * difference vectors along x and along y.)
 *
 * Activations (the tap `tap`, or the images; ../manifold/samples.h) over a
 * grid of labels give the steps of steps.h: x-steps v(i+1, j) - v(i, j)
 * and y-steps v(i, j+1) - v(i, j), as unit vectors. Results:
 *   orthogonality       x-on-y: mean |cos| over all (x-step, y-step) pairs
 *   parallel_x          x-on-x: mean cos over all pairs of x-steps
 *   parallel_y          y-on-y
 *   aligned_x           mean cos of x-steps between the same x_i, x_i+1
 *                       taken at different y (NaN with one row)
 *   aligned_y           the same for y-steps at different x
 *   steps_x, steps_y, grid_x, grid_y   counts
 *   hist_xy, hist_xx, hist_yy   (bins) the distributions behind the
 *                       means: the fraction of (x-step, y-step) pairs, of
 *                       pairs of distinct x-steps, of distinct y-steps,
 *                       whose (signed) cosine falls in each of `bins` equal
 *                       bins over [-1, 1] (the follow-up paper's
 *                       orthogonality and parallelism histograms)
 *
 * What ideal codes give (tests/test_metric_factorization.c checks each):
 *   factorized, v = f(x) (+) g(y) in orthogonal subspaces:
 *       orthogonality 0; aligned_x = aligned_y = 1 (an x-step does not
 *       depend on y); parallel_x = 1 when f is linear, else the mean
 *       cosine among all of f's steps (0.03 for a place code of 16
 *       tuning curves of width 0.8 on an 8 x 8 grid).
 *   coupled, one 2D place code (Gaussian bumps of width s at (x, y), the
 *   pixel images themselves), steps h apart: with G(d) = e^(-d^2 / 4s^2)
 *       the overlap of two bumps, cos(step p along u, step q along w) =
 *       (G(p+u-q-w) - G(p+u-q) - G(p-q-w) + G(p-q)) / (2 (1 - G(h))), so
 *       aligned_x is the mean of G(y_j - y_j') over row pairs (0.20 on a
 *       12 x 12 grid with h = s, falling as the grid widens);
 *       orthogonality is near 0 too (0.05 there; a same-site pair has
 *       cos (1 - G(h)) / 2 = 0.11).
 *   random (independent vectors per site in d dims): orthogonality ~
 *       sqrt(2 / (pi d)), plus 1/2 for pairs sharing a site; parallel ~ 0.
 * So orthogonality alone does not tell factorized from coupled codes (both
 * near 0); aligned parallelism does (1 against near 0).
 *
 * Config: tap (layer4); bins (21: odd, so that a cosine of 0 is a bin's
 * centre, not an edge that rounding splits); periodic (0; 1: the grid is
 * one period of a torus, the last value of each axis steps to the first,
 * as bd.data's periodic lattices [0, size)). Labels must lie on a grid: at
 * most 4 n distinct cells, label values within 1e-3 being one grid value. */
#include <math.h>
#include <stdlib.h>

#include "common/samples.h"
#include "bd/plugin.h"
#include "steps.h"

typedef struct factorization {
    const bd_host *h;
    samples        s;
    int            bins, periodic;
} factorization;

static void fact_destroy(void *state)
{
    factorization *f = state;
    if (f)
        samples_free(&f->s);
    free(f);
}

static bd_status fact_create(const bd_host *h, bd_config *cfg, void **state)
{
    factorization *f = calloc(1, sizeof *f);
    if (!f)
        return h->fail(BD_E_NOMEM, "factorization: out of memory");
    f->h = h;
    int64_t bins = 0, periodic = 0;
    bd_status s = samples_init(&f->s, h, cfg, "factorization");
    if (s == BD_OK)
        s = h->config_int(cfg, "bins", 21, 1, 1001, &bins);
    if (s == BD_OK)
        s = h->config_int(cfg, "periodic", 0, 0, 1, &periodic);
    f->bins = (int)bins;
    f->periodic = (int)periodic;
    if (s != BD_OK) {
        fact_destroy(f);
        return s;
    }
    *state = f;
    return BD_OK;
}

static bd_status fact_update(void *state, const bd_metric_batch *b)
{
    factorization *f = state;
    return samples_add(&f->s, f->h, b);
}

static bd_status report(const bd_host *h, const grid_code *g,
                        const step_stats *st, const step_options *o,
                        bd_metric_result *r)
{
    static const char *const HISTS[3] = {"hist_xy", "hist_xx", "hist_yy"};
    const int64_t shape[1] = {o->bins};
    float *buf = malloc((size_t)o->bins * sizeof *buf);
    if (!buf)
        return h->fail(BD_E_NOMEM, "factorization: out of memory");
    bd_status s = BD_OK;
    for (int k = 0; s == BD_OK && k < 3; k++) {
        for (int b = 0; b < o->bins; b++)
            buf[b] = (float)o->hist[k * o->bins + b];
        s = h->result_array(r, HISTS[k], 1, shape, buf);
    }
    free(buf);
    BD_TRY(s);
    BD_TRY(h->result_number(r, "orthogonality", st->orthogonality));
    BD_TRY(h->result_number(r, "parallel_x", st->parallel_x));
    BD_TRY(h->result_number(r, "parallel_y", st->parallel_y));
    BD_TRY(h->result_number(r, "aligned_x", st->aligned_x));
    BD_TRY(h->result_number(r, "aligned_y", st->aligned_y));
    BD_TRY(h->result_number(r, "steps_x", (double)st->steps_x));
    BD_TRY(h->result_number(r, "steps_y", (double)st->steps_y));
    BD_TRY(h->result_number(r, "grid_x", (double)g->gx));
    return h->result_number(r, "grid_y", (double)g->gy);
}

static bd_status fact_compute(void *state, bd_metric_result *r)
{
    factorization *f = state;
    const bd_host *h = f->h;
    const samples *s = &f->s;
    if (s->n < 2)
        return h->fail(BD_E_ARG, "factorization: %lld samples, expected at"
                       " least a 2 x 1 grid", (long long)s->n);
    grid_code g;
    int rc = grid_code_build(s->x, s->labels, s->n, s->d, &g);
    if (rc == -2)
        return h->fail(BD_E_ARG, "factorization: the %lld labels take %lld x"
                       " values and %lld y values, not a grid (expected at"
                       " most 4 n cells)", (long long)s->n, (long long)g.gx,
                       (long long)g.gy);
    step_stats st;
    step_options o = {.periodic = f->periodic, .bins = f->bins,
                      .hist = malloc((size_t)(3 * f->bins) * sizeof(double))};
    if (rc == 0)
        rc = o.hist ? step_stats_compute(&g, &o, &st) : -1;
    bd_status status = rc == 0 ? report(h, &g, &st, &o, r)
                     : h->fail(BD_E_NOMEM, "factorization: out of memory for"
                               " %lld x %lld activations", (long long)s->n,
                               (long long)s->d);
    grid_code_free(&g);
    free(o.hist);
    return status;
}

static const bd_metric_desc fact_desc = {
    BD_DESC_HEADER(bd_metric_desc),
    .name = "factorization",
    .description = "orthogonality (x-on-y) and parallelism (x-on-x, y-on-y, "
                   "aligned) of activation steps along x and y",
    .create = fact_create,
    .update = fact_update,
    .compute = fact_compute,
    .destroy = fact_destroy,
};

static const bd_metric_desc *const metrics[] = {&fact_desc};

static const bd_plugin_info info = {
    BD_PLUGIN_INFO_HEADER,
    .name = "factorization",
    .version = "1.0",
    .description = "are x and y coded as separate factors?",
    .n_metrics = 1,
    .metrics = metrics,
};

BD_PLUGIN_DEFINE(info)
