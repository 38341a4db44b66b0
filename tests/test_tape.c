/* Tensors, arena and tape: shapes, overflow, reuse, backward bookkeeping. */
#include <sys/resource.h>

#include "harness.h"

static void test_shape_errors(void)
{
    const int64_t zero[2] = {3, 0}, huge[4] = {1 << 30, 1 << 30, 1 << 30, 8};
    int64_t n;
    CHECK_FAILS(bd_shape_check("t", 2, zero, &n), BD_E_ARG, "dim 1 is 0");
    CHECK_FAILS(bd_shape_check("t", 5, zero, &n), BD_E_ARG, "5 dims");
    CHECK_FAILS(bd_shape_check("t", 4, huge, &n), BD_E_NOMEM, "overflow");
    bd_clear_error();
    CHECK(bd_tensor_new(4, huge, false) == NULL && strstr(bd_last_error(), "overflow"),
          "huge tensor refused: %s", bd_last_error());
}

static void test_arena_reuse(void)
{
    bd_arena a;
    bd_arena_init(&a);
    for (int step = 0; step < 3; step++) {
        size_t cap_before = a.capacity;
        for (int i = 0; i < 100; i++)
            CHECK(bd_arena_alloc(&a, 100000) != NULL, "arena alloc");
        if (step == 2)
            CHECK(a.capacity == cap_before, "warm step grew the arena: %zu -> %zu",
                  cap_before, a.capacity);
        bd_arena_reset(&a);
        CHECK(a.used == 0, "reset empties the arena");
    }
    CHECK(((uintptr_t)bd_arena_alloc(&a, 3) & 63) == 0, "aligned");
    bd_arena_free(&a);
}

/* Released chunks are reused (the smallest hole that fits), neighbouring
 * holes merge, a hole at a block's fill mark gives the space back, and a
 * pointer from elsewhere is refused. */
static void test_arena_release(void)
{
    bd_arena a;
    bd_arena_init(&a);
    unsigned char *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = bd_arena_alloc(&a, 1000);   /* 1024 bytes each, side by side */
    CHECK(p[1] == p[0] + 1024 && p[3] == p[2] + 1024, "chunks side by side");
    CHECK(bd_arena_release(&a, p[1], 1000) && a.used == 3 * 1024, "released");
    CHECK(bd_arena_alloc(&a, 1024) == p[1], "the hole taken again");
    CHECK(bd_arena_release(&a, p[1], 1000) && bd_arena_release(&a, p[2], 1000)
          && a.n_holes == 1, "neighbouring holes merge: %zu", a.n_holes);
    CHECK(bd_arena_alloc(&a, 2000) == p[1], "the merged hole holds 2048");
    CHECK(bd_arena_release(&a, p[1], 2000) && bd_arena_release(&a, p[3], 1000)
          && a.n_holes == 0 && a.used == 1024,
          "a hole at the fill mark goes back: %zu holes, %zu used", a.n_holes,
          a.used);
    CHECK(bd_arena_alloc(&a, 3 * 1024) == p[1], "bump from the lowered mark");
    unsigned char *big = bd_arena_alloc(&a, 512);
    bd_arena_alloc(&a, 64);
    unsigned char *small = bd_arena_alloc(&a, 64);
    bd_arena_alloc(&a, 64);
    bd_arena_release(&a, big, 512);
    bd_arena_release(&a, small, 64);
    CHECK(bd_arena_alloc(&a, 64) == small, "the smallest hole that fits");
    int local;
    CHECK(!bd_arena_release(&a, &local, sizeof local), "a foreign pointer refused");
    CHECK(a.peak >= 4 * 1024, "peak kept: %zu", a.peak);
    bd_arena_reset(&a);
    CHECK(a.n_holes == 0 && bd_arena_alloc(&a, 64) == p[0], "reset forgets holes");
    bd_arena_free(&a);
}

/* Chunks of assorted sizes released in any order merge into one hole that
 * goes back to the block: the arena ends empty, without holes, and the
 * next chunk starts where the first did. */
static void test_arena_release_any_order(void)
{
    enum { N = 48 };
    bd_arena a;
    bd_arena_init(&a);
    uint32_t state = 12345;
    for (int trial = 0; trial < 40; trial++) {
        unsigned char *p[N];
        size_t bytes[N];
        int order[N];
        for (int i = 0; i < N; i++) {
            bytes[i] = 64 * (size_t)(1 + (i * 7 + trial) % 5);
            p[i] = bd_arena_alloc(&a, bytes[i]);
            order[i] = i;
        }
        for (int i = N - 1; i > 0; i--) { /* Fisher-Yates, an LCG's draws */
            state = state * 1664525u + 1013904223u;
            const int j = (int)((state >> 8) % (uint32_t)(i + 1));
            const int o = order[i];
            order[i] = order[j];
            order[j] = o;
        }
        size_t most = 0;
        for (int i = 0; i < N; i++) {
            CHECK(bd_arena_release(&a, p[order[i]], bytes[order[i]]), "release");
            most = a.n_holes > most ? a.n_holes : most;
        }
        CHECK(a.used == 0 && a.n_holes == 0, "trial %d: %zu bytes used, %zu"
              " holes left (at most %zu)", trial, a.used, a.n_holes, most);
        CHECK(bd_arena_alloc(&a, 64) == p[0], "trial %d: the space went back",
              trial);
        bd_arena_reset(&a);
    }
    bd_arena_free(&a);
}

/* With grad off a released tensor's memory goes to the next tensor; with
 * grad on, after a recorded node, for a kept (tapped) tensor or a heap
 * tensor, nothing happens. */
static void test_tape_release(void)
{
    const int64_t shape[1] = {1000};
    bd_tape *tp = bd_tape_new();
    bd_tensor *a = bd_tape_tensor(tp, 1, shape), *b;
    bd_tape_release(tp, a);  /* grad on: kept for backward */
    b = bd_tape_tensor(tp, 1, shape);
    CHECK(b != a && b->data != a->data, "grad on: nothing released");
    bd_tape_reset(tp);
    bd_tape_set_grad(tp, false);
    a = bd_tape_tensor(tp, 1, shape);
    bd_tape_release(tp, a);
    b = bd_tape_tensor(tp, 1, shape);
    bd_tensor *c = bd_tape_tensor(tp, 1, shape);
    CHECK(b == a && c != b, "grad off: the memory reused once");
    b->flags |= BD_TENSOR_KEPT;
    bd_tape_release(tp, b);
    CHECK(bd_tape_tensor(tp, 1, shape) != b, "a kept tensor stays");
    bd_tensor *heap = bd_tensor_new(1, shape, false);
    bd_tape_release(tp, heap);
    CHECK(heap->data && (heap->flags & BD_TENSOR_HEAP), "a heap tensor is left alone");
    bd_tensor_free(heap);

    bd_tape_reset(tp);
    bd_tape_set_grad(tp, true);
    bd_tensor *x = bd_tensor_new(1, shape, true), *y;
    CHECK_OK(bd_gelu(tp, x, &y));
    bd_tape_set_grad(tp, false);
    a = bd_tape_tensor(tp, 1, shape);
    bd_tape_release(tp, y);
    bd_tape_release(tp, a);
    CHECK(bd_tape_tensor(tp, 1, shape) != a, "after a recorded node: nothing released");
    bd_tensor_free(x);
    bd_tape_free(tp);
}

static long minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/* A step of 64 MiB in 1 MiB pieces, every byte written. */
static void arena_step(bd_arena *a)
{
    for (int i = 0; i < 64; i++) {
        unsigned char *p = bd_arena_alloc(a, (size_t)1 << 20);
        CHECK(p != NULL, "arena alloc");
        if (p)
            memset(p, i, (size_t)1 << 20);
    }
    bd_arena_reset(a);
}

/* The first step maps the arena's pages; a warm step takes no page fault
 * (the pages stay mapped: nothing for the kernel to clear). 16384 pages
 * per step; the margin is for faults that are not the arena's. */
static void test_arena_warm_step_does_not_fault(void)
{
    bd_arena a;
    bd_arena_init(&a);
    long before = minor_faults();
    arena_step(&a);
    const long cold = minor_faults() - before;
    for (int step = 0; step < 2; step++) {
        before = minor_faults();
        arena_step(&a);
        const long warm = minor_faults() - before;
        CHECK(warm < 64, "warm step %d took %ld page faults (the cold one %ld)",
              step + 1, warm, cold);
    }
    bd_arena_free(&a);
}

static void test_gradient_accumulates(void)
{
    /* loss = sum(silu(x)) + sum(x): x used twice, grads add. */
    bd_tensor *x = bd_tensor_new4(3, 0, 0, 0, true);
    x->data[0] = -1, x->data[1] = 0, x->data[2] = 2;
    bd_tape *tp = bd_tape_new();
    bd_tensor *s, *a, *b, *ab;
    CHECK_OK(bd_silu(tp, x, &s));
    CHECK_OK(bd_sum(tp, s, &a));
    CHECK_OK(bd_sum(tp, x, &b));
    CHECK_OK(bd_mse(tp, a, b, &ab)); /* (a - b)^2 */
    CHECK_OK(bd_tape_backward(tp, ab));
    double sum_s = 0, sum_x = 0;
    for (int i = 0; i < 3; i++) {
        double v = x->data[i];
        sum_s += v / (1 + exp(-v));
        sum_x += v;
    }
    for (int i = 0; i < 3; i++) {
        double v = x->data[i], sg = 1 / (1 + exp(-v));
        double want = 2 * (sum_s - sum_x) * (sg * (1 + v * (1 - sg)) - 1);
        CHECK(fabs(x->grad[i] - want) < 1e-5, "grad[%d] %g want %g", i,
              x->grad[i], want);
    }
    CHECK_FAILS(bd_tape_backward(tp, ab), BD_E_STATE, "already ran");
    bd_tape_free(tp);
    bd_tensor_free(x);
}

/* h is read four times by three ops: the first to run backward assigns
 * its grad, the others add (add(h, h) reads it twice; max_pool zeroes it
 * first).
 * in: x (2, 3, 8, 8), w (4, 3, 3, 3), gamma (8), w2 (5, 8) -> y (2, 64, 5) */
static bd_status shared_input_net(bd_tape *tp, bd_tensor **in, void *ud,
                                  bd_tensor **y)
{
    (void)ud;
    bd_tensor *h, *g, *s, *p, *u, *su, *c, *n, *t;
    BD_TRY(bd_conv2d(tp, in[0], in[1], NULL, 1, 1, &h));         /* (2, 4, 8, 8) */
    BD_TRY(bd_gelu(tp, h, &g));
    BD_TRY(bd_add(tp, h, h, &s));
    BD_TRY(bd_max_pool(tp, h, 2, &p));
    BD_TRY(bd_upsample2x(tp, p, BD_UPSAMPLE_NEAREST, &u));
    BD_TRY(bd_add(tp, s, u, &su));
    BD_TRY(bd_concat(tp, g, su, &c));                            /* (2, 8, 8, 8) */
    BD_TRY(bd_group_norm(tp, c, 2, in[2], NULL, 1e-5f, &n));
    BD_TRY(bd_to_tokens(tp, n, &t));                             /* (2, 64, 8) */
    return bd_linear(tp, t, in[3], NULL, y);
}

/* The inputs of shared_input_net and viewed_net, each requiring grad:
 * x (2, 3, 8, 8), conv weight (4, 3, 3, 3), norm gain (8), linear (5, 8). */
static void shared_net_inputs(bd_tensor *in[4])
{
    const int64_t xs[4] = {2, 3, 8, 8}, ws[4] = {4, 3, 3, 3}, gs[1] = {8};
    const int64_t w2s[2] = {5, 8};
    in[0] = harness_tensor(4, xs, -1, 1, true);
    in[1] = harness_tensor(4, ws, -0.5, 0.5, true);
    in[2] = harness_tensor(1, gs, 0.5, 1.5, true);
    in[3] = harness_tensor(2, w2s, -0.5, 0.5, true);
}

static void test_shared_input_gradient(void)
{
    bd_tensor *in[4];
    shared_net_inputs(in);
    harness_gradcheck("a temporary read four times", shared_input_net, in, 4,
                      NULL, 1e-3, 1e-2, 40);
    for (int i = 0; i < 4; i++)
        bd_tensor_free(in[i]);
}

/* A net with a temporary read by several ops, views of temporaries, of a
 * leaf tape tensor that collects a gradient and of a tape constant that
 * an early op reads directly and a late one through its view.
 * in: x (2, 3, 8, 8), w (4, 3, 3, 3), gamma (8), w2 (5, 8); *leaf: (2, 256)
 * requires grad -> loss (1) */
static bd_status viewed_net(bd_tape *tp, bd_tensor **in, bd_tensor **leaf,
                            bd_tensor **loss)
{
    const int64_t flat[2] = {2, 256}, planes[4] = {2, 4, 8, 8};
    bd_tensor *c = bd_tape_tensor(tp, 4, planes), *y, *h, *hv, *cv, *a, *l;
    *leaf = bd_tape_tensor(tp, 2, flat);
    if (!c || !*leaf)
        return BD_E_NOMEM;
    for (int64_t i = 0; i < c->numel; i++) {
        c->data[i] = (float)(i % 7) / 7.0f - 0.4f;
        (*leaf)->data[i] = (float)(i % 5) / 5.0f - 0.3f;
    }
    (*leaf)->flags |= BD_TENSOR_REQUIRES_GRAD;
    BD_TRY(shared_input_net(tp, in, NULL, &y));                  /* (2, 64, 5) */
    BD_TRY(bd_conv2d(tp, in[0], in[1], NULL, 1, 1, &h));         /* (2, 4, 8, 8) */
    BD_TRY(bd_reshape(tp, h, 2, flat, &hv));
    BD_TRY(bd_reshape(tp, c, 2, flat, &cv));                     /* no node */
    BD_TRY(bd_mul(tp, hv, cv, &a));                              /* c read early */
    BD_TRY(bd_mul(tp, a, *leaf, &a));
    BD_TRY(bd_gelu(tp, hv, &hv));
    BD_TRY(bd_add(tp, a, hv, &a));
    BD_TRY(bd_reshape(tp, a, 4, planes, &a));
    BD_TRY(bd_mul(tp, a, c, &a));                                /* and late */
    BD_TRY(bd_concat(tp, a, h, &a));                             /* (2, 8, 8, 8) */
    BD_TRY(bd_to_tokens(tp, a, &a));                             /* (2, 64, 8) */
    BD_TRY(bd_linear(tp, a, in[3], NULL, &a));                   /* (2, 64, 5) */
    BD_TRY(bd_mse(tp, a, y, &l));
    BD_TRY(bd_sum(tp, y, &y));
    BD_TRY(bd_add(tp, l, y, loss));
    return BD_OK;
}

/* Every grad of viewed_net (the inputs', then the leaf's) after one
 * backward on tp, into a new heap tensor; *loss the loss. */
static bd_tensor *viewed_net_grads(bd_tape *tp, bd_tensor **in, float *loss)
{
    bd_tensor *leaf = NULL, *l = NULL;
    int64_t n = 0;
    bd_tape_reset(tp);
    for (int k = 0; k < 4; k++) {
        bd_tensor_zero_grad(in[k]);
        n += in[k]->numel;
    }
    CHECK_OK(viewed_net(tp, in, &leaf, &l));
    if (!l || bd_tape_backward(tp, l) != BD_OK)
        return NULL;
    *loss = l->data[0];
    bd_tensor *g = bd_tensor_new4(n + leaf->numel, 0, 0, 0, false);
    float *at = g->data;
    for (int k = 0; k < 4; k++) {
        memcpy(at, in[k]->grad, (size_t)in[k]->numel * sizeof *at);
        at += in[k]->numel;
    }
    memcpy(at, leaf->grad, (size_t)leaf->numel * sizeof *at);
    return g;
}

/* Releasing in the backward changes where memory lives, not a bit of any
 * gradient: viewed_net's grads and loss as with everything kept, on a cold
 * and a warm tape, in less arena. */
static void test_backward_releases_shared_and_views(void)
{
    bd_tensor *in[4];
    shared_net_inputs(in);
    bd_tape *kept = bd_tape_new(), *tp = bd_tape_new();
    bd_tape_set_keep(kept, true);
    float loss_kept, loss;
    bd_tensor *want = viewed_net_grads(kept, in, &loss_kept);
    for (int step = 0; step < 2; step++) {
        bd_tensor *got = viewed_net_grads(tp, in, &loss);
        CHECK(want && got && want->numel == got->numel
              && memcmp(want->data, got->data, (size_t)want->numel * sizeof(float)) == 0
              && loss == loss_kept, "step %d: grads or loss differ", step);
        bd_tensor_free(got);
    }
    CHECK(bd_tape_arena_peak(tp) < bd_tape_arena_peak(kept), "peak %zu, keeping"
          " everything %zu", bd_tape_arena_peak(tp), bd_tape_arena_peak(kept));
    bd_tensor_free(want);
    bd_tape_free(kept);
    bd_tape_free(tp);
    for (int i = 0; i < 4; i++)
        bd_tensor_free(in[i]);
}

/* A chain of 20 linear + GELU layers on (64, width): the forward ends
 * holding 40 activations; the backward holds at most three grads of one
 * beyond that. */
static void chain_step(bd_tape *tp, bd_tensor *x, bd_tensor *w, size_t *fwd_end)
{
    bd_tape_reset(tp);
    bd_tensor *h = x, *loss = NULL;
    for (int l = 0; l < 20; l++) {
        CHECK_OK(bd_linear(tp, h, w, NULL, &h));
        CHECK_OK(bd_gelu(tp, h, &h));
    }
    CHECK_OK(bd_mean(tp, h, &loss));
    *fwd_end = bd_tape_arena_used(tp);
    CHECK_OK(bd_tape_backward(tp, loss));
}

static void test_backward_peak(void)
{
    const int64_t width = 256;
    bd_tensor *x = bd_tensor_new4(64, width, 0, 0, true);
    bd_tensor *w = bd_tensor_new4(width, width, 0, 0, true);
    bd_tensor_fill(w, 1.0f / (float)width);
    bd_tape *tp = bd_tape_new();
    size_t end;
    chain_step(tp, x, w, &end);
    const size_t act = 64 * width * sizeof(float), excess = bd_tape_arena_peak(tp) - end;
    CHECK(end >= 40 * act && excess <= 3 * act, "forward's end %zu, the backward"
          " %zu beyond it: expected at most 3 activations of %zu", end, excess, act);
    bd_tape_free(tp);
    bd_tensor_free(x);
    bd_tensor_free(w);
}

/* From the second step on, a training step that releases as it goes
 * takes the same addresses: no page faults (12 MiB of activations). */
static void test_warm_backward_does_not_fault(void)
{
    const int64_t width = 1024;
    bd_tensor *x = bd_tensor_new4(64, width, 0, 0, true);
    bd_tensor *w = bd_tensor_new4(width, width, 0, 0, true);
    bd_tensor_fill(w, 1.0f / (float)width);
    bd_tape *tp = bd_tape_new();
    size_t end;
    long before = minor_faults();
    chain_step(tp, x, w, &end);
    const long cold = minor_faults() - before;
    for (int step = 0; step < 2; step++) {
        before = minor_faults();
        chain_step(tp, x, w, &end);
        const long warm = minor_faults() - before;
        CHECK(warm < 64, "warm step %d took %ld page faults (the cold one %ld)",
              step + 1, warm, cold);
    }
    bd_tape_free(tp);
    bd_tensor_free(x);
    bd_tensor_free(w);
}

static void test_warm_step_does_not_grow(void)
{
    bd_tensor *x = bd_tensor_new4(64, 128, 0, 0, true);
    bd_tensor *w = bd_tensor_new4(128, 128, 0, 0, true);
    bd_tape *tp = bd_tape_new();
    size_t cap = 0;
    for (int step = 0; step < 3; step++) {
        bd_tape_reset(tp);
        bd_tensor *h = x, *loss;
        for (int l = 0; l < 20; l++) {
            CHECK_OK(bd_linear(tp, h, w, NULL, &h));
            CHECK_OK(bd_gelu(tp, h, &h));
        }
        CHECK_OK(bd_mean(tp, h, &loss));
        CHECK_OK(bd_tape_backward(tp, loss));
        if (step == 2)
            CHECK(bd_tape_arena_peak(tp) <= cap, "warm step needed more arena");
        cap = bd_tape_arena_peak(tp);
    }
    bd_tape_free(tp);
    bd_tensor_free(x);
    bd_tensor_free(w);
}

int main(void)
{
    RUN(test_shape_errors);
    RUN(test_arena_reuse);
    RUN(test_arena_warm_step_does_not_fault);
    RUN(test_arena_release);
    RUN(test_tape_release);
    RUN(test_gradient_accumulates);
    RUN(test_shared_input_gradient);
    RUN(test_warm_step_does_not_grow);
    RUN(test_arena_release_any_order);
    RUN(test_backward_releases_shared_and_views);
    RUN(test_backward_peak);
    RUN(test_warm_backward_does_not_fault);
    return harness_summary();
}
