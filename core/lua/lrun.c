/* bd.run(name [, {root = "runs", overwrite = false}]): a run directory as
 * a Lua object, or a raised error saying why it cannot be one (a folder
 * that cannot be made, another process writing it: bd/run.h).
 *
 *   It locks the folder for this process until run:close() (or the end of
 *   the process). metrics.jsonl is continued, never emptied, unless
 *   overwrite = true: that starts the run over (metrics.jsonl emptied,
 *   ckpt/step_<N>.bdc removed, with a warning counting them). bd.train
 *   refuses to start a training at step 0 in a run that already holds one
 *   (resume = "auto" continues it) and, resuming, drops metrics.jsonl's
 *   lines past the step it resumes from.
 *
 *   run.dir, run.name, run.step       (step: set by bd.train, else nil)
 *   run:log{...}        append an event to metrics.jsonl, with "step" (when
 *                       known) and "time" (seconds since the run opened, to
 *                       the millisecond)
 *   run:save_config([t]) write config.json (default: the resolved bd.config)
 *   run:path(file)      "<dir>/<file>"
 *   run:close()         also on __gc and __close
 *
 *   bd.write_atomic(path, text) -> true | nil, msg, "io"
 *                       the whole file at once, atomically and fsynced
 *                       (bd_write_file_atomic): the old file or the new one
 *
 * Lua values become JSON: numbers, strings, booleans, tensors (nested
 * arrays), sequences (arrays) and tables with string keys (objects, keys
 * sorted). NaN and infinities become null. */
#include "bdlua.h"

#include <math.h>
#include <string.h>

#include "bd/log.h"
#include "bd/run.h"

#define BDL_JSON "bd.Json"
#define MAX_DEPTH 32

/* ---- Lua -> JSON --------------------------------------------------------- */

static int json_gc(lua_State *L)
{
    bd_json_free(luaL_checkudata(L, 1, BDL_JSON));
    return 0;
}

static bd_json *push_json(lua_State *L)
{
    bd_json *j = lua_newuserdatauv(L, sizeof *j, 0);
    bd_json_init(j);
    luaL_setmetatable(L, BDL_JSON);
    return j;
}

static void json_tensor(bd_json *j, const char *key, const bd_tensor *t, int d,
                        const float *data)
{
    bd_json_begin_array(j, key);
    int64_t inner = bd_tensor_inner(t, d + 1);
    for (int64_t i = 0; i < t->shape[d]; i++) {
        if (bdl_innermost(t, d))
            bd_json_number(j, NULL, data[i]);
        else
            json_tensor(j, NULL, t, d + 1, data + i * inner);
    }
    bd_json_end_array(j);
}

static void json_value(lua_State *L, bd_json *j, const char *key, int idx,
                       int depth);

/* Push the sorted string keys of the table at idx; returns the number of
 * keys of any type it has. */
static lua_Integer sorted_keys(lua_State *L, int idx)
{
    luaL_checkstack(L, 8, "json");
    lua_Integer count = 0;
    lua_newtable(L);
    for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
        count++;
        if (lua_type(L, -2) == LUA_TSTRING) {
            lua_pushvalue(L, -2);
            lua_rawseti(L, -4, (lua_Integer)lua_rawlen(L, -4) + 1);
        }
    }
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, -4);
    lua_call(L, 1, 0);
    lua_pop(L, 2);
    return count;
}

/* The members of the table at idx, written into an open object. */
static void json_members(lua_State *L, bd_json *j, int idx, int depth)
{
    lua_Integer count = sorted_keys(L, idx);
    int keys = lua_gettop(L);
    if ((lua_Integer)lua_rawlen(L, keys) != count)
        luaL_error(L, "json: a table mixes string keys with other keys,"
                   " expected a sequence or string keys only");
    for (lua_Integer i = 1; i <= count; i++) {
        lua_rawgeti(L, keys, i);
        lua_pushvalue(L, -1);
        lua_rawget(L, idx);
        json_value(L, j, lua_tostring(L, -2), lua_gettop(L), depth + 1);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
}

/* True for a non-empty table whose keys are exactly 1..#t. */
static int is_sequence(lua_State *L, int idx)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
    for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1))
        count++;
    return n > 0 && count == n;
}

/* A sequence becomes an array, any other table an object. */
static void json_table(lua_State *L, bd_json *j, const char *key, int idx,
                       int depth)
{
    if (is_sequence(L, idx)) {
        bd_json_begin_array(j, key);
        for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, idx); i++) {
            lua_rawgeti(L, idx, i);
            json_value(L, j, NULL, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
        }
        bd_json_end_array(j);
    } else {
        bd_json_begin_object(j, key);
        json_members(L, j, idx, depth);
        bd_json_end_object(j);
    }
}

static void json_value(lua_State *L, bd_json *j, const char *key, int idx,
                       int depth)
{
    if (depth > MAX_DEPTH)
        luaL_error(L, "json: nested more than %d deep (a cycle?)", MAX_DEPTH);
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:  bd_json_number(j, key, lua_tonumber(L, idx)); return;
    case LUA_TBOOLEAN: bd_json_bool(j, key, lua_toboolean(L, idx)); return;
    case LUA_TSTRING:  bd_json_string(j, key, lua_tostring(L, idx)); return;
    case LUA_TTABLE:   json_table(L, j, key, idx, depth); return;
    default:
        if (luaL_testudata(L, idx, BDL_TENSOR)) {
            const bd_tensor *t = bdl_check_tensor(L, idx);
            json_tensor(j, key, t, 0, t->data);
            return;
        }
        luaL_error(L, "json: %s is a %s, expected a number, string, boolean,"
                   " table or tensor", key ? key : "a value",
                   luaL_typename(L, idx));
    }
}

/* ---- the run object ------------------------------------------------------ */

run_box *bdl_check_run(lua_State *L, int arg)
{
    run_box *b = luaL_checkudata(L, arg, BDL_RUN);
    if (!b->run)
        luaL_error(L, "attempt to use a closed run");
    return b;
}

static int run_close(lua_State *L)
{
    run_box *b = luaL_checkudata(L, 1, BDL_RUN);
    bd_run_close(b->run);
    b->run = NULL;
    return 0;
}

static int run_log(lua_State *L)
{
    run_box *b = bdl_check_run(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_argcheck(L, !is_sequence(L, 2), 2, "expected a table with string"
                  " keys, got a sequence");
    lua_settop(L, 2);
    bd_json *j = push_json(L);
    bd_json_begin_object(j, NULL);
    if (lua_getfield(L, 2, "step") == LUA_TNIL && b->step >= 0)
        bd_json_number(j, "step", (double)b->step);
    if (lua_getfield(L, 2, "time") == LUA_TNIL)
        bd_json_number(j, "time", round((bd_time() - b->start) * 1e3) / 1e3);
    lua_pop(L, 2);
    json_members(L, j, 2, 1);
    bd_json_end_object(j);
    if (bd_run_log(b->run, j) != BD_OK)
        return bdl_fail(L, "io");
    lua_pushboolean(L, 1);
    return 1;
}

/* Write the table at idx (any JSON value) to <dir>/<file>. */
static int write_json(lua_State *L, run_box *b, const char *file, int idx)
{
    bd_json *j = push_json(L);
    json_value(L, j, NULL, idx, 0);
    if (bd_run_write_json(b->run, file, j) != BD_OK)
        return bdl_fail(L, "io");
    lua_pushboolean(L, 1);
    return 1;
}

static int run_save_config(lua_State *L)
{
    run_box *b = bdl_check_run(L, 1);
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        bdl_push_resolved_config(L);
        if (lua_isnil(L, 2))
            luaL_error(L, "save_config: no table given and bd.config was not"
                       " called");
    }
    luaL_checktype(L, 2, LUA_TTABLE);
    return write_json(L, b, "config.json", 2);
}

static int run_path(lua_State *L)
{
    run_box *b = bdl_check_run(L, 1);
    const char *file = luaL_checkstring(L, 2);
    lua_pushfstring(L, "%s/%s", bd_run_dir(b->run), file);
    return 1;
}

static int run_index(lua_State *L)
{
    run_box *b = luaL_checkudata(L, 1, BDL_RUN);
    const char *field = luaL_checkstring(L, 2);
    if (strcmp(field, "dir") == 0 && b->run)
        lua_pushstring(L, bd_run_dir(b->run));
    else if (strcmp(field, "name") == 0)
        lua_getiuservalue(L, 1, 1);
    else if (strcmp(field, "step") == 0 && b->step >= 0)
        lua_pushinteger(L, b->step);
    else {
        lua_getmetatable(L, 1);
        lua_getfield(L, -1, "methods");
        lua_getfield(L, -1, field);
    }
    return 1;
}

static int run_tostring(lua_State *L)
{
    run_box *b = luaL_checkudata(L, 1, BDL_RUN);
    lua_pushfstring(L, "bd.Run(%s)", b->run ? bd_run_dir(b->run) : "closed");
    return 1;
}

static const char *const RUN_KEYS[] = {"root", "overwrite", NULL};

/* opts (the table at 2, or none): root and overwrite; any other key is a
 * configuration error listing these. */
static const char *run_opts(lua_State *L, bool *overwrite)
{
    *overwrite = false;
    if (lua_isnoneornil(L, 2))
        return "runs";
    luaL_checktype(L, 2, LUA_TTABLE);
    for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1))
        if (lua_type(L, -2) != LUA_TSTRING
            || bd_name_find(RUN_KEYS, lua_tostring(L, -2)) < 0)
            bdl_config_error(L, "run: unknown option '%s' (allowed: root,"
                             " overwrite)", luaL_tolstring(L, -2, NULL));
    lua_getfield(L, 2, "overwrite");
    *overwrite = lua_toboolean(L, -1);
    lua_getfield(L, 2, "root");
    const char *root = luaL_optstring(L, -1, "runs");
    return root; /* its string stays on the stack */
}

static int run_open(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    bool overwrite;
    const char *root = run_opts(L, &overwrite);
    run_box *b = lua_newuserdatauv(L, sizeof *b, 1);
    b->run = NULL;
    b->start = bd_time();
    b->step = -1;
    luaL_setmetatable(L, BDL_RUN);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    bd_status s = bd_run_open(root, name, overwrite, &b->run);
    if (s == BD_E_STATE) { /* held by a run of this folder no longer used? */
        lua_gc(L, LUA_GCCOLLECT);
        s = bd_run_open(root, name, overwrite, &b->run);
    }
    if (s == BD_E_STATE) /* in use: one line, naming the holder */
        return bdl_config_error(L, "%s", bd_last_error());
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    int run = lua_gettop(L);
    bdl_push_resolved_config(L);
    if (!lua_isnil(L, -1) && write_json(L, b, "config.json", run + 1) != 1)
        return bdl_raise(L);
    lua_settop(L, run);
    return 1;
}

static int write_atomic(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t n;
    const char *text = luaL_checklstring(L, 2, &n);
    if (bd_write_file_atomic(path, text, n) != BD_OK)
        return bdl_fail(L, "io");
    lua_pushboolean(L, 1);
    return 1;
}

void bdl_open_run(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"log", run_log}, {"save_config", run_save_config},
        {"path", run_path}, {"close", run_close}, {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__index", run_index}, {"__gc", run_close}, {"__close", run_close},
        {"__tostring", run_tostring}, {NULL, NULL}};
    luaL_newmetatable(L, BDL_RUN);
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "methods");
    lua_pop(L, 1);
    luaL_newmetatable(L, BDL_JSON);
    lua_pushcfunction(L, json_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushcfunction(L, run_open);
    lua_setfield(L, -2, "run");
    lua_pushcfunction(L, write_atomic);
    lua_setfield(L, -2, "write_atomic");
}
