/* AdamW (Loshchilov & Hutter) with PyTorch's semantics: decoupled weight
 * decay p -= lr wd p, then the bias-corrected Adam step, after clipping the
 * global gradient norm to clip_norm (torch.nn.utils.clip_grad_norm_). */
#include "bd/nn.h"

#include <math.h>
#include <stdlib.h>

struct bd_adamw {
    bd_params      *params;
    bd_adamw_config cfg;
    int             n;      /* parameters at creation: one m and v each */
    bd_tensor     **m, **v; /* first and second moments, heap tensors */
    int64_t         steps;
};

bd_adamw_config bd_adamw_defaults(void)
{
    return (bd_adamw_config){.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f,
                             .eps = 1e-8f, .weight_decay = 0.01f,
                             .clip_norm = 1.0f};
}

/* Fails unless x is finite and `in_range`; `expected` says the range. */
static bd_status check_field(const char *field, float x, bool in_range,
                             const char *expected)
{
    if (!isfinite(x) || !in_range)
        return bd_fail(BD_E_ARG, "adamw: %s = %g, expected %s", field, x,
                       expected);
    return BD_OK;
}

static bd_status check_config(bd_adamw_config c)
{
    BD_TRY(check_field("lr", c.lr, c.lr >= 0.0f, "a finite lr >= 0"));
    BD_TRY(check_field("beta1", c.beta1, c.beta1 >= 0.0f && c.beta1 < 1.0f,
                       "a value in [0, 1)"));
    BD_TRY(check_field("beta2", c.beta2, c.beta2 >= 0.0f && c.beta2 < 1.0f,
                       "a value in [0, 1)"));
    BD_TRY(check_field("eps", c.eps, c.eps > 0.0f, "a finite eps > 0"));
    BD_TRY(check_field("weight_decay", c.weight_decay, c.weight_decay >= 0.0f,
                       "a finite weight_decay >= 0"));
    BD_TRY(check_field("clip_norm", c.clip_norm, true,
                       "a finite norm (<= 0 turns clipping off)"));
    return BD_OK;
}

void bd_adamw_free(bd_adamw *opt)
{
    if (!opt)
        return;
    for (int i = 0; i < opt->n; i++) {
        if (opt->m)
            bd_tensor_free(opt->m[i]);
        if (opt->v)
            bd_tensor_free(opt->v[i]);
    }
    free(opt->m);
    free(opt->v);
    free(opt);
}

bd_status bd_adamw_new(bd_params *p, bd_adamw_config cfg, bd_adamw **out)
{
    if (!p)
        return bd_fail(BD_E_ARG, "adamw: params is NULL");
    BD_TRY(check_config(cfg));
    bd_adamw *opt = calloc(1, sizeof *opt);
    if (!opt)
        return bd_fail(BD_E_NOMEM, "adamw: out of memory");
    opt->params = p;
    opt->cfg = cfg;
    opt->n = bd_params_count(p);
    /* One spare slot: calloc(0) may return NULL for an empty set. */
    opt->m = calloc((size_t)opt->n + 1, sizeof *opt->m);
    opt->v = calloc((size_t)opt->n + 1, sizeof *opt->v);
    bool ok = opt->m && opt->v;
    for (int i = 0; ok && i < opt->n; i++) {
        const bd_tensor *t = bd_params_at(p, i);
        opt->m[i] = bd_tensor_new(t->ndim, t->shape, false);
        opt->v[i] = bd_tensor_new(t->ndim, t->shape, false);
        ok = opt->m[i] && opt->v[i];
    }
    if (!ok) {
        bd_adamw_free(opt);
        return bd_fail(BD_E_NOMEM, "adamw: out of memory for the moments of %lld"
                       " parameters", (long long)bd_params_numel(p));
    }
    *out = opt;
    return BD_OK;
}

/* One parameter: p = p (1 - lr wd); m, v updated with the gradient g * gscale;
 * p -= step m / (sqrt(v) / sqrt(bc2) + eps),  step = lr / bc1. */
static void adamw_update(const bd_adamw_config *c, bd_tensor *p, float *m,
                         float *v, float gscale, float decay, float step,
                         float inv_sqrt_bc2)
{
    const float b1 = c->beta1, b2 = c->beta2, eps = c->eps;
    for (int64_t i = 0; i < p->numel; i++) {
        float g = p->grad[i] * gscale;
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        p->data[i] = p->data[i] * decay
                   - step * m[i] / (sqrtf(v[i]) * inv_sqrt_bc2 + eps);
    }
}

bd_status bd_adamw_step(bd_adamw *opt, float lr, double *grad_norm)
{
    if (!isfinite(lr) || lr < 0.0f)
        return bd_fail(BD_E_ARG, "adamw: step lr = %g, expected a finite lr >= 0",
                       lr);
    if (bd_params_count(opt->params) != opt->n)
        return bd_fail(BD_E_STATE, "adamw: the set has %d parameters but the"
                       " optimizer was made for %d; make it after adding them all",
                       bd_params_count(opt->params), opt->n);
    double norm = bd_params_grad_norm(opt->params);
    if (grad_norm)
        *grad_norm = norm;
    if (!isfinite(norm))
        return bd_fail(BD_E_NUMERIC, "adamw: gradient norm is %g; step refused,"
                       " no parameter changed", norm);
    const bd_adamw_config *c = &opt->cfg;
    double gscale = 1.0;
    if (c->clip_norm > 0.0f && norm > c->clip_norm)
        gscale = c->clip_norm / (norm + 1e-6);
    opt->steps++;
    double bc1 = 1.0 - pow(c->beta1, (double)opt->steps);
    double bc2 = 1.0 - pow(c->beta2, (double)opt->steps);
    for (int i = 0; i < opt->n; i++)
        adamw_update(c, bd_params_at(opt->params, i), opt->m[i]->data,
                     opt->v[i]->data, (float)gscale,
                     (float)(1.0 - (double)lr * c->weight_decay),
                     (float)(lr / bc1), (float)(1.0 / sqrt(bc2)));
    return BD_OK;
}

bd_tensor *bd_adamw_m(const bd_adamw *opt, int i)
{
    return i >= 0 && i < opt->n ? opt->m[i] : NULL;
}

bd_tensor *bd_adamw_v(const bd_adamw *opt, int i)
{
    return i >= 0 && i < opt->n ? opt->v[i] : NULL;
}

int64_t bd_adamw_steps(const bd_adamw *opt) { return opt->steps; }

void bd_adamw_set_steps(bd_adamw *opt, int64_t steps) { opt->steps = steps; }
