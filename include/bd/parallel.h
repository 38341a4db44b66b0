/* Threads: who owns them, and how an op uses them.
 *
 * bd owns the threads, through OpenMP: bd_num_threads() of them, from the
 * OMP_NUM_THREADS environment variable (else one per core) or set at run
 * time with bd_set_num_threads. OpenBLAS always runs on one thread: its own
 * workers would compete with OpenMP's for the cores (and spin in
 * sched_yield between products). A product that is an op's whole pass
 * (linear, conv2d's chunks, Winograd's 16 products) goes through bd_gemm,
 * which splits a large one across bd's threads by blocks of C and runs
 * each block on a one-thread sgemm; inside an active parallel region (more
 * than one thread) it runs the product whole. Products too small to split,
 * issued from inside an op's own region (attention's per-(sample, head)
 * blocks of 64 query rows), call cblas_sgemm directly, one thread each.
 *
 * An op parallelises over independent outputs (images, heads, rows,
 * channels): a `#pragma omp parallel for schedule(static)` over them whose
 * clause is num_threads(bd_threads_for(work)), each iteration writing only
 * its own outputs, scratch per thread taken from the tape's arena and
 * indexed by omp_get_thread_num(). bd_threads_for gives the region one
 * thread per BD_PARALLEL_GRAIN units of work (flops, or elements touched by
 * a memory-bound op), so a small op stays on the calling thread, and it pins
 * OpenBLAS to one thread. Never let a sum's order depend on which thread
 * finishes first: split outputs, not reductions, and sum a reduction over
 * the batch (weight gradients) in chunks of a size fixed by the shapes, in
 * a fixed order. Results are then bit-identical from run to run at the same
 * thread count (a different count splits the products differently, which
 * changes the last bits, as OpenBLAS's own threads did). Open one region
 * per pass over the data, not one per image or row: after each region
 * OpenMP's threads spin a while before sleeping, and on a machine busier
 * than its cores that spinning takes the CPU from the thread doing the work
 * (measured: a width-32 training step 8.6 s with the default policy, 2.6 s
 * with OMP_WAIT_POLICY=PASSIVE at load 18 on 2 cores; set it there). */
#ifndef BD_PARALLEL_H
#define BD_PARALLEL_H

#include <stdbool.h>
#include <stdint.h>

/* Work below which one more thread does not pay for waking it. */
#define BD_PARALLEL_GRAIN 65536

/* The threads bd's parallel regions use. */
int bd_num_threads(void);

/* Use n threads from now on; n < 1: one per core. */
void bd_set_num_threads(int n);

/* Threads for a region doing `work` units: between 1 and bd_num_threads(),
 * one per BD_PARALLEL_GRAIN. Pins OpenBLAS to one thread. */
int bd_threads_for(double work);

/* Row-major C (m, n) = alpha op(A) op(B) + beta C, op(X) = X^T when
 * trans_x, split over bd's threads by blocks of C, each block one sgemm:
 * bd's own in 512-bit vectors where the CPU has AVX-512F and OpenBLAS runs
 * a 256-bit kernel (OPENBLAS_CORETYPE=Haswell, or a CPU OpenBLAS does not
 * know), else OpenBLAS's; BD_GEMM=openblas or BD_GEMM=bd forces one (bd's
 * only where the CPU has AVX-512F). C is not read when beta is 0. */
void bd_gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha,
             const float *a, int lda, const float *b, int ldb, float beta,
             float *c, int ldc);

/* The sgemm bd_gemm runs, e.g. "bd AVX-512 8x48" or "OpenBLAS Haswell". */
const char *bd_gemm_name(void);

#endif
