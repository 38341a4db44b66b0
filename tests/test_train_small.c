/* End to end: ops, tape, parameters and AdamW train two small nets on
 * synthetic regressions, and the loss must fall by more than 100x.
 *   MLP:      y = sin(3 x0) + x1^2 on 256 points, 2 -> 64 -> 64 -> 1
 *   conv net: 8x8 images -> their 3x3 Gaussian blur, conv3x3 -> silu -> conv3x3 */
#include <time.h>

#include "harness.h"
#include "bd/nn.h"

typedef struct net {
    bd_params *params;
    bd_tensor *x, *target; /* the whole data set: one full batch */
    /* prediction for x, on the tape */
    bd_status (*forward)(struct net *net, bd_tape *tp, bd_tensor **y);
} net;

/* PyTorch's default init for linear and conv layers: weight and bias in
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
static bd_tensor *layer_param(bd_params *p, const char *name, int ndim,
                              const int64_t *shape, int64_t fan_in, bd_rng *rng)
{
    bd_tensor *t = NULL;
    CHECK_OK(bd_params_add(p, name, ndim, shape, &t));
    if (t)
        bd_init_uniform(t, rng, 1.0f / sqrtf((float)fan_in));
    return t;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Full-batch AdamW with a cosine learning rate from lr to 0. Returns the
 * ratio of the first loss to the last. */
static double train(const char *what, net *n, int steps, float lr)
{
    bd_adamw_config cfg = bd_adamw_defaults();
    cfg.lr = lr;
    cfg.weight_decay = 0.0f;
    bd_adamw *opt = NULL;
    CHECK_OK(bd_adamw_new(n->params, cfg, &opt));
    bd_tape *tp = bd_tape_new();
    double first = NAN, last = NAN, t0 = seconds();
    for (int s = 0; s < steps && opt; s++) {
        bd_tape_reset(tp);
        bd_params_zero_grad(n->params);
        bd_tensor *y = NULL, *loss = NULL;
        bd_status st = n->forward(n, tp, &y);
        if (st == BD_OK)
            st = bd_mse(tp, y, n->target, &loss);
        if (st == BD_OK)
            st = bd_tape_backward(tp, loss);
        if (st == BD_OK)
            st = bd_adamw_step(opt, lr * 0.5f * (1.0f + cosf((float)M_PI * s / steps)),
                               NULL);
        if (st != BD_OK) {
            CHECK(false, "%s: step %d failed: %s", what, s, bd_last_error());
            break;
        }
        if (s == 0)
            first = loss->data[0];
        last = loss->data[0];
    }
    double ratio = first / last;
    printf("   %-10s %d steps in %.2f s: loss %.4g -> %.4g, fell %.0fx\n", what,
           steps, seconds() - t0, first, last, ratio);
    CHECK(ratio > 100.0, "%s: loss fell only %.1fx (%.4g -> %.4g), expected > 100x",
          what, ratio, first, last);
    bd_tape_free(tp);
    bd_adamw_free(opt);
    return ratio;
}

/* ---- MLP: x (256, 2) -> linear 64 -> gelu -> linear 64 -> silu -> linear 1 */

typedef struct mlp {
    net base;
    bd_tensor *w[3], *b[3];
} mlp;

static bd_status mlp_forward(net *n, bd_tape *tp, bd_tensor **y)
{
    mlp *m = (mlp *)n;
    bd_tensor *h = n->x;
    BD_TRY(bd_linear(tp, h, m->w[0], m->b[0], &h));
    BD_TRY(bd_gelu(tp, h, &h));
    BD_TRY(bd_linear(tp, h, m->w[1], m->b[1], &h));
    BD_TRY(bd_silu(tp, h, &h));
    return bd_linear(tp, h, m->w[2], m->b[2], y);
}

static void test_mlp(void)
{
    enum { POINTS = 256, HIDDEN = 64 };
    const int64_t widths[4] = {2, HIDDEN, HIDDEN, 1};
    mlp m = {.base = {.params = bd_params_new(), .forward = mlp_forward}};
    bd_rng rng = bd_rng_make(1, 0);
    char name[32];
    for (int l = 0; l < 3; l++) {
        const int64_t ws[2] = {widths[l + 1], widths[l]}, bs[1] = {widths[l + 1]};
        snprintf(name, sizeof name, "fc%d.weight", l);
        m.w[l] = layer_param(m.base.params, name, 2, ws, widths[l], &rng);
        snprintf(name, sizeof name, "fc%d.bias", l);
        m.b[l] = layer_param(m.base.params, name, 1, bs, widths[l], &rng);
    }
    m.base.x = bd_tensor_new4(POINTS, 2, 0, 0, false);
    m.base.target = bd_tensor_new4(POINTS, 1, 0, 0, false);
    bd_rng data = bd_rng_make(1, 1);
    bd_rng_fill_uniform(&data, m.base.x->data, 2 * POINTS, -1.0f, 1.0f);
    for (int i = 0; i < POINTS; i++) {
        float x0 = m.base.x->data[2 * i], x1 = m.base.x->data[2 * i + 1];
        m.base.target->data[i] = sinf(3.0f * x0) + x1 * x1;
    }
    train("mlp", &m.base, 600, 1e-2f);
    bd_tensor_free(m.base.x);
    bd_tensor_free(m.base.target);
    bd_params_free(m.base.params);
}

/* ---- conv net: x (16, 1, 8, 8) -> conv 3x3 16 -> silu -> conv 3x3 1 ------- */

typedef struct convnet {
    net base;
    bd_tensor *w[2], *b[2];
} convnet;

static bd_status convnet_forward(net *n, bd_tape *tp, bd_tensor **y)
{
    convnet *c = (convnet *)n;
    bd_tensor *h = NULL;
    BD_TRY(bd_conv2d(tp, n->x, c->w[0], c->b[0], 1, 1, &h));
    BD_TRY(bd_silu(tp, h, &h));
    return bd_conv2d(tp, h, c->w[1], c->b[1], 1, 1, y);
}

/* target = x convolved with [1 2 1]^T [1 2 1] / 16, zero padding */
static void blur(const bd_tensor *x, bd_tensor *out)
{
    static const float k[3] = {0.25f, 0.5f, 0.25f};
    const int64_t N = x->shape[0], H = x->shape[2], W = x->shape[3];
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < H; i++)
            for (int64_t j = 0; j < W; j++) {
                float acc = 0.0f;
                for (int di = -1; di <= 1; di++)
                    for (int dj = -1; dj <= 1; dj++) {
                        int64_t a = i + di, b = j + dj;
                        if (a >= 0 && a < H && b >= 0 && b < W)
                            acc += k[di + 1] * k[dj + 1] * x->data[(n * H + a) * W + b];
                    }
                out->data[(n * H + i) * W + j] = acc;
            }
}

static void test_convnet(void)
{
    enum { IMAGES = 16, HIDDEN = 16, SIZE = 8 };
    convnet c = {.base = {.params = bd_params_new(), .forward = convnet_forward}};
    bd_rng rng = bd_rng_make(2, 0);
    const int64_t w0[4] = {HIDDEN, 1, 3, 3}, b0[1] = {HIDDEN};
    const int64_t w1[4] = {1, HIDDEN, 3, 3}, b1[1] = {1};
    c.w[0] = layer_param(c.base.params, "conv0.weight", 4, w0, 9, &rng);
    c.b[0] = layer_param(c.base.params, "conv0.bias", 1, b0, 9, &rng);
    c.w[1] = layer_param(c.base.params, "conv1.weight", 4, w1, 9 * HIDDEN, &rng);
    c.b[1] = layer_param(c.base.params, "conv1.bias", 1, b1, 9 * HIDDEN, &rng);
    c.base.x = bd_tensor_new4(IMAGES, 1, SIZE, SIZE, false);
    c.base.target = bd_tensor_new4(IMAGES, 1, SIZE, SIZE, false);
    bd_rng data = bd_rng_make(2, 1);
    bd_rng_fill_uniform(&data, c.base.x->data, c.base.x->numel, -1.0f, 1.0f);
    blur(c.base.x, c.base.target);
    train("conv net", &c.base, 400, 1e-2f);
    bd_tensor_free(c.base.x);
    bd_tensor_free(c.base.target);
    bd_params_free(c.base.params);
}

int main(void)
{
    RUN(test_mlp);
    RUN(test_convnet);
    return harness_summary();
}
