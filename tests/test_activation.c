/* SiLU and GELU: naive double reference and finite-difference gradients. */
#include "harness.h"

static double silu_ref(double x) { return x / (1.0 + exp(-x)); }
static double gelu_ref(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

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
    RUN(test_no_grad_records_nothing);
    return harness_summary();
}
