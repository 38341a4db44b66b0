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

/* Per thread: V (16, C, T) and M (16, O, T), T the tiles of a chunk, and
 * four padded input rows. */
static size_t thread_floats(const wino_conv *p)
{
    const wino_dims d = dims_of(p);
    const size_t tiles = (size_t)p->chunk * (size_t)d.tiles;
    return 16 * ((size_t)p->C + (size_t)p->O) * tiles + 4 * (2 * (size_t)d.TW + 2);
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

/* V[k, c, t] = (B^T d B)[k] for the TW tiles of tile row th of one plane:
 * its four input rows padded, then each step across the row of tiles.
 * plane: (H, W) -> dst[k kstride + tw] */
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
 * x: (N, C, H, W) -> v: (16, C, T); rows: 4 (2 TW + 2) floats */
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
 * y = A^T m A (+ bias, or += y).   m[k kstride + tw] -> plane: (OH, OW) */
static void output_row(const wino_conv *p, const wino_dims *dm, const float *m,
                       int64_t kstride, int th, float bias, float *pair,
                       float *plane)
{
    const int TW = dm->TW, len = 2 * TW;
    for (int tw = 0; tw < TW; tw++) {
        float t[2][4];
        for (int j = 0; j < 4; j++) {
            const float m0 = m[j * kstride + tw], m1 = m[(4 + j) * kstride + tw];
            const float m2 = m[(8 + j) * kstride + tw], m3 = m[(12 + j) * kstride + tw];
            t[0][j] = m0 + m1 + m2;
            t[1][j] = m1 - m2 - m3;
        }
        for (int r = 0; r < 2; r++) {
            pair[r * len + 2 * tw] = t[r][0] + t[r][1] + t[r][2];
            pair[r * len + 2 * tw + 1] = t[r][1] - t[r][2] - t[r][3];
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
 * m: (16, O, T) -> y: (N, O, OH, OW); pair: 4 TW floats */
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

/* Per thread: dU (16, O, C), V (16, C, T), Z (16, O, T), padded rows. */
static size_t grad_thread_floats(const wino_conv *p)
{
    return 16 * (size_t)p->O * (size_t)p->C + thread_floats(p);
}

size_t wino_weight_grad_scratch_floats(const wino_conv *p)
{
    return (size_t)p->threads * grad_thread_floats(p);
}

/* Z[k, o, t] = (A y A^T)[k] for each tile of the chunk's output grads, the
 * 2x2 tile y zero past the output's edge.   dy: (N, O, OH, OW) -> z: (16, O, T) */
static void grad_transform(const wino_conv *p, const wino_dims *dm,
                           const float *dy, int64_t n0, int nb, float *z)
{
    const int64_t T = (int64_t)nb * dm->tiles, plane = (int64_t)dm->OH * dm->OW;
    const int64_t kstride = (int64_t)p->O * T;
    for (int i = 0; i < nb; i++)
        for (int o = 0; o < p->O; o++) {
            const float *src = dy + ((n0 + i) * p->O + o) * plane;
            float *dst = z + (int64_t)o * T + (int64_t)i * dm->tiles;
            for (int th = 0; th < dm->TH; th++)
                for (int tw = 0; tw < dm->TW; tw++, dst++) {
                    float y[2][2], r[4][2];
                    for (int a = 0; a < 2; a++)
                        for (int b = 0; b < 2; b++) {
                            const int oh = 2 * th + a, ow = 2 * tw + b;
                            y[a][b] = oh < dm->OH && ow < dm->OW
                                    ? src[(int64_t)oh * dm->OW + ow] : 0.0f;
                        }
                    for (int b = 0; b < 2; b++) {
                        r[0][b] = y[0][b];
                        r[1][b] = y[0][b] + y[1][b];
                        r[2][b] = y[0][b] - y[1][b];
                        r[3][b] = -y[1][b];
                    }
                    for (int a = 0; a < 4; a++) {
                        dst[(a * 4 + 0) * kstride] = r[a][0];
                        dst[(a * 4 + 1) * kstride] = r[a][0] + r[a][1];
                        dst[(a * 4 + 2) * kstride] = r[a][0] - r[a][1];
                        dst[(a * 4 + 3) * kstride] = -r[a][1];
                    }
                }
        }
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
            grad_transform(p, &dm, dy, n0, nb, z);
            for (int k = 0; k < 16; k++)
                bd_gemm(false, true, p->O, p->C, T, 1.0f, z + k * (int64_t)p->O * T,
                        T, v + k * (int64_t)p->C * T, T, 1.0f, du + k * plane,
                        p->C);
        }
        grad_finish(p, scratch, dw);
    }
}
