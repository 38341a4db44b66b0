/* Training options: defaults and reading them from a config. */
#include "bd/train.h"

#define MAX_STEPS (INT64_C(1) << 40)
#define MAX_BATCH 65536

bd_train_opts bd_train_defaults(void)
{
    return (bd_train_opts){
        .diffusion = bd_diffusion_defaults(), .steps = 0, .epochs = 1,
        .batch = 64, .lr = 3e-4, .warmup = 0, .weight_decay = 0.01,
        .beta1 = 0.9, .beta2 = 0.999, .clip = 1.0, .ema = 0.999, .every = 100,
        .seed = 0,
    };
}

static bd_status read_optimizer(bd_config *cfg, bd_train_opts *o)
{
    BD_TRY(bd_config_num(cfg, "lr", o->lr, 0, 10, &o->lr));
    BD_TRY(bd_config_int(cfg, "warmup", o->warmup, 0, MAX_STEPS, &o->warmup));
    BD_TRY(bd_config_num(cfg, "weight_decay", o->weight_decay, 0, 10,
                         &o->weight_decay));
    BD_TRY(bd_config_num(cfg, "beta1", o->beta1, 0, 0.999999, &o->beta1));
    BD_TRY(bd_config_num(cfg, "beta2", o->beta2, 0, 0.999999, &o->beta2));
    BD_TRY(bd_config_num(cfg, "clip", o->clip, 0, 1e6, &o->clip));
    return bd_config_num(cfg, "ema", o->ema, 0, 0.999999, &o->ema);
}

/* steps, when given, is >= 1: left out, training runs `epochs` epochs. */
static bd_status read_steps(bd_config *cfg, int64_t *steps)
{
    if (!bd_config_has(cfg, "steps"))
        return BD_OK;
    BD_TRY(bd_config_int(cfg, "steps", 0, 0, MAX_STEPS, steps));
    if (*steps == 0)
        return bd_fail(BD_E_ARG, "train: steps = 0, expected an integer >= 1"
                       " (leave steps out to train `epochs` epochs)");
    return BD_OK;
}

bd_status bd_train_read(bd_config *cfg, bd_train_opts *opts)
{
    bd_train_opts o = bd_train_defaults();
    int64_t seed;
    BD_TRY(bd_diffusion_read(cfg, &o.diffusion));
    BD_TRY(read_steps(cfg, &o.steps));
    BD_TRY(bd_config_int(cfg, "epochs", o.epochs, 1, MAX_STEPS, &o.epochs));
    BD_TRY(bd_config_int(cfg, "batch", o.batch, 1, MAX_BATCH, &o.batch));
    BD_TRY(read_optimizer(cfg, &o));
    BD_TRY(bd_config_int(cfg, "every", o.every, 1, MAX_STEPS, &o.every));
    BD_TRY(bd_config_int(cfg, "seed", 0, 0, INT64_C(1) << 53, &seed));
    BD_TRY(bd_config_check_unused(cfg, "train"));
    o.seed = (uint64_t)seed;
    *opts = o;
    return BD_OK;
}
