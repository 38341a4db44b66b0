/* bd's threads: thread count, grain, and bd_gemm against a naive double
 * product at 1 to 3 threads, bit-identical when repeated. */
#include <cblas.h>

#include "bd/parallel.h"
#include "harness.h"

static void test_thread_count(void)
{
    const int start = bd_num_threads();
    bd_set_num_threads(3);
    CHECK(bd_num_threads() == 3, "bd_set_num_threads(3) gives %d", bd_num_threads());
    CHECK(bd_threads_for(0.0) == 1, "no work, one thread");
    CHECK(bd_threads_for(BD_PARALLEL_GRAIN * 2.5) == 2, "2.5 grains, two threads");
    CHECK(bd_threads_for(1e12) == 3, "much work, every thread");
    openblas_set_num_threads(2);
    bd_threads_for(1e12);
    CHECK(openblas_get_num_threads() == 1, "OpenBLAS pinned to one thread");
    bd_set_num_threads(0);
    CHECK(bd_num_threads() >= 1, "n < 1: one thread per core");
    bd_set_num_threads(start);
}

/* c = alpha op(a) op(b) + beta c in double, row-major. */
static void gemm_reference(bool ta, bool tb, int m, int n, int k, float alpha,
                           const float *a, const float *b, float beta,
                           const float *c, double *want)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0.0;
            for (int p = 0; p < k; p++)
                acc += (double)(ta ? a[p * m + i] : a[i * k + p])
                       * (tb ? b[j * k + p] : b[p * n + j]);
            want[i * n + j] = alpha * acc + beta * c[i * n + j];
        }
}

static float *random_floats(int n)
{
    float *p = malloc((size_t)n * sizeof *p);
    for (int i = 0; i < n; i++)
        p[i] = (float)(2.0 * harness_uniform() - 1.0);
    return p;
}

static void check_gemm(bool ta, bool tb, int m, int n, int k)
{
    float *a = random_floats(m * k), *b = random_floats(k * n);
    float *c0 = random_floats(m * n), *c = malloc((size_t)m * n * sizeof *c);
    float *again = malloc((size_t)m * n * sizeof *again);
    double *want = malloc((size_t)m * n * sizeof *want);
    gemm_reference(ta, tb, m, n, k, 0.5f, a, b, 0.25f, c0, want);
    for (int threads = 1; threads <= 3; threads++) {
        char name[96];
        snprintf(name, sizeof name, "gemm %c%c %dx%dx%d, %d thread%s",
                 ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, threads,
                 threads > 1 ? "s" : "");
        bd_set_num_threads(threads);
        float *out[2] = {c, again};
        for (int rep = 0; rep < 2; rep++) {
            memcpy(out[rep], c0, (size_t)m * n * sizeof *c);
            bd_gemm(ta, tb, m, n, k, 0.5f, a, ta ? m : k, b, tb ? k : n, 0.25f,
                    out[rep], n);
        }
        harness_compare(name, c, want, (int64_t)m * n, 1e-5);
        CHECK(!memcmp(c, again, (size_t)m * n * sizeof *c),
              "%s: a second run gives other bits", name);
    }
    free(a), free(b), free(c0), free(c), free(again), free(want);
}

static void test_gemm(void)
{
    const int start = bd_num_threads();
    for (int t = 0; t < 4; t++) {
        check_gemm(t & 1, t & 2, 37, 301, 45);   /* split by columns */
        check_gemm(t & 1, t & 2, 290, 33, 70);   /* split by rows */
    }
    check_gemm(false, false, 3, 5, 7);           /* too small to split */
    bd_set_num_threads(start);
}

int main(void)
{
    RUN(test_thread_count);
    RUN(test_gemm);
    return harness_summary();
}
