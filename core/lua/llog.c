/* bd.log.info / bd.log.warn and bd.time. */
#include "bdlua.h"

#include "bd/log.h"

/* The message: the single argument as a string, or string.format(...). */
static const char *message(lua_State *L)
{
    if (lua_gettop(L) <= 1)
        return luaL_tolstring(L, 1, NULL);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "string");
    lua_getfield(L, -1, "format");
    lua_insert(L, 1);
    lua_pop(L, 2);
    lua_call(L, lua_gettop(L) - 1, 1);
    return lua_tostring(L, -1);
}

static int log_info(lua_State *L)
{
    bd_log_info("%s", message(L));
    return 0;
}

static int log_warn(lua_State *L)
{
    bd_log_warn("%s", message(L));
    return 0;
}

static int time_now(lua_State *L)
{
    lua_pushnumber(L, bd_time());
    return 1;
}

void bdl_open_log(lua_State *L)
{
    static const luaL_Reg log_fns[] = {
        {"info", log_info}, {"warn", log_warn}, {NULL, NULL}};
    luaL_newlib(L, log_fns);
    lua_setfield(L, -2, "log");
    lua_pushcfunction(L, time_now);
    lua_setfield(L, -2, "time");
}
