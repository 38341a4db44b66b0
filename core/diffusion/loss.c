/* The forward process, regression targets, the training loss, and the
 * inverse: estimates of x0 and eps from a denoiser output. */
#include "bd/diffusion.h"

#include <math.h>

#include "bd/ops.h"

/* Fails unless t is a batch of timesteps in [0, T) for x's leading dim. */
static bd_status check_batch(const char *op, const bd_schedule *s,
                             const bd_tensor *x, const int64_t *t)
{
    if (!x || x->ndim < 2)
        return bd_fail(BD_E_ARG, "%s: x0 must be a batch (N, ...)", op);
    for (int64_t n = 0; n < x->shape[0]; n++)
        if (t[n] < 0 || t[n] >= s->T)
            return bd_fail(BD_E_ARG, "%s: t[%lld] = %lld, expected 0 to %lld",
                           op, (long long)n, (long long)t[n],
                           (long long)(s->T - 1));
    return BD_OK;
}

static bd_status check_like(const char *op, const char *arg,
                            const bd_tensor *x0, const bd_tensor *y)
{
    if (!y || !bd_shape_equal(x0, y)) {
        char a[64], b[64];
        return bd_fail(BD_E_ARG, "%s: %s has shape %s, expected x0's %s", op,
                       arg, y ? bd_shape_str(y, b, sizeof b) : "NULL",
                       bd_shape_str(x0, a, sizeof a));
    }
    return BD_OK;
}

/* y[n] = a(t_n) x0[n] + b(t_n) eps[n] for a per-sample coefficient pair. */
typedef void (*coef_fn)(const bd_schedule *s, bd_prediction pred, int64_t t,
                        double *a, double *b);

static void combine(const bd_schedule *s, bd_prediction pred, coef_fn coef,
                    const bd_tensor *x0, const int64_t *t, const bd_tensor *eps,
                    bd_tensor *y)
{
    const int64_t inner = bd_tensor_inner(x0, 1);
    for (int64_t n = 0; n < x0->shape[0]; n++) {
        double a, b;
        coef(s, pred, t[n], &a, &b);
        const float *xs = x0->data + n * inner, *es = eps->data + n * inner;
        float *ys = y->data + n * inner;
        for (int64_t i = 0; i < inner; i++)
            ys[i] = (float)(a * xs[i] + b * es[i]);
    }
}

/* x_t = sqrt(abar) x0 + sqrt(1 - abar) eps */
static void noising_coef(const bd_schedule *s, bd_prediction pred, int64_t t,
                         double *a, double *b)
{
    (void)pred;
    *a = sqrt(s->alphas_cumprod[t]);
    *b = sqrt(1.0 - s->alphas_cumprod[t]);
}

/* eps: (0, 1); x0: (1, 0); v: (-sqrt(1 - abar), sqrt(abar)) */
static void target_coef(const bd_schedule *s, bd_prediction pred, int64_t t,
                        double *a, double *b)
{
    switch (pred) {
    case BD_PREDICT_X0: *a = 1.0; *b = 0.0; break;
    case BD_PREDICT_V:
        *a = -sqrt(1.0 - s->alphas_cumprod[t]);
        *b = sqrt(s->alphas_cumprod[t]);
        break;
    default: *a = 0.0; *b = 1.0; break;
    }
}

bd_status bd_q_sample(const bd_schedule *s, const bd_tensor *x0,
                      const int64_t *t, const bd_tensor *eps, bd_tensor *x_t)
{
    BD_TRY(check_batch("q_sample", s, x0, t));
    BD_TRY(check_like("q_sample", "eps", x0, eps));
    BD_TRY(check_like("q_sample", "x_t", x0, x_t));
    combine(s, BD_PREDICT_EPS, noising_coef, x0, t, eps, x_t);
    return BD_OK;
}

bd_status bd_diffusion_target(const bd_schedule *s, bd_prediction pred,
                              const bd_tensor *x0, const int64_t *t,
                              const bd_tensor *eps, bd_tensor *target)
{
    BD_TRY(check_batch("diffusion target", s, x0, t));
    BD_TRY(check_like("diffusion target", "eps", x0, eps));
    BD_TRY(check_like("diffusion target", "target", x0, target));
    combine(s, pred, target_coef, x0, t, eps, target);
    return BD_OK;
}

/* x0, eps: (N, C, H, W), cond: (N, 2) -> loss: (1) */
bd_status bd_diffusion_loss(bd_tape *tp, bd_model *m, const bd_schedule *s,
                            bd_tensor *x0, bd_tensor *cond, const int64_t *t,
                            bd_tensor *eps, bd_taps *taps, bd_tensor **loss)
{
    BD_TRY(check_batch("diffusion loss", s, x0, t));
    const int64_t n = x0->shape[0];
    bd_tensor *x_t = bd_tape_tensor_like(tp, x0);
    bd_tensor *target = bd_tape_tensor_like(tp, x0);
    bd_tensor *tf = bd_tape_tensor(tp, 1, &n);
    if (!x_t || !target || !tf)
        return BD_E_NOMEM;
    BD_TRY(bd_q_sample(s, x0, t, eps, x_t));
    BD_TRY(bd_diffusion_target(s, s->spec.prediction, x0, t, eps, target));
    for (int64_t i = 0; i < n; i++)
        tf->data[i] = (float)t[i];
    bd_tensor *out = NULL;
    BD_TRY(m->forward(m->state, tp, x_t, tf, cond, taps, &out));
    if (!out || !bd_shape_equal(out, x0)) {
        char a[64], b[64];
        return bd_fail(BD_E_PLUGIN, "diffusion loss: denoiser '%s' returned"
                       " shape %s for input %s", m->arch,
                       out ? bd_shape_str(out, a, sizeof a) : "NULL",
                       bd_shape_str(x0, b, sizeof b));
    }
    return bd_mse(tp, out, target, loss);
}

/* From the output at t: x0 and eps estimates, per element in double. */
void bd_diffusion_estimates(const bd_schedule *s, const float *x_t,
                            const float *out, int64_t t, int64_t n, bool clip,
                            float *x0, float *eps)
{
    const double ab = s->alphas_cumprod[t];
    const double sa = sqrt(ab), sb = sqrt(1.0 - ab);
    for (int64_t i = 0; i < n; i++) {
        double x = x_t[i], o = out[i], x0_hat;
        switch (s->spec.prediction) {
        case BD_PREDICT_X0: x0_hat = o; break;
        case BD_PREDICT_V:  x0_hat = sa * x - sb * o; break;
        default:            x0_hat = (x - sb * o) / sa; break;
        }
        double eps_hat = s->spec.prediction == BD_PREDICT_EPS
                       ? o : (x - sa * x0_hat) / sb;
        if (clip && (x0_hat > 1.0 || x0_hat < -1.0)) {
            x0_hat = fmax(-1.0, fmin(1.0, x0_hat));
            eps_hat = (x - sa * x0_hat) / sb;
        }
        if (x0)
            x0[i] = (float)x0_hat;
        if (eps)
            eps[i] = (float)eps_hat;
    }
}
