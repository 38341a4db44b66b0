/* The reductions to a scalar: sum, mean and the MSE loss against naive
 * double-precision references, their finite-difference gradients, and the
 * shape errors. */
#include "bd/tape.h"
#include "harness.h"

typedef bd_status (*reduce_fn)(bd_tape *, bd_tensor *, bd_tensor **);

static bd_status build_reduce(bd_tape *tp, bd_tensor **in, void *ud,
                              bd_tensor **y)
{
    return ((reduce_fn)ud)(tp, in[0], y);
}

static bd_status build_mse(bd_tape *tp, bd_tensor **in, void *ud, bd_tensor **y)
{
    (void)ud;
    return bd_mse(tp, in[0], in[1], y);
}

/* sum or mean of an (n) tensor in double. */
static double naive_sum(const bd_tensor *x, bool mean)
{
    double acc = 0.0;
    for (int64_t i = 0; i < x->numel; i++)
        acc += x->data[i];
    return mean ? acc / (double)x->numel : acc;
}

static void check_reduce(const char *name, reduce_fn op, bool mean,
                         int ndim, const int64_t *shape)
{
    bd_tensor *x = harness_tensor(ndim, shape, -2, 3, true);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(op(tp, x, &y));
    const double want = naive_sum(x, mean);
    if (y) {
        CHECK(y->ndim == 1 && y->shape[0] == 1, "%s: a (1) scalar", name);
        harness_compare(name, y->data, &want, 1, 1e-6);
    }
    harness_gradcheck(name, build_reduce, &x, 1, (void *)op, 1e-2, 1e-3, 300);
    bd_tape_free(tp);
    bd_tensor_free(x);
}

static void test_sum_mean(void)
{
    const int64_t s1[1] = {7}, s4[4] = {2, 3, 5, 7}, big[2] = {300, 301};
    check_reduce("sum (7)", bd_sum, false, 1, s1);
    check_reduce("sum (2,3,5,7)", bd_sum, false, 4, s4);
    check_reduce("mean (7)", bd_mean, true, 1, s1);
    check_reduce("mean (2,3,5,7)", bd_mean, true, 4, s4);
    check_reduce("mean (300,301)", bd_mean, true, 2, big);
}

static void test_mse(void)
{
    const int64_t shape[3] = {3, 4, 5};
    bd_tensor *in[2] = {harness_tensor(3, shape, -1, 1, true),
                        harness_tensor(3, shape, -1, 1, true)};
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(bd_mse(tp, in[0], in[1], &y));
    double want = 0.0;
    for (int64_t i = 0; i < in[0]->numel; i++)
        want += pow((double)in[0]->data[i] - in[1]->data[i], 2);
    want /= (double)in[0]->numel;
    if (y)
        harness_compare("mse (3,4,5)", y->data, &want, 1, 1e-6);
    harness_gradcheck("mse (3,4,5)", build_mse, in, 2, NULL, 1e-2, 1e-3, 300);
    bd_tape_free(tp);
    bd_tensor_free(in[0]);
    bd_tensor_free(in[1]);
}

static void test_errors(void)
{
    const int64_t a[2] = {2, 3}, b[2] = {3, 2};
    bd_tensor *x = harness_tensor(2, a, 0, 1, false);
    bd_tensor *z = harness_tensor(2, b, 0, 1, false);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_FAILS(bd_mse(tp, x, z, &y), BD_E_ARG, "mse");
    bd_tape_free(tp);
    bd_tensor_free(x);
    bd_tensor_free(z);
}

int main(void)
{
    RUN(test_sum_mean);
    RUN(test_mse);
    RUN(test_errors);
    return harness_summary();
}
