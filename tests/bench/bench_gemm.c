/* bd's own sgemm (core/util/gemm.h) against OpenBLAS's (whatever kernel
 * OPENBLAS_CORETYPE picks) on bd's products, one thread, the two
 * interleaved: GFLOP/s per CPU second (median of REPS) and the ratio.
 * Shapes: Winograd's 16 products per chunk (forward NN (O, C) x (C, T),
 * weight gradient NT (O, T) x (C, T)^T; T = 2^14 / max(O, C) tiles for
 * F(2x2), about 7300 / max(O, C) for F(4x4), winograd4), the
 * im2col products (forward NN (O, 9C) x (9C, cols), weight gradient NT,
 * input gradient TN (9C, O)^T x (O, cols)) and a linear layer's. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bd/parallel.h"
#include "util/gemm.h"
#include "bench_clock.h"

enum { REPS = 3 };

typedef struct shape {
    const char *what;
    bool        ta, tb;
    int         m, n, k;
} shape;

static const shape SHAPES[] = {
    {"winograd fwd 32", false, false, 32, 512, 32},
    {"winograd fwd 64", false, false, 64, 256, 64},
    {"winograd fwd 128", false, false, 128, 128, 128},
    {"winograd fwd 256", false, false, 256, 64, 256},
    {"winograd fwd 64->128", false, false, 128, 128, 64},
    {"winograd4 fwd 32", false, false, 32, 192, 32},
    {"winograd4 fwd 64", false, false, 64, 112, 64},
    {"winograd4 fwd 128", false, false, 128, 56, 128},
    {"winograd dw 32", false, true, 32, 32, 512},
    {"winograd dw 64", false, true, 64, 64, 256},
    {"winograd dw 128", false, true, 128, 128, 128},
    {"winograd dw 256", false, true, 256, 256, 64},
    {"winograd4 dw 32", false, true, 32, 32, 192},
    {"winograd4 dw 64", false, true, 64, 64, 112},
    {"winograd4 dw 128", false, true, 128, 128, 56},
    {"im2col fwd 32", false, false, 32, 2048, 288},
    {"im2col fwd 64", false, false, 64, 2048, 576},
    {"im2col fwd 128", false, false, 128, 2048, 1152},
    {"im2col fwd 64x1024x576", false, false, 64, 1024, 576},
    {"im2col dw 64", false, true, 64, 576, 2048},
    {"im2col dx 64", true, false, 576, 2048, 64},
    {"linear fwd", false, true, 64, 512, 128},
    {"linear dx", false, false, 64, 128, 512},
    {"linear dw", true, false, 512, 128, 64},
    {"square 1024", false, false, 1024, 1024, 1024},
};

static float *filled(size_t n)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_gemm: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}

/* CPU seconds of `calls` products, bd's or OpenBLAS's. */
static double time_calls(const gemm_args *g, bool own, int calls)
{
    const double t0 = cpu_now();
    for (int i = 0; i < calls; i++)
        if (own)
            gemm_avx512(g);
        else
            cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans,
                        g->tb ? CblasTrans : CblasNoTrans, g->m, g->n, g->k,
                        g->alpha, g->a, g->lda, g->b, g->ldb, g->beta, g->c,
                        g->ldc);
    return cpu_now() - t0;
}

static void bench(const shape *s)
{
    float *a = filled((size_t)s->m * s->k), *b = filled((size_t)s->k * s->n);
    float *c = filled((size_t)s->m * s->n);
    const gemm_args g = {s->ta, s->tb, s->m, s->n, s->k, s->ta ? s->m : s->k,
                         s->tb ? s->k : s->n, s->n, 1.0f, 0.0f, a, b, c};
    const double flops = 2.0 * s->m * s->n * s->k;
    const int calls = (int)(4e8 / flops) + 1; /* about 5 ms each */
    double t[2][REPS];
    time_calls(&g, true, calls);
    time_calls(&g, false, calls);
    for (int r = 0; r < REPS; r++)
        for (int own = 1; own >= 0; own--)
            t[own][r] = time_calls(&g, own, calls);
    const double bd = flops * calls / median(t[1], REPS) / 1e9;
    const double ob = flops * calls / median(t[0], REPS) / 1e9;
    printf("%-24s %c%c %5d %5d %5d  %7.1f %7.1f  %5.2f\n", s->what,
           s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', s->m, s->n, s->k, bd, ob, bd / ob);
    fflush(stdout);
    free(a), free(b), free(c);
}

int main(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) {
        printf("bench_gemm: no AVX-512F, bd's sgemm does not run here\n");
        return 0;
    }
    openblas_set_num_threads(1);
    printf("OpenBLAS core %s; bd_gemm runs %s; one thread, GFLOP/s per CPU "
           "second, median of %d\n", openblas_get_corename(), bd_gemm_name(), REPS);
    printf("%-24s op     m     n     k       bd OpenBLAS  bd/OB\n", "product");
    for (size_t i = 0; i < sizeof SHAPES / sizeof *SHAPES; i++)
        bench(&SHAPES[i]);
    return 0;
}
