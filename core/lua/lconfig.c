/* bd.config{defaults}: the script's typed configuration, overridden by
 * `key=value` arguments; and Lua tables as bd_config for the core.
 *
 * An override must name a key of the defaults and read as the default's
 * type: an integer for an integer default, a number for a number, true or
 * false for a boolean, anything for a string. */
#include "bdlua.h"

#include <string.h>

#include "bd/log.h"

#define OVERRIDES_KEY "bd.overrides" /* key -> raw text from the command line */
#define RESOLVED_KEY  "bd.resolved"  /* the table bd.config returned */

/* ---- Lua table -> bd_config ---------------------------------------------- */

typedef struct config_box {
    bd_config *c;
} config_box;

static int config_gc(lua_State *L)
{
    config_box *b = luaL_checkudata(L, 1, BDL_CONFIG);
    bd_config_free(b->c);
    b->c = NULL;
    return 0;
}

static int skipped(const char *key, const char *const *skip)
{
    for (; skip && *skip; skip++)
        if (strcmp(key, *skip) == 0)
            return 1;
    return 0;
}

bd_config *bdl_check_config(lua_State *L, int arg, const char *owner,
                            const char *const *skip)
{
    arg = lua_absindex(L, arg);
    if (!lua_isnoneornil(L, arg))
        luaL_checktype(L, arg, LUA_TTABLE);
    config_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->c = NULL;
    luaL_setmetatable(L, BDL_CONFIG);
    if (!(b->c = bd_config_new()))
        bdl_raise(L);
    for (const char *const *k = skip; k && *k; k++)
        bd_config_allow(b->c, *k); /* listed among the allowed keys */
    if (lua_isnoneornil(L, arg))
        return b->c;
    for (lua_pushnil(L); lua_next(L, arg); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: a config key is a %s, expected a string", owner,
                       luaL_typename(L, -2));
        const char *key = lua_tostring(L, -2);
        if (skipped(key, skip))
            continue;
        bd_status s;
        switch (lua_type(L, -1)) {
        case LUA_TNUMBER:  s = bd_config_set_num(b->c, key, lua_tonumber(L, -1)); break;
        case LUA_TBOOLEAN: s = bd_config_set_num(b->c, key, lua_toboolean(L, -1)); break;
        case LUA_TSTRING:  s = bd_config_set_str(b->c, key, lua_tostring(L, -1)); break;
        default:
            return bdl_config_error(L, "%s: %s is a %s, expected a number,"
                                    " string or boolean", owner, key,
                                    luaL_typename(L, -1)), NULL;
        }
        if (s != BD_OK)
            bdl_raise_status(L, s);
    }
    return b->c;
}

const char *bdl_read_from(lua_State *L, int idx, const char *owner)
{
    if (lua_isnoneornil(L, idx))
        return NULL;
    if (!lua_istable(L, idx))
        bdl_config_error(L, "%s: options are a %s, expected a table {from ="
                         " folder}", owner, luaL_typename(L, idx));
    for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1))
        if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "from"))
            bdl_config_error(L, "%s: unknown option '%s' (allowed: from)",
                             owner, luaL_tolstring(L, -2, NULL));
    lua_getfield(L, idx, "from");
    if (lua_type(L, -1) != LUA_TSTRING)
        bdl_config_error(L, "%s: from is a %s, expected a folder", owner,
                         luaL_typename(L, -1));
    return lua_tostring(L, -1);
}

/* ---- key=value overrides ------------------------------------------------- */

static int valid_key(const char *k, size_t n)
{
    if (n == 0 || !(k[0] == '_' || (k[0] >= 'a' && k[0] <= 'z') ||
                    (k[0] >= 'A' && k[0] <= 'Z')))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(k[i] == '_' || (k[i] >= 'a' && k[i] <= 'z') ||
              (k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= '0' && k[i] <= '9')))
            return 0;
    return 1;
}

void bdl_set_overrides(lua_State *L, int n, char **args)
{
    lua_newtable(L);
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(args[i], '=');
        if (!eq || !valid_key(args[i], (size_t)(eq - args[i])))
            bdl_config_error(L, "argument '%s' is not key=value (a key is a"
                             " name: letters, digits, '_')", args[i]);
        lua_pushlstring(L, args[i], (size_t)(eq - args[i]));
        if (lua_rawget(L, -2) != LUA_TNIL)
            bdl_config_error(L, "argument '%s': key given twice", args[i]);
        lua_pop(L, 1);
        lua_pushlstring(L, args[i], (size_t)(eq - args[i]));
        lua_pushstring(L, eq + 1);
        lua_rawset(L, -3);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, OVERRIDES_KEY);
}

void bdl_push_resolved_config(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, RESOLVED_KEY);
}

/* Sorted keys of the table at idx, as one string "a, b, c". */
static const char *key_list(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_newtable(L);
    int n = 0;
    for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
        lua_pushvalue(L, -2);
        lua_rawseti(L, -4, ++n);
    }
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, -4);
    lua_call(L, 1, 0);
    lua_getfield(L, -1, "concat");
    lua_pushvalue(L, -4);
    lua_pushstring(L, ", ");
    lua_call(L, 2, 1);
    lua_replace(L, -4);
    lua_pop(L, 2);
    return lua_tostring(L, -1);
}

/* "; did you mean 'steps'?" for the string key of the table at idx
 * nearest to key, or "" (pushed). */
static const char *nearest_hint(lua_State *L, int idx, const char *key)
{
    idx = lua_absindex(L, idx);
    const char *names[256];
    int n = 0;
    for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1))
        if (lua_type(L, -2) == LUA_TSTRING && n < 256)
            names[n++] = lua_tostring(L, -2); /* kept alive by the table */
    const char *near = bd_name_nearest(names, n, key);
    if (near)
        return lua_pushfstring(L, "; did you mean '%s'?", near);
    lua_pushliteral(L, "");
    return lua_tostring(L, -1);
}

void bdl_check_overrides_used(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, OVERRIDES_KEY);
    bdl_push_resolved_config(L);
    if (lua_istable(L, -2) && lua_isnil(L, -1)) {
        lua_pushnil(L);
        if (lua_next(L, -3))
            bdl_config_error(L, "key=value arguments given (%s) but the script"
                             " never called bd.config", key_list(L, -4));
    }
    lua_pop(L, 2);
}

/* Convert the override text on the stack top to the type of the default at
 * index dflt, replacing it; raises a configuration error naming the key. */
static void convert(lua_State *L, const char *key, int dflt)
{
    dflt = lua_absindex(L, dflt);
    const char *text = lua_tostring(L, -1);
    switch (lua_type(L, dflt)) {
    case LUA_TSTRING:
        return;
    case LUA_TBOOLEAN:
        if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0)
            bdl_config_error(L, "config: %s = '%s', expected true or false",
                             key, text);
        lua_pushboolean(L, text[0] == 't');
        break;
    case LUA_TNUMBER:
        if (!lua_stringtonumber(L, text))
            bdl_config_error(L, "config: %s = '%s', expected %s (default %s)",
                             key, text, lua_isinteger(L, dflt) ? "an integer"
                             : "a number", luaL_tolstring(L, dflt, NULL));
        if (lua_isinteger(L, dflt)) {
            int ok;
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            if (!ok)
                bdl_config_error(L, "config: %s = '%s', expected an integer"
                                 " (default %s)", key, text,
                                 luaL_tolstring(L, dflt, NULL));
            lua_pop(L, 1);
            lua_pushinteger(L, v);
        } else { /* a float default stays a float: "1" -> 1.0 */
            lua_Number v = lua_tonumber(L, -1);
            lua_pop(L, 1);
            lua_pushnumber(L, v);
        }
        break;
    default:
        bdl_config_error(L, "config: %s has a %s default, which cannot be set"
                         " from the command line", key, luaL_typename(L, dflt));
    }
    lua_replace(L, -2);
}

static int config_new(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    bdl_push_resolved_config(L);
    if (!lua_isnil(L, -1))
        luaL_error(L, "bd.config: called a second time; a script has one"
                   " config");
    lua_pop(L, 1);
    lua_newtable(L); /* 2: the resolved config */
    for (lua_pushnil(L); lua_next(L, 1); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "bd.config: a key is a %s, expected a string",
                       luaL_typename(L, -2));
        lua_pushvalue(L, -2);
        lua_pushvalue(L, -2);
        lua_rawset(L, 2);
    }
    lua_getfield(L, LUA_REGISTRYINDEX, OVERRIDES_KEY); /* 3 */
    if (lua_isnil(L, 3)) {
        lua_newtable(L);
        lua_replace(L, 3);
    }
    for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) {
        const char *key = lua_tostring(L, -2);
        if (lua_getfield(L, 1, key) == LUA_TNIL) /* the default */
            bdl_config_error(L, "config: unknown key '%s' (allowed: %s%s)",
                             key, key_list(L, 1), nearest_hint(L, 1, key));
        lua_pushvalue(L, -2);                    /* the text */
        convert(L, key, -2);                     /* -> the value */
        const char *dflt = luaL_tolstring(L, -2, NULL);
        const char *value = luaL_tolstring(L, -2, NULL);
        bd_log_info("config: %s = %s (default %s)", key, value, dflt);
        lua_pop(L, 2);
        lua_setfield(L, 2, key);
        lua_pop(L, 1);
    }
    lua_pushvalue(L, 2);
    lua_setfield(L, LUA_REGISTRYINDEX, RESOLVED_KEY);
    lua_pushvalue(L, 2);
    return 1;
}

void bdl_open_config(lua_State *L)
{
    luaL_newmetatable(L, BDL_CONFIG);
    lua_pushcfunction(L, config_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushcfunction(L, config_new);
    lua_setfield(L, -2, "config");
}
