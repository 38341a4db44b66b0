/* Grid codes, their unit step vectors, and cosine sums by blocks of the
 * steps' Gram matrices. */
#include "steps.h"

#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define GRAM_BLOCK 256

/* ---- the grid -------------------------------------------------------------- */

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The distinct values of labels[:, c] (merged within GRID_TOL), ascending,
 * into axis (n doubles of room); returns how many. */
static int64_t axis_values(const float *labels, int64_t n, int c, double *axis)
{
    for (int64_t i = 0; i < n; i++)
        axis[i] = labels[2 * i + c];
    qsort(axis, (size_t)n, sizeof *axis, by_value);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (m == 0 || axis[i] - axis[m - 1] > GRID_TOL)
            axis[m++] = axis[i];
    return m;
}

/* The index of the axis value within GRID_TOL of v (there is one). */
static int64_t axis_index(const double *axis, int64_t m, double v)
{
    int64_t lo = 0, hi = m - 1;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (axis[mid] < v - GRID_TOL)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int grid_code_build(const float *x, const float *labels, int64_t n, int64_t d,
                    grid_code *g)
{
    memset(g, 0, sizeof *g);
    double *ax = malloc((size_t)n * sizeof *ax), *ay = malloc((size_t)n * sizeof *ay);
    int rc = ax && ay ? 0 : -1;
    if (rc == 0) {
        g->gx = axis_values(labels, n, 0, ax);
        g->gy = axis_values(labels, n, 1, ay);
        g->d = d;
        if (g->gx * g->gy > 4 * n)
            rc = -2;
    }
    if (rc == 0) {
        g->v = calloc((size_t)(g->gx * g->gy * d), sizeof *g->v);
        g->count = calloc((size_t)(g->gx * g->gy), sizeof *g->count);
        rc = g->v && g->count ? 0 : -1;
    }
    for (int64_t s = 0; rc == 0 && s < n; s++) {
        int64_t cell = axis_index(ay, g->gy, labels[2 * s + 1]) * g->gx
                     + axis_index(ax, g->gx, labels[2 * s]);
        g->count[cell]++;
        for (int64_t k = 0; k < d; k++)
            g->v[cell * d + k] += x[s * d + k];
    }
    for (int64_t cell = 0; rc == 0 && cell < g->gx * g->gy; cell++)
        for (int64_t k = 0; g->count[cell] > 1 && k < d; k++)
            g->v[cell * d + k] /= (float)g->count[cell];
    free(ax);
    free(ay);
    if (rc != 0)
        grid_code_free(g);
    return rc;
}

void grid_code_free(grid_code *g)
{
    free(g->v);
    free(g->count);
    g->v = NULL;
    g->count = NULL;
}

/* ---- steps ----------------------------------------------------------------- */

/* The cell one step along x (along_x) or y from (i, j), wrapping round
 * when periodic and the axis has at least 3 values; -1 past the edge. */
static int64_t next_cell(const grid_code *g, bool along_x, int periodic,
                         int64_t i, int64_t j)
{
    int64_t len = along_x ? g->gx : g->gy, k = (along_x ? i : j) + 1;
    if (k >= len) {
        if (!periodic || len < 3)
            return -1;
        k = 0;
    }
    return along_x ? j * g->gx + k : k * g->gx + i;
}

/* Unit steps along x (along_x) or y: rows of out (room for every cell),
 * each tagged with the index of its start along that axis. Returns how
 * many. */
static int64_t unit_steps(const grid_code *g, bool along_x, int periodic,
                          float *out, int32_t *tag)
{
    const int64_t d = g->d;
    int64_t m = 0;
    for (int64_t j = 0; j < g->gy; j++)
        for (int64_t i = 0; i < g->gx; i++) {
            int64_t a = j * g->gx + i, b = next_cell(g, along_x, periodic, i, j);
            if (b < 0 || !g->count[a] || !g->count[b])
                continue;
            double norm = 0;
            for (int64_t k = 0; k < d; k++) {
                out[m * d + k] = g->v[b * d + k] - g->v[a * d + k];
                norm += (double)out[m * d + k] * out[m * d + k];
            }
            if (norm == 0)
                continue;
            for (int64_t k = 0; k < d; k++)
                out[m * d + k] = (float)(out[m * d + k] / sqrt(norm));
            tag[m++] = (int32_t)(along_x ? i : j);
        }
    return m;
}

typedef struct cos_sums {
    double  sum, sum_abs, aligned;
    int64_t pairs, aligned_pairs;
    int     bins;
    double *hist;  /* bins counts (NULL: none) */
} cos_sums;

/* Sums of the cosines a_p . b_q over pairs (p, q), p != q when same, and
 * over the pairs with equal tags; their histogram when s->hist. a: (na,
 * d), b: (nb, d), unit rows. */
static int gram_sums(const float *a, const int32_t *ta, int64_t na,
                     const float *b, const int32_t *tb, int64_t nb, int64_t d,
                     bool same, cos_sums *s)
{
    s->sum = s->sum_abs = s->aligned = 0;
    s->pairs = s->aligned_pairs = 0;
    if (na == 0 || nb == 0)
        return 0;
    float *buf = malloc((size_t)(GRAM_BLOCK * nb) * sizeof *buf);
    if (!buf)
        return -1;
    for (int64_t r0 = 0; r0 < na; r0 += GRAM_BLOCK) {
        int64_t nr = na - r0 < GRAM_BLOCK ? na - r0 : GRAM_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)nb,
                    (int)d, 1.0f, a + r0 * d, (int)d, b, (int)d, 0.0f, buf,
                    (int)nb);
        for (int64_t p = 0; p < nr; p++)
            for (int64_t q = 0; q < nb; q++) {
                if (same && r0 + p == q)
                    continue;
                double c = buf[p * nb + q];
                s->sum += c;
                s->sum_abs += fabs(c);
                s->pairs++;
                if (s->hist) {
                    int k = (int)floor((c + 1) / 2 * s->bins);
                    s->hist[k < 0 ? 0 : k >= s->bins ? s->bins - 1 : k]++;
                }
                if (ta[r0 + p] == tb[q]) {
                    s->aligned += c;
                    s->aligned_pairs++;
                }
            }
    }
    free(buf);
    return 0;
}

static double mean(double sum, int64_t n) { return n ? sum / (double)n : NAN; }

/* Counts to fractions of their total (left 0 when there are none). */
static void normalise(double *hist, int bins, int64_t pairs)
{
    for (int k = 0; pairs > 0 && k < bins; k++)
        hist[k] /= (double)pairs;
}

int step_stats_compute(const grid_code *g, const step_options *o,
                       step_stats *out)
{
    const int64_t cells = g->gx * g->gy, d = g->d;
    float *sx = malloc((size_t)(cells * d) * sizeof *sx);
    float *sy = malloc((size_t)(cells * d) * sizeof *sy);
    int32_t *tx = malloc((size_t)cells * sizeof *tx);
    int32_t *ty = malloc((size_t)cells * sizeof *ty);
    const int bins = o->hist ? o->bins : 0;
    cos_sums xy = {.bins = bins}, xx = {.bins = bins}, yy = {.bins = bins};
    if (bins > 0) {
        memset(o->hist, 0, (size_t)(3 * bins) * sizeof *o->hist);
        xy.hist = o->hist;
        xx.hist = o->hist + bins;
        yy.hist = o->hist + 2 * bins;
    }
    int rc = sx && sy && tx && ty ? 0 : -1;
    if (rc == 0) {
        out->steps_x = unit_steps(g, true, o->periodic, sx, tx);
        out->steps_y = unit_steps(g, false, o->periodic, sy, ty);
        rc = gram_sums(sx, tx, out->steps_x, sy, ty, out->steps_y, d, false, &xy);
    }
    if (rc == 0)
        rc = gram_sums(sx, tx, out->steps_x, sx, tx, out->steps_x, d, true, &xx);
    if (rc == 0)
        rc = gram_sums(sy, ty, out->steps_y, sy, ty, out->steps_y, d, true, &yy);
    if (rc == 0) {
        out->orthogonality = mean(xy.sum_abs, xy.pairs);
        out->parallel_x = mean(xx.sum, xx.pairs);
        out->parallel_y = mean(yy.sum, yy.pairs);
        out->aligned_x = mean(xx.aligned, xx.aligned_pairs);
        out->aligned_y = mean(yy.aligned, yy.aligned_pairs);
        normalise(xy.hist, bins, xy.pairs);
        normalise(xx.hist, bins, xx.pairs);
        normalise(yy.hist, bins, yy.pairs);
    }
    free(sx);
    free(sy);
    free(tx);
    free(ty);
    return rc;
}
