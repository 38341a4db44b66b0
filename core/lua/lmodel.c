/* bd.model(name, {cfg}) and bd.models(): denoisers from plugins.
 *
 *   local m = bd.model("unet", { width = 32, size = 16, seed = 1 })
 *   m.arch, m.size, m.channels, m:num_parameters(), m:parameters()
 *   bd.models() -> { { name =, description =, plugin = }, ... }
 *
 * `seed` (default 0) seeds the initialisation; every other key goes to
 * the denoiser, which names any key it did not read. A failure raises:
 * a bad name or config as a one-line configuration error, a plugin's
 * failure with the plugin's own message.
 *
 *   bd.model("mine", cfg, { from = "myplugin/build" })
 *
 * adds the folder to the search path first and requires that `mine` come
 * from it (bd_denoiser_load_from). */
#include "bdlua.h"

#include <string.h>

#include "bd/registry.h"

static int model_gc(lua_State *L)
{
    model_box *b = luaL_checkudata(L, 1, BDL_MODEL);
    bd_model_free(b->m);
    b->m = NULL;
    b->ema = NULL;
    return 0;
}

model_box *bdl_check_model(lua_State *L, int arg)
{
    model_box *b = luaL_checkudata(L, arg, BDL_MODEL);
    if (!b->m)
        luaL_error(L, "attempt to use a freed model");
    return b;
}

model_box *bdl_push_model(lua_State *L)
{
    model_box *b = lua_newuserdatauv(L, sizeof *b, 1);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, BDL_MODEL);
    return b;
}

static int model_new(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    static const char *const skip[] = {"seed", NULL};
    lua_settop(L, 3);
    const char *from = bdl_read_from(L, 3, lua_pushfstring(L, "model '%s'", name));
    if (from) {
        bd_status s = bd_denoiser_load_from(name, from);
        if (s != BD_OK)
            return bdl_raise_status(L, s);
    }
    lua_settop(L, 2);
    bd_config *cfg = bdl_check_config(L, 2, name, skip);
    lua_Integer seed = 0;
    if (lua_istable(L, 2) && lua_getfield(L, 2, "seed") != LUA_TNIL) {
        int ok;
        seed = lua_tointegerx(L, -1, &ok);
        if (!ok || seed < 0)
            return bdl_config_error(L, "%s: seed = %s, expected an integer >="
                                    " 0", name, luaL_tolstring(L, -1, NULL));
    }
    model_box *b = bdl_push_model(L);
    bd_status s = bd_model_create(name, cfg, (uint64_t)seed, &b->m);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    bdl_account(L, (size_t)bd_params_numel(b->m->params) * sizeof(float) * 2);
    return 1;
}

static int model_num_parameters(lua_State *L)
{
    lua_pushinteger(L, bd_params_numel(bdl_check_model(L, 1)->m->params));
    return 1;
}

/* { ["down1.conv1.weight"] = tensor, ... }: views kept alive by the model. */
static int model_parameters(lua_State *L)
{
    bd_params *p = bdl_check_model(L, 1)->m->params;
    lua_createtable(L, 0, bd_params_count(p));
    for (int i = 0; i < bd_params_count(p); i++) {
        bdl_push_view(L, bd_params_at(p, i), 1);
        lua_setfield(L, -2, bd_params_name(p, i));
    }
    return 1;
}

static int model_index(lua_State *L)
{
    bd_model *m = bdl_check_model(L, 1)->m;
    const char *key = luaL_checkstring(L, 2);
    if (!strcmp(key, "arch"))
        lua_pushstring(L, m->arch);
    else if (!strcmp(key, "size"))
        lua_pushinteger(L, m->size);
    else if (!strcmp(key, "channels"))
        lua_pushinteger(L, m->channels);
    else {
        lua_getmetatable(L, 1);
        lua_getfield(L, -1, "methods");
        lua_getfield(L, -1, key);
    }
    return 1;
}

static int model_tostring(lua_State *L)
{
    model_box *b = luaL_checkudata(L, 1, BDL_MODEL);
    if (!b->m)
        lua_pushliteral(L, "bd.Model (freed)");
    else
        lua_pushfstring(L, "bd.Model(%s, %I parameters, %Ix%Ix%I)", b->m->arch,
                        (lua_Integer)bd_params_numel(b->m->params),
                        (lua_Integer)b->m->channels, (lua_Integer)b->m->size,
                        (lua_Integer)b->m->size);
    return 1;
}

static int models_list(lua_State *L)
{
    if (bd_plugins_scan() != BD_OK)
        return bdl_raise(L);
    lua_createtable(L, bd_denoiser_count(), 0);
    for (int i = 0; i < bd_denoiser_count(); i++) {
        const bd_denoiser_desc *d = bd_denoiser_at(i);
        lua_createtable(L, 0, 3);
        lua_pushstring(L, d->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, d->description ? d->description : "");
        lua_setfield(L, -2, "description");
        lua_pushstring(L, bd_denoiser_path(i));
        lua_setfield(L, -2, "plugin");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

void bdl_open_model(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"num_parameters", model_num_parameters},
        {"parameters", model_parameters}, {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", model_gc}, {"__index", model_index},
        {"__tostring", model_tostring}, {NULL, NULL}};
    luaL_newmetatable(L, BDL_MODEL);
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "methods");
    lua_pop(L, 1);
    lua_pushcfunction(L, model_new);
    lua_setfield(L, -2, "model");
    lua_pushcfunction(L, models_list);
    lua_setfield(L, -2, "models");
}
