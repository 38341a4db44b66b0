/* Tiny test harness: checks, deterministic test data, naive-vs-op
 * comparison, and a finite-difference gradient check over the tape.
 *
 * A test file defines test functions, calls them from main through RUN(),
 * and returns harness_summary(), which prints "N passed, N failed". */
#ifndef BD_TEST_HARNESS_H
#define BD_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bd/ops.h"

#define HARNESS_FN static __attribute__((unused))

static int harness_passed, harness_failed;

#define CHECK(cond, ...) do { \
    if (cond) { harness_passed++; } else { harness_failed++; \
        printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); \
        printf("\n"); } } while (0)

/* A call that must succeed; prints bd_last_error() otherwise. */
#define CHECK_OK(expr) do { bd_status s_ = (expr); \
    CHECK(s_ == BD_OK, "%s -> %s: %s", #expr, bd_status_name(s_), \
          bd_last_error()); } while (0)

/* A call that must fail with status st and a message containing `needle`. */
#define CHECK_FAILS(expr, st, needle) do { bd_clear_error(); \
    bd_status s_ = (expr); \
    CHECK(s_ == (st) && strstr(bd_last_error(), needle) != NULL, \
          "%s -> %s \"%s\", expected %s containing \"%s\"", #expr, \
          bd_status_name(s_), bd_last_error(), bd_status_name(st), needle); \
    } while (0)

#define RUN(fn) do { printf("-- %s\n", #fn); fn(); } while (0)

HARNESS_FN int harness_summary(void)
{
    printf("%d passed, %d failed\n", harness_passed, harness_failed);
    return harness_failed ? 1 : 0;
}

/* Deterministic test data (splitmix64), independent of bd's own RNG. */
static unsigned long long harness_state = 0x9E3779B97F4A7C15ull;
HARNESS_FN double harness_uniform(void) /* [0, 1) */
{
    unsigned long long z = (harness_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

HARNESS_FN void harness_fill(bd_tensor *t, double lo, double hi)
{
    for (int64_t i = 0; i < t->numel; i++)
        t->data[i] = (float)(lo + (hi - lo) * harness_uniform());
}

/* Heap tensor with uniform data in [lo, hi). */
HARNESS_FN bd_tensor *harness_tensor(int ndim, const int64_t *shape, double lo,
                                 double hi, bool requires_grad)
{
    bd_tensor *t = bd_tensor_new(ndim, shape, requires_grad);
    if (!t) {
        printf("harness: %s\n", bd_last_error());
        exit(2);
    }
    harness_fill(t, lo, hi);
    return t;
}

/* Max |got - want| / max(1, max |want|) over n values; prints and checks it
 * is below tol. `want` is a naive double-precision reference. */
HARNESS_FN double harness_compare(const char *what, const float *got,
                              const double *want, int64_t n, double tol)
{
    double err = 0.0, scale = 1.0;
    for (int64_t i = 0; i < n; i++)
        if (fabs(want[i]) > scale)
            scale = fabs(want[i]);
    for (int64_t i = 0; i < n; i++)
        if (fabs(got[i] - want[i]) > err)
            err = fabs(got[i] - want[i]);
    err /= scale;
    printf("   %-40s forward rel err %.2e\n", what, err);
    CHECK(err < tol, "%s: forward error %.3e >= %.1e", what, err, tol);
    return err;
}

/* ---- gradient check ------------------------------------------------------ */

/* Builds the op's output from the inputs on the tape. */
typedef bd_status (*harness_build_fn)(bd_tape *tp, bd_tensor **in, void *ud,
                                      bd_tensor **y);

/* loss = sum_i y_i r_i with fixed pseudo-random weights r_i in [-1, 1]. */
HARNESS_FN double harness_weight(int64_t i)
{
    unsigned long long z = (unsigned long long)i * 0x9E3779B97F4A7C15ull + 7;
    z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9ull;
    return (double)((z ^ (z >> 29)) >> 11) / 4503599627370496.0 - 1.0;
}

HARNESS_FN double harness_loss(const bd_tensor *y)
{
    double acc = 0.0;
    for (int64_t i = 0; i < y->numel; i++)
        acc += y->data[i] * harness_weight(i);
    return acc;
}

HARNESS_FN void harness_seed_backward(const bd_node *node)
{
    bd_tensor *y = node->in[0];
    const float g = node->out->grad[0];
    for (int64_t i = 0; i < y->numel; i++)
        y->grad[i] += g * (float)harness_weight(i);
}

HARNESS_FN double harness_eval(bd_tape *tp, harness_build_fn build, bd_tensor **in,
                           void *ud)
{
    bd_tape_reset(tp);
    bool was = bd_tape_set_grad(tp, false);
    bd_tensor *y = NULL;
    bd_status s = build(tp, in, ud, &y);
    bd_tape_set_grad(tp, was);
    if (s != BD_OK) {
        printf("harness: forward failed: %s\n", bd_last_error());
        exit(2);
    }
    return harness_loss(y);
}

/* Compares the tape's gradient of every input that requires grad with
 * central differences (step eps, in double on the loss), over at most
 * max_probe evenly spread elements per input. Prints the worst relative
 * error per input and checks it is below tol. Returns the worst error. */
HARNESS_FN double harness_gradcheck(const char *what, harness_build_fn build,
                                bd_tensor **in, int n_in, void *ud, double eps,
                                double tol, int64_t max_probe)
{
    bd_tape *tp = bd_tape_new();
    for (int k = 0; k < n_in; k++)
        if (in[k])
            bd_tensor_zero_grad(in[k]);
    bd_tensor *y = NULL;
    CHECK_OK(build(tp, in, ud, &y));
    if (!y) {
        bd_tape_free(tp);
        return INFINITY;
    }
    static const int64_t one[1] = {1};
    bd_tensor *loss = bd_tape_tensor(tp, 1, one);
    loss->data[0] = (float)harness_loss(y);
    if (bd_tape_needs_node(tp, &y, 1))
        bd_tape_record(tp, harness_seed_backward, loss, &y, 1, NULL);
    CHECK_OK(bd_tape_backward(tp, loss));

    double worst = 0.0;
    for (int k = 0; k < n_in; k++) {
        bd_tensor *x = in[k];
        if (!x || !(x->flags & BD_TENSOR_REQUIRES_GRAD))
            continue;
        int64_t stride = x->numel > max_probe ? x->numel / max_probe : 1;
        double err = 0.0, scale = 1e-3;
        for (int64_t i = 0; i < x->numel; i += stride)
            if (fabs(x->grad[i]) > scale)
                scale = fabs(x->grad[i]);
        for (int64_t i = 0; i < x->numel; i += stride) {
            float keep = x->data[i];
            x->data[i] = (float)(keep + eps);
            double up = harness_eval(tp, build, in, ud);
            x->data[i] = (float)(keep - eps);
            double down = harness_eval(tp, build, in, ud);
            x->data[i] = keep;
            double numeric = (up - down) / (2.0 * eps);
            double e = fabs(numeric - x->grad[i]) / scale;
            if (e > err)
                err = e;
        }
        printf("   %-40s grad of input %d: rel err %.2e\n", what, k, err);
        CHECK(err < tol, "%s: gradient of input %d off by %.3e (tol %.1e)",
              what, k, err, tol);
        if (err > worst)
            worst = err;
    }
    bd_tape_free(tp);
    return worst;
}

#endif
