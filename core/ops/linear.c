/* Matrix products on OpenBLAS (bd_gemm: split over bd's threads): linear
 * layers and plain matmul. */
#include "bd/parallel.h"
#include "op.h"

/* y = x w^T + b;  x: (R, K), w: (M, K), b: (M) -> y: (R, M), R = rows of x */
static void linear_backward(const bd_node *node)
{
    const bd_tensor *x = node->in[0], *w = node->in[1], *b = node->in[2];
    const float *dy = node->out->grad;
    const int M = (int)w->shape[0], K = (int)w->shape[1];
    const int R = (int)(x->numel / K);
    float *dw = bd_grad_of(w), *db = bd_grad_of(b);
    bool assign;
    float *dx = bd_grad_first(x, &assign);
    if (dx) /* dx (R,K) (+)= dy (R,M) w (M,K) */
        bd_gemm(false, false, R, K, M, 1.0f, dy, M, w->data, K,
                assign ? 0.0f : 1.0f, dx, K);
    if (dw) /* dw (M,K) += dy^T (M,R) x (R,K) */
        bd_gemm(true, false, M, K, R, 1.0f, dy, M, x->data, K, 1.0f, dw, K);
    if (db)
        for (int r = 0; r < R; r++)
            for (int m = 0; m < M; m++)
                db[m] += dy[(int64_t)r * M + m];
}

bd_status bd_linear(bd_tape *tp, bd_tensor *x, bd_tensor *w, bd_tensor *b,
                    bd_tensor **y)
{
    BD_TRY(bd_op_check_ndim("linear", "x", x, 1, BD_MAX_DIMS));
    BD_TRY(bd_op_check_ndim("linear", "w", w, 2, 2));
    const int64_t M = w->shape[0], K = w->shape[1];
    BD_TRY(bd_op_check_dim("linear", "x", x, x->ndim - 1, K));
    if (b) {
        BD_TRY(bd_op_check_ndim("linear", "b", b, 1, 1));
        BD_TRY(bd_op_check_dim("linear", "b", b, 0, M));
    }
    int64_t shape[BD_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++)
        shape[i] = x->shape[i];
    shape[x->ndim - 1] = M;
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, x->ndim, shape, &out));
    const int64_t R = x->numel / K;
    for (int64_t r = 0; r < R; r++)
        for (int64_t m = 0; m < M; m++)
            out->data[r * M + m] = b ? b->data[m] : 0.0f;
    bd_gemm(false, true, (int)R, (int)M, (int)K, 1.0f, x->data, (int)K, w->data,
            (int)K, 1.0f, out->data, (int)M);
    bd_tensor *in[3] = {x, w, b};
    BD_TRY(bd_op_finish(tp, linear_backward, out, in, 3, NULL));
    *y = out;
    return BD_OK;
}

/* y = a b;  da += dy b^T,  db += a^T dy */
static void matmul_backward(const bd_node *node)
{
    const bd_tensor *a = node->in[0], *b = node->in[1];
    const int M = (int)a->shape[0], K = (int)a->shape[1], N = (int)b->shape[1];
    const float *dy = node->out->grad;
    float *da = bd_grad_of(a), *db = bd_grad_of(b);
    if (da)
        bd_gemm(false, true, M, K, N, 1.0f, dy, N, b->data, N, 1.0f, da, K);
    if (db)
        bd_gemm(true, false, K, N, M, 1.0f, a->data, K, dy, N, 1.0f, db, N);
}

/* a: (M, K), b: (K, N) -> y: (M, N) */
bd_status bd_matmul(bd_tape *tp, bd_tensor *a, bd_tensor *b, bd_tensor **y)
{
    BD_TRY(bd_op_check_ndim("matmul", "a", a, 2, 2));
    BD_TRY(bd_op_check_ndim("matmul", "b", b, 2, 2));
    BD_TRY(bd_op_check_dim("matmul", "b", b, 0, a->shape[1]));
    const int64_t shape[2] = {a->shape[0], b->shape[1]};
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, 2, shape, &out));
    bd_gemm(false, false, (int)shape[0], (int)shape[1], (int)a->shape[1], 1.0f,
            a->data, (int)a->shape[1], b->data, (int)shape[1], 0.0f, out->data,
            (int)shape[1]);
    bd_tensor *in[2] = {a, b};
    BD_TRY(bd_op_finish(tp, matmul_backward, out, in, 2, NULL));
    *y = out;
    return BD_OK;
}
