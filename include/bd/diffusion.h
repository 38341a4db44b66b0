/* Gaussian diffusion (Ho et al. 2020; DDIM: Song et al. 2021): noise
 * schedules, forward noising, training losses for the three prediction
 * types, and the DDPM ancestral and DDIM samplers.
 *
 * Timesteps are indices t = 0 .. T-1; step t has noise level beta[t] and
 * x_t = sqrt(abar[t]) x0 + sqrt(1 - abar[t]) eps. The denoiser receives t
 * as a float. */
#ifndef BD_DIFFUSION_H
#define BD_DIFFUSION_H

#include "bd/config.h"
#include "bd/model.h"

typedef enum bd_schedule_kind {
    BD_SCHEDULE_LINEAR, /* beta linear from beta_start to beta_end */
    BD_SCHEDULE_COSINE, /* abar(t) = f(t) / f(0), f(t) = cos^2((t/T + s) / (1 + s) pi/2),
                           s = 0.008, beta clipped to 0.999 (Nichol & Dhariwal) */
} bd_schedule_kind;

/* What a training run and a sampler must agree on. */
typedef struct bd_diffusion_spec {
    bd_schedule_kind schedule;   /* config "schedule": linear | cosine */
    int64_t          timesteps;  /* T (1000) */
    double           beta_start; /* linear only (1e-4) */
    double           beta_end;   /* linear only (0.02) */
    bd_prediction    prediction; /* config "prediction": eps | x0 | v */
} bd_diffusion_spec;

bd_diffusion_spec bd_diffusion_defaults(void);

/* The names the config keys and checkpoints spell, indexed by the enums
 * and NULL-terminated (bd_name_find, bd_names_join in bd/config.h). */
extern const char *const bd_schedule_names[];   /* linear, cosine */
extern const char *const bd_prediction_names[]; /* eps, x0, v */
extern const char *const bd_sampler_names[];    /* ddpm, ddim */
extern const char *const bd_ddim_eps_names[];   /* model, clipped_x0 */
/* The name of a value; "(unknown)" for a value outside the enum. */
const char *bd_schedule_name(bd_schedule_kind k);
const char *bd_prediction_name(bd_prediction p);

/* Read the keys schedule, timesteps, beta_start, beta_end, prediction over
 * the defaults, with range checks. Leaves other keys for the caller. */
bd_status bd_diffusion_read(bd_config *cfg, bd_diffusion_spec *spec);

/* ---- schedules ------------------------------------------------------------ */

typedef struct bd_schedule {
    bd_diffusion_spec spec;
    int64_t  T;
    double  *betas;          /* (T) */
    double  *alphas;         /* (T): 1 - beta */
    double  *alphas_cumprod; /* (T): abar[t] = prod_{s <= t} alpha[s], decreasing */
} bd_schedule;

/* Fails naming the setting when T < 1 or a beta is outside (0, 1). */
bd_status bd_schedule_new(const bd_diffusion_spec *spec, bd_schedule **out);
void      bd_schedule_free(bd_schedule *s);

/* ---- forward process and losses -------------------------------------------- */

/* x_t = sqrt(abar[t_n]) x0 + sqrt(1 - abar[t_n]) eps per sample n.
 * x0, eps, x_t: (N, ...) alike, t: N timesteps. x_t may alias neither. */
bd_status bd_q_sample(const bd_schedule *s, const bd_tensor *x0,
                      const int64_t *t, const bd_tensor *eps, bd_tensor *x_t);

/* What the denoiser regresses onto: eps, x0, or
 * v = sqrt(abar) eps - sqrt(1 - abar) x0.   -> target: like x0 */
bd_status bd_diffusion_target(const bd_schedule *s, bd_prediction pred,
                              const bd_tensor *x0, const int64_t *t,
                              const bd_tensor *eps, bd_tensor *target);

/* One training loss on the tape: noise x0 to x_t with eps at t, run the
 * denoiser, loss = mean((out - target)^2). Gradients flow into the model's
 * parameters on backward. Taps may be NULL.
 * x0, eps: (N, C, H, W), cond: (N, 2), t: N timesteps -> loss: (1) */
bd_status bd_diffusion_loss(bd_tape *tp, bd_model *m, const bd_schedule *s,
                            bd_tensor *x0, bd_tensor *cond, const int64_t *t,
                            bd_tensor *eps, bd_taps *taps, bd_tensor **loss);

/* From a denoiser output at t, the estimates of x0 and eps (either may be
 * NULL), in double per element. With clip, x0 is clipped to [-1, 1] and eps
 * recomputed from the clipped x0.   x_t, out: (N, ...) -> like x_t */
void bd_diffusion_estimates(const bd_schedule *s, const float *x_t,
                            const float *out, int64_t t, int64_t n, bool clip,
                            float *x0, float *eps);

/* ---- sampling --------------------------------------------------------------- */

typedef enum bd_sampler {
    BD_SAMPLER_DDPM, /* ancestral: posterior mean + posterior variance */
    BD_SAMPLER_DDIM, /* eta = 0 deterministic, eta = 1 ancestral-like */
} bd_sampler;

/* The eps a DDIM step moves along when x0 estimates are clipped. */
typedef enum bd_ddim_eps {
    BD_DDIM_EPS_MODEL,      /* "model": the model's own estimate, as diffusers'
                               DDIMScheduler and the DDIM paper do (default) */
    BD_DDIM_EPS_CLIPPED_X0, /* "clipped_x0": re-derived from the clipped x0,
                               as improved-diffusion does */
} bd_ddim_eps;

typedef struct bd_sample_opts {
    bd_diffusion_spec diffusion; /* must match training */
    bd_sampler sampler;          /* config "sampler": ddpm | ddim */
    int64_t    steps;     /* timesteps visited, respaced evenly over 0..T-1;
                             0: T for ddpm, 50 for ddim (at most T) */
    double     eta;       /* ddim noise, in [0, 1] (0) */
    uint64_t   seed;      /* (0) */
    int64_t    batch;     /* images per forward pass (64) */
    bool       clip;      /* clip x0 estimates to [-1, 1] (true) */
    bd_ddim_eps ddim_eps; /* config "ddim_eps": model | clipped_x0 (model);
                             ddpm's posterior mean always uses clipped_x0 */
    int64_t    tap_t;     /* taps come from the visited step nearest this t (0) */
} bd_sample_opts;

bd_sample_opts bd_sample_defaults(void);

/* Read sampler, steps, eta, seed, batch, clip, ddim_eps, tap_t and the
 * diffusion keys over the defaults; then fail naming any key not read
 * (owner "sample"). */
bd_status bd_sample_read(bd_config *cfg, bd_sample_opts *opts);

/* The visited timesteps, increasing: round(k (T-1) / (K-1)), k < K
 * (K = 1: T-1).   -> ts: (K) */
void bd_sample_timesteps(int64_t T, int64_t K, int64_t *ts);

/* Generated images and the requested taps, all heap tensors. */
typedef struct bd_samples {
    bd_tensor *images;               /* (N, C, H, W) */
    int        n_taps;
    char       tap_names[BD_MAX_TAPS][64];
    bd_tensor *taps[BD_MAX_TAPS];    /* (N, ...) as the denoiser made it */
    int64_t    tap_t;                /* the timestep the taps come from */
} bd_samples;

void bd_samples_free(bd_samples *s); /* frees the tensors, not s */

/* Generate one image per label. Image n draws all its noise from the
 * Philox stream (seed, n), so results do not depend on `batch`. Runs with
 * grad off and resets the tape between steps (no allocation per step once
 * warm). taps may be NULL; otherwise taps->names[0..n) are requested and
 * each must be offered by the denoiser at the tap step, else the call
 * fails naming it.   labels: (N, 2) -> out->images: (N, C, H, W) */
bd_status bd_sample(bd_model *m, const bd_tensor *labels,
                    const bd_sample_opts *opts, const bd_taps *taps,
                    bd_samples *out);

/* Copy the taps a denoiser offered for the `count` images starting at row
 * `first` into rows [first, first + count) of out->taps (heap tensors of
 * out->images->shape[0] rows, made at the first batch). Fails, the message
 * starting with `owner`, naming the denoiser `arch` and the timestep t when
 * a tap is missing or changes shape. */
bd_status bd_samples_keep_taps(bd_samples *out, int64_t first, int64_t count,
                               const bd_taps *got, const char *owner,
                               const char *arch, int64_t t);

/* ---- reading representations ------------------------------------------------ */

typedef struct bd_represent_opts {
    bd_diffusion_spec diffusion; /* must match training */
    int64_t  t;     /* the timestep the input is noised to and the denoiser
                       is told; -1: T / 2, the middle of the schedule */
    uint64_t seed;  /* the noise: Philox stream (seed, 0) when shared (0) */
    bool     shared_noise; /* one noise image for every label (true), or
                              image n's own stream (seed, n) */
    int64_t  batch; /* images per forward pass (64) */
} bd_represent_opts;

bd_represent_opts bd_represent_defaults(void);

/* Read t, seed, shared_noise, batch and the diffusion keys over the
 * defaults; then fail naming any key not read (owner "represent"). */
bd_status bd_represent_read(bd_config *cfg, bd_represent_opts *opts);

/* The denoiser's taps on one fixed noisy input per label, in one forward
 * pass at timestep t (no sampling, no tape):
 *   x0 given:  x_t[n] = sqrt(abar[t]) x0[n] + sqrt(1 - abar[t]) eps[n]
 *   x0 NULL:   x_t[n] = eps[n]   (the same input for every label when the
 *                                 noise is shared: only the label varies)
 * with eps[n] one shared draw (or image n's own, see shared_noise). The
 * inputs come back as out->images and t as out->tap_t. taps must name at
 * least one tap the denoiser offers.
 *   labels: (N, 2), x0: (N, C, H, W) or NULL -> out->taps: (N, ...) */
bd_status bd_represent(bd_model *m, const bd_tensor *labels,
                       const bd_tensor *x0, const bd_represent_opts *opts,
                       const bd_taps *taps, bd_samples *out);

#endif
