/* Metric "manifold": is a representation an ordered 2D manifold of the
 * labels? (docs/PAPER.md, "Measurements": layer-4 activations over a label
 * grid, reduced with UMAP and PCA; order as the R^2 of linear regressions
 * to x and y; effective dimension from the PCA spectrum.)
 *
 * Activations come from the tap `tap` (common/samples.h), flattened to (n, d),
 * collected over every batch given.
 *
 * Config:
 *   tap             layer4   which activation to read (common/samples.h)
 *   method          umap     umap | pca: how the embedding is made
 *   dims            3        embedding dimensions (3 as in the paper)
 *   neighbors       15       UMAP neighbours (the point itself included)
 *   min_dist        0.1      UMAP min_dist (spread 1)
 *   epochs          0        UMAP epochs; 0: 500 for n <= 10000, else 200
 *   negative_rate   5        UMAP negative samples per positive one
 *   init            spectral spectral | pca | random: UMAP's start
 *                            (spectral needs a connected kNN graph; on
 *                            several components it starts from PCA, and
 *                            says so in the log)
 *   seed            0        UMAP's sampling and PCA's random start
 *   pcs             10       principal components reported and regressed on
 *   eval_neighbors  10       k of trustworthiness and label consistency
 *   order_neighbors 5        k of the kNN regression (order.h)
 *
 * Results:
 *   n, d                      samples and values per sample
 *   eff_dim                   participation ratio (sum l)^2 / sum l^2 over
 *                             the whole covariance spectrum
 *   evr_top2                  variance fraction of the top 2 components
 *   r2_x, r2_y                R^2, linear least squares with intercept, from
 *                             the embedding to the label x, y
 *   r2_x_pca, r2_y_pca        the same from the top `pcs` components (the
 *                             raw activations, through their main
 *                             directions, so d > n does not fit anything)
 *   knn_consistency           quality.h: embedding neighbours that are
 *                             label neighbours (1: all)
 *   trustworthiness           quality.h: embedding neighbours that are
 *                             activation neighbours (1: all)
 *   knn_r2_x, knn_r2_y        order.h, on the activations themselves (no
 *                             UMAP, no PCA): leave-one-out R^2 of kNN
 *                             regression of x and y; about -1/k unordered
 *   dist_rank_corr            order.h: Spearman's rho of activation
 *                             distances against label distances
 *   embedding (n, dims), explained_variance_ratio (pcs)                  */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bd/plugin.h"
#include "knn.h"
#include "order.h"
#include "pca.h"
#include "quality.h"
#include "common/samples.h"
#include "umap.h"

enum { METHOD_UMAP, METHOD_PCA };
static const char *const METHODS[] = {"umap", "pca", NULL};
/* in the order of umap_init */
static const char *const INITS[] = {"spectral", "pca", "random", NULL};

typedef struct manifold {
    const bd_host *h;
    samples        s;
    int            method;
    umap_options   umap;
    int            pcs, eval_k, order_k;
} manifold;

static bd_status read_config(manifold *m, bd_config *cfg)
{
    const bd_host *h = m->h;
    int64_t dims, neighbors, epochs, neg, seed, pcs, eval_k, order_k;
    BD_TRY(samples_init(&m->s, h, cfg, "manifold"));
    BD_TRY(h->config_choice(cfg, "method", "umap", METHODS, &m->method));
    BD_TRY(h->config_int(cfg, "dims", 3, 1, 8, &dims));
    m->umap = umap_defaults((int)dims);
    if (m->method == METHOD_UMAP) {
        BD_TRY(h->config_int(cfg, "neighbors", 15, 2, 200, &neighbors));
        BD_TRY(h->config_num(cfg, "min_dist", 0.1, 0.0, 1.0, &m->umap.min_dist));
        BD_TRY(h->config_int(cfg, "epochs", 0, 0, 100000, &epochs));
        BD_TRY(h->config_int(cfg, "negative_rate", 5, 1, 100, &neg));
        int init;
        BD_TRY(h->config_choice(cfg, "init", "spectral", INITS, &init));
        m->umap.init = (umap_init)init;
        m->umap.neighbors = (int)neighbors;
        m->umap.epochs = (int)epochs;
        m->umap.negative_rate = (int)neg;
    }
    BD_TRY(h->config_int(cfg, "seed", 0, 0, INT64_MAX, &seed));
    BD_TRY(h->config_int(cfg, "pcs", 10, 1, 1000, &pcs));
    BD_TRY(h->config_int(cfg, "eval_neighbors", 10, 1, 1000, &eval_k));
    BD_TRY(h->config_int(cfg, "order_neighbors", 5, 1, 1000, &order_k));
    m->umap.seed = (uint64_t)seed;
    m->pcs = (int)pcs;
    m->eval_k = (int)eval_k;
    m->order_k = (int)order_k;
    return BD_OK;
}

static void manifold_destroy(void *state)
{
    manifold *m = state;
    if (m)
        samples_free(&m->s);
    free(m);
}

static bd_status manifold_create(const bd_host *h, bd_config *cfg, void **state)
{
    manifold *m = calloc(1, sizeof *m);
    if (!m)
        return h->fail(BD_E_NOMEM, "manifold: out of memory");
    m->h = h;
    bd_status s = read_config(m, cfg);
    if (s != BD_OK) {
        manifold_destroy(m);
        return s;
    }
    *state = m;
    return BD_OK;
}

static bd_status manifold_update(void *state, const bd_metric_batch *b)
{
    manifold *m = state;
    return samples_add(&m->s, m->h, b);
}

/* ---- compute --------------------------------------------------------------- */

/* The smallest n every measure is defined for. */
static int64_t min_samples(const manifold *m)
{
    int64_t need = 2 * (int64_t)m->eval_k + 2;
    if (m->order_k + 1 > need)
        need = m->order_k + 1;
    if (m->method == METHOD_UMAP && m->umap.neighbors + 1 > need)
        need = m->umap.neighbors + 1;
    return need;
}

/* emb (n, dims): UMAP (the PCA scores as its given start), or the top PCA
 * scores (zero columns past the components there are). */
static int embed(const manifold *m, const pca_result *p, float *emb)
{
    const int64_t n = m->s.n;
    const int dims = m->umap.dims;
    float *first = malloc((size_t)(n * dims) * sizeof *first);
    if (!first)
        return -1;
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < dims; c++)
            first[i * dims + c] = c < p->k ? p->scores[i * p->k + c] : 0.0f;
    int rc = 0;
    umap_init used;
    if (m->method == METHOD_PCA)
        memcpy(emb, first, (size_t)(n * dims) * sizeof *emb);
    else
        rc = umap_embed(m->s.x, n, m->s.d, first, &m->umap, emb, &used);
    if (rc == 0 && m->method == METHOD_UMAP && used != m->umap.init)
        m->h->log(BD_LOG_INFO, "manifold: the kNN graph of %lld samples is not"
                  " connected, so UMAP starts from %s, not %s", (long long)n,
                  INITS[used], INITS[m->umap.init]);
    free(first);
    return rc;
}

/* The order measures that need no embedding (order.h). */
static bd_status report_order(const manifold *m, bd_metric_result *r)
{
    const bd_host *h = m->h;
    const samples *s = &m->s;
    double knn_r2[2];
    if (order_knn_r2(s->x, s->n, s->d, s->labels, m->order_k, m->umap.seed,
                     knn_r2) != 0)
        return h->fail(BD_E_NOMEM, "manifold: out of memory");
    BD_TRY(h->result_number(r, "knn_r2_x", knn_r2[0]));
    BD_TRY(h->result_number(r, "knn_r2_y", knn_r2[1]));
    return h->result_number(r, "dist_rank_corr",
                            order_rank_corr(s->x, s->n, s->d, s->labels,
                                            m->umap.seed));
}

/* Numbers about the embedding emb (n, dims) and the PCA p. */
static bd_status report_numbers(const manifold *m, const pca_result *p,
                                const float *emb, const int32_t *emb_idx,
                                bd_metric_result *r)
{
    const bd_host *h = m->h;
    const samples *s = &m->s;
    const int dims = m->umap.dims, kp = p->k < m->pcs ? p->k : m->pcs;
    double top2 = (p->var[0] + (p->k > 1 ? p->var[1] : 0)) / p->total;
    BD_TRY(h->result_number(r, "n", (double)s->n));
    BD_TRY(h->result_number(r, "d", (double)s->d));
    BD_TRY(h->result_number(r, "eff_dim", pca_participation_ratio(p)));
    BD_TRY(h->result_number(r, "evr_top2", p->total > 0 ? top2 : NAN));
    BD_TRY(h->result_number(r, "r2_x", r2_linear(emb, s->n, dims, s->labels, 2)));
    BD_TRY(h->result_number(r, "r2_y",
                            r2_linear(emb, s->n, dims, s->labels + 1, 2)));
    /* the regressions on the top kp of the p->k score columns */
    float *top = malloc((size_t)(s->n * kp) * sizeof *top);
    if (!top)
        return h->fail(BD_E_NOMEM, "manifold: out of memory");
    for (int64_t i = 0; i < s->n; i++)
        memcpy(top + i * kp, p->scores + i * p->k, (size_t)kp * sizeof *top);
    double r2x = r2_linear(top, s->n, kp, s->labels, 2);
    double r2y = r2_linear(top, s->n, kp, s->labels + 1, 2);
    free(top);
    BD_TRY(h->result_number(r, "r2_x_pca", r2x));
    BD_TRY(h->result_number(r, "r2_y_pca", r2y));
    BD_TRY(h->result_number(r, "knn_consistency",
                            label_consistency(s->labels, s->n, emb_idx, m->eval_k)));
    BD_TRY(report_order(m, r));
    return h->result_number(r, "trustworthiness",
                            trustworthiness(s->x, s->n, s->d, emb_idx, m->eval_k));
}

static bd_status report(const manifold *m, const pca_result *p, float *emb,
                        bd_metric_result *r)
{
    const bd_host *h = m->h;
    const int64_t n = m->s.n, dims = m->umap.dims;
    int32_t *idx = malloc((size_t)(n * m->eval_k) * sizeof *idx);
    float *dist = malloc((size_t)(n * m->eval_k) * sizeof *dist);
    float *evr = malloc((size_t)p->k * sizeof *evr);
    bd_status s = BD_OK;
    if (!idx || !dist || !evr
        || knn_exact(emb, n, dims, m->eval_k, idx, dist) != 0)
        s = h->fail(BD_E_NOMEM, "manifold: out of memory");
    if (s == BD_OK)
        s = report_numbers(m, p, emb, idx, r);
    const int64_t emb_shape[2] = {n, dims}, evr_shape[1] = {p->k};
    for (int c = 0; s == BD_OK && c < p->k; c++)
        evr[c] = (float)(p->var[c] / p->total);
    if (s == BD_OK)
        s = h->result_array(r, "embedding", 2, emb_shape, emb);
    if (s == BD_OK)
        s = h->result_array(r, "explained_variance_ratio", 1, evr_shape, evr);
    free(idx);
    free(dist);
    free(evr);
    return s;
}

static bd_status manifold_compute(void *state, bd_metric_result *r)
{
    manifold *m = state;
    const bd_host *h = m->h;
    if (m->s.n < min_samples(m))
        return h->fail(BD_E_ARG, "manifold: %lld samples, expected at least"
                       " %lld (2 eval_neighbors + 2, order_neighbors + 1, and"
                       " neighbors + 1 for UMAP)", (long long)m->s.n, (long long)min_samples(m));
    int kp = m->pcs > m->umap.dims ? m->pcs : m->umap.dims;
    pca_result p;
    int rc = pca_fit(m->s.x, m->s.n, m->s.d, kp, m->umap.seed, &p);
    float *emb = rc == 0 ? malloc((size_t)(m->s.n * m->umap.dims) * sizeof *emb)
                         : NULL;
    if (rc == 0)
        rc = emb ? embed(m, &p, emb) : -1;
    bd_status s = rc == 0 ? report(m, &p, emb, r)
                : rc == -2 ? h->fail(BD_E_NUMERIC, "manifold: LAPACK failed on"
                                     " the PCA of %lld x %lld activations",
                                     (long long)m->s.n, (long long)m->s.d)
                : h->fail(BD_E_NOMEM, "manifold: out of memory for %lld x %lld"
                          " activations", (long long)m->s.n, (long long)m->s.d);
    free(emb);
    pca_free(&p);
    return s;
}

/* ---- the plugin ------------------------------------------------------------ */

static const bd_metric_desc manifold_desc = {
    BD_DESC_HEADER(bd_metric_desc),
    .name = "manifold",
    .description = "PCA (eff_dim) and UMAP of activations; R^2 to x and y, "
                   "kNN label consistency, trustworthiness",
    .create = manifold_create,
    .update = manifold_update,
    .compute = manifold_compute,
    .destroy = manifold_destroy,
};

static const bd_metric_desc *const metrics[] = {&manifold_desc};

static const bd_plugin_info info = {
    BD_PLUGIN_INFO_HEADER,
    .name = "manifold",
    .version = "1.0",
    .description = "representation geometry: PCA, UMAP, order and quality",
    .n_metrics = 1,
    .metrics = metrics,
};

BD_PLUGIN_DEFINE(info)
