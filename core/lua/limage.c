/* bd.image.save_grid(path, images [, {labels =, cols =, scale =, pad =,
 * lo =, hi =}]): a PNG grid of images, each with its label (x, y) marked.
 * Returns true, or nil, message, "io" when the file cannot be written. */
#include "bdlua.h"

#include "bd/dist.h"
#include "bd/image.h"

static int opt_int(lua_State *L, int opts, const char *key, int dflt)
{
    lua_getfield(L, opts, key);
    int ok = 1;
    lua_Integer v = lua_isnil(L, -1) ? dflt : lua_tointegerx(L, -1, &ok);
    if (!ok)
        luaL_error(L, "save_grid: %s is %s, expected an integer", key,
                   luaL_tolstring(L, -1, NULL));
    lua_pop(L, 1);
    return (int)v;
}

static float opt_num(lua_State *L, int opts, const char *key, float dflt)
{
    lua_getfield(L, opts, key);
    float v = lua_isnil(L, -1) ? dflt : (float)luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static int save_grid(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    bd_tensor *images = bdl_check_tensor(L, 2);
    if (lua_isnoneornil(L, 3)) {
        lua_settop(L, 2);
        lua_newtable(L);
    }
    luaL_checktype(L, 3, LUA_TTABLE);
    bd_grid_options o = bd_grid_defaults();
    o.cols = opt_int(L, 3, "cols", o.cols);
    o.scale = opt_int(L, 3, "scale", o.scale);
    o.pad = opt_int(L, 3, "pad", o.pad);
    o.lo = opt_num(L, 3, "lo", o.lo);
    o.hi = opt_num(L, 3, "hi", o.hi);
    lua_settop(L, 3);
    if (lua_getfield(L, 3, "labels") != LUA_TNIL) {
        bd_tensor *labels = bdl_to_tensor(L, 4);
        if (labels->ndim != 2 || labels->shape[1] != 2 ||
            labels->shape[0] != images->shape[0])
            luaL_error(L, "save_grid: labels have %I rows of %I, expected %I"
                       " rows of 2 (one (x, y) per image)",
                       (lua_Integer)labels->shape[0],
                       (lua_Integer)(labels->ndim > 1 ? labels->shape[1] : 1),
                       (lua_Integer)images->shape[0]);
        o.marks = labels->data;
    }
    /* Rank 0 writes; the others return true having written nothing. */
    bd_status s = bd_dist_is_writer() ? bd_image_save_grid(path, images, &o)
                                      : BD_OK;
    if (s == BD_E_IO)
        return bdl_fail(L, "io");
    if (s != BD_OK)
        return bdl_raise(L);
    lua_pushboolean(L, 1);
    return 1;
}

void bdl_open_image(lua_State *L)
{
    static const luaL_Reg fns[] = {{"save_grid", save_grid}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "image");
}
