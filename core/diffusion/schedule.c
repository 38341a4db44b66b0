/* Noise schedules: linear (Ho et al.) and cosine (Nichol & Dhariwal). */
#include "bd/diffusion.h"

#include <math.h>
#include <stdlib.h>

#define COSINE_OFFSET 0.008
#define COSINE_MAX_BETA 0.999
#define MAX_TIMESTEPS 100000

const char *const bd_schedule_names[] = {"linear", "cosine", NULL};
const char *const bd_prediction_names[] = {"eps", "x0", "v", NULL};
const char *const bd_sampler_names[] = {"ddpm", "ddim", NULL};
const char *const bd_ddim_eps_names[] = {"model", "clipped_x0", NULL};

_Static_assert(BD_SCHEDULE_COSINE == 1 && BD_PREDICT_V == 2
               && BD_SAMPLER_DDIM == 1, "the name tables follow the enums");

/* names[i] if the NULL-terminated names have an i-th entry. */
static const char *name_at(const char *const *names, int i)
{
    for (int k = 0; i >= 0 && names[k]; k++)
        if (k == i)
            return names[k];
    return "(unknown)";
}

const char *bd_schedule_name(bd_schedule_kind k)
{
    return name_at(bd_schedule_names, (int)k);
}

const char *bd_prediction_name(bd_prediction p)
{
    return name_at(bd_prediction_names, (int)p);
}

bd_diffusion_spec bd_diffusion_defaults(void)
{
    return (bd_diffusion_spec){.schedule = BD_SCHEDULE_LINEAR, .timesteps = 1000,
                               .beta_start = 1e-4, .beta_end = 0.02,
                               .prediction = BD_PREDICT_EPS};
}

bd_status bd_diffusion_read(bd_config *cfg, bd_diffusion_spec *spec)
{
    bd_diffusion_spec s = bd_diffusion_defaults();
    int schedule, prediction;
    BD_TRY(bd_config_choice(cfg, "schedule", "linear", bd_schedule_names, &schedule));
    BD_TRY(bd_config_int(cfg, "timesteps", s.timesteps, 1, MAX_TIMESTEPS,
                         &s.timesteps));
    if (schedule == BD_SCHEDULE_LINEAR) {
        BD_TRY(bd_config_num(cfg, "beta_start", s.beta_start, 1e-8, 0.999,
                             &s.beta_start));
        BD_TRY(bd_config_num(cfg, "beta_end", s.beta_end, 1e-8, 0.999,
                             &s.beta_end));
    }
    BD_TRY(bd_config_choice(cfg, "prediction", "eps", bd_prediction_names, &prediction));
    s.schedule = (bd_schedule_kind)schedule;
    s.prediction = (bd_prediction)prediction;
    *spec = s;
    return BD_OK;
}

void bd_schedule_free(bd_schedule *s)
{
    if (!s)
        return;
    free(s->betas);
    free(s->alphas);
    free(s->alphas_cumprod);
    free(s);
}

/* f(u) = cos^2((u + s) / (1 + s) pi / 2), u = t / T in [0, 1] */
static double cosine_f(double u)
{
    double c = cos((u + COSINE_OFFSET) / (1.0 + COSINE_OFFSET) * M_PI_2);
    return c * c;
}

/* betas: (T) */
static void fill_betas(const bd_diffusion_spec *spec, int64_t T, double *betas)
{
    for (int64_t t = 0; t < T; t++) {
        if (spec->schedule == BD_SCHEDULE_LINEAR) {
            double u = T > 1 ? (double)t / (double)(T - 1) : 0.0;
            betas[t] = spec->beta_start + u * (spec->beta_end - spec->beta_start);
        } else {
            double b = 1.0 - cosine_f((double)(t + 1) / (double)T)
                           / cosine_f((double)t / (double)T);
            betas[t] = fmin(b, COSINE_MAX_BETA);
        }
    }
}

static bd_status check_spec(const bd_diffusion_spec *spec)
{
    if (spec->timesteps < 1 || spec->timesteps > MAX_TIMESTEPS)
        return bd_fail(BD_E_ARG, "schedule: timesteps = %lld, expected 1 to %d",
                       (long long)spec->timesteps, MAX_TIMESTEPS);
    if ((unsigned)spec->schedule > BD_SCHEDULE_COSINE
        || (unsigned)spec->prediction > BD_PREDICT_V)
        return bd_fail(BD_E_ARG, "schedule: schedule %d or prediction %d is not"
                       " a known value", (int)spec->schedule,
                       (int)spec->prediction);
    if (spec->schedule == BD_SCHEDULE_LINEAR
        && !(spec->beta_start > 0 && spec->beta_start < 1 && spec->beta_end > 0
             && spec->beta_end < 1))
        return bd_fail(BD_E_ARG, "schedule: beta_start = %g, beta_end = %g,"
                       " expected both in (0, 1)", spec->beta_start,
                       spec->beta_end);
    return BD_OK;
}

bd_status bd_schedule_new(const bd_diffusion_spec *spec, bd_schedule **out)
{
    BD_TRY(check_spec(spec));
    const int64_t T = spec->timesteps;
    bd_schedule *s = calloc(1, sizeof *s);
    if (s) {
        s->betas = malloc((size_t)T * sizeof *s->betas);
        s->alphas = malloc((size_t)T * sizeof *s->alphas);
        s->alphas_cumprod = malloc((size_t)T * sizeof *s->alphas_cumprod);
    }
    if (!s || !s->betas || !s->alphas || !s->alphas_cumprod) {
        bd_schedule_free(s);
        return bd_fail(BD_E_NOMEM, "schedule: out of memory for %lld steps",
                       (long long)T);
    }
    s->spec = *spec;
    s->T = T;
    fill_betas(spec, T, s->betas);
    double abar = 1.0;
    for (int64_t t = 0; t < T; t++) {
        s->alphas[t] = 1.0 - s->betas[t];
        abar *= s->alphas[t];
        s->alphas_cumprod[t] = abar;
    }
    *out = s;
    return BD_OK;
}
