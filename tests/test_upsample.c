/* upsample2x, nearest and bilinear (align_corners = true): naive double
 * references, PyTorch's documented example, gradients, errors. */
#include "harness.h"

static bd_status build_upsample(bd_tape *tp, bd_tensor **in, void *ud,
                                bd_tensor **y)
{
    return bd_upsample2x(tp, in[0], *(const bd_upsample_mode *)ud, y);
}

/* Source position of output o on an axis of n inputs: o (n - 1) / (2n - 1). */
static void source(int64_t o, int64_t n, int64_t *lo, int64_t *hi, double *w)
{
    double s = (double)o * (double)(n - 1) / (double)(2 * n - 1);
    *lo = (int64_t)floor(s);
    *hi = *lo + 1 < n ? *lo + 1 : *lo;
    *w = s - (double)*lo;
}

static void upsample_ref(const bd_tensor *x, bd_upsample_mode mode, double *want)
{
    const int64_t P = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    for (int64_t p = 0; p < P; p++)
        for (int64_t oy = 0; oy < 2 * H; oy++)
            for (int64_t ox = 0; ox < 2 * W; ox++) {
                const float *xp = x->data + p * H * W;
                double v;
                if (mode == BD_UPSAMPLE_NEAREST) {
                    v = xp[(oy / 2) * W + ox / 2];
                } else {
                    int64_t y0, y1, x0, x1;
                    double wy, wx;
                    source(oy, H, &y0, &y1, &wy);
                    source(ox, W, &x0, &x1, &wx);
                    double top = (1 - wx) * xp[y0 * W + x0] + wx * xp[y0 * W + x1];
                    double bot = (1 - wx) * xp[y1 * W + x0] + wx * xp[y1 * W + x1];
                    v = (1 - wy) * top + wy * bot;
                }
                want[(p * 2 * H + oy) * 2 * W + ox] = v;
            }
}

static void check_upsample(bd_upsample_mode mode, const int64_t *shape)
{
    bd_tensor *x = harness_tensor(4, shape, -1, 1, true);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(bd_upsample2x(tp, x, mode, &y));
    char name[96], s[64];
    snprintf(name, sizeof name, "upsample2x %s %s",
             mode == BD_UPSAMPLE_NEAREST ? "nearest" : "bilinear",
             bd_shape_str(x, s, sizeof s));
    CHECK(y->shape[0] == shape[0] && y->shape[1] == shape[1] &&
          y->shape[2] == 2 * shape[2] && y->shape[3] == 2 * shape[3],
          "%s: output shape", name);
    double *want = malloc((size_t)y->numel * sizeof *want);
    upsample_ref(x, mode, want);
    harness_compare(name, y->data, want, y->numel, 1e-6);
    harness_gradcheck(name, build_upsample, &x, 1, &mode, 1e-2, 1e-3, 300);
    free(want);
    bd_tape_free(tp);
    bd_tensor_free(x);
}

static void test_upsample(void)
{
    const int64_t shapes[6][4] = {
        {1, 3, 5, 7}, {2, 64, 16, 16}, {2, 64, 4, 4},
        {1, 2, 1, 5}, {1, 2, 4, 1},   {1, 1, 1, 1},
    };
    for (int i = 0; i < 6; i++) {
        check_upsample(BD_UPSAMPLE_NEAREST, shapes[i]);
        check_upsample(BD_UPSAMPLE_BILINEAR, shapes[i]);
    }
}

/* The example in PyTorch's nn.Upsample documentation:
 * [[1, 2], [3, 4]], bilinear, align_corners=True. */
static void test_bilinear_known_answer(void)
{
    const int64_t s[4] = {1, 1, 2, 2};
    bd_tensor *x = bd_tensor_new(4, s, false);
    for (int i = 0; i < 4; i++)
        x->data[i] = (float)(i + 1);
    const double want[16] = {
        1.0000, 1.3333, 1.6667, 2.0000, 1.6667, 2.0000, 2.3333, 2.6667,
        2.3333, 2.6667, 3.0000, 3.3333, 3.0000, 3.3333, 3.6667, 4.0000,
    };
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(bd_upsample2x(tp, x, BD_UPSAMPLE_BILINEAR, &y));
    harness_compare("bilinear, PyTorch's example (4 digits)", y->data, want, 16,
                    1e-4);
    bd_tape_free(tp);
    bd_tensor_free(x);
}

static void test_upsample_errors(void)
{
    const int64_t s3[3] = {1, 3, 5}, s4[4] = {1, 3, 5, 7};
    bd_tensor *x3 = harness_tensor(3, s3, -1, 1, false);
    bd_tensor *x = harness_tensor(4, s4, -1, 1, false);
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_FAILS(bd_upsample2x(tp, x3, BD_UPSAMPLE_NEAREST, &y), BD_E_ARG,
                "upsample2x: x has shape (1, 3, 5), expected 4 dims");
    CHECK_FAILS(bd_upsample2x(tp, NULL, BD_UPSAMPLE_BILINEAR, &y), BD_E_ARG,
                "upsample2x: x is NULL");
    CHECK_FAILS(bd_upsample2x(tp, x, (bd_upsample_mode)7, &y), BD_E_ARG,
                "upsample2x: mode is 7, expected BD_UPSAMPLE_NEAREST or"
                " BD_UPSAMPLE_BILINEAR");
    CHECK(y == NULL, "a failed upsample leaves y untouched");
    bd_tape_free(tp);
    bd_tensor_free(x3);
    bd_tensor_free(x);
}

int main(void)
{
    RUN(test_upsample);
    RUN(test_bilinear_known_answer);
    RUN(test_upsample_errors);
    return harness_summary();
}
