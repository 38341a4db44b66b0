/* The training loop (see bd/train.h). A warm step allocates nothing: the
 * batch lives in heap tensors made once, temporaries on the tape. */
#include "bd/train.h"
#include "bd/dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BATCH 65536

struct bd_trainer {
    bd_model         *m;
    const bd_dataset *d;
    bd_train_opts     o;
    int64_t           total;  /* steps in the run */
    bd_train_state    st;
    bd_schedule      *s;
    bd_adamw         *opt;
    bd_ema           *ema;    /* NULL without EMA */
    bd_tape          *tp;
    int64_t          *order;  /* (n) image order of epoch order_epoch */
    int64_t           order_epoch;
    int               rank, ranks; /* this process among those training */
    int64_t           local;  /* b = B / ranks: this rank's slots of a batch */
    bd_tensor        *x0, *eps, *cond; /* (b, C, H, W), (b, C, H, W), (b, 2) */
    int64_t          *t;      /* (b) */
    float            *flat;   /* (P + 1): grads and loss to all-reduce, or NULL */
    int64_t           flat_n;
};

bd_train_state      *bd_trainer_state(bd_trainer *tr) { return &tr->st; }
const bd_train_opts *bd_trainer_opts(const bd_trainer *tr) { return &tr->o; }
int64_t              bd_trainer_total(const bd_trainer *tr) { return tr->total; }
bd_model            *bd_trainer_model(bd_trainer *tr) { return tr->m; }
bd_adamw            *bd_trainer_adamw(bd_trainer *tr) { return tr->opt; }
bd_ema              *bd_trainer_ema(bd_trainer *tr) { return tr->ema; }
const bd_schedule   *bd_trainer_schedule(const bd_trainer *tr) { return tr->s; }

double bd_trainer_lr(const bd_trainer *tr, int64_t step)
{
    if (tr->o.warmup <= 0 || step + 1 >= tr->o.warmup)
        return tr->o.lr;
    return tr->o.lr * (double)(step + 1) / (double)tr->o.warmup;
}

/* ---- set-up ----------------------------------------------------------------- */

static bd_status check_opts(const bd_train_opts *o)
{
    if (o->batch < 1 || o->batch > MAX_BATCH)
        return bd_fail(BD_E_ARG, "train: batch = %lld, expected 1 to %d",
                       (long long)o->batch, MAX_BATCH);
    if (o->steps < 0 || (o->steps == 0 && o->epochs < 1))
        return bd_fail(BD_E_ARG, "train: steps = %lld, epochs = %lld: expected"
                       " steps >= 1, or steps = 0 and epochs >= 1",
                       (long long)o->steps, (long long)o->epochs);
    if (o->warmup < 0 || o->every < 1)
        return bd_fail(BD_E_ARG, "train: warmup = %lld, every = %lld: expected"
                       " warmup >= 0 and every >= 1", (long long)o->warmup,
                       (long long)o->every);
    if (!(o->ema >= 0 && o->ema < 1))
        return bd_fail(BD_E_ARG, "train: ema = %g, expected a decay in [0, 1)"
                       " (0: no EMA)", o->ema);
    return BD_OK;
}

static bd_status check_match(const bd_model *m, const bd_dataset *d)
{
    if (!m || !m->forward || !m->params)
        return bd_fail(BD_E_ARG, "train: model is NULL or incomplete");
    if (!d || d->train.n < 1)
        return bd_fail(BD_E_ARG, "train: dataset is NULL or has no images");
    const bd_tensor *x = d->train.images;
    if (x->shape[1] != m->channels || x->shape[2] != m->size
        || x->shape[3] != m->size)
        return bd_fail(BD_E_ARG, "train: model '%s' takes %lld channel(s) of"
                       " %lldx%lld, the dataset has %lld of %lldx%lld", m->arch,
                       (long long)m->channels, (long long)m->size,
                       (long long)m->size, (long long)x->shape[1],
                       (long long)x->shape[2], (long long)x->shape[3]);
    return BD_OK;
}

static int64_t total_steps(const bd_train_opts *o, int64_t n)
{
    if (o->steps > 0)
        return o->steps;
    return (o->epochs * n + o->batch - 1) / o->batch;
}

void bd_trainer_free(bd_trainer *tr)
{
    if (!tr)
        return;
    bd_schedule_free(tr->s);
    bd_adamw_free(tr->opt);
    bd_ema_free(tr->ema);
    bd_tape_free(tr->tp);
    free(tr->order);
    bd_tensor_free(tr->x0);
    bd_tensor_free(tr->eps);
    bd_tensor_free(tr->cond);
    free(tr->t);
    free(tr->flat);
    free(tr);
}

static bd_status make_optimizer(bd_trainer *tr)
{
    bd_adamw_config c = bd_adamw_defaults();
    c.lr = (float)tr->o.lr;
    c.beta1 = (float)tr->o.beta1;
    c.beta2 = (float)tr->o.beta2;
    c.weight_decay = (float)tr->o.weight_decay;
    c.clip_norm = (float)tr->o.clip;
    BD_TRY(bd_adamw_new(tr->m->params, c, &tr->opt));
    if (tr->o.ema > 0)
        BD_TRY(bd_ema_new(tr->m->params, (float)tr->o.ema, &tr->ema));
    return BD_OK;
}

/* This process's place among those training together: the batch must split
 * evenly over them. */
static bd_status join_group(bd_trainer *tr)
{
    tr->rank = bd_dist_rank();
    tr->ranks = bd_dist_size();
    if (tr->o.batch % tr->ranks != 0)
        return bd_fail(BD_E_ARG, "train: batch = %lld does not split evenly"
                       " over %d processes, expected a multiple of %d",
                       (long long)tr->o.batch, tr->ranks, tr->ranks);
    tr->local = tr->o.batch / tr->ranks;
    return BD_OK;
}

static bd_status make_buffers(bd_trainer *tr)
{
    const int64_t b = tr->local, c = tr->m->channels, n = tr->m->size;
    tr->x0 = bd_tensor_new4(b, c, n, n, false);
    tr->eps = bd_tensor_new4(b, c, n, n, false);
    tr->cond = bd_tensor_new4(b, 2, 0, 0, false);
    tr->t = malloc((size_t)b * sizeof *tr->t);
    tr->order = malloc((size_t)tr->d->train.n * sizeof *tr->order);
    tr->tp = bd_tape_new();
    if (tr->ranks > 1) {
        tr->flat_n = bd_params_numel(tr->m->params) + 1;
        tr->flat = malloc((size_t)tr->flat_n * sizeof *tr->flat);
    }
    if (!tr->x0 || !tr->eps || !tr->cond || !tr->t || !tr->order || !tr->tp
        || (tr->ranks > 1 && !tr->flat))
        return bd_fail(BD_E_NOMEM, "train: out of memory for a batch of %lld",
                       (long long)b);
    tr->order_epoch = -1;
    return BD_OK;
}

bd_status bd_trainer_new(bd_model *m, const bd_dataset *d,
                         const bd_train_opts *opts, bd_trainer **out)
{
    BD_TRY(check_opts(opts));
    BD_TRY(check_match(m, d));
    bd_trainer *tr = calloc(1, sizeof *tr);
    if (!tr)
        return bd_fail(BD_E_NOMEM, "train: out of memory");
    tr->m = m;
    tr->d = d;
    tr->o = *opts;
    tr->total = total_steps(opts, d->train.n);
    tr->st = (bd_train_state){.rng = bd_rng_make(opts->seed, 0)};
    bd_status st = join_group(tr);
    if (st == BD_OK)
        st = bd_schedule_new(&opts->diffusion, &tr->s);
    if (st == BD_OK)
        st = make_optimizer(tr);
    if (st == BD_OK)
        st = make_buffers(tr);
    if (st != BD_OK) {
        bd_trainer_free(tr);
        return st;
    }
    *out = tr;
    return BD_OK;
}

/* ---- one step --------------------------------------------------------------- */

/* The image order of epoch e: a Fisher-Yates shuffle of its own stream. */
static void shuffle(bd_trainer *tr, int64_t epoch)
{
    const int64_t n = tr->d->train.n;
    bd_rng rng = bd_rng_make(tr->o.seed, BD_TRAIN_SHUFFLE_STREAM + (uint64_t)epoch);
    for (int64_t i = 0; i < n; i++)
        tr->order[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)bd_rng_below(&rng, (uint32_t)(i + 1));
        int64_t tmp = tr->order[i];
        tr->order[i] = tr->order[j];
        tr->order[j] = tmp;
    }
    tr->order_epoch = epoch;
}

/* Local slot b holds image i; its timestep and noise come from stream
 * `slot` (its place in the global batch) under the step's key. */
static void draw_sample(bd_trainer *tr, int64_t b, int64_t i, uint64_t key,
                        int64_t slot)
{
    const bd_split *sp = &tr->d->train;
    const int64_t pixels = bd_tensor_inner(sp->images, 1);
    memcpy(tr->x0->data + b * pixels, sp->images->data + i * pixels,
           (size_t)pixels * sizeof(float));
    memcpy(tr->cond->data + 2 * b, sp->labels->data + 2 * i, 2 * sizeof(float));
    bd_rng rng = bd_rng_make(key, (uint64_t)slot);
    tr->t[b] = (int64_t)bd_rng_below(&rng, (uint32_t)tr->s->T);
    bd_rng_fill_normal(&rng, tr->eps->data + b * pixels, pixels, 0.0f, 1.0f);
}

/* Walk the next batch of the epoch order, advancing the position (and the
 * epoch at the end of one); this rank draws its own slots. */
static void draw_batch(bd_trainer *tr)
{
    bd_train_state *st = &tr->st;
    const uint64_t high = bd_rng_u32(&st->rng);
    const uint64_t key = high << 32 | bd_rng_u32(&st->rng);
    const int64_t first = tr->rank * tr->local;
    for (int64_t slot = 0; slot < tr->o.batch; slot++) {
        if (tr->order_epoch != st->epoch)
            shuffle(tr, st->epoch);
        if (slot >= first && slot < first + tr->local)
            draw_sample(tr, slot - first, tr->order[st->position], key, slot);
        if (++st->position == tr->d->train.n) {
            st->position = 0;
            st->epoch++;
        }
    }
}

/* Sum every rank's gradients and loss with one all-reduce of a contiguous
 * buffer and divide by the ranks: the gradient of the mean loss over the
 * whole batch, the same on every rank. */
static bd_status average_grads(bd_trainer *tr, double *loss)
{
    const bd_params *p = tr->m->params;
    float *f = tr->flat;
    for (int i = 0; i < bd_params_count(p); i++) {
        const bd_tensor *w = bd_params_at(p, i);
        memcpy(f, w->grad, (size_t)w->numel * sizeof *f);
        f += w->numel;
    }
    *f = (float)*loss;
    BD_TRY(bd_dist_allreduce_sum(tr->flat, tr->flat_n));
    const float scale = 1.0f / (float)tr->ranks;
    f = tr->flat;
    for (int i = 0; i < bd_params_count(p); i++) {
        bd_tensor *w = bd_params_at(p, i);
        for (int64_t j = 0; j < w->numel; j++)
            w->grad[j] = f[j] * scale;
        f += w->numel;
    }
    *loss = *f * scale;
    return BD_OK;
}

/* Forward, backward, average over ranks and update. On failure nothing
 * has changed, and every rank fails alike on a non-finite loss or
 * gradient (both are averaged first). */
static bd_status train_step(bd_trainer *tr, double *loss, double *grad_norm)
{
    const bd_train_state before = tr->st;
    const double lr = bd_trainer_lr(tr, tr->st.step);
    draw_batch(tr);
    bd_tape_reset(tr->tp);
    bd_tensor *l = NULL;
    bd_status st = bd_diffusion_loss(tr->tp, tr->m, tr->s, tr->x0, tr->cond,
                                     tr->t, tr->eps, NULL, &l);
    if (st == BD_OK) {
        bd_params_zero_grad(tr->m->params);
        st = bd_tape_backward(tr->tp, l);
    }
    if (st == BD_OK) {
        *loss = l->data[0];
        if (tr->ranks > 1)
            st = average_grads(tr, loss);
    }
    if (st == BD_OK && !isfinite(*loss))
        st = bd_fail(BD_E_NUMERIC, "train: loss is %g at step %lld (lr %g);"
                     " stopped with the parameters as they were before it",
                     *loss, (long long)before.step + 1, lr);
    if (st == BD_OK && (st = bd_adamw_step(tr->opt, (float)lr, grad_norm))
                       == BD_E_NUMERIC) {
        char why[256];
        snprintf(why, sizeof why, "%s", bd_last_error());
        bd_fail(st, "train: step %lld (lr %g): %s", (long long)before.step + 1,
                lr, why);
    }
    if (st != BD_OK) {
        tr->st = before;
        return st;
    }
    if (tr->ema)
        bd_ema_update(tr->ema);
    tr->st.step++;
    return BD_OK;
}

/* ---- the loop ---------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Loss and throughput since the last report. */
typedef struct interval {
    double  loss_sum, start_s, begin_s;
    int64_t steps;
} interval;

/* The callback runs on every rank; when it fails on any, all stop. */
static bd_status agree(const bd_trainer *tr, bd_status st)
{
    if (tr->ranks == 1)
        return st;
    int failed;
    BD_TRY(bd_dist_count_failed(st, &failed));
    if (st == BD_OK && failed > 0)
        return bd_fail(BD_E_STATE, "train: stopped after step %lld: the"
                       " callback failed on %d other process(es)",
                       (long long)tr->st.step, failed);
    return st;
}

static bd_status report(bd_trainer *tr, interval *iv, double grad_norm,
                        const bd_train_hooks *h)
{
    const double t = now_s();
    const double dt = t - iv->start_s;
    bd_train_report r = {
        .step = tr->st.step, .total = tr->total, .epoch = tr->st.epoch,
        .loss = iv->loss_sum / (double)iv->steps,
        .lr = bd_trainer_lr(tr, tr->st.step - 1), .grad_norm = grad_norm,
        .images_per_s = dt > 0 ? (double)(iv->steps * tr->o.batch) / dt : 0.0,
        .elapsed_s = t - iv->begin_s,
    };
    bd_status st = agree(tr, h->on_report(tr, &r, h->ud));
    *iv = (interval){.start_s = now_s(), .begin_s = iv->begin_s};
    return st;
}

static bd_status broadcast_tensor(bd_tensor *t)
{
    return bd_dist_broadcast(t->data, (size_t)t->numel * sizeof(float));
}

/* Rank 0's weights, AdamW state, EMA and place in the run, on every rank. */
static bd_status broadcast_run(bd_trainer *tr)
{
    const bd_params *p = tr->m->params;
    for (int i = 0; i < bd_params_count(p); i++) {
        BD_TRY(broadcast_tensor(bd_params_at(p, i)));
        BD_TRY(broadcast_tensor(bd_adamw_m(tr->opt, i)));
        BD_TRY(broadcast_tensor(bd_adamw_v(tr->opt, i)));
        if (tr->ema)
            BD_TRY(broadcast_tensor(bd_ema_at(tr->ema, i)));
    }
    int64_t steps = bd_adamw_steps(tr->opt);
    BD_TRY(bd_dist_broadcast(&steps, sizeof steps));
    bd_adamw_set_steps(tr->opt, steps);
    return bd_dist_broadcast(&tr->st, sizeof tr->st);
}

static bool due(int64_t step, int64_t every, int64_t total)
{
    return every > 0 && (step % every == 0 || step == total);
}

/* After a step: on_step, then on_report and on_save when they are due. The
 * report goes first so that a checkpoint of step k always follows every
 * record of step k: a run killed between them resumes from an earlier
 * checkpoint and records step k again, once. */
static bd_status after_step(bd_trainer *tr, interval *iv, double loss,
                            double grad_norm, const bd_train_hooks *h)
{
    const int64_t step = tr->st.step;
    iv->loss_sum += loss;
    iv->steps++;
    if (h->on_step)
        h->on_step(h->ud, step, loss);
    if (h->on_report && due(step, tr->o.every, tr->total))
        BD_TRY(report(tr, iv, grad_norm, h));
    if (h->on_save && due(step, h->save_every, tr->total))
        return agree(tr, h->on_save(tr, step, h->ud));
    return BD_OK;
}

bd_status bd_trainer_run_hooks(bd_trainer *tr, const bd_train_hooks *h)
{
    bd_train_state *st = &tr->st;
    if (tr->ranks > 1)
        BD_TRY(broadcast_run(tr));
    if (st->step < 0 || st->epoch < 0 || st->position < 0
        || st->position >= tr->d->train.n)
        return bd_fail(BD_E_STATE, "train: state step %lld, epoch %lld,"
                       " position %lld is not a valid place in a dataset of"
                       " %lld images", (long long)st->step, (long long)st->epoch,
                       (long long)st->position, (long long)tr->d->train.n);
    BD_TRY(bd_labels_check_finite(tr->d->train.labels, "train"));
    interval iv = {.start_s = now_s()};
    iv.begin_s = iv.start_s;
    bd_status status = BD_OK;
    while (status == BD_OK && st->step < tr->total) {
        double loss = 0.0, grad_norm = 0.0;
        status = train_step(tr, &loss, &grad_norm);
        if (status == BD_OK)
            status = after_step(tr, &iv, loss, grad_norm, h);
    }
    return status;
}

bd_status bd_trainer_run(bd_trainer *tr, bd_train_callback cb, void *ud)
{
    const bd_train_hooks h = {.on_report = cb, .ud = ud};
    return bd_trainer_run_hooks(tr, &h);
}

bd_status bd_train(bd_model *m, const bd_dataset *d, const bd_train_opts *opts,
                   bd_train_callback cb, void *ud)
{
    bd_trainer *tr = NULL;
    BD_TRY(bd_trainer_new(m, d, opts, &tr));
    bd_status st = bd_trainer_run(tr, cb, ud);
    bd_trainer_free(tr);
    return st;
}
