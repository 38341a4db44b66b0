/* Elementwise and shape ops: broadcasting add and mul, scale, reshape (no
 * copy) and channel concat. */
#include <string.h>

#include "bd/parallel.h"
#include "op.h"

/* Elements per chunk handed to a thread */
enum { CHUNK = 16384 };

static int64_t chunk_end(int64_t at, int64_t numel)
{
    return numel - at < CHUNK ? numel : at + CHUNK;
}

/* ---- broadcasting --------------------------------------------------------- */

/* How b (each dim equal to a's or 1) lines up with a. Adjacent dims where b
 * is broadcast, or where b is full, are merged, so a is walked as `rows`
 * contiguous rows of `len`; in each row b is either a matching contiguous
 * vector or one repeated value. Same shapes: one row. (1,C,1,1) or
 * (N,C,1,1) on (N,C,H,W): N*C rows of H*W against one value each. */
typedef struct broadcast {
    int     n_outer;      /* merged dims before the row */
    int64_t outer[BD_MAX_DIMS], b_stride[BD_MAX_DIMS];
    int64_t rows, len;
    bool    b_vector;     /* b varies along the row */
} broadcast;

static broadcast broadcast_plan(const bd_tensor *a, const bd_tensor *b)
{
    int64_t extent[BD_MAX_DIMS];
    bool full[BD_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < a->ndim; d++) {
        if (a->shape[d] == 1)
            continue;
        bool f = b->shape[d] != 1;
        if (n > 0 && full[n - 1] == f) {
            extent[n - 1] *= a->shape[d];
        } else {
            extent[n] = a->shape[d];
            full[n++] = f;
        }
    }
    broadcast p = {.len = 1, .rows = 1, .b_vector = true};
    if (n == 0)
        return p;
    p.n_outer = n - 1;
    p.len = extent[n - 1];
    p.b_vector = full[n - 1];
    int64_t stride = p.b_vector ? p.len : 1;
    for (int g = n - 2; g >= 0; g--) {
        p.outer[g] = extent[g];
        p.b_stride[g] = full[g] ? stride : 0;
        if (full[g])
            stride *= extent[g];
        p.rows *= extent[g];
    }
    return p;
}

/* Offset into b of row r of a. */
static int64_t b_row(const broadcast *p, int64_t r)
{
    int64_t off = 0;
    for (int g = p->n_outer - 1; g >= 0; g--) {
        off += (r % p->outer[g]) * p->b_stride[g];
        r /= p->outer[g];
    }
    return off;
}

static bd_status check_broadcast(const char *op, const bd_tensor *a,
                                 const bd_tensor *b)
{
    BD_TRY(bd_op_check_ndim(op, "a", a, 1, BD_MAX_DIMS));
    BD_TRY(bd_op_check_ndim(op, "b", b, 1, BD_MAX_DIMS));
    bool ok = a->ndim == b->ndim;
    for (int d = 0; ok && d < a->ndim; d++)
        ok = b->shape[d] == a->shape[d] || b->shape[d] == 1;
    if (!ok) {
        char sa[64], sb[64];
        return bd_fail(BD_E_ARG, "%s: b has shape %s, which does not broadcast"
                       " to a's shape %s: expected the same number of dims, each"
                       " equal to a's or 1", op, bd_shape_str(b, sb, sizeof sb),
                       bd_shape_str(a, sa, sizeof sa));
    }
    return BD_OK;
}

/* ---- add ------------------------------------------------------------------ */

/* y = a + b over elements [lo, hi) of a, row piece by row piece */
static void add_forward(const broadcast *p, const float *a, const float *b,
                        float *y, int64_t lo, int64_t hi)
{
    while (lo < hi) {
        const int64_t r = lo / p->len, i0 = lo % p->len;
        const int64_t n = p->len - i0 < hi - lo ? p->len - i0 : hi - lo;
        const int64_t off = b_row(p, r);
        const float *ar = a + lo;
        float *yr = y + lo;
        if (p->b_vector) {
            const float *br = b + off + i0;
            for (int64_t i = 0; i < n; i++)
                yr[i] = ar[i] + br[i];
        } else {
            const float s = b[off];
            for (int64_t i = 0; i < n; i++)
                yr[i] = ar[i] + s;
        }
        lo += n;
    }
}

/* d (+)= dy over n elements, on bd's threads */
static void pass_grad(const float *dy, float *d, int64_t n, bool assign)
{
    if (assign) {
        memcpy(d, dy, (size_t)n * sizeof *d);
        return;
    }
    #pragma omp parallel for schedule(static) num_threads(bd_threads_for((double)n))
    for (int64_t at = 0; at < n; at += CHUNK)
        for (int64_t i = at; i < chunk_end(at, n); i++)
            d[i] += dy[i];
}

/* da += dy;  db += dy summed over the dims where b is broadcast */
static void add_backward(const bd_node *node)
{
    const bd_tensor *a = node->in[0], *b = node->in[1];
    const float *dy = node->out->grad;
    bool assign;
    float *da = bd_grad_first(a, &assign);
    if (da)
        pass_grad(dy, da, a->numel, assign);
    if (bd_shape_equal(a, b)) {
        float *db_same = bd_grad_first(b, &assign); /* after da: b may be a */
        if (db_same)
            pass_grad(dy, db_same, b->numel, assign);
        return;
    }
    float *db = bd_grad_of(b);
    if (!db)
        return;
    const broadcast p = broadcast_plan(a, b);
    for (int64_t r = 0; r < p.rows; r++) {
        const float *dyr = dy + r * p.len;
        float *dbr = db + b_row(&p, r);
        if (p.b_vector) {
            for (int64_t i = 0; i < p.len; i++)
                dbr[i] += dyr[i];
        } else {
            float acc = 0.0f;
            for (int64_t i = 0; i < p.len; i++)
                acc += dyr[i];
            dbr[0] += acc;
        }
    }
}

/* ---- mul ------------------------------------------------------------------ */

/* y = a * b over elements [lo, hi) of a, row piece by row piece */
static void mul_forward(const broadcast *p, const float *a, const float *b,
                        float *y, int64_t lo, int64_t hi)
{
    while (lo < hi) {
        const int64_t r = lo / p->len, i0 = lo % p->len;
        const int64_t n = p->len - i0 < hi - lo ? p->len - i0 : hi - lo;
        const int64_t off = b_row(p, r);
        const float *ar = a + lo;
        float *yr = y + lo;
        if (p->b_vector) {
            const float *br = b + off + i0;
            for (int64_t i = 0; i < n; i++)
                yr[i] = ar[i] * br[i];
        } else {
            const float s = b[off];
            for (int64_t i = 0; i < n; i++)
                yr[i] = ar[i] * s;
        }
        lo += n;
    }
}

/* da += dy * b;  db += dy * a summed over the dims where b is broadcast */
static void mul_backward(const bd_node *node)
{
    const bd_tensor *a = node->in[0], *b = node->in[1];
    const float *dy = node->out->grad;
    float *da = bd_grad_of(a), *db = bd_grad_of(b);
    const broadcast p = broadcast_plan(a, b);
    for (int64_t r = 0; r < p.rows; r++) {
        const int64_t off = b_row(&p, r);
        const float *ar = a->data + r * p.len, *br = b->data + off;
        const float *dyr = dy + r * p.len;
        if (da) {
            float *dar = da + r * p.len;
            for (int64_t i = 0; i < p.len; i++)
                dar[i] += dyr[i] * (p.b_vector ? br[i] : br[0]);
        }
        if (db && p.b_vector) {
            for (int64_t i = 0; i < p.len; i++)
                db[off + i] += dyr[i] * ar[i];
        } else if (db) {
            float acc = 0.0f;
            for (int64_t i = 0; i < p.len; i++)
                acc += dyr[i] * ar[i];
            db[off] += acc;
        }
    }
}

typedef void (*binary_forward_fn)(const broadcast *p, const float *a,
                                  const float *b, float *y, int64_t lo,
                                  int64_t hi);

/* a: (d0..d3), b: broadcastable to a -> y: like a */
static bd_status binary(bd_tape *tp, const char *op, binary_forward_fn forward,
                        bd_backward_fn backward, bd_tensor *a, bd_tensor *b,
                        bd_tensor **y)
{
    BD_TRY(check_broadcast(op, a, b));
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, a->ndim, a->shape, &out));
    const broadcast p = broadcast_plan(a, b);
    #pragma omp parallel for schedule(static) \
        num_threads(bd_threads_for((double)a->numel))
    for (int64_t at = 0; at < a->numel; at += CHUNK)
        forward(&p, a->data, b->data, out->data, at, chunk_end(at, a->numel));
    bd_tensor *in[2] = {a, b};
    BD_TRY(bd_op_finish(tp, backward, out, in, 2, NULL));
    *y = out;
    return BD_OK;
}

bd_status bd_add(bd_tape *tp, bd_tensor *a, bd_tensor *b, bd_tensor **y)
{
    return binary(tp, "add", add_forward, add_backward, a, b, y);
}

bd_status bd_mul(bd_tape *tp, bd_tensor *a, bd_tensor *b, bd_tensor **y)
{
    return binary(tp, "mul", mul_forward, mul_backward, a, b, y);
}

/* ---- scale ---------------------------------------------------------------- */

/* dx += alpha * dy */
static void scale_backward(const bd_node *node)
{
    const float alpha = *(const float *)node->ctx;
    const bd_tensor *x = node->in[0];
    const float *dy = node->out->grad;
    float *dx = bd_grad_of(x);
    for (int64_t i = 0; i < x->numel; i++)
        dx[i] += alpha * dy[i];
}

/* x: any -> y: like x, y = alpha x */
bd_status bd_scale(bd_tape *tp, bd_tensor *x, float alpha, bd_tensor **y)
{
    BD_TRY(bd_op_check_ndim("scale", "x", x, 1, BD_MAX_DIMS));
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, x->ndim, x->shape, &out));
    float *saved = bd_tape_alloc(tp, sizeof *saved);
    if (!saved)
        return BD_E_NOMEM;
    *saved = alpha;
    for (int64_t i = 0; i < x->numel; i++)
        out->data[i] = alpha * x->data[i];
    BD_TRY(bd_op_finish(tp, scale_backward, out, &x, 1, saved));
    *y = out;
    return BD_OK;
}

/* ---- reshape -------------------------------------------------------------- */

/* dx += dy (the output has its own grad buffer, though it shares x's data) */
static void reshape_backward(const bd_node *node)
{
    const bd_tensor *x = node->in[0];
    const float *dy = node->out->grad;
    float *dx = bd_grad_of(x);
    for (int64_t i = 0; i < x->numel; i++)
        dx[i] += dy[i];
}

/* x: any -> y: shape, same element count; y->data is x->data */
bd_status bd_reshape(bd_tape *tp, bd_tensor *x, int ndim, const int64_t *shape,
                     bd_tensor **y)
{
    BD_TRY(bd_op_check_ndim("reshape", "x", x, 1, BD_MAX_DIMS));
    if (!shape)
        return bd_fail(BD_E_ARG, "reshape: shape is NULL");
    int64_t numel;
    BD_TRY(bd_shape_check("reshape: new shape", ndim, shape, &numel));
    bd_tensor view = {.ndim = ndim};
    for (int d = 0; d < BD_MAX_DIMS; d++)
        view.shape[d] = d < ndim ? shape[d] : 1;
    if (numel != x->numel) {
        char sx[64], sv[64];
        return bd_fail(BD_E_ARG, "reshape: x has shape %s (%lld elements) but"
                       " the new shape %s has %lld, expected equal counts",
                       bd_shape_str(x, sx, sizeof sx), (long long)x->numel,
                       bd_shape_str(&view, sv, sizeof sv), (long long)numel);
    }
    bd_tensor *out = bd_tape_view(tp, x);
    if (!out)
        return BD_E_NOMEM;
    memcpy(out->shape, view.shape, sizeof out->shape);
    out->ndim = ndim;
    BD_TRY(bd_op_finish(tp, reshape_backward, out, &x, 1, NULL));
    *y = out;
    return BD_OK;
}

/* ---- concat --------------------------------------------------------------- */

/* Along dim 1, per sample: a's Ca * inner values, then b's Cb * inner. */
static void concat_forward(const bd_tensor *a, const bd_tensor *b, float *y)
{
    const int64_t N = a->shape[0], na = a->numel / N, nb = b->numel / N;
    for (int64_t n = 0; n < N; n++) {
        memcpy(y + n * (na + nb), a->data + n * na, (size_t)na * sizeof *y);
        memcpy(y + n * (na + nb) + na, b->data + n * nb, (size_t)nb * sizeof *y);
    }
}

/* d (+)= src over n elements */
static void slice_grad(const float *src, float *d, int64_t n, bool assign)
{
    if (assign)
        memcpy(d, src, (size_t)n * sizeof *d);
    else
        for (int64_t i = 0; i < n; i++)
            d[i] += src[i];
}

/* da += dy[:, :Ca],  db += dy[:, Ca:] */
static void concat_backward(const bd_node *node)
{
    const bd_tensor *a = node->in[0], *b = node->in[1];
    const int64_t N = a->shape[0], na = a->numel / N, nb = b->numel / N;
    const float *dy = node->out->grad;
    bool assign_a, assign_b;
    float *da = bd_grad_first(a, &assign_a);
    for (int64_t n = 0; da && n < N; n++)
        slice_grad(dy + n * (na + nb), da + n * na, na, assign_a);
    float *db = bd_grad_first(b, &assign_b); /* after da: b may be a */
    for (int64_t n = 0; db && n < N; n++)
        slice_grad(dy + n * (na + nb) + na, db + n * nb, nb, assign_b);
}

/* a: (N, Ca, ...), b: (N, Cb, ...) -> y: (N, Ca + Cb, ...), 2 to 4 dims;
 * all dims but 1 must match. */
bd_status bd_concat(bd_tape *tp, bd_tensor *a, bd_tensor *b, bd_tensor **y)
{
    BD_TRY(bd_op_check_ndim("concat", "a", a, 2, BD_MAX_DIMS));
    BD_TRY(bd_op_check_ndim("concat", "b", b, 2, BD_MAX_DIMS));
    bool ok = a->ndim == b->ndim;
    for (int d = 0; ok && d < a->ndim; d++)
        ok = d == 1 || a->shape[d] == b->shape[d];
    if (!ok) {
        char sa[64], sb[64];
        return bd_fail(BD_E_ARG, "concat: b has shape %s but a has shape %s,"
                       " expected the same dims except dim 1 (channels)",
                       bd_shape_str(b, sb, sizeof sb),
                       bd_shape_str(a, sa, sizeof sa));
    }
    int64_t shape[BD_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[1] = a->shape[1] + b->shape[1];
    bd_tensor *out;
    BD_TRY(bd_op_output(tp, a->ndim, shape, &out));
    concat_forward(a, b, out->data);
    bd_tensor *in[2] = {a, b};
    BD_TRY(bd_op_finish(tp, concat_backward, out, in, 2, NULL));
    *y = out;
    return BD_OK;
}
