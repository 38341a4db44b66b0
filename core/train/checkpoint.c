/* The checkpoint of a model and of a training run: what bd_checkpoint_save
 * writes and the readers that rebuild it (the schema is in bd/session.h). */
#include "bd/session.h"

#include <stdio.h>
#include <string.h>

#include "bd/dist.h"
#include "bd/registry.h"

#define CONFIG_PREFIX "bd.arch.config."

/* prefix + name into buf ("ema." + "down1.conv1.weight"). */
static const char *prefixed(char *buf, size_t len, const char *prefix,
                            const char *name)
{
    snprintf(buf, len, "%s%s", prefix, name);
    return buf;
}

static bd_tensor *ema_at(const void *o, int i) { return bd_ema_at(o, i); }
static bd_tensor *m_at(const void *o, int i) { return bd_adamw_m(o, i); }
static bd_tensor *v_at(const void *o, int i) { return bd_adamw_v(o, i); }

/* Every parameter (at NULL), or every tensor of a per-parameter list,
 * under prefix. */
static bd_status add_tensors(bd_ckpt *ck, const bd_params *p, const char *prefix,
                             bd_tensor *(*at)(const void *, int), const void *owner)
{
    char name[BD_CKPT_NAME_MAX + 1];
    for (int i = 0; i < bd_params_count(p); i++)
        BD_TRY(bd_ckpt_add_tensor(ck, prefixed(name, sizeof name, prefix,
                                               bd_params_name(p, i)),
                                  at ? at(owner, i) : bd_params_at(p, i)));
    return BD_OK;
}

/* ---- writing --------------------------------------------------------------- */

static bd_status add_model(bd_ckpt *ck, const bd_model *m)
{
    char key[BD_CKPT_NAME_MAX + 1];
    BD_TRY(bd_ckpt_set_str(ck, "bd.arch", m->arch));
    for (int i = 0; m->config && i < bd_config_count(m->config); i++) {
        double num;
        const char *str;
        prefixed(key, sizeof key, CONFIG_PREFIX, bd_config_key(m->config, i));
        BD_TRY(bd_config_value(m->config, i, &num, &str)
                   ? bd_ckpt_set_f64(ck, key, num) : bd_ckpt_set_str(ck, key, str));
    }
    return add_tensors(ck, m->params, "", NULL, NULL);
}

static bd_status add_diffusion(bd_ckpt *ck, const bd_diffusion_spec *d)
{
    BD_TRY(bd_ckpt_set_str(ck, "bd.diffusion.schedule",
                           bd_schedule_name(d->schedule)));
    BD_TRY(bd_ckpt_set_i64(ck, "bd.diffusion.timesteps", d->timesteps));
    BD_TRY(bd_ckpt_set_f64(ck, "bd.diffusion.beta_start", d->beta_start));
    BD_TRY(bd_ckpt_set_f64(ck, "bd.diffusion.beta_end", d->beta_end));
    return bd_ckpt_set_str(ck, "bd.diffusion.prediction",
                           bd_prediction_name(d->prediction));
}

/* The settings a resume compares with its own (bd.train.*). */
static bd_status add_settings(bd_ckpt *ck, const bd_trainer *tr)
{
    const bd_train_opts *o = bd_trainer_opts(tr);
    BD_TRY(bd_ckpt_set_i64(ck, "bd.train.steps", bd_trainer_total(tr)));
    BD_TRY(bd_ckpt_set_i64(ck, "bd.train.batch", o->batch));
    BD_TRY(bd_ckpt_set_f64(ck, "bd.train.lr", o->lr));
    BD_TRY(bd_ckpt_set_i64(ck, "bd.train.warmup", o->warmup));
    BD_TRY(bd_ckpt_set_f64(ck, "bd.train.weight_decay", o->weight_decay));
    BD_TRY(bd_ckpt_set_f64(ck, "bd.train.beta1", o->beta1));
    BD_TRY(bd_ckpt_set_f64(ck, "bd.train.beta2", o->beta2));
    BD_TRY(bd_ckpt_set_f64(ck, "bd.train.clip", o->clip));
    BD_TRY(bd_ckpt_set_f64(ck, "bd.train.ema", o->ema));
    return bd_ckpt_set_u64(ck, "bd.train.seed", o->seed);
}

static bd_status add_trainer(bd_ckpt *ck, const bd_params *p, bd_trainer *tr)
{
    const bd_train_state *st = bd_trainer_state(tr);
    BD_TRY(add_settings(ck, tr));
    const int64_t block[5] = {st->rng.block[0], st->rng.block[1],
                              st->rng.block[2], st->rng.block[3], st->rng.used};
    BD_TRY(bd_ckpt_set_i64(ck, "bd.step", st->step));
    BD_TRY(bd_ckpt_set_i64(ck, "bd.epoch", st->epoch));
    BD_TRY(bd_ckpt_set_i64(ck, "bd.position", st->position));
    BD_TRY(bd_ckpt_set_u64(ck, "bd.rng.seed", st->rng.seed));
    BD_TRY(bd_ckpt_set_u64(ck, "bd.rng.stream", st->rng.stream));
    BD_TRY(bd_ckpt_set_u64(ck, "bd.rng.counter", st->rng.counter));
    BD_TRY(bd_ckpt_set_i64s(ck, "bd.rng.block", block, 5));
    BD_TRY(bd_ckpt_set_i64(ck, "bd.optim.steps", bd_adamw_steps(bd_trainer_adamw(tr))));
    if (bd_trainer_ema(tr))
        BD_TRY(add_tensors(ck, p, "ema.", ema_at, bd_trainer_ema(tr)));
    BD_TRY(add_tensors(ck, p, "optim.m.", m_at, bd_trainer_adamw(tr)));
    return add_tensors(ck, p, "optim.v.", v_at, bd_trainer_adamw(tr));
}

static bd_status fill(bd_ckpt *ck, const bd_model *m,
                      const bd_diffusion_spec *diffusion, bd_trainer *tr)
{
    if (tr)
        diffusion = &bd_trainer_opts(tr)->diffusion;
    BD_TRY(bd_ckpt_set_str(ck, "bd.kind", tr ? "training" : "model"));
    BD_TRY(add_model(ck, m));
    if (diffusion)
        BD_TRY(add_diffusion(ck, diffusion));
    return tr ? add_trainer(ck, m->params, tr) : BD_OK;
}

bd_status bd_checkpoint_save(const char *path, const bd_model *m,
                             const bd_diffusion_spec *diffusion,
                             bd_trainer *tr, int level)
{
    if (!bd_dist_is_writer())
        return BD_OK;
    bd_ckpt *ck = bd_ckpt_new();
    if (!ck)
        return BD_E_NOMEM;
    bd_status s = fill(ck, m, diffusion, tr);
    bd_ckpt_save_opts o = bd_ckpt_save_defaults();
    o.level = level;
    if (s == BD_OK)
        s = bd_ckpt_save(ck, path, &o);
    bd_ckpt_free(ck);
    return s;
}

/* ---- reading ----------------------------------------------------------------- */

static bd_status check_arch(const bd_ckpt *ck, const char *path, const bd_model *m)
{
    const char *arch;
    BD_TRY(bd_ckpt_get_str(ck, "bd.arch", &arch));
    if (strcmp(arch, m->arch) != 0)
        return bd_fail(BD_E_ARG, "ckpt '%s': holds a '%s' model, expected '%s'",
                       path, arch, m->arch);
    return BD_OK;
}

/* Every parameter's tensor under prefix is in the checkpoint, float32, of
 * the parameter's shape: checked before anything is written. */
static bd_status check_tensors(const bd_ckpt *ck, const char *path,
                               const bd_params *p, const char *prefix)
{
    char name[BD_CKPT_NAME_MAX + 1], shape[64];
    for (int i = 0; i < bd_params_count(p); i++) {
        const bd_tensor *want = bd_params_at(p, i);
        const bd_ckpt_tensor *t = bd_ckpt_tensor_find(
            ck, prefixed(name, sizeof name, prefix, bd_params_name(p, i)));
        if (!t)
            return bd_fail(BD_E_ARG, "ckpt '%s': has no tensor '%s' (the"
                           " model's parameter %d of %d); nothing was loaded",
                           path, name, i + 1, bd_params_count(p));
        bool same = t->dtype == BD_CKPT_F32 && t->ndim == want->ndim;
        for (int d = 0; same && d < t->ndim; d++)
            same = t->dims[d] == want->shape[d];
        if (!same) {
            char found[160] = "(";
            for (int d = 0; d < t->ndim; d++)
                snprintf(found + strlen(found), sizeof found - strlen(found),
                         "%s%lld", d ? ", " : "", (long long)t->dims[d]);
            return bd_fail(BD_E_ARG, "ckpt '%s': tensor '%s' is %s %s), the"
                           " model's is f32 %s: another architecture or"
                           " config; nothing was loaded", path, name,
                           t->dtype == BD_CKPT_F32 ? "f32" : "u8", found,
                           bd_shape_str(want, shape, sizeof shape));
        }
    }
    return BD_OK;
}

static bd_status read_tensors(const bd_ckpt *ck, const bd_params *p,
                              const char *prefix,
                              bd_tensor *(*at)(const void *, int),
                              const void *owner)
{
    char name[BD_CKPT_NAME_MAX + 1];
    for (int i = 0; i < bd_params_count(p); i++)
        BD_TRY(bd_ckpt_read_into(ck, prefixed(name, sizeof name, prefix,
                                              bd_params_name(p, i)),
                                 at ? at(owner, i) : bd_params_at(p, i)));
    return BD_OK;
}

/* The index of key's value in the NULL-terminated names. */
static bd_status read_choice(const bd_ckpt *ck, const char *path,
                             const char *key, const char *const *names,
                             int *out)
{
    const char *v;
    BD_TRY(bd_ckpt_get_str(ck, key, &v));
    if ((*out = bd_name_find(names, v)) >= 0)
        return BD_OK;
    char allowed[128];
    return bd_fail(BD_E_FORMAT, "ckpt '%s': %s = '%s', expected one of: %s",
                   path, key, v, bd_names_join(names, allowed, sizeof allowed));
}

static bd_status read_diffusion(const bd_ckpt *ck, const char *path,
                                bd_diffusion_spec *d)
{
    int schedule = 0, prediction = 0;
    BD_TRY(read_choice(ck, path, "bd.diffusion.schedule", bd_schedule_names,
                       &schedule));
    BD_TRY(read_choice(ck, path, "bd.diffusion.prediction",
                       bd_prediction_names, &prediction));
    BD_TRY(bd_ckpt_get_i64(ck, "bd.diffusion.timesteps", &d->timesteps));
    BD_TRY(bd_ckpt_get_f64(ck, "bd.diffusion.beta_start", &d->beta_start));
    BD_TRY(bd_ckpt_get_f64(ck, "bd.diffusion.beta_end", &d->beta_end));
    d->schedule = (bd_schedule_kind)schedule;
    d->prediction = (bd_prediction)prediction;
    return BD_OK;
}

static bd_status read_state(const bd_ckpt *ck, bd_train_state *st,
                            int64_t *optim_steps)
{
    const int64_t *block;
    size_t n;
    BD_TRY(bd_ckpt_get_i64(ck, "bd.step", &st->step));
    BD_TRY(bd_ckpt_get_i64(ck, "bd.epoch", &st->epoch));
    BD_TRY(bd_ckpt_get_i64(ck, "bd.position", &st->position));
    BD_TRY(bd_ckpt_get_u64(ck, "bd.rng.seed", &st->rng.seed));
    BD_TRY(bd_ckpt_get_u64(ck, "bd.rng.stream", &st->rng.stream));
    BD_TRY(bd_ckpt_get_u64(ck, "bd.rng.counter", &st->rng.counter));
    BD_TRY(bd_ckpt_get_i64s(ck, "bd.rng.block", &block, &n));
    BD_TRY(bd_ckpt_get_i64(ck, "bd.optim.steps", optim_steps));
    if (n != 5 || block[4] < 0 || block[4] > 4)
        return bd_fail(BD_E_FORMAT, "ckpt: bd.rng.block has %zu values (used"
                       " %lld), expected 5 (used 0 to 4)", n,
                       (long long)(n == 5 ? block[4] : -1));
    for (int i = 0; i < 4; i++)
        st->rng.block[i] = (uint32_t)block[i];
    st->rng.used = (uint32_t)block[4];
    return BD_OK;
}

/* Every tensor a resume writes, checked first. */
static bd_status check_resume_tensors(const bd_ckpt *ck, const char *path,
                                      bd_trainer *tr)
{
    const bd_params *p = bd_trainer_model(tr)->params;
    BD_TRY(check_tensors(ck, path, p, ""));
    if (bd_trainer_ema(tr))
        BD_TRY(check_tensors(ck, path, p, "ema."));
    BD_TRY(check_tensors(ck, path, p, "optim.m."));
    return check_tensors(ck, path, p, "optim.v.");
}

static bd_status resume(const bd_ckpt *ck, const char *path, bd_trainer *tr,
                        const char *const *allow)
{
    if (bd_ckpt_is_analysis(ck))
        return bd_fail(BD_E_ARG, "ckpt '%s': an analysis checkpoint (bd.kind"
                       " \"analysis\"): its archive kept the weights, EMA and"
                       " loop state but not the optimizer state, so it loads for"
                       " sampling and analysis but cannot resume training;"
                       " extract a key step (marked in `bdrun ckpt ls`) to"
                       " resume", path);
    bd_model *m = bd_trainer_model(tr);
    BD_TRY(check_arch(ck, path, m));
    bd_train_state st = *bd_trainer_state(tr);
    int64_t optim_steps;
    BD_TRY(read_state(ck, &st, &optim_steps));
    BD_TRY(bd_checkpoint_check_settings(ck, path, tr, allow));
    BD_TRY(check_resume_tensors(ck, path, tr));
    BD_TRY(read_tensors(ck, m->params, "", NULL, NULL));
    if (bd_trainer_ema(tr))
        BD_TRY(read_tensors(ck, m->params, "ema.", ema_at, bd_trainer_ema(tr)));
    BD_TRY(read_tensors(ck, m->params, "optim.m.", m_at, bd_trainer_adamw(tr)));
    BD_TRY(read_tensors(ck, m->params, "optim.v.", v_at, bd_trainer_adamw(tr)));
    bd_adamw_set_steps(bd_trainer_adamw(tr), optim_steps);
    *bd_trainer_state(tr) = st;
    return BD_OK;
}

bd_status bd_checkpoint_resume(const char *path, bd_trainer *tr,
                               const char *const *allow_changes)
{
    bd_ckpt *ck = NULL;
    BD_TRY(bd_ckpt_load(path, &ck));
    bd_status s = resume(ck, path, tr, allow_changes);
    bd_ckpt_free(ck);
    return s;
}

bd_status bd_checkpoint_info_of(const bd_ckpt *ck, const char *path,
                                bd_checkpoint_info *info)
{
    bd_checkpoint_info in = {.diffusion = bd_diffusion_defaults()};
    BD_TRY(bd_ckpt_get_str(ck, "bd.arch", &in.arch));
    in.rebuilds = bd_ckpt_kv_find(ck, "bd.kind") != NULL;
    in.trained = bd_ckpt_kv_find(ck, "bd.diffusion.schedule") != NULL;
    if (in.trained)
        BD_TRY(read_diffusion(ck, path, &in.diffusion));
    if (bd_ckpt_kv_find(ck, "bd.step"))
        BD_TRY(bd_ckpt_get_i64(ck, "bd.step", &in.step));
    for (size_t i = 0; i < bd_ckpt_tensor_count(ck) && !in.has_ema; i++)
        in.has_ema = strncmp(bd_ckpt_tensor_at(ck, i)->name, "ema.", 4) == 0;
    *info = in;
    return BD_OK;
}

bd_status bd_checkpoint_read_weights(const bd_ckpt *ck, const char *path,
                                     bd_model *m, bool ema)
{
    BD_TRY(check_arch(ck, path, m));
    BD_TRY(check_tensors(ck, path, m->params, ema ? "ema." : ""));
    return read_tensors(ck, m->params, ema ? "ema." : "", NULL, NULL);
}

/* The bd.arch.config.* keys as a config. */
static bd_status read_config(const bd_ckpt *ck, bd_config *cfg)
{
    const size_t lp = strlen(CONFIG_PREFIX);
    for (size_t i = 0; i < bd_ckpt_kv_count(ck); i++) {
        const bd_ckpt_kv *kv = bd_ckpt_kv_at(ck, i);
        if (strncmp(kv->key, CONFIG_PREFIX, lp) != 0)
            continue;
        if (kv->type == BD_CKPT_F64)
            BD_TRY(bd_config_set_num(cfg, kv->key + lp, kv->v.f64));
        else if (kv->type == BD_CKPT_STR)
            BD_TRY(bd_config_set_str(cfg, kv->key + lp, kv->v.str));
        else
            return bd_fail(BD_E_FORMAT, "ckpt: %s is a %s, expected a number"
                           " (f64) or a string", kv->key,
                           kv->type == BD_CKPT_I64 ? "i64" : "list or u64");
    }
    return BD_OK;
}

bd_status bd_checkpoint_new_model(const bd_ckpt *ck, const char *path,
                                  bd_model **out)
{
    const char *arch;
    BD_TRY(bd_ckpt_get_str(ck, "bd.arch", &arch));
    if (!bd_ckpt_kv_find(ck, "bd.kind"))
        return bd_fail(BD_E_FORMAT, "ckpt '%s': has no bd.kind, so no record of"
                       " its model's config (written by an older bd, or imported"
                       " from a file without bd's metadata); load it into a"
                       " bd.model(\"%s\", ...) made as it was",
                       path, arch);
    bd_config *cfg = bd_config_new();
    if (!cfg)
        return BD_E_NOMEM;
    bd_status s = read_config(ck, cfg);
    if (s == BD_OK)
        s = bd_model_create(arch, cfg, 0, out);
    bd_config_free(cfg);
    return s;
}
