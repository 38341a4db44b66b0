/* bd.ckpt: checkpoints of models and of training runs (the schema and the
 * run's folder are the core's: bd/session.h, bd/ckpt.h).
 *
 *   bd.ckpt.save(path, model [, {level = 3}])  -> true | nil, msg, stage
 *     the weights, the architecture and its config, the diffusion settings
 *     when known and, after bd.train, everything to resume it
 *     (rank 0 writes; the other ranks: true)
 *   bd.ckpt.load(path, model [, {ema = false}]) -> { step =, arch = }
 *     load copies the raw weights (with ema = true, the EMA weights) into
 *     the model and the diffusion settings, so bd.sample uses the ones it
 *     was trained with; the model forgets its last bd.train (its EMA no
 *     longer matches the weights). All or nothing: every tensor's name,
 *     dtype and shape is checked first; on any failure it raises, naming
 *     the file, and the model is as it was.
 *   bd.ckpt.load_model(path [, {ema = <when it has one>}])
 *       -> model, { step =, arch = }      (raises on failure)
 *     a new model of the checkpoint's architecture and config holding its
 *     EMA weights when it has them, else its raw weights (ema = false: the
 *     raw ones), and its diffusion settings: bd.sample(model, ...) draws
 *     what the model that wrote it drew.
 *   An option these do not take is an error.
 *   bd.ckpt.path(run | dir, step) -> "<dir>/step_<N>.bdc" (run: <run>/ckpt)
 *   bd.ckpt.list(run | dir) -> { { step =, path = }, ... } by step
 *                              (a missing folder: {}) | nil, msg, stage
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

static int ckpt_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    model_box *b = bdl_check_model(L, 2);
    lua_settop(L, 3);
    bool ema = only_option(L, 3, "ckpt.load", "ema", 0, 0, 1);
    bd_ckpt **ck = push_ckpt_slot(L);
    bd_checkpoint_info info;
    bd_status s = bd_ckpt_load(path, ck);
    if (s == BD_OK)
        s = bd_checkpoint_info_of(*ck, path, &info);
    if (s == BD_OK)
        s = load_into(*ck, path, b, ema, &info);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    lua_pushnil(L);
    lua_setiuservalue(L, 2, 1); /* drop the last training's trainer */
    push_info(L, &info, b->m);
    return 1;
}

static int ckpt_load_model(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_settop(L, 2);
    bd_ckpt **ck = push_ckpt_slot(L);
    bd_checkpoint_info info;
    bd_status s = bd_ckpt_load(path, ck);
    if (s == BD_OK)
        s = bd_checkpoint_info_of(*ck, path, &info);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    bool ema = only_option(L, 2, "ckpt.load_model", "ema", info.has_ema, 0, 1);
    model_box *b = bdl_push_model(L);
    s = bd_checkpoint_new_model(*ck, path, &b->m);
    if (s == BD_OK)
        s = load_into(*ck, path, b, ema, &info);
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
        {"list", ckpt_list}, {"archive_tensor", ckpt_archive_tensor},
        {NULL, NULL}};
    luaL_newmetatable(L, BDL_CKPT);
    lua_pushcfunction(L, ckpt_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "ckpt");
}
