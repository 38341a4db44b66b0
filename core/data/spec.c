/* Dataset settings: defaults, reading them from a config, checking them. */
#include "bd/data.h"

#include <math.h>

static const char *const KINDS[] = {"bumps", "stripes", "stripe_sum", NULL};
static const char *const ORIENTS[] = {"both", "vertical", "horizontal", NULL};
static const char *const HOLDOUTS[] = {"none", "rect", "cross", "xband", "yband",
                                       NULL};

#define MAX_SIDE 4096

bd_data_spec bd_data_defaults(void)
{
    return (bd_data_spec){
        .kind = BD_DATA_BUMPS, .size = 32, .canvas = 32, .periodic = false,
        .sigma = 1.0, .dx = 1.0, .dy = 1.0, .denom = 2, .invert = false,
        .orient = BD_STRIPES_BOTH, .null_label = -1.0, .lambda = 1.0,
        .seed = 0, .holdout = BD_HOLDOUT_NONE,
        .hx0 = NAN, .hx1 = NAN, .hy0 = NAN, .hy1 = NAN,
    };
}

static bd_status read_flag(bd_config *cfg, const char *key, bool *flag)
{
    int64_t v;
    BD_TRY(bd_config_int(cfg, key, *flag, 0, 1, &v));
    *flag = v != 0;
    return BD_OK;
}

static bd_status read_choice(bd_config *cfg, const char *key,
                             const char *const *choices, int *value)
{
    int index;
    BD_TRY(bd_config_choice(cfg, key, choices[*value], choices, &index));
    *value = index;
    return BD_OK;
}

/* A held-out bound: read only when present, so a missing one stays NaN and
 * bd_data_check names it. */
static bd_status read_bound(bd_config *cfg, const char *key, double *v)
{
    if (!bd_config_has(cfg, key))
        return BD_OK;
    return bd_config_num(cfg, key, 0, -MAX_SIDE, 2 * MAX_SIDE, v);
}

static bd_status read_holdout(bd_config *cfg, bd_data_spec *s)
{
    int h = (int)s->holdout;
    BD_TRY(read_choice(cfg, "holdout", HOLDOUTS, &h));
    s->holdout = (bd_holdout)h;
    if (s->holdout != BD_HOLDOUT_YBAND && s->holdout != BD_HOLDOUT_NONE) {
        BD_TRY(read_bound(cfg, "holdout_x0", &s->hx0));
        BD_TRY(read_bound(cfg, "holdout_x1", &s->hx1));
    }
    if (s->holdout != BD_HOLDOUT_XBAND && s->holdout != BD_HOLDOUT_NONE) {
        BD_TRY(read_bound(cfg, "holdout_y0", &s->hy0));
        BD_TRY(read_bound(cfg, "holdout_y1", &s->hy1));
    }
    return BD_OK;
}

static bd_status read_shape(bd_config *cfg, bd_data_spec *s)
{
    int kind = (int)s->kind;
    BD_TRY(read_choice(cfg, "kind", KINDS, &kind));
    s->kind = (bd_data_kind)kind;
    BD_TRY(bd_config_int(cfg, "size", s->size, 2, MAX_SIDE, &s->size));
    BD_TRY(bd_config_int(cfg, "canvas", s->size, 2, 2 * MAX_SIDE, &s->canvas));
    BD_TRY(read_flag(cfg, "periodic", &s->periodic));
    BD_TRY(bd_config_num(cfg, "sigma", s->sigma, 1e-3, MAX_SIDE, &s->sigma));
    BD_TRY(bd_config_num(cfg, "dx", s->dx, 1e-3, 2 * MAX_SIDE, &s->dx));
    BD_TRY(bd_config_num(cfg, "dy", s->dy, 1e-3, 2 * MAX_SIDE, &s->dy));
    int64_t denom;
    BD_TRY(bd_config_int(cfg, "denom", s->denom, 2, 4, &denom));
    if (denom == 3)
        return bd_fail(BD_E_ARG, "config: denom = 3, expected 2 or 4"
                       " (exp(-d^2 / (denom sigma^2)))");
    s->denom = (int)denom;
    BD_TRY(read_flag(cfg, "invert", &s->invert));
    if (s->kind == BD_DATA_STRIPES) {
        int orient = (int)s->orient;
        BD_TRY(read_choice(cfg, "orient", ORIENTS, &orient));
        s->orient = (bd_stripe_orient)orient;
        BD_TRY(bd_config_num(cfg, "null_label", s->null_label, -2 * MAX_SIDE,
                             2 * MAX_SIDE, &s->null_label));
    }
    return BD_OK;
}

bd_status bd_data_read(bd_config *cfg, bd_data_spec *spec)
{
    bd_data_spec s = bd_data_defaults();
    BD_TRY(read_shape(cfg, &s));
    BD_TRY(bd_config_num(cfg, "lambda", s.lambda, 0, 1, &s.lambda));
    int64_t seed;
    BD_TRY(bd_config_int(cfg, "seed", 0, 0, INT64_C(1) << 53, &seed));
    s.seed = (uint64_t)seed;
    BD_TRY(read_holdout(cfg, &s));
    BD_TRY(bd_config_check_unused(cfg, "dataset"));
    *spec = s;
    return BD_OK;
}

/* ---- consistency ---------------------------------------------------------- */

static bd_status check_positive(const char *key, double v, double hi)
{
    if (!(v > 0 && v <= hi))
        return bd_fail(BD_E_ARG, "dataset: %s = %g, expected a number in"
                       " (0, %g]", key, v, hi);
    return BD_OK;
}

static bd_status check_interval(const bd_data_spec *s, const char *axis,
                                double lo, double hi)
{
    if (!(lo <= hi)) /* also catches a missing (NaN) bound */
        return bd_fail(BD_E_ARG, "dataset: holdout = %s needs holdout_%s0 <="
                       " holdout_%s1, got %g and %g", HOLDOUTS[s->holdout],
                       axis, axis, lo, hi);
    return BD_OK;
}

bd_status bd_data_check(const bd_data_spec *s)
{
    if ((unsigned)s->kind > BD_DATA_STRIPE_SUM
        || (unsigned)s->orient > BD_STRIPES_HORIZONTAL
        || (unsigned)s->holdout > BD_HOLDOUT_YBAND)
        return bd_fail(BD_E_ARG, "dataset: kind %d, orient %d or holdout %d"
                       " is not a known value", (int)s->kind, (int)s->orient,
                       (int)s->holdout);
    if (s->size < 2 || s->size > MAX_SIDE)
        return bd_fail(BD_E_ARG, "dataset: size = %lld, expected 2 to %d",
                       (long long)s->size, MAX_SIDE);
    if (s->canvas < s->size || s->canvas > 2 * MAX_SIDE)
        return bd_fail(BD_E_ARG, "dataset: canvas = %lld, expected size (%lld)"
                       " to %d", (long long)s->canvas, (long long)s->size,
                       2 * MAX_SIDE);
    if (s->periodic && s->canvas != s->size)
        return bd_fail(BD_E_ARG, "dataset: periodic = 1 needs canvas = size"
                       " (%lld), got canvas = %lld: a torus cannot be cropped",
                       (long long)s->size, (long long)s->canvas);
    BD_TRY(check_positive("sigma", s->sigma, MAX_SIDE));
    BD_TRY(check_positive("dx", s->dx, (double)s->canvas));
    BD_TRY(check_positive("dy", s->dy, (double)s->canvas));
    if (s->denom != 2 && s->denom != 4)
        return bd_fail(BD_E_ARG, "dataset: denom = %d, expected 2 or 4",
                       s->denom);
    if (!(s->lambda >= 0 && s->lambda <= 1))
        return bd_fail(BD_E_ARG, "dataset: lambda = %g, expected a number in"
                       " [0, 1]", s->lambda);
    if (!isfinite(s->null_label))
        return bd_fail(BD_E_ARG, "dataset: null_label = %g, expected a finite"
                       " number", s->null_label);
    if (s->holdout == BD_HOLDOUT_RECT || s->holdout == BD_HOLDOUT_CROSS
        || s->holdout == BD_HOLDOUT_XBAND)
        BD_TRY(check_interval(s, "x", s->hx0, s->hx1));
    if (s->holdout == BD_HOLDOUT_RECT || s->holdout == BD_HOLDOUT_CROSS
        || s->holdout == BD_HOLDOUT_YBAND)
        BD_TRY(check_interval(s, "y", s->hy0, s->hy1));
    return BD_OK;
}
