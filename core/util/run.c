/* Run directories and the JSON text they hold (see bd/run.h). Only the
 * writer (bd_dist_is_writer: rank 0) creates or writes them: on the other
 * ranks a run knows its directory and every write succeeds doing nothing. */
#include "bd/run.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bd/ckpt.h"
#include "bd/dist.h"
#include "bd/log.h"

#define NAME_MAX_LEN 128

/* ---- run directory ------------------------------------------------------- */

struct bd_run {
    char  dir[4096];
    FILE *metrics; /* NULL on a rank that does not write */
    int   lock;    /* the flock'd <dir>/run.lock, or -1 */
};

static bd_status check_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN)
        return bd_fail(BD_E_ARG, "run: name '%s' has %zu characters, expected"
                       " 1 to %d", name, n, NAME_MAX_LEN);
    if (name[0] == '.')
        return bd_fail(BD_E_ARG, "run: name '%s' starts with '.', expected a"
                       " letter, digit, '_' or '-'", name);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return bd_fail(BD_E_ARG, "run: name '%s' has '%c', expected"
                           " A-Z, a-z, 0-9, '_', '-' or '.'", name, c);
    }
    return BD_OK;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdir -p: every prefix of path that ends before a '/', then path. */
static bd_status make_dirs(char *path)
{
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        int rc = mkdir(path, 0777);
        int err = errno;
        *p = saved;
        if (rc != 0 && err != EEXIST)
            return bd_fail(BD_E_IO, "run: cannot create directory '%.*s': %s",
                           (int)(p - path), path, strerror(err));
        if (saved == '\0')
            return is_dir(path) ? BD_OK
                 : bd_fail(BD_E_IO, "run: cannot create directory '%s': a"
                           " file of that name is in the way", path);
    }
}

/* The pid written in a lock file, or -1. */
static long lock_holder(int fd)
{
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    char *end;
    long pid = n > 0 ? strtol(buf, &end, 10) : -1;
    return n > 0 && end != buf ? pid : -1;
}

/* One writer per run folder: an exclusive flock on <dir>/run.lock, held
 * until bd_run_close (or the process ends), with this pid in the file. */
static bd_status take_lock(bd_run *r)
{
    char path[sizeof r->dir + 16];
    BD_TRY(bd_run_file(r, "run.lock", path, sizeof path));
    r->lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (r->lock < 0)
        return bd_fail(BD_E_IO, "run: cannot open '%s': %s", path,
                       strerror(errno));
    if (flock(r->lock, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        long pid = lock_holder(r->lock);
        if (err != EWOULDBLOCK)
            return bd_fail(BD_E_IO, "run: cannot lock '%s': %s", path,
                           strerror(err));
        return bd_fail(BD_E_STATE, "run: '%s' is in use by process %ld%s (it"
                       " holds %s): one writer per run folder; wait for it to"
                       " end, or choose another name", r->dir, pid,
                       pid == (long)getpid() ? ", this one: close the other"
                       " bd.run of this folder first" : "", path);
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(r->lock, 0) != 0 || pwrite(r->lock, pid, (size_t)n, 0) != n)
        return bd_fail(BD_E_IO, "run: cannot write '%s': %s", path,
                       strerror(errno));
    return BD_OK;
}

/* <dir>/ckpt's checkpoints (none when the folder does not exist). */
static bd_status list_checkpoints(const bd_run *r, bd_ckpt_step **steps,
                                  size_t *n)
{
    char dir[sizeof r->dir + 8];
    *steps = NULL;
    *n = 0;
    BD_TRY(bd_run_file(r, "ckpt", dir, sizeof dir));
    return is_dir(dir) ? bd_ckpt_list_steps(dir, steps, n) : BD_OK;
}

/* Remove <dir>/ckpt/step_<N>.bdc; their number into *removed. */
static bd_status remove_checkpoints(const bd_run *r, size_t *removed)
{
    bd_ckpt_step *steps;
    size_t n;
    *removed = 0;
    BD_TRY(list_checkpoints(r, &steps, &n));
    bd_status s = BD_OK;
    for (size_t i = 0; i < n && s == BD_OK; i++) {
        if (unlink(steps[i].path) == 0)
            ++*removed;
        else if (errno != ENOENT)
            s = bd_fail(BD_E_IO, "run: overwrite: cannot remove '%s': %s",
                        steps[i].path, strerror(errno));
    }
    bd_ckpt_steps_free(steps, n);
    return s;
}

/* overwrite: metrics.jsonl emptied and the checkpoints removed, said. */
static bd_status start_over(bd_run *r)
{
    bd_run_history h;
    size_t removed;
    BD_TRY(bd_run_history_of(r, &h));
    BD_TRY(remove_checkpoints(r, &removed));
    if (h.lines || removed)
        bd_log_warn("run: starting '%s' over (overwrite = true): removed"
                    " metrics.jsonl's %zu line(s) and %zu checkpoint(s)",
                    r->dir, h.lines, removed);
    return BD_OK;
}

/* Lock, start over if asked, open metrics.jsonl: on the writer only. */
static bd_status open_files(bd_run *r, bool overwrite)
{
    char path[sizeof r->dir + 32];
    BD_TRY(make_dirs(r->dir));
    BD_TRY(take_lock(r));
    if (overwrite)
        BD_TRY(start_over(r));
    BD_TRY(bd_run_file(r, "metrics.jsonl", path, sizeof path));
    if (!(r->metrics = fopen(path, overwrite ? "w" : "a")))
        return bd_fail(BD_E_IO, "run: cannot open '%s': %s", path,
                       strerror(errno));
    return BD_OK;
}

bd_status bd_run_open(const char *root, const char *name, bool overwrite,
                      bd_run **out)
{
    *out = NULL;
    BD_TRY(check_name(name));
    if (!root)
        root = "runs";
    bd_run *r = calloc(1, sizeof *r);
    if (!r)
        return bd_fail(BD_E_NOMEM, "run: out of memory");
    r->lock = -1;
    bd_status s = BD_OK;
    int n = snprintf(r->dir, sizeof r->dir, "%s/%s", root, name);
    if (n < 0 || (size_t)n >= sizeof r->dir)
        s = bd_fail(BD_E_ARG, "run: directory '%s/%s' is too long", root, name);
    if (s == BD_OK && bd_dist_is_writer())
        s = open_files(r, overwrite);
    if (s != BD_OK) {
        bd_run_close(r);
        return s;
    }
    *out = r;
    return BD_OK;
}

void bd_run_close(bd_run *r)
{
    if (!r)
        return;
    if (r->metrics)
        fclose(r->metrics);
    if (r->lock >= 0)
        close(r->lock); /* releases the flock */
    free(r);
}

const char *bd_run_dir(const bd_run *r) { return r->dir; }

bd_status bd_run_file(const bd_run *r, const char *file, char *path,
                      size_t len)
{
    int n = snprintf(path, len, "%s/%s", r->dir, file);
    if (n < 0 || (size_t)n >= len)
        return bd_fail(BD_E_ARG, "run: path '%s/%s' is longer than %zu bytes",
                       r->dir, file, len - 1);
    return BD_OK;
}

bd_status bd_run_write_json(bd_run *r, const char *file, const bd_json *doc)
{
    BD_TRY(doc->status);
    if (!r->metrics)
        return BD_OK;
    char path[sizeof r->dir + 256];
    BD_TRY(bd_run_file(r, file, path, sizeof path));
    char *text = malloc(doc->len + 1);
    if (!text)
        return bd_fail(BD_E_NOMEM, "run: out of memory writing '%s'", path);
    if (doc->len)
        memcpy(text, doc->text, doc->len);
    text[doc->len] = '\n';
    bd_status s = bd_write_file_atomic(path, text, doc->len + 1);
    free(text);
    return s;
}

bd_status bd_run_log(bd_run *r, const bd_json *event)
{
    BD_TRY(event->status);
    if (event->len == 0 || event->text[0] != '{')
        return bd_fail(BD_E_ARG, "run: a metrics event must be a JSON object,"
                       " got '%.40s'", event->text ? event->text : "");
    if (!r->metrics)
        return BD_OK;
    if (fwrite(event->text, 1, event->len, r->metrics) != event->len ||
        fputc('\n', r->metrics) == EOF || fflush(r->metrics) != 0)
        return bd_fail(BD_E_IO, "run: cannot append to %s/metrics.jsonl: %s",
                       r->dir, strerror(errno));
    return BD_OK;
}

/* ---- the history of a run: metrics.jsonl's steps and the checkpoints -------- */

/* Under MPI only the writer reads the files: every rank gets its status. */
static bd_status agree(bd_status s, const char *dir)
{
    int failed;
    BD_TRY(bd_dist_count_failed(s, &failed));
    if (s == BD_OK && failed > 0)
        return bd_fail(BD_E_STATE, "run: '%s' was refused by the process that"
                       " writes it (rank 0): see its message", dir);
    return s;
}

/* The top-level "step" of the JSON object in line[0..n), when it is a
 * number: strings are skipped with their escapes, nested values by depth. */
static bool line_step(const char *line, size_t n, double *step)
{
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        if (line[i] == '{' || line[i] == '[')
            depth++;
        else if (line[i] == '}' || line[i] == ']')
            depth--;
        if (line[i] != '"')
            continue;
        size_t start = ++i;
        while (i < n && line[i] != '"')
            i += line[i] == '\\' ? 2 : 1;
        if (i >= n)
            return false;
        if (depth != 1 || i - start != 4 || memcmp(line + start, "step", 4) != 0
            || i + 1 >= n || line[i + 1] != ':')
            continue;
        char num[40];
        size_t len = n - (i + 2) < sizeof num - 1 ? n - (i + 2) : sizeof num - 1;
        memcpy(num, line + i + 2, len);
        num[len] = '\0';
        char *end;
        *step = strtod(num, &end);
        return end != num;
    }
    return false;
}

/* metrics.jsonl's bytes (none when it does not exist). */
static bd_status read_metrics(const bd_run *r, char *path, size_t len,
                              char **text, size_t *n)
{
    *text = NULL;
    *n = 0;
    BD_TRY(bd_run_file(r, "metrics.jsonl", path, len));
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? BD_OK
             : bd_fail(BD_E_IO, "run: cannot read '%s': %s", path, strerror(errno));
    size_t cap = 0;
    bd_status s = BD_OK;
    for (;;) {
        if (*n == cap) {
            char *grown = realloc(*text, cap = cap ? 2 * cap : 1 << 16);
            if (!grown) {
                s = bd_fail(BD_E_NOMEM, "run: out of memory reading '%s'", path);
                break;
            }
            *text = grown;
        }
        size_t got = fread(*text + *n, 1, cap - *n, f);
        *n += got;
        if (got == 0)
            break;
    }
    if (s == BD_OK && ferror(f))
        s = bd_fail(BD_E_IO, "run: cannot read '%s': %s", path, strerror(errno));
    fclose(f);
    return s;
}

/* The checkpoints in <dir>/ckpt: their number and the last step. */
static bd_status checkpoints_of(const bd_run *r, bd_run_history *h)
{
    bd_ckpt_step *steps;
    size_t n;
    BD_TRY(list_checkpoints(r, &steps, &n));
    h->checkpoints = n;
    if (n)
        h->last_checkpoint = (int64_t)steps[n - 1].step;
    bd_ckpt_steps_free(steps, n);
    return BD_OK;
}

bd_status bd_run_history_of(const bd_run *r, bd_run_history *h)
{
    *h = (bd_run_history){.last_step = -1, .last_checkpoint = -1};
    if (!bd_dist_is_writer())
        return BD_OK;
    char path[sizeof r->dir + 32], *text;
    size_t n;
    if (r->metrics)
        fflush(r->metrics);
    BD_TRY(read_metrics(r, path, sizeof path, &text, &n));
    for (size_t at = 0; at < n;) {
        const char *nl = memchr(text + at, '\n', n - at);
        size_t len = nl ? (size_t)(nl - (text + at)) : n - at;
        double step;
        h->lines++;
        if (line_step(text + at, len, &step) && step > (double)h->last_step)
            h->last_step = (int64_t)step;
        at += len + 1;
    }
    free(text);
    return checkpoints_of(r, h);
}

bd_status bd_run_check_fresh(const bd_run *r)
{
    bd_run_history h;
    bd_status s = bd_run_history_of(r, &h);
    if (s == BD_OK && (h.last_step > 0 || h.checkpoints > 0))
        s = bd_fail(BD_E_STATE, "train: '%s' already holds a training"
                    " (metrics.jsonl to step %lld, %zu checkpoint(s) to step"
                    " %lld): resume = \"auto\" continues it, a run opened with"
                    " overwrite = true starts it over", r->dir,
                    (long long)h.last_step, h.checkpoints,
                    (long long)h.last_checkpoint);
    return agree(s, r->dir);
}

/* Keep text's complete lines without a step past `step`; the number of
 * lines dropped (a torn last line among them) into *dropped. */
static size_t keep_until(char *text, size_t n, int64_t step, size_t *dropped)
{
    size_t kept = 0;
    *dropped = 0;
    for (size_t at = 0; at < n;) {
        const char *nl = memchr(text + at, '\n', n - at);
        size_t len = nl ? (size_t)(nl - (text + at)) + 1 : n - at;
        double s;
        bool keep = nl && !(line_step(text + at, len, &s) && s > (double)step);
        if (keep)
            memmove(text + kept, text + at, len);
        kept += keep ? len : 0;
        *dropped += !keep;
        at += len;
    }
    return kept;
}

static bd_status rewind_metrics(bd_run *r, int64_t step, size_t *dropped)
{
    char path[sizeof r->dir + 32], *text;
    size_t n;
    fflush(r->metrics);
    BD_TRY(read_metrics(r, path, sizeof path, &text, &n));
    size_t kept = keep_until(text, n, step, dropped);
    bd_status s = *dropped ? bd_write_file_atomic(path, text, kept) : BD_OK;
    free(text);
    if (s != BD_OK || !*dropped)
        return s;
    fclose(r->metrics); /* it holds the file the rename replaced */
    if (!(r->metrics = fopen(path, "a")))
        return bd_fail(BD_E_IO, "run: cannot open '%s': %s", path,
                       strerror(errno));
    return BD_OK;
}

bd_status bd_run_rewind(bd_run *r, int64_t step, size_t *dropped)
{
    *dropped = 0;
    bd_status s = r->metrics ? rewind_metrics(r, step, dropped) : BD_OK;
    if (s == BD_OK && *dropped)
        bd_log_info("run: '%s' continues from step %lld: dropped %zu line(s)"
                    " of metrics.jsonl past it", r->dir, (long long)step,
                    *dropped);
    return agree(s, r->dir);
}
