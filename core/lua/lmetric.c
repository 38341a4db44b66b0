/* bd.metric(name [, cfg]): an analysis metric from a plugin, as a function.
 *
 *   local acc = bd.metric("bump", { tolerance = 1.0 })
 *   run:log(acc(s.images, probe.labels [, s.taps]))  -- { acc_x = .., .. }
 *
 * Each call measures one batch with a fresh instance of the metric and
 * returns its named numbers (Lua numbers) and arrays (tensors). The config
 * is checked when the metric is made, so a misspelt key fails there. */
#include "bdlua.h"

#include <string.h>

#include "bd/registry.h"

#define BDL_METRIC      "bd.Metric"
#define BDL_METRIC_CALL "bd.MetricCall"

/* What one call holds while it runs: freed by __gc if a raise cuts it. */
typedef struct call_box {
    bd_metric        *m;
    bd_metric_result *r;
} call_box;

static int call_gc(lua_State *L)
{
    call_box *b = luaL_checkudata(L, 1, BDL_METRIC_CALL);
    bd_metric_free(b->m);
    bd_metric_result_free(b->r);
    b->m = NULL;
    b->r = NULL;
    return 0;
}

/* A fresh instance of the metric described by the table at idx, boxed on
 * the stack top. */
static call_box *create(lua_State *L, int idx)
{
    lua_getfield(L, idx, "name");
    const char *name = lua_tostring(L, -1);
    lua_getfield(L, idx, "cfg");
    bd_config *cfg = bdl_check_config(L, -1, name, NULL);
    call_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, BDL_METRIC_CALL);
    bd_status s = bd_metric_create(name, cfg, &b->m);
    if (s == BD_E_PLUGIN)
        bdl_raise(L);
    if (s != BD_OK)
        bdl_raise_status(L, s);
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

/* metric(images, labels [, taps]) */
static int metric_call(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    bd_tensor *images = bdl_check_tensor(L, 2);
    bd_tensor *labels = bdl_to_tensor(L, 3);
    bd_taps taps;
    read_taps(L, 4, &taps);
    call_box *b = create(L, 1);
    bd_status s = bd_metric_update(b->m, images, labels, taps.n ? &taps : NULL);
    if (s == BD_OK && !(b->r = bd_metric_result_new()))
        s = BD_E_NOMEM;
    if (s == BD_OK)
        s = bd_metric_compute(b->m, b->r);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    push_results(L, b->r);
    return 1;
}

static int metric_new(lua_State *L)
{
    luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "name");
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "cfg");
    luaL_setmetatable(L, BDL_METRIC);
    create(L, 3); /* checks the name and the config now */
    lua_settop(L, 3);
    return 1;
}

void bdl_open_metric(lua_State *L)
{
    luaL_newmetatable(L, BDL_METRIC_CALL);
    lua_pushcfunction(L, call_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, BDL_METRIC);
    lua_pushcfunction(L, metric_call);
    lua_setfield(L, -2, "__call");
    lua_pop(L, 1);
    lua_pushcfunction(L, metric_new);
    lua_setfield(L, -2, "metric");
}
