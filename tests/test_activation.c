/* SiLU and GELU: naive double reference and finite-difference gradients. */
#include "harness.h"

static double silu_ref(double x) { return x / (1.0 + exp(-x)); }
/* erfc keeps its relative precision in the lower tail, where 1 + erf loses it */
static double gelu_ref(double x) { return 0.5 * x * erfc(-x / sqrt(2.0)); }

typedef bd_status (*unary_op)(bd_tape *, bd_tensor *, bd_tensor **);

static bd_status build_unary(bd_tape *tp, bd_tensor **in, void *ud, bd_tensor **y)
{
    return ((unary_op)ud)(tp, in[0], y);
}

static void check_unary(const char *name, unary_op op, double (*ref)(double),
                        int ndim, const int64_t *shape)
{
    bd_tensor *x = harness_tensor(ndim, shape, -4.0, 4.0, true);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(op(tp, x, &y));
    double *want = malloc((size_t)x->numel * sizeof *want);
    for (int64_t i = 0; i < x->numel; i++)
        want[i] = ref(x->data[i]);
    harness_compare(name, y->data, want, x->numel, 1e-6);
    harness_gradcheck(name, build_unary, &x, 1, (void *)op, 1e-3, 1e-2, 500);
    free(want);
    bd_tape_free(tp);
    bd_tensor_free(x);
}

static void test_silu(void)
{
    const int64_t odd[4] = {1, 3, 5, 7}, unet[4] = {2, 64, 8, 8};
    check_unary("silu (1,3,5,7)", bd_silu, silu_ref, 4, odd);
    check_unary("silu (2,64,8,8)", bd_silu, silu_ref, 4, unet);
}

static void test_gelu(void)
{
    const int64_t odd[4] = {1, 3, 5, 7}, vec[1] = {257};
    check_unary("gelu (1,3,5,7)", bd_gelu, gelu_ref, 4, odd);
    check_unary("gelu (257)", bd_gelu, gelu_ref, 1, vec);
}

static double silu_d_ref(double x)
{
    const double s = 1.0 / (1.0 + exp(-x));
    return s * (1.0 + x * (1.0 - s));
}

static double gelu_d_ref(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0)) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
}

/* The vectorised kernels densely over [lo, hi], value and derivative, with
 * the largest error relative to max(|f|, floor): floor 1 measures absolute
 * error on small values and relative error on large ones (the rounding of
 * a float result alone is 6e-8); a tiny floor, relative error in a tail. */
static void check_accuracy(const char *name, unary_op op, double (*ref)(double),
                           double (*dref)(double), double lo, double hi,
                           double floor, double tol)
{
    const int64_t n = 200001;
    bd_tensor *x = bd_tensor_new(1, &n, true);
    for (int64_t i = 0; i < n; i++)
        x->data[i] = (float)(lo + (hi - lo) * (double)i / (double)(n - 1));
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL, *loss = NULL;
    CHECK_OK(op(tp, x, &y));
    double err = 0.0, derr = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double want = ref(x->data[i]);
        err = fmax(err, fabs(y->data[i] - want) / fmax(fabs(want), floor));
    }
    CHECK_OK(bd_sum(tp, y, &loss));
    CHECK_OK(bd_tape_backward(tp, loss)); /* y goes back to the tape */
    for (int64_t i = 0; i < n; i++) {
        const double dwant = dref(x->data[i]);
        derr = fmax(derr, fabs(x->grad[i] - dwant) / fmax(fabs(dwant), floor));
    }
    printf("   %-40s max err %.2e, derivative %.2e\n", name, err, derr);
    CHECK(err < tol && derr < tol, "%s: error %.3e, derivative %.3e, tol %.0e",
          name, err, derr, tol);
    bd_tape_free(tp);
    bd_tensor_free(x);
}

static void test_accuracy(void)
{
    check_accuracy("gelu on [-12, 12], floor 1", bd_gelu, gelu_ref,
                   gelu_d_ref, -12, 12, 1.0, 1e-6);
    check_accuracy("gelu on [-0.01, 0.01], floor 1e-30", bd_gelu, gelu_ref,
                   gelu_d_ref, -0.01, 0.01, 1e-30, 1e-6);
    check_accuracy("gelu tail [-12, -3], floor 1e-37", bd_gelu, gelu_ref,
                   gelu_d_ref, -12, -3, 1e-37, 2e-5);
    check_accuracy("silu on [-80, 80], floor 1", bd_silu, silu_ref, silu_d_ref,
                   -80, 80, 1.0, 1e-6);
}

/* Inputs past the polynomials' range: 0 or x, no NaN or inf. */
/* Far from 0 both are relu: y = max(x, 0), dy/dx = 1 or 0. */
static void test_extremes(void)
{
    enum { N = 8 };
    const int64_t n = N;
    const float xs[N] = {-3e38f, -1e20f, -200.0f, -90.0f, 90.0f, 200.0f, 1e20f, 3e38f};
    for (int op = 0; op < 2; op++) {
        const char *name = op ? "silu" : "gelu";
        bd_tensor *x = bd_tensor_new(1, &n, true);
        memcpy(x->data, xs, sizeof xs);
        bd_tape *tp = bd_tape_new();
        bd_tensor *y = NULL, *loss = NULL;
        float got[N] = {0};
        CHECK_OK(op ? bd_silu(tp, x, &y) : bd_gelu(tp, x, &y));
        if (y)
            memcpy(got, y->data, sizeof got);
        CHECK_OK(bd_sum(tp, y, &loss));
        CHECK_OK(bd_tape_backward(tp, loss)); /* y goes back to the tape */
        for (int i = 0; i < N; i++) {
            const double want = xs[i] > 0 ? xs[i] : 0.0, dwant = xs[i] > 0 ? 1.0 : 0.0;
            CHECK(fabs(got[i] - want) <= 1e-6 * fabs(want) + 1e-10
                      && fabs(x->grad[i] - dwant) <= 1e-6,
                  "%s(%g) = %g, derivative %g, expected %g and %g", name, (double)xs[i],
                  (double)got[i], (double)x->grad[i], want, dwant);
        }
        bd_tape_free(tp);
        bd_tensor_free(x);
    }
}

static void test_no_grad_records_nothing(void)
{
    const int64_t shape[2] = {4, 4};
    bd_tensor *x = harness_tensor(2, shape, -1, 1, true);
    bd_tape *tp = bd_tape_new();
    bd_tape_set_grad(tp, false);
    bd_tensor *y = NULL;
    CHECK_OK(bd_silu(tp, x, &y));
    CHECK(!(y->flags & BD_TENSOR_REQUIRES_GRAD), "no-grad output requires grad");
    bd_tensor *loss = NULL;
    CHECK_OK(bd_sum(tp, y, &loss));
    CHECK_FAILS(bd_tape_backward(tp, loss), BD_E_STATE, "does not depend");
    bd_tape_free(tp);
    bd_tensor_free(x);
}

int main(void)
{
    RUN(test_silu);
    RUN(test_gelu);
    RUN(test_accuracy);
    RUN(test_extremes);
    RUN(test_no_grad_records_nothing);
    return harness_summary();
}
