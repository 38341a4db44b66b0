/* bd.sample(model, labels [, opts]): generate one image per label.
 *
 *   local s = bd.sample(model, probe, { sampler = "ddim", steps = 50,
 *                                       seed = 1, taps = { "layer4" } })
 *   s.images (N, C, H, W), s.taps.layer4 (N, ...), s.tap_t, s.labels
 *
 * labels: an (N, 2) tensor, a table of {x, y}, or a table with a .labels
 * field (what bd.data.grid returns). opts: bd_sample_read's keys (sampler,
 * steps, eta, seed, batch, clip, model_eps, tap_t and the diffusion keys),
 * plus taps (names of activations to return) and ema (sample with the EMA weights
 * of the model's last training; default true when it has them). The
 * diffusion keys default to those the model was trained with. */
#include "bdlua.h"

#include <stdio.h>
#include <string.h>

#define BDL_SAMPLES "bd.Samples"

static const char *const LUA_KEYS[] = {"taps", "ema", NULL};

static int samples_gc(lua_State *L)
{
    bd_samples_free(luaL_checkudata(L, 1, BDL_SAMPLES));
    return 0;
}

/* The trained diffusion settings for the keys the caller did not give. */
static bd_status fill_diffusion(bd_config *cfg, const bd_diffusion_spec *d)
{
    if (!bd_config_has(cfg, "schedule"))
        BD_TRY(bd_config_set_str(cfg, "schedule", bd_schedule_name(d->schedule)));
    if (!bd_config_has(cfg, "prediction"))
        BD_TRY(bd_config_set_str(cfg, "prediction",
                                 bd_prediction_name(d->prediction)));
    if (!bd_config_has(cfg, "timesteps"))
        BD_TRY(bd_config_set_num(cfg, "timesteps", (double)d->timesteps));
    if (d->schedule != BD_SCHEDULE_LINEAR)
        return BD_OK; /* the betas are the linear schedule's */
    if (!bd_config_has(cfg, "beta_start"))
        BD_TRY(bd_config_set_num(cfg, "beta_start", d->beta_start));
    if (!bd_config_has(cfg, "beta_end"))
        BD_TRY(bd_config_set_num(cfg, "beta_end", d->beta_end));
    return BD_OK;
}

/* opts.taps: a list of names; they live in the opts table. */
static void read_taps(lua_State *L, bd_taps *taps)
{
    memset(taps, 0, sizeof *taps);
    if (!lua_istable(L, 3) || lua_getfield(L, 3, "taps") == LUA_TNIL)
        return;
    if (!lua_istable(L, -1))
        bdl_config_error(L, "sample: taps is a %s, expected a list of names",
                         luaL_typename(L, -1));
    int n = (int)lua_rawlen(L, -1);
    if (n > BD_MAX_TAPS)
        bdl_config_error(L, "sample: %d taps, expected at most %d", n,
                         BD_MAX_TAPS);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            bdl_config_error(L, "sample: taps[%d] is a %s, expected a name",
                             i + 1, luaL_typename(L, -1));
        taps->names[taps->n++] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
}

/* { images =, taps = { name = tensor }, tap_t =, labels = }, moving the
 * tensors out of the samples box. */
static void push_result(lua_State *L, bd_samples *sb, int labels)
{
    lua_createtable(L, 0, 4);
    bd_tensor **slot = bdl_new_tensor_slot(L);
    *slot = sb->images;
    sb->images = NULL;
    lua_setfield(L, -2, "images");
    lua_createtable(L, 0, sb->n_taps);
    for (int i = 0; i < sb->n_taps; i++) {
        slot = bdl_new_tensor_slot(L);
        *slot = sb->taps[i];
        sb->taps[i] = NULL;
        lua_setfield(L, -2, sb->tap_names[i]);
    }
    lua_setfield(L, -2, "taps");
    lua_pushinteger(L, sb->tap_t);
    lua_setfield(L, -2, "tap_t");
    lua_pushvalue(L, labels);
    lua_setfield(L, -2, "labels");
}

static int sample(lua_State *L)
{
    model_box *mb = bdl_check_model(L, 1);
    lua_settop(L, 3);
    if (lua_istable(L, 2) && lua_getfield(L, 2, "labels") != LUA_TNIL)
        lua_replace(L, 2); /* a probe: use its labels */
    lua_settop(L, 3);
    const bd_tensor *labels = bdl_to_tensor(L, 2);
    bd_config *cfg = bdl_check_config(L, 3, "sample", LUA_KEYS);
    bd_sample_opts o;
    bd_status s = mb->trained ? fill_diffusion(cfg, &mb->diffusion) : BD_OK;
    if (s == BD_OK)
        s = bd_sample_read(cfg, &o);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    bd_taps taps;
    read_taps(L, &taps);
    bool use_ema = mb->ema != NULL;
    if (lua_istable(L, 3) && lua_getfield(L, 3, "ema") != LUA_TNIL)
        use_ema = lua_toboolean(L, -1);
    if (use_ema && !mb->ema)
        return bdl_config_error(L, "sample: ema = true, but the model has no"
                                " EMA (train it with ema > 0 first)");
    bd_samples *sb = lua_newuserdatauv(L, sizeof *sb, 0);
    memset(sb, 0, sizeof *sb);
    luaL_setmetatable(L, BDL_SAMPLES);
    if (use_ema)
        bd_ema_swap(mb->ema);
    s = bd_sample(mb->m, labels, &o, taps.n ? &taps : NULL, sb);
    if (use_ema)
        bd_ema_swap(mb->ema);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    bdl_account(L, (size_t)sb->images->numel * sizeof(float));
    push_result(L, sb, 2);
    return 1;
}

void bdl_open_sample(lua_State *L)
{
    luaL_newmetatable(L, BDL_SAMPLES);
    lua_pushcfunction(L, samples_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushcfunction(L, sample);
    lua_setfield(L, -2, "sample");
}
