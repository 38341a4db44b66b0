/* 2-D convolution as per-image im2col + sgemm.
 *
 * For one image the patches form a column matrix col: (C KH KW, OH OW), and
 * y = w col + b with w viewed as (O, C KH KW). One column buffer, sized for
 * one image, comes from the tape's arena and is reused image after image, so
 * each product's operands stay in cache (as fast as one batched product on
 * the target machine) and the op never mallocs. A 1x1, stride-1, unpadded
 * conv needs no im2col: the image itself is the column matrix. */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "op.h"

typedef struct conv_geom {
    int C, H, W;       /* input channels and size */
    int O, KH, KW;     /* output channels, kernel size */
    int stride, pad;
    int OH, OW;        /* output size */
    int K, P;          /* column matrix: K = C KH KW rows, P = OH OW columns */
    bool pointwise;    /* 1x1, stride 1, pad 0: col is x itself */
} conv_geom;

typedef struct conv_ctx {
    conv_geom g;
    float    *col;     /* (K, P) scratch, NULL when pointwise */
} conv_ctx;

/* Output positions o in [*lo, *hi) whose input index o s - pad + k lies in
 * [0, n). */
static void valid_range(int k, int s, int pad, int n, int out, int *lo, int *hi)
{
    const int64_t first = (int64_t)pad - k, last = (int64_t)n - 1 + pad - k;
    const int64_t a = first > 0 ? (first + s - 1) / s : 0; /* o s >= first */
    const int64_t b = last >= 0 ? last / s + 1 : 0;         /* o s <= last */
    *hi = (int)(b < out ? b : out);
    *lo = (int)(a < *hi ? a : *hi);
}

/* Row (c, kh, kw) of the column matrix, seen as an OH x OW image: outputs in
 * [oh_lo, oh_hi) x [ow_lo, ow_hi) read the input plane at origin + oh s W +
 * ow s; all others read zero padding. */
typedef struct patch_row {
    int     oh_lo, oh_hi, ow_lo, ow_hi;
    int64_t origin;
} patch_row;

static patch_row patch_row_at(const conv_geom *g, int kh, int kw)
{
    patch_row r;
    valid_range(kh, g->stride, g->pad, g->H, g->OH, &r.oh_lo, &r.oh_hi);
    valid_range(kw, g->stride, g->pad, g->W, g->OW, &r.ow_lo, &r.ow_hi);
    r.origin = (int64_t)(kh - g->pad) * g->W + (kw - g->pad);
    return r;
}

static bool patch_row_empty(const patch_row *r)
{
    return r->oh_lo == r->oh_hi || r->ow_lo == r->ow_hi;
}

/* With stride 1 and OW = W, input and column rows have the same pitch, so
 * the valid rectangle is one run of the flat plane, [q0, q1) in column
 * indices; the run also crosses the padding columns between rows. */
static bool flat_rows(const conv_geom *g) { return g->stride == 1 && g->OW == g->W; }

static void flat_run(const conv_geom *g, const patch_row *r, int64_t *q0,
                     int64_t *q1)
{
    *q0 = (int64_t)r->oh_lo * g->OW + r->ow_lo;
    *q1 = (int64_t)(r->oh_hi - 1) * g->OW + r->ow_hi;
}

/* Zero the entries of a column row that fall outside its valid rectangle. */
static void zero_outside(const conv_geom *g, const patch_row *r, float *row)
{
    const int OW = g->OW;
    memset(row, 0, (size_t)r->oh_lo * OW * sizeof *row);
    for (int oh = r->oh_lo; oh < r->oh_hi; oh++) {
        float *line = row + (int64_t)oh * OW;
        for (int ow = 0; ow < r->ow_lo; ow++)
            line[ow] = 0.0f;
        for (int ow = r->ow_hi; ow < OW; ow++)
            line[ow] = 0.0f;
    }
    memset(row + (int64_t)r->oh_hi * OW, 0,
           (size_t)(g->OH - r->oh_hi) * OW * sizeof *row);
}

/* One row of im2col: row[oh, ow] = plane[oh s - pad + kh, ow s - pad + kw],
 * zero outside the plane.   plane: (H, W) -> row: (OH, OW) */
static void im2col_row(const conv_geom *g, const patch_row *r,
                       const float *plane, float *row)
{
    if (patch_row_empty(r)) {
        memset(row, 0, (size_t)g->P * sizeof *row);
        return;
    }
    if (flat_rows(g)) {
        int64_t q0, q1;
        flat_run(g, r, &q0, &q1);
        memcpy(row + q0, plane + (r->origin + q0), (size_t)(q1 - q0) * sizeof *row);
    } else {
        for (int oh = r->oh_lo; oh < r->oh_hi; oh++) {
            float *dst = row + (int64_t)oh * g->OW;
            const float *src = plane + (r->origin + (int64_t)oh * g->stride * g->W);
            for (int ow = r->ow_lo; ow < r->ow_hi; ow++)
                dst[ow] = src[(int64_t)ow * g->stride];
        }
    }
    zero_outside(g, r, row);
}

/* The adjoint of im2col_row: plane gets += every entry of row at the place
 * it was read from. Row is scratch: its padding entries are zeroed.
 * row: (OH, OW) -> plane: (H, W) */
static void col2im_row_add(const conv_geom *g, const patch_row *r, float *row,
                           float *plane)
{
    if (patch_row_empty(r))
        return;
    if (flat_rows(g)) {
        int64_t q0, q1;
        flat_run(g, r, &q0, &q1);
        zero_outside(g, r, row);
        float *dst = plane + (r->origin + q0);
        for (int64_t q = 0; q < q1 - q0; q++)
            dst[q] += row[q0 + q];
    } else {
        for (int oh = r->oh_lo; oh < r->oh_hi; oh++) {
            const float *src = row + (int64_t)oh * g->OW;
            float *dst = plane + (r->origin + (int64_t)oh * g->stride * g->W);
            for (int ow = r->ow_lo; ow < r->ow_hi; ow++)
                dst[(int64_t)ow * g->stride] += src[ow];
        }
    }
}

/* col[(c, kh, kw), (oh, ow)] = x[c, oh s - pad + kh, ow s - pad + kw], zero
 * outside x.   x: (C, H, W) -> col: (K, P) */
static void im2col(const conv_geom *g, const float *x, float *col)
{
    const int64_t plane = (int64_t)g->H * g->W, step = (int64_t)g->KH * g->KW * g->P;
    for (int kh = 0; kh < g->KH; kh++)
        for (int kw = 0; kw < g->KW; kw++) {
            const patch_row r = patch_row_at(g, kh, kw);
            float *row = col + (int64_t)(kh * g->KW + kw) * g->P;
            for (int c = 0; c < g->C; c++)
                im2col_row(g, &r, x + c * plane, row + c * step);
        }
}

/* dx += col2im(col), the adjoint of im2col; clobbers col.
 * col: (K, P) -> dx: (C, H, W) */
static void col2im_add(const conv_geom *g, float *col, float *dx)
{
    const int64_t plane = (int64_t)g->H * g->W, step = (int64_t)g->KH * g->KW * g->P;
    for (int kh = 0; kh < g->KH; kh++)
        for (int kw = 0; kw < g->KW; kw++) {
            const patch_row r = patch_row_at(g, kh, kw);
            float *row = col + (int64_t)(kh * g->KW + kw) * g->P;
            for (int c = 0; c < g->C; c++)
                col2im_row_add(g, &r, row + c * step, dx + c * plane);
        }
}

/* Sum of n floats in eight interleaved lanes (vectorisable). */
static float lane_sum(const float *v, int n)
{
    float lane[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            lane[j] += v[i + j];
    float acc = 0.0f;
    for (; i < n; i++)
        acc += v[i];
    for (int j = 0; j < 8; j++)
        acc += lane[j];
    return acc;
}

/* The column matrix of image x: x itself when pointwise, else im2col. */
static const float *columns(const conv_ctx *ctx, const float *x)
{
    if (ctx->g.pointwise)
        return x;
    im2col(&ctx->g, x, ctx->col);
    return ctx->col;
}

/* y = w col + b.   x: (C, H, W), w: (O, K), b: (O) or NULL -> y: (O, P) */
static void conv_forward_image(const conv_ctx *ctx, const float *x,
                               const float *w, const float *b, float *y)
{
    const conv_geom *g = &ctx->g;
    const float *col = columns(ctx, x);
    if (b)
        for (int o = 0; o < g->O; o++)
            for (int p = 0; p < g->P; p++)
                y[(int64_t)o * g->P + p] = b[o];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->O, g->P, g->K,
                1.0f, w, g->K, col, g->P, b ? 1.0f : 0.0f, y, g->P);
}

/* dw += dy col^T,  dx += col2im(w^T dy),  db += row sums of dy; each only
 * when non-NULL.   dy: (O, P), x and dx: (C, H, W) */
static void conv_backward_image(const conv_ctx *ctx, const float *x,
                                const float *w, const float *dy, float *dx,
                                float *dw, float *db)
{
    const conv_geom *g = &ctx->g;
    if (db)
        for (int o = 0; o < g->O; o++)
            db[o] += lane_sum(dy + (int64_t)o * g->P, g->P);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->O, g->K, g->P,
                    1.0f, dy, g->P, columns(ctx, x), g->P, 1.0f, dw, g->K);
    if (!dx)
        return;
    float *dcol = g->pointwise ? dx : ctx->col;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g->K, g->P, g->O,
                1.0f, w, g->K, dy, g->P, g->pointwise ? 1.0f : 0.0f, dcol,
                g->P);
    if (!g->pointwise)
        col2im_add(g, dcol, dx);
}

static void conv2d_backward(const bd_node *node)
{
    const conv_ctx *ctx = node->ctx;
    const conv_geom *g = &ctx->g;
    const bd_tensor *x = node->in[0], *w = node->in[1], *b = node->in[2];
    const int64_t x_img = (int64_t)g->C * g->H * g->W, y_img = (int64_t)g->O * g->P;
    float *dx = bd_grad_of(x), *dw = bd_grad_of(w), *db = bd_grad_of(b);
    for (int64_t n = 0; n < x->shape[0]; n++)
        conv_backward_image(ctx, x->data + n * x_img, w->data,
                            node->out->grad + n * y_img, dx ? dx + n * x_img : NULL,
                            dw, db);
}

/* Checks the arguments and derives the geometry. */
static bd_status conv_check(const bd_tensor *x, const bd_tensor *w,
                            const bd_tensor *b, int stride, int pad,
                            conv_geom *g)
{
    char sx[64], sw[64];
    BD_TRY(bd_op_check_ndim("conv2d", "x", x, 4, 4));
    BD_TRY(bd_op_check_ndim("conv2d", "w", w, 4, 4));
    if (w->shape[1] != x->shape[1])
        return bd_fail(BD_E_ARG, "conv2d: w has shape %s, expected %lld input"
                       " channels (dim 1) to match x of shape %s",
                       bd_shape_str(w, sw, sizeof sw), (long long)x->shape[1],
                       bd_shape_str(x, sx, sizeof sx));
    if (b) {
        BD_TRY(bd_op_check_ndim("conv2d", "b", b, 1, 1));
        BD_TRY(bd_op_check_dim("conv2d", "b", b, 0, w->shape[0]));
    }
    if (stride < 1)
        return bd_fail(BD_E_ARG, "conv2d: stride is %d, expected >= 1", stride);
    if (pad < 0)
        return bd_fail(BD_E_ARG, "conv2d: pad is %d, expected >= 0", pad);
    const int64_t hp = x->shape[2] + 2 * (int64_t)pad;
    const int64_t wp = x->shape[3] + 2 * (int64_t)pad;
    const int64_t kh = w->shape[2], kw = w->shape[3];
    if (kh > hp || kw > wp)
        return bd_fail(BD_E_ARG, "conv2d: kernel %lldx%lld is larger than the"
                       " padded input %lldx%lld (x %s, pad %d): the output"
                       " would be empty", (long long)kh, (long long)kw,
                       (long long)hp, (long long)wp,
                       bd_shape_str(x, sx, sizeof sx), pad);
    const int64_t oh = (hp - kh) / stride + 1, ow = (wp - kw) / stride + 1;
    const int64_t k = x->shape[1] * kh * kw;
    if (hp > INT_MAX || wp > INT_MAX || oh * ow > INT_MAX || k > INT_MAX
        || w->shape[0] > INT_MAX)
        return bd_fail(BD_E_ARG, "conv2d: output %lldx%lld, %lld values per"
                       " patch or %lld output channels exceed the int range"
                       " of BLAS", (long long)oh, (long long)ow, (long long)k,
                       (long long)w->shape[0]);
    *g = (conv_geom){
        .C = (int)x->shape[1], .H = (int)x->shape[2], .W = (int)x->shape[3],
        .O = (int)w->shape[0], .KH = (int)kh, .KW = (int)kw,
        .stride = stride, .pad = pad, .OH = (int)oh, .OW = (int)ow,
        .K = (int)k, .P = (int)(oh * ow),
        .pointwise = kh == 1 && kw == 1 && stride == 1 && pad == 0,
    };
    return BD_OK;
}

/* x: (N, C, H, W), w: (O, C, KH, KW), b: (O) -> y: (N, O, OH, OW) */
bd_status bd_conv2d(bd_tape *tp, bd_tensor *x, bd_tensor *w, bd_tensor *b,
                    int stride, int pad, bd_tensor **y)
{
    conv_geom g;
    BD_TRY(conv_check(x, w, b, stride, pad, &g));
    conv_ctx *ctx = bd_tape_alloc(tp, sizeof *ctx);
    if (!ctx)
        return BD_E_NOMEM;
    ctx->g = g;
    ctx->col = NULL;
    if (!g.pointwise) {
        ctx->col = bd_tape_alloc(tp, (size_t)g.K * (size_t)g.P * sizeof(float));
        if (!ctx->col)
            return BD_E_NOMEM;
    }
    const int64_t shape[4] = {x->shape[0], g.O, g.OH, g.OW};
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, 4, shape, &out));
    const int64_t x_img = (int64_t)g.C * g.H * g.W, y_img = (int64_t)g.O * g.P;
    for (int64_t n = 0; n < x->shape[0]; n++)
        conv_forward_image(ctx, x->data + n * x_img, w->data,
                           b ? b->data : NULL, out->data + n * y_img);
    bd_tensor *in[3] = {x, w, b};
    BD_TRY(bd_op_finish(tp, conv2d_backward, out, in, 3, ctx));
    *y = out;
    return BD_OK;
}
