/* Reading representations: the denoiser's taps on one fixed noisy input per
 * label at one stated timestep, in a single forward pass without the tape.
 *
 * Why not the taps of a sampling run (bd_sample's tap_t): there the input
 * at the tap step is the model's own partly generated image, which changes
 * with training and with the sampling noise, so the representation mixes
 * what the model knows of the label with what it has drawn so far. Here
 * the input is fixed: the label's clean image noised to t with one noise
 * draw shared by every label (or pure shared noise), so two labels'
 * representations differ only through the labels. */
#include "bd/diffusion.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bd/data.h"
#include "bd/rng.h"

#define MAX_BATCH 65536

bd_represent_opts bd_represent_defaults(void)
{
    return (bd_represent_opts){.diffusion = bd_diffusion_defaults(), .t = -1,
                               .seed = 0, .shared_noise = true, .batch = 64};
}

bd_status bd_represent_read(bd_config *cfg, bd_represent_opts *opts)
{
    bd_represent_opts o = bd_represent_defaults();
    int64_t seed, shared;
    BD_TRY(bd_diffusion_read(cfg, &o.diffusion));
    BD_TRY(bd_config_int(cfg, "t", -1, -1, o.diffusion.timesteps - 1, &o.t));
    BD_TRY(bd_config_int(cfg, "seed", 0, 0, INT64_C(1) << 53, &seed));
    BD_TRY(bd_config_int(cfg, "shared_noise", 1, 0, 1, &shared));
    BD_TRY(bd_config_int(cfg, "batch", o.batch, 1, MAX_BATCH, &o.batch));
    BD_TRY(bd_config_check_unused(cfg, "represent"));
    o.seed = (uint64_t)seed;
    o.shared_noise = shared != 0;
    *opts = o;
    return BD_OK;
}

static bd_status check_call(const bd_model *m, const bd_tensor *labels,
                            const bd_tensor *x0, const bd_represent_opts *o,
                            const bd_taps *taps)
{
    char s[64];
    if (!m || !m->forward)
        return bd_fail(BD_E_ARG, "represent: model is NULL or has no forward");
    if (!labels || labels->ndim != 2 || labels->shape[1] != 2)
        return bd_fail(BD_E_ARG, "represent: labels have shape %s, expected"
                       " (N, 2)", labels ? bd_shape_str(labels, s, sizeof s)
                                         : "NULL");
    BD_TRY(bd_labels_check_finite(labels, "represent"));
    const int64_t n = labels->shape[0];
    if (x0 && (x0->ndim != 4 || x0->shape[0] != n || x0->shape[1] != m->channels
               || x0->shape[2] != m->size || x0->shape[3] != m->size))
        return bd_fail(BD_E_ARG, "represent: clean images have shape %s,"
                       " expected (%lld, %lld, %lld, %lld): one per label at"
                       " the model's size", bd_shape_str(x0, s, sizeof s),
                       (long long)n, (long long)m->channels, (long long)m->size,
                       (long long)m->size);
    if (o->t < -1 || o->t >= o->diffusion.timesteps)
        return bd_fail(BD_E_ARG, "represent: t = %lld, expected -1 (T / 2) or"
                       " 0 to %lld", (long long)o->t,
                       (long long)(o->diffusion.timesteps - 1));
    if (o->batch < 1 || o->batch > MAX_BATCH)
        return bd_fail(BD_E_ARG, "represent: batch = %lld, expected 1 to %d",
                       (long long)o->batch, MAX_BATCH);
    if (!taps || taps->n < 1 || taps->n > BD_MAX_TAPS)
        return bd_fail(BD_E_ARG, "represent: %d taps requested, expected 1 to"
                       " %d", taps ? taps->n : 0, BD_MAX_TAPS);
    for (int i = 0; i < taps->n; i++)
        if (!taps->names[i] || strlen(taps->names[i]) >= 64)
            return bd_fail(BD_E_ARG, "represent: tap %d has no name or one of"
                           " 64 characters or more", i);
    return BD_OK;
}

/* The input of every label: x_t = sqrt(ab) x0 + sqrt(1 - ab) eps, or eps
 * without x0.   x0: (N, C, H, W) or NULL -> x: (N, C, H, W) */
static bd_status make_inputs(const bd_model *m, const bd_tensor *x0, double ab,
                             const bd_represent_opts *o, bd_tensor *x)
{
    const int64_t n = x->shape[0], inner = bd_tensor_inner(x, 1);
    float *eps = malloc((size_t)inner * sizeof *eps);
    if (!eps)
        return bd_fail(BD_E_NOMEM, "represent: out of memory for %lld"
                       " inputs of %s", (long long)n, m->arch);
    const double a = x0 ? sqrt(ab) : 0.0, b = x0 ? sqrt(1.0 - ab) : 1.0;
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || !o->shared_noise) {
            bd_rng r = bd_rng_make(o->seed, o->shared_noise ? 0 : (uint64_t)i);
            bd_rng_fill_normal(&r, eps, inner, 0.0f, 1.0f);
        }
        float *xi = x->data + i * inner;
        const float *ci = x0 ? x0->data + i * inner : NULL;
        for (int64_t j = 0; j < inner; j++)
            xi[j] = (float)((ci ? a * ci[j] : 0.0) + b * eps[j]);
    }
    free(eps);
    return BD_OK;
}

/* One forward pass over rows [first, first + count). */
static bd_status pass(bd_model *m, bd_tape *tp, const bd_tensor *labels,
                      const bd_taps *want, int64_t t, int64_t first,
                      int64_t count, bd_samples *out)
{
    const bd_tensor *all = out->images;
    const int64_t inner = bd_tensor_inner(all, 1);
    bd_tape_reset(tp);
    const int64_t xshape[4] = {count, all->shape[1], all->shape[2], all->shape[3]};
    const int64_t cshape[2] = {count, 2};
    bd_tensor *x = bd_tape_tensor(tp, 4, xshape);
    bd_tensor *tt = bd_tape_tensor(tp, 1, &count);
    bd_tensor *cond = bd_tape_tensor(tp, 2, cshape);
    if (!x || !tt || !cond)
        return bd_fail(BD_E_NOMEM, "represent: out of memory for a batch of"
                       " %lld", (long long)count);
    memcpy(x->data, all->data + first * inner, (size_t)(count * inner) * sizeof(float));
    memcpy(cond->data, labels->data + 2 * first, (size_t)count * 2 * sizeof(float));
    bd_tensor_fill(tt, (float)t);
    bd_taps got = {.n = want->n};
    memcpy(got.names, want->names, sizeof got.names);
    bd_tensor *y = NULL;
    BD_TRY(m->forward(m->state, tp, x, tt, cond, &got, &y));
    return bd_samples_keep_taps(out, first, count, &got, "represent", m->arch, t);
}

static bd_status represent_all(bd_model *m, const bd_tensor *labels,
                               const bd_tensor *x0, const bd_represent_opts *o,
                               const bd_taps *taps, bd_samples *out)
{
    bd_schedule *s = NULL;
    BD_TRY(bd_schedule_new(&o->diffusion, &s));
    const int64_t t = o->t >= 0 ? o->t : s->T / 2, n = labels->shape[0];
    const double ab = s->alphas_cumprod[t];
    bd_schedule_free(s);
    out->images = bd_tensor_new4(n, m->channels, m->size, m->size, false);
    if (!out->images)
        return BD_E_NOMEM;
    out->tap_t = t;
    out->n_taps = taps->n;
    for (int i = 0; i < taps->n; i++)
        snprintf(out->tap_names[i], sizeof out->tap_names[i], "%s", taps->names[i]);
    BD_TRY(make_inputs(m, x0, ab, o, out->images));
    bd_tape *tp = bd_tape_new();
    if (!tp)
        return BD_E_NOMEM;
    bd_tape_set_grad(tp, false);
    bd_status st = BD_OK;
    for (int64_t first = 0; st == BD_OK && first < n; first += o->batch)
        st = pass(m, tp, labels, taps, t, first,
                  n - first < o->batch ? n - first : o->batch, out);
    bd_tape_free(tp);
    return st;
}

bd_status bd_represent(bd_model *m, const bd_tensor *labels,
                       const bd_tensor *x0, const bd_represent_opts *opts,
                       const bd_taps *taps, bd_samples *out)
{
    memset(out, 0, sizeof *out);
    BD_TRY(check_call(m, labels, x0, opts, taps));
    bd_status st = represent_all(m, labels, x0, opts, taps, out);
    if (st != BD_OK)
        bd_samples_free(out);
    return st;
}
