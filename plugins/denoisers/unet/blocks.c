/* The UNet's layers: parameters and forward passes. The backward passes are
 * the core's: every step is a host op recorded on the tape. */
#include <math.h>
#include <stdio.h>

#include "unet.h"

#define NORM_EPS 1e-5f
#define HEADS    4

/* ---- parameters ------------------------------------------------------------ */

/* "<scope>.<name>" in buf, or NULL if it does not fit (param then fails). */
static const char *sub(char *buf, size_t len, const char *scope, const char *name)
{
    int n = scope ? snprintf(buf, len, "%s.%s", scope, name) : -1;
    return n >= 0 && (size_t)n < len ? buf : NULL;
}

/* A zero-filled parameter "<scope>.<name>". */
static bd_status param(builder *b, const char *scope, const char *name,
                       int ndim, const int64_t *shape, bd_tensor **out)
{
    char full[128];
    if (!sub(full, sizeof full, scope, name))
        return b->h->fail(BD_E_ARG, "unet: parameter name '%s.%s' too long",
                          scope ? scope : "...", name);
    BD_TRY(b->h->param(b->params, full, ndim, shape, out));
    b->count += b->h->tensor_numel(*out);
    return BD_OK;
}

bd_status dense_make(builder *b, const char *scope, int64_t out, int64_t in,
                     int64_t k, bool with_bias, bd_tensor **w, bd_tensor **bias)
{
    const int64_t shape[4] = {out, in, k, k};
    const float bound = 1.0f / sqrtf((float)(in * (k ? k * k : 1)));
    BD_TRY(param(b, scope, "weight", k ? 4 : 2, shape, w));
    b->h->init_uniform(*w, b->rng, bound);
    if (!with_bias)
        return BD_OK;
    BD_TRY(param(b, scope, "bias", 1, shape, bias));
    b->h->init_uniform(*bias, b->rng, bound);
    return BD_OK;
}

/* GroupNorm / LayerNorm affine "<scope>.<name>.weight" = 1, ".bias" = 0. */
static bd_status norm_make(builder *b, const char *scope, const char *name,
                           int64_t c, bd_tensor **w, bd_tensor **bias)
{
    char s[128];
    BD_TRY(param(b, sub(s, sizeof s, scope, name), "weight", 1, &c, w));
    BD_TRY(param(b, sub(s, sizeof s, scope, name), "bias", 1, &c, bias));
    b->h->init_fill(*w, 1.0f);
    return BD_OK;
}

bd_status double_conv_make(builder *b, const char *scope, int64_t in,
                           int64_t out, int64_t mid, bool residual,
                           double_conv *dc)
{
    char s[128];
    dc->residual = residual;
    BD_TRY(dense_make(b, sub(s, sizeof s, scope, "conv1"), mid, in, 3, false,
                      &dc->conv1, NULL));
    BD_TRY(norm_make(b, scope, "norm1", mid, &dc->norm1_w, &dc->norm1_b));
    BD_TRY(dense_make(b, sub(s, sizeof s, scope, "conv2"), out, mid, 3, false,
                      &dc->conv2, NULL));
    return norm_make(b, scope, "norm2", out, &dc->norm2_w, &dc->norm2_b);
}

/* As torch.nn.MultiheadAttention: in-projection Xavier-uniform with zero
 * bias, out-projection bias zero. */
static bd_status attention_make(builder *b, const char *scope, int64_t c,
                                self_attention *a)
{
    char s[128];
    const int64_t qkv[2] = {3 * c, c};
    BD_TRY(norm_make(b, scope, "norm1", c, &a->norm1_w, &a->norm1_b));
    BD_TRY(param(b, sub(s, sizeof s, scope, "qkv"), "weight", 2, qkv, &a->qkv_w));
    b->h->init_uniform(a->qkv_w, b->rng, sqrtf(6.0f / (float)(4 * c)));
    BD_TRY(param(b, sub(s, sizeof s, scope, "qkv"), "bias", 1, qkv, &a->qkv_b));
    BD_TRY(dense_make(b, sub(s, sizeof s, scope, "proj"), c, c, 0, true,
                      &a->proj_w, &a->proj_b));
    b->h->init_fill(a->proj_b, 0.0f);
    BD_TRY(norm_make(b, scope, "norm2", c, &a->norm2_w, &a->norm2_b));
    BD_TRY(dense_make(b, sub(s, sizeof s, scope, "ff1"), c, c, 0, true,
                      &a->ff1_w, &a->ff1_b));
    return dense_make(b, sub(s, sizeof s, scope, "ff2"), c, c, 0, true,
                      &a->ff2_w, &a->ff2_b);
}

bd_status block_make(builder *b, const char *scope, int64_t in, int64_t out,
                     int64_t mid, int64_t emb, bool attend, block *blk)
{
    char s[128];
    BD_TRY(double_conv_make(b, sub(s, sizeof s, scope, "conv_a"), in, in, in,
                            true, &blk->conv_a));
    BD_TRY(double_conv_make(b, sub(s, sizeof s, scope, "conv_b"), in, out, mid,
                            false, &blk->conv_b));
    BD_TRY(dense_make(b, sub(s, sizeof s, scope, "emb"), out, emb, 0, true,
                      &blk->emb_w, &blk->emb_b));
    blk->attend = attend;
    return attend ? attention_make(b, sub(s, sizeof s, scope, "attn"), out,
                                   &blk->attn)
                  : BD_OK;
}

/* ---- forward ---------------------------------------------------------------- */

/* The op that read *a has written `next`: hand *a back to the tape (with
 * grad off its memory goes to the tensors that follow) and go on with next. */
static void step(const bd_host *h, bd_tape *tp, bd_tensor **a, bd_tensor *next)
{
    h->tape_release(tp, *a);
    *a = next;
}

/* x: (N, in, H, W) -> y: (N, out, H, W); x is left to the caller */
bd_status double_conv_forward(const bd_host *h, const double_conv *dc,
                              bd_tape *tp, bd_tensor *x, bd_tensor **y)
{
    bd_tensor *a, *b;
    BD_TRY(h->conv2d(tp, x, dc->conv1, NULL, 1, 1, &a));
    BD_TRY(h->group_norm(tp, a, 1, dc->norm1_w, dc->norm1_b, NORM_EPS, &b));
    step(h, tp, &a, b);
    BD_TRY(h->gelu(tp, a, &b));
    step(h, tp, &a, b);
    BD_TRY(h->conv2d(tp, a, dc->conv2, NULL, 1, 1, &b));
    step(h, tp, &a, b);
    BD_TRY(h->group_norm(tp, a, 1, dc->norm2_w, dc->norm2_b, NORM_EPS, &b));
    step(h, tp, &a, b);
    if (dc->residual) {
        BD_TRY(h->add(tp, x, a, &b));
        step(h, tp, &a, b);
        BD_TRY(h->gelu(tp, a, &b));
        step(h, tp, &a, b);
    }
    *y = a;
    return BD_OK;
}

/* x: (N, C, H, W) -> y: (N, C, H, W), attention over the H W positions;
 * x is left to the caller */
static bd_status attention_forward(const bd_host *h, const self_attention *at,
                                   bd_tape *tp, bd_tensor *x, bd_tensor **y)
{
    bd_tensor *tok, *a, *r, *f, *b;
    BD_TRY(h->to_tokens(tp, x, &tok));                          /* (N, T, C) */
    BD_TRY(h->layer_norm(tp, tok, at->norm1_w, at->norm1_b, NORM_EPS, &a));
    BD_TRY(h->linear(tp, a, at->qkv_w, at->qkv_b, &b));         /* (N, T, 3C) */
    step(h, tp, &a, b);
    BD_TRY(h->attention(tp, a, HEADS, &b));                     /* (N, T, C) */
    step(h, tp, &a, b);
    BD_TRY(h->linear(tp, a, at->proj_w, at->proj_b, &b));
    step(h, tp, &a, b);
    BD_TRY(h->add(tp, a, tok, &r));
    h->tape_release(tp, a);
    h->tape_release(tp, tok);
    BD_TRY(h->layer_norm(tp, r, at->norm2_w, at->norm2_b, NORM_EPS, &f));
    BD_TRY(h->linear(tp, f, at->ff1_w, at->ff1_b, &b));
    step(h, tp, &f, b);
    BD_TRY(h->gelu(tp, f, &b));
    step(h, tp, &f, b);
    BD_TRY(h->linear(tp, f, at->ff2_w, at->ff2_b, &b));
    step(h, tp, &f, b);
    BD_TRY(h->add(tp, f, r, &b));
    h->tape_release(tp, f);
    step(h, tp, &r, b);
    BD_TRY(h->from_tokens(tp, r, h->tensor_dim(x, 2), h->tensor_dim(x, 3), y));
    h->tape_release(tp, r);
    return BD_OK;
}

/* x: (N, in, H, W), semb: (N, 3E) -> y: (N, out, H, W); x and semb are
 * left to the caller, and so is *pre when asked for */
bd_status block_forward(const bd_host *h, const block *blk, bd_tape *tp,
                        bd_tensor *x, bd_tensor *semb, bd_tensor **pre,
                        bd_tensor **y)
{
    bd_tensor *a, *b, *e, *ec;
    BD_TRY(double_conv_forward(h, &blk->conv_a, tp, x, &a));
    BD_TRY(double_conv_forward(h, &blk->conv_b, tp, a, &b));
    step(h, tp, &a, b);
    BD_TRY(h->linear(tp, semb, blk->emb_w, blk->emb_b, &e));     /* (N, out) */
    const int64_t per_channel[4] = {h->tensor_dim(e, 0), h->tensor_dim(e, 1), 1, 1};
    BD_TRY(h->reshape(tp, e, 4, per_channel, &ec));
    BD_TRY(h->add(tp, a, ec, &b));
    h->tape_release(tp, e);
    if (pre)
        *pre = a;
    else
        h->tape_release(tp, a);
    a = b;
    if (blk->attend) {
        BD_TRY(attention_forward(h, &blk->attn, tp, a, &b));
        step(h, tp, &a, b);
    }
    *y = a;
    return BD_OK;
}
