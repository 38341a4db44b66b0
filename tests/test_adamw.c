/* AdamW against a naive double-precision reference (weight decay, clipping,
 * eps placement, changing lr), refusal of non-finite gradients, config
 * errors, resuming from saved moments; EMA math and swapping. */
#include "harness.h"
#include "bd/nn.h"

/* ---- reference: PyTorch's clip_grad_norm_ then AdamW, in double --------- */

typedef struct ref_adamw {
    int     n;
    double *p, *m, *v;
    int64_t t;
} ref_adamw;

static void ref_step(ref_adamw *r, const double *grad, double lr,
                     bd_adamw_config c)
{
    double norm = 0;
    for (int i = 0; i < r->n; i++)
        norm += grad[i] * grad[i];
    norm = sqrt(norm);
    double coef = c.clip_norm > 0 ? c.clip_norm / (norm + 1e-6) : 1.0;
    if (coef > 1.0)
        coef = 1.0;
    r->t++;
    double bc1 = 1 - pow(c.beta1, (double)r->t), bc2 = 1 - pow(c.beta2, (double)r->t);
    for (int i = 0; i < r->n; i++) {
        double g = grad[i] * coef;
        r->p[i] *= 1 - lr * c.weight_decay;
        r->m[i] = c.beta1 * r->m[i] + (1 - c.beta1) * g;
        r->v[i] = c.beta2 * r->v[i] + (1 - c.beta2) * g * g;
        double mhat = r->m[i] / bc1, vhat = r->v[i] / bc2;
        r->p[i] -= lr * mhat / (sqrt(vhat) + c.eps);
    }
}

/* ---- the set under test: two parameters, 12 + 5 values ------------------ */

static bd_params *make_params(void)
{
    bd_params *p = bd_params_new();
    const int64_t ws[2] = {3, 4}, bs[1] = {5};
    bd_tensor *w = NULL, *b = NULL;
    CHECK_OK(bd_params_add(p, "w", 2, ws, &w));
    CHECK_OK(bd_params_add(p, "b", 1, bs, &b));
    harness_fill(w, -1, 1);
    harness_fill(b, -1, 1);
    return p;
}

/* Flatten the set's values (what = 0) or grads (what = 1). */
static void gather(const bd_params *p, int what, double *out)
{
    int k = 0;
    for (int i = 0; i < bd_params_count(p); i++) {
        const bd_tensor *t = bd_params_at(p, i);
        for (int64_t j = 0; j < t->numel; j++)
            out[k++] = what ? t->grad[j] : t->data[j];
    }
}

/* Fresh grads in [-scale, scale]. */
static void random_grads(bd_params *p, double scale)
{
    for (int i = 0; i < bd_params_count(p); i++) {
        bd_tensor *t = bd_params_at(p, i);
        for (int64_t j = 0; j < t->numel; j++)
            t->grad[j] = (float)(scale * (2 * harness_uniform() - 1));
    }
}

/* Runs `steps` AdamW steps with a decaying lr on random grads of size
 * grad_scale, and compares with the reference after each one. */
static void check_against_reference(const char *what, bd_adamw_config c,
                                    int steps, double grad_scale, bool expect_clip)
{
    enum { N = 17 };
    bd_params *p = make_params();
    bd_adamw *opt = NULL;
    CHECK_OK(bd_adamw_new(p, c, &opt));
    double rp[N], rm[N] = {0}, rv[N] = {0}, grad[N], got[N];
    ref_adamw ref = {N, rp, rm, rv, 0};
    gather(p, 0, rp);
    double worst = 0;
    int clipped = 0;
    for (int s = 0; s < steps; s++) {
        random_grads(p, grad_scale);
        gather(p, 1, grad);
        double lr = c.lr / (1 + s), norm = 0;
        CHECK_OK(bd_adamw_step(opt, (float)lr, &norm));
        ref_step(&ref, grad, (float)lr, c);
        clipped += c.clip_norm > 0 && norm > c.clip_norm;
        gather(p, 0, got);
        for (int i = 0; i < N; i++)
            worst = fmax(worst, fabs(got[i] - rp[i]) / fmax(1.0, fabs(rp[i])));
    }
    printf("   %-36s %d steps, %d clipped: max rel err %.2e\n", what, steps,
           clipped, worst);
    CHECK(worst < 2e-6, "%s: parameters off the reference by %.3e", what, worst);
    CHECK(expect_clip ? clipped == steps : clipped == 0,
          "%s: %d of %d steps clipped", what, clipped, steps);
    CHECK(bd_adamw_steps(opt) == steps, "%s: steps %lld", what,
          (long long)bd_adamw_steps(opt));
    bd_adamw_free(opt);
    bd_params_free(p);
}

static void test_against_reference(void)
{
    bd_adamw_config c = bd_adamw_defaults();
    c.lr = 0.05f;
    c.weight_decay = 0.1f;
    c.clip_norm = 0.0f;
    check_against_reference("one step, wd 0.1, no clip", c, 1, 1.0, false);
    check_against_reference("20 steps, wd 0.1, no clip", c, 20, 1.0, false);

    c.clip_norm = 0.5f; /* grads in [-3, 3] over 17 values: norm ~ 7 */
    check_against_reference("20 steps, wd 0.1, clip 0.5", c, 20, 3.0, true);
    c.clip_norm = 100.0f;
    check_against_reference("20 steps, clip 100 (inactive)", c, 20, 1.0, false);

    /* Gradients of the size of eps: eps sits outside the square root. */
    c.eps = 1e-3f;
    c.weight_decay = 0.0f;
    c.beta1 = 0.5f;
    c.beta2 = 0.9f;
    check_against_reference("eps 1e-3, grads 1e-3, betas .5 .9", c, 10, 1e-3, false);
}

static void test_nonfinite_refused(void)
{
    bd_params *p = make_params();
    bd_adamw *opt = NULL;
    CHECK_OK(bd_adamw_new(p, bd_adamw_defaults(), &opt));
    random_grads(p, 1.0);
    CHECK_OK(bd_adamw_step(opt, 1e-2f, NULL));

    double before[17], after[17];
    float m0[12];
    gather(p, 0, before);
    memcpy(m0, bd_adamw_m(opt, 0)->data, sizeof m0);
    const float bad[2] = {NAN, INFINITY};
    const char *msg[2] = {"gradient norm is nan", "gradient norm is inf"};
    for (int k = 0; k < 2; k++) {
        random_grads(p, 1.0);
        bd_params_at(p, 1)->grad[3] = bad[k];
        double norm = 0;
        CHECK_FAILS(bd_adamw_step(opt, 1e-2f, &norm), BD_E_NUMERIC, msg[k]);
        CHECK(!isfinite(norm), "the refused norm is reported: %g", norm);
    }
    gather(p, 0, after);
    CHECK(memcmp(before, after, sizeof before) == 0, "a refused step changed"
          " parameters");
    CHECK(memcmp(m0, bd_adamw_m(opt, 0)->data, sizeof m0) == 0
          && bd_adamw_steps(opt) == 1, "a refused step changed the moments or"
          " the step count");
    bd_adamw_free(opt);
    bd_params_free(p);
}

static void test_config_errors(void)
{
    bd_params *p = make_params();
    bd_adamw *opt = NULL;
    bd_adamw_config c;
#define BAD_CONFIG(field, value, needle) do { c = bd_adamw_defaults(); \
    c.field = (value); \
    CHECK_FAILS(bd_adamw_new(p, c, &opt), BD_E_ARG, needle); } while (0)
    BAD_CONFIG(lr, -1e-3f, "adamw: lr = -0.001, expected a finite lr >= 0");
    BAD_CONFIG(lr, NAN, "adamw: lr = nan");
    BAD_CONFIG(beta1, 1.0f, "adamw: beta1 = 1, expected a value in [0, 1)");
    BAD_CONFIG(beta2, -0.5f, "adamw: beta2 = -0.5, expected a value in [0, 1)");
    BAD_CONFIG(eps, 0.0f, "adamw: eps = 0, expected a finite eps > 0");
    BAD_CONFIG(weight_decay, -0.1f, "adamw: weight_decay = -0.1");
    BAD_CONFIG(clip_norm, INFINITY, "adamw: clip_norm = inf");
#undef BAD_CONFIG
    CHECK_FAILS(bd_adamw_new(NULL, bd_adamw_defaults(), &opt), BD_E_ARG,
                "adamw: params is NULL");

    CHECK_OK(bd_adamw_new(p, bd_adamw_defaults(), &opt));
    CHECK_FAILS(bd_adamw_step(opt, -1.0f, NULL), BD_E_ARG,
                "adamw: step lr = -1, expected a finite lr >= 0");
    const int64_t s[1] = {2};
    CHECK_OK(bd_params_add(p, "late", 1, s, NULL));
    CHECK_FAILS(bd_adamw_step(opt, 1e-3f, NULL), BD_E_STATE,
                "the set has 3 parameters but the optimizer was made for 2");
    CHECK(bd_adamw_m(opt, 2) == NULL && bd_adamw_v(opt, -1) == NULL,
          "moments out of range are NULL");
    bd_adamw_free(opt);
    bd_params_free(p);
}

/* Copying m, v and the step count into a new optimizer resumes exactly. */
static void test_resume(void)
{
    bd_params *p = make_params();
    bd_adamw *a = NULL, *b = NULL;
    CHECK_OK(bd_adamw_new(p, bd_adamw_defaults(), &a));
    for (int s = 0; s < 3; s++) {
        random_grads(p, 1.0);
        CHECK_OK(bd_adamw_step(a, 1e-2f, NULL));
    }
    CHECK_OK(bd_adamw_new(p, bd_adamw_defaults(), &b));
    for (int i = 0; i < 2; i++) {
        size_t bytes = (size_t)bd_params_at(p, i)->numel * sizeof(float);
        CHECK(bd_shape_equal(bd_adamw_m(a, i), bd_params_at(p, i)),
              "moment %d has its parameter's shape", i);
        memcpy(bd_adamw_m(b, i)->data, bd_adamw_m(a, i)->data, bytes);
        memcpy(bd_adamw_v(b, i)->data, bd_adamw_v(a, i)->data, bytes);
    }
    bd_adamw_set_steps(b, bd_adamw_steps(a));

    random_grads(p, 1.0);
    double start[17], via_a[17], via_b[17];
    gather(p, 0, start);
    CHECK_OK(bd_adamw_step(a, 1e-2f, NULL));
    gather(p, 0, via_a);
    for (int i = 0, k = 0; i < 2; i++) /* put the parameters back */
        for (int64_t j = 0; j < bd_params_at(p, i)->numel; j++)
            bd_params_at(p, i)->data[j] = (float)start[k++];
    CHECK_OK(bd_adamw_step(b, 1e-2f, NULL));
    gather(p, 0, via_b);
    CHECK(memcmp(via_a, via_b, sizeof via_a) == 0,
          "a resumed optimizer must take the identical step");
    bd_adamw_free(a);
    bd_adamw_free(b);
    bd_params_free(p);
}

/* ---- EMA ------------------------------------------------------------------ */

static void test_ema(void)
{
    bd_params *p = make_params();
    bd_ema *ema = NULL;
    CHECK_FAILS(bd_ema_new(p, 1.5f, &ema), BD_E_ARG,
                "ema: decay = 1.5, expected a value in [0, 1]");
    CHECK_FAILS(bd_ema_new(p, NAN, &ema), BD_E_ARG, "ema: decay = nan");
    CHECK_OK(bd_ema_new(p, 0.9f, &ema));

    double shadow[17], value[17], got[17];
    gather(p, 0, shadow);
    double worst = 0;
    for (int s = 0; s < 5; s++) {
        random_grads(p, 1.0); /* new values: param = grad */
        for (int i = 0; i < 2; i++)
            memcpy(bd_params_at(p, i)->data, bd_params_at(p, i)->grad,
                   (size_t)bd_params_at(p, i)->numel * sizeof(float));
        gather(p, 0, value);
        bd_ema_update(ema);
        for (int k = 0; k < 17; k++)
            shadow[k] = 0.9 * shadow[k] + 0.1 * value[k];
        for (int i = 0, k = 0; i < 2; i++)
            for (int64_t j = 0; j < bd_ema_at(ema, i)->numel; j++, k++)
                worst = fmax(worst, fabs(bd_ema_at(ema, i)->data[j] - shadow[k]));
    }
    printf("   ema decay 0.9, 5 updates: max abs err %.2e\n", worst);
    CHECK(worst < 1e-6, "ema shadows off the reference by %.3e", worst);

    bd_ema_swap(ema);
    gather(p, 0, got);
    double err = 0;
    for (int k = 0; k < 17; k++)
        err = fmax(err, fabs(got[k] - shadow[k]));
    CHECK(err < 1e-6 && bd_ema_at(ema, 0)->data[0] == (float)value[0],
          "swap puts the shadows in the parameters and the values in the shadows");
    bd_ema_swap(ema);
    gather(p, 0, got);
    CHECK(memcmp(got, value, sizeof got) == 0, "swapping twice restores");
    CHECK(bd_ema_at(ema, 2) == NULL, "shadow out of range is NULL");
    bd_ema_free(ema);

    /* decay 0 follows the parameters; decay 1 keeps the first values. */
    bd_ema *follow = NULL, *frozen = NULL;
    CHECK_OK(bd_ema_new(p, 0.0f, &follow));
    CHECK_OK(bd_ema_new(p, 1.0f, &frozen));
    float first = bd_params_at(p, 1)->data[0];
    bd_params_at(p, 1)->data[0] = first + 1.0f;
    bd_ema_update(follow);
    bd_ema_update(frozen);
    CHECK(bd_ema_at(follow, 1)->data[0] == first + 1.0f
          && bd_ema_at(frozen, 1)->data[0] == first, "decay 0 and 1");
    bd_ema_free(follow);
    bd_ema_free(frozen);
    bd_params_free(p);
}

int main(void)
{
    RUN(test_against_reference);
    RUN(test_nonfinite_refused);
    RUN(test_config_errors);
    RUN(test_resume);
    RUN(test_ema);
    return harness_summary();
}
