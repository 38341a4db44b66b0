/* A run directory, runs/<name>/, and the JSON its records are written in.
 *
 *   config.json     the resolved configuration, written atomically
 *   metrics.jsonl   one JSON object per logged event, one per line, flushed
 *                   as it is written so a crash keeps every finished line;
 *                   never emptied but by overwrite, and on resume cut back
 *                   to the step resumed from (bd_run_rewind)
 *   run.lock        flock'd by the one process writing the run, its pid
 *                   inside
 *
 * Checkpoints, sample grids and plots are written beside them by their own
 * writers, at paths made with bd_run_file. */
#ifndef BD_RUN_H
#define BD_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bd/status.h"

/* ---- JSON text builder --------------------------------------------------- */

/* Values are appended in order; `key` names a member inside an object and
 * is NULL at the top level and inside arrays. Non-finite numbers become
 * null (JSON has no NaN). The first allocation failure is kept in `status`
 * and later calls do nothing. */
typedef struct bd_json {
    char     *text;       /* NUL-terminated */
    size_t    len, cap;
    bool      need_comma;
    bd_status status;
} bd_json;

void bd_json_init(bd_json *j);
void bd_json_free(bd_json *j);
void bd_json_begin_object(bd_json *j, const char *key);
void bd_json_end_object(bd_json *j);
void bd_json_begin_array(bd_json *j, const char *key);
void bd_json_end_array(bd_json *j);
void bd_json_number(bd_json *j, const char *key, double v);
void bd_json_string(bd_json *j, const char *key, const char *s);
void bd_json_bool(bd_json *j, const char *key, bool v);

/* ---- run directory ------------------------------------------------------- */

typedef struct bd_run bd_run;

/* Create <root>/<name>/ (root NULL: "runs"), with parents, and lock it: one
 * writer per run folder, so a second one (another process, or another open
 * run of this folder in this one) fails with BD_E_STATE naming the
 * holder's pid. A name is 1 to 128 characters of A-Z a-z 0-9 _ - . and does
 * not start with '.'. metrics.jsonl is appended to; with `overwrite` the
 * run starts over: metrics.jsonl is emptied and ckpt/step_<N>.bdc removed,
 * with a warning that counts them. Under MPI only the writer (rank 0)
 * touches the folder. */
bd_status bd_run_open(const char *root, const char *name, bool overwrite,
                      bd_run **out);
/* Close metrics.jsonl and release the lock. */
void      bd_run_close(bd_run *r);

const char *bd_run_dir(const bd_run *r);

/* "<dir>/<file>" into path; fails if it does not fit in len. */
bd_status bd_run_file(const bd_run *r, const char *file, char *path,
                      size_t len);

/* Write a JSON document and a newline to <dir>/<file> atomically
 * (bd_write_file_atomic). */
bd_status bd_run_write_json(bd_run *r, const char *file, const bd_json *doc);

/* Append one event (a JSON object) as a line of metrics.jsonl. */
bd_status bd_run_log(bd_run *r, const bd_json *event);

/* What a run folder already holds. */
typedef struct bd_run_history {
    size_t  lines;           /* of metrics.jsonl */
    int64_t last_step;       /* the highest "step" of its lines, or -1 */
    size_t  checkpoints;     /* ckpt/step_<N>.bdc files */
    int64_t last_checkpoint; /* the highest N, or -1 */
} bd_run_history;

/* (On ranks other than the writer: an empty history.) */
bd_status bd_run_history_of(const bd_run *r, bd_run_history *h);
/* Before a training starts at step 0: BD_E_STATE, naming what it holds and
 * the two ways on, when the folder already holds a training (a line of
 * metrics.jsonl past step 0 or a checkpoint). */
bd_status bd_run_check_fresh(const bd_run *r);
/* Before a training continues from `step`: drop metrics.jsonl's lines whose
 * top-level "step" is past it, and a torn last line (rewritten atomically;
 * lines without a step stay), counted in *dropped and logged. */
bd_status bd_run_rewind(bd_run *r, int64_t step, size_t *dropped);

/* ---- files ------------------------------------------------------------------ */

/* Write n bytes to path atomically: <path>.tmp-<pid>-<n> (unique) in the same folder,
 * fsync, rename over path, fsync the folder (core/ckpt/fileio.c, the one
 * implementation; bd.write_atomic in Lua). A crash leaves the old file or
 * the new one; on failure the temp file is removed. */
bd_status bd_write_file_atomic(const char *path, const void *bytes, size_t n);

#endif
