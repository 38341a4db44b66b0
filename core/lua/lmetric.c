/* bd.metric(name [, cfg [, {from = folder}]]): an analysis metric from a
 * plugin, as a function.
 *
 *   local acc = bd.metric("bump", { tolerance = 1.0 })
 *   run:log(acc(s))                                   -- s = bd.sample(...)
 *   run:log(acc(s.images, probe.labels [, s.taps]))  -- { accuracy = .., .. }
 *
 * Each call measures one batch with a fresh instance of the metric and
 * returns its named numbers (Lua numbers) and arrays (tensors). The config
 * is checked when the metric is made, so a misspelt key fails there.
 * metric.name is the metric's name, metric.plugin the file of the plugin
 * it measures with.
 *
 * Swapping a metric at run time: with from = folder, the plugin of that
 * folder that provides `name` is loaded, and the name resolves to it from
 * then on (bd_metric_load_from in bd/registry.h):
 *
 *   local old = bd.metric("bump")                               -- the build's
 *   local new = bd.metric("bump", {}, { from = "v2/plugins" })  -- v2's
 *   bd.metric("bump")                                           -- v2's too
 *
 * A metric keeps the plugin it was made from: `old` goes on measuring with
 * the replaced plugin, which stays loaded until the last metric made from
 * it is collected. The old plugin's folder swaps back:
 *
 *   bd.metric("bump", {}, { from = old.plugin:match("(.*)/") })
 *
 * A folder without the metric raises an error naming the metrics it
 * holds. */
#include "bdlua.h"

#include <string.h>

#include "bd/registry.h"

#define BDL_METRIC      "bd.Metric"
#define BDL_METRIC_CALL "bd.MetricCall"

/* An instance and its result, freed by __gc (also if a raise cuts a call
 * short). A bd.Metric holds the instance it was checked with, which keeps
 * its plugin; a call makes a fresh one like it. */
typedef struct metric_box {
    bd_metric        *m;
    bd_metric_result *r;
} metric_box;

static int box_gc(lua_State *L)
{
    metric_box *b = lua_touserdata(L, 1);
    bd_metric_free(b->m);
    bd_metric_result_free(b->r);
    b->m = NULL;
    b->r = NULL;
    return 0;
}

static metric_box *push_box(lua_State *L, const char *type, int n_values)
{
    metric_box *b = lua_newuserdatauv(L, sizeof *b, n_values);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, type);
    return b;
}

/* A taps table { name = tensor } at idx (or nil) into taps. */
static void read_taps(lua_State *L, int idx, bd_taps *taps)
{
    memset(taps, 0, sizeof *taps);
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
        if (taps->n == BD_MAX_TAPS)
            luaL_error(L, "metric: more than %d taps", BD_MAX_TAPS);
        taps->names[taps->n] = luaL_checkstring(L, -2);
        taps->values[taps->n++] = bdl_check_tensor(L, -1);
    }
}

static void push_results(lua_State *L, const bd_metric_result *r)
{
    lua_createtable(L, 0, bd_metric_result_count(r));
    for (int i = 0; i < bd_metric_result_count(r); i++) {
        const bd_tensor *a = bd_metric_result_array(r, i);
        if (a) {
            bd_tensor **slot = bdl_new_tensor_slot(L);
            if (!(*slot = bd_tensor_new(a->ndim, a->shape, false)))
                bdl_raise(L);
            memcpy((*slot)->data, a->data, (size_t)a->numel * sizeof(float));
        } else {
            lua_pushnumber(L, bd_metric_result_number(r, i));
        }
        lua_setfield(L, -2, bd_metric_result_name(r, i));
    }
}

/* metric(result [, labels [, taps]]) as metric(result.images,
 * labels or result.labels, taps or result.taps): the result of bd.sample or
 * bd.represent (a table with images) spread over arguments 2 to 4. An
 * empty taps table (none asked for) is no taps. */
static void spread_result(lua_State *L)
{
    lua_settop(L, 4);
    if (!lua_istable(L, 2))
        return;
    if (lua_getfield(L, 2, "images") == LUA_TNIL)
        luaL_error(L, "metric: argument 1 is a table without images, expected"
                   " images (bd.Tensor) and labels, or the result of bd.sample");
    if (lua_isnil(L, 3) && lua_getfield(L, 2, "labels") != LUA_TNIL)
        lua_replace(L, 3);
    if (lua_isnil(L, 4) && lua_getfield(L, 2, "taps") != LUA_TNIL)
        lua_replace(L, 4);
    lua_settop(L, 5);
    lua_replace(L, 2); /* the images */
    if (lua_isnil(L, 3))
        luaL_error(L, "metric: no labels: the result has none, expected them"
                   " as the second argument");
}

/* metric(images, labels [, taps]) or metric(result) */
static int metric_call(lua_State *L)
{
    metric_box *self = luaL_checkudata(L, 1, BDL_METRIC);
    spread_result(L);
    bd_tensor *images = bdl_check_tensor(L, 2);
    bd_tensor *labels = bdl_to_tensor(L, 3);
    bd_taps taps;
    read_taps(L, 4, &taps);
    lua_getiuservalue(L, 1, 1);
    bd_config *cfg = bdl_check_config(L, -1, bd_metric_name(self->m), NULL);
    metric_box *b = push_box(L, BDL_METRIC_CALL, 0);
    bd_status s = bd_metric_create_like(self->m, cfg, &b->m);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    s = bd_metric_update(b->m, images, labels, taps.n ? &taps : NULL);
    if (s == BD_OK && !(b->r = bd_metric_result_new()))
        s = BD_E_NOMEM;
    if (s == BD_OK)
        s = bd_metric_compute(b->m, b->r);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    push_results(L, b->r);
    return 1;
}

/* metric.name, metric.plugin */
static int metric_index(lua_State *L)
{
    metric_box *b = luaL_checkudata(L, 1, BDL_METRIC);
    const char *key = luaL_checkstring(L, 2);
    if (strcmp(key, "name") == 0)
        lua_pushstring(L, bd_metric_name(b->m));
    else if (strcmp(key, "plugin") == 0)
        lua_pushstring(L, bd_metric_plugin(b->m));
    else
        lua_pushnil(L);
    return 1;
}

static int metric_tostring(lua_State *L)
{
    metric_box *b = luaL_checkudata(L, 1, BDL_METRIC);
    lua_pushfstring(L, "bd.Metric(%s, %s)", bd_metric_name(b->m),
                    bd_metric_plugin(b->m));
    return 1;
}

static int metric_new(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3);
    const char *from = bdl_read_from(L, 3, "metric");
    bd_status s = from ? bd_metric_load_from(name, from) : BD_OK;
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    bd_config *cfg = bdl_check_config(L, 2, name, NULL);
    metric_box *b = push_box(L, BDL_METRIC, 1);
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, -2, 1); /* the config of every call */
    s = bd_metric_create(name, cfg, &b->m); /* checks the name and config */
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    return 1;
}

void bdl_open_metric(lua_State *L)
{
    luaL_newmetatable(L, BDL_METRIC_CALL);
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    static const luaL_Reg meta[] = {
        {"__call", metric_call}, {"__index", metric_index},
        {"__tostring", metric_tostring}, {"__gc", box_gc}, {NULL, NULL}};
    luaL_newmetatable(L, BDL_METRIC);
    luaL_setfuncs(L, meta, 0);
    lua_pop(L, 1);
    lua_pushcfunction(L, metric_new);
    lua_setfield(L, -2, "metric");
}
