/* Metric "factorization": the statistics of synthetic codes against their
 * theory: a linear factorized code, a factorized place code (v = f(x) (+)
 * g(y)), a coupled 2D place code (Gaussian bump images), independent random
 * vectors; duplicates averaged; taps; every error. */
#include "bd/model.h"
#include "bd/registry.h"
#include "harness.h"
#include "test_metric_util.h"
#include "steps.h"

static double normal(void)
{
    double u = 1.0 - harness_uniform(), v = harness_uniform();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* A code over a gx x gy grid (labels x = i, y = j): code(i, j, out[d]). */
typedef void (*code_fn)(int i, int j, int d, float *out);

/* Measure the code through the plugin (as images (n, d, 1, 1)). */
static bd_metric_result *measure(code_fn code, int gx, int gy, int d)
{
    int n = gx * gy;
    bd_tensor *act = bd_tensor_new4(n, d, 1, 1, false);
    bd_tensor *labels = bd_tensor_new4(n, 2, 0, 0, false);
    for (int s = 0; s < n; s++) {
        int i = s % gx, j = s / gx;
        code(i, j, d, act->data + (int64_t)s * d);
        labels->data[2 * s] = (float)i;
        labels->data[2 * s + 1] = (float)j;
    }
    bd_metric *m = NULL;
    bd_metric_result *r = bd_metric_result_new();
    CHECK_OK(bd_metric_create("factorization", NULL, &m));
    if (m) {
        CHECK_OK(bd_metric_update(m, act, labels, NULL));
        CHECK_OK(bd_metric_compute(m, r));
    }
    bd_metric_free(m);
    bd_tensor_free(act);
    bd_tensor_free(labels);
    return r;
}

static void print(const char *what, const bd_metric_result *r)
{
    printf("   %-22s orth %.4f  par_x %.4f  par_y %.4f  aligned_x %.4f"
           "  aligned_y %.4f\n", what, number(r, "orthogonality"),
           number(r, "parallel_x"), number(r, "parallel_y"),
           number(r, "aligned_x"), number(r, "aligned_y"));
}

/* ---- factorized codes ------------------------------------------------------ */

static double dir_a[64], dir_b[64];

/* v = 0.7 x a + 1.3 y b, a and b orthonormal */
static void linear_code(int i, int j, int d, float *out)
{
    for (int k = 0; k < d; k++)
        out[k] = (float)(0.7 * i * dir_a[k] + 1.3 * j * dir_b[k]);
}

static void test_linear(void)
{
    for (int k = 0; k < 64; k++) {  /* two orthonormal directions */
        dir_a[k] = k < 32 ? normal() : 0;
        dir_b[k] = k < 32 ? 0 : normal();
    }
    double na = 0, nb = 0;
    for (int k = 0; k < 64; k++) {
        na += dir_a[k] * dir_a[k];
        nb += dir_b[k] * dir_b[k];
    }
    for (int k = 0; k < 64; k++) {
        dir_a[k] /= sqrt(na);
        dir_b[k] /= sqrt(nb);
    }
    bd_metric_result *r = measure(linear_code, 8, 6, 64);
    print("linear factorized", r);
    CHECK(number(r, "orthogonality") < 1e-5, "orthogonality");
    CHECK(number(r, "parallel_x") > 1 - 1e-5 && number(r, "parallel_y") > 1 - 1e-5
          && number(r, "aligned_x") > 1 - 1e-5 && number(r, "aligned_y") > 1 - 1e-5,
          "parallelism 1");
    CHECK(number(r, "steps_x") == 7 * 6 && number(r, "steps_y") == 8 * 5
          && number(r, "grid_x") == 8 && number(r, "grid_y") == 6, "counts");
    bd_metric_result_free(r);
}

#define UNITS 16

/* a 1D place code: UNITS Gaussian tuning curves (width 0.8) over [0, 7] */
static void place_1d(double v, float *out)
{
    for (int k = 0; k < UNITS; k++) {
        double c = k * 7.0 / (UNITS - 1);
        out[k] = (float)exp(-(v - c) * (v - c) / (2 * 0.8 * 0.8));
    }
}

/* v = [f(x), g(y)] */
static void place_factorized(int i, int j, int d, float *out)
{
    (void)d;
    place_1d(i, out);
    place_1d(j, out + UNITS);
}

static void test_place_factorized(void)
{
    enum { GX = 8, GY = 8 };
    /* theory: parallel_x from f's own unit steps e_i */
    float f[GX][UNITS];
    double e[GX - 1][UNITS];
    for (int i = 0; i < GX; i++)
        place_1d(i, f[i]);
    for (int i = 0; i + 1 < GX; i++) {
        double nn = 0;
        for (int k = 0; k < UNITS; k++) {
            e[i][k] = f[i + 1][k] - f[i][k];
            nn += e[i][k] * e[i][k];
        }
        for (int k = 0; k < UNITS; k++)
            e[i][k] /= sqrt(nn);
    }
    double cross = 0;  /* sum over i != i' of e_i . e_i' */
    for (int i = 0; i + 1 < GX; i++)
        for (int i2 = 0; i2 + 1 < GX; i2++)
            for (int k = 0; i != i2 && k < UNITS; k++)
                cross += e[i][k] * e[i2][k];
    double steps = (GX - 1) * GY;
    double want = ((GX - 1) * GY * (GY - 1.0) + GY * GY * cross)
                / (steps * (steps - 1));
    bd_metric_result *r = measure(place_factorized, GX, GY, 2 * UNITS);
    print("place code factorized", r);
    printf("   %-22s parallel_x theory %.4f\n", "", want);
    CHECK(number(r, "orthogonality") < 1e-6, "orthogonality 0");
    CHECK(number(r, "aligned_x") > 1 - 1e-5 && number(r, "aligned_y") > 1 - 1e-5,
          "aligned 1");
    CHECK(fabs(number(r, "parallel_x") - want) < 1e-4
          && fabs(number(r, "parallel_y") - want) < 1e-4,
          "parallel %g, theory %g", number(r, "parallel_x"), want);
    bd_metric_result_free(r);
}

/* ---- coupled codes --------------------------------------------------------- */

#define CANVAS 24
#define OFFSET 6  /* grid (i, j) -> bump at (OFFSET + i, OFFSET + j) */

/* the pixel image of a bump (sigma 1) at (OFFSET + i, OFFSET + j) */
static void bump_code(int i, int j, int d, float *out)
{
    (void)d;
    for (int r = 0; r < CANVAS; r++)
        for (int c = 0; c < CANVAS; c++) {
            double dx = c + 0.5 - (OFFSET + i), dy = r + 0.5 - (OFFSET + j);
            out[r * CANVAS + c] = (float)exp(-(dx * dx + dy * dy) / 2);
        }
}

/* The continuum inner product of two such bumps d apart, over its d = 0
 * value: exp(-|d|^2 / 4). */
static double overlap(double dx, double dy) { return exp(-(dx * dx + dy * dy) / 4); }

/* cos of the unit steps from grid point p along u and from q along w */
static double step_cos(double px, double py, double ux, double uy, double qx,
                       double qy, double wx, double wy)
{
    double dx = px - qx, dy = py - qy;
    double in = overlap(dx + ux - wx, dy + uy - wy) - overlap(dx + ux, dy + uy)
              - overlap(dx - wx, dy - wy) + overlap(dx, dy);
    return in / (2 * (1 - exp(-0.25)));
}

static void test_bump_coupled(void)
{
    enum { G = 12 };
    double orth = 0, par = 0, aligned = 0;
    int64_t n_orth = 0, n_par = 0, n_aligned = 0;
    for (int pi = 0; pi < G; pi++)
        for (int pj = 0; pj < G; pj++)
            for (int qi = 0; qi < G; qi++)
                for (int qj = 0; qj < G; qj++) {
                    if (pi + 1 < G && qj + 1 < G) {  /* x-step p, y-step q */
                        orth += fabs(step_cos(pi, pj, 1, 0, qi, qj, 0, 1));
                        n_orth++;
                    }
                    if (pi + 1 < G && qi + 1 < G && (pi != qi || pj != qj)) {
                        double c = step_cos(pi, pj, 1, 0, qi, qj, 1, 0);
                        par += c;
                        n_par++;
                        if (pi == qi) {
                            aligned += c;
                            n_aligned++;
                        }
                    }
                }
    orth /= n_orth;
    par /= n_par;
    aligned /= n_aligned;
    bd_metric_result *r = measure(bump_code, G, G, CANVAS * CANVAS);
    print("bump images (coupled)", r);
    printf("   %-22s theory: orth %.4f  par %.4f  aligned %.4f\n", "", orth, par,
           aligned);
    CHECK(fabs(number(r, "orthogonality") - orth) < 1e-3, "orthogonality");
    CHECK(fabs(number(r, "parallel_x") - par) < 1e-3
          && fabs(number(r, "parallel_y") - par) < 1e-3, "parallelism");
    CHECK(fabs(number(r, "aligned_x") - aligned) < 1e-3
          && fabs(number(r, "aligned_y") - aligned) < 1e-3, "aligned");
    CHECK(number(r, "aligned_x") < 0.3, "coupled: aligned far below 1");
    bd_metric_result_free(r);
}

#define RANDOM_D 2000
#define RANDOM_G 6
static float random_sites[RANDOM_G * RANDOM_G][RANDOM_D];

static void random_code(int i, int j, int d, float *out)
{
    memcpy(out, random_sites[j * RANDOM_G + i], (size_t)d * sizeof *out);
}

static void test_random(void)
{
    const int g = RANDOM_G, d = RANDOM_D;
    for (int s = 0; s < g * g; s++)
        for (int k = 0; k < d; k++)
            random_sites[s][k] = (float)normal();
    /* pairs sharing a site: sum over sites of (x-steps at it)(y-steps at it) */
    double shared = 0;
    for (int i = 0; i < g; i++)
        for (int j = 0; j < g; j++)
            shared += ((i > 0) + (i + 1 < g)) * ((j > 0) + (j + 1 < g));
    double pairs = (double)(g - 1) * g * g * (g - 1);
    double chance = sqrt(2 / (M_PI * d));
    double want = (shared * 0.5 + (pairs - shared) * chance) / pairs;
    bd_metric_result *r = measure(random_code, g, g, d);
    print("random vectors", r);
    printf("   %-22s theory: orth %.4f\n", "", want);
    CHECK(fabs(number(r, "orthogonality") - want) < 0.01, "orthogonality %g,"
          " theory %g", number(r, "orthogonality"), want);
    CHECK(fabs(number(r, "aligned_x")) < 0.02 && fabs(number(r, "parallel_y")) < 0.05,
          "random: no parallelism");
    bd_metric_result_free(r);
}

/* ---- tori: periodic steps and histograms ----------------------------------- */

#define TORUS_G 12
#define TWO_PI 6.283185307179586

/* the Clifford torus (cos a, sin a, cos b, sin b), a = 2 pi i / G, b = 2 pi j / G */
static void clifford(int i, int j, int d, float *out)
{
    double a = TWO_PI * i / TORUS_G, b = TWO_PI * j / TORUS_G;
    for (int k = 0; k < d; k++)
        out[k] = 0;
    out[0] = (float)cos(a);
    out[1] = (float)sin(a);
    out[2] = (float)cos(b);
    out[3] = (float)sin(b);
}

/* the torus in 3D, radii 2 and 1 */
static void torus3d(int i, int j, int d, float *out)
{
    double a = TWO_PI * i / TORUS_G, b = TWO_PI * j / TORUS_G;
    for (int k = 0; k < d; k++)
        out[k] = 0;
    out[0] = (float)((2 + cos(b)) * cos(a));
    out[1] = (float)((2 + cos(b)) * sin(a));
    out[2] = (float)sin(b);
}

/* Measure a code over the G x G grid with periodic = 1 and `bins`. */
static bd_metric_result *measure_torus(code_fn code, int bins)
{
    enum { N = TORUS_G * TORUS_G, D = 4 };
    bd_tensor *act = bd_tensor_new4(N, D, 1, 1, false);
    bd_tensor *labels = bd_tensor_new4(N, 2, 0, 0, false);
    for (int s = 0; s < N; s++) {
        code(s % TORUS_G, s / TORUS_G, D, act->data + s * D);
        labels->data[2 * s] = (float)(s % TORUS_G);
        labels->data[2 * s + 1] = (float)(s / TORUS_G);
    }
    bd_config *cfg = bd_config_new();
    bd_config_set_num(cfg, "periodic", 1);
    bd_config_set_num(cfg, "bins", bins);
    bd_metric_result *r = measure_with("factorization", cfg, act, labels);
    bd_tensor_free(act);
    bd_tensor_free(labels);
    return r;
}

/* The mean of a histogram over [-1, 1] at its bins' centres. */
static double hist_mean(const bd_tensor *h)
{
    int64_t bins = h->shape[0];
    double m = 0;
    for (int64_t k = 0; k < bins; k++)
        m += h->data[k] * (-1 + (2 * k + 1) / (double)bins);
    return m;
}

static double hist_sum(const bd_tensor *h)
{
    double s = 0;
    for (int64_t k = 0; k < h->shape[0]; k++)
        s += h->data[k];
    return s;
}

/* The Clifford torus: x- and y-steps in orthogonal planes (every x-y cosine
 * in the centre bin); the 3D torus: x-y cosines away from 0. Wrapped steps:
 * G per row and column. Each histogram sums to 1 and its mean is the mean
 * cosine to within half a bin. */
static void test_tori(void)
{
    enum { BINS = 21 };
    bd_metric_result *c = measure_torus(clifford, BINS);
    bd_metric_result *t = measure_torus(torus3d, BINS);
    print("Clifford torus", c);
    print("3D torus", t);
    CHECK(number(c, "steps_x") == TORUS_G * TORUS_G
          && number(c, "steps_y") == TORUS_G * TORUS_G, "periodic: G steps per row");
    const bd_tensor *cxy = array(c, "hist_xy"), *txy = array(t, "hist_xy");
    if (!cxy || !txy)
        return;
    CHECK(cxy->shape[0] == BINS && fabs(cxy->data[BINS / 2] - 1) < 1e-6,
          "Clifford: every x-y cosine in the centre bin (%g)", cxy->data[BINS / 2]);
    CHECK(number(c, "orthogonality") < 1e-5 && number(t, "orthogonality") > 0.2,
          "orthogonality: Clifford %g, 3D %g", number(c, "orthogonality"),
          number(t, "orthogonality"));
    CHECK(txy->data[BINS / 2] < 0.5, "3D: %g of x-y cosines near 0", txy->data[BINS / 2]);
    const char *names[3] = {"hist_xy", "hist_xx", "hist_yy"};
    const char *means[3] = {"orthogonality", "parallel_x", "parallel_y"};
    for (int k = 1; k < 3; k++)
        for (int which = 0; which < 2; which++) {
            bd_metric_result *r = which ? t : c;
            const bd_tensor *h = array(r, names[k]);
            CHECK(h && fabs(hist_sum(h) - 1) < 1e-5
                  && fabs(hist_mean(h) - number(r, means[k])) <= 1.0 / BINS,
                  "%s: sums to 1, mean %g against %g", names[k],
                  h ? hist_mean(h) : NAN, number(r, means[k]));
        }
    bd_metric_result_free(c);
    bd_metric_result_free(t);
}

/* ---- grid building, taps, errors ------------------------------------------- */

static void test_grid_and_taps(void)
{
    /* two noisy samples per cell, unsorted: the cell means are the code */
    enum { GX = 5, GY = 4, D = 64, N = 2 * GX * GY };
    float x[N * D], lab[N * 2];
    for (int s = 0; s < N; s++) {
        int cell = (s * 7) % (GX * GY), i = cell % GX, j = cell / GX;
        float sign = s < GX * GY ? 1.0f : -1.0f;
        linear_code(i, j, D, x + s * D);
        for (int k = 0; k < D; k++)
            x[s * D + k] += sign * 0.3f * (float)((k * 31 + cell) % 7 - 3);
        lab[2 * s] = (float)(2.5 * i) + sign * 2e-4f;  /* within GRID_TOL */
        lab[2 * s + 1] = (float)(-1.0 + j);
    }
    grid_code gc;
    CHECK(grid_code_build(x, lab, N, D, &gc) == 0 && gc.gx == GX && gc.gy == GY,
          "grid %lld x %lld", (long long)gc.gx, (long long)gc.gy);
    step_stats st;
    const step_options plain = {0};
    CHECK(step_stats_compute(&gc, &plain, &st) == 0 && st.orthogonality < 1e-5
          && st.aligned_x > 1 - 1e-5, "cell means: orth %g, aligned %g",
          st.orthogonality, st.aligned_x);
    grid_code_free(&gc);

    /* a missing cell drops its steps */
    CHECK(grid_code_build(x, lab, N / 2 - 1, D, &gc) == 0, "partial grid");
    CHECK(step_stats_compute(&gc, &plain, &st) == 0 && st.steps_x + st.steps_y < 31,
          "%lld + %lld steps", (long long)st.steps_x, (long long)st.steps_y);
    grid_code_free(&gc);

    /* through a tap */
    bd_tensor *images = bd_tensor_new4(N, 1, 1, 1, false);
    bd_tensor *labels = bd_tensor_new4(N, 2, 0, 0, false);
    bd_tensor *act = bd_tensor_new4(N, 4, 4, 4, false);
    memcpy(labels->data, lab, sizeof lab);
    memcpy(act->data, x, sizeof x);
    bd_taps taps = {.n = 1, .names = {"layer4"}, .values = {act}};
    bd_metric *m = NULL;
    bd_metric_result *r = bd_metric_result_new();
    CHECK_OK(bd_metric_create("factorization", NULL, &m));
    if (m) {
        CHECK_OK(bd_metric_update(m, images, labels, &taps));
        CHECK_OK(bd_metric_compute(m, r));
        CHECK(number(r, "orthogonality") < 1e-5 && number(r, "steps_y") == 15,
              "tap layer4");
    }
    bd_metric_result_free(r);
    bd_metric_free(m);
    bd_tensor_free(images);
    bd_tensor_free(labels);
    bd_tensor_free(act);
}

static void test_errors(void)
{
    enum { N = 50 };
    bd_tensor *act = bd_tensor_new4(N, 3, 1, 1, false);
    bd_tensor *labels = bd_tensor_new4(N, 2, 0, 0, false);
    for (int i = 0; i < 2 * N; i++)
        labels->data[i] = (float)(30 * harness_uniform());
    bd_metric *m = NULL;
    bd_metric_result *r = bd_metric_result_new();
    CHECK_OK(bd_metric_create("factorization", NULL, &m));
    if (m) {
        CHECK_FAILS(bd_metric_compute(m, r), BD_E_ARG,
                    "factorization: 0 samples, expected at least a 2 x 1 grid");
        CHECK_OK(bd_metric_update(m, act, labels, NULL));
        CHECK_FAILS(bd_metric_compute(m, r), BD_E_ARG,
                    "values, not a grid (expected at most 4 n cells)");
    }
    bd_metric_free(m);
    bd_metric_result_free(r);
    bd_tensor_free(act);
    bd_tensor_free(labels);

    bd_config *cfg = bd_config_new();
    bd_config_set_str(cfg, "tap", "");
    CHECK_FAILS(bd_metric_create("factorization", cfg, &m), BD_E_ARG,
                "factorization: tap = '', expected a name of 1 to 63");
    bd_config_free(cfg);
    cfg = bd_config_new();
    bd_config_set_num(cfg, "bins", 0);
    CHECK_FAILS(bd_metric_create("factorization", cfg, &m), BD_E_ARG,
                "bins = 0, expected an integer in [1, 1001]");
    bd_config_free(cfg);
    cfg = bd_config_new();
    bd_config_set_num(cfg, "periodic", 2);
    CHECK_FAILS(bd_metric_create("factorization", cfg, &m), BD_E_ARG,
                "periodic = 2, expected an integer in [0, 1]");
    bd_config_free(cfg);
    cfg = bd_config_new();
    bd_config_set_str(cfg, "taps", "layer4");
    CHECK_FAILS(bd_metric_create("factorization", cfg, &m), BD_E_ARG,
                "unknown key 'taps'");
    bd_config_free(cfg);
}

int main(void)
{
    RUN(test_linear);
    RUN(test_place_factorized);
    RUN(test_bump_coupled);
    RUN(test_random);
    RUN(test_tori);
    RUN(test_grid_and_taps);
    RUN(test_errors);
    bd_plugins_unload_all();
    return harness_summary();
}
