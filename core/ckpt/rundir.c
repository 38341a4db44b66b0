/* A run's checkpoint folder: <run>/ckpt/step_<N>.bdc. The one place that
 * names, parses and lists these files (bd/ckpt.h, "Run directories"). */
#include "format.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEP_PREFIX "step_"
#define STEP_SUFFIX ".bdc"
#define MAX_DIGITS  19 /* every 19-digit number fits in a uint64_t */

bd_status bd_ckpt_step_path(char *buf, size_t len, const char *dir,
                            uint64_t step)
{
    int n = snprintf(buf, len, "%s%s" STEP_PREFIX "%llu" STEP_SUFFIX,
                     dir ? dir : "", dir ? "/" : "", (unsigned long long)step);
    if (n < 0 || (size_t)n >= len)
        return bd_fail(BD_E_ARG, "ckpt: the path of step %llu in '%s' is"
                       " longer than %zu bytes", (unsigned long long)step,
                       dir ? dir : ".", len ? len - 1 : 0);
    return BD_OK;
}

/* The digits between prefix and suffix of name as a number; false when
 * name is not prefix<1 to 19 digits>suffix. */
static bool number_in(const char *name, const char *prefix,
                      const char *suffix, uint64_t *value)
{
    size_t lp = strlen(prefix), ls = strlen(suffix), len = strlen(name);
    if (len <= lp + ls || len - lp - ls > MAX_DIGITS
        || strncmp(name, prefix, lp) != 0 || strcmp(name + len - ls, suffix) != 0)
        return false;
    uint64_t v = 0;
    for (size_t i = lp; i < len - ls; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = 10 * v + (uint64_t)(name[i] - '0');
    }
    *value = v;
    return true;
}

bool bd_ckpt_step_of(const char *name, uint64_t *step)
{
    return number_in(name, STEP_PREFIX, STEP_SUFFIX, step);
}

static int by_step(const void *a, const void *b)
{
    uint64_t x = ((const bd_ckpt_step *)a)->step;
    uint64_t y = ((const bd_ckpt_step *)b)->step;
    return (x > y) - (x < y);
}

void bd_ckpt_steps_free(bd_ckpt_step *steps, size_t n)
{
    for (size_t i = 0; steps && i < n; i++)
        free(steps[i].path);
    free(steps);
}

/* Append step and dir/name to the growing list. */
static bd_status append(bd_ckpt_step **list, size_t *n, size_t *cap,
                        const char *dir, const char *name, uint64_t step)
{
    if (*n == *cap) {
        size_t grown_cap = *cap ? 2 * *cap : 32;
        bd_ckpt_step *grown = realloc(*list, grown_cap * sizeof *grown);
        if (!grown)
            return bd_fail(BD_E_NOMEM, "ckpt: out of memory listing '%s'", dir);
        *list = grown;
        *cap = grown_cap;
    }
    size_t len = strlen(dir) + strlen(name) + 2;
    char *path = malloc(len);
    if (!path)
        return bd_fail(BD_E_NOMEM, "ckpt: out of memory listing '%s'", dir);
    snprintf(path, len, "%s/%s", dir, name);
    (*list)[(*n)++] = (bd_ckpt_step){.step = step, .path = path};
    return BD_OK;
}

static bd_status check_distinct(const bd_ckpt_step *s, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (s[i].step == s[i - 1].step)
            return bd_fail(BD_E_ARG, "ckpt: two checkpoints of step %llu ('%s'"
                           " and '%s')", (unsigned long long)s[i].step,
                           s[i - 1].path, s[i].path);
    return BD_OK;
}

bd_status bd_ckpt_list_steps(const char *dir, bd_ckpt_step **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return bd_fail(BD_E_IO, "ckpt: cannot list '%s': %s", dir,
                       strerror(errno));
    bd_ckpt_step *list = NULL;
    size_t n = 0, cap = 0;
    bd_status s = BD_OK;
    uint64_t step;
    for (struct dirent *e; s == BD_OK && (e = readdir(d));)
        if (bd_ckpt_step_of(e->d_name, &step))
            s = append(&list, &n, &cap, dir, e->d_name, step);
    closedir(d);
    if (s == BD_OK && n)
        qsort(list, n, sizeof *list, by_step);
    if (s == BD_OK)
        s = check_distinct(list, n);
    if (s != BD_OK) {
        bd_ckpt_steps_free(list, n);
        return s;
    }
    *out = list;
    *count = n;
    return BD_OK;
}

/* ---- temp files of writers ------------------------------------------------ */

long bd_ckpt_temp_writer(const char *name)
{
    const char *tmp = strstr(name, STEP_SUFFIX ".tmp-");
    if (!tmp || tmp - name < 1)
        return -1;
    const char *pid_at = tmp + strlen(STEP_SUFFIX ".tmp-"), *dash = strchr(pid_at, '-');
    char pid_text[24];
    size_t len = dash ? (size_t)(dash - pid_at) : strlen(pid_at);
    uint64_t pid, counter;
    if (len >= sizeof pid_text
        || (dash && !number_in(dash, "-", "", &counter)))
        return -1;
    memcpy(pid_text, pid_at, len);
    pid_text[len] = '\0';
    if (!number_in(pid_text, "", "", &pid) || pid > (uint64_t)INT32_MAX)
        return -1;
    return (long)pid;
}

/* ---- archives of a run --------------------------------------------------- */

bd_status bd_archive_create(const char *run_dir, const char *out,
                            const bd_archive_opts *opts)
{
    size_t len = strlen(run_dir) + 6, n = 0;
    char *dir = malloc(len);
    if (!dir)
        return bd_fail(BD_E_NOMEM, "archive: out of memory");
    snprintf(dir, len, "%s/ckpt", run_dir);
    bd_ckpt_step *files = NULL;
    bd_status s = bd_ckpt_list_steps(dir, &files, &n);
    if (s == BD_OK && n == 0)
        s = bd_fail(BD_E_ARG, "archive: no checkpoints named step_<N>.bdc in"
                    " '%s'", dir);
    free(dir);
    const char **paths = s == BD_OK ? malloc(n * sizeof *paths) : NULL;
    uint64_t *steps = s == BD_OK ? malloc(n * sizeof *steps) : NULL;
    if (s == BD_OK && (!paths || !steps))
        s = bd_fail(BD_E_NOMEM, "archive: out of memory");
    for (size_t i = 0; s == BD_OK && i < n; i++) {
        paths[i] = files[i].path;
        steps[i] = files[i].step;
    }
    if (s == BD_OK)
        s = bd_archive_write(out, paths, steps, n, opts);
    free(paths);
    free(steps);
    bd_ckpt_steps_free(files, n);
    return s;
}
