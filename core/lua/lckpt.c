/* Checkpoints of models and training runs, a run's checkpoint folder
 * (listing, pruning, temp files of killed writers), and bd.ckpt.
 *
 * A checkpoint (.bdc, bd/ckpt.h) written here holds
 *   tensors  <name>            the model's weights, by parameter name
 *            ema.<name>        the EMA of each weight        } with a
 *            optim.m.<name>    AdamW's first moments          } trainer
 *            optim.v.<name>    AdamW's second moments         }
 *   keys     bd.arch           the denoiser
 *            bd.diffusion.*    schedule, timesteps, beta_start, beta_end,
 *                              prediction: what a sampler must match
 *            bd.step bd.epoch bd.position bd.optim.steps        } with a
 *            bd.rng.seed bd.rng.stream bd.rng.counter (u64),    } trainer
 *            bd.rng.block (i64s: the 4 buffered words, then used)}
 * which is everything bd_trainer_run needs to continue bit-exactly.
 *
 *   bd.ckpt.save(path, model [, {level = 3}])  -> true | nil, msg, stage
 *                                  (rank 0 writes; the other ranks: true)
 *   bd.ckpt.load(path, model [, {ema = false}]) -> { step =, arch = } | nil, msg, stage
 *     load copies the weights (or, with ema = true, the EMA weights) into
 *     the model, whose shapes must match, and the diffusion settings, so
 *     bd.sample uses the ones it was trained with; the model forgets its
 *     last bd.train (its EMA no longer matches the weights).
 *   bd.ckpt.archive_tensor(path.bda, step, name) -> tensor | nil, msg, stage
 *     one tensor of one step of an archive (bdrun ckpt archive). */
#include "bdlua.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bd/ckpt.h"
#include "bd/dist.h"
#include "bd/log.h"
#include "bd/train.h"

#define SCHEDULES   bdl_schedule_names
#define PREDICTIONS bdl_prediction_names

/* prefix + name into buf ("ema." + "down1.conv1.weight"). */
static const char *prefixed(char *buf, size_t len, const char *prefix,
                            const char *name)
{
    snprintf(buf, len, "%s%s", prefix, name);
    return buf;
}

/* Every parameter, or every tensor of a per-parameter list, under prefix. */
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

static bd_tensor *ema_at(const void *o, int i) { return bd_ema_at(o, i); }
static bd_tensor *m_at(const void *o, int i) { return bd_adamw_m(o, i); }
static bd_tensor *v_at(const void *o, int i) { return bd_adamw_v(o, i); }

static bd_status add_diffusion(bd_ckpt *ck, const bd_diffusion_spec *d)
{
    BD_TRY(bd_ckpt_set_str(ck, "bd.diffusion.schedule", SCHEDULES[d->schedule]));
    BD_TRY(bd_ckpt_set_i64(ck, "bd.diffusion.timesteps", d->timesteps));
    BD_TRY(bd_ckpt_set_f64(ck, "bd.diffusion.beta_start", d->beta_start));
    BD_TRY(bd_ckpt_set_f64(ck, "bd.diffusion.beta_end", d->beta_end));
    return bd_ckpt_set_str(ck, "bd.diffusion.prediction",
                           PREDICTIONS[d->prediction]);
}

static bd_status add_trainer(bd_ckpt *ck, const bd_params *p, bd_trainer *tr)
{
    const bd_train_state *st = bd_trainer_state(tr);
    const int64_t block[5] = {st->rng.block[0], st->rng.block[1],
                              st->rng.block[2], st->rng.block[3], st->rng.used};
    BD_TRY(add_diffusion(ck, &bd_trainer_opts(tr)->diffusion));
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

/* On the writer (rank 0) only: the other ranks hold the same weights. */
static bd_status save(const char *path, bd_model *m, bd_trainer *tr, int level)
{
    if (!bd_dist_is_writer())
        return BD_OK;
    bd_ckpt *ck = bd_ckpt_new();
    if (!ck)
        return BD_E_NOMEM;
    bd_status s = bd_ckpt_set_str(ck, "bd.arch", m->arch);
    if (s == BD_OK)
        s = add_tensors(ck, m->params, "", NULL, NULL);
    if (s == BD_OK && tr)
        s = add_trainer(ck, m->params, tr);
    bd_ckpt_save_opts o = bd_ckpt_save_defaults();
    o.level = level;
    if (s == BD_OK)
        s = bd_ckpt_save(ck, path, &o);
    bd_ckpt_free(ck);
    return s;
}

bd_status bdl_ckpt_save(const char *path, bd_model *m, bd_trainer *tr)
{
    return save(path, m, tr, bd_ckpt_save_defaults().level);
}

/* ---- reading ------------------------------------------------------------- */

static bd_status check_arch(const bd_ckpt *ck, const char *path, const bd_model *m)
{
    const char *arch;
    BD_TRY(bd_ckpt_get_str(ck, "bd.arch", &arch));
    if (strcmp(arch, m->arch) != 0)
        return bd_fail(BD_E_ARG, "ckpt '%s': holds a '%s' model, expected '%s'",
                       path, arch, m->arch);
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

static bd_status read_choice(const bd_ckpt *ck, const char *key,
                             const char *const *names, int n, int *out)
{
    const char *v;
    BD_TRY(bd_ckpt_get_str(ck, key, &v));
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return BD_OK;
        }
    return bd_fail(BD_E_FORMAT, "ckpt: %s = '%s', expected %s or %s", key, v,
                   names[0], names[1]);
}

static bd_status read_diffusion(const bd_ckpt *ck, bd_diffusion_spec *d)
{
    int schedule = 0, prediction = 0;
    BD_TRY(read_choice(ck, "bd.diffusion.schedule", SCHEDULES, 2, &schedule));
    BD_TRY(read_choice(ck, "bd.diffusion.prediction", PREDICTIONS, 3, &prediction));
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

/* The loop state is set only after every tensor was read; a failure
 * midway may leave some tensors loaded and others not. */
static bd_status resume(const bd_ckpt *ck, const char *path, bd_model *m,
                        bd_trainer *tr)
{
    BD_TRY(check_arch(ck, path, m));
    bd_train_state st = *bd_trainer_state(tr);
    int64_t optim_steps;
    BD_TRY(read_state(ck, &st, &optim_steps));
    BD_TRY(read_tensors(ck, m->params, "", NULL, NULL));
    if (bd_trainer_ema(tr))
        BD_TRY(read_tensors(ck, m->params, "ema.", ema_at, bd_trainer_ema(tr)));
    BD_TRY(read_tensors(ck, m->params, "optim.m.", m_at, bd_trainer_adamw(tr)));
    BD_TRY(read_tensors(ck, m->params, "optim.v.", v_at, bd_trainer_adamw(tr)));
    bd_adamw_set_steps(bd_trainer_adamw(tr), optim_steps);
    *bd_trainer_state(tr) = st;
    return BD_OK;
}

bd_status bdl_ckpt_resume(const char *path, bd_model *m, bd_trainer *tr)
{
    bd_ckpt *ck = NULL;
    BD_TRY(bd_ckpt_load(path, &ck));
    bd_status s = resume(ck, path, m, tr);
    bd_ckpt_free(ck);
    return s;
}

/* ---- a run's checkpoints ------------------------------------------------- */

void bdl_ckpt_step_path(char *buf, size_t len, const char *dir, int64_t step)
{
    snprintf(buf, len, "%s/step_%lld.bdc", dir, (long long)step);
}

/* The digits of `name` after `prefix` up to `suffix`, as a number >= 0;
 * -1 when the name is not prefix<digits>suffix (1 to 18 digits). */
static int64_t number_in(const char *name, const char *prefix,
                         const char *suffix)
{
    size_t lp = strlen(prefix), ls = strlen(suffix), len = strlen(name);
    if (len <= lp + ls || len - lp - ls > 18 || strncmp(name, prefix, lp) != 0
        || strcmp(name + len - ls, suffix) != 0)
        return -1;
    int64_t v = 0;
    for (size_t i = lp; i < len - ls; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        v = 10 * v + (name[i] - '0');
    }
    return v;
}

static int by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

bd_status bdl_ckpt_steps(const char *dir, int64_t **steps, size_t *n)
{
    *steps = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? BD_OK
             : bd_fail(BD_E_IO, "ckpt: cannot list '%s': %s", dir, strerror(errno));
    size_t cap = 0;
    bd_status s = BD_OK;
    for (struct dirent *e; s == BD_OK && (e = readdir(d));) {
        int64_t step = number_in(e->d_name, "step_", ".bdc");
        if (step < 0)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 32;
            int64_t *grown = realloc(*steps, cap * sizeof *grown);
            if (!grown) {
                s = bd_fail(BD_E_NOMEM, "ckpt: out of memory listing '%s'", dir);
                break;
            }
            *steps = grown;
        }
        (*steps)[(*n)++] = step;
    }
    closedir(d);
    if (s != BD_OK) {
        free(*steps);
        *steps = NULL;
        *n = 0;
        return s;
    }
    if (*n)
        qsort(*steps, *n, sizeof **steps, by_value);
    return BD_OK;
}

/* The pid of "<file>.bdc.tmp-<pid>" (a checkpoint being written), or -1. */
static long writer_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot - name < 5 || strncmp(dot - 4, ".bdc", 4) != 0)
        return -1;
    return (long)number_in(dot, ".tmp-", "");
}

static bool writer_gone(long pid)
{
    return pid == (long)getpid() || (pid > 0 && kill((pid_t)pid, 0) != 0
                                     && errno == ESRCH);
}

bd_status bdl_ckpt_clean(const char *dir)
{
    if (!bd_dist_is_writer())
        return BD_OK;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? BD_OK
             : bd_fail(BD_E_IO, "ckpt: cannot list '%s': %s", dir, strerror(errno));
    bd_status s = BD_OK;
    for (struct dirent *e; s == BD_OK && (e = readdir(d));) {
        long pid = writer_of(e->d_name);
        if (pid < 0 || !writer_gone(pid))
            continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0 || errno == ENOENT)
            bd_log_warn("ckpt: removed '%s', left unfinished by process %ld",
                        path, pid);
        else
            s = bd_fail(BD_E_IO, "ckpt: cannot remove '%s': %s", path,
                        strerror(errno));
    }
    closedir(d);
    return s;
}

bd_status bdl_ckpt_prune(const char *dir, int64_t upto, int64_t keep,
                         bdl_pinned_fn pinned, void *ud)
{
    if (!bd_dist_is_writer())
        return BD_OK;
    int64_t *steps;
    size_t n;
    BD_TRY(bdl_ckpt_steps(dir, &steps, &n));
    bd_status s = BD_OK;
    int64_t newer = 0; /* checkpoints up to `upto` seen, newest first */
    for (size_t i = n; s == BD_OK && i-- > 0;) {
        bool pin = false;
        if (steps[i] > upto || keep == 0 || newer++ < keep)
            continue;
        if (pinned)
            s = pinned(ud, steps[i], &pin);
        if (s != BD_OK || pin)
            continue;
        char path[4400];
        bdl_ckpt_step_path(path, sizeof path, dir, steps[i]);
        if (unlink(path) != 0 && errno != ENOENT)
            s = bd_fail(BD_E_IO, "ckpt: cannot remove the old checkpoint '%s':"
                        " %s", path, strerror(errno));
    }
    free(steps);
    return s;
}

/* ---- bd.ckpt ------------------------------------------------------------- */

static const char *stage_of(bd_status s)
{
    return s == BD_E_IO ? "io" : s == BD_E_FORMAT ? "format" : "ckpt";
}

static int ckpt_save(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    bd_model *m = bdl_check_model(L, 2)->m;
    lua_Integer level = bd_ckpt_save_defaults().level;
    if (lua_istable(L, 3) && lua_getfield(L, 3, "level") != LUA_TNIL)
        level = luaL_checkinteger(L, -1);
    bd_status s = save(path, m, bdl_model_trainer(L, 2), (int)level);
    if (s == BD_E_ARG)
        return bdl_raise_status(L, s);
    if (s != BD_OK)
        return bdl_fail(L, stage_of(s));
    lua_pushboolean(L, 1);
    return 1;
}

/* Weights (or EMA weights) and the diffusion settings into the model. */
static bd_status load_into(const bd_ckpt *ck, const char *path, model_box *b,
                           bool ema, int64_t *step)
{
    BD_TRY(check_arch(ck, path, b->m));
    bd_diffusion_spec d = bd_diffusion_defaults();
    bool trained = bd_ckpt_kv_find(ck, "bd.diffusion.schedule") != NULL;
    if (trained)
        BD_TRY(read_diffusion(ck, &d));
    *step = 0;
    if (bd_ckpt_kv_find(ck, "bd.step"))
        BD_TRY(bd_ckpt_get_i64(ck, "bd.step", step));
    BD_TRY(read_tensors(ck, b->m->params, ema ? "ema." : "", NULL, NULL));
    b->trained = trained;
    b->diffusion = d;
    return BD_OK;
}

static int ckpt_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    model_box *b = bdl_check_model(L, 2);
    bool ema = lua_istable(L, 3) && lua_getfield(L, 3, "ema") != LUA_TNIL
               && lua_toboolean(L, -1);
    bd_ckpt *ck = NULL;
    bd_status s = bd_ckpt_load(path, &ck);
    int64_t step = 0;
    if (s == BD_OK)
        s = load_into(ck, path, b, ema, &step);
    bd_ckpt_free(ck);
    if (s != BD_OK)
        return bdl_fail(L, stage_of(s));
    /* the weights have another history now: forget the last training */
    b->ema = NULL;
    lua_pushnil(L);
    lua_setiuservalue(L, 2, 1);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, step);
    lua_setfield(L, -2, "step");
    lua_pushstring(L, b->m->arch);
    lua_setfield(L, -2, "arch");
    return 1;
}

/* bd.ckpt.archive_tensor(path.bda, step, name) -> tensor | nil, msg, stage:
 * one tensor of one step straight from an archive, decoding only its chain. */
static int ckpt_archive_tensor(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer step = luaL_checkinteger(L, 2);
    const char *name = luaL_checkstring(L, 3);
    luaL_argcheck(L, step >= 0, 2, "a step is >= 0");
    bd_tensor **slot = bdl_new_tensor_slot(L);
    bd_status s = bd_archive_read_tensor(path, (uint64_t)step, name, slot);
    if (s != BD_OK)
        return bdl_fail(L, stage_of(s));
    bdl_account(L, (size_t)(*slot)->numel * sizeof(float));
    return 1;
}

void bdl_open_ckpt(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"save", ckpt_save}, {"load", ckpt_load},
        {"archive_tensor", ckpt_archive_tensor}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "ckpt");
}
