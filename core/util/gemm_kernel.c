/* The register tile of bd's sgemm (gemm.h): C (8, 16 nv) in 8 nv zmm
 * accumulators, nv = 1..3 vectors of 16 columns. Per depth p: nv vectors
 * of the B panel loaded, each of the 8 values of the A panel broadcast and
 * multiplied into its row's accumulators (8 nv FMAs). The edge columns of C
 * are masked at the store (masked lanes are neither read nor written). */
#include "gemm.h"

#ifdef BD_GEMM_AVX512
#include <immintrin.h>

#define GEMM_TARGET __attribute__((target("avx512f")))
#define GEMM_TILE static inline __attribute__((always_inline)) GEMM_TARGET

_Static_assert(GEMM_MR == 8 && GEMM_NR == 48, "the tile is 8 x 3 vectors");

/* acc[r][v] = sum over p of pa[p][r] pb[p][16 v ..].
 * pa: (kc, 8), pb: (kc, 16 nv), 64-byte aligned. */
GEMM_TILE void tile_products(const int nv, int kc, const float *pa,
                             const float *pb, __m512 acc[GEMM_MR][3])
{
    #pragma GCC unroll 8
    for (int r = 0; r < GEMM_MR; r++)
        #pragma GCC unroll 3
        for (int v = 0; v < nv; v++)
            acc[r][v] = _mm512_setzero_ps();
    for (int p = 0; p < kc; p++, pa += GEMM_MR, pb += 16 * nv) {
        __m512 b[3];
        #pragma GCC unroll 3
        for (int v = 0; v < nv; v++)
            b[v] = _mm512_load_ps(pb + 16 * v);
        #pragma GCC unroll 8
        for (int r = 0; r < GEMM_MR; r++) {
            const __m512 a = _mm512_set1_ps(pa[r]);
            #pragma GCC unroll 3
            for (int v = 0; v < nv; v++)
                acc[r][v] = _mm512_fmadd_ps(a, b[v], acc[r][v]);
        }
    }
}

/* C (rows, cols) = alpha acc + beta C; C read only when beta != 0. */
GEMM_TILE void tile_store(const int nv, __m512 acc[GEMM_MR][3], float *c,
                          int64_t ldc, int rows, int cols, float alpha,
                          float beta)
{
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const int last = cols - 16 * (nv - 1); /* 1..16 columns */
    const __mmask16 edge = (__mmask16)(last >= 16 ? 0xFFFF : (1u << last) - 1u);
    #pragma GCC unroll 8
    for (int r = 0; r < GEMM_MR; r++) {
        if (r >= rows)
            break;
        #pragma GCC unroll 3
        for (int v = 0; v < nv; v++) {
            const __mmask16 m = v == nv - 1 ? edge : 0xFFFF;
            float *cp = c + r * ldc + 16 * v;
            __m512 x = _mm512_mul_ps(va, acc[r][v]);
            if (beta != 0.0f)
                x = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, cp), x);
            _mm512_mask_storeu_ps(cp, m, x);
        }
    }
}

GEMM_TILE void tile(const int nv, int kc, const float *pa, const float *pb,
                    float *c, int64_t ldc, int rows, int cols, float alpha,
                    float beta)
{
    __m512 acc[GEMM_MR][3];
    tile_products(nv, kc, pa, pb, acc);
    tile_store(nv, acc, c, ldc, rows, cols, alpha, beta);
}

GEMM_TARGET void gemm_kernel(int kc, const float *pa, const float *pb, int nv,
                             float *c, int64_t ldc, int rows, int cols,
                             float alpha, float beta)
{
    switch (nv) {
    case 3: tile(3, kc, pa, pb, c, ldc, rows, cols, alpha, beta); break;
    case 2: tile(2, kc, pa, pb, c, ldc, rows, cols, alpha, beta); break;
    default: tile(1, kc, pa, pb, c, ldc, rows, cols, alpha, beta); break;
    }
}
#endif
