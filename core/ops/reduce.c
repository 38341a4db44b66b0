/* Reductions to a scalar: sum, mean, and the MSE loss. Accumulated in double. */
#include "op.h"

static const int64_t SCALAR[1] = {1};

/* dx += dy * scale */
static void spread_backward(const bd_node *node)
{
    const float scale = *(const float *)node->ctx * node->out->grad[0];
    const bd_tensor *x = node->in[0];
    float *dx = bd_grad_of(x);
    for (int64_t i = 0; i < x->numel; i++)
        dx[i] += scale;
}

/* x: any -> y: (1), y = scale * sum(x) */
static bd_status scaled_sum(bd_tape *tp, const char *op, bd_tensor *x,
                            bool mean, bd_tensor **y)
{
    BD_TRY(bd_op_check_ndim(op, "x", x, 1, BD_MAX_DIMS));
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, 1, SCALAR, &out));
    float *scale = bd_tape_alloc(tp, sizeof *scale);
    if (!scale)
        return BD_E_NOMEM;
    *scale = mean ? 1.0f / (float)x->numel : 1.0f;
    double acc = 0.0;
    for (int64_t i = 0; i < x->numel; i++)
        acc += x->data[i];
    out->data[0] = (float)(acc * *scale);
    BD_TRY(bd_op_finish(tp, spread_backward, out, &x, 1, scale));
    *y = out;
    return BD_OK;
}

bd_status bd_sum(bd_tape *tp, bd_tensor *x, bd_tensor **y)
{
    return scaled_sum(tp, "sum", x, false, y);
}

bd_status bd_mean(bd_tape *tp, bd_tensor *x, bd_tensor **y)
{
    return scaled_sum(tp, "mean", x, true, y);
}

/* da += dy * 2 (a - b) / n,  db -= the same */
static void mse_backward(const bd_node *node)
{
    const bd_tensor *a = node->in[0], *b = node->in[1];
    const float g = 2.0f * node->out->grad[0] / (float)a->numel;
    float *da = bd_grad_of(a), *db = bd_grad_of(b);
    for (int64_t i = 0; i < a->numel; i++) {
        float d = g * (a->data[i] - b->data[i]);
        if (da)
            da[i] += d;
        if (db)
            db[i] -= d;
    }
}

/* a, b: same shape -> y: (1), y = mean((a - b)^2) */
bd_status bd_mse(bd_tape *tp, bd_tensor *a, bd_tensor *b, bd_tensor **y)
{
    BD_TRY(bd_op_check_ndim("mse", "a", a, 1, BD_MAX_DIMS));
    BD_TRY(bd_op_check_ndim("mse", "b", b, 1, BD_MAX_DIMS));
    BD_TRY(bd_op_check_same("mse", "a", a, "b", b));
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, 1, SCALAR, &out));
    double acc = 0.0;
    for (int64_t i = 0; i < a->numel; i++) {
        double d = (double)a->data[i] - b->data[i];
        acc += d * d;
    }
    out->data[0] = (float)(acc / (double)a->numel);
    bd_tensor *in[2] = {a, b};
    BD_TRY(bd_op_finish(tp, mse_backward, out, in, 2, NULL));
    *y = out;
    return BD_OK;
}
