/* bd's threads (OpenMP) and the products split across them; the policy is
 * in include/bd/parallel.h, bd's own sgemm in gemm.h. */
#include "bd/parallel.h"

#include <cblas.h>
#include <omp.h>

#include "gemm.h"

/* Blocks of a split product are multiples of this many rows or columns
 * (the sgemm kernels' register tiles divide it). */
enum { GEMM_UNIT = 16 };

int bd_num_threads(void)
{
    return omp_get_max_threads();
}

void bd_set_num_threads(int n)
{
    omp_set_num_threads(n > 0 ? n : omp_get_num_procs());
    openblas_set_num_threads(1);
}

int bd_threads_for(double work)
{
    if (omp_in_parallel())
        return 1;
    if (openblas_get_num_threads() != 1)
        openblas_set_num_threads(1);
    const double most = bd_num_threads(), by_work = work / BD_PARALLEL_GRAIN;
    return by_work >= most ? (int)most : by_work < 1.0 ? 1 : (int)by_work;
}

/* One thread's product: bd's AVX-512 sgemm where chosen, else OpenBLAS. */
static void gemm_call(const gemm_args *g)
{
#ifdef BD_GEMM_AVX512
    if (gemm_runs_own()) {
        gemm_avx512(g);
        return;
    }
#endif
    cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans,
                g->tb ? CblasTrans : CblasNoTrans, g->m, g->n, g->k, g->alpha,
                g->a, g->lda, g->b, g->ldb, g->beta, g->c, g->ldc);
}

/* Rows [lo, hi) of C, or its columns when by_cols. */
static void gemm_block(const gemm_args *g, bool by_cols, int lo, int hi)
{
    if (lo >= hi)
        return;
    gemm_args part = *g;
    if (by_cols) {
        part.n = hi - lo;
        part.b = g->b + (g->tb ? (int64_t)lo * g->ldb : lo);
        part.c = g->c + lo;
    } else {
        part.m = hi - lo;
        part.a = g->a + (g->ta ? lo : (int64_t)lo * g->lda);
        part.c = g->c + (int64_t)lo * g->ldc;
    }
    gemm_call(&part);
}

void bd_gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha,
             const float *a, int lda, const float *b, int ldb, float beta,
             float *c, int ldc)
{
    const gemm_args g = {trans_a, trans_b, m, n, k, lda, ldb, ldc, alpha, beta,
                         a, b, c};
    const bool by_cols = n >= m;
    const int len = by_cols ? n : m;
    int parts = bd_threads_for(2.0 * m * n * k);
    if (parts > len / GEMM_UNIT)
        parts = len / GEMM_UNIT;
    if (parts <= 1) {
        gemm_call(&g);
        return;
    }
    const int per = (len / parts + GEMM_UNIT - 1) / GEMM_UNIT * GEMM_UNIT;
    #pragma omp parallel for schedule(static) num_threads(parts)
    for (int i = 0; i < parts; i++) {
        const int lo = i * per < len ? i * per : len;
        const int hi = i + 1 == parts || (i + 1) * per > len ? len : (i + 1) * per;
        gemm_block(&g, by_cols, lo, hi);
    }
}
