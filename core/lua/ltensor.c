/* Tensors as Lua userdata "bd.Tensor".
 *
 * A box holds a bd_tensor that it either owns (freed on release) or
 * borrows from another Lua value (a dataset, a sample result) which the
 * box keeps alive through its user value. __gc and __close both release;
 * a released tensor raises "attempt to use a released tensor". Indices are
 * 1-based, row-major, one per dimension. */
#include "bdlua.h"

#include <stdio.h>
#include <string.h>

#include "bd/npy.h"
#include "bd/safetensors.h"

typedef struct tensor_box {
    bd_tensor *t;     /* NULL once released */
    int        owned; /* free t on release */
} tensor_box;

static tensor_box *push_box(lua_State *L, int owned)
{
    tensor_box *b = lua_newuserdatauv(L, sizeof *b, 1);
    b->t = NULL;
    b->owned = owned;
    luaL_setmetatable(L, BDL_TENSOR);
    return b;
}

bd_tensor **bdl_new_tensor_slot(lua_State *L)
{
    return &push_box(L, 1)->t;
}

void bdl_push_view(lua_State *L, bd_tensor *t, int owner)
{
    owner = lua_absindex(L, owner);
    tensor_box *b = push_box(L, 0);
    lua_pushvalue(L, owner);
    lua_setiuservalue(L, -2, 1);
    b->t = t;
}

void bdl_account(lua_State *L, size_t bytes)
{
    lua_gc(L, LUA_GCSTEP, (int)(bytes >> 10));
}

bd_tensor *bdl_check_tensor(lua_State *L, int arg)
{
    tensor_box *b = luaL_checkudata(L, arg, BDL_TENSOR);
    if (!b->t)
        luaL_error(L, "attempt to use a released tensor");
    return b->t;
}

static int tensor_release(lua_State *L)
{
    tensor_box *b = luaL_checkudata(L, 1, BDL_TENSOR);
    if (b->owned)
        bd_tensor_free(b->t);
    b->t = NULL;
    lua_pushnil(L);
    lua_setiuservalue(L, 1, 1);
    return 0;
}

/* A new owned tensor of the given shape, pushed; raises on failure. */
static bd_tensor *push_new(lua_State *L, int ndim, const int64_t *shape)
{
    bd_tensor **slot = bdl_new_tensor_slot(L);
    *slot = bd_tensor_new(ndim, shape, false);
    if (!*slot)
        bdl_raise(L);
    bdl_account(L, (size_t)(*slot)->numel * sizeof(float));
    return *slot;
}

/* ---- methods ------------------------------------------------------------- */

static int tensor_shape(lua_State *L)
{
    bd_tensor *t = bdl_check_tensor(L, 1);
    lua_createtable(L, t->ndim, 0);
    for (int i = 0; i < t->ndim; i++) {
        lua_pushinteger(L, t->shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int tensor_numel(lua_State *L)
{
    lua_pushinteger(L, bdl_check_tensor(L, 1)->numel);
    return 1;
}

/* Offset of the element named by the 1-based indices at args 2..ndim+1. */
static int64_t element(lua_State *L, const bd_tensor *t, const char *fn)
{
    int given = lua_gettop(L) - 1 - (fn[0] == 's'); /* set has a value last */
    if (given != t->ndim)
        luaL_error(L, "%s: %d indices for a %d-dim tensor, expected %d", fn,
                   given, t->ndim, t->ndim);
    int64_t at = 0;
    for (int d = 0; d < t->ndim; d++) {
        lua_Integer i = luaL_checkinteger(L, d + 2);
        if (i < 1 || i > t->shape[d])
            luaL_error(L, "%s: index %d is %I, expected 1 to %I", fn, d + 1,
                       i, (lua_Integer)t->shape[d]);
        at = at * t->shape[d] + (i - 1);
    }
    return at;
}

static int tensor_get(lua_State *L)
{
    bd_tensor *t = bdl_check_tensor(L, 1);
    lua_pushnumber(L, t->data[element(L, t, "get")]);
    return 1;
}

static int tensor_set(lua_State *L)
{
    bd_tensor *t = bdl_check_tensor(L, 1);
    float v = (float)luaL_checknumber(L, lua_gettop(L));
    t->data[element(L, t, "set")] = v;
    return 0;
}

/* Push dims [d, ndim) of the block at data as nested tables. */
static void push_nested(lua_State *L, const bd_tensor *t, int d,
                        const float *data)
{
    luaL_checkstack(L, 2, "to_table");
    lua_createtable(L, (int)t->shape[d], 0);
    int64_t inner = bd_tensor_inner(t, d + 1);
    for (int64_t i = 0; i < t->shape[d]; i++) {
        if (bdl_innermost(t, d))
            lua_pushnumber(L, data[i]);
        else
            push_nested(L, t, d + 1, data + i * inner);
        lua_rawseti(L, -2, i + 1);
    }
}

static int tensor_to_table(lua_State *L)
{
    bd_tensor *t = bdl_check_tensor(L, 1);
    push_nested(L, t, 0, t->data);
    return 1;
}

static int tensor_tostring(lua_State *L)
{
    tensor_box *b = luaL_checkudata(L, 1, BDL_TENSOR);
    if (!b->t) {
        lua_pushstring(L, "bd.Tensor (released)");
        return 1;
    }
    char shape[80];
    luaL_Buffer buf;
    luaL_buffinit(L, &buf);
    luaL_addstring(&buf, "bd.Tensor");
    luaL_addstring(&buf, bd_shape_str(b->t, shape, sizeof shape));
    if (b->t->numel <= 8) {
        for (int64_t i = 0; i < b->t->numel; i++) {
            char v[32];
            snprintf(v, sizeof v, "%s%.6g", i ? " " : ": ", b->t->data[i]);
            luaL_addstring(&buf, v);
        }
    }
    luaL_pushresult(&buf);
    return 1;
}

/* ---- constructors -------------------------------------------------------- */

/* A shape table at arg: 1 to BD_MAX_DIMS positive integers. */
static int check_shape(lua_State *L, int arg, int64_t *shape)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    int ndim = (int)lua_rawlen(L, arg);
    luaL_argcheck(L, ndim >= 1 && ndim <= BD_MAX_DIMS, arg,
                  "expected a shape of 1 to 4 dims");
    for (int i = 0; i < ndim; i++) {
        lua_rawgeti(L, arg, i + 1);
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < 1)
            luaL_error(L, "shape: dim %d is %s, expected a positive integer",
                       i + 1, luaL_tolstring(L, -1, NULL));
        shape[i] = v;
        lua_pop(L, 1);
    }
    return ndim;
}

static int tensor_zeros(lua_State *L)
{
    int64_t shape[BD_MAX_DIMS];
    int ndim = check_shape(L, 1, shape);
    push_new(L, ndim, shape);
    return 1;
}

/* The shape of nested tables: the lengths along the first elements. */
static int nested_shape(lua_State *L, int arg, int64_t *shape)
{
    int ndim = 0;
    lua_pushvalue(L, arg);
    while (lua_type(L, -1) == LUA_TTABLE) {
        if (ndim == BD_MAX_DIMS)
            luaL_error(L, "from_table: more than %d levels of nesting",
                       BD_MAX_DIMS);
        shape[ndim] = (int64_t)lua_rawlen(L, -1);
        if (shape[ndim] == 0)
            luaL_error(L, "from_table: an empty table at level %d, expected"
                       " at least one element", ndim + 1);
        ndim++;
        lua_rawgeti(L, -1, 1);
    }
    lua_pop(L, ndim + 1);
    if (ndim == 0)
        luaL_typeerror(L, arg, "table");
    return ndim;
}

/* Copy the nested table on the stack top into data, checking that every
 * row has the length of the first and every leaf is a number. `where` is
 * the element's path, "[2][3]", for messages. */
static void fill_nested(lua_State *L, const bd_tensor *t, int d, float *data,
                        char *where, size_t len)
{
    luaL_checkstack(L, 2, "from_table");
    if (lua_type(L, -1) != LUA_TTABLE)
        luaL_error(L, "from_table: %s is a %s, expected a table of %I values",
                   where, luaL_typename(L, -1), (lua_Integer)t->shape[d]);
    if ((int64_t)lua_rawlen(L, -1) != t->shape[d])
        luaL_error(L, "from_table: %s has %I values, expected %I (rows must"
                   " have equal lengths)", where, (lua_Integer)lua_rawlen(L, -1),
                   (lua_Integer)t->shape[d]);
    int64_t inner = bd_tensor_inner(t, d + 1);
    size_t at = strlen(where);
    for (int64_t i = 0; i < t->shape[d]; i++) {
        snprintf(where + at, len - at, "[%lld]", (long long)(i + 1));
        lua_rawgeti(L, -1, i + 1);
        if (!bdl_innermost(t, d))
            fill_nested(L, t, d + 1, data + i * inner, where, len);
        else if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "from_table: %s is a %s, expected a number", where,
                       luaL_typename(L, -1));
        else
            data[i] = (float)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    where[at] = '\0';
}

static int tensor_from_table(lua_State *L)
{
    int64_t shape[BD_MAX_DIMS];
    char where[128] = "table";
    int ndim = nested_shape(L, 1, shape);
    bd_tensor *t = push_new(L, ndim, shape);
    lua_pushvalue(L, 1);
    fill_nested(L, t, 0, t->data, where, sizeof where);
    lua_pop(L, 1);
    return 1;
}

bd_tensor *bdl_to_tensor(lua_State *L, int arg)
{
    arg = lua_absindex(L, arg);
    if (lua_type(L, arg) == LUA_TTABLE) {
        lua_pushcfunction(L, tensor_from_table);
        lua_pushvalue(L, arg);
        lua_call(L, 1, 1);
        lua_replace(L, arg);
    }
    return bdl_check_tensor(L, arg);
}

/* x:save_npy(path) -> true | nil, msg, "io": for numpy.load. */
static int tensor_save_npy(lua_State *L)
{
    const bd_tensor *t = bdl_check_tensor(L, 1);
    const char *path = luaL_checkstring(L, 2);
    if (bd_npy_save(path, BD_CKPT_F32, t->ndim, t->shape, t->data) != BD_OK)
        return bdl_fail(L, "io");
    lua_pushboolean(L, 1);
    return 1;
}

/* One tensor of a safetensors file at path, pushed: a 0-dim one as a
 * number, any other as a tensor (U8 bytes as their values 0 to 255). One
 * a bd tensor cannot hold (more than 4 dims, an empty dim) fails, named. */
static bd_status push_safetensor(lua_State *L, const bd_ckpt_tensor *t,
                                 const char *path)
{
    const uint8_t *bytes = t->data;
    if (t->ndim == 0) {
        float f = 0;
        if (t->dtype == BD_CKPT_F32)
            memcpy(&f, bytes, sizeof f);
        lua_pushnumber(L, t->dtype == BD_CKPT_F32 ? (lua_Number)f : bytes[0]);
        return BD_OK;
    }
    bd_tensor **slot = bdl_new_tensor_slot(L);
    *slot = t->ndim <= BD_MAX_DIMS ? bd_tensor_new(t->ndim, t->dims, false) : NULL;
    if (!*slot) {
        char why[160];
        snprintf(why, sizeof why, "%s", t->ndim > BD_MAX_DIMS
                 ? "a bd tensor holds 1 to 4 dims" : bd_last_error());
        return bd_fail(BD_E_FORMAT, "safetensors '%s': tensor '%s' of %d dims: %s",
                       path, t->name, t->ndim, why);
    }
    if (t->dtype == BD_CKPT_F32)
        memcpy((*slot)->data, bytes, t->nbytes);
    for (uint64_t i = 0; t->dtype == BD_CKPT_U8 && i < t->nbytes; i++)
        (*slot)->data[i] = bytes[i];
    bdl_account(L, (size_t)(*slot)->numel * sizeof(float));
    return BD_OK;
}

/* bd.tensor.load_safetensors(path) -> { name = tensor | number }, { key = "value" }
 * | nil, msg, stage: every tensor (float32 or bytes, 1 to 4 dims; a 0-dim
 * tensor as a number) and the metadata. */
static int tensor_load_safetensors(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    bd_ckpt *ck;
    bd_status s = bd_safetensors_load(path, &ck);
    if (s != BD_OK)
        return bdl_fail(L, s == BD_E_IO ? "io" : "format");
    lua_createtable(L, 0, (int)bd_ckpt_tensor_count(ck));
    for (size_t i = 0; s == BD_OK && i < bd_ckpt_tensor_count(ck); i++) {
        const bd_ckpt_tensor *t = bd_ckpt_tensor_at(ck, i);
        s = push_safetensor(L, t, path);
        lua_setfield(L, -2, t->name);
    }
    lua_createtable(L, 0, (int)bd_ckpt_kv_count(ck));
    for (size_t i = 0; i < bd_ckpt_kv_count(ck); i++) {
        lua_pushstring(L, bd_ckpt_kv_at(ck, i)->v.str);
        lua_setfield(L, -2, bd_ckpt_kv_at(ck, i)->key);
    }
    bd_ckpt_free(ck);
    return s == BD_OK ? 2 : bdl_fail(L, "format");
}

void bdl_open_tensor(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"shape", tensor_shape},       {"numel", tensor_numel},
        {"get", tensor_get},           {"set", tensor_set},
        {"to_table", tensor_to_table}, {"release", tensor_release},
        {"save_npy", tensor_save_npy}, {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", tensor_release}, {"__close", tensor_release},
        {"__tostring", tensor_tostring}, {NULL, NULL}};
    static const luaL_Reg fns[] = {
        {"zeros", tensor_zeros}, {"from_table", tensor_from_table},
        {"load_safetensors", tensor_load_safetensors}, {NULL, NULL}};
    luaL_newmetatable(L, BDL_TENSOR);
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "tensor");
}
