/* Randomness: Philox4x32-10 (Salmon et al., SC'11), counter-based and keyed
 * by (seed, stream). A bd_rng is a plain value: copy it to fork, store its
 * fields in a checkpoint to resume the exact sequence. */
#ifndef BD_RNG_H
#define BD_RNG_H

#include <stdint.h>

typedef struct bd_rng {
    uint64_t seed;     /* the Philox key */
    uint64_t stream;   /* high half of the counter: independent sequences */
    uint64_t counter;  /* low half of the counter: blocks drawn so far */
    uint32_t block[4]; /* the current block of output */
    uint32_t used;     /* words of `block` consumed (4 = draw a new block) */
} bd_rng;

/* One Philox4x32-10 block: out = philox(ctr, key). The published
 * known-answer vectors test this function. */
void bd_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                      uint32_t out[4]);

bd_rng   bd_rng_make(uint64_t seed, uint64_t stream);
uint32_t bd_rng_u32(bd_rng *r);
float    bd_rng_uniform(bd_rng *r);                /* [0, 1) */
float    bd_rng_normal(bd_rng *r);                 /* N(0, 1) */
uint32_t bd_rng_below(bd_rng *r, uint32_t n);      /* [0, n), unbiased; n >= 1 */
void     bd_rng_fill_uniform(bd_rng *r, float *x, int64_t n, float lo, float hi);
void     bd_rng_fill_normal(bd_rng *r, float *x, int64_t n, float mean, float std);

#endif
