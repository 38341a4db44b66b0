/* Named parameters: name rules, lookup, counts, gradients, initialisers. */
#include "harness.h"
#include "bd/nn.h"

static void test_names(void)
{
    bd_params *p = bd_params_new();
    const int64_t shape[2] = {2, 3};
    bd_tensor *t = NULL;
    CHECK_OK(bd_params_add(p, "down1.conv_2.weight", 2, shape, &t));
    CHECK_OK(bd_params_add(p, "bias", 1, shape, NULL));
    CHECK_OK(bd_params_add(p, "0.1", 1, shape, NULL));

    CHECK_FAILS(bd_params_add(p, "down1.conv_2.weight", 2, shape, NULL), BD_E_ARG,
                "duplicate name \"down1.conv_2.weight\"");
    CHECK_FAILS(bd_params_add(p, "Down.weight", 2, shape, NULL), BD_E_ARG,
                "has 'D' at 0, expected only [a-z0-9_.]");
    CHECK_FAILS(bd_params_add(p, "conv weight", 2, shape, NULL), BD_E_ARG,
                "has ' ' at 4");
    CHECK_FAILS(bd_params_add(p, "conv-1", 2, shape, NULL), BD_E_ARG, "has '-' at 4");
    CHECK_FAILS(bd_params_add(p, ".weight", 2, shape, NULL), BD_E_ARG,
                "\".weight\" starts with a dot");
    CHECK_FAILS(bd_params_add(p, "weight.", 2, shape, NULL), BD_E_ARG,
                "\"weight.\" ends with a dot");
    CHECK_FAILS(bd_params_add(p, "a..b", 2, shape, NULL), BD_E_ARG,
                "\"a..b\" has a double dot");
    CHECK_FAILS(bd_params_add(p, "", 2, shape, NULL), BD_E_ARG,
                "has 0 characters, expected 1 to 255");
    CHECK_FAILS(bd_params_add(p, NULL, 2, shape, NULL), BD_E_ARG, "name is NULL");
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK_FAILS(bd_params_add(p, longname, 2, shape, NULL), BD_E_ARG,
                "has 299 characters, expected 1 to 255");
    longname[BD_PARAM_NAME_MAX] = '\0';
    CHECK_OK(bd_params_add(p, longname, 1, shape, NULL));

    const int64_t bad[2] = {2, 0};
    CHECK_FAILS(bd_params_add(p, "zero", 2, bad, NULL), BD_E_ARG,
                "params: zero: dim 1 is 0, expected >= 1");
    CHECK_FAILS(bd_params_add(p, "five", 5, shape, NULL), BD_E_ARG,
                "params: five: 5 dims, expected 1 to 4");
    CHECK_FAILS(bd_params_add(NULL, "x", 1, shape, NULL), BD_E_ARG, "set is NULL");
    CHECK(bd_params_count(p) == 4, "failed adds must add nothing: count %d",
          bd_params_count(p));
    bd_params_free(p);
}

static void test_lookup_and_counts(void)
{
    bd_params *p = bd_params_new();
    const int64_t ws[2] = {4, 3}, bs[1] = {4};
    bd_tensor *w = NULL, *b = NULL;
    CHECK_OK(bd_params_add(p, "fc.weight", 2, ws, &w));
    CHECK_OK(bd_params_add(p, "fc.bias", 1, bs, &b));
    CHECK(bd_params_count(p) == 2, "count %d, expected 2", bd_params_count(p));
    CHECK(bd_params_at(p, 0) == w && bd_params_at(p, 1) == b,
          "at() must return parameters in the order added");
    CHECK(bd_params_at(p, 2) == NULL && bd_params_at(p, -1) == NULL,
          "at() out of range must be NULL");
    CHECK(strcmp(bd_params_name(p, 1), "fc.bias") == 0, "name(1) = %s",
          bd_params_name(p, 1));
    CHECK(bd_params_find(p, "fc.weight") == w && bd_params_find(p, "fc") == NULL
          && bd_params_find(p, NULL) == NULL, "find() by exact name");
    CHECK(bd_params_numel(p) == 16, "numel %lld, expected 16",
          (long long)bd_params_numel(p));
    int zeros = 0;
    for (int64_t i = 0; i < w->numel; i++)
        zeros += w->data[i] == 0.0f && w->grad[i] == 0.0f;
    CHECK(zeros == 12 && (w->flags & BD_TENSOR_REQUIRES_GRAD),
          "a new parameter is zero-filled with a zero grad that requires grad");

    /* Many parameters: the set grows past its first capacity. */
    char name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "layer.%d.w", i);
        CHECK_OK(bd_params_add(p, name, 1, bs, NULL));
    }
    CHECK(bd_params_count(p) == 102 && bd_params_find(p, "layer.57.w")
          == bd_params_at(p, 59), "100 more parameters, found by name");
    bd_params_free(p);
}

static void test_grad_norm(void)
{
    bd_params *p = bd_params_new();
    const int64_t s3[1] = {3}, s2[2] = {1, 2};
    bd_tensor *a = NULL, *b = NULL;
    CHECK_OK(bd_params_add(p, "a", 1, s3, &a));
    CHECK_OK(bd_params_add(p, "b", 2, s2, &b));
    const float ga[3] = {1, -2, 2}, gb[2] = {4, 0};
    memcpy(a->grad, ga, sizeof ga);
    memcpy(b->grad, gb, sizeof gb);
    double norm = bd_params_grad_norm(p);
    CHECK(fabs(norm - 5.0) < 1e-12, "grad norm %.17g, expected 5", norm);

    /* Double accumulation: a million equal grads give sqrt(n) g to 1e-9
     * (a float accumulator is off by about 5e-3). */
    bd_params *q = bd_params_new();
    const int64_t big[1] = {1000000};
    bd_tensor *c = NULL;
    CHECK_OK(bd_params_add(q, "c", 1, big, &c));
    for (int64_t i = 0; i < c->numel; i++)
        c->grad[i] = 1e-3f;
    double want = sqrt(1e6 * (double)1e-3f * (double)1e-3f);
    CHECK(fabs(bd_params_grad_norm(q) - want) < 1e-9 * want,
          "grad norm %.17g, expected %.17g", bd_params_grad_norm(q), want);
    bd_params_free(q);

    bd_params_zero_grad(p);
    CHECK(bd_params_grad_norm(p) == 0.0, "zero_grad must clear every grad");
    bd_params_free(p);
}

static void test_init(void)
{
    const int64_t s[2] = {100, 100};
    bd_tensor *t = bd_tensor_new(2, s, false);
    bd_rng r = bd_rng_make(42, 0);
    bd_init_uniform(t, &r, 0.25f);
    double sum = 0, sum2 = 0, lo = 1, hi = -1;
    for (int64_t i = 0; i < t->numel; i++) {
        sum += t->data[i];
        sum2 += (double)t->data[i] * t->data[i];
        lo = fmin(lo, t->data[i]);
        hi = fmax(hi, t->data[i]);
    }
    double n = (double)t->numel;
    CHECK(lo >= -0.25 && hi <= 0.25 && lo < -0.249 && hi > 0.249,
          "uniform init range [%g, %g], expected to fill [-0.25, 0.25]", lo, hi);
    CHECK(fabs(sum / n) < 5 * 0.25 / sqrt(3 * n), "uniform init mean %g", sum / n);
    CHECK(fabs(sum2 / n - 0.0625 / 3) < 0.002, "uniform init variance %g,"
          " expected %g", sum2 / n, 0.0625 / 3);

    bd_init_normal(t, &r, 0.02f);
    sum = sum2 = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        sum += t->data[i];
        sum2 += (double)t->data[i] * t->data[i];
    }
    CHECK(fabs(sum / n) < 5 * 0.02 / sqrt(n) && fabs(sqrt(sum2 / n) - 0.02) < 0.0005,
          "normal init mean %g sd %g, expected 0 and 0.02", sum / n, sqrt(sum2 / n));

    /* The same generator state gives the same weights. */
    bd_tensor *u = bd_tensor_new(2, s, false);
    bd_rng r1 = bd_rng_make(9, 2), r2 = bd_rng_make(9, 2);
    bd_init_normal(t, &r1, 1.0f);
    bd_init_normal(u, &r2, 1.0f);
    CHECK(memcmp(t->data, u->data, (size_t)t->numel * sizeof(float)) == 0,
          "initialisation must be reproducible from (seed, stream)");
    bd_tensor_free(u);
    bd_tensor_free(t);
}

int main(void)
{
    RUN(test_names);
    RUN(test_lookup_and_counts);
    RUN(test_grad_norm);
    RUN(test_init);
    return harness_summary();
}
