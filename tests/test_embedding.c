/* sinusoidal embedding: naive double reference, gradient, errors. */
#include "harness.h"

typedef struct embedding_case {
    int   dim;
    float base;
} embedding_case;

static bd_status build_sinusoidal(bd_tape *tp, bd_tensor **in, void *ud,
                                  bd_tensor **y)
{
    const embedding_case *ec = ud;
    return bd_sinusoidal(tp, in[0], ec->dim, ec->base, y);
}

/* s uniform in [lo, hi): forward against sin / cos in double; gradient of s
 * where s is O(1) (finite differences need a step well above float spacing). */
static void check_sinusoidal(int64_t N, embedding_case ec, double lo, double hi)
{
    char name[80];
    snprintf(name, sizeof name, "sinusoidal (%lld) -> (%lld,%d) base %g,"
             " s in [%g,%g)", (long long)N, (long long)N, ec.dim,
             (double)ec.base, lo, hi);
    const int64_t shape[1] = {N};
    bd_tensor *s = harness_tensor(1, shape, lo, hi, true);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(bd_sinusoidal(tp, s, ec.dim, ec.base, &y));
    CHECK(y->ndim == 2 && y->shape[0] == N && y->shape[1] == ec.dim,
          "%s: shape", name);
    const int half = ec.dim / 2;
    double *want = malloc((size_t)(N * ec.dim) * sizeof *want);
    for (int64_t n = 0; n < N; n++)
        for (int i = 0; i < half; i++) {
            const double arg = s->data[n] * pow(ec.base, -(double)i / half);
            want[n * ec.dim + i] = sin(arg);
            want[n * ec.dim + half + i] = cos(arg);
        }
    harness_compare(name, y->data, want, N * ec.dim, 1e-6);
    if (hi - lo < 10.0)
        harness_gradcheck(name, build_sinusoidal, &s, 1, &ec, 1e-3, 1e-2, 300);
    free(want);
    bd_tape_free(tp);
    bd_tensor_free(s);
}

static void test_sinusoidal(void)
{
    check_sinusoidal(1, (embedding_case){2, 10000.0f}, -3, 3);
    check_sinusoidal(3, (embedding_case){6, 10000.0f}, -3, 3);
    check_sinusoidal(5, (embedding_case){16, 100.0f}, -3, 3);
    check_sinusoidal(64, (embedding_case){128, 10000.0f}, 0, 1);
    check_sinusoidal(64, (embedding_case){128, 10000.0f}, 0, 1000);
}

static void test_errors(void)
{
    bd_tensor *s = bd_tensor_new4(4, 0, 0, 0, false);
    bd_tensor *s2 = bd_tensor_new4(4, 1, 0, 0, false);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_FAILS(bd_sinusoidal(tp, s, 7, 10000.0f, &y), BD_E_ARG,
                "sinusoidal: dim = 7, expected an even number >= 2");
    CHECK_FAILS(bd_sinusoidal(tp, s, 0, 10000.0f, &y), BD_E_ARG,
                "sinusoidal: dim = 0, expected an even number >= 2");
    CHECK_FAILS(bd_sinusoidal(tp, s, 8, 0.0f, &y), BD_E_ARG,
                "sinusoidal: base = 0, expected a finite value > 0");
    CHECK_FAILS(bd_sinusoidal(tp, s, 8, INFINITY, &y), BD_E_ARG,
                "sinusoidal: base = inf");
    CHECK_FAILS(bd_sinusoidal(tp, s2, 8, 10000.0f, &y), BD_E_ARG,
                "sinusoidal: s has shape (4, 1), expected 1 dims");
    CHECK_FAILS(bd_sinusoidal(tp, NULL, 8, 10000.0f, &y), BD_E_ARG,
                "sinusoidal: s is NULL");
    CHECK(y == NULL, "output untouched on error");
    bd_tape_free(tp);
    bd_tensor_free(s);
    bd_tensor_free(s2);
}

int main(void)
{
    RUN(test_sinusoidal);
    RUN(test_errors);
    return harness_summary();
}
