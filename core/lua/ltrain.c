/* bd.train(model, data, opts): the C training loop (bd/train.h) driven
 * from Lua.
 *
 *   bd.train(model, data, {
 *     steps = 2000 | epochs = 40, batch = 64, lr = 1e-3, warmup = 100,
 *     ema = 0.999, clip = 1.0, seed = 1, ...      -- bd_train_read's keys
 *     every = 100,            -- log metrics and call on_eval every k steps
 *     on_eval = function(run) ... end,
 *     run = bd.run("name"),   -- default: a run named after the script
 *     ckpt_every = 500,       -- save <run>/ckpt/step_<N>.bdc (0: never)
 *     keep = 3,               -- keep the newest 3 of them (0: all)
 *     pin = { 1000, 2000 },   -- and these, or those a function(step)
 *                             -- returns true for
 *     resume = "runs/x/ckpt/step_500.bdc",   -- continue that run exactly
 *            | "auto",        -- from the run's latest good checkpoint
 *     progress = true,        -- the progress line on stderr
 *   }) -> { steps =, loss =, seconds =, images_per_s =, run =,
 *           resumed = <path of the checkpoint resumed from, or nil>,
 *           skipped = { { path =, error = }, ... } }   -- resume = "auto"
 *
 * Checkpoints are written every ckpt_every steps and after the last one,
 * atomically (bd/ckpt.h). After each, the run's older checkpoints beyond
 * the newest `keep` are removed, except the pinned ones: a list of steps
 * (each one that writes a checkpoint) or a function called with a step.
 * Checkpoints of steps after the one just written are another run's and
 * stay. resume = "auto" continues from the run's newest checkpoint that
 * loads: a damaged one is skipped with a warning naming it (and listed in
 * `skipped`); with none yet, training starts at step 0; when none loads,
 * bd.train returns nil, message, "ckpt" (as for a path that does not
 * load). With checkpoints or resume = "auto", temp files of a killed
 * writer (step_<N>.bdc.tmp-<pid>, of a process that is gone) are removed
 * first, with a warning.
 *
 * Every k steps (and after the last) the run's metrics.jsonl gets
 * { step, time, loss (mean since the last line), lr, grad_norm,
 * images_per_s, epoch }, then on_eval(run) runs; run:log inside it carries
 * the step. An error in on_eval stops training and is raised with its own
 * traceback. A non-finite loss stops training with the step named; the
 * checkpoints and metrics already written stay. After training the model
 * keeps the EMA and diffusion settings for bd.sample. */
#include "bdlua.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bd/dist.h"
#include "bd/log.h"
#include "bd/run.h"
#include "bd/train.h"

#define BDL_TRAINER "bd.Trainer"

#define BDL_STEPS   "bd.CkptSteps"

static const char *const LUA_KEYS[] = {"on_eval", "run", "ckpt_every",
                                       "keep", "pin", "resume", "progress",
                                       NULL};

typedef struct trainer_box {
    bd_trainer *tr; /* NULL only while being made */
} trainer_box;

/* A run's checkpoint steps while resume = "auto" looks at them. */
typedef struct steps_box {
    int64_t *steps;
    size_t   n;
} steps_box;

typedef struct train_ctx {
    lua_State   *L;
    bd_model    *model;
    run_box     *run;
    int          run_idx, on_eval_idx; /* stack slots in bd.train's frame */
    int          pin_idx, skipped_idx; /* (0: none) */
    int64_t      every, ckpt_every, keep, batch;
    const int64_t *pins;   /* pin = {steps}: in a userdata of the frame */
    size_t       n_pins;
    char         ckpt_dir[4200];
    char         resumed[4400]; /* the checkpoint resumed from, or "" */
    bool         show_progress;
    bd_progress  progress;
    double       loss_sum, last_loss, last_time;
    int64_t      loss_n, last_step;
    const bd_train_report *report;
    bool         lua_failed; /* the error (with traceback) is on the stack */
} train_ctx;

static int trainer_gc(lua_State *L)
{
    trainer_box *b = luaL_checkudata(L, 1, BDL_TRAINER);
    bd_trainer_free(b->tr);
    b->tr = NULL;
    return 0;
}

static int steps_gc(lua_State *L)
{
    steps_box *b = luaL_checkudata(L, 1, BDL_STEPS);
    free(b->steps);
    b->steps = NULL;
    return 0;
}

/* Call the function below the nargs arguments on the top, leaving nres
 * results, under a traceback; on an error the message stays on the top
 * for bd.train to raise. */
static bd_status call_lua(train_ctx *c, int nargs, int nres, const char *what)
{
    lua_State *L = c->L;
    int handler = lua_gettop(L) - nargs - 1;
    lua_pushcfunction(L, bdl_traceback);
    lua_insert(L, handler);
    if (lua_pcall(L, nargs, nres, handler) != LUA_OK) {
        lua_remove(L, handler); /* the message stays on top */
        c->lua_failed = true;
        return bd_fail(BD_E_STATE, "train: stopped by an error in %s", what);
    }
    lua_remove(L, handler);
    return BD_OK;
}

/* Whether pin keeps the checkpoint of `step` (a bdl_pinned_fn). */
static bd_status pinned(void *ud, int64_t step, bool *pin)
{
    train_ctx *c = ud;
    for (size_t i = 0; i < c->n_pins && !*pin; i++)
        *pin = c->pins[i] == step;
    if (*pin || !c->pin_idx || !lua_isfunction(c->L, c->pin_idx))
        return BD_OK;
    lua_pushvalue(c->L, c->pin_idx);
    lua_pushinteger(c->L, step);
    BD_TRY(call_lua(c, 1, 1, "pin"));
    *pin = lua_toboolean(c->L, -1);
    lua_pop(c->L, 1);
    return BD_OK;
}

/* <run>/ckpt/step_<N>.bdc, then the older ones beyond keep and the pins
 * go: on the writer (rank 0) only, the other ranks hold the same state. */
static bd_status save_checkpoint(train_ctx *c, bd_trainer *tr, int64_t step)
{
    char path[4400];
    if (!c->run->run)
        return bd_fail(BD_E_STATE, "train: the run was closed during"
                       " training");
    if (!bd_dist_is_writer())
        return BD_OK;
    if (mkdir(c->ckpt_dir, 0777) != 0 && errno != EEXIST)
        return bd_fail(BD_E_IO, "train: cannot create '%s': %s", c->ckpt_dir,
                       strerror(errno));
    bdl_ckpt_step_path(path, sizeof path, c->ckpt_dir, step);
    BD_TRY(bdl_ckpt_save(path, c->model, tr));
    return bdl_ckpt_prune(c->ckpt_dir, step, c->keep, pinned, c);
}

/* resume = "auto": the run's newest checkpoint that loads. Each one that
 * does not is skipped with a warning and listed in a table (pushed, at
 * c->skipped_idx). None at all: a fresh start. */
static bd_status resume_auto(train_ctx *c, bd_model *m, bd_trainer *tr)
{
    lua_State *L = c->L;
    steps_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, BDL_STEPS);
    lua_newtable(L);
    c->skipped_idx = lua_gettop(L);
    BD_TRY(bdl_ckpt_steps(c->ckpt_dir, &b->steps, &b->n));
    if (b->n == 0)
        bd_log_info("train: no checkpoint in '%s' yet, starting at step 0",
                    c->ckpt_dir);
    for (size_t i = b->n; i-- > 0;) {
        bdl_ckpt_step_path(c->resumed, sizeof c->resumed, c->ckpt_dir,
                           b->steps[i]);
        if (bdl_ckpt_resume(c->resumed, m, tr) == BD_OK)
            return BD_OK;
        bd_log_warn("train: resume = auto skips '%s': %s", c->resumed,
                    bd_last_error());
        lua_createtable(L, 0, 2);
        lua_pushstring(L, c->resumed);
        lua_setfield(L, -2, "path");
        lua_pushstring(L, bd_last_error());
        lua_setfield(L, -2, "error");
        lua_rawseti(L, c->skipped_idx, (lua_Integer)(b->n - i));
    }
    c->resumed[0] = '\0';
    if (b->n == 0)
        return BD_OK;
    lua_rawgeti(L, c->skipped_idx, 1);
    lua_getfield(L, -1, "error");
    return bd_fail(BD_E_FORMAT, "train: resume = auto: none of the %zu"
                   " checkpoints in '%s' loads; the latest: %s", b->n,
                   c->ckpt_dir, lua_tostring(L, -1));
}

/* Where training starts: stale temp files go, then resume (a path or
 * "auto", or NULL). */
static bd_status prepare_checkpoints(train_ctx *c, const char *resume,
                                     bd_model *m, bd_trainer *tr)
{
    bool automatic = resume && strcmp(resume, "auto") == 0;
    if (c->ckpt_every > 0 || automatic)
        BD_TRY(bdl_ckpt_clean(c->ckpt_dir));
    if (automatic)
        return resume_auto(c, m, tr);
    if (!resume)
        return BD_OK;
    snprintf(c->resumed, sizeof c->resumed, "%s", resume);
    return bdl_ckpt_resume(resume, m, tr);
}

/* Under lua_pcall: log the metrics line, then on_eval(run).
 * 1: ctx, 2: the run, 3: on_eval or nil */
static int eval_step(lua_State *L)
{
    train_ctx *c = lua_touserdata(L, 1);
    const bd_train_report *r = c->report;
    double now = bd_time();
    c->run->step = r->step;
    lua_getfield(L, 2, "log");
    lua_pushvalue(L, 2);
    lua_createtable(L, 0, 6);
    lua_pushnumber(L, c->loss_sum / (double)c->loss_n);
    lua_setfield(L, -2, "loss");
    lua_pushnumber(L, r->lr);
    lua_setfield(L, -2, "lr");
    lua_pushnumber(L, r->grad_norm);
    lua_setfield(L, -2, "grad_norm");
    lua_pushnumber(L, (double)((r->step - c->last_step) * c->batch)
                          / (now - c->last_time));
    lua_setfield(L, -2, "images_per_s");
    lua_pushinteger(L, r->epoch);
    lua_setfield(L, -2, "epoch");
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2))
        return luaL_error(L, "train: %s", lua_tostring(L, -1));
    if (!lua_isnil(L, 3)) {
        bd_log_clear_line();
        lua_pushvalue(L, 3);
        lua_pushvalue(L, 2);
        lua_call(L, 1, 0);
    }
    return 0;
}

/* Every step: the progress line; every k steps the Lua part; checkpoints. */
static bd_status on_report(bd_trainer *tr, const bd_train_report *r, void *ud)
{
    train_ctx *c = ud;
    if (c->show_progress)
        bd_progress_update(&c->progress, r->step, r->loss);
    c->loss_sum += r->loss;
    c->loss_n++;
    bool last = r->step == r->total;
    if (c->ckpt_every > 0 && (r->step % c->ckpt_every == 0 || last))
        BD_TRY(save_checkpoint(c, tr, r->step));
    if (r->step % c->every != 0 && !last)
        return BD_OK;
    lua_State *L = c->L;
    c->report = r;
    lua_pushcfunction(L, eval_step);
    lua_pushlightuserdata(L, c);
    lua_pushvalue(L, c->run_idx);
    lua_pushvalue(L, c->on_eval_idx);
    BD_TRY(call_lua(c, 3, 0, "on_eval"));
    c->last_loss = c->loss_sum / (double)c->loss_n;
    c->loss_sum = 0.0;
    c->loss_n = 0;
    c->last_step = r->step;
    c->last_time = bd_time();
    return BD_OK;
}

static lua_Integer opt_integer(lua_State *L, int opts, const char *key,
                               lua_Integer dflt)
{
    lua_getfield(L, opts, key);
    int ok = 1;
    lua_Integer v = lua_isnil(L, -1) ? dflt : lua_tointegerx(L, -1, &ok);
    if (!ok || v < 0)
        bdl_config_error(L, "train: %s = %s, expected an integer >= 0", key,
                         luaL_tolstring(L, -1, NULL));
    lua_pop(L, 1);
    return v;
}

/* The Lua-side options into ctx; pushes on_eval (or nil) and the run. */
static const char *read_lua_opts(lua_State *L, train_ctx *c)
{
    lua_getfield(L, 3, "on_eval");
    if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
        bdl_config_error(L, "train: on_eval is a %s, expected a function",
                         luaL_typename(L, -1));
    c->on_eval_idx = lua_gettop(L);
    if (lua_getfield(L, 3, "run") == LUA_TNIL) {
        lua_pop(L, 1);
        bdl_push_script_run(L);
    }
    c->run = bdl_check_run(L, -1);
    c->run_idx = lua_gettop(L);
    c->ckpt_every = opt_integer(L, 3, "ckpt_every", 0);
    c->keep = opt_integer(L, 3, "keep", 3);
    snprintf(c->ckpt_dir, sizeof c->ckpt_dir, "%s/ckpt",
             bd_run_dir(c->run->run));
    lua_getfield(L, 3, "progress");
    c->show_progress = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_getfield(L, 3, "resume");
    return lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
}

/* pin = {steps} (each a step that writes a checkpoint, of `total`) into
 * c->pins, or pin = function(step); pushes the option. */
static void read_pins(lua_State *L, train_ctx *c, int64_t total)
{
    lua_getfield(L, 3, "pin");
    c->pin_idx = lua_gettop(L);
    if (lua_isnil(L, -1))
        return;
    if (c->ckpt_every == 0)
        bdl_config_error(L, "train: pin needs ckpt_every > 0");
    if (lua_isfunction(L, -1))
        return;
    if (!lua_istable(L, -1))
        bdl_config_error(L, "train: pin is a %s, expected a list of steps or a"
                         " function(step)", luaL_typename(L, -1));
    size_t n = (size_t)lua_rawlen(L, -1);
    int64_t *pins = lua_newuserdatauv(L, n * sizeof *pins, 0);
    for (size_t i = 0; i < n; i++) {
        int ok;
        lua_rawgeti(L, c->pin_idx, (lua_Integer)i + 1);
        int64_t v = (int64_t)lua_tointegerx(L, -1, &ok);
        if (!ok || v < 1 || (v % c->ckpt_every != 0 && v != total))
            bdl_config_error(L, "train: pin[%d] = %s is not a step that writes a"
                             " checkpoint (every %I steps, and the last, %I)",
                             (int)i + 1, luaL_tolstring(L, -1, NULL),
                             (lua_Integer)c->ckpt_every, (lua_Integer)total);
        pins[i] = v;
        lua_pop(L, 1);
    }
    c->pins = pins;
    c->n_pins = n;
}

/* { steps =, loss =, seconds =, images_per_s =, run =, resumed =,
 *   skipped = } */
static void push_summary(lua_State *L, const train_ctx *c, bd_trainer *tr,
                         int64_t first, double seconds)
{
    int64_t steps = bd_trainer_state(tr)->step;
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, steps);
    lua_setfield(L, -2, "steps");
    lua_pushnumber(L, c->last_loss);
    lua_setfield(L, -2, "loss");
    lua_pushnumber(L, seconds);
    lua_setfield(L, -2, "seconds");
    lua_pushnumber(L, (double)((steps - first) * c->batch) / seconds);
    lua_setfield(L, -2, "images_per_s");
    lua_pushvalue(L, c->run_idx);
    lua_setfield(L, -2, "run");
    if (c->resumed[0]) {
        lua_pushstring(L, c->resumed);
        lua_setfield(L, -2, "resumed");
    }
    if (c->skipped_idx) {
        lua_pushvalue(L, c->skipped_idx);
        lua_setfield(L, -2, "skipped");
    }
}

static int train(lua_State *L)
{
    model_box *mb = bdl_check_model(L, 1);
    bd_dataset *d = bdl_check_dataset(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    bd_config *cfg = bdl_check_config(L, 3, "train", LUA_KEYS);
    bd_train_opts o;
    bd_status s = bd_train_read(cfg, &o);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    train_ctx c = {.L = L, .model = mb->m, .every = o.every,
                   .batch = o.batch};
    const char *resume = read_lua_opts(L, &c);
    o.every = 1; /* the C loop reports every step: progress, checkpoints */

    trainer_box *tb = lua_newuserdatauv(L, sizeof *tb, 2);
    tb->tr = NULL;
    luaL_setmetatable(L, BDL_TRAINER);
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, -2, 2); /* the dataset outlives the trainer */
    if ((s = bd_trainer_new(mb->m, d, &o, &tb->tr)) != BD_OK)
        return bdl_raise_status(L, s);
    int trainer_idx = lua_gettop(L);
    read_pins(L, &c, bd_trainer_total(tb->tr));
    if (prepare_checkpoints(&c, resume, mb->m, tb->tr) != BD_OK)
        return bdl_fail(L, "ckpt");
    lua_pushvalue(L, trainer_idx);
    lua_setiuservalue(L, 1, 1); /* the model keeps its trainer (EMA) */
    mb->ema = bd_trainer_ema(tb->tr);
    mb->trained = 1;
    mb->diffusion = o.diffusion;

    int64_t first = bd_trainer_state(tb->tr)->step;
    double start = bd_time();
    c.last_step = first;
    c.last_time = start;
    if (c.show_progress)
        bd_progress_start(&c.progress, "train", first, bd_trainer_total(tb->tr),
                          bd_progress_stderr_is_tty());
    s = bd_trainer_run(tb->tr, on_report, &c);
    if (c.show_progress)
        bd_progress_finish(&c.progress);
    if (c.lua_failed)
        return bdl_raise_final(L);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    push_summary(L, &c, tb->tr, first, bd_time() - start);
    return 1;
}

bd_trainer *bdl_model_trainer(lua_State *L, int model)
{
    bdl_check_model(L, model);
    lua_getiuservalue(L, model, 1);
    trainer_box *b = luaL_testudata(L, -1, BDL_TRAINER);
    lua_pop(L, 1);
    return b ? b->tr : NULL;
}

void bdl_open_train(lua_State *L)
{
    luaL_newmetatable(L, BDL_TRAINER);
    lua_pushcfunction(L, trainer_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, BDL_STEPS);
    lua_pushcfunction(L, steps_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushcfunction(L, train);
    lua_setfield(L, -2, "train");
}
