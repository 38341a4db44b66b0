/* Sinusoidal embedding of a scalar per sample (timesteps, coordinates). */
#include <math.h>

#include "op.h"

/* Frequency i of `half`: base^(-i / half) */
static double frequency(double base, int64_t i, int64_t half)
{
    return pow(base, -(double)i / (double)half);
}

/* ds[n] += sum_i f_i (dy[n, i] cos(s f_i) - dy[n, half + i] sin(s f_i)) */
static void sinusoidal_backward(const bd_node *node)
{
    const double base = *(const double *)node->ctx;
    const bd_tensor *s = node->in[0];
    const int64_t half = node->out->shape[1] / 2;
    float *ds = bd_grad_of(s);
    for (int64_t n = 0; n < s->numel; n++) {
        const float *dy = node->out->grad + n * 2 * half;
        double acc = 0.0;
        for (int64_t i = 0; i < half; i++) {
            const double f = frequency(base, i, half), arg = s->data[n] * f;
            acc += f * (dy[i] * cos(arg) - dy[half + i] * sin(arg));
        }
        ds[n] += (float)acc;
    }
}

/* s: (N) -> y: (N, E), y[n, i] = sin(s f_i), y[n, E/2 + i] = cos(s f_i) */
bd_status bd_sinusoidal(bd_tape *tp, bd_tensor *s, int dim, float base,
                        bd_tensor **y)
{
    BD_TRY(bd_op_check_ndim("sinusoidal", "s", s, 1, 1));
    if (dim < 2 || dim % 2 != 0)
        return bd_fail(BD_E_ARG, "sinusoidal: dim = %d, expected an even"
                       " number >= 2", dim);
    if (!(base > 0.0f) || isinf(base))
        return bd_fail(BD_E_ARG, "sinusoidal: base = %g, expected a finite"
                       " value > 0", (double)base);
    const int64_t N = s->shape[0], half = dim / 2;
    const int64_t shape[2] = {N, dim};
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, 2, shape, &out));
    for (int64_t i = 0; i < half; i++) {
        const double f = frequency(base, i, half);
        for (int64_t n = 0; n < N; n++) {
            const double arg = s->data[n] * f;
            out->data[n * dim + i] = (float)sin(arg);
            out->data[n * dim + half + i] = (float)cos(arg);
        }
    }
    double *saved_base = NULL;
    if (bd_tape_needs_node(tp, &s, 1)) {
        saved_base = bd_tape_alloc(tp, sizeof *saved_base);
        if (!saved_base)
            return BD_E_NOMEM;
        *saved_base = base;
    }
    BD_TRY(bd_op_finish(tp, sinusoidal_backward, out, &s, 1, saved_base));
    *y = out;
    return BD_OK;
}
