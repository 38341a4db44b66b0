/* Typed configuration: defaults, ranges, choices, misspelt keys. */
#include "bd/config.h"
#include "harness.h"

static void test_getters(void)
{
    bd_config *c = bd_config_new();
    CHECK_OK(bd_config_set_num(c, "width", 32));
    CHECK_OK(bd_config_set_num(c, "lr", NAN));
    CHECK_OK(bd_config_set_str(c, "sampler", "ddmi"));
    int64_t w, d;
    double lr;
    CHECK_OK(bd_config_int(c, "width", 64, 1, 1024, &w));
    CHECK(w == 32, "width %lld", (long long)w);
    CHECK_OK(bd_config_int(c, "depth", 3, 1, 8, &d));
    CHECK(d == 3, "default depth %lld", (long long)d);
    CHECK_FAILS(bd_config_num(c, "lr", 1e-3, 0, 1, &lr), BD_E_ARG,
                "lr = nan, expected a number in [0, 1]");
    CHECK_FAILS(bd_config_int(c, "width", 64, 64, 128, &w), BD_E_ARG,
                "width = 32, expected an integer in [64, 128]");
    const char *const samplers[] = {"ddpm", "ddim", NULL};
    int which;
    CHECK_FAILS(bd_config_choice(c, "sampler", "ddpm", samplers, &which),
                BD_E_ARG, "sampler = 'ddmi', expected one of: ddpm, ddim");
    CHECK_FAILS(bd_config_num(c, "sampler", 1, 0, 2, &lr), BD_E_ARG,
                "expected a number");
    bd_config_free(c);
}

static void test_unused_key(void)
{
    bd_config *c = bd_config_new();
    CHECK_OK(bd_config_set_num(c, "width", 32));
    CHECK_OK(bd_config_set_num(c, "widht", 32));
    int64_t w;
    CHECK_OK(bd_config_int(c, "width", 64, 1, 1024, &w));
    CHECK_FAILS(bd_config_check_unused(c, "unet"), BD_E_ARG,
                "unknown key 'widht' for unet (allowed: width; did you mean"
                " 'width'?)");
    /* the keys asked for but absent are allowed too (a misspelt key is
     * usually the only one given) */
    bd_config *t = bd_config_new();
    CHECK_OK(bd_config_set_num(t, "tol", 1));
    double v;
    CHECK_OK(bd_config_num(t, "tolerance", 1, 0, 9, &v));
    CHECK_OK(bd_config_num(t, "dx", 1, 0, 9, &v));
    CHECK_OK(bd_config_num(t, "dx", 1, 0, 9, &v));
    CHECK_FAILS(bd_config_check_unused(t, "bump"), BD_E_ARG,
                "unknown key 'tol' for bump (allowed: dx, tolerance; did you"
                " mean 'tolerance'?)");
    bd_config_free(t);
    t = bd_config_new();
    CHECK_OK(bd_config_set_num(t, "zzz", 1));
    CHECK_FAILS(bd_config_check_unused(t, "fx"), BD_E_ARG,
                "unknown key 'zzz' for fx (allowed: none: it reads no key)");
    bd_config_free(t);
    const char *const names[] = {"steps", "seed", "sampler", "sample_steps"};
    CHECK(strcmp(bd_name_nearest(names, 4, "stesp"), "steps") == 0, "transposed");
    CHECK(strcmp(bd_name_nearest(names, 4, "samplr"), "sampler") == 0, "dropped");
    CHECK(bd_name_nearest(names, 4, "width") == NULL, "nothing near");
    CHECK_FAILS(bd_config_set_num(c, "Bad-Key", 1), BD_E_ARG, "has 'B'");
    bd_config_free(c);
}

int main(void)
{
    RUN(test_getters);
    RUN(test_unused_key);
    return harness_summary();
}
