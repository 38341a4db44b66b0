/* A training session: the checkpoints of a model and of a training run
 * (core/train/checkpoint.c), and a run that keeps them in its folder on a
 * cadence, prunes them and resumes from them (core/train/session.c).
 *
 * A checkpoint (.bdc, bd/ckpt.h) holds
 *   keys     bd.kind           "model" (weights) or "training" (resumable)
 *            bd.arch           the denoiser
 *            bd.arch.config.<key>  each key it was made with (f64 or str):
 *                              with bd.arch, enough to make it again
 *            bd.diffusion.*    schedule, timesteps, beta_start, beta_end,
 *                              prediction: what a sampler must match
 *                              (when known: always with a trainer)
 *   tensors  <name>            the model's weights, by parameter name
 * and with a trainer ("training")
 *   keys     bd.train.*        the training's settings (steps, batch, lr,
 *                              warmup, weight_decay, beta1, beta2, clip,
 *                              ema: f64 or i64; seed: u64)
 *            bd.step bd.epoch bd.position bd.optim.steps
 *            bd.rng.seed bd.rng.stream bd.rng.counter (u64),
 *            bd.rng.block (i64s: the 4 buffered words, then used)
 *   tensors  ema.<name>        the EMA of each weight (with an EMA)
 *            optim.m.<name>    AdamW's first moments
 *            optim.v.<name>    AdamW's second moments
 * which is everything bd_trainer_run needs to continue bit-exactly.
 *
 * A run keeps its checkpoints as <dir>/step_<N>.bdc (dir is <run>/ckpt;
 * the names are core/ckpt/rundir.c's): one every ckpt_every steps and
 * after the last, then the older ones beyond the newest `keep` go, except
 * the pinned ones. Checkpoints of later steps than the one just written
 * are another run's and stay. Under MPI rank 0 writes and prunes; the
 * others hold the same state. */
#ifndef BD_SESSION_H
#define BD_SESSION_H

#include "bd/ckpt.h"
#include "bd/log.h"
#include "bd/train.h"

/* ---- checkpoints of a model and of a training run ------------------------ */

/* Write m (and, with a trainer, its EMA, AdamW moments and loop state) to
 * path atomically at zstd level `level`. diffusion (may be NULL; a
 * trainer's own settings win) is recorded for samplers. On ranks other
 * than the writer it writes nothing and returns BD_OK. */
bd_status bd_checkpoint_save(const char *path, const bd_model *m,
                             const bd_diffusion_spec *diffusion,
                             bd_trainer *tr, int level);

/* Restore everything bd_checkpoint_save wrote with a trainer into the
 * trainer and its model, all or nothing: the settings are compared
 * (bd_checkpoint_check_settings) and every tensor's name, dtype and shape
 * checked before anything is written. BD_E_FORMAT or BD_E_IO: the file
 * is damaged; BD_E_ARG: it does not fit this trainer. */
bd_status bd_checkpoint_resume(const char *path, bd_trainer *tr,
                               const char *const *allow_changes);

/* The settings a checkpoint records against the trainer's (with the
 * trainer's model):
 *   schedule, prediction, timesteps, beta_start, beta_end and each key of
 *   the model's config (bd.arch.config.*, "not given" on one side counts)
 *       change what is learned: BD_E_ARG naming both values, unless the
 *       name is in allow_changes (NULL-terminated, may be NULL; a config
 *       key by its own name, "width"), then a warning;
 *   the model's init seed, and bd.train.* (steps, batch, lr, warmup,
 *   weight_decay, beta1, beta2, clip, ema, seed)
 *       change how: each difference is logged.
 * A checkpoint without a record (an older bd) is not compared. */
bd_status bd_checkpoint_check_settings(const bd_ckpt *ck, const char *path,
                                       bd_trainer *tr,
                                       const char *const *allow_changes);

/* What a checkpoint says about the model in it. */
typedef struct bd_checkpoint_info {
    const char       *arch;      /* bd.arch (points into the bd_ckpt) */
    bool              rebuilds;  /* bd.kind is set: bd.arch.config is complete */
    bool              trained;   /* diffusion holds bd.diffusion.* */
    bd_diffusion_spec diffusion; /* else bd_diffusion_defaults() */
    int64_t           step;      /* bd.step, or 0 */
    bool              has_ema;   /* ema.<name> tensors are there */
} bd_checkpoint_info;

/* Read the keys above; BD_E_FORMAT naming the key and its allowed values
 * when one is malformed. path stands for the file in messages. */
bd_status bd_checkpoint_info_of(const bd_ckpt *ck, const char *path,
                                bd_checkpoint_info *info);
/* Copy the weights (ema: the EMA weights) into m, whose arch and shapes
 * must match the checkpoint's: all are checked (name, dtype, shape, the
 * file named in the message) before any is written. */
bd_status bd_checkpoint_read_weights(const bd_ckpt *ck, const char *path,
                                     bd_model *m, bool ema);
/* A new model of the checkpoint's arch and config (weights as a fresh
 * one's: read them next). Fails naming the file when it was written
 * without bd.kind, by a bd that did not record the config. */
bd_status bd_checkpoint_new_model(const bd_ckpt *ck, const char *path,
                                  bd_model **out);

/* ---- a training session ---------------------------------------------------- */

/* Whether a step's checkpoint is pinned (never pruned). */
typedef bd_status (*bd_pinned_fn)(void *ud, int64_t step, bool *pinned);

typedef struct bd_session_opts {
    const char    *dir;        /* the checkpoint folder (<run>/ckpt); needed
                                  with ckpt_every > 0 or resume "auto" */
    int64_t        ckpt_every; /* a checkpoint every k steps and after the
                                  last; 0: none (0) */
    int64_t        keep;       /* the newest kept; 0: all (3) */
    const int64_t *pins;       /* steps kept (each one that writes a
                                  checkpoint), or NULL */
    size_t         n_pins;
    bd_pinned_fn   pinned;     /* and those it says, or NULL */
    void          *pinned_ud;
    int            level;      /* zstd level (bd_ckpt_save_defaults) */
    bool           progress;   /* a progress line on stderr (false) */
    const char *const *allow_changes; /* bd_checkpoint_resume's (NULL) */
} bd_session_opts;

bd_session_opts bd_session_defaults(void);

typedef struct bd_session bd_session;

/* A session of tr (which must outlive it). Checks the options: keep >= 0,
 * a dir with ckpt_every > 0, pins only with ckpt_every > 0 and each a step
 * that writes a checkpoint (BD_E_ARG naming the first that is not). */
bd_status bd_session_new(bd_trainer *tr, const bd_session_opts *opts,
                         bd_session **out);
void      bd_session_free(bd_session *s);

/* Called for each checkpoint resume "auto" skips, with why. */
typedef void (*bd_skip_fn)(void *ud, const char *path, const char *error);

/* Where training starts. With checkpoints or resume "auto", temp files of
 * a killed writer in dir go first, with a warning. resume: NULL (from the
 * trainer as it is), a checkpoint's path, or "auto": dir's newest
 * checkpoint that loads; each damaged one (BD_E_FORMAT, BD_E_IO) is skipped
 * with a warning and passed to on_skip (may be NULL), one that does not
 * fit the trainer (other settings: bd_checkpoint_resume) stops it; with
 * none in dir, step 0; when none loads, BD_E_FORMAT naming the latest's
 * error. A resume logs the file and step it continues from. */
bd_status bd_session_resume(bd_session *s, const char *resume,
                            bd_skip_fn on_skip, void *ud);
/* The checkpoint resumed from, or NULL. */
const char *bd_session_resumed(const bd_session *s);

/* Train to the end: the progress line, checkpoints on their cadence (then
 * pruning), on_report (may be NULL) every opts.every steps and after the
 * last, as bd_trainer_run. */
bd_status bd_session_run(bd_session *s, bd_train_callback on_report, void *ud);

#endif
