/* max_pool and avg_pool: naive double references, finite-difference
 * gradients, NaN propagation, and the size and k errors. */
#include "harness.h"

typedef bd_status (*pool_op)(bd_tape *, bd_tensor *, int, bd_tensor **);

typedef struct pool_case {
    pool_op op;
    int k;
} pool_case;

static bd_status build_pool(bd_tape *tp, bd_tensor **in, void *ud, bd_tensor **y)
{
    const pool_case *pc = ud;
    return pc->op(tp, in[0], pc->k, y);
}

/* Each k x k window holds base + 0.05 * (a random permutation of
 * 0..k^2-1), base uniform in [-1, 1): no ties within a window and gaps of
 * 50 finite-difference steps, so every window has one clear maximum.
 * k <= 8. */
static void fill_without_ties(bd_tensor *x, int k)
{
    const int64_t P = x->shape[0] * x->shape[1], H = x->shape[2],
                  W = x->shape[3];
    int rank[64];
    for (int64_t p = 0; p < P; p++)
        for (int64_t oy = 0; oy < H / k; oy++)
            for (int64_t ox = 0; ox < W / k; ox++) {
                const double base = 2.0 * harness_uniform() - 1.0;
                for (int i = 0; i < k * k; i++)
                    rank[i] = i;
                for (int i = k * k - 1; i > 0; i--) {
                    int j = (int)(harness_uniform() * (i + 1)), t = rank[i];
                    rank[i] = rank[j];
                    rank[j] = t;
                }
                for (int i = 0; i < k * k; i++)
                    x->data[(p * H + oy * k + i / k) * W + ox * k + i % k] =
                        (float)(base + 0.05 * rank[i]);
            }
}

/* Naive k x k window max or mean, in double. */
static void pool_ref(const bd_tensor *x, int k, bool max, double *want)
{
    const int64_t P = x->shape[0] * x->shape[1], H = x->shape[2],
                  W = x->shape[3], OH = H / k, OW = W / k;
    for (int64_t p = 0; p < P; p++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++) {
                double acc = max ? -INFINITY : 0.0;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        double v = x->data[(p * H + oy * k + ky) * W + ox * k + kx];
                        acc = max ? fmax(acc, v) : acc + v / (k * k);
                    }
                want[(p * OH + oy) * OW + ox] = acc;
            }
}

static void check_pool(const char *op_name, pool_op op, bool max,
                       const int64_t *shape, int k)
{
    bd_tensor *x = harness_tensor(4, shape, -1, 1, true);
    if (max)
        fill_without_ties(x, k);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(op(tp, x, k, &y));
    char name[96], s[64];
    snprintf(name, sizeof name, "%s k=%d %s", op_name, k,
             bd_shape_str(x, s, sizeof s));
    CHECK(y->shape[0] == shape[0] && y->shape[1] == shape[1] &&
          y->shape[2] == shape[2] / k && y->shape[3] == shape[3] / k,
          "%s: output shape", name);
    double *want = malloc((size_t)y->numel * sizeof *want);
    pool_ref(x, k, max, want);
    harness_compare(name, y->data, want, y->numel, 1e-6);
    pool_case pc = {op, k};
    harness_gradcheck(name, build_pool, &x, 1, &pc, 1e-3, 1e-2, 300);
    free(want);
    bd_tape_free(tp);
    bd_tensor_free(x);
}

static void check_both(const int64_t *shape, int k)
{
    check_pool("max_pool", bd_max_pool, true, shape, k);
    check_pool("avg_pool", bd_avg_pool, false, shape, k);
}

static void test_pool(void)
{
    const int64_t odd[4] = {1, 3, 6, 8}, by3[4] = {1, 3, 6, 9},
                  unet[4] = {2, 64, 16, 16}, unet_small[4] = {2, 64, 4, 4};
    check_both(odd, 2);
    check_both(by3, 3);
    check_both(odd, 1);
    check_both(unet, 2);
    check_both(unet_small, 2);
    check_both(unet_small, 4);
}

/* A NaN in a window makes its max NaN (it propagates, as in PyTorch). */
static void test_max_pool_nan(void)
{
    const int64_t s[4] = {1, 1, 2, 4};
    bd_tensor *x = harness_tensor(4, s, -1, 1, false);
    x->data[1] = NAN;
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(bd_max_pool(tp, x, 2, &y));
    CHECK(isnan(y->data[0]) && !isnan(y->data[1]), "NaN stays in its window");
    bd_tape_free(tp);
    bd_tensor_free(x);
}

static void test_pool_errors(void)
{
    const int64_t odd[4] = {1, 3, 5, 7}, w_odd[4] = {1, 3, 6, 7}, flat[3] = {1, 3, 6};
    bd_tensor *x = harness_tensor(4, odd, -1, 1, false);
    bd_tensor *xw = harness_tensor(4, w_odd, -1, 1, false);
    bd_tensor *x3 = harness_tensor(3, flat, -1, 1, false);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_FAILS(bd_max_pool(tp, x, 2, &y), BD_E_ARG, "max_pool: x has shape"
                " (1, 3, 5, 7), expected H = 5 and W = 7 divisible by k = 2");
    CHECK_FAILS(bd_avg_pool(tp, x, 2, &y), BD_E_ARG, "avg_pool: x has shape"
                " (1, 3, 5, 7), expected H = 5 and W = 7 divisible by k = 2");
    CHECK_FAILS(bd_max_pool(tp, xw, 2, &y), BD_E_ARG, "max_pool: x has shape"
                " (1, 3, 6, 7), expected H = 6 and W = 7 divisible by k = 2");
    CHECK_FAILS(bd_avg_pool(tp, xw, 4, &y), BD_E_ARG, "divisible by k = 4");
    CHECK_FAILS(bd_max_pool(tp, x, 0, &y), BD_E_ARG,
                "max_pool: k = 0, expected k >= 1");
    CHECK_FAILS(bd_avg_pool(tp, x, -2, &y), BD_E_ARG,
                "avg_pool: k = -2, expected k >= 1");
    CHECK_FAILS(bd_max_pool(tp, x3, 2, &y), BD_E_ARG,
                "max_pool: x has shape (1, 3, 6), expected 4 dims");
    CHECK_FAILS(bd_avg_pool(tp, NULL, 2, &y), BD_E_ARG, "avg_pool: x is NULL");
    CHECK(y == NULL, "a failed pool leaves y untouched");
    bd_tape_free(tp);
    bd_tensor_free(x);
    bd_tensor_free(xw);
    bd_tensor_free(x3);
}

int main(void)
{
    RUN(test_pool);
    RUN(test_max_pool_nan);
    RUN(test_pool_errors);
    return harness_summary();
}
