/* conv2d: naive double reference, finite-difference gradients, grads only
 * where needed, accumulation, argument errors; the algorithms (im2col;
 * Winograd F(2x2, 3x3) and F(4x4, 3x3) for 3x3 stride-1 kernels; direct, and
 * direct over channels on planes up to 8x8 (small), for stride-1 3x3 and
 * 1x1 kernels, forced through BD_CONV, in 8 lanes and in the CPU's widest,
 * BD_CONV_LANES), at 1 and 3 threads, and the default choice. */
#include <limits.h>

#include "bd/parallel.h"
#include "harness.h"

typedef struct conv_case {
    const char *name;
    int64_t n, c, h, w, o, kh, kw;
    int stride, pad;
    bool bias;
} conv_case;

static bd_status build_conv(bd_tape *tp, bd_tensor **in, void *ud, bd_tensor **y)
{
    const conv_case *cc = ud;
    return bd_conv2d(tp, in[0], in[1], in[2], cc->stride, cc->pad, y);
}

/* The seven loops of the definition, in double.   -> want: (N, O, OH, OW) */
static double *conv_reference(const conv_case *cc, bd_tensor *const *in,
                              int64_t oh_n, int64_t ow_n)
{
    const float *x = in[0]->data, *w = in[1]->data;
    double *want = malloc((size_t)(cc->n * cc->o * oh_n * ow_n) * sizeof *want);
    double *out = want;
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t o = 0; o < cc->o; o++)
            for (int64_t oh = 0; oh < oh_n; oh++)
                for (int64_t ow = 0; ow < ow_n; ow++) {
                    double acc = cc->bias ? in[2]->data[o] : 0.0;
                    for (int64_t c = 0; c < cc->c; c++)
                        for (int64_t i = 0; i < cc->kh; i++)
                            for (int64_t j = 0; j < cc->kw; j++) {
                                int64_t ih = oh * cc->stride - cc->pad + i;
                                int64_t iw = ow * cc->stride - cc->pad + j;
                                if (ih < 0 || ih >= cc->h || iw < 0 || iw >= cc->w)
                                    continue;
                                acc += (double)x[((n * cc->c + c) * cc->h + ih) * cc->w + iw]
                                       * w[((o * cc->c + c) * cc->kh + i) * cc->kw + j];
                            }
                    *out++ = acc;
                }
    return want;
}

/* The gradients of loss = sum of y r, r = harness_weight, by the same
 * loops in double.   -> dx: (N, C, H, W), dw: (O, C, KH, KW), db: (O) */
static void conv_reference_grads(const conv_case *cc, bd_tensor *const *in,
                                 int64_t oh_n, int64_t ow_n, double *dx,
                                 double *dw, double *db)
{
    const float *x = in[0]->data, *w = in[1]->data;
    memset(dx, 0, (size_t)in[0]->numel * sizeof *dx);
    memset(dw, 0, (size_t)in[1]->numel * sizeof *dw);
    memset(db, 0, (size_t)cc->o * sizeof *db);
    int64_t k = 0;
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t o = 0; o < cc->o; o++)
            for (int64_t oh = 0; oh < oh_n; oh++)
                for (int64_t ow = 0; ow < ow_n; ow++) {
                    const double r = harness_weight(k++);
                    db[o] += r;
                    for (int64_t c = 0; c < cc->c; c++)
                        for (int64_t i = 0; i < cc->kh; i++)
                            for (int64_t j = 0; j < cc->kw; j++) {
                                int64_t ih = oh * cc->stride - cc->pad + i;
                                int64_t iw = ow * cc->stride - cc->pad + j;
                                if (ih < 0 || ih >= cc->h || iw < 0 || iw >= cc->w)
                                    continue;
                                const int64_t xi = ((n * cc->c + c) * cc->h + ih) * cc->w + iw;
                                const int64_t wi = ((o * cc->c + c) * cc->kh + i) * cc->kw + j;
                                dx[xi] += r * w[wi];
                                dw[wi] += r * x[xi];
                            }
                }
}

/* Max |got - want| / max(1, max |want|) over n values, checked below tol. */
static void compare_grad(const char *name, const char *what, const float *got,
                         const double *want, int64_t n, double tol)
{
    double err = 0.0, scale = 1.0;
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(want[i]));
    for (int64_t i = 0; i < n; i++)
        err = fmax(err, fabs(got[i] - want[i]));
    err /= scale;
    printf("   %-40s %s vs reference: rel err %.2e\n", name, what, err);
    CHECK(err < tol, "%s: %s error %.3e >= %.1e", name, what, err, tol);
}

/* Backward of loss = sum of y r against conv_reference_grads. */
static void check_conv_grads(const conv_case *cc, bd_tensor **in, bd_tape *tp,
                             bd_tensor *y, int64_t oh, int64_t ow, double tol)
{
    bd_tensor *r = bd_tensor_new(y->ndim, y->shape, false), *ry = NULL, *loss = NULL;
    for (int64_t i = 0; i < r->numel; i++)
        r->data[i] = (float)harness_weight(i);
    CHECK_OK(bd_mul(tp, y, r, &ry));
    CHECK_OK(bd_sum(tp, ry, &loss));
    CHECK_OK(bd_tape_backward(tp, loss));
    double *dx = malloc((size_t)in[0]->numel * sizeof *dx);
    double *dw = malloc((size_t)in[1]->numel * sizeof *dw);
    double *db = malloc((size_t)cc->o * sizeof *db);
    conv_reference_grads(cc, in, oh, ow, dx, dw, db);
    compare_grad(cc->name, "dx", in[0]->grad, dx, in[0]->numel, tol);
    compare_grad(cc->name, "dw", in[1]->grad, dw, in[1]->numel, tol);
    if (cc->bias)
        compare_grad(cc->name, "db", in[2]->grad, db, cc->o, tol);
    for (int k = 0; k < 3; k++)
        if (in[k])
            bd_tensor_zero_grad(in[k]);
    free(dx);
    free(dw);
    free(db);
    bd_tensor_free(r);
}

/* x, w, b (b NULL without bias), each requiring grad as asked. */
static void make_inputs(const conv_case *cc, bool grad_x, bool grad_w,
                        bd_tensor **in)
{
    const int64_t xs[4] = {cc->n, cc->c, cc->h, cc->w};
    const int64_t ws[4] = {cc->o, cc->c, cc->kh, cc->kw}, bs[1] = {cc->o};
    in[0] = harness_tensor(4, xs, -1, 1, grad_x);
    in[1] = harness_tensor(4, ws, -1, 1, grad_w);
    in[2] = cc->bias ? harness_tensor(1, bs, -1, 1, grad_w) : NULL;
}

static void free_inputs(bd_tensor **in)
{
    for (int i = 0; i < 3; i++)
        bd_tensor_free(in[i]);
}

/* Forward and gradients against the reference within tol (relative to the
 * largest value), and the finite-difference check. */
/* Forward and gradients against the double reference (tolerance tol, of
 * the largest value); with max_probe > 0, also finite differences at up to
 * max_probe elements of each input. */
static void check_conv(const conv_case *cc, int64_t max_probe, double tol)
{
    bd_tensor *in[3];
    make_inputs(cc, true, true, in);
    const int64_t oh = (cc->h + 2 * cc->pad - cc->kh) / cc->stride + 1;
    const int64_t ow = (cc->w + 2 * cc->pad - cc->kw) / cc->stride + 1;
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(bd_conv2d(tp, in[0], in[1], in[2], cc->stride, cc->pad, &y));
    CHECK(y && y->ndim == 4 && y->shape[0] == cc->n && y->shape[1] == cc->o
          && y->shape[2] == oh && y->shape[3] == ow, "%s: output shape", cc->name);
    if (y) {
        double *want = conv_reference(cc, in, oh, ow);
        harness_compare(cc->name, y->data, want, y->numel, tol);
        free(want);
        check_conv_grads(cc, in, tp, y, oh, ow, tol);
    }
    bd_tape_free(tp);
    if (max_probe > 0)
        harness_gradcheck(cc->name, build_conv, in, 3, (void *)cc, 1e-2, 1e-2,
                          max_probe);
    free_inputs(in);
}

static const conv_case CASES[] = {
    {"conv 3x3 s1 p1 (1,3,5,7) -> 4", 1, 3, 5, 7, 4, 3, 3, 1, 1, true},
    {"conv 3x3 s2 p1 (2,3,7,9) -> 5", 2, 3, 7, 9, 5, 3, 3, 2, 1, true},
    {"conv 1x1 s1 p0 (2,6,5,7) -> 4", 2, 6, 5, 7, 4, 1, 1, 1, 0, true},
    {"conv 4x2 s1 p0 (1,3,5,7) -> 2 no bias", 1, 3, 5, 7, 2, 4, 2, 1, 0, false},
    {"conv 1x1 s2 p1 (1,2,5,6) -> 3", 1, 2, 5, 6, 3, 1, 1, 2, 1, true},
    {"conv 3x2 s3 p3 (1,2,4,5) -> 3", 1, 2, 4, 5, 3, 3, 2, 3, 3, true},
    {"conv 3x3 s=INT_MAX p2 (1,2,4,5) -> 2", 1, 2, 4, 5, 2, 3, 3, INT_MAX, 2, true},
    {"conv 3x3 s1 p1 (2,16,16,16) -> 32", 2, 16, 16, 16, 32, 3, 3, 1, 1, true},
    {"conv 3x3 s1 p1 (1,5,5,7) -> 6", 1, 5, 5, 7, 6, 3, 3, 1, 1, true},
    {"conv 3x3 s1 p0 (3,4,7,6) -> 5", 3, 4, 7, 6, 5, 3, 3, 1, 0, true},
    {"conv 3x3 s1 p2 (2,6,4,5) -> 4 no bias", 2, 6, 4, 5, 4, 3, 3, 1, 2, false},
    {"conv 3x3 s1 p1 (5,8,3,3) -> 7", 5, 8, 3, 3, 7, 3, 3, 1, 1, true},
    {"conv 3x3 s1 p1 (3,64,8,8) -> 64 (UNet)", 3, 64, 8, 8, 64, 3, 3, 1, 1, true},
    {"conv 3x3 s1 p1 (4,8,16,16) -> 8 (small UNet)", 4, 8, 16, 16, 8, 3, 3, 1, 1, true},
    {"conv 3x3 s1 p1 (3,9,1,1) -> 17 (1x1 map)", 3, 9, 1, 1, 17, 3, 3, 1, 1, true},
    {"conv 3x3 s1 p1 (2,3,2,2) -> 9 no bias", 2, 3, 2, 2, 9, 3, 3, 1, 1, false},
    {"conv 3x3 s1 p0 (3,2,3,3) -> 1 (1x1 out)", 3, 2, 3, 3, 1, 3, 3, 1, 0, true},
    {"conv 3x3 s1 p1 (2,5,11,13) -> 3", 2, 5, 11, 13, 3, 3, 3, 1, 1, true},
    {"conv 1x1 s1 p0 (3,8,9,7) -> 1 (UNet head)", 3, 8, 9, 7, 1, 1, 1, 1, 0, true},
    {"conv 3x3 s1 p1 (3,32,4,4) -> 64 (4x4 UNet)", 3, 32, 4, 4, 64, 3, 3, 1, 1, true},
    {"conv 3x3 s1 p1 (9,64,2,2) -> 40 (2x2 UNet)", 9, 64, 2, 2, 40, 3, 3, 1, 1, false},
    {"conv 1x1 s1 p0 (4,24,4,4) -> 20", 4, 24, 4, 4, 20, 1, 1, 1, 0, true},
    {"conv 3x3 s1 p0 (2,20,4,3) -> 33", 2, 20, 4, 3, 33, 3, 3, 1, 0, true},
    {"conv 3x3 s1 p2 (17,5,2,3) -> 18", 17, 5, 2, 3, 18, 3, 3, 1, 2, true},
    {"conv 3x3 s1 p1 (2,17,10,9) -> 19", 2, 17, 10, 9, 19, 3, 3, 1, 1, true},
};

/* An algorithm BD_CONV forces (NULL: the default choice), the direct
 * path's vector width BD_CONV_LANES forces (NULL: the CPU's), and the
 * tolerance of its results against the double reference. */
typedef struct conv_algorithm {
    const char *conv, *lanes;
    double      tol;
} conv_algorithm;

/* fp32 sums of up to 9 C products, relative to the largest output. */
#define TOL 1e-5
/* F(4x4, 3x3) (and the default choice, which may pick it): its transforms
 * scale by up to 8 (A^T) and 1/24 (G), which cancel in exact arithmetic
 * but not in fp32. Measured at most 7.7e-6 on these cases (F(2x2) 4.8e-7,
 * im2col 5.9e-7); the check allows about 2.5 times that. */
#define TOL4 2e-5

static void force_env(const char *name, const char *value)
{
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
}

static void test_conv_configs(void)
{
    static const conv_algorithm algorithms[] = {
        {"im2col", NULL, TOL}, {"winograd", NULL, TOL}, {"winograd4", NULL, TOL4},
        {"direct", NULL, TOL}, {"direct", "8", TOL},    {"small", NULL, TOL},
        {"small", "8", TOL},   {NULL, NULL, TOL4},
    };
    const int start = bd_num_threads();
    for (size_t a = 0; a < sizeof algorithms / sizeof algorithms[0]; a++)
        for (int threads = 1; threads <= 3; threads += 2) {
            force_env("BD_CONV", algorithms[a].conv);
            force_env("BD_CONV_LANES", algorithms[a].lanes);
            bd_set_num_threads(threads);
            printf("   %s%s, %d thread%s\n",
                   algorithms[a].conv ? algorithms[a].conv : "the default choice",
                   algorithms[a].lanes ? " in 8 lanes" : "", threads,
                   threads > 1 ? "s" : "");
            /* Finite differences on one thread only: at 3 the gradients
             * meet the same double reference, which one thread has tied to
             * finite differences (they were most of this test's time under
             * the sanitizers). */
            for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
                check_conv(&CASES[i], threads == 1 ? 150 : 0, algorithms[a].tol);
        }
    unsetenv("BD_CONV");
    unsetenv("BD_CONV_LANES");
    bd_set_num_threads(start);
}

/* Only the inputs that require grad get one; the others stay untouched. */
static void test_partial_grads(void)
{
    const conv_case *cc = &CASES[1];
    for (int which = 0; which < 2; which++) {
        bd_tensor *in[3];
        make_inputs(cc, which == 0, which == 1, in);
        harness_gradcheck(which ? "conv s2 grad of w, b only" : "conv s2 grad of x only",
                          build_conv, in, 3, (void *)cc, 1e-2, 1e-2, 150);
        CHECK(which == 1 || (in[1]->grad == NULL && in[2]->grad == NULL),
              "w and b got grads they do not need");
        CHECK(which == 0 || in[0]->grad == NULL, "x got a grad it does not need");
        free_inputs(in);
    }
}

/* Backward adds to what the grads already hold. */
static void backward_once(const conv_case *cc, bd_tensor **in)
{
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL, *loss = NULL;
    CHECK_OK(bd_conv2d(tp, in[0], in[1], in[2], cc->stride, cc->pad, &y));
    CHECK_OK(bd_sum(tp, y, &loss));
    CHECK_OK(bd_tape_backward(tp, loss));
    bd_tape_free(tp);
}

static void check_accumulates(const conv_case *cc)
{
    bd_tensor *in[3];
    make_inputs(cc, true, true, in);
    backward_once(cc, in);
    float *first[3];
    for (int k = 0; k < 3; k++) {
        first[k] = malloc((size_t)in[k]->numel * sizeof(float));
        memcpy(first[k], in[k]->grad, (size_t)in[k]->numel * sizeof(float));
    }
    backward_once(cc, in);
    double err = 0.0;
    for (int k = 0; k < 3; k++) {
        for (int64_t i = 0; i < in[k]->numel; i++)
            err = fmax(err, fabs(in[k]->grad[i] - 2.0 * first[k][i])
                                / fmax(1.0, fabs(first[k][i])));
        free(first[k]);
    }
    printf("   %-40s twice = 2 x once: rel err %.2e\n", cc->name, err);
    CHECK(err < 1e-5, "%s: backward does not accumulate (%.3e)", cc->name, err);
    free_inputs(in);
}

static void test_accumulates(void)
{
    check_accumulates(&CASES[0]); /* im2col path */
    check_accumulates(&CASES[2]); /* pointwise */
    setenv("BD_CONV", "winograd", 1);
    check_accumulates(&CASES[9]);
    setenv("BD_CONV", "winograd4", 1);
    check_accumulates(&CASES[9]);
    setenv("BD_CONV", "direct", 1);
    check_accumulates(&CASES[9]);
    check_accumulates(&CASES[2]);
    setenv("BD_CONV", "small", 1);
    check_accumulates(&CASES[19]);
    check_accumulates(&CASES[21]);
    unsetenv("BD_CONV");
}

static void test_no_grad_records_nothing(void)
{
    bd_tensor *in[3];
    make_inputs(&CASES[0], true, true, in);
    bd_tape *tp = bd_tape_new();
    bd_tape_set_grad(tp, false);
    bd_tensor *y = NULL;
    CHECK_OK(bd_conv2d(tp, in[0], in[1], in[2], 1, 1, &y));
    CHECK(y && !(y->flags & BD_TENSOR_REQUIRES_GRAD), "no-grad output requires grad");
    bd_tape_free(tp);
    free_inputs(in);
}

static void test_argument_errors(void)
{
    bd_tensor *x = bd_tensor_new4(1, 3, 5, 7, false);
    bd_tensor *x3 = bd_tensor_new4(3, 5, 7, 0, false);
    bd_tensor *w = bd_tensor_new4(4, 3, 3, 3, false);
    bd_tensor *w3 = bd_tensor_new4(4, 3, 3, 0, false);
    bd_tensor *w_c2 = bd_tensor_new4(4, 2, 3, 3, false);
    bd_tensor *w_tall = bd_tensor_new4(4, 3, 7, 3, false);
    bd_tensor *b5 = bd_tensor_new4(5, 0, 0, 0, false);
    bd_tensor *b2d = bd_tensor_new4(4, 1, 0, 0, false);
    bd_tensor *one = bd_tensor_new4(1, 1, 1, 1, false);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_FAILS(bd_conv2d(tp, NULL, w, NULL, 1, 1, &y), BD_E_ARG, "conv2d: x is NULL");
    CHECK_FAILS(bd_conv2d(tp, x, NULL, NULL, 1, 1, &y), BD_E_ARG, "conv2d: w is NULL");
    CHECK_FAILS(bd_conv2d(tp, x3, w, NULL, 1, 1, &y), BD_E_ARG,
                "conv2d: x has shape (3, 5, 7), expected 4 dims");
    CHECK_FAILS(bd_conv2d(tp, x, w3, NULL, 1, 1, &y), BD_E_ARG,
                "conv2d: w has shape (4, 3, 3), expected 4 dims");
    CHECK_FAILS(bd_conv2d(tp, x, w_c2, NULL, 1, 1, &y), BD_E_ARG,
                "conv2d: w has shape (4, 2, 3, 3), expected 3 input channels"
                " (dim 1) to match x of shape (1, 3, 5, 7)");
    CHECK_FAILS(bd_conv2d(tp, x, w, b5, 1, 1, &y), BD_E_ARG,
                "conv2d: b has shape (5), expected dim 0 = 4");
    CHECK_FAILS(bd_conv2d(tp, x, w, b2d, 1, 1, &y), BD_E_ARG,
                "conv2d: b has shape (4, 1), expected 1 dims");
    CHECK_FAILS(bd_conv2d(tp, x, w, NULL, 0, 1, &y), BD_E_ARG,
                "conv2d: stride is 0, expected >= 1");
    CHECK_FAILS(bd_conv2d(tp, x, w, NULL, 1, -1, &y), BD_E_ARG,
                "conv2d: pad is -1, expected >= 0");
    CHECK_FAILS(bd_conv2d(tp, x, w_tall, NULL, 1, 0, &y), BD_E_ARG,
                "conv2d: kernel 7x3 is larger than the padded input 5x7"
                " (x (1, 3, 5, 7), pad 0): the output would be empty");
    CHECK_FAILS(bd_conv2d(tp, x, w_tall, NULL, 2, 0, &y), BD_E_ARG,
                "the output would be empty");
    CHECK_FAILS(bd_conv2d(tp, one, one, NULL, 1, INT_MAX / 2, &y), BD_E_ARG,
                "exceed the int range of BLAS");
    CHECK(y == NULL, "output untouched on error");
    CHECK(bd_tape_arena_used(tp) == 0, "nothing allocated on error");
    CHECK_OK(bd_conv2d(tp, x, w_tall, NULL, 1, 1, &y)); /* 7 fits 5 + 2 pad */
    CHECK(y && y->shape[2] == 1 && y->shape[3] == 7, "kernel as tall as the padded input");
    bd_tape_free(tp);
    bd_tensor *all[] = {x, x3, w, w3, w_c2, w_tall, b5, b2d, one};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        bd_tensor_free(all[i]);
}

int main(void)
{
    RUN(test_conv_configs);
    RUN(test_partial_grads);
    RUN(test_accumulates);
    RUN(test_no_grad_records_nothing);
    RUN(test_argument_errors);
    return harness_summary();
}
