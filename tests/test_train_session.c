/* The training session without Lua: a run killed after a checkpoint and
 * resumed with "auto" ends bit-identical to a straight run (its last
 * checkpoint byte for byte); keep and pin pruning; a damaged latest
 * checkpoint skipped for the one before; stale temp files; the option
 * errors; a model rebuilt from its checkpoint alone that samples what
 * the trained model sampled; loads that write nothing unless everything
 * fits; and the settings a resume compares. */
#include "bd/registry.h"
#include "bd/session.h"
#include "test_ckpt_util.h"

#include <sys/stat.h>

#define STEPS 12

static char *root;
static bd_dataset *data;

static bd_dataset *bumps(void)
{
    bd_data_spec spec = bd_data_defaults();
    spec.size = spec.canvas = 6;
    spec.dx = spec.dy = 1.5;
    bd_dataset *d = NULL;
    CHECK_OK(bd_dataset_new(&spec, &d));
    if (!d)
        exit(2);
    return d;
}

static bd_model *mlp(uint64_t seed)
{
    bd_config *cfg = bd_config_new();
    bd_config_set_num(cfg, "size", 6);
    bd_config_set_num(cfg, "hidden", 16);
    bd_config_set_num(cfg, "emb", 4);
    bd_model *m = NULL;
    CHECK_OK(bd_model_create("mlp", cfg, seed, &m));
    bd_config_free(cfg);
    if (!m)
        exit(2);
    return m;
}

static bd_train_opts quick_opts(void)
{
    bd_train_opts o = bd_train_defaults();
    o.steps = STEPS;
    o.batch = 5;
    o.lr = 3e-3;
    o.warmup = 3;
    o.ema = 0.9;
    o.every = 4;
    o.seed = 3;
    return o;
}

/* <root>/<name> */
static const char *folder(const char *name)
{
    static char path[2][700];
    static int k;
    k ^= 1;
    snprintf(path[k], sizeof path[k], "%s/%s", root, name);
    return path[k];
}

/* The steps of dir's checkpoints, "3,7,9,10". */
static const char *steps_in(const char *dir)
{
    static char out[256];
    bd_ckpt_step *s = NULL;
    size_t n = 0;
    out[0] = '\0';
    CHECK_OK(bd_ckpt_list_steps(dir, &s, &n));
    for (size_t i = 0; i < n; i++) {
        size_t at = strlen(out);
        snprintf(out + at, sizeof out - at, "%s%llu", i ? "," : "",
                 (unsigned long long)s[i].step);
    }
    bd_ckpt_steps_free(s, n);
    return out;
}

typedef struct stop_at {
    int64_t step; /* fail the report of this step (a kill); 0: never */
} stop_at;

static bd_status report(bd_trainer *tr, const bd_train_report *r, void *ud)
{
    (void)tr;
    const stop_at *stop = ud;
    if (stop && r->step == stop->step)
        return bd_fail(BD_E_IO, "killed at step %lld", (long long)r->step);
    return BD_OK;
}

static void count_skip(void *ud, const char *path, const char *error)
{
    (void)path;
    (void)error;
    (*(int *)ud)++;
}

/* Train a fresh mlp(seed) in dir with the session options, resuming as
 * asked; returns the model (trainer freed) and the session's result. */
static bd_status run_in(const char *dir, bd_session_opts so, uint64_t seed,
                        const char *resume, const stop_at *stop,
                        bd_model **out, char *resumed, int *skips)
{
    bd_model *m = mlp(seed);
    bd_train_opts o = quick_opts();
    bd_trainer *tr = NULL;
    bd_session *s = NULL;
    so.dir = dir;
    bd_status st = bd_trainer_new(m, data, &o, &tr);
    if (st == BD_OK)
        st = bd_session_new(tr, &so, &s);
    if (st == BD_OK)
        st = bd_session_resume(s, resume, count_skip, skips);
    if (st == BD_OK && resumed)
        snprintf(resumed, 700, "%s", bd_session_resumed(s) ? bd_session_resumed(s) : "");
    if (st == BD_OK)
        st = bd_session_run(s, report, (void *)stop);
    bd_session_free(s);
    bd_trainer_free(tr);
    *out = m;
    return st;
}

static bool same_files(const char *a, const char *b)
{
    uint8_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    bool same = bd_read_file(a, &x, &nx) == BD_OK
             && bd_read_file(b, &y, &ny) == BD_OK && nx == ny
             && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return same;
}

static bool same_weights(const bd_model *a, const bd_model *b)
{
    for (int i = 0; i < bd_params_count(a->params); i++) {
        const bd_tensor *x = bd_params_at(a->params, i), *y = bd_params_at(b->params, i);
        if (memcmp(x->data, y->data, (size_t)x->numel * sizeof(float)) != 0)
            return false;
    }
    return true;
}

static void test_resume_exact(void)
{
    bd_session_opts so = bd_session_defaults();
    so.ckpt_every = 4;
    so.keep = 0;
    bd_model *straight = NULL, *killed = NULL, *resumed = NULL;
    CHECK_OK(run_in(folder("straight"), so, 1, NULL, NULL, &straight, NULL, NULL));
    CHECK(strcmp(steps_in(folder("straight")), "4,8,12") == 0, "every 4 steps: %s",
          steps_in(folder("straight")));
    stop_at kill = {.step = 8};
    CHECK_FAILS(run_in(folder("killed"), so, 1, NULL, &kill, &killed, NULL, NULL),
                BD_E_IO, "killed at step 8");
    /* the report of a step comes before its checkpoint: none of step 8 */
    CHECK(strcmp(steps_in(folder("killed")), "4") == 0, "killed in step 8's"
          " report, before its checkpoint: %s", steps_in(folder("killed")));
    char from[700] = "";
    int skips = 0;
    /* another seed: only the checkpoint can make the weights equal */
    CHECK_OK(run_in(folder("killed"), so, 9, "auto", NULL, &resumed, from, &skips));
    CHECK(strstr(from, "/killed/step_4.bdc") != NULL && skips == 0,
          "resumed from step 4: '%s', %d skipped", from, skips);
    CHECK(same_weights(straight, resumed), "resumed weights equal the straight run's");
    char a[800], b[800];
    bd_ckpt_step_path(a, sizeof a, folder("straight"), STEPS);
    bd_ckpt_step_path(b, sizeof b, folder("killed"), STEPS);
    CHECK(same_files(a, b), "the last checkpoints (EMA, moments, RNG) are byte-identical");
    bd_model_free(straight);
    bd_model_free(killed);
    bd_model_free(resumed);
}

static void test_corrupt_latest(void)
{
    char path[800], four[800];
    bd_ckpt_step_path(path, sizeof path, folder("killed"), 8);
    bd_ckpt_step_path(four, sizeof four, folder("killed"), 4);
    bd_ckpt_step_path(four + 400, 400, folder("killed"), STEPS);
    unlink(four + 400); /* back to the kill: step 4 and 8 */
    CHECK_OK(bd_write_file_atomic(path, "BDCK damaged", 12));
    bd_model *m = NULL;
    char from[700] = "";
    int skips = 0;
    bd_session_opts so = bd_session_defaults();
    so.ckpt_every = 4;
    so.keep = 0;
    CHECK_OK(run_in(folder("killed"), so, 9, "auto", NULL, &m, from, &skips));
    CHECK(strstr(from, "/killed/step_4.bdc") != NULL && skips == 1,
          "the damaged step 8 skipped for step 4: '%s', %d skipped", from, skips);
    char straight[800];
    bd_ckpt_step_path(straight, sizeof straight, folder("straight"), STEPS);
    bd_ckpt_step_path(path, sizeof path, folder("killed"), STEPS);
    CHECK(same_files(straight, path), "and still ends byte-identical");
    bd_model_free(m);

    CHECK_OK(bd_write_file_atomic(four, "x", 1));
    CHECK_OK(bd_write_file_atomic(path, "y", 1));
    bd_ckpt_step_path(path, sizeof path, folder("killed"), 8);
    CHECK_OK(bd_write_file_atomic(path, "z", 1));
    skips = 0;
    CHECK_FAILS(run_in(folder("killed"), so, 9, "auto", NULL, &m, NULL, &skips),
                BD_E_FORMAT, "none of the 3 checkpoints in");
    CHECK(skips == 3, "each named: %d", skips);
    bd_model_free(m);
}

static void test_fresh_and_temps(void)
{
    bd_session_opts so = bd_session_defaults();
    so.ckpt_every = 6;
    const char *dir = folder("temps");
    mkdir(dir, 0755);
    char stale[800], live[800];
    snprintf(stale, sizeof stale, "%s/step_6.bdc.tmp-2147483647", dir);
    snprintf(live, sizeof live, "%s/step_6.bdc.tmp-1", dir); /* init lives */
    CHECK_OK(bd_write_file_atomic(stale, "x", 1));
    CHECK_OK(bd_write_file_atomic(live, "x", 1));
    bd_model *m = NULL;
    char from[700] = "?";
    CHECK_OK(run_in(dir, so, 1, "auto", NULL, &m, from, NULL));
    CHECK(from[0] == '\0', "nothing to resume: a fresh start");
    CHECK(access(stale, F_OK) != 0 && access(live, F_OK) == 0,
          "the gone writer's temp file removed, the live one's kept");
    CHECK(strcmp(steps_in(dir), "6,12") == 0, "%s", steps_in(dir));
    bd_model_free(m);
}

static bd_status pin_fours(void *ud, int64_t step, bool *pin)
{
    (void)ud;
    *pin = step % 4 == 0;
    return BD_OK;
}

static void test_prune(void)
{
    bd_session_opts so = bd_session_defaults();
    so.ckpt_every = 1;
    so.keep = 2;
    const int64_t pins[2] = {3, 7};
    so.pins = pins;
    so.n_pins = 2;
    bd_model *m = NULL;
    CHECK_OK(run_in(folder("pins"), so, 1, NULL, NULL, &m, NULL, NULL));
    CHECK(strcmp(steps_in(folder("pins")), "3,7,11,12") == 0, "the newest 2 and"
          " the pinned: %s", steps_in(folder("pins")));
    bd_model_free(m);
    so = bd_session_defaults();
    so.ckpt_every = 2;
    so.keep = 1;
    so.pinned = pin_fours;
    CHECK_OK(run_in(folder("pinfn"), so, 1, NULL, NULL, &m, NULL, NULL));
    CHECK(strcmp(steps_in(folder("pinfn")), "4,8,12") == 0, "pinned by a"
          " function: %s", steps_in(folder("pinfn")));
    bd_model_free(m);
    so.pinned = NULL;
    so.keep = 3;
    CHECK_OK(run_in(folder("pinfn"), so, 1, NULL, NULL, &m, NULL, NULL));
    CHECK(strcmp(steps_in(folder("pinfn")), "8,10,12") == 0, "keep 3: %s",
          steps_in(folder("pinfn")));
    bd_model_free(m);
}

static void test_option_errors(void)
{
    bd_model *m = mlp(1);
    bd_train_opts o = quick_opts();
    bd_trainer *tr = NULL;
    bd_session *s = NULL;
    CHECK_OK(bd_trainer_new(m, data, &o, &tr));
    bd_session_opts so = bd_session_defaults();
    const int64_t pins[2] = {4, 3};
    so.pins = pins;
    so.n_pins = 2;
    CHECK_FAILS(bd_session_new(tr, &so, &s), BD_E_ARG, "pin needs ckpt_every > 0");
    so.ckpt_every = 2;
    so.dir = root;
    CHECK_FAILS(bd_session_new(tr, &so, &s), BD_E_ARG, "pin[2] = 3 is not a step"
                " that writes a checkpoint (every 2 steps, and the last, 12)");
    so.n_pins = 0;
    so.dir = NULL;
    CHECK_FAILS(bd_session_new(tr, &so, &s), BD_E_ARG, "needs a checkpoint folder");
    so.dir = root;
    so.keep = -1;
    CHECK_FAILS(bd_session_new(tr, &so, &s), BD_E_ARG, "keep = -1");
    bd_trainer_free(tr);
    bd_model_free(m);
}

/* The EMA weights' images from the trained model, then from the model
 * load_model rebuilds from the last checkpoint alone: the same bits. */
static void test_rebuild_model(void)
{
    bd_model *trained = mlp(5);
    bd_train_opts o = quick_opts();
    bd_trainer *tr = NULL;
    CHECK_OK(bd_trainer_new(trained, data, &o, &tr));
    CHECK_OK(bd_trainer_run(tr, NULL, NULL));
    char path[800];
    snprintf(path, sizeof path, "%s/trained.bdc", root);
    CHECK_OK(bd_checkpoint_save(path, trained, NULL, tr, 3));

    const int64_t ls[2] = {3, 2};
    bd_tensor *labels = harness_tensor(2, ls, 0, 5, false);
    bd_sample_opts so = bd_sample_defaults();
    so.sampler = BD_SAMPLER_DDIM;
    so.steps = 5;
    so.seed = 11;
    bd_samples want = {0}, got = {0};
    bd_ema_swap(bd_trainer_ema(tr));
    CHECK_OK(bd_sample(trained, labels, &so, NULL, &want));
    bd_ema_swap(bd_trainer_ema(tr));

    bd_ckpt *ck = NULL;
    bd_model *m = NULL;
    bd_checkpoint_info info;
    CHECK_OK(bd_ckpt_load(path, &ck));
    CHECK_OK(bd_checkpoint_info_of(ck, path, &info));
    CHECK(info.rebuilds && info.trained && info.has_ema && info.step == STEPS
          && strcmp(info.arch, "mlp") == 0, "info: %s at step %lld",
          info.arch, (long long)info.step);
    CHECK_OK(bd_checkpoint_new_model(ck, path, &m));
    if (m) {
        CHECK_OK(bd_checkpoint_read_weights(ck, path, m, info.has_ema));
        so.diffusion = info.diffusion;
        CHECK_OK(bd_sample(m, labels, &so, NULL, &got));
        CHECK(want.images && got.images && memcmp(want.images->data, got.images->data,
              (size_t)want.images->numel * sizeof(float)) == 0,
              "the rebuilt model samples the same images, bit for bit");
    }
    CHECK_OK(bd_ckpt_set_str(ck, "bd.diffusion.prediction", "vee"));
    CHECK_FAILS(bd_checkpoint_info_of(ck, path, &info), BD_E_FORMAT,
                "bd.diffusion.prediction = 'vee', expected one of: eps, x0, v");
    bd_ckpt_free(ck);
    /* a checkpoint of a bd that did not record the config */
    ck = bd_ckpt_new();
    CHECK_OK(bd_ckpt_set_str(ck, "bd.arch", "mlp"));
    bd_model *old = NULL;
    CHECK_FAILS(bd_checkpoint_new_model(ck, "old.bdc", &old), BD_E_FORMAT,
                "ckpt 'old.bdc': has no bd.kind");
    bd_ckpt_free(ck);
    bd_samples_free(&want);
    bd_samples_free(&got);
    bd_tensor_free(labels);
    bd_model_free(m);
    bd_trainer_free(tr);
    bd_model_free(trained);
}

/* ---- all or nothing, and the settings a resume compares ------------------- */

/* Train an mlp(5) the quick way; its checkpoint at <root>/whole.bdc. */
static const char *whole_checkpoint(void)
{
    static char path[800];
    if (path[0])
        return path;
    bd_model *m = mlp(5);
    bd_train_opts o = quick_opts();
    bd_trainer *tr = NULL;
    snprintf(path, sizeof path, "%s/whole.bdc", root);
    CHECK_OK(bd_trainer_new(m, data, &o, &tr));
    CHECK_OK(bd_trainer_run(tr, NULL, NULL));
    CHECK_OK(bd_checkpoint_save(path, m, NULL, tr, 1));
    bd_trainer_free(tr);
    bd_model_free(m);
    return path;
}

static void copy_key(bd_ckpt *out, const bd_ckpt_kv *kv)
{
    switch (kv->type) {
    case BD_CKPT_U64: bd_ckpt_set_u64(out, kv->key, kv->v.u64); break;
    case BD_CKPT_I64: bd_ckpt_set_i64(out, kv->key, kv->v.i64); break;
    case BD_CKPT_F64: bd_ckpt_set_f64(out, kv->key, kv->v.f64); break;
    case BD_CKPT_STR: bd_ckpt_set_str(out, kv->key, kv->v.str); break;
    case BD_CKPT_ARR_I64: bd_ckpt_set_i64s(out, kv->key, kv->v.i64s, kv->n); break;
    case BD_CKPT_ARR_F64: bd_ckpt_set_f64s(out, kv->key, kv->v.f64s, kv->n); break;
    }
}

/* A copy of ck without the tensor `drop` and with the tensor `flatten`
 * stored as one dimension (either NULL: none). */
static bd_ckpt *edited(const bd_ckpt *ck, const char *drop, const char *flatten)
{
    bd_ckpt *out = bd_ckpt_new();
    for (size_t i = 0; out && i < bd_ckpt_kv_count(ck); i++)
        copy_key(out, bd_ckpt_kv_at(ck, i));
    for (size_t i = 0; out && i < bd_ckpt_tensor_count(ck); i++) {
        const bd_ckpt_tensor *t = bd_ckpt_tensor_at(ck, i);
        int64_t numel = (int64_t)(t->nbytes / sizeof(float));
        bool flat = flatten && strcmp(t->name, flatten) == 0;
        if (!drop || strcmp(t->name, drop) != 0)
            CHECK_OK(bd_ckpt_add_array(out, t->name, t->dtype, flat ? 1 : t->ndim,
                                       flat ? &numel : t->dims, t->data));
    }
    return out;
}

/* Every weight of m, to see that a refused load wrote none. */
static float *weights_of(const bd_model *m)
{
    float *w = malloc((size_t)bd_params_numel(m->params) * sizeof *w), *at = w;
    for (int i = 0; w && i < bd_params_count(m->params); i++) {
        const bd_tensor *t = bd_params_at(m->params, i);
        memcpy(at, t->data, (size_t)t->numel * sizeof *at);
        at += t->numel;
    }
    return w;
}

static bool weights_are(const bd_model *m, const float *w)
{
    float *now = weights_of(m);
    bool same = now && w && memcmp(now, w, (size_t)bd_params_numel(m->params)
                                                * sizeof *w) == 0;
    free(now);
    return same;
}

/* A checkpoint that lacks the last parameter, or holds it in another
 * shape, is refused naming the file before any weight is written, for
 * bd_checkpoint_read_weights (weights and EMA) and for a resume. */
static void test_all_or_nothing(void)
{
    bd_ckpt *ck = NULL;
    CHECK_OK(bd_ckpt_load(whole_checkpoint(), &ck));
    if (!ck)
        return;
    bd_model *m = mlp(7);
    const int n = bd_params_count(m->params);
    const char *last = bd_params_name(m->params, n - 1), *matrix = last;
    for (int i = n - 1; i >= 0 && bd_params_at(m->params, i)->ndim < 2; i--)
        matrix = bd_params_name(m->params, i - 1); /* the last of 2+ dims */
    char want[400], ema_last[300], v_last[300], path[800];
    float *before = weights_of(m);
    bd_ckpt *missing = edited(ck, last, NULL), *flat = edited(ck, NULL, matrix);
    snprintf(want, sizeof want, "ckpt 'missing.bdc': has no tensor '%s' (the"
             " model's parameter %d of %d); nothing was loaded", last, n, n);
    CHECK_FAILS(bd_checkpoint_read_weights(missing, "missing.bdc", m, false),
                BD_E_ARG, want);
    CHECK(weights_are(m, before), "no weight written by the refused load");
    snprintf(want, sizeof want, "ckpt 'flat.bdc': tensor '%s' is f32 (", matrix);
    CHECK_FAILS(bd_checkpoint_read_weights(flat, "flat.bdc", m, false), BD_E_ARG,
                want);
    CHECK_FAILS(bd_checkpoint_read_weights(flat, "flat.bdc", m, false), BD_E_ARG,
                "another architecture or config; nothing was loaded");
    CHECK(weights_are(m, before), "no weight written by the refused load");
    snprintf(ema_last, sizeof ema_last, "ema.%s", last);
    bd_ckpt_free(missing);
    missing = edited(ck, ema_last, NULL);
    CHECK_FAILS(bd_checkpoint_read_weights(missing, "no-ema.bdc", m, true),
                BD_E_ARG, "has no tensor 'ema.");
    CHECK(weights_are(m, before), "nor by a refused EMA load");
    /* a resume: the optimizer's last moment missing */
    snprintf(v_last, sizeof v_last, "optim.v.%s", last);
    bd_ckpt_free(missing);
    missing = edited(ck, v_last, NULL);
    snprintf(path, sizeof path, "%s/no-moment.bdc", root);
    CHECK_OK(bd_ckpt_save(missing, path, NULL));
    bd_train_opts o = quick_opts();
    bd_trainer *tr = NULL;
    CHECK_OK(bd_trainer_new(m, data, &o, &tr));
    CHECK_FAILS(bd_checkpoint_resume(path, tr, NULL), BD_E_ARG, "has no tensor 'optim.v.");
    CHECK(weights_are(m, before) && bd_trainer_state(tr)->step == 0,
          "a refused resume writes no weight and keeps the state");
    bd_trainer_free(tr);
    bd_ckpt_free(missing);
    bd_ckpt_free(flat);
    bd_ckpt_free(ck);
    free(before);
    bd_model_free(m);
}

/* Resume from whole.bdc with trainer options o and an mlp of `hidden`. */
static bd_status resume_with(bd_train_opts o, int hidden, const char *const *allow,
                             int64_t *step)
{
    bd_config *cfg = bd_config_new();
    bd_config_set_num(cfg, "size", 6);
    bd_config_set_num(cfg, "hidden", hidden);
    bd_config_set_num(cfg, "emb", 4);
    bd_model *m = NULL;
    bd_trainer *tr = NULL;
    bd_status s = bd_model_create("mlp", cfg, 7, &m);
    if (s == BD_OK)
        s = bd_trainer_new(m, data, &o, &tr);
    if (s == BD_OK)
        s = bd_checkpoint_resume(whole_checkpoint(), tr, allow);
    *step = tr ? bd_trainer_state(tr)->step : -1;
    bd_trainer_free(tr);
    bd_model_free(m);
    bd_config_free(cfg);
    return s;
}

/* What changes the mathematics stops a resume, naming both values, unless
 * allowed by name; what changes how it is learned is allowed; resume
 * "auto" stops at a checkpoint of other settings instead of skipping it. */
static void test_resume_settings(void)
{
    const char *schedule[] = {"schedule", NULL};
    bd_train_opts o = quick_opts();
    int64_t step;
    o.diffusion.schedule = BD_SCHEDULE_COSINE;
    CHECK_FAILS(resume_with(o, 16, NULL, &step), BD_E_ARG, "whole.bdc': schedule"
                " is 'linear' in the checkpoint and 'cosine' now, which changes"
                " what the model learns; set it back, or allow the change with"
                " allow_changes = { \"schedule\" }");
    CHECK(step == 0, "nothing resumed: step %lld", (long long)step);
    CHECK_OK(resume_with(o, 16, schedule, &step));
    CHECK(step == STEPS, "allowed: resumed at step %lld", (long long)step);
    o = quick_opts();
    o.diffusion.timesteps = 500;
    CHECK_FAILS(resume_with(o, 16, schedule, &step), BD_E_ARG,
                "timesteps is 1000 in the checkpoint and 500 now");
    o = quick_opts();
    o.diffusion.prediction = BD_PREDICT_X0;
    CHECK_FAILS(resume_with(o, 16, NULL, &step), BD_E_ARG,
                "prediction is 'eps' in the checkpoint and 'x0' now");
    CHECK_FAILS(resume_with(quick_opts(), 32, NULL, &step), BD_E_ARG,
                "the model's hidden is 16 in the checkpoint and 32 now");
    o = quick_opts();
    o.lr *= 2;
    o.batch += 1;
    o.seed += 1;
    o.steps += 4;
    CHECK_OK(resume_with(o, 16, NULL, &step));
    CHECK(step == STEPS, "lr, batch, seed and steps may change: step %lld",
          (long long)step);

    /* resume "auto" in a folder of checkpoints made with the linear schedule */
    o = quick_opts();
    o.diffusion.schedule = BD_SCHEDULE_COSINE;
    bd_model *m = mlp(7);
    bd_trainer *tr = NULL;
    bd_session *s = NULL;
    bd_session_opts so = bd_session_defaults();
    so.dir = folder("straight");
    int skips = 0;
    CHECK_OK(bd_trainer_new(m, data, &o, &tr));
    CHECK_OK(bd_session_new(tr, &so, &s));
    CHECK_FAILS(bd_session_resume(s, "auto", count_skip, &skips), BD_E_ARG,
                "step_12.bdc': schedule is 'linear' in the checkpoint");
    CHECK(skips == 0 && bd_session_resumed(s) == NULL, "stopped, not skipped: %d",
          skips);
    bd_session_free(s);
    bd_trainer_free(tr);
    bd_model_free(m);
}

int main(void)
{
    root = tmp_mkdir();
    data = bumps();
    RUN(test_resume_exact);
    RUN(test_corrupt_latest);
    RUN(test_fresh_and_temps);
    RUN(test_prune);
    RUN(test_option_errors);
    RUN(test_rebuild_model);
    RUN(test_all_or_nothing);
    RUN(test_resume_settings);
    bd_dataset_free(data);
    tmp_rmdir(root);
    bd_plugins_unload_all();
    return harness_summary();
}
