/* bd_represent: the taps on one fixed noisy input per label at timestep t
 * equal the denoiser run directly on that input; the input is the clean
 * image noised with one shared draw (or each label's own, or the noise
 * alone); t defaults to T / 2; results do not depend on the batch; every
 * bad call fails naming what was wrong. */
#include "bd/rng.h"
#include "test_diffusion_model.h"

#define SIDE 5
#define PIX  (SIDE * SIDE)

static bd_tensor *labels_of(int64_t n)
{
    bd_tensor *l = bd_tensor_new4(n, 2, 0, 0, false);
    for (int64_t i = 0; i < 2 * n; i++)
        l->data[i] = (float)(0.5 + 0.37 * (double)i);
    return l;
}

static double max_diff(const bd_tensor *a, const bd_tensor *b)
{
    double m = a->numel == b->numel ? 0 : INFINITY;
    for (int64_t i = 0; i < a->numel && i < b->numel; i++)
        m = fmax(m, fabs((double)a->data[i] - b->data[i]));
    return m;
}

/* eps of Philox stream (seed, stream).   -> (PIX) */
static void noise(uint64_t seed, uint64_t stream, float *eps)
{
    bd_rng r = bd_rng_make(seed, stream);
    bd_rng_fill_normal(&r, eps, PIX, 0.0f, 1.0f);
}

/* The tap "hidden" of a direct forward on x at t.   x: (N, 1, S, S) */
static bd_tensor *direct(bd_model *m, bd_tensor *x, bd_tensor *labels, float t)
{
    bd_tensor *tt = bd_tensor_new4(x->shape[0], 0, 0, 0, false);
    bd_tensor_fill(tt, t);
    bd_tape *tp = bd_tape_new();
    bd_taps got = {.n = 1, .names = {"hidden"}};
    bd_tensor *y = NULL;
    CHECK_OK(m->forward(m->state, tp, x, tt, labels, &got, &y));
    bd_tensor *h = got.values[0] ? bd_tensor_new(got.values[0]->ndim,
                                                 got.values[0]->shape, false)
                                 : NULL;
    if (h)
        memcpy(h->data, got.values[0]->data, (size_t)h->numel * sizeof(float));
    bd_tape_free(tp);
    bd_tensor_free(tt);
    return h;
}

/* x0 noised to the default t = 500 with one shared draw: the inputs and
 * the taps are what a direct forward gives, in batches of 2 as in one. */
static void test_shared_bump(void)
{
    bd_model *m = tiny_new(SIDE, 8, 4);
    bd_tensor *labels = labels_of(5), *x0 = bd_tensor_new4(5, 1, SIDE, SIDE, false);
    harness_fill(x0, -1, 1);
    bd_represent_opts o = bd_represent_defaults();
    o.seed = 7;
    o.batch = 2;
    bd_taps want = {.n = 1, .names = {"hidden"}};
    bd_samples out;
    CHECK_OK(bd_represent(m, labels, x0, &o, &want, &out));
    CHECK(out.tap_t == 500 && out.n_taps == 1
          && strcmp(out.tap_names[0], "hidden") == 0,
          "tap 'hidden' at t = %lld, expected 500 (T / 2)", (long long)out.tap_t);

    bd_schedule *s = NULL;
    CHECK_OK(bd_schedule_new(&o.diffusion, &s));
    const double ab = s->alphas_cumprod[500];
    bd_schedule_free(s);
    float eps[PIX];
    noise(7, 0, eps);
    bd_tensor *x = bd_tensor_new4(5, 1, SIDE, SIDE, false);
    for (int64_t i = 0; i < 5; i++)
        for (int64_t j = 0; j < PIX; j++)
            x->data[i * PIX + j] = (float)(sqrt(ab) * x0->data[i * PIX + j]
                                           + sqrt(1 - ab) * eps[j]);
    double dx = out.images ? max_diff(out.images, x) : INFINITY;
    CHECK(dx < 1e-6, "inputs differ from sqrt(abar) x0 + sqrt(1 - abar) eps by %.2e", dx);
    bd_tensor *h = direct(m, x, labels, 500.0f);
    double dh = h && out.taps[0] ? max_diff(out.taps[0], h) : INFINITY;
    printf("   taps vs a direct forward: %.1e\n", dh);
    CHECK(dh < 1e-5, "taps differ from a direct forward by %.2e", dh);

    bd_samples one;
    o.batch = 64;
    CHECK_OK(bd_represent(m, labels, x0, &o, &want, &one));
    CHECK(one.taps[0] && out.taps[0] && max_diff(one.taps[0], out.taps[0]) < 1e-6,
          "batch 64 gives the taps of batch 2 (to rounding)");
    bd_samples_free(&one);
    bd_samples_free(&out);
    bd_tensor_free(h);
    bd_tensor_free(x);
    bd_tensor_free(x0);
    bd_tensor_free(labels);
    bd_model_free(m);
}

/* Without x0 the input is the noise: shared, every label gets the same
 * image; with shared_noise off, label n gets stream (seed, n). */
static void test_noise_input(void)
{
    bd_model *m = tiny_new(SIDE, 8, 4);
    bd_tensor *labels = labels_of(3);
    bd_represent_opts o = bd_represent_defaults();
    o.seed = 2;
    o.t = 120;
    bd_taps want = {.n = 1, .names = {"hidden"}};
    bd_samples out;
    float eps[PIX];
    for (int shared = 1; shared >= 0; shared--) {
        o.shared_noise = shared;
        CHECK_OK(bd_represent(m, labels, NULL, &o, &want, &out));
        double d = out.images ? 0 : INFINITY;
        for (int64_t i = 0; out.images && i < 3; i++) {
            noise(2, shared ? 0 : (uint64_t)i, eps);
            for (int64_t j = 0; j < PIX; j++)
                d = fmax(d, fabs(out.images->data[i * PIX + j] - eps[j]));
        }
        CHECK(d == 0 && out.tap_t == 120, "%s noise input: off by %.2e, t %lld",
              shared ? "shared" : "own", d, (long long)out.tap_t);
        bd_tensor *h = out.images ? direct(m, out.images, labels, 120.0f) : NULL;
        CHECK(h && out.taps[0] && max_diff(out.taps[0], h) < 1e-5,
              "taps of the noise input are a direct forward's");
        bd_tensor_free(h);
        bd_samples_free(&out);
    }
    bd_tensor_free(labels);
    bd_model_free(m);
}

static void test_read(void)
{
    bd_config *c = bd_config_new();
    bd_represent_opts o;
    CHECK_OK(bd_represent_read(c, &o));
    CHECK(o.t == -1 && o.shared_noise && o.seed == 0 && o.batch == 64,
          "defaults: t -1 (T / 2), shared noise, seed 0, batch 64");
    CHECK_OK(bd_config_set_num(c, "t", 250));
    CHECK_OK(bd_config_set_num(c, "shared_noise", 0));
    CHECK_OK(bd_represent_read(c, &o));
    CHECK(o.t == 250 && !o.shared_noise, "t and shared_noise read");
    CHECK_OK(bd_config_set_num(c, "t", 1000));
    CHECK_FAILS(bd_represent_read(c, &o), BD_E_ARG,
                "config: t = 1000, expected an integer in [-1, 999]");
    bd_config_free(c);
    c = bd_config_new();
    CHECK_OK(bd_config_set_num(c, "tap_t", 3));
    CHECK_FAILS(bd_represent_read(c, &o), BD_E_ARG, "tap_t");
    bd_config_free(c);
}

static void test_errors(void)
{
    bd_model *m = tiny_new(4, 4, 1);
    bd_tensor *labels = labels_of(3), *flat = bd_tensor_new4(6, 0, 0, 0, false);
    bd_tensor *x0 = bd_tensor_new4(2, 1, 4, 4, true);
    bd_represent_opts o = bd_represent_defaults();
    bd_taps want = {.n = 1, .names = {"hidden"}}, none = {0};
    bd_taps bad = {.n = 2, .names = {"hidden", "layer9"}};
    bd_samples out;
    CHECK_FAILS(bd_represent(m, flat, NULL, &o, &want, &out), BD_E_ARG,
                "represent: labels have shape (6), expected (N, 2)");
    CHECK_FAILS(bd_represent(m, labels, x0, &o, &want, &out), BD_E_ARG,
                "represent: clean images have shape (2, 1, 4, 4), expected"
                " (3, 1, 4, 4)");
    CHECK_FAILS(bd_represent(m, labels, NULL, &o, &none, &out), BD_E_ARG,
                "represent: 0 taps requested, expected 1 to");
    CHECK_FAILS(bd_represent(m, labels, NULL, &o, NULL, &out), BD_E_ARG,
                "represent: 0 taps requested");
    CHECK_FAILS(bd_represent(m, labels, NULL, &o, &bad, &out), BD_E_ARG,
                "represent: denoiser 'tiny' offered no tap 'layer9' with a"
                " batch dim of 3 at t = 500");
    CHECK(out.images == NULL && out.taps[0] == NULL, "nothing left on failure");
    o.t = 1000;
    CHECK_FAILS(bd_represent(m, labels, NULL, &o, &want, &out), BD_E_ARG,
                "represent: t = 1000, expected -1 (T / 2) or 0 to 999");
    o = bd_represent_defaults();
    o.batch = 0;
    CHECK_FAILS(bd_represent(m, labels, NULL, &o, &want, &out), BD_E_ARG,
                "represent: batch = 0, expected 1 to 65536");
    bd_tensor_free(x0);
    bd_tensor_free(flat);
    bd_tensor_free(labels);
    bd_model_free(m);
}

int main(void)
{
    RUN(test_shared_bump);
    RUN(test_noise_input);
    RUN(test_read);
    RUN(test_errors);
    return harness_summary();
}
