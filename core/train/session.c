/* A training session (bd/session.h): checkpoints on a cadence into the
 * run's folder, pruning, resume from a path or the newest good checkpoint,
 * and the progress line. */
#include "bd/session.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bd/dist.h"

#define PATH_MAX_BYTES 4400

struct bd_session {
    bd_trainer     *tr;
    bd_session_opts o;          /* dir and pins point into this struct */
    char           *dir;
    int64_t        *pins;
    char            resumed[PATH_MAX_BYTES]; /* "" when not resumed */
    bd_progress     progress;
    bd_train_callback on_report;
    void           *ud;
};

bd_session_opts bd_session_defaults(void)
{
    return (bd_session_opts){.keep = 3, .level = bd_ckpt_save_defaults().level};
}

static bd_status check_pins(const bd_session_opts *o, int64_t total)
{
    if ((o->n_pins || o->pinned) && o->ckpt_every == 0)
        return bd_fail(BD_E_ARG, "train: pin needs ckpt_every > 0");
    for (size_t i = 0; i < o->n_pins; i++) {
        int64_t v = o->pins[i];
        if (v < 1 || (v % o->ckpt_every != 0 && v != total))
            return bd_fail(BD_E_ARG, "train: pin[%zu] = %lld is not a step that"
                           " writes a checkpoint (every %lld steps, and the"
                           " last, %lld)", i + 1, (long long)v,
                           (long long)o->ckpt_every, (long long)total);
    }
    return BD_OK;
}

static bd_status check_opts(const bd_session_opts *o, int64_t total)
{
    if (o->ckpt_every < 0 || o->keep < 0)
        return bd_fail(BD_E_ARG, "train: ckpt_every = %lld, keep = %lld,"
                       " expected integers >= 0", (long long)o->ckpt_every,
                       (long long)o->keep);
    if (o->ckpt_every > 0 && !o->dir)
        return bd_fail(BD_E_ARG, "train: ckpt_every = %lld needs a checkpoint"
                       " folder", (long long)o->ckpt_every);
    if (o->dir && strlen(o->dir) > PATH_MAX_BYTES - 64)
        return bd_fail(BD_E_ARG, "train: the checkpoint folder '%s' is longer"
                       " than %d bytes", o->dir, PATH_MAX_BYTES - 64);
    return check_pins(o, total);
}

bd_status bd_session_new(bd_trainer *tr, const bd_session_opts *opts,
                         bd_session **out)
{
    BD_TRY(check_opts(opts, bd_trainer_total(tr)));
    bd_session *s = calloc(1, sizeof *s);
    if (!s)
        return bd_fail(BD_E_NOMEM, "train: out of memory");
    s->tr = tr;
    s->o = *opts;
    s->dir = opts->dir ? strdup(opts->dir) : NULL;
    s->pins = opts->n_pins ? malloc(opts->n_pins * sizeof *s->pins) : NULL;
    if ((opts->dir && !s->dir) || (opts->n_pins && !s->pins)) {
        bd_session_free(s);
        return bd_fail(BD_E_NOMEM, "train: out of memory");
    }
    if (opts->n_pins)
        memcpy(s->pins, opts->pins, opts->n_pins * sizeof *s->pins);
    s->o.dir = s->dir;
    s->o.pins = s->pins;
    *out = s;
    return BD_OK;
}

void bd_session_free(bd_session *s)
{
    if (!s)
        return;
    free(s->dir);
    free(s->pins);
    free(s);
}

const char *bd_session_resumed(const bd_session *s)
{
    return s->resumed[0] ? s->resumed : NULL;
}

/* ---- the run's folder -------------------------------------------------------- */

static bd_status pinned(const bd_session *s, int64_t step, bool *pin)
{
    *pin = false;
    for (size_t i = 0; i < s->o.n_pins && !*pin; i++)
        *pin = s->o.pins[i] == step;
    if (*pin || !s->o.pinned)
        return BD_OK;
    return s->o.pinned(s->o.pinned_ud, step, pin);
}

/* This process writes no checkpoint while it cleans; another pid is gone
 * when kill(pid, 0) says there is no such process. */
static bool writer_gone(long pid)
{
    return pid == (long)getpid()
        || (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH);
}

/* Remove dir's checkpoint temp files whose writer is gone, each with a
 * warning. A missing dir holds none. */
static bd_status clean_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? BD_OK
             : bd_fail(BD_E_IO, "ckpt: cannot list '%s': %s", dir, strerror(errno));
    bd_status s = BD_OK;
    for (struct dirent *e; s == BD_OK && (e = readdir(d));) {
        long pid = bd_ckpt_temp_writer(e->d_name);
        if (pid < 0 || !writer_gone(pid))
            continue;
        char path[PATH_MAX_BYTES];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0 || errno == ENOENT)
            bd_log_warn("ckpt: removed '%s', left unfinished by process %ld",
                        path, pid);
        else
            s = bd_fail(BD_E_IO, "ckpt: cannot remove '%s': %s", path,
                        strerror(errno));
    }
    closedir(d);
    return s;
}

/* A folder that does not exist holds no checkpoints. */
static bd_status list(const char *dir, bd_ckpt_step **steps, size_t *n)
{
    struct stat st;
    if (stat(dir, &st) != 0 && errno == ENOENT) {
        *steps = NULL;
        *n = 0;
        return BD_OK;
    }
    return bd_ckpt_list_steps(dir, steps, n);
}

/* Remove the checkpoints of steps up to `upto` but the newest keep of them
 * (0: keep all) and the pinned ones. */
static bd_status prune(bd_session *s, int64_t upto)
{
    bd_ckpt_step *steps;
    size_t n;
    BD_TRY(list(s->o.dir, &steps, &n));
    bd_status st = BD_OK;
    int64_t newer = 0; /* checkpoints up to `upto` seen, newest first */
    for (size_t i = n; st == BD_OK && i-- > 0;) {
        bool pin = false;
        if (steps[i].step > (uint64_t)upto || s->o.keep == 0
            || newer++ < s->o.keep)
            continue;
        st = pinned(s, (int64_t)steps[i].step, &pin);
        if (st != BD_OK || pin)
            continue;
        if (unlink(steps[i].path) != 0 && errno != ENOENT)
            st = bd_fail(BD_E_IO, "ckpt: cannot remove the old checkpoint"
                         " '%s': %s", steps[i].path, strerror(errno));
    }
    bd_ckpt_steps_free(steps, n);
    return st;
}

/* <dir>/step_<N>.bdc, then the older ones beyond keep and the pins go: on
 * the writer only (a bd_train_hooks on_save). */
static bd_status save(bd_trainer *tr, int64_t step, void *ud)
{
    bd_session *s = ud;
    char path[PATH_MAX_BYTES];
    if (!bd_dist_is_writer())
        return BD_OK;
    if (mkdir(s->o.dir, 0777) != 0 && errno != EEXIST)
        return bd_fail(BD_E_IO, "train: cannot create '%s': %s", s->o.dir,
                       strerror(errno));
    BD_TRY(bd_ckpt_step_path(path, sizeof path, s->o.dir, (uint64_t)step));
    BD_TRY(bd_checkpoint_save(path, bd_trainer_model(tr), NULL, tr, s->o.level));
    return prune(s, step);
}

/* ---- where training starts -------------------------------------------------- */

/* Record and log the checkpoint resumed from. */
static void resumed(bd_session *s, const char *path)
{
    snprintf(s->resumed, sizeof s->resumed, "%s", path);
    bd_log_info("train: resumed from '%s' at step %lld of %lld", path,
                (long long)bd_trainer_state(s->tr)->step,
                (long long)bd_trainer_total(s->tr));
}

/* dir's newest checkpoint that loads (a damaged one is skipped; one that
 * does not fit stops it); none in dir: a fresh start. */
static bd_status resume_auto(bd_session *s, bd_skip_fn on_skip, void *ud)
{
    bd_ckpt_step *steps;
    size_t n;
    BD_TRY(list(s->o.dir, &steps, &n));
    if (n == 0)
        bd_log_info("train: no checkpoint in '%s' yet, starting at step 0",
                    s->o.dir);
    char latest_error[1024] = "";
    for (size_t i = n; i-- > 0;) {
        bd_status st = bd_checkpoint_resume(steps[i].path, s->tr,
                                            s->o.allow_changes);
        if (st == BD_OK || (st != BD_E_FORMAT && st != BD_E_IO)) {
            if (st == BD_OK)
                resumed(s, steps[i].path);
            bd_ckpt_steps_free(steps, n);
            return st;
        }
        bd_log_warn("train: resume = auto skips '%s': %s", steps[i].path,
                    bd_last_error());
        if (i == n - 1)
            snprintf(latest_error, sizeof latest_error, "%s", bd_last_error());
        if (on_skip)
            on_skip(ud, steps[i].path, bd_last_error());
    }
    bd_ckpt_steps_free(steps, n);
    if (n == 0)
        return BD_OK;
    return bd_fail(BD_E_FORMAT, "train: resume = auto: none of the %zu"
                   " checkpoints in '%s' loads; the latest: %s", n, s->o.dir,
                   latest_error);
}

bd_status bd_session_resume(bd_session *s, const char *resume,
                            bd_skip_fn on_skip, void *ud)
{
    bool automatic = resume && strcmp(resume, "auto") == 0;
    if (automatic && !s->o.dir)
        return bd_fail(BD_E_ARG, "train: resume = auto needs a checkpoint"
                       " folder");
    if ((s->o.ckpt_every > 0 || automatic) && bd_dist_is_writer())
        BD_TRY(clean_temps(s->o.dir));
    s->resumed[0] = '\0';
    if (automatic)
        return resume_auto(s, on_skip, ud);
    if (!resume)
        return BD_OK;
    BD_TRY(bd_checkpoint_resume(resume, s->tr, s->o.allow_changes));
    resumed(s, resume);
    return BD_OK;
}

/* ---- the run ------------------------------------------------------------------ */

static void on_step(void *ud, int64_t step, double loss)
{
    bd_session *s = ud;
    bd_progress_update(&s->progress, step, loss);
}

static bd_status on_report(bd_trainer *tr, const bd_train_report *r, void *ud)
{
    bd_session *s = ud;
    return s->on_report(tr, r, s->ud);
}

bd_status bd_session_run(bd_session *s, bd_train_callback cb, void *ud)
{
    s->on_report = cb;
    s->ud = ud;
    const bd_train_hooks h = {
        .on_step = s->o.progress ? on_step : NULL,
        .on_save = s->o.ckpt_every > 0 ? save : NULL,
        .save_every = s->o.ckpt_every,
        .on_report = cb ? on_report : NULL,
        .ud = s,
    };
    if (s->o.progress)
        bd_progress_start(&s->progress, "train", bd_trainer_state(s->tr)->step,
                          bd_trainer_total(s->tr), bd_progress_stderr_is_tty());
    bd_status st = bd_trainer_run_hooks(s->tr, &h);
    if (s->o.progress)
        bd_progress_finish(&s->progress);
    return st;
}
