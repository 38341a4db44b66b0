/* Metric "percolation": do a dataset's training images overlap enough to
 * form one connected cluster? (docs/PAPER.md, follow-up measures.)
 *
 * Sites are the labels (x, y) of every image given (the images themselves
 * are not read). Two bumps g(r) = exp(-r^2 / (denom sigma^2)) at distance
 * d have the normalised inner product
 *     overlap(d) = exp(-d^2 / (2 denom sigma^2))     (denom 2: e^(-d^2/4s^2))
 * and two sites are linked when overlap > threshold, i.e. when
 *     d < cutoff = sigma sqrt(-2 denom ln threshold).
 * Clusters are the connected components of the links (union-find).
 *
 * Config: sigma (1.0) and denom (2) as the dataset's; threshold (0.5, ours).
 * Results: sites, clusters, largest (sites in the largest cluster),
 * largest_fraction (largest / sites), links (linked pairs), cutoff; and
 * in_largest (sites): 1 for the sites of the largest cluster, else 0. */
#include <math.h>
#include <stdlib.h>

#include "bd/plugin.h"
#include "cluster.h"

typedef struct percolation {
    const bd_host *h;
    double         cutoff;
    float         *xy;  /* (n, 2) sites */
    int64_t        n, cap;
} percolation;

static bd_status perc_create(const bd_host *h, bd_config *cfg, void **state)
{
    double sigma, threshold;
    int64_t denom;
    BD_TRY(h->config_num(cfg, "sigma", 1.0, 1e-6, 1e6, &sigma));
    BD_TRY(h->config_int(cfg, "denom", 2, 2, 4, &denom));
    if (denom != 2 && denom != 4)
        return h->fail(BD_E_ARG, "percolation: denom = %lld, expected 2 or 4",
                       (long long)denom);
    BD_TRY(h->config_num(cfg, "threshold", 0.5, 1e-12, 1.0, &threshold));
    percolation *p = calloc(1, sizeof *p);
    if (!p)
        return h->fail(BD_E_NOMEM, "percolation: out of memory");
    p->h = h;
    p->cutoff = sigma * sqrt(-2.0 * (double)denom * log(threshold));
    *state = p;
    return BD_OK;
}

static void perc_destroy(void *state)
{
    percolation *p = state;
    if (p)
        free(p->xy);
    free(p);
}

/* labels: (N, 2) appended as sites */
static bd_status perc_update(void *state, const bd_metric_batch *b)
{
    percolation *p = state;
    int64_t n = p->h->tensor_dim(b->labels, 0);
    if (p->n + n > p->cap) {
        int64_t cap = p->cap ? p->cap : 1024;
        while (cap < p->n + n)
            cap *= 2;
        float *grown = realloc(p->xy, (size_t)cap * 2 * sizeof(float));
        if (!grown)
            return p->h->fail(BD_E_NOMEM, "percolation: out of memory");
        p->xy = grown;
        p->cap = cap;
    }
    const float *lab = p->h->tensor_data(b->labels);
    for (int64_t k = 0; k < 2 * n; k++)
        p->xy[2 * p->n + k] = lab[k];
    p->n += n;
    return BD_OK;
}

static bd_status report(const percolation *p, const clusters *c,
                        bd_metric_result *r)
{
    const bd_host *h = p->h;
    BD_TRY(h->result_number(r, "sites", (double)c->n));
    BD_TRY(h->result_number(r, "clusters", (double)c->count));
    BD_TRY(h->result_number(r, "largest", (double)c->largest));
    BD_TRY(h->result_number(r, "largest_fraction",
                            c->n ? (double)c->largest / (double)c->n : NAN));
    BD_TRY(h->result_number(r, "links", (double)c->links));
    BD_TRY(h->result_number(r, "cutoff", p->cutoff));
    if (c->n == 0)
        return BD_OK;
    /* the largest cluster's root: the first root of that size */
    int64_t *size = calloc((size_t)c->n, sizeof *size);
    float *in = malloc((size_t)c->n * sizeof *in);
    bd_status s = size && in ? BD_OK
                : h->fail(BD_E_NOMEM, "percolation: out of memory");
    int64_t big = -1;
    for (int64_t i = 0; s == BD_OK && i < c->n; i++)
        size[c->root[i]]++;
    for (int64_t i = 0; s == BD_OK && i < c->n && big < 0; i++)
        if (size[i] == c->largest)
            big = i;
    for (int64_t i = 0; s == BD_OK && i < c->n; i++)
        in[i] = c->root[i] == big ? 1.0f : 0.0f;
    const int64_t shape[1] = {c->n};
    if (s == BD_OK)
        s = h->result_array(r, "in_largest", 1, shape, in);
    free(size);
    free(in);
    return s;
}

static bd_status perc_compute(void *state, bd_metric_result *r)
{
    percolation *p = state;
    clusters c;
    if (clusters_find(p->xy, p->n, p->cutoff, &c) != 0)
        return p->h->fail(BD_E_NOMEM, "percolation: out of memory for %lld"
                          " sites", (long long)p->n);
    bd_status s = report(p, &c, r);
    clusters_free(&c);
    return s;
}

static const bd_metric_desc perc_desc = {
    BD_DESC_HEADER(bd_metric_desc),
    .name = "percolation",
    .description = "largest cluster of label sites whose bumps overlap more "
                   "than a threshold (largest_fraction, clusters, in_largest)",
    .create = perc_create,
    .update = perc_update,
    .compute = perc_compute,
    .destroy = perc_destroy,
};

static const bd_metric_desc *const metrics[] = {&perc_desc};

static const bd_plugin_info info = {
    BD_PLUGIN_INFO_HEADER,
    .name = "percolation",
    .version = "1.0",
    .description = "percolation of overlapping training bumps",
    .n_metrics = 1,
    .metrics = metrics,
};

BD_PLUGIN_DEFINE(info)
