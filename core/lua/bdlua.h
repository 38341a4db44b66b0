/* Internals of the Lua front end (bdrun and the `bd` module).
 *
 * Error conventions (DESIGN.md):
 *   programming errors (wrong type, bad shape, released tensor) raise a Lua
 *   error at the caller's file:line; bdrun prints it with a traceback;
 *   configuration errors (misspelt key, value out of range) raise a one-line
 *   error that bdrun prints without a traceback;
 *   failures of the world (missing file, bad checkpoint) return nil,
 *   message, stage where a script may carry on; a constructor whose nil
 *   the next call would misreport (bd.model, bd.metric, bd.models: a bad
 *   plugin; bd.run: a folder it cannot make or lock; bd.train: a resume
 *   that fails; bd.ckpt.load, load_model: a model that would be left
 *   unloaded) raises the underlying message instead.
 *
 * C resources are always boxed in a userdata with __gc before they are made
 * (liolib's newprefile pattern), so a raise never leaks them. */
#ifndef BD_LUA_INTERNAL_H
#define BD_LUA_INTERNAL_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "bd/config.h"
#include "bd/diffusion.h"
#include "bd/nn.h"
#include "bd/status.h"
#include "bd/tensor.h"

#define BDL_TENSOR "bd.Tensor"
#define BDL_CONFIG "bd.Config"
#define BDL_RUN    "bd.Run"
#define BDL_MODEL  "bd.Model"
#define BDL_DATA   "bd.Dataset"

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
/* Raise the string on the stack top as it is: bdrun prints it without
 * adding a traceback (it is one line, or carries its own). */
int bdl_raise_final(lua_State *L);
/* True when err (a string) was raised by bdl_raise_final. */
int bdl_is_final_error(lua_State *L, int err);
/* Message handler for lua_pcall: appends a traceback to a string error
 * (not to one raised by bdl_raise_final); describes non-string errors
 * (lua.c's msghandler). */
int bdl_traceback(lua_State *L);

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
 * the stack top. Values: numbers, strings, booleans (1 or 0). Keys listed
 * in the NULL-terminated `skip` (may be NULL) are left out: the binding
 * reads those itself. */
bd_config *bdl_check_config(lua_State *L, int arg, const char *owner,
                            const char *const *skip);
/* The folder of the options {from = folder} at idx (pushed), or NULL for
 * none or nil; another option or type is a configuration error naming
 * owner ("metric", "model 'unet'"). */
const char *bdl_read_from(lua_State *L, int idx, const char *owner);
/* Parse key=value arguments into the overrides bd.config applies. Raises a
 * configuration error on a malformed or repeated argument. */
void bdl_set_overrides(lua_State *L, int n, char **args);
/* Raise if overrides were given but the script never called bd.config. */
void bdl_check_overrides_used(lua_State *L);
/* Push the resolved config table (or nil if bd.config was not called). */
void bdl_push_resolved_config(lua_State *L);

/* ---- runs (lrun.c) -------------------------------------------------------- */

typedef struct bd_run bd_run;
typedef struct run_box {
    bd_run *run;   /* NULL once closed */
    double  start; /* bd_time() at open */
    int64_t step;  /* the step log lines carry (set by bd.train); -1: none */
} run_box;

/* The open run at arg; raises on another type or a closed run. */
run_box *bdl_check_run(lua_State *L, int arg);

/* ---- datasets (ldata.c) -------------------------------------------------- */

typedef struct bd_dataset bd_dataset;
bd_dataset *bdl_check_dataset(lua_State *L, int arg);

/* ---- module parts: each adds its functions to the table on the top ------ */

void bdl_open_log(lua_State *L);     /* bd.log, bd.time */
void bdl_open_tensor(lua_State *L);  /* bd.tensor, bd.Tensor methods */
void bdl_open_config(lua_State *L);  /* bd.config */
void bdl_open_run(lua_State *L);     /* bd.run */
void bdl_open_image(lua_State *L);   /* bd.image */
void bdl_open_data(lua_State *L);    /* bd.data */
void bdl_open_model(lua_State *L);   /* bd.model, bd.models */
void bdl_open_train(lua_State *L);   /* bd.train */
void bdl_open_sample(lua_State *L);  /* bd.sample */
void bdl_open_metric(lua_State *L);  /* bd.metric */
void bdl_open_ckpt(lua_State *L);    /* bd.ckpt */
void bdl_open_dist(lua_State *L);    /* bd.dist (ldist.c) */

/* ---- models (lmodel.c) --------------------------------------------------- */

/* A model and what its last training left for sampling: the EMA (owned by
 * the trainer, which the box keeps alive as its user value 1) and the
 * diffusion settings it was trained with. */
typedef struct model_box {
    bd_model         *m;         /* NULL only while being made */
    bd_ema           *ema;       /* or NULL */
    int               trained;   /* diffusion holds the trained settings */
    bd_diffusion_spec diffusion;
} model_box;

model_box *bdl_check_model(lua_State *L, int arg);

/* Push a new, empty model box (set its m before anything can raise). */
model_box *bdl_push_model(lua_State *L);

/* ---- training (ltrain.c) --------------------------------------------------- */

typedef struct bd_trainer bd_trainer;
/* The trainer of the model's last bd.train, or NULL (the model keeps it). */
bd_trainer *bdl_model_trainer(lua_State *L, int model);

int luaopen_bd(lua_State *L);

#endif
