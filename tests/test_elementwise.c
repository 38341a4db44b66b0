/* add, mul (every broadcast pattern), scale, reshape and concat: naive double
 * references, finite-difference gradients of every input, shape errors. */
#include "harness.h"

typedef bd_status (*binary_op)(bd_tape *, bd_tensor *, bd_tensor *,
                               bd_tensor **);

static bd_status build_binary(bd_tape *tp, bd_tensor **in, void *ud,
                              bd_tensor **y)
{
    return ((binary_op)ud)(tp, in[0], in[1], y);
}

/* Index into b of element i of a, b broadcast to a's shape. */
static int64_t broadcast_index(const bd_tensor *a, const bd_tensor *b, int64_t i)
{
    int64_t idx[BD_MAX_DIMS], j = 0;
    for (int d = a->ndim - 1; d >= 0; d--) {
        idx[d] = i % a->shape[d];
        i /= a->shape[d];
    }
    for (int d = 0; d < a->ndim; d++)
        j = j * b->shape[d] + (b->shape[d] == 1 ? 0 : idx[d]);
    return j;
}

static void check_binary(const char *op_name, binary_op op, bool mul, int ndim,
                         const int64_t *as, const int64_t *bs)
{
    bd_tensor *in[2] = {harness_tensor(ndim, as, -1, 1, true),
                        harness_tensor(ndim, bs, -1, 1, true)};
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(op(tp, in[0], in[1], &y));
    double *want = malloc((size_t)in[0]->numel * sizeof *want);
    for (int64_t i = 0; i < in[0]->numel; i++) {
        double a = in[0]->data[i], b = in[1]->data[broadcast_index(in[0], in[1], i)];
        want[i] = mul ? a * b : a + b;
    }
    char name[96], sa[64], sb[64];
    snprintf(name, sizeof name, "%s %s, %s", op_name,
             bd_shape_str(in[0], sa, sizeof sa), bd_shape_str(in[1], sb, sizeof sb));
    harness_compare(name, y->data, want, in[0]->numel, 1e-6);
    harness_gradcheck(name, build_binary, in, 2, (void *)op, 1e-2, 1e-3, 200);
    free(want);
    bd_tape_free(tp);
    bd_tensor_free(in[0]);
    bd_tensor_free(in[1]);
}

/* Same shape, per channel, per sample and channel, per pixel. */
static void check_patterns(const char *op_name, binary_op op, bool mul,
                           int64_t N, int64_t C, int64_t H, int64_t W)
{
    const int64_t a[4] = {N, C, H, W};
    const int64_t b[4][4] = {{N, C, H, W}, {1, C, 1, 1}, {N, C, 1, 1},
                             {N, 1, H, W}};
    for (int k = 0; k < 4; k++)
        check_binary(op_name, op, mul, 4, a, b[k]);
}

static void test_add(void)
{
    check_patterns("add", bd_add, false, 1, 3, 5, 7);
    check_patterns("add", bd_add, false, 2, 64, 16, 16);
    /* chunks of 16384 elements end inside rows of b */
    check_patterns("add", bd_add, false, 3, 5, 37, 41);
    const int64_t a2[2] = {4, 5}, b2[2] = {1, 5}, a1[1] = {9}, b1[1] = {1};
    check_binary("add", bd_add, false, 2, a2, b2);
    check_binary("add", bd_add, false, 1, a1, b1);
}

static void test_mul(void)
{
    check_patterns("mul", bd_mul, true, 1, 3, 5, 7);
    check_patterns("mul", bd_mul, true, 2, 64, 16, 16);
    check_patterns("mul", bd_mul, true, 3, 5, 37, 41);
    const int64_t a2[2] = {4, 5}, b2[2] = {4, 1}, a3[3] = {2, 3, 4},
                  b3[3] = {2, 1, 4};
    check_binary("mul", bd_mul, true, 2, a2, b2);
    check_binary("mul", bd_mul, true, 3, a3, b3);
}

/* x + x and x * x: both gradient paths accumulate into the same buffer. */
static void test_same_input_twice(void)
{
    const int64_t s[2] = {3, 4};
    bd_tensor *x = harness_tensor(2, s, -1, 1, true);
    bd_tensor *in[2] = {x, x};
    harness_gradcheck("add x + x", build_binary, in, 2, (void *)bd_add, 1e-2,
                      1e-3, 100);
    harness_gradcheck("mul x * x", build_binary, in, 2, (void *)bd_mul, 1e-2,
                      1e-3, 100);
    bd_tensor_free(x);
}

static void test_broadcast_errors(void)
{
    const int64_t as[4] = {1, 3, 5, 7}, bad[4] = {1, 2, 1, 1}, flat[2] = {3, 35};
    bd_tensor *a = harness_tensor(4, as, -1, 1, false);
    bd_tensor *b = harness_tensor(4, bad, -1, 1, false);
    bd_tensor *c = harness_tensor(2, flat, -1, 1, false);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_FAILS(bd_add(tp, a, b, &y), BD_E_ARG, "add: b has shape (1, 2, 1, 1),"
                " which does not broadcast to a's shape (1, 3, 5, 7)");
    CHECK_FAILS(bd_mul(tp, a, b, &y), BD_E_ARG, "mul: b has shape (1, 2, 1, 1),"
                " which does not broadcast to a's shape (1, 3, 5, 7)");
    CHECK_FAILS(bd_add(tp, a, c, &y), BD_E_ARG, "add: b has shape (3, 35),"
                " which does not broadcast to a's shape (1, 3, 5, 7)");
    CHECK_FAILS(bd_mul(tp, a, NULL, &y), BD_E_ARG, "mul: b is NULL");
    CHECK(y == NULL, "a failed op leaves y untouched");
    bd_tape_free(tp);
    bd_tensor_free(a);
    bd_tensor_free(b);
    bd_tensor_free(c);
}

/* ---- scale ---------------------------------------------------------------- */

static bd_status build_scale(bd_tape *tp, bd_tensor **in, void *ud, bd_tensor **y)
{
    return bd_scale(tp, in[0], *(const float *)ud, y);
}

static void test_scale(void)
{
    const int64_t s[4] = {1, 3, 5, 7};
    bd_tensor *x = harness_tensor(4, s, -2, 2, true);
    float alpha = -0.37f;
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(bd_scale(tp, x, alpha, &y));
    double want[105];
    for (int i = 0; i < 105; i++)
        want[i] = (double)alpha * x->data[i];
    harness_compare("scale (1,3,5,7)", y->data, want, 105, 1e-6);
    harness_gradcheck("scale (1,3,5,7)", build_scale, &x, 1, &alpha, 1e-2,
                      1e-3, 200);
    bd_tape_free(tp);
    bd_tensor_free(x);
}

/* ---- reshape -------------------------------------------------------------- */

/* reshape to (C, H*W) and then scale, so the reshape output's grad comes
 * from another op. */
static bd_status build_reshape_scale(bd_tape *tp, bd_tensor **in, void *ud,
                                     bd_tensor **y)
{
    (void)ud;
    const int64_t s[2] = {in[0]->shape[1], in[0]->shape[2] * in[0]->shape[3]};
    bd_tensor *r;
    BD_TRY(bd_reshape(tp, in[0], 2, s, &r));
    return bd_scale(tp, r, 3.0f, y);
}

static bd_status build_reshape(bd_tape *tp, bd_tensor **in, void *ud,
                               bd_tensor **y)
{
    (void)ud;
    const int64_t s[3] = {7, 5, 3};
    return bd_reshape(tp, in[0], 3, s, y);
}

static void test_reshape(void)
{
    const int64_t s[4] = {1, 3, 5, 7}, to[3] = {7, 5, 3};
    bd_tensor *x = harness_tensor(4, s, -1, 1, true);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(bd_reshape(tp, x, 3, to, &y));
    CHECK(y->data == x->data, "reshape shares x's data");
    CHECK(y->ndim == 3 && y->shape[0] == 7 && y->shape[1] == 5 &&
          y->shape[2] == 3 && y->shape[3] == 1 && y->numel == 105,
          "reshape gives shape (7, 5, 3)");
    CHECK(y->grad == NULL && (y->flags & BD_TENSOR_REQUIRES_GRAD),
          "reshape output has no grad buffer until backward, and requires grad");
    harness_gradcheck("reshape (1,3,5,7) -> (7,5,3)", build_reshape, &x, 1,
                      NULL, 1e-2, 1e-3, 200);
    harness_gradcheck("reshape (1,3,5,7) -> (3,35), scale", build_reshape_scale,
                      &x, 1, NULL, 1e-2, 1e-3, 200);
    bd_tape_free(tp);
    bd_tensor_free(x);
}

static void test_reshape_errors(void)
{
    const int64_t s[4] = {1, 3, 5, 7}, wrong[2] = {4, 26}, zero[2] = {0, 105};
    bd_tensor *x = harness_tensor(4, s, -1, 1, false);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_FAILS(bd_reshape(tp, x, 2, wrong, &y), BD_E_ARG, "reshape: x has shape"
                " (1, 3, 5, 7) (105 elements) but the new shape (4, 26) has 104");
    CHECK_FAILS(bd_reshape(tp, x, 2, zero, &y), BD_E_ARG,
                "reshape: new shape: dim 0 is 0");
    CHECK_FAILS(bd_reshape(tp, x, 5, s, &y), BD_E_ARG,
                "reshape: new shape: 5 dims");
    CHECK_FAILS(bd_reshape(tp, x, 2, NULL, &y), BD_E_ARG, "reshape: shape is NULL");
    CHECK(y == NULL, "a failed reshape leaves y untouched");
    bd_tape_free(tp);
    bd_tensor_free(x);
}

/* ---- concat --------------------------------------------------------------- */

static bd_status build_concat(bd_tape *tp, bd_tensor **in, void *ud, bd_tensor **y)
{
    (void)ud;
    return bd_concat(tp, in[0], in[1], y);
}

static void check_concat(int ndim, const int64_t *as, const int64_t *bs)
{
    bd_tensor *in[2] = {harness_tensor(ndim, as, -1, 1, true),
                        harness_tensor(ndim, bs, -1, 1, true)};
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(bd_concat(tp, in[0], in[1], &y));
    const int64_t N = as[0], Ca = as[1], Cb = bs[1];
    const int64_t inner = in[0]->numel / (N * Ca);
    double *want = malloc((size_t)y->numel * sizeof *want);
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < Ca + Cb; c++)
            for (int64_t i = 0; i < inner; i++)
                want[(n * (Ca + Cb) + c) * inner + i] = c < Ca
                    ? in[0]->data[(n * Ca + c) * inner + i]
                    : in[1]->data[(n * Cb + c - Ca) * inner + i];
    char name[96], sa[64], sb[64];
    snprintf(name, sizeof name, "concat %s, %s",
             bd_shape_str(in[0], sa, sizeof sa), bd_shape_str(in[1], sb, sizeof sb));
    CHECK(y->ndim == ndim && y->shape[1] == Ca + Cb, "%s: output shape", name);
    harness_compare(name, y->data, want, y->numel, 1e-7);
    harness_gradcheck(name, build_concat, in, 2, NULL, 1e-2, 1e-3, 200);
    free(want);
    bd_tape_free(tp);
    bd_tensor_free(in[0]);
    bd_tensor_free(in[1]);
}

static void test_concat(void)
{
    const int64_t a1[4] = {1, 3, 5, 7}, b1[4] = {1, 2, 5, 7};
    const int64_t a2[4] = {2, 64, 16, 16}, b2[4] = {2, 64, 16, 16};
    const int64_t a3[2] = {3, 5}, b3[2] = {3, 4};
    check_concat(4, a1, b1);
    check_concat(4, a2, b2);
    check_concat(2, a3, b3);
}

static void test_concat_errors(void)
{
    const int64_t as[4] = {2, 3, 5, 7};
    const int64_t bad[3][4] = {{1, 3, 5, 7}, {2, 3, 4, 7}, {2, 3, 5, 6}};
    const char *msg[3] = {
        "concat: b has shape (1, 3, 5, 7) but a has shape (2, 3, 5, 7),"
        " expected the same dims except dim 1 (channels)",
        "concat: b has shape (2, 3, 4, 7) but a has shape (2, 3, 5, 7)",
        "concat: b has shape (2, 3, 5, 6) but a has shape (2, 3, 5, 7)",
    };
    const int64_t flat[2] = {2, 105}, vec[1] = {5};
    bd_tensor *a = harness_tensor(4, as, -1, 1, false);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    for (int k = 0; k < 3; k++) {
        bd_tensor *b = harness_tensor(4, bad[k], -1, 1, false);
        CHECK_FAILS(bd_concat(tp, a, b, &y), BD_E_ARG, msg[k]);
        bd_tensor_free(b);
    }
    bd_tensor *b2 = harness_tensor(2, flat, -1, 1, false);
    CHECK_FAILS(bd_concat(tp, a, b2, &y), BD_E_ARG,
                "concat: b has shape (2, 105) but a has shape (2, 3, 5, 7)");
    bd_tensor *b1 = harness_tensor(1, vec, -1, 1, false);
    CHECK_FAILS(bd_concat(tp, b1, b1, &y), BD_E_ARG,
                "concat: a has shape (5), expected 2 to 4 dims");
    CHECK(y == NULL, "a failed concat leaves y untouched");
    bd_tape_free(tp);
    bd_tensor_free(a);
    bd_tensor_free(b2);
    bd_tensor_free(b1);
}

int main(void)
{
    RUN(test_add);
    RUN(test_mul);
    RUN(test_same_input_twice);
    RUN(test_broadcast_errors);
    RUN(test_scale);
    RUN(test_reshape);
    RUN(test_reshape_errors);
    RUN(test_concat);
    RUN(test_concat_errors);
    return harness_summary();
}
