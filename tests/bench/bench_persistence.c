/* The persistence metric's time (CPU seconds) on the clouds it is meant
 * for: n points of a 128-value code (Gaussian: the null scripts/torus.lua
 * draws; a Clifford torus on a G x G grid, placed in 128 dimensions with
 * 5% of the variance as noise: a torus code), and on the exact ideal
 * Clifford torus in 4D (equal lengths everywhere: the most ties). Prints
 * edges, H1 bars, the two longest and the time, for the algorithm alone
 * (rips.c) and for the plugin (distances, normalization, bars).
 *
 *   bench_persistence [max=1024]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bd/config.h"
#include "bd/registry.h"
#include "bd/tensor.h"
#include "rips.h"

#define PI 3.14159265358979323846
enum { D = 128 };

static double cpu(void) { return (double)clock() / CLOCKS_PER_SEC; }

static double uniform(void) { return (rand() + 0.5) / ((double)RAND_MAX + 1); }
static double normal(void)
{
    return sqrt(-2 * log(uniform())) * cos(2 * PI * uniform());
}

/* x (n, d): kind 0 Gaussian in d dims; 1 a Clifford torus on a grid of
 * side sqrt(n) in the first 4 of d dims with 5% noise; 2 the torus alone */
static void cloud(int kind, int n, int d, float *x)
{
    int g = (int)lround(sqrt(n));
    double sd = sqrt(0.05 / 0.95 / d);
    for (int i = 0; i < n; i++) {
        double a = 2 * PI * (i % g) / g, b = 2 * PI * (i / g) / g, s = sqrt(0.5);
        double t[4] = {s * cos(a), s * sin(a), s * cos(b), s * sin(b)};
        for (int k = 0; k < d; k++)
            x[i * d + k] = (float)(kind == 0 ? normal()
                                   : (k < 4 ? t[k] : 0) + (kind == 1 ? sd * normal() : 0));
    }
}

static void run(const char *name, int kind, int n, int d)
{
    float *x = malloc((size_t)n * d * sizeof *x);
    double *dist = malloc((size_t)n * n * sizeof *dist);
    cloud(kind, n, d, x);
    rips_distances(x, n, d, dist);
    double t0 = cpu();
    rips_bars b;
    if (rips_persistence(dist, n, rips_enclosing_radius(dist, n), &b) != 0) {
        printf("out of memory\n");
        exit(1);
    }
    double algo = cpu() - t0;
    bd_tensor *t = bd_tensor_new4(n, d, 1, 1, false);
    bd_tensor *labels = bd_tensor_new4(n, 2, 0, 0, false);
    for (int64_t k = 0; k < (int64_t)n * d; k++)
        t->data[k] = x[k];
    bd_metric *m = NULL;
    bd_metric_result *r = bd_metric_result_new();
    bd_config *cfg = bd_config_new();
    bd_config_set_num(cfg, "max_points", 5000);
    t0 = cpu();
    if (bd_metric_create("persistence", cfg, &m) != BD_OK
        || bd_metric_update(m, t, labels, NULL) != BD_OK || bd_metric_compute(m, r) != BD_OK) {
        printf("bench_persistence: %s\n", bd_last_error());
        exit(1);
    }
    double plugin = cpu() - t0;
    printf("%-22s %5d %4d %8lld %6lld  %7.3f %7.3f  %7.2f %7.2f\n", name, n, d,
           (long long)b.edges, (long long)b.n1,
           b.n1 > 0 ? b.h1[0].death - b.h1[0].birth : 0,
           b.n1 > 1 ? b.h1[1].death - b.h1[1].birth : 0, algo, plugin);
    rips_bars_free(&b);
    bd_config_free(cfg);
    bd_metric_result_free(r);
    bd_metric_free(m);
    bd_tensor_free(t);
    bd_tensor_free(labels);
    free(x);
    free(dist);
}

int main(int argc, char **argv)
{
    int max = argc > 1 ? atoi(argv[1] + (argv[1][0] == 'm' ? 4 : 0)) : 1024;
    setvbuf(stdout, NULL, _IOLBF, 0);
    srand(1);
    printf("%-22s %5s %4s %8s %6s  %7s %7s  %7s %7s\n", "cloud", "n", "d", "edges",
           "H1", "1st", "2nd", "rips s", "plugin s");
    for (int n = 256; n <= max; n *= 2) {
        run("Gaussian", 0, n, D);
        run("Clifford + 5% noise", 1, n == 512 ? 484 : n, D);
        run("Clifford, exact", 2, n == 512 ? 484 : n, 4);
    }
    bd_plugins_unload_all();
    return 0;
}
