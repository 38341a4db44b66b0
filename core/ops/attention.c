/* Attention: softmax, image <-> token transposes, multi-head self-attention. */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "bd/parallel.h"
#include "fastmath.h"
#include "op.h"

/* ---- softmax ------------------------------------------------------------- */

/* Max of n >= 1 floats in 8 lanes (so that it vectorises). A NaN after
 * the first value is skipped here (it reaches the softmax through x - max);
 * a NaN first value makes the max NaN, and the whole row with it. */
BD_VECTOR_CLONES
static float max_lanes(const float *p, int64_t n)
{
    float lanes[8], m = p[0];
    for (int j = 0; j < 8; j++)
        lanes[j] = p[0];
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            lanes[j] = p[i + j] > lanes[j] ? p[i + j] : lanes[j];
    for (; i < n; i++)
        m = p[i] > m ? p[i] : m;
    for (int j = 0; j < 8; j++)
        m = lanes[j] > m ? lanes[j] : m;
    return m;
}

/* p = exp(x - max x) over one row of k, p may be x; returns the sum of p
 * and the max in *max. Differences below -87 count as -87 (e^-87 ~ 1e-38
 * instead of 0). The clamp has its own loop: inside the exp loop it stops
 * vectorisation. */
BD_VECTOR_CLONES
static double exp_shifted_row(const float *x, float *p, int64_t k, float *max)
{
    const float m = max_lanes(x, k);
    for (int64_t i = 0; i < k; i++) {
        const float d = x[i] - m;
        p[i] = d < -87.0f ? -87.0f : d;
    }
    for (int64_t i = 0; i < k; i++)
        p[i] = bd_exp_nonpositive(p[i]);
    *max = m;
    return bd_sum_lanes(p, k);
}

/* p = exp(x - max x) / sum exp(x - max x) over one row of k; p may be x. */
static void softmax_row(const float *x, float *p, int64_t k)
{
    float max;
    const float inv = (float)(1.0 / exp_shifted_row(x, p, k, &max));
    for (int64_t i = 0; i < k; i++)
        p[i] *= inv;
}

/* dx += p (dp - sum(dp p)) over one row of k */
static void softmax_row_backward(const float *p, const float *dp, float *dx,
                                 int64_t k)
{
    double dot = 0.0;
    for (int64_t i = 0; i < k; i++)
        dot += (double)dp[i] * p[i];
    const float d = (float)dot;
    for (int64_t i = 0; i < k; i++)
        dx[i] += p[i] * (dp[i] - d);
}

/* y = out: dx += y (dy - sum(dy y)) per row */
static void softmax_backward(const bd_node *node)
{
    const bd_tensor *y = node->out;
    const int64_t k = y->shape[y->ndim - 1];
    float *dx = bd_grad_of(node->in[0]);
    for (int64_t r = 0; r < y->numel; r += k)
        softmax_row_backward(y->data + r, y->grad + r, dx + r, k);
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

/* dst[n, b, a] (+)= src[n, a, b].   src: (N, A, B) -> dst: (N, B, A)
 * In strips of 16 a's, so that the writes are 16 contiguous floats and the
 * reads 16 sequential streams; samples on bd's threads. */
static void transpose(const float *src, float *dst, int64_t N, int64_t A,
                      int64_t B, bool accumulate)
{
    #pragma omp parallel for schedule(static) \
        num_threads(bd_threads_for((double)(N * A * B)))
    for (int64_t n = 0; n < N; n++) {
        const float *s = src + n * A * B;
        float *d = dst + n * A * B;
        for (int64_t a0 = 0; a0 < A; a0 += 16) {
            const int64_t a1 = A - a0 < 16 ? A : a0 + 16;
            for (int64_t b = 0; b < B; b++)
                for (int64_t a = a0; a < a1; a++)
                    d[b * A + a] = accumulate ? d[b * A + a] + s[a * B + b]
                                              : s[a * B + b];
        }
    }
}

/* x seen as (N, A, B), y as (N, B, A) with A = x's dim 1: dx (+)= dy^T */
static void transpose_backward(const bd_node *node)
{
    const bd_tensor *x = node->in[0];
    const int64_t N = x->shape[0], A = x->shape[1], B = bd_tensor_inner(x, 2);
    bool assign;
    float *dx = bd_grad_first(x, &assign);
    transpose(node->out->grad, dx, N, B, A, !assign);
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

/* Blocked ("flash") attention: per (sample, head) the scores are formed
 * QBLOCK query rows at a time, so the T x T matrix never exists. Forward
 * keeps each query row's log-sum-exp; backward recomputes the block's
 * probabilities from it and the block's score gradient next to them. A
 * block's QBLOCK x T scores (256 KiB at T = 1024) stay in L2. */
enum { QBLOCK = 64 };

/* qkv: (N, T, 3C) seen per (n, head) as three (T, d) slices with row stride
 * 3C: q at column h d, k at C + h d, v at 2C + h d. */
typedef struct attention_dims {
    int64_t N;
    int     T, C, heads, d;
    float   scale; /* 1 / sqrt(d) */
} attention_dims;

/* What backward needs besides qkv and y: the rows' log-sum-exps and, per
 * thread, room for one block's probabilities and their gradient. */
typedef struct attention_saved {
    attention_dims dims;
    float         *lse;     /* (N, heads, T): log sum_j exp(s_ij) */
    float         *scratch; /* (threads, 2, QBLOCK, T) */
    int            threads;
} attention_saved;

/* Offset of head h's q slice of sample n in qkv */
static int64_t head_offset(attention_dims a, int64_t n, int h)
{
    return n * a.T * 3 * a.C + (int64_t)h * a.d;
}

/* s = scale q k^T for query rows [i0, i0 + rows): s is rows x T */
static void block_scores(attention_dims a, const float *q, int i0, int rows,
                         float *s)
{
    const int ld = 3 * a.C;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, a.T, a.d,
                a.scale, q + (int64_t)i0 * ld, ld, q + a.C, ld, 0.0f, s, a.T);
}

/* y = softmax(q k^T scale) v for one (n, head); lse[i] = log-sum-exp of
 * row i when lse is given. s: QBLOCK x T scratch. */
static void head_forward(attention_dims a, const float *q, float *y,
                         float *lse, float *s)
{
    const int ld = 3 * a.C, T = a.T;
    for (int i0 = 0; i0 < T; i0 += QBLOCK) {
        const int rows = T - i0 < QBLOCK ? T - i0 : QBLOCK;
        float inv[QBLOCK];
        block_scores(a, q, i0, rows, s);
        for (int i = 0; i < rows; i++) {
            float max;
            const double sum = exp_shifted_row(s + (int64_t)i * T,
                                               s + (int64_t)i * T, T, &max);
            inv[i] = (float)(1.0 / sum);
            if (lse)
                lse[i0 + i] = max + (float)log(sum);
        }
        float *yb = y + (int64_t)i0 * a.C;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, a.d, T,
                    1.0f, s, T, q + 2 * a.C, ld, 0.0f, yb, a.C);
        for (int i = 0; i < rows; i++)
            for (int c = 0; c < a.d; c++)
                yb[(int64_t)i * a.C + c] *= inv[i];
    }
}

/* One query row: p = exp(s - lse) (in s) and ds = p (dp - dy.y) scale (in
 * dp), since sum_j p_j dp_j = dy . sum_j p_j v_j = dy . y */
BD_VECTOR_CLONES
static void row_score_grad(float *s, float *dp, int T, float lse,
                           const float *y, const float *dy, int d, float scale)
{
    float dot = 0.0f;
    for (int c = 0; c < d; c++)
        dot += dy[c] * y[c];
    for (int j = 0; j < T; j++) {
        const float x = s[j] - lse;
        s[j] = x < -87.0f ? -87.0f : x;
    }
    for (int j = 0; j < T; j++) {
        const float p = bd_exp_nonpositive(s[j]);
        s[j] = p;
        dp[j] = p * (dp[j] - dot) * scale;
    }
}

/* Per block of query rows: p (recomputed), dp = dy v^T, ds (in dp),
 * dv += p^T dy,  dq += ds k,  dk += ds^T q   for one (n, head) */
static void head_backward(attention_dims a, const float *q, const float *y,
                          const float *dy, const float *lse, float *dq,
                          float *s, float *dp)
{
    const int ld = 3 * a.C, T = a.T;
    const float *k = q + a.C, *v = q + 2 * a.C;
    float *dk = dq + a.C, *dv = dq + 2 * a.C;
    for (int i0 = 0; i0 < T; i0 += QBLOCK) {
        const int rows = T - i0 < QBLOCK ? T - i0 : QBLOCK;
        const float *qb = q + (int64_t)i0 * ld;
        const float *dyb = dy + (int64_t)i0 * a.C;
        block_scores(a, q, i0, rows, s);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, T, a.d,
                    1.0f, dyb, a.C, v, ld, 0.0f, dp, T);
        for (int i = 0; i < rows; i++)
            row_score_grad(s + (int64_t)i * T, dp + (int64_t)i * T, T,
                           lse[i0 + i], y + (int64_t)(i0 + i) * a.C,
                           dyb + (int64_t)i * a.C, a.d, a.scale);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, a.d, rows,
                    1.0f, s, T, dyb, a.C, 1.0f, dv, ld);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, a.d, T,
                    1.0f, dp, T, k, ld, 1.0f, dq + (int64_t)i0 * ld, ld);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, a.d, rows,
                    1.0f, dp, T, qb, ld, 1.0f, dk, ld);
    }
}

/* Threads for the (sample, head) pairs, at most `most` */
static int attention_threads(attention_dims a, int most)
{
    const int t = bd_threads_for(4.0 * (double)a.N * a.T * a.T * a.C);
    return t < most ? t : most;
}

static void attention_backward(const bd_node *node)
{
    const attention_saved *sv = node->ctx;
    const attention_dims a = sv->dims;
    const float *qkv = node->in[0]->data, *y = node->out->data;
    const float *dy = node->out->grad;
    float *dqkv = bd_grad_of(node->in[0]);
    const int64_t block = (int64_t)QBLOCK * a.T, pairs = a.N * a.heads;
    #pragma omp parallel for schedule(static) \
        num_threads(attention_threads(a, sv->threads))
    for (int64_t nh = 0; nh < pairs; nh++) {
        const int64_t n = nh / a.heads;
        const int h = (int)(nh % a.heads);
        const int64_t at = head_offset(a, n, h);
        const int64_t yo = n * a.T * a.C + (int64_t)h * a.d;
        float *s = sv->scratch + 2 * block * omp_get_thread_num();
        head_backward(a, qkv + at, y + yo, dy + yo, sv->lse + nh * a.T,
                      dqkv + at, s, s + block);
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

/* Saved state when backward will run (log-sum-exps and two blocks of
 * scratch per thread), else one block of scratch per thread. */
static bd_status attention_saved_new(bd_tape *tp, attention_dims a, bool saved,
                                     attention_saved **sv, float **scratch)
{
    const int threads = bd_num_threads();
    const size_t block = (size_t)QBLOCK * a.T * sizeof(float);
    const size_t lse = saved ? (size_t)a.N * a.heads * a.T * sizeof(float) : 0;
    *sv = saved ? bd_tape_alloc(tp, sizeof **sv) : NULL;
    *scratch = bd_tape_alloc(tp, (saved ? 2 : 1) * block * threads + lse);
    if (!*scratch || (saved && !*sv))
        return BD_E_NOMEM;
    if (saved)
        **sv = (attention_saved){
            .dims = a, .scratch = *scratch, .threads = threads,
            .lse = *scratch + 2 * QBLOCK * (int64_t)a.T * threads};
    return BD_OK;
}

/* qkv: (N, T, 3C), C = heads d -> y: (N, T, C) */
bd_status bd_attention(bd_tape *tp, bd_tensor *qkv, int heads, bd_tensor **y)
{
    attention_dims a = {0};
    BD_TRY(attention_check(qkv, heads, &a));
    const int64_t shape[3] = {a.N, a.T, a.C};
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, 3, shape, &out));
    attention_saved *sv;
    float *scratch;
    BD_TRY(attention_saved_new(tp, a, bd_tape_needs_node(tp, &qkv, 1), &sv,
                               &scratch));
    const int64_t block = (int64_t)QBLOCK * a.T, pairs = a.N * heads;
    #pragma omp parallel for schedule(static) \
        num_threads(attention_threads(a, bd_num_threads()))
    for (int64_t nh = 0; nh < pairs; nh++) {
        const int64_t n = nh / heads;
        const int h = (int)(nh % heads);
        head_forward(a, qkv->data + head_offset(a, n, h),
                     out->data + n * a.T * a.C + (int64_t)h * a.d,
                     sv ? sv->lse + nh * a.T : NULL,
                     scratch + block * omp_get_thread_num());
    }
    BD_TRY(bd_op_finish(tp, attention_backward, out, &qkv, 1, sv));
    *y = out;
    return BD_OK;
}
