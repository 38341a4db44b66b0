/* A run directory, runs/<name>/, and the JSON its records are written in.
 *
 *   config.json     the resolved configuration, written atomically
 *   metrics.jsonl   one JSON object per logged event, one per line, flushed
 *                   as it is written so a crash keeps every finished line
 *
 * Checkpoints, sample grids and plots are written beside them by their own
 * writers, at paths made with bd_run_file. */
#ifndef BD_RUN_H
#define BD_RUN_H

#include <stdbool.h>
#include <stddef.h>

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

/* Create <root>/<name>/ (root NULL: "runs"), with parents. A name is 1 to
 * 128 characters of A-Z a-z 0-9 _ - . and does not start with '.'.
 * metrics.jsonl is started empty, or appended to when `resume`. */
bd_status bd_run_open(const char *root, const char *name, bool resume,
                      bd_run **out);
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

/* ---- files ------------------------------------------------------------------ */

/* Write n bytes to path atomically: <path>.tmp-<pid> in the same folder,
 * fsync, rename over path, fsync the folder (core/ckpt/fileio.c, the one
 * implementation; bd.write_atomic in Lua). A crash leaves the old file or
 * the new one; on failure the temp file is removed. */
bd_status bd_write_file_atomic(const char *path, const void *bytes, size_t n);

#endif
