/* Differentiable ops. Each takes the tape first, its inputs, its settings,
 * and returns its output (an arena tensor) through the last argument. On bad
 * input an op returns an error naming the op, the argument and the shapes
 * found against those expected; nothing is recorded or changed.
 *
 * Shapes: N batch, C channels, H x W image, T tokens, K/M features.
 * Optional inputs (biases, affine parameters) may be NULL.
 * Implementations: core/ops/<family>.c, forward and backward side by side. */
#ifndef BD_OPS_H
#define BD_OPS_H

#include "bd/tape.h"

/* ---- linear algebra (core/ops/linear.c) ---------------------------------- */

/* y = x w^T + b.   x: (..., K), w: (M, K), b: (M) -> y: (..., M) */
bd_status bd_linear(bd_tape *tp, bd_tensor *x, bd_tensor *w, bd_tensor *b,
                    bd_tensor **y);

/* y = a b.   a: (M, K), b: (K, N) -> y: (M, N) */
bd_status bd_matmul(bd_tape *tp, bd_tensor *a, bd_tensor *b, bd_tensor **y);

/* ---- convolution (core/ops/conv2d.c) ------------------------------------- */

/* y = conv(x, w) + b, zero padding.
 * x: (N, C, H, W), w: (O, C, KH, KW), b: (O)
 *   -> y: (N, O, (H + 2 pad - KH) / stride + 1, (W + 2 pad - KW) / stride + 1) */
bd_status bd_conv2d(bd_tape *tp, bd_tensor *x, bd_tensor *w, bd_tensor *b,
                    int stride, int pad, bd_tensor **y);

/* ---- normalisation (core/ops/norm.c) ------------------------------------- */

/* Normalise each (sample, group) over its C/groups channels and H x W, then
 * y = xhat * gamma[c] + beta[c].
 * x: (N, C, H, W), (N, C, L) or (N, C); gamma, beta: (C) -> y: like x */
bd_status bd_group_norm(bd_tape *tp, bd_tensor *x, int groups, bd_tensor *gamma,
                        bd_tensor *beta, float eps, bd_tensor **y);

/* Normalise over the last dim.   x: (..., C), gamma, beta: (C) -> y: like x */
bd_status bd_layer_norm(bd_tape *tp, bd_tensor *x, bd_tensor *gamma,
                        bd_tensor *beta, float eps, bd_tensor **y);

/* ---- activations (core/ops/activation.c) --------------------------------- */

/* y = x * sigmoid(x).                        x: any -> y: like x */
bd_status bd_silu(bd_tape *tp, bd_tensor *x, bd_tensor **y);
/* y = x * Phi(x), the exact (erf) GELU.      x: any -> y: like x */
bd_status bd_gelu(bd_tape *tp, bd_tensor *x, bd_tensor **y);

/* ---- elementwise and shape (core/ops/elementwise.c) ---------------------- */

/* y = a + b and y = a * b with broadcasting: b has a's ndim and each of its
 * dims equals a's or is 1, e.g. b: (1, C, 1, 1) per channel or (N, C, 1, 1)
 * per sample and channel.   a: (d0..d3), b: broadcastable -> y: like a */
bd_status bd_add(bd_tape *tp, bd_tensor *a, bd_tensor *b, bd_tensor **y);
bd_status bd_mul(bd_tape *tp, bd_tensor *a, bd_tensor *b, bd_tensor **y);

/* y = alpha * x.                             x: any -> y: like x */
bd_status bd_scale(bd_tape *tp, bd_tensor *x, float alpha, bd_tensor **y);

/* Same data, new shape of equal element count (no copy).   -> y: shape */
bd_status bd_reshape(bd_tape *tp, bd_tensor *x, int ndim, const int64_t *shape,
                     bd_tensor **y);

/* Concat along dim 1 (channels), 2 to 4 dims, the other dims equal.
 * a: (N, Ca, H, W), b: (N, Cb, H, W) -> y: (N, Ca + Cb, H, W) */
bd_status bd_concat(bd_tape *tp, bd_tensor *a, bd_tensor *b, bd_tensor **y);

/* ---- pooling and resampling (core/ops/pool.c, core/ops/upsample.c) ------- */

/* k x k max / average pooling with stride k; H and W divisible by k.
 * x: (N, C, H, W) -> y: (N, C, H / k, W / k) */
bd_status bd_max_pool(bd_tape *tp, bd_tensor *x, int k, bd_tensor **y);
bd_status bd_avg_pool(bd_tape *tp, bd_tensor *x, int k, bd_tensor **y);

typedef enum bd_upsample_mode {
    BD_UPSAMPLE_NEAREST,
    BD_UPSAMPLE_BILINEAR, /* align_corners = true, as the paper's UNet */
} bd_upsample_mode;

/* 2x upsampling.   x: (N, C, H, W) -> y: (N, C, 2H, 2W) */
bd_status bd_upsample2x(bd_tape *tp, bd_tensor *x, bd_upsample_mode mode,
                        bd_tensor **y);

/* ---- attention (core/ops/attention.c) ------------------------------------ */

/* Softmax over the last dim.                 x: (..., K) -> y: like x */
bd_status bd_softmax(bd_tape *tp, bd_tensor *x, bd_tensor **y);

/* Image to tokens and back (a transpose).
 * x: (N, C, H, W) -> y: (N, H*W, C);   x: (N, T, C) -> y: (N, C, h, w), T = h w */
bd_status bd_to_tokens(bd_tape *tp, bd_tensor *x, bd_tensor **y);
bd_status bd_from_tokens(bd_tape *tp, bd_tensor *x, int64_t h, int64_t w,
                         bd_tensor **y);

/* Multi-head scaled dot-product self-attention on packed projections:
 * qkv[n, t] = (q | k | v), each C = heads * d wide; per head
 * y = softmax(q k^T / sqrt(d)) v.   qkv: (N, T, 3C) -> y: (N, T, C) */
bd_status bd_attention(bd_tape *tp, bd_tensor *qkv, int heads, bd_tensor **y);

/* ---- embeddings (core/ops/embedding.c) ----------------------------------- */

/* Sinusoidal encoding of a scalar per sample, half sines then half cosines:
 * y[n, i] = sin(s[n] * base^(-i / (E/2))), y[n, E/2 + i] = cos(...).
 * s: (N) -> y: (N, E), E even */
bd_status bd_sinusoidal(bd_tape *tp, bd_tensor *s, int dim, float base,
                        bd_tensor **y);

/* ---- reductions and losses (core/ops/reduce.c) --------------------------- */

/* Scalars (shape (1)).  sum(x), mean(x), mean((a - b)^2). */
bd_status bd_sum(bd_tape *tp, bd_tensor *x, bd_tensor **y);
bd_status bd_mean(bd_tape *tp, bd_tensor *x, bd_tensor **y);
bd_status bd_mse(bd_tape *tp, bd_tensor *a, bd_tensor *b, bd_tensor **y);

#endif
