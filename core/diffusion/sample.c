/* Samplers: DDPM ancestral and DDIM over respaced timesteps, in batches,
 * without the tape's gradients; taps copied out at one chosen step. */
#include "bd/diffusion.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bd/data.h"
#include "bd/rng.h"

#define DDIM_DEFAULT_STEPS 50
#define MAX_BATCH 65536

bd_sample_opts bd_sample_defaults(void)
{
    return (bd_sample_opts){.diffusion = bd_diffusion_defaults(),
                            .sampler = BD_SAMPLER_DDPM, .steps = 0, .eta = 0.0,
                            .seed = 0, .batch = 64, .clip = true,
                            .ddim_eps = BD_DDIM_EPS_MODEL, .tap_t = 0};
}

bd_status bd_sample_read(bd_config *cfg, bd_sample_opts *opts)
{
    bd_sample_opts o = bd_sample_defaults();
    int sampler, ddim_eps;
    int64_t seed, clip;
    BD_TRY(bd_diffusion_read(cfg, &o.diffusion));
    BD_TRY(bd_config_choice(cfg, "sampler", "ddpm", bd_sampler_names, &sampler));
    o.sampler = (bd_sampler)sampler;
    BD_TRY(bd_config_int(cfg, "steps", 0, 0, o.diffusion.timesteps, &o.steps));
    BD_TRY(bd_config_num(cfg, "eta", o.eta, 0, 1, &o.eta));
    BD_TRY(bd_config_int(cfg, "seed", 0, 0, INT64_C(1) << 53, &seed));
    BD_TRY(bd_config_int(cfg, "batch", o.batch, 1, MAX_BATCH, &o.batch));
    BD_TRY(bd_config_int(cfg, "clip", 1, 0, 1, &clip));
    BD_TRY(bd_config_choice(cfg, "ddim_eps", "model", bd_ddim_eps_names,
                             &ddim_eps));
    BD_TRY(bd_config_int(cfg, "tap_t", 0, 0, o.diffusion.timesteps - 1,
                         &o.tap_t));
    BD_TRY(bd_config_check_unused(cfg, "sample"));
    o.seed = (uint64_t)seed;
    o.clip = clip != 0;
    o.ddim_eps = (bd_ddim_eps)ddim_eps;
    *opts = o;
    return BD_OK;
}

void bd_sample_timesteps(int64_t T, int64_t K, int64_t *ts)
{
    if (K == 1) {
        ts[0] = T - 1;
        return;
    }
    for (int64_t k = 0; k < K; k++)
        ts[k] = (int64_t)llround((double)k * (double)(T - 1) / (double)(K - 1));
}

void bd_samples_free(bd_samples *s)
{
    if (!s)
        return;
    bd_tensor_free(s->images);
    for (int i = 0; i < s->n_taps; i++)
        bd_tensor_free(s->taps[i]);
    memset(s, 0, sizeof *s);
}

/* ---- one update ------------------------------------------------------------ */

/* x_prev = a x0_hat + b eps_hat + sigma z, from abar to abar_prev
 * (abar_prev = 1 after the last step). */
typedef struct update { double a, b, sigma; } update;

static update step_coefficients(const bd_sample_opts *o, double ab, double ab_prev)
{
    const double beta = 1.0 - ab / ab_prev; /* of the respaced step */
    update u;
    if (o->sampler == BD_SAMPLER_DDPM) {
        /* posterior q(x_prev | x_t, x0): mean c0 x0 + ct x_t, x_t = sa x0 + sb eps */
        double c0 = sqrt(ab_prev) * beta / (1.0 - ab);
        double ct = sqrt(1.0 - beta) * (1.0 - ab_prev) / (1.0 - ab);
        u.a = c0 + ct * sqrt(ab);
        u.b = ct * sqrt(1.0 - ab);
        u.sigma = sqrt(beta * (1.0 - ab_prev) / (1.0 - ab));
    } else { /* Song et al. eq. 12 */
        u.sigma = o->eta * sqrt((1.0 - ab_prev) / (1.0 - ab) * beta);
        u.a = sqrt(ab_prev);
        u.b = sqrt(fmax(0.0, 1.0 - ab_prev - u.sigma * u.sigma));
    }
    return u;
}

/* ---- a sampling run --------------------------------------------------------- */

typedef struct run {
    bd_model             *m;
    const bd_schedule    *s;
    const bd_sample_opts *o;
    const int64_t        *ts;     /* visited timesteps, increasing */
    int64_t               K, tap_k;
    const bd_taps        *want;   /* requested taps, or NULL */
    bd_tape              *tp;
    bd_samples           *out;
} run;

/* Batch tensors and buffers, reused across its steps. */
typedef struct batch {
    int64_t    first, count, inner;
    bd_tensor *x, *t, *cond;
    float     *x0, *eps;
    bd_rng    *rng;  /* one stream per image */
} batch;

static void batch_free(batch *b)
{
    bd_tensor_free(b->x);
    bd_tensor_free(b->t);
    bd_tensor_free(b->cond);
    free(b->x0);
    free(b->eps);
    free(b->rng);
}

static bd_status batch_init(const run *r, const bd_tensor *labels, batch *b)
{
    const bd_model *m = r->m;
    b->x = bd_tensor_new4(b->count, m->channels, m->size, m->size, false);
    b->t = bd_tensor_new4(b->count, 0, 0, 0, false);
    b->cond = bd_tensor_new4(b->count, 2, 0, 0, false);
    b->inner = m->channels * m->size * m->size;
    size_t n = (size_t)(b->count * b->inner);
    b->x0 = malloc(n * sizeof *b->x0);
    b->eps = malloc(n * sizeof *b->eps);
    b->rng = malloc((size_t)b->count * sizeof *b->rng);
    if (!b->x || !b->t || !b->cond || !b->x0 || !b->eps || !b->rng)
        return bd_fail(BD_E_NOMEM, "sample: out of memory for a batch of %lld",
                       (long long)b->count);
    memcpy(b->cond->data, labels->data + 2 * b->first,
           (size_t)b->count * 2 * sizeof(float));
    for (int64_t i = 0; i < b->count; i++) {
        b->rng[i] = bd_rng_make(r->o->seed, (uint64_t)(b->first + i));
        bd_rng_fill_normal(&b->rng[i], b->x->data + i * b->inner, b->inner,
                           0.0f, 1.0f);
    }
    return BD_OK;
}

bd_status bd_samples_keep_taps(bd_samples *out, int64_t first, int64_t count,
                               const bd_taps *got, const char *owner,
                               const char *arch, int64_t t)
{
    for (int i = 0; i < got->n; i++) {
        const bd_tensor *v = got->values[i];
        if (!v || v->shape[0] != count)
            return bd_fail(BD_E_ARG, "%s: denoiser '%s' offered no tap"
                           " '%s' with a batch dim of %lld at t = %lld",
                           owner, arch, got->names[i], (long long)count,
                           (long long)t);
        int64_t shape[BD_MAX_DIMS];
        memcpy(shape, v->shape, sizeof shape);
        shape[0] = out->images->shape[0];
        if (!out->taps[i])
            out->taps[i] = bd_tensor_new(v->ndim, shape, false);
        if (!out->taps[i])
            return BD_E_NOMEM;
        int64_t inner = bd_tensor_inner(v, 1);
        if (out->taps[i]->ndim != v->ndim || bd_tensor_inner(out->taps[i], 1) != inner)
            return bd_fail(BD_E_PLUGIN, "%s: tap '%s' changed shape between"
                           " batches", owner, got->names[i]);
        memcpy(out->taps[i]->data + first * inner, v->data,
               (size_t)v->numel * sizeof(float));
    }
    return BD_OK;
}

/* The x0 and eps estimates of the update at t: for ddim by default the
 * model's own eps beside the clipped x0 (diffusers), else the eps of the
 * clipped x0. The latter keeps x_t = sqrt(ab) x0 + sqrt(1 - ab) eps, so the
 * step is exact for a model that is; but then a step moves x by only
 * (sqrt(ab_prev) - sqrt((1 - ab_prev) ab / (1 - ab))) of what the clip took
 * off x0, which vanishes as steps shrink. The model's eps moves x by
 * sqrt(ab_prev) of it, and lets an eps estimate that is too large grow from
 * step to step. */
static void estimate(const run *r, batch *b, const float *out, int64_t t)
{
    const bd_sample_opts *o = r->o;
    const int64_t n = b->x->numel;
    bd_diffusion_estimates(r->s, b->x->data, out, t, n, o->clip, b->x0, b->eps);
    if (o->sampler == BD_SAMPLER_DDIM && o->clip
        && o->ddim_eps == BD_DDIM_EPS_MODEL)
        bd_diffusion_estimates(r->s, b->x->data, out, t, n, false, NULL, b->eps);
}

static bd_status not_finite(const run *r, int64_t image, int64_t t)
{
    const bool own_eps = r->o->sampler == BD_SAMPLER_DDIM && r->o->clip
                         && r->o->ddim_eps == BD_DDIM_EPS_MODEL;
    return bd_fail(BD_E_NUMERIC, "sample: image %lld is not finite after the"
                   " step at t = %lld%s", (long long)image, (long long)t,
                   own_eps ? " (ddim on the model's own eps: an eps estimate"
                   " larger than its input grows from step to step; ddim_eps ="
                   " 'clipped_x0' or fewer steps avoid it)" : "");
}

/* One denoiser pass at ts[k] and the update of x to the previous step. */
static bd_status step(const run *r, batch *b, int64_t k)
{
    const int64_t t = r->ts[k];
    const double ab = r->s->alphas_cumprod[t];
    const double ab_prev = k > 0 ? r->s->alphas_cumprod[r->ts[k - 1]] : 1.0;
    bd_taps taps = {0}, *tp_taps = NULL;
    if (r->want && k == r->tap_k) {
        taps.n = r->want->n;
        memcpy(taps.names, r->want->names, sizeof taps.names);
        tp_taps = &taps;
    }
    bd_tape_reset(r->tp);
    bd_tensor_fill(b->t, (float)t);
    bd_tensor *out = NULL;
    BD_TRY(r->m->forward(r->m->state, r->tp, b->x, b->t, b->cond, tp_taps, &out));
    if (!out || !bd_shape_equal(out, b->x)) {
        char sx[64], so[64];
        return bd_fail(BD_E_PLUGIN, "sample: denoiser '%s' returned shape %s for"
                       " input %s", r->m->arch,
                       out ? bd_shape_str(out, so, sizeof so) : "NULL",
                       bd_shape_str(b->x, sx, sizeof sx));
    }
    if (tp_taps)
        BD_TRY(bd_samples_keep_taps(r->out, b->first, b->count, tp_taps,
                                    "sample", r->m->arch, t));
    estimate(r, b, out->data, t);
    const update u = step_coefficients(r->o, ab, ab_prev);
    for (int64_t i = 0; i < b->count; i++) {
        float *x = b->x->data + i * b->inner;
        const float *x0 = b->x0 + i * b->inner, *eps = b->eps + i * b->inner;
        bool finite = true;
        for (int64_t j = 0; j < b->inner; j++) {
            double z = u.sigma > 0 ? u.sigma * bd_rng_normal(&b->rng[i]) : 0.0;
            x[j] = (float)(u.a * x0[j] + u.b * eps[j] + z);
            finite = finite && isfinite(x[j]);
        }
        if (!finite)
            return not_finite(r, b->first + i, t);
    }
    return BD_OK;
}

static bd_status sample_batch(const run *r, const bd_tensor *labels,
                              int64_t first, int64_t count)
{
    batch b = {.first = first, .count = count};
    bd_status st = batch_init(r, labels, &b);
    for (int64_t k = r->K - 1; st == BD_OK && k >= 0; k--)
        st = step(r, &b, k);
    if (st == BD_OK)
        memcpy(r->out->images->data + first * b.inner, b.x->data,
               (size_t)b.x->numel * sizeof(float));
    batch_free(&b);
    return st;
}

/* ---- checks and the entry point ------------------------------------------- */

static bd_status check_call(const bd_model *m, const bd_tensor *labels,
                            const bd_sample_opts *o, const bd_taps *taps)
{
    char s[64];
    if (!m || !m->forward)
        return bd_fail(BD_E_ARG, "sample: model is NULL or has no forward");
    if (!labels || labels->ndim != 2 || labels->shape[1] != 2)
        return bd_fail(BD_E_ARG, "sample: labels have shape %s, expected (N, 2)",
                       labels ? bd_shape_str(labels, s, sizeof s) : "NULL");
    BD_TRY(bd_labels_check_finite(labels, "sample"));
    const int64_t T = o->diffusion.timesteps;
    if (o->steps < 0 || o->steps > T)
        return bd_fail(BD_E_ARG, "sample: steps = %lld, expected 0 (default) to"
                       " timesteps (%lld)", (long long)o->steps, (long long)T);
    if (!(o->eta >= 0 && o->eta <= 1))
        return bd_fail(BD_E_ARG, "sample: eta = %g, expected a number in [0, 1]",
                       o->eta);
    if (o->batch < 1 || o->batch > MAX_BATCH)
        return bd_fail(BD_E_ARG, "sample: batch = %lld, expected 1 to %d",
                       (long long)o->batch, MAX_BATCH);
    if (o->tap_t < 0 || o->tap_t >= T)
        return bd_fail(BD_E_ARG, "sample: tap_t = %lld, expected 0 to %lld",
                       (long long)o->tap_t, (long long)(T - 1));
    if ((unsigned)o->sampler > BD_SAMPLER_DDIM)
        return bd_fail(BD_E_ARG, "sample: sampler %d is not a known value",
                       (int)o->sampler);
    if ((unsigned)o->ddim_eps > BD_DDIM_EPS_CLIPPED_X0)
        return bd_fail(BD_E_ARG, "sample: ddim_eps %d is not a known value",
                       (int)o->ddim_eps);
    if (taps && (taps->n < 0 || taps->n > BD_MAX_TAPS))
        return bd_fail(BD_E_ARG, "sample: %d taps requested, expected 0 to %d",
                       taps->n, BD_MAX_TAPS);
    for (int i = 0; taps && i < taps->n; i++)
        if (!taps->names[i] || strlen(taps->names[i]) >= 64)
            return bd_fail(BD_E_ARG, "sample: tap %d has no name or one of 64"
                           " characters or more", i);
    return BD_OK;
}

/* The visited step whose timestep is nearest tap_t (the lower on a tie). */
static int64_t nearest_step(const int64_t *ts, int64_t K, int64_t tap_t)
{
    int64_t best = 0;
    for (int64_t k = 1; k < K; k++)
        if (llabs(ts[k] - tap_t) < llabs(ts[best] - tap_t))
            best = k;
    return best;
}

static bd_status sample_all(run *r, const bd_tensor *labels)
{
    const int64_t n = labels->shape[0];
    const bd_model *m = r->m;
    r->out->images = bd_tensor_new4(n, m->channels, m->size, m->size, false);
    if (!r->out->images)
        return BD_E_NOMEM;
    for (int i = 0; r->want && i < r->want->n; i++)
        snprintf(r->out->tap_names[i], sizeof r->out->tap_names[i], "%s",
                 r->want->names[i]);
    r->out->n_taps = r->want ? r->want->n : 0;
    r->out->tap_t = r->ts[r->tap_k];
    r->tp = bd_tape_new();
    if (!r->tp)
        return BD_E_NOMEM;
    bd_tape_set_grad(r->tp, false);
    bd_status st = BD_OK;
    for (int64_t first = 0; st == BD_OK && first < n; first += r->o->batch) {
        int64_t count = n - first < r->o->batch ? n - first : r->o->batch;
        st = sample_batch(r, labels, first, count);
    }
    bd_tape_free(r->tp);
    return st;
}

bd_status bd_sample(bd_model *m, const bd_tensor *labels,
                    const bd_sample_opts *opts, const bd_taps *taps,
                    bd_samples *out)
{
    memset(out, 0, sizeof *out);
    bd_schedule *s = NULL;
    BD_TRY(bd_schedule_new(&opts->diffusion, &s));
    const int64_t T = s->T;
    const int64_t K = opts->steps ? opts->steps
                    : opts->sampler == BD_SAMPLER_DDPM ? T
                    : (T < DDIM_DEFAULT_STEPS ? T : DDIM_DEFAULT_STEPS);
    bd_status st = check_call(m, labels, opts, taps);
    int64_t *ts = st == BD_OK ? malloc((size_t)K * sizeof *ts) : NULL;
    if (!ts) {
        bd_schedule_free(s);
        return st != BD_OK ? st : bd_fail(BD_E_NOMEM, "sample: out of memory");
    }
    bd_sample_timesteps(T, K, ts);
    run r = {.m = m, .s = s, .o = opts, .ts = ts, .K = K,
             .tap_k = nearest_step(ts, K, opts->tap_t),
             .want = taps && taps->n > 0 ? taps : NULL, .out = out};
    st = sample_all(&r, labels);
    free(ts);
    bd_schedule_free(s);
    if (st != BD_OK)
        bd_samples_free(out);
    return st;
}
