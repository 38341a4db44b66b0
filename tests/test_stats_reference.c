/* bd's statistics against standard libraries: the committed fixture
 * tests/reference/stats_reference.safetensors (written by
 * make_stats_reference.py with numpy, scipy, scikit-learn and gudhi; the
 * versions are in its metadata) holds inputs and the libraries' values of
 * what the manifold, persistence and factorization metrics report. Each
 * case runs through its plugin as scripts use it, and every value must lie
 * within its tolerance (TOLERANCES: float32 rounding with margin; the
 * largest differences measured are printed). Barcodes compare as multisets
 * of (birth, death) bars. The same cases with one sample moved must fail
 * the comparison. UMAP is stochastic and has no exact counterpart: the
 * manifold cases use method = pca; knn_consistency has no library
 * counterpart. */
#include "bd/ckpt.h"
#include "bd/safetensors.h"
#include "test_metric_util.h"

#define REFERENCE "tests/reference/stats_reference.safetensors"
#define MAX_VALUES 256  /* values of one statistic in the fixture */

typedef struct tolerance {
    const char *stat;
    double      abs;  /* |bd - library| allowed */
} tolerance;

/* bd computes PCA and cosines in float32, R^2 and ranks in double. */
static const tolerance TOLERANCES[] = {
    {"eff_dim", 1e-5}, {"explained_variance_ratio", 1e-5},
    {"r2_x", 1e-5}, {"r2_y", 1e-5}, {"r2_x_pca", 1e-5}, {"r2_y_pca", 1e-5},
    {"knn_r2_x", 1e-9}, {"knn_r2_y", 1e-9}, {"trustworthiness", 1e-9},
    {"dist_rank_corr", 1e-9}, {"h0", 1e-5}, {"h1", 1e-5}, {"h1_count", 0},
    {"scale", 1e-5}, {"end", 1e-5},
    {"orthogonality", 1e-6}, {"parallel_x", 1e-6}, {"parallel_y", 1e-6},
    {"aligned_x", 1e-6}, {"aligned_y", 1e-6},
    {"hist_xy", 1e-7}, {"hist_xx", 1e-7}, {"hist_yy", 1e-7},
};

static bd_ckpt *ref;

static const char *meta(const char *c, const char *key)
{
    char name[128];
    const char *v = "";
    snprintf(name, sizeof name, "%s%s%s", c, *c ? "." : "", key);
    CHECK_OK(bd_ckpt_get_str(ref, name, &v));
    return v;
}

/* The numbers of a space-separated list ("inf" too), at most max. */
static int parse_numbers(const char *s, double *out, int max)
{
    int n = 0;
    for (char *end; n < max; s = end) {
        double v = strtod(s, &end);
        if (end == s)
            break;
        out[n++] = v;
    }
    return n;
}

static double tolerance_of(const char *stat)
{
    for (size_t i = 0; i < sizeof TOLERANCES / sizeof *TOLERANCES; i++)
        if (strcmp(TOLERANCES[i].stat, stat) == 0)
            return TOLERANCES[i].abs;
    CHECK(0, "no tolerance for '%s'", stat);
    return 0;
}

/* |a - b|, 0 for equal infinities. */
static double gap(double a, double b)
{
    return a == b ? 0 : fabs(a - b);
}

/* The largest distance from each bar of want (m pairs) to a distinct bar of
 * got (m pairs), matched greedily nearest first; INFINITY if counts differ. */
static double bars_gap(const double *want, const float *got, int m, int got_m)
{
    if (m != got_m || m > MAX_VALUES / 2)
        return INFINITY;
    bool used[MAX_VALUES / 2] = {false};
    double worst = 0;
    for (int i = 0; i < m; i++) {
        int best = -1;
        double best_gap = INFINITY;
        for (int j = 0; j < m; j++) {
            double g = fmax(gap(want[2 * i], got[2 * j]),
                            gap(want[2 * i + 1], got[2 * j + 1]));
            if (!used[j] && (best < 0 || g < best_gap)) {
                best = j;
                best_gap = g;
            }
        }
        used[best] = true;
        worst = fmax(worst, best_gap);
    }
    return worst;
}

/* The largest |bd - library| over the values of stat in r. */
static double stat_gap(const bd_metric_result *r, const char *stat,
                       const double *want, int m)
{
    for (int i = 0; i < bd_metric_result_count(r); i++) {
        if (strcmp(bd_metric_result_name(r, i), stat) != 0)
            continue;
        const bd_tensor *a = bd_metric_result_array(r, i);
        if (!a)
            return m == 1 ? gap(want[0], bd_metric_result_number(r, i)) : INFINITY;
        if (strcmp(stat, "h0") == 0 || strcmp(stat, "h1") == 0)  /* barcodes */
            return bars_gap(want, a->data, m / 2, (int)(a->numel / 2));
        double worst = a->numel == m ? 0 : INFINITY;
        for (int j = 0; j < m && a->numel == m; j++)
            worst = fmax(worst, gap(want[j], a->data[j]));
        return worst;
    }
    return m == 0 ? 0 : INFINITY;  /* bd leaves out an empty h1 */
}

/* The config "key=value ..." of case c. */
static bd_config *case_config(const char *c)
{
    bd_config *cfg = bd_config_new();
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", meta(c, "config"));
    for (char *kv = strtok_r(buf, " ", &save); kv; kv = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(kv, '='), *end;
        if (!eq)
            continue;
        *eq = '\0';
        double v = strtod(eq + 1, &end);
        if (*end)
            bd_config_set_str(cfg, kv, eq + 1);
        else
            bd_config_set_num(cfg, kv, v);
    }
    return cfg;
}

/* Case c measured by bd, with sample 0 moved by `shift` in every value:
 * how many statistics miss their tolerance (printed when shift is 0). */
static int compare_case(const char *c, float shift)
{
    char name[128];
    bd_tensor *x = NULL, *labels = NULL;
    snprintf(name, sizeof name, "%s.x", c);
    CHECK_OK(bd_ckpt_get_tensor(ref, name, &x));
    snprintf(name, sizeof name, "%s.labels", c);
    CHECK_OK(bd_ckpt_get_tensor(ref, name, &labels));
    if (!x || !labels)
        return -1;
    for (int64_t j = 0; j < x->numel / x->shape[0]; j++)
        x->data[j] += shift;
    bd_metric_result *r = measure_with(meta(c, "metric"), case_config(c), x, labels);
    char stats[512], *save = NULL;
    snprintf(stats, sizeof stats, "%s", meta(c, "stats"));
    int misses = 0;
    for (char *s = strtok_r(stats, " ", &save); s; s = strtok_r(NULL, " ", &save)) {
        double want[MAX_VALUES];
        int m = parse_numbers(meta(c, s), want, MAX_VALUES);
        double g = stat_gap(r, s, want, m), tol = tolerance_of(s);
        misses += !(g <= tol);
        if (shift == 0)
            printf("   %s %s: %d values, largest difference %.2g (bound %g)%s\n",
                   c, s, m, g, tol, g <= tol ? "" : " MISSED");
    }
    bd_metric_result_free(r);
    bd_tensor_free(x);
    bd_tensor_free(labels);
    return misses;
}

static void test_load(void)
{
    CHECK_OK(bd_safetensors_load(REFERENCE, &ref));
    if (!ref)
        exit(harness_summary());
    printf("   %s: numpy %s, scipy %s, scikit-learn %s, gudhi %s\n", REFERENCE,
           meta("", "numpy"), meta("", "scipy"), meta("", "sklearn"),
           meta("", "gudhi"));
}

/* Calls fn on every case of the fixture. */
static void each_case(void (*fn)(const char *c))
{
    char cases[1024], *save = NULL;
    snprintf(cases, sizeof cases, "%s", meta("", "cases"));
    for (char *c = strtok_r(cases, " ", &save); c; c = strtok_r(NULL, " ", &save))
        fn(c);
}

static void matches(const char *c)
{
    CHECK(compare_case(c, 0) == 0, "%s agrees with the library", c);
}

static void fails_when_moved(const char *c)
{
    int misses = compare_case(c, 0.1f);
    printf("   %s, sample 0 moved by 0.1: %d statistics differ\n", c, misses);
    CHECK(misses > 0, "%s with sample 0 moved by 0.1: %d statistics differ", c,
          misses);
}

static void test_matches_libraries(void) { each_case(matches); }
static void test_detects_a_moved_sample(void) { each_case(fails_when_moved); }

int main(void)
{
    RUN(test_load);
    RUN(test_matches_libraries);
    RUN(test_detects_a_moved_sample);
    bd_ckpt_free(ref);
    bd_plugins_unload_all();
    return harness_summary();
}
