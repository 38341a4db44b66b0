/* Internals of the Lua front end (bdrun and the `bd` module).
 *
 * Error conventions (DESIGN.md):
 *   programming errors (wrong type, bad shape, released tensor) raise a Lua
 *   error at the caller's file:line; bdrun prints it with a traceback;
 *   configuration errors (misspelt key, value out of range) raise a one-line
 *   error that bdrun prints without a traceback;
 *   failures of the world (missing file, bad checkpoint, bad plugin) return
 *   nil, message, stage.
 *
 * C resources are always boxed in a userdata with __gc before they are made
 * (liolib's newprefile pattern), so a raise never leaks them. */
#ifndef BD_LUA_INTERNAL_H
#define BD_LUA_INTERNAL_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "bd/config.h"
#include "bd/status.h"
#include "bd/tensor.h"

#define BDL_TENSOR "bd.Tensor"
#define BDL_CONFIG "bd.Config"
#define BDL_RUN    "bd.Run"

/* ---- errors (lmodule.c) --------------------------------------------------- */

/* Raise bd_last_error() at the caller's line. */
int bdl_raise(lua_State *L);
/* Raise a configuration error: "file:line: message", printed by bdrun on
 * one line without a traceback. */
int bdl_config_error(lua_State *L, const char *fmt, ...);
/* bd_last_error() as a configuration error for BD_E_ARG, else bdl_raise. */
int bdl_raise_status(lua_State *L, bd_status s);
/* Push nil, bd_last_error(), stage and return 3. */
int bdl_fail(lua_State *L, const char *stage);
/* True when err (a string) was raised by bdl_config_error. */
int bdl_is_config_error(lua_State *L, int err);

/* ---- tensors (ltensor.c) -------------------------------------------------- */

/* Push an owned tensor box holding nothing yet; store the tensor in the
 * returned slot once it is made (it is freed with the box). */
bd_tensor **bdl_new_tensor_slot(lua_State *L);
/* Push a tensor owned by the Lua value at index `owner`, which the box
 * keeps alive. */
void bdl_push_view(lua_State *L, bd_tensor *t, int owner);
/* The live tensor at arg; raises on another type or a released tensor. */
bd_tensor *bdl_check_tensor(lua_State *L, int arg);
/* The tensor at arg, or a nested table of numbers converted to one (which
 * then replaces the table at arg, so it lives as long as the call). */
bd_tensor *bdl_to_tensor(lua_State *L, int arg);
/* True when dim d is the innermost one of t, in recursions over dims (the
 * second test states the bound the compiler cannot see). */
static inline int bdl_innermost(const bd_tensor *t, int d)
{
    return d >= t->ndim - 1 || d >= BD_MAX_DIMS - 1;
}
/* Tell the Lua collector about `bytes` held in C, so that garbage tensors
 * are collected at the pace they are made. */
void bdl_account(lua_State *L, size_t bytes);

/* ---- config (lconfig.c) --------------------------------------------------- */

/* The table at arg (or an empty one if nil/none) as a bd_config, boxed on
 * the stack top. Values: numbers, strings, booleans (1 or 0). */
bd_config *bdl_check_config(lua_State *L, int arg, const char *owner);
/* Parse key=value arguments into the overrides bd.config applies. Raises a
 * configuration error on a malformed or repeated argument. */
void bdl_set_overrides(lua_State *L, int n, char **args);
/* Raise if overrides were given but the script never called bd.config. */
void bdl_check_overrides_used(lua_State *L);
/* Push the resolved config table (or nil if bd.config was not called). */
void bdl_push_resolved_config(lua_State *L);

/* The step a run's log lines carry (run.c); -1: none. */
void bdl_run_set_step(lua_State *L, int idx, int64_t step);

/* ---- module parts: each adds its functions to the table on the top ------ */

void bdl_open_log(lua_State *L);     /* bd.log, bd.time */
void bdl_open_tensor(lua_State *L);  /* bd.tensor, bd.Tensor methods */
void bdl_open_config(lua_State *L);  /* bd.config */
void bdl_open_run(lua_State *L);     /* bd.run */
void bdl_open_image(lua_State *L);   /* bd.image */

int luaopen_bd(lua_State *L);

#endif
