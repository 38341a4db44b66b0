/* conv2d at the UNet's shapes against the sgemm ceiling measured in the same
 * run. Prints GFLOP/s of forward (no grad, as sampling runs) and of
 * forward + backward (grads of x, w and b), the ratio to a large square
 * sgemm, and the ratio to the conv's own per-image GEMM shape run bare.
 * Twice: on bd's threads (OMP_NUM_THREADS, the products and im2col split
 * over them; the sgemm ceiling and gemm* on as many OpenBLAS threads), and
 * on one thread.
 * Times are medians of REPS repetitions after one warm-up, on the monotonic
 * clock, or with --cpu on the process's CPU clock (a busy machine inflates
 * wall time much more than CPU time; with several threads CPU time adds up
 * their work, so --cpu compares efficiency, not speed). --shape N,C,HW,O
 * runs that one shape instead of the list. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bd/ops.h"
#include "bd/parallel.h"
#include "bench_clock.h"

enum { REPS = 7, SQUARE = 2048 };

typedef struct bench_shape {
    int64_t n, c, hw, o;   /* 3x3 kernel, stride 1, pad 1: OH = OW = hw */
} bench_shape;

/* The small nets of the experiments (width 8 and 16 at 16x16), the
 * width-32 net (mults 1,2,2) and the width-64 net, at batch 64. */
static const bench_shape SHAPES[] = {
    {64, 8, 16, 8},    {64, 16, 8, 16},    {64, 32, 4, 32},    {64, 16, 16, 16},
    {64, 32, 8, 32},   {64, 64, 2, 64},
    {64, 32, 32, 32},  {64, 64, 16, 64},   {64, 128, 8, 128},
    {64, 64, 32, 64},  {64, 128, 16, 128}, {64, 256, 8, 256}, {64, 256, 4, 256},
};

typedef struct bench_run {
    bd_tape   *tp;
    bd_tensor *x, *w, *b;
    float     *a, *bm, *c;  /* bare GEMM operands */
    int        m, nn, k, batch;
} bench_run;

static clockid_t bench_clock = CLOCK_MONOTONIC;

/* Median seconds of fn over REPS runs, after one warm-up run. */
static double median_time(void (*fn)(bench_run *), bench_run *r)
{
    double t[REPS];
    fn(r);
    for (int i = 0; i < REPS; i++) {
        const double t0 = clock_seconds(bench_clock);
        fn(r);
        t[i] = clock_seconds(bench_clock) - t0;
    }
    return median(t, REPS);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_conv2d: %s: %s\n", what, bd_last_error());
    exit(1);
}

static void run_forward(bench_run *r)
{
    bd_tensor *y;
    bd_tape_reset(r->tp);
    bd_tape_set_grad(r->tp, false);
    if (bd_conv2d(r->tp, r->x, r->w, r->b, 1, 1, &y) != BD_OK)
        die("forward");
}

/* Forward, sum, backward: the sum adds one pass over y each way. */
static void run_train(bench_run *r)
{
    bd_tensor *y, *loss;
    bd_tape_reset(r->tp);
    bd_tape_set_grad(r->tp, true);
    if (bd_conv2d(r->tp, r->x, r->w, r->b, 1, 1, &y) != BD_OK
        || bd_sum(r->tp, y, &loss) != BD_OK || bd_tape_backward(r->tp, loss) != BD_OK)
        die("forward + backward");
}

/* `batch` products (m, k) x (k, nn), as the forward issues per image. */
static void run_gemm(bench_run *r)
{
    for (int i = 0; i < r->batch; i++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r->m, r->nn, r->k,
                    1.0f, r->a, r->k, r->bm, r->nn, 0.0f, r->c, r->nn);
}

static float *filled(size_t n)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_conv2d: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}

/* GFLOP/s of `batch` bare (m, k) x (k, nn) products on `threads` OpenBLAS
 * threads. */
static double gemm_gflops(int m, int nn, int k, int batch, int threads)
{
    openblas_set_num_threads(threads);
    bench_run r = {.a = filled((size_t)m * k), .bm = filled((size_t)k * nn),
                   .c = filled((size_t)m * nn), .m = m, .nn = nn, .k = k,
                   .batch = batch};
    double t = median_time(run_gemm, &r);
    free(r.a);
    free(r.bm);
    free(r.c);
    return 2.0 * m * nn * k * batch / t * 1e-9;
}

static bd_tensor *param(int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    bd_tensor *t = bd_tensor_new4(d0, d1, d2, d3, true);
    if (!t)
        die("tensor");
    for (int64_t i = 0; i < t->numel; i++)
        t->data[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return t;
}

static void bench_shape_run(const bench_shape *s, double square, int threads)
{
    bench_run r = {.tp = bd_tape_new(), .x = param(s->n, s->c, s->hw, s->hw),
                   .w = param(s->o, s->c, 3, 3), .b = param(s->o, 0, 0, 0)};
    if (!r.tp)
        die("tape");
    const double fwd_flop = 2.0 * s->n * s->o * s->c * 9 * s->hw * s->hw;
    bd_set_num_threads(threads);
    const double fwd = fwd_flop / median_time(run_forward, &r) * 1e-9;
    const double train = 3.0 * fwd_flop / median_time(run_train, &r) * 1e-9;
    const double gemm = gemm_gflops((int)s->o, (int)(s->hw * s->hw),
                                    (int)(s->c * 9), (int)s->n, threads);
    printf("%4lld x %2lldx%-2lld -> %3lld  %7.1f %7.1f %7.1f  %14.0f%% %13.0f%%\n",
           (long long)s->c, (long long)s->hw, (long long)s->hw, (long long)s->o,
           fwd, train, gemm, 100.0 * train / square, 100.0 * train / gemm);
    bd_tensor_free(r.x);
    bd_tensor_free(r.w);
    bd_tensor_free(r.b);
    bd_tape_free(r.tp);
}

static const bench_shape *only; /* --shape: this one instead of SHAPES */

static void bench_section(int threads)
{
    const double square = gemm_gflops(SQUARE, SQUARE, SQUARE, 1, threads);
    printf("\n%d thread%s: sgemm ceiling %dx%dx%d %.1f GFLOP/s\n",
           threads, threads > 1 ? "s" : "", SQUARE, SQUARE, SQUARE, square);
    printf("   C x HxW  ->   O   forward fwd+bwd   gemm*  fwd+bwd/ceiling"
           "  fwd+bwd/gemm*\n");
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++)
        if (!only || i == 0)
            bench_shape_run(only ? only : &SHAPES[i], square, threads);
}

int main(int argc, char **argv)
{
    bench_shape one;
    for (int i = 1; i < argc; i++) {
        long long n, c, hw, o;
        if (!strcmp(argv[i], "--cpu"))
            bench_clock = CLOCK_PROCESS_CPUTIME_ID;
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc
                 && sscanf(argv[++i], "%lld,%lld,%lld,%lld", &n, &c, &hw, &o) == 4) {
            one = (bench_shape){n, c, hw, o};
            only = &one;
        } else {
            fprintf(stderr, "usage: bench_conv2d [--cpu] [--shape N,C,HW,O]\n");
            return 2;
        }
    }
    const char *core = getenv("OPENBLAS_CORETYPE");
    const int threads = bd_num_threads();
    printf("%s, OPENBLAS_CORETYPE=%s; bd_gemm runs %s\n", openblas_get_config(),
           core ? core : "(unset)", bd_gemm_name());
    printf("conv2d 3x3 pad 1 stride 1, batch 64, GFLOP/s, median of %d, %s time\n",
           REPS, bench_clock == CLOCK_MONOTONIC ? "wall" : "CPU");
    bench_section(threads);
    if (threads > 1)
        bench_section(1);
    printf("\ngemm*: the forward's per-image product (O, 9C) x (9C, HW), 64"
           " times, bare\n");
    return 0;
}
