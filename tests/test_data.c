/* Datasets: lattice counts, pixel values and centres, torus wrap, crops,
 * held-out splits, the kept fraction, determinism, and every config error. */
#include "bd/data.h"
#include "harness.h"

/* A config from "key=value key=value ..." (numbers where they parse). */
static bd_config *config_of(const char *text)
{
    bd_config *c = bd_config_new();
    char buf[512];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
        char *eq = strchr(tok, '=');
        *eq = '\0';
        char *end;
        double v = strtod(eq + 1, &end);
        if (*end == '\0')
            bd_config_set_num(c, tok, v);
        else
            bd_config_set_str(c, tok, eq + 1);
    }
    return c;
}

static bd_status make(const char *text, bd_dataset **out)
{
    bd_config *c = config_of(text);
    bd_data_spec spec;
    bd_status st = bd_data_read(c, &spec);
    bd_config_free(c);
    return st == BD_OK ? bd_dataset_new(&spec, out) : st;
}

static bd_dataset *must_make(const char *text)
{
    bd_dataset *d = NULL;
    CHECK_OK(make(text, &d));
    if (!d) {
        printf("cannot make '%s': %s\n", text, bd_last_error());
        exit(2);
    }
    return d;
}

static float pixel(const bd_split *s, int64_t k, int64_t i, int64_t j)
{
    const int64_t n = s->images->shape[2];
    return s->images->data[(k * n + i) * n + j];
}

static void check_counts(const char *text, int64_t want)
{
    bd_dataset *d = must_make(text);
    CHECK(d->train.n == want && d->train.images->shape[0] == want
          && d->train.labels->shape[0] == want && d->held.n == 0,
          "%s: %lld images, expected %lld", text, (long long)d->train.n,
          (long long)want);
    bd_dataset_free(d);
}

static void test_counts(void)
{
    check_counts("size=32", 33 * 33);
    check_counts("size=16 dx=0.5 dy=2", 33 * 9);
    check_counts("size=16 dx=0.1 dy=4", 161 * 5);
    check_counts("size=16 dx=3", 6 * 17);         /* 0, 3, ..., 15 */
    check_counts("size=16 periodic=1", 16 * 16);  /* 16 is 0 on a torus */
    check_counts("size=16 periodic=1 dx=0.3", 54 * 16);
    check_counts("size=16 kind=stripes", 17 + 17);
    check_counts("size=16 kind=stripes orient=vertical dx=0.5", 33);
    check_counts("size=16 kind=stripes orient=horizontal", 17);
    check_counts("size=16 kind=stripe_sum dx=2 dy=4", 9 * 5);
    check_counts("size=16 canvas=24 dx=2 dy=2", 13 * 13);
}

/* Every pixel against exp(-r^2 / (denom sigma^2)) at pixel centres. */
static void check_pixels(const char *text, double sigma, double denom,
                         bool invert)
{
    bd_dataset *d = must_make(text);
    const bd_split *s = &d->train;
    const int64_t n = s->images->shape[2];
    double err = 0.0;
    for (int64_t k = 0; k < s->n; k += 7) {
        double x = s->labels->data[2 * k], y = s->labels->data[2 * k + 1];
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) {
                double r2 = (j + 0.5 - x) * (j + 0.5 - x) + (i + 0.5 - y) * (i + 0.5 - y);
                double v = exp(-r2 / (denom * sigma * sigma));
                if (invert)
                    v = 1.0 - v;
                err = fmax(err, fabs(pixel(s, k, i, j) - (2.0 * v - 1.0)));
            }
    }
    CHECK(err < 1e-5, "%s: pixels off by %.2e", text, err);
    bd_dataset_free(d);
}

static void test_pixels(void)
{
    check_pixels("size=12 dx=0.7 dy=1.3", 1.0, 2.0, false);
    check_pixels("size=12 sigma=1.7 denom=4", 1.7, 4.0, false);
    check_pixels("size=12 invert=1 sigma=0.6", 0.6, 2.0, true);
}

/* The brightest pixel's centre is within half a pixel of the label. */
static void test_centres(void)
{
    bd_dataset *d = must_make("size=20 dx=0.25 dy=0.75 sigma=1.3");
    const bd_split *s = &d->train;
    double worst = 0.0;
    for (int64_t k = 0; k < s->n; k++) {
        int64_t bi = 0, bj = 0;
        for (int64_t i = 0; i < 20; i++)
            for (int64_t j = 0; j < 20; j++)
                if (pixel(s, k, i, j) > pixel(s, k, bi, bj)) {
                    bi = i;
                    bj = j;
                }
        worst = fmax(worst, fabs(bj + 0.5 - s->labels->data[2 * k]));
        worst = fmax(worst, fabs(bi + 0.5 - s->labels->data[2 * k + 1]));
    }
    printf("   brightest pixel to label: at most %.3f px\n", worst);
    CHECK(worst <= 0.5 + 1e-5, "brightest pixel %.3f px from its label", worst);
    /* lattice order: y outer, x inner, k * dx */
    CHECK(s->labels->data[0] == 0.0f && s->labels->data[2] == 0.25f
          && s->labels->data[2 * 81 + 1] == 0.75f, "labels in lattice order");
    bd_dataset_free(d);
}

/* On a torus a bump at x = 0.5 is as bright at column N-1 as at column 1. */
static void test_periodic(void)
{
    bd_dataset *flat = must_make("size=16 dx=0.5 dy=8");
    bd_dataset *torus = must_make("size=16 dx=0.5 dy=8 periodic=1");
    /* label (0.5, 8): image 1 of both (x = 0, 0.5, ...) */
    CHECK(torus->train.labels->data[2] == 0.5f
          && torus->train.labels->data[3] == 0.0f, "torus label order");
    const int64_t k = 1 + 32, kf = 1 + 33; /* (0.5, 8): rows of 32 and 33 */
    CHECK(torus->train.labels->data[2 * k] == 0.5f
          && torus->train.labels->data[2 * k + 1] == 8.0f
          && flat->train.labels->data[2 * kf] == 0.5f
          && flat->train.labels->data[2 * kf + 1] == 8.0f, "label (0.5, 8)");
    float t_left = pixel(&torus->train, k, 7, 1), t_right = pixel(&torus->train, k, 7, 15);
    float f_right = pixel(&flat->train, kf, 7, 15);
    printf("   torus: col 1 %.4f, col 15 %.4f; flat col 15 %.4f\n", t_left,
           t_right, f_right);
    CHECK(fabsf(t_left - t_right) < 1e-6, "torus wraps: %g vs %g", t_left, t_right);
    CHECK(f_right < -0.999f, "flat does not wrap: %g", f_right);
    /* a bump at the corner (0, 0) shows in all four corners */
    float c0 = pixel(&torus->train, 0, 0, 0), c1 = pixel(&torus->train, 0, 15, 15);
    CHECK(fabsf(c0 - c1) < 1e-6, "corner bump wraps: %g vs %g", c0, c1);
    bd_dataset_free(flat);
    bd_dataset_free(torus);
}

static void test_stripes(void)
{
    bd_dataset *d = must_make("size=8 kind=stripes dx=2 dy=4 null_label=-2");
    const bd_split *s = &d->train;
    CHECK(s->n == 5 + 3, "stripes: %lld", (long long)s->n);
    /* image 1: vertical at x = 2: constant down each column */
    CHECK(s->labels->data[2] == 2.0f && s->labels->data[3] == -2.0f,
          "vertical label (2, null)");
    CHECK(pixel(s, 1, 0, 1) == pixel(s, 1, 7, 1) && pixel(s, 1, 3, 1) > 0.5f,
          "vertical stripe constant along y");
    /* image 6: horizontal at y = 4 */
    CHECK(s->labels->data[12] == -2.0f && s->labels->data[13] == 4.0f,
          "horizontal label (null, 4)");
    CHECK(pixel(s, 6, 3, 0) == pixel(s, 6, 3, 7) && pixel(s, 6, 3, 0) > 0.5f,
          "horizontal stripe constant along x");
    bd_dataset_free(d);

    d = must_make("size=8 kind=stripe_sum dx=4 dy=4");
    /* (4, 4) at pixel centre (3.5, 3.5): v = (g + g) / 2, g = exp(-0.5^2 / 2) */
    const int64_t k = 1 * 3 + 1;
    double g = exp(-0.25 / 2.0);
    CHECK(fabs(pixel(&d->train, k, 3, 3) - (2.0 * g - 1.0)) < 1e-5,
          "stripe sum at the crossing %g", pixel(&d->train, k, 3, 3));
    /* along the vertical stripe, away from the crossing: v = (g + ~0) / 2 */
    CHECK(fabs(pixel(&d->train, k, 7, 3) - (g + exp(-12.25 / 2.0) - 1.0)) < 1e-5,
          "stripe sum off the crossing %g", pixel(&d->train, k, 7, 3));
    bd_dataset_free(d);
}

/* Stripes drawn on a 44 canvas and cropped to 32: some images show two
 * stripes, some one, some none; labels lie outside [0, 32] for those. */
static void test_crop(void)
{
    bd_dataset *d = must_make("size=32 canvas=44 kind=stripe_sum dx=2 dy=2");
    const bd_split *s = &d->train;
    int64_t counts[3] = {0, 0, 0};
    for (int64_t k = 0; k < s->n; k++) {
        double x = s->labels->data[2 * k], y = s->labels->data[2 * k + 1];
        bool sx = x > -3 && x < 35, sy = y > -3 && y < 35; /* within 3 sigma */
        bool vx = x >= 0 && x <= 32, vy = y >= 0 && y <= 32;
        float hi = -1.0f;
        for (int64_t p = 0; p < 32 * 32; p++)
            hi = fmaxf(hi, s->images->data[k * 1024 + p]);
        if (!sx && !sy)
            CHECK(hi < -0.99f, "(%g, %g): none should show, max %g", x, y, hi);
        if (vx || vy)
            CHECK(hi > -0.2f, "(%g, %g): a stripe should show, max %g", x, y, hi);
        counts[(vx ? 1 : 0) + (vy ? 1 : 0)]++;
    }
    printf("   crop 44 -> 32: %lld images with no stripe, %lld with one, %lld"
           " with two\n", (long long)counts[0], (long long)counts[1],
           (long long)counts[2]);
    CHECK(s->n == 23 * 23 && counts[0] == 6 * 6 && counts[2] == 17 * 17,
          "crop counts");
    CHECK(s->labels->data[0] == -6.0f, "labels in image coordinates: %g",
          s->labels->data[0]);
    bd_dataset_free(d);
}

/* Every held-out label is in the region, every training label outside it;
 * together they are the whole lattice. */
static void check_holdout(const char *text, int region)
{
    bd_dataset *d = must_make(text);
    bool ok = true;
    for (int split = 0; split < 2; split++) {
        const bd_split *s = split ? &d->held : &d->train;
        for (int64_t k = 0; k < s->n; k++) {
            double x = s->labels->data[2 * k], y = s->labels->data[2 * k + 1];
            bool in_x = x >= 13 && x <= 19, in_y = y >= 5 && y <= 9;
            bool in = region == 0 ? in_x && in_y : region == 1 ? in_x || in_y
                    : region == 2 ? in_x : in_y;
            ok = ok && in == (split == 1);
        }
    }
    printf("   %-60s train %4lld, held %4lld\n", text, (long long)d->train.n,
           (long long)d->held.n);
    CHECK(ok, "%s: a label on the wrong side", text);
    CHECK(d->train.n + d->held.n == 33 * 33 && d->held.n > 0,
          "%s: %lld + %lld images", text, (long long)d->train.n,
          (long long)d->held.n);
    bd_dataset_free(d);
}

static void test_holdout(void)
{
    check_holdout("holdout=rect holdout_x0=13 holdout_x1=19 holdout_y0=5 holdout_y1=9", 0);
    check_holdout("holdout=cross holdout_x0=13 holdout_x1=19 holdout_y0=5 holdout_y1=9", 1);
    check_holdout("holdout=xband holdout_x0=13 holdout_x1=19", 2);
    check_holdout("holdout=yband holdout_y0=5 holdout_y1=9", 3);
    bd_dataset *d = must_make("holdout=rect holdout_x0=13 holdout_x1=19"
                              " holdout_y0=5 holdout_y1=9");
    CHECK(d->held.n == 7 * 5, "rect holds out 7 x 5 sites: %lld",
          (long long)d->held.n);
    bd_dataset_free(d);
}

static bool same_data(const bd_dataset *a, const bd_dataset *b)
{
    return a->train.n == b->train.n
        && memcmp(a->train.images->data, b->train.images->data,
                  (size_t)a->train.images->numel * sizeof(float)) == 0
        && memcmp(a->train.labels->data, b->train.labels->data,
                  (size_t)a->train.labels->numel * sizeof(float)) == 0;
}

static void test_lambda(void)
{
    bd_dataset *full = must_make("size=32");
    bd_dataset *a = must_make("size=32 lambda=0.3 seed=7");
    bd_dataset *b = must_make("size=32 lambda=0.3 seed=7");
    bd_dataset *c = must_make("size=32 lambda=0.3 seed=8");
    CHECK(a->train.n == 327, "lambda 0.3 of 1089 keeps %lld, expected 327",
          (long long)a->train.n);
    CHECK(same_data(a, b), "same seed, same subset");
    CHECK(!same_data(a, c), "another seed, another subset");
    /* a subset of the lattice, in lattice order, images as in the full set */
    int64_t j = 0;
    bool subset = true;
    for (int64_t k = 0; k < a->train.n && subset; k++) {
        while (j < full->train.n
               && memcmp(full->train.labels->data + 2 * j,
                         a->train.labels->data + 2 * k, 2 * sizeof(float)) != 0)
            j++;
        subset = j < full->train.n
              && memcmp(full->train.images->data + j * 1024,
                        a->train.images->data + k * 1024, 1024 * sizeof(float)) == 0;
    }
    CHECK(subset, "kept images are lattice images in lattice order");
    bd_dataset *d = must_make("size=32 dy=0.5");
    bd_dataset *e = must_make("size=32 dy=0.5");
    CHECK(same_data(d, e), "deterministic");
    bd_dataset_free(full);
    bd_dataset_free(a);
    bd_dataset_free(b);
    bd_dataset_free(c);
    bd_dataset_free(d);
    bd_dataset_free(e);
}

/* Stripes plus a few bumps: rows of the first, then of the second. */
static void test_concat(void)
{
    bd_dataset *a = must_make("size=16 kind=stripes");
    bd_dataset *b = must_make("size=16 lambda=0.05 seed=2 holdout=xband"
                              " holdout_x0=4 holdout_x1=6");
    bd_dataset *c = NULL;
    CHECK_OK(bd_dataset_concat(a, b, &c));
    CHECK(c && c->train.n == a->train.n + b->train.n && c->held.n == b->held.n
          && c->train.images->shape[0] == c->train.n
          && c->held.labels->shape[0] == c->held.n, "concat counts");
    if (c) {
        const size_t img = 16 * 16 * sizeof(float);
        CHECK(memcmp(c->train.images->data, a->train.images->data, img) == 0
              && memcmp(c->train.images->data + a->train.n * 256,
                        b->train.images->data, img) == 0
              && c->train.labels->data[2 * a->train.n] == b->train.labels->data[0],
              "concat order");
    }
    bd_dataset *small = must_make("size=8");
    bd_dataset *e = NULL;
    CHECK_FAILS(bd_dataset_concat(a, small, &e), BD_E_ARG, "dataset concat:"
                " images of 16x16 and 8x8, expected the same size");
    bd_dataset_free(a);
    bd_dataset_free(b);
    bd_dataset_free(c);
    bd_dataset_free(small);
}

/* bd_data_draw gives each label the image the dataset holds for it (with
 * a crop, an inverted profile and denom 4 too); stripes have no (x, y). */
static void test_draw(void)
{
    const char *specs[] = {"size=8 dx=1.5 dy=2.5 sigma=1.3",
                           "size=8 canvas=12 dx=2 dy=3 invert=1 denom=4",
                           "size=8 kind=stripe_sum dx=2 dy=2"};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        bd_dataset *d = must_make(specs[k]);
        bd_tensor *img = NULL;
        CHECK_OK(bd_data_draw(&d->spec, d->train.labels, &img));
        CHECK(img && bd_shape_equal(img, d->train.images)
              && memcmp(img->data, d->train.images->data,
                        (size_t)img->numel * sizeof(float)) == 0,
              "%s: drawn images equal the dataset's", specs[k]);
        bd_tensor_free(img);
        bd_dataset_free(d);
    }
    bd_dataset *s = must_make("size=8 kind=stripes");
    bd_tensor *img = NULL, *flat = bd_tensor_new4(4, 0, 0, 0, false);
    CHECK_FAILS(bd_data_draw(&s->spec, s->train.labels, &img), BD_E_ARG,
                "data draw: a stripe has one coordinate, not an (x, y) label");
    s->spec.kind = BD_DATA_BUMPS;
    CHECK_FAILS(bd_data_draw(&s->spec, flat, &img), BD_E_ARG,
                "data draw: labels have shape (4), expected (N, 2)");
    s->spec.sigma = -1;
    CHECK_FAILS(bd_data_draw(&s->spec, s->train.labels, &img), BD_E_ARG,
                "sigma");
    CHECK(img == NULL, "nothing made on failure");
    bd_tensor_free(flat);
    bd_dataset_free(s);
}

static void test_grid(void)
{
    bd_tensor *g = NULL;
    CHECK_OK(bd_label_grid(1, 31, 2, &g));
    CHECK(g && g->shape[0] == 16 * 16 && g->shape[1] == 2, "grid 16 x 16");
    if (g)
        CHECK(g->data[0] == 1 && g->data[1] == 1 && g->data[2] == 3
              && g->data[2 * 16 + 1] == 3 && g->data[2 * 255] == 31,
              "grid values, y outer");
    bd_tensor_free(g);
    CHECK_FAILS(bd_label_grid(0, 32, 0, &g), BD_E_ARG,
                "label grid: step = 0, expected a finite number > 0");
    CHECK_FAILS(bd_label_grid(5, 1, 1, &g), BD_E_ARG,
                "label grid: range [5, 1], expected finite lo <= hi");
    CHECK_FAILS(bd_label_grid(0, 1e6, 1, &g), BD_E_ARG, "labels per side");
}

static void check_bad(const char *text, const char *needle)
{
    bd_dataset *d = NULL;
    CHECK_FAILS(make(text, &d), BD_E_ARG, needle);
    CHECK(d == NULL, "%s: no dataset on failure", text);
}

static void test_errors(void)
{
    check_bad("dx=0", "config: dx = 0, expected a number in [0.001, 8192]");
    check_bad("dy=-1", "config: dy = -1, expected a number in [0.001, 8192]");
    check_bad("sigma=0", "config: sigma = 0, expected a number in [0.001, 4096]");
    check_bad("size=-3", "config: size = -3, expected an integer in [2, 4096]");
    check_bad("size=32.5", "config: size = 32.5, expected an integer");
    check_bad("kind=blobs", "config: kind = 'blobs', expected one of: bumps,"
              " stripes, stripe_sum");
    check_bad("denom=3", "config: denom = 3, expected 2 or 4");
    check_bad("lambda=1.5", "config: lambda = 1.5, expected a number in [0, 1]");
    check_bad("lambda=0.0001", "dataset: lambda = 0.0001 keeps 0 of 1089"
              " training images; expected at least 1");
    check_bad("sgima=1", "config: unknown key 'sgima' for dataset");
    check_bad("orient=vertical", "unknown key 'orient' for dataset");
    check_bad("kind=stripes orient=diagonal", "config: orient = 'diagonal',"
              " expected one of: both, vertical, horizontal");
    check_bad("canvas=30", "dataset: canvas = 30, expected size (32) to 8192");
    check_bad("canvas=44 periodic=1", "dataset: periodic = 1 needs canvas ="
              " size (32), got canvas = 44");
    check_bad("holdout=square", "config: holdout = 'square', expected one of:"
              " none, rect, cross, xband, yband");
    check_bad("holdout=cross holdout_x0=13 holdout_x1=19", "dataset: holdout ="
              " cross needs holdout_y0 <= holdout_y1, got nan and nan");
    check_bad("holdout=xband holdout_x0=19 holdout_x1=13", "dataset: holdout ="
              " xband needs holdout_x0 <= holdout_x1, got 19 and 13");
    check_bad("holdout=xband holdout_x0=-5 holdout_x1=40", "dataset: the"
              " held-out region covers all 1089 images, leaving none for training");
    check_bad("holdout=xband holdout_x0=1 holdout_x1=2 holdout_y0=1",
              "unknown key 'holdout_y0' for dataset");
    check_bad("size=4096 dx=0.01", "more than 2^30 pixels; raise dx or dy");
    check_bad("kind=bumps periodic=2", "config: periodic = 2, expected an"
              " integer in [0, 1]");
    /* C callers filling the struct get the same checks */
    bd_data_spec s = bd_data_defaults();
    bd_dataset *d = NULL;
    s.dx = 0;
    CHECK_FAILS(bd_dataset_new(&s, &d), BD_E_ARG,
                "dataset: dx = 0, expected a number in (0, 32]");
    s = bd_data_defaults();
    s.sigma = NAN;
    CHECK_FAILS(bd_dataset_new(&s, &d), BD_E_ARG, "dataset: sigma = nan");
    s = bd_data_defaults();
    s.denom = 3;
    CHECK_FAILS(bd_dataset_new(&s, &d), BD_E_ARG, "dataset: denom = 3, expected"
                " 2 or 4");
    s = bd_data_defaults();
    s.size = 1;
    CHECK_FAILS(bd_dataset_new(&s, &d), BD_E_ARG, "dataset: size = 1, expected"
                " 2 to 4096");
    s = bd_data_defaults();
    s.kind = (bd_data_kind)9;
    CHECK_FAILS(bd_dataset_new(&s, &d), BD_E_ARG, "not a known value");
    s = bd_data_defaults();
    s.lambda = -0.5;
    CHECK_FAILS(bd_dataset_new(&s, &d), BD_E_ARG, "dataset: lambda = -0.5");
    s = bd_data_defaults();
    s.kind = BD_DATA_STRIPES;
    s.null_label = INFINITY;
    CHECK_FAILS(bd_dataset_new(&s, &d), BD_E_ARG, "dataset: null_label = inf");
}

int main(void)
{
    RUN(test_counts);
    RUN(test_pixels);
    RUN(test_centres);
    RUN(test_periodic);
    RUN(test_stripes);
    RUN(test_crop);
    RUN(test_holdout);
    RUN(test_lambda);
    RUN(test_concat);
    RUN(test_draw);
    RUN(test_grid);
    RUN(test_errors);
    return harness_summary();
}
