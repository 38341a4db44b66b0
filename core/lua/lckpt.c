/* bd.ckpt: checkpoints of models and of training runs (the schema and the
 * run's folder are the core's: bd/session.h, bd/ckpt.h).
 *
 *   bd.ckpt.save(path, model [, {level = 3}])  -> true | nil, msg, stage
 *     the weights, the architecture and its config, the diffusion settings
 *     when known and, after bd.train, everything to resume it
 *     (rank 0 writes; the other ranks: true)
 *   bd.ckpt.load(path, model [, {ema = false, step =}]) -> { step =, arch = }
 *     load copies the raw weights (with ema = true, the EMA weights) into
 *     the model and the diffusion settings, so bd.sample uses the ones it
 *     was trained with; the model forgets its last bd.train (its EMA no
 *     longer matches the weights). All or nothing: every tensor's name,
 *     dtype and shape is checked first; on any failure it raises, naming
 *     the file, and the model is as it was.
 *   bd.ckpt.load_model(path [, {ema = <when it has one>, step =}])
 *       -> model, { step =, arch = }      (raises on failure)
 *     a new model of the checkpoint's architecture and config holding its
 *     EMA weights when it has them, else its raw weights (ema = false: the
 *     raw ones), and its diffusion settings: bd.sample(model, ...) draws
 *     what the model that wrote it drew.
 *   With step = N, path is an archive (.bda) and both read its step N, as
 *   bdrun ckpt extract rebuilds it (in memory).
 *   An option these do not take is an error.
 *   bd.ckpt.path(run | dir, step) -> "<dir>/step_<N>.bdc" (run: <run>/ckpt)
 *   bd.ckpt.list(run | dir) -> { { step =, path = }, ... } by step
 *                              (a missing folder: {}) | nil, msg, stage
 *   bd.ckpt.archive(run | run folder, out.bda [, {level = 9, key_every = 20,
 *                   optimizer = "all" | "keys"}]) -> { entries =, bytes = }
 *                                                   | nil, msg, stage
 *     packs the run's ckpt/step_<N>.bdc files into one archive, as bdrun
 *     ckpt archive (optimizer = "keys": an analysis archive); the files stay
 *   bd.ckpt.archive_list(path.bda) -> { { step =, key =, analysis =,
 *                                         file_bytes =, stored_bytes = }, ... }
 *                                     | nil, msg, stage
 *   bd.ckpt.archive_verify(path.bda) -> entries | nil, msg, stage
 *     every entry decoded and checked against the CRC of the checkpoint it
 *     rebuilds (bdrun ckpt verify); msg names the first bad entry
 *   bd.ckpt.archive_tensor(path.bda, step, name) -> tensor | nil, msg, stage
 *     one tensor of one step of an archive (bdrun ckpt archive). */
#include "bdlua.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "bd/run.h"
#include "bd/session.h"

static const char *stage_of(bd_status s)
{
    return s == BD_E_IO ? "io" : s == BD_E_FORMAT ? "format" : "ckpt";
}

/* The one option of the table at `opts` (nil: none), an integer in
 * [lo, hi] (a boolean is 0 or 1); any other key is a configuration error
 * naming who refused it. */
static int64_t only_option(lua_State *L, int opts, const char *who,
                           const char *key, int64_t dflt, int64_t lo, int64_t hi)
{
    bd_config *cfg = bdl_check_config(L, opts, who, NULL);
    int64_t v;
    bd_status s = bd_config_int(cfg, key, dflt, lo, hi, &v);
    if (s == BD_OK)
        s = bd_config_check_unused(cfg, who);
    if (s != BD_OK)
        bdl_raise_status(L, s);
    lua_pop(L, 1);
    return v;
}

static int ckpt_save(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    model_box *b = bdl_check_model(L, 2);
    lua_settop(L, 3);
    lua_Integer level = only_option(L, 3, "ckpt.save", "level",
                                    bd_ckpt_save_defaults().level, 0, 19);
    bd_status s = bd_checkpoint_save(path, b->m, b->trained ? &b->diffusion : NULL,
                                     bdl_model_trainer(L, 2), (int)level);
    if (s == BD_E_ARG)
        return bdl_raise_status(L, s);
    if (s != BD_OK)
        return bdl_fail(L, stage_of(s));
    lua_pushboolean(L, 1);
    return 1;
}

/* The checkpoint's (EMA) weights and diffusion settings into the model
 * box; the model forgets its last training. */
static bd_status load_into(const bd_ckpt *ck, const char *path, model_box *b,
                           bool ema, const bd_checkpoint_info *info)
{
    BD_TRY(bd_checkpoint_read_weights(ck, path, b->m, ema));
    b->ema = NULL;
    b->trained = info->trained;
    b->diffusion = info->diffusion;
    return BD_OK;
}

/* { step =, arch = } */
static void push_info(lua_State *L, const bd_checkpoint_info *info,
                      const bd_model *m)
{
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, info->step);
    lua_setfield(L, -2, "step");
    lua_pushstring(L, m->arch);
    lua_setfield(L, -2, "arch");
}

/* The checkpoint at path, boxed on the top (freed with the box). */
static bd_ckpt **push_ckpt_slot(lua_State *L);

/* The integer option `key` in [lo, hi], or -1 when it is not given. */
static bd_status optional_int(bd_config *cfg, const char *key, int64_t lo,
                              int64_t hi, int64_t *v)
{
    *v = -1;
    if (bd_config_has(cfg, key))
        return bd_config_int(cfg, key, lo, lo, hi, v);
    bd_config_allow(cfg, key);
    return BD_OK;
}

/* The options of load and load_model at `opts`: ema (-1 when not given)
 * and step (-1 when not given: path is a checkpoint, not an archive). */
static void load_options(lua_State *L, int opts, const char *who, int *ema,
                         int64_t *step)
{
    bd_config *cfg = bdl_check_config(L, opts, who, NULL);
    int64_t e;
    bd_status s = optional_int(cfg, "ema", 0, 1, &e);
    if (s == BD_OK)
        s = optional_int(cfg, "step", 0, INT64_MAX, step);
    if (s == BD_OK)
        s = bd_config_check_unused(cfg, who);
    if (s != BD_OK)
        bdl_raise_status(L, s);
    lua_pop(L, 1);
    *ema = (int)e;
}

/* The checkpoint file at path (step < 0) or step `step` of the archive at
 * path, into the box on the top; *name (on the stack) names it in messages.
 * An archive read without a step says how to read it. */
static bd_status read_source(lua_State *L, const char *path, int64_t step,
                             bd_ckpt **ck, const char **name)
{
    if (step >= 0) {
        *name = lua_pushfstring(L, "%s (step %I)", path, (lua_Integer)step);
        lua_insert(L, -2);  /* under the checkpoint's box */
        return bd_archive_load(path, (uint64_t)step, *name, ck);
    }
    *name = path;
    bd_status s = bd_ckpt_load(path, ck);
    bd_archive *a;
    if (s == BD_E_FORMAT && bd_archive_open(path, &a) == BD_OK) {
        bd_archive_close(a);
        return bd_fail(BD_E_ARG, "ckpt '%s' is an archive, not a checkpoint:"
                       " pass {step = N} to read one of its steps"
                       " (bd.ckpt.archive_list lists them)", path);
    }
    return s;
}

static int ckpt_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1), *name;
    model_box *b = bdl_check_model(L, 2);
    lua_settop(L, 3);
    int ema;
    int64_t step;
    load_options(L, 3, "ckpt.load", &ema, &step);
    bd_ckpt **ck = push_ckpt_slot(L);
    bd_checkpoint_info info;
    bd_status s = read_source(L, path, step, ck, &name);
    if (s == BD_OK)
        s = bd_checkpoint_info_of(*ck, name, &info);
    if (s == BD_OK)
        s = load_into(*ck, name, b, ema == 1, &info);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    lua_pushnil(L);
    lua_setiuservalue(L, 2, 1); /* drop the last training's trainer */
    push_info(L, &info, b->m);
    return 1;
}

static int ckpt_load_model(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1), *name;
    lua_settop(L, 2);
    int ema;
    int64_t step;
    load_options(L, 2, "ckpt.load_model", &ema, &step);
    bd_ckpt **ck = push_ckpt_slot(L);
    bd_checkpoint_info info;
    bd_status s = read_source(L, path, step, ck, &name);
    if (s == BD_OK)
        s = bd_checkpoint_info_of(*ck, name, &info);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    model_box *b = bdl_push_model(L);
    s = bd_checkpoint_new_model(*ck, name, &b->m);
    if (s == BD_OK)
        s = load_into(*ck, name, b, ema < 0 ? info.has_ema : ema == 1, &info);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    bdl_account(L, (size_t)bd_params_numel(b->m->params) * sizeof(float) * 2);
    push_info(L, &info, b->m);
    return 2;
}

/* ---- a run's checkpoint folder ------------------------------------------------- */

/* The folder at arg: a run's <dir>/ckpt, or the string itself. */
static const char *check_folder(lua_State *L, int arg)
{
    if (lua_type(L, arg) == LUA_TSTRING)
        return lua_tostring(L, arg);
    run_box *r = bdl_check_run(L, arg);
    return lua_pushfstring(L, "%s/ckpt", bd_run_dir(r->run));
}

static int ckpt_path(lua_State *L)
{
    const char *dir = check_folder(L, 1);
    lua_Integer step = luaL_checkinteger(L, 2);
    luaL_argcheck(L, step >= 0, 2, "a step is >= 0");
    char path[4400];
    if (bd_ckpt_step_path(path, sizeof path, dir, (uint64_t)step) != BD_OK)
        return bdl_raise(L);
    lua_pushstring(L, path);
    return 1;
}

static int ckpt_list(lua_State *L)
{
    const char *dir = check_folder(L, 1);
    struct stat st;
    if (stat(dir, &st) != 0 && errno == ENOENT) {
        lua_newtable(L);
        return 1;
    }
    bd_ckpt_step *steps;
    size_t n;
    if (bd_ckpt_list_steps(dir, &steps, &n) != BD_OK)
        return bdl_fail(L, "io");
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, (lua_Integer)steps[i].step);
        lua_setfield(L, -2, "step");
        lua_pushstring(L, steps[i].path);
        lua_setfield(L, -2, "path");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    bd_ckpt_steps_free(steps, n);
    return 1;
}

/* ---- archives ------------------------------------------------------------------- */

/* The options of bd.ckpt.archive at `opts`. */
static bd_archive_opts archive_options(lua_State *L, int opts)
{
    static const char *const OPTIMIZER[] = {"all", "keys", NULL};
    bd_archive_opts o = bd_archive_defaults();
    bd_config *cfg = bdl_check_config(L, opts, "ckpt.archive", NULL);
    int64_t level, key_every;
    int keys;
    bd_status s = bd_config_int(cfg, "level", o.level, 1, 19, &level);
    if (s == BD_OK)
        s = bd_config_int(cfg, "key_every", o.key_every, 1, 1 << 30, &key_every);
    if (s == BD_OK)
        s = bd_config_choice(cfg, "optimizer", "all", OPTIMIZER, &keys);
    if (s == BD_OK)
        s = bd_config_check_unused(cfg, "ckpt.archive");
    if (s != BD_OK)
        bdl_raise_status(L, s);
    lua_pop(L, 1);
    o.level = (int)level;
    o.key_every = (int)key_every;
    o.optimizer_at_keys = keys == 1;
    return o;
}

/* bd.ckpt.archive(run | run folder, out.bda [, opts]) -> { entries =, bytes = } */
static int ckpt_archive(lua_State *L)
{
    lua_settop(L, 3);
    const char *run_dir = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1)
                        : bd_run_dir(bdl_check_run(L, 1)->run);
    const char *out = luaL_checkstring(L, 2);
    bd_archive_opts o = archive_options(L, 3);
    bd_status s = bd_archive_create(run_dir, out, &o);
    if (s == BD_E_ARG)
        return bdl_raise_status(L, s);
    struct stat st;
    if (s == BD_OK && stat(out, &st) != 0)
        s = bd_fail(BD_E_IO, "archive '%s': written but not found: %s", out,
                    strerror(errno));
    if (s != BD_OK)
        return bdl_fail(L, stage_of(s));
    bd_archive *a;
    if (bd_archive_open(out, &a) != BD_OK)
        return bdl_fail(L, "format");
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)bd_archive_count(a));
    lua_setfield(L, -2, "entries");
    lua_pushinteger(L, (lua_Integer)st.st_size);
    lua_setfield(L, -2, "bytes");
    bd_archive_close(a);
    return 1;
}

static void set_int(lua_State *L, const char *key, uint64_t v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, key);
}

static void set_bool(lua_State *L, const char *key, bool v)
{
    lua_pushboolean(L, v);
    lua_setfield(L, -2, key);
}

/* bd.ckpt.archive_list(path.bda) -> { { step =, key =, analysis =,
 * file_bytes =, stored_bytes = }, ... } in step order. */
static int ckpt_archive_list(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    bd_archive *a;
    bd_status s = bd_archive_open(path, &a);
    if (s != BD_OK)
        return bdl_fail(L, stage_of(s));
    size_t n = bd_archive_count(a);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        bd_archive_entry e = bd_archive_entry_at(a, i);
        lua_createtable(L, 0, 5);
        set_int(L, "step", e.step);
        set_bool(L, "key", e.key);
        set_bool(L, "analysis", e.analysis);
        set_int(L, "file_bytes", e.file_size);
        set_int(L, "stored_bytes", e.stored_size);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    bd_archive_close(a);
    return 1;
}

/* The first failure bd_archive_verify reports, kept on the Lua stack. */
typedef struct first_failure {
    lua_State *L;
    bool       seen;
} first_failure;

static void keep_first_failure(void *ctx, bd_archive_entry e, const char *failure)
{
    first_failure *f = ctx;
    (void)e;
    if (failure && !f->seen) {
        lua_pushstring(f->L, failure);
        f->seen = true;
    }
}

/* bd.ckpt.archive_verify(path.bda) -> entries | nil, msg, "format" */
static int ckpt_archive_verify(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    bd_archive *a;
    bd_status s = bd_archive_open(path, &a);
    if (s != BD_OK)
        return bdl_fail(L, stage_of(s));
    first_failure f = {L, false};
    size_t bad = 0, n = bd_archive_count(a);
    s = bd_archive_verify(a, keep_first_failure, &f, &bad);
    bd_archive_close(a);
    if (s != BD_OK)
        return bdl_fail(L, stage_of(s));
    if (bad == 0) {
        lua_pushinteger(L, (lua_Integer)n);
        return 1;
    }
    const char *first = f.seen ? lua_tostring(L, -1) : "an entry failed";
    lua_pushnil(L);
    lua_pushfstring(L, "%s (%I of %I entries failed)", first, (lua_Integer)bad,
                    (lua_Integer)n);
    lua_pushstring(L, "format");
    return 3;
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

/* ---- the checkpoint box ---------------------------------------------------------- */

#define BDL_CKPT "bd.Ckpt"

static int ckpt_gc(lua_State *L)
{
    bd_ckpt **ck = luaL_checkudata(L, 1, BDL_CKPT);
    bd_ckpt_free(*ck);
    *ck = NULL;
    return 0;
}

static bd_ckpt **push_ckpt_slot(lua_State *L)
{
    bd_ckpt **ck = lua_newuserdatauv(L, sizeof *ck, 0);
    *ck = NULL;
    luaL_setmetatable(L, BDL_CKPT);
    return ck;
}

void bdl_open_ckpt(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"save", ckpt_save}, {"load", ckpt_load},
        {"load_model", ckpt_load_model}, {"path", ckpt_path},
        {"list", ckpt_list}, {"archive", ckpt_archive},
        {"archive_list", ckpt_archive_list},
        {"archive_verify", ckpt_archive_verify},
        {"archive_tensor", ckpt_archive_tensor},
        {NULL, NULL}};
    luaL_newmetatable(L, BDL_CKPT);
    lua_pushcfunction(L, ckpt_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "ckpt");
}
