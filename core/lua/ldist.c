/* bd.dist: the processes this one works with (bd/dist.h).
 *
 *   bd.dist.rank(), bd.dist.size()   this process's place; 0 of 1 alone
 *   bd.dist.backend()                "mpi" or "single"
 *   bd.dist.barrier()                wait until every rank gets here
 *   bd.dist.alone()                  work alone from now on: what a task of
 *                                    a sweep does (scripts/lib/sweep.lua)
 *
 * Under mpirun every rank runs the whole script and bd.train trains one
 * model over all of them; only rank 0 should write files. */
#include "bdlua.h"

#include "bd/dist.h"

static int dist_rank(lua_State *L)
{
    lua_pushinteger(L, bd_dist_rank());
    return 1;
}

static int dist_size(lua_State *L)
{
    lua_pushinteger(L, bd_dist_size());
    return 1;
}

static int dist_backend(lua_State *L)
{
    lua_pushstring(L, bd_dist_backend());
    return 1;
}

static int dist_barrier(lua_State *L)
{
    if (bd_dist_barrier() != BD_OK)
        return bdl_raise(L);
    return 0;
}

static int dist_alone(lua_State *L)
{
    (void)L;
    bd_dist_alone();
    return 0;
}

void bdl_open_dist(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"rank", dist_rank}, {"size", dist_size}, {"backend", dist_backend},
        {"barrier", dist_barrier}, {"alone", dist_alone}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "dist");
}
