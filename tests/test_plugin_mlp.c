/* The mlp denoiser plugin (the tutorial): shapes, taps, config errors and
 * the gradient of every parameter through the host ops. */
#include "bd/registry.h"
#include "harness.h"

typedef struct mlp_call {
    bd_model  *m;
    bd_tensor *t, *cond;
} mlp_call;

static bd_status run_mlp(bd_tape *tp, bd_tensor **in, void *ud, bd_tensor **y)
{
    mlp_call *c = ud;
    return c->m->forward(c->m->state, tp, in[0], c->t, c->cond, NULL, y);
}

static void test_mlp(void)
{
    bd_config *cfg = bd_config_new();
    bd_config_set_num(cfg, "hidden", 12);
    bd_config_set_num(cfg, "depth", 3);
    bd_config_set_num(cfg, "emb", 4);
    bd_config_set_num(cfg, "channels", 2);
    bd_config_set_num(cfg, "size", 5);
    bd_model *m = NULL;
    CHECK_OK(bd_model_create("mlp", cfg, 2, &m));
    bd_config_set_num(cfg, "emb", 5);
    bd_model *odd = NULL;
    CHECK_FAILS(bd_model_create("mlp", cfg, 2, &odd), BD_E_ARG,
                "mlp: emb = 5, expected an even number");
    bd_config_free(cfg);
    if (!m)
        return;
    /* D = 2*5*5 = 50: in 12*50+12, emb 12*12, hidden 2*(12*12+12), out 50*12+50 */
    CHECK(bd_params_numel(m->params) == 612 + 144 + 312 + 650, "%lld params",
          (long long)bd_params_numel(m->params));
    CHECK(bd_params_find(m->params, "hidden2.weight") != NULL, "names");

    const int64_t xs[4] = {3, 2, 5, 5}, ts[1] = {3}, cs[2] = {3, 2};
    bd_tensor *x = harness_tensor(4, xs, -1, 1, true);
    bd_tensor *t = harness_tensor(1, ts, 0, 1000, false);
    bd_tensor *cond = harness_tensor(2, cs, 0, 5, false);
    bd_tape *tp = bd_tape_new();
    bd_taps taps = {.n = 1, .names = {"hidden"}};
    bd_tensor *out = NULL;
    CHECK_OK(m->forward(m->state, tp, x, t, cond, &taps, &out));
    CHECK(out && bd_shape_equal(out, x), "output shape");
    CHECK(taps.values[0] && taps.values[0]->shape[1] == 12, "hidden tap");
    bd_tensor *short_cond = harness_tensor(1, ts, 0, 5, false);
    CHECK_FAILS(m->forward(m->state, tp, x, t, short_cond, NULL, &out), BD_E_ARG,
                "mlp: x_t has 150 values and cond 3 for 3 samples");
    bd_tape_free(tp);

    bd_tensor *in[32] = {x};
    int n_in = 1;
    for (int i = 0; i < bd_params_count(m->params); i++)
        in[n_in++] = bd_params_at(m->params, i);
    mlp_call call = {m, t, cond};
    harness_gradcheck("mlp 2x5x5, hidden 12, depth 3", run_mlp, in, n_in, &call,
                      1e-3, 1e-2, 16);
    bd_tensor_free(short_cond);
    bd_tensor_free(x);
    bd_tensor_free(t);
    bd_tensor_free(cond);
    bd_model_free(m);
}

int main(void)
{
    RUN(test_mlp);
    bd_plugins_unload_all();
    return harness_summary();
}
