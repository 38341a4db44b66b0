/* Parameter initialisers, drawn from a caller's generator. */
#include "bd/nn.h"

void bd_init_uniform(bd_tensor *t, bd_rng *rng, float bound)
{
    bd_rng_fill_uniform(rng, t->data, t->numel, -bound, bound);
}

void bd_init_normal(bd_tensor *t, bd_rng *rng, float std)
{
    bd_rng_fill_normal(rng, t->data, t->numel, 0.0f, std);
}
