/* Float math for the ops' hot loops: no calls, branches or float-to-int
 * conversions, so that loops over them vectorise (not a public header). */
#ifndef BD_CORE_FASTMATH_H
#define BD_CORE_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* On a function holding a hot loop: compiled also for AVX-512 and for
 * AVX2 + FMA, the best one for the CPU chosen at load time (the build
 * itself targets baseline x86-64). */
#if defined(__x86_64__) && defined(__GNUC__)
#define BD_VECTOR_CLONES \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BD_VECTOR_CLONES
#endif

/* e^x for -87 <= x <= 0 to about 1 ulp (NaN stays NaN): 2^n e^r with
 * n = round(x / ln 2), r = x - n ln 2 and e^r by the Cephes expf polynomial.
 * Callers clamp x to -87 in a loop of its own: inside the exp loop the
 * clamp stops vectorisation. */
static inline float bd_exp_nonpositive(float x)
{
    const float shift = 12582912.0f; /* 1.5 * 2^23: t's low bits hold n */
    const float t = x * 1.44269504f + shift, n = t - shift;
    const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - 0x4B400000u + 127u) << 23; /* 2^n */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* Sum of n floats in 8 float lanes (so that it vectorises), finished in
 * double. */
static inline double bd_sum_lanes(const float *p, int64_t n)
{
    float lanes[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            lanes[j] += p[i + j];
    double sum = 0.0;
    for (; i < n; i++)
        sum += p[i];
    for (int j = 0; j < 8; j++)
        sum += lanes[j];
    return sum;
}

/* x clamped below at -87, where e^x ~ 1e-38 (NaN stays NaN). */
static inline float bd_clamp_exp_arg(float x)
{
    return x < -87.0f ? -87.0f : x;
}

/* Phi(x) = (1 + erf(x / sqrt 2)) / 2, the standard normal CDF, with a
 * relative error of a few 1e-7 also deep in the lower tail: erfc(z) of
 * z = |x| / sqrt 2 by the Chebyshev fit of Numerical Recipes' erfcc
 * (fractional error below 1.2e-7), Phi = erfc / 2 for x < 0, else
 * 1 - erfc / 2. */
static inline float bd_normal_cdf(float x)
{
    const float z = fabsf(x) * 0.70710678f;
    const float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    const float half_erfc = 0.5f * t * bd_exp_nonpositive(bd_clamp_exp_arg(p - z * z));
    return x < 0.0f ? half_erfc : 1.0f - half_erfc;
}

/* phi(x) = e^(-x^2 / 2) / sqrt(2 pi), the standard normal density; 0 where
 * the exponent is below -87 (so that x phi(x) is 0 for huge |x|) */
static inline float bd_normal_pdf(float x)
{
    const float a = -0.5f * x * x;
    return a < -87.0f ? 0.0f : 0.39894228f * bd_exp_nonpositive(bd_clamp_exp_arg(a));
}

#endif
