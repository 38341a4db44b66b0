/* UMAP of about 5,000 points in 4,096 dimensions: the bump images of a
 * 64 x 64 dataset (a 2D manifold drawn in pixel space), with the target of
 * issue 6: under a minute on the 2-core machine. Prints the time of each
 * stage of umap_embed (exact kNN by matrix products; the whole embedding),
 * the order it finds (R^2 to x and y, trustworthiness), and the time of the
 * whole "manifold" metric (PCA + UMAP + kNN consistency + trustworthiness)
 * through the plugin.
 *
 *   bench_umap [points=5000] [dims=3]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bd/data.h"
#include "bd/registry.h"
#include "knn.h"
#include "pca.h"
#include "quality.h"
#include "umap.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void must(bd_status s)
{
    if (s != BD_OK) {
        printf("bench_umap: %s\n", bd_last_error());
        exit(1);
    }
}

static double result(const bd_metric_result *r, const char *name)
{
    for (int i = 0; i < bd_metric_result_count(r); i++)
        if (strcmp(bd_metric_result_name(r, i), name) == 0)
            return bd_metric_result_number(r, i);
    return NAN;
}

int main(int argc, char **argv)
{
    int target = argc > 1 ? atoi(argv[1]) : 5000;
    int dims = argc > 2 ? atoi(argv[2]) : 3;
    if (target < 100 || dims < 1 || dims > 8) {
        printf("usage: bench_umap [points >= 100] [dims 1..8]\n");
        return 2;
    }
    /* a side-by-side lattice of about `target` sites over a 64 x 64 canvas */
    int side = (int)ceil(sqrt((double)target));
    bd_data_spec spec = bd_data_defaults();
    spec.size = spec.canvas = 64;
    spec.dx = spec.dy = 64.0 / (side - 1);
    bd_dataset *data;
    must(bd_dataset_new(&spec, &data));
    const int64_t n = data->train.n, d = 64 * 64;
    const float *x = data->train.images->data, *lab = data->train.labels->data;
    printf("bench_umap: %lld bump images of 64 x 64 = %lld dims (lattice %.3f),"
           " UMAP to %d dims\n", (long long)n, (long long)d, spec.dx, dims);

    umap_options o = umap_defaults(dims);
    int32_t *idx = malloc((size_t)(n * 14) * sizeof *idx);
    float *dist = malloc((size_t)(n * 14) * sizeof *dist);
    float *y = malloc((size_t)(n * dims) * sizeof *y);
    double t0 = now();
    if (!idx || !dist || !y || knn_exact(x, n, d, 14, idx, dist) != 0)
        return 1;
    double t_knn = now() - t0;
    pca_result p;
    t0 = now();
    if (pca_fit(x, n, d, dims, 0, &p) != 0)
        return 1;
    double t_pca = now() - t0;
    t0 = now();
    umap_init used;
    if (umap_embed(x, n, d, p.scores, &o, y, &used) != 0)
        return 1;
    double t_umap = now() - t0;
    int32_t *eidx = malloc((size_t)(n * 10) * sizeof *eidx);
    float *edist = malloc((size_t)(n * 10) * sizeof *edist);
    if (!eidx || !edist || knn_exact(y, n, dims, 10, eidx, edist) != 0)
        return 1;
    t0 = now();
    double trust = trustworthiness(x, n, d, eidx, 10);
    double t_trust = now() - t0;
    printf("  exact 14-NN (sgemm blocks)   %7.2f s\n", t_knn);
    printf("  PCA (%d components)           %7.2f s\n", dims, t_pca);
    printf("  umap_embed (kNN, graph, %s start, 500 epochs) %7.2f s   <- target"
           " < 60 s\n", used == UMAP_INIT_SPECTRAL ? "spectral" : "PCA", t_umap);
    printf("  trustworthiness (k 10)       %7.2f s\n", t_trust);
    printf("  order: R^2 x %.4f, y %.4f; trustworthiness %.4f\n",
           r2_linear(y, n, dims, lab, 2), r2_linear(y, n, dims, lab + 1, 2),
           trust);

    /* the whole metric, as a script runs it */
    bd_config *cfg = bd_config_new();
    must(bd_config_set_num(cfg, "dims", dims));
    bd_metric *m;
    bd_metric_result *r = bd_metric_result_new();
    bd_tensor *act = data->train.images;  /* (n, 1, 64, 64) */
    t0 = now();
    must(bd_metric_create("manifold", cfg, &m));
    must(bd_metric_update(m, act, data->train.labels, NULL));
    must(bd_metric_compute(m, r));
    printf("  manifold metric (PCA 10 + UMAP + quality) %7.2f s: r2_x %.4f"
           " r2_y %.4f eff_dim %.2f knn %.3f trust %.4f\n", now() - t0,
           result(r, "r2_x"), result(r, "r2_y"), result(r, "eff_dim"),
           result(r, "knn_consistency"), result(r, "trustworthiness"));
    bd_metric_result_free(r);
    bd_metric_free(m);
    bd_config_free(cfg);
    pca_free(&p);
    free(idx);
    free(dist);
    free(y);
    free(eidx);
    free(edist);
    bd_dataset_free(data);
    bd_plugins_unload_all();
    return 0;
}
