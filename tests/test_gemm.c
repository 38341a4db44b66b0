/* bd's own sgemm (core/util/gemm.h) against a naive double product: NN, NT,
 * TN and TT, beta 0 (C not read: it holds NaN), 1 and 0.25, alpha 1 and
 * 0.5, sizes around the tile's (8 x 48), the vector's (16) and the
 * blocks' (depth 128, rows 128), leading dimensions past the row, and
 * every matrix ending exactly at an unmapped page (a load past its last
 * element would fault). Also the choice of sgemm and its name. */
#include <math.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bd/parallel.h"
#include "harness.h"
#include "util/gemm.h"

/* A matrix of `rows` rows of `cols` values, leading dimension ld, whose
 * last value is the last float before an unmapped page. */
typedef struct guarded {
    float *data;
    void  *map;
    size_t map_bytes;
} guarded;

static guarded guarded_new(int rows, int cols, int ld)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t floats = rows > 0 ? (size_t)(rows - 1) * ld + cols : 0;
    const size_t bytes = (floats * sizeof(float) + page - 1) / page * page;
    guarded g = {NULL, NULL, bytes + page};
    g.map = mmap(NULL, g.map_bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g.map == MAP_FAILED || mprotect((char *)g.map + bytes, page, PROT_NONE)) {
        printf("test_gemm: cannot map a guarded matrix\n");
        exit(2);
    }
    g.data = (float *)((char *)g.map + bytes) - floats;
    for (size_t i = 0; i < floats; i++)
        g.data[i] = (float)(2.0 * harness_uniform() - 1.0);
    return g;
}

static void guarded_free(guarded *g)
{
    munmap(g->map, g->map_bytes);
}

/* want (m, n) = alpha op(a) op(b) + beta c in double; c not read when
 * beta == 0. */
static void reference(const gemm_args *g, const float *c, double *want)
{
    for (int i = 0; i < g->m; i++)
        for (int j = 0; j < g->n; j++) {
            double acc = 0.0;
            for (int p = 0; p < g->k; p++)
                acc += (double)(g->ta ? g->a[(int64_t)p * g->lda + i]
                                      : g->a[(int64_t)i * g->lda + p])
                     * (g->tb ? g->b[(int64_t)j * g->ldb + p]
                              : g->b[(int64_t)p * g->ldb + j]);
            want[(int64_t)i * g->n + j] = g->alpha * acc
                + (g->beta != 0.0f ? g->beta * c[(int64_t)i * g->ldc + j] : 0.0);
        }
}

/* gemm_avx512 on (m, n, k) with every row `pad` values past its end. */
static void check(bool ta, bool tb, int m, int n, int k, float alpha,
                  float beta, int pad)
{
    const int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    guarded a = guarded_new(ar, ac, ac + pad), b = guarded_new(br, bc, bc + pad);
    guarded c = guarded_new(m, n, n + pad);
    const gemm_args g = {ta, tb, m, n, k, ac + pad, bc + pad, n + pad, alpha,
                         beta, a.data, b.data, c.data};
    double *want = malloc(((size_t)m * n + 1) * sizeof *want);
    float *got = malloc(((size_t)m * n + 1) * sizeof *got);
    reference(&g, c.data, want);
    if (beta == 0.0f)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c.data[(int64_t)i * g.ldc + j] = NAN;
    gemm_avx512(&g);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            got[(int64_t)i * n + j] = c.data[(int64_t)i * g.ldc + j];
    char name[96];
    snprintf(name, sizeof name, "%c%c %dx%dx%d alpha %g beta %g pad %d",
             ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, beta, pad);
    harness_compare(name, got, want, (int64_t)m * n, 2e-6 * sqrt(k + 1.0));
    free(want), free(got);
    guarded_free(&a), guarded_free(&b), guarded_free(&c);
}

static void test_shapes(void)
{
    static const int sizes[] = {1, 3, 8, 17, 31, 33, 48, 65};
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 8; j++)
                check(t & 1, t & 2, sizes[i], sizes[(i + j) % 8], sizes[j] + 2,
                      1.0f, (i + j) % 2 ? 1.0f : 0.0f, j % 3 == 0 ? 0 : 5);
}

static void test_depth_and_blocks(void)
{
    for (int t = 0; t < 4; t++) {
        const bool ta = t & 1, tb = t & 2;
        check(ta, tb, 17, 50, 1, 1.0f, 0.0f, 0);          /* k = 1 */
        check(ta, tb, 9, 97, 129, 1.0f, 1.0f, 3);         /* one past a depth block */
        check(ta, tb, 33, 40, 1000, 1.0f, 1.0f, 0);       /* 8 depth blocks */
        check(ta, tb, 300, 65, 140, 1.0f, 0.0f, 1);       /* 3 row blocks */
        check(ta, tb, 31, 145, 37, 0.5f, 0.25f, 7);       /* alpha, beta */
        check(ta, tb, 64, 1000, 64, 1.0f, 0.0f, 0);       /* Winograd-like */
    }
    check(false, false, 5, 7, 0, 1.0f, 0.25f, 0);         /* k = 0: C = beta C */
}

/* bd's sgemm by BD_GEMM, the CPU and OpenBLAS's kernel. */
static void test_choice(void)
{
    CHECK(gemm_choose_own(NULL, true, "Haswell"), "AVX-512 CPU, Haswell kernel: bd's");
    CHECK(!gemm_choose_own(NULL, true, "SkylakeX"), "SkylakeX kernel: OpenBLAS");
    CHECK(!gemm_choose_own(NULL, false, "Haswell"), "no AVX-512: OpenBLAS");
    CHECK(!gemm_choose_own("openblas", true, "Haswell"), "BD_GEMM=openblas");
    CHECK(gemm_choose_own("bd", true, "SkylakeX"), "BD_GEMM=bd");
    CHECK(!gemm_choose_own("bd", false, "Haswell"), "BD_GEMM=bd without AVX-512");
    CHECK(gemm_choose_own("mkl", true, "Haswell"), "BD_GEMM=mkl: the default");
    const char *name = bd_gemm_name();
    CHECK(gemm_runs_own() ? !strncmp(name, "bd ", 3) : !strncmp(name, "OpenBLAS ", 9),
          "bd_gemm_name() %s", name);
    printf("bd_gemm runs %s\n", name);
}

int main(void)
{
    RUN(test_choice);
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) {
        printf("no AVX-512F: bd's sgemm is not run here\n");
        return harness_summary();
    }
    RUN(test_shapes);
    RUN(test_depth_and_blocks);
    return harness_summary();
}
