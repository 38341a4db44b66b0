/* Exponential moving average of parameters: one heap shadow per parameter,
 * starting as a copy of its value. */
#include "bd/nn.h"

#include <stdlib.h>
#include <string.h>

struct bd_ema {
    const bd_params *params;
    float            decay;
    int              n;       /* parameters at creation */
    bd_tensor      **shadow;
};

void bd_ema_free(bd_ema *ema)
{
    if (!ema)
        return;
    for (int i = 0; i < ema->n && ema->shadow; i++)
        bd_tensor_free(ema->shadow[i]);
    free(ema->shadow);
    free(ema);
}

bd_status bd_ema_new(const bd_params *p, float decay, bd_ema **out)
{
    if (!p)
        return bd_fail(BD_E_ARG, "ema: params is NULL");
    if (!(decay >= 0.0f && decay <= 1.0f))
        return bd_fail(BD_E_ARG, "ema: decay = %g, expected a value in [0, 1]",
                       decay);
    bd_ema *ema = calloc(1, sizeof *ema);
    if (!ema)
        return bd_fail(BD_E_NOMEM, "ema: out of memory");
    ema->params = p;
    ema->decay = decay;
    ema->n = bd_params_count(p);
    /* One spare slot: calloc(0) may return NULL for an empty set. */
    ema->shadow = calloc((size_t)ema->n + 1, sizeof *ema->shadow);
    bool ok = ema->shadow != NULL;
    for (int i = 0; ok && i < ema->n; i++) {
        const bd_tensor *t = bd_params_at(p, i);
        ema->shadow[i] = bd_tensor_new(t->ndim, t->shape, false);
        ok = ema->shadow[i] != NULL;
        if (ok)
            memcpy(ema->shadow[i]->data, t->data, (size_t)t->numel * sizeof(float));
    }
    if (!ok) {
        bd_ema_free(ema);
        return bd_fail(BD_E_NOMEM, "ema: out of memory for shadows of %lld"
                       " parameters", (long long)bd_params_numel(p));
    }
    *out = ema;
    return BD_OK;
}

/* shadow += (1 - decay) (param - shadow) */
void bd_ema_update(bd_ema *ema)
{
    const float rate = 1.0f - ema->decay;
    for (int i = 0; i < ema->n; i++) {
        const bd_tensor *t = bd_params_at(ema->params, i);
        float *s = ema->shadow[i]->data;
        for (int64_t j = 0; j < t->numel; j++)
            s[j] += rate * (t->data[j] - s[j]);
    }
}

bd_tensor *bd_ema_at(const bd_ema *ema, int i)
{
    return i >= 0 && i < ema->n ? ema->shadow[i] : NULL;
}

void bd_ema_swap(bd_ema *ema)
{
    for (int i = 0; i < ema->n; i++) {
        float *a = bd_params_at(ema->params, i)->data, *b = ema->shadow[i]->data;
        for (int64_t j = 0; j < ema->shadow[i]->numel; j++) {
            float keep = a[j];
            a[j] = b[j];
            b[j] = keep;
        }
    }
}
