/* Metric "percolation": clusters on simple lattices, agreement with a
 * brute-force union-find on random points, the plugin on bump datasets
 * (site percolation below and above the square lattice's threshold), and
 * every config error. */
#include "bd/data.h"
#include "bd/registry.h"
#include "cluster.h"
#include "harness.h"
#include "test_metric_util.h"

/* An nx x ny lattice of spacing h from (x0, y0) into xy, from index at. */
static int64_t lattice(float *xy, int64_t at, int nx, int ny, double h,
                       double x0, double y0)
{
    for (int i = 0; i < ny; i++)
        for (int j = 0; j < nx; j++, at++) {
            xy[2 * at] = (float)(x0 + j * h);
            xy[2 * at + 1] = (float)(y0 + i * h);
        }
    return at;
}

static void test_lattices(void)
{
    static float xy[2 * 200];
    clusters c;
    int64_t n = lattice(xy, 0, 10, 10, 1.0, 0, 0);
    CHECK(clusters_find(xy, n, 1.01, &c) == 0 && c.count == 1
          && c.largest == 100 && c.links == 180, "square lattice, cutoff 1.01:"
          " %lld clusters, largest %lld, %lld links", (long long)c.count,
          (long long)c.largest, (long long)c.links);
    clusters_free(&c);
    CHECK(clusters_find(xy, n, 0.99, &c) == 0 && c.count == 100
          && c.largest == 1 && c.links == 0, "cutoff 0.99: all apart");
    clusters_free(&c);
    CHECK(clusters_find(xy, n, 1.5, &c) == 0 && c.links == 180 + 162,
          "cutoff 1.5 adds the diagonals: %lld links", (long long)c.links);
    clusters_free(&c);
    /* a 6 x 10 block and a 4 x 10 block, 2 apart */
    n = lattice(xy, 0, 6, 10, 1.0, 0, 0);
    n = lattice(xy, n, 4, 10, 1.0, 7, 0);
    CHECK(clusters_find(xy, n, 1.2, &c) == 0 && c.count == 2 && c.largest == 60
          && c.root[0] != c.root[99] && c.root[0] == c.root[59],
          "two blocks: %lld clusters, largest %lld", (long long)c.count,
          (long long)c.largest);
    clusters_free(&c);
    /* degenerate layouts: one point, a line, duplicates, none */
    CHECK(clusters_find(xy, 1, 1.0, &c) == 0 && c.count == 1 && c.largest == 1,
          "one point");
    clusters_free(&c);
    n = lattice(xy, 0, 50, 1, 0.5, 3, 3);
    CHECK(clusters_find(xy, n, 0.6, &c) == 0 && c.count == 1 && c.largest == 50,
          "a line");
    clusters_free(&c);
    for (int k = 0; k < 20; k++)
        xy[k] = 4.0f;
    CHECK(clusters_find(xy, 10, 0.1, &c) == 0 && c.count == 1 && c.links == 45,
          "ten copies of one point");
    clusters_free(&c);
    CHECK(clusters_find(xy, 0, 1.0, &c) == 0 && c.count == 0 && c.largest == 0,
          "no points");
    clusters_free(&c);
}

/* Largest cluster and count by brute force: all pairs, naive union-find. */
static void brute(const float *xy, int n, double cut, int *count, int *largest)
{
    int *root = malloc((size_t)n * sizeof *root), *size = calloc((size_t)n, sizeof *size);
    for (int i = 0; i < n; i++)
        root[i] = i;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double dx = xy[2 * i] - xy[2 * j], dy = xy[2 * i + 1] - xy[2 * j + 1];
            if (dx * dx + dy * dy >= cut * cut)
                continue;
            int a = i, b = j;
            while (root[a] != a) a = root[a];
            while (root[b] != b) b = root[b];
            root[a] = b;
        }
    *count = *largest = 0;
    for (int i = 0; i < n; i++) {
        int a = i;
        while (root[a] != a) a = root[a];
        size[a]++;
    }
    for (int i = 0; i < n; i++) {
        *count += size[i] > 0;
        *largest = size[i] > *largest ? size[i] : *largest;
    }
    free(root);
    free(size);
}

static void test_random_points(void)
{
    enum { N = 1500 };
    static float xy[2 * N];
    for (int i = 0; i < 2 * N; i++)
        xy[i] = (float)(32 * harness_uniform());
    const double cuts[4] = {0.3, 0.8, 1.0, 1.4};
    for (int k = 0; k < 4; k++) {
        clusters c;
        int count, largest;
        brute(xy, N, cuts[k], &count, &largest);
        CHECK(clusters_find(xy, N, cuts[k], &c) == 0 && c.count == count
              && c.largest == largest, "cutoff %g: %lld clusters, largest %lld;"
              " brute force %d, %d", cuts[k], (long long)c.count,
              (long long)c.largest, count, largest);
        printf("   %d random points, cutoff %.1f: %d clusters, largest %d\n", N,
               cuts[k], count, largest);
        clusters_free(&c);
    }
}

/* ---- through the plugin ---------------------------------------------------- */

/* percolation over the training labels of a bump dataset. */
static bd_metric_result *measure(double spacing, double lambda, double thr)
{
    bd_data_spec spec = bd_data_defaults();
    spec.dx = spec.dy = spacing;
    spec.lambda = lambda;
    spec.seed = 3;
    bd_dataset *d = NULL;
    bd_metric *m = NULL;
    bd_config *cfg = bd_config_new();
    bd_config_set_num(cfg, "threshold", thr);
    bd_metric_result *r = bd_metric_result_new();
    CHECK_OK(bd_dataset_new(&spec, &d));
    CHECK_OK(bd_metric_create("percolation", cfg, &m));
    if (d && m) {
        CHECK_OK(bd_metric_update(m, d->train.images, d->train.labels, NULL));
        CHECK_OK(bd_metric_compute(m, r));
    }
    bd_metric_free(m);
    bd_config_free(cfg);
    bd_dataset_free(d);
    return r;
}

static void test_plugin(void)
{
    /* spacing 1: neighbours overlap exp(-1/4) = 0.78 > 0.5 */
    bd_metric_result *r = measure(1.0, 1.0, 0.5);
    CHECK(number(r, "sites") == 33 * 33 && number(r, "largest_fraction") == 1
          && number(r, "clusters") == 1, "spacing 1: one cluster");
    CHECK(fabs(number(r, "cutoff") - sqrt(-4 * log(0.5))) < 1e-9, "cutoff %g",
          number(r, "cutoff"));
    bd_metric_result_free(r);
    /* spacing 3: exp(-9/4) = 0.105 < 0.5 */
    r = measure(3.0, 1.0, 0.5);
    CHECK(number(r, "clusters") == 11 * 11 && number(r, "largest") == 1,
          "spacing 3: isolated sites");
    bd_metric_result_free(r);
    /* spacing 2, threshold 0.3: lattice neighbours only (e^-1 = 0.37 >
     * 0.3 > e^-2); site percolation, threshold ~0.593 */
    r = measure(2.0, 0.9, 0.3);
    double dense = number(r, "largest_fraction");
    bd_metric_result_free(r);
    r = measure(2.0, 0.3, 0.3);
    double sparse = number(r, "largest_fraction");
    int found = 0;
    for (int i = 0; i < bd_metric_result_count(r); i++)
        if (strcmp(bd_metric_result_name(r, i), "in_largest") == 0) {
            const bd_tensor *a = bd_metric_result_array(r, i);
            double sum = 0;
            for (int64_t k = 0; k < a->numel; k++)
                sum += a->data[k];
            found = a->numel == (int64_t)number(r, "sites")
                 && sum == number(r, "largest");
        }
    CHECK(found, "in_largest marks the largest cluster's sites");
    bd_metric_result_free(r);
    printf("   17 x 17 lattice, kept 0.9: largest %.3f; kept 0.3: %.3f\n",
           dense, sparse);
    CHECK(dense > 0.8 && sparse < 0.2, "site percolation: %.3f at 0.9, %.3f at"
          " 0.3", dense, sparse);
}

static void check_config_error(const char *key, double v, const char *needle)
{
    bd_config *cfg = bd_config_new();
    bd_config_set_num(cfg, key, v);
    bd_metric *m = NULL;
    CHECK_FAILS(bd_metric_create("percolation", cfg, &m), BD_E_ARG, needle);
    bd_metric_free(m);
    bd_config_free(cfg);
}

static void test_errors(void)
{
    check_config_error("denom", 3, "percolation: denom = 3, expected 2 or 4");
    check_config_error("denom", 5, "denom = 5, expected an integer in [2, 4]");
    check_config_error("threshold", 0, "threshold = 0, expected a number in");
    check_config_error("threshold", 1.5, "threshold = 1.5");
    check_config_error("sigma", 0, "sigma = 0, expected a number in");
    check_config_error("sigmas", 1, "unknown key 'sigmas'");
}

int main(void)
{
    RUN(test_lattices);
    RUN(test_random_points);
    RUN(test_plugin);
    RUN(test_errors);
    bd_plugins_unload_all();
    return harness_summary();
}
