/* A small seeded generator for the manifold metric (a plugin cannot reach
 * the core's Philox): splitmix64, which passes BigCrush and needs one word
 * of state. The same seed gives the same layout. */
#ifndef BD_MANIFOLD_RAND_H
#define BD_MANIFOLD_RAND_H

#include <math.h>
#include <stdint.h>

typedef struct rand_state {
    uint64_t s;
} rand_state;

static inline uint64_t rand_next(rand_state *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [0, 1) */
static inline double rand_uniform(rand_state *r)
{
    return (double)(rand_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* uniform in [0, n), n < 2^32 (multiply-shift, bias below 2^-32) */
static inline uint32_t rand_below(rand_state *r, uint32_t n)
{
    return (uint32_t)(((rand_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* standard normal (Box-Muller; one of the pair) */
static inline double rand_normal(rand_state *r)
{
    double u = 1.0 - rand_uniform(r), v = rand_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

#endif
