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
    float *dy = bd_grad_of(y);
    for (int64_t i = 0; i < y->numel; i++)
        dy[i] += g * (float)harness_weight(i);
}

/* The op's output for the inputs as they are now, copied into out (n
 * values; the same n every call). */
HARNESS_FN void harness_eval(bd_tape *tp, harness_build_fn build, bd_tensor **in,
                             void *ud, float *out, int64_t n)
{
    bd_tape_reset(tp);
    bool was = bd_tape_set_grad(tp, false);
    bd_tensor *y = NULL;
    bd_status s = build(tp, in, ud, &y);
    bd_tape_set_grad(tp, was);
    if (s != BD_OK || y->numel != n) {
        printf("harness: forward failed: %s\n", s != BD_OK ? bd_last_error()
               : "the output changed size");
        exit(2);
    }
    memcpy(out, y->data, (size_t)n * sizeof *out);
}

/* A central difference of the loss from the outputs at x + eps and
 * x - eps, in double, and its rounding noise: the outputs it moves carry a
 * few float32 ulps each (the others are the same bits both times and
 * cancel), and a move below an ulp of the largest output is not seen, so
 * it is off by up to 4 FLT_EPSILON (sum over the moved |y_j r_j| + max
 * |y_j r_j|) / (2 eps), whatever the gradient. */
HARNESS_FN double harness_difference(const float *up, const float *down,
                                     int64_t n, double eps, double *noise)
{
    double diff = 0.0, mass = 0.0, largest = 0.0;
    for (int64_t j = 0; j < n; j++) {
        const double r = fabs(harness_weight(j));
        largest = fmax(largest, fabs(up[j]) * r);
        if (up[j] == down[j])
            continue;
        diff += ((double)up[j] - down[j]) * harness_weight(j);
        mass += (fabs(up[j]) + fabs(down[j])) * r;
    }
    *noise = 4.0 * 1.1920928955078125e-07 * (mass + largest) / (2.0 * eps);
    return diff / (2.0 * eps);
}

/* The worst element of one input's check. */
typedef struct harness_worst {
    double  err, analytic, numeric, floor;
    int64_t at;
} harness_worst;

/* Check x's gradient at every stride-th element against central
 * differences: each element's error is relative to its own size,
 * |numeric - analytic| / max(|numeric|, |analytic|, floor), where the
 * absolute floor is that difference's rounding noise over tol. */
HARNESS_FN harness_worst harness_check_input(bd_tape *tp, harness_build_fn build,
                                            bd_tensor **in, void *ud,
                                            bd_tensor *x, int64_t stride,
                                            double eps, double tol,
                                            float *up, float *down, int64_t n)
{
    harness_worst w = {0};
    for (int64_t i = 0; i < x->numel; i += stride) {
        float keep = x->data[i];
        x->data[i] = (float)(keep + eps);
        harness_eval(tp, build, in, ud, up, n);
        x->data[i] = (float)(keep - eps);
        harness_eval(tp, build, in, ud, down, n);
        x->data[i] = keep;
        double noise, numeric = harness_difference(up, down, n, eps, &noise);
        double analytic = x->grad[i], floor = noise / tol;
        double size = fmax(fmax(fabs(numeric), fabs(analytic)), floor);
        double e = size > 0 ? fabs(numeric - analytic) / size : 0.0;
        if (e >= w.err)
            w = (harness_worst){e, analytic, numeric, floor, i};
    }
    return w;
}

/* Compares the tape's gradient of every input that requires grad with
 * central differences (step eps), over at most max_probe evenly spread
 * elements per input, each relative to its own size down to what the
 * difference resolves (harness_check_input). Prints the worst per input
 * and where it is, and checks it is below tol. Returns the worst error. */
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
    const int64_t n = y->numel;
    static const int64_t one[1] = {1};
    bd_tensor *loss = bd_tape_tensor(tp, 1, one);
    loss->data[0] = (float)harness_loss(y);
    if (bd_tape_needs_node(tp, &y, 1))
        bd_tape_record(tp, harness_seed_backward, loss, &y, 1, NULL);
    CHECK_OK(bd_tape_backward(tp, loss));

    float *up = malloc((size_t)n * sizeof *up), *down = malloc((size_t)n * sizeof *down);
    if (!up || !down)
        exit(2);
    double worst = 0.0;
    for (int k = 0; k < n_in; k++) {
        bd_tensor *x = in[k];
        if (!x || !(x->flags & BD_TENSOR_REQUIRES_GRAD))
            continue;
        int64_t stride = x->numel > max_probe ? x->numel / max_probe : 1;
        harness_worst w = harness_check_input(tp, build, in, ud, x, stride, eps,
                                              tol, up, down, n);
        printf("   %-40s grad of input %d: rel err %.2e (element %lld: %.4g"
               " vs %.4g numeric; floor %.1e)\n", what, k, w.err,
               (long long)w.at, w.analytic, w.numeric, w.floor);
        CHECK(w.err < tol, "%s: gradient of input %d off by %.3e (tol %.1e) at"
              " element %lld: %.6g, numeric %.6g", what, k, w.err, tol,
              (long long)w.at, w.analytic, w.numeric);
        if (w.err > worst)
            worst = w.err;
    }
    free(up);
    free(down);
    bd_tape_free(tp);
    return worst;
}

#endif
