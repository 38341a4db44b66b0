/* Metric "bump": are generated images single bumps at the requested place?
 *
 * Each image (channels averaged) is thresholded; connected components of at
 * least min_size pixels are bumps; the strongest one's centre is the
 * intensity-weighted centroid over it grown by `window` pixels (detect.h).
 * Its class, against the requested label (x = column, y = row, in pixels as
 * in bd/data.h):
 *   0 none     no bump
 *   1 several  two or more bumps
 *   2 wrong    one bump, off by more than `tolerance` in x or in y
 *   3 correct  one bump within `tolerance` of the label in both x and y
 *
 * Config (ours where docs/PAPER.md is silent):
 *   threshold     0.0   a pixel is on when its value (in [-1, 1]) is above
 *   connectivity  8     4 or 8
 *   min_size      1     smallest component that counts, in pixels
 *   window        2     centroid window growth, pixels
 *   tolerance     1.0   pixels, in each coordinate
 *   periodic      0     1: images on a torus (bd.data's periodic): bumps
 *                       that cross an edge are one component, and a
 *                       centre is compared with the label the short way
 *                       round (its copy nearest the label, which is what
 *                       `centre` then holds: within size / 2 of the label)
 *   axis_tolerance 0.5  pixels, for place_x and place_y (each axis on its
 *                       own, among one-bump images)
 *   lattice_dx, lattice_dy   0   the training lattice's spacing on each
 *                       axis (0: none; snap_x / snap_y are then NaN)
 *   lattice_x0, lattice_y0   0   its origin: values x0 + k dx, k integer
 *   region        all   which labels the aggregates cover: all, or the
 *                       held-out shapes of bd/data.h: rect (x in [x0, x1]
 *                       and y in [y0, y1]), cross (x in .. or y in ..),
 *                       xband (x in ..), yband (y in ..); bounds inclusive
 *   region_x0, region_x1, region_y0, region_y1   the bounds the shape uses
 *   inside        1     1: labels in the region; 0: those outside it
 *
 * Results, over the images of the region (all batches since creation):
 *   n, accuracy (= frac_correct), acc_x, acc_y (one bump, within tolerance
 *   in that coordinate), frac_none, frac_multi, frac_wrong, frac_correct,
 *   mean_error, median_error (Euclidean, pixels, over one-bump images;
 *   NaN when there are none);
 * each axis on its own, so that neither shares the other's cap (over the
 * one-bump images; NaN when there are none):
 *   frac_single   the fraction of images with one bump (the shared part)
 *   place_x, place_y   fraction within axis_tolerance in that coordinate
 *   err_x, err_y, mean_err_x, mean_err_y   median and mean |found - asked|
 *   snap_x, snap_y     fraction whose coordinate is nearer the nearest
 *                      lattice value than the asked one (strictly): the
 *                      bump went to a training value instead
 * and per image, over every image in the order given:
 *   count (n), centre (n, 2) (NaN without a bump), class (n). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bd/plugin.h"
#include "detect.h"

enum { CLASS_NONE, CLASS_SEVERAL, CLASS_WRONG, CLASS_CORRECT };
enum { REGION_ALL, REGION_RECT, REGION_CROSS, REGION_XBAND, REGION_YBAND };
static const char *const REGIONS[] = {"all", "rect", "cross", "xband", "yband",
                                      NULL};

typedef struct region {
    int    kind;
    bool   inside;
    double x0, x1, y0, y1;
} region;

/* What was found in one image. */
typedef struct seen {
    float   lx, ly;  /* requested */
    float   cx, cy;  /* found */
    int32_t count;
} seen;

typedef struct bump_metric {
    const bd_host *h;
    bump_params    p;
    double         tolerance;
    double         axis_tolerance;
    double         lattice[2][2];  /* {origin, spacing} of x and of y */
    region         region;
    seen          *seen;
    int64_t        n, cap;
    bump_work      work;
    float         *plane;   /* the channel mean of one image */
    int64_t        pixels;  /* what work and plane hold */
} bump_metric;

/* ---- config ---------------------------------------------------------------- */

/* A pair of bounds [lo, hi] of the region; unset ones stay infinite. */
static bd_status read_bounds(bump_metric *m, bd_config *cfg, const char *axis,
                             double *lo, double *hi)
{
    const bd_host *h = m->h;
    char k0[16], k1[16];
    strcpy(k0, "region_x0");
    strcpy(k1, "region_x1");
    k0[7] = k1[7] = axis[0];
    BD_TRY(h->config_num(cfg, k0, INFINITY, -INFINITY, INFINITY, lo));
    BD_TRY(h->config_num(cfg, k1, -INFINITY, -INFINITY, INFINITY, hi));
    if (!isfinite(*lo) || !isfinite(*hi))
        return h->fail(BD_E_ARG, "bump: region = %s needs finite %s and %s",
                       REGIONS[m->region.kind], k0, k1);
    if (*lo > *hi)
        return h->fail(BD_E_ARG, "bump: region = %s needs %s <= %s, got %g and"
                       " %g", REGIONS[m->region.kind], k0, k1, *lo, *hi);
    return BD_OK;
}

static bd_status read_region(bump_metric *m, bd_config *cfg)
{
    const bd_host *h = m->h;
    region *r = &m->region;
    int64_t inside;
    BD_TRY(h->config_choice(cfg, "region", "all", REGIONS, &r->kind));
    if (r->kind == REGION_ALL)
        return BD_OK;
    BD_TRY(h->config_int(cfg, "inside", 1, 0, 1, &inside));
    r->inside = inside != 0;
    if (r->kind != REGION_YBAND)
        BD_TRY(read_bounds(m, cfg, "x", &r->x0, &r->x1));
    if (r->kind != REGION_XBAND)
        BD_TRY(read_bounds(m, cfg, "y", &r->y0, &r->y1));
    return BD_OK;
}

static bd_status read_config(bump_metric *m, bd_config *cfg)
{
    const bd_host *h = m->h;
    int64_t conn, min_size, window, periodic;
    BD_TRY(h->config_num(cfg, "threshold", 0.0, -1.0, 1.0, &m->p.threshold));
    BD_TRY(h->config_int(cfg, "connectivity", 8, 4, 8, &conn));
    if (conn != 4 && conn != 8)
        return h->fail(BD_E_ARG, "bump: connectivity = %lld, expected 4 or 8",
                       (long long)conn);
    BD_TRY(h->config_int(cfg, "min_size", 1, 1, 1 << 20, &min_size));
    BD_TRY(h->config_int(cfg, "window", 2, 0, 16, &window));
    BD_TRY(h->config_int(cfg, "periodic", 0, 0, 1, &periodic));
    BD_TRY(h->config_num(cfg, "tolerance", 1.0, 0.0, 1e6, &m->tolerance));
    BD_TRY(h->config_num(cfg, "axis_tolerance", 0.5, 0.0, 1e6,
                         &m->axis_tolerance));
    BD_TRY(h->config_num(cfg, "lattice_x0", 0.0, -1e6, 1e6, &m->lattice[0][0]));
    BD_TRY(h->config_num(cfg, "lattice_dx", 0.0, 0.0, 1e6, &m->lattice[0][1]));
    BD_TRY(h->config_num(cfg, "lattice_y0", 0.0, -1e6, 1e6, &m->lattice[1][0]));
    BD_TRY(h->config_num(cfg, "lattice_dy", 0.0, 0.0, 1e6, &m->lattice[1][1]));
    m->p.connectivity = (int)conn;
    m->p.min_size = (int)min_size;
    m->p.window = (int)window;
    m->p.periodic = (int)periodic;
    return read_region(m, cfg);
}

static void bump_destroy(void *state)
{
    bump_metric *m = state;
    if (!m)
        return;
    free(m->seen);
    free(m->work.label);
    free(m->work.stack);
    free(m->plane);
    free(m);
}

static bd_status bump_create(const bd_host *h, bd_config *cfg, void **state)
{
    bump_metric *m = calloc(1, sizeof *m);
    if (!m)
        return h->fail(BD_E_NOMEM, "bump: out of memory");
    m->h = h;
    bd_status s = read_config(m, cfg);
    if (s != BD_OK) {
        bump_destroy(m);
        return s;
    }
    *state = m;
    return BD_OK;
}

/* ---- update ---------------------------------------------------------------- */

/* Room for `more` images and scratch for images of `pixels` pixels. */
static bd_status reserve(bump_metric *m, int64_t more, int64_t pixels)
{
    if (m->n + more > m->cap) {
        int64_t cap = m->cap ? m->cap : 256;
        while (cap < m->n + more)
            cap *= 2;
        seen *grown = realloc(m->seen, (size_t)cap * sizeof *grown);
        if (!grown)
            return m->h->fail(BD_E_NOMEM, "bump: out of memory");
        m->seen = grown;
        m->cap = cap;
    }
    if (pixels > m->pixels) {
        free(m->work.label);
        free(m->work.stack);
        free(m->plane);
        m->work.label = malloc((size_t)pixels * sizeof(int32_t));
        m->work.stack = malloc((size_t)pixels * sizeof(int32_t));
        m->plane = malloc((size_t)pixels * sizeof(float));
        m->pixels = pixels;
        if (!m->work.label || !m->work.stack || !m->plane) {
            m->pixels = 0;
            return m->h->fail(BD_E_NOMEM, "bump: out of memory");
        }
    }
    return BD_OK;
}

/* The mean over c channels of planes of `pixels` values. */
static void channel_mean(const float *img, int64_t c, int64_t pixels, float *out)
{
    for (int64_t k = 0; k < pixels; k++) {
        double s = 0;
        for (int64_t ch = 0; ch < c; ch++)
            s += img[ch * pixels + k];
        out[k] = (float)(s / (double)c);
    }
}

/* The copy of a found coordinate on a torus of side n nearest the asked one. */
static double nearest_copy(double found, double asked, int64_t n)
{
    return asked + (found - asked) - (double)n * nearbyint((found - asked) / (double)n);
}

/* images: (N, C, H, W), labels: (N, 2) */
static bd_status bump_update(void *state, const bd_metric_batch *b)
{
    bump_metric *m = state;
    const bd_host *h = m->h;
    int64_t n = h->tensor_dim(b->images, 0), c = h->tensor_dim(b->images, 1);
    int64_t rows = h->tensor_dim(b->images, 2), cols = h->tensor_dim(b->images, 3);
    if (rows * cols > (1 << 28))
        return h->fail(BD_E_ARG, "bump: images of %lld x %lld pixels, expected"
                       " at most 2^28", (long long)rows, (long long)cols);
    BD_TRY(reserve(m, n, rows * cols));
    const float *img = h->tensor_data(b->images);
    const float *lab = h->tensor_data(b->labels);
    for (int64_t i = 0; i < n; i++) {
        channel_mean(img + i * c * rows * cols, c, rows * cols, m->plane);
        bump_found f = bump_detect(m->plane, (int)rows, (int)cols, &m->p,
                                   &m->work);
        if (m->p.periodic && f.count > 0) {
            f.cx = nearest_copy(f.cx, lab[2 * i], cols);
            f.cy = nearest_copy(f.cy, lab[2 * i + 1], rows);
        }
        m->seen[m->n++] = (seen){lab[2 * i], lab[2 * i + 1], (float)f.cx,
                                 (float)f.cy, f.count};
    }
    return BD_OK;
}

/* ---- compute --------------------------------------------------------------- */

static bool in_range(double v, double lo, double hi) { return v >= lo && v <= hi; }

static bool in_region(const region *r, double x, double y)
{
    bool in;
    switch (r->kind) {
    case REGION_RECT:  in = in_range(x, r->x0, r->x1) && in_range(y, r->y0, r->y1); break;
    case REGION_CROSS: in = in_range(x, r->x0, r->x1) || in_range(y, r->y0, r->y1); break;
    case REGION_XBAND: in = in_range(x, r->x0, r->x1); break;
    case REGION_YBAND: in = in_range(y, r->y0, r->y1); break;
    default:           return true;
    }
    return in == r->inside;
}

static int classify(const seen *s, double tol)
{
    if (s->count == 0)
        return CLASS_NONE;
    if (s->count > 1)
        return CLASS_SEVERAL;
    return fabs(s->cx - s->lx) <= tol && fabs(s->cy - s->ly) <= tol
         ? CLASS_CORRECT : CLASS_WRONG;
}

static int compare_floats(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* One axis of the one-bump images: within axis_tolerance, snapped, and
 * the |found - asked| of each. */
typedef struct axis_tally {
    int64_t placed, snapped;
    double  sum;
    float  *err;  /* n_err of them */
} axis_tally;

typedef struct tally {
    int64_t    n, cls[4], ok_x, ok_y, n_err;
    double     err_sum;
    float     *err;  /* n_err errors of one-bump images */
    axis_tally axis[2];
} tally;

/* True when `found` is strictly nearer the lattice value nearest to it than
 * the asked value (a lattice {origin, spacing}; never without a spacing). */
static bool snapped(const double lattice[2], double found, double asked)
{
    if (!(lattice[1] > 0))
        return false;
    double nearest = lattice[0] + round((found - lattice[0]) / lattice[1]) * lattice[1];
    return fabs(found - nearest) < fabs(found - asked);
}

/* Add one coordinate of a one-bump image to its axis. */
static void count_axis(const bump_metric *m, int a, double found, double asked,
                       axis_tally *t, int64_t k)
{
    double e = fabs(found - asked);
    t->placed += e <= m->axis_tolerance;
    t->snapped += snapped(m->lattice[a], found, asked);
    t->sum += e;
    t->err[k] = (float)e;
}

static void count_region(const bump_metric *m, tally *t)
{
    for (int64_t i = 0; i < m->n; i++) {
        const seen *s = &m->seen[i];
        if (!in_region(&m->region, s->lx, s->ly))
            continue;
        t->n++;
        t->cls[classify(s, m->tolerance)]++;
        if (s->count != 1)
            continue;
        t->ok_x += fabs(s->cx - s->lx) <= m->tolerance;
        t->ok_y += fabs(s->cy - s->ly) <= m->tolerance;
        count_axis(m, 0, s->cx, s->lx, &t->axis[0], t->n_err);
        count_axis(m, 1, s->cy, s->ly, &t->axis[1], t->n_err);
        float e = hypotf(s->cx - s->lx, s->cy - s->ly);
        t->err[t->n_err++] = e;
        t->err_sum += e;
    }
}

/* The median of n values (sorted in place); NaN for none. */
static double median_of(float *v, int64_t n)
{
    if (n == 0)
        return NAN;
    qsort(v, (size_t)n, sizeof(float), compare_floats);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* place_, snap_, err_ and mean_err_ of one axis ("x" or "y"). */
static bd_status report_axis(const bump_metric *m, const tally *t, int a,
                             bd_metric_result *r)
{
    const bd_host *h = m->h;
    const axis_tally *at = &t->axis[a];
    const char *name = a ? "y" : "x";
    double ones = t->n_err ? (double)t->n_err : NAN;
    char key[16];
    snprintf(key, sizeof key, "place_%s", name);
    BD_TRY(h->result_number(r, key, at->placed / ones));
    snprintf(key, sizeof key, "snap_%s", name);
    BD_TRY(h->result_number(r, key, m->lattice[a][1] > 0 ? at->snapped / ones : NAN));
    snprintf(key, sizeof key, "mean_err_%s", name);
    BD_TRY(h->result_number(r, key, at->sum / ones));
    snprintf(key, sizeof key, "err_%s", name);
    return h->result_number(r, key, median_of(at->err, t->n_err));
}

static bd_status report_numbers(const bump_metric *m, tally *t,
                                bd_metric_result *r)
{
    const bd_host *h = m->h;
    double n = t->n ? (double)t->n : NAN;
    double median = median_of(t->err, t->n_err);
    BD_TRY(h->result_number(r, "n", (double)t->n));
    BD_TRY(h->result_number(r, "accuracy", t->cls[CLASS_CORRECT] / n));
    BD_TRY(h->result_number(r, "acc_x", t->ok_x / n));
    BD_TRY(h->result_number(r, "acc_y", t->ok_y / n));
    BD_TRY(h->result_number(r, "frac_none", t->cls[CLASS_NONE] / n));
    BD_TRY(h->result_number(r, "frac_multi", t->cls[CLASS_SEVERAL] / n));
    BD_TRY(h->result_number(r, "frac_wrong", t->cls[CLASS_WRONG] / n));
    BD_TRY(h->result_number(r, "frac_correct", t->cls[CLASS_CORRECT] / n));
    BD_TRY(h->result_number(r, "mean_error",
                            t->n_err ? t->err_sum / (double)t->n_err : NAN));
    BD_TRY(h->result_number(r, "median_error", median));
    BD_TRY(h->result_number(r, "frac_single", t->n_err / n));
    BD_TRY(report_axis(m, t, 0, r));
    return report_axis(m, t, 1, r);
}

/* count (n), centre (n, 2), class (n) of every image */
static bd_status report_arrays(const bump_metric *m, float *buf,
                               bd_metric_result *r)
{
    const bd_host *h = m->h;
    const int64_t n = m->n, one[1] = {n}, two[2] = {n, 2};
    for (int64_t i = 0; i < n; i++)
        buf[i] = (float)m->seen[i].count;
    BD_TRY(h->result_array(r, "count", 1, one, buf));
    for (int64_t i = 0; i < n; i++)
        buf[i] = (float)classify(&m->seen[i], m->tolerance);
    BD_TRY(h->result_array(r, "class", 1, one, buf));
    for (int64_t i = 0; i < n; i++) {
        buf[2 * i] = m->seen[i].cx;
        buf[2 * i + 1] = m->seen[i].cy;
    }
    return h->result_array(r, "centre", 2, two, buf);
}

static bd_status bump_compute(void *state, bd_metric_result *r)
{
    bump_metric *m = state;
    /* the errors, then those of x and of y; later the arrays (2 n) */
    float *buf = malloc((size_t)(3 * m->n + 1) * sizeof(float));
    if (!buf)
        return m->h->fail(BD_E_NOMEM, "bump: out of memory");
    tally t = {.err = buf};
    t.axis[0].err = buf + m->n;
    t.axis[1].err = buf + 2 * m->n;
    count_region(m, &t);
    bd_status s = report_numbers(m, &t, r);
    if (s == BD_OK && m->n > 0)
        s = report_arrays(m, buf, r);
    free(buf);
    return s;
}

/* ---- the plugin ------------------------------------------------------------ */

static const bd_metric_desc bump_desc = {
    BD_DESC_HEADER(bd_metric_desc),
    .name = "bump",
    .description = "bump count, centroid and class per image (none, several, "
                   "wrong, correct); accuracy, acc_x, acc_y, errors",
    .create = bump_create,
    .update = bump_update,
    .compute = bump_compute,
    .destroy = bump_destroy,
};

static const bd_metric_desc *const metrics[] = {&bump_desc};

static const bd_plugin_info info = {
    BD_PLUGIN_INFO_HEADER,
    .name = "bump",
    .version = "1.0",
    .description = "bump detection and localisation in generated images",
    .n_metrics = 1,
    .metrics = metrics,
};

BD_PLUGIN_DEFINE(info)
