/* The training loop in C: seeded shuffled batches over epochs, random
 * timesteps and noise, the diffusion loss, AdamW with linear warm-up and
 * gradient clipping, an EMA of the weights, and a callback every k steps.
 *
 * Randomness (all Philox):
 *   the order of epoch e   stream BD_TRAIN_SHUFFLE_STREAM + e of opts.seed
 *                          (Fisher-Yates)
 *   a step's key           two words of state.rng, which starts as stream 0
 *                          of opts.seed and advances
 *   timestep and noise of  stream j under the step's key, so they do not
 *   batch slot j           depend on which process draws them
 * so (step, epoch, position, rng) plus the parameters, the AdamW moments
 * and the EMA resume a run exactly.
 *
 * Batches have a fixed size: a batch that runs past the end of an epoch
 * continues with the next epoch's order.
 *
 * Data-parallel (bd/dist.h, llm.c's recipe): under mpirun the N processes
 * of the group train one model. A batch is still the next opts.batch
 * images of the epoch order (batch must be a multiple of N); rank r takes
 * slots [r b, (r + 1) b), b = batch / N: a disjoint shard, with its own
 * noise streams. The gradients and the loss are averaged over the ranks
 * with one all-reduce of a contiguous buffer per step, so N processes
 * follow the single-process run up to float rounding. bd_trainer_run first
 * copies rank 0's weights, AdamW state, EMA and state to every rank. The
 * callback runs on every rank (only rank 0 should write files); when it
 * fails on any rank, all stop. */
#ifndef BD_TRAIN_H
#define BD_TRAIN_H

#include "bd/config.h"
#include "bd/data.h"
#include "bd/diffusion.h"
#include "bd/model.h"
#include "bd/nn.h"
#include "bd/rng.h"

#define BD_TRAIN_SHUFFLE_STREAM (UINT64_C(1) << 32)

typedef struct bd_train_opts {
    bd_diffusion_spec diffusion; /* schedule, timesteps, prediction, ... */
    int64_t  steps;        /* optimizer steps; 0: from epochs (0) */
    int64_t  epochs;       /* with steps = 0: ceil(epochs * n / batch) steps (1) */
    int64_t  batch;        /* (64) */
    double   lr;           /* peak learning rate (3e-4) */
    int64_t  warmup;       /* lr rises linearly over this many steps (0) */
    double   weight_decay; /* AdamW (0.01) */
    double   beta1, beta2; /* AdamW (0.9, 0.999) */
    double   clip;         /* clip the global grad norm to this; 0: off (1.0) */
    double   ema;          /* EMA decay; 0: no EMA (0.999) */
    int64_t  every;        /* call back every this many steps (100) */
    uint64_t seed;         /* (0) */
} bd_train_opts;

bd_train_opts bd_train_defaults(void);

/* Read steps, epochs, batch, lr, warmup, weight_decay, beta1, beta2, clip,
 * ema, every, seed and the diffusion keys (schedule, timesteps, beta_start,
 * beta_end, prediction) over the defaults with range checks; then fail
 * naming any key not read (owner "train"). */
bd_status bd_train_read(bd_config *cfg, bd_train_opts *opts);

/* Where a run stands: everything besides the weights, the optimizer and the
 * EMA that a checkpoint needs to resume it exactly. */
typedef struct bd_train_state {
    int64_t step;     /* optimizer steps done */
    int64_t epoch;    /* index of the epoch being drawn from */
    int64_t position; /* next index into that epoch's order, 0..n-1 */
    bd_rng  rng;      /* timesteps and noise */
} bd_train_state;

/* What the callback sees. Loss is the mean over the steps since the last
 * report; grad_norm is the last step's, before clipping. */
typedef struct bd_train_report {
    int64_t step, total, epoch;
    double  loss;
    double  lr;
    double  grad_norm;
    double  images_per_s; /* over the steps since the last report */
    double  elapsed_s;    /* since bd_trainer_run began */
} bd_train_report;

typedef struct bd_trainer bd_trainer;

/* Called after every `every`-th step and after the last one. Return BD_OK
 * to continue; any other status stops training and is returned by
 * bd_trainer_run (set the message with bd_fail). */
typedef bd_status (*bd_train_callback)(bd_trainer *tr, const bd_train_report *r,
                                       void *ud);

/* A trainer for model on dataset->train. The model's image shape must match
 * the dataset's; both must outlive the trainer. Makes the AdamW state and
 * the EMA (if opts->ema > 0) from the model's parameters as they are now. */
bd_status bd_trainer_new(bd_model *m, const bd_dataset *d,
                         const bd_train_opts *opts, bd_trainer **out);
void      bd_trainer_free(bd_trainer *tr);

/* Train from state.step up to the total number of steps. A non-finite loss
 * or gradient stops it with BD_E_NUMERIC, naming the step; then the
 * parameters, optimizer, EMA and state are as they were before that step.
 * Set the state (and load weights, moments and EMA) before calling it to
 * resume a run. */
bd_status bd_trainer_run(bd_trainer *tr, bd_train_callback cb, void *ud);

bd_train_state      *bd_trainer_state(bd_trainer *tr);
const bd_train_opts *bd_trainer_opts(const bd_trainer *tr);
int64_t              bd_trainer_total(const bd_trainer *tr); /* steps in the run */
bd_model            *bd_trainer_model(bd_trainer *tr);
bd_adamw            *bd_trainer_adamw(bd_trainer *tr);
bd_ema              *bd_trainer_ema(bd_trainer *tr);   /* NULL without EMA */
const bd_schedule   *bd_trainer_schedule(const bd_trainer *tr);
/* Learning rate at a step (0-based): lr min(1, (step + 1) / warmup). */
double               bd_trainer_lr(const bd_trainer *tr, int64_t step);

/* What bd_trainer_run_hooks calls; each may be NULL. The ones that return
 * a status run on every rank and, when one fails on any rank, all stop. */
typedef struct bd_train_hooks {
    /* After every step on this process, with the step's loss (progress
     * lines): it cannot stop training. */
    void (*on_step)(void *ud, int64_t step, double loss);
    /* After every save_every-th step and the last (save_every 0: never),
     * after on_report (checkpoints: a checkpoint of step k follows every
     * record of step k). */
    bd_status (*on_save)(bd_trainer *tr, int64_t step, void *ud);
    int64_t save_every;
    /* After every opts.every-th step and the last, as bd_trainer_run's
     * callback. */
    bd_train_callback on_report;
    void *ud;
} bd_train_hooks;

/* bd_trainer_run with all three hooks. */
bd_status bd_trainer_run_hooks(bd_trainer *tr, const bd_train_hooks *h);

/* bd_trainer_new, run, free. */
bd_status bd_train(bd_model *m, const bd_dataset *d, const bd_train_opts *opts,
                   bd_train_callback cb, void *ud);

#endif
