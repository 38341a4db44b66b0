/* bd.sample(model, labels [, opts]): generate one image per label.
 *
 *   local s = bd.sample(model, probe, { sampler = "ddim", steps = 50,
 *                                       seed = 1, taps = { "layer4" } })
 *   s.images (N, C, H, W), s.taps.layer4 (N, ...), s.tap_t, s.labels
 *
 * labels: an (N, 2) tensor, a table of {x, y}, or a table with a .labels
 * field (what bd.data.grid returns). opts: bd_sample_read's keys (sampler,
 * steps, eta, seed, batch, clip, ddim_eps, tap_t and the diffusion keys),
 * plus taps (names of activations to return) and ema (sample with the EMA weights
 * of the model's last training; default true when it has them). The
 * diffusion keys default to those the model was trained with.
 *
 * bd.represent(model, labels, opts): the taps on one fixed noisy input per
 * label at one timestep, in one forward pass (bd_represent).
 *
 *   local r = bd.represent(model, probe, { taps = { "layer4" }, t = 500,
 *                                          seed = 1, data = data })
 *   r.taps.layer4 (N, ...), r.images (the inputs), r.tap_t, r.labels, r.seed
 *
 * labels as bd.sample's. opts: t (default -1: T / 2), seed, shared_noise
 * (1: one noise image for all labels), batch, the diffusion keys, taps (at
 * least one), ema, and
 *   input  "bump" (default): each label's own clean image, drawn as the
 *          training images are, noised to t with the shared noise, so
 *          labels differ in image and conditioning, never in noise;
 *          "noise": the noise alone, the same input for every label, so
 *          only the conditioning differs
 *   data   the dataset whose drawing the clean images follow (sigma,
 *          denom, invert, kind); default bumps of sigma 1 at the model's
 *          size. */
#include "bdlua.h"

#include <stdio.h>
#include <string.h>

#include "bd/data.h"

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

/* What bd.sample and bd.represent read alike from (model, labels, opts):
 * the model, the labels (a probe's .labels replace arg 2), the options as a
 * config over the trained diffusion settings (without the keys lua_keys
 * the binding reads itself), the taps, and whether to use the EMA. */
typedef struct call {
    model_box       *mb;
    const bd_tensor *labels;
    bd_config       *cfg;
    bd_taps          taps;
    bool             use_ema;
} call;

static void read_call(lua_State *L, const char *owner,
                      const char *const *lua_keys, call *c)
{
    c->mb = bdl_check_model(L, 1);
    lua_settop(L, 3);
    if (lua_istable(L, 2) && lua_getfield(L, 2, "labels") != LUA_TNIL)
        lua_replace(L, 2); /* a probe: use its labels */
    lua_settop(L, 3);
    c->labels = bdl_to_tensor(L, 2);
    c->cfg = bdl_check_config(L, 3, owner, lua_keys);
    bd_status s = c->mb->trained ? fill_diffusion(c->cfg, &c->mb->diffusion)
                                 : BD_OK;
    if (s != BD_OK)
        bdl_raise_status(L, s);
    read_taps(L, &c->taps);
    c->use_ema = c->mb->ema != NULL;
    if (lua_istable(L, 3) && lua_getfield(L, 3, "ema") != LUA_TNIL)
        c->use_ema = lua_toboolean(L, -1);
    lua_settop(L, 4); /* the config box stays at 4 */
    if (c->use_ema && !c->mb->ema)
        bdl_config_error(L, "%s: ema = true, but the model has no EMA (train"
                         " it with ema > 0 first)", owner);
}

/* A samples box on the stack top, for the result. */
static bd_samples *new_samples(lua_State *L)
{
    bd_samples *sb = lua_newuserdatauv(L, sizeof *sb, 0);
    memset(sb, 0, sizeof *sb);
    luaL_setmetatable(L, BDL_SAMPLES);
    return sb;
}

/* The EMA weights in (or back out) when the call uses them. */
static void swap_weights(const call *c)
{
    if (c->use_ema)
        bd_ema_swap(c->mb->ema);
}

/* Raise on failure; else push the result table of the samples box sb
 * (labels at arg 2). */
static int finish(lua_State *L, bd_samples *sb, bd_status s)
{
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    bdl_account(L, (size_t)sb->images->numel * sizeof(float));
    push_result(L, sb, 2);
    return 1;
}

static int sample(lua_State *L)
{
    call c;
    read_call(L, "sample", LUA_KEYS, &c);
    bd_sample_opts o;
    bd_status s = bd_sample_read(c.cfg, &o);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    bd_samples *sb = new_samples(L);
    swap_weights(&c);
    s = bd_sample(c.mb->m, c.labels, &o, c.taps.n ? &c.taps : NULL, sb);
    swap_weights(&c);
    return finish(L, sb, s);
}

/* ---- bd.represent ------------------------------------------------------------ */

static const char *const REPRESENT_KEYS[] = {"taps", "ema", "input", "data", NULL};
static const char *const INPUTS[] = {"bump", "noise", NULL};

/* opts.data: a dataset whose drawing the clean images follow; default
 * bumps of the defaults (sigma 1) at the model's size. */
static bd_data_spec clean_spec(lua_State *L, const bd_model *m)
{
    bd_data_spec spec = bd_data_defaults();
    spec.size = spec.canvas = m->size;
    if (lua_istable(L, 3) && lua_getfield(L, 3, "data") != LUA_TNIL) {
        spec = bdl_check_dataset(L, -1)->spec;
        if (spec.size != m->size)
            bdl_config_error(L, "represent: data has images of %dx%d, the"
                             " model %dx%d", (int)spec.size, (int)spec.size,
                             (int)m->size, (int)m->size);
    }
    return spec;
}

/* The clean images for input = "bump" (boxed on the stack top), or NULL
 * for input = "noise". */
static const bd_tensor *clean_images(lua_State *L, const call *c)
{
    int input = 0;
    if (lua_istable(L, 3) && lua_getfield(L, 3, "input") != LUA_TNIL) {
        const char *name = lua_tostring(L, -1);
        while (INPUTS[input] && (!name || strcmp(INPUTS[input], name)))
            input++;
        if (!INPUTS[input])
            bdl_config_error(L, "represent: input = %s, expected bump (the"
                             " label's own clean image, noised to t) or noise"
                             " (the noise alone)", luaL_tolstring(L, -1, NULL));
    }
    if (input == 1)
        return NULL;
    bd_data_spec spec = clean_spec(L, c->mb->m);
    bd_tensor **slot = bdl_new_tensor_slot(L);
    bd_status s = bd_data_draw(&spec, c->labels, slot);
    if (s != BD_OK)
        bdl_raise_status(L, s);
    return *slot;
}

static int represent(lua_State *L)
{
    call c;
    read_call(L, "represent", REPRESENT_KEYS, &c);
    bd_represent_opts o;
    bd_status s = bd_represent_read(c.cfg, &o);
    if (s != BD_OK)
        return bdl_raise_status(L, s);
    if (c.taps.n == 0)
        return bdl_config_error(L, "represent: no taps, expected taps = a list"
                                " of names (e.g. { \"layer4\" })");
    const bd_tensor *x0 = clean_images(L, &c);
    bd_samples *sb = new_samples(L);
    swap_weights(&c);
    s = bd_represent(c.mb->m, c.labels, x0, &o, &c.taps, sb);
    swap_weights(&c);
    finish(L, sb, s);
    lua_pushinteger(L, (lua_Integer)o.seed);
    lua_setfield(L, -2, "seed");
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
    lua_pushcfunction(L, represent);
    lua_setfield(L, -2, "represent");
}
