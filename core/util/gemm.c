/* bd's sgemm (gemm.h): the blocking loops and the choice, at load time, of
 * the sgemm bd_gemm runs. */
#include "gemm.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bd/log.h"
#include "bd/parallel.h"

#ifdef BD_GEMM_AVX512
/* A block of `lanes` rows of op(X) (or columns, for B) from lane0, depths
 * [p0, p0 + kc), packed (kc, w); depth_contiguous: X stored (lanes, depth)
 * with leading dimension ld, else (depth, lanes). */
static void pack(bool depth_contiguous, const float *x, int ld, int lane0,
                 int lanes, int p0, int kc, int w, float *dst)
{
    if (depth_contiguous)
        gemm_pack_depth(x + (int64_t)lane0 * ld + p0, ld, lanes, kc, w, dst);
    else
        gemm_pack_lanes(x + (int64_t)p0 * ld + lane0, ld, lanes, kc, w, dst);
}

/* C rows [i0, i0 + mc) (+)= op(A) rows [i0, i0 + mc) x op(B), depths
 * [p0, p0 + kc) only; beta applies to C as it was before this block.
 * pa: (MC, KC) scratch, pb: (KC, NR) scratch. */
static void gemm_block(const gemm_args *g, int i0, int mc, int p0, int kc,
                       float beta, float *pa, float *pb)
{
    for (int i = 0; i < mc; i += GEMM_MR) /* panels (kc, MR) */
        pack(!g->ta, g->a, g->lda, i0 + i, mc - i < GEMM_MR ? mc - i : GEMM_MR,
             p0, kc, GEMM_MR, pa + (int64_t)i * kc);
    for (int j = 0; j < g->n; j += GEMM_NR) {
        const int cols = g->n - j < GEMM_NR ? g->n - j : GEMM_NR;
        const int nv = (cols + 15) / 16;
        pack(g->tb, g->b, g->ldb, j, cols, p0, kc, 16 * nv, pb);
        for (int i = 0; i < mc; i += GEMM_MR)
            gemm_kernel(kc, pa + (int64_t)i * kc, pb, nv,
                        g->c + (int64_t)(i0 + i) * g->ldc + j, g->ldc,
                        mc - i < GEMM_MR ? mc - i : GEMM_MR, cols, g->alpha, beta);
    }
}

/* Over depth blocks (beta on the first only; k = 0 still scales C by
 * beta), then row blocks. */
void gemm_avx512(const gemm_args *g)
{
    _Alignas(64) float pa[GEMM_MC * GEMM_KC];
    _Alignas(64) float pb[GEMM_KC * GEMM_NR];
    if (g->m <= 0 || g->n <= 0)
        return;
    int p0 = 0;
    do {
        const int kc = g->k - p0 < GEMM_KC ? g->k - p0 : GEMM_KC;
        for (int i0 = 0; i0 < g->m; i0 += GEMM_MC)
            gemm_block(g, i0, g->m - i0 < GEMM_MC ? g->m - i0 : GEMM_MC, p0, kc,
                       p0 == 0 ? g->beta : 1.0f, pa, pb);
        p0 += kc;
    } while (p0 < g->k);
}
#endif

/* OpenBLAS's kernels in 512-bit vectors (its corenames, any case). */
static bool corename_avx512(const char *corename)
{
    static const char *const wide[] = {"skylakex", "cooperlake",
                                       "sapphirerapids"};
    for (size_t i = 0; i < sizeof wide / sizeof *wide; i++)
        if (corename && !strcasecmp(corename, wide[i]))
            return true;
    return false;
}

bool gemm_choose_own(const char *forced, bool avx512f, const char *corename)
{
    if (forced && *forced) {
        if (!strcmp(forced, "bd"))
            return avx512f;
        if (!strcmp(forced, "openblas"))
            return false;
        bd_log_warn("BD_GEMM=%s: expected openblas or bd; using the default",
                    forced);
    }
    return avx512f && !corename_avx512(corename);
}

static bool runs_own;

__attribute__((constructor)) static void gemm_choose_at_load(void)
{
#ifdef BD_GEMM_AVX512
    __builtin_cpu_init();
    runs_own = gemm_choose_own(getenv("BD_GEMM"),
                               __builtin_cpu_supports("avx512f"),
                               openblas_get_corename());
#endif
}

bool gemm_runs_own(void)
{
    return runs_own;
}

const char *bd_gemm_name(void)
{
    static char name[64];
    if (runs_own)
        return "bd AVX-512 8x48";
    snprintf(name, sizeof name, "OpenBLAS %s", openblas_get_corename());
    return name;
}
