/* group_norm and layer_norm: naive double references, gradients, errors. */
#include "harness.h"

#include "bd/parallel.h"

typedef struct norm_case {
    int   groups; /* 0: layer norm */
    float eps;
} norm_case;

static bd_status build_norm(bd_tape *tp, bd_tensor **in, void *ud, bd_tensor **y)
{
    const norm_case *nc = ud;
    if (nc->groups == 0)
        return bd_layer_norm(tp, in[0], in[1], in[2], nc->eps, y);
    return bd_group_norm(tp, in[0], nc->groups, in[1], in[2], nc->eps, y);
}

/* Normalise `rows` rows of `channels` x `inner` values in double; row r uses
 * the affine channels (r % groups) * channels + j. */
static double *norm_reference(const bd_tensor *x, int64_t rows, int64_t groups,
                              int64_t channels, int64_t inner,
                              const bd_tensor *gamma, const bd_tensor *beta,
                              double eps)
{
    double *want = malloc((size_t)x->numel * sizeof *want);
    const int64_t width = channels * inner;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * width;
        double mean = 0.0, var = 0.0;
        for (int64_t i = 0; i < width; i++)
            mean += xr[i];
        mean /= (double)width;
        for (int64_t i = 0; i < width; i++)
            var += (xr[i] - mean) * (xr[i] - mean);
        var /= (double)width;
        for (int64_t i = 0; i < width; i++) {
            const int64_t c = (r % groups) * channels + i / inner;
            const double g = gamma ? gamma->data[c] : 1.0;
            const double b = beta ? beta->data[c] : 0.0;
            want[r * width + i] = (xr[i] - mean) / sqrt(var + eps) * g + b;
        }
    }
    return want;
}

/* Forward against the reference on x uniform in [lo, hi); then, for inputs of
 * O(1) spread around 0, the gradient of x, gamma and beta. */
static void check_norm(const char *name, norm_case nc, int ndim,
                       const int64_t *shape, bool affine, double lo, double hi,
                       double fwd_tol)
{
    const int64_t C = nc.groups ? shape[1] : shape[ndim - 1];
    const int64_t cs[1] = {C};
    bd_tensor *in[3] = {
        harness_tensor(ndim, shape, lo, hi, true),
        affine ? harness_tensor(1, cs, 0.5, 1.5, true) : NULL,
        affine ? harness_tensor(1, cs, -1.0, 1.0, true) : NULL,
    };
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(build_norm(tp, in, &nc, &y));
    if (y) {
        const bd_tensor *x = in[0];
        double *want = nc.groups
            ? norm_reference(x, shape[0] * nc.groups, nc.groups, C / nc.groups,
                             bd_tensor_inner(x, 2), in[1], in[2], nc.eps)
            : norm_reference(x, x->numel / C, 1, C, 1, in[1], in[2], nc.eps);
        harness_compare(name, y->data, want, x->numel, fwd_tol);
        free(want);
    }
    if (lo > -10.0 && hi < 10.0)
        harness_gradcheck(name, build_norm, in, 3, &nc, 1e-3, 1e-2, 300);
    bd_tape_free(tp);
    for (int i = 0; i < 3; i++)
        bd_tensor_free(in[i]);
}

static void test_group_norm(void)
{
    const int64_t odd[4] = {1, 3, 5, 7}, unet[4] = {2, 64, 8, 8};
    const int64_t flat[2] = {4, 6}, seq[3] = {3, 4, 5};
    check_norm("group_norm (1,3,5,7) G=1", (norm_case){1, 1e-5f}, 4, odd, true,
               -2, 2, 1e-5);
    check_norm("group_norm (1,3,5,7) G=3", (norm_case){3, 1e-5f}, 4, odd, true,
               -2, 2, 1e-5);
    check_norm("group_norm (1,3,5,7) G=3 no affine", (norm_case){3, 1e-5f}, 4,
               odd, false, -2, 2, 1e-5);
    check_norm("group_norm (2,64,8,8) G=8", (norm_case){8, 1e-5f}, 4, unet, true,
               -2, 2, 1e-5);
    check_norm("group_norm (2,64,8,8) G=32", (norm_case){32, 1e-5f}, 4, unet,
               true, -2, 2, 1e-5);
    check_norm("group_norm (4,6) G=2", (norm_case){2, 1e-3f}, 2, flat, true,
               -2, 2, 1e-5);
    check_norm("group_norm (3,4,5) G=4", (norm_case){4, 1e-5f}, 3, seq, true,
               -2, 2, 1e-5);
}

/* Backward sums the affine gradients per chunk of 16K values or more:
 * shapes of several chunks, and the same bits at 1 and 3 threads (on a
 * shape wide enough for 3 threads to be used). */
static void test_chunks(void)
{
    const int64_t img[4] = {3, 4, 45, 47}, tok[3] = {8, 256, 128};
    check_norm("group_norm (3,4,45,47) G=2", (norm_case){2, 1e-5f}, 4, img,
               true, -2, 2, 1e-5);
    check_norm("layer_norm (8,256,128)", (norm_case){0, 1e-5f}, 3, tok, true,
               -2, 2, 1e-5);
    const int64_t cs[1] = {128};
    bd_tensor *in[3] = {harness_tensor(3, tok, -2, 2, true),
                        harness_tensor(1, cs, 0.5, 1.5, true),
                        harness_tensor(1, cs, -1, 1, true)};
    const int threads[2] = {1, 3}, start = bd_num_threads();
    float first[2 * 128];
    bool same = true;
    for (int r = 0; r < 2; r++) {
        bd_set_num_threads(threads[r]);
        CHECK(bd_threads_for(3.0 * (double)in[0]->numel) == threads[r],
              "layer_norm (8,256,128) runs on %d threads, expected %d",
              bd_threads_for(3.0 * (double)in[0]->numel), threads[r]);
        for (int i = 0; i < 3; i++)
            memset(in[i]->grad, 0, (size_t)in[i]->numel * sizeof(float));
        bd_tape *tp = bd_tape_new();
        bd_tensor *y = NULL, *w = NULL, *loss = NULL;
        CHECK_OK(bd_layer_norm(tp, in[0], in[1], in[2], 1e-5f, &y));
        CHECK_OK(bd_mul(tp, y, in[0], &w));
        CHECK_OK(bd_sum(tp, w, &loss));
        CHECK_OK(bd_tape_backward(tp, loss));
        if (r == 0) {
            memcpy(first, in[1]->grad, sizeof first / 2);
            memcpy(first + 128, in[2]->grad, sizeof first / 2);
        } else {
            same = !memcmp(first, in[1]->grad, sizeof first / 2) &&
                   !memcmp(first + 128, in[2]->grad, sizeof first / 2);
        }
        bd_tape_free(tp);
    }
    CHECK(same, "layer_norm: affine gradients differ between 1 and 3 threads");
    bd_set_num_threads(start);
    for (int i = 0; i < 3; i++)
        bd_tensor_free(in[i]);
}

static void test_layer_norm(void)
{
    const int64_t odd[3] = {1, 35, 3}, tokens[3] = {2, 16, 64}, vec[1] = {7};
    const int64_t img[4] = {1, 3, 5, 7};
    check_norm("layer_norm (1,35,3)", (norm_case){0, 1e-5f}, 3, odd, true,
               -2, 2, 1e-5);
    check_norm("layer_norm (2,16,64)", (norm_case){0, 1e-5f}, 3, tokens, true,
               -2, 2, 1e-5);
    check_norm("layer_norm (7) no affine", (norm_case){0, 1e-5f}, 1, vec, false,
               -2, 2, 1e-5);
    check_norm("layer_norm (1,3,5,7)", (norm_case){0, 1e-5f}, 4, img, true,
               -2, 2, 1e-5);
}

/* Two-pass statistics: a large common offset must not cost precision beyond
 * the float spacing of the inputs themselves. */
static void test_large_offset(void)
{
    const int64_t shape[4] = {2, 6, 5, 7}, tokens[2] = {4, 64};
    check_norm("group_norm offset 1e3", (norm_case){3, 1e-5f}, 4, shape, true,
               999.0, 1001.0, 1e-3);
    check_norm("layer_norm offset 1e3", (norm_case){0, 1e-5f}, 2, tokens, true,
               999.0, 1001.0, 1e-3);
}

/* A constant group has zero variance: y = beta, no NaN. */
static void test_constant_input(void)
{
    const int64_t shape[4] = {1, 4, 3, 3}, cs[1] = {4};
    bd_tensor *x = bd_tensor_new(4, shape, true);
    bd_tensor *beta = harness_tensor(1, cs, -1, 1, false);
    bd_tensor_fill(x, 3.0f);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(bd_group_norm(tp, x, 2, NULL, beta, 1e-5f, &y));
    bool exact = y != NULL;
    for (int64_t i = 0; y && i < y->numel; i++)
        exact = exact && y->data[i] == beta->data[i / 9];
    CHECK(exact, "constant input normalises to beta");
    bd_tape_free(tp);
    bd_tensor_free(x);
    bd_tensor_free(beta);
}

/* Without grad the statistics are not kept and the output is the same. */
static void test_no_grad(void)
{
    const int64_t shape[4] = {2, 6, 4, 4};
    bd_tensor *x = harness_tensor(4, shape, -1, 1, true);
    bd_tape *tp = bd_tape_new();
    bd_tensor *a = NULL, *b = NULL;
    CHECK_OK(bd_group_norm(tp, x, 3, NULL, NULL, 1e-5f, &a));
    const size_t with_grad = bd_tape_arena_used(tp);
    bd_tape_reset(tp);
    bd_tape_set_grad(tp, false);
    CHECK_OK(bd_group_norm(tp, x, 3, NULL, NULL, 1e-5f, &b));
    CHECK(bd_tape_arena_used(tp) < with_grad, "no-grad keeps no statistics");
    CHECK(!(b->flags & BD_TENSOR_REQUIRES_GRAD), "no-grad output needs no grad");
    bd_tape_free(tp);
    bd_tensor_free(x);
}

static void test_errors(void)
{
    bd_tensor *x = bd_tensor_new4(2, 64, 4, 4, false);
    bd_tensor *vec = bd_tensor_new4(5, 0, 0, 0, false);
    bd_tensor *g63 = bd_tensor_new4(63, 0, 0, 0, false);
    bd_tensor *g2d = bd_tensor_new4(64, 1, 0, 0, false);
    bd_tensor *tok = bd_tensor_new4(2, 16, 64, 0, false);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_FAILS(bd_group_norm(tp, x, 5, NULL, NULL, 1e-5f, &y), BD_E_ARG,
                "group_norm: groups = 5 does not divide C = 64 of x (2, 64, 4, 4)");
    CHECK_FAILS(bd_group_norm(tp, x, 0, NULL, NULL, 1e-5f, &y), BD_E_ARG,
                "group_norm: groups = 0 does not divide C = 64");
    CHECK_FAILS(bd_group_norm(tp, x, 8, g63, NULL, 1e-5f, &y), BD_E_ARG,
                "group_norm: gamma has shape (63), expected dim 0 = 64");
    CHECK_FAILS(bd_group_norm(tp, x, 8, NULL, g2d, 1e-5f, &y), BD_E_ARG,
                "group_norm: beta has shape (64, 1), expected 1 dims");
    CHECK_FAILS(bd_group_norm(tp, vec, 1, NULL, NULL, 1e-5f, &y), BD_E_ARG,
                "group_norm: x has shape (5), expected 2 to 4 dims");
    CHECK_FAILS(bd_group_norm(tp, NULL, 1, NULL, NULL, 1e-5f, &y), BD_E_ARG,
                "group_norm: x is NULL");
    CHECK_FAILS(bd_group_norm(tp, x, 8, NULL, NULL, -1.0f, &y), BD_E_ARG,
                "group_norm: eps = -1, expected a finite value >= 0");
    CHECK_FAILS(bd_group_norm(tp, x, 8, NULL, NULL, NAN, &y), BD_E_ARG,
                "group_norm: eps = nan");
    CHECK_FAILS(bd_layer_norm(tp, tok, g63, NULL, 1e-5f, &y), BD_E_ARG,
                "layer_norm: gamma has shape (63), expected dim 0 = 64");
    CHECK_FAILS(bd_layer_norm(tp, tok, NULL, vec, 1e-5f, &y), BD_E_ARG,
                "layer_norm: beta has shape (5), expected dim 0 = 64");
    CHECK_FAILS(bd_layer_norm(tp, NULL, NULL, NULL, 1e-5f, &y), BD_E_ARG,
                "layer_norm: x is NULL");
    CHECK_FAILS(bd_layer_norm(tp, tok, NULL, NULL, INFINITY, &y), BD_E_ARG,
                "layer_norm: eps = inf, expected a finite value >= 0");
    CHECK(y == NULL, "output untouched on error");
    bd_tape_free(tp);
    bd_tensor_free(x);
    bd_tensor_free(vec);
    bd_tensor_free(g63);
    bd_tensor_free(g2d);
    bd_tensor_free(tok);
}

int main(void)
{
    RUN(test_group_norm);
    RUN(test_layer_norm);
    RUN(test_chunks);
    RUN(test_large_offset);
    RUN(test_constant_input);
    RUN(test_no_grad);
    RUN(test_errors);
    return harness_summary();
}
