/* Metric "manifold": PCA against exact eigenvalues, UMAP's a and b, exact
 * kNN, trustworthiness, label consistency, R^2, kNN regression R^2 and
 * the distance rank correlation on cases with known answers; through the plugin: a noisy 2D sheet in 64 dimensions (R^2 > 0.95,
 * effective dimension near 2) and the same with shuffled labels (R^2 near
 * 0); well-separated clusters; seeds; every config error. */
#include <lapacke.h>

#include "bd/model.h"
#include "bd/registry.h"
#include "harness.h"
#include "test_metric_util.h"
#include "knn.h"
#include "order.h"
#include "pca.h"
#include "quality.h"
#include "spectral.h"
#include "umap.h"

static double normal(void)
{
    double u = 1.0 - harness_uniform(), v = harness_uniform();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* ---- PCA ------------------------------------------------------------------- */

/* Eigenvalues of the sample covariance of x (n, d), descending, in double:
 * of X^T X when d <= n, else of X X^T (the nonzero ones agree). */
static void exact_spectrum(const float *x, int n, int d, double *out)
{
    int m = d <= n ? d : n;
    double *xc = malloc((size_t)n * d * sizeof *xc), *g = calloc((size_t)m * m, sizeof *g);
    double *w = malloc((size_t)m * sizeof *w);
    for (int j = 0; j < d; j++) {
        double mean = 0;
        for (int i = 0; i < n; i++)
            mean += x[i * d + j];
        for (int i = 0; i < n; i++)
            xc[i * d + j] = x[i * d + j] - mean / n;
    }
    for (int a = 0; a < m; a++)
        for (int b = 0; b < m; b++)
            for (int k = 0; k < (d <= n ? n : d); k++)
                g[a * m + b] += d <= n ? xc[k * d + a] * xc[k * d + b]
                                       : xc[a * d + k] * xc[b * d + k];
    LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', m, g, m, w);
    for (int i = 0; i < m; i++)
        out[i] = w[m - 1 - i] / (n - 1);
    free(xc);
    free(g);
    free(w);
}

/* n samples in d dims, column j scaled by 0.7^j, then mixed by a rotation
 * of the first dims (so no component is axis-aligned). */
static float *decaying(int n, int d)
{
    float *x = malloc((size_t)n * d * sizeof *x);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            x[i * d + j] = (float)(normal() * pow(0.7, j) + 3.0);
    for (int i = 0; i < n; i++) {  /* rotate dims 0 and 1 by 30 degrees */
        float a = x[i * d], b = x[i * d + 1];
        x[i * d] = 0.866f * a - 0.5f * b;
        x[i * d + 1] = 0.5f * a + 0.866f * b;
    }
    return x;
}

static void check_pca(int n, int d, int k)
{
    float *x = decaying(n, d);
    int m = d <= n ? d : n;
    double *want = malloc((size_t)m * sizeof *want), total = 0, sq = 0;
    exact_spectrum(x, n, d, want);
    for (int i = 0; i < m; i++) {
        total += want[i];
        sq += want[i] * want[i];
    }
    pca_result p;
    CHECK(pca_fit(x, n, d, k, 1, &p) == 0, "pca_fit %d x %d", n, d);
    double worst = 0;
    for (int c = 0; c < p.k; c++)
        worst = fmax(worst, fabs(p.var[c] - want[c]) / want[0]);
    printf("   PCA %d x %d, %d components: worst variance error %.2e of the"
           " largest; eff_dim %.4f (exact %.4f)\n", n, d, p.k, worst,
           pca_participation_ratio(&p), total * total / sq);
    CHECK(p.k == (k < m ? k : m), "k");
    CHECK(worst < 1e-4, "variances off by %.2e", worst);
    CHECK(fabs(p.total - total) < 1e-4 * total && fabs(p.sum_sq - sq) < 1e-3 * sq,
          "spectrum sums %g, %g; exact %g, %g", p.total, p.sum_sq, total, sq);
    /* the scores have the component variances and are uncorrelated */
    double v0 = 0, v1 = 0, c01 = 0;
    for (int i = 0; i < n; i++) {
        v0 += (double)p.scores[i * p.k] * p.scores[i * p.k];
        v1 += (double)p.scores[i * p.k + 1] * p.scores[i * p.k + 1];
        c01 += (double)p.scores[i * p.k] * p.scores[i * p.k + 1];
    }
    CHECK(fabs(v0 / (n - 1) - p.var[0]) < 1e-3 * p.var[0]
          && fabs(c01) < 1e-3 * sqrt(v0 * v1), "scores: var %g (want %g),"
          " cov %g", v0 / (n - 1), p.var[0], c01);
    pca_free(&p);
    free(want);
    free(x);
}

static void test_pca(void)
{
    check_pca(300, 40, 10);  /* d < n, randomized */
    check_pca(40, 300, 10);  /* d > n */
    check_pca(60, 12, 10);   /* k + 10 >= min(n, d): exact */
}

/* ---- kNN, quality, R^2, a and b --------------------------------------------- */

static void check_knn(int n, int d, int k)
{
    float *x = malloc((size_t)n * d * sizeof *x), *dist = malloc((size_t)n * k * sizeof *dist);
    int32_t *idx = malloc((size_t)n * k * sizeof *idx);
    for (int i = 0; i < n * d; i++)
        x[i] = (float)normal();
    CHECK(knn_exact(x, n, d, k, idx, dist) == 0, "knn");
    int wrong = 0;
    for (int i = 0; i < n; i++) {
        double prev = 0;
        for (int c = 0; c < k; c++) {
            int j = idx[i * k + c], nearer = 0;
            double dj = 0;
            for (int t = 0; t < d; t++)
                dj += pow(x[i * d + t] - x[j * d + t], 2);
            for (int l = 0; l < n; l++) {
                double dl = 0;
                for (int t = 0; t < d; t++)
                    dl += pow(x[i * d + t] - x[l * d + t], 2);
                nearer += l != i && dl < dj * (1 - 1e-5);
            }
            wrong += j == i || nearer > c || dj < prev * (1 - 1e-5)
                  || fabs(sqrt(dj) - dist[i * k + c]) > 1e-3 * (1 + sqrt(dj));
            prev = dj;
        }
    }
    CHECK(wrong == 0, "knn in %d dims: %d wrong neighbours", d, wrong);
    free(x);
    free(dist);
    free(idx);
}

static void test_knn_and_quality(void)
{
    check_knn(300, 20, 7);  /* matrix-product path, two blocks */
    check_knn(300, 2, 7);   /* direct path */

    enum { N = 400, K = 10 };
    float *lab = malloc(N * 2 * sizeof *lab), *rnd = malloc(N * 2 * sizeof *rnd);
    float dist[N * K];
    int32_t idx[N * K];
    for (int i = 0; i < N; i++) {
        lab[2 * i] = (float)(i % 20);
        lab[2 * i + 1] = (float)(i / 20);
        rnd[2 * i] = (float)harness_uniform();
        rnd[2 * i + 1] = (float)harness_uniform();
    }
    knn_exact(lab, N, 2, K, idx, dist);  /* the labels as their own embedding */
    CHECK(fabs(trustworthiness(lab, N, 2, idx, K) - 1) < 1e-12, "trust of self");
    CHECK(fabs(label_consistency(lab, N, idx, K) - 1) < 1e-12, "consistency");
    knn_exact(rnd, N, 2, K, idx, dist);  /* a random embedding */
    double t = trustworthiness(lab, N, 2, idx, K);
    double c = label_consistency(lab, N, idx, K);
    printf("   random embedding: trustworthiness %.3f, consistency %.3f\n", t, c);
    CHECK(t > 0.4 && t < 0.6 && c < 0.1, "random embedding: %g, %g", t, c);
    CHECK(isnan(trustworthiness(lab, 20, 2, idx, K)), "k too large: NaN");

    float feat[N * 2], target[N * 2];
    for (int i = 0; i < N; i++) {
        feat[2 * i] = lab[2 * i];
        feat[2 * i + 1] = (float)normal();
        target[2 * i] = 3 * lab[2 * i] - 2 * feat[2 * i + 1] + 5;
        target[2 * i + 1] = (float)normal();
    }
    CHECK(fabs(r2_linear(feat, N, 2, target, 2) - 1) < 1e-6, "exact fit");
    double r0 = r2_linear(feat, N, 2, target + 1, 2);
    CHECK(r0 >= 0 && r0 < 0.03, "noise target: R^2 %g", r0);
    CHECK(isnan(r2_linear(feat, N, 2, lab + 1, 0)), "constant target: NaN");
    for (int i = 0; i < N; i++)
        feat[2 * i + 1] = 2 * feat[2 * i];  /* collinear features */
    CHECK(fabs(r2_linear(feat, N, 2, lab, 2) - 1) < 1e-6, "collinear features");
    free(lab);
    free(rnd);

    double a, b;
    umap_find_ab(0.1, 1.0, &a, &b);
    printf("   a, b for min_dist 0.1: %.6f %.6f (umap-learn 1.576943 0.895061)\n",
           a, b);
    CHECK(fabs(a - 1.576943) < 1e-3 && fabs(b - 0.895061) < 1e-3, "a, b");
}

/* ---- spectral layout -------------------------------------------------------- */

/* Edges (both directions, sorted by head) of a 4-neighbour grid of side l
 * placed at vertex offset `at`; returns the edge count. */
static int64_t grid_edges(int l, int at, int32_t *head, int32_t *tail,
                          float *w, int64_t m)
{
    for (int v = 0; v < l * l; v++) {
        int x = v % l, y = v / l;
        const int nb[4][2] = {{x, y - 1}, {x - 1, y}, {x + 1, y}, {x, y + 1}};
        for (int k = 0; k < 4; k++) {
            if (nb[k][0] < 0 || nb[k][1] < 0 || nb[k][0] >= l || nb[k][1] >= l)
                continue;
            head[m] = at + v;
            tail[m] = at + nb[k][1] * l + nb[k][0];
            w[m++] = 1.0f;
        }
    }
    return m;
}

static void test_spectral(void)
{
    enum { L = 20, N = L * L };
    static int32_t head[8 * N], tail[8 * N];
    static float w[8 * N], out[2 * N], lab[2 * N];
    int64_t m = grid_edges(L, 0, head, tail, w, 0);
    for (int v = 0; v < N; v++) {
        lab[2 * v] = (float)(v % L);
        lab[2 * v + 1] = (float)(v / L);
    }
    CHECK(spectral_layout(head, tail, w, m, N, 2, 3, out) == 0, "grid layout");
    double rx = r2_linear(out, N, 2, lab, 2), ry = r2_linear(out, N, 2, lab + 1, 2);
    printf("   spectral layout of a %d x %d grid: R^2 x %.4f, y %.4f\n", L, L,
           rx, ry);
    /* mixes of the x and y cosine modes: R^2 near 0.97 each */
    CHECK(rx > 0.9 && ry > 0.9, "the grid's x and y modes");

    /* they are eigenvectors of A = D^-1/2 W D^-1/2 for its largest
     * non-trivial eigenvalue (a pair: x and y), found densely here */
    double *a = calloc((size_t)N * N, sizeof *a), *ev = malloc(N * sizeof *ev);
    double deg[N] = {0}, worst = 0;
    for (int64_t e = 0; e < m; e++)
        deg[head[e]] += w[e];
    for (int64_t e = 0; e < m; e++)
        a[(int64_t)head[e] * N + tail[e]] = w[e] / sqrt(deg[head[e]] * deg[tail[e]]);
    double *av = calloc(N, sizeof *av);
    for (int k = 0; k < 2; k++) {
        double vv = 0, vav = 0, res = 0;
        for (int v = 0; v < N; v++) {
            av[v] = 0;
            for (int u = 0; u < N; u++)
                av[v] += a[(int64_t)v * N + u] * out[2 * u + k];
        }
        for (int v = 0; v < N; v++) {
            vv += (double)out[2 * v + k] * out[2 * v + k];
            vav += out[2 * v + k] * av[v];
        }
        for (int v = 0; v < N; v++)
            res += pow(av[v] - vav / vv * out[2 * v + k], 2);
        worst = fmax(worst, sqrt(res / vv));
        ev[k] = vav / vv;
    }
    double rayleigh[2] = {ev[0], ev[1]};
    LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', N, a, N, ev);
    printf("   eigenvalues %.8f %.8f, dense %.8f %.8f; residual %.2e\n",
           rayleigh[0], rayleigh[1], ev[N - 2], ev[N - 3], worst);
    CHECK(fabs(rayleigh[0] - ev[N - 2]) < 1e-5 && fabs(rayleigh[1] - ev[N - 3]) < 1e-5,
          "the top non-trivial eigenvalues");
    CHECK(worst < 2e-4, "eigenvector residual %g", worst);
    free(a);
    free(ev);
    free(av);

    /* two grids apart: no single layout */
    m = grid_edges(5, 0, head, tail, w, 0);
    m = grid_edges(5, 25, head, tail, w, m);
    CHECK(spectral_layout(head, tail, w, m, 50, 2, 3, out) == -3, "disconnected");
}

/* ---- through the plugin ---------------------------------------------------- */

/* Measure act (n, 1, 8, 8) with labels; cfg consumed. NULL on failure. */
static bd_metric_result *measure(bd_config *cfg, bd_tensor *act,
                                 bd_tensor *labels)
{
    return measure_with("manifold", cfg, act, labels);
}

/* A 20 x 20 grid of labels in [0, 19]^2 mapped linearly into 64 dims by
 * two orthonormal directions, plus N(0, 0.1^2) noise. */
static void sheet(bd_tensor **act, bd_tensor **labels)
{
    enum { G = 20, D = 64 };
    double u[D], v[D], uu = 0, uv = 0, vv = 0;
    for (int k = 0; k < D; k++) {
        u[k] = normal();
        v[k] = normal();
    }
    for (int k = 0; k < D; k++)
        uu += u[k] * u[k];
    for (int k = 0; k < D; k++) {
        u[k] /= sqrt(uu);
        uv += u[k] * v[k];
    }
    for (int k = 0; k < D; k++)
        v[k] -= uv * u[k];
    for (int k = 0; k < D; k++)
        vv += v[k] * v[k];
    for (int k = 0; k < D; k++)
        v[k] /= sqrt(vv);
    *act = bd_tensor_new4(G * G, 1, 8, 8, false);
    *labels = bd_tensor_new4(G * G, 2, 0, 0, false);
    for (int i = 0; i < G * G; i++) {
        double x = i % G, y = i / G;
        (*labels)->data[2 * i] = (float)x;
        (*labels)->data[2 * i + 1] = (float)y;
        for (int k = 0; k < D; k++)
            (*act)->data[i * D + k] = (float)(x * u[k] + y * v[k] + 0.1 * normal());
    }
}

/* ---- order without an embedding ------------------------------------------- */

/* Labels on a side x side grid; codes: (x, y) rotated into d dims (ordered),
 * the same rows shuffled against the labels, a constant, x alone. */
static void test_order(void)
{
    /* a case by hand: positions 0, 1, 3, 7 on a line, k = 1: nearest
     * others 1, 0, 1, 3, so R^2 = 1 - 22 / 28.75 */
    const float line[4] = {0, 1, 3, 7}, line_labels[8] = {0, 5, 1, 5, 3, 5, 7, 5};
    double r2[2];
    CHECK(order_knn_r2(line, 4, 1, line_labels, 1, 1, r2) == 0, "knn r2 runs");
    CHECK(fabs(r2[0] - (1 - 22 / 28.75)) < 1e-12 && isnan(r2[1]),
          "by hand: %.6f (want %.6f), constant y NaN: %g", r2[0], 1 - 22 / 28.75, r2[1]);
    CHECK(fabs(order_rank_corr(line, 4, 1, line_labels, 1) - 1) < 1e-12,
          "distances equal to label distances: rho 1");

    enum { SIDE = 14, N = SIDE * SIDE, D = 24, K = 5 };
    float *labels = malloc(2 * N * sizeof *labels), *x = calloc(N * D, sizeof *x);
    float *shuffled = malloc(N * D * sizeof *x), *flat = malloc(N * D * sizeof *x);
    double rot[D][2];
    double n0 = 0, dot = 0, n1 = 0;  /* two orthonormal columns: an isometry */
    for (int c = 0; c < D; c++)
        rot[c][0] = normal(), rot[c][1] = normal(), n0 += rot[c][0] * rot[c][0];
    for (int c = 0; c < D; c++)
        rot[c][0] /= sqrt(n0), dot += rot[c][0] * rot[c][1];
    for (int c = 0; c < D; c++)
        rot[c][1] -= dot * rot[c][0], n1 += rot[c][1] * rot[c][1];
    for (int c = 0; c < D; c++)
        rot[c][1] /= sqrt(n1);
    for (int i = 0; i < N; i++) {
        labels[2 * i] = (float)(i % SIDE), labels[2 * i + 1] = (float)(i / SIDE);
        for (int c = 0; c < D; c++) {
            x[i * D + c] = (float)(rot[c][0] * labels[2 * i] + rot[c][1] * labels[2 * i + 1]);
            flat[i * D + c] = (float)(rot[c][0] * labels[2 * i]);
        }
    }
    memcpy(shuffled, x, N * D * sizeof *x);
    for (int i = N - 1; i > 0; i--) {
        int j = (int)(harness_uniform() * (i + 1));
        for (int c = 0; c < D; c++) {
            float t = shuffled[i * D + c];
            shuffled[i * D + c] = shuffled[j * D + c];
            shuffled[j * D + c] = t;
        }
    }
    const struct { const char *name; const float *code; double lo_x, hi_x, lo_y, hi_y, lo_rho, hi_rho; } cases[] = {
        {"ordered", x, 0.97, 1, 0.97, 1, 0.999, 1.0},
        {"shuffled", shuffled, -0.4, 0.05, -0.4, 0.05, -0.05, 0.05},
        {"x alone", flat, 0.97, 1, -0.5, 0.05, 0.3, 0.9},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        CHECK(order_knn_r2(cases[c].code, N, D, labels, K, 3, r2) == 0, "runs");
        double rho = order_rank_corr(cases[c].code, N, D, labels, 3);
        printf("   %-8s code: knn_r2 %.3f %.3f (unordered: -1/k = %.2f), rho %.3f\n",
               cases[c].name, r2[0], r2[1], -1.0 / K, rho);
        CHECK(r2[0] >= cases[c].lo_x && r2[0] <= cases[c].hi_x && r2[1] >= cases[c].lo_y
              && r2[1] <= cases[c].hi_y && rho >= cases[c].lo_rho && rho <= cases[c].hi_rho,
              "%s code out of its expected ranges", cases[c].name);
    }
    /* a constant code: every distance ties; the grid order must not leak */
    float *same = calloc(N * D, sizeof *same);
    CHECK(order_knn_r2(same, N, D, labels, K, 3, r2) == 0, "runs");
    printf("   constant code: knn_r2 %.3f %.3f\n", r2[0], r2[1]);
    CHECK(r2[0] < 0.05 && r2[1] < 0.05, "constant code: no order from ties (%g, %g)",
          r2[0], r2[1]);
    CHECK(isnan(order_rank_corr(same, N, D, labels, 3)), "constant code: rho NaN");
    free(same);
    free(labels);
    free(x);
    free(shuffled);
    free(flat);
}

/* More pairs than ORDER_MAX_PAIRS: a sample of them, still rho near 1 for
 * a code whose distances are the label distances. */
static void test_order_sampled_pairs(void)
{
    enum { N = 1600 };  /* 1,279,200 pairs */
    float *labels = malloc(2 * N * sizeof *labels), *x = malloc(3 * N * sizeof *x);
    for (int i = 0; i < N; i++) {
        labels[2 * i] = (float)(i % 40), labels[2 * i + 1] = (float)(i / 40);
        x[3 * i] = labels[2 * i], x[3 * i + 1] = labels[2 * i + 1], x[3 * i + 2] = 1;
    }
    double rho = order_rank_corr(x, N, 3, labels, 9);
    CHECK(fabs(rho - 1) < 1e-9, "sampled pairs: rho %.12f", rho);
    free(labels);
    free(x);
}

static void test_sheet(void)
{
    bd_tensor *act, *labels;
    sheet(&act, &labels);
    bd_config *cfg = bd_config_new();
    bd_config_set_num(cfg, "dims", 2);
    bd_metric_result *r = measure(cfg, act, labels);
    printf("   sheet: r2_x %.4f r2_y %.4f (pca %.4f %.4f) eff_dim %.3f evr_top2"
           " %.4f knn %.3f trust %.3f\n", number(r, "r2_x"), number(r, "r2_y"),
           number(r, "r2_x_pca"), number(r, "r2_y_pca"), number(r, "eff_dim"),
           number(r, "evr_top2"), number(r, "knn_consistency"),
           number(r, "trustworthiness"));
    CHECK(number(r, "r2_x") > 0.95 && number(r, "r2_y") > 0.95, "UMAP R^2");
    CHECK(number(r, "r2_x_pca") > 0.99 && number(r, "r2_y_pca") > 0.99, "PCA R^2");
    CHECK(fabs(number(r, "eff_dim") - 2) < 0.1, "eff_dim %g", number(r, "eff_dim"));
    CHECK(number(r, "evr_top2") > 0.98, "evr_top2");
    CHECK(number(r, "knn_consistency") > 0.7 && number(r, "trustworthiness") > 0.95,
          "neighbourhoods kept");
    CHECK(number(r, "n") == 400 && number(r, "d") == 64, "n, d");
    printf("   sheet: knn_r2 %.4f %.4f, dist_rank_corr %.4f\n", number(r, "knn_r2_x"),
           number(r, "knn_r2_y"), number(r, "dist_rank_corr"));
    CHECK(number(r, "knn_r2_x") > 0.95 && number(r, "knn_r2_y") > 0.95
          && number(r, "dist_rank_corr") > 0.9, "order without an embedding");
    const bd_tensor *emb = array(r, "embedding");
    const bd_tensor *evr = array(r, "explained_variance_ratio");
    CHECK(emb && emb->ndim == 2 && emb->shape[0] == 400 && emb->shape[1] == 2,
          "embedding (400, 2)");
    CHECK(evr && evr->numel == 10 && evr->data[0] >= evr->data[1]
          && evr->data[1] > 0.45, "explained variance ratios");
    bd_metric_result_free(r);

    /* the same activations with shuffled labels */
    for (int i = 399; i > 0; i--) {
        int j = (int)(harness_uniform() * (i + 1));
        for (int c = 0; c < 2; c++) {
            float t = labels->data[2 * i + c];
            labels->data[2 * i + c] = labels->data[2 * j + c];
            labels->data[2 * j + c] = t;
        }
    }
    cfg = bd_config_new();
    bd_config_set_num(cfg, "dims", 2);
    r = measure(cfg, act, labels);
    printf("   shuffled: r2_x %.4f r2_y %.4f (pca %.4f %.4f) knn %.3f\n",
           number(r, "r2_x"), number(r, "r2_y"), number(r, "r2_x_pca"),
           number(r, "r2_y_pca"), number(r, "knn_consistency"));
    CHECK(number(r, "r2_x") < 0.05 && number(r, "r2_y") < 0.05
          && number(r, "r2_x_pca") < 0.08 && number(r, "r2_y_pca") < 0.08,
          "shuffled labels: R^2 near 0");
    CHECK(number(r, "knn_consistency") < 0.15, "shuffled: consistency");
    printf("   shuffled: knn_r2 %.4f %.4f, dist_rank_corr %.4f\n", number(r, "knn_r2_x"),
           number(r, "knn_r2_y"), number(r, "dist_rank_corr"));
    CHECK(fabs(number(r, "knn_r2_x") + 0.2) < 0.15 && fabs(number(r, "knn_r2_y") + 0.2) < 0.15
          && fabs(number(r, "dist_rank_corr")) < 0.05,
          "shuffled: kNN R^2 near -1/k = -0.2, rank correlation near 0");
    bd_metric_result_free(r);

    /* method = pca: the embedding is the top scores */
    cfg = bd_config_new();
    bd_config_set_str(cfg, "method", "pca");
    r = measure(cfg, act, labels);
    emb = array(r, "embedding");
    CHECK(emb && emb->shape[1] == 3 && number(r, "trustworthiness") > 0.95,
          "pca embedding");
    bd_metric_result_free(r);
    bd_tensor_free(act);
    bd_tensor_free(labels);
}

/* Five tight clusters far apart in 50 dims, one label per cluster. */
static void test_clusters(void)
{
    enum { C = 5, PER = 60, D = 50, N = C * PER };
    bd_tensor *act = bd_tensor_new4(N, D, 1, 1, false);
    bd_tensor *labels = bd_tensor_new4(N, 2, 0, 0, false);
    double centre[C][D];
    for (int c = 0; c < C; c++)
        for (int k = 0; k < D; k++)
            centre[c][k] = 10 * normal();
    for (int i = 0; i < N; i++) {
        int c = i % C;
        for (int k = 0; k < D; k++)
            act->data[i * D + k] = (float)(centre[c][k] + normal());
        labels->data[2 * i] = (float)(4 * c);
        labels->data[2 * i + 1] = (float)(c % 2);
    }
    bd_config *cfg = bd_config_new();
    bd_config_set_num(cfg, "dims", 2);
    bd_config_set_num(cfg, "seed", 7);
    bd_metric_result *r = measure(cfg, act, labels);
    const bd_tensor *emb = array(r, "embedding");
    int agree = 0;
    if (emb) { /* each point nearest its own cluster's centroid */
        double mean[C][2] = {{0}};
        for (int i = 0; i < N; i++)
            for (int t = 0; t < 2; t++)
                mean[i % C][t] += emb->data[2 * i + t] / PER;
        for (int i = 0; i < N; i++) {
            int best = 0;
            double bd2 = INFINITY;
            for (int c = 0; c < C; c++) {
                double d2 = pow(emb->data[2 * i] - mean[c][0], 2)
                          + pow(emb->data[2 * i + 1] - mean[c][1], 2);
                if (d2 < bd2) {
                    bd2 = d2;
                    best = c;
                }
            }
            agree += best == i % C;
        }
    }
    printf("   clusters: %d/%d nearest their centroid, knn %.4f, trust %.4f\n",
           agree, N, number(r, "knn_consistency"), number(r, "trustworthiness"));
    CHECK(agree == N, "clusters separated");
    CHECK(number(r, "knn_consistency") > 0.999, "consistency ~1");
    CHECK(number(r, "trustworthiness") > 0.8, "trustworthiness high");

    /* the clusters' kNN graph is disconnected: no spectral start */
    umap_options o = umap_defaults(2);
    umap_init used = UMAP_INIT_SPECTRAL;
    float *y = malloc(N * 2 * sizeof *y);
    CHECK(umap_embed(act->data, N, D, NULL, &o, y, &used) == 0
          && used == UMAP_INIT_RANDOM, "disconnected: random start, used %d",
          (int)used);
    free(y);

    /* the same seed gives the same layout; another seed another one */
    float first = emb ? emb->data[0] : 0;
    bd_metric_result_free(r);
    cfg = bd_config_new();
    bd_config_set_num(cfg, "dims", 2);
    bd_config_set_num(cfg, "seed", 7);
    r = measure(cfg, act, labels);
    emb = array(r, "embedding");
    CHECK(emb && emb->data[0] == first, "seeded: same layout");
    bd_metric_result_free(r);
    cfg = bd_config_new();
    bd_config_set_num(cfg, "dims", 2);
    bd_config_set_num(cfg, "seed", 8);
    r = measure(cfg, act, labels);
    emb = array(r, "embedding");
    CHECK(emb && emb->data[0] != first, "another seed: another layout");
    bd_metric_result_free(r);
    bd_tensor_free(act);
    bd_tensor_free(labels);
}

/* Activations from a tap, across two batches. */
static void test_taps(void)
{
    enum { N = 30, D = 6 };
    bd_tensor *images = bd_tensor_new4(N, 1, 2, 2, false);
    bd_tensor *labels = bd_tensor_new4(N, 2, 0, 0, false);
    bd_tensor *act = bd_tensor_new4(N, D, 0, 0, false);
    for (int i = 0; i < N; i++) {
        labels->data[2 * i] = (float)i;
        for (int k = 0; k < D; k++)
            act->data[i * D + k] = (float)(i * (k + 1) + 0.01 * normal());
    }
    bd_taps taps = {.n = 1, .names = {"mid"}, .values = {act}};
    bd_config *cfg = bd_config_new();
    bd_config_set_str(cfg, "tap", "mid");
    bd_config_set_str(cfg, "method", "pca");
    bd_metric *m = NULL;
    CHECK_OK(bd_metric_create("manifold", cfg, &m));
    bd_metric_result *r = bd_metric_result_new();
    if (m) {
        CHECK_OK(bd_metric_update(m, images, labels, &taps));
        CHECK_OK(bd_metric_update(m, images, labels, &taps));
        CHECK_FAILS(bd_metric_update(m, act, labels, NULL), BD_E_ARG,
                    "images must be (N, C, H, W)");  /* the host checks */
        CHECK_FAILS(bd_metric_update(m, images, labels, NULL), BD_E_ARG,
                    "manifold: tap = 'mid', but the batch has no taps (pass"
                    " bd.sample's result made with taps = {'mid'}");
        bd_taps other = {.n = 1, .names = {"mid"}, .values = {images}};
        CHECK_FAILS(bd_metric_update(m, images, labels, &other), BD_E_ARG,
                    "manifold: activations of 4 values per sample, earlier"
                    " batches had 6");
        CHECK_OK(bd_metric_compute(m, r));
        CHECK(number(r, "n") == 2 * N && number(r, "d") == D
              && number(r, "r2_x") > 0.99 && fabs(number(r, "eff_dim") - 1) < 0.01,
              "tap 'mid': n %g, d %g, r2_x %g, eff_dim %g", number(r, "n"),
              number(r, "d"), number(r, "r2_x"), number(r, "eff_dim"));
    }
    bd_metric_result_free(r);
    bd_metric_free(m);
    bd_config_free(cfg);

    m = NULL;
    CHECK_OK(bd_metric_create("manifold", NULL, &m));
    taps.names[0] = "layer3";
    if (m)
        CHECK_FAILS(bd_metric_update(m, images, labels, &taps), BD_E_ARG,
                    "manifold: the batch has no tap 'layer4'");
    bd_metric_free(m);

    m = NULL;  /* too few samples for UMAP with 15 neighbours */
    CHECK_OK(bd_metric_create("manifold", NULL, &m));
    r = bd_metric_result_new();
    bd_tensor *few = bd_tensor_new4(10, 1, 2, 2, false);
    bd_tensor *few_labels = bd_tensor_new4(10, 2, 0, 0, false);
    if (m) {
        CHECK_OK(bd_metric_update(m, few, few_labels, NULL));
        CHECK_FAILS(bd_metric_compute(m, r), BD_E_ARG,
                    "manifold: 10 samples, expected at least 22");
    }
    bd_tensor_free(few);
    bd_tensor_free(few_labels);
    bd_metric_result_free(r);
    bd_metric_free(m);
    bd_tensor_free(images);
    bd_tensor_free(labels);
    bd_tensor_free(act);
}

static void check_config_error(const char *key, const char *str, double num,
                               const char *key2, const char *str2,
                               const char *needle)
{
    bd_config *cfg = bd_config_new();
    if (str)
        bd_config_set_str(cfg, key, str);
    else
        bd_config_set_num(cfg, key, num);
    if (key2)
        bd_config_set_str(cfg, key2, str2);
    bd_metric *m = NULL;
    CHECK_FAILS(bd_metric_create("manifold", cfg, &m), BD_E_ARG, needle);
    bd_metric_free(m);
    bd_config_free(cfg);
}

static void test_errors(void)
{
    check_config_error("method", "tsne", 0, NULL, NULL,
                       "method = 'tsne', expected one of: umap, pca");
    check_config_error("dims", NULL, 0, NULL, NULL,
                       "dims = 0, expected an integer in [1, 8]");
    check_config_error("neighbors", NULL, 1, NULL, NULL, "neighbors = 1");
    check_config_error("min_dist", NULL, 2, NULL, NULL, "min_dist = 2");
    check_config_error("epochs", NULL, -1, NULL, NULL, "epochs = -1");
    check_config_error("negative_rate", NULL, 0, NULL, NULL, "negative_rate = 0");
    check_config_error("init", "laplacian", 0, NULL, NULL,
                       "init = 'laplacian', expected one of: spectral, pca, random");
    check_config_error("seed", NULL, -3, NULL, NULL, "seed = -3");
    check_config_error("pcs", NULL, 0, NULL, NULL, "pcs = 0");
    check_config_error("eval_neighbors", NULL, 0, NULL, NULL, "eval_neighbors = 0");
    check_config_error("tap", "", 0, NULL, NULL,
                       "manifold: tap = '', expected a name of 1 to 63");
    check_config_error("tap", NULL, 4, NULL, NULL, "tap = 4, expected a string");
    check_config_error("neighbors", NULL, 10, "method", "pca",
                       "unknown key 'neighbors'");
    check_config_error("min_dst", NULL, 0.5, NULL, NULL, "unknown key 'min_dst'");
}

int main(void)
{
    RUN(test_pca);
    RUN(test_knn_and_quality);
    RUN(test_spectral);
    RUN(test_order);
    RUN(test_order_sampled_pairs);
    RUN(test_sheet);
    RUN(test_clusters);
    RUN(test_taps);
    RUN(test_errors);
    bd_plugins_unload_all();
    return harness_summary();
}
