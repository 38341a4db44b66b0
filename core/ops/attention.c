/* Attention: softmax, image <-> token transposes, multi-head self-attention. */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "op.h"

/* ---- softmax ------------------------------------------------------------- */

/* e^x for -87 <= x <= 0 to about 1 ulp (NaN stays NaN): 2^n e^r with
 * n = round(x / ln 2), r = x - n ln 2 and e^r by the Cephes expf polynomial.
 * No calls, branches or float-to-int conversions, so its loops vectorise. */
static inline float exp_nonpositive(float x)
{
    const float shift = 12582912.0f; /* 1.5 * 2^23: t's low bits hold n */
    const float t = x * 1.44269504f + shift, n = t - shift;
    const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - 0x4B400000u + 127u) << 23; /* 2^n */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* Sum of n floats in 8 lanes (so that it vectorises), finished in double. */
static double sum_lanes(const float *p, int64_t n)
{
    float lanes[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            lanes[j] += p[i + j];
    double sum = 0.0;
    for (; i < n; i++)
        sum += p[i];
    for (int j = 0; j < 8; j++)
        sum += lanes[j];
    return sum;
}

/* p = exp(x - max x) / sum exp(x - max x) over one row of k; p may be x.
 * Differences below -87 count as -87 (e^-87 ~ 1e-38 instead of 0). The
 * clamp has its own loop: inside the exp loop it stops vectorisation. */
static void softmax_row(const float *x, float *p, int64_t k)
{
    float max = x[0];
    for (int64_t i = 1; i < k; i++)
        max = x[i] > max ? x[i] : max;
    for (int64_t i = 0; i < k; i++) {
        const float d = x[i] - max;
        p[i] = d < -87.0f ? -87.0f : d;
    }
    for (int64_t i = 0; i < k; i++)
        p[i] = exp_nonpositive(p[i]);
    const float inv = (float)(1.0 / sum_lanes(p, k));
    for (int64_t i = 0; i < k; i++)
        p[i] *= inv;
}

/* ds (+)= p (dp - sum(dp p)) over one row of k; ds may be dp */
static void softmax_row_backward(const float *p, const float *dp, float *ds,
                                 int64_t k, bool accumulate)
{
    double dot = 0.0;
    for (int64_t i = 0; i < k; i++)
        dot += (double)dp[i] * p[i];
    const float d = (float)dot;
    for (int64_t i = 0; i < k; i++) {
        const float g = p[i] * (dp[i] - d);
        ds[i] = accumulate ? ds[i] + g : g;
    }
}

/* y = out: dx += y (dy - sum(dy y)) per row */
static void softmax_backward(const bd_node *node)
{
    const bd_tensor *y = node->out;
    const int64_t k = y->shape[y->ndim - 1];
    float *dx = bd_grad_of(node->in[0]);
    for (int64_t r = 0; r < y->numel; r += k)
        softmax_row_backward(y->data + r, y->grad + r, dx + r, k, true);
}

/* x: (..., K) -> y: like x */
bd_status bd_softmax(bd_tape *tp, bd_tensor *x, bd_tensor **y)
{
    BD_TRY(bd_op_check_ndim("softmax", "x", x, 1, BD_MAX_DIMS));
    const int64_t k = x->shape[x->ndim - 1];
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, x->ndim, x->shape, &out));
    for (int64_t r = 0; r < x->numel; r += k)
        softmax_row(x->data + r, out->data + r, k);
    BD_TRY(bd_op_finish(tp, softmax_backward, out, &x, 1, NULL));
    *y = out;
    return BD_OK;
}

/* ---- image <-> tokens ---------------------------------------------------- */

/* dst[n, b, a] (+)= src[n, a, b].   src: (N, A, B) -> dst: (N, B, A) */
static void transpose(const float *src, float *dst, int64_t N, int64_t A,
                      int64_t B, bool accumulate)
{
    for (int64_t n = 0; n < N; n++) {
        const float *s = src + n * A * B;
        float *d = dst + n * A * B;
        for (int64_t a = 0; a < A; a++)
            for (int64_t b = 0; b < B; b++)
                d[b * A + a] = accumulate ? d[b * A + a] + s[a * B + b]
                                          : s[a * B + b];
    }
}

/* x seen as (N, A, B), y as (N, B, A) with A = x's dim 1: dx += dy^T */
static void transpose_backward(const bd_node *node)
{
    const bd_tensor *x = node->in[0];
    const int64_t N = x->shape[0], A = x->shape[1], B = bd_tensor_inner(x, 2);
    transpose(node->out->grad, bd_grad_of(x), N, B, A, true);
}

/* x: (N, C, H, W) -> y: (N, H*W, C) */
bd_status bd_to_tokens(bd_tape *tp, bd_tensor *x, bd_tensor **y)
{
    BD_TRY(bd_op_check_ndim("to_tokens", "x", x, 4, 4));
    const int64_t N = x->shape[0], C = x->shape[1];
    const int64_t T = x->shape[2] * x->shape[3];
    const int64_t shape[3] = {N, T, C};
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, 3, shape, &out));
    transpose(x->data, out->data, N, C, T, false);
    BD_TRY(bd_op_finish(tp, transpose_backward, out, &x, 1, NULL));
    *y = out;
    return BD_OK;
}

/* x: (N, T, C) -> y: (N, C, h, w), T = h w */
bd_status bd_from_tokens(bd_tape *tp, bd_tensor *x, int64_t h, int64_t w,
                         bd_tensor **y)
{
    BD_TRY(bd_op_check_ndim("from_tokens", "x", x, 3, 3));
    const int64_t N = x->shape[0], T = x->shape[1], C = x->shape[2];
    if (h < 1 || w < 1 || T % w != 0 || T / w != h) {
        char s[64];
        return bd_fail(BD_E_ARG, "from_tokens: x has shape %s, T = %lld"
                       " tokens, expected h * w = %lld * %lld",
                       bd_shape_str(x, s, sizeof s), (long long)T,
                       (long long)h, (long long)w);
    }
    const int64_t shape[4] = {N, C, h, w};
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, 4, shape, &out));
    transpose(x->data, out->data, N, T, C, false);
    BD_TRY(bd_op_finish(tp, transpose_backward, out, &x, 1, NULL));
    *y = out;
    return BD_OK;
}

/* ---- multi-head self-attention ------------------------------------------- */

/* qkv: (N, T, 3C) seen per (n, head) as three (T, d) slices with row stride
 * 3C: q at column h d, k at C + h d, v at 2C + h d. */
typedef struct attention_dims {
    int64_t N;
    int     T, C, heads, d;
    float   scale; /* 1 / sqrt(d) */
} attention_dims;

/* What backward needs: the probabilities and room for their gradient. */
typedef struct attention_saved {
    attention_dims dims;
    bd_tensor     *probs;  /* (N heads, T, T) */
    bd_tensor     *dprobs; /* (1, T, T) scratch */
} attention_saved;

/* Offset of head h's q slice of sample n in qkv */
static int64_t head_offset(attention_dims a, int64_t n, int h)
{
    return n * a.T * 3 * a.C + (int64_t)h * a.d;
}

/* p = softmax(q k^T scale), y = p v for one (n, head) */
static void head_forward(attention_dims a, const float *q, float *p, float *y)
{
    const int ld = 3 * a.C, T = a.T;
    const float *k = q + a.C, *v = q + 2 * a.C;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, a.d, a.scale,
                q, ld, k, ld, 0.0f, p, T);
    for (int64_t i = 0; i < T; i++)
        softmax_row(p + i * T, p + i * T, T);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, a.d, T, 1.0f,
                p, T, v, ld, 0.0f, y, a.C);
}

/* dv += p^T dy,  dp = dy v^T,  ds = p (dp - rowsum(dp p)),
 * dq += ds k scale,  dk += ds^T q scale   for one (n, head) */
static void head_backward(attention_dims a, const float *q, const float *p,
                          const float *dy, float *dq, float *ds)
{
    const int ld = 3 * a.C, T = a.T;
    const float *k = q + a.C, *v = q + 2 * a.C;
    float *dk = dq + a.C, *dv = dq + 2 * a.C;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, a.d, T, 1.0f,
                p, T, dy, a.C, 1.0f, dv, ld);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, a.d, 1.0f,
                dy, a.C, v, ld, 0.0f, ds, T);
    for (int64_t i = 0; i < T; i++)
        softmax_row_backward(p + i * T, ds + i * T, ds + i * T, T, false);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, a.d, T, a.scale,
                ds, T, k, ld, 1.0f, dq, ld);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, a.d, T, a.scale,
                ds, T, q, ld, 1.0f, dk, ld);
}

static void attention_backward(const bd_node *node)
{
    const attention_saved *sv = node->ctx;
    const attention_dims a = sv->dims;
    const bd_tensor *qkv = node->in[0];
    float *dqkv = bd_grad_of(qkv);
    const int64_t TT = (int64_t)a.T * a.T;
    for (int64_t n = 0; n < a.N; n++)
        for (int h = 0; h < a.heads; h++) {
            const int64_t at = head_offset(a, n, h);
            head_backward(a, qkv->data + at,
                          sv->probs->data + (n * a.heads + h) * TT,
                          node->out->grad + n * a.T * a.C + (int64_t)h * a.d,
                          dqkv + at, sv->dprobs->data);
        }
}

static bd_status attention_check(const bd_tensor *qkv, int heads,
                                 attention_dims *a)
{
    BD_TRY(bd_op_check_ndim("attention", "qkv", qkv, 3, 3));
    char s[64];
    const int64_t T = qkv->shape[1], C3 = qkv->shape[2];
    if (C3 % 3 != 0)
        return bd_fail(BD_E_ARG, "attention: qkv has shape %s, expected last"
                       " dim 3C (packed q | k | v)",
                       bd_shape_str(qkv, s, sizeof s));
    if (T > INT_MAX || C3 > INT_MAX)
        return bd_fail(BD_E_ARG, "attention: qkv has shape %s, expected T and"
                       " 3C at most %d", bd_shape_str(qkv, s, sizeof s),
                       INT_MAX);
    const int64_t C = C3 / 3;
    if (heads < 1 || C % heads != 0)
        return bd_fail(BD_E_ARG, "attention: heads = %d does not divide"
                       " C = %lld of qkv %s", heads, (long long)C,
                       bd_shape_str(qkv, s, sizeof s));
    *a = (attention_dims){.N = qkv->shape[0], .T = (int)T, .C = (int)C,
                          .heads = heads, .d = (int)C / heads};
    a->scale = 1.0f / sqrtf((float)a->d);
    return BD_OK;
}

/* Probabilities for all heads when backward needs them, else one head's. */
static bd_status attention_probs(bd_tape *tp, attention_dims a, bool saved,
                                 bd_tensor **probs)
{
    const int64_t shape[3] = {saved ? a.N * a.heads : 1, a.T, a.T};
    *probs = bd_tape_tensor(tp, 3, shape);
    return *probs ? BD_OK : BD_E_NOMEM;
}

/* qkv: (N, T, 3C), C = heads d -> y: (N, T, C) */
bd_status bd_attention(bd_tape *tp, bd_tensor *qkv, int heads, bd_tensor **y)
{
    attention_dims a;
    BD_TRY(attention_check(qkv, heads, &a));
    const int64_t shape[3] = {a.N, a.T, a.C};
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, 3, shape, &out));
    const bool saved = bd_tape_needs_node(tp, &qkv, 1);
    attention_saved *sv = NULL;
    bd_tensor *probs;
    BD_TRY(attention_probs(tp, a, saved, &probs));
    if (saved) {
        sv = bd_tape_alloc(tp, sizeof *sv);
        if (!sv)
            return BD_E_NOMEM;
        *sv = (attention_saved){.dims = a, .probs = probs};
        BD_TRY(attention_probs(tp, a, false, &sv->dprobs));
    }
    const int64_t TT = (int64_t)a.T * a.T;
    for (int64_t n = 0; n < a.N; n++)
        for (int h = 0; h < heads; h++)
            head_forward(a, qkv->data + head_offset(a, n, h),
                         probs->data + (saved ? (n * heads + h) * TT : 0),
                         out->data + n * a.T * a.C + (int64_t)h * a.d);
    BD_TRY(bd_op_finish(tp, attention_backward, out, &qkv, 1, sv));
    *y = out;
    return BD_OK;
}
