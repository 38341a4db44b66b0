/* Winograd F(2x2, 3x3) (Lavin and Gray, 2016). A 2x2 output tile comes
 * from a 4x4 input tile d and the 3x3 kernel g as
 *
 *     Y = A^T [ (G g G^T) .* (B^T d B) ] A,
 *
 * 16 multiplies instead of 36. Summed over the input channels, the 16
 * elementwise products become 16 products M[k] (O, T) = U[k] (O, C) V[k]
 * (C, T) over the T tiles of a chunk of images: 8 O C flops per output
 * pixel instead of im2col's 18. Each thread runs whole chunks (input
 * transform, 16 products, output transform) in its own scratch, after the
 * kernel transform U, which the threads share. */
#include "conv2d_winograd.h"

#include <omp.h>
#include <string.h>

#include "bd/parallel.h"
#include "fastmath.h"

/* At most this many floats in a thread's V (16, C, T) or M (16, O, T). */
enum { TILE_FLOATS = 1 << 18 };

typedef struct wino_dims {
    int OH, OW;      /* output size */
    int TH, TW;      /* tiles per image: rows, columns */
    int tiles;       /* TH TW */
} wino_dims;

static wino_dims dims_of(const wino_conv *p)
{
    wino_dims d;
    d.OH = p->H + 2 * p->pad - 2;
    d.OW = p->W + 2 * p->pad - 2;
    d.TH = (d.OH + 1) / 2;
    d.TW = (d.OW + 1) / 2;
    d.tiles = d.TH * d.TW;
    return d;
}

bool wino_fits(int KH, int KW, int stride, int pad)
{
    return KH == 3 && KW == 3 && stride == 1 && pad <= 2;
}

wino_conv wino_plan(int N, int C, int H, int W, int O, int pad)
{
    wino_conv p = {.N = N, .C = C, .H = H, .W = W, .O = O, .pad = pad};
    const wino_dims d = dims_of(&p);
    const int wide = C > O ? C : O;
    p.threads = bd_threads_for(8.0 * N * O * C * d.OH * d.OW);
    int64_t nb = TILE_FLOATS / (16 * (int64_t)wide * d.tiles);
    const int64_t share = (N + p.threads - 1) / p.threads;
    if (nb > share)
        nb = share;
    p.chunk = nb < 1 ? 1 : (int)nb;
    const int64_t chunks = (N + p.chunk - 1) / p.chunk;
    if (p.threads > chunks) /* fewer images than threads: bd_gemm splits */
        p.threads = (int)chunks;
    return p;
}

/* A tile row's working rows in the transforms, at most 12 (TW + 1): the
 * four padded input rows (8 (TW + 1)); the two output rows and t = A^T m
 * (12 TW); two output-grad rows and one of A y, split into even and odd
 * columns (6 TW). */
#define ROW_FLOATS(TW) (12 * ((size_t)(TW) + 1))

/* Per thread: V (16, C, T) and M (16, O, T), T the tiles of a chunk, and
 * the working rows. */
static size_t thread_floats(const wino_conv *p)
{
    const wino_dims d = dims_of(p);
    const size_t tiles = (size_t)p->chunk * (size_t)d.tiles;
    return 16 * ((size_t)p->C + (size_t)p->O) * tiles + ROW_FLOATS(d.TW);
}

size_t wino_scratch_floats(const wino_conv *p)
{
    return 16 * (size_t)p->O * (size_t)p->C + (size_t)p->threads * thread_floats(p);
}

/* U[k, o, c] = (G g G^T)[k] for the kernel g of (o, c).  -> u: (16, O, C) */
static void kernel_transform(const wino_conv *p, const float *w, float *u)
{
    const int64_t plane = (int64_t)p->O * p->C;
    #pragma omp for schedule(static)
    for (int o = 0; o < p->O; o++)
        for (int c = 0; c < p->C; c++) {
            float g[3][3], t[4][3];
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    g[i][j] = p->transpose_flip
                        ? w[((int64_t)c * p->O + o) * 9 + (2 - i) * 3 + (2 - j)]
                        : w[((int64_t)o * p->C + c) * 9 + i * 3 + j];
            for (int j = 0; j < 3; j++) {
                t[0][j] = g[0][j];
                t[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
                t[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
                t[3][j] = g[2][j];
            }
            float *dst = u + (int64_t)o * p->C + c;
            for (int i = 0; i < 4; i++) {
                dst[(i * 4 + 0) * plane] = t[i][0];
                dst[(i * 4 + 1) * plane] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
                dst[(i * 4 + 2) * plane] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
                dst[(i * 4 + 3) * plane] = t[i][2];
            }
        }
}

/* Row r of an H x W plane from column -pad on, zero outside the plane,
 * split into its even and odd columns: ev[i] = row[2 i - pad],
 * od[i] = row[2 i + 1 - pad], i < n. */
static void load_split_row(const float *plane, int H, int W, int r, int pad,
                           int n, float *ev, float *od)
{
    const float *src = plane + (int64_t)r * W;
    const bool inside = r >= 0 && r < H;
    for (int i = 0; i < n; i++) {
        const int c0 = 2 * i - pad, c1 = c0 + 1;
        ev[i] = inside && c0 >= 0 && c0 < W ? src[c0] : 0.0f;
        od[i] = inside && c1 >= 0 && c1 < W ? src[c1] : 0.0f;
    }
}

/* Row r0 + r of an H x W plane, columns c0 .. c0 + len - 1, zero outside.
 * -> row: (len) */
static void load_row(const float *plane, int H, int W, int r, int c0, int len,
                     float *row)
{
    for (int j = 0; j < len; j++) {
        const int c = c0 + j;
        row[j] = r >= 0 && r < H && c >= 0 && c < W ? plane[(int64_t)r * W + c] : 0.0f;
    }
}

/* V[k, c, t] = (B^T d B)[k] for the TW tiles of tile row th of one plane,
 * from its four input rows, padded.   plane: (H, W) -> dst[k kstride + tw] */
static void input_row(const wino_conv *p, const wino_dims *dm, const float *plane,
                      int th, float *rows, float *dst, int64_t kstride)
{
    const int len = 2 * dm->TW + 2, TW = dm->TW;
    float *d[4];
    for (int r = 0; r < 4; r++) {
        d[r] = rows + r * len;
        load_row(plane, p->H, p->W, 2 * th - p->pad + r, -p->pad, len, d[r]);
    }
    for (int r = 0; r < 4; r++) {
        /* t[r][j] at tile tw: (B^T d)[r][2 tw + j] */
        float *out = dst + (int64_t)r * 4 * kstride;
        for (int tw = 0; tw < TW; tw++) {
            float t[4];
            for (int j = 0; j < 4; j++) {
                const float *c = &d[0][2 * tw + j];
                const float a0 = c[0], a1 = c[len], a2 = c[2 * len], a3 = c[3 * len];
                t[j] = r == 0 ? a0 - a2 : r == 1 ? a1 + a2 : r == 2 ? a2 - a1 : a1 - a3;
            }
            out[tw] = t[0] - t[2];
            out[kstride + tw] = t[1] + t[2];
            out[2 * kstride + tw] = t[2] - t[1];
            out[3 * kstride + tw] = t[1] - t[3];
        }
    }
}

/* V[k, c, t] = (B^T d B)[k] for each tile t of the chunk's images.
 * x: (N, C, H, W) -> v: (16, C, T); rows: ROW_FLOATS(TW) floats */
static void input_transform(const wino_conv *p, const wino_dims *dm,
                            const float *x, int64_t n0, int nb, float *rows,
                            float *v)
{
    const int64_t T = (int64_t)nb * dm->tiles, plane = (int64_t)p->H * p->W;
    for (int i = 0; i < nb; i++)
        for (int c = 0; c < p->C; c++)
            for (int th = 0; th < dm->TH; th++)
                input_row(p, dm, x + ((n0 + i) * p->C + c) * plane, th, rows,
                          v + (int64_t)c * T + (int64_t)i * dm->tiles
                            + (int64_t)th * dm->TW, (int64_t)p->C * T);
}

/* Output rows 2 th and 2 th + 1 of one plane from its tile row th:
 * y = A^T m A (+ bias, or += y), down the tile (t = A^T m) then across
 * it, every step a loop over the tiles; the two rows interleave their even
 * and odd columns into `pair`.   m[k kstride + tw] -> plane: (OH, OW);
 * pair: ROW_FLOATS(TW) floats */
BD_VECTOR_CLONES
static void output_row(const wino_conv *p, const wino_dims *dm, const float *m,
                       int64_t kstride, int th, float bias, float *pair,
                       float *plane)
{
    const int TW = dm->TW, len = 2 * TW;
    float *t = pair + 2 * len; /* t[r][j][tw] = (A^T m)[r][j], 8 TW floats */
    for (int j = 0; j < 4; j++) {
        const float *m0 = m + j * kstride, *m1 = m + (4 + j) * kstride;
        const float *m2 = m + (8 + j) * kstride, *m3 = m + (12 + j) * kstride;
        float *t0 = t + j * TW, *t1 = t + (4 + j) * TW;
        for (int tw = 0; tw < TW; tw++) {
            t0[tw] = m0[tw] + m1[tw] + m2[tw];
            t1[tw] = m1[tw] - m2[tw] - m3[tw];
        }
    }
    for (int r = 0; r < 2; r++) {
        const float *tr = t + 4 * r * TW;
        float *row = pair + r * len;
        for (int tw = 0; tw < TW; tw++) {
            const float a = tr[tw], b = tr[TW + tw], c = tr[2 * TW + tw];
            row[2 * tw] = a + b + c;
            row[2 * tw + 1] = b - c - tr[3 * TW + tw];
        }
    }
    for (int r = 0; r < 2 && 2 * th + r < dm->OH; r++) {
        float *dst = plane + (int64_t)(2 * th + r) * dm->OW;
        const float *src = pair + r * len;
        if (p->accumulate)
            for (int j = 0; j < dm->OW; j++)
                dst[j] += src[j];
        else
            for (int j = 0; j < dm->OW; j++)
                dst[j] = src[j] + bias;
    }
}

/* y = A^T m A (+ b, or += y) for each tile of the chunk's images.
 * m: (16, O, T) -> y: (N, O, OH, OW); pair: ROW_FLOATS(TW) floats */
static void output_transform(const wino_conv *p, const wino_dims *dm,
                             const float *m, const float *b, int64_t n0,
                             int nb, float *pair, float *y)
{
    const int64_t T = (int64_t)nb * dm->tiles, plane = (int64_t)dm->OH * dm->OW;
    for (int i = 0; i < nb; i++)
        for (int o = 0; o < p->O; o++)
            for (int th = 0; th < dm->TH; th++)
                output_row(p, dm, m + (int64_t)o * T + (int64_t)i * dm->tiles
                                    + (int64_t)th * dm->TW,
                           (int64_t)p->O * T, th, b ? b[o] : 0.0f, pair,
                           y + ((n0 + i) * p->O + o) * plane);
}

void wino_run(const wino_conv *p, const float *x, const float *w,
              const float *b, float *y, float *scratch)
{
    const wino_dims dm = dims_of(p);
    const int64_t chunks = (p->N + p->chunk - 1) / p->chunk;
    float *u = scratch;
    #pragma omp parallel num_threads(p->threads)
    {
        float *v = scratch + 16 * (int64_t)p->O * p->C
                 + (int64_t)omp_get_thread_num() * (int64_t)thread_floats(p);
        float *m = v + 16 * (int64_t)p->C * p->chunk * dm.tiles;
        float *rows = m + 16 * (int64_t)p->O * p->chunk * dm.tiles;
        kernel_transform(p, w, u);
        #pragma omp for schedule(static)
        for (int64_t ci = 0; ci < chunks; ci++) {
            const int64_t n0 = ci * p->chunk;
            const int nb = (int)(p->N - n0 < p->chunk ? p->N - n0 : p->chunk);
            const int T = nb * dm.tiles;
            input_transform(p, &dm, x, n0, nb, rows, v);
            for (int k = 0; k < 16; k++)
                bd_gemm(false, false, p->O, T, p->C, 1.0f,
                        u + k * (int64_t)p->O * p->C, p->C,
                        v + k * (int64_t)p->C * T, T, 0.0f,
                        m + k * (int64_t)p->O * T, T);
            output_transform(p, &dm, m, b, n0, nb, rows, y);
        }
    }
}

/* ---- the gradient of the kernel ------------------------------------------- */

/* Per thread: dU (16, O, C), V (16, C, T), Z (16, O, T), working rows. */
static size_t grad_thread_floats(const wino_conv *p)
{
    return 16 * (size_t)p->O * (size_t)p->C + thread_floats(p);
}

size_t wino_weight_grad_scratch_floats(const wino_conv *p)
{
    return (size_t)p->threads * grad_thread_floats(p);
}

/* Z[k, o, t] = (A y A^T)[k] for the TW tiles of tile row th of one output
 * grad plane, the 2x2 tiles y zero past the output's edge: its two rows
 * split into even and odd columns, combined across each tile (r = y A^T)
 * then down it, every step a loop over the tiles.
 * plane: (OH, OW) -> dst[k kstride + tw]; rows: ROW_FLOATS(TW) floats */
BD_VECTOR_CLONES
static void grad_row(const wino_dims *dm, const float *plane, int th,
                     float *rows, float *dst, int64_t kstride)
{
    const int TW = dm->TW;
    float *ev[2], *od[2];
    for (int a = 0; a < 2; a++) {
        ev[a] = rows + 2 * a * TW;
        od[a] = ev[a] + TW;
        load_split_row(plane, dm->OH, dm->OW, 2 * th + a, 0, TW, ev[a], od[a]);
    }
    float *re = rows + 4 * TW, *ro = re + TW;
    for (int i = 0; i < 4; i++) {
        /* row i of A y = (y0, y0 + y1, y0 - y1, -y1)[i], its even and odd
         * columns */
        for (int tw = 0; tw < TW; tw++) {
            const float e0 = ev[0][tw], e1 = ev[1][tw], o0 = od[0][tw], o1 = od[1][tw];
            re[tw] = i == 0 ? e0 : i == 1 ? e0 + e1 : i == 2 ? e0 - e1 : -e1;
            ro[tw] = i == 0 ? o0 : i == 1 ? o0 + o1 : i == 2 ? o0 - o1 : -o1;
        }
        float *out = dst + (int64_t)i * 4 * kstride;
        for (int tw = 0; tw < TW; tw++) {
            out[tw] = re[tw];
            out[kstride + tw] = re[tw] + ro[tw];
            out[2 * kstride + tw] = re[tw] - ro[tw];
            out[3 * kstride + tw] = -ro[tw];
        }
    }
}

/* Z[k, o, t] = (A y A^T)[k] for each tile of the chunk's output grads.
 * dy: (N, O, OH, OW) -> z: (16, O, T); rows: ROW_FLOATS(TW) floats */
static void grad_transform(const wino_conv *p, const wino_dims *dm,
                           const float *dy, int64_t n0, int nb, float *rows,
                           float *z)
{
    const int64_t T = (int64_t)nb * dm->tiles, plane = (int64_t)dm->OH * dm->OW;
    for (int i = 0; i < nb; i++)
        for (int o = 0; o < p->O; o++)
            for (int th = 0; th < dm->TH; th++)
                grad_row(dm, dy + ((n0 + i) * p->O + o) * plane, th, rows,
                         z + (int64_t)o * T + (int64_t)i * dm->tiles
                           + (int64_t)th * dm->TW, (int64_t)p->O * T);
}

/* dw[o, c] += G^T (sum over threads of dU[:, o, c]) G.   -> dw: (O, C, 3, 3) */
static void grad_finish(const wino_conv *p, const float *scratch, float *dw)
{
    const int64_t plane = (int64_t)p->O * p->C;
    const size_t per = grad_thread_floats(p);
    #pragma omp for schedule(static)
    for (int64_t oc = 0; oc < plane; oc++) {
        float u[4][4] = {{0}}, t[3][4];
        for (int th = 0; th < omp_get_num_threads(); th++)
            for (int k = 0; k < 16; k++)
                u[k / 4][k % 4] += scratch[th * per + k * plane + oc];
        for (int j = 0; j < 4; j++) {
            t[0][j] = u[0][j] + 0.5f * (u[1][j] + u[2][j]);
            t[1][j] = 0.5f * (u[1][j] - u[2][j]);
            t[2][j] = 0.5f * (u[1][j] + u[2][j]) + u[3][j];
        }
        float *g = dw + oc * 9;
        for (int i = 0; i < 3; i++) {
            g[i * 3 + 0] += t[i][0] + 0.5f * (t[i][1] + t[i][2]);
            g[i * 3 + 1] += 0.5f * (t[i][1] - t[i][2]);
            g[i * 3 + 2] += 0.5f * (t[i][1] + t[i][2]) + t[i][3];
        }
    }
}

void wino_weight_grad(const wino_conv *p, const float *x, const float *dy,
                      float *dw, float *scratch)
{
    const wino_dims dm = dims_of(p);
    const int64_t chunks = (p->N + p->chunk - 1) / p->chunk;
    const int64_t plane = (int64_t)p->O * p->C;
    #pragma omp parallel num_threads(p->threads)
    {
        const int th = omp_get_thread_num();
        float *du = scratch + th * grad_thread_floats(p);
        float *v = du + 16 * plane;
        float *z = v + 16 * (int64_t)p->C * p->chunk * dm.tiles;
        float *rows = z + 16 * (int64_t)p->O * p->chunk * dm.tiles;
        memset(du, 0, 16 * (size_t)plane * sizeof(float));
        #pragma omp for schedule(static)
        for (int64_t ci = 0; ci < chunks; ci++) {
            const int64_t n0 = ci * p->chunk;
            const int nb = (int)(p->N - n0 < p->chunk ? p->N - n0 : p->chunk);
            const int T = nb * dm.tiles;
            input_transform(p, &dm, x, n0, nb, rows, v);
            grad_transform(p, &dm, dy, n0, nb, rows, z);
            for (int k = 0; k < 16; k++)
                bd_gemm(false, true, p->O, p->C, T, 1.0f, z + k * (int64_t)p->O * T,
                        T, v + k * (int64_t)p->C * T, T, 1.0f, du + k * plane,
                        p->C);
        }
        grad_finish(p, scratch, dw);
    }
}
