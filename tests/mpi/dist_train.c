/* Data-parallel training under mpirun (tests/mpi.cmake runs it with 2
 * ranks): the collectives, then k steps of the tiny model trained by the
 * group against one process trained alone on the same global batch from
 * rank 0's initial weights; then the ways a group stops together (a batch
 * that does not split, a callback that fails on one rank, a NaN loss on one
 * rank). Every rank checks; mpirun fails when any rank does. */
#include "../test_diffusion_model.h"
#include "bd/dist.h"
#include "bd/train.h"

#define SIZE   8
#define HIDDEN 32
#define STEPS  12 /* 12 batches of 8 from 81 images: crosses an epoch */
#define BATCH  8

static int rank, ranks;

static bd_dataset *bumps(void)
{
    bd_data_spec spec = bd_data_defaults();
    spec.size = spec.canvas = SIZE;
    spec.dx = spec.dy = 1.0;
    bd_dataset *d = NULL;
    CHECK_OK(bd_dataset_new(&spec, &d));
    if (!d)
        exit(2);
    return d;
}

static bd_train_opts opts(void)
{
    bd_train_opts o = bd_train_defaults();
    o.steps = STEPS;
    o.batch = BATCH;
    o.every = 1;
    o.lr = 3e-3;
    o.warmup = 3;
    o.ema = 0.9;
    o.seed = 7;
    return o;
}

/* Every parameter and its EMA shadow, one after the other. */
static float *snapshot(bd_trainer *tr)
{
    const bd_params *p = bd_trainer_model(tr)->params;
    float *out = malloc(2 * (size_t)bd_params_numel(p) * sizeof *out), *f = out;
    for (int i = 0; out && i < bd_params_count(p); i++) {
        const bd_tensor *w = bd_params_at(p, i), *e = bd_ema_at(bd_trainer_ema(tr), i);
        memcpy(f, w->data, (size_t)w->numel * sizeof *f);
        memcpy(f + w->numel, e->data, (size_t)w->numel * sizeof *f);
        f += 2 * w->numel;
    }
    if (!out)
        exit(2);
    return out;
}

typedef struct losses {
    double  loss[STEPS];
    int64_t fail_at;   /* fail the callback at this step (0: never) */
} losses;

static bd_status record(bd_trainer *tr, const bd_train_report *r, void *ud)
{
    (void)tr;
    losses *l = ud;
    l->loss[r->step - 1] = r->loss;
    if (r->step == l->fail_at)
        return bd_fail(BD_E_IO, "callback: disk full on rank %d", rank);
    return BD_OK;
}

static void test_collectives(void)
{
    float x[5];
    for (int i = 0; i < 5; i++)
        x[i] = (float)(rank + i);
    CHECK_OK(bd_dist_allreduce_sum(x, 5));
    const float base = (float)(ranks * (ranks - 1) / 2);
    for (int i = 0; i < 5; i++)
        CHECK(x[i] == base + (float)(ranks * i), "rank %d: sum[%d] = %g,"
              " expected %g", rank, i, x[i], base + (float)(ranks * i));
    int64_t v = rank == 0 ? 1234 : -rank;
    CHECK_OK(bd_dist_broadcast(&v, sizeof v));
    CHECK(v == 1234, "rank %d: broadcast gave %lld", rank, (long long)v);
    CHECK_OK(bd_dist_barrier());
}

/* Train with the group: models start from different weights on each rank,
 * which the trainer replaces with rank 0's. Returns the weights and EMA. */
static float *train_group(const bd_dataset *d, losses *l)
{
    bd_model *m = tiny_new(SIZE, HIDDEN, 1 + (uint64_t)rank);
    bd_train_opts o = opts();
    bd_trainer *tr = NULL;
    CHECK_OK(bd_trainer_new(m, d, &o, &tr));
    CHECK_OK(bd_trainer_run(tr, record, l));
    float *snap = snapshot(tr);
    bd_trainer_free(tr);
    bd_model_free(m);
    return snap;
}

/* The same run by this process alone, from rank 0's initial weights. */
static float *train_alone(const bd_dataset *d, losses *l)
{
    bd_model *m = tiny_new(SIZE, HIDDEN, 1);
    bd_train_opts o = opts();
    bd_trainer *tr = NULL;
    CHECK_OK(bd_trainer_new(m, d, &o, &tr));
    CHECK_OK(bd_trainer_run(tr, record, l));
    float *snap = snapshot(tr);
    bd_trainer_free(tr);
    bd_model_free(m);
    return snap;
}

static void test_same_as_one_process(void)
{
    bd_dataset *d = bumps();
    bd_model *shape = tiny_new(SIZE, HIDDEN, 1);
    const int64_t n = 2 * bd_params_numel(shape->params);
    bd_model_free(shape);
    losses group = {0}, alone = {0};
    float *a = train_group(d, &group);

    /* every rank holds the same weights, bit for bit */
    float *zero = malloc((size_t)n * sizeof *zero);
    memcpy(zero, a, (size_t)n * sizeof *zero);
    CHECK_OK(bd_dist_broadcast(zero, (size_t)n * sizeof *zero));
    CHECK(memcmp(zero, a, (size_t)n * sizeof *zero) == 0,
          "rank %d's weights differ from rank 0's", rank);

    bd_dist_alone();
    float *b = train_alone(d, &alone);
    double worst = 0, worst_loss = 0;
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)a[i] - b[i]) / (1e-3 + fabs(b[i])));
    for (int s = 0; s < STEPS; s++)
        worst_loss = fmax(worst_loss, fabs(group.loss[s] - alone.loss[s])
                                      / alone.loss[s]);
    printf("   rank %d of %d, %d steps of batch %d: weights and EMA within %.2e"
           " (relative), losses within %.2e of one process\n", rank, ranks,
           STEPS, BATCH, worst, worst_loss);
    CHECK(worst < 1e-4, "rank %d: weights differ from one process's by %.3e",
          rank, worst);
    CHECK(worst_loss < 1e-5, "rank %d: losses differ from one process's by"
          " %.3e", rank, worst_loss);
    CHECK(alone.loss[STEPS - 1] < alone.loss[0], "the loss fell: %.4f -> %.4f",
          alone.loss[0], alone.loss[STEPS - 1]);
    free(a);
    free(b);
    free(zero);
    bd_dataset_free(d);
}

/* A batch that does not split; a callback or a loss that fails on the last
 * rank only: every rank stops at the same step. */
static void test_stops_together(void)
{
    bd_dataset *d = bumps();
    bd_model *m = tiny_new(SIZE, HIDDEN, 1);
    bd_trainer *tr = NULL;
    bd_train_opts o = opts();
    char want[128];
    o.batch = 2 * ranks + 1;
    snprintf(want, sizeof want, "train: batch = %d does not split evenly over"
             " %d processes, expected a multiple of %d", 2 * ranks + 1, ranks,
             ranks);
    CHECK_FAILS(bd_trainer_new(m, d, &o, &tr), BD_E_ARG, want);

    const bool last = rank == ranks - 1;
    o = opts();
    losses l = {.fail_at = last ? 3 : 0};
    CHECK_OK(bd_trainer_new(m, d, &o, &tr));
    if (last)
        CHECK_FAILS(bd_trainer_run(tr, record, &l), BD_E_IO,
                    "callback: disk full on rank");
    else
        CHECK_FAILS(bd_trainer_run(tr, record, &l), BD_E_STATE,
                    "train: stopped after step 3: the callback failed on 1"
                    " other process(es)");
    CHECK(bd_trainer_state(tr)->step == 3, "rank %d stopped at step %lld",
          rank, (long long)bd_trainer_state(tr)->step);

    ((tiny *)m->state)->nan_at = last ? ((tiny *)m->state)->calls + 2 : 0;
    CHECK_FAILS(bd_trainer_run(tr, NULL, NULL), BD_E_NUMERIC,
                "train: loss is nan at step 5");
    CHECK(bd_trainer_state(tr)->step == 4, "rank %d stopped before step %lld",
          rank, (long long)bd_trainer_state(tr)->step + 1);
    bd_trainer_free(tr);
    bd_model_free(m);
    bd_dataset_free(d);
}

int main(void)
{
    rank = bd_dist_rank();
    ranks = bd_dist_size();
    printf("rank %d of %d (%s)\n", rank, ranks, bd_dist_backend());
    CHECK(ranks > 1 && strcmp(bd_dist_backend(), "mpi") == 0,
          "started by mpirun with 2 ranks: %d ranks, backend %s", ranks,
          bd_dist_backend());
    RUN(test_collectives);
    RUN(test_stops_together);
    RUN(test_same_as_one_process);
    return harness_summary();
}
