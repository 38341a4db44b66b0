/* The paper's conditional UNet (see docs/PAPER.md, "Model"): layers and
 * their parameters. blocks.c builds and runs the layers, unet.c the net. */
#ifndef BD_UNET_H
#define BD_UNET_H

#include "bd/plugin.h"

/* Creates the parameters "<scope>.<name>..." with PyTorch's default
 * initialisation, drawing from the model's rng. */
typedef struct builder {
    const bd_host *h;
    bd_params     *params;
    bd_rng        *rng;
    int64_t        count;  /* elements created so far */
} builder;

/* 3x3 conv in->mid (no bias), GroupNorm(1), GELU, 3x3 conv mid->out (no
 * bias), GroupNorm(1); if residual (in == out), GELU(x + that). */
typedef struct double_conv {
    bd_tensor *conv1, *norm1_w, *norm1_b;
    bd_tensor *conv2, *norm2_w, *norm2_b;
    bool       residual;
} double_conv;

/* Tokens = H W: LayerNorm, 4-head attention, residual; LayerNorm, Linear,
 * GELU, Linear, residual. */
typedef struct self_attention {
    bd_tensor *norm1_w, *norm1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    bd_tensor *norm2_w, *norm2_b, *ff1_w, *ff1_b, *ff2_w, *ff2_b;
} self_attention;

/* A down or up block: two double convs, the projected embedding added,
 * then self-attention if `attend`. */
typedef struct block {
    double_conv    conv_a, conv_b;
    bd_tensor     *emb_w, *emb_b;  /* Linear(3E -> out) on SiLU(emb) */
    bool           attend;
    self_attention attn;
} block;

bd_status double_conv_make(builder *b, const char *scope, int64_t in,
                           int64_t out, int64_t mid, bool residual,
                           double_conv *dc);
bd_status block_make(builder *b, const char *scope, int64_t in, int64_t out,
                     int64_t mid, int64_t emb, bool attend, block *blk);
/* Weight (out, in[, k, k]) and optional bias (out), both U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)) like PyTorch's Linear and Conv2d. k = 0: a linear layer. */
bd_status dense_make(builder *b, const char *scope, int64_t out, int64_t in,
                     int64_t k, bool with_bias, bd_tensor **w, bd_tensor **bias);

/* x: (N, in, H, W) -> y: (N, out, H, W) */
bd_status double_conv_forward(const bd_host *h, const double_conv *dc,
                              bd_tape *tp, bd_tensor *x, bd_tensor **y);

/* After the resampling and skip concat: x: (N, in, H, W), semb: (N, 3E)
 * = SiLU(emb) -> y: (N, out, H, W); *pre (if pre is not NULL): the double
 * convs' output before the embedding is added, (N, out, H, W). */
bd_status block_forward(const bd_host *h, const block *blk, bd_tape *tp,
                        bd_tensor *x, bd_tensor *semb, bd_tensor **pre,
                        bd_tensor **y);

#endif
