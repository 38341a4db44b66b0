/* Metric "bump": detection on images with 0 to 3 bumps at centres known to
 * 0.1 px, connectivity, min_size and threshold, the classes and aggregates
 * through the plugin (regions included), a whole dataset, and every config
 * error. */
#include "bd/data.h"
#include "bd/registry.h"
#include "detect.h"
#include "harness.h"
#include "test_metric_util.h"

#define S 32

/* Pixels 2 v - 1 of the brightest of n bumps (sigma 1) at (cx[k], cy[k]),
 * pixel centres at (j + 0.5, i + 0.5) as in bd/data.h. */
static void draw(float *img, int n, const double *cx, const double *cy)
{
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) {
            double v = 0;
            for (int k = 0; k < n; k++) {
                double dx = j + 0.5 - cx[k], dy = i + 0.5 - cy[k];
                v = fmax(v, exp(-(dx * dx + dy * dy) / 2));
            }
            img[i * S + j] = (float)(2 * v - 1);
        }
}

static const bump_params defaults = {.threshold = 0, .connectivity = 8,
                                     .min_size = 1, .window = 2};

static int32_t label[S * S], stack[S * S];
static bump_work work = {label, stack};

static void test_counts_and_centres(void)
{
    const double cx[3] = {10.3, 24.5, 6.8}, cy[3] = {20.7, 8.1, 5.2};
    float img[S * S];
    for (int n = 0; n <= 3; n++) {
        draw(img, n, cx, cy);
        bump_found f = bump_detect(img, S, S, &defaults, &work);
        CHECK(f.count == n, "%d bumps drawn, %d found", n, f.count);
        if (n == 0)
            CHECK(isnan(f.cx) && isnan(f.cy), "no bump, yet a centre");
    }
    draw(img, 1, cx, cy);
    bump_found f = bump_detect(img, S, S, &defaults, &work);
    printf("   one bump at (10.3, 20.7): centre (%.4f, %.4f)\n", f.cx, f.cy);
    CHECK(fabs(f.cx - 10.3) < 0.02 && fabs(f.cy - 20.7) < 0.02,
          "centre (%.3f, %.3f), expected (10.3, 20.7)", f.cx, f.cy);

    /* centres on a 0.1 px lattice over the image */
    double worst = 0, worst0 = 0;
    bump_params no_window = defaults;
    no_window.window = 0;
    for (int k = 0; k < 60; k++) {
        double x = 4 + 0.1 * ((k * 37) % 240), y = 4 + 0.1 * ((k * 53) % 240);
        draw(img, 1, &x, &y);
        f = bump_detect(img, S, S, &defaults, &work);
        worst = fmax(worst, fmax(fabs(f.cx - x), fabs(f.cy - y)));
        f = bump_detect(img, S, S, &no_window, &work);
        worst0 = fmax(worst0, fmax(fabs(f.cx - x), fabs(f.cy - y)));
    }
    printf("   60 centres: worst error %.4f px (window 2), %.4f px (window 0)\n",
           worst, worst0);
    CHECK(worst < 0.02, "worst centroid error %.4f px with window 2", worst);
    CHECK(worst0 > worst && worst0 < 0.35, "worst centroid error %.4f px with"
          " window 0", worst0);
}

static void test_components(void)
{
    float img[S * S];
    for (int k = 0; k < S * S; k++)
        img[k] = -1;
    img[5 * S + 5] = img[6 * S + 6] = 1;  /* touching diagonally */
    bump_params p = defaults;
    CHECK(bump_detect(img, S, S, &p, &work).count == 1, "8-connected: one");
    p.connectivity = 4;
    CHECK(bump_detect(img, S, S, &p, &work).count == 2, "4-connected: two");
    img[20 * S + 3] = 1;  /* a speckle */
    p.connectivity = 8;
    CHECK(bump_detect(img, S, S, &p, &work).count == 2, "speckle counts");
    p.min_size = 2;
    CHECK(bump_detect(img, S, S, &p, &work).count == 1, "min_size drops it");

    /* a faint bump: peak value -0.6 */
    const double x = 16.5, y = 16.5;
    draw(img, 1, &x, &y);
    for (int k = 0; k < S * S; k++)
        img[k] = -1 + 0.2f * (img[k] + 1);
    p = defaults;
    CHECK(bump_detect(img, S, S, &p, &work).count == 0, "faint: none at 0");
    p.threshold = -0.8;
    bump_found f = bump_detect(img, S, S, &p, &work);
    CHECK(f.count == 1 && fabs(f.cx - x) < 0.02 && fabs(f.cy - y) < 0.02,
          "faint at threshold -0.8: %d at (%.3f, %.3f)", f.count, f.cx, f.cy);
}

/* ---- through the plugin ---------------------------------------------------- */

/* Create "bump" from cfg (consumed), measure, and return the result. */
static bd_metric_result *measure(bd_config *cfg, bd_tensor *images,
                                 bd_tensor *labels)
{
    return measure_with("bump", cfg, images, labels);
}

/* Eight images: none, several, wrong in x (1.5 px), wrong in y, and four
 * correct (one 0.9 px off in x), with labels at x = 3 * i + 5, y = 16. */
static void make_batch(bd_tensor **images, bd_tensor **labels)
{
    *images = bd_tensor_new4(8, 1, S, S, false);
    *labels = bd_tensor_new4(8, 2, 0, 0, false);
    for (int i = 0; i < 8; i++) {
        double lx = 3 * i + 5, ly = 16;
        double cx[2] = {lx, lx + 12}, cy[2] = {ly, ly};
        int n = i == 0 ? 0 : i == 1 ? 2 : 1;
        if (i == 2)
            cx[0] += 1.5;
        if (i == 3)
            cy[0] -= 1.5;
        if (i == 4)
            cx[0] += 0.9;
        draw((*images)->data + i * S * S, n, cx, cy);
        (*labels)->data[2 * i] = (float)lx;
        (*labels)->data[2 * i + 1] = (float)ly;
    }
}

static void test_plugin_classes(void)
{
    bd_tensor *images, *labels;
    make_batch(&images, &labels);
    bd_metric_result *r = measure(bd_config_new(), images, labels);
    CHECK(number(r, "n") == 8, "n");
    CHECK(number(r, "accuracy") == 4 / 8.0, "accuracy %g", number(r, "accuracy"));
    CHECK(number(r, "frac_correct") == 4 / 8.0, "frac_correct");
    CHECK(number(r, "frac_none") == 1 / 8.0, "frac_none");
    CHECK(number(r, "frac_multi") == 1 / 8.0, "frac_multi");
    CHECK(number(r, "frac_wrong") == 2 / 8.0, "frac_wrong");
    CHECK(number(r, "acc_x") == 5 / 8.0, "acc_x %g", number(r, "acc_x"));
    CHECK(number(r, "acc_y") == 5 / 8.0, "acc_y %g", number(r, "acc_y"));
    double mean = (1.5 + 1.5 + 0.9) / 6;  /* six one-bump images */
    CHECK(fabs(number(r, "mean_error") - mean) < 0.01, "mean_error %g, expected"
          " %g", number(r, "mean_error"), mean);
    CHECK(fabs(number(r, "median_error") - 0.45) < 0.01, "median_error %g,"
          " expected 0.45", number(r, "median_error"));
    const bd_tensor *cls = array(r, "class"), *count = array(r, "count");
    const bd_tensor *centre = array(r, "centre");
    const float want[8] = {0, 1, 2, 2, 3, 3, 3, 3};
    for (int i = 0; cls && count && i < 8; i++) {
        CHECK(cls->data[i] == want[i], "image %d: class %g, expected %g", i,
              cls->data[i], want[i]);
        CHECK(count->data[i] == (i == 0 ? 0 : i == 1 ? 2 : 1), "count %d", i);
    }
    CHECK(centre && centre->ndim == 2 && centre->shape[1] == 2
          && isnan(centre->data[0]) && fabs(centre->data[2 * 5] - 20) < 0.02,
          "centres");
    bd_metric_result_free(r);

    /* a rect region: labels x in [0, 12] are images 0..2 */
    bd_config *cfg = bd_config_new();
    bd_config_set_str(cfg, "region", "rect");
    bd_config_set_num(cfg, "region_x0", 0);
    bd_config_set_num(cfg, "region_x1", 12);
    bd_config_set_num(cfg, "region_y0", 0);
    bd_config_set_num(cfg, "region_y1", 32);
    r = measure(cfg, images, labels);
    CHECK(number(r, "n") == 3 && number(r, "frac_none") == 1 / 3.0
          && number(r, "accuracy") == 0, "inside the rect");
    bd_metric_result_free(r);
    cfg = bd_config_new();
    bd_config_set_str(cfg, "region", "xband");
    bd_config_set_num(cfg, "region_x0", 0);
    bd_config_set_num(cfg, "region_x1", 12);
    bd_config_set_num(cfg, "inside", 0);
    r = measure(cfg, images, labels);
    CHECK(number(r, "n") == 5 && number(r, "accuracy") == 4 / 5.0,
          "outside the band: n %g, accuracy %g", number(r, "n"),
          number(r, "accuracy"));
    bd_metric_result_free(r);

    /* tolerance 2 makes the 1.5 px misses correct */
    cfg = bd_config_new();
    bd_config_set_num(cfg, "tolerance", 2);
    r = measure(cfg, images, labels);
    CHECK(number(r, "accuracy") == 6 / 8.0, "tolerance 2");
    bd_metric_result_free(r);
    bd_tensor_free(images);
    bd_tensor_free(labels);
}

/* Each axis on its own among one-bump images, with the training lattice x
 * in 0, 2, 4, .. and y in 0, 1, 2, ..: six images, one with none and one
 * with two bumps; asked / drawn:
 *   (9, 16.5) / (9, 16.5)        exact
 *   (9, 16.5) / (10, 16.5)       x 1 px off, onto the lattice value 10: snapped
 *   (9, 16.5) / (9.3, 16.9)      x 0.3 off; y 0.4 off, 0.1 from 17: snapped
 *   (20.5, 8.25) / (20.5, 8.25)  exact */
static void test_axes(void)
{
    const double ask[6][2] = {{9, 16.5}, {9, 16.5}, {9, 16.5}, {9, 16.5},
                              {9, 16.5}, {20.5, 8.25}};
    const double got[6][2] = {{0, 0}, {9, 16.5}, {10, 16.5}, {9.3, 16.9},
                              {9, 16.5}, {20.5, 8.25}};
    bd_tensor *images = bd_tensor_new4(6, 1, S, S, false);
    bd_tensor *labels = bd_tensor_new4(6, 2, 0, 0, false);
    for (int i = 0; i < 6; i++) {
        double cx[2] = {got[i][0], 25}, cy[2] = {got[i][1], 25};
        draw(images->data + i * S * S, i == 0 ? 0 : i == 4 ? 2 : 1, cx, cy);
        labels->data[2 * i] = (float)ask[i][0];
        labels->data[2 * i + 1] = (float)ask[i][1];
    }
    bd_config *cfg = bd_config_new();
    bd_config_set_num(cfg, "lattice_dx", 2);
    bd_config_set_num(cfg, "lattice_dy", 1);
    bd_metric_result *r = measure(cfg, images, labels);
    const struct { const char *key; double want; } known[] = {
        {"frac_single", 4 / 6.0}, {"place_x", 3 / 4.0}, {"place_y", 1},
        {"snap_x", 1 / 4.0},      {"snap_y", 1 / 4.0},  {"err_x", 0.15},
        {"err_y", 0},             {"mean_err_x", 0.325}, {"mean_err_y", 0.1},
        {"acc_y", 4 / 6.0}};
    for (size_t k = 0; k < sizeof known / sizeof *known; k++)
        CHECK(fabs(number(r, known[k].key) - known[k].want) < 0.02,
              "%s = %g, expected %g", known[k].key, number(r, known[k].key),
              known[k].want);
    bd_metric_result_free(r);

    /* no lattice: nothing can snap; a wider axis tolerance takes the 1 px miss */
    cfg = bd_config_new();
    bd_config_set_num(cfg, "axis_tolerance", 1.2);
    r = measure(cfg, images, labels);
    CHECK(isnan(number(r, "snap_x")) && isnan(number(r, "snap_y")),
          "no lattice: snap NaN");
    CHECK(number(r, "place_x") == 1, "axis_tolerance 1.2: place_x %g",
          number(r, "place_x"));
    bd_metric_result_free(r);

    /* a shifted lattice 0.5, 2.5, ..: 10 is 0.5 from 10.5 and 1 from the
     * asked 9, still snapped; 9.3 is 0.8 from 8.5, not */
    cfg = bd_config_new();
    bd_config_set_num(cfg, "lattice_dx", 2);
    bd_config_set_num(cfg, "lattice_x0", 0.5);
    r = measure(cfg, images, labels);
    CHECK(fabs(number(r, "snap_x") - 1 / 4.0) < 1e-9, "shifted lattice: snap_x"
          " %g", number(r, "snap_x"));
    bd_metric_result_free(r);
    bd_tensor_free(images);
    bd_tensor_free(labels);
}

/* x and y are handled alike: transposing every image and swapping every
 * label swaps each per-axis number exactly (bumps at 0.1 px positions). */
static void test_transpose(void)
{
    enum { N = 12 };
    bd_tensor *images[2] = {bd_tensor_new4(N, 1, S, S, false),
                            bd_tensor_new4(N, 1, S, S, false)};
    bd_tensor *labels[2] = {bd_tensor_new4(N, 2, 0, 0, false),
                            bd_tensor_new4(N, 2, 0, 0, false)};
    for (int k = 0; k < N; k++) {
        double x = 4 + 0.1 * ((k * 37) % 240), y = 4 + 0.1 * ((k * 53) % 240);
        double cx[2] = {x, 30 - x}, cy[2] = {y, 2};  /* a second bump in image 3 */
        double off = 0.1 * (k % 7);  /* asked a little off the drawn place */
        draw(images[0]->data + k * S * S, 1 + (k == 3), cx, cy);
        for (int i = 0; i < S; i++)
            for (int j = 0; j < S; j++)
                images[1]->data[k * S * S + j * S + i] = images[0]->data[k * S * S + i * S + j];
        labels[0]->data[2 * k] = labels[1]->data[2 * k + 1] = (float)(x + off);
        labels[0]->data[2 * k + 1] = labels[1]->data[2 * k] = (float)(y - off / 2);
    }
    bd_metric_result *r[2];
    for (int t = 0; t < 2; t++) {
        bd_config *cfg = bd_config_new();
        bd_config_set_num(cfg, "lattice_dx", 0.5);
        bd_config_set_num(cfg, "lattice_dy", 0.5);
        bd_config_set_num(cfg, "axis_tolerance", 0.3);
        r[t] = measure(cfg, images[t], labels[t]);
    }
    static const char *const pairs[][2] = {
        {"place_x", "place_y"}, {"err_x", "err_y"}, {"mean_err_x", "mean_err_y"},
        {"snap_x", "snap_y"},   {"acc_x", "acc_y"}};
    for (size_t p = 0; p < sizeof pairs / sizeof *pairs; p++)
        for (int a = 0; a < 2; a++)
            CHECK(fabs(number(r[0], pairs[p][a]) - number(r[1], pairs[p][1 - a])) < 1e-6,
                  "transposed: %s %g, %s %g", pairs[p][a], number(r[0], pairs[p][a]),
                  pairs[p][1 - a], number(r[1], pairs[p][1 - a]));
    CHECK(number(r[0], "frac_single") == number(r[1], "frac_single"), "frac_single");
    for (int t = 0; t < 2; t++) {
        bd_metric_result_free(r[t]);
        bd_tensor_free(images[t]);
        bd_tensor_free(labels[t]);
    }
}

/* Three identical channels measure as one. */
static void test_channels(void)
{
    bd_tensor *images = bd_tensor_new4(1, 3, S, S, false);
    bd_tensor *labels = bd_tensor_new4(1, 2, 0, 0, false);
    double x = 7.4, y = 25.1;
    for (int c = 0; c < 3; c++)
        draw(images->data + c * S * S, 1, &x, &y);
    labels->data[0] = 7.4f;
    labels->data[1] = 25.1f;
    bd_metric_result *r = measure(bd_config_new(), images, labels);
    CHECK(number(r, "accuracy") == 1 && number(r, "mean_error") < 0.02,
          "3 channels: accuracy %g, error %g", number(r, "accuracy"),
          number(r, "mean_error"));
    bd_metric_result_free(r);
    bd_tensor_free(images);
    bd_tensor_free(labels);
}

/* Every image of a bump dataset is a correct single bump. */
static void test_dataset(void)
{
    bd_data_spec spec = bd_data_defaults();
    bd_dataset *d = NULL;
    CHECK_OK(bd_dataset_new(&spec, &d));
    if (!d)
        return;
    bd_metric_result *r = measure(bd_config_new(), d->train.images,
                                  d->train.labels);
    printf("   dataset of %lld bumps: accuracy %.4f, mean error %.4f px,"
           " median %.4f px\n", (long long)d->train.n, number(r, "accuracy"),
           number(r, "mean_error"), number(r, "median_error"));
    CHECK(number(r, "accuracy") == 1, "dataset accuracy %g",
          number(r, "accuracy"));
    bd_metric_result_free(r);
    bd_config *cfg = bd_config_new();  /* away from the edges */
    bd_config_set_str(cfg, "region", "rect");
    bd_config_set_num(cfg, "region_x0", 3);
    bd_config_set_num(cfg, "region_x1", 29);
    bd_config_set_num(cfg, "region_y0", 3);
    bd_config_set_num(cfg, "region_y1", 29);
    r = measure(cfg, d->train.images, d->train.labels);
    CHECK(number(r, "n") == 27 * 27 && number(r, "mean_error") < 0.01,
          "interior: n %g, mean error %g", number(r, "n"),
          number(r, "mean_error"));
    bd_metric_result_free(r);
    bd_dataset_free(d);
}

/* A torus (bd.data's periodic): bumps centred near an edge or a corner
 * wrap around; with periodic = 1 each is one bump found within 0.02 px the
 * short way round, on every image of a periodic dataset; read as a plane,
 * the corner bumps split. */
static void test_periodic(void)
{
    bd_data_spec spec = bd_data_defaults();
    spec.periodic = true;
    spec.dx = spec.dy = 0.7;
    bd_dataset *d = NULL;
    CHECK_OK(bd_dataset_new(&spec, &d));
    if (!d)
        return;
    bd_config *cfg = bd_config_new();
    bd_config_set_num(cfg, "periodic", 1);
    bd_metric_result *r = measure(cfg, d->train.images, d->train.labels);
    printf("   periodic dataset of %lld bumps: accuracy %.4f, worst axis error"
           " below %.4f px\n", (long long)d->train.n, number(r, "accuracy"),
           fmax(number(r, "mean_err_x"), number(r, "mean_err_y")));
    CHECK(number(r, "accuracy") == 1 && number(r, "frac_multi") == 0
          && number(r, "mean_error") < 0.01, "torus: accuracy %g, several %g,"
          " mean error %g", number(r, "accuracy"), number(r, "frac_multi"),
          number(r, "mean_error"));
    const bd_tensor *centre = array(r, "centre");
    int64_t corner = 0;  /* the label (0, 0): centred on the corner */
    CHECK(centre && fabs(centre->data[2 * corner]) < 0.02
          && fabs(centre->data[2 * corner + 1]) < 0.02,
          "the corner bump's centre is near (0, 0) the short way round");
    bd_metric_result_free(r);
    r = measure(bd_config_new(), d->train.images, d->train.labels);
    CHECK(number(r, "frac_multi") > 0, "as a plane, edge bumps split");
    bd_metric_result_free(r);
    bd_dataset_free(d);

    /* a bump on the corner, detected directly: one, centre in [0, S) */
    float img[S * S];
    bump_params torus = defaults;
    torus.periodic = 1;
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) {
            double dx = remainder(j + 0.5 - 31.8, S), dy = remainder(i + 0.5 - 0.3, S);
            img[i * S + j] = (float)(2 * exp(-(dx * dx + dy * dy) / 2) - 1);
        }
    bump_found f = bump_detect(img, S, S, &torus, &work);
    CHECK(f.count == 1 && fabs(f.cx - 31.8) < 0.02 && fabs(f.cy - 0.3) < 0.02,
          "corner bump on a torus: %d found, centre (%.3f, %.3f)", f.count,
          f.cx, f.cy);
    f = bump_detect(img, S, S, &defaults, &work);
    CHECK(f.count == 4, "corner bump on a plane: %d parts, expected 4", f.count);
}

/* bd_metric_create with one key set; must fail with `needle`. */
static void check_config_error(const char *key, const char *str, double num,
                               const char *extra_key, double extra,
                               const char *needle)
{
    bd_config *cfg = bd_config_new();
    if (str)
        bd_config_set_str(cfg, key, str);
    else
        bd_config_set_num(cfg, key, num);
    if (extra_key)
        bd_config_set_num(cfg, extra_key, extra);
    bd_metric *m = NULL;
    CHECK_FAILS(bd_metric_create("bump", cfg, &m), BD_E_ARG, needle);
    bd_metric_free(m);
    bd_config_free(cfg);
}

static void test_errors(void)
{
    check_config_error("connectivity", NULL, 6, NULL, 0,
                       "bump: connectivity = 6, expected 4 or 8");
    check_config_error("connectivity", NULL, 9, NULL, 0,
                       "connectivity = 9, expected an integer in [4, 8]");
    check_config_error("threshold", NULL, 2, NULL, 0,
                       "threshold = 2, expected a number in [-1, 1]");
    check_config_error("min_size", NULL, 0, NULL, 0, "min_size = 0");
    check_config_error("window", NULL, 17, NULL, 0, "window = 17");
    check_config_error("periodic", NULL, 2, NULL, 0,
                       "periodic = 2, expected an integer in [0, 1]");
    check_config_error("tolerance", NULL, -1, NULL, 0, "tolerance = -1");
    check_config_error("region", "square", 0, NULL, 0,
                       "region = 'square', expected one of: all, rect, cross");
    check_config_error("region", "rect", 0, NULL, 0,
                       "bump: region = rect needs finite region_x0 and region_x1");
    check_config_error("region", "yband", 0, "region_y0", 3,
                       "region = yband needs finite region_y0 and region_y1");
    check_config_error("region", "xband", 0, "inside", 2, "inside = 2");
    check_config_error("axis_tolerance", NULL, -0.5, NULL, 0,
                       "axis_tolerance = -0.5");
    check_config_error("lattice_dx", NULL, -1, NULL, 0, "lattice_dx = -1");
    check_config_error("tolerence", NULL, 1, NULL, 0, "unknown key 'tolerence'");
    check_config_error("region_x0", NULL, 1, NULL, 0, "unknown key 'region_x0'");

    bd_config *cfg = bd_config_new();
    bd_config_set_str(cfg, "region", "xband");
    bd_config_set_num(cfg, "region_x0", 5);
    bd_config_set_num(cfg, "region_x1", 4);
    bd_metric *m = NULL;
    CHECK_FAILS(bd_metric_create("bump", cfg, &m), BD_E_ARG,
                "region = xband needs region_x0 <= region_x1, got 5 and 4");
    bd_config_free(cfg);

    CHECK_OK(bd_metric_create("bump", NULL, &m));
    bd_tensor *images = bd_tensor_new4(2, 1, 8, 8, false);
    bd_tensor *labels = bd_tensor_new4(3, 2, 0, 0, false);
    CHECK_FAILS(bd_metric_update(m, images, labels, NULL), BD_E_ARG,
                "labels have shape (3, 2), expected (2, 2)");
    bd_metric_result *r = bd_metric_result_new();  /* nothing measured */
    CHECK_OK(bd_metric_compute(m, r));
    CHECK(number(r, "n") == 0 && isnan(number(r, "accuracy"))
          && isnan(number(r, "place_x")) && isnan(number(r, "err_y")),
          "an empty metric reports n = 0 and NaN");
    bd_metric_result_free(r);
    bd_metric_free(m);
    bd_tensor_free(images);
    bd_tensor_free(labels);
}

int main(void)
{
    RUN(test_counts_and_centres);
    RUN(test_components);
    RUN(test_plugin_classes);
    RUN(test_axes);
    RUN(test_transpose);
    RUN(test_channels);
    RUN(test_dataset);
    RUN(test_periodic);
    RUN(test_errors);
    bd_plugins_unload_all();
    return harness_summary();
}
