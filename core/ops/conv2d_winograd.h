/* Winograd F(2x2, 3x3) and F(4x4, 3x3) convolution (not a public header):
 * 3x3 kernels, stride 1, for conv2d's forward and its gradients of x and
 * of w. */
#ifndef BD_CORE_CONV2D_WINOGRAD_H
#define BD_CORE_CONV2D_WINOGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* y (N, O, H + 2 pad - 2, W + 2 pad - 2) = conv(x (N, C, H, W), g) + b,
 * or y += conv(x, g) when accumulate. g is w (O, C, 3, 3), or with
 * transpose_flip w (C, O, 3, 3) read as g[o, c, i, j] = w[c, o, 2 - i, 2 - j]
 * (the gradient of x: dy convolved with the flipped, transposed kernel). */
typedef struct wino_conv {
    int     N, C, H, W, O, pad;
    int     m;                /* output tile m x m: 2 or 4 */
    bool    transpose_flip, accumulate;
    int     threads, chunk;   /* threads, images per chunk */
} wino_conv;

/* Whether Winograd can compute a conv of this shape (3x3, stride 1,
 * pad <= 2). */
bool wino_fits(int KH, int KW, int stride, int pad);

/* The plan: threads and images per chunk, for this shape and F(m x m, 3x3)
 * (m 4, else 2). */
wino_conv wino_plan(int N, int C, int H, int W, int O, int pad, int m);

/* Floats of scratch wino_run needs (transformed kernel, per-thread tiles). */
size_t wino_scratch_floats(const wino_conv *p);

void wino_run(const wino_conv *p, const float *x, const float *w,
              const float *b, float *y, float *scratch);

/* dw (O, C, 3, 3) += the gradient of the kernel of the forward plan p
 * (not transpose_flip), from x and dy (N, O, OH, OW):
 * G^T [sum over tiles (A dy A^T) .* (B^T x B)] G. */
size_t wino_weight_grad_scratch_floats(const wino_conv *p);
void wino_weight_grad(const wino_conv *p, const float *x, const float *dy,
                      float *dw, float *scratch);

#endif
