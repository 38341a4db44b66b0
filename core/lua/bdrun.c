/* bdrun: run a Lua experiment script with the `bd` module.
 *
 *   bdrun script.lua [key=value ...]
 *   bdrun sample CKPT [key=value ...]  (bd's scripts/sample.lua)
 *   bdrun plugins
 *   bdrun ckpt <command> ...        (bd_ckpt_main)
 *
 * bd's own scripts (sample.lua, lib/) are found in $BD_SCRIPTS, else in
 * <prefix>/share/bd/scripts beside an installed bdrun (<prefix>/bin),
 * else in the source tree this bdrun was built from.
 *
 * Like lua.c, all work happens inside a protected call (pmain), and the
 * script runs under a message handler that appends a traceback, so any
 * error ends with "bdrun: file:line: message", the traceback and exit
 * status 1. Configuration errors print one line without a traceback. */
#include "bdlua.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bd/ckpt.h"
#include "bd/registry.h"

static const char usage[] =
    "usage: bdrun script.lua [key=value ...]   run an experiment script\n"
    "       bdrun sample CKPT [key=value ...]  a sample grid from any checkpoint\n"
    "                                          (per_side, sampler, steps, seed, out)\n"
    "       bdrun plugins                      list plugins and what they provide\n"
    "       bdrun ckpt <command> ...           inspect, verify, diff, export,\n"
    "                                          import, archive, ls, extract\n"
    "                                          checkpoints\n"
    "       bdrun --help | --version\n"
    "\n"
    "key=value arguments override the defaults the script declares with\n"
    "bd.config{...}; each value must have the type of its default.\n"
    "Scripts find shared Lua modules with require() in lib/ beside the\n"
    "script and in bd's scripts/lib ($BD_SCRIPTS, the installed share/bd/scripts\n"
    "or the source tree's).\n";

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* bd's scripts folder (see the top) into buf. */
static const char *scripts_dir(char *buf, size_t len)
{
    const char *env = getenv("BD_SCRIPTS");
    if (env && *env) {
        snprintf(buf, len, "%s", env);
        return buf;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        snprintf(buf, len, "%s/../share/bd/scripts", exe);
        if (is_dir(buf))
            return buf;
    }
    snprintf(buf, len, "%s", BD_SOURCE_DIR "/scripts");
    return buf;
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

/* package.path: the script's folder and its lib/, then bd's scripts/lib;
 * no C modules; require() loads text only. */
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
    char dir_buf[4400];
    luaL_addstring(&b, scripts_dir(dir_buf, sizeof dir_buf));
    luaL_addstring(&b, "/lib/?.lua");
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
    lua_pushcfunction(L, bdl_traceback);
    lua_insert(L, -2);
    if (lua_pcall(L, 0, 0, -2) != LUA_OK)
        return lua_error(L);
    bdl_check_overrides_used(L);
    return 0;
}

static const char *described(const char *description)
{
    return description ? description : "(no description: set .description)";
}

/* bdrun plugins: the search path, what loaded, what failed and why.
 * Exit status 1 when a plugin failed to load. */
static int list_plugins(void)
{
    bd_status s = bd_plugins_scan();
    if (s != BD_OK) {
        fprintf(stderr, "bdrun: %s\n", bd_last_error());
        return 1;
    }
    printf("search path:\n");
    for (int i = 0; i < bd_plugin_search_count(); i++) {
        const char *dir = bd_plugin_search_dir(i);
        printf("  %s%s\n", dir, access(dir, R_OK) == 0 ? "" : "  (missing)");
    }
    printf("plugins:\n");
    for (int i = 0; i < bd_plugin_count(); i++) {
        const bd_plugin_info *p = bd_plugin_info_at(i);
        printf("  %s %s  %s\n    %s\n", p->name, p->version ? p->version : "",
               bd_plugin_path(i), described(p->description));
        for (int k = 0; k < p->n_denoisers; k++)
            printf("    denoiser %-12s %s\n", p->denoisers[k]->name,
                   described(p->denoisers[k]->description));
        for (int k = 0; k < p->n_metrics; k++)
            printf("    metric   %-12s %s\n", p->metrics[k]->name,
                   described(p->metrics[k]->description));
    }
    if (bd_plugin_count() == 0)
        printf("  (none)\n");
    for (int i = 0; i < bd_plugin_failure_count(); i++)
        printf("%s  %s\n", i ? "" : "failed to load:\n", bd_plugin_failure(i));
    return bd_plugin_failure_count() ? 1 : 0;
}

static int run_script(int argc, char **argv);

/* bdrun sample CKPT [key=value ...]: bdrun <scripts>/sample.lua ckpt=CKPT ... */
static int sample_checkpoint(int argc, char **argv)
{
    if (argc < 3 || argv[2][0] == '-' || strchr(argv[2], '=')) {
        fprintf(stderr, "bdrun sample: expected a checkpoint, then key=value"
                " arguments\n%s", usage);
        return 2;
    }
    char dir[4400], script[4500], ckpt[4400];
    snprintf(script, sizeof script, "%s/sample.lua",
             scripts_dir(dir, sizeof dir));
    snprintf(ckpt, sizeof ckpt, "ckpt=%s", argv[2]);
    argv[1] = script;
    argv[2] = ckpt;
    return run_script(argc, argv);
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
    if (!strcmp(argv[1], "plugins") && argc == 2)
        return list_plugins();
    if (!strcmp(argv[1], "ckpt")) {
        char name[] = "bdrun ckpt"; /* what its usage text calls it */
        argv[1] = name;
        return bd_ckpt_main(argc - 1, argv + 1);
    }
    if (!strcmp(argv[1], "sample"))
        return sample_checkpoint(argc, argv);
    if (argv[1][0] == '-') {
        fprintf(stderr, "bdrun: unknown option '%s'\n%s", argv[1], usage);
        return 2;
    }
    return run_script(argc, argv);
}

/* bdrun script.lua [key=value ...] */
static int run_script(int argc, char **argv)
{
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
    lua_close(L);          /* frees the models and metrics of the script */
    bd_plugins_unload_all();
    return status == LUA_OK ? 0 : 1;
}
