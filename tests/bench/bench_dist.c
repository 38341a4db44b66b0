/* Data-parallel training throughput and the cost of its all-reduce.
 *
 *   bench_dist [WIDTH [BATCH [STEPS]]]                 one process
 *   mpirun -np N bench_dist [WIDTH [BATCH [STEPS]]]    N processes
 *
 * Trains the unet plugin (width WIDTH, 32 from the defaults: 32x32 images,
 * emb 256) on 32x32 bumps with global batch BATCH (64) through bd's
 * trainer: 2 warm-up steps, then STEPS (10) timed ones. Then times the
 * all-reduce a step makes on its own (the parameters' gradients and the
 * loss in one buffer), 20 times after a barrier. Rank 0 prints:
 *
 *   RESULT dist <ranks> <width> <batch> <img/s> <ms/step> <allreduce ms> <MB>
 *
 * Threads come from OPENBLAS_NUM_THREADS as usual; with N ranks on a
 * machine of C cores, give each C / N. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bd/dist.h"
#include "bd/registry.h"
#include "bd/train.h"

enum { WARMUP = 2, REDUCES = 20 };

static void check(bd_status s, const char *what)
{
    if (s != BD_OK) {
        fprintf(stderr, "bench_dist: %s: %s\n", what, bd_last_error());
        exit(1);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The time when step WARMUP ends, and when the last one does. */
typedef struct clock_marks {
    double warm, end;
} clock_marks;

static bd_status mark(bd_trainer *tr, const bd_train_report *r, void *ud)
{
    (void)tr;
    clock_marks *c = ud;
    if (r->step == WARMUP)
        c->warm = now_s();
    c->end = now_s();
    return BD_OK;
}

static bd_model *unet(int64_t width)
{
    bd_config *cfg = bd_config_new();
    bd_model *m = NULL;
    if (!cfg)
        check(BD_E_NOMEM, "config");
    check(bd_config_set_num(cfg, "width", (double)width), "config");
    check(bd_model_create("unet", cfg, 1, &m), "bd_model_create(\"unet\")");
    bd_config_free(cfg);
    return m;
}

/* Seconds per all-reduce of n floats, the mean of REDUCES after a barrier. */
static double time_allreduce(int64_t n)
{
    float *x = calloc((size_t)n, sizeof *x);
    if (!x)
        check(BD_E_NOMEM, "allreduce buffer");
    check(bd_dist_barrier(), "barrier");
    double t0 = now_s();
    for (int i = 0; i < REDUCES; i++)
        check(bd_dist_allreduce_sum(x, n), "allreduce");
    double dt = (now_s() - t0) / REDUCES;
    free(x);
    return dt;
}

int main(int argc, char **argv)
{
    const int64_t width = argc > 1 ? atoll(argv[1]) : 32;
    const int64_t batch = argc > 2 ? atoll(argv[2]) : 64;
    const int64_t steps = argc > 3 ? atoll(argv[3]) : 10;
    bd_data_spec spec = bd_data_defaults();
    spec.size = spec.canvas = 32;
    bd_dataset *d = NULL;
    check(bd_dataset_new(&spec, &d), "dataset");
    bd_model *m = unet(width);
    bd_train_opts o = bd_train_defaults();
    o.steps = WARMUP + steps;
    o.batch = batch;
    o.every = 1;
    o.seed = 1;
    clock_marks c = {0};
    check(bd_train(m, d, &o, mark, &c), "train");
    const double step_s = (c.end - c.warm) / (double)steps;
    const int64_t n = bd_params_numel(m->params) + 1;
    const double reduce_s = time_allreduce(n);
    if (bd_dist_rank() == 0)
        printf("RESULT dist %d %lld %lld %.1f %.1f %.2f %.1f\n", bd_dist_size(),
               (long long)width, (long long)batch, (double)batch / step_s,
               1e3 * step_s, 1e3 * reduce_s, 4e-6 * (double)n);
    bd_model_free(m);
    bd_dataset_free(d);
    bd_plugins_unload_all();
    return 0;
}
