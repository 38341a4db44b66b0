/* Difference vectors of a code over a label grid, and how they align.
 * Plain C with no host calls (OpenBLAS), so the tests compile it directly.
 *
 * The grid: the distinct x labels x_0 < x_1 < ... and y labels (values
 * within GRID_TOL merge), with the mean activation v(i, j) of the samples
 * at (x_i, y_j). An x-step is v(i+1, j) - v(i, j) where both cells hold
 * samples; a y-step v(i, j+1) - v(i, j). Zero steps are left out. */
#ifndef BD_FACTORIZATION_STEPS_H
#define BD_FACTORIZATION_STEPS_H

#include <stdint.h>

#define GRID_TOL 1e-3  /* labels closer than this are one grid value */

typedef struct grid_code {
    int64_t  gx, gy, d;
    float   *v;    /* (gy, gx, d): v(i, j) at (j * gx + i) * d */
    int32_t *count; /* (gy, gx) samples averaged into each cell */
} grid_code;

/* x: (n, d) activations, labels: (n, 2). Returns 0, -1 when out of memory,
 * -2 when the labels take more than 4 n distinct (x, y) cells (not a grid). */
int  grid_code_build(const float *x, const float *labels, int64_t n, int64_t d,
                     grid_code *g);
void grid_code_free(grid_code *g);

typedef struct step_stats {
    int64_t steps_x, steps_y;
    double  orthogonality;  /* mean |cos| of (x-step, y-step) pairs */
    double  parallel_x;     /* mean cos of pairs of distinct x-steps */
    double  parallel_y;
    double  aligned_x;      /* ... of x-steps between the same x_i, x_i+1
                               at different y_j (NaN when none) */
    double  aligned_y;
} step_stats;

typedef struct step_options {
    int     periodic;  /* 1: the grid wraps (see above) */
    int     bins;      /* histogram bins over [-1, 1] (0: none) */
    double *hist;      /* (3, bins), filled: the fractions of the pairs of
                          (x-step, y-step), of distinct x-steps and of
                          distinct y-steps whose cosine falls in bin k,
                          [-1 + 2k / bins, -1 + 2 (k + 1) / bins) (1 in the
                          last: numpy.histogram's bins over [-1, 1]); all 0
                          without pairs */
} step_options;

/* Returns 0, or -1 when out of memory. Means over no pairs are NaN. */
int step_stats_compute(const grid_code *g, const step_options *o,
                       step_stats *out);

#endif
