/* bd.data: datasets made in memory (bd/data.h) and label grids.
 *
 *   local d = bd.data.bumps{ size = 16, sigma = 1, dx = 1, dy = 1 }
 *   d.images (n, 1, N, N), d.labels (n, 2), d.n, d.size, #d
 *   d.held   { images =, labels =, n = } of the held-out region, or nil
 *   bd.data.stripes{...}, bd.data.stripe_sum{...}: the other kinds
 *   bd.data.concat(a, b): a's images then b's, split by split (stripes
 *            plus a few bumps); a new dataset, a and b stay as they are
 *   bd.data.grid{ size = 16, step = 4 [, lo =, hi =] }
 *            -> { labels = (n, 2), n = } on x, y in lo, lo + step, .. hi;
 *            lo = step / 2 and hi = size - step / 2 by default, so the
 *            probe sits symmetrically inside the image.
 * Keys are those of bd_data_read; a misspelt one is named in the error. */
#include "bdlua.h"

#include <string.h>

#include "bd/data.h"

typedef struct data_box {
    bd_dataset *d; /* NULL only while being made */
} data_box;

static int data_gc(lua_State *L)
{
    data_box *b = luaL_checkudata(L, 1, BDL_DATA);
    bd_dataset_free(b->d);
    b->d = NULL;
    return 0;
}

bd_dataset *bdl_check_dataset(lua_State *L, int arg)
{
    data_box *b = luaL_checkudata(L, arg, BDL_DATA);
    if (!b->d)
        luaL_error(L, "attempt to use a freed dataset");
    return b->d;
}

/* bd.data.<kind>{...}: the kind comes from the constructor's name. */
static int data_new(lua_State *L)
{
    const char *kind = lua_tostring(L, lua_upvalueindex(1));
    if (lua_istable(L, 1) && lua_getfield(L, 1, "kind") != LUA_TNIL)
        return bdl_config_error(L, "dataset: kind is set by bd.data.%s; leave"
                                " it out", kind);
    lua_settop(L, 1);
    bd_config *cfg = bdl_check_config(L, 1, "dataset", NULL);
    bd_status s = bd_config_set_str(cfg, "kind", kind);
    bd_data_spec spec;
    if (s == BD_OK)
        s = bd_data_read(cfg, &spec);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    data_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->d = NULL;
    luaL_setmetatable(L, BDL_DATA);
    if ((s = bd_dataset_new(&spec, &b->d)) != BD_OK)
        return bdl_raise_status(L, s);
    bdl_account(L, (size_t)b->d->train.images->numel * sizeof(float));
    return 1;
}

/* { images =, labels =, n = } of a split, views kept alive by the dataset
 * at index owner. */
static void push_split(lua_State *L, const bd_split *sp, int owner)
{
    lua_createtable(L, 0, 3);
    bdl_push_view(L, sp->images, owner);
    lua_setfield(L, -2, "images");
    bdl_push_view(L, sp->labels, owner);
    lua_setfield(L, -2, "labels");
    lua_pushinteger(L, sp->n);
    lua_setfield(L, -2, "n");
}

/* bd.data.concat(a, b) -> a's images followed by b's (bd_dataset_concat). */
static int data_concat(lua_State *L)
{
    const bd_dataset *a = bdl_check_dataset(L, 1);
    const bd_dataset *b = bdl_check_dataset(L, 2);
    data_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->d = NULL;
    luaL_setmetatable(L, BDL_DATA);
    bd_status s = bd_dataset_concat(a, b, &box->d);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    bdl_account(L, (size_t)box->d->train.images->numel * sizeof(float));
    return 1;
}

static int data_index(lua_State *L)
{
    bd_dataset *d = bdl_check_dataset(L, 1);
    const char *key = luaL_checkstring(L, 2);
    if (!strcmp(key, "images"))
        bdl_push_view(L, d->train.images, 1);
    else if (!strcmp(key, "labels"))
        bdl_push_view(L, d->train.labels, 1);
    else if (!strcmp(key, "n"))
        lua_pushinteger(L, d->train.n);
    else if (!strcmp(key, "size"))
        lua_pushinteger(L, d->spec.size);
    else if (!strcmp(key, "held") && d->held.n > 0)
        push_split(L, &d->held, 1);
    else
        lua_pushnil(L);
    return 1;
}

static int data_len(lua_State *L)
{
    lua_pushinteger(L, bdl_check_dataset(L, 1)->train.n);
    return 1;
}

static int data_tostring(lua_State *L)
{
    bd_dataset *d = bdl_check_dataset(L, 1);
    static const char *const kinds[] = {"bumps", "stripes", "stripe_sum"};
    lua_pushfstring(L, "bd.Dataset(%s, %I images of %Ix%I, %I held out)",
                    kinds[d->spec.kind], (lua_Integer)d->train.n,
                    (lua_Integer)d->spec.size, (lua_Integer)d->spec.size,
                    (lua_Integer)d->held.n);
    return 1;
}

static double opt_number(lua_State *L, const char *key, double dflt)
{
    lua_getfield(L, 1, key);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return dflt;
    }
    if (lua_type(L, -1) != LUA_TNUMBER)
        bdl_config_error(L, "grid: %s is a %s, expected a number", key,
                         luaL_typename(L, -1));
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static int data_grid(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    for (lua_pushnil(L); lua_next(L, 1); lua_pop(L, 1)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        if (strcmp(k, "size") && strcmp(k, "step") && strcmp(k, "lo") &&
            strcmp(k, "hi"))
            return bdl_config_error(L, "grid: unknown key '%s' (allowed: hi,"
                                    " lo, size, step)", k);
    }
    double step = opt_number(L, "step", 1.0);
    double size = opt_number(L, "size", 32.0);
    double lo = opt_number(L, "lo", step / 2);
    double hi = opt_number(L, "hi", size - step / 2);
    bd_tensor **slot = bdl_new_tensor_slot(L);
    bd_status s = bd_label_grid(lo, hi, step, slot);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    lua_createtable(L, 0, 2);
    lua_insert(L, -2);
    lua_setfield(L, -2, "labels");
    lua_pushinteger(L, (*slot)->shape[0]);
    lua_setfield(L, -2, "n");
    return 1;
}

void bdl_open_data(lua_State *L)
{
    static const luaL_Reg meta[] = {
        {"__gc", data_gc}, {"__index", data_index}, {"__len", data_len},
        {"__tostring", data_tostring}, {NULL, NULL}};
    luaL_newmetatable(L, BDL_DATA);
    luaL_setfuncs(L, meta, 0);
    lua_pop(L, 1);
    static const char *const kinds[] = {"bumps", "stripes", "stripe_sum"};
    lua_createtable(L, 0, 5);
    for (int i = 0; i < 3; i++) {
        lua_pushstring(L, kinds[i]);
        lua_pushcclosure(L, data_new, 1);
        lua_setfield(L, -2, kinds[i]);
    }
    lua_pushcfunction(L, data_grid);
    lua_setfield(L, -2, "grid");
    lua_pushcfunction(L, data_concat);
    lua_setfield(L, -2, "concat");
    lua_setfield(L, -2, "data");
}
