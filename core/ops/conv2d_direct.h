/* Direct convolution at stride 1 (not a public header): conv2d's path for
 * few channels, where im2col + sgemm is mostly copying (the products
 * (O, 9 C) x (9 C, H W) are tiny). 3x3 kernels with pad <= 2 and 1x1
 * kernels with pad 0, for the forward and the gradients of x and w. */
#ifndef BD_CORE_CONV2D_DIRECT_H
#define BD_CORE_CONV2D_DIRECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* y (N, O, H + 2 pad - K + 1, W + 2 pad - K + 1) = conv(x (N, C, H, W), g)
 * + b, or y += conv(x, g) when accumulate. g is w (O, C, K, K), or with
 * transpose_flip w (C, O, K, K) read as g[o, c, i, j] = w[c, o, K-1-i, K-1-j]
 * (the gradient of x: dy convolved with the flipped, transposed kernel,
 * pad K - 1 - pad). */
typedef struct direct_conv {
    int  N, C, H, W, O, K, pad;
    bool transpose_flip, accumulate;
    int  threads, chunk;   /* threads, images per chunk of the weight grad */
    int  lanes;            /* floats per vector of the tiles: 8 or 16 (AVX-512) */
} direct_conv;

/* The tiles in 16 lanes (AVX-512) are compiled in. */
#if defined(__x86_64__) && defined(__GNUC__)
#define BD_DIRECT_AVX512 1
#endif

/* Floats per vector of the tiles: 16 where the CPU has AVX-512 (twice the
 * FMA width on cores with 512-bit units) unless BD_CONV_LANES=8 asks for
 * the AVX2 tiles, else 8. */
int direct_lanes(void);

/* Whether the direct path can compute a conv of this shape. */
bool direct_fits(int KH, int KW, int stride, int pad);

/* The plan: threads and images per chunk, for this shape. */
direct_conv direct_plan(int N, int C, int H, int W, int O, int K, int pad);

/* Floats of scratch direct_run needs (the kernel in blocks, per-thread
 * padded planes and outputs). */
size_t direct_scratch_floats(const direct_conv *p);

void direct_run(const direct_conv *p, const float *x, const float *w,
                const float *b, float *y, float *scratch);

/* dw (O, C, K, K) += the gradient of the kernel of the forward plan p
 * (not transpose_flip), from x and dy (N, O, OH, OW). */
size_t direct_weight_grad_scratch_floats(const direct_conv *p);
void direct_weight_grad(const direct_conv *p, const float *x, const float *dy,
                        float *dw, float *scratch);

#endif
