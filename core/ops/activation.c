/* Elementwise activations: SiLU and exact GELU.
 *
 * Each is a pair of array kernels that vectorise (fastmath.h), run over
 * chunks of the tensor on bd's threads. */
#include "bd/parallel.h"
#include "fastmath.h"
#include "op.h"

typedef struct activation {
    const char *name;
    void (*forward)(const float *x, float *y, int64_t n);
    /* dx = (or += when accumulate) dy f'(x) */
    void (*backward)(const float *x, const float *dy, float *dx, int64_t n,
                     bool accumulate);
} activation;

/* Elements per chunk handed to a thread */
enum { CHUNK = 16384 };

/* sigmoid(x) from e = e^-|x| <= 1, so that nothing overflows; 0 below
 * -87, where e^x is under the smallest normal float (x e^x would not be). */
static inline float sigmoid(float x)
{
    const float e = bd_exp_nonpositive(bd_clamp_exp_arg(-fabsf(x)));
    const float r = 1.0f / (1.0f + e);
    return x >= 0.0f ? r : x < -87.0f ? 0.0f : e * r;
}

/* silu: y = x s,  s = sigmoid(x) */
BD_VECTOR_CLONES
static void silu_forward(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * sigmoid(x[i]);
}

/* silu'(x) = s (1 + x (1 - s)) */
static inline float silu_grad(float x)
{
    const float s = sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
}

/* dx (+)= dy silu'(x) */
BD_VECTOR_CLONES
static void silu_backward(const float *x, const float *dy, float *dx, int64_t n,
                          bool accumulate)
{
    if (accumulate)
        for (int64_t i = 0; i < n; i++)
            dx[i] += dy[i] * silu_grad(x[i]);
    else
        for (int64_t i = 0; i < n; i++)
            dx[i] = dy[i] * silu_grad(x[i]);
}

/* gelu: y = x Phi(x) */
BD_VECTOR_CLONES
static void gelu_forward(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * bd_normal_cdf(x[i]);
}

/* gelu'(x) = Phi(x) + x phi(x) */
static inline float gelu_grad(float x)
{
    return bd_normal_cdf(x) + x * bd_normal_pdf(x);
}

/* dx (+)= dy gelu'(x) */
BD_VECTOR_CLONES
static void gelu_backward(const float *x, const float *dy, float *dx, int64_t n,
                          bool accumulate)
{
    if (accumulate)
        for (int64_t i = 0; i < n; i++)
            dx[i] += dy[i] * gelu_grad(x[i]);
    else
        for (int64_t i = 0; i < n; i++)
            dx[i] = dy[i] * gelu_grad(x[i]);
}

static const activation SILU = {"silu", silu_forward, silu_backward};
static const activation GELU = {"gelu", gelu_forward, gelu_backward};

static int64_t chunk_len(int64_t at, int64_t numel)
{
    return numel - at < CHUNK ? numel - at : CHUNK;
}

static void activation_backward(const bd_node *node)
{
    const activation *act = node->ctx;
    const bd_tensor *x = node->in[0];
    const float *dy = node->out->grad;
    bool assign;
    float *dx = bd_grad_first(x, &assign);
    #pragma omp parallel for schedule(static) \
        num_threads(bd_threads_for((double)x->numel))
    for (int64_t at = 0; at < x->numel; at += CHUNK)
        act->backward(x->data + at, dy + at, dx + at, chunk_len(at, x->numel),
                      !assign);
}

/* x: any -> y: like x */
static bd_status activation_forward(bd_tape *tp, const activation *act,
                                    bd_tensor *x, bd_tensor **y)
{
    BD_TRY(bd_op_check_ndim(act->name, "x", x, 1, BD_MAX_DIMS));
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, x->ndim, x->shape, &out));
    #pragma omp parallel for schedule(static) \
        num_threads(bd_threads_for((double)x->numel))
    for (int64_t at = 0; at < x->numel; at += CHUNK)
        act->forward(x->data + at, out->data + at, chunk_len(at, x->numel));
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
