/* Elementwise activations: SiLU and exact GELU. */
#include <math.h>

#include "op.h"

typedef struct activation {
    const char *name;
    float (*forward)(float x);
    float (*derivative)(float x); /* dy/dx at x */
} activation;

/* silu: y = x s,  s = sigmoid(x);  dy/dx = s (1 + x (1 - s)) */
static float silu_f(float x) { return x / (1.0f + expf(-x)); }
static float silu_d(float x)
{
    float s = 1.0f / (1.0f + expf(-x));
    return s * (1.0f + x * (1.0f - s));
}

/* gelu: y = x Phi(x);  dy/dx = Phi(x) + x phi(x) */
static float gelu_f(float x) { return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2)); }
static float gelu_d(float x)
{
    float cdf = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
    float pdf = expf(-0.5f * x * x) * (float)(0.5 * M_2_SQRTPI * M_SQRT1_2);
    return cdf + x * pdf;
}

static const activation SILU = {"silu", silu_f, silu_d};
static const activation GELU = {"gelu", gelu_f, gelu_d};

/* dx += dy * f'(x) */
static void activation_backward(const bd_node *node)
{
    const activation *act = node->ctx;
    const bd_tensor *x = node->in[0];
    const float *dy = node->out->grad;
    float *dx = bd_grad_of(x);
    for (int64_t i = 0; i < x->numel; i++)
        dx[i] += dy[i] * act->derivative(x->data[i]);
}

/* x: any -> y: like x */
static bd_status activation_forward(bd_tape *tp, const activation *act,
                                    bd_tensor *x, bd_tensor **y)
{
    BD_TRY(bd_op_check_ndim(act->name, "x", x, 1, BD_MAX_DIMS));
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, x->ndim, x->shape, &out));
    for (int64_t i = 0; i < x->numel; i++)
        out->data[i] = act->forward(x->data[i]);
    BD_TRY(bd_op_finish(tp, activation_backward, out, &x, 1, (void *)act));
    *y = out;
    return BD_OK;
}

bd_status bd_silu(bd_tape *tp, bd_tensor *x, bd_tensor **y)
{
    return activation_forward(tp, &SILU, x, y);
}

bd_status bd_gelu(bd_tape *tp, bd_tensor *x, bd_tensor **y)
{
    return activation_forward(tp, &GELU, x, y);
}
