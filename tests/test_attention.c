/* softmax, to_tokens / from_tokens and multi-head attention: naive double
 * references, gradients, stability and errors. */
#include <limits.h>

#include "bd/parallel.h"

#include "harness.h"

/* ---- softmax ------------------------------------------------------------- */

static bd_status build_softmax(bd_tape *tp, bd_tensor **in, void *ud,
                               bd_tensor **y)
{
    (void)ud;
    return bd_softmax(tp, in[0], y);
}

/* Row-wise softmax of n values in rows of k, in double. */
static void softmax_reference(const double *x, double *p, int64_t n, int64_t k)
{
    for (int64_t r = 0; r < n; r += k) {
        double max = x[r], sum = 0.0;
        for (int64_t i = 1; i < k; i++)
            max = fmax(max, x[r + i]);
        for (int64_t i = 0; i < k; i++)
            sum += p[r + i] = exp(x[r + i] - max);
        for (int64_t i = 0; i < k; i++)
            p[r + i] /= sum;
    }
}

static void check_softmax(const char *name, int ndim, const int64_t *shape,
                          double lo, double hi)
{
    bd_tensor *x = harness_tensor(ndim, shape, lo, hi, true);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(bd_softmax(tp, x, &y));
    double *xd = malloc((size_t)x->numel * sizeof *xd);
    double *want = malloc((size_t)x->numel * sizeof *want);
    for (int64_t i = 0; i < x->numel; i++)
        xd[i] = x->data[i];
    softmax_reference(xd, want, x->numel, shape[ndim - 1]);
    harness_compare(name, y->data, want, x->numel, 1e-6);
    if (hi - lo < 10.0)
        harness_gradcheck(name, build_softmax, &x, 1, NULL, 1e-3, 1e-2, 300);
    free(xd);
    free(want);
    bd_tape_free(tp);
    bd_tensor_free(x);
}

static void test_softmax(void)
{
    const int64_t odd[3] = {3, 5, 7}, tokens[3] = {2, 4, 35}, vec[1] = {1};
    check_softmax("softmax (3,5,7)", 3, odd, -2, 2);
    check_softmax("softmax (2,4,35)", 3, tokens, -3, 3);
    check_softmax("softmax (1)", 1, vec, -1, 1);
}

/* Logits near +-1000 would overflow exp without the max subtraction. */
static void test_softmax_stable(void)
{
    const int64_t shape[2] = {4, 9};
    check_softmax("softmax logits in [1000, 1010)", 2, shape, 1000, 1010);
    check_softmax("softmax logits in [-1010, -1000)", 2, shape, -1010, -1000);
    bd_tensor *x = bd_tensor_new(2, shape, true);
    for (int64_t i = 0; i < x->numel; i++)
        x->data[i] = (i % 2 ? 1000.0f : -1000.0f) + (float)(i % 3);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(bd_softmax(tp, x, &y));
    bool finite = true;
    double sum = 0.0;
    for (int64_t i = 0; i < y->numel; i++) {
        finite = finite && isfinite(y->data[i]);
        sum += y->data[i];
    }
    CHECK(finite && fabs(sum - 4.0) < 1e-5,
          "softmax of +-1000: finite %d, rows sum to %g (expected 4)", finite, sum);
    bd_tape_free(tp);
    bd_tensor_free(x);
}

/* Small probabilities keep their relative precision (down to e^-80), and a
 * -inf logit gets a probability of (about) 0. */
static void test_softmax_tails(void)
{
    const int64_t shape[2] = {16, 33};
    bd_tensor *x = harness_tensor(2, shape, -40, 40, false);
    x->data[5] = -INFINITY;
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(bd_softmax(tp, x, &y));
    double xd[16 * 33], want[16 * 33], worst = 0.0;
    for (int i = 0; i < 16 * 33; i++)
        xd[i] = x->data[i];
    softmax_reference(xd, want, 16 * 33, 33);
    for (int i = 0; i < 16 * 33; i++)
        if (want[i] > 1e-30)
            worst = fmax(worst, fabs(y->data[i] - want[i]) / want[i]);
    printf("   %-40s worst rel err %.2e\n", "softmax tails, logits in [-40, 40)",
           worst);
    CHECK(worst < 1e-5, "softmax tails: relative error %.3e", worst);
    CHECK(y->data[5] >= 0.0f && y->data[5] < 1e-30f,
          "softmax of -inf: %g, expected ~0", (double)y->data[5]);
    bd_tape_free(tp);
    bd_tensor_free(x);
}

/* ---- image <-> tokens ---------------------------------------------------- */

static bd_status build_to_tokens(bd_tape *tp, bd_tensor **in, void *ud,
                                 bd_tensor **y)
{
    (void)ud;
    return bd_to_tokens(tp, in[0], y);
}

static bd_status build_from_tokens(bd_tape *tp, bd_tensor **in, void *ud,
                                   bd_tensor **y)
{
    const int64_t *hw = ud;
    return bd_from_tokens(tp, in[0], hw[0], hw[1], y);
}

/* x: (N, C, H, W) -> tokens (N, H W, C) -> back to x exactly. */
static void check_tokens(const int64_t *shape)
{
    const int64_t N = shape[0], C = shape[1], H = shape[2], W = shape[3];
    char to[64], from[64];
    snprintf(to, sizeof to, "to_tokens (%lld,%lld,%lld,%lld)", (long long)N,
             (long long)C, (long long)H, (long long)W);
    snprintf(from, sizeof from, "from_tokens (%lld,%lld,%lld) -> %lldx%lld",
             (long long)N, (long long)(H * W), (long long)C, (long long)H,
             (long long)W);
    bd_tensor *x = harness_tensor(4, shape, -1, 1, true);
    bd_tape *tp = bd_tape_new();
    bd_tensor *t = NULL, *back = NULL;
    CHECK_OK(bd_to_tokens(tp, x, &t));
    CHECK(t->ndim == 3 && t->shape[0] == N && t->shape[1] == H * W &&
          t->shape[2] == C, "%s: tokens shape", to);
    double *want = malloc((size_t)x->numel * sizeof *want);
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t s = 0; s < H * W; s++)
                want[(n * H * W + s) * C + c] = x->data[(n * C + c) * H * W + s];
    harness_compare(to, t->data, want, x->numel, 1e-12);
    CHECK_OK(bd_from_tokens(tp, t, H, W, &back));
    CHECK(bd_shape_equal(back, x), "%s: restores the shape", from);
    for (int64_t i = 0; i < x->numel; i++)
        want[i] = x->data[i];
    harness_compare(from, back->data, want, x->numel, 1e-12);
    harness_gradcheck(to, build_to_tokens, &x, 1, NULL, 1e-3, 1e-2, 300);
    const int64_t tshape[3] = {N, H * W, C}, hw[2] = {H, W};
    bd_tensor *tok = harness_tensor(3, tshape, -1, 1, true);
    harness_gradcheck(from, build_from_tokens, &tok, 1, (void *)hw, 1e-3, 1e-2,
                      300);
    free(want);
    bd_tape_free(tp);
    bd_tensor_free(x);
    bd_tensor_free(tok);
}

static void test_tokens(void)
{
    const int64_t odd[4] = {1, 3, 5, 7}, unet[4] = {2, 64, 8, 8};
    check_tokens(odd);
    check_tokens(unet);
}

/* ---- attention ----------------------------------------------------------- */

static bd_status build_attention(bd_tape *tp, bd_tensor **in, void *ud,
                                 bd_tensor **y)
{
    return bd_attention(tp, in[0], *(const int *)ud, y);
}

/* Per (n, head): y = softmax(q k^T / sqrt(d)) v, in double. */
static double *attention_reference(const bd_tensor *qkv, int heads)
{
    const int64_t N = qkv->shape[0], T = qkv->shape[1], C = qkv->shape[2] / 3;
    const int64_t d = C / heads;
    double *y = malloc((size_t)(N * T * C) * sizeof *y);
    double *s = malloc((size_t)(T * T) * sizeof *s);
    double *p = malloc((size_t)(T * T) * sizeof *p);
    for (int64_t n = 0; n < N; n++)
        for (int h = 0; h < heads; h++) {
            const float *q = qkv->data + n * T * 3 * C + h * d;
            const float *k = q + C, *v = q + 2 * C;
            for (int64_t i = 0; i < T; i++)
                for (int64_t j = 0; j < T; j++) {
                    double acc = 0.0;
                    for (int64_t c = 0; c < d; c++)
                        acc += (double)q[i * 3 * C + c] * k[j * 3 * C + c];
                    s[i * T + j] = acc / sqrt((double)d);
                }
            softmax_reference(s, p, T * T, T);
            for (int64_t i = 0; i < T; i++)
                for (int64_t c = 0; c < d; c++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j < T; j++)
                        acc += p[i * T + j] * v[j * 3 * C + c];
                    y[(n * T + i) * C + h * d + c] = acc;
                }
        }
    free(s);
    free(p);
    return y;
}

/* Forward with and without grad against the reference; gradient of qkv. */
static void check_attention(int64_t N, int64_t T, int64_t C, int heads,
                            double spread)
{
    char name[80];
    snprintf(name, sizeof name, "attention (%lld,%lld,3*%lld) heads=%d",
             (long long)N, (long long)T, (long long)C, heads);
    const int64_t shape[3] = {N, T, 3 * C};
    bd_tensor *qkv = harness_tensor(3, shape, -spread, spread, true);
    double *want = attention_reference(qkv, heads);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(bd_attention(tp, qkv, heads, &y));
    CHECK(y->ndim == 3 && y->shape[1] == T && y->shape[2] == C, "%s shape", name);
    harness_compare(name, y->data, want, N * T * C, 1e-5);
    bd_tape_reset(tp);
    bd_tape_set_grad(tp, false);
    CHECK_OK(bd_attention(tp, qkv, heads, &y));
    harness_compare("  the same without grad", y->data, want, N * T * C, 1e-5);
    harness_gradcheck(name, build_attention, &qkv, 1, &heads, 1e-3, 1e-2, 300);
    free(want);
    bd_tape_free(tp);
    bd_tensor_free(qkv);
}

static void test_attention(void)
{
    check_attention(1, 35, 3, 1, 1.0);
    check_attention(1, 35, 12, 4, 1.0);
    check_attention(3, 5, 4, 2, 1.0);
    check_attention(2, 16, 64, 4, 1.0);
    check_attention(2, 16, 64, 1, 0.5);
    check_attention(1, 150, 8, 1, 2.0); /* query blocks of 64, 64 and 22 */
}

/* Sharp attention: large logits still give finite, correct outputs. */
static void test_attention_sharp(void)
{
    check_attention(1, 9, 8, 2, 12.0);
}

/* attention = softmax(q k^T / sqrt(d)) v built from the other ops would need
 * slicing; instead compare heads = 1 of a (1, T, 3C) input with matmul and
 * softmax composed on its q, k, v copied out. */
static void test_attention_matches_composition(void)
{
    const int64_t T = 6, C = 5, shape[3] = {1, T, 3 * C};
    const int64_t qs[2] = {T, C}, ks[2] = {C, T};
    bd_tensor *qkv = harness_tensor(3, shape, -1, 1, false);
    bd_tensor *q = bd_tensor_new(2, qs, false), *kt = bd_tensor_new(2, ks, false);
    bd_tensor *v = bd_tensor_new(2, qs, false);
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = 0; c < C; c++) {
            q->data[t * C + c] = qkv->data[t * 3 * C + c] / sqrtf((float)C);
            kt->data[c * T + t] = qkv->data[t * 3 * C + C + c];
            v->data[t * C + c] = qkv->data[t * 3 * C + 2 * C + c];
        }
    bd_tape *tp = bd_tape_new();
    bd_tensor *s = NULL, *p = NULL, *y = NULL, *att = NULL;
    CHECK_OK(bd_matmul(tp, q, kt, &s));
    CHECK_OK(bd_softmax(tp, s, &p));
    CHECK_OK(bd_matmul(tp, p, v, &y));
    CHECK_OK(bd_attention(tp, qkv, 1, &att));
    double want[30];
    for (int i = 0; i < 30; i++)
        want[i] = y->data[i];
    harness_compare("attention == matmul softmax matmul", att->data, want, 30,
                    1e-6);
    bd_tape_free(tp);
    bd_tensor_free(qkv);
    bd_tensor_free(q);
    bd_tensor_free(kt);
    bd_tensor_free(v);
}

/* Each (sample, head) is one thread's: the same bits at any thread count. */
static void test_attention_threads(void)
{
    const int64_t shape[3] = {3, 130, 3 * 16};
    bd_tensor *qkv = harness_tensor(3, shape, -2, 2, true);
    const size_t ny = (size_t)qkv->numel / 3, n = ny + (size_t)qkv->numel;
    float *run[2] = {malloc(n * sizeof(float)), malloc(n * sizeof(float))};
    const int threads[2] = {1, 3}, start = bd_num_threads();
    for (int r = 0; r < 2; r++) {
        bd_set_num_threads(threads[r]);
        bd_tape *tp = bd_tape_new();
        bd_tensor *y = NULL, *loss = NULL;
        memset(qkv->grad, 0, (size_t)qkv->numel * sizeof(float));
        CHECK_OK(bd_attention(tp, qkv, 2, &y));
        memcpy(run[r], y->data, ny * sizeof(float));
        CHECK_OK(bd_sum(tp, y, &loss));
        CHECK_OK(bd_tape_backward(tp, loss));
        memcpy(run[r] + ny, qkv->grad, (size_t)qkv->numel * sizeof(float));
        bd_tape_free(tp);
    }
    const bool same = !memcmp(run[0], run[1], n * sizeof(float));
    CHECK(same, "attention: 1 and 3 threads give different bits");
    bd_set_num_threads(start);
    free(run[0]);
    free(run[1]);
    bd_tensor_free(qkv);
}

static void test_errors(void)
{
    bd_tensor *img3 = bd_tensor_new4(2, 3, 4, 0, false);
    bd_tensor *tok = bd_tensor_new4(2, 35, 3, 0, false);
    bd_tensor *qkv = bd_tensor_new4(2, 16, 192, 0, false);
    bd_tensor *q100 = bd_tensor_new4(2, 16, 100, 0, false);
    bd_tensor *flat = bd_tensor_new4(16, 192, 0, 0, false);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_FAILS(bd_softmax(tp, NULL, &y), BD_E_ARG, "softmax: x is NULL");
    CHECK_FAILS(bd_to_tokens(tp, img3, &y), BD_E_ARG,
                "to_tokens: x has shape (2, 3, 4), expected 4 dims");
    CHECK_FAILS(bd_from_tokens(tp, tok, 6, 6, &y), BD_E_ARG,
                "from_tokens: x has shape (2, 35, 3), T = 35 tokens, expected"
                " h * w = 6 * 6");
    CHECK_FAILS(bd_from_tokens(tp, tok, 7, 0, &y), BD_E_ARG,
                "expected h * w = 7 * 0");
    CHECK_FAILS(bd_from_tokens(tp, tok, -5, -7, &y), BD_E_ARG,
                "expected h * w = -5 * -7");
    CHECK_FAILS(bd_from_tokens(tp, flat, 4, 4, &y), BD_E_ARG,
                "from_tokens: x has shape (16, 192), expected 3 dims");
    CHECK_FAILS(bd_attention(tp, qkv, 3, &y), BD_E_ARG,
                "attention: heads = 3 does not divide C = 64 of qkv (2, 16, 192)");
    CHECK_FAILS(bd_attention(tp, qkv, 0, &y), BD_E_ARG,
                "attention: heads = 0 does not divide C = 64");
    CHECK_FAILS(bd_attention(tp, q100, 1, &y), BD_E_ARG,
                "attention: qkv has shape (2, 16, 100), expected last dim 3C");
    CHECK_FAILS(bd_attention(tp, flat, 1, &y), BD_E_ARG,
                "attention: qkv has shape (16, 192), expected 3 dims");
    /* Shape only: the check must fail before any data is read. */
    bd_tensor huge = {.shape = {1, (int64_t)INT_MAX + 1, 3, 1}, .ndim = 3};
    CHECK_FAILS(bd_attention(tp, &huge, 1, &y), BD_E_ARG,
                "expected T and 3C at most 2147483647");
    CHECK(y == NULL, "output untouched on error");
    bd_tape_free(tp);
    bd_tensor_free(img3);
    bd_tensor_free(tok);
    bd_tensor_free(qkv);
    bd_tensor_free(q100);
    bd_tensor_free(flat);
}

int main(void)
{
    RUN(test_softmax);
    RUN(test_softmax_stable);
    RUN(test_softmax_tails);
    RUN(test_tokens);
    RUN(test_attention);
    RUN(test_attention_sharp);
    RUN(test_attention_matches_composition);
    RUN(test_attention_threads);
    RUN(test_errors);
    return harness_summary();
}
