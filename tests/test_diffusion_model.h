/* Denoisers for the diffusion and training tests, until the plugins exist:
 *
 *   tiny    a small conditional MLP built from bd ops and parameters:
 *           h = silu(W1 flat(x_t) + b1 + Wt sin(t) + Wx sin(x) + Wy sin(y)),
 *           out = W2 h + b2; it offers h as the tap "hidden".
 *   oracle  knows the one training image x0 and returns the exact target
 *           for the prediction type (eps, x0 or v) at x_t.
 *   gauss   the exact eps predictor for data x0 ~ N(0, s^2 I):
 *           E[eps | x_t] = sqrt(1 - abar) x_t / (abar s^2 + 1 - abar). */
#ifndef BD_TEST_DIFFUSION_MODEL_H
#define BD_TEST_DIFFUSION_MODEL_H

#include "bd/diffusion.h"
#include "bd/ops.h"
#include "harness.h"

#define TINY_EMB 16

typedef struct tiny {
    bd_tensor *w1, *b1, *wt, *wx, *wy, *w2, *b2;
    int64_t    size, hidden;
    int        calls;     /* forward passes so far */
    int        nan_at;    /* make the output NaN on this call (0: never) */
} tiny;

/* s: the n values of column `col` of cond.   cond: (N, 2) -> s: (N) */
HARNESS_FN bd_tensor *tiny_column(bd_tape *tp, const bd_tensor *cond, int col)
{
    const int64_t n = cond->shape[0];
    bd_tensor *s = bd_tape_tensor(tp, 1, &n);
    for (int64_t i = 0; s && i < n; i++)
        s->data[i] = cond->data[2 * i + col];
    return s;
}

/* e: the sinusoidal encoding of s, projected.   s: (N) -> (N, hidden) */
HARNESS_FN bd_status tiny_embed(bd_tape *tp, bd_tensor *s, bd_tensor *w,
                                bd_tensor **e)
{
    bd_tensor *enc;
    if (!s)
        return BD_E_NOMEM;
    BD_TRY(bd_sinusoidal(tp, s, TINY_EMB, 10000.0f, &enc));
    return bd_linear(tp, enc, w, NULL, e);
}

/* x_t: (N, 1, S, S), t: (N), cond: (N, 2) -> out: (N, 1, S, S) */
HARNESS_FN bd_status tiny_forward(void *state, bd_tape *tp, bd_tensor *x_t,
                                  bd_tensor *t, bd_tensor *cond, bd_taps *taps,
                                  bd_tensor **out)
{
    tiny *m = state;
    const int64_t n = x_t->shape[0];
    const int64_t flat[2] = {n, m->size * m->size};
    bd_tensor *x, *h, *et, *ex, *ey, *y;
    BD_TRY(bd_reshape(tp, x_t, 2, flat, &x));
    BD_TRY(bd_linear(tp, x, m->w1, m->b1, &h));
    BD_TRY(tiny_embed(tp, t, m->wt, &et));
    BD_TRY(tiny_embed(tp, tiny_column(tp, cond, 0), m->wx, &ex));
    BD_TRY(tiny_embed(tp, tiny_column(tp, cond, 1), m->wy, &ey));
    BD_TRY(bd_add(tp, h, et, &h));
    BD_TRY(bd_add(tp, h, ex, &h));
    BD_TRY(bd_add(tp, h, ey, &h));
    BD_TRY(bd_silu(tp, h, &h));
    bd_taps_offer(taps, "hidden", h);
    BD_TRY(bd_linear(tp, h, m->w2, m->b2, &y));
    BD_TRY(bd_reshape(tp, y, x_t->ndim, x_t->shape, out));
    if (++m->calls == m->nan_at)
        (*out)->data[0] = NAN;
    return BD_OK;
}

HARNESS_FN bd_model *tiny_new(int64_t size, int64_t hidden, uint64_t seed)
{
    bd_model *m = calloc(1, sizeof *m);
    tiny *s = calloc(1, sizeof *s);
    m->params = bd_params_new();
    snprintf(m->arch, sizeof m->arch, "tiny");
    m->state = s;
    m->forward = tiny_forward;
    m->destroy = free;
    m->channels = 1;
    m->size = size;
    s->size = size;
    s->hidden = hidden;
    const int64_t pix = size * size;
    struct { const char *name; int ndim; int64_t shape[2]; bd_tensor **t; } p[] = {
        {"w1", 2, {hidden, pix}, &s->w1},         {"b1", 1, {hidden, 0}, &s->b1},
        {"wt", 2, {hidden, TINY_EMB}, &s->wt},    {"wx", 2, {hidden, TINY_EMB}, &s->wx},
        {"wy", 2, {hidden, TINY_EMB}, &s->wy},    {"w2", 2, {pix, hidden}, &s->w2},
        {"b2", 1, {pix, 0}, &s->b2},
    };
    bd_rng rng = bd_rng_make(seed, 0);
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        if (bd_params_add(m->params, p[i].name, p[i].ndim, p[i].shape, p[i].t)
            != BD_OK) {
            printf("tiny: %s\n", bd_last_error());
            exit(2);
        }
        int64_t fan_in = p[i].ndim == 2 ? p[i].shape[1] : hidden;
        bd_init_uniform(*p[i].t, &rng, 1.0f / sqrtf((float)fan_in));
    }
    return m;
}

/* ---- closed-form denoisers --------------------------------------------------- */

typedef struct oracle {
    const bd_schedule *s;
    const bd_tensor   *x0;  /* (1, C, H, W): the one image */
    double             var; /* gauss: the data variance s^2 */
} oracle;

/* The value a closed-form denoiser outputs at element i of an image at
 * noise level abar = ab, where x_t holds x. */
typedef double (*elementwise_fn)(const oracle *o, double ab, int64_t i, double x);

/* y = f(x_t) element by element, abar from each image's t. */
HARNESS_FN bd_status elementwise_forward(const oracle *o, bd_tape *tp,
                                         const bd_tensor *x_t, const bd_tensor *t,
                                         elementwise_fn f, bd_tensor **out)
{
    bd_tensor *y = bd_tape_tensor_like(tp, x_t);
    if (!y)
        return BD_E_NOMEM;
    const int64_t inner = bd_tensor_inner(x_t, 1);
    for (int64_t n = 0; n < x_t->shape[0]; n++) {
        const double ab = o->s->alphas_cumprod[(int64_t)t->data[n]];
        for (int64_t i = 0; i < inner; i++)
            y->data[n * inner + i] = (float)f(o, ab, i, x_t->data[n * inner + i]);
    }
    *out = y;
    return BD_OK;
}

HARNESS_FN double oracle_value(const oracle *o, double ab, int64_t i, double x)
{
    const double sa = sqrt(ab), sb = sqrt(1.0 - ab), x0 = o->x0->data[i];
    const double eps = (x - sa * x0) / sb;
    return o->s->spec.prediction == BD_PREDICT_X0 ? x0
         : o->s->spec.prediction == BD_PREDICT_V ? sa * eps - sb * x0
         : eps;
}

HARNESS_FN double gauss_value(const oracle *o, double ab, int64_t i, double x)
{
    (void)i;
    return sqrt(1.0 - ab) / (ab * o->var + 1.0 - ab) * x;
}

HARNESS_FN bd_status oracle_forward(void *state, bd_tape *tp, bd_tensor *x_t,
                                    bd_tensor *t, bd_tensor *cond, bd_taps *taps,
                                    bd_tensor **out)
{
    (void)cond;
    (void)taps;
    return elementwise_forward(state, tp, x_t, t, oracle_value, out);
}

HARNESS_FN bd_status gauss_forward(void *state, bd_tape *tp, bd_tensor *x_t,
                                   bd_tensor *t, bd_tensor *cond, bd_taps *taps,
                                   bd_tensor **out)
{
    (void)cond;
    (void)taps;
    return elementwise_forward(state, tp, x_t, t, gauss_value, out);
}

typedef bd_status (*closed_form_fn)(void *, bd_tape *, bd_tensor *, bd_tensor *,
                                   bd_tensor *, bd_taps *, bd_tensor **);

/* A model around a closed-form denoiser; its state is not owned. */
HARNESS_FN bd_model closed_form(closed_form_fn forward, oracle *o, int64_t size)
{
    bd_model m = {.state = o, .forward = forward, .channels = 1, .size = size};
    snprintf(m.arch, sizeof m.arch, "closed form");
    return m;
}

#endif
