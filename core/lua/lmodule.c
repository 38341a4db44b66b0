/* The `bd` module: its parts, and the error helpers they share. */
#include "bdlua.h"

#include <stdarg.h>

#define FINAL_ERROR_KEY "bd.final_error" /* the last error raised as is */

int bdl_raise(lua_State *L)
{
    return luaL_error(L, "%s", bd_last_error());
}

int bdl_config_error(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    luaL_where(L, 1);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_concat(L, 2);
    return bdl_raise_final(L);
}

int bdl_raise_final(lua_State *L)
{
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, FINAL_ERROR_KEY);
    return lua_error(L);
}

int bdl_raise_status(lua_State *L, bd_status s)
{
    if (s == BD_E_ARG)
        return bdl_config_error(L, "%s", bd_last_error());
    return bdl_raise(L);
}

int bdl_fail(lua_State *L, const char *stage)
{
    lua_pushnil(L);
    lua_pushstring(L, bd_last_error());
    lua_pushstring(L, stage);
    return 3;
}

int bdl_is_final_error(lua_State *L, int err)
{
    err = lua_absindex(L, err);
    lua_getfield(L, LUA_REGISTRYINDEX, FINAL_ERROR_KEY);
    int same = lua_type(L, err) == LUA_TSTRING && lua_rawequal(L, err, -1);
    lua_pop(L, 1);
    return same;
}

int bdl_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg && bdl_is_final_error(L, 1))
        return 1;
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)",
                              luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int luaopen_bd(lua_State *L)
{
    luaL_checkversion(L);
    lua_newtable(L);
    lua_pushstring(L, BD_VERSION);
    lua_setfield(L, -2, "version");
    bdl_open_log(L);
    bdl_open_tensor(L);
    bdl_open_config(L);
    bdl_open_run(L);
    bdl_open_image(L);
    bdl_open_data(L);
    bdl_open_model(L);
    bdl_open_train(L);
    bdl_open_sample(L);
    bdl_open_metric(L);
    bdl_open_ckpt(L);
    bdl_open_dist(L);
    return 1;
}
