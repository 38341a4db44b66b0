/* Samplers: an oracle denoiser brings both samplers back to its image,
 * the exact Gaussian denoiser gives the data variance, runs are
 * deterministic per seed and independent of the batch size, taps come
 * from the chosen step. */
#include "test_diffusion_model.h"

static bd_tensor *labels_of(int64_t n)
{
    bd_tensor *l = bd_tensor_new4(n, 2, 0, 0, false);
    for (int64_t i = 0; i < 2 * n; i++)
        l->data[i] = (float)(i % 7);
    return l;
}

static bd_sample_opts opts_of(bd_sampler sampler, int64_t steps, double eta,
                              bd_schedule_kind kind, int64_t T, bd_prediction pred)
{
    bd_sample_opts o = bd_sample_defaults();
    o.sampler = sampler;
    o.steps = steps;
    o.eta = eta;
    o.diffusion.schedule = kind;
    o.diffusion.timesteps = T;
    o.diffusion.prediction = pred;
    return o;
}

/* Every sample equals the oracle's image. */
static void check_oracle(bd_sample_opts o, const char *what)
{
    bd_schedule *s = NULL;
    CHECK_OK(bd_schedule_new(&o.diffusion, &s));
    bd_tensor *x0 = bd_tensor_new4(1, 1, 8, 8, false);
    for (int64_t i = 0; i < 64; i++) /* a bump at (3, 5) */
        x0->data[i] = (float)(2.0 * exp(-(pow(i % 8 + 0.5 - 3, 2)
                                          + pow(i / 8 + 0.5 - 5, 2)) / 2.0) - 1.0);
    oracle orc = {.s = s, .x0 = x0};
    bd_model m = closed_form(oracle_forward, &orc, 8);
    bd_tensor *labels = labels_of(5);
    o.batch = 2;
    bd_samples out;
    CHECK_OK(bd_sample(&m, labels, &o, NULL, &out));
    double err = 0.0;
    for (int64_t k = 0; out.images && k < out.images->numel; k++)
        err = fmax(err, fabs(out.images->data[k] - x0->data[k % 64]));
    printf("   %-44s max |sample - x0| = %.2e\n", what, err);
    CHECK(err < 1e-3, "%s: samples %.2e from the oracle's image", what, err);
    bd_samples_free(&out);
    bd_tensor_free(labels);
    bd_tensor_free(x0);
    bd_schedule_free(s);
}

static void test_oracle(void)
{
    const char *names[3] = {"eps", "x0", "v"};
    for (int p = 0; p < 3; p++) {
        char what[64];
        snprintf(what, sizeof what, "ddpm 1000, linear, %s", names[p]);
        check_oracle(opts_of(BD_SAMPLER_DDPM, 0, 0, BD_SCHEDULE_LINEAR, 1000, p), what);
        snprintf(what, sizeof what, "ddim 50, eta 0, linear, %s", names[p]);
        check_oracle(opts_of(BD_SAMPLER_DDIM, 50, 0, BD_SCHEDULE_LINEAR, 1000, p), what);
        snprintf(what, sizeof what, "ddim 10, eta 1, cosine 100, %s", names[p]);
        check_oracle(opts_of(BD_SAMPLER_DDIM, 10, 1, BD_SCHEDULE_COSINE, 100, p), what);
        snprintf(what, sizeof what, "ddpm 7 respaced, cosine 100, %s", names[p]);
        check_oracle(opts_of(BD_SAMPLER_DDPM, 7, 0, BD_SCHEDULE_COSINE, 100, p), what);
    }
}

/* The variance the sampler should give with the exact Gaussian denoiser:
 * each step maps x to c x + sigma z with c linear in the two estimates
 * x0 = sqrt(ab) s^2 x / v, eps = sqrt(1 - ab) x / v, v = ab s^2 + 1 - ab.
 * Discrete steps shrink it below s^2 (Cauchy-Schwarz); the test checks
 * the noise the sampler injects against this exact recursion. */
static double predicted_variance(const bd_schedule *s, const bd_sample_opts *o,
                                 double s2)
{
    const int64_t T = s->T, K = o->steps ? o->steps : T;
    int64_t ts[1000];
    bd_sample_timesteps(T, K, ts);
    double var = 1.0;
    for (int64_t k = K - 1; k >= 0; k--) {
        double ab = s->alphas_cumprod[ts[k]];
        double ap = k > 0 ? s->alphas_cumprod[ts[k - 1]] : 1.0;
        double v = ab * s2 + 1 - ab, x0 = sqrt(ab) * s2 / v, eps = sqrt(1 - ab) / v;
        double c, sig2;
        if (o->sampler == BD_SAMPLER_DDPM) { /* posterior q(x_prev | x_t, x0) */
            double alpha = ab / ap;
            c = sqrt(ap) * (1 - alpha) / (1 - ab) * x0
              + sqrt(alpha) * (1 - ap) / (1 - ab);
            sig2 = (1 - alpha) * (1 - ap) / (1 - ab);
        } else {
            sig2 = o->eta * o->eta * (1 - ap) / (1 - ab) * (1 - ab / ap);
            c = sqrt(ap) * x0 + sqrt(1 - ap - sig2) * eps;
        }
        var = c * c * var + sig2;
    }
    return var;
}

/* With the exact denoiser for N(0, s^2) data the samples have the
 * predicted variance (s^2 in the limit of many steps). */
static void check_gauss(bd_sample_opts o, const char *what)
{
    bd_schedule *s = NULL;
    CHECK_OK(bd_schedule_new(&o.diffusion, &s));
    oracle orc = {.s = s, .var = 0.25};
    bd_model m = closed_form(gauss_forward, &orc, 16);
    bd_tensor *labels = labels_of(32);
    o.clip = false;
    o.seed = 5;
    bd_samples out;
    CHECK_OK(bd_sample(&m, labels, &o, NULL, &out));
    double sum = 0, sq = 0;
    const int64_t n = out.images ? out.images->numel : 1;
    for (int64_t k = 0; out.images && k < n; k++) {
        sum += out.images->data[k];
        sq += (double)out.images->data[k] * out.images->data[k];
    }
    double mean = sum / n, var = sq / n - mean * mean;
    double want = predicted_variance(s, &o, 0.25);
    printf("   %-32s mean %+.4f, variance %.4f (predicted %.4f)\n", what, mean,
           var, want);
    /* 8192 draws: the variance estimate has a relative s.e. of ~1.6% */
    CHECK(fabs(mean) < 0.03 && fabs(var / want - 1) < 0.06,
          "%s: mean %g variance %g, predicted %g", what, mean, var, want);
    bd_samples_free(&out);
    bd_tensor_free(labels);
    bd_schedule_free(s);
}

static void test_gauss(void)
{
    bd_sample_opts full = opts_of(BD_SAMPLER_DDPM, 0, 0, BD_SCHEDULE_LINEAR, 1000, 0);
    bd_schedule *s = NULL;
    CHECK_OK(bd_schedule_new(&full.diffusion, &s));
    double v = predicted_variance(s, &full, 0.25);
    CHECK(fabs(v / 0.25 - 1) < 0.02, "1000 ddpm steps predict %g, near 0.25", v);
    bd_schedule_free(s);
    check_gauss(full, "ddpm 1000, linear");
    check_gauss(opts_of(BD_SAMPLER_DDPM, 100, 0, BD_SCHEDULE_LINEAR, 1000, 0),
                "ddpm 100 respaced, linear");
    check_gauss(opts_of(BD_SAMPLER_DDIM, 50, 0, BD_SCHEDULE_LINEAR, 1000, 0),
                "ddim 50, eta 0");
    check_gauss(opts_of(BD_SAMPLER_DDIM, 50, 1, BD_SCHEDULE_COSINE, 1000, 0),
                "ddim 50, eta 1, cosine");
}

/* The exact eps predictor for data drawn uniformly from M images x_m:
 * E[x0 | x_t] = sum_m w_m x_m, w ~ exp(-|x_t - sqrt(ab) x_m|^2 / (2 (1 - ab))),
 * eps = (x_t - sqrt(ab) E[x0 | x_t]) / sqrt(1 - ab). */
#define MIX_M 3
#define MIX_PIX 64

typedef struct mixture {
    const bd_schedule *s;
    float images[MIX_M][MIX_PIX]; /* 8x8 bumps in [-1, 1] */
} mixture;

static bd_status mixture_forward(void *state, bd_tape *tp, bd_tensor *x_t,
                                 bd_tensor *t, bd_tensor *cond, bd_taps *taps,
                                 bd_tensor **out)
{
    (void)cond;
    (void)taps;
    const mixture *mx = state;
    bd_tensor *y = bd_tape_tensor_like(tp, x_t);
    if (!y)
        return BD_E_NOMEM;
    for (int64_t n = 0; n < x_t->shape[0]; n++) {
        const double ab = mx->s->alphas_cumprod[(int64_t)t->data[n]];
        const double sa = sqrt(ab), sb = sqrt(1.0 - ab);
        const float *x = x_t->data + n * MIX_PIX;
        double logw[MIX_M], top = -INFINITY, total = 0.0;
        for (int m = 0; m < MIX_M; m++) {
            double d2 = 0.0;
            for (int i = 0; i < MIX_PIX; i++)
                d2 += pow(x[i] - sa * mx->images[m][i], 2);
            logw[m] = -d2 / (2.0 * (1.0 - ab));
            top = fmax(top, logw[m]);
        }
        for (int m = 0; m < MIX_M; m++)
            total += exp(logw[m] - top);
        for (int i = 0; i < MIX_PIX; i++) {
            double x0 = 0.0;
            for (int m = 0; m < MIX_M; m++)
                x0 += exp(logw[m] - top) / total * mx->images[m][i];
            y->data[n * MIX_PIX + i] = (float)((x[i] - sa * x0) / sb);
        }
    }
    *out = y;
    return BD_OK;
}

/* With the exact denoiser of a finite data set, every sample lands on one
 * of its images and every image is drawn. */
static void check_mixture(bd_sample_opts o, const char *what)
{
    bd_schedule *s = NULL;
    CHECK_OK(bd_schedule_new(&o.diffusion, &s));
    mixture mx = {.s = s};
    const double centres[MIX_M][2] = {{2, 2}, {6, 3}, {3.5, 6}};
    for (int m = 0; m < MIX_M; m++)
        for (int i = 0; i < MIX_PIX; i++)
            mx.images[m][i] = (float)(2.0 * exp(-(pow(i % 8 + 0.5 - centres[m][0], 2)
                                                  + pow(i / 8 + 0.5 - centres[m][1], 2))
                                                / 2.0) - 1.0);
    bd_model model = {.state = &mx, .forward = mixture_forward, .channels = 1,
                      .size = 8};
    snprintf(model.arch, sizeof model.arch, "mixture");
    bd_tensor *labels = labels_of(48);
    o.seed = 11;
    bd_samples out;
    CHECK_OK(bd_sample(&model, labels, &o, NULL, &out));
    int drawn[MIX_M] = {0};
    double worst = 0.0;
    for (int64_t n = 0; out.images && n < 48; n++) {
        const float *x = out.images->data + n * MIX_PIX;
        int best = 0;
        double best_d = INFINITY;
        for (int m = 0; m < MIX_M; m++) {
            double d = 0.0;
            for (int i = 0; i < MIX_PIX; i++)
                d = fmax(d, fabs(x[i] - mx.images[m][i]));
            if (d < best_d) {
                best_d = d;
                best = m;
            }
        }
        drawn[best]++;
        worst = fmax(worst, best_d);
    }
    printf("   %-28s max |sample - nearest image| %.2e, drawn %d/%d/%d\n",
           what, worst, drawn[0], drawn[1], drawn[2]);
    CHECK(worst < 1e-2, "%s: a sample is %.2e from every image", what, worst);
    CHECK(drawn[0] > 0 && drawn[1] > 0 && drawn[2] > 0,
          "%s: images drawn %d/%d/%d times", what, drawn[0], drawn[1], drawn[2]);
    bd_samples_free(&out);
    bd_tensor_free(labels);
    bd_schedule_free(s);
}

static void test_mixture(void)
{
    for (int clip = 1; clip >= 0; clip--) {
        const char *tag = clip ? "clip" : "no clip";
        char what[64];
        bd_sample_opts o = opts_of(BD_SAMPLER_DDIM, 50, 0, BD_SCHEDULE_LINEAR, 1000, 0);
        o.clip = clip;
        snprintf(what, sizeof what, "ddim 50, eta 0, %s", tag);
        check_mixture(o, what);
        o.steps = 10;
        snprintf(what, sizeof what, "ddim 10, eta 0, %s", tag);
        check_mixture(o, what);
        o = opts_of(BD_SAMPLER_DDPM, 100, 0, BD_SCHEDULE_LINEAR, 1000, 0);
        o.clip = clip;
        snprintf(what, sizeof what, "ddpm 100 respaced, %s", tag);
        check_mixture(o, what);
    }
}

static double max_diff(const bd_tensor *a, const bd_tensor *b)
{
    double d = 0.0;
    for (int64_t k = 0; k < a->numel; k++)
        d = fmax(d, fabs(a->data[k] - b->data[k]));
    return d;
}

static void check_determinism(bd_sampler sampler, double eta, const char *what)
{
    bd_model *m = tiny_new(6, 8, 2);
    bd_tensor *labels = labels_of(5);
    bd_sample_opts o = opts_of(sampler, 20, eta, BD_SCHEDULE_LINEAR, 1000, 0);
    bd_samples a, b, c, d;
    o.seed = 9;
    CHECK_OK(bd_sample(m, labels, &o, NULL, &a));
    CHECK_OK(bd_sample(m, labels, &o, NULL, &b));
    o.batch = 2;
    CHECK_OK(bd_sample(m, labels, &o, NULL, &c));
    o.seed = 10;
    CHECK_OK(bd_sample(m, labels, &o, NULL, &d));
    double same = max_diff(a.images, b.images), batch = max_diff(a.images, c.images),
           seed = max_diff(a.images, d.images);
    printf("   %-20s same seed %.1e, batch 2 vs 64 %.1e, other seed %.2f\n",
           what, same, batch, seed);
    CHECK(same == 0.0, "%s: same seed gives the same samples", what);
    CHECK(batch < 1e-5, "%s: batch size changes samples by %.2e", what, batch);
    CHECK(seed > 0.1, "%s: another seed gives other samples", what);
    bd_samples_free(&a);
    bd_samples_free(&b);
    bd_samples_free(&c);
    bd_samples_free(&d);
    bd_tensor_free(labels);
    bd_model_free(m);
}

static void test_determinism(void)
{
    check_determinism(BD_SAMPLER_DDIM, 0.0, "ddim eta 0");
    check_determinism(BD_SAMPLER_DDIM, 0.5, "ddim eta 0.5");
    check_determinism(BD_SAMPLER_DDPM, 0.0, "ddpm");
}

/* The exact eps for N(0, s^2) data plus a constant error: a tiny eps
 * error makes x0 estimates at high noise land far outside [-1, 1] (it is
 * multiplied by sqrt(1 - abar) / sqrt(abar), ~156 at t = 999), as a
 * trained model's do. */
#define EPS_ERROR 0.05

static double biased_eps(const oracle *o, double ab, int64_t i, double x)
{
    return gauss_value(o, ab, i, x) + EPS_ERROR;
}

static bd_status biased_forward(void *state, bd_tape *tp, bd_tensor *x_t,
                                bd_tensor *t, bd_tensor *cond, bd_taps *taps,
                                bd_tensor **out)
{
    (void)cond;
    (void)taps;
    return elementwise_forward(state, tp, x_t, t, biased_eps, out);
}

/* DDIM with clip, one pixel in double: Song et al. eq. 12 with x0 clipped
 * to [-1, 1] beside the model's own eps (diffusers' DDIMScheduler with
 * clip_sample), or with eps re-derived from the clipped x0
 * (improved-diffusion). */
static double ddim_reference(const oracle *o, const int64_t *ts, int64_t K,
                             bd_ddim_eps which, double x)
{
    const bd_schedule *s = o->s;
    for (int64_t k = K - 1; k >= 0; k--) {
        double ab = s->alphas_cumprod[ts[k]];
        double ap = k > 0 ? s->alphas_cumprod[ts[k - 1]] : 1.0;
        double sa = sqrt(ab), sb = sqrt(1.0 - ab);
        double eps = biased_eps(o, ab, 0, x);
        double x0 = fmax(-1.0, fmin(1.0, (x - sb * eps) / sa));
        if (which == BD_DDIM_EPS_CLIPPED_X0)
            eps = (x - sa * x0) / sb;
        x = sqrt(ap) * x0 + sqrt(1.0 - ap) * eps;
    }
    return x;
}

/* The two ways to pick eps when x0 estimates are clipped; the sampler
 * follows the one asked for, the model's own eps by default. (On the
 * quickstart UNet, ddim 50 draws 100% good bumps with the model's eps, 62%
 * with the clipped x0's.) */
static void test_ddim_clip(void)
{
    const int64_t K = 20, n = 4, pix = 64;
    const double var = 0.25;
    bd_sample_opts o = opts_of(BD_SAMPLER_DDIM, K, 0, BD_SCHEDULE_LINEAR, 1000, 0);
    o.seed = 3;
    bd_schedule *s = NULL;
    CHECK_OK(bd_schedule_new(&o.diffusion, &s));
    oracle orc = {.s = s, .var = var};
    bd_model m = closed_form(biased_forward, &orc, 8);
    bd_tensor *labels = labels_of(n);
    int64_t ts[20];
    bd_sample_timesteps(1000, K, ts);
    CHECK(o.ddim_eps == BD_DDIM_EPS_MODEL, "ddim steps along the model's eps"
          " by default");
    const char *const names[] = {"model", "clipped_x0"};
    for (int which = 0; which < 2; which++) {
        o.ddim_eps = (bd_ddim_eps)which;
        bd_samples out;
        CHECK_OK(bd_sample(&m, labels, &o, NULL, &out));
        double err = 0.0, apart = 0.0;
        for (int64_t i = 0; out.images && i < n; i++) {
            float z[64];
            bd_rng r = bd_rng_make(o.seed, (uint64_t)i);
            bd_rng_fill_normal(&r, z, pix, 0.0f, 1.0f);
            for (int64_t j = 0; j < pix; j++) {
                double want = ddim_reference(&orc, ts, K, which, z[j]);
                double other = ddim_reference(&orc, ts, K, 1 - which, z[j]);
                err = fmax(err, fabs(out.images->data[i * pix + j] - want));
                apart = fmax(apart, fabs(other - want));
            }
        }
        printf("   ddim_eps %s: max |sample - reference| = %.1e (the other"
               " way: %.2f)\n", names[which], err, apart);
        CHECK(err < 1e-4, "ddim_eps %s: samples %.2e from the reference",
              names[which], err);
        CHECK(apart > 0.01, "the two ways to pick eps differ by only %.2e", apart);
        bd_samples_free(&out);
    }
    bd_tensor_free(labels);
    bd_schedule_free(s);
}

/* A model whose eps is 1.4 times its input (the exact one is about 1 at
 * high noise): DDIM on its own eps multiplies x by about 1.4 per step there
 * and overflows within 1000 steps; the sampler fails naming the image, the
 * step and the way out, and eps from the clipped x0 stays finite. */
static bd_status too_large_forward(void *state, bd_tape *tp, bd_tensor *x_t,
                                   bd_tensor *t, bd_tensor *cond, bd_taps *taps,
                                   bd_tensor **out)
{
    (void)state;
    (void)t;
    (void)cond;
    (void)taps;
    bd_tensor *y = bd_tape_tensor_like(tp, x_t);
    if (!y)
        return BD_E_NOMEM;
    for (int64_t i = 0; i < x_t->numel; i++)
        y->data[i] = 1.4f * x_t->data[i];
    *out = y;
    return BD_OK;
}

static void test_ddim_diverges(void)
{
    bd_model m = closed_form(too_large_forward, NULL, 4);
    bd_tensor *labels = labels_of(2);
    bd_sample_opts o = opts_of(BD_SAMPLER_DDIM, 1000, 0, BD_SCHEDULE_LINEAR, 1000, 0);
    bd_samples out;
    CHECK_FAILS(bd_sample(&m, labels, &o, NULL, &out), BD_E_NUMERIC,
                " is not finite after the step at t = ");
    CHECK(strstr(bd_last_error(), "ddim_eps = 'clipped_x0'") != NULL,
          "the message names the way out: %s", bd_last_error());
    CHECK(out.images == NULL, "nothing left on failure");
    o.ddim_eps = BD_DDIM_EPS_CLIPPED_X0;
    CHECK_OK(bd_sample(&m, labels, &o, NULL, &out));
    bool finite = out.images != NULL;
    for (int64_t i = 0; finite && i < out.images->numel; i++)
        finite = isfinite(out.images->data[i]);
    CHECK(finite, "eps from the clipped x0 stays finite");
    bd_samples_free(&out);
    bd_tensor_free(labels);
}

/* DDIM with eta = 1 is DDPM on the same respaced steps (Song et al. 2021,
 * sec. 4.1): with the same noise draws the two give the same images,
 * unclipped, or clipped with eps from the clipped x0 as DDPM's posterior
 * mean has it. */
static void test_ddim_eta1_is_ddpm(void)
{
    bd_model *m = tiny_new(6, 8, 7);
    bd_tensor *labels = labels_of(4);
    const int64_t steps[3] = {1000, 50, 7};
    for (int i = 0; i < 6; i++) {
        bd_sample_opts o = opts_of(BD_SAMPLER_DDPM, steps[i % 3], 0,
                                   BD_SCHEDULE_LINEAR, 1000, 0);
        o.seed = 4;
        o.clip = i >= 3;
        bd_samples ddpm, ddim;
        CHECK_OK(bd_sample(m, labels, &o, NULL, &ddpm));
        o.sampler = BD_SAMPLER_DDIM;
        o.eta = 1.0;
        o.ddim_eps = BD_DDIM_EPS_CLIPPED_X0;
        CHECK_OK(bd_sample(m, labels, &o, NULL, &ddim));
        double d = ddpm.images && ddim.images ? max_diff(ddpm.images, ddim.images) : 1.0;
        printf("   %4lld steps, clip %d: max |ddim eta 1 - ddpm| = %.1e\n",
               (long long)steps[i % 3], o.clip, d);
        CHECK(d < 1e-4, "%lld steps, clip %d: ddim eta 1 differs from ddpm by"
              " %.2e", (long long)steps[i % 3], o.clip, d);
        bd_samples_free(&ddpm);
        bd_samples_free(&ddim);
    }
    bd_tensor_free(labels);
    bd_model_free(m);
}

/* Taps at the first visited step (t = 999) equal the denoiser run on the
 * initial noise of each image's stream. */
static void test_taps(void)
{
    bd_model *m = tiny_new(6, 8, 4);
    bd_tensor *labels = labels_of(5);
    bd_sample_opts o = opts_of(BD_SAMPLER_DDIM, 10, 0, BD_SCHEDULE_LINEAR, 1000, 0);
    o.seed = 3;
    o.batch = 3;
    o.tap_t = 990;
    bd_taps want = {.n = 1, .names = {"hidden"}};
    bd_samples out;
    CHECK_OK(bd_sample(m, labels, &o, &want, &out));
    CHECK(out.n_taps == 1 && strcmp(out.tap_names[0], "hidden") == 0
          && out.tap_t == 999, "tap 'hidden' at t = %lld", (long long)out.tap_t);
    CHECK(out.taps[0] && out.taps[0]->shape[0] == 5 && out.taps[0]->shape[1] == 8,
          "tap shape (5, 8)");

    bd_tensor *x = bd_tensor_new4(5, 1, 6, 6, false), *t = bd_tensor_new4(5, 0, 0, 0, false);
    for (int64_t i = 0; i < 5; i++) {
        bd_rng r = bd_rng_make(3, (uint64_t)i);
        bd_rng_fill_normal(&r, x->data + 36 * i, 36, 0.0f, 1.0f);
    }
    bd_tensor_fill(t, 999.0f);
    bd_tape *tp = bd_tape_new();
    bd_taps got = {.n = 1, .names = {"hidden"}};
    bd_tensor *y = NULL;
    CHECK_OK(m->forward(m->state, tp, x, t, labels, &got, &y));
    if (out.taps[0] && got.values[0]) {
        double d = max_diff(out.taps[0], got.values[0]);
        printf("   tap vs direct forward on the initial noise: %.1e\n", d);
        CHECK(d < 1e-5, "tap differs from the direct forward by %.2e", d);
    }
    bd_samples_free(&out);

    o.tap_t = 500; /* visited: 0, 111, ..., 444, 555, ...: 555 is nearest */
    CHECK_OK(bd_sample(m, labels, &o, &want, &out));
    CHECK(out.tap_t == 555, "nearest visited step to 500: %lld", (long long)out.tap_t);
    bd_samples_free(&out);

    bd_taps bad = {.n = 2, .names = {"hidden", "layer9"}};
    CHECK_FAILS(bd_sample(m, labels, &o, &bad, &out), BD_E_ARG,
                "sample: denoiser 'tiny' offered no tap 'layer9'");
    CHECK(out.images == NULL && out.taps[0] == NULL, "nothing left on failure");
    bd_tape_free(tp);
    bd_tensor_free(x);
    bd_tensor_free(t);
    bd_tensor_free(labels);
    bd_model_free(m);
}

static void test_read_ddim_eps(void)
{
    bd_config *c = bd_config_new();
    bd_sample_opts o;
    CHECK_OK(bd_config_set_str(c, "ddim_eps", "clipped_x0"));
    CHECK_OK(bd_sample_read(c, &o));
    CHECK(o.ddim_eps == BD_DDIM_EPS_CLIPPED_X0
          && bd_sample_defaults().ddim_eps == BD_DDIM_EPS_MODEL,
          "ddim_eps read, the model's eps by default");
    CHECK_OK(bd_config_set_str(c, "ddim_eps", "x0"));
    CHECK_FAILS(bd_sample_read(c, &o), BD_E_ARG,
                "config: ddim_eps = 'x0', expected one of: model, clipped_x0");
    bd_config_free(c);
}

static void test_errors(void)
{
    bd_model *m = tiny_new(4, 4, 1);
    bd_tensor *labels = labels_of(3), *flat = bd_tensor_new4(6, 0, 0, 0, false);
    bd_sample_opts o = bd_sample_defaults();
    bd_samples out;
    CHECK_FAILS(bd_sample(m, flat, &o, NULL, &out), BD_E_ARG,
                "sample: labels have shape (6), expected (N, 2)");
    o.steps = 1001;
    CHECK_FAILS(bd_sample(m, labels, &o, NULL, &out), BD_E_ARG,
                "sample: steps = 1001, expected 0 (default) to timesteps (1000)");
    o = bd_sample_defaults();
    o.eta = -0.1;
    CHECK_FAILS(bd_sample(m, labels, &o, NULL, &out), BD_E_ARG,
                "sample: eta = -0.1, expected a number in [0, 1]");
    o = bd_sample_defaults();
    o.batch = 0;
    CHECK_FAILS(bd_sample(m, labels, &o, NULL, &out), BD_E_ARG,
                "sample: batch = 0, expected 1 to 65536");
    o = bd_sample_defaults();
    o.tap_t = -1;
    CHECK_FAILS(bd_sample(m, labels, &o, NULL, &out), BD_E_ARG,
                "sample: tap_t = -1, expected 0 to 999");
    o = bd_sample_defaults();
    o.diffusion.timesteps = 0;
    CHECK_FAILS(bd_sample(m, labels, &o, NULL, &out), BD_E_ARG,
                "schedule: timesteps = 0");
    bd_tensor_free(labels);
    bd_tensor_free(flat);
    bd_model_free(m);
}

int main(void)
{
    RUN(test_oracle);
    RUN(test_gauss);
    RUN(test_mixture);
    RUN(test_ddim_clip);
    RUN(test_determinism);
    RUN(test_ddim_eta1_is_ddpm);
    RUN(test_taps);
    RUN(test_read_ddim_eps);
    RUN(test_ddim_diverges);
    RUN(test_errors);
    return harness_summary();
}
