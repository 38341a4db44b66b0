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
 *     resume = "runs/x/ckpt/step_500.bdc",   -- continue that run exactly
 *     progress = true,        -- the progress line on stderr
 *   }) -> { steps =, loss =, seconds =, images_per_s =, run = }
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
#include <string.h>
#include <sys/stat.h>

#include "bd/log.h"
#include "bd/run.h"
#include "bd/train.h"

#define BDL_TRAINER "bd.Trainer"

static const char *const LUA_KEYS[] = {"on_eval", "run", "ckpt_every",
                                       "resume", "progress", NULL};

typedef struct trainer_box {
    bd_trainer *tr; /* NULL only while being made */
} trainer_box;

typedef struct train_ctx {
    lua_State   *L;
    bd_model    *model;
    run_box     *run;
    int          run_idx, on_eval_idx; /* stack slots in bd.train's frame */
    int64_t      every, ckpt_every, batch;
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

/* <run>/ckpt/step_<N>.bdc */
static bd_status save_checkpoint(train_ctx *c, bd_trainer *tr, int64_t step)
{
    char dir[4200], path[4300];
    if (!c->run->run)
        return bd_fail(BD_E_STATE, "train: the run was closed during"
                       " training");
    snprintf(dir, sizeof dir, "%s/ckpt", bd_run_dir(c->run->run));
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return bd_fail(BD_E_IO, "train: cannot create '%s': %s", dir,
                       strerror(errno));
    snprintf(path, sizeof path, "%s/step_%lld.bdc", dir, (long long)step);
    return bdl_ckpt_save(path, c->model, tr);
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
    lua_pushcfunction(L, bdl_traceback);
    lua_pushcfunction(L, eval_step);
    lua_pushlightuserdata(L, c);
    lua_pushvalue(L, c->run_idx);
    lua_pushvalue(L, c->on_eval_idx);
    if (lua_pcall(L, 3, 0, -5) != LUA_OK) {
        lua_remove(L, -2); /* the handler; the message stays on top */
        c->lua_failed = true;
        return bd_fail(BD_E_STATE, "train: stopped by an error in on_eval");
    }
    lua_pop(L, 1);
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
    lua_getfield(L, 3, "progress");
    c->show_progress = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_getfield(L, 3, "resume");
    return lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
}

/* { steps =, loss =, seconds =, images_per_s =, run = } */
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
    if (resume && bdl_ckpt_resume(resume, mb->m, tb->tr) != BD_OK)
        return bdl_fail(L, "ckpt");
    lua_pushvalue(L, -1);
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
    lua_pushcfunction(L, train);
    lua_setfield(L, -2, "train");
}
