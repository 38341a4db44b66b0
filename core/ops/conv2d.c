/* 2-D convolution: Winograd F(2x2, 3x3) (conv2d_winograd.c) for the 3x3
 * stride-1 convs where it measured faster, else im2col + sgemm over chunks
 * of images.
 *
 * The patches of `nb` images side by side form a column matrix col:
 * (C KH KW, nb OH OW), and y = w col + b with w viewed as (O, C KH KW): one
 * product per chunk. A chunk holds about CHUNK_COLUMNS columns, so the
 * small late layers (8x8, 4x4) still make one wide product, and at most
 * CHUNK_FLOATS in its column matrix. The gradients use the same chunks: dy
 * gathered as (O, nb OH OW), dw += dy col^T (one product over the chunk's
 * images), dcol = w^T dy scattered back by col2im.
 *
 * Threads: each pass is one parallel region over the chunks, each thread
 * running whole chunks (im2col, product, scatter) in its own scratch, so no
 * thread waits for another inside a pass. A pass has at most one thread
 * per chunk; with a single chunk (fewer images than threads) it runs on
 * one thread and bd_gemm splits the product instead. Thread t > 0 sums its chunks' dw in its own buffer,
 * added to dw in thread order afterwards. Scratch comes from the tape's
 * arena: the op never mallocs. */
#include <limits.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "bd/parallel.h"
#include "conv2d_winograd.h"
#include "fastmath.h"
#include "op.h"

/* Columns per chunk, and at most this many floats in its column matrix. */
enum { CHUNK_COLUMNS = 2048, CHUNK_FLOATS = 1 << 20 };

typedef struct conv_geom {
    int C, H, W;       /* input channels and size */
    int O, KH, KW;     /* output channels, kernel size */
    int stride, pad;
    int OH, OW;        /* output size */
    int K, P;          /* per image: K = C KH KW patch values, P = OH OW outputs */
} conv_geom;

typedef struct conv_ctx {
    conv_geom g;
    int       chunk;    /* images per chunk */
    int       threads;  /* threads of each pass */
    float    *col;      /* per thread: (K, chunk P) */
    float    *mat;      /* per thread: (O, chunk P), a chunk's outputs or grads */
    float    *dw_part;  /* per thread but the first: (O, K), NULL without grad */
    bool      wino;     /* Winograd F(2x2, 3x3) for y, dx and dw */
    wino_conv wy, wdx;  /* the plans for y (and dw), for dx */
    float    *scratch;  /* Winograd's (one pass at a time) */
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
 * outside x; rows ld apart.   x: (C, H, W) -> col: (K, P) */
static void im2col(const conv_geom *g, const float *x, float *col, int64_t ld)
{
    const int64_t plane = (int64_t)g->H * g->W, step = (int64_t)g->KH * g->KW * ld;
    for (int kh = 0; kh < g->KH; kh++)
        for (int kw = 0; kw < g->KW; kw++) {
            const patch_row r = patch_row_at(g, kh, kw);
            float *row = col + (int64_t)(kh * g->KW + kw) * ld;
            for (int c = 0; c < g->C; c++)
                im2col_row(g, &r, x + c * plane, row + c * step);
        }
}

/* dx += col2im(col), the adjoint of im2col; clobbers col.
 * col: (K, P), rows ld apart -> dx: (C, H, W) */
static void col2im_add(const conv_geom *g, float *col, int64_t ld, float *dx)
{
    const int64_t plane = (int64_t)g->H * g->W, step = (int64_t)g->KH * g->KW * ld;
    for (int kh = 0; kh < g->KH; kh++)
        for (int kw = 0; kw < g->KW; kw++) {
            const patch_row r = patch_row_at(g, kh, kw);
            float *row = col + (int64_t)(kh * g->KW + kw) * ld;
            for (int c = 0; c < g->C; c++)
                col2im_row_add(g, &r, row + c * step, dx + c * plane);
        }
}

/* A chunk: images [n0, n0 + nb) of the batch, nb P columns, and the
 * scratch of the thread running it. */
typedef struct chunk {
    int64_t n0;
    int     nb, cols;
    float  *col, *mat;
} chunk;

static chunk chunk_at(const conv_ctx *ctx, int64_t index, int64_t n, int thread)
{
    const int64_t n0 = index * ctx->chunk;
    const int nb = (int)(n - n0 < ctx->chunk ? n - n0 : ctx->chunk);
    const int64_t cols = (int64_t)ctx->chunk * ctx->g.P;
    return (chunk){n0, nb, nb * ctx->g.P, ctx->col + thread * (int64_t)ctx->g.K * cols,
                   ctx->mat + thread * (int64_t)ctx->g.O * cols};
}

static int64_t chunk_count(const conv_ctx *ctx, int64_t n)
{
    return (n + ctx->chunk - 1) / ctx->chunk;
}

/* col = the chunk's column matrix.   x: (N, C, H, W) -> col: (K, nb P) */
static void chunk_im2col(const conv_geom *g, const chunk *ch, const float *x)
{
    const int64_t x_img = (int64_t)g->C * g->H * g->W;
    for (int i = 0; i < ch->nb; i++)
        im2col(g, x + (ch->n0 + i) * x_img, ch->col + (int64_t)i * g->P, ch->cols);
}

/* dx[n0 + i] += col2im(col[:, i P : (i + 1) P]); clobbers col. */
static void chunk_col2im(const conv_geom *g, const chunk *ch, float *dx)
{
    const int64_t x_img = (int64_t)g->C * g->H * g->W;
    for (int i = 0; i < ch->nb; i++)
        col2im_add(g, ch->col + (int64_t)i * g->P, ch->cols, dx + (ch->n0 + i) * x_img);
}

/* y = w col + b for one chunk.   x: (N, C, H, W), w: (O, K) -> y: (N, O, P) */
static void conv_forward_chunk(const conv_geom *g, const chunk *ch,
                               const float *x, const float *w, const float *b,
                               float *y)
{
    const int64_t y_img = (int64_t)g->O * g->P;
    chunk_im2col(g, ch, x);
    bd_gemm(false, false, g->O, ch->cols, g->K, 1.0f, w, g->K, ch->col,
            ch->cols, 0.0f, ch->mat, ch->cols);
    for (int i = 0; i < ch->nb; i++)
        for (int o = 0; o < g->O; o++) {
            const float *src = ch->mat + (int64_t)o * ch->cols + (int64_t)i * g->P;
            float *dst = y + (ch->n0 + i) * y_img + (int64_t)o * g->P;
            const float bias = b ? b[o] : 0.0f;
            for (int p = 0; p < g->P; p++)
                dst[p] = src[p] + bias;
        }
}

/* dw += dy col^T,  dx += col2im(w^T dy) for one chunk; each only when
 * non-NULL.   dy: (N, O, P), x and dx: (N, C, H, W) */
static void conv_backward_chunk(const conv_geom *g, const chunk *ch,
                                const float *x, const float *w, const float *dy,
                                float *dx, float *dw)
{
    const int64_t y_img = (int64_t)g->O * g->P;
    for (int i = 0; i < ch->nb; i++)
        for (int o = 0; o < g->O; o++)
            memcpy(ch->mat + (int64_t)o * ch->cols + (int64_t)i * g->P,
                   dy + (ch->n0 + i) * y_img + (int64_t)o * g->P,
                   (size_t)g->P * sizeof(float));
    if (dw) {
        chunk_im2col(g, ch, x);
        bd_gemm(false, true, g->O, g->K, ch->cols, 1.0f, ch->mat, ch->cols,
                ch->col, ch->cols, 1.0f, dw, g->K);
    }
    if (dx) {
        bd_gemm(true, false, g->K, ch->cols, g->O, 1.0f, w, g->K, ch->mat,
                ch->cols, 0.0f, ch->col, ch->cols);
        chunk_col2im(g, ch, dx);
    }
}

/* db[o] += sum of dy[:, o, :], image after image.   dy: (N, O, P) */
static void conv_bias_grad(const conv_ctx *ctx, int64_t n, const float *dy,
                           float *db)
{
    const conv_geom *g = &ctx->g;
    const int64_t y_img = (int64_t)g->O * g->P;
    #pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int o = 0; o < g->O; o++)
        for (int64_t i = 0; i < n; i++)
            db[o] += (float)bd_sum_lanes(dy + i * y_img + (int64_t)o * g->P,
                                         g->P);
}

/* dw += the other threads' sums, in thread order.   dw: (O, K) */
static void conv_weight_grad_reduce(const conv_ctx *ctx, float *dw)
{
    const int64_t size = (int64_t)ctx->g.O * ctx->g.K;
    #pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int64_t i = 0; i < size; i++)
        for (int t = 1; t < ctx->threads; t++)
            dw[i] += ctx->dw_part[(t - 1) * size + i];
}

/* dw += dy col^T and dx += col2im(w^T dy) (each when non-NULL) over the
 * chunks, thread t > 0 summing dw in its own buffer. */
static void conv_backward_im2col(const conv_ctx *ctx, const bd_tensor *x,
                                 const float *w, const float *dy, float *dx,
                                 float *dw)
{
    const int64_t n = x->shape[0], size = (int64_t)ctx->g.O * ctx->g.K;
    if (dw && ctx->dw_part)
        memset(ctx->dw_part, 0, (size_t)(ctx->threads - 1) * size * sizeof(float));
    #pragma omp parallel num_threads(ctx->threads)
    {
        const int t = omp_get_thread_num();
        float *dw_t = !dw ? NULL : t ? ctx->dw_part + (t - 1) * size : dw;
        #pragma omp for schedule(static)
        for (int64_t c = 0; c < chunk_count(ctx, n); c++) {
            const chunk ch = chunk_at(ctx, c, n, t);
            conv_backward_chunk(&ctx->g, &ch, x->data, w, dy, dx, dw_t);
        }
    }
    if (dw)
        conv_weight_grad_reduce(ctx, dw);
}

static void conv2d_backward(const bd_node *node)
{
    const conv_ctx *ctx = node->ctx;
    const bd_tensor *x = node->in[0], *w = node->in[1], *b = node->in[2];
    float *dx = bd_grad_of(x), *dw = bd_grad_of(w), *db = bd_grad_of(b);
    const float *dy = node->out->grad;
    if (db)
        conv_bias_grad(ctx, x->shape[0], dy, db);
    if (dx && ctx->wino) {
        wino_run(&ctx->wdx, dy, w->data, NULL, dx, ctx->scratch);
        dx = NULL;
    }
    if (dw && ctx->wino) {
        wino_weight_grad(&ctx->wy, x->data, dy, dw, ctx->scratch);
        dw = NULL;
    }
    if (dw || dx)
        conv_backward_im2col(ctx, x, w->data, dy, dx, dw);
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
    };
    return BD_OK;
}

/* Images per chunk: about CHUNK_COLUMNS columns, at most CHUNK_FLOATS in
 * the column matrix, at least one image, and few enough for every thread
 * to get a chunk. */
static int chunk_images(const conv_geom *g, int64_t n, int threads)
{
    int64_t nb = (CHUNK_COLUMNS + g->P - 1) / g->P;
    const int64_t fit = CHUNK_FLOATS / ((int64_t)g->K * g->P);
    const int64_t share = (n + threads - 1) / threads;
    if (nb > fit)
        nb = fit;
    if (nb > share)
        nb = share;
    return nb < 1 ? 1 : (int)nb;
}

/* Winograd where the shape allows it and it measured faster than im2col:
 * at least WINO_CHANNELS channels in and out. The environment variable
 * BD_CONV=im2col or BD_CONV=winograd overrides the choice (tests,
 * measurements). */
enum { WINO_CHANNELS = 64 };

static bool conv_use_winograd(const conv_geom *g)
{
    if (!wino_fits(g->KH, g->KW, g->stride, g->pad))
        return false;
    const char *force = getenv("BD_CONV");
    if (force && !strcmp(force, "im2col"))
        return false;
    if (force && !strcmp(force, "winograd"))
        return true;
    return g->C >= WINO_CHANNELS && g->O >= WINO_CHANNELS;
}

/* The Winograd plans: for y, and for dx (dy convolved with the flipped,
 * transposed kernel, pad 2 - pad, accumulated). */
static void conv_plan_winograd(conv_ctx *ctx, int64_t n)
{
    const conv_geom *g = &ctx->g;
    ctx->wino = conv_use_winograd(g);
    if (!ctx->wino)
        return;
    ctx->wy = wino_plan((int)n, g->C, g->H, g->W, g->O, g->pad);
    ctx->wdx = wino_plan((int)n, g->O, g->OH, g->OW, g->C, 2 - g->pad);
    ctx->wdx.transpose_flip = ctx->wdx.accumulate = true;
}

/* The geometry, the plans and the scratch: Winograd's, or per-thread
 * im2col chunks. */
static conv_ctx *conv_ctx_new(bd_tape *tp, const conv_geom *g, int64_t n,
                              bool grad)
{
    conv_ctx *ctx = bd_tape_alloc(tp, sizeof *ctx);
    if (!ctx)
        return NULL;
    *ctx = (conv_ctx){.g = *g};
    conv_plan_winograd(ctx, n);
    ctx->threads = bd_threads_for(2.0 * (double)n * g->O * g->K * g->P);
    ctx->chunk = chunk_images(g, n, ctx->threads);
    const int64_t chunks = (n + ctx->chunk - 1) / ctx->chunk;
    if (ctx->threads > chunks) /* fewer images than threads: bd_gemm splits */
        ctx->threads = (int)chunks;
    if (ctx->wino) {
        size_t floats = wino_scratch_floats(&ctx->wy);
        if (grad && wino_scratch_floats(&ctx->wdx) > floats)
            floats = wino_scratch_floats(&ctx->wdx);
        if (grad && wino_weight_grad_scratch_floats(&ctx->wy) > floats)
            floats = wino_weight_grad_scratch_floats(&ctx->wy);
        ctx->scratch = bd_tape_alloc(tp, floats * sizeof(float));
        return ctx->scratch ? ctx : NULL;
    }
    const size_t cols = (size_t)ctx->chunk * (size_t)g->P;
    const size_t size = (size_t)g->O * (size_t)g->K;
    ctx->col = bd_tape_alloc(tp, ctx->threads * (size_t)g->K * cols * sizeof(float));
    ctx->mat = bd_tape_alloc(tp, ctx->threads * (size_t)g->O * cols * sizeof(float));
    if (grad && ctx->threads > 1)
        ctx->dw_part = bd_tape_alloc(tp, (ctx->threads - 1) * size * sizeof(float));
    if (!ctx->col || !ctx->mat || (grad && ctx->threads > 1 && !ctx->dw_part))
        return NULL;
    return ctx;
}

/* x: (N, C, H, W), w: (O, C, KH, KW), b: (O) -> y: (N, O, OH, OW) */
bd_status bd_conv2d(bd_tape *tp, bd_tensor *x, bd_tensor *w, bd_tensor *b,
                    int stride, int pad, bd_tensor **y)
{
    conv_geom g;
    BD_TRY(conv_check(x, w, b, stride, pad, &g));
    bd_tensor *in[3] = {x, w, b};
    const int64_t n = x->shape[0];
    conv_ctx *ctx = conv_ctx_new(tp, &g, n, bd_tape_needs_node(tp, in, 3));
    if (!ctx)
        return BD_E_NOMEM;
    const int64_t shape[4] = {n, g.O, g.OH, g.OW};
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, 4, shape, &out));
    const float *bias = b ? b->data : NULL;
    if (ctx->wino)
        wino_run(&ctx->wy, x->data, w->data, bias, out->data, ctx->scratch);
    else {
        #pragma omp parallel for schedule(static) num_threads(ctx->threads)
        for (int64_t c = 0; c < chunk_count(ctx, n); c++) {
            const chunk ch = chunk_at(ctx, c, n, omp_get_thread_num());
            conv_forward_chunk(&g, &ch, x->data, w->data, bias, out->data);
        }
    }
    BD_TRY(bd_op_finish(tp, conv2d_backward, out, in, 3, ctx));
    *y = out;
    return BD_OK;
}
