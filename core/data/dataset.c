/* Dataset enumeration: lattice sites, held-out split, kept fraction, and
 * the drawing of each image (see bd/data.h for the geometry). */
#include "bd/data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bd/rng.h"

#define MAX_PIXELS ((int64_t)1 << 30)

typedef enum shape { SHAPE_BUMP, SHAPE_VERTICAL, SHAPE_HORIZONTAL, SHAPE_SUM } shape;

/* One image to draw: what, and its label in image coordinates. */
typedef struct site {
    double x, y;
    shape  shape;
} site;

/* Lattice positions k * step over [0, canvas] ([0, canvas) on a torus). */
static int64_t lattice_count(double canvas, double step, bool periodic)
{
    if (periodic)
        return (int64_t)ceil(canvas / step - 1e-9);
    return (int64_t)floor(canvas / step + 1e-9) + 1;
}

static int64_t site_count(const bd_data_spec *s, int64_t nx, int64_t ny)
{
    if (s->kind != BD_DATA_STRIPES)
        return nx * ny;
    return (s->orient != BD_STRIPES_HORIZONTAL ? nx : 0)
         + (s->orient != BD_STRIPES_VERTICAL ? ny : 0);
}

/* Every site in lattice order; labels shifted by the crop offset. */
static void enumerate(const bd_data_spec *s, int64_t nx, int64_t ny, site *out)
{
    const double off = (double)((s->canvas - s->size) / 2);
    int64_t n = 0;
    if (s->kind != BD_DATA_STRIPES) {
        shape sh = s->kind == BD_DATA_BUMPS ? SHAPE_BUMP : SHAPE_SUM;
        for (int64_t j = 0; j < ny; j++)
            for (int64_t i = 0; i < nx; i++)
                out[n++] = (site){i * s->dx - off, j * s->dy - off, sh};
        return;
    }
    if (s->orient != BD_STRIPES_HORIZONTAL)
        for (int64_t i = 0; i < nx; i++)
            out[n++] = (site){i * s->dx - off, s->null_label, SHAPE_VERTICAL};
    if (s->orient != BD_STRIPES_VERTICAL)
        for (int64_t j = 0; j < ny; j++)
            out[n++] = (site){s->null_label, j * s->dy - off, SHAPE_HORIZONTAL};
}

static bool in_range(double v, double lo, double hi) { return v >= lo && v <= hi; }

static bool held_out(const bd_data_spec *s, const site *p)
{
    bool in_x = in_range(p->x, s->hx0, s->hx1), in_y = in_range(p->y, s->hy0, s->hy1);
    switch (s->holdout) {
    case BD_HOLDOUT_RECT:  return in_x && in_y;
    case BD_HOLDOUT_CROSS: return in_x || in_y;
    case BD_HOLDOUT_XBAND: return in_x;
    case BD_HOLDOUT_YBAND: return in_y;
    case BD_HOLDOUT_NONE:  break;
    }
    return false;
}

/* Mark exactly `keep` of the n flags, chosen uniformly (partial
 * Fisher-Yates over the indices). */
static bd_status choose_kept(uint64_t seed, int64_t n, int64_t keep, bool *kept)
{
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    if (!idx)
        return bd_fail(BD_E_NOMEM, "dataset: out of memory");
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    bd_rng rng = bd_rng_make(seed, 0);
    for (int64_t i = 0; i < keep; i++) {
        int64_t j = i + (int64_t)bd_rng_below(&rng, (uint32_t)(n - i));
        int64_t tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
        kept[idx[i]] = true;
    }
    free(idx);
    return BD_OK;
}

/* ---- drawing -------------------------------------------------------------- */

/* g(p - mu) at the pixel centres p = k + 0.5, k < n; distances wrap on a
 * torus of side n.   -> g: (n) */
static void profile(double mu, const bd_data_spec *s, float *g)
{
    const int64_t n = s->size;
    const double denom = s->denom * s->sigma * s->sigma;
    for (int64_t k = 0; k < n; k++) {
        double d = (double)k + 0.5 - mu;
        if (s->periodic)
            d -= (double)n * nearbyint(d / (double)n);
        g[k] = (float)exp(-d * d / denom);
    }
}

/* image: (N, N), pixel 2 v - 1.  gx, gy: (N) scratch. */
static void draw(const bd_data_spec *s, const site *p, float *gx, float *gy,
                 float *image)
{
    const int64_t n = s->size;
    profile(p->x, s, gx);
    profile(p->y, s, gy);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            float v;
            switch (p->shape) {
            case SHAPE_BUMP:       v = gx[j] * gy[i]; break;
            case SHAPE_VERTICAL:   v = gx[j]; break;
            case SHAPE_HORIZONTAL: v = gy[i]; break;
            default:               v = 0.5f * (gx[j] + gy[i]); break;
            }
            if (s->invert)
                v = 1.0f - v;
            image[i * n + j] = 2.0f * v - 1.0f;
        }
}

/* Draw the flagged sites (want == flag[i]) into a new split. */
static bd_status fill_split(const bd_data_spec *s, const site *sites,
                            int64_t n_sites, const bool *flag, int64_t n,
                            bd_split *out)
{
    out->n = n;
    if (n == 0)
        return BD_OK;
    out->images = bd_tensor_new4(n, 1, s->size, s->size, false);
    out->labels = bd_tensor_new4(n, 2, 0, 0, false);
    float *scratch = malloc(2 * (size_t)s->size * sizeof *scratch);
    if (!out->images || !out->labels || !scratch) {
        free(scratch);
        return bd_fail(BD_E_NOMEM, "dataset: cannot allocate %lld images of"
                       " %lldx%lld", (long long)n, (long long)s->size,
                       (long long)s->size);
    }
    const int64_t pixels = s->size * s->size;
    int64_t k = 0;
    for (int64_t i = 0; i < n_sites; i++) {
        if (!flag[i])
            continue;
        draw(s, &sites[i], scratch, scratch + s->size,
             out->images->data + k * pixels);
        out->labels->data[2 * k] = (float)sites[i].x;
        out->labels->data[2 * k + 1] = (float)sites[i].y;
        k++;
    }
    free(scratch);
    return BD_OK;
}

/* ---- the dataset ---------------------------------------------------------- */

void bd_dataset_free(bd_dataset *d)
{
    if (!d)
        return;
    bd_tensor_free(d->train.images);
    bd_tensor_free(d->train.labels);
    bd_tensor_free(d->held.images);
    bd_tensor_free(d->held.labels);
    free(d);
}

static bd_status check_count(const bd_data_spec *s, int64_t nx, int64_t ny,
                             int64_t n)
{
    if (n > MAX_PIXELS / (s->size * s->size))
        return bd_fail(BD_E_ARG, "dataset: dx = %g, dy = %g give %lld x %lld"
                       " lattice sites, %lld images of %lldx%lld: more than"
                       " 2^30 pixels; raise dx or dy", s->dx, s->dy,
                       (long long)nx, (long long)ny, (long long)n,
                       (long long)s->size, (long long)s->size);
    return BD_OK;
}

/* Split the sites into held-out and kept-for-training flags. */
static bd_status split_sites(const bd_data_spec *s, const site *sites, int64_t n,
                             bool *held, bool *train, int64_t *n_held,
                             int64_t *n_train)
{
    int64_t candidates = 0;
    for (int64_t i = 0; i < n; i++) {
        held[i] = held_out(s, &sites[i]);
        candidates += !held[i];
    }
    *n_held = n - candidates;
    if (candidates == 0)
        return bd_fail(BD_E_ARG, "dataset: the held-out region covers all %lld"
                       " images, leaving none for training", (long long)n);
    int64_t keep = (int64_t)llround(s->lambda * (double)candidates);
    if (keep == 0)
        return bd_fail(BD_E_ARG, "dataset: lambda = %g keeps 0 of %lld training"
                       " images; expected at least 1", s->lambda,
                       (long long)candidates);
    bool *kept = calloc((size_t)candidates, sizeof *kept);
    if (!kept)
        return bd_fail(BD_E_NOMEM, "dataset: out of memory");
    bd_status st = choose_kept(s->seed, candidates, keep, kept);
    for (int64_t i = 0, c = 0; i < n; i++)
        train[i] = !held[i] && kept[c++];
    free(kept);
    *n_train = keep;
    return st;
}

static bd_status build(bd_dataset *d, site *sites, bool *flags, int64_t n)
{
    const bd_data_spec *s = &d->spec;
    bool *held = flags, *train = flags + n;
    int64_t n_held = 0, n_train = 0;
    BD_TRY(split_sites(s, sites, n, held, train, &n_held, &n_train));
    BD_TRY(fill_split(s, sites, n, train, n_train, &d->train));
    return fill_split(s, sites, n, held, n_held, &d->held);
}

bd_status bd_dataset_new(const bd_data_spec *spec, bd_dataset **out)
{
    BD_TRY(bd_data_check(spec));
    const double canvas = (double)spec->canvas;
    int64_t nx = lattice_count(canvas, spec->dx, spec->periodic);
    int64_t ny = lattice_count(canvas, spec->dy, spec->periodic);
    int64_t n = site_count(spec, nx, ny);
    BD_TRY(check_count(spec, nx, ny, n));
    bd_dataset *d = calloc(1, sizeof *d);
    site *sites = malloc((size_t)n * sizeof *sites);
    bool *flags = malloc(2 * (size_t)n * sizeof *flags);
    bd_status st = d && sites && flags ? BD_OK
                 : bd_fail(BD_E_NOMEM, "dataset: out of memory");
    if (st == BD_OK) {
        d->spec = *spec;
        enumerate(spec, nx, ny, sites);
        st = build(d, sites, flags, n);
    }
    free(sites);
    free(flags);
    if (st != BD_OK) {
        bd_dataset_free(d);
        return st;
    }
    *out = d;
    return BD_OK;
}

/* ---- drawing given labels --------------------------------------------------- */

bd_status bd_data_draw(const bd_data_spec *spec, const bd_tensor *labels,
                       bd_tensor **images)
{
    char sh[64];
    BD_TRY(bd_data_check(spec));
    if (spec->kind == BD_DATA_STRIPES)
        return bd_fail(BD_E_ARG, "data draw: a stripe has one coordinate, not"
                       " an (x, y) label; expected kind bumps or stripe_sum");
    if (!labels || labels->ndim != 2 || labels->shape[1] != 2)
        return bd_fail(BD_E_ARG, "data draw: labels have shape %s, expected"
                       " (N, 2)", labels ? bd_shape_str(labels, sh, sizeof sh)
                                         : "NULL");
    const int64_t n = labels->shape[0];
    BD_TRY(check_count(spec, n, 1, n));
    site *sites = malloc((size_t)(n ? n : 1) * sizeof *sites);
    bool *all = malloc((size_t)(n ? n : 1) * sizeof *all);
    bd_split split = {0};
    bd_status st = sites && all ? BD_OK
                 : bd_fail(BD_E_NOMEM, "data draw: out of memory");
    for (int64_t i = 0; st == BD_OK && i < n; i++) {
        sites[i] = (site){labels->data[2 * i], labels->data[2 * i + 1],
                          spec->kind == BD_DATA_BUMPS ? SHAPE_BUMP : SHAPE_SUM};
        all[i] = true;
    }
    if (st == BD_OK)
        st = fill_split(spec, sites, n, all, n, &split);
    free(sites);
    free(all);
    bd_tensor_free(split.labels);
    if (st != BD_OK) {
        bd_tensor_free(split.images);
        return st;
    }
    *images = split.images;
    return BD_OK;
}
