/* bd's unet against the committed PyTorch reference
 * (tests/reference/unet_w4.safetensors, written by make_unet_reference.py
 * from tests/bench/unet_torch.py in float64): loaded through the recipe's
 * tensor names, the same weights and inputs give the same output, loss and
 * gradient of every parameter. Errors are ||bd - ref|| / ||ref|| per tensor;
 * bd computes in float32, so the bounds are float32 rounding through a
 * 20-layer net, with margin. A perturbed weight must push the output past
 * its bound (the comparison can fail). */
#include "bd/registry.h"
#include "bd/safetensors.h"
#include "harness.h"

#define REFERENCE "tests/reference/unet_w4.safetensors"
#define OUT_TOL   5e-6  /* output and loss (measured 6.6e-7 and 0) */
#define GRAD_TOL  2e-4  /* each parameter gradient (worst measured 2.6e-5) */

static bd_ckpt   *ref;
static bd_model  *net;
static bd_tensor *x_t, *t, *cond, *eps;

static int64_t meta_int(const char *key)
{
    const char *v = "";
    CHECK_OK(bd_ckpt_get_str(ref, key, &v));
    return strtoll(v, NULL, 10);
}

static double rel_err(const float *a, const float *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* The recipe's name of parameter i. */
static const char *torch_name(int i, char *buf, size_t len)
{
    const char *name = bd_params_name(net->params, i);
    if (!bd_unet_torch_name(name, true, buf, len))
        snprintf(buf, len, "(no recipe name for %s)", name);
    return buf;
}

static void test_load(void)
{
    CHECK_OK(bd_safetensors_load(REFERENCE, &ref));
    if (!ref)
        exit(harness_summary());
    bd_config *cfg = bd_config_new();
    bd_config_set_num(cfg, "width", (double)meta_int("width"));
    bd_config_set_num(cfg, "emb", (double)meta_int("emb"));
    bd_config_set_num(cfg, "size", (double)meta_int("size"));
    CHECK_OK(bd_model_create("unet", cfg, 0, &net));
    bd_config_free(cfg);
    if (!net)
        exit(harness_summary());
    char name[256];
    for (int i = 0; i < bd_params_count(net->params); i++)
        CHECK_OK(bd_ckpt_read_into(ref, torch_name(i, name, sizeof name),
                                   bd_params_at(net->params, i)));
    size_t weights = 0;
    for (size_t i = 0; i < bd_ckpt_tensor_count(ref); i++) {
        const char *n = bd_ckpt_tensor_at(ref, i)->name;
        weights += strncmp(n, "input.", 6) && strncmp(n, "output.", 7)
                && strncmp(n, "grad.", 5);
    }
    CHECK(weights == (size_t)bd_params_count(net->params),
          "the reference has %zu weights, bd's unet %d parameters", weights,
          bd_params_count(net->params));
    CHECK_OK(bd_ckpt_get_tensor(ref, "input.x_t", &x_t));
    CHECK_OK(bd_ckpt_get_tensor(ref, "input.t", &t));
    CHECK_OK(bd_ckpt_get_tensor(ref, "input.cond", &cond));
    CHECK_OK(bd_ckpt_get_tensor(ref, "input.eps", &eps));
    printf("   %s: unet width %lld, emb %lld, %lld parameters; torch %s\n",
           REFERENCE, (long long)meta_int("width"), (long long)meta_int("emb"),
           (long long)bd_params_numel(net->params),
           bd_ckpt_kv_find(ref, "torch") ? bd_ckpt_kv_find(ref, "torch")->v.str
                                         : "?");
}

/* Forward, MSE against eps, backward: the output and the loss's errors. */
static void forward_backward(bd_tape *tp, double *out_err, double *loss_err)
{
    bd_tensor *out = NULL, *loss = NULL;
    bd_tape_reset(tp);
    bd_params_zero_grad(net->params);
    CHECK_OK(net->forward(net->state, tp, x_t, t, cond, NULL, &out));
    const bd_ckpt_tensor *ro = bd_ckpt_tensor_find(ref, "output.out");
    const bd_ckpt_tensor *rl = bd_ckpt_tensor_find(ref, "output.loss");
    *out_err = *loss_err = INFINITY;
    if (out && ro && (int64_t)ro->nbytes == out->numel * 4)
        *out_err = rel_err(out->data, ro->data, out->numel);
    CHECK_OK(bd_mse(tp, out, eps, &loss));
    CHECK_OK(bd_tape_backward(tp, loss)); /* out goes back to the tape */
    if (loss && rl && rl->nbytes == 4)
        *loss_err = rel_err(loss->data, rl->data, 1);
}

static void test_matches_pytorch(void)
{
    bd_tape *tp = bd_tape_new();
    double out_err, loss_err, worst = 0, sum = 0;
    forward_backward(tp, &out_err, &loss_err);
    const char *worst_name = "";
    char name[256], grad[256 + 8];
    const int n = bd_params_count(net->params);
    for (int i = 0; i < n; i++) {
        const bd_tensor *p = bd_params_at(net->params, i);
        snprintf(grad, sizeof grad, "grad.%s", torch_name(i, name, sizeof name));
        const bd_ckpt_tensor *g = bd_ckpt_tensor_find(ref, grad);
        double e = g && (int64_t)g->nbytes == p->numel * 4
                 ? rel_err(p->grad, g->data, p->numel) : INFINITY;
        CHECK(e < GRAD_TOL, "gradient of %s (%s): relative error %.3g, bound %g",
              bd_params_name(net->params, i), grad, e, GRAD_TOL);
        sum += e;
        if (e > worst) {
            worst = e;
            worst_name = bd_params_name(net->params, i);
        }
    }
    printf("   relative errors: output %.2g, loss %.2g, gradients mean %.2g,"
           " worst %.2g (%s) over %d parameters\n", out_err, loss_err, sum / n,
           worst, worst_name, n);
    CHECK(out_err < OUT_TOL, "output: relative error %.3g, bound %g", out_err,
          OUT_TOL);
    CHECK(loss_err < OUT_TOL, "loss: relative error %.3g, bound %g", loss_err,
          OUT_TOL);
    bd_tape_free(tp);
}

/* One weight of the attention in down2 moved by 1% of its value: the
 * output must then differ from the reference by more than OUT_TOL. */
static void test_detects_a_perturbed_weight(void)
{
    bd_tape *tp = bd_tape_new();
    bd_tensor *w = bd_params_find(net->params, "down2.attn.qkv.weight");
    CHECK(w != NULL, "down2.attn.qkv.weight");
    if (!w)
        return;
    const float keep = w->data[5];
    w->data[5] = keep * 1.01f;
    double out_err, loss_err;
    forward_backward(tp, &out_err, &loss_err);
    printf("   one weight x 1.01: output relative error %.2g\n", out_err);
    CHECK(out_err > OUT_TOL, "output error %.3g with a perturbed weight, expected"
          " > %g", out_err, OUT_TOL);
    w->data[5] = keep;
    bd_tape_free(tp);
}

int main(void)
{
    RUN(test_load);
    RUN(test_matches_pytorch);
    RUN(test_detects_a_perturbed_weight);
    bd_tensor_free(x_t);
    bd_tensor_free(t);
    bd_tensor_free(cond);
    bd_tensor_free(eps);
    bd_model_free(net);
    bd_ckpt_free(ref);
    bd_plugins_unload_all();
    return harness_summary();
}
