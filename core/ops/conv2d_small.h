/* Direct convolution on small planes, vectorised over channels (not a
 * public header): conv2d's path for 4x4 and 2x2 maps with many channels,
 * where im2col + sgemm multiplies mostly padding (a 3x3 tap reads inside
 * a 2x2 map at 4 of its 9 offsets) and the flat-plane direct path fills
 * few of its vector lanes. The same plans as conv2d_direct.h: stride 1,
 * 3x3 kernels with pad <= 2 and 1x1 kernels with pad 0, forward,
 * transpose_flip for the gradient of x, and the weight gradient. */
#ifndef BD_CORE_CONV2D_SMALL_H
#define BD_CORE_CONV2D_SMALL_H

#include "conv2d_direct.h"

/* Output planes up to this many pixels (8x8). */
enum { SMALL_MAX_PLANE = 64 };

/* The plan: threads and lanes, for this shape (OH OW <= SMALL_MAX_PLANE). */
direct_conv small_plan(int N, int C, int H, int W, int O, int K, int pad);

/* y = conv(x, g) + b, or y += conv(x, g) when accumulate, as direct_run. */
size_t small_scratch_floats(const direct_conv *p);
void small_run(const direct_conv *p, const float *x, const float *w,
               const float *b, float *y, float *scratch);

/* dw (O, C, K, K) += the gradient of the kernel of the forward plan p,
 * from x and dy (N, O, OH, OW). */
size_t small_weight_grad_scratch_floats(const direct_conv *p);
void small_weight_grad(const direct_conv *p, const float *x, const float *dy,
                       float *dw, float *scratch);

#endif
