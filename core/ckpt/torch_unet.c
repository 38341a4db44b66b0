/* The unet in the PyTorch recipe's names: a bd checkpoint's weights as a
 * safetensors image that tests/bench/unet_torch.py's net loads, and back.
 *
 * The unet's parameter names (plugins/denoisers/unet) against the names of
 * the same parameters in the recipe's state_dict, both ways:
 *
 *   stem.conv1.weight            stem.net.0.weight
 *   down1.conv_a.norm2.bias      down.0.conv.0.net.4.bias
 *   mid2.conv2.weight            mid.1.net.3.weight
 *   up3.attn.qkv.weight          up.2.attn.mha.in_proj_weight
 *   up3.attn.ff2.bias            up.2.attn.ff.3.bias
 *   head.weight                  head.weight
 *
 * A name is read as a path through the tables below: each level matches a
 * prefix on one side, writes the other side's and continues at the next
 * level, until a name ends at END. */
#include "bd/safetensors.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

typedef struct rule rule;
struct rule {
    const char *bd, *torch;
    const rule *next;  /* NULL: the name must end here */
};

#define END NULL

static const rule LEAF[] = {{"weight", "weight", END}, {"bias", "bias", END},
                            {NULL, NULL, NULL}};

/* DoubleConv: Sequential(Conv2d, GroupNorm, GELU, Conv2d, GroupNorm) */
static const rule DOUBLE_CONV[] = {
    {"conv1.", "net.0.", LEAF}, {"norm1.", "net.1.", LEAF},
    {"conv2.", "net.3.", LEAF}, {"norm2.", "net.4.", LEAF}, {NULL, NULL, NULL}};

/* SelfAttention: ln, mha (in_proj, out_proj), ff = Sequential(LayerNorm,
 * Linear, GELU, Linear) */
static const rule ATTENTION[] = {
    {"norm1.", "ln.", LEAF},
    {"qkv.weight", "mha.in_proj_weight", END},
    {"qkv.bias", "mha.in_proj_bias", END},
    {"proj.", "mha.out_proj.", LEAF},
    {"norm2.", "ff.0.", LEAF}, {"ff1.", "ff.1.", LEAF}, {"ff2.", "ff.3.", LEAF},
    {NULL, NULL, NULL}};

/* Block: conv = Sequential(DoubleConv residual, DoubleConv), emb, attn */
static const rule BLOCK[] = {
    {"conv_a.", "conv.0.", DOUBLE_CONV}, {"conv_b.", "conv.1.", DOUBLE_CONV},
    {"emb.", "emb.", LEAF}, {"attn.", "attn.", ATTENTION}, {NULL, NULL, NULL}};

static const rule NET[] = {
    {"stem.", "stem.", DOUBLE_CONV},
    {"down1.", "down.0.", BLOCK}, {"down2.", "down.1.", BLOCK},
    {"down3.", "down.2.", BLOCK},
    {"mid1.", "mid.0.", DOUBLE_CONV}, {"mid2.", "mid.1.", DOUBLE_CONV},
    {"mid3.", "mid.2.", DOUBLE_CONV},
    {"up1.", "up.0.", BLOCK}, {"up2.", "up.1.", BLOCK}, {"up3.", "up.2.", BLOCK},
    {"head.", "head.", LEAF}, {NULL, NULL, NULL}};

bool bd_unet_torch_name(const char *name, bool to_torch, char *out, size_t len)
{
    size_t used = 0;
    for (const rule *level = NET; level;) {
        const rule *r = level;
        const char *from = NULL;
        for (; r->bd; r++) {
            from = to_torch ? r->bd : r->torch;
            if (strncmp(name, from, strlen(from)) == 0)
                break;
        }
        if (!r->bd)
            return false;
        const char *to = to_torch ? r->torch : r->bd;
        const size_t n = strlen(to);
        if (used + n >= len)
            return false;
        memcpy(out + used, to, n);
        used += n;
        name += strlen(from);
        level = r->next;
    }
    out[used] = '\0';
    return *name == '\0';
}

/* ---- bd checkpoint -> recipe ------------------------------------------- */

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A model weight, not its EMA or an optimizer moment. */
static bool is_weight(const char *name)
{
    return !has_prefix(name, "ema.") && !has_prefix(name, "optim.");
}

static bd_status copy_kv(bd_ckpt *to, const bd_ckpt_kv *kv)
{
    switch (kv->type) {
    case BD_CKPT_STR: return bd_ckpt_set_str(to, kv->key, kv->v.str);
    case BD_CKPT_I64: return bd_ckpt_set_i64(to, kv->key, kv->v.i64);
    case BD_CKPT_U64: return bd_ckpt_set_u64(to, kv->key, kv->v.u64);
    case BD_CKPT_F64: return bd_ckpt_set_f64(to, kv->key, kv->v.f64);
    default:
        return bd_fail(BD_E_ARG, "export: key '%s' is an array", kv->key);
    }
}

/* bd.arch, its config (bd.arch.config.*), bd.step and bd.diffusion.*, and
 * which weights these are. */
static bd_status export_keys(const bd_ckpt *ck, bool ema, bd_ckpt *out)
{
    for (size_t i = 0; i < ck->n_kv; i++) {
        const char *key = ck->kvs[i].key;
        if (!strcmp(key, "bd.arch") || !strcmp(key, "bd.step")
            || has_prefix(key, "bd.arch.config.") || has_prefix(key, "bd.diffusion."))
            BD_TRY(copy_kv(out, &ck->kvs[i]));
    }
    BD_TRY(bd_ckpt_set_str(out, "bd.weights", ema ? "ema" : "weights"));
    return bd_ckpt_set_str(out, "format", "pt");
}

static bd_status export_tensor(const bd_ckpt *ck, const bd_ckpt_tensor *w,
                               bool ema, bd_ckpt *out)
{
    char torch[BD_CKPT_NAME_MAX + 1], source[BD_CKPT_NAME_MAX + 8];
    if (!bd_unet_torch_name(w->name, true, torch, sizeof torch))
        return bd_fail(BD_E_ARG, "export: tensor '%s' is not a parameter of the"
                       " unet", w->name);
    snprintf(source, sizeof source, "%s%s", ema ? "ema." : "", w->name);
    const bd_ckpt_tensor *t = bd_ckpt_tensor_find(ck, source);
    if (!t)
        return bd_fail(BD_E_ARG, "export: no EMA of '%s' (tensor '%s'); export"
                       " with ema=0 for the weights", w->name, source);
    return bd_ckpt_add_array(out, torch, t->dtype, t->ndim, t->dims, t->data);
}

bd_status bd_unet_to_torch(const bd_ckpt *ck, bool ema, bd_ckpt **out)
{
    const char *arch;
    *out = NULL;
    BD_TRY(bd_ckpt_get_str(ck, "bd.arch", &arch));
    if (strcmp(arch, "unet") != 0)
        return bd_fail(BD_E_ARG, "export: the checkpoint holds a '%s' model; the"
                       " PyTorch recipe's names exist for 'unet' only", arch);
    bd_ckpt *st = bd_ckpt_new();
    if (!st)
        return BD_E_NOMEM;
    bd_status s = export_keys(ck, ema, st);
    for (size_t i = 0; s == BD_OK && i < ck->n_tensors; i++)
        if (is_weight(ck->tensors[i].name))
            s = export_tensor(ck, &ck->tensors[i], ema, st);
    if (s != BD_OK) {
        bd_ckpt_free(st);
        return s;
    }
    *out = st;
    return BD_OK;
}

/* ---- recipe -> bd checkpoint ------------------------------------------- */

/* The recipe's "freq" buffer: 10000^(-i / half), which bd computes itself. */
static bd_status check_freq(const bd_ckpt_tensor *t)
{
    const uint64_t half = t->nbytes / 4;
    const float *f = t->data;
    for (uint64_t i = 0; t->dtype == BD_CKPT_F32 && i < half; i++) {
        double want = pow(10000.0, -(double)i / (double)half);
        if (fabs(f[i] - want) > 1e-6 * want)
            return bd_fail(BD_E_FORMAT, "import: freq[%" PRIu64 "] = %.9g, expected"
                           " 10000^(-%" PRIu64 "/%" PRIu64 ") = %.9g (the"
                           " recipe's sinusoid)", i, (double)f[i], i, half, want);
    }
    return t->dtype == BD_CKPT_F32 && t->ndim == 1 ? BD_OK
         : bd_fail(BD_E_FORMAT, "import: freq is not a float32 vector");
}

static bd_status import_tensor(const bd_ckpt_tensor *t, bd_ckpt *out)
{
    char name[BD_CKPT_NAME_MAX + 1];
    if (!strcmp(t->name, "freq"))
        return check_freq(t);
    if (!bd_unet_torch_name(t->name, false, name, sizeof name))
        return bd_fail(BD_E_FORMAT, "import: tensor '%s' is not a parameter of"
                       " the recipe's unet (tests/bench/unet_torch.py)", t->name);
    return bd_ckpt_add_array(out, name, t->dtype, t->ndim, t->dims, t->data);
}

/* A metadata string of an integer or double key back to its type. */
static bd_status import_number(const bd_ckpt_kv *kv, bool integer, bd_ckpt *out)
{
    char *end;
    errno = 0;
    long long i = integer ? strtoll(kv->v.str, &end, 10) : 0;
    double d = integer ? 0 : strtod(kv->v.str, &end);
    if (errno || end == kv->v.str || *end)
        return bd_fail(BD_E_FORMAT, "import: %s = '%s', expected %s", kv->key,
                       kv->v.str, integer ? "an integer" : "a number");
    return integer ? bd_ckpt_set_i64(out, kv->key, i)
                   : bd_ckpt_set_f64(out, kv->key, d);
}

/* A config value: a number (as checkpoints keep them) when it reads as one. */
static bd_status import_config(const bd_ckpt_kv *kv, bd_ckpt *out)
{
    char *end;
    double v = strtod(kv->v.str, &end);
    return end != kv->v.str && !*end ? bd_ckpt_set_f64(out, kv->key, v)
                                     : bd_ckpt_set_str(out, kv->key, kv->v.str);
}

static bd_status import_keys(const bd_ckpt *st, bd_ckpt *out)
{
    bool config = false;
    for (size_t i = 0; i < st->n_kv; i++) {
        const bd_ckpt_kv *kv = &st->kvs[i];
        if (has_prefix(kv->key, "bd.arch.config.")) {
            config = true;
            BD_TRY(import_config(kv, out));
        } else if (!strcmp(kv->key, "bd.step")
                   || !strcmp(kv->key, "bd.diffusion.timesteps"))
            BD_TRY(import_number(kv, true, out));
        else if (!strcmp(kv->key, "bd.diffusion.beta_start")
                 || !strcmp(kv->key, "bd.diffusion.beta_end"))
            BD_TRY(import_number(kv, false, out));
        else if (has_prefix(kv->key, "bd.diffusion."))
            BD_TRY(bd_ckpt_set_str(out, kv->key, kv->v.str));
        else if (!strcmp(kv->key, "bd.arch") && strcmp(kv->v.str, "unet") != 0)
            return bd_fail(BD_E_FORMAT, "import: bd.arch = '%s', expected 'unet'",
                           kv->v.str);
    }
    if (config)  /* a model checkpoint that rebuilds itself (bd/session.h) */
        BD_TRY(bd_ckpt_set_str(out, "bd.kind", "model"));
    return bd_ckpt_set_str(out, "bd.arch", "unet");
}

bd_status bd_unet_from_torch(const bd_ckpt *st, bd_ckpt **out)
{
    *out = NULL;
    bd_ckpt *ck = bd_ckpt_new();
    if (!ck)
        return BD_E_NOMEM;
    bd_status s = import_keys(st, ck);
    for (size_t i = 0; s == BD_OK && i < st->n_tensors; i++)
        s = import_tensor(&st->tensors[i], ck);
    if (s != BD_OK) {
        bd_ckpt_free(ck);
        return s;
    }
    *out = ck;
    return BD_OK;
}
