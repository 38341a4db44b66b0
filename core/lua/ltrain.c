/* bd.train(model, data, opts): the C training loop (bd/train.h) driven
 * from Lua.
 *
 *   bd.train(model, data, {
 *     steps = 2000 | epochs = 40, batch = 64, lr = 1e-3, warmup = 100,
 *     ema = 0.999, clip = 1.0, seed = 1, ...      -- bd_train_read's keys
 *                             -- (steps, when given, >= 1)
 *     every = 100,            -- log metrics and call on_eval every k steps
 *     on_eval = function(run) ... end,
 *     run = bd.run("name"),   -- required: the folder it writes to
 *     ckpt_every = 500,       -- save <run>/ckpt/step_<N>.bdc (0: never)
 *     keep = 3,               -- keep the newest 3 of them (0: all)
 *     pin = { 1000, 2000 },   -- and these, or those a function(step)
 *                             -- returns true for
 *     resume = "runs/x/ckpt/step_500.bdc",   -- continue that run exactly
 *            | "auto",        -- from the run's latest good checkpoint
 *     allow_changes = { "schedule" },  -- resume although these differ
 *     progress = true,        -- the progress line on stderr
 *   }) -> { steps =, loss =, seconds =, images_per_s =, run =,
 *           resumed = <path of the checkpoint resumed from, or nil>,
 *           skipped = { { path =, error = }, ... } }   -- resume = "auto"
 *
 * A training writes only to the run it is given. Without resume it starts
 * at step 0 and refuses a run that already holds a training (a line of
 * metrics.jsonl past step 0, or a checkpoint): resume = "auto" continues
 * it, bd.run(name, { overwrite = true }) starts it over. Resuming keeps
 * metrics.jsonl up to the step resumed from and drops the lines past it
 * (bd_run_rewind), so the history holds every step once.
 *
 * The session (bd/session.h) writes the checkpoints every ckpt_every steps
 * and after the last one into <run>/ckpt, keeps the newest `keep` and the
 * pinned ones (a list of steps, each one that writes a checkpoint, or a
 * function called with a step), and resumes: resume = "auto" continues
 * from the run's newest checkpoint that loads, skipping a damaged one with
 * a warning naming it (listed in `skipped`); with none yet, training
 * starts at step 0. A resume compares the checkpoint's settings with
 * these (bd_checkpoint_check_settings): the diffusion and the model's
 * config must match unless named in allow_changes; other training
 * settings may differ and are logged. Any failure to resume raises.
 *
 * Every k steps (and after the last) the run's metrics.jsonl gets
 * { step, time, loss (mean since the last line), lr, grad_norm,
 * images_per_s, epoch }, then on_eval(run) runs; run:log inside it carries
 * the step; then the checkpoint of that step is written. An error in
 * on_eval stops training and is raised with its own traceback. A
 * non-finite loss stops training with the step named; the checkpoints and
 * metrics already written stay. After training the model keeps the EMA
 * and diffusion settings for bd.sample. */
#include "bdlua.h"

#include <stdio.h>
#include <string.h>

#include "bd/log.h"
#include "bd/run.h"
#include "bd/session.h"

#define BDL_TRAINER "bd.Trainer"
#define BDL_SESSION "bd.Session"

static const char *const LUA_KEYS[] = {"on_eval", "run", "ckpt_every",
                                       "keep", "pin", "resume", "progress",
                                       "allow_changes", NULL};

typedef struct trainer_box {
    bd_trainer *tr; /* NULL only while being made */
} trainer_box;

typedef struct session_box {
    bd_session *s; /* NULL only while being made */
} session_box;

typedef struct train_ctx {
    lua_State   *L;
    run_box     *run;
    int          run_idx, on_eval_idx; /* stack slots in bd.train's frame */
    int          pin_idx, skipped_idx; /* (0: none) */
    double       last_loss;            /* of the last report */
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

static int session_gc(lua_State *L)
{
    session_box *b = luaL_checkudata(L, 1, BDL_SESSION);
    bd_session_free(b->s);
    b->s = NULL;
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

/* pin = function(step) (a bd_pinned_fn). */
static bd_status pinned(void *ud, int64_t step, bool *pin)
{
    train_ctx *c = ud;
    lua_pushvalue(c->L, c->pin_idx);
    lua_pushinteger(c->L, step);
    BD_TRY(call_lua(c, 1, 1, "pin"));
    *pin = lua_toboolean(c->L, -1);
    lua_pop(c->L, 1);
    return BD_OK;
}

/* resume = "auto" skipped path: { path =, error = } into the list. */
static void skipped(void *ud, const char *path, const char *error)
{
    train_ctx *c = ud;
    lua_State *L = c->L;
    lua_createtable(L, 0, 2);
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, error);
    lua_setfield(L, -2, "error");
    lua_rawseti(L, c->skipped_idx, (lua_Integer)lua_rawlen(L, c->skipped_idx) + 1);
}

/* Under lua_pcall: log the report, then on_eval(run).
 * 1: ctx, 2: the run, 3: on_eval or nil */
static int eval_step(lua_State *L)
{
    train_ctx *c = lua_touserdata(L, 1);
    const bd_train_report *r = c->report;
    c->run->step = r->step;
    lua_getfield(L, 2, "log");
    lua_pushvalue(L, 2);
    lua_createtable(L, 0, 5);
    lua_pushnumber(L, r->loss);
    lua_setfield(L, -2, "loss");
    lua_pushnumber(L, r->lr);
    lua_setfield(L, -2, "lr");
    lua_pushnumber(L, r->grad_norm);
    lua_setfield(L, -2, "grad_norm");
    lua_pushnumber(L, r->images_per_s);
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

/* Every `every` steps: the metrics line and on_eval. */
static bd_status on_report(bd_trainer *tr, const bd_train_report *r, void *ud)
{
    (void)tr;
    train_ctx *c = ud;
    lua_State *L = c->L;
    c->report = r;
    c->last_loss = r->loss;
    lua_pushcfunction(L, eval_step);
    lua_pushlightuserdata(L, c);
    lua_pushvalue(L, c->run_idx);
    lua_pushvalue(L, c->on_eval_idx);
    return call_lua(c, 3, 0, "on_eval");
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

/* pin = {steps} into so's pins (in a userdata of the frame), or pin =
 * function(step); pushes the option. */
static void read_pins(lua_State *L, train_ctx *c, bd_session_opts *so)
{
    lua_getfield(L, 3, "pin");
    c->pin_idx = lua_gettop(L);
    if (lua_isnil(L, -1))
        return;
    if (lua_isfunction(L, -1)) {
        so->pinned = pinned;
        so->pinned_ud = c;
        return;
    }
    if (!lua_istable(L, -1))
        bdl_config_error(L, "train: pin is a %s, expected a list of steps or a"
                         " function(step)", luaL_typename(L, -1));
    size_t n = (size_t)lua_rawlen(L, -1);
    int64_t *pins = lua_newuserdatauv(L, n * sizeof *pins + 1, 0);
    for (size_t i = 0; i < n; i++) {
        int ok;
        lua_rawgeti(L, c->pin_idx, (lua_Integer)i + 1);
        pins[i] = (int64_t)lua_tointegerx(L, -1, &ok);
        if (!ok)
            bdl_config_error(L, "train: pin[%d] = %s, expected a step",
                             (int)i + 1, luaL_tolstring(L, -1, NULL));
        lua_pop(L, 1);
    }
    so->pins = pins;
    so->n_pins = n;
}

/* allow_changes = { "schedule", ... } as a NULL-terminated list (in a
 * userdata of the frame), or NULL. */
static const char *const *read_allow(lua_State *L)
{
    lua_getfield(L, 3, "allow_changes");
    if (lua_isnil(L, -1))
        return NULL;
    if (!lua_istable(L, -1))
        bdl_config_error(L, "train: allow_changes is a %s, expected a list of"
                         " setting names ({ \"schedule\" })", luaL_typename(L, -1));
    int list = lua_gettop(L);
    size_t n = (size_t)lua_rawlen(L, list);
    const char **names = lua_newuserdatauv(L, (n + 1) * sizeof *names, 0);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, list, (lua_Integer)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            bdl_config_error(L, "train: allow_changes[%d] is a %s, expected a"
                             " setting's name", (int)i + 1, luaL_typename(L, -1));
        names[i] = lua_tostring(L, -1); /* kept alive by the list */
        lua_pop(L, 1);
    }
    names[n] = NULL;
    return names;
}

/* The run: required, so that a training writes only where the script
 * said. */
static void read_run(lua_State *L, train_ctx *c)
{
    if (lua_getfield(L, 3, "run") == LUA_TNIL)
        bdl_config_error(L, "train: no run given: pass run = bd.run(\"name\"),"
                         " the folder its metrics.jsonl and checkpoints go to"
                         " (a training writes only to a run it is given)");
    c->run = bdl_check_run(L, -1);
    c->run_idx = lua_gettop(L);
}

/* The Lua-side options into ctx and the session's; pushes on_eval (or
 * nil), the run, the checkpoint folder, pin, allow_changes and returns
 * resume (or NULL). */
static const char *read_lua_opts(lua_State *L, train_ctx *c,
                                 bd_session_opts *so)
{
    lua_getfield(L, 3, "on_eval");
    if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
        bdl_config_error(L, "train: on_eval is a %s, expected a function",
                         luaL_typename(L, -1));
    c->on_eval_idx = lua_gettop(L);
    read_run(L, c);
    so->ckpt_every = opt_integer(L, 3, "ckpt_every", 0);
    so->keep = opt_integer(L, 3, "keep", so->keep);
    so->dir = lua_pushfstring(L, "%s/ckpt", bd_run_dir(c->run->run));
    read_pins(L, c, so);
    so->allow_changes = read_allow(L);
    lua_getfield(L, 3, "progress");
    so->progress = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_getfield(L, 3, "resume");
    return lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
}

/* Where the training starts: resumed (metrics.jsonl cut back to that step)
 * or at step 0 in a run that holds no training yet. */
static void start(lua_State *L, train_ctx *c, bd_session *session,
                  bd_trainer *tr, const char *resume)
{
    size_t dropped;
    bd_status s = resume ? bd_session_resume(session, resume, skipped, c)
                         : bd_run_check_fresh(c->run->run);
    if (s == BD_OK && resume)
        s = bd_run_rewind(c->run->run, bd_trainer_state(tr)->step, &dropped);
    if (s == BD_E_STATE) /* a choice the script must make: one line */
        bdl_config_error(L, "%s", bd_last_error());
    if (s != BD_OK)
        bdl_raise_status(L, s);
}

/* { steps =, loss =, seconds =, images_per_s =, run =, resumed =,
 *   skipped = } */
static void push_summary(lua_State *L, const train_ctx *c, bd_session *s,
                         bd_trainer *tr, int64_t first, double seconds)
{
    int64_t steps = bd_trainer_state(tr)->step;
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, steps);
    lua_setfield(L, -2, "steps");
    lua_pushnumber(L, c->last_loss);
    lua_setfield(L, -2, "loss");
    lua_pushnumber(L, seconds);
    lua_setfield(L, -2, "seconds");
    lua_pushnumber(L, (double)((steps - first) * bd_trainer_opts(tr)->batch)
                          / seconds);
    lua_setfield(L, -2, "images_per_s");
    lua_pushvalue(L, c->run_idx);
    lua_setfield(L, -2, "run");
    if (bd_session_resumed(s)) {
        lua_pushstring(L, bd_session_resumed(s));
        lua_setfield(L, -2, "resumed");
    }
    if (c->skipped_idx) {
        lua_pushvalue(L, c->skipped_idx);
        lua_setfield(L, -2, "skipped");
    }
}

/* The trainer, boxed (the dataset is kept alive by it), on the top. */
static bd_trainer *push_trainer(lua_State *L, bd_model *m, bd_dataset *d,
                                const bd_train_opts *o)
{
    trainer_box *tb = lua_newuserdatauv(L, sizeof *tb, 2);
    tb->tr = NULL;
    luaL_setmetatable(L, BDL_TRAINER);
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, -2, 2); /* the dataset outlives the trainer */
    bd_status s = bd_trainer_new(m, d, o, &tb->tr);
    if (s != BD_OK)
        bdl_raise_status(L, s);
    return tb->tr;
}

/* The session, boxed, on the top. */
static bd_session *push_session(lua_State *L, bd_trainer *tr,
                                const bd_session_opts *so)
{
    session_box *sb = lua_newuserdatauv(L, sizeof *sb, 0);
    sb->s = NULL;
    luaL_setmetatable(L, BDL_SESSION);
    bd_status s = bd_session_new(tr, so, &sb->s);
    if (s != BD_OK)
        bdl_raise_status(L, s);
    return sb->s;
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
    train_ctx c = {.L = L};
    bd_session_opts so = bd_session_defaults();
    const char *resume = read_lua_opts(L, &c, &so);
    bd_trainer *tr = push_trainer(L, mb->m, d, &o);
    int trainer_idx = lua_gettop(L);
    bd_session *session = push_session(L, tr, &so);
    if (resume && strcmp(resume, "auto") == 0) {
        lua_newtable(L);
        c.skipped_idx = lua_gettop(L);
    }
    start(L, &c, session, tr, resume);
    lua_pushvalue(L, trainer_idx);
    lua_setiuservalue(L, 1, 1); /* the model keeps its trainer (EMA) */
    mb->ema = bd_trainer_ema(tr);
    mb->trained = 1;
    mb->diffusion = o.diffusion;

    int64_t first = bd_trainer_state(tr)->step;
    double start = bd_time();
    s = bd_session_run(session, on_report, &c);
    if (c.lua_failed)
        return bdl_raise_final(L);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    push_summary(L, &c, session, tr, first, bd_time() - start);
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
    luaL_newmetatable(L, BDL_SESSION);
    lua_pushcfunction(L, session_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushcfunction(L, train);
    lua_setfield(L, -2, "train");
}
