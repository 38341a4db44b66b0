/* Order measures without an embedding: leave-one-out kNN regression R^2
 * and the rank correlation of activation and label distances. */
#include "order.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "knn.h"
#include "rand.h"

/* perm: a seeded random order of 0..n-1 (Fisher-Yates). */
static void shuffle(int64_t n, uint64_t seed, int32_t *perm)
{
    rand_state r = {seed};
    for (int64_t i = 0; i < n; i++)
        perm[i] = (int32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = rand_below(&r, (uint32_t)(i + 1));
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* 1 - SS_res / SS_tot of the predictions pred (n) of labels[.. * 2 + c]. */
static double r2_of(const double *pred, const float *labels, int64_t n, int c)
{
    double mean = 0, res = 0, tot = 0;
    for (int64_t i = 0; i < n; i++)
        mean += labels[2 * i + c];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) {
        double y = labels[2 * i + c];
        res += (y - pred[i]) * (y - pred[i]);
        tot += (y - mean) * (y - mean);
    }
    return tot > 0 ? 1.0 - res / tot : NAN;
}

int order_knn_r2(const float *x, int64_t n, int64_t d, const float *labels,
                 int k, uint64_t seed, double r2[2])
{
    int32_t *perm = malloc((size_t)n * sizeof *perm);
    int32_t *idx = malloc((size_t)(n * k) * sizeof *idx);
    float *dist = malloc((size_t)(n * k) * sizeof *dist);
    float *xp = calloc((size_t)(n * d), sizeof *xp);
    double *pred = malloc((size_t)(2 * n) * sizeof *pred);
    int rc = perm && idx && dist && xp && pred ? 0 : -1;
    if (rc == 0) {
        shuffle(n, seed, perm);
        for (int64_t i = 0; i < n; i++)
            memcpy(xp + i * d, x + (int64_t)perm[i] * d, (size_t)d * sizeof *xp);
        rc = knn_exact(xp, n, d, k, idx, dist);
    }
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        double sx = 0, sy = 0;
        for (int c = 0; c < k; c++) {
            int32_t j = perm[idx[i * k + c]];
            sx += labels[2 * j];
            sy += labels[2 * j + 1];
        }
        pred[perm[i]] = sx / k;
        pred[n + perm[i]] = sy / k;
    }
    if (rc == 0) {
        r2[0] = r2_of(pred, labels, n, 0);
        r2[1] = r2_of(pred + n, labels, n, 1);
    }
    free(perm);
    free(idx);
    free(dist);
    free(xp);
    free(pred);
    return rc;
}

/* ---- rank correlation ------------------------------------------------------- */

typedef struct keyed {
    double  v;
    int64_t at;
} keyed;

static int by_value(const void *a, const void *b)
{
    const keyed *p = a, *q = b;
    return (p->v > q->v) - (p->v < q->v);
}

/* rank (m): average ranks (1-based) of v (m), ties sharing their mean. */
static int ranks(const double *v, int64_t m, double *rank)
{
    keyed *s = malloc((size_t)m * sizeof *s);
    if (!s)
        return -1;
    for (int64_t i = 0; i < m; i++)
        s[i] = (keyed){v[i], i};
    qsort(s, (size_t)m, sizeof *s, by_value);
    for (int64_t i = 0; i < m;) {
        int64_t j = i;
        while (j + 1 < m && s[j + 1].v == s[i].v)
            j++;
        double mean = 0.5 * (double)(i + j) + 1.0;
        for (int64_t q = i; q <= j; q++)
            rank[s[q].at] = mean;
        i = j + 1;
    }
    free(s);
    return 0;
}

static double pearson(const double *a, const double *b, int64_t m)
{
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (int64_t i = 0; i < m; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= (double)m;
    mb /= (double)m;
    for (int64_t i = 0; i < m; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : NAN;
}

static double distance(const float *a, const float *b, int64_t d)
{
    double s = 0;
    for (int64_t c = 0; c < d; c++)
        s += ((double)a[c] - b[c]) * ((double)a[c] - b[c]);
    return sqrt(s);
}

/* The distances of pair p, (i, j): activations in da, labels in dl. */
static void pair_distances(const float *x, int64_t d, const float *labels,
                           int64_t i, int64_t j, double *da, double *dl)
{
    *da = distance(x + i * d, x + j * d, d);
    *dl = distance(labels + 2 * i, labels + 2 * j, 2);
}

double order_rank_corr(const float *x, int64_t n, int64_t d,
                       const float *labels, uint64_t seed)
{
    if (n < 3)
        return NAN;
    const int64_t total = n * (n - 1) / 2;
    const int64_t m = total <= ORDER_MAX_PAIRS ? total : ORDER_MAX_PAIRS;
    double *da = malloc((size_t)m * sizeof *da), *dl = malloc((size_t)m * sizeof *dl);
    double *ra = malloc((size_t)m * sizeof *ra), *rl = malloc((size_t)m * sizeof *rl);
    double rho = NAN;
    if (da && dl && ra && rl) {
        int64_t p = 0;
        for (int64_t i = 0; m == total && i < n; i++)
            for (int64_t j = i + 1; j < n; j++, p++)
                pair_distances(x, d, labels, i, j, da + p, dl + p);
        rand_state r = {seed};
        for (; p < m; p++) { /* a random pair i != j */
            int64_t i = rand_below(&r, (uint32_t)n);
            int64_t j = (i + 1 + rand_below(&r, (uint32_t)(n - 1))) % n;
            pair_distances(x, d, labels, i, j, da + p, dl + p);
        }
        if (ranks(da, m, ra) == 0 && ranks(dl, m, rl) == 0)
            rho = pearson(ra, rl, m);
    }
    free(da);
    free(dl);
    free(ra);
    free(rl);
    return rho;
}
