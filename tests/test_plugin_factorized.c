/* The factorized denoiser plugin: parameter count and names, config errors,
 * output and tap shapes, a finite-difference check of the gradient through
 * the whole network, determinism by seed, and its guarantee: at fixed x, a
 * change of y changes the output by x's column profile times a row profile
 * (rank 1), so y never moves anything from one column to another. */
#include "bd/registry.h"
#include "harness.h"

/* A factorized model from keys and numbers (keys NULL-terminated). */
static bd_status make(bd_model **m, uint64_t seed, const char *const *keys,
                      const double *values)
{
    bd_config *cfg = bd_config_new();
    for (int i = 0; keys[i]; i++)
        bd_config_set_num(cfg, keys[i], values[i]);
    bd_status s = bd_model_create("factorized", cfg, seed, m);
    bd_config_free(cfg);
    return s;
}

static const char *const KEYS[] = {"width", "depth", "rank", "hidden", "emb",
                                   "size", NULL};

/* x: (N, 1, S, S) in [-1, 1], t: (N) in [0, 1000), cond: (N, 2) in [0, S) */
static void inputs(int64_t n, int64_t s, bd_tensor **x, bd_tensor **t,
                   bd_tensor **cond)
{
    const int64_t xs[4] = {n, 1, s, s}, ts[1] = {n}, cs[2] = {n, 2};
    *x = harness_tensor(4, xs, -1, 1, true);
    *t = harness_tensor(1, ts, 0, 1000, false);
    *cond = harness_tensor(2, cs, 0, (double)s, false);
}

static void free_all(bd_tensor *a, bd_tensor *b, bd_tensor *c)
{
    bd_tensor_free(a);
    bd_tensor_free(b);
    bd_tensor_free(c);
}

static void test_parameters(void)
{
    bd_model *m = NULL;
    const double v[] = {4, 1, 2, 6, 8, 5};
    CHECK_OK(make(&m, 1, KEYS, v));
    if (!m)
        return;
    /* stem 4*9+4; block: 2 convs 2*4*4*9, norm 8, scale 4*8+4, shift 4*8;
     * each path: 6*16+6 + 10*6+10; head 1*6+1 */
    const int64_t want = 40 + (288 + 8 + 36 + 32) + 2 * (102 + 70) + 7;
    CHECK(bd_params_numel(m->params) == want, "%lld parameters, expected %lld",
          (long long)bd_params_numel(m->params), (long long)want);
    CHECK(bd_params_find(m->params, "x_path.fc2.weight")
          && bd_params_find(m->params, "y_path.fc1.bias")
          && bd_params_find(m->params, "block1.scale.weight")
          && !bd_params_find(m->params, "block2.conv1.weight"), "names");
    CHECK(bd_params_find(m->params, "block1.scale.bias")->data[0] == 1.0f,
          "FiLM scale starts at 1");
    CHECK(m->channels == 1 && m->size == 5, "instance %lld x %lld",
          (long long)m->channels, (long long)m->size);
    bd_model_free(m);
    CHECK_OK(bd_model_create("factorized", NULL, 1, &m));
    if (m)
        printf("   factorized defaults (width 16, 32x32): %lld parameters\n",
               (long long)bd_params_numel(m->params));
    bd_model_free(m);
}

static void test_config(void)
{
    bd_model *m = NULL;
    bd_config *cfg = bd_config_new();
    bd_config_set_num(cfg, "emb", 5);
    CHECK_FAILS(bd_model_create("factorized", cfg, 1, &m), BD_E_ARG,
                "factorized: emb = 5, expected an even number");
    bd_config_set_num(cfg, "emb", 8);
    bd_config_set_num(cfg, "rank", 0);
    CHECK_FAILS(bd_model_create("factorized", cfg, 1, &m), BD_E_ARG,
                "rank = 0, expected an integer in");
    bd_config_set_num(cfg, "rank", 1);
    bd_config_set_num(cfg, "depth", 17);
    CHECK_FAILS(bd_model_create("factorized", cfg, 1, &m), BD_E_ARG,
                "depth = 17, expected an integer in");
    bd_config_set_num(cfg, "depth", 1);
    bd_config_set_num(cfg, "widht", 8);
    CHECK_FAILS(bd_model_create("factorized", cfg, 1, &m), BD_E_ARG,
                "unknown key 'widht' for factorized");
    bd_config_free(cfg);
}

static void test_shapes_and_taps(void)
{
    bd_model *m = NULL;
    const double v[] = {6, 2, 3, 8, 8, 7};
    CHECK_OK(make(&m, 3, KEYS, v));
    if (!m)
        return;
    bd_tensor *x, *t, *cond, *out = NULL;
    inputs(2, 7, &x, &t, &cond);
    bd_taps taps = {.n = 5, .names = {"trunk", "x_profile", "y_profile", "layer4",
                                      "nonexistent"}};
    bd_tape *tp = bd_tape_new();
    CHECK_OK(m->forward(m->state, tp, x, t, cond, &taps, &out));
    CHECK(out && bd_shape_equal(out, x), "output shape");
    const bd_tensor *tr = taps.values[0], *p = taps.values[1], *q = taps.values[2];
    const bd_tensor *l4 = taps.values[3];
    CHECK(tr && tr->ndim == 4 && tr->shape[1] == 6 && tr->shape[3] == 7, "trunk tap");
    CHECK(p && p->ndim == 4 && p->shape[1] == 3 && p->shape[2] == 1
          && p->shape[3] == 7, "x_profile (N, K, 1, S)");
    CHECK(q && q->ndim == 4 && q->shape[1] == 3 && q->shape[2] == 7
          && q->shape[3] == 1, "y_profile (N, K, S, 1)");
    CHECK(l4 && l4->ndim == 2 && l4->shape[0] == 2 && l4->shape[1] == 2 * 3 * 7,
          "layer4 (N, 2 K S)");
    CHECK(l4 && p && l4->data[0] == p->data[0] && l4->data[21] == q->data[0],
          "layer4 is [P, Q]");
    CHECK(!taps.values[4], "an unknown tap stays NULL");
    const bd_denoiser_desc *d = bd_denoiser_find("factorized");
    CHECK(d && d->taps && strcmp(d->taps[3], "layer4") == 0, "declared taps");

    bd_tensor *bad_t = bd_tensor_new4(3, 0, 0, 0, false);
    CHECK_FAILS(m->forward(m->state, tp, x, bad_t, cond, NULL, &out), BD_E_ARG,
                "factorized: t has 3 values in 1 dims, expected (2)");
    bd_tensor *bad_x = bd_tensor_new4(2, 1, 8, 8, false);
    CHECK_FAILS(m->forward(m->state, tp, bad_x, t, cond, NULL, &out), BD_E_ARG,
                "factorized: x_t has 128 values in 4 dims, expected (N, 1, 7, 7)");
    bd_tensor *bad_c = bd_tensor_new4(2, 3, 0, 0, false);
    CHECK_FAILS(m->forward(m->state, tp, x, t, bad_c, NULL, &out), BD_E_ARG,
                "factorized: cond has 6 values in 2 dims, expected (2, 2)");
    bd_tensor_free(bad_t);
    bd_tensor_free(bad_x);
    bd_tensor_free(bad_c);
    free_all(x, t, cond);
    bd_tape_free(tp);
    bd_model_free(m);
}

/* ---- gradient through the whole network ------------------------------------ */

typedef struct call {
    bd_model  *m;
    bd_tensor *t, *cond;
} call;

/* in[0] = x_t; the parameters are read by the model itself. */
static bd_status run(bd_tape *tp, bd_tensor **in, void *ud, bd_tensor **y)
{
    call *c = ud;
    return c->m->forward(c->m->state, tp, in[0], c->t, c->cond, NULL, y);
}

static void test_gradient(void)
{
    bd_model *m = NULL;
    const double v[] = {3, 2, 2, 5, 4, 5};
    CHECK_OK(make(&m, 5, KEYS, v));
    if (!m)
        return;
    bd_tensor *x, *t, *cond;
    inputs(2, 5, &x, &t, &cond);
    bd_tensor *in[64] = {x};
    int n_in = 1;
    for (int i = 0; i < bd_params_count(m->params) && n_in < 64; i++)
        in[n_in++] = bd_params_at(m->params, i);
    call c = {m, t, cond};
    harness_gradcheck("factorized width 3, depth 2, rank 2, 5x5", run, in, n_in,
                      &c, 1e-3, 1e-2, 16);
    free_all(x, t, cond);
    bd_model_free(m);
}

/* ---- determinism ---------------------------------------------------------------- */

/* The model's output on fixed inputs, copied into out (n values). */
static void output_of(uint64_t seed, float *out, int64_t n)
{
    bd_model *m = NULL;
    const double v[] = {4, 1, 2, 6, 8, 6};
    CHECK_OK(make(&m, seed, KEYS, v));
    harness_state = 0x1234;
    bd_tensor *x, *t, *cond, *y = NULL;
    inputs(2, 6, &x, &t, &cond);
    bd_tape *tp = bd_tape_new();
    if (m)
        CHECK_OK(m->forward(m->state, tp, x, t, cond, NULL, &y));
    for (int64_t i = 0; i < n; i++)
        out[i] = y && i < y->numel ? y->data[i] : NAN;
    bd_tape_free(tp);
    free_all(x, t, cond);
    bd_model_free(m);
}

static void test_determinism(void)
{
    float a[72], b[72], c[72];
    output_of(7, a, 72);
    output_of(7, b, 72);
    output_of(8, c, 72);
    CHECK(memcmp(a, b, sizeof a) == 0, "same seed, same output");
    CHECK(memcmp(a, c, sizeof a) != 0, "another seed, another output");
}

/* ---- the guarantee ----------------------------------------------------------------- */

enum { S = 6, PAIRS = 3 };

/* The output for one sample at label (x, y), same x_t and t each time. */
static void output_at(bd_model *m, bd_tensor *x_t, float t, float lx, float ly,
                      double *out)
{
    bd_tensor *tt = bd_tensor_new4(1, 0, 0, 0, false);
    bd_tensor *cond = bd_tensor_new4(1, 2, 0, 0, false);
    tt->data[0] = t;
    cond->data[0] = lx;
    cond->data[1] = ly;
    bd_tape *tp = bd_tape_new();
    bd_tensor *y = NULL;
    CHECK_OK(m->forward(m->state, tp, x_t, tt, cond, NULL, &y));
    for (int i = 0; i < S * S; i++)
        out[i] = y ? y->data[i] : NAN;
    bd_tape_free(tp);
    bd_tensor_free(tt);
    bd_tensor_free(cond);
}

/* The largest 2x2 cross minor a[i][j] b[k][l] - a[i][l] b[k][j] over all
 * rows i, k and columns j, l, relative to max|a| max|b|: 0 when a and b are
 * u (x) p and v (x) p with the same column profile p. */
static double cross_minor(const double *a, const double *b)
{
    double worst = 0.0, ma = 0.0, mb = 0.0;
    for (int i = 0; i < S * S; i++) {
        ma = fmax(ma, fabs(a[i]));
        mb = fmax(mb, fabs(b[i]));
    }
    for (int i = 0; i < S; i++)
        for (int k = 0; k < S; k++)
            for (int j = 0; j < S; j++)
                for (int l = 0; l < S; l++)
                    worst = fmax(worst, fabs(a[i * S + j] * b[k * S + l]
                                             - a[i * S + l] * b[k * S + j]));
    return ma > 0 && mb > 0 ? worst / (ma * mb) : INFINITY;
}

/* Column j of d, i.e. d[i][j] over i, against its transpose: d^T. */
static void transpose(const double *d, double *out)
{
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++)
            out[j * S + i] = d[i * S + j];
}

static void test_y_cannot_move_columns(void)
{
    bd_model *m = NULL;
    const double v[] = {5, 2, 1, 16, 16, S};
    CHECK_OK(make(&m, 9, KEYS, v));
    if (!m)
        return;
    /* a template that dominates the output, so float rounding in the
     * differences stays far below the tolerance: head weight of channel C */
    bd_params_find(m->params, "head.weight")->data[5] = 20.0f;
    const int64_t xs[4] = {1, 1, S, S};
    bd_tensor *x_t = harness_tensor(4, xs, -1, 1, false);
    const float ys[PAIRS][2] = {{0.5f, 4.0f}, {1.7f, 2.2f}, {5.5f, 3.1f}};
    double base[S * S], other[S * S], d[PAIRS][S * S], dx[S * S];
    double worst = 0.0, size = 0.0;
    for (int p = 0; p < PAIRS; p++) {
        output_at(m, x_t, 120.0f, 2.3f, ys[p][0], base);
        output_at(m, x_t, 120.0f, 2.3f, ys[p][1], other);
        for (int i = 0; i < S * S; i++) {
            d[p][i] = other[i] - base[i];
            size = fmax(size, fabs(d[p][i]));
        }
    }
    for (int p = 0; p < PAIRS; p++)
        for (int r = 0; r < PAIRS; r++)
            worst = fmax(worst, cross_minor(d[p], d[r]));
    printf("   y changes at x = 2.3: largest |change| %.3g, cross minor %.2e"
           " (0: one column profile)\n", size, worst);
    CHECK(size > 1e-1, "changing y changes the output (%.3g)", size);
    CHECK(worst < 1e-5, "a y change is x's column profile times a row profile"
          " (cross minor %.3g)", worst);

    /* and the same holds with the roles swapped: an x change at fixed y is
     * one row profile, y's, times a column profile; across x values at two
     * different y it is not (the row profiles differ), so the check bites */
    output_at(m, x_t, 120.0f, 0.5f, 3.0f, base);
    output_at(m, x_t, 120.0f, 4.5f, 3.0f, other);
    for (int i = 0; i < S * S; i++)
        dx[i] = other[i] - base[i];
    double dxt[S * S], dyt[S * S];
    transpose(dx, dxt);
    CHECK(cross_minor(dxt, dxt) < 1e-5, "an x change is rank 1 (%.3g)",
          cross_minor(dxt, dxt));
    transpose(d[0], dyt);
    const double mixed = cross_minor(dxt, dyt);
    printf("   x change against y change, transposed: cross minor %.2e"
           " (not 0: different profiles)\n", mixed);
    CHECK(mixed > 1e-3, "the check tells profiles apart (%.3g)", mixed);
    bd_tensor_free(x_t);
    bd_model_free(m);
}

int main(void)
{
    RUN(test_parameters);
    RUN(test_config);
    RUN(test_shapes_and_taps);
    RUN(test_gradient);
    RUN(test_determinism);
    RUN(test_y_cannot_move_columns);
    bd_plugins_unload_all();
    return harness_summary();
}
