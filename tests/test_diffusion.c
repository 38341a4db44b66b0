/* Diffusion: schedules, forward noising, targets and losses against naive
 * references, estimates, respacing, and the config errors. The samplers
 * are in test_diffusion_sample.c. */
#include "test_diffusion_model.h"

static bd_schedule *schedule(bd_schedule_kind kind, int64_t T, bd_prediction pred)
{
    bd_diffusion_spec spec = bd_diffusion_defaults();
    spec.schedule = kind;
    spec.timesteps = T;
    spec.prediction = pred;
    bd_schedule *s = NULL;
    CHECK_OK(bd_schedule_new(&spec, &s));
    if (!s)
        exit(2);
    return s;
}

static void test_linear_schedule(void)
{
    bd_schedule *s = schedule(BD_SCHEDULE_LINEAR, 1000, BD_PREDICT_EPS);
    CHECK(fabs(s->betas[0] - 1e-4) < 1e-15 && fabs(s->betas[999] - 0.02) < 1e-15,
          "linear endpoints %g %g", s->betas[0], s->betas[999]);
    CHECK(fabs(s->betas[500] - (1e-4 + 500.0 / 999.0 * (0.02 - 1e-4))) < 1e-15,
          "linear spacing");
    double prod = 1.0, err = 0.0;
    bool monotone = true;
    for (int64_t t = 0; t < 1000; t++) {
        prod *= 1.0 - s->betas[t];
        err = fmax(err, fabs(s->alphas_cumprod[t] - prod));
        CHECK(s->alphas[t] == 1.0 - s->betas[t], "alpha[%lld]", (long long)t);
        if (t > 0)
            monotone = monotone && s->alphas_cumprod[t] < s->alphas_cumprod[t - 1];
    }
    CHECK(err < 1e-15, "alphas_cumprod vs the product: %.2e", err);
    CHECK(monotone, "alphas_cumprod strictly decreasing");
    /* DDPM's well-known endpoint: abar[999] = 4.036e-5 */
    printf("   linear T=1000: abar[0] = %.6f, abar[999] = %.4e\n",
           s->alphas_cumprod[0], s->alphas_cumprod[999]);
    CHECK(fabs(s->alphas_cumprod[0] - 0.9999) < 1e-12
          && fabs(s->alphas_cumprod[999] - 4.0358e-5) < 1e-8, "linear endpoints");
    bd_schedule_free(s);
}

static void test_cosine_schedule(void)
{
    const int64_t T = 200;
    bd_schedule *s = schedule(BD_SCHEDULE_COSINE, T, BD_PREDICT_EPS);
    double f0 = pow(cos(0.008 / 1.008 * M_PI_2), 2), err = 0.0;
    for (int64_t t = 0; t < T - 1; t++) {
        double f = pow(cos(((double)(t + 1) / T + 0.008) / 1.008 * M_PI_2), 2);
        err = fmax(err, fabs(s->alphas_cumprod[t] - f / f0));
    }
    printf("   cosine T=%lld: max |abar - f(t+1)/f(0)| = %.2e, beta[T-1] = %g\n",
           (long long)T, err, s->betas[T - 1]);
    CHECK(err < 1e-12, "cosine formula off by %.2e", err);
    CHECK(s->betas[T - 1] == 0.999, "last beta clipped to 0.999");
    bool monotone = true;
    for (int64_t t = 1; t < T; t++)
        monotone = monotone && s->alphas_cumprod[t] < s->alphas_cumprod[t - 1];
    CHECK(monotone, "cosine abar decreasing");
    bd_schedule_free(s);
}

/* x_t per element against the formula, and its moments over many draws. */
static void test_q_sample(void)
{
    bd_schedule *s = schedule(BD_SCHEDULE_LINEAR, 1000, BD_PREDICT_EPS);
    bd_tensor *x0 = bd_tensor_new4(64, 1, 16, 16, false);
    bd_tensor *eps = bd_tensor_new4(64, 1, 16, 16, false);
    bd_tensor *xt = bd_tensor_new4(64, 1, 16, 16, false);
    bd_tensor_fill(x0, 0.5f);
    bd_rng rng = bd_rng_make(3, 0);
    bd_rng_fill_normal(&rng, eps->data, eps->numel, 0.0f, 1.0f);
    int64_t t[64];
    for (int i = 0; i < 64; i++)
        t[i] = i < 32 ? 100 : 700;
    CHECK_OK(bd_q_sample(s, x0, t, eps, xt));
    double err = 0.0;
    for (int64_t k = 0; k < xt->numel; k++) {
        double ab = s->alphas_cumprod[t[k / 256]];
        err = fmax(err, fabs(xt->data[k] - (sqrt(ab) * 0.5 + sqrt(1 - ab) * eps->data[k])));
    }
    CHECK(err < 1e-6, "q_sample formula off by %.2e", err);
    for (int half = 0; half < 2; half++) {
        double sum = 0, sq = 0, ab = s->alphas_cumprod[half ? 700 : 100];
        const int64_t n = 32 * 256;
        for (int64_t k = half * n; k < (half + 1) * n; k++) {
            sum += xt->data[k];
            sq += (double)xt->data[k] * xt->data[k];
        }
        double mean = sum / n, var = sq / n - mean * mean;
        printf("   t = %d: mean %.4f (want %.4f), var %.4f (want %.4f)\n",
               half ? 700 : 100, mean, sqrt(ab) * 0.5, var, 1 - ab);
        CHECK(fabs(mean - sqrt(ab) * 0.5) < 0.03, "q_sample mean");
        CHECK(fabs(var / (1 - ab) - 1) < 0.05, "q_sample variance");
    }
    t[5] = 1000;
    CHECK_FAILS(bd_q_sample(s, x0, t, eps, xt), BD_E_ARG,
                "q_sample: t[5] = 1000, expected 0 to 999");
    t[5] = 0;
    bd_tensor *small = bd_tensor_new4(64, 1, 8, 8, false);
    CHECK_FAILS(bd_q_sample(s, x0, t, small, xt), BD_E_ARG,
                "q_sample: eps has shape (64, 1, 8, 8), expected x0's (64, 1, 16, 16)");
    bd_tensor_free(small);
    bd_tensor_free(x0);
    bd_tensor_free(eps);
    bd_tensor_free(xt);
    bd_schedule_free(s);
}

/* ---- losses ------------------------------------------------------------------- */

typedef struct loss_case {
    bd_model    *m;
    bd_schedule *s;
    bd_tensor   *x0, *eps, *cond;
    int64_t      t[3];
} loss_case;

static bd_status build_loss(bd_tape *tp, bd_tensor **in, void *ud, bd_tensor **y)
{
    (void)in;
    loss_case *c = ud;
    return bd_diffusion_loss(tp, c->m, c->s, c->x0, c->cond, c->t, c->eps, NULL, y);
}

/* The loss against x_t, target and mean square in double, with the model
 * run directly; then the gradient of every parameter by differences. */
static void check_loss(bd_prediction pred, const char *name)
{
    loss_case c = {.m = tiny_new(5, 6, 11),
                   .s = schedule(BD_SCHEDULE_LINEAR, 1000, pred),
                   .x0 = bd_tensor_new4(3, 1, 5, 5, false),
                   .eps = bd_tensor_new4(3, 1, 5, 5, false),
                   .cond = bd_tensor_new4(3, 2, 0, 0, false),
                   .t = {0, 417, 999}};
    harness_fill(c.x0, -1, 1);
    harness_fill(c.eps, -2, 2);
    harness_fill(c.cond, 0, 5);
    bd_tape *tp = bd_tape_new();
    bd_tensor *loss = NULL;
    CHECK_OK(bd_diffusion_loss(tp, c.m, c.s, c.x0, c.cond, c.t, c.eps, NULL, &loss));

    bd_tape *ref_tp = bd_tape_new();
    bd_tensor *xt = bd_tensor_new4(3, 1, 5, 5, false), *tf = bd_tensor_new4(3, 0, 0, 0, false);
    double target[75];
    for (int64_t k = 0; k < 75; k++) {
        double ab = c.s->alphas_cumprod[c.t[k / 25]], x0 = c.x0->data[k],
               e = c.eps->data[k];
        xt->data[k] = (float)(sqrt(ab) * x0 + sqrt(1 - ab) * e);
        target[k] = pred == BD_PREDICT_EPS ? e : pred == BD_PREDICT_X0 ? x0
                  : sqrt(ab) * e - sqrt(1 - ab) * x0;
    }
    for (int i = 0; i < 3; i++)
        tf->data[i] = (float)c.t[i];
    bd_tensor *out = NULL;
    CHECK_OK(c.m->forward(c.m->state, ref_tp, xt, tf, c.cond, NULL, &out));
    double want = 0.0;
    for (int64_t k = 0; k < 75; k++)
        want += (out->data[k] - target[k]) * (out->data[k] - target[k]) / 75.0;
    char what[64];
    snprintf(what, sizeof what, "%s loss", name);
    harness_compare(what, loss->data, &want, 1, 1e-5);

    bd_tensor *params[7];
    for (int i = 0; i < 7; i++)
        params[i] = bd_params_at(c.m->params, i);
    harness_gradcheck(what, build_loss, params, 7, &c, 1e-2, 2e-2, 12);

    bd_tape_free(tp);
    bd_tape_free(ref_tp);
    bd_tensor_free(xt);
    bd_tensor_free(tf);
    bd_tensor_free(c.x0);
    bd_tensor_free(c.eps);
    bd_tensor_free(c.cond);
    bd_schedule_free(c.s);
    bd_model_free(c.m);
}

static void test_losses(void)
{
    check_loss(BD_PREDICT_EPS, "eps");
    check_loss(BD_PREDICT_X0, "x0");
    check_loss(BD_PREDICT_V, "v");
}

/* A denoiser that returns the wrong shape is named. */
static bd_status bad_forward(void *state, bd_tape *tp, bd_tensor *x_t,
                             bd_tensor *t, bd_tensor *cond, bd_taps *taps,
                             bd_tensor **out)
{
    (void)state, (void)x_t, (void)cond, (void)taps;
    *out = t;
    (void)tp;
    return BD_OK;
}

static void test_loss_errors(void)
{
    bd_schedule *s = schedule(BD_SCHEDULE_LINEAR, 10, BD_PREDICT_EPS);
    bd_model m = closed_form(bad_forward, NULL, 4);
    bd_tensor *x0 = bd_tensor_new4(2, 1, 4, 4, false), *eps = bd_tensor_new4(2, 1, 4, 4, false);
    bd_tensor *cond = bd_tensor_new4(2, 2, 0, 0, false);
    int64_t t[2] = {0, 9};
    bd_tape *tp = bd_tape_new();
    bd_tensor *loss;
    CHECK_FAILS(bd_diffusion_loss(tp, &m, s, x0, cond, t, eps, NULL, &loss),
                BD_E_PLUGIN, "diffusion loss: denoiser 'closed form' returned"
                " shape (2) for input (2, 1, 4, 4)");
    t[1] = -1;
    CHECK_FAILS(bd_diffusion_loss(tp, &m, s, x0, cond, t, eps, NULL, &loss),
                BD_E_ARG, "diffusion loss: t[1] = -1, expected 0 to 9");
    bd_tape_free(tp);
    bd_tensor_free(x0);
    bd_tensor_free(eps);
    bd_tensor_free(cond);
    bd_schedule_free(s);
}

/* out = target(x0, eps) -> the estimates give x0 and eps back. */
static void test_estimates(void)
{
    const bd_prediction preds[3] = {BD_PREDICT_EPS, BD_PREDICT_X0, BD_PREDICT_V};
    for (int p = 0; p < 3; p++) {
        bd_schedule *s = schedule(BD_SCHEDULE_COSINE, 100, preds[p]);
        bd_tensor *x0 = bd_tensor_new4(1, 1, 6, 6, false), *eps = bd_tensor_new4(1, 1, 6, 6, false);
        bd_tensor *xt = bd_tensor_new4(1, 1, 6, 6, false), *out = bd_tensor_new4(1, 1, 6, 6, false);
        harness_fill(x0, -1, 1);
        harness_fill(eps, -2, 2);
        float gx0[36], geps[36];
        double worst = 0.0;
        for (int64_t t = 0; t < 99; t += 7) {
            CHECK_OK(bd_q_sample(s, x0, &t, eps, xt));
            CHECK_OK(bd_diffusion_target(s, preds[p], x0, &t, eps, out));
            bd_diffusion_estimates(s, xt->data, out->data, t, 36, false, gx0, geps);
            for (int i = 0; i < 36; i++)
                worst = fmax(worst, fmax(fabs(gx0[i] - x0->data[i]),
                                         fabs(geps[i] - eps->data[i])));
        }
        printf("   prediction %d: estimates recover x0 and eps within %.2e\n",
               p, worst);
        CHECK(worst < 2e-3, "estimates off by %.2e", worst);
        /* clip: x0 estimate of 3 becomes 1 and eps follows it */
        int64_t t = 50;
        xt->data[0] = 3.0f;
        out->data[0] = preds[p] == BD_PREDICT_X0 ? 3.0f : 0.0f;
        bd_diffusion_estimates(s, xt->data, out->data, t, 1, true, gx0, geps);
        double ab = s->alphas_cumprod[t];
        CHECK(gx0[0] <= 1.0f && fabs(xt->data[0] - (sqrt(ab) * gx0[0]
              + sqrt(1 - ab) * geps[0])) < 1e-5, "clipped estimates stay consistent");
        bd_tensor_free(x0);
        bd_tensor_free(eps);
        bd_tensor_free(xt);
        bd_tensor_free(out);
        bd_schedule_free(s);
    }
}

static void test_timesteps(void)
{
    int64_t ts[1000];
    bd_sample_timesteps(1000, 50, ts);
    bool increasing = true;
    for (int k = 1; k < 50; k++)
        increasing = increasing && ts[k] > ts[k - 1];
    CHECK(ts[0] == 0 && ts[49] == 999 && ts[1] == 20 && increasing,
          "50 of 1000: %lld %lld .. %lld", (long long)ts[0], (long long)ts[1],
          (long long)ts[49]);
    bd_sample_timesteps(1000, 1000, ts);
    bool identity = true;
    for (int k = 0; k < 1000; k++)
        identity = identity && ts[k] == k;
    CHECK(identity, "K = T visits every step");
    bd_sample_timesteps(1000, 1, ts);
    CHECK(ts[0] == 999, "K = 1 visits T-1");
}

static bd_config *config_of(const char *key, const char *str, double num)
{
    bd_config *c = bd_config_new();
    if (str)
        bd_config_set_str(c, key, str);
    else
        bd_config_set_num(c, key, num);
    return c;
}

static void check_sample_config(const char *key, const char *str, double num,
                                const char *needle)
{
    bd_config *c = config_of(key, str, num);
    bd_sample_opts o;
    CHECK_FAILS(bd_sample_read(c, &o), BD_E_ARG, needle);
    bd_config_free(c);
}

static void test_config(void)
{
    check_sample_config("schedule", "quadratic", 0, "config: schedule ="
                        " 'quadratic', expected one of: linear, cosine");
    check_sample_config("prediction", "noise", 0, "config: prediction = 'noise',"
                        " expected one of: eps, x0, v");
    check_sample_config("timesteps", NULL, 0, "config: timesteps = 0, expected"
                        " an integer in [1, 100000]");
    check_sample_config("beta_end", NULL, 1.5, "config: beta_end = 1.5, expected"
                        " a number in [1e-08, 0.999]");
    check_sample_config("sampler", "ddmi", 0, "config: sampler = 'ddmi',"
                        " expected one of: ddpm, ddim");
    check_sample_config("steps", NULL, 2000, "config: steps = 2000, expected an"
                        " integer in [0, 1000]");
    check_sample_config("eta", NULL, NAN, "config: eta = nan, expected a number"
                        " in [0, 1]");
    check_sample_config("tap_t", NULL, 1000, "config: tap_t = 1000, expected an"
                        " integer in [0, 999]");
    check_sample_config("stpes", NULL, 10, "config: unknown key 'stpes' for sample");
    /* cosine reads no betas, so setting one is a mistake worth naming */
    bd_config *c = config_of("schedule", "cosine", 0);
    bd_config_set_num(c, "beta_end", 0.02);
    bd_sample_opts o;
    CHECK_FAILS(bd_sample_read(c, &o), BD_E_ARG, "unknown key 'beta_end' for sample");
    bd_config_free(c);
    c = config_of("sampler", "ddim", 0);
    bd_config_set_num(c, "steps", 20);
    bd_config_set_num(c, "timesteps", 100);
    CHECK_OK(bd_sample_read(c, &o));
    CHECK(o.sampler == BD_SAMPLER_DDIM && o.steps == 20
          && o.diffusion.timesteps == 100 && o.clip, "sample options read");
    bd_config_free(c);

    bd_diffusion_spec spec = bd_diffusion_defaults();
    bd_schedule *s;
    spec.beta_start = 0;
    CHECK_FAILS(bd_schedule_new(&spec, &s), BD_E_ARG, "schedule: beta_start = 0,"
                " beta_end = 0.02, expected both in (0, 1)");
    spec = bd_diffusion_defaults();
    spec.timesteps = 0;
    CHECK_FAILS(bd_schedule_new(&spec, &s), BD_E_ARG, "schedule: timesteps = 0");
}

/* The name tables follow the enums; a value outside one has no name. */
static void test_names(void)
{
    CHECK(strcmp(bd_schedule_name(BD_SCHEDULE_COSINE), "cosine") == 0
          && strcmp(bd_prediction_name(BD_PREDICT_V), "v") == 0
          && strcmp(bd_sampler_names[BD_SAMPLER_DDIM], "ddim") == 0, "names");
    CHECK(strcmp(bd_prediction_name((bd_prediction)3), "(unknown)") == 0
          && strcmp(bd_schedule_name((bd_schedule_kind)-1), "(unknown)") == 0,
          "out of range: (unknown)");
    char all[64];
    CHECK(strcmp(bd_names_join(bd_prediction_names, all, sizeof all),
                 "eps, x0, v") == 0, "joined: %s", all);
    CHECK(bd_name_find(bd_prediction_names, "v") == BD_PREDICT_V
          && bd_name_find(bd_prediction_names, "V") == -1, "found by name");
}

int main(void)
{
    RUN(test_linear_schedule);
    RUN(test_cosine_schedule);
    RUN(test_q_sample);
    RUN(test_losses);
    RUN(test_loss_errors);
    RUN(test_estimates);
    RUN(test_timesteps);
    RUN(test_config);
    RUN(test_names);
    return harness_summary();
}
