/* Philox4x32-10: published known answers, stream layout, reproducibility,
 * and the statistics of the uniform, normal and integer draws. */
#include "harness.h"
#include "bd/rng.h"

/* Random123 v1.14 tests/kat_vectors, the "philox4x32 10" lines. */
static void test_known_answers(void)
{
    static const uint32_t kat[3][10] = {
        {0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000,
         0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
         0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
         0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int v = 0; v < 3; v++) {
        uint32_t out[4];
        bd_philox4x32_10(kat[v], kat[v] + 4, out);
        for (int i = 0; i < 4; i++)
            CHECK(out[i] == kat[v][6 + i], "vector %d word %d: %08x, expected %08x",
                  v, i, out[i], kat[v][6 + i]);
    }
}

/* The generator's words are the blocks at counters 0, 1, ... of its
 * (seed, stream): counter = (block lo, block hi, stream lo, stream hi). */
static void test_counter_layout(void)
{
    const uint64_t seed = 0x0123456789abcdefull, stream = 0xfedcba9876543210ull;
    bd_rng r = bd_rng_make(seed, stream);
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    int bad = 0;
    for (uint32_t block = 0; block < 3; block++) {
        const uint32_t ctr[4] = {block, 0, (uint32_t)stream,
                                 (uint32_t)(stream >> 32)};
        uint32_t want[4];
        bd_philox4x32_10(ctr, key, want);
        for (int i = 0; i < 4; i++)
            bad += bd_rng_u32(&r) != want[i];
    }
    CHECK(bad == 0, "%d words differ from the Philox blocks of the stream", bad);
    CHECK(r.counter == 3 && r.used == 4, "counter %llu used %u after 3 blocks",
          (unsigned long long)r.counter, r.used);
}

static int count_equal(bd_rng a, bd_rng b, int n)
{
    int same = 0;
    for (int i = 0; i < n; i++)
        same += bd_rng_u32(&a) == bd_rng_u32(&b);
    return same;
}

static void test_streams_and_seeds(void)
{
    const int n = 1000;
    CHECK(count_equal(bd_rng_make(7, 3), bd_rng_make(7, 3), n) == n,
          "same (seed, stream) must repeat");
    CHECK(count_equal(bd_rng_make(7, 3), bd_rng_make(7, 4), n) < 5,
          "neighbouring streams must differ");
    CHECK(count_equal(bd_rng_make(7, 3), bd_rng_make(8, 3), n) < 5,
          "neighbouring seeds must differ");
    CHECK(count_equal(bd_rng_make(1, 0), bd_rng_make(0, 1), n) < 5,
          "seed and stream must not be interchangeable");

    /* A copy is a fork: it continues exactly where the original stood. */
    bd_rng r = bd_rng_make(11, 0);
    for (int i = 0; i < 7; i++)
        bd_rng_u32(&r);
    CHECK(count_equal(r, r, n) == n, "a copied generator must continue identically");
}

/* Sample mean and variance of n draws, checked against the distribution's
 * mean mu and variance var within 5 standard errors. */
static void check_moments(const char *what, float (*draw)(bd_rng *), double mu,
                          double var, double fourth_central)
{
    const int n = 400000;
    bd_rng r = bd_rng_make(2024, 1);
    double sum = 0, sum2 = 0;
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        float x = draw(&r);
        sum += x;
        sum2 += (double)x * x;
        lo = fminf(lo, x);
        hi = fmaxf(hi, x);
    }
    double mean = sum / n, v = sum2 / n - mean * mean;
    double se_mean = sqrt(var / n), se_var = sqrt((fourth_central - var * var) / n);
    printf("   %-8s mean %+.5f (%.1f se)  var %.5f (%.1f se)  range [%.8g, %.8g]\n",
           what, mean, (mean - mu) / se_mean, v, (v - var) / se_var, lo, hi);
    CHECK(fabs(mean - mu) < 5 * se_mean, "%s mean %g, expected %g", what, mean, mu);
    CHECK(fabs(v - var) < 5 * se_var, "%s variance %g, expected %g", what, v, var);
    if (mu == 0.5)
        CHECK(lo >= 0.0f && hi < 1.0f, "uniform range [%g, %g] outside [0, 1)", lo, hi);
    else
        CHECK(isfinite(lo) && isfinite(hi) && lo < -4 && hi > 4,
              "normal range [%g, %g]: expected finite tails beyond 4", lo, hi);
}

static void test_uniform_and_normal(void)
{
    check_moments("uniform", bd_rng_uniform, 0.5, 1.0 / 12, 1.0 / 80);
    check_moments("normal", bd_rng_normal, 0.0, 1.0, 3.0);

    /* Normal shape: the fraction within one sigma is Phi(1) - Phi(-1). */
    bd_rng r = bd_rng_make(5, 5);
    const int n = 200000;
    int inside = 0;
    for (int i = 0; i < n; i++)
        inside += fabsf(bd_rng_normal(&r)) < 1.0f;
    double p = erf(1.0 / sqrt(2.0)), frac = (double)inside / n;
    CHECK(fabs(frac - p) < 5 * sqrt(p * (1 - p) / n),
          "normal: %.4f of draws within 1 sigma, expected %.4f", frac, p);
}

static void test_fill(void)
{
    float x[10000];
    bd_rng r = bd_rng_make(3, 9);
    bd_rng_fill_uniform(&r, x, 10000, -2.0f, 6.0f);
    double sum = 0;
    int outside = 0;
    for (int i = 0; i < 10000; i++) {
        sum += x[i];
        outside += x[i] < -2.0f || x[i] > 6.0f;
    }
    CHECK(outside == 0, "%d uniform fills outside [-2, 6]", outside);
    CHECK(fabs(sum / 10000 - 2.0) < 5 * sqrt(64.0 / 12 / 10000),
          "uniform fill mean %g, expected 2", sum / 10000);

    bd_rng_fill_normal(&r, x, 10000, 3.0f, 0.5f);
    double s1 = 0, s2 = 0;
    for (int i = 0; i < 10000; i++) {
        s1 += x[i];
        s2 += (double)x[i] * x[i];
    }
    double mean = s1 / 10000, sd = sqrt(s2 / 10000 - mean * mean);
    CHECK(fabs(mean - 3.0) < 5 * 0.5 / 100 && fabs(sd - 0.5) < 0.02,
          "normal fill mean %g sd %g, expected 3 and 0.5", mean, sd);
}

/* Pearson chi-square of bd_rng_below(n) counts against uniform. With 6 to 99
 * degrees of freedom, df + 6 sqrt(2 df) is far in the tail (p < 1e-4). */
static void check_below_chi2(uint32_t n)
{
    const int draws = 2000 * (int)n;
    int counts[100] = {0};
    bd_rng r = bd_rng_make(99, n);
    int outside = 0;
    for (int i = 0; i < draws; i++) {
        uint32_t k = bd_rng_below(&r, n);
        if (k >= n)
            outside++;
        else
            counts[k]++;
    }
    double expected = (double)draws / n, chi2 = 0;
    for (uint32_t k = 0; k < n; k++)
        chi2 += (counts[k] - expected) * (counts[k] - expected) / expected;
    double df = n - 1.0, limit = df + 6 * sqrt(2 * df);
    printf("   below(%u): chi2 %.1f with %g df (limit %.1f)\n", n, chi2, df, limit);
    CHECK(outside == 0, "below(%u) returned %d values >= n", n, outside);
    CHECK(chi2 < limit, "below(%u): chi2 %.1f >= %.1f", n, chi2, limit);
}

static void test_below(void)
{
    check_below_chi2(10);
    check_below_chi2(7);
    check_below_chi2(100);

    bd_rng r = bd_rng_make(1, 1);
    int nonzero = 0;
    for (int i = 0; i < 100; i++)
        nonzero += bd_rng_below(&r, 1) != 0;
    CHECK(nonzero == 0, "below(1) must always be 0");

    /* n = 3 * 2^30: plain `word % n` would put half the draws below 2^30
     * (the low 2^30 values are hit twice); unbiased draws put a third. */
    const uint32_t n = 3u << 30;
    const int draws = 200000;
    int low = 0, outside = 0;
    for (int i = 0; i < draws; i++) {
        uint32_t k = bd_rng_below(&r, n);
        low += k < (1u << 30);
        outside += k >= n;
    }
    double frac = (double)low / draws;
    printf("   below(3*2^30): %.4f of draws below 2^30 (unbiased 1/3, modulo 1/2)\n",
           frac);
    CHECK(outside == 0, "below(3*2^30) returned %d values >= n", outside);
    CHECK(fabs(frac - 1.0 / 3) < 5 * sqrt(2.0 / 9 / draws),
          "below(3*2^30) is biased: %.4f below 2^30, expected 1/3", frac);
}

int main(void)
{
    RUN(test_known_answers);
    RUN(test_counter_layout);
    RUN(test_streams_and_seeds);
    RUN(test_uniform_and_normal);
    RUN(test_fill);
    RUN(test_below);
    return harness_summary();
}
