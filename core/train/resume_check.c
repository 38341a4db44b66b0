/* What a resume compares: the settings a checkpoint recorded against the
 * trainer's (bd/session.h, bd_checkpoint_check_settings). A difference in
 * what is learned (the diffusion, the model's config) stops the resume
 * unless it is allowed by name; one in how it is learned (bd.train.*, the
 * model's init seed) is logged. */
#include "bd/session.h"

#include <stdio.h>
#include <string.h>

#include "bd/log.h"

#define CONFIG_PREFIX "bd.arch.config."
#define TEXT 96

typedef struct compare {
    const char        *path;
    const char *const *allow; /* NULL-terminated, or NULL */
} compare;

static bool allowed(const compare *c, const char *name)
{
    for (const char *const *a = c->allow; a && *a; a++)
        if (strcmp(*a, name) == 0)
            return true;
    return false;
}

static const char *num_text(char *buf, double v)
{
    snprintf(buf, TEXT, "%.15g", v);
    return buf;
}

/* A difference in what is learned (`label`, allowed as `name`): an error
 * naming both values, unless allowed (then a warning). */
static bd_status math_differs(const compare *c, const char *name,
                              const char *label, const char *was,
                              const char *now)
{
    if (allowed(c, name)) {
        bd_log_warn("train: resuming from '%s' with %s = %s, the checkpoint's"
                    " %s (allowed by allow_changes)", c->path, label, now, was);
        return BD_OK;
    }
    return bd_fail(BD_E_ARG, "train: resume from '%s': %s is %s in the"
                   " checkpoint and %s now, which changes what the model"
                   " learns; set it back, or allow the change with"
                   " allow_changes = { \"%s\" }", c->path, label, was, now,
                   name);
}

/* ---- the diffusion ----------------------------------------------------------- */

static bd_status compare_name(const compare *c, const char *name,
                              const char *was, const char *now)
{
    char a[TEXT], b[TEXT];
    if (strcmp(was, now) == 0)
        return BD_OK;
    snprintf(a, sizeof a, "'%s'", was);
    snprintf(b, sizeof b, "'%s'", now);
    return math_differs(c, name, name, a, b);
}

static bd_status compare_num(const compare *c, const char *name, double was,
                             double now)
{
    char a[TEXT], b[TEXT];
    return was == now ? BD_OK
         : math_differs(c, name, name, num_text(a, was), num_text(b, now));
}

static bd_status compare_diffusion(const compare *c, const bd_diffusion_spec *was,
                                   const bd_diffusion_spec *now)
{
    BD_TRY(compare_name(c, "schedule", bd_schedule_name(was->schedule),
                        bd_schedule_name(now->schedule)));
    BD_TRY(compare_name(c, "prediction", bd_prediction_name(was->prediction),
                        bd_prediction_name(now->prediction)));
    BD_TRY(compare_num(c, "timesteps", (double)was->timesteps,
                       (double)now->timesteps));
    BD_TRY(compare_num(c, "beta_start", was->beta_start, now->beta_start));
    return compare_num(c, "beta_end", was->beta_end, now->beta_end);
}

/* ---- the model's config -------------------------------------------------------- */

/* The value of key in cfg as text, or "not given (the default)". */
static const char *config_text(const bd_config *cfg, const char *key, char *buf)
{
    for (int i = 0; cfg && i < bd_config_count(cfg); i++) {
        double num;
        const char *str;
        if (strcmp(bd_config_key(cfg, i), key) != 0)
            continue;
        if (bd_config_value(cfg, i, &num, &str))
            return num_text(buf, num);
        snprintf(buf, TEXT, "'%s'", str);
        return buf;
    }
    return "not given (the default)";
}

/* The checkpoint's bd.arch.config.<key> as text, as config_text does. */
static const char *ckpt_config_text(const bd_ckpt *ck, const char *key,
                                    char *buf)
{
    char name[BD_CKPT_NAME_MAX + 1];
    snprintf(name, sizeof name, CONFIG_PREFIX "%s", key);
    const bd_ckpt_kv *kv = bd_ckpt_kv_find(ck, name);
    if (!kv)
        return "not given (the default)";
    if (kv->type == BD_CKPT_F64)
        return num_text(buf, kv->v.f64);
    snprintf(buf, TEXT, kv->type == BD_CKPT_STR ? "'%s'" : "(a %s)",
             kv->type == BD_CKPT_STR ? kv->v.str : "list");
    return buf;
}

/* One config key on either side; the model's init seed is only logged
 * (the checkpoint's weights replace the init). */
static bd_status compare_key(const compare *c, const bd_ckpt *ck,
                             const bd_config *cfg, const char *key)
{
    char a[TEXT], b[TEXT], label[TEXT + 16];
    const char *was = ckpt_config_text(ck, key, a);
    const char *now = config_text(cfg, key, b);
    if (strcmp(was, now) == 0)
        return BD_OK;
    if (strcmp(key, "seed") == 0) {
        bd_log_info("train: resuming from '%s' with the model's init seed %s"
                    " (the checkpoint's: %s): its weights replace the init",
                    c->path, now, was);
        return BD_OK;
    }
    snprintf(label, sizeof label, "the model's %s", key);
    return math_differs(c, key, label, was, now);
}

static bd_status compare_config(const compare *c, const bd_ckpt *ck,
                                const bd_config *cfg)
{
    const size_t lp = strlen(CONFIG_PREFIX);
    for (size_t i = 0; i < bd_ckpt_kv_count(ck); i++) {
        const char *key = bd_ckpt_kv_at(ck, i)->key;
        if (strncmp(key, CONFIG_PREFIX, lp) == 0)
            BD_TRY(compare_key(c, ck, cfg, key + lp));
    }
    for (int i = 0; cfg && i < bd_config_count(cfg); i++) {
        char name[BD_CKPT_NAME_MAX + 1];
        snprintf(name, sizeof name, CONFIG_PREFIX "%s", bd_config_key(cfg, i));
        if (!bd_ckpt_kv_find(ck, name))
            BD_TRY(compare_key(c, ck, cfg, bd_config_key(cfg, i)));
    }
    return BD_OK;
}

/* ---- how it is learned: logged ------------------------------------------------ */

static void log_change(const compare *c, const bd_ckpt *ck, const char *name,
                       double now)
{
    char key[64], a[TEXT], b[TEXT];
    snprintf(key, sizeof key, "bd.train.%s", name);
    const bd_ckpt_kv *kv = bd_ckpt_kv_find(ck, key);
    if (!kv)
        return;
    double was = kv->type == BD_CKPT_F64 ? kv->v.f64
               : kv->type == BD_CKPT_I64 ? (double)kv->v.i64 : (double)kv->v.u64;
    if (was != now)
        bd_log_info("train: resuming from '%s' with %s = %s, the checkpoint's"
                    " run had %s", c->path, name, num_text(b, now),
                    num_text(a, was));
}

static void log_training_changes(const compare *c, const bd_ckpt *ck,
                                 const bd_trainer *tr)
{
    const bd_train_opts *o = bd_trainer_opts(tr);
    log_change(c, ck, "steps", (double)bd_trainer_total(tr));
    log_change(c, ck, "batch", (double)o->batch);
    log_change(c, ck, "lr", o->lr);
    log_change(c, ck, "warmup", (double)o->warmup);
    log_change(c, ck, "weight_decay", o->weight_decay);
    log_change(c, ck, "beta1", o->beta1);
    log_change(c, ck, "beta2", o->beta2);
    log_change(c, ck, "clip", o->clip);
    log_change(c, ck, "ema", o->ema);
    log_change(c, ck, "seed", (double)o->seed);
}

bd_status bd_checkpoint_check_settings(const bd_ckpt *ck, const char *path,
                                       bd_trainer *tr,
                                       const char *const *allow_changes)
{
    const compare c = {.path = path, .allow = allow_changes};
    bd_checkpoint_info info;
    BD_TRY(bd_checkpoint_info_of(ck, path, &info));
    if (info.trained)
        BD_TRY(compare_diffusion(&c, &info.diffusion,
                                 &bd_trainer_opts(tr)->diffusion));
    if (info.rebuilds)
        BD_TRY(compare_config(&c, ck, bd_trainer_model(tr)->config));
    log_training_changes(&c, ck, tr);
    return BD_OK;
}
