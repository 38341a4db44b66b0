/* Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11; the Random123 constants)
 * and the draws built on it. The 128-bit counter is (counter lo, counter hi,
 * stream lo, stream hi) and the 64-bit key is (seed lo, seed hi), so every
 * (seed, stream) pair is its own sequence of 2^64 blocks. */
#include "bd/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

/* One round: two 32x32 -> 64-bit products, swapped and mixed with the key. */
static void philox_round(uint32_t x[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * x[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * x[2];
    uint32_t y0 = (uint32_t)(p1 >> 32) ^ x[1] ^ k[0];
    uint32_t y2 = (uint32_t)(p0 >> 32) ^ x[3] ^ k[1];
    x[0] = y0;
    x[1] = (uint32_t)p1;
    x[2] = y2;
    x[3] = (uint32_t)p0;
}

void bd_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                      uint32_t out[4])
{
    uint32_t x[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k[0] += PHILOX_W0;
            k[1] += PHILOX_W1;
        }
        philox_round(x, k);
    }
    for (int i = 0; i < 4; i++)
        out[i] = x[i];
}

bd_rng bd_rng_make(uint64_t seed, uint64_t stream)
{
    bd_rng r = {.seed = seed, .stream = stream, .counter = 0, .used = 4};
    return r;
}

/* Draw block number r->counter of the stream into r->block. */
static void next_block(bd_rng *r)
{
    const uint32_t ctr[4] = {(uint32_t)r->counter, (uint32_t)(r->counter >> 32),
                             (uint32_t)r->stream, (uint32_t)(r->stream >> 32)};
    const uint32_t key[2] = {(uint32_t)r->seed, (uint32_t)(r->seed >> 32)};
    bd_philox4x32_10(ctr, key, r->block);
    r->counter++;
    r->used = 0;
}

uint32_t bd_rng_u32(bd_rng *r)
{
    if (r->used >= 4)
        next_block(r);
    return r->block[r->used++];
}

/* The top 24 bits: every float in [0, 1) on a 2^-24 grid, 1 excluded. */
float bd_rng_uniform(bd_rng *r)
{
    return (float)(bd_rng_u32(r) >> 8) * 0x1p-24f;
}

/* Box-Muller, cosine half: u1 in (0, 1] keeps log away from 0. */
float bd_rng_normal(bd_rng *r)
{
    float u1 = (float)((bd_rng_u32(r) >> 8) + 1) * 0x1p-24f;
    float u2 = bd_rng_uniform(r);
    return sqrtf(-2.0f * logf(u1)) * cosf(2.0f * (float)M_PI * u2);
}

/* Rejection of the 2^32 mod n lowest words leaves a multiple of n equally
 * likely words, so `word % n` is exactly uniform. n = 0 returns 0. */
uint32_t bd_rng_below(bd_rng *r, uint32_t n)
{
    if (n <= 1)
        return 0;
    const uint32_t reject = (uint32_t)(-n) % n; /* 2^32 mod n */
    uint32_t word;
    do
        word = bd_rng_u32(r);
    while (word < reject);
    return word % n;
}

void bd_rng_fill_uniform(bd_rng *r, float *x, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * bd_rng_uniform(r);
}

void bd_rng_fill_normal(bd_rng *r, float *x, int64_t n, float mean, float std)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = mean + std * bd_rng_normal(r);
}
