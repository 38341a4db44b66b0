/* A unet checkpoint to PyTorch's names and back: `bdrun ckpt export CKPT
 * OUT.safetensors` (EMA weights by default, ema=0 for the weights) and
 * `bdrun ckpt import`, bit-exact and with the diffusion keys typed back;
 * every refusal of the conversion; the .npy writer's bytes. */
#include "bd/npy.h"
#include "bd/registry.h"
#include "bd/safetensors.h"
#include "test_ckpt_util.h"

static char dir[600], ckpt_path[800], st_path[800], w_path[800], back_path[800];
static bd_model *net;

static int ckpt(const char *a, const char *b, const char *c, const char *d)
{
    char *argv[6] = {"ckpt", (char *)a, (char *)b, (char *)c, (char *)d, NULL};
    int argc = 1;
    while (argc < 5 && argv[argc])
        argc++;
    fflush(stdout);
    return bd_ckpt_main(argc, argv);
}

/* A width-4 unet with attention in two blocks only; its checkpoint holds
 * weights, EMA = weights / 2, zero moments and trained diffusion keys. */
static void setup(void)
{
    char *tmp = tmp_mkdir();
    snprintf(dir, sizeof dir, "%s", tmp);
    free(tmp);
    snprintf(ckpt_path, sizeof ckpt_path, "%s/step_7.bdc", dir);
    snprintf(st_path, sizeof st_path, "%s/unet.safetensors", dir);
    snprintf(w_path, sizeof w_path, "%s/weights.safetensors", dir);
    snprintf(back_path, sizeof back_path, "%s/back.bdc", dir);
    bd_config *cfg = bd_config_new();
    bd_config_set_num(cfg, "width", 4);
    bd_config_set_num(cfg, "emb", 8);
    bd_config_set_num(cfg, "size", 8);
    bd_config_set_str(cfg, "attention_blocks", "down2,up1");
    CHECK_OK(bd_model_create("unet", cfg, 3, &net));
    bd_config_free(cfg);
    if (!net)
        exit(harness_summary());
    bd_ckpt *ck = bd_ckpt_new();
    CHECK_OK(bd_ckpt_set_str(ck, "bd.arch", "unet"));
    CHECK_OK(bd_ckpt_set_str(ck, "bd.kind", "training"));
    CHECK_OK(bd_ckpt_set_f64(ck, "bd.arch.config.width", 4));
    CHECK_OK(bd_ckpt_set_str(ck, "bd.arch.config.attention_blocks", "down2,up1"));
    CHECK_OK(bd_ckpt_set_i64(ck, "bd.step", 7));
    CHECK_OK(bd_ckpt_set_str(ck, "bd.diffusion.schedule", "linear"));
    CHECK_OK(bd_ckpt_set_str(ck, "bd.diffusion.prediction", "eps"));
    CHECK_OK(bd_ckpt_set_i64(ck, "bd.diffusion.timesteps", 1000));
    CHECK_OK(bd_ckpt_set_f64(ck, "bd.diffusion.beta_start", 1e-4));
    CHECK_OK(bd_ckpt_set_f64(ck, "bd.diffusion.beta_end", 0.02));
    CHECK_OK(bd_ckpt_set_u64(ck, "bd.rng.seed", 5));
    char name[300];
    for (int i = 0; i < bd_params_count(net->params); i++) {
        bd_tensor *p = bd_params_at(net->params, i);
        const char *n = bd_params_name(net->params, i);
        bd_tensor *half = bd_tensor_new(p->ndim, p->shape, false);
        for (int64_t j = 0; j < p->numel; j++)
            half->data[j] = p->data[j] / 2;
        CHECK_OK(bd_ckpt_add_tensor(ck, n, p));
        snprintf(name, sizeof name, "ema.%s", n);
        CHECK_OK(bd_ckpt_add_tensor(ck, name, half));
        bd_tensor_fill(half, 0.0f);
        snprintf(name, sizeof name, "optim.m.%s", n);
        CHECK_OK(bd_ckpt_add_tensor(ck, name, half));
        bd_tensor_free(half);
    }
    CHECK_OK(bd_ckpt_save(ck, ckpt_path, NULL));
    bd_ckpt_free(ck);
}

/* Every tensor of st is a parameter under its recipe name, holding the
 * parameter's value times `scale`. */
static void check_export(const char *path, float scale, const char *weights)
{
    bd_ckpt *st = NULL;
    CHECK_OK(bd_safetensors_load(path, &st));
    if (!st)
        return;
    CHECK(bd_ckpt_tensor_count(st) == (size_t)bd_params_count(net->params),
          "%zu tensors for %d parameters", bd_ckpt_tensor_count(st),
          bd_params_count(net->params));
    char torch[300];
    int same = 0;
    for (int i = 0; i < bd_params_count(net->params); i++) {
        const bd_tensor *p = bd_params_at(net->params, i);
        bd_unet_torch_name(bd_params_name(net->params, i), true, torch, sizeof torch);
        const bd_ckpt_tensor *t = bd_ckpt_tensor_find(st, torch);
        bool ok = t && (int64_t)t->nbytes == 4 * p->numel;
        for (int64_t j = 0; ok && j < p->numel; j++)
            ok = ((const float *)t->data)[j] == p->data[j] * scale;
        same += ok;
    }
    CHECK(same == bd_params_count(net->params), "%d of %d parameters exported"
          " under the recipe's names with their values", same,
          bd_params_count(net->params));
    CHECK(bd_ckpt_tensor_find(st, "down.1.attn.mha.in_proj_weight")
          && !bd_ckpt_tensor_find(st, "down.0.attn.mha.in_proj_weight"),
          "attention where the model has it");
    const char *v = "", *step = "";
    CHECK_OK(bd_ckpt_get_str(st, "bd.weights", &v));
    CHECK_OK(bd_ckpt_get_str(st, "bd.step", &step));
    CHECK(strcmp(v, weights) == 0 && strcmp(step, "7") == 0, "metadata %s %s", v,
          step);
    CHECK(!bd_ckpt_kv_find(st, "bd.rng.seed") && !bd_ckpt_kv_find(st, "bd.kind"),
          "no training state");
    CHECK_OK(bd_ckpt_get_str(st, "bd.arch.config.width", &v));
    CHECK(strcmp(v, "4") == 0, "the model's config: width %s", v);
    bd_ckpt_free(st);
}

static void test_export(void)
{
    CHECK(ckpt("export", ckpt_path, st_path, NULL) == 0, "export (EMA)");
    check_export(st_path, 0.5f, "ema");
    CHECK(ckpt("export", ckpt_path, w_path, "ema=0") == 0, "export ema=0");
    check_export(w_path, 1.0f, "weights");
    CHECK(ckpt("export", ckpt_path, w_path, "ema=2") == 2, "bad option: usage");
}

static void test_import(void)
{
    CHECK(ckpt("import", st_path, back_path, NULL) == 0, "import");
    bd_ckpt *ck = NULL;
    CHECK_OK(bd_ckpt_load(back_path, &ck));
    if (!ck)
        return;
    int same = 0;
    for (int i = 0; i < bd_params_count(net->params); i++) {
        const bd_tensor *p = bd_params_at(net->params, i);
        bd_tensor *q = bd_tensor_new(p->ndim, p->shape, false);
        bool ok = bd_ckpt_read_into(ck, bd_params_name(net->params, i), q) == BD_OK;
        for (int64_t j = 0; ok && j < p->numel; j++)
            ok = q->data[j] == p->data[j] / 2;
        same += ok;
        bd_tensor_free(q);
    }
    CHECK(same == bd_params_count(net->params)
          && bd_ckpt_tensor_count(ck) == (size_t)same,
          "%d of %d parameters back under bd's names", same,
          bd_params_count(net->params));
    int64_t step = 0, T = 0;
    double b0 = 0;
    const char *arch = "";
    CHECK_OK(bd_ckpt_get_str(ck, "bd.arch", &arch));
    CHECK_OK(bd_ckpt_get_i64(ck, "bd.step", &step));
    CHECK_OK(bd_ckpt_get_i64(ck, "bd.diffusion.timesteps", &T));
    CHECK_OK(bd_ckpt_get_f64(ck, "bd.diffusion.beta_start", &b0));
    CHECK(!strcmp(arch, "unet") && step == 7 && T == 1000 && b0 == 1e-4,
          "keys typed back: %s %lld %lld %.17g", arch, (long long)step,
          (long long)T, b0);
    CHECK(!bd_ckpt_kv_find(ck, "format") && !bd_ckpt_kv_find(ck, "bd.weights"),
          "export-only keys dropped");
    double width = 0;
    const char *blocks = "", *kind = "";
    CHECK_OK(bd_ckpt_get_f64(ck, "bd.arch.config.width", &width));
    CHECK_OK(bd_ckpt_get_str(ck, "bd.arch.config.attention_blocks", &blocks));
    CHECK_OK(bd_ckpt_get_str(ck, "bd.kind", &kind));
    CHECK(width == 4 && !strcmp(blocks, "down2,up1") && !strcmp(kind, "model"),
          "config typed back (%g, %s), a model checkpoint (%s)", width, blocks, kind);
    bd_ckpt_free(ck);
}

static void test_refusals(void)
{
    bd_ckpt *ck = bd_ckpt_new(), *out = NULL;
    static const float one = 1.0f;
    int64_t d1[1] = {1};
    CHECK_FAILS(bd_unet_to_torch(ck, false, &out), BD_E_ARG, "bd.arch");
    CHECK_OK(bd_ckpt_set_str(ck, "bd.arch", "mlp"));
    CHECK_FAILS(bd_unet_to_torch(ck, false, &out), BD_E_ARG,
                "holds a 'mlp' model; the PyTorch recipe's names exist for 'unet'");
    CHECK_OK(bd_ckpt_set_str(ck, "bd.arch", "unet"));
    CHECK_OK(bd_ckpt_add_array(ck, "head.bias", BD_CKPT_F32, 1, d1, &one));
    CHECK_FAILS(bd_unet_to_torch(ck, true, &out), BD_E_ARG,
                "no EMA of 'head.bias' (tensor 'ema.head.bias'); export with ema=0");
    CHECK_OK(bd_ckpt_add_array(ck, "extra.weight", BD_CKPT_F32, 1, d1, &one));
    CHECK_FAILS(bd_unet_to_torch(ck, false, &out), BD_E_ARG,
                "tensor 'extra.weight' is not a parameter of the unet");
    bd_ckpt_free(ck);

    bd_ckpt *st = bd_ckpt_new();
    float freq[4];
    int64_t d4[1] = {4};
    for (int i = 0; i < 4; i++)
        freq[i] = (float)pow(10000.0, -i / 4.0);
    CHECK_OK(bd_ckpt_add_array(st, "freq", BD_CKPT_F32, 1, d4, freq));
    CHECK_OK(bd_ckpt_add_array(st, "head.bias", BD_CKPT_F32, 1, d1, &one));
    CHECK_OK(bd_unet_from_torch(st, &out));
    CHECK(out && bd_ckpt_tensor_count(out) == 1 && bd_ckpt_tensor_find(out, "head.bias"),
          "the recipe's freq buffer checked and dropped");
    CHECK(out && !bd_ckpt_kv_find(out, "bd.kind"), "no config: not rebuildable");
    bd_ckpt_free(out);
    CHECK_OK(bd_ckpt_set_str(st, "bd.step", "12x"));
    CHECK_FAILS(bd_unet_from_torch(st, &out), BD_E_FORMAT,
                "bd.step = '12x', expected an integer");
    CHECK_OK(bd_ckpt_set_str(st, "bd.step", "12"));
    CHECK_OK(bd_ckpt_set_str(st, "bd.diffusion.beta_end", "0.02.1"));
    CHECK_FAILS(bd_unet_from_torch(st, &out), BD_E_FORMAT,
                "bd.diffusion.beta_end = '0.02.1', expected a number");
    CHECK_OK(bd_ckpt_set_str(st, "bd.diffusion.beta_end", "0.02"));
    CHECK_OK(bd_ckpt_set_str(st, "bd.arch", "mlp"));
    CHECK_FAILS(bd_unet_from_torch(st, &out), BD_E_FORMAT,
                "bd.arch = 'mlp', expected 'unet'");
    CHECK_OK(bd_ckpt_set_str(st, "bd.arch", "unet"));
    CHECK_OK(bd_ckpt_add_array(st, "down.0.emb.scale", BD_CKPT_F32, 1, d1, &one));
    CHECK_FAILS(bd_unet_from_torch(st, &out), BD_E_FORMAT,
                "tensor 'down.0.emb.scale' is not a parameter of the recipe's unet");
    bd_ckpt_free(st);

    st = bd_ckpt_new();
    freq[1] *= 1.001f;
    CHECK_OK(bd_ckpt_add_array(st, "freq", BD_CKPT_F32, 1, d4, freq));
    CHECK_FAILS(bd_unet_from_torch(st, &out), BD_E_FORMAT, "freq[1] = ");
    bd_ckpt_free(st);
    CHECK(ckpt("import", ckpt_path, back_path, NULL) == 1, "import of a .bdc: 1");
}

/* Magic, version, a header padded to 64 bytes, Python's shape spelling. */
static void test_npy_bytes(void)
{
    static const float v[6] = {1, 2, 3, 4, 5, 6};
    int64_t d[3] = {1, 2, 3}, d1[1] = {6};
    struct { int ndim; const int64_t *dims; const char *shape; } cases[] = {
        {3, d, "'shape': (1, 2, 3), }"}, {1, d1, "'shape': (6,), }"},
        {0, NULL, "'shape': (), }"}};
    for (int c = 0; c < 3; c++) {
        uint8_t *b = NULL;
        size_t len = 0;
        CHECK_OK(bd_npy_encode(BD_CKPT_F32, cases[c].ndim, cases[c].dims, v, &b, &len));
        if (!b)
            continue;
        size_t header = (size_t)(b[8] | b[9] << 8), n = c == 2 ? 1 : 6;
        CHECK(memcmp(b, "\x93NUMPY\x01\x00", 8) == 0, "magic and version 1.0");
        CHECK((10 + header) % 64 == 0 && len == 10 + header + 4 * n
              && b[10 + header - 1] == '\n', "header %zu, file %zu", header, len);
        CHECK(find_bytes(b, 10 + header, "{'descr': '<f4', 'fortran_order': False, ", 41)
              && find_bytes(b, 10 + header, cases[c].shape, strlen(cases[c].shape)),
              "dict of case %d: %.*s", c, (int)header, (const char *)b + 10);
        CHECK(memcmp(b + 10 + header, v, 4 * n) == 0, "data after the header");
        free(b);
    }
    uint8_t *b = NULL;
    size_t len;
    CHECK_FAILS(bd_npy_encode((bd_ckpt_dtype)9, 1, d1, v, &b, &len), BD_E_ARG,
                "npy: dtype 9");
}

int main(void)
{
    RUN(setup);
    RUN(test_export);
    RUN(test_import);
    RUN(test_refusals);
    RUN(test_npy_bytes);
    bd_model_free(net);
    bd_plugins_unload_all();
    tmp_rmdir(strdup(dir));
    return harness_summary();
}
