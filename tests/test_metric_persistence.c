/* Metric "persistence": the coboundary reduction with clearing (rips.c)
 * against the textbook reduction of the boundary matrix on small clouds
 * (random, with ties, with a capped filtration); known answers (a square,
 * a circle, a flat grid and a disc, the ideal Clifford and 3D tori, H0 as
 * the minimum spanning tree); the plugin's results, options and taps; every
 * error. */
#include <time.h>

#include "bd/registry.h"
#include "harness.h"
#include "test_metric_util.h"
#include "rips.h"

#define PI 3.14159265358979323846

static double cpu_seconds(void) { return (double)clock() / CLOCKS_PER_SEC; }

/* ---- the naive reference: the whole boundary matrix, reduced column by column */

enum { NAIVE_MAX = 12, NAIVE_SIMPLICES = NAIVE_MAX + 66 + 220 };

typedef struct simplex {
    int    dim, v[3];
    double value;
} simplex;

static int simplex_order(const void *pa, const void *pb)
{
    const simplex *a = pa, *b = pb;
    if (a->value != b->value)
        return a->value < b->value ? -1 : 1;
    if (a->dim != b->dim)
        return a->dim - b->dim;
    for (int k = 0; k <= a->dim; k++)
        if (a->v[k] != b->v[k])
            return a->v[k] - b->v[k];
    return 0;
}

static bool is_face(const simplex *f, const simplex *s)
{
    if (f->dim != s->dim - 1)
        return false;
    int found = 0;
    for (int a = 0; a <= f->dim; a++)
        for (int b = 0; b <= s->dim; b++)
            found += f->v[a] == s->v[b];
    return found == f->dim + 1;
}

static int bar_cmp(const void *pa, const void *pb)
{
    const rips_bar *a = pa, *b = pb;
    if (a->birth != b->birth)
        return a->birth < b->birth ? -1 : 1;
    return (a->death > b->death) - (a->death < b->death);
}

/* Every simplex of dimension <= 2 with edges <= end, ordered by (value,
 * dim, vertices); the dense boundary matrix reduced left to right. Fills
 * h0 (n bars) and h1 (bars of positive length), each sorted by bar_cmp. */
static void naive_bars(const double *dist, int n, double end, rips_bar *h0,
                       int *n0, rips_bar *h1, int *n1)
{
    static simplex s[NAIVE_SIMPLICES];
    static unsigned char col[NAIVE_SIMPLICES][NAIVE_SIMPLICES];
    int m = 0;
    for (int i = 0; i < n; i++)
        s[m++] = (simplex){0, {i, 0, 0}, 0};
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (dist[i * n + j] <= end)
                s[m++] = (simplex){1, {i, j, 0}, dist[i * n + j]};
            for (int k = j + 1; k < n; k++) {
                double v = fmax(dist[i * n + j], fmax(dist[i * n + k], dist[j * n + k]));
                if (v <= end)
                    s[m++] = (simplex){2, {i, j, k}, v};
            }
        }
    qsort(s, (size_t)m, sizeof *s, simplex_order);
    int low[NAIVE_SIMPLICES];
    bool paired[NAIVE_SIMPLICES] = {0};
    *n0 = *n1 = 0;
    for (int j = 0; j < m; j++) {
        for (int i = 0; i < m; i++)
            col[j][i] = is_face(&s[i], &s[j]);
        low[j] = -1;
        for (;;) {
            low[j] = -1;
            for (int i = m - 1; i >= 0 && low[j] < 0; i--)
                if (col[j][i])
                    low[j] = i;
            int other = -1;
            for (int k = 0; k < j && low[j] >= 0 && other < 0; k++)
                if (low[k] == low[j])
                    other = k;
            if (other < 0)
                break;
            for (int i = 0; i < m; i++)
                col[j][i] ^= col[other][i];
        }
        if (low[j] < 0)
            continue;
        simplex *birth = &s[low[j]];
        paired[low[j]] = paired[j] = true;
        if (birth->dim == 0)
            h0[(*n0)++] = (rips_bar){0, s[j].value};
        else if (s[j].value > birth->value)
            h1[(*n1)++] = (rips_bar){birth->value, s[j].value};
    }
    for (int j = 0; j < m; j++)
        if (!paired[j] && s[j].dim == 0)
            h0[(*n0)++] = (rips_bar){0, INFINITY};
        else if (!paired[j] && s[j].dim == 1)
            h1[(*n1)++] = (rips_bar){s[j].value, INFINITY};
    qsort(h0, (size_t)*n0, sizeof *h0, bar_cmp);
    qsort(h1, (size_t)*n1, sizeof *h1, bar_cmp);
}

static bool same_bars(const rips_bar *a, int na, rips_bar *b, int64_t nb)
{
    qsort(b, (size_t)nb, sizeof *b, bar_cmp);
    if (na != nb)
        return false;
    for (int k = 0; k < na; k++)
        if (a[k].birth != b[k].birth || a[k].death != b[k].death)
            return false;
    return true;
}

/* The cloud x (n, d) through rips.c and the naive reduction, to `end` (or
 * the enclosing radius for rips.c and the diameter for the naive one). */
static bool agrees(const float *x, int n, int d, double end, int *bars1)
{
    double dist[NAIVE_MAX * NAIVE_MAX];
    rips_distances(x, n, d, dist);
    rips_bar h0[NAIVE_SIMPLICES], h1[NAIVE_SIMPLICES];
    int n0, n1;
    naive_bars(dist, n, end > 0 ? end : INFINITY, h0, &n0, h1, &n1);
    rips_bars b;
    bool ok = rips_persistence(dist, n, end > 0 ? end : rips_enclosing_radius(dist, n),
                               &b) == 0
              && same_bars(h0, n0, b.h0, b.n0) && same_bars(h1, n1, b.h1, b.n1);
    rips_bars_free(&b);
    *bars1 = n1;
    return ok;
}

static void test_naive_reference(void)
{
    float x[NAIVE_MAX * 3];
    int cases = 0, bars = 0, ties = 0, capped = 0;
    for (int trial = 0; trial < 240; trial++) {
        int n = 4 + trial % (NAIVE_MAX - 3), d = 2 + trial % 2, b;
        bool grid = trial % 3 == 0;  /* small integers: many equal lengths */
        for (int k = 0; k < n * d; k++)
            x[k] = grid ? (float)(int)(4 * harness_uniform()) : (float)harness_uniform();
        double end = trial % 4 == 1 ? 0.3 + 0.4 * harness_uniform() : 0;
        bool ok = agrees(x, n, d, end, &b);
        CHECK(ok, "trial %d: %d points in %dD%s%s: the bars differ", trial, n, d,
              grid ? ", on a grid" : "", end > 0 ? ", capped" : "");
        cases += ok;
        bars += b;
        ties += grid;
        capped += end > 0;
    }
    printf("   %d clouds agree (%d with ties, %d capped; %d H1 bars in all)\n", cases,
           ties, capped, bars);
}

/* ---- known answers ------------------------------------------------------------- */

static rips_bars bars_of(const float *x, int64_t n, int64_t d)
{
    double *dist = malloc((size_t)(n * n) * sizeof *dist);
    rips_bars b;
    rips_distances(x, n, d, dist);
    CHECK(rips_persistence(dist, n, rips_enclosing_radius(dist, n), &b) == 0, "bars");
    free(dist);
    return b;
}

static double length(const rips_bars *b, int64_t k)
{
    return k < b->n1 ? b->h1[k].death - b->h1[k].birth : 0;
}

static void test_square(void)
{
    const float x[8] = {0, 0, 1, 0, 1, 1, 0, 1};
    rips_bars b = bars_of(x, 4, 2);
    CHECK(b.n1 == 1 && fabs(b.h1[0].birth - 1) < 1e-12
          && fabs(b.h1[0].death - sqrt(2)) < 1e-12, "one H1 bar [1, sqrt 2): %lld,"
          " [%g, %g)", (long long)b.n1, b.n1 ? b.h1[0].birth : NAN,
          b.n1 ? b.h1[0].death : NAN);
    CHECK(b.n0 == 4 && b.h0[0].death == 1 && b.h0[2].death == 1 && isinf(b.h0[3].death),
          "H0: three bars dying at 1, one essential");
    rips_bars_free(&b);
}

static void test_circle(void)
{
    enum { N = 32 };
    float x[2 * N];
    for (int k = 0; k < N; k++) {
        x[2 * k] = (float)cos(2 * PI * k / N);
        x[2 * k + 1] = (float)sin(2 * PI * k / N);
    }
    rips_bars b = bars_of(x, N, 2);
    double side = 2 * sin(PI / N);
    printf("   circle of %d points: H1 bar [%.4f, %.4f), next longest %.4f\n", N,
           b.n1 ? b.h1[0].birth : NAN, b.n1 ? b.h1[0].death : NAN, length(&b, 1));
    CHECK(b.n1 >= 1 && fabs(b.h1[0].birth - side) < 1e-6 && b.h1[0].death > 1.6
          && b.h1[0].death < 1.8 && length(&b, 1) < 0.05,
          "one long bar from the side %.4f to near sqrt 3", side);
    rips_bars_free(&b);
}

/* A flat 8 x 8 grid: each unit cell is a loop from 1 to sqrt 2, none longer;
 * a disc of random points: no bar near the circle's. */
static void test_flat(void)
{
    float x[2 * 200];
    for (int k = 0; k < 64; k++)
        x[2 * k] = (float)(k % 8), x[2 * k + 1] = (float)(k / 8);
    rips_bars b = bars_of(x, 64, 2);
    int cells = 0;
    for (int64_t k = 0; k < b.n1; k++)
        cells += fabs(b.h1[k].birth - 1) < 1e-12 && fabs(b.h1[k].death - sqrt(2)) < 1e-12;
    CHECK(cells == 49 && b.n1 == 49, "grid: 49 cells [1, sqrt 2), %d of %lld bars",
          cells, (long long)b.n1);
    rips_bars_free(&b);
    for (int k = 0; k < 200;) {
        double u = 2 * harness_uniform() - 1, v = 2 * harness_uniform() - 1;
        if (u * u + v * v <= 1)
            x[2 * k] = (float)u, x[2 * k + 1] = (float)v, k++;
    }
    b = bars_of(x, 200, 2);
    printf("   disc of 200 points: %lld H1 bars, the longest %.4f\n", (long long)b.n1,
           length(&b, 0));
    CHECK(length(&b, 0) < 0.2, "disc: no long bar (%.4f)", length(&b, 0));
    rips_bars_free(&b);
}

/* The ideal tori of scripts/lib/tori.lua: the Clifford torus on a 16 x 16
 * grid of angles; the 3D torus (R/r = 2) on 32 angles round the ring and 12
 * round the tube. (On a 16 x 16 grid the 3D torus's outer side is too
 * sparse: its cells are 0.39 x 1.17, so its 16 tube circles stay apart
 * until 1.22 and 15 bars of 0.83 sit under the two of 1.46.) */
static void test_tori(void)
{
    enum { G = 16, N = G * G, RING = 32, TUBE = 12, M = RING * TUBE };
    static float cl[4 * N], t3[3 * M];
    for (int k = 0; k < N; k++) {
        double a = 2 * PI * (k % G) / G, c = 2 * PI * (k / G) / G, s = sqrt(0.5);
        cl[4 * k] = (float)(s * cos(a)), cl[4 * k + 1] = (float)(s * sin(a));
        cl[4 * k + 2] = (float)(s * cos(c)), cl[4 * k + 3] = (float)(s * sin(c));
    }
    for (int k = 0; k < M; k++) {
        double a = 2 * PI * (k % RING) / RING, c = 2 * PI * (k / RING) / TUBE;
        t3[3 * k] = (float)((2 + cos(c)) * cos(a));
        t3[3 * k + 1] = (float)((2 + cos(c)) * sin(a));
        t3[3 * k + 2] = (float)sin(c);
    }
    const char *names[2] = {"Clifford torus (4D)", "3D torus (R/r = 2)"};
    for (int w = 0; w < 2; w++) {
        double t0 = cpu_seconds();
        rips_bars b = bars_of(w ? t3 : cl, w ? M : N, w ? 3 : 4);
        printf("   %s, %d points: %lld H1 bars, longest %.3f %.3f %.3f (%.2f CPU s)\n",
               names[w], w ? M : N, (long long)b.n1, length(&b, 0), length(&b, 1),
               length(&b, 2), cpu_seconds() - t0);
        CHECK(length(&b, 1) > 3 * length(&b, 2), "%s: two long H1 bars", names[w]);
        rips_bars_free(&b);
    }
}

/* H0: n - 1 finite bars dying at the minimum spanning tree's edges (Prim). */
static void test_spanning_tree(void)
{
    enum { N = 60 };
    float x[3 * N];
    for (int k = 0; k < 3 * N; k++)
        x[k] = (float)harness_uniform();
    static double dist[N * N];
    rips_distances(x, N, 3, dist);
    double best[N], tree[N - 1];
    bool in[N] = {true};
    for (int v = 0; v < N; v++)
        best[v] = dist[v];
    for (int e = 0; e < N - 1; e++) {
        int next = -1;
        for (int v = 0; v < N; v++)
            if (!in[v] && (next < 0 || best[v] < best[next]))
                next = v;
        tree[e] = best[next];
        in[next] = true;
        for (int v = 0; v < N; v++)
            best[v] = fmin(best[v], dist[next * N + v]);
    }
    for (int i = 0; i < N - 1; i++)  /* ascending */
        for (int j = i + 1; j < N - 1; j++)
            if (tree[j] < tree[i]) {
                double t = tree[i];
                tree[i] = tree[j], tree[j] = t;
            }
    rips_bars b;
    CHECK(rips_persistence(dist, N, rips_enclosing_radius(dist, N), &b) == 0, "bars");
    bool same = b.n0 == N && isinf(b.h0[N - 1].death);
    for (int e = 0; same && e < N - 1; e++)
        same = b.h0[e].birth == 0 && b.h0[e].death == tree[e];
    CHECK(same, "H0: %d finite deaths = the spanning tree's edges, one essential", N - 1);
    rips_bars_free(&b);
}

/* ---- the plugin ------------------------------------------------------------- */

/* A circle of radius 3 in the first two of D dimensions, with the other
 * dimensions small noise: as (N, D, 1, 1) with labels. */
enum { CN = 40, CD = 20 };
static bd_tensor *circle_cloud(bd_tensor **labels)
{
    bd_tensor *x = bd_tensor_new4(CN, CD, 1, 1, false);
    *labels = bd_tensor_new4(CN, 2, 0, 0, false);
    for (int k = 0; k < CN; k++) {
        for (int j = 0; j < CD; j++)
            x->data[k * CD + j] = (float)(0.05 * (harness_uniform() - 0.5));
        x->data[k * CD] += (float)(3 * cos(2 * PI * k / CN));
        x->data[k * CD + 1] += (float)(3 * sin(2 * PI * k / CN));
        (*labels)->data[2 * k] = (float)k;
        (*labels)->data[2 * k + 1] = 0;
    }
    return x;
}

static void test_plugin(void)
{
    bd_tensor *labels, *x = circle_cloud(&labels);
    bd_metric_result *r = measure_with("persistence", NULL, x, labels);
    const bd_tensor *h0 = array(r, "h0"), *h1 = array(r, "h1"), *top = array(r, "h1_longest");
    CHECK(number(r, "n") == CN && number(r, "dims") == CD && number(r, "h0_components") == 1
          && h0 && h0->shape[0] == CN && h0->shape[1] == 2 && isinf(h0->data[2 * CN - 1]),
          "n, dims, h0 (%d, 2) with one essential bar", CN);
    double longest = h1 ? h1->data[1] - h1->data[0] : NAN;
    CHECK(h1 && h1->shape[0] == number(r, "h1_count") && longest > 3 * 1.4
          && top && top->shape[0] == 5 && fabs(top->data[0] - longest) < 1e-5
          && number(r, "h1_long") == number(r, "h1_count"),
          "h1 longest first (%.3f), h1_longest, h1_long with long = 0", longest);
    double scale = number(r, "scale");
    CHECK(fabs(scale - 3) < 0.01, "scale: the rms radius %.4f, about 3", scale);
    bd_metric_result_free(r);

    /* normalize = rms, pca = 2, long between the bars, top = 3 */
    bd_config *cfg = bd_config_new();
    bd_config_set_str(cfg, "normalize", "rms");
    bd_config_set_num(cfg, "pca", 2);
    bd_config_set_num(cfg, "long", 0.5);
    bd_config_set_num(cfg, "top", 3);
    r = measure_with("persistence", cfg, x, labels);
    top = array(r, "h1_longest");
    CHECK(number(r, "dims") == 2 && number(r, "h1_long") == 1 && top && top->shape[0] == 3
          && fabs(top->data[0] * 3 - longest) < 0.05 * longest,
          "rms units, 2 components: one bar longer than 0.5 (%.3f)", top ? top->data[0] : NAN);
    bd_metric_result_free(r);

    /* max_length below the circle's death: its loop is essential */
    cfg = bd_config_new();
    bd_config_set_num(cfg, "max_length", 2.0);
    r = measure_with("persistence", cfg, x, labels);
    h1 = array(r, "h1");
    CHECK(number(r, "end") == 2.0 && number(r, "h1_essential") == 1 && h1 && isinf(h1->data[1])
          && number(r, "h0_components") == 1, "capped at 2: the loop's death is inf");
    bd_metric_result_free(r);
    bd_tensor_free(x);
    bd_tensor_free(labels);

    /* three points: no bar, no h1 array; the top lengths are 0; a tap */
    x = bd_tensor_new4(3, 2, 1, 1, false);
    labels = bd_tensor_new4(3, 2, 0, 0, false);
    const float tri[6] = {0, 0, 1, 0, 0, 1};
    memcpy(x->data, tri, sizeof tri);
    bd_tensor *images = bd_tensor_new4(3, 1, 1, 1, false);
    bd_taps taps = {.n = 1, .names = {"layer4"}, .values = {x}};
    bd_metric *m = NULL;
    r = bd_metric_result_new();
    CHECK_OK(bd_metric_create("persistence", NULL, &m));
    if (m) {
        CHECK_OK(bd_metric_update(m, images, labels, &taps));
        CHECK_OK(bd_metric_compute(m, r));
        bool no_h1 = true;
        for (int i = 0; i < bd_metric_result_count(r); i++)
            no_h1 = no_h1 && strcmp(bd_metric_result_name(r, i), "h1") != 0;
        top = array(r, "h1_longest");
        CHECK(no_h1 && number(r, "h1_count") == 0 && top && top->data[0] == 0
              && number(r, "dims") == 2 && fabs(number(r, "h0_max") - 1) < 1e-6,
              "a triangle through the tap: no H1 bar, h0_max 1");
    }
    bd_metric_free(m);
    bd_metric_result_free(r);
    bd_tensor_free(x);
    bd_tensor_free(images);
    bd_tensor_free(labels);
}

/* ---- errors --------------------------------------------------------------------- */

static void fails_on(bd_tensor *x, bd_tensor *labels, bd_config *cfg, const char *needle)
{
    bd_metric *m = NULL;
    bd_metric_result *r = bd_metric_result_new();
    CHECK_OK(bd_metric_create("persistence", cfg, &m));
    if (m) {
        CHECK_OK(bd_metric_update(m, x, labels, NULL));
        CHECK_FAILS(bd_metric_compute(m, r), BD_E_ARG, needle);
    }
    bd_metric_free(m);
    bd_metric_result_free(r);
    bd_config_free(cfg);
}

static void create_fails(const char *key, const char *value, double num, const char *needle)
{
    bd_config *cfg = bd_config_new();
    if (value)
        bd_config_set_str(cfg, key, value);
    else
        bd_config_set_num(cfg, key, num);
    bd_metric *m = NULL;
    CHECK_FAILS(bd_metric_create("persistence", cfg, &m), BD_E_ARG, needle);
    bd_metric_free(m);
    bd_config_free(cfg);
}

static void test_errors(void)
{
    bd_tensor *labels, *x = circle_cloud(&labels);
    bd_metric *m = NULL;
    bd_metric_result *r = bd_metric_result_new();
    CHECK_OK(bd_metric_create("persistence", NULL, &m));
    if (m)
        CHECK_FAILS(bd_metric_compute(m, r), BD_E_ARG,
                    "persistence: 0 points, expected at least 2 (one edge)");
    bd_metric_free(m);
    bd_metric_result_free(r);

    bd_config *cfg = bd_config_new();
    bd_config_set_num(cfg, "max_points", 39);
    fails_on(x, labels, cfg, "persistence: 40 points, expected at most max_points = 39"
             " (the time grows as n^3; max_points may be raised to 5000)");
    x->data[7 * CD + 3] = NAN;
    fails_on(x, labels, NULL, "persistence: point 7 has value nan at 3, expected finite values");
    x->data[7 * CD + 3] = INFINITY;
    fails_on(x, labels, NULL, "persistence: point 7 has value inf at 3, expected finite values");
    for (int k = 0; k < CN * CD; k++)
        x->data[k] = 1.5f;
    cfg = bd_config_new();
    bd_config_set_str(cfg, "normalize", "rms");
    fails_on(x, labels, cfg, "persistence: normalize = rms, but all 40 points coincide (rms 0);"
             " expected points that differ");
    bd_tensor_free(x);
    bd_tensor_free(labels);
    x = bd_tensor_new4(1, 3, 1, 1, false);
    labels = bd_tensor_new4(1, 2, 0, 0, false);
    fails_on(x, labels, NULL, "persistence: 1 points, expected at least 2 (one edge)");
    bd_tensor_free(x);
    bd_tensor_free(labels);

    create_fails("normalize", "max", 0, "normalize");
    create_fails("pca", NULL, -1, "pca = -1, expected an integer in [0, 1000]");
    create_fails("max_points", NULL, 6000, "max_points = 6000, expected an integer in [2, 5000]");
    create_fails("long", NULL, -0.5, "long = -0.5");
    create_fails("max_length", NULL, -1, "max_length = -1");
    create_fails("top", NULL, 0, "top = 0, expected an integer in [1, 1000]");
    create_fails("tap", "", 0, "persistence: tap = '', expected a name of 1 to 63");
    create_fails("radius", NULL, 1, "unknown key 'radius' for persistence (allowed: long,"
                 " max_length, max_points, normalize, pca, tap, top)");
}

int main(void)
{
    RUN(test_naive_reference);
    RUN(test_square);
    RUN(test_circle);
    RUN(test_flat);
    RUN(test_tori);
    RUN(test_spanning_tree);
    RUN(test_plugin);
    RUN(test_errors);
    bd_plugins_unload_all();
    return harness_summary();
}
