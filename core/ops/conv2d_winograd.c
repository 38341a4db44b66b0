/* Winograd F(m x m, 3x3) (Lavin and Gray, 2016), for m = 2 and m = 4. An
 * m x m output tile comes from an a x a input tile d (a = m + 2) and the
 * 3x3 kernel g as
 *
 *     Y = A^T [ (G g G^T) .* (B^T d B) ] A,
 *
 * a^2 multiplies instead of 9 m^2: F(2x2) 16 for 4 outputs, F(4x4) 36 for
 * 16. Summed over the input channels, the a^2 elementwise products become
 * a^2 products M[k] (O, T) = U[k] (O, C) V[k] (C, T) over the T tiles of a
 * chunk of images: 2 a^2 / m^2 O C flops per output pixel (F(2x2) 8,
 * F(4x4) 4.5) instead of im2col's 18. Each thread runs whole chunks (input
 * transform, a^2 products, output transform) in its own scratch, after the
 * kernel transform U, which the threads share.
 *
 * The transforms work in place on a channel's a^2 planes of T tiles, tile
 * value (i, j) in plane k = i a + j: the tiles are gathered from the
 * zero-padded image planes, then the 2-D transform is two passes of a 1-D
 * transform (across each tile row, then down each column), each a loop over
 * the T tiles that vectorises. A tile size is a table (wino_tile): m, a, G
 * and the three 1-D transforms B^T, A^T and A. */
#include "conv2d_winograd.h"

#include <omp.h>
#include <string.h>

#include "bd/parallel.h"
#include "fastmath.h"

/* At most this many floats in a thread's V (a^2, C, T) or M (a^2, O, T). */
enum { TILE_FLOATS = 1 << 18 };

/* Floats between the planes of V and M past C T or O T: 64 bytes, so that
 * the a^2 planes of a pass do not all fall on the same cache sets when C T
 * is a multiple of 1024. */
enum { PLANE_GAP = 16 };

/* v[q s + t] for t < n, in place: a 1-D transform of the vectors q. */
typedef void wino_1d(float *v, int64_t s, int64_t n);

typedef struct wino_tile {
    int          m, a;    /* output tile m x m from input tile a x a */
    const float *g;       /* G: (a, 3) */
    wino_1d     *input;   /* q < a  -> B^T: q < a */
    wino_1d     *output;  /* q < a  -> A^T: q < m */
    wino_1d     *grad;    /* q < m  -> A:   q < a */
} wino_tile;

/* F(2x2): B^T = [[1,0,-1,0], [0,1,1,0], [0,-1,1,0], [0,1,0,-1]] */
BD_VECTOR_CLONES
static void input_f2(float *v, int64_t s, int64_t n)
{
    #pragma omp simd
    for (int64_t t = 0; t < n; t++) {
        const float d0 = v[t], d1 = v[s + t], d2 = v[2 * s + t], d3 = v[3 * s + t];
        v[t] = d0 - d2;
        v[s + t] = d1 + d2;
        v[2 * s + t] = d2 - d1;
        v[3 * s + t] = d1 - d3;
    }
}

/* F(2x2): A^T = [[1,1,1,0], [0,1,-1,-1]] */
BD_VECTOR_CLONES
static void output_f2(float *v, int64_t s, int64_t n)
{
    #pragma omp simd
    for (int64_t t = 0; t < n; t++) {
        const float d0 = v[t], d1 = v[s + t], d2 = v[2 * s + t], d3 = v[3 * s + t];
        v[t] = d0 + d1 + d2;
        v[s + t] = d1 - d2 - d3;
    }
}

/* F(2x2): A = [[1,0], [1,1], [1,-1], [0,-1]] */
BD_VECTOR_CLONES
static void grad_f2(float *v, int64_t s, int64_t n)
{
    #pragma omp simd
    for (int64_t t = 0; t < n; t++) {
        const float y0 = v[t], y1 = v[s + t];
        v[s + t] = y0 + y1;
        v[2 * s + t] = y0 - y1;
        v[3 * s + t] = -y1;
    }
}

/* F(4x4): B^T = [[4,0,-5,0,1,0], [0,-4,-4,1,1,0], [0,4,-4,-1,1,0],
 *                [0,-2,-1,2,1,0], [0,2,-1,-2,1,0], [0,4,0,-5,0,1]] */
BD_VECTOR_CLONES
static void input_f4(float *v, int64_t s, int64_t n)
{
    #pragma omp simd
    for (int64_t t = 0; t < n; t++) {
        const float d0 = v[t], d1 = v[s + t], d2 = v[2 * s + t], d3 = v[3 * s + t];
        const float d4 = v[4 * s + t], d5 = v[5 * s + t];
        const float p = d4 - 4.0f * d2, q = d3 - 4.0f * d1;
        const float r = d4 - d2, u = 2.0f * (d3 - d1);
        v[t] = 4.0f * d0 - 5.0f * d2 + d4;
        v[s + t] = p + q;
        v[2 * s + t] = p - q;
        v[3 * s + t] = r + u;
        v[4 * s + t] = r - u;
        v[5 * s + t] = 4.0f * d1 - 5.0f * d3 + d5;
    }
}

/* F(4x4): A^T = [[1,1,1,1,1,0], [0,1,-1,2,-2,0], [0,1,1,4,4,0],
 *                [0,1,-1,8,-8,1]] */
BD_VECTOR_CLONES
static void output_f4(float *v, int64_t s, int64_t n)
{
    #pragma omp simd
    for (int64_t t = 0; t < n; t++) {
        const float d0 = v[t], d1 = v[s + t], d2 = v[2 * s + t], d3 = v[3 * s + t];
        const float d4 = v[4 * s + t], d5 = v[5 * s + t];
        const float sum12 = d1 + d2, dif12 = d1 - d2;
        const float sum34 = d3 + d4, dif34 = d3 - d4;
        v[t] = d0 + sum12 + sum34;
        v[s + t] = dif12 + 2.0f * dif34;
        v[2 * s + t] = sum12 + 4.0f * sum34;
        v[3 * s + t] = dif12 + 8.0f * dif34 + d5;
    }
}

/* F(4x4): A = [[1,0,0,0], [1,1,1,1], [1,-1,1,-1], [1,2,4,8], [1,-2,4,-8],
 *              [0,0,0,1]] */
BD_VECTOR_CLONES
static void grad_f4(float *v, int64_t s, int64_t n)
{
    #pragma omp simd
    for (int64_t t = 0; t < n; t++) {
        const float y0 = v[t], y1 = v[s + t], y2 = v[2 * s + t], y3 = v[3 * s + t];
        const float even = y0 + y2, odd = y1 + y3;
        const float even4 = y0 + 4.0f * y2, odd4 = 2.0f * y1 + 8.0f * y3;
        v[s + t] = even + odd;
        v[2 * s + t] = even - odd;
        v[3 * s + t] = even4 + odd4;
        v[4 * s + t] = even4 - odd4;
        v[5 * s + t] = y3;
    }
}

static const float G_F2[4 * 3] = {
    1.0f, 0.0f, 0.0f,   0.5f, 0.5f, 0.5f,   0.5f, -0.5f, 0.5f,   0.0f, 0.0f, 1.0f,
};

static const float G_F4[6 * 3] = {
    1.0f / 4,   0.0f,       0.0f,
    -1.0f / 6,  -1.0f / 6,  -1.0f / 6,
    -1.0f / 6,  1.0f / 6,   -1.0f / 6,
    1.0f / 24,  1.0f / 12,  1.0f / 6,
    1.0f / 24,  -1.0f / 12, 1.0f / 6,
    0.0f,       0.0f,       1.0f,
};

static const wino_tile TILES[] = {
    {2, 4, G_F2, input_f2, output_f2, grad_f2},
    {4, 6, G_F4, input_f4, output_f4, grad_f4},
};

static const wino_tile *tile_of(const wino_conv *p)
{
    return &TILES[p->m == 4];
}

typedef struct wino_dims {
    const wino_tile *t;
    int m, a, K;     /* tile sizes, K = a^2 products */
    int OH, OW;      /* output size */
    int TH, TW;      /* tiles per image: rows, columns */
    int tiles;       /* TH TW */
    int PH, PW;      /* an input plane padded to whole tiles: m TH + 2, m TW + 2 */
    int64_t vs, ms;  /* plane strides of V and M: C or O times chunk tiles, + gap */
} wino_dims;

static wino_dims dims_of(const wino_conv *p)
{
    wino_dims d = {.t = tile_of(p)};
    d.m = d.t->m;
    d.a = d.t->a;
    d.K = d.a * d.a;
    d.OH = p->H + 2 * p->pad - 2;
    d.OW = p->W + 2 * p->pad - 2;
    d.TH = (d.OH + d.m - 1) / d.m;
    d.TW = (d.OW + d.m - 1) / d.m;
    d.tiles = d.TH * d.TW;
    d.PH = d.m * d.TH + 2;
    d.PW = d.m * d.TW + 2;
    const int64_t T = (int64_t)p->chunk * d.tiles;
    d.vs = p->C * T + PLANE_GAP;
    d.ms = p->O * T + PLANE_GAP;
    return d;
}

bool wino_fits(int KH, int KW, int stride, int pad)
{
    return KH == 3 && KW == 3 && stride == 1 && pad <= 2;
}

wino_conv wino_plan(int N, int C, int H, int W, int O, int pad, int m)
{
    wino_conv p = {.N = N, .C = C, .H = H, .W = W, .O = O, .pad = pad,
                   .m = m == 4 ? 4 : 2};
    const wino_dims d = dims_of(&p);
    const int wide = C > O ? C : O;
    p.threads = bd_threads_for(8.0 * N * O * C * d.OH * d.OW);
    int64_t nb = TILE_FLOATS / ((int64_t)d.K * wide * d.tiles);
    const int64_t share = (N + p.threads - 1) / p.threads;
    if (nb > share)
        nb = share;
    p.chunk = nb < 1 ? 1 : (int)nb;
    const int64_t chunks = (N + p.chunk - 1) / p.chunk;
    if (p.threads > chunks) /* fewer images than threads: bd_gemm splits */
        p.threads = (int)chunks;
    return p;
}

/* Per thread: V (a^2, C, T) and M (a^2, O, T), planes vs and ms apart, T
 * the tiles of a chunk, and one padded plane (PH, PW). */
static size_t thread_floats(const wino_conv *p)
{
    const wino_dims d = dims_of(p);
    return (size_t)d.K * (size_t)(d.vs + d.ms) + (size_t)d.PH * (size_t)d.PW;
}

size_t wino_scratch_floats(const wino_conv *p)
{
    const wino_dims d = dims_of(p);
    return (size_t)d.K * (size_t)p->O * (size_t)p->C
         + (size_t)p->threads * thread_floats(p);
}

/* The 3x3 kernel of (o, c): w[o, c], or with transpose_flip
 * w[c, o, 2 - i, 2 - j].   -> g: (3, 3) */
static void kernel_of(const wino_conv *p, const float *w, int o, int c,
                      float g[3][3])
{
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            g[i][j] = p->transpose_flip
                ? w[((int64_t)c * p->O + o) * 9 + (2 - i) * 3 + (2 - j)]
                : w[((int64_t)o * p->C + c) * 9 + i * 3 + j];
}

/* U[k, o, c] = (G g G^T)[k] for the kernel g of (o, c).  -> u: (a^2, O, C) */
static void kernel_transform(const wino_conv *p, const wino_dims *dm,
                             const float *w, float *u)
{
    const int64_t plane = (int64_t)p->O * p->C;
    const int a = dm->a;
    const float *G = dm->t->g;
    #pragma omp for schedule(static)
    for (int o = 0; o < p->O; o++)
        for (int c = 0; c < p->C; c++) {
            float g[3][3], t[6][3];
            kernel_of(p, w, o, c, g);
            for (int i = 0; i < a; i++) /* t = G g */
                for (int j = 0; j < 3; j++)
                    t[i][j] = G[i * 3] * g[0][j] + G[i * 3 + 1] * g[1][j]
                            + G[i * 3 + 2] * g[2][j];
            float *dst = u + (int64_t)o * p->C + c;
            for (int i = 0; i < a; i++)
                for (int j = 0; j < a; j++)
                    dst[(i * a + j) * plane] = t[i][0] * G[j * 3] + t[i][1] * G[j * 3 + 1]
                                             + t[i][2] * G[j * 3 + 2];
        }
}

/* pl = src moved down and right by pad, zero elsewhere.
 * src: (H, W) -> pl: (PH, PW) */
static void pad_plane(const float *src, int H, int W, int pad, int PH, int PW,
                      float *pl)
{
    const int rows = H + pad < PH ? H : PH - pad, cols = W + pad < PW ? W : PW - pad;
    memset(pl, 0, (size_t)pad * (size_t)PW * sizeof *pl);
    for (int r = 0; r < rows; r++) {
        float *dst = pl + (int64_t)(r + pad) * PW;
        const float *row = src + (int64_t)r * W;
        for (int j = 0; j < pad; j++)
            dst[j] = 0.0f;
        for (int j = 0; j < cols; j++)
            dst[pad + j] = row[j];
        for (int j = pad + cols; j < PW; j++)
            dst[j] = 0.0f;
    }
    memset(pl + (int64_t)(rows + pad) * PW, 0,
           (size_t)(PH - rows - pad) * (size_t)PW * sizeof *pl);
}

/* gather_tiles for constant m, a and size (inlined), so that the loop over
 * a row of tiles vectorises. */
static inline __attribute__((always_inline)) void
gather_fixed(int m, int a, int size, int TH, int TW,
             const float *restrict pl, int PW, float *restrict v, int64_t s)
{
    for (int th = 0; th < TH; th++)
        for (int i = 0; i < size; i++) {
            const float *restrict src = pl + (int64_t)(m * th + i) * PW;
            float *restrict dst = v + i * a * s + th * TW;
            for (int tw = 0; tw < TW; tw++)
                for (int j = 0; j < size; j++)
                    dst[j * s + tw] = src[m * tw + j];
        }
}

/* v[(i a + j) s + th TW + tw] = pl[m th + i, m tw + j] for i, j < size
 * (a or m): the size x size tiles at stride m of a plane PW wide.
 * pl -> v */
BD_VECTOR_CLONES
static void gather_tiles(const wino_dims *dm, int size, const float *pl,
                         int PW, float *v, int64_t s)
{
    if (dm->m == 4 && size == 6)
        gather_fixed(4, 6, 6, dm->TH, dm->TW, pl, PW, v, s);
    else if (dm->m == 4)
        gather_fixed(4, 6, 4, dm->TH, dm->TW, pl, PW, v, s);
    else if (size == 4)
        gather_fixed(2, 4, 4, dm->TH, dm->TW, pl, PW, v, s);
    else
        gather_fixed(2, 4, 2, dm->TH, dm->TW, pl, PW, v, s);
}

/* store_tiles for constant m (inlined): the tiles wholly inside the row
 * vectorise, the one past its edge goes value by value. */
static inline __attribute__((always_inline)) void
store_fixed(int m, int a, const wino_conv *p, const wino_dims *dm,
            const float *v, int64_t s, float bias, float *dst)
{
    const int TW = dm->TW, OW = dm->OW, whole = OW / m;
    for (int th = 0; th < dm->TH; th++)
        for (int i = 0; i < m && m * th + i < dm->OH; i++) {
            const float *src = v + i * a * s + th * TW;
            float *row = dst + (int64_t)(m * th + i) * OW;
            if (p->accumulate)
                for (int tw = 0; tw < whole; tw++)
                    for (int j = 0; j < m; j++)
                        row[m * tw + j] += src[j * s + tw];
            else
                for (int tw = 0; tw < whole; tw++)
                    for (int j = 0; j < m; j++)
                        row[m * tw + j] = src[j * s + tw] + bias;
            for (int j = 0; m * whole + j < OW; j++)
                row[m * whole + j] = src[j * s + whole]
                    + (p->accumulate ? row[m * whole + j] : bias);
        }
}

/* dst[m th + i, m tw + j] = v[(i a + j) s + th TW + tw] (+ bias, or
 * += dst) for i, j < m, inside the output plane.   v -> dst: (OH, OW) */
BD_VECTOR_CLONES
static void store_tiles(const wino_conv *p, const wino_dims *dm, const float *v,
                        int64_t s, float bias, float *dst)
{
    if (dm->m == 4)
        store_fixed(4, 6, p, dm, v, s, bias, dst);
    else
        store_fixed(2, 4, p, dm, v, s, bias, dst);
}

/* The 2-D transform X -> F X F^T of the tiles of v (n of them, tile value
 * (i, j) at v[(i a + j) s]): f across each of the first `rows` tile rows,
 * then down each of the first `cols` columns. */
static void transform_2d(wino_1d *f, int a, int rows, int cols, float *v,
                         int64_t s, int64_t n)
{
    for (int i = 0; i < rows; i++)
        f(v + i * a * s, s, n);
    for (int j = 0; j < cols; j++)
        f(v + j * s, a * s, n);
}

/* V[k, c, t] = (B^T d B)[k] for each tile d of the chunk's images.
 * x: (N, C, H, W) -> v: (a^2, C, T), planes vs apart; pl: (PH, PW) */
static void input_transform(const wino_conv *p, const wino_dims *dm,
                            const float *x, int64_t n0, int nb, float *pl,
                            float *v)
{
    const int64_t T = (int64_t)nb * dm->tiles, plane = (int64_t)p->H * p->W;
    for (int c = 0; c < p->C; c++) {
        float *vc = v + c * T;
        for (int i = 0; i < nb; i++) {
            pad_plane(x + ((n0 + i) * p->C + c) * plane, p->H, p->W, p->pad,
                      dm->PH, dm->PW, pl);
            gather_tiles(dm, dm->a, pl, dm->PW, vc + (int64_t)i * dm->tiles, dm->vs);
        }
        transform_2d(dm->t->input, dm->a, dm->a, dm->a, vc, dm->vs, T);
    }
}

/* y = A^T m A (+ b, or += y) for each tile of the chunk's images, m
 * transformed in place.   m: (a^2, O, T), planes ms apart
 * -> y: (N, O, OH, OW) */
static void output_transform(const wino_conv *p, const wino_dims *dm, float *m,
                             const float *b, int64_t n0, int nb, float *y)
{
    const int64_t T = (int64_t)nb * dm->tiles, plane = (int64_t)dm->OH * dm->OW;
    for (int o = 0; o < p->O; o++) {
        float *mo = m + o * T;
        transform_2d(dm->t->output, dm->a, dm->a, dm->m, mo, dm->ms, T);
        for (int i = 0; i < nb; i++)
            store_tiles(p, dm, mo + (int64_t)i * dm->tiles, dm->ms, b ? b[o] : 0.0f,
                        y + ((n0 + i) * p->O + o) * plane);
    }
}

void wino_run(const wino_conv *p, const float *x, const float *w,
              const float *b, float *y, float *scratch)
{
    const wino_dims dm = dims_of(p);
    const int64_t chunks = (p->N + p->chunk - 1) / p->chunk;
    float *u = scratch;
    #pragma omp parallel num_threads(p->threads)
    {
        float *v = scratch + dm.K * (int64_t)p->O * p->C
                 + (int64_t)omp_get_thread_num() * (int64_t)thread_floats(p);
        float *m = v + dm.K * dm.vs;
        float *pl = m + dm.K * dm.ms;
        kernel_transform(p, &dm, w, u);
        #pragma omp for schedule(static)
        for (int64_t ci = 0; ci < chunks; ci++) {
            const int64_t n0 = ci * p->chunk;
            const int nb = (int)(p->N - n0 < p->chunk ? p->N - n0 : p->chunk);
            const int T = nb * dm.tiles;
            input_transform(p, &dm, x, n0, nb, pl, v);
            for (int k = 0; k < dm.K; k++)
                bd_gemm(false, false, p->O, T, p->C, 1.0f,
                        u + k * (int64_t)p->O * p->C, p->C, v + k * dm.vs, T,
                        0.0f, m + k * dm.ms, T);
            output_transform(p, &dm, m, b, n0, nb, y);
        }
    }
}

/* ---- the gradient of the kernel ------------------------------------------- */

/* Per thread: dU (a^2, O, C), V (a^2, C, T), Z (a^2, O, T), one plane. */
static size_t grad_thread_floats(const wino_conv *p)
{
    const wino_dims d = dims_of(p);
    return (size_t)d.K * (size_t)p->O * (size_t)p->C + thread_floats(p);
}

size_t wino_weight_grad_scratch_floats(const wino_conv *p)
{
    return (size_t)p->threads * grad_thread_floats(p);
}

/* Z[k, o, t] = (A y A^T)[k] for each m x m tile y of the chunk's output
 * grads, zero past the output's edge.
 * dy: (N, O, OH, OW) -> z: (a^2, O, T), planes ms apart; pl: (m TH, m TW) */
static void grad_transform(const wino_conv *p, const wino_dims *dm,
                           const float *dy, int64_t n0, int nb, float *pl,
                           float *z)
{
    const int64_t T = (int64_t)nb * dm->tiles, plane = (int64_t)dm->OH * dm->OW;
    const int PH = dm->m * dm->TH, PW = dm->m * dm->TW;
    for (int o = 0; o < p->O; o++) {
        float *zo = z + o * T;
        for (int i = 0; i < nb; i++) {
            pad_plane(dy + ((n0 + i) * p->O + o) * plane, dm->OH, dm->OW, 0, PH,
                      PW, pl);
            gather_tiles(dm, dm->m, pl, PW, zo + (int64_t)i * dm->tiles, dm->ms);
        }
        transform_2d(dm->t->grad, dm->a, dm->m, dm->a, zo, dm->ms, T);
    }
}

/* dw[o, c] += G^T (sum over threads of dU[:, o, c]) G.   -> dw: (O, C, 3, 3) */
static void grad_finish(const wino_conv *p, const wino_dims *dm,
                        const float *scratch, float *dw)
{
    const int64_t plane = (int64_t)p->O * p->C;
    const size_t per = grad_thread_floats(p);
    const int a = dm->a;
    const float *G = dm->t->g;
    #pragma omp for schedule(static)
    for (int64_t oc = 0; oc < plane; oc++) {
        float u[36] = {0}, t[3][6];
        for (int th = 0; th < omp_get_num_threads(); th++)
            for (int k = 0; k < dm->K; k++)
                u[k] += scratch[th * per + k * plane + oc];
        for (int l = 0; l < 3; l++) /* t = G^T dU */
            for (int j = 0; j < a; j++) {
                float s = 0.0f;
                for (int i = 0; i < a; i++)
                    s += G[i * 3 + l] * u[i * a + j];
                t[l][j] = s;
            }
        float *g = dw + oc * 9;
        for (int l = 0; l < 3; l++) /* += t G */
            for (int q = 0; q < 3; q++) {
                float s = 0.0f;
                for (int j = 0; j < a; j++)
                    s += t[l][j] * G[j * 3 + q];
                g[l * 3 + q] += s;
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
        float *v = du + dm.K * plane;
        float *z = v + dm.K * dm.vs;
        float *pl = z + dm.K * dm.ms;
        memset(du, 0, (size_t)dm.K * (size_t)plane * sizeof(float));
        #pragma omp for schedule(static)
        for (int64_t ci = 0; ci < chunks; ci++) {
            const int64_t n0 = ci * p->chunk;
            const int nb = (int)(p->N - n0 < p->chunk ? p->N - n0 : p->chunk);
            const int T = nb * dm.tiles;
            input_transform(p, &dm, x, n0, nb, pl, v);
            grad_transform(p, &dm, dy, n0, nb, pl, z);
            for (int k = 0; k < dm.K; k++)
                bd_gemm(false, true, p->O, p->C, T, 1.0f, z + k * dm.ms, T,
                        v + k * dm.vs, T, 1.0f, du + k * plane, p->C);
        }
        grad_finish(p, &dm, scratch, dw);
    }
}
