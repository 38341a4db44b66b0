/* The unet denoiser plugin: parameter count at the paper's scale, names and
 * shapes, config errors, output and tap shapes (layer4_pre: before the
 * embedding), a finite-difference check of
 * the gradient through the whole network, and overfitting a small batch. */
#include "bd/registry.h"
#include "harness.h"

/* A unet from "key=value" numbers (NULL-terminated). */
static bd_status make_unet(bd_model **m, uint64_t seed, const char *const *keys,
                           const double *values)
{
    bd_config *cfg = bd_config_new();
    for (int i = 0; keys[i]; i++)
        bd_config_set_num(cfg, keys[i], values[i]);
    bd_status s = bd_model_create("unet", cfg, seed, m);
    bd_config_free(cfg);
    return s;
}

static const char *const TINY[] = {"width", "size", NULL};

static int64_t dim(const bd_model *m, const char *name, int i)
{
    const bd_tensor *t = bd_params_find(m->params, name);
    return t ? t->shape[i] : -1;
}

static void test_paper_scale(void)
{
    bd_model *m = NULL;
    CHECK_OK(bd_model_create("unet", NULL, 1, &m));
    if (!m)
        return;
    const int64_t n = bd_params_numel(m->params);
    printf("   unet width 64, 32x32: %lld parameters (%.2fM)\n", (long long)n,
           n / 1e6);
    CHECK(n > 23e6 * 0.9 && n < 23e6 * 1.1, "%lld parameters, expected 23M +-10%%",
          (long long)n);
    CHECK(n == 23790209, "%lld parameters, the recipe gives 23790209", (long long)n);
    CHECK(m->channels == 1 && m->size == 32, "instance %lld x %lld",
          (long long)m->channels, (long long)m->size);
    /* up1 takes 8C, its second double conv has mid = in / 2 */
    CHECK(dim(m, "up1.conv_b.conv1.weight", 0) == 256
          && dim(m, "up1.conv_b.conv1.weight", 1) == 512, "up1 mid");
    CHECK(dim(m, "down3.attn.qkv.weight", 0) == 768, "down3 attention");
    CHECK(dim(m, "mid2.conv1.weight", 1) == 512, "bottleneck 8C");
    CHECK(dim(m, "down1.emb.weight", 1) == 768, "3E conditioning");
    CHECK(dim(m, "head.weight", 1) == 64 && dim(m, "head.weight", 2) == 1, "head");
    CHECK(bd_params_find(m->params, "stem.norm1.weight")->data[0] == 1.0f,
          "GroupNorm weight starts at 1");
    bd_model_free(m);
}

static void test_config(void)
{
    bd_model *m = NULL;
    const double small[] = {8, 16};
    CHECK_OK(make_unet(&m, 1, TINY, small));
    const int64_t with_attention = m ? bd_params_numel(m->params) : 0;
    bd_model_free(m);

    bd_config *cfg = bd_config_new();
    bd_config_set_num(cfg, "width", 8);
    bd_config_set_num(cfg, "attention", 0);
    CHECK_OK(bd_model_create("unet", cfg, 1, &m));
    CHECK(m && bd_params_numel(m->params) < with_attention
          && !bd_params_find(m->params, "up3.attn.qkv.weight"), "attention off");
    bd_model_free(m);
    bd_config_set_str(cfg, "attention_blocks", "down3,up4");
    bd_config_set_num(cfg, "attention", 1);
    CHECK_FAILS(bd_model_create("unet", cfg, 1, &m), BD_E_ARG,
                "attention_blocks names 'up4'");
    bd_config_set_str(cfg, "attention_blocks", "down3");
    CHECK_OK(bd_model_create("unet", cfg, 1, &m));
    CHECK(m && bd_params_find(m->params, "down3.attn.qkv.weight")
          && !bd_params_find(m->params, "down2.attn.qkv.weight"), "only down3");
    bd_model_free(m);
    bd_config_set_num(cfg, "width", 6);
    CHECK_FAILS(bd_model_create("unet", cfg, 1, &m), BD_E_ARG,
                "width = 6, expected a multiple of 4");
    bd_config_set_num(cfg, "width", 8);
    bd_config_set_num(cfg, "size", 20);
    CHECK_FAILS(bd_model_create("unet", cfg, 1, &m), BD_E_ARG,
                "size = 20, expected a multiple of 8");
    bd_config_set_num(cfg, "size", 16);
    bd_config_set_num(cfg, "widht", 8);
    CHECK_FAILS(bd_model_create("unet", cfg, 1, &m), BD_E_ARG,
                "unknown key 'widht' for unet");
    bd_config_free(cfg);
}

/* x: (N, 1, S, S) in [-1, 1], t: (N) in [0, 1000), cond: (N, 2) in [0, S) */
static void inputs(int64_t n, int64_t s, bd_tensor **x, bd_tensor **t,
                   bd_tensor **cond)
{
    const int64_t xs[4] = {n, 1, s, s}, ts[1] = {n}, cs[2] = {n, 2};
    *x = harness_tensor(4, xs, -1, 1, true);
    *t = harness_tensor(1, ts, 0, 1000, false);
    *cond = harness_tensor(2, cs, 0, (double)s, false);
}

static void test_shapes_and_taps(void)
{
    bd_model *m = NULL;
    const double small[] = {8, 16};
    CHECK_OK(make_unet(&m, 3, TINY, small));
    if (!m)
        return;
    bd_tensor *x, *t, *cond, *out = NULL;
    inputs(2, 16, &x, &t, &cond);
    static const struct { const char *name; int64_t c, s; } want[] = {
        {"stem", 8, 16}, {"down1", 16, 8}, {"down2", 32, 4}, {"down3", 32, 2},
        {"layer4", 32, 2}, {"layer4_pre", 32, 2}, {"bottleneck", 32, 2}, {"up1", 16, 4}, {"up2", 8, 8},
        {"up3", 8, 16}, {"nonexistent", 0, 0},
    };
    const int n_taps = (int)(sizeof want / sizeof want[0]);
    bd_taps taps = {.n = n_taps};
    for (int i = 0; i < n_taps; i++)
        taps.names[i] = want[i].name;
    bd_tape *tp = bd_tape_new();
    CHECK_OK(m->forward(m->state, tp, x, t, cond, &taps, &out));
    CHECK(out && bd_shape_equal(out, x), "output shape");
    for (int i = 0; i < n_taps - 1; i++) {
        const bd_tensor *v = taps.values[i];
        CHECK(v && v->ndim == 4 && v->shape[0] == 2 && v->shape[1] == want[i].c
              && v->shape[2] == want[i].s && v->shape[3] == want[i].s,
              "tap %s", want[i].name);
    }
    CHECK(taps.values[3] == taps.values[4], "layer4 is down3");
    CHECK(!taps.values[n_taps - 1], "an unknown tap stays NULL");
    const bd_denoiser_desc *d = bd_denoiser_find("unet");
    CHECK(d && d->taps && strcmp(d->taps[4], "layer4") == 0, "declared taps");

    bd_tensor *bad_t = bd_tensor_new4(3, 0, 0, 0, false);
    CHECK_FAILS(m->forward(m->state, tp, x, bad_t, cond, NULL, &out), BD_E_ARG,
                "unet: t has 3 values in 1 dims, expected (2)");
    bd_tensor *bad_x = bd_tensor_new4(2, 1, 8, 8, false);
    CHECK_FAILS(m->forward(m->state, tp, bad_x, t, cond, NULL, &out), BD_E_ARG,
                "expected (N, 1, 16, 16)");
    bd_tensor_free(bad_t);
    bd_tensor_free(bad_x);
    bd_tensor_free(x);
    bd_tensor_free(t);
    bd_tensor_free(cond);
    bd_tape_free(tp);
    bd_model_free(m);
}

/* layer4_pre is down3 before Linear(SiLU(emb)) is added: without down3's
 * attention, layer4 - layer4_pre is one number per image and channel, the
 * same at every position, and not zero. */
static void test_layer4_pre(void)
{
    bd_config *cfg = bd_config_new();
    bd_config_set_num(cfg, "width", 8);
    bd_config_set_num(cfg, "size", 16);
    bd_config_set_str(cfg, "attention_blocks", "down1,down2,up1,up2,up3");
    bd_model *m = NULL;
    CHECK_OK(bd_model_create("unet", cfg, 5, &m));
    bd_config_free(cfg);
    if (!m)
        return;
    bd_tensor *x, *t, *cond, *out = NULL;
    inputs(3, 16, &x, &t, &cond);
    bd_taps taps = {.n = 2, .names = {"layer4", "layer4_pre"}};
    bd_tape *tp = bd_tape_new();
    CHECK_OK(m->forward(m->state, tp, x, t, cond, &taps, &out));
    const bd_tensor *post = taps.values[0], *pre = taps.values[1];
    CHECK(post && pre && bd_shape_equal(post, pre), "layer4 and layer4_pre alike");
    double spread = 0, size = 0;
    for (int64_t nc = 0; post && pre && nc < 3 * 32; nc++) {
        const float *a = post->data + 4 * nc, *b = pre->data + 4 * nc;
        for (int k = 1; k < 4; k++)
            spread = fmax(spread, fabs((a[k] - b[k]) - (a[0] - b[0])));
        size = fmax(size, fabs(a[0] - b[0]));
    }
    printf("   layer4 - layer4_pre: largest %.3f, varies over positions by %.1e\n",
           size, spread);
    CHECK(size > 1e-3 && spread < 1e-5, "layer4 = layer4_pre + a per-channel term"
          " (largest %.2e, spread %.2e)", size, spread);
    bd_tensor_free(x);
    bd_tensor_free(t);
    bd_tensor_free(cond);
    bd_tape_free(tp);
    bd_model_free(m);
}

/* ---- a forward without gradients ---------------------------------------------- */

/* Every tap of the unet, requested. */
static bd_taps all_taps(void)
{
    const bd_denoiser_desc *d = bd_denoiser_find("unet");
    bd_taps taps = {0};
    for (int i = 0; d && d->taps[i]; i++)
        taps.names[taps.n++] = d->taps[i];
    return taps;
}

/* Forward (taps if not NULL) and, with grad on, backward of mean(out);
 * the output copied to *out. Returns the tape's arena peak. */
static size_t unet_pass(bd_model *m, bd_tape *tp, bool grad, bd_tensor *x,
                        bd_tensor *t, bd_tensor *cond, bd_taps *taps,
                        bd_tensor *out)
{
    bd_tensor *y = NULL, *loss;
    bd_tape_reset(tp);
    bd_tape_set_grad(tp, grad);
    CHECK_OK(m->forward(m->state, tp, x, t, cond, taps, &y));
    if (y)
        memcpy(out->data, y->data, (size_t)out->numel * sizeof(float));
    if (grad) {
        CHECK_OK(bd_mean(tp, y, &loss));
        CHECK_OK(bd_tape_backward(tp, loss));
    }
    return bd_tape_arena_peak(tp);
}

/* Every parameter's grad, one after the other, into a new heap tensor. */
static bd_tensor *grads_of(const bd_params *p)
{
    bd_tensor *g = bd_tensor_new4(bd_params_numel(p), 0, 0, 0, false);
    int64_t at = 0;
    for (int i = 0; g && i < bd_params_count(p); i++) {
        const bd_tensor *w = bd_params_at(p, i);
        memcpy(g->data + at, w->grad, (size_t)w->numel * sizeof(float));
        at += w->numel;
    }
    return g;
}

static bool same_bits(const bd_tensor *a, const bd_tensor *b)
{
    return a && b && a->numel == b->numel
        && memcmp(a->data, b->data, (size_t)a->numel * sizeof(float)) == 0;
}

/* With grad off the net hands each activation back once read: the output
 * and every tap are bit for bit those of the forward with grad on, the
 * arena peak is a fraction, and training on the same tape afterwards gets
 * the same gradients as before. */
static void test_forward_without_grad(void)
{
    bd_model *m = NULL;
    const double small[] = {8, 16};
    CHECK_OK(make_unet(&m, 7, TINY, small));
    if (!m)
        return;
    bd_tensor *x, *t, *cond;
    inputs(4, 16, &x, &t, &cond);
    bd_tensor *on = bd_tensor_new4(4, 1, 16, 16, false);
    bd_tensor *off = bd_tensor_new4(4, 1, 16, 16, false);
    bd_tape *tp = bd_tape_new();
    bd_taps with = all_taps(), without = all_taps();
    const size_t peak_on = unet_pass(m, tp, true, x, t, cond, &with, on);
    bd_tensor *g_before = grads_of(m->params);
    bd_tape *fresh = bd_tape_new();
    unet_pass(m, fresh, false, x, t, cond, &without, off);
    CHECK(same_bits(on, off), "the output without grad differs");
    for (int i = 0; i < with.n; i++)
        CHECK(same_bits(with.values[i], without.values[i]), "tap %s without grad"
              " differs", with.names[i]);
    bd_tape *plain = bd_tape_new();
    const size_t peak_off = unet_pass(m, plain, false, x, t, cond, NULL, off);
    printf("   width 8, 16x16, batch 4: arena peak %.2f MiB with grad, %.2f"
           " without\n", (double)peak_on / 1048576.0, (double)peak_off / 1048576.0);
    CHECK(peak_off * 4 < peak_on, "without grad the arena peaked at %zu bytes,"
          " with grad %zu: expected under a quarter", peak_off, peak_on);
    bd_params_zero_grad(m->params);
    unet_pass(m, plain, true, x, t, cond, NULL, on);
    bd_tensor *g_after = grads_of(m->params);
    CHECK(same_bits(on, off) && same_bits(g_before, g_after)
          && bd_params_grad_norm(m->params) > 0.0,
          "training on a tape that ran without grad: other gradients");
    bd_tape_free(tp);
    bd_tape_free(fresh);
    bd_tape_free(plain);
    bd_tensor_free(g_before);
    bd_tensor_free(g_after);
    bd_tensor_free(on);
    bd_tensor_free(off);
    bd_tensor_free(x);
    bd_tensor_free(t);
    bd_tensor_free(cond);
    bd_model_free(m);
}

/* ---- the backward's memory ---------------------------------------------------- */

/* One training step of mean((out - x)^2) on a reset tape: every grad (the
 * parameters', then the input's) into a new heap tensor; *fwd_end is the
 * arena in use when the forward ended, *loss the loss. */
static bd_tensor *train_step_grads(bd_model *m, bd_tape *tp, bd_tensor *x,
                                   bd_tensor *t, bd_tensor *cond,
                                   size_t *fwd_end, float *loss)
{
    bd_tensor *y = NULL, *l = NULL;
    bd_tape_reset(tp);
    bd_params_zero_grad(m->params);
    bd_tensor_zero_grad(x);
    CHECK_OK(m->forward(m->state, tp, x, t, cond, NULL, &y));
    if (y)
        CHECK_OK(bd_mse(tp, y, x, &l));
    *fwd_end = bd_tape_arena_used(tp);
    if (!l || bd_tape_backward(tp, l) != BD_OK)
        return NULL;
    *loss = l->data[0];
    bd_tensor *g = grads_of(m->params);
    bd_tensor *all = bd_tensor_new4(g->numel + x->numel, 0, 0, 0, false);
    memcpy(all->data, g->data, (size_t)g->numel * sizeof(float));
    memcpy(all->data + g->numel, x->grad, (size_t)x->numel * sizeof(float));
    bd_tensor_free(g);
    return all;
}

/* The backward hands each activation, saved state and temporary grad back
 * once nothing later reads it: the grads are bit for bit those of a
 * backward that keeps everything (a cold and a warm tape), and beyond the
 * forward's end the backward takes at most three of the largest
 * activation, the 32-channel concat at 16x16 (its grad and its inputs'),
 * where keeping everything takes every grad. */
static void test_backward_releases(void)
{
    bd_model *m = NULL;
    const double small[] = {8, 16};
    CHECK_OK(make_unet(&m, 13, TINY, small));
    if (!m)
        return;
    bd_tensor *x, *t, *cond;
    inputs(4, 16, &x, &t, &cond);
    bd_tape *kept = bd_tape_new(), *tp = bd_tape_new();
    bd_tape_set_keep(kept, true);
    size_t end_kept, end;
    float loss_kept, loss;
    bd_tensor *want = train_step_grads(m, kept, x, t, cond, &end_kept, &loss_kept);
    const size_t excess_kept = bd_tape_arena_peak(kept) - end_kept;
    const size_t largest = 4 * 32 * 16 * 16 * sizeof(float);
    for (int step = 0; step < 2; step++) {
        bd_tensor *got = train_step_grads(m, tp, x, t, cond, &end, &loss);
        CHECK(same_bits(want, got) && loss == loss_kept, "step %d: the grads or"
              " the loss differ from a backward that keeps everything", step);
        const size_t excess = bd_tape_arena_peak(tp) - end;
        printf("   step %d: forward's end %.2f MiB, the backward's peak %.2f MiB"
               " beyond it (keeping everything: %.2f)\n", step,
               (double)end / 1048576.0, (double)excess / 1048576.0,
               (double)excess_kept / 1048576.0);
        CHECK(end == end_kept && excess <= 3 * largest, "the backward took"
              " %zu bytes beyond the forward's end, expected at most %zu",
              excess, 3 * largest);
        bd_tensor_free(got);
    }
    bd_tape_free(kept);
    bd_tape_free(tp);
    bd_tensor_free(want);
    bd_tensor_free(x);
    bd_tensor_free(t);
    bd_tensor_free(cond);
    bd_model_free(m);
}

/* ---- gradient through the whole network ------------------------------------ */

typedef struct unet_call {
    bd_model  *m;
    bd_tensor *t, *cond;
} unet_call;

/* in[0] = x_t; the other inputs are parameters the model reads itself. */
static bd_status run_unet(bd_tape *tp, bd_tensor **in, void *ud, bd_tensor **y)
{
    unet_call *c = ud;
    return c->m->forward(c->m->state, tp, in[0], c->t, c->cond, NULL, y);
}

static void test_gradient(void)
{
    bd_model *m = NULL;
    const double tiny[] = {4, 8};
    CHECK_OK(make_unet(&m, 5, TINY, tiny));
    if (!m)
        return;
    bd_tensor *x, *t, *cond;
    inputs(2, 8, &x, &t, &cond);
    /* 20 probes per tensor: a stride that is no multiple of 9 reaches the
     * centre taps of the 3x3 convs, the only ones live at 1x1 (down3, mid) */
    static const char *const probed[] = {
        "stem.conv1.weight", "down1.conv_a.norm1.bias", "down2.emb.weight",
        "up2.attn.qkv.weight", "mid2.conv2.weight", "up1.attn.ff1.weight",
        "up2.conv_b.norm2.weight", "up3.attn.proj.weight", "head.bias",
    };
    enum { N_PROBED = sizeof probed / sizeof probed[0] };
    bd_tensor *in[1 + N_PROBED] = {x};
    for (int i = 0; i < N_PROBED; i++) {
        in[1 + i] = bd_params_find(m->params, probed[i]);
        CHECK(in[1 + i] != NULL, "parameter %s", probed[i]);
    }
    unet_call call = {m, t, cond};
    /* eps 1e-3: a step of 3e-3 on stem.conv1.weight can cross a max-pool
     * tie, a kink where the difference quotient is no derivative (at 1e-2
     * one reads -0.31 against 0.0125) */
    harness_gradcheck("unet width 4, 8x8, attention", run_unet, in, 1 + N_PROBED,
                      &call, 1e-3, 1e-2, 20);
    bd_tensor_free(x);
    bd_tensor_free(t);
    bd_tensor_free(cond);
    bd_model_free(m);
}

/* ---- overfitting a batch of bumps ------------------------------------------- */

/* 8 Gaussian bumps (sigma 1) on S x S, scaled to [-1, 1], their centres in
 * cond, and fixed noise levels and noise: x_t = sqrt(a) x0 + sqrt(1 - a) eps. */
static void bump_batch(bd_tensor *x_t, bd_tensor *eps, bd_tensor *t,
                       bd_tensor *cond)
{
    const int64_t n = x_t->shape[0], s = x_t->shape[2];
    harness_fill(eps, -1.7, 1.7);
    for (int64_t i = 0; i < n; i++) {
        const double cx = (0.15 + 0.1 * (double)i) * (double)s;
        const double cy = (0.8 - 0.09 * (double)i) * (double)s;
        const double a = 0.3 + 0.08 * (double)i;
        cond->data[2 * i] = (float)cx;
        cond->data[2 * i + 1] = (float)cy;
        t->data[i] = (float)(100 * i + 50);
        for (int64_t p = 0; p < s * s; p++) {
            const double dx = (double)(p % s) - cx, dy = (double)(p / s) - cy;
            const double x0 = 2.0 * exp(-(dx * dx + dy * dy) / 2.0) - 1.0;
            const int64_t k = i * s * s + p;
            x_t->data[k] = (float)(sqrt(a) * x0 + sqrt(1.0 - a) * eps->data[k]);
        }
    }
}

static void test_overfit(void)
{
    bd_model *m = NULL;
    const double small[] = {8, 8};
    CHECK_OK(make_unet(&m, 11, TINY, small));
    if (!m)
        return;
    bd_tensor *x_t = bd_tensor_new4(8, 1, 8, 8, false);
    bd_tensor *eps = bd_tensor_new4(8, 1, 8, 8, false);
    bd_tensor *t = bd_tensor_new4(8, 0, 0, 0, false);
    bd_tensor *cond = bd_tensor_new4(8, 2, 0, 0, false);
    bump_batch(x_t, eps, t, cond);
    bd_adamw_config ac = bd_adamw_defaults();
    ac.weight_decay = 0.0f;
    bd_adamw *opt = NULL;
    CHECK_OK(bd_adamw_new(m->params, ac, &opt));
    bd_tape *tp = bd_tape_new();
    double first = 0.0, last = 0.0;
    int step;
    for (step = 0; step < 400 && opt; step++) {
        bd_tape_reset(tp);
        bd_params_zero_grad(m->params);
        bd_tensor *out, *loss;
        if (m->forward(m->state, tp, x_t, t, cond, NULL, &out) != BD_OK
            || bd_mse(tp, out, eps, &loss) != BD_OK
            || bd_tape_backward(tp, loss) != BD_OK
            || bd_adamw_step(opt, 3e-3f, NULL) != BD_OK)
            break;
        last = loss->data[0];
        if (step == 0)
            first = last;
        if (last < first / 100.0)
            break;
    }
    printf("   overfit 8 bumps, width 8, 8x8: loss %.4f -> %.6f in %d steps"
           " (%.0fx)\n", first, last, step, first / last);
    CHECK(last < first / 100.0, "loss %.4g -> %.4g, expected 100x down: %s",
          first, last, bd_last_error());
    bd_tape_free(tp);
    bd_adamw_free(opt);
    bd_tensor_free(x_t);
    bd_tensor_free(eps);
    bd_tensor_free(t);
    bd_tensor_free(cond);
    bd_model_free(m);
}

int main(void)
{
    RUN(test_paper_scale);
    RUN(test_config);
    RUN(test_shapes_and_taps);
    RUN(test_layer4_pre);
    RUN(test_forward_without_grad);
    RUN(test_backward_releases);
    RUN(test_gradient);
    RUN(test_overfit);
    bd_plugins_unload_all();
    return harness_summary();
}
