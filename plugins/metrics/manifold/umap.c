/* UMAP: fuzzy simplicial set from exact kNN, then SGD layout. */
#include "umap.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "knn.h"
#include "rand.h"
#include "spectral.h"

#define SMOOTH_K_TOL      1e-5
#define MIN_K_DIST_SCALE  1e-3
#define BISECTION_STEPS   64
#define GRAD_CLIP         4.0f
#define AB_POINTS         300

umap_options umap_defaults(int dims)
{
    return (umap_options){.dims = dims, .neighbors = 15, .min_dist = 0.1,
                          .spread = 1.0, .epochs = 0, .negative_rate = 5,
                          .init = UMAP_INIT_SPECTRAL, .seed = 0};
}

/* ---- the curve's a and b --------------------------------------------------- */

/* Sum of squared residuals of 1 / (1 + a x^(2b)) against f; with jt j and
 * jt r (the Gauss-Newton system) when jtj is not NULL. */
static double ab_cost(const double *x, const double *f, double a, double b,
                      double jtj[3], double jtr[2])
{
    double cost = 0;
    if (jtj)
        jtj[0] = jtj[1] = jtj[2] = jtr[0] = jtr[1] = 0;
    for (int i = 0; i < AB_POINTS; i++) {
        double xb = x[i] > 0 ? pow(x[i], 2 * b) : 0, den = 1 + a * xb;
        double r = 1 / den - f[i];
        cost += r * r;
        if (!jtj)
            continue;
        double da = -xb / (den * den);
        double db = x[i] > 0 ? -a * xb * 2 * log(x[i]) / (den * den) : 0;
        jtj[0] += da * da;
        jtj[1] += da * db;
        jtj[2] += db * db;
        jtr[0] += da * r;
        jtr[1] += db * r;
    }
    return cost;
}

void umap_find_ab(double min_dist, double spread, double *a_out, double *b_out)
{
    double x[AB_POINTS], f[AB_POINTS];
    for (int i = 0; i < AB_POINTS; i++) {
        x[i] = 3 * spread * i / (AB_POINTS - 1);
        f[i] = x[i] < min_dist ? 1 : exp(-(x[i] - min_dist) / spread);
    }
    double a = 1, b = 1, lambda = 1e-3, jtj[3], jtr[2];
    double cost = ab_cost(x, f, a, b, jtj, jtr);
    for (int it = 0; it < 500 && lambda < 1e12; it++) {
        /* (J^T J + lambda diag) delta = -J^T r */
        double m0 = jtj[0] * (1 + lambda), m2 = jtj[2] * (1 + lambda);
        double det = m0 * m2 - jtj[1] * jtj[1];
        double da = (-jtr[0] * m2 + jtr[1] * jtj[1]) / det;
        double db = (-jtr[1] * m0 + jtr[0] * jtj[1]) / det;
        double trial = ab_cost(x, f, a + da, b + db, NULL, NULL);
        if (isfinite(trial) && trial < cost) {
            a += da;
            b += db;
            lambda /= 10;
            bool done = fabs(da) < 1e-12 * fabs(a) && fabs(db) < 1e-12 * fabs(b);
            cost = ab_cost(x, f, a, b, jtj, jtr);
            if (done)
                break;
        } else {
            lambda *= 10;
        }
    }
    *a_out = a;
    *b_out = b;
}

/* ---- the fuzzy graph ------------------------------------------------------- */

/* rho: distance to the nearest other point with a positive distance;
 * sigma: sum_j exp(-(d_j - rho) / sigma) = log2(neighbors), by bisection,
 * floored at MIN_K_DIST_SCALE times the mean distance. dist: (n, k). */
static void smooth_knn(const float *dist, int64_t n, int k, int neighbors,
                       float *rho, float *sigma)
{
    const double target = log2((double)neighbors);
    double mean_all = 0;
    for (int64_t i = 0; i < n * k; i++)
        mean_all += dist[i];
    mean_all /= (double)(n * (k + 1));  /* umap-learn counts the self zeros */
    for (int64_t i = 0; i < n; i++) {
        const float *di = dist + i * k;
        double r = 0, mean_i = 0;
        for (int c = 0; c < k; c++) {
            if (r == 0 && di[c] > 0)
                r = di[c];
            mean_i += di[c];
        }
        mean_i /= k + 1;
        double lo = 0, hi = INFINITY, mid = 1;
        for (int step = 0; step < BISECTION_STEPS; step++) {
            double psum = 0;
            for (int c = 0; c < k; c++) {
                double t = di[c] - r;
                psum += t > 0 ? exp(-t / mid) : 1.0;
            }
            if (fabs(psum - target) < SMOOTH_K_TOL)
                break;
            if (psum > target) {
                hi = mid;
                mid = (lo + hi) / 2;
            } else {
                lo = mid;
                mid = isinf(hi) ? mid * 2 : (lo + hi) / 2;
            }
        }
        double floor = MIN_K_DIST_SCALE * (r > 0 ? mean_i : mean_all);
        rho[i] = (float)r;
        sigma[i] = (float)(mid < floor ? floor : mid);
    }
}

typedef struct entry {
    int32_t row, col;
    float   w;
} entry;

static int by_row_col(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    if (a->row != b->row)
        return (a->row > b->row) - (a->row < b->row);
    return (a->col > b->col) - (a->col < b->col);
}

/* Graph edges, both directions of each, sorted by (head, tail). */
typedef struct graph {
    int64_t  n_edges;
    int32_t *head, *tail;
    float   *w;
} graph;

static void graph_free(graph *g)
{
    free(g->head);
    free(g->tail);
    free(g->w);
}

/* W = A + A^T - A o A^T with A_ij = exp(-(d_ij - rho_i) / sigma_i) (1 when
 * d_ij <= rho_i) over the kNN edges i -> idx[i][c]. */
static int fuzzy_union(const int32_t *idx, const float *dist, const float *rho,
                       const float *sigma, int64_t n, int k, graph *g)
{
    int64_t m = 2 * n * k;
    entry *e = malloc((size_t)m * sizeof *e);
    g->head = malloc((size_t)m * sizeof *g->head);
    g->tail = malloc((size_t)m * sizeof *g->tail);
    g->w = malloc((size_t)m * sizeof *g->w);
    if (!e || !g->head || !g->tail || !g->w) {
        free(e);
        return -1;
    }
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < k; c++) {
            int64_t at = i * k + c;
            double t = dist[at] - rho[i];
            float w = t <= 0 || sigma[i] == 0 ? 1.0f : (float)exp(-t / sigma[i]);
            e[2 * at] = (entry){(int32_t)i, idx[at], w};
            e[2 * at + 1] = (entry){idx[at], (int32_t)i, w};
        }
    qsort(e, (size_t)m, sizeof *e, by_row_col);
    g->n_edges = 0;
    for (int64_t s = 0; s < m; s++) {
        float w = e[s].w;
        if (s + 1 < m && e[s + 1].row == e[s].row && e[s + 1].col == e[s].col) {
            w = w + e[s + 1].w - w * e[s + 1].w;  /* a + b - ab */
            s++;
        }
        g->head[g->n_edges] = e[s].row;
        g->tail[g->n_edges] = e[s].col;
        g->w[g->n_edges++] = w;
    }
    free(e);
    return 0;
}

/* ---- layout ---------------------------------------------------------------- */

/* Rescale each dimension of y (n, dims) to [0, 10]. */
static void rescale(float *y, int64_t n, int dims)
{
    for (int c = 0; c < dims; c++) {
        float lo = INFINITY, hi = -INFINITY;
        for (int64_t i = 0; i < n; i++) {
            lo = fminf(lo, y[i * dims + c]);
            hi = fmaxf(hi, y[i * dims + c]);
        }
        float scale = hi > lo ? 10.0f / (hi - lo) : 1.0f;
        for (int64_t i = 0; i < n; i++)
            y[i * dims + c] = (y[i * dims + c] - lo) * scale;
    }
}

/* A layout (init may be y itself) scaled to max |y| = 10 plus N(0, 1e-4)
 * noise (umap-learn's noisy_scale_coords), or uniform in [-10, 10] when
 * init is NULL; then rescaled. */
static void initial_layout(const float *init, int64_t n, int dims,
                           rand_state *r, float *y)
{
    if (init) {
        float big = 0;
        for (int64_t i = 0; i < n * dims; i++)
            big = fmaxf(big, fabsf(init[i]));
        float scale = big > 0 ? 10.0f / big : 1.0f;
        for (int64_t i = 0; i < n * dims; i++)
            y[i] = init[i] * scale + 1e-4f * (float)rand_normal(r);
    } else {
        for (int64_t i = 0; i < n * dims; i++)
            y[i] = (float)(20 * rand_uniform(r) - 10);
    }
    rescale(y, n, dims);
}

static float clip(float g)
{
    return g > GRAD_CLIP ? GRAD_CLIP : g < -GRAD_CLIP ? -GRAD_CLIP : g;
}

typedef struct schedule {
    double *every;      /* epochs between samples of an edge: max_w / w */
    double *next;       /* epoch of its next sample */
    double *every_neg;  /* epochs between negative samples */
    double *next_neg;
} schedule;

/* One positive sample of edge e (attraction, both ends) and its due
 * negative samples (repulsion of the head from random points). */
static void sample_edge(float *y, int64_t n, int dims, const graph *g,
                        int64_t e, schedule *s, int epoch, float alpha,
                        float a, float b, rand_state *r)
{
    float *cur = y + (int64_t)g->head[e] * dims;
    float *oth = y + (int64_t)g->tail[e] * dims;
    float d2 = 0;
    for (int c = 0; c < dims; c++)
        d2 += (cur[c] - oth[c]) * (cur[c] - oth[c]);
    float coeff = 0;
    if (d2 > 0) {
        float pb = expf(b * logf(d2));  /* d2^b */
        coeff = -2.0f * a * b * (pb / d2) / (a * pb + 1.0f);
    }
    for (int c = 0; c < dims; c++) {
        float grad = clip(coeff * (cur[c] - oth[c]));
        cur[c] += grad * alpha;
        oth[c] -= grad * alpha;
    }
    s->next[e] += s->every[e];
    int n_neg = (int)((epoch - s->next_neg[e]) / s->every_neg[e]);
    for (int p = 0; p < n_neg; p++) {
        int64_t k = rand_below(r, (uint32_t)n);
        oth = y + k * dims;
        d2 = 0;
        for (int c = 0; c < dims; c++)
            d2 += (cur[c] - oth[c]) * (cur[c] - oth[c]);
        if (d2 > 0) {
            float pb = expf(b * logf(d2));
            coeff = 2.0f * b / ((0.001f + d2) * (a * pb + 1.0f));
        } else if (k == g->head[e]) {
            continue;
        } else {
            coeff = 0;
        }
        for (int c = 0; c < dims; c++) {
            float grad = coeff > 0 ? clip(coeff * (cur[c] - oth[c])) : GRAD_CLIP;
            cur[c] += grad * alpha;
        }
    }
    s->next_neg[e] += n_neg * s->every_neg[e];
}

/* Drop the edges under max_w / epochs, compacting g (order kept). */
static void prune(graph *g, int epochs)
{
    float max_w = 0;
    for (int64_t e = 0; e < g->n_edges; e++)
        max_w = fmaxf(max_w, g->w[e]);
    int64_t kept = 0;
    for (int64_t e = 0; e < g->n_edges; e++)
        if (g->w[e] >= max_w / (float)epochs) {
            g->head[kept] = g->head[e];
            g->tail[kept] = g->tail[e];
            g->w[kept++] = g->w[e];
        }
    g->n_edges = kept;
}

/* The SGD over the pruned graph's edges. */
static int optimize(float *y, int64_t n, const umap_options *o, const graph *g,
                    int epochs, rand_state *r)
{
    const int64_t m = g->n_edges;
    float max_w = 0;
    for (int64_t e = 0; e < m; e++)
        max_w = fmaxf(max_w, g->w[e]);
    schedule s;
    double *buf = malloc((size_t)(4 * (m ? m : 1)) * sizeof *buf);
    if (!buf)
        return -1;
    s.every = buf;
    s.next = buf + m;
    s.every_neg = buf + 2 * m;
    s.next_neg = buf + 3 * m;
    for (int64_t e = 0; e < m; e++) {
        s.every[e] = s.next[e] = max_w / g->w[e];
        s.every_neg[e] = s.next_neg[e] = s.every[e] / o->negative_rate;
    }
    double a, b;
    umap_find_ab(o->min_dist, o->spread, &a, &b);
    for (int epoch = 0; epoch < epochs; epoch++) {
        float alpha = 1.0f - (float)epoch / (float)epochs;
        for (int64_t e = 0; e < m; e++)
            if (s.next[e] <= epoch)
                sample_edge(y, n, o->dims, g, e, &s, epoch, alpha, (float)a,
                            (float)b, r);
    }
    free(buf);
    return 0;
}

/* The starting layout into y: spectral (falling back to `given`, or random
 * without it, on a disconnected graph), given, or random. */
static int start(const graph *g, int64_t n, const float *given,
                 const umap_options *o, rand_state *r, float *y,
                 umap_init *used)
{
    *used = o->init == UMAP_INIT_GIVEN && !given ? UMAP_INIT_RANDOM : o->init;
    if (*used == UMAP_INIT_SPECTRAL) {
        int rc = spectral_layout(g->head, g->tail, g->w, g->n_edges, n,
                                 o->dims, o->seed, y);
        if (rc == -1)
            return -1;
        if (rc == 0) {
            initial_layout(y, n, o->dims, r, y);
            return 0;
        }
        *used = given ? UMAP_INIT_GIVEN : UMAP_INIT_RANDOM;
    }
    initial_layout(*used == UMAP_INIT_GIVEN ? given : NULL, n, o->dims, r, y);
    return 0;
}

int umap_embed(const float *x, int64_t n, int64_t d, const float *given,
               const umap_options *o, float *y, umap_init *used)
{
    int k = o->neighbors - 1 < n - 1 ? o->neighbors - 1 : (int)(n - 1);
    int epochs = o->epochs > 0 ? o->epochs : n <= 10000 ? 500 : 200;
    int32_t *idx = malloc((size_t)(n * k) * sizeof *idx);
    float *dist = malloc((size_t)(n * k) * sizeof *dist);
    float *rho = malloc((size_t)n * sizeof *rho);
    float *sigma = malloc((size_t)n * sizeof *sigma);
    graph g = {0};
    rand_state r = {o->seed ^ 0x5A17DEA1u};
    int rc = idx && dist && rho && sigma ? knn_exact(x, n, d, k, idx, dist) : -1;
    if (rc == 0) {
        smooth_knn(dist, n, k, o->neighbors, rho, sigma);
        rc = fuzzy_union(idx, dist, rho, sigma, n, k, &g);
    }
    free(idx);
    free(dist);
    free(rho);
    free(sigma);
    if (rc == 0) {
        prune(&g, epochs);
        rc = start(&g, n, given, o, &r, y, used);
    }
    if (rc == 0)
        rc = optimize(y, n, o, &g, epochs, &r);
    graph_free(&g);
    return rc;
}
