/* linear and matmul: naive references, gradients, shape errors. */
#include "harness.h"

static bd_status build_linear(bd_tape *tp, bd_tensor **in, void *ud, bd_tensor **y)
{
    (void)ud;
    return bd_linear(tp, in[0], in[1], in[2], y);
}

static bd_status build_matmul(bd_tape *tp, bd_tensor **in, void *ud, bd_tensor **y)
{
    (void)ud;
    return bd_matmul(tp, in[0], in[1], y);
}

static void check_linear(int64_t rows, int64_t k, int64_t m, bool bias)
{
    const int64_t xs[2] = {rows, k}, ws[2] = {m, k}, bs[1] = {m};
    bd_tensor *in[3] = {
        harness_tensor(2, xs, -1, 1, true), harness_tensor(2, ws, -1, 1, true),
        bias ? harness_tensor(1, bs, -1, 1, true) : NULL,
    };
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(bd_linear(tp, in[0], in[1], in[2], &y));
    double *want = calloc((size_t)(rows * m), sizeof *want);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < m; j++) {
            double acc = bias ? in[2]->data[j] : 0.0;
            for (int64_t i = 0; i < k; i++)
                acc += (double)in[0]->data[r * k + i] * in[1]->data[j * k + i];
            want[r * m + j] = acc;
        }
    char name[64];
    snprintf(name, sizeof name, "linear %lldx%lld -> %lld%s", (long long)rows,
             (long long)k, (long long)m, bias ? " +b" : "");
    harness_compare(name, y->data, want, rows * m, 1e-5);
    harness_gradcheck(name, build_linear, in, 3, NULL, 1e-2, 1e-2, 300);
    free(want);
    bd_tape_free(tp);
    for (int i = 0; i < 3; i++)
        bd_tensor_free(in[i]);
}

static void test_linear(void)
{
    check_linear(1, 3, 5, true);
    check_linear(7, 5, 3, false);
    check_linear(16, 768, 64, true);
}

static void test_linear_3d(void)
{
    const int64_t xs[3] = {2, 5, 4}, ws[2] = {3, 4};
    bd_tensor *in[3] = {harness_tensor(3, xs, -1, 1, true),
                        harness_tensor(2, ws, -1, 1, true), NULL};
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(bd_linear(tp, in[0], in[1], NULL, &y));
    CHECK(y && y->ndim == 3 && y->shape[2] == 3, "linear keeps leading dims");
    harness_gradcheck("linear (2,5,4) -> (2,5,3)", build_linear, in, 3, NULL,
                      1e-2, 1e-2, 300);
    bd_tape_free(tp);
    bd_tensor_free(in[0]);
    bd_tensor_free(in[1]);
}

static void test_matmul(void)
{
    const int64_t as[2] = {5, 7}, bs[2] = {7, 3};
    bd_tensor *in[2] = {harness_tensor(2, as, -1, 1, true),
                        harness_tensor(2, bs, -1, 1, true)};
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(bd_matmul(tp, in[0], in[1], &y));
    double want[15];
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 3; j++) {
            double acc = 0;
            for (int k = 0; k < 7; k++)
                acc += (double)in[0]->data[i * 7 + k] * in[1]->data[k * 3 + j];
            want[i * 3 + j] = acc;
        }
    harness_compare("matmul (5,7)(7,3)", y->data, want, 15, 1e-5);
    harness_gradcheck("matmul (5,7)(7,3)", build_matmul, in, 2, NULL, 1e-2,
                      1e-2, 100);
    bd_tape_free(tp);
    bd_tensor_free(in[0]);
    bd_tensor_free(in[1]);
}

static void test_shape_errors(void)
{
    bd_tensor *x = bd_tensor_new4(2, 4, 0, 0, false);
    bd_tensor *w = bd_tensor_new4(3, 5, 0, 0, false);
    bd_tensor *b = bd_tensor_new4(4, 0, 0, 0, false);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_FAILS(bd_linear(tp, x, w, NULL, &y), BD_E_ARG,
                "linear: x has shape (2, 4), expected dim 1 = 5");
    CHECK_FAILS(bd_matmul(tp, x, w, &y), BD_E_ARG, "matmul: b has shape (3, 5)");
    bd_tensor *w2 = bd_tensor_new4(3, 4, 0, 0, false);
    CHECK_FAILS(bd_linear(tp, x, w2, b, &y), BD_E_ARG,
                "linear: b has shape (4), expected dim 0 = 3");
    CHECK(y == NULL, "output untouched on error");
    bd_tape_free(tp);
    bd_tensor_free(x);
    bd_tensor_free(w);
    bd_tensor_free(w2);
    bd_tensor_free(b);
}

int main(void)
{
    RUN(test_linear);
    RUN(test_linear_3d);
    RUN(test_matmul);
    RUN(test_shape_errors);
    return harness_summary();
}
