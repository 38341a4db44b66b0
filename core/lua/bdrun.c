/* bdrun: run a Lua experiment script with the `bd` module.
 *
 *   bdrun script.lua [key=value ...]
 *
 * Like lua.c, all work happens inside a protected call (pmain), and the
 * script runs under a message handler that appends a traceback, so any
 * error ends with "bdrun: file:line: message", the traceback and exit
 * status 1. Configuration errors print one line without a traceback. */
#include "bdlua.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: bdrun script.lua [key=value ...]   run an experiment script\n"
    "       bdrun --help | --version\n"
    "\n"
    "key=value arguments override the defaults the script declares with\n"
    "bd.config{...}; each value must have the type of its default.\n"
    "Scripts find shared Lua modules with require() in lib/ beside the\n"
    "script and in " BD_SOURCE_DIR "/scripts/lib.\n";

/* Append a traceback to a string error; leave configuration errors (one
 * line) as they are; describe non-string errors (lua.c's msghandler). */
static int msghandler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg && bdl_is_config_error(L, 1))
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

/* require() for Lua files only, loaded as text: package.path is searched
 * with package.searchpath. */
static int text_searcher(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchpath");
    lua_pushstring(L, name);
    lua_getfield(L, -3, "path");
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2))
        return 1; /* the message of where it looked */
    const char *file = lua_tostring(L, -2);
    if (luaL_loadfilex(L, file, "t") != LUA_OK)
        return luaL_error(L, "error loading module '%s' from '%s':\n\t%s", name,
                          file, lua_tostring(L, -1));
    lua_pushstring(L, file);
    return 2;
}

/* package.path: the script's folder and its lib/, then scripts/lib of the
 * source tree; no C modules; require() loads text only. */
static void set_package(lua_State *L, const char *script)
{
    const char *slash = strrchr(script, '/');
    int dir_len = slash ? (int)(slash - script) : 1;
    const char *dir = slash ? script : ".";
    lua_getglobal(L, "package");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int k = 0; k < 2; k++) {
        luaL_addlstring(&b, dir, (size_t)dir_len);
        luaL_addstring(&b, k ? "/lib/?.lua;" : "/?.lua;");
    }
    luaL_addstring(&b, BD_SOURCE_DIR "/scripts/lib/?.lua");
    luaL_pushresult(&b);
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath");
    lua_createtable(L, 2, 0);
    lua_getfield(L, -2, "searchers");
    lua_rawgeti(L, -1, 1); /* the preload searcher */
    lua_rawseti(L, -3, 1);
    lua_pop(L, 1);
    lua_pushcfunction(L, text_searcher);
    lua_rawseti(L, -2, 2);
    lua_setfield(L, -2, "searchers");
    lua_pop(L, 1);
}

/* arg[0] = script, arg[1..n] = the key=value arguments, as in lua.c. */
static void set_arg(lua_State *L, int argc, char **argv)
{
    lua_createtable(L, argc - 2, 1);
    for (int i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setglobal(L, "arg");
}

static int pmain(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    const char *script = argv[1];
    luaL_openlibs(L);
    luaL_requiref(L, "bd", luaopen_bd, 1);
    lua_pop(L, 1);
    set_package(L, script);
    set_arg(L, argc, argv);
    bdl_set_overrides(L, argc - 2, argv + 2);
    if (luaL_loadfilex(L, script, "t") != LUA_OK)
        return lua_error(L);
    lua_pushcfunction(L, msghandler);
    lua_insert(L, -2);
    if (lua_pcall(L, 0, 0, -2) != LUA_OK)
        return lua_error(L);
    bdl_check_overrides_used(L);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("bdrun %s (%s)\n", BD_VERSION, LUA_RELEASE);
        return 0;
    }
    if (argv[1][0] == '-') {
        fprintf(stderr, "bdrun: unknown option '%s'\n%s", argv[1], usage);
        return 2;
    }
    lua_State *L = luaL_newstate();
    if (!L) {
        fputs("bdrun: cannot create a Lua state: out of memory\n", stderr);
        return 1;
    }
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 0, 0);
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "bdrun: %s\n", msg ? msg : "(error object is not a"
                " string)");
    }
    lua_close(L);
    return status == LUA_OK ? 0 : 1;
}
