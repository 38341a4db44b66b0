/* The denoisers' conditioning: the time step t and the label (x, y), each
 * encoded sinusoidally (h->sinusoidal, base 10000) into E values. One owner
 * for the unet, mlp and factorized plugins. A plugin-side helper: static
 * functions over the host table, included as "common/condition.h".
 *
 *   cond_check    t (N), cond (N, 2): the shapes for N samples
 *   cond_encode   t (N), cond (N, 2) -> enc(t), enc(x), enc(y), each (N, E)
 *   cond_embed    t (N), cond (N, 2) -> [enc(t), enc(x), enc(y)]  (N, 3E)
 *
 * The label is read, not differentiated; temporaries live on the tape. */
#ifndef BD_PLUGIN_COMMON_CONDITION_H
#define BD_PLUGIN_COMMON_CONDITION_H

#include "bd/plugin.h"

#define COND_BASE 10000.0f

/* t: (n), cond: (n, 2), else a message naming `owner` and the shape found. */
static inline bd_status cond_check(const bd_host *h, const char *owner,
                                   int64_t n, bd_tensor *t, bd_tensor *cond)
{
    if (h->tensor_ndim(t) != 1 || h->tensor_dim(t, 0) != n)
        return h->fail(BD_E_ARG, "%s: t has %lld values in %d dims, expected"
                       " (%lld)", owner, (long long)h->tensor_numel(t),
                       h->tensor_ndim(t), (long long)n);
    if (h->tensor_ndim(cond) != 2 || h->tensor_dim(cond, 0) != n
        || h->tensor_dim(cond, 1) != 2)
        return h->fail(BD_E_ARG, "%s: cond has %lld values in %d dims,"
                       " expected (%lld, 2)", owner,
                       (long long)h->tensor_numel(cond), h->tensor_ndim(cond),
                       (long long)n);
    return BD_OK;
}

/* t: (N), cond: (N, 2) -> enc[0] = enc(t), enc[1] = enc(x), enc[2] = enc(y),
 * each (N, E); E even. */
static inline bd_status cond_encode(const bd_host *h, bd_tape *tp, bd_tensor *t,
                                    bd_tensor *cond, int64_t emb,
                                    bd_tensor *enc[3])
{
    const int64_t n = h->tensor_dim(t, 0);
    bd_tensor *x = h->tape_tensor(tp, 1, &n), *y = h->tape_tensor(tp, 1, &n);
    if (!x || !y)
        return BD_E_NOMEM;
    const float *c = h->tensor_data(cond);
    float *px = h->tensor_data(x), *py = h->tensor_data(y);
    for (int64_t i = 0; i < n; i++) {
        px[i] = c[2 * i];
        py[i] = c[2 * i + 1];
    }
    BD_TRY(h->sinusoidal(tp, t, (int)emb, COND_BASE, &enc[0]));
    BD_TRY(h->sinusoidal(tp, x, (int)emb, COND_BASE, &enc[1]));
    return h->sinusoidal(tp, y, (int)emb, COND_BASE, &enc[2]);
}

/* t: (N), cond: (N, 2) -> e: (N, 3E) = [enc(t), enc(x), enc(y)] */
static inline bd_status cond_embed(const bd_host *h, bd_tape *tp, bd_tensor *t,
                                   bd_tensor *cond, int64_t emb, bd_tensor **e)
{
    bd_tensor *enc[3];
    BD_TRY(cond_encode(h, tp, t, cond, emb, enc));
    BD_TRY(h->concat(tp, enc[0], enc[1], e));
    return h->concat(tp, *e, enc[2], e);
}

#endif
