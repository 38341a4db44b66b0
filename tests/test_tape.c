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

/* With grad off a released tensor's memory goes to the next tensor; with
 * grad on, after a recorded node, for a kept (tapped) tensor, a heap
 * tensor or a second release, nothing happens. */
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
    bd_tape_release(tp, a);  /* a second release does nothing */
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

static void test_shared_input_gradient(void)
{
    const int64_t xs[4] = {2, 3, 8, 8}, ws[4] = {4, 3, 3, 3}, gs[1] = {8};
    const int64_t w2s[2] = {5, 8};
    bd_tensor *in[4] = {harness_tensor(4, xs, -1, 1, true),
                        harness_tensor(4, ws, -0.5, 0.5, true),
                        harness_tensor(1, gs, 0.5, 1.5, true),
                        harness_tensor(2, w2s, -0.5, 0.5, true)};
    harness_gradcheck("a temporary read four times", shared_input_net, in, 4,
                      NULL, 1e-3, 1e-2, 40);
    for (int i = 0; i < 4; i++)
        bd_tensor_free(in[i]);
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
    return harness_summary();
}
