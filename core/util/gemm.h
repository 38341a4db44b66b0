/* bd's own sgemm in 512-bit vectors, run by bd_gemm (include/bd/parallel.h)
 * where the CPU has AVX-512F and OpenBLAS's kernel for it is a 256-bit one.
 * Not a public header.
 *
 * Built as BLIS builds its products: C is computed in register tiles of
 * GEMM_MR rows x GEMM_NR columns (gemm_kernel.c); the depth K is cut into
 * blocks of GEMM_KC and the rows into blocks of GEMM_MC; for each, the rows
 * of op(A) are packed into MR-row panels (kc, MR) that stay in L2, and each
 * NR columns of op(B) into a panel (kc, NR) that stays in L1 while every
 * row panel passes over it (gemm_pack.c). Packing absorbs the transposes,
 * so one kernel serves NN, NT and TN. gemm.c holds the loops and the choice
 * of sgemm. A product's bits depend only on its shape, not on which thread
 * or which block of C computes it. */
#ifndef BD_CORE_GEMM_H
#define BD_CORE_GEMM_H

#include <stdbool.h>
#include <stdint.h>

/* The AVX-512 code is compiled in (x86-64, GCC or Clang). */
#if defined(__x86_64__) && defined(__GNUC__)
#define BD_GEMM_AVX512 1
#endif

/* Rows and columns of a register tile (24 zmm accumulators), the depth of
 * a block (a (KC, NR) panel of B is 24 KiB of a 48 KiB L1) and the rows
 * of a block (a (MC, KC) block of A is 64 KiB of a 1 MiB L2). */
enum { GEMM_MR = 8, GEMM_NR = 48, GEMM_KC = 128, GEMM_MC = 128 };

/* Row-major C (m, n) = alpha op(A) op(B) + beta C, op(X) = X^T when t_x;
 * C is not read when beta == 0. */
typedef struct gemm_args {
    bool         ta, tb;
    int          m, n, k, lda, ldb, ldc;
    float        alpha, beta;
    const float *a, *b;
    float       *c;
} gemm_args;

/* The product on one thread with bd's kernel. Needs AVX-512F. */
void gemm_avx512(const gemm_args *g);

/* dst (kc, w) = lanes x kc values of a matrix, lane-major in dst: value
 * (lane l, depth p) read from src[p * ld + l] (gemm_pack_lanes: the lanes
 * contiguous) or from src[l * ld + p] (gemm_pack_depth: the depth
 * contiguous); lanes <= l < w are zero. w is 8 or a multiple of 16, dst
 * 64-byte aligned. Needs AVX-512F. */
void gemm_pack_lanes(const float *src, int64_t ld, int lanes, int kc, int w,
                     float *dst);
void gemm_pack_depth(const float *src, int64_t ld, int lanes, int kc, int w,
                     float *dst);

/* C (rows, cols) = alpha pa^T pb + beta C, C not read when beta == 0.
 * pa: (kc, GEMM_MR) packed rows of A; pb: (kc, 16 nv) packed columns of B,
 * nv = 1..3, cols <= 16 nv; rows <= GEMM_MR. Needs AVX-512F. */
void gemm_kernel(int kc, const float *pa, const float *pb, int nv, float *c,
                 int64_t ldc, int rows, int cols, float alpha, float beta);

/* Which sgemm bd_gemm runs: BD_GEMM ("openblas" or "bd") when set, else
 * bd's where the CPU has AVX-512F and OpenBLAS's kernel (corename) is not
 * an AVX-512 one. bd's is never chosen without AVX-512F. */
bool gemm_choose_own(const char *forced, bool avx512f, const char *corename);

/* True when bd_gemm runs gemm_avx512 (chosen once, at load time). */
bool gemm_runs_own(void);

#endif
